"""The one place that talks to Stripe: a configured StripeClient and the few calls Convene makes.

Every call returns plain dicts, and every failure becomes a ConveneError the views can show, so no
Stripe outage ever turns into a 500. Writes carry idempotency keys, so the library's own retries
(STRIPE_MAX_NETWORK_RETRIES) and ours never create a second session or refund.
"""
from __future__ import annotations

import json
import logging

import stripe
from flask import current_app

from convene.errors import ConveneError

log = logging.getLogger(__name__)


def stripe_configured() -> bool:
    """Card payments need both the secret key and the webhook secret (without it nothing would confirm)."""
    config = current_app.config
    return bool(config.get("STRIPE_SECRET_KEY") and config.get("STRIPE_WEBHOOK_SECRET"))


def client() -> stripe.StripeClient:
    config = current_app.config
    if not config.get("STRIPE_SECRET_KEY"):
        raise ConveneError("payment_not_set_up")
    base = config.get("STRIPE_API_BASE") or None
    return stripe.StripeClient(
        config["STRIPE_SECRET_KEY"],
        base_addresses={"api": base} if base else None,
        max_network_retries=config.get("STRIPE_MAX_NETWORK_RETRIES", 2),
    )


def _call(what: str, action):
    try:
        return action().to_dict()
    except stripe.InvalidRequestError as exc:
        log.error("Stripe refused to %s: %s", what, exc.user_message or exc)
        raise ConveneError("payment_provider_refused", reason=exc.user_message or str(exc)) from exc
    except stripe.StripeError as exc:  # network, 5xx after retries, auth, rate limits
        log.warning("Stripe unavailable to %s: %s", what, exc)
        raise ConveneError("payment_provider_unavailable", status_code=503) from exc


def create_checkout_session(params: dict, idempotency_key: str) -> dict:
    return _call("create a checkout session", lambda: client().v1.checkout.sessions.create(
        params=params, options={"idempotency_key": idempotency_key}))


def retrieve_checkout_session(session_id: str) -> dict:
    return _call("read a checkout session", lambda: client().v1.checkout.sessions.retrieve(session_id))


def expire_checkout_session(session_id: str) -> dict:
    return _call("expire a checkout session", lambda: client().v1.checkout.sessions.expire(session_id))


def create_refund(params: dict, idempotency_key: str) -> dict:
    return _call("refund", lambda: client().v1.refunds.create(
        params=params, options={"idempotency_key": idempotency_key}))


def verify_event(payload: bytes, signature: str | None) -> dict:
    """The event in a webhook body, once its signature, secret and timestamp check out."""
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET") or ""
    if not secret:
        raise ConveneError("webhook_not_configured", status_code=400)
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, stripe.Webhook.DEFAULT_TOLERANCE)
    except (stripe.SignatureVerificationError, ValueError) as exc:  # ValueError: a body that is not UTF-8
        raise ConveneError("webhook_signature_invalid", status_code=400) from exc
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise ConveneError("webhook_payload_invalid", status_code=400) from exc
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise ConveneError("webhook_payload_invalid", status_code=400)
    return event
