"""Throttles: sign-in lockouts, the per-IP ceilings, manage-link emails, code guessing; in memory and in Redis."""
from __future__ import annotations

import os
import statistics
import time
import uuid

import pytest

from config import Config
from convene.extensions import db, limiter
from convene.models import CodeKind, DiscountCode
from tests.factories import make_convening, make_registration, make_ticket, make_user
from tests.web.test_public import form_data

REDIS_URI = "redis://127.0.0.1:6379/3"
# The limits production runs with (the testing config lifts them for the rest of the suite).
LIMITS = {name: getattr(Config, name) for name in (
    "RATELIMIT_LOGIN", "RATELIMIT_LOGIN_FAILURES", "RATELIMIT_LOGIN_LOCKOUT_SECONDS", "RATELIMIT_REGISTER",
    "RATELIMIT_CODE_TRIES", "RATELIMIT_MANAGE_LINK", "MANAGE_LINK_EMAILS_PER_HOUR")}
PASSWORD = "correct-horse-battery"


def _redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URI, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(params=["memory", "redis"])
def storage_uri(request) -> str:
    if request.param == "memory":
        return "memory://"
    if not _redis_answers():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the throttling tests against Redis, and {REDIS_URI} does not answer")
        pytest.skip(f"Redis does not answer at {REDIS_URI}")
    return REDIS_URI


@pytest.fixture
def app_config(app_config, storage_uri) -> dict:
    """The production limits (not the suite's lifted ones), in a store of this test's own."""
    return {**app_config, **LIMITS, "RATELIMIT_STORAGE_URI": storage_uri,
            # Keys of this test only, so it can clear them without touching anyone else's.
            "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": f"convene-test-{uuid.uuid4().hex}"}}


@pytest.fixture(autouse=True)
def own_store(app):
    yield
    try:
        limiter.storage.reset()  # Redis: deletes this test's prefix only; memory: this app's store
    except Exception:  # a test bound the limiter to a store that does not answer; nothing was kept
        pass
    # The limiter is one object for every app: do not hand this test's prefix to the next one.
    limiter._storage_options.pop("key_prefix", None)


