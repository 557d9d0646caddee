"""Site-visit rosters and sign-in sheets as plain data (the template is templates/printing/rosters.html)."""
from __future__ import annotations

from dataclasses import dataclass

from convene.printing.fit import is_rtl


@dataclass(frozen=True)
class RosterPerson:
    """One visitor on a roster."""

    name: str
    organization: str = ""
    delegation: str = ""

    @property
    def rtl(self) -> bool:
        return is_rtl(self.name)


@dataclass(frozen=True)
class RosterData:
    """One site visit's roster: where and when, who, and room to sign."""

    convening: str
    host: str
    host_address: str
    slot_label: str
    when: str  # local date and time range, with the time zone
    meeting_point: str = ""
    departs: str = ""
    transport_notes: str = ""
    host_contact: str = ""
    capacity: int = 0
    people: tuple[RosterPerson, ...] = ()
    draft: bool = False  # the plan was not published yet: people may still move
    blank_rows: int = 3  # for walk-ins and last-minute swaps
