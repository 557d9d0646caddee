"""The program: sessions, rooms, presenters, conflicts, sign-ups, preference allocation and agendas.

Every write is one unit of work that locks the convening first (then a session), so sign-ups,
edits and allocations of one convening never interleave. An edit that would create a conflict the
organizer made blocking is refused (and rolled back); warnings are saved and reported back.
The conflict rules themselves live in `convene.scheduling`, on plain data.
"""
from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.orm import selectinload

from convene.assignment import Person, Problem, Visit, solve
from convene.errors import ConveneError, NotFound, MESSAGES
from convene.extensions import db
from convene.i18n import format_local, in_language, person_language
from convene.languages import INTERPRETATION_LANGUAGES, localized
from convene.models import (
    EVERYONE_KINDS,
    Convening,
    Presenter,
    ProgramSession,
    ProgramSettings,
    Registration,
    Room,
    SessionBlock,
    SessionKind,
    SessionPresenter,
    SessionPreference,
    SessionSignup,
    SiteVisit,
    Status,
    VisitAssignment,
    VisitSlot,
    utcnow,
)
from convene.models.visits import VISITING_ROLES
from convene.scheduling import (
    BLOCKING,
    CONFLICT_KINDS,
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
from convene.scheduling.calendar import CalendarEvent, build_calendar, event_location
from convene.services.db import lock, unit_of_work
from convene.services.mail import queue_email
from convene.services.previews import Deletion, Effect, digest, plural
from convene.services.registrations import manage_url

SESSION_FIELDS = (
    "title", "kind", "description", "track", "starts_at", "ends_at", "room_id", "location", "capacity",
    "signup_required", "block_id", "visit_slot_id", "presenter_ids", "interpretation",
)
ROOM_FIELDS = ("name", "capacity", "accessible", "floor", "notes", "position")
PRESENTER_FIELDS = ("registration_id", "name", "organization", "bio")
BLOCK_FIELDS = ("name", "preferences_open")
MAX_SESSION_HOURS = 24
MAX_CAPACITY = 100_000  # well inside the 32-bit columns
MAX_ID = 2**31 - 1  # ids are 32-bit: a larger one in a URL must be "not found", not a database error

# User-facing messages of this area (candidates for convene.errors.MESSAGES).
# Which form field a refused conflict is shown beside.
CONFLICT_FIELDS = {
    "room_double_booked": "room_id", "presenter_clash": "presenter_ids", "outside_dates": "starts_at",
    "room_too_small": "capacity", "room_inaccessible": "room_id", "attendee_overlap": "starts_at",
    "site_visit_overlap": "starts_at",
}

log = logging.getLogger(__name__)


def problem(code: str, field: str | None = None, message: str | None = None) -> ConveneError:
    """A ConveneError carrying this area's message for `code`."""
    return ConveneError(code, message or MESSAGES.get(code), field=field)


def _raise_problems(problems: list[ConveneError]) -> None:
    """Raise the first problem, carrying all of them so a form can show each beside its field."""
    if problems:
        first = problems[0]
        first.details["problems"] = problems
        raise first


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _optional_int(value) -> int | None:
    if value in (None, ""):
        return None
    return int(value)


def _check_capacity(value, problems: list[ConveneError]) -> int | None:
    value = _optional_int(value)
    if value is not None and value < 0:
        problems.append(problem("capacity_negative", "capacity"))
    elif value is not None and value > MAX_CAPACITY:
        problems.append(problem("capacity_too_large", "capacity"))
    return value


def _span_in(person: Registration, convening: Convening, session: ProgramSession) -> str:
    """When a session is, written in the person's language (for an email to them)."""
    with in_language(person_language(person, convening)):
        return span(convening, session.starts_at, session.ends_at)


def span(convening: Convening, starts_at: datetime, ends_at: datetime) -> str:
    """'Tue 09 Jun 10:00–11:30' in the convening's zone (both days shown when it crosses midnight)."""
    start, end = convening.local(starts_at), convening.local(ends_at)
    if start.date() == end.date():
        return f"{format_local(start, '%a %d %b %H:%M')}–{end:%H:%M}"
    return f"{format_local(start, '%a %d %b %H:%M')} – {format_local(end, '%a %d %b %H:%M')}"


# ---------------------------------------------------------------- reading


def settings_of(convening_id: int) -> ProgramSettings:
    """The convening's program settings; an unsaved default (a draft with default rules) if none yet."""
    settings = db.session.execute(
        sa.select(ProgramSettings).where(ProgramSettings.convening_id == convening_id)
    ).scalar_one_or_none()
    return settings or ProgramSettings(convening_id=convening_id, conflict_rules={}, published_at=None)


def is_published(convening_id: int) -> bool:
    return settings_of(convening_id).published_at is not None


def conflict_rules(convening_id: int) -> dict[str, str]:
    return rules_with_defaults(settings_of(convening_id).conflict_rules)


def rooms_of(convening_id: int) -> list[Room]:
    return db.session.execute(
        sa.select(Room).where(Room.convening_id == convening_id).order_by(Room.position, Room.name)
    ).scalars().all()


def presenters_of(convening_id: int) -> list[Presenter]:
    return db.session.execute(
        sa.select(Presenter).where(Presenter.convening_id == convening_id)
        .options(selectinload(Presenter.registration), selectinload(Presenter.session_links))
        .order_by(Presenter.name)
    ).scalars().all()


def blocks_of(convening_id: int) -> list[SessionBlock]:
    return db.session.execute(
        sa.select(SessionBlock).where(SessionBlock.convening_id == convening_id)
        .options(selectinload(SessionBlock.sessions)).order_by(SessionBlock.name)
    ).scalars().all()


def slots_of(convening_id: int) -> list[VisitSlot]:
    return db.session.execute(
        sa.select(VisitSlot).where(VisitSlot.convening_id == convening_id).order_by(VisitSlot.starts_at)
    ).scalars().all()


def sessions_of(convening_id: int) -> list[ProgramSession]:
    """The program in time order, with rooms, presenters and blocks loaded."""
    return db.session.execute(
        sa.select(ProgramSession).where(ProgramSession.convening_id == convening_id)
        .options(
            selectinload(ProgramSession.room), selectinload(ProgramSession.block),
            selectinload(ProgramSession.presenter_links).selectinload(SessionPresenter.presenter)
            .selectinload(Presenter.registration),
        )
        .order_by(ProgramSession.starts_at, ProgramSession.ends_at, ProgramSession.title, ProgramSession.id)
    ).scalars().all()


def valid_id(value: int) -> bool:
    return 0 < value <= MAX_ID


def session_of(convening: Convening, session_id: int) -> ProgramSession:
    """One of the convening's sessions, or NotFound."""
    session = db.session.get(ProgramSession, session_id) if valid_id(session_id) else None
    if session is None or session.convening_id != convening.id:
        raise NotFound("session_not_found")
    return session


def seats_taken(convening_id: int) -> dict[int, int]:
    """Sign-ups held per session (by confirmed registrations only: a cancellation frees the seat)."""
    rows = db.session.execute(
        sa.select(SessionSignup.session_id, sa.func.count())
        .join(Registration, Registration.id == SessionSignup.registration_id)
        .join(ProgramSession, ProgramSession.id == SessionSignup.session_id)
        .where(ProgramSession.convening_id == convening_id, Registration.status == Status.CONFIRMED)
        .group_by(SessionSignup.session_id)
    ).all()
    return dict(rows)


def signups_for(session_id: int) -> list[Registration]:
    """Who holds a seat in a session, by family name."""
    return db.session.execute(
        sa.select(Registration).join(SessionSignup, SessionSignup.registration_id == Registration.id)
        .where(SessionSignup.session_id == session_id, Registration.status == Status.CONFIRMED)
        .order_by(Registration.sort_key, Registration.id)
    ).scalars().all()


def registration_choices(convening_id: int) -> list[tuple[int, str]]:
    """Active registrations as (id, 'Name — Organization'), for linking presenters."""
    rows = db.session.execute(
        sa.select(Registration.id, Registration.given_name, Registration.family_name, Registration.organization)
        .where(Registration.convening_id == convening_id, Registration.status.in_(
            (Status.CONFIRMED, Status.OFFERED, Status.WAITLISTED)))
        .order_by(Registration.sort_key, Registration.id)
    ).all()
    return [(rid, f"{given} {family}".strip() + (f" — {org}" if org else "")) for rid, given, family, org in rows]


# Sessions nobody expects interpreted: the conflict finder does not ask them for interpretation.
UNINTERPRETED_KINDS = (SessionKind.MEAL, SessionKind.NETWORKING, SessionKind.SITE_VISIT)


def build_schedule(convening: Convening) -> Schedule:
    """The convening's program as plain data for the conflict finder (read fresh from the database)."""
    cid = convening.id
    rows = db.session.execute(
        sa.select(ProgramSession.id, ProgramSession.title, ProgramSession.starts_at, ProgramSession.ends_at,
                  ProgramSession.room_id, ProgramSession.capacity, ProgramSession.kind,
                  ProgramSession.signup_required, ProgramSession.interpretation)
        .where(ProgramSession.convening_id == cid)
    ).all()
    presenter_ids: dict[int, set[int]] = defaultdict(set)
    presenter_people: dict[int, set[int]] = defaultdict(set)
    for session_id, presenter_id, registration_id in db.session.execute(
        sa.select(SessionPresenter.session_id, SessionPresenter.presenter_id, Presenter.registration_id)
        .join(Presenter, Presenter.id == SessionPresenter.presenter_id)
        .where(Presenter.convening_id == cid)
    ).all():
        presenter_ids[session_id].add(presenter_id)
        if registration_id is not None:
            presenter_people[session_id].add(registration_id)
    attendees: dict[int, set[int]] = defaultdict(set)
    for session_id, registration_id in db.session.execute(
        sa.select(SessionSignup.session_id, SessionSignup.registration_id)
        .join(Registration, Registration.id == SessionSignup.registration_id)
        .where(Registration.convening_id == cid, Registration.status == Status.CONFIRMED)
    ).all():
        attendees[session_id].add(registration_id)
    people = db.session.execute(
        sa.select(Registration.id, Registration.given_name, Registration.family_name,
                  Registration.accessibility_needs, Registration.interpretation_needs)
        .where(Registration.convening_id == cid, Registration.status == Status.CONFIRMED)
    ).all()
    rooms = {
        r.id: RoomInfo(id=r.id, name=r.name, capacity=r.capacity, accessible=r.accessible)
        for r in db.session.execute(sa.select(Room).where(Room.convening_id == cid)).scalars()
    }
    presenter_names = {
        pid: (f"{given} {family}".strip() if rid is not None and given is not None else name)
        for pid, name, rid, given, family in db.session.execute(
            sa.select(Presenter.id, Presenter.name, Presenter.registration_id, Registration.given_name,
                      Registration.family_name)
            .outerjoin(Registration, Registration.id == Presenter.registration_id)
            .where(Presenter.convening_id == cid)
        ).all()
    }
    away: dict[int, set[int]] = defaultdict(set)
    for slot_id, registration_id in db.session.execute(
        sa.select(VisitAssignment.slot_id, VisitAssignment.registration_id)
        .join(Registration, Registration.id == VisitAssignment.registration_id)
        .where(Registration.convening_id == cid, Registration.status == Status.CONFIRMED,
               sa.or_(VisitAssignment.site_visit_id.is_not(None),
                      VisitAssignment.published_site_visit_id.is_not(None)))
    ).all():
        away[slot_id].add(registration_id)
    blocks = [
        VisitBlockInfo(id=slot.id, label=slot.label, starts_at=slot.starts_at, ends_at=slot.ends_at,
                       people=frozenset(away.get(slot.id, ())))
        for slot in slots_of(cid)
    ]
    sessions = [
        SessionInfo(
            id=sid, title=title, starts_at=starts_at, ends_at=ends_at, room_id=room_id, capacity=capacity,
            presenter_ids=frozenset(presenter_ids.get(sid, ())), attendee_ids=frozenset(attendees.get(sid, ())),
            presenter_people=frozenset(presenter_people.get(sid, ())),
            everyone=not signup and kind in EVERYONE_KINDS, is_site_visit_block=kind == SessionKind.SITE_VISIT,
            interpretation=None if kind in UNINTERPRETED_KINDS else frozenset(offered or ()),
        )
        for sid, title, starts_at, ends_at, room_id, capacity, kind, signup, offered in rows
    ]
    return Schedule(
        sessions=tuple(sessions), starts_on=convening.starts_on, ends_on=convening.ends_on, tz=convening.tz,
        rooms=rooms, presenters=presenter_names,
        people={rid: f"{given} {family}".strip() for rid, given, family, *_ in people},
        everyone_ids=frozenset(rid for rid, *_ in people),
        needs_access=frozenset(rid for rid, _, _, needs, _ in people if "step_free" in (needs or [])),
        visit_blocks=tuple(blocks), rules=rules_with_defaults(settings_of(cid).conflict_rules),
        interpretation_needs={rid: frozenset(langs) for rid, *_, langs in people if langs},
        language_names={code: str(name) for code, name in INTERPRETATION_LANGUAGES.items()},
    )


def program_conflicts(convening: Convening) -> list[Conflict]:
    return find_conflicts(build_schedule(convening))


@dataclass
class ProgramView:
    """What the organizer's pages show: sessions, rooms, seats taken and the conflicts of each session."""

    convening: Convening
    settings: ProgramSettings
    sessions: list[ProgramSession]
    rooms: list[Room]
    conflicts: list[Conflict]
    conflicts_by_session: dict[int, list[Conflict]]
    taken: dict[int, int]

    @property
    def days(self) -> list[date]:
        return program_days(self.convening, self.sessions)

    @property
    def blocking(self) -> list[Conflict]:
        return [c for c in self.conflicts if c.blocking]

    @property
    def warnings(self) -> list[Conflict]:
        return [c for c in self.conflicts if not c.blocking]


def program_view(convening: Convening) -> ProgramView:
    conflicts = program_conflicts(convening)
    return ProgramView(
        convening=convening, settings=settings_of(convening.id), sessions=sessions_of(convening.id),
        rooms=rooms_of(convening.id), conflicts=conflicts, conflicts_by_session=by_session(conflicts),
        taken=seats_taken(convening.id),
    )


def local_day(convening: Convening, session: ProgramSession) -> date:
    return convening.local(session.starts_at).date()


def program_days(convening: Convening, sessions: list[ProgramSession]) -> list[date]:
    """The convening's days, plus any other day a session starts on (so nothing is hidden)."""
    days = {convening.starts_on + timedelta(days=n) for n in range((convening.ends_on - convening.starts_on).days + 1)}
    days.update(local_day(convening, s) for s in sessions)
    return sorted(days)


def sessions_by_day(convening: Convening, sessions: list[ProgramSession]) -> list[tuple[date, list[ProgramSession]]]:
    grouped: dict[date, list[ProgramSession]] = defaultdict(list)
    for session in sessions:
        grouped[local_day(convening, session)].append(session)
    return [(day, grouped[day]) for day in sorted(grouped)]


# ---------------------------------------------------------------- the day grid


@dataclass
class GridCell:
    """A cell of the grid: the sessions in it (more than one only when a room is double-booked)."""

    starts_at: datetime
    rowspan: int = 1
    sessions: list[ProgramSession] = field(default_factory=list)


@dataclass
class GridRow:
    starts_at: datetime
    label: str
    cells: list[GridCell | None]  # None: covered by a cell above


@dataclass
class Grid:
    day: date
    columns: list[Room | None]  # None: sessions without a room (off-site)
    rows: list[GridRow]


def day_grid(convening: Convening, day: date, sessions: list[ProgramSession], rooms: list[Room]) -> Grid:
    """Rooms as columns, time as rows: one row per instant a session on `day` starts or ends."""
    todays = [s for s in sessions if local_day(convening, s) == day]
    columns: list[Room | None] = list(rooms)
    if any(s.room_id is None for s in todays):
        columns.append(None)
    bounds = sorted({s.starts_at for s in todays} | {s.ends_at for s in todays})
    index = {instant: i for i, instant in enumerate(bounds)}
    starts: list[dict[int, GridCell]] = []
    for column in columns:
        mine = sorted((s for s in todays if s.room_id == (column.id if column else None)),
                      key=lambda s: (s.starts_at, s.ends_at, s.id))
        cells: dict[int, GridCell] = {}
        current: GridCell | None = None
        current_end: datetime | None = None
        for session in mine:
            if current is not None and session.starts_at < current_end:
                current.sessions.append(session)  # overlaps: a double booking shares the cell
                current_end = max(current_end, session.ends_at)
            else:
                if current is not None:
                    current.rowspan = index[current_end] - index[current.starts_at]
                current = GridCell(starts_at=session.starts_at, sessions=[session])
                current_end = session.ends_at
                cells[index[session.starts_at]] = current
        if current is not None:
            current.rowspan = index[current_end] - index[current.starts_at]
        starts.append(cells)
    rows: list[GridRow] = []
    covered_until = [0] * len(columns)
    for i, instant in enumerate(bounds[:-1]):
        row_cells: list[GridCell | None] = []
        for c in range(len(columns)):
            cell = starts[c].get(i)
            if cell is not None:
                row_cells.append(cell)
                covered_until[c] = i + cell.rowspan
            elif i < covered_until[c]:
                row_cells.append(None)
            else:
                row_cells.append(GridCell(starts_at=instant))
        local = convening.local(instant)
        label = f"{local:%H:%M}" + (" (+1)" if local.date() > day else "")
        rows.append(GridRow(starts_at=instant, label=label, cells=row_cells))
    return Grid(day=day, columns=columns, rows=rows)


# ---------------------------------------------------------------- checking changes


@dataclass
class Saved:
    """A session as saved, with the warnings that now involve it."""

    session: ProgramSession
    warnings: list[Conflict]


def _guard(convening: Convening, before: list[Conflict], session_ids: set[int]) -> list[Conflict]:
    """After a change (flushed): refuse it if it created a blocking conflict; else its warnings."""
    db.session.flush()
    after = program_conflicts(convening)
    created = new_blocking(before, after)
    if created:
        first = created[0]
        raise ConveneError(
            "schedule_conflict",
            f"{first.message} ({CONFLICT_KINDS[first.kind][0]} is blocking for this convening.)",
            field=CONFLICT_FIELDS.get(first.kind), conflicts=created,
        )
    return [c for c in after if not c.blocking and session_ids & set(c.session_ids)]


def _lock_convening(convening_id: int) -> Convening:
    convenings = lock(Convening, convening_id)
    if not convenings:
        raise ConveneError("convening_not_found", status_code=404)
    return convenings[0]


def _locked_session(session_id: int) -> tuple[Convening, ProgramSession]:
    """Lock the session's convening, then the session (always in that order)."""
    session = db.session.get(ProgramSession, session_id) if valid_id(session_id) else None
    if session is None:
        raise NotFound("session_not_found")
    convening = _lock_convening(session.convening_id)
    [session] = lock(ProgramSession, session_id)
    return convening, session


def _ids_of(model, convening_id: int) -> set[int]:
    return set(db.session.execute(sa.select(model.id).where(model.convening_id == convening_id)).scalars())


def clean_session(convening: Convening, data: dict) -> dict:
    """A session's fields, normalized, its times read in the convening's zone; raises with every problem."""
    from convene.services.convenings import local_to_utc

    problems: list[ConveneError] = []
    clean = {key: data[key] for key in SESSION_FIELDS if key in data}
    for key in ("title", "description", "track", "location"):
        clean[key] = _text(clean.get(key))
    if not clean["title"]:
        problems.append(problem("title_required", "title"))
    for key, limit in (("title", 200), ("track", 120), ("location", 300), ("description", 20000)):
        if len(clean[key]) > limit:
            problems.append(problem("too_long_text", key, f"Use at most {limit} characters."))
    kind = clean.get("kind") or SessionKind.PLENARY
    if kind not in set(SessionKind):
        problems.append(problem("kind_invalid", "kind"))
    clean["kind"] = str(kind)
    tz = convening.tz
    for key in ("starts_at", "ends_at"):
        try:
            clean[key] = local_to_utc(clean.get(key), tz, field=key)
        except ConveneError as error:
            problems.append(error)
            clean[key] = None
        if clean[key] is None and not any(p.field == key for p in problems):
            problems.append(problem("times_required", key, "Enter when the session "
                                    + ("starts." if key == "starts_at" else "ends.")))
    starts_at, ends_at = clean["starts_at"], clean["ends_at"]
    if starts_at and ends_at:
        if ends_at <= starts_at:
            problems.append(problem("ends_before_start", "ends_at"))
        elif ends_at - starts_at > timedelta(hours=MAX_SESSION_HOURS):
            problems.append(problem("too_long", "ends_at"))
    clean["capacity"] = _check_capacity(clean.get("capacity"), problems)
    clean["signup_required"] = bool(clean.get("signup_required"))
    for key, model, code in (("room_id", Room, "room_unknown"), ("block_id", SessionBlock, "block_unknown"),
                             ("visit_slot_id", VisitSlot, "slot_unknown")):
        clean[key] = _optional_int(clean.get(key))
        if clean[key] is not None and clean[key] not in _ids_of(model, convening.id):
            problems.append(problem(code, key))
    if clean["block_id"] is not None:
        clean["signup_required"] = True  # places in a block are seats, given out by the allocation
    presenter_ids = [int(p) for p in (clean.get("presenter_ids") or [])]
    if set(presenter_ids) - _ids_of(Presenter, convening.id):
        problems.append(problem("presenter_unknown", "presenter_ids"))
    clean["presenter_ids"] = list(dict.fromkeys(presenter_ids))
    if "interpretation" in clean:
        offered = [code for code in clean["interpretation"] or [] if isinstance(code, str)]
        if set(offered) - set(INTERPRETATION_LANGUAGES):
            problems.append(problem("session_interpretation_unknown", "interpretation"))
        clean["interpretation"] = [code for code in INTERPRETATION_LANGUAGES if code in offered]
    _raise_problems(problems)
    return clean


def _apply(session: ProgramSession, clean: dict) -> None:
    presenter_ids = clean.pop("presenter_ids", None)
    for key, value in clean.items():
        setattr(session, key, value)
    if presenter_ids is not None:
        existing = {link.presenter_id: link for link in session.presenter_links}
        session.presenter_links = [
            existing.get(pid) or SessionPresenter(presenter_id=pid) for pid in presenter_ids
        ]
        for position, link in enumerate(session.presenter_links):
            link.position = position


def create_session(convening_id: int, data: dict) -> Saved:
    """Add a session to the program."""
    with unit_of_work():
        convening = _lock_convening(convening_id)
        clean = clean_session(convening, data)
        before = program_conflicts(convening)
        session = ProgramSession(convening_id=convening.id)
        _apply(session, clean)
        db.session.add(session)
        db.session.flush()
        warnings = _guard(convening, before, {session.id})
    return Saved(session, warnings)


def update_session(session_id: int, data: dict) -> Saved:
    """Change a session (any of SESSION_FIELDS); calendar copies are replaced via its SEQUENCE."""
    with unit_of_work():
        convening, session = _locked_session(session_id)
        current = session_data(session)
        current.update({k: v for k, v in data.items() if k in SESSION_FIELDS})
        clean = clean_session(convening, current)
        before = program_conflicts(convening)
        _apply(session, clean)
        session.sequence += 1
        warnings = _guard(convening, before, {session.id})
    return Saved(session, warnings)


def session_data(session: ProgramSession) -> dict:
    """A session's fields as clean_session takes them (instants stay aware, so they pass through)."""
    data = {key: getattr(session, key) for key in SESSION_FIELDS if key != "presenter_ids"}
    data["presenter_ids"] = [link.presenter_id for link in session.presenter_links]
    return data


def duplicate_session(session_id: int, changes: dict | None = None) -> Saved:
    """A copy of a session (presenters included), with `changes` applied, e.g. another time or room."""
    with unit_of_work():
        convening, original = _locked_session(session_id)
        data = session_data(original)
        data.update({k: v for k, v in (changes or {}).items() if k in SESSION_FIELDS})
        clean = clean_session(convening, data)
        before = program_conflicts(convening)
        copy = ProgramSession(convening_id=convening.id)
        _apply(copy, clean)
        db.session.add(copy)
        db.session.flush()
        warnings = _guard(convening, before, {copy.id})
    return Saved(copy, warnings)


def move_session(session_id: int, starts_at: datetime | None, room_id: int | None) -> Saved:
    """Move a session to another start (a wall-clock time in the convening's zone) and room; its length stays."""
    from convene.services.convenings import local_to_utc

    with unit_of_work():
        convening, session = _locked_session(session_id)
        if starts_at is None:
            raise problem("times_required", "starts_at", "Enter when the session starts.")
        start = local_to_utc(starts_at, convening.tz, field="starts_at")
        length = session.ends_at - session.starts_at
        data = session_data(session)
        data.update(starts_at=start, ends_at=start + length, room_id=room_id)
        clean = clean_session(convening, data)
        before = program_conflicts(convening)
        _apply(session, clean)
        session.sequence += 1
        warnings = _guard(convening, before, {session.id})
    return Saved(session, warnings)


@dataclass
class SessionDeletion:
    """What deleting a session does: whether the program is public, who holds a seat, and a token of that."""

    session: ProgramSession
    published: bool
    people: list[Registration]
    token: str


def _deletion_of(convening: Convening, session: ProgramSession) -> SessionDeletion:
    people = signups_for(session.id)
    token = hashlib.sha256(repr((session.id, session.sequence, [p.id for p in people])).encode()).hexdigest()[:32]
    return SessionDeletion(session=session, published=settings_of(convening.id).published, people=people,
                           token=token)


def deletion_preview(session_id: int) -> SessionDeletion:
    """Who deleting this session would email now, for its confirmation page."""
    session = db.session.get(ProgramSession, session_id)
    return _deletion_of(db.session.get(Convening, session.convening_id), session)


def delete_session(session_id: int, *, reason: str = "", expected: str | None = None) -> str:
    """Delete a session with its sign-ups and rankings; returns its title.

    Once the program is published a reason is required and every person signed up is emailed it.
    With `expected` (the token of the confirmed preview), refuse if the people signed up changed since.
    """
    reason = _text(reason)
    with unit_of_work():
        convening, session = _locked_session(session_id)
        deletion = _deletion_of(convening, session)
        if expected is not None and expected != deletion.token:
            raise ConveneError("delete_preview_changed")
        if deletion.published and not reason:
            raise ConveneError("delete_reason_required", field="reason")
        title = session.title
        for person in deletion.people:
            with in_language(person_language(person, convening)):
                their_title = localized(session, "title")
                when = span(convening, session.starts_at, session.ends_at)
            queue_email("session_cancelled", person.email,
                        lambda title=their_title: gettext("Cancelled: %(title)s at %(convening)s", title=title,
                                                          convening=localized(convening, "name")),
                        "session_cancelled", registration=person, convening=convening, title=their_title, when=when,
                        reason=reason)
        db.session.execute(sa.delete(SessionPreference).where(SessionPreference.session_id == session.id))
        db.session.delete(session)
    if deletion.published:
        # No column keeps the reason (the schema is fixed), so this line and the emails are its record.
        log.info("session %s (%r) of convening %s deleted from the published program, %d people emailed; "
                 "reason: %r", session_id, title, convening.id, len(deletion.people), reason)
    return title


# ---------------------------------------------------------------- rooms


def clean_room(data: dict) -> dict:
    problems: list[ConveneError] = []
    clean = {key: data[key] for key in ROOM_FIELDS if key in data}
    for key in ("name", "floor", "notes"):
        clean[key] = _text(clean.get(key))
    if not clean["name"]:
        problems.append(problem("name_required", "name"))
    clean["capacity"] = _check_capacity(clean.get("capacity"), problems)
    clean["accessible"] = bool(clean.get("accessible", True))
    clean["position"] = max(-9999, min(9999, _optional_int(clean.get("position")) or 0))
    _raise_problems(problems)
    return clean


def _room_name_taken(convening_id: int, name: str, room_id: int | None = None) -> bool:
    query = sa.select(Room.id).where(Room.convening_id == convening_id, sa.func.lower(Room.name) == name.lower())
    if room_id is not None:
        query = query.where(Room.id != room_id)
    return db.session.execute(query).first() is not None


def create_room(convening_id: int, data: dict) -> Room:
    with unit_of_work():
        convening = _lock_convening(convening_id)
        clean = clean_room(data)
        if _room_name_taken(convening.id, clean["name"]):
            raise problem("room_exists", "name")
        room = Room(convening_id=convening.id, **clean)
        db.session.add(room)
    return room


def update_room(room_id: int, data: dict) -> tuple[Room, list[Conflict]]:
    """Change a room; refused if its new size or access makes a blocking conflict."""
    with unit_of_work():
        room = db.session.get(Room, room_id)
        if room is None:
            raise NotFound("room_not_found")
        convening = _lock_convening(room.convening_id)
        clean = clean_room(data)
        if _room_name_taken(convening.id, clean["name"], room.id):
            raise problem("room_exists", "name")
        before = program_conflicts(convening)
        for key, value in clean.items():
            setattr(room, key, value)
        in_room = set(db.session.execute(sa.select(ProgramSession.id).where(ProgramSession.room_id == room.id))
                      .scalars())
        warnings = _guard(convening, before, in_room)
    return room, warnings


def _room(room_id: int) -> Room:
    room = db.session.get(Room, room_id) if valid_id(room_id) else None
    if room is None:
        raise NotFound("room_not_found")
    return room


def _room_deletion(room: Room) -> Deletion:
    sessions = db.session.execute(sa.select(ProgramSession).where(ProgramSession.room_id == room.id)
                                  .order_by(ProgramSession.starts_at, ProgramSession.id)).scalars().all()
    used = len(sessions)
    convening = db.session.get(Convening, room.convening_id)
    effects = [Effect("sessions", f"{plural(used, 'session')} {'is' if used == 1 else 'are'} scheduled in it",
                      [f"{s.title} ({span(convening, s.starts_at, s.ends_at)})" for s in sessions])] if used else []
    blocked = problem("room_in_use", message=f"{used} session{'s are' if used != 1 else ' is'} scheduled in "
                      f"{room.name}; move or delete {'them' if used != 1 else 'it'} first.") if used else None
    return Deletion(kind="room", name=room.name, effects=effects, blocked=blocked,
                    token=digest("room", room.id, [s.id for s in sessions]), done=f"Room {room.name} is deleted.")


def room_deletion(room_id: int) -> Deletion:
    """What deleting a room would do now (refused while sessions are scheduled in it), for its confirmation."""
    return _room_deletion(_room(room_id))


def delete_room(room_id: int, *, expected: str | None = None) -> Deletion:
    """Delete a room no session uses; with `expected`, refuse if that changed since the confirmed preview."""
    with unit_of_work():
        room = _room(room_id)
        _lock_convening(room.convening_id)
        deletion = _room_deletion(room)
        deletion.check(expected)
        db.session.delete(room)
    return deletion


# ---------------------------------------------------------------- presenters


def clean_presenter(convening_id: int, data: dict, presenter_id: int | None = None) -> dict:
    problems: list[ConveneError] = []
    clean = {key: data[key] for key in PRESENTER_FIELDS if key in data}
    for key in ("name", "organization", "bio"):
        clean[key] = _text(clean.get(key))
    clean["registration_id"] = _optional_int(clean.get("registration_id"))
    registration = None
    if clean["registration_id"] is not None:
        registration = db.session.get(Registration, clean["registration_id"])
        if registration is None or registration.convening_id != convening_id:
            problems.append(problem("registration_unknown", "registration_id"))
        else:
            query = sa.select(Presenter.id).where(Presenter.registration_id == registration.id)
            if presenter_id is not None:
                query = query.where(Presenter.id != presenter_id)
            if db.session.execute(query).first():
                problems.append(problem("already_presenter", "registration_id"))
            clean["name"] = clean["name"] or registration.full_name
            clean["organization"] = clean["organization"] or registration.organization
    if not clean["name"]:
        problems.append(problem("name_required", "name", "Enter a name, or choose a registered person."))
    if len(clean["bio"]) > 1000:
        problems.append(problem("bio_too_long", "bio", "Keep the bio under 1000 characters."))
    _raise_problems(problems)
    return clean


def create_presenter(convening_id: int, data: dict) -> Presenter:
    with unit_of_work():
        convening = _lock_convening(convening_id)
        presenter = Presenter(convening_id=convening.id, **clean_presenter(convening.id, data))
        db.session.add(presenter)
    return presenter


def update_presenter(presenter_id: int, data: dict) -> tuple[Presenter, list[Conflict]]:
    with unit_of_work():
        presenter = db.session.get(Presenter, presenter_id)
        if presenter is None:
            raise NotFound("presenter_not_found")
        convening = _lock_convening(presenter.convening_id)
        clean = clean_presenter(convening.id, data, presenter.id)
        before = program_conflicts(convening)
        for key, value in clean.items():
            setattr(presenter, key, value)
        sessions = {link.session_id for link in presenter.session_links}
        warnings = _guard(convening, before, sessions)
    return presenter, warnings


def _presenter(presenter_id: int) -> Presenter:
    presenter = db.session.get(Presenter, presenter_id) if valid_id(presenter_id) else None
    if presenter is None:
        raise NotFound("presenter_not_found")
    return presenter


def _presenter_deletion(presenter: Presenter) -> Deletion:
    sessions = db.session.execute(
        sa.select(ProgramSession).join(SessionPresenter, SessionPresenter.session_id == ProgramSession.id)
        .where(SessionPresenter.presenter_id == presenter.id).order_by(ProgramSession.starts_at, ProgramSession.id)
    ).scalars().all()
    name, count = presenter.display_name, len(sessions)
    effects = [Effect("sessions", f"{plural(count, 'session')} {'loses' if count == 1 else 'lose'} {name} as a "
                      f"presenter and {'stays' if count == 1 else 'stay'} in the program",
                      [s.title for s in sessions])] if sessions else []
    if presenter.registration_id is not None:
        effects.append(Effect("registration", "Their registration stays as it is"))
    return Deletion(kind="presenter", name=name, effects=effects,
                    token=digest("presenter", presenter.id, [s.id for s in sessions]),
                    done=f"{name} is removed from the presenters"
                    + (f" and from {plural(count, 'session')}." if count else "."))


def presenter_deletion(presenter_id: int) -> Deletion:
    """Which sessions removing a presenter would leave without them now, for its confirmation page."""
    return _presenter_deletion(_presenter(presenter_id))


def delete_presenter(presenter_id: int, *, expected: str | None = None) -> Deletion:
    """Remove a presenter (their sessions stay); with `expected`, refuse if their sessions changed since."""
    with unit_of_work():
        presenter = _presenter(presenter_id)
        _lock_convening(presenter.convening_id)
        deletion = _presenter_deletion(presenter)
        deletion.check(expected)
        db.session.delete(presenter)
    return deletion


# ---------------------------------------------------------------- blocks, rules, publishing


def _block(block_id: int) -> SessionBlock:
    block = db.session.get(SessionBlock, block_id) if valid_id(block_id) else None
    if block is None:
        raise NotFound("block_not_found")
    return block


def save_block(convening_id: int, data: dict, block_id: int | None = None, *,
               expected: str | None = None) -> SessionBlock:
    """Create or change a block of sessions allocated by preference; opening its ranking emails the attendees.

    With `expected` (the token of the audience the organizer confirmed), opening is refused if who
    would be emailed changed since.
    """
    with unit_of_work():
        convening = _lock_convening(convening_id)
        name = _text(data.get("name"))
        if not name:
            raise problem("name_required", "name")
        query = sa.select(SessionBlock.id).where(SessionBlock.convening_id == convening.id,
                                                 sa.func.lower(SessionBlock.name) == name.lower())
        if block_id is not None:
            query = query.where(SessionBlock.id != block_id)
        if db.session.execute(query).first():
            raise problem("block_exists", "name")
        if block_id is None:
            block = SessionBlock(convening_id=convening.id)
            db.session.add(block)
        else:
            block = _block(block_id)
            if block.convening_id != convening.id:
                raise NotFound("block_not_found")
        block.name = name
        opening = bool(data.get("preferences_open")) and not block.preferences_open
        block.preferences_open = bool(data.get("preferences_open"))
        db.session.flush()
        audience = ranking_audience(convening.id) if opening else []
        if opening and expected is not None and expected != audience_token(audience):
            raise ConveneError("ranking_audience_changed")
        for person in audience:
            queue_email("rankings_open", person.email,
                        lambda: gettext("Rank the sessions of %(block)s at %(convening)s", block=name,
                                        convening=localized(convening, "name")),
                        "rankings_open", registration=person, convening=convening, block=block,
                        manage_url=manage_url(person))
    # Not a column: how many were told ranking opened, for the view's message.
    block.notified = len(audience)
    return block


def ranking_audience(convening_id: int) -> list[Registration]:
    """Who is emailed when a block's ranking opens: every confirmed attendee, by name."""
    return db.session.execute(
        sa.select(Registration).where(Registration.convening_id == convening_id,
                                      Registration.status == Status.CONFIRMED)
        .order_by(Registration.sort_key, Registration.id)
    ).scalars().all()


def audience_token(audience: list[Registration]) -> str:
    """A short name for exactly who opening a ranking emails (each person and the address used)."""
    return digest("ranking", [(r.id, r.email) for r in audience])


def _block_deletion(block: SessionBlock) -> Deletion:
    sessions = db.session.execute(sa.select(ProgramSession).where(ProgramSession.block_id == block.id)
                                  .order_by(ProgramSession.starts_at, ProgramSession.id)).scalars().all()
    rankings = db.session.execute(
        sa.select(SessionPreference.id).where(SessionPreference.block_id == block.id)).scalars().all()
    people = db.session.execute(
        sa.select(Registration).where(Registration.id.in_(
            sa.select(SessionPreference.registration_id).where(SessionPreference.block_id == block.id)))
        .order_by(Registration.sort_key, Registration.id)
    ).scalars().all()
    effects = []
    if sessions:
        one = len(sessions) == 1
        effects.append(Effect("sessions", f"{plural(len(sessions), 'session')} {'leaves' if one else 'leave'} the "
                              f"block and {'stays' if one else 'stay'} in the program with "
                              f"{'its' if one else 'their'} sign-ups", [s.title for s in sessions]))
    if people:
        effects.append(Effect("rankings", f"{plural(len(people), 'person', 'people')}'s "
                              f"{'ranking is' if len(people) == 1 else 'rankings are'} deleted",
                              [p.full_name for p in people]))
    return Deletion(kind="block", name=block.name, effects=effects,
                    token=digest("block", block.id, [s.id for s in sessions], sorted(rankings)),
                    done=f"Block {block.name} is deleted; its sessions stay in the program"
                    + (f" and {plural(len(people), 'ranking')} of it {'is' if len(people) == 1 else 'are'} deleted."
                       if people else "."))


def block_deletion(block_id: int) -> Deletion:
    """What deleting a block would do now (its sessions, whose rankings go), for its confirmation page."""
    return _block_deletion(_block(block_id))


def delete_block(block_id: int, *, expected: str | None = None) -> Deletion:
    """Delete a block: its sessions stay (no longer allocated), rankings for it go.

    With `expected` (the token of the confirmed preview), refuse if its sessions or rankings changed since.
    """
    with unit_of_work():
        block = _block(block_id)
        _lock_convening(block.convening_id)
        deletion = _block_deletion(block)
        deletion.check(expected)
        db.session.delete(block)
    return deletion


def _settings_for_update(convening_id: int) -> ProgramSettings:
    settings = db.session.execute(
        sa.select(ProgramSettings).where(ProgramSettings.convening_id == convening_id)
    ).scalar_one_or_none()
    if settings is None:
        settings = ProgramSettings(convening_id=convening_id, conflict_rules={})
        db.session.add(settings)
    return settings


def set_conflict_rules(convening_id: int, rules: dict[str, str]) -> dict[str, str]:
    """Store which conflict kinds are blocking and which are warnings."""
    with unit_of_work():
        convening = _lock_convening(convening_id)
        for kind, severity in rules.items():
            if kind not in CONFLICT_KINDS or severity not in ("blocking", "warning"):
                raise problem("rule_invalid", f"rule_{kind}")
        settings = _settings_for_update(convening.id)
        settings.conflict_rules = {kind: rules.get(kind, severity)
                                   for kind, severity in rules_with_defaults(settings.conflict_rules).items()}
        stored = dict(settings.conflict_rules)
    return stored


def warnings_token(conflicts: list[Conflict]) -> str:
    """A short name for the set of open warnings the organizer confirmed publishing over."""
    keys = sorted(repr((c.kind, c.key)) for c in conflicts if not c.blocking)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:32]


