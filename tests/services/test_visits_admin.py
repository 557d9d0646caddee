"""The organizer's site-visit services on the real database: setup, coverage, rosters, and racing moves."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import (
    Convening,
    HostOrganization,
    Registration,
    SiteVisit,
    VisitAssignment,
    VisitPreference,
    VisitSlot,
)
from convene.services import visits as service
from tests.factories import (
    make_convening,
    make_delegation,
    make_host,
    make_registration,
    make_slot,
    make_ticket,
    make_visit,
)
from tests.racing import race

UTC = timezone.utc


@pytest.fixture
def scene(app):
    """Six delegates, three hosts (one with steps), two slots, two places per visit; 5-6 May 2031 in Toronto."""
    convening = make_convening(visit_preferences_open=True, visits_per_person=2,
                               starts_on=date(2031, 5, 5), ends_on=date(2031, 5, 6))
    ticket = make_ticket(convening)
    hosts = [make_host(convening, "George Brown College"), make_host(convening, "Magnet"),
             make_host(convening, "Immigrant Access Fund", accessible=False)]
    slots = [make_slot(convening, "Morning", 9), make_slot(convening, "Afternoon", 14)]
    visits = {(h.id, s.id): make_visit(h, s, 2) for h in hosts for s in slots}
    md, oh = make_delegation(convening, "Maryland"), make_delegation(convening, "Ohio")
    people = [make_registration(convening, ticket, n, delegation_id=(md if n % 2 else oh).id) for n in range(6)]
    return convening, hosts, slots, visits, people


def fresh(model, **where) -> list:
    db.session.expire_all()
    return db.session.execute(sa.select(model).filter_by(**where).order_by(model.id)).scalars().all()


def plan_of(convening_id: int) -> dict[int, dict[int, int]]:
    db.session.expire_all()
    plan: dict[int, dict[int, int]] = {}
    for row in service.assignments_of(convening_id):
        if row.site_visit_id:
            plan.setdefault(row.registration_id, {})[row.slot_id] = row.site_visit_id
    return plan


def codes(error: ConveneError) -> list[tuple[str, str | None]]:
    return [(p.code, p.field) for p in error.details.get("problems", [error])]


# -- hosts -----------------------------------------------------------------------------------------

def test_host_names_are_unique_per_convening_whatever_their_case(scene):
    convening, hosts, *_ = scene
    with pytest.raises(ConveneError) as caught:
        service.save_host(convening.id, {"name": " MAGNET "})
    assert codes(caught.value) == [("host_exists", "name")]
    with pytest.raises(ConveneError) as caught:
        service.save_host(convening.id, {"name": "Magnet"}, host_id=hosts[0].id)
    assert caught.value.code == "host_exists"
    other = make_convening()
    assert service.save_host(other.id, {"name": "Magnet"}).convening_id == other.id


def test_saving_a_host_cleans_its_fields(scene):
    convening, hosts, *_ = scene
    host = service.save_host(convening.id, {
        "name": "  Loan Fund ", "address": " 1 Bay St ", "accessible": False, "contact_email": "X@Fund.ORG",
        "contact_phone": " 416 555 0101 ", "description": None})
    [saved] = fresh(HostOrganization, id=host.id)
    assert (saved.name, saved.address, saved.accessible, saved.contact_email, saved.contact_phone,
            saved.description) == ("Loan Fund", "1 Bay St", False, "x@fund.org", "416 555 0101", "")
    with pytest.raises(ConveneError) as caught:
        service.save_host(convening.id, {"name": "   "})
    assert codes(caught.value) == [("name_required", "name")]


def test_a_host_nobody_is_placed_at_is_deleted_with_its_visits_and_rankings(scene):
    convening, hosts, slots, visits, people = scene
    person_id, college_id, magnet_id = people[0].id, hosts[0].id, hosts[1].id
    service.set_visit_preferences(person_id, [magnet_id, college_id])
    service.delete_host(magnet_id)
    assert not fresh(HostOrganization, id=magnet_id)
    assert not fresh(SiteVisit, host_id=magnet_id)
    assert [p.host_id for p in fresh(VisitPreference, registration_id=person_id)] == [college_id]


def test_deleting_a_host_with_working_places_needs_confirmation_and_keeps_the_rows(scene):
    convening, hosts, slots, visits, people = scene
    service.assign_site_visits(convening.id)
    host_id = hosts[0].id
    with pytest.raises(ConveneError) as caught:
        service.delete_host(host_id)
    assert caught.value.code == "visit_in_use" and caught.value.details["places"] == 4
    assert fresh(HostOrganization, id=host_id)
    service.delete_host(host_id, confirm=True)
    assert not fresh(HostOrganization, id=host_id)
    rows = fresh(VisitAssignment)
    assert len(rows) == 12 and sum(r.site_visit_id is None for r in rows) == 4
    assert not any(r.locked for r in rows if r.site_visit_id is None)


def test_a_host_in_the_published_plan_cannot_be_deleted_even_when_confirmed(scene):
    convening, hosts, slots, visits, people = scene
    service.assign_site_visits(convening.id)
    service.publish_site_visits(convening.id)
    with pytest.raises(ConveneError) as caught:
        service.delete_host(hosts[0].id, confirm=True)
    assert caught.value.code == "visit_published" and caught.value.details["places"] == 4
    assert fresh(HostOrganization, id=hosts[0].id) and len(fresh(SiteVisit, host_id=hosts[0].id)) == 2


def test_emptying_a_published_host_then_republishing_lets_it_be_deleted(scene, outbox):
    convening, hosts, slots, visits, people = scene
    convening_id, host_ids, slot_ids = convening.id, [h.id for h in hosts], [s.id for s in slots]
    for n, p in enumerate(people):
        make_visit(make_host(convening, f"Spare {n}"), slots[n % 2], 0)  # room to move to, later
    service.assign_site_visits(convening_id)
    service.publish_site_visits(convening_id)
    grid = {(v.host_id, v.slot_id): v.capacity for v in fresh(SiteVisit, convening_id=convening_id)}
    grid.update({key: 2 for key in grid if key[0] not in host_ids})
    grid.update({(host_ids[0], s): 0 for s in slot_ids})
    service.save_visit_grid(convening_id, grid)
    service.assign_site_visits(convening_id, keep_published=True)
    assert service.publish_site_visits(convening_id) == 4  # the four people who were at the host hear of it
    service.delete_host(host_ids[0])
    assert not fresh(HostOrganization, id=host_ids[0])


# -- slots -----------------------------------------------------------------------------------------

def test_a_slot_is_stored_in_utc_from_local_wall_clock_times(scene):
    convening, *_ = scene
    slot = service.save_slot(convening.id, {"label": "Evening", "starts_at": datetime(2031, 5, 6, 18, 0),
                                            "ends_at": datetime(2031, 5, 6, 20, 0)})
    [saved] = fresh(VisitSlot, id=slot.id)
    assert (saved.starts_at, saved.ends_at) == (datetime(2031, 5, 6, 22, tzinfo=UTC), datetime(2031, 5, 7, tzinfo=UTC))


@pytest.mark.parametrize("starts, ends, expected", [
    (datetime(2031, 5, 6, 18), datetime(2031, 5, 6, 18), [("slot_out_of_order", "ends_at")]),
    (datetime(2031, 5, 2, 9), datetime(2031, 5, 2, 11), [("slot_outside_convening", "starts_at")]),
    (datetime(2031, 5, 8, 9), datetime(2031, 5, 8, 11), [("slot_outside_convening", "starts_at")]),
    (datetime(2031, 5, 6, 13), datetime(2031, 5, 6, 15), [("slot_overlaps", "starts_at")]),
    (None, None, [("slot_label_required", "label"), ("time_required", "starts_at"), ("time_required", "ends_at")]),
])
def test_a_bad_slot_reports_every_problem_beside_its_field_and_writes_nothing(scene, starts, ends, expected):
    convening, *_ = scene
    with pytest.raises(ConveneError) as caught:
        service.save_slot(convening.id, {"label": "Extra" if starts else "", "starts_at": starts, "ends_at": ends})
    assert codes(caught.value) == expected
    assert len(fresh(VisitSlot, convening_id=convening.id)) == 2


def test_a_slot_on_the_day_before_or_after_the_convening_is_accepted(scene):
    convening, *_ = scene
    service.save_slot(convening.id, {"label": "Arrival", "starts_at": datetime(2031, 5, 4, 15),
                                     "ends_at": datetime(2031, 5, 4, 17)})
    service.save_slot(convening.id, {"label": "Departure", "starts_at": datetime(2031, 5, 7, 9),
                                     "ends_at": datetime(2031, 5, 7, 11)})
    assert len(fresh(VisitSlot, convening_id=convening.id)) == 4


def test_a_slot_time_the_clocks_skip_is_refused(app):
    convening = make_convening(starts_on=date(2031, 3, 8), ends_on=date(2031, 3, 9), timezone="America/Toronto")
    with pytest.raises(ConveneError) as caught:  # 9 March 2031, 02:30 does not exist in Toronto
        service.save_slot(convening.id, {"label": "Night", "starts_at": datetime(2031, 3, 9, 2, 30),
                                         "ends_at": datetime(2031, 3, 9, 4)})
    assert codes(caught.value) == [("local_time_missing", "starts_at")]


def test_editing_a_slot_does_not_overlap_with_itself(scene):
    convening, hosts, slots, *_ = scene
    service.save_slot(convening.id, {"label": "Morning, longer", "starts_at": datetime(2031, 5, 6, 8, 30),
                                     "ends_at": datetime(2031, 5, 6, 11, 30)}, slot_id=slots[0].id)
    [saved] = fresh(VisitSlot, id=slots[0].id)
    assert saved.label == "Morning, longer" and saved.starts_at == datetime(2031, 5, 6, 12, 30, tzinfo=UTC)


def test_deleting_a_slot_with_working_places_needs_confirmation_and_drops_its_rows(scene):
    convening, hosts, slots, visits, people = scene
    service.assign_site_visits(convening.id)
    morning_id, afternoon_id = slots[0].id, slots[1].id
    with pytest.raises(ConveneError) as caught:
        service.delete_slot(afternoon_id)
    assert caught.value.code == "visit_in_use" and caught.value.details["places"] == 6
    service.delete_slot(afternoon_id, confirm=True)
    assert not fresh(VisitSlot, id=afternoon_id) and not fresh(SiteVisit, slot_id=afternoon_id)
    assert {r.slot_id for r in fresh(VisitAssignment)} == {morning_id}


# -- the grid and visit details --------------------------------------------------------------------

def test_the_grid_adds_changes_and_removes_visits_in_one_go(scene):
    convening, hosts, slots, visits, people = scene
    extra = make_host(convening, "Loan Fund")
    grid = {key: v.capacity for key, v in visits.items()}
    grid[(hosts[0].id, slots[0].id)] = 7
    grid[(hosts[2].id, slots[1].id)] = None
    grid[(extra.id, slots[0].id)] = 3
    grid[(extra.id, slots[1].id)] = None
    result = service.save_visit_grid(convening.id, grid)
    assert (result.added, result.changed, result.removed, result.over_capacity) == (1, 1, 1, [])
    caps = {(v.host_id, v.slot_id): v.capacity for v in fresh(SiteVisit, convening_id=convening.id)}
    assert caps[(hosts[0].id, slots[0].id)] == 7 and caps[(extra.id, slots[0].id)] == 3
    assert (hosts[2].id, slots[1].id) not in caps and len(caps) == 6


def test_a_grid_with_bad_cells_reports_each_and_changes_nothing(scene):
    convening, hosts, slots, visits, people = scene
    service.assign_site_visits(convening.id)
    before = {(v.host_id, v.slot_id): v.capacity for v in fresh(SiteVisit, convening_id=convening.id)}
    grid = {key: v.capacity for key, v in visits.items()}
    grid[(hosts[0].id, slots[0].id)] = 9  # fine on its own, but nothing is saved when another cell is wrong
    grid[(hosts[1].id, slots[0].id)] = -1
    grid[(hosts[1].id, slots[1].id)] = 10**9
    grid[(hosts[2].id, slots[1].id)] = None  # people are placed there
    with pytest.raises(ConveneError) as caught:
        service.save_visit_grid(convening.id, grid)
    assert sorted(codes(caught.value)) == sorted([
        ("visit_capacity_negative", service.grid_cell(hosts[1].id, slots[0].id)),
        ("visit_capacity_too_large", service.grid_cell(hosts[1].id, slots[1].id)),
        ("visit_in_use", service.grid_cell(hosts[2].id, slots[1].id)),
    ])
    assert {(v.host_id, v.slot_id): v.capacity for v in fresh(SiteVisit, convening_id=convening.id)} == before


def test_the_grid_refuses_cells_of_another_convening(scene):
    convening, hosts, slots, visits, people = scene
    other = make_convening()
    stranger = make_host(other, "Elsewhere")
    with pytest.raises(ConveneError) as caught:
        service.save_visit_grid(convening.id, {(stranger.id, slots[0].id): 5})
    assert caught.value.code == "bad_grid"
    assert not fresh(SiteVisit, host_id=stranger.id)


def test_a_capacity_below_the_people_placed_is_saved_and_reported(scene):
    convening, hosts, slots, visits, people = scene
    service.assign_site_visits(convening.id)
    grid = {key: v.capacity for key, v in visits.items()} | {(hosts[1].id, slots[1].id): 1}
    result = service.save_visit_grid(convening.id, grid)
    [(visit, load)] = result.over_capacity
    assert (visit.host_id, visit.slot_id, visit.capacity, load) == (hosts[1].id, slots[1].id, 1, 2)


def test_visit_details_store_the_departure_in_utc_and_keep_it_near_the_slot(scene):
    convening, hosts, slots, visits, people = scene
    visit = visits[(hosts[0].id, slots[0].id)]  # 6 May 2031, 09:00-11:00 Toronto time
    data = {"capacity": 3, "meeting_point": " Lobby ", "transport_notes": "Line 1",
            "departs_at": datetime(2031, 5, 6, 8, 30)}
    service.save_site_visit(visit.id, data)
    [saved] = fresh(SiteVisit, id=visit.id)
    assert (saved.capacity, saved.meeting_point) == (3, "Lobby")
    assert saved.departs_at == datetime(2031, 5, 6, 12, 30, tzinfo=UTC)
    for late_or_early in (datetime(2031, 5, 6, 11, 0), datetime(2031, 5, 5, 20, 0)):
        with pytest.raises(ConveneError) as caught:
            service.save_site_visit(visit.id, data | {"departs_at": late_or_early})
        assert codes(caught.value) == [("departure_outside_slot", "departs_at")]
    with pytest.raises(ConveneError) as caught:
        service.save_site_visit(visit.id, data | {"capacity": -2, "departs_at": None})
    assert codes(caught.value) == [("visit_capacity_negative", "capacity")]
    [saved] = fresh(SiteVisit, id=visit.id)
    assert saved.capacity == 3 and saved.departs_at is not None


def test_deleting_a_visit_people_are_placed_in_needs_confirmation(scene):
    convening, hosts, slots, visits, people = scene
    service.assign_site_visits(convening.id)
    visit_id = visits[(hosts[1].id, slots[0].id)].id
    with pytest.raises(ConveneError) as caught:
        service.delete_site_visit(visit_id)
    assert caught.value.code == "visit_in_use"
    service.delete_site_visit(visit_id, confirm=True)
    assert not fresh(SiteVisit, id=visit_id)
    assert sum(r.site_visit_id is None for r in fresh(VisitAssignment)) == 2


# -- settings --------------------------------------------------------------------------------------

def test_settings_keep_visits_per_person_between_one_and_the_number_of_slots(scene):
    convening, *_ = scene
    service.update_visit_settings(convening.id, 1, False)
    [saved] = fresh(Convening, id=convening.id)
    assert (saved.visits_per_person, saved.visit_preferences_open) == (1, False)
    for bad, code in ((0, "visits_per_person_invalid"), (3, "visits_per_person_over_slots"),
                      (11, "visits_per_person_invalid")):
        with pytest.raises(ConveneError) as caught:
            service.update_visit_settings(convening.id, bad, True)
        assert codes(caught.value) == [(code, "visits_per_person")]
    [saved] = fresh(Convening, id=convening.id)
    assert (saved.visits_per_person, saved.visit_preferences_open) == (1, False)


def test_settings_allow_any_sensible_count_before_slots_exist(app):
    convening = make_convening()
    service.update_visit_settings(convening.id, 4, True)
    [saved] = fresh(Convening, id=convening.id)
    assert (saved.visits_per_person, saved.visit_preferences_open) == (4, True)


# -- coverage and rosters --------------------------------------------------------------------------

def test_coverage_counts_visitors_only_and_ranks_per_host(scene):
    convening, hosts, slots, visits, people = scene
    service.set_visit_preferences(people[0].id, [hosts[1].id, hosts[0].id])
    service.set_visit_preferences(people[1].id, [hosts[1].id])
    staff = make_registration(convening, make_ticket(convening), 50, role="staff")
    service.set_visit_preferences(staff.id, [hosts[2].id])  # staff do not go on visits: not counted
    from convene.services.registrations import cancel_registration

    cancel_registration(people[5].id)
    coverage = service.preference_coverage(fresh(Convening, id=convening.id)[0])
    assert (coverage.visitors, coverage.ranked, len(coverage.not_ranked)) == (5, 2, 3)
    assert {r.id for r in coverage.not_ranked} == {p.id for p in people[2:5]}
    by_host = {h.id: (counts, total) for h, counts, total in coverage.by_host}
    assert by_host[hosts[1].id] == ([2, 0], 2) and by_host[hosts[0].id] == ([0, 1], 1)
    assert by_host[hosts[2].id] == ([0, 0], 0)
    assert coverage.everyone_every_slot and (coverage.places, coverage.places_needed) == (12, 10)
    assert [(d.capacity, d.accessible_capacity, d.short) for d in coverage.slots] == [(6, 4, False)] * 2


def test_cancelling_takes_people_off_the_roster_at_once(scene):
    convening, hosts, slots, visits, people = scene
    service.assign_site_visits(convening.id)
    visit_id = plan_of(convening.id)[people[0].id][slots[0].id]
    from convene.services.registrations import cancel_registration

    cancel_registration(people[0].id)
    assert people[0].id not in {r.id for r in service.visit_roster(visit_id)}
    assert service.visit_loads(convening.id)[visit_id] == 1


def test_the_rosters_csv_orders_by_slot_then_host_and_guards_formula_cells(scene):
    convening, hosts, slots, visits, people = scene
    person = fresh(Registration, id=people[3].id)[0]
    person.family_name, person.organization = "@SUM(A1)", "+cmd"
    db.session.commit()
    service.assign_site_visits(convening.id)
    text = service.rosters_csv(fresh(Convening, id=convening.id)[0])
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert len(rows) == 12
    assert [r["Slot"] for r in rows] == ["Morning"] * 6 + ["Afternoon"] * 6
    morning = [r["Host"] for r in rows[:6]]
    assert morning == sorted(morning, key=str.lower)
    mine = [r for r in rows if r["Given name"] == person.given_name]
    assert len(mine) == 2 and all(r["Family name"] == "'@SUM(A1)" and r["Organization"] == "'+cmd" for r in mine)


def test_people_to_notify_counts_people_not_places(scene):
    convening, hosts, slots, visits, people = scene
    service.assign_site_visits(convening.id)
    assert service.people_to_notify(convening.id) == 6
    service.publish_site_visits(convening.id)
    assert service.people_to_notify(convening.id) == 0
    service.move_visitor(people[0].id, slots[0].id, None)
    service.move_visitor(people[0].id, slots[1].id, None)
    assert service.people_to_notify(convening.id) == 1


# -- racing for the last place ---------------------------------------------------------------------

def test_two_organizers_moving_two_people_into_the_last_place_at_once_fill_it_exactly_once(app, backend):
    """Both moves pass their capacity check only if the lock does not serialize them: exactly one must win."""
    convening = make_convening(visits_per_person=1)
    ticket = make_ticket(convening)
    slot = make_slot(convening, "Morning", 9)
    target = make_visit(make_host(convening, "Magnet"), slot, 2)
    elsewhere = make_visit(make_host(convening, "Loan Fund"), slot, 10)
    people = [make_registration(convening, ticket, n) for n in range(3)]
    service.move_visitor(people[0].id, slot.id, target.id)  # one place left
    for p in people[1:]:
        service.move_visitor(p.id, slot.id, elsewhere.id)
    slot_id, target_id = slot.id, target.id  # plain ints: ORM objects stay in this thread
    racers = [p.id for p in people[1:]]

    def move(registration_id: int):
        def action() -> tuple[int, str]:
            try:
                service.move_visitor(registration_id, slot_id, target_id)
            except ConveneError as error:
                return registration_id, error.code
            return registration_id, "moved"
        return action

    outcomes = dict(race(app, [move(rid) for rid in racers], timeout=60))
    assert sorted(outcomes.values()) == ["moved", "visit_full"], outcomes
    placed = db.session.scalar(sa.select(sa.func.count(VisitAssignment.id))
                               .where(VisitAssignment.site_visit_id == target_id))
    assert placed == 2
    winner = next(rid for rid, result in outcomes.items() if result == "moved")
    assert plan_of(convening.id)[winner][slot_id] == target_id
