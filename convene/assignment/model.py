"""Input and output types of the assigner, with validation and plan evaluation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

DEFAULT_RANK_COSTS = (0, 1, 3, 7, 15, 31)

Plan = dict[str, dict[int, str]]


@dataclass(frozen=True)
class Person:
    """A participant: their ranked sites (best first), delegation and access needs."""

    id: str
    ranking: Sequence[str] = ()
    group: str | None = None
    needs_access: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranking", tuple(self.ranking))


@dataclass(frozen=True)
class Visit:
    """One site in one slot, with room for `capacity` people."""

    site: str
    slot: int
    capacity: int
    accessible: bool = True


@dataclass(frozen=True)
class Problem:
    """Everything the assigner needs; validated on construction (ValueError).

    Costs are non-negative integers (the flow solver works on integers).
    A visit at rank r costs rank_costs[r - 1]; ranks past the end of
    rank_costs cost its last entry. Ranking entries naming no site among the
    visits, and repeated entries, are dropped before ranks are counted.
    A lock or a previous visit naming a slot that a person does not visit any
    more is simply a changed visit (churn), never an error.
    """

    people: Sequence[Person]
    visits: Sequence[Visit]
    visits_per_person: int = 2
    rank_costs: Sequence[int] = DEFAULT_RANK_COSTS
    unranked_cost: int = 128
    locked: Mapping[tuple[str, int], str] = field(default_factory=dict)
    previous: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    churn_cost: int = 4
    mix_limit: int | None = None
    # Per person beyond mix_limit in one (site, slot) visit: above a rank step
    # or two, well below an unwanted site.
    mix_penalty: int = 10
    # Budget in seconds for the MIP stages; the flow stage always runs.
    time_limit: float = 20.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "people", tuple(self.people))
        set_(self, "visits", tuple(self.visits))
        set_(self, "rank_costs", tuple(self.rank_costs))
        set_(self, "locked", MappingProxyType(dict(self.locked)))
        set_(
            self,
            "previous",
            MappingProxyType({pid: MappingProxyType(dict(v)) for pid, v in self.previous.items()}),
        )
        self._validate()

    def _validate(self) -> None:
        _require_int("visits_per_person", self.visits_per_person, minimum=1)
        if not self.rank_costs:
            raise ValueError("rank_costs must not be empty")
        for i, c in enumerate(self.rank_costs):
            _require_int(f"rank_costs[{i}]", c)
        for name in ("unranked_cost", "churn_cost", "mix_penalty"):
            _require_int(name, getattr(self, name))
        if self.mix_limit is not None:
            _require_int("mix_limit", self.mix_limit, minimum=1)
        if not self.time_limit > 0:
            raise ValueError(f"time_limit must be positive, got {self.time_limit!r}")

        ids = Counter(p.id for p in self.people)
        dup_ids = sorted(i for i, n in ids.items() if n > 1)
        if dup_ids:
            raise ValueError(f"duplicate person ids: {', '.join(map(repr, dup_ids))}")

        visits = Counter((v.site, v.slot) for v in self.visits)
        dup_visits = sorted(k for k, n in visits.items() if n > 1)
        if dup_visits:
            raise ValueError(f"duplicate visits (site, slot): {dup_visits}")
        for v in self.visits:
            _require_int(f"capacity of visit {v.site!r} slot {v.slot}", v.capacity)
            _require_int(f"slot of visit {v.site!r}", v.slot, minimum=None)

        slots = {v.slot for v in self.visits}
        for (pid, slot), site in self.locked.items():
            if pid not in ids:
                raise ValueError(f"lock for unknown person {pid!r}")
            if slot not in slots:
                raise ValueError(f"lock {pid!r} -> {site!r} names unknown slot {slot!r}")
            if (site, slot) not in visits:
                raise ValueError(f"lock {pid!r} -> {site!r} names no visit in slot {slot!r}")


def _require_int(name: str, value: object, minimum: int | None = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        # ValueError like every other input problem, so callers catch one type.
        raise ValueError(f"{name} must be an integer, got {value!r}")  # noqa: TRY004
    if minimum is not None and value < minimum:
        adjective = "non-negative" if minimum == 0 else f">= {minimum}"
        raise ValueError(f"{name} must be {adjective}, got {value}")


@dataclass(frozen=True)
class Evaluation:
    """A plan's cost under a problem's costs, with the numbers organizers look at.

    rank_profile[i] counts visits at rank i + 1 (up to the longest ranking);
    the last entry counts unranked visits. person_costs are rank plus churn
    costs; mix penalties belong to visits, so they appear only in cost.
    regret is a person's rank cost minus the cost of the K cheapest sites
    they could use if every visit were empty.
    """

    cost: int
    rank_cost: int
    churn_cost: int
    mix_cost: int
    person_costs: dict[str, int]
    regret: dict[str, int]
    rank_profile: tuple[int, ...]
    group_mix: dict[tuple[str, int], dict[str, int]]

    @property
    def unranked_visits(self) -> int:
        return self.rank_profile[-1]

    @property
    def largest_group_count(self) -> int:
        """Largest number of one delegation in one visit (0 when nobody has a group)."""
        return max((max(c.values()) for c in self.group_mix.values() if c), default=0)


@dataclass(frozen=True)
class Solution:
    """The assigner's answer.

    status is "optimal" (cost == lower_bound for everyone placed) or
    "feasible" (the best plan found when the MIP budget ran out or the
    instance was too large to prove it; the gap is cost - lower_bound).
    unassigned maps person id -> reason.
    method is "flow" when min-cost flow + edge colouring proved the plan,
    "mip" when a HiGHS model was needed.
    """

    plan: Plan
    cost: int
    lower_bound: int
    status: str
    method: str
    solve_seconds: float
    unassigned: dict[str, str]
    evaluation: Evaluation

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"

    @property
    def gap(self) -> int:
        return self.cost - self.lower_bound

    @property
    def rank_profile(self) -> tuple[int, ...]:
        return self.evaluation.rank_profile

    @property
    def group_mix(self) -> dict[tuple[str, int], dict[str, int]]:
        return self.evaluation.group_mix

    @property
    def person_costs(self) -> dict[str, int]:
        return self.evaluation.person_costs

    @property
    def largest_group_count(self) -> int:
        return self.evaluation.largest_group_count


def site_costs(problem: Problem, person: Person) -> dict[str, tuple[int, int | None]]:
    """Cost and rank (None when unranked) of every site for one person."""
    costs = problem.rank_costs
    out: dict[str, tuple[int, int | None]] = {
        v.site: (problem.unranked_cost, None) for v in problem.visits
    }
    rank = 0
    for site in person.ranking:
        if site in out and out[site][1] is None:
            rank += 1
            out[site] = (costs[min(rank, len(costs)) - 1], rank)
    return out


def best_cost(problem: Problem, person: Person) -> int:
    """Cost of the K cheapest sites the person could use if every visit were empty."""
    return _ideal(problem, site_costs(problem, person), _usable_sites(problem, person.needs_access))


def _usable_sites(problem: Problem, needs_access: bool) -> set[str]:
    return {v.site for v in problem.visits if v.capacity > 0 and (v.accessible or not needs_access)}


def _ideal(problem: Problem, costs: Mapping[str, tuple[int, int | None]], usable: set[str]) -> int:
    return sum(sorted(costs[s][0] for s in usable)[: problem.visits_per_person])


def evaluate(problem: Problem, plan: Mapping[str, Mapping[int, str]]) -> Evaluation:
    """Score a plan (person id -> {slot: site}); people missing from it are not scored."""
    by_id = {p.id: p for p in problem.people}
    usable = {needs: _usable_sites(problem, needs) for needs in (False, True)}
    ranked_counts: Counter[int] = Counter()
    unranked = 0
    person_costs: dict[str, int] = {}
    regret: dict[str, int] = {}
    churn_total = 0
    mix: dict[tuple[str, int], Counter[str]] = {}
    for pid, visits in plan.items():
        person = by_id[pid]
        costs = site_costs(problem, person)
        rank_cost = 0
        for slot, site in visits.items():
            cost, rank = costs[site]
            rank_cost += cost
            if rank is None:
                unranked += 1
            else:
                ranked_counts[rank] += 1
            if person.group is not None:
                mix.setdefault((site, slot), Counter())[person.group] += 1
        prev = problem.previous.get(pid, {})
        churn = problem.churn_cost * sum(visits.get(slot) != site for slot, site in prev.items())
        churn_total += churn
        person_costs[pid] = rank_cost + churn
        regret[pid] = rank_cost - _ideal(problem, costs, usable[person.needs_access])
    known = {v.site for v in problem.visits}
    longest = max((len(set(p.ranking) & known) for p in problem.people), default=0)
    profile = tuple(ranked_counts[r] for r in range(1, longest + 1)) + (unranked,)
    mix_cost = 0
    if problem.mix_limit is not None:
        mix_cost = problem.mix_penalty * sum(
            max(0, n - problem.mix_limit) for counts in mix.values() for n in counts.values()
        )
    rank_total = sum(person_costs.values()) - churn_total
    return Evaluation(
        cost=rank_total + churn_total + mix_cost,
        rank_cost=rank_total,
        churn_cost=churn_total,
        mix_cost=mix_cost,
        person_costs=person_costs,
        regret=regret,
        rank_profile=profile,
        group_mix={key: dict(sorted(c.items())) for key, c in sorted(mix.items())},
    )
