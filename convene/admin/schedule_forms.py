"""Forms of the program editor: sessions, moves, rooms, presenters, blocks and conflict rules."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, StopValidation

from convene.forms import ConveneForm, DateTimeLocalField, IntegerField, MultiCheckboxField, choice_list
from convene.languages import INTERPRETATION_LANGUAGES
from convene.models import SESSION_KIND_LABELS, Convening, Presenter, ProgramSession, Room
from convene.scheduling import CONFLICT_KINDS
from convene.services.convenings import utc_to_local
from convene.services.schedule import BLOCK_FIELDS, PRESENTER_FIELDS, ROOM_FIELDS, SESSION_FIELDS

COUNT = _l("Enter a whole number.")
NO_ROOM = _l("— no room (off-site, or to be decided) —")


def optional_int(value):
    """Coerce a select's value to an int, '' and None to None."""
    if value in (None, "", "None"):
        return None
    return int(value)


class Required:
    """Like InputRequired, but the only message shown (a bad date would otherwise add a second one)."""

    def __init__(self, message: str):
        self.message = message
        self.field_flags = {"required": True}

    def __call__(self, form, field):
        if not field.raw_data or not str(field.raw_data[0]).strip():
            field.errors[:] = []
            raise StopValidation(self.message)


def local_datetime(label: str, message: str) -> DateTimeLocalField:
    return DateTimeLocalField(label, [Required(message)],
                              invalid_value_message=_l("Enter a date and time, like 2025-06-10T09:30."))


MAX_CAPACITY = 100_000
MAX_CAPACITY_TEXT = f"{MAX_CAPACITY:,}"


def capacity_field(label: str, description: str) -> IntegerField:
    return IntegerField(
        label, [Optional()], minimum=0, maximum=MAX_CAPACITY,
        range_message=_l("Capacity cannot be negative; leave it empty for no limit."),
        too_large_message=_l("Enter at most %(max)s.", max=MAX_CAPACITY_TEXT), description=description,
        invalid_value_message=COUNT,
    )


def optional_select(label: str, description: str | None = None) -> SelectField:
    return SelectField(label, coerce=optional_int, validate_choice=True, description=description,
                       invalid_choice_message=_l("Choose one of the options."))


def room_choices(rooms: list[Room]):
    return choice_list([("", NO_ROOM)] + [(r.id, _room_label(r)) for r in rooms])


def _room_label(room: Room) -> str:
    label = room.name if room.capacity is None else _("%(name)s (%(seats)s seats)", name=room.name,
                                                      seats=room.capacity)
    return label if room.accessible else _("%(room)s — not step-free", room=label)


class SessionForm(ConveneForm):
    """A session; its start and end are wall-clock times in the convening's zone."""

    title = StringField(_l("Title"), [DataRequired(message=_l("Enter a title.")), Length(max=200)])
    kind = SelectField(_l("Kind"), choices=choice_list((k.value, label) for k, label in SESSION_KIND_LABELS.items()),
                       default="plenary", validate_choice=True)
    starts_at = local_datetime(_l("Starts"), _l("Enter when the session starts."))
    ends_at = local_datetime(_l("Ends"), _l("Enter when the session ends."))
    room_id = optional_select(_l("Room"))
    location = StringField(_l("Location or meeting point"), [Optional(), Length(max=300)],
                           description=_l("For off-site sessions, or where to meet."))
    signup_required = BooleanField(_l("Attendees sign up (seats are limited)"))
    capacity = capacity_field(_l("Sign-up capacity"), _l("Leave empty to use the room's capacity."))
    block_id = optional_select(_l("Allocation block"), _l("Sessions in a block are ranked by attendees and allocated "
                                                         "by the organizers; they always need sign-up."))
    visit_slot_id = optional_select(_l("Site-visit slot"), _l("For site-visit blocks: the slot whose groups "
                                                             "attendees see on their agenda."))
    presenter_ids = MultiCheckboxField(_l("Presenters and facilitators"), coerce=int, validate_choice=True)
    track = StringField(_l("Topic or track"), [Optional(), Length(max=120)])
    description = TextAreaField(_l("Description"), [Optional(), Length(max=20000)])
    interpretation = MultiCheckboxField(
        _l("Interpretation offered"), validate_choice=True,
        description=_l("The conflict finder warns when people attending need a language not ticked here."))

    def fill_choices(self, rooms: list[Room], presenters: list[Presenter], blocks, slots, convening: Convening):
        self.room_id.choices = room_choices(rooms)
        offered = list(dict.fromkeys([*(convening.interpretation_languages or []), *(self.interpretation.data or [])]))
        self.interpretation.choices = choice_list(
            (code, INTERPRETATION_LANGUAGES[code]) for code in offered if code in INTERPRETATION_LANGUAGES)
        self.block_id.choices = choice_list([("", _("— none —"))] + [(b.id, b.name) for b in blocks])
        self.visit_slot_id.choices = choice_list([("", _("— none —"))] + [
            (s.id, f"{s.label} ({convening.local(s.starts_at):%a %d %b %H:%M})") for s in slots])
        self.presenter_ids.choices = choice_list(
            (p.id, p.display_name + (f" — {p.display_organization}" if p.display_organization else ""))
            for p in presenters)
        return self

    @classmethod
    def for_session(cls, session: ProgramSession, convening: Convening, **overrides) -> SessionForm:
        data = {key: getattr(session, key) for key in SESSION_FIELDS if key != "presenter_ids"}
        data["presenter_ids"] = [link.presenter_id for link in session.presenter_links]
        for key in ("starts_at", "ends_at"):
            data[key] = utc_to_local(data[key], convening.tz)
        data.update(overrides)
        return cls(data=data)

    def session_data(self) -> dict:
        return {key: getattr(self, key).data for key in SESSION_FIELDS}


