"""iCalendar files from plain events: times in the convening's zone with a VTIMEZONE, stable UIDs.

Calendar apps replace an entry when a later file carries the same UID with a higher SEQUENCE (or a
newer DTSTAMP/LAST-MODIFIED), so UIDs are derived from database ids and never from titles or times.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import icalendar

from convene.text import multi_line, single_line

PRODID = "-//Convene//Program//EN"


@dataclass(frozen=True)
class CalendarEvent:
    uid: str
    title: str
    starts_at: datetime
    ends_at: datetime
    stamp: datetime  # when this information last changed
    location: str = ""
    description: str = ""
    url: str = ""
    sequence: int = 0
    categories: tuple[str, ...] = ()


def event_location(*, room: str = "", off_site: str = "", venue: str = "", venue_address: str = "") -> str:
    """A session's LOCATION: 'Room, Venue, address' in a room, the place alone when off-site, else the venue.

    Phones hand LOCATION to a maps app as one search: an off-site place followed by the main
    venue's address sends people to the venue.
    """
    room, off_site = single_line(room or "").strip(), single_line(off_site or "").strip()
    venue_parts = [single_line(part or "").strip() for part in (venue, venue_address)]
    if not room and off_site:
        return off_site
    return ", ".join(part for part in (room, *venue_parts) if part)


def build_calendar(name: str, tz: ZoneInfo, events: Iterable[CalendarEvent]) -> bytes:
    """A VCALENDAR with one VEVENT per event, its times given with TZID and the zone's VTIMEZONE.

    Text is cleaned here whatever the database holds: icalendar escapes line breaks in known text
    properties but writes X-WR-CALNAME raw (a line break in a person's name would end the line and
    fail its own check), and RFC 5545 allows no control character but tab in any value.
    """
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", single_line(name))
    calendar.add("x-wr-timezone", tz.key)
    events = list(events)
    for item in events:
        event = icalendar.Event()
        event.add("uid", single_line(item.uid))
        event.add("summary", single_line(item.title))
        event.add("dtstart", item.starts_at.astimezone(tz))
        event.add("dtend", item.ends_at.astimezone(tz))
        event.add("dtstamp", item.stamp)
        event.add("last-modified", item.stamp)
        event.add("sequence", item.sequence)
        if item.location:
            event.add("location", single_line(item.location))
        if item.description:
            event.add("description", multi_line(item.description))
        if item.url:
            event.add("url", single_line(item.url))
        if item.categories:
            event.add("categories", [single_line(c) for c in item.categories])
        calendar.add_component(event)
    if events:
        # The zone's rules around the events only: the whole 1970-2038 history is kilobytes of RDATEs.
        first = min(e.starts_at for e in events).astimezone(tz).date()
        last = max(e.ends_at for e in events).astimezone(tz).date()
        calendar.add_missing_timezones(first_date=date(first.year - 1, 1, 1), last_date=date(last.year + 2, 1, 1))
    return calendar.to_ical()
