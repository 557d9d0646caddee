"""Registration rules against the real database: capacity, waitlist, offers, cancel, edits."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import Delegation, Registration, Status, utcnow
from convene.services import registrations as service
from tests.factories import make_convening, make_question, make_registration, make_ticket, person
from tests.racing import race


def statuses(convening_id: int) -> dict[str, int]:
    rows = db.session.execute(
        sa.select(Registration.status, sa.func.count()).where(Registration.convening_id == convening_id)
        .group_by(Registration.status)
    ).all()
    return dict(rows)


def test_registering_confirms_and_emails_the_manage_link(app, outbox):
    convening = make_convening()
    ticket = make_ticket(convening)
    registration = service.register_attendee(convening.id, ticket.id, person(1, email="Amina1@Example.org "))
    assert registration.status == Status.CONFIRMED
    assert registration.email == "amina1@example.org"
    assert registration.reference.startswith("TOR-") and len(registration.reference) == 9
    [message] = outbox.to("amina1@example.org")
    assert registration.reference in outbox.text(message)
    assert f"/c/{convening.slug}/manage/" in outbox.text(message)
    assert f"/c/{convening.slug}/manage/" in outbox.html(message)


def test_second_registration_with_same_email_is_refused(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    service.register_attendee(convening.id, ticket.id, person(1))
    with pytest.raises(ConveneError) as caught:
        service.register_attendee(convening.id, ticket.id, person(1, given_name="Other"))
    assert caught.value.code == "already_registered"
    assert statuses(convening.id) == {"confirmed": 1}


def test_ticket_capacity_and_convening_capacity_both_bind(app):
    convening = make_convening(capacity=3)
    small = make_ticket(convening, name="Speaker", capacity=1)
    big = make_ticket(convening, name="Delegate", capacity=10)
    service.register_attendee(convening.id, small.id, person(1))
    with pytest.raises(ConveneError) as caught:
        service.register_attendee(convening.id, small.id, person(2))
    assert caught.value.code == "sold_out"
    service.register_attendee(convening.id, big.id, person(3))
    service.register_attendee(convening.id, big.id, person(4))
    with pytest.raises(ConveneError):
        service.register_attendee(convening.id, big.id, person(5))
    assert statuses(convening.id) == {"confirmed": 3}


def test_full_convening_puts_people_on_the_waitlist_when_they_ask(app, outbox):
    convening = make_convening(capacity=1)
    ticket = make_ticket(convening)
    service.register_attendee(convening.id, ticket.id, person(1))
    waiting = service.register_attendee(convening.id, ticket.id, person(2), join_waitlist=True)
    assert waiting.status == Status.WAITLISTED
    [message] = outbox.to("amina2@example.org")
    assert "waitlist" in outbox.text(message)


def test_cancelling_offers_the_seat_to_the_first_waitlisted_and_holds_it(app, outbox):
    convening = make_convening(capacity=1)
    ticket = make_ticket(convening)
    first = service.register_attendee(convening.id, ticket.id, person(1))
    second = service.register_attendee(convening.id, ticket.id, person(2), join_waitlist=True)
    third = service.register_attendee(convening.id, ticket.id, person(3), join_waitlist=True)
    service.cancel_registration(first.id)
    second, third = db.session.get(Registration, second.id), db.session.get(Registration, third.id)
    assert second.status == Status.OFFERED and third.status == Status.WAITLISTED
    hold = second.offer_expires_at - utcnow()
    assert timedelta(hours=47, minutes=59) < hold <= timedelta(hours=48)
    offers = [m for m in outbox.to("amina2@example.org") if "held for you" in m["Subject"]]
    assert len(offers) == 1 and f"/c/{convening.slug}/offer/" in outbox.text(offers[0])
    # The held seat counts: a newcomer cannot take it.
    with pytest.raises(ConveneError):
        service.register_attendee(convening.id, ticket.id, person(4))
    accepted = service.accept_offer(second.id)
    assert accepted.status == Status.CONFIRMED


def test_an_offer_not_taken_in_time_passes_to_the_next_person(app, outbox):
    convening = make_convening(capacity=1)
    ticket = make_ticket(convening)
    first = service.register_attendee(convening.id, ticket.id, person(1))
    second = service.register_attendee(convening.id, ticket.id, person(2), join_waitlist=True)
    third = service.register_attendee(convening.id, ticket.id, person(3), join_waitlist=True)
    service.cancel_registration(first.id)
    later = utcnow() + timedelta(hours=49)
    assert service.expire_offers(convening.id, now=later) == 1
    assert db.session.get(Registration, second.id).status == Status.LAPSED
    assert db.session.get(Registration, third.id).status == Status.OFFERED
    with pytest.raises(ConveneError) as caught:
        service.accept_offer(second.id, now=later)
    assert caught.value.code == "offer_expired"
    assert any("released" in m["Subject"] for m in outbox.to("amina2@example.org"))


def test_cancelled_person_can_register_again_with_the_same_reference(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    first = service.register_attendee(convening.id, ticket.id, person(1))
    reference = first.reference
    service.cancel_registration(first.id)
    again = service.register_attendee(convening.id, ticket.id, person(1, organization="New org"))
    assert again.id == first.id and again.reference == reference
    assert again.status == Status.CONFIRMED and again.organization == "New org"


def test_closed_unpublished_and_paid_tickets_are_refused(app):
    now = utcnow()
    closed = make_convening(registration_closes_at=now - timedelta(minutes=1))
    unpublished = make_convening(published=False)
    not_yet = make_convening(registration_opens_at=now + timedelta(days=1))
    paid_convening = make_convening()
    paid = make_ticket(paid_convening, price_cents=25000)
    hidden = make_ticket(paid_convening, hidden=True)
    off_sale = make_ticket(paid_convening, sales_end_at=now - timedelta(seconds=1))
    cases = [
        (closed, make_ticket(closed), "registration_closed"),
        (unpublished, make_ticket(unpublished), "registration_closed"),
        (not_yet, make_ticket(not_yet), "registration_not_open"),
        (paid_convening, paid, "payment_not_set_up"),
        (paid_convening, hidden, "ticket_unavailable"),
        (paid_convening, off_sale, "ticket_not_on_sale"),
    ]
    for convening, ticket, code in cases:
        with pytest.raises(ConveneError) as caught:
            service.register_attendee(convening.id, ticket.id, person())
        assert caught.value.code == code
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 0


def test_answers_are_saved_typed_and_edited(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    dinner = make_question(convening, "Networking dinner?", "yes_no", required=True)
    topics = make_question(convening, "Working groups", "multiple_choice", choices=["Refugee strategies", "WIOA"])
    registration = service.register_attendee(
        convening.id, ticket.id, person(1), {dinner.id: True, topics.id: ["WIOA"]}
    )
    assert registration.answer_for(dinner.id) is True
    assert registration.answer_for(topics.id) == ["WIOA"]
    service.update_registration(registration.id, {"organization": "Maryland DOL"}, {dinner.id: False, topics.id: []})
    registration = db.session.get(Registration, registration.id)
    assert registration.organization == "Maryland DOL"
    assert registration.answer_for(dinner.id) is False
    assert registration.answer_for(topics.id) is None


def test_changing_email_to_one_already_registered_is_refused(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    service.register_attendee(convening.id, ticket.id, person(1))
    other = service.register_attendee(convening.id, ticket.id, person(2))
    with pytest.raises(ConveneError) as caught:
        service.update_registration(other.id, {"email": "AMINA1@example.org"})
    assert caught.value.field == "email"
    assert db.session.get(Registration, other.id).email == "amina2@example.org"


def test_comp_registration_takes_hidden_ticket_but_respects_capacity(app):
    convening = make_convening(capacity=2)
    comp = make_ticket(convening, name="Host (comp)", hidden=True)
    make_registration(convening, comp, 1)
    added = service.add_registration(convening.id, comp.id, person(2), role="host")
    assert added.status == Status.CONFIRMED and added.role == "host" and added.source == "admin"
    with pytest.raises(ConveneError) as caught:
        service.add_registration(convening.id, comp.id, person(3))
    assert caught.value.code == "comp_over_capacity"


def test_last_three_seats_go_to_exactly_three_of_twenty_racers(app, backend):
    convening = make_convening(capacity=10)
    ticket = make_ticket(convening)
    for n in range(7):
        make_registration(convening, ticket, 100 + n)
    convening_id, ticket_id = convening.id, ticket.id  # objects of this session stay in this thread

    def register(n: int):
        return lambda: service.register_attendee(convening_id, ticket_id, person(n), join_waitlist=n % 2 == 0).status

    outcomes = race(app, [register(n) for n in range(20)])
    assert len(outcomes) == 20
    assert outcomes.count("confirmed") == 3
    assert set(outcomes) <= {"confirmed", "waitlisted", "sold_out"}
    counts = statuses(convening_id)
    assert counts["confirmed"] == 10
    assert counts.get("waitlisted", 0) == outcomes.count("waitlisted")
    print(f"[{backend}] 20 racers for 3 seats: {outcomes.count('confirmed')} confirmed, "
          f"{outcomes.count('waitlisted')} waitlisted, {outcomes.count('sold_out')} refused")


def test_email_goes_through_smtp_when_configured_and_waits_when_the_server_is_down(app, outbox):
    """A real SMTP conversation with a server on loopback; a refused connection keeps the message."""
    import socket
    import socketserver

    from convene.models import OutboxMessage

    received: list[bytes] = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            self.wfile.write(b"220 test ESMTP\r\n")
            data = False
            while line := self.rfile.readline():
                if data:
                    if line == b".\r\n":
                        data = False
                        self.wfile.write(b"250 queued\r\n")
                    else:
                        received.append(line)
                    continue
                verb = line[:4].upper()
                if verb == b"DATA":
                    data = True
                    self.wfile.write(b"354 go on\r\n")
                elif verb == b"QUIT":
                    self.wfile.write(b"221 bye\r\n")
                    return
                else:
                    self.wfile.write(b"250 ok\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.server_address[1], MAIL_USE_TLS=False)
        convening = make_convening()
        registration = service.register_attendee(convening.id, make_ticket(convening).id, person(1))
        body = b"".join(received).decode()
        assert "To: amina1@example.org" in body and registration.reference in body
        assert outbox.messages() == []  # SMTP, not files
    finally:
        server.shutdown()
        server.server_close()

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    app.config["MAIL_PORT"] = dead_port
    service.send_manage_link(convening.id, "amina1@example.org")
    message = db.session.execute(sa.select(OutboxMessage).where(OutboxMessage.kind == "manage_link")).scalar_one()
    assert message.status == "pending" and message.attempts == 1 and message.last_error


def test_editing_a_badge_field_marks_the_badge_changed_but_other_fields_do_not(app):
    convening = make_convening()
    registration = make_registration(convening, make_ticket(convening), 1)
    assert registration.badge_changed_at is None and len(registration.checkin_token) >= 20
    service.update_registration(registration.id, {"phone": "+1 416 555 0100", "dietary_needs": ["vegan"]})
    assert db.session.get(Registration, registration.id).badge_changed_at is None
    service.update_registration(registration.id, {"badge_name": "Mimi"})
    assert db.session.get(Registration, registration.id).badge_changed_at is not None


def test_ten_racing_manage_link_requests_send_exactly_three_emails(app, outbox):
    convening = make_convening()
    registration = make_registration(convening, make_ticket(convening), 1)
    convening_id, email = convening.id, registration.email
    results = race(app, [lambda: service.send_manage_link(convening_id, email, hourly_cap=3) for _ in range(10)])
    assert sorted(results) == [False] * 7 + [True] * 3
    assert len(outbox.to(email)) == 3


def test_delegation_key_matches_case_accents_punctuation_and_spaces(app):
    from convene.text import delegation_key
    assert delegation_key("Dayton, OH") == delegation_key("dayton oh") == delegation_key(" Dayton  OH. ") == "dayton oh"
    assert delegation_key("Zürich–Nord") == delegation_key("zurich nord")
    assert delegation_key("Dayton") != delegation_key("Dayton OH")
    convening = make_convening()
    with service.unit_of_work():
        first = service.find_or_create_delegation(convening.id, "Dayton, OH")
    with service.unit_of_work():
        again = service.find_or_create_delegation(convening.id, "dayton oh")
    assert again.id == first.id and again.name == "Dayton, OH"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Delegation)) == 1
