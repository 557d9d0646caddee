"""Site visits: preferences, running the assigner, moving people by hand, publishing the plan.

The optimizer (`convene.assignment`) works on plain data; this module turns the database into a
`Problem`, writes the `Solution` back as the working plan, and keeps the last published plan so a
re-run after late changes moves as few people as it can.
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from sqlalchemy.orm import selectinload

from convene.assignment import Person, Problem, Solution, Visit, evaluate, solve
from convene.errors import ConveneError
from convene.extensions import db
from convene.forms import ORDINALS
from convene.languages import localized
from convene.models import (
    ENDED,
    AssignmentRun,
    Convening,
    HostOrganization,
    OutboxMessage,
    Registration,
    SiteVisit,
    Status,
    VisitAssignment,
    VisitPreference,
    VisitSlot,
    utcnow,
)
from convene.models.visits import VISITING_ROLES
from convene.services import audit
from convene.services.db import lock, unit_of_work
from convene.services.mail import queue_email
from convene.services.previews import Deletion, Effect, digest, plural
from convene.text import search_key


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


def set_visit_preferences(registration_id: int, host_ids: list[int], *, by_organizer: bool = False) -> None:
    """Replace a person's ranking of hosts (best first); hosts left out are acceptable but last.

    Attendees rank only while preferences are open; organizers (`by_organizer`) enter or correct a
    ranking at any time, for anyone whose registration has not ended. The published plan does not
    change until the assigner is run again and the plan published.
    """
    with unit_of_work():
        registration = db.session.get(Registration, registration_id)
        if registration is None:
            raise ConveneError("registration_not_found" if by_organizer else "link_invalid")
        # The assigner reads every ranking under this lock: a ranking is saved before or after a run, not during.
        [convening] = lock(Convening, registration.convening_id)
        if by_organizer:
            if registration.status in ENDED:
                raise ConveneError("ranking_registration_ended", name=registration.full_name)
        elif not convening.visit_preferences_open:
            raise ConveneError("visit_preferences_closed")
        write_preferences(registration, host_ids)


def max_ranks(host_count: int) -> int:
    """How many hosts a ranking may name: every host, up to the ten a ranking form offers."""
    return min(host_count, len(ORDINALS))


def check_ranking(host_ids: list[int], valid: set[int]) -> list[int]:
    """The ranking to store, best first: known hosts, each once, at most `max_ranks` of them.

    Raises ConveneError whose `position` (0 = first choice) names the choice at fault; the public
    form, the back office and the import all check a ranking here.
    """
    ordered: list[int] = []
    for position, host_id in enumerate(host_ids):
        if host_id not in valid:
            raise ConveneError("unknown_host", position=position)
        if host_id in ordered:
            raise ConveneError("duplicate_host_rank", position=position, first=ordered.index(host_id))
        ordered.append(host_id)
    limit = max_ranks(len(valid))
    if len(ordered) > limit:
        raise ConveneError("too_many_host_ranks", position=limit, limit=limit)
    return ordered


def write_preferences(registration: Registration, host_ids: list[int]) -> None:
    """Inside a unit of work: replace the registration's ranking after checking it."""
    ordered = check_ranking(host_ids, {h.id for h in hosts_of(registration.convening_id)})
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

    The solver takes seconds to minutes on a big convening, and registrations lock the convening, so it
    solves without the lock; the plan is saved, under the lock, only if what it was solved for (people,
    rankings, visits, locked and published places) is still what the database holds. After
    ASSIGN_OPTIMISTIC_TRIES changed inputs it solves under the lock, as the only way left to finish.
    """
    for _ in range(ASSIGN_OPTIMISTIC_TRIES):
        with unit_of_work():
            problem = _problem_of(_convening_or_404(convening_id), keep_published, mix_limit)
            db.session.rollback()  # read only: end the transaction before solving
        solution = solve(problem)
        if dry_run:
            with unit_of_work():
                result = _save_plan(_convening_or_404(convening_id), problem, solution, dry_run=True, run_by=run_by)
                db.session.rollback()
            return result
        with unit_of_work():
            [convening] = lock(Convening, convening_id) or [None]
            if convening is None:
                raise ConveneError("convening_not_found", status_code=404)
            if problem_key(_problem_of(convening, keep_published, mix_limit)) == problem_key(problem):
                return _save_plan(convening, problem, solution, dry_run=False, run_by=run_by)
            db.session.rollback()  # something changed while solving: read again and solve again
    with unit_of_work():
        [convening] = lock(Convening, convening_id) or [None]
        if convening is None:
            raise ConveneError("convening_not_found", status_code=404)
        problem = _problem_of(convening, keep_published, mix_limit)
        return _save_plan(convening, problem, solve(problem), dry_run=False, run_by=run_by)


# How many times the assigner solves outside the lock before it solves holding it.
ASSIGN_OPTIMISTIC_TRIES = 2


def _convening_or_404(convening_id: int) -> Convening:
    convening = db.session.get(Convening, convening_id)
    if convening is None:
        raise ConveneError("convening_not_found", status_code=404)
    return convening


def _problem_of(convening: Convening, keep_published: bool, mix_limit: int | None) -> Problem:
    problem = build_problem(convening, with_previous=keep_published, mix_limit=mix_limit)
    if not problem.visits:
        raise ConveneError("no_visits")
    if not problem.people:
        raise ConveneError("no_visitors")
    return problem


def problem_key(problem: Problem) -> str:
    """A digest of what a plan is solved for, the same however the rows were read."""
    return hashlib.sha256(repr((
        problem.people, problem.visits, problem.visits_per_person, problem.mix_limit,
        sorted(problem.locked.items()), sorted((p, sorted(by_slot.items())) for p, by_slot in problem.previous.items()),
    )).encode()).hexdigest()


def _save_plan(convening: Convening, problem: Problem, solution: Solution, *, dry_run: bool,
               run_by: str) -> AssignResult:
    """Inside a unit of work: write the solved plan as the working plan (or count its changes) and its run."""
    visit_ids = {(v.host_id, v.slot_id): v.id for v in visits_of(convening.id)}
    current = {(a.registration_id, a.slot_id): a for a in assignments_of(convening.id)}
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
    return AssignResult(run=run, solution=solution, problem=problem, changed=changed, saved=not dry_run)


# More visitors than this, and saving a plan runs on the worker (the solver takes seconds to minutes).
ASSIGN_INLINE_MAX = 300


def assign_in_background(convening_id: int) -> bool:
    """Whether saving a plan for this convening is work for the queue (ASSIGN_INLINE_MAX visitors or more)."""
    limit = int(current_app.config.get("ASSIGN_INLINE_MAX", ASSIGN_INLINE_MAX))
    visitors = db.session.scalar(sa.select(sa.func.count(Registration.id))
                                 .where(Registration.convening_id == convening_id, *_visitor_conditions()))
    return visitors > limit


def request_assignment(convening_id: int, *, keep_published: bool = True, mix_limit: int | None = None,
                       run_by: str = "", requested_by: int | None = None):
    """Queue the assigner for a big convening; its job page shows when the plan is saved."""
    from convene import jobs

    return jobs.enqueue("assign_visits", convening_id=convening_id, requested_by=requested_by,
                        params={"keep_published": keep_published, "mix_limit": mix_limit, "run_by": run_by},
                        idempotency_key=None)


def assign_site_visits_task(run) -> dict:
    """The worker's assigner: solve and save the working plan (a second run solves again: the same plan)."""
    result = assign_site_visits(run.convening_id, keep_published=run.params.get("keep_published", True),
                                mix_limit=run.params.get("mix_limit"), run_by=run.params.get("run_by", ""))
    people = len(result.problem.people)
    return {"done": people, "total": people,
            "message": f"The plan is saved as the working plan ({result.changed} places changed; "
                      f"assignment run {result.run.id})."}


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
            raise ConveneError("bad_move")
        if registration.status != Status.CONFIRMED or registration.role not in VISITING_ROLES:
            raise ConveneError("not_a_visitor", name=registration.full_name)
        lock(Convening, registration.convening_id)
        if site_visit_id is not None:
            [visit] = lock(SiteVisit, site_visit_id) or [None]
            if visit is None or visit.slot_id != slot_id:
                raise ConveneError("bad_move_slot")
            if registration.needs_step_free_access and not visit.host.accessible:
                raise ConveneError("visit_inaccessible", name=registration.full_name, host=visit.host.name)
            taken = db.session.scalar(
                sa.select(sa.func.count(VisitAssignment.id))
                .join(Registration, Registration.id == VisitAssignment.registration_id)
                .where(VisitAssignment.site_visit_id == visit.id, VisitAssignment.registration_id != registration_id,
                       Registration.status == Status.CONFIRMED)
            )
            if taken >= visit.capacity:
                raise ConveneError("visit_full", host=visit.host.name, slot=slot.label, capacity=visit.capacity)
            same_host = db.session.scalar(
                sa.select(sa.func.count(VisitAssignment.id)).join(SiteVisit, SiteVisit.id == VisitAssignment.site_visit_id)
                .where(VisitAssignment.registration_id == registration_id, VisitAssignment.slot_id != slot_id,
                       SiteVisit.host_id == visit.host_id)
            )
            if same_host:
                raise ConveneError("visit_repeat", name=registration.full_name, host=visit.host.name)
        row = db.session.execute(
            sa.select(VisitAssignment).where(VisitAssignment.registration_id == registration_id,
                                             VisitAssignment.slot_id == slot_id)
        ).scalar_one_or_none()
        if row is None:
            row = VisitAssignment(registration_id=registration_id, slot_id=slot_id)
            db.session.add(row)
        row.site_visit_id = site_visit_id
        row.locked = locked and site_visit_id is not None


