"""Site visits on the real database: preferences, assigning, moving by hand, publishing."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import AssignmentRun, Convening, Registration, VisitAssignment
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


@pytest.fixture
def scene(app):
    """Six delegates, three hosts (one with steps), two slots, two places per host and slot."""
    convening = make_convening(visit_preferences_open=True, visits_per_person=2)
    ticket = make_ticket(convening)
    hosts = [make_host(convening, "George Brown College"), make_host(convening, "Magnet"),
             make_host(convening, "Immigrant Access Fund", accessible=False)]
    slots = [make_slot(convening, "Morning", 9), make_slot(convening, "Afternoon", 14)]
    visits = {(h.id, s.id): make_visit(h, s, 2) for h in hosts for s in slots}
    md, oh = make_delegation(convening, "Maryland"), make_delegation(convening, "Ohio")
    people = [make_registration(convening, ticket, n, delegation_id=(md if n % 2 else oh).id) for n in range(6)]
    return convening, hosts, slots, visits, people


def plan_of(convening_id: int) -> dict[int, dict[int, int]]:
    db.session.expire_all()
    plan: dict[int, dict[int, int]] = {}
    for a in service.assignments_of(convening_id):
        if a.site_visit_id:
            plan.setdefault(a.registration_id, {})[a.slot_id] = a.site_visit_id
    return plan


def test_preferences_are_saved_in_order_and_checked(scene):
    convening, hosts, *_ , people = scene
    service.set_visit_preferences(people[0].id, [hosts[1].id, hosts[0].id])
    assert service.ranking_for(people[0].id) == [hosts[1].id, hosts[0].id]
    with pytest.raises(ConveneError):
        service.set_visit_preferences(people[0].id, [hosts[0].id, hosts[0].id])
    assert service.ranking_for(people[0].id) == [hosts[1].id, hosts[0].id]


def test_preferences_are_refused_while_closed(scene):
    convening, hosts, *_ , people = scene
    db.session.get(Convening, convening.id).visit_preferences_open = False
    db.session.commit()
    with pytest.raises(ConveneError) as caught:
        service.set_visit_preferences(people[0].id, [hosts[0].id])
    assert caught.value.code == "visit_preferences_closed"


def test_assigning_gives_everyone_two_distinct_hosts_within_capacity(scene):
    convening, hosts, slots, visits, people = scene
    for p in people:
        service.set_visit_preferences(p.id, [hosts[0].id, hosts[1].id])
    result = service.assign_site_visits(convening.id, run_by="organizer@example.org")
    assert result.saved and result.solution.optimal and not result.solution.unassigned
    plan = plan_of(convening.id)
    assert len(plan) == 6
    by_id = {v.id: v for v in visits.values()}
    for registration_id, by_slot in plan.items():
        assert set(by_slot) == {s.id for s in slots}
        assert len({by_id[v].host_id for v in by_slot.values()}) == 2
    load = sa.select(VisitAssignment.site_visit_id, sa.func.count()).group_by(VisitAssignment.site_visit_id)
    assert all(count <= 2 for _, count in db.session.execute(load))
    assert db.session.scalar(sa.select(sa.func.count(AssignmentRun.id))) == 1


def test_dry_run_saves_nothing(scene):
    convening, *_ = scene
    result = service.assign_site_visits(convening.id, dry_run=True)
    assert not result.saved and result.solution.plan
    assert plan_of(convening.id) == {}
    assert db.session.scalar(sa.select(sa.func.count(AssignmentRun.id))) == 0


def test_step_free_needs_keep_people_away_from_hosts_with_steps(scene):
    convening, hosts, slots, visits, people = scene
    person = db.session.get(Registration, people[0].id)
    person.accessibility_needs = ["step_free"]
    db.session.commit()
    service.set_visit_preferences(person.id, [hosts[2].id])
    service.assign_site_visits(convening.id)
    inaccessible = {v.id for (h, _), v in visits.items() if h == hosts[2].id}
    assert not set(plan_of(convening.id)[person.id].values()) & inaccessible
    with pytest.raises(ConveneError) as caught:
        service.move_visitor(person.id, slots[0].id, visits[(hosts[2].id, slots[0].id)].id)
    assert caught.value.code == "visit_inaccessible"


def test_moving_by_hand_checks_capacity_and_locks(scene):
    convening, hosts, slots, visits, people = scene
    service.assign_site_visits(convening.id)
    target = visits[(hosts[0].id, slots[0].id)]
    plan = plan_of(convening.id)
    inside = [rid for rid, by_slot in plan.items() if by_slot[slots[0].id] == target.id]
    outside = [rid for rid in plan if rid not in inside]
    assert len(inside) == 2  # six people, three hosts, two places each: every visit is full
    with pytest.raises(ConveneError) as caught:
        service.move_visitor(outside[0], slots[0].id, target.id)
    assert caught.value.code == "visit_full"
    # Free a place, then the move works and survives a re-run as a lock.
    service.move_visitor(inside[0], slots[0].id, None)
    mover = next(rid for rid in outside if visits[(hosts[0].id, slots[1].id)].id != plan[rid][slots[1].id])
    service.move_visitor(mover, slots[0].id, target.id)
    service.assign_site_visits(convening.id)
    assert plan_of(convening.id)[mover][slots[0].id] == target.id


def test_publishing_emails_people_and_a_rerun_keeps_churn_low(scene, outbox):
    convening, hosts, slots, visits, people = scene
    service.assign_site_visits(convening.id)
    assert service.publish_site_visits(convening.id) == 6
    mail = outbox.to(people[0].email)[-1]
    assert "Your site visits" in mail["Subject"]
    assert "Hotel lobby" in outbox.text(mail) and "Morning" in outbox.text(mail)
    published = plan_of(convening.id)
    # A late change: one person cancels; re-running moves nobody else.
    from convene.services.registrations import cancel_registration

    cancel_registration(people[5].id)
    assert people[5].id not in plan_of(convening.id)  # cancelling frees the places at once
    result = service.assign_site_visits(convening.id)
    after = plan_of(convening.id)
    assert all(after[rid] == published[rid] for rid in after)
    assert result.changed == 0
    assert service.publish_site_visits(convening.id) == 0  # nobody still coming has a change to hear about
    assert [v.visit.id for v in service.published_visits_for(people[0].id)] == [
        published[people[0].id][slots[0].id], published[people[0].id][slots[1].id]]


def test_report_shows_rank_profile_mix_and_unranked(scene):
    convening, hosts, slots, visits, people = scene
    for p in people[:3]:
        service.set_visit_preferences(p.id, [hosts[0].id, hosts[1].id])
    service.assign_site_visits(convening.id)
    report = service.plan_report(db.session.get(Convening, convening.id))
    assert report.people == 6 and report.placed == 6
    assert report.coverage == {"ranked": 3, "not_ranked": 3}
    assert sum(report.rank_profile) == 12
    assert sum(sum(c.values()) for c in report.group_mix.values()) == 12
    assert all(r.id not in {p.id for p in people[:3]} or True for r, _, _ in report.unranked)


def test_people_of_no_delegation_are_not_a_group_in_the_mix(scene):
    convening, hosts, slots, visits, people = scene
    for p in people:
        db.session.get(Registration, p.id).delegation_id = None
    db.session.commit()
    service.assign_site_visits(convening.id)
    report = service.plan_report(db.session.get(Convening, convening.id))
    assert all(not mix for mix in report.group_mix.values())
    assert sum(report.unaffiliated.values()) == 12


def test_a_new_meeting_point_after_publishing_is_emailed_to_that_visits_people_only(scene, outbox):
    convening, hosts, slots, visits, people = scene
    service.assign_site_visits(convening.id)
    service.publish_site_visits(convening.id)
    visit = visits[(hosts[0].id, slots[0].id)]
    affected = {rid for rid, by_slot in plan_of(convening.id).items() if by_slot[slots[0].id] == visit.id}
    assert service.plan_report(db.session.get(Convening, convening.id)).unpublished_changes == 0
    service.save_site_visit(visit.id, {"capacity": 2, "meeting_point": "North doors, Front Street",
                                       "transport_notes": "", "departs_at": None})
    assert service.plan_report(db.session.get(Convening, convening.id)).unpublished_changes == len(affected)
    before = len(outbox.messages())
    assert service.publish_site_visits(convening.id) == len(affected) == 2
    new = outbox.messages()[before:]
    assert {m["To"] for m in new} == {db.session.get(Registration, rid).email for rid in affected}
    assert all("North doors, Front Street" in outbox.text(m) for m in new)
    assert service.publish_site_visits(convening.id) == 0  # told once


def test_the_assigner_solves_without_the_lock_and_solves_again_when_rankings_change_meanwhile(app, scene,
                                                                                              monkeypatch):
    """A registration or a ranking during a long solve does not wait for it; the plan saved is solved for
    what the database holds when it is saved."""
    import threading

    convening, hosts, slots, visits, people = scene
    for p in people:
        service.set_visit_preferences(p.id, [hosts[0].id, hosts[1].id])
    real_solve, calls, waited = service.solve, [], []

    def solve_while_someone_ranks(problem):
        calls.append(problem)
        if len(calls) == 1:
            def rank() -> None:
                with app.app_context():
                    service.set_visit_preferences(people[0].id, [hosts[1].id, hosts[2].id])  # takes the lock
                    db.session.remove()

            other = threading.Thread(target=rank)
            other.start()
            other.join(timeout=20)
            waited.append(other.is_alive())
        return real_solve(problem)

    monkeypatch.setattr(service, "solve", solve_while_someone_ranks)
    result = service.assign_site_visits(convening.id)
    assert waited == [False], "the ranking waited for the solver: the lock was held while solving"
    assert len(calls) == 2, "the plan solved for the old rankings was saved"
    assert result.saved
    ranked = {p.id: p.ranking for p in result.problem.people}
    assert list(ranked[str(people[0].id)]) == [str(hosts[1].id), str(hosts[2].id)]
    assert service.problem_key(result.problem) == service.problem_key(service.build_problem(
        db.session.get(Convening, convening.id)))
    assert db.session.scalar(sa.select(sa.func.count(AssignmentRun.id))) == 1


def test_the_assigner_solves_under_the_lock_when_its_inputs_keep_changing(app, scene, monkeypatch):
    convening, hosts, slots, visits, people = scene
    for p in people:
        service.set_visit_preferences(p.id, [hosts[0].id, hosts[1].id])
    real_solve, calls = service.solve, []
    orders = [[hosts[1].id, hosts[0].id], [hosts[0].id, hosts[1].id]]

    def solve_while_rankings_flip(problem):
        calls.append(problem)
        if len(calls) <= service.ASSIGN_OPTIMISTIC_TRIES:
            service.set_visit_preferences(people[1].id, orders[(len(calls) - 1) % 2])
        return real_solve(problem)

    monkeypatch.setattr(service, "solve", solve_while_rankings_flip)
    result = service.assign_site_visits(convening.id)
    assert len(calls) == service.ASSIGN_OPTIMISTIC_TRIES + 1 and result.saved
    assert len(plan_of(convening.id)) == 6
