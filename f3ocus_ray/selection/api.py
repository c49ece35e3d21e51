"""The one entry point: :func:`select` (and :func:`solve`, the front without the pick)."""

from __future__ import annotations

import difflib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .pareto import PICK_RULES, hypervolume_ratio, non_dominated, pick_index, reference_point
from .problem import BudgetMode, SelectionError, SelectionProblem

#: every algorithm :func:`select` knows, the five meta-heuristics first
ALGORITHMS: tuple[str, ...] = ("nsga2", "abc", "aco", "sa", "mopso", "exact", "optuna")
#: the paper's five multi-objective meta-heuristics
META_HEURISTICS: tuple[str, ...] = ALGORITHMS[:5]
#: the termination used when none is given: 20,000 mask evaluations
DEFAULT_TERMINATION: tuple[str, int] = ("n_eval", 20_000)
TERMINATION_KINDS: tuple[str, ...] = ("n_eval", "n_evals", "n_gen", "time")


def params_class(algorithm: str) -> type:
    """The frozen parameter dataclass of an algorithm (fields = valid ``params`` names)."""
    from .annealing import SAParams
    from .ant_colony import ACOParams
    from .bee_colony import ABCParams
    from .exact import ExactParams
    from .nsga2 import NSGA2Params
    from .optuna_baseline import OptunaParams
    from .particle_swarm import MOPSOParams

    table: dict[str, type] = {
        "nsga2": NSGA2Params,
        "abc": ABCParams,
        "aco": ACOParams,
        "sa": SAParams,
        "mopso": MOPSOParams,
        "exact": ExactParams,
        "optuna": OptunaParams,
    }
    _check_algorithm(algorithm)
    return table[algorithm]


def _hint(name: object, valid: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest valid name, or an empty string."""
    text = str(name)
    close = difflib.get_close_matches(text, valid, n=1, cutoff=0.5)
    if not close:
        close = [v for v in valid if v.startswith(text) or text.startswith(v)][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        hint = _hint(algorithm, ALGORITHMS)
        raise SelectionError(
            f"unknown selection algorithm {algorithm!r}{hint}; valid: {list(ALGORITHMS)}"
        )


def make_params(algorithm: str, params: Any = None) -> Any:
    """Validate ``params`` (``None``, a mapping or the algorithm's dataclass) into the
    algorithm's frozen dataclass. Unknown names raise :class:`SelectionError` listing the
    valid ones."""
    cls = params_class(algorithm)
    if params is None:
        return cls()
    if isinstance(params, cls):
        return params
    if not isinstance(params, Mapping):
        raise SelectionError(
            f"params for {algorithm!r} must be a mapping or {cls.__name__}, "
            f"got {type(params).__name__}"
        )
    valid = [f.name for f in fields(cls)]
    for key in params:
        if key not in valid:
            hint = _hint(key, valid)
            raise SelectionError(
                f"unknown parameter {key!r} for algorithm {algorithm!r}{hint}; valid: {valid}"
            )
    try:
        return cls(**dict(params))
    except TypeError as exc:  # pragma: no cover - names are checked above
        raise SelectionError(f"bad params for {algorithm!r}: {exc}") from None


def make_termination(termination: Any = None):
    """A pymoo termination from ``None`` (the default), a pymoo ``Termination`` or a tuple
    ``("n_eval", X)`` / ``("n_gen", X)`` / ``("time", seconds)``."""
    from pymoo.core.termination import Termination
    from pymoo.termination import get_termination

    if termination is None:
        termination = DEFAULT_TERMINATION
    if isinstance(termination, Termination):
        return termination
    if (
        not isinstance(termination, tuple | list)
        or len(termination) != 2
        or termination[0] not in TERMINATION_KINDS
    ):
        raise SelectionError(
            f"termination must be a pymoo Termination or a pair (kind, value) with kind in "
            f"{list(TERMINATION_KINDS)}, got {termination!r}"
        )
    kind, value = termination
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise SelectionError(f"termination value must be a positive number, got {value!r}")
    if kind == "time":
        return get_termination("time", float(value))
    return get_termination(kind, int(value))


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
    _check_algorithm(algorithm)
    p = make_params(algorithm, params)
    start = time.perf_counter()
    complete = True
    if algorithm == "exact":
        from .exact import exact_front

        ef = exact_front(problem, p)
        masks, F, n_evals, complete = ef.masks, ef.F, ef.n_solves, ef.complete
    elif algorithm == "optuna":
        from .optuna_baseline import run_optuna

        masks, F, n_evals = run_optuna(problem, p, termination=termination, seed=seed)
    else:
        from pymoo.optimize import minimize

        from .base import PymooSelection

        algo, encoding = _build(algorithm, p, seed)
        res = minimize(
            PymooSelection(problem, encoding),
            algo,
            make_termination(termination),
            seed=seed,
            copy_algorithm=False,
        )
        masks = np.asarray(res.X, dtype=bool).reshape((-1,) + problem.shape)
        F = np.asarray(res.F, dtype=np.float64).reshape(-1, 2)
        n_evals = int(algo.evaluator.n_eval)
    seconds = time.perf_counter() - start
    keep = non_dominated(F)
    masks, F = masks[keep], F[keep]
    problem.check_feasible(masks)
    return Front(masks, F, int(n_evals), seconds, algorithm, complete)


def _build(algorithm: str, params: Any, seed: int):
    if algorithm == "nsga2":
        from .nsga2 import SelectionNSGA2

        return SelectionNSGA2(params, seed=seed), "mask"
    if algorithm == "abc":
        from .bee_colony import BeeColony

        return BeeColony(params, seed=seed), "mask"
    if algorithm == "aco":
        from .ant_colony import AntColony

        return AntColony(params, seed=seed), "mask"
    if algorithm == "sa":
        from .annealing import MultiObjectiveAnnealing

        return MultiObjectiveAnnealing(params, seed=seed), "mask"
    from .particle_swarm import BinaryMOPSO

    return BinaryMOPSO(params, seed=seed), "mask"


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
        algorithm: one of :data:`ALGORITHMS`.
        budget_mode: ``"exact"`` (each client trains exactly ``k_i`` units) or ``"at_most"``.
        pick: the rule that takes one solution from the front, one of
            :data:`~.pareto.PICK_RULES` (default ``"knee"``).
        pick_param: the rule's parameter (see :func:`~.pareto.pick_index`; defaults in
            :data:`~.pareto.DEFAULT_PICK_PARAMS`).
        seed: the random seed; the same seed gives bitwise-identical masks (except with a
            time-based termination).
        termination: ``("n_eval", X)``, ``("n_gen", X)``, ``("time", seconds)`` or a pymoo
            ``Termination``; default :data:`DEFAULT_TERMINATION`. Ignored by ``exact``.
        params: the algorithm's parameters: a mapping of field names or its dataclass
            (see :func:`params_class`).
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
        from .pareto import hypervolume

        hv, ratio = hypervolume(front.F, ref_pt), None
    else:
        ref_F = _reference_F(reference)
        ratio, hv, ref_pt = hypervolume_ratio(front.F, ref_F)
    from .pareto import DEFAULT_PICK_PARAMS

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


def _reference_F(reference: Any) -> np.ndarray:
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
