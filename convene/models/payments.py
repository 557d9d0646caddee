"""Money: orders (what someone owes for one or more seats), refunds, Stripe events, discount codes."""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from convene.i18n_marks import N_
from convene.models.base import Base, TimestampMixin, UTCDateTime, utcnow
from convene.models.convenings import Convening, Delegation

if TYPE_CHECKING:
    from convene.models.registrations import Registration


class OrderStatus(StrEnum):
    """Where an order's money stands; HOLDING lists the ones whose seats count against capacity."""

    PENDING = "pending"  # card checkout open, seats held until hold_expires_at
    PROCESSING = "processing"  # checkout completed with a delayed method (bank debit); seats held
    PAID = "paid"
    INVOICED = "invoiced"  # confirmed, an invoice was sent and is not paid yet
    REVIEW = "review"  # money arrived that does not match what was owed, or for seats no longer free
    EXPIRED = "expired"  # the checkout expired or failed; seats released
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return ORDER_STATUS_LABELS[self]


ORDER_STATUS_LABELS = {
    OrderStatus.PENDING: N_("Awaiting payment"),
    OrderStatus.PROCESSING: N_("Payment processing"),
    OrderStatus.PAID: N_("Paid"),
    OrderStatus.INVOICED: N_("Invoice outstanding"),
    OrderStatus.REVIEW: N_("Needs review"),
    OrderStatus.EXPIRED: N_("Payment not completed"),
    OrderStatus.CANCELLED: N_("Cancelled"),
}


class PaymentMethod(StrEnum):
    CARD = "card"
    INVOICE = "invoice"
    FREE = "free"  # a code brought the total to zero
    OFFLINE = "offline"  # an organizer recorded it as paid outside Convene (payment_note says how)
    COMP = "comp"  # an organizer gave the seat for nothing

    @property
    def label(self) -> str:
        return {"card": N_("Card (Stripe)"), "invoice": N_("Invoice"), "free": N_("No payment (code)"),
                "offline": N_("Paid elsewhere"), "comp": N_("Complimentary")}[self.value]


