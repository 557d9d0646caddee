"""Import delegates from a spreadsheet (CSV): check every row first, then write all of them or none.

The file is read without the database (encoding, delimiter, headers, each cell), then checked
against the convening with a handful of queries (ticket types, delegations, questions, hosts,
emails already registered), never one per row. Only a clean file reaches the unit of work, which
locks the convening and its ticket types, re-checks emails, seats, questions and hosts under the
lock, and writes the batch: people, their answers and their site-visit rankings.

Each column feeds one target: a person field (`given_name`...), a question (`q:<id>`, its header
being the question's text), a rank of the site-visit ranking (`rank:<n>`), or nothing (`ignore`).
Headers are recognised ignoring case, accents, punctuation and spaces; the organizer may say what
any column feeds (`mapping`, by column index) on the import page's columns step, which keeps the
uploaded file between requests under a random name that only a signed reference points at.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
import secrets
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy.orm import selectinload

from convene.errors import MESSAGES, ConveneError
from convene.extensions import db
from convene.forms import ORDINALS
from convene.models import (
    ACCESSIBILITY_NEEDS,
    ACTIVE,
    DIETARY_NEEDS,
    Answer,
    Convening,
    Delegation,
    HostOrganization,
    Question,
    QuestionKind,
    Registration,
    Role,
    Status,
    TicketType,
    VisitPreference,
    utcnow,
)
from convene.models.registrations import ROLE_LABELS
from convene.services.db import lock, unit_of_work
from convene.services.exports import BOM, csv_safe
from convene.services.payments import SETTLEMENT_LABELS, Settlement, settle_seat_locked
from convene.services.registrations import (
    REFERENCE_ALPHABET,
    lapse_overdue_offers,
    offer_seats_locked,
    queue_status_email,
    find_or_create_delegation,
    normalize_email,
    seat_usage,
)
from convene.services.tokens import make_token, read_token
from convene.services.visits import check_ranking, hosts_of, max_ranks
from convene.text import delegation_key, multi_line, search_key, single_line

MAX_ROWS = 5000
MAX_COLUMNS = 200
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
DELEGATION_NAME_MAX = 160  # Delegation.name
SHORT_ANSWER_MAX, LONG_ANSWER_MAX = 500, 5000  # as the registration form takes them
IGNORE = "ignore"


@dataclass(frozen=True)
class Column:
    """One column the importer understands."""

    name: str
    label: str
    required: bool = False
    max_length: int | None = None
    aliases: tuple[str, ...] = ()
    help: str = ""


# The order here is the order of the template CSV and of the help table on the import page.
COLUMNS = (
    Column("given_name", "Given name", True, 100, ("first name", "first", "firstname", "forename", "given")),
    Column("family_name", "Family name", True, 100, ("last name", "last", "surname", "lastname", "family")),
    Column("email", "Email", True, 254, ("email address", "e-mail", "e-mail address", "mail")),
    Column("organization", "Organization", True, 200,
           ("organisation", "org", "company", "employer", "agency", "organization name")),
    Column("job_title", "Job title", False, 200, ("title", "position", "job")),
    Column("badge_name", "Badge name", False, 100, ("name on badge", "preferred name")),
    Column("pronouns", "Pronouns", False, 40, ("pronoun",)),
    Column("phone", "Phone", False, 40, ("phone number", "telephone", "mobile", "cell", "tel")),
    Column("role", "Role", False, None, ("registration role", "attendee type"),
           "Delegate when empty (or the default chosen below). " + ", ".join(ROLE_LABELS.values()) + "."),
    Column("delegation", "Delegation", False, DELEGATION_NAME_MAX, ("delegation name", "community", "team"),
           "A delegation that does not exist yet is created."),
    Column("ticket_type", "Ticket type", False, None, ("ticket", "ticket name"),
           "The ticket type's name, hidden ones included; the default chosen below when empty."),
    Column("dietary_needs", "Dietary needs", False, None,
           ("dietary", "diet", "dietary requirements", "dietary restrictions"),
           "Separate several with ; or , — " + ", ".join(DIETARY_NEEDS.values()) + "."),
    Column("dietary_notes", "Dietary notes", False, 500, ("other dietary needs", "allergies", "dietary comments")),
    Column("accessibility_needs", "Accessibility needs", False, None,
           ("accessibility", "accessibility requirements", "access needs"),
           "Separate several with ; or , — " + ", ".join(ACCESSIBILITY_NEEDS.values()) + "."),
    Column("accessibility_notes", "Accessibility notes", False, 500, ("access notes", "accessibility comments")),
    Column("payment", "Payment", False, None, ("payment method", "settlement", "settled by"),
           "For tickets with a price: invoice, paid (paid elsewhere) or comp; the choice below when empty."),
    Column("payment_note", "Payment note", False, 300, ("payment notes", "payment reference"),
           "How a paid row was paid, for example “Cheque 1042”; the note below when empty."),
)
COLUMNS_BY_NAME = {c.name: c for c in COLUMNS}


def _key(text: str) -> str:
    """Letters and digits only, case and accents folded: 'E-mail address', 'email_address' and 'Émail Address' agree.

    Letters of every script count (search_key folds them), so a header in Arabic or Greek has a key too.
    """
    return "".join(c for c in search_key(text) if unicodedata.category(c)[0] in "LNM")


# A person column's own name and label win over a question's text, which wins over the aliases.
CANONICAL_KEYS = {_key(alias): column.name for column in COLUMNS for alias in (column.name, column.label)}
HEADER_KEYS = {
    **{_key(alias): column.name for column in COLUMNS for alias in column.aliases},
    **CANONICAL_KEYS,
}
ROLE_KEYS = {
    **{_key(role.value): role.value for role in Role},
    **{_key(label): Role(role).value for role, label in ROLE_LABELS.items()},
}
NEED_KEYS = {
    "dietary_needs": {**{_key(c): c for c in DIETARY_NEEDS}, **{_key(l): c for c, l in DIETARY_NEEDS.items()}},
    "accessibility_needs": {**{_key(c): c for c in ACCESSIBILITY_NEEDS},
                            **{_key(l): c for c, l in ACCESSIBILITY_NEEDS.items()}},
}
SETTLEMENT_KEYS = {
    **{_key(word): Settlement.INVOICE for word in ("invoice", "invoiced", "inv")},
    **{_key(word): Settlement.PAID for word in ("paid", "paid elsewhere", "offline", "prepaid")},
    **{_key(word): Settlement.COMP for word in ("comp", "complimentary", "comped", "free")},
}
NEED_LABELS = {"dietary_needs": DIETARY_NEEDS, "accessibility_needs": ACCESSIBILITY_NEEDS}
PERSON_COLUMNS = ("given_name", "family_name", "badge_name", "pronouns", "email", "phone", "organization", "job_title",
                  "dietary_notes", "accessibility_notes")
# Yes/no answers as people type them, in English, French and Spanish.
YES_NO_KEYS = {
    **{_key(word): True for word in ("yes", "y", "true", "1", "oui", "sí", "si", "x")},
    **{_key(word): False for word in ("no", "n", "false", "0", "non")},
}

# Site-visit ranking headers: "Site visit 1st choice", "Site visit 2", "Host 3", "1st choice", "Choix 2"...
# A header is a rank when one word is a position and every other word is one of these (at least one an anchor).
_RANK_ANCHORS = frozenset({
    "site", "sites", "visit", "visits", "host", "hosts", "choice", "choices", "preference", "preferences", "rank",
    "ranking", "ranked", "choix", "visite", "visites", "hote", "hotes", "visita", "visitas", "preferencia",
    "opcion", "eleccion",
})
_RANK_WORDS = _RANK_ANCHORS | {
    "organization", "organizations", "organisation", "organisations", "org", "name", "preferred", "pick", "option",
    "no", "nr", "number", "of", "your", "my", "the", "de", "du", "la", "le", "sitio", "anfitrion",
}
_ORDINAL_WORDS = {word: n for n, word in enumerate(
    ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"), start=1)}
_POSITION_RE = re.compile(r"([0-9]{1,2})(?:st|nd|rd|th|e|er|re|eme|o|a)?")


def rank_header(position: int) -> str:
    """The template's header for one rank: "Site visit 1st choice"."""
    return f"Site visit {ORDINALS[position - 1]} choice"