def release_visits(registration_id: int) -> None:
    """Inside a unit of work: free a cancelled person's places in the working plan."""
    db.session.execute(
        sa.update(VisitAssignment).where(VisitAssignment.registration_id == registration_id)
        .values(site_visit_id=None, locked=False)
    )


def unlock_visitor(registration_id: int, slot_id: int) -> None:
    """Let the assigner move this person in this slot again."""
    with unit_of_work():
        db.session.execute(
            sa.update(VisitAssignment)
            .where(VisitAssignment.registration_id == registration_id, VisitAssignment.slot_id == slot_id)
            .values(locked=False)
        )


@dataclass
class VisitChange:
    """One slot of one person that publishing changes: another visit, or the same one with new details."""

    slot: VisitSlot
    before: SiteVisit | None
    after: SiteVisit | None

    @property
    def text(self) -> str:
        """What changed, in the language of the page or email being made."""
        name = lambda v: localized(v.host, "name") if v is not None else gettext("no visit")  # noqa: E731
        if self.before is not None and self.after is not None and self.before.id == self.after.id:
            return gettext("%(slot)s: %(host)s has a new time, place or meeting point (see below)",
                           slot=self.slot.label, host=name(self.after))
        return f"{self.slot.label}: {name(self.before)} \u2192 {name(self.after)}"


@dataclass
class PublishPreview:
    """Exactly who publishing emails and what changed for each; `token` names this set for the confirmation."""

    people: list[tuple[Registration, list[VisitChange]]]
    token: str


def _people_to_email(convening: Convening) -> set[int]:
    """Ids of the people still coming whom publishing emails: a different visit, or new details of theirs.

    The publish page, the overview and publishing itself all count with this one function, so the
    number shown before publishing is the number emailed.
    """
    moved = db.session.execute(
        sa.select(VisitAssignment.registration_id)
        .join(VisitSlot, VisitSlot.id == VisitAssignment.slot_id)
        .where(VisitSlot.convening_id == convening.id,
               VisitAssignment.site_visit_id.is_distinct_from(VisitAssignment.published_site_visit_id))
    ).scalars()
    ids = set(moved) | _people_of_visits_changed_since_publish(convening)
    if not ids:
        return set()
    return set(db.session.execute(
        sa.select(Registration.id).where(Registration.id.in_(sorted(ids)), Registration.status == Status.CONFIRMED)
    ).scalars())


def publish_preview(convening_id: int) -> PublishPreview:
    """Who publishing the working plan would email now, with each person's changes, by name."""
    convening = db.session.get(Convening, convening_id)
    return _publish_preview(convening)


