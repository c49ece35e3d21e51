"""Model families, unit modes and the LayerSpace (selectable units <-> parameter names).

`registry` (the families), `spec` (ModelSpec) and `units` (the unit modes' registry) import
no torch, so the config can read them; the names below load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ModelSpec": "spec",
    "build_model": "families",
    "LayerSpace": "layer_space",
    "Unit": "layer_space",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"f3ocus_ray.models.{_EXPORTS[name]}"), name)
