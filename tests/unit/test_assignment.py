"""Site-visit assigner: hard rules, optimality against independent solvers, and the
organizer-facing behaviours (infeasibility reasons, locks, churn, mix, determinism)."""

from __future__ import annotations

import ast
import dataclasses
import itertools
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

from convene.assignment import Person, Problem, Solution, Visit, evaluate, solve
from convene.assignment import solver as solver_module

# No example database: the run must not write into the checkout.
PROPERTY = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- independent reference


def rank_cost(problem: Problem, person: Person, site: str) -> int:
    """Cost of one visit, computed from the spec, not from the package."""
    known = {v.site for v in problem.visits}
    ranked = list(dict.fromkeys(s for s in person.ranking if s in known))
    if site not in ranked:
        return problem.unranked_cost
    rank = ranked.index(site) + 1
    return problem.rank_costs[min(rank, len(problem.rank_costs)) - 1]


def reference_cost(problem: Problem, plan: dict[str, dict[int, str]]) -> int:
    by_id = {p.id: p for p in problem.people}
    total = 0
    groups: Counter[tuple[str, int, str]] = Counter()
    for pid, visits in plan.items():
        person = by_id[pid]
        total += sum(rank_cost(problem, person, site) for site in visits.values())
        for slot, site in problem.previous.get(pid, {}).items():
            total += problem.churn_cost * (visits.get(slot) != site)
        if person.group is not None:
            groups.update((site, slot, person.group) for slot, site in visits.items())
    if problem.mix_limit is not None:
        total += problem.mix_penalty * sum(max(0, n - problem.mix_limit) for n in groups.values())
    return total


def options(problem: Problem, person: Person) -> list[tuple[tuple[int, str], ...]]:
    """Every way one person could visit K sites in K slots, ignoring everyone else."""
    visits = {(v.site, v.slot): v for v in problem.visits}
    sites = sorted({v.site for v in problem.visits})
    slots = sorted({v.slot for v in problem.visits})
    locks = {slot: site for (pid, slot), site in problem.locked.items() if pid == person.id}
    k = problem.visits_per_person
    out = []
    for chosen_slots in itertools.combinations(slots, k):
        for chosen_sites in itertools.permutations(sites, k):
            option = tuple(zip(chosen_slots, chosen_sites))
            ok = all(
                (site, slot) in visits
                and visits[(site, slot)].capacity > 0
                and (visits[(site, slot)].accessible or not person.needs_access)
                for slot, site in option
            )
            if ok and all(dict(option).get(slot) == site for slot, site in locks.items()):
                out.append(option)
    return out


def brute_force(problem: Problem) -> int | None:
    """Minimum cost over all complete assignments, None when none exists."""
    room = {(v.site, v.slot): v.capacity for v in problem.visits}
    choices = [options(problem, p) for p in problem.people]
    best: list[int | None] = [None]
    plan: dict[str, dict[int, str]] = {}

    def search(i: int) -> None:
        if i == len(problem.people):
            cost = reference_cost(problem, plan)
            if best[0] is None or cost < best[0]:
                best[0] = cost
            return
        person = problem.people[i]
        for option in choices[i]:
            if all(room[(site, slot)] > 0 for slot, site in option):
                for slot, site in option:
                    room[(site, slot)] -= 1
                plan[person.id] = dict(option)
                search(i + 1)
                del plan[person.id]
                for slot, site in option:
                    room[(site, slot)] += 1

    search(0)
    return best[0]