def _publish_changes(convening: Convening) -> list[tuple[int, list[tuple[int, int | None, int | None]]]]:
    """Who publishing emails, by name order, each with (slot, visit before, visit after) ids in time order.

    Plain rows only, in a handful of queries: publishing decides with this under the convening's lock.
    """
    ids = _people_to_email(convening)
    if not ids:
        return []
    details = _people_of_visits_changed_since_publish(convening)
    sort_keys = dict(db.session.execute(
        sa.select(Registration.id, Registration.sort_key).where(Registration.id.in_(sorted(ids)))).all())
    starts = dict(db.session.execute(
        sa.select(VisitSlot.id, VisitSlot.starts_at).where(VisitSlot.convening_id == convening.id)).all())
    changed_at = dict(db.session.execute(
        sa.select(SiteVisit.id, SiteVisit.details_changed_at).where(SiteVisit.convening_id == convening.id)).all())
    changes: dict[int, list[tuple[int, int | None, int | None]]] = defaultdict(list)
    for registration_id, slot_id, after, before in db.session.execute(
        sa.select(VisitAssignment.registration_id, VisitAssignment.slot_id, VisitAssignment.site_visit_id,
                  VisitAssignment.published_site_visit_id)
        .join(VisitSlot, VisitSlot.id == VisitAssignment.slot_id).where(VisitSlot.convening_id == convening.id)
    ):
        if registration_id not in sort_keys:
            continue
        known = (before if before in changed_at else None, after if after in changed_at else None)
        if before != after:
            changes[registration_id].append((slot_id, *known))
        elif registration_id in details and after in changed_at and changed_at[after] is not None \
                and changed_at[after] > convening.visits_published_at:
            changes[registration_id].append((slot_id, *known))
    return [(rid, sorted(changes[rid], key=lambda change: starts[change[0]]))
            for rid in sorted(sort_keys, key=lambda rid: (sort_keys[rid], rid))]


def _token(changes: list) -> str:
    return hashlib.sha256(repr(changes).encode()).hexdigest()[:32]


def _publish_preview(convening: Convening) -> PublishPreview:
    changes = _publish_changes(convening)
    registrations = registrations_by_id(rid for rid, _ in changes)
    visits = {v.id: v for v in visits_of(convening.id)}
    slots = {s.id: s for s in slots_of(convening.id)}
    people = [(registrations[rid], [VisitChange(slot=slots[slot], before=visits.get(before), after=visits.get(after))
                                    for slot, before, after in told])
              for rid, told in changes]
    return PublishPreview(people=people, token=_token(changes))


# Up to this many people are written to from the request that publishes (after its commit, outside the lock);
# more, and the worker writes to them, so the page answers at once however many are emailed.
PUBLISH_INLINE_MAX = 25
PUBLISH_BATCH = 100  # emails rendered per transaction by the job that writes them


@dataclass
class Publication:
    """What publishing did: how many people it emails, and the job that writes to them (None: nobody)."""

    emailed: int
    job_id: int | None
    written: bool  # the emails are in the outbox already (a small publish writes them before it answers)


def publish_site_visits(convening_id: int, *, expected: str | None = None) -> int:
    """Make the working plan the published one and email everyone whose visits changed; returns that count."""
    return publish_plan(convening_id, expected=expected).emailed


def publish_plan(convening_id: int, *, expected: str | None = None, requested_by: int | None = None) -> Publication:
    """Publish the working plan: decide and record under the convening's lock, write the emails outside it.

    Under the lock: who is emailed with which changes (the preview), one UPDATE that makes the
    working plan the published one, the time, and a `publish_visits` job holding the decision. The
    emails are rendered and queued by that job after the commit, so a registration waiting for the
    same lock waits for a few statements, not for a thousand emails. The job is recorded with the
    publication: if the process dies before it ran, the scheduler's sweep hands it to a worker.

    With `expected` (the token of the preview the organizer confirmed), refuse if the set changed since.
    """
    from convene import jobs

    inline_max = int(current_app.config.get("PUBLISH_INLINE_MAX", PUBLISH_INLINE_MAX))
    job = None
    with unit_of_work():
        [convening] = lock(Convening, convening_id)
        changes = _publish_changes(convening)
        if expected is not None and expected != _token(changes):
            raise ConveneError("publish_preview_changed")
        first = convening.visits_published_at is None
        # One statement, logged as one named entry: the working plan's own changes are logged as they are made.
        places = db.session.execute(
            sa.update(VisitAssignment)
            .where(VisitAssignment.slot_id.in_(sa.select(VisitSlot.id).where(VisitSlot.convening_id == convening.id)),
                   VisitAssignment.site_visit_id.is_distinct_from(VisitAssignment.published_site_visit_id))
            .values(published_site_visit_id=VisitAssignment.site_visit_id)
            .execution_options(synchronize_session=False, convene_unlogged=True)
        ).rowcount
        audit.record("site_visits.published", convening_id=convening.id, object_type="convening",
                     object_id=convening.id, label=convening.name,
                     changes={"places_changed": [None, places], "people_emailed": [None, len(changes)]})
        convening.visits_published_at = utcnow()
        if changes:
            people = [[rid, [list(change) for change in told]] for rid, told in changes]
            job = jobs.enqueue("publish_visits", convening_id=convening.id, requested_by=requested_by,
                               params={"people": people, "first": first,
                                       "published_at": convening.visits_published_at.isoformat()},
                               total=len(people), hand_on=len(people) > inline_max)
        job_id = job.id if job is not None else None  # read now: after the commit it would be a new read
        emailed = len(changes)
    if job_id is None:
        return Publication(emailed=0, job_id=None, written=True)
    written = False
    if emailed <= inline_max:
        written = jobs.run(job_id) == "done"
    return Publication(emailed=emailed, job_id=job_id, written=written)


def publish_site_visits_task(run) -> dict:
    """The job that writes a publication's emails, in batches; a retried run skips whom an earlier run wrote to."""
    from convene.services.registrations import manage_url

    people = run.params["people"]
    published_at = datetime.fromisoformat(run.params["published_at"])
    first = bool(run.params.get("first"))
    skip: set[int] = set()
    if run.attempt > 1:  # each batch commits its emails together: who has one since publishing is done
        skip = set(db.session.execute(
            sa.select(OutboxMessage.registration_id)
            .where(OutboxMessage.kind == "visits", OutboxMessage.created_at >= published_at,
                   OutboxMessage.registration_id.in_([person for person, _ in people]))
        ).scalars())
        db.session.rollback()
    written = 0
    for start in range(0, len(people), PUBLISH_BATCH):
        batch = [(person, changes) for person, changes in people[start:start + PUBLISH_BATCH] if person not in skip]
        if batch:
            written += _write_publish_emails(run.convening_id, batch, first, manage_url)
        run.progress(min(start + PUBLISH_BATCH, len(people)))
    return {"done": len(people), "total": len(people),
            "message": f"{written} email(s) written" + (f", {len(skip)} by an earlier run" if skip else "")}


