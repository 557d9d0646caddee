"""Registering, editing, cancelling, and moving people through the waitlist.

Every function that writes is one unit of work: lock the convening (then ticket types, by id),
re-check capacity under the lock, write, commit. Emails are queued in the same transaction and
delivered after the commit.
"""
from __future__ import annotations

import logging
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app, has_request_context, url_for
from flask_babel import gettext

from convene.errors import ConveneError
from convene.extensions import db
from convene.languages import INTERPRETATION_LANGUAGES, localized
from convene.models import (
    ACCESSIBILITY_NEEDS,
    ACTIVE,
    BADGE_FIELDS,
    DIETARY_NEEDS,
    ENDED,
    HOLDING_SEAT,
    PERSON_FIELDS,
    Order,
    OrderStatus,
    Answer,
    Convening,
    Delegation,
    Registration,
    Role,
    Status,
    TicketType,
    utcnow,
)
from convene.services.db import lock, unit_of_work
from convene.services.mail import queue_email, queue_email_data, recipient_language, register_renderer
from convene.services.tokens import manage_token, offer_token
from convene.text import delegation_key

log = logging.getLogger(__name__)

REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud at a desk
ADMIN_FIELDS = ("role", "delegation_id", "ticket_type_id")


@dataclass(frozen=True)
class SeatUsage:
    """How many seats are held, in total and per ticket type, and how many wait."""

    total: int
    by_ticket: dict[int, int]
    waitlist: int

    def seats_left(self, convening: Convening, ticket: TicketType) -> int | None:
        """Seats still free for this ticket type; None when neither limit applies."""
        limits = []
        if convening.capacity is not None:
            limits.append(convening.capacity - self.total)
        if ticket.capacity is not None:
            limits.append(ticket.capacity - self.by_ticket.get(ticket.id, 0))
        return max(0, min(limits)) if limits else None


def seat_usage(convening_id: int) -> SeatUsage:
    """Count seats held per ticket type in one query."""
    rows = db.session.execute(
        sa.select(Registration.ticket_type_id, Registration.status, sa.func.count())
        .where(Registration.convening_id == convening_id)
        .group_by(Registration.ticket_type_id, Registration.status)
    ).all()
    by_ticket: Counter[int] = Counter()
    waitlist = 0
    for ticket_id, status, count in rows:
        if status in HOLDING_SEAT:
            by_ticket[ticket_id] += count
        elif status == Status.WAITLISTED:
            waitlist += count
    return SeatUsage(total=sum(by_ticket.values()), by_ticket=dict(by_ticket), waitlist=waitlist)


def has_seat(usage: SeatUsage, convening: Convening, ticket: TicketType) -> bool:
    left = usage.seats_left(convening, ticket)
    return left is None or left > 0


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def new_reference(convening: Convening) -> str:
    """A short reference like TOR-7K3QX that is not yet taken."""
    prefix = (convening.reference_prefix or "REG").upper()
    while True:
        reference = f"{prefix}-{''.join(secrets.choice(REFERENCE_ALPHABET) for _ in range(5))}"
        taken = db.session.execute(sa.select(Registration.id).where(Registration.reference == reference)).first()
        if not taken:
            return reference


def external_url(endpoint: str, **values) -> str:
    """An absolute URL for an email: on CONVENE_BASE_URL when set, else the request's own address.

    Outside a request (the command line, background threads) only CONVENE_BASE_URL or SERVER_NAME
    can say where the site lives; without either the local development address is used.
    """
    base = current_app.config.get("BASE_URL")
    if has_request_context():
        return base.rstrip("/") + url_for(endpoint, **values) if base else url_for(endpoint, _external=True, **values)
    if not base and current_app.config.get("SERVER_NAME"):
        return url_for(endpoint, _external=True, **values)
    if not base:
        log.warning("CONVENE_BASE_URL is not set; emailed links point at http://127.0.0.1:5000")
    with current_app.test_request_context(base_url=base or "http://127.0.0.1:5000"):
        return url_for(endpoint, _external=True, **values)


