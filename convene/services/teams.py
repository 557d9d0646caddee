"""A convening's team: inviting people by email, accepting, changing roles, removing members.

Every change locks the convening's row first, so changes to one team happen one after another: the
count of owners read under that lock is the count the change leaves behind, and a convening never
loses its last owner, however many owners act at once.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext

from convene.emails import sendable_address
from convene.errors import ConveneError, NotFound
from convene.extensions import db
from convene.i18n import staff_language
from convene.models import TEAM_ROLE_LABELS, Convening, Invitation, Membership, TeamRole, User, utcnow
from convene.models.teams import ActorKind
from convene.permissions import forget_roles
from convene.services.audit import Actor, acting_as, name_action
from convene.services.db import lock, unit_of_work
from convene.services.mail import queue_email
from convene.services.registrations import external_url
from convene.services.users import create_user

ROLES = tuple(TeamRole)


def token_hash(token: str) -> str:
    """What the database keeps of an invitation's token: its SHA-256, so a copy of the table opens no link."""
    return hashlib.sha256((token or "").encode("utf-8", "surrogatepass")).hexdigest()


def invitation_url(token: str) -> str:
    return external_url("admin.accept_invitation", token=token)


def role_label(role: str) -> str:
    return TEAM_ROLE_LABELS.get(role, role)


def _check_role(role: str, field: str = "role") -> str:
    if role not in ROLES:
        raise ConveneError("team_role_invalid", field=field)
    return role


def _lock_convening(convening_id: int) -> Convening:
    found = lock(Convening, convening_id)
    if not found:
        raise NotFound("convening_not_found")
    return found[0]


def _member_of(convening_id: int, member_id: int) -> Membership:
    """This convening's own membership `member_id`, locked; else member_not_found."""
    found = lock(Membership, member_id)
    if not found or found[0].convening_id != convening_id:
        raise NotFound("member_not_found")
    return found[0]


def _owner_count(convening_id: int) -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(Membership).where(
        Membership.convening_id == convening_id, Membership.role == TeamRole.OWNER)).scalar_one()


def _open_invitations(convening_id: int, email: str) -> list[Invitation]:
    now = utcnow()
    return list(db.session.execute(sa.select(Invitation).where(
        Invitation.convening_id == convening_id, Invitation.email == email, Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None), Invitation.expires_at > now)).scalars())


def _membership(convening_id: int, user_id: int) -> Membership | None:
    return db.session.execute(sa.select(Membership).where(
        Membership.convening_id == convening_id, Membership.user_id == user_id)).scalar_one_or_none()


# -- inviting ------------------------------------------------------------------------------------

def invite_member(convening_id: int, email: str, role: str, *, invited_by_id: int | None) -> Invitation:
    """Email `email` a link to join the convening's team as `role`; it works once, until it expires.

    Inviting an address again replaces its open invitation (the older link stops working). Someone
    already on the team is not invited: `already_member` says so and nothing changes.
    """
    address = sendable_address(email).lower()
    _check_role(role)
    token = secrets.token_urlsafe(32)
    with unit_of_work():
        convening = _lock_convening(convening_id)
        user_id = db.session.execute(sa.select(User.id).where(User.email == address)).scalar_one_or_none()
        member = _membership(convening.id, user_id) if user_id is not None else None
        if member is not None:
            raise ConveneError("already_member", field="email", email=address, role=role_label(member.role))
        now = utcnow()
        for older in _open_invitations(convening.id, address):
            older.revoked_at = now
            name_action(older, "invitation.replaced")
        invitation = Invitation(
            convening_id=convening.id, email=address, role=role, token_hash=token_hash(token),
            invited_by_id=invited_by_id, created_at=now,
            expires_at=now + timedelta(days=current_app.config["INVITATION_MAX_AGE_DAYS"]),
        )
        db.session.add(invitation)
        db.session.flush()
        inviter = db.session.get(User, invited_by_id) if invited_by_id is not None else None
        queue_email("invitation", address,
                    lambda: gettext("You are invited to the team of %(convening)s", convening=convening.name), "invitation",
                    convening=convening, invitation=invitation, role=role_label(role), inviter=inviter,
                    url=invitation_url(token), language=staff_language(convening))
    return invitation


def revoke_invitation(convening_id: int, invitation_id: int) -> Invitation:
    """Withdraw an open invitation: its link stops working."""
    with unit_of_work():
        _lock_convening(convening_id)
        found = lock(Invitation, invitation_id)
        if not found or found[0].convening_id != convening_id:
            raise NotFound("invitation_not_found")
        invitation = found[0]
        if not invitation.is_open():
            raise ConveneError("invitation_not_open")
        invitation.revoked_at = utcnow()
        name_action(invitation, "invitation.revoked")
    return invitation


# -- accepting -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class InvitationView:
    """An invitation as its accept page needs it: whether an account has its email, and the convening."""

    invitation: Invitation
    convening: Convening
    account_exists: bool


