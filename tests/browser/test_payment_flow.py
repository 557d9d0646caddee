"""A real Chromium pays for registrations through the fake Stripe Checkout page (CSRF on, real HTTP both ways).

The live server serves the very `app` object whose config `fake_stripe` points at the fake Stripe, and
the fake's Pay button POSTs the signed checkout.session.completed webhook to that server before it
sends the browser back to the app, as Stripe does.
"""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from pypdf import PdfReader

from convene.extensions import db
from convene.models import CodeKind, DiscountCode, Order, OrderStatus, Registration, Status, StripeEvent
from tests.conftest import BACKENDS
from tests.factories import make_convening, make_ticket

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
REFERENCE = re.compile(r"[A-Z0-9]{3}-[A-Z0-9]{5}")


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Unlike the other browser tests, on every backend: the webhook and the return race for the same order."""
    return request.param


@pytest.fixture
def stripe(fake_stripe, live_server):
    """The fake Stripe, delivering its webhooks to the live server (the same app `fake_stripe` configured)."""
    fake_stripe.webhook_url = f"{live_server}/stripe/webhook"
    return fake_stripe


def fresh() -> None:
    """End the test's read transaction: the server wrote on its own connections."""
    db.session.rollback()


def orders() -> list[Order]:
    fresh()
    return db.session.execute(sa.select(Order).order_by(Order.id)).scalars().all()


def registration_of(email: str) -> Registration:
    fresh()
    return db.session.execute(sa.select(Registration).where(Registration.email == email)).scalar_one()


def confirmations(outbox, address: str) -> list:
    return [m for m in outbox.to(address) if m["Subject"].startswith("You are registered")]


def receipts(outbox, address: str) -> list:
    return [m for m in outbox.to(address) if m["Subject"].startswith("Receipt for")]


def fill_person(page, **values) -> None:
    labels = {"given_name": "Given name", "family_name": "Family name", "email": "Email",
              "organization": "Organization"}
    for name, value in values.items():
        page.get_by_label(labels[name], exact=True).fill(value)


def register_posts(slug: str):
    """Matches the form's POST answer (the redirect itself, before the browser follows it)."""
    return lambda response: response.request.method == "POST" and response.url.endswith(f"/c/{slug}/register")


