"""Training memory at bf16 of a client that trains k units: an estimate, with its formula.

    total = weights + gradients + AdamW states + activations
    weights      = 2 B x every parameter (bf16; frozen ones included: the worker holds the model)
    gradients    = 2 B x trained parameter (the k largest units + the head)
    AdamW states = 4 B x trained parameter (two moments in the parameter's dtype, as torch's
                   AdamW keeps them: no fp32 master copy in this project)
    activations  = what autograd saves, for every block from the first trained one to the end
                   (backprop runs through them); the worst case, block 0 trained, is all blocks:
        per block    b*s*(18*h + 2*g*f) + 6*b*a*s*s          (Korthikanti et al. 2022's
                     34*s*b*h + 5*a*s^2*b for g=2, f=4h, with eager attention's fp32 softmax;
                     Llama blocks + 8*b*s*h: their RMSNorms run in fp32)
        cross-attn.  + b*s*13*h + 6*b*a*s*n + 4*b*n*h        (reading n image tokens)
        logits       + 10*b*t*V                              (bf16 logits, fp32 loss + grad)
    b batch, s tokens through the block, h width, a heads, f FFN width, g the FFN-wide tensors
    saved (2: GELU, 1: ReLU, whose output is fc2's input, 4: SwiGLU), t positions with logits,
    V their classes (vocabulary or answers).

The frozen front (vision tower, embeddings) runs without saving anything. Against the bytes
autograd really saves (tests/test_cost.py, tiny configs at bf16, every block trained) the
formula is within 0.8-1.5x; it is an upper bound for blocks whose weights are frozen (they save
no linear-layer inputs). It leaves out the CUDA context and allocator slack (`CONTEXT_GIB`),
and activation checkpointing, flash attention and fused optimizers, which this project does
not use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

GIB = 1024**3
CONTEXT_GIB = 1.0  # CUDA context, cuBLAS workspaces and allocator slack, per worker

# (slice, usable GiB): MIG slices of an 80 GB A100/H100, common single GPUs, an H200
GPU_SLICES: tuple[tuple[str, float], ...] = (
    ("MIG 1g.10gb", 9.5),
    ("MIG 2g.20gb", 19.5),
    ("L4 / A10G 24 GB", 22.0),
    ("MIG 3g.40gb or A100 40 GB", 39.0),
    ("A100 / H100 80 GB", 79.0),
    ("H200 141 GB", 139.0),
)


@dataclass(frozen=True)
class BlockShape:
    """One selectable block as the activation formula sees it."""

    hidden: int
    heads: int
    ffn: int
    tokens: int  # s: the sequence through the block
    ffn_tensors: int = 2  # FFN-wide tensors saved: GELU 2, ReLU 1, SwiGLU (Llama) 4
    fp32_norms: bool = False  # Llama's RMSNorm computes in fp32
    cross_tokens: int = 0  # image tokens its cross-attention reads (0: none)

    def activation_bytes(self, batch: int) -> int:
        b, s, h, a = batch, self.tokens, self.hidden, self.heads
        norms = 8 * h if self.fp32_norms else 0
        out = b * s * (18 * h + norms + 2 * self.ffn_tensors * self.ffn) + 6 * b * a * s * s
        if self.cross_tokens:
            n = self.cross_tokens
            out += b * s * 13 * h + 6 * b * a * s * n + 4 * b * n * h
        return out


@dataclass(frozen=True)
class Geometry:
    blocks: tuple[BlockShape, ...]  # the unit blocks, in order
    logit_positions: int
    classes: int


@dataclass(frozen=True)
class MemoryEstimate:
    units: int  # k
    weights: int  # bytes
    grads: int
    adam: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.grads + self.adam + self.activations

    @property
    def fits(self) -> str:
        """The smallest GPU slice that holds it with `CONTEXT_GIB` to spare."""
        need = self.total / GIB + CONTEXT_GIB
        return next((name for name, gib in GPU_SLICES if need <= gib), "none: shard the model")


def _patches(image_size: int, patch_size: int) -> int:
    return (image_size // patch_size) ** 2 + 1  # and the CLS token


def _vilt(cfg: Any, text: int, answer: int) -> Geometry:
    s = _patches(cfg.image_size, cfg.patch_size) + text
    block = BlockShape(cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size, s)
    return Geometry((block,) * cfg.num_hidden_layers, 1, cfg.num_labels)


def _ffn_tensors(activation: str) -> int:
    return 1 if activation == "relu" else 2


def _blip(cfg: Any, text: int, answer: int) -> Geometry:
    t, v = cfg.text_config, cfg.vision_config
    n = _patches(v.image_size, v.patch_size)
    block = BlockShape(
        t.hidden_size, t.num_attention_heads, t.intermediate_size, text, cross_tokens=n
    )
    return Geometry((block,) * t.num_hidden_layers, 1, 0)


def _albef(sizes: Any, text: int, answer: int) -> Geometry:
    n = _patches(sizes.image_size, sizes.patch_size)
    shape = (sizes.hidden_size, sizes.num_heads, sizes.intermediate_size, text)
    blocks = (BlockShape(*shape),) * sizes.text_layers
    blocks += (BlockShape(*shape, cross_tokens=n),) * sizes.fusion_layers
    return Geometry(blocks, 1, 0)


def _blip2(cfg: Any, text: int, answer: int) -> Geometry:
    t = cfg.text_config
    s = cfg.num_query_tokens + text + answer
    ffn = _ffn_tensors(t.activation_function)
    block = BlockShape(t.hidden_size, t.num_attention_heads, t.ffn_dim, s, ffn_tensors=ffn)
    return Geometry((block,) * t.num_hidden_layers, text + answer, t.vocab_size)


def _llava(cfg: Any, text: int, answer: int) -> Geometry:
    t = cfg.text_config
    s = cfg.image_seq_length + text + answer
    shape = (t.hidden_size, t.num_attention_heads, t.intermediate_size, s)
    block = BlockShape(*shape, ffn_tensors=4, fp32_norms=True)
    return Geometry((block,) * t.num_hidden_layers, text + answer, t.vocab_size)


GEOMETRY: dict[str, Callable[[Any, int, int], Geometry]] = {
    "vilt": _vilt,
    "blip": _blip,
    "albef": _albef,
    "blip2": _blip2,
    "llava": _llava,
}


def geometry(family: str, config: Any, text_tokens: int, answer_tokens: int) -> Geometry:
    return GEOMETRY[family](config, text_tokens, answer_tokens)


def training_memory(
    geo: Geometry,
    total_params: int,
    unit_sizes: Sequence[int],
    head_params: int,
    k: int,
    batch: int,
    classes: int | None = None,
) -> MemoryEstimate:
    """bf16 training memory of a client training the k largest units and the head, with the
    worst case's activations (the first block trained: all blocks save theirs)."""
    trained = int(np.sort(np.asarray(unit_sizes))[::-1][:k].sum()) + head_params
    acts = sum(b.activation_bytes(batch) for b in geo.blocks)
    acts += 10 * batch * geo.logit_positions * (classes or geo.classes)
    return MemoryEstimate(k, 2 * total_params, 2 * trained, 4 * trained, acts)
