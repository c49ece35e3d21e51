"""FedDAT (unit mode `dual_adapters`): per block a shared adapter (the unit, averaged), a
client-specific one (private, never sent) and a frozen copy; a client method trains them with
mutual distillation (`f3ocus_ray.models.feddat`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from f3ocus_ray.models.client_method import ClientMethod
from f3ocus_ray.models.units.base import UnitMode, UnitSite

if TYPE_CHECKING:
    from torch import nn

    from f3ocus_ray.models.layer_space import LayerSpace
    from f3ocus_ray.models.spec import ModelSpec


class DualAdapters(UnitMode):
    name = "dual_adapters"
    label = "FedDAT"
    families = frozenset({"tiny-vilt"})
    unit_suffix = "adapter.shared."  # the private and frozen adapters never travel

    def inject(self, model: nn.Module, site: UnitSite, spec: ModelSpec, seed: int) -> nn.Module:
        from f3ocus_ray.models.adapters import add_bottleneck_adapters
        from f3ocus_ray.models.feddat import DualAdapter

        blocks = model.get_submodule(site.blocks_path)
        add_bottleneck_adapters(
            blocks, site.hidden_size, spec.adapter_reduction, seed, adapter=DualAdapter
        )
        return model

    def client_method(self, model: nn.Module, space: LayerSpace, spec: ModelSpec) -> ClientMethod:
        from f3ocus_ray.models.feddat import FedDATClient

        return FedDATClient(model, space, spec.distill_weight, spec.distill_temperature)
