"""ViLT's wrappers: the classifier the families and PromptFL build on, and per-task heads."""

from __future__ import annotations

import torch
from torch import nn
from transformers import ViltForQuestionAnswering

from f3ocus_ray.models.split import PrefixSplit
from f3ocus_ray.models.vilt_split import vilt_prefix_split


class TaskHeads(nn.Module):
    """One output layer per task, concatenated: tasks sharing the model keep their own heads."""

    def __init__(self, in_features: int, sizes: tuple[int, ...]):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(in_features, s) for s in sizes)
        self.ranges = [(int(sum(sizes[:k])), int(sum(sizes[: k + 1]))) for k in range(len(sizes))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([h(x) for h in self.heads], dim=-1)


class VisionLanguageClassifier(nn.Module):
    """ViLT encoder + classification head: (images, question tokens) -> logits."""

    def __init__(self, vilt: ViltForQuestionAnswering):
        super().__init__()
        self.net = vilt

    def forward(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        return self.net(
            input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values
        ).logits

    def split_frozen_prefix(self) -> PrefixSplit:
        return vilt_prefix_split(self)