def manage_url(registration: Registration) -> str:
    return external_url(
        "public.manage", slug=registration.convening.slug, token=manage_token(registration)
    )


def _lock_for_seats(convening_id: int, *ticket_ids: int) -> tuple[Convening, dict[int, TicketType]]:
    """Lock the convening and then its ticket types, always in that order."""
    convenings = lock(Convening, convening_id)
    if not convenings:
        raise ConveneError("convening_not_found", status_code=404)
    tickets = {t.id: t for t in lock(TicketType, *ticket_ids)} if ticket_ids else {}
    return convenings[0], tickets


def _clean_person(data: dict) -> dict:
    clean = {k: data[k] for k in PERSON_FIELDS if k in data}
    for key, value in list(clean.items()):
        if isinstance(value, str):
            clean[key] = value.strip()
    if "email" in clean:
        clean["email"] = normalize_email(clean["email"])
    if "dietary_needs" in clean:
        clean["dietary_needs"] = [c for c in DIETARY_NEEDS if c in (clean["dietary_needs"] or [])]
    if "accessibility_needs" in clean:
        clean["accessibility_needs"] = [c for c in ACCESSIBILITY_NEEDS if c in (clean["accessibility_needs"] or [])]
    return clean


def _language_fields(convening: Convening, person: dict, *, new: bool = False) -> dict:
    """The person's language (one the convening offers, else its default) and the interpretation asked
    for (among what the convening offers), from what a form sent; a new registration always gets a language."""
    clean: dict = {}
    language = person.get("language")
    if language in (convening.languages or []):
        clean["language"] = language
    elif new:
        clean["language"] = convening.default_language
    if "interpretation_needs" in person:
        asked = set(person.get("interpretation_needs") or [])
        clean["interpretation_needs"] = [code for code in convening.interpretation_languages or []
                                         if code in asked and code in INTERPRETATION_LANGUAGES]
    return clean


def _write_answers(registration: Registration, answers: dict[int, object]) -> None:
    if not answers:  # nothing to write: neither the answers nor the questions need loading
        return
    existing = {a.question_id: a for a in registration.answers}
    valid_ids = {q.id for q in registration.convening.questions}
    for question_id, value in answers.items():
        if question_id not in valid_ids:
            continue
        if value in (None, "", []):
            if question_id in existing:
                registration.answers.remove(existing[question_id])
            continue
        if question_id in existing:
            existing[question_id].value = value
        else:
            registration.answers.append(Answer(question_id=question_id, value=value))


def _existing(convening_id: int, email: str) -> Registration | None:
    return db.session.execute(
        sa.select(Registration).where(Registration.convening_id == convening_id, Registration.email == email)
    ).scalar_one_or_none()


