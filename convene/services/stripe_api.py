"""The one place that talks to Stripe: a configured StripeClient and the few calls Convene makes.

Every call returns plain dicts, and every failure becomes a ConveneError the views can show, so no
Stripe outage ever turns into a 500. Writes carry idempotency keys, so the library's own retries
(STRIPE_MAX_NETWORK_RETRIES) and ours never create a second session or refund.
"""
from __future__ import annotations

import json
import logging
import time

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


# Stripe's library refuses only signatures older than its tolerance; one dated far ahead would keep a
# captured body replayable until then, so a timestamp more than this ahead is refused too.
FUTURE_TOLERANCE = 300  # seconds


def verify_event(payload: bytes, signature: str | None) -> object:
    """The parsed JSON of a webhook body, once its signature, secret and timestamp check out.

    Its shape is not checked here: `payments.check_stripe_event` does that before anything reads it.
    """
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET") or ""
    if not secret:
        raise ConveneError("webhook_not_configured", status_code=400)
    if signature and not signature.isascii():  # the library's compare_digest raises TypeError on these
        raise ConveneError("webhook_signature_invalid", status_code=400)
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, stripe.Webhook.DEFAULT_TOLERANCE)
    except (stripe.SignatureVerificationError, ValueError) as exc:  # ValueError: a body that is not UTF-8
        raise ConveneError("webhook_signature_invalid", status_code=400) from exc
    ahead = _signed_at(signature) - time.time()
    if ahead > FUTURE_TOLERANCE:
        log.warning("Stripe webhook signed %d s in the future: refused (is this server's clock right?)", ahead)
        raise ConveneError("webhook_timestamp_future", status_code=400)
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as exc:  # RecursionError: arrays or objects nested too deep
        log.warning("malformed Stripe event: the body is not JSON (%s)", type(exc).__name__)
        raise ConveneError("webhook_payload_invalid", status_code=400) from exc


def _signed_at(signature: str) -> int:
    """The header's timestamp, read as the library's verify_header reads it (the first t= item)."""
    return int(next(item.split("=", 2)[1] for item in signature.split(",") if item.split("=", 2)[0] == "t"))
