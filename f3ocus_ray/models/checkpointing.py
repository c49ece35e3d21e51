"""Activation (gradient) checkpointing of a model's transformer blocks, for a training loop.

Every family's blocks are Hugging Face `GradientCheckpointingLayer`s (ViLT, BERT/ALBEF, BLIP's
text layers, OPT, Llama), tiny ones included. Hugging Face's own switch
(`gradient_checkpointing_enable`) only acts in train mode, and the project trains in eval mode
(no dropout), so the outermost blocks' `forward` is wrapped here instead: each block's
activations are recomputed in the backward pass (`torch.utils.checkpoint`, non-reentrant, the
RNG state preserved), so the gradients are those of the plain forward, up to float rounding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial

from torch import nn
from torch.utils.checkpoint import checkpoint


def checkpointable_blocks(model: nn.Module) -> list[nn.Module]:
    """The outermost Hugging Face checkpointable blocks of `model` (none nested in another)."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    found: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        if not isinstance(module, GradientCheckpointingLayer):
            continue
        if any(name.startswith(f"{outer}.") for outer, _ in found):
            continue
        found.append((name, module))
    return [m for _, m in found]


@contextlib.contextmanager
def activation_checkpointing(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Within the block, every checkpointable block of `model` recomputes its activations in
    the backward pass instead of storing them; on exit the model is as before."""
    if not enabled:
        yield
        return
    blocks = checkpointable_blocks(model)
    if not blocks:
        raise ValueError(
            "training.gradient_checkpointing: the model has no checkpointable "
            "(Hugging Face GradientCheckpointingLayer) blocks"
        )
    for block in blocks:
        block.forward = partial(checkpoint, block.forward, use_reentrant=False)
    try:
        yield
    finally:
        for block in blocks:
            del block.forward  # the instance attribute: the class's forward again