def _write_publish_emails(convening_id: int, batch: list, first: bool, manage_url) -> int:
    """One batch of a publication's emails, in one unit of work (delivered after it commits)."""
    written = 0
    with unit_of_work():
        convening = db.session.get(Convening, convening_id)
        visits = {v.id: v for v in visits_of(convening_id)}
        slots = {s.id: s for s in slots_of(convening_id)}
        registrations = registrations_by_id(person for person, _ in batch)

        def subject():  # called in the recipient's language when their email is written
            if first:
                return gettext("Your site visits at %(convening)s", convening=localized(convening, "name"))
            return gettext("Your site visits at %(convening)s have changed", convening=localized(convening, "name"))
        for person, changes in batch:
            registration = registrations.get(person)
            if registration is None or registration.status != Status.CONFIRMED:
                continue  # cancelled since publishing: nothing to tell them
            told = sorted((VisitChange(slot=slots[slot], before=visits.get(before), after=visits.get(after))
                           for slot, before, after in changes if slot in slots), key=lambda c: c.slot.starts_at)
            queue_email("visits", registration.email, subject, "visits", registration=registration,
                        convening=convening, visits=published_visits_for(registration.id), changes=told,
                        manage_url=manage_url(registration))
            written += 1
    return written


def _people_of_visits_changed_since_publish(convening: Convening) -> set[int]:
    """People whose published visit got a new time, place or meeting point after the last publish."""
    if convening.visits_published_at is None:
        return set()
    return set(db.session.execute(
        sa.select(VisitAssignment.registration_id)
        .join(SiteVisit, SiteVisit.id == VisitAssignment.published_site_visit_id)
        .where(SiteVisit.convening_id == convening.id,
               SiteVisit.details_changed_at > convening.visits_published_at)
    ).scalars())


def _mark_details_changed(visits) -> None:
    now = utcnow()
    for visit in visits:
        visit.details_changed_at = now


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
    unaffiliated: dict[int, int] = field(default_factory=dict)  # site_visit_id -> people of no delegation
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
    unaffiliated: Counter[int] = Counter()
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
        # People of no delegation are not a group: they are counted apart and never make a visit look lopsided.
        if registration.delegation is None:
            unaffiliated[visit.id] += 1
        else:
            mix[visit.id][registration.delegation.name] += 1
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
        unranked=sorted(unranked, key=lambda t: (t[0].sort_key, t[1].starts_at, t[0].id)),
        not_placed=[r for rid, r in registrations.items() if str(rid) not in complete],
        group_mix=dict(mix), unaffiliated=dict(unaffiliated), load=dict(load),
        coverage={"ranked": ranked_people, "not_ranked": len(registrations) - ranked_people},
        unpublished_changes=unpublished + len(_people_of_visits_changed_since_publish(convening)),
    )


# ================================================================ organizer tools
# Setting up hosts, slots and visits, preference coverage, the people table and rosters, for the
# back office. Writes follow the module's rule: one unit of work each, the convening locked first
# (then a site visit), so setup never changes halfway through a run of the assigner or a move.

import csv  # noqa: E402
import io  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from datetime import datetime, time, timedelta  # noqa: E402

from sqlalchemy.exc import IntegrityError  # noqa: E402

from convene.errors import NotFound  # noqa: E402
from convene.models import ACCESSIBILITY_NEEDS, Delegation  # noqa: E402
from convene.services.convenings import local_to_utc  # noqa: E402
from convene.services.exports import BOM, csv_safe  # noqa: E402

HOST_FIELDS = ("name", "address", "description", "accessible", "contact_name", "contact_email", "contact_phone")
SLOT_FIELDS = ("label", "starts_at", "ends_at")
SITE_VISIT_FIELDS = ("capacity", "meeting_point", "departs_at", "transport_notes")
MAX_VISITS_PER_PERSON = 10
MAX_CAPACITY = 100_000  # the column is a 32-bit integer on PostgreSQL; no site takes more
SLOT_MARGIN = timedelta(days=1)  # slots may sit a day either side of the convening (arrival, departure days)
DEPARTURE_LEAD = timedelta(hours=12)

# User-facing messages of the setup tools (candidates for convene.errors.MESSAGES).


def _visit_error(code: str, field: str | None = None, **format_values) -> ConveneError:
    return ConveneError(code, field=field, **format_values)


def _raise_all(problems: list[ConveneError]) -> None:
    """Raise the first problem, carrying all of them so a form can show each beside its field."""
    if problems:
        problems[0].details["problems"] = problems
        raise problems[0]


def _text(value) -> str:
    return str(value or "").strip()


def _people(n: int) -> str:
    return "1 person" if n == 1 else f"{n} people"


def _locked_convening(convening_id: int) -> Convening:
    rows = lock(Convening, convening_id)
    if not rows:
        raise NotFound("convening_not_found")
    return rows[0]


def _visitor_conditions() -> tuple:
    """Who counts as placed: confirmed people with a visiting role (cancelled rows wait for a re-run)."""
    return (Registration.status == Status.CONFIRMED, Registration.role.in_(VISITING_ROLES))


def grid_cell(host_id: int, slot_id: int) -> str:
    """The form field (and error field) of one cell of the visit grid."""
    return f"cap_{host_id}_{slot_id}"


def _held_places(visit_ids: list[int]) -> tuple[int, int]:
    """(working-plan places, published places) that people still coming hold in these visits."""
    if not visit_ids:
        return 0, 0

    def count(column) -> int:
        return db.session.scalar(
            sa.select(sa.func.count(VisitAssignment.id))
            .join(Registration, Registration.id == VisitAssignment.registration_id)
            .where(column.in_(visit_ids), *_visitor_conditions())
        )

    return count(VisitAssignment.site_visit_id), count(VisitAssignment.published_site_visit_id)


def _check_removable(visit_ids: list[int], what: str, *, confirm: bool, advice: str) -> None:
    """Refuse to remove visits of the published plan; ask to confirm removing working-plan places.

    Attendees were emailed the published plan, so dropping it here would change their page without
    a word: the way out is to empty the visit, re-run the assigner and publish (which emails them).
    """
    working, published = _held_places(visit_ids)
    if published:
        raise _published_refusal(published, what, advice)
    if working and not confirm:
        raise ConveneError(
            "visit_in_use",
            f"{_people(working)} {'is' if working == 1 else 'are'} placed in {what} in the working plan "
            "(not published yet). Deleting it takes them out; re-run the assigner to place them elsewhere.",
            places=working,
        )


def _published_refusal(published: int, what: str, advice: str) -> ConveneError:
    return ConveneError(
        "visit_published",
        f"{_people(published)} {'was' if published == 1 else 'were'} sent {what} in the published plan, "
        f"so it cannot be deleted yet. {advice} Then re-run the assigner and publish, so they hear about "
        "their new visits; after that it can be deleted.",
        places=published,
    )


