"""The program editor through the test client: forms, messages beside fields, the grid, who may do what."""
from __future__ import annotations

import html
import re
from datetime import date
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from convene.extensions import db
from convene.models import Presenter, ProgramSession, ProgramSettings, Room, SessionBlock, SessionSignup
from convene.services import schedule as service
from tests.factories import make_convening, make_registration, make_ticket
from tests.schedule_helpers import form_time, local, make_block, make_presenter, make_room, make_session, publish


def error_beside(page: str, field: str) -> str | None:
    """The error text the field macro renders right under `field`, or None."""
    match = re.search(rf'<p class="error" id="{field}-error">(.*?)</p>', page)
    return html.unescape(match.group(1)) if match else None


def preview_token(page: str) -> str:
    """The token a confirmation page carries for what it previewed."""
    return re.search(r'name="preview" value="([0-9a-f]+)"', page).group(1)


def follow(client, response):
    """The page a redirect leads to (flashed messages included)."""
    assert response.status_code == 302, response.status_code
    return client.get(response.headers["Location"])


def rows(model, **where) -> list:
    db.session.rollback()
    query = sa.select(model)
    for key, value in where.items():
        query = query.where(getattr(model, key) == value)
    return db.session.execute(query).scalars().all()


@pytest.fixture
def scene(app):
    convening = make_convening(starts_on=date(2027, 6, 8), ends_on=date(2027, 6, 10))
    ticket = make_ticket(convening)
    hall = make_room(convening, "Great Hall", 150, position=0)
    salon = make_room(convening, "Salon A", 20, position=1)
    person = make_registration(convening, ticket, 1)
    keynote = make_session(convening, "Opening keynote", 0, "17:00", "18:00", room=hall, kind="keynote")
    block = make_block(convening)
    presenter = make_presenter(convening, "Dana Whitfield")
    return SimpleNamespace(convening=convening, id=convening.id, url=f"/admin/c/{convening.id}/schedule",
                           hall=hall, salon=salon, person=person, keynote=keynote, block=block, presenter=presenter)


def session_form(scene, **changes) -> dict:
    """A valid session form as a browser posts it (unchecked boxes are simply absent)."""
    data = {"title": "Mentorship", "kind": "roundtable", "starts_at": form_time(scene.convening, 1, "14:00"),
            "ends_at": form_time(scene.convening, 1, "15:30"), "room_id": str(scene.salon.id), "location": "",
            "capacity": "", "block_id": "", "visit_slot_id": "", "track": "Roundtables", "description": ""}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def titles(convening_id: int) -> list[str]:
    return sorted(s.title for s in rows(ProgramSession, convening_id=convening_id))


# -- sessions -------------------------------------------------------------------------------------------

def test_an_organizer_adds_a_session_in_local_time_and_sees_it_on_the_grid(organizer_client, scene):
    response = organizer_client.post(f"{scene.url}/sessions/new", data=session_form(
        scene, signup_required="y", presenter_ids=[str(scene.presenter.id)]))
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).query == "day=2027-06-09"
    [session] = [s for s in rows(ProgramSession, title="Mentorship")]
    assert session.starts_at == local(scene.convening, 1, "14:00") and session.signup_required
    assert [p.name for p in session.presenters] == ["Dana Whitfield"]
    page = organizer_client.get(response.headers["Location"]).text
    assert "Mentorship" in page and 'rowspan="1"' in page and "14:00" in page and "Dana Whitfield" in page


BAD_SESSION_INPUT = [
    ({"title": "  "}, "title", "Enter a title."),
    ({"starts_at": ""}, "starts_at", "Enter when the session starts."),
    ({"ends_at": "tomorrow"}, "ends_at", "Enter a date and time, like 2025-06-10T09:30."),
    ({"ends_at": "2027-06-09T13:00"}, "ends_at", "The session must end after it starts."),
    ({"ends_at": "2027-06-11T16:00"}, "ends_at", "A session cannot last more than 24 hours; check the dates."),
    ({"capacity": "-4"}, "capacity", "Capacity cannot be negative; leave it empty for no limit."),
    ({"capacity": "lots"}, "capacity", "Enter a whole number."),
    ({"capacity": "99999999999"}, "capacity", "Enter at most 100,000."),
    ({"room_id": "99999"}, "room_id", "Choose one of the options."),
    ({"room_id": "abc"}, "room_id", "Invalid Choice: could not coerce."),
    ({"kind": "party"}, "kind", "Not a valid choice."),
    ({"presenter_ids": ["12345"]}, "presenter_ids", "'12345' is not a valid choice for this field."),
]


