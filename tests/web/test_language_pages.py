"""Organizer-written content in the reader's language on public pages, and the back office's language pages."""
from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from convene.extensions import db
from convene.models import Convening, ProgramSession, ProgramSettings, Question, Registration, TicketType, utcnow
from tests.factories import make_convening, make_question, make_registration, make_ticket, person
from tests.web.test_admin_convenings import convening_form, error_beside

CHOICES = ["Colleges", "Refugee strategies", "Pathways"]


def bilingual():
    convening = make_convening(
        name="Toronto Convening", description="Three days in Toronto.", languages=["en", "fr", "es"],
        interpretation_languages=["fr", "es"],
        translations={"fr": {"name": "Rencontre de Toronto", "description": "Trois jours à Toronto."}})
    ticket = make_ticket(convening, name="Delegate", description="Meals included.",
                         translations={"fr": {"name": "Délégué·e"}})
    question = make_question(convening, "Which working group?", "single_choice", choices=list(CHOICES),
                             help_text="Pick one.",
                             translations={"fr": {"label": "Quel groupe de travail ?",
                                                  "choices": ["Collèges", "Stratégies pour les réfugiés", ""]}})
    return convening, ticket, question


def registration_data(ticket, question, choice: str, **overrides) -> dict:
    data = {k: v for k, v in person(1).items() if not isinstance(v, list)}
    return {**data, "ticket_type_id": str(ticket.id), question.field_name: choice, **overrides}


# -- public pages ------------------------------------------------------------------------------------

def test_the_convening_page_in_french_shows_the_french_texts_and_falls_back_per_text(client):
    convening, ticket, _ = bilingual()
    page = client.get(f"/c/{convening.slug}/?lang=fr").text
    assert "Rencontre de Toronto" in page and "Trois jours à Toronto." in page
    assert "Délégué·e" in page
    assert "Meals included." in page  # not translated: the default text, never nothing
    assert "Toronto Convening" not in page
    spanish = client.get(f"/c/{convening.slug}/?lang=es").text
    assert "Toronto Convening" in spanish and "Rencontre" not in spanish


def test_the_form_in_french_shows_translated_labels_and_stores_the_default_choice(client):
    convening, ticket, question = bilingual()
    page = client.get(f"/c/{convening.slug}/register?lang=fr").text
    assert "Quel groupe de travail ?" in page and "Pick one." in page
    assert "Stratégies pour les réfugiés" in page and 'value="Refugee strategies"' in page
    assert "Pathways" in page  # its translation is blank: the default label shows
    response = client.post(f"/c/{convening.slug}/register?lang=fr",
                           data=registration_data(ticket, question, "Refugee strategies", interpretation_needs="fr"))
    assert response.status_code == 302
    registration = db.session.execute(sa.select(Registration)).scalar_one()
    assert registration.answer_for(question.id) == "Refugee strategies"
    assert registration.language == "fr" and registration.interpretation_needs == ["fr"]


def test_a_translated_label_typed_as_an_answer_is_refused(client):
    convening, ticket, question = bilingual()
    response = client.post(f"/c/{convening.slug}/register?lang=fr",
                           data=registration_data(ticket, question, "Collèges"))
    assert response.status_code == 200
    assert db.session.execute(sa.select(Registration)).first() is None


def test_the_program_and_a_session_page_show_translated_titles(client):
    convening, _, _ = bilingual()
    start = datetime.combine(convening.starts_on, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=15)
    session = ProgramSession(convening_id=convening.id, title="Opening plenary", kind="plenary", starts_at=start,
                             ends_at=start + timedelta(hours=1), description="Why we meet.",
                             translations={"fr": {"title": "Plénière d'ouverture"}})
    db.session.add_all([session, ProgramSettings(convening_id=convening.id, published_at=utcnow())])
    db.session.commit()
    program = client.get(f"/c/{convening.slug}/program?lang=fr").text
    assert html.unescape(program).count("Plénière d'ouverture") >= 1 and "Opening plenary" not in program
    detail = html.unescape(client.get(f"/c/{convening.slug}/program/{session.id}?lang=fr").text)
    assert "Plénière d'ouverture" in detail and "Why we meet." in detail
    calendar = client.get(f"/c/{convening.slug}/program.ics?lang=fr")
    assert calendar.status_code == 200
    assert "Plénière d'ouverture" in calendar.get_data(as_text=True).replace("\r\n ", "")


