"""Layer importance on the clients: LNTK principal eigenvalues and the baselines' saliencies.

`score_units(model, space, data, method=...)` is the engine's entry point; `score_problem` the
model-agnostic one (units as parameter-name groups). `registry` holds the method names; the
names below import torch on first use only, so the config can check a method without it.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"f3ocus_ray.scoring.{_EXPORTS[name]}"), name)
