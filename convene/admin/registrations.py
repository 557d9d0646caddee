"""Registrations: list, detail, edit, cancel, add by hand, visit ranking, CSV export; staff fix badges, add walk-ins."""
from __future__ import annotations

import re

import sqlalchemy as sa
from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from convene.admin import bp
from convene.admin.access import allow
from convene.admin.payment_forms import DeskPaymentForm
from convene.admin.registration_forms import (
    BadgeForm,
    NewRegistrationForm,
    RegistrationAdminForm,
    WalkInForm,
    fill_choices,
)
from convene.admin.util import convening_or_404, show_error
from convene.errors import ConveneError
from convene.extensions import db
from convene.forms import (
    EmptyForm,
    add_interpretation_field,
    add_question_fields,
    add_ranking_fields,
    answers_from,
    answers_to_form_data,
    format_answer,
    language_data,
    rank_field_names,
    ranking_from,
    ranking_to_form_data,
)
from convene.models import ENDED, Convening, OrderStatus, OutboxMessage, Registration, Role, Status, utcnow
from convene.permissions import Permission, can
from convene.services import exports, registration_lists
from convene.services import registrations as service
from convene.services import visits as visit_service
from convene.services.registration_lists import (  # noqa: F401  (payments.py imports some from here)
    MAX_PAGE,
    SORTS,
    STATUS_FILTERS,
    ListArgs,
    _escape_like,
    _int_arg,
    parse_list_args,
    search_terms,
)






def _registration(convening: Convening, registration_id: int) -> Registration:
    registration = db.session.get(Registration, registration_id)
    if registration is None or registration.convening_id != convening.id:
        abort(404)
    return registration





def _list_args(convening: Convening) -> ListArgs:
    return parse_list_args(convening, request.args)


def _csv_response(text: str, filename: str) -> Response:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", filename)
    return Response(text.encode("utf-8"), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename={safe}"})


@bp.get("/c/<int:convening_id>/registrations")
@allow(Permission.REGISTRATIONS_VIEW)
def registrations(convening_id: int):
    """Search, filter, sort and page through a convening's registrations."""
    convening = convening_or_404(convening_id)
    args = _list_args(convening)
    # The totals come from the counts by status, so the search runs twice per page (counts, rows), not three times.
    by_status = registration_lists.status_counts(convening.id, args.conditions(with_status=False))
    page = registration_lists.list_page(
        convening.id, args.conditions(), SORTS[args.sort], descending=args.direction == "desc", page=args.page,
        per_page=current_app.config["ADMIN_PAGE_SIZE"], total=registration_lists.total_for(by_status, args.status),
        after=_int_arg(request.args.get("after")), before=_int_arg(request.args.get("before")),
    )
    export_args = {k: v for k, v in request.args.items() if k not in ("page", "after", "before")}
    return render_template(
        "admin/registrations/list.html", convening=convening, page=page, args=args, by_status=by_status,
        status_filters=STATUS_FILTERS, statuses=list(Status), roles=list(Role), export_args=export_args,
    )


@bp.get("/c/<int:convening_id>/registrations/<int:registration_id>")
@allow(Permission.REGISTRATIONS_VIEW)
def registration(convening_id: int, registration_id: int):
    """Everything about one registration: details, answers, history, emails sent."""
    convening = convening_or_404(convening_id)
    return _detail_page(convening, _registration(convening, registration_id))


def _detail_page(convening: Convening, registration: Registration, *, desk_form: DeskPaymentForm | None = None,
                 badge_form: BadgeForm | None = None, ranking_form=None, status: int = 200):
    from convene.admin.payments import desk_form_for

    order = registration.order
    desk_form = desk_form or (desk_form_for(order) if order is not None else None)
    # Organizers have the full edit form; staff correct only what prints on the badge, here.
    if badge_form is None and not can(current_user, Permission.REGISTRATIONS_EDIT, convening):
        badge_form = BadgeForm(formdata=None, obj=registration)
    hosts = visit_service.hosts_of(convening.id)
    ranking = visit_service.ranking_for(registration.id)
    may_rank = can(current_user, Permission.VISITS_MANAGE, convening)
    if hosts and ranking_form is None and may_rank and registration.status not in ENDED:
        ranking_form = _ranking_form(hosts)(formdata=None, data=ranking_to_form_data(ranking, hosts))
    ranking_warnings = {}
    if ranking_form is not None and registration.needs_step_free_access:
        # The public page's warning, told about the person rather than to them.
        by_id = {str(h.id): h for h in hosts}
        for name in rank_field_names(hosts):
            host = by_id.get(str(getattr(ranking_form, name).data or ""))
            if host is not None and not host.accessible:
                ranking_warnings[name] = _("%(host)s does not have step-free access, which %(name)s needs: the "
                                           "assigner will not place them there.", host=host.name,
                                           name=registration.given_name)
    answers = [(q, format_answer(registration.answer_for(q.id))) for q in convening.questions]
    emails = db.session.execute(
        sa.select(OutboxMessage).where(OutboxMessage.registration_id == registration.id)
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
    ).scalars().all()
    hosts_by_id = {h.id: h for h in hosts}
    from convene.services.messages import messages_of

    return render_template("admin/registrations/detail.html", convening=convening, registration=registration,
                           answers=answers, emails=emails, messages_sent=messages_of(registration.id), button_form=EmptyForm(), desk_form=desk_form,
                           badge_form=badge_form, ranking_form=ranking_form, rank_fields=rank_field_names(hosts),
                           ranked_hosts=[hosts_by_id[h] for h in ranking if h in hosts_by_id],
                           has_hosts=bool(hosts), ranking_warnings=ranking_warnings), status


def _ranking_form(hosts) -> type[EmptyForm]:
    return add_ranking_fields(EmptyForm, hosts, in_reader_language=False)


@bp.post("/c/<int:convening_id>/registrations/<int:registration_id>/visit-preferences")
@allow(Permission.VISITS_MANAGE, Permission.VISITS_MANAGE)
def registration_visit_preferences(convening_id: int, registration_id: int):
    """Organizers enter or change someone's ranking of the site-visit hosts (from a paper form, a call, an email)."""
    convening = convening_or_404(convening_id)
    registration = _registration(convening, registration_id)
    hosts = visit_service.hosts_of(convening.id)
    if not hosts:
        flash(_("This convening has no site-visit hosts to rank yet."), "error")
        return redirect(url_for("admin.registration", convening_id=convening.id, registration_id=registration.id))
    form = _ranking_form(hosts)()
    if form.validate_on_submit():
        try:
            visit_service.set_visit_preferences(registration.id, ranking_from(form, hosts), by_organizer=True)
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_ranking_saved(convening, registration), "success")
            return redirect(url_for("admin.registration", convening_id=convening.id, registration_id=registration.id)
                            + "#visit-preferences")
    return _detail_page(convening, registration, ranking_form=form, status=400)


