"""Forms of the back office."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Email


class LoginForm(FlaskForm):
    email = EmailField("Email", [DataRequired(message="Enter your email."), Email(message="Enter a valid email.")])
    password = PasswordField("Password", [DataRequired(message="Enter your password.")])
    remember = BooleanField("Keep me signed in on this device")