def test_phone_pays_by_card_and_comes_back_paid_with_a_receipt(new_page, stripe, outbox, tmp_path):
    convening = make_convening(name="Cohort Convening in Toronto", slug="pay-phone")
    make_ticket(convening, name="Delegate", price_cents=45000)
    page = new_page(**PHONE)

    page.goto(f"/c/{convening.slug}/register")
    expect(page.get_by_label("Ticket")).to_contain_text("CA$450.00")
    expect(page.get_by_text("paid by card on the next page")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    fill_person(page, given_name="Amina", family_name="Haddad", email="amina@example.org",
                organization="Maryland Office for Refugees and Asylees")
    with page.expect_response(register_posts(convening.slug)) as answer:
        page.get_by_role("button", name="Register").click()

    [session] = stripe.sessions
    assert answer.value.status == 303 and answer.value.headers["location"] == session["url"]
    expect(page).to_have_url(session["url"])
    expect(page.get_by_role("heading", name="Fake Stripe Checkout")).to_be_visible()
    expect(page.locator("#amount")).to_have_text("450.00 CAD")
    [order] = orders()
    assert order.status == OrderStatus.PENDING and order.stripe_session_id == session["id"]
    assert registration_of("amina@example.org").status == Status.PENDING
    assert outbox.messages() == []  # nothing is confirmed before the money arrives

    page.get_by_role("button", name="Pay").click()
    expect(page).to_have_url(re.compile(rf"/c/{convening.slug}/order/[^/?]+$"))
    expect(page.get_by_role("status").filter(has_text="Payment received")).to_be_visible()
    expect(page.locator("#order-status")).to_have_text("Paid")
    expect(page.locator("#order-paid")).to_contain_text("CA$450.00")
    expect(page.locator("#hold-notice")).to_have_count(0)
    expect(page.locator("#order-registrations")).to_contain_text("Confirmed")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # The webhook reached the app and fulfilled the order; the return found it done and added nothing.
    assert [d["status"] for d in stripe.webhook_deliveries] == [200]
    [order] = orders()
    assert order.status == OrderStatus.PAID and order.paid_cents == 45000
    registration = registration_of("amina@example.org")
    assert registration.status == Status.CONFIRMED and registration.order_id == order.id
    events = db.session.execute(sa.select(StripeEvent)).scalars().all()
    assert [(e.type, e.outcome, e.order_id) for e in events] == [("checkout.session.completed", "paid", order.id)]
    assert len(confirmations(outbox, "amina@example.org")) == 1
    assert len(receipts(outbox, "amina@example.org")) == 1
    assert len(outbox.messages()) == 2

    expect(page.locator("#order-reference")).to_have_text(order.reference)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the receipt (PDF)").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".pdf")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    assert path.read_bytes().startswith(b"%PDF")
    text = PdfReader(path).pages[0].extract_text()
    assert order.reference in text and registration.reference in text


def test_back_from_checkout_keeps_the_seat_held_then_pay_again_or_release(page, stripe, outbox):
    convening = make_convening(slug="pay-back", capacity=1)
    make_ticket(convening, name="Delegate", price_cents=45000)

    page.goto(f"/c/{convening.slug}/register")
    fill_person(page, given_name="Tenzin", family_name="Dolkar", email="tenzin@example.org",
                organization="Twin Cities Refugee Resettlement Partnership")
    page.get_by_role("button", name="Register").click()
    [session] = stripe.sessions
    expect(page).to_have_url(session["url"])

    page.get_by_role("link", name="Back").click()
    expect(page).to_have_url(re.compile(rf"/c/{convening.slug}/order/[^/?]+\?checkout=cancelled$"))
    order_url = page.url.split("?")[0]
    expect(page.get_by_role("status").filter(has_text="The payment was not completed")).to_be_visible()
    expect(page.locator("#hold-notice")).to_contain_text("Your seat is held until")
    expect(page.locator("#order-status")).to_have_text("Awaiting payment")
    [order] = orders()
    assert order.status == OrderStatus.PENDING
    assert registration_of("tenzin@example.org").status == Status.PENDING
    # The seat counts while it is held: the only seat of this convening is not offered to anyone else.
    other = page.context.new_page()
    other.goto(f"/c/{convening.slug}/register")
    expect(other.get_by_role("button", name="Register")).to_have_count(0)
    other.close()

    # Paying again goes back to the same Checkout Session; none is created twice.
    page.get_by_role("button", name="Pay CA$450.00 now").click()
    expect(page).to_have_url(session["url"])
    expect(page.locator("#amount")).to_have_text("450.00 CAD")
    assert [s["id"] for s in stripe.sessions] == [session["id"]]

    page.get_by_role("link", name="Back").click()
    expect(page.locator("#order-status")).to_have_text("Awaiting payment")
    page.get_by_role("button", name="Release the seat").click()
    expect(page).to_have_url(order_url)
    released = page.get_by_role("status").filter(has_text="The held seat is released. Nothing was charged.")
    expect(released).to_be_visible()
    expect(page.locator("#order-status")).to_have_text("Cancelled")
    expect(page.get_by_role("button", name=re.compile("^Pay "))).to_have_count(0)

    [order] = orders()
    assert order.status == OrderStatus.CANCELLED and order.paid_cents == 0
    assert registration_of("tenzin@example.org").status == Status.EXPIRED
    assert stripe.session(session["id"])["status"] == "expired"
    assert stripe.webhook_deliveries == [] and outbox.messages() == []
    page.goto(f"/c/{convening.slug}/register")  # the seat is free again
    expect(page.get_by_role("button", name="Register")).to_be_visible()


def delegate_rows(page):
    return page.locator("#delegate-rows [data-row]")


def test_delegation_of_five_with_javascript_rows_pays_once(page, stripe, outbox):
    convening = make_convening(slug="pay-group")
    make_ticket(convening, name="Delegate", price_cents=30000)
    delegates = [(f"Delegate{i}", "Okafor", f"d{i}@example.org") for i in range(1, 6)]

    page.goto(f"/c/{convening.slug}/register/group")
    form_url = page.url
    page.evaluate("window.__samePage = true")  # gone if the page reloads
    page.get_by_label("Your name").fill("Lena Ortiz")
    page.get_by_label("Your email").fill("lena@example.org")
    page.get_by_label("Organization", exact=True).fill("Welcoming Dayton")
    page.get_by_label("Delegation", exact=True).fill("Dayton")
    expect(delegate_rows(page)).to_have_count(3)

    add = page.get_by_role("button", name="Add another delegate")
    add.click()
    add.click()
    expect(delegate_rows(page)).to_have_count(5)
    assert page.url == form_url and page.evaluate("window.__samePage") is True
    expect(page.get_by_label("Your name")).to_have_value("Lena Ortiz")  # nothing typed was lost

    page.get_by_role("group", name="Delegate 3").get_by_role("button", name="Remove this delegate").click()
    expect(delegate_rows(page)).to_have_count(4)
    expect(page.get_by_role("group", name="Delegate 5")).to_have_count(0)  # renumbered 1..4
    add.click()
    expect(delegate_rows(page)).to_have_count(5)
    assert page.url == form_url and page.evaluate("window.__samePage") is True

    for number, (given, family, email) in enumerate(delegates, start=1):
        row = page.get_by_role("group", name=f"Delegate {number}", exact=True)
        row.get_by_label("Given name").fill(given)
        row.get_by_label("Family name").fill(family)
        row.get_by_label("Email").fill(email)
        row.get_by_label("Ticket").select_option(label="Delegate — CA$300.00")
    page.get_by_role("button", name="Register the delegation").click()

    [session] = stripe.sessions
    expect(page).to_have_url(session["url"])
    expect(page.locator("#amount")).to_have_text("1500.00 CAD")
    page.get_by_role("button", name="Pay").click()

    expect(page).to_have_url(re.compile(rf"/c/{convening.slug}/order/[^/?]+$"))
    expect(page.get_by_role("heading", name="Your delegation: Dayton")).to_be_visible()
    expect(page.locator("#order-status")).to_have_text("Paid")
    table = page.locator("#order-registrations tbody tr")
    expect(table).to_have_count(5)
    for _, _, email in delegates:
        expect(table.filter(has_text=email)).to_contain_text("Confirmed")
    expect(page.get_by_role("link", name="View or edit")).to_have_count(5)

    [order] = orders()
    assert order.status == OrderStatus.PAID and order.is_group and order.total_cents == 150000
    assert sorted(r.email for r in order.registrations) == [email for _, _, email in delegates]
    assert all(r.status == Status.CONFIRMED for r in order.registrations)
    assert [d["status"] for d in stripe.webhook_deliveries] == [200]
    for _, _, email in delegates:  # each delegate gets one email: their own confirmation
        assert len(outbox.to(email)) == 1 and len(confirmations(outbox, email)) == 1, email
    assert len(receipts(outbox, "lena@example.org")) == 1

    # A delegate's link opens that delegate's own page.
    page.get_by_role("row").filter(has_text="d4@example.org").get_by_role("link", name="View or edit").click()
    expect(page.get_by_label("Email", exact=True)).to_have_value("d4@example.org")


def test_a_full_discount_code_skips_stripe_entirely(page, stripe, outbox):
    convening = make_convening(slug="pay-free")
    make_ticket(convening, name="Delegate", price_cents=45000)
    db.session.add(DiscountCode(convening_id=convening.id, code="SPEAKER", kind=CodeKind.PERCENT, percent=100))
    db.session.commit()

    page.goto(f"/c/{convening.slug}/register")
    fill_person(page, given_name="Rosa", family_name="Mendez", email="rosa@example.org",
                organization="Welcoming Dayton")
    page.get_by_label("Discount or access code", exact=True).fill("speaker")
    with page.expect_response(register_posts(convening.slug)) as answer:
        page.get_by_role("button", name="Register").click()

    expect(page.get_by_role("heading", name="You are registered")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/c/{convening.slug}/registered/[^/?]+$"))
    assert answer.value.status in (302, 303)
    assert "/registered/" in answer.value.headers["location"]
    reference = page.locator("#reference").inner_text().strip()
    assert REFERENCE.fullmatch(reference)
    assert stripe.requests == [] and stripe.sessions == [] and stripe.webhook_deliveries == []

    registration = registration_of("rosa@example.org")
    assert registration.reference == reference and registration.status == Status.CONFIRMED
    assert (registration.price_cents, registration.discount_cents) == (45000, 45000)
    for order in orders():  # a zero order may record the code; it never waits for a payment
        assert order.total_cents == 0 and order.status not in (OrderStatus.PENDING, OrderStatus.PROCESSING)
    assert len(confirmations(outbox, "rosa@example.org")) == 1


def test_an_abandoned_delegation_payment_never_says_registered(page, stripe, outbox):
    convening = make_convening(slug="pay-group-abandoned")
    make_ticket(convening, name="Delegate", price_cents=30000)
    page.goto(f"/c/{convening.slug}/register/group")
    page.get_by_label("Your name").fill("Lena Ortiz")
    page.get_by_label("Your email").fill("lena@example.org")
    page.get_by_label("Organization", exact=True).fill("Welcoming Dayton")
    for number in (1, 2):
        row = page.get_by_role("group", name=f"Delegate {number}", exact=True)
        row.get_by_label("Given name").fill(f"Delegate{number}")
        row.get_by_label("Family name").fill("Okafor")
        row.get_by_label("Email").fill(f"d{number}@example.org")
    page.get_by_role("button", name="Register the delegation").click()
    expect(page).to_have_url(stripe.sessions[0]["url"])
    page.get_by_role("link", name="Back").click()
    page.get_by_role("button", name="Release the seats").click()
    expect(page.locator("#order-status")).to_have_text("Cancelled")
    [order] = orders()
    assert order.status == OrderStatus.CANCELLED and order.paid_cents == 0
    # Nothing was paid and nobody is registered, so no email may say otherwise.
    assert [m["Subject"] for m in outbox.messages() if "registered" in m["Subject"]] == []