def register_attendee(
    convening_id: int,
    ticket_type_id: int,
    person: dict,
    answers: dict[int, object] | None = None,
    *,
    join_waitlist: bool = False,
    host_ranking: list[int] | None = None,
    code: str | None = None,
    payment: dict | None = None,
    now: datetime | None = None,
) -> Registration:
    """Register someone from the public form: a seat if one is free, else the waitlist if asked.

    A ticket with something to pay holds its seat in an order: until the card payment is made
    (status pending), or confirmed at once with an invoice when `payment["method"]` is "invoice".
    """
    from convene.services import payments

    now = now or utcnow()
    payment = payment or {}
    # Drawn before the lock: a fresh reference is not a question of seats (the column is unique besides).
    known = db.session.get(Convening, convening_id)
    reference = new_reference(known) if known is not None else None
    with unit_of_work():
        convening, tickets = _lock_for_seats(convening_id, ticket_type_id)
        _check_open(convening, now)
        discount = payments.code_for_booking(convening, code, now)
        ticket = payments.ticket_allowed(convening, tickets.get(ticket_type_id), discount, now)
        payments.code_applies(discount, [ticket])
        price = payments.price_for(ticket, discount, now)
        method = payments.payment_method_for(convening, price.due_cents, payment.get("method"))
        payments.check_code_uses(discount, 1)
        _sweep_locked(convening, now)
        registration = _place(convening, ticket, person, answers or {}, now=now, join_waitlist=join_waitlist,
                              source="online", reference=reference,
                              seat_status=Status.PENDING if method == payments.PaymentMethod.CARD else Status.CONFIRMED,
                              price_cents=price.list_cents, discount_cents=price.discount_cents,
                              discount_code_id=discount.id if discount is not None else None)
        if registration.status != Status.WAITLISTED and (method is not None or price.discount_cents):
            buyer = {"name": registration.full_name, "email": registration.email,
                     "organization": payment.get("organization") or registration.organization, **payment}
            payments.open_order_locked(convening, [registration], buyer, method or payments.PaymentMethod.FREE,
                                       discount, now)
        if host_ranking and convening.visit_preferences_open:
            from convene.services.visits import write_preferences

            write_preferences(registration, host_ranking)
    return registration


def register_delegation(
    convening_id: int,
    lead: dict,
    delegation_name: str,
    delegates: list[dict],
    *,
    code: str | None = None,
    payment: dict | None = None,
    now: datetime | None = None,
):
    """A delegation lead registers several delegates at once and pays once for all; all or nothing.

    `delegates` are person dicts with a "ticket_type_id". Returns the order, whose registrations
    each get their own confirmation and manage link.
    """
    from convene.services import payments

    now = now or utcnow()
    payment = payment or {}
    if not delegates:
        raise ConveneError("group_empty")
    emails = [normalize_email(d.get("email", "")) for d in delegates]
    repeated = next((e for e in emails if emails.count(e) > 1), None)
    if repeated:
        raise ConveneError("group_email_repeated", email=repeated)
    ticket_ids = sorted({int(d["ticket_type_id"]) for d in delegates})
    with unit_of_work():
        convening, tickets = _lock_for_seats(convening_id, *ticket_ids)
        _check_open(convening, now)
        discount = payments.code_for_booking(convening, code, now)
        chosen = [payments.ticket_allowed(convening, tickets.get(t), discount, now) for t in ticket_ids]
        payments.code_applies(discount, chosen)
        prices = {t.id: payments.price_for(t, discount, now) for t in chosen}
        wanted = Counter(int(d["ticket_type_id"]) for d in delegates)
        _sweep_locked(convening, now)
        _check_group_fits(convening, tickets, wanted)
        due = sum(prices[t].due_cents * n for t, n in wanted.items())
        method = payments.payment_method_for(convening, due, payment.get("method"))
        if discount is not None:
            payments.check_code_uses(discount, sum(n for t, n in wanted.items() if discount.applies_to(t)))
        delegation = _group_delegation(convening, delegation_name)
        seat_status = Status.PENDING if method == payments.PaymentMethod.CARD else Status.CONFIRMED
        placed = []
        for index, person in enumerate(delegates):
            ticket = tickets[int(person["ticket_type_id"])]
            try:
                registration = _place(convening, ticket, person, {}, now=now, join_waitlist=False, source="group",
                                      delegation_id=delegation.id if delegation else None, seat_status=seat_status)
            except ConveneError as error:
                raise ConveneError(error.code, f"Delegate {index + 1}: {error.message}", field=f"row-{index}") from None
            price = prices[ticket.id]
            registration.price_cents, registration.discount_cents = price.list_cents, price.discount_cents
            registration.discount_code_id = discount.id if discount is not None and discount.applies_to(ticket.id) else None
            placed.append(registration)
        buyer = {**payment, **lead}
        return payments.open_order_locked(convening, placed, buyer, method or payments.PaymentMethod.FREE, discount,
                                          now, delegation_id=delegation.id if delegation else None, is_group=True)


