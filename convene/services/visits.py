"""Site visits: preferences, running the assigner, moving people by hand, publishing the plan.

The optimizer (`convene.assignment`) works on plain data; this module turns the database into a
`Problem`, writes the `Solution` back as the working plan, and keeps the last published plan so a
re-run after late changes moves as few people as it can.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from convene.assignment import Person, Problem, Solution, Visit, evaluate, solve
from convene.errors import ConveneError
from convene.extensions import db
from convene.models import (
    AssignmentRun,
    Convening,
    HostOrganization,
    Registration,
    SiteVisit,
    Status,
    VisitAssignment,
    VisitPreference,
    VisitSlot,
    utcnow,
)
from convene.models.visits import VISITING_ROLES
from convene.services.db import lock, unit_of_work
from convene.services.mail import queue_email


# ---------------------------------------------------------------- reading


def hosts_of(convening_id: int) -> list[HostOrganization]:
    return db.session.execute(
        sa.select(HostOrganization).where(HostOrganization.convening_id == convening_id).order_by(HostOrganization.name)
    ).scalars().all()


def slots_of(convening_id: int) -> list[VisitSlot]:
    return db.session.execute(
        sa.select(VisitSlot).where(VisitSlot.convening_id == convening_id).order_by(VisitSlot.starts_at, VisitSlot.id)
    ).scalars().all()


def visits_of(convening_id: int) -> list[SiteVisit]:
    return db.session.execute(
        sa.select(SiteVisit).where(SiteVisit.convening_id == convening_id)
        .options(selectinload(SiteVisit.host), selectinload(SiteVisit.slot))
    ).scalars().all()


def visitors_of(convening_id: int) -> list[Registration]:
    """Confirmed people who go on site visits, in registration order."""
    return db.session.execute(
        sa.select(Registration)
        .where(Registration.convening_id == convening_id, Registration.status == Status.CONFIRMED,
               Registration.role.in_(VISITING_ROLES))
        .options(selectinload(Registration.delegation))
        .order_by(Registration.confirmed_at, Registration.id)
    ).scalars().all()


def preferences_of(convening_id: int) -> dict[int, list[int]]:
    """Each registration's ranked host ids, best first."""
    rows = db.session.execute(
        sa.select(VisitPreference.registration_id, VisitPreference.host_id)
        .join(Registration, Registration.id == VisitPreference.registration_id)
        .where(Registration.convening_id == convening_id)
        .order_by(VisitPreference.registration_id, VisitPreference.rank)
    ).all()
    ranking: dict[int, list[int]] = defaultdict(list)
    for registration_id, host_id in rows:
        ranking[registration_id].append(host_id)
    return dict(ranking)


def assignments_of(convening_id: int) -> list[VisitAssignment]:
    return db.session.execute(
        sa.select(VisitAssignment)
        .join(VisitSlot, VisitSlot.id == VisitAssignment.slot_id)
        .where(VisitSlot.convening_id == convening_id)
    ).scalars().all()


def ranking_for(registration_id: int) -> list[int]:
    return db.session.execute(
        sa.select(VisitPreference.host_id).where(VisitPreference.registration_id == registration_id)
        .order_by(VisitPreference.rank)
    ).scalars().all()


@dataclass
class PersonVisit:
    """One published visit as the attendee sees it."""

    slot: VisitSlot
    visit: SiteVisit


def published_visits_for(registration_id: int) -> list[PersonVisit]:
    """The attendee's published visits, in time order."""
    rows = db.session.execute(
        sa.select(VisitAssignment)
        .where(VisitAssignment.registration_id == registration_id, VisitAssignment.published_site_visit_id.is_not(None))
        .options(selectinload(VisitAssignment.published_site_visit).selectinload(SiteVisit.host),
                 selectinload(VisitAssignment.published_site_visit).selectinload(SiteVisit.slot))
    ).scalars().all()
    visits = [PersonVisit(slot=a.published_site_visit.slot, visit=a.published_site_visit) for a in rows]
    return sorted(visits, key=lambda v: v.slot.starts_at)


# ---------------------------------------------------------------- the problem


def _site_key(host_id: int) -> str:
    return str(host_id)


