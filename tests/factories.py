"""Small factory functions that write real rows."""
from __future__ import annotations

from datetime import date, timedelta
from itertools import count

from convene.extensions import db
from convene.models import Convening, Delegation, Question, Registration, Status, TicketType, User, utcnow

_seq = count(1)


def make_user(email: str, *, role: str = "organizer", password: str = "correct-horse-battery",
              convening: Convening | None = None) -> User:
    """An account. role "organizer": a platform administrator; "staff": the desk role on every convening;
    a team role (owner, finance, desk, site_visit_lead, viewer): that role on `convening` (every one if None)."""
    from convene.models import Membership

    user = User(email=email, name=email.split("@")[0], is_admin=role == "organizer" and convening is None)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    if not user.is_admin:
        team_role = "desk" if role == "staff" else role
        db.session.add(Membership(user_id=user.id, convening_id=convening.id if convening else None, role=team_role))
    db.session.commit()
    return user


def make_convening(**overrides) -> Convening:
    n = next(_seq)
    today = date.today()
    values = dict(
        slug=f"convening-{n}", name=f"Convening {n}", city="Toronto", venue="Metro Centre",
        timezone="America/Toronto", starts_on=today + timedelta(days=60), ends_on=today + timedelta(days=62),
        currency="CAD", capacity=None, contact_email="hello@example.org", published=True, reference_prefix="TOR",
    )
    values.update(overrides)
    convening = Convening(**values)
    db.session.add(convening)
    db.session.commit()
    return convening


def make_ticket(convening: Convening, **overrides) -> TicketType:
    values = dict(name="Delegate", price_cents=0, capacity=None, position=next(_seq))
    values.update(overrides)
    ticket = TicketType(convening_id=convening.id, **values)
    db.session.add(ticket)
    db.session.commit()
    return ticket


def make_delegation(convening: Convening, name: str = "Maryland") -> Delegation:
    delegation = Delegation(convening_id=convening.id, name=name)
    db.session.add(delegation)
    db.session.commit()
    return delegation


def make_question(convening: Convening, label: str, kind: str = "short_text", **overrides) -> Question:
    overrides.setdefault("position", next(_seq))
    question = Question(convening_id=convening.id, label=label, kind=kind, **overrides)
    db.session.add(question)
    db.session.commit()
    return question


def person(n: int | None = None, **overrides) -> dict:
    n = n if n is not None else next(_seq)
    values = dict(
        given_name=f"Amina{n}", family_name="Hassan", email=f"amina{n}@example.org", organization="City of Dayton",
        job_title="Program manager", badge_name="", pronouns="she/her", phone="", dietary_needs=[],
        dietary_notes="", accessibility_needs=[], accessibility_notes="",
    )
    values.update(overrides)
    return values


def make_registration(convening: Convening, ticket: TicketType, n: int | None = None, *,
                      status: str = Status.CONFIRMED, **overrides) -> Registration:
    """A registration written directly (no capacity check): for setting up a scene quickly."""
    from convene.services.registrations import new_reference

    data = person(n)
    role = overrides.pop("role", "delegate")
    data.update(overrides)
    registration = Registration(
        convening_id=convening.id, ticket_type_id=ticket.id, reference=new_reference(convening),
        status=status, role=role, confirmed_at=utcnow() if status == Status.CONFIRMED else None,
        waitlisted_at=utcnow() if status == Status.WAITLISTED else None, **data,
    )
    db.session.add(registration)
    db.session.commit()
    return registration


def make_host(convening: Convening, name: str, *, accessible: bool = True, **overrides):
    from convene.models import HostOrganization

    host = HostOrganization(convening_id=convening.id, name=name, accessible=accessible,
                            address=overrides.pop("address", f"{name} St, Toronto"), **overrides)
    db.session.add(host)
    db.session.commit()
    return host


def make_slot(convening: Convening, label: str, hour: int, *, hours: int = 2):
    from datetime import datetime, time, timezone

    from convene.models import VisitSlot

    day = datetime.combine(convening.starts_on + timedelta(days=1), time(hour), tzinfo=convening.tz)
    slot = VisitSlot(convening_id=convening.id, label=label, starts_at=day.astimezone(timezone.utc),
                     ends_at=(day + timedelta(hours=hours)).astimezone(timezone.utc))
    db.session.add(slot)
    db.session.commit()
    return slot


def make_visit(host, slot, capacity: int, **overrides):
    from convene.models import SiteVisit

    visit = SiteVisit(convening_id=host.convening_id, host_id=host.id, slot_id=slot.id, capacity=capacity,
                      meeting_point=overrides.pop("meeting_point", "Hotel lobby"), **overrides)
    db.session.add(visit)
    db.session.commit()
    return visit
