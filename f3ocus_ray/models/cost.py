"""Communication and memory cost of full fine-tuning, layer selection and adapter selection, for
any real family at any size, with no weights: the model is built on the meta device from a full
config through the family's own builder and unit mode, so the units counted are the units a
run selects and the head is the head a run trains.

Per client and round, one way (the same goes back down): trainable parameters and Mbit at 32
bits (the paper's Table 2 convention) and at bf16; the ratio is full fine-tuning's Mbit over
the method's. With a budget of k units the trainable parameters are those of the k largest
units (the worst case; units of one model can differ, e.g. ALBEF's fusion blocks) and, in the
"+ head" rows, the head every client trains (`model.train_head`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from f3ocus_ray.errors import ConfigError
from f3ocus_ray.models.memory import MemoryEstimate, geometry, training_memory
from f3ocus_ray.models.published import PAPER_TABLE2, PUBLISHED, VQA_ANSWERS
from f3ocus_ray.models.registry import FAMILIES, is_generative
from f3ocus_ray.models.spec import ModelSpec
from f3ocus_ray.models.units import get_unit_mode


@dataclass(frozen=True)
class Target:
    """A model to cost: a real family and its full config."""

    title: str
    family: str
    config: Any  # a transformers config (ALBEF: AlbefSizes)
    answers: int = VQA_ANSWERS


@dataclass(frozen=True)
class Built:
    total: int  # every parameter, the unit mode's injected ones included
    unit_sizes: np.ndarray
    head: int


@dataclass(frozen=True)
class CostRow:
    method: str
    params: int  # the k largest units (+ head)
    params_min: int  # the k smallest units (+ head)
    full: int  # full fine-tuning's parameters

    @property
    def mbit32(self) -> float:
        return self.params * 32 / 1e6

    @property
    def mbit16(self) -> float:
        return self.params * 16 / 1e6

    @property
    def ratio(self) -> float:
        return self.full / self.params


def _spec(target: Target, unit_mode: str) -> ModelSpec:
    """What the family builders read; the tiny sizes are unused by a full config."""
    return ModelSpec(
        name=target.family,
        hidden_size=0,
        num_layers=0,
        num_heads=1,
        intermediate_size=0,
        patch_size=1,
        image_size=1,
        vocab_size=1,
        max_text_len=1,
        num_outputs=target.answers,
        init_seed=0,
        unit_mode=unit_mode,
    )


def build_on_meta(target: Target, unit_mode: str) -> Built:
    """The model on the meta device (no memory, no weights) and what its units hold."""
    import torch

    from f3ocus_ray.models.families import build_from_config

    with torch.device("meta"):
        model, space = build_from_config(target.family, target.config, _spec(target, unit_mode))
    numel = {n: p.numel() for n, p in model.named_parameters()}
    return Built(
        total=sum(numel.values()),
        unit_sizes=space.unit_sizes(model),
        head=sum(numel[n] for n in space.head),
    )


def check_unit_mode(target: Target, unit_mode: str) -> None:
    try:
        reason = get_unit_mode(unit_mode).unsupported(target.family)
    except ValueError as e:
        raise ConfigError(f"--unit-mode: {e}") from None
    if reason:
        raise ConfigError(f"--unit-mode: {reason}")


def cost_rows(
    target: Target, budgets: Sequence[int], unit_modes: Sequence[str] = ("layers", "adapters")
) -> list[CostRow]:
    """Full fine-tuning (every parameter of the model), then per unit mode: all units + head
    (`strategy: full`), and k units alone and with the head for each budget k."""
    for mode in unit_modes:
        check_unit_mode(target, mode)
    full = build_on_meta(target, "layers").total
    rows = [CostRow("full fine-tuning (every parameter)", full, full, full)]
    for mode in unit_modes:
        built = build_on_meta(target, mode)
        sizes = np.sort(built.unit_sizes)
        n = len(sizes)
        for k in budgets:
            if not 1 <= k <= n:
                raise ConfigError(f"--budget: {k} is not in 1..{n}, the units of {target.title}")
        label = get_unit_mode(mode).name
        total = int(sizes.sum())
        all_units = total + built.head
        rows.append(CostRow(f"{label}: all {n} units + head", all_units, all_units, full))
        for k in budgets:
            top, low = int(sizes[-k:].sum()), int(sizes[:k].sum())
            rows.append(CostRow(f"{label}: {k} of {n} units", top, low, full))
            rows.append(
                CostRow(
                    f"{label}: {k} of {n} units + head", top + built.head, low + built.head, full
                )
            )
    return rows


def memory_rows(
    target: Target,
    budgets: Sequence[int],
    unit_mode: str = "layers",
    batch: int = 16,
    text_tokens: int = 40,
    answer_tokens: int = 8,
) -> list[MemoryEstimate]:
    """bf16 training memory for k trained units (and all units), see `models.memory`."""
    built = build_on_meta(target, unit_mode)
    geo = geometry(target.family, target.config, text_tokens, answer_tokens)
    classes = None if is_generative(target.family) else target.answers
    ks = sorted({*budgets, len(built.unit_sizes)})
    return [
        training_memory(geo, built.total, built.unit_sizes, built.head, k, batch, classes)
        for k in ks
    ]


# -- targets from the command line ------------------------------------------------------------
def published_target(key: str, answers: int | None = None) -> Target:
    p = PUBLISHED[key]
    return Target(f"{p.title} ({p.source})", p.family, p.config(), answers or p.answers)


def _config_class(family: str):
    import transformers

    return getattr(transformers, FAMILIES[family].hf_class).config_class


def config_from_dict(family: str, raw: dict, where: str) -> Any:
    """A family's full config from its JSON (ALBEF: the `AlbefSizes` field names)."""
    if family == "albef":
        from f3ocus_ray.models.albef import AlbefSizes

        names = {f.name for f in fields(AlbefSizes)}
        if unknown := set(raw) - names:
            raise ConfigError(f"{where}: unknown ALBEF size(s) {sorted(unknown)}; use {names}")
        try:
            return AlbefSizes(**raw)
        except TypeError as e:
            raise ConfigError(f"{where}: {e}") from None
    return _config_class(family).from_dict(raw)


