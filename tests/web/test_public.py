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


# -- accessibility of the forms: error summary, described errors, autocomplete, no dead buttons ---------------------

def tag(page: str, pattern: str) -> str:
    """The first start tag matching pattern (a regex inside the tag)."""
    return re.search(rf"<[a-z]+[^>]*{pattern}[^>]*>", page).group(0)


def test_failed_register_shows_an_error_summary_linking_each_field(client):
    convening = make_convening()
    ticket = make_ticket(convening)
    dinner = make_question(convening, "Networking dinner?", "yes_no", required=True)
    page = client.post(f"/c/{convening.slug}/register", data={
        "ticket_type_id": str(ticket.id), "given_name": "Thanh", "email": "not-an-email", "family_name": "",
    }).get_data(as_text=True)
    # The re-shown form posts to #error-summary, so the browser lands on the summary without any script.
    assert 'action="#error-summary"' in tag(page, 'id="register-form"')
    fresh = client.get(f"/c/{convening.slug}/register").get_data(as_text=True)
    assert "action=" not in tag(fresh, 'id="register-form"')  # a redirect would carry the fragment on to Stripe
    summary = re.search(r'<div class="error-summary" id="error-summary" tabindex="-1" role="alert".*?</div>', page, re.DOTALL).group(0)
    assert "Please correct the 4 fields marked below" in summary
    assert re.findall(r'<a href="(#[^"]+)">', summary) == [
        "#family_name", "#email", "#organization", f"#{dinner.field_name}-0"]
    # A radio group's error is read with the group: the fieldset, not each radio, points at it.
    fieldset = tag(page, f'aria-describedby="{dinner.field_name}-error"')
    assert fieldset.startswith("<fieldset")
    assert f'<p class="error" id="{dinner.field_name}-error">This question needs an answer.</p>' in page
    assert 'aria-describedby="email-error"' in tag(page, 'id="email"')
    assert 'src="/static/js/a11y.js"' in page  # moves the focus to the summary


def test_no_error_summary_on_a_fresh_form(client):
    convening = make_convening()
    make_ticket(convening)
    page = client.get(f"/c/{convening.slug}/register").get_data(as_text=True)
    assert 'id="error-summary"' not in page and 'aria-invalid' not in page


def test_ticket_choices_are_radio_cards_with_the_whole_label(client):
    convening = make_convening(invoice_enabled=True)
    make_ticket(convening, name="Delegate", price_cents=45000)
    observer = make_ticket(convening, name="Observer (partner agencies)", price_cents=35000)
    page = client.get(f"/c/{convening.slug}/register").get_data(as_text=True)
    assert "<select" not in page.split('id="ticket_type_id"', 1)[1].split("</fieldset>", 1)[0]
    assert re.search(rf'<input type="radio" name="ticket_type_id" id="ticket_type_id-1" value="{observer.id}"\s*>'
                     r'\s*<span>Observer \(partner agencies\) — CA\$350.00</span>', page)
    chosen = client.post(f"/c/{convening.slug}/register", data={"ticket_type_id": str(observer.id)})
    assert re.search(rf'value="{observer.id}"\s*checked', chosen.get_data(as_text=True))


def test_public_person_fields_autocomplete_but_the_back_office_form_does_not(client, organizer):
    convening = make_convening()
    make_ticket(convening)
    page = client.get(f"/c/{convening.slug}/register").get_data(as_text=True)
    expected = {"given_name": "given-name", "family_name": "family-name", "email": "email", "phone": "tel",
                "organization": "organization", "job_title": "organization-title"}
    for field_id, token in expected.items():
        assert f'autocomplete="{token}"' in tag(page, f'id="{field_id}"'), field_id
    link_page = client.get(f"/c/{convening.slug}/manage-link").get_data(as_text=True)
    assert 'autocomplete="email"' in tag(link_page, 'id="email"')
    make_ticket(convening, name="Observer")  # so the delegation form has a seat to offer
    group = client.get(f"/c/{convening.slug}/register/group").get_data(as_text=True)
    assert 'autocomplete="name"' in tag(group, 'id="lead_name"')
    assert "autocomplete" not in tag(group, 'id="delegates-0-given_name"')  # someone else's name

    client.post("/admin/login", data={"email": organizer.email, "password": "correct-horse-battery"})
    admin_form = client.get(f"/admin/c/{convening.id}/registrations/new").get_data(as_text=True)
    assert 'id="given_name"' in admin_form and 'autocomplete="given-name"' not in admin_form


