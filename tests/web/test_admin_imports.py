"""The import's columns step and template; rankings organizers enter on a registration's page (issue 11: 15)."""
from __future__ import annotations

import csv
import html
import io
import re

import pytest
import sqlalchemy as sa

from convene.extensions import db
from convene.models import Answer, Registration, Status, VisitPreference
from convene.services import imports
from convene.services import visits as visit_service
from tests.factories import make_convening, make_host, make_question, make_registration, make_ticket


@pytest.fixture
def scene(app):
    convening = make_convening(name="WE Global Convening")
    ticket = make_ticket(convening, name="Delegate")
    group = make_question(convening, "Which working group do you want to join?", "single_choice",
                          choices=["Refugee Strategies", "Pathways", "WIOA/Apprenticeship"])
    dinner = make_question(convening, "Will you attend the networking dinner?", "yes_no")
    hosts = [make_host(convening, name, accessible=name != "Immigrant Access Fund")
             for name in ("George Brown College", "Magnet", "Immigrant Access Fund")]
    person = make_registration(convening, ticket, 1, given_name="Layla", family_name="Haddad")
    return type("Scene", (), dict(convening=convening, ticket=ticket, group=group, dinner=dinner, hosts=hosts,
                                  person=person))


def base(scene) -> str:
    return f"/admin/c/{scene.convening.id}"


def upload(client, scene, text: str, **fields):
    data = {"ticket_type_id": str(scene.ticket.id), "delegation_id": "0", "role": "delegate", "settlement": "invoice",
            **fields, "file": (io.BytesIO(text.encode()), "delegates.csv")}
    return client.post(f"{base(scene)}/import", data=data, content_type="multipart/form-data")


def form_values(page: str, action: str) -> dict[str, str]:
    """The fields (and values the page set) of the form posting to `action`."""
    match = re.search(r'<form method="post" action="' + re.escape(action) + r'".*?</form>', page, re.S)
    assert match, action
    form = match.group(0)
    values = {name: html.unescape(value) for name, value in
              re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form)}
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option selected value="([^"]*)"', body)
        values[name] = html.unescape(chosen.group(1)) if chosen else ""
    values.pop("columns-check", None)
    values.pop("columns-confirm", None)
    return values


def imported(scene) -> list[Registration]:
    db.session.rollback()
    return db.session.execute(sa.select(Registration).where(
        Registration.convening_id == scene.convening.id, Registration.source == "import")
        .order_by(Registration.id)).scalars().all()


FILE = ("First name,Last name,Email,Organization,Working group (pick one),Will you attend the NETWORKING dinner,"
        "Timestamp,Site visit 1st choice,Site visit 2\n"
        "Ana,Ruiz,ana@example.org,Org,pathways,oui,2027-05-01 10:00,magnet,George Brown College\n"
        "Ben,Cole,ben@example.org,Org,Refugee strategies,no,2027-05-02 11:00,,\n")


