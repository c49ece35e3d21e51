"""What every model family shares: seeding, dtypes, masks and the two-stage wrapper.

A family wrapper is an `nn.Module` called as `model(pixel_values, input_ids, attention_mask)` that
returns logits, so training, evaluation and scoring never branch on the model. It computes in
two steps, `encode_frozen(...)` (the frozen vision side, the embeddings and the masks: no scored
parameter) and `decode(*encoded)` (the selectable blocks and the head), so the LNTK scorer can
run the first step once outside `torch.func.vmap` (see `f3ocus_ray.models.split`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from f3ocus_ray.models.split import PrefixSplit


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

    def split_frozen_prefix(self) -> PrefixSplit:
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
