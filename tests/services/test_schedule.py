"""The program services on the real database: edits and conflicts, sign-ups under lock, allocation, agendas."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import (
    Convening,
    ProgramSession,
    SessionPreference,
    SessionSignup,
    Status,
    VisitAssignment,
)
from convene.services import registrations as registration_service
from convene.services import schedule as service
from tests.factories import (
    make_convening,
    make_host,
    make_registration,
    make_slot,
    make_ticket,
    make_visit,
)
from tests.racing import race
from tests.schedule_helpers import local, make_block, make_presenter, make_room, make_session, publish

UTC = timezone.utc


@pytest.fixture
def scene(app):
    """A three-day convening in Toronto with three rooms (one with steps) and four confirmed people."""
    convening = make_convening()
    ticket = make_ticket(convening)
    rooms = {
        "hall": make_room(convening, "Great Hall", 150),
        "salon": make_room(convening, "Salon A", 20),
        "library": make_room(convening, "Library", 12, accessible=False),
    }
    people = [make_registration(convening, ticket, n) for n in range(1, 4)]
    people.append(make_registration(convening, ticket, 4, accessibility_needs=["step_free"]))
    return convening, ticket, rooms, people


def wall(convening: Convening, day: int, hhmm: str) -> datetime:
    """A naive wall-clock time, as the editor's form gives it."""
    return local(convening, day, hhmm).astimezone(convening.tz).replace(tzinfo=None)


def session_form(convening: Convening, **changes) -> dict:
    data = dict(title="Opening plenary", kind="plenary", starts_at=wall(convening, 0, "09:00"),
                ends_at=wall(convening, 0, "10:00"), room_id=None, capacity=None, signup_required=False,
                presenter_ids=[])
    data.update(changes)
    return data


def count_sessions(convening_id: int) -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).where(ProgramSession.convening_id == convening_id))


def signups_of(session_id: int) -> set[int]:
    db.session.rollback()
    return set(db.session.execute(
        sa.select(SessionSignup.registration_id).where(SessionSignup.session_id == session_id)).scalars())


# -- editing and conflicts ---------------------------------------------------------------------------

def test_a_session_is_stored_in_utc_from_wall_clock_times(scene):
    convening, _, rooms, _ = scene
    saved = service.create_session(convening.id, session_form(convening, room_id=rooms["hall"].id))
    session = db.session.get(ProgramSession, saved.session.id)
    assert session.starts_at == local(convening, 0, "09:00") and session.starts_at.tzinfo is not None
    assert convening.local(session.starts_at).strftime("%H:%M") == "09:00"
    assert saved.warnings == []


def test_bad_input_reports_every_problem_beside_its_field_and_saves_nothing(scene):
    convening, *_ = scene
    with pytest.raises(ConveneError) as caught:
        service.create_session(convening.id, session_form(
            convening, title=" ", kind="party", ends_at=wall(convening, 0, "08:00"), room_id=999999, capacity=-1))
    fields = {p.field: p.message for p in caught.value.details["problems"]}
    assert fields == {
        "title": "Enter a title.", "kind": "Choose what kind of session this is.",
        "ends_at": "The session must end after it starts.",
        "capacity": "Capacity cannot be negative; leave it empty for no limit.",
        "room_id": "Choose one of this convening's rooms.",
    }
    assert count_sessions(convening.id) == 0


def test_a_time_the_clocks_skip_is_refused(app):
    # 14 March 2027 in Toronto: 02:30 does not exist.
    convening = make_convening(starts_on=date(2027, 3, 13), ends_on=date(2027, 3, 15))
    with pytest.raises(ConveneError) as caught:
        service.create_session(convening.id, dict(title="Night", kind="networking",
                                                  starts_at=datetime(2027, 3, 14, 2, 30),
                                                  ends_at=datetime(2027, 3, 14, 4, 0)))
    problems = caught.value.details["problems"]
    assert problems[0].field == "starts_at" and "does not exist in America/Toronto" in problems[0].message


def test_a_double_booked_room_is_refused_and_nothing_changes(scene):
    convening, _, rooms, _ = scene
    first = make_session(convening, "Mentorship", 1, "14:00", "15:30", room=rooms["salon"])
    with pytest.raises(ConveneError) as caught:
        service.create_session(convening.id, session_form(
            convening, title="Refugee Strategies", starts_at=wall(convening, 1, "15:00"),
            ends_at=wall(convening, 1, "16:00"), room_id=rooms["salon"].id))
    assert caught.value.field == "room_id"
    assert "Salon A is booked for both Mentorship" in caught.value.message
    assert "is blocking for this convening" in caught.value.message
    assert count_sessions(convening.id) == 1
    # Touching is fine.
    service.create_session(convening.id, session_form(
        convening, title="Refugee Strategies", starts_at=wall(convening, 1, "15:30"),
        ends_at=wall(convening, 1, "16:30"), room_id=rooms["salon"].id))
    assert count_sessions(convening.id) == 2 and first.id


