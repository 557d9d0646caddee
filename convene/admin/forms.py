"""Forms of the back office."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, EqualTo, InputRequired, Length, Optional

from convene.errors import MESSAGES, ConveneError
from convene.forms import ConveneForm, DateField, DateTimeLocalField, IntegerField, MultiCheckboxField, choice_list
from convene.languages import INTERPRETATION_LANGUAGES, LANGUAGES
from convene.models import Convening, Delegation, Question, QuestionKind, TicketType
from convene.services.convenings import (
    CONVENING_FIELDS,
    DELEGATION_FIELDS,
    QUESTION_FIELDS,
    TICKET_FIELDS,
    cents_to_price,
    price_to_cents,
    utc_to_local,
)

# Offered as suggestions; any IANA name is accepted.
COMMON_TIMEZONES = (
    "UTC", "America/St_Johns", "America/Halifax", "America/Toronto", "America/New_York", "America/Chicago",
    "America/Winnipeg", "America/Denver", "America/Edmonton", "America/Phoenix", "America/Los_Angeles",
    "America/Vancouver", "America/Anchorage", "Pacific/Honolulu", "America/Mexico_City", "America/Bogota",
    "America/Sao_Paulo", "America/Argentina/Buenos_Aires", "Europe/London", "Europe/Dublin", "Europe/Lisbon",
    "Europe/Paris", "Europe/Berlin", "Europe/Madrid", "Europe/Rome", "Europe/Amsterdam", "Europe/Brussels",
    "Europe/Stockholm", "Europe/Warsaw", "Europe/Athens", "Europe/Istanbul", "Africa/Lagos", "Africa/Nairobi",
    "Africa/Johannesburg", "Asia/Dubai", "Asia/Kolkata", "Asia/Singapore", "Asia/Manila", "Asia/Tokyo",
    "Australia/Perth", "Australia/Sydney", "Pacific/Auckland",
)
LOCAL_TIME_HINT = _l("In the convening's own time zone.")
COUNT = _l("Enter a whole number.")
MAX_CAPACITY = 1_000_000  # seats of a whole convening; far more than any venue


class LoginForm(ConveneForm):
    email = EmailField(_l("Email"), [DataRequired(message=_l("Enter your email.")),
                                     Email(message=_l("Enter a valid email.")),
                                     Length(max=254)])
    password = PasswordField(_l("Password"), [DataRequired(message=_l("Enter your password.")), Length(max=1024)])
    remember = BooleanField(_l("Keep me signed in on this device"))


class ChangePasswordForm(ConveneForm):
    """One's own password: the current one, then the new one twice."""

    current_password = PasswordField(_l("Current password"), [
        DataRequired(message=_l("Enter your current password.")), Length(max=1024),
    ], render_kw={"autocomplete": "current-password"})
    new_password = PasswordField(_l("New password"), [
        DataRequired(message=_l("Enter a new password.")),
        Length(min=8, max=1024, message=_l("Use 8 to 1024 characters.")),
    ], description=_l("At least 8 characters."), render_kw={"autocomplete": "new-password"})
    confirm_password = PasswordField(_l("New password again"), [
        DataRequired(message=_l("Enter the new password again.")),
        EqualTo("new_password", message=_l("The two new passwords are not the same.")),
    ], render_kw={"autocomplete": "new-password"})


def _optional_email():
    return [Optional(), Email(message=_l("Enter an email address like name@example.org.")), Length(max=254)]


def _capacity(label: str, description: str) -> IntegerField:
    return IntegerField(
        label, [Optional()], minimum=0, maximum=MAX_CAPACITY, description=description, invalid_value_message=COUNT,
        range_message=MESSAGES["capacity_negative"], too_large_message=_l("Enter at most %(max)s.",
                                                                          max=f"{MAX_CAPACITY:,}"),
    )


def _local_datetime(label: str) -> DateTimeLocalField:
    return DateTimeLocalField(label, [Optional()], description=LOCAL_TIME_HINT,
                              invalid_value_message=_l("Enter a date and time, like 2025-03-01T09:00."))


