"""A tiny ViLT built from config with random weights (offline), for VQA and multi-label tasks.

VQA is classification over the closed answer vocabulary (cross-entropy); the multi-label task
uses the same model with one logit per finding (binary cross-entropy).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn
from transformers import ViltConfig, ViltForQuestionAnswering

from f3ocus_ray.models.adapters import add_bottleneck_adapters, add_lora
from f3ocus_ray.models.layer_space import LayerSpace

# unit mode -> the substring that picks a block's parameters of that kind
_UNIT_FILTERS = {"lora": "lora_", "layernorm": "layernorm", "bias": ".bias"}
# unit mode -> what follows a block's prefix in its unit's parameter names
_UNIT_SUFFIX = {"adapters": "adapter.", "dual_adapters": "adapter.shared."}


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


def build_tiny_vilt(
    *,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    intermediate_size: int,
    patch_size: int,
    image_size: int,
    vocab_size: int,
    max_text_len: int,
    num_outputs: int,
    init_seed: int,
    train_embeddings: bool = False,
    initializer_range: float = 0.1,
    units: str = "layers",
    adapter_reduction: int = 16,
    lora_rank: int = 8,
    prompt_length: int = 8,
    output_blocks: tuple[int, ...] = (),
) -> tuple[VisionLanguageClassifier, LayerSpace]:
    """Build the model with weights fixed by `init_seed` (identical on every worker).

    The head (final norm, pooler, classifier) is trained by every client; with
    `train_embeddings` the text and patch embeddings join it (useful when the weights are
    random rather than pretrained: a frozen random patch projection slows learning). With
    several `output_blocks` (tasks sharing the model), the classifier's last layer is one
    linear head per task, trained by that task's clients only; the layers before it are shared.
    """
    if output_blocks and sum(output_blocks) != num_outputs:
        raise ValueError(f"output_blocks {output_blocks} do not sum to num_outputs {num_outputs}")
    cfg = ViltConfig(
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        image_size=image_size,
        patch_size=patch_size,
        max_image_length=-1,
        vocab_size=vocab_size,
        # PromptFL's prompt tokens join the text sequence: they need positions too
        max_position_embeddings=max_text_len + (prompt_length if units == "prompt" else 0),
        num_labels=num_outputs,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=initializer_range,
        attn_implementation="eager",  # torch.func transforms (LNTK) need eager attention
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = VisionLanguageClassifier(ViltForQuestionAnswering(cfg))
        if len(output_blocks) > 1:
            last = model.net.classifier[-1]
            model.net.classifier[-1] = TaskHeads(last.in_features, tuple(output_blocks))
        if units == "prompt":
            from f3ocus_ray.models.promptfl import PromptedVisionLanguageClassifier

            model = PromptedVisionLanguageClassifier(model.net, prompt_length, initializer_range)
        if units == "adapters":
            add_bottleneck_adapters(
                model.net.vilt.encoder.layer, hidden_size, adapter_reduction, init_seed + 1
            )
        elif units == "dual_adapters":  # FedDAT: shared, client-specific and frozen adapters
            from f3ocus_ray.models.feddat import DualAdapter

            add_bottleneck_adapters(
                model.net.vilt.encoder.layer,
                hidden_size,
                adapter_reduction,
                init_seed + 1,
                adapter=DualAdapter,
            )
        elif units == "lora":
            add_lora(model, lora_rank, ["query", "value"], init_seed + 1)
    model.eval()  # no dropout anywhere; training mode changes nothing but keeps intent clear
    # a unit is a whole block, the adapter (or LoRA matrices) attached to it, or one kind of
    # its own parameters: its LayerNorms (LayerNorm tuning) or its biases (bias tuning)
    unit = "net.vilt.encoder.layer.{i}." + _UNIT_SUFFIX.get(units, "")
    # PromptFL: the prompt is the single unit; FedDAT: the shared adapters are the units (the
    # client-specific and frozen adapters never travel)
    prefixes = ["prompt"] if units == "prompt" else [unit.format(i=i) for i in range(num_layers)]
    space = LayerSpace.from_prefixes(
        model,
        unit_prefixes=prefixes,
        unit_filter=_UNIT_FILTERS.get(units),
        head_prefixes=["net.vilt.layernorm.", "net.vilt.pooler.", "net.classifier."]
        + (["net.vilt.embeddings."] if train_embeddings else []),
    )
    last = model.net.classifier[-1]
    if isinstance(last, TaskHeads):
        prefix = f"net.classifier.{len(model.net.classifier) - 1}.heads"
        task_heads = tuple(
            (r, tuple(n for n in space.head if n.startswith(f"{prefix}.{k}.")))
            for k, r in enumerate(last.ranges)
        )
        space = replace(space, task_heads=task_heads)
    return model, space
