"""Translating organizer-written content, and who needs interpretation into which language.

The translations page edits one language at a time beside the default text; a save writes that
language's texts on every row at once, or nothing when any of them is refused.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa

from convene.errors import ConveneError, NotFound
from convene.extensions import db
from convene.languages import INTERPRETATION_LANGUAGES, LANGUAGES
from convene.models import (
    HOLDING_SEAT,
    Convening,
    HostOrganization,
    ProgramSession,
    Question,
    Registration,
    SessionSignup,
    SiteVisit,
    TicketType,
    VisitAssignment,
    VisitSlot,
)
from convene.services.db import lock, unit_of_work
from convene.text import multi_line, single_line

# Per table: (field, label, longest text, several lines). The lengths are those of the default fields' forms.
FIELDS: dict[str, tuple[tuple[str, str, int, bool], ...]] = {
    "convening": (("name", "Name", 200, False), ("description", "Description", 20000, True)),
    "ticket_type": (("name", "Name", 120, False), ("description", "Description", 5000, True)),
    "question": (("label", "Question", 300, False), ("help_text", "Help text", 500, False),
                 ("choices", "Choices, one per line", 300, True)),
    "host_organization": (("name", "Name", 200, False), ("description", "Description", 5000, True)),
    "program_session": (("title", "Title", 200, False), ("description", "Description", 20000, True),
                        ("location", "Location or meeting point", 300, False)),
    "site_visit": (("meeting_point", "Meeting point", 300, False), ("transport_notes", "Transport notes", 500, True)),
}
SECTIONS = (
    ("convening", "The convening"), ("ticket_type", "Ticket types"), ("question", "Questions"),
    ("host_organization", "Site-visit hosts"), ("site_visit", "Site visits"), ("program_session", "Sessions"),
)
MODELS = {"convening": Convening, "ticket_type": TicketType, "question": Question,
          "host_organization": HostOrganization, "program_session": ProgramSession, "site_visit": SiteVisit}


@dataclass
class FieldRow:
    """One translatable text: its form name, the default text and the translation (empty when none)."""

    name: str
    label: str
    default: str
    translated: str
    limit: int
    multiline: bool

    @property
    def missing(self) -> bool:
        return bool(self.default.strip()) and not self.translated.strip()


@dataclass
class Item:
    title: str
    fields: list[FieldRow]


@dataclass
class Section:
    key: str
    title: str
    items: list[Item] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return sum(f.missing for item in self.items for f in item.fields)


def field_name(table: str, row_id: int, column: str) -> str:
    return f"t-{table}-{row_id}-{column}"


def _rows(convening: Convening, table: str) -> list:
    model = MODELS[table]
    if model is Convening:
        return [convening]
    query = sa.select(model).where(model.convening_id == convening.id)
    if model is SiteVisit:
        query = query.join(VisitSlot, SiteVisit.slot_id == VisitSlot.id).join(SiteVisit.host).order_by(
            VisitSlot.starts_at, HostOrganization.name)
    elif model is ProgramSession:
        query = query.order_by(ProgramSession.starts_at, ProgramSession.title)
    elif model in (TicketType, Question):
        query = query.order_by(model.position, model.id)
    else:
        query = query.order_by(model.name)
    return list(db.session.execute(query).scalars())


def _title(table: str, row, convening: Convening) -> str:
    if table == "convening":
        return row.name
    if table == "site_visit":
        return f"{row.host.name} · {row.slot.label}"
    if table == "program_session":
        return f"{convening.local(row.starts_at):%a %H:%M} · {row.title}"
    return getattr(row, "title", None) or getattr(row, "name", None) or getattr(row, "label", "")


def _default_text(row, column: str) -> str:
    value = getattr(row, column)
    return "\n".join(value or []) if column == "choices" else (value or "")


def _translated_text(row, language: str, column: str) -> str:
    value = ((row.translations or {}).get(language) or {}).get(column)
    if column == "choices":
        return "\n".join(value) if isinstance(value, list) else ""
    return value if isinstance(value, str) else ""


def target_languages(convening: Convening) -> list[str]:
    """The enabled languages other than the default: those content is translated into."""
    return [code for code in convening.languages or [] if code in LANGUAGES and code != convening.default_language]


def translation_sheet(convening: Convening, language: str) -> list[Section]:
    """Every translatable text of the convening, with its translation into `language`, by section."""
    sections = []
    for table, title in SECTIONS:
        section = Section(table, title)
        for row in _rows(convening, table):
            rows = []
            for column, label, limit, multiline in FIELDS[table]:
                if table == "question" and column == "choices" and not row.choices:
                    continue
                rows.append(FieldRow(field_name(table, row.id, column), label, _default_text(row, column),
                                     _translated_text(row, language, column), limit, multiline))
            section.items.append(Item(_title(table, row, convening), rows))
        if section.items:
            sections.append(section)
    return sections


def missing_counts(convening: Convening) -> dict[str, int]:
    """For each language translated into: how many texts still show the default language."""
    return {code: sum(s.missing for s in translation_sheet(convening, code)) for code in target_languages(convening)}


def _problem(code: str, field_name: str | None = None, **values) -> ConveneError:
    return ConveneError(code, field=field_name, **values)


def _clean(value: str, multiline: bool) -> str:
    return (multi_line(value) if multiline else single_line(value)).strip()


def save_translations(convening_id: int, language: str, values: Mapping[str, str]) -> int:
    """Write the texts of `language` the form sent (an empty text removes a translation); returns how many
    items changed. Refuses everything, with a problem beside each field, when any text does not fit."""
    with unit_of_work():
        rows = lock(Convening, convening_id)
        if not rows:
            raise NotFound("convening_not_found")
        convening = rows[0]
        if language not in target_languages(convening):
            raise _problem("translation_language_not_enabled", "language")
        problems: list[ConveneError] = []
        planned: list[tuple[object, dict]] = []
        for table, _ in SECTIONS:
            for row in _rows(convening, table):
                mine = dict((row.translations or {}).get(language) or {})
                before = dict(mine)
                for column, _label, limit, multiline in FIELDS[table]:
                    name = field_name(table, row.id, column)
                    if name not in values:
                        continue
                    if column == "choices":
                        # Line for line with the choices; blank lines (trailing ones may be left out) show
                        # the default choice.
                        lines = [single_line(line).strip() for line in multi_line(values[name] or "").split("\n")]
                        while lines and not lines[-1]:
                            lines.pop()
                        count = len(row.choices or [])
                        if len(lines) > count:
                            problems.append(_problem("translation_choices_count", name, count=count))
                            continue
                        lines += [""] * (count - len(lines)) if lines else []
                        longest = max((len(line) for line in lines), default=0)
                        if longest > limit:
                            problems.append(_problem("translation_too_long", name, length=longest, limit=limit))
                            continue
                        if any(lines):
                            mine[column] = lines
                        else:
                            mine.pop(column, None)
                        continue
                    text = _clean(values[name] or "", multiline)
                    if len(text) > limit:
                        problems.append(_problem("translation_too_long", name, length=len(text), limit=limit))
                        continue
                    if text:
                        mine[column] = text
                    else:
                        mine.pop(column, None)
                if mine != before:
                    planned.append((row, mine))
        if problems:
            first = problems[0]
            first.details["problems"] = problems
            raise first
        for row, mine in planned:
            translations = {code: dict(texts) for code, texts in (row.translations or {}).items()}
            if mine:
                translations[language] = mine
            else:
                translations.pop(language, None)
            row.translations = translations  # a new object, so the change is seen and logged
    return len(planned)


# -- interpretation --------------------------------------------------------------------------------

@dataclass
class InterpretationRow:
    """Who needs interpretation into each language: overall, and in one session or site visit."""

    title: str
    counts: dict[str, int]
    offered: list[str] | None = None  # for sessions: what it offers (None: not a session)

    @property
    def unmet(self) -> list[str]:
        if self.offered is None:
            return []
        return [code for code, count in self.counts.items() if count and code not in self.offered]


@dataclass
class InterpretationReport:
    languages: list[str]
    overall: dict[str, int]
    sign_language: int
    sessions: list[InterpretationRow]
    visits: list[InterpretationRow]


def _count(needs_lists, languages: list[str]) -> dict[str, int]:
    counter = Counter(code for needs in needs_lists for code in set(needs or []))
    return {code: counter.get(code, 0) for code in languages}


def interpretation_report(convening: Convening) -> InterpretationReport:
    """Counts of people holding a seat who need each interpretation language, overall, per session (its
    sign-ups, or everyone for sessions all attend) and per site visit (its current plan)."""
    languages = [code for code in convening.interpretation_languages or [] if code in INTERPRETATION_LANGUAGES]
    people = db.session.execute(
        sa.select(Registration.id, Registration.interpretation_needs, Registration.accessibility_needs)
        .where(Registration.convening_id == convening.id, Registration.status.in_(HOLDING_SEAT))
    ).all()
    needs = {pid: list(need or []) for pid, need, _ in people}
    sign = sum(1 for _, _, access in people if "interpretation" in (access or []))
    signed: dict[int, list[int]] = {}
    for session_id, registration_id in db.session.execute(
        sa.select(SessionSignup.session_id, SessionSignup.registration_id)
        .join(ProgramSession, ProgramSession.id == SessionSignup.session_id)
        .where(ProgramSession.convening_id == convening.id)
    ):
        signed.setdefault(session_id, []).append(registration_id)
    sessions = []
    for session in _rows(convening, "program_session"):
        ids = signed.get(session.id, []) if session.signup_required or session.id in signed else list(needs)
        sessions.append(InterpretationRow(
            _title("program_session", session, convening),
            _count((needs.get(pid) for pid in ids), languages), offered=list(session.interpretation or [])))
    placed: dict[int, list[int]] = {}
    for visit_id, registration_id in db.session.execute(
        sa.select(VisitAssignment.site_visit_id, VisitAssignment.registration_id)
        .join(SiteVisit, SiteVisit.id == VisitAssignment.site_visit_id)
        .where(SiteVisit.convening_id == convening.id)
    ):
        placed.setdefault(visit_id, []).append(registration_id)
    visits = [InterpretationRow(_title("site_visit", visit, convening),
                                _count((needs.get(pid) for pid in placed.get(visit.id, [])), languages))
              for visit in _rows(convening, "site_visit")]
    return InterpretationReport(languages, _count(needs.values(), languages), sign, sessions, visits)
