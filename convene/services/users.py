"""Back-office accounts."""
from __future__ import annotations

import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import User, UserRole, utcnow
from convene.services.db import unit_of_work


def create_user(email: str, password: str, *, role: str = UserRole.ORGANIZER, name: str = "") -> User:
    """Make a sign-in account; refuses a second account for the same email."""
    email = email.strip().lower()
    if role not in set(UserRole):
        raise ConveneError("bad_role", f"Role must be one of: {', '.join(UserRole)}.")
    if len(password) < 8:
        raise ConveneError("weak_password", "Passwords need at least 8 characters.", field="password")
    with unit_of_work():
        if db.session.execute(sa.select(User.id).where(User.email == email)).first():
            raise ConveneError("user_exists", field="email")
        user = User(email=email, role=role, name=name)
        user.set_password(password)
        db.session.add(user)
    return user


def authenticate(email: str, password: str) -> User | None:
    """The active account with this email and password, its last login recorded; else None."""
    user = db.session.execute(sa.select(User).where(User.email == email.strip().lower())).scalar_one_or_none()
    if user is None or not user.active or not user.check_password(password):
        return None
    with unit_of_work():
        db.session.get(User, user.id).last_login_at = utcnow()
    return db.session.get(User, user.id)
