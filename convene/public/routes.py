"""Public pages: what is on, the registration form, the manage page, waitlist offers."""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext
from wtforms.fields.choices import SelectChoice

from convene import throttle
from convene.errors import ConveneError, message_for, session_lost
from convene.i18n import use_registration
from convene.extensions import db
from convene.forms import (
    EmptyForm,
    add_interpretation_field,
    add_question_fields,
    add_ranking_fields,
    answers_from,
    answers_to_form_data,
    rank_field_names,
    ranking_from,
    ranking_to_form_data,
    show_error,
)
from convene.models import ENDED, Convening, Registration, Status, utcnow
from convene.languages import localized
from convene.public import bp
from convene.public.forms import ManageForm, ManageLinkForm, RegistrationForm
from convene.services import payments
from convene.services import registrations as service
from convene.services import visits as visit_service
from convene.services.tokens import manage_max_age, manage_token, offer_token, read_token
from convene.templating import local_dt, money


def published_convening(slug: str) -> Convening:
    convening = db.session.execute(sa.select(Convening).where(Convening.slug == slug)).scalar_one_or_none()
    if convening is None or not convening.published:
        abort(404)
    if "i18n_convening" not in g:  # the language of the page is picked for this convening: no second look-up
        g.i18n_convening = convening
    return convening


def registration_from_token(convening: Convening, token: str, purpose: str = "manage") -> Registration:
    """The registration a signed link names; raises ConveneError when the link is bad or stale."""
    max_age = manage_max_age() if purpose == "manage" else 60 * 86400
    payload = read_token(purpose, token, max_age)
    registration = db.session.get(Registration, payload.get("r"))
    if registration is None or registration.convening_id != convening.id or payload.get("v") != registration.token_version:
        raise ConveneError("link_invalid")
    use_registration(registration)  # its pages speak the language it chose, unless the page is switched
    return registration


def checkout_redirect(order, fallback_url: str):
    """Send the buyer to Stripe Checkout with a 303; if Stripe cannot be reached, say so where they can retry."""
    try:
        url = payments.start_checkout(order.id)
    except ConveneError as error:
        flash(error.message, "error")
        return redirect(fallback_url, 303)
    return redirect(url, 303)


def typed_discount(convening: Convening, now):
    """The code the visitor typed (in the form, or the page's address): (the valid code, None) or (None, why not).

    Every form that takes a code comes through here first, so this is where guessing is throttled:
    a client with too many invalid tries gets 429 before the code is looked up.
    """
    typed = request.form.get("code") if request.method == "POST" else request.args.get("code")
    if not payments.normalize_code(typed):
        return None, None
    throttle.check_code_try()
    try:
        return payments.check_code(convening.id, typed, now), None
    except ConveneError as error:
        throttle.record_invalid_code()
        return None, error.message


def show_code_problem(form, problem: str | None) -> None:
    """Say beside the code field why the typed code does not work (after validation, which clears errors)."""
    if problem and problem not in form.code.errors:
        form.code.errors = [*form.code.errors, problem]


def step_free_warnings(needs_step_free: bool, form, names: list[str], places) -> dict[str, str]:
    """Rank fields naming a place without step-free access, for someone who needs it: the warning to show there."""
    if not needs_step_free or form is None:
        return {}
    by_id = {str(p.id): p for p in places}
    warnings = {}
    for name in names:
        place = by_id.get(str(getattr(form, name).data or ""))
        if place is not None and not place.accessible:
            warnings[name] = gettext("%(place)s does not have step-free access, so you will not be placed there. "
                                     "Choose another host for this rank.", place=localized(place, "name"))
    return warnings


def ticket_rows(convening: Convening, usage: service.SeatUsage, now, discount=None):
    """Public ticket types (and hidden ones a code unlocks) with their state and price now."""
    options = payments.payment_options(convening)
    can_pay = options["card"] or options["invoice"]
    rows = []
    for ticket in convening.ticket_types:
        if ticket.hidden and not (discount is not None and ticket.id in (discount.ticket_type_ids or [])):
            continue
        left = usage.seats_left(convening, ticket)
        price = payments.price_for(ticket, discount, now)
        if not ticket.on_sale(now):
            state = "not_on_sale"
        elif price.due_cents and not can_pay:
            state = "payment_not_set_up"
        elif left is None or left > 0:
            state = "available"
        else:
            state = "waitlist" if convening.waitlist_enabled else "sold_out"
        rows.append({"ticket": ticket, "left": left, "state": state, "price": price,
                     "early": ticket.is_early(now)})
    return rows