def _ranking_saved(convening: Convening, registration: Registration) -> str:
    """What saving a ranking did, and when it will count."""
    from convene.models.visits import VISITING_ROLES

    said = _("%(name)s's site-visit ranking is saved.", name=registration.full_name)
    if registration.role not in VISITING_ROLES:
        return said + " " + _("As %(role)s, they are not placed on site visits, so it is not used.",
                              role=registration.role_label.lower())
    if convening.visits_published_at is not None:
        return said + " " + _("The plan is already published: it changes for them only when the assigner is run "
                              "again and the plan published.")
    return said + " " + _("The assigner uses it the next time it runs.")


@bp.post("/c/<int:convening_id>/registrations/<int:registration_id>/badge")
@allow(Permission.BADGES_EDIT, Permission.BADGES_EDIT)
def edit_badge(convening_id: int, registration_id: int):
    """Staff (or organizers) correct what prints on the badge: names, pronouns, organization; nothing else."""
    convening = convening_or_404(convening_id)  # signed in is enough: staff fix typos at the desk
    registration = _registration(convening, registration_id)
    form = BadgeForm()
    if form.validate_on_submit():
        try:
            service.update_registration(registration.id, form.badge_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The badge details are saved; the badge is in the print queue as changed."), "success")
            return redirect(url_for("admin.registration", convening_id=convening.id, registration_id=registration.id))
    return _detail_page(convening, registration, badge_form=form, status=400)


@bp.post("/c/<int:convening_id>/registrations/<int:registration_id>/desk-payment")
@allow(Permission.BADGES_EDIT, Permission.BADGES_EDIT)
def registration_desk_payment(convening_id: int, registration_id: int):
    """Staff or organizers record money taken at the desk for this person's order; the buyer gets a receipt."""
    from convene.admin.payments import record_desk_payment_from

    convening = convening_or_404(convening_id)  # signed in is enough: staff take payments at the desk
    registration = _registration(convening, registration_id)
    if registration.order is None:
        abort(404)
    form = DeskPaymentForm()
    if (form.validate_on_submit() and record_desk_payment_from(form, registration.order)) or not form.errors:
        return redirect(url_for("admin.registration", convening_id=convening.id, registration_id=registration.id))
    return _detail_page(convening, registration, desk_form=form, status=400)


@bp.route("/c/<int:convening_id>/registrations/<int:registration_id>/edit", methods=["GET", "POST"])
@allow(Permission.REGISTRATIONS_EDIT, Permission.REGISTRATIONS_EDIT)
def edit_registration(convening_id: int, registration_id: int):
    """Change someone's details, answers, role, delegation or ticket type."""
    convening = convening_or_404(convening_id)
    registration = _registration(convening, registration_id)
    questions = convening.questions
    # Required answers bind attendees registering, not organizers correcting other fields.
    form_class = add_interpretation_field(
        add_question_fields(RegistrationAdminForm, questions, require_answers=False, in_reader_language=False), convening)
    if request.method == "POST":
        form = form_class()
    else:
        form = form_class(obj=registration, data=answers_to_form_data(registration, questions))
        form.delegation_id.data = registration.delegation_id or 0
    fill_choices(form, convening)
    if form.validate_on_submit():
        try:
            service.update_registration(registration.id, {**form.person_data(), **language_data(form)},
                                        answers_from(form, questions),
                                        admin_changes=form.admin_changes())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The changes are saved."), "success")
            return redirect(url_for("admin.registration", convening_id=convening.id, registration_id=registration.id))
    return render_template("admin/registrations/form.html", convening=convening, registration=registration,
                           form=form, questions=questions), (400 if form.errors else 200)


@bp.route("/c/<int:convening_id>/registrations/new", methods=["GET", "POST"])
@allow(Permission.REGISTRATIONS_EDIT, Permission.REGISTRATIONS_EDIT)
def new_registration(convening_id: int):
    """Add someone by hand on any ticket type, hidden ones included; a paid ticket's seat gets its order."""
    convening = convening_or_404(convening_id)
    questions = convening.questions
    form = add_interpretation_field(
        add_question_fields(NewRegistrationForm, questions, require_answers=False, in_reader_language=False),
        convening)()
    fill_choices(form, convening)
    if form.validate_on_submit():
        try:
            registration = service.add_registration(
                convening.id, form.ticket_type_id.data, {**form.person_data(), **language_data(form)},
                answers_from(form, questions), role=form.role.data, delegation_id=form.delegation_id.data or None, send_email=form.send_email.data,
                settlement=form.settlement.data, payment_note=form.payment_note.data or "",
            )
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("%(name)s is registered (%(reference)s).", name=registration.full_name,
                    reference=registration.reference), "success")
            return redirect(url_for("admin.registration", convening_id=convening.id, registration_id=registration.id))
    return render_template("admin/registrations/form.html", convening=convening, registration=None, form=form,
                           questions=questions), (400 if form.errors else 200)


