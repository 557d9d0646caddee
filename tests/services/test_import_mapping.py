"""The CSV import reads answers and site-visit rankings (issue 11: 15): headers, values, the mapping, the template."""
from __future__ import annotations

import csv
import io
import random

import pytest
import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import Answer, Registration, Status, VisitPreference
from convene.services import imports
from convene.services import visits as visit_service
from convene.services.imports import ImportDefaults, answer_value, import_registrations, rank_position, template_csv
from tests.factories import make_convening, make_host, make_question, make_registration, make_ticket

WORKING_GROUPS = ["Higher Education/Community Colleges", "Healthcare Licensing/Regulated Professions",
                  "Refugee Strategies", "City as Employer/Employer Engagement", "State-Level Engagement",
                  "Pathways", "WIOA/Apprenticeship"]
ROUNDTABLES = ["Inclusive workplaces, employer training", "Engaging employers and other stakeholders",
               "Mentoring programs", "Professional immigrant networks", "Communications and media"]
HOSTS = ["George Brown College", "Magnet", "Toronto Newcomer Office", "Immigrant Access Fund", "ACCES Employment",
         "Centre francophone de Toronto"]
ORDINALS = ["1st", "2nd", "3rd", "4th", "5th"]
GIVEN = ["Rachel", "Layla", "Samuel", "Priya", "Marcus", "José", "Zoë", "Thu", "Amra", "Kwame", "Ngozi", "Chen"]
FAMILY = ["Goldberg", "Haddad", "Okafor", "Sharma", "Bell", "Álvarez", "Ñúñez", "Đặng", "Šehić", "Mensah"]
ORGS = ["Maryland Department of Labor", "Central Ohio Refugee Services", "Detroit Welcoming Center",
        "City of Saint Paul Welcoming Office", "Bayou Community College", "Philadelphia Office of Immigrant Affairs"]


@pytest.fixture
def scene(app):
    """A convening shaped like the real one: four questions of every kind and six site-visit hosts."""
    convening = make_convening(name="WE Global Convening")
    ticket = make_ticket(convening, name="Delegate")
    questions = dict(
        group=make_question(convening, "Which working group do you want to join?", "single_choice",
                            choices=WORKING_GROUPS),
        interpretation=make_question(convening, "Do you need interpretation? (language)", "short_text"),
        dinner=make_question(convening, "Will you attend the networking dinner?", "yes_no"),
        roundtables=make_question(convening, "Which roundtables interest you?", "multiple_choice",
                                  choices=ROUNDTABLES),
        hopes=make_question(convening, "What do you hope to take home?", "long_text"),
    )
    hosts = {name: make_host(convening, name, accessible=name != "Immigrant Access Fund") for name in HOSTS}
    return type("Scene", (), dict(convening=convening, ticket=ticket, questions=questions, hosts=hosts))


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


PERSON_HEADER = ["First name", "Last name", "Email", "Organization"]


def person_cells(n: int) -> list[str]:
    return [GIVEN[n % len(GIVEN)], FAMILY[n % len(FAMILY)], f"person{n}@example.org", ORGS[n % len(ORGS)]]


def defaults(scene) -> ImportDefaults:
    return ImportDefaults(ticket_type_id=scene.ticket.id)


def registrations(scene) -> list[Registration]:
    db.session.rollback()
    return db.session.execute(sa.select(Registration).where(Registration.convening_id == scene.convening.id)
                              .order_by(Registration.id)).scalars().all()


def answers_of(registration: Registration) -> dict[int, object]:
    return {a.question_id: a.value for a in registration.answers}


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


# Realistic headers and values ----------------------------------------------------------------------------------

REAL_HEADER = [*PERSON_HEADER, "Which working group do you want to join?", "Do you need interpretation? (language)",
               "Will you attend the networking dinner?", "Which roundtables interest you?",
               *(f"Site visit {o} choice" for o in ORDINALS)]


def messy(text: str, rng: random.Random) -> str:
    """A value as people type it: another case, stray spaces, accents dropped or added."""
    variant = rng.choice([text, text.upper(), text.lower(), f"  {text} ", text.replace("e", "é", 1)])
    return variant


