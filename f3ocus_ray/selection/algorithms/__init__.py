"""The built-in selection algorithms, one module each, registered here in one table.

The five population meta-heuristics of the paper (``nsga2``, ``abc``, ``aco``, ``sa``,
``mopso``) run in the pymoo frame (:mod:`f3ocus_ray.selection.base`); ``exact`` (the
epsilon-constraint MILP, small instances) and ``optuna`` (Optuna's NSGA-II sampler, a library
baseline) are runners of their own. Adding an algorithm: its module here, imported and
registered below with one :func:`~f3ocus_ray.selection.registry.register_algorithm` call (the
registration order is the order of :data:`ALGORITHMS`).
"""

from ..registry import algorithm_names, meta_heuristic_names, register_algorithm
from .annealing import MultiObjectiveAnnealing, SAParams
from .ant_colony import ACOParams, AntColony
from .bee_colony import ABCParams, BeeColony
from .exact import ExactParams, run_exact
from .nsga2 import NSGA2Params, SelectionNSGA2
from .optuna_baseline import OptunaParams, run_optuna
from .particle_swarm import BinaryMOPSO, MOPSOParams

register_algorithm("nsga2", NSGA2Params, pymoo=SelectionNSGA2, meta_heuristic=True)
register_algorithm("abc", ABCParams, pymoo=BeeColony, meta_heuristic=True)
register_algorithm("aco", ACOParams, pymoo=AntColony, meta_heuristic=True)
register_algorithm("sa", SAParams, pymoo=MultiObjectiveAnnealing, meta_heuristic=True)
register_algorithm("mopso", MOPSOParams, pymoo=BinaryMOPSO, meta_heuristic=True)
register_algorithm("exact", ExactParams, run=run_exact)
register_algorithm("optuna", OptunaParams, run=run_optuna)

#: the built-in algorithms, the five meta-heuristics first (the live registry, with any
#: algorithm registered later: ``algorithm_names()``)
ALGORITHMS: tuple[str, ...] = algorithm_names()
#: the paper's five multi-objective meta-heuristics (live: ``meta_heuristic_names()``)
META_HEURISTICS: tuple[str, ...] = meta_heuristic_names()