def target_from_json(family: str, path: str, answers: int | None) -> Target:
    file = Path(path)
    try:
        raw = json.loads(file.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"--config-json: cannot read {file}: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"--config-json: {file} is not a JSON object")
    config = config_from_dict(family, raw, f"--config-json: {file}")
    return Target(str(file), family, config, answers or _answers_of(config))


def target_from_checkpoint(family: str, path: str, answers: int | None) -> Target:
    """A checkpoint folder's config.json (ALBEF: the sizes read off its .pth file's shapes)."""
    from f3ocus_ray.models.checkpoint_check import albef_state_dict, read_config

    if family == "albef":
        from f3ocus_ray.models.albef import albef_sizes

        config = albef_sizes(albef_state_dict(Path(path), "--model-path"), num_heads=1)
    else:
        file, raw = read_config(Path(path), "--model-path")
        config = config_from_dict(family, raw, f"--model-path: {file}")
    return Target(str(path), family, config, answers or _answers_of(config))


def _answers_of(config: Any) -> int:
    labels = getattr(config, "num_labels", None)
    return labels if isinstance(labels, int) and labels > 2 else VQA_ANSWERS


# -- the printed tables --------------------------------------------------------------------
def _m(n: int) -> str:
    return f"{n / 1e6:,.2f}M" if n >= 1e5 else f"{n / 1e3:,.1f}k"


def format_cost(target: Target, rows: Sequence[CostRow]) -> str:
    lines = [
        f"### {target.title}: {target.family}, {_m(rows[0].full)} parameters",
        "",
        "| method (per client, per round, one way) | trainable params | Mbit 32-bit | Mbit bf16 "
        "| x less than full |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        params = _m(r.params) if r.params == r.params_min else f"{_m(r.params_min)}-{_m(r.params)}"
        lines.append(
            f"| {r.method} | {params} | {r.mbit32:,.1f} | {r.mbit16:,.1f} | {r.ratio:,.1f} |"
        )
    if target.family == PAPER_TABLE2["model"]:
        p = PAPER_TABLE2
        lines += [
            "",
            f"Paper, Table 2 (Task 1, ViLT): F3OCUS {p['f3ocus_mbit']} Mbit / "
            f"{p['f3ocus_params'] / 1e6:.2f}M params vs full fine-tuning {p['full_mbit']} Mbit / "
            f"{p['full_params'] / 1e6:.2f}M: {p['full_mbit'] / p['f3ocus_mbit']:.0f}x "
            "(its 0.30M is 4 adapters, without the head).",
        ]
    return "\n".join(lines)


def format_memory(target: Target, rows: Sequence[MemoryEstimate], batch: int, mode: str) -> str:
    gib = 1024**3
    lines = [
        f"bf16 training memory, unit mode {mode}, batch {batch} (worst case: the first block "
        "trained; see f3ocus_ray/models/memory.py):",
        "",
        "| k units | weights GiB | grads + AdamW GiB | activations GiB | total GiB | fits |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for m in rows:
        lines.append(
            f"| {m.units} | {m.weights / gib:.2f} | {(m.grads + m.adam) / gib:.2f} | "
            f"{m.activations / gib:.2f} | {m.total / gib:.2f} | {m.fits} |"
        )
    return "\n".join(lines)
