"""The model families by config name: tiny (random weights from config, offline, CPU) or real
(a local checkpoint, `local_files_only`), and what their selectable units are.

| name                  | model                                   | task       | a unit is            |
|-----------------------|-----------------------------------------|------------|----------------------|
| tiny-vilt, vilt       | ViltForQuestionAnswering                | vqa        | a ViLT encoder block |
| tiny-blip, blip       | BLIP VQA: ViT + question encoder + head | vqa        | a question-encoder   |
|                       |                                         |            | block (cross-attn.)  |
| tiny-albef, albef     | ALBEF: ViT + BERT text/fusion + head    | vqa        | a BERT block (text,  |
|                       |                                         |            | then fusion)         |
| tiny-blip2, blip2     | Blip2ForConditionalGeneration (OPT)     | generative | an OPT decoder block |
| tiny-llava, llava     | LlavaForConditionalGeneration (Llama)   | generative | a Llama decoder block|

`tiny-vilt` is built in `f3ocus_ray.models.vilt`; the others here.

Limits (known, not handled):
- Tokenizer: a real BERT-family checkpoint (vilt, blip, albef) with a `tokenizer.json` in its
  folder tokenizes with it (`checkpoint_tokenizer`), so its embeddings see their own ids. The
  others (llava, blip2: SentencePiece/BPE without [SEP]) and checkpoints without the file use
  the project's own tokenizer: their embeddings are then indexed with ids of another
  vocabulary (fine for experiments on the architecture, not for the checkpoint's language
  knowledge).
- BLIP and ALBEF answer by classification with a new head, not with their answer decoders.
- BLIP-2 with an encoder-decoder language model (Flan-T5) is refused: decoder-only only.
- A real model is loaded whole on each worker's device (no sharding, no quantisation).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from f3ocus_ray.config import MODEL_NAMES

if TYPE_CHECKING:  # no torch at import time: the config imports this module
    from torch import nn

    from f3ocus_ray.models.build import ModelSpec
    from f3ocus_ray.models.layer_space import LayerSpace

GENERATIVE = frozenset({"tiny-blip2", "blip2", "tiny-llava", "llava"})
REAL = frozenset({"vilt", "blip", "albef", "blip2", "llava"})
TINY = frozenset({"tiny-vilt", "tiny-blip", "tiny-albef", "tiny-blip2", "tiny-llava"})
NAMES = MODEL_NAMES


def is_generative(name: str) -> bool:
    """Generative families answer with tokens (task "generative"), the others classify."""
    return name in GENERATIVE


# real families whose text side is BERT: their tokenizer.json encodes as [CLS] q [SEP], [PAD]=0
_BERT_TOKENIZED = frozenset({"vilt", "blip", "albef"})


def checkpoint_tokenizer(name: str, path: str | None) -> str | None:
    """The checkpoint's own tokenizer (the JSON of `tokenizer.json` in the checkpoint's folder)
    for a real BERT-family model, or None: use the project's tokenizer."""
    if name not in _BERT_TOKENIZED or not path:
        return None
    folder = Path(path) if Path(path).is_dir() else Path(path).parent  # ALBEF: a .pth file
    file = folder / "tokenizer.json"
    if not file.is_file():
        return None
    from tokenizers import Tokenizer

    from f3ocus_ray.errors import ConfigError

    text = file.read_text(encoding="utf-8")
    try:
        tok = Tokenizer.from_str(text)
    except Exception as e:
        raise ConfigError(f"model.path: {file} is not a tokenizers JSON file: {e}") from None
    if tok.token_to_id("[SEP]") is None or tok.token_to_id("[PAD]") != 0:
        raise ConfigError(
            f"model.path: {file} is not a BERT-style tokenizer ([SEP], [PAD]=0), as {name} needs"
        )
    return text


def check_task(name: str, task: str) -> None:
    """Refuse a generative family on data it cannot answer (classification, mixed tasks)."""
    if is_generative(name) and task != "vqa":
        from f3ocus_ray.errors import ConfigError

        raise ConfigError(
            f"model.name: {name} answers questions by generation; the data set's task is "
            f"{task!r} (use a classification family: tiny-vilt, tiny-blip, tiny-albef, ...)"
        )


def _checked(spec: ModelSpec) -> ModelSpec:
    if spec.name in REAL and not spec.path:
        raise ValueError(f"model {spec.name!r} is loaded from a local checkpoint: set model.path")
    if spec.name in TINY and spec.path:
        raise ValueError(f"model {spec.name!r} is built from config: model.path must be null")
    return spec


