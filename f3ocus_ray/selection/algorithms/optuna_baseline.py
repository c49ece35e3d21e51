"""Optuna's multi-objective NSGA-II sampler on the same problem: a library baseline.

Optuna is given its best encoding for this problem: one float key in [0, 1] per client and
unit, decoded to each client's top-``k_i`` keys (:func:`.operators.decode_keys`), so every
trial is feasible. With ``seed_topk`` the first trial is client-only top-k (enqueued), as our
algorithms' first population holds it. Trials are evaluated one at a time (Optuna's ask/tell);
every evaluated mask enters the same non-dominated archive as our algorithms'.

Termination (a pair, parsed by :func:`~f3ocus_ray.selection.termination.termination_pair`):
``("n_eval", X)`` runs X trials, ``("n_gen", X)`` runs ``X * population_size`` trials and
``("time", s)`` stops after ``s`` seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import operators as ops
from ..base import check_bool, check_float, check_int
from ..pareto import ParetoArchive
from ..problem import SelectionError, SelectionProblem
from ..registry import Found
from ..termination import termination_pair


@dataclass(frozen=True)
class OptunaParams:
    """Optuna's ``NSGAIISampler``.

    Attributes:
        population_size: the sampler's population size.
        mutation_prob: per-parameter mutation probability (``None``: Optuna's default,
            ``1 / n_params``).
        crossover_prob: crossover probability.
        swapping_prob: uniform crossover swapping probability.
        seed_topk: enqueue client-only top-k as the first trial.
        archive_size: maximum size of the non-dominated archive.
    """

    population_size: int = 50
    mutation_prob: float | None = None
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5
    seed_topk: bool = True
    archive_size: int | None = 1000

    def __post_init__(self) -> None:
        check_int(self, "population_size", 2)
        if self.mutation_prob is not None:
            check_float(self, "mutation_prob", 0.0, 1.0)
        check_float(self, "crossover_prob", 0.0, 1.0)
        check_float(self, "swapping_prob", 0.0, 1.0)
        check_bool(self, "seed_topk")
        check_int(self, "archive_size", 2, allow_none=True)


def _trial_budget(termination: Any, params: OptunaParams) -> tuple[int | None, float | None]:
    """The trial count (or the timeout in seconds) of a termination pair."""
    from pymoo.core.termination import Termination

    if isinstance(termination, Termination):
        raise SelectionError(
            "the optuna baseline takes a termination pair (kind, value), not a pymoo Termination"
        )
    kind, value = termination_pair(termination)
    if kind == "time":
        return None, value
    if kind == "n_gen":
        return value * params.population_size, None
    return value, None


def run_optuna(
    problem: SelectionProblem,
    params: OptunaParams | None = None,
    *,
    termination: Any = None,
    seed: int = 0,
) -> Found:
    """The archive's masks (F, N, L) and objectives (F, 2), and the trial count."""
    import optuna

    params = params or OptunaParams()
    n_trials, timeout = _trial_budget(termination, params)
    N, L = problem.shape
    names = [f"x{i}_{j}" for i in range(N) for j in range(L)]
    sampler = optuna.samplers.NSGAIISampler(
        population_size=params.population_size,
        mutation_prob=params.mutation_prob,
        crossover_prob=params.crossover_prob,
        swapping_prob=params.swapping_prob,
        seed=seed,
    )
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        if params.seed_topk:
            keys = ops.encode_masks(problem.client_topk()).ravel()
            study.enqueue_trial(dict(zip(names, keys.tolist(), strict=True)))
        archive = ParetoArchive(params.archive_size)
        start = time.perf_counter()
        count = 0
        while True:
            if n_trials is not None and count >= n_trials:
                break
            if timeout is not None and time.perf_counter() - start >= timeout:
                break
            trial = study.ask()
            keys = np.array([trial.suggest_float(n, 0.0, 1.0) for n in names]).reshape(1, N, L)
            mask = ops.decode_keys(problem, keys)
            f = problem.evaluate_unchecked(mask)
            study.tell(trial, [float(-f[0, 0]), float(f[0, 1])])
            archive.add(mask.reshape(1, -1), f)
            count += 1
    finally:
        optuna.logging.set_verbosity(verbosity)
    return Found(archive.X.reshape(-1, N, L), archive.F, count)
