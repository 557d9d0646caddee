"""Helpers every back-office view uses: find what the URL names (or 404), show a service's refusal."""
from __future__ import annotations

from flask import abort, flash

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import Convening


def convening_or_404(convening_id: int) -> Convening:
    return db.get_or_404(Convening, convening_id)


def child_or_404(model, convening: Convening, child_id: int):
    """A row of `model` (ticket type, room, host...) that belongs to this convening, or 404."""
    item = db.session.get(model, child_id)
    if item is None or item.convening_id != convening.id:
        abort(404)
    return item


def show_error(form, error: ConveneError) -> None:
    """Put each problem beside its field; flash those no field fits."""
    for item in error.details.get("problems", [error]):
        target = getattr(form, item.field, None) if item.field else None
        if target is not None and hasattr(target, "errors"):
            target.errors = [*target.errors, item.message]
        else:
            flash(item.message, "error")
