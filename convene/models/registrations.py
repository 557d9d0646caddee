"""Registrations, their answers, and the statuses and roles they can have."""
from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from convene.i18n_marks import N_
from convene.models.base import Base, TimestampMixin, UTCDateTime
from convene.models.convenings import Convening, Delegation, Question, TicketType
from convene.models.payments import DiscountCode, Order
from convene.text import name_sort_key, search_text

# Byte order on PostgreSQL whatever the database's collation: sort keys are already folded, and a
# language collation would skip the separator and sort "Smith, Al" before "Smit, Zoe".
SORT_KEY_TYPE = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


class Status(StrEnum):
    """Where a registration stands; HOLDING_SEAT lists those that count against capacity."""

    CONFIRMED = "confirmed"
    OFFERED = "offered"  # a waitlisted person holding a freed seat until offer_expires_at
    WAITLISTED = "waitlisted"
    LAPSED = "lapsed"  # a waitlist offer that was not taken in time
    CANCELLED = "cancelled"
    PENDING = "pending"  # holding a seat while the card payment is made
    EXPIRED = "expired"  # the payment was not completed in time; the seat went back

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


STATUS_LABELS = {
    Status.CONFIRMED: N_("Confirmed"),
    Status.OFFERED: N_("Seat offered"),
    Status.WAITLISTED: N_("Waitlisted"),
    Status.LAPSED: N_("Offer lapsed"),
    Status.CANCELLED: N_("Cancelled"),
    Status.PENDING: N_("Awaiting payment"),
    Status.EXPIRED: N_("Payment not completed"),
}
HOLDING_SEAT = (Status.CONFIRMED, Status.OFFERED, Status.PENDING)
ACTIVE = (Status.CONFIRMED, Status.OFFERED, Status.WAITLISTED, Status.PENDING)
ENDED = (Status.CANCELLED, Status.LAPSED, Status.EXPIRED)


class Role(StrEnum):
    DELEGATE = "delegate"
    SPEAKER = "speaker"
    FACILITATOR = "facilitator"
    STAFF = "staff"
    HOST = "host"
    TA_PROVIDER = "ta_provider"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.DELEGATE: N_("Delegate"),
    Role.SPEAKER: N_("Speaker"),
    Role.FACILITATOR: N_("Facilitator"),
    Role.STAFF: N_("Staff"),
    Role.HOST: N_("Host"),
    Role.TA_PROVIDER: N_("TA provider"),
}

# What a badge shows: changing any of these marks the badge for reprinting.
BADGE_FIELDS = ("given_name", "family_name", "badge_name", "pronouns", "organization", "role", "delegation_id")

# What a person fills in about themselves (forms, services, CSV all use this list).
PERSON_FIELDS = (
    "given_name", "family_name", "badge_name", "pronouns", "email", "phone", "organization", "job_title",
    "dietary_needs", "dietary_notes", "accessibility_needs", "accessibility_notes",
)

# Codes stored on registrations, with the labels people see.
DIETARY_NEEDS = {
    "vegetarian": N_("Vegetarian"),
    "vegan": N_("Vegan"),
    "halal": N_("Halal"),
    "kosher": N_("Kosher"),
    "gluten_free": N_("Gluten-free"),
    "dairy_free": N_("Dairy-free"),
    "nut_allergy": N_("Nut allergy"),
}
ACCESSIBILITY_NEEDS = {
    "step_free": N_("Step-free (wheelchair) access"),
    "interpretation": N_("Sign-language interpretation"),
    "captioning": N_("Live captioning"),
    "large_print": N_("Large-print materials"),
    "quiet_room": N_("Access to a quiet room"),
    "mobility_assistance": N_("Assistance walking longer distances"),
}


