"""The program: rooms, sessions, who presents them, sign-ups, preferences and the program's settings."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from convene.i18n_marks import N_
from convene.models.base import Base, TimestampMixin, UTCDateTime, utcnow

if TYPE_CHECKING:
    from convene.models.registrations import Registration
    from convene.models.visits import VisitSlot


class SessionKind(StrEnum):
    KEYNOTE = "keynote"
    PLENARY = "plenary"
    ROUNDTABLE = "roundtable"
    WORKING_GROUP = "working_group"
    BREAKOUT = "breakout"
    MEAL = "meal"
    NETWORKING = "networking"
    SITE_VISIT = "site_visit"

    @property
    def label(self) -> str:
        return SESSION_KIND_LABELS[self]


SESSION_KIND_LABELS = {
    SessionKind.KEYNOTE: N_("Keynote"),
    SessionKind.PLENARY: N_("Plenary"),
    SessionKind.ROUNDTABLE: N_("Roundtable"),
    SessionKind.WORKING_GROUP: N_("Working group"),
    SessionKind.BREAKOUT: N_("Breakout"),
    SessionKind.MEAL: N_("Meal"),
    SessionKind.NETWORKING: N_("Networking"),
    SessionKind.SITE_VISIT: N_("Site-visit block"),
}
# Sessions the whole convening attends (when they need no sign-up): on every personal agenda.
EVERYONE_KINDS = (SessionKind.KEYNOTE, SessionKind.PLENARY, SessionKind.MEAL, SessionKind.NETWORKING)


class ProgramSettings(Base):
    """One convening's program-wide state: published or draft, and how strict each conflict kind is."""

    __tablename__ = "program_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), unique=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Conflict kind -> "blocking" or "warning"; kinds not listed use convene.scheduling.DEFAULT_RULES.
    conflict_rules: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def published(self) -> bool:
        return self.published_at is not None


class Room(Base):
    """Where sessions happen, with the seats it holds and whether it has step-free access."""

    __tablename__ = "room"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    capacity: Mapped[int | None] = mapped_column(sa.Integer)
    accessible: Mapped[bool] = mapped_column(sa.Boolean, default=True)  # step-free access
    floor: Mapped[str] = mapped_column(sa.String(80), default="")
    notes: Mapped[str] = mapped_column(sa.String(500), default="")
    position: Mapped[int] = mapped_column(sa.Integer, default=0)

    __table_args__ = (
        sa.UniqueConstraint("convening_id", "name"),
        sa.CheckConstraint("capacity >= 0", name="capacity_not_negative"),
    )

    def __repr__(self) -> str:
        return f"<Room {self.name}>"


class SessionBlock(Base):
    """Parallel sessions attendees rank and organizers allocate with the optimizer (e.g. working groups)."""

    __tablename__ = "session_block"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(160))
    preferences_open: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    allocated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    sessions: Mapped[list[ProgramSession]] = relationship(
        back_populates="block", order_by="ProgramSession.starts_at, ProgramSession.title"
    )

    __table_args__ = (sa.UniqueConstraint("convening_id", "name"),)

    def __repr__(self) -> str:
        return f"<SessionBlock {self.name}>"


