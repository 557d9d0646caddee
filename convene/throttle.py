"""Throttles: how often one client may sign in, register, try discount codes and ask for manage links.

Counters live in the limiter's storage (Redis when REDIS_URL is set, so every worker process shares
them; memory otherwise). The client is `request.remote_addr`: X-Forwarded-For is not trusted, since
anyone can send it. Behind a reverse proxy, wrap the app in werkzeug's ProxyFix with the number of
proxies in front, or every visitor shares the proxy's address.
"""
from __future__ import annotations

import hashlib
import math
import time

from flask import current_app, request
from limits import RateLimitItemPerSecond, parse, parse_many
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

from convene.extensions import limiter

# Sized for a registration desk behind one NAT (a hotel wifi with 300 delegates), not for one person.
DEFAULTS = {
    "RATELIMIT_LOGIN": "50 per 15 minutes",  # sign-in POSTs per client IP, whatever the email
    "RATELIMIT_LOGIN_FAILURES": "10 per 15 minutes",  # failed sign-ins per client IP and email ...
    "RATELIMIT_LOGIN_LOCKOUT_SECONDS": 15 * 60,  # ... then that email is refused from that IP this long
    "RATELIMIT_REGISTER": "30 per minute; 300 per hour",  # registration and delegation POSTs per IP
    "RATELIMIT_CODE_TRIES": "30 per 10 minutes; 100 per hour",  # codes that turn out invalid, per IP
    "RATELIMIT_MANAGE_LINK": "10 per minute; 60 per hour",  # manage-link form POSTs per IP
    "MANAGE_LINK_EMAILS_PER_HOUR": 3,  # manage-link emails to one address (counted in the database)
}
# The suite registers and signs in hundreds of times from 127.0.0.1, in Redis shared across tests when
# REDIS_URL is set; tests of the throttles set the limits they need through the app's config.
TESTING_DEFAULTS = {
    **DEFAULTS,
    "RATELIMIT_LOGIN": "100000 per minute",
    "RATELIMIT_LOGIN_FAILURES": "100000 per minute",
    "RATELIMIT_REGISTER": "100000 per minute",
    "RATELIMIT_CODE_TRIES": "100000 per minute",
    "RATELIMIT_MANAGE_LINK": "100000 per minute",
}


def setting(name: str):
    """A throttle's configured value, else its default."""
    defaults = TESTING_DEFAULTS if current_app.config.get("TESTING") else DEFAULTS
    return current_app.config.get(name, defaults[name])


def limit_of(name: str):
    """A callable Flask-Limiter evaluates per request, so the config (and tests) can change a limit."""
    return lambda: setting(name)


def client_ip() -> str:
    return request.remote_addr or "unknown"


def refuse(seconds: float):
    """Raise a 429 whose page and Retry-After say when to try again."""
    raise TooManyRequests(retry_after=max(1, math.ceil(seconds)))


def _ids(kind: str, *parts: str) -> tuple[str, ...]:
    return (current_app.config.get("RATELIMIT_KEY_PREFIX", "convene"), kind, *parts)


def _email_key(email: str) -> str:
    # Hashed, so the store holds no addresses and keys stay short whatever was typed.
    return hashlib.sha256((email or "").strip().lower().encode()).hexdigest()[:32]


# Sign-in: failures are counted per (client IP, email); enough of them lock that pair out.

def _lockout():
    return RateLimitItemPerSecond(1, int(setting("RATELIMIT_LOGIN_LOCKOUT_SECONDS")))


def check_sign_in(email: str) -> None:
    """Refuse, before any password is checked, an email locked out for this client."""
    ids = _ids("sign-in-lockout", client_ip(), _email_key(email))
    fixed = FixedWindowRateLimiter(limiter.storage)
    if not fixed.test(_lockout(), *ids):
        refuse(fixed.get_window_stats(_lockout(), *ids).reset_time - time.time())


def record_sign_in_failure(email: str) -> None:
    """Count a failed sign-in; the one that fills the window starts the lockout."""
    failures = parse(setting("RATELIMIT_LOGIN_FAILURES"))
    ids = _ids("sign-in-failures", client_ip(), _email_key(email))
    moving = MovingWindowRateLimiter(limiter.storage)
    moving.hit(failures, *ids)
    if not moving.test(failures, *ids):
        # A lockout of its own, so it lasts its full length from the last failure, not a sliding remainder.
        FixedWindowRateLimiter(limiter.storage).hit(_lockout(), *_ids("sign-in-lockout", client_ip(),
                                                                       _email_key(email)))
        moving.clear(failures, *ids)


def clear_sign_in_failures(email: str) -> None:
    """A correct password forgets this client's earlier mistakes for that email (and no one else's)."""
    ids = _ids("sign-in-failures", client_ip(), _email_key(email))
    MovingWindowRateLimiter(limiter.storage).clear(parse(setting("RATELIMIT_LOGIN_FAILURES")), *ids)


# Discount codes: only tries of codes that turn out invalid count, so guessing is slow and typing a good one free.

def check_code_try() -> None:
    """Refuse a code try from a client that has had too many invalid ones."""
    ids = _ids("code-tries", client_ip())
    for item in parse_many(setting("RATELIMIT_CODE_TRIES")):
        if not limiter.limiter.test(item, *ids):
            refuse(limiter.limiter.get_window_stats(item, *ids).reset_time - time.time())


def record_invalid_code() -> None:
    ids = _ids("code-tries", client_ip())
    for item in parse_many(setting("RATELIMIT_CODE_TRIES")):
        limiter.limiter.hit(item, *ids)


# Per-IP request limits, declared on the views (page GETs are never limited).
sign_in_posts = limiter.limit(limit_of("RATELIMIT_LOGIN"), methods=["POST"])
manage_link_posts = limiter.limit(limit_of("RATELIMIT_MANAGE_LINK"), methods=["POST"])
# One budget for the single and the delegation form; "Add another delegate" only redraws the form.
registration_posts = limiter.shared_limit(
    limit_of("RATELIMIT_REGISTER"), scope="registration", methods=["POST"],
    exempt_when=lambda: bool(request.form.get("add_row")),
)
