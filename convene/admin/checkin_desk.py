"""The check-in desk: register a walk-in, check them in and hand over a badge at once; fix a name and reprint."""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import selectinload

from convene.admin import bp
from convene.admin.access import allow
from convene.admin.checkin_desk_forms import DeskBadgeForm, ReprintForm, WalkInDeskForm
from convene.admin.util import convening_or_404, int_arg, show_error, text_arg
from convene.errors import ConveneError
from convene.extensions import db
from convene.models import Checkin, Convening, PrintJob, Registration, utcnow
from convene.permissions import Permission, can
from convene.services import checkin, desk


def _person(convening: Convening, registration_id: int) -> Registration:
    registration = db.session.get(Registration, registration_id)
    if registration is None or registration.convening_id != convening.id:
        abort(404)
    return registration


def _badge(registration: Registration, layout: str) -> PrintJob | None:
    """Make the badge now; say so when it could not be made (the registration and check-in stand)."""
    try:
        job = desk.print_badge(registration.id, layout=layout, requested_by=current_user.email)
    except ConveneError as error:
        flash(_("The badge was not made: %(message)s", message=error.message), "error")
        return None
    if job.status != "done":
        flash(_("The badge could not be made just now; print it again from here or from the print queue."), "error")
        return None
    return job


@bp.route("/c/<int:convening_id>/checkin/desk", methods=["GET", "POST"])
@allow(Permission.BADGES_EDIT, Permission.BADGES_EDIT)
def checkin_desk(convening_id: int):
    """Register a walk-in (the registration window does not apply), check them in and make their badge; or find
    someone already registered (name, reference or badge code) to fix their badge."""
    convening = convening_or_404(convening_id)
    lists = checkin.lists_of(convening.id)
    invoice_allowed = can(current_user, Permission.REGISTRATIONS_EDIT, convening)
    form = WalkInDeskForm()
    if request.method == "GET":
        wanted = int_arg("list")
        form.list_id.data = wanted if any(item.id == wanted for item in lists) else None
    form.fill(convening, lists, utcnow(), all_tickets=invoice_allowed, invoice_allowed=invoice_allowed)
    known = None
    if form.validate_on_submit():
        try:
            walk_in = desk.register_walk_in(
                convening.id, form.list_id.data, form.ticket_type_id.data, form.person_data(),
                payment=form.payment.data or None, by=current_user, invoice_allowed=invoice_allowed,
                send_email=form.send_email.data)
        except ConveneError as error:
            show_error(form, error)
            if error.details.get("registration_id"):
                known = db.session.get(Registration, error.details["registration_id"])
        else:
            registration = walk_in.registration
            job = _badge(registration, form.layout.data)
            flash(_("%(full_name)s is registered (%(reference)s) and checked in on %(list_name)s.",
                    full_name=registration.full_name, reference=registration.reference,
                    list_name=walk_in.answer.list_name), "success")
            return redirect(url_for("admin.checkin_desk_person", convening_id=convening.id,
                                    registration_id=registration.id, job=job.id if job else None))
    query = text_arg("q", checkin.MAX_CODE)
    how, found = checkin.find_people(convening.id, query) if query else ("name", [])
    if request.method == "GET" and how in ("token", "reference") and len(found) == 1:
        # A badge code or reference names one person: straight to their page (the scan result links here).
        return redirect(url_for("admin.checkin_desk_person", convening_id=convening.id, registration_id=found[0].id))
    found = found[:checkin.MAX_MATCHES]
    return render_template("admin/checkin/desk.html", convening=convening, form=form, known=known,
                           invoice_allowed=invoice_allowed, query=query, found=found), (400 if form.errors else 200)


@bp.route("/c/<int:convening_id>/checkin/desk/people/<int:registration_id>", methods=["GET", "POST"])
@allow(Permission.BADGES_EDIT, Permission.BADGES_EDIT)
def checkin_desk_person(convening_id: int, registration_id: int):
    """One person at the desk: their check-ins, their badge to reprint, a wrong name to correct first."""
    convening = convening_or_404(convening_id)
    registration = _person(convening, registration_id)
    reprinting = request.method == "POST" and request.form.get("action") == "reprint"
    badge_form = DeskBadgeForm(obj=registration) if request.method == "GET" or reprinting else DeskBadgeForm()
    reprint_form = ReprintForm(prefix="reprint") if reprinting else ReprintForm(formdata=None, prefix="reprint")
    job = None
    if reprinting:
        if reprint_form.validate_on_submit():
            job = _badge(registration, reprint_form.layout.data)
        else:
            flash(_("The form expired, or that layout is not offered; please try again."), "error")
    elif request.method == "POST" and not reprinting and badge_form.validate_on_submit():
        try:
            desk.fix_badge(registration.id, badge_form.badge_data())
        except ConveneError as error:
            show_error(badge_form, error)
        else:
            db.session.refresh(registration)
            job = _badge(registration, badge_form.layout.data)
            if job is not None:
                flash(_("The badge now reads %(display_badge_name)s (%(full_name)s); the new badge is ready.",
                        display_badge_name=registration.display_badge_name,
                        full_name=registration.full_name), "success")
    if request.method == "POST" and job is not None:
        return redirect(url_for("admin.checkin_desk_person", convening_id=convening.id,
                                registration_id=registration.id, job=job.id))
    shown = _shown_job(convening, registration, int_arg("job"))
    checkins = db.session.execute(
        sa.select(Checkin).where(Checkin.registration_id == registration.id)
        .options(selectinload(Checkin.checkin_list), selectinload(Checkin.checked_in_by))
        .order_by(Checkin.checked_in_at)).scalars().all()
    return render_template("admin/checkin/desk_person.html", convening=convening, registration=registration,
                           person=checkin.person_of(registration), badge_form=badge_form, reprint_form=reprint_form,
                           job=shown, checkins=checkins), (400 if badge_form.errors else 200)


def _shown_job(convening: Convening, registration: Registration, job_id: int | None) -> PrintJob | None:
    """The badge batch named in the URL, when it is this person's finished badge."""
    if job_id is None:
        return None
    job = db.session.get(PrintJob, job_id)
    if job is None or job.convening_id != convening.id or job.registration_ids != [registration.id]:
        return None
    return job if job.status == "done" else None
