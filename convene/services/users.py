"""Back-office accounts."""
from __future__ import annotations

import secrets

import sqlalchemy as sa
from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import Convening, Membership, TeamRole, User, utcnow
from convene.services.db import lock, unit_of_work

MIN_PASSWORD_LENGTH = 8
_dummy_hashes: dict[str, str] = {}


def _check_password_length(password: str, field: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConveneError("weak_password", field=field)


def create_user(email: str, password: str, *, admin: bool = False, name: str = "",
                role: str | None = None, convening_slug: str | None = None) -> User:
    """Make a sign-in account (a platform administrator, or a member with `role` on one convening or on all).

    Refuses a second account for the same email, an unknown role and an unknown convening.
    """
    email = email.strip().lower()
    if role is not None and role not in set(TeamRole):
        raise ConveneError("bad_role", f"Role must be one of: {', '.join(TeamRole)}.")
    _check_password_length(password, "password")
    with unit_of_work():
        if db.session.execute(sa.select(User.id).where(User.email == email)).first():
            raise ConveneError("user_exists", field="email")
        convening_id = None
        if convening_slug is not None:
            convening_id = db.session.execute(
                sa.select(Convening.id).where(Convening.slug == convening_slug)).scalar_one_or_none()
            if convening_id is None:
                raise ConveneError("not_found", f"There is no convening {convening_slug}.")
        user = User(email=email, name=name, is_admin=admin)
        user.set_password(password)
        db.session.add(user)
        db.session.flush()
        if role is not None:
            db.session.add(Membership(user_id=user.id, convening_id=convening_id, role=role))
    return user


def _dummy_hash() -> str:
    """A hash made like real ones, so checking a password for no account costs what checking a real one does."""
    method = current_app.config["PASSWORD_HASH_METHOD"]
    if method not in _dummy_hashes:
        _dummy_hashes[method] = generate_password_hash(secrets.token_urlsafe(16), method=method)
    return _dummy_hashes[method]


def authenticate(email: str, password: str) -> User | None:
    """The active account with this email and password, its last login recorded; else None.

    An unknown or inactive account's answer takes as long as a wrong password's, so timing does not
    tell which emails have accounts.
    """
    user = db.session.execute(sa.select(User).where(User.email == email.strip().lower())).scalar_one_or_none()
    if user is None or not user.active:
        check_password_hash(_dummy_hash(), password)
        return None
    if not user.check_password(password):
        return None
    with unit_of_work():
        db.session.get(User, user.id).last_login_at = utcnow()
    return db.session.get(User, user.id)


def end_sessions(user_id: int) -> None:
    """Sign the account out everywhere: every session and remember cookie made before now stops working."""
    with unit_of_work():
        for user in lock(User, user_id):
            user.session_version += 1


def change_password(email: str, new_password: str, *, current_password: str | None = None) -> User:
    """Set an account's password (checking its current one when given) and end its other sessions."""
    _check_password_length(new_password, "new_password")
    with unit_of_work():
        found = db.session.execute(sa.select(User.id).where(User.email == email.strip().lower())).scalar_one_or_none()
        if found is None:
            raise ConveneError("user_not_found", field="email")
        user = lock(User, found)[0]
        if current_password is not None and not user.check_password(current_password):
            raise ConveneError("current_password_wrong", field="current_password")
        user.set_password(new_password)
        user.session_version += 1
    return db.session.get(User, user.id)
