"""Scoring leaves a model as it found it: parameters, requires_grad flags, modes, RNG."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def preserved(model: nn.Module, seed: int) -> Iterator[None]:
    """Inside: eval mode, gradients enabled, the torch RNG seeded by `seed`. On exit: every
    requires_grad flag, every submodule's train/eval mode and the caller's RNG state as they
    were. Scorers never write parameters (they read them through `functional_call`)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    modes = [(m, m.training) for m in model.modules()]
    cuda = sorted({p.device.index or 0 for p in model.parameters() if p.is_cuda})
    try:
        with torch.random.fork_rng(devices=cuda), torch.enable_grad():
            torch.manual_seed(seed)
            model.eval()
            yield
    finally:
        for m, training in modes:
            m.training = training
        for p, flag in flags:
            p.requires_grad_(flag)