def test_bad_session_input_is_explained_beside_the_field_and_nothing_is_saved(organizer_client, scene):
    for changes, field, message in BAD_SESSION_INPUT:
        response = organizer_client.post(f"{scene.url}/sessions/new", data=session_form(scene, **changes))
        assert response.status_code == 200, changes
        assert error_beside(response.text, field) == message, changes
    assert titles(scene.id) == ["Opening keynote"]


def test_a_blocking_conflict_is_refused_beside_the_room_and_a_warning_is_flashed(organizer_client, scene):
    response = organizer_client.post(f"{scene.url}/sessions/new", data=session_form(
        scene, title="Clash", starts_at=form_time(scene.convening, 0, "17:30"),
        ends_at=form_time(scene.convening, 0, "18:30"), room_id=str(scene.hall.id)))
    assert response.status_code == 200
    assert error_beside(response.text, "room_id").startswith("Great Hall is booked for both")
    assert titles(scene.id) == ["Opening keynote"]
    response = follow(organizer_client, organizer_client.post(f"{scene.url}/sessions/new",
                                                              data=session_form(scene, capacity="30")))
    assert "Warning: Mentorship takes 30 sign-ups but Salon A holds 20." in response.text
    assert titles(scene.id) == ["Mentorship", "Opening keynote"]


def test_a_spring_forward_time_is_refused_beside_the_field(organizer_client, app):
    convening = make_convening(starts_on=date(2027, 3, 13), ends_on=date(2027, 3, 15))
    response = organizer_client.post(f"/admin/c/{convening.id}/schedule/sessions/new", data={
        "title": "Night owls", "kind": "networking", "starts_at": "2027-03-14T02:30", "ends_at": "2027-03-14T04:00"})
    assert "does not exist in America/Toronto" in error_beside(response.text, "starts_at")
    assert titles(convening.id) == []


def test_editing_shows_local_times_and_saves(organizer_client, scene):
    url = f"{scene.url}/sessions/{scene.keynote.id}/edit"
    page = organizer_client.get(url).text
    assert 'value="2027-06-08T17:00"' in page and 'value="2027-06-08T18:00"' in page
    response = organizer_client.post(url, data=session_form(
        scene, title="Opening keynote: Why Toronto", kind="keynote", starts_at="2027-06-08T17:15",
        ends_at="2027-06-08T18:15", room_id=str(scene.hall.id)))
    assert response.status_code == 302
    [keynote] = rows(ProgramSession, id=scene.keynote.id)
    assert keynote.title == "Opening keynote: Why Toronto" and keynote.sequence == 1
    assert keynote.starts_at == local(scene.convening, 0, "17:15")


def test_moving_keeps_the_length_and_a_bad_start_changes_nothing(organizer_client, scene):
    url = f"{scene.url}/sessions/{scene.keynote.id}/move"
    assert 'value="2027-06-08T17:00"' in organizer_client.get(url).text
    response = organizer_client.post(url, data={"starts_at": "2027-06-09T09:00", "room_id": str(scene.salon.id)})
    assert response.status_code == 302
    [keynote] = rows(ProgramSession, id=scene.keynote.id)
    assert keynote.starts_at == local(scene.convening, 1, "09:00")
    assert keynote.ends_at == local(scene.convening, 1, "10:00")
    assert keynote.room_id == scene.salon.id
    response = organizer_client.post(url, data={"starts_at": "not a time", "room_id": ""})
    assert error_beside(response.text, "starts_at") == "Enter a date and time, like 2025-06-10T09:30."
    assert rows(ProgramSession, id=scene.keynote.id)[0].room_id == scene.salon.id


def test_duplicating_prefills_a_copy_and_refuses_the_same_room_and_time(organizer_client, scene):
    url = f"{scene.url}/sessions/{scene.keynote.id}/duplicate"
    page = organizer_client.get(url).text
    assert 'value="Opening keynote (copy)"' in page
    same = session_form(scene, title="Opening keynote (copy)", kind="keynote", starts_at="2027-06-08T17:00",
                        ends_at="2027-06-08T18:00", room_id=str(scene.hall.id))
    response = organizer_client.post(url, data=same)
    assert error_beside(response.text, "room_id").startswith("Great Hall is booked for both")
    response = organizer_client.post(url, data={**same, "starts_at": "2027-06-10T17:00", "ends_at": "2027-06-10T18:00"})
    assert response.status_code == 302
    assert titles(scene.id) == ["Opening keynote", "Opening keynote (copy)"]


