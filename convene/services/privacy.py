"""Privacy: the notice linked from every form, how long personal data is kept, and erasing it.

Erasing a convening's personal data keeps every row that counts something (registrations with their
status, ticket, role, delegation, dates and prices; orders with their references, amounts, invoice
and credit-note numbers; site-visit and session places; choice and yes/no answers; how many emails
went out) and blanks or removes what names or describes a person:

- registrations: names, pronouns, email, phone, organization, job title, dietary and access needs
  and notes (their counts move to the erasure's record, so the dashboard shows the same numbers);
  the manage, offer and check-in links are revoked. The name becomes "Erased" and the email an
  address on the reserved `.invalid` domain, so lists still show a row per person.
- free-text answers are deleted; choice and yes/no answers stay, as they say no more than a count
  would (one that is not among the question's choices counts as free text and goes).
- orders: the buyer's name, email, organization and billing address, payment notes and the Stripe
  checkout address; their links are revoked. Credit notes lose the names of the seats they credit;
  refunds their reason. PO numbers, Stripe references and every amount stay for the accounts.
- emails of the convening (to its registrations, or to its buyers about its orders): address,
  subject, text and error; one not sent yet is never sent. Their `.eml` copies (no SMTP) go.
- delegation contacts, presenters (name, organization, bio) and site-visit hosts' contact people.
- badge and agenda PDFs kept on the server.
- the audit log of the convening keeps every entry (who did what, when) but the personal values in
  them, those the erasure's own changes wrote included, become "(erased)"; presenters' entries lose
  their names.

Organizers' own accounts, the convening's settings, discount codes and their notes stay.
"""
from __future__ import annotations

import calendar
import hashlib
import logging
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from convene import storage
from convene.errors import ConveneError
from convene.extensions import db
from convene.models import (
    ACCESSIBILITY_NEEDS,
    ACTIVE,
    DIETARY_NEEDS,
    PERSON_FIELDS,
    Answer,
    CheckinScan,
    Convening,
    Delegation,
    HostOrganization,
    Job,
    Message,
    MessageRecipient,
    Order,
    OutboxMessage,
    Presenter,
    PrintJob,
    Question,
    QuestionKind,
    Refund,
    Registration,
    utcnow,
)
from convene.models.payments import CreditNote
from convene.models.privacy import PersonalDataErasure
from convene.models.registrations import SEARCH_INDEX_TABLE
from convene.models.teams import AuditEntry
from convene.services.audit import name_action
from convene.services.db import lock, unit_of_work
from convene.text import multi_line

log = logging.getLogger(__name__)

ERASED_NAME = "Erased"
ERASED_DOMAIN = "erased.invalid"  # reserved (RFC 2606): nothing is ever delivered there
MIN_RETENTION_MONTHS, MAX_RETENTION_MONTHS = 1, 120
NOTICE_MAX_LENGTH = 20_000
UNSENT = "Not sent: erased with the convening's personal data."

# What an erasure counts, in the order the preview lists it, with what it does to each.
KINDS = (
    ("registrations", "Registrations",
     "names, pronouns, email, phone, organization, job title, dietary and access needs and notes; "
     "their manage, offer and check-in links stop working"),
    ("answers", "Free-text answers", "deleted (choice and yes/no answers stay)"),
    ("orders", "Orders", "the buyer's name, email, organization and billing address, payment notes; "
                         "their links stop working"),
    ("credit_notes", "Credit notes", "the names of the people they credit"),
    ("refunds", "Refunds", "the reason typed for them"),
    ("messages", "Emails", "address, subject and text (any not sent yet are never sent)"),
    ("delegations", "Delegation contacts", "name and email"),
    ("presenters", "Presenters", "name, organization and bio"),
    ("hosts", "Site-visit host contacts", "name, email and phone"),
    ("print_files", "Printed PDFs and exports kept on the server", "badges, agendas, rosters and exports, deleted"),
    ("log_entries", "Audit-log entries", "the personal values in them become “(erased)”; who did what, and when, "
                                         "stays"),
)
KIND_KEYS = tuple(key for key, _, _ in KINDS)

