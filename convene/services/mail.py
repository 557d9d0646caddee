"""Email: queued in the outbox inside a unit of work, delivered after it commits."""
from __future__ import annotations

import logging
import smtplib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, render_template

from convene.emails import UnsendableAddress, needs_smtputf8, sendable_address
from convene.extensions import db
from convene.i18n import in_language, person_language
from convene.text import single_line
from convene.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)

CLAIM_BATCH = 20  # small, so a lease never has to cover much more than one batch's sending time


def queue_email(kind: str, to: str, subject: str | Callable[[], str], template: str, registration=None, *,
                attachments: list[dict] | None = None, language: str | None = None, **context) -> OutboxMessage:
    """Render templates/email/<template>.txt and .html into an outbox row in the current transaction.

    The email is written in the recipient's language (`language`, else the registration's or the
    order's, else the convening's default), whoever triggers it: an attendee's page, an organizer's
    click in the back office or the command line. `subject` may be a function, called in that
    language, so its translated text and the organizer's content in it match the body.
    `attachments` name documents (an order's invoice or receipt) rendered when the email goes out.
    """
    context.setdefault("registration", registration)
    with in_language(recipient_language(registration, context, language)):
        message = OutboxMessage(
            kind=kind,
            attachments=list(attachments or []),
            registration_id=registration.id if registration is not None else None,
            to_address=to,
            subject=subject() if callable(subject) else str(subject),
            text_body=render_template(f"email/{template}.txt", **context),
            html_body=render_template(f"email/{template}.html", **context),
        )
    db.session.add(message)
    db.session.flush()
    by_job = current_app.config.get("MAIL_RENDER_BY_JOB")
    if by_job is None:  # with the in-process queue, a job costs a web worker more than sending one email
        from convene import jobs

        by_job = jobs.uses_redis()
    db.session.info.setdefault("email_by_job" if by_job else "queued_email", []).append(message)
    return message


def hand_to_delivery_job(messages: list[OutboxMessage]) -> None:
    """Inside the unit of work, before its commit: one delivery job for these messages, queued once it commits.

    The way password-reset emails go: the request answers without rendering or sending anything.
    Should the job be lost, the periodic sweep renders and sends them like any pending message.
    """
    from convene import jobs

    ids = [message.id for message in messages]
    jobs.enqueue("deliver_mail", params={"ids": ids}, total=len(ids))


# kind → build(message) returning (template, context, language): the emails whose bodies are rendered at delivery.
_renderers: dict[str, Callable[[OutboxMessage], tuple[str, dict, str]]] = {}


def register_renderer(kind: str, build: Callable[[OutboxMessage], tuple[str, dict, str]]) -> None:
    """Have the deliverer render `kind` emails: `build(message)` gives (template, context, language)."""
    _renderers[kind] = build


def queue_email_data(kind: str, to: str, subject: str | Callable[[], str], registration) -> OutboxMessage:
    """Write an email about a registration into the outbox as data: its kind, recipient, subject and registration.

    Its bodies are rendered when it is delivered after the commit, by the renderer registered for
    `kind`, in the registration's stored language: the transaction, and the lock it holds, does no
    template work. The subject is written now, in that language, as queue_email writes it. It goes
    out through the delivery job when MAIL_RENDER_BY_JOB is on (by default: when the queue runs on
    Redis), else as other email does after the commit (deliver_after_commit).
    """
    if kind not in _renderers:
        raise ValueError(f"no renderer registered for {kind!r} emails")
    with in_language(recipient_language(registration, {})):
        message = OutboxMessage(kind=kind, attachments=[], registration_id=registration.id, to_address=to,
                                subject=subject() if callable(subject) else str(subject),
                                text_body="", html_body="")
    db.session.add(message)
    db.session.flush()
    by_job = current_app.config.get("MAIL_RENDER_BY_JOB")
    if by_job is None:  # with the in-process queue, a job costs a web worker more than sending one email
        from convene import jobs

        by_job = jobs.uses_redis()
    db.session.info.setdefault("email_by_job" if by_job else "queued_email", []).append(message)
    return message


def render_bodies(message: OutboxMessage) -> tuple[str, str]:
    """The text and HTML bodies of an email queued as data, rendered by its kind's renderer."""
    template, context, language = _renderers[message.kind](message)
    with in_language(language):
        return (render_template(f"email/{template}.txt", **context),
                render_template(f"email/{template}.html", **context))


