"""Messages to registrants: write them per language, choose who gets them, send each once per person, follow up.

A message is written (draft), then sent now or scheduled; sending is a job (`send_message`) that first
writes one `MessageRecipient` and one outbox row per person in small locked batches (the unique key on
message and registration makes a second run add nobody twice), then delivers those outbox rows under
the outbox's leases. A worker killed half-way leaves the job to be run again by `recover_stalled`, which
finds the rows already written and the emails already sent, so each person gets the message once.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from flask import current_app, render_template
from flask_babel import gettext

from convene.errors import ConveneError
from convene.extensions import db
from convene.i18n import enabled_languages, format_local, in_language
from convene.languages import ENGLISH_NAMES, localized
from convene.models import (
    ACTIVE,
    Checkin,
    CheckinList,
    Convening,
    Delegation,
    Message,
    MessageRecipient,
    Order,
    OrderStatus,
    OutboxMessage,
    Registration,
    Role,
    SessionSignup,
    Status,
    VisitAssignment,
    utcnow,
)
from convene.models.messages import EDITABLE, SENDABLE
from convene.services import message_text
from convene.services.audit import name_action
from convene.services.db import lock, unit_of_work
from convene.text import single_line

log = logging.getLogger(__name__)

BATCH = 100  # recipients written per transaction: small, so a lock on the message is never held long
FIRST_NAMES = 12  # names shown before sending
NO_DELEGATION = 0  # in a filter's delegation list: people without one
NO_ORDER = "none"  # in a filter's payment list: people whose seat no order pays (free tickets, comps)
AUTOMATIC = "automatic"


# ---------------------------------------------------------------- languages


def languages_of(convening: Convening) -> list[str]:
    """The languages a message is written in: the convening's enabled ones, its default first."""
    return enabled_languages(convening)


def language_name(code: str) -> str:
    return ENGLISH_NAMES.get(code, code)


def language_of(registration: Registration, languages: list[str]) -> str:
    """The version a person reads: their own language when the message has it, else the default (first)."""
    return registration.language if registration.language in languages else languages[0]


# ---------------------------------------------------------------- who a message goes to


def _ints(values) -> list[int]:
    out = []
    for value in values or []:
        try:
            out.append(int(value))
        except (TypeError, ValueError):
            continue
    return sorted(set(out))


def _strs(values) -> list[str]:
    return sorted({str(v) for v in values or [] if str(v)})


def parse_references(text: str) -> list[str]:
    """References pasted one per line, or separated by commas or spaces, upper-cased, in order, once each."""
    seen: list[str] = []
    for token in re.split(r"[\s,;]+", text or ""):
        token = token.strip().upper()
        if token and token not in seen:
            seen.append(token[:16])
    return seen


@dataclass
class RecipientFilter:
    """Who a message goes to: every criterion given must hold, and within one any of its values.

    An empty criterion does not narrow. Stored as JSON on the message; each criterion is one entry of
    CRITERIA, so a new one is one more field and one function.
    """

    statuses: list[str] = field(default_factory=lambda: [Status.CONFIRMED.value])
    ticket_ids: list[int] = field(default_factory=list)
    delegation_ids: list[int] = field(default_factory=list)  # NO_DELEGATION: people without one
    roles: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    site_visit_ids: list[int] = field(default_factory=list)  # published visits
    session_ids: list[int] = field(default_factory=list)  # sessions they signed up for (or were placed in)
    payment_statuses: list[str] = field(default_factory=list)  # order statuses; NO_ORDER: nothing to pay
    checkins: list[str] = field(default_factory=list)  # "<list id>:arrived" / "<list id>:not_arrived"
    references: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict | None) -> RecipientFilter:
        data = data or {}
        return cls(statuses=_strs(data.get("statuses", [Status.CONFIRMED.value])),
                   ticket_ids=_ints(data.get("ticket_ids")), delegation_ids=_ints(data.get("delegation_ids")),
                   roles=_strs(data.get("roles")), languages=_strs(data.get("languages")),
                   site_visit_ids=_ints(data.get("site_visit_ids")), session_ids=_ints(data.get("session_ids")),
                   payment_statuses=_strs(data.get("payment_statuses")),
                   checkins=[c for c in _strs(data.get("checkins")) if parse_checkin_choice(c)],
                   references=[str(r) for r in data.get("references") or []])

    def to_json(self) -> dict:
        return {name: list(getattr(self, name)) for name in CRITERIA}

    def conditions(self, languages: list[str]) -> list:
        """WHERE clauses on Registration (the convening is the caller's; `languages` its own, default first)."""
        return [CRITERIA[name](values, languages) for name in CRITERIA if (values := getattr(self, name))]


