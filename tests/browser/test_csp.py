"""A real Chromium enforces the content security policy: our pages break none of it, and still look right."""
from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from tests.factories import make_convening, make_host, make_registration, make_slot, make_ticket, make_user, make_visit
from tests.schedule_helpers import make_room, make_session

pytestmark = pytest.mark.browser

ROOMS = 8


@pytest.fixture
def scene(app):
    """A convening with eight rooms on its first day, a site visit, a registration, and an organizer."""
    convening = make_convening(name="Policy Convening", slug="csp-check",
                               starts_on=date(2027, 6, 8), ends_on=date(2027, 6, 10))
    ticket = make_ticket(convening, name="Delegate")
    rooms = [make_room(convening, f"Room {n}", 40, position=n) for n in range(ROOMS)]
    make_session(convening, "Opening keynote with a title long enough to wrap inside its cell", 0, "09:00", "10:00",
                 room=rooms[0], kind="keynote")
    visit = make_visit(make_host(convening, "City Hall"), make_slot(convening, "Tuesday morning", 9), 10)
    make_registration(convening, ticket, 1)
    make_user("organizer@example.org", role="organizer")
    return SimpleNamespace(admin=f"/admin/c/{convening.id}", roster=f"/admin/c/{convening.id}/visits/{visit.id}/roster")


def policy_violations(page) -> list[str]:
    """Chromium reports every refused inline style or script on the console; collect those reports."""
    seen: list[str] = []
    page.on("console", lambda message: seen.append(message.text) if "Content Security Policy" in message.text else None)
    return seen


def sign_in(page) -> None:
    page.goto("/admin/login")
    page.get_by_label("Email").fill("organizer@example.org")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Convenings")).to_be_visible()


def test_register_and_admin_pages_load_without_a_policy_violation(page, scene):
    violations = policy_violations(page)
    page.goto("/c/csp-check/register")
    expect(page.get_by_role("button", name="Register", exact=True)).to_be_visible()
    page.goto("/c/csp-check/register/group")
    rows = page.locator("[data-row]")
    expect(rows.first).to_be_visible()
    before = rows.count()
    page.get_by_role("button", name="Add another delegate").click()  # the group form's own script adds the row
    expect(rows).to_have_count(before + 1)
    sign_in(page)
    for path in [f"{scene.admin}/", f"{scene.admin}/registrations", f"{scene.admin}/schedule?day=2027-06-08",
                 f"{scene.admin}/visits/plan", f"{scene.admin}/visits/grid", scene.roster, f"{scene.admin}/print"]:
        response = page.goto(path)
        assert response.status == 200, path
        assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert violations == []

    # The listener does hear a violation when there is one: a style attribute is refused.
    with page.expect_console_message(lambda message: "Content Security Policy" in message.text):
        page.evaluate("document.body.setAttribute('style', 'outline: 9px solid red')")
    assert page.evaluate("getComputedStyle(document.body).outlineWidth") != "9px"


def test_the_program_grid_keeps_rooms_equal_and_at_least_150px_without_inline_style(new_page, scene):
    page = new_page(viewport={"width": 1280, "height": 900})
    sign_in(page)
    page.goto(f"{scene.admin}/schedule?day=2027-06-08")
    widths = page.locator("table.schedule-grid thead th").evaluate_all(
        "cells => cells.map(cell => cell.getBoundingClientRect().width)")
    assert len(widths) == ROOMS + 1
    rooms = widths[1:]
    assert min(rooms) >= 149 and max(rooms) - min(rooms) < 2  # equal columns, none squeezed below 150px
    wrapper = page.locator(".schedule-grid-wrap")
    assert wrapper.evaluate("el => el.scrollWidth > el.clientWidth")  # 8 rooms are wider than the page: it scrolls
    assert widths[0] < 100  # the time column takes none of the room columns' share


def test_the_roster_still_prints_as_a_sign_in_sheet(page, scene):
    sign_in(page)
    page.goto(scene.roster)
    links = page.locator("p.no-print")
    expect(links).to_be_visible()
    page.emulate_media(media="print")
    expect(links).to_be_hidden()
    assert page.locator("body").evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(255, 255, 255)"
    heading = page.locator("table.roster th").first
    assert heading.evaluate("el => getComputedStyle(el).borderTopStyle") == "solid"  # ruled for pen and ink
