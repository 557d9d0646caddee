"""The public program, session pages, calendars read back with icalendar, and the attendee's agenda."""
from __future__ import annotations

import html
import re
from datetime import date, datetime, timezone
from types import SimpleNamespace

import icalendar
import pytest
import sqlalchemy as sa

from convene.extensions import db
from convene.models import Convening, Registration, SessionPreference, SessionSignup, VisitAssignment
from convene.services import schedule as service
from convene.services.tokens import manage_token
from tests.factories import make_convening, make_host, make_registration, make_slot, make_ticket, make_visit
from tests.schedule_helpers import local, make_block, make_presenter, make_room, make_session, publish

TORONTO = "America/Toronto"


@pytest.fixture
def scene(app):
    """A published three-day program in Toronto with a plenary, a dinner and two roundtables."""
    convening = make_convening(starts_on=date(2027, 6, 8), ends_on=date(2027, 6, 10), slug="toronto-2027",
                               venue="St. Lawrence Centre", venue_address="95 Front St E")
    ticket = make_ticket(convening)
    me = make_registration(convening, ticket, 1)
    other = make_registration(convening, ticket, 2)
    hall, salon = make_room(convening, "Great Hall", 150), make_room(convening, "Salon A", 1, floor="Second floor")
    speaker = make_presenter(convening, "Irina Volkova", organization="Centre for Newcomer Labour Research",
                             bio="Directs research on newcomer employment.")
    keynote = make_session(convening, "Opening keynote", 0, "17:00", "18:00", room=hall, kind="keynote",
                           presenters=(speaker,), description="Why Toronto.")
    dinner = make_session(convening, "Networking dinner", 0, "18:30", "21:30", kind="networking",
                          location="Mill Street Brewpub")
    mentoring = make_session(convening, "Mentorship", 1, "14:00", "15:30", room=salon, kind="roundtable",
                             signup_required=True)
    media = make_session(convening, "Media strategy", 1, "14:00", "15:30", room=hall, kind="roundtable",
                         signup_required=True)
    publish(convening)
    return SimpleNamespace(convening=convening, slug=convening.slug, me=me, other=other, keynote=keynote,
                           dinner=dinner, mentoring=mentoring, media=media, hall=hall, salon=salon,
                           manage=f"/c/{convening.slug}/manage/{manage_token(me)}")


def follow(client, response):
    assert response.status_code == 302, response.status_code
    return client.get(response.headers["Location"])


