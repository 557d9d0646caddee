"""Scheduling cores on plain data: the conflict finder and the iCalendar writer.

Nothing here imports Flask or SQLAlchemy: services turn rows into these dataclasses, so the rules
are tested (and reasoned about) without a database.
"""
from convene.scheduling.conflicts import (
    BLOCKING,
    CONFLICT_KINDS,
    DEFAULT_RULES,
    WARNING,
    Conflict,
    RoomInfo,
    Schedule,
    SessionInfo,
    VisitBlockInfo,
    by_session,
    find_conflicts,
    new_blocking,
    overlaps,
    rules_with_defaults,
)

__all__ = [
    "BLOCKING", "CONFLICT_KINDS", "DEFAULT_RULES", "WARNING", "Conflict", "RoomInfo", "Schedule", "SessionInfo",
    "VisitBlockInfo", "by_session", "find_conflicts", "new_blocking", "overlaps", "rules_with_defaults",
]