def ticket_label(row, currency: str) -> str:
    """'Delegate — CA$450.00 (early-bird until 1 May)' for the ticket menu."""
    price = row["price"]
    label = f"{localized(row['ticket'], 'name')} — {money(price.due_cents, currency)}"
    if price.discount_cents:
        label += " " + gettext("(was %(price)s)", price=money(price.list_cents, currency))
    elif row["early"]:
        label += " " + gettext("(early-bird price until %(day)s)",
                               day=local_dt(row['ticket'].early_until_at, row['ticket'].convening, '%d %b'))
    if row["state"] == "waitlist":
        label += " — " + gettext("waitlist")
    return label


@bp.get("/")
def index():
    """List published convenings, upcoming first."""
    today = utcnow().date()
    convenings = db.session.execute(
        sa.select(Convening).where(Convening.published.is_(True)).order_by(Convening.starts_on)
    ).scalars().all()
    upcoming = [c for c in convenings if c.ends_on >= today]
    past = [c for c in convenings if c.ends_on < today][::-1]
    return render_template("public/index.html", upcoming=upcoming, past=past)


@bp.get("/c/<slug>/")
def convening(slug: str):
    """Show one convening: dates, venue, tickets with seats left."""
    convening = published_convening(slug)
    service.expire_offers(convening.id)
    now = utcnow()
    usage = service.seat_usage(convening.id)
    from convene.services.schedule import is_published

    return render_template(
        "public/convening.html", convening=convening, tickets=ticket_rows(convening, usage, now),
        state=convening.registration_state(now), program_published=is_published(convening.id),
    )


def ranked_hosts(convening: Convening):
    """Hosts attendees may rank now (none while preferences are closed)."""
    return visit_service.hosts_of(convening.id) if convening.visit_preferences_open else []


def _registration_form(convening: Convening, rows, hosts):
    form_class = add_interpretation_field(add_question_fields(RegistrationForm, convening.questions), convening)
    if hosts:
        form_class = add_ranking_fields(form_class, hosts)
    form = form_class()
    form.take_code_from_link()
    bookable = [r for r in rows if r["state"] in ("available", "waitlist")]
    # A paid ticket that cannot be paid for here is still shown, disabled with the reason, so nobody mistakes
    # another ticket (or its waitlist) for it; the service refuses it if it is sent anyway.
    choices = [SelectChoice(r["ticket"].id, ticket_label(r, convening.currency),
                            {} if r in bookable else {"disabled": True, "data-reason": message_for(r["state"])})
               for r in rows if r in bookable or r["state"] == "payment_not_set_up"]
    form.ticket_type_id.choices = choices
    if len(bookable) == 1 and form.ticket_type_id.data is None:
        form.ticket_type_id.data = bookable[0]["ticket"].id
    return form, bookable


def _waitlist_ids(value: str | None) -> set[int]:
    """The tickets the form was shown with as full (its join_waitlist field): choosing one of them joins its waitlist."""
    return {int(part) for part in (value or "").split(",") if part.strip().isdigit()}


@bp.route("/c/<slug>/register", methods=["GET", "POST"])
@throttle.registration_posts
def register(slug: str):
    """The registration form; a full ticket offers the waitlist."""
    convening = published_convening(slug)
    now = utcnow()
    service.expire_offers(convening.id, now=now)
    state = convening.registration_state(now)
    usage = service.seat_usage(convening.id)
    discount, code_problem = typed_discount(convening, now)
    rows = ticket_rows(convening, usage, now, discount)
    hosts = ranked_hosts(convening)
    form, bookable = _registration_form(convening, rows, hosts)
    already = pending = None
    just_taken = False
    offer_waitlist = any(r["state"] == "waitlist" for r in bookable) and not any(
        r["state"] == "available" for r in bookable)
    # "Apply" beside the code field re-shows the form with what the code does, keeping everything typed.
    applying = request.method == "POST" and bool(request.form.get("apply_code"))
    submitted = state == "open" and bookable and not applying and not session_lost() and form.validate_on_submit()
    show_code_problem(form, code_problem)
    if submitted and not code_problem:
        # "yes" is what forms shown before the ticket ids were carried sent.
        join = form.join_waitlist.data == "yes" or form.ticket_type_id.data in _waitlist_ids(form.join_waitlist.data)
        try:
            registration = service.register_attendee(
                convening.id, form.ticket_type_id.data, form.person_data(),
                answers_from(form, convening.questions), join_waitlist=join,
                host_ranking=ranking_from(form, hosts) if hosts else None,
                code=form.code.data, payment={**form.payment_data(), "organization": form.organization.data},
            )
        except ConveneError as error:
            if error.code in ("already_registered", "already_pending"):
                already = form.email.data
                pending = error.code == "already_pending"
            elif error.code == "sold_out" and error.details.get("waitlist"):
                # The seat this form was shown with went to someone else in between.
                offer_waitlist = just_taken = True
            elif error.field and hasattr(form, error.field):
                getattr(form, error.field).errors.append(error.message)
            else:
                flash(error.message, "error")
        else:
            if registration.status == Status.PENDING:
                order_page = url_for("payments.order_page", slug=slug, token=payments.order_token(registration.order))
                return checkout_redirect(registration.order, order_page)
            return redirect(url_for("public.registered", slug=slug, token=manage_token(registration)))
    chosen = next((r for r in rows if r["ticket"].id == form.ticket_type_id.data), None)
    if chosen and chosen["state"] == "waitlist":
        offer_waitlist = True
    # The form carries the tickets it shows as full, so choosing one of them joins its waitlist on the first submit.
    full = {r["ticket"].id for r in bookable if r["state"] == "waitlist"}
    if just_taken and chosen:
        full.add(chosen["ticket"].id)
    form.join_waitlist.data = ",".join(str(i) for i in sorted(full))
    needs_step_free = "step_free" in (form.accessibility_needs.data or [])
    return render_template(
        "public/register.html", convening=convening, form=form, state=state, tickets=rows, bookable=bookable,
        offer_waitlist=offer_waitlist, just_taken=just_taken, already=already, pending=pending, discount=discount,
        pay=payments.payment_options(convening), any_paid=any(r["price"].due_cents for r in bookable),
        link_form=ManageLinkForm(email=already) if already else None,
        hosts=hosts, rank_fields=rank_field_names(hosts), code_problem=code_problem,
        step_free_warnings=step_free_warnings(needs_step_free, form, rank_field_names(hosts), hosts),
    ), (409 if already else 200)