def events(body: bytes) -> dict[str, icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(body)
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


# -- pages -----------------------------------------------------------------------------------------

def test_the_program_is_shown_by_day_in_local_time_with_rooms_and_presenters(client, scene):
    page = client.get(f"/c/{scene.slug}/program").text
    assert "Tuesday 08 June" in page and "Wednesday 09 June" in page
    assert "17:00–18:00" in page and "Great Hall" in page and "Irina Volkova" in page
    assert "Mill Street Brewpub" in page and "1 of 1 seats left" in page
    assert page.index("Opening keynote") < page.index("Networking dinner") < page.index("Mentorship")
    assert f"/c/{scene.slug}/program.ics" in page


def test_a_draft_program_is_not_public(client, app):
    convening = make_convening()
    make_session(convening, "Secret", 0, "09:00", "10:00")
    assert client.get(f"/c/{convening.slug}/program").status_code == 404
    assert client.get(f"/c/{convening.slug}/program.ics").status_code == 404


def test_the_session_page_has_times_room_and_presenter_bios(client, scene):
    page = client.get(f"/c/{scene.slug}/program/{scene.keynote.id}").text
    assert "Tuesday 08 June, 17:00–18:00 EDT" in page and "Directs research on newcomer employment." in page
    other = make_convening()
    foreign = make_session(other, "Elsewhere", 0, "09:00", "10:00")
    assert client.get(f"/c/{scene.slug}/program/{foreign.id}").status_code == 404
    assert client.get(f"/c/{scene.slug}/program/999999").status_code == 404
    assert client.get(f"/c/{scene.slug}/program/99999999999999999999999").status_code == 404


# -- calendars -------------------------------------------------------------------------------------

def test_the_program_calendar_uses_the_convenings_zone_and_stable_uids(client, scene):
    response = client.get(f"/c/{scene.slug}/program.ics")
    assert response.status_code == 200 and response.content_type == "text/calendar; charset=utf-8"
    calendar = icalendar.Calendar.from_ical(response.data)
    [zone] = calendar.walk("VTIMEZONE")
    assert str(zone["TZID"]) == TORONTO
    found = events(response.data)
    uid = f"session-{scene.keynote.id}@{scene.slug}.convene"
    assert set(found) == {f"session-{s.id}@{scene.slug}.convene"
                          for s in (scene.keynote, scene.dinner, scene.mentoring, scene.media)}
    keynote = found[uid]
    assert keynote["DTSTART"].params["TZID"] == TORONTO
    start = keynote.decoded("DTSTART")
    assert (start.hour, start.minute, str(start.tzinfo)) == (17, 0, TORONTO)
    assert start == local(scene.convening, 0, "17:00")
    assert str(keynote["SUMMARY"]) == "Opening keynote" and int(keynote["SEQUENCE"]) == 0
    assert "Great Hall, St. Lawrence Centre, 95 Front St E" == str(keynote["LOCATION"])
    assert "DTSTAMP" in keynote and "LAST-MODIFIED" in keynote
    assert f"/c/{scene.slug}/program/{scene.keynote.id}" in str(keynote["URL"])

    # Moving the session keeps its UID and raises its SEQUENCE, so calendars replace the old entry.
    service.move_session(scene.keynote.id, datetime(2027, 6, 8, 17, 30), scene.hall.id)
    moved = events(client.get(f"/c/{scene.slug}/program.ics").data)[uid]
    assert int(moved["SEQUENCE"]) == 1 and moved.decoded("DTSTART") == local(scene.convening, 0, "17:30")
    assert moved.decoded("LAST-MODIFIED") >= keynote.decoded("LAST-MODIFIED")


def test_the_agenda_calendar_has_only_this_persons_entries(client, scene):
    service.sign_up(scene.me.id, scene.mentoring.id)
    service.sign_up(scene.other.id, scene.media.id)
    body = client.get(f"{scene.manage}/agenda.ics").data
    assert sorted(str(e["SUMMARY"]) for e in events(body).values()) == [
        "Mentorship", "Networking dinner", "Opening keynote"]
    mentoring = events(body)[f"session-{scene.mentoring.id}@{scene.slug}.convene"]
    assert mentoring["DTSTART"].params["TZID"] == TORONTO
    assert client.get(f"/c/{scene.slug}/manage/not-a-token/agenda.ics").status_code == 404


# -- the manage page -----------------------------------------------------------------------------------

def test_the_manage_page_shows_the_agenda_and_signs_up_and_leaves(client, scene):
    page = client.get(scene.manage).text
    assert 'id="agenda"' in page and "Opening keynote" in page and "Networking dinner" in page
    assert f"{scene.manage}/agenda.ics" in page and "1 seat left" in page
    page = follow(client, client.post(f"{scene.manage}/sessions/{scene.mentoring.id}/signup")).text
    assert "You are signed up for Mentorship." in page and "Signed up" in page
    assert "Same time as Mentorship" in page  # the clashing roundtable offers no button
    # The overlapping roundtable is refused with the reason.
    page = follow(client, client.post(f"{scene.manage}/sessions/{scene.media.id}/signup")).text
    assert "You are signed up for Mentorship (Wed 09 Jun 14:00–15:30), which overlaps this session." in html.unescape(
        page)
    page = follow(client, client.post(f"{scene.manage}/sessions/{scene.mentoring.id}/leave")).text
    assert "You have left the session" in page
    assert db.session.execute(sa.select(SessionSignup)).scalars().all() == []


def test_a_full_session_is_refused_with_a_message(client, scene):
    service.sign_up(scene.other.id, scene.mentoring.id)
    page = client.get(scene.manage).text
    assert re.search(r'id="signup-%d".*?Full' % scene.mentoring.id, page, re.S)
    page = follow(client, client.post(f"{scene.manage}/sessions/{scene.mentoring.id}/signup")).text
    assert "Sorry, this session is full." in page
    assert client.post(f"{scene.manage}/sessions/999999/signup").status_code == 302
    # Ids no database column can hold match no route at all.
    assert client.post(f"{scene.manage}/sessions/99999999999999999999999/signup").status_code == 404
    assert client.post(f"{scene.manage}/sessions/99999999999999999999999/leave").status_code == 404


def test_a_bad_manage_link_cannot_sign_up(client, scene):
    response = client.post(f"/c/{scene.slug}/manage/nonsense/sessions/{scene.mentoring.id}/signup")
    assert response.status_code == 302 and "manage-link" in response.headers["Location"]
    assert db.session.execute(sa.select(SessionSignup)).scalars().all() == []


def test_attendees_rank_a_blocks_sessions_and_mistakes_are_shown_beside_the_choice(client, scene):
    block = make_block(scene.convening, "Working groups (day 3)")
    groups = [make_session(scene.convening, name, 2, "11:00", "12:30", kind="working_group", block_id=block.id,
                           signup_required=True, capacity=10) for name in ("Pathways", "Refugee Strategies")]
    page = client.get(scene.manage).text
    assert "Rank: Working groups (day 3)" in page and "1st choice" in page and "Rank above" in page
    url = f"{scene.manage}/sessions/rank/{block.id}"
    prefix = f"block{block.id}-"
    response = client.post(url, data={prefix + "rank_1": str(groups[0].id), prefix + "rank_2": str(groups[0].id)})
    assert response.status_code == 400
    match = re.search(rf'<p class="error" id="{prefix}rank_2-error">(.*?)</p>', response.text)
    assert match and match.group(1) == "You chose this session already; pick each session once."
    assert 'id="given_name"' in response.text and f'value="{scene.me.given_name}"' in response.text
    assert db.session.execute(sa.select(SessionPreference)).scalars().all() == []
    response = client.post(url, data={prefix + "rank_1": str(groups[1].id), prefix + "rank_2": str(groups[0].id)})
    assert response.status_code == 302
    assert service.ranking_for(scene.me.id, block.id) == [groups[1].id, groups[0].id]
    page = client.get(scene.manage).text
    assert f'<option selected value="{groups[1].id}">' in page
    # Direct sign-up is refused while ranking is open.
    page = follow(client, client.post(f"{scene.manage}/sessions/{groups[0].id}/signup")).text
    assert "allocated from everyone" in page


def test_the_agenda_shows_the_published_site_visit_with_its_meeting_point(client, scene):
    slot = make_slot(scene.convening, "Morning visits", 9, hours=3)
    visit = make_visit(make_host(scene.convening, "George Brown College"), slot, 10,
                       meeting_point="Hotel lobby, by the revolving door")
    db.session.add(VisitAssignment(registration_id=scene.me.id, slot_id=slot.id, site_visit_id=visit.id,
                                   published_site_visit_id=visit.id))
    db.session.get(Convening, scene.convening.id).visits_published_at = datetime.now(timezone.utc)
    db.session.commit()
    page = client.get(scene.manage).text
    agenda = page[page.index('id="agenda"'):]
    assert "Site visit: George Brown College" in agenda and "Hotel lobby, by the revolving door" in agenda
    body = client.get(f"{scene.manage}/agenda.ics").data
    uid = f"sitevisit-{slot.id}-{scene.me.id}@{scene.slug}.convene"
    # A phone's maps app gets the host's street address; where to meet is in the description.
    assert str(events(body)[uid]["LOCATION"]) == "George Brown College St, Toronto"
    assert "Meet at: Hotel lobby, by the revolving door" in str(events(body)[uid]["DESCRIPTION"])


def test_an_unpublished_program_leaves_the_manage_page_as_it_was(client, app):
    convening = make_convening()
    registration = make_registration(convening, make_ticket(convening), 1)
    make_session(convening, "Draft plenary", 0, "09:00", "10:00")
    page = client.get(f"/c/{convening.slug}/manage/{manage_token(registration)}").text
    assert 'id="agenda"' not in page and "Draft plenary" not in page


def test_attendee_downloads_their_agenda_as_a_pdf_from_the_manage_page(client, scene):
    import io

    from pypdf import PdfReader

    page = client.get(scene.manage).text
    assert f"{scene.manage}/agenda.pdf" in page
    response = client.get(f"{scene.manage}/agenda.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.data)).pages)
    registration = db.session.get(Registration, scene.me.id)
    assert registration.family_name in text
    assert client.get(f"/c/{scene.convening.slug}/manage/not-a-token/agenda.pdf").status_code == 404


def test_someone_who_needs_step_free_access_is_warned_beside_a_sign_up_in_a_room_without_it(client, scene):
    """Issue 11, item 12: the warning sits with the session's sign-up, only for those who asked for step-free access."""
    loft = make_room(scene.convening, "Loft", 20, accessible=False)
    walkup = make_session(scene.convening, "Storytelling", 2, "10:00", "11:00", room=loft, kind="roundtable",
                          signup_required=True)
    page = client.get(scene.manage).text
    assert f'id="signup-{walkup.id}"' in page and "does not have step-free access" not in page
    scene.me.accessibility_needs = ["step_free"]
    db.session.commit()
    page = client.get(scene.manage).text
    item = re.search(rf'id="signup-{walkup.id}".*?</li>', page, re.DOTALL).group(0)
    assert "Loft does not have step-free access" in item
    assert page.count("does not have step-free access") == 1  # not beside the sessions in step-free rooms


def test_an_off_site_session_gets_only_its_own_place_in_the_calendar(client, scene):
    found = events(client.get(f"/c/{scene.slug}/program.ics").data)

    def location(session) -> str:
        return str(found[f"session-{session.id}@{scene.slug}.convene"]["LOCATION"])

    assert location(scene.dinner) == "Mill Street Brewpub"
    assert location(scene.keynote) == "Great Hall, St. Lawrence Centre, 95 Front St E"
    assert location(scene.mentoring) == "Salon A, St. Lawrence Centre, 95 Front St E"
    service.sign_up(scene.me.id, scene.mentoring.id)
    mine = events(client.get(f"{scene.manage}/agenda.ics").data)
    assert str(mine[f"session-{scene.dinner.id}@{scene.slug}.convene"]["LOCATION"]) == "Mill Street Brewpub"