def reference_mip(problem: Problem) -> int | None:
    """Independent formulation: y[p, s] site choice linked to x[p, s, t] slot choice."""
    if not problem.people:
        return 0
    people = list(problem.people)
    sites = sorted({v.site for v in problem.visits})
    slots = sorted({v.slot for v in problem.visits})
    visits = {(v.site, v.slot): v for v in problem.visits}
    groups = sorted({p.group for p in people if p.group is not None})
    y = {(p.id, s): i for i, (p, s) in enumerate(itertools.product(people, sites))}
    x = {(p.id, s, t): len(y) + i for i, (p, s, t) in enumerate(itertools.product(people, sites, slots))}
    e = {(g, s, t): len(y) + len(x) + i for i, (g, s, t) in enumerate(itertools.product(groups, sites, slots))}
    n = len(y) + len(x) + len(e)
    c = np.zeros(n)
    lb, ub = np.zeros(n), np.ones(n)
    constant = 0
    for p in people:
        for s in sites:
            c[y[p.id, s]] = rank_cost(problem, p, s)
            for t in slots:
                v = visits.get((s, t))
                if v is None or v.capacity == 0 or (p.needs_access and not v.accessible):
                    ub[x[p.id, s, t]] = 0
        for t, s in problem.previous.get(p.id, {}).items():
            constant += problem.churn_cost
            if (p.id, s, t) in x:
                c[x[p.id, s, t]] -= problem.churn_cost
    for (pid, t), s in problem.locked.items():
        if ub[x[pid, s, t]] == 0:
            return None  # locked onto a closed or inaccessible visit
        lb[x[pid, s, t]] = 1
    for j in e.values():
        c[j] = problem.mix_penalty
        ub[j] = np.inf if problem.mix_limit is not None else 0
    rows, lo, hi = [], [], []

    def row(coefs: dict[int, float], low: float, high: float) -> None:
        r = np.zeros(n)
        for j, a in coefs.items():
            r[j] += a
        rows.append(r)
        lo.append(low)
        hi.append(high)

    k = problem.visits_per_person
    for p in people:
        row({y[p.id, s]: 1 for s in sites}, k, k)
        for s in sites:
            row({**{x[p.id, s, t]: 1 for t in slots}, y[p.id, s]: -1}, 0, 0)
        for t in slots:
            row({x[p.id, s, t]: 1 for s in sites}, 0, 1)
    for (s, t), v in visits.items():
        row({x[p.id, s, t]: 1 for p in people}, 0, v.capacity)
    if problem.mix_limit is not None:
        for (g, s, t), j in e.items():
            members = {x[p.id, s, t]: 1 for p in people if p.group == g}
            row({**members, j: -1}, -np.inf, problem.mix_limit)
    res = milp(c, integrality=np.r_[np.ones(len(y) + len(x)), np.zeros(len(e))], bounds=Bounds(lb, ub),
               constraints=LinearConstraint(np.array(rows), lo, hi), options={"mip_rel_gap": 0})
    if res.status == 2:
        return None
    assert res.status == 0, res.message
    return round(res.fun) + constant


def assert_hard_rules(problem: Problem, solution: Solution) -> None:
    """Every rule the spec calls hard, checked from the plan alone."""
    visits = {(v.site, v.slot): v for v in problem.visits}
    k = problem.visits_per_person
    ids = [p.id for p in problem.people]
    assert set(solution.plan).isdisjoint(solution.unassigned)
    assert set(solution.plan) | set(solution.unassigned) == set(ids)
    by_id = {p.id: p for p in problem.people}
    load: Counter[tuple[str, int]] = Counter()
    for pid, plan in solution.plan.items():
        assert len(plan) == k, f"{pid} has {len(plan)} visits"
        assert len(set(plan.values())) == k, f"{pid} visits a site twice"
        for slot, site in plan.items():
            assert (site, slot) in visits, f"{pid} sent to missing visit {site} slot {slot}"
            assert visits[(site, slot)].accessible or not by_id[pid].needs_access
            load[(site, slot)] += 1
    for key, n in load.items():
        assert n <= visits[key].capacity, f"{key} over capacity"
    for (pid, slot), site in problem.locked.items():
        if pid in solution.plan:
            assert solution.plan[pid].get(slot) == site, f"lock {pid} {slot} broken"
    for reason in solution.unassigned.values():
        assert isinstance(reason, str) and reason
    assert solution.cost == reference_cost(problem, solution.plan)
    assert solution.lower_bound <= solution.cost
    assert solution.optimal == (solution.status == "optimal")
    assert solution.status in {"optimal", "feasible"}
    assert solution.method in {"flow", "mip"}


