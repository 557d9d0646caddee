"""Import delegates from a spreadsheet (CSV): check every row first, then write all of them or none.

The file is read without the database (encoding, delimiter, headers, each cell), then checked
against the convening with a handful of queries (ticket types, delegations, emails already
registered), never one per row. Only a clean file reaches the unit of work, which locks the
convening and its ticket types, re-checks emails and seats under the lock, and writes the batch.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import selectinload

from convene.errors import MESSAGES, ConveneError
from convene.extensions import db
from convene.models import (
    ACCESSIBILITY_NEEDS,
    ACTIVE,
    DIETARY_NEEDS,
    Convening,
    Delegation,
    Registration,
    Role,
    Status,
    TicketType,
    utcnow,
)
from convene.models.registrations import ROLE_LABELS
from convene.services.db import lock, unit_of_work
from convene.services.payments import SETTLEMENT_LABELS, Settlement, settle_seat_locked
from convene.services.registrations import (
    lapse_overdue_offers,
    offer_seats_locked,
    queue_status_email,
    find_or_create_delegation,
    new_reference,
    normalize_email,
    seat_usage,
)
from convene.text import delegation_key, single_line

MAX_ROWS = 5000
DELEGATION_NAME_MAX = 160  # Delegation.name


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
    """Letters and digits only, case-folded: 'E-mail address', 'email_address' and 'Email Address' agree."""
    return re.sub(r"[^0-9a-z]", "", (text or "").casefold())


HEADER_KEYS = {
    _key(alias): column.name
    for column in COLUMNS
    for alias in (column.name, column.label, *column.aliases)
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
    """What an import did, or why it did nothing."""

    rows: int = 0
    imported: int = 0
    problems: list[ImportProblem] = field(default_factory=list)
    shortfalls: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    created_delegations: list[str] = field(default_factory=list)
    reactivated: int = 0
    emails_queued: int = 0
    orders: dict[str, int] = field(default_factory=dict)  # settlement label -> orders made, for paid tickets
    invoice_numbers: list[str] = field(default_factory=list)
    code: str | None = None

    @property
    def ok(self) -> bool:
        return self.code is None

    @property
    def message(self) -> str:
        return MESSAGES[self.code] if self.code else f"Imported {self.imported} delegates."


@dataclass
class _Row:
    number: int
    person: dict
    role: str
    ticket_type_id: int
    delegation_name: str  # empty when the row uses the default delegation
    settlement: str = Settlement.INVOICE
    payment_note: str = ""


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


def template_csv() -> str:
    """An empty spreadsheet with the expected headers, UTF-8 with BOM for Excel."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    csv.writer(buffer).writerow([c.label for c in COLUMNS])
    return buffer.getvalue()


def import_registrations(
    convening_id: int,
    csv_text: bytes | str,
    defaults: ImportDefaults | None = None,
    send_emails: bool = False,
    *,
    now: datetime | None = None,
) -> ImportReport:
    """Import every row of a delegates CSV as confirmed registrations, or none of them.

    Returns a report; when it lists problems or shortfalls nothing was written. Raises
    ConveneError only when the defaults themselves are wrong (a ticket type or delegation of
    another convening).
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
    rows = _check_rows(convening, decode_csv(csv_text), defaults, tickets, report, now)
    if report.problems or not rows:
        if not report.problems:
            report.problems.append(ImportProblem(1, "", "The file has no rows of people under its header."))
        report.code = "import_invalid"
        return report

    try:
        _write(convening_id, rows, defaults, new_delegation, send_emails, now, report)
    except _Rejected as rejected:
        return rejected.report
    return report


def _check_rows(convening: Convening, text: str, defaults: ImportDefaults, tickets: dict[int, TicketType],
                report: ImportReport, now: datetime) -> list[_Row]:
    """Read and check every row; problems go into the report, clean rows come back."""
    problem = report.problems.append
    try:
        records = list(enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text)), start=1))
    except csv.Error as exc:
        problem(ImportProblem(1, "", f"The file could not be read as CSV ({exc}). Save it again as CSV UTF-8."))
        return []
    records = [(number, cells) for number, cells in records if any(cell.strip() for cell in cells)]
    if not records:
        problem(ImportProblem(1, "", "The file is empty."))
        return []
    (header_row, header), data = records[0], records[1:]
    if len(data) > MAX_ROWS:
        problem(ImportProblem(header_row, "",
                              f"The file has {len(data):,} rows; import at most {MAX_ROWS:,} at a time."))
        return []

    positions: dict[str, int] = {}
    shown: dict[str, str] = {}  # column name -> the header as the file spells it
    for index, title in enumerate(header):
        name = HEADER_KEYS.get(_key(title))
        if name is None:
            if title.strip():
                report.ignored_columns.append(title.strip())
            continue
        if name in positions:
            problem(ImportProblem(header_row, title.strip(),
                                  f"Two columns mean {COLUMNS_BY_NAME[name].label}; keep only one of them."))
            continue
        positions[name] = index
        shown[name] = title.strip()
    for column in COLUMNS:
        if column.required and column.name not in positions:
            problem(ImportProblem(header_row, column.label, "This column is missing from the header row."))
    if report.problems:
        return []

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
            problem(ImportProblem(number, shown.get(name, COLUMNS_BY_NAME[name].label), message))

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

        if len(report.problems) == bad:
            person = {name: values.get(name, "") for name in PERSON_COLUMNS}
            person["email"] = email
            person.update(needs)
            rows.append(_Row(number, person, role, ticket_id, " ".join(values.get("delegation", "").split()),
                             settlement, note))
    return rows


def _registered_emails(convening_id: int) -> dict[str, str]:
    """Email -> reference of everyone holding or waiting for a seat, in one query."""
    return dict(db.session.execute(
        sa.select(Registration.email, Registration.reference)
        .where(Registration.convening_id == convening_id, Registration.status.in_(ACTIVE))
    ).all())


def _write(convening_id: int, rows: list[_Row], defaults: ImportDefaults, new_delegation: str, send_emails: bool,
           now: datetime, report: ImportReport) -> None:
    """The one unit of work: lock, re-check emails and seats, create delegations and registrations, queue email."""
    with unit_of_work():
        [convening] = lock(Convening, convening_id)
        tickets = {t.id: t for t in lock(TicketType, *{row.ticket_type_id for row in rows})}
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
        references: set[str] = set()
        while len(references) < len(rows) - len(revived):  # before any add: new_reference queries, which flushes
            references.add(new_reference(convening))
        fresh = list(references)

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