def test_manage_link_errors_sit_in_a_summary_too(client):
    convening = make_convening()
    page = client.post(f"/c/{convening.slug}/manage-link", data={"email": "nope"}).get_data(as_text=True)
    assert 'action="#error-summary"' in page
    assert re.search(r'id="error-summary".*<a href="#email">Enter an email address like name@example.org.</a>',
                     page, re.DOTALL)


def test_delegation_form_rows_errors_link_to_the_cell_and_remove_buttons_start_hidden(client):
    convening = make_convening()
    ticket = make_ticket(convening)
    page = client.get(f"/c/{convening.slug}/register/group").get_data(as_text=True)
    assert page.count("data-remove hidden") == 3  # the script shows them; site CSS keeps [hidden] hidden
    assert 'formaction="#delegate-rows"' in tag(page, 'id="add-row"')  # without JavaScript: back at the rows
    refused = client.post(f"/c/{convening.slug}/register/group", data={
        "lead_name": "Lena Ortiz", "lead_email": "lena@example.org", "organization": "Dayton",
        "delegates-0-given_name": "Ana", "delegates-0-family_name": "", "delegates-0-email": "ana@example.org",
        "delegates-0-ticket_type_id": str(ticket.id)}).get_data(as_text=True)
    summary = re.search(r'id="error-summary".*?</div>', refused, re.DOTALL).group(0)
    assert '<a href="#delegates-0-family_name">Enter the family name.</a>' in summary


def test_stylesheet_keeps_hidden_elements_hidden(client):
    css = client.get("/static/css/convene.css").get_data(as_text=True)
    assert "[hidden] { display: none !important; }" in css


def test_failed_save_on_the_manage_page_says_so_at_the_top_and_links_to_the_summary(client):
    convening = make_convening()
    registration = make_registration(convening, make_ticket(convening), 1)
    url = f"/c/{convening.slug}/manage/{manage_token(registration)}"
    assert 'id="not-saved"' not in client.get(url).get_data(as_text=True)
    page = client.post(url, data=form_data(1, None, given_name="")).get_data(as_text=True)
    notice = re.search(r'<p class="flash flash-error" id="not-saved">.*?</p>', page).group(0)
    assert '<a href="#error-summary">See what to correct</a>' in notice
    assert page.index('id="not-saved"') < page.index("<h2 id=\"details\">") < page.index('id="error-summary"')
    assert 'action="#error-summary"' in tag(page, 'id="details-form"')
    assert '<a href="#given_name">Enter your given name.</a>' in page


# -- issue 11: waitlist in one submit, unpayable tickets shown, codes checked at once, a lost session ---------------