def _check_open(invitation: Invitation) -> None:
    """Refuse an invitation that was used, withdrawn (or replaced) or has expired, each with its own page."""
    if invitation.accepted_at is not None:
        raise ConveneError("invitation_used", status_code=410)
    if invitation.revoked_at is not None:
        raise ConveneError("invitation_revoked", status_code=410)
    if not invitation.is_open():
        raise ConveneError("invitation_expired", status_code=410)


def _invitation_by_token(token: str) -> Invitation:
    """The open invitation this token opens; ConveneError saying why not (unknown, used, withdrawn, expired)."""
    invitation = db.session.execute(
        sa.select(Invitation).where(Invitation.token_hash == token_hash(token))).scalar_one_or_none()
    if invitation is None:
        raise ConveneError("invitation_invalid", status_code=404)
    _check_open(invitation)
    return invitation


def find_invitation(token: str) -> InvitationView:
    """What the accept page shows for this link; ConveneError when the link no longer opens anything."""
    invitation = _invitation_by_token(token)
    exists = db.session.execute(sa.select(User.id).where(User.email == invitation.email)).first() is not None
    return InvitationView(invitation, db.session.get(Convening, invitation.convening_id), exists)


def accept_invitation(token: str, *, user_id: int | None = None, name: str | None = None,
                      password: str | None = None) -> Membership:
    """Join the team the link invites to: as the signed-in account `user_id`, or as a new account.

    Without `user_id`, an account is made for the invitation's email with `name` and `password`; if
    that email already has an account, its owner must sign in first (`invitation_sign_in`). The
    link works once.
    """
    with unit_of_work():
        invitation = _invitation_by_token(token)
        _lock_convening(invitation.convening_id)
        # Locked and checked again: of two people using one link at once, the second finds it used.
        invitation = lock(Invitation, invitation.id)[0]
        _check_open(invitation)
        if user_id is not None:
            user = db.session.get(User, user_id)
            if user is None or not user.active:
                raise ConveneError("invitation_sign_in", email=invitation.email)
        else:
            if db.session.execute(sa.select(User.id).where(User.email == invitation.email)).first():
                raise ConveneError("invitation_sign_in", email=invitation.email)
            with acting_as(Actor(ActorKind.ACCOUNT, None, invitation.email)):
                user = create_user(invitation.email, password or "", name=(name or "").strip())
                db.session.flush()
        with acting_as(Actor(ActorKind.ACCOUNT, user.id, user.email)):
            existing = _membership(invitation.convening_id, user.id)
            if existing is not None:
                raise ConveneError("already_member_you", role=role_label(existing.role))
            membership = Membership(user_id=user.id, convening_id=invitation.convening_id, role=invitation.role)
            db.session.add(membership)
            invitation.accepted_at = utcnow()
            name_action(invitation, "invitation.accepted")
            db.session.flush()
    forget_roles()
    return membership


# -- roles and removal ---------------------------------------------------------------------------

def change_member_role(convening_id: int, member_id: int, role: str) -> Membership:
    """Give a member another role on the convening; the last owner cannot stop being one."""
    _check_role(role)
    with unit_of_work():
        _lock_convening(convening_id)
        member = _member_of(convening_id, member_id)
        if member.role == role:
            return member
        if member.role == TeamRole.OWNER and _owner_count(convening_id) <= 1:
            raise ConveneError("last_owner_demoted", field="role")
        member.role = role
        name_action(member, "member.role_changed")
    forget_roles()
    return member


def remove_member(convening_id: int, member_id: int) -> None:
    """Take a member off the convening's team (their account stays); the last owner cannot be removed."""
    with unit_of_work():
        _lock_convening(convening_id)
        member = _member_of(convening_id, member_id)
        if member.role == TeamRole.OWNER and _owner_count(convening_id) <= 1:
            raise ConveneError("last_owner_removed")
        db.session.delete(member)
    forget_roles()


# -- reading -------------------------------------------------------------------------------------

def team_of(convening_id: int) -> list[Membership]:
    """The convening's own members, owners first, then by name."""
    order = sa.case({role: n for n, role in enumerate(ROLES)}, value=Membership.role)
    return list(db.session.execute(
        sa.select(Membership).join(User, User.id == Membership.user_id)
        .where(Membership.convening_id == convening_id)
        .order_by(order, sa.func.lower(User.name), User.email)).scalars())


def everywhere_members() -> list[Membership]:
    """Accounts with a role on every convening (set by platform administrators): shown, not managed, here."""
    return list(db.session.execute(
        sa.select(Membership).join(User, User.id == Membership.user_id)
        .where(Membership.convening_id.is_(None)).order_by(User.email)).scalars())


def pending_invitations(convening_id: int) -> list[Invitation]:
    """Invitations still open, newest first."""
    now = utcnow()
    return list(db.session.execute(sa.select(Invitation).where(
        Invitation.convening_id == convening_id, Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None), Invitation.expires_at > now).order_by(Invitation.created_at.desc(),
                                                                                Invitation.id.desc())).scalars())
