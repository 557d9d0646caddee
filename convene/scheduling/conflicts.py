"""The conflict finder: everything in a program that can collide, as a pure function of plain data.

Instants are timezone-aware; intervals are half-open [start, end), so a session ending at 10:00
and one starting at 10:00 touch but do not overlap. Comparing instants (not wall-clock times)
makes sessions across midnight and across a daylight-saving change come out right; the
convening's zone is used only to decide which local day a session falls on and to word messages.

Each kind of conflict is blocking (the editor refuses a change that creates one) or a warning
(saved and shown), as the organizer sets in `Schedule.rules`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

BLOCKING = "blocking"
WARNING = "warning"
SEVERITIES = (BLOCKING, WARNING)

# Kind -> (label, default severity), in the order organizers read them.
CONFLICT_KINDS: dict[str, tuple[str, str]] = {
    "room_double_booked": ("A room booked for two sessions at once", BLOCKING),
    "presenter_clash": ("A presenter in two places at once", BLOCKING),
    "outside_dates": ("A session outside the convening's dates", WARNING),
    "room_too_small": ("A room smaller than the session's sign-up capacity", WARNING),
    "room_inaccessible": ("A room without step-free access for attendees who need it", WARNING),
    "attendee_overlap": ("Attendees signed up to sessions that overlap", WARNING),
    "site_visit_overlap": ("A session overlapping a site-visit block its attendees are on", WARNING),
    "interpretation_missing": ("Attendees needing interpretation a session does not offer", WARNING),
}
DEFAULT_RULES: dict[str, str] = {kind: severity for kind, (_, severity) in CONFLICT_KINDS.items()}
# How many names a message lists before it says "and N more".
NAMES_SHOWN = 3


def rules_with_defaults(stored: Mapping[str, str] | None) -> dict[str, str]:
    """The stored severities over the defaults; unknown kinds and values are ignored."""
    rules = dict(DEFAULT_RULES)
    for kind, severity in (stored or {}).items():
        if kind in rules and severity in SEVERITIES:
            rules[kind] = severity
    return rules


@dataclass(frozen=True)
class RoomInfo:
    id: int
    name: str
    capacity: int | None = None
    accessible: bool = True


@dataclass(frozen=True)
class SessionInfo:
    """One session. `everyone` marks sessions the whole convening attends (plenaries, meals).

    `attendee_ids` are the people signed up; `presenter_people` the registrations of its linked
    presenters (checked for access and for being somewhere else at the time).
    """

    id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    room_id: int | None = None
    capacity: int | None = None
    presenter_ids: frozenset[int] = frozenset()
    attendee_ids: frozenset[int] = frozenset()
    presenter_people: frozenset[int] = frozenset()
    everyone: bool = False
    is_site_visit_block: bool = False
    # Languages interpreted into; None for sessions where interpretation is not expected (meals, networking).
    interpretation: frozenset[str] | None = None

    def __post_init__(self) -> None:
        for name in ("starts_at", "ends_at"):
            object.__setattr__(self, name, _utc(getattr(self, name), f"session {self.id}: {name}"))
        for name in ("presenter_ids", "attendee_ids", "presenter_people"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        if self.interpretation is not None:
            object.__setattr__(self, "interpretation", frozenset(self.interpretation))


@dataclass(frozen=True)
class VisitBlockInfo:
    """A site-visit slot and the people who are out on a visit during it."""

    id: int
    label: str
    starts_at: datetime
    ends_at: datetime
    people: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        for name in ("starts_at", "ends_at"):
            object.__setattr__(self, name, _utc(getattr(self, name), f"visit block {self.id}: {name}"))
        object.__setattr__(self, "people", frozenset(self.people))


@dataclass(frozen=True)
class Schedule:
    """Everything the finder looks at for one convening."""

    sessions: tuple[SessionInfo, ...]
    starts_on: date
    ends_on: date
    tz: ZoneInfo
    rooms: Mapping[int, RoomInfo] = field(default_factory=dict)
    presenters: Mapping[int, str] = field(default_factory=dict)  # presenter id -> name
    people: Mapping[int, str] = field(default_factory=dict)  # registration id -> name
    everyone_ids: frozenset[int] = frozenset()  # who attends `everyone` sessions
    needs_access: frozenset[int] = frozenset()  # who needs step-free access
    visit_blocks: tuple[VisitBlockInfo, ...] = ()
    rules: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RULES))
    interpretation_needs: Mapping[int, frozenset[str]] = field(default_factory=dict)  # registration id -> codes
    language_names: Mapping[str, str] = field(default_factory=dict)  # code -> name, for messages

    def __post_init__(self) -> None:
        object.__setattr__(self, "sessions", tuple(self.sessions))
        object.__setattr__(self, "visit_blocks", tuple(self.visit_blocks))
        object.__setattr__(self, "everyone_ids", frozenset(self.everyone_ids))
        object.__setattr__(self, "needs_access", frozenset(self.needs_access))
        object.__setattr__(self, "rules", rules_with_defaults(self.rules))

    def attendees(self, session: SessionInfo) -> frozenset[int]:
        return self.everyone_ids if session.everyone else session.attendee_ids


@dataclass(frozen=True)
class Conflict:
    """One thing that collides; `key` identifies it across edits (the people involved may change)."""

    kind: str
    severity: str
    session_ids: tuple[int, ...]
    message: str
    key: tuple
    people: tuple[int, ...] = ()

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCKING

    @property
    def label(self) -> str:
        return CONFLICT_KINDS[self.kind][0]


def _utc(instant: datetime, what: str) -> datetime:
    # Aware datetimes sharing one tzinfo compare by wall clock, ignoring `fold`: the repeated hour
    # of a fall-back night would look like the same hour. UTC has no repeated hours.
    if instant.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")
    return instant.astimezone(timezone.utc)


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Whether two half-open intervals share an instant (touching ends do not); compared in UTC."""
    a_start, a_end, b_start, b_end = (_utc(t, "an interval's end") for t in (a_start, a_end, b_start, b_end))
    return a_start < b_end and b_start < a_end