def rank_position(header: str) -> int | None:
    """The rank a header names (1 = first choice), or None when it is not a ranking header."""
    positions, others = [], []
    for word in delegation_key(header).split():
        match = _POSITION_RE.fullmatch(word)
        number = int(match.group(1)) if match else _ORDINAL_WORDS.get(word)
        (positions if number is not None else others).append(number if number is not None else word)
    if len(positions) != 1 or not 1 <= positions[0] <= len(ORDINALS):
        return None
    if not others or not set(others) <= _RANK_WORDS or not set(others) & _RANK_ANCHORS:
        return None
    return positions[0]


def question_target(question_id: int) -> str:
    return f"q:{question_id}"


def rank_target(position: int) -> str:
    return f"rank:{position}"


@dataclass
class ImportTargets:
    """What a column of this convening's file can feed besides a person field: its questions and ranks."""

    questions: list[Question] = field(default_factory=list)
    hosts: list[HostOrganization] = field(default_factory=list)

    @property
    def ranks(self) -> int:
        return max_ranks(len(self.hosts))

    def question(self, target: str | None) -> Question | None:
        return next((q for q in self.questions if question_target(q.id) == target), None)

    def label(self, target: str | None) -> str:
        """What a column feeds, in words."""
        if target is None:
            return "Nothing yet"
        if target == IGNORE:
            return "Nothing (ignored)"
        if target in COLUMNS_BY_NAME:
            return COLUMNS_BY_NAME[target].label
        question = self.question(target)
        if question is not None:
            return f"Question: {question.label}"
        if target.startswith("rank:"):
            return f"Site-visit ranking: {ORDINALS[int(target[5:]) - 1]} choice"
        return target

    def choices(self) -> list[tuple[str, str, str | None]]:
        """Every target as (value, label, group) for a select; "" is "not chosen yet"."""
        return [
            ("", "— choose —", None), (IGNORE, "Nothing: ignore this column", None),
            *((c.name, c.label, "Person") for c in COLUMNS),
            *((question_target(q.id), _shorten(q.label), "Questions") for q in self.questions),
            *((rank_target(n), f"{ORDINALS[n - 1]} choice", "Site-visit ranking") for n in range(1, self.ranks + 1)),
        ]

    def valid(self, target: str) -> bool:
        return bool(target) and any(target == value for value, _, _ in self.choices())

    def recognise(self, title: str) -> tuple[str | None, str]:
        """The target a header names by itself, or None and why not (empty when it simply matches nothing)."""
        key = _key(title)
        if not key:
            return None, ""
        if key in CANONICAL_KEYS:
            return CANONICAL_KEYS[key], ""
        matches = [q for q in self.questions if _key(q.label) == key]
        if len(matches) > 1:
            return None, "Two questions have this text: choose which one it answers."
        if matches:
            return question_target(matches[0].id), ""
        if key in HEADER_KEYS:
            return HEADER_KEYS[key], ""
        position = rank_position(title)
        if position is None:
            return None, ""
        if not self.hosts:
            return None, "It looks like a site-visit ranking, but this convening has no hosts yet."
        if position > self.ranks:
            return None, (f"It looks like a {ORDINALS[position - 1]} site-visit choice, but with "
                          f"{len(self.hosts)} host{'s' * (len(self.hosts) != 1)} a ranking has at most "
                          f"{self.ranks} choice{'s' * (self.ranks != 1)}.")
        return rank_target(position), ""

    def fingerprint(self) -> tuple:
        """What the checks relied on: the questions (kind, choices) and hosts; compared again under the lock."""
        return (tuple((q.id, q.kind, tuple(q.choices or ())) for q in self.questions),
                tuple(sorted(h.id for h in self.hosts)))


