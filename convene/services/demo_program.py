"""The demo convening's three-day program: rooms, sessions, presenters, sign-ups and rankings.

Runs inside the caller's unit of work (no commit of its own), after the demo's registrations
exist. The program follows the demo's story: a networking dinner on the first evening; site
visits, then TRIEC-style roundtables on the second day; action-plan reviews and topic working
groups on the last. Working groups are ranked by attendees and left for the organizer to
allocate. Two warnings are left on purpose for the organizer to find: a roundtable in the
Library (stairs only) with a wheelchair user signed up, and a working group whose sign-up
capacity is larger than its room.
"""
from __future__ import annotations

import random
from datetime import datetime, time, timedelta, timezone

import sqlalchemy as sa

from convene.extensions import db
from convene.models import (
    Convening,
    Presenter,
    ProgramSession,
    ProgramSettings,
    Registration,
    Room,
    SessionBlock,
    SessionKind,
    SessionPreference,
    SessionPresenter,
    SessionSignup,
    Status,
    VisitSlot,
    utcnow,
)

SEED = 2028
ROOMS = (
    # name, capacity, step-free, floor, notes
    ("Great Hall", 160, True, "Ground floor", "Plenary set-up: rounds of eight, one table per delegation."),
    ("Dining Room", 140, True, "Ground floor", "Buffet meals."),
    ("Salon A", 20, True, "Second floor", ""),
    ("Salon B", 20, True, "Second floor", ""),
    ("Salon C", 18, True, "Second floor", ""),
    ("Garden Room", 16, True, "Ground floor, garden side", ""),
    ("Studio", 16, True, "Third floor", "Whiteboard walls."),
    ("Boardroom", 12, True, "Second floor", "One boardroom table; no extra chairs."),
    ("Library", 14, False, "Mezzanine", "Up a flight of stairs: no lift."),
    ("Foyer", None, True, "Ground floor", "Registration desk and coffee."),
)
# Roundtables on day 2: topic, facilitator ((given, family) of a registration, or an external guest), room.
DANA = ("Dana Whitfield", "Toronto Region Immigrant Employment Council",
        "Leads communications at TRIEC and has run its newcomer storytelling campaigns with employers and media.")
ROUNDTABLES = (
    ("Learning and Inclusive Workplace", ("Marlon", "Campbell"), "Salon A"),
    ("Employer and Stakeholder Engagement", ("Andrea", "Lopes"), "Salon B"),
    ("Mentorship", ("Ravi", "Subramaniam"), "Salon C"),
    ("Professional Immigrant Networks", ("Simran", "Kaur"), "Garden Room"),
    ("Communication and Media Strategy", DANA, "Library"),
    ("Government Engagement", ("Alexandre", "Tremblay"), "Boardroom"),
)
ROUNDTABLE_BLURBS = {
    "Learning and Inclusive Workplace": "Training managers and teams so newcomers are hired, kept and promoted.",
    "Employer and Stakeholder Engagement": "Bringing employers to the table before programs are designed.",
    "Mentorship": "Matching newcomers with mentors in their profession: what makes it last.",
    "Professional Immigrant Networks": "Networks run by and for immigrant professionals, and how to support them.",
    "Communication and Media Strategy": "Telling the story of skilled immigrants to employers, media and voters.",
    "Government Engagement": "Working with city, provincial and state governments on policy and funding.",
}
# Working groups on day 3: name, facilitator (a TA provider), room, sign-up capacity.
WORKING_GROUPS = (
    ("Higher Education/Community Colleges", ("Catherine", "Walsh"), "Salon A", 20),
    ("Healthcare Licensing/Regulated Professions", ("Ingrid", "Solberg"), "Salon B", 20),
    ("Refugee Strategies", ("Sofía", "Morales"), "Salon C", 18),
    ("City as Employer/Employer Engagement Strategies", ("Ngozi", "Adeyemi"), "Garden Room", 16),
    ("State-Level Engagement", ("Rahul", "Mehta"), "Library", 14),
    ("Pathways Working Group", ("Ramón", "Ibáñez"), "Studio", 16),
    # Left on purpose: more sign-ups than the Boardroom seats (a warning for the organizer).
    ("WIOA/Apprenticeship", ("Thomas", "Becker"), "Boardroom", 14),
)
TA_PROVIDERS = (("Ramón", "Ibáñez"), ("Catherine", "Walsh"), ("Ingrid", "Solberg"), ("Ngozi", "Adeyemi"),
                ("Rahul", "Mehta"), ("Sofía", "Morales"), ("Thomas", "Becker"))