def publish_program(convening_id: int, now: datetime | None = None, *, expected: str | None = None) -> int:
    """Show the program publicly; refused while blocking conflicts remain; returns the open warnings left.

    With `expected` (the token of the warnings shown on the confirmation), refuse if they changed since.
    """
    with unit_of_work():
        convening = _lock_convening(convening_id)
        conflicts = program_conflicts(convening)
        if any(c.blocking for c in conflicts):
            raise problem("publish_blocked")
        if expected is not None and expected != warnings_token(conflicts):
            raise ConveneError("publish_warnings_changed")
        settings = _settings_for_update(convening.id)
        settings.published_at = now or utcnow()
    return sum(1 for c in conflicts if not c.blocking)


def unpublish_program(convening_id: int) -> None:
    """Take the program back to draft (sign-ups stay)."""
    with unit_of_work():
        convening = _lock_convening(convening_id)
        _settings_for_update(convening.id).published_at = None


# ---------------------------------------------------------------- sign-ups


def _clash(registration: Registration, session: ProgramSession) -> str | None:
    """Why the person cannot be in `session` too: another sign-up, a session they present, a site visit."""
    mine = db.session.execute(
        sa.select(ProgramSession).join(SessionSignup, SessionSignup.session_id == ProgramSession.id)
        .where(SessionSignup.registration_id == registration.id, ProgramSession.id != session.id,
               ProgramSession.starts_at < session.ends_at, ProgramSession.ends_at > session.starts_at)
        .order_by(ProgramSession.starts_at)
    ).scalars().first()
    convening = registration.convening
    if mine is not None:
        return gettext("You are signed up for %(title)s (%(when)s), which overlaps this session. Leave it first if "
                       "you would rather come to this one.", title=localized(mine, "title"),
                       when=span(convening, mine.starts_at, mine.ends_at))
    presenting = db.session.execute(
        sa.select(ProgramSession).join(SessionPresenter, SessionPresenter.session_id == ProgramSession.id)
        .join(Presenter, Presenter.id == SessionPresenter.presenter_id)
        .where(Presenter.registration_id == registration.id, ProgramSession.id != session.id,
               ProgramSession.starts_at < session.ends_at, ProgramSession.ends_at > session.starts_at)
    ).scalars().first()
    if presenting is not None:
        return gettext("You present %(title)s (%(when)s) at the same time.", title=localized(presenting, "title"),
                       when=span(convening, presenting.starts_at, presenting.ends_at))
    visit = db.session.execute(
        sa.select(VisitSlot).join(VisitAssignment, VisitAssignment.slot_id == VisitSlot.id)
        .where(VisitAssignment.registration_id == registration.id,
               sa.or_(VisitAssignment.site_visit_id.is_not(None),
                      VisitAssignment.published_site_visit_id.is_not(None)),
               VisitSlot.starts_at < session.ends_at, VisitSlot.ends_at > session.starts_at)
    ).scalars().first()
    if visit is not None:
        return gettext("You are on a site visit then (%(slot)s, %(when)s).", slot=visit.label,
                       when=span(convening, visit.starts_at, visit.ends_at))
    return None