def hidden_value(page: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    value = re.search(r'value="([^"]*)"', match.group(0)) if match else None
    return value.group(1) if value else ""


def test_a_ticket_full_when_the_form_was_shown_joins_the_waitlist_in_one_submit(client):
    convening = make_convening()
    make_ticket(convening, name="Community")  # open, so the form starts on "Register"
    full = make_ticket(convening, name="Delegate", capacity=1)
    make_registration(convening, full, 1)
    page = client.get(f"/c/{convening.slug}/register").get_data(as_text=True)
    assert "Delegate — Free — waitlist" in page
    response = client.post(f"/c/{convening.slug}/register",
                           data=form_data(2, full, join_waitlist=hidden_value(page, "join_waitlist")))
    assert response.status_code == 302, response.get_data(as_text=True)
    assert "just taken" not in client.get(response.headers["Location"]).get_data(as_text=True)
    waiting = db.session.execute(sa.select(Registration).where(Registration.email == "amina2@example.org")).scalar_one()
    assert waiting.status == Status.WAITLISTED


def test_a_seat_taken_between_showing_and_sending_says_so_once_and_offers_the_waitlist(client):
    convening = make_convening()
    ticket = make_ticket(convening, capacity=1)
    page = client.get(f"/c/{convening.slug}/register").get_data(as_text=True)
    make_registration(convening, ticket, 1)  # someone else takes the last seat meanwhile
    response = client.post(f"/c/{convening.slug}/register",
                           data=form_data(2, ticket, join_waitlist=hidden_value(page, "join_waitlist")))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert page.count("The last seats for this ticket were just taken") == 1
    assert "This ticket is full" not in page  # not a second, near-duplicate warning
    assert "Join the waitlist" in page
    response = client.post(f"/c/{convening.slug}/register",
                           data=form_data(2, ticket, join_waitlist=hidden_value(page, "join_waitlist")))
    assert response.status_code == 302
    waiting = db.session.execute(sa.select(Registration).where(Registration.email == "amina2@example.org")).scalar_one()
    assert waiting.status == Status.WAITLISTED


def test_a_paid_ticket_that_cannot_be_paid_for_is_shown_disabled_with_the_reason(client):
    convening = make_convening(invoice_enabled=False)
    free = make_ticket(convening, name="Community", capacity=1)
    paid = make_ticket(convening, name="Delegate", price_cents=25000)
    make_registration(convening, free, 1)  # the free ticket is full: its waitlist is not the paid ticket
    page = client.get(f"/c/{convening.slug}/register").get_data(as_text=True)
    radio = re.search(rf'<input type="radio"[^>]*value="{paid.id}"[^>]*>', page)
    assert radio and "disabled" in radio.group(0) and "checked" not in radio.group(0)
    assert "Online payment is not set up for this convening yet" in page
    assert "Delegate — CA$250.00" in page
    response = client.post(f"/c/{convening.slug}/register", data=form_data(2, paid))
    assert response.status_code == 200 and "Online payment is not set up" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 1
    make_ticket(convening, name="Observer")  # so the delegation form has a seat to offer
    group = client.get(f"/c/{convening.slug}/register/group").get_data(as_text=True)
    assert f'<option disabled value="{paid.id}">Delegate — CA$250.00 (not bookable: online payment is not set up)' \
        '</option>' in group


@pytest.fixture
def codes(app):
    from datetime import timedelta

    from convene.models import CodeKind, DiscountCode, utcnow

    convening = make_convening()
    ticket = make_ticket(convening, price_cents=0)
    used = DiscountCode(convening_id=convening.id, code="ONCE", kind=CodeKind.PERCENT, percent=50, max_uses=1)
    db.session.add_all([used, DiscountCode(convening_id=convening.id, code="OLD", kind=CodeKind.PERCENT, percent=50,
                                           valid_until=utcnow() - timedelta(days=1))])
    db.session.commit()
    make_registration(convening, ticket, 9, discount_code_id=used.id)
    return convening, ticket


@pytest.mark.parametrize("code, message", [
    ("NOPE", "That code is not valid for this convening"),
    ("old", "That code has expired."),
    ("ONCE", "That code has been used as many times as it allows."),
])
def test_a_code_that_does_not_work_is_explained_at_once_beside_the_field(client, codes, code, message):
    convening, ticket = codes
    page = client.get(f"/c/{convening.slug}/register", query_string={"code": code}).get_data(as_text=True)
    assert message in page
    # "Apply" inside the form: the answer comes beside the code field and nothing typed is lost.
    response = client.post(f"/c/{convening.slug}/register", data=form_data(1, ticket, code=code, apply_code="1"))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'id="code-error">{message}' in page
    assert 'value="Amina1"' in page and 'value="amina1@example.org"' in page
    assert "Please correct the field marked below" in page
    group = client.post(f"/c/{convening.slug}/register/group",
                        data={"lead_name": "Ana Lead", "code": code, "apply_code": "1"}).get_data(as_text=True)
    assert f'id="code-error">{message}' in group and 'value="Ana Lead"' in group
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 1


@pytest.fixture
def csrf_on(app_config):
    app_config["WTF_CSRF_ENABLED"] = True


@pytest.mark.usefixtures("csrf_on")
def test_a_lost_session_shows_the_form_again_with_what_was_typed(client):
    convening = make_convening()
    ticket = make_ticket(convening)
    data = form_data(1, ticket, job_title="Director of <Programs>")  # no csrf_token: the session was lost
    response = client.post(f"/c/{convening.slug}/register", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Your session timed out, so nothing was saved yet. Check your details and send the form again." in page
    assert "CSRF" not in page
    assert 'value="Amina1"' in page and 'value="Director of &lt;Programs&gt;"' in page
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 0
    # The form shown again carries a fresh token, so sending it once more registers.
    data["csrf_token"] = hidden_value(page, "csrf_token")
    assert client.post(f"/c/{convening.slug}/register", data=data).status_code == 302
    group = client.post(f"/c/{convening.slug}/register/group", data={"lead_name": "Ana Lead"})
    assert group.status_code == 400 and 'value="Ana Lead"' in group.get_data(as_text=True)
    assert "Your session timed out, so nothing was saved yet" in group.get_data(as_text=True)
    # Other POSTs are refused as before, with a plain message.
    refused = client.post(f"/c/{convening.slug}/manage-link", data={"email": "amina1@example.org"})
    assert refused.status_code == 400 and "Your session timed out" in refused.get_data(as_text=True)
