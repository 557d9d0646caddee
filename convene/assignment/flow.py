"""Slot-free relaxation: which K sites each person visits, by min-cost flow.

Person p supplies K units (minus its locks); arc p -> site s has capacity 1
and p's cost for s; site s -> sink has the site's capacity summed over slots.
Every plan maps onto a flow of no greater cost, so the optimum is a lower
bound for the full problem: churn is charged for every previous visit and
refunded on the arc to a previous site, which the slot-exact model can only
match or exceed; with a mix limit, group g reaches site s through a node
whose free arc carries sum over slots of min(limit, capacity) and whose
other arc pays the penalty, again never more than the per-slot penalty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.graph.python import min_cost_flow

from .instance import NO_SITE, Instance


@dataclass
class FlowResult:
    active: np.ndarray  # people placed, registration order
    chosen: np.ndarray  # chosen[p, s] over all people: p visits s (locks included)
    lower_bound: int


def relax(inst: Instance, active: np.ndarray) -> FlowResult | None:
    """Optimal site sets for everyone in `active`, or None when they cannot all fit."""
    graph = _Graph(inst, np.asarray(active, dtype=np.int64))
    if not graph.solve():
        return None
    return FlowResult(graph.active, graph.chosen(), graph.lower_bound())


def greedy_drops(inst: Instance, active: np.ndarray) -> tuple[list[int], int]:
    """People to leave out until the rest fit the relaxation, latest registrations first.

    Also returns the fewest unplaceable units of the first round: at least
    ceil(units / K) people must be left out for the rest to fit.
    """
    dropped: list[int] = []
    shortage = 0
    active = np.asarray(active, dtype=np.int64)
    while True:
        graph = _Graph(inst, active)
        if graph.solve():
            return dropped, shortage
        if not dropped:
            shortage = sum(units for units, _ in graph.solve_with_dummy(gather=False).values())
        short = graph.solve_with_dummy(gather=True)
        # Fully unplaced people go at once; otherwise the latest partial one.
        out = [p for p, (units, supply) in short.items() if units == supply] or [max(short)]
        dropped += out
        active = active[~np.isin(active, out)]


class _Graph:
    def __init__(self, inst: Instance, active: np.ndarray) -> None:
        self.inst = inst
        self.active = active
        problem = inst.problem
        churn = problem.churn_cost
        n_act, n_sites = len(active), len(inst.sites)
        lock = inst.lock[active]
        locked_t = lock != NO_SITE
        self.supply = inst.k - locked_t.sum(axis=1)

        # allowed[i, s]: a usable visit at s in a slot i has not locked.
        allowed = np.where(inst.needs[active][:, None], inst.usable_sites(True)[None, :],
                           inst.usable_sites(False)[None, :])
        constant = 0
        locked_sites = np.zeros((n_act, n_sites), dtype=bool)
        for i in np.flatnonzero(locked_t.any(axis=1)):
            p = active[i]
            usable = inst.usable(bool(inst.needs[p])) & ~locked_t[i][None, :]
            allowed[i] = usable.any(axis=1)
            for t in np.flatnonzero(locked_t[i]):
                locked_sites[i, lock[i, t]] = True
                constant += int(inst.cost[p, lock[i, t]])
        allowed &= ~locked_sites
        self.locked_sites = locked_sites

        # Churn: charge every previous visit, refund it on the arc to that site.
        prev = inst.prev[active]
        had = prev != NO_SITE
        constant += churn * int(inst.prev_lost[active].sum())
        constant += churn * int((had & ~locked_t).sum())
        constant += churn * int((had & locked_t & (prev != lock)).sum())
        refund = np.zeros((n_act, n_sites), dtype=bool)
        rows, cols = np.nonzero(had & ~locked_t & (prev >= 0))
        refund[rows, prev[rows, cols]] = True
        arc_cost = inst.cost[active] - churn * refund

        self.person_i, self.site_s = np.nonzero(allowed)
        tails: list[np.ndarray] = [self.person_i]
        costs: list[np.ndarray] = [arc_cost[self.person_i, self.site_s]]
        site_node0 = n_act
        heads_site: np.ndarray = site_node0 + self.site_s
        next_node = site_node0 + n_sites
        extra_tails: list[np.ndarray] = []
        extra_heads: list[np.ndarray] = []
        extra_caps: list[np.ndarray] = []
        extra_costs: list[np.ndarray] = []

        limit = problem.mix_limit
        group = inst.group[active]
        if limit is not None and (group >= 0).any():
            # Route grouped people through a (group, site) node.
            n_groups = len(inst.groups)
            gs_node0 = next_node
            next_node += n_groups * n_sites
            g_of_arc = group[self.person_i]
            grouped = g_of_arc >= 0
            heads_site = np.where(grouped, gs_node0 + g_of_arc * n_sites + self.site_s, heads_site)
            free_room = np.minimum(limit, inst.cap).sum(axis=1)
            locked_gs = np.zeros((n_groups, n_sites), dtype=np.int64)
            for i, t in zip(*np.nonzero(locked_t & (group[:, None] >= 0))):
                locked_gs[group[i], lock[i, t]] += 1
            s_idx = np.tile(np.arange(n_sites), n_groups)
            nodes = gs_node0 + np.arange(n_groups * n_sites)
            free = np.maximum(0, free_room[s_idx] - locked_gs.ravel())
            constant += problem.mix_penalty * int(
                np.maximum(0, locked_gs.ravel() - free_room[s_idx]).sum()
            )
            big = int(inst.cap.sum()) + 1
            extra_tails += [nodes, nodes]
            extra_heads += [site_node0 + s_idx, site_node0 + s_idx]
            extra_caps += [free, np.full(len(nodes), big)]
            extra_costs += [np.zeros(len(nodes), dtype=np.int64),
                            np.full(len(nodes), problem.mix_penalty)]

        self.sink = next_node
        self.n_nodes = next_node + 1
        room = inst.cap.sum(axis=1) - locked_sites.sum(axis=0)
        site_nodes = site_node0 + np.arange(n_sites)
        extra_tails.append(site_nodes)
        extra_heads.append(np.full(n_sites, self.sink))
        extra_caps.append(room)
        extra_costs.append(np.zeros(n_sites, dtype=np.int64))

        self.tails = np.concatenate(tails + extra_tails).astype(np.int64)
        self.heads = np.concatenate([heads_site] + extra_heads).astype(np.int64)
        self.caps = np.concatenate([np.ones(len(self.person_i), dtype=np.int64)] + extra_caps)
        self.costs = np.concatenate(costs + extra_costs).astype(np.int64)
        self.constant = constant
        self.max_cost = int(np.abs(self.costs).max(initial=0))

    def _new_solver(self) -> tuple[min_cost_flow.SimpleMinCostFlow, np.ndarray]:
        smcf = min_cost_flow.SimpleMinCostFlow()
        arcs = smcf.add_arcs_with_capacity_and_unit_cost(
            self.tails, self.heads, self.caps, self.costs
        )
        return smcf, arcs

    def _set_supplies(self, smcf: min_cost_flow.SimpleMinCostFlow) -> None:
        n_act = len(self.active)
        nodes = np.append(np.arange(n_act), self.sink)
        smcf.set_nodes_supplies(nodes, np.append(self.supply, -self.supply.sum()))

    def solve(self) -> bool:
        smcf, arcs = self._new_solver()
        self._set_supplies(smcf)
        status = smcf.solve()
        if status == smcf.INFEASIBLE:
            return False
        if status != smcf.OPTIMAL:
            raise RuntimeError(f"min-cost flow failed with status {status}")
        self.flow_cost = smcf.optimal_cost()
        self.person_flow = smcf.flows(arcs[: len(self.person_i)])
        return True

    def solve_with_dummy(self, gather: bool) -> dict[int, tuple[int, int]]:
        """Unplaceable units per person id: {p: (units, supply)}.

        Any rearrangement of real flow changes cost by less than
        n_nodes * max_cost, so a dummy unit costing more keeps their number
        minimal. With `gather`, later registrations are cheaper to leave out
        by a whole person's cost range per place in the queue, so the units
        gather on few, late people (their number may then exceed the minimum).
        """
        n_act = len(self.active)
        smcf, _ = self._new_solver()
        dummy = self.n_nodes
        big = (self.n_nodes + 2) * (self.max_cost + 1)
        step = self.inst.k * (self.max_cost + 1) if gather else 0
        later = n_act - 1 - np.arange(n_act)
        dummy_arcs = smcf.add_arcs_with_capacity_and_unit_cost(
            np.arange(n_act), np.full(n_act, dummy), self.supply, big + step * later
        )
        smcf.add_arc_with_capacity_and_unit_cost(dummy, self.sink, int(self.supply.sum()), 0)
        self._set_supplies(smcf)
        if smcf.solve() != smcf.OPTIMAL:
            raise RuntimeError("min-cost flow with unassigned arcs failed")
        units = smcf.flows(dummy_arcs)
        return {
            int(self.active[i]): (int(units[i]), int(self.supply[i]))
            for i in np.flatnonzero(units)
        }

    def chosen(self) -> np.ndarray:
        inst = self.inst
        out = np.zeros((inst.n_people, len(inst.sites)), dtype=bool)
        used = self.person_flow > 0
        out[self.active[self.person_i[used]], self.site_s[used]] = True
        out[self.active] |= self.locked_sites
        return out

    def lower_bound(self) -> int:
        return int(self.flow_cost) + self.constant