def sign_up(registration_id: int, session_id: int, *, source: str = "self", now: datetime | None = None
            ) -> SessionSignup:
    """Take a seat in a session that needs sign-up: capacity counted under lock, overlaps refused."""
    now = now or utcnow()
    with unit_of_work():
        registration = db.session.get(Registration, registration_id)
        if registration is None:
            raise ConveneError("link_invalid")
        convening = _lock_convening(registration.convening_id)
        sessions = lock(ProgramSession, session_id) if valid_id(session_id) else []
        if not sessions or sessions[0].convening_id != convening.id:
            raise NotFound("session_not_found")
        session = sessions[0]
        if not is_published(convening.id):
            raise problem("program_not_published")
        if not session.signup_required:
            raise problem("signup_not_needed")
        if registration.status != Status.CONFIRMED:
            raise problem("signup_not_confirmed")
        if session.block is not None and session.block.preferences_open:
            raise problem("signup_by_ranking")
        if session.ends_at <= now:
            raise problem("session_over")
        already = db.session.execute(
            sa.select(SessionSignup.id).where(SessionSignup.session_id == session.id,
                                              SessionSignup.registration_id == registration.id)
        ).first()
        if already:
            raise problem("already_signed_up")
        limit = session.seat_limit
        if limit is not None:
            taken = db.session.scalar(
                sa.select(sa.func.count(SessionSignup.id))
                .join(Registration, Registration.id == SessionSignup.registration_id)
                .where(SessionSignup.session_id == session.id, Registration.status == Status.CONFIRMED)
            )
            if taken >= limit:
                raise problem("session_full")
        reason = _clash(registration, session)
        if reason:
            raise problem("signup_overlap", message=reason)
        room = session.room
        if (room is not None and not room.accessible and registration.needs_step_free_access
                and conflict_rules(convening.id)["room_inaccessible"] == BLOCKING):
            raise problem("signup_inaccessible", message=f"{room.name} has no step-free access, so we cannot "
                          "offer you a seat there. Please contact the organizers.")
        signup = SessionSignup(session_id=session.id, registration_id=registration.id, source=source)
        db.session.add(signup)
    return signup