@bp.route("/c/<int:convening_id>/registrations/walk-in", methods=["GET", "POST"])
@allow(Permission.BADGES_EDIT, Permission.BADGES_EDIT)
def add_walk_in(convening_id: int):
    """Staff (or organizers) add someone at the desk: a public ticket, free or paid there with a receipt."""
    convening = convening_or_404(convening_id)  # signed in is enough: the desk adds walk-ins
    form = WalkInForm()
    form.fill(convening, utcnow())
    if form.validate_on_submit():
        try:
            # The seat and its invoice in one locked unit (capacity checked there); the desk payment settles it
            # next, so the only email on a paid ticket is the receipt, not an invoice.
            registration = service.add_registration(
                convening.id, form.ticket_type_id.data, form.person_data(),
                send_email=form.send_email.data and not form.prices.get(form.ticket_type_id.data),
                settlement="invoice",
            )
        except ConveneError as error:
            show_error(form, error)
        else:
            _settle_walk_in(registration, form)
            return redirect(url_for("admin.registration", convening_id=convening.id, registration_id=registration.id))
    return render_template("admin/registrations/walk_in.html", convening=convening, form=form), (
        400 if form.errors else 200)


def _settle_walk_in(registration: Registration, form: WalkInForm) -> None:
    """Record the desk payment of a walk-in's invoice (if the ticket had a price) and say what happened."""
    from convene.printing.receipts import format_amount
    from convene.services import payments

    order = registration.order
    who = {"name": registration.full_name, "reference": registration.reference}
    if order is None or order.status != OrderStatus.INVOICED:
        flash(_("%(name)s is registered (%(reference)s).", **who), "success")
        return
    try:
        payments.record_desk_payment(order.id, form.method.data, order.balance_cents, user_id=current_user.id)
    except ConveneError as error:
        flash(_("%(name)s is registered (%(reference)s), but the payment was not recorded: %(error)s Record it "
                "below.", error=error.message, **who), "error")
        return
    if form.send_email.data:
        service.send_manage_link(registration.convening_id, registration.email)
    db.session.refresh(order)
    flash(_("%(name)s is registered (%(reference)s); %(amount)s is recorded (%(method)s) and a receipt went to "
            "%(email)s.", amount=format_amount(order.paid_cents, order.currency),
            method=payments.DESK_METHODS[form.method.data], email=registration.email, **who), "success")