ERASED_VALUE = "(erased)"
# The columns whose values the audit log must not keep, per table (the log names tables its own way).
PERSONAL_COLUMNS = {
    "registration": frozenset(PERSON_FIELDS) | {"interpretation_needs"},
    "answer": frozenset({"value"}),
    "orders": frozenset({"buyer_name", "buyer_email", "buyer_organization", "billing_address", "payment_note",
                         "stripe_session_url"}),
    "credit_note": frozenset({"seats"}),
    "refund": frozenset({"reason"}),
    "delegation": frozenset({"contact_name", "contact_email"}),
    "presenter": frozenset({"name", "organization", "bio"}),
    "host_organization": frozenset({"contact_name", "contact_email", "contact_phone"}),
}
LABELLED_BY_NAME = frozenset({"presenter"})  # tables whose log label is a person's name


# -- retention ---------------------------------------------------------------------------------------

def add_months(day: date, months: int) -> date:
    """The same day `months` later, or that month's last day when it is shorter (31 Jan + 1 = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def retention_ends_on(convening: Convening) -> date | None:
    """The day personal data is due to be erased, or None when it is kept until an organizer erases it."""
    if convening.retention_months is None:
        return None
    return add_months(convening.ends_on, convening.retention_months)


def local_today(convening: Convening, now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(convening.tz).date()


def has_ended(convening: Convening, now: datetime | None = None) -> bool:
    """Whether the convening's last day is over in its own time zone."""
    return local_today(convening, now) > convening.ends_on


def day_text(value: date) -> str:
    """A date as people write it: "3 February 2027"."""
    return f"{value.day} {value:%B %Y}"


def local_day(convening: Convening, instant: datetime | None) -> str:
    """An instant's date in the convening's time zone, as people write it ("3 February 2027"); "" for None."""
    return day_text(instant.astimezone(convening.tz).date()) if instant else ""


# -- the notice --------------------------------------------------------------------------------------

def default_notice(convening: Convening) -> str:
    """The notice a convening shows while its organizers have written none: short sentences, plain words."""
    contact = convening.contact_email.strip()
    write_to = f"write to {contact}" if contact else "write to the organizers"
    ends = retention_ends_on(convening)
    if ends is not None:
        months = convening.retention_months
        how_long = (f"How long: until {months} month{'s' if months != 1 else ''} after the convening ends, that is "
                    f"until {day_text(ends)}. Then we erase it.")
    else:
        how_long = "How long: until the organizers erase it after the convening."
    return "\n\n".join([
        f"Who runs it: {convening.name} is run by its organizers."
        + (f" You can write to them at {contact}." if contact else ""),
        "What we collect: your name, the name for your badge, your pronouns, email address, phone number, "
        "organization and job title; your dietary and access needs and any notes about them; your answers to "
        "the organizers' questions; and the site visits and sessions you choose. For paid tickets, we also "
        "keep the buyer's name, email and billing address and what was paid. If you pay by card, your card "
        "details go to our payment provider, Stripe, and never reach us.",
        "Why: to run the convening. We use it to confirm your place and email you about it, to print your "
        "badge, to plan meals, rooms, access and site visits, and to keep the accounts. We do not use it for "
        "anything else, and we never sell it.",
        "Who sees it: only the organizing team and the staff who run the convening. Your name, pronouns and "
        "organization are printed on your badge.",
        how_long + " After that we keep only counts that name nobody (for example, how many people came from "
        "each delegation), and, for the accounts, invoice numbers and amounts without names.",
        "Your rights: you can see and change your details at any time from the link in your confirmation "
        f"email. To get a copy of your data, to have it corrected or erased, or to ask about this notice, "
        f"{write_to}.",
    ])


def notice_text(convening: Convening) -> str:
    """What the privacy page shows: the organizers' own text, else the default."""
    return convening.privacy_notice.strip() or default_notice(convening)


def _same_text(a: str, b: str) -> bool:
    squash = lambda text: " ".join(multi_line(text or "").split())  # noqa: E731
    return squash(a) == squash(b)