def leave_session(registration_id: int, session_id: int) -> None:
    """Give a seat back."""
    with unit_of_work():
        registration = db.session.get(Registration, registration_id)
        if registration is None:
            raise ConveneError("link_invalid")
        _lock_convening(registration.convening_id)
        if not valid_id(session_id):
            raise problem("not_signed_up")
        deleted = db.session.execute(
            sa.delete(SessionSignup).where(SessionSignup.session_id == session_id,
                                           SessionSignup.registration_id == registration.id)
        ).rowcount
        if not deleted:
            raise problem("not_signed_up")


# ---------------------------------------------------------------- preferences and allocation


def ranking_for(registration_id: int, block_id: int) -> list[int]:
    return db.session.execute(
        sa.select(SessionPreference.session_id)
        .where(SessionPreference.registration_id == registration_id, SessionPreference.block_id == block_id)
        .order_by(SessionPreference.rank)
    ).scalars().all()


def set_session_preferences(registration_id: int, block_id: int, session_ids: list[int]) -> None:
    """Replace a person's ranking of a block's sessions (best first); sessions left out come last."""
    with unit_of_work():
        registration = db.session.get(Registration, registration_id)
        if registration is None:
            raise ConveneError("link_invalid")
        convening = _lock_convening(registration.convening_id)
        block = _block(block_id)
        if block.convening_id != convening.id:
            raise NotFound("block_not_found")
        if not block.preferences_open or not is_published(convening.id):
            raise problem("preferences_closed")
        if registration.status != Status.CONFIRMED:
            raise problem("signup_not_confirmed")
        in_block = {s.id for s in block.sessions}
        ordered: list[int] = []
        for session_id in session_ids:
            if session_id not in in_block:
                raise problem("session_not_in_block")
            if session_id in ordered:
                raise problem("duplicate_rank")
            ordered.append(session_id)
        db.session.execute(sa.delete(SessionPreference).where(
            SessionPreference.registration_id == registration.id, SessionPreference.block_id == block.id))
        db.session.flush()
        for rank, session_id in enumerate(ordered, start=1):
            db.session.add(SessionPreference(registration_id=registration.id, block_id=block.id,
                                             session_id=session_id, rank=rank))


