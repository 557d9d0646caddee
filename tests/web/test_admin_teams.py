"""The team pages and accepting an invitation, through the browser's eyes."""
from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from convene.extensions import db
from convene.models import Invitation, Membership, OutboxMessage, TeamRole, User, utcnow
from convene.permissions import ROLE_PERMISSIONS, permissions
from convene.services import teams
from tests.accounts import INVITE_LINK, PASSWORD, emailed_path, post_hostile_values, signed_in_as
from tests.conftest import login
from tests.factories import make_convening, make_user

def team_of(convening_id: int) -> dict[str, str]:
    db.session.rollback()
    return dict(db.session.execute(
        sa.select(User.email, Membership.role).join(Membership, Membership.user_id == User.id)
        .where(Membership.convening_id == convening_id)).all())


def member_id(email: str, convening_id: int) -> int:
    return db.session.scalar(sa.select(Membership.id).join(User, User.id == Membership.user_id)
                             .where(User.email == email, Membership.convening_id == convening_id))


@pytest.fixture
def scene(app):
    convening = make_convening(name="Toronto Cohort")
    other = make_convening(name="Berlin Cohort")
    make_user("owner@example.org", role="owner", convening=convening)
    return convening, other


@pytest.fixture
def owner_client(client, scene):
    login(client, "owner@example.org")
    return client


# -- inviting and accepting ----------------------------------------------------------------------

def test_a_new_person_invited_by_an_owner_sets_a_password_and_lands_signed_in_with_that_role_only(
        app, owner_client, scene, outbox):
    convening, other = scene
    response = owner_client.post(f"/admin/c/{convening.id}/team/invite",
                                 data={"email": "Ana@Example.org", "role": "finance"})
    assert response.status_code == 302
    page = owner_client.get(f"/admin/c/{convening.id}/team").text
    assert "ana@example.org" in page and "is invited as Finance" in page
    assert len(outbox.to("ana@example.org")) == 1
    path = emailed_path(outbox, "ana@example.org")

    browser = app.test_client()
    form = browser.get(path)
    assert form.status_code == 200 and "Choose a password" in form.text and "Toronto Cohort" in form.text
    assert "Finance" in form.text
    joined = browser.post(path, data={"name": "Ana Lima", "password": "ana-password-1",
                                      "confirm_password": "ana-password-1"})
    assert joined.status_code == 302 and urlsplit(joined.headers["Location"]).path == f"/admin/c/{convening.id}/"
    assert browser.get(f"/admin/c/{convening.id}/").status_code == 200  # signed in, and may see it
    assert signed_in_as(browser) == "ana@example.org"
    assert browser.get(f"/admin/c/{convening.id}/team").status_code == 403  # a member, without the team permission
    assert browser.get(f"/admin/c/{other.id}/team").status_code == 404  # not a member there at all
    user = db.session.scalar(sa.select(User).where(User.email == "ana@example.org"))
    assert user.name == "Ana Lima" and not user.is_admin
    assert db.session.execute(sa.select(Membership.convening_id, Membership.role)
                              .where(Membership.user_id == user.id)).all() == [(convening.id, "finance")]
    assert permissions(user, convening) == ROLE_PERMISSIONS[TeamRole.FINANCE]
    assert permissions(user, other) == frozenset()
    # The link worked once.
    again = app.test_client().get(path)
    assert again.status_code == 410 and "already accepted" in again.text


def test_an_existing_account_is_sent_to_sign_in_and_back_then_joins(app, owner_client, scene, outbox):
    convening, other = scene
    make_user("kim@example.org", role="viewer", convening=other)
    owner_client.post(f"/admin/c/{convening.id}/team/invite", data={"email": "kim@example.org", "role": "desk"})
    path = emailed_path(outbox, "kim@example.org")
    browser = app.test_client()
    page = browser.get(path)
    assert page.status_code == 200 and 'id="sign-in-first"' in page.text and 'name="password"' not in page.text
    [login_href] = re.findall(r'href="([^"]*/admin/login[^"]*)"', page.text)
    assert parse_qs(urlsplit(login_href.replace("&amp;", "&")).query)["next"] == [path]
    # Posting a password anyway neither makes an account nor takes the existing one over.
    refused = browser.post(path, data={"name": "X", "password": "taking-over-1", "confirm_password": "taking-over-1"})
    assert refused.status_code == 400 and "kim@example.org" not in team_of(convening.id)
    signed = browser.post(login_href.replace("&amp;", "&"), data={"email": "kim@example.org", "password": PASSWORD})
    assert signed.status_code == 302 and signed.headers["Location"] == path
    assert "Join as kim@example.org" in browser.get(path).text
    joined = browser.post(path)
    assert joined.status_code == 302 and team_of(convening.id)["kim@example.org"] == "desk"
    assert team_of(other.id)["kim@example.org"] == "viewer"


