"""Teams against the real database and a real SMTP server: invitations, roles, the last owner."""
from __future__ import annotations

import hashlib
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import Invitation, Membership, OutboxMessage, TeamRole, User, utcnow
from convene.permissions import ROLE_PERMISSIONS, Permission, permissions
from convene.services import teams
from convene.services.users import authenticate
from tests.accounts import plain, tokens_sent
from tests.factories import make_convening, make_user
from tests.racing import race
from tests.services.test_mail import smtp  # noqa: F401  (the SMTP server fixture)

def members(convening_id: int) -> dict[str, str]:
    db.session.rollback()
    rows = db.session.execute(sa.select(User.email, Membership.role).join(Membership, Membership.user_id == User.id)
                              .where(Membership.convening_id == convening_id)).all()
    return dict(rows)


def owners(convening_id: int) -> int:
    return sum(1 for role in members(convening_id).values() if role == TeamRole.OWNER)


@pytest.fixture
def scene(app):
    """A convening with one owner, and another convening."""
    convening = make_convening(name="Toronto Cohort")
    other = make_convening(name="Berlin Cohort")
    owner = make_user("owner@example.org", role="owner", convening=convening)
    return convening, other, owner


# -- inviting ------------------------------------------------------------------------------------

def test_an_invitation_is_emailed_over_smtp_and_only_its_tokens_hash_is_kept(app, smtp, scene):
    convening, _, owner = scene
    invitation = teams.invite_member(convening.id, " New.Person@Example.org ", "finance", invited_by_id=owner.id)
    assert invitation.email == "new.person@example.org" and invitation.role == "finance"
    assert smtp.counts() == {db.session.scalar(sa.select(OutboxMessage.id)): 1}
    [token] = tokens_sent(smtp, "new.person@example.org")
    text = plain(smtp.messages[0])
    assert "Toronto Cohort" in text and "Finance" in text and "owner@example.org" in text
    db.session.rollback()
    stored = db.session.get(Invitation, invitation.id)
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr([getattr(stored, c.key) for c in Invitation.__table__.columns])
    days = app.config["INVITATION_MAX_AGE_DAYS"]
    assert timedelta(days=days, minutes=-1) < stored.expires_at - utcnow() <= timedelta(days=days)


def test_inviting_an_address_again_replaces_the_open_invitation_and_its_old_link_stops_working(app, smtp, scene):
    convening, _, owner = scene
    first = teams.invite_member(convening.id, "sam@example.org", "viewer", invited_by_id=owner.id)
    second = teams.invite_member(convening.id, "SAM@example.org", "desk", invited_by_id=owner.id)
    old_token, new_token = tokens_sent(smtp, "sam@example.org")
    assert [i.id for i in teams.pending_invitations(convening.id)] == [second.id]
    assert db.session.get(Invitation, first.id).revoked_at is not None
    with pytest.raises(ConveneError) as refused:
        teams.accept_invitation(old_token, name="Sam", password="long-enough-1")
    assert refused.value.code == "invitation_revoked" and members(convening.id) == {"owner@example.org": "owner"}
    teams.accept_invitation(new_token, name="Sam", password="long-enough-1")
    assert members(convening.id)["sam@example.org"] == "desk"


def test_inviting_someone_already_on_the_team_changes_nothing_and_says_so(app, smtp, scene):
    convening, other, owner = scene
    make_user("desk@example.org", role="desk", convening=convening)
    with pytest.raises(ConveneError) as refused:
        teams.invite_member(convening.id, "Desk@Example.org", "owner", invited_by_id=owner.id)
    assert refused.value.code == "already_member" and refused.value.field == "email"
    assert "desk@example.org" in refused.value.message and "Registration desk" in refused.value.message
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invitation)) == 0
    assert smtp.counts() == {} and members(convening.id)["desk@example.org"] == "desk"
    # On another convening the same person is not a member yet: inviting there works.
    teams.invite_member(other.id, "desk@example.org", "viewer", invited_by_id=owner.id)
    assert len(tokens_sent(smtp, "desk@example.org")) == 1


@pytest.mark.parametrize("email, role, code", [
    ("not an address", "viewer", "email_invalid"),
    ("someone@example.org", "emperor", "team_role_invalid"),
    ("someone@example.org", "", "team_role_invalid"),
])
def test_inviting_refuses_a_bad_address_or_an_unknown_role_and_writes_nothing(app, smtp, scene, email, role, code):
    convening, _, owner = scene
    with pytest.raises(ConveneError) as refused:
        teams.invite_member(convening.id, email, role, invited_by_id=owner.id)
    assert refused.value.code == code
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invitation)) == 0 and smtp.counts() == {}


# -- accepting -----------------------------------------------------------------------------------

