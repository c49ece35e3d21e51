"""A real checkpoint is checked before a run starts, cheaply: its weights are not loaded.

Refused, naming the file (a `ConfigError` on `model.path`, exit 2 from the command line):
- a folder without its tokenizer (`tokenizer.json`, `tokenizer.model`, `vocab.txt` or
  `vocab.json`) or its image processor (`preprocessor_config.json`, or `processor_config.json`
  with an `image_processor`: what transformers 5 writes);
- a `config.json` whose `model_type` is not the family's (a LLaVA folder given as `blip2`), or an
  ALBEF file that is not an ALBEF checkpoint;
- a tokenizer that cannot belong to the checkpoint: more tokens (`tokenizer.json`, `vocab.txt`
  or `vocab.json`) than the language model's embedding has rows;
- weights whose shapes differ from the config's: the safetensors headers (shapes only, read with
  `safe_open`) against the model built from the config on the meta device, checkpoint keys
  renamed as transformers renames them when loading (LLaVA's legacy layout); ALBEF's `.pth` is
  opened with `mmap` and its keys mapped as the loader maps them (which reads only the ViT's
  fused qkv tensors, to split them).

ALBEF's tokenizer and image processor sit next to its `.pth` file.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from f3ocus_ray.errors import ConfigError
from f3ocus_ray.models.registry import FAMILIES, REAL

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.txt", "vocab.json")
WEIGHT_FILES = ("model.safetensors.index.json", "model.safetensors")


def _err(message: str) -> ConfigError:
    return ConfigError(f"model.path: {message}")


def read_config(folder: Path, field: str = "model.path") -> tuple[Path, dict]:
    file = folder / "config.json"
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{field}: cannot read {file}: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{field}: {file} is not a JSON object")
    return file, raw


def albef_state_dict(path: Path, field: str = "model.path") -> dict[str, Any]:
    """ALBEF's state dict, memory-mapped (tensors only, none read)."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # a truncated or foreign file: torch raises many kinds
        raise ConfigError(f"{field}: cannot read {path} as a torch checkpoint: {e}") from None
    sd = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict) or "visual_encoder.pos_embed" not in sd:
        raise ConfigError(
            f"{field}: {path} is not an ALBEF checkpoint (no visual_encoder.pos_embed)"
        )
    return sd


def check_checkpoint(name: str, path: str | None) -> None:
    """Refuse a real checkpoint that cannot be what `name` loads; a no-op for tiny families."""
    if name not in REAL or not path:
        return
    p = Path(path).expanduser().resolve()
    folder = p.parent if name == "albef" else p
    try:
        stamp = tuple(sorted((f.name, f.stat().st_mtime_ns) for f in folder.iterdir()))
    except OSError as e:
        raise _err(f"cannot read {folder}: {e}") from None
    _check(name, str(p), stamp)


@lru_cache(maxsize=32)
def _check(name: str, path: str, stamp: tuple) -> None:  # stamp: the folder's files and times
    p = Path(path)
    if name == "albef":
        _side_files(p.parent)
        _check_albef(p)
        return
    file, raw = read_config(p)
    family = FAMILIES[name]
    found = raw.get("model_type")
    if found != family.model_type:
        arch = ", ".join(raw.get("architectures") or []) or "no architectures"
        raise _err(
            f"{file} is a {found!r} checkpoint ({arch}); {name} loads {family.hf_class} "
            f"(model_type {family.model_type!r})"
        )
    _side_files(p)
    net = _check_shapes(name, p, raw, file)
    _check_vocabulary(p, net.config.get_text_config().vocab_size)


def _side_files(folder: Path) -> None:
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise _err(
            f"{folder} has no tokenizer ({', '.join(TOKENIZER_FILES)}): save the checkpoint's "
            "own tokenizer there (tokenizer.save_pretrained)"
        )
    if (folder / "preprocessor_config.json").is_file():
        return
    processor = folder / "processor_config.json"
    if processor.is_file():
        try:
            if "image_processor" in json.loads(processor.read_text(encoding="utf-8")):
                return
        except ValueError as e:
            raise _err(f"cannot read {processor}: {e}") from None
    raise _err(
        f"{folder} has no image processor (preprocessor_config.json, or processor_config.json "
        "with an image_processor): save the checkpoint's own processor there"
    )


def _weight_files(folder: Path) -> list[Path]:
    index = folder / WEIGHT_FILES[0]
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (ValueError, KeyError, AttributeError) as e:
            raise _err(f"cannot read {index}: {e}") from None
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise _err(f"{folder / missing[0]}: missing (named in {index.name})")
        return [folder / s for s in shards]
    if (folder / WEIGHT_FILES[1]).is_file():
        return [folder / WEIGHT_FILES[1]]
    raise _err(f"{folder} has no safetensors weights ({' or '.join(WEIGHT_FILES)})")


