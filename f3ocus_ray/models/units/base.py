"""What a unit mode is, and the one registry of them (PEFT's `register_peft_method` way).

A family builds its backbone and describes where its blocks are (`UnitSite`); the unit mode
injects what it trains into the model (adapters, LoRA matrices, a prompt), names its units (the
`LayerSpace`) and says which families it runs on and how many units it has. A method that keeps
client-only state or trains with its own local loss (FedDAT) brings a `ClientMethod`; the
others use the default one, which does nothing.

No torch at import time (the config reads the registry): a mode imports torch and its modules
inside its methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from f3ocus_ray.models.client_method import ClientMethod

if TYPE_CHECKING:
    from torch import nn

    from f3ocus_ray.models.layer_space import LayerSpace
    from f3ocus_ray.models.spec import ModelSpec


@dataclass(frozen=True)
class UnitKinds:
    """How one family names the kinds of parameters a unit mode picks inside its blocks."""

    layernorm: str  # substring of its blocks' norm parameters (e.g. "LayerNorm", "layer_norm")
    lora_targets: tuple[str, ...]  # the linear layers LoRA adapts (e.g. ("query", "value"))


@dataclass(frozen=True)
class UnitSite:
    """Where a built backbone's selectable blocks are: what a unit mode injects into and names."""

    blocks_path: str  # the blocks' nn.ModuleList in the model, e.g. "net.vilt.encoder.layer"
    hidden_size: int  # their residual stream's width
    kinds: UnitKinds
    head: tuple[str, ...]  # parameter-name prefixes of the head, trained by every client


class UnitMode:
    """A unit mode. Subclasses set `name` and `label`, and override what differs: by default a
    unit is a whole block (`{blocks_path}.{i}.`) and nothing is injected."""

    name: ClassVar[str]
    label: ClassVar[str]  # the method when every unit trains (strategy full), for the tables
    families: ClassVar[frozenset[str] | None] = None  # the families it runs on; None: all
    unit_suffix: ClassVar[str] = ""  # what follows a block's prefix in its unit's names

    def unsupported(self, family: str) -> str | None:
        """Why this mode cannot run on `family`, or None."""
        if self.families is not None and family not in self.families:
            names = ", ".join(sorted(self.families))
            return f"'{self.name}' ({self.label}) is implemented for {names} only"
        return None

    def unit_names(self, num_layers: int) -> list[str]:
        """The units' display names (the driver's columns), one per block by default."""
        return [f"layer{i}" for i in range(num_layers)]

    def num_units(self, num_layers: int) -> int:
        return len(self.unit_names(num_layers))

    def text_positions(self, spec: ModelSpec) -> int:
        """Text positions the mode adds to the model's input (PromptFL's prompt tokens)."""
        return 0

    def inject(self, model: nn.Module, site: UnitSite, spec: ModelSpec, seed: int) -> nn.Module:
        """Add what the mode trains, in place (or wrap: return the model to use). New weights
        come from `seed`, or from torch's generator as the family's builder left it."""
        return model

    def unit_filter(self, site: UnitSite) -> str | None:
        """A substring that picks, inside a unit's prefix, the parameters it trains."""
        return None

    def unit_prefixes(self, model: nn.Module, site: UnitSite) -> list[str]:
        blocks = model.get_submodule(site.blocks_path)
        return [f"{site.blocks_path}.{i}.{self.unit_suffix}" for i in range(len(blocks))]

    def space(self, model: nn.Module, site: UnitSite) -> LayerSpace:
        from f3ocus_ray.models.layer_space import LayerSpace

        return LayerSpace.from_prefixes(
            model,
            unit_prefixes=self.unit_prefixes(model, site),
            unit_filter=self.unit_filter(site),
            head_prefixes=list(site.head),
        )

    def attach(
        self, model: nn.Module, site: UnitSite, spec: ModelSpec
    ) -> tuple[nn.Module, LayerSpace]:
        """Inject (weights from `spec.init_seed + 1`), then name the units: what a family calls."""
        model = self.inject(model, site, spec, spec.init_seed + 1)
        return model, self.space(model, site)

    def client_method(self, model: nn.Module, space: LayerSpace, spec: ModelSpec) -> ClientMethod:
        return ClientMethod()


_MODES: dict[str, UnitMode] = {}


def register_unit_mode(mode: UnitMode | type[UnitMode]) -> Any:
    """Register a unit mode (an instance, or a class: usable as a decorator); returns it."""
    instance = mode() if isinstance(mode, type) else mode
    if instance.name in _MODES:
        raise ValueError(f"unit mode {instance.name!r} is already registered")
    _MODES[instance.name] = instance
    return mode


def unregister_unit_mode(name: str) -> None:
    _MODES.pop(name, None)


def unit_mode_names() -> tuple[str, ...]:
    return tuple(_MODES)


def get_unit_mode(name: str) -> UnitMode:
    try:
        return _MODES[name]
    except KeyError:
        raise ValueError(f"unknown unit mode {name!r}; choose from {unit_mode_names()}") from None