def import_targets(convening: Convening) -> ImportTargets:
    """The convening's questions and site-visit hosts, in two queries."""
    return ImportTargets(questions=list(convening.questions), hosts=list(hosts_of(convening.id)))


def _shorten(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _column_letter(index: int) -> str:
    """Spreadsheet letters: 0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


@dataclass
class ColumnUse:
    """One column of the file and what it feeds."""

    index: int
    header: str  # as the file spells it; "" for a column without one
    target: str | None  # None: nothing reads it (yet)
    label: str  # the target in words
    chosen: bool = False  # said by the organizer rather than recognised from the header
    note: str = ""  # why a header that looks meaningful is not read
    samples: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The column as problems name it: its header, or its letter."""
        return self.header or f"Column {_column_letter(self.index)}"

    @property
    def letter(self) -> str:
        return _column_letter(self.index)


@dataclass(frozen=True)
class ImportDefaults:
    """What the import form fills in for rows that leave a column empty."""

    ticket_type_id: int | None = None
    delegation_id: int | None = None
    new_delegation_name: str = ""
    role: str = Role.DELEGATE
    settlement: str = Settlement.INVOICE  # for rows on tickets with a price and no Payment cell
    payment_note: str = ""  # for paid rows with no Payment note cell


@dataclass(frozen=True)
class ImportProblem:
    """A reason a row cannot be imported; `row` counts like the spreadsheet does (header = 1)."""

    row: int
    column: str
    message: str


@dataclass
class ImportReport:
    """What an import did, or why it did nothing; `columns` says what each column of the file feeds."""

    rows: int = 0
    imported: int = 0
    problems: list[ImportProblem] = field(default_factory=list)
    shortfalls: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)  # headers of the columns nothing read
    columns: list[ColumnUse] = field(default_factory=list)
    created_delegations: list[str] = field(default_factory=list)
    reactivated: int = 0
    emails_queued: int = 0
    orders: dict[str, int] = field(default_factory=dict)  # settlement label -> orders made, for paid tickets
    invoice_numbers: list[str] = field(default_factory=list)
    answers: int = 0  # answers saved
    rankings: int = 0  # people whose site-visit ranking was saved
    checked: bool = False  # a check only (dry run): nothing was meant to be written
    repeated: bool = False  # a job's second run: its first one had imported the file already
    code: str | None = None

    @property
    def ok(self) -> bool:
        return self.code is None

    @property
    def unread(self) -> list[ColumnUse]:
        """Columns nobody has said what to do with yet."""
        return [c for c in self.columns if c.target is None]

    @property
    def message(self) -> str:
        if self.code:
            return MESSAGES[self.code]
        return MESSAGES["import_checked"] if self.checked else f"Imported {self.imported} delegates."

    @property
    def message_for_job(self) -> str:
        return f"Imported {self.imported} delegates (on an earlier run)." if self.repeated else summary(self)


@dataclass
class _Row:
    number: int
    person: dict
    role: str
    ticket_type_id: int
    delegation_name: str  # empty when the row uses the default delegation
    settlement: str = Settlement.INVOICE
    payment_note: str = ""
    answers: dict[int, object] = field(default_factory=dict)
    ranking: list[int] | None = None  # host ids best first; None when the file has no ranking columns


class _Rejected(ConveneError):
    """Raised inside the unit of work to roll it back and hand the report out."""

    def __init__(self, report: ImportReport):
        super().__init__(report.code or "import_invalid")
        self.report = report


def decode_csv(data: bytes | str) -> str:
    """Text of an uploaded file: UTF-8 with or without BOM, UTF-16 with BOM, else Windows-1252.

    NUL characters are dropped: PostgreSQL refuses them in text, and no real cell holds one.
    """
    if isinstance(data, str):
        text = data.removeprefix("\ufeff")
    elif data.startswith(codecs.BOM_UTF8):
        text = data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace")
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16", errors="replace")  # Excel's "Unicode text"
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
    return text.replace("\x00", "")


def sniff_delimiter(text: str) -> str:
    """`,`, `;` or tab: csv.Sniffer's guess, overruled by the header line when the two disagree."""
    sample = text[:16384]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]  # the sniffer misreads a line cut in half
    header = next((line for line in sample.splitlines() if line.strip()), "")
    counts = {d: header.count(d) for d in ",;\t"}
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        sniffed = None
    best = max(counts, key=counts.get)
    if sniffed is None or counts[sniffed] < counts[best]:
        return best if counts[best] else ","
    return sniffed


def template_csv(convening: Convening | None = None) -> str:
    """A spreadsheet of the headers the import reads, UTF-8 with BOM for Excel (as the export).

    With a convening: a column per question, headed by its exact text, and the site-visit ranking
    columns when it has hosts. No example row: one left in by mistake would be imported as a person.
    """
    headers = [c.label for c in COLUMNS]
    if convening is not None:
        targets = import_targets(convening)
        headers += [q.label for q in targets.questions]
        headers += [rank_header(n) for n in range(1, targets.ranks + 1)]
    buffer = io.StringIO()
    buffer.write(BOM)
    csv.writer(buffer).writerow([csv_safe(h) for h in headers])
    return buffer.getvalue()


def read_header(data: bytes | str) -> list[str]:
    """The header row of a file as the import reads it (its first line with a value), or [] when there is none."""
    text = decode_csv(data)
    try:
        for cells in csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text)):
            if any(cell.strip() for cell in cells):
                return [single_line(cell).strip() for cell in cells[:MAX_COLUMNS + 1]]
    except csv.Error:
        return []
    return []


