"""Forms of the back office's registrations area: edit, add by hand, badges, walk-ins (the import's: import_forms)."""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, SelectField, StringField, ValidationError
from wtforms.validators import InputRequired, Length, Optional

from convene.errors import MESSAGES
from convene.forms import ConveneForm, PersonForm, choice_list
from convene.languages import ENGLISH_NAMES
from convene.models import Convening, Role
from convene.printing.receipts import format_amount
from convene.services.payments import DESK_METHODS, Settlement

ROLE_CHOICES = choice_list((role.value, role.label) for role in Role)
SETTLEMENT_CHOICES = choice_list((s.value, s.label) for s in Settlement)
NO_DELEGATION = 0


def _ticket_select(label: str) -> SelectField:
    return SelectField(label, coerce=int, validators=[InputRequired(message=_l("Choose a ticket type."))])


def _delegation_select(label: str) -> SelectField:
    return SelectField(label, coerce=int, default=NO_DELEGATION)


class RegistrationAdminForm(PersonForm):
    """The person form plus what only organizers set; questions are added per convening."""

    ticket_type_id = _ticket_select(_l("Ticket type"))
    role = SelectField(_l("Role"), choices=ROLE_CHOICES, default=Role.DELEGATE.value)
    delegation_id = _delegation_select(_l("Delegation"))
    language = SelectField(_l("Language"), choices=[], validate_choice=True,
                           description=_l("Their emails, badge back, agenda and receipts are in this language."))

    def admin_changes(self) -> dict:
        return {"role": self.role.data, "delegation_id": self.delegation_id.data or None,
                "ticket_type_id": self.ticket_type_id.data}


def _settlement_radio(label: str, description: str) -> RadioField:
    # Left out of a post, it stays the default (invoice), as the page shows it chosen.
    return RadioField(label, choices=SETTLEMENT_CHOICES, default=Settlement.INVOICE.value, description=description,
                      validate_choice=True)


def _payment_note(description: str) -> StringField:
    return StringField(_l("Payment note"), [Optional(), Length(max=300)], description=description)


class NewRegistrationForm(RegistrationAdminForm):
    """Add someone by hand: any ticket type, hidden ones included; a paid ticket says how it is settled."""

    settlement = _settlement_radio(
        _l("How is it settled?"),
        _l("For a ticket with a price. Invoice: a numbered invoice is emailed to them. Paid elsewhere: recorded as "
           "paid, with the note below. Complimentary: no charge."),
    )
    payment_note = _payment_note(_l("Needed for “Paid elsewhere”, for example “Cheque 1042 received”."))
    send_email = BooleanField(_l("Email them their confirmation (and invoice)"), default=True)


class BadgeForm(ConveneForm):
    """What prints on a badge: the fields staff may correct on the day."""

    given_name = PersonForm.given_name
    family_name = PersonForm.family_name
    badge_name = PersonForm.badge_name
    pronouns = PersonForm.pronouns
    organization = PersonForm.organization

    def badge_data(self) -> dict:
        return {name: getattr(self, name).data for name in BADGE_FORM_FIELDS}


BADGE_FORM_FIELDS = ("given_name", "family_name", "badge_name", "pronouns", "organization")


class WalkInForm(ConveneForm):
    """A walk-in added at the desk: who they are, a public ticket, and how a price was paid there."""

    given_name = PersonForm.given_name
    family_name = PersonForm.family_name
    badge_name = PersonForm.badge_name
    pronouns = PersonForm.pronouns
    email = PersonForm.email
    organization = PersonForm.organization
    ticket_type_id = SelectField(_l("Ticket"), coerce=int,
                                 validators=[InputRequired(message=_l("Choose a ticket type."))])
    # Checked against the chosen ticket's price below: a free ticket needs none.
    method = RadioField(_l("How did they pay?"), choices=choice_list(DESK_METHODS.items()), validate_choice=False,
                        description=_l("For a ticket with a price: the full price is recorded as paid, and a receipt "
                                       "is emailed to them."))
    send_email = BooleanField(_l("Email them the link to their registration"), default=True)

    def fill(self, convening: Convening, now: datetime) -> None:
        """Offer the public ticket types with today's price; hidden ones (comps, hosts) stay with organizers."""
        tickets = [t for t in convening.ticket_types if not t.hidden]
        self.prices = {t.id: t.price_at(now) for t in tickets}
        self.ticket_type_id.choices = choice_list(
            (t.id, f"{t.name} · "
                   f"{format_amount(self.prices[t.id], convening.currency) if self.prices[t.id] else _('free')}")
            for t in tickets
        )

    def validate_method(self, field) -> None:
        if field.data and field.data not in DESK_METHODS:
            raise ValidationError(MESSAGES["desk_method_invalid"])
        if not field.data and self.prices.get(self.ticket_type_id.data, 0) > 0:
            raise ValidationError(MESSAGES["desk_method_invalid"])

    def person_data(self) -> dict:
        return {name: getattr(self, name).data for name in (*BADGE_FORM_FIELDS, "email")}


def fill_choices(form: FlaskForm, convening: Convening) -> None:
    """Offer the convening's ticket types (hidden ones marked) and delegations."""
    form.ticket_type_id.choices = choice_list(
        (t.id, _("%(name)s (hidden)", name=t.name) if t.hidden else t.name) for t in convening.ticket_types
    )
    form.delegation_id.choices = choice_list(
        [(NO_DELEGATION, _("— none —"))] + [(d.id, d.name) for d in convening.delegations]
    )
    if hasattr(form, "language"):
        codes = list(dict.fromkeys([*(convening.languages or []), convening.default_language]))
        form.language.choices = choice_list((code, ENGLISH_NAMES.get(code, code)) for code in codes)
        if not form.language.data:
            form.language.data = convening.default_language