def test_a_signed_in_account_with_another_email_is_told_whose_account_joins(app, owner_client, scene, outbox):
    convening, _ = scene
    make_user("me@example.org", role="viewer", convening=make_convening())
    owner_client.post(f"/admin/c/{convening.id}/team/invite", data={"email": "old-address@example.org",
                                                                    "role": "viewer"})
    path = emailed_path(outbox, "old-address@example.org")
    browser = app.test_client()
    login(browser, "me@example.org")
    page = browser.get(path).text
    assert "You are signed in as me@example.org" in page
    assert browser.post(path).status_code == 302 and team_of(convening.id)["me@example.org"] == "viewer"


@pytest.mark.parametrize("how, status, words", [
    ("expired", 410, "has expired"),
    ("revoked", 410, "withdrawn or replaced"),
    ("replaced", 410, "withdrawn or replaced"),
    ("used", 410, "already accepted"),
    ("tampered", 404, "not valid"),
])
def test_a_closed_or_tampered_link_shows_a_clear_page_and_changes_nothing(
        app, owner_client, scene, outbox, how, status, words):
    convening, _ = scene
    owner_client.post(f"/admin/c/{convening.id}/team/invite", data={"email": "lee@example.org", "role": "viewer"})
    path = emailed_path(outbox, "lee@example.org")
    invitation = db.session.scalar(sa.select(Invitation))
    if how == "expired":
        invitation.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    elif how == "revoked":
        assert owner_client.post(f"/admin/c/{convening.id}/team/invitations/{invitation.id}/revoke").status_code == 302
    elif how == "replaced":
        owner_client.post(f"/admin/c/{convening.id}/team/invite", data={"email": "lee@example.org", "role": "owner"})
    elif how == "used":
        app.test_client().post(path, data={"name": "Lee", "password": "lee-password",
                                           "confirm_password": "lee-password"})
    elif how == "tampered":
        path = path[:-1] + ("A" if not path.endswith("A") else "B")
    before = (team_of(convening.id), db.session.scalar(sa.select(sa.func.count()).select_from(User)))
    browser = app.test_client()
    page = browser.get(path)
    assert page.status_code == status and words in page.text and 'id="link-closed"' in page.text
    posted = browser.post(path, data={"name": "Mallory", "password": "mallory-pass",
                                      "confirm_password": "mallory-pass"})
    assert posted.status_code == status and words in posted.text
    assert (team_of(convening.id), db.session.scalar(sa.select(sa.func.count()).select_from(User))) == before
    assert signed_in_as(browser) is None


def test_the_accept_form_refuses_bad_input_beside_each_field_and_creates_nothing(app, owner_client, scene, outbox):
    convening, _ = scene
    owner_client.post(f"/admin/c/{convening.id}/team/invite", data={"email": "zed@example.org", "role": "viewer"})
    path = emailed_path(outbox, "zed@example.org")
    browser = app.test_client()
    for data, message in [
        ({"name": "", "password": "long-enough", "confirm_password": "long-enough"}, "Enter your name."),
        ({"name": "Zed", "password": "short", "confirm_password": "short"}, "Use 8 to 1024 characters."),
        ({"name": "Zed", "password": "long-enough", "confirm_password": "different!"}, "not the same"),
        ({"name": "\x07\u202e" + "x" * 500, "password": "long-enough", "confirm_password": "long-enough"},
         "Field cannot be longer than 160 characters."),
    ]:
        response = browser.post(path, data=data)
        assert response.status_code == 400 and message in response.text and 'aria-invalid="true"' in response.text
    assert db.session.scalar(sa.select(User.id).where(User.email == "zed@example.org")) is None
    assert browser.post(path, data={"name": "Zed", "password": "long-enough",
                                    "confirm_password": "long-enough"}).status_code == 302


def test_inviting_again_sends_a_new_link_and_the_page_shows_one_open_invitation(owner_client, scene, outbox):
    convening, _ = scene
    for role in ("viewer", "desk"):
        owner_client.post(f"/admin/c/{convening.id}/team/invite", data={"email": "sam@example.org", "role": role})
    first, second = [INVITE_LINK.search(outbox.text(m)).group(1) for m in outbox.to("sam@example.org")]
    assert first != second
    page = owner_client.get(f"/admin/c/{convening.id}/team").text
    [row] = re.findall(r'<tr id="invitation-\d+">(.*?)</tr>', page, re.S)
    assert "sam@example.org" in row and "Registration desk" in row


