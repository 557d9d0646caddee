"""Email delivery: exactly once under racing deliverers, in the background for big batches, and after a crash."""
from __future__ import annotations

import email
import email.policy
import email.utils
import json
import os
import re
import signal
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from convene.extensions import db
from convene.models import OutboxMessage, utcnow
from convene.services import mail
from convene.services.db import unit_of_work
from convene.services.mail import deliver_messages, deliver_outbox, queue_email
from tests.factories import make_convening
from tests.racing import race


def queue(n: int, convening) -> list[int]:
    with unit_of_work():
        messages = [queue_email("manage_link", f"p{i}@example.org", f"Hello {i}", "manage_link",
                                registration=None, convening=convening, manage_url="http://x/")
                    for i in range(n)]
        db.session.info["queued_email"] = []  # deliver by hand below, not after the commit
    return [m.id for m in messages]


def test_two_deliverers_racing_send_each_message_once(app, outbox):
    convening = make_convening()
    convening_id = convening.id
    ids = queue(30, db.session.get(type(convening), convening_id))
    counts = race(app, [lambda: deliver_outbox(ids=ids)] * 2, timeout=60)
    assert sum(counts) == 30
    assert len(outbox.messages()) == 30
    assert db.session.scalar(sa.select(sa.func.count()).where(OutboxMessage.status == "sent")) == 30


def test_a_big_batch_is_delivered_in_the_background(app, outbox):
    app.config["MAIL_INLINE_LIMIT"] = 5
    convening = make_convening()
    with unit_of_work():
        for i in range(12):
            queue_email("manage_link", f"p{i}@example.org", f"Hello {i}", "manage_link",
                        registration=None, convening=db.session.get(type(convening), convening.id),
                        manage_url="http://x/")
    deadline = time.monotonic() + 30
    while len(outbox.messages()) < 12 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(outbox.messages()) == 12


def test_nul_characters_are_refused_with_a_400_not_a_crash(client):
    convening = make_convening()
    response = client.post(f"/c/{convening.slug}/register", data={"given_name": "A\x00b"})
    assert response.status_code == 400 and "NUL character" in response.get_data(as_text=True)
    assert client.get("/c/%00/").status_code == 400
    assert client.get("/admin/login?next=%00").status_code == 400


# ---------------------------------------------------------------- leases, against a real SMTP server


class SmtpSink:
    """A minimal SMTP server on loopback that records every message accepted (by its outbox id).

    `on_mail(n)` runs when the n-th transaction starts (MAIL FROM), `on_data(outbox_id)` after a
    message arrived and before it is acknowledged, both in the connection's thread. `commands` keeps
    every MAIL and RCPT line as received, `messages` every message parsed; with `smtputf8` the
    server offers the SMTPUTF8 extension.
    """

    def __init__(self, *, smtputf8: bool = False):
        self.delivered: list[int] = []
        self.commands: list[str] = []
        self.messages: list[email.message.EmailMessage] = []
        self.transactions = 0
        self.guard = threading.Lock()
        self.on_mail: Callable[[int], None] | None = None
        self.on_data: Callable[[int], None] | None = None
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self):
                try:
                    self.converse()
                except OSError:  # the sender went away (it was killed)
                    pass

            def converse(self):
                self.reply("220 sink ESMTP")
                while line := self.rfile.readline():
                    verb = line.split(maxsplit=1)[0].upper() if line.strip() else b""
                    if verb in (b"MAIL", b"RCPT"):
                        with sink.guard:
                            command = line.decode("utf-8").rstrip("\r\n")
                            sink.commands.append(command[:4].upper() + command[4:])  # smtplib says "rcpt"
                    if verb == b"EHLO" and smtputf8:
                        self.reply("250-sink")
                        self.reply("250-8BITMIME")
                        self.reply("250 SMTPUTF8")
                    elif verb in (b"EHLO", b"HELO"):
                        self.reply("250 sink")
                    elif verb == b"MAIL":
                        with sink.guard:
                            sink.transactions += 1
                            n = sink.transactions
                        if sink.on_mail:
                            sink.on_mail(n)
                        self.reply("250 OK")
                    elif verb == b"DATA":
                        self.reply("354 go ahead")
                        lines = []
                        while (data := self.rfile.readline()) not in (b".\r\n", b""):
                            lines.append(data[1:] if data.startswith(b"..") else data)
                        message = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
                        outbox_id = int(re.search(r"convene-(\d+)@", message["Message-ID"]).group(1))
                        if sink.on_data:
                            sink.on_data(outbox_id)
                        with sink.guard:
                            sink.delivered.append(outbox_id)
                            sink.messages.append(message)
                        self.reply("250 queued")
                    elif verb == b"QUIT":
                        self.reply("221 bye")
                        return
                    else:  # RCPT, RSET, NOOP
                        self.reply("250 OK")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="smtp-sink", daemon=True)
        self.thread.start()

    def counts(self) -> Counter:
        with self.guard:
            return Counter(self.delivered)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def smtp(app):
    sink = SmtpSink()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=sink.port, MAIL_USE_TLS=False, MAIL_USE_SSL=False,
                      MAIL_USERNAME="")
    yield sink
    sink.stop()