def test_warnings_are_saved_and_reported(scene):
    convening, _, rooms, _ = scene
    saved = service.create_session(convening.id, session_form(
        convening, title="Mentorship", kind="roundtable", signup_required=True, capacity=30,
        room_id=rooms["salon"].id, starts_at=wall(convening, 4, "09:00"), ends_at=wall(convening, 4, "10:00")))
    assert sorted(c.kind for c in saved.warnings) == ["outside_dates", "room_too_small"]
    assert count_sessions(convening.id) == 1


def test_the_organizer_can_make_a_warning_blocking_or_a_clash_a_warning(scene):
    convening, _, rooms, _ = scene
    service.set_conflict_rules(convening.id, {"room_too_small": "blocking", "room_double_booked": "warning"})
    assert service.conflict_rules(convening.id)["room_too_small"] == "blocking"
    with pytest.raises(ConveneError) as caught:
        service.create_session(convening.id, session_form(convening, capacity=30, room_id=rooms["salon"].id))
    assert caught.value.field == "capacity"
    make_session(convening, "Lunch", 0, "12:00", "13:00", room=rooms["hall"], kind="meal")
    saved = service.create_session(convening.id, session_form(
        convening, starts_at=wall(convening, 0, "12:30"), ends_at=wall(convening, 0, "13:30"),
        room_id=rooms["hall"].id))
    assert "room_double_booked" in {c.kind for c in saved.warnings}
    with pytest.raises(ConveneError):
        service.set_conflict_rules(convening.id, {"room_too_small": "sometimes"})


def test_editing_bumps_the_sequence_and_a_presenter_clash_is_refused(scene):
    convening, _, rooms, people = scene
    andrea = make_presenter(convening, registration=people[0])
    keynote = make_session(convening, "Keynote", 1, "09:00", "10:00", room=rooms["hall"], presenters=(andrea,))
    other = make_session(convening, "Roundtable", 1, "11:00", "12:00", room=rooms["salon"], presenters=(andrea,))
    saved = service.update_session(keynote.id, {"title": "Opening keynote"})
    assert saved.session.sequence == 1 and saved.session.title == "Opening keynote"
    with pytest.raises(ConveneError) as caught:
        service.update_session(other.id, {"starts_at": wall(convening, 1, "09:30"),
                                          "ends_at": wall(convening, 1, "10:30")})
    assert caught.value.field == "presenter_ids" and caught.value.message.startswith(people[0].full_name)
    db.session.rollback()
    other = db.session.get(ProgramSession, other.id)
    assert other.starts_at == local(convening, 1, "11:00") and other.sequence == 0


def test_moving_keeps_the_length_and_checks_the_new_room(scene):
    convening, _, rooms, _ = scene
    talk = make_session(convening, "Talk", 0, "09:00", "10:30", room=rooms["hall"])
    make_session(convening, "Busy", 1, "14:00", "15:00", room=rooms["salon"])
    saved = service.move_session(talk.id, wall(convening, 1, "16:00"), rooms["salon"].id)
    assert saved.session.starts_at == local(convening, 1, "16:00")
    assert saved.session.ends_at == local(convening, 1, "17:30") and saved.session.room_id == rooms["salon"].id
    with pytest.raises(ConveneError) as caught:
        service.move_session(talk.id, wall(convening, 1, "13:30"), rooms["salon"].id)
    assert caught.value.code == "schedule_conflict"


def test_duplicating_copies_presenters_and_refuses_the_same_slot(scene):
    convening, _, rooms, people = scene
    guest = make_presenter(convening, "Dana Whitfield", bio="Communications lead.")
    original = make_session(convening, "Media strategy", 1, "14:00", "15:00", room=rooms["salon"], presenters=(guest,),
                            kind="roundtable", signup_required=True, capacity=12)
    with pytest.raises(ConveneError):
        service.duplicate_session(original.id)
    saved = service.duplicate_session(original.id, {"starts_at": wall(convening, 2, "14:00"),
                                                    "ends_at": wall(convening, 2, "15:00"),
                                                    "title": "Media strategy (again)"})
    copy = saved.session
    assert copy.id != original.id and [p.name for p in copy.presenters] == ["Dana Whitfield"]
    assert copy.capacity == 12 and copy.signup_required and copy.sequence == 0


