"""Organizer-written content in several languages, and interpretation: the services against the database."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db
from convene.languages import choice_label, localized, localized_choices
from convene.models import AuditEntry, Convening, ProgramSession, Question, Registration, SessionSignup, TicketType
from convene.services import convenings as convening_service
from convene.services import editions
from convene.services import languages as service
from convene.services import registrations as registrations_service
from convene.services import schedule as schedule_service
from tests.factories import (make_convening, make_host, make_question, make_registration, make_slot, make_ticket,
                             make_visit, person)

CHOICES = ["Colleges", "Refugee strategies", "Pathways"]


def bilingual(**overrides) -> tuple[Convening, TicketType, Question]:
    values = dict(name="Toronto Convening", description="Three days in Toronto.", languages=["en", "fr", "es"],
                  default_language="en", interpretation_languages=["fr", "es", "ar"],
                  translations={"fr": {"name": "Rencontre de Toronto"}})
    convening = make_convening(**{**values, **overrides})
    ticket = make_ticket(convening, name="Delegate", description="Meals included.",
                         translations={"fr": {"name": "Délégué·e", "description": "   "}})
    question = make_question(convening, "Which working group?", "single_choice", choices=list(CHOICES),
                             translations={"fr": {"label": "Quel groupe de travail ?",
                                                  "choices": ["Collèges", "", "Parcours"]}})
    return convening, ticket, question


# -- falling back ------------------------------------------------------------------------------------

def test_a_translation_shows_in_its_language_and_the_default_text_everywhere_else(app):
    convening, ticket, _ = bilingual()
    assert localized(convening, "name", "fr") == "Rencontre de Toronto"
    assert localized(convening, "name", "en") == "Toronto Convening"
    assert localized(convening, "name", "es") == "Toronto Convening"  # enabled, not translated yet
    assert localized(convening, "description", "fr") == "Three days in Toronto."
    assert localized(ticket, "name", "fr") == "Délégué·e"


def test_a_blank_translation_never_replaces_the_text_with_nothing(app):
    _, ticket, _ = bilingual()
    assert localized(ticket, "description", "fr") == "Meals included."


def test_a_language_the_convening_did_not_enable_shows_the_default_even_when_translated(app):
    convening, _, _ = bilingual()
    convening.translations = {"fr": {"name": "Rencontre"}, "ar": {"name": "ملتقى تورونتو"}}
    db.session.commit()
    assert localized(convening, "name", "ar") == "Toronto Convening"
    convening.languages = ["en"]
    db.session.commit()
    assert localized(convening, "name", "fr") == "Toronto Convening"


def test_another_default_language_is_what_untranslated_languages_fall_back_to(app):
    convening = make_convening(name="Rencontre de Montréal", languages=["en", "fr"], default_language="fr",
                               translations={"en": {"name": "Montreal Convening"}})
    assert localized(convening, "name", "en") == "Montreal Convening"
    assert localized(convening, "name", "fr") == "Rencontre de Montréal"
    assert localized(convening, "name", "es") == "Rencontre de Montréal"


def test_choices_keep_their_default_value_and_show_a_translated_label_position_for_position(app):
    _, _, question = bilingual()
    assert localized_choices(question, "fr") == [
        ("Colleges", "Collèges"), ("Refugee strategies", "Refugee strategies"), ("Pathways", "Parcours")]
    assert localized_choices(question, "en") == [(c, c) for c in CHOICES]
    assert choice_label(question, "Pathways", "fr") == "Parcours"
    assert choice_label(question, "A choice since removed", "fr") == "A choice since removed"


# -- registering -------------------------------------------------------------------------------------

def test_registration_keeps_the_language_it_was_made_in_and_only_offered_interpretation(app):
    convening, ticket, _ = bilingual()
    registration = registrations_service.register_attendee(
        convening.id, ticket.id, {**person(1), "language": "fr", "interpretation_needs": ["ar", "xx", "fr"]})
    assert registration.language == "fr"
    assert registration.interpretation_needs == ["fr", "ar"]  # the convening's order; unknown codes dropped
    other = registrations_service.register_attendee(convening.id, ticket.id, {**person(2), "language": "ar"})
    assert other.language == "en"  # Arabic is not enabled: the convening's default


def test_updating_details_without_a_language_keeps_the_stored_one(app):
    convening, ticket, _ = bilingual()
    registration = registrations_service.register_attendee(convening.id, ticket.id, {**person(1), "language": "es"})
    registrations_service.update_registration(registration.id, {"organization": "Another org"})
    assert db.session.get(Registration, registration.id).language == "es"


# -- the convening's settings ------------------------------------------------------------------------

def test_settings_keep_the_default_among_the_enabled_languages_in_a_fixed_order(app):
    convening = make_convening()
    convening_service.update_convening(convening.id, {"languages": ["ar", "fr"], "default_language": "fr",
                                                      "interpretation_languages": ["es", "ti"]})
    convening = db.session.get(Convening, convening.id)
    assert convening.languages == ["fr", "ar"] and convening.default_language == "fr"
    assert convening.interpretation_languages == ["es", "ti"]


@pytest.mark.parametrize("change, field", [
    ({"languages": ["en", "de"]}, "languages"),
    ({"default_language": "de"}, "default_language"),
    ({"interpretation_languages": ["klingon"]}, "interpretation_languages"),
])
def test_settings_refuse_an_unknown_language_beside_its_field_and_change_nothing(app, change, field):
    convening = make_convening()
    with pytest.raises(ConveneError) as refused:
        convening_service.update_convening(convening.id, change)
    assert refused.value.field == field
    db.session.rollback()
    convening = db.session.get(Convening, convening.id)
    assert convening.languages == ["en"] and convening.default_language == "en"
    assert convening.interpretation_languages == []


# -- the translations page's service -----------------------------------------------------------------

def test_the_sheet_lists_every_text_beside_its_translation_and_counts_what_is_missing(app):
    convening, ticket, question = bilingual()
    host = make_host(convening, "Magnet", description="A matching platform.")
    slot = make_slot(convening, "Morning", 9)
    make_visit(host, slot, 10, meeting_point="Lobby")
    sheet = {s.key: s for s in service.translation_sheet(convening, "fr")}
    assert list(sheet) == ["convening", "ticket_type", "question", "host_organization", "site_visit"]
    rows = {f.name: f for s in sheet.values() for item in s.items for f in item.fields}
    assert rows[f"t-convening-{convening.id}-name"].translated == "Rencontre de Toronto"
    assert rows[f"t-question-{question.id}-choices"].default == "Colleges\nRefugee strategies\nPathways"
    assert rows[f"t-ticket_type-{ticket.id}-description"].missing  # a blank translation is missing
    counts = service.missing_counts(convening)
    assert set(counts) == {"fr", "es"} and counts["fr"] < counts["es"]


def test_saving_writes_one_language_and_leaves_the_others_alone(app):
    convening, ticket, question = bilingual()
    ticket.translations = {**ticket.translations, "es": {"name": "Delegado"}}
    db.session.commit()
    changed = service.save_translations(convening.id, "fr", {
        f"t-convening-{convening.id}-description": "Trois jours à Toronto.\r\n\r\nBienvenue.",
        f"t-ticket_type-{ticket.id}-name": "  ",  # emptied: the translation goes
        f"t-question-{question.id}-choices": "Collèges\nStratégies pour les réfugiés\n",
        f"t-question-{question.id}-help_text": "Un seul choix.",
    })
    assert changed == 3
    db.session.expire_all()
    convening = db.session.get(Convening, convening.id)
    assert convening.translations["fr"] == {"name": "Rencontre de Toronto",
                                            "description": "Trois jours à Toronto.\n\nBienvenue."}
    ticket = db.session.get(TicketType, ticket.id)
    assert ticket.translations["es"] == {"name": "Delegado"} and "name" not in ticket.translations["fr"]
    question = db.session.get(Question, question.id)
    assert question.translations["fr"]["choices"] == ["Collèges", "Stratégies pour les réfugiés", ""]
    assert localized_choices(question, "fr")[2] == ("Pathways", "Pathways")
    logged = db.session.execute(sa.select(AuditEntry).where(AuditEntry.convening_id == convening.id)).scalars().all()
    assert any(entry.object_type == "ticket_type" for entry in logged)


def test_saving_the_same_texts_again_changes_nothing(app):
    convening, _, _ = bilingual()
    assert service.save_translations(convening.id, "fr", {
        f"t-convening-{convening.id}-name": "Rencontre de Toronto"}) == 0


@pytest.mark.parametrize("language", ["ar", "en", "de", ""])
def test_a_language_that_is_not_translated_into_is_refused(app, language):
    convening, _, _ = bilingual()
    with pytest.raises(ConveneError) as refused:
        service.save_translations(convening.id, language, {f"t-convening-{convening.id}-name": "X"})
    assert refused.value.code == "translation_language_not_enabled"
    db.session.rollback()
    assert db.session.get(Convening, convening.id).translations == {"fr": {"name": "Rencontre de Toronto"}}


def test_one_text_too_long_refuses_the_whole_save_with_a_problem_beside_each_field(app):
    convening, ticket, question = bilingual()
    name_field, choices_field = f"t-ticket_type-{ticket.id}-name", f"t-question-{question.id}-choices"
    with pytest.raises(ConveneError) as refused:
        service.save_translations(convening.id, "fr", {
            f"t-convening-{convening.id}-description": "Saved only if everything fits.",
            name_field: "x" * 121,
            choices_field: "One\nTwo\nThree\nFour",
        })
    problems = {p.field: p for p in refused.value.details["problems"]}
    assert set(problems) == {name_field, choices_field}
    assert problems[name_field].code == "translation_too_long" and "121" in problems[name_field].message
    assert problems[choices_field].code == "translation_choices_count" and "3 lines" in problems[choices_field].message
    db.session.rollback()
    assert "description" not in db.session.get(Convening, convening.id).translations["fr"]


# -- interpretation ----------------------------------------------------------------------------------

def interpretation_scene():
    convening, ticket, _ = bilingual()
    people = [make_registration(convening, ticket, n, interpretation_needs=needs)
              for n, needs in enumerate((["fr"], ["fr", "es"], ["ar"], []), start=1)]
    make_registration(convening, ticket, 9, status="cancelled", interpretation_needs=["fr"])
    make_registration(convening, ticket, 10, accessibility_needs=["interpretation"])
    start = datetime.combine(convening.starts_on, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=15)
    plenary = ProgramSession(convening_id=convening.id, title="Opening plenary", kind="plenary", starts_at=start,
                             ends_at=start + timedelta(hours=1), interpretation=["fr", "es"])
    roundtable = ProgramSession(convening_id=convening.id, title="Mentoring", kind="roundtable",
                                starts_at=start + timedelta(hours=2), ends_at=start + timedelta(hours=3),
                                signup_required=True, interpretation=["fr"])
    dinner = ProgramSession(convening_id=convening.id, title="Dinner", kind="meal",
                            starts_at=start + timedelta(hours=4), ends_at=start + timedelta(hours=5))
    db.session.add_all([plenary, roundtable, dinner])
    db.session.flush()
    db.session.add_all([SessionSignup(session_id=roundtable.id, registration_id=people[1].id),
                        SessionSignup(session_id=roundtable.id, registration_id=people[2].id)])
    db.session.commit()
    return convening, people, plenary, roundtable


def test_interpretation_counts_people_holding_a_seat_overall_per_session_and_per_site_visit(app):
    convening, people, plenary, roundtable = interpretation_scene()
    host = make_host(convening, "Magnet")
    visit = make_visit(host, make_slot(convening, "Morning", 9), 10)
    from convene.models import VisitAssignment

    db.session.add(VisitAssignment(registration_id=people[0].id, slot_id=visit.slot_id, site_visit_id=visit.id))
    db.session.commit()
    report = service.interpretation_report(db.session.get(Convening, convening.id))
    assert report.languages == ["fr", "es", "ar"]
    assert report.overall == {"fr": 2, "es": 1, "ar": 1}  # the cancelled registration is not counted
    assert report.sign_language == 1
    sessions = {row.title.split(" · ")[1]: row for row in report.sessions}
    assert sessions["Opening plenary"].counts == {"fr": 2, "es": 1, "ar": 1}
    assert sessions["Opening plenary"].unmet == ["ar"]
    assert sessions["Mentoring"].counts == {"fr": 1, "es": 1, "ar": 1}
    assert sessions["Mentoring"].unmet == ["es", "ar"]
    assert report.visits[0].counts == {"fr": 1, "es": 0, "ar": 0}


def test_the_conflict_finder_warns_about_interpretation_a_session_does_not_offer(app):
    convening, people, plenary, roundtable = interpretation_scene()
    for p in people:  # the finder looks at confirmed people only; make_registration confirms them
        assert p.status == "confirmed"
    found = [c for c in schedule_service.program_conflicts(db.session.get(Convening, convening.id))
             if c.kind == "interpretation_missing"]
    by_session = {(c.session_ids[0], c.key[-1]): c for c in found}
    assert set(by_session) == {(plenary.id, ("ar",)), (roundtable.id, ("es",)), (roundtable.id, ("ar",))}
    assert all(not c.blocking for c in found)
    assert "Arabic" in by_session[(plenary.id, ("ar",))].message
    assert people[2].given_name in by_session[(plenary.id, ("ar",))].message


def test_a_session_offering_an_unknown_interpretation_language_is_refused(app):
    convening, _, plenary, _ = interpretation_scene()
    data = schedule_service.session_data(plenary)
    with pytest.raises(ConveneError) as refused:
        schedule_service.update_session(plenary.id, {**data, "interpretation": ["fr", "elvish"]})
    assert any(p.field == "interpretation" for p in refused.value.details.get("problems", [refused.value]))
    db.session.rollback()
    assert db.session.get(ProgramSession, plenary.id).interpretation == ["fr", "es"]


# -- a new edition ----------------------------------------------------------------------------------

def test_a_new_edition_keeps_languages_translations_and_interpretation(app):
    convening, ticket, question = bilingual(name="Toronto Convening 2027",
                                            translations={"fr": {"name": "Rencontre de Toronto 2027",
                                                                 "description": "Trois jours."}})
    interpretation_scene_session = ProgramSession(
        convening_id=convening.id, title="Plenary", kind="plenary", interpretation=["fr"],
        translations={"fr": {"title": "Plénière"}},
        starts_at=datetime.combine(convening.starts_on, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=15),
        ends_at=datetime.combine(convening.starts_on, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=16))
    db.session.add(interpretation_scene_session)
    db.session.commit()
    starts_on = date(convening.starts_on.year + 1, convening.starts_on.month, 1)
    copy = editions.copy_convening(convening.id, name="Toronto Convening 2028", slug="toronto-2028",
                                   starts_on=starts_on)
    assert copy.languages == ["en", "fr", "es"] and copy.default_language == "en"
    assert copy.interpretation_languages == ["fr", "es", "ar"]
    assert copy.translations == {"fr": {"name": "Rencontre de Toronto 2028", "description": "Trois jours."}}
    copied_question = db.session.execute(sa.select(Question).where(Question.convening_id == copy.id)).scalar_one()
    assert copied_question.translations == question.translations
    copied_session = db.session.execute(
        sa.select(ProgramSession).where(ProgramSession.convening_id == copy.id)).scalar_one()
    assert copied_session.translations == {"fr": {"title": "Plénière"}} and copied_session.interpretation == ["fr"]


def test_a_new_edition_with_a_new_name_drops_the_old_translated_name(app):
    convening, _, _ = bilingual()
    copy = editions.copy_convening(convening.id, name="Newcomer Skills Forum", slug="forum",
                                   starts_on=convening.starts_on + timedelta(days=364))
    assert "name" not in copy.translations.get("fr", {})
    assert localized(copy, "name", "fr") == "Newcomer Skills Forum"


def test_outside_a_request_content_is_in_the_default_language_unless_a_language_is_forced(app):
    from convene.i18n import in_language

    convening, _, _ = bilingual()
    assert localized(convening, "name") == "Toronto Convening"
    with in_language("fr"):
        assert localized(convening, "name") == "Rencontre de Toronto"
    assert localized(convening, "name") == "Toronto Convening"