def _delegation_condition(ids: list[int], _default: str):
    real = [i for i in ids if i != NO_DELEGATION]
    parts = [Registration.delegation_id.in_(real)] if real else []
    if NO_DELEGATION in ids:
        parts.append(Registration.delegation_id.is_(None))
    return sa.or_(*parts)


def _language_condition(codes: list[str], languages: list[str]):
    """People who read one of these versions: their own language, or the default when theirs is not offered."""
    if languages[0] in codes:  # the default version also goes to people whose language the convening dropped
        return sa.or_(Registration.language.in_(codes), Registration.language.not_in(languages))
    return Registration.language.in_(codes)


def _payment_condition(statuses: list[str], _default: str):
    real = [s for s in statuses if s != NO_ORDER]
    parts = []
    if real:
        parts.append(Registration.order_id.in_(sa.select(Order.id).where(Order.status.in_(real))))
    if NO_ORDER in statuses:
        parts.append(Registration.order_id.is_(None))
    return sa.or_(*parts)


ARRIVED, NOT_ARRIVED = "arrived", "not_arrived"


def checkin_choice(list_id: int, arrival: str) -> str:
    return f"{list_id}:{arrival}"


def parse_checkin_choice(value: str) -> tuple[int, str] | None:
    """A check-in criterion's value as (list id, arrived or not_arrived); None when it is not one."""
    list_id, _, arrival = str(value).partition(":")
    if not list_id.isdigit() or arrival not in (ARRIVED, NOT_ARRIVED):
        return None
    return int(list_id), arrival


def _checkin_condition(values: list[str], _default: str):
    """Arrived: checked in on the list (not undone). Not arrived: on the list (`members_query`), not checked in."""
    from convene.services.checkin import members_query

    parts = []
    for value in values:
        list_id, arrival = parse_checkin_choice(value) or (0, "")
        checkin_list = db.session.get(CheckinList, list_id) if list_id else None
        if checkin_list is None:  # a list deleted since the message was written names nobody
            parts.append(sa.false())
            continue
        arrived = sa.exists().where(Checkin.list_id == list_id, Checkin.registration_id == Registration.id,
                                    Checkin.reverted_at.is_(None))
        if arrival == ARRIVED:
            parts.append(arrived)
        else:
            parts.append(sa.and_(Registration.id.in_(members_query(checkin_list)), ~arrived))
    return sa.or_(*parts)


# criterion: (its values, the convening's languages, default first) -> a condition on Registration
CRITERIA = {
    "statuses": lambda v, _: Registration.status.in_(v),
    "ticket_ids": lambda v, _: Registration.ticket_type_id.in_(v),
    "delegation_ids": _delegation_condition,
    "roles": lambda v, _: Registration.role.in_(v),
    "languages": _language_condition,
    "site_visit_ids": lambda v, _: Registration.id.in_(sa.select(VisitAssignment.registration_id).where(
        VisitAssignment.published_site_visit_id.in_(v))),
    "session_ids": lambda v, _: Registration.id.in_(sa.select(SessionSignup.registration_id).where(
        SessionSignup.session_id.in_(v))),
    "payment_statuses": _payment_condition,
    "checkins": _checkin_condition,
    "references": lambda v, _: sa.func.upper(Registration.reference).in_(v),
}


def _matching(convening: Convening, recipient_filter: RecipientFilter):
    return sa.select(Registration).where(Registration.convening_id == convening.id,
                                         *recipient_filter.conditions(languages_of(convening)))


def matching_registrations(convening: Convening, recipient_filter: RecipientFilter) -> list[Registration]:
    """Everyone the filter names (bounced addresses included), by name."""
    return db.session.execute(
        _matching(convening, recipient_filter).order_by(Registration.sort_key, Registration.id)).scalars().all()


@dataclass
class Audience:
    """Who a message would reach now: for the organizer to check before sending."""

    count: int
    first: list[Registration]
    bounced: list[Registration]
    already_sent: int
    unknown_references: list[str]
    lead_copies: list[Delegation]


def audience(message: Message) -> Audience:
    """How many a message reaches now, their first names, who is skipped and why."""
    convening = db.session.get(Convening, message.convening_id)
    recipient_filter = RecipientFilter.from_json(message.filter)
    people = matching_registrations(convening, recipient_filter)
    sent = set(db.session.execute(sa.select(MessageRecipient.registration_id).where(
        MessageRecipient.message_id == message.id, MessageRecipient.registration_id.is_not(None))).scalars())
    bounced = [r for r in people if r.email_bounced_at is not None and r.id not in sent]
    going = [r for r in people if r.email_bounced_at is None and r.id not in sent]
    unknown = []
    if recipient_filter.references:
        known = set(db.session.execute(sa.select(sa.func.upper(Registration.reference)).where(
            Registration.convening_id == convening.id,
            sa.func.upper(Registration.reference).in_(recipient_filter.references))).scalars())
        unknown = [r for r in recipient_filter.references if r not in known]
    leads = []
    if message.copy_delegation_leads:
        ids = {r.delegation_id for r in going if r.delegation_id is not None}
        leads = [d for d in convening.delegations if d.id in ids and d.contact_email]
    return Audience(count=len(going), first=going[:FIRST_NAMES], bounced=bounced,
                    already_sent=len([r for r in people if r.id in sent]), unknown_references=unknown,
                    lead_copies=leads)