def update_privacy_settings(convening_id: int, notice: str | None, retention_months: int | None) -> Convening:
    """Save the notice (empty, or the default word for word: follow the default) and the retention in months."""
    notice = multi_line(notice or "").strip()
    if len(notice) > NOTICE_MAX_LENGTH:
        raise ConveneError("privacy_notice_too_long", field="privacy_notice", limit=f"{NOTICE_MAX_LENGTH:,}")
    if retention_months is not None and not MIN_RETENTION_MONTHS <= retention_months <= MAX_RETENTION_MONTHS:
        raise ConveneError("retention_invalid", field="retention_months")
    with unit_of_work():
        found = lock(Convening, convening_id)
        if not found:
            raise ConveneError("convening_not_found", status_code=404)
        convening = found[0]
        convening.retention_months = retention_months
        # The default names the retention date, so compare with it as it reads after this change.
        convening.privacy_notice = "" if _same_text(notice, default_notice(convening)) else notice
    return convening


# -- what an erasure does ----------------------------------------------------------------------------

def erased_email(registration_id: int) -> str:
    return f"erased-{registration_id}@{ERASED_DOMAIN}"


def _registration_is_erased(r: Registration) -> bool:
    return (r.given_name == ERASED_NAME and not r.family_name and not r.badge_name and not r.pronouns
            and r.email == erased_email(r.id) and not r.phone and not r.organization and not r.job_title
            and not r.dietary_needs and not r.dietary_notes and not r.accessibility_needs
            and not r.accessibility_notes and not r.interpretation_needs)


def _answer_is_free_text(answer: Answer, question: Question) -> bool:
    """Whether an answer says something in the person's own words (anything but one of the offered choices)."""
    value = answer.value
    if value is None:
        return False
    try:
        kind = QuestionKind(question.kind)
    except ValueError:
        return True
    if kind == QuestionKind.YES_NO:
        return not isinstance(value, bool)
    if kind == QuestionKind.SINGLE_CHOICE:
        return value not in (question.choices or [])
    if kind == QuestionKind.MULTIPLE_CHOICE:
        return not (isinstance(value, list) and all(v in (question.choices or []) for v in value))
    return True


def _eml_files(messages: list[OutboxMessage]) -> list[Path]:
    """The .eml copies written for these messages when no mail server is set."""
    folder = current_app.config.get("MAIL_OUTBOX_DIR")
    if not folder or not messages or not Path(folder).is_dir():
        return []
    wanted = {f"{m.id:06d}-{m.kind}" for m in messages}
    pattern = re.compile(r"^\d{8}-\d{6}-(\d{6,}-.+)\.eml$")
    found = []
    for path in Path(folder).iterdir():
        match = pattern.match(path.name)
        if match and match.group(1) in wanted:
            found.append(path)
    return found


def _print_files(convening: Convening) -> list[Path]:
    from convene.services.printing import prints_dir

    names = db.session.execute(
        sa.select(PrintJob.file_name).where(PrintJob.convening_id == convening.id, PrintJob.file_name != "")
    ).scalars().all()
    # Files other jobs made (registration exports) hold personal data too.
    names += db.session.execute(
        sa.select(Job.result_file).where(Job.convening_id == convening.id, Job.result_file != "",
                                         Job.result_file.not_in(names))
    ).scalars().all()
    # An import job's kept upload and its problems report name people too.
    for job_id, params in db.session.execute(
            sa.select(Job.id, Job.params).where(Job.convening_id == convening.id, Job.kind == "import_registrations")):
        names = [*names, *(name for name in ((params or {}).get("upload") or "", f"import-report-{job_id}.json")
                           if name and name not in names)]
    folder = prints_dir()
    paths = []
    for name in names:
        if not storage.valid_name(name):
            continue
        # A file kept in the database is named by its path in the folder too: erasing deletes it from both.
        if storage.in_database() and storage.exists(name):
            paths.append(folder / name)
        for candidate in (folder / name, folder / f"{name}.part"):
            if candidate.is_file() and candidate not in paths:
                paths.append(candidate)
    return paths