def find_conflicts(schedule: Schedule) -> list[Conflict]:
    """Every conflict in the schedule, blocking first, then by time."""
    found: list[Conflict] = []
    sessions = sorted(schedule.sessions, key=lambda s: (s.starts_at, s.ends_at, s.id))
    for session in sessions:
        found.extend(_single(schedule, session))
    for a, b in _overlapping_pairs(sessions):
        found.extend(_pair(schedule, a, b))
    for session in sessions:
        found.extend(_site_visits(schedule, session))
    starts = {s.id: s.starts_at for s in sessions}
    return sorted(found, key=lambda c: (c.severity != BLOCKING, min(starts[i] for i in c.session_ids),
                                        list(CONFLICT_KINDS).index(c.kind), c.session_ids))


def by_session(conflicts: Iterable[Conflict]) -> dict[int, list[Conflict]]:
    """Conflicts listed under each session they involve."""
    result: dict[int, list[Conflict]] = {}
    for conflict in conflicts:
        for session_id in conflict.session_ids:
            result.setdefault(session_id, []).append(conflict)
    return result


def new_blocking(before: Iterable[Conflict], after: Iterable[Conflict]) -> list[Conflict]:
    """Blocking conflicts in `after` that `before` did not have: what a change would create."""
    known = {c.key for c in before}
    return [c for c in after if c.blocking and c.key not in known]


# ---------------------------------------------------------------- the checks


def _conflict(schedule: Schedule, kind: str, sessions: tuple[SessionInfo, ...], message: str, extra=(),
              people: Iterable[int] = ()) -> Conflict:
    ids = tuple(sorted(s.id for s in sessions))
    return Conflict(kind=kind, severity=schedule.rules[kind], session_ids=ids, message=message,
                    key=(kind, ids, extra), people=tuple(sorted(people)))


def _single(schedule: Schedule, session: SessionInfo) -> list[Conflict]:
    found = []
    tz = schedule.tz
    first = datetime.combine(schedule.starts_on, time(0), tz)
    after_last = datetime.combine(schedule.ends_on + timedelta(days=1), time(0), tz)
    if session.starts_at < first or session.ends_at > after_last:
        found.append(_conflict(
            schedule, "outside_dates", (session,),
            f"{session.title} ({_span(session, tz)}) is outside the convening's dates "
            f"({schedule.starts_on:%d %b} – {schedule.ends_on:%d %b %Y}).",
        ))
    found.extend(_interpretation(schedule, session))
    room = schedule.rooms.get(session.room_id) if session.room_id is not None else None
    if room is None:
        return found
    if room.capacity is not None and session.capacity is not None and session.capacity > room.capacity:
        found.append(_conflict(
            schedule, "room_too_small", (session,),
            f"{session.title} takes {session.capacity} sign-ups but {room.name} holds {room.capacity}.",
            extra=(room.id,),
        ))
    if not room.accessible:
        needing = (schedule.attendees(session) | session.presenter_people) & schedule.needs_access
        if needing:
            found.append(_conflict(
                schedule, "room_inaccessible", (session,),
                f"{session.title} is in {room.name}, which has no step-free access, and "
                f"{_people(schedule, needing)} {'needs' if len(needing) == 1 else 'need'} it.",
                extra=(room.id,), people=needing,
            ))
    return found


