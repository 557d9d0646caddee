"""A real Chromium registers, fixes form errors, manages and cancels, and joins a waitlist (CSRF on)."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from convene.extensions import db
from convene.models import Registration, Status
from tests.factories import make_convening, make_question, make_registration, make_ticket

pytestmark = pytest.mark.browser

DINNER = "Will you attend the networking dinner?"
REFERENCE = re.compile(r"[A-Z0-9]{3}-[A-Z0-9]{5}")


def stored(email: str) -> Registration:
    """The registration as the database has it now (the server wrote it on another connection)."""
    db.session.rollback()
    return db.session.execute(sa.select(Registration).where(Registration.email == email)).scalar_one()


def error_beside(page, field_id: str):
    """The error message rendered inside the same field wrapper as the input."""
    return page.locator(f".has-error:has(#{field_id}) #{field_id}-error")


def fill_person(page, **values) -> None:
    labels = {"given_name": "Given name", "family_name": "Family name", "email": "Email",
              "organization": "Organization", "badge_name": "Name on badge"}
    for name, value in values.items():
        page.get_by_label(labels[name], exact=True).fill(value)


@pytest.fixture
def convening(app):
    convening = make_convening(name="Cohort Convening in Toronto", slug="browser-cohort")
    make_ticket(convening, name="Cohort delegate", capacity=40)
    make_question(convening, DINNER, kind="yes_no", required=True)
    return convening


def test_register_fix_errors_manage_and_cancel(page, live_server, convening, outbox):
    page.goto(f"/c/{convening.slug}/")
    page.get_by_role("link", name="Register", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/c/{convening.slug}/register$"))

    # Empty: every required field says what it needs, beside the field.
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("alert")).to_contain_text("Please correct")
    expect(error_beside(page, "given_name")).to_have_text("Enter your given name.")
    expect(error_beside(page, "family_name")).to_have_text("Enter your family name.")
    expect(error_beside(page, "email")).to_have_text("Enter your email address.")
    expect(error_beside(page, "organization")).to_have_text("Enter your organization.")
    expect(page.get_by_role("group", name=DINNER)).to_contain_text("This question needs an answer.")

    # Partly filled: what was typed survives, only the missing fields still complain.
    fill_person(page, given_name="Amina", family_name="Haddad", badge_name="أمينة حداد")
    page.get_by_label("Halal").check()
    page.get_by_role("button", name="Register").click()
    expect(error_beside(page, "organization")).to_have_text("Enter your organization.")
    expect(page.get_by_label("Given name", exact=True)).to_have_value("Amina")
    expect(page.get_by_label("Name on badge")).to_have_value("أمينة حداد")
    expect(page.get_by_label("Halal")).to_be_checked()
    expect(page.locator("#given_name-error")).to_have_count(0)

    fill_person(page, email="amina.haddad@example.org", organization="Maryland Department of Labor")
    page.get_by_role("group", name=DINNER).get_by_label("Yes").check()
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", name="You are registered")).to_be_visible()
    reference = page.locator("#reference").inner_text().strip()
    assert REFERENCE.fullmatch(reference)
    registration = stored("amina.haddad@example.org")
    assert registration.reference == reference and registration.status == Status.CONFIRMED
    assert registration.dietary_needs == ["halal"] and registration.badge_name == "أمينة حداد"
    assert registration.answers[0].value is True

    # The emailed link opens the attendee's own page on this server.
    [message] = outbox.to("amina.haddad@example.org")
    text = outbox.text(message)
    assert reference in text
    manage_url = re.search(rf"{re.escape(live_server)}/c/{convening.slug}/manage/\S+", text).group(0)
    page.goto(manage_url)
    expect(page.locator("#status")).to_have_text("Confirmed")
    page.get_by_label("Organization", exact=True).fill("Maryland Office for Refugees and Asylees")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_have_text("Your changes are saved.")
    expect(page.get_by_label("Organization", exact=True)).to_have_value("Maryland Office for Refugees and Asylees")
    assert stored("amina.haddad@example.org").organization == "Maryland Office for Refugees and Asylees"

    page.get_by_role("link", name="Cancel my registration").click()
    expect(page.get_by_role("heading", name="Cancel your registration?")).to_be_visible()
    page.get_by_role("button", name="Yes, cancel my registration").click()
    expect(page.locator("#status")).to_have_text("Cancelled")
    assert stored("amina.haddad@example.org").status == Status.CANCELLED


def test_full_convening_offers_the_waitlist(page, app):
    convening = make_convening(slug="browser-full", capacity=1)
    ticket = make_ticket(convening, name="Cohort delegate")
    make_registration(convening, ticket, 1)

    page.goto(f"/c/{convening.slug}/")
    expect(page.get_by_text("Full — waitlist open")).to_be_visible()
    page.get_by_role("link", name="Register", exact=True).click()
    expect(page.get_by_text("This ticket is full.")).to_be_visible()
    fill_person(page, given_name="Tenzin", family_name="Dolkar", email="tenzin@example.org",
                organization="Twin Cities Refugee Resettlement Partnership")
    page.get_by_role("button", name="Join the waitlist").click()
    expect(page.get_by_role("heading", name="You are on the waitlist")).to_be_visible()
    assert REFERENCE.fullmatch(page.locator("#reference").inner_text().strip())
    assert stored("tenzin@example.org").status == Status.WAITLISTED


def test_registration_form_fits_a_phone_screen(new_page, convening, tmp_path):
    page = new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
    page.goto(f"/c/{convening.slug}/register")
    expect(page.get_by_role("button", name="Register")).to_be_visible()
    overflow = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(overflow)
    page.screenshot(path=tmp_path / "register-390x844.png", full_page=True)
    assert (tmp_path / "register-390x844.png").stat().st_size > 10_000

    page.get_by_role("button", name="Register").click()  # error messages must wrap too
    expect(error_beside(page, "email")).to_be_visible()
    assert page.evaluate(overflow)