def _visits_deletion(kind: str, name: str, key: int, visits: list[SiteVisit], what: str, advice: str, done: str,
                     *, host_id: int | None = None) -> Deletion:
    """What deleting these visits (a host's, a slot's, or one) does: who leaves the working plan, rankings that go.

    The published plan is never changed here: people emailed a visit make it a refusal, said on the page.
    """
    visit_ids = sorted(v.id for v in visits)
    placed = db.session.execute(
        sa.select(VisitAssignment.id, Registration)
        .join(Registration, Registration.id == VisitAssignment.registration_id)
        .where(VisitAssignment.site_visit_id.in_(visit_ids), *_visitor_conditions())
        .order_by(Registration.sort_key, Registration.id)
    ).all() if visit_ids else []
    _, published = _held_places(visit_ids)
    rankings = db.session.execute(
        sa.select(VisitPreference.id, Registration)
        .join(Registration, Registration.id == VisitPreference.registration_id)
        .where(VisitPreference.host_id == host_id).order_by(Registration.sort_key, Registration.id)
    ).all() if host_id is not None else []
    effects = []
    if visits and kind != "visit":
        effects.append(Effect("visits", f"{plural(len(visits), 'visit')} {'goes' if len(visits) == 1 else 'go'} "
                              "with it", [f"{v.host.name} in {v.slot.label}" for v in visits]))
    if placed:
        one = len(placed) == 1
        effects.append(Effect("placed", f"{plural(len(placed), 'person', 'people')} placed there in the working "
                              f"plan (not published yet) {'loses' if one else 'lose'} that place; re-run the "
                              "assigner to place them elsewhere", [r.full_name for _, r in placed]))
    if rankings:
        one = len(rankings) == 1
        effects.append(Effect("rankings", f"{plural(len(rankings), 'person', 'people')}'s "
                              f"{'ranking of it is' if one else 'rankings of it are'} deleted",
                              [r.full_name for _, r in rankings]))
    return Deletion(kind=kind, name=name, effects=effects,
                    blocked=_published_refusal(published, what, advice) if published else None,
                    token=digest(kind, key, visit_ids, sorted((i, r.id) for i, r in placed), published,
                                 sorted(i for i, _ in rankings)),
                    done=done)


def _host_deletion(host: HostOrganization) -> Deletion:
    visits = db.session.execute(sa.select(SiteVisit).join(VisitSlot, VisitSlot.id == SiteVisit.slot_id)
                                .where(SiteVisit.host_id == host.id).order_by(VisitSlot.starts_at)).scalars().all()
    return _visits_deletion("host", host.name, host.id, visits, host.name, HOST_ADVICE,
                            f"{host.name} is deleted, with its visits.", host_id=host.id)


def _slot_deletion(slot: VisitSlot) -> Deletion:
    visits = db.session.execute(sa.select(SiteVisit).join(HostOrganization, HostOrganization.id == SiteVisit.host_id)
                                .where(SiteVisit.slot_id == slot.id).order_by(HostOrganization.name)).scalars().all()
    return _visits_deletion("slot", slot.label, slot.id, visits, f"visits in {slot.label}", SLOT_ADVICE,
                            f"Slot {slot.label} is deleted, with its visits.")


def _visit_deletion(visit: SiteVisit) -> Deletion:
    what = f"{visit.host.name} in {visit.slot.label}"
    return _visits_deletion("visit", what, visit.id, [visit], what, VISIT_ADVICE, f"The visit to {what} is deleted.")


def host_deletion(host_id: int) -> Deletion:
    """What deleting a host would do now (its visits, who leaves the plan, rankings), for its confirmation page."""
    return _host_deletion(_host(host_id))


def slot_deletion(slot_id: int) -> Deletion:
    """What deleting a slot would do now (its visits, who leaves the plan), for its confirmation page."""
    return _slot_deletion(_slot(slot_id))


def visit_deletion(site_visit_id: int) -> Deletion:
    """What deleting one visit would do now (who leaves the plan), for its confirmation page."""
    return _visit_deletion(_site_visit(site_visit_id))


def _host(host_id: int) -> HostOrganization:
    host = db.session.get(HostOrganization, host_id)
    if host is None:
        raise NotFound("host_not_found")
    return host


def _slot(slot_id: int) -> VisitSlot:
    slot = db.session.get(VisitSlot, slot_id)
    if slot is None:
        raise NotFound("slot_not_found")
    return slot


def _site_visit(site_visit_id: int) -> SiteVisit:
    visit = db.session.get(SiteVisit, site_visit_id)
    if visit is None:
        raise NotFound("visit_not_found")
    return visit


HOST_ADVICE = "Set its capacities to 0 in the visit grid (or move them by hand)."
SLOT_ADVICE = ("Set the capacities of its visits to 0 in the visit grid (lowering the visits per person first if "
               "everyone needs every slot).")
VISIT_ADVICE = "Set its capacity to 0 (or move them by hand)."


def _release_places(visit_ids: list[int]) -> None:
    """Empty these visits in the working plan, keeping each row (and its published visit) in place."""
    if visit_ids:
        db.session.execute(
            sa.update(VisitAssignment).where(VisitAssignment.site_visit_id.in_(visit_ids))
            .values(site_visit_id=None, locked=False)
        )


# ---------------------------------------------------------------- setup: settings


def update_visit_settings(convening_id: int, visits_per_person: int, preferences_open: bool) -> Convening:
    """Set how many visits each person makes and whether attendees may rank the hosts."""
    with unit_of_work():
        convening = _locked_convening(convening_id)
        if (isinstance(visits_per_person, bool) or not isinstance(visits_per_person, int)
                or not 1 <= visits_per_person <= MAX_VISITS_PER_PERSON):
            raise _visit_error("visits_per_person_invalid", "visits_per_person")
        slots = db.session.scalar(sa.select(sa.func.count(VisitSlot.id)).where(VisitSlot.convening_id == convening.id))
        if slots and visits_per_person > slots:
            raise _visit_error("visits_per_person_over_slots", "visits_per_person", slots=slots)
        convening.visits_per_person = visits_per_person
        convening.visit_preferences_open = bool(preferences_open)
    return convening


# ---------------------------------------------------------------- setup: hosts