_BLANK = (None, "", [], {})


def _log_names() -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """PERSONAL_COLUMNS and LABELLED_BY_NAME under the names the audit log gives its objects."""
    from convene.services.audit import object_name

    return ({object_name(table): columns for table, columns in PERSONAL_COLUMNS.items()},
            frozenset(object_name(table) for table in LABELLED_BY_NAME))


def _scrubbed(value):
    return value if value in _BLANK or value == ERASED_VALUE else ERASED_VALUE


def _entry_holds_personal_data(entry: AuditEntry, columns: frozenset[str], by_name: bool) -> bool:
    if by_name and entry.object_label not in ("", ERASED_NAME):
        return True
    for key, pair in (entry.changes or {}).items():
        if key in columns:
            sides = pair if isinstance(pair, list) else [pair]
            if any(_scrubbed(side) != side for side in sides):
                return True
    return False


def _log_entries(convening_id: int) -> list[AuditEntry]:
    """Entries of the convening's audit log that still hold a personal value."""
    columns, by_name = _log_names()
    entries = db.session.execute(
        sa.select(AuditEntry).where(AuditEntry.convening_id == convening_id,
                                    AuditEntry.object_type.in_(sorted(columns))).order_by(AuditEntry.id)
    ).scalars().all()
    return [e for e in entries if _entry_holds_personal_data(e, columns[e.object_type], e.object_type in by_name)]


def _scrub_log(convening_id: int) -> None:
    """Replace the personal values of the convening's audit log by "(erased)", keeping every entry."""
    columns, by_name = _log_names()
    for entry in _log_entries(convening_id):
        keys = columns[entry.object_type]
        if entry.object_type in by_name and entry.object_label:
            entry.object_label = ERASED_NAME
        entry.changes = {key: ([_scrubbed(side) for side in pair] if isinstance(pair, list) else _scrubbed(pair))
                         if key in keys else pair for key, pair in (entry.changes or {}).items()}


@dataclass
class ErasurePlan:
    """Exactly what erasing would change now; `token` names it, so a confirmation does what was previewed."""

    convening: Convening
    registrations: list[Registration] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    credit_notes: list[CreditNote] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    messages: list[OutboxMessage] = field(default_factory=list)
    delegations: list[Delegation] = field(default_factory=list)
    presenters: list[Presenter] = field(default_factory=list)
    hosts: list[HostOrganization] = field(default_factory=list)
    print_files: list[Path] = field(default_factory=list)
    log_entries: list[AuditEntry] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {key: len(getattr(self, key)) for key in KIND_KEYS}

    @property
    def empty(self) -> bool:
        return not any(self.counts.values())

    @property
    def rows(self) -> list[tuple[str, str, str, int]]:
        """(key, label, what happens, count) for each kind, in the preview's order."""
        counts = self.counts
        return [(key, label, what, counts[key]) for key, label, what in KINDS]

    @property
    def token(self) -> str:
        named = [(key, sorted(path.name for path in self.print_files) if key == "print_files"
                  else sorted(item.id for item in getattr(self, key))) for key in KIND_KEYS]
        return hashlib.sha256(repr((self.convening.id, named)).encode()).hexdigest()[:32]