def restricted(problem: Problem, ids: Iterable[str]) -> Problem:
    """The same problem with only the given people (and their locks and history)."""
    keep = set(ids)
    return dataclasses.replace(
        problem,
        people=[p for p in problem.people if p.id in keep],
        locked={key: s for key, s in problem.locked.items() if key[0] in keep},
        previous={pid: v for pid, v in problem.previous.items() if pid in keep},
    )


# ---------------------------------------------------------------- random instances


@st.composite
def problems(draw: st.DrawFn, max_people: int = 4, max_sites: int = 3, max_slots: int = 3,
             max_k: int = 2, max_capacity: int = 3) -> Problem:
    n_sites = draw(st.integers(1, max_sites))
    n_slots = draw(st.integers(1, max_slots))
    k = draw(st.integers(1, min(max_k, n_slots)))
    sites = [f"s{i}" for i in range(n_sites)]
    equal = draw(st.booleans())
    visits = []
    for site in sites:
        cap = draw(st.integers(0, max_capacity))
        accessible = draw(st.booleans())
        for slot in range(1, n_slots + 1):
            if not equal:
                if not draw(st.integers(0, 5)):
                    continue
                cap = draw(st.integers(0, max_capacity))
                accessible = draw(st.booleans())
            visits.append(Visit(site, slot, cap, accessible))
    if not visits:
        visits.append(Visit(sites[0], 1, 1))
    n_people = draw(st.integers(1, max_people))
    people = [
        Person(
            id=f"p{i}",
            ranking=draw(st.lists(st.sampled_from(sites + ["ghost"]), max_size=4)),
            group=draw(st.sampled_from(["a", "b", None])),
            needs_access=draw(st.integers(0, 4)) == 0,
        )
        for i in range(n_people)
    ]
    locked = {}
    if draw(st.integers(0, 3)) == 0:
        v = draw(st.sampled_from(visits))
        locked[(draw(st.sampled_from(people)).id, v.slot)] = v.site
    previous = {}
    if draw(st.booleans()):
        for p in people[: draw(st.integers(0, n_people))]:
            v = draw(st.sampled_from(visits))
            previous[p.id] = {v.slot: v.site}
    return Problem(
        people=people,
        visits=visits,
        visits_per_person=k,
        rank_costs=draw(st.sampled_from([(0, 1, 3, 7, 15, 31), (0, 2), (1, 1, 4)])),
        unranked_cost=draw(st.integers(0, 20)),
        locked=locked,
        previous=previous,
        churn_cost=draw(st.integers(0, 5)),
        mix_limit=draw(st.one_of(st.none(), st.integers(1, 2))),
        mix_penalty=draw(st.integers(0, 10)),
    )


def small_enough_for_brute_force(problem: Problem) -> Problem:
    """Drop trailing people until the search space is a few thousand leaves."""
    people = list(problem.people)
    while True:
        trial = restricted(problem, (p.id for p in people))
        size = int(np.prod([max(1, len(options(trial, p))) for p in people], dtype=float))
        if size <= 3000 or len(people) == 1:
            return trial
        people.pop()


# ---------------------------------------------------------------- properties


@PROPERTY
@given(problems(max_people=6, max_sites=4, max_slots=4, max_k=3))
def test_every_person_gets_k_distinct_sites_one_per_slot(problem: Problem) -> None:
    assert_hard_rules(problem, solve(problem))


