"""Read-only numbers and lists about money for the back office: totals, orders, codes, the CSV export.

Each report runs a fixed handful of grouped queries whatever the number of orders, so a page of
50 orders costs what a page of 5 does.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from convene.extensions import db
from convene.models import (
    ACTIVE,
    Convening,
    DiscountCode,
    Order,
    OrderStatus,
    PaymentMethod,
    Refund,
    Registration,
    StripeEvent,
)
from convene.services.convenings import cents_to_price
from convene.services.exports import BOM, csv_safe

# Orders whose total is still owed or was paid: expired and cancelled ones owe nothing.
LIVE = (OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.PAID, OrderStatus.INVOICED, OrderStatus.REVIEW)


def needs_review():
    """Orders an organizer must look at: money that did not match, or a refund that failed to go out."""
    failed_refund = sa.select(Refund.id).where(Refund.order_id == Order.id, Refund.status == "failed").exists()
    return sa.or_(Order.status == OrderStatus.REVIEW, failed_refund)


def outstanding_invoice():
    return Order.status == OrderStatus.INVOICED


@dataclass(frozen=True)
class StatusTotal:
    status: OrderStatus
    count: int = 0
    total_cents: int = 0
    paid_cents: int = 0
    refunded_cents: int = 0
    credited_cents: int = 0


@dataclass
class PaymentTotals:
    """A convening's orders summed: what is owed, paid, refunded, credited and still outstanding.

    Credit notes come off what is owed: outstanding = total − credited − paid, on outstanding invoices.
    """

    currency: str
    by_status: dict[str, StatusTotal] = field(default_factory=dict)
    orders: int = 0
    owed_cents: int = 0
    paid_cents: int = 0
    refunded_cents: int = 0
    credited_cents: int = 0
    outstanding_cents: int = 0
    outstanding_count: int = 0
    review_count: int = 0

    @property
    def net_cents(self) -> int:
        return self.paid_cents - self.refunded_cents


def payment_totals(convening: Convening) -> PaymentTotals:
    """Counts and sums per order status, and the orders needing review, in one grouped query."""
    totals = PaymentTotals(currency=convening.currency)
    rows = db.session.execute(
        sa.select(Order.status, sa.func.count(), sa.func.coalesce(sa.func.sum(Order.total_cents), 0),
                  sa.func.coalesce(sa.func.sum(Order.paid_cents), 0),
                  sa.func.coalesce(sa.func.sum(Order.refunded_cents), 0),
                  sa.func.coalesce(sa.func.sum(sa.case((needs_review(), 1), else_=0)), 0),
                  sa.func.coalesce(sa.func.sum(Order.credited_cents), 0))
        .where(Order.convening_id == convening.id)
        .group_by(Order.status)
    ).all()
    for status in OrderStatus:
        totals.by_status[status.value] = StatusTotal(status)
    for status, count, total, paid, refunded, review, credited in rows:
        totals.review_count += int(review)
        if status not in totals.by_status:  # a status this code does not know: in the review count only
            continue
        totals.by_status[status] = StatusTotal(OrderStatus(status), count, int(total), int(paid), int(refunded),
                                               int(credited))
        totals.orders += count
        totals.paid_cents += int(paid)
        totals.refunded_cents += int(refunded)
        totals.credited_cents += int(credited)
        if status in LIVE:
            totals.owed_cents += int(total) - int(credited)
        if status == OrderStatus.INVOICED:
            totals.outstanding_cents += int(total) - int(credited) - int(paid)
            totals.outstanding_count += count
    return totals


# -- the orders list and one order -----------------------------------------------------------------

def orders_select(convening_id: int, where: Iterable = (), order_by: Iterable = ()) -> sa.Select:
    """Orders of a convening matching `where`, newest first, with their delegation and code joined."""
    return (
        sa.select(Order)
        .options(joinedload(Order.delegation), joinedload(Order.discount_code))
        .where(Order.convening_id == convening_id, *where)
        .order_by(*(order_by or (Order.created_at.desc(), Order.id.desc())))
    )


def registration_counts(order_ids: Iterable[int]) -> dict[int, int]:
    """Seats per order (every registration, cancelled ones too), in one grouped query."""
    ids = list(order_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(Registration.order_id, sa.func.count()).where(Registration.order_id.in_(ids))
        .group_by(Registration.order_id)
    ).all()
    return {order_id: count for order_id, count in rows}


def failed_refund_orders(order_ids: Iterable[int]) -> set[int]:
    ids = list(order_ids)
    if not ids:
        return set()
    return set(db.session.execute(
        sa.select(Refund.order_id).where(Refund.order_id.in_(ids), Refund.status == "failed").distinct()
    ).scalars())


def order_events(order_id: int) -> list[StripeEvent]:
    """The Stripe webhook events that named this order, oldest first."""
    return db.session.execute(
        sa.select(StripeEvent).where(StripeEvent.order_id == order_id)
        .order_by(StripeEvent.received_at, StripeEvent.id)
    ).scalars().all()


def refund_left(order: Order) -> int:
    """What can still be refunded: paid, less what was refunded or is on its way back."""
    in_flight = sum(r.amount_cents for r in order.refunds if r.status == "pending")
    return max(0, order.paid_cents - order.refunded_cents - in_flight)


# -- the CSV export --------------------------------------------------------------------------------

CSV_HEADERS = (
    "Reference", "Created", "Status", "Method", "Buyer name", "Buyer email", "Buyer organization", "Delegation",
    "Registrations", "Currency", "Subtotal", "Discount", "Code", "Total", "Paid", "Refunded", "Credited", "Balance",
    "Invoice number", "Invoice due", "Paid at", "Stripe payment intent", "Flag",
)


def _label(enum, value: str) -> str:
    try:
        return enum(value).label
    except ValueError:
        return value


def orders_csv(convening: Convening, where: Iterable = (), order_by: Iterable = ()) -> str:
    """The CSV text (with BOM) of the convening's orders matching `where`: amounts as plain decimals, in two queries."""
    where = list(where)
    orders = db.session.execute(orders_select(convening.id, where, order_by)).scalars().all()
    matching = sa.select(Order.id).where(Order.convening_id == convening.id, *where)
    seats = dict(db.session.execute(
        sa.select(Registration.order_id, sa.func.count()).where(Registration.order_id.in_(matching))
        .group_by(Registration.order_id)
    ).all())
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer)
    writer.writerow([csv_safe(h) for h in CSV_HEADERS])
    for o in orders:
        flag = " — ".join(part for part in (o.flag, o.flag_detail) if part)
        row = [
            o.reference, convening.local(o.created_at).isoformat(timespec="seconds"),
            _label(OrderStatus, o.status), _label(PaymentMethod, o.method), o.buyer_name, o.buyer_email,
            o.buyer_organization, o.delegation.name if o.delegation else "", seats.get(o.id, 0), o.currency,
            cents_to_price(o.subtotal_cents), cents_to_price(o.discount_cents),
            o.discount_code.code if o.discount_code else "", cents_to_price(o.total_cents),
            cents_to_price(o.paid_cents), cents_to_price(o.refunded_cents), cents_to_price(o.credited_cents),
            cents_to_price(o.balance_cents),
            o.invoice_number or "", o.invoice_due_on.isoformat() if o.invoice_due_on else "",
            convening.local(o.paid_at).isoformat(timespec="seconds") if o.paid_at else "",
            o.stripe_payment_intent_id or "", flag,
        ]
        writer.writerow([csv_safe(cell) for cell in row])
    return buffer.getvalue()