def _plan(convening: Convening) -> ErasurePlan:
    """What still holds personal data in this convening."""
    plan = ErasurePlan(convening=convening)
    cid = convening.id
    registrations = db.session.execute(
        sa.select(Registration).where(Registration.convening_id == cid).order_by(Registration.id)
    ).scalars().all()
    plan.registrations = [r for r in registrations if not _registration_is_erased(r)]

    answers = db.session.execute(
        sa.select(Answer, Question).join(Question, Question.id == Answer.question_id)
        .where(Question.convening_id == cid).order_by(Answer.id)
    ).all()
    plan.answers = [answer for answer, question in answers if _answer_is_free_text(answer, question)]

    orders = db.session.execute(sa.select(Order).where(Order.convening_id == cid).order_by(Order.id)).scalars().all()
    plan.orders = [o for o in orders if o.buyer_name != ERASED_NAME or o.buyer_email or o.buyer_organization
                   or o.billing_address or o.payment_note or o.stripe_session_url]
    notes = db.session.execute(
        sa.select(CreditNote).where(CreditNote.convening_id == cid).order_by(CreditNote.id)).scalars().all()
    plan.credit_notes = [n for n in notes if any(isinstance(seat, dict) and seat.get("name") not in (None, "",
                                                                                                      ERASED_NAME)
                                                 for seat in (n.seats or []))]
    plan.refunds = db.session.execute(
        sa.select(Refund).join(Order, Order.id == Refund.order_id)
        .where(Order.convening_id == cid, Refund.reason != "").order_by(Refund.id)).scalars().all()

    # Emails about the convening: those to one of its registrations, and those about its orders (which
    # carry no registration) sent to one of its people and linking to its pages.
    addresses = {r.email for r in registrations} | {o.buyer_email for o in orders if o.buyer_email}
    delegations = db.session.execute(
        sa.select(Delegation).where(Delegation.convening_id == cid).order_by(Delegation.id)).scalars().all()
    addresses |= {d.contact_email for d in delegations if d.contact_email}
    about = sa.or_(
        OutboxMessage.registration_id.in_(sa.select(Registration.id).where(Registration.convening_id == cid)),
        sa.and_(OutboxMessage.registration_id.is_(None), OutboxMessage.to_address.in_(sorted(addresses)),
                OutboxMessage.text_body.contains(f"/c/{convening.slug}/", autoescape=True)),
    )
    plan.messages = db.session.execute(
        sa.select(OutboxMessage).where(about, sa.or_(
            OutboxMessage.to_address != "", OutboxMessage.subject != "", OutboxMessage.text_body != "",
            OutboxMessage.html_body != "", OutboxMessage.last_error.not_in(["", UNSENT]),
        )).order_by(OutboxMessage.id)).scalars().all()

    plan.delegations = [d for d in delegations if d.contact_name or d.contact_email]
    presenters = db.session.execute(
        sa.select(Presenter).where(Presenter.convening_id == cid).order_by(Presenter.id)).scalars().all()
    plan.presenters = [p for p in presenters if p.name != ERASED_NAME or p.organization or p.bio]
    hosts = db.session.execute(
        sa.select(HostOrganization).where(HostOrganization.convening_id == cid).order_by(HostOrganization.id)
    ).scalars().all()
    plan.hosts = [h for h in hosts if h.contact_name or h.contact_email or h.contact_phone]
    plan.print_files = _print_files(convening)
    plan.log_entries = _log_entries(cid)
    return plan


def erasure_preview(convening_id: int) -> ErasurePlan:
    """What erasing this convening's personal data would change now (the page and the command show it)."""
    convening = db.session.get(Convening, convening_id)
    if convening is None:
        raise ConveneError("convening_not_found", status_code=404)
    return _plan(convening)


def _need_counts(registrations: list[Registration]) -> dict:
    """The dashboard's needs counts (active registrations) over the rows about to lose them."""
    dietary: Counter[str] = Counter()
    accessibility: Counter[str] = Counter()
    dietary_notes = accessibility_notes = 0
    for r in registrations:
        if r.status not in ACTIVE:
            continue
        dietary.update(code for code in set(r.dietary_needs or []) if code in DIETARY_NEEDS)
        accessibility.update(code for code in set(r.accessibility_needs or []) if code in ACCESSIBILITY_NEEDS)
        dietary_notes += bool(r.dietary_notes)
        accessibility_notes += bool(r.accessibility_notes)
    return {"dietary": dict(dietary), "dietary_notes": dietary_notes,
            "accessibility": dict(accessibility), "accessibility_notes": accessibility_notes}


