"""The scanning pages: the plain form, the JSON scan endpoint, undo, and who may reach them."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from convene.extensions import db
from convene.models.checkin import Checkin, CheckinScan
from convene.services import checkin
from tests.conftest import login
from tests.factories import make_convening, make_delegation, make_registration, make_ticket, make_user


@pytest.fixture
def scene(app):
    convening = make_convening()
    ticket = make_ticket(convening, name="Delegate")
    ana = make_registration(convening, ticket, given_name="Ana", family_name="Müller", badge_name="Ani",
                            delegation_id=make_delegation(convening, "Maryland").id)
    entrance = checkin.main_list(convening.id)
    users = {role: make_user(f"{role}@example.org", role=role, convening=convening)
             for role in ("owner", "organizer", "desk", "finance", "viewer", "site_visit_lead")}
    return convening, entrance, ana, users


def scan_url(convening, entrance, tail: str = "") -> str:
    return f"/admin/c/{convening.id}/checkin/{entrance.id}{tail}"


def active(list_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Checkin).where(
        Checkin.list_id == list_id, Checkin.reverted_at.is_(None)))


def test_the_lists_page_and_the_scanning_page_open_for_the_desk(client, scene):
    convening, entrance, _, users = scene
    login(client, users["desk"].email)
    lists = client.get(f"/admin/c/{convening.id}/checkin")
    assert lists.status_code == 200 and "Entrance" in lists.text
    page = client.get(scan_url(convening, entrance))
    assert page.status_code == 200
    assert 'id="code"' in page.text and "autofocus" in page.text and 'aria-live="assertive"' in page.text
    # Only this page may compile WebAssembly (the camera polyfill); everything else stays as strict as before.
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in policy and "unsafe-inline" not in policy
    assert "wasm-unsafe-eval" not in lists.headers["Content-Security-Policy"]
    assert "https://" not in page.text.split("<body")[1]  # no CDN anywhere on the page


def test_without_javascript_a_scan_is_a_form_post_answered_with_the_result(client, scene):
    convening, entrance, ana, users = scene
    login(client, users["desk"].email)
    scan_id = re.search(r'name="scan_id" value="([0-9a-f]+)"', client.get(scan_url(convening, entrance)).text)[1]
    answer = client.post(scan_url(convening, entrance), data={"code": ana.checkin_token, "scan_id": scan_id})
    assert answer.status_code == 200
    assert "Checked in" in answer.text and "Ana Müller" in answer.text and "Maryland" in answer.text
    assert "Badge not printed yet" in answer.text
    assert "Undo this check-in" not in answer.text  # the desk cannot undo
    assert f'/checkin/desk/people/{ana.id}">Fix or reprint the badge' in answer.text
    # The browser sending the same form again (a reload) is the same scan, not a second one.
    again = client.post(scan_url(convening, entrance), data={"code": ana.checkin_token, "scan_id": scan_id})
    assert "Checked in" in again.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CheckinScan)) == 1
    later = client.post(scan_url(convening, entrance), data={"code": ana.reference.lower(), "scan_id": "other"})
    assert "Already checked in" in later.text and "by desk" in later.text
    assert active(entrance.id) == 1


def test_a_name_search_offers_the_people_to_pick_and_an_empty_code_says_what_to_do(client, scene):
    convening, entrance, ana, users = scene
    login(client, users["desk"].email)
    found = client.post(scan_url(convening, entrance), data={"code": "muller"})
    assert "Choose the person" in found.text and f'name="code" value="{ana.reference}"' in found.text
    assert active(entrance.id) == 0
    empty = client.post(scan_url(convening, entrance), data={"code": "   "})
    assert empty.status_code == 422 and "Scan a badge, or type a reference or a name." in empty.text


def test_the_json_endpoint_answers_each_scan_and_recognises_one_sent_again(client, scene):
    convening, entrance, ana, users = scene
    login(client, users["organizer"].email)
    payload = {"code": ana.checkin_token, "scan_id": "abc-1", "device": "phone-1",
               "scanned_at": "2030-05-01T08:41:00Z"}
    first = client.post(scan_url(convening, entrance, "/scan"), json=payload)
    assert first.status_code == 200
    body = first.get_json()
    assert (body["result"], body["ok"], body["headline"], body["person"]["badge_name"], body["arrived"]) == (
        "checked_in", True, "Checked in", "Ani", 1)
    assert body["undo_url"].endswith(f"/checkin/undo/{body['checkin_id']}")
    assert body["fix_url"].endswith(f"/checkin/desk/people/{ana.id}")
    resent = client.post(scan_url(convening, entrance, "/scan"), json=payload).get_json()
    assert resent["result"] == "checked_in" and resent["repeated"] is True
    [scan] = db.session.scalars(sa.select(CheckinScan)).all()
    assert scan.device == "phone-1" and scan.scanned_at.isoformat().startswith("2030-05-01T08:41")
    for bad in (None, [1], {"code": 5}):
        assert client.post(scan_url(convening, entrance, "/scan"), json=bad).status_code == 400
    refused = client.post(scan_url(convening, entrance, "/scan"), json={"code": ""})
    assert refused.status_code == 422 and refused.get_json()["code"] == "checkin_code_required"


def test_an_organizer_undoes_a_check_in_and_the_desk_cannot(client, scene):
    convening, entrance, ana, users = scene
    answer = checkin.check_in(entrance, ana.checkin_token, by=users["desk"])
    login(client, users["desk"].email)
    assert client.post(f"/admin/c/{convening.id}/checkin/undo/{answer.checkin_id}").status_code == 403
    assert active(entrance.id) == 1
    client.post("/admin/logout")
    login(client, users["organizer"].email)
    undone = client.post(f"/admin/c/{convening.id}/checkin/undo/{answer.checkin_id}",
                         headers={"Accept": "application/json"})
    assert undone.status_code == 200 and undone.get_json()["arrived"] == 0
    twice = client.post(f"/admin/c/{convening.id}/checkin/undo/{answer.checkin_id}",
                        headers={"Accept": "application/json"})
    assert twice.status_code == 400 and "already undone" in twice.get_json()["error"]
    assert active(entrance.id) == 0


def test_lists_and_check_ins_of_another_convening_are_not_found(client, scene):
    convening, entrance, ana, users = scene
    other = make_convening()
    other_list = checkin.main_list(other.id)
    stranger = make_registration(other, make_ticket(other), given_name="Zainab", family_name="Okafor")
    answer = checkin.check_in(other_list, stranger.checkin_token)
    login(client, users["organizer"].email)
    assert client.get(f"/admin/c/{convening.id}/checkin/{other_list.id}").status_code == 404
    assert client.post(f"/admin/c/{convening.id}/checkin/{other_list.id}/scan", json={"code": "x"}).status_code == 404
    assert client.post(f"/admin/c/{convening.id}/checkin/undo/{answer.checkin_id}").status_code == 404
    # A badge of the other convening scanned here is unknown: nothing about its person shows.
    for code in (stranger.checkin_token, stranger.reference, "Zainab Okafor"):
        response = client.post(scan_url(convening, entrance, "/scan"), json={"code": code})
        assert response.get_json()["result"] == "unknown" and "Okafor" not in response.text


@pytest.mark.parametrize("role", ["finance", "viewer"])
def test_roles_without_check_in_see_nothing_of_it(client, scene, role):
    convening, entrance, ana, users = scene
    login(client, users[role].email)
    assert client.get(f"/admin/c/{convening.id}/checkin").status_code == 403
    assert client.get(scan_url(convening, entrance)).status_code == 403
    refused = client.post(scan_url(convening, entrance, "/scan"), json={"code": ana.checkin_token})
    assert refused.status_code == 403 and ana.family_name not in refused.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CheckinScan)) == 0
    assert "Check-in" not in client.get(f"/admin/c/{convening.id}").text


def test_a_site_visit_lead_scans_their_group_but_does_no_desk_work(client, scene):
    convening, entrance, ana, users = scene
    login(client, users["site_visit_lead"].email)
    assert client.get(f"/admin/c/{convening.id}/checkin").status_code == 200
    answer = client.post(scan_url(convening, entrance, "/scan"), json={"code": ana.checkin_token})
    assert answer.get_json()["result"] == "checked_in" and active(entrance.id) == 1
    checkin_id = answer.get_json()["checkin_id"]
    # undoing a check-in, walk-ins and badge fixes stay with the desk and organizers
    assert client.post(f"/admin/c/{convening.id}/checkin/undo/{checkin_id}").status_code == 403
    assert client.post(f"/admin/c/{convening.id}/checkin/desk", data={
        "given_name": "Walk", "family_name": "In", "email": "walk@example.org"}).status_code == 403
    assert client.post(f"/admin/c/{convening.id}/checkin/desk/people/{ana.id}",
                       data={"badge_name": "Changed"}).status_code == 403
    assert client.post(f"/admin/c/{convening.id}/registrations/walk-in", data={
        "given_name": "Walk", "family_name": "In", "email": "walk@example.org"}).status_code == 403
    db.session.rollback()
    assert active(entrance.id) == 1 and db.session.get(type(ana), ana.id).badge_name == "Ani"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(type(ana)).where(
        type(ana).email == "walk@example.org")) == 0


def test_signed_out_and_outsiders_get_nothing(client, scene):
    convening, entrance, ana, _ = scene
    response = client.post(scan_url(convening, entrance, "/scan"), json={"code": ana.checkin_token})
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    outsider = make_user("out@example.org", role="owner", convening=make_convening())
    login(client, outsider.email)
    assert client.post(scan_url(convening, entrance, "/scan"), json={"code": ana.checkin_token}).status_code == 404
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CheckinScan)) == 0


@pytest.mark.parametrize("number", ["99999999999999999999", "2147483648", "0"])
def test_ids_too_large_for_the_database_are_simply_not_found(client, scene, number):
    convening, entrance, _, users = scene
    login(client, users["organizer"].email)
    for method, url in (("GET", f"/admin/c/{number}/checkin"), ("GET", f"/admin/c/{convening.id}/checkin/{number}"),
                        ("POST", f"/admin/c/{convening.id}/checkin/{number}"),
                        ("POST", f"/admin/c/{convening.id}/checkin/{number}/scan"),
                        ("POST", f"/admin/c/{convening.id}/checkin/undo/{number}")):
        assert client.open(url, method=method, json={"code": "x"}).status_code == 404, (method, url)


def test_hostile_codes_are_answered_never_a_server_error(client, scene):
    convening, entrance, _, users = scene
    login(client, users["desk"].email)
    for code in ("\x00", "a\x00b", "%", "_", "\\", "'; DROP TABLE checkin; --", "x" * 5000, "\ud800", "🙂" * 300,
                 "TOR-", "   TOR-%   "):
        response = client.post(scan_url(convening, entrance, "/scan"), json={"code": code, "scan_id": code,
                                                                           "device": code, "scanned_at": code})
        assert response.status_code in (200, 400, 422), (code, response.status_code)
        if code == "\ud800":
            continue  # a lone surrogate only arrives inside JSON (a form cannot carry it)
        form = client.post(scan_url(convening, entrance), data={"code": code, "scan_id": code, "device": code})
        assert form.status_code in (200, 400, 422), (code, form.status_code)  # 400: NUL refused app-wide
