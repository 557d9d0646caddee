"""Forms of the site-visit tools: settings, hosts, slots, the visit grid, the assigner, moves."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, EmailField, StringField, SubmitField, TelField, TextAreaField
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional
from wtforms.widgets import HiddenInput

from convene.errors import MESSAGES
from convene.forms import PHONE, ConveneForm, DateTimeLocalField, IntegerField
from convene.models import Convening, HostOrganization, SiteVisit, VisitSlot
from convene.services.convenings import utc_to_local
from convene.services.visits import (
    HOST_FIELDS,
    MAX_CAPACITY,
    MAX_VISITS_PER_PERSON,
    SITE_VISIT_FIELDS,
    SLOT_FIELDS,
    grid_cell,
)

MAX_CAPACITY_TEXT = f"{MAX_CAPACITY:,}"
LOCAL_TIME_HINT = _l("In the convening's own time zone.")
WHOLE_NUMBER = _l("Enter a whole number.")


CAPACITY_RANGE = dict(minimum=0, maximum=MAX_CAPACITY,
                      range_message=_l("Enter a capacity from 0 to %(max)s.", max=MAX_CAPACITY_TEXT))


def _local_datetime(label: str, *validators) -> DateTimeLocalField:
    return DateTimeLocalField(label, list(validators) or [Optional()], description=LOCAL_TIME_HINT,
                              invalid_value_message=_l("Enter a date and time."))


class VisitSettingsForm(ConveneForm):
    """How many visits each person makes, and whether attendees may rank hosts now."""

    visits_per_person = IntegerField(
        _l("Visits per person"),
        [InputRequired(message=_l("Enter how many visits each person makes."))],
        minimum=1, maximum=MAX_VISITS_PER_PERSON, range_message=MESSAGES["visits_per_person_invalid"],
        invalid_value_message=WHOLE_NUMBER,
        description=_l("Each person visits this many different hosts, one per slot."),
    )
    preferences_open = BooleanField(_l("Preferences open: attendees may rank the hosts on their registration page"))

    @classmethod
    def for_convening(cls, convening: Convening) -> VisitSettingsForm:
        return cls(data={"visits_per_person": convening.visits_per_person,
                         "preferences_open": convening.visit_preferences_open})


class HostForm(ConveneForm):
    """A host organization that receives visitors."""

    name = StringField(_l("Name"), [DataRequired(message=_l("Enter a name.")), Length(max=200)])
    address = StringField(_l("Address"), [Optional(), Length(max=300)])
    description = TextAreaField(_l("Description"), [Optional(), Length(max=5000)],
                                description=_l("Shown to attendees when they rank the hosts."))
    accessible = BooleanField(_l("Step-free access (people who need it may be placed here)"), default=True)
    contact_name = StringField(_l("Contact name"), [Optional(), Length(max=160)])
    contact_email = EmailField(
        _l("Contact email"), [Optional(), Email(message=_l("Enter an email address like name@example.org.")),
                              Length(max=254)]
    )
    contact_phone = TelField(_l("Contact phone"), [Optional(), PHONE])

    @classmethod
    def for_host(cls, host: HostOrganization) -> HostForm:
        return cls(data={key: getattr(host, key) for key in HOST_FIELDS})

    def host_data(self) -> dict:
        return {key: getattr(self, key).data for key in HOST_FIELDS}


class SlotForm(ConveneForm):
    """A block of time in which every group is at one host."""

    label = StringField(_l("Label"), [DataRequired(message=MESSAGES["slot_label_required"]), Length(max=120)],
                        description=_l("For example “Tuesday morning”; attendees see it."))
    starts_at = _local_datetime(_l("Starts"), InputRequired(message=_l("Enter when the slot starts.")))
    ends_at = _local_datetime(_l("Ends"), InputRequired(message=_l("Enter when the slot ends.")))

    @classmethod
    def for_slot(cls, slot: VisitSlot, convening: Convening) -> SlotForm:
        return cls(data={"label": slot.label, "starts_at": utc_to_local(slot.starts_at, convening.tz),
                         "ends_at": utc_to_local(slot.ends_at, convening.tz)})

    def slot_data(self) -> dict:
        return {key: getattr(self, key).data for key in SLOT_FIELDS}


class SiteVisitForm(ConveneForm):
    """One host in one slot: its capacity and the practical details attendees are sent."""

    capacity = IntegerField(_l("Capacity"), [InputRequired(message=MESSAGES["capacity_required"])], **CAPACITY_RANGE,
                            invalid_value_message=WHOLE_NUMBER)
    meeting_point = StringField(_l("Meeting point"), [Optional(), Length(max=300)],
                                description=_l("Where the group gathers, for example “Hotel lobby, north doors”."))
    departs_at = _local_datetime(_l("Departure"))
    transport_notes = TextAreaField(_l("Transport notes"), [Optional(), Length(max=500)])

    @classmethod
    def for_visit(cls, visit: SiteVisit, convening: Convening) -> SiteVisitForm:
        data = {key: getattr(visit, key) for key in SITE_VISIT_FIELDS}
        data["departs_at"] = utc_to_local(visit.departs_at, convening.tz)
        return cls(data=data)

    def visit_data(self) -> dict:
        return {key: getattr(self, key).data for key in SITE_VISIT_FIELDS}


class VisitGridForm(ConveneForm):
    """Base of the hosts × slots capacity grid; `visit_grid_form` adds one field per cell."""

    confirm_removals = BooleanField(_l("Yes, remove the emptied visits even though people are placed in them"))
    cells: tuple[tuple[int, int], ...] = ()

    def capacities(self) -> dict[tuple[int, int], int | None]:
        return {(host_id, slot_id): getattr(self, grid_cell(host_id, slot_id)).data for host_id, slot_id in self.cells}


def visit_grid_form(hosts, slots) -> type[VisitGridForm]:
    """A grid form for these hosts and slots: an empty cell means no visit."""
    fields = {
        grid_cell(h.id, s.id): IntegerField(
            f"{h.name}, {s.label}",
            [Optional()], minimum=0, maximum=MAX_CAPACITY, range_message=MESSAGES["visit_capacity_negative"],
            too_large_message=MESSAGES["visit_capacity_too_large"], invalid_value_message=WHOLE_NUMBER,
        )
        for h in hosts for s in slots
    }
    cells = tuple((h.id, s.id) for h in hosts for s in slots)
    return type("VisitGridForm", (VisitGridForm,), {**fields, "cells": cells})


def grid_data(visits) -> dict[str, int]:
    return {grid_cell(v.host_id, v.slot_id): v.capacity for v in visits}


class AssignForm(ConveneForm):
    """Run the assigner, as a preview or for real."""

    keep_published = BooleanField(_l("Keep the published plan: move as few people as possible"))
    mix_limit = IntegerField(
        _l("Mix limit"), [Optional()], minimum=1, maximum=MAX_CAPACITY,
        range_message=_l("Enter 1 or more, or leave it empty."),
        too_large_message=_l("Enter at most %(max)s.", max=MAX_CAPACITY_TEXT),
        invalid_value_message=WHOLE_NUMBER,
        description=_l("At most this many people of one delegation in one visit. Soft: exceeded only when there "
                       "is no other way. Leave empty for no limit."),
    )
    preview = SubmitField(_l("Preview (dry run)"))
    save = SubmitField(_l("Run and save"))


class MoveForm(ConveneForm):
    """Put one person in one visit of a slot (or none) by hand."""

    registration_id = IntegerField(widget=HiddenInput(), validators=[InputRequired()])
    slot_id = IntegerField(widget=HiddenInput(), validators=[InputRequired()])
    site_visit_id = IntegerField(_l("Visit"), [Optional()])  # empty: no visit in this slot
    locked = BooleanField(_l("Lock"), default=True)


class UnlockForm(ConveneForm):
    """Let the assigner move a person in a slot again."""

    registration_id = IntegerField(widget=HiddenInput(), validators=[InputRequired()])
    slot_id = IntegerField(widget=HiddenInput(), validators=[InputRequired()])