def test_a_300_row_file_with_answers_and_five_ranking_columns_imports_every_answer_and_ranking(scene, backend):
    rng = random.Random(11)
    q = scene.questions
    rows, expected = [], {}
    yes_words = {"Yes": True, "no": False, "Y": True, "n": False, "TRUE": True, "false": False, "1": True, "0": False,
                 "Oui": True, "non": False, "Sí": True}
    for n in range(300):
        group = rng.choice(WORKING_GROUPS)
        language = rng.choice(["", "", "Spanish", "French", "Arabic (Levantine)", "ASL"])
        word = rng.choice(list(yes_words))
        tables = rng.sample(ROUNDTABLES, rng.randint(0, 3))
        # Google Forms joins several choices with ", " (one choice holds a comma itself); people use ";".
        joined = (", " if n % 2 else "; ").join(tables)
        ranked = rng.sample(HOSTS, rng.randint(0, 5))
        cells = [messy(name, rng) if name != "Immigrant Access Fund" else name.upper() for name in ranked]
        blanks = [""] * (5 - len(cells))
        ranking_cells = cells + blanks if n % 3 else blanks + cells  # some leave the first choices empty
        rows.append([*person_cells(n), messy(group, rng) if n % 5 else group, language, word, joined, *ranking_cells])
        answer = {q["group"].id: group, q["dinner"].id: yes_words[word]}
        if language:
            answer[q["interpretation"].id] = language
        if tables:
            answer[q["roundtables"].id] = [c for c in ROUNDTABLES if c in tables]
        expected[f"person{n}@example.org"] = (answer, [scene.hosts[name].id for name in ranked])

    report = import_registrations(scene.convening.id, csv_text(REAL_HEADER, rows), defaults(scene))
    assert report.ok, report.problems[:5]
    assert report.imported == 300 and report.ignored_columns == []
    assert [c.label for c in report.columns[4:]] == [
        "Question: Which working group do you want to join?", "Question: Do you need interpretation? (language)",
        "Question: Will you attend the networking dinner?", "Question: Which roundtables interest you?",
        *(f"Site-visit ranking: {o} choice" for o in ORDINALS)]
    people = registrations(scene)
    assert len(people) == 300
    for person in people:
        answer, ranking = expected[person.email]
        assert answers_of(person) == answer, person.email
        assert visit_service.ranking_for(person.id) == ranking, person.email
    assert report.answers == sum(len(a) for a, _ in expected.values())
    assert report.rankings == sum(1 for _, r in expected.values() if r)
    print(f"[{backend}] 300 rows: {report.answers} answers, {report.rankings} rankings")


def test_headers_differing_in_case_accents_and_punctuation_find_their_question_and_rank(scene):
    q = scene.questions
    header = [*PERSON_HEADER, "WHICH WORKING GROUP DO YOU WANT TO JOIN", "  will you attend the networking dínner  ",
              "Do you need interpretation (language)?", "Site-visit – 1st choice", "Site visit 2", "Host 3",
              "4th choice", "Fifth preference"]
    row = [*person_cells(1), "refugee strategies", "OUI", "LSF", "magnet", "george brown college", "",
           "acces employment", "Toronto Newcomer Office"]
    report = import_registrations(scene.convening.id, csv_text(header, [row]), defaults(scene))
    assert report.ok, report.problems
    assert [c.target for c in report.columns[4:]] == [
        f"q:{q['group'].id}", f"q:{q['dinner'].id}", f"q:{q['interpretation'].id}",
        "rank:1", "rank:2", "rank:3", "rank:4", "rank:5"]
    [person] = registrations(scene)
    assert answers_of(person) == {q["group"].id: "Refugee Strategies", q["dinner"].id: True,
                                  q["interpretation"].id: "LSF"}
    hosts = scene.hosts
    assert visit_service.ranking_for(person.id) == [hosts["Magnet"].id, hosts["George Brown College"].id,
                                                     hosts["ACCES Employment"].id, hosts["Toronto Newcomer Office"].id]