def _needs_rendering(message: OutboxMessage) -> bool:
    return not message.text_body and not message.html_body and message.kind in _renderers


def recipient_language(registration, context: dict, language: str | None = None) -> str:
    """The language to write to someone in: asked for, else their registration's, else their order's first."""
    if registration is None and context.get("order") is not None:
        people = getattr(context["order"], "registrations", None) or []
        registration = people[0] if people else None
    return person_language(registration, context.get("convening"), language)


@dataclass
class Delivery:
    """What one run of the deliverer did."""

    sent: int = 0
    failed: int = 0
    reclaimed: int = 0  # claimed from a sender whose lease had run out (it died, most likely)
    lost: int = 0  # taken over by another sender before this one got to send them


def deliver_outbox(ids: list[int] | None = None, limit: int = 1000) -> int:
    """Deliver pending messages (these ids, or the oldest); returns how many went out."""
    return deliver_messages(ids, limit).sent


def deliver_messages(ids: list[int] | None = None, limit: int = 1000) -> Delivery:
    """Claim and send messages in small batches under a lease: pending ones, and any whose sender died.

    Each run holds a claim token. A message is sent only just after its lease was renewed under
    that token, and marked sent or failed only if the token still holds it, so a sender whose
    lease ran out and was taken over never sends (or overwrites) the message it lost. A sender
    killed between sending and marking leaves the message to be sent again once the lease ends:
    delivery is at least once, never twice at the same time.
    """
    token = uuid.uuid4().hex
    lease = timedelta(seconds=current_app.config.get("MAIL_LEASE_SECONDS", 300))
    result = Delivery()
    with _Transport() as transport:
        for messages, reclaimed in _batches(token, lease, ids, limit):
            result.reclaimed += reclaimed
            for message in messages:
                _send_one(transport, message, token, lease, result)
    return result


def _batches(token: str, lease: timedelta, ids: list[int] | None, limit: int) -> Iterator[tuple[list, int]]:
    """Claim batch after batch: of these ids, or of the oldest claimable messages up to `limit`."""
    if ids is not None:
        wanted = sorted(set(ids))
        for start in range(0, len(wanted), CLAIM_BATCH):
            yield _claim(token, lease, CLAIM_BATCH, ids=wanted[start:start + CLAIM_BATCH])
        return
    after, taken = 0, 0
    while taken < limit:
        # Each batch comes after the last one's ids, so a message that failed waits for the next run.
        messages, reclaimed = _claim(token, lease, min(CLAIM_BATCH, limit - taken), after=after)
        if not messages:
            return
        yield messages, reclaimed
        after, taken = messages[-1].id, taken + len(messages)


def _claimable(now: datetime):
    return sa.or_(
        OutboxMessage.status == "pending",
        # NULL: left in "sending" by a deliverer from before leases existed
        sa.and_(OutboxMessage.status == "sending",
                sa.or_(OutboxMessage.lease_expires_at.is_(None), OutboxMessage.lease_expires_at < now)),
    )


def _claim(token: str, lease: timedelta, size: int, *, ids: list[int] | None = None,
           after: int = 0) -> tuple[list[OutboxMessage], int]:
    """Take up to `size` claimable messages under `token`; returns copies of them and how many were reclaimed."""
    from convene.services.db import unit_of_work

    with unit_of_work():
        now = utcnow()
        query = sa.select(OutboxMessage.id, OutboxMessage.status).where(_claimable(now))
        query = query.where(OutboxMessage.id.in_(ids)) if ids is not None else query.where(OutboxMessage.id > after)
        # SKIP LOCKED lets a racing deliverer take the next rows instead of queueing behind these
        # (PostgreSQL); on SQLite the unit's BEGIN IMMEDIATE already serializes claims.
        candidates = db.session.execute(
            query.order_by(OutboxMessage.id).limit(size).with_for_update(skip_locked=True)
        ).all()
        if not candidates:
            return [], 0
        claimed = set(db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id.in_([row.id for row in candidates]), _claimable(now))
            .values(status="sending", claimed_by=token, lease_expires_at=now + lease,
                    attempts=OutboxMessage.attempts + 1)
            .returning(OutboxMessage.id)
        ).scalars())
        # Unattached copies: they keep their values through the commits that follow, and the
        # session's own instances (a caller may still hold them) are left alone.
        messages = [OutboxMessage(**row._mapping) for row in db.session.execute(
            sa.select(OutboxMessage.__table__).where(OutboxMessage.id.in_(claimed)).order_by(OutboxMessage.id)
        )]
    reclaimed = sum(1 for row in candidates if row.id in claimed and row.status == "sending")
    if reclaimed:
        log.warning("reclaimed %s email(s) left in sending by a sender whose lease ran out", reclaimed)
    return messages, reclaimed


