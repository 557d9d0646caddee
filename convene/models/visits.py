"""Site visits: host organizations, time slots, the visits themselves, preferences and the plan."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from convene.models.base import Base, TimestampMixin, UTCDateTime, utcnow

if TYPE_CHECKING:
    from convene.models.convenings import Convening
    from convene.models.registrations import Registration


class HostOrganization(Base):
    """An organization delegates visit (a college, an employment agency, a newcomer office...)."""

    __tablename__ = "host_organization"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    address: Mapped[str] = mapped_column(sa.String(300), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    accessible: Mapped[bool] = mapped_column(sa.Boolean, default=True)  # step-free access
    contact_name: Mapped[str] = mapped_column(sa.String(160), default="")
    contact_email: Mapped[str] = mapped_column(sa.String(254), default="")
    contact_phone: Mapped[str] = mapped_column(sa.String(40), default="")
    translations: Mapped[dict[str, dict]] = mapped_column(sa.JSON, default=dict, server_default="{}")

    convening: Mapped[Convening] = relationship()
    visits: Mapped[list[SiteVisit]] = relationship(back_populates="host", cascade="all, delete-orphan")

    __table_args__ = (sa.UniqueConstraint("convening_id", "name"),)

    def __repr__(self) -> str:
        return f"<HostOrganization {self.name}>"


class VisitSlot(Base):
    """A block of time in which every group is at one host."""

    __tablename__ = "visit_slot"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(sa.String(120))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)

    visits: Mapped[list[SiteVisit]] = relationship(back_populates="slot", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<VisitSlot {self.label}>"


class SiteVisit(Base):
    """One host in one slot: a group of visitors with a capacity and a meeting point."""

    __tablename__ = "site_visit"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    host_id: Mapped[int] = mapped_column(sa.ForeignKey("host_organization.id", ondelete="CASCADE"))
    slot_id: Mapped[int] = mapped_column(sa.ForeignKey("visit_slot.id", ondelete="CASCADE"), index=True)
    capacity: Mapped[int] = mapped_column(sa.Integer)
    meeting_point: Mapped[str] = mapped_column(sa.String(300), default="")
    departs_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    transport_notes: Mapped[str] = mapped_column(sa.String(500), default="")
    # When what visitors are told (time, place, meeting point, transport) last changed; publishing
    # emails the people of a visit changed since the last publish.
    details_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    translations: Mapped[dict[str, dict]] = mapped_column(sa.JSON, default=dict, server_default="{}")

    host: Mapped[HostOrganization] = relationship(back_populates="visits")
    slot: Mapped[VisitSlot] = relationship(back_populates="visits")

    __table_args__ = (
        sa.UniqueConstraint("host_id", "slot_id"),
        sa.CheckConstraint("capacity >= 0", name="capacity_not_negative"),
    )

    def __repr__(self) -> str:
        return f"<SiteVisit host={self.host_id} slot={self.slot_id}>"


class VisitPreference(Base):
    """A person's rank for a host (1 = most wanted); hosts they did not rank are acceptable but last."""

    __tablename__ = "visit_preference"

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(sa.ForeignKey("registration.id", ondelete="CASCADE"))
    host_id: Mapped[int] = mapped_column(sa.ForeignKey("host_organization.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(sa.Integer)

    host: Mapped[HostOrganization] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("registration_id", "host_id"),
        sa.UniqueConstraint("registration_id", "rank"),
    )


class VisitAssignment(Base):
    """Where a person is in one slot: the working plan, and what was last published to them."""

    __tablename__ = "visit_assignment"

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(sa.ForeignKey("registration.id", ondelete="CASCADE"))
    slot_id: Mapped[int] = mapped_column(sa.ForeignKey("visit_slot.id", ondelete="CASCADE"), index=True)
    site_visit_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("site_visit.id", ondelete="CASCADE"), index=True
    )
    published_site_visit_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("site_visit.id", ondelete="SET NULL"), index=True
    )
    locked: Mapped[bool] = mapped_column(sa.Boolean, default=False)

    registration: Mapped[Registration] = relationship()
    site_visit: Mapped[SiteVisit | None] = relationship(foreign_keys=[site_visit_id])
    published_site_visit: Mapped[SiteVisit | None] = relationship(foreign_keys=[published_site_visit_id])

    __table_args__ = (sa.UniqueConstraint("registration_id", "slot_id"),)


class AssignmentRun(TimestampMixin, Base):
    """One run of the assigner, kept so organizers can compare plans and see what it proved."""

    __tablename__ = "assignment_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20), default="assign")  # assign, reassign (with churn)
    people: Mapped[int] = mapped_column(sa.Integer, default=0)
    cost: Mapped[int] = mapped_column(sa.Integer, default=0)
    lower_bound: Mapped[float] = mapped_column(sa.Float, default=0)
    optimal: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    method: Mapped[str] = mapped_column(sa.String(20), default="")
    solve_seconds: Mapped[float] = mapped_column(sa.Float, default=0)
    rank_profile: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
    unassigned: Mapped[list[dict]] = mapped_column(sa.JSON, default=list)
    changed: Mapped[int] = mapped_column(sa.Integer, default=0)
    run_by: Mapped[str] = mapped_column(sa.String(254), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Who goes on site visits: hosts stay at their site and staff run the day.
VISITING_ROLES = ("delegate", "ta_provider", "speaker", "facilitator")