class Registration(TimestampMixin, Base):
    """One person's place (or place in line) at a convening."""

    __tablename__ = "registration"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"))
    ticket_type_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket_type.id"), index=True)
    delegation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("delegation.id", ondelete="SET NULL"), index=True)
    reference: Mapped[str] = mapped_column(sa.String(16), unique=True)
    # The order that pays for this seat (none for free tickets and comps) and what this seat costs in it.
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    price_cents: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    discount_cents: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    discount_code_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("discount_code.id", ondelete="SET NULL"), index=True)

    given_name: Mapped[str] = mapped_column(sa.String(100))
    family_name: Mapped[str] = mapped_column(sa.String(100), default="")
    badge_name: Mapped[str] = mapped_column(sa.String(100), default="")
    pronouns: Mapped[str] = mapped_column(sa.String(40), default="")
    email: Mapped[str] = mapped_column(sa.String(254))
    phone: Mapped[str] = mapped_column(sa.String(40), default="")
    organization: Mapped[str] = mapped_column(sa.String(200), default="")
    job_title: Mapped[str] = mapped_column(sa.String(200), default="")
    role: Mapped[str] = mapped_column(sa.String(20), default=Role.DELEGATE)
    dietary_needs: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    dietary_notes: Mapped[str] = mapped_column(sa.String(500), default="")
    accessibility_needs: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    accessibility_notes: Mapped[str] = mapped_column(sa.String(500), default="")
    # The language the person registered in: their emails, badge back, agenda and receipts use it.
    language: Mapped[str] = mapped_column(sa.String(5), default="en", server_default="en")
    # Spoken languages they need interpretation into (sign language is an accessibility need).
    interpretation_needs: Mapped[list[str]] = mapped_column(sa.JSON, default=list, server_default="[]")

    status: Mapped[str] = mapped_column(sa.String(16), default=Status.CONFIRMED)
    source: Mapped[str] = mapped_column(sa.String(16), default="online")  # online, admin, import
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    waitlisted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped to invalidate every manage link sent so far.
    token_version: Mapped[int] = mapped_column(sa.Integer, default=1)
    # Carried by the badge's QR code and scanned at check-in; random, not guessable from the reference.
    checkin_token: Mapped[str] = mapped_column(sa.String(32), unique=True, default=lambda: secrets.token_urlsafe(16))
    badge_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    badge_printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the mail provider reports the address bounced (or the person complained); messages skip
    # the person until the address is corrected, which clears it (_clear_bounce_on_new_email).
    email_bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_bounce_reason: Mapped[str] = mapped_column(sa.String(300), default="", server_default="")
    # Kept by _keep_search_columns on every flush: names, email, organization and reference folded
    # by convene.text.search_key (searched with LIKE), and family + given name folded (ORDER BY).
    search_text: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    sort_key: Mapped[str] = mapped_column(SORT_KEY_TYPE, default="", server_default="")

    convening: Mapped[Convening] = relationship(back_populates="registrations")
    ticket_type: Mapped[TicketType] = relationship()
    delegation: Mapped[Delegation | None] = relationship()
    order: Mapped[Order | None] = relationship(back_populates="registrations")
    discount_code: Mapped[DiscountCode | None] = relationship()
    answers: Mapped[list[Answer]] = relationship(back_populates="registration", cascade="all, delete-orphan")

    __table_args__ = (
        # One registration per email per convening; emails are stored lower-cased.
        sa.UniqueConstraint("convening_id", "email"),
        # Counts by status and by ticket and status (list, dashboard, seats) read this index alone.
        sa.Index("ix_registration_convening_status_ticket", "convening_id", "status", "ticket_type_id"),
        # A list filtered by delegation or role reads its first page in order, and its counts by status,
        # from these alone.
        sa.Index("ix_registration_convening_delegation", "convening_id", "delegation_id", "sort_key"),
        sa.Index("ix_registration_convening_delegation_status", "convening_id", "delegation_id", "status"),
        sa.Index("ix_registration_convening_role", "convening_id", "role", "sort_key"),
        sa.Index("ix_registration_convening_role_status", "convening_id", "role", "status"),
        sa.Index("ix_registration_convening_created", "convening_id", "created_at"),
        sa.Index("ix_registration_convening_family", "convening_id", "family_name", "given_name"),
        sa.Index("ix_registration_convening_sort_key", "convening_id", "sort_key"),
        # LIKE '%term%' of the back office's search: trigrams on PostgreSQL (migration 0018 adds pg_trgm).
        sa.Index("ix_registration_search_text", "search_text", postgresql_using="gin",
                 postgresql_ops={"search_text": "gin_trgm_ops"}),
    )

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()

    @property
    def display_badge_name(self) -> str:
        return self.badge_name or self.given_name

    @property
    def status_enum(self) -> Status:
        return Status(self.status)

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)

    @property
    def needs_step_free_access(self) -> bool:
        return "step_free" in (self.accessibility_needs or [])

    def answer_for(self, question_id: int):
        for answer in self.answers:
            if answer.question_id == question_id:
                return answer.value
        return None

    def __repr__(self) -> str:
        return f"<Registration {self.reference} {self.status}>"