@dataclass
class AllocationResult:
    """What the allocation of one block did."""

    block: SessionBlock
    people: int
    placed: int
    rank_profile: tuple[int, ...]
    optimal: bool
    unassigned: list[tuple[Registration, str]]
    load: dict[int, int]  # session id -> people placed
    emailed: int = 0


@dataclass
class BlockReport:
    """The allocation page: sessions with seats, how many ranked, how the rankings spread."""

    block: SessionBlock
    sessions: list[ProgramSession]
    ranked: int
    first_choices: Counter
    taken: dict[int, int]


def block_report(block: SessionBlock) -> BlockReport:
    rows = db.session.execute(
        sa.select(SessionPreference.registration_id, SessionPreference.session_id, SessionPreference.rank)
        .join(Registration, Registration.id == SessionPreference.registration_id)
        .where(SessionPreference.block_id == block.id, Registration.status == Status.CONFIRMED)
    ).all()
    first = Counter(session_id for _, session_id, rank in rows if rank == 1)
    return BlockReport(block=block, sessions=list(block.sessions), ranked=len({r for r, _, _ in rows}),
                       first_choices=first, taken=seats_taken(block.convening_id))


@dataclass
class Placement:
    """One person in an allocation's outcome: the session they get (None: not placed, with why), and before."""

    registration: Registration
    session: ProgramSession | None
    before: ProgramSession | None  # the session of the block they hold a seat in now, if any
    reason: str = ""

    @property
    def changed(self) -> bool:
        return (self.session.id if self.session else None) != (self.before.id if self.before else None)