def test_deleting_a_session(organizer_client, scene):
    url = f"{scene.url}/sessions/{scene.keynote.id}/delete"
    # A bare post (the old one-click button) only shows the confirmation page.
    response = organizer_client.post(url)
    assert response.status_code == 200 and "Delete Opening keynote?" in response.text
    assert titles(scene.id) == ["Opening keynote"]
    token = re.search(r'name="preview" value="([0-9a-f]+)"', response.text).group(1)
    response = organizer_client.post(url, data={"preview": token})
    assert response.status_code == 302
    assert titles(scene.id) == []


def test_the_grid_and_list_show_conflicts_beside_each_session_and_in_a_summary(organizer_client, scene):
    service.set_conflict_rules(scene.id, {"room_double_booked": "warning"})
    make_session(scene.convening, "Clash", 0, "17:30", "18:30", room=scene.hall, kind="roundtable")
    grid = organizer_client.get(f"{scene.url}?day=2027-06-08").text
    assert 'class="slot double"' in grid and "&#9888; 1 conflict" in grid and "1 warning" in grid
    listing = organizer_client.get(f"{scene.url}/list").text
    assert listing.count("Great Hall is booked for both") == 3  # the summary, then beside each session
    assert organizer_client.get(f"{scene.url}?day=garbage").status_code == 200
    assert organizer_client.get(f"{scene.url}?day=1999-01-01").status_code == 200


def test_an_empty_grid_cell_prefills_the_new_session_form(organizer_client, scene):
    grid = organizer_client.get(f"{scene.url}?day=2027-06-08").text
    assert f"/sessions/new?starts_at=2027-06-08T17:00&amp;room_id={scene.salon.id}" in grid
    page = organizer_client.get(f"{scene.url}/sessions/new?starts_at=2027-06-08T17:00&room_id={scene.salon.id}").text
    assert 'value="2027-06-08T17:00"' in page and f'<option selected value="{scene.salon.id}">' in page
    assert organizer_client.get(f"{scene.url}/sessions/new?starts_at=nonsense&room_id=x").status_code == 200


def test_a_session_of_another_convening_is_not_found(organizer_client, scene):
    other = make_convening()
    foreign = make_session(other, "Elsewhere", 0, "09:00", "10:00")
    for path in ("", "/edit", "/move", "/duplicate"):
        assert organizer_client.get(f"{scene.url}/sessions/{foreign.id}{path}").status_code == 404
    assert organizer_client.post(f"{scene.url}/sessions/{foreign.id}/delete").status_code == 404
    huge = 10**22  # past any integer column: still just "not found"
    for path in (f"/sessions/{huge}/edit", f"/rooms/{huge}", f"/blocks/{huge}/allocate"):
        assert organizer_client.get(scene.url + path).status_code == 404
    assert organizer_client.get(f"/admin/c/{huge}/schedule").status_code == 404
    assert titles(other.id) == ["Elsewhere"]


# -- rooms, presenters, rules, publishing ---------------------------------------------------------------------

def test_rooms_are_added_checked_and_kept_while_in_use(organizer_client, scene):
    response = organizer_client.post(f"{scene.url}/rooms/new", data={"name": "Library", "capacity": "14",
                                                                    "floor": "Mezzanine"})
    assert response.status_code == 302
    [library] = rows(Room, name="Library")
    assert library.capacity == 14 and not library.accessible  # the box was left unticked
    response = organizer_client.post(f"{scene.url}/rooms/new", data={"name": "great hall", "capacity": "-2"})
    assert error_beside(response.text, "capacity") == "Capacity cannot be negative; leave it empty for no limit."
    response = organizer_client.post(f"{scene.url}/rooms/new", data={"name": "great hall", "capacity": "5"})
    assert error_beside(response.text, "name") == "A room with that name already exists."
    # The confirmation says first why the room cannot go, and offers no button to try.
    page = organizer_client.get(f"{scene.url}/rooms/{scene.hall.id}/delete").text
    assert "1 session is scheduled in Great Hall; move or delete it first." in page
    assert "Opening keynote (" in page and 'id="confirm-delete"' not in page
    token = re.search(r'name="preview" value="([0-9a-f]+)"', organizer_client.get(
        f"{scene.url}/rooms/{scene.salon.id}/delete").text).group(1)
    forced = organizer_client.post(f"{scene.url}/rooms/{scene.hall.id}/delete", data={"preview": token})
    assert forced.status_code == 200 and "1 session is scheduled in Great Hall" in forced.text
    assert len(rows(Room, convening_id=scene.id)) == 3


