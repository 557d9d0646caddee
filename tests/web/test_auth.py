"""Signing in and out: where sign-in may send you, sessions that end everywhere, passwords, the remember cookie."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from convene import create_app
from convene.extensions import db
from convene.models import User
from tests.conftest import login

PASSWORD = "correct-horse-battery"


@pytest.mark.parametrize("target, allowed", [
    ("////evil.example", False),
    ("//evil.example", False),
    ("/\\evil.example", False),
    ("\\\\evil.example", False),
    ("https://evil.example", False),
    ("/%2F%2Fevil.example", False),
    ("/%5C%5Cevil.example", False),
    ("/\t/evil.example", False),
    ("javascript:alert(1)", False),
    (" /x", False),
    ("/admin/c/1/", True),
    ("/admin/c/1/registrations?q=a%20b", True),
])
def test_sign_in_goes_on_only_to_a_path_of_this_site(client, organizer, target, allowed):
    response = client.post("/admin/login", query_string={"next": target},
                           data={"email": organizer.email, "password": PASSWORD})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert urlsplit(location).netloc in ("", "localhost")
    assert location == (target if allowed else "/admin/")


def test_logging_out_signs_the_account_out_in_every_other_browser(app, organizer):
    first, second = app.test_client(), app.test_client()
    login(first, organizer.email)
    login(second, organizer.email)
    assert second.get("/admin/").status_code == 200
    first.post("/admin/logout")
    response = second.get("/admin/")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/admin/login"
    assert first.get("/admin/").status_code == 302
    # Signing in again works, in either browser.
    assert login(second, organizer.email).status_code == 302
    assert second.get("/admin/").status_code == 200


def _remember_cookie(app, email: str) -> str:
    """Sign in with "keep me signed in" and return the remember cookie's value."""
    browser = app.test_client()
    response = browser.post("/admin/login", data={"email": email, "password": PASSWORD, "remember": "y"})
    assert response.status_code == 302
    return browser.get_cookie("remember_token").value


def _signed_in_by_cookie_alone(app, cookie: str) -> bool:
    browser = app.test_client()
    browser.set_cookie("remember_token", cookie)
    return browser.get("/admin/").status_code == 200


def test_changing_the_password_ends_other_sessions_and_remember_cookies_but_not_this_one(app, organizer):
    other = app.test_client()
    login(other, organizer.email)
    cookie = _remember_cookie(app, organizer.email)
    assert _signed_in_by_cookie_alone(app, cookie)

    browser = app.test_client()
    login(browser, organizer.email)
    page = browser.get("/admin/account/password").get_data(as_text=True)
    assert "Current password" in page
    assert 'href="/admin/account/password"' in browser.get("/admin/").get_data(as_text=True)
    response = browser.post("/admin/account/password", data={
        "current_password": PASSWORD, "new_password": "a-new-secret-9", "confirm_password": "a-new-secret-9"},
        follow_redirects=True)
    assert response.status_code == 200 and "Your password is changed" in response.get_data(as_text=True)

    assert browser.get("/admin/").status_code == 200  # this browser stays signed in
    assert other.get("/admin/").status_code == 302
    assert not _signed_in_by_cookie_alone(app, cookie)
    assert login(app.test_client(), organizer.email).status_code == 200  # the old password is refused
    assert login(app.test_client(), organizer.email, "a-new-secret-9").status_code == 302


def test_logging_out_ends_remember_cookies_of_the_account(app, organizer):
    cookie = _remember_cookie(app, organizer.email)
    browser = app.test_client()
    login(browser, organizer.email)
    browser.post("/admin/logout")
    assert not _signed_in_by_cookie_alone(app, cookie)


@pytest.mark.parametrize("data, field, message", [
    ({"current_password": "wrong-password", "new_password": "a-new-secret-9", "confirm_password": "a-new-secret-9"},
     "current_password", "That is not your current password."),
    ({"current_password": PASSWORD, "new_password": "a-new-secret-9", "confirm_password": "a-new-secret-8"},
     "confirm_password", "The two new passwords are not the same."),
    ({"current_password": PASSWORD, "new_password": "short", "confirm_password": "short"},
     "new_password", "Use 8 to 1024 characters."),
    ({"current_password": "", "new_password": "", "confirm_password": ""},
     "current_password", "Enter your current password."),
])
def test_a_refused_password_change_says_why_beside_the_field_and_changes_nothing(
        organizer_client, organizer, data, field, message):
    response = organizer_client.post("/admin/account/password", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'<p class="error" id="{field}-error">{message}</p>' in page
    user = db.session.get(User, organizer.id)
    assert user.check_password(PASSWORD) and user.session_version == 0
    assert organizer_client.get("/admin/").status_code == 200


def test_set_password_command_sets_it_and_signs_the_account_out_everywhere(app, runner, organizer):
    browser = app.test_client()
    login(browser, organizer.email)
    result = runner.invoke(args=["convene", "set-password", "ORGANIZER@example.org", "--password", "from-the-cli-1"])
    assert result.exit_code == 0, result.output
    assert "Password changed for organizer@example.org" in result.output
    assert browser.get("/admin/").status_code == 302
    assert login(app.test_client(), organizer.email, "from-the-cli-1").status_code == 302


@pytest.mark.parametrize("args, message", [
    (["nobody@example.org", "--password", "long-enough-1"], "No account has that email."),
    (["organizer@example.org", "--password", "short"], "Passwords need at least 8 characters."),
])
def test_set_password_command_refuses_clearly(runner, organizer, args, message):
    result = runner.invoke(args=["convene", "set-password", *args])
    assert result.exit_code != 0 and message in result.output
    assert db.session.get(User, organizer.id).check_password(PASSWORD)


def test_set_password_command_prompts_twice_when_no_password_is_given(runner, organizer):
    result = runner.invoke(args=["convene", "set-password", organizer.email],
                           input="prompted-pass-1\nprompted-pass-1\n")
    assert result.exit_code == 0, result.output
    assert db.session.get(User, organizer.id).check_password("prompted-pass-1")


def _set_cookie_header(response, name: str) -> str:
    return next(value for value in response.headers.getlist("Set-Cookie") if value.startswith(f"{name}="))


def test_remember_cookie_is_http_only_and_same_site_lax(client, organizer):
    response = client.post("/admin/login", data={"email": organizer.email, "password": PASSWORD, "remember": "y"})
    cookie = _set_cookie_header(response, "remember_token")
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie


def test_remember_cookie_is_secure_under_the_production_config(app, app_config, organizer, monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "p" * 40)
    monkeypatch.setenv("DATABASE_URL", app_config["SQLALCHEMY_DATABASE_URI"])
    production = create_app({**app_config, "ENV_NAME": "production", "SECRET_KEY": "p" * 40,
                             "BASE_URL": "https://convene.example.org", "RATELIMIT_STORAGE_URI": "memory://"})
    try:
        browser = production.test_client()
        site = "https://convene.example.org"
        page = browser.get("/admin/login", base_url=site).get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        response = browser.post("/admin/login", base_url=site, headers={"Referer": f"{site}/admin/login"}, data={
            "csrf_token": token, "email": organizer.email, "password": PASSWORD, "remember": "y"})
        assert response.status_code == 302
        cookie = _set_cookie_header(response, "remember_token")
        assert "Secure" in cookie and "SameSite=Lax" in cookie and "HttpOnly" in cookie
    finally:
        with production.app_context():
            db.session.remove()
            db.engine.dispose()