@PROPERTY
@given(problems())
def test_cost_equals_brute_force_optimum_on_tiny_instances(problem: Problem) -> None:
    problem = small_enough_for_brute_force(problem)
    solution = solve(problem)
    assert_hard_rules(problem, solution)
    best = brute_force(problem)
    if best is not None:
        assert not solution.unassigned
        assert solution.cost == best
        assert solution.optimal and solution.lower_bound == best
    else:
        assert solution.unassigned
        # Everyone else is placed optimally.
        assert solution.cost == brute_force(restricted(problem, solution.plan))


@PROPERTY
@given(problems(max_people=9, max_sites=5, max_slots=3, max_k=3, max_capacity=4))
def test_cost_equals_independent_mip_on_small_instances(problem: Problem) -> None:
    solution = solve(problem)
    assert_hard_rules(problem, solution)
    best = reference_mip(problem)
    if best is not None:
        assert not solution.unassigned
        assert solution.optimal
        assert solution.cost == best
    else:
        assert solution.unassigned
        assert solution.cost == reference_mip(restricted(problem, solution.plan))


@settings(max_examples=50, deadline=None, database=None)
@given(problems(max_people=4, max_sites=3, max_slots=2, max_k=2, max_capacity=2))
def test_the_fewest_people_are_left_out(problem: Problem) -> None:
    problem = small_enough_for_brute_force(problem)
    solution = solve(problem)
    people = list(problem.people)
    most = max(
        (size for size in range(len(people), -1, -1)
         for group in itertools.combinations(people, size)
         if brute_force(restricted(problem, (p.id for p in group))) is not None),
        default=0,
    )
    assert len(solution.plan) == most


# ---------------------------------------------------------------- fixtures by hand


def venue(capacity: int | list[int] = 2, sites: str = "abcd", slots: int = 2,
          inaccessible: str = "") -> list[Visit]:
    caps = capacity if isinstance(capacity, list) else [capacity] * slots
    return [Visit(s, t + 1, caps[t], accessible=s not in inaccessible) for s in sites for t in range(slots)]


def test_equal_capacities_go_through_the_flow_path_and_are_optimal() -> None:
    people = [Person(f"p{i}", ranking=["a", "b", "c"][i % 3:] + ["d"]) for i in range(8)]
    solution = solve(Problem(people=people, visits=venue(2), visits_per_person=2))
    assert solution.method == "flow"
    assert solution.optimal and solution.cost == solution.lower_bound


def test_unequal_capacities_go_through_the_mip_path() -> None:
    people = [Person(f"p{i}", ranking=["a", "b"]) for i in range(6)]
    problem = Problem(people=people, visits=venue([3, 2]), visits_per_person=2)
    solution = solve(problem)
    assert solution.method == "mip"
    assert solution.optimal
    assert solution.cost == reference_mip(problem)


def test_more_slots_than_visits_uses_k_of_them() -> None:
    people = [Person(f"p{i}", ranking=["a"]) for i in range(6)]
    problem = Problem(people=people, visits=venue(2, sites="ab", slots=3), visits_per_person=2)
    solution = solve(problem)
    assert_hard_rules(problem, solution)
    assert solution.rank_profile[0] == 6  # everyone sees "a", each in some slot
    assert solution.optimal


def test_locked_visits_are_kept() -> None:
    people = [Person(f"p{i}", ranking=["a", "b"]) for i in range(4)]
    locked = {("p3", 1): "d", ("p0", 2): "c"}
    problem = Problem(people=people, visits=venue(2), visits_per_person=2, locked=locked)
    solution = solve(problem)
    assert solution.plan["p3"][1] == "d" and solution.plan["p0"][2] == "c"
    assert solution.optimal and solution.cost == brute_force(problem)


def test_a_lock_beyond_capacity_reports_the_later_registration() -> None:
    people = [Person("early", ["a"]), Person("late", ["a"]), Person("other", ["a"])]
    locked = {("early", 1): "a", ("late", 1): "a"}
    solution = solve(Problem(people=people, visits=venue(1), visits_per_person=2, locked=locked))
    assert solution.unassigned == {"late": "locked visit a (slot 1) is full"}
    assert solution.plan["early"][1] == "a"


