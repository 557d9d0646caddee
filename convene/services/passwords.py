"""A forgotten password: an emailed link, signed and short-lived, that sets a new one once.

The link carries the account's id and its `session_version`. Setting the password raises that
version, so the link dies once used, and also once the password changes (or the account signs out
everywhere) by any other way.
"""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext

from convene.errors import ConveneError
from convene.extensions import db
from convene.i18n import staff_language
from convene.models import OutboxMessage, User, utcnow
from convene.models.teams import ActorKind
from convene.services.audit import Actor, acting_as
from convene.services.db import lock, unit_of_work
from convene.services.mail import queue_email
from convene.services.registrations import external_url
from convene.services.tokens import make_token, read_token
from convene.services.users import _check_password_length

PURPOSE = "password-reset"
EMAIL_KIND = "password_reset"


def _max_age_seconds() -> int:
    return int(current_app.config["PASSWORD_RESET_MAX_AGE_MINUTES"]) * 60


def _duration(minutes: int) -> str:
    if minutes % 60:
        return f"{minutes} minutes"
    return f"{minutes // 60} hour{'' if minutes == 60 else 's'}"


def link_duration() -> str:
    """How long a reset link works, in words ("2 hours")."""
    return _duration(_max_age_seconds() // 60)


def reset_url(user: User) -> str:
    token = make_token(PURPOSE, {"u": user.id, "v": user.session_version})
    return external_url("admin.reset_password", token=token)


def request_password_reset(email: str, *, hourly_cap: int | None = None) -> int | None:
    """Email a reset link to the active account with this email, if there is one; never says whether there is.

    The same reads happen either way and the email leaves from a delivery job on the queue (its id
    is returned, so a caller may wait for it), never from this request, so the answer takes as long
    for an unknown address, and a slow mail server never holds the page. With `hourly_cap`, an
    address that had that many reset emails in the last hour gets no more.
    """
    from convene import jobs

    address = (email or "").strip().lower()
    job_id = None
    with unit_of_work():
        found = db.session.execute(sa.select(User.id, User.active).where(User.email == address)).first()
        # Locked, so concurrent requests for one account count one after another.
        user = lock(User, found.id)[0] if found is not None and found.active else None
        sent = db.session.execute(sa.select(sa.func.count()).select_from(OutboxMessage).where(
            OutboxMessage.kind == EMAIL_KIND, OutboxMessage.to_address == address,
            OutboxMessage.created_at >= utcnow() - timedelta(hours=1))).scalar_one()
        if user is not None and (hourly_cap is None or sent < hourly_cap):
            message = queue_email(EMAIL_KIND, user.email, lambda: gettext("Reset your Convene password"), "password_reset",
                                  user=user, url=reset_url(user),
                                  duration=link_duration(), language=staff_language())
            # Not delivered inline after the commit like other small email: the delivery job sends it.
            db.session.info["queued_email"].remove(message)
            job_id = jobs.enqueue("deliver_mail", params={"ids": [message.id]}, total=1).id
    return job_id


def _user_of(token: str) -> User:
    """The active account a reset link is for, while the link still holds; else why not."""
    try:
        payload = read_token(PURPOSE, token, _max_age_seconds())
    except ConveneError as error:
        raise ConveneError("reset_link_expired" if error.code == "link_expired" else "reset_link_invalid",
                           status_code=410 if error.code == "link_expired" else 404) from None
    user_id, version = payload.get("u"), payload.get("v")
    if not isinstance(user_id, int) or not isinstance(version, int):
        raise ConveneError("reset_link_invalid", status_code=404)
    user = db.session.get(User, user_id)
    if user is None or not user.active:
        raise ConveneError("reset_link_invalid", status_code=404)
    if user.session_version != version:
        raise ConveneError("reset_link_used", status_code=410)
    return user


def check_reset_link(token: str) -> User:
    """The account a reset link would set the password of; ConveneError when it no longer works."""
    return _user_of(token)


def reset_password(token: str, new_password: str) -> User:
    """Set the password a reset link is for; every session of the account ends and the link stops working."""
    user = _user_of(token)
    _check_password_length(new_password, "new_password")
    with unit_of_work():
        with acting_as(Actor(ActorKind.ACCOUNT, user.id, user.email)):
            # Locked and checked again: of two uses of one link at once, the second finds it used.
            user = lock(User, user.id)[0]
            _user_of(token)
            user.set_password(new_password)
            user.session_version += 1
            db.session.flush()
    return db.session.get(User, user.id)
