"""The copy-for-a-new-edition page: preview, prefilled form, refusals beside the field, who may use it."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from convene.extensions import db
from convene.models import AuditEntry, Base, Convening, Membership, ProgramSession
from tests.conftest import login
from tests.factories import make_convening, make_registration, make_ticket, make_user
from tests.schedule_helpers import make_room, make_session, publish

TORONTO = ZoneInfo("America/Toronto")


def counts() -> dict[str, int]:
    """Rows in every table: what a request that changes nothing leaves exactly as it was."""
    return {name: db.session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for name, table in Base.metadata.tables.items()}


@pytest.fixture
def source(app):
    """A published January convening in Toronto with a ticket, a room, a 09:00 keynote and one person."""
    convening = make_convening(slug="winter-summit-2027", name="Winter Summit 2027", starts_on=date(2027, 1, 12),
                               ends_on=date(2027, 1, 14))
    ticket = make_ticket(convening, name="Delegate")
    make_session(convening, "Opening keynote", 0, "09:00", "10:00", room=make_room(convening, "Salon A", 100))
    publish(convening)
    make_registration(convening, ticket, 1)
    return convening


def url(convening) -> str:
    return f"/admin/c/{convening.id}/copy"


def test_the_page_previews_what_is_copied_and_suggests_next_year_without_changing_anything(organizer_client, source):
    before = counts()
    response = organizer_client.get(url(source))
    assert response.status_code == 200
    page = response.text
    assert "1 ticket type" in page and "1 room" in page and "1 session" in page and "0 codes" in page
    assert "Not copied:" in page and "registrations" in page
    assert 'value="Winter Summit 2028"' in page and 'value="winter-summit-2028"' in page
    assert 'value="2028-01-11"' in page  # 52 weeks on: a Tuesday, like 2027-01-12
    assert counts() == before


def test_copying_opens_the_new_settings_page_saying_what_was_copied_and_that_it_is_unpublished(
        organizer_client, organizer, source):
    response = organizer_client.post(url(source), data={
        "name": "Summer Summit 2027", "slug": "summer-summit-2027", "starts_on": "2027-07-13"})
    assert response.status_code == 302
    edition = db.session.execute(sa.select(Convening).where(Convening.slug == "summer-summit-2027")).scalar_one()
    assert urlsplit(response.headers["Location"]).path == f"/admin/c/{edition.id}/settings"
    page = organizer_client.get(response.headers["Location"]).text
    assert "Summer Summit 2027 is created from Winter Summit 2027 with 1 ticket type, 1 room and 1 session" in page
    assert "It is unpublished" in page
    assert not edition.published and (edition.starts_on, edition.ends_on) == (date(2027, 7, 13), date(2027, 7, 15))
    [keynote] = db.session.execute(sa.select(ProgramSession).where(ProgramSession.convening_id == edition.id)).scalars()
    assert keynote.starts_at.astimezone(TORONTO).replace(tzinfo=None) == datetime(2027, 7, 13, 9, 0)
    assert keynote.starts_at == datetime.combine(date(2027, 7, 13), time(13), tzinfo=timezone.utc)  # EDT
    owners = db.session.execute(sa.select(Membership.user_id, Membership.role).where(
        Membership.convening_id == edition.id)).all()
    assert [tuple(row) for row in owners] == [(organizer.id, "owner")]
    [entry] = db.session.execute(sa.select(AuditEntry).where(AuditEntry.action == "convening.copied")).scalars()
    assert (entry.actor_kind, entry.actor_user_id) == ("account", organizer.id)


def test_a_taken_address_is_refused_beside_the_field_and_creates_nothing(organizer_client, source):
    before = counts()
    response = organizer_client.post(url(source), data={
        "name": "Winter Summit 2028", "slug": "winter-summit-2027", "starts_on": "2028-01-11"})
    assert response.status_code == 200
    assert 'id="slug-error">Another convening already uses that web address.' in response.text
    assert 'value="Winter Summit 2028"' in response.text  # what was typed is kept
    assert counts() == before


@pytest.mark.parametrize("field, value, message", [
    ("starts_on", "9999-12-31", "Enter a date between 2000 and 2100."),
    ("starts_on", "", "Enter the first day."),
    ("starts_on", "2028-02-30", "Enter a date, like 2027-06-01."),
    ("slug", "Winter Summit", "Use only lowercase letters, digits and hyphens, for example summit-2025."),
    ("name", "", "Enter a name."),
])
def test_bad_input_is_refused_beside_its_field_and_creates_nothing(organizer_client, source, field, value, message):
    data = {"name": "Winter Summit 2028", "slug": "winter-summit-2028", "starts_on": "2028-01-11", field: value}
    before = counts()
    response = organizer_client.post(url(source), data=data)
    assert response.status_code == 200
    assert f'id="{field}-error">{message}' in response.text
    assert counts() == before


# -- who may copy ----------------------------------------------------------------------------------

ALLOWED = {"admin", "owner", "organizer"}


@pytest.mark.one_database  # who may open what is decided in Python, the same on either database
@pytest.mark.parametrize("role", ["anonymous", "viewer", "finance", "desk", "site_visit_lead", "staff",
                                  "organizer", "owner", "admin", "other_owner"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_access_rules(client, source, role, method):
    """Owners, organizers and platform administrators copy; other roles are refused; other teams see nothing."""
    if role == "admin":
        make_user("someone@example.org", role="organizer")
    elif role == "other_owner":
        make_user("someone@example.org", role="owner", convening=make_convening())
    elif role == "staff":
        make_user("someone@example.org", role="staff")
    elif role != "anonymous":
        make_user("someone@example.org", role=role, convening=source)
    if role != "anonymous":
        login(client, "someone@example.org")
    before = counts()
    data = {"name": "Winter Summit 2028", "slug": "winter-summit-2028", "starts_on": "2028-01-11"}
    response = client.open(url(source), method=method, data=data if method == "POST" else None)
    if role == "anonymous":
        assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/admin/login"
    elif role == "other_owner":
        assert response.status_code == 404
    elif role not in ALLOWED:
        assert response.status_code == 403
    elif method == "GET":
        assert response.status_code == 200
    else:
        assert response.status_code == 302
    copied = db.session.execute(sa.select(Convening).where(Convening.slug == "winter-summit-2028")).scalar_one_or_none()
    if role in ALLOWED and method == "POST":
        assert copied is not None
    else:
        assert copied is None
        assert counts() == before


def test_the_dashboard_links_to_the_copy_page_for_those_who_may_copy(client, source):
    make_user("lead@example.org", role="organizer", convening=source)
    make_user("viewer@example.org", role="viewer", convening=source)
    link = f'href="/admin/c/{source.id}/copy"'
    login(client, "lead@example.org")
    assert link in client.get(f"/admin/c/{source.id}/").text
    client.post("/admin/logout")
    login(client, "viewer@example.org")
    response = client.get(f"/admin/c/{source.id}/")
    assert response.status_code == 200 and link not in response.text
