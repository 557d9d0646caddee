"""Email delivery: exactly once under racing deliverers, and in the background for big batches."""
from __future__ import annotations

import time

import sqlalchemy as sa

from convene.extensions import db
from convene.models import OutboxMessage
from convene.services.db import unit_of_work
from convene.services.mail import deliver_outbox, queue_email
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
