"""PromptFL (unit mode `prompt`): one unit, the learnable text prompt (see
`f3ocus_ray.models.promptfl`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from f3ocus_ray.models.units.base import UnitMode, UnitSite

if TYPE_CHECKING:
    from torch import nn

    from f3ocus_ray.models.spec import ModelSpec


class Prompt(UnitMode):
    name = "prompt"
    label = "PromptFL"
    families = frozenset({"tiny-vilt"})

    def unit_names(self, num_layers: int) -> list[str]:
        return ["prompt"]

    def text_positions(self, spec: ModelSpec) -> int:
        return spec.prompt_length  # the prompt tokens join the text sequence

    def inject(self, model: nn.Module, site: UnitSite, spec: ModelSpec, seed: int) -> nn.Module:
        """The prompt is drawn from torch's generator as the family's seeded build left it."""
        from f3ocus_ray.models.promptfl import PromptedVisionLanguageClassifier

        return PromptedVisionLanguageClassifier(
            model.net, spec.prompt_length, spec.initializer_range
        )

    def unit_prefixes(self, model: nn.Module, site: UnitSite) -> list[str]:
        return ["prompt"]
