"""Back office for convening teams: each page opens to the roles its rule names (no-store: convene/security.py)."""
from flask import Blueprint

bp = Blueprint("admin", __name__)


@bp.before_request
def check_access():
    """Every view's rule decides who may open it (convene/admin/access.py); a view without one is closed."""
    from convene.admin.access import check_request

    return check_request()


from convene.admin import (  # noqa: E402,F401
    auth, convenings, editions, imports, jobs, languages, merges, messages, payments, printing, privacy, registrations,
    schedule, teams, visits,
)
from convene.admin import audit  # noqa: E402,F401
from convene.admin import checkin  # noqa: E402,F401
from convene.admin import checkin_desk, checkin_lists, checkin_reports  # noqa: E402,F401