def test_deleting_a_session_removes_its_sign_ups(scene):
    convening, _, rooms, people = scene
    publish(convening)
    group = make_session(convening, "Group", 1, "14:00", "15:00", room=rooms["salon"], signup_required=True)
    service.sign_up(people[0].id, group.id)
    assert service.delete_session(group.id, reason="The facilitator is ill.") == "Group"
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SessionSignup)) == 0


def test_a_room_in_use_cannot_be_deleted_and_room_names_are_unique(scene):
    convening, _, rooms, _ = scene
    make_session(convening, "Talk", 0, "09:00", "10:00", room=rooms["salon"])
    with pytest.raises(ConveneError) as caught:
        service.delete_room(rooms["salon"].id)
    assert "1 session is scheduled in Salon A" in caught.value.message
    with pytest.raises(ConveneError) as caught:
        service.create_room(convening.id, {"name": "great hall", "capacity": 10})
    assert caught.value.field == "name"
    assert service.delete_room(rooms["library"].id).name == "Library"


def test_shrinking_a_room_under_a_blocking_rule_is_refused(scene):
    convening, _, rooms, _ = scene
    service.set_conflict_rules(convening.id, {"room_too_small": "blocking"})
    make_session(convening, "Group", 1, "14:00", "15:00", room=rooms["salon"], signup_required=True, capacity=18)
    with pytest.raises(ConveneError) as caught:
        service.update_room(rooms["salon"].id, {"name": "Salon A", "capacity": 10, "accessible": True})
    assert "takes 18 sign-ups but Salon A holds 10" in caught.value.message
    db.session.rollback()
    assert db.session.get(type(rooms["salon"]), rooms["salon"].id).capacity == 20


def test_presenters_are_registered_people_or_external_guests(scene):
    convening, _, _, people = scene
    linked = service.create_presenter(convening.id, {"registration_id": people[1].id,
                                                     "bio": "Runs a bridging program."})
    assert linked.name == people[1].full_name and linked.display_name == people[1].full_name
    with pytest.raises(ConveneError) as caught:
        service.create_presenter(convening.id, {"registration_id": people[1].id})
    assert caught.value.field == "registration_id"
    with pytest.raises(ConveneError) as caught:
        service.create_presenter(convening.id, {"name": "", "bio": "x"})
    assert caught.value.field == "name"
    guest = service.create_presenter(convening.id, {"name": "Dana Whitfield", "organization": "TRIEC"})
    assert guest.external


def test_publishing_is_refused_while_blocking_conflicts_remain(scene):
    convening, _, rooms, _ = scene
    service.set_conflict_rules(convening.id, {"room_double_booked": "warning"})
    make_session(convening, "A", 0, "09:00", "10:00", room=rooms["hall"])
    make_session(convening, "B", 0, "09:30", "10:30", room=rooms["hall"])
    service.set_conflict_rules(convening.id, {"room_double_booked": "blocking"})
    with pytest.raises(ConveneError, match="blocking conflicts"):
        service.publish_program(convening.id)
    service.set_conflict_rules(convening.id, {"room_double_booked": "warning"})
    service.publish_program(convening.id)
    assert service.is_published(convening.id)
    service.unpublish_program(convening.id)
    assert not service.is_published(convening.id)


def test_the_grid_has_a_row_per_boundary_and_shares_a_cell_when_double_booked(scene):
    convening, _, rooms, _ = scene
    make_session(convening, "Keynote", 0, "09:00", "10:00", room=rooms["hall"])
    a = make_session(convening, "A", 0, "10:00", "11:00", room=rooms["salon"])
    b = make_session(convening, "B", 0, "10:30", "11:30", room=rooms["salon"])
    make_session(convening, "Dinner", 0, "18:00", "21:00", location="Mill Street Brewery")
    view = service.program_view(convening)
    grid = service.day_grid(convening, convening.starts_on, view.sessions, view.rooms)
    assert [r.label for r in grid.rows] == ["09:00", "10:00", "10:30", "11:00", "11:30", "18:00"]
    assert [c.name if c else None for c in grid.columns] == ["Great Hall", "Library", "Salon A", None]
    salon = [row.cells[2] for row in grid.rows]
    assert salon[1].sessions == [a, b] and salon[1].rowspan == 3 and salon[2] is None and salon[3] is None
    assert grid.rows[-1].cells[3].sessions[0].title == "Dinner"
    assert len(view.blocking) == 1


# -- sign-ups ------------------------------------------------------------------------------------------