def kept_need_counts(convening_id: int) -> dict:
    """The needs counts the convening's erasures took off its registrations, added up (the dashboard adds them)."""
    dietary: Counter[str] = Counter()
    accessibility: Counter[str] = Counter()
    notes = Counter()
    for kept in db.session.execute(sa.select(PersonalDataErasure.kept_counts)
                                   .where(PersonalDataErasure.convening_id == convening_id)).scalars():
        kept = kept or {}
        dietary.update({k: int(v) for k, v in (kept.get("dietary") or {}).items()})
        accessibility.update({k: int(v) for k, v in (kept.get("accessibility") or {}).items()})
        notes.update({"dietary_notes": int(kept.get("dietary_notes") or 0),
                      "accessibility_notes": int(kept.get("accessibility_notes") or 0)})
    return {"dietary": dict(dietary), "dietary_notes": notes["dietary_notes"],
            "accessibility": dict(accessibility), "accessibility_notes": notes["accessibility_notes"]}


def erasures_of(convening_id: int) -> list[PersonalDataErasure]:
    return list(db.session.execute(
        sa.select(PersonalDataErasure).where(PersonalDataErasure.convening_id == convening_id)
        .order_by(PersonalDataErasure.erased_at, PersonalDataErasure.id)).scalars())


@dataclass
class ErasureResult:
    """What one erasure did; `counts` is empty when there was nothing left to erase."""

    slug: str
    counts: dict[str, int]

    @property
    def nothing(self) -> bool:
        return not any(self.counts.values())

    def describe(self) -> str:
        if self.nothing:
            return "nothing left to erase"
        labels = {key: label.lower() for key, label, _ in KINDS}
        return ", ".join(f"{n} {labels[key]}" for key, n in self.counts.items() if n)


def _erase_registration(r: Registration) -> None:
    r.given_name, r.family_name, r.badge_name, r.pronouns = ERASED_NAME, "", "", ""
    r.email, r.phone, r.organization, r.job_title = erased_email(r.id), "", "", ""
    r.dietary_needs, r.dietary_notes, r.accessibility_needs, r.accessibility_notes = [], "", [], ""
    r.interpretation_needs = []
    r.token_version = (r.token_version or 1) + 1  # every manage and offer link sent so far stops working
    r.checkin_token = secrets.token_urlsafe(16)  # the printed badge's QR code no longer finds the row


def _erase_order(o: Order) -> None:
    o.buyer_name, o.buyer_email, o.buyer_organization, o.billing_address = ERASED_NAME, "", "", ""
    o.payment_note, o.stripe_session_url = "", ""
    o.token_version = (o.token_version or 1) + 1


def _erase_message(m: OutboxMessage) -> None:
    if m.status in ("pending", "sending"):
        m.status, m.claimed_by, m.lease_expires_at = "failed", "", None
        m.last_error = UNSENT
    elif m.last_error != UNSENT:
        m.last_error = ""
    m.to_address, m.subject, m.text_body, m.html_body = "", "", "", ""


