"""A tiny ViLT and random client data, shared by the tests (no data set, no Ray)."""

from __future__ import annotations

import torch

from f3ocus_ray.models import ModelSpec
from f3ocus_ray.task import ClientTensors

TINY_SPEC = ModelSpec(
    name="tiny-vilt",
    hidden_size=32,
    num_layers=4,
    num_heads=2,
    intermediate_size=64,
    patch_size=8,
    image_size=32,
    vocab_size=50,
    max_text_len=8,
    num_outputs=5,
    init_seed=0,
)


def random_client(n: int, task: str = "vqa", seed: int = 0) -> ClientTensors:
    """n random samples for TINY_SPEC; half the questions padded, so the mask matters."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(n, 8, dtype=torch.long)
    mask[::2, 5:] = 0
    targets = (
        torch.randint(0, 5, (n,), generator=g)
        if task == "vqa"
        else (torch.rand(n, 5, generator=g) > 0.6).float()
    )
    pixels = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1
    return ClientTensors(pixels, torch.randint(0, 50, (n, 8), generator=g), mask, targets, task)