def test_signing_up_counts_seats_refuses_overlaps_and_leaving_frees_the_seat(scene):
    convening, _, rooms, people = scene
    publish(convening)
    mentoring = make_session(convening, "Mentorship", 1, "14:00", "15:30", room=rooms["salon"], kind="roundtable",
                             signup_required=True, capacity=2)
    media = make_session(convening, "Media", 1, "15:00", "16:00", room=rooms["hall"], kind="roundtable",
                         signup_required=True)
    plenary = make_session(convening, "Plenary", 1, "09:00", "10:00", room=rooms["hall"])
    service.sign_up(people[0].id, mentoring.id)
    with pytest.raises(ConveneError, match="already signed up"):
        service.sign_up(people[0].id, mentoring.id)
    with pytest.raises(ConveneError) as caught:
        service.sign_up(people[0].id, media.id)
    assert caught.value.message.startswith("You are signed up for Mentorship (") and "overlaps" in caught.value.message
    with pytest.raises(ConveneError, match="needs no sign-up"):
        service.sign_up(people[0].id, plenary.id)
    service.sign_up(people[1].id, mentoring.id)
    with pytest.raises(ConveneError, match="this session is full"):
        service.sign_up(people[2].id, mentoring.id)
    service.leave_session(people[1].id, mentoring.id)
    with pytest.raises(ConveneError, match="not signed up"):
        service.leave_session(people[1].id, mentoring.id)
    service.sign_up(people[2].id, mentoring.id)
    assert signups_of(mentoring.id) == {people[0].id, people[2].id}
    # A cancellation frees the seat at once.
    registration_service.cancel_registration(people[0].id)
    service.sign_up(people[1].id, mentoring.id)
    assert service.seats_taken(convening.id)[mentoring.id] == 2


def test_sign_up_is_refused_before_publishing_for_unconfirmed_people_and_during_ranking(scene):
    convening, ticket, rooms, people = scene
    group = make_session(convening, "Group", 2, "11:00", "12:00", room=rooms["salon"], signup_required=True)
    with pytest.raises(ConveneError, match="not published"):
        service.sign_up(people[0].id, group.id)
    publish(convening)
    waiting = make_registration(convening, ticket, 9, status=Status.WAITLISTED)
    with pytest.raises(ConveneError, match="Only confirmed"):
        service.sign_up(waiting.id, group.id)
    block = make_block(convening)
    service.update_session(group.id, {"block_id": block.id})
    with pytest.raises(ConveneError, match="rank the sessions"):
        service.sign_up(people[0].id, group.id)
    other = make_convening()
    elsewhere = make_session(other, "Elsewhere", 0, "09:00", "10:00", signup_required=True)
    with pytest.raises(ConveneError) as caught:
        service.sign_up(people[0].id, elsewhere.id)
    assert caught.value.status_code == 404


def test_a_site_visit_or_a_session_you_present_blocks_a_sign_up(scene):
    convening, _, rooms, people = scene
    publish(convening)
    host = make_host(convening, "Magnet")
    slot = make_slot(convening, "Morning visits", 9, hours=3)  # day 1, 09:00-12:00
    visit = make_visit(host, slot, 10)
    db.session.add(VisitAssignment(registration_id=people[0].id, slot_id=slot.id, site_visit_id=visit.id))
    db.session.commit()
    clash = make_session(convening, "Late-morning roundtable", 1, "11:00", "12:30", room=rooms["salon"],
                         signup_required=True)
    with pytest.raises(ConveneError, match="You are on a site visit then"):
        service.sign_up(people[0].id, clash.id)
    speaker = make_presenter(convening, registration=people[1])
    make_session(convening, "Panel", 1, "11:30", "12:00", room=rooms["hall"], presenters=(speaker,))
    with pytest.raises(ConveneError, match="You present Panel"):
        service.sign_up(people[1].id, clash.id)


def test_last_seat_goes_to_exactly_one_of_twenty_racers(app, backend):
    convening = make_convening()
    ticket = make_ticket(convening)
    publish(convening)
    room = make_room(convening, "Boardroom", 1)
    session = make_session(convening, "Working group", 2, "11:00", "12:00", room=room, signup_required=True)
    people = [make_registration(convening, ticket, 500 + n).id for n in range(20)]
    session_id = session.id  # plain ints: objects of this session stay in this thread
    def sign_up(registration_id: int):
        def action() -> str:
            service.sign_up(registration_id, session_id)
            return "seat"
        return action

    outcomes = race(app, [sign_up(rid) for rid in people])
    assert len(outcomes) == 20
    assert outcomes.count("seat") == 1 and outcomes.count("session_full") == 19
    assert len(signups_of(session_id)) == 1


# -- preferences and allocation ---------------------------------------------------------------------------