# -- codes and the dashboard -----------------------------------------------------------------------

@dataclass(frozen=True)
class CodeRow:
    code: DiscountCode
    uses: int  # seats booked with it that are still active
    ticket_names: list[str]
    ever_used: bool  # booked with at least once (even if since cancelled): it can only be deactivated


def code_rows(convening: Convening) -> list[CodeRow]:
    """The convening's codes with their active uses, ticket type names and whether they were ever used."""
    codes = db.session.execute(
        sa.select(DiscountCode).where(DiscountCode.convening_id == convening.id)
        .order_by(DiscountCode.active.desc(), DiscountCode.code)
    ).scalars().all()
    uses = dict(db.session.execute(
        sa.select(Registration.discount_code_id, sa.func.count())
        .where(Registration.convening_id == convening.id, Registration.discount_code_id.is_not(None),
               Registration.status.in_(ACTIVE))
        .group_by(Registration.discount_code_id)
    ).all())
    used = set(db.session.execute(sa.union(
        sa.select(Registration.discount_code_id).where(Registration.convening_id == convening.id,
                                                       Registration.discount_code_id.is_not(None)),
        sa.select(Order.discount_code_id).where(Order.convening_id == convening.id,
                                                Order.discount_code_id.is_not(None)),
    )).scalars())
    names = {t.id: t.name for t in convening.ticket_types}
    return [CodeRow(code, uses.get(code.id, 0), [names.get(t, f"#{t}") for t in code.ticket_type_ids or []],
                    code.id in used)
            for code in codes]


@dataclass(frozen=True)
class DashboardPayments:
    has_paid_tickets: bool
    totals: PaymentTotals


def has_paid_tickets(convening: Convening) -> bool:
    """Whether any ticket type costs something (read from the relationship the dashboard loads anyway)."""
    return any(not ticket.is_free for ticket in convening.ticket_types)


def dashboard_payments(convening: Convening) -> DashboardPayments:
    return DashboardPayments(has_paid_tickets(convening), payment_totals(convening))