def test_presenters_are_linked_to_registrations_or_external(organizer_client, scene):
    response = organizer_client.post(f"{scene.url}/presenters/new", data={"registration_id": "", "name": ""})
    assert error_beside(response.text, "name") == "Enter a name, or choose a registered person."
    response = organizer_client.post(f"{scene.url}/presenters/new", data={
        "registration_id": str(scene.person.id), "bio": "Runs the bridging program."})
    assert response.status_code == 302
    linked = [p for p in rows(Presenter, convening_id=scene.id) if p.registration_id]
    assert [p.name for p in linked] == [scene.person.full_name]
    response = organizer_client.post(f"{scene.url}/presenters/new", data={"registration_id": str(scene.person.id)})
    assert error_beside(response.text, "registration_id") == "That person is already listed as a presenter."
    response = organizer_client.post(f"{scene.url}/presenters/new", data={"registration_id": "x", "name": "X"})
    assert error_beside(response.text, "registration_id") == "Invalid Choice: could not coerce."


def test_conflict_rules_are_saved_and_checked(organizer_client, scene):
    url = f"{scene.url}/rules"
    page = organizer_client.get(url).text
    assert "A room booked for two sessions at once" in page
    data = {f"rule_{kind}": "warning" for kind in service.CONFLICT_KINDS}
    response = organizer_client.post(url, data={**data, "rule_attendee_overlap": "blocking"})
    assert response.status_code == 302
    assert service.conflict_rules(scene.id)["attendee_overlap"] == "blocking"
    assert service.conflict_rules(scene.id)["room_double_booked"] == "warning"
    response = organizer_client.post(url, data={**data, "rule_presenter_clash": "sometimes"})
    assert error_beside(response.text, "rule_presenter_clash") == "Not a valid choice."
    assert service.conflict_rules(scene.id)["presenter_clash"] == "warning"


def test_publishing_and_back_to_draft(organizer_client, scene):
    response = organizer_client.post(f"{scene.url}/publish")  # a bare post only shows the confirmation
    assert response.status_code == 200 and not service.is_published(scene.id)
    token = re.search(r'name="preview" value="([0-9a-f]+)"', response.text).group(1)
    response = follow(organizer_client, organizer_client.post(f"{scene.url}/publish", data={"preview": token}))
    assert "The program is published." in response.text and service.is_published(scene.id)
    response = follow(organizer_client, organizer_client.post(f"{scene.url}/unpublish"))
    assert "back to draft" in response.text and not service.is_published(scene.id)


def test_allocation_page_allocates_a_blocks_places(organizer_client, scene):
    publish(scene.convening)
    groups = [make_session(scene.convening, name, 2, "11:00", "12:30", room=room, signup_required=True,
                           capacity=1, block_id=scene.block.id, kind="working_group")
              for name, room in (("Pathways", scene.hall), ("Refugee Strategies", scene.salon))]
    service.set_session_preferences(scene.person.id, scene.block.id, [groups[1].id, groups[0].id])
    url = f"{scene.url}/blocks/{scene.block.id}/allocate"
    assert "Refugee Strategies" in organizer_client.get(url).text
    response = organizer_client.post(url, data={})  # the first step only previews
    assert response.status_code == 200 and re.search(r'id="plan-placed">1<', response.text)
    assert rows(SessionSignup) == [] and rows(SessionBlock, id=scene.block.id)[0].preferences_open
    response = follow(organizer_client, organizer_client.post(url, data={"preview": preview_token(response.text)}))
    assert "1 of 1 people are placed (optimal)." in response.text
    assert [s.session_id for s in rows(SessionSignup)] == [groups[1].id]
    assert not rows(SessionBlock, id=scene.block.id)[0].preferences_open


def test_blocks_are_named_uniquely(organizer_client, scene):
    response = organizer_client.post(f"{scene.url}/blocks/new", data={"name": "working groups"})
    assert error_beside(response.text, "name") == "A block with that name already exists."
    response = organizer_client.post(f"{scene.url}/blocks/{scene.block.id}", data={"name": "Day 3 groups"})
    assert response.status_code == 302
    assert rows(SessionBlock, id=scene.block.id)[0].name == "Day 3 groups"


# -- who may do what ------------------------------------------------------------------------------------