def test_a_new_person_sets_a_password_and_gets_exactly_that_role_on_that_convening_and_no_other(app, smtp, scene):
    convening, other, owner = scene
    teams.invite_member(convening.id, "ana@example.org", "site_visit_lead", invited_by_id=owner.id)
    [token] = tokens_sent(smtp, "ana@example.org")
    membership = teams.accept_invitation(token, name="Ana Lima", password="a-good-password")
    user = db.session.get(User, membership.user_id)
    assert user.name == "Ana Lima" and not user.is_admin
    assert authenticate("ana@example.org", "a-good-password").id == user.id
    assert db.session.execute(sa.select(Membership.convening_id, Membership.role)
                              .where(Membership.user_id == user.id)).all() == [(convening.id, "site_visit_lead")]
    assert permissions(user, convening) == ROLE_PERMISSIONS[TeamRole.SITE_VISIT_LEAD]
    assert permissions(user, other) == frozenset()
    with pytest.raises(ConveneError) as again:  # the link works once
        teams.accept_invitation(token, name="Someone Else", password="another-password")
    assert again.value.code == "invitation_used"


def test_an_existing_account_must_sign_in_then_joins_with_its_own_password_unchanged(app, smtp, scene):
    convening, other, owner = scene
    existing = make_user("kim@example.org", role="viewer", convening=other)
    teams.invite_member(convening.id, "kim@example.org", "organizer", invited_by_id=owner.id)
    [token] = tokens_sent(smtp, "kim@example.org")
    with pytest.raises(ConveneError) as refused:
        teams.accept_invitation(token, name="Intruder", password="taking-it-over")
    assert refused.value.code == "invitation_sign_in" and "kim@example.org" in refused.value.message
    assert authenticate("kim@example.org", "taking-it-over") is None and "kim@example.org" not in members(convening.id)
    assert teams.find_invitation(token).account_exists
    teams.accept_invitation(token, user_id=existing.id)
    assert members(convening.id)["kim@example.org"] == "organizer" and members(other.id)["kim@example.org"] == "viewer"
    assert authenticate("kim@example.org", "correct-horse-battery") is not None


def test_a_signed_in_account_already_on_the_team_is_told_so_and_the_link_stays_open(app, smtp, scene):
    convening, _, owner = scene
    teams.invite_member(convening.id, "new@example.org", "viewer", invited_by_id=owner.id)
    [token] = tokens_sent(smtp, "new@example.org")
    with pytest.raises(ConveneError) as refused:
        teams.accept_invitation(token, user_id=owner.id)
    assert refused.value.code == "already_member_you" and members(convening.id) == {"owner@example.org": "owner"}
    assert teams.find_invitation(token).invitation.accepted_at is None


def _close(how: str, token: str, invitation_id: int, convening_id: int) -> None:
    if how == "expired":
        db.session.get(Invitation, invitation_id).expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    elif how == "revoked":
        teams.revoke_invitation(convening_id, invitation_id)
    elif how == "used":
        teams.accept_invitation(token, name="First", password="first-password")


@pytest.mark.parametrize("how, code", [
    ("expired", "invitation_expired"), ("revoked", "invitation_revoked"), ("used", "invitation_used"),
    ("tampered", "invitation_invalid"), ("empty", "invitation_invalid"),
])
def test_an_expired_revoked_used_or_tampered_link_is_refused_and_creates_nothing(app, smtp, scene, how, code):
    convening, _, owner = scene
    invitation = teams.invite_member(convening.id, "lee@example.org", "viewer", invited_by_id=owner.id)
    [token] = tokens_sent(smtp, "lee@example.org")
    _close(how, token, invitation.id, convening.id)
    before = (members(convening.id), db.session.scalar(sa.select(sa.func.count()).select_from(User)))
    used = {"tampered": token[:-1] + ("A" if token[-1] != "A" else "B"), "empty": ""}.get(how, token)
    with pytest.raises(ConveneError) as refused:
        teams.find_invitation(used)
    assert refused.value.code == code
    with pytest.raises(ConveneError) as refused:
        teams.accept_invitation(used, name="Lee", password="lee-password")
    assert refused.value.code == code and refused.value.status_code in (404, 410)
    assert (members(convening.id), db.session.scalar(sa.select(sa.func.count()).select_from(User))) == before


def test_a_weak_password_on_accepting_creates_nothing_and_the_link_still_works(app, smtp, scene):
    convening, _, owner = scene
    teams.invite_member(convening.id, "zoe@example.org", "viewer", invited_by_id=owner.id)
    [token] = tokens_sent(smtp, "zoe@example.org")
    with pytest.raises(ConveneError) as refused:
        teams.accept_invitation(token, name="Zoe", password="short")
    assert refused.value.code == "weak_password" and refused.value.field == "password"
    db.session.rollback()
    assert db.session.scalar(sa.select(User.id).where(User.email == "zoe@example.org")) is None
    teams.accept_invitation(token, name="Zoe", password="long-enough")
    assert members(convening.id)["zoe@example.org"] == "viewer"