def _holding(message_id: int, token: str):
    return sa.update(OutboxMessage).where(OutboxMessage.id == message_id, OutboxMessage.claimed_by == token,
                                          OutboxMessage.status == "sending")


def _send_one(transport: _Transport, message: OutboxMessage, token: str, lease: timedelta, result: Delivery) -> None:
    from convene.services.db import unit_of_work

    with unit_of_work():
        renewed = db.session.execute(_holding(message.id, token).values(lease_expires_at=utcnow() + lease)).rowcount
    if not renewed:  # our lease ran out and another sender took the message over: it sends it, not us
        log.info("email %s was taken over by another sender; not sending it", message.id)
        result.lost += 1
        return
    rendered = {}
    try:
        if _needs_rendering(message):
            message.text_body, message.html_body = render_bodies(message)
            rendered = dict(text_body=message.text_body, html_body=message.html_body)
            db.session.rollback()  # end the read transaction the rendering opened
        transport.send(message)
    except UnsendableAddress as exc:  # trying again would not help: nobody can send to this address
        log.warning("email %s to %r not sent: %s", message.id, message.to_address, exc.message)
        values = dict(status="failed", last_error=exc.message)
        result.failed += 1
    except Exception as exc:  # a mail server down must not lose the message
        log.warning("email %s to %s failed: %s", message.id, message.to_address, exc)
        values = dict(status="pending" if message.attempts < 5 else "failed", last_error=str(exc)[:2000])
        result.failed += 1
    else:
        values = dict(status="sent", sent_at=utcnow(), last_error="")
        result.sent += 1
    with unit_of_work():
        marked = db.session.execute(
            _holding(message.id, token).values(claimed_by="", lease_expires_at=None, **rendered, **values)
        ).rowcount
    if not marked:  # the send outlasted the lease and another sender took the message over
        log.warning("email %s was taken over by another sender while it was being sent", message.id)


def deliver_after_commit(ids: list[int]) -> None:
    """Deliver what a unit of work queued: on the job queue when it runs on Redis; else at once when few,
    and as a job of the in-process worker when many."""
    from convene import jobs

    app = current_app._get_current_object()
    if not jobs.uses_redis(app) and len(ids) <= app.config["MAIL_INLINE_LIMIT"]:
        deliver_outbox(ids=ids)
        return
    # The request returns now; the periodic sweep (`flask convene scheduler`, or send-mail) catches anything lost.
    jobs.enqueue("deliver_mail", params={"ids": list(ids)}, total=len(ids))


def deliver_mail_task(run) -> dict:
    """The queue's delivery job: send its messages (or, without ids, every one waiting), safe to run twice.

    A message an earlier, killed run of this job still holds under its lease is sent once the lease
    ends: the job waits for that (at most MAIL_LEASE_SECONDS) rather than finish with it unsent.
    """
    ids = run.params.get("ids")
    if ids is None:
        result = deliver_messages()
        return {"done": result.sent, "total": result.sent + result.failed,
                "message": f"{result.sent} sent, {result.failed} failed, {result.reclaimed} reclaimed"}
    sent, failed = deliver_and_wait(ids, run.progress)
    return {"done": sent, "total": len(set(ids)), "message": f"{sent} sent, {failed} failed"}


