"""Selection strategies: the one place where a method decides which units each client trains.

A strategy maps (round, per-client budgets, number of units, and for score-based strategies the
clients' score matrix S) to a boolean mask (clients x units) with exactly k_i units for client i
(the `full` baseline ignores budgets; F3OCUS in `at_most` mode may give fewer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from f3ocus_ray.config import SCORE_STRATEGIES, SelectionConfig
from f3ocus_ray.fl.seeding import SERVER, derive_rng, derive_seed


class SelectionStrategy(Protocol):
    name: ClassVar[str]

    def select(
        self, round_idx: int, budgets: np.ndarray, num_units: int, scores: np.ndarray | None = None
    ) -> np.ndarray: ...


def _check(budgets: np.ndarray, num_units: int) -> np.ndarray:
    budgets = np.asarray(budgets, dtype=np.int64)
    if budgets.ndim != 1 or (budgets < 1).any() or (budgets > num_units).any():
        raise ValueError(f"budgets must lie in [1, {num_units}], got {budgets.tolist()}")
    return budgets


@dataclass(frozen=True)
class FullStrategy:
    """Every client trains every unit (full fine-tuning; ignores budgets)."""

    name: ClassVar[str] = "full"

    def select(
        self, round_idx: int, budgets: np.ndarray, num_units: int, scores: np.ndarray | None = None
    ) -> np.ndarray:
        return np.ones((len(budgets), num_units), dtype=bool)


@dataclass(frozen=True)
class FirstKStrategy:
    """Client i trains its first k_i units (closest to the input)."""

    name: ClassVar[str] = "first_k"

    def select(
        self, round_idx: int, budgets: np.ndarray, num_units: int, scores: np.ndarray | None = None
    ) -> np.ndarray:
        budgets = _check(budgets, num_units)
        return np.arange(num_units)[None, :] < budgets[:, None]


@dataclass(frozen=True)
class LastKStrategy:
    """Client i trains its last k_i units (closest to the head)."""

    name: ClassVar[str] = "last_k"

    def select(
        self, round_idx: int, budgets: np.ndarray, num_units: int, scores: np.ndarray | None = None
    ) -> np.ndarray:
        budgets = _check(budgets, num_units)
        return np.arange(num_units)[None, :] >= (num_units - budgets)[:, None]


@dataclass(frozen=True)
class RandomStrategy:
    """Federated dropout: each round, client i trains k_i units drawn uniformly at random."""

    seed: int
    name: ClassVar[str] = "random"

    def select(
        self, round_idx: int, budgets: np.ndarray, num_units: int, scores: np.ndarray | None = None
    ) -> np.ndarray:
        budgets = _check(budgets, num_units)
        rng = derive_rng(self.seed, round_idx)
        keys = rng.random((len(budgets), num_units))
        ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
        return ranks < budgets[:, None]


def _need_scores(scores: np.ndarray | None, budgets: np.ndarray, num_units: int) -> np.ndarray:
    if scores is None:
        raise ValueError("this strategy needs the clients' scores")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(budgets), num_units):
        raise ValueError(f"scores shape {scores.shape} != ({len(budgets)}, {num_units})")
    return scores


def top_k_mask(scores: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    """Each client's k_i highest-scoring units (ties go to the lower unit index)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :], axis=1)
    return ranks < budgets[:, None]


@dataclass(frozen=True)
class ScoreTopKStrategy:
    """Client i trains its k_i units of highest score under its own data (client-only).

    With LNTK scores this is the paper's `LNTK` baseline; with a saliency score (SNIP, GraSP,
    Fisher, ...) it is that method's layer-level form.
    """

    name: str
    score_method: str

    def select(
        self, round_idx: int, budgets: np.ndarray, num_units: int, scores: np.ndarray | None = None
    ) -> np.ndarray:
        budgets = _check(budgets, num_units)
        return top_k_mask(_need_scores(scores, budgets, num_units), budgets)


class F3ocusStrategy:
    """F3OCUS: the clients' LNTK scores, refined on the server by a multi-objective
    meta-heuristic (maximise total importance, minimise the variance of layer usage) and a
    pick from its Pareto front. `last_result` keeps the latest SelectionResult for logging."""

    name = "f3ocus"

    def __init__(self, selection: SelectionConfig, seed: int):
        self.cfg = selection
        self.seed = seed
        self.last_result = None

    def select(
        self, round_idx: int, budgets: np.ndarray, num_units: int, scores: np.ndarray | None = None
    ) -> np.ndarray:
        from f3ocus_ray.selection import select

        budgets = _check(budgets, num_units)
        c = self.cfg
        self.last_result = select(
            _need_scores(scores, budgets, num_units),
            budgets,
            algorithm=c.algorithm,
            budget_mode=c.budget_mode,
            pick=c.pick,
            pick_param=c.pick_param,
            seed=derive_seed(self.seed, round_idx, SERVER),
            termination=("n_eval", c.max_evals),
            params=dict(c.params),
        )
        return self.last_result.mask


def make_strategy(
    name: str, seed: int, selection: SelectionConfig | None = None
) -> SelectionStrategy:
    if name in SCORE_STRATEGIES and name != "f3ocus":
        return ScoreTopKStrategy(name, SCORE_STRATEGIES[name])
    if name == "f3ocus":
        return F3ocusStrategy(selection or SelectionConfig(), seed)
    if name == "full":
        return FullStrategy()
    if name == "first_k":
        return FirstKStrategy()
    if name == "last_k":
        return LastKStrategy()
    if name == "random":
        return RandomStrategy(seed)
    raise ValueError(f"unknown selection strategy {name!r}")
