"""Form pieces shared by the public and admin areas: the base forms, bounded fields, the person form, questions.

Every form derives from `ConveneForm` (or `ConveneSubform` for rows inside a form), which cleans text
as it binds each field: single-line fields lose control characters and line breaks, text areas keep
their line breaks only. Numbers and dates come from the bounded fields here, so a typed value the
database, the time-zone arithmetic or Python's datetime cannot hold gets a message beside the field.
"""
from __future__ import annotations

import wtforms
from flask import flash
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    Field,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
    TextAreaField,
    widgets,
)
from wtforms.fields.choices import SelectChoice
from flask_babel import lazy_gettext as _l
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional, Regexp, StopValidation

from convene.languages import INTERPRETATION_LANGUAGES, localized, localized_choices
from convene.models import ACCESSIBILITY_NEEDS, DIETARY_NEEDS, PERSON_FIELDS, Question, QuestionKind
from convene.text import multi_line, single_line

# What a PostgreSQL `integer` column holds; SQLite and Python hold more, so this is the bound that bites.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
# Dates people may type: far enough either way for any convening, near enough that converting
# between time zones, adding days or storing in PostgreSQL never overflows.
MIN_YEAR, MAX_YEAR = 2000, 2100
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]

PHONE = Regexp(r"^[0-9+().\-\s/x]{5,40}$", message=_l("Enter a phone number with digits, spaces and + ( ) - only."))


def choice_list(pairs) -> list[SelectChoice]:
    """(value, label) pairs as WTForms choices (tuples are deprecated since WTForms 3.3)."""
    return [SelectChoice(value, label) for value, label in pairs]


def text_filter(field_class: type):
    """The cleaning a field of this class gets: single-line text, multi-line text, or none."""
    if issubclass(field_class, TextAreaField):
        return multi_line
    if issubclass(field_class, StringField) and not issubclass(field_class, PasswordField):
        return single_line  # also email, phone, hidden and price fields; a non-text value passes through
    return None


class CleanTextMeta:
    """Form meta that adds the text cleaning to each field as the form binds it, so no field can forget it."""

    def bind_field(self, form, unbound_field, options):
        clean = text_filter(unbound_field.field_class)
        if clean is not None:
            options = {**options, "filters": (clean, *unbound_field.kwargs.get("filters", ()))}
        return super().bind_field(form, unbound_field, options)


class ConveneForm(FlaskForm):
    """The base of every form: CSRF from Flask-WTF, text cleaned as it comes in."""

    class Meta(CleanTextMeta):
        pass


class ConveneSubform(wtforms.Form):
    """The base of a row inside a form (a FormField): text cleaned as it comes in."""

    class Meta(CleanTextMeta):
        pass


class IntegerField(wtforms.IntegerField):
    """A whole number from `minimum` to `maximum` (by default what the database's integer holds)."""

    def __init__(self, label=None, validators=None, *, minimum: int = INT_MIN, maximum: int = INT_MAX,
                 range_message: str | None = None, too_large_message: str | None = None, **kwargs):
        kwargs.setdefault("invalid_value_message", _l("Enter a whole number."))
        super().__init__(label, validators, **kwargs)
        self.minimum, self.maximum = max(minimum, INT_MIN), min(maximum, INT_MAX)
        self.range_message = range_message or f"Enter a whole number from {self.minimum:,} to {self.maximum:,}."
        self.too_large_message = too_large_message or self.range_message

    def pre_validate(self, form):
        if self.data is not None and self.data < self.minimum:
            raise StopValidation(self.range_message)
        if self.data is not None and self.data > self.maximum:
            raise StopValidation(self.too_large_message)


class _YearBounded:
    """Refuse dates outside MIN_YEAR..MAX_YEAR beside the field, before anything computes with them."""

    def pre_validate(self, form):
        if self.data is not None and not MIN_YEAR <= self.data.year <= MAX_YEAR:
            raise StopValidation(_l("Enter a date between %(first)s and %(last)s.", first=MIN_YEAR, last=MAX_YEAR))


class DateField(_YearBounded, wtforms.DateField):
    """A date between MIN_YEAR and MAX_YEAR."""

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("invalid_value_message", _l("Enter a date, like 2027-06-01."))
        super().__init__(label, validators, **kwargs)


class DateTimeLocalField(_YearBounded, wtforms.DateTimeLocalField):
    """A wall-clock date and time between MIN_YEAR and MAX_YEAR; the first format is what browsers show."""

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("format", DATETIME_FORMATS)
        kwargs.setdefault("invalid_value_message", _l("Enter a date and time, like 2027-06-01T09:30."))
        super().__init__(label, validators, **kwargs)


