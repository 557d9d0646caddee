"""Site-visit group assigner: K visits per person, fewest unhappy choices.

Method. Each person's cost depends only on which sites they visit, so the
problem splits in two. First a min-cost flow (OR-Tools) picks K distinct
sites per person within each site's capacity summed over slots; its optimum
is a proven lower bound on any plan. Then the site sets are turned into
slots by edge-colouring the person-site multigraph (König: a bipartite
multigraph of maximum degree S has a proper S-edge-colouring; a site with
capacity c per slot is split into c "bins" of degree <= S). When every site
has the same capacity (and access) in every slot and nothing is locked, the
coloured plan costs exactly the bound, so it is optimal; churn and mix
costs are then checked against the bound too.

Otherwise (unequal capacities, locks, churn, mix limits) an exact binary
model x[person, site, slot] is solved with scipy's HiGHS: first restricted
to the flow's site sets (often already meeting the bound), then over all
sites, within `Problem.time_limit`. The reported lower bound is the
larger of the flow bound and HiGHS' dual bound, and `optimal` means the plan
meets it.

People who cannot be placed are reported in `Solution.unassigned` with a
reason, never raised: structural causes (too few slots, too few accessible
sites, impossible or over-full locks) are found per person; a shortage of
room drops people, latest registrations first, and everyone else is placed
optimally. Everything is deterministic: inputs are sorted, no randomness.
"""

from .model import (
    Evaluation,
    Person,
    Plan,
    Problem,
    Solution,
    Visit,
    best_cost,
    evaluate,
    site_costs,
)
from .solver import solve

__all__ = [
    "Evaluation",
    "Person",
    "Plan",
    "Problem",
    "Solution",
    "Visit",
    "best_cost",
    "evaluate",
    "site_costs",
    "solve",
]
