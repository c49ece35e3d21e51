"""What every model family shares: seeding, dtypes, masks, unit modes and the frozen-prefix split.

A family wrapper is an `nn.Module` called as `model(pixel_values, input_ids, attention_mask)` that
returns logits, so training, evaluation and scoring never branch on the model. It computes in
two steps, `encode_frozen(...)` (the frozen vision side, the embeddings and the masks: no scored
parameter) and `decode(*encoded)` (the selectable blocks and the head), so the LNTK scorer can
run the first step once outside `torch.func.vmap` (see `f3ocus_ray.scoring.split`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from f3ocus_ray.models.adapters import add_bottleneck_adapters, add_lora
from f3ocus_ray.models.layer_space import LayerSpace

UNIT_MODES = ("layers", "adapters", "lora", "layernorm", "bias")


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Draw from torch's CPU generator seeded with `seed`, leaving the caller's state as found."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def resolve_device(device: str) -> torch.device:
    """ "auto": the GPU when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """ "auto": bfloat16 on a GPU, float32 on the CPU."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def padding_mask(attention_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """(n, T) 0/1 -> the additive (n, 1, 1, T) mask of bidirectional eager attention."""
    keep = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - keep) * torch.finfo(dtype).min


def causal_mask(attention_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """(n, L) 0/1 -> the additive (n, 1, L, L) causal mask with padded keys masked out."""
    n, length = attention_mask.shape
    causal = torch.ones(length, length, dtype=torch.bool, device=attention_mask.device).tril()
    keep = causal[None, None] & attention_mask[:, None, None, :].bool()
    out = torch.zeros(n, 1, length, length, dtype=dtype, device=attention_mask.device)
    return out.masked_fill(~keep, torch.finfo(dtype).min)


def eager(config) -> None:
    """Eager attention in a config and all its sub-configs (torch.func transforms need it)."""
    config._attn_implementation = "eager"
    for key in ("vision_config", "text_config", "qformer_config"):
        sub = getattr(config, key, None)
        if sub is not None:
            sub._attn_implementation = "eager"


@dataclass(frozen=True)
class UnitKinds:
    """How one family names the kinds of parameters a unit mode picks inside its blocks."""

    layernorm: str  # substring of its blocks' norm parameters (e.g. "LayerNorm", "layer_norm")
    lora_targets: tuple[str, ...]  # the linear layers LoRA adapts (e.g. ("query", "value"))
    has_bias: bool = True


def add_unit_modules(
    model: nn.Module,
    blocks: nn.ModuleList,
    blocks_path: str,
    *,
    units: str,
    kinds: UnitKinds,
    hidden_size: int,
    adapter_reduction: int,
    lora_rank: int,
    seed: int,
) -> None:
    """Add the modules a unit mode trains (adapters or LoRA matrices) to `blocks`, in place.

    `blocks_path` is the blocks' name in `model` (e.g. "lm.model.layers"); LoRA goes only into
    the `kinds.lora_targets` linears of those blocks, not into the frozen vision side."""
    if units not in UNIT_MODES:
        raise ValueError(f"unknown unit mode {units!r}; choose from {UNIT_MODES}")
    if units == "bias" and not kinds.has_bias:
        raise ValueError("units 'bias': this model's blocks have no bias parameters")
    if units == "adapters":
        add_bottleneck_adapters(blocks, hidden_size, adapter_reduction, seed)
    elif units == "lora":
        names = "|".join(re.escape(t) for t in kinds.lora_targets)
        # peft full-matches a string target against module names: only these blocks' linears
        add_lora(model, lora_rank, rf"{re.escape(blocks_path)}\.\d+\.(.*\.)?({names})", seed)


def unit_space(
    model: nn.Module,
    blocks_path: str,
    num_blocks: int,
    *,
    units: str,
    kinds: UnitKinds,
    head_prefixes: Sequence[str],
) -> LayerSpace:
    """One unit per block of `blocks_path`: the whole block, its adapter, its LoRA matrices, its
    norms or its biases; the head is trained by every client."""
    adapter = "adapter." if units == "adapters" else ""
    unit_filter = {"lora": "lora_", "layernorm": kinds.layernorm, "bias": ".bias"}.get(units)
    return LayerSpace.from_prefixes(
        model,
        unit_prefixes=[f"{blocks_path}.{i}.{adapter}" for i in range(num_blocks)],
        unit_filter=unit_filter,
        head_prefixes=list(head_prefixes),
    )


class TwoStage(nn.Module):
    """Base of the family wrappers: forward = decode(*encode_frozen(...)), and the split.

    Subclasses set `frozen_prefixes` (the module paths whose parameters `encode_frozen` reads) and
    implement both steps. `encode_frozen` runs no selectable unit; `decode` has no per-sample
    Python control flow, so it can be vmapped over samples."""

    frozen_prefixes: tuple[str, ...] = ()

    def encode_frozen(
        self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def decode(self, *encoded: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.decode(*self.encode_frozen(pixel_values, input_ids, attention_mask))

    def split_frozen_prefix(self):
        from f3ocus_ray.scoring.split import PrefixSplit

        paths = self.frozen_prefixes
        names = frozenset(
            n
            for n, _ in self.named_parameters()
            if any(n == p or n.startswith(f"{p}.") for p in paths)
        )
        return PrefixSplit(
            prefix=self.encode_frozen, body=lambda m, *xs: m.decode(*xs), prefix_params=names
        )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def finish(model: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """Move to device and dtype; eval mode (no dropout: training mode would change nothing else)."""
    model.to(device=device, dtype=dtype)
    model.eval()
    return model
