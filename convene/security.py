"""Response headers every page gets: the content security policy, framing, sniffing, referrer, caching."""
from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from flask import Flask, Request, Response, current_app, request

# Buying a ticket is a form POST answered with a 303 to Stripe Checkout, and Chromium checks
# form-action against every redirect a form submission follows.
STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"

# One year; no includeSubDomains, because the organization's other hosts are not Convene's to pin.
HSTS = "max-age=31536000"

# Every page, the admin back office included, lives under this prefix and shows attendee data.
ADMIN_PREFIX = "/admin"

# A URL carrying one of these arguments is a capability for one person's (or order's) data:
# manage, cancel, offer, the confirmation page, the order page, their PDFs and calendars.
PERSON_DATA_ARGUMENTS = frozenset({"token"})

# Person-data pages whose address carries no token (none today; a route added here is then no-store).
PERSON_DATA_ENDPOINTS: frozenset[str] = frozenset()


def init_app(app: Flask) -> None:
    """Register the after-request hook that sets the security headers."""
    app.after_request(set_security_headers)


def set_security_headers(response: Response) -> Response:
    """Add the policy headers to every answer, and no-store to any that shows a person's data."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy(current_app.config.get("STRIPE_API_BASE")))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")  # manage and order tokens travel in URLs
    if current_app.config.get("ENV_NAME") == "production":
        headers.setdefault("Strict-Transport-Security", HSTS)
    if shows_person_data(request) and not response.cache_control.no_store:
        headers["Cache-Control"] = "no-store"
    return response


@lru_cache(maxsize=8)
def content_security_policy(stripe_api_base: str | None = None) -> str:
    """The policy: only this site's own files, no inline code, no framing, forms only to here and Checkout."""
    form_action = ["'self'", STRIPE_CHECKOUT_ORIGIN]
    # A stand-in Stripe (stripe-mock, the tests' fake) serves its Checkout page from its own origin.
    stand_in = _origin(stripe_api_base)
    if stand_in and stand_in not in form_action:
        form_action.append(stand_in)
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": form_action,
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def _origin(url: str | None) -> str | None:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def shows_person_data(req: Request) -> bool:
    """Whether an answer must not be kept by any cache: admin pages, token pages, and answers to forms."""
    if req.path == ADMIN_PREFIX or req.path.startswith(ADMIN_PREFIX + "/") or req.blueprint == "admin":
        return True
    if req.method not in ("GET", "HEAD"):
        return True  # a form shown again carries what the person typed
    if req.url_rule is None:
        return False
    return rule_shows_person_data(req.url_rule.endpoint, req.url_rule.arguments)


def rule_shows_person_data(endpoint: str, arguments) -> bool:
    """Whether a route (by endpoint and URL arguments) serves one person's data."""
    return (endpoint.startswith("admin.") or endpoint in PERSON_DATA_ENDPOINTS
            or bool(PERSON_DATA_ARGUMENTS & set(arguments)))