class MultiCheckboxField(SelectMultipleField):
    """Checkboxes for a multiple choice, usable without JavaScript."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class EmptyForm(ConveneForm):
    """A POST-only button that still carries the CSRF token."""


def required(message):
    return DataRequired(message=message)


class PersonForm(ConveneForm):
    """The details every registration asks for."""

    given_name = StringField(_l("Given name"), [required(_l("Enter your given name.")), Length(max=100)])
    family_name = StringField(_l("Family name"), [required(_l("Enter your family name.")), Length(max=100)])
    badge_name = StringField(
        _l("Name on badge"), [Optional(), Length(max=100)],
        description=_l("Leave empty to use your given name."),
    )
    pronouns = StringField(_l("Pronouns"), [Optional(), Length(max=40)],
                           description=_l("For example: she/her, they/them."))
    email = EmailField(
        _l("Email"), [DataRequired(message=_l("Enter your email address.")),
                      Email(message=_l("Enter an email address like name@example.org.")), Length(max=254)],
    )
    phone = TelField(_l("Phone"), [Optional(), PHONE])
    organization = StringField(_l("Organization"), [required(_l("Enter your organization.")), Length(max=200)])
    job_title = StringField(_l("Job title"), [Optional(), Length(max=200)])
    dietary_needs = MultiCheckboxField(_l("Dietary needs"), choices=choice_list(
        (code, _l(label)) for code, label in DIETARY_NEEDS.items()), validate_choice=True)
    dietary_notes = StringField(_l("Other dietary needs or allergies"), [Optional(), Length(max=500)])
    accessibility_needs = MultiCheckboxField(
        _l("Accessibility needs"), choices=choice_list((code, _l(label)) for code, label in ACCESSIBILITY_NEEDS.items()),
        description=_l("We use this to plan rooms and site visits; only organizers see it."),
    )
    accessibility_notes = StringField(_l("Anything else we should know to make you welcome"),
                                      [Optional(), Length(max=500)])

    def person_data(self) -> dict:
        return {name: getattr(self, name).data for name in PERSON_FIELDS}


def question_field(question: Question, *, require_answer: bool = True, in_reader_language: bool = True) -> Field:
    """The WTForms field that asks one organizer-defined question (an organizer's edit may leave it empty).

    Attendees read the question in their language; the stored value of a choice is always the
    default-language choice, so answers stay comparable whatever language people registered in.
    """
    kind = question.kind_enum
    lang = None if in_reader_language else question.convening.default_language
    label, description = localized(question, "label", lang), localized(question, "help_text", lang) or None
    required = question.required and require_answer
    need = [InputRequired(message=_l("This question needs an answer."))] if required else [Optional()]
    if kind == QuestionKind.SHORT_TEXT:
        return StringField(label, need + [Length(max=500)], description=description)
    if kind == QuestionKind.LONG_TEXT:
        return TextAreaField(label, need + [Length(max=5000)], description=description)
    choices = choice_list(localized_choices(question, lang))
    if kind == QuestionKind.SINGLE_CHOICE:
        return RadioField(label, need, choices=choices, description=description, validate_choice=True)
    if kind == QuestionKind.MULTIPLE_CHOICE:
        validators = [DataRequired(message=_l("Choose at least one."))] if required else [Optional()]
        return MultiCheckboxField(label, validators, choices=choices, description=description)
    return RadioField(label, need, choices=choice_list([("yes", _l("Yes")), ("no", _l("No"))]), description=description)


def add_question_fields(form_class: type[FlaskForm], questions: list[Question], *,
                        require_answers: bool = True, in_reader_language: bool = True) -> type[FlaskForm]:
    """A subclass of form_class with one field per question, in the organizer's order."""
    fields = {q.field_name: question_field(q, require_answer=require_answers, in_reader_language=in_reader_language)
              for q in questions}
    return type(form_class.__name__, (form_class,), fields)


def answers_from(form: FlaskForm, questions: list[Question]) -> dict[int, object]:
    """Answers keyed by question id, typed by kind (yes/no becomes a bool)."""
    answers: dict[int, object] = {}
    for question in questions:
        value = getattr(form, question.field_name).data
        if question.kind == QuestionKind.YES_NO:
            value = {"yes": True, "no": False}.get(value)
        elif isinstance(value, str):
            value = value.strip()
        answers[question.id] = value
    return answers


def answers_to_form_data(registration, questions: list[Question]) -> dict[str, object]:
    """The inverse of answers_from, to fill an edit form."""
    data = {}
    for question in questions:
        value = registration.answer_for(question.id)
        if question.kind == QuestionKind.YES_NO and isinstance(value, bool):
            value = "yes" if value else "no"
        data[question.field_name] = value
    return data


ORDINALS = ("1st", "2nd", "3rd", "4th", "5th", "6th", "7th", "8th", "9th", "10th")
# The labels of the ranks, written whole so each language can say "first choice" its own way.
RANK_LABELS = (_l("1st choice"), _l("2nd choice"), _l("3rd choice"), _l("4th choice"), _l("5th choice"),
               _l("6th choice"), _l("7th choice"), _l("8th choice"), _l("9th choice"), _l("10th choice"))


def rank_field_names(hosts) -> list[str]:
    return [f"rank_{n}" for n in range(1, min(len(hosts), len(ORDINALS)) + 1)]


def rank_select(label: str, options) -> SelectField:
    """One rank of a ranking: empty or missing is "no preference", anything else must be one of the options.

    Not `Optional()`: it also passes a value of only spaces or control characters, which then reaches int().
    """
    return SelectField(label, choices=options, default="", validate_choice=True,
                       invalid_choice_message=_l("Choose one of the options."))


def add_ranking_fields(form_class: type[FlaskForm], hosts, *, in_reader_language: bool = True) -> type[FlaskForm]:
    """One select per rank ("1st choice", "2nd choice"...), so ranking works without JavaScript."""
    lang = None if in_reader_language or not hosts else hosts[0].convening.default_language
    options = choice_list([("", _l("— no preference —"))] + [(str(h.id), localized(h, "name", lang)) for h in hosts])
    fields = {name: rank_select(RANK_LABELS[n], options) for n, name in enumerate(rank_field_names(hosts))}

    def validate(self, extra_validators=None):
        ok = super(form, self).validate(extra_validators)
        seen: set[str] = set()
        for name in rank_field_names(hosts):
            value = getattr(self, name).data
            if value and value in seen:
                getattr(self, name).errors.append(_l("You chose this host already; pick each host once."))
                ok = False
            seen.add(value)
        return ok

    form = type(form_class.__name__, (form_class,), {**fields, "validate": validate})
    return form


def ranking_from(form: FlaskForm, hosts) -> list[int]:
    """Chosen host ids, best first, skipping "no preference"."""
    return [int(v) for name in rank_field_names(hosts) if (v := getattr(form, name).data)]


def ranking_to_form_data(host_ids: list[int], hosts) -> dict[str, str]:
    return {name: str(host_id) for name, host_id in zip(rank_field_names(hosts), host_ids)}


def ticket_select(label=_l("Ticket")) -> SelectField:
    return SelectField(label, coerce=int, validators=[InputRequired(message=_l("Choose a ticket."))])


def format_answer(value) -> str:
    """An answer as one line of text (CSV, lists)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def show_error(form, error) -> None:
    """Put each problem of a refused action (a ConveneError) beside its field; flash those no field fits."""
    for item in error.details.get("problems", [error]):
        target = getattr(form, item.field, None) if item.field else None
        if target is not None and hasattr(target, "errors"):
            target.errors = [*target.errors, item.message]
        else:
            flash(item.message, "error")


def add_interpretation_field(form_class: type[FlaskForm], convening) -> type[FlaskForm]:
    """Ask which of the convening's interpretation languages the person needs (nothing when it offers none)."""
    offered = [code for code in convening.interpretation_languages or [] if code in INTERPRETATION_LANGUAGES]
    if not offered:
        return form_class
    from flask_babel import lazy_gettext as _l

    field = MultiCheckboxField(
        _l("Interpretation"), choices=choice_list((code, INTERPRETATION_LANGUAGES[code]) for code in offered),
        description=_l("Tick each language you need sessions interpreted into. Sign-language interpretation "
                       "is among the accessibility needs above."))
    return type(form_class.__name__, (form_class,), {"interpretation_needs": field})


def language_data(form) -> dict:
    """What the form says about languages: the person's language and the interpretation they need, when it asks."""
    data = {}
    if getattr(form, "language", None) is not None and hasattr(form.language, "data"):
        data["language"] = form.language.data
    field = getattr(form, "interpretation_needs", None)
    if field is not None:
        data["interpretation_needs"] = list(field.data or [])
    return data