def test_needing_access_with_too_few_accessible_sites_is_reported() -> None:
    people = [Person("walker", ["a", "b"]), Person("wheels", ["a", "b"], needs_access=True)]
    problem = Problem(people=people, visits=venue(2, inaccessible="bcd"), visits_per_person=2)
    solution = solve(problem)
    assert solution.unassigned == {"wheels": "needs step-free access but only 1 accessible site"}
    assert solution.plan["walker"] == {1: "a", 2: "b"} or solution.plan["walker"] == {1: "b", 2: "a"}


def test_never_an_inaccessible_site_for_someone_who_needs_access() -> None:
    people = [Person(f"p{i}", ["b", "c"], needs_access=i % 2 == 0) for i in range(6)]
    problem = Problem(people=people, visits=venue(3, inaccessible="bc"), visits_per_person=2)
    solution = solve(problem)
    assert_hard_rules(problem, solution)
    assert all(set(solution.plan[f"p{i}"].values()) == {"a", "d"} for i in (0, 2, 4))


def test_too_few_slots_reports_everyone() -> None:
    people = [Person("p0"), Person("p1")]
    solution = solve(Problem(people=people, visits=venue(2, slots=1), visits_per_person=2))
    assert solution.plan == {}
    assert solution.unassigned == {p: "only 1 slot for 2 visits per person" for p in ("p0", "p1")}


def test_when_room_runs_out_the_latest_registrations_wait_and_the_rest_are_optimal() -> None:
    people = [Person(f"p{i}", ranking=["a", "b", "c"]) for i in range(7)]
    problem = Problem(people=people, visits=venue(2, sites="abc"), visits_per_person=2)  # room for 6
    solution = solve(problem)
    assert list(solution.unassigned) == ["p6"]
    assert "no room" in solution.unassigned["p6"]
    assert solution.cost == reference_mip(restricted(problem, solution.plan))


def test_unequal_slots_that_cannot_fit_everyone_leave_out_the_fewest() -> None:
    # Slot 2 has room for three people, slot 1 for twelve, and everyone needs both.
    visits = [Visit(s, 1, 4) for s in "abc"] + [Visit("a", 2, 3)]
    people = [Person(f"p{i}", ranking=["a"]) for i in range(5)]
    problem = Problem(people=people, visits=visits, visits_per_person=2)
    solution = solve(problem)
    assert_hard_rules(problem, solution)
    assert list(solution.unassigned) == ["p3", "p4"]
    assert solution.method == "mip"


def test_resolving_with_the_previous_plan_after_a_small_change_moves_few_people() -> None:
    rng = np.random.default_rng(7)
    sites = [f"s{i}" for i in range(8)]
    people = [Person(f"p{i:02d}", ranking=list(rng.permutation(sites)[:4]), group=f"g{i % 5}")
              for i in range(40)]
    visits = [Visit(s, t, 6) for s in sites for t in (1, 2, 3)]
    first = solve(Problem(people=people, visits=visits, visits_per_person=3))
    # One newcomer and one changed mind.
    people2 = people[:-1] + [Person("p39", ranking=list(reversed(people[-1].ranking)), group="g4"),
                             Person("new", ranking=["s0", "s1", "s2"])]
    without = solve(Problem(people=people2, visits=visits, visits_per_person=3, churn_cost=0,
                            previous=first.plan))
    with_churn = solve(Problem(people=people2, visits=visits, visits_per_person=3, churn_cost=4,
                               previous=first.plan))

    def moved(solution: Solution) -> int:
        return sum(solution.plan[p][t] != s for p, v in first.plan.items() for t, s in v.items())

    assert with_churn.optimal
    assert moved(with_churn) <= 6
    assert moved(with_churn) < moved(without)