def _expected(name: str, raw: dict, file: Path) -> tuple[Any, dict[str, tuple[int, ...]]]:
    """The transformers model of this config on the meta device, and its tensors' shapes."""
    import torch
    import transformers

    cls = getattr(transformers, FAMILIES[name].hf_class)
    try:
        config = cls.config_class.from_dict(raw)
        with torch.device("meta"):
            net = cls(config)
    except Exception as e:  # a config transformers cannot build: name the file and why
        raise _err(f"{file}: cannot build {cls.__name__} from it: {e}") from None
    return net, {k: tuple(v.shape) for k, v in net.state_dict().items()}


def _renamer(net: Any, expected: dict):
    """Checkpoint key -> model key, as transformers renames when loading; identity if this
    transformers has no such machinery."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightRenaming, rename_source_key

        conversions = get_model_conversion_mapping(net)
    except (ImportError, AttributeError, TypeError):
        return lambda key: key
    renames = [c for c in conversions if isinstance(c, WeightRenaming)]
    converters = [c for c in conversions if not isinstance(c, WeightRenaming)]

    def rename(key: str) -> str | None:
        new, converter = rename_source_key(
            key, renames, converters, net.base_model_prefix, expected
        )
        return None if converter is not None else new  # a converter may reshape: not compared

    return rename


def _check_shapes(name: str, folder: Path, raw: dict, file: Path) -> Any:
    """The weights' shapes against the config's; returns the model built on meta."""
    from safetensors import safe_open

    net, expected = _expected(name, raw, file)
    rename = _renamer(net, expected)
    matched = 0
    for weights in _weight_files(folder):
        try:
            with safe_open(str(weights), framework="pt") as f:
                shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
        except Exception as e:  # safetensors raises its own error types for a bad header
            raise _err(f"cannot read {weights} (safetensors header): {e}") from None
        for key, shape in shapes.items():
            target = rename(key)
            if target not in expected:
                continue
            matched += 1
            if expected[target] != shape:
                raise _err(
                    f"{weights}: tensor {key} has shape {list(shape)}; {file.name} gives "
                    f"{list(expected[target])} (weights and config.json do not match)"
                )
    if not matched:
        raise _err(f"{folder}: no tensor of the weights belongs to the model {file.name} describes")
    return net


def _tokenizer_size(folder: Path) -> tuple[Path, int] | None:
    """The tokenizer's number of tokens (added ones included), or None (SentencePiece only)."""
    file = folder / "tokenizer.json"
    try:
        if file.is_file():
            from tokenizers import Tokenizer

            return file, Tokenizer.from_file(str(file)).get_vocab_size(with_added_tokens=True)
        file = folder / "vocab.txt"
        if file.is_file():
            return file, len(file.read_text(encoding="utf-8").splitlines())
        file = folder / "vocab.json"
        if file.is_file():
            return file, len(json.loads(file.read_text(encoding="utf-8")))
    except Exception as e:  # tokenizers raises its own error types
        raise _err(f"cannot read {file} as a tokenizer: {e}") from None
    return None


def _check_vocabulary(folder: Path, rows: int) -> None:
    """Token ids past the embedding's rows would index nothing: not this checkpoint's tokenizer
    (fewer tokens than rows is common: vocabularies padded to a multiple)."""
    found = _tokenizer_size(folder)
    if found is not None and found[1] > rows:
        file, size = found
        raise _err(
            f"{file} has {size} tokens; the checkpoint's embedding has {rows} rows: "
            "not this checkpoint's tokenizer"
        )


def _check_albef(path: Path) -> None:
    import torch

    from f3ocus_ray.models.albef import Albef, albef_key_map, albef_sizes

    sd = albef_state_dict(path)
    try:
        sizes = albef_sizes(sd, num_heads=1)  # heads do not change shapes
        mapped = albef_key_map(sd)
    except (KeyError, IndexError) as e:
        raise _err(f"{path}: not an ALBEF checkpoint ({e})") from None
    _check_vocabulary(path.parent, sizes.vocab_size)
    with torch.device("meta"):
        model = Albef(sizes, num_answers=1)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for key, value in mapped.items():
        if key in expected and expected[key] != tuple(value.shape):
            raise _err(
                f"{path}: tensor {key} has shape {list(value.shape)}; the sizes read off the "
                f"checkpoint give {list(expected[key])}"
            )
