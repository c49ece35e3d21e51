"""Adapters, one per transformer block: the modules of the `adapters` and `lora` unit modes (and,
built from the same bottleneck adapter, FedDAT's `dual_adapters`: see `feddat.py`).

Bottleneck adapters (Pfeiffer style, written here; no maintained library ships them for ViLT):

Each block's output h becomes h + W_up(GELU(W_down(h))), with W_down: d -> d / reduction and
W_up zero-initialised, so a fresh adapter is the identity and the model computes exactly what
it did without adapters. Simplification (documented): the adapter sits on the block's output
(the residual stream after the FFN sub-layer) rather than inside the FFN's residual branch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from f3ocus_ray.models.common import seeded


class BottleneckAdapter(nn.Module):
    def __init__(self, hidden_size: int, reduction: int = 16):
        super().__init__()
        bottleneck = max(1, hidden_size // reduction)
        self.down = nn.Linear(hidden_size, bottleneck)
        self.up = nn.Linear(bottleneck, hidden_size)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def delta(self, h: torch.Tensor) -> torch.Tensor:
        """The residual the adapter adds: W_up(GELU(W_down(h)))."""
        return self.up(nn.functional.gelu(self.down(h)))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.delta(h)


class AdaptedBlock(nn.Module):
    """A transformer block followed by its adapter; returns what the block returns."""

    def __init__(self, block: nn.Module, adapter: BottleneckAdapter):
        super().__init__()
        self.block = block
        self.adapter = adapter

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.block(*args, **kwargs)
        if isinstance(out, tuple):
            return (self.adapter(out[0]), *out[1:])
        return self.adapter(out)


def add_bottleneck_adapters(
    blocks: nn.ModuleList,
    hidden_size: int,
    reduction: int,
    seed: int,
    adapter: Callable[[int, int], nn.Module] = BottleneckAdapter,
) -> None:
    """Wrap every block of `blocks` in place with a fresh adapter (weights fixed by `seed`).

    `adapter(hidden_size, reduction)` builds each block's adapter module (h -> h'): the
    `BottleneckAdapter` by default, FedDAT's `DualAdapter` for `dual_adapters`."""
    with seeded(seed):
        for i, block in enumerate(blocks):
            blocks[i] = AdaptedBlock(block, adapter(hidden_size, reduction))


def add_lora(model: nn.Module, rank: int, targets: list[str], seed: int) -> None:
    """LoRA matrices on every `targets` linear layer, in place, through `peft` (B starts at zero,
    so the model is unchanged until trained)."""
    from peft import LoraConfig, inject_adapter_in_model

    with seeded(seed):
        inject_adapter_in_model(
            LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=targets),
            model,
        )
