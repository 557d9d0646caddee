"""Turning site sets into slots by bipartite edge colouring (slots are colours).

With capacity c at a site in every slot, split the site's visitors into at
most c "bins" of at most S people (S slots). Every person and every bin then
has degree <= S, so by König's theorem the person-bin multigraph has a
proper S-edge-colouring: nobody gets two visits in one slot and no bin gets
two people in one slot, hence a site gets at most c per slot. The colouring
below is the classic alternating-path (Kempe chain) construction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .instance import NO_SITE, Instance

Member = tuple[int, int]  # (person, preferred colour or -1)


def assign_slots(inst: Instance, active: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """plan[p, t] = site for each active person; needs equal capacities across slots, no locks."""
    n_slots = len(inst.slots)
    person_ix = {p: i for i, p in enumerate(active.tolist())}
    left: list[int] = []
    right: list[int] = []
    preferred: list[int] = []
    edge_site: list[int] = []
    n_bins = 0
    for s in range(len(inst.sites)):
        visitors = active[chosen[active, s]]
        if len(visitors) == 0:
            continue
        for members in _bins_for_site(inst, s, visitors):
            for p, pref in members:
                left.append(person_ix[p])
                right.append(n_bins)
                preferred.append(pref)
                edge_site.append(s)
            n_bins += 1

    colours = edge_colouring(len(active), n_bins, left, right, n_slots, preferred)
    plan = np.full((inst.n_people, n_slots), NO_SITE, dtype=np.int64)
    plan[active[np.asarray(left, dtype=np.int64)], np.asarray(colours, dtype=np.int64)] = edge_site
    return plan


def _bins_for_site(inst: Instance, s: int, visitors: np.ndarray) -> list[list[Member]]:
    """At most cap bins of at most S members, shaped so the colouring keeps churn and clumps low.

    Members of one bin always land in different slots. So people returning
    to their previous slot here go one per slot per bin and are pre-coloured;
    and each delegation fills whole bins, its remainder kept in one bin where
    possible, which spreads it over slots as evenly as the slots allow.
    """
    n_slots = len(inst.slots)
    capacity = int(inst.cap[s, 0])
    queues: list[list[int]] = [[] for _ in range(n_slots)]
    rest: list[int] = []
    for p in visitors.tolist():
        back = np.flatnonzero(inst.prev[p] == s)
        (queues[int(back[0])] if len(back) else rest).append(p)
    n_pref_bins = min(capacity, max(len(q) for q in queues))
    bins: list[list[Member]] = [
        [(q[b], t) for t, q in enumerate(queues) if b < len(q)] for b in range(n_pref_bins)
    ]
    rest += [p for q in queues for p in q[n_pref_bins:]]
    if not bins and inst.problem.mix_limit is not None:
        packed = _pack_groups(inst, rest, n_slots)
        if len(packed) <= capacity:
            return packed
    rest.sort(key=lambda p: (int(inst.group[p]), p))
    members = iter(rest)
    for b in bins:
        # range first: zip must stop before drawing a member it would drop.
        b.extend((p, -1) for _, p in zip(range(n_slots - len(b)), members))
    while chunk := [(p, -1) for _, p in zip(range(n_slots), members)]:
        bins.append(chunk)
    if len(bins) > capacity:
        raise RuntimeError(f"site {inst.sites[s]} over capacity in the flow solution")
    return bins


def _pack_groups(inst: Instance, people: list[int], size: int) -> list[list[Member]]:
    """Whole bins per group, then each group's remainder packed first-fit decreasing."""
    by_group: dict[int, list[int]] = {}
    for p in sorted(people):
        by_group.setdefault(int(inst.group[p]), []).append(p)
    bins: list[list[Member]] = []
    remainders: list[list[int]] = []
    for g, members in sorted(by_group.items()):
        if g < 0:  # no delegation: anywhere
            remainders += [[p] for p in members]
            continue
        full = len(members) - len(members) % size
        bins += [[(p, -1) for p in members[i:i + size]] for i in range(0, full, size)]
        if full < len(members):
            remainders.append(members[full:])
    open_bins: list[list[Member]] = []
    for part in sorted(remainders, key=len, reverse=True):
        target = next((b for b in open_bins if len(b) + len(part) <= size), None)
        if target is None:
            target = []
            open_bins.append(target)
        target.extend((p, -1) for p in part)
    return bins + open_bins


def edge_colouring(
    n_left: int,
    n_right: int,
    left: Sequence[int],
    right: Sequence[int],
    n_colours: int,
    preferred: Sequence[int] | None = None,
) -> list[int]:
    """Proper edge colouring of a bipartite multigraph with max degree <= n_colours.

    Edges with a preferred colour are given it first (the caller guarantees
    those are conflict-free); alternating-path flips may still change them.
    """
    at_left = [[-1] * n_colours for _ in range(n_left)]
    at_right = [[-1] * n_colours for _ in range(n_right)]
    colour = [-1] * len(left)

    def paint(e: int, c: int) -> None:
        colour[e] = c
        at_left[left[e]][c] = e
        at_right[right[e]][c] = e

    def alternating_path(start: int, a: int, b: int) -> list[int]:
        path = []
        node, on_right, c = start, True, a
        while (f := (at_right if on_right else at_left)[node][c]) >= 0:
            path.append(f)
            node = left[f] if on_right else right[f]
            on_right = not on_right
            c = b if c == a else a
        return path

    wants = list(preferred) if preferred is not None else [-1] * len(left)

    def harm(path: list[int]) -> tuple[int, int]:
        return sum(colour[f] == wants[f] for f in path), len(path)

    for e, c in enumerate(wants):
        if c >= 0:
            paint(e, c)

    for e in range(len(left)):
        if colour[e] >= 0:
            continue
        u_slots, v_slots = at_left[left[e]], at_right[right[e]]
        both = next((c for c in range(n_colours) if u_slots[c] < 0 and v_slots[c] < 0), None)
        if both is not None:
            paint(e, both)
            continue
        # Swap a/b along the alternating path from v (it cannot reach u: u
        # has no a-edge and the path enters left vertices on a-edges), picking
        # the pair whose path undoes the fewest preferred colours.
        a, b, path = min(
            (
                (a, b, alternating_path(right[e], a, b))
                for a in range(n_colours) if u_slots[a] < 0
                for b in range(n_colours) if v_slots[b] < 0
            ),
            key=lambda option: harm(option[2]),
        )
        for f in path:
            at_left[left[f]][colour[f]] = -1
            at_right[right[f]][colour[f]] = -1
        for f in path:
            paint(f, b if colour[f] == a else a)
        paint(e, a)
    return colour