def sign_in(client, email: str, password: str, ip: str = "10.0.0.1"):
    return client.post("/admin/login", data={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


def assert_refused_for(response, low: int, high: int) -> None:
    assert response.status_code == 429
    assert low <= int(response.headers["Retry-After"]) <= high
    page = response.get_data(as_text=True)
    assert "Too many attempts" in page


# Sign-in ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("email", ["organizer@example.org", "nobody@example.org"])
def test_eleventh_failed_sign_in_for_one_email_is_refused_for_fifteen_minutes(client, organizer, email):
    for _ in range(10):
        response = sign_in(client, email, "wrong-password")
        assert response.status_code == 200 and "do not match" in response.get_data(as_text=True)
    response = sign_in(client, email, "wrong-password")
    assert_refused_for(response, 880, 900)
    assert "try again in 15 minutes" in response.get_data(as_text=True)


def test_a_locked_out_email_is_refused_even_with_its_password_but_only_from_that_ip(client, organizer):
    for _ in range(10):
        sign_in(client, organizer.email, "wrong-password")
    assert_refused_for(sign_in(client, organizer.email, PASSWORD), 880, 900)
    assert sign_in(client, "ORGANIZER@example.org", PASSWORD).status_code == 429  # case does not make another email
    # Another email from that IP, and that email from another IP, still get real answers.
    other = make_user("other@example.org")
    assert sign_in(client, other.email, "wrong-password").status_code == 200
    assert sign_in(client, organizer.email, "wrong-password", ip="10.0.0.2").status_code == 200
    assert sign_in(client, organizer.email, PASSWORD, ip="10.0.0.2").status_code == 302


def test_signing_in_forgets_that_clients_earlier_mistakes(app, organizer):
    for _ in range(9):
        sign_in(app.test_client(), organizer.email, "wrong-password")
    assert sign_in(app.test_client(), organizer.email, PASSWORD).status_code == 302
    for _ in range(9):
        assert sign_in(app.test_client(), organizer.email, "wrong-password").status_code == 200
    assert sign_in(app.test_client(), organizer.email, PASSWORD).status_code == 302


def test_sign_in_posts_from_one_ip_have_a_ceiling_whatever_the_emails(app, client):
    app.config["RATELIMIT_LOGIN"] = "5 per 15 minutes"
    for n in range(5):
        assert sign_in(client, f"person{n}@example.org", "wrong-password").status_code == 200
    assert_refused_for(sign_in(client, "person9@example.org", "wrong-password"), 800, 900)
    assert client.get("/admin/login", environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 200
    assert sign_in(client, "person9@example.org", "wrong-password", ip="10.0.0.2").status_code == 200


def _median_sign_in_seconds(client, emails: list[str], tries: int) -> list[float]:
    """For each email, the median time a wrong password takes to refuse. The emails take turns, so a change
    in the machine's load (the suite runs in parallel) weighs on each of them alike."""
    times: dict[str, list[float]] = {email: [] for email in emails}
    for n in range(tries):
        for email in emails:
            started = time.perf_counter()
            assert sign_in(client, email, "wrong-password", ip=f"10.1.{n}.1").status_code == 200
            times[email].append(time.perf_counter() - started)
    return [statistics.median(times[email]) for email in emails]


def test_an_unknown_email_takes_as_long_to_refuse_as_a_known_one(app, client):
    app.config["PASSWORD_HASH_METHOD"] = "scrypt"  # the production method: its cost is what timing would show
    make_user("known@example.org")
    make_user("inactive@example.org").active = False
    db.session.commit()
    for email in ("known@example.org", "nobody@example.org"):  # warm up (the first unknown one makes the dummy hash)
        sign_in(client, email, "wrong-password", ip="10.9.9.9")
    known, unknown, inactive = _median_sign_in_seconds(
        client, ["known@example.org", "nobody@example.org", "inactive@example.org"], 5)
    assert unknown >= 0.5 * known and inactive >= 0.5 * known, (known, unknown, inactive)


# The manage-link form ----------------------------------------------------------------------------------------------

def test_the_manage_link_form_sends_at_most_three_emails_an_hour_to_one_address_and_answers_alike(
        app, client, outbox):
    app.config["RATELIMIT_MANAGE_LINK"] = "100 per minute"
    convening = make_convening()
    registration = make_registration(convening, make_ticket(convening), 1)
    pages = set()
    for n in range(10):
        email = registration.email.upper() if n % 2 else registration.email  # spelled either way, one address
        response = client.post(f"/c/{convening.slug}/manage-link", data={"email": email}, follow_redirects=True)
        assert response.status_code == 200
        pages.add(response.get_data(as_text=True).replace(email, registration.email))
    assert len(outbox.to(registration.email)) == 3
    unknown = client.post(f"/c/{convening.slug}/manage-link", data={"email": "nobody@example.org"},
                          follow_redirects=True).get_data(as_text=True)
    pages.add(unknown.replace("nobody@example.org", registration.email))
    assert len(pages) == 1


def test_the_manage_link_form_limits_posts_per_ip(app, client):
    app.config["RATELIMIT_MANAGE_LINK"] = "2 per minute"
    convening = make_convening()
    for n in range(2):
        assert client.post(f"/c/{convening.slug}/manage-link", data={"email": f"p{n}@example.org"}).status_code == 302
    assert_refused_for(client.post(f"/c/{convening.slug}/manage-link", data={"email": "p9@example.org"}), 1, 60)
    assert client.get(f"/c/{convening.slug}/manage-link").status_code == 200


# Discount codes and registration POSTs ----------------------------------------------------------------------------

def test_invalid_code_tries_from_one_ip_are_limited_valid_ones_are_free(app, client):
    app.config["RATELIMIT_CODE_TRIES"] = "3 per 10 minutes"
    convening = make_convening()
    ticket = make_ticket(convening)
    db.session.add(DiscountCode(convening_id=convening.id, code="SPEAKER", kind=CodeKind.PERCENT, percent=50))
    db.session.commit()
    register = f"/c/{convening.slug}/register"
    for _ in range(5):
        assert client.get(register, query_string={"code": "speaker"}).status_code == 200
    assert client.get(register, query_string={"code": "GUESS1"}).status_code == 200
    assert client.get(register, query_string={"code": "GUESS2"}).status_code == 200
    # A POST's code counts too.
    assert client.post(register, data=form_data(1, ticket, code="GUESS3")).status_code == 200
    response = client.get(register, query_string={"code": "GUESS4"})
    assert_refused_for(response, 500, 600)
    assert "try again in 10 minutes" in response.get_data(as_text=True)
    # Refused before the lookup, so a right guess now tells nothing; the page without a code still opens.
    assert client.get(register, query_string={"code": "SPEAKER"}).status_code == 429
    assert client.get(register).status_code == 200
    assert client.get(register, query_string={"code": "GUESS5"},
                      environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code == 200


def test_registration_posts_from_one_ip_are_limited_pages_are_not(app, client):
    app.config["RATELIMIT_REGISTER"] = "3 per minute"
    convening = make_convening()
    make_ticket(convening)
    register, group = f"/c/{convening.slug}/register", f"/c/{convening.slug}/register/group"
    for _ in range(3):
        assert client.post(register, data={}).status_code == 200  # an incomplete form, shown again
    # "Add another delegate" only redraws the form, so it is not counted.
    assert client.post(group, data={"add_row": "y"}).status_code == 200
    assert_refused_for(client.post(register, data={}), 1, 60)
    assert client.post(group, data={}).status_code == 429  # one budget for both forms
    assert client.get(register).status_code == 200 and client.get(group).status_code == 200
    assert client.post(register, data={}, environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code == 200


def test_a_throttle_store_that_does_not_answer_lets_people_sign_in_and_register(app, organizer):
    """Redis restarting must not take sign-in or registration down: limits count nothing meanwhile."""
    from convene import create_app

    broken = create_app({**{k: app.config[k] for k in ("ENV_NAME", "SQLALCHEMY_DATABASE_URI", "MAIL_OUTBOX_DIR",
                                                       "PRINTS_DIR")},
                         **LIMITS, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1/0",
                         "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 0.2}})
    convening = make_convening()
    ticket = make_ticket(convening)
    with broken.app_context():
        client = broken.test_client()
        assert sign_in(client, organizer.email, "wrong-password").status_code == 200
        assert sign_in(client, organizer.email, PASSWORD).status_code == 302
        response = client.post(f"/c/{convening.slug}/register?code=NOPE", data=form_data(1, ticket))
        assert response.status_code in (200, 302), response.status_code
        db.session.remove()
        db.engine.dispose()


def test_behind_a_proxy_the_client_is_the_forwarded_address_only_when_configured(app_config):
    from convene import create_app

    seen = []
    for count in (0, 1):
        proxied = create_app({**app_config, "PROXY_COUNT": count})

        @proxied.get("/whoami-test")
        def whoami():
            from flask import request

            return request.remote_addr or ""
        seen.append(proxied.test_client().get("/whoami-test", headers={"X-Forwarded-For": "203.0.113.9"},
                                              environ_base={"REMOTE_ADDR": "10.0.0.2"}).get_data(as_text=True))
    assert seen == ["10.0.0.2", "203.0.113.9"]
