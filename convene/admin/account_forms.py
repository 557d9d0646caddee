"""Forms for a forgotten password: asking for a reset link, and choosing the new password."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from convene.forms import ConveneForm


class ForgotPasswordForm(ConveneForm):
    email = EmailField(_l("Email"), [
        DataRequired(message=_l("Enter the email address of your account.")),
        Email(message=_l("Enter an email address like name@example.org.")), Length(max=254),
    ], render_kw={"autocomplete": "email"})


class ResetPasswordForm(ConveneForm):
    new_password = PasswordField(_l("New password"), [
        DataRequired(message=_l("Enter a new password.")),
        Length(min=8, max=1024, message=_l("Use 8 to 1024 characters.")),
    ], description=_l("At least 8 characters."), render_kw={"autocomplete": "new-password"})
    confirm_password = PasswordField(_l("New password again"), [
        DataRequired(message=_l("Enter the new password again.")),
        EqualTo("new_password", message=_l("The two new passwords are not the same.")),
    ], render_kw={"autocomplete": "new-password"})
