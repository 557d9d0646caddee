"""Calls from the mail provider: bounce and complaint events, signed with a shared secret (README, "Bounces")."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from convene.errors import ConveneError
from convene.extensions import csrf
from convene.throttle import bounce_webhook_posts

bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/mail/bounces")
@csrf.exempt
@bounce_webhook_posts
def mail_bounces():
    """Bounce and complaint events: signature checked over the raw body, then each address flagged."""
    from flask import g

    from convene.models import ActorKind
    from convene.services import messages
    from convene.services.audit import Actor

    g.audit_actor = Actor(ActorKind.SYSTEM, label="Mail provider")
    try:
        event = messages.verify_bounce_signature(request.get_data(), request.headers.get(messages.SIGNATURE_HEADER))
        flagged = messages.record_bounces(event["events"])
    except ConveneError as error:
        return jsonify(error=error.code, message=error.message), error.status_code
    return jsonify(received=len(event["events"]), flagged=flagged)


@bp.post("/webhooks/mail/mailgun")
@csrf.exempt
@bounce_webhook_posts
def mailgun_bounces():
    """Mailgun's permanent failures and complaints, signed with the domain's webhook signing key."""
    from flask import g

    from convene.models import ActorKind
    from convene.services import messages
    from convene.services.audit import Actor

    g.audit_actor = Actor(ActorKind.SYSTEM, label="Mailgun")
    try:
        events = messages.mailgun_events(request.get_data())
        flagged = messages.record_bounces(events) if events else 0
    except ConveneError as error:
        return jsonify(error=error.code, message=error.message), error.status_code
    return jsonify(received=len(events), flagged=flagged)
