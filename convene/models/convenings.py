"""Convenings and what an organizer defines on them: ticket types, delegations, questions."""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from convene.models.base import Base, TimestampMixin, UTCDateTime, utcnow

if TYPE_CHECKING:
    from convene.models.registrations import Answer, Registration


class Convening(TimestampMixin, Base):
    """A gathering people register for."""

    __tablename__ = "convening"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    city: Mapped[str] = mapped_column(sa.String(120), default="")
    venue: Mapped[str] = mapped_column(sa.String(200), default="")
    venue_address: Mapped[str] = mapped_column(sa.String(300), default="")
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    starts_on: Mapped[date] = mapped_column(sa.Date)
    ends_on: Mapped[date] = mapped_column(sa.Date)
    registration_opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    registration_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    currency: Mapped[str] = mapped_column(sa.String(3), default="USD")
    capacity: Mapped[int | None] = mapped_column(sa.Integer)
    contact_email: Mapped[str] = mapped_column(sa.String(254), default="")
    published: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    reference_prefix: Mapped[str] = mapped_column(sa.String(5), default="REG")
    waitlist_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    # Site visits: how many each person makes, whether attendees may rank hosts, when the plan went out.
    visits_per_person: Mapped[int] = mapped_column(sa.Integer, default=2, server_default="2")
    visit_preferences_open: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    visits_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Badge ribbon colour per role code (e.g. {"speaker": "#b42318"}); roles not listed use the defaults.
    role_colours: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    # Paying by invoice: offered at checkout when enabled; numbers run per convening.
    invoice_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    invoice_issuer: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    invoice_instructions: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    invoice_due_days: Mapped[int] = mapped_column(sa.Integer, default=30, server_default="30")
    invoice_counter: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # Group leads may type a delegation that is not on the convening's list (else they choose one).
    allow_new_delegations: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # Privacy: the notice linked from every form (empty: the default text), how many months after the
    # convening ends personal data is erased (None: only when an organizer asks), and when it was.
    privacy_notice: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    retention_months: Mapped[int | None] = mapped_column(sa.Integer)
    personal_data_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Languages: the attendee pages offer the enabled ones; organizer-written content falls back to
    # the default language, which is also what exports and the back office show.
    languages: Mapped[list[str]] = mapped_column(sa.JSON, default=lambda: ["en"], server_default='["en"]')
    default_language: Mapped[str] = mapped_column(sa.String(5), default="en", server_default="en")
    # Languages people may ask interpretation into (codes of convene.languages.INTERPRETATION_LANGUAGES).
    interpretation_languages: Mapped[list[str]] = mapped_column(sa.JSON, default=list, server_default="[]")
    # {language: {field: text}} for name and description, in languages other than the default.
    translations: Mapped[dict[str, dict]] = mapped_column(sa.JSON, default=dict, server_default="{}")
    # Bumped in the same transaction as any change to what the public program pages show
    # (convene.models.program_revision), so every process sees at once that its cached copy is old.
    program_revision: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")

    ticket_types: Mapped[list[TicketType]] = relationship(
        back_populates="convening", order_by="TicketType.position, TicketType.id", cascade="all, delete-orphan"
    )
    delegations: Mapped[list[Delegation]] = relationship(
        back_populates="convening", order_by="Delegation.name", cascade="all, delete-orphan"
    )
    questions: Mapped[list[Question]] = relationship(
        back_populates="convening", order_by="Question.position, Question.id", cascade="all, delete-orphan"
    )
    registrations: Mapped[list[Registration]] = relationship(back_populates="convening", cascade="all, delete-orphan")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, instant: datetime | None) -> datetime | None:
        """An instant shown in the convening's own time zone."""
        return instant.astimezone(self.tz) if instant else None

    def registration_state(self, now: datetime | None = None) -> str:
        """'not_yet', 'open' or 'closed' at the given instant."""
        now = now or utcnow()
        if self.personal_data_erased_at is not None:
            return "closed"  # nobody's data is taken in again for a convening whose data was erased
        if self.registration_opens_at and now < self.registration_opens_at:
            return "not_yet"
        if self.registration_closes_at and now >= self.registration_closes_at:
            return "closed"
        return "open"

    def __repr__(self) -> str:
        return f"<Convening {self.slug}>"


