"""Security headers on every answer: the content security policy, framing, sniffing, referrer, HSTS, no-store."""
from __future__ import annotations

import html
import re
from collections import Counter, deque
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from werkzeug.exceptions import HTTPException

from convene import create_app
from convene.extensions import db
from convene.models import Order, Registration, Status
from convene.security import rule_shows_person_data
from convene.services import demo
from convene.services import registrations as service
from convene.services import schedule
from convene.services import visits
from convene.services.payments import order_token
from convene.services.tokens import manage_token, offer_token
from tests.conftest import login
from tests.factories import make_convening, make_registration, make_ticket, make_user, person
from tests.web.test_public import form_data

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
SOURCE = Path(__file__).resolve().parents[2] / "convene"

# Routes that serve nobody's data, so caches may keep them; every other route must be no-store.
# A new route lands here only after deciding it shows no person's data (else: give it a token,
# or name it in convene.security.PERSON_DATA_ENDPOINTS).
NOT_PERSON_DATA = {
    "static", "healthz", "public.index", "public.convening", "public.program", "public.program_session",
    "public.program_calendar", "public.register", "public.register_group", "public.manage_link",
    "public.privacy", "payments.stripe_webhook", "webhooks.mail_bounces", "webhooks.mailgun_bounces",
}
PERSON_DATA_PAGES = {"public.manage", "public.cancel", "public.offer", "public.registered", "payments.order_page"}