def build_problem(convening: Convening, *, with_previous: bool = True, mix_limit: int | None = None) -> Problem:
    """The convening's site-visit problem as plain data for the assigner."""
    registrations = visitors_of(convening.id)
    ranking = preferences_of(convening.id)
    people = [
        Person(
            id=str(r.id),
            ranking=[_site_key(h) for h in ranking.get(r.id, [])],
            group=str(r.delegation_id) if r.delegation_id else None,
            needs_access=r.needs_step_free_access,
        )
        for r in registrations
    ]
    visits_by_id = {v.id: v for v in visits_of(convening.id)}
    visits = [
        Visit(site=_site_key(v.host_id), slot=v.slot_id, capacity=v.capacity, accessible=v.host.accessible)
        for v in sorted(visits_by_id.values(), key=lambda v: (v.slot_id, v.host_id))
    ]
    people_ids = {p.id for p in people}
    locked: dict[tuple[str, int], str] = {}
    previous: dict[str, dict[int, str]] = defaultdict(dict)
    for a in assignments_of(convening.id):
        pid = str(a.registration_id)
        if pid not in people_ids:
            continue
        if a.locked and a.site_visit_id in visits_by_id:
            locked[(pid, a.slot_id)] = _site_key(visits_by_id[a.site_visit_id].host_id)
        if with_previous and a.published_site_visit_id in visits_by_id:
            previous[pid][a.slot_id] = _site_key(visits_by_id[a.published_site_visit_id].host_id)
    return Problem(
        people=people, visits=visits, visits_per_person=convening.visits_per_person,
        locked=locked, previous=dict(previous), mix_limit=mix_limit,
    )


# ---------------------------------------------------------------- writing


def set_visit_preferences(registration_id: int, host_ids: list[int]) -> None:
    """Replace a person's ranking of hosts (best first); hosts left out are acceptable but last."""
    with unit_of_work():
        registration = db.session.get(Registration, registration_id)
        if registration is None:
            raise ConveneError("link_invalid")
        convening = registration.convening
        if not convening.visit_preferences_open:
            raise ConveneError("preferences_closed", "Site-visit preferences are not open.")
        write_preferences(registration, host_ids)


def write_preferences(registration: Registration, host_ids: list[int]) -> None:
    """Inside a unit of work: replace the registration's ranking after checking it."""
    valid = {h.id for h in hosts_of(registration.convening_id)}
    ordered: list[int] = []
    for host_id in host_ids:
        if host_id not in valid:
            raise ConveneError("unknown_host", "That host organization is not part of this convening.")
        if host_id in ordered:
            raise ConveneError("duplicate_rank", "Each host can be ranked only once.")
        ordered.append(host_id)
    db.session.execute(sa.delete(VisitPreference).where(VisitPreference.registration_id == registration.id))
    db.session.flush()
    for rank, host_id in enumerate(ordered, start=1):
        db.session.add(VisitPreference(registration_id=registration.id, host_id=host_id, rank=rank))


@dataclass
class AssignResult:
    """What a run of the assigner found and (unless a dry run) saved."""

    run: AssignmentRun
    solution: Solution
    problem: Problem
    changed: int
    saved: bool


def assign_site_visits(
    convening_id: int, *, dry_run: bool = False, keep_published: bool = True, mix_limit: int | None = None,
    run_by: str = "",
) -> AssignResult:
    """Solve the convening's site-visit assignment and save it as the working plan.

    Locked visits are kept; with `keep_published`, changes against the last published plan cost
    churn, so a re-run after late changes moves as few people as it can.
    """
    with unit_of_work():
        convenings = lock(Convening, convening_id)
        if not convenings:
            raise ConveneError("convening_not_found", status_code=404)
        convening = convenings[0]
        problem = build_problem(convening, with_previous=keep_published, mix_limit=mix_limit)
        if not problem.visits:
            raise ConveneError("no_visits", "Add site visits (a host in a slot, with a capacity) first.")
        if not problem.people:
            raise ConveneError("no_visitors", "Nobody is confirmed to go on site visits yet.")
        solution = solve(problem)
        visit_ids = {(v.host_id, v.slot_id): v.id for v in visits_of(convening.id)}
        current = {(a.registration_id, a.slot_id): a for a in assignments_of(convening.id)}
        changed = 0
        if not dry_run:
            changed = _write_plan(convening, solution.plan, visit_ids, current, {int(p.id) for p in problem.people})
        else:
            changed = sum(
                1 for pid, by_slot in solution.plan.items() for slot, site in by_slot.items()
                if (a := current.get((int(pid), slot))) is None
                or a.site_visit_id != visit_ids.get((int(site), slot))
            )
        run = AssignmentRun(
            convening_id=convening.id, kind="reassign" if problem.previous else "assign",
            people=len(problem.people), cost=solution.cost, lower_bound=solution.lower_bound,
            optimal=solution.optimal, method=solution.method, solve_seconds=solution.solve_seconds,
            rank_profile=list(solution.rank_profile),
            unassigned=[{"registration_id": int(pid), "reason": reason} for pid, reason in solution.unassigned.items()],
            changed=changed, run_by=run_by,
        )
        if not dry_run:
            db.session.add(run)
        else:
            db.session.rollback()
    return AssignResult(run=run, solution=solution, problem=problem, changed=changed, saved=not dry_run)