def test_the_interpretation_question_is_only_asked_when_the_convening_offers_some(client):
    convening, _, _ = bilingual()
    assert 'name="interpretation_needs"' in client.get(f"/c/{convening.slug}/register").text
    plain = make_convening()
    make_ticket(plain)
    assert 'name="interpretation_needs"' not in client.get(f"/c/{plain.slug}/register").text


# -- back office: settings ---------------------------------------------------------------------------

def test_the_organizer_enables_languages_and_picks_the_default_in_the_settings(organizer_client):
    convening = make_convening()
    response = organizer_client.post(f"/admin/c/{convening.id}/settings", data=convening_form(
        slug=convening.slug, languages=["fr", "ar"], default_language="fr", interpretation_languages=["es", "ar"]))
    assert response.status_code == 302
    db.session.expire_all()
    convening = db.session.get(Convening, convening.id)
    assert convening.languages == ["fr", "ar"] and convening.default_language == "fr"
    assert convening.interpretation_languages == ["es", "ar"]


def test_an_unknown_language_in_the_settings_is_refused_beside_its_field(organizer_client):
    convening = make_convening()
    response = organizer_client.post(f"/admin/c/{convening.id}/settings", data=convening_form(
        slug=convening.slug, languages=["en", "tlh"]))
    assert response.status_code == 200 and error_beside(response.text, "languages")
    db.session.expire_all()
    assert db.session.get(Convening, convening.id).languages == ["en"]


# -- back office: translations -----------------------------------------------------------------------

def test_the_translations_page_shows_each_text_beside_its_original(organizer_client):
    convening, ticket, question = bilingual()
    page = html.unescape(organizer_client.get(f"/admin/c/{convening.id}/translations?lang=fr").text)
    assert "Toronto Convening" in page and 'value="Rencontre de Toronto"' in page
    assert f'name="t-question-{question.id}-choices"' in page
    assert 'lang="fr"' in page
    missing_only = organizer_client.get(f"/admin/c/{convening.id}/translations?lang=fr&missing=1").text
    assert f'name="t-convening-{convening.id}-name"' not in missing_only  # translated already
    assert f'name="t-ticket_type-{ticket.id}-description"' in missing_only


def test_saving_translations_from_the_page(organizer_client):
    convening, ticket, _ = bilingual()
    response = organizer_client.post(f"/admin/c/{convening.id}/translations?lang=es", data={
        "lang": "es", f"t-ticket_type-{ticket.id}-name": "Delegado", f"t-convening-{convening.id}-name": "",
    })
    assert response.status_code == 302 and "lang=es" in response.headers["Location"]
    db.session.expire_all()
    assert db.session.get(TicketType, ticket.id).translations["es"] == {"name": "Delegado"}
    assert "saved" in organizer_client.get(response.headers["Location"]).text


def test_an_over_long_translation_is_refused_beside_its_field_and_nothing_is_saved(organizer_client):
    convening, ticket, _ = bilingual()
    field = f"t-ticket_type-{ticket.id}-name"
    response = organizer_client.post(f"/admin/c/{convening.id}/translations?lang=fr", data={
        "lang": "fr", field: "D" * 500, f"t-convening-{convening.id}-description": "Nouvelle description",
    })
    assert response.status_code == 400
    message = re.search(rf'<p class="error" id="{field}-error">(.*?)</p>', response.text)
    assert message and "500 characters" in html.unescape(message.group(1))
    assert 'value="' + "D" * 500 + '"' in response.text  # what was typed stays to be fixed
    db.session.expire_all()
    assert db.session.get(Convening, convening.id).translations["fr"]["description"] == "Trois jours à Toronto."
    assert db.session.get(TicketType, ticket.id).translations["fr"] == {"name": "Délégué·e"}


def test_an_unknown_or_disabled_language_changes_nothing(organizer_client):
    convening, ticket, _ = bilingual()
    for language in ("xx", "ar", "en"):
        response = organizer_client.post(f"/admin/c/{convening.id}/translations", data={
            "lang": language, f"t-ticket_type-{ticket.id}-name": "Changed"})
        assert response.status_code == 400
        assert "not enabled for this convening" in html.unescape(response.text)
    db.session.expire_all()
    assert db.session.get(TicketType, ticket.id).translations == {"fr": {"name": "Délégué·e"}}