def csp(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {name: sources for name, *sources in (part.split() for part in policy.split(";"))}


def assert_policy_headers(response, endpoint: str = "") -> None:
    policy = csp(response)
    # The scanning page alone may compile WebAssembly (its camera decoder); never eval itself.
    wasm = ["'wasm-unsafe-eval'"] if endpoint == "admin.checkin_scan" else []
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"].replace("'wasm-unsafe-eval'", "")
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'", *wasm] and policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["font-src"] == ["'self'"] and policy["connect-src"] == ["'self'"]
    assert policy["form-action"][:2] == ["'self'", "https://checkout.stripe.com"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"] and policy["object-src"] == ["'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


class InlineCode(HTMLParser):
    """Collects what a strict CSP would refuse: style elements and attributes, inline scripts, event handlers."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = {name for name, _ in attrs}
        if tag == "style":
            self.found.append("<style>")
        if tag == "script" and "src" not in names:
            self.found.append("<script> without src")
        if "style" in names:
            self.found.append(f"<{tag} style=...>")
        self.found += [f"<{tag} {name}=...>" for name in names if name.startswith("on")]
        self.found += [f"<{tag} {name}=javascript:>" for name, value in attrs
                       if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript:")]


def inline_code(body: str) -> list[str]:
    parser = InlineCode()
    parser.feed(body)
    parser.close()
    raw = [pattern for pattern in (r'style="', r"<style", r' on\w+="') if re.search(pattern, body)]
    return parser.found + raw


# -- the headers on every kind of answer ---------------------------------------------------------

@pytest.fixture
def convening(app):
    convening = make_convening(slug="headers")
    make_ticket(convening)
    return convening


@pytest.mark.parametrize("path", ["/", "/c/headers/", "/c/headers/register", "/admin/login", "/no-such-page",
                                  "/static/css/convene.css", "/healthz"])
def test_every_answer_carries_the_policy_headers_and_no_hsts_outside_production(client, convening, path):
    response = client.get(path)
    assert response.status_code == (404 if path == "/no-such-page" else 200)
    assert_policy_headers(response)
    assert "Strict-Transport-Security" not in response.headers
    if response.mimetype == "text/html":
        assert inline_code(response.text) == []


def test_admin_pages_and_admin_errors_carry_the_policy_headers(organizer_client, convening):
    for path, status in [("/admin/", 200), (f"/admin/c/{convening.id}/", 200), ("/admin/no-such-page", 404),
                         ("/admin/c/99999/", 404)]:
        response = organizer_client.get(path)
        assert response.status_code == status, path
        assert_policy_headers(response)
        assert response.headers["Cache-Control"] == "no-store"


def test_form_action_also_allows_a_stand_in_stripe_when_one_is_configured(app, client, convening):
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:12111/v1"
    assert csp(client.get("/c/headers/"))["form-action"] == [
        "'self'", "https://checkout.stripe.com", "http://127.0.0.1:12111"]
    app.config["STRIPE_API_BASE"] = ""
    assert csp(client.get("/c/headers/"))["form-action"] == ["'self'", "https://checkout.stripe.com"]


def test_production_adds_hsts(monkeypatch, tmp_path):
    secret = "a-production-secret-of-at-least-32-characters"
    url = f"sqlite:///{tmp_path}/production.db"
    monkeypatch.setenv("SECRET_KEY", secret)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CONVENE_BASE_URL", "https://convene.example")
    app = create_app({"ENV_NAME": "production", "SECRET_KEY": secret, "SQLALCHEMY_DATABASE_URI": url,
                      "BASE_URL": "https://convene.example"})
    try:
        client = app.test_client()
        for path, status in [("/static/css/convene.css", 200), ("/no-such-page", 404)]:
            response = client.get(path, base_url="https://convene.example")
            assert response.status_code == status
            assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
            assert_policy_headers(response)
    finally:
        with app.app_context():
            db.engine.dispose()


# -- no-store on what shows a person's data, and only there ---------------------------------------

@pytest.fixture
def person_pages(client, app):
    """One of each public page that shows a person's data, as paths."""
    convening = make_convening(slug="private", capacity=3, invoice_enabled=True, invoice_instructions="Wire it")
    paid = make_ticket(convening, name="Delegate", price_cents=45000)
    free = make_ticket(convening, name="Guest")
    response = client.post("/c/private/register", data=form_data(
        1, paid, payment_method="invoice", billing_address="City Hall"))
    assert response.status_code == 302
    registered = urlsplit(response.headers["Location"]).path
    buyer = db.session.execute(sa.select(Registration).where(Registration.email == "amina1@example.org")).scalar_one()
    order = db.session.execute(sa.select(Order)).scalar_one()
    make_registration(convening, free, 2)
    leaving = make_registration(convening, free, 3)
    waiting = service.register_attendee(convening.id, free.id, person(4), join_waitlist=True)
    service.cancel_registration(leaving.id)
    db.session.rollback()
    waiting = db.session.get(Registration, waiting.id)
    assert waiting.status == Status.OFFERED
    token = manage_token(buyer)
    return {
        "public.registered": registered,
        "public.manage": f"/c/private/manage/{token}",
        "public.cancel": f"/c/private/manage/{token}/cancel",
        "public.offer": f"/c/private/offer/{offer_token(waiting)}",
        "payments.order_page": f"/c/private/order/{order_token(order)}",
    }


def test_each_page_showing_a_person_is_no_store(app, client, person_pages):
    assert set(person_pages) == PERSON_DATA_PAGES
    for endpoint, path in person_pages.items():
        response = client.get(path)
        assert response.status_code == 200, path
        assert app.url_map.bind("localhost").match(path)[0] == endpoint
        assert response.headers["Cache-Control"] == "no-store", endpoint
        assert_policy_headers(response)
        assert inline_code(response.text) == [], endpoint
    assert "Amina1" in client.get(person_pages["public.manage"]).text  # the page really shows the person


def test_the_back_office_order_page_is_no_store_and_has_no_inline_style(client, person_pages):
    make_user("organizer@example.org", role="organizer")
    login(client, "organizer@example.org")
    order = db.session.execute(sa.select(Order)).scalar_one()
    response = client.get(f"/admin/c/{order.convening_id}/payments/{order.id}")
    assert response.status_code == 200 and "City Hall" in response.text  # the billing address is shown
    assert response.headers["Cache-Control"] == "no-store"
    assert inline_code(response.text) == []


def test_a_form_shown_again_with_what_was_typed_is_no_store(client, convening):
    response = client.post("/c/headers/register", data=form_data(7, None, email="not-an-email"))
    assert response.status_code == 200 and 'value="Amina7"' in response.text
    assert response.headers["Cache-Control"] == "no-store"


def test_public_convening_pages_stay_cacheable(client, convening):
    schedule.publish_program(convening.id)
    for path in ["/", "/c/headers/", "/c/headers/program", "/c/headers/register", "/c/headers/register/group",
                 "/c/headers/manage-link", "/static/css/convene.css"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "no-store" not in response.headers.get("Cache-Control", ""), path


def test_everything_under_admin_is_no_store_signed_in_or_not(client, organizer_client, convening):
    organizer_client.post("/admin/logout")
    for path in ["/admin/login", "/admin/", f"/admin/c/{convening.id}/", "/admin/nothing-here"]:
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    login(client, "organizer@example.org")
    for path in ["/admin/", f"/admin/c/{convening.id}/", f"/admin/c/{convening.id}/registrations",
                 f"/admin/c/{convening.id}/registrations.csv", "/admin/nothing-here"]:
        assert client.get(path).headers["Cache-Control"] == "no-store", path


def test_every_route_is_either_known_to_show_nobody_or_no_store(app):
    """A new route fails here until someone decides whether it shows a person's data."""
    rules = list(app.url_map.iter_rules())
    private = {rule.endpoint for rule in rules if rule_shows_person_data(rule.endpoint, rule.arguments)}
    public = {rule.endpoint for rule in rules} - private
    assert public == NOT_PERSON_DATA
    assert PERSON_DATA_PAGES <= private
    assert {rule.endpoint for rule in rules if rule.rule.startswith("/admin")} <= private
    token_routes = {rule.endpoint for rule in rules if "token" in rule.arguments}
    assert {"public.agenda_pdf", "public.agenda_calendar", "payments.order_document",
            "payments.registration_document"} <= token_routes <= private


# -- no inline code anywhere a browser is served a page ---------------------------------------------

def test_no_template_served_to_browsers_has_inline_style_or_script():
    """Emails and WeasyPrint documents keep inline styles; nothing else may."""
    found = {}
    for path in sorted(TEMPLATES.rglob("*.html")):
        relative = path.relative_to(TEMPLATES)
        if relative.parts[0] in ("email", "printing"):
            continue
        text = path.read_text()
        problems = re.findall(r"\sstyle\s*=|<style|\son[a-z]+\s*=|<script(?![^>]*\ssrc=)[^>]*>|javascript:", text)
        if problems:
            found[str(relative)] = problems
    assert found == {}
    # The WeasyPrint templates are never a page: no view renders them.
    views = [p for p in SOURCE.rglob("*.py") if "render_template" in p.read_text()]
    assert views and not any(re.search(r"render_template\(\s*['\"]printing/", p.read_text()) for p in views)


def _page_links(body: str) -> list[str]:
    return [html.unescape(href) for href in re.findall(r'href="([^"#]*)', body)]


def test_no_page_of_the_demo_has_inline_style_or_script(app, client):
    """Walk every page the demo reaches (a few of each kind), as a visitor and as the organizer."""
    convening, _ = demo.load_demo()
    visits.assign_site_visits(convening.id, run_by="test")  # so the plan and the run pages have figures
    someone = db.session.execute(sa.select(Registration).where(Registration.convening_id == convening.id)
                                 .order_by(Registration.id)).scalars().first()
    login(client, demo.DEMO_ORGANIZER_EMAIL, demo.DEMO_ORGANIZER_PASSWORD)
    adapter = app.url_map.bind("localhost")
    seen_urls: set[str] = set()
    per_endpoint: Counter = Counter()
    queue = deque(["/", f"/c/{convening.slug}/", "/admin/",
                   f"/c/{convening.slug}/manage/{manage_token(someone)}",
                   f"/c/{convening.slug}/registered/{manage_token(someone)}"])
    problems: dict[str, list[str]] = {}
    while queue:
        url = queue.popleft()
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            continue
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if path in seen_urls or parts.path.startswith("/static/"):
            continue
        if parts.path.endswith((".pdf", ".csv", ".ics", ".png")):
            continue  # files, not pages (and rendering PDFs is slow)
        try:
            endpoint, _ = adapter.match(parts.path, method="GET")
        except HTTPException:
            continue
        if per_endpoint[endpoint] >= 3:
            continue
        seen_urls.add(path)
        per_endpoint[endpoint] += 1
        response = client.get(path)
        assert response.status_code in (200, 302, 303), (path, response.status_code)
        assert_policy_headers(response, endpoint)
        if response.status_code != 200 or not response.mimetype == "text/html":
            continue
        body = response.text
        if inline_code(body):
            problems[path] = inline_code(body)
        queue.extend(_page_links(body))
    assert problems == {}
    reached = set(per_endpoint)
    assert {"public.index", "public.convening", "public.register", "public.register_group", "public.program",
            "public.manage", "public.registered", "admin.index", "admin.dashboard", "admin.registrations",
            "admin.registration", "admin.visits", "admin.visit_plan", "admin.visit_roster", "admin.visit_grid",
            "admin.visit_assign", "admin.schedule", "admin.print_queue"} <= reached
    assert len(reached) > 40