def import_registrations(
    convening_id: int,
    csv_text: bytes | str,
    defaults: ImportDefaults | None = None,
    send_emails: bool = False,
    *,
    mapping: dict[int, str] | None = None,
    refuse_unread: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
    job_id: int | None = None,
) -> ImportReport:
    """Import every row of a delegates CSV as confirmed registrations, with their answers and rankings, or none.

    `mapping` says what columns feed (column index -> target), over what their headers say. With
    `refuse_unread`, a column nothing reads stops the import (code import_columns_unread) after
    every row is checked; with `dry_run`, a clean file is only checked. Returns a report; when it
    lists problems or shortfalls nothing was written. Raises ConveneError only when the defaults
    themselves are wrong (a ticket type or delegation of another convening).
    """
    defaults = defaults or ImportDefaults()
    now = now or utcnow()
    convening = db.session.get(Convening, convening_id)
    if convening is None:
        raise ConveneError("convening_not_found", status_code=404)
    tickets = {t.id: t for t in convening.ticket_types}
    if defaults.ticket_type_id is not None and defaults.ticket_type_id not in tickets:
        raise ConveneError("ticket_unavailable", field="ticket_type_id")
    delegations = {d.name.casefold(): d for d in convening.delegations}
    if defaults.delegation_id is not None and defaults.delegation_id not in {d.id for d in delegations.values()}:
        raise ConveneError("import_invalid", "That delegation belongs to another convening.", field="delegation_id")
    new_delegation = " ".join(single_line(defaults.new_delegation_name).split())
    if len(new_delegation) > DELEGATION_NAME_MAX:
        raise ConveneError("import_invalid", f"Keep the delegation name to {DELEGATION_NAME_MAX} characters.",
                           field="new_delegation_name")
    if defaults.settlement not in {s.value for s in Settlement}:
        raise ConveneError("settlement_invalid", field="settlement")

    report = ImportReport()
    rows, targets = _check_rows(convening, decode_csv(csv_text), defaults, tickets, report, now, mapping or {})
    if report.problems or not rows:
        if not report.problems:
            report.problems.append(ImportProblem(1, "", "The file has no rows of people under its header."))
        report.code = "import_invalid"
        return report
    unread = "import_columns_unread" if refuse_unread and report.unread else None
    if dry_run:
        report.shortfalls = _shortfalls(convening, tickets, rows)  # read without the lock: a preview
        report.code = "import_over_capacity" if report.shortfalls else unread
        report.checked = True
        return report
    if unread:
        report.code = unread
        return report

    try:
        _write(convening_id, rows, defaults, new_delegation, send_emails, now, report, targets, job_id)
    except _Rejected as rejected:
        return rejected.report
    return report


def _layout(header: list[str], data: list[tuple[int, list[str]]], convening: Convening, mapping: dict[int, str],
            report: ImportReport, header_row: int) -> ImportTargets:
    """Decide what each column feeds (report.columns), reporting header problems; returns the targets it used."""
    problem = report.problems.append
    titles = [single_line(title).strip() for title in header]
    # Questions and hosts are read only when a header is not a person field's own name (a question's text
    # beats an alias), so a file of plain person columns costs no query for them.
    plain = not mapping and all(not t or _key(t) in CANONICAL_KEYS for t in titles)
    targets = ImportTargets() if plain else import_targets(convening)
    seen: dict[str, ColumnUse] = {}
    for index, title in enumerate(titles):
        samples: list[str] = []
        for _, cells in data:
            value = single_line(cells[index]).strip() if index < len(cells) else ""
            if value and value not in samples:
                samples.append(_shorten(value, 40))
                if len(samples) == 3:
                    break
        if not title and not samples and index not in mapping:
            continue  # an empty column without a header (spreadsheets add them): nothing to read
        target, note = targets.recognise(title)
        chosen = index in mapping
        if chosen:
            wanted = mapping[index] or None
            if wanted is not None and not targets.valid(wanted) and wanted != IGNORE:
                problem(ImportProblem(header_row, title or f"Column {_column_letter(index)}",
                                      "Choose what this column feeds from the list."))
                wanted = None
            target, note = wanted, ""
        use = ColumnUse(index, title, target, targets.label(target), chosen, note, samples)
        report.columns.append(use)
        if target is None or target == IGNORE:
            if title or samples:
                report.ignored_columns.append(use.name)
            continue
        if target in seen:
            problem(ImportProblem(header_row, use.name,
                                  f"Two columns mean {targets.label(target)} ({seen[target].name} and this one); "
                                  "keep only one of them."))
            continue
        seen[target] = use
    for column in COLUMNS:
        if column.required and column.name not in seen:
            problem(ImportProblem(header_row, column.label, "This column is missing from the header row."))
    return targets


def _records(text: str, report: ImportReport) -> tuple[int, list[str], list[tuple[int, list[str]]]] | None:
    """The header row's number, the header and the numbered rows with a value; None (and a problem) if unreadable."""
    problem = report.problems.append
    try:
        records = list(enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text)), start=1))
    except csv.Error as exc:
        problem(ImportProblem(1, "", f"The file could not be read as CSV ({exc}). Save it again as CSV UTF-8."))
        return None
    records = [(number, cells) for number, cells in records if any(cell.strip() for cell in cells)]
    if not records:
        problem(ImportProblem(1, "", "The file is empty."))
        return None
    (header_row, header), data = records[0], records[1:]
    if len(data) > MAX_ROWS:
        problem(ImportProblem(header_row, "",
                              f"The file has {len(data):,} rows; import at most {MAX_ROWS:,} at a time."))
        return None
    if len(header) > MAX_COLUMNS:
        problem(ImportProblem(header_row, "", f"The file has {len(header):,} columns; the import reads at most "
                                              f"{MAX_COLUMNS}. Delete the columns nobody needs."))
        return None
    return header_row, header, data


def describe_columns(convening: Convening, csv_text: bytes | str, mapping: dict[int, str] | None = None
                     ) -> list[ColumnUse]:
    """What each column of a file feeds (the header and the mapping only; no row is checked)."""
    report = ImportReport()
    records = _records(decode_csv(csv_text), report)
    if records is None:
        return []
    header_row, header, data = records
    _layout(header, data, convening, mapping or {}, report, header_row)
    return report.columns


