"""Registrations: list, detail, edit, cancel, add by hand, CSV export and import."""
from __future__ import annotations

from flask import abort

from convene.admin import bp


@bp.get("/c/<int:convening_id>/registrations")
def registrations(convening_id: int):
    abort(501)


@bp.get("/c/<int:convening_id>/import")
def import_registrations(convening_id: int):
    abort(501)
