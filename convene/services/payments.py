"""Paying for seats: orders, Stripe Checkout, webhooks, fulfilment, refunds, invoices, discount codes.

The rules that keep money and seats straight:
- an order's seats are held (registrations in PENDING) from the moment it is opened, under the
  same convening lock that counts seats, so a seat is never sold twice;
- fulfilment (`record_stripe_payment`) is one idempotent unit: a conditional update moves the order
  from pending to paid, so the confirmation emails and receipt happen once however many times the
  return page and the webhook call it, and at whatever moment;
- Stripe is called outside the database transaction, with idempotency keys derived from the order,
  so a retry (ours or the library's) never creates a second session or refund.
Lock order everywhere: convening, ticket types, discount code, order.
"""
from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext

from convene.errors import ConveneError
from convene.extensions import db
from convene.languages import localized
from convene.languages import localized
from convene.models import (
    ACTIVE,
    HOLDING_SEAT,
    CodeKind,
    Convening,
    DiscountCode,
    Order,
    OrderStatus,
    PaymentMethod,
    Refund,
    Registration,
    Status,
    StripeEvent,
    TicketType,
    utcnow,
)
from convene.models.payments import CreditNote
from convene.services import stripe_api
from convene.services.db import lock, unit_of_work
from convene.services.mail import queue_email
from convene.services.previews import Deletion, Effect, digest, plural
from convene.services.registrations import (
    REFERENCE_ALPHABET,
    _lock_for_seats,
    external_url,
    offer_seats_locked,
    queue_status_email,
    seat_usage,
)
from convene.services.tokens import make_stable_token, read_stable_token

log = logging.getLogger(__name__)

# A pending order is expired locally this long after its Stripe session expired, so a payment made
# in the session's last second (whose webhook may be a little late) is recorded first.
EXPIRY_GRACE = timedelta(minutes=5)
# Stripe refuses a checkout session that expires sooner than 30 minutes from now.
STRIPE_MIN_EXPIRY = timedelta(minutes=31)
# Metadata is free text to Stripe: only this names one of our orders.
_ORDER_ID = re.compile(r"[0-9]{1,10}")


# ---------------------------------------------------------------- links


def order_token(order: Order) -> str:
    # Stable, so the Checkout return addresses (and with them the idempotent request) never change.
    return make_stable_token("order", {"o": order.id, "v": order.token_version})


def order_from_token(convening: Convening, token: str) -> Order:
    """The order a signed link names; raises ConveneError when the link is bad."""
    payload = read_stable_token("order", token)
    order = db.session.get(Order, payload.get("o"))
    if order is None or order.convening_id != convening.id or payload.get("v") != order.token_version:
        raise ConveneError("link_invalid")
    return order


def order_url(order: Order) -> str:
    return external_url("payments.order_page", slug=order.convening.slug, token=order_token(order))


# ---------------------------------------------------------------- prices and codes


@dataclass(frozen=True)
class Price:
    """One seat's price at booking time."""

    list_cents: int
    discount_cents: int

    @property
    def due_cents(self) -> int:
        return self.list_cents - self.discount_cents


def normalize_code(code: str | None) -> str:
    return (code or "").strip().upper()


def check_code(convening_id: int, code: str | None, now: datetime) -> DiscountCode | None:
    """The code usable now, read without locking; raises why not (unknown, not yet valid, expired, used up).

    What the forms say as soon as a code is typed; `code_for_booking` re-checks under the lock.
    """
    text = normalize_code(code)
    if not text:
        return None
    discount = db.session.execute(
        sa.select(DiscountCode).where(DiscountCode.convening_id == convening_id, DiscountCode.code == text)
    ).scalar_one_or_none()
    if discount is None or not discount.active:
        raise ConveneError("code_invalid", field="code")
    if discount.valid_from and now < discount.valid_from:
        raise ConveneError("code_not_yet_valid", field="code")
    if discount.valid_until and now >= discount.valid_until:
        raise ConveneError("code_expired", field="code")
    if discount.max_uses is not None and code_uses(discount.id) >= discount.max_uses:
        raise ConveneError("code_used_up", field="code")
    return discount


def code_for_booking(convening: Convening, code: str | None, now: datetime) -> DiscountCode | None:
    """Under the convening lock: the valid code of that text, locked for counting its uses."""
    text = normalize_code(code)
    if not text:
        return None
    found = db.session.execute(
        sa.select(DiscountCode.id).where(DiscountCode.convening_id == convening.id, DiscountCode.code == text)
    ).scalar_one_or_none()
    rows = lock(DiscountCode, found) if found else []
    if not rows or not rows[0].active:
        raise ConveneError("code_invalid", field="code")
    discount = rows[0]
    if discount.valid_from and now < discount.valid_from:
        raise ConveneError("code_not_yet_valid", field="code")
    if discount.valid_until and now >= discount.valid_until:
        raise ConveneError("code_expired", field="code")
    return discount


def code_uses(code_id: int) -> int:
    """Seats booked with the code that are still active (a cancelled or expired one gives its use back)."""
    return db.session.execute(
        sa.select(sa.func.count()).select_from(Registration)
        .where(Registration.discount_code_id == code_id, Registration.status.in_(ACTIVE))
    ).scalar_one()


def check_code_uses(discount: DiscountCode | None, seats: int) -> None:
    if discount is None or discount.max_uses is None:
        return
    left = discount.max_uses - code_uses(discount.id)
    if seats > left:
        raise ConveneError("code_used_up" if left <= 0 else "code_not_enough_uses", field="code", left=left)


def ticket_allowed(convening: Convening, ticket: TicketType | None, discount: DiscountCode | None,
                   now: datetime) -> TicketType:
    """A ticket type someone may book from the public pages, hidden ones only with a code that unlocks them."""
    if ticket is None or ticket.convening_id != convening.id:
        raise ConveneError("ticket_unavailable", field="ticket_type_id")
    if ticket.hidden and not (discount is not None and discount.ticket_type_ids and ticket.id in discount.ticket_type_ids):
        raise ConveneError("ticket_unavailable", field="ticket_type_id")
    if not ticket.on_sale(now):
        raise ConveneError("ticket_not_on_sale", field="ticket_type_id")
    return ticket