@dataclass
class AllocationPlan:
    """What allocating a block would do: who goes where, who cannot be placed, whom it emails; `token` names it.

    The preview and the allocation both come from `_plan_allocation`, so the confirmed token proves
    the committed outcome is the previewed one.
    """

    block: SessionBlock
    sessions: list[ProgramSession]
    include_unranked: bool
    placed: list[Placement]
    unassigned: list[Placement]
    dropped: list[tuple[Registration, ProgramSession]]  # seats of people no longer confirmed, released
    rank_profile: tuple[int, ...]
    optimal: bool
    token: str

    @property
    def people(self) -> int:
        return len(self.placed) + len(self.unassigned)

    @property
    def emailed(self) -> list[Registration]:
        return [p.registration for p in self.placed]

    def placed_in(self, session: ProgramSession) -> list[Placement]:
        return [p for p in self.placed if p.session.id == session.id]


def _plan_allocation(convening: Convening, block: SessionBlock, include_unranked: bool) -> AllocationPlan:
    """Run the optimizer for a block on what is stored now; reads only (the caller decides to write)."""
    sessions = db.session.execute(
        sa.select(ProgramSession).where(ProgramSession.block_id == block.id)
        .options(selectinload(ProgramSession.room),
                 selectinload(ProgramSession.presenter_links).selectinload(SessionPresenter.presenter))
        .order_by(ProgramSession.id)
    ).scalars().all()
    if not sessions:
        raise problem("block_empty")
    session_ids = [s.id for s in sessions]
    ranking: dict[int, list[int]] = defaultdict(list)
    for registration_id, session_id in db.session.execute(
        sa.select(SessionPreference.registration_id, SessionPreference.session_id)
        .where(SessionPreference.block_id == block.id)
        .order_by(SessionPreference.registration_id, SessionPreference.rank)
    ).all():
        ranking[registration_id].append(session_id)
    current = dict(db.session.execute(
        sa.select(SessionSignup.registration_id, SessionSignup.session_id)
        .where(SessionSignup.session_id.in_(session_ids)).order_by(SessionSignup.id)
    ).all())
    presenting: dict[int, int] = {}
    for session in sessions:
        for link in session.presenter_links:
            if link.presenter.registration_id is not None:
                presenting.setdefault(link.presenter.registration_id, session.id)
    wanted = set(ranking) | set(current) | set(presenting)
    query = sa.select(Registration).where(Registration.convening_id == convening.id,
                                          Registration.status == Status.CONFIRMED)
    if not include_unranked:
        query = query.where(Registration.id.in_(wanted) if wanted else sa.false())
    else:
        query = query.where(sa.or_(Registration.role.in_(VISITING_ROLES), Registration.id.in_(wanted)))
    registrations = db.session.execute(query.order_by(Registration.confirmed_at, Registration.id)).scalars().all()
    if not registrations:
        raise problem("nobody_to_allocate")
    people = []
    for r in registrations:
        ranks = ranking.get(r.id) or ([current[r.id]] if r.id in current else [])
        people.append(Person(id=str(r.id), ranking=[str(s) for s in ranks],
                             group=str(r.delegation_id) if r.delegation_id else None,
                             needs_access=r.needs_step_free_access))
    visits = [
        Visit(site=str(s.id), slot=block.id,
              capacity=s.seat_limit if s.seat_limit is not None else len(people),
              accessible=s.room.accessible if s.room is not None else True)
        for s in sessions
    ]
    ids = {p.id for p in people}
    locked = {(str(rid), block.id): str(sid) for rid, sid in presenting.items() if str(rid) in ids}
    solution = solve(Problem(people=people, visits=visits, visits_per_person=1, locked=locked))
    by_id = {str(r.id): r for r in registrations}
    by_session = {s.id: s for s in sessions}
    name_order = lambda p: (p.registration.sort_key, p.registration.id)  # noqa: E731
    placed = sorted((Placement(by_id[pid], by_session[int(by_slot[block.id])], by_session.get(current.get(int(pid))))
                     for pid, by_slot in solution.plan.items()), key=name_order)
    unassigned = sorted((Placement(by_id[pid], None, by_session.get(current.get(int(pid))), reason)
                         for pid, reason in solution.unassigned.items()), key=name_order)
    # Sign-ups of people no longer confirmed go with the old plan; they are named so nothing goes unsaid.
    gone = {rid: sid for rid, sid in current.items() if str(rid) not in by_id}
    dropped = [(r, by_session[gone[r.id]]) for r in db.session.execute(
        sa.select(Registration).where(Registration.id.in_(sorted(gone)))
        .order_by(Registration.sort_key, Registration.id)).scalars()] if gone else []
    token = digest("allocation", block.id, include_unranked,
                   [(p.registration.id, p.registration.email, p.session.id, p.before.id if p.before else None)
                    for p in placed],
                   [(p.registration.id, p.reason, p.before.id if p.before else None) for p in unassigned],
                   [(r.id, s.id) for r, s in dropped])
    return AllocationPlan(block=block, sessions=list(sessions), include_unranked=include_unranked, placed=placed,
                          unassigned=unassigned, dropped=dropped, rank_profile=solution.rank_profile,
                          optimal=solution.optimal, token=token)


