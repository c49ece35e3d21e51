"""The one entry point: :func:`select` (and :func:`solve`, the front without the pick).

The algorithm is looked up by name in :mod:`.registry`; this module runs it, filters its
result to the non-dominated front, checks every mask against the budgets, and picks one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .pareto import (
    DEFAULT_PICK_PARAMS,
    PICK_RULES,
    hypervolume,
    hypervolume_ratio,
    non_dominated,
    pick_index,
    reference_point,
)
from .problem import BudgetMode, SelectionError, SelectionProblem
from .registry import get_algorithm, make_params


@dataclass(frozen=True, eq=False)
class Front:
    """What an algorithm found: the non-dominated masks and their objectives."""

    masks: np.ndarray  # (F, N, L) bool, by importance descending
    F: np.ndarray  # (F, 2) minimisation objectives (-importance, variance)
    n_evals: int
    seconds: float
    algorithm: str
    complete: bool = True  # False only for an exact front cut short by its time limit


def solve(
    problem: SelectionProblem,
    algorithm: str = "nsga2",
    *,
    seed: int = 0,
    termination: Any = None,
    params: Any = None,
) -> Front:
    """Run one algorithm on a problem; returns its non-dominated front.

    Every returned mask is checked against the budgets (a violation is a bug and raises).
    """
    entry = get_algorithm(algorithm)
    p = make_params(algorithm, params)
    start = time.perf_counter()
    found = entry.run(problem, p, seed=seed, termination=termination)
    seconds = time.perf_counter() - start
    masks = np.asarray(found.masks, dtype=bool)
    F = np.asarray(found.F, dtype=np.float64)
    keep = non_dominated(F)
    masks, F = masks[keep], F[keep]
    problem.check_feasible(masks)
    return Front(masks, F, int(found.n_evals), seconds, algorithm, bool(found.complete))


@dataclass(frozen=True, eq=False)
class SelectionResult:
    """The outcome of :func:`select`.

    Attributes:
        mask: the picked mask, (N, L) bool.
        importance, variance: the picked mask's objectives.
        front_masks: the non-dominated masks found, (F, N, L) bool, importance descending.
        front_importance, front_variance: their objectives, (F,) each.
        pick_index: the index of the picked mask in the front.
        topk_mask, topk_importance, topk_variance: client-only top-k and its objectives.
        hypervolume: the front's hypervolume in (-importance, variance) against
            ``reference_point``.
        reference_point: the stated HV reference point: the reference front's worst corner
            pushed out by 10% of its range in each objective (the reference front is the one
            passed as ``reference``, else this front).
        hv_ratio: ``hypervolume / hypervolume(reference)``; ``None`` without a reference.
        n_evals: mask evaluations (MILP solves for ``exact``).
        seconds: wall seconds of the search.
    """

    mask: np.ndarray
    importance: float
    variance: float
    front_masks: np.ndarray
    front_importance: np.ndarray
    front_variance: np.ndarray
    pick_index: int
    topk_mask: np.ndarray
    topk_importance: float
    topk_variance: float
    hypervolume: float
    reference_point: np.ndarray
    hv_ratio: float | None
    n_evals: int
    seconds: float
    algorithm: str
    budget_mode: str
    pick: str
    pick_param: float | None
    seed: int
    complete: bool = True

    @property
    def front_F(self) -> np.ndarray:
        """The front as minimisation objectives (F, 2): ``(-importance, variance)``."""
        return np.column_stack([-self.front_importance, self.front_variance])

    def metrics(self) -> dict[str, float]:
        """Flat numeric metrics (e.g. for ``mlflow.log_metrics``); ``hv_ratio`` only when a
        reference front was given."""
        out = {
            "importance": self.importance,
            "variance": self.variance,
            "topk_importance": self.topk_importance,
            "topk_variance": self.topk_variance,
            "importance_vs_topk": self.importance / self.topk_importance
            if self.topk_importance > 0
            else 1.0,
            "units_covered": float((self.mask.sum(axis=0) > 0).sum()),
            "topk_units_covered": float((self.topk_mask.sum(axis=0) > 0).sum()),
            "front_size": float(len(self.front_importance)),
            "hypervolume": self.hypervolume,
            "n_evals": float(self.n_evals),
            "seconds": self.seconds,
        }
        if self.hv_ratio is not None:
            out["hv_ratio"] = self.hv_ratio
        return out


def select(
    scores: Any,
    budgets: Any,
    *,
    algorithm: str = "nsga2",
    budget_mode: BudgetMode | str = "exact",
    pick: str = "knee",
    pick_param: float | None = None,
    seed: int = 0,
    termination: Any = None,
    params: Any = None,
    reference: Any = None,
) -> SelectionResult:
    """Choose each client's units from scores and budgets.

    Args:
        scores: (N, L) non-negative importance scores.
        budgets: one integer or N integers, ``1 <= k_i <= L``.
        algorithm: a registered algorithm (:func:`~.registry.algorithm_names`; the built-in
            ones are :data:`~.algorithms.ALGORITHMS`).
        budget_mode: ``"exact"`` (each client trains exactly ``k_i`` units) or ``"at_most"``.
        pick: the rule that takes one solution from the front, one of
            :data:`~.pareto.PICK_RULES` (default ``"knee"``).
        pick_param: the rule's parameter (see :func:`~.pareto.pick_index`; defaults in
            :data:`~.pareto.DEFAULT_PICK_PARAMS`).
        seed: the random seed; the same seed gives bitwise-identical masks (except with a
            time-based termination).
        termination: ``("n_eval", X)``, ``("n_gen", X)``, ``("time", seconds)`` or a pymoo
            ``Termination``; default :data:`~.termination.DEFAULT_TERMINATION`. Ignored by
            ``exact``.
        params: the algorithm's parameters: a mapping of field names or its dataclass
            (see :func:`~.registry.params_class`).
        reference: a reference front for the hypervolume ratio: a (F, 2) array of
            minimisation objectives, a :class:`SelectionResult` or a :class:`Front`.

    Raises:
        SelectionError: for impossible inputs (budgets, scores, names, parameters).
    """
    if pick not in PICK_RULES:
        raise SelectionError(f"pick must be one of {list(PICK_RULES)}, got {pick!r}")
    problem = SelectionProblem(scores, budgets, budget_mode)
    front = solve(problem, algorithm, seed=seed, termination=termination, params=params)
    topk = problem.client_topk()
    f_topk = problem.evaluate(topk)
    imp, var = -front.F[:, 0], front.F[:, 1]
    idx = pick_index(
        imp,
        var,
        pick,
        pick_param,
        topk_importance=float(-f_topk[0]),
        topk_variance=float(f_topk[1]),
    )
    if reference is None:
        ref_F = np.concatenate([front.F, f_topk[None]])
        ref_F = ref_F[non_dominated(ref_F)]
        ref_pt = reference_point(ref_F)
        hv, ratio = hypervolume(front.F, ref_pt), None
    else:
        ref_F = reference_objectives(reference)
        ratio, hv, ref_pt = hypervolume_ratio(front.F, ref_F)

    return SelectionResult(
        mask=front.masks[idx].copy(),
        importance=float(imp[idx]),
        variance=float(var[idx]),
        front_masks=front.masks,
        front_importance=imp,
        front_variance=var,
        pick_index=idx,
        topk_mask=topk,
        topk_importance=float(-f_topk[0]),
        topk_variance=float(f_topk[1]),
        hypervolume=float(hv),
        reference_point=ref_pt,
        hv_ratio=None if ratio is None else float(ratio),
        n_evals=front.n_evals,
        seconds=front.seconds,
        algorithm=algorithm,
        budget_mode=problem.budget_mode,
        pick=pick,
        pick_param=DEFAULT_PICK_PARAMS[pick] if pick_param is None else float(pick_param),
        seed=seed,
        complete=front.complete,
    )


def reference_objectives(reference: Any) -> np.ndarray:
    """A reference front as (F, 2) minimisation objectives ``(-importance, variance)``, from a
    :class:`SelectionResult`, a :class:`Front` or such an array."""
    if isinstance(reference, SelectionResult):
        return reference.front_F
    if isinstance(reference, Front):
        return reference.F
    arr = np.asarray(reference, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
        raise SelectionError(
            f"reference must be a (F, 2) array of (-importance, variance), got shape {arr.shape}"
        )
    return arr