def save_host(convening_id: int, data: Mapping, host_id: int | None = None) -> HostOrganization:
    """Add or change a host organization; names are unique within a convening, whatever their case."""
    name = _text(data.get("name"))
    if not name:
        raise _visit_error("name_required", "name")
    try:
        with unit_of_work():
            convening = _locked_convening(convening_id)
            same_name = sa.select(HostOrganization.id).where(
                HostOrganization.convening_id == convening.id, sa.func.lower(HostOrganization.name) == name.lower()
            )
            if host_id is not None:
                host = db.session.get(HostOrganization, host_id)
                if host is None or host.convening_id != convening.id:
                    raise NotFound("host_not_found")
                same_name = same_name.where(HostOrganization.id != host.id)
            if db.session.execute(same_name).first():
                raise _visit_error("host_exists", "name")
            if host_id is None:
                host = HostOrganization(convening_id=convening.id)
                db.session.add(host)
            told = (host.name, host.address)
            host.name = name
            host.address = _text(data.get("address"))
            host.description = _text(data.get("description"))
            host.accessible = bool(data.get("accessible"))
            host.contact_name = _text(data.get("contact_name"))
            host.contact_email = _text(data.get("contact_email")).lower()
            host.contact_phone = _text(data.get("contact_phone"))
            if host.id is not None and (host.name, host.address) != told:
                _mark_details_changed(host.visits)
    except IntegrityError:
        raise _visit_error("host_exists", "name") from None
    return host


def delete_host(host_id: int, *, confirm: bool = False, expected: str | None = None) -> Deletion:
    """Delete a host with its visits and the rankings of it; see `_check_removable` for placed people.

    With `expected` (the token of the preview the organizer confirmed), what the preview named is the
    confirmation; a changed set is refused.
    """
    with unit_of_work():
        host = _host(host_id)
        _locked_convening(host.convening_id)
        deletion = _host_deletion(host)
        deletion.check(expected)
        visit_ids = list(db.session.scalars(sa.select(SiteVisit.id).where(SiteVisit.host_id == host.id)))
        _check_removable(visit_ids, host.name, confirm=confirm or expected is not None, advice=HOST_ADVICE)
        _release_places(visit_ids)
        db.session.delete(host)
    return deletion


def step_free_conflicts(convening_id: int) -> list[tuple[Registration, SiteVisit]]:
    """People who need step-free access but are placed (working plan) at a host without it."""
    rows = db.session.execute(
        sa.select(Registration, SiteVisit)
        .join(VisitAssignment, VisitAssignment.registration_id == Registration.id)
        .join(SiteVisit, SiteVisit.id == VisitAssignment.site_visit_id)
        .join(HostOrganization, HostOrganization.id == SiteVisit.host_id)
        .where(SiteVisit.convening_id == convening_id, HostOrganization.accessible.is_(False),
               *_visitor_conditions())
        .options(selectinload(SiteVisit.host), selectinload(SiteVisit.slot))
    ).all()
    return [(r, v) for r, v in rows if r.needs_step_free_access]


# ---------------------------------------------------------------- setup: slots


def save_slot(convening_id: int, data: Mapping, slot_id: int | None = None) -> VisitSlot:
    """Add or change a slot; start and end are wall-clock times (naive) in the convening's zone."""
    with unit_of_work():
        convening = _locked_convening(convening_id)
        problems: list[ConveneError] = []
        label = _text(data.get("label"))
        if not label:
            problems.append(_visit_error("slot_label_required", "label"))
        instants: dict[str, datetime | None] = {}
        for key in ("starts_at", "ends_at"):
            if data.get(key) is None:
                problems.append(_visit_error("time_required", key))
                continue
            try:
                instants[key] = local_to_utc(data[key], convening.tz, key)
            except ConveneError as error:
                problems.append(error)
        starts_at, ends_at = instants.get("starts_at"), instants.get("ends_at")
        if starts_at and ends_at:
            first = datetime.combine(convening.starts_on - SLOT_MARGIN, time(0), tzinfo=convening.tz)
            last = datetime.combine(convening.ends_on + SLOT_MARGIN + timedelta(days=1), time(0), tzinfo=convening.tz)
            if ends_at <= starts_at:
                problems.append(_visit_error("slot_out_of_order", "ends_at"))
            elif starts_at < first or ends_at > last:
                problems.append(_visit_error("slot_outside_convening", "starts_at",
                                             first=f"{convening.starts_on:%d %b}",
                                             last=f"{convening.ends_on:%d %b %Y}"))
            else:
                overlap = db.session.execute(
                    sa.select(VisitSlot.label).where(
                        VisitSlot.convening_id == convening.id, VisitSlot.id != (slot_id or 0),
                        VisitSlot.starts_at < ends_at, VisitSlot.ends_at > starts_at,
                    ).order_by(VisitSlot.starts_at)
                ).scalars().first()
                if overlap:
                    problems.append(_visit_error("slot_overlaps", "starts_at", other=overlap))
        _raise_all(problems)
        if slot_id is None:
            slot = VisitSlot(convening_id=convening.id)
            db.session.add(slot)
        else:
            slot = db.session.get(VisitSlot, slot_id)
            if slot is None or slot.convening_id != convening.id:
                raise NotFound("slot_not_found")
        if slot.id is not None and (slot.label, slot.starts_at, slot.ends_at) != (label, starts_at, ends_at):
            _mark_details_changed(slot.visits)
        slot.label, slot.starts_at, slot.ends_at = label, starts_at, ends_at
    return slot


def delete_slot(slot_id: int, *, confirm: bool = False, expected: str | None = None) -> Deletion:
    """Delete a slot with its visits; see `_check_removable` for placed people (and `delete_host` for `expected`)."""
    with unit_of_work():
        slot = _slot(slot_id)
        _locked_convening(slot.convening_id)
        deletion = _slot_deletion(slot)
        deletion.check(expected)
        visit_ids = list(db.session.scalars(sa.select(SiteVisit.id).where(SiteVisit.slot_id == slot.id)))
        _check_removable(visit_ids, f"visits in {slot.label}", confirm=confirm or expected is not None,
                         advice=SLOT_ADVICE)
        db.session.delete(slot)  # the slot's rows of the plan go with it
    return deletion


# ---------------------------------------------------------------- setup: site visits


@dataclass
class GridResult:
    """What `save_visit_grid` changed, and visits left with more people than places."""

    added: int = 0
    changed: int = 0
    removed: int = 0
    over_capacity: list[tuple[SiteVisit, int]] = field(default_factory=list)


def visit_loads(convening_id: int) -> dict[int, int]:
    """People placed (working plan) in each site visit, counting only those still coming."""
    return dict(db.session.execute(
        sa.select(VisitAssignment.site_visit_id, sa.func.count(VisitAssignment.id))
        .join(Registration, Registration.id == VisitAssignment.registration_id)
        .where(Registration.convening_id == convening_id, VisitAssignment.site_visit_id.is_not(None),
               *_visitor_conditions())
        .group_by(VisitAssignment.site_visit_id)
    ).all())


