"""Site-visit group assigner: K visits per person at K different sites, one per
slot, as few unwanted choices as possible.

Method. Ranks cost by site, not by slot, so the problem splits in two. A
min-cost flow (OR-Tools) picks K distinct sites per person within each
site's capacity summed over slots; churn and mix penalties enter it as
relaxations, so its optimum is a proven lower bound on any plan. The site
sets are then put into slots by edge-colouring the person-site multigraph
(König: a bipartite multigraph of maximum degree S has a proper
S-edge-colouring; a site with capacity c per slot is split into at most c
"bins" of degree <= S). When every site has the same capacity (and access)
in every slot and nothing is locked, the coloured plan costs exactly the
bound and is optimal ("flow"); bins are shaped so that returning visitors
keep their slot and delegations spread evenly over slots, which usually
meets the bound with churn and mix limits too.

Otherwise ("mip") an exact binary model x[person, site, slot] is solved with
scipy's HiGHS, within `Problem.time_limit`: first fitting the flow's site
sets into slots (often meeting the bound), then over all sites, whose dual
bound raises the lower bound. On large instances a coloured plan is refitted
only around the people it leaves paying churn or mix (beyond 30,000 fitting
variables), and the full model is skipped once a plan exists (beyond 200,000
variables); such a plan is returned with status "feasible" and its gap.

People who cannot be placed are reported in `Solution.unassigned` with a
reason, never raised. Structural causes (too few slots or accessible sites,
impossible or over-full locks) are found per person. When room runs short,
the fewest people are left out, later registrations first: by the flow when
it is exact and provably leaves out no more than needed, otherwise by a MIP
with one slack per person. Everyone else is placed optimally. Deterministic:
inputs are sorted and nothing is random.
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
