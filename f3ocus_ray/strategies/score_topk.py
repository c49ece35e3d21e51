"""Client-only top-k: client i trains its k_i units of highest score under its own data.

With LNTK scores this is the paper's `LNTK` baseline; with a saliency score (SNIP, GraSP,
Fisher, ...) it is that method's layer-level form.
"""

from __future__ import annotations

from f3ocus_ray.strategies.base import Selection, Strategy, check_budgets, check_scores, top_k_mask


class ScoreTopKStrategy(Strategy):
    needs_scores = True

    def select(self, round_idx, budgets, num_units, scores=None) -> Selection:
        budgets = check_budgets(budgets, num_units)
        return Selection(top_k_mask(check_scores(scores, budgets, num_units), budgets))
