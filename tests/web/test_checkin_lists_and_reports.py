"""The check-in lists pages, the live numbers (page and polled fragment) and the attendance report pages."""
from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from convene.extensions import db
from convene.models import AuditEntry
from convene.models.checkin import CheckinList
from convene.services import checkin
from tests.conftest import login
from tests.factories import make_convening, make_delegation, make_registration, make_ticket, make_user
from tests.schedule_helpers import make_session


@pytest.fixture
def scene(app):
    convening = make_convening()
    delegate, partner = make_ticket(convening, name="Delegate"), make_ticket(convening, name="Partner")
    maryland = make_delegation(convening, "Maryland")
    ana = make_registration(convening, delegate, 1, given_name="Ana", delegation_id=maryland.id,
                            phone="+1 410 555 0101")
    ben = make_registration(convening, partner, 2, given_name="Ben", phone="+1 937 555 0199")
    entrance = checkin.main_list(convening.id)
    users = {role: make_user(f"{role}@example.org", role=role, convening=convening)
             for role in ("organizer", "desk", "finance", "viewer")}
    return convening, (delegate, partner), (ana, ben), entrance, users


def base(convening) -> str:
    return f"/admin/c/{convening.id}/checkin"


def test_an_organizer_adds_edits_and_deletes_a_list_from_the_pages(client, scene):
    convening, (delegate, partner), (ana, ben), entrance, users = scene
    workshop = make_session(convening, "Housing workshop", 1, "10:00", "11:00", signup_required=True)
    login(client, users["organizer"].email)
    page = client.get(f"{base(convening)}/lists").get_data(as_text=True)
    assert "Entrance" in page and "Add a list for a session" in page

    form = client.get(f"{base(convening)}/lists/new?kind=session").get_data(as_text=True)
    assert "Housing workshop" in form
    response = client.post(f"{base(convening)}/lists/new?kind=session",
                           data={"session_id": workshop.id, "everyone": "y", "ticket_type_ids": [partner.id]})
    assert response.status_code == 302
    made = db.session.execute(sa.select(CheckinList).where(CheckinList.kind == "session")).scalar_one()
    assert (made.name, made.everyone, made.ticket_type_ids) == ("Housing workshop", True, [partner.id])
    page = client.get(f"{base(convening)}/lists").get_data(as_text=True)
    row = re.search(rf'<tr id="list-{made.id}">.*?</tr>', page, re.DOTALL).group(0)
    assert "only tickets: Partner" in row and re.search(r'<td class="num">1</td>', row)  # Ben is expected

    response = client.post(f"{base(convening)}/lists/new?kind=gathering", data={"name": "Entrance"})
    assert response.status_code == 400 and 'id="name-error"' in response.get_data(as_text=True)

    response = client.post(f"{base(convening)}/lists/{made.id}/edit", data={"name": "Workshop door", "everyone": "y"})
    assert response.status_code == 302
    db.session.refresh(made)
    assert (made.name, made.ticket_type_ids, made.everyone) == ("Workshop door", [], True)

    made_id = made.id
    assert checkin.check_in(made, ana.checkin_token, by=users["desk"], device="d", scan_id="1").ok
    confirm = client.get(f"{base(convening)}/lists/{made.id}/delete").get_data(as_text=True)
    token = re.search(r'name="preview" value="([^"]+)"', confirm).group(1)
    response = client.post(f"{base(convening)}/lists/{made.id}/delete", data={"preview": token})
    assert response.status_code == 302 and db.session.get(CheckinList, made_id) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "checkin_list.deleted")) == 1

    assert "cannot be deleted" in client.get(f"{base(convening)}/lists/{entrance.id}/delete").get_data(as_text=True)
    response = client.post(f"{base(convening)}/lists/{entrance.id}/edit", data={"name": "Front door"})
    assert response.status_code == 302 and checkin.main_list(convening.id).name == "Entrance"


def test_the_desk_sees_lists_and_live_numbers_but_does_not_manage_lists(client, scene):
    convening, _, (ana, ben), entrance, users = scene
    login(client, users["desk"].email)
    assert client.get(f"{base(convening)}/lists").status_code == 200
    assert client.get(f"{base(convening)}/lists/new?kind=gathering").status_code == 403
    assert client.post(f"{base(convening)}/lists/new?kind=gathering", data={"name": "Dinner"}).status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CheckinList)) == 1