def _check_rows(convening: Convening, text: str, defaults: ImportDefaults, tickets: dict[int, TicketType],
                report: ImportReport, now: datetime, mapping: dict[int, str]) -> tuple[list[_Row], ImportTargets]:
    """Read and check every row; problems go into the report, clean rows come back with the targets used."""
    problem = report.problems.append
    targets = ImportTargets()
    records = _records(text, report)
    if records is None:
        return [], targets
    header_row, header, data = records
    targets = _layout(header, data, convening, mapping, report, header_row)
    if report.problems:
        return [], targets
    uses = [c for c in report.columns if c.target is not None and c.target != IGNORE]
    positions = {c.target: c.index for c in uses if c.target in COLUMNS_BY_NAME}
    shown = {c.target: c.name for c in uses}
    questions = [(q, by_target.index) for q in targets.questions
                 if (by_target := next((c for c in uses if c.target == question_target(q.id)), None))]
    ranks = sorted((int(c.target[5:]), c) for c in uses if c.target.startswith("rank:"))
    host_keys: dict[str, list[HostOrganization]] = {}
    for host in targets.hosts:
        host_keys.setdefault(_key(host.name), []).append(host)
    valid_hosts = {h.id for h in targets.hosts}
    host_names = {h.id: h.name for h in targets.hosts}

    existing = _registered_emails(convening.id)
    ticket_names = {" ".join(t.name.split()).casefold(): t.id for t in tickets.values()}
    first_seen: dict[str, int] = {}
    rows: list[_Row] = []
    for number, cells in data:
        report.rows += 1
        # Every column holds one line (a quoted cell may span several): breaks become spaces, controls go.
        values = {name: (single_line(cells[i]).strip() if i < len(cells) else "") for name, i in positions.items()}
        bad = len(report.problems)

        def fail(name: str, message: str) -> None:
            problem(ImportProblem(number, shown.get(name, COLUMNS_BY_NAME[name].label if name in COLUMNS_BY_NAME
                                                      else name), message))

        for column in COLUMNS:
            value = values.get(column.name, "")
            if column.required and not value:
                fail(column.name, f"{shown.get(column.name, column.label)} is required.")
            elif column.max_length and len(value) > column.max_length:
                fail(column.name, f"Keep it to {column.max_length} characters (this has {len(value)}).")

        email = normalize_email(values.get("email", ""))
        if email and len(email) <= 254:
            try:
                validate_email(email, check_deliverability=False)
            except EmailNotValidError as exc:
                fail("email", f"“{values['email']}” is not a valid email address: {exc}")
            else:
                if email in first_seen:
                    fail("email", f"{email} is also on row {first_seen[email]}.")
                else:
                    first_seen[email] = number
                if email in existing:
                    fail("email", f"{email} is already registered for this convening ({existing[email]}).")

        role = defaults.role
        if values.get("role"):
            role = ROLE_KEYS.get(_key(values["role"]))
            if role is None:
                fail("role", f"Unknown role “{values['role']}”; use one of: {', '.join(ROLE_LABELS.values())}.")

        ticket_id = defaults.ticket_type_id
        if values.get("ticket_type"):
            ticket_id = ticket_names.get(" ".join(values["ticket_type"].split()).casefold())
            if ticket_id is None:
                fail("ticket_type", f"Unknown ticket type “{values['ticket_type']}”; this convening has: "
                                    f"{', '.join(t.name for t in tickets.values()) or 'none yet'}.")
        elif ticket_id is None:
            fail("ticket_type", "No ticket type: fill this column or choose a default ticket type on the form.")

        needs = {}
        for name in ("dietary_needs", "accessibility_needs"):
            codes = []
            for part in re.split(r"[;,]", values.get(name, "")):
                if not part.strip():
                    continue
                code = NEED_KEYS[name].get(_key(part))
                if code is None:
                    fail(name, f"Unknown value “{part.strip()}”; use: {', '.join(NEED_LABELS[name].values())}.")
                elif code not in codes:
                    codes.append(code)
            needs[name] = [c for c in NEED_LABELS[name] if c in codes]

        settlement = defaults.settlement
        if values.get("payment"):
            settlement = SETTLEMENT_KEYS.get(_key(values["payment"]))
            if settlement is None:
                fail("payment", f"Unknown payment “{values['payment']}”; use invoice, paid or comp.")
        note = values.get("payment_note") or " ".join(single_line(defaults.payment_note).split())
        if (settlement == Settlement.PAID and not note and ticket_id in tickets
                and tickets[ticket_id].price_at(now) > 0):
            fail("payment_note", "A paid row needs a note saying how it was paid (this column, or the note on the form).")

        answers = {}
        for question, index in questions:
            try:
                value = answer_value(question, cells[index] if index < len(cells) else "")
            except ValueError as reason:
                fail(question_target(question.id), str(reason))
            else:
                if value not in (None, "", []):
                    answers[question.id] = value

        ranking = None
        if ranks:
            chosen: list[tuple[ColumnUse, int]] = []
            for _, use in ranks:
                cell = single_line(cells[use.index]).strip() if use.index < len(cells) else ""
                if not cell:
                    continue  # no preference for this rank, as on the ranking form
                found = host_keys.get(_key(cell), [])
                if len(found) != 1:
                    fail(use.target, f"“{cell}” is not one of this convening's hosts: "
                                     f"{', '.join(h.name for h in targets.hosts)}." if not found else
                                     f"“{cell}” matches {len(found)} hosts; write the host's name as it is spelled.")
                    continue
                chosen.append((use, found[0].id))
            try:
                ranking = check_ranking([host_id for _, host_id in chosen], valid_hosts)
            except ConveneError as error:
                use, host_id = chosen[error.details["position"]]
                if error.code == "duplicate_host_rank":
                    first = chosen[error.details["first"]][0]
                    fail(use.target, f"{error.message} {host_names[host_id]} is also the choice in {first.name}.")
                else:
                    fail(use.target, error.message)

        if len(report.problems) == bad:
            person = {name: values.get(name, "") for name in PERSON_COLUMNS}
            person["email"] = email
            person.update(needs)
            rows.append(_Row(number, person, role, ticket_id, " ".join(values.get("delegation", "").split()),
                             settlement, note, answers, ranking))
    return rows, targets