def price_for(ticket: TicketType, discount: DiscountCode | None, now: datetime) -> Price:
    base = ticket.price_at(now)
    off = discount.discount_on(base) if discount is not None and discount.applies_to(ticket.id) else 0
    return Price(base, off)


def code_applies(discount: DiscountCode | None, tickets: list[TicketType]) -> None:
    """A discount code typed for tickets it does not cover is a mistake worth saying, not ignoring."""
    if discount is None or discount.kind == CodeKind.ACCESS:
        return
    if not any(discount.applies_to(t.id) for t in tickets):
        raise ConveneError("code_not_for_ticket", field="code")


def payment_method_for(convening: Convening, due_cents: int, requested: str | None) -> PaymentMethod | None:
    """How an amount due will be paid, or None when nothing is due; refuses what is not set up."""
    if due_cents <= 0:
        return None
    if requested == PaymentMethod.INVOICE:
        if not convening.invoice_enabled:
            raise ConveneError("invoice_not_offered", field="payment_method")
        return PaymentMethod.INVOICE
    if stripe_api.stripe_configured():
        return PaymentMethod.CARD
    if convening.invoice_enabled:
        raise ConveneError("card_not_set_up_use_invoice", field="payment_method")
    raise ConveneError("payment_not_set_up", field="ticket_type_id")


def payment_options(convening: Convening) -> dict:
    """What the registration forms offer: card when Stripe is set up, invoice when the convening allows it."""
    return {"card": stripe_api.stripe_configured(), "invoice": bool(convening.invoice_enabled)}


# ---------------------------------------------------------------- opening orders


def new_order_reference(convening: Convening) -> str:
    prefix = (convening.reference_prefix or "REG").upper()
    while True:
        reference = f"{prefix}-P{''.join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))}"
        if not db.session.execute(sa.select(Order.id).where(Order.reference == reference)).first():
            return reference


def open_order_locked(
    convening: Convening,
    registrations: list[Registration],
    buyer: dict,
    method: PaymentMethod,
    discount: DiscountCode | None,
    now: datetime,
    *,
    delegation_id: int | None = None,
    is_group: bool = False,
    send_email: bool = True,
) -> Order:
    """Under the convening lock: the order paying for these (already placed) registrations."""
    subtotal = sum(r.price_cents for r in registrations)
    discount_total = sum(r.discount_cents for r in registrations)
    order = Order(
        convening=convening, reference=new_order_reference(convening), method=method,
        buyer_name=(buyer.get("name") or "").strip()[:200], buyer_email=(buyer.get("email") or "").strip().lower(),
        buyer_organization=(buyer.get("organization") or "").strip()[:200],
        billing_address=(buyer.get("billing_address") or "").strip()[:500],
        po_number=(buyer.get("po_number") or "").strip()[:60],
        delegation_id=delegation_id, is_group=is_group, currency=convening.currency.upper(),
        subtotal_cents=subtotal, discount_cents=discount_total, total_cents=subtotal - discount_total,
        discount_code_id=discount.id if discount is not None else None,
    )
    if method == PaymentMethod.CARD:
        order.status = OrderStatus.PENDING
        order.hold_expires_at = now + timedelta(minutes=hold_minutes())
    elif method == PaymentMethod.INVOICE:
        order.status = OrderStatus.INVOICED
        convening.invoice_counter = (convening.invoice_counter or 0) + 1
        order.invoice_number = f"{(convening.reference_prefix or 'REG').upper()}-{now.year}-{convening.invoice_counter:04d}"
        order.invoice_issued_at = now
        due_days = 30 if convening.invoice_due_days is None else convening.invoice_due_days
        order.invoice_due_on = convening.local(now).date() + timedelta(days=due_days)
    else:
        order.status = OrderStatus.PAID
        order.paid_at = now
    db.session.add(order)
    for registration in registrations:
        registration.order = order
    db.session.flush()
    if method == PaymentMethod.INVOICE and send_email:
        queue_email("invoice", order.buyer_email,
                    lambda: gettext("Invoice %(number)s for %(convening)s", number=order.invoice_number,
                                    convening=localized(convening, "name")), "invoice",
                    order=order, convening=convening, order_url=order_url(order),
                    attachments=[{"kind": "invoice", "order_id": order.id}])
    elif is_group and method == PaymentMethod.FREE:  # card orders tell the lead once paid, with the receipt
        queue_email("group_registered", order.buyer_email,
                    lambda: gettext("Your delegation is registered for %(convening)s",
                                    convening=localized(convening, "name")),
                    "group_registered", order=order, convening=convening, order_url=order_url(order))
    return order


def hold_minutes() -> int:
    """Minutes a seat is held at checkout, kept within what Stripe accepts (30 minutes to 24 hours)."""
    return min(max(int(current_app.config.get("CHECKOUT_HOLD_MINUTES", 35)), 31), 24 * 60)


# ---------------------------------------------------------------- Stripe Checkout


def checkout_params(order: Order) -> dict:
    """The Checkout Session for an order: built only from the order, so a retry sends the same request."""
    convening = order.convening
    lines: dict[tuple[int, int], list[Registration]] = {}
    for registration in order.registrations:
        if registration.status != Status.PENDING:
            continue
        lines.setdefault((registration.ticket_type_id, registration.price_cents - registration.discount_cents),
                         []).append(registration)
    line_items = []
    for (_, unit), people in sorted(lines.items()):
        ticket = people[0].ticket_type
        # What the buyer reads on Stripe's page, in the language they were buying in.
        name = f"{localized(ticket, 'name')} — {localized(convening, 'name')}"
        if people[0].discount_cents:
            name += f" (code {order.discount_code.code})" if order.discount_code else " (discounted)"
        line_items.append({
            "quantity": len(people),
            "price_data": {"currency": order.currency.lower(), "unit_amount": unit,
                           "product_data": {"name": name[:250]}},
        })
    token = order_token(order)
    metadata = {"order_id": str(order.id), "order_reference": order.reference, "convening": convening.slug}
    if len(order.registrations) == 1:
        metadata["registration_id"] = str(order.registrations[0].id)
        metadata["registration_reference"] = order.registrations[0].reference
    else:
        metadata["registration_ids"] = ",".join(str(r.id) for r in order.registrations)[:500]
    return {
        "mode": "payment",
        "line_items": line_items,
        "customer_email": order.buyer_email,
        "client_reference_id": order.reference,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata, "description": f"{convening.name} — {order.reference}"},
        # Stripe fills in {CHECKOUT_SESSION_ID}; url_for would escape the braces, so it is appended as text.
        "success_url": external_url("payments.checkout_return", slug=convening.slug, token=token)
        + "?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": external_url("payments.order_page", slug=convening.slug, token=token) + "?checkout=cancelled",
        "expires_at": int(order.hold_expires_at.timestamp()),
    }