def statuses(ids: list[int]) -> dict[int, tuple[str, str]]:
    db.session.rollback()
    rows = db.session.execute(sa.select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.claimed_by)
                              .where(OutboxMessage.id.in_(ids))).all()
    return {row.id: (row.status, row.claimed_by) for row in rows}


def abandon(ids: list[int], *, expired: bool) -> str:
    """What a sender killed mid-way leaves: these messages claimed under its token, never finished."""
    token = uuid.uuid4().hex
    claimed, _ = mail._claim(token, timedelta(seconds=300), len(ids), ids=ids)
    assert sorted(m.id for m in claimed) == sorted(ids)
    if expired:  # as if the lease's five minutes had passed
        with unit_of_work():
            db.session.execute(sa.update(OutboxMessage).where(OutboxMessage.id.in_(ids))
                               .values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    return token


def test_a_message_a_dead_sender_left_in_sending_is_sent_once_its_lease_ends(app, smtp):
    ids = queue(5, make_convening())
    abandon(ids[:3], expired=True)
    result = deliver_messages()
    assert (result.sent, result.reclaimed) == (5, 3)
    assert smtp.counts() == Counter(ids)
    assert all(state == ("sent", "") for state in statuses(ids).values())
    assert deliver_outbox() == 0 and smtp.counts() == Counter(ids)


def test_a_message_whose_sender_still_holds_its_lease_is_left_alone(app, smtp):
    ids = queue(4, make_convening())
    token = abandon(ids[:2], expired=False)
    assert deliver_outbox() == 2
    assert deliver_outbox(ids=ids) == 0
    assert smtp.counts() == Counter(ids[2:])
    assert statuses(ids[:2]) == {i: ("sending", token) for i in ids[:2]}


def test_two_deliverers_racing_over_200_messages_send_each_once_over_smtp(app, smtp):
    ids = queue(200, make_convening())
    counts = race(app, [lambda: deliver_outbox(ids=ids), lambda: deliver_outbox()], timeout=120)
    assert sum(counts) == 200
    assert smtp.counts() == Counter(ids)
    assert db.session.scalar(sa.select(sa.func.count()).where(OutboxMessage.status == "sent")) == 200


def test_a_sender_whose_lease_was_taken_over_mid_batch_does_not_send_that_message(app, smtp):
    ids = queue(3, make_convening())
    taken = ids[-1]
    takeover: list = []

    def while_the_first_is_sent(outbox_id: int) -> None:
        # The first sender stalls on its first message long enough for its lease to end, and a
        # second sender (send-mail from cron, say) reclaims the last message of the batch.
        if outbox_id != ids[0] or takeover:
            return
        with app.app_context():
            with unit_of_work():
                db.session.execute(sa.update(OutboxMessage).where(OutboxMessage.id == taken)
                                   .values(lease_expires_at=utcnow() - timedelta(seconds=1)))
            takeover.append(deliver_messages(ids=[taken]))
            db.session.remove()

    smtp.on_data = while_the_first_is_sent
    first = deliver_messages(ids=ids)
    [second] = takeover
    assert (first.sent, first.lost) == (2, 1)
    assert (second.sent, second.reclaimed) == (1, 1)
    assert smtp.counts() == Counter(ids)
    assert all(state == ("sent", "") for state in statuses(ids).values())


KILLED_SENDER = """
import json, sys, time
from convene import create_app
from convene.services.mail import deliver_after_commit

config, ids = json.loads(sys.argv[1]), json.loads(sys.argv[2])
app = create_app(config)
with app.app_context():
    deliver_after_commit(ids)  # more than MAIL_INLINE_LIMIT: a background thread sends them
time.sleep(120)
"""


def test_send_mail_sends_what_a_killed_background_sender_left_behind(app, smtp, runner):
    """The report: a process killed while its background thread sent a big batch left 'sending' rows for good."""
    ids = queue(60, make_convening())
    config = {key: app.config[key] for key in ("ENV_NAME", "SQLALCHEMY_DATABASE_URI", "MAIL_OUTBOX_DIR",
                                               "MAIL_SERVER", "MAIL_PORT", "MAIL_USE_TLS", "MAIL_USE_SSL")}
    config.update(MAIL_INLINE_LIMIT=5, MAIL_LEASE_SECONDS=2)
    killed = threading.Event()
    process: list[subprocess.Popen] = []

    def kill_on_the_25th(n: int) -> None:
        if n == 25 and not killed.is_set():
            process[0].send_signal(signal.SIGKILL)
            process[0].wait(30)
            killed.set()

    smtp.on_mail = kill_on_the_25th
    root = Path(__file__).resolve().parents[2]
    process.append(subprocess.Popen([sys.executable, "-c", KILLED_SENDER, json.dumps(config), json.dumps(ids)],
                                    cwd=root, env={**os.environ, "PYTHONPATH": str(root)}))
    try:
        deadline = time.monotonic() + 90
        while not killed.wait(0.2) and process[0].poll() is None and time.monotonic() < deadline:
            pass
        assert killed.wait(5), "the sender never got to its 25th message"
    finally:
        if process[0].poll() is None:
            process[0].kill()
            process[0].wait(30)
    delivered = smtp.counts()
    assert sum(delivered.values()) == 24 and max(delivered.values()) == 1
    left = [i for i, (status, _) in statuses(ids).items() if status == "sending"]
    assert left, "the killed sender left nothing claimed"
    time.sleep(2.1)  # the dead sender's lease runs out
    result = runner.invoke(args=["convene", "send-mail"])
    assert result.exit_code == 0, result.output
    assert f"Delivered {60 - 24} message(s)." in result.output
    assert f"Reclaimed {len(left)} message(s)" in result.output
    assert smtp.counts() == Counter(ids)
    assert all(state == ("sent", "") for state in statuses(ids).values())


# ---------------------------------------------------------------- international addresses and headers


def queue_to(addresses: list[str]) -> list[int]:
    convening = make_convening()
    with unit_of_work():
        messages = [queue_email("manage_link", address, "Your link", "manage_link", registration=None,
                                convening=db.session.get(type(convening), convening.id), manage_url="http://x/")
                    for address in addresses]
        db.session.info["queued_email"] = []
    return [m.id for m in messages]


def failures(ids: list[int]) -> dict[int, tuple[str, str]]:
    db.session.rollback()
    rows = db.session.execute(sa.select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.last_error)
                              .where(OutboxMessage.id.in_(ids))).all()
    return {row.id: (row.status, row.last_error) for row in rows}


