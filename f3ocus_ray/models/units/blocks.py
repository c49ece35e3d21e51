"""The per-block unit modes: a unit is a whole block, its bottleneck adapter, its LoRA matrices,
its LayerNorms or its biases (full fine-tuning and the PEFT baselines of every family)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from f3ocus_ray.models.registry import FAMILIES
from f3ocus_ray.models.units.base import UnitMode, UnitSite

if TYPE_CHECKING:
    from torch import nn

    from f3ocus_ray.models.spec import ModelSpec


class Layers(UnitMode):
    name = "layers"
    label = "full fine-tuning"


class Adapters(UnitMode):
    """A bottleneck adapter after each block (`f3ocus_ray.models.adapters`)."""

    name = "adapters"
    label = "adapters (all layers)"
    unit_suffix = "adapter."

    def inject(self, model: nn.Module, site: UnitSite, spec: ModelSpec, seed: int) -> nn.Module:
        from f3ocus_ray.models.adapters import add_bottleneck_adapters

        blocks = model.get_submodule(site.blocks_path)
        add_bottleneck_adapters(blocks, site.hidden_size, spec.adapter_reduction, seed)
        return model


class Lora(UnitMode):
    """LoRA matrices (through peft) on the blocks' `kinds.lora_targets` linears only."""

    name = "lora"
    label = "LoRA"

    def inject(self, model: nn.Module, site: UnitSite, spec: ModelSpec, seed: int) -> nn.Module:
        from f3ocus_ray.models.adapters import add_lora

        names = "|".join(re.escape(t) for t in site.kinds.lora_targets)
        # peft full-matches a string target against module names: only these blocks' linears
        blocks = re.escape(site.blocks_path)
        add_lora(model, spec.lora_rank, rf"{blocks}\.\d+\.(.*\.)?({names})", seed)
        return model

    def unit_filter(self, site: UnitSite) -> str | None:
        return "lora_"


class LayerNorm(UnitMode):
    name = "layernorm"
    label = "LayerNorm tuning"

    def unit_filter(self, site: UnitSite) -> str | None:
        return site.kinds.layernorm


class Bias(UnitMode):
    name = "bias"
    label = "bias tuning"

    def unsupported(self, family: str) -> str | None:
        if family in FAMILIES and not FAMILIES[family].block_biases:
            return f"'bias': {family}'s blocks have no bias parameters"
        return None

    def unit_filter(self, site: UnitSite) -> str | None:
        return ".bias"
