"""The calendar writer's LOCATION: a room at the venue, an off-site place alone, or the venue."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import icalendar

from convene.scheduling.calendar import CalendarEvent, build_calendar, event_location

VENUE = {"venue": "Marriott Syracuse Downtown", "venue_address": "100 E Onondaga St"}
AT = datetime(2027, 6, 8, 14, tzinfo=UTC)


def location_in_file(location: str) -> str:
    event = CalendarEvent(uid="session-1@x.convene", title="Tour", starts_at=AT, ends_at=AT.replace(hour=15),
                          stamp=AT, location=location)
    body = build_calendar("Convening", ZoneInfo("America/New_York"), [event])
    [vevent] = icalendar.Calendar.from_ical(body).walk("VEVENT")
    return str(vevent["LOCATION"])


def test_an_off_site_session_gets_its_own_place_without_the_venue():
    where = event_location(off_site="Syracuse City Hall, 233 E Washington St", **VENUE)
    assert location_in_file(where) == "Syracuse City Hall, 233 E Washington St"


def test_a_session_in_a_room_gets_room_venue_and_address():
    where = event_location(room="Salon A", **VENUE)
    assert location_in_file(where) == "Salon A, Marriott Syracuse Downtown, 100 E Onondaga St"
    # A room wins over a meeting note kept in the location field.
    assert event_location(room="Salon A", off_site="Meet at the desk", **VENUE).startswith("Salon A, Marriott")


def test_a_session_with_neither_gets_the_venue_and_control_characters_never_reach_the_file():
    assert location_in_file(event_location(**VENUE)) == "Marriott Syracuse Downtown, 100 E Onondaga St"
    assert location_in_file(event_location(off_site="City Hall\r\nBEGIN:VEVENT\x00", **VENUE)) == \
        "City Hall BEGIN:VEVENT"
    assert event_location() == ""
