"""The public pages through the test client: listing, registering, managing, waitlist offers."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from convene.extensions import db
from convene.models import Registration, Status
from convene.services import registrations as service
from convene.services.tokens import manage_token, offer_token
from tests.factories import make_convening, make_question, make_registration, make_ticket, person


def form_data(n: int = 1, ticket=None, **overrides) -> dict:
    data = {k: v for k, v in person(n).items() if not isinstance(v, list)}
    if ticket is not None:
        data["ticket_type_id"] = str(ticket.id)
    data.update(overrides)
    return data


def manage_link_from(outbox, address: str) -> str:
    text = outbox.text(outbox.to(address)[-1])
    return re.search(r"http://localhost(/c/[^/\s]+/manage/\S+)", text).group(1)


def test_index_lists_only_published_convenings(client):
    make_convening(name="Toronto Cohort Convening")
    make_convening(name="Secret Draft", published=False)
    page = client.get("/").get_data(as_text=True)
    assert "Toronto Cohort Convening" in page and "Secret Draft" not in page


def test_unpublished_convening_is_not_found(client):
    draft = make_convening(published=False)
    assert client.get(f"/c/{draft.slug}/").status_code == 404
    assert client.get(f"/c/{draft.slug}/register").status_code == 404
    assert client.get("/c/no-such-thing/").status_code == 404


def test_convening_page_shows_local_dates_and_seats_left(client):
    convening = make_convening(capacity=50)
    make_ticket(convening, name="Cohort delegate", capacity=20)
    make_ticket(convening, name="Host (comp)", hidden=True)
    paid = make_ticket(convening, name="Member rate", price_cents=15000)
    make_registration(convening, db.session.get(type(paid), paid.id), 1)
    page = client.get(f"/c/{convening.slug}/").get_data(as_text=True)
    assert "Cohort delegate" in page and "20 seats left" in page
    assert "Host (comp)" not in page
    assert "Online payment is not set up yet" in page
    assert "America/Toronto" in page


def test_register_shows_messages_beside_fields_and_keeps_what_was_typed(client):
    convening = make_convening()
    ticket = make_ticket(convening)
    make_question(convening, "Networking dinner?", "yes_no", required=True)
    response = client.post(f"/c/{convening.slug}/register", data={
        "ticket_type_id": str(ticket.id), "given_name": "Thanh", "email": "not-an-email", "family_name": "",
    })
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Enter your family name." in page
    assert "Enter an email address like name@example.org." in page
    assert "This question needs an answer." in page
    assert 'value="Thanh"' in page and 'value="not-an-email"' in page
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 0


def test_register_then_manage_edit_and_cancel(client, outbox):
    convening = make_convening()
    ticket = make_ticket(convening)
    dinner = make_question(convening, "Networking dinner?", "yes_no", required=True)
    response = client.post(f"/c/{convening.slug}/register", data=form_data(
        1, ticket, dietary_needs=["halal"], **{dinner.field_name: "yes"}))
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    registration = db.session.execute(sa.select(Registration)).scalar_one()
    assert registration.reference in page and registration.dietary_needs == ["halal"]
    assert registration.answer_for(dinner.id) is True

    link = manage_link_from(outbox, "amina1@example.org")
    page = client.get(link).get_data(as_text=True)
    assert registration.reference in page and 'value="City of Dayton"' in page
    edited = form_data(1, None, organization="Maryland Office for New Americans", **{dinner.field_name: "no"})
    assert client.post(link, data=edited).status_code == 302
    db.session.expire_all()
    registration = db.session.get(Registration, registration.id)
    assert registration.organization == "Maryland Office for New Americans"
    assert registration.answer_for(dinner.id) is False

    assert client.post(link + "/cancel").status_code == 302
    db.session.expire_all()
    assert db.session.get(Registration, registration.id).status == Status.CANCELLED
    assert "Cancelled" in client.get(link).get_data(as_text=True)


def test_second_registration_offers_to_resend_the_manage_link(client, outbox):
    convening = make_convening()
    ticket = make_ticket(convening)
    client.post(f"/c/{convening.slug}/register", data=form_data(1, ticket))
    response = client.post(f"/c/{convening.slug}/register", data=form_data(1, ticket, given_name="Again"))
    assert response.status_code == 409
    assert "is already registered" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 1
    before = len(outbox.to("amina1@example.org"))
    client.post(f"/c/{convening.slug}/manage-link", data={"email": "AMINA1@example.org"})
    assert len(outbox.to("amina1@example.org")) == before + 1


def test_manage_link_form_does_not_reveal_who_is_registered(client, outbox):
    convening = make_convening()
    response = client.post(f"/c/{convening.slug}/manage-link", data={"email": "nobody@example.org"},
                           follow_redirects=True)
    assert "If nobody@example.org is registered" in response.get_data(as_text=True)
    assert outbox.messages() == []


@pytest.mark.parametrize("token", ["garbage", "eyJyIjoxfQ.bad.sig"])
def test_bad_manage_link_sends_people_to_ask_for_a_new_one(client, token):
    convening = make_convening()
    response = client.get(f"/c/{convening.slug}/manage/{token}", follow_redirects=True)
    assert response.status_code == 200
    assert "This link is not valid" in response.get_data(as_text=True)


def test_manage_link_of_another_convening_is_refused(client):
    first, second = make_convening(), make_convening()
    registration = make_registration(first, make_ticket(first), 1)
    response = client.get(f"/c/{second.slug}/manage/{manage_token(registration)}", follow_redirects=True)
    assert "This link is not valid" in response.get_data(as_text=True)


def test_full_ticket_offers_the_waitlist_and_the_offer_link_takes_the_seat(client, outbox):
    convening = make_convening(capacity=1)
    ticket = make_ticket(convening)
    first = make_registration(convening, ticket, 1)
    page = client.get(f"/c/{convening.slug}/register").get_data(as_text=True)
    assert "Join the waitlist" in page
    client.post(f"/c/{convening.slug}/register", data=form_data(2, ticket, join_waitlist="yes"))
    waiting = db.session.execute(sa.select(Registration).where(Registration.email == "amina2@example.org")).scalar_one()
    assert waiting.status == Status.WAITLISTED

    service.cancel_registration(first.id)
    offer_mail = [m for m in outbox.to("amina2@example.org") if "held for you" in m["Subject"]][-1]
    link = re.search(r"http://localhost(/c/\S+/offer/\S+)", outbox.text(offer_mail)).group(1)
    assert "A seat is held for you" in client.get(link).get_data(as_text=True)
    response = client.post(link)
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Registration, waiting.id).status == Status.CONFIRMED


def test_racing_for_the_last_seat_on_the_form_offers_the_waitlist(client):
    convening = make_convening(capacity=1)
    ticket = make_ticket(convening)
    # Page was loaded while a seat was free; it is taken before the submit arrives.
    make_registration(convening, ticket, 1)
    response = client.post(f"/c/{convening.slug}/register", data=form_data(2, ticket))
    page = response.get_data(as_text=True)
    assert "The last seats for this ticket were just taken" in page
    assert 'value="Amina2"' in page


def test_offer_link_with_a_bad_token_says_so(client):
    convening = make_convening()
    response = client.get(f"/c/{convening.slug}/offer/nonsense")
    assert response.status_code == 400 and "This link does not work" in response.get_data(as_text=True)


def test_paid_ticket_cannot_be_booked_without_payment(client):
    convening = make_convening()
    paid = make_ticket(convening, price_cents=25000)
    page = client.get(f"/c/{convening.slug}/register").get_data(as_text=True)
    assert "online payment is not set up yet" in page
    response = client.post(f"/c/{convening.slug}/register", data=form_data(1, paid))
    assert response.status_code == 200
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 0


def test_offer_link_of_someone_still_waiting_offers_nothing(client):
    convening = make_convening()
    registration = make_registration(convening, make_ticket(convening), 1, status=Status.WAITLISTED)
    page = client.get(f"/c/{convening.slug}/offer/{offer_token(registration)}").get_data(as_text=True)
    assert "This offer is no longer open" in page
