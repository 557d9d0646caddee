"""Form pieces shared by the public and admin areas: the person form and organizer questions."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    Field,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
    TextAreaField,
    widgets,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional, Regexp

from convene.models import ACCESSIBILITY_NEEDS, DIETARY_NEEDS, PERSON_FIELDS, Question, QuestionKind

PHONE = Regexp(r"^[0-9+().\-\s/x]{5,40}$", message="Enter a phone number with digits, spaces and + ( ) - only.")


def choice_list(pairs) -> list[SelectChoice]:
    """(value, label) pairs as WTForms choices (tuples are deprecated since WTForms 3.3)."""
    return [SelectChoice(value, label) for value, label in pairs]


class MultiCheckboxField(SelectMultipleField):
    """Checkboxes for a multiple choice, usable without JavaScript."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class EmptyForm(FlaskForm):
    """A POST-only button that still carries the CSRF token."""


def required(label: str):
    return DataRequired(message=f"Enter your {label}.")


class PersonForm(FlaskForm):
    """The details every registration asks for."""

    given_name = StringField("Given name", [required("given name"), Length(max=100)])
    family_name = StringField("Family name", [required("family name"), Length(max=100)])
    badge_name = StringField(
        "Name on badge", [Optional(), Length(max=100)],
        description="Leave empty to use your given name.",
    )
    pronouns = StringField("Pronouns", [Optional(), Length(max=40)], description="For example: she/her, they/them.")
    email = EmailField(
        "Email", [DataRequired(message="Enter your email address."),
                  Email(message="Enter an email address like name@example.org."), Length(max=254)],
    )
    phone = TelField("Phone", [Optional(), PHONE])
    organization = StringField("Organization", [required("organization"), Length(max=200)])
    job_title = StringField("Job title", [Optional(), Length(max=200)])
    dietary_needs = MultiCheckboxField("Dietary needs", choices=choice_list(DIETARY_NEEDS.items()), validate_choice=True)
    dietary_notes = StringField("Other dietary needs or allergies", [Optional(), Length(max=500)])
    accessibility_needs = MultiCheckboxField(
        "Accessibility needs", choices=choice_list(ACCESSIBILITY_NEEDS.items()),
        description="We use this to plan rooms and site visits; only organizers see it.",
    )
    accessibility_notes = StringField("Anything else we should know to make you welcome", [Optional(), Length(max=500)])

    def person_data(self) -> dict:
        return {name: getattr(self, name).data for name in PERSON_FIELDS}


def question_field(question: Question) -> Field:
    """The WTForms field that asks one organizer-defined question."""
    kind = question.kind_enum
    label, description = question.label, question.help_text or None
    need = [InputRequired(message="This question needs an answer.")] if question.required else [Optional()]
    if kind == QuestionKind.SHORT_TEXT:
        return StringField(label, need + [Length(max=500)], description=description)
    if kind == QuestionKind.LONG_TEXT:
        return TextAreaField(label, need + [Length(max=5000)], description=description)
    choices = choice_list((c, c) for c in question.choices)
    if kind == QuestionKind.SINGLE_CHOICE:
        return RadioField(label, need, choices=choices, description=description, validate_choice=True)
    if kind == QuestionKind.MULTIPLE_CHOICE:
        validators = [DataRequired(message="Choose at least one.")] if question.required else [Optional()]
        return MultiCheckboxField(label, validators, choices=choices, description=description)
    return RadioField(label, need, choices=choice_list([("yes", "Yes"), ("no", "No")]), description=description)


def add_question_fields(form_class: type[FlaskForm], questions: list[Question]) -> type[FlaskForm]:
    """A subclass of form_class with one field per question, in the organizer's order."""
    fields = {q.field_name: question_field(q) for q in questions}
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


def rank_field_names(hosts) -> list[str]:
    return [f"rank_{n}" for n in range(1, min(len(hosts), len(ORDINALS)) + 1)]


def add_ranking_fields(form_class: type[FlaskForm], hosts) -> type[FlaskForm]:
    """One select per rank ("1st choice", "2nd choice"...), so ranking works without JavaScript."""
    options = choice_list([("", "— no preference —")] + [(str(h.id), h.name) for h in hosts])
    fields = {
        name: SelectField(f"{ORDINALS[n]} choice", choices=options, validators=[Optional()], validate_choice=True)
        for n, name in enumerate(rank_field_names(hosts))
    }

    def validate(self, extra_validators=None):
        ok = super(form, self).validate(extra_validators)
        seen: set[str] = set()
        for name in rank_field_names(hosts):
            value = getattr(self, name).data
            if value and value in seen:
                getattr(self, name).errors.append("You chose this host already; pick each host once.")
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


def ticket_select(label: str = "Ticket") -> SelectField:
    return SelectField(label, coerce=int, validators=[InputRequired(message="Choose a ticket.")])


def format_answer(value) -> str:
    """An answer as one line of text (CSV, lists)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)
