"""Server-side layer selection (F3OCUS Step 2): scores and budgets in, masks out.

Pure numpy (plus pymoo, scipy and optionally Optuna): no torch, no Ray.

>>> import numpy as np
>>> from f3ocus_ray.selection import select
>>> scores = np.random.default_rng(0).random((5, 32))
>>> res = select(scores, 4, algorithm="nsga2", termination=("n_eval", 2000), seed=0)
>>> res.mask.shape, bool(res.mask.sum(axis=1).tolist() == [4] * 5)
((5, 32), True)

The single entry point is :func:`select`; :func:`solve` returns a front without the pick.
Algorithms (:data:`ALGORITHMS`): the five multi-objective meta-heuristics ``nsga2``,
``abc``, ``aco``, ``sa``, ``mopso``; ``exact`` (epsilon-constraint MILP, small instances);
``optuna`` (Optuna's NSGA-II sampler, a library baseline). Each has a frozen parameter
dataclass (:func:`params_class`); unknown parameter names raise :class:`SelectionError`.

Layout: ``problem`` (scores, budgets, vectorised objectives), ``pareto`` (non-dominated
filtering, archive, hypervolume, pick rules), ``operators`` (budget-respecting sampling,
recombination, moves, repair, random keys), ``base`` (the pymoo frame: problem, archive,
operator adapters), one module per algorithm (``nsga2``, ``bee_colony``, ``ant_colony``,
``annealing``, ``particle_swarm``, ``exact``, ``optuna_baseline``), ``plot`` (PNG of the
front), ``synthetic`` (score matrices for tests and benchmarks), ``api`` (this entry point).
"""

from .annealing import SAParams
from .ant_colony import ACOParams
from .api import (
    ALGORITHMS,
    DEFAULT_TERMINATION,
    META_HEURISTICS,
    Front,
    SelectionResult,
    make_params,
    make_termination,
    params_class,
    select,
    solve,
)
from .base import CommonParams
from .bee_colony import ABCParams
from .exact import ExactParams, enumerate_front, exact_front
from .nsga2 import NSGA2Params
from .optuna_baseline import OptunaParams
from .pareto import (
    DEFAULT_PICK_PARAMS,
    PICK_RULES,
    hypervolume,
    hypervolume_ratio,
    non_dominated,
    pick_index,
    reference_point,
)
from .particle_swarm import MOPSOParams
from .plot import pareto_plot_png
from .problem import BUDGET_MODES, SelectionError, SelectionProblem

__all__ = [
    "ABCParams",
    "ACOParams",
    "ALGORITHMS",
    "BUDGET_MODES",
    "CommonParams",
    "DEFAULT_PICK_PARAMS",
    "DEFAULT_TERMINATION",
    "ExactParams",
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
    "enumerate_front",
    "exact_front",
    "hypervolume",
    "hypervolume_ratio",
    "make_params",
    "make_termination",
    "non_dominated",
    "pareto_plot_png",
    "params_class",
    "pick_index",
    "reference_point",
    "select",
    "solve",
]