# ---------------------------------------------------------------- writing a message


@dataclass
class MessageDraft:
    """What the compose form sends: text per language, the filter, and whether leads get a copy."""

    subjects: dict[str, str]
    bodies: dict[str, str]
    recipient_filter: RecipientFilter
    copy_delegation_leads: bool = False


def _problem(code: str, message: str, field_name: str) -> ConveneError:
    return ConveneError(code, message, field=field_name)


def check_draft(convening: Convening, draft: MessageDraft) -> list[ConveneError]:
    """Every problem of a draft, each for its field: missing versions, bad placeholders, unknown choices."""
    found = []
    for code in languages_of(convening):
        name = language_name(code)
        for kind, texts, limit in (("subject", draft.subjects, 300), ("body", draft.bodies, 50_000)):
            text = (texts.get(code) or "").strip()
            field_name = f"{kind}_{code}"
            if not text:
                found.append(_problem("message_text_missing", f"Write the {kind} in {name}.", field_name))
                continue
            if len(text) > limit:
                found.append(_problem("message_too_long", f"Keep the {kind} under {limit:,} characters.", field_name))
            for problem in message_text.problems(text):
                found.append(_problem("message_placeholder", problem, field_name))
    chosen = draft.recipient_filter
    if not chosen.statuses:
        found.append(_problem("message_no_status", "Choose at least one status (usually Confirmed).", "statuses"))
    checks = (
        ("statuses", chosen.statuses, {s.value for s in Status}),
        ("ticket_ids", chosen.ticket_ids, {t.id for t in convening.ticket_types}),
        ("delegation_ids", chosen.delegation_ids, {d.id for d in convening.delegations} | {NO_DELEGATION}),
        ("roles", chosen.roles, {r.value for r in Role}),
        ("languages", chosen.languages, set(languages_of(convening))),
        ("payment_statuses", chosen.payment_statuses, {s.value for s in OrderStatus} | {NO_ORDER}),
    )
    list_ids = set(db.session.execute(sa.select(CheckinList.id).where(
        CheckinList.convening_id == convening.id)).scalars()) if chosen.checkins else set()
    if any((parse_checkin_choice(c) or (0,))[0] not in list_ids for c in chosen.checkins):
        found.append(_problem("message_filter_invalid", "Choose from the list.", "checkins"))
    for name, values, valid in checks:
        if set(values) - valid:
            found.append(_problem("message_filter_invalid", "Choose from the list.", name))
    return found


def save_message(convening_id: int, draft: MessageDraft, *, author_id: int | None = None,
                 message_id: int | None = None) -> Message:
    """Write a new draft, or change a draft or scheduled message; every problem is reported beside its field."""
    with unit_of_work():
        [convening] = lock(Convening, convening_id) or [None]
        if convening is None:
            raise ConveneError("convening_not_found", status_code=404)
        problems = check_draft(convening, draft)
        if problems:
            raise ConveneError("message_invalid", "The message is not saved: see the notes beside the fields.",
                               problems=problems)
        if message_id is None:
            message = Message(convening_id=convening.id, author_id=author_id, status="draft")
            db.session.add(message)
        else:
            message = _locked(message_id, convening_id)
            if message.status not in EDITABLE:
                raise ConveneError("message_not_editable", "This message is already being sent; it cannot change.")
        languages = languages_of(convening)
        message.subjects = {code: " ".join(draft.subjects[code].split()) for code in languages}
        message.bodies = {code: draft.bodies[code].strip() for code in languages}
        message.filter = draft.recipient_filter.to_json()
        message.copy_delegation_leads = draft.copy_delegation_leads
        db.session.flush()
    return message


def _locked(message_id: int, convening_id: int | None = None) -> Message:
    [message] = lock(Message, message_id) or [None]
    if message is None or (convening_id is not None and message.convening_id != convening_id):
        raise ConveneError("message_not_found", "That message does not exist.", status_code=404)
    return message


