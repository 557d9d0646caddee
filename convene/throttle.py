"""Throttles: how often one client may sign in, register, try discount codes and ask for manage links.

Counters live in the limiter's storage (Redis when REDIS_URL is set, so every worker process shares
them; memory otherwise). The client is `request.remote_addr`: X-Forwarded-For is not trusted, since
anyone can send it; behind reverse proxies, CONVENE_PROXY_COUNT says how many to trust (ProxyFix).
"""
from __future__ import annotations

import functools
import hashlib
import math
import time

from flask import current_app, request
from limits import RateLimitItemPerSecond, parse, parse_many
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

from convene.extensions import limiter


def setting(name: str):
    """A throttle's configured value (config.py), read per request so tests can change it."""
    return current_app.config[name]


def limit_of(name: str):
    """A callable Flask-Limiter evaluates per request, so the config (and tests) can change a limit."""
    return lambda: setting(name)


def _tolerant(function):
    """A store that stops answering (Redis restarting) must not turn sign-ins into errors: count nothing."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except TooManyRequests:
            raise
        except Exception as error:  # redis, limits and socket errors alike
            current_app.logger.warning("throttle store unavailable, %s not counted: %s", function.__name__, error)
            return None
    return wrapper


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


@_tolerant
def check_sign_in(email: str) -> None:
    """Refuse, before any password is checked, an email locked out for this client."""
    ids = _ids("sign-in-lockout", client_ip(), _email_key(email))
    fixed = FixedWindowRateLimiter(limiter.storage)
    if not fixed.test(_lockout(), *ids):
        refuse(fixed.get_window_stats(_lockout(), *ids).reset_time - time.time())


@_tolerant
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


@_tolerant
def clear_sign_in_failures(email: str) -> None:
    """A correct password forgets this client's earlier mistakes for that email (and no one else's)."""
    ids = _ids("sign-in-failures", client_ip(), _email_key(email))
    MovingWindowRateLimiter(limiter.storage).clear(parse(setting("RATELIMIT_LOGIN_FAILURES")), *ids)


# Discount codes: only tries of codes that turn out invalid count, so guessing is slow and typing a good one free.

@_tolerant
def check_code_try() -> None:
    """Refuse a code try from a client that has had too many invalid ones."""
    ids = _ids("code-tries", client_ip())
    for item in parse_many(setting("RATELIMIT_CODE_TRIES")):
        if not limiter.limiter.test(item, *ids):
            refuse(limiter.limiter.get_window_stats(item, *ids).reset_time - time.time())


@_tolerant
def record_invalid_code() -> None:
    ids = _ids("code-tries", client_ip())
    for item in parse_many(setting("RATELIMIT_CODE_TRIES")):
        limiter.limiter.hit(item, *ids)


# Per-IP request limits, declared on the views (page GETs are never limited).
sign_in_posts = limiter.limit(limit_of("RATELIMIT_LOGIN"), methods=["POST"])
manage_link_posts = limiter.limit(limit_of("RATELIMIT_MANAGE_LINK"), methods=["POST"])
password_reset_posts = limiter.limit(limit_of("RATELIMIT_PASSWORD_RESET"), methods=["POST"])
bounce_webhook_posts = limiter.limit(limit_of("RATELIMIT_BOUNCE_WEBHOOK"), methods=["POST"])
# One budget for the single and the delegation form; "Add another delegate" only redraws the form.
registration_posts = limiter.shared_limit(
    limit_of("RATELIMIT_REGISTER"), scope="registration", methods=["POST"],
    exempt_when=lambda: bool(request.form.get("add_row")),
)
