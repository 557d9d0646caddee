"""Who may open each back-office page: one rule per view, checked before the view runs.

Every view under /admin carries a rule (`@allow(read, write)`): the permission a GET needs and the one
a POST needs. A view without a rule is refused to everyone, so a new page is closed until someone
decides who may use it. Pages of a convening (`convening_id` in the URL) answer 404 to an account with
no role on that convening, so ids of other convenings tell nothing, and 403 to a member whose role
lacks the permission.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import abort, current_app, request
from flask_login import current_user

from convene.permissions import Permission, can, permissions

PUBLIC = "public"  # no account needed (sign-in, accepting an invitation, resetting a password)
SIGNED_IN = "signed_in"  # any signed-in account (its own password, the list of its convenings)
ADMIN = "admin"  # platform administrators only (creating convenings)
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Rule:
    read: str
    write: str | None


def allow(read: Permission | str, write: Permission | str | None = None) -> Callable:
    """Attach the rule of a view: `read` for GET, `write` for POST (no write: the view takes no POST)."""
    def decorate(view):
        view.access_rule = Rule(str(read), str(write) if write is not None else None)
        return view
    return decorate


def rule_of(endpoint: str | None) -> Rule | None:
    view = current_app.view_functions.get(endpoint or "")
    return getattr(view, "access_rule", None)


def check_request() -> object | None:
    """Refuse the request unless the rule of its view lets the current account through."""
    from convene.extensions import login_manager

    rule = rule_of(request.endpoint)
    if rule is None:
        abort(403 if current_user.is_authenticated else 404)
    needed = rule.read if request.method in SAFE_METHODS else rule.write
    if needed == PUBLIC:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if needed is None:
        abort(405)
    if needed == SIGNED_IN:
        return None
    if needed == ADMIN:
        if not current_user.is_admin:
            abort(403)
        return None
    convening_id = (request.view_args or {}).get("convening_id")
    if convening_id is None:
        abort(403)
    held = permissions(current_user, convening_id)
    if Permission.VIEW not in held:
        abort(404)
    if needed not in held:
        abort(403)
    return None


def template_history(convening, object_type: str, object_id: int) -> list | None:
    """The log entries of one registration, order or session, for accounts that may read the log; else None."""
    if not can(current_user, Permission.AUDIT, convening):
        return None
    from convene.services.audit import history

    return history(convening.id, object_type, object_id)


def template_can(permission: Permission | str, convening=None) -> bool:
    """`can('payments.manage', convening)` in templates: what the signed-in account may do there."""
    return can(current_user, permission, convening)
