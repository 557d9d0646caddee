"""Who may do what on which convening (memberships, invitations) and the log of every change."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from convene.models.base import Base, UTCDateTime, utcnow
from convene.models.users import User


class TeamRole(StrEnum):
    OWNER = "owner"  # everything, the team and deleting included
    ORGANIZER = "organizer"  # everything but the team
    FINANCE = "finance"  # payments, refunds, invoices, codes; reads registrations
    DESK = "desk"  # check-in, walk-ins, badge fixes, printing; reads registrations
    SITE_VISIT_LEAD = "site_visit_lead"  # hosts, visits, assignment, rosters; reads the people involved
    VIEWER = "viewer"  # reads everything, changes nothing


TEAM_ROLE_LABELS = {
    TeamRole.OWNER: "Owner",
    TeamRole.ORGANIZER: "Organizer",
    TeamRole.FINANCE: "Finance",
    TeamRole.DESK: "Registration desk",
    TeamRole.SITE_VISIT_LEAD: "Site-visit lead",
    TeamRole.VIEWER: "Viewer",
}


class Membership(Base):
    """An account's role on one convening, or on every convening when convening_id is empty."""

    __tablename__ = "membership"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    # Empty: the role holds on every convening (set by a platform administrator, like a team for all events).
    convening_id: Mapped[int | None] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("user_id", "convening_id"),
        sa.CheckConstraint(
            "role IN ('owner', 'organizer', 'finance', 'desk', 'site_visit_lead', 'viewer')", name="role_known"),
    )


class Invitation(Base):
    """An emailed offer to join a convening's team; the link carries a token whose hash is kept here."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    role: Mapped[str] = mapped_column(sa.String(20))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    invited_by: Mapped[User | None] = relationship()

    __table_args__ = (
        sa.CheckConstraint(
            "role IN ('owner', 'organizer', 'finance', 'desk', 'site_visit_lead', 'viewer')", name="role_known"),
    )

    def is_open(self, now: datetime | None = None) -> bool:
        return self.accepted_at is None and self.revoked_at is None and (now or utcnow()) < self.expires_at


class ActorKind(StrEnum):
    ACCOUNT = "account"  # someone signed in to the back office
    ATTENDEE = "attendee"  # an attendee on a public page or through their manage link
    STRIPE = "stripe"  # the Stripe webhook or return page
    API = "api"  # an API token
    COMMAND = "command"  # `flask convene ...`
    SYSTEM = "system"  # sweeps and anything else without a person behind it


class AuditEntry(Base):
    """One change to one object: append-only, written in the transaction that made the change."""

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_kind: Mapped[str] = mapped_column(sa.String(16))
    # No foreign keys: the log outlives the accounts, registrations and convenings it speaks of.
    actor_user_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    actor_label: Mapped[str] = mapped_column(sa.String(254), default="")
    convening_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    object_type: Mapped[str] = mapped_column(sa.String(40))
    object_id: Mapped[int | None] = mapped_column(sa.Integer)
    object_label: Mapped[str] = mapped_column(sa.String(200), default="")
    # The registration, order or session whose history shows this entry (answers show on their registration).
    parent_type: Mapped[str | None] = mapped_column(sa.String(40))
    parent_id: Mapped[int | None] = mapped_column(sa.Integer)
    action: Mapped[str] = mapped_column(sa.String(64), index=True)
    # {"field": [old, new]}; secret fields appear as ["(hidden)", "(hidden)"].
    changes: Mapped[dict] = mapped_column(sa.JSON, default=dict)

    __table_args__ = (
        sa.Index("ix_audit_entry_object", "object_type", "object_id"),
        sa.Index("ix_audit_entry_parent", "parent_type", "parent_id"),
    )