def test_mix_limit_reduces_the_largest_same_group_visit() -> None:
    # One delegation of twelve who all love the same two sites.
    people = [Person(f"d{i}", ranking=["a", "b", "c", "d"], group="big") for i in range(12)]
    people += [Person(f"o{i}", ranking=["c", "d", "a", "b"], group=f"solo{i}") for i in range(12)]
    visits = venue(6, slots=2)
    free = solve(Problem(people=people, visits=visits, visits_per_person=2))
    # Mixing costs the big delegation and the others 3 + 7 per swap; at 10 per
    # person over the limit only some swaps pay, at 50 all of them do.
    mild = solve(Problem(people=people, visits=visits, visits_per_person=2, mix_limit=3, mix_penalty=10))
    strict = solve(Problem(people=people, visits=visits, visits_per_person=2, mix_limit=3, mix_penalty=50))
    assert free.largest_group_count == 6
    assert mild.optimal and mild.cost < free.cost + 10 * 12  # cheaper than ignoring the limit
    assert strict.optimal and strict.largest_group_count == 3
    assert strict.evaluation.mix_cost == 0


def test_the_same_problem_gives_the_same_plan() -> None:
    rng = np.random.default_rng(3)
    people = [Person(f"p{i}", ranking=list(rng.permutation(list("abcdef"))[:3]), group=f"g{i % 4}")
              for i in range(30)]
    for visits, mix in ((venue(6, sites="abcdef"), None), (venue([7, 5, 6], sites="abcdef", slots=3), 2)):
        problem = Problem(people=people, visits=visits, visits_per_person=2, mix_limit=mix)
        assert solve(problem).plan == solve(problem).plan


def test_unknown_ranking_entries_are_ignored() -> None:
    person = Person("p", ranking=["closed", "b", "b", "a"])
    solution = solve(Problem(people=[person], visits=venue(1), visits_per_person=2))
    assert set(solution.plan["p"].values()) == {"a", "b"}
    assert solution.cost == 0 + 1  # b is rank 1, a is rank 2
    assert solution.rank_profile[:2] == (1, 1)


def test_ranks_beyond_rank_costs_cost_the_last_rank_cost() -> None:
    person = Person("p", ranking=["a", "b", "c", "d"])
    visits = [Visit(s, t, 1) for s in "cd" for t in (1, 2)]
    problem = Problem(people=[person], visits=visits, visits_per_person=2, rank_costs=(0, 5))
    # Only c and d exist, so they are ranks 1 and 2 after dropping unknown sites.
    assert solve(problem).cost == 5
    problem = Problem(people=[person], visits=venue(1), visits_per_person=2, rank_costs=(0, 5),
                      locked={("p", 1): "c", ("p", 2): "d"})
    assert solve(problem).cost == 10


def test_solution_exposes_what_organizers_need() -> None:
    people = [Person(f"p{i}", ranking=["a", "b"], group="x" if i < 3 else "y") for i in range(5)]
    solution = solve(Problem(people=people, visits=venue(3), visits_per_person=2))
    assert solution.solve_seconds >= 0
    assert sum(solution.rank_profile) == 10
    assert sum(solution.person_costs.values()) == solution.cost
    assert sum(c for mix in solution.group_mix.values() for c in mix.values()) == 10
    assert solution.largest_group_count == max(max(m.values()) for m in solution.group_mix.values())
    assert evaluate(Problem(people=people, visits=venue(3)), solution.plan).cost == solution.cost


