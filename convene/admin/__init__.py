"""Back office for organizers and staff; every page needs a login (and is no-store: see convene/security.py)."""
from flask import Blueprint, abort, request
from flask_login import current_user

bp = Blueprint("admin", __name__)

PUBLIC_ENDPOINTS = {"admin.login"}


@bp.before_request
def check_access():
    """Every view's rule decides (convene/admin/access.py); views not yet given one need a login (transitional)."""
    from convene.admin.access import check_request, rule_of

    if rule_of(request.endpoint) is not None:
        return check_request()
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        from convene.extensions import login_manager

        return login_manager.unauthorized()
    return None


def organizer_required() -> None:
    """Abort with 403 unless the signed-in account is an organizer."""
    if not current_user.is_authenticated or not current_user.is_organizer:
        abort(403)


from convene.admin import (  # noqa: E402,F401
    auth, convenings, editions, imports, merges, payments, printing, privacy, registrations, schedule, teams,
    visits,
)
from convene.admin import audit  # noqa: E402,F401