def deliver_and_wait(ids: list[int], progress) -> tuple[int, int]:
    """Deliver these messages, waiting out the leases an earlier, killed sender still holds; returns (sent, failed).

    `progress(done, total)` is called after each chunk (a job's `run.progress`: it also beats).
    """
    ids = sorted(set(ids))
    lease = current_app.config.get("MAIL_LEASE_SECONDS", 300)
    give_up = time.monotonic() + lease + 30
    while True:
        for start in range(0, len(ids), 200):
            deliver_messages(ids[start:start + 200])
            progress(_count(ids, "sent"), len(ids))
        held = db.session.execute(
            sa.select(sa.func.min(OutboxMessage.lease_expires_at))
            .where(OutboxMessage.id.in_(ids), OutboxMessage.status == "sending")
        ).scalar()
        db.session.rollback()
        if held is None or time.monotonic() > give_up:
            break
        time.sleep(min(max(0.2, (held - utcnow()).total_seconds() + 0.2), 30))
        progress(_count(ids, "sent"))  # a sign of life while waiting
    return _count(ids, "sent"), _count(ids, "failed")


def _count(ids: list[int], status: str) -> int:
    count = db.session.scalar(
        sa.select(sa.func.count()).where(OutboxMessage.id.in_(ids), OutboxMessage.status == status))
    db.session.rollback()
    return count


def build_email(message: OutboxMessage) -> EmailMessage:
    """The MIME message (plain text with an HTML alternative) for an outbox row.

    Raises UnsendableAddress when the recipient (or the configured sender) cannot be written in a
    form mail servers deliver.
    """
    sender = _sender()
    to = sendable_address(message.to_address)
    # Non-ASCII before the @ (allowed only with MAIL_SMTPUTF8) must go out as UTF-8, not RFC 2047 words.
    utf8 = needs_smtputf8(to) or needs_smtputf8(sender.addr_spec)
    email = EmailMessage(policy=policy.default.clone(utf8=True) if utf8 else policy.default)
    email["Subject"] = single_line(message.subject)  # text stored before forms cleaned it may hold a line break
    email["From"] = sender
    email["To"] = to
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = make_msgid(idstring=f"convene-{message.id}", domain=_message_id_domain(sender))
    email.set_content(message.text_body)
    email.add_alternative(message.html_body, subtype="html")
    for attachment in message.attachments or []:
        from convene.services.receipts import attachment_pdf

        document = attachment_pdf(attachment)
        if document is not None:
            filename, data = document
            email.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    return email


def _sender() -> Address:
    """MAIL_DEFAULT_SENDER ("Name <address>" or an address) with its domain IDNA-encoded."""
    name, address = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])
    try:
        address = sendable_address(address)
    except UnsendableAddress:
        # A reserved domain such as the default no-reply@convene.local is refused for recipients,
        # but as a sender it only ends up in .eml files in development: keep it when it is ASCII.
        if not address.isascii() or "@" not in address:
            raise
    local, _, domain = address.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def _message_id_domain(sender: Address) -> str:
    """The site's host (CONVENE_BASE_URL), else the sender's domain: Message-IDs name a domain we answer for."""
    host = urlsplit(current_app.config.get("BASE_URL") or "").hostname or ""
    if host and "." in host and not host.replace(".", "").isdigit():
        try:
            return host.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    return sender.domain or "convene.local"


class _Transport:
    """SMTP when MAIL_SERVER is set (one connection per batch, opened on first use), else .eml files."""

    def __init__(self):
        self.config = current_app.config
        self.smtp: smtplib.SMTP | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except smtplib.SMTPException:
                pass

    def send(self, message: OutboxMessage) -> None:
        email = build_email(message)
        if not self.config["MAIL_SERVER"]:
            outbox = Path(self.config["MAIL_OUTBOX_DIR"])
            outbox.mkdir(parents=True, exist_ok=True)
            path = outbox / f"{utcnow():%Y%m%d-%H%M%S}-{message.id:06d}-{message.kind}.eml"
            path.write_bytes(bytes(email))
            log.info("email %s to %s written to %s", message.kind, message.to_address, path)
            return
        if self.smtp is None:
            self.smtp = self._connect()
        try:
            self.smtp.send_message(email)
        except smtplib.SMTPServerDisconnected:
            self.smtp = self._connect()
            self.smtp.send_message(email)
        log.info("email %s sent to %s", message.kind, message.to_address)

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        smtp_class = smtplib.SMTP_SSL if config["MAIL_USE_SSL"] else smtplib.SMTP
        smtp = smtp_class(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30)
        if config["MAIL_USE_TLS"] and not config["MAIL_USE_SSL"]:
            smtp.starttls()
        if config["MAIL_USERNAME"]:
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        return smtp