@bp.get("/c/<slug>/registered/<token>")
def registered(slug: str, token: str):
    """Confirmation page with the reference."""
    convening = published_convening(slug)
    try:
        registration = registration_from_token(convening, token)
    except ConveneError as error:
        flash(error.message, "error")
        return redirect(url_for("public.manage_link", slug=slug))
    return render_template("public/registered.html", convening=convening, registration=registration, token=token)


@bp.route("/c/<slug>/manage-link", methods=["GET", "POST"])
@throttle.manage_link_posts
def manage_link(slug: str):
    """Email the manage link again to someone who lost it."""
    convening = published_convening(slug)
    form = ManageLinkForm()
    if form.validate_on_submit():
        service.send_manage_link(convening.id, form.email.data,
                                 hourly_cap=throttle.setting("MANAGE_LINK_EMAILS_PER_HOUR"))
        # The same answer either way, so the form does not reveal who is registered.
        flash(gettext("If %(email)s is registered, a link to manage the registration is on its way.",
                      email=form.email.data), "success")
        return redirect(url_for("public.manage_link", slug=slug))
    return render_template("public/manage_link.html", convening=convening, form=form)


def _manage_context(slug: str, token: str):
    convening = published_convening(slug)
    try:
        return convening, registration_from_token(convening, token)
    except ConveneError as error:
        flash(error.message, "error")
        return convening, None


@bp.route("/c/<slug>/manage/<token>", methods=["GET", "POST"])
def manage(slug: str, token: str):
    """An attendee's own page: see and change details and answers, or cancel."""
    convening, registration = _manage_context(slug, token)
    if registration is None:
        return redirect(url_for("public.manage_link", slug=slug))
    form_class = add_interpretation_field(add_question_fields(ManageForm, convening.questions), convening)
    editable = registration.status not in ENDED
    if request.method == "POST":
        form = form_class()
    else:
        form = form_class(obj=registration, data=answers_to_form_data(registration, convening.questions))
    if editable and not session_lost() and form.validate_on_submit():
        try:
            service.update_registration(registration.id, form.person_data(), answers_from(form, convening.questions))
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(gettext("Your changes are saved."), "success")
            return redirect(url_for("public.manage", slug=slug, token=token))
    return _manage_page(convening, registration, token, form)


def _manage_page(convening: Convening, registration: Registration, token: str, form, ranking_form=None,
                 **program_options):
    """The manage page: status, details form, site visits and the personal agenda."""
    from convene.public.program import program_context  # program.py imports this module

    offer_url = (url_for("public.offer", slug=convening.slug, token=offer_token(registration))
                 if registration.status == Status.OFFERED else None)
    order = registration.order
    # A delegation's page can change every registration in it, so only the lead's own email carries it;
    # a one-person order's page is the registrant's own.
    order_link = (url_for("payments.order_page", slug=convening.slug, token=payments.order_token(order))
                  if order is not None and not order.is_group else None)
    return render_template(
        "public/manage.html", convening=convening, registration=registration, form=form, token=token,
        editable=registration.status not in ENDED, offer_url=offer_url, order_link=order_link,
        **_visits_context(convening, registration, ranking_form),
        **program_context(convening, registration, **program_options),
    )