class MoveForm(ConveneForm):
    """A new start (the length stays) and room."""

    starts_at = local_datetime(_l("New start"), _l("Enter when the session starts."))
    room_id = optional_select(_l("Room"))


class RoomForm(ConveneForm):
    name = StringField(_l("Name"), [DataRequired(message=_l("Enter a name.")), Length(max=120)])
    capacity = capacity_field(_l("Capacity"), _l("Seats in the room; leave empty if it does not matter."))
    accessible = BooleanField(_l("Step-free (wheelchair) access"), default=True)
    floor = StringField(_l("Floor"), [Optional(), Length(max=80)])
    notes = StringField(_l("Notes"), [Optional(), Length(max=500)],
                        description=_l("Set-up, equipment, how to find it."))
    position = IntegerField(_l("Position in the grid"), [Optional()], minimum=-9999, maximum=9999,
                            range_message=_l("Enter a number from -9999 to 9999."),
                            invalid_value_message=COUNT, description=_l("Lower numbers come first."))

    @classmethod
    def for_room(cls, room: Room) -> RoomForm:
        return cls(data={key: getattr(room, key) for key in ROOM_FIELDS})

    def room_data(self) -> dict:
        return {key: getattr(self, key).data for key in ROOM_FIELDS}


class PresenterForm(ConveneForm):
    registration_id = optional_select(_l("Registered person"),
                                      _l("Link a registration, or leave empty for an external guest."))
    name = StringField(_l("Name"), [Optional(), Length(max=200)],
                       description=_l("Needed for an external guest; a linked person's name is used otherwise."))
    organization = StringField(_l("Organization"), [Optional(), Length(max=200)])
    bio = TextAreaField(_l("Short bio"),
                        [Optional(), Length(max=1000, message=_l("Keep the bio under 1000 characters."))])

    def fill_choices(self, registrations: list[tuple[int, str]]):
        self.registration_id.choices = choice_list([("", _("— external guest —"))] + registrations)
        return self

    @classmethod
    def for_presenter(cls, presenter: Presenter) -> PresenterForm:
        return cls(data={key: getattr(presenter, key) for key in PRESENTER_FIELDS})

    def presenter_data(self) -> dict:
        return {key: getattr(self, key).data for key in PRESENTER_FIELDS}


class BlockForm(ConveneForm):
    name = StringField(_l("Name"), [DataRequired(message=_l("Enter a name.")), Length(max=160)],
                       description=_l("For example: Working groups (day 3)."))
    preferences_open = BooleanField(_l("Attendees may rank the sessions now"))

    def block_data(self) -> dict:
        return {key: getattr(self, key).data for key in BLOCK_FIELDS}


class AllocateForm(ConveneForm):
    include_unranked = BooleanField(_l("Also place confirmed delegates, TA providers and speakers who ranked nothing"))


def rules_form(rules: dict[str, str], formdata=True):
    """One blocking/warning choice per conflict kind."""
    options = choice_list([("blocking", _("Blocking: refuse the change")), ("warning", _("Warning: save and show it"))])
    fields = {
        f"rule_{kind}": RadioField(label, choices=options, default=rules[kind], validate_choice=True)
        for kind, (label, _) in CONFLICT_KINDS.items()
    }
    form_class = type("ConflictRulesForm", (ConveneForm,), fields)
    return form_class() if formdata else form_class(data={f"rule_{k}": v for k, v in rules.items()})


def rules_from(form) -> dict[str, str]:
    return {kind: getattr(form, f"rule_{kind}").data for kind in CONFLICT_KINDS}
