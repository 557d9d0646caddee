"""Index-based view of a Problem, and the per-person checks that need no optimisation."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .model import Problem, site_costs

NO_SITE = -1
# A previous visit at a site that no longer exists: never equal to a real site.
GONE_SITE = -2


@dataclass
class Instance:
    """Arrays over people (registration order), sites (sorted) and slots (sorted).

    cost[p, s]      rank cost of site s for person p
    ranked[p, s]    whether p ranked s
    cap[s, t]       capacity of site s in slot t (0 when there is no such visit)
    acc[s, t]       whether that visit is step-free accessible
    group[p]        delegation code, -1 for none
    lock[p, t]      locked site, NO_SITE when free
    prev[p, t]      previous site, NO_SITE when none, GONE_SITE when it no longer exists
    prev_lost[p]    previous visits in slots that no longer exist (always churn)
    """

    problem: Problem
    sites: list[str]
    slots: list[int]
    groups: list[str]
    cost: np.ndarray
    ranked: np.ndarray
    cap: np.ndarray
    acc: np.ndarray
    needs: np.ndarray
    group: np.ndarray
    lock: np.ndarray
    prev: np.ndarray
    prev_lost: np.ndarray

    @classmethod
    def build(cls, problem: Problem) -> Instance:
        people = problem.people
        sites = sorted({v.site for v in problem.visits})
        slots = sorted({v.slot for v in problem.visits})
        groups = sorted({p.group for p in people if p.group is not None})
        site_ix = {s: i for i, s in enumerate(sites)}
        slot_ix = {t: i for i, t in enumerate(slots)}
        group_ix = {g: i for i, g in enumerate(groups)}
        person_ix = {p.id: i for i, p in enumerate(people)}
        n, m, k = len(people), len(sites), len(slots)

        cap = np.zeros((m, k), dtype=np.int64)
        acc = np.zeros((m, k), dtype=bool)
        for v in problem.visits:
            cap[site_ix[v.site], slot_ix[v.slot]] = v.capacity
            acc[site_ix[v.site], slot_ix[v.slot]] = v.accessible

        cost = np.empty((n, m), dtype=np.int64)
        ranked = np.zeros((n, m), dtype=bool)
        for i, person in enumerate(people):
            costs = site_costs(problem, person)
            cost[i] = [costs[s][0] for s in sites]
            ranked[i] = [costs[s][1] is not None for s in sites]

        lock = np.full((n, k), NO_SITE, dtype=np.int64)
        for (pid, slot), site in problem.locked.items():
            lock[person_ix[pid], slot_ix[slot]] = site_ix[site]

        prev = np.full((n, k), NO_SITE, dtype=np.int64)
        prev_lost = np.zeros(n, dtype=np.int64)
        for pid, visits in problem.previous.items():
            if pid not in person_ix:
                continue
            i = person_ix[pid]
            for slot, site in visits.items():
                if slot in slot_ix:
                    prev[i, slot_ix[slot]] = site_ix.get(site, GONE_SITE)
                else:
                    prev_lost[i] += 1

        return cls(
            problem=problem,
            sites=sites,
            slots=slots,
            groups=groups,
            cost=cost,
            ranked=ranked,
            cap=cap,
            acc=acc,
            needs=np.array([p.needs_access for p in people], dtype=bool),
            group=np.array([-1 if p.group is None else group_ix[p.group] for p in people], dtype=np.int64),
            lock=lock,
            prev=prev,
            prev_lost=prev_lost,
        )

    @property
    def k(self) -> int:
        return self.problem.visits_per_person

    @property
    def n_people(self) -> int:
        return len(self.problem.people)

    @cached_property
    def open(self) -> np.ndarray:
        """open[s, t]: the visit exists and has room."""
        return self.cap > 0

    def usable(self, needs_access: bool) -> np.ndarray:
        """usable[s, t] for a person with or without step-free needs."""
        return self.open & self.acc if needs_access else self.open

    def usable_sites(self, needs_access: bool) -> np.ndarray:
        """usable_sites[s]: some slot of s is usable."""
        return np.asarray(self.usable(needs_access).any(axis=1))

    @cached_property
    def has_locks(self) -> np.ndarray:
        return (self.lock != NO_SITE).any(axis=1)

    def slot_uniform(self, active: np.ndarray) -> bool:
        """Whether capacities, and access where it matters, are equal across slots."""
        if not (self.cap == self.cap[:, :1]).all():
            return False
        step_free = self.acc & self.open
        return not self.needs[active].any() or bool((step_free == step_free[:, :1]).all())


def screen(inst: Instance) -> dict[int, str]:
    """People who cannot be placed whatever the others do, with the reason."""
    k, n_slots = inst.k, len(inst.slots)
    if n_slots < k:
        reason = f"only {_count(n_slots, 'slot')} for {_count(k, 'visit')} per person"
        return {p: reason for p in range(inst.n_people)}

    out: dict[int, str] = {}
    cache: dict[tuple, str | None] = {}
    for p in range(inst.n_people):
        needs = bool(inst.needs[p])
        locks = tuple(int(s) for s in inst.lock[p])
        key = (needs, locks)
        if key not in cache:
            cache[key] = _personal_obstacle(inst, needs, locks)
        obstacle = cache[key]
        if obstacle is not None:
            out[p] = obstacle

    # Locks beyond a visit's capacity: earlier registrations keep their lock.
    taken = np.zeros_like(inst.cap)
    for p in range(inst.n_people):
        if p in out:
            continue
        for t, s in enumerate(inst.lock[p]):
            if s != NO_SITE and taken[s, t] >= inst.cap[s, t]:
                out[p] = f"locked visit {inst.sites[s]} (slot {inst.slots[t]}) is full"
                break
        else:
            for t, s in enumerate(inst.lock[p]):
                if s != NO_SITE:
                    taken[s, t] += 1
    return dict(sorted(out.items()))


def _personal_obstacle(inst: Instance, needs: bool, locks: tuple[int, ...]) -> str | None:
    k = inst.k
    locked = {t: s for t, s in enumerate(locks) if s != NO_SITE}
    if len(locked) > k:
        return f"{len(locked)} locked visits but only {_count(k, 'visit')} per person"
    if len(set(locked.values())) < len(locked):
        return "locked to the same site in two slots"
    usable = inst.usable(needs)
    for t, s in locked.items():
        if needs and not inst.acc[s, t]:
            return (
                f"needs step-free access but locked visit {inst.sites[s]} "
                f"(slot {inst.slots[t]}) is not accessible"
            )
    free = usable.copy()
    free[list(locked.values()), :] = False
    free[:, list(locked)] = False
    if _max_matching(free) >= k - len(locked):
        return None
    if locked:
        return "locked visits leave no way to fit the remaining visits"
    n_sites = int(usable.any(axis=1).sum())
    if needs:
        if n_sites < k:
            return f"needs step-free access but only {_count(n_sites, 'accessible site')}"
        return f"needs step-free access but accessible visits cannot fill {k} different slots"
    if n_sites < k:
        return f"only {_count(n_sites, 'site')} with room for {_count(k, 'visit')} per person"
    return f"open visits cannot fill {k} different slots at different sites"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _max_matching(edges: np.ndarray) -> int:
    """Size of a maximum matching in a small bipartite graph given as a boolean matrix."""
    match_col = [-1] * edges.shape[1]

    def augment(row: int, seen: list[bool]) -> bool:
        for col in np.flatnonzero(edges[row]):
            if not seen[col]:
                seen[col] = True
                if match_col[col] < 0 or augment(match_col[col], seen):
                    match_col[col] = row
                    return True
        return False

    return sum(augment(r, [False] * edges.shape[1]) for r in range(edges.shape[0]))