class Order(TimestampMixin, Base):
    """What one buyer owes and paid for one or more registrations (a delegation pays once for all)."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"))
    reference: Mapped[str] = mapped_column(sa.String(20), unique=True)
    method: Mapped[str] = mapped_column(sa.String(10), default=PaymentMethod.CARD)
    status: Mapped[str] = mapped_column(sa.String(12), default=OrderStatus.PENDING)

    buyer_name: Mapped[str] = mapped_column(sa.String(200))
    buyer_email: Mapped[str] = mapped_column(sa.String(254))
    buyer_organization: Mapped[str] = mapped_column(sa.String(200), default="")
    billing_address: Mapped[str] = mapped_column(sa.String(500), default="")
    po_number: Mapped[str] = mapped_column(sa.String(60), default="")
    delegation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("delegation.id", ondelete="SET NULL"))
    is_group: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())

    currency: Mapped[str] = mapped_column(sa.String(3))
    subtotal_cents: Mapped[int] = mapped_column(sa.Integer, default=0)
    discount_cents: Mapped[int] = mapped_column(sa.Integer, default=0)
    total_cents: Mapped[int] = mapped_column(sa.Integer, default=0)
    paid_cents: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    refunded_cents: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # Taken off an unpaid invoice by credit notes for seats cancelled before it was paid.
    credited_cents: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    discount_code_id: Mapped[int | None] = mapped_column(sa.ForeignKey("discount_code.id", ondelete="SET NULL"))

    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stripe_session_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    stripe_session_url: Mapped[str] = mapped_column(sa.Text, default="")
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payment_note: Mapped[str] = mapped_column(sa.String(300), default="")

    invoice_number: Mapped[str | None] = mapped_column(sa.String(30), unique=True)
    invoice_issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    invoice_due_on: Mapped[date | None] = mapped_column(sa.Date)

    # Why organizers must look at this order ("" when nothing is wrong).
    flag: Mapped[str] = mapped_column(sa.String(40), default="", server_default="")
    flag_detail: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    token_version: Mapped[int] = mapped_column(sa.Integer, default=1)

    convening: Mapped[Convening] = relationship()
    delegation: Mapped[Delegation | None] = relationship()
    discount_code: Mapped[DiscountCode | None] = relationship()
    registrations: Mapped[list[Registration]] = relationship(back_populates="order", order_by="Registration.id")
    refunds: Mapped[list[Refund]] = relationship(back_populates="order", order_by="Refund.id",
                                                 cascade="all, delete-orphan")
    credit_notes: Mapped[list[CreditNote]] = relationship(back_populates="order", order_by="CreditNote.id",
                                                          cascade="all, delete-orphan")

    __table_args__ = (
        sa.Index("ix_orders_convening_status", "convening_id", "status"),
        sa.CheckConstraint("total_cents >= 0", name="total_not_negative"),
        sa.CheckConstraint("refunded_cents <= paid_cents", name="refund_within_paid"),
    )

    @property
    def status_enum(self) -> OrderStatus:
        return OrderStatus(self.status)

    @property
    def method_enum(self) -> PaymentMethod:
        return PaymentMethod(self.method)

    @property
    def balance_cents(self) -> int:
        """What is still owed: total less credit notes and payments (0 once paid or when nothing is due)."""
        if self.status in (OrderStatus.EXPIRED, OrderStatus.CANCELLED):
            return 0
        return max(0, self.total_cents - self.credited_cents - self.paid_cents)

    @property
    def refundable_cents(self) -> int:
        return self.paid_cents - self.refunded_cents

    def __repr__(self) -> str:
        return f"<Order {self.reference} {self.status}>"


class Refund(Base):
    """Money sent back for an order: through Stripe, or recorded by hand for invoice payments."""

    __tablename__ = "refund"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    amount_cents: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(12), default="pending")  # pending, succeeded, failed
    via_stripe: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    stripe_refund_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    reason: Mapped[str] = mapped_column(sa.String(300), default="")
    error: Mapped[str] = mapped_column(sa.String(500), default="")
    cancel_registrations: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    order: Mapped[Order] = relationship(back_populates="refunds")

    __table_args__ = (sa.CheckConstraint("amount_cents > 0", name="amount_positive"),)

    @property
    def idempotency_key(self) -> str:
        """The same key on every attempt, so a retry after a timeout never refunds twice."""
        return f"convene-refund-{self.order.reference}-{self.id}"


class CreditNote(Base):
    """A credit against an unpaid invoice for seats cancelled before it was paid; numbered per convening."""

    __tablename__ = "credit_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"))
    # 1, 2, ... within the convening, taken under the convening lock, so the series has no gaps or repeats.
    sequence: Mapped[int] = mapped_column(sa.Integer)
    number: Mapped[str] = mapped_column(sa.String(40))
    invoice_number: Mapped[str] = mapped_column(sa.String(30))  # the invoice it credits, as printed
    amount_cents: Mapped[int] = mapped_column(sa.Integer)
    # What it credits, one entry per cancelled seat: {"ticket", "name", "reference", "cents"} (cents after discount).
    seats: Mapped[list[dict]] = mapped_column(sa.JSON, default=list)
    voids_invoice: Mapped[bool] = mapped_column(sa.Boolean, default=False)  # the last seats: nothing is left owed
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    order: Mapped[Order] = relationship(back_populates="credit_notes")

    __table_args__ = (
        sa.UniqueConstraint("convening_id", "sequence"),
        sa.UniqueConstraint("convening_id", "number"),
        sa.CheckConstraint("amount_cents > 0", name="amount_positive"),
    )

    def __repr__(self) -> str:
        return f"<CreditNote {self.number} {self.amount_cents}>"


class StripeEvent(Base):
    """A webhook event, stored once: a re-delivery finds its id taken and changes nothing."""

    __tablename__ = "stripe_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    outcome: Mapped[str] = mapped_column(sa.String(60), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CodeKind(StrEnum):
    PERCENT = "percent"
    FIXED = "fixed"  # an amount off each ticket
    ACCESS = "access"  # no discount: only unlocks hidden ticket types

    @property
    def label(self) -> str:
        return {"percent": "Percent off", "fixed": "Amount off each ticket", "access": "Access only"}[self.value]


class DiscountCode(Base):
    """A code that lowers the price or unlocks hidden ticket types; each seat booked with it is one use."""

    __tablename__ = "discount_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(sa.String(40))  # stored upper-case, so codes match in any case
    kind: Mapped[str] = mapped_column(sa.String(10), default=CodeKind.PERCENT)
    percent: Mapped[int] = mapped_column(sa.Integer, default=0)
    amount_cents: Mapped[int] = mapped_column(sa.Integer, default=0)
    max_uses: Mapped[int | None] = mapped_column(sa.Integer)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Ticket types it applies to (and unlocks when hidden); empty means every public ticket type.
    ticket_type_ids: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    note: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("convening_id", "code"),
        sa.CheckConstraint("percent >= 0 AND percent <= 100", name="percent_range"),
        sa.CheckConstraint("amount_cents >= 0", name="amount_not_negative"),
    )

    @property
    def kind_enum(self) -> CodeKind:
        return CodeKind(self.kind)

    def applies_to(self, ticket_type_id: int) -> bool:
        return not self.ticket_type_ids or ticket_type_id in self.ticket_type_ids

    def valid_at(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        if not self.active:
            return False
        if self.valid_from and now < self.valid_from:
            return False
        return not (self.valid_until and now >= self.valid_until)

    def discount_on(self, price_cents: int) -> int:
        """The discount this code gives on one ticket of that price."""
        if self.kind == CodeKind.PERCENT:
            return min(price_cents, (price_cents * self.percent + 50) // 100)
        if self.kind == CodeKind.FIXED:
            return min(price_cents, self.amount_cents)
        return 0

    @property
    def describe(self) -> str:
        if self.kind == CodeKind.PERCENT:
            return f"{self.percent} % off"
        if self.kind == CodeKind.FIXED:
            return f"{self.amount_cents / 100:,.2f} off each ticket"
        return "unlocks tickets"

    def __repr__(self) -> str:
        return f"<DiscountCode {self.code}>"
