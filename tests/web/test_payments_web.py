"""Paying through the pages: the form's 303 to Stripe Checkout, the return, the order page, codes, delegations."""
from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from convene.extensions import db
from convene.models import CodeKind, Delegation, DiscountCode, Order, OrderStatus, Registration, Status
from convene.services import payments, registrations
from tests.factories import make_convening, make_delegation, make_ticket
from tests.web.test_public import form_data


def manage_link(outbox, address: str) -> str:
    [confirmation] = [m for m in outbox.to(address) if "You are registered" in m["Subject"]]
    return re.search(r"http://localhost(/c/[^/\s]+/manage/\S+)", outbox.text(confirmation)).group(1)


def orders() -> list[Order]:
    db.session.rollback()
    return db.session.execute(sa.select(Order).order_by(Order.id)).scalars().all()


def order_path(order: Order) -> str:
    return f"/c/{order.convening.slug}/order/{payments.order_token(order)}"


def test_paid_registration_redirects_to_stripe_with_303_and_the_return_confirms(client, fake_stripe, outbox):
    convening = make_convening()
    ticket = make_ticket(convening, price_cents=45000)
    page = client.get(f"/c/{convening.slug}/register").text
    assert "CA$450.00" in page and "paid by card on the next page" in page

    response = client.post(f"/c/{convening.slug}/register", data=form_data(1, ticket))
    assert response.status_code == 303
    [session] = fake_stripe.sessions
    assert response.headers["Location"] == session["url"]
    [order] = orders()
    assert order.registrations[0].status == Status.PENDING

    fake_stripe.complete(session["id"])
    back = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]).replace("http://localhost", "")
    landing = client.get(back, follow_redirects=True)
    assert "Payment received" in landing.text and "Paid" in landing.text
    [order] = orders()
    assert order.status == OrderStatus.PAID
    # The webhook arriving afterwards changes nothing.
    payload, headers = fake_stripe.webhook("checkout.session.completed", fake_stripe.session(session["id"]))
    assert client.post("/stripe/webhook", data=payload, headers=headers).json["outcome"] == "already_recorded"
    assert len([m for m in outbox.to("amina1@example.org") if "You are registered" in m["Subject"]]) == 1

    manage = manage_link(outbox, "amina1@example.org")
    assert "Download the receipt" in client.get(manage).text
    pdf = client.get(manage + "/receipt.pdf")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    text = PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    assert order.reference in text and order.registrations[0].reference in text


def test_cancelled_checkout_keeps_the_seat_held_and_the_buyer_can_pay_or_release(client, fake_stripe):
    convening = make_convening(capacity=1)
    ticket = make_ticket(convening, price_cents=45000)
    client.post(f"/c/{convening.slug}/register", data=form_data(1, ticket))
    [order] = orders()
    page = client.get(order_path(order) + "?checkout=cancelled").text
    assert "The payment was not completed" in page and "held until" in page
    again = client.post(order_path(order) + "/pay")
    assert again.status_code == 303 and again.headers["Location"] == fake_stripe.sessions[0]["url"]
    assert len(fake_stripe.sessions) == 1

    released = client.post(order_path(order) + "/release", follow_redirects=True)
    assert "released" in released.text
    [order] = orders()
    assert order.status == OrderStatus.CANCELLED
    assert fake_stripe.sessions[0]["status"] == "expired"
    assert order.registrations[0].status == Status.EXPIRED


def test_stripe_unreachable_at_registration_shows_the_held_seat_not_an_error(client, fake_stripe):
    convening = make_convening()
    ticket = make_ticket(convening, price_cents=45000)
    fake_stripe.fail_next(3, status=503)
    response = client.post(f"/c/{convening.slug}/register", data=form_data(1, ticket), follow_redirects=True)
    assert response.status_code == 200
    assert "could not be reached" in response.text and "Pay CA$450.00 now" in response.text
    [order] = orders()
    assert order.status == OrderStatus.PENDING


def test_codes_show_their_errors_beside_the_field_and_change_nothing(client, fake_stripe):
    convening = make_convening()
    ticket = make_ticket(convening, price_cents=45000)
    response = client.post(f"/c/{convening.slug}/register", data=form_data(1, ticket, code="WRONG"))
    assert response.status_code == 200
    assert re.search(r'id="code-error">That code is not valid', response.text)
    assert orders() == [] and fake_stripe.requests == []