VIEW, CHANGE = "view", "change"
# In an order an organizer can run straight through: nothing is deleted before a later page needs it.
PAGES = [
    ("GET", "", VIEW),
    ("GET", "/list", VIEW),
    ("GET", "/sessions/{session}", VIEW),
    ("GET", "/rooms", VIEW),
    ("GET", "/presenters", VIEW),
    ("GET", "/blocks", VIEW),
    ("GET", "/blocks/{block}/allocate", VIEW),
    ("GET", "/rules", VIEW),
    ("GET", "/sessions/new", CHANGE),
    ("GET", "/sessions/{session}/edit", CHANGE),
    ("GET", "/sessions/{session}/move", CHANGE),
    ("GET", "/sessions/{session}/duplicate", CHANGE),
    ("GET", "/rooms/new", CHANGE),
    ("GET", "/rooms/{room}", CHANGE),
    ("GET", "/presenters/new", CHANGE),
    ("GET", "/presenters/{presenter}", CHANGE),
    ("GET", "/blocks/new", CHANGE),
    ("GET", "/blocks/{block}", CHANGE),
    ("GET", "/sessions/{session}/delete", CHANGE),
    ("GET", "/rooms/{room}/delete", CHANGE),
    ("GET", "/presenters/{presenter}/delete", CHANGE),
    ("GET", "/blocks/{block}/delete", CHANGE),
    ("GET", "/publish", CHANGE),
    ("POST", "/blocks/{block}/allocate", CHANGE),
    ("POST", "/rules", CHANGE),
    ("POST", "/publish", CHANGE),
    ("POST", "/unpublish", CHANGE),
    ("POST", "/rooms/{room}/delete", CHANGE),
    ("POST", "/presenters/{presenter}/delete", CHANGE),
    ("POST", "/blocks/{block}/delete", CHANGE),
    ("POST", "/sessions/{session}/delete", CHANGE),
]


@pytest.mark.parametrize("role", ["anonymous", "staff", "organizer"])
def test_access_rules(request, scene, role):
    """Anonymous visitors sign in first; staff may look but not change; organizers may do everything."""
    client = request.getfixturevalue({"anonymous": "client", "staff": "staff_client",
                                      "organizer": "organizer_client"}[role])
    ids = dict(session=scene.keynote.id, room=scene.salon.id, presenter=scene.presenter.id, block=scene.block.id)
    for method, path, kind in PAGES:
        url = scene.url + path.format(**ids)
        response = client.open(url, method=method)
        where = f"{role} {method} {url}"
        if role == "anonymous":
            assert response.status_code == 302, where
            assert urlsplit(response.headers["Location"]).path == "/admin/login", where
        elif role == "staff" and kind == CHANGE:
            assert response.status_code == 403, where
        elif method == "GET":
            assert response.status_code == 200, where
        else:
            assert response.status_code in (200, 302), where
    if role != "organizer":  # the refused requests changed nothing
        assert titles(scene.id) == ["Opening keynote"]
        assert len(rows(Room, convening_id=scene.id)) == 2 and len(rows(Presenter, convening_id=scene.id)) == 1
        assert len(rows(SessionBlock, convening_id=scene.id)) == 1 and rows(ProgramSettings) == []
    else:
        # A bare post to delete anything only shows its confirmation page (it carries no preview token).
        assert titles(scene.id) == ["Opening keynote"] and len(rows(Room, convening_id=scene.id)) == 2
        assert len(rows(Presenter, convening_id=scene.id)) == 1 and len(rows(SessionBlock, convening_id=scene.id)) == 1


def test_staff_see_the_program_without_editing_links(staff_client, scene):
    page = staff_client.get(scene.url + "?day=2027-06-08").text
    assert "Opening keynote" in page and "New session" not in page and "/edit" not in page


# -- sign-in sheets and attendee lists (issue 11: 22) ---------------------------------------------------

def test_staff_print_a_sessions_sign_in_sheet_and_download_its_attendees(staff_client, app, scene):
    import csv
    import io

    from pypdf import PdfReader

    ticket = scene.person.ticket_type
    alvarez = make_registration(scene.convening, ticket, 2, given_name="José", family_name="Álvarez",
                                phone="+1 315 555 5707")
    zhou = make_registration(scene.convening, ticket, 3, given_name="Wei", family_name="Zhou")
    workshop = make_session(scene.convening, "Budget workshop", 1, "10:00", "11:00", room=scene.salon,
                            kind="workshop", signup_required=True)
    for r in (zhou, scene.person, alvarez):
        db.session.add(SessionSignup(session_id=workshop.id, registration_id=r.id))
    db.session.commit()
    url = f"{scene.url}/sessions/{workshop.id}"

    page = staff_client.get(url).text
    assert f'href="{url}/sign-in.pdf"' in page and f'href="{url}/attendees.csv"' in page

    pdf = staff_client.get(f"{url}/sign-in.pdf")
    assert pdf.status_code == 200 and pdf.content_type == "application/pdf"
    assert "attachment" in pdf.headers["Content-Disposition"]
    text = PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    assert "Budget workshop" in text and text.index("Álvarez") < text.index(scene.person.family_name) < text.index("Zhou")

    sheet = staff_client.get(f"{url}/attendees.csv")
    assert sheet.status_code == 200 and sheet.content_type == "text/csv; charset=utf-8"
    table = list(csv.DictReader(io.StringIO(sheet.data.decode("utf-8-sig"))))
    assert [r["Family name"] for r in table] == ["Álvarez", scene.person.family_name, "Zhou"]
    assert table[0]["Session"] == "Budget workshop" and table[0]["Starts"] == "2027-06-09 10:00"
    assert table[0]["Where"] == "Salon A, Metro Centre" and table[0]["Phone"] == "+1 315 555 5707"

    # The keynote needs no sign-up: its sheet is blank lines only, and it offers no attendee list.
    keynote = staff_client.get(f"{scene.url}/sessions/{scene.keynote.id}").text
    assert "sign-in.pdf" in keynote and "attendees.csv" not in keynote

    assert app.test_client().get(f"{url}/sign-in.pdf").status_code == 302  # sign in first
    other = make_convening()
    assert staff_client.get(f"/admin/c/{other.id}/schedule/sessions/{workshop.id}/attendees.csv").status_code == 404


