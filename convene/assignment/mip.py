"""The exact slot model, x[person, site, slot] binary, solved by scipy's HiGHS.

Rows: K visits per person; at most one visit per (person, slot) and per
(person, site); capacity per (site, slot); locks as fixed bounds; a mix
limit as count - excess <= limit with the excess paid per person. Churn is
linear: every previous visit is charged up front and x at that very
(site, slot) earns it back. scipy's HiGHS is used rather than `highspy`,
which must not be loaded next to OR-Tools (or-tools issue 5246).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array, vstack

from .instance import NO_SITE, Instance


@dataclass
class MipResult:
    plan: np.ndarray | None  # plan[p, t] = site, NO_SITE when not visiting
    status: str  # "optimal", "time_limit" or "infeasible"
    lower_bound: int | None  # valid only for the model's own variable set


@dataclass
class _Model:
    person: np.ndarray  # per x variable: person index (global)
    site: np.ndarray
    slot: np.ndarray
    n_extra: int  # continuous or slack variables after the x block
    cost: np.ndarray
    constant: int
    lower: np.ndarray
    upper: np.ndarray
    integrality: np.ndarray
    rows: list[coo_array]
    row_low: list[np.ndarray]
    row_high: list[np.ndarray]

    @property
    def n_vars(self) -> int:
        return len(self.person) + self.n_extra

    def add_rows(self, keys: np.ndarray, cols: np.ndarray, coefs: np.ndarray,
                 low: np.ndarray | float, high: np.ndarray | float) -> None:
        """One row per distinct key (in sorted order) summing coefs * var[cols]."""
        uniq, row = np.unique(keys, return_inverse=True)
        self.rows.append(coo_array((coefs, (row, cols)), shape=(len(uniq), self.n_vars)))
        self.row_low.append(np.broadcast_to(low, len(uniq)).astype(float))
        self.row_high.append(np.broadcast_to(high, len(uniq)).astype(float))

    def solve(self, time_limit: float) -> tuple[str, np.ndarray | None, float | None]:
        matrix = vstack(self.rows).tocsr()
        res = milp(
            c=self.cost,
            integrality=self.integrality,
            bounds=Bounds(self.lower, self.upper),
            constraints=LinearConstraint(matrix, np.concatenate(self.row_low),
                                         np.concatenate(self.row_high)),
            options={"time_limit": max(time_limit, 0.01), "mip_rel_gap": 0.0},
        )
        bound = getattr(res, "mip_dual_bound", None)
        bound = None if bound is None or not math.isfinite(bound) else float(bound)
        if res.status == 0:
            return "optimal", res.x, bound
        if res.status == 2:
            return "infeasible", None, None
        if res.status == 1:
            return "time_limit", res.x, bound
        raise RuntimeError(f"HiGHS failed: {res.message}")


def solve_slots(
    inst: Instance,
    active: np.ndarray,
    time_limit: float,
    choices: np.ndarray | None = None,
    exact_sites: bool = False,
    pinned: np.ndarray | None = None,
) -> MipResult:
    """Optimal plan over x restricted to choices[p, s] (all usable visits when None).

    With exact_sites every chosen site must be visited, which turns the
    model into "fit these site sets into slots". pinned[p, t] fixes people's
    visits (NO_SITE rows are free). Either way the bound then holds for the
    restricted model only.
    """
    model = _build(inst, active, choices, exact_sites, slack=False, pinned=pinned)
    status, x, bound = model.solve(time_limit)
    plan = None if x is None else _plan(inst, model, x)
    lower = None if bound is None else math.ceil(bound + model.constant - 1e-6)
    return MipResult(plan, status, lower)


def fewest_dropped(inst: Instance, active: np.ndarray, time_limit: float) -> list[int] | None:
    """The fewest people (latest registrations on ties) whose removal makes the rest fit."""
    model = _build(inst, active, None, False, slack=True)
    _, x, _ = model.solve(time_limit)
    if x is None:
        return None
    slack = x[len(model.person):][-len(active):]
    return [int(p) for p in active[slack > 0.5]]


def _build(inst: Instance, active: np.ndarray, choices: np.ndarray | None,
           exact_sites: bool, slack: bool, pinned: np.ndarray | None = None) -> _Model:
    problem = inst.problem
    n_act, n_sites, n_slots = len(active), len(inst.sites), len(inst.slots)
    k = inst.k
    mask = np.where(inst.needs[active][:, None, None],
                    inst.usable(True)[None], inst.usable(False)[None])
    if choices is not None:
        mask &= choices[active][:, :, None]
    forced = np.zeros_like(mask)
    pins = inst.lock[active]
    if pinned is not None:
        whole = (pinned[active] != NO_SITE).any(axis=1)
        mask[whole] = False
        pins = np.where(whole[:, None], pinned[active], pins)
    for i, t in zip(*np.nonzero(pins != NO_SITE)):
        s = pins[i, t]
        mask[i, :, t] = False
        mask[i, s, :] = False
        mask[i, s, t] = forced[i, s, t] = True
    ii, ss, tt = np.nonzero(mask)
    pp = active[ii]
    n_x = len(ii)

    churn = problem.churn_cost
    prev = inst.prev[active]
    cost = (inst.cost[pp, ss] - churn * (inst.prev[pp, tt] == ss)).astype(float)
    constant = churn * int(inst.prev_lost[active].sum() + (prev != NO_SITE).sum())
    lower = forced[ii, ss, tt].astype(float)

    # Mix excess variables, only where a group could exceed the limit.
    limit = problem.mix_limit
    mix_keys = np.empty(0, dtype=np.int64)
    mix_cols = np.empty(0, dtype=np.int64)
    n_mix = 0
    if limit is not None:
        grouped = inst.group[pp] >= 0
        key = (inst.group[pp] * n_sites + ss) * n_slots + tt
        uniq, counts = np.unique(key[grouped], return_counts=True)
        over = uniq[(counts > limit) & (inst.cap.ravel()[uniq % (n_sites * n_slots)] > limit)]
        in_over = grouped & np.isin(key, over)
        mix_cols = np.flatnonzero(in_over)
        mix_keys = key[in_over]
        n_mix = len(over)

    n_extra = n_mix + (n_act if slack else 0)
    if slack:
        # Pure feasibility: drop as few as possible, later registrations first.
        later = n_act - 1 - np.arange(n_act)
        obj = np.concatenate([np.zeros(n_x + n_mix), float(n_act) ** 2 + later])
        lower[:] = 0.0
    else:
        obj = np.concatenate([cost, np.full(n_mix, float(problem.mix_penalty))])
    model = _Model(
        person=pp, site=ss, slot=tt, n_extra=n_extra, cost=obj, constant=constant,
        lower=np.concatenate([lower, np.zeros(n_extra)]),
        upper=np.concatenate([np.ones(n_x), np.full(n_mix, np.inf), np.ones(n_extra - n_mix)]),
        integrality=np.concatenate([np.ones(n_x), np.zeros(n_mix), np.ones(n_extra - n_mix)]),
        rows=[], row_low=[], row_high=[],
    )
    ones = np.ones(n_x)
    cols = np.arange(n_x)
    if slack:
        u_cols = n_x + n_mix + np.arange(n_act)
        model.add_rows(np.concatenate([ii, np.arange(n_act)]), np.concatenate([cols, u_cols]),
                       np.concatenate([ones, np.full(n_act, float(k))]), k, k)
        # A placed person keeps their locks: x_lock + u >= 1.
        fi = np.flatnonzero(forced[ii, ss, tt])
        if len(fi):
            model.add_rows(np.concatenate([fi, fi]), np.concatenate([fi, u_cols[ii[fi]]]),
                           np.ones(2 * len(fi)), 1, np.inf)
    else:
        model.add_rows(ii, cols, ones, k, k)
    model.add_rows(ii * n_slots + tt, cols, ones, 0, 1)
    model.add_rows(ii * n_sites + ss, cols, ones, 1 if exact_sites else 0, 1)
    visit = ss * n_slots + tt
    model.add_rows(visit, cols, ones, 0, inst.cap.ravel()[np.unique(visit)])
    if n_mix and limit is not None:
        model.add_rows(
            np.concatenate([mix_keys, np.unique(mix_keys)]),
            np.concatenate([mix_cols, n_x + np.arange(n_mix)]),
            np.concatenate([np.ones(len(mix_cols)), -np.ones(n_mix)]),
            -np.inf, float(limit),
        )
    return model


def _plan(inst: Instance, model: _Model, x: np.ndarray) -> np.ndarray:
    plan = np.full((inst.n_people, len(inst.slots)), NO_SITE, dtype=np.int64)
    on = x[: len(model.person)] > 0.5
    plan[model.person[on], model.slot[on]] = model.site[on]
    return plan