@pytest.fixture
def groups(scene):
    """Three working groups of two seats in a block; the Library one has steps."""
    convening, ticket, rooms, people = scene
    publish(convening)
    block = make_block(convening)
    names = ("Refugee Strategies", "Pathways", "WIOA/Apprenticeship")
    sessions = [make_session(convening, name, 2, "11:00", "12:30", room=room, kind="working_group", capacity=2,
                             signup_required=True, block_id=block.id)
                for name, room in zip(names, (rooms["hall"], rooms["salon"], rooms["library"]))]
    people += [make_registration(convening, ticket, n) for n in (5, 6)]
    return convening, block, sessions, people


def test_rankings_are_checked_and_replaced(groups):
    convening, block, sessions, people = groups
    service.set_session_preferences(people[0].id, block.id, [sessions[2].id, sessions[0].id])
    assert service.ranking_for(people[0].id, block.id) == [sessions[2].id, sessions[0].id]
    with pytest.raises(ConveneError, match="only once"):
        service.set_session_preferences(people[0].id, block.id, [sessions[1].id, sessions[1].id])
    outsider = make_session(convening, "Not in block", 2, "14:00", "15:00")
    with pytest.raises(ConveneError, match="not part of this block"):
        service.set_session_preferences(people[0].id, block.id, [outsider.id])
    service.set_session_preferences(people[0].id, block.id, [sessions[1].id])
    assert service.ranking_for(people[0].id, block.id) == [sessions[1].id]
    service.save_block(convening.id, {"name": block.name, "preferences_open": False}, block_id=block.id)
    with pytest.raises(ConveneError, match="closed"):
        service.set_session_preferences(people[0].id, block.id, [sessions[0].id])


def test_allocation_places_everyone_by_rank_within_seats_and_access(groups):
    convening, block, sessions, people = groups
    hall, salon, library = sessions
    # Everyone wants the Library group first; only two seats, and person 4 cannot take the stairs.
    for person in people:
        service.set_session_preferences(person.id, block.id, [library.id, salon.id, hall.id])
    facilitator = make_presenter(convening, registration=people[5])
    service.update_session(hall.id, {"presenter_ids": [facilitator.id]})
    result = service.allocate_sessions(convening.id, block.id)
    assert result.people == 6 and result.placed == 6 and result.unassigned == [] and result.optimal
    placed = {sid: signups_of(sid) for sid in (hall.id, salon.id, library.id)}
    assert all(len(ids) == 2 for ids in placed.values())
    assert people[3].id not in placed[library.id]  # needs step-free access
    assert people[5].id in placed[hall.id]  # facilitators stay with their own group
    assert result.rank_profile[0] == 2 and result.rank_profile[1] == 2
    db.session.rollback()
    block = db.session.get(type(block), block.id)
    assert not block.preferences_open and block.allocated_at is not None


def test_allocation_keeps_unranked_sign_ups_as_first_choice_and_reports_who_did_not_fit(groups):
    convening, block, sessions, people = groups
    service.save_block(convening.id, {"name": block.name, "preferences_open": False}, block_id=block.id)
    service.sign_up(people[0].id, sessions[1].id)  # signed up first-come, ranked nothing
    result = service.allocate_sessions(convening.id, block.id)
    assert result.people == 1 and signups_of(sessions[1].id) == {people[0].id}
    # Everyone who attends: seven people for six seats; the latest to register is left out, with a reason.
    late = make_registration(convening, convening.ticket_types[0], 7)
    everyone = service.allocate_sessions(convening.id, block.id, include_unranked=True)
    assert (everyone.people, everyone.placed) == (7, 6)
    [(left_out, reason)] = everyone.unassigned
    assert left_out.id == late.id and reason
    empty = make_block(convening, "Empty", preferences_open=False)
    with pytest.raises(ConveneError, match="Add sessions"):
        service.allocate_sessions(convening.id, empty.id)
    make_session(convening, "Lonely", 2, "14:00", "15:00", block_id=empty.id, signup_required=True)
    with pytest.raises(ConveneError, match="Nobody has ranked"):
        service.allocate_sessions(convening.id, empty.id)


def test_deleting_a_block_keeps_its_sessions_and_drops_its_rankings(groups):
    convening, block, sessions, people = groups
    service.set_session_preferences(people[0].id, block.id, [sessions[0].id])
    assert service.delete_block(block.id).name == "Working groups"
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SessionPreference)) == 0
    assert db.session.get(ProgramSession, sessions[0].id).block_id is None


# -- the personal agenda ------------------------------------------------------------------------------------