def _interpretation(schedule: Schedule, session: SessionInfo) -> list[Conflict]:
    """One warning per language that people attending need and the session does not offer."""
    if session.interpretation is None:
        return []
    unmet: dict[str, set[int]] = {}
    for person in schedule.attendees(session):
        for code in schedule.interpretation_needs.get(person, ()):
            if code not in session.interpretation:
                unmet.setdefault(code, set()).add(person)
    return [
        _conflict(
            schedule, "interpretation_missing", (session,),
            f"{session.title} offers no interpretation into {schedule.language_names.get(code, code)}, and "
            f"{_people(schedule, people)} {'needs' if len(people) == 1 else 'need'} it.",
            extra=(code,), people=people,
        )
        for code, people in sorted(unmet.items())
    ]


def _overlapping_pairs(sessions: list[SessionInfo]):
    """Pairs of sessions that share an instant; `sessions` sorted by start."""
    for i, a in enumerate(sessions):
        for b in sessions[i + 1:]:
            if b.starts_at >= a.ends_at:
                break
            if overlaps(a.starts_at, a.ends_at, b.starts_at, b.ends_at):
                yield a, b


def _pair(schedule: Schedule, a: SessionInfo, b: SessionInfo) -> list[Conflict]:
    found = []
    tz = schedule.tz
    both = f"{a.title} ({_span(a, tz)}) and {b.title} ({_span(b, tz)})"
    if a.room_id is not None and a.room_id == b.room_id:
        room = schedule.rooms.get(a.room_id)
        name = room.name if room else "The same room"
        found.append(_conflict(schedule, "room_double_booked", (a, b), f"{name} is booked for both {both}.",
                               extra=(a.room_id,)))
    for presenter_id in sorted(a.presenter_ids & b.presenter_ids):
        name = schedule.presenters.get(presenter_id, "A presenter")
        found.append(_conflict(schedule, "presenter_clash", (a, b), f"{name} presents both {both}.",
                               extra=(presenter_id,)))
    # People who would have to be in both; a presenter of both is already a presenter clash.
    presenting_both = a.presenter_people & b.presenter_people
    in_both = ((schedule.attendees(a) | a.presenter_people) & (schedule.attendees(b) | b.presenter_people)
               ) - presenting_both
    if a.everyone and b.everyone:
        found.append(_conflict(schedule, "attendee_overlap", (a, b),
                               f"Everyone is expected at both {both}.", people=in_both))
    elif in_both:
        count = len(in_both)
        found.append(_conflict(
            schedule, "attendee_overlap", (a, b),
            f"{count} {'person is' if count == 1 else 'people are'} expected at both {both}: "
            f"{_people(schedule, in_both)}.",
            people=in_both,
        ))
    return found


def _site_visits(schedule: Schedule, session: SessionInfo) -> list[Conflict]:
    if session.is_site_visit_block:
        return []
    found = []
    tz = schedule.tz
    expected = schedule.attendees(session) | session.presenter_people
    for block in schedule.visit_blocks:
        if not overlaps(session.starts_at, session.ends_at, block.starts_at, block.ends_at):
            continue
        away = expected & block.people
        if away:
            found.append(_conflict(
                schedule, "site_visit_overlap", (session,),
                f"{session.title} ({_span(session, tz)}) overlaps the site visits of {block.label}, and "
                f"{len(away)} of its people {'is' if len(away) == 1 else 'are'} out on a visit then: "
                f"{_people(schedule, away)}.",
                extra=(block.id,), people=away,
            ))
    return found


# ---------------------------------------------------------------- wording


def _span(session: SessionInfo, tz: ZoneInfo) -> str:
    start, end = session.starts_at.astimezone(tz), session.ends_at.astimezone(tz)
    if start.date() == end.date():
        return f"{start:%a %d %b %H:%M}–{end:%H:%M}"
    return f"{start:%a %d %b %H:%M} – {end:%a %d %b %H:%M}"


def _people(schedule: Schedule, ids: Iterable[int]) -> str:
    names = sorted(schedule.people.get(i, f"registration {i}") for i in ids)
    if len(names) <= NAMES_SHOWN:
        return ", ".join(names)
    return f"{', '.join(names[:NAMES_SHOWN])} and {len(names) - NAMES_SHOWN} more"