@bp.route("/c/<int:convening_id>/registrations/<int:registration_id>/cancel", methods=["GET", "POST"])
@allow(Permission.REGISTRATIONS_EDIT, Permission.REGISTRATIONS_EDIT)
def cancel_registration(convening_id: int, registration_id: int):
    """Ask for confirmation, then cancel, free the seat and offer it to the waitlist."""
    convening = convening_or_404(convening_id)
    registration = _registration(convening, registration_id)
    form = EmptyForm()
    if form.validate_on_submit():
        name = registration.full_name
        try:
            service.cancel_registration(registration.id, by_attendee=False)
        except ConveneError as error:
            flash(error.message, "error")
        else:
            flash(_("%(name)s is cancelled and the seat is released; they have been emailed.", name=name), "success")
        return redirect(url_for("admin.registration", convening_id=convening.id, registration_id=registration_id))
    return render_template("admin/registrations/cancel.html", convening=convening, registration=registration,
                           form=form)


@bp.post("/c/<int:convening_id>/registrations/<int:registration_id>/resend")
@allow(Permission.REGISTRATIONS_EDIT, Permission.REGISTRATIONS_EDIT)
def resend_manage_link(convening_id: int, registration_id: int):
    """Email the person their manage link again."""
    convening = convening_or_404(convening_id)
    registration = _registration(convening, registration_id)
    if not EmptyForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
    elif service.send_manage_link(convening.id, registration.email):
        flash(_("The link to manage the registration was sent to %(email)s.", email=registration.email), "success")
    else:
        flash(_("Nothing was sent: this registration is cancelled."), "error")
    return redirect(url_for("admin.registration", convening_id=convening.id, registration_id=registration_id))


@bp.get("/c/<int:convening_id>/registrations.csv")
@allow(Permission.PAYMENTS_VIEW)  # the export carries prices and payment status
def export_registrations(convening_id: int):
    """Download the registrations (filtered like the list) as a spreadsheet."""
    convening = convening_or_404(convening_id)
    args = _list_args(convening)
    total = db.session.scalar(sa.select(sa.func.count(Registration.id))
                              .where(Registration.convening_id == convening.id, *args.conditions()))
    if total > exports.export_inline_max():
        # Too big to build while the organizer waits: offer to have the worker make it.
        return render_template("admin/registrations/export_big.html", convening=convening, total=total,
                               args={k: v for k, v in request.args.items() if k in exports.EXPORT_ARGS},
                               button_form=EmptyForm(), limit=exports.export_inline_max())
    # Streamed a batch of rows at a time: the rows never sit in memory as objects or one string.
    chunks = exports.iter_registrations_csv(convening, args.conditions(), args.order_by())
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{convening.slug}-registrations.csv")
    return Response((chunk.encode("utf-8") for chunk in chunks), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename={safe}"})


@bp.post("/c/<int:convening_id>/registrations/export")
@allow(Permission.PAYMENTS_VIEW, Permission.PAYMENTS_VIEW)
def queue_registrations_export(convening_id: int):
    """Have the worker make a big export (filtered like the list); its page offers the file once made."""
    convening = convening_or_404(convening_id)
    if not EmptyForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return redirect(url_for("admin.registrations", convening_id=convening.id))
    query = {k: v for k, v in request.form.items() if k in exports.EXPORT_ARGS}
    args = parse_list_args(convening, query)
    total = db.session.scalar(sa.select(sa.func.count(Registration.id))
                              .where(Registration.convening_id == convening.id, *args.conditions()))
    job = exports.request_registrations_export(convening.id, query, total=total, requested_by=current_user.id)
    flash(_("The export of %(total)s registrations is being made; this page offers it once it is ready.", total=total),
          "success")
    return redirect(url_for("admin.job", convening_id=convening.id, job_id=job.id))
