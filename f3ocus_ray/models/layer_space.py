"""The LayerSpace: a model's ordered selectable units mapped to parameter names.

Model-agnostic: a builder names each unit by a parameter-name prefix (e.g. the 12 encoder
blocks of ViLT) and the task head by its prefixes. Applying a client's mask makes exactly the
selected units (and the head, if trained by every client) trainable and freezes the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn


@dataclass(frozen=True)
class Unit:
    name: str
    params: tuple[str, ...]


OutputRange = tuple[int, int]  # [lo, hi) of the model's outputs: one task's head


@dataclass(frozen=True)
class LayerSpace:
    units: tuple[Unit, ...]
    head: tuple[str, ...]
    # a model shared by tasks (mixed data sets): the head parameters only one task's clients
    # train, by that task's output range; every other head parameter is trained by all clients
    task_heads: tuple[tuple[OutputRange, tuple[str, ...]], ...] = ()

    @classmethod
    def from_prefixes(
        cls,
        model: nn.Module,
        unit_prefixes: Sequence[str],
        head_prefixes: Sequence[str],
        unit_filter: str | None = None,
    ) -> LayerSpace:
        """Units = the parameters under each prefix (and, with `unit_filter`, whose name
        contains it: e.g. "lora_" picks a block's LoRA matrices); head = under head prefixes."""
        names = [n for n, _ in model.named_parameters()]

        def under(prefix: str, contains: str | None = None) -> tuple[str, ...]:
            found = tuple(
                n for n in names if n.startswith(prefix) and (contains is None or contains in n)
            )
            if not found:
                raise ValueError(f"no parameters under prefix {prefix!r}")
            return found

        units = tuple(Unit(p.rstrip("."), under(p, unit_filter)) for p in unit_prefixes)
        head = tuple(n for p in head_prefixes for n in under(p))
        claimed = [n for u in units for n in u.params] + list(head)
        if len(claimed) != len(set(claimed)):
            raise ValueError("units and head overlap: a parameter belongs to two of them")
        return cls(units=units, head=head)

    @property
    def num_units(self) -> int:
        return len(self.units)

    @property
    def unit_names(self) -> list[str]:
        return [u.name for u in self.units]

    @property
    def all_params(self) -> tuple[str, ...]:
        """Every parameter the federation can train: all units, then the head."""
        return tuple(n for u in self.units for n in u.params) + self.head

    def trainable(
        self, mask: np.ndarray, train_head: bool = True, outputs: OutputRange | None = None
    ) -> tuple[str, ...]:
        """Parameter names one client trains under its unit mask (length num_units); a client
        whose head is the output range `outputs` trains no other task's head."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.num_units,):
            raise ValueError(f"mask shape {mask.shape} != ({self.num_units},)")
        names = tuple(n for u, m in zip(self.units, mask, strict=True) if m for n in u.params)
        if not train_head:
            return names
        foreign = {n for r, params in self.task_heads if r != outputs for n in params}
        return names + tuple(n for n in self.head if n not in foreign)

    def apply(
        self,
        model: nn.Module,
        mask: np.ndarray,
        train_head: bool = True,
        outputs: OutputRange | None = None,
    ) -> list[nn.Parameter]:
        """Freeze everything but the masked units (and head); return the trainable parameters."""
        keep = set(self.trainable(mask, train_head, outputs))
        params = []
        for name, p in model.named_parameters():
            p.requires_grad_(name in keep)
            if name in keep:
                params.append(p)
        return params

    def unit_sizes(self, model: nn.Module) -> np.ndarray:
        """Number of parameters in each unit."""
        numel = {n: p.numel() for n, p in model.named_parameters()}
        return np.array([sum(numel[n] for n in u.params) for u in self.units], dtype=np.int64)
