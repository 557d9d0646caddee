"""The text of an organizer's message: placeholders from a fixed list, and a small safe markup rendered to HTML.

Pure functions over strings, no Flask or database. The markup is deliberately small, for people who
write in a text box on a phone:

- a blank line starts a new paragraph, a single line break stays a line break;
- `**bold**`;
- `[words](https://...)` is a link (http, https or mailto only; `[words]({manage_link})` too), and a
  bare https:// address becomes a link by itself.

Placeholders are `{name}` from PLACEHOLDERS; `{{` and `}}` write a literal brace. Values are put in after
the markup is read, so nothing a registrant typed (a name with `<script>` or `**`) becomes markup, and
every value is HTML-escaped.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass

# name: what it becomes (the compose page lists these)
PLACEHOLDERS = {
    "given_name": "The person's given name",
    "family_name": "The person's family name",
    "full_name": "Given and family name",
    "badge_name": "The name on their badge (their given name when they gave none)",
    "reference": "Their registration reference",
    "manage_link": "The link to their own registration page (view, change, cancel)",
    "agenda_link": "The link to their personal agenda (PDF)",
    "site_visits": "Their published site visits, one per line",
    "delegation": "Their delegation's name",
    "organization": "Their organization",
    "ticket_type": "Their ticket type",
    "convening": "The convening's name",
}
LINK_PLACEHOLDERS = ("manage_link", "agenda_link")
MULTILINE_PLACEHOLDERS = ("site_visits",)

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_SAFE_SCHEMES = ("http://", "https://", "mailto:")
# A placeholder while the markup is read: control characters the forms never let through.
_MARK = "\x00{}\x00"
_MARK_RE = re.compile("\x00([0-9]+)\x00")
_INLINE = re.compile(
    r"\[(?P<label>[^\]\n]+)\]\((?P<href>[^)\s]+)\)"
    r"|\*\*(?P<bold>.+?)\*\*"
    r"|(?P<url>https?://[^\s<>()\[\]\x00]+)"
)


class TemplateError(ValueError):
    """The text cannot be filled in: an unknown placeholder or an unbalanced brace."""


@dataclass(frozen=True)
class _Part:
    text: str = ""
    placeholder: str | None = None


def problems(text: str) -> list[str]:
    """What is wrong with the placeholders of a text, as messages for the person who wrote it."""
    found = []
    for match in _TOKEN.finditer(text or ""):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if token in ("{", "}"):
            found.append(f"A “{token}” has no partner. Placeholders look like {{given_name}}; "
                         f"write {token}{token} for the brace itself.")
            continue
        name = match.group(1).strip()
        if name not in PLACEHOLDERS:
            found.append(f"{{{match.group(1)}}} is not a placeholder. Use one of: "
                         + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS) + ".")
    unique = []
    for problem in found:
        if problem not in unique:
            unique.append(problem)
    return unique


def _parts(text: str) -> list[_Part]:
    errors = problems(text)
    if errors:
        raise TemplateError(errors[0])
    parts, last = [], 0
    for match in _TOKEN.finditer(text):
        if match.start() > last:
            parts.append(_Part(text[last:match.start()]))
        token = match.group(0)
        parts.append(_Part(token[0]) if token in ("{{", "}}") else _Part(placeholder=match.group(1).strip()))
        last = match.end()
    if last < len(text):
        parts.append(_Part(text[last:]))
    return parts


def fill_line(text: str, values: dict[str, str]) -> str:
    """A one-line text (a subject) with its placeholders filled in, plain."""
    filled = "".join(p.text if p.placeholder is None else values.get(p.placeholder, "") for p in _parts(text))
    return " ".join(filled.split())


def _marked(text: str) -> tuple[str, list[str]]:
    """The text with each placeholder replaced by a mark, and the placeholder names by mark number."""
    names, out = [], []
    for part in _parts(text.replace("\x00", "")):
        if part.placeholder is None:
            out.append(part.text)
        else:
            out.append(_MARK.format(len(names)))
            names.append(part.placeholder)
    return "".join(out), names


def _paragraphs(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


def render_text(text: str, values: dict[str, str]) -> str:
    """The plain-text version: markup taken out (links written as "words (address)"), values put in."""
    marked, names = _marked(text)

    def plain(match: re.Match) -> str:
        if match.group("label") is not None:
            return f"{match.group('label')} ({match.group('href')})"
        if match.group("bold") is not None:
            return match.group("bold")
        return match.group("url")

    paragraphs = [_INLINE.sub(plain, p) for p in _paragraphs(marked)]
    filled = "\n\n".join(paragraphs)
    return _MARK_RE.sub(lambda m: values.get(names[int(m.group(1))], ""), filled)


def render_html(text: str, values: dict[str, str]) -> str:
    """The HTML version: paragraphs, line breaks, bold and links, every character of text and values escaped."""
    marked, names = _marked(text)

    def value_html(index: int) -> str:
        name, value = names[index], values.get(names[index], "")
        escaped = html.escape(value, quote=True)
        if name in LINK_PLACEHOLDERS and value:
            return f'<a href="{escaped}">{escaped}</a>'
        if name in MULTILINE_PLACEHOLDERS:
            return escaped.replace("\n", "<br>\n")
        return escaped

    def plain(segment: str) -> str:
        escaped = html.escape(segment, quote=True).replace("\n", "<br>\n")
        return _MARK_RE.sub(lambda m: value_html(int(m.group(1))), escaped)

    def href_of(raw: str) -> str | None:
        mark = _MARK_RE.fullmatch(raw)
        if mark is not None:
            name = names[int(mark.group(1))]
            value = values.get(name, "")
            return html.escape(value, quote=True) if name in LINK_PLACEHOLDERS and value else None
        if raw.lower().startswith(_SAFE_SCHEMES) and "\x00" not in raw:
            return html.escape(raw, quote=True)
        return None

    def label_html(label: str) -> str:
        # A link's words show a placeholder's value as text, never as a second link.
        escaped = html.escape(label, quote=True)
        return _MARK_RE.sub(lambda m: html.escape(values.get(names[int(m.group(1))], ""), quote=True), escaped)

    def inline(segment: str) -> str:
        out, last = [], 0
        for match in _INLINE.finditer(segment):
            out.append(plain(segment[last:match.start()]))
            last = match.end()
            if match.group("label") is not None:
                href = href_of(match.group("href"))
                out.append(f'<a href="{href}">{label_html(match.group("label"))}</a>' if href
                           else plain(match.group(0)))
            elif match.group("bold") is not None:
                out.append(f"<strong>{inline(match.group('bold'))}</strong>")
            else:
                url = match.group("url")
                trail = re.search(r"[.,;:!?'\"]+$", url)
                tail = trail.group(0) if trail else ""
                url = url[:len(url) - len(tail)]
                out.append(f'<a href="{html.escape(url, quote=True)}">{html.escape(url, quote=True)}</a>'
                           + plain(tail))
        out.append(plain(segment[last:]))
        return "".join(out)

    return "\n".join(f"<p>{inline(p)}</p>" for p in _paragraphs(marked))
