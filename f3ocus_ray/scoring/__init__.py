"""Layer importance on the clients: LNTK principal eigenvalues and the baselines' saliencies.

`score_units(model, space, data, method=...)` is the engine's entry point; `score_problem` the
model-agnostic one (units as parameter-name groups). `registry` holds the method names; the
names below import torch on first use only, so the config can check a method without it.
"""

from __future__ import annotations

from f3ocus_ray.lazy import lazy_exports

_EXPORTS = {
    "METHODS": "api",
    "UnitScores": "api",
    "normalise": "api",
    "score_problem": "api",
    "score_units": "api",
    "select_samples": "api",
    "TopEigen": "lanczos",
    "dense_top_eigenvalue": "lanczos",
    "top_eigenvalue": "lanczos",
    "MODES": "problem",
    "LossFn": "problem",
    "ScoringProblem": "problem",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