def test_a_hidden_ticket_appears_with_its_access_code(client):
    convening = make_convening()
    make_ticket(convening, name="Delegate")
    hidden = make_ticket(convening, name="Host organization", hidden=True)
    db.session.add(DiscountCode(convening_id=convening.id, code="HOSTS", kind=CodeKind.ACCESS,
                                ticket_type_ids=[hidden.id]))
    db.session.commit()
    assert "Host organization" not in client.get(f"/c/{convening.slug}/register").text
    page = client.get(f"/c/{convening.slug}/register?code=hosts").text
    assert "Host organization" in page and 'id="code-applied"' in page
    response = client.post(f"/c/{convening.slug}/register", data=form_data(1, hidden, code="hosts"))
    assert response.status_code == 302
    db.session.rollback()
    assert db.session.execute(sa.select(Registration.ticket_type_id)).scalar_one() == hidden.id


def test_pay_by_invoice_from_the_form(client, outbox, fake_stripe):
    convening = make_convening(invoice_enabled=True, invoice_instructions="Wire to account 1234")
    ticket = make_ticket(convening, price_cents=45000)
    page = client.get(f"/c/{convening.slug}/register").text
    assert "By invoice" in page and "Billing address" in page
    response = client.post(f"/c/{convening.slug}/register", data=form_data(
        1, ticket, payment_method="invoice", billing_address="City Hall", po_number="PO-9"))
    assert response.status_code == 302 and fake_stripe.requests == []
    [order] = orders()
    assert order.status == OrderStatus.INVOICED and order.po_number == "PO-9"
    confirmation_page = client.get(response.headers["Location"]).text
    assert f"Invoice <strong>{order.invoice_number}</strong> for CA$450.00" in confirmation_page
    assert order.registrations[0].status == Status.CONFIRMED
    page = client.get(order_path(order)).text
    assert "Wire to account 1234" in page and "Download the invoice" in page
    pdf = client.get(order_path(order) + "/invoice.pdf")
    assert order.invoice_number in PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    assert client.get(order_path(order) + "/receipt.pdf").status_code == 404


def test_cancelling_an_invoiced_registration_from_the_manage_page_voids_the_invoice(client, outbox, fake_stripe):
    convening = make_convening(invoice_enabled=True)
    ticket = make_ticket(convening, price_cents=45000)
    client.post(f"/c/{convening.slug}/register", data=form_data(1, ticket, payment_method="invoice"))
    [order] = orders()
    link = manage_link(outbox, "amina1@example.org")
    response = client.post(link + "/cancel", follow_redirects=True)
    assert response.status_code == 200 and "Your registration is cancelled" in response.text

    [order] = orders()
    assert (order.status, order.balance_cents, order.credited_cents) == (OrderStatus.CANCELLED, 0, 45000)
    [note] = order.credit_notes
    page = client.get(order_path(order)).text
    assert "Please pay invoice" not in page and "Download the invoice" not in page
    assert f"Invoice {order.invoice_number} is void: nothing is owed on it." in page
    assert f"Download credit note {note.number} (PDF)" in page
    pdf = client.get(f"{order_path(order)}/credit-notes/{note.id}.pdf")
    assert pdf.status_code == 200 and pdf.headers["Cache-Control"] == "private, no-store"
    text = PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    assert note.number in text and order.invoice_number in text and "-CA$450.00" in text
    assert client.get(order_path(order) + "/invoice.pdf").status_code == 404
    assert client.get(f"{order_path(order)}/credit-notes/{note.id + 1}.pdf").status_code == 404

    # Registering again with the same email: a fresh invoice; the old one stays void beside it.
    again = client.post(f"/c/{convening.slug}/register", data=form_data(1, ticket, payment_method="invoice"))
    assert again.status_code == 302
    old, new = orders()
    assert (old.id, old.status, new.status) == (order.id, OrderStatus.CANCELLED, OrderStatus.INVOICED)
    assert new.invoice_number != old.invoice_number and new.balance_cents == 45000 and new.credit_notes == []
    assert "Please pay invoice" in client.get(order_path(new)).text


def test_without_stripe_a_paid_ticket_says_payment_is_not_set_up(client):
    convening = make_convening()
    make_ticket(convening, name="Delegate", price_cents=45000)
    assert "Online payment is not set up yet" in client.get(f"/c/{convening.slug}/").text


def group_data(convening, ticket, rows: list[tuple[str, str, str]], **extra) -> dict:
    data = {"lead_name": "Lena Ortiz", "lead_email": "lena@example.org", "organization": "Welcoming Dayton",
            "delegation_name": "Dayton"}
    for i, (given, family, email) in enumerate(rows):
        data |= {f"delegates-{i}-given_name": given, f"delegates-{i}-family_name": family,
                 f"delegates-{i}-email": email, f"delegates-{i}-ticket_type_id": str(ticket.id)}
    return data | extra


