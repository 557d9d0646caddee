"""Background jobs: one row per piece of work on the queue, read by every progress page."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from convene.models.base import Base, UTCDateTime, utcnow

JOB_STATUSES = ("queued", "running", "done", "failed")
JOB_ACTIVE = ("queued", "running")


class Job(Base):
    """One job: what to run (kind and params), for whom, how far it got and how it ended.

    The queue (RQ, or the in-process worker) only carries the id; this row is the truth, so any
    web process on any machine shows the same progress, and a worker that died is noticed by its
    silent heartbeat and its job run again.
    """

    __tablename__ = "job"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40), index=True)
    convening_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True
    )
    requested_by: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    params: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    status: Mapped[str] = mapped_column(sa.String(12), default="queued", index=True)  # JOB_STATUSES
    done: Mapped[int] = mapped_column(sa.Integer, default=0)
    total: Mapped[int] = mapped_column(sa.Integer, default=0)
    message: Mapped[str] = mapped_column(sa.Text, default="")
    result_file: Mapped[str] = mapped_column(sa.String(200), default="")
    # Two requests for the same work (a double click, two schedulers) make one job.
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(sa.Integer, default=3)
    worker: Mapped[str] = mapped_column(sa.String(120), default="")  # host:pid running it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