def assert_dated_and_identified(message, domain: str) -> None:
    sent_at = email.utils.parsedate_to_datetime(message["Date"])
    assert sent_at.tzinfo is not None and abs((utcnow() - sent_at).total_seconds()) < 120
    assert re.fullmatch(rf"<[^<>@\s]+\.convene-\d+@{re.escape(domain)}>", message["Message-ID"].strip())


def test_an_address_with_a_unicode_domain_goes_out_with_its_domain_in_idna(app, smtp):
    app.config["BASE_URL"] = "https://events.exämple.org"
    [message_id] = queue_to(["USER@exämple.com"])
    assert deliver_messages().sent == 1
    assert "RCPT TO:<USER@xn--exmple-cua.com>" in smtp.commands
    [message] = smtp.messages
    assert message["To"] == "USER@xn--exmple-cua.com"
    assert_dated_and_identified(message, "events.xn--exmple-cua.org")
    assert failures([message_id]) == {message_id: ("sent", "")}


def test_a_non_ascii_local_part_is_failed_with_the_reason_and_the_others_still_go(app, smtp):
    ids = queue_to(["amina@example.org", "ÜSER@exämple.com", "ben@example.org"])
    result = deliver_messages()
    assert (result.sent, result.failed) == (2, 1)
    assert smtp.counts() == Counter([ids[0], ids[2]])
    reason = "This address has characters before the @ that mail servers may not deliver; use another address."
    assert failures(ids)[ids[1]] == ("failed", reason)
    assert deliver_messages().sent == 0  # failed for good: never tried again
    assert not any("Ü" in command for command in smtp.commands)