def build_real_vilt(spec: ModelSpec) -> tuple[nn.Module, LayerSpace]:
    """A local `ViltForQuestionAnswering` checkpoint; its last classifier layer is replaced
    (seeded) when its answers are not the data set's. Units, head: as the tiny ViLT's."""
    from torch import nn
    from transformers import ViltForQuestionAnswering

    from f3ocus_ray.models.common import (
        UnitKinds,
        add_unit_modules,
        finish,
        resolve_device,
        resolve_dtype,
        seeded,
        unit_space,
    )
    from f3ocus_ray.models.vilt import VisionLanguageClassifier

    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    net = ViltForQuestionAnswering.from_pretrained(
        spec.path, local_files_only=True, dtype=dtype, attn_implementation="eager"
    )
    last = net.classifier[-1]
    if last.out_features != spec.num_outputs:
        with seeded(spec.init_seed + 2):
            net.classifier[-1] = nn.Linear(last.in_features, spec.num_outputs, dtype=dtype)
        net.config.num_labels = spec.num_outputs
    model = VisionLanguageClassifier(net)
    kinds = UnitKinds(layernorm="layernorm", lora_targets=("query", "value"))
    blocks = "net.vilt.encoder.layer"
    add_unit_modules(
        model,
        net.vilt.encoder.layer,
        blocks,
        units=spec.units,
        kinds=kinds,
        hidden_size=net.config.hidden_size,
        adapter_reduction=spec.adapter_reduction,
        lora_rank=spec.lora_rank,
        seed=spec.init_seed + 1,
    )
    head = ["net.vilt.layernorm.", "net.vilt.pooler.", "net.classifier."]
    head += ["net.vilt.embeddings."] if spec.train_embeddings else []
    space = unit_space(
        model,
        blocks,
        len(net.vilt.encoder.layer),
        units=spec.units,
        kinds=kinds,
        head_prefixes=head,
    )
    finish(model, device, dtype)
    return model, space


def _blip(spec: ModelSpec):
    from f3ocus_ray.models.blip import build_blip

    return build_blip(_checked(spec))


def _albef(spec: ModelSpec):
    from f3ocus_ray.models.albef import build_albef

    return build_albef(_checked(spec))


def _generative(family: str) -> Callable[[ModelSpec], tuple[nn.Module, LayerSpace]]:
    def build(spec: ModelSpec):
        from f3ocus_ray.models.generative import build_generative

        return build_generative(_checked(spec), family)

    return build


FAMILY_BUILDERS: dict[str, Callable[[ModelSpec], tuple[nn.Module, LayerSpace]]] = {
    "vilt": lambda spec: build_real_vilt(_checked(spec)),
    "tiny-blip": _blip,
    "blip": _blip,
    "tiny-albef": _albef,
    "albef": _albef,
    "tiny-blip2": _generative("blip2"),
    "blip2": _generative("blip2"),
    "tiny-llava": _generative("llava"),
    "llava": _generative("llava"),
}


def checkpoint_units(name: str, path: str) -> int | None:
    """The number of selectable units of a real checkpoint, read from its config.json (for ALBEF
    from its state dict's keys); None if it cannot be read."""
    p = Path(path).expanduser()
    try:
        stamp = p.stat().st_mtime_ns if name == "albef" else (p / "config.json").stat().st_mtime_ns
    except OSError:
        return None
    return _checkpoint_units(name, str(p.resolve()), stamp)


@lru_cache(maxsize=16)
def _checkpoint_units(name: str, path: str, stamp: int) -> int | None:
    p = Path(path)
    try:
        if name == "albef":
            from f3ocus_ray.models.albef import albef_sizes, load_albef_state_dict

            sizes = albef_sizes(load_albef_state_dict(p))
            return sizes.text_layers + sizes.fusion_layers
        cfg = json.loads((p / "config.json").read_text())
    except (OSError, ValueError, KeyError, RuntimeError):
        return None
    if name == "vilt":
        return cfg.get("num_hidden_layers", 12)
    return cfg.get("text_config", {}).get("num_hidden_layers")


__all__ = [
    "FAMILY_BUILDERS",
    "GENERATIVE",
    "NAMES",
    "REAL",
    "TINY",
    "checkpoint_units",
    "is_generative",
]
