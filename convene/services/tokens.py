"""Signed, expiring tokens for links sent by email (no account needed)."""
from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from convene.errors import ConveneError


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"convene.{purpose}")


def make_token(purpose: str, payload: dict) -> str:
    return _serializer(purpose).dumps(payload)


def read_token(purpose: str, token: str, max_age_seconds: int) -> dict:
    """Return the payload, or raise ConveneError link_expired / link_invalid."""
    try:
        payload = _serializer(purpose).loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        raise ConveneError("link_expired") from None
    except BadSignature:
        raise ConveneError("link_invalid") from None
    if not isinstance(payload, dict):
        raise ConveneError("link_invalid")
    return payload


def manage_token(registration) -> str:
    return make_token("manage", {"r": registration.id, "v": registration.token_version})


def manage_max_age() -> int:
    return current_app.config["MANAGE_LINK_MAX_AGE_DAYS"] * 86400


def offer_token(registration) -> str:
    # The offer's own deadline lives on the registration; the signature only needs to outlast it.
    return make_token("offer", {"r": registration.id, "v": registration.token_version})


def make_stable_token(purpose: str, payload: dict) -> str:
    """A token without a timestamp: the same payload always gives the same token.

    For links that go into a request Stripe must see unchanged on a retry (Checkout's return
    addresses): a timed token would differ from one second to the next. Such links are revoked by
    a version number in the payload instead of by age.
    """
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=f"convene.{purpose}").dumps(payload)


def read_stable_token(purpose: str, token: str) -> dict:
    try:
        payload = URLSafeSerializer(current_app.config["SECRET_KEY"], salt=f"convene.{purpose}").loads(token)
    except BadSignature:
        raise ConveneError("link_invalid") from None
    if not isinstance(payload, dict):
        raise ConveneError("link_invalid")
    return payload