def send_message(message_id: int, *, at: datetime | None = None, requested_by: int | None = None) -> Message:
    """Send a message now (a job starts after the commit) or schedule it for `at`.

    A sent message may be sent again: only to people who match it now and have not had it.
    """
    with unit_of_work():
        message = _locked(message_id)
        if message.status not in SENDABLE:
            raise ConveneError("message_already_sent", "This message is being sent right now, or was cancelled.")
        if at is not None and at > utcnow():
            message.status, message.scheduled_for = "scheduled", at
            name_action(message, "message.scheduled")
            return message
        _start(message, requested_by or message.author_id)
    return message


def _start(message: Message, requested_by: int | None) -> None:
    """Inside a unit of work that holds the message's lock: mark it sending and queue its job."""
    from convene import jobs

    message.status, message.started_at, message.finished_at = "sending", utcnow(), None
    name_action(message, "message.sent")
    job = jobs.enqueue("send_message", convening_id=message.convening_id, requested_by=requested_by,
                       params={"message_id": message.id},
                       idempotency_key=f"message:{message.id}:{message.started_at.timestamp()}")
    message.job_id = job.id


def cancel_message(message_id: int, convening_id: int | None = None) -> Message:
    """Stop a draft or scheduled message from going out; one already sending goes on."""
    with unit_of_work():
        message = _locked(message_id, convening_id)
        if message.status not in EDITABLE:
            raise ConveneError("message_not_cancellable",
                               "This message has started sending; what was sent cannot be called back.")
        message.status, message.cancelled_at, message.scheduled_for = "cancelled", utcnow(), None
        name_action(message, "message.cancelled")
    return message


def start_due_messages(now: datetime | None = None, convening_id: int | None = None) -> int:
    """Start every scheduled message (of one convening, or all) whose time has come; returns how many started."""
    now = now or utcnow()
    query = sa.select(Message.id).where(Message.status == "scheduled", Message.scheduled_for <= now)
    if convening_id is not None:
        query = query.where(Message.convening_id == convening_id)
    due = db.session.execute(query.order_by(Message.id)).scalars().all()
    db.session.rollback()
    started = 0
    for message_id in due:
        with unit_of_work():
            message = _locked(message_id)
            if message.status != "scheduled" or message.scheduled_for is None or message.scheduled_for > now:
                continue  # cancelled, changed or started meanwhile
            _start(message, message.author_id)
            started += 1
    return started


def send_due_messages_task(run) -> dict:
    """The scheduler's sweep: start the scheduled messages that are due."""
    started = start_due_messages()
    return {"done": started, "total": started, "message": f"{started} scheduled message(s) started."}


# ---------------------------------------------------------------- what each person reads


def _visits_text(convening: Convening, registration: Registration) -> str:
    """One line per published visit, in the language being rendered (the names organizers translated too)."""
    from convene.services.visits import published_visits_for

    lines = []
    for item in published_visits_for(registration.id):
        when = format_local(convening.local(item.visit.departs_at or item.slot.starts_at), "%a %d %b %H:%M")
        line = f"{when} · {item.slot.label}: {localized(item.visit.host, 'name')}"
        meeting_point = localized(item.visit, "meeting_point")
        if meeting_point:
            line += f" ({gettext('Meet at:')} {meeting_point})"
        lines.append(line)
    return "\n".join(lines)


def placeholder_values(convening: Convening, registration: Registration, wanted: set[str] | None = None
                       ) -> dict[str, str]:
    """The values of the placeholders for one person (only those `wanted`, when given: links cost a token)."""
    from convene.services.registrations import external_url, manage_url
    from convene.services.tokens import manage_token

    wanted = set(message_text.PLACEHOLDERS) if wanted is None else wanted
    values = {
        "given_name": registration.given_name, "family_name": registration.family_name,
        "full_name": registration.full_name, "badge_name": registration.display_badge_name,
        "reference": registration.reference, "organization": registration.organization,
        "delegation": registration.delegation.name if registration.delegation else "",
        "ticket_type": localized(registration.ticket_type, "name"),
        "convening": localized(convening, "name"),
    }
    if "manage_link" in wanted:
        values["manage_link"] = manage_url(registration)
    if "agenda_link" in wanted:
        values["agenda_link"] = external_url("public.agenda_pdf", slug=convening.slug,
                                             token=manage_token(registration))
    if "site_visits" in wanted:
        values["site_visits"] = _visits_text(convening, registration) or "—"
    return values


def _lead_values(convening: Convening, delegation: Delegation) -> dict[str, str]:
    return {"given_name": delegation.contact_name, "full_name": delegation.contact_name,
            "badge_name": delegation.contact_name, "delegation": delegation.name,
            "convening": localized(convening, "name")}


def _used(message: Message, language: str) -> set[str]:
    text = message.subjects.get(language, "") + message.bodies.get(language, "")
    return {m.group(1).strip() for m in re.finditer(r"(?<!\{)\{([a-z_]+)\}", text)}


