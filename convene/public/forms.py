"""Forms of the public area."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField
from wtforms.validators import DataRequired, Email

from convene.forms import PersonForm, ticket_select


class RegistrationForm(PersonForm):
    """The public registration form; questions are added per convening."""

    ticket_type_id = ticket_select()
    join_waitlist = HiddenField(default="")


class ManageForm(PersonForm):
    """What an attendee may change on their own registration."""


class ManageLinkForm(FlaskForm):
    """Ask for the manage link to be emailed again."""

    email = EmailField("Email you registered with", [DataRequired(message="Enter your email address."),
                                                     Email(message="Enter an email address like name@example.org.")])
