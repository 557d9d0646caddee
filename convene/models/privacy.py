"""Privacy: the record of each erasure of a convening's personal data, with the anonymous counts it kept."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from convene.models.base import Base, UTCDateTime, utcnow


class PersonalDataErasure(Base):
    """One erasure: when, who asked, how many of each kind of record it erased, and the counts it kept.

    The needs counts leave the registrations with the erasure (dietary and access needs are health and
    belief data), so the dashboard adds `kept_counts` back to show the same numbers as before.
    """

    __tablename__ = "personal_data_erasure"

    id: Mapped[int] = mapped_column(primary_key=True)
    convening_id: Mapped[int] = mapped_column(sa.ForeignKey("convening.id", ondelete="CASCADE"), index=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # An organizer's email, "retention (N months)" or "command line".
    erased_by: Mapped[str] = mapped_column(sa.String(254), default="")
    # What was erased, per kind: {"registrations": 12, "answers": 30, ...}.
    erased: Mapped[dict[str, int]] = mapped_column(sa.JSON, default=dict)
    # {"dietary": {"vegan": 3}, "dietary_notes": 1, "accessibility": {...}, "accessibility_notes": 0}
    kept_counts: Mapped[dict] = mapped_column(sa.JSON, default=dict)

    def __repr__(self) -> str:
        return f"<PersonalDataErasure convening={self.convening_id} at={self.erased_at}>"