def test_the_personal_agenda_has_plenaries_sign_ups_talks_visits_and_meals(scene):
    convening, _, rooms, people = scene
    me, other = people[0], people[1]
    publish(convening)
    host = make_host(convening, "George Brown College", address="200 King St E")
    slot = make_slot(convening, "Morning visits", 9, hours=3)
    visit = make_visit(host, slot, 10, meeting_point="Hotel lobby, by the revolving door")
    db.session.add(VisitAssignment(registration_id=me.id, slot_id=slot.id, site_visit_id=visit.id,
                                   published_site_visit_id=visit.id))
    db.session.get(Convening, convening.id).visits_published_at = datetime.now(UTC)
    db.session.commit()
    me_presenter = make_presenter(convening, registration=me)
    make_session(convening, "Networking dinner", 0, "18:30", "21:00", kind="networking", location="Mill Street")
    make_session(convening, "Site visits", 1, "09:00", "12:00", kind="site_visit", visit_slot_id=slot.id)
    make_session(convening, "Lunch", 1, "12:00", "13:00", room=rooms["hall"], kind="meal")
    mine = make_session(convening, "Mentorship", 1, "14:00", "15:30", room=rooms["salon"], kind="roundtable",
                        signup_required=True)
    theirs = make_session(convening, "Media", 1, "14:00", "15:30", room=rooms["library"], kind="roundtable",
                          signup_required=True)
    make_session(convening, "Action plans", 2, "09:00", "10:00", room=rooms["hall"], kind="breakout",
                 presenters=(me_presenter,))
    make_session(convening, "Open breakout", 2, "10:30", "11:00", room=rooms["salon"], kind="breakout")
    service.sign_up(me.id, mine.id)
    service.sign_up(other.id, theirs.id)

    db.session.rollback()
    agenda = service.personal_agenda(convening, db.session.get(type(me), me.id))
    rows = [(d.day - convening.starts_on).days for d in agenda], [
        [(i.title, i.why) for i in d.items] for d in agenda]
    assert rows == ([0, 1, 2], [
        [("Networking dinner", "everyone")],
        [("Site visit: George Brown College", "site_visit"), ("Lunch", "everyone"), ("Mentorship", "signed_up")],
        [("Action plans", "presenting")],
    ])
    visit_item = agenda[1].items[0]
    assert ("Meet at", "Hotel lobby, by the revolving door") in visit_item.details
    assert visit_item.starts_at == local(convening, 1, "09:00")
    # Before visits are published, the site-visit block stands in for the group.
    db.session.get(Convening, convening.id).visits_published_at = None
    db.session.commit()
    titles = [i.title for d in service.personal_agenda(convening, me) for i in d.items]
    assert "Site visits" in titles and "Site visit: George Brown College" not in titles


def test_an_unpublished_program_or_a_cancelled_registration_has_no_agenda(scene):
    convening, _, rooms, people = scene
    make_session(convening, "Plenary", 0, "09:00", "10:00", room=rooms["hall"])
    assert service.personal_agenda(convening, people[0]) == []
    publish(convening)
    assert len(service.personal_agenda(convening, people[0])) == 1
    registration_service.cancel_registration(people[0].id)
    db.session.rollback()
    assert service.personal_agenda(convening, db.session.get(type(people[0]), people[0].id)) == []


def test_conflicts_see_sign_ups_access_needs_and_site_visits(scene):
    convening, _, rooms, people = scene
    publish(convening)
    slot = make_slot(convening, "Morning visits", 9, hours=3)
    visit = make_visit(make_host(convening, "Magnet"), slot, 10)
    db.session.add(VisitAssignment(registration_id=people[2].id, slot_id=slot.id, site_visit_id=visit.id))
    db.session.commit()
    stairs = make_session(convening, "Media", 1, "14:00", "15:00", room=rooms["library"], signup_required=True)
    service.sign_up(people[3].id, stairs.id)  # needs step-free access: a warning by default
    early = make_session(convening, "Early roundtable", 1, "11:30", "12:30", room=rooms["salon"],
                         signup_required=True)
    db.session.add(SessionSignup(session_id=early.id, registration_id=people[2].id))
    db.session.commit()
    found = {c.kind: c for c in service.program_conflicts(convening)}
    assert set(found) == {"room_inaccessible", "site_visit_overlap"}
    assert found["room_inaccessible"].people == (people[3].id,)
    service.set_conflict_rules(convening.id, {"room_inaccessible": "blocking"})
    other_stairs = make_session(convening, "Stairs again", 2, "14:00", "15:00", room=rooms["library"],
                                signup_required=True)
    with pytest.raises(ConveneError, match="no step-free access"):
        service.sign_up(people[3].id, other_stairs.id)


