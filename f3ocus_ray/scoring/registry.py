"""The one list of scoring methods: name -> the function that scores a `ScoringProblem`.

Each entry names its function as "module:attribute" and is imported on first use, so the config
can check a method name without importing torch. Adding a method is its function plus one
`register_scorer` line here (or a call from the caller's own module).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

_SCORERS: dict[str, str | Callable[..., Any]] = {}


def register_scorer(name: str, scorer: str | Callable[..., Any]) -> None:
    """Add a method: `scorer` is a function of a ScoringProblem, or its "module:attribute"."""
    if name in _SCORERS:
        raise ValueError(f"scoring method {name!r} is already registered")
    _SCORERS[name] = scorer


def unregister_scorer(name: str) -> None:
    _SCORERS.pop(name)


def scorer_names() -> tuple[str, ...]:
    return tuple(_SCORERS)


def scorer(name: str) -> Callable[..., Any]:
    """The scoring function of method `name` (imported on first use)."""
    try:
        entry = _SCORERS[name]
    except KeyError:
        raise ValueError(
            f"unknown scoring method {name!r}; choose from {', '.join(_SCORERS)}"
        ) from None
    if isinstance(entry, str):
        module, attribute = entry.split(":")
        entry = _SCORERS[name] = getattr(importlib.import_module(module), attribute)
    return entry


register_scorer("lntk", "f3ocus_ray.scoring.lntk:lntk")
for _name in (
    "grad_norm",
    "rgn",
    "snr",
    "fisher",
    "magnitude",
    "snip",
    "grasp",
    "synflow",
    "gradflow",
    "spt",
    "fedselect",
):
    register_scorer(_name, f"f3ocus_ray.scoring.saliency:{_name}")
