"""Server-side layer selection (F3OCUS Step 2): scores and budgets in, masks out.

Pure numpy (plus pymoo, scipy and optionally Optuna): no torch, no Ray.

>>> import numpy as np
>>> from f3ocus_ray.selection import select
>>> scores = np.random.default_rng(0).random((5, 32))
>>> res = select(scores, 4, algorithm="nsga2", termination=("n_eval", 2000), seed=0)
>>> res.mask.shape, bool(res.mask.sum(axis=1).tolist() == [4] * 5)
((5, 32), True)

The single entry point is :func:`select`; :func:`solve` returns a front without the pick.
Algorithms are looked up by name in one registry (:func:`algorithm_names`); the built-in ones
(:data:`ALGORITHMS`) are the five multi-objective meta-heuristics ``nsga2``, ``abc``, ``aco``,
``sa``, ``mopso`` (:data:`META_HEURISTICS`); ``exact`` (epsilon-constraint MILP, small
instances) and ``optuna`` (Optuna's NSGA-II sampler, a library baseline). Each has a frozen
parameter dataclass (:func:`params_class`); unknown algorithm or parameter names raise
:class:`SelectionError`. :func:`register_algorithm` adds one.

Layout: ``problem`` (scores, budgets, vectorised objectives), ``pareto`` (non-dominated
filtering, archive, hypervolume, pick rules), ``operators`` (budget-respecting sampling,
recombination, moves, repair, random keys), ``base`` (the pymoo frame: problem, archive,
operator adapters), ``termination`` (the ``(kind, value)`` pairs), ``registry`` (name ->
parameters and runner), ``algorithms`` (one module per algorithm: ``nsga2``, ``bee_colony``,
``ant_colony``, ``annealing``, ``particle_swarm``, ``exact``, ``optuna_baseline``; registered
there), ``api`` (this entry point), ``plot`` (PNG of the front), ``synthetic`` (score matrices
for tests and benchmarks).
"""

from .algorithms import (
    ALGORITHMS,
    META_HEURISTICS,
    ABCParams,
    ACOParams,
    MOPSOParams,
    NSGA2Params,
    OptunaParams,
    SAParams,
)
from .algorithms.exact import ExactParams, enumerate_front, exact_front
from .api import Front, SelectionResult, select, solve
from .base import CommonParams
from .pareto import (
    DEFAULT_PICK_PARAMS,
    PICK_RULES,
    hypervolume,
    hypervolume_ratio,
    non_dominated,
    pick_index,
    reference_point,
)
from .plot import pareto_plot_png
from .problem import BUDGET_MODES, SelectionError, SelectionProblem
from .registry import (
    AlgorithmEntry,
    Found,
    algorithm_names,
    get_algorithm,
    make_params,
    meta_heuristic_names,
    params_class,
    register_algorithm,
    unregister_algorithm,
)
from .termination import DEFAULT_TERMINATION, make_termination

__all__ = [
    "ABCParams",
    "ACOParams",
    "ALGORITHMS",
    "AlgorithmEntry",
    "BUDGET_MODES",
    "CommonParams",
    "DEFAULT_PICK_PARAMS",
    "DEFAULT_TERMINATION",
    "ExactParams",
    "Found",
    "Front",
    "META_HEURISTICS",
    "MOPSOParams",
    "NSGA2Params",
    "OptunaParams",
    "PICK_RULES",
    "SAParams",
    "SelectionError",
    "SelectionProblem",
    "SelectionResult",
    "algorithm_names",
    "enumerate_front",
    "exact_front",
    "get_algorithm",
    "hypervolume",
    "hypervolume_ratio",
    "make_params",
    "make_termination",
    "meta_heuristic_names",
    "non_dominated",
    "pareto_plot_png",
    "params_class",
    "pick_index",
    "reference_point",
    "register_algorithm",
    "select",
    "solve",
    "unregister_algorithm",
]