def _check_open(convening: Convening, now: datetime) -> None:
    state = convening.registration_state(now)
    if not convening.published or state == "closed":
        raise ConveneError("registration_closed")
    if state == "not_yet":
        raise ConveneError("registration_not_open")


def _check_group_fits(convening: Convening, tickets: dict[int, TicketType], wanted: Counter) -> None:
    """A group takes seats all together or not at all; say how many are left when they do not fit."""
    usage = seat_usage(convening.id)
    if convening.capacity is not None and usage.total + sum(wanted.values()) > convening.capacity:
        raise ConveneError("group_too_big", left=max(0, convening.capacity - usage.total), ticket="this convening")
    for ticket_id, count in wanted.items():
        ticket = tickets[ticket_id]
        if ticket.capacity is not None and usage.by_ticket.get(ticket_id, 0) + count > ticket.capacity:
            raise ConveneError("group_too_big", left=max(0, ticket.capacity - usage.by_ticket.get(ticket_id, 0)),
                               ticket=ticket.name)


def add_registration(
    convening_id: int,
    ticket_type_id: int,
    person: dict,
    answers: dict[int, object] | None = None,
    *,
    role: str = Role.DELEGATE,
    delegation_id: int | None = None,
    send_email: bool = True,
    settlement: str = "invoice",
    payment_note: str = "",
    now: datetime | None = None,
) -> Registration:
    """Add a registration by hand: any ticket type, no sale window, capacity still enforced.

    On a ticket with a price the seat gets its order, settled as `settlement` (see
    payments.Settlement): an invoice, paid elsewhere (`payment_note` says how), or complimentary.
    """
    from convene.services import payments

    now = now or utcnow()
    with unit_of_work():
        convening, tickets = _lock_for_seats(convening_id, ticket_type_id)
        ticket = tickets.get(ticket_type_id)
        if ticket is None or ticket.convening_id != convening.id:
            raise ConveneError("ticket_unavailable", field="ticket_type_id")
        _sweep_locked(convening, now)
        registration = _place(convening, ticket, person, answers or {}, now=now, join_waitlist=False,
                              source="admin", role=role, delegation_id=delegation_id, send_email=send_email,
                              full_code="comp_over_capacity")
        payments.settle_seat_locked(convening, registration, settlement, payment_note, now, send_email=send_email)
    return registration


def _sweep_locked(convening: Convening, now: datetime) -> None:
    """Under the lock, before placing anyone: end overdue offers and holds, and offer free seats to people
    already waiting, who go before newcomers."""
    lapse_overdue_offers(convening, now)
    offer_seats_locked(convening, now)