@dataclass
class Rendered:
    """One person's message: the filled-in body alone, and the whole email around it."""

    language: str
    subject: str
    body_text: str
    body_html: str
    text: str
    html: str


def render_message(message: Message, convening: Convening, values: dict[str, str] | None, language: str,
                   registration: Registration | None = None) -> Rendered:
    """One person's version of the message: subject, plain text and the HTML email around it.

    The frame (the convening's name and dates, the footer) is in the same language as the text, and
    so are the placeholders' values when `values` is None and `registration` gives them.
    """
    language = language if language in message.bodies else next(iter(message.bodies), "en")
    body = message.bodies.get(language, "")
    with in_language(language):
        if values is None:
            values = placeholder_values(convening, registration, _used(message, language))
        subject = message_text.fill_line(message.subjects.get(language, ""), values)
        text = message_text.render_text(body, values)
        body_html = message_text.render_html(body, values)
        return Rendered(language=language, subject=subject, body_text=text, body_html=body_html,
                        text=render_template("email/message.txt", convening=convening, body_text=text),
                        html=render_template("email/message.html", convening=convening, body_html=body_html,
                                             language=language))


def preview_message(message: Message, registration: Registration) -> Rendered:
    """The message as this person would get it, in their language."""
    convening = db.session.get(Convening, message.convening_id)
    language = language_of(registration, list(message.bodies) or languages_of(convening))
    return render_message(message, convening, None, language, registration)


def send_test_message(message_id: int, to_address: str, registration_id: int | None = None) -> OutboxMessage:
    """Email the message to the organizer, as `registration_id` (or the first recipient) would read it."""
    from convene.services.mail import queue_email

    with unit_of_work():
        message = _locked(message_id)
        convening = db.session.get(Convening, message.convening_id)
        registration = db.session.get(Registration, registration_id) if registration_id else None
        if registration is None or registration.convening_id != convening.id:
            registration = next(iter(matching_registrations(convening, RecipientFilter.from_json(message.filter))),
                                None)
        if registration is not None:
            rendered = preview_message(message, registration)
        else:
            language = languages_of(convening)[0]
            rendered = render_message(message, convening, {k: f"[{k}]" for k in message_text.PLACEHOLDERS}, language)
        return queue_email("message_test", to_address, f"[Test] {rendered.subject}"[:300], "message",
                           convening=convening, body_text=rendered.body_text, body_html=rendered.body_html,
                           language=rendered.language)


# ---------------------------------------------------------------- sending


def _outbox_row(kind: str, to: str, rendered: Rendered, registration_id: int | None) -> OutboxMessage:
    row = OutboxMessage(kind=kind, to_address=to, subject=rendered.subject[:300], text_body=rendered.text,
                        html_body=rendered.html, registration_id=registration_id, attachments=[])
    db.session.add(row)
    return row


def _write_batch(message_id: int) -> int | None:
    """Write the next batch of recipients and their emails; returns how many (None: the message stopped)."""
    with unit_of_work():
        message = _locked(message_id)
        if message.status != "sending":
            return None
        convening = db.session.get(Convening, message.convening_id)
        languages = list(message.bodies) or languages_of(convening)
        already = sa.select(MessageRecipient.id).where(MessageRecipient.message_id == message.id,
                                                       MessageRecipient.registration_id == Registration.id)
        people = db.session.execute(
            _matching(convening, RecipientFilter.from_json(message.filter))
            .where(Registration.email_bounced_at.is_(None), ~sa.exists(already))
            .order_by(Registration.id).limit(BATCH)
        ).scalars().all()
        now = utcnow()
        for person in people:
            language = language_of(person, languages)
            rendered = render_message(message, convening, None, language, person)
            outbox = _outbox_row("message", person.email, rendered, person.id)
            db.session.flush()
            db.session.add(MessageRecipient(message_id=message.id, registration_id=person.id, outbox_id=outbox.id,
                                            language=language, to_address=person.email, created_at=now))
        db.session.flush()
        return len(people)


def _write_lead_copies(message_id: int) -> None:
    """One copy per delegation lead of the people it went to, in the convening's default language."""
    with unit_of_work():
        message = _locked(message_id)
        if message.status != "sending" or not message.copy_delegation_leads:
            return
        convening = db.session.get(Convening, message.convening_id)
        delegation_ids = set(db.session.execute(
            sa.select(Registration.delegation_id).join(MessageRecipient,
                                                       MessageRecipient.registration_id == Registration.id)
            .where(MessageRecipient.message_id == message.id, Registration.delegation_id.is_not(None))
        ).scalars())
        done = set(db.session.execute(sa.select(MessageRecipient.delegation_id).where(
            MessageRecipient.message_id == message.id, MessageRecipient.delegation_id.is_not(None))).scalars())
        language = languages_of(convening)[0]
        for delegation in convening.delegations:
            if delegation.id not in delegation_ids or delegation.id in done or not delegation.contact_email:
                continue
            rendered = render_message(message, convening, _lead_values(convening, delegation), language)
            rendered.subject = f"[Copy for {delegation.name}] {rendered.subject}"[:300]
            outbox = _outbox_row("message_copy", delegation.contact_email, rendered, None)
            db.session.flush()
            db.session.add(MessageRecipient(message_id=message.id, delegation_id=delegation.id, outbox_id=outbox.id,
                                            language=language, to_address=delegation.contact_email,
                                            created_at=utcnow()))