def _block_of(convening: Convening, block_id: int, *, locked: bool) -> SessionBlock:
    blocks = (lock(SessionBlock, block_id) if locked else [db.session.get(SessionBlock, block_id)]) \
        if valid_id(block_id) else []
    if not blocks or blocks[0] is None or blocks[0].convening_id != convening.id:
        raise NotFound("block_not_found")
    return blocks[0]


def allocation_preview(convening_id: int, block_id: int, *, include_unranked: bool = False) -> AllocationPlan:
    """What allocating the block would do now, for the confirmation page (nothing is written)."""
    convening = db.session.get(Convening, convening_id)
    if convening is None:
        raise ConveneError("convening_not_found", status_code=404)
    return _plan_allocation(convening, _block_of(convening, block_id, locked=False), include_unranked)


def allocate_sessions(convening_id: int, block_id: int, *, include_unranked: bool = False,
                      expected: str | None = None) -> AllocationResult:
    """Give everyone who ranked a block's sessions one of them, with the site-visit optimizer.

    Each session is a `Visit` in one slot (the block), each person makes one visit; presenters
    linked to a registration are locked into their own session. People signed up already keep
    their session as first choice if they ranked nothing. The block's sign-ups are replaced by
    the plan, ranking closes, and each person placed is emailed their session.

    With `expected` (the token of the preview the organizer confirmed), refuse if the outcome
    differs from it (a ranking, sign-up or registration changed since): nothing is written then.
    """
    with unit_of_work():
        convening = _lock_convening(convening_id)
        block = _block_of(convening, block_id, locked=True)
        session_ids = list(db.session.execute(
            sa.select(ProgramSession.id).where(ProgramSession.block_id == block.id)).scalars())
        if session_ids:
            lock(ProgramSession, *session_ids)
        plan = _plan_allocation(convening, block, include_unranked)
        if expected is not None and expected != plan.token:
            raise ConveneError("allocation_preview_changed")
        db.session.execute(sa.delete(SessionSignup).where(SessionSignup.session_id.in_(session_ids)))
        db.session.flush()
        for placement in sorted(plan.placed, key=lambda p: p.registration.id):
            db.session.add(SessionSignup(session_id=placement.session.id, registration_id=placement.registration.id,
                                         source="allocation"))
        block.allocated_at = utcnow()
        block.preferences_open = False
        for placement in plan.placed:
            person, placed = placement.registration, placement.session
            queue_email("session_allocated", person.email,
                        lambda: gettext("Your place in %(block)s at %(convening)s", block=block.name,
                                        convening=localized(convening, "name")),
                        "session_allocated", registration=person, convening=convening, block=block,
                        title=localized(placed, "title", person.language),
                        when=_span_in(person, convening, placed),
                        where=localized_where(placed, person.language), manage_url=manage_url(person))
        result = AllocationResult(
            block=block, people=plan.people, placed=len(plan.placed), rank_profile=plan.rank_profile,
            optimal=plan.optimal, unassigned=[(p.registration, p.reason) for p in plan.unassigned],
            load=dict(Counter(p.session.id for p in plan.placed)), emailed=len(plan.placed),
        )
    return result


# ---------------------------------------------------------------- the attendee's side


@dataclass
class AgendaItem:
    """One entry of a personal agenda."""

    starts_at: datetime
    ends_at: datetime
    title: str
    why: str  # everyone, signed_up, presenting, site_visit
    where: str = ""
    address: str = ""  # a street address for maps (calendar LOCATION), when `where` is a meeting point
    details: list[tuple[str, str]] = field(default_factory=list)
    session: ProgramSession | None = None
    uid: str = ""
    sequence: int = 0
    stamp: datetime | None = None


@dataclass
class AgendaDay:
    day: date
    items: list[AgendaItem]


def _uid(convening: Convening, kind: str, *ids: int) -> str:
    return f"{kind}-{'-'.join(str(i) for i in ids)}@{convening.slug}.convene"


def session_uid(convening: Convening, session: ProgramSession) -> str:
    return _uid(convening, "session", session.id)


def localized_where(session: ProgramSession, lang: str | None = None) -> str:
    """Where a session is, in the reader's language: its room, else its off-site place."""
    return session.room.name if session.room is not None else localized(session, "location", lang)


def _session_item(convening: Convening, session: ProgramSession, why: str) -> AgendaItem:
    details = []
    if session.room is not None and session.room.floor:
        details.append((gettext("Floor"), session.room.floor))
    if session.room is not None and session.location:
        details.append((gettext("Meet at"), localized(session, "location")))
    if session.presenters:
        details.append((gettext("With"), ", ".join(p.display_name for p in session.presenters)))
    return AgendaItem(starts_at=session.starts_at, ends_at=session.ends_at, title=localized(session, "title"),
                      why=why, where=localized_where(session), details=details, session=session,
                      uid=session_uid(convening, session), sequence=session.sequence, stamp=session.updated_at)