class TicketType(Base):
    """A kind of registration with its own price, capacity and sale window."""

    __tablename__ = "ticket_type"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    price_cents: Mapped[int] = mapped_column(sa.Integer, default=0)
    # An early-bird price that applies before early_until_at.
    early_price_cents: Mapped[int | None] = mapped_column(sa.Integer)
    early_until_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    capacity: Mapped[int | None] = mapped_column(sa.Integer)
    sales_start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sales_end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hidden: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    translations: Mapped[dict[str, dict]] = mapped_column(sa.JSON, default=dict, server_default="{}")

    convening: Mapped[Convening] = relationship(back_populates="ticket_types")

    __table_args__ = (
        sa.CheckConstraint("price_cents >= 0", name="price_not_negative"),
        sa.CheckConstraint("early_price_cents >= 0", name="early_price_not_negative"),
    )

    @property
    def is_free(self) -> bool:
        return self.price_cents == 0 and not self.early_price_cents

    def is_early(self, now: datetime | None = None) -> bool:
        return (self.early_price_cents is not None and self.early_until_at is not None
                and (now or utcnow()) < self.early_until_at)

    def price_at(self, now: datetime | None = None) -> int:
        """The price at that instant: the early-bird price until its date, then the regular one."""
        return self.early_price_cents if self.is_early(now) else self.price_cents

    def on_sale(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        if self.sales_start_at and now < self.sales_start_at:
            return False
        return not (self.sales_end_at and now >= self.sales_end_at)

    def __repr__(self) -> str:
        return f"<TicketType {self.name}>"


class Delegation(Base):
    """The community or organization a group of delegates comes from."""

    __tablename__ = "delegation"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(160))
    contact_name: Mapped[str] = mapped_column(sa.String(160), default="")
    contact_email: Mapped[str] = mapped_column(sa.String(254), default="")

    convening: Mapped[Convening] = relationship(back_populates="delegations")

    __table_args__ = (sa.UniqueConstraint("convening_id", "name"),)

    def __repr__(self) -> str:
        return f"<Delegation {self.name}>"


class QuestionKind(StrEnum):
    SHORT_TEXT = "short_text"
    LONG_TEXT = "long_text"
    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    YES_NO = "yes_no"

    @property
    def label(self) -> str:
        return QUESTION_KIND_LABELS[self]

    @property
    def has_choices(self) -> bool:
        return self in (QuestionKind.SINGLE_CHOICE, QuestionKind.MULTIPLE_CHOICE)


QUESTION_KIND_LABELS = {
    QuestionKind.SHORT_TEXT: "Short text",
    QuestionKind.LONG_TEXT: "Long text",
    QuestionKind.SINGLE_CHOICE: "Single choice",
    QuestionKind.MULTIPLE_CHOICE: "Multiple choice",
    QuestionKind.YES_NO: "Yes / no",
}


class Question(Base):
    """An organizer-defined question on the registration form."""

    __tablename__ = "question"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(sa.String(300))
    help_text: Mapped[str] = mapped_column(sa.String(500), default="")
    kind: Mapped[str] = mapped_column(sa.String(20), default=QuestionKind.SHORT_TEXT)
    required: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    choices: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    # Answers store the default-language choice; a translation's "choices" list is shown in its place,
    # position for position.
    translations: Mapped[dict[str, dict]] = mapped_column(sa.JSON, default=dict, server_default="{}")

    convening: Mapped[Convening] = relationship(back_populates="questions")
    answers: Mapped[list[Answer]] = relationship(back_populates="question", cascade="all, delete-orphan")

    @property
    def kind_enum(self) -> QuestionKind:
        return QuestionKind(self.kind)

    @property
    def field_name(self) -> str:
        return f"q_{self.id}"

    def __repr__(self) -> str:
        return f"<Question {self.id} {self.kind}>"