def test_the_demo_program_has_three_days_and_leaves_a_warning(app):
    from convene.services.db import unit_of_work
    from convene.services.demo import load_demo
    from convene.services.demo_program import load_demo_program

    convening, created = load_demo()
    assert created
    for _ in range(2):  # the second call finds the program and changes nothing
        with unit_of_work():
            load_demo_program(db.session.get(Convening, convening.id))
    db.session.rollback()
    convening = db.session.get(Convening, convening.id)
    view = service.program_view(convening)
    days = {service.local_day(convening, s) for s in view.sessions}
    assert days == {convening.starts_on, convening.starts_on + timedelta(days=1), convening.ends_on}
    assert view.settings.published_at is not None
    assert view.blocking == [] and len(view.warnings) >= 1
    titles = {s.title for s in view.sessions}
    assert {"Networking dinner", "Refugee Strategies", "WIOA/Apprenticeship"} <= titles
    assert sum(view.taken.values()) > 10
    assert any(p.registration_id for p in service.presenters_of(convening.id))
    assert len(service.rooms_of(convening.id)) == 10


def test_deleting_a_session_of_the_published_program_needs_a_reason_and_emails_who_signed_up(scene, outbox):
    convening, _, rooms, people = scene
    publish(convening)
    group = make_session(convening, "Group", 1, "14:00", "15:00", room=rooms["salon"], signup_required=True)
    service.sign_up(people[0].id, group.id)
    service.sign_up(people[1].id, group.id)
    with pytest.raises(ConveneError) as refused:
        service.delete_session(group.id, reason="  ")
    assert refused.value.code == "delete_reason_required" and refused.value.field == "reason"
    db.session.rollback()
    assert db.session.get(ProgramSession, group.id) is not None and outbox.messages() == []
    preview = service.deletion_preview(group.id)
    service.sign_up(people[2].id, group.id)  # a third person signs up after the organizer looked
    with pytest.raises(ConveneError) as changed:
        service.delete_session(group.id, reason="Room flooded.", expected=preview.token)
    assert changed.value.code == "delete_preview_changed"
    db.session.rollback()
    assert service.delete_session(group.id, reason="Room flooded.",
                                  expected=service.deletion_preview(group.id).token) == "Group"
    messages = outbox.messages()
    assert sorted(m["To"] for m in messages) == sorted(p.email for p in people[:3])
    assert all("Room flooded." in outbox.text(m) and "Group" in m["Subject"] for m in messages)


def test_deleting_a_session_of_a_draft_program_needs_no_reason_and_emails_nobody(scene, outbox):
    convening, _, rooms, people = scene
    draft = make_session(convening, "Draft", 1, "14:00", "15:00", room=rooms["salon"])
    assert service.delete_session(draft.id) == "Draft" and outbox.messages() == []


# -- previews before bulk and destructive actions (issue 11: 20) ----------------------------------------------

def signups_by_person(block) -> dict[int, int]:
    db.session.rollback()
    return dict(db.session.execute(
        sa.select(SessionSignup.registration_id, SessionSignup.session_id)
        .join(ProgramSession, ProgramSession.id == SessionSignup.session_id)
        .where(ProgramSession.block_id == block.id)).all())


def test_the_allocation_preview_is_exactly_what_allocating_commits_and_writes_nothing(groups, outbox):
    convening, block, sessions, people = groups
    hall, salon, library = sessions
    for person in people:
        service.set_session_preferences(person.id, block.id, [library.id, salon.id, hall.id])
    preview = service.allocation_preview(convening.id, block.id)
    previewed = {p.registration.id: p.session.id for p in preview.placed}
    assert len(previewed) == 6 and preview.unassigned == []
    assert [r.id for r in preview.emailed] == [p.registration.id for p in preview.placed]
    assert signups_by_person(block) == {} and outbox.messages() == []  # a preview writes and sends nothing
    db.session.rollback()
    assert db.session.get(type(block), block.id).preferences_open
    assert service.allocation_preview(convening.id, block.id).token == preview.token  # same data, same outcome
    result = service.allocate_sessions(convening.id, block.id, expected=preview.token)
    assert signups_by_person(block) == previewed
    assert result.emailed == 6 and sorted(m["To"] for m in outbox.messages()) == sorted(p.email for p in people)


def test_a_ranking_after_the_preview_refuses_the_allocation_and_changes_nothing(groups, outbox):
    convening, block, sessions, people = groups
    service.set_session_preferences(people[0].id, block.id, [sessions[0].id])
    preview = service.allocation_preview(convening.id, block.id)
    assert [p.registration.id for p in preview.placed] == [people[0].id]
    service.set_session_preferences(people[1].id, block.id, [sessions[1].id])  # a new ranking arrives
    with pytest.raises(ConveneError) as refused:
        service.allocate_sessions(convening.id, block.id, expected=preview.token)
    assert refused.value.code == "allocation_preview_changed"
    assert signups_by_person(block) == {} and outbox.messages() == []
    assert db.session.get(type(block), block.id).preferences_open and block.allocated_at is None
    again = service.allocation_preview(convening.id, block.id)
    assert again.token != preview.token and {p.registration.id for p in again.placed} == {people[0].id, people[1].id}
    service.allocate_sessions(convening.id, block.id, expected=again.token)
    assert signups_by_person(block) == {people[0].id: sessions[0].id, people[1].id: sessions[1].id}


