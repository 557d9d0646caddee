"""Check-in lists: the entrance and the lists organizers add for a session, a site visit or a gathering."""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from convene.admin import bp
from convene.admin.access import allow
from convene.admin.checkin_list_forms import KIND_CHOICES, CheckinListForm
from convene.admin.confirm import confirm_deletion
from convene.admin.util import convening_or_404, show_error
from convene.errors import MESSAGES, ConveneError
from convene.extensions import db
from convene.models import CheckinList, Convening, ListKind, ProgramSession
from convene.permissions import Permission
from convene.services import checkin_lists as service
from convene.services.visits import visits_of


def _list(convening: Convening, list_id: int) -> CheckinList:
    try:
        return service.checkin_list_of(convening.id, list_id)
    except ConveneError:
        abort(404)


def _form(convening: Convening, form: CheckinListForm) -> CheckinListForm:
    sessions = db.session.execute(
        sa.select(ProgramSession).where(ProgramSession.convening_id == convening.id)
        .order_by(ProgramSession.starts_at, ProgramSession.title)).scalars().all()
    visits = sorted(visits_of(convening.id), key=lambda v: (v.slot.starts_at, v.host.name.lower()))
    form.fill(convening, sessions, visits)
    return form


@bp.get("/c/<int:convening_id>/checkin/lists")
@allow(Permission.CHECKIN)
def checkin_lists(convening_id: int):
    """Every check-in list, who it is for, and how many arrived of how many expected."""
    convening = convening_or_404(convening_id)
    return render_template("admin/checkin/lists.html", convening=convening,
                           summaries=service.list_summaries(convening), kinds=KIND_CHOICES)


@bp.route("/c/<int:convening_id>/checkin/lists/new", methods=["GET", "POST"])
@allow(Permission.EDIT, Permission.EDIT)
def checkin_list_new(convening_id: int):
    """Add a list for a session (its sign-ups or everyone), a site visit (its group) or a named gathering."""
    convening = convening_or_404(convening_id)
    kind = request.args.get("kind", "")
    if kind not in KIND_CHOICES:
        kind = "gathering"
    form = _form(convening, CheckinListForm())
    if form.validate_on_submit():
        try:
            added = service.create_checkin_list(convening.id, form.list_data(kind))
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The list “%(added)s” is added.", added=added.name), "success")
            return redirect(url_for("admin.checkin_lists", convening_id=convening.id))
    return render_template("admin/checkin/lists_form.html", convening=convening, form=form, kind=kind,
                           kinds=KIND_CHOICES, checkin_list=None), (400 if form.errors else 200)


@bp.route("/c/<int:convening_id>/checkin/lists/<int:list_id>/edit", methods=["GET", "POST"])
@allow(Permission.EDIT, Permission.EDIT)
def checkin_list_edit(convening_id: int, list_id: int):
    """Rename a list or change whom it admits (ticket types, roles; a session's sign-ups or everyone)."""
    convening = convening_or_404(convening_id)
    checkin_list = _list(convening, list_id)
    if checkin_list.kind == ListKind.MAIN:
        flash(MESSAGES["checkin_list_main_unchanged"], "error")
        return redirect(url_for("admin.checkin_lists", convening_id=convening.id))
    form = CheckinListForm() if request.method == "POST" else CheckinListForm.for_list(checkin_list)
    _form(convening, form)
    if form.validate_on_submit():
        try:
            service.update_checkin_list(checkin_list.id, form.list_data(checkin_list.kind))
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The list “%(checkin_list)s” is saved.", checkin_list=checkin_list.name), "success")
            return redirect(url_for("admin.checkin_lists", convening_id=convening.id))
    return render_template("admin/checkin/lists_form.html", convening=convening, form=form, kind=checkin_list.kind,
                           kinds=KIND_CHOICES, checkin_list=checkin_list,
                           rule=service.describe_rule(checkin_list, {t.id: t.name for t in convening.ticket_types}),
                           ), (400 if form.errors else 200)


@bp.route("/c/<int:convening_id>/checkin/lists/<int:list_id>/delete", methods=["GET", "POST"])
@allow(Permission.EDIT, Permission.EDIT)
def checkin_list_delete(convening_id: int, list_id: int):
    """Say what goes with a list (its check-ins and scans), then delete it on confirmation."""
    convening = convening_or_404(convening_id)
    checkin_list = _list(convening, list_id)
    return confirm_deletion(convening, lambda: service.checkin_list_deletion(checkin_list.id),
                            lambda token: service.delete_checkin_list(checkin_list.id, expected=token),
                            back=url_for("admin.checkin_lists", convening_id=convening.id),
                            after=url_for("admin.checkin_lists", convening_id=convening.id))