STEP_FREE_SIGN_UP = ("Daniel", "Rivera")  # signed up to the Library roundtable: the access warning
BIOS = {
    ("Irina", "Volkova"): "Directs research on newcomer employment outcomes across Canadian cities.",
    ("Andrea", "Lopes"): "Works with Toronto employers on hiring and promoting skilled immigrants.",
    ("Elizabeth", "Osei"): "Directs the Skilled Immigrant Integration Program.",
}


def load_demo_program(convening: Convening, now: datetime | None = None) -> None:
    """Rooms and a published three-day program for the demo convening, inside the caller's unit of work.

    Does nothing when the convening already has rooms or sessions, so calling it twice is harmless.
    """
    now = now or utcnow()
    rng = random.Random(SEED)
    db.session.flush()
    for model in (Room, ProgramSession):
        if db.session.execute(sa.select(model.id).where(model.convening_id == convening.id).limit(1)).first():
            return
    people = {
        (r.given_name, r.family_name): r
        for r in db.session.execute(
            sa.select(Registration).where(Registration.convening_id == convening.id)
        ).scalars()
    }
    rooms = {}
    for position, (name, capacity, accessible, floor, notes) in enumerate(ROOMS):
        rooms[name] = Room(convening_id=convening.id, name=name, capacity=capacity, accessible=accessible,
                           floor=floor, notes=notes, position=position)
        db.session.add(rooms[name])
    presenters: dict[tuple[str, str], Presenter] = {}

    def presenter(who) -> Presenter:
        if who not in presenters:
            if len(who) == 3:  # an external guest: name, organization, bio
                presenters[who] = Presenter(convening_id=convening.id, name=who[0], organization=who[1], bio=who[2])
            else:
                registration = people[who]
                presenters[who] = Presenter(convening_id=convening.id, registration=registration,
                                            name=registration.full_name, organization=registration.organization,
                                            bio=BIOS.get(who, ""))
            db.session.add(presenters[who])
        return presenters[who]

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        wall = datetime.combine(convening.starts_on + timedelta(days=day), time(hour, minute), tzinfo=convening.tz)
        return wall.astimezone(timezone.utc)

    def add(title: str, kind: SessionKind, start: datetime, end: datetime, *, room: str | None = None,
            who=(), **values) -> ProgramSession:
        session = ProgramSession(convening_id=convening.id, title=title, kind=kind, starts_at=start, ends_at=end,
                                 room=rooms[room] if room else None, created_at=now, updated_at=now, **values)
        session.presenter_links = [SessionPresenter(presenter=presenter(p), position=n) for n, p in enumerate(who)]
        db.session.add(session)
        return session

    # Day 1: arrivals, the opening and the networking dinner.
    add("Registration and welcome coffee", SessionKind.NETWORKING, at(0, 15, 30), at(0, 17), room="Foyer",
        description="Pick up your badge and meet the other delegations.")
    add("Opening plenary: Why Toronto", SessionKind.KEYNOTE, at(0, 17), at(0, 18), room="Great Hall",
        who=[("Elizabeth", "Osei"), ("Irina", "Volkova")],
        description="What Toronto's employers, colleges and city government learned about putting newcomers' "
        "skills to work, and what the cohort will see over the next two days.")
    add("Networking dinner", SessionKind.NETWORKING, at(0, 18, 30), at(0, 21, 30),
        location="Mill Street Brewpub, 21 Tank House Lane (a ten-minute walk; meet in the Foyer at 18:15)",
        description="Dinner with delegates, technical-assistance providers, hosts and program staff.")

    # Day 2: site visits in the morning (the visit slots, if the organizer has made them), roundtables after lunch.
    slots = db.session.execute(
        sa.select(VisitSlot).where(VisitSlot.convening_id == convening.id).order_by(VisitSlot.starts_at)
    ).scalars().all()
    blocks = [(s.label, s.starts_at, s.ends_at, s) for s in slots] or [
        ("Site visits: first round", at(1, 9, 15), at(1, 11), None),
        ("Site visits: second round", at(1, 11, 30), at(1, 13, 15), None),
    ]
    on_day_2 = [b for b in blocks if convening.local(b[1]).date() == convening.starts_on + timedelta(days=1)]
    first_visit = min((b[1] for b in on_day_2), default=at(1, 9, 15))
    last_visit = max((b[2] for b in on_day_2), default=at(1, 13, 15))
    add("Breakfast", SessionKind.MEAL, first_visit - timedelta(minutes=105), first_visit - timedelta(minutes=45),
        room="Dining Room")
    add("Site-visit briefing", SessionKind.PLENARY, first_visit - timedelta(minutes=45),
        first_visit - timedelta(minutes=15), room="Great Hall",
        description="How the day runs: groups, buses, and what to ask your hosts.")
    for label, start, end, slot in blocks:
        add(label, SessionKind.SITE_VISIT, start, end, visit_slot_id=slot.id if slot else None,
            location="Buses leave from the Front Street entrance",
            description="Small groups visit Toronto host organizations. Your group and meeting point are on "
            "your registration page once the plan is published.")
    # Lunch between the rounds of visits when they leave room for it, else after them.
    day_2 = sorted((b[1], b[2]) for b in on_day_2)
    gaps = [(end, start) for (_, end), (start, _) in zip(day_2, day_2[1:])
            if start - end >= timedelta(minutes=60) and at(1, 11) <= end <= at(1, 14)]
    if gaps:
        lunch = _quarter_after(convening, gaps[0][0])
        lunch_end = min(lunch + timedelta(hours=1), gaps[0][1])
    else:
        lunch = _quarter_after(convening, max(last_visit, at(1, 12, 15)))
        lunch_end = lunch + timedelta(hours=1)
    add("Lunch", SessionKind.MEAL, lunch, lunch_end, room="Dining Room")
    tables_start = _quarter_after(convening, max(last_visit, lunch_end)) + timedelta(minutes=15)
    roundtables = {}
    for topic, facilitator, room in ROUNDTABLES:
        roundtables[topic] = add(topic, SessionKind.ROUNDTABLE, tables_start, tables_start + timedelta(minutes=90),
                                 room=room, who=[facilitator], signup_required=True, track="Roundtables",
                                 description=ROUNDTABLE_BLURBS[topic])
    keynote = tables_start + timedelta(minutes=105)
    if keynote + timedelta(hours=1) <= at(1, 19, 30):
        add("Keynote: A decade of newcomer labour research", SessionKind.KEYNOTE, keynote,
            keynote + timedelta(hours=1), room="Great Hall", who=[("Irina", "Volkova")])

    # Day 3: action plans with the TA providers, working groups (ranked, then allocated), the closing.
    add("Breakfast", SessionKind.MEAL, at(2, 7, 30), at(2, 8, 30), room="Dining Room")
    add("Action-plan reviews with TA providers", SessionKind.PLENARY, at(2, 8, 45), at(2, 10, 45),
        room="Great Hall", who=TA_PROVIDERS,
        description="Each delegation reviews its action plan at its own table with its technical-assistance "
        "providers: what moved since the last convening, what is stuck, and the next three steps.")
    block = SessionBlock(convening_id=convening.id, name="Working groups (day 3)", preferences_open=True)
    db.session.add(block)
    groups = {}
    for name, facilitator, room, capacity in WORKING_GROUPS:
        groups[name] = add(name, SessionKind.WORKING_GROUP, at(2, 11), at(2, 12, 30), room=room, who=[facilitator],
                           capacity=capacity, signup_required=True, block=block, track="Working groups")
    add("Lunch", SessionKind.MEAL, at(2, 12, 30), at(2, 13, 30), room="Dining Room")
    add("Closing plenary: What has changed at home", SessionKind.PLENARY, at(2, 13, 30), at(2, 15),
        room="Great Hall", who=[("Elizabeth", "Osei")],
        description="Each community tells the cohort what has changed since the program began.")
    add("Farewell coffee", SessionKind.NETWORKING, at(2, 15), at(2, 15, 30), room="Foyer")
    db.session.flush()

    _sign_up_to_roundtables(convening, people, roundtables, rooms, rng)
    _rank_working_groups(convening, block, groups, rng)
    db.session.add(ProgramSettings(convening_id=convening.id, published_at=now, conflict_rules={}))
    db.session.flush()


