"""Cleaning typed and imported text: what no single-line value (a name, a title) may hold.

Control characters break the formats people's text ends up in (iCalendar lines, CSV rows, email
headers, PDF badges) and PostgreSQL refuses NUL outright. Format characters such as the zero-width
joiner and right-to-left marks are kept: Arabic, Hebrew and emoji need them.
"""
from __future__ import annotations

import re

# Unicode category Cc is exactly these two ranges (fixed by the standard), plus the line and
# paragraph separators, which are format characters but end a line in JavaScript and some readers.
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SINGLE_LINE_BREAKS_RE = re.compile("[\t\n\x0b\x0c\r\x85\u2028\u2029]+")
_LINE_BREAK_RE = re.compile("\r\n?|[\x0b\x0c\x85\u2028\u2029]")


def single_line(text):
    """Text fit for one line: tabs and line breaks become one space, other control characters go."""
    if not isinstance(text, str):
        return text
    return CONTROL_RE.sub("", _SINGLE_LINE_BREAKS_RE.sub(" ", text))


def multi_line(text):
    """Text that may span lines: each line break becomes "\\n", a tab a space, other control characters go."""
    if not isinstance(text, str):
        return text
    text = _LINE_BREAK_RE.sub("\n", text).replace("\t", " ")
    return CONTROL_RE.sub(lambda match: match.group() if match.group() == "\n" else "", text)