def answer_value(question: Question, cell: str):
    """A cell as the answer the registration form would store for this question; ValueError says why not.

    Empty is no answer (organizers are not bound by required questions). Choices are matched
    ignoring case, accents and punctuation; several choices are separated by ; (or by commas, as
    Google Forms writes them, when every piece is a choice).
    """
    kind = question.kind
    if kind == QuestionKind.LONG_TEXT:
        value = multi_line(cell).strip()
        if len(value) > LONG_ANSWER_MAX:
            raise ValueError(f"Keep the answer to {LONG_ANSWER_MAX:,} characters (this has {len(value):,}).")
        return value
    value = single_line(cell).strip()
    if not value:
        return None
    if kind == QuestionKind.YES_NO:
        answer = YES_NO_KEYS.get(_key(value))
        if answer is None:
            raise ValueError(f"“{_shorten(value, 60)}” is not a yes or no; write yes or no.")
        return answer
    choices = {}
    for choice in question.choices or []:
        choices.setdefault(_key(choice), choice)
    if kind == QuestionKind.SINGLE_CHOICE:
        if _key(value) not in choices:
            raise ValueError(f"“{_shorten(value, 60)}” is not one of the choices: {'; '.join(question.choices)}.")
        return choices[_key(value)]
    if kind == QuestionKind.MULTIPLE_CHOICE:
        picked = _several_choices(value, choices)
        unknown = [part for part in picked if part not in question.choices]
        if unknown:
            raise ValueError(f"“{_shorten(unknown[0], 60)}” is not one of the choices: "
                             f"{'; '.join(question.choices)}. Separate several with ;")
        return [c for c in question.choices if c in picked]  # the form's order, each once
    if len(value) > SHORT_ANSWER_MAX:
        raise ValueError(f"Keep the answer to {SHORT_ANSWER_MAX} characters (this has {len(value)}).")
    return value


def _several_choices(value: str, choices: dict[str, str]) -> list[str]:
    """Choices named in a cell; a part that names none comes back as typed."""
    if _key(value) in choices:
        return [choices[_key(value)]]
    picked: list[str] = []
    for part in re.split(r"[;\n|]", value):
        part = part.strip()
        if not part:
            continue
        if _key(part) in choices:
            picked.append(choices[_key(part)])
            continue
        pieces = _comma_pieces(part.split(","), choices)
        picked.extend(pieces if pieces is not None else [part])
    return picked


def _comma_pieces(pieces: list[str], choices: dict[str, str]) -> list[str] | None:
    """Comma-separated pieces grouped into choices (a choice may hold a comma), or None when they cannot be."""
    best: dict[int, list[str] | None] = {len(pieces): []}
    for start in range(len(pieces) - 1, -1, -1):
        best[start] = None
        for end in range(start + 1, len(pieces) + 1):
            key = _key(",".join(pieces[start:end]))
            if key in choices and best[end] is not None:
                best[start] = [choices[key], *best[end]]
                break
    return best[0]


def _registered_emails(convening_id: int) -> dict[str, str]:
    """Email -> reference of everyone holding or waiting for a seat, in one query."""
    return dict(db.session.execute(
        sa.select(Registration.email, Registration.reference)
        .where(Registration.convening_id == convening_id, Registration.status.in_(ACTIVE))
    ).all())


def _write(convening_id: int, rows: list[_Row], defaults: ImportDefaults, new_delegation: str, send_emails: bool,
           now: datetime, report: ImportReport, targets: ImportTargets, job_id: int | None = None) -> None:
    """The one unit of work: lock, re-check emails, seats, questions and hosts, write people, answers, rankings.

    With `job_id`, the job's row is locked first and marked imported in the same transaction, so a
    second run of the job finds the mark and writes nothing.
    """
    with unit_of_work():
        job = None
        if job_id is not None:
            from convene.models import Job

            [job] = lock(Job, job_id)
            earlier = (job.params or {}).get("imported")
            if earlier is not None:
                report.imported, report.repeated = earlier["rows"], True
                return
        [convening] = lock(Convening, convening_id)
        tickets = {t.id: t for t in lock(TicketType, *{row.ticket_type_id for row in rows})}
        # Questions and hosts change only under the convening's lock: what the rows were checked against still holds?
        answering = any(row.answers or row.ranking for row in rows)
        if answering and import_targets(convening).fingerprint() != targets.fingerprint():
            report.code = "import_changed"
            raise _Rejected(report)
        lapse_overdue_offers(convening, now)
        offer_seats_locked(convening, now)  # people already waiting go before the newcomers

        # Someone may have registered since the file was checked; the lock makes this answer final.
        taken = _registered_emails(convening.id)
        for row in rows:
            if row.person["email"] in taken:
                report.problems.append(ImportProblem(
                    row.number, "Email",
                    f"{row.person['email']} is already registered for this convening ({taken[row.person['email']]})."))
        if report.problems:
            report.code = "import_invalid"
            raise _Rejected(report)

        report.shortfalls = _shortfalls(convening, tickets, rows)
        if report.shortfalls:
            report.code = "import_over_capacity"
            raise _Rejected(report)

        delegation_ids = _delegations(convening.id, rows, new_delegation, report)
        default_delegation = delegation_ids.get(delegation_key(new_delegation)) if new_delegation else defaults.delegation_id

        # A cancelled or lapsed registration with the same email comes back with its reference.
        emails = {row.person["email"] for row in rows}
        inactive = [rid for email, rid in db.session.execute(
            sa.select(Registration.email, Registration.id)
            .where(Registration.convening_id == convening.id, Registration.status.not_in(ACTIVE))
        ).all() if email in emails]
        revived = {r.email: r for r in db.session.execute(
            sa.select(Registration).options(selectinload(Registration.answers)).where(Registration.id.in_(inactive))
        ).scalars()} if inactive else {}
        if revived:  # a registration that comes back is rebuilt from the file: its old ranking goes with its answers
            db.session.execute(sa.delete(VisitPreference).where(
                VisitPreference.registration_id.in_(sorted(r.id for r in revived.values()))))
        fresh = new_references(convening, len(rows) - len(revived))  # before any add: it queries, which flushes

        placed: list[Registration] = []
        for row in rows:
            registration = revived.get(row.person["email"])
            if registration is None:
                registration = Registration(convening_id=convening.id, reference=fresh.pop(), token_version=1)
                db.session.add(registration)
            else:
                registration.answers.clear()
                registration.token_version += 1
                registration.cancelled_at = registration.offer_expires_at = None
                report.reactivated += 1
            for key, value in row.person.items():
                setattr(registration, key, value)
            registration.ticket_type = tickets[row.ticket_type_id]
            registration.delegation_id = (delegation_ids[delegation_key(row.delegation_name)]
                                          if delegation_key(row.delegation_name) else default_delegation)
            registration.role = row.role
            registration.status = Status.CONFIRMED
            registration.source = "import"
            registration.confirmed_at = now
            registration.order = None  # a revived registration's old order stays with its history
            placed.append(registration)
        db.session.flush()  # old answers of revived registrations are gone before the new ones go in
        for row, registration in zip(rows, placed, strict=True):
            for question_id, value in row.answers.items():
                registration.answers.append(Answer(question_id=question_id, value=value))
            report.answers += len(row.answers)
            for rank, host_id in enumerate(row.ranking or [], start=1):
                db.session.add(VisitPreference(registration_id=registration.id, host_id=host_id, rank=rank))
            report.rankings += bool(row.ranking)
        db.session.flush()
        # Seats on paid tickets get their orders here, in the same transaction: invoices numbered in row order.
        for row, registration in zip(rows, placed, strict=True):
            order = settle_seat_locked(convening, registration, row.settlement, row.payment_note, now,
                                       send_email=send_emails)
            if order is not None:
                label = SETTLEMENT_LABELS[Settlement(row.settlement)]
                report.orders[label] = report.orders.get(label, 0) + 1
                if order.invoice_number:
                    report.invoice_numbers.append(order.invoice_number)
        if send_emails:
            for registration in placed:
                queue_status_email(registration)
                report.emails_queued += 1
        report.imported = len(rows)
        if job is not None:
            job.params = {**(job.params or {}), "imported": {"rows": report.imported, "message": summary(report)}}


