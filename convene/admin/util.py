"""Helpers every back-office view uses: find what the URL names (or 404), read the query string, show a refusal."""
from __future__ import annotations

import re
from datetime import date, datetime

from flask import abort, request

from convene.extensions import db
from convene.forms import INT_MAX, MAX_YEAR, MIN_YEAR, show_error  # noqa: F401  (views import it from here)
from convene.models import Convening
from convene.text import single_line


def convening_or_404(convening_id: int) -> Convening:
    return db.get_or_404(Convening, convening_id)


def child_or_404(model, convening: Convening, child_id: int):
    """A row of `model` (ticket type, room, host...) that belongs to this convening, or 404."""
    item = db.session.get(model, child_id)
    if item is None or item.convening_id != convening.id:
        abort(404)
    return item


# The query string is typed by anyone: each reader below answers the default for anything it cannot
# use (too large for the database, a year no time zone arithmetic survives, control characters),
# so a hand-edited link shows the page as if the argument were absent, never an error.

def int_arg(name: str, default: int | None = None, *, minimum: int = 1, maximum: int = INT_MAX) -> int | None:
    """A whole number from the query string, within [minimum, maximum]; else `default`."""
    raw = request.args.get(name, "").strip()
    if not re.fullmatch(r"-?[0-9]{1,10}", raw):
        return default
    value = int(raw)
    return value if minimum <= value <= maximum else default


def date_arg(name: str) -> date | None:
    """An ISO date (2027-06-01) from the query string, in MIN_YEAR..MAX_YEAR; else None."""
    try:
        value = date.fromisoformat(request.args.get(name, "").strip())
    except ValueError:
        return None
    return value if MIN_YEAR <= value.year <= MAX_YEAR else None


def datetime_arg(name: str) -> datetime | None:
    """An ISO date and time from the query string, in MIN_YEAR..MAX_YEAR (an offset, if any, within a day); else None."""
    try:
        value = datetime.fromisoformat(request.args.get(name, "").strip())
    except ValueError:
        return None
    return value if MIN_YEAR <= value.year <= MAX_YEAR else None


def text_arg(name: str, max_length: int = 200) -> str:
    """A line of text from the query string, without control characters, trimmed and cut to max_length."""
    return " ".join(single_line(request.args.get(name, "")).split())[:max_length]
