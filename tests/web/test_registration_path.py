"""The registration form's POST: few statements, a short locked transaction, and the confirmation
written to the outbox as data, then rendered and sent by the delivery job in the registrant's language."""
from __future__ import annotations

import re
import time

import sqlalchemy as sa
from sqlalchemy import event

from convene.extensions import db
from convene.i18n import in_language
from convene.models import OutboxMessage, Registration
from flask import render_template
from tests.factories import make_convening, make_ticket
from tests.services.test_mail import smtp  # noqa: F401  (the fixture: a real SMTP server on loopback)

# Measured on both databases: the view's reads, the locked transaction, the delivery after the commit.
POST_STATEMENTS = 24
LOCKED_STATEMENTS = 9  # lock convening and ticket, lapsed offers and holds, the email, seats, 3 INSERTs (no waitlist)


class Recorder:
    """Every statement the engine runs, with COMMIT marked, and the parameters of each."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[tuple[str, object]] = []

    def _statement(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append((statement, parameters))

    def _commit(self, conn):
        self.statements.append(("COMMIT", None))

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)

    @property
    def sql(self) -> list[str]:
        return [s for s, _ in self.statements if s != "COMMIT" and not s.startswith("BEGIN")]

    def locked(self) -> list[str]:
        """The statements of the transaction that locked the convening (after its BEGIN IMMEDIATE on SQLite)."""
        texts = [s for s, _ in self.statements]
        start = next(i for i, s in enumerate(texts) if s.startswith("BEGIN IMMEDIATE") or "FOR UPDATE" in s)
        end = texts.index("COMMIT", start)
        return [s for s in texts[start:end] if not s.startswith("BEGIN")]


def launch():
    convening = make_convening(languages=["en", "fr"], default_language="en", waitlist_enabled=False,
                               translations={"fr": {"name": "Rencontre de lancement"}})
    ticket = make_ticket(convening, price_cents=0, capacity=10, translations={"fr": {"name": "Délégué·e"}})
    return convening, ticket


def form(ticket_id: int, n: int) -> dict:
    return {"given_name": f"Amina{n}", "family_name": "Hassan", "email": f"amina{n}@example.org",
            "organization": "City of Toronto", "ticket_type_id": ticket_id}


def test_the_registration_post_is_few_statements_and_its_lock_renders_nothing(client, backend):
    convening, ticket = launch()
    slug, ticket_id = convening.slug, ticket.id
    assert client.post(f"/c/{slug}/register", data=form(ticket_id, 0)).status_code == 302  # warm
    db.session.remove()
    with Recorder(db.engine) as recorded:
        response = client.post(f"/c/{slug}/register", data=form(ticket_id, 1))
    assert response.status_code == 302
    locked = recorded.locked()
    print(f"[{backend}] POST: {len(recorded.sql)} statements, {len(locked)} in the locked transaction")
    assert len(recorded.sql) <= POST_STATEMENTS
    assert len(locked) <= LOCKED_STATEMENTS
    # Nothing under the lock reads answers or questions for a form without answers, or updates what it inserted.
    assert not [s for s in locked if "FROM answer" in s or "FROM question" in s or s.startswith("UPDATE")]
    # The email goes into the outbox as data: its bodies are rendered after the commit, not under the lock.
    outbox_inserts = [p for s, p in recorded.statements if s.startswith("INSERT INTO outbox_message")]
    assert len(outbox_inserts) == 1
    values = outbox_inserts[0]
    bodies = ([values["text_body"], values["html_body"]] if isinstance(values, dict)
              else [v for v in values if isinstance(v, str) and v == ""])
    assert bodies and all(b == "" for b in bodies)
    sent = db.session.execute(sa.select(OutboxMessage).order_by(OutboxMessage.id.desc())).scalars().first()
    assert sent.status == "sent" and "Amina1" in sent.text_body and "Amina1" in sent.html_body


def test_the_confirmation_is_rendered_by_the_delivery_job_in_the_registrants_language_as_before(app, client, smtp):  # noqa: F811
    app.config["MAIL_RENDER_BY_JOB"] = True  # as outside the test suite: the delivery job renders and sends it
    convening, ticket = launch()
    slug, ticket_id = convening.slug, ticket.id
    response = client.post(f"/c/{slug}/register?lang=fr", data=form(ticket_id, 7))
    assert response.status_code == 302
    deadline = time.monotonic() + 30
    while not smtp.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(smtp.messages) == 1, "the delivery job did not send the confirmation"
    message = smtp.messages[0]
    db.session.rollback()
    registration = db.session.execute(sa.select(Registration).where(Registration.email == "amina7@example.org")).scalar_one()
    assert registration.language == "fr"
    row = db.session.execute(sa.select(OutboxMessage).where(OutboxMessage.registration_id == registration.id)).scalar_one()
    assert row.kind == "confirmation" and row.status == "sent"

    # Lines arrive ending in CRLF, as SMTP carries them.
    text = message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(preferencelist=("html",)).get_content().replace("\r\n", "\n")
    assert message["Subject"] == f"Vous êtes inscrit(e) à Rencontre de lancement ({registration.reference})"
    assert text.startswith("Bonjour Amina7,") and "Délégué·e" in text and registration.reference in text
    # The same bodies the transaction used to render itself (queue_email's templates and context), in French.
    manage_url = re.search(r"http://localhost/c/[^/]+/manage/\S+", text).group(0)
    with in_language("fr"):
        expected_text = render_template("email/confirmation.txt", registration=registration,
                                        convening=registration.convening, manage_url=manage_url)
        expected_html = render_template("email/confirmation.html", registration=registration,
                                        convening=registration.convening, manage_url=manage_url)
    assert text.rstrip("\n") == expected_text.rstrip("\n")
    assert html.rstrip("\n") == expected_html.rstrip("\n")
    assert row.text_body == expected_text and row.html_body == expected_html  # kept as sent
    assert client.get(f"/c/{slug}/manage/{manage_url.rsplit('/', 1)[1]}").status_code == 200