class ConveningForm(ConveneForm):
    """A convening's settings; registration opens/closes are wall-clock times in its zone."""

    name = StringField(_l("Name"), [DataRequired(message=_l("Enter a name.")), Length(max=200)])
    slug = StringField(
        _l("Web address"), [DataRequired(message=_l("Enter a web address.")), Length(max=64)],
        description=_l("Lowercase letters, digits and hyphens: it becomes /c/<address>/."),
    )
    description = TextAreaField(_l("Description"), [Optional(), Length(max=20000)])
    city = StringField(_l("City"), [Optional(), Length(max=120)])
    venue = StringField(_l("Venue"), [Optional(), Length(max=200)])
    venue_address = StringField(_l("Venue address"), [Optional(), Length(max=300)])
    timezone = StringField(
        _l("Time zone"), [DataRequired(message=_l("Enter a time zone.")), Length(max=64)],
        description=_l("An IANA name such as America/Toronto; the times below are read in it."),
        render_kw={"list": "timezones", "autocomplete": "off", "spellcheck": "false"},
    )
    starts_on = DateField(_l("First day"), [InputRequired(message=_l("Enter the first day."))],
                          invalid_value_message=_l("Enter a date."))
    ends_on = DateField(_l("Last day"), [InputRequired(message=_l("Enter the last day."))],
                        invalid_value_message=_l("Enter a date."))
    registration_opens_at = _local_datetime(_l("Registration opens"))
    registration_closes_at = _local_datetime(_l("Registration closes"))
    currency = StringField(_l("Currency"), [DataRequired(message=_l("Enter a currency.")), Length(max=3)],
                           description=_l("Three letters, like CAD or EUR."), default="USD")
    capacity = _capacity(_l("Capacity"), _l("Seats across all ticket types; leave empty for no limit."))
    contact_email = EmailField(_l("Contact email"), _optional_email())
    reference_prefix = StringField(
        _l("Reference prefix"), [DataRequired(message=_l("Enter a prefix.")), Length(max=5)], default="REG",
        description=_l("2 to 5 capital letters or digits that start each registration reference, like TOR."),
    )
    waitlist_enabled = BooleanField(_l("Offer a waitlist when seats run out"), default=True)
    allow_new_delegations = BooleanField(
        _l("Group leads may add a delegation that is not on the list"),
        description=_l("Otherwise the delegation form offers only the delegations set up here (a typed name that "
        "matches one of them, ignoring case and punctuation, joins it). While the convening has no delegations "
        "at all, leads type their own either way."),
    )
    published = BooleanField(_l("Published (listed publicly and open to registration in its window)"))
    invoice_enabled = BooleanField(_l("Offer to pay by invoice (the seat is confirmed at once and paid later)"))
    invoice_issuer = TextAreaField(
        _l("Invoice issued by"), [Optional(), Length(max=1000)],
        description=_l("First line: the organization's name; the lines below: its address, tax number and so on. "
        "Leave empty to use the convening's name."),
    )
    invoice_instructions = TextAreaField(
        _l("Payment instructions"), [Optional(), Length(max=5000)],
        description=_l("Printed on every invoice: bank details, what reference to quote, whom to contact."),
    )
    invoice_due_days = IntegerField(
        _l("Days to pay"), [Optional()], default=30, minimum=0, maximum=365,
        range_message=MESSAGES["invoice_due_days_invalid"],
        description=_l("An invoice is due this many days after it is issued (0: due on receipt); "
        "leave empty to keep the current number."),
        invalid_value_message=_l("Enter a number of days from 0 to 365."),
    )
    languages = MultiCheckboxField(
        _l("Languages of the attendee pages"), choices=choice_list(LANGUAGES.items()), default=["en"],
        description=_l("Attendees choose among these on every page; emails, badges and agendas follow the language "
        "each person registered in. Translate your own texts on the Translations page."))
    default_language = SelectField(
        _l("Default language"), choices=choice_list(LANGUAGES.items()), default="en",
        description=_l("The language you write in: texts not yet translated show in it, and exports use it."))
    interpretation_languages = MultiCheckboxField(
        _l("Interpretation offered into"), choices=choice_list(INTERPRETATION_LANGUAGES.items()),
        description=_l("The registration form asks which of these each person needs. Sign-language interpretation "
        "is asked among the accessibility needs."))

    @classmethod
    def for_convening(cls, convening: Convening) -> ConveningForm:
        """A form filled from a convening, its instants shown as local times."""
        data = {key: getattr(convening, key) for key in CONVENING_FIELDS}
        for key in ("registration_opens_at", "registration_closes_at"):
            data[key] = utc_to_local(data[key], convening.tz)
        return cls(data=data)

    def convening_data(self) -> dict:
        data = {key: getattr(self, key).data for key in CONVENING_FIELDS}
        if data["invoice_due_days"] is None:  # left empty: keep what is stored (30 for a new convening)
            del data["invoice_due_days"]
        return data