def _write_plan(convening, plan, visit_ids, current, people_ids) -> int:
    """Make the working plan equal `plan`; returns how many (person, slot) places changed."""
    changed = 0
    slots = [s.id for s in slots_of(convening.id)]
    for registration_id in sorted(people_ids | {r for r, _ in current}):
        by_slot = plan.get(str(registration_id), {})
        for slot_id in slots:
            site = by_slot.get(slot_id)
            target = visit_ids.get((int(site), slot_id)) if site is not None else None
            row = current.get((registration_id, slot_id))
            if row is None:
                if target is None:
                    continue
                db.session.add(VisitAssignment(registration_id=registration_id, slot_id=slot_id, site_visit_id=target))
                changed += 1
            elif row.site_visit_id != target:
                row.site_visit_id = target
                if target is None:
                    row.locked = False
                changed += 1
    return changed


def move_visitor(registration_id: int, slot_id: int, site_visit_id: int | None, *, locked: bool = True) -> None:
    """Put a person in a visit by hand (capacity, distinct hosts and access checked) and lock it."""
    with unit_of_work():
        registration = db.session.get(Registration, registration_id)
        slot = db.session.get(VisitSlot, slot_id)
        if registration is None or slot is None or slot.convening_id != registration.convening_id:
            raise ConveneError("bad_move", "That person or slot is not part of this convening.")
        lock(Convening, registration.convening_id)
        if site_visit_id is not None:
            [visit] = lock(SiteVisit, site_visit_id) or [None]
            if visit is None or visit.slot_id != slot_id:
                raise ConveneError("bad_move", "That visit is not in this slot.")
            if registration.needs_step_free_access and not visit.host.accessible:
                raise ConveneError("visit_inaccessible", f"{registration.full_name} needs step-free access and "
                                   f"{visit.host.name} does not have it.")
            taken = db.session.scalar(
                sa.select(sa.func.count(VisitAssignment.id)).where(
                    VisitAssignment.site_visit_id == visit.id, VisitAssignment.registration_id != registration_id)
            )
            if taken >= visit.capacity:
                raise ConveneError("visit_full", f"{visit.host.name} is full in {slot.label} "
                                   f"({visit.capacity} places).")
            same_host = db.session.scalar(
                sa.select(sa.func.count(VisitAssignment.id)).join(SiteVisit, SiteVisit.id == VisitAssignment.site_visit_id)
                .where(VisitAssignment.registration_id == registration_id, VisitAssignment.slot_id != slot_id,
                       SiteVisit.host_id == visit.host_id)
            )
            if same_host:
                raise ConveneError("visit_repeat", f"{registration.full_name} already visits {visit.host.name} "
                                   "in another slot.")
        row = db.session.execute(
            sa.select(VisitAssignment).where(VisitAssignment.registration_id == registration_id,
                                             VisitAssignment.slot_id == slot_id)
        ).scalar_one_or_none()
        if row is None:
            row = VisitAssignment(registration_id=registration_id, slot_id=slot_id)
            db.session.add(row)
        row.site_visit_id = site_visit_id
        row.locked = locked and site_visit_id is not None


def unlock_visitor(registration_id: int, slot_id: int) -> None:
    """Let the assigner move this person in this slot again."""
    with unit_of_work():
        db.session.execute(
            sa.update(VisitAssignment)
            .where(VisitAssignment.registration_id == registration_id, VisitAssignment.slot_id == slot_id)
            .values(locked=False)
        )