# -- deleting a session of the published program (issue 11: 20) -----------------------------------------

def test_deleting_a_published_session_asks_a_reason_and_emails_the_people_signed_up(organizer_client, scene, outbox):
    publish(scene.convening)
    group = make_session(scene.convening, "Group", 1, "14:00", "15:00", room=scene.salon, signup_required=True)
    service.sign_up(scene.person.id, group.id)
    url = f"{scene.url}/sessions/{group.id}/delete"
    assert f'href="{url}"' in organizer_client.get(f"{scene.url}/sessions/{group.id}").text
    page = organizer_client.get(url).text
    assert re.search(r'id="signed-up">1<', page) and html.escape(scene.person.full_name) in page
    token = re.search(r'name="preview" value="([0-9a-f]+)"', page).group(1)
    response = organizer_client.post(url, data={"preview": token, "reason": ""})
    assert response.status_code == 200 and error_beside(response.text, "reason").startswith("The program is published")
    assert "Group" in titles(scene.id) and outbox.messages() == []
    response = organizer_client.post(url, data={"preview": token, "reason": "The speaker's flight was cancelled."})
    assert response.status_code == 302 and "Group" not in titles(scene.id)
    [message] = outbox.messages()
    assert message["To"] == scene.person.email and "The speaker's flight was cancelled." in outbox.text(message)


def test_a_sign_up_after_the_preview_refuses_the_delete_and_shows_the_new_count(organizer_client, scene, outbox):
    publish(scene.convening)
    group = make_session(scene.convening, "Group", 1, "14:00", "15:00", room=scene.salon, signup_required=True)
    url = f"{scene.url}/sessions/{group.id}/delete"
    page = organizer_client.get(url).text
    assert re.search(r'id="signed-up">0<', page)
    service.sign_up(scene.person.id, group.id)
    token = re.search(r'name="preview" value="([0-9a-f]+)"', page).group(1)
    response = organizer_client.post(url, data={"preview": token, "reason": "Merged into the plenary."})
    assert "Nothing was deleted" in response.text and re.search(r'id="signed-up">1<', response.text)
    assert "Group" in titles(scene.id) and outbox.messages() == []


# -- publishing the program over open warnings (issue 11: 20) ---------------------------------------------

def test_the_publish_confirmation_lists_the_open_warnings_and_refuses_if_they_changed(organizer_client, scene):
    service.set_conflict_rules(scene.id, {"room_double_booked": "warning"})
    make_session(scene.convening, "Clash", 0, "17:30", "18:30", room=scene.hall, kind="roundtable")
    assert f'href="{scene.url}/publish"' in organizer_client.get(scene.url).text
    page = organizer_client.get(f"{scene.url}/publish").text
    assert re.search(r'id="warning-count">1<', page) and "Great Hall is booked for both" in page
    make_session(scene.convening, "Another clash", 0, "17:15", "17:45", room=scene.hall, kind="roundtable")
    token = re.search(r'name="preview" value="([0-9a-f]+)"', page).group(1)
    response = organizer_client.post(f"{scene.url}/publish", data={"preview": token})
    assert "Nothing was published: the open warnings changed" in response.text and not service.is_published(scene.id)
    assert re.search(r'id="warning-count">3<', response.text)
    token = re.search(r'name="preview" value="([0-9a-f]+)"', response.text).group(1)
    response = follow(organizer_client, organizer_client.post(f"{scene.url}/publish", data={"preview": token}))
    assert "The program is published over 3 open warnings." in response.text and service.is_published(scene.id)


# -- ranking opens and allocation tell the people concerned (issue 11: 20) --------------------------------