SEARCHED_FIELDS = ("given_name", "family_name", "badge_name", "email", "organization", "reference")


@sa.event.listens_for(Registration, "before_insert")
def _fill_search_columns(mapper, connection, registration: Registration) -> None:
    """Fill search_text and sort_key on every new row, whichever code path made it."""
    _keep_search_columns(registration)


@sa.event.listens_for(Registration, "before_update")
def _refresh_search_columns(mapper, connection, registration: Registration) -> None:
    """Refresh search_text and sort_key when a field they are made from changed."""
    state = sa.inspect(registration)
    if any(state.attrs[name].history.has_changes() for name in SEARCHED_FIELDS):
        _keep_search_columns(registration)
    if registration.email_bounced_at is not None and state.attrs["email"].history.has_changes():
        _clear_bounce_on_new_email(registration)


def _clear_bounce_on_new_email(registration: Registration) -> None:
    """A corrected address is worth trying again, whichever path corrected it."""
    registration.email_bounced_at = None
    registration.email_bounce_reason = ""


def _keep_search_columns(registration: Registration) -> None:
    registration.search_text = search_text(
        registration.given_name, registration.family_name, registration.badge_name, registration.email,
        registration.organization, registration.reference)
    registration.sort_key = name_sort_key(registration.family_name, registration.given_name)


class Answer(Base):
    """A registration's answer to one question: text, a choice, a list of choices or yes/no."""

    __tablename__ = "answer"

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(sa.ForeignKey("registration.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(sa.ForeignKey("question.id", ondelete="CASCADE"), index=True)
    value: Mapped[str | list | bool | None] = mapped_column(sa.JSON)

    registration: Mapped[Registration] = relationship(back_populates="answers")
    question: Mapped[Question] = relationship(back_populates="answers")

    __table_args__ = (sa.UniqueConstraint("registration_id", "question_id"),)


# Schemas made by create_all (benches, scripts) need pg_trgm before the search index, as migration 0018 does.
sa.event.listen(Registration.__table__, "before_create",
                sa.DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"))


# SQLite's index for the back office's search: an FTS5 table of search_text's trigrams, its content read
# from the registration table itself (external content, so the text is stored once) and kept by triggers,
# whichever code path writes. PostgreSQL has its trigram GIN index instead. Migration 0021 makes the same
# objects; a batch migration that rebuilds the registration table drops its triggers and must make them again
# (test_models_and_migrations_agree compares them).
SEARCH_INDEX_TABLE = "registration_search"
SQLITE_SEARCH_INDEX = (
    # Case-sensitive: search_text and the words searched are both folded by search_key already, so a match is
    # exactly a substring, as LIKE '%word%' finds it (tests/services/test_registration_search.py).
    "CREATE VIRTUAL TABLE registration_search USING fts5("
    "search_text, content='registration', content_rowid='id', tokenize='trigram case_sensitive 1')",
    "CREATE TRIGGER registration_search_insert AFTER INSERT ON registration BEGIN "
    "INSERT INTO registration_search (rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER registration_search_delete AFTER DELETE ON registration BEGIN "
    "INSERT INTO registration_search (registration_search, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER registration_search_update AFTER UPDATE OF id, search_text ON registration BEGIN "
    "INSERT INTO registration_search (registration_search, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO registration_search (rowid, search_text) VALUES (new.id, new.search_text); END",
)


def autogenerate_includes(name: str, type_: str, parent_names: dict) -> bool:
    """Alembic's include_name: False for the SQLite search index's tables, which no model describes."""
    return not (type_ == "table" and (name == SEARCH_INDEX_TABLE or name.startswith(SEARCH_INDEX_TABLE + "_")))


# Schemas made by create_all (benches, scripts, tests' own databases) get the same search index;
# drop_all takes it away with its table.
for _statement in SQLITE_SEARCH_INDEX:
    sa.event.listen(Registration.__table__, "after_create", sa.DDL(_statement).execute_if(dialect="sqlite"))
sa.event.listen(Registration.__table__, "before_drop",
                sa.DDL(f"DROP TABLE IF EXISTS {SEARCH_INDEX_TABLE}").execute_if(dialect="sqlite"))
