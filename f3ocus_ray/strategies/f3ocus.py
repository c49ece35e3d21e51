"""F3OCUS: the clients' LNTK scores, refined on the server by a multi-objective meta-heuristic
(maximise total importance, minimise the variance of layer usage) and a pick from its front."""

from __future__ import annotations

from f3ocus_ray.seeding import SERVER, derive_seed
from f3ocus_ray.strategies.base import Selection, Strategy, check_budgets, check_scores


class F3ocusStrategy(Strategy):
    """`selection` holds the refinement settings (the config's `selection` section); None
    takes the selection library's defaults (NSGA-II, exact budgets, knee pick, 20,000
    evaluations)."""

    needs_scores = True

    def select(self, round_idx, budgets, num_units, scores=None) -> Selection:
        from f3ocus_ray.selection import select

        budgets = check_budgets(budgets, num_units)
        c = self.selection
        settings = {}
        if c is not None:
            settings = dict(
                algorithm=c.algorithm,
                budget_mode=c.budget_mode,
                pick=c.pick,
                pick_param=c.pick_param,
                termination=("n_eval", c.max_evals),
                params=dict(c.params),
            )
        result = select(
            check_scores(scores, budgets, num_units),
            budgets,
            seed=derive_seed(self.seed, round_idx, SERVER),
            **settings,
        )
        return Selection(result.mask, info=result)
