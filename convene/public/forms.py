"""Forms of the public area."""
from __future__ import annotations

from flask import request
from wtforms import (
    EmailField,
    FieldList,
    FormField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, Optional

from flask_babel import lazy_gettext as _l

from convene.errors import message_for
from convene.forms import ConveneForm, ConveneSubform, PersonForm, choice_list, language_data, ticket_select
from convene.languages import current_language

NEW_DELEGATION = "new"
MAX_DELEGATES = 60  # a larger group is better imported by the organizers from a spreadsheet


class PaymentFields:
    """What the forms ask about paying: a code, card or invoice, and what an invoice needs."""

    code = StringField(_l("Discount or access code"), [Optional(), Length(max=40)],
                       description=_l("If the organizers gave you one."))
    payment_method = RadioField(_l("How will you pay?"),
                                choices=choice_list([("card", _l("By card, now")),
                                                     ("invoice", _l("By invoice (for organizations)"))]),
                                default="card", validate_choice=False)
    billing_address = TextAreaField(_l("Billing address"), [Optional(), Length(max=500)],
                                    description=_l("For the invoice: the organization's name and postal address."))
    po_number = StringField(_l("Purchase order number"), [Optional(), Length(max=60)],
                            description=_l("If your organization needs one on the invoice."))

    def take_code_from_link(self) -> None:
        """A code in the page's address (`?code=...`, from the Apply box or a link) fills the code field."""
        if request.method == "GET" and request.args.get("code"):
            self.code.data = request.args["code"][:40]

    def payment_data(self) -> dict:
        return {"method": self.payment_method.data or "card", "billing_address": self.billing_address.data or "",
                "po_number": self.po_number.data or ""}


class RegistrationForm(PersonForm, PaymentFields):
    """The public registration form; questions are added per convening."""

    ticket_type_id = ticket_select()
    join_waitlist = HiddenField(default="")

    def person_data(self) -> dict:
        """The person, the language the page was read in and the interpretation they asked for."""
        return {**super().person_data(), "language": current_language(), **language_data(self)}


class ManageForm(PersonForm):
    """What an attendee may change on their own registration."""

    def person_data(self) -> dict:
        """Saving from the page in another language makes it the language they are written to in."""
        return {**super().person_data(), "language": current_language(), **language_data(self)}


class ManageLinkForm(ConveneForm):
    """Ask for the manage link to be emailed again."""

    email = EmailField(_l("Email you registered with"), [DataRequired(message=_l("Enter your email address.")),
                                                         Email(message=_l("Enter an email address like name@example.org."))])


class DelegateRow(ConveneSubform):
    """One delegate in a delegation's form; a row left entirely empty is skipped."""

    given_name = StringField(_l("Given name"), [Optional(), Length(max=100)])
    family_name = StringField(_l("Family name"), [Optional(), Length(max=100)])
    email = EmailField(_l("Email"), [Optional(), Email(message=_l("Enter an email address like name@example.org.")),
                                     Length(max=254)])
    ticket_type_id = SelectField(_l("Ticket"), coerce=int, validate_choice=False)

    def is_blank(self) -> bool:
        return not any((getattr(self, name).data or "").strip() for name in ("given_name", "family_name", "email"))

    def check_filled(self) -> bool:
        """Each kept row needs a name, an email and a ticket; the messages sit beside the cells."""
        ok = True
        for name, message in (("given_name", _l("Enter the given name.")), ("family_name", _l("Enter the family name.")),
                              ("email", _l("Enter an email address."))):
            field = getattr(self, name)
            if not (field.data or "").strip() and not field.errors:
                field.errors = [*field.errors, message]
                ok = False
        if not self.ticket_type_id.data or self.ticket_type_id.data not in [c.value for c in self.ticket_type_id.choices]:
            self.ticket_type_id.errors = [*self.ticket_type_id.errors, _l("Choose a ticket.")]
            ok = False
        return ok and not any(f.errors for f in self)


class GroupForm(ConveneForm, PaymentFields):
    """A delegation lead registers several delegates at once and pays once."""

    lead_name = StringField(_l("Your name"), [DataRequired(message=_l("Enter your name.")), Length(max=200)])
    lead_email = EmailField(_l("Your email"), [DataRequired(message=_l("Enter your email address.")),
                                               Email(message=_l("Enter an email address like name@example.org.")),
                                               Length(max=254)],
                            description=_l("The link to see and change the delegation's registrations goes here."))
    organization = StringField(_l("Organization"), [DataRequired(message=_l("Enter your organization.")),
                                                    Length(max=200)])
    # Choices are the convening's delegations (set by the view), plus "Another delegation" when new names are taken.
    delegation_choice = SelectField(_l("Delegation"), choices=[], validate_choice=False,
                                    description=_l("The community or organization the delegates come from."))
    delegation_name = StringField(_l("Delegation"), [Optional(), Length(max=160)],
                                  description=_l("The community or organization the delegates come from, as badges "
                                                 "and rosters should show it. Leave empty to use the organization."))
    delegates = FieldList(FormField(DelegateRow), min_entries=3, max_entries=MAX_DELEGATES)
    add_row = SubmitField(_l("Add another delegate"))

    def offer_delegations(self, delegations, allow_new: bool) -> None:
        """Offer the convening's delegations; the typed name only shows when new ones are allowed."""
        self.delegations = {str(d.id): d for d in delegations}
        self.allow_new = allow_new
        pairs = [("", _l("Choose your delegation"))] if delegations else []
        pairs += [(key, d.name) for key, d in self.delegations.items()]
        if allow_new and delegations:
            pairs.append((NEW_DELEGATION, _l("Another delegation (type its name below)")))
            self.delegation_name.label.text = _l("Another delegation")
            self.delegation_name.description = _l("Only if yours is not in the list. Leave empty to use the organization.")
        self.delegation_choice.choices = choice_list(pairs)

    def chosen_delegation(self) -> str | None:
        """The delegation name the lead picked or typed; None (with a message beside the field) when unclear."""
        picked = self.delegation_choice.data or ""
        typed = (self.delegation_name.data or "").strip() if self.allow_new else ""
        if picked in self.delegations:
            if typed:
                self.delegation_name.errors = [*self.delegation_name.errors, message_for("delegation_choose_one")]
                return None
            return self.delegations[picked].name
        if self.delegations and not (self.allow_new and (picked == NEW_DELEGATION or typed)):
            self.delegation_choice.errors = [*self.delegation_choice.errors, message_for("delegation_choose")]
            return None
        return typed or self.organization.data or ""
