"""Jinja filters and globals: money, dates in a convening's zone, labels."""
from __future__ import annotations

import re
from datetime import date, datetime

from flask import Flask, request, url_for
from flask_babel import gettext
from markupsafe import Markup

from convene.i18n import format_local, format_money
from convene.models import ACCESSIBILITY_NEEDS, DIETARY_NEEDS, SESSION_KIND_LABELS, utcnow
from convene.models.payments import ORDER_STATUS_LABELS
from convene.models.registrations import ROLE_LABELS, STATUS_LABELS
from convene.text import multi_line


def money(cents: int | None, currency: str = "USD") -> str:
    """An amount in the reader's language ("CA$250.00", "250,00 $CA"); nothing owed reads "Free"."""
    if not cents:
        return gettext("Free")
    return format_money(cents, currency)


def local_dt(instant: datetime | None, convening, fmt: str = "%a %d %b %Y, %H:%M %Z") -> str:
    """An instant in the convening's time zone, with day and month names in the reader's language."""
    if instant is None:
        return ""
    return format_local(convening.local(instant), fmt)


def local_date(day: date | datetime | None, fmt: str = "%d %B %Y") -> str:
    """A calendar day (or an instant already in local time) with names in the reader's language."""
    if day is None:
        return ""
    return format_local(day, fmt)


def strong(value) -> Markup:
    """A value set in bold inside a translated sentence of an HTML email (the sentence is shared with the text part)."""
    return Markup("<strong>{}</strong>").format(value)


def _label(table: dict, value) -> str:
    text = table.get(value)
    return gettext(text) if text else str(value or "")


def status_label(status) -> str:
    return _label(STATUS_LABELS, status)


def role_label(role) -> str:
    return _label(ROLE_LABELS, role)


def order_status_label(status) -> str:
    return _label(ORDER_STATUS_LABELS, status)


def session_kind_label(kind) -> str:
    return _label(SESSION_KIND_LABELS, kind)


def need_label(code: str) -> str:
    """A dietary or access need's label in the reader's language."""
    return _label({**DIETARY_NEEDS, **ACCESSIBILITY_NEEDS}, code)


_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")


def paragraphs(text: str | None) -> list[str]:
    """Text cut into paragraphs at blank lines, whatever line endings it was stored with."""
    # Rows saved before forms cleaned their input still hold the browser's CRLF.
    parts = _BLANK_LINE_RE.split(multi_line(text or ""))
    return [part.strip() for part in parts if part.strip()]


def date_range(start: date, end: date) -> str:
    if start == end:
        return format_local(start, "%A %d %B %Y")
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}–{end.day} {format_local(start, '%B %Y')}"
    if start.year == end.year:
        return f"{format_local(start, '%d %B')} – {format_local(end, '%d %B %Y')}"
    return f"{format_local(start, '%d %B %Y')} – {format_local(end, '%d %B %Y')}"


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
    app.add_template_filter(local_date)
    app.add_template_filter(strong)
    for helper in (status_label, role_label, order_status_label, session_kind_label, need_label):
        app.add_template_global(helper)
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
