"""From an experiment's model config and data facts to a built model and its LayerSpace."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from f3ocus_ray.models.layer_space import LayerSpace


@dataclass(frozen=True)
class ModelSpec:
    """Everything a worker needs to build the model: plain data, cheap to ship to actors."""

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    patch_size: int
    image_size: int
    vocab_size: int
    max_text_len: int
    num_outputs: int
    init_seed: int
    train_embeddings: bool = False
    initializer_range: float = 0.1
    units: str = "layers"  # "layers" (whole blocks), "adapters", "lora", ... (see ModelConfig)
    adapter_reduction: int = 16
    lora_rank: int = 8
    prompt_length: int = 8  # PromptFL's prompt tokens (units "prompt")
    # model families (see f3ocus_ray/models/families.py); the tiny ones ignore path/dtype
    path: str | None = None  # a local checkpoint folder (or ALBEF .pth file): a real model
    dtype: str = "auto"  # "auto" (bfloat16 on GPU, float32 on CPU), "float32", "bfloat16", ...
    device: str = "cpu"  # "cpu", "cuda" or "auto" (the GPU when there is one)
    freeze_vision: bool = True  # the vision tower is frozen; False: every client trains it
    vision_layers: int = 2  # tiny configs: blocks of the vision tower
    max_answer_len: int = 4  # generative families: answer tokens (plus EOS) after the prompt
    # sizes of the tasks' heads when tasks share the model (mixed data: answers, labels); they
    # sum to num_outputs. Empty: one head.
    output_blocks: tuple[int, ...] = ()


def build_model(spec: ModelSpec) -> tuple[nn.Module, LayerSpace]:
    from f3ocus_ray.models.families import FAMILY_BUILDERS

    if spec.name in FAMILY_BUILDERS:
        return FAMILY_BUILDERS[spec.name](spec)
    if spec.name == "tiny-vilt":
        from f3ocus_ray.models.vilt import build_tiny_vilt

        return build_tiny_vilt(
            hidden_size=spec.hidden_size,
            num_layers=spec.num_layers,
            num_heads=spec.num_heads,
            intermediate_size=spec.intermediate_size,
            patch_size=spec.patch_size,
            image_size=spec.image_size,
            vocab_size=spec.vocab_size,
            max_text_len=spec.max_text_len,
            num_outputs=spec.num_outputs,
            init_seed=spec.init_seed,
            train_embeddings=spec.train_embeddings,
            initializer_range=spec.initializer_range,
            units=spec.units,
            adapter_reduction=spec.adapter_reduction,
            lora_rank=spec.lora_rank,
            prompt_length=spec.prompt_length,
            output_blocks=spec.output_blocks,
        )
    raise ValueError(f"unknown model {spec.name!r}")