REFERENCE_BATCH = 1000


def new_references(convening: Convening, count: int) -> list[str]:
    """`count` distinct references not yet taken, checked a thousand at a time instead of one query each."""
    prefix = (convening.reference_prefix or "REG").upper()  # as new_reference makes them
    references: set[str] = set()
    while len(references) < count:
        wanted = min(count - len(references), REFERENCE_BATCH)
        candidates = {f"{prefix}-{''.join(secrets.choice(REFERENCE_ALPHABET) for _ in range(5))}"
                      for _ in range(wanted)} - references
        taken = set(db.session.scalars(sa.select(Registration.reference).where(Registration.reference.in_(candidates))))
        references |= candidates - taken
    return list(references)


def _shortfalls(convening: Convening, tickets: dict[int, TicketType], rows: list[_Row]) -> list[str]:
    """Under the lock: one sentence per limit the batch would break, or none."""
    usage = seat_usage(convening.id)
    shortfalls = []
    if convening.capacity is not None:
        left = max(0, convening.capacity - usage.total)
        if len(rows) > left:
            shortfalls.append(f"The convening has {left} seat{'s' * (left != 1)} left; "
                              f"the file has {len(rows)} people.")
    wanted = Counter(row.ticket_type_id for row in rows)
    for ticket_id, count in sorted(wanted.items(), key=lambda item: tickets[item[0]].position):
        ticket = tickets[ticket_id]
        if ticket.capacity is None:
            continue
        left = max(0, ticket.capacity - usage.by_ticket.get(ticket_id, 0))
        if count > left:
            shortfalls.append(f"“{ticket.name}” has {left} seat{'s' * (left != 1)} left; "
                              f"the file has {count} people for it.")
    return shortfalls


def _delegations(convening_id: int, rows: list[_Row], new_delegation: str, report: ImportReport) -> dict[str, int]:
    """Under the lock: ids of the delegations the rows name (by delegation_key), creating the missing ones."""
    names: dict[str, str] = {}
    for name in [new_delegation, *(row.delegation_name for row in rows)]:
        if delegation_key(name):
            names.setdefault(delegation_key(name), name)
    # Matched here rather than in SQL: the same folding as find_or_create_delegation (case, accents, punctuation).
    known: dict[str, int] = {}
    for d in db.session.execute(
            sa.select(Delegation).where(Delegation.convening_id == convening_id).order_by(Delegation.id)).scalars():
        known.setdefault(delegation_key(d.name), d.id)
    ids = {}
    for key, name in names.items():
        if key in known:
            ids[key] = known[key]
        else:
            ids[key] = find_or_create_delegation(convening_id, name).id
            report.created_delegations.append(name)
    return ids


# ---------------------------------------------------------------- the uploaded file, kept between requests

UPLOAD_MAX_AGE = 2 * 3600  # seconds a file waits for the organizer to finish the columns step
_UPLOAD_NAME = re.compile(r"[0-9a-f]{32}")


def _stored_name(name: str) -> str:
    return f"import-upload-{name}.csv"


def keep_upload(data: bytes, convening_id: int, user_id: int) -> str:
    """Keep an uploaded file (columns step, import job); returns a signed reference to it, never a path.

    The file is kept through convene/storage.py, so another web machine or the worker reads it
    (FILE_STORAGE=database), and it expires with the other stored files. It gets a random name of
    our own; the reference names it, the convening and the organizer, so it opens nothing else and
    for nobody else, for UPLOAD_MAX_AGE.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise ConveneError("import_invalid", "The file is larger than 5 MB; split it into smaller files.")
    from convene import storage

    name = secrets.token_hex(16)
    storage.store(_stored_name(name), data=data, content_type="text/csv")
    return make_token("import-upload", {"f": name, "c": convening_id, "u": user_id})


def upload_name(reference: str, convening_id: int, user_id: int) -> str:
    """The stored file's name a reference points at; ConveneError import_upload_gone when it is not valid."""
    try:
        payload = read_token("import-upload", reference or "", UPLOAD_MAX_AGE)
    except ConveneError:
        raise ConveneError("import_upload_gone") from None
    name = payload.get("f")
    if (payload.get("c") != convening_id or payload.get("u") != user_id or not isinstance(name, str)
            or not _UPLOAD_NAME.fullmatch(name)):
        raise ConveneError("import_upload_gone")
    return _stored_name(name)