def test_two_people_using_one_link_at_once_make_one_account_and_one_membership(app, smtp, scene):
    convening, _, owner = scene
    teams.invite_member(convening.id, "twin@example.org", "viewer", invited_by_id=owner.id)
    [token] = tokens_sent(smtp, "twin@example.org")

    def accept(n):
        return lambda: teams.accept_invitation(token, name=f"Twin {n}", password=f"password-{n}") and "joined"

    outcomes = race(app, [accept(n) for n in range(6)])
    assert outcomes.count("joined") == 1, outcomes
    assert set(outcomes) - {"joined"} <= {"invitation_used", "invitation_sign_in"}
    assert members(convening.id)["twin@example.org"] == "viewer"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.email == "twin@example.org")) == 1


# -- roles and the last owner --------------------------------------------------------------------

def test_an_owner_changes_a_members_role_and_their_permissions_follow(app, scene):
    convening, _, _ = scene
    viewer = make_user("v@example.org", role="viewer", convening=convening)
    member_id = db.session.scalar(sa.select(Membership.id).where(Membership.user_id == viewer.id))
    assert Permission.PAYMENTS_MANAGE not in permissions(viewer, convening)
    teams.change_member_role(convening.id, member_id, "finance")
    assert members(convening.id)["v@example.org"] == "finance"
    assert permissions(db.session.get(User, viewer.id), convening) == ROLE_PERMISSIONS[TeamRole.FINANCE]
    with pytest.raises(ConveneError) as refused:
        teams.change_member_role(convening.id, member_id, "superuser")
    assert refused.value.code == "team_role_invalid" and members(convening.id)["v@example.org"] == "finance"


def test_the_last_owner_can_be_neither_demoted_nor_removed_until_there_is_another(app, scene):
    convening, _, owner = scene
    owner_member = db.session.scalar(sa.select(Membership.id).where(Membership.user_id == owner.id))
    for action, code in [(lambda: teams.change_member_role(convening.id, owner_member, "organizer"),
                          "last_owner_demoted"),
                         (lambda: teams.remove_member(convening.id, owner_member), "last_owner_removed")]:
        with pytest.raises(ConveneError) as refused:
            action()
        assert refused.value.code == code and members(convening.id) == {"owner@example.org": "owner"}
    second = make_user("second@example.org", role="organizer", convening=convening)
    second_member = db.session.scalar(sa.select(Membership.id).where(Membership.user_id == second.id))
    teams.change_member_role(convening.id, second_member, "owner")
    teams.remove_member(convening.id, owner_member)
    assert members(convening.id) == {"second@example.org": "owner"}


def test_a_member_of_another_convening_cannot_be_changed_through_this_one(app, scene):
    convening, other, _ = scene
    elsewhere = make_user("else@example.org", role="viewer", convening=other)
    member_id = db.session.scalar(sa.select(Membership.id).where(Membership.user_id == elsewhere.id))
    for action in (lambda: teams.change_member_role(convening.id, member_id, "owner"),
                   lambda: teams.remove_member(convening.id, member_id)):
        with pytest.raises(ConveneError) as refused:
            action()
        assert refused.value.code == "member_not_found" and refused.value.status_code == 404
    assert members(other.id) == {"else@example.org": "viewer"}


@pytest.fixture
def slow_owner_count(monkeypatch):
    """Widen the window between counting owners and writing, so racers without a lock would both pass the check."""
    counted = teams._owner_count

    def slow(convening_id):
        result = counted(convening_id)
        time.sleep(0.3)
        return result

    monkeypatch.setattr(teams, "_owner_count", slow)


@pytest.mark.parametrize("action", ["demote", "remove"])
def test_two_owners_demoting_or_removing_each_other_at_once_leave_exactly_one_owner(app, scene, slow_owner_count,
                                                                                     action):
    convening, _, first = scene
    second = make_user("second@example.org", role="owner", convening=convening)
    ids = {user.id: db.session.scalar(sa.select(Membership.id).where(Membership.user_id == user.id))
           for user in (first, second)}

    def act(member_id):
        if action == "demote":
            return lambda: teams.change_member_role(convening.id, member_id, "viewer") and "done"
        return lambda: teams.remove_member(convening.id, member_id) or "done"

    outcomes = race(app, [act(ids[first.id]), act(ids[second.id])])
    assert sorted(outcomes) == sorted(["done", f"last_owner_{'demoted' if action == 'demote' else 'removed'}"])
    assert owners(convening.id) == 1


def test_revoking_needs_an_open_invitation_of_this_convening(app, smtp, scene):
    convening, other, owner = scene
    invitation = teams.invite_member(convening.id, "x@example.org", "viewer", invited_by_id=owner.id)
    with pytest.raises(ConveneError) as refused:
        teams.revoke_invitation(other.id, invitation.id)
    assert refused.value.code == "invitation_not_found"
    teams.revoke_invitation(convening.id, invitation.id)
    with pytest.raises(ConveneError) as refused:
        teams.revoke_invitation(convening.id, invitation.id)
    assert refused.value.code == "invitation_not_open"
