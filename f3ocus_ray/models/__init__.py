"""Model families, unit modes and the LayerSpace (selectable units <-> parameter names).

`registry` (the families), `spec` (ModelSpec) and `units` (the unit modes' registry) import
no torch, so the config can read them; the names below load on first use.
"""

from __future__ import annotations

from f3ocus_ray.lazy import lazy_exports

_EXPORTS = {
    "ModelSpec": "spec",
    "build_model": "families",
    "LayerSpace": "layer_space",
    "Unit": "layer_space",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