def test_delegation_form_registers_five_and_pays_once(client, fake_stripe, outbox):
    convening = make_convening()
    ticket = make_ticket(convening, price_cents=30000)
    rows = [(f"Delegate{i}", "Okafor", f"d{i}@example.org") for i in range(5)] + [("", "", "")]
    response = client.post(f"/c/{convening.slug}/register/group", data=group_data(convening, ticket, rows))
    assert response.status_code == 303 and response.headers["Location"] == fake_stripe.sessions[0]["url"]
    [order] = orders()
    assert order.is_group and len(order.registrations) == 5 and order.total_cents == 150000
    assert fake_stripe.sessions[0]["amount_total"] == 150000
    fake_stripe.complete(order.stripe_session_id)
    payload, headers = fake_stripe.webhook("checkout.session.completed", fake_stripe.session(order.stripe_session_id))
    client.post("/stripe/webhook", data=payload, headers=headers)
    assert all(len(outbox.to(f"d{i}@example.org")) == 1 for i in range(5))
    page = client.get(order_path(order)).text
    assert page.count("View or edit") == 5 and "Dayton" in page


def test_delegation_form_shows_row_errors_beside_the_cells_and_adds_rows_without_javascript(client, fake_stripe):
    convening = make_convening()
    ticket = make_ticket(convening, price_cents=30000)
    rows = [("Ana", "Lima", "ana@example.org"), ("Bo", "", "not-an-email"), ("Cy", "Tan", "ana@example.org")]
    page = client.post(f"/c/{convening.slug}/register/group", data=group_data(convening, ticket, rows)).text
    assert "Enter the family name." in page and "Enter an email address like" in page
    assert orders() == []
    fixed = [rows[0], ("Bo", "Ng", "bo@example.org"), rows[2]]
    page = client.post(f"/c/{convening.slug}/register/group", data=group_data(convening, ticket, fixed)).text
    assert "This email is listed twice." in page and orders() == []
    added = client.post(f"/c/{convening.slug}/register/group", data=group_data(convening, ticket, fixed, add_row="1"))
    assert 'name="delegates-3-given_name"' in added.text and "Enter the family name." not in added.text
    assert orders() == []


@pytest.fixture
def csrf_on(app_config):
    app_config["WTF_CSRF_ENABLED"] = True


@pytest.mark.usefixtures("csrf_on")
def test_only_the_webhook_is_exempt_from_csrf(client, fake_stripe):
    convening = make_convening()
    ticket = make_ticket(convening, price_cents=45000)
    refused = client.post(f"/c/{convening.slug}/register", data=form_data(1, ticket))
    assert refused.status_code == 400 and orders() == []
    payload, headers = fake_stripe.webhook("customer.created", {"id": "cus_1", "object": "customer"})
    answer = client.post("/stripe/webhook", data=payload, headers=headers)
    assert answer.status_code == 200 and answer.json["outcome"] == "ignored"


def test_a_waitlisted_person_takes_a_paid_seat_by_paying_for_it(client, fake_stripe, outbox):
    from convene.services import registrations as service
    from convene.services.tokens import offer_token
    from tests.factories import person

    convening = make_convening(capacity=1)
    ticket = make_ticket(convening, price_cents=45000)
    first = service.register_attendee(convening.id, ticket.id, person(1))
    waiting = service.register_attendee(convening.id, ticket.id, person(2), join_waitlist=True)
    service.cancel_registration(first.id)  # the held checkout ends and the seat is offered on
    db.session.rollback()
    waiting = db.session.get(Registration, waiting.id)
    assert waiting.status == Status.OFFERED
    offer_page = f"/c/{convening.slug}/offer/{offer_token(waiting)}"
    assert "The seat costs" in client.get(offer_page).text
    response = client.post(offer_page)
    assert response.status_code == 303 and response.headers["Location"] == fake_stripe.sessions[-1]["url"]
    db.session.rollback()
    waiting = db.session.get(Registration, waiting.id)
    assert waiting.status == Status.PENDING and waiting.order.total_cents == 45000
    fake_stripe.complete(waiting.order.stripe_session_id)
    payload, headers = fake_stripe.webhook("checkout.session.completed",
                                           fake_stripe.session(waiting.order.stripe_session_id))
    assert client.post("/stripe/webhook", data=payload, headers=headers).json["outcome"] == "paid"
    db.session.rollback()
    assert db.session.get(Registration, waiting.id).status == Status.CONFIRMED