def _place(
    convening: Convening,
    ticket: TicketType,
    person: dict,
    answers: dict[int, object],
    *,
    now: datetime,
    join_waitlist: bool,
    source: str,
    role: str = Role.DELEGATE,
    delegation_id: int | None = None,
    send_email: bool = True,
    full_code: str = "sold_out",
    seat_status: str = Status.CONFIRMED,
    reference: str | None = None,
    **fields,
) -> Registration:
    """Under the convening lock, after `_sweep_locked`: take a seat (as `seat_status`) or a waitlist place,
    and queue the email that says so. `fields` (price, discount) are written with the rest, in the one INSERT."""
    clean = _clean_person(person)
    registration = _existing(convening.id, clean["email"])
    if registration is not None and registration.status in ACTIVE:
        code = "already_pending" if registration.status == Status.PENDING else "already_registered"
        raise ConveneError(code, field="email", registration_id=registration.id, email=clean["email"])

    usage = seat_usage(convening.id)
    if has_seat(usage, convening, ticket):
        status = seat_status
    elif join_waitlist and convening.waitlist_enabled:
        status = Status.WAITLISTED
    else:
        raise ConveneError(full_code if (source != "online" or convening.waitlist_enabled) else "sold_out_no_waitlist",
                           field="ticket_type_id", waitlist=convening.waitlist_enabled)

    if registration is None:
        registration = Registration(convening=convening, reference=reference or new_reference(convening), answers=[])
        db.session.add(registration)
    else:  # a cancelled, lapsed or expired registration comes back to life with the same reference
        registration.answers.clear()
        registration.token_version += 1
        registration.cancelled_at = registration.offer_expires_at = None
        registration.order_id = registration.discount_code_id = None
        registration.price_cents = registration.discount_cents = 0
    clean.update(_language_fields(convening, person, new=True))
    for key, value in clean.items():
        setattr(registration, key, value)
    registration.ticket_type = ticket
    registration.role = role
    registration.delegation_id = delegation_id
    registration.source = source
    registration.status = status
    for key, value in fields.items():
        setattr(registration, key, value)
    if status == Status.CONFIRMED:
        registration.confirmed_at = now
    elif status == Status.WAITLISTED:
        registration.waitlisted_at = now
    db.session.flush()
    _write_answers(registration, answers)
    if send_email and status != Status.PENDING:  # a held seat is confirmed by email once it is paid
        queue_status_email(registration)
    return registration


def queue_status_email(registration: Registration) -> None:
    """Queue the email saying a registration is confirmed, or waitlisted; the delivery job renders it."""
    convening = registration.convening
    if registration.status == Status.CONFIRMED:
        def subject():
            return gettext("You are registered for %(convening)s (%(reference)s)",
                           convening=localized(convening, "name"), reference=registration.reference)
        kind = "confirmation"
    else:
        def subject():
            return gettext("You are on the waitlist for %(convening)s", convening=localized(convening, "name"))
        kind = "waitlisted"
    queue_email_data(kind, registration.email, subject, registration)


def status_email(message) -> tuple[str, dict, str]:
    """What a confirmation or waitlist email is rendered from: (template, context, language).

    The template is the email's kind; the registration's stored language decides the language.
    """
    registration = db.session.get(Registration, message.registration_id)
    if registration is None:
        raise ConveneError("link_invalid")  # erased or deleted since: nothing to say to anyone
    convening = registration.convening
    context = {"registration": registration, "convening": convening, "manage_url": manage_url(registration)}
    return message.kind, context, recipient_language(registration, context)


register_renderer("confirmation", status_email)
register_renderer("waitlisted", status_email)


def update_registration(
    registration_id: int,
    person: dict,
    answers: dict[int, object] | None = None,
    *,
    admin_changes: dict | None = None,
) -> Registration:
    """Change someone's details and answers; organizers may also change role, delegation and ticket."""
    with unit_of_work():
        registration = db.session.get(Registration, registration_id)
        if registration is None:
            raise ConveneError("convening_not_found", status_code=404)
        admin_changes = {k: v for k, v in (admin_changes or {}).items() if k in ADMIN_FIELDS}
        new_ticket_id = admin_changes.get("ticket_type_id")
        ticket_ids = [new_ticket_id] if new_ticket_id and new_ticket_id != registration.ticket_type_id else []
        convening, tickets = _lock_for_seats(registration.convening_id, *ticket_ids)
        db.session.refresh(registration)
        clean = _clean_person(person)
        if "email" in clean and clean["email"] != registration.email:
            other = _existing(convening.id, clean["email"])
            if other is not None:
                raise ConveneError("already_registered", field="email")
        if ticket_ids:
            ticket = tickets.get(new_ticket_id)
            if ticket is None or ticket.convening_id != convening.id:
                raise ConveneError("ticket_unavailable", field="ticket_type_id")
            if registration.status in HOLDING_SEAT and not has_seat(seat_usage(convening.id), convening, ticket):
                raise ConveneError("comp_over_capacity", field="ticket_type_id")
        badge_before = [getattr(registration, f) for f in BADGE_FIELDS]
        clean.update(_language_fields(convening, person))
        for key, value in clean.items():
            setattr(registration, key, value)
        for key, value in admin_changes.items():
            setattr(registration, key, value)
        if [getattr(registration, f) for f in BADGE_FIELDS] != badge_before:
            registration.badge_changed_at = utcnow()
        _write_answers(registration, answers or {})
        if ticket_ids:
            db.session.flush()
            offer_seats_locked(convening, utcnow())
    return registration


