"""Forms for a forgotten password: asking for a reset link, and choosing the new password."""
from __future__ import annotations

from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from convene.forms import ConveneForm


class ForgotPasswordForm(ConveneForm):
    email = EmailField("Email", [
        DataRequired(message="Enter the email address of your account."),
        Email(message="Enter an email address like name@example.org."), Length(max=254),
    ], render_kw={"autocomplete": "email"})


class ResetPasswordForm(ConveneForm):
    new_password = PasswordField("New password", [
        DataRequired(message="Enter a new password."),
        Length(min=8, max=1024, message="Use 8 to 1024 characters."),
    ], description="At least 8 characters.", render_kw={"autocomplete": "new-password"})
    confirm_password = PasswordField("New password again", [
        DataRequired(message="Enter the new password again."),
        EqualTo("new_password", message="The two new passwords are not the same."),
    ], render_kw={"autocomplete": "new-password"})