def erase_personal_data(convening_id: int, *, expected: str | None = None, by: str = "",
                        now: datetime | None = None) -> ErasureResult:
    """Erase a past convening's personal data, keeping its anonymous counts (see the module's docstring).

    One unit of work under the convening's lock; refused before the convening has ended. With
    `expected` (the token of the preview an organizer confirmed) it refuses when what would be erased
    changed since. Running it again erases only what came in since (nothing, usually).
    """
    now = now or utcnow()
    with unit_of_work():
        found = lock(Convening, convening_id)
        if not found:
            raise ConveneError("convening_not_found", status_code=404)
        convening = found[0]
        if not has_ended(convening, now):
            raise ConveneError("erase_not_ended", last_day=day_text(convening.ends_on))
        plan = _plan(convening)
        if expected is not None and expected != plan.token:
            raise ConveneError("erase_preview_changed")
        counts = plan.counts
        if plan.empty and convening.personal_data_erased_at is not None:
            return ErasureResult(convening.slug, {})
        kept = _need_counts(plan.registrations)
        eml_files = _eml_files(plan.messages)
        for registration in plan.registrations:
            _erase_registration(registration)
            name_action(registration, "registration.erased")
        for answer in plan.answers:
            db.session.delete(answer)
        for order in plan.orders:
            _erase_order(order)
            name_action(order, "order.erased")
        for note in plan.credit_notes:
            note.seats = [{**seat, "name": ERASED_NAME} if isinstance(seat, dict) else seat for seat in note.seats]
        for refund in plan.refunds:
            refund.reason = ""
        for message in plan.messages:
            _erase_message(message)
        # Who each message went to: the people are erased, so are the addresses (the counts stay).
        db.session.execute(sa.update(MessageRecipient).where(MessageRecipient.message_id.in_(
            sa.select(Message.id).where(Message.convening_id == convening_id))).values(to_address=""))
        # What the desk typed to find someone (their name, most often); which list, when and what it came to stay.
        db.session.execute(sa.update(CheckinScan).where(CheckinScan.convening_id == convening_id,
                                                        CheckinScan.code != "").values(code=""))
        for delegation in plan.delegations:
            delegation.contact_name, delegation.contact_email = "", ""
        for presenter in plan.presenters:
            presenter.name, presenter.organization, presenter.bio = ERASED_NAME, "", ""
        for host in plan.hosts:
            host.contact_name, host.contact_email, host.contact_phone = "", "", ""
        # The audit log has just written these changes with the values they replace: scrub it last.
        db.session.flush()
        _scrub_log(convening.id)
        db.session.add(PersonalDataErasure(convening_id=convening.id, erased_at=now, erased_by=by[:254],
                                           erased=counts, kept_counts=kept))
        convening.personal_data_erased_at = now
        name_action(convening, "convening.personal_data_erased")
        slug = convening.slug
    _forget_on_sqlite()
    # Files go once the database no longer names them; a file that cannot go is logged and left.
    for path in [*plan.print_files, *eml_files]:
        try:
            if path in plan.print_files and storage.in_database():
                storage.delete(path.name)
            path.unlink(missing_ok=True)
        except OSError as error:
            log.error("could not delete %s while erasing %s: %s", path, slug, error)
    return ErasureResult(slug, counts)


def _forget_on_sqlite() -> None:
    """SQLite keeps what a search index or the write-ahead log held until they are merged or checkpointed:
    merge the search index into one segment (secure_delete zeroes the pages it frees) and empty the log."""
    if db.engine.dialect.name != "sqlite":
        return
    with unit_of_work():
        db.session.execute(sa.text(f"INSERT INTO {SEARCH_INDEX_TABLE} ({SEARCH_INDEX_TABLE}) VALUES ('optimize')"))
    raw = db.engine.raw_connection()  # outside any transaction, which a checkpoint needs
    waits = raw.execute("PRAGMA busy_timeout").fetchone()[0]
    try:
        # A checkpoint that empties the log waits for every reader to finish: wait a moment, not the whole busy
        # timeout; if readers stay, the log's frames are overwritten by later writes instead.
        raw.execute("PRAGMA busy_timeout=500")
        busy, _, _ = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log.warning("the write-ahead log could not be emptied after an erasure: readers were busy")
    finally:
        raw.execute(f"PRAGMA busy_timeout={int(waits)}")
        raw.close()


def due_for_erasure(now: datetime | None = None) -> list[Convening]:
    """Convenings whose retention has run out (on the day `retention_months` after their last day)."""
    convenings = db.session.execute(
        sa.select(Convening).where(Convening.retention_months.is_not(None)).order_by(Convening.ends_on, Convening.id)
    ).scalars().all()
    return [c for c in convenings if local_today(c, now) >= retention_ends_on(c)]


def erase_expired(now: datetime | None = None) -> list[ErasureResult]:
    """Erase every convening past its retention that still holds personal data (run it daily)."""
    results = []
    for convening in due_for_erasure(now):
        if convening.personal_data_erased_at is not None and _plan(convening).empty:
            continue
        months = convening.retention_months
        results.append(erase_personal_data(convening.id, by=f"retention ({months} month{'s' if months != 1 else ''})",
                                           now=now))
    return results


def erase_expired_task(run) -> dict:
    """The scheduler's daily sweep: erase what is past its retention."""
    results = erase_expired()
    return {"done": len(results), "total": len(results),
            "message": "; ".join(f"{r.slug}: {r.describe()}" for r in results) or "Nothing past its retention."}
