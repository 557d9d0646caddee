"""The conflict finder's interpretation warning, as a pure function of plain data."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from convene.scheduling import Schedule, SessionInfo, find_conflicts

TZ = ZoneInfo("America/Toronto")


def at(hour: int) -> datetime:
    return datetime(2027, 6, 1, hour, tzinfo=TZ).astimezone(timezone.utc)


def program(*sessions: SessionInfo, needs: dict[int, frozenset[str]]) -> Schedule:
    return Schedule(sessions=sessions, starts_on=date(2027, 6, 1), ends_on=date(2027, 6, 3), tz=TZ,
                    people={1: "Omar Farouk", 2: "Rosa Delgado", 3: "Aïssatou Diallo"},
                    everyone_ids=frozenset({1, 2, 3}),
                    interpretation_needs=needs, language_names={"ar": "Arabic", "es": "Spanish", "fr": "French"})


def interpretation(conflicts):
    return [(c.session_ids, c.key[-1], c.people, c.severity) for c in conflicts if c.kind == "interpretation_missing"]


def test_people_signed_up_who_need_a_language_the_session_lacks_are_named_once_per_language():
    roundtable = SessionInfo(id=7, title="Mentoring", starts_at=at(14), ends_at=at(15), attendee_ids={1, 2, 3},
                             interpretation={"fr"})
    found = find_conflicts(program(roundtable, needs={1: frozenset({"ar"}), 2: frozenset({"es", "fr"}),
                                                      3: frozenset({"fr"})}))
    assert interpretation(found) == [((7,), ("ar",), (1,), "warning"), ((7,), ("es",), (2,), "warning")]
    message = next(c.message for c in found if c.key[-1] == ("ar",))
    assert message == "Mentoring offers no interpretation into Arabic, and Omar Farouk needs it."


def test_a_session_for_everyone_is_checked_against_everyone_and_one_that_is_not_asked_is_not():
    plenary = SessionInfo(id=1, title="Opening", starts_at=at(9), ends_at=at(10), everyone=True,
                          interpretation={"fr", "es"})
    dinner = SessionInfo(id=2, title="Dinner", starts_at=at(18), ends_at=at(20), everyone=True, interpretation=None)
    found = find_conflicts(program(plenary, dinner, needs={1: frozenset({"ar"}), 2: frozenset({"es"})}))
    assert interpretation(found) == [((1,), ("ar",), (1,), "warning")]


def test_nobody_needing_interpretation_leaves_no_warning():
    session = SessionInfo(id=1, title="Opening", starts_at=at(9), ends_at=at(10), everyone=True, interpretation=set())
    assert interpretation(find_conflicts(program(session, needs={}))) == []
