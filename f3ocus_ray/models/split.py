"""Frozen-prefix splits: run a model's frozen, non-vmappable front once, vmap only the rest.

Some models cannot be vmapped over samples end to end (ViLT's visual embedding interpolates
position embeddings per sample). When no scored parameter lives in that front part, its
outputs are constants: compute them once under no_grad and transform only the `body`.

A model provides a split either through a method `split_frozen_prefix(self) -> PrefixSplit`
or through `register_prefix_split(ModelType, factory)`. Models with neither are transformed
end to end (`model(*inputs)`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn


@dataclass(frozen=True)
class PrefixSplit:
    """`model(*inputs) == body(model, *prefix(*inputs))`, with `prefix` reading only frozen
    parameters (`prefix_params`) and `body` free of per-sample Python control flow."""

    prefix: Callable[..., tuple[Tensor, ...]]
    body: Callable[..., Tensor]
    prefix_params: frozenset[str]


_FACTORIES: dict[type, Callable[[nn.Module], PrefixSplit]] = {}


def register_prefix_split(model_type: type, factory: Callable[[nn.Module], PrefixSplit]) -> None:
    """Declare how models of `model_type` (and subclasses) split at their frozen prefix."""
    _FACTORIES[model_type] = factory


def find_prefix_split(model: nn.Module) -> PrefixSplit | None:
    hook = getattr(model, "split_frozen_prefix", None)
    if callable(hook):
        return hook()
    for model_type, factory in _FACTORIES.items():
        if isinstance(model, model_type):
            return factory(model)
    return None
