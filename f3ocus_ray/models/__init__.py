"""Model builders and the LayerSpace (selectable units <-> parameter names)."""

from f3ocus_ray.models.build import ModelSpec, build_model
from f3ocus_ray.models.layer_space import LayerSpace, Unit

__all__ = ["LayerSpace", "ModelSpec", "Unit", "build_model"]