def start_checkout(order_id: int, *, now: datetime | None = None) -> str:
    """The Stripe Checkout address for a pending order, creating the session once (idempotently)."""
    now = now or utcnow()
    order = db.session.get(Order, order_id)
    if order is None or order.status != OrderStatus.PENDING:
        raise ConveneError("order_not_payable")
    if order.stripe_session_id and order.hold_expires_at and order.hold_expires_at > now:
        return order.stripe_session_url
    if not order.hold_expires_at or order.hold_expires_at - now < STRIPE_MIN_EXPIRY:
        # No session was made yet (Stripe was down) and the hold is too short for a new one: extend it.
        with unit_of_work():
            _, order = _order_to_change(order_id)
            if order.status != OrderStatus.PENDING:
                raise ConveneError("order_not_payable")
            order.hold_expires_at = now + timedelta(minutes=hold_minutes())
    params = checkout_params(order)
    # One key per order and hold: a retry of the same request returns the session made the first time.
    key = f"convene-checkout-{order.reference}-{params['expires_at']}"
    session = stripe_api.create_checkout_session(params, key)
    with unit_of_work():
        stored = db.session.execute(
            sa.update(Order).where(Order.id == order_id, Order.status == OrderStatus.PENDING)
            .values(stripe_session_id=session["id"], stripe_session_url=session.get("url") or "")
            .execution_options(synchronize_session=False)
        ).rowcount
    if not stored:  # released or cancelled while Stripe was answering: nobody may pay this session
        expire_session_quietly(session["id"])
        raise ConveneError("order_not_payable")
    return session.get("url") or ""


def expire_session_quietly(session_id: str | None) -> None:
    """End a Checkout Session nobody should pay; if Stripe cannot be told, it expires on its own."""
    if not session_id:
        return
    try:
        stripe_api.expire_checkout_session(session_id)
    except ConveneError:
        log.warning("could not expire checkout session %s", session_id)


def confirm_from_return(order_id: int, session_id: str) -> Order:
    """The buyer is back from Stripe: read the session and record the payment if it is paid."""
    order = db.session.get(Order, order_id)
    if order is None:
        raise ConveneError("order_not_payable", status_code=404)
    if order.status in (OrderStatus.PENDING, OrderStatus.EXPIRED) and session_id:
        session = stripe_api.retrieve_checkout_session(session_id)
        if str((session.get("metadata") or {}).get("order_id")) == str(order.id):
            record_stripe_payment(session, source="return")
    db.session.rollback()
    return db.session.get(Order, order_id)


def _lock_order(order_id: int) -> tuple[Convening, Order] | tuple[None, None]:
    """Inside a unit of work: lock the order's convening (seats are counted under it), then the order."""
    order = db.session.get(Order, order_id)
    if order is None:
        return None, None
    convening, _ = _lock_for_seats(order.convening_id)
    return convening, lock(Order, order_id)[0]


def _order_to_change(order_id: int) -> tuple[Convening, Order]:
    convening, order = _lock_order(order_id)
    if order is None:
        raise ConveneError("order_not_found", status_code=404)
    return convening, order