@dataclass
class AgendaSources:
    """What a batch of agendas reads once: the program, and every person's sign-ups and published visits."""

    published: bool
    sessions: list[ProgramSession]
    signups: dict[int, set[int]]  # registration id -> session ids
    visits: dict[int, list]  # registration id -> PersonVisit, in time order


AGENDA_BATCH = 900  # ids per IN (...): under SQLite's older limit of 999 parameters


def agenda_sources(convening: Convening, registration_ids: list[int]) -> AgendaSources:
    """Everything personal_agenda reads for these people, in a few queries per 900 people instead of ~10 each."""
    from convene.services.visits import PersonVisit

    published = is_published(convening.id)
    signups: dict[int, set[int]] = defaultdict(set)
    visits: dict[int, list] = defaultdict(list)
    for start in range(0, len(registration_ids), AGENDA_BATCH):
        ids = registration_ids[start:start + AGENDA_BATCH]
        if published:
            for registration_id, session_id in db.session.execute(
                    sa.select(SessionSignup.registration_id, SessionSignup.session_id)
                    .where(SessionSignup.registration_id.in_(ids))):
                signups[registration_id].add(session_id)
        if convening.visits_published_at:
            for a in db.session.execute(
                sa.select(VisitAssignment)
                .where(VisitAssignment.registration_id.in_(ids), VisitAssignment.published_site_visit_id.is_not(None))
                .options(selectinload(VisitAssignment.published_site_visit).selectinload(SiteVisit.host),
                         selectinload(VisitAssignment.published_site_visit).selectinload(SiteVisit.slot))
            ).scalars():
                visits[a.registration_id].append(PersonVisit(slot=a.published_site_visit.slot,
                                                             visit=a.published_site_visit))
    for mine in visits.values():
        mine.sort(key=lambda v: v.slot.starts_at)  # as published_visits_for orders them
    return AgendaSources(published=published, sessions=sessions_of(convening.id) if published else [],
                         signups=signups, visits=visits)


def personal_agenda(convening: Convening, registration: Registration,
                    sources: AgendaSources | None = None) -> list[AgendaDay]:
    """Where this person needs to be: sessions for everyone, their sign-ups, what they present,
    their published site-visit group (with its meeting point) and meals, by day.

    A batch passes `sources` (agenda_sources of everyone in it), so nothing is read per person.
    """
    from convene.services.visits import published_visits_for

    if registration.status != Status.CONFIRMED:
        return []
    items: list[AgendaItem] = []
    visit_slots: set[int] = set()
    if convening.visits_published_at:
        mine = sources.visits.get(registration.id, []) if sources else published_visits_for(registration.id)
        for item in mine:
            visit, slot = item.visit, item.slot
            visit_slots.add(slot.id)
            details = []
            if visit.meeting_point:
                details.append((gettext("Meet at"), localized(visit, "meeting_point")))
            if visit.departs_at:
                details.append((gettext("Departs"), convening.local(visit.departs_at).strftime("%H:%M")))
            if visit.host.address:
                details.append((gettext("Address"), visit.host.address))
            if visit.transport_notes:
                details.append((gettext("Getting there"), localized(visit, "transport_notes")))
            items.append(AgendaItem(
                starts_at=slot.starts_at, ends_at=slot.ends_at, title=gettext("Site visit: %(host)s", host=localized(visit.host, 'name')),
                why="site_visit", where=localized(visit, "meeting_point") or visit.host.address,
                address=visit.host.address,
                details=details,
                uid=_uid(convening, "sitevisit", slot.id, registration.id),
                stamp=convening.visits_published_at,
            ))
    if sources.published if sources else is_published(convening.id):
        signed = sources.signups.get(registration.id, set()) if sources else set(db.session.execute(
            sa.select(SessionSignup.session_id).where(SessionSignup.registration_id == registration.id)
        ).scalars())
        for session in sources.sessions if sources else sessions_of(convening.id):
            presenting = any(p.registration_id == registration.id for p in session.presenters)
            if presenting:
                items.append(_session_item(convening, session, "presenting"))
            elif session.id in signed:
                items.append(_session_item(convening, session, "signed_up"))
            elif session.kind == SessionKind.SITE_VISIT:
                covered = session.visit_slot_id in visit_slots or any(
                    i.why == "site_visit" and overlaps(i.starts_at, i.ends_at, session.starts_at, session.ends_at)
                    for i in items)
                if not covered and not convening.visits_published_at:
                    item = _session_item(convening, session, "everyone")
                    item.details.append((gettext("Your group"), gettext("Announced before the convening.")))
                    items.append(item)
            elif session.for_everyone:
                items.append(_session_item(convening, session, "everyone"))
    items.sort(key=lambda i: (i.starts_at, i.ends_at, i.title))
    days: dict[date, list[AgendaItem]] = defaultdict(list)
    for item in items:
        days[convening.local(item.starts_at).date()].append(item)
    return [AgendaDay(day=day, items=days[day]) for day in sorted(days)]


@dataclass
class SignupOption:
    """A session the person could sign up for (or leave), as the manage page lists it."""

    session: ProgramSession
    taken: int
    seats_left: int | None
    signed_up: bool
    by_ranking: bool  # the block is open for ranking: no direct sign-up
    clashes_with: ProgramSession | None = None  # one of their sign-ups at the same time


def signup_options(convening: Convening, registration: Registration) -> list[SignupOption]:
    """Sessions that need sign-up, with seats left and whether this person holds one."""
    if registration.status != Status.CONFIRMED or not is_published(convening.id):
        return []
    taken = seats_taken(convening.id)
    signed = set(db.session.execute(
        sa.select(SessionSignup.session_id).where(SessionSignup.registration_id == registration.id)
    ).scalars())
    now = utcnow()
    sessions = sessions_of(convening.id)
    mine = [s for s in sessions if s.id in signed]
    options = []
    for session in sessions:
        if not session.signup_required or session.ends_at <= now:
            continue
        limit = session.seat_limit
        count = taken.get(session.id, 0)
        clash = None if session.id in signed else next(
            (s for s in mine if overlaps(s.starts_at, s.ends_at, session.starts_at, session.ends_at)), None)
        options.append(SignupOption(
            session=session, taken=count, seats_left=None if limit is None else max(0, limit - count),
            signed_up=session.id in signed,
            by_ranking=session.block is not None and session.block.preferences_open, clashes_with=clash,
        ))
    return options


def open_blocks(convening: Convening) -> list[SessionBlock]:
    """Blocks attendees may rank now."""
    if not is_published(convening.id):
        return []
    return [b for b in blocks_of(convening.id) if b.preferences_open and b.sessions]


# ---------------------------------------------------------------- calendars


def _session_event(convening: Convening, session: ProgramSession, url: str = "") -> CalendarEvent:
    presenters = ", ".join(p.display_name for p in session.presenters)
    description = "\n\n".join(part for part in (
        localized(session, "description"), gettext("With %(names)s", names=presenters) if presenters else "", url)
        if part)
    return CalendarEvent(
        uid=session_uid(convening, session), title=localized(session, "title"), starts_at=session.starts_at,
        ends_at=session.ends_at, stamp=session.updated_at, location=_location(convening, session),
        description=description, url=url, sequence=session.sequence, categories=(gettext(session.kind_label),),
    )


def _location(convening: Convening, session: ProgramSession) -> str:
    return event_location(room=session.room.name if session.room is not None else "",
                          off_site=localized(session, "location"),
                          venue=convening.venue, venue_address=convening.venue_address)


def program_calendar(convening: Convening, session_url=None) -> bytes:
    """The whole published program as iCalendar; `session_url(session)` gives each entry's link."""
    events = [_session_event(convening, s, session_url(s) if session_url else "") for s in sessions_of(convening.id)]
    return build_calendar(localized(convening, "name"), convening.tz, events)


def agenda_calendar(convening: Convening, registration: Registration, session_url=None) -> bytes:
    """One person's agenda as iCalendar (sessions keep the program's UIDs, so the two never duplicate)."""
    events = []
    for day in personal_agenda(convening, registration):
        for item in day.items:
            if item.session is not None:
                events.append(_session_event(convening, item.session,
                                             session_url(item.session) if session_url else ""))
            else:
                description = "\n".join(f"{label}: {value}" for label, value in item.details)
                events.append(CalendarEvent(
                    uid=item.uid, title=item.title, starts_at=item.starts_at, ends_at=item.ends_at,
                    stamp=item.stamp or convening.updated_at, location=item.address or item.where,
                    description=description,
                ))
    return build_calendar(f"{localized(convening, 'name')}: {registration.full_name}", convening.tz, events)
