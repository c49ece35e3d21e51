"""Selection strategies: the one place where a method decides which units each client trains.

A strategy maps (round, per-client budgets, number of units) to a boolean mask (clients x units)
with exactly k_i units for client i (the `full` baseline ignores budgets). Later strategies
(LNTK, F3OCUS) also read the clients' score matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from f3ocus_ray.fl.seeding import derive_rng


class SelectionStrategy(Protocol):
    name: ClassVar[str]

    def select(self, round_idx: int, budgets: np.ndarray, num_units: int) -> np.ndarray: ...


def _check(budgets: np.ndarray, num_units: int) -> np.ndarray:
    budgets = np.asarray(budgets, dtype=np.int64)
    if budgets.ndim != 1 or (budgets < 1).any() or (budgets > num_units).any():
        raise ValueError(f"budgets must lie in [1, {num_units}], got {budgets.tolist()}")
    return budgets


@dataclass(frozen=True)
class FullStrategy:
    """Every client trains every unit (full fine-tuning; ignores budgets)."""

    name: ClassVar[str] = "full"

    def select(self, round_idx: int, budgets: np.ndarray, num_units: int) -> np.ndarray:
        return np.ones((len(budgets), num_units), dtype=bool)


@dataclass(frozen=True)
class FirstKStrategy:
    """Client i trains its first k_i units (closest to the input)."""

    name: ClassVar[str] = "first_k"

    def select(self, round_idx: int, budgets: np.ndarray, num_units: int) -> np.ndarray:
        budgets = _check(budgets, num_units)
        return np.arange(num_units)[None, :] < budgets[:, None]


@dataclass(frozen=True)
class LastKStrategy:
    """Client i trains its last k_i units (closest to the head)."""

    name: ClassVar[str] = "last_k"

    def select(self, round_idx: int, budgets: np.ndarray, num_units: int) -> np.ndarray:
        budgets = _check(budgets, num_units)
        return np.arange(num_units)[None, :] >= (num_units - budgets)[:, None]


@dataclass(frozen=True)
class RandomStrategy:
    """Federated dropout: each round, client i trains k_i units drawn uniformly at random."""

    seed: int
    name: ClassVar[str] = "random"

    def select(self, round_idx: int, budgets: np.ndarray, num_units: int) -> np.ndarray:
        budgets = _check(budgets, num_units)
        rng = derive_rng(self.seed, round_idx)
        keys = rng.random((len(budgets), num_units))
        ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
        return ranks < budgets[:, None]


def make_strategy(name: str, seed: int) -> SelectionStrategy:
    if name == "full":
        return FullStrategy()
    if name == "first_k":
        return FirstKStrategy()
    if name == "last_k":
        return LastKStrategy()
    if name == "random":
        return RandomStrategy(seed)
    raise ValueError(f"unknown selection strategy {name!r}")
