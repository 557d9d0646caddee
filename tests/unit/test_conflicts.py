"""The conflict finder on hand-built programs: pure data, no database."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from convene.scheduling import (
    BLOCKING,
    CONFLICT_KINDS,
    DEFAULT_RULES,
    WARNING,
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

TORONTO = ZoneInfo("America/Toronto")
UTC = timezone.utc
ROOMS = {
    1: RoomInfo(1, "Great Hall", capacity=150),
    2: RoomInfo(2, "Salon A", capacity=20),
    3: RoomInfo(3, "Library", capacity=16, accessible=False),
}


def at(day: int, hour: int, minute: int = 0, *, month: int = 6, year: int = 2027, fold: int = 0) -> datetime:
    """A wall-clock time in Toronto, as an aware instant."""
    return datetime(year, month, day, hour, minute, tzinfo=TORONTO, fold=fold)


def session(id: int, start: datetime, end: datetime, **kw) -> SessionInfo:
    return SessionInfo(id=id, title=kw.pop("title", f"Session {id}"), starts_at=start, ends_at=end, **kw)


def schedule(*sessions, **kw) -> Schedule:
    values = dict(starts_on=date(2027, 6, 8), ends_on=date(2027, 6, 10), tz=TORONTO, rooms=ROOMS,
                  presenters={7: "Andrea Lopes", 8: "Irina Volkova"},
                  people={101: "Daniel Rivera", 102: "Layla Haddad", 103: "Omar Farouk"})
    values.update(kw)
    return Schedule(sessions=sessions, **values)


def kinds(conflicts) -> list[str]:
    return [c.kind for c in conflicts]


# -- intervals ---------------------------------------------------------------------------------------

def test_touching_intervals_do_not_overlap_but_a_shared_minute_does():
    nine, ten, eleven = at(9, 9), at(9, 10), at(9, 11)
    assert not overlaps(nine, ten, ten, eleven)
    assert not overlaps(ten, eleven, nine, ten)
    assert overlaps(nine, ten + timedelta(minutes=1), ten, eleven)
    assert overlaps(nine, eleven, ten, ten + timedelta(minutes=5))  # one inside the other


def test_back_to_back_sessions_in_one_room_are_fine():
    found = find_conflicts(schedule(session(1, at(9, 9), at(9, 10), room_id=1),
                                    session(2, at(9, 10), at(9, 11), room_id=1)))
    assert found == []


def test_a_room_booked_twice_is_a_blocking_conflict_naming_both_sessions():
    found = find_conflicts(schedule(session(1, at(9, 9), at(9, 10, 30), room_id=2, title="Mentorship"),
                                    session(2, at(9, 10), at(9, 11), room_id=2, title="Refugee Strategies")))
    assert kinds(found) == ["room_double_booked"]
    conflict = found[0]
    assert conflict.severity == BLOCKING and conflict.session_ids == (1, 2)
    assert "Salon A is booked for both Mentorship (Wed 09 Jun 09:00–10:30)" in conflict.message
    assert "Refugee Strategies (Wed 09 Jun 10:00–11:00)" in conflict.message


def test_sessions_across_midnight_overlap_the_next_mornings_early_ones():
    late = session(1, at(8, 22), at(9, 1), room_id=1, title="Late social")
    early = session(2, at(9, 0, 30), at(9, 2), room_id=1, title="Night owls")
    after = session(3, at(9, 1), at(9, 3), room_id=2)
    found = find_conflicts(schedule(late, early, after))
    assert kinds(found) == ["room_double_booked"]
    assert "Tue 08 Jun 22:00 – Wed 09 Jun 01:00" in found[0].message


def test_spring_forward_two_hours_from_one_oclock_end_at_four_on_the_clock():
    # 14 March 2027: Toronto goes from 02:00 EST straight to 03:00 EDT.
    start = at(14, 1, month=3)
    workshop = session(1, start, (start.astimezone(UTC) + timedelta(hours=2)).astimezone(TORONTO), room_id=1)
    assert workshop.ends_at.astimezone(TORONTO).strftime("%H:%M %Z") == "04:00 EDT"
    # Adding two hours to the wall clock would end at 03:00 and miss this one.
    next_one = session(2, at(14, 3, 30, month=3), at(14, 5, month=3), room_id=1)
    found = find_conflicts(schedule(workshop, next_one, starts_on=date(2027, 3, 13), ends_on=date(2027, 3, 15)))
    assert kinds(found) == ["room_double_booked"]
    assert "Sun 14 Mar 01:00–04:00" in found[0].message


def test_spring_forward_sessions_that_touch_across_the_skipped_hour_do_not_overlap():
    # 01:00-02:00 EST ends at 07:00 UTC; 03:00 EDT is also 07:00 UTC: they touch.
    first = session(1, at(14, 1, month=3), at(14, 3, month=3), room_id=1)
    second = session(2, at(14, 3, month=3), at(14, 4, month=3), room_id=1)
    assert first.ends_at.astimezone(UTC) == second.starts_at.astimezone(UTC)
    assert find_conflicts(schedule(first, second, starts_on=date(2027, 3, 14), ends_on=date(2027, 3, 14))) == []


def test_fall_back_the_same_wall_clock_hour_twice_is_two_different_hours():
    # 7 November 2027: 01:00-02:00 happens twice (EDT, then EST).
    first = session(1, at(7, 1, 15, month=11), at(7, 1, 45, month=11), room_id=1)
    second = session(2, at(7, 1, 15, month=11, fold=1), at(7, 1, 45, month=11, fold=1), room_id=1)
    assert second.starts_at.astimezone(UTC) - first.starts_at.astimezone(UTC) == timedelta(hours=1)
    sched = schedule(first, second, starts_on=date(2027, 11, 6), ends_on=date(2027, 11, 8))
    assert find_conflicts(sched) == []
    # While a session spanning the repeated hour really does collide with the second one.
    spanning = session(3, at(7, 1, 30, month=11), at(7, 1, 30, month=11, fold=1), room_id=1)
    assert spanning.ends_at - spanning.starts_at == timedelta(hours=1)
    found = find_conflicts(schedule(first, second, spanning, starts_on=date(2027, 11, 6), ends_on=date(2027, 11, 8)))
    assert sorted(c.session_ids for c in found) == [(1, 3), (2, 3)]


# -- each kind -----------------------------------------------------------------------------------------

def test_a_presenter_in_two_places_at_once_is_blocking():
    found = find_conflicts(schedule(session(1, at(9, 14), at(9, 15), room_id=1, presenter_ids={7}),
                                    session(2, at(9, 14, 30), at(9, 16), room_id=2, presenter_ids={7, 8})))
    assert kinds(found) == ["presenter_clash"]
    assert found[0].blocking and found[0].message.startswith("Andrea Lopes presents both")


def test_a_registered_presenter_signed_up_elsewhere_is_an_attendee_overlap():
    found = find_conflicts(schedule(session(1, at(9, 14), at(9, 15), room_id=1, presenter_people={101}),
                                    session(2, at(9, 14), at(9, 15), room_id=2, attendee_ids={101})))
    assert kinds(found) == ["attendee_overlap"]


@pytest.mark.parametrize(("start", "end", "outside"), [
    (at(8, 0), at(8, 1), False),  # first minute of the first day
    (at(7, 23), at(8, 1), True),  # starts the evening before
    (at(10, 22), at(11, 0), False),  # ends exactly at midnight after the last day
    (at(10, 23), at(11, 0, 30), True),  # runs past midnight after the last day
    (at(10, 21), at(10, 23), False),  # 01:00-03:00 UTC the next day, still the last day in Toronto
])
def test_outside_the_dates_is_judged_in_the_convenings_local_time(start, end, outside):
    found = find_conflicts(schedule(session(1, start, end)))
    assert kinds(found) == (["outside_dates"] if outside else [])
    if outside:
        assert found[0].severity == WARNING and "08 Jun – 10 Jun 2027" in found[0].message


def test_a_room_smaller_than_the_sign_up_capacity_is_a_warning():
    found = find_conflicts(schedule(session(1, at(9, 9), at(9, 10), room_id=2, capacity=25),
                                    session(2, at(9, 11), at(9, 12), room_id=2, capacity=20),
                                    session(3, at(9, 13), at(9, 14), room_id=2)))
    assert kinds(found) == ["room_too_small"]
    assert found[0].session_ids == (1,) and "takes 25 sign-ups but Salon A holds 20" in found[0].message


def test_an_inaccessible_room_matters_only_when_someone_there_needs_step_free_access():
    needs = frozenset({101})
    nobody = schedule(session(1, at(9, 9), at(9, 10), room_id=3, attendee_ids={102}), needs_access=needs)
    assert find_conflicts(nobody) == []
    signed = schedule(session(1, at(9, 9), at(9, 10), room_id=3, attendee_ids={101, 102}), needs_access=needs)
    [conflict] = find_conflicts(signed)
    assert conflict.kind == "room_inaccessible" and conflict.people == (101,)
    assert "Library, which has no step-free access, and Daniel Rivera needs it" in conflict.message
    presenter = schedule(session(1, at(9, 9), at(9, 10), room_id=3, presenter_people={101}), needs_access=needs)
    assert kinds(find_conflicts(presenter)) == ["room_inaccessible"]
    plenary = schedule(session(1, at(9, 9), at(9, 10), room_id=3, everyone=True), needs_access=needs,
                       everyone_ids=frozenset({101, 102, 103}))
    assert kinds(find_conflicts(plenary)) == ["room_inaccessible"]


def test_people_signed_up_to_overlapping_sessions_are_named():
    found = find_conflicts(schedule(session(1, at(9, 14), at(9, 15), room_id=1, attendee_ids={101, 102}),
                                    session(2, at(9, 14, 45), at(9, 16), room_id=2, attendee_ids={102, 103})))
    [conflict] = found
    assert conflict.kind == "attendee_overlap" and conflict.people == (102,)
    assert conflict.message.startswith("1 person is expected at both") and conflict.message.endswith("Layla Haddad.")
    assert not conflict.blocking


def test_a_sign_up_session_during_a_plenary_collides_for_everyone_signed_up():
    everyone = frozenset({101, 102, 103})
    found = find_conflicts(schedule(session(1, at(9, 9), at(9, 10), room_id=1, everyone=True),
                                    session(2, at(9, 9, 30), at(9, 10, 30), room_id=2, attendee_ids={101, 103}),
                                    everyone_ids=everyone))
    [conflict] = found
    assert conflict.kind == "attendee_overlap" and conflict.people == (101, 103)
    two_plenaries = find_conflicts(schedule(session(1, at(9, 9), at(9, 10), room_id=1, everyone=True),
                                            session(2, at(9, 9), at(9, 10), room_id=2, everyone=True)))
    assert kinds(two_plenaries) == ["attendee_overlap"]
    assert two_plenaries[0].message.startswith("Everyone is expected at both")


def test_a_session_during_a_site_visit_block_its_people_are_on():
    block = VisitBlockInfo(5, "Site visits, morning", at(9, 9), at(9, 12), people={101, 102})
    roundtable = session(1, at(9, 11, 30), at(9, 13), room_id=2, attendee_ids={102, 103})
    after = session(2, at(9, 12), at(9, 13), room_id=1, attendee_ids={101})
    site_visit_entry = session(3, at(9, 9), at(9, 12), is_site_visit_block=True, everyone=True)
    found = find_conflicts(schedule(roundtable, after, site_visit_entry, visit_blocks=(block,)))
    assert kinds(found) == ["site_visit_overlap"]
    assert found[0].session_ids == (1,) and found[0].people == (102,)
    assert "overlaps the site visits of Site visits, morning" in found[0].message


# -- rules -----------------------------------------------------------------------------------------------

def test_defaults_block_room_and_presenter_clashes_and_warn_about_the_rest():
    assert {k for k, v in DEFAULT_RULES.items() if v == BLOCKING} == {"room_double_booked", "presenter_clash"}
    assert set(DEFAULT_RULES) == set(CONFLICT_KINDS)
    assert rules_with_defaults({"attendee_overlap": "blocking", "nonsense": "blocking",
                                "room_double_booked": "maybe"}) == {
        **DEFAULT_RULES, "attendee_overlap": "blocking"}


def test_the_organizer_decides_what_blocks():
    sessions = (session(1, at(9, 9), at(9, 10), room_id=2, attendee_ids={101}),
                session(2, at(9, 9), at(9, 10), room_id=2, attendee_ids={101}))
    relaxed = find_conflicts(schedule(*sessions, rules={"room_double_booked": "warning"}))
    assert {c.kind: c.severity for c in relaxed} == {"room_double_booked": WARNING, "attendee_overlap": WARNING}
    strict = find_conflicts(schedule(*sessions, rules={"attendee_overlap": "blocking"}))
    assert {c.kind: c.severity for c in strict} == {"room_double_booked": BLOCKING, "attendee_overlap": BLOCKING}


def test_blocking_conflicts_come_first_and_are_listed_under_each_session():
    found = find_conflicts(schedule(session(1, at(9, 8), at(9, 9), capacity=30, room_id=2),
                                    session(2, at(9, 10), at(9, 11), room_id=1),
                                    session(3, at(9, 10), at(9, 11), room_id=1)))
    assert kinds(found) == ["room_double_booked", "room_too_small"]
    listed = by_session(found)
    assert [c.kind for c in listed[2]] == ["room_double_booked"] and 3 in listed and 1 in listed


def test_only_new_blocking_conflicts_count_as_created_by_a_change():
    old = (session(1, at(9, 10), at(9, 11), room_id=1), session(2, at(9, 10), at(9, 11), room_id=1))
    before = find_conflicts(schedule(*old))
    # More people in an existing clash, or a new warning, is not a new blocking conflict.
    after = find_conflicts(schedule(*old, session(3, at(9, 13), at(9, 14), room_id=2, capacity=40)))
    assert new_blocking(before, after) == []
    moved = find_conflicts(schedule(*old, session(3, at(9, 10, 30), at(9, 12), room_id=1)))
    assert [c.session_ids for c in new_blocking(before, moved)] == [(1, 3), (2, 3)]


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        SessionInfo(id=1, title="x", starts_at=datetime(2027, 6, 9, 9), ends_at=datetime(2027, 6, 9, 10))