def test_a_non_ascii_local_part_goes_over_smtputf8_when_the_server_takes_it(app):
    sink = SmtpSink(smtputf8=True)
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=sink.port, MAIL_USE_TLS=False, MAIL_USE_SSL=False,
                      MAIL_USERNAME="", MAIL_SMTPUTF8=True)
    try:
        [message_id] = queue_to(["ÜSER@exämple.com"])
        assert deliver_messages().sent == 1 and failures([message_id])[message_id] == ("sent", "")
        assert "RCPT TO:<ÜSER@xn--exmple-cua.com>" in sink.commands
        assert any(c.startswith("MAIL FROM:") and "SMTPUTF8" in c for c in sink.commands)
        assert sink.messages[0]["To"] == "ÜSER@xn--exmple-cua.com"
    finally:
        sink.stop()


def test_every_message_has_a_date_and_a_message_id_naming_the_site(app, smtp):
    app.config["BASE_URL"] = "https://convene.example.org/"
    ids = queue_to([f"p{i}@example.org" for i in range(3)])
    assert deliver_outbox(ids=ids) == 3
    assert len(smtp.messages) == 3
    for message in smtp.messages:
        assert_dated_and_identified(message, "convene.example.org")
    assert len({message["Message-ID"] for message in smtp.messages}) == 3


def test_without_a_base_url_the_message_id_names_the_senders_domain(app, smtp):
    app.config.update(BASE_URL="", MAIL_DEFAULT_SENDER="Convene Team <no-reply@exämple.org>")
    queue_to(["amina@example.org"])
    assert deliver_outbox() == 1
    [message] = smtp.messages
    assert message["From"] == "Convene Team <no-reply@xn--exmple-cua.org>"
    assert_dated_and_identified(message, "xn--exmple-cua.org")


def test_the_eml_fallback_has_the_same_headers_and_fails_what_cannot_be_sent(app, outbox):
    app.config["BASE_URL"] = "https://convene.example.org"
    ids = queue_to(["user@exämple.com", "ÜSER@example.com"])
    result = deliver_messages()
    assert (result.sent, result.failed) == (1, 1)
    [message] = outbox.messages()
    assert message["To"] == "user@xn--exmple-cua.com"
    assert_dated_and_identified(message, "convene.example.org")
    assert failures(ids)[ids[1]][0] == "failed"


def test_a_subject_with_a_line_break_stored_long_ago_still_goes_out_on_one_line(app, outbox):
    from convene.models import OutboxMessage
    from convene.services.mail import deliver_outbox

    message = OutboxMessage(kind="manage_link", to_address="amina@example.org", subject="Your registration\nfor X",
                            text_body="Hello", html_body="<p>Hello</p>")
    db.session.add(message)
    db.session.commit()
    assert deliver_outbox() == 1
    [sent] = outbox.messages()
    assert sent["Subject"] == "Your registration for X"