def test_opening_a_blocks_ranking_previews_and_emails_the_confirmed_attendees(organizer_client, scene, outbox):
    closed = make_block(scene.convening, "Field trips", preferences_open=False)
    url = f"{scene.url}/blocks/{closed.id}"
    page = organizer_client.get(url).text
    assert re.search(r'id="audience-count">1<', page)  # the form says how many; the next page names them
    confirm = organizer_client.post(url, data={"name": "Field trips", "preferences_open": "y"})
    assert confirm.status_code == 200 and "Open ranking of Field trips?" in confirm.text
    assert html.escape(scene.person.full_name) in confirm.text and html.escape(scene.person.email) in confirm.text
    assert outbox.messages() == []
    assert not rows(SessionBlock, id=closed.id)[0].preferences_open  # nothing changes before the confirmation
    response = follow(organizer_client, organizer_client.post(url, data={
        "name": "Field trips", "preferences_open": "y", "preview": preview_token(confirm.text)}))
    assert "1 person was emailed to rank its sessions." in response.text
    [message] = outbox.messages()
    assert message["To"] == scene.person.email and "Field trips" in message["Subject"]
    follow(organizer_client, organizer_client.post(url, data={"name": "Field trips", "preferences_open": "y"}))
    assert len(outbox.messages()) == 1  # saving an open block again tells nobody twice


def test_allocating_emails_each_person_their_session_and_counts_them(organizer_client, scene, outbox):
    publish(scene.convening)
    group = make_session(scene.convening, "Group A", 2, "11:00", "12:30", room=scene.salon, signup_required=True,
                         capacity=5, block_id=scene.block.id, kind="working_group")
    service.set_session_preferences(scene.person.id, scene.block.id, [group.id])
    url = f"{scene.url}/blocks/{scene.block.id}/allocate"
    preview = organizer_client.post(url, data={})
    assert re.search(r'id="plan-emailed">1<', preview.text) and outbox.messages() == []
    response = follow(organizer_client, organizer_client.post(url, data={"preview": preview_token(preview.text)}))
    assert "1 person was emailed their session." in response.text
    [message] = outbox.messages()
    assert message["To"] == scene.person.email and "Group A" in outbox.text(message)


# -- previews before allocating, opening ranking and deleting (issue 11: 20) ------------------------------

def working_groups(scene, seats: int = 1):
    publish(scene.convening)
    return [make_session(scene.convening, name, 2, "11:00", "12:30", room=room, signup_required=True,
                         capacity=seats, block_id=scene.block.id, kind="working_group")
            for name, room in (("Pathways", scene.hall), ("Refugee Strategies", scene.salon))]


def previewed_places(page: str) -> dict[int, int]:
    return {int(r): int(s) for r, s in re.findall(r'id="placed-(\d+)" data-session="(\d+)"', page)}


def test_the_allocation_preview_names_each_place_and_confirming_commits_exactly_those(organizer_client, scene, outbox):
    pathways, refugees = working_groups(scene)
    ticket = scene.person.ticket_type
    others = [make_registration(scene.convening, ticket, n) for n in (2, 3)]
    for person in (scene.person, *others):
        service.set_session_preferences(person.id, scene.block.id, [refugees.id, pathways.id])
    url = f"{scene.url}/blocks/{scene.block.id}/allocate"
    page = organizer_client.post(url, data={}).text
    places = previewed_places(page)
    # Two seats for three people: the preview says who goes where, who is left out and whom it emails.
    assert len(places) == 2 and set(places.values()) == {pathways.id, refugees.id}
    [unplaced] = re.findall(r'id="unplaced-(\d+)"', page)
    assert int(unplaced) not in places and re.search(r'id="plan-emailed">2<', page)
    assert rows(SessionSignup) == [] and outbox.messages() == []
    response = follow(organizer_client, organizer_client.post(url, data={"preview": preview_token(page)}))
    assert "2 of 3 people are placed (optimal). 1 could not be placed:" in response.text
    assert {s.registration_id: s.session_id for s in rows(SessionSignup)} == places
    assert sorted(m["To"] for m in outbox.messages()) == sorted(
        p.email for p in (scene.person, *others) if p.id in places)


def test_a_ranking_after_the_allocation_preview_is_refused_with_the_new_preview(organizer_client, scene, outbox):
    pathways, refugees = working_groups(scene, seats=2)
    service.set_session_preferences(scene.person.id, scene.block.id, [pathways.id])
    url = f"{scene.url}/blocks/{scene.block.id}/allocate"
    page = organizer_client.post(url, data={}).text
    assert previewed_places(page) == {scene.person.id: pathways.id}
    newcomer = make_registration(scene.convening, scene.person.ticket_type, 2)
    service.set_session_preferences(newcomer.id, scene.block.id, [refugees.id])
    response = organizer_client.post(url, data={"preview": preview_token(page)})
    assert response.status_code == 200 and "Nobody was placed: the rankings" in response.text
    assert previewed_places(response.text) == {scene.person.id: pathways.id, newcomer.id: refugees.id}
    assert rows(SessionSignup) == [] and outbox.messages() == []
    assert rows(SessionBlock, id=scene.block.id)[0].preferences_open
    follow(organizer_client, organizer_client.post(url, data={"preview": preview_token(response.text)}))
    assert {s.registration_id: s.session_id for s in rows(SessionSignup)} == previewed_places(response.text)


