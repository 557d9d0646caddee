"""Registrations as a CSV spreadsheet: one row per person, one column per question."""
from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator

import sqlalchemy as sa

from convene.extensions import db
from convene.forms import format_answer
from convene.languages import ENGLISH_NAMES as LANGUAGE_NAMES
from convene.models import (
    ACCESSIBILITY_NEEDS,
    DIETARY_NEEDS,
    Answer,
    Convening,
    Delegation,
    HostOrganization,
    Order,
    ProgramSession,
    Registration,
    SessionBlock,
    SessionSignup,
    SiteVisit,
    TicketType,
    VisitAssignment,
    VisitSlot,
)
from convene.models.payments import ORDER_STATUS_LABELS
from convene.models.registrations import ROLE_LABELS, STATUS_LABELS

BOM = "\ufeff"  # Excel reads the file as UTF-8 only with it
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# "+1 315 555 5707" is a phone number, not a formula: digits and phone punctuation cannot run anything.
PHONE_NUMBER = re.compile(r"\+[0-9][0-9 ().\-]*")

HEADERS = (
    "Reference", "Status", "Given name", "Family name", "Badge name", "Pronouns", "Email", "Phone", "Organization",
    "Job title", "Role", "Delegation", "Ticket type", "Dietary needs", "Dietary notes", "Accessibility needs",
    "Accessibility notes", "Language", "Interpretation", "Registered at", "Price", "Currency", "Payment", "Order",
    "Invoice", "PO number",
    "Site visits", "Session sign-ups", "Working group places",
)


def csv_safe(value: object) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading quote."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not PHONE_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _labels(codes: list[str] | None, labels: dict[str, str]) -> str:
    return "; ".join(labels.get(code, code) for code in codes or [])


def _site_visits_by_person(connection: sa.Connection, convening: Convening, ids: list[int]
                           ) -> dict[int, list[str]]:
    """Each person's visits, in slot order: the published plan once published (as rosters show), else the working one."""
    column = (VisitAssignment.published_site_visit_id if convening.visits_published_at is not None
              else VisitAssignment.site_visit_id)
    rows = connection.execute(
        sa.select(VisitAssignment.registration_id, VisitSlot.label, HostOrganization.name)
        .join(SiteVisit, SiteVisit.id == column).join(VisitSlot, VisitSlot.id == SiteVisit.slot_id)
        .join(HostOrganization, HostOrganization.id == SiteVisit.host_id)
        .where(VisitAssignment.registration_id.in_(ids))
        .order_by(VisitSlot.starts_at, VisitSlot.id)
    ).all() if ids else []
    by_person: dict[int, list[str]] = defaultdict(list)
    for registration_id, slot, host in rows:
        by_person[registration_id].append(f"{slot}: {host}")
    return by_person


def _sessions_by_person(connection: sa.Connection, ids: list[int]) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """Each person's session sign-ups in time order, apart from their places in working groups (blocks)."""
    rows = connection.execute(
        sa.select(SessionSignup.registration_id, ProgramSession.title, SessionBlock.name)
        .join(ProgramSession, ProgramSession.id == SessionSignup.session_id)
        .outerjoin(SessionBlock, SessionBlock.id == ProgramSession.block_id)
        .where(SessionSignup.registration_id.in_(ids))
        .order_by(ProgramSession.starts_at, ProgramSession.id)
    ).all() if ids else []
    sessions: dict[int, list[str]] = defaultdict(list)
    groups: dict[int, list[str]] = defaultdict(list)
    for registration_id, title, block in rows:
        if block is None:
            sessions[registration_id].append(title)
        else:
            groups[registration_id].append(f"{block}: {title}")
    return sessions, groups


def question_headers(labels: Iterable[str]) -> list[str]:
    """Question labels as headers, numbered when two questions share a label."""
    seen: dict[str, int] = defaultdict(int)
    headers = []
    for label in labels:
        seen[label] += 1
        headers.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return headers


EXPORT_BATCH = 1000  # rows read per round trip; answers, visits and sessions are fetched per batch


def _export_select(where: list, order_by: Iterable) -> sa.Select:
    """The export's columns as plain rows: no ORM objects to build, track and keep for the whole file."""
    return (
        sa.select(
            Registration.id, Registration.reference, Registration.status, Registration.given_name,
            Registration.family_name, Registration.badge_name, Registration.pronouns, Registration.email,
            Registration.phone, Registration.organization, Registration.job_title, Registration.role,
            Delegation.name.label("delegation_name"), TicketType.name.label("ticket_name"),
            Registration.dietary_needs, Registration.dietary_notes, Registration.accessibility_needs,
            Registration.accessibility_notes, Registration.language, Registration.interpretation_needs,
            Registration.created_at, Registration.price_cents,
            Registration.order_id, Order.currency.label("order_currency"), Order.status.label("order_status"),
            Order.reference.label("order_reference"), Order.invoice_number, Order.po_number,
        )
        .join(TicketType, TicketType.id == Registration.ticket_type_id)
        .outerjoin(Delegation, Delegation.id == Registration.delegation_id)
        .outerjoin(Order, Order.id == Registration.order_id)
        .where(*where)
        .order_by(*(order_by or (Registration.sort_key, Registration.id)))
    )


def _money_cells(r, convening: Convening) -> list[str]:
    """Price of the seat, currency, where its payment stands, and the order's reference, invoice and PO number."""
    price = f"{r.price_cents / 100:.2f}"
    if r.order_id is None:
        return [price, convening.currency, "No payment due" if not r.price_cents else "No order", "", "", ""]
    return [price, r.order_currency, ORDER_STATUS_LABELS.get(r.order_status, r.order_status), r.order_reference,
            r.invoice_number or "", r.po_number]


