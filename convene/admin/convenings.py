"""Convenings, ticket types, questions, delegations and the dashboard."""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, render_template

from convene.admin import bp
from convene.extensions import db
from convene.models import Convening


@bp.get("/")
def index():
    """List every convening."""
    convenings = db.session.execute(sa.select(Convening).order_by(Convening.starts_on.desc())).scalars().all()
    return render_template("admin/index.html", convenings=convenings)


@bp.get("/c/<int:convening_id>/")
def dashboard(convening_id: int):
    """Counts at a glance (placeholder)."""
    abort(501)


@bp.get("/c/<int:convening_id>/settings")
def edit_convening(convening_id: int):
    abort(501)


@bp.get("/c/<int:convening_id>/tickets")
def tickets(convening_id: int):
    abort(501)


@bp.get("/c/<int:convening_id>/questions")
def questions(convening_id: int):
    abort(501)


@bp.get("/c/<int:convening_id>/delegations")
def delegations(convening_id: int):
    abort(501)
