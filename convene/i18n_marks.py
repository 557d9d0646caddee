"""`N_` marks a string for the catalogues where it is defined, to be translated where it is shown.

Labels kept in plain English tables (statuses, roles, needs) stay English in exports and the back
office; attendee pages, emails and documents pass them through gettext when they show them.
"""
from __future__ import annotations


def N_(text: str) -> str:  # noqa: N802 - the conventional name extraction tools know
    return text
