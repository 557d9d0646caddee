"""Merging two registrations of the same person: compare, choose, confirm."""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from convene.admin import bp
from convene.admin.access import allow
from convene.permissions import Permission
from convene.admin.util import convening_or_404
from convene.errors import ConveneError
from convene.extensions import db
from convene.forms import EmptyForm
from convene.models import ACTIVE, Registration
from convene.services import merges


def _registration_or_404(convening, registration_id: int) -> Registration:
    registration = db.session.get(Registration, registration_id)
    if registration is None or registration.convening_id != convening.id:
        abort(404)
    return registration


def _counts(registration: Registration) -> dict[str, int]:
    """Rows each table holds for the registration, to show what the merge moves."""
    return {column.table.name: db.session.scalar(sa.select(sa.func.count()).select_from(column.table)
                                                 .where(column == registration.id))
            for column in merges._columns_referencing("registration") if column.table.name != "outbox_message"}


@bp.route("/c/<int:convening_id>/registrations/<int:registration_id>/merge", methods=["GET", "POST"])
@allow(Permission.REGISTRATIONS_EDIT, Permission.REGISTRATIONS_EDIT)
def merge_registration(convening_id: int, registration_id: int):
    """Keep this registration and fold another of the same person into it, after comparing both."""
    convening = convening_or_404(convening_id)
    keep = _registration_or_404(convening, registration_id)
    # Likely duplicates first: the same folded name; any other active registration can be named by reference.
    candidates = db.session.execute(
        sa.select(Registration).where(Registration.convening_id == convening.id, Registration.id != keep.id,
                                      Registration.status.in_(ACTIVE), Registration.sort_key == keep.sort_key)
        .order_by(Registration.id)).scalars().all()
    other_id = request.values.get("other", type=int)
    reference = (request.values.get("reference") or "").strip().upper()
    other = None
    if other_id:
        other = _registration_or_404(convening, other_id)
    elif reference:
        other = db.session.execute(sa.select(Registration).where(
            Registration.convening_id == convening.id, Registration.reference == reference)).scalar_one_or_none()
        if other is None:
            flash(_("No registration of this convening has that reference."), "error")
    form = EmptyForm()
    problem = None
    if other is not None:
        try:
            merges.check_registration_merge(keep, other)
        except ConveneError as error:
            problem = error.message
    if request.method == "POST" and other is not None and form.validate_on_submit():
        try:
            merges.merge_registrations(keep.id, other.id)
        except ConveneError as error:
            problem = error.message
        else:
            flash(_("Registration %(reference)s is merged into %(reference2)s and cancelled; nobody was emailed.",
                    reference=other.reference, reference2=keep.reference), "success")
            return redirect(url_for("admin.registration", convening_id=convening.id, registration_id=keep.id))
    return render_template("admin/registrations/merge.html", convening=convening, keep=keep, other=other,
                           candidates=candidates, form=form, problem=problem,
                           counts=(_counts(keep), _counts(other)) if other is not None else None)
