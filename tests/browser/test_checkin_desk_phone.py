"""A real Chromium on a phone at the desk: a walk-in registered, checked in and badged; the live numbers moving."""
from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from convene.extensions import db
from convene.models import Registration
from convene.models.checkin import Checkin
from convene.services import checkin
from tests.browser.test_accessibility import axe_problems, overflow
from tests.browser.test_checkin_flow import PHONE, sign_in, violations
from tests.factories import make_convening, make_registration, make_ticket, make_user

pytestmark = pytest.mark.browser


@pytest.fixture
def scene(app):
    convening = make_convening(name="Welcoming Cities Summit")
    ticket = make_ticket(convening, name="Community")
    ana = make_registration(convening, ticket, given_name="Ana", family_name="Müller", phone="+1 410 555 0101")
    make_user("desk@example.org", role="desk", convening=convening)
    entrance = checkin.main_list(convening.id)
    return SimpleNamespace(convening=convening, ana=ana, entrance=entrance, base=f"/admin/c/{convening.id}/checkin")


def test_a_walk_in_on_a_phone_is_registered_checked_in_and_badged(new_page, scene):
    from pypdf import PdfReader

    page = new_page(**PHONE)
    refused = violations(page)
    sign_in(page)
    page.goto(scene.base)
    page.get_by_role("link", name="Walk-ins and badges").click()
    assert axe_problems(page) == [] and overflow(page) <= 0

    page.get_by_label("Given name").fill("Nadia")
    page.get_by_label("Family name").fill("Haddad")
    page.get_by_label("Email", exact=True).fill("not-an-email")
    page.get_by_role("button", name="Register, check in and make the badge").click()
    expect(page.locator("#email-error")).to_be_visible()  # told beside the field; nothing made
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 1

    page.get_by_label("Email", exact=True).fill("nadia@example.org")
    page.get_by_label("Organization").fill("Welcome Dayton")
    page.get_by_role("button", name="Register, check in and make the badge").click()
    expect(page.get_by_role("heading", name="Badge ready")).to_be_visible()
    expect(page.locator("#person-checkins")).to_contain_text("Entrance")
    assert axe_problems(page) == [] and overflow(page) <= 0

    pdf = page.request.get(page.locator("#badge-pdf").get_attribute("href"))
    assert pdf.headers["content-type"] == "application/pdf"
    assert "Nadia" in PdfReader(io.BytesIO(pdf.body())).pages[0].extract_text()
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Checkin).where(
        Checkin.list_id == scene.entrance.id, Checkin.reverted_at.is_(None))) == 1
    assert refused == []


def test_the_live_numbers_move_without_a_reload(new_page, scene, monkeypatch):
    import convene.admin.checkin_reports as live_views

    monkeypatch.setattr(live_views, "REFRESH_SECONDS", 1)
    page = new_page(**PHONE)
    refused = violations(page)
    sign_in(page)
    page.goto(f"{scene.base}/lists/{scene.entrance.id}/live")
    expect(page.locator("#live-arrived")).to_have_text("0")
    expect(page.locator("#not-arrived-list")).to_contain_text("+1 410 555 0101")
    assert axe_problems(page) == [] and overflow(page) <= 0
    page.evaluate("window.__notReloaded = true")

    checkin.check_in(scene.entrance, scene.ana.checkin_token, device="another-desk", scan_id="1")
    expect(page.locator("#live-arrived")).to_have_text("1")
    expect(page.locator("#not-arrived-list")).to_contain_text("Everyone expected has arrived")
    expect(page.locator("#live-status")).to_have_text("1 of 1 arrived on Entrance")
    assert page.evaluate("window.__notReloaded") is True
    assert refused == []


def test_an_organizer_adds_a_dinner_list_and_reads_the_report_on_a_phone(new_page, scene):
    make_user("owner@example.org", role="owner", convening=scene.convening)
    page = new_page(**PHONE)
    refused = violations(page)
    sign_in(page, "owner@example.org")
    page.goto(scene.base)
    page.get_by_role("link", name="Lists and live numbers").click()
    assert axe_problems(page) == [] and overflow(page) <= 0
    page.get_by_role("link", name="Add a list for a gathering").click()
    assert axe_problems(page) == [] and overflow(page) <= 0
    page.get_by_label("Name").fill("Networking dinner")
    page.get_by_role("button", name="Add list").click()
    expect(page.locator("#checkin-lists")).to_contain_text("Networking dinner")
    page.get_by_role("navigation", name="Check-in").get_by_role("link", name="Attendance report").click()
    expect(page.locator("#report-expected")).to_have_text("1")
    assert axe_problems(page) == [] and overflow(page) <= 0
    assert refused == []