class PriceField(StringField):
    """A price typed as a decimal in the convening's currency; its data is in cents."""

    parse = staticmethod(price_to_cents)  # text to cents, raising ConveneError with the message to show

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return cents_to_price(self.data)

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        try:
            self.data = self.parse(valuelist[0])
        except ConveneError as error:
            self.data = None
            raise ValueError(error.message) from None


class OptionalPriceField(PriceField):
    """A price that may be left empty (data None), unlike a ticket's price where empty means free."""

    def process_formdata(self, valuelist):
        if valuelist and not valuelist[0].strip():
            self.data = None
            return
        super().process_formdata(valuelist)


class TicketTypeForm(ConveneForm):
    """A ticket type; its sale window is in the convening's time zone."""

    name = StringField(_l("Name"), [DataRequired(message=_l("Enter a name.")), Length(max=120)])
    description = TextAreaField(_l("Description"), [Optional(), Length(max=5000)])
    price_cents = PriceField(_l("Price"), description=_l("Leave empty or 0 for a free ticket."))
    early_price_cents = OptionalPriceField(_l("Early-bird price"),
                                           description=_l("Lower than the price; leave empty for none."))
    early_until_at = _local_datetime(_l("Early-bird price until"))
    capacity = _capacity(_l("Capacity"), _l("Seats for this ticket type; leave empty for no limit."))
    sales_start_at = _local_datetime(_l("On sale from"))
    sales_end_at = _local_datetime(_l("On sale until"))
    hidden = BooleanField(_l("Hidden: not offered publicly (complimentary, added by organizers)"))
    position = IntegerField(_l("Position in lists"), [Optional()], invalid_value_message=COUNT,
                            minimum=-9999, maximum=9999, range_message=_l("Enter a number from -9999 to 9999."),
                            description=_l("Lower numbers come first; leave empty to keep the current place."))

    @classmethod
    def for_ticket(cls, ticket: TicketType, convening: Convening) -> TicketTypeForm:
        data = {key: getattr(ticket, key) for key in TICKET_FIELDS}
        for key in ("sales_start_at", "sales_end_at", "early_until_at"):
            data[key] = utc_to_local(data[key], convening.tz)
        return cls(data=data)

    def ticket_data(self) -> dict:
        return {key: getattr(self, key).data for key in TICKET_FIELDS}


class QuestionForm(ConveneForm):
    """An organizer-defined question on the registration form."""

    label = StringField(_l("Question"), [DataRequired(message=_l("Enter the question.")), Length(max=300)])
    help_text = StringField(_l("Help text"), [Optional(), Length(max=500)], description=_l("Shown under the question."))
    kind = SelectField(_l("Kind of answer"), choices={k.value: k.label for k in QuestionKind},
                       default=QuestionKind.SHORT_TEXT.value)
    required = BooleanField(_l("An answer is required"))
    choices = TextAreaField(
        _l("Choices"), [Optional(), Length(max=10000)],
        description=_l("One per line; used only for single and multiple choice questions (at least two)."),
    )

    @classmethod
    def for_question(cls, question: Question) -> QuestionForm:
        data = {key: getattr(question, key) for key in QUESTION_FIELDS}
        data["choices"] = "\n".join(question.choices or [])
        return cls(data=data)

    def question_data(self) -> dict:
        return {key: getattr(self, key).data for key in QUESTION_FIELDS}


class DelegationForm(ConveneForm):
    """The community or organization a group of delegates comes from."""

    name = StringField(_l("Name"), [DataRequired(message=_l("Enter a name.")), Length(max=160)])
    contact_name = StringField(_l("Contact name"), [Optional(), Length(max=160)])
    contact_email = EmailField(_l("Contact email"), _optional_email())

    @classmethod
    def for_delegation(cls, delegation: Delegation) -> DelegationForm:
        return cls(data={key: getattr(delegation, key) for key in DELEGATION_FIELDS})

    def delegation_data(self) -> dict:
        return {key: getattr(self, key).data for key in DELEGATION_FIELDS}
