"""The organizer's site-visit tools in /admin, through the test client, on the real database."""
from __future__ import annotations

import csv
import html
import io
import re
from contextlib import contextmanager
from datetime import date, datetime, timezone
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from convene.extensions import db
from convene.models import (
    AssignmentRun,
    Convening,
    HostOrganization,
    Registration,
    SiteVisit,
    VisitAssignment,
    VisitSlot,
)
from convene.services import visits as service
from convene.services.tokens import manage_token
from tests.factories import (
    make_convening,
    make_delegation,
    make_host,
    make_registration,
    make_slot,
    make_ticket,
    make_visit,
)

UTC = timezone.utc


# -- helpers ---------------------------------------------------------------------------------------

def error_beside(page: str, field: str) -> str | None:
    """The error text rendered right under `field`, or None."""
    match = re.search(rf'<p class="error" id="{field}-error">(.*?)</p>', page)
    return html.unescape(match.group(1)) if match else None


def text_of(page: str) -> str:
    """The page's visible text, tags dropped and whitespace squeezed, for plain assertions."""
    page = re.sub(r"<(style|script)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r"<option\b.*?</option>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def flashes(page: str) -> list[str]:
    return [re.sub(r"\s+", " ", html.unescape(m)).strip()
            for m in re.findall(r'<p class="flash flash-\w+" role="\w+">(.*?)</p>', page, flags=re.S)]


def plan_of(convening_id: int) -> dict[int, dict[int, int]]:
    db.session.expire_all()
    plan: dict[int, dict[int, int]] = {}
    for row in service.assignments_of(convening_id):
        if row.site_visit_id:
            plan.setdefault(row.registration_id, {})[row.slot_id] = row.site_visit_id
    return plan


def rows_of(model, **where) -> list:
    db.session.expire_all()
    query = sa.select(model).filter_by(**where).order_by(model.id)
    return db.session.execute(query).scalars().all()


@contextmanager
def counting_statements():
    statements: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", before)


@pytest.fixture
def scene(app):
    """Six delegates from two delegations, three hosts (one with steps), two slots, two places per visit."""
    convening = make_convening(visit_preferences_open=True, visits_per_person=2,
                               starts_on=date(2031, 5, 5), ends_on=date(2031, 5, 6))
    ticket = make_ticket(convening)
    hosts = [make_host(convening, "George Brown College"), make_host(convening, "Magnet"),
             make_host(convening, "Immigrant Access Fund", accessible=False)]
    slots = [make_slot(convening, "Morning", 9), make_slot(convening, "Afternoon", 14)]
    visits = {(h.id, s.id): make_visit(h, s, 2) for h in hosts for s in slots}
    md, oh = make_delegation(convening, "Maryland"), make_delegation(convening, "Ohio")
    people = [make_registration(convening, ticket, n, delegation_id=(md if n % 2 else oh).id,
                                given_name=f"Person{n}", family_name=f"Family{n}") for n in range(6)]
    return SimpleNamespace(
        convening=convening, id=convening.id, ticket=ticket, hosts=hosts, slots=slots, visits=visits,
        people=people, url=f"/admin/c/{convening.id}/visits",
    )


# -- setup: hosts ----------------------------------------------------------------------------------

def host_form(**changes) -> dict:
    data = {"name": "Toronto Newcomer Office", "address": "55 John St", "description": "City services.",
            "accessible": "y", "contact_name": "Ana Ruiz", "contact_email": "Ana@Example.org",
            "contact_phone": "+1 416 555 0100"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_organizer_adds_a_host_with_its_contact_and_access(organizer_client, scene):
    response = organizer_client.post(f"{scene.url}/hosts/new", data=host_form(accessible=None))
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == scene.url
    [host] = rows_of(HostOrganization, convening_id=scene.id, name="Toronto Newcomer Office")
    assert (host.address, host.accessible, host.contact_email) == ("55 John St", False, "ana@example.org")
    page = organizer_client.get(scene.url).text
    assert "Toronto Newcomer Office" in page and "No (steps)" in page


def test_a_duplicate_host_name_is_refused_beside_the_name_and_nothing_is_added(organizer_client, scene):
    before = len(rows_of(HostOrganization, convening_id=scene.id))
    response = organizer_client.post(f"{scene.url}/hosts/new", data=host_form(name="  magnet "))
    assert response.status_code == 200
    assert error_beside(response.text, "name") == "Another host organization of this convening already has that name."
    assert len(rows_of(HostOrganization, convening_id=scene.id)) == before


def test_renaming_a_host_onto_another_is_refused_but_keeping_its_own_name_is_fine(organizer_client, scene):
    magnet = scene.hosts[1]
    url = f"{scene.url}/hosts/{magnet.id}"
    response = organizer_client.post(url, data=host_form(name="George Brown College"))
    assert error_beside(response.text, "name")
    assert organizer_client.post(url, data=host_form(name="Magnet", address="2 New Rd")).status_code == 302
    [host] = rows_of(HostOrganization, id=magnet.id)
    assert (host.name, host.address) == ("Magnet", "2 New Rd")


def test_making_a_host_inaccessible_warns_about_step_free_people_placed_there(organizer_client, scene):
    person = db.session.get(Registration, scene.people[0].id)
    person.accessibility_needs = ["step_free"]
    db.session.commit()
    service.assign_site_visits(scene.id)
    host_id = next(v.host_id for v in rows_of(SiteVisit, convening_id=scene.id)
                   if v.id in plan_of(scene.id)[person.id].values() and v.host_id != scene.hosts[2].id)
    response = organizer_client.post(f"{scene.url}/hosts/{host_id}", data=host_form(
        name=db.session.get(HostOrganization, host_id).name, accessible=None), follow_redirects=True)
    assert any("need step-free access" in f for f in flashes(response.text))
    assert "need step-free access but are placed at a host without it" in response.text


# -- setup: slots ----------------------------------------------------------------------------------

def test_a_slot_is_typed_in_local_time_and_stored_in_utc(organizer_client, scene):
    response = organizer_client.post(f"{scene.url}/slots/new", data={
        "label": "Tuesday evening", "starts_at": "2031-05-06T18:00", "ends_at": "2031-05-06T20:30"})
    assert response.status_code == 302
    [slot] = rows_of(VisitSlot, convening_id=scene.id, label="Tuesday evening")
    # Toronto is on EDT (UTC-4) in May.
    assert (slot.starts_at, slot.ends_at) == (datetime(2031, 5, 6, 22, 0, tzinfo=UTC),
                                              datetime(2031, 5, 7, 0, 30, tzinfo=UTC))
    page = organizer_client.get(f"{scene.url}/slots/{slot.id}").text
    assert 'value="2031-05-06T18:00"' in page


@pytest.mark.parametrize("starts, ends, field, message", [
    ("2031-05-06T18:00", "2031-05-06T17:00", "ends_at", "The slot must end after it starts."),
    ("2031-06-20T09:00", "2031-06-20T11:00", "starts_at", "A slot must fall on the convening's dates"),
    ("2031-05-06T10:00", "2031-05-06T12:00", "starts_at", "This slot overlaps “Morning”"),
    ("", "2031-05-06T12:00", "starts_at", "Enter when the slot starts."),
])
def test_a_bad_slot_is_refused_beside_the_field_and_nothing_is_added(organizer_client, scene, starts, ends, field,
                                                                    message):
    before = len(rows_of(VisitSlot, convening_id=scene.id))
    response = organizer_client.post(f"{scene.url}/slots/new", data={"label": "Extra", "starts_at": starts,
                                                                     "ends_at": ends})
    assert response.status_code == 200
    assert (error_beside(response.text, field) or "").startswith(message)
    assert len(rows_of(VisitSlot, convening_id=scene.id)) == before


# -- setup: the grid and visit details -------------------------------------------------------------

def grid_form(scene, **cells) -> dict:
    """The grid as posted: every visit's current capacity, then the changes (host index, slot index)."""
    data = {service.grid_cell(h, s): str(v.capacity) for (h, s), v in scene.visits.items()}
    for key, value in cells.items():
        hi, si = (int(n) for n in key[1:].split("_"))
        data[service.grid_cell(scene.hosts[hi].id, scene.slots[si].id)] = value
    return data


def capacities(convening_id: int) -> dict[tuple[int, int], int]:
    return {(v.host_id, v.slot_id): v.capacity for v in rows_of(SiteVisit, convening_id=convening_id)}


def test_the_grid_adds_changes_and_removes_visits(organizer_client, scene):
    extra = make_host(scene.convening, "Loan Fund")
    data = grid_form(scene, c0_0="5", c2_1="")
    data[service.grid_cell(extra.id, scene.slots[0].id)] = "3"
    response = organizer_client.post(f"{scene.url}/grid", data=data, follow_redirects=True)
    assert "1 added, 1 changed, 1 removed" in text_of(response.text)
    caps = capacities(scene.id)
    assert caps[(scene.hosts[0].id, scene.slots[0].id)] == 5
    assert caps[(extra.id, scene.slots[0].id)] == 3
    assert (scene.hosts[2].id, scene.slots[1].id) not in caps
    assert (extra.id, scene.slots[1].id) not in caps


def test_a_negative_capacity_is_refused_beside_its_cell_and_nothing_changes(organizer_client, scene):
    before = capacities(scene.id)
    response = organizer_client.post(f"{scene.url}/grid", data=grid_form(scene, c0_0="9", c1_1="-3"))
    cell = service.grid_cell(scene.hosts[1].id, scene.slots[1].id)
    assert response.status_code == 200
    assert error_beside(response.text, cell) == "Capacity cannot be negative; leave the cell empty for no visit."
    assert capacities(scene.id) == before


def test_emptying_a_cell_people_are_placed_in_asks_for_confirmation_first(organizer_client, scene):
    service.assign_site_visits(scene.id)
    visit = scene.visits[(scene.hosts[0].id, scene.slots[0].id)]
    placed = [rid for rid, by_slot in plan_of(scene.id).items() if by_slot[scene.slots[0].id] == visit.id]
    response = organizer_client.post(f"{scene.url}/grid", data=grid_form(scene, c0_0=""))
    cell = service.grid_cell(scene.hosts[0].id, scene.slots[0].id)
    assert error_beside(response.text, cell).startswith("2 people are placed in George Brown College in Morning")
    assert 'name="confirm_removals"' in response.text
    assert (scene.hosts[0].id, scene.slots[0].id) in capacities(scene.id)

    data = grid_form(scene, c0_0="") | {"confirm_removals": "y"}
    assert organizer_client.post(f"{scene.url}/grid", data=data).status_code == 302
    assert (scene.hosts[0].id, scene.slots[0].id) not in capacities(scene.id)
    after = plan_of(scene.id)
    assert all(scene.slots[0].id not in after.get(rid, {}) for rid in placed)
    assert len(rows_of(VisitAssignment, registration_id=placed[0])) == 2  # the row stays, emptied


def test_lowering_a_capacity_below_the_people_placed_is_saved_with_a_warning(organizer_client, scene):
    service.assign_site_visits(scene.id)
    response = organizer_client.post(f"{scene.url}/grid", data=grid_form(scene, c0_0="1"), follow_redirects=True)
    assert "George Brown College in Morning now has 2 people for 1 places" in text_of(response.text)
    assert capacities(scene.id)[(scene.hosts[0].id, scene.slots[0].id)] == 1


def test_visit_details_take_a_local_departure_time_before_the_slot_ends(organizer_client, scene):
    visit = scene.visits[(scene.hosts[1].id, scene.slots[0].id)]
    url = f"{scene.url}/{visit.id}/edit"
    form = {"capacity": "4", "meeting_point": "Hotel lobby, north doors", "departs_at": "", "transport_notes": "TTC"}
    response = organizer_client.post(url, data=form | {"departs_at": "2031-05-06T13:00"})
    assert error_beside(response.text, "departs_at") == ("The departure must be before the slot ends and at most "
                                                         "12 hours before it starts.")
    assert organizer_client.post(url, data=form | {"departs_at": "2031-05-06T08:40"}).status_code == 302
    [saved] = rows_of(SiteVisit, id=visit.id)
    assert (saved.capacity, saved.meeting_point) == (4, "Hotel lobby, north doors")
    assert saved.departs_at == datetime(2031, 5, 6, 12, 40, tzinfo=UTC)
    assert 'value="2031-05-06T08:40"' in organizer_client.get(url).text


def test_settings_save_visits_per_person_and_open_preferences(organizer_client, scene):
    response = organizer_client.post(f"{scene.url}/settings", data={"visits_per_person": "1"})
    assert response.status_code == 302
    convening = db.session.get(Convening, scene.id)
    db.session.refresh(convening)
    assert (convening.visits_per_person, convening.visit_preferences_open) == (1, False)
    response = organizer_client.post(f"{scene.url}/settings", data={"visits_per_person": "3",
                                                                     "preferences_open": "y"})
    assert error_beside(response.text, "visits_per_person") == ("There are only 2 slots, so each person can make at "
                                                                "most 2 visits.")
    db.session.refresh(convening)
    assert convening.visits_per_person == 1


# -- deleting what people are placed in ------------------------------------------------------------

def preview_token(page: str) -> str:
    """The token a confirmation page carries for what it previewed."""
    return re.search(r'name="preview" value="([0-9a-f]+)"', page).group(1)


def effects(page: str) -> dict[str, str]:
    """The confirmation page's list of what a deletion does, by key, as plain text."""
    return {key: " ".join(html.unescape(text).split())
            for key, text in re.findall(r'<li id="effect-([\w-]+)">(.*?)</li>', page, re.S)}


def test_deleting_a_host_names_its_visits_who_is_placed_and_rankings_and_needs_the_confirmation(
        organizer_client, scene):
    service.assign_site_visits(scene.id)
    magnet_id = scene.hosts[1].id
    service.set_visit_preferences(scene.people[0].id, [magnet_id])
    url = f"{scene.url}/hosts/{magnet_id}/delete"
    response = organizer_client.post(url)  # the old button: only the confirmation page
    assert response.status_code == 200 and rows_of(HostOrganization, id=magnet_id)
    found = effects(response.text)
    assert found["visits"] == "2 visits go with it: Magnet in Morning, Magnet in Afternoon."
    assert found["placed"].startswith("4 people placed there in the working plan (not published yet) lose that "
                                      "place; re-run the assigner to place them elsewhere: ")
    assert found["rankings"] == f"1 person's ranking of it is deleted: {scene.people[0].full_name}."
    response = organizer_client.post(url, data={"preview": preview_token(response.text)})
    assert response.status_code == 302
    assert "Magnet is deleted, with its visits." in organizer_client.get(response.headers["Location"]).text
    assert not rows_of(HostOrganization, id=magnet_id)
    assert sum(len(by_slot) for by_slot in plan_of(scene.id).values()) == 8


def test_a_ranking_after_the_host_preview_refuses_the_delete(organizer_client, scene):
    magnet_id = scene.hosts[1].id
    url = f"{scene.url}/hosts/{magnet_id}/delete"
    page = organizer_client.get(url).text
    service.set_visit_preferences(scene.people[0].id, [magnet_id])
    response = organizer_client.post(url, data={"preview": preview_token(page)})
    assert response.status_code == 200 and "Nothing was deleted: what it affects changed" in response.text
    assert "rankings" in effects(response.text) and rows_of(HostOrganization, id=magnet_id)


def test_deleting_a_host_of_the_published_plan_is_refused_with_the_way_out_before_any_click(organizer_client, scene):
    service.assign_site_visits(scene.id)
    service.publish_site_visits(scene.id)
    magnet = scene.hosts[1]
    page = organizer_client.get(f"{scene.url}/hosts/{magnet.id}/delete").text
    message = text_of(re.search(r'id="delete-blocked">(.*?)</p>', page, re.S).group(1))
    assert "4 people were sent Magnet in the published plan, so it cannot be deleted yet" in message
    assert "re-run the assigner and publish" in message and 'id="confirm-delete"' not in page
    response = organizer_client.post(f"{scene.url}/hosts/{magnet.id}/delete", data={"preview": "0" * 32})
    assert "cannot be deleted yet" in text_of(response.text)
    assert rows_of(HostOrganization, id=magnet.id)
    assert sum(len(by_slot) for by_slot in plan_of(scene.id).values()) == 12


def test_deleting_an_empty_slot_or_a_visit_goes_through_its_confirmation(organizer_client, scene):
    slot_id = make_slot(scene.convening, "Evening", 19).id
    url = f"{scene.url}/slots/{slot_id}/delete"
    assert organizer_client.post(url).status_code == 200 and rows_of(VisitSlot, id=slot_id)
    page = organizer_client.get(url).text
    assert "Nothing else is affected." in page
    assert organizer_client.post(url, data={"preview": preview_token(page)}).status_code == 302
    assert not rows_of(VisitSlot, id=slot_id)
    visit = scene.visits[(scene.hosts[0].id, scene.slots[0].id)]
    visit_id, url = visit.id, f"{scene.url}/{visit.id}/delete"
    page = organizer_client.get(url).text
    assert "Delete visit “George Brown College in Morning”?" in page
    assert organizer_client.post(url, data={"preview": preview_token(page)}).status_code == 302
    assert not rows_of(SiteVisit, id=visit_id)


# -- coverage --------------------------------------------------------------------------------------

def test_coverage_counts_who_ranked_names_who_did_not_and_counts_ranks_per_host(organizer_client, scene):
    college, magnet, fund = scene.hosts
    for person in scene.people[:3]:
        service.set_visit_preferences(person.id, [magnet.id, college.id])
    service.set_visit_preferences(scene.people[3].id, [college.id, fund.id, magnet.id])
    page = organizer_client.get(f"{scene.url}/coverage").text
    assert re.search(r'id="visitors">6<', page) and re.search(r'id="ranked">4<', page)
    assert re.search(r'id="not-ranked">2<', page)
    text = text_of(page[page.index('id="not-ranked-list"'):])
    assert "Person4 Family4 Ohio" in text and "Person5 Family5 Maryland" in text
    assert "Person0" not in text
    rows = {m[0]: text_of(m[1]).split() for m in re.findall(r'<tr id="host-(\d+)">(.*?)</tr>', page, flags=re.S)}
    assert rows[str(magnet.id)][-3:] == ["3", "1", "4"]  # 1st: 3, 2nd: (none), 3rd: 1, in all 4
    assert rows[str(college.id)][-3:] == ["1", "3", "4"]
    assert "Short by" not in page


def test_coverage_warns_when_a_slot_has_fewer_places_than_visitors(organizer_client, scene):
    make_registration(scene.convening, scene.ticket, 99)
    page = organizer_client.get(f"{scene.url}/coverage").text
    assert text_of(page).count("Short by 1") == 2
    assert "There are 12 places for 14 visits" in text_of(page)


# -- running the assigner --------------------------------------------------------------------------

def test_a_dry_run_shows_the_figures_and_saves_nothing(organizer_client, scene):
    for person in scene.people:
        service.set_visit_preferences(person.id, [scene.hosts[0].id, scene.hosts[1].id])
    response = organizer_client.post(f"{scene.url}/assign", data={"preview": "Preview (dry run)"})
    text = text_of(response.text)
    assert response.status_code == 200
    assert "Preview: nothing was saved" in text
    assert "Proven optimal" in text and "min-cost flow" in text
    assert "1st choice 2nd choice Unranked 4 4 4" in text  # four places per host over the two slots
    assert "Places changed 12" in text
    assert not rows_of(AssignmentRun) and not rows_of(VisitAssignment)


def test_run_and_save_stores_the_plan_and_lists_the_run(organizer_client, scene):
    response = organizer_client.post(f"{scene.url}/assign", data={"save": "Run and save", "mix_limit": "1"})
    [run] = rows_of(AssignmentRun)
    assert urlsplit(response.headers["Location"]).query == f"run={run.id}"
    page = organizer_client.get(response.headers["Location"]).text
    text = text_of(page)
    assert "saved as the working plan" in text and f"Cost {run.cost} (lower bound" in text
    assert "Everyone was placed." in text
    assert run.run_by == "organizer@example.org" and run.changed == 12
    assert len(re.findall(r"<tr>", page[page.index('id="runs"'):])) == 2  # the head and one run
    assert sum(len(by_slot) for by_slot in plan_of(scene.id).values()) == 12


def test_keep_the_published_plan_is_on_by_default_once_a_plan_was_published(organizer_client, scene):
    assert 'name="keep_published" type="checkbox" value="y">' in organizer_client.get(f"{scene.url}/assign").text
    service.assign_site_visits(scene.id)
    service.publish_site_visits(scene.id)
    page = organizer_client.get(f"{scene.url}/assign").text
    assert re.search(r'<input checked id="keep_published"', page)


def test_people_who_cannot_be_placed_are_named_with_the_reason(organizer_client, scene):
    person = db.session.get(Registration, scene.people[0].id)
    person.accessibility_needs = ["step_free"]
    db.session.commit()
    organizer_client.post(f"{scene.url}/grid", data=grid_form(scene, c1_0="", c1_1=""))  # one step-free host left
    response = organizer_client.post(f"{scene.url}/assign", data={"preview": "Preview"})
    text = text_of(response.text)
    assert "Could not be placed (" in text
    assert re.search(r"Person0 Family0 \(Ohio\): .*step-free", text)


def test_an_assigner_refusal_is_flashed(organizer_client, scene):
    organizer_client.post(f"{scene.url}/grid", data={service.grid_cell(h, s): "" for h, s in scene.visits},
                          follow_redirects=True)
    response = organizer_client.post(f"{scene.url}/assign", data={"save": "Run and save"})
    assert "Add site visits (a host in a slot, with a capacity) first." in flashes(response.text)


# -- the plan, moving and locking ------------------------------------------------------------------

def test_plan_shows_load_mix_and_who_got_an_unranked_host(organizer_client, scene):
    service.set_visit_preferences(scene.people[0].id, [scene.hosts[0].id, scene.hosts[1].id])
    service.assign_site_visits(scene.id)
    page = organizer_client.get(f"{scene.url}/plan").text
    for visit in scene.visits.values():
        assert re.search(rf'id="load-{visit.id}">2/2<', page)
    assert re.search(r'<li class="(mix-top)?">(Maryland|Ohio) [12]</li>', page)
    unranked = text_of(page[page.index('id="unranked"'):page.index('id="people"')])
    assert "10 visits are at a host the person did not rank" in unranked
    assert "Person0" not in unranked and "Person1 Family1 (Maryland)" in unranked


def test_the_plan_highlights_the_largest_same_delegation_group(organizer_client, scene):
    service.assign_site_visits(scene.id)
    page = organizer_client.get(f"{scene.url}/plan").text
    tops = re.findall(r'<li class="mix-top">(\w+) (\d+)</li>', page)
    mixes = service.plan_report(db.session.get(Convening, scene.id)).group_mix
    assert len(tops) == sum(1 for mix in mixes.values() if max(mix.values()) > 1)


def test_staff_see_the_plan_without_move_unlock_or_publish(staff_client, organizer, scene):
    from tests.conftest import login

    service.assign_site_visits(scene.id)
    mover = (f"{scene.url}/move", f"{scene.url}/unlock", f"{scene.url}/publish")
    page = staff_client.get(f"{scene.url}/plan").text
    for visit in scene.visits.values():
        assert re.search(rf'id="load-{visit.id}">2/2<', page)
    assert 'id="person-' in page and 'class="move"' not in page and not any(u in page for u in mover)
    assert f'href="{scene.url}/plan"' in staff_client.get(scene.url).text  # the visits nav offers it
    staff_client.post("/admin/logout")
    login(staff_client, organizer.email)
    organizer_page = staff_client.get(f"{scene.url}/plan").text
    assert 'class="move"' in organizer_page and f"{scene.url}/move" in organizer_page


def test_the_plan_counts_people_of_no_delegation_apart_and_never_as_the_largest_group(organizer_client, scene):
    for person in scene.people:
        db.session.get(Registration, person.id).delegation_id = None
    db.session.commit()
    service.assign_site_visits(scene.id)
    page = organizer_client.get(f"{scene.url}/plan").text
    assert "mix-top" not in page and "No delegation 2" not in page
    counts = re.findall(r'id="unaffiliated-\d+">No delegation: (\d+)<', page)
    assert sum(int(n) for n in counts) == 12


def move(client, scene, person, slot, visit, locked=True):
    data = {"registration_id": person, "slot_id": slot, "site_visit_id": visit or ""}
    if locked:
        data["locked"] = "y"
    return client.post(f"{scene.url}/move", data=data, follow_redirects=True)


def test_moving_into_a_full_visit_is_refused_with_the_message(organizer_client, scene):
    service.assign_site_visits(scene.id)
    morning = scene.slots[0].id
    target = scene.visits[(scene.hosts[0].id, morning)]
    plan = plan_of(scene.id)
    outsider = next(rid for rid, by_slot in plan.items() if by_slot[morning] != target.id)
    response = move(organizer_client, scene, outsider, morning, target.id)
    assert "George Brown College is full in Morning (2 places)." in flashes(response.text)
    assert plan_of(scene.id) == plan


def test_moving_into_a_free_place_locks_it_and_a_rerun_keeps_it(organizer_client, scene):
    service.assign_site_visits(scene.id)
    morning, afternoon = scene.slots[0].id, scene.slots[1].id
    target = scene.visits[(scene.hosts[0].id, morning)]
    plan = plan_of(scene.id)
    inside = next(rid for rid, by_slot in plan.items() if by_slot[morning] == target.id)
    mover = next(rid for rid, by_slot in plan.items()
                 if by_slot[morning] != target.id and by_slot[afternoon] != scene.visits[(scene.hosts[0].id,
                                                                                          afternoon)].id)
    move(organizer_client, scene, inside, morning, None)
    response = move(organizer_client, scene, mover, morning, target.id)
    name = db.session.get(Registration, mover).full_name
    assert f"{name} is moved to George Brown College in Morning and locked." in flashes(response.text)
    [row] = rows_of(VisitAssignment, registration_id=mover, slot_id=morning)
    assert row.locked and row.site_visit_id == target.id
    person_row = re.search(rf'<tr id="person-{mover}">(.*?)</tr>', response.text, flags=re.S).group(1)
    assert "Locked: the assigner keeps this place" in person_row

    organizer_client.post(f"{scene.url}/assign", data={"save": "Run and save"})
    assert plan_of(scene.id)[mover][morning] == target.id


def test_unlocking_lets_the_assigner_move_someone_again(organizer_client, scene):
    service.assign_site_visits(scene.id)
    morning = scene.slots[0].id
    person = scene.people[0].id
    current = plan_of(scene.id)[person][morning]
    move(organizer_client, scene, person, morning, current)
    [row] = rows_of(VisitAssignment, registration_id=person, slot_id=morning)
    assert row.locked
    response = organizer_client.post(f"{scene.url}/unlock", data={"registration_id": person, "slot_id": morning},
                                     follow_redirects=True)
    assert any("is unlocked in Morning" in f for f in flashes(response.text))
    [row] = rows_of(VisitAssignment, registration_id=person, slot_id=morning)
    assert not row.locked


def test_moving_someone_of_another_convening_is_not_found(organizer_client, scene):
    other = make_convening()
    stranger = make_registration(other, make_ticket(other), 77)
    visit = scene.visits[(scene.hosts[0].id, scene.slots[0].id)]
    response = organizer_client.post(f"{scene.url}/move", data={
        "registration_id": stranger.id, "slot_id": scene.slots[0].id, "site_visit_id": visit.id, "locked": "y"})
    assert response.status_code == 404
    assert not rows_of(VisitAssignment, registration_id=stranger.id)


def test_the_plan_page_keeps_its_query_count_flat_with_400_people(organizer_client, app):
    convening = make_convening(visits_per_person=2)
    ticket = make_ticket(convening)
    delegations = [make_delegation(convening, f"Delegation {n}") for n in range(8)]
    hosts = [make_host(convening, f"Host {n}", accessible=n % 5 != 0) for n in range(20)]
    slots = [make_slot(convening, label, hour) for label, hour in (("Early", 8), ("Midday", 12), ("Late", 16))]
    for h in hosts:
        for s in slots:
            make_visit(h, s, 20)
    now = datetime.now(UTC)
    db.session.add_all(
        Registration(convening_id=convening.id, ticket_type_id=ticket.id, reference=f"BIG-{n:05d}",
                     given_name=f"Guest{n}", family_name=f"Surname{n:03d}", email=f"guest{n}@example.org",
                     delegation_id=delegations[n % 8].id, status="confirmed", role="delegate", confirmed_at=now,
                     accessibility_needs=["step_free"] if n % 25 == 0 else [])
        for n in range(400)
    )
    db.session.commit()
    service.assign_site_visits(convening.id)
    with counting_statements() as statements:
        response = organizer_client.get(f"/admin/c/{convening.id}/visits/plan")
    assert response.status_code == 200
    assert "Page 1 of 8 (400 in all)" in response.text
    assert len(re.findall(r'<tr id="person-', response.text)) == 50
    assert len(statements) < 40, f"{len(statements)} statements"
    with counting_statements() as statements:
        assert organizer_client.get(f"/admin/c/{convening.id}/visits/coverage").status_code == 200
    assert len(statements) < 20, f"{len(statements)} statements"


def test_the_people_table_filters_by_delegation_and_name(organizer_client, scene):
    maryland = next(d for d in db.session.get(Convening, scene.id).delegations if d.name == "Maryland")
    page = organizer_client.get(f"{scene.url}/plan?delegation={maryland.id}").text
    ids = re.findall(r'<tr id="person-(\d+)">', page)
    assert sorted(map(int, ids)) == [p.id for p in scene.people if p.delegation_id == maryland.id]
    page = organizer_client.get(f"{scene.url}/plan?q=person4").text
    assert re.findall(r'<tr id="person-(\d+)">', page) == [str(scene.people[4].id)]


# -- publishing ------------------------------------------------------------------------------------

def test_publishing_emails_everyone_and_their_page_then_shows_the_visits(organizer_client, client, scene, outbox):
    service.assign_site_visits(scene.id)
    page = organizer_client.get(f"{scene.url}/publish").text
    assert re.search(r'id="to-notify">6<', page) and re.search(r'id="unpublished">12<', page)
    response = confirm_publish(organizer_client, scene)
    assert "The plan is published; 6 people were emailed what changed in their visits." in flashes(response.text)
    assert sorted(m["To"] for m in outbox.messages()) == sorted(p.email for p in scene.people)
    convening = db.session.get(Convening, scene.id)
    db.session.refresh(convening)
    assert convening.visits_published_at is not None
    assert re.search(r'id="unpublished">0<', organizer_client.get(f"{scene.url}/publish").text)

    person = db.session.get(Registration, scene.people[0].id)
    mine = {v.visit.host.name for v in service.published_visits_for(person.id)}
    manage = client.get(f"/c/{convening.slug}/manage/{manage_token(person)}").text
    assert all(name in manage for name in mine) and "Hotel lobby" in manage


def test_the_publish_page_counts_changes_made_after_publishing(organizer_client, scene):
    service.assign_site_visits(scene.id)
    service.publish_site_visits(scene.id)
    morning = scene.slots[0].id
    service.move_visitor(scene.people[0].id, morning, None)
    page = organizer_client.get(f"{scene.url}/publish").text
    assert re.search(r'id="unpublished">1<', page) and re.search(r'id="to-notify">1<', page)
    assert re.search(r'id="unpublished">1<', organizer_client.get(f"{scene.url}/plan").text)


# -- rosters ---------------------------------------------------------------------------------------

def test_the_roster_page_lists_the_people_of_the_visit_with_a_signature_column(staff_client, scene):
    person = db.session.get(Registration, scene.people[2].id)
    person.accessibility_needs, person.accessibility_notes = ["step_free"], "Uses a cane"
    db.session.commit()
    service.assign_site_visits(scene.id)
    visit = db.session.get(SiteVisit, plan_of(scene.id)[person.id][scene.slots[0].id])
    inside = {rid for rid, by_slot in plan_of(scene.id).items() if by_slot[scene.slots[0].id] == visit.id}
    page = staff_client.get(f"{scene.url}/{visit.id}/roster").text
    text = text_of(page)
    assert re.search(r'id="roster-count">2<', page)
    for p in scene.people:
        assert (p.full_name in text) == (p.id in inside)
    assert "Step-free (wheelchair) access; Uses a cane" in text
    assert "Signature" in text and '<body class="page-roster">' in page  # print rules: static/css/convene.css
    assert "Hotel lobby" in text and "09:00" in text


def test_the_roster_csv_has_a_bom_the_visit_details_and_guards_against_formulas(staff_client, scene):
    person = db.session.get(Registration, scene.people[1].id)
    person.organization = "=HYPERLINK(\"http://evil\")"
    db.session.commit()
    service.assign_site_visits(scene.id)
    visit_id = plan_of(scene.id)[person.id][scene.slots[1].id]
    response = staff_client.get(f"{scene.url}/{visit_id}/roster.csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Slot", "Starts", "Host"]
    assert len(rows) == 3
    mine = next(r for r in rows[1:] if r[6] == person.given_name)
    assert mine[0] == "Afternoon" and mine[1].endswith("14:00") and mine[4] == "Hotel lobby"
    assert mine[9] == "'=HYPERLINK(\"http://evil\")"


def test_the_rosters_csv_has_one_row_per_person_per_visit(staff_client, scene):
    service.assign_site_visits(scene.id)
    response = staff_client.get(f"{scene.url}/rosters.csv")
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert len(rows) == 1 + 12
    assert [r[0] for r in rows[1:]] == ["Morning"] * 6 + ["Afternoon"] * 6
    assert {(r[2], r[6]) for r in rows[1:]} == {
        (db.session.get(SiteVisit, v).host.name, db.session.get(Registration, rid).given_name)
        for rid, by_slot in plan_of(scene.id).items() for v in by_slot.values()
    }


def test_a_visit_of_another_convening_has_no_roster_here(organizer_client, scene):
    other = make_convening()
    visit = make_visit(make_host(other, "Elsewhere"), make_slot(other, "Morning", 9), 5)
    assert organizer_client.get(f"{scene.url}/{visit.id}/roster").status_code == 404
    assert organizer_client.get(f"{scene.url}/{visit.id}/roster.csv").status_code == 404
    assert organizer_client.get(f"{scene.url}/{visit.id}/edit").status_code == 404


# -- who may do what -------------------------------------------------------------------------------

VIEW = "view"  # staff may look
CHANGE = "change"  # organizers only

PAGES = [
    ("GET", "", VIEW),
    ("GET", "/coverage", VIEW),
    ("GET", "/{visit}/roster", VIEW),
    ("GET", "/{visit}/roster.csv", VIEW),
    ("GET", "/rosters.csv", VIEW),
    ("GET", "/hosts/new", CHANGE),
    ("GET", "/hosts/{host}", CHANGE),
    ("GET", "/slots/new", CHANGE),
    ("GET", "/slots/{slot}", CHANGE),
    ("GET", "/grid", CHANGE),
    ("GET", "/{visit}/edit", CHANGE),
    ("GET", "/assign", CHANGE),
    ("GET", "/plan", VIEW),  # read-only for staff (issue 11: 23)
    ("GET", "/publish", CHANGE),
    ("GET", "/hosts/{host}/delete", CHANGE),
    ("GET", "/slots/{slot}/delete", CHANGE),
    ("GET", "/{visit}/delete", CHANGE),
    ("POST", "/settings", CHANGE),
    ("POST", "/hosts/{host}/delete", CHANGE),
    ("POST", "/slots/{slot}/delete", CHANGE),
    ("POST", "/{visit}/delete", CHANGE),
    ("POST", "/move", CHANGE),
    ("POST", "/unlock", CHANGE),
    ("POST", "/publish", CHANGE),
    ("POST", "/assign", CHANGE),
]


@pytest.mark.one_database  # who may open what is decided in Python, the same on either database
@pytest.mark.parametrize("role", ["anonymous", "staff", "organizer"])
@pytest.mark.parametrize("method, path, kind", PAGES, ids=[f"{m} {p or '/'}" for m, p, _ in PAGES])
def test_access_rules(request, scene, role, method, path, kind):
    fixture = {"anonymous": "client", "staff": "staff_client", "organizer": "organizer_client"}[role]
    client = request.getfixturevalue(fixture)
    visit = scene.visits[(scene.hosts[0].id, scene.slots[0].id)]
    url = scene.url + path.format(visit=visit.id, host=scene.hosts[0].id, slot=scene.slots[0].id)
    response = client.open(url, method=method)
    if role == "anonymous":
        assert response.status_code == 302
        assert urlsplit(response.headers["Location"]).path == "/admin/login"
    elif role == "staff" and kind == CHANGE:
        assert response.status_code == 403
    elif method == "GET":
        assert response.status_code == 200
    else:
        assert response.status_code in (200, 302)
    # Nothing a refused request could have changed (and a bare delete POST only shows its confirmation).
    if role != "organizer" or path.endswith("/delete"):
        assert len(rows_of(HostOrganization, convening_id=scene.id)) == 3
        assert len(rows_of(SiteVisit, convening_id=scene.id)) == 6
        assert db.session.get(Convening, scene.id).visits_published_at is None


# -- publishing: the preview is what happens (issue 11: 20) -----------------------------------------

def confirm_publish(organizer_client, scene, page: str | None = None):
    """Post the confirmation of the publish page, carrying the token of what it previewed."""
    page = page if page is not None else organizer_client.get(f"{scene.url}/publish").text
    token = re.search(r'name="preview" value="([0-9a-f]+)"', page).group(1)
    return organizer_client.post(f"{scene.url}/publish", data={"preview": token}, follow_redirects=True)


def test_a_new_meeting_point_is_counted_and_named_on_the_publish_page_and_that_many_are_emailed(
        organizer_client, scene, outbox):
    service.assign_site_visits(scene.id)
    service.publish_site_visits(scene.id)
    before = len(outbox.messages())
    visit = scene.visits[(scene.hosts[1].id, scene.slots[0].id)]
    inside = {rid for rid, by_slot in plan_of(scene.id).items() if by_slot[scene.slots[0].id] == visit.id}
    service.save_site_visit(visit.id, {"capacity": 2, "meeting_point": "North doors", "transport_notes": "",
                                       "departs_at": None})
    page = organizer_client.get(f"{scene.url}/publish").text
    # It used to say "emails 0 people" here and then email them all the same.
    assert re.search(r'id="to-notify">2<', page)
    names = {db.session.get(Registration, rid).full_name for rid in inside}
    assert all(html.escape(name) in page for name in names)
    assert "Morning: Magnet has a new time, place or meeting point" in page
    response = confirm_publish(organizer_client, scene, page)
    assert "2 people were emailed" in flashes(response.text)[0]
    new = outbox.messages()[before:]
    assert {m["To"] for m in new} == {db.session.get(Registration, rid).email for rid in inside}
    assert all("What changed:" in outbox.text(m) and "North doors" in outbox.text(m) for m in new)


def test_the_email_says_which_visit_a_moved_person_left_and_joined(organizer_client, scene, outbox):
    service.assign_site_visits(scene.id)
    service.publish_site_visits(scene.id)
    before = len(outbox.messages())
    person, morning = scene.people[0], scene.slots[0]
    old = db.session.get(SiteVisit, plan_of(scene.id)[person.id][morning.id])
    service.move_visitor(person.id, morning.id, None)
    page = organizer_client.get(f"{scene.url}/publish").text
    assert re.search(r'id="to-notify">1<', page) and f"Morning: {old.host.name} \u2192 no visit" in page
    response = confirm_publish(organizer_client, scene, page)
    assert "The plan is published; 1 person was emailed" in flashes(response.text)[0]
    [message] = outbox.messages()[before:]
    assert message["To"] == person.email and "have changed" in message["Subject"]
    assert f"Morning: {old.host.name} \u2192 no visit" in outbox.text(message)


def test_publishing_without_the_previewed_token_publishes_nothing(organizer_client, scene, outbox):
    service.assign_site_visits(scene.id)
    response = organizer_client.post(f"{scene.url}/publish", follow_redirects=True)
    assert "Nothing was published" in flashes(response.text)[0]
    assert db.session.get(Convening, scene.id).visits_published_at is None and outbox.messages() == []


def test_a_plan_changed_after_the_preview_is_refused_and_the_new_preview_shown(organizer_client, scene, outbox):
    service.assign_site_visits(scene.id)
    service.publish_site_visits(scene.id)
    before = len(outbox.messages())
    morning = scene.slots[0].id
    service.move_visitor(scene.people[0].id, morning, None)
    page = organizer_client.get(f"{scene.url}/publish").text
    service.move_visitor(scene.people[1].id, morning, None)  # someone else changes the plan meanwhile
    response = confirm_publish(organizer_client, scene, page)
    assert "Nothing was published: the plan changed since you looked" in flashes(response.text)[0]
    assert re.search(r'id="to-notify">2<', response.text) and len(outbox.messages()) == before
    response = confirm_publish(organizer_client, scene, response.text)
    assert "2 people were emailed" in flashes(response.text)[0] and len(outbox.messages()) == before + 2
