"""Which language a page, an email or a document is in: the choice on the page, the registration's, the
browser's, the convening's; plain language links; right-to-left Arabic; later emails in the person's language."""
from __future__ import annotations

import io
import re

import pypdf
import sqlalchemy as sa

from convene.extensions import db
from convene.i18n import COOKIE
from convene.models import Registration, Status
from convene.services import registrations as service
from convene.services.tokens import manage_token
from tests.factories import make_convening, make_registration, make_ticket, person

ALL = ["en", "fr", "es", "ar"]


def four_languages(**overrides):
    return make_convening(languages=ALL, default_language="en", **overrides)


def page(client, url: str, **headers) -> str:
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def html_lang(text: str) -> tuple[str, str]:
    match = re.search(r'<html lang="(\w+)" dir="(\w+)">', text)
    return match.group(1), match.group(2)


def form_data(n: int, ticket, **overrides) -> dict:
    data = {k: v for k, v in person(n).items() if not isinstance(v, list)}
    data["ticket_type_id"] = str(ticket.id)
    data.update(overrides)
    return data


def test_the_browser_language_is_used_when_the_convening_offers_it(client):
    convening = four_languages()
    text = page(client, f"/c/{convening.slug}/", **{"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"})
    assert html_lang(text) == ("fr", "ltr")
    assert "Billets" in text and "Tickets" not in text


def test_a_language_the_convening_did_not_enable_falls_back_to_its_default(client):
    convening = make_convening(languages=["fr", "en"], default_language="fr")
    assert html_lang(page(client, f"/c/{convening.slug}/", **{"Accept-Language": "es"})) == ("fr", "ltr")
    assert html_lang(page(client, f"/c/{convening.slug}/?lang=ar")) == ("fr", "ltr")
    english_only = make_convening()
    text = page(client, f"/c/{english_only.slug}/", **{"Accept-Language": "ar"})
    assert html_lang(text) == ("en", "ltr") and 'class="language-switch"' not in text


def test_a_choice_on_the_page_beats_the_browser_and_is_remembered_in_a_cookie(client):
    convening = four_languages()
    response = client.get(f"/c/{convening.slug}/?lang=es", headers={"Accept-Language": "fr"})
    assert html_lang(response.get_data(as_text=True)) == ("es", "ltr")
    assert f"{COOKIE}=es" in response.headers["Set-Cookie"]
    # The next page, without ?lang=, stays in Spanish although the browser asks for French.
    text = page(client, f"/c/{convening.slug}/register", **{"Accept-Language": "fr"})
    assert html_lang(text) == ("es", "ltr") and "Inscribirse" in text


def test_every_attendee_page_links_to_itself_in_each_enabled_language_without_javascript(client):
    convening = make_convening(languages=["en", "fr", "ar"], default_language="en")
    text = page(client, f"/c/{convening.slug}/register?code=HELLO")
    switch = re.search(r'<nav class="language-switch"[^>]*>(.*?)</nav>', text, re.S).group(1)
    links = dict(re.findall(r'<a href="([^"]+)" lang="(\w+)"', switch))
    assert sorted(links.values()) == ["ar", "en", "fr"]  # Spanish is not enabled here
    assert "<script" not in switch and "onclick" not in switch
    assert 'lang="fr" hreflang="fr"' in switch and "Français" in switch and "العربية" in switch
    french = next(url for url, code in links.items() if code == "fr")
    assert "code=HELLO" in french  # the page keeps its own query
    text = page(client, french.replace("&amp;", "&"))
    assert html_lang(text) == ("fr", "ltr") and "<h1>S’inscrire</h1>" in text


def test_arabic_pages_are_right_to_left(client):
    convening = four_languages()
    make_ticket(convening)
    text = page(client, f"/c/{convening.slug}/register?lang=ar")
    assert html_lang(text) == ("ar", "rtl")
    assert "<h1>التسجيل</h1>" in text and "الاسم الأول" in text  # the heading and a form label