def test_organizer_refunds_a_card_payment_from_the_order_page_and_retries_a_failed_one(
        organizer_client, fake_stripe, outbox):
    from convene.services import registrations as service
    from tests.factories import person

    convening = make_convening(capacity=1)
    ticket = make_ticket(convening, price_cents=45000)
    registration = service.register_attendee(convening.id, ticket.id, person(1))
    payments.start_checkout(registration.order_id)
    db.session.rollback()
    order = db.session.get(Order, registration.order_id)
    fake_stripe.complete(order.stripe_session_id)
    payments.record_stripe_payment(fake_stripe.session(order.stripe_session_id))
    page = f"/admin/c/{convening.id}/payments/{order.id}"
    assert "CA$450.00" in organizer_client.get(page).text

    fake_stripe.fail_next(3, status=500)
    failed = organizer_client.post(page + "/refund", data={"amount": "100", "reason": "Day 3 only"},
                                   follow_redirects=True)
    assert "could not be reached" in failed.text
    [refund] = orders()[0].refunds
    assert refund.status == "failed"
    organizer_client.post(page + f"/refunds/{refund.id}/retry", follow_redirects=True)
    organizer_client.post(page + "/refund", data={"amount": "350.00", "cancel_registrations": "y"},
                          follow_redirects=True)
    [order] = orders()
    assert order.refunded_cents == 45000 and [r.status for r in order.refunds] == ["succeeded", "succeeded"]
    assert sum(r["amount"] for r in fake_stripe.refunds) == 45000 and len(fake_stripe.refunds) == 2
    assert order.registrations[0].status == Status.CANCELLED
    detail = organizer_client.get(f"/admin/c/{convening.id}/registrations/{registration.id}").text
    assert re.search(r'id="refunded">CA\$450\.00 refunded<', detail)
    bad = organizer_client.post(page + "/refund", data={"amount": "1"})
    assert bad.status_code == 400 and "can still be refunded" in bad.text


def test_the_dashboard_counts_seats_held_for_payment_only_once_there_are_some(organizer_client, fake_stripe):
    from convene.services import registrations as service
    from tests.factories import person

    convening = make_convening()
    ticket = make_ticket(convening, price_cents=45000)
    assert "Awaiting payment</th>" not in organizer_client.get(f"/admin/c/{convening.id}/").text
    service.register_attendee(convening.id, ticket.id, person(1))
    page = organizer_client.get(f"/admin/c/{convening.id}/").text
    assert "Awaiting payment</th>" in page and "Payment not completed</th>" in page


def test_the_group_form_offers_the_convenings_delegations_and_takes_no_new_name_once_there_are_some(client):
    convening = make_convening()
    ticket = make_ticket(convening)
    dayton = make_delegation(convening, "Dayton, OH")
    make_delegation(convening, "Akron")
    page = client.get(f"/c/{convening.slug}/register/group").text
    options = re.findall(r'<option[^>]*value="([^"]*)"[^>]*>([^<]*)</option>', page.split('name="delegation_choice"')[1]
                         .split("</select>")[0])
    assert options == [("", "Choose your delegation"), (str(dayton.id + 1), "Akron"), (str(dayton.id), "Dayton, OH")]
    assert 'name="delegation_name"' not in page  # no free text: organizers set up delegations
    rows = [("Ana", "Lima", "ana@example.org")]
    data = group_data(convening, ticket, rows)
    del data["delegation_name"]
    page = client.post(f"/c/{convening.slug}/register/group", data=data).text
    assert "Choose your delegation." in page and orders() == []
    # A name typed anyway (a crafted post) is not a new delegation.
    crafted = client.post(f"/c/{convening.slug}/register/group", data=data | {"delegation_name": "Dayton OH."})
    assert "Choose your delegation." in crafted.text and orders() == []
    done = client.post(f"/c/{convening.slug}/register/group", data=data | {"delegation_choice": str(dayton.id)})
    assert done.status_code == 302
    [order] = orders()
    assert order.delegation_id == dayton.id and order.registrations[0].delegation_id == dayton.id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Delegation)) == 2


def test_a_typed_delegation_matching_one_by_key_joins_it(client):
    convening = make_convening()
    ticket = make_ticket(convening)
    page = client.get(f"/c/{convening.slug}/register/group").text
    assert 'name="delegation_name"' in page and 'name="delegation_choice"' not in page  # none yet: free text
    first = group_data(convening, ticket, [("Ana", "Lima", "ana@example.org")], delegation_name="Dayton, OH")
    assert client.post(f"/c/{convening.slug}/register/group", data=first).status_code == 302
    # Now the form offers the delegation; a near-duplicate name reaching the service still joins it.
    order = registrations.register_delegation(convening.id, {"name": "Bo", "email": "bo@example.org"}, " dayton  oh ",
                                        [{"given_name": "Bo", "family_name": "Ng", "email": "bo@example.org",
                                          "ticket_type_id": ticket.id}])
    [dayton] = db.session.execute(sa.select(Delegation)).scalars().all()
    assert dayton.name == "Dayton, OH" and order.delegation_id == dayton.id
    assert {r.delegation_id for r in db.session.execute(sa.select(Registration)).scalars()} == {dayton.id}
