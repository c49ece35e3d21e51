"""Layer importance on the clients: LNTK principal eigenvalues and the baselines' saliencies.

`score_units(model, space, data, method=...)` is the engine's entry point; `score_problem` the
model-agnostic one (units as parameter-name groups). `METHODS` lists the method names.
"""

from f3ocus_ray.models.split import PrefixSplit, find_prefix_split, register_prefix_split
from f3ocus_ray.scoring.api import (
    METHODS,
    UnitScores,
    normalise,
    score_problem,
    score_units,
    select_samples,
)
from f3ocus_ray.scoring.lanczos import TopEigen, dense_top_eigenvalue, top_eigenvalue
from f3ocus_ray.scoring.problem import MODES, LossFn, ScoringProblem

__all__ = [
    "METHODS",
    "MODES",
    "LossFn",
    "PrefixSplit",
    "ScoringProblem",
    "TopEigen",
    "UnitScores",
    "dense_top_eigenvalue",
    "find_prefix_split",
    "normalise",
    "register_prefix_split",
    "score_problem",
    "score_units",
    "select_samples",
    "top_eigenvalue",
]