def cancel_registration(registration_id: int, *, by_attendee: bool = True, now: datetime | None = None) -> Registration:
    """Cancel a registration, free its seat and offer it to the waitlist; an unpaid invoice is credited for the seat."""
    now = now or utcnow()
    ended_session = None
    with unit_of_work():
        registration = db.session.get(Registration, registration_id)
        if registration is None:
            raise ConveneError("convening_not_found", status_code=404)
        convening, _ = _lock_for_seats(registration.convening_id)
        db.session.refresh(registration)
        if registration.status in ENDED:
            raise ConveneError("not_cancellable")
        if registration.status == Status.PENDING and registration.order is not None \
                and len(registration.order.registrations) > 1:
            # One delegate leaving would leave the open Checkout charging for them; the order goes as a whole.
            raise ConveneError("pending_group_seat")
        order = registration.order
        note = None
        if order is not None:
            from convene.services import payments

            order = lock(Order, order.id)[0]  # lock order: convening, (ticket types,) order
            # An unpaid invoice must not go on asking for this seat's price: credit it (the last seat voids it).
            note = payments.credit_invoice_locked(convening, order, [registration], now)
        buyer_told = note is not None and registration.email == order.buyer_email
        cancel_locked(convening, registration, now, by_attendee=by_attendee, credit_note=note if buyer_told else None)
        if note is not None and not buyer_told:
            payments.queue_credit_note_email(convening, order, note)
        if order is not None and order.status == OrderStatus.PENDING and not any(
                r.status in HOLDING_SEAT for r in order.registrations):
            order.status, order.hold_expires_at = OrderStatus.CANCELLED, None  # nothing left to pay for
            ended_session = order.stripe_session_id
        db.session.flush()
        offer_seats_locked(convening, now)
    if ended_session:  # so the buyer cannot pay for a seat that is gone
        from convene.services.payments import expire_session_quietly

        expire_session_quietly(ended_session)
    return registration


def cancel_locked(convening: Convening, registration: Registration, now: datetime, *, by_attendee: bool,
                  credit_note=None) -> None:
    """Under the convening lock: cancel one registration and queue its email; the caller offers seats on.

    `credit_note`, when given, goes with the email (the person cancelled is the buyer of its invoice).
    """
    registration.status = Status.CANCELLED
    registration.cancelled_at = now
    registration.offer_expires_at = None
    from convene.services.visits import release_visits

    release_visits(registration.id)  # their site-visit places go back to the working plan
    attachments = None
    if credit_note is not None:
        from convene.services.payments import credit_note_attachment

        attachments = [credit_note_attachment(credit_note)]
    queue_email("cancelled", registration.email,
                lambda: gettext("Your registration for %(convening)s is cancelled", convening=localized(convening, "name")),
                "cancelled", registration=registration, convening=convening, by_attendee=by_attendee,
                register_url=external_url("public.register", slug=convening.slug), credit_note=credit_note,
                attachments=attachments)


