"""Jinja filters and globals: money, dates in a convening's zone, labels."""
from __future__ import annotations

import re
from datetime import date, datetime

from flask import Flask, request, url_for

from convene.models import ACCESSIBILITY_NEEDS, DIETARY_NEEDS, utcnow
from convene.models.registrations import ROLE_LABELS, STATUS_LABELS
from convene.text import multi_line

CURRENCY_SYMBOLS = {"USD": "$", "CAD": "CA$", "EUR": "€", "GBP": "£", "AUD": "A$"}


def money(cents: int | None, currency: str = "USD") -> str:
    if not cents:
        return "Free"
    symbol = CURRENCY_SYMBOLS.get(currency.upper())
    amount = f"{cents / 100:,.2f}"
    return f"{symbol}{amount}" if symbol else f"{amount} {currency.upper()}"


def local_dt(instant: datetime | None, convening, fmt: str = "%a %d %b %Y, %H:%M %Z") -> str:
    if instant is None:
        return ""
    return convening.local(instant).strftime(fmt)


_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")


def paragraphs(text: str | None) -> list[str]:
    """Text cut into paragraphs at blank lines, whatever line endings it was stored with."""
    # Rows saved before forms cleaned their input still hold the browser's CRLF.
    parts = _BLANK_LINE_RE.split(multi_line(text or ""))
    return [part.strip() for part in parts if part.strip()]


def date_range(start: date, end: date) -> str:
    if start == end:
        return start.strftime("%A %d %B %Y")
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}–{end.day} {start.strftime('%B %Y')}"
    if start.year == end.year:
        return f"{start.strftime('%d %B')} – {end.strftime('%d %B %Y')}"
    return f"{start.strftime('%d %B %Y')} – {end.strftime('%d %B %Y')}"


def url_with(**changes) -> str:
    """The current URL with some query arguments changed (None removes one)."""
    args = request.args.to_dict()
    args.update({k: v for k, v in changes.items()})
    args = {k: v for k, v in args.items() if v not in (None, "")}
    return url_for(request.endpoint, **(request.view_args or {}), **args)


def init_app(app: Flask) -> None:
    app.add_template_filter(money)
    app.add_template_filter(local_dt)
    app.add_template_filter(date_range)
    app.add_template_filter(paragraphs)
    app.add_template_global(url_with)
    from convene.admin.access import template_can, template_history

    app.add_template_global(template_can, "can")
    app.add_template_global(template_history, "audit_history")
    app.add_template_global(ROLE_LABELS, "ROLE_LABELS")
    app.add_template_global(STATUS_LABELS, "STATUS_LABELS")
    app.add_template_global(DIETARY_NEEDS, "DIETARY_NEEDS")
    app.add_template_global(ACCESSIBILITY_NEEDS, "ACCESSIBILITY_NEEDS")
    app.context_processor(lambda: {"now_utc": utcnow()})