def read_stored_upload(name: str) -> bytes:
    """The bytes of a kept upload by its stored name; ConveneError import_upload_gone when it is not there."""
    from convene import storage

    data = storage.read(name) if name.startswith("import-upload-") else None
    if data is None or len(data) > MAX_UPLOAD_BYTES:
        raise ConveneError("import_upload_gone")
    return data


def read_upload(reference: str, convening_id: int, user_id: int) -> bytes:
    """The bytes of a file kept by keep_upload; ConveneError import_upload_gone when it is not there (any more)."""
    return read_stored_upload(upload_name(reference, convening_id, user_id))


def discard_upload(reference: str, convening_id: int, user_id: int) -> None:
    """Delete a kept file once its import is done (a reference that names nothing is fine)."""
    from convene import storage

    try:
        storage.delete(upload_name(reference, convening_id, user_id))
    except ConveneError:
        pass


# ---------------------------------------------------------------- big files, imported by the worker

# Files with more rows than this are imported by the worker. Checking and writing 500 plain rows
# takes 1.8 s on SQLite and 3.3 s on PostgreSQL (a busy 2-core machine), more with answers, rankings
# and orders; bigger files would hold a web process, and the organizer, towards a proxy's timeout.
# A 300-person convening's list still imports at once, with its per-row report on the same page.
IMPORT_INLINE_MAX = 500


def import_inline_max() -> int:
    return int(current_app.config.get("IMPORT_INLINE_MAX", IMPORT_INLINE_MAX))


def count_rows(data: bytes | str) -> int:
    """How many rows of people a file has under its header (0 when it cannot be read)."""
    records = _records(decode_csv(data), ImportReport())
    return 0 if records is None else len(records[2])


def request_registrations_import(convening_id: int, reference: str, defaults: ImportDefaults, *, send_emails: bool,
                                 mapping: dict[int, str] | None, rows: int, requested_by: int):
    """Queue the import of a kept upload; returns its job (the same job for the same upload: a double click)."""
    from dataclasses import asdict

    from convene import jobs

    name = upload_name(reference, convening_id, requested_by)
    params = {"upload": name, "defaults": asdict(defaults), "send_emails": bool(send_emails),
              "mapping": {str(index): target for index, target in (mapping or {}).items()}}
    return jobs.enqueue("import_registrations", convening_id=convening_id, requested_by=requested_by,
                        params=params, total=rows, idempotency_key=f"import:{name}")


def report_file(job_id: int) -> str:
    """Where an import job keeps its report (the problems of a file that did not import)."""
    return f"import-report-{job_id}.json"


def job_report(job_id: int) -> dict | None:
    """An import job's stored report: {"message", "problems": [{row, column, message}], "shortfalls"}."""
    import json

    from convene import storage

    data = storage.read(report_file(job_id))
    try:
        return None if data is None else json.loads(data)
    except ValueError:
        return None


def summary(report: ImportReport) -> str:
    """What an import did, in a few sentences (a job's message)."""
    parts = [f"Imported {report.imported} delegate{'s' * (report.imported != 1)}."]
    if report.reactivated:
        parts.append(f"{report.reactivated} had cancelled before and are registered again.")
    if report.created_delegations:
        parts.append(f"New delegations: {', '.join(report.created_delegations)}.")
    if report.answers:
        parts.append(f"{report.answers} answers saved.")
    if report.rankings:
        parts.append(f"{report.rankings} site-visit rankings saved.")
    parts.append(f"{report.emails_queued} confirmation emails sent." if report.emails_queued
                 else "No emails were sent.")
    if report.ignored_columns:
        parts.append(f"Columns not read: {', '.join(report.ignored_columns)}.")
    return " ".join(parts)


def import_registrations_task(run) -> dict:
    """The worker's import of a kept upload: all rows or none; a second run of a committed import changes nothing."""
    import json

    from convene import storage
    from convene.models import Job

    earlier = (db.session.get(Job, run.id).params or {}).get("imported")
    db.session.rollback()
    if earlier is not None:  # the import committed on an earlier run (its worker died before saying so)
        return {"done": earlier["rows"], "total": earlier["rows"], "message": earlier["message"]}
    params = run.params
    data = read_stored_upload(params.get("upload", ""))
    defaults = ImportDefaults(**{k: v for k, v in (params.get("defaults") or {}).items()
                                 if k in ImportDefaults.__dataclass_fields__})
    mapping = {int(index): target for index, target in (params.get("mapping") or {}).items()}
    run.progress(0, message="Checking every row")
    report = import_registrations(run.convening_id, data, defaults, bool(params.get("send_emails")),
                                  mapping=mapping, refuse_unread=True, job_id=run.id)
    if report.ok:
        storage.delete(params["upload"])
        storage.delete(report_file(run.id))
        return {"done": report.imported, "total": report.imported, "message": report.message_for_job}
    problems = [{"row": p.row, "column": p.column, "message": p.message} for p in report.problems]
    if report.code == "import_columns_unread":
        problems.append({"row": 1, "column": ", ".join(c.name for c in report.unread),
                         "message": "Nothing reads this column: say what it feeds on the import page."})
    storage.store(report_file(run.id), data=json.dumps(
        {"message": report.message, "problems": problems, "shortfalls": report.shortfalls}).encode(),
        content_type="application/json")
    first = (f" First: row {problems[0]['row']}, {problems[0]['column'] or 'file'}: {problems[0]['message']}"
             if problems else " " + " ".join(report.shortfalls))
    raise ConveneError(report.code or "import_invalid",
                       f"Nothing was imported. {report.message} ({len(problems)} problem(s)).{first}"[:1900])
