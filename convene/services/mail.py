"""Email: queued in the outbox inside a unit of work, delivered after it commits."""
from __future__ import annotations

import logging
import smtplib
import threading
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import sqlalchemy as sa
from flask import current_app, render_template

from convene.extensions import db
from convene.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)


def queue_email(kind: str, to: str, subject: str, template: str, registration=None, *,
                attachments: list[dict] | None = None, **context) -> OutboxMessage:
    """Render templates/email/<template>.txt and .html into an outbox row in the current transaction.

    `attachments` name documents (an order's invoice or receipt) rendered when the email goes out.
    """
    context.setdefault("registration", registration)
    message = OutboxMessage(
        kind=kind,
        attachments=list(attachments or []),
        registration_id=registration.id if registration is not None else None,
        to_address=to,
        subject=subject,
        text_body=render_template(f"email/{template}.txt", **context),
        html_body=render_template(f"email/{template}.html", **context),
    )
    db.session.add(message)
    db.session.flush()
    db.session.info.setdefault("queued_email", []).append(message)
    return message


def deliver_outbox(ids: list[int] | None = None, limit: int = 1000) -> int:
    """Deliver pending messages (these ids, or the oldest); returns how many went out.

    One conditional UPDATE claims the whole batch, so two deliverers racing never send a message
    twice; a message that fails goes back to pending (and to failed after five attempts).
    """
    from convene.services.db import unit_of_work

    if ids is None:
        ids = db.session.execute(
            sa.select(OutboxMessage.id).where(OutboxMessage.status == "pending").order_by(OutboxMessage.id).limit(limit)
        ).scalars().all()
    if not ids:
        return 0
    with unit_of_work():
        claimed = db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), OutboxMessage.status == "pending")
            .values(status="sending", attempts=OutboxMessage.attempts + 1)
            .returning(OutboxMessage.id)
        ).scalars().all()
    messages = db.session.execute(
        sa.select(OutboxMessage).where(OutboxMessage.id.in_(claimed)).order_by(OutboxMessage.id)
    ).scalars().all()
    sent: list[int] = []
    failed: dict[int, tuple[str, str]] = {}
    with _Transport() as transport:
        for message in messages:
            try:
                transport.send(message)
            except Exception as exc:  # a mail server down must not lose the message
                log.warning("email %s to %s failed: %s", message.id, message.to_address, exc)
                failed[message.id] = ("pending" if message.attempts < 5 else "failed", str(exc)[:2000])
            else:
                sent.append(message.id)
    with unit_of_work():
        if sent:
            db.session.execute(sa.update(OutboxMessage).where(OutboxMessage.id.in_(sent))
                               .values(status="sent", sent_at=utcnow(), last_error=""))
        for message_id, (status, error) in failed.items():
            db.session.execute(sa.update(OutboxMessage).where(OutboxMessage.id == message_id)
                               .values(status=status, last_error=error))
    return len(sent)


def deliver_after_commit(ids: list[int]) -> None:
    """Deliver what a unit of work queued: at once when few, in a background thread when many."""
    app = current_app._get_current_object()
    if len(ids) <= app.config["MAIL_INLINE_LIMIT"]:
        deliver_outbox(ids=ids)
        return

    def work():  # the request returns now; `flask convene send-mail` picks up anything left behind
        with app.app_context():
            for start in range(0, len(ids), 200):
                deliver_outbox(ids=ids[start:start + 200])

    threading.Thread(target=work, name="convene-mail", daemon=True).start()


def build_email(message: OutboxMessage) -> EmailMessage:
    """The MIME message (plain text with an HTML alternative) for an outbox row."""
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    email["To"] = message.to_address
    email["Message-ID"] = make_msgid(idstring=f"convene-{message.id}", domain="convene.local")
    email.set_content(message.text_body)
    email.add_alternative(message.html_body, subtype="html")
    for attachment in message.attachments or []:
        from convene.services.receipts import attachment_pdf

        document = attachment_pdf(attachment)
        if document is not None:
            filename, data = document
            email.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    return email


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
