"""Email written in the same transaction as the change it reports, and delivered after commit."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from convene.models.base import Base, UTCDateTime, utcnow


class OutboxMessage(Base):
    """One email waiting to be delivered, being delivered, or delivered."""

    __tablename__ = "outbox_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    registration_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("registration.id", ondelete="SET NULL"), index=True
    )
    to_address: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(300))
    text_body: Mapped[str] = mapped_column(sa.Text)
    html_body: Mapped[str] = mapped_column(sa.Text)
    # Documents rendered and attached at delivery, e.g. [{"kind": "invoice", "order_id": 7}].
    attachments: Mapped[list[dict]] = mapped_column(sa.JSON, default=list, server_default="[]")
    status: Mapped[str] = mapped_column(sa.String(12), default="pending", index=True)  # pending, sending, sent, failed
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_error: Mapped[str] = mapped_column(sa.Text, default="")
    # Who holds a message in "sending", and until when: a sender that died loses it when the lease ends.
    claimed_by: Mapped[str] = mapped_column(sa.String(64), default="", server_default="")
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