def test_inviting_a_member_or_a_bad_address_says_so_beside_the_field_and_sends_nothing(owner_client, scene, outbox):
    convening, _ = scene
    make_user("desk@example.org", role="desk", convening=convening)
    for data, message in [
        ({"email": "desk@example.org", "role": "owner"}, "is already on this convening&#39;s team"),
        ({"email": "not-an-address", "role": "viewer"}, "Enter an email address like name@example.org."),
        ({"email": "someone@example.org", "role": "emperor"}, "Choose one of the roles listed."),
        ({"email": "a\r\nBcc: x@example.org", "role": "viewer"}, "Enter an email address"),
    ]:
        response = owner_client.post(f"/admin/c/{convening.id}/team/invite", data=data)
        assert response.status_code == 400 and message in response.text, data
        assert 'aria-invalid="true"' in response.text
    assert outbox.messages() == [] and db.session.scalar(sa.select(sa.func.count()).select_from(Invitation)) == 0
    assert team_of(convening.id)["desk@example.org"] == "desk"


# -- roles and removal ---------------------------------------------------------------------------

def test_an_owner_changes_a_role_from_the_team_page(owner_client, scene):
    convening, _ = scene
    make_user("v@example.org", role="viewer", convening=convening)
    page = owner_client.get(f"/admin/c/{convening.id}/team").text
    assert "v@example.org" in page and "Viewer" in page
    response = owner_client.post(f"/admin/c/{convening.id}/team/{member_id('v@example.org', convening.id)}/role",
                                 data={"role": "organizer"})
    assert response.status_code == 302 and team_of(convening.id)["v@example.org"] == "organizer"
    bad = owner_client.post(f"/admin/c/{convening.id}/team/{member_id('v@example.org', convening.id)}/role",
                            data={"role": "<script>"})
    assert bad.status_code == 400 and "Choose one of the roles listed." in bad.text
    assert team_of(convening.id)["v@example.org"] == "organizer"


def test_the_last_owner_can_be_neither_demoted_nor_removed_from_the_page(owner_client, scene):
    convening, _ = scene
    mine = member_id("owner@example.org", convening.id)
    demoted = owner_client.post(f"/admin/c/{convening.id}/team/{mine}/role", data={"role": "viewer"})
    assert demoted.status_code == 400 and "only owner" in demoted.text
    removed = owner_client.post(f"/admin/c/{convening.id}/team/{mine}/remove")
    assert removed.status_code == 400 and "only owner" in removed.text
    assert team_of(convening.id) == {"owner@example.org": "owner"}
    assert "Leave the team" not in owner_client.get(f"/admin/c/{convening.id}/team").text


def test_removing_a_member_or_oneself_asks_for_confirmation_first(owner_client, scene):
    convening, _ = scene
    make_user("co@example.org", role="owner", convening=convening)
    theirs, mine = member_id("co@example.org", convening.id), member_id("owner@example.org", convening.id)
    confirm = owner_client.get(f"/admin/c/{convening.id}/team/{theirs}/remove")
    assert confirm.status_code == 200 and "Remove co from the team?" in confirm.text
    assert team_of(convening.id) == {"owner@example.org": "owner", "co@example.org": "owner"}
    assert owner_client.post(f"/admin/c/{convening.id}/team/{theirs}/remove").status_code == 302
    assert team_of(convening.id) == {"owner@example.org": "owner"}
    make_user("co2@example.org", role="owner", convening=convening)
    confirm = owner_client.get(f"/admin/c/{convening.id}/team/{mine}/remove")
    assert confirm.status_code == 200 and "Leave the team of Toronto Cohort?" in confirm.text
    left = owner_client.post(f"/admin/c/{convening.id}/team/{mine}/remove")
    assert left.status_code == 302 and urlsplit(left.headers["Location"]).path == "/admin/"
    assert team_of(convening.id) == {"co2@example.org": "owner"}
    assert owner_client.get(f"/admin/c/{convening.id}/team").status_code == 404


# -- who may use the team pages ------------------------------------------------------------------