class ProgramSession(TimestampMixin, Base):
    """One entry of the program: a keynote, a roundtable, a meal, a site-visit block..."""

    __tablename__ = "program_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(20), default=SessionKind.PLENARY)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    track: Mapped[str] = mapped_column(sa.String(120), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    room_id: Mapped[int | None] = mapped_column(sa.ForeignKey("room.id", ondelete="SET NULL"), index=True)
    location: Mapped[str] = mapped_column(sa.String(300), default="")  # off-site, or where to meet
    capacity: Mapped[int | None] = mapped_column(sa.Integer)  # sign-up seats; None = the room's size
    signup_required: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    block_id: Mapped[int | None] = mapped_column(sa.ForeignKey("session_block.id", ondelete="SET NULL"), index=True)
    visit_slot_id: Mapped[int | None] = mapped_column(sa.ForeignKey("visit_slot.id", ondelete="SET NULL"), index=True)
    # Bumped on every change, so calendar apps replace the entry they imported.
    sequence: Mapped[int] = mapped_column(sa.Integer, default=0)
    # Languages interpreted into during the session.
    interpretation: Mapped[list[str]] = mapped_column(sa.JSON, default=list, server_default="[]")
    translations: Mapped[dict[str, dict]] = mapped_column(sa.JSON, default=dict, server_default="{}")

    room: Mapped[Room | None] = relationship()
    block: Mapped[SessionBlock | None] = relationship(back_populates="sessions")
    visit_slot: Mapped[VisitSlot | None] = relationship()
    presenter_links: Mapped[list[SessionPresenter]] = relationship(
        back_populates="session", order_by="SessionPresenter.position, SessionPresenter.id",
        cascade="all, delete-orphan", passive_deletes=True,
    )
    signups: Mapped[list[SessionSignup]] = relationship(
        back_populates="session", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        sa.CheckConstraint("capacity >= 0", name="capacity_not_negative"),
        sa.Index("ix_program_session_convening_starts", "convening_id", "starts_at"),
    )

    @property
    def kind_enum(self) -> SessionKind:
        return SessionKind(self.kind)

    @property
    def kind_label(self) -> str:
        return SESSION_KIND_LABELS.get(self.kind, self.kind)

    @property
    def presenters(self) -> list[Presenter]:
        return [link.presenter for link in self.presenter_links]

    @property
    def for_everyone(self) -> bool:
        return not self.signup_required and self.kind in EVERYONE_KINDS

    @property
    def seat_limit(self) -> int | None:
        """Sign-up seats: the session's own capacity, else what its room holds."""
        if self.capacity is not None:
            return self.capacity
        return self.room.capacity if self.room is not None else None

    @property
    def where(self) -> str:
        return self.room.name if self.room is not None else self.location

    def __repr__(self) -> str:
        return f"<ProgramSession {self.id} {self.title!r}>"


class Presenter(Base):
    """Someone who presents or facilitates: a registered person, or an external guest with a short bio."""

    __tablename__ = "presenter"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    registration_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("registration.id", ondelete="SET NULL"), index=True
    )
    # Kept even when linked, so the name survives if the registration is deleted.
    name: Mapped[str] = mapped_column(sa.String(200))
    organization: Mapped[str] = mapped_column(sa.String(200), default="")
    bio: Mapped[str] = mapped_column(sa.String(1000), default="")

    registration: Mapped[Registration | None] = relationship()
    session_links: Mapped[list[SessionPresenter]] = relationship(
        back_populates="presenter", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def display_name(self) -> str:
        return self.registration.full_name if self.registration is not None else self.name

    @property
    def display_organization(self) -> str:
        return self.registration.organization if self.registration is not None else self.organization

    @property
    def external(self) -> bool:
        return self.registration_id is None

    def __repr__(self) -> str:
        return f"<Presenter {self.name}>"


class SessionPresenter(Base):
    """A presenter on a session, in the order the program lists them."""

    __tablename__ = "session_presenter"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("program_session.id", ondelete="CASCADE"))
    presenter_id: Mapped[int] = mapped_column(sa.ForeignKey("presenter.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(sa.Integer, default=0)

    session: Mapped[ProgramSession] = relationship(back_populates="presenter_links")
    presenter: Mapped[Presenter] = relationship(back_populates="session_links")

    __table_args__ = (sa.UniqueConstraint("session_id", "presenter_id"),)


class SessionSignup(Base):
    """A person's seat in a session that needs sign-up (taken by them, or placed by the allocation)."""

    __tablename__ = "session_signup"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("program_session.id", ondelete="CASCADE"))
    registration_id: Mapped[int] = mapped_column(sa.ForeignKey("registration.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(sa.String(16), default="self")  # self, allocation, admin
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    session: Mapped[ProgramSession] = relationship(back_populates="signups")
    registration: Mapped[Registration] = relationship()

    __table_args__ = (sa.UniqueConstraint("session_id", "registration_id"),)


class SessionPreference(Base):
    """A person's rank for one session of a block (1 = most wanted); unranked sessions come last."""

    __tablename__ = "session_preference"

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(sa.ForeignKey("registration.id", ondelete="CASCADE"))
    block_id: Mapped[int] = mapped_column(sa.ForeignKey("session_block.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("program_session.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(sa.Integer)

    __table_args__ = (
        sa.UniqueConstraint("registration_id", "session_id"),
        sa.UniqueConstraint("registration_id", "block_id", "rank"),
    )