def _quarter_after(convening: Convening, instant: datetime) -> datetime:
    """The first quarter hour (local) at or after `instant`."""
    local = convening.local(instant)
    extra = (-local.minute) % 15
    return (local.replace(second=0, microsecond=0) + timedelta(minutes=extra)).astimezone(timezone.utc)


def _answers(registration: Registration) -> dict[str, object]:
    return {a.question.label: a.value for a in registration.answers}


def _confirmed_delegates(convening: Convening) -> list[Registration]:
    return db.session.execute(
        sa.select(Registration).where(Registration.convening_id == convening.id,
                                      Registration.status == Status.CONFIRMED, Registration.role == "delegate")
        .order_by(Registration.id)
    ).scalars().all()


def _sign_up_to_roundtables(convening, people, roundtables, rooms, rng) -> None:
    """Most delegates take a seat at the roundtable on the first topic they asked for."""
    from convene.services.demo import ROUNDTABLE_TOPICS

    topics = dict(zip(ROUNDTABLE_TOPICS, roundtables))  # the registration question's wording -> roundtable
    taken = {title: 0 for title in roundtables}
    wheelchair = people.get(STEP_FREE_SIGN_UP)
    library = "Communication and Media Strategy"
    if wheelchair is not None and wheelchair.status == Status.CONFIRMED:
        db.session.add(SessionSignup(session=roundtables[library], registration=wheelchair, source="self"))
        taken[library] += 1
    for registration in _confirmed_delegates(convening):
        if registration is wheelchair or rng.random() < 0.25:
            continue
        wanted = next((v for k, v in _answers(registration).items() if isinstance(v, list)), [])
        for topic in wanted:
            title = topics.get(topic)
            if title is None:
                continue
            room = roundtables[title].room
            if room is not None and not room.accessible and registration.needs_step_free_access:
                continue
            if room is None or room.capacity is None or taken[title] < room.capacity:
                db.session.add(SessionSignup(session=roundtables[title], registration=registration, source="self"))
                taken[title] += 1
                break


def _rank_working_groups(convening, block, groups, rng) -> None:
    """Delegates who named a working group on the form rank it first, then two others."""
    from convene.services.demo import WORKING_GROUPS as ASKED

    by_answer = dict(zip(ASKED, groups))  # the registration question's wording -> working group
    titles = list(groups)
    for registration in _confirmed_delegates(convening):
        answer = next((v for v in _answers(registration).values() if isinstance(v, str) and v in by_answer), None)
        if answer is None:
            continue
        first = by_answer[answer]
        others = rng.sample([t for t in titles if t != first], k=2)
        for rank, title in enumerate([first, *others], start=1):
            db.session.add(SessionPreference(registration_id=registration.id, block_id=block.id,
                                             session_id=groups[title].id, rank=rank))