def conference(n_people: int, seed: int, equal: bool, k: int = 3) -> Problem:
    """A 20-site, 3-slot venue with popular sites, shared delegation tastes and ~6% spare room."""
    rng = np.random.default_rng(seed)
    sites = [f"site{i:02d}" for i in range(20)]
    popularity = rng.pareto(1.5, 20) + 0.2
    people = []
    for i in range(n_people):
        taste = popularity * (1 + (i // 8) % 5) ** rng.normal(0, 1, 20)  # delegations of 8
        order = np.argsort(-(np.log(taste) + rng.gumbel(size=20)))
        people.append(Person(f"p{i:04d}", [sites[j] for j in order[:6]], group=f"d{i // 8}",
                             needs_access=rng.random() < 0.05))
    share = rng.uniform(0.5, 1.5, (20, 1)) * (1 if equal else rng.uniform(0.6, 1.4, (20, 3)))
    caps = np.ceil(n_people * k / 3 * 1.06 * share / share.sum(axis=0)).astype(int) * np.ones((20, 3), int)
    visits = [Visit(site, t + 1, int(caps[s, t]), accessible=s % 4 != 3) for s, site in enumerate(sites)
              for t in range(3)]
    return Problem(people=people, visits=visits, visits_per_person=k)


@pytest.mark.parametrize(("equal", "method"), [(True, "flow"), (False, "mip")])
def test_a_400_person_conference_is_solved_to_proven_optimality(equal: bool, method: str) -> None:
    problem = conference(400, seed=11, equal=equal)
    solution = solve(problem)
    assert_hard_rules(problem, solution)
    assert not solution.unassigned
    assert solution.optimal and solution.method == method
    assert solution.solve_seconds < 10  # about 0.1 s; generous for a loaded machine


def test_large_instances_refit_only_unsettled_people_and_report_the_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend the instance is large so the neighbourhood re-fit and the no-full-model rule apply.
    monkeypatch.setattr(solver_module, "FIT_MAX_VARS", 0)
    monkeypatch.setattr(solver_module, "FULL_MODEL_MAX_VARS", 0)
    first_problem = conference(200, seed=12, equal=True)
    first = solve(first_problem)
    people = list(first_problem.people)
    people[3] = Person(people[3].id, list(reversed(people[3].ranking)), people[3].group)
    people.append(Person("late", people[0].ranking, "d0"))
    problem = Problem(people=people, visits=first_problem.visits, visits_per_person=3,
                      previous=first.plan, mix_limit=4)
    solution = solve(problem)
    assert_hard_rules(problem, solution)
    assert solution.status in {"optimal", "feasible"}
    moved = sum(solution.plan[p][t] != s for p, v in first.plan.items() for t, s in v.items())
    assert moved <= 12


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"people": [Person("p"), Person("p")]}, "duplicate person ids: 'p'"),
        ({"visits": [Visit("a", 1, 1), Visit("a", 1, 2)]}, r"duplicate visits \(site, slot\): \[\('a', 1\)\]"),
        ({"visits": [Visit("a", 1, -1)]}, "capacity of visit 'a' slot 1 must be non-negative"),
        ({"locked": {("p", 1): "zzz"}}, "names no visit in slot 1"),
        ({"locked": {("p", 9): "a"}}, "names unknown slot 9"),
        ({"locked": {("ghost", 1): "a"}}, "lock for unknown person 'ghost'"),
        ({"visits_per_person": 0}, "visits_per_person must be >= 1"),
        ({"rank_costs": ()}, "rank_costs must not be empty"),
        ({"unranked_cost": 1.5}, "unranked_cost must be an integer"),
        ({"churn_cost": -1}, "churn_cost must be non-negative"),
        ({"mix_limit": 0}, "mix_limit must be >= 1"),
        ({"time_limit": 0}, "time_limit must be positive"),
    ],
)
def test_invalid_input_raises_a_clear_value_error(kwargs: dict, message: str) -> None:
    base = {"people": [Person("p")], "visits": [Visit("a", 1, 1)], "visits_per_person": 1}
    with pytest.raises(ValueError, match=message):
        Problem(**{**base, **kwargs})


def test_the_package_imports_neither_flask_nor_sqlalchemy() -> None:
    package = Path(__file__).resolve().parents[2] / "convene" / "assignment"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] in {"flask", "sqlalchemy", "flask_sqlalchemy"} for n in names), path