def accept_offer(registration_id: int, *, payment_method: str | None = None,
                 now: datetime | None = None) -> Registration:
    """Turn a held waitlist offer into a confirmed seat (or one held for payment), if it has not lapsed."""
    now = now or utcnow()
    with unit_of_work():
        registration = db.session.get(Registration, registration_id)
        if registration is None:
            raise ConveneError("offer_not_active", status_code=404)
        convening, _ = _lock_for_seats(registration.convening_id)
        lapse_overdue_offers(convening, now)
        db.session.refresh(registration)
        if registration.status == Status.LAPSED:
            raise ConveneError("offer_expired")
        if registration.status != Status.OFFERED:
            raise ConveneError("offer_not_active")
        registration.offer_expires_at = None
        due = registration.price_cents - registration.discount_cents
        from convene.services import payments

        method = payments.payment_method_for(convening, due, payment_method)
        if method is None:
            registration.status = Status.CONFIRMED
            registration.confirmed_at = now
            queue_status_email(registration)
            return registration
        # A paid ticket: the offered seat is held while it is paid, or confirmed with an invoice.
        registration.status = Status.PENDING if method == payments.PaymentMethod.CARD else Status.CONFIRMED
        if registration.status == Status.CONFIRMED:
            registration.confirmed_at = now
            queue_status_email(registration)
        buyer = {"name": registration.full_name, "email": registration.email,
                 "organization": registration.organization}
        payments.open_order_locked(convening, [registration], buyer, method, registration.discount_code, now)
    return registration


def expire_offers(convening_id: int | None = None, *, now: datetime | None = None) -> int:
    """Lapse waitlist offers past their deadline and pass the seats on; returns how many lapsed."""
    now = now or utcnow()
    query = sa.select(Registration.convening_id).where(
        Registration.status == Status.OFFERED, Registration.offer_expires_at <= now
    ).distinct()
    if convening_id is not None:
        query = query.where(Registration.convening_id == convening_id)
    from convene.services.payments import overdue_holds_query

    # One statement for both: every view of the registration form asks.
    due = set(db.session.execute(sa.union(query, overdue_holds_query(now, convening_id))).scalars())
    lapsed = 0
    for cid in sorted(due):
        with unit_of_work():
            convening, _ = _lock_for_seats(cid)
            lapsed += lapse_overdue_offers(convening, now)
    return lapsed


def lapse_overdue_offers(convening: Convening, now: datetime) -> int:
    """Under the lock: lapse overdue offers and end overdue payment holds, then offer their seats on."""
    from convene.services.payments import expire_overdue_holds_locked

    released = expire_overdue_holds_locked(convening, now)
    overdue = db.session.execute(
        sa.select(Registration).where(
            Registration.convening_id == convening.id,
            Registration.status == Status.OFFERED,
            Registration.offer_expires_at <= now,
        )
    ).scalars().all()
    for registration in overdue:
        registration.status = Status.LAPSED
        queue_email("offer_lapsed", registration.email,
                    lambda: gettext("Your held seat at %(convening)s was released",
                                    convening=localized(convening, "name")),
                    "offer_lapsed", registration=registration, convening=convening,
                    register_url=external_url("public.register", slug=convening.slug))
    if overdue or released:
        db.session.flush()
        offer_seats_locked(convening, now)
    return len(overdue) + released


def offer_seats_locked(convening: Convening, now: datetime) -> list[Registration]:
    """Under the lock: offer free seats to waitlisted people, first come first offered."""
    if not convening.waitlist_enabled:
        return []
    waiting = db.session.execute(
        sa.select(Registration)
        .where(Registration.convening_id == convening.id, Registration.status == Status.WAITLISTED)
        .order_by(Registration.waitlisted_at, Registration.id)
    ).scalars().all()
    if not waiting:
        return []
    usage = seat_usage(convening.id)
    total, by_ticket = usage.total, dict(usage.by_ticket)
    hold = timedelta(hours=current_app.config["WAITLIST_HOLD_HOURS"])
    offered = []
    for registration in waiting:
        if convening.capacity is not None and total >= convening.capacity:
            break
        ticket = registration.ticket_type
        if ticket.capacity is not None and by_ticket.get(ticket.id, 0) >= ticket.capacity:
            continue
        registration.status = Status.OFFERED
        registration.offer_expires_at = now + hold
        total += 1
        by_ticket[ticket.id] = by_ticket.get(ticket.id, 0) + 1
        offered.append(registration)
        queue_email("offer", registration.email,
                    lambda: gettext("A seat at %(convening)s is held for you", convening=localized(convening, "name")),
                    "offer",
                    registration=registration, convening=convening,
                    offer_url=external_url("public.offer", slug=convening.slug, token=offer_token(registration)),
                    expires_local=convening.local(registration.offer_expires_at))
    return offered


