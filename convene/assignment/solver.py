"""The pipeline: screen, flow relaxation, slot colouring, then MIPs only when needed."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from .colouring import assign_slots
from .flow import FlowResult, greedy_drops, relax
from .instance import NO_SITE, Instance, screen
from .mip import fewest_dropped, solve_slots
from .model import Plan, Problem, Solution, evaluate

# Above this many x variables the full model is not attempted once a plan
# exists, and otherwise keeps only ranked, previous and flow-chosen sites.
FULL_MODEL_MAX_VARS = 200_000
# Above this many variables, fitting site sets into slots starts from the
# coloured plan and frees only the people it leaves paying churn or mix.
FIT_MAX_VARS = 30_000
# Share of the remaining MIP budget for fitting the flow's site sets into slots,
# and the least it gets while no plan is in hand: a short overrun beats no plan.
FIT_SHARE = 0.4
FIRST_PLAN_SECONDS = 1.0
TIME_LIMIT_REASON = "no plan found within the time limit"


@dataclass
class _Outcome:
    plan: np.ndarray | None
    lower_bound: int
    status: str
    method: str


def solve(problem: Problem) -> Solution:
    """Assign every person K visits at minimum total cost; see the package docstring."""
    start = time.perf_counter()
    deadline = start + problem.time_limit
    inst = Instance.build(problem)
    unassigned = screen(inst)
    active = np.array([p for p in range(inst.n_people) if p not in unassigned], dtype=np.int64)
    while True:
        flow = relax(inst, active)
        outcome = None if flow is None else _place(inst, flow, deadline)
        if outcome is not None:
            break
        dropped = _fewest_dropped(inst, active, deadline)
        if not dropped:
            # Could not tell whom to leave out within the time limit.
            outcome = _Outcome(None, 0, "feasible", "mip")
            break
        unassigned.update({p: _no_room_reason(inst, p) for p in dropped})
        active = active[~np.isin(active, dropped)]

    people = problem.people
    plan: Plan = {}
    if outcome.plan is None:
        unassigned.update({int(p): TIME_LIMIT_REASON for p in active})
    else:
        for p in active.tolist():
            plan[people[p].id] = {
                inst.slots[t]: inst.sites[s] for t, s in enumerate(outcome.plan[p].tolist()) if s != NO_SITE
            }
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


def _flow_exact(inst: Instance, active: np.ndarray) -> bool:
    """Whether the slot-free relaxation loses nothing: no locks, slots alike."""
    return not inst.has_locks[active].any() and inst.slot_uniform(active)


@dataclass
class _Incumbent:
    """The cheapest plan seen so far."""

    inst: Instance
    active: np.ndarray
    cost: float = math.inf
    plan: np.ndarray | None = None

    def offer(self, plan: np.ndarray | None) -> None:
        if plan is not None:
            cost = plan_cost(self.inst, plan, self.active)
            if cost < self.cost:
                self.cost, self.plan = cost, plan

    def outcome(self, lower_bound: int, method: str) -> _Outcome:
        status = "optimal" if self.cost <= lower_bound else "feasible"
        return _Outcome(self.plan, lower_bound, status, method)


def _place(inst: Instance, flow: FlowResult, deadline: float) -> _Outcome | None:
    """Best plan for everyone in the flow; None when they provably cannot all be placed."""
    active, chosen, lower_bound = flow.active, flow.chosen, flow.lower_bound
    if len(active) == 0:
        return _Outcome(np.full((inst.n_people, len(inst.slots)), NO_SITE), 0, "optimal", "flow")
    best = _Incumbent(inst, active)
    if _flow_exact(inst, active):
        best.offer(assign_slots(inst, active, chosen))
        if best.cost <= lower_bound:
            return best.outcome(lower_bound, "flow")

    pinned = None
    if best.plan is not None and len(active) * inst.k * len(inst.slots) > FIT_MAX_VARS:
        pinned = np.where(_unsettled(inst, best.plan, active)[:, None], NO_SITE, best.plan)
    fit_seconds = (deadline - time.perf_counter()) * FIT_SHARE
    if best.plan is None:
        fit_seconds = max(fit_seconds, FIRST_PLAN_SECONDS)
    fit = solve_slots(inst, active, fit_seconds, choices=chosen, exact_sites=True, pinned=pinned)
    best.offer(fit.plan)
    restricted = _full_model_size(inst, active) > FULL_MODEL_MAX_VARS
    if best.cost <= lower_bound or (restricted and best.plan is not None):
        # A full model that large rarely finishes in time, and its bound would not count.
        return best.outcome(lower_bound, "mip")

    choices = _likely_sites(inst, chosen) if restricted else None
    full = solve_slots(inst, active, deadline - time.perf_counter(), choices=choices)
    if restricted and full.plan is None:
        restricted = False
        full = solve_slots(inst, active, deadline - time.perf_counter())
    if full.status == "infeasible" and not restricted:
        return None
    best.offer(full.plan)
    if not restricted and full.lower_bound is not None:
        lower_bound = max(lower_bound, full.lower_bound)
    if best.plan is None and not inst.has_locks[active].any():
        best.offer(_equalised_fallback(inst, active))
    return best.outcome(lower_bound, "mip")


def _fewest_dropped(inst: Instance, active: np.ndarray, deadline: float) -> list[int]:
    """Whom to leave out so the rest fit: provably few when the flow can tell, else by MIP."""
    greedy, shortage = greedy_drops(inst, active)
    exact = _flow_exact(inst, active)
    if greedy and exact and len(greedy) == math.ceil(shortage / inst.k):
        return greedy
    exact_choice = fewest_dropped(inst, active, max(deadline - time.perf_counter(), 1.0))
    # The relaxation's greedy answer is only known to suffice when it is exact.
    if exact_choice and (not (greedy and exact) or len(exact_choice) <= len(greedy)):
        return exact_choice
    return greedy


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


def _unsettled(inst: Instance, plan: np.ndarray, active: np.ndarray) -> np.ndarray:
    """People paying churn or mix in `plan`, and everyone sharing a visit with them."""
    problem = inst.problem
    n_sites, n_slots = len(inst.sites), len(inst.slots)
    visits = plan[active]
    prev = inst.prev[active]
    paying = ((prev != NO_SITE) & (visits != prev)).any(axis=1)
    on = visits != NO_SITE
    visit_key = np.where(on, visits * n_slots + np.arange(n_slots)[None, :], -1)
    if problem.mix_limit is not None:
        group = inst.group[active][:, None]
        key = np.where(on & (group >= 0), group * (n_sites * n_slots) + visit_key, -1)
        uniq, counts = np.unique(key[key >= 0], return_counts=True)
        crowded = uniq[counts > problem.mix_limit]
        paying |= np.isin(key, crowded).any(axis=1)
    touched = np.unique(visit_key[paying][visit_key[paying] >= 0])
    free = np.zeros(inst.n_people, dtype=bool)
    free[active[paying | np.isin(visit_key, touched).any(axis=1)]] = True
    return free


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
    flow = relax(reduced, active)
    return None if flow is None else assign_slots(reduced, flow.active, flow.chosen)


def _no_room_reason(inst: Instance, p: int) -> str:
    if inst.has_locks[p]:
        return "locked visits leave no room for their other visits"
    if inst.needs[p]:
        return "needs step-free access but the accessible visits are full"
    return "no room left: the visits open to them are all needed by others"
