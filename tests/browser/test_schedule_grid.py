"""A real Chromium uses the program grid: add a session from an empty cell, meet a refused clash, fit a phone."""
from __future__ import annotations

import re
from datetime import date

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from convene.extensions import db
from convene.models import ProgramSession
from tests.factories import make_convening, make_user
from tests.schedule_helpers import local, make_room, make_session

pytestmark = pytest.mark.browser


@pytest.fixture
def convening(app):
    convening = make_convening(name="Toronto Convening", slug="browser-program",
                               starts_on=date(2027, 6, 8), ends_on=date(2027, 6, 10))
    hall, salon = make_room(convening, "Great Hall", 150, position=0), make_room(convening, "Salon A", 20, position=1)
    make_room(convening, "Library", 14, accessible=False, position=2)
    make_session(convening, "Opening keynote", 0, "17:00", "18:00", room=hall, kind="keynote")
    make_session(convening, "Welcome coffee", 0, "16:00", "17:00", room=salon, kind="networking")
    make_user("organizer@example.org", role="organizer")
    return convening


def sign_in(page) -> None:
    page.goto("/admin/login")
    page.get_by_label("Email").fill("organizer@example.org")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Convenings")).to_be_visible()


def test_the_grid_adds_a_session_from_an_empty_cell_and_refuses_a_double_booking(page, convening):
    sign_in(page)
    page.goto(f"/admin/c/{convening.id}/schedule?day=2027-06-08")
    grid = page.get_by_role("table", name=re.compile("Tuesday 08 June 2027"))
    expect(grid.get_by_role("columnheader")).to_have_text(["Time", re.compile("Great Hall"), re.compile("Salon A"),
                                                           re.compile("Library")])
    expect(grid.get_by_role("rowheader")).to_have_text(["16:00", "17:00"])
    expect(grid.locator("td.slot", has_text="Opening keynote")).to_be_visible()

    # The empty Library cell at 17:00 opens the form with the room and the start filled in.
    grid.get_by_role("link", name="Add a session at 17:00 in Library").click()
    expect(page.get_by_role("heading", name="New session")).to_be_visible()
    expect(page.get_by_label("Starts")).to_have_value("2027-06-08T17:00")
    expect(page.get_by_label("Room", exact=True)).to_have_value(re.compile(r"\d+"))
    page.get_by_label("Title").fill("Communication and Media Strategy")
    page.get_by_label("Kind").select_option(label="Roundtable")
    page.get_by_label("Ends").fill("2027-06-08T18:30")
    page.get_by_role("button", name="Add session").click()

    expect(page).to_have_url(re.compile(r"/schedule\?day=2027-06-08$"))
    expect(page.get_by_text("Communication and Media Strategy is added to the program.")).to_be_visible()
    grid = page.get_by_role("table", name=re.compile("Tuesday 08 June 2027"))
    expect(grid.get_by_role("rowheader")).to_have_text(["16:00", "17:00", "18:00"])
    cell = grid.locator("td.slot", has_text="Communication and Media Strategy")
    expect(cell).to_have_attribute("rowspan", "2")

    # Moving it into the Great Hall at the keynote's time is refused beside the room.
    cell.get_by_role("link", name="Move").click()
    page.get_by_label("Room").select_option(label="Great Hall (150 seats)")
    page.get_by_role("button", name="Move session").click()
    expect(page.locator(".has-error #room_id-error")).to_contain_text("Great Hall is booked for both")
    db.session.rollback()
    moved = db.session.execute(
        sa.select(ProgramSession).where(ProgramSession.title == "Communication and Media Strategy")).scalar_one()
    assert moved.starts_at == local(convening, 0, "17:00") and moved.room.name == "Library"


def test_the_grid_fits_a_phone_screen_by_scrolling_sideways(new_page, convening):
    page = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    sign_in(page)
    page.goto(f"/admin/c/{convening.id}/schedule?day=2027-06-08")
    expect(page.get_by_role("table")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    wrapper = page.locator(".schedule-grid-wrap")
    assert wrapper.evaluate("el => el.scrollWidth > el.clientWidth")  # the table scrolls inside its box
