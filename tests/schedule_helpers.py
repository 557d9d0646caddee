"""Small factories for the program: rooms, sessions, presenters, blocks (rows written directly)."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from convene.extensions import db
from convene.models import Convening, Presenter, ProgramSession, ProgramSettings, Room, SessionBlock, SessionPresenter


def local(convening: Convening, day: int, hhmm: str) -> datetime:
    """An instant at a wall-clock time on the convening's `day`-th day (0 = the first), in UTC."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    wall = datetime.combine(convening.starts_on + timedelta(days=day), time(hour, minute), tzinfo=convening.tz)
    return wall.astimezone(timezone.utc)


def form_time(convening: Convening, day: int, hhmm: str) -> str:
    """The same wall-clock time as a datetime-local input sends it."""
    return f"{(convening.starts_on + timedelta(days=day)).isoformat()}T{hhmm}"


def make_room(convening: Convening, name: str, capacity: int | None = None, *, accessible: bool = True,
              **overrides) -> Room:
    room = Room(convening_id=convening.id, name=name, capacity=capacity, accessible=accessible, **overrides)
    db.session.add(room)
    db.session.commit()
    return room


def make_session(convening: Convening, title: str, day: int, start: str, end: str, *, room: Room | None = None,
                 presenters: tuple[Presenter, ...] = (), **overrides) -> ProgramSession:
    session = ProgramSession(
        convening_id=convening.id, title=title, starts_at=local(convening, day, start),
        ends_at=local(convening, day, end), room_id=room.id if room else None,
        kind=overrides.pop("kind", "plenary"), **overrides,
    )
    session.presenter_links = [SessionPresenter(presenter_id=p.id, position=n) for n, p in enumerate(presenters)]
    db.session.add(session)
    db.session.commit()
    return session


def make_presenter(convening: Convening, name: str = "", *, registration=None, **overrides) -> Presenter:
    presenter = Presenter(convening_id=convening.id, name=name or (registration.full_name if registration else ""),
                          registration_id=registration.id if registration else None, **overrides)
    db.session.add(presenter)
    db.session.commit()
    return presenter


def make_block(convening: Convening, name: str = "Working groups", *, preferences_open: bool = True) -> SessionBlock:
    block = SessionBlock(convening_id=convening.id, name=name, preferences_open=preferences_open)
    db.session.add(block)
    db.session.commit()
    return block


def publish(convening: Convening, rules: dict | None = None) -> ProgramSettings:
    settings = ProgramSettings(convening_id=convening.id, published_at=datetime.now(timezone.utc),
                               conflict_rules=rules or {})
    db.session.add(settings)
    db.session.commit()
    return settings