def record_stripe_payment(session: dict, *, source: str = "webhook", now: datetime | None = None) -> str:
    """Fulfil an order from a Checkout Session, exactly once; returns what happened.

    Called by the return page and by the webhook, possibly at the same moment: the order row is
    locked and moved from pending to paid by a conditional update, so only one caller confirms the
    registrations and queues the emails; the other finds it paid and does nothing.
    """
    now = now or utcnow()
    order_id = _order_id_of(session)
    if order_id is None:
        return "unknown_order"
    with unit_of_work():
        convening, order = _lock_order(order_id)
        if order is None:
            return "unknown_order"
        payment_intent = session.get("payment_intent")
        if isinstance(payment_intent, dict):
            payment_intent = payment_intent.get("id")
        if payment_intent and not order.stripe_payment_intent_id:
            order.stripe_payment_intent_id = payment_intent
        if session.get("payment_status") not in ("paid", "no_payment_required"):
            if order.status == OrderStatus.PENDING and session.get("status") == "complete":
                order.status = OrderStatus.PROCESSING  # a bank debit on its way: keep holding the seats
                order.hold_expires_at = None
                return "processing"
            return "not_paid"
        amount, currency = session.get("amount_total"), (session.get("currency") or "").upper()
        if order.status in (OrderStatus.PAID, OrderStatus.REVIEW):
            if payment_intent and order.stripe_payment_intent_id and payment_intent != order.stripe_payment_intent_id:
                # A second Checkout of the same order was paid too: never keep money silently.
                order.status, order.flag = OrderStatus.REVIEW, "second_payment"
                order.flag_detail = (f"A second payment ({payment_intent}, {amount} {currency}) arrived for this "
                                     "order; refund it from the Stripe dashboard.")[:500]
                log.warning("order %s paid twice (%s)", order.reference, payment_intent)
                return "flagged"
            return "already_recorded"
        if order.status == OrderStatus.CANCELLED:
            _flag(order, "paid_after_cancel", "The payment arrived after the order was cancelled; refund it.",
                  paid=amount or 0)
            return "flagged"
        if amount != order.total_cents or currency != order.currency:
            _flag(order, "amount_mismatch", f"Stripe reported {amount} {currency}; the order is for "
                                            f"{order.total_cents} {order.currency}.", paid=amount or 0)
            return "flagged"
        seats = [r for r in order.registrations if r.status in (Status.PENDING, Status.EXPIRED)]
        if order.status == OrderStatus.EXPIRED and not _seats_free_again(convening, seats):
            _flag(order, "paid_after_expiry", "The payment arrived after the seat hold expired and the seats "
                                              "were taken; refund it or add the seats by hand.", paid=amount)
            return "flagged"
        claimed = db.session.execute(
            sa.update(Order)
            .where(Order.id == order.id, Order.status.in_(
                (OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.EXPIRED)))
            .values(status=OrderStatus.PAID, paid_cents=amount, paid_at=now, hold_expires_at=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            return "already_recorded"
        db.session.refresh(order)
        _confirm_seats(convening, order, seats, now)
        queue_email("payment_received", order.buyer_email, receipt_subject(convening, order),
                    "payment_received", order=order, convening=convening, order_url=order_url(order),
                    attachments=[{"kind": "receipt", "order_id": order.id}])
        log.info("order %s paid (%s)", order.reference, source)
        return "paid"


def _order_id_of(session: dict) -> int | None:
    """Our order behind a Checkout Session: by its session id, or by metadata that also names the reference.

    The webhook sees every event of the Stripe account; a session some other tool made with an
    `order_id` in its metadata must not touch our orders.
    """
    if session.get("id"):
        found = db.session.execute(
            sa.select(Order.id).where(Order.stripe_session_id == session["id"])).scalar_one_or_none()
        if found is not None:
            return found
    metadata = session.get("metadata") or {}
    raw = str(metadata.get("order_id") or "")
    if not _ORDER_ID.fullmatch(raw) or int(raw) > 2**31 - 1:  # str.isdigit() also takes "²", which int() refuses
        return None
    reference = db.session.execute(sa.select(Order.reference).where(Order.id == int(raw))).scalar_one_or_none()
    if reference is None or reference not in (session.get("client_reference_id"), metadata.get("order_reference")):
        return None
    return int(raw)


def _flag(order: Order, flag: str, detail: str, *, paid: int) -> None:
    order.status = OrderStatus.REVIEW
    order.flag, order.flag_detail = flag, detail[:500]
    order.paid_cents = max(order.paid_cents, int(paid))
    order.paid_at = order.paid_at or utcnow()
    order.hold_expires_at = None
    log.warning("order %s flagged for review: %s", order.reference, detail)


def _seats_free_again(convening: Convening, seats: list[Registration]) -> bool:
    """Whether expired seats can all be taken back now (a payment that arrived after its hold ended)."""
    pending_again = [r for r in seats if r.status == Status.EXPIRED]
    if not pending_again:
        return bool(seats)
    usage = seat_usage(convening.id)
    by_ticket = dict(usage.by_ticket)
    total = usage.total
    for registration in pending_again:
        ticket = registration.ticket_type
        if convening.capacity is not None and total >= convening.capacity:
            return False
        if ticket.capacity is not None and by_ticket.get(ticket.id, 0) >= ticket.capacity:
            return False
        total += 1
        by_ticket[ticket.id] = by_ticket.get(ticket.id, 0) + 1
    return True


def _confirm_seats(convening: Convening, order: Order, seats: list[Registration], now: datetime) -> None:
    for registration in seats:
        registration.status = Status.CONFIRMED
        registration.confirmed_at = now
        queue_status_email(registration)


# ---------------------------------------------------------------- holds that end without payment


def expire_order(order_id: int, *, reason: str = "expired", session_id: str | None = None,
                 now: datetime | None = None) -> bool:
    """Release a pending order's seats (checkout expired, failed or abandoned) and offer them on."""
    now = now or utcnow()
    with unit_of_work():
        convening, order = _lock_order(order_id)
        if order is None:
            return False
        if session_id and order.stripe_session_id and session_id != order.stripe_session_id:
            return False  # an older session of this order ended; the current one is still open
        if order.status not in (OrderStatus.PENDING, OrderStatus.PROCESSING):
            return False
        _release_locked(convening, order, reason, now)
        db.session.flush()
        offer_seats_locked(convening, now)
    return True


def _release_locked(convening: Convening, order: Order, reason: str, now: datetime) -> None:
    order.status = OrderStatus.CANCELLED if reason == "released" else OrderStatus.EXPIRED
    order.hold_expires_at = None
    for registration in order.registrations:
        if registration.status == Status.PENDING:
            registration.status = Status.EXPIRED
            registration.cancelled_at = now
    if reason != "released":
        queue_email("hold_expired", order.buyer_email,
                    lambda: gettext("Your held seat at %(convening)s was released", convening=localized(convening, "name")),
                    "hold_expired", order=order, convening=convening, reason=reason,
                    register_url=external_url("public.register", slug=convening.slug))


def expire_overdue_holds_locked(convening: Convening, now: datetime) -> int:
    """Under the convening lock: expire pending orders whose checkout ended a while ago; the caller offers seats on."""
    overdue = db.session.execute(
        sa.select(Order).where(
            Order.convening_id == convening.id, Order.status == OrderStatus.PENDING,
            Order.hold_expires_at <= now - EXPIRY_GRACE,
        ).order_by(Order.id).with_for_update()
    ).scalars().all()
    for order in overdue:
        _release_locked(convening, order, "expired", now)
    return len(overdue)


def overdue_holds_query(now: datetime, convening_id: int | None = None):
    """SELECT of the convenings (or just this one) with a pending order whose checkout ended more than the grace ago."""
    query = sa.select(Order.convening_id).where(Order.status == OrderStatus.PENDING,
                                                Order.hold_expires_at <= now - EXPIRY_GRACE).distinct()
    if convening_id is not None:
        query = query.where(Order.convening_id == convening_id)
    return query


def release_order(order_id: int) -> Order:
    """The buyer gives up paying: end the Stripe session (or record it if it was paid after all), free the seats."""
    order = db.session.get(Order, order_id)
    if order is None or order.status != OrderStatus.PENDING:
        raise ConveneError("order_not_payable")
    if order.stripe_session_id:
        try:
            stripe_api.expire_checkout_session(order.stripe_session_id)
        except ConveneError:
            session = stripe_api.retrieve_checkout_session(order.stripe_session_id)
            if session.get("status") == "complete":
                record_stripe_payment(session, source="release")
                raise ConveneError("order_already_paid") from None
            if session.get("status") == "open":
                raise
    with unit_of_work():
        convening, order = _order_to_change(order_id)
        if order.status == OrderStatus.PENDING:
            _release_locked(convening, order, "released", utcnow())
            db.session.flush()
            offer_seats_locked(convening, utcnow())
    return order


# ---------------------------------------------------------------- webhooks

HANDLED_EVENTS = (
    "checkout.session.completed", "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed", "checkout.session.expired", "charge.refunded",
)


# What a webhook body must look like before any handler reads it. Stripe ids are short ASCII; an
# amount must fit the Integer columns (no Convene order is for more).
_STRIPE_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_EVENT_TYPE = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_MAX_CENTS = 2**31 - 1


def _is_id(value, *, optional: bool = True) -> bool:
    return (optional and value is None) or (isinstance(value, str) and _STRIPE_ID.fullmatch(value) is not None)


def _is_cents(value) -> bool:
    return value is None or (type(value) is int and 0 <= value <= _MAX_CENTS)


def _is_text(value) -> bool:
    return value is None or isinstance(value, str)


def _event_problem(event) -> str | None:
    """What makes a verified webhook body unfit for the handlers, or None: every field they read, checked."""
    if not isinstance(event, dict):
        return "not a JSON object"
    if not _is_id(event.get("id"), optional=False):
        return "no usable id"
    if not (isinstance(event.get("type"), str) and _EVENT_TYPE.fullmatch(event["type"])):
        return "no usable type"
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        return "data.object is not an object"
    obj = data["object"]
    if event["type"].startswith("checkout.session."):
        metadata = obj.get("metadata")
        intent = obj.get("payment_intent")
        checks = {
            "id": _is_id(obj.get("id")),
            "metadata": metadata is None or (isinstance(metadata, dict) and _is_text(metadata.get("order_id"))
                                             and _is_text(metadata.get("order_reference"))),
            "client_reference_id": _is_text(obj.get("client_reference_id")),
            "payment_intent": _is_id(intent) or (isinstance(intent, dict) and _is_id(intent.get("id"))),
            "payment_status": _is_text(obj.get("payment_status")),
            "status": _is_text(obj.get("status")),
            "amount_total": _is_cents(obj.get("amount_total")),
            "currency": obj.get("currency") is None or (isinstance(obj["currency"], str)
                                                        and _CURRENCY.fullmatch(obj["currency"]) is not None),
        }
    else:  # every other event is linked to an order by its object's payment intent, if it has one
        checks = {"payment_intent": _is_id(obj.get("payment_intent")),
                  "amount_refunded": event["type"] != "charge.refunded" or _is_cents(obj.get("amount_refunded"))}
    bad = [name for name, ok in checks.items() if not ok]
    return f"data.object.{bad[0]} is not what Stripe sends" if bad else None


def check_stripe_event(event) -> tuple[str, str, dict]:
    """The id, type and object of a verified webhook body, or a ConveneError (400) when it is malformed.

    A body can carry a valid signature and still be malformed (a leaked secret, a Stripe API change):
    it is refused here, once, before any handler or the database sees it, and logged.
    """
    problem = _event_problem(event)
    if problem is not None:
        event_id = event.get("id") if isinstance(event, dict) else None
        log.warning("malformed Stripe event %r refused: %s", str(event_id)[:80] if event_id else None, problem)
        raise ConveneError("webhook_payload_invalid", status_code=400)
    return event["id"], event["type"], event["data"]["object"]


def handle_stripe_event(event) -> str:
    """Process a verified webhook event once: its id is stored with what it did, in the same transaction."""
    event_id, kind, obj = check_stripe_event(event)
    try:
        with unit_of_work():
            record = StripeEvent(event_id=event_id, type=kind)
            db.session.add(record)
            db.session.flush()  # a re-delivered event stops here, on the unique constraint
            outcome = _dispatch(kind, obj)
            record.outcome = outcome[:60]
            record.order_id = _order_id_of(obj) if kind.startswith("checkout.session.") else _order_of_charge(obj)
    except sa.exc.IntegrityError:
        db.session.rollback()
        seen = db.session.execute(sa.select(StripeEvent.id).where(StripeEvent.event_id == event_id)).first()
        if seen is None:
            raise  # not a re-delivery: let Stripe retry it
        return "duplicate"
    return outcome


def _dispatch(kind: str, obj: dict) -> str:
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        return record_stripe_payment(obj, source="webhook")
    if kind in ("checkout.session.expired", "checkout.session.async_payment_failed"):
        order_id = _order_id_of(obj)
        if order_id is None:
            return "unknown_order"
        reason = "expired" if kind.endswith("expired") else "payment_failed"
        return "released" if expire_order(order_id, reason=reason, session_id=obj.get("id")) else "nothing_to_do"
    if kind == "charge.refunded":
        return record_refunded_charge(obj)
    return "ignored"


def _order_of_charge(charge: dict) -> int | None:
    """The one order paid by the charge's payment intent, or None."""
    intent = charge.get("payment_intent")
    if not intent:
        return None
    found = db.session.execute(
        sa.select(Order.id).where(Order.stripe_payment_intent_id == intent).limit(2)).scalars().all()
    if len(found) > 1:
        # Only a forged or garbled checkout event can give two orders one intent; refund neither blindly.
        log.warning("payment intent %s is on orders %s; not acting on it", intent, found)
        return None
    return found[0] if found else None


def record_refunded_charge(charge: dict) -> str:
    """Stripe says how much of a charge is refunded in all: take it (refunds made in Stripe's dashboard too)."""
    order_id = _order_of_charge(charge)
    if order_id is None:
        return "unknown_order"
    with unit_of_work():
        order = lock(Order, order_id)[0]
        refunded = min(int(charge.get("amount_refunded") or 0), order.paid_cents)
        if refunded <= order.refunded_cents:
            return "already_recorded"
        order.refunded_cents = refunded
        return "refund_recorded"


# ---------------------------------------------------------------- refunds


def refund_order(order_id: int, amount_cents: int, *, reason: str = "", cancel: bool = False,
                 user_id: int | None = None) -> Refund:
    """Refund part or all of what an order paid: through Stripe for card payments, recorded for invoices."""
    with unit_of_work():
        _, order = _order_to_change(order_id)
        left = order.refundable_cents - sum(r.amount_cents for r in order.refunds if r.status == "pending")
        if amount_cents is None or amount_cents <= 0:
            raise ConveneError("refund_amount_invalid", field="amount")
        if amount_cents > left:
            raise ConveneError("refund_too_large", field="amount", left=f"{left / 100:,.2f}")
        via_stripe = order.method == PaymentMethod.CARD and bool(order.stripe_payment_intent_id)
        refund = Refund(order=order, amount_cents=amount_cents, reason=(reason or "").strip()[:300],
                        via_stripe=via_stripe, cancel_registrations=cancel, created_by_id=user_id)
        db.session.add(refund)
        db.session.flush()
        refund_id = refund.id
        if not via_stripe:
            _complete_refund_locked(order, refund, None)
            return refund
    return send_refund(refund_id)


def send_refund(refund_id: int) -> Refund:
    """Ask Stripe for a pending (or failed) refund, with the refund's own idempotency key."""
    refund = db.session.get(Refund, refund_id)
    if refund is None or refund.status == "succeeded":
        raise ConveneError("refund_not_pending")
    order = refund.order
    others = sum(r.amount_cents for r in order.refunds if r.status == "pending" and r.id != refund.id)
    if refund.status == "failed" and refund.amount_cents > order.refundable_cents - others:
        # Stripe may have made it after all (charge.refunded counted it) or another refund took the room.
        raise ConveneError("refund_retry_too_large")
    params = {"payment_intent": order.stripe_payment_intent_id, "amount": refund.amount_cents,
              "metadata": {"order_id": str(order.id), "order_reference": order.reference, "refund_id": str(refund.id)}}
    try:
        answer = stripe_api.create_refund(params, refund.idempotency_key)
    except ConveneError as error:
        with unit_of_work():
            db.session.execute(sa.update(Refund).where(Refund.id == refund_id, Refund.status != "succeeded")
                               .values(status="failed", error=error.message[:500]))
        raise
    with unit_of_work():
        _, order = _order_to_change(refund.order_id)
        refund = db.session.get(Refund, refund_id)
        if answer.get("status") in ("failed", "canceled"):
            refund.status, refund.error = "failed", f"Stripe reports the refund {answer.get('status')}."
        elif refund.status != "succeeded":
            _complete_refund_locked(order, refund, answer.get("id"))
    return refund


def _complete_refund_locked(order: Order, refund: Refund, stripe_refund_id: str | None) -> None:
    refund.status = "succeeded"
    refund.error = ""
    refund.stripe_refund_id = stripe_refund_id
    refund.completed_at = utcnow()
    # A charge.refunded webhook may have counted this refund already; never count it twice.
    done_before = sum(r.amount_cents for r in order.refunds if r.status == "succeeded" and r.id != refund.id)
    order.refunded_cents = min(order.paid_cents, max(order.refunded_cents, done_before + refund.amount_cents))
    convening = order.convening
    if refund.cancel_registrations:
        _cancel_order_locked(convening, order, utcnow())
    queue_email("refunded", order.buyer_email,
                lambda: gettext("Refund for %(convening)s (%(reference)s)", convening=localized(convening, "name"),
                                reference=order.reference), "refunded",
                order=order, convening=convening, refund=refund, order_url=order_url(order))


# ---------------------------------------------------------------- seats settled by organizers


class Settlement(StrEnum):
    """How a seat an organizer adds or imports on a paid ticket is settled."""

    INVOICE = "invoice"  # an order with a numbered invoice, outstanding
    PAID = "paid"  # paid outside Convene; a note says how
    COMP = "comp"  # given for nothing

    @property
    def label(self) -> str:
        return SETTLEMENT_LABELS[self]


SETTLEMENT_LABELS = {
    Settlement.INVOICE: "Invoice",
    Settlement.PAID: "Paid elsewhere",
    Settlement.COMP: "Complimentary",
}


def settle_seat_locked(convening: Convening, registration: Registration, settlement: str, note: str, now: datetime,
                       *, send_email: bool = True) -> Order | None:
    """Under the convening and ticket-type locks: the order of a seat an organizer placed on a paid ticket.

    None for a free ticket (nothing to settle). The invoice is numbered from the convening's counter,
    so invoices made in one batch are consecutive.
    """
    ticket = registration.ticket_type
    list_cents = ticket.price_at(now)
    registration.discount_cents, registration.discount_code_id = 0, None
    if list_cents <= 0:
        registration.price_cents = 0
        return None
    try:
        settlement = Settlement(settlement)
    except ValueError:
        raise ConveneError("settlement_invalid", field="settlement") from None
    note = " ".join((note or "").split())[:300]
    if settlement == Settlement.PAID and not note:
        raise ConveneError("settlement_note_required", field="payment_note")
    buyer = {"name": registration.full_name, "email": registration.email, "organization": registration.organization}
    if settlement == Settlement.COMP:
        registration.price_cents = 0
        return open_order_locked(convening, [registration], buyer, PaymentMethod.COMP, None, now)
    registration.price_cents = list_cents
    if settlement == Settlement.INVOICE:
        return open_order_locked(convening, [registration], buyer, PaymentMethod.INVOICE, None, now,
                                 send_email=send_email)
    order = open_order_locked(convening, [registration], buyer, PaymentMethod.OFFLINE, None, now)
    order.paid_cents = order.total_cents
    order.payment_note = note
    return order


DESK_METHODS = {"cash": "Cash", "terminal": "Card terminal", "cheque": "Cheque", "transfer": "Bank transfer"}


def record_desk_payment(order_id: int, method: str, amount_cents: int | None, *, note: str = "",
                        user_id: int | None = None, now: datetime | None = None) -> Order:
    """Staff record money taken at the desk against what an invoice still owes; a receipt goes to the buyer.

    Part of the balance may be paid (paid_cents grows, the invoice stays outstanding); the order is
    paid once nothing is left after credit notes and payments.
    """
    from convene.printing.receipts import format_amount

    now = now or utcnow()
    if method not in DESK_METHODS:
        raise ConveneError("desk_method_invalid", field="method")
    if amount_cents is None or amount_cents <= 0:
        raise ConveneError("amount_invalid", field="amount")
    with unit_of_work():
        convening, order = _order_to_change(order_id)
        if order.status != OrderStatus.INVOICED or order.balance_cents <= 0:
            raise ConveneError("desk_nothing_outstanding")
        if amount_cents > order.balance_cents:
            raise ConveneError("desk_amount_over_balance", field="amount",
                               balance=format_amount(order.balance_cents, order.currency))
        order.paid_cents += amount_cents
        order.paid_at = now
        entry = f"{DESK_METHODS[method]} at the desk, {format_amount(amount_cents, order.currency)}"
        note = " ".join((note or "").split())
        entry += f" ({note})" if note else ""
        order.payment_note = "; ".join(part for part in (order.payment_note, entry) if part)[-300:]  # the newest stays
        if order.balance_cents == 0:
            order.status = OrderStatus.PAID
        queue_email("payment_received", order.buyer_email, receipt_subject(convening, order),
                    "payment_received", order=order, convening=convening, order_url=order_url(order),
                    attachments=[{"kind": "receipt", "order_id": order.id}])
    log.info("desk payment of %s on order %s recorded by user %s", amount_cents, order.reference, user_id)
    return order


# ---------------------------------------------------------------- invoices and review


def mark_invoice_paid(order_id: int, *, note: str = "", user_id: int | None = None,
                      now: datetime | None = None) -> Order:
    """An organizer records that an invoice was paid in full; a receipt goes to the buyer."""
    now = now or utcnow()
    with unit_of_work():
        convening, order = _order_to_change(order_id)
        if order.status != OrderStatus.INVOICED:
            raise ConveneError("invoice_not_outstanding")
        order.status = OrderStatus.PAID
        order.paid_cents = order.total_cents - order.credited_cents  # credit notes took the rest off
        order.paid_at = now
        order.payment_note = (note or "").strip()[:300]
        queue_email("payment_received", order.buyer_email, receipt_subject(convening, order),
                    "payment_received", order=order, convening=convening, order_url=order_url(order),
                    attachments=[{"kind": "receipt", "order_id": order.id}])
    return order


def accept_flagged_order(order_id: int, *, now: datetime | None = None) -> Order:
    """An organizer accepts a payment flagged for review: the seats are confirmed if they are still free."""
    now = now or utcnow()
    with unit_of_work():
        convening, order = _order_to_change(order_id)
        if order.status != OrderStatus.REVIEW:
            raise ConveneError("order_not_in_review")
        if order.flag in ("paid_after_cancel", "second_payment"):
            raise ConveneError("seats_taken_refund")
        seats = [r for r in order.registrations if r.status in (Status.PENDING, Status.EXPIRED)]
        if not _seats_free_again(convening, seats) and any(r.status == Status.EXPIRED for r in seats):
            raise ConveneError("seats_taken_refund")
        order.status = OrderStatus.PAID
        order.flag_detail = f"Accepted by an organizer: {order.flag_detail}"[:500]
        _confirm_seats(convening, order, seats, now)
        queue_email("payment_received", order.buyer_email, receipt_subject(convening, order),
                    "payment_received", order=order, convening=convening, order_url=order_url(order),
                    attachments=[{"kind": "receipt", "order_id": order.id}])
    return order


def cancel_order(order_id: int, *, now: datetime | None = None, expected: str | None = None) -> Order:
    """An organizer cancels an unpaid order (an invoice never paid, a checkout left open): its seats go back.

    With `expected` (the token of the confirmed preview), refuse if the order or its seats changed since.
    """
    cancel_order_as_previewed(order_id, now=now, expected=expected)
    return db.session.get(Order, order_id)


def _order_cancellation(convening: Convening, order: Order) -> Deletion:
    """What cancelling the order does, read from the same rules `_cancel_order_locked` follows."""
    from convene.templating import money

    blocked = None
    if order.status not in (OrderStatus.INVOICED, OrderStatus.PENDING, OrderStatus.PROCESSING) or order.paid_cents:
        blocked = ConveneError("order_not_cancellable")
    seats = sorted(order.registrations, key=lambda r: (r.sort_key, r.id))
    quiet = [r for r in seats if r.status == Status.PENDING]
    told = [r for r in seats if r.status in (Status.CONFIRMED, Status.OFFERED, Status.WAITLISTED)]
    effects = []
    if told:
        one = len(told) == 1
        effects.append(Effect("told", f"{plural(len(told), 'person', 'people')} {'loses' if one else 'lose'} their "
                              f"registration and {'is' if one else 'are'} emailed that it is cancelled",
                              [r.full_name for r in told]))
    if quiet:
        effects.append(Effect("quiet", f"{plural(len(quiet), 'seat')} waiting for payment "
                              f"{'ends' if len(quiet) == 1 else 'end'} without an email (never confirmed)",
                              [r.full_name for r in quiet]))
    owed = order.total_cents - order.credited_cents - order.paid_cents
    if order.status == OrderStatus.INVOICED and order.invoice_number and owed > 0:
        effects.append(Effect("credit", f"Invoice {order.invoice_number} is voided by a credit note for the "
                              f"{money(owed, convening.currency)} still owed, sent to {order.buyer_email}"))
    if order.status == OrderStatus.PENDING and order.stripe_session_id:
        effects.append(Effect("checkout", "Its open card checkout is closed, so it can no longer be paid"))
    if told or quiet:
        effects.append(Effect("seats", "The seats go back, to the waitlist first"))
    return Deletion(kind="order", name=order.reference, verb="cancel", effects=effects, blocked=blocked,
                    token=digest("order", order.id, order.status, order.paid_cents, order.credited_cents,
                                 [(r.id, r.status) for r in seats]),
                    done=f"Order {order.reference} is cancelled and its seats are released"
                    + (f"; {plural(len(told), 'person was', 'people were')} emailed." if told else "."))


def order_cancellation(order_id: int) -> Deletion:
    """What cancelling an order would do now, or why it cannot be cancelled, for its confirmation page."""
    order = db.session.get(Order, order_id)
    if order is None:
        raise ConveneError("order_not_found", status_code=404)
    return _order_cancellation(order.convening, order)


def cancel_order_as_previewed(order_id: int, *, now: datetime | None = None, expected: str | None = None) -> Deletion:
    """`cancel_order`, answering the preview it carried out (its `done` says what happened)."""
    now = now or utcnow()
    with unit_of_work():
        convening, order = _order_to_change(order_id)
        cancellation = _order_cancellation(convening, order)
        cancellation.check(expected)
        session_id = order.stripe_session_id if order.status == OrderStatus.PENDING else None
        _cancel_order_locked(convening, order, now)
    expire_session_quietly(session_id)
    return cancellation


def _cancel_order_locked(convening: Convening, order: Order, now: datetime) -> None:
    """Under the lock: end every seat of the order and offer them on; an order not (fully) settled is cancelled.

    Seats still waiting for payment were never confirmed, so they end quietly; confirmed people are told.
    An unpaid invoice is voided by a credit note for what was left on it, sent to the buyer.
    """
    from convene.services.registrations import cancel_locked

    leaving = [r for r in order.registrations if r.status in HOLDING_SEAT or r.status == Status.WAITLISTED]
    note = credit_invoice_locked(convening, order, leaving, now)
    buyer_told = False
    for registration in order.registrations:
        if registration.status == Status.PENDING:
            registration.status, registration.cancelled_at = Status.EXPIRED, now
        elif registration.status in HOLDING_SEAT or registration.status == Status.WAITLISTED:
            attach = note is not None and not buyer_told and registration.email == order.buyer_email
            cancel_locked(convening, registration, now, by_attendee=False, credit_note=note if attach else None)
            buyer_told = buyer_told or attach
    if note is not None and not buyer_told:
        queue_credit_note_email(convening, order, note)
    if order.status in (OrderStatus.INVOICED, OrderStatus.REVIEW, OrderStatus.PENDING, OrderStatus.PROCESSING):
        order.status = OrderStatus.CANCELLED
    order.hold_expires_at = None
    db.session.flush()
    offer_seats_locked(convening, now)


# ---------------------------------------------------------------- credit notes


def credit_note_number(convening: Convening, sequence: int, now: datetime) -> str:
    """A credit note's number: its own series beside the invoices', e.g. TOR-CN-2026-0001."""
    return f"{(convening.reference_prefix or 'REG').upper()}-CN-{now.year}-{sequence:04d}"


def credit_invoice_locked(convening: Convening, order: Order, leaving: list[Registration],
                          now: datetime) -> CreditNote | None:
    """Under the convening then order locks, before `leaving` are cancelled: credit their seats on an unpaid invoice.

    Each seat is credited at its price after its share of the discount, and comes off what is owed.
    When no seat is left the rest of the invoice is credited and the order is void (cancelled), so a
    rounding difference never leaves a few cents outstanding. Returns the note, or None when the
    order is not an unpaid invoice or nothing is left to credit. Paid orders are refunded instead.
    """
    if order.status != OrderStatus.INVOICED:
        return None
    leaving_ids = {r.id for r in leaving}
    staying = [r for r in order.registrations if r.id not in leaving_ids and r.status in HOLDING_SEAT]
    still_owed = order.total_cents - order.credited_cents - order.paid_cents
    credited_seats = [r for r in order.registrations if r.id in leaving_ids]
    if staying:
        amount = min(still_owed, sum(max(0, r.price_cents - r.discount_cents) for r in credited_seats))
    else:
        amount = still_owed
        order.status = OrderStatus.CANCELLED
    if amount <= 0 or not order.invoice_number:
        return None
    sequence = (db.session.execute(
        sa.select(sa.func.max(CreditNote.sequence)).where(CreditNote.convening_id == convening.id)
    ).scalar_one() or 0) + 1
    seats = [{"ticket": r.ticket_type.name, "name": r.full_name, "reference": r.reference,
              "cents": max(0, r.price_cents - r.discount_cents)} for r in credited_seats]
    note = CreditNote(order=order, convening_id=convening.id, sequence=sequence,
                      number=credit_note_number(convening, sequence, now), invoice_number=order.invoice_number,
                      amount_cents=amount, seats=seats, voids_invoice=not staying, issued_at=now)
    db.session.add(note)
    order.credited_cents += amount
    db.session.flush()
    log.info("credit note %s for %s on invoice %s", note.number, amount, order.invoice_number)
    return note


def credit_note_attachment(note: CreditNote) -> dict:
    """How the outbox names a credit note to attach (rendered when the email goes out)."""
    return {"kind": "credit_note", "order_id": note.order_id, "credit_note_id": note.id}


def receipt_subject(convening: Convening, order: Order):
    """The receipt email's subject, written in its recipient's language when the email is made."""
    return lambda: gettext("Receipt for %(convening)s (%(reference)s)", convening=localized(convening, "name"),
                           reference=order.reference)


def queue_credit_note_email(convening: Convening, order: Order, note: CreditNote) -> None:
    """Send the buyer a credit note on its own (when the buyer is not one of the people cancelled)."""
    queue_email("credit_note", order.buyer_email,
                lambda: gettext("Credit note %(number)s for invoice %(invoice)s (%(convening)s)", number=note.number,
                                invoice=note.invoice_number, convening=localized(convening, "name")), "credit_note",
                order=order, convening=convening, credit_note=note, order_url=order_url(order),
                attachments=[credit_note_attachment(note)])
