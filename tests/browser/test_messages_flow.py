"""A real Chromium writes to one delegation in English and French, checks who it reaches, and sends it."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from convene.services import checkin
from tests.factories import make_convening, make_delegation, make_registration, make_ticket, make_user

pytestmark = pytest.mark.browser


def test_an_organizer_writes_to_the_maryland_delegation_who_has_not_arrived_in_english_and_french(page, app, outbox):
    convening = make_convening(name="Toronto Convening", languages=["en", "fr"], default_language="en")
    ticket = make_ticket(convening)
    maryland, ohio = make_delegation(convening, "Maryland"), make_delegation(convening, "Ohio")
    english = make_registration(convening, ticket, 1, given_name="Dana", delegation_id=maryland.id)
    french = make_registration(convening, ticket, 2, given_name="Aminata", delegation_id=maryland.id, language="fr")
    arrived = make_registration(convening, ticket, 4, given_name="Kofi", delegation_id=maryland.id)
    elsewhere = make_registration(convening, ticket, 3, given_name="Olu", delegation_id=ohio.id)
    assert checkin.check_in(checkin.main_list(convening.id), arrived.reference).ok
    make_user("organizer@example.org", role="organizer")

    page.goto("/admin/login")
    page.get_by_label("Email").fill("organizer@example.org")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"/admin/c/{convening.id}/")
    page.get_by_role("link", name="Messages").click()
    page.get_by_role("link", name="Write a message").click()
    page.get_by_label("Subject (English)").fill("Your bus leaves at 8, {given_name}")
    page.get_by_label("Message (English)").fill("Hello {given_name},\n\nThe bus leaves at **8:00**.")
    page.get_by_label("Subject (French)").fill("Votre bus part à 8 h, {given_name}")
    page.get_by_label("Message (French)").fill("Bonjour {given_name},\n\nLe bus part à **8 h**.")
    page.get_by_label("Maryland").check()
    page.get_by_label("Entrance: not arrived yet").check()
    page.get_by_role("button", name="Save and check recipients").click()

    expect(page.locator("#recipient-count")).to_have_text("2")
    expect(page.locator("#first-names")).to_contain_text("Dana")
    expect(page.locator("#first-names")).not_to_contain_text("Olu")
    expect(page.locator("#first-names")).not_to_contain_text("Kofi")
    page.get_by_label("As").select_option(label=f"Aminata {french.family_name} ({french.reference})")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#preview-subject")).to_have_text("Votre bus part à 8 h, Aminata")
    page.get_by_role("button", name="Send to 2 people").click()
    expect(page.locator(".flash").first).to_contain_text("on its way")
    for _ in range(40):
        if "Sent" in page.locator("#message-status").inner_text():
            break
        page.wait_for_timeout(250)
        page.reload()
    expect(page.locator("#message-status")).to_have_text("Sent")
    expect(page.locator("#message-counts")).to_contain_text("2 sent")
    [en_mail], [fr_mail] = outbox.to(english.email), outbox.to(french.email)
    assert en_mail["Subject"] == "Your bus leaves at 8, Dana"
    assert fr_mail["Subject"] == "Votre bus part à 8 h, Aminata" and "<strong>8 h</strong>" in outbox.html(fr_mail)
    assert "Questions? Write to" in outbox.text(en_mail)
    assert "Des questions ? Écrivez à" in outbox.text(fr_mail) and 'lang="fr"' in outbox.html(fr_mail)
    assert outbox.to(elsewhere.email) == [] and outbox.to(arrived.email) == []
