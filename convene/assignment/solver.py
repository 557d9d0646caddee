"""The pipeline: screen, flow relaxation, slot colouring, then MIPs only when needed."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from .colouring import assign_slots
from .flow import place_sites
from .instance import NO_SITE, Instance, screen
from .mip import fewest_dropped, solve_slots
from .model import Plan, Problem, Solution, evaluate

# Above this many x variables the full model keeps, per person, only ranked,
# previous and flow-chosen sites; its HiGHS bound then no longer counts.
FULL_MODEL_MAX_VARS = 200_000
# Share of the remaining MIP budget for fitting the flow's site sets into slots.
FIT_SHARE = 0.4
TIME_LIMIT_REASON = "no plan found within the time limit"


@dataclass
class _Outcome:
    plan: np.ndarray | None
    lower_bound: int
    status: str
    method: str
    dropped: dict[int, str] = dataclasses.field(default_factory=dict)


def solve(problem: Problem) -> Solution:
    """Assign every person K visits at minimum total cost; see the package docstring."""
    start = time.perf_counter()
    deadline = start + problem.time_limit
    inst = Instance.build(problem)
    unassigned = screen(inst)
    active = np.array([p for p in range(inst.n_people) if p not in unassigned], dtype=np.int64)
    while True:
        flow = place_sites(inst, active)
        unassigned.update(flow.dropped)
        outcome = _place(inst, flow.active, flow.chosen, flow.lower_bound, deadline)
        if not outcome.dropped:
            break
        unassigned.update(outcome.dropped)
        active = flow.active[~np.isin(flow.active, list(outcome.dropped))]

    people = problem.people
    plan: Plan = {}
    if outcome.plan is not None:
        for p in flow.active.tolist():
            row = outcome.plan[p]
            plan[people[p].id] = {
                inst.slots[t]: inst.sites[s] for t, s in enumerate(row.tolist()) if s != NO_SITE
            }
    else:
        unassigned.update({int(p): TIME_LIMIT_REASON for p in flow.active})
    evaluation = evaluate(problem, plan)
    return Solution(
        plan=plan,
        cost=evaluation.cost,
        lower_bound=outcome.lower_bound if plan else 0,
        status=outcome.status,
        method=outcome.method,
        solve_seconds=time.perf_counter() - start,
        unassigned={people[p].id: reason for p, reason in sorted(unassigned.items())},
        evaluation=evaluation,
    )


def _place(inst: Instance, active: np.ndarray, chosen: np.ndarray, lower_bound: int,
           deadline: float) -> _Outcome:
    """Best plan for `active` given the flow's site sets and bound."""
    if len(active) == 0:
        return _Outcome(np.full((inst.n_people, len(inst.slots)), NO_SITE), 0, "optimal", "flow")
    best: tuple[int, np.ndarray] | None = None

    def offer(plan: np.ndarray | None) -> bool:
        """Keep the cheaper plan; True once it meets the bound."""
        nonlocal best
        if plan is not None:
            cost = plan_cost(inst, plan, active)
            if best is None or cost < best[0]:
                best = (cost, plan)
        return best is not None and best[0] <= lower_bound

    no_locks = not inst.has_locks[active].any()
    if no_locks and inst.slot_uniform(active):
        if offer(assign_slots(inst, active, chosen)):
            return _Outcome(best[1], lower_bound, "optimal", "flow")

    remaining = deadline - time.perf_counter()
    fit = solve_slots(inst, active, remaining * FIT_SHARE, choices=chosen, exact_sites=True)
    if offer(fit.plan):
        return _Outcome(best[1], lower_bound, "optimal", "mip")

    restricted = _full_model_size(inst, active) > FULL_MODEL_MAX_VARS
    choices = _likely_sites(inst, chosen) if restricted else None
    full = solve_slots(inst, active, deadline - time.perf_counter(), choices=choices)
    if restricted and full.plan is None and best is None:
        restricted = False
        full = solve_slots(inst, active, deadline - time.perf_counter())
    if full.status == "infeasible" and not restricted:
        dropped = fewest_dropped(inst, active, max(deadline - time.perf_counter(), 1.0))
        if dropped:
            reasons = {p: _slot_reason(inst, p) for p in dropped}
            return _Outcome(None, 0, "optimal", "mip", dropped=reasons)
    offer(full.plan)
    if not restricted and full.lower_bound is not None:
        lower_bound = max(lower_bound, full.lower_bound)
    if best is None and no_locks:
        offer(_equalised_fallback(inst, active))
    if best is None:
        return _Outcome(None, lower_bound, "time_limit", "mip")
    status = "optimal" if best[0] <= lower_bound else "time_limit"
    return _Outcome(best[1], lower_bound, status, "mip")


def plan_cost(inst: Instance, plan: np.ndarray, active: np.ndarray) -> int:
    """Objective of an index plan over the active people."""
    problem = inst.problem
    visits = plan[active]
    on = visits != NO_SITE
    rows = np.broadcast_to(active[:, None], visits.shape)
    total = int(inst.cost[rows[on], visits[on]].sum())
    prev = inst.prev[active]
    changed = int(((prev != NO_SITE) & (visits != prev)).sum() + inst.prev_lost[active].sum())
    total += problem.churn_cost * changed
    if problem.mix_limit is not None:
        group = np.broadcast_to(inst.group[active][:, None], visits.shape)
        slot = np.broadcast_to(np.arange(visits.shape[1])[None, :], visits.shape)
        grouped = on & (group >= 0)
        keys = (group[grouped] * len(inst.sites) + visits[grouped]) * visits.shape[1] + slot[grouped]
        _, counts = np.unique(keys, return_counts=True)
        total += problem.mix_penalty * int(np.maximum(0, counts - problem.mix_limit).sum())
    return total


def _full_model_size(inst: Instance, active: np.ndarray) -> int:
    needs = int(inst.needs[active].sum())
    return needs * int(inst.usable(True).sum()) + (len(active) - needs) * int(inst.usable(False).sum())


def _likely_sites(inst: Instance, chosen: np.ndarray) -> np.ndarray:
    """Ranked, previous and flow-chosen sites: where a near-optimal plan lives."""
    likely = chosen | inst.ranked
    rows, slots = np.nonzero(inst.prev >= 0)
    likely[rows, inst.prev[rows, slots]] = True
    return likely


def _equalised_fallback(inst: Instance, active: np.ndarray) -> np.ndarray | None:
    """A feasible plan from capacities cut to their smallest slot, if everyone still fits."""
    open_everywhere = inst.open.all(axis=1, keepdims=True)
    cap = np.where(open_everywhere, inst.cap.min(axis=1, keepdims=True), 0)
    acc = (inst.acc | ~inst.open).all(axis=1, keepdims=True)
    shape = inst.cap.shape
    reduced = dataclasses.replace(
        inst, cap=np.broadcast_to(cap, shape).copy(), acc=np.broadcast_to(acc, shape).copy()
    )
    flow = place_sites(reduced, active)
    if flow.dropped:
        return None
    return assign_slots(reduced, flow.active, flow.chosen)


def _slot_reason(inst: Instance, p: int) -> str:
    if inst.has_locks[p]:
        return "locked visits leave no room in the other slots"
    if inst.needs[p]:
        return "needs step-free access but no accessible slots are left for them"
    return "no room in enough different slots alongside everyone else"
