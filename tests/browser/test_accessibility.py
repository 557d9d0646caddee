"""axe-core in a real Chromium over the public pages on a phone and the back office on a laptop: no serious or
critical WCAG 2.1 AA violation; and the checks axe cannot make (error summary focus, no sideways scrolling)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from convene.extensions import db
from convene.models import Registration, TicketType
from convene.services import payments
from convene.services import registrations as registrations_service
from convene.services.demo import DEMO_ORGANIZER_EMAIL, DEMO_ORGANIZER_PASSWORD, DEMO_SLUG, OBSERVER_TICKET, load_demo
from convene.services.tokens import manage_token

pytestmark = pytest.mark.browser

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")  # axe-core 4.14.1, MPL-2.0
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1, "is_mobile": True, "has_touch": True}
SMALL_PHONE = {**PHONE, "viewport": {"width": 320, "height": 640}}
LAPTOP = {"viewport": {"width": 1366, "height": 900}}


@pytest.fixture
def demo(app):
    """The demo convening (300 people, invoices on, a paid early-bird ticket), a delegation's order, and tokens."""
    convening, _ = load_demo()
    observer = db.session.execute(sa.select(TicketType).where(
        TicketType.convening_id == convening.id, TicketType.name == OBSERVER_TICKET)).scalar_one()
    order = registrations_service.register_delegation(
        convening.id, {"name": "Lena Ortiz", "email": "lena.ortiz@example.org",
                       "organization": "Dayton Office of Economic and Workforce Development"},
        "ohio",  # one of the demo's delegations, matched whatever its case
        [{"given_name": "Maximiliano Alejandro", "family_name": "Fernández-Castellanos",
                          "email": f"observer{n}.with.a.long.address@dayton-workforce.example.org",
                          "organization": "Dayton Office of Economic and Workforce Development",
                          "ticket_type_id": observer.id} for n in range(2)],
        payment={"method": "invoice", "billing_address": "1 Main St\nDayton OH", "po_number": ""})
    someone = db.session.execute(sa.select(Registration).where(
        Registration.convening_id == convening.id, Registration.status == "confirmed")
        .order_by(Registration.id).limit(1)).scalar_one()
    return SimpleNamespace(
        slug=DEMO_SLUG, id=convening.id, order=f"/c/{DEMO_SLUG}/order/{payments.order_token(order)}",
        manage=f"/c/{DEMO_SLUG}/manage/{manage_token(someone)}", registration_id=someone.id)


