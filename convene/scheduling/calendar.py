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


def build_calendar(name: str, tz: ZoneInfo, events: Iterable[CalendarEvent]) -> bytes:
    """A VCALENDAR with one VEVENT per event, its times given with TZID and the zone's VTIMEZONE."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", tz.key)
    events = list(events)
    for item in events:
        event = icalendar.Event()
        event.add("uid", item.uid)
        event.add("summary", item.title)
        event.add("dtstart", item.starts_at.astimezone(tz))
        event.add("dtend", item.ends_at.astimezone(tz))
        event.add("dtstamp", item.stamp)
        event.add("last-modified", item.stamp)
        event.add("sequence", item.sequence)
        if item.location:
            event.add("location", item.location)
        if item.description:
            event.add("description", item.description)
        if item.url:
            event.add("url", item.url)
        if item.categories:
            event.add("categories", list(item.categories))
        calendar.add_component(event)
    if events:
        # The zone's rules around the events only: the whole 1970-2038 history is kilobytes of RDATEs.
        first = min(e.starts_at for e in events).astimezone(tz).date()
        last = max(e.ends_at for e in events).astimezone(tz).date()
        calendar.add_missing_timezones(first_date=date(first.year - 1, 1, 1), last_date=date(last.year + 2, 1, 1))
    return calendar.to_ical()