def test_the_allocation_preview_names_who_moves_who_cannot_be_placed_and_released_seats(groups):
    convening, block, sessions, people = groups
    hall, salon, library = sessions
    service.save_block(convening.id, {"name": block.name, "preferences_open": False}, block_id=block.id)
    service.sign_up(people[0].id, library.id)
    service.sign_up(people[1].id, library.id)
    registration_service.cancel_registration(people[1].id)  # a cancelled person's sign-up is released
    late = make_registration(convening, convening.ticket_types[0], 7)
    plan = service.allocation_preview(convening.id, block.id, include_unranked=True)
    by_person = {p.registration.id: p for p in plan.placed}
    assert set(by_person) == {people[0].id, *(p.id for p in people[2:]), late.id} and plan.unassigned == []
    assert by_person[people[0].id].before.id == library.id and by_person[late.id].before is None
    assert by_person[people[3].id].session.id != library.id  # needs step-free access
    assert [(r.id, s.id) for r, s in plan.dropped] == [(people[1].id, library.id)]
    service.allocate_sessions(convening.id, block.id, include_unranked=True, expected=plan.token)
    assert signups_by_person(block) == {rid: p.session.id for rid, p in by_person.items()}


def test_opening_ranking_is_refused_when_who_would_be_emailed_changed(groups, outbox):
    convening, _, _, people = groups
    closed = make_block(convening, "Field trips", preferences_open=False)
    token = service.audience_token(service.ranking_audience(convening.id))
    make_registration(convening, convening.ticket_types[0], 9)  # someone new is confirmed
    with pytest.raises(ConveneError) as refused:
        service.save_block(convening.id, {"name": "Field trips", "preferences_open": True}, block_id=closed.id,
                           expected=token)
    assert refused.value.code == "ranking_audience_changed"
    db.session.rollback()
    assert not db.session.get(type(closed), closed.id).preferences_open and outbox.messages() == []
    audience = service.ranking_audience(convening.id)
    saved = service.save_block(convening.id, {"name": "Field trips", "preferences_open": True}, block_id=closed.id,
                               expected=service.audience_token(audience))
    assert saved.notified == len(audience) == 7 and len(outbox.messages()) == 7


def test_each_deletion_preview_names_what_goes_and_a_changed_set_refuses_the_delete(groups):
    convening, block, sessions, people = groups
    hall, salon, library = sessions
    room = db.session.get(type(hall.room), hall.room_id)
    preview = service.room_deletion(room.id)
    assert preview.blocked is not None and [e.key for e in preview.effects] == ["sessions"]
    assert preview.effects[0].names[0].startswith("Refugee Strategies (")
    with pytest.raises(ConveneError, match="scheduled in Great Hall"):
        service.delete_room(room.id, expected=preview.token)

    presenter = make_presenter(convening, "Dana Whitfield")
    service.update_session(salon.id, {"presenter_ids": [presenter.id]})
    preview = service.presenter_deletion(presenter.id)
    assert preview.effects[0].text == "1 session loses Dana Whitfield as a presenter and stays in the program"
    assert preview.effects[0].names == ["Pathways"]
    make_session(convening, "Plenary", 0, "09:00", "10:00", presenters=(presenter,))  # added since the preview
    with pytest.raises(ConveneError) as refused:
        service.delete_presenter(presenter.id, expected=preview.token)
    assert refused.value.code == "delete_changed"
    done = service.delete_presenter(presenter.id, expected=service.presenter_deletion(presenter.id).token)
    assert done.done == "Dana Whitfield is removed from the presenters and from 2 sessions."

    service.set_session_preferences(people[0].id, block.id, [hall.id])
    preview = service.block_deletion(block.id)
    assert [e.key for e in preview.effects] == ["sessions", "rankings"]
    assert preview.effects[1].names == [people[0].full_name]
    service.set_session_preferences(people[1].id, block.id, [salon.id])
    with pytest.raises(ConveneError, match="Nothing was deleted"):
        service.delete_block(block.id, expected=preview.token)
    db.session.rollback()
    assert db.session.get(type(block), block.id) is not None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SessionPreference)) == 2
