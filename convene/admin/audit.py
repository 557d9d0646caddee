"""The convening's log of changes: who changed what, when, filtered by object, actor, action and day."""
from __future__ import annotations

from flask import render_template

from convene.admin import bp
from convene.admin.access import allow
from convene.admin.util import convening_or_404, date_arg, int_arg, text_arg
from convene.models import ActorKind
from convene.permissions import Permission
from convene.services import audit


@bp.get("/c/<int:convening_id>/log")
@allow(Permission.AUDIT)
def audit_log(convening_id: int):
    """Every change to the convening, newest first, a hundred at a time."""
    convening = convening_or_404(convening_id)
    filters = {"object_type": text_arg("object", 40) or None, "actor": text_arg("actor", 254) or None,
               "action": text_arg("action", 64) or None, "day": date_arg("day")}
    entries, next_before = audit.log_page(convening.id, tz=convening.tz, before_id=int_arg("before"), **filters)
    return render_template("admin/audit/log.html", convening=convening, entries=entries, next_before=next_before,
                           filters=filters, object_types=audit.object_types(convening.id),
                           actor_kinds=list(ActorKind))