def _outbox_ids(message_id: int) -> list[int]:
    ids = db.session.execute(sa.select(MessageRecipient.outbox_id).where(
        MessageRecipient.message_id == message_id, MessageRecipient.outbox_id.is_not(None))
        .order_by(MessageRecipient.outbox_id)).scalars().all()
    db.session.rollback()
    return list(ids)


def send_message_task(run) -> dict:
    """The job that sends one message: write its recipients batch by batch, then deliver, each once."""
    from convene.services.mail import deliver_and_wait

    message_id = int(run.params["message_id"])
    written = len(_outbox_ids(message_id))
    while True:
        count = _write_batch(message_id)
        if count is None:
            return {"message": "The message was cancelled before it was sent."}
        if not count:
            break
        written += count
        run.progress(0, written, f"{written} email(s) written")
    _write_lead_copies(message_id)
    ids = _outbox_ids(message_id)
    run.progress(0, len(ids), "sending")
    sent, failed = deliver_and_wait(ids, run.progress)
    counts = refresh_counts(message_id, finished=True)
    return {"done": sent, "total": len(ids),
            "message": f"{counts.sent_count} sent, {counts.failed_count} failed, "
                       f"{counts.skipped_count} skipped (address bounced)"}


def refresh_counts(message_id: int, *, finished: bool = False) -> Message:
    """Recount a message's recipients from their outbox rows (and mark it sent when its job finished)."""
    with unit_of_work():
        message = _locked(message_id)
        rows = dict(db.session.execute(
            sa.select(OutboxMessage.status, sa.func.count()).join(
                MessageRecipient, MessageRecipient.outbox_id == OutboxMessage.id)
            .where(MessageRecipient.message_id == message.id).group_by(OutboxMessage.status)).all())
        message.recipient_count = db.session.scalar(sa.select(sa.func.count()).where(
            MessageRecipient.message_id == message.id))
        message.sent_count = rows.get("sent", 0)
        message.failed_count = rows.get("failed", 0)
        message.bounced_count = db.session.scalar(sa.select(sa.func.count()).where(
            MessageRecipient.message_id == message.id, MessageRecipient.bounced_at.is_not(None)))
        if finished and message.status == "sending":
            convening = db.session.get(Convening, message.convening_id)
            skipped = db.session.execute(
                _matching(convening, RecipientFilter.from_json(message.filter))
                .where(Registration.email_bounced_at.is_not(None))
                .with_only_columns(sa.func.count())).scalar()
            message.skipped_count = skipped or 0
            message.status, message.finished_at = "sent", utcnow()
    return message


# ---------------------------------------------------------------- history


def list_messages(convening_id: int) -> list[Message]:
    return db.session.execute(sa.select(Message).where(Message.convening_id == convening_id)
                              .order_by(Message.created_at.desc(), Message.id.desc())).scalars().all()


@dataclass
class AutomaticKind:
    kind: str
    total: int = 0
    sent: int = 0
    failed: int = 0
    last_at: datetime | None = None


def automatic_emails(convening_id: int) -> list[AutomaticKind]:
    """The emails Convene sent on its own (confirmations, offers, visits...) to this convening's people, by kind."""
    rows = db.session.execute(
        sa.select(OutboxMessage.kind, OutboxMessage.status, sa.func.count(), sa.func.max(OutboxMessage.created_at))
        .join(Registration, Registration.id == OutboxMessage.registration_id)
        .where(Registration.convening_id == convening_id, OutboxMessage.kind.not_in(("message", "message_copy")))
        .group_by(OutboxMessage.kind, OutboxMessage.status)
    ).all()
    kinds: dict[str, AutomaticKind] = {}
    for kind, status, count, last in rows:
        item = kinds.setdefault(kind, AutomaticKind(kind))
        item.total += count
        item.sent += count if status == "sent" else 0
        item.failed += count if status == "failed" else 0
        item.last_at = max(filter(None, (item.last_at, last)), default=None)
    return sorted(kinds.values(), key=lambda k: k.kind)


