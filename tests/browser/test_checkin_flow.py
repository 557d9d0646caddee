"""A real Chromium at the door: a scanner typing into the box, a dropped connection, and a phone camera."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from convene.extensions import db
from convene.models.checkin import Checkin
from convene.services import checkin
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_accessibility import axe_problems, overflow
from tests.factories import make_convening, make_delegation, make_registration, make_ticket, make_user

pytestmark = pytest.mark.browser
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def scene(app):
    convening = make_convening(name="Welcoming Cities Summit")
    ticket = make_ticket(convening, name="Delegate")
    delegation = make_delegation(convening, "Maryland")
    ana = make_registration(convening, ticket, given_name="Ana", family_name="Müller", badge_name="Ani",
                            delegation_id=delegation.id, accessibility_needs=["step_free"])
    omar = make_registration(convening, ticket, given_name="Omar", family_name="Haddad", delegation_id=delegation.id)
    make_user("desk@example.org", role="desk", convening=convening)
    entrance = checkin.main_list(convening.id)
    return SimpleNamespace(convening=convening, ana=ana, omar=omar,
                           url=f"/admin/c/{convening.id}/checkin/{entrance.id}", list_id=entrance.id)


def sign_in(page, email: str = "desk@example.org") -> None:
    page.goto("/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Convenings")).to_be_visible()


def checked_in(list_id: int) -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Checkin).where(
        Checkin.list_id == list_id, Checkin.reverted_at.is_(None)))


def violations(page) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    return seen


def test_a_scanner_typing_into_the_box_checks_people_in_at_a_glance(new_page, scene):
    page = new_page(**PHONE)
    refused = violations(page)
    sign_in(page)
    page.goto(scene.url)
    box = page.get_by_label("Scan a badge, or type a reference or a name")
    expect(box).to_be_focused()
    answer = page.locator("#answer .answer-inner")
    # A USB or Bluetooth scanner is a keyboard: it types the code and Enter.
    page.keyboard.type(scene.ana.checkin_token + "\n")
    expect(answer).to_have_attribute("data-result", "checked_in")
    expect(answer).to_have_class("answer-inner answer-ok")
    expect(answer).to_contain_text("Ana Müller")
    expect(answer).to_contain_text("Step-free (wheelchair) access")
    expect(page.locator("#arrived")).to_have_text("1")
    expect(box).to_be_focused()
    expect(box).to_have_value("")
    page.keyboard.type(scene.ana.reference.lower() + "\n")
    expect(answer).to_have_attribute("data-result", "already")
    expect(answer).to_contain_text("by desk")
    # A name: the desk picks from the matches.
    page.keyboard.type("haddad\n")
    expect(answer).to_have_attribute("data-result", "matches")
    page.get_by_role("button", name="Omar Haddad").click()
    expect(answer).to_have_attribute("data-result", "checked_in")
    expect(answer).to_contain_text("Omar Haddad")
    expect(box).to_be_focused()
    assert axe_problems(page) == [] and overflow(page) <= 0  # with an answer and its links showing
    page.keyboard.type("nobody at all\n")
    expect(answer).to_have_attribute("data-result", "unknown")
    expect(page.locator("#answer")).to_have_attribute("aria-live", "assertive")
    assert checked_in(scene.list_id) == 2
    assert refused == []
    page.goto(f"/admin/c/{scene.convening.id}/checkin")
    assert axe_problems(page) == [] and overflow(page) <= 0


def test_without_javascript_the_form_posts_and_the_answer_page_comes_back(new_page, scene):
    page = new_page(java_script_enabled=False, **PHONE)
    sign_in(page)
    page.goto(scene.url)
    page.get_by_label("Scan a badge, or type a reference or a name").fill(scene.ana.reference)
    page.get_by_role("button", name="Check in").click()
    expect(page.locator("#answer .answer-inner")).to_have_attribute("data-result", "checked_in")
    expect(page.locator("#answer")).to_contain_text("Ana Müller")
    assert checked_in(scene.list_id) == 1


@pytest.mark.one_database
def test_scans_made_offline_are_sent_when_the_connection_returns_and_shown_once(new_page, scene):
    page = new_page(**PHONE)
    sign_in(page)
    page.goto(scene.url)
    expect(page.get_by_role("button", name="Scan with the camera")).to_be_visible()  # the script has run
    page.context.set_offline(True)
    for code in (scene.ana.checkin_token, scene.omar.reference):
        page.keyboard.type(code + "\n")
        expect(page.locator("#answer")).to_contain_text(f"“{code}” will be sent")
    expect(page.locator("#queue-status")).to_have_text(
        "2 scans are saved on this phone and will be sent when the connection returns.")
    assert checked_in(scene.list_id) == 0
    page.context.set_offline(False)
    late = page.locator("#late-results li")
    expect(late).to_have_count(2)
    expect(late.nth(0)).to_contain_text("Checked in: Ana Müller")
    expect(late.nth(1)).to_contain_text("Checked in: Omar Haddad")
    expect(page.locator("#queue")).to_be_hidden()
    expect(page.locator("#arrived")).to_have_text("2")
    page.wait_for_timeout(5500)  # one more retry round: nothing is sent or shown twice
    expect(late).to_have_count(2)
    assert checked_in(scene.list_id) == 2
    page.reload()
    expect(page.locator("#late-results li")).to_have_count(0)


def badge_video(registration, convening, folder: Path) -> Path:
    """A few seconds of 640×480 grayscale video (y4m) of the person's printed badge, as a phone camera sees it."""
    import pypdfium2 as pdfium
    import zxingcpp
    from PIL import Image

    from convene.printing import DEFAULT_LAYOUT, LAYOUTS
    from convene.printing.documents import render_badges
    from convene.services.printing import badge_data

    pdf = render_badges(badge_data(convening, [registration]), LAYOUTS[DEFAULT_LAYOUT])
    document = pdfium.PdfDocument(pdf)
    page = document[0].render(scale=3).to_pil().convert("L")
    document.close()
    [code] = zxingcpp.read_barcodes(page)
    assert code.text == registration.checkin_token
    xs = [p.x for p in (code.position.top_left, code.position.bottom_right)]
    ys = [p.y for p in (code.position.top_left, code.position.bottom_right)]
    side = max(xs) - min(xs)
    # The badge held up to the camera: the code and some of the badge around it, filling half the frame.
    crop = page.crop((min(xs) - side, min(ys) - side // 2, max(xs) + side, max(ys) + side // 2))
    frame = Image.new("L", (640, 480), 255)
    crop.thumbnail((600, 440))
    frame.paste(crop, ((640 - crop.width) // 2, (480 - crop.height) // 2))
    path = folder / "badge.y4m"
    chroma = bytes([128]) * (320 * 240)
    with path.open("wb") as video:
        video.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(30):
            video.write(b"FRAME\n" + frame.tobytes() + chroma + chroma)
    return path


@pytest.mark.one_database
def test_the_phone_camera_reads_a_printed_badge_and_checks_the_person_in(browser, live_server, scene, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM}")
    video = badge_video(scene.ana, scene.convening, tmp_path)
    camera_browser = browser.browser_type.launch(
        executable_path=str(CHROMIUM), headless=True,
        args=[*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
              f"--use-file-for-fake-video-capture={video}"])
    try:
        context = camera_browser.new_context(base_url=live_server, **PHONE)
        context.set_default_timeout(20_000)
        page = context.new_page()
        refused = violations(page)
        fetched: list[str] = []
        page.on("request", lambda request: fetched.append(request.url))
        sign_in(page)
        page.goto(scene.url)
        page.get_by_role("button", name="Scan with the camera").click()
        expect(page.locator("#camera-video")).to_be_visible()
        answer = page.locator("#answer .answer-inner")
        expect(answer).to_have_attribute("data-result", "checked_in")
        expect(answer).to_contain_text("Ana Müller")
        page.wait_for_timeout(1500)  # the badge stays in front of the camera: still one scan
        expect(answer).to_have_attribute("data-result", "checked_in")
        assert checked_in(scene.list_id) == 1
        assert refused == []
        # Chromium on Linux has no BarcodeDetector of its own: the polyfill read the badge, with its
        # WebAssembly reader from this site and nothing from anywhere else.
        assert f"{live_server}/static/vendor/barcode-detector/zxing_reader.wasm" in fetched
        assert all(url.startswith(live_server) for url in fetched), fetched
        context.close()
    finally:
        camera_browser.close()


@pytest.mark.one_database
def test_without_a_secure_address_the_page_says_why_the_camera_is_off(app, browser, live_server, scene):
    # 127.0.0.1 counts as secure; the same server under a LAN-style name over plain HTTP does not.
    app.config["TRUSTED_HOSTS"] = [*app.config["TRUSTED_HOSTS"], "desk.test"]
    port = live_server.rsplit(":", 1)[1]
    lan_browser = browser.browser_type.launch(
        executable_path=str(CHROMIUM), headless=True,
        args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP desk.test 127.0.0.1"])
    try:
        context = lan_browser.new_context(base_url=f"http://desk.test:{port}", **PHONE)
        context.set_default_timeout(10_000)
        page = context.new_page()
        sign_in(page)
        page.goto(scene.url)
        expect(page.locator("#camera-status")).to_contain_text("only on a secure (https://) address")
        expect(page.get_by_role("button", name="Scan with the camera")).to_be_hidden()
        page.keyboard.type(scene.ana.reference + "\n")  # the box still works
        expect(page.locator("#answer .answer-inner")).to_have_attribute("data-result", "checked_in")
        context.close()
    finally:
        lan_browser.close()