TEAM_REQUESTS = [
    ("get", "/admin/c/{c}/team", {}),
    ("post", "/admin/c/{c}/team/invite", {"email": "new@example.org", "role": "owner"}),
    ("post", "/admin/c/{c}/team/{m}/role", {"role": "viewer"}),
    ("get", "/admin/c/{c}/team/{m}/remove", {}),
    ("post", "/admin/c/{c}/team/{m}/remove", {}),
    ("post", "/admin/c/{c}/team/invitations/{i}/revoke", {}),
]


@pytest.fixture
def team_scene(scene, outbox):
    """A second owner (the target of the requests) and an open invitation; the outsiders who try them."""
    convening, other = scene
    make_user("target@example.org", role="owner", convening=convening)
    invitation = teams.invite_member(convening.id, "pending@example.org", "viewer", invited_by_id=None)
    make_user("organizer@team.example", role="organizer", convening=convening)
    make_user("desk@team.example", role="desk", convening=convening)
    make_user("viewer@team.example", role="viewer", convening=convening)
    make_user("other-owner@team.example", role="owner", convening=other)
    return {"c": convening.id, "m": member_id("target@example.org", convening.id), "i": invitation.id}


def _state(convening_id: int):
    db.session.rollback()
    return (team_of(convening_id),
            db.session.execute(sa.select(Invitation.email, Invitation.revoked_at, Invitation.role)).all(),
            db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)))


@pytest.mark.one_database  # who may open what is decided in Python, the same on either database
@pytest.mark.parametrize("who, status", [
    ("organizer@team.example", 403), ("desk@team.example", 403), ("viewer@team.example", 403),
    ("other-owner@team.example", 404), (None, 302),
])
@pytest.mark.parametrize("method, url, data", TEAM_REQUESTS, ids=[f"{m} {u}" for m, u, _ in TEAM_REQUESTS])
def test_only_owners_may_open_or_use_the_team_pages(client, team_scene, who, status, method, url, data):
    if who:
        login(client, who)
    before = _state(team_scene["c"])
    response = getattr(client, method)(url.format(**team_scene), data=data)
    assert response.status_code == status
    if status == 302:
        assert urlsplit(response.headers["Location"]).path == "/admin/login"
    assert _state(team_scene["c"]) == before


@pytest.mark.one_database  # who may open what is decided in Python, the same on either database
@pytest.mark.parametrize("who", ["owner@example.org", "admin@example.org"])
@pytest.mark.parametrize("method, url, data", TEAM_REQUESTS, ids=[f"{m} {u}" for m, u, _ in TEAM_REQUESTS])
def test_owners_and_platform_administrators_may_use_the_team_pages(client, team_scene, who, method, url, data):
    make_user("admin@example.org", role="organizer")  # a platform administrator, member of nothing
    login(client, who)
    before = _state(team_scene["c"])
    response = getattr(client, method)(url.format(**team_scene), data=data)
    assert response.status_code == (200 if method == "get" else 302)
    assert (_state(team_scene["c"]) == before) is (method == "get")


def test_the_team_link_shows_only_to_those_who_may_manage_the_team(client, team_scene):
    for who, shown in [("owner@example.org", True), ("organizer@team.example", False), ("desk@team.example", False)]:
        login(client, who)
        page = client.get(f"/admin/c/{team_scene['c']}/").text
        assert (f'href="/admin/c/{team_scene["c"]}/team"' in page) is shown, who
        client.post("/admin/logout")


# -- hostile input on the new forms (the route walkers in test_hostile_input.py reach them with the demo's ids) --

def test_hostile_values_in_the_team_and_invitation_forms_never_give_a_server_error(app, owner_client, scene, outbox):
    convening, _ = scene
    make_user("v@example.org", role="viewer", convening=convening)
    member = member_id("v@example.org", convening.id)
    invitation = teams.invite_member(convening.id, "open@example.org", "viewer", invited_by_id=None)
    invite_path = emailed_path(outbox, "open@example.org")
    before = _state(convening.id)
    post_hostile_values([
        (owner_client, f"/admin/c/{convening.id}/team/invite", ("email", "role"),
         {"email": "someone@example.org", "role": "viewer"}),
        (owner_client, f"/admin/c/{convening.id}/team/{member}/role", ("role",), {"role": "viewer"}),
        (app.test_client(), invite_path, ("name", "password", "confirm_password"),
         {"name": "Someone", "password": "", "confirm_password": "x"}),
    ])
    assert _state(convening.id)[0] == before[0]  # nobody joined, nobody's role changed
    assert db.session.get(Invitation, invitation.id).accepted_at is None