def test_a_questions_text_wins_over_a_person_columns_alias_but_not_its_name(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    title = make_question(convening, "Title", "single_choice", choices=["Dr", "Ms", "Mr", "Mx"])
    make_question(convening, "Organization", "short_text")  # the person column's own label keeps it
    header = ["Given name", "Family name", "Email", "Organization", "Title"]
    report = import_registrations(convening.id, csv_text(header, [[*person_cells(1)[:3], "Org", "dr"]]),
                                  ImportDefaults(ticket_type_id=ticket.id))
    assert report.ok, report.problems
    assert [c.target for c in report.columns] == ["given_name", "family_name", "email", "organization",
                                                  f"q:{title.id}"]
    [person] = db.session.execute(sa.select(Registration)).scalars().all()
    assert (person.organization, person.job_title, answers_of(person)) == ("Org", "", {title.id: "Dr"})


@pytest.mark.parametrize("header, position", [
    ("Site visit 1st choice", 1), ("Site visit 2", 2), ("Host 3", 3), ("1st choice", 1), ("Choice #4", 4),
    ("site visits - second preference", 2), ("Preferred host organization no. 5", 5), ("2ème choix", 2),
    ("Rank 10", 10), ("Visita 1ª opción", 1),
    ("Phone 2", None), ("Notes", None), ("Choice", None), ("Site visit", None), ("Site visit 1 2", None),
    ("Ticket type 1", None), ("Host 11", None), ("Visit 0", None), ("Dietary needs", None),
])
def test_ranking_headers_are_read_liberally_but_never_by_guess(header, position):
    assert rank_position(header) == position


@pytest.mark.parametrize("kind, choices, cell, value", [
    ("yes_no", [], "yes", True), ("yes_no", [], " N ", False), ("yes_no", [], "True", True),
    ("yes_no", [], "0", False), ("yes_no", [], "oui", True), ("yes_no", [], "Non", False), ("yes_no", [], "sí", True),
    ("yes_no", [], "", None),
    ("single_choice", ["Refugee Strategies", "Pathways"], "REFUGEE-strategies", "Refugee Strategies"),
    ("single_choice", ["Café", "Thé"], "cafe", "Café"),
    ("multiple_choice", ["Mentoring programs", "Inclusive workplaces, employer training", "Pathways"],
     "pathways, inclusive workplaces, employer training", ["Inclusive workplaces, employer training", "Pathways"]),
    ("multiple_choice", ["A b", "C"], "c; a-b; C", ["A b", "C"]),
    ("short_text", [], "  Spanish\r\n(Mexico) ", "Spanish (Mexico)"),
    ("long_text", [], "Line one\r\nLine two\x07", "Line one\nLine two"),
])
def test_cells_become_the_answer_the_form_would_store(app, kind, choices, cell, value):
    question = make_question(make_convening(), "Q", kind, choices=choices)
    assert answer_value(question, cell) == value


@pytest.mark.parametrize("kind, choices, cell, reason", [
    ("yes_no", [], "maybe", "is not a yes or no"),
    ("single_choice", ["Refugee Strategies", "Pathways"], "Refugees", "is not one of the choices"),
    ("multiple_choice", ["A", "B"], "A; Z", "“Z” is not one of the choices"),
    ("short_text", [], "x" * 501, "Keep the answer to 500 characters"),
    ("long_text", [], "x" * 5001, "Keep the answer to 5,000 characters"),
])
def test_a_cell_the_form_would_refuse_says_why(app, kind, choices, cell, reason):
    question = make_question(make_convening(), "Q", kind, choices=choices)
    with pytest.raises(ValueError, match=reason):
        answer_value(question, cell)


def test_a_bad_choice_value_is_a_row_error_naming_the_column_and_nothing_is_imported(scene):
    header = [*PERSON_HEADER, "Which working group do you want to join?", "Will you attend the networking dinner?",
              "Site visit 1st choice"]
    rows = [[*person_cells(n), "Pathways", "yes", "Magnet"] for n in range(6)]
    rows[3][4] = "Refugees and asylum"  # spreadsheet row 5
    rows[4][5] = "perhaps"  # row 6
    report = import_registrations(scene.convening.id, csv_text(header, rows), defaults(scene))
    assert not report.ok and report.code == "import_invalid"
    assert [(p.row, p.column) for p in report.problems] == [
        (5, "Which working group do you want to join?"), (6, "Will you attend the networking dinner?")]
    assert "“Refugees and asylum” is not one of the choices: Higher Education" in report.problems[0].message
    assert "“perhaps” is not a yes or no" in report.problems[1].message
    assert registrations(scene) == [] and count(Answer) == 0 and count(VisitPreference) == 0


def test_unknown_repeated_and_ambiguous_hosts_are_row_errors(scene):
    header = [*PERSON_HEADER, "Site visit 1st choice", "Site visit 2nd choice", "Site visit 3rd choice"]
    rows = [
        [*person_cells(1), "Magnet", "Casa Loma", ""],  # row 2: not a host
        [*person_cells(2), "Magnet", "", "MAGNET"],  # row 3: twice
        [*person_cells(3), "George Brown College", "Magnet", "ACCES Employment"],  # fine
    ]
    report = import_registrations(scene.convening.id, csv_text(header, rows), defaults(scene))
    assert [(p.row, p.column) for p in report.problems] == [(2, "Site visit 2nd choice"),
                                                            (3, "Site visit 3rd choice")]
    assert "“Casa Loma” is not one of this convening's hosts: " in report.problems[0].message
    assert report.problems[1].message == ("Each host can be ranked only once. Magnet is also the choice in "
                                          "Site visit 1st choice.")
    assert registrations(scene) == [] and count(VisitPreference) == 0


def test_a_ranking_column_beyond_the_number_of_hosts_is_not_read_and_says_why(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    for name in ("Magnet", "Toronto Newcomer Office"):
        make_host(convening, name)
    header = [*PERSON_HEADER, "Site visit 1st choice", "Site visit 2nd choice", "Site visit 3rd choice"]
    report = import_registrations(convening.id, csv_text(header, [[*person_cells(1), "Magnet", "", ""]]),
                                  ImportDefaults(ticket_type_id=ticket.id), refuse_unread=True)
    assert report.code == "import_columns_unread"
    [unread] = report.unread
    assert unread.header == "Site visit 3rd choice"
    assert unread.note == ("It looks like a 3rd site-visit choice, but with 2 hosts a ranking has at most "
                           "2 choices.")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0


def test_a_column_matching_nothing_stops_the_import_until_the_organizer_says_what_it_feeds(scene):
    q = scene.questions
    header = [*PERSON_HEADER, "Working group (pick one)", "Timestamp", "", "Site visit 1st choice"]
    rows = [[*person_cells(n), "Pathways", "2027-05-01 10:00", "", "Magnet"] for n in range(3)]
    text = csv_text(header, rows)
    report = import_registrations(scene.convening.id, text, defaults(scene), refuse_unread=True)
    assert report.code == "import_columns_unread" and report.problems == []
    assert [(c.index, c.header, c.samples) for c in report.unread] == [
        (4, "Working group (pick one)", ["Pathways"]), (5, "Timestamp", ["2027-05-01 10:00"])]
    assert 6 not in [c.index for c in report.columns]  # an empty column without a header: nothing to read
    assert registrations(scene) == []

    # Saying what each feeds (a question, or nothing) imports the file, with the answers.
    report = import_registrations(scene.convening.id, text, defaults(scene), refuse_unread=True,
                                  mapping={4: f"q:{q['group'].id}", 5: "ignore"})
    assert report.ok and report.imported == 3
    assert [(c.header, c.label, c.chosen) for c in report.columns if c.chosen] == [
        ("Working group (pick one)", "Question: Which working group do you want to join?", True),
        ("Timestamp", "Nothing (ignored)", True)]
    assert report.ignored_columns == ["Timestamp"]
    assert {answers_of(p)[q["group"].id] for p in registrations(scene)} == {"Pathways"}
    assert count(VisitPreference) == 3


def test_a_mapping_overrides_a_header_refuses_two_columns_for_one_target_and_unknown_targets(scene):
    q = scene.questions
    header = [*PERSON_HEADER, "Will you attend the networking dinner?", "Dinner (confirmed)"]
    text = csv_text(header, [[*person_cells(1), "maybe", "yes"]])
    report = import_registrations(scene.convening.id, text, defaults(scene),
                                  mapping={4: "ignore", 5: f"q:{q['dinner'].id}"})
    assert report.ok, report.problems
    assert answers_of(registrations(scene)[0]) == {q["dinner"].id: True}

    text = csv_text(header, [[*person_cells(2), "no", "yes"]])
    report = import_registrations(scene.convening.id, text, defaults(scene), mapping={5: f"q:{q['dinner'].id}"})
    assert [(p.row, p.column) for p in report.problems] == [(1, "Dinner (confirmed)")]
    assert report.problems[0].message.startswith("Two columns mean Question: Will you attend the networking dinner?")
    report = import_registrations(scene.convening.id, text, defaults(scene), mapping={5: "q:999999", 4: "rank:9"})
    assert [p.message for p in report.problems] == ["Choose what this column feeds from the list."] * 2
    assert len(registrations(scene)) == 1


def test_a_check_only_writes_nothing_and_says_the_file_is_ready(scene):
    text = csv_text([*PERSON_HEADER, "Site visit 1st choice"], [[*person_cells(1), "Magnet"]])
    report = import_registrations(scene.convening.id, text, defaults(scene), dry_run=True)
    assert report.ok and report.checked and report.imported == 0 and report.rows == 1
    assert report.message.startswith("Every row is checked and nothing is wrong")
    assert registrations(scene) == [] and count(VisitPreference) == 0


def test_the_template_has_each_question_and_rank_and_round_trips(scene):
    text = template_csv(scene.convening)
    assert text.startswith("\ufeffGiven name,Family name,Email,Organization,")
    header = next(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert header[-11:] == ["Which working group do you want to join?", "Do you need interpretation? (language)",
                            "Will you attend the networking dinner?", "Which roundtables interest you?",
                            "What do you hope to take home?",
                            *(f"Site visit {o} choice" for o in [*ORDINALS, "6th"])]
    filled = dict.fromkeys(header, "")
    filled.update({"Given name": "Ana", "Family name": "Ruiz", "Email": "ana@example.org", "Organization": "Org",
                   "Which working group do you want to join?": "Pathways",
                   "Will you attend the networking dinner?": "no",
                   "Which roundtables interest you?": "Mentoring programs; Communications and media",
                   "What do you hope to take home?": "Peers to call.\nAnd a plan.",
                   "Site visit 1st choice": "Magnet", "Site visit 6th choice": "Centre francophone de Toronto"})
    report = import_registrations(scene.convening.id, text + csv_text(list(filled.values()), [])
                                  .replace("\r\n", "\n"), defaults(scene), refuse_unread=True)
    assert report.ok and report.ignored_columns == [], report.problems
    [ana] = registrations(scene)
    q = scene.questions
    assert answers_of(ana) == {q["group"].id: "Pathways", q["dinner"].id: False,
                               q["roundtables"].id: ["Mentoring programs", "Communications and media"],
                               q["hopes"].id: "Peers to call.\nAnd a plan."}
    assert visit_service.ranking_for(ana.id) == [scene.hosts["Magnet"].id,
                                                 scene.hosts["Centre francophone de Toronto"].id]


def test_a_registration_that_comes_back_takes_the_files_answers_and_ranking_only(scene):
    q = scene.questions
    gone = make_registration(scene.convening, scene.ticket, email="person1@example.org", status=Status.CANCELLED)
    db.session.add(Answer(registration_id=gone.id, question_id=q["dinner"].id, value=True))
    db.session.add(Answer(registration_id=gone.id, question_id=q["group"].id, value="Pathways"))
    db.session.add(VisitPreference(registration_id=gone.id, host_id=scene.hosts["Magnet"].id, rank=1))
    db.session.commit()
    header = [*PERSON_HEADER, "Will you attend the networking dinner?", "Site visit 1st choice"]
    report = import_registrations(scene.convening.id, csv_text(header, [[*person_cells(1), "no", "ACCES Employment"]]),
                                  defaults(scene))
    assert report.ok and report.reactivated == 1
    back = registrations(scene)[0]
    assert back.id == gone.id and back.status == Status.CONFIRMED
    assert answers_of(back) == {q["dinner"].id: False}
    assert visit_service.ranking_for(back.id) == [scene.hosts["ACCES Employment"].id]


def test_questions_changed_while_the_file_was_checked_import_nothing(scene, monkeypatch):
    from convene.services import convenings

    q = scene.questions
    real = imports.import_targets
    calls = []

    def checked_then_changed(convening):
        targets = real(convening)
        if not calls:  # after the check read them, an organizer deletes a question
            calls.append(1)
            convenings.delete_question(q["interpretation"].id)
        return targets

    monkeypatch.setattr(imports, "import_targets", checked_then_changed)
    header = [*PERSON_HEADER, "Do you need interpretation? (language)"]
    report = import_registrations(scene.convening.id, csv_text(header, [[*person_cells(1), "Spanish"]]),
                                  defaults(scene))
    assert report.code == "import_changed" and report.message.startswith("Nothing was imported: the questions")
    assert registrations(scene) == [] and count(Answer) == 0


def test_a_plain_file_still_costs_no_query_for_questions_or_hosts(scene):
    from sqlalchemy import event

    statements: list[str] = []

    def before(conn, cursor, statement, *args):
        statements.append(statement)

    text = csv_text(["Given name", "Family name", "Email", "Organization"], [person_cells(n) for n in range(5)])
    db.session.rollback()
    event.listen(db.engine, "before_cursor_execute", before)
    try:
        report = import_registrations(scene.convening.id, text, defaults(scene), dry_run=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
    assert report.ok and statements
    assert not any("FROM question" in s or "FROM host_organization" in s for s in statements)


# The uploaded file between the columns step's requests -----------------------------------------------------------

@pytest.fixture
def uploads(app):
    """The names of the kept uploads, wherever FILE_STORAGE keeps them."""
    from convene import storage

    def names() -> list[str]:
        if storage.in_database():
            from convene.models import StoredFile

            return list(db.session.execute(sa.select(StoredFile.name)).scalars())
        return [p.name for p in storage.folder().iterdir()]

    return lambda: [name for name in names() if name.startswith("import-upload-")]


def test_a_kept_upload_opens_only_for_its_convening_and_organizer_and_is_gone_once_discarded(uploads):
    reference = imports.keep_upload(b"given_name\nAna\n", 7, 3)
    [kept] = uploads()
    assert kept.endswith(".csv")
    from convene import storage

    if not storage.in_database():  # it names people: readable by the app's own user only
        assert (storage.folder() / kept).stat().st_mode & 0o777 == 0o600
    assert reference and kept.removeprefix("import-upload-").removesuffix(".csv") not in reference  # signed
    assert imports.read_upload(reference, 7, 3) == b"given_name\nAna\n"
    for convening_id, user_id, tampered in ((8, 3, reference), (7, 4, reference), (7, 3, reference[:-2] + "xx"),
                                            (7, 3, "../../etc/passwd"), (7, 3, "")):
        with pytest.raises(ConveneError) as caught:
            imports.read_upload(tampered, convening_id, user_id)
        assert caught.value.code == "import_upload_gone"
    imports.discard_upload(reference, 7, 3)
    assert uploads() == []
    with pytest.raises(ConveneError):
        imports.read_upload(reference, 7, 3)


def test_old_uploads_expire_with_the_other_stored_files_and_big_ones_are_refused(app, uploads):
    from datetime import timedelta

    from convene import storage

    imports.keep_upload(b"a\n", 1, 1)
    assert len(uploads()) == 1
    storage.expire_files(timedelta(seconds=-60))  # everything counts as old
    assert uploads() == []
    with pytest.raises(ConveneError):
        imports.keep_upload(b"x" * (imports.MAX_UPLOAD_BYTES + 1), 1, 1)


# Rankings organizers enter ----------------------------------------------------------------------------------------

def test_organizers_rank_for_someone_while_attendees_ranking_is_closed_with_the_same_rules(scene):
    person = make_registration(scene.convening, scene.ticket, 1)
    magnet, george = scene.hosts["Magnet"].id, scene.hosts["George Brown College"].id
    assert not scene.convening.visit_preferences_open
    with pytest.raises(ConveneError) as caught:
        visit_service.set_visit_preferences(person.id, [magnet])
    assert caught.value.code == "visit_preferences_closed"
    visit_service.set_visit_preferences(person.id, [magnet, george], by_organizer=True)
    assert visit_service.ranking_for(person.id) == [magnet, george]
    for ranking, code in (([magnet, magnet], "duplicate_host_rank"), ([magnet, 999999], "unknown_host")):
        with pytest.raises(ConveneError) as caught:
            visit_service.set_visit_preferences(person.id, ranking, by_organizer=True)
        assert caught.value.code == code
    assert visit_service.ranking_for(person.id) == [magnet, george]
    gone = make_registration(scene.convening, scene.ticket, 2, status=Status.CANCELLED)
    with pytest.raises(ConveneError) as caught:
        visit_service.set_visit_preferences(gone.id, [magnet], by_organizer=True)
    assert caught.value.code == "ranking_registration_ended"


def test_a_ranking_names_at_most_ten_hosts(app):
    with pytest.raises(ConveneError) as caught:
        visit_service.check_ranking(list(range(1, 12)), set(range(1, 13)))
    assert (caught.value.code, caught.value.details["position"], caught.value.message) == (
        "too_many_host_ranks", 10, "Rank at most 10 hosts.")
    assert visit_service.check_ranking([3, 1], {1, 2, 3}) == [3, 1]
