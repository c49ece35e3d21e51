"""Strategies that need no scores: full fine-tuning, the first or last k units, random units."""

from __future__ import annotations

import numpy as np

from f3ocus_ray.seeding import derive_rng
from f3ocus_ray.strategies.base import Selection, Strategy, check_budgets


class FullStrategy(Strategy):
    """Every client trains every unit (full fine-tuning; ignores budgets)."""

    def select(self, round_idx, budgets, num_units, scores=None) -> Selection:
        return Selection(np.ones((len(budgets), num_units), dtype=bool))


class FirstKStrategy(Strategy):
    """Client i trains its first k_i units (closest to the input)."""

    def select(self, round_idx, budgets, num_units, scores=None) -> Selection:
        budgets = check_budgets(budgets, num_units)
        return Selection(np.arange(num_units)[None, :] < budgets[:, None])


class LastKStrategy(Strategy):
    """Client i trains its last k_i units (closest to the head)."""

    def select(self, round_idx, budgets, num_units, scores=None) -> Selection:
        budgets = check_budgets(budgets, num_units)
        return Selection(np.arange(num_units)[None, :] >= (num_units - budgets)[:, None])


class RandomStrategy(Strategy):
    """Federated dropout: each round, client i trains k_i units drawn uniformly at random."""

    def select(self, round_idx, budgets, num_units, scores=None) -> Selection:
        budgets = check_budgets(budgets, num_units)
        keys = derive_rng(self.seed, round_idx).random((len(budgets), num_units))
        ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
        return Selection(ranks < budgets[:, None])
