"""Mailgun's bounce and complaint webhooks: signature, age, which events flag an address."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import sqlalchemy as sa

from convene.extensions import db
from convene.models import Registration
from tests.factories import make_convening, make_registration, make_ticket

KEY = "mailgun-signing-key-for-tests"


def mailgun_post(client, event_data: dict, *, key: str = KEY, timestamp: int | None = None, token: str = "t" * 50):
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"timestamp": stamp, "token": token, "signature": signature}, "event-data": event_data}
    return client.post("/webhooks/mail/mailgun", data=json.dumps(body), content_type="application/json")


def bounced(registration_id: int):
    db.session.rollback()
    return db.session.scalar(sa.select(Registration.email_bounce_reason).where(
        Registration.id == registration_id, Registration.email_bounced_at.is_not(None)))


def test_a_signed_permanent_failure_flags_the_address_and_nothing_else_does(app, client):
    convening = make_convening()
    ticket = make_ticket(convening)
    gone = make_registration(convening, ticket, 1, email="gone@example.org")
    upset = make_registration(convening, ticket, 2, email="upset@example.org")
    slow = make_registration(convening, ticket, 3, email="slow@example.org")
    permanent = {"event": "failed", "severity": "permanent", "recipient": "Gone@Example.org",
                 "delivery-status": {"code": 550, "description": "550 5.1.1 mailbox unavailable"},
                 "message": {"headers": {"message-id": "<convene-999999@convene.local>"}}}

    assert mailgun_post(client, permanent).status_code == 400  # no key configured: nothing is trusted
    app.config["MAILGUN_WEBHOOK_SIGNING_KEY"] = KEY
    assert mailgun_post(client, permanent, key="guessed").status_code == 401
    assert mailgun_post(client, permanent, timestamp=int(time.time()) - 3600).status_code == 401  # a replay
    assert client.post("/webhooks/mail/mailgun", data="{", content_type="application/json").status_code == 400
    assert bounced(gone.id) is None

    response = mailgun_post(client, permanent)
    assert response.status_code == 200 and response.get_json() == {"received": 1, "flagged": 1}
    assert "550 5.1.1 mailbox unavailable" in bounced(gone.id)

    temporary = {**permanent, "severity": "temporary", "recipient": "slow@example.org"}
    delivered = {"event": "delivered", "recipient": "slow@example.org"}
    for event in (temporary, delivered):
        response = mailgun_post(client, event)
        assert response.status_code == 200 and response.get_json() == {"received": 0, "flagged": 0}
    assert bounced(slow.id) is None

    response = mailgun_post(client, {"event": "complained", "recipient": "upset@example.org"})
    assert response.get_json() == {"received": 1, "flagged": 1}
    assert bounced(upset.id).startswith("The person marked a message as spam")


def test_hostile_mailgun_calls_are_refused_without_a_500(app, client):
    app.config["MAILGUN_WEBHOOK_SIGNING_KEY"] = KEY
    for event in ({"event": "failed", "severity": "permanent", "recipient": "no-at-sign"},
                  {"event": "failed", "severity": "permanent", "recipient": "a\x00@example.org"},
                  {"event": "complained", "recipient": ["x@example.org"]},
                  {"event": "failed", "severity": "permanent", "recipient": "x@example.org", "message": "text",
                   "delivery-status": "text"}):
        assert mailgun_post(client, event).status_code in (200, 400)
    for body in ("[]", '{"signature": "x"}', '{"signature": {"timestamp": 1, "token": 2, "signature": 3}}'):
        assert client.post("/webhooks/mail/mailgun", data=body,
                           content_type="application/json").status_code in (400, 401)
    assert mailgun_post(client, "not an object").status_code == 400