def _answers_by_person(connection: sa.Connection, ids: list[int]) -> dict[int, dict[int, object]]:
    answers: dict[int, dict[int, object]] = defaultdict(dict)
    for registration_id, question_id, value in connection.execute(
        sa.select(Answer.registration_id, Answer.question_id, Answer.value).where(Answer.registration_id.in_(ids))
    ):
        answers[registration_id][question_id] = value
    return answers


def iter_registrations_csv(convening: Convening, where: Iterable = (), order_by: Iterable = (),
                           batch: int | None = None, connection: sa.Connection | None = None) -> Iterator[str]:
    """The CSV text (with BOM) of the convening's registrations matching `where`, a batch of rows at a time.

    Rows stream from the database (a server-side cursor on PostgreSQL), so memory stays flat at any size;
    each batch costs three more queries (answers, site visits, sessions) for its people. Without a
    `connection`, the rows are read on a connection of their own, opened when the first row is wanted:
    a download is written after its view returned, outside the request's session and app context.
    """
    where = [Registration.convening_id == convening.id, *where]
    batch = batch or EXPORT_BATCH
    questions = list(convening.questions)
    # Read now, in the request's session: the rows are written while the response streams, after the view returned.
    convening.timezone, convening.currency, convening.visits_published_at  # noqa: B018
    if connection is not None:
        return _stream_csv(connection, convening, questions, where, order_by, batch)
    return _on_own_connection(db.engine, convening, questions, where, order_by, batch)


def _on_own_connection(engine: sa.Engine, *args) -> Iterator[str]:
    with engine.connect() as connection:
        yield from _stream_csv(connection, *args)


def _stream_csv(connection: sa.Connection, convening: Convening, questions: list, where: list, order_by: Iterable,
                batch: int) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(BOM)
    writer.writerow([csv_safe(h) for h in (*HEADERS, *question_headers(q.label for q in questions))])
    yield buffer.getvalue()
    result = connection.execute(_export_select(where, order_by).execution_options(yield_per=batch))
    for rows in result.partitions():
        ids = [r.id for r in rows]
        answers = _answers_by_person(connection, ids)
        visits = _site_visits_by_person(connection, convening, ids)
        sessions, groups = _sessions_by_person(connection, ids)
        buffer.seek(0)
        buffer.truncate()
        for r in rows:
            mine = answers.get(r.id, {})
            row = [
                r.reference, STATUS_LABELS.get(r.status, r.status), r.given_name, r.family_name, r.badge_name,
                r.pronouns, r.email, r.phone, r.organization, r.job_title, ROLE_LABELS.get(r.role, r.role),
                r.delegation_name or "", r.ticket_name,
                _labels(r.dietary_needs, DIETARY_NEEDS), r.dietary_notes,
                _labels(r.accessibility_needs, ACCESSIBILITY_NEEDS), r.accessibility_notes,
                LANGUAGE_NAMES.get(r.language, r.language), _labels(r.interpretation_needs, LANGUAGE_NAMES),
                convening.local(r.created_at).isoformat(timespec="seconds"),
                *_money_cells(r, convening),
                "; ".join(visits.get(r.id, [])), "; ".join(sessions.get(r.id, [])), "; ".join(groups.get(r.id, [])),
                *(format_answer(mine.get(q.id)) for q in questions),
            ]
            writer.writerow([csv_safe(cell) for cell in row])
        yield buffer.getvalue()


def registrations_csv(convening: Convening, where: Iterable = (), order_by: Iterable = ()) -> str:
    """The whole CSV text at once (for a file or a test); the download streams iter_registrations_csv."""
    return "".join(iter_registrations_csv(convening, where, order_by, connection=db.session.connection()))


# ---------------------------------------------------------------- big exports, made by the worker

# More rows than this are exported by the worker, not during the request: 2,000 rows take about a
# second to build, and a 10,000-person list would hold a web process (and the organizer) for several.
EXPORT_INLINE_MAX = 2000


def export_inline_max() -> int:
    from flask import current_app

    return int(current_app.config.get("EXPORT_INLINE_MAX", EXPORT_INLINE_MAX))


def request_registrations_export(convening_id: int, args: dict[str, str], *, total: int,
                                 requested_by: int | None = None):
    """Queue the registrations export (filtered by the list's query string `args`); returns its job."""
    from convene import jobs

    kept = {key: str(value)[:200] for key, value in args.items() if key in EXPORT_ARGS}
    return jobs.enqueue("export_registrations", convening_id=convening_id, requested_by=requested_by,
                        params={"args": kept}, total=total)


EXPORT_ARGS = ("q", "status", "ticket", "delegation", "role", "sort", "dir")


def export_registrations_task(run) -> dict:
    """The worker's export: the same CSV as the download, stored as the job's file."""
    from convene import storage
    from convene.services.registration_lists import parse_list_args

    convening = db.session.get(Convening, run.convening_id)
    if convening is None:
        from convene.errors import ConveneError

        raise ConveneError("convening_not_found", "That convening no longer exists.")
    args = parse_list_args(convening, run.params.get("args") or {})
    text = registrations_csv(convening, args.conditions(), args.order_by())
    rows = sum(1 for _ in csv.reader(io.StringIO(text))) - 1  # a note may hold a line break: count records
    name = f"{re.sub(r'[^A-Za-z0-9_-]+', '-', convening.slug)[:60]}-registrations-{run.id}.csv"
    db.session.rollback()
    storage.store(name, data=text.encode("utf-8"), content_type="text/csv")
    return {"done": rows, "total": rows, "result_file": name, "message": f"{rows} registration(s)"}
