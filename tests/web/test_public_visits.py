"""Attendees rank host organizations and see their published site visits."""
from __future__ import annotations

import sqlalchemy as sa

from convene.extensions import db
from convene.models import Registration
from convene.services import visits as visit_service
from convene.services.tokens import manage_token
from tests.factories import make_convening, make_host, make_registration, make_slot, make_ticket, make_visit
from tests.web.test_public import form_data


def test_registration_form_takes_a_ranking_when_preferences_are_open(client):
    convening = make_convening(visit_preferences_open=True)
    ticket = make_ticket(convening)
    college, magnet, fund = (make_host(convening, n) for n in ("George Brown College", "Magnet", "Loan Fund"))
    page = client.get(f"/c/{convening.slug}/register").get_data(as_text=True)
    assert "1st choice" in page and "3rd choice" in page and "Magnet" in page
    response = client.post(f"/c/{convening.slug}/register",
                           data=form_data(1, ticket, rank_1=str(magnet.id), rank_2=str(college.id), rank_3=""))
    assert response.status_code == 302
    registration = db.session.execute(sa.select(Registration)).scalar_one()
    assert visit_service.ranking_for(registration.id) == [magnet.id, college.id]


def test_ranking_the_same_host_twice_is_explained_beside_the_field(client):
    convening = make_convening(visit_preferences_open=True)
    registration = make_registration(convening, make_ticket(convening), 1)
    college, magnet = make_host(convening, "George Brown College"), make_host(convening, "Magnet")
    url = f"/c/{convening.slug}/manage/{manage_token(registration)}"
    response = client.post(url + "/visits", data={"rank_1": str(magnet.id), "rank_2": str(magnet.id)})
    assert "You chose this host already" in response.get_data(as_text=True)
    assert visit_service.ranking_for(registration.id) == []
    response = client.post(url + "/visits", data={"rank_1": str(college.id), "rank_2": str(magnet.id)})
    assert response.status_code == 302
    assert visit_service.ranking_for(registration.id) == [college.id, magnet.id]
    page = client.get(url).get_data(as_text=True)
    assert f'<option selected value="{college.id}">' in page or f'value="{college.id}" selected' in page


def test_ranking_is_hidden_while_preferences_are_closed(client):
    convening = make_convening(visit_preferences_open=False)
    registration = make_registration(convening, make_ticket(convening), 1)
    make_host(convening, "Magnet")
    url = f"/c/{convening.slug}/manage/{manage_token(registration)}"
    assert "1st choice" not in client.get(url).get_data(as_text=True)
    response = client.post(url + "/visits", data={"rank_1": "1"}, follow_redirects=True)
    assert "Site-visit preferences are not open." in response.get_data(as_text=True)


def test_manage_page_shows_published_visits_with_meeting_point_and_times(client):
    convening = make_convening(visits_per_person=1)
    registration = make_registration(convening, make_ticket(convening), 1)
    host = make_host(convening, "Toronto Newcomer Office", address="55 John St")
    slot = make_slot(convening, "Morning visits", 9)
    make_visit(host, slot, 10, meeting_point="Lobby, north doors", transport_notes="TTC line 1 to St Andrew")
    url = f"/c/{convening.slug}/manage/{manage_token(registration)}"
    visit_service.assign_site_visits(convening.id)
    assert "Toronto Newcomer Office" not in client.get(url).get_data(as_text=True)  # not published yet
    visit_service.publish_site_visits(convening.id)
    page = client.get(url).get_data(as_text=True)
    assert "Morning visits: Toronto Newcomer Office" in page
    assert "Lobby, north doors" in page and "55 John St" in page and "09:00" in page


def test_someone_who_needs_step_free_access_is_warned_beside_a_host_without_it(client):
    """Issue 11, item 12: on the registration form and on the manage page."""
    convening = make_convening(visit_preferences_open=True)
    ticket = make_ticket(convening)
    stairs, ramp = make_host(convening, "Old Mill Co-op", accessible=False), make_host(convening, "Magnet")
    warning = "Old Mill Co-op does not have step-free access, so you will not be placed there"
    # The form shown again (here for a missing name) warns beside the rank naming that host.
    response = client.post(f"/c/{convening.slug}/register", data={
        **form_data(1, ticket, given_name="", rank_1=str(stairs.id), rank_2=str(ramp.id)),
        "accessibility_needs": ["step_free"]})
    page = response.get_data(as_text=True)
    assert f'id="rank_1-hint">{warning}' in page
    assert page.count("does not have step-free access") == 1
    # Without the need, no warning.
    page = client.post(f"/c/{convening.slug}/register",
                       data=form_data(1, ticket, given_name="", rank_1=str(stairs.id))).get_data(as_text=True)
    assert "does not have step-free access" not in page

    registration = make_registration(convening, ticket, 2, accessibility_needs=["step_free"])
    visit_service.set_visit_preferences(registration.id, [ramp.id, stairs.id])
    page = client.get(f"/c/{convening.slug}/manage/{manage_token(registration)}").get_data(as_text=True)
    assert f'id="rank_2-hint">{warning}' in page
    assert 'aria-describedby="rank_2-hint"' in page
    other = make_registration(convening, ticket, 3)
    visit_service.set_visit_preferences(other.id, [stairs.id])
    assert warning not in client.get(f"/c/{convening.slug}/manage/{manage_token(other)}").get_data(as_text=True)