def offer_freed_seats(convening_id: int) -> list[Registration]:
    """Offer seats freed by a capacity increase to the waitlist."""
    with unit_of_work():
        convening, _ = _lock_for_seats(convening_id)
        return offer_seats_locked(convening, utcnow())


def send_manage_link(convening_id: int, email: str, *, hourly_cap: int | None = None) -> bool:
    """Email the manage link to a registered address; False when nobody with it is registered.

    With `hourly_cap` (the public form's), nothing is sent either when the address already had that
    many manage-link emails in the last hour: the form must not become a way to flood an inbox.
    """
    from convene.models import OutboxMessage

    with unit_of_work():
        registration = _existing(convening_id, normalize_email(email))
        if registration is None or registration.status in (Status.CANCELLED,):
            return False
        if hourly_cap is not None:
            # Locked, so concurrent requests for one registration count one after another.
            registration = lock(Registration, registration.id)[0]
            sent = db.session.execute(
                sa.select(sa.func.count()).select_from(OutboxMessage).where(
                    OutboxMessage.kind == "manage_link", OutboxMessage.to_address == registration.email,
                    OutboxMessage.created_at >= utcnow() - timedelta(hours=1))
            ).scalar_one()
            if sent >= hourly_cap:
                return False
        convening = registration.convening
        queue_email("manage_link", registration.email,
                    lambda: gettext("Your registration for %(convening)s", convening=localized(convening, "name")),
                    "manage_link", registration=registration, convening=convening,
                    manage_url=manage_url(registration))
    return True


def new_delegations_allowed(convening) -> bool:
    """Whether the group form may name a delegation the organizers have not set up.

    Yes when the organizers switched it on (`allow_new_delegations`), and also while the convening
    has no delegations at all, so a brand new convening's first lead is never stuck with an empty list.
    """
    return convening.allow_new_delegations or not db.session.execute(
        sa.select(Delegation.id).where(Delegation.convening_id == convening.id).limit(1)).first()


def _group_delegation(convening, name: str) -> Delegation | None:
    """Under the lock: the delegation a group joins; a name matching none is refused once delegations exist."""
    if not delegation_key(name):
        return None
    delegation = find_delegation(convening.id, name)
    if delegation is None and not new_delegations_allowed(convening):
        raise ConveneError("delegation_unknown", field="delegation_choice")
    return delegation or find_or_create_delegation(convening.id, name)


def find_delegation(convening_id: int, name: str) -> Delegation | None:
    """The convening's delegation whose name matches by delegation_key (case, accents, punctuation ignored)."""
    key = delegation_key(name)
    if not key:
        return None
    # Matched in Python: neither database folds accents and punctuation the way delegation_key does.
    for delegation in db.session.execute(
        sa.select(Delegation).where(Delegation.convening_id == convening_id).order_by(Delegation.id)
    ).scalars():
        if delegation_key(delegation.name) == key:
            return delegation
    return None


def find_or_create_delegation(convening_id: int, name: str) -> Delegation:
    """Inside a unit of work: the delegation matching that name by delegation_key, made if new."""
    name = " ".join(name.split())
    delegation = find_delegation(convening_id, name)
    if delegation is None:
        delegation = Delegation(convening_id=convening_id, name=name)
        db.session.add(delegation)
        db.session.flush()
    return delegation
