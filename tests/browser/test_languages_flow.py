"""A real Chromium registers in each of the four languages: the switch, the form, its errors, the confirmation and
the email all speak that language; the Arabic pages are right-to-left and pass axe-core (WCAG 2.1 AA)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from convene.extensions import db
from convene.models import Registration
from tests.browser.test_accessibility import axe_problems
from tests.factories import make_convening, make_ticket

pytestmark = pytest.mark.browser

WORDS = {
    "en": dict(name="English", register="Register", given="Given name", family="Family name", email="Email",
               organization="Organization", summary="Please correct", given_error="Enter your given name.",
               done="You are registered", subject="You are registered for", hello="Hello Rania,"),
    "fr": dict(name="Français", register="S’inscrire", given="Prénom", family="Nom de famille", email="Courriel",
               organization="Organisation", summary="Veuillez corriger", given_error="Saisissez votre prénom.",
               done="Vous êtes inscrit(e)", subject="Vous êtes inscrit(e) à", hello="Bonjour Rania,"),
    "es": dict(name="Español", register="Inscribirse", given="Nombre", family="Apellidos", email="Correo electrónico",
               organization="Organización", summary="Corrija", given_error="Indique su nombre.",
               done="Está inscrito/a", subject="Está inscrito/a en", hello="Hola, Rania:"),
    "ar": dict(name="العربية", register="التسجيل", given="الاسم الأول", family="اسم العائلة", email="البريد الإلكتروني",
               organization="المؤسسة", summary="يُرجى تصحيح", given_error="أدخل اسمك الأول.",
               done="تم تسجيلك", subject="تم تسجيلك في", hello="مرحبًا Rania،"),
}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1, "is_mobile": True, "has_touch": True}


@pytest.fixture
def convening(app):
    convening = make_convening(name="Welcoming Cities", slug="four-languages", languages=list(WORDS),
                               default_language="en")
    make_ticket(convening, name="Delegate", capacity=40)
    return convening


@pytest.mark.parametrize("lang", list(WORDS))
def test_registering_in_each_language(new_page, convening, outbox, lang):
    words = WORDS[lang]
    # The switch and the form work without JavaScript; axe-core needs it, so the Arabic run keeps it on.
    page = new_page(java_script_enabled=lang == "ar", **PHONE)
    page.goto(f"/c/{convening.slug}/")
    page.locator(".language-switch").get_by_role("link", name=words["name"]).click()
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("html")).to_have_attribute("dir", "rtl" if lang == "ar" else "ltr")
    page.get_by_role("link", name=words["register"], exact=True).first.click()

    page.get_by_role("button", name=words["register"], exact=True).click()
    expect(page.locator("#error-summary")).to_contain_text(words["summary"])
    expect(page.locator("#given_name-error")).to_have_text(words["given_error"])
    if lang == "ar":
        assert axe_problems(page) == []

    page.get_by_label(words["given"], exact=True).fill("Rania")
    page.get_by_label(words["family"], exact=True).fill("Haddad")
    page.get_by_label(words["email"], exact=True).fill(f"rania.{lang}@example.org")
    page.get_by_label(words["organization"], exact=True).fill("City of Dearborn")
    page.get_by_role("button", name=words["register"], exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(words["done"])
    if lang == "ar":
        assert axe_problems(page) == []

    db.session.rollback()
    stored = db.session.execute(sa.select(Registration).where(Registration.email == f"rania.{lang}@example.org"))
    assert stored.scalar_one().language == lang
    mail = outbox.to(f"rania.{lang}@example.org")[-1]
    assert mail["Subject"].startswith(words["subject"])
    assert outbox.text(mail).startswith(words["hello"])