def publish_site_visits(convening_id: int) -> int:
    """Make the working plan the published one and email everyone whose visits changed; returns that count."""
    from convene.services.registrations import manage_url

    with unit_of_work():
        [convening] = lock(Convening, convening_id)
        rows = assignments_of(convening.id)
        changed_people: set[int] = set()
        for row in rows:
            if row.published_site_visit_id != row.site_visit_id:
                row.published_site_visit_id = row.site_visit_id
                changed_people.add(row.registration_id)
        convening.visits_published_at = utcnow()
        db.session.flush()
        registrations = db.session.execute(
            sa.select(Registration).where(Registration.id.in_(changed_people), Registration.status == Status.CONFIRMED)
        ).scalars().all()
        for registration in registrations:
            visits = published_visits_for(registration.id)
            queue_email("visits", registration.email, f"Your site visits at {convening.name}", "visits",
                        registration=registration, convening=convening, visits=visits,
                        manage_url=manage_url(registration))
    return len(registrations)


# ---------------------------------------------------------------- reports


@dataclass
class PlanReport:
    """What organizers look at before publishing."""

    people: int
    placed: int
    rank_profile: tuple[int, ...]
    cost: int
    unranked: list[tuple[Registration, VisitSlot, SiteVisit]] = field(default_factory=list)
    not_placed: list[Registration] = field(default_factory=list)
    group_mix: dict[int, Counter] = field(default_factory=dict)  # site_visit_id -> delegation name -> count
    load: dict[int, int] = field(default_factory=dict)  # site_visit_id -> people
    coverage: dict[str, int] = field(default_factory=dict)
    unpublished_changes: int = 0


def plan_report(convening: Convening) -> PlanReport:
    """Rank profile, mix per group, unranked visits and preference coverage of the working plan."""
    problem = build_problem(convening, with_previous=False)
    registrations = {r.id: r for r in visitors_of(convening.id)}
    visits = {v.id: v for v in visits_of(convening.id)}
    rows = assignments_of(convening.id)
    plan: dict[str, dict[int, str]] = defaultdict(dict)
    load: Counter[int] = Counter()
    mix: dict[int, Counter] = defaultdict(Counter)
    unpublished = 0
    for row in rows:
        if row.published_site_visit_id != row.site_visit_id:
            unpublished += 1
        if row.site_visit_id is None or row.registration_id not in registrations:
            continue
        visit = visits[row.site_visit_id]
        plan[str(row.registration_id)][row.slot_id] = _site_key(visit.host_id)
        load[visit.id] += 1
        registration = registrations[row.registration_id]
        mix[visit.id][registration.delegation.name if registration.delegation else "No delegation"] += 1
    complete = {pid: by_slot for pid, by_slot in plan.items() if len(by_slot) == convening.visits_per_person}
    evaluation = evaluate(problem, complete) if problem.visits else None
    ranking = preferences_of(convening.id)
    unranked = []
    for row in rows:
        if row.site_visit_id is None or row.registration_id not in registrations:
            continue
        visit = visits[row.site_visit_id]
        if visit.host_id not in ranking.get(row.registration_id, []):
            unranked.append((registrations[row.registration_id], visit.slot, visit))
    ranked_people = sum(1 for r in registrations if ranking.get(r))
    return PlanReport(
        people=len(registrations), placed=len(complete),
        rank_profile=evaluation.rank_profile if evaluation else (), cost=evaluation.cost if evaluation else 0,
        unranked=sorted(unranked, key=lambda t: (t[0].family_name, t[1].starts_at)),
        not_placed=[r for rid, r in registrations.items() if str(rid) not in complete],
        group_mix=dict(mix), load=dict(load),
        coverage={"ranked": ranked_people, "not_ranked": len(registrations) - ranked_people},
        unpublished_changes=unpublished,
    )


def roster(site_visit_id: int) -> list[Registration]:
    """The people in a visit (working plan), by family name."""
    return db.session.execute(
        sa.select(Registration).join(VisitAssignment, VisitAssignment.registration_id == Registration.id)
        .where(VisitAssignment.site_visit_id == site_visit_id)
        .options(selectinload(Registration.delegation))
        .order_by(Registration.family_name, Registration.given_name)
    ).scalars().all()