def _check_capacity(capacity, field: str, problems: list[ConveneError]) -> None:
    if capacity is None:
        problems.append(_visit_error("capacity_required", field))
    elif isinstance(capacity, bool) or not isinstance(capacity, int):
        problems.append(_visit_error("capacity_required", field))
    elif capacity < 0:
        problems.append(_visit_error("visit_capacity_negative", field))
    elif capacity > MAX_CAPACITY:
        problems.append(_visit_error("visit_capacity_too_large", field))


def _over_capacity(convening_id: int, visits: list[SiteVisit]) -> list[tuple[SiteVisit, int]]:
    loads = visit_loads(convening_id)
    return [(v, loads[v.id]) for v in visits if loads.get(v.id, 0) > v.capacity]


def save_visit_grid(
    convening_id: int, capacities: Mapping[tuple[int, int], int | None], *, confirm_removals: bool = False
) -> GridResult:
    """Say which host takes visitors in which slot and how many: (host id, slot id) -> capacity or None.

    None removes the visit (asking for confirmation, or refusing, when people are placed in it).
    Capacities below the people already placed are saved and reported: re-run the assigner then.
    """
    with unit_of_work():
        convening = _locked_convening(convening_id)
        hosts = {h.id: h for h in hosts_of(convening.id)}
        slots = {s.id: s for s in slots_of(convening.id)}
        existing = {(v.host_id, v.slot_id): v for v in visits_of(convening.id)}
        problems: list[ConveneError] = []
        for (host_id, slot_id), capacity in sorted(capacities.items()):
            cell = grid_cell(host_id, slot_id)
            if host_id not in hosts or slot_id not in slots:
                raise _visit_error("bad_grid")
            if capacity is not None:
                _check_capacity(capacity, cell, problems)
            elif (host_id, slot_id) in existing:
                try:
                    _check_removable([existing[(host_id, slot_id)].id],
                                     f"{hosts[host_id].name} in {slots[slot_id].label}",
                                     confirm=confirm_removals, advice="Set its capacity to 0 (or move them by hand).")
                except ConveneError as error:
                    error.field = cell
                    problems.append(error)
        _raise_all(problems)
        result = GridResult()
        for (host_id, slot_id), capacity in sorted(capacities.items()):
            visit = existing.get((host_id, slot_id))
            if capacity is None:
                if visit is not None:
                    _release_places([visit.id])
                    db.session.delete(visit)
                    result.removed += 1
            elif visit is None:
                db.session.add(SiteVisit(convening_id=convening.id, host_id=host_id, slot_id=slot_id,
                                         capacity=capacity))
                result.added += 1
            elif visit.capacity != capacity:
                visit.capacity = capacity
                result.changed += 1
        db.session.flush()
        result.over_capacity = _over_capacity(convening.id, list(visits_of(convening.id)))
    return result


def save_site_visit(site_visit_id: int, data: Mapping) -> SiteVisit:
    """Change a visit's capacity, meeting point, departure (wall-clock time in the convening's zone) and notes."""
    with unit_of_work():
        visit = db.session.get(SiteVisit, site_visit_id)
        if visit is None:
            raise NotFound("visit_not_found")
        convening = _locked_convening(visit.convening_id)
        [visit] = lock(SiteVisit, visit.id)
        problems: list[ConveneError] = []
        capacity = data.get("capacity")
        _check_capacity(capacity, "capacity", problems)
        departs_at = None
        if data.get("departs_at") is not None:
            try:
                departs_at = local_to_utc(data["departs_at"], convening.tz, "departs_at")
            except ConveneError as error:
                problems.append(error)
            else:
                slot = visit.slot
                if not slot.starts_at - DEPARTURE_LEAD <= departs_at < slot.ends_at:
                    problems.append(_visit_error("departure_outside_slot", "departs_at"))
        _raise_all(problems)
        told = (visit.meeting_point, visit.departs_at, visit.transport_notes)
        visit.capacity = capacity
        visit.meeting_point = _text(data.get("meeting_point"))
        visit.departs_at = departs_at
        visit.transport_notes = _text(data.get("transport_notes"))
        if (visit.meeting_point, visit.departs_at, visit.transport_notes) != told:
            _mark_details_changed([visit])
    return visit


def delete_site_visit(site_visit_id: int, *, confirm: bool = False, expected: str | None = None) -> Deletion:
    """Delete one visit; see `_check_removable` for placed people (and `delete_host` for `expected`)."""
    with unit_of_work():
        visit = _site_visit(site_visit_id)
        _locked_convening(visit.convening_id)
        deletion = _visit_deletion(visit)
        deletion.check(expected)
        _check_removable([visit.id], f"{visit.host.name} in {visit.slot.label}",
                         confirm=confirm or expected is not None, advice=VISIT_ADVICE)
        _release_places([visit.id])
        db.session.delete(visit)
    return deletion


# ---------------------------------------------------------------- coverage


@dataclass
class SlotDemand:
    """One slot's places against the people who may need them."""

    slot: VisitSlot
    visits: int
    capacity: int
    accessible_capacity: int
    short: bool = False  # fewer places than visitors while everyone is out in every slot
    short_access: bool = False


@dataclass
class Coverage:
    """Who ranked the hosts, how each host was ranked, and whether the places suffice."""

    visitors: int
    ranked: int
    not_ranked: list[Registration]
    step_free: int
    ranks: int  # columns of `by_host`: 1st, 2nd, ... up to the longest ranking
    by_host: list[tuple[HostOrganization, list[int], int]]  # host, people ranking it 1st, 2nd..., in all
    slots: list[SlotDemand]
    visits_per_person: int
    places_needed: int
    places: int
    everyone_every_slot: bool


