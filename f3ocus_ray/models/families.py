"""Building a model by family name: `build_model(spec) -> (model, LayerSpace)`.

The families are listed once, in `f3ocus_ray.models.registry`; each is one module (tiny from
config with random weights, offline, CPU; or real from a local checkpoint, `local_files_only`),
imported on its first build. The unit mode (`f3ocus_ray.models.units`) decides what a unit is.

Limits (known, not handled):
- Tokenizer: a real BERT-family checkpoint (vilt, blip, albef) with a `tokenizer.json` in its
  folder tokenizes with it (`checkpoint_tokenizer`), so its embeddings see their own ids. The
  others (llava, blip2: SentencePiece/BPE without [SEP]) and checkpoints with only a vocab file
  use the project's own tokenizer: their embeddings are then indexed with ids of another
  vocabulary (fine for experiments on the architecture, not for the checkpoint's language
  knowledge). A folder with no tokenizer at all is refused (`checkpoint_check`).
- BLIP and ALBEF answer by classification with a new head, not with their answer decoders.
- BLIP-2 with an encoder-decoder language model (Flan-T5) is refused: decoder-only only.
- A real model is loaded whole on each worker's device (no sharding, no quantisation).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from f3ocus_ray.errors import ConfigError
from f3ocus_ray.models.registry import (
    BERT_TOKENIZED,
    FAMILIES,
    GENERATIVE,
    MODEL_NAMES,
    REAL,
    TINY,
    is_generative,
)
from f3ocus_ray.models.spec import ModelSpec
from f3ocus_ray.models.units import get_unit_mode

if TYPE_CHECKING:  # torch loads with the first model built
    from torch import nn

    from f3ocus_ray.models.layer_space import LayerSpace

Builder = Callable[[ModelSpec], "tuple[nn.Module, LayerSpace]"]


def checkpoint_tokenizer(name: str, path: str | None) -> str | None:
    """The checkpoint's own tokenizer (the JSON of `tokenizer.json` in the checkpoint's folder)
    for a real BERT-family model, or None: use the project's tokenizer."""
    if name not in BERT_TOKENIZED or not path:
        return None
    folder = Path(path) if Path(path).is_dir() else Path(path).parent  # ALBEF: a .pth file
    file = folder / "tokenizer.json"
    if not file.is_file():
        return None
    from tokenizers import Tokenizer

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
        raise ConfigError(
            f"model.name: {name} answers questions by generation; the data set's task is "
            f"{task!r} (use a classification family: tiny-vilt, tiny-blip, tiny-albef, ...)"
        )


def _lazy(target: str) -> Builder:
    module, function = target.split(":")

    def build(spec: ModelSpec):
        return getattr(importlib.import_module(f"f3ocus_ray.models.{module}"), function)(spec)

    build.__qualname__ = build.__name__ = function
    return build


FAMILY_BUILDERS: dict[str, Builder] = {f.name: _lazy(f.builder) for f in FAMILIES.values()}


def build_from_config(name: str, config: Any, spec: ModelSpec) -> tuple[nn.Module, LayerSpace]:
    """A real family's model from a full config (a transformers config; ALBEF: `AlbefSizes`)
    with `spec`'s unit mode, on torch's default device: under `torch.device("meta")` no
    weight is allocated (the cost estimate)."""
    family = FAMILIES.get(name)
    if family is None or family.from_config is None:
        choices = sorted(f.name for f in FAMILIES.values() if f.from_config)
        raise ValueError(f"no full-config builder for {name!r}; choose from {choices}")
    reason = get_unit_mode(spec.unit_mode).unsupported(name)
    if reason:
        raise ValueError(f"unit mode {reason}")
    module, function = family.from_config.split(":")
    build = getattr(importlib.import_module(f"f3ocus_ray.models.{module}"), function)
    return build(config, spec)


def build_model(spec: ModelSpec) -> tuple[nn.Module, LayerSpace]:
    """The model of `spec` with its unit mode's modules, and its LayerSpace (weights fixed by
    `spec.init_seed`: identical on every worker)."""
    if spec.name not in FAMILY_BUILDERS:
        raise ValueError(f"unknown model {spec.name!r}; choose from {MODEL_NAMES}")
    reason = get_unit_mode(spec.unit_mode).unsupported(spec.name)
    if reason:
        raise ValueError(f"unit mode {reason}")
    if spec.name in REAL and not spec.path:
        raise ValueError(f"model {spec.name!r} is loaded from a local checkpoint: set model.path")
    if spec.name in TINY and spec.path:
        raise ValueError(f"model {spec.name!r} is built from config: model.path must be null")
    return FAMILY_BUILDERS[spec.name](spec)


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
    "build_from_config",
    "GENERATIVE",
    "REAL",
    "TINY",
    "build_model",
    "check_task",
    "checkpoint_tokenizer",
    "checkpoint_units",
    "is_generative",
]
