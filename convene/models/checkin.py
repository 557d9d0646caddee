"""Check-in at the door and beyond: the lists people are checked in on, check-ins, and the log of every scan."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from convene.models.base import Base, UTCDateTime, utcnow
from convene.models.convenings import Convening
from convene.models.registrations import Registration
from convene.models.schedule import ProgramSession
from convene.models.users import User
from convene.models.visits import SiteVisit


class ListKind(StrEnum):
    MAIN = "main"  # the entry: every confirmed registration; one per convening, made with it
    SESSION = "session"  # a session's sign-ups (or everyone confirmed, for sessions open to all)
    VISIT = "visit"  # the people assigned to one site visit (the bus)
    GATHERING = "gathering"  # any named gathering: the dinner, a working group

    @property
    def label(self) -> str:
        return LIST_KIND_LABELS[self]


LIST_KIND_LABELS = {
    ListKind.MAIN: "Entrance",
    ListKind.SESSION: "Session",
    ListKind.VISIT: "Site visit",
    ListKind.GATHERING: "Gathering",
}


class ScanResult(StrEnum):
    """What a scan came to; staff see each as a colour, a sound and a line of large text."""

    CHECKED_IN = "checked_in"
    ALREADY = "already"  # checked in on this list before (when and by whom are shown)
    NOT_ON_LIST = "not_on_list"  # registered, but this list is not for them
    CANCELLED = "cancelled"  # cancelled, lapsed offer or unpaid seat given back
    NOT_CONFIRMED = "not_confirmed"  # waitlisted, offered a seat, or card payment not finished
    UNKNOWN = "unknown"  # no registration of this convening has that code or name
    MATCHES = "matches"  # a name search found several people (or one): staff pick
    REVERTED = "reverted"  # an organizer undid a check-in

    @property
    def ok(self) -> bool:
        return self is ScanResult.CHECKED_IN


class CheckinList(Base):
    """A list people are checked in on, once each: the entrance, a session, a site visit, a gathering."""

    __tablename__ = "checkin_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(12), default=ListKind.GATHERING)
    name: Mapped[str] = mapped_column(sa.String(120))
    session_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("program_session.id", ondelete="CASCADE"), index=True)
    site_visit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("site_visit.id", ondelete="CASCADE"), index=True)
    # A session list: everyone confirmed may come in (True), or only those signed up (False).
    everyone: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # Empty: no limit. Otherwise only registrations with one of these ticket type ids / role codes.
    ticket_type_ids: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
    roles: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    position: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    convening: Mapped[Convening] = relationship()
    session: Mapped[ProgramSession | None] = relationship()
    site_visit: Mapped[SiteVisit | None] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("convening_id", "name"),
        # One entrance list per convening, even when two requests make it lazily at the same moment.
        sa.Index("uq_checkin_list_main", "convening_id", unique=True,
                 sqlite_where=sa.text("kind = 'main'"), postgresql_where=sa.text("kind = 'main'")),
        sa.CheckConstraint("kind IN ('main', 'session', 'visit', 'gathering')", name="kind_known"),
        sa.CheckConstraint("(kind = 'session') = (session_id IS NOT NULL)", name="session_for_session_kind"),
        sa.CheckConstraint("(kind = 'visit') = (site_visit_id IS NOT NULL)", name="visit_for_visit_kind"),
    )

    @property
    def kind_enum(self) -> ListKind:
        return ListKind(self.kind)

    def __repr__(self) -> str:
        return f"<CheckinList {self.kind} {self.name!r}>"


class Checkin(Base):
    """One person checked in on one list. Undoing it keeps the row (reverted_at) so the history stays."""

    __tablename__ = "checkin"

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(sa.ForeignKey("checkin_list.id", ondelete="CASCADE"))
    registration_id: Mapped[int] = mapped_column(sa.ForeignKey("registration.id", ondelete="CASCADE"), index=True)
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    checked_in_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    device: Mapped[str] = mapped_column(sa.String(64), default="")
    reverted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reverted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))

    checkin_list: Mapped[CheckinList] = relationship()
    registration: Mapped[Registration] = relationship()
    checked_in_by: Mapped[User | None] = relationship(foreign_keys=[checked_in_by_id])
    reverted_by: Mapped[User | None] = relationship(foreign_keys=[reverted_by_id])

    __table_args__ = (
        # The one guarantee that two desks scanning the same badge make one check-in: only one active
        # (not reverted) row per list and person; reverted ones stay as history.
        sa.Index("uq_checkin_active", "list_id", "registration_id", unique=True,
                 sqlite_where=sa.text("reverted_at IS NULL"), postgresql_where=sa.text("reverted_at IS NULL")),
        sa.Index("ix_checkin_list_at", "list_id", "checked_in_at"),
    )

    @property
    def active(self) -> bool:
        return self.reverted_at is None


class CheckinScan(Base):
    """Every scan and every undo, failed ones included: append-only (erasing personal data only blanks `code`)."""

    __tablename__ = "checkin_scan"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    list_id: Mapped[int | None] = mapped_column(sa.ForeignKey("checkin_list.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    # A name the scanning page gives itself once (kept in the phone's storage), and its id for this scan:
    # a scan sent again after a dropped connection is recognised and gets its first answer.
    device: Mapped[str] = mapped_column(sa.String(64), default="")
    scan_id: Mapped[str | None] = mapped_column(sa.String(64))
    # When the phone made the scan (it may have waited offline), as it says.
    scanned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    code: Mapped[str] = mapped_column(sa.String(200), default="")
    result: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    registration_id: Mapped[int | None] = mapped_column(sa.ForeignKey("registration.id", ondelete="SET NULL"),
                                                        index=True)
    checkin_id: Mapped[int | None] = mapped_column(sa.ForeignKey("checkin.id", ondelete="SET NULL"))

    user: Mapped[User | None] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("device", "scan_id"),
        sa.Index("ix_checkin_scan_list_at", "list_id", "at"),
    )
