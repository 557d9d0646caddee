"""Messages organizers write to registrants, and the one row per message and person that makes each go once."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from convene.models.base import Base, TimestampMixin, UTCDateTime

MESSAGE_STATUSES = ("draft", "scheduled", "sending", "sent", "cancelled")
MESSAGE_STATUS_LABELS = {"draft": "Draft", "scheduled": "Scheduled", "sending": "Sending", "sent": "Sent",
                         "cancelled": "Cancelled"}
EDITABLE = ("draft", "scheduled")
# A sent message may go out again to people who match it now and have not had it (late registrants).
SENDABLE = ("draft", "scheduled", "sent")


class Message(TimestampMixin, Base):
    """One message to a chosen set of registrants: its text per language, who it goes to, how far it got."""

    __tablename__ = "message"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    # {"en": "...", "fr": "..."}: one version per language the convening offers.
    subjects: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    bodies: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    # Who it goes to, as convene.services.messages.RecipientFilter stores it.
    filter: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    copy_delegation_leads: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    status: Mapped[str] = mapped_column(sa.String(12), default="draft", index=True)  # MESSAGE_STATUSES
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("job.id", ondelete="SET NULL"))
    # Counts kept by the sending job and the bounce webhook, so the history reads one row per message.
    recipient_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    sent_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    failed_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    bounced_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    skipped_count: Mapped[int] = mapped_column(sa.Integer, default=0)  # addresses flagged as bouncing

    author = relationship("User")
    recipients: Mapped[list[MessageRecipient]] = relationship(back_populates="message", passive_deletes=True)

    def subject_in(self, language: str) -> str:
        return self.subjects.get(language) or next(iter(self.subjects.values()), "")


class MessageRecipient(Base):
    """One person (or delegation lead's copy) a message goes to, with the outbox row that carries it.

    The unique keys are the promise: however often a sending job runs, a message is written once per person.
    """

    __tablename__ = "message_recipient"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("message.id", ondelete="CASCADE"))
    registration_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("registration.id", ondelete="CASCADE"), index=True)
    # A copy for a delegation's lead (Delegation.contact_email) instead of a registration.
    delegation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("delegation.id", ondelete="CASCADE"))
    outbox_id: Mapped[int | None] = mapped_column(sa.ForeignKey("outbox_message.id", ondelete="SET NULL"),
                                                  index=True)
    language: Mapped[str] = mapped_column(sa.String(12), default="en")
    to_address: Mapped[str] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    message: Mapped[Message] = relationship(back_populates="recipients")
    outbox = relationship("OutboxMessage")

    __table_args__ = (
        sa.UniqueConstraint("message_id", "registration_id"),
        sa.UniqueConstraint("message_id", "delegation_id"),
    )