def test_a_tampered_allocation_token_or_option_places_nobody(organizer_client, scene):
    pathways, _ = working_groups(scene, seats=2)
    service.set_session_preferences(scene.person.id, scene.block.id, [pathways.id])
    url = f"{scene.url}/blocks/{scene.block.id}/allocate"
    token = preview_token(organizer_client.post(url, data={}).text)
    for data in ({"preview": "0" * 32}, {"preview": token, "include_unranked": "y"}, {"preview": ""}):
        response = organizer_client.post(url, data=data)
        assert response.status_code == 200 and "Nobody was placed" in response.text, data
    assert rows(SessionSignup) == []


def test_opening_ranking_is_refused_when_the_people_to_email_changed(organizer_client, scene, outbox):
    closed = make_block(scene.convening, "Field trips", preferences_open=False)
    url = f"{scene.url}/blocks/{closed.id}"
    confirm = organizer_client.post(url, data={"name": "Field trips", "preferences_open": "y"})
    assert re.search(r'id="audience-count">1<', confirm.text)
    make_registration(scene.convening, scene.person.ticket_type, 2, given_name="Noor")
    response = organizer_client.post(url, data={"name": "Field trips", "preferences_open": "y",
                                                "preview": preview_token(confirm.text)})
    assert response.status_code == 200 and "Ranking was not opened" in response.text
    assert re.search(r'id="audience-count">2<', response.text) and "Noor" in response.text
    assert not rows(SessionBlock, id=closed.id)[0].preferences_open and outbox.messages() == []
    # A new block that opens at once goes through the same confirmation.
    response = organizer_client.post(f"{scene.url}/blocks/new", data={"name": "Day 2 tours", "preferences_open": "y"})
    assert response.status_code == 200 and "Open ranking of Day 2 tours?" in response.text
    assert rows(SessionBlock, name="Day 2 tours") == []
    done = follow(organizer_client, organizer_client.post(f"{scene.url}/blocks/new", data={
        "name": "Day 2 tours", "preferences_open": "y", "preview": preview_token(response.text)}))
    assert "Block Day 2 tours is added." in done.text and "2 people were emailed" in done.text


@pytest.mark.parametrize("kind", ["room", "presenter", "block"])
def test_each_program_delete_shows_what_goes_and_needs_its_confirmation(organizer_client, scene, kind):
    if kind == "room":
        target, path, listing = scene.salon, f"/rooms/{scene.salon.id}/delete", Room
        expected = "Nothing else is affected."
    elif kind == "presenter":
        make_session(scene.convening, "Panel", 1, "10:00", "11:00", presenters=(scene.presenter,))
        target, path, listing = scene.presenter, f"/presenters/{scene.presenter.id}/delete", Presenter
        expected = "1 session loses Dana Whitfield as a presenter and stays in the program: Panel."
    else:
        [pathways, _] = working_groups(scene)
        service.set_session_preferences(scene.person.id, scene.block.id, [pathways.id])
        target, path, listing = scene.block, f"/blocks/{scene.block.id}/delete", SessionBlock
        expected = f"1 person's ranking is deleted: {scene.person.full_name}."
    url, target_id = scene.url + path, target.id
    page = organizer_client.get(url).text
    assert html.unescape(expected) in html.unescape(re.sub(r"\s+", " ", page))
    assert organizer_client.post(url).status_code == 200  # a bare post: the page again, nothing deleted
    assert rows(listing, id=target_id) != []
    response = follow(organizer_client, organizer_client.post(url, data={"preview": preview_token(page)}))
    assert "is deleted" in response.text or "is removed" in response.text
    assert rows(listing, id=target_id) == []


def test_a_presenter_given_a_session_after_the_preview_is_not_removed(organizer_client, scene):
    url = f"{scene.url}/presenters/{scene.presenter.id}/delete"
    page = organizer_client.get(url).text
    assert "Nothing else is affected." in page
    make_session(scene.convening, "Panel", 1, "10:00", "11:00", presenters=(scene.presenter,))
    response = organizer_client.post(url, data={"preview": preview_token(page)})
    assert response.status_code == 200 and "Nothing was deleted: what it affects changed" in response.text
    assert "Panel" in response.text and len(rows(Presenter, id=scene.presenter.id)) == 1
