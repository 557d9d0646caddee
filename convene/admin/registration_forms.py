"""Forms of the back office's registrations area: edit, add by hand, CSV import."""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional

from convene.forms import ConveneForm, PersonForm, choice_list
from convene.models import Convening, Role

ROLE_CHOICES = choice_list((role.value, role.label) for role in Role)
NO_DELEGATION = 0


def _ticket_select(label: str) -> SelectField:
    return SelectField(label, coerce=int, validators=[InputRequired(message="Choose a ticket type.")])


def _delegation_select(label: str) -> SelectField:
    return SelectField(label, coerce=int, default=NO_DELEGATION)


class RegistrationAdminForm(PersonForm):
    """The person form plus what only organizers set; questions are added per convening."""

    ticket_type_id = _ticket_select("Ticket type")
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.DELEGATE.value)
    delegation_id = _delegation_select("Delegation")

    def admin_changes(self) -> dict:
        return {"role": self.role.data, "delegation_id": self.delegation_id.data or None,
                "ticket_type_id": self.ticket_type_id.data}


class NewRegistrationForm(RegistrationAdminForm):
    """Add someone by hand (a comp): any ticket type, hidden ones included."""

    send_email = BooleanField("Email them their confirmation", default=True)


class ImportForm(ConveneForm):
    """Upload a delegates spreadsheet, with defaults for the columns it leaves empty."""

    file = FileField("CSV file", validators=[
        FileRequired(message="Choose a CSV file."),
        FileAllowed(["csv"], message="Upload a .csv file (in Excel: File › Save As › CSV UTF-8)."),
    ])
    ticket_type_id = _ticket_select("Default ticket type")
    delegation_id = _delegation_select("Default delegation")
    new_delegation_name = StringField(
        "…or a new delegation named", [Optional(), Length(max=160)],
        description="Created if it does not exist, and used instead of the default delegation.",
    )
    role = SelectField("Default role", choices=ROLE_CHOICES, default=Role.DELEGATE.value)
    send_emails = BooleanField("Email each person their confirmation and manage link", default=False)


def fill_choices(form: FlaskForm, convening: Convening) -> None:
    """Offer the convening's ticket types (hidden ones marked) and delegations."""
    form.ticket_type_id.choices = choice_list(
        (t.id, t.name + (" (hidden)" if t.hidden else "")) for t in convening.ticket_types
    )
    form.delegation_id.choices = choice_list(
        [(NO_DELEGATION, "— none —")] + [(d.id, d.name) for d in convening.delegations]
    )