def test_the_live_page_shows_arrivals_and_who_has_not_come_with_phones_and_its_fragment_follows(client, scene):
    convening, _, (ana, ben), entrance, users = scene
    login(client, users["desk"].email)
    page = client.get(f"{base(convening)}/lists/{entrance.id}/live").get_data(as_text=True)
    assert 'id="live-arrived">0<' in page and 'id="live-expected">2<' in page
    assert 'href="tel:+14105550101"' in page and "+1 937 555 0199" in page
    assert 'data-refresh-url="' in page and "js/checkin-live.js" in page and 'http-equiv="refresh"' in page
    assert "<svg" in page and "Nobody has arrived yet" in page

    checkin.check_in(entrance, ana.checkin_token, by=users["desk"], device="d", scan_id="1")
    fragment = client.get(f"{base(convening)}/lists/{entrance.id}/live/numbers")
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in text and "no-store" in fragment.headers["Cache-Control"]
    assert 'id="live-arrived">1<' in text and 'data-summary="1 of 2 arrived on Entrance"' in text
    not_arrived = re.search(r'<table id="not-arrived-list">.*?</table>', text, re.DOTALL).group(0)
    assert "Ben" in not_arrived and "Ana" not in not_arrived
    assert "<polyline" in text


def test_the_attendance_report_its_pdf_and_csvs_download(client, scene):
    from pypdf import PdfReader

    convening, _, (ana, ben), entrance, users = scene
    checkin.check_in(entrance, ana.checkin_token, by=users["desk"], device="d", scan_id="1")
    login(client, users["organizer"].email)
    page = client.get(f"{base(convening)}/report").get_data(as_text=True)
    assert 'id="report-came">1<' in page and 'id="report-expected">2<' in page and "Maryland" in page

    response = client.get(f"{base(convening)}/report.pdf")
    assert response.content_type == "application/pdf" and "attachment" in response.headers["Content-Disposition"]
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(response.data)).pages)
    assert "1 of 2 confirmed participants came (50%)" in text

    rows = list(csv.reader(io.StringIO(client.get(f"{base(convening)}/attendance.csv").get_data(as_text=True)[1:])))
    assert rows[0][-1] == "Checked in: Entrance" and len(rows) == 3
    rows = list(csv.reader(io.StringIO(
        client.get(f"{base(convening)}/lists/{entrance.id}/no-shows.csv").get_data(as_text=True)[1:])))
    assert [row[2] for row in rows[1:]] == ["Ben"] and rows[1][5] == "+1 937 555 0199"


@pytest.mark.parametrize("role", ["finance", "viewer"])
def test_finance_and_viewers_read_the_summary_but_no_one_by_name(client, scene, role):
    convening, _, _, entrance, users = scene
    login(client, users[role].email)
    assert client.get(f"{base(convening)}/report").status_code == 200
    assert client.get(f"{base(convening)}/report.pdf").status_code == 200
    for path in ("/attendance.csv", f"/lists/{entrance.id}/no-shows.csv", f"/lists/{entrance.id}/live",
                 f"/lists/{entrance.id}/live/numbers", "/lists"):
        assert client.get(base(convening) + path).status_code == 403, path


def test_an_account_of_another_convening_gets_nothing(client, scene):
    convening, _, _, entrance, _ = scene
    other = make_convening()
    outsider = make_user("outsider@example.org", role="owner", convening=other)
    login(client, outsider.email)
    for path in ("/report", "/attendance.csv", f"/lists/{entrance.id}/live", "/desk"):
        assert client.get(base(convening) + path).status_code == 404, path


def test_the_desk_finds_someone_to_fix_their_badge(client, scene):
    convening, _, (ana, ben), _, users = scene
    login(client, users["desk"].email)
    page = client.get(f"{base(convening)}/desk?q=ana").get_data(as_text=True)
    found = re.search(r'<ul id="desk-found">.*?</ul>', page, re.DOTALL).group(0)
    assert f"/checkin/desk/people/{ana.id}" in found and "Ben" not in found
    # A reference or badge code names one person: the desk goes straight to their page.
    for code in (ben.reference, ben.checkin_token):
        response = client.get(f"{base(convening)}/desk", query_string={"q": code})
        assert response.status_code == 302 and response.headers["Location"].endswith(f"/checkin/desk/people/{ben.id}")
    assert "Nobody registered matches" in client.get(f"{base(convening)}/desk?q=zzzz").get_data(as_text=True)
