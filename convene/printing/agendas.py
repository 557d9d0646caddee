"""The program book and personal agendas as plain data (templates: templates/printing/program.html, agendas.html)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProgramEntry:
    """One session in the program book."""

    time: str  # local, e.g. "09:00–10:30"
    title: str
    kind: str = ""
    where: str = ""
    presenters: tuple[str, ...] = ()  # "Name (Organization)"
    description: str = ""
    note: str = ""  # e.g. "Sign-up required"


@dataclass(frozen=True)
class ProgramDay:
    anchor: str  # a fragment id for the table of contents
    title: str
    entries: tuple[ProgramEntry, ...]


@dataclass(frozen=True)
class VisitScheduleEntry:
    """One site visit in the program book's site-visit schedule."""

    slot: str
    when: str
    host: str
    address: str = ""
    meeting_point: str = ""
    departs: str = ""
    accessible: bool = True


@dataclass(frozen=True)
class ProgramBook:
    convening: str
    dates: str
    venue: str
    description: str
    timezone: str
    days: tuple[ProgramDay, ...]
    visits: tuple[VisitScheduleEntry, ...] = ()
    draft: bool = False
    lang: str = "en"  # the convening's default language: one book serves everyone


@dataclass(frozen=True)
class AgendaEntry:
    time: str
    title: str
    where: str = ""
    tag: str = ""  # "Presenting", "Signed up", "Your group"...
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AgendaDay:
    title: str
    entries: tuple[AgendaEntry, ...]


@dataclass(frozen=True)
class PersonalAgenda:
    """One attendee's agenda: where they need to be, day by day."""

    convening: str
    dates: str
    name: str
    organization: str = ""
    reference: str = ""
    timezone: str = ""
    days: tuple[AgendaDay, ...] = ()
    # The attendee's language, and the agenda's fixed sentences already in it (a batch mixes languages).
    lang: str = "en"
    nothing_text: str = ("Nothing is on this agenda yet: the program or the site-visit groups have not been "
                         "published.")
    zone_text: str = ""
