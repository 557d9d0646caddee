"""What each team role may do, and the one function every view, template and command asks: `can()`."""
from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa

from convene.models.teams import Membership, TeamRole


class Permission(StrEnum):
    VIEW = "convening.view"  # see the convening in the back office at all
    SETUP_VIEW = "setup.view"  # read the settings, tickets, questions, delegations and privacy pages
    EDIT = "convening.edit"  # settings, tickets, questions, delegations, privacy
    DELETE = "convening.delete"
    COPY = "convening.copy"  # copy for a new edition
    TEAM = "team.manage"
    AUDIT = "audit.view"
    REGISTRATIONS_VIEW = "registrations.view"
    REGISTRATIONS_EDIT = "registrations.edit"
    BADGES_EDIT = "registrations.badge"  # names and organization on a badge, walk-ins
    PAYMENTS_VIEW = "payments.view"
    PAYMENTS_MANAGE = "payments.manage"  # refunds, invoices, desk payments, codes
    PRINT = "printing"
    CHECKIN = "checkin"
    VISITS_VIEW = "visits.view"
    VISITS_MANAGE = "visits.manage"
    SCHEDULE_VIEW = "schedule.view"
    SCHEDULE_MANAGE = "schedule.manage"
    MESSAGES = "messages.send"


_READ = {Permission.VIEW, Permission.SETUP_VIEW, Permission.REGISTRATIONS_VIEW, Permission.PAYMENTS_VIEW,
         Permission.VISITS_VIEW, Permission.SCHEDULE_VIEW, Permission.AUDIT}

ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    TeamRole.OWNER: frozenset(Permission),
    TeamRole.ORGANIZER: frozenset(Permission) - {Permission.TEAM, Permission.DELETE},
    TeamRole.FINANCE: frozenset({Permission.VIEW, Permission.SETUP_VIEW, Permission.REGISTRATIONS_VIEW,
                                 Permission.PAYMENTS_VIEW, Permission.PAYMENTS_MANAGE, Permission.AUDIT}),
    TeamRole.DESK: frozenset({Permission.VIEW, Permission.REGISTRATIONS_VIEW, Permission.BADGES_EDIT,
                              Permission.PRINT, Permission.CHECKIN, Permission.VISITS_VIEW,
                              Permission.SCHEDULE_VIEW}),
    # Leads take their groups onto the bus, so they scan (any list: a group may also meet at the door); walk-ins,
    # badge fixes and undoing a check-in stay with the desk and organizers.
    TeamRole.SITE_VISIT_LEAD: frozenset({Permission.VIEW, Permission.REGISTRATIONS_VIEW, Permission.VISITS_VIEW,
                                         Permission.VISITS_MANAGE, Permission.PRINT, Permission.CHECKIN}),
    TeamRole.VIEWER: frozenset(_READ),
}


def _roles(user, convening_id: int | None) -> set[str]:
    """The user's roles that hold on this convening (its own and every-convening ones), cached per request."""
    from flask import g, has_app_context

    from convene.extensions import db

    cache = g.setdefault("_convene_roles", {}) if has_app_context() else {}
    key = (user.id, convening_id)
    if key not in cache:
        where = Membership.convening_id.is_(None)
        if convening_id is not None:
            where = sa.or_(where, Membership.convening_id == convening_id)
        cache[key] = set(db.session.execute(
            sa.select(Membership.role).where(Membership.user_id == user.id, where)).scalars())
    return cache[key]


def forget_roles() -> None:
    """Drop the per-request cache after memberships change within the request."""
    from flask import g, has_app_context

    if has_app_context():
        g.pop("_convene_roles", None)


def permissions(user, convening) -> frozenset[Permission]:
    """Every permission the user holds on the convening (a convening, its id, or None for none in particular)."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "active", True):
        return frozenset()
    if user.is_admin:
        return frozenset(Permission)
    convening_id = getattr(convening, "id", convening)
    held: set[Permission] = set()
    for role in _roles(user, convening_id):
        held |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(held)


def can(user, permission: Permission | str, convening=None) -> bool:
    """May this account do this on this convening? Platform administrators may do anything."""
    return Permission(permission) in permissions(user, convening)


def visible_convening_ids(user) -> set[int] | None:
    """Ids of the convenings the user may see in the back office; None means every one."""
    from convene.extensions import db

    if user.is_admin or db.session.execute(sa.select(Membership.id).where(
            Membership.user_id == user.id, Membership.convening_id.is_(None)).limit(1)).first():
        return None
    return set(db.session.execute(sa.select(Membership.convening_id).where(
        Membership.user_id == user.id)).scalars())