def test_a_file_with_an_unread_column_shows_the_columns_step_and_imports_once_it_is_mapped(organizer_client, scene):
    response = upload(organizer_client, scene, FILE)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Nothing was imported yet: some columns match nothing" in page
    assert imported(scene) == []
    # Every column is listed with what it feeds; the two unread ones have "choose" selected.
    action = f"{base(scene)}/import/columns"
    values = form_values(page, action)
    assert [values[f"columns-col_{i}"] for i in range(9)] == [
        "given_name", "family_name", "email", "organization", "", f"q:{scene.dinner.id}", "",
        "rank:1", "rank:2"]
    assert '<label for="columns-col_4">Working group (pick one)</label>' in page
    assert 'Not read yet: choose what it feeds' in page and "pathways · Refugee strategies" in page
    assert '<optgroup label="Questions">' in page and '<optgroup label="Site-visit ranking">' in page

    values.update({"columns-col_4": f"q:{scene.group.id}", "columns-col_6": "ignore"})
    response = organizer_client.post(action, data={**values, "columns-confirm": "Import"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    assert "Imported 2 delegates." in page and "4 answers to the registration questions saved." in page
    assert "1 site-visit ranking saved." in page and "Columns not read: Timestamp." in page
    ana, ben = imported(scene)
    assert {a.question_id: a.value for a in ana.answers} == {scene.group.id: "Pathways", scene.dinner.id: True}
    assert {a.question_id: a.value for a in ben.answers} == {scene.group.id: "Refugee Strategies",
                                                            scene.dinner.id: False}
    assert visit_service.ranking_for(ana.id) == [scene.hosts[1].id, scene.hosts[0].id]
    from convene import storage

    assert not [p for p in storage.folder().iterdir() if p.name.startswith("import-upload-")]  # done with


def test_check_again_writes_nothing_and_leaving_a_column_unchosen_is_said_beside_it(organizer_client, scene):
    page = upload(organizer_client, scene, FILE).get_data(as_text=True)
    action = f"{base(scene)}/import/columns"
    values = form_values(page, action)
    values["columns-col_4"] = f"q:{scene.group.id}"
    response = organizer_client.post(action, data={**values, "columns-check": "Check again"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and imported(scene) == []
    assert "Nothing is imported until you press Import." in page
    # The Timestamp column is still on "choose": importing is refused, beside that column.
    response = organizer_client.post(action, data={**values, "columns-confirm": "Import"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and imported(scene) == []
    assert 'id="columns-col_6-error">Choose what this column feeds, or ignore it.' in page
    assert 'id="columns-col_4-error"' not in page


def test_a_bad_value_in_a_mapped_column_is_a_row_error_and_nothing_is_imported(organizer_client, scene):
    text = FILE.replace("pathways", "Policy")
    page = upload(organizer_client, scene, text).get_data(as_text=True)
    action = f"{base(scene)}/import/columns"
    values = {**form_values(page, action), "columns-col_4": f"q:{scene.group.id}", "columns-col_6": "ignore"}
    response = organizer_client.post(action, data={**values, "columns-confirm": "Import"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    found = re.findall(r'<tr><td class="num">(\d+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>', page)
    assert [(row, column) for row, column, _ in found] == [("2", "Working group (pick one)")]
    assert "“Policy” is not one of the choices: Refugee Strategies; Pathways; WIOA/Apprenticeship." in \
        html.unescape(found[0][2])
    assert imported(scene) == [] and db.session.scalar(sa.select(sa.func.count(Answer.id))) == 0


def test_headers_that_say_everything_import_at_once_with_their_answers_and_rankings(organizer_client, scene):
    text = ("given name,FAMILY NAME,e-mail,Organisation,Which working group do you want to join,"
            "Will you attend the networking dinner?,Host 1,Host 2,Host 3\n"
            "Ana,Ruiz,ana@example.org,Org,WIOA/apprenticeship,Y,Immigrant Access Fund,MAGNET,\n")
    response = upload(organizer_client, scene, text)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Imported 1 delegate." in page
    assert "What each column fed" in page and "Site-visit ranking: 3rd choice" in page
    [ana] = imported(scene)
    assert visit_service.ranking_for(ana.id) == [scene.hosts[2].id, scene.hosts[1].id]


def test_the_template_download_fills_in_and_imports_through_the_page(organizer_client, scene):
    response = organizer_client.get(f"{base(scene)}/import/template.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f"attachment; filename={scene.convening.slug}-import-template.csv")
    text = response.data.decode("utf-8")
    assert text.startswith("\ufeff")
    header = next(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert header[-5:] == ["Which working group do you want to join?", "Will you attend the networking dinner?",
                           "Site visit 1st choice", "Site visit 2nd choice", "Site visit 3rd choice"]
    row = dict.fromkeys(header, "")
    row.update({"Given name": "Zoë", "Family name": "Ångström", "Email": "zoe@example.org", "Organization": "Café",
                "Which working group do you want to join?": "Pathways",
                "Will you attend the networking dinner?": "yes", "Site visit 1st choice": "Magnet",
                "Site visit 3rd choice": "George Brown College"})
    buffer = io.StringIO()
    csv.writer(buffer).writerow(row.values())
    response = upload(organizer_client, scene, text.removeprefix("\ufeff") + buffer.getvalue())
    assert "Imported 1 delegate." in response.get_data(as_text=True)
    [zoe] = imported(scene)
    assert {a.question_id: a.value for a in zoe.answers} == {scene.group.id: "Pathways", scene.dinner.id: True}
    assert visit_service.ranking_for(zoe.id) == [scene.hosts[1].id, scene.hosts[0].id]
    page = organizer_client.get(f"{base(scene)}/import").get_data(as_text=True)
    assert "Site visit 1st choice … Site visit 3rd choice" in page
    assert "Which working group do you want to join?" in page and 'id="template-link"' in page


def test_a_reference_that_names_no_kept_file_says_to_upload_again(organizer_client, scene):
    for reference in ("", "nonsense", "../../etc/passwd", "x" * 5000):
        response = organizer_client.post(f"{base(scene)}/import/columns",
                                         data={"columns-upload": reference, "columns-col_0": "given_name"})
        assert response.status_code == 302 and response.headers["Location"].endswith(f"{base(scene)}/import")
    page = organizer_client.get(f"{base(scene)}/import").get_data(as_text=True)
    assert "The uploaded file is no longer kept" in page
    # A reference made for another convening does not open this one's file.
    other = make_convening()
    page = upload(organizer_client, scene, FILE).get_data(as_text=True)
    values = form_values(page, f"{base(scene)}/import/columns")
    response = organizer_client.post(f"/admin/c/{other.id}/import/columns", data={**values, "columns-confirm": "1"})
    assert response.status_code == 302 and imported(scene) == []


@pytest.mark.parametrize("value", ["<script>", "q:999999", "rank:9", "given_name\x0b", "9" * 3000, "😀"])
def test_a_hostile_column_choice_is_refused_beside_it(organizer_client, scene, value):
    page = upload(organizer_client, scene, FILE).get_data(as_text=True)
    action = f"{base(scene)}/import/columns"
    values = {**form_values(page, action), "columns-col_4": value, "columns-col_6": "ignore"}
    response = organizer_client.post(action, data={**values, "columns-confirm": "Import"})
    assert response.status_code == 400
    assert 'id="columns-col_4-error">Choose one of the options.' in response.get_data(as_text=True)
    assert imported(scene) == []


def test_staff_cannot_use_the_columns_step(staff_client, scene):
    reference = imports.keep_upload(FILE.encode(), scene.convening.id, 1)
    response = staff_client.post(f"{base(scene)}/import/columns", data={"columns-upload": reference})
    assert response.status_code == 403
    assert staff_client.get(f"{base(scene)}/import/template.csv").status_code == 403


# Rankings on the registration page -------------------------------------------------------------------------------

def rank_url(scene) -> str:
    return f"{base(scene)}/registrations/{scene.person.id}/visit-preferences"


def test_organizers_enter_and_change_a_ranking_while_attendees_ranking_is_closed(organizer_client, scene):
    page = organizer_client.get(f"{base(scene)}/registrations/{scene.person.id}").get_data(as_text=True)
    assert 'id="visit-preferences"' in page and "Attendees' ranking is closed" in page
    assert page.count('<select id="rank_') == 3
    george, magnet, fund = scene.hosts
    response = organizer_client.post(rank_url(scene), data={"rank_1": str(magnet.id), "rank_2": str(george.id),
                                                             "rank_3": ""})
    assert response.status_code == 302 and response.headers["Location"].endswith("#visit-preferences")
    assert visit_service.ranking_for(scene.person.id) == [magnet.id, george.id]
    page = html.unescape(organizer_client.get(f"{base(scene)}/registrations/{scene.person.id}").get_data(as_text=True))
    assert "Layla Haddad's site-visit ranking is saved. The assigner uses it the next time it runs." in page
    assert f'<option selected value="{magnet.id}">Magnet</option>' in page
    organizer_client.post(rank_url(scene), data={"rank_1": str(fund.id)})
    assert visit_service.ranking_for(scene.person.id) == [fund.id]


def test_a_ranking_naming_a_host_twice_is_refused_beside_it_and_nothing_changes(organizer_client, scene):
    george, magnet, _ = scene.hosts
    visit_service.set_visit_preferences(scene.person.id, [george.id], by_organizer=True)
    response = organizer_client.post(rank_url(scene), data={"rank_1": str(magnet.id), "rank_2": str(magnet.id)})
    assert response.status_code == 400
    assert 'id="rank_2-error">You chose this host already; pick each host once.' in response.get_data(as_text=True)
    for hostile in ("99999999999999999999", "\x0b", "-1"):
        response = organizer_client.post(rank_url(scene), data={"rank_1": hostile})
        assert response.status_code == 400 and "Choose one of the options." in response.get_data(as_text=True)
    assert visit_service.ranking_for(scene.person.id) == [george.id]


def test_someone_needing_step_free_access_is_warned_about_a_host_without_it(organizer_client, scene):
    scene.person.accessibility_needs = ["step_free"]
    db.session.commit()
    fund = scene.hosts[2]
    organizer_client.post(rank_url(scene), data={"rank_1": str(fund.id)})
    page = organizer_client.get(f"{base(scene)}/registrations/{scene.person.id}").get_data(as_text=True)
    assert ("Immigrant Access Fund does not have step-free access, which Layla needs: the assigner will not place "
            "them there.") in page


def test_after_publishing_the_saved_message_says_when_the_ranking_counts(organizer_client, scene):
    from convene.models import utcnow

    scene.convening.visits_published_at = utcnow()
    db.session.commit()
    organizer_client.post(rank_url(scene), data={"rank_1": str(scene.hosts[0].id)})
    page = organizer_client.get(f"{base(scene)}/registrations/{scene.person.id}").get_data(as_text=True)
    assert "The plan is already published: it changes for them only when the assigner is run again" in page
    assert visit_service.ranking_for(scene.person.id) == [scene.hosts[0].id]


def test_a_cancelled_registration_shows_its_ranking_without_a_form_and_refuses_a_change(organizer_client, scene):
    visit_service.set_visit_preferences(scene.person.id, [scene.hosts[1].id], by_organizer=True)
    scene.person.status = Status.CANCELLED
    db.session.commit()
    page = organizer_client.get(f"{base(scene)}/registrations/{scene.person.id}").get_data(as_text=True)
    assert '<ol id="ranking"><li>Magnet</li></ol>' in page and '<select id="rank_1"' not in page
    response = organizer_client.post(rank_url(scene), data={"rank_1": str(scene.hosts[0].id)})
    assert response.status_code == 400
    assert "Layla Haddad's registration has ended, so there is no ranking to change." in \
        html.unescape(response.get_data(as_text=True))
    assert visit_service.ranking_for(scene.person.id) == [scene.hosts[1].id]


def test_staff_see_the_ranking_but_cannot_change_it(staff_client, scene):
    visit_service.set_visit_preferences(scene.person.id, [scene.hosts[1].id], by_organizer=True)
    page = staff_client.get(f"{base(scene)}/registrations/{scene.person.id}").get_data(as_text=True)
    assert '<ol id="ranking"><li>Magnet</li></ol>' in page and "visit-preferences\"" not in page.split(
        'id="visit-preferences"')[1].split("</section>")[0]
    response = staff_client.post(rank_url(scene), data={"rank_1": str(scene.hosts[0].id)})
    assert response.status_code == 403
    assert visit_service.ranking_for(scene.person.id) == [scene.hosts[1].id]
    assert db.session.scalar(sa.select(sa.func.count(VisitPreference.id))) == 1


def test_a_convening_without_hosts_shows_no_ranking(organizer_client, app):
    convening = make_convening()
    person = make_registration(convening, make_ticket(convening), 1)
    page = organizer_client.get(f"/admin/c/{convening.id}/registrations/{person.id}").get_data(as_text=True)
    assert 'id="visit-preferences"' not in page
    response = organizer_client.post(f"/admin/c/{convening.id}/registrations/{person.id}/visit-preferences",
                                     data={"rank_1": "1"})
    assert response.status_code == 302
