"""Forms of a convening's team page and of the invitation a person accepts."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from convene.emails import SendableEmail
from convene.forms import ConveneForm, choice_list
from convene.models import TEAM_ROLE_LABELS, TeamRole

ROLE_CHOICES = [(role.value, TEAM_ROLE_LABELS[role]) for role in TeamRole]


def _role_field(label: str, default: str | None = None) -> SelectField:
    # Any value reaches the service, which refuses an unknown role beside this field with the central message.
    return SelectField(label, choices=choice_list(ROLE_CHOICES), default=default, validate_choice=False)


class InviteForm(ConveneForm):
    """Invite someone by email to the convening's team."""

    email = EmailField(_l("Email"), [
        DataRequired(message=_l("Enter the email address to invite.")),
        Email(message=_l("Enter an email address like name@example.org.")), Length(max=254), SendableEmail(),
    ], render_kw={"autocomplete": "off"})
    role = _role_field("Role", default=TeamRole.VIEWER.value)


class RoleForm(ConveneForm):
    """Change one member's role."""

    role = _role_field("Role")


class AcceptInvitationForm(ConveneForm):
    """A person with no account yet: their name and the password they choose."""

    name = StringField(_l("Your name"), [DataRequired(message=_l("Enter your name.")), Length(max=160)],
                       render_kw={"autocomplete": "name"})
    password = PasswordField(_l("Choose a password"), [
        DataRequired(message=_l("Choose a password.")),
        Length(min=8, max=1024, message=_l("Use 8 to 1024 characters.")),
    ], description=_l("At least 8 characters."), render_kw={"autocomplete": "new-password"})
    confirm_password = PasswordField(_l("The password again"), [
        DataRequired(message=_l("Enter the password again.")),
        EqualTo("password", message=_l("The two passwords are not the same.")),
    ], render_kw={"autocomplete": "new-password"})
