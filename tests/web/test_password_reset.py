"""Resetting a forgotten password from the sign-in page, through the browser's eyes."""
from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from convene.extensions import db, limiter
from convene.models import OutboxMessage, User
from convene.services.passwords import reset_url
from tests.accounts import PASSWORD, RESET_LINK, emailed_path, post_hostile_values, signed_in_as
from tests.conftest import login
from tests.factories import make_convening, make_user


def test_the_sign_in_page_links_to_the_forgotten_password_page(client):
    page = client.get("/admin/login").text
    assert 'href="/admin/password/forgot"' in page
    assert client.get("/admin/password/forgot").status_code == 200


def test_a_password_reset_works_once_and_ends_the_old_sessions(app, client, outbox):
    make_user("reset@example.org", role="viewer", convening=make_convening())
    elsewhere = app.test_client()
    login(elsewhere, "reset@example.org")
    assert signed_in_as(elsewhere) == "reset@example.org"
    asked = client.post("/admin/password/forgot", data={"email": "Reset@Example.org"}, follow_redirects=True)
    assert asked.status_code == 200 and "If Reset@Example.org belongs to an active account" in asked.text
    path = emailed_path(outbox, "reset@example.org", RESET_LINK, wait=10)
    form = client.get(path)
    assert form.status_code == 200 and "reset@example.org" in form.text
    mismatch = client.post(path, data={"new_password": "new-password-1", "confirm_password": "other-password"})
    assert mismatch.status_code == 400 and "not the same" in mismatch.text
    done = client.post(path, data={"new_password": "new-password-1", "confirm_password": "new-password-1"})
    assert done.status_code == 302 and urlsplit(done.headers["Location"]).path == "/admin/login"
    assert signed_in_as(elsewhere) is None  # the other browser's session ended
    again = client.post(path, data={"new_password": "third-password", "confirm_password": "third-password"})
    assert again.status_code == 410 and "already used" in again.text
    assert login(client, "reset@example.org", PASSWORD).status_code == 200  # the old password is refused
    assert login(client, "reset@example.org", "new-password-1").status_code == 302


def test_an_unknown_or_inactive_address_gets_the_same_page_and_no_email(app, client, outbox):
    make_user("known@example.org", role="viewer")
    gone = make_user("inactive@example.org", role="viewer")
    gone.active = False
    db.session.commit()
    pages = set()
    for email in ("known@example.org", "nobody@example.org", "inactive@example.org"):
        response = client.post("/admin/password/forgot", data={"email": email}, follow_redirects=True)
        assert response.status_code == 200
        pages.add(response.text.replace(email, "EMAIL"))
    assert len(pages) == 1
    emailed_path(outbox, "known@example.org", RESET_LINK, wait=10)
    time.sleep(0.3)
    assert [m["To"] for m in outbox.messages()] == ["known@example.org"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 1


@pytest.mark.parametrize("path, status", [
    ("/admin/password/reset/not-a-token", 404),
    ("/admin/password/reset/" + "x" * 3000, 404),
    ("/admin/password/reset/a.b.c", 404),
])
def test_a_bad_reset_link_shows_a_page_that_offers_a_new_one(client, path, status):
    response = client.get(path)
    assert response.status_code == status and 'href="/admin/password/forgot"' in response.text
    assert client.post(path, data={"new_password": "x" * 20, "confirm_password": "x" * 20}).status_code == status


def test_forgotten_password_posts_are_limited_per_ip(app, client):
    app.config["RATELIMIT_PASSWORD_RESET"] = "2 per minute"
    try:
        for n in range(2):
            assert client.post("/admin/password/forgot", data={"email": f"p{n}@example.org"}).status_code == 302
        refused = client.post("/admin/password/forgot", data={"email": "p9@example.org"})
        assert refused.status_code == 429 and "Retry-After" in refused.headers
        assert client.get("/admin/password/forgot").status_code == 200
    finally:
        limiter.storage.reset()


def test_the_forgot_form_refuses_a_bad_address_beside_the_field(client, outbox):
    for email in ("", "not-an-address", "a\r\nb@example.org", "x" * 300 + "@example.org"):
        response = client.post("/admin/password/forgot", data={"email": email})
        assert response.status_code == 200 and 'aria-invalid="true"' in response.text
    assert outbox.messages() == []


def test_hostile_values_in_the_password_forms_never_give_a_server_error(app, client):
    user = make_user("r@example.org", role="viewer")
    post_hostile_values([
        (client, urlsplit(reset_url(user)).path, ("new_password", "confirm_password"),
         {"new_password": "", "confirm_password": "x"}),
        (client, "/admin/password/forgot", ("email",), {"email": "someone@example.org"}),
    ])
    db.session.rollback()
    assert db.session.get(User, user.id).check_password(PASSWORD)