def sign_in(page) -> None:
    page.goto("/admin/login")
    page.get_by_label("Email").fill(DEMO_ORGANIZER_EMAIL)
    page.get_by_label("Password").fill(DEMO_ORGANIZER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Convenings")).to_be_visible()


def axe_problems(page) -> list[str]:
    """Run axe-core on the page as it is now; the serious and critical violations, one line per node."""
    page.evaluate(AXE)  # evaluated, not a <script>: the page's CSP refuses inline scripts, as it should
    result = page.evaluate("options => axe.run(document, options)",
                           {"runOnly": {"type": "tag", "values": WCAG_AA}, "resultTypes": ["violations"]})
    return [f"{page.url} {v['id']} ({v['impact']}): {v['help']} at {json.dumps(node['target'])}"
            for v in result["violations"] if v["impact"] in ("serious", "critical") for node in v["nodes"]]


def overflow(page) -> int:
    """How many CSS pixels the page is wider than the screen (0 when nothing scrolls sideways).

    A mobile viewport widens itself to the content, so the page is measured against the screen's own width.
    """
    return page.evaluate("document.documentElement.scrollWidth") - page.viewport_size["width"]


def public_pages(demo) -> dict[str, str]:
    return {"home": "/", "convening": f"/c/{demo.slug}/", "register": f"/c/{demo.slug}/register",
            "delegation form": f"/c/{demo.slug}/register/group", "program": f"/c/{demo.slug}/program",
            "manage link": f"/c/{demo.slug}/manage-link", "manage": demo.manage, "delegation order": demo.order,
            "privacy notice": f"/c/{demo.slug}/privacy"}


def test_public_pages_on_a_phone_pass_axe_and_never_scroll_sideways(new_page, demo):
    page = new_page(**PHONE)
    problems, wide = [], {}
    for name, path in public_pages(demo).items():
        page.goto(path)
        problems += axe_problems(page)
        wide[name] = overflow(page)
    page.goto(f"/c/{demo.slug}/register")
    page.get_by_role("button", name="Register", exact=True).click()  # empty: every required field in error
    expect(page.locator("#error-summary")).to_be_visible()
    problems += axe_problems(page)
    wide["register with errors"] = overflow(page)
    page.goto(f"/c/{demo.slug}/register/group")
    page.get_by_role("button", name="Register the delegation").click()
    expect(page.locator("#error-summary")).to_be_visible()
    problems += axe_problems(page)
    wide["delegation form with errors"] = overflow(page)
    assert problems == []
    assert wide == dict.fromkeys(wide, 0)


def test_public_pages_reflow_at_320_pixels(new_page, demo):
    """WCAG 1.4.10: at 320 CSS pixels nothing scrolls sideways; the order's table becomes one block a person."""
    page = new_page(**SMALL_PHONE)
    wide = {}
    for name, path in public_pages(demo).items():
        page.goto(path)
        wide[name] = overflow(page)
    assert wide == dict.fromkeys(wide, 0)
    page.goto(demo.order)
    first = page.locator("#order-registrations tbody tr").first
    expect(first.locator("td[data-label=Email]")).to_contain_text("observer0.with.a.long.address@")
    cells = first.locator("td").evaluate_all("cells => cells.map(c => Math.round(c.getBoundingClientRect().left))")
    assert len(set(cells)) == 1  # stacked: every cell starts at the same left edge


@pytest.mark.parametrize("screen", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_back_office_pages_pass_axe(new_page, demo, screen):
    """On a phone every wide table scrolls in its frame, which must then take the keyboard's focus."""
    page = new_page(**screen)
    sign_in(page)
    admin = f"/admin/c/{demo.id}"
    problems = []
    for path in ["/admin/", f"{admin}/", f"{admin}/registrations", f"{admin}/registrations/{demo.registration_id}",
                 f"{admin}/visits", f"{admin}/schedule", f"{admin}/print", f"{admin}/payments", f"{admin}/privacy",
                 f"{admin}/privacy/erase", f"{admin}/messages", f"{admin}/messages/new"]:
        page.goto(path)
        problems += axe_problems(page)
    assert problems == []
    header_email = page.locator(".site-header .muted")  # 2.64:1 on the dark header before
    expect(header_email).to_contain_text(DEMO_ORGANIZER_EMAIL)


def test_dashboard_on_a_phone_scrolls_its_table_by_keyboard_not_the_page(new_page, demo):
    page = new_page(**PHONE)
    sign_in(page)
    page.goto("/admin/")
    assert overflow(page) == 0  # a visually hidden header no longer escapes its scrolling frame
    convenings = page.get_by_role("region", name="Convenings")  # too wide: a11y.js makes its frame focusable
    expect(convenings).to_have_attribute("tabindex", "0")
    page.goto(f"/admin/c/{demo.id}/")
    assert overflow(page) == 0
    frame = page.get_by_role("region", name="By ticket type")
    assert frame.evaluate("f => f.scrollWidth > f.clientWidth")  # the table is wider than the phone...
    frame.focus()
    expect(frame).to_be_focused()  # ...so its frame takes the focus, and the arrow keys scroll it
    for _ in range(20):
        page.keyboard.press("ArrowRight")
        if frame.evaluate("f => f.scrollLeft") > 0:
            break
        page.wait_for_timeout(100)
    assert frame.evaluate("f => f.scrollLeft") > 0
    assert axe_problems(page) == []


def test_failed_save_on_the_manage_page_lands_on_the_error_summary(new_page, demo):
    page = new_page(**PHONE)
    page.goto(demo.manage)
    page.get_by_label("Given name", exact=True).fill("")
    page.get_by_label("Email", exact=True).fill("not an email")
    page.get_by_role("button", name="Save changes").click()

    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()  # the script took the focus there, which scrolled it into view
    expect(summary).to_be_in_viewport()
    expect(summary.get_by_role("heading")).to_have_text("Please correct the 2 fields marked below")
    links = summary.get_by_role("link")
    expect(links).to_have_text(["Enter your given name.", "Enter an email address like name@example.org."])
    links.nth(1).click()
    expect(page.get_by_label("Email", exact=True)).to_be_focused()
    expect(page.get_by_label("Email", exact=True)).to_be_in_viewport()


def test_error_summary_is_reached_without_javascript(new_page, demo):
    page = new_page(**PHONE, java_script_enabled=False)
    page.goto(demo.manage)
    page.get_by_label("Given name", exact=True).fill("")
    page.get_by_role("button", name="Save changes").click()
    notice = page.locator("#not-saved")
    expect(notice).to_be_in_viewport()  # the first answer comes back at the top, which links down to the summary
    notice.get_by_role("link", name="See what to correct").click()
    expect(page.locator("#error-summary")).to_be_in_viewport()
    page.get_by_role("button", name="Save changes").click()  # a re-shown form posts to its own summary
    assert page.url.endswith("#error-summary")
    expect(page.locator("#error-summary")).to_be_in_viewport()  # the browser scrolled to it: 7,000 px down
    expect(notice).not_to_be_in_viewport()


def test_delegation_form_without_javascript_has_no_dead_buttons(new_page, demo):
    page = new_page(**PHONE, java_script_enabled=False)
    page.goto(f"/c/{demo.slug}/register/group")
    rows = page.locator("[data-row]")
    expect(rows).to_have_count(3)
    expect(page.get_by_role("button", name="Remove this delegate")).to_have_count(0)  # hidden means hidden
    expect(page.locator("#ticket-prices")).to_contain_text("CA$295.00 (early-bird price until")
    page.get_by_label("Your name").fill("Lena Ortiz")
    page.get_by_role("button", name="Add another delegate").click()  # posts the form: the server adds the row
    expect(rows).to_have_count(4)
    assert page.url.endswith("#delegate-rows")
    expect(page.get_by_label("Your name")).to_have_value("Lena Ortiz")


def test_ticket_choice_shows_the_whole_price_on_a_phone(new_page, demo):
    page = new_page(**PHONE)
    page.goto(f"/c/{demo.slug}/register")
    observer = page.get_by_role("radio", name="Observer (partner agencies)")
    expect(observer).to_be_visible()
    label = page.locator("label.choice-card", has=observer)
    expect(label).to_contain_text("CA$295.00 (early-bird price until")
    assert label.evaluate("l => l.scrollWidth <= l.clientWidth && l.getBoundingClientRect().right <= innerWidth")
    observer.check()
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.get_by_role("radio", name="Observer (partner agencies)")).to_be_checked()  # kept on re-show


def test_skip_link_takes_the_keyboard_to_the_content(new_page, demo):
    page = new_page(**PHONE)
    page.goto(f"/c/{demo.slug}/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