def test_a_convening_in_one_language_points_to_the_settings(organizer_client):
    convening = make_convening()
    page = organizer_client.get(f"/admin/c/{convening.id}/translations").text
    assert "enable them in" in page and f"/admin/c/{convening.id}/settings" in page


def test_the_back_office_shows_questions_in_the_default_language(organizer_client):
    convening, ticket, question = bilingual()
    registration = make_registration(convening, ticket, 1, language="fr")
    page = organizer_client.get(f"/admin/c/{convening.id}/registrations/{registration.id}/edit",
                                headers={"Accept-Language": "fr"}).text
    assert "Which working group?" in page and "Quel groupe" not in page


# -- back office: interpretation ---------------------------------------------------------------------

def test_the_interpretation_page_counts_people_per_language(organizer_client):
    convening, ticket, _ = bilingual()
    make_registration(convening, ticket, 1, interpretation_needs=["fr"])
    make_registration(convening, ticket, 2, interpretation_needs=["fr", "es"])
    make_registration(convening, ticket, 3, accessibility_needs=["interpretation"])
    start = datetime.combine(convening.starts_on, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=15)
    db.session.add(ProgramSession(convening_id=convening.id, title="Opening plenary", kind="plenary",
                                  starts_at=start, ends_at=start + timedelta(hours=1), interpretation=["fr"]))
    db.session.commit()
    page = organizer_client.get(f"/admin/c/{convening.id}/interpretation").text
    overall = re.search(r'<table class="interpretation" id="interpretation-overall">(.*?)</table>', page, re.S).group(1)
    assert re.findall(r'<td class="number">(\d+)</td>', overall) == ["2", "1", "1"]
    sessions = re.search(r'<table class="interpretation" id="interpretation-sessions">(.*?)</table>', page, re.S)
    row = html.unescape(sessions.group(1))
    assert "Opening plenary" in row and "French" in row and "Not offered: Spanish" in row


def test_an_organizer_sets_a_persons_language_and_interpretation_and_sees_them(organizer_client):
    convening, ticket, question = bilingual()
    registration = make_registration(convening, ticket, 1)
    data = {k: v for k, v in person(1).items() if not isinstance(v, list)}
    response = organizer_client.post(
        f"/admin/c/{convening.id}/registrations/{registration.id}/edit",
        data={**data, "ticket_type_id": str(ticket.id), "role": "delegate", "delegation_id": "0",
              "language": "es", "interpretation_needs": ["es", "fr"]})
    assert response.status_code == 302
    db.session.expire_all()
    registration = db.session.get(Registration, registration.id)
    assert registration.language == "es" and registration.interpretation_needs == ["fr", "es"]
    page = organizer_client.get(f"/admin/c/{convening.id}/registrations/{registration.id}").text
    assert "<dd>Spanish</dd>" in page and "French; Spanish" in page
    refused = organizer_client.post(
        f"/admin/c/{convening.id}/registrations/{registration.id}/edit",
        data={**data, "ticket_type_id": str(ticket.id), "role": "delegate", "delegation_id": "0", "language": "ar"})
    assert refused.status_code == 400 and error_beside(refused.text, "language")
    db.session.expire_all()
    assert db.session.get(Registration, registration.id).language == "es"


def test_the_dashboard_counts_registrations_per_language_and_interpretation(organizer_client):
    convening, ticket, _ = bilingual()
    make_registration(convening, ticket, 1, language="fr", interpretation_needs=["fr"])
    make_registration(convening, ticket, 2, language="fr")
    make_registration(convening, ticket, 3, language="es", interpretation_needs=["es", "fr"])
    make_registration(convening, ticket, 4, language="es", status="cancelled", interpretation_needs=["es"])
    page = organizer_client.get(f"/admin/c/{convening.id}/").text
    card = re.search(r'<section class="card" id="languages">(.*?)</section>', page, re.S).group(1)
    counts = dict(re.findall(r'<th scope="row">(.*?)</th><td class="num">(\d+)</td>', card))
    assert counts == {"Registered in English": "0", "Registered in French": "2", "Registered in Spanish": "1",
                      "Need interpretation into French": "2", "Need interpretation into Spanish": "1"}