def test_registering_in_french_gives_a_french_confirmation_page_and_email(client, outbox):
    convening = four_languages(name="Welcoming Cities")
    ticket = make_ticket(convening)
    client.get(f"/c/{convening.slug}/register?lang=fr")
    response = client.post(f"/c/{convening.slug}/register", data=form_data(1, ticket), follow_redirects=True)
    text = response.get_data(as_text=True)
    assert html_lang(text) == ("fr", "ltr")
    assert "Vous êtes inscrit(e)" in text and "Votre référence" in text
    registration = db.session.execute(sa.select(Registration)).scalar_one()
    assert registration.language == "fr"
    mail = outbox.to("amina1@example.org")[-1]
    assert mail["Subject"].startswith("Vous êtes inscrit(e) à Welcoming Cities")
    body = outbox.text(mail)
    assert "Bonjour Amina1," in body and "Référence : " + registration.reference in body
    assert "Hello" not in body
    assert '<html lang="fr" dir="ltr">' in outbox.html(mail)


def test_a_form_refused_in_spanish_says_why_in_spanish(client):
    convening = four_languages()
    ticket = make_ticket(convening)
    response = client.post(f"/c/{convening.slug}/register?lang=es",
                           data=form_data(1, ticket, given_name="", email="not-an-address"))
    text = response.get_data(as_text=True)
    assert "Indique su nombre." in text and "Corrija los 2 campos indicados abajo" in text


def test_the_manage_page_speaks_the_registrations_language_before_the_browsers(client):
    convening = four_languages()
    ticket = make_ticket(convening)
    registration = make_registration(convening, ticket, 1, language="ar")
    url = f"/c/{convening.slug}/manage/{manage_token(registration)}"
    assert html_lang(page(client, url, **{"Accept-Language": "fr"})) == ("ar", "rtl")
    assert html_lang(page(client, url + "?lang=es", **{"Accept-Language": "fr"})) == ("es", "ltr")


def test_a_waitlist_offer_sent_from_the_back_office_is_in_the_registrants_language(organizer_client, outbox):
    convening = four_languages(capacity=1, name="Welcoming Cities")
    ticket = make_ticket(convening)
    first = service.register_attendee(convening.id, ticket.id, person(1))
    waiting = service.register_attendee(convening.id, ticket.id, {**person(2), "language": "es"}, join_waitlist=True)
    assert waiting.language == "es"
    response = organizer_client.post(f"/admin/c/{convening.id}/registrations/{first.id}/cancel",
                                     headers={"Accept-Language": "en"})
    assert response.status_code == 302
    assert db.session.get(Registration, waiting.id).status == Status.OFFERED
    offer = outbox.to("amina2@example.org")[-1]
    assert offer["Subject"] == "Tiene reservada una plaza en Welcoming Cities"
    assert "Hola, Amina2:" in outbox.text(offer) and "Buenas noticias" in outbox.text(offer)
    # The organizer's own view stays in English, and the person cancelled is written to in theirs.
    cancelled = outbox.to("amina1@example.org")[-1]
    assert "The organizers cancelled your registration" in outbox.text(cancelled)


def test_an_arabic_agenda_pdf_reads_back_in_arabic(client):
    convening = four_languages()
    ticket = make_ticket(convening)
    registration = make_registration(convening, ticket, 1, language="ar", given_name="أمينة", family_name="حسن")
    response = client.get(f"/c/{convening.slug}/manage/{manage_token(registration)}/agenda.pdf")
    assert response.status_code == 200
    reader = pypdf.PdfReader(io.BytesIO(response.data))
    text = "".join(p.extract_text() for p in reader.pages)
    assert "أمينة حسن" in text
    assert "لا يوجد شيء في هذا الجدول بعد" in text  # the agenda's own sentence, in Arabic
    assert str(reader.trailer["/Root"].get("/Lang")) == "ar"