def preference_coverage(convening: Convening) -> Coverage:
    """Preference coverage in a handful of queries, whatever the number of people."""
    visitors = visitors_of(convening.id)
    ranked_ids = set(db.session.scalars(
        sa.select(VisitPreference.registration_id).distinct()
        .join(Registration, Registration.id == VisitPreference.registration_id)
        .where(Registration.convening_id == convening.id, *_visitor_conditions())
    ))
    counts: dict[int, Counter] = defaultdict(Counter)
    for host_id, rank, n in db.session.execute(
        sa.select(VisitPreference.host_id, VisitPreference.rank, sa.func.count(VisitPreference.id))
        .join(Registration, Registration.id == VisitPreference.registration_id)
        .where(Registration.convening_id == convening.id, *_visitor_conditions())
        .group_by(VisitPreference.host_id, VisitPreference.rank)
    ):
        counts[host_id][rank] += n
    ranks = max((rank for c in counts.values() for rank in c), default=0)
    hosts = hosts_of(convening.id)
    by_host = [(h, [counts[h.id][r] for r in range(1, ranks + 1)], sum(counts[h.id].values())) for h in hosts]
    by_host.sort(key=lambda t: ([-n for n in t[1]], t[0].name.lower()))
    slots = slots_of(convening.id)
    visits = visits_of(convening.id)
    step_free = sum(1 for r in visitors if r.needs_step_free_access)
    everyone_every_slot = bool(slots) and convening.visits_per_person >= len(slots)
    demand = []
    for slot in slots:
        mine = [v for v in visits if v.slot_id == slot.id]
        capacity = sum(v.capacity for v in mine)
        accessible = sum(v.capacity for v in mine if v.host.accessible)
        demand.append(SlotDemand(
            slot=slot, visits=len(mine), capacity=capacity, accessible_capacity=accessible,
            short=everyone_every_slot and capacity < len(visitors),
            short_access=everyone_every_slot and accessible < step_free,
        ))
    not_ranked = sorted(
        (r for r in visitors if r.id not in ranked_ids),
        key=lambda r: (r.delegation.name.lower() if r.delegation else "\uffff", r.sort_key, r.id),
    )
    return Coverage(
        visitors=len(visitors), ranked=len(visitors) - len(not_ranked), not_ranked=not_ranked, step_free=step_free,
        ranks=ranks, by_host=by_host, slots=demand, visits_per_person=convening.visits_per_person,
        places_needed=len(visitors) * convening.visits_per_person, places=sum(d.capacity for d in demand),
        everyone_every_slot=everyone_every_slot,
    )


# ---------------------------------------------------------------- runs, the people table, publishing


def assignment_runs(convening_id: int, limit: int = 20) -> list[AssignmentRun]:
    """The latest saved runs of the assigner, newest first."""
    return db.session.execute(
        sa.select(AssignmentRun).where(AssignmentRun.convening_id == convening_id)
        .order_by(AssignmentRun.at.desc(), AssignmentRun.id.desc()).limit(limit)
    ).scalars().all()


def registrations_by_id(ids) -> dict[int, Registration]:
    ids = sorted({int(i) for i in ids})
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(Registration).where(Registration.id.in_(ids)).options(selectinload(Registration.delegation))
    ).scalars().all()
    return {r.id: r for r in rows}


def visitors_select(convening_id: int, *, delegation: int | str | None = None, search: str = "") -> sa.Select:
    """Visitors by delegation and name, optionally one delegation ("none": without one) or a name search."""
    query = (
        sa.select(Registration)
        .outerjoin(Delegation, Delegation.id == Registration.delegation_id)
        .where(Registration.convening_id == convening_id, *_visitor_conditions())
        .options(selectinload(Registration.delegation))
        .order_by(Delegation.name.is_(None), Delegation.name, Registration.sort_key, Registration.id)
    )
    if delegation == "none":
        query = query.where(Registration.delegation_id.is_(None))
    elif delegation is not None:
        query = query.where(Registration.delegation_id == delegation)
    # Every word must match; search_text is folded like search_key, so case and accents never matter.
    for word in search_key(search).split()[:6]:
        query = query.where(Registration.search_text.contains(word, autoescape=True))
    return query


def assignments_for(registration_ids) -> dict[int, dict[int, VisitAssignment]]:
    """Working-plan rows of these people: registration id -> slot id -> row, in one query."""
    ids = sorted(set(registration_ids))
    out: dict[int, dict[int, VisitAssignment]] = defaultdict(dict)
    if ids:
        for row in db.session.execute(
            sa.select(VisitAssignment).where(VisitAssignment.registration_id.in_(ids))
        ).scalars():
            out[row.registration_id][row.slot_id] = row
    return dict(out)


def people_to_notify(convening_id: int) -> int:
    """How many people still coming publishing would email now (the same set publishing uses)."""
    return len(_people_to_email(db.session.get(Convening, convening_id)))


# ---------------------------------------------------------------- rosters


ROSTER_HEADERS = (
    "Slot", "Starts", "Host", "Address", "Meeting point", "Departure", "Given name", "Family name", "Pronouns",
    "Organization", "Delegation", "Accessibility needs", "Accessibility notes", "Phone", "Email",
)


def visit_roster(site_visit_id: int) -> list[Registration]:
    """The people still coming who are placed in a visit (working plan), by family name."""
    return db.session.execute(
        sa.select(Registration).join(VisitAssignment, VisitAssignment.registration_id == Registration.id)
        .where(VisitAssignment.site_visit_id == site_visit_id, *_visitor_conditions())
        .options(selectinload(Registration.delegation))
        .order_by(Registration.sort_key, Registration.id)
    ).scalars().all()


def access_labels(registration: Registration) -> str:
    return "; ".join(ACCESSIBILITY_NEEDS.get(code, code) for code in registration.accessibility_needs or [])


def rosters_csv(convening: Convening, site_visit_id: int | None = None) -> str:
    """One row per person per visit (working plan), as CSV text with a BOM; one visit or all of them."""
    visits = {v.id: v for v in visits_of(convening.id)}
    query = (
        sa.select(VisitAssignment.site_visit_id, Registration)
        .join(Registration, Registration.id == VisitAssignment.registration_id)
        .where(VisitAssignment.site_visit_id.in_(visits) if site_visit_id is None
               else VisitAssignment.site_visit_id == site_visit_id, *_visitor_conditions())
        .options(selectinload(Registration.delegation))
    )
    rows = [(visits[visit_id], r) for visit_id, r in db.session.execute(query).all() if visit_id in visits]
    rows.sort(key=lambda t: (t[0].slot.starts_at, t[0].host.name.lower(), t[1].sort_key, t[1].id))
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer)
    writer.writerow(ROSTER_HEADERS)
    local = "%Y-%m-%d %H:%M"
    for visit, r in rows:
        writer.writerow([csv_safe(value) for value in (
            visit.slot.label, convening.local(visit.slot.starts_at).strftime(local), visit.host.name,
            visit.host.address, visit.meeting_point,
            convening.local(visit.departs_at).strftime(local) if visit.departs_at else "",
            r.given_name, r.family_name, r.pronouns, r.organization, r.delegation.name if r.delegation else "",
            access_labels(r), r.accessibility_notes, r.phone, r.email,
        )])
    return buffer.getvalue()