def messages_of(registration_id: int) -> dict[int, Message]:
    """The organizer's messages behind a person's outbox rows, by outbox id (for their page)."""
    rows = db.session.execute(
        sa.select(MessageRecipient.outbox_id, Message).join(Message, Message.id == MessageRecipient.message_id)
        .where(MessageRecipient.registration_id == registration_id, MessageRecipient.outbox_id.is_not(None))
    ).all()
    return {outbox_id: message for outbox_id, message in rows}


def recipients_of(message_id: int, limit: int = 500) -> list[tuple[MessageRecipient, OutboxMessage | None]]:
    return db.session.execute(
        sa.select(MessageRecipient, OutboxMessage)
        .outerjoin(OutboxMessage, OutboxMessage.id == MessageRecipient.outbox_id)
        .where(MessageRecipient.message_id == message_id).order_by(MessageRecipient.id).limit(limit)).all()


def filter_summary(convening: Convening, data: dict) -> list[str]:
    """The filter in words, for the history."""
    chosen = RecipientFilter.from_json(data)
    names = {
        "ticket_ids": {t.id: t.name for t in convening.ticket_types},
        "delegation_ids": {d.id: d.name for d in convening.delegations} | {NO_DELEGATION: "no delegation"},
    }
    out = []
    if chosen.statuses:
        out.append("Status: " + ", ".join(Status(s).label for s in chosen.statuses if s in Status.__members__.values()))
    for key, label in (("ticket_ids", "Ticket"), ("delegation_ids", "Delegation")):
        values = getattr(chosen, key)
        if values:
            out.append(f"{label}: " + ", ".join(names[key].get(v, f"#{v}") for v in values))
    if chosen.roles:
        out.append("Role: " + ", ".join(Role(r).label for r in chosen.roles if r in Role.__members__.values()))
    if chosen.languages:
        out.append("Language: " + ", ".join(language_name(c) for c in chosen.languages))
    if chosen.site_visit_ids:
        out.append(f"Site visits: {len(chosen.site_visit_ids)} chosen")
    if chosen.session_ids:
        out.append(f"Signed up for: {len(chosen.session_ids)} session(s)")
    if chosen.payment_statuses:
        out.append("Payment: " + ", ".join("nothing to pay" if s == NO_ORDER else OrderStatus(s).label
                                           for s in chosen.payment_statuses if s == NO_ORDER
                                           or s in OrderStatus.__members__.values()))
    if chosen.checkins:
        lists = {c.id: c.name for c in db.session.execute(sa.select(CheckinList).where(
            CheckinList.convening_id == convening.id)).scalars()}
        words = {ARRIVED: "arrived", NOT_ARRIVED: "not arrived"}
        out.append("Check-in: " + ", ".join(
            f"{lists.get(list_id, 'a deleted list')}: {words[arrival]}"
            for list_id, arrival in filter(None, map(parse_checkin_choice, chosen.checkins))))
    if chosen.references:
        out.append(f"References: {len(chosen.references)} listed")
    return out


# ---------------------------------------------------------------- bounces


SIGNATURE_HEADER = "X-Convene-Signature"
BOUNCE_TYPES = {"bounce": "The address bounced", "complaint": "The person marked a message as spam"}


def verify_bounce_signature(body: bytes, header: str | None) -> dict:
    """The event of a bounce webhook call, once its HMAC-SHA256 signature over the raw body checks out."""
    secret = current_app.config.get("MAIL_BOUNCE_WEBHOOK_SECRET") or ""
    if not secret:
        raise ConveneError("bounce_webhook_not_configured",
                           "Bounce webhooks are not configured (MAIL_BOUNCE_WEBHOOK_SECRET is not set).")
    given = (header or "").strip()
    if given.startswith("sha256="):
        given = given[len("sha256="):]
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not given.isascii() or not hmac.compare_digest(given.lower(), expected):
        raise ConveneError("bounce_signature_invalid", "The signature is missing or wrong.", status_code=401)
    try:
        event = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ConveneError("bounce_payload_invalid", "The body is not JSON.") from exc
    if not isinstance(event, dict):
        raise ConveneError("bounce_payload_invalid", "The body is not a JSON object.")
    events = event.get("events") if "events" in event else [event]
    if not isinstance(events, list) or not events or len(events) > 500 or not all(isinstance(e, dict) for e in events):
        raise ConveneError("bounce_payload_invalid", "Send one event, or a list of at most 500 under \"events\".")
    for item in events:
        address = item.get("email")
        if (item.get("type") not in BOUNCE_TYPES or not isinstance(address, str) or "@" not in address
                or len(address) > 254 or not address.isprintable()):
            raise ConveneError("bounce_payload_invalid",
                               "Each event needs \"type\" (bounce or complaint) and \"email\".")
    return {"events": events}