def _ranking_form(convening: Convening, registration: Registration, hosts, formdata=True):
    form_class = add_ranking_fields(EmptyForm, hosts)
    if formdata:
        return form_class()
    return form_class(data=ranking_to_form_data(visit_service.ranking_for(registration.id), hosts))


def _visits_context(convening: Convening, registration: Registration, ranking_form=None) -> dict:
    """What the manage page shows about site visits: the published plan, or the ranking form."""
    hosts = ranked_hosts(convening) if registration.status in (Status.CONFIRMED, Status.OFFERED,
                                                                Status.WAITLISTED) else []
    if hosts and ranking_form is None:
        ranking_form = _ranking_form(convening, registration, hosts, formdata=False)
    return {
        "my_visits": visit_service.published_visits_for(registration.id) if convening.visits_published_at else [],
        "visit_hosts": hosts, "ranking_form": ranking_form if hosts else None,
        "rank_fields": rank_field_names(hosts),
        "step_free_warnings": step_free_warnings(registration.needs_step_free_access, ranking_form if hosts else None,
                                                 rank_field_names(hosts), hosts),
    }


@bp.post("/c/<slug>/manage/<token>/visits")
def rank_hosts(slug: str, token: str):
    """Save an attendee's ranking of the host organizations."""
    convening, registration = _manage_context(slug, token)
    if registration is None:
        return redirect(url_for("public.manage_link", slug=slug))
    hosts = ranked_hosts(convening)
    if not hosts:
        flash(gettext("Site-visit preferences are not open."), "error")
        return redirect(url_for("public.manage", slug=slug, token=token))
    form = _ranking_form(convening, registration, hosts)
    if form.validate_on_submit():
        try:
            visit_service.set_visit_preferences(registration.id, ranking_from(form, hosts))
        except ConveneError as error:
            flash(error.message, "error")
        else:
            flash(gettext("Your site-visit preferences are saved."), "success")
            return redirect(url_for("public.manage", slug=slug, token=token) + "#site-visits")
    # The details form shows what is stored, not this ranking POST (which would untick every checkbox).
    manage_form = add_interpretation_field(add_question_fields(ManageForm, convening.questions), convening)(
        formdata=None, obj=registration, data=answers_to_form_data(registration, convening.questions))
    return _manage_page(convening, registration, token, manage_form, ranking_form=form)


@bp.route("/c/<slug>/manage/<token>/cancel", methods=["GET", "POST"])
def cancel(slug: str, token: str):
    """Ask for confirmation, then cancel and free the seat."""
    convening, registration = _manage_context(slug, token)
    if registration is None:
        return redirect(url_for("public.manage_link", slug=slug))
    form = EmptyForm()
    if form.validate_on_submit():
        try:
            service.cancel_registration(registration.id)
        except ConveneError as error:
            flash(error.message, "error")
        else:
            flash(gettext("Your registration is cancelled and your seat has been released. A confirmation is on its way."),
                  "success")
        return redirect(url_for("public.manage", slug=slug, token=token))
    return render_template("public/cancel.html", convening=convening, registration=registration, form=form,
                           token=token)


@bp.route("/c/<slug>/offer/<token>", methods=["GET", "POST"])
def offer(slug: str, token: str):
    """A waitlisted person takes the seat held for them."""
    convening = published_convening(slug)
    service.expire_offers(convening.id)
    try:
        registration = registration_from_token(convening, token, purpose="offer")
    except ConveneError as error:
        return render_template("public/offer.html", convening=convening, registration=None, error=error.message,
                               form=None), 400
    form = EmptyForm()
    if form.validate_on_submit():
        try:
            registration = service.accept_offer(registration.id, payment_method=request.form.get("payment_method"))
        except ConveneError as error:
            flash(error.message, "error")
        else:
            if registration.status == Status.PENDING:
                order_page = url_for("payments.order_page", slug=slug, token=payments.order_token(registration.order))
                return checkout_redirect(registration.order, order_page)
            flash(gettext("The seat is yours. Your confirmation is on its way."), "success")
            return redirect(url_for("public.registered", slug=slug, token=manage_token(registration)))
        return redirect(url_for("public.offer", slug=slug, token=token))
    return render_template("public/offer.html", convening=convening, registration=registration, form=form,
                           error=None, manage_url=url_for("public.manage", slug=slug, token=manage_token(registration)),
                           pay=payments.payment_options(convening))
