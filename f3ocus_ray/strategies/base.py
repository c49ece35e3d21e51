"""The server's seam, Flower's way: a `Strategy` decides what each client trains, when the
clients score their units, and how their updates are aggregated.

`select` returns a `Selection`: the masks (clients x units, bool) and what the method wants
logged (F3OCUS: its Pareto front, hypervolume and pick). The round reads nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from f3ocus_ray.strategies.aggregation import masked_fedavg

SCHEDULES = ("off", "every_round", "once", "every_k")


def scores_due(schedule: str, every_k: int, round_idx: int) -> bool:
    """Whether a scoring `schedule` computes scores in (0-based) round `round_idx`."""
    if schedule == "off":
        return False
    if schedule == "once":
        return round_idx == 0
    if schedule == "every_k":
        return round_idx % every_k == 0
    return True


@dataclass(frozen=True)
class Selection:
    """What a strategy chose this round: the masks, and its own result for logging."""

    masks: np.ndarray  # (clients, units) bool
    info: Any = None  # F3OCUS: the selection.SelectionResult (front, hypervolume, pick)

    def metrics(self, scores: np.ndarray | None) -> dict[str, float]:
        out: dict[str, float] = {}
        if scores is not None:
            out["importance"] = float((self.masks * scores).sum())
        if self.info is not None:
            out.update(
                hypervolume=float(self.info.hypervolume),
                front_size=float(len(self.info.front_masks)),
                evaluations=float(self.info.n_evals),
                seconds=float(self.info.seconds),
                topk_importance=float(self.info.topk_importance),
                topk_usage_variance=float(self.info.topk_variance),
            )
        return out

    def figure_png(self, title: str) -> bytes | None:
        """The Pareto front with the pick and client-only top-k (strategies with a front)."""
        if self.info is None:
            return None
        from f3ocus_ray.selection import pareto_plot_png

        return pareto_plot_png(self.info, title=title)


class Strategy:
    """Base strategy: subclasses implement `select`; scoring and aggregation have defaults.

    `scorer` is the scoring method whose per-client scores `select` needs (None: none). The
    clients score when the schedule says so (`schedule`, `every_k`; see `scores_due`).
    """

    needs_scores: ClassVar[bool] = False

    def __init__(
        self,
        *,
        name: str = "",
        seed: int = 0,
        scorer: str | None = None,
        schedule: str = "off",
        every_k: int = 1,
        selection: Any = None,
    ):
        self.name = name or type(self).__name__
        self.seed = seed
        self.scorer = scorer
        self.schedule = schedule
        self.every_k = every_k
        self.selection = selection  # the server's refinement settings (F3OCUS)

    def scores_due(self, round_idx: int) -> bool:
        return scores_due(self.schedule, self.every_k, round_idx)

    def select(
        self,
        round_idx: int,
        budgets: np.ndarray,
        num_units: int,
        scores: np.ndarray | None = None,
    ) -> Selection:
        raise NotImplementedError

    def aggregate(
        self,
        state: Mapping[str, np.ndarray],
        updates: Sequence[tuple[Mapping[str, np.ndarray], int]],
    ) -> dict[str, np.ndarray]:
        """The new global state from (tensors, samples) per client, in client order."""
        return masked_fedavg(state, updates)


def check_budgets(budgets: np.ndarray, num_units: int) -> np.ndarray:
    budgets = np.asarray(budgets, dtype=np.int64)
    if budgets.ndim != 1 or (budgets < 1).any() or (budgets > num_units).any():
        raise ValueError(f"budgets must lie in [1, {num_units}], got {budgets.tolist()}")
    return budgets


def check_scores(scores: np.ndarray | None, budgets: np.ndarray, num_units: int) -> np.ndarray:
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