# Mailgun's webhooks (https://documentation.mailgun.com, "Securing webhooks"): the JSON body carries
# {"signature": {"timestamp", "token", "signature"}, "event-data": {...}}; the signature is the hex
# HMAC-SHA256 of timestamp + token under the domain's webhook signing key.
MAILGUN_MAX_AGE_SECONDS = 15 * 60  # an older call is a replay, not news


def mailgun_events(body: bytes, *, now: float | None = None) -> list[dict]:
    """A Mailgun webhook call as bounce events (empty for events that are not bounces), once its signature holds."""
    key = current_app.config.get("MAILGUN_WEBHOOK_SIGNING_KEY") or ""
    if not key:
        raise ConveneError("bounce_webhook_not_configured",
                           "Mailgun webhooks are not configured (MAILGUN_WEBHOOK_SIGNING_KEY is not set).")
    try:
        call = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ConveneError("bounce_payload_invalid", "The body is not JSON.") from exc
    signed = call.get("signature") if isinstance(call, dict) else None
    if not isinstance(signed, dict) or not all(isinstance(signed.get(k), str) for k in ("timestamp", "token",
                                                                                     "signature")):
        raise ConveneError("bounce_signature_invalid", "The signature is missing or wrong.", status_code=401)
    expected = hmac.new(key.encode(), (signed["timestamp"] + signed["token"]).encode(), hashlib.sha256).hexdigest()
    if not signed["signature"].isascii() or not hmac.compare_digest(signed["signature"].lower(), expected):
        raise ConveneError("bounce_signature_invalid", "The signature is missing or wrong.", status_code=401)
    age = abs((now or time.time()) - int(signed["timestamp"])) if signed["timestamp"].isdigit() else None
    if age is None or age > MAILGUN_MAX_AGE_SECONDS:
        raise ConveneError("bounce_signature_invalid", "The signature is too old.", status_code=401)
    data = call.get("event-data")
    if not isinstance(data, dict):
        raise ConveneError("bounce_payload_invalid", "The body has no \"event-data\".")
    kind = {"failed": "bounce", "complained": "complaint"}.get(data.get("event"))
    if kind == "bounce" and data.get("severity") != "permanent":
        kind = None  # a temporary failure is retried by Mailgun: the address still works
    address = data.get("recipient")
    if kind is None:
        return []
    if not isinstance(address, str) or "@" not in address or len(address) > 254 or not address.isprintable():
        raise ConveneError("bounce_payload_invalid", "The event has no recipient address.")
    status = data.get("delivery-status") if isinstance(data.get("delivery-status"), dict) else {}
    headers = (data.get("message") or {}).get("headers") if isinstance(data.get("message"), dict) else None
    return [{"type": kind, "email": address,
             "reason": str(status.get("description") or status.get("message") or data.get("reason") or ""),
             "message_id": str((headers or {}).get("message-id") or "") if isinstance(headers, dict) else ""}]


_MESSAGE_ID = re.compile(r"<?convene-([0-9]{1,12})@")


def record_bounces(events: list[dict]) -> int:
    """Flag the registrations of each bounced (or complaining) address; returns how many registrations changed.

    A bounce of an email this service sent (its Message-ID named) also marks that message's recipient.
    """
    flagged, touched = 0, set()
    with unit_of_work():
        now = utcnow()
        for event in events:
            address = event["email"].strip().lower()[:254]
            # The provider's words are stored as one clean line (PostgreSQL refuses NUL in text).
            reason = f"{BOUNCE_TYPES[event['type']]}: {single_line(str(event.get('reason') or ''))}".strip(": ")[:300]
            people = db.session.execute(sa.select(Registration).where(
                sa.func.lower(Registration.email) == address).with_for_update()).scalars().all()
            for person in people:
                if person.email_bounced_at is None:
                    flagged += 1
                person.email_bounced_at, person.email_bounce_reason = now, reason
                name_action(person, "registration.email_bounced")
            match = _MESSAGE_ID.search(str(event.get("message_id") or ""))
            if match is not None:
                recipient = db.session.execute(sa.select(MessageRecipient).where(
                    MessageRecipient.outbox_id == int(match.group(1)))).scalar_one_or_none()
                if recipient is not None and recipient.bounced_at is None:
                    recipient.bounced_at = now
                    touched.add(recipient.message_id)
    for message_id in sorted(touched):
        refresh_counts(message_id)
    return flagged


def bounced_count(convening_id: int) -> int:
    """How many of the convening's active registrations have an address that bounces (for the dashboard)."""
    return db.session.scalar(sa.select(sa.func.count()).where(
        Registration.convening_id == convening_id, Registration.email_bounced_at.is_not(None),
        Registration.status.in_(ACTIVE)))
