"""ModelSpec: what a worker needs to build the model (plain data, cheap to ship to actors)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from f3ocus_ray.models.registry import REAL


@dataclass(frozen=True)
class ModelSpec:
    """Everything a worker needs to build the model: plain data, cheap to ship to actors.

    Fields named as the config's `model` section's are copied from it (`from_config`); the
    others come from the data (image size, vocabulary, question length, outputs)."""

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
    unit_mode: str = "layers"  # a registered unit mode (see f3ocus_ray.models.units)
    adapter_reduction: int = 16
    lora_rank: int = 8
    prompt_length: int = 8  # PromptFL's prompt tokens (unit mode "prompt")
    train_head: bool = True  # every client trains the task head
    distill_weight: float = 1.0  # FedDAT (unit mode "dual_adapters"): mutual KD weight
    distill_temperature: float = 1.0  # FedDAT: mutual KD temperature
    # model families (see f3ocus_ray.models.registry); the tiny ones ignore path/dtype
    path: str | None = None  # a local checkpoint folder (or ALBEF .pth file): a real model
    dtype: str = "auto"  # "auto" (bfloat16 on GPU, float32 on CPU), "float32", "bfloat16", ...
    device: str = "cpu"  # "cpu", "cuda" or "auto" (the GPU when there is one)
    freeze_vision: bool = True  # the vision tower is frozen; False: every client trains it
    vision_layers: int = 2  # tiny configs: blocks of the vision tower
    max_answer_length: int = 4  # generative families: answer tokens (plus EOS) after the prompt
    # sizes of the tasks' heads when tasks share the model (mixed data: answers, labels); they
    # sum to num_outputs. Empty: one head.
    output_blocks: tuple[int, ...] = ()

    @classmethod
    def from_config(cls, model_cfg: Any, **derived: Any) -> ModelSpec:
        """The spec of the config's `model` section (any object with the same-named attributes)
        plus the values only the data knows (`derived`: image_size, vocab_size, max_text_len,
        num_outputs, output_blocks). Tiny models stay on the CPU unless the GPU is asked for by
        name (`device="cuda"`); pass `device` to override."""
        names = {f.name for f in fields(cls)}
        if unknown := set(derived) - names:
            raise TypeError(f"ModelSpec has no field(s) {sorted(unknown)}")
        values = {
            f.name: derived[f.name] if f.name in derived else getattr(model_cfg, f.name)
            for f in fields(cls)
            if f.name in derived or hasattr(model_cfg, f.name)
        }
        if "device" not in derived and values.get("name") not in REAL:
            values["device"] = "cuda" if values.get("device") == "cuda" else "cpu"
        return cls(**values)
