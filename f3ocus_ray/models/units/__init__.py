"""The unit modes: what a client trains in each selectable unit, one registry (see `base`).

Adding a mode: a module with a `UnitMode` subclass and one `register_unit_mode` line below (or
anywhere before the config is read: the config checks the live registry).
"""

from f3ocus_ray.models.units.base import (
    ClientMethod,
    UnitKinds,
    UnitMode,
    UnitSite,
    get_unit_mode,
    register_unit_mode,
    unit_mode_names,
    unregister_unit_mode,
)
from f3ocus_ray.models.units.blocks import Adapters, Bias, LayerNorm, Layers, Lora
from f3ocus_ray.models.units.dual_adapters import DualAdapters
from f3ocus_ray.models.units.prompt import Prompt

register_unit_mode(Layers)
register_unit_mode(Adapters)
register_unit_mode(Lora)
register_unit_mode(LayerNorm)
register_unit_mode(Bias)
register_unit_mode(Prompt)
register_unit_mode(DualAdapters)

__all__ = [
    "ClientMethod",
    "UnitKinds",
    "UnitMode",
    "UnitSite",
    "get_unit_mode",
    "register_unit_mode",
    "unit_mode_names",
    "unregister_unit_mode",
]
