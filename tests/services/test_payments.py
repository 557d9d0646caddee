"""Paid registration through the real stripe library and a fake Stripe server on loopback.

Webhooks are signed with the library's own helper and posted to the app's real endpoint.
"""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import (
    CodeKind,
    DiscountCode,
    Order,
    OrderStatus,
    OutboxMessage,
    Registration,
    Status,
    StripeEvent,
    utcnow,
)
from convene.models.payments import CreditNote
from convene.services import payment_reports, payments, receipts
from convene.services import registrations as service
from tests.factories import make_convening, make_ticket, person
from tests.racing import race


def paid_convening(price: int = 45000, **overrides):
    convening = make_convening(**overrides)
    ticket = make_ticket(convening, name="Delegate", price_cents=price)
    return convening, ticket


def deliver(client, fake, kind: str, obj: dict, **kw):
    payload, headers = fake.webhook(kind, obj, **kw)
    return client.post("/stripe/webhook", data=payload, headers=headers)


def emails(kind: str, to: str | None = None) -> list[OutboxMessage]:
    query = sa.select(OutboxMessage).where(OutboxMessage.kind == kind)
    if to:
        query = query.where(OutboxMessage.to_address == to)
    db.session.rollback()
    return db.session.execute(query).scalars().all()


def register_and_checkout(convening, ticket, n: int, **kw):
    registration = service.register_attendee(convening.id, ticket.id, person(n), **kw)
    url = payments.start_checkout(registration.order_id)
    db.session.rollback()
    order = db.session.get(Order, registration.order_id)
    return registration, order, url


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_paid_registration_holds_the_seat_and_webhook_confirms_it_once(app, client, fake_stripe, outbox):
    convening, ticket = paid_convening(capacity=1)
    registration, order, url = register_and_checkout(convening, ticket, 1)

    assert registration.status == Status.PENDING
    assert service.seat_usage(convening.id).total == 1  # the held seat counts against capacity
    assert outbox.to("amina1@example.org") == []  # nothing is confirmed before the money arrives
    [session] = fake_stripe.sessions
    assert url == session["url"] and order.stripe_session_id == session["id"]
    assert session["amount_total"] == 45000 and session["currency"] == "cad"
    assert session["customer_email"] == "amina1@example.org"
    assert session["metadata"]["registration_id"] == str(registration.id)
    assert session["metadata"]["order_id"] == str(order.id)
    assert session["success_url"].endswith("?session_id={CHECKOUT_SESSION_ID}")
    assert "/order/" in session["cancel_url"]
    assert abs(session["expires_at"] - (utcnow() + timedelta(minutes=35)).timestamp()) < 60
    [create] = [r for r in fake_stripe.requests if r["path"] == "/v1/checkout/sessions"]
    assert create["idempotency_key"].startswith(f"convene-checkout-{order.reference}-")

    fake_stripe.complete(session["id"])
    answer = deliver(client, fake_stripe, "checkout.session.completed", fake_stripe.session(session["id"]))
    assert answer.status_code == 200 and answer.json["outcome"] == "paid"

    db.session.rollback()
    order = db.session.get(Order, order.id)
    assert order.status == OrderStatus.PAID and order.paid_cents == 45000
    assert order.stripe_payment_intent_id.startswith("pi_")
    assert db.session.get(Registration, registration.id).status == Status.CONFIRMED
    [confirmation] = [m for m in outbox.to("amina1@example.org") if "You are registered" in m["Subject"]]
    assert "/manage/" in outbox.text(confirmation)
    [receipt_email] = [m for m in outbox.to("amina1@example.org") if m["Subject"].startswith("Receipt")]
    [attachment] = list(receipt_email.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    text = pdf_text(attachment.get_content())
    assert order.reference in text and "450.00" in text


@pytest.mark.parametrize("how", ["missing", "wrong_secret", "stale", "tampered"])
def test_bad_missing_or_stale_signatures_are_refused_and_change_nothing(app, client, fake_stripe, how):
    convening, ticket = paid_convening()
    registration, order, _ = register_and_checkout(convening, ticket, 1)
    fake_stripe.complete(order.stripe_session_id)
    payload, headers = fake_stripe.webhook("checkout.session.completed", fake_stripe.session(order.stripe_session_id))
    if how == "missing":
        headers.pop("Stripe-Signature")
    elif how == "wrong_secret":
        headers["Stripe-Signature"] = fake_stripe.sign(payload, secret="whsec_someone_else")
    elif how == "stale":
        headers["Stripe-Signature"] = fake_stripe.sign(payload, timestamp=int(utcnow().timestamp()) - 3600)
    else:
        payload = payload.replace('"amount_total": 45000', '"amount_total": 1')
    answer = client.post("/stripe/webhook", data=payload, headers=headers)
    assert answer.status_code == 400
    assert answer.is_json and answer.json["error"] == "bad_request"
    db.session.rollback()
    assert db.session.get(Order, order.id).status == OrderStatus.PENDING
    assert db.session.execute(sa.select(sa.func.count()).select_from(StripeEvent)).scalar_one() == 0


def test_the_same_event_delivered_twice_changes_nothing_the_second_time(app, client, fake_stripe):
    convening, ticket = paid_convening()
    _, order, _ = register_and_checkout(convening, ticket, 1)
    fake_stripe.complete(order.stripe_session_id)
    session = fake_stripe.session(order.stripe_session_id)
    first = deliver(client, fake_stripe, "checkout.session.completed", session, event_id="evt_same")
    second = deliver(client, fake_stripe, "checkout.session.completed", session, event_id="evt_same")
    assert (first.json["outcome"], second.json["outcome"]) == ("paid", "duplicate")
    assert len(emails("confirmation")) == 1 and len(emails("payment_received")) == 1
    assert db.session.execute(sa.select(StripeEvent.event_id, StripeEvent.outcome)).all() == [("evt_same", "paid")]


def test_return_page_and_webhook_racing_confirm_exactly_once(app, fake_stripe, backend):
    """Ten orders; for each, the buyer's return and Stripe's webhook arrive at the same moment."""
    convening, ticket = paid_convening()
    convening_id, ticket_id = convening.id, ticket.id
    rounds = []
    for n in range(10):
        _, order, _ = register_and_checkout(convening, ticket, n)
        fake_stripe.complete(order.stripe_session_id)
        rounds.append((order.id, order.stripe_session_id, fake_stripe.event(
            "checkout.session.completed", fake_stripe.session(order.stripe_session_id))))
    outcomes: list = []
    for order_id, session_id, event in rounds:
        outcomes += race(app, [
            lambda: payments.confirm_from_return(order_id, session_id).status,
            lambda: payments.handle_stripe_event(event),
        ], timeout=60)
    assert len(outcomes) == 20
    assert db.session.execute(sa.select(sa.func.count()).select_from(Order).where(
        Order.convening_id == convening_id, Order.status == OrderStatus.PAID)).scalar_one() == 10
    confirmations = emails("confirmation")
    assert len(confirmations) == 10 and len({m.to_address for m in confirmations}) == 10
    assert len(emails("payment_received")) == 10
    assert service.seat_usage(convening_id).by_ticket[ticket_id] == 10
    print(f"[{backend}] 10 return/webhook races: 10 paid, {len(confirmations)} confirmation emails")


def test_three_paid_seats_go_to_exactly_three_of_twenty_racers(app, fake_stripe, backend):
    convening, ticket = paid_convening(capacity=3, waitlist_enabled=False)
    convening_id, ticket_id = convening.id, ticket.id

    def register(n: int):
        return lambda: service.register_attendee(convening_id, ticket_id, person(n)).status

    outcomes = race(app, [register(n) for n in range(20)])
    assert outcomes.count("pending") == 3
    assert set(outcomes) == {"pending", "sold_out_no_waitlist"}
    assert db.session.execute(sa.select(sa.func.count()).select_from(Order).where(
        Order.convening_id == convening_id)).scalar_one() == 3
    print(f"[{backend}] 20 racers for 3 paid seats: {outcomes.count('pending')} held for payment")


def test_expired_checkout_frees_the_seat_and_offers_it_to_the_waitlist(app, client, fake_stripe, outbox):
    convening, ticket = paid_convening(capacity=1)
    _, order, _ = register_and_checkout(convening, ticket, 1)
    waiting = service.register_attendee(convening.id, ticket.id, person(2), join_waitlist=True)
    assert waiting.status == Status.WAITLISTED

    fake_stripe.expire(order.stripe_session_id)
    answer = deliver(client, fake_stripe, "checkout.session.expired", fake_stripe.session(order.stripe_session_id))
    assert answer.json["outcome"] == "released"
    db.session.rollback()
    assert db.session.get(Order, order.id).status == OrderStatus.EXPIRED
    assert db.session.get(Registration, order.registrations[0].id).status == Status.EXPIRED
    assert db.session.get(Registration, waiting.id).status == Status.OFFERED
    assert [m["Subject"] for m in outbox.to("amina1@example.org")] == [
        f"Your held seat at {convening.name} was released"]
    assert any("held for you" in m["Subject"] for m in outbox.to("amina2@example.org"))


def test_an_abandoned_hold_is_released_after_expiry_even_without_a_webhook(app, fake_stripe):
    convening, ticket = paid_convening(capacity=1)
    _, order, _ = register_and_checkout(convening, ticket, 1)
    later = order.hold_expires_at + payments.EXPIRY_GRACE + timedelta(seconds=1)
    assert service.expire_offers(convening.id, now=order.hold_expires_at) == 0  # within the grace: still held
    assert service.expire_offers(convening.id, now=later) == 1
    db.session.rollback()
    assert db.session.get(Order, order.id).status == OrderStatus.EXPIRED
    assert service.seat_usage(convening.id).total == 0
    again = service.register_attendee(convening.id, ticket.id, person(3))
    assert again.status == Status.PENDING


def test_payment_arriving_after_the_hold_expired_is_kept_if_the_seat_is_free_else_flagged(app, client, fake_stripe):
    convening, ticket = paid_convening(capacity=1)
    _, first, _ = register_and_checkout(convening, ticket, 1)
    service.expire_offers(convening.id, now=first.hold_expires_at + timedelta(hours=1))
    fake_stripe.complete(first.stripe_session_id)
    assert deliver(client, fake_stripe, "checkout.session.completed",
                   fake_stripe.session(first.stripe_session_id)).json["outcome"] == "paid"
    db.session.rollback()
    assert db.session.get(Order, first.id).registrations[0].status == Status.CONFIRMED

    other, ticket2 = paid_convening(capacity=1)
    _, late, _ = register_and_checkout(other, ticket2, 2)
    service.expire_offers(other.id, now=late.hold_expires_at + timedelta(hours=1))
    _, taker, _ = register_and_checkout(other, ticket2, 3)  # the seat went to someone else
    fake_stripe.complete(late.stripe_session_id)
    assert deliver(client, fake_stripe, "checkout.session.completed",
                   fake_stripe.session(late.stripe_session_id)).json["outcome"] == "flagged"
    db.session.rollback()
    late = db.session.get(Order, late.id)
    assert (late.status, late.flag) == (OrderStatus.REVIEW, "paid_after_expiry")
    assert service.seat_usage(other.id).total == 1  # never two people in one seat


def test_amount_or_currency_that_does_not_match_is_flagged_not_accepted(app, client, fake_stripe):
    convening, ticket = paid_convening()
    registration, order, _ = register_and_checkout(convening, ticket, 1)
    fake_stripe.complete(order.stripe_session_id, amount_total=100)
    outcome = deliver(client, fake_stripe, "checkout.session.completed", fake_stripe.session(order.stripe_session_id))
    assert outcome.json["outcome"] == "flagged"
    db.session.rollback()
    order = db.session.get(Order, order.id)
    assert (order.status, order.flag) == (OrderStatus.REVIEW, "amount_mismatch")
    assert "100 CAD" in order.flag_detail
    assert db.session.get(Registration, registration.id).status == Status.PENDING
    assert emails("confirmation") == []


def test_refund_round_trip_partial_then_full_with_cancel(app, client, fake_stripe, outbox):
    convening, ticket = paid_convening(capacity=1)
    registration, order, _ = register_and_checkout(convening, ticket, 1)
    fake_stripe.complete(order.stripe_session_id)
    deliver(client, fake_stripe, "checkout.session.completed", fake_stripe.session(order.stripe_session_id))
    db.session.rollback()
    intent = db.session.get(Order, order.id).stripe_payment_intent_id

    refund = payments.refund_order(order.id, 10000, reason="Cannot attend day 3")
    assert refund.status == "succeeded" and refund.stripe_refund_id.startswith("re_")
    [sent] = [r for r in fake_stripe.requests if r["path"] == "/v1/refunds"]
    assert sent["idempotency_key"] == f"convene-refund-{order.reference}-{refund.id}"
    assert sent["params"]["amount"] == "10000" and sent["params"]["payment_intent"] == intent
    # Stripe's own charge.refunded event for the same refund must not count it twice.
    deliver(client, fake_stripe, "charge.refunded", fake_stripe.charge_for(intent))
    db.session.rollback()
    assert db.session.get(Order, order.id).refunded_cents == 10000
    assert db.session.get(Registration, registration.id).status == Status.CONFIRMED

    with pytest.raises(ConveneError) as caught:
        payments.refund_order(order.id, 40000)
    assert caught.value.code == "refund_too_large"
    payments.refund_order(order.id, 35000, cancel=True)
    db.session.rollback()
    order = db.session.get(Order, order.id)
    assert (order.paid_cents, order.refunded_cents) == (45000, 45000)
    assert db.session.get(Registration, registration.id).status == Status.CANCELLED
    assert service.seat_usage(convening.id).total == 0
    assert fake_stripe.charge_for(intent)["amount_refunded"] == 45000
    assert len(emails("refunded")) == 2
    from convene.services.receipts import order_pdf

    _, data = order_pdf(order, "receipt")
    assert "Refunded in full" in pdf_text(data)


def test_a_failed_refund_is_kept_and_retried_with_the_same_key(app, client, fake_stripe):
    convening, ticket = paid_convening()
    _, order, _ = register_and_checkout(convening, ticket, 1)
    fake_stripe.complete(order.stripe_session_id)
    deliver(client, fake_stripe, "checkout.session.completed", fake_stripe.session(order.stripe_session_id))
    fake_stripe.fail_next(3, status=500)  # the first try and both of the library's retries
    with pytest.raises(ConveneError) as caught:
        payments.refund_order(order.id, 5000)
    assert caught.value.code == "payment_provider_unavailable"
    db.session.rollback()
    [failed] = db.session.get(Order, order.id).refunds
    assert failed.status == "failed" and db.session.get(Order, order.id).refunded_cents == 0
    payments.send_refund(failed.id)
    keys = {r["idempotency_key"] for r in fake_stripe.requests if r["path"] == "/v1/refunds"}
    assert keys == {failed.idempotency_key} and len(fake_stripe.refunds) == 1
    db.session.rollback()
    assert db.session.get(Order, order.id).refunded_cents == 5000


def test_stripe_answering_500_then_succeeding_creates_one_session(app, fake_stripe):
    convening, ticket = paid_convening()
    registration = service.register_attendee(convening.id, ticket.id, person(1))
    fake_stripe.fail_next(1, status=500)
    url = payments.start_checkout(registration.order_id)  # the library retries with the same key
    assert url and len(fake_stripe.sessions) == 1
    statuses = [r["status"] for r in fake_stripe.requests if r["path"] == "/v1/checkout/sessions"]
    assert statuses == [500, 200]


def test_stripe_down_keeps_the_seat_held_and_a_later_retry_makes_one_session(app, fake_stripe):
    convening, ticket = paid_convening(capacity=1)
    registration = service.register_attendee(convening.id, ticket.id, person(1))
    fake_stripe.fail_next(3, status=503)
    with pytest.raises(ConveneError) as caught:
        payments.start_checkout(registration.order_id)
    assert caught.value.code == "payment_provider_unavailable"
    db.session.rollback()
    assert db.session.get(Registration, registration.id).status == Status.PENDING
    assert fake_stripe.sessions == []
    fake_stripe.fail_next(1, status=500, lose_response=True)  # Stripe made it but the answer was lost
    url = payments.start_checkout(registration.order_id)
    assert len(fake_stripe.sessions) == 1 and url == fake_stripe.sessions[0]["url"]
    assert payments.start_checkout(registration.order_id) == url  # coming back reuses the open session


def test_a_100_percent_code_skips_stripe_and_confirms(app, fake_stripe, outbox):
    convening, ticket = paid_convening()
    db.session.add(DiscountCode(convening_id=convening.id, code="SPEAKER", kind=CodeKind.PERCENT, percent=100))
    db.session.commit()
    registration = service.register_attendee(convening.id, ticket.id, person(1), code=" speaker ")
    assert registration.status == Status.CONFIRMED
    assert fake_stripe.requests == []
    order = registration.order
    assert (order.method, order.status, order.total_cents, order.discount_cents) == ("free", "paid", 0, 45000)
    assert len(outbox.to("amina1@example.org")) == 1


def test_percent_fixed_and_early_bird_prices(app, fake_stripe):
    convening = make_convening()
    early = make_ticket(convening, name="Member", price_cents=50000, early_price_cents=40000,
                        early_until_at=utcnow() + timedelta(days=7))
    late = make_ticket(convening, name="Non-member", price_cents=60000, early_price_cents=50000,
                       early_until_at=utcnow() - timedelta(days=1))
    db.session.add_all([DiscountCode(convening_id=convening.id, code="TEN", kind=CodeKind.PERCENT, percent=10),
                        DiscountCode(convening_id=convening.id, code="FIFTY", kind=CodeKind.FIXED, amount_cents=5000,
                                     ticket_type_ids=[late.id])])
    db.session.commit()
    a = service.register_attendee(convening.id, early.id, person(1), code="ten")
    b = service.register_attendee(convening.id, late.id, person(2), code="FIFTY")
    c = service.register_attendee(convening.id, late.id, person(3))
    assert (a.order.total_cents, a.order.discount_cents) == (36000, 4000)
    assert (b.order.total_cents, b.order.discount_cents) == (55000, 5000)
    assert c.order.total_cents == 60000
    with pytest.raises(ConveneError) as caught:
        service.register_attendee(convening.id, early.id, person(4), code="FIFTY")
    assert (caught.value.code, caught.value.field) == ("code_not_for_ticket", "code")


def test_access_code_unlocks_a_hidden_ticket_and_bad_codes_say_why(app, fake_stripe):
    convening = make_convening()
    make_ticket(convening, name="Delegate", price_cents=0)
    hidden = make_ticket(convening, name="Host organization", price_cents=0, hidden=True)
    db.session.add_all([
        DiscountCode(convening_id=convening.id, code="HOSTS", kind=CodeKind.ACCESS, ticket_type_ids=[hidden.id]),
        DiscountCode(convening_id=convening.id, code="OLD", kind=CodeKind.PERCENT, percent=20,
                     valid_until=utcnow() - timedelta(days=1)),
    ])
    db.session.commit()
    with pytest.raises(ConveneError) as caught:
        service.register_attendee(convening.id, hidden.id, person(1))
    assert caught.value.code == "ticket_unavailable"
    assert service.register_attendee(convening.id, hidden.id, person(1), code="hosts").status == Status.CONFIRMED
    for code, expected in (("NOPE", "code_invalid"), ("old", "code_expired")):
        with pytest.raises(ConveneError) as caught:
            service.register_attendee(convening.id, hidden.id, person(2), code=code)
        assert (caught.value.code, caught.value.field) == (expected, "code")


def test_a_code_with_one_use_left_goes_to_exactly_one_of_twenty_racers(app, fake_stripe, backend):
    convening, ticket = paid_convening()
    code = DiscountCode(convening_id=convening.id, code="LASTONE", kind=CodeKind.PERCENT, percent=100, max_uses=3)
    db.session.add(code)
    db.session.commit()
    for n in range(2):
        service.register_attendee(convening.id, ticket.id, person(100 + n), code="LASTONE")
    convening_id, ticket_id = convening.id, ticket.id

    def register(n: int):
        return lambda: service.register_attendee(convening_id, ticket_id, person(n), code="lastone").status

    outcomes = race(app, [register(n) for n in range(20)])
    assert outcomes.count("confirmed") == 1
    assert outcomes.count("code_used_up") == 19
    assert payments.code_uses(code.id) == 3
    print(f"[{backend}] 20 racers for the last use of a code: {outcomes.count('confirmed')} got it")


def test_a_delegation_of_five_pays_once_and_everyone_gets_their_own_link(app, client, fake_stripe, outbox):
    convening, ticket = paid_convening()
    speaker = make_ticket(convening, name="Speaker", price_cents=20000)
    delegates = [dict(person(n), ticket_type_id=ticket.id if n < 4 else speaker.id) for n in range(5)]
    order = service.register_delegation(
        convening.id, {"name": "Lena Ortiz", "email": "lena@example.org", "organization": "Welcoming Dayton"},
        "Dayton", delegates)
    assert order.status == OrderStatus.PENDING and order.total_cents == 4 * 45000 + 20000
    assert [r.status for r in order.registrations] == [Status.PENDING] * 5
    assert {r.delegation.name for r in order.registrations} == {"Dayton"}
    payments.start_checkout(order.id)
    [session] = fake_stripe.sessions
    [create] = [r for r in fake_stripe.requests if r["path"] == "/v1/checkout/sessions"]
    assert sorted((int(i["quantity"]), int(i["price_data"]["unit_amount"])) for i in create["params"]["line_items"]) \
        == [(1, 20000), (4, 45000)]
    assert session["amount_total"] == 200000 and session["customer_email"] == "lena@example.org"
    fake_stripe.complete(session["id"])
    deliver(client, fake_stripe, "checkout.session.completed", fake_stripe.session(session["id"]))

    db.session.rollback()
    order = db.session.get(Order, order.id)
    assert order.status == OrderStatus.PAID and len(fake_stripe.sessions) == 1
    links = set()
    for n in range(5):
        [confirmation] = [m for m in outbox.to(f"amina{n}@example.org") if "registered" in m["Subject"]]
        link = next(line for line in outbox.text(confirmation).splitlines() if "/manage/" in line)
        links.add(link)
    assert len(links) == 5
    [receipt] = [m for m in outbox.to("lena@example.org") if m["Subject"].startswith("Receipt")]
    text = pdf_text(next(receipt.iter_attachments()).get_content())
    assert all(r.reference in text for r in order.registrations)
    # The lead's page lists the delegation with a link to edit each registration.
    page = client.get(f"/c/{convening.slug}/order/{payments.order_token(order)}")
    assert page.status_code == 200
    assert page.text.count("View or edit") == 5


def test_a_delegation_that_does_not_fit_takes_no_seat(app, fake_stripe):
    convening, ticket = paid_convening(capacity=4)
    delegates = [dict(person(n), ticket_type_id=ticket.id) for n in range(5)]
    with pytest.raises(ConveneError) as caught:
        service.register_delegation(convening.id, {"name": "L", "email": "l@example.org"}, "Dayton", delegates)
    assert caught.value.code == "group_too_big" and "4 left" in caught.value.message
    assert service.seat_usage(convening.id).total == 0
    assert db.session.execute(sa.select(sa.func.count()).select_from(Order)).scalar_one() == 0


def test_invoice_confirms_at_once_then_organizer_marks_it_paid(app, fake_stripe, outbox):
    convening, ticket = paid_convening(invoice_enabled=True, invoice_issuer="Welcoming Network\n12 King St",
                                       invoice_instructions="Bank transfer to account 1234")
    registration = service.register_attendee(
        convening.id, ticket.id, person(1), payment={"method": "invoice", "billing_address": "City Hall\nDayton OH",
                                                     "po_number": "PO-77"})
    order = registration.order
    assert registration.status == Status.CONFIRMED
    assert order.status == OrderStatus.INVOICED and order.invoice_number == f"TOR-{utcnow().year}-0001"
    assert fake_stripe.requests == []
    [invoice_email] = [m for m in outbox.to("amina1@example.org") if m["Subject"].startswith("Invoice")]
    text = pdf_text(next(invoice_email.iter_attachments()).get_content())
    assert order.invoice_number in text and "PO-77" in text and "Bank transfer to account 1234" in text

    payments.mark_invoice_paid(order.id, note="Cheque 4471")
    db.session.rollback()
    order = db.session.get(Order, order.id)
    assert (order.status, order.paid_cents) == (OrderStatus.PAID, 45000)
    assert len(emails("payment_received")) == 1
    with pytest.raises(ConveneError):
        payments.mark_invoice_paid(order.id)
    second = service.register_attendee(convening.id, ticket.id, person(2), payment={"method": "invoice"})
    assert second.order.invoice_number == f"TOR-{utcnow().year}-0002"


def test_async_payment_holds_until_it_clears_or_fails(app, client, fake_stripe):
    convening, ticket = paid_convening(capacity=2)
    _, order, _ = register_and_checkout(convening, ticket, 1)
    _, other, _ = register_and_checkout(convening, ticket, 2)
    for o in (order, other):
        fake_stripe.complete(o.stripe_session_id, paid=False)
        assert deliver(client, fake_stripe, "checkout.session.completed",
                       fake_stripe.session(o.stripe_session_id)).json["outcome"] == "processing"
    # A processing order is not released by the hold sweep.
    service.expire_offers(convening.id, now=utcnow() + timedelta(days=2))
    db.session.rollback()
    assert db.session.get(Order, order.id).status == OrderStatus.PROCESSING
    fake_stripe.settle_async(order.stripe_session_id, True)
    assert deliver(client, fake_stripe, "checkout.session.async_payment_succeeded",
                   fake_stripe.session(order.stripe_session_id)).json["outcome"] == "paid"
    fake_stripe.settle_async(other.stripe_session_id, False)
    assert deliver(client, fake_stripe, "checkout.session.async_payment_failed",
                   fake_stripe.session(other.stripe_session_id)).json["outcome"] == "released"
    db.session.rollback()
    assert db.session.get(Order, order.id).registrations[0].status == Status.CONFIRMED
    assert db.session.get(Order, other.id).registrations[0].status == Status.EXPIRED


def test_without_stripe_keys_free_tickets_work_and_paid_ones_say_so(app):
    convening = make_convening()
    free = make_ticket(convening, name="Host", price_cents=0)
    paid = make_ticket(convening, name="Delegate", price_cents=45000)
    assert service.register_attendee(convening.id, free.id, person(1)).status == Status.CONFIRMED
    with pytest.raises(ConveneError) as caught:
        service.register_attendee(convening.id, paid.id, person(2))
    assert caught.value.code == "payment_not_set_up"
    assert "not set up" in caught.value.message


def test_cancelling_a_held_registration_ends_its_checkout(app, fake_stripe):
    convening, ticket = paid_convening(capacity=1)
    registration, order, _ = register_and_checkout(convening, ticket, 1)
    service.cancel_registration(registration.id)
    db.session.rollback()
    assert db.session.get(Order, order.id).status == OrderStatus.CANCELLED
    assert fake_stripe.session(order.stripe_session_id)["status"] == "expired"
    assert service.seat_usage(convening.id).total == 0


def test_a_webhook_body_that_is_not_text_is_refused_not_a_crash(app, client, fake_stripe):
    answer = client.post("/stripe/webhook", data=b"\xff\xfe\x00junk", headers={"Stripe-Signature": "t=1,v1=00"})
    assert answer.status_code == 400 and answer.is_json


def test_a_session_some_other_tool_made_never_touches_our_orders(app, client, fake_stripe):
    convening, ticket = paid_convening()
    _, order, _ = register_and_checkout(convening, ticket, 1)
    stranger = dict(fake_stripe.session(order.stripe_session_id), id="cs_other_shop", client_reference_id="SHOP-1",
                    metadata={"order_id": str(order.id)}, payment_status="paid", status="complete")
    assert deliver(client, fake_stripe, "checkout.session.completed", stranger).json["outcome"] == "unknown_order"
    assert deliver(client, fake_stripe, "checkout.session.expired", stranger).json["outcome"] == "unknown_order"
    db.session.rollback()
    assert db.session.get(Order, order.id).status == OrderStatus.PENDING


def test_money_for_a_cancelled_order_or_a_second_payment_is_flagged_never_kept_silently(app, client, fake_stripe):
    convening, ticket = paid_convening()
    _, cancelled, _ = register_and_checkout(convening, ticket, 1)
    payments.cancel_order(cancelled.id)
    assert fake_stripe.session(cancelled.stripe_session_id)["status"] == "expired"
    # The buyer's payment went through at Stripe just before the session ended.
    late = dict(fake_stripe.session(cancelled.stripe_session_id), status="complete", payment_status="paid",
                payment_intent="pi_late")
    assert deliver(client, fake_stripe, "checkout.session.completed", late).json["outcome"] == "flagged"
    db.session.rollback()
    cancelled = db.session.get(Order, cancelled.id)
    assert (cancelled.status, cancelled.flag, cancelled.paid_cents) == (OrderStatus.REVIEW, "paid_after_cancel", 45000)
    with pytest.raises(ConveneError) as caught:
        payments.accept_flagged_order(cancelled.id)
    assert caught.value.code == "seats_taken_refund"

    _, paid, _ = register_and_checkout(convening, ticket, 2)
    fake_stripe.complete(paid.stripe_session_id)
    deliver(client, fake_stripe, "checkout.session.completed", fake_stripe.session(paid.stripe_session_id))
    again = dict(fake_stripe.session(paid.stripe_session_id), id="cs_second", payment_intent="pi_second")
    assert deliver(client, fake_stripe, "checkout.session.completed", again).json["outcome"] == "flagged"
    db.session.rollback()
    paid = db.session.get(Order, paid.id)
    assert (paid.status, paid.flag) == (OrderStatus.REVIEW, "second_payment") and "pi_second" in paid.flag_detail
    assert len(emails("confirmation")) == 1


def test_refunding_a_mismatched_payment_releases_its_held_seat_without_a_cancellation_email(
        app, client, fake_stripe):
    convening, ticket = paid_convening(capacity=1)
    registration, order, _ = register_and_checkout(convening, ticket, 1)
    fake_stripe.complete(order.stripe_session_id, amount_total=100)
    deliver(client, fake_stripe, "checkout.session.completed", fake_stripe.session(order.stripe_session_id))
    refund = payments.refund_order(order.id, 100, cancel=True)
    assert refund.status == "succeeded"
    db.session.rollback()
    assert db.session.get(Order, order.id).status == OrderStatus.CANCELLED
    assert db.session.get(Registration, registration.id).status == Status.EXPIRED
    assert service.seat_usage(convening.id).total == 0
    assert emails("cancelled") == [] and len(emails("refunded")) == 1


def test_cancelling_an_unpaid_checkout_ends_its_session_and_tells_no_delegate(app, fake_stripe, outbox):
    convening, ticket = paid_convening(capacity=5)
    delegates = [dict(person(n), ticket_type_id=ticket.id) for n in range(3)]
    order = service.register_delegation(convening.id, {"name": "L", "email": "lead@example.org"}, "Dayton", delegates)
    payments.start_checkout(order.id)
    with pytest.raises(ConveneError) as caught:  # one delegate cannot leave a payment in progress
        service.cancel_registration(order.registrations[0].id)
    assert caught.value.code == "pending_group_seat"
    payments.cancel_order(order.id)
    db.session.rollback()
    order = db.session.get(Order, order.id)
    assert order.status == OrderStatus.CANCELLED
    assert fake_stripe.session(order.stripe_session_id)["status"] == "expired"
    assert service.seat_usage(convening.id).total == 0
    assert outbox.messages() == []


def test_checkout_requests_are_identical_from_one_second_to_the_next(app, fake_stripe):
    import time

    convening, ticket = paid_convening()
    registration = service.register_attendee(convening.id, ticket.id, person(1))
    order = db.session.get(Order, registration.order_id)
    first = payments.checkout_params(order)
    time.sleep(1.1)  # a timed token in the return address would now differ, and Stripe would refuse the key
    assert payments.checkout_params(order) == first


def test_a_delegate_sees_no_link_to_the_delegation_page_even_with_the_leads_email(app, client, fake_stripe):
    from convene.services.tokens import manage_token

    convening, ticket = paid_convening(invoice_enabled=True)
    delegates = [dict(person(n), ticket_type_id=ticket.id) for n in range(2)]
    order = service.register_delegation(convening.id, {"name": "L", "email": "lead@example.org"}, "Dayton",
                                        delegates, payment={"method": "invoice"})
    delegate = order.registrations[0]
    service.update_registration(delegate.id, dict(person(0), email="lead@example.org"))
    db.session.rollback()
    delegate = db.session.get(Registration, delegate.id)
    page = client.get(f"/c/{convening.slug}/manage/{manage_token(delegate)}").text
    assert "/order/" not in page and "has the receipt or invoice for the whole delegation" in page
    assert client.get(f"/c/{convening.slug}/manage/{manage_token(delegate)}/invoice.pdf").status_code == 404


# ---------------------------------------------------------------- cancelling invoiced registrations (issue 11, item 2)


def credit_notes(order_id: int | None = None) -> list[CreditNote]:
    db.session.rollback()
    query = sa.select(CreditNote).order_by(CreditNote.id)
    if order_id is not None:
        query = query.where(CreditNote.order_id == order_id)
    return db.session.execute(query).scalars().all()


def attached_pdf_text(message) -> tuple[str, str]:
    """(file name, text) of an email's one PDF attachment."""
    [attachment] = list(message.iter_attachments())
    return attachment.get_filename(), pdf_text(attachment.get_content())


def invoice_delegation(convening, ticket, n: int = 3, code: str | None = None, lead_email: str = "lena@example.org"):
    delegates = [dict(person(i), ticket_type_id=ticket.id) for i in range(n)]
    return service.register_delegation(convening.id, {"name": "Lena Ortiz", "email": lead_email}, "Dayton",
                                       delegates, code=code, payment={"method": "invoice", "po_number": "PO-12"})


def test_cancelling_an_invoiced_registration_voids_the_invoice_with_a_numbered_credit_note(app, fake_stripe, outbox):
    convening, ticket = paid_convening(invoice_enabled=True)
    registration = service.register_attendee(convening.id, ticket.id, person(1), payment={"method": "invoice"})
    order_id, invoice_number = registration.order_id, registration.order.invoice_number
    assert payment_reports.payment_totals(convening).outstanding_cents == 45000

    service.cancel_registration(registration.id)

    db.session.rollback()
    order = db.session.get(Order, order_id)
    assert (order.status, order.credited_cents, order.balance_cents) == (OrderStatus.CANCELLED, 45000, 0)
    [note] = credit_notes(order_id)
    year = utcnow().year
    assert (note.number, note.sequence, note.amount_cents, note.invoice_number, note.voids_invoice) == (
        f"TOR-CN-{year}-0001", 1, 45000, invoice_number, True)
    assert note.issued_at is not None
    assert not receipts.has_invoice(order)  # the void invoice is no longer offered as something to pay
    totals = payment_reports.payment_totals(convening)
    assert (totals.outstanding_cents, totals.outstanding_count, totals.owed_cents, totals.credited_cents) == (
        0, 0, 0, 45000)
    # The buyer is the person cancelled: the credit note goes with the cancellation email, not in a second one.
    [cancelled] = [m for m in outbox.to("amina1@example.org") if "cancelled" in m["Subject"]]
    assert note.number in outbox.text(cancelled) and invoice_number in outbox.text(cancelled)
    filename, text = attached_pdf_text(cancelled)
    assert filename == f"credit-note-TOR-CN-{year}-0001.pdf"
    assert "Credit note" in text and note.number in text and invoice_number in text
    assert "-CA$450.00" in text and "is void" in text and registration.reference in text
    assert emails("credit_note") == []


def test_registering_again_after_cancelling_issues_a_fresh_invoice_and_the_old_one_is_not_counted(app, fake_stripe):
    convening, ticket = paid_convening(invoice_enabled=True)
    first = service.register_attendee(convening.id, ticket.id, person(1), payment={"method": "invoice"})
    old_order_id = first.order_id
    service.cancel_registration(first.id)
    again = service.register_attendee(convening.id, ticket.id, person(1), payment={"method": "invoice"})

    db.session.rollback()
    old, new = db.session.get(Order, old_order_id), db.session.get(Order, again.order_id)
    assert again.id == first.id and new.id != old.id  # same person, a fresh order
    year = utcnow().year
    assert (old.status, old.invoice_number, old.balance_cents) == (OrderStatus.CANCELLED, f"TOR-{year}-0001", 0)
    assert (new.status, new.invoice_number, new.balance_cents) == (OrderStatus.INVOICED, f"TOR-{year}-0002", 45000)
    assert [n.order_id for n in credit_notes()] == [old.id]
    totals = payment_reports.payment_totals(convening)
    assert (totals.outstanding_cents, totals.outstanding_count, totals.owed_cents) == (45000, 1, 45000)
    assert service.seat_usage(convening.id).total == 1


def test_organizer_cancelling_an_invoiced_delegation_order_sends_the_lead_one_credit_note(app, fake_stripe, outbox):
    convening, ticket = paid_convening(invoice_enabled=True)
    order = invoice_delegation(convening, ticket)
    order_id, invoice_number = order.id, order.invoice_number

    payments.cancel_order(order_id)

    db.session.rollback()
    order = db.session.get(Order, order_id)
    assert (order.status, order.credited_cents, order.balance_cents) == (OrderStatus.CANCELLED, 135000, 0)
    assert all(r.status == Status.CANCELLED for r in order.registrations)
    [note] = credit_notes(order_id)
    assert (note.amount_cents, note.voids_invoice, len(note.seats)) == (135000, True, 3)
    # The lead is not a delegate: the credit note comes to them on its own; delegates hear of their cancellation.
    [lead_email] = outbox.to("lena@example.org")[1:]
    # (strip: the email library folds a long subject onto its own line, which parses back with a leading space)
    assert lead_email["Subject"].strip() == f"Credit note {note.number} for invoice {invoice_number} ({convening.name})"
    _, text = attached_pdf_text(lead_email)
    assert "-CA$1,350.00" in text and invoice_number in text and "PO-12" in text
    assert all(r.reference in text for r in order.registrations)
    for n in range(3):
        [cancelled] = [m for m in outbox.to(f"amina{n}@example.org") if "cancelled" in m["Subject"]]
        assert list(cancelled.iter_attachments()) == []
    with pytest.raises(ConveneError) as caught:
        payments.cancel_order(order_id)
    assert caught.value.code == "order_not_cancellable"
    assert len(credit_notes()) == 1


def test_cancelling_one_delegate_credits_their_seat_after_its_share_of_the_discount(app, fake_stripe, outbox):
    convening, ticket = paid_convening(invoice_enabled=True)
    db.session.add(DiscountCode(convening_id=convening.id, code="MEMBER", kind=CodeKind.PERCENT, percent=10))
    db.session.commit()
    order = invoice_delegation(convening, ticket, code="MEMBER")
    order_id, invoice_number = order.id, order.invoice_number
    assert (order.total_cents, order.discount_cents) == (121500, 13500)
    leaving = order.registrations[1]

    service.cancel_registration(leaving.id, by_attendee=False)

    db.session.rollback()
    order = db.session.get(Order, order_id)
    assert order.status == OrderStatus.INVOICED  # the invoice stands for the other two
    assert (order.credited_cents, order.balance_cents) == (40500, 81000)
    [note] = credit_notes(order_id)
    assert (note.number, note.amount_cents, note.voids_invoice) == (f"TOR-CN-{utcnow().year}-0001", 40500, False)
    assert note.seats == [{"ticket": "Delegate", "name": leaving.full_name, "reference": leaving.reference,
                           "cents": 40500}]
    totals = payment_reports.payment_totals(convening)
    assert (totals.outstanding_cents, totals.outstanding_count, totals.owed_cents, totals.credited_cents) == (
        81000, 1, 81000, 40500)
    [credit_email] = [m for m in outbox.to("lena@example.org") if m["Subject"].strip().startswith("Credit note")]
    assert "Still due on the invoice: CA$810.00" in outbox.text(credit_email)
    _, text = attached_pdf_text(credit_email)
    assert "-CA$405.00" in text and invoice_number in text and leaving.reference in text
    # The invoice itself now lists the credit note and asks only for the rest.
    invoice_text = pdf_text(receipts.order_pdf(order, "invoice")[1])
    assert note.number in invoice_text and "CA$810.00" in invoice_text

    # A second delegate leaves: the next number in the series; the last one voids the invoice for the rest.
    service.cancel_registration(order.registrations[0].id)
    service.cancel_registration(order.registrations[2].id)
    db.session.rollback()
    order = db.session.get(Order, order_id)
    notes = credit_notes(order_id)
    assert [(n.sequence, n.amount_cents, n.voids_invoice) for n in notes] == [
        (1, 40500, False), (2, 40500, False), (3, 40500, True)]
    assert (order.status, order.credited_cents, order.balance_cents) == (OrderStatus.CANCELLED, 121500, 0)
    assert payment_reports.payment_totals(convening).outstanding_cents == 0


def test_marking_a_partly_credited_invoice_paid_records_what_was_left(app, fake_stripe):
    convening, ticket = paid_convening(invoice_enabled=True)
    order = invoice_delegation(convening, ticket, n=2)
    order_id = order.id
    service.cancel_registration(order.registrations[0].id)
    payments.mark_invoice_paid(order_id)
    db.session.rollback()
    order = db.session.get(Order, order_id)
    assert (order.status, order.paid_cents, order.credited_cents, order.balance_cents) == (
        OrderStatus.PAID, 45000, 45000, 0)
    receipt = pdf_text(receipts.order_pdf(order, "receipt")[1])
    assert "paid in full" in receipt.lower() and "Credit note TOR-CN-" in receipt
    totals = payment_reports.payment_totals(convening)
    assert (totals.owed_cents, totals.paid_cents, totals.outstanding_cents) == (45000, 45000, 0)


def test_cancelling_a_paid_invoice_or_a_paid_card_order_issues_no_credit_note(app, client, fake_stripe):
    convening, ticket = paid_convening(invoice_enabled=True)
    invoiced = service.register_attendee(convening.id, ticket.id, person(1), payment={"method": "invoice"})
    payments.mark_invoice_paid(invoiced.order_id)
    card, card_order, _ = register_and_checkout(convening, ticket, 2)
    fake_stripe.complete(card_order.stripe_session_id)
    deliver(client, fake_stripe, "checkout.session.completed", fake_stripe.session(card_order.stripe_session_id))

    service.cancel_registration(invoiced.id)
    service.cancel_registration(card.id)

    db.session.rollback()
    for order_id in (invoiced.order_id, card_order.id):
        order = db.session.get(Order, order_id)
        assert (order.status, order.paid_cents, order.credited_cents) == (OrderStatus.PAID, 45000, 0)
    assert credit_notes() == []


@pytest.mark.parametrize("who", ["organizer_twice", "attendee_and_organizer"])
def test_two_racing_cancels_of_one_invoiced_order_make_exactly_one_credit_note(app, fake_stripe, backend, who):
    convening, ticket = paid_convening(invoice_enabled=True)
    registration = service.register_attendee(convening.id, ticket.id, person(1), payment={"method": "invoice"})
    order_id, registration_id = registration.order_id, registration.id
    first = (lambda: payments.cancel_order(order_id).status) if who == "organizer_twice" \
        else (lambda: service.cancel_registration(registration_id).status)
    outcomes = race(app, [first, lambda: payments.cancel_order(order_id).status])
    done, refused = sorted(outcomes)  # one cancel did it, the other found nothing left to cancel
    assert done == "cancelled" and refused in ("order_not_cancellable", "not_cancellable")
    [note] = credit_notes(order_id)
    order = db.session.get(Order, order_id)
    assert (order.status, order.credited_cents, note.amount_cents) == (OrderStatus.CANCELLED, 45000, 45000)
    print(f"[{backend}] two cancels of one invoice ({who}): {outcomes}, one credit note")


def test_cancels_of_two_invoices_racing_take_consecutive_credit_note_numbers(app, fake_stripe, backend):
    convening, ticket = paid_convening(invoice_enabled=True)
    ids = [service.register_attendee(convening.id, ticket.id, person(n), payment={"method": "invoice"}).id
           for n in range(4)]
    outcomes = race(app, [lambda i=i: service.cancel_registration(i).status for i in ids])
    assert outcomes == ["cancelled"] * 4
    year = utcnow().year
    assert sorted(n.number for n in credit_notes()) == [f"TOR-CN-{year}-{k:04d}" for k in range(1, 5)]


# Seats organizers add by hand, and money taken at the desk (issue 11, item 17) ---------------------------------

def test_a_seat_added_by_hand_on_a_paid_ticket_is_invoiced_paid_elsewhere_or_comp(app, outbox):
    convening, ticket = paid_convening(invoice_enabled=False)  # the public invoice setting binds attendees only
    invoiced = service.add_registration(convening.id, ticket.id, person(1))
    paid = service.add_registration(convening.id, ticket.id, person(2), settlement="paid",
                                    payment_note="Cheque 1042 received", send_email=False)
    comp = service.add_registration(convening.id, ticket.id, person(3), settlement="comp")
    db.session.rollback()
    invoiced, paid, comp = (db.session.get(Registration, r.id) for r in (invoiced, paid, comp))
    assert (invoiced.order.status, invoiced.order.total_cents, invoiced.order.invoice_number) == (
        OrderStatus.INVOICED, 45000, f"TOR-{utcnow().year}-0001")
    assert [m.subject for m in emails("invoice", invoiced.email)] == [
        f"Invoice {invoiced.order.invoice_number} for {convening.name}"]
    assert (paid.order.status, paid.order.method, paid.order.paid_cents, paid.order.payment_note) == (
        OrderStatus.PAID, "offline", 45000, "Cheque 1042 received")
    assert receipts.has_receipt(paid.order) and emails("invoice", paid.email) == []
    assert (comp.order.method, comp.order.total_cents, comp.price_cents, comp.order.balance_cents) == ("comp", 0, 0, 0)
    totals = payment_reports.payment_totals(convening)
    assert (totals.owed_cents, totals.paid_cents, totals.outstanding_cents) == (90000, 45000, 45000)
    # Paid elsewhere needs a note saying how, and nothing is written without it.
    with pytest.raises(ConveneError) as refused:
        service.add_registration(convening.id, ticket.id, person(4), settlement="paid", payment_note="  ")
    assert (refused.value.code, refused.value.field) == ("settlement_note_required", "payment_note")
    with pytest.raises(ConveneError):
        service.add_registration(convening.id, ticket.id, person(4), settlement="barter")
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 3


def test_desk_payments_pay_an_invoice_in_parts_after_credits_each_with_a_receipt(app, outbox):
    convening, ticket = paid_convening(invoice_enabled=True)
    delegates = [dict(person(n), ticket_type_id=ticket.id) for n in range(3)]
    order = service.register_delegation(convening.id, {"name": "Lena Ortiz", "email": "lena@example.org"},
                                        "Dayton", delegates, payment={"method": "invoice"})
    service.cancel_registration(order.registrations[0].id, by_attendee=False)  # a credit note takes 450 off
    with pytest.raises(ConveneError) as refused:
        payments.record_desk_payment(order.id, "cash", 90001)
    assert refused.value.field == "amount" and "CA$900.00" in refused.value.message
    with pytest.raises(ConveneError) as refused:
        payments.record_desk_payment(order.id, "iou", 100)
    assert refused.value.field == "method"

    payments.record_desk_payment(order.id, "cash", 30000, note="float 2")
    db.session.rollback()
    order = db.session.get(Order, order.id)
    assert (order.status, order.paid_cents, order.balance_cents) == (OrderStatus.INVOICED, 30000, 60000)
    assert order.payment_note == "Cash at the desk, CA$300.00 (float 2)"
    assert payment_reports.payment_totals(convening).outstanding_cents == 60000
    first = PdfReader(io.BytesIO(receipts.order_pdf(order, "receipt")[1]))
    assert "CA$300.00" in "".join(page.extract_text() for page in first.pages)

    payments.record_desk_payment(order.id, "terminal", 60000)
    db.session.rollback()
    order = db.session.get(Order, order.id)
    assert (order.status, order.paid_cents, order.balance_cents) == (OrderStatus.PAID, 90000, 0)
    assert order.payment_note.endswith("; Card terminal at the desk, CA$600.00")
    assert len(emails("payment_received", "lena@example.org")) == 2
    with pytest.raises(ConveneError) as refused:
        payments.record_desk_payment(order.id, "cash", 100)
    assert refused.value.code == "desk_nothing_outstanding"
    totals = payment_reports.payment_totals(convening)
    assert (totals.paid_cents, totals.outstanding_cents) == (90000, 0)


def test_two_desks_taking_the_last_balance_at_once_record_it_once(app, backend):
    convening, ticket = paid_convening()
    order = service.add_registration(convening.id, ticket.id, person(1), send_email=False).order
    order_id = order.id

    def pay():
        payments.record_desk_payment(order_id, "cash", 45000)
        return "paid"

    outcomes = race(app, [pay, pay])
    assert sorted(outcomes) == ["desk_nothing_outstanding", "paid"]
    db.session.rollback()
    assert db.session.get(Order, order_id).paid_cents == 45000
