"""Print jobs: big batches of badges or agendas rendered in the background."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from convene.models.base import Base, UTCDateTime, utcnow


class PrintJob(Base):
    """One batch being rendered (or rendered): what was asked, how far it got, where the PDF is."""

    __tablename__ = "print_job"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))  # badges, agendas, program, rosters
    params: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    registration_ids: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
    status: Mapped[str] = mapped_column(sa.String(12), default="queued")  # queued, running, done, failed
    done: Mapped[int] = mapped_column(sa.Integer, default=0)
    total: Mapped[int] = mapped_column(sa.Integer, default=0)
    pages: Mapped[int] = mapped_column(sa.Integer, default=0)
    file_name: Mapped[str] = mapped_column(sa.String(200), default="")
    error: Mapped[str] = mapped_column(sa.Text, default="")
    requested_by: Mapped[str] = mapped_column(sa.String(254), default="")
    # The process rendering it (host:pid) and when it last said so: a job whose worker is gone is failed.
    worker: Mapped[str] = mapped_column(sa.String(120), default="", server_default="")
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The queue's job that renders it (None: rendered during the request, or before the queue existed).
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("job.id", ondelete="SET NULL"), index=True)
