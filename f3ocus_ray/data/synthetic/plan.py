"""What every synthetic generator shares: the seed check, each client's train/test split and
its schedule of question types.

A generator draws a client's plan from one random stream and each sample from its own, so
the samples are a pure function of the seed, the client and the sample's index.
"""

from __future__ import annotations

import math

import numpy as np

from ..format import DataError
from .questions import QUESTION_TYPES, TYPE_PROPORTIONS

__all__ = [
    "TEST_FRACTION",
    "check_seed",
    "local_window",
    "question_type_schedule",
    "split_mask",
]

TEST_FRACTION = 0.2


def check_seed(seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")


def local_window(window: range | None, offset: int, n: int) -> range:
    """The indices of a client's samples (positions ``offset .. offset + n - 1`` of the whole
    set) that fall in ``window`` (all of them when None): a generator renders only those, so
    parallel workers each render a slice and their slices, concatenated, are the whole set."""
    if window is None:
        return range(n)
    return range(max(0, window.start - offset), max(0, min(n, window.stop - offset)))


def split_mask(
    n: int, rng: np.random.Generator, test_fraction: float = TEST_FRACTION
) -> np.ndarray:
    """Boolean mask of the ``round(test_fraction * n)`` test samples, chosen by permutation."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: round(test_fraction * n)]] = True
    return mask


def question_type_schedule(n: int, rng: np.random.Generator) -> list[str]:
    """Question types of n samples in the paper's proportions (largest remainder), shuffled."""
    quotas = {t: TYPE_PROPORTIONS[t] * n for t in QUESTION_TYPES}
    counts = {t: math.floor(q) for t, q in quotas.items()}
    by_remainder = sorted(
        QUESTION_TYPES, key=lambda t: (-(quotas[t] - counts[t]), QUESTION_TYPES.index(t))
    )
    for t in by_remainder[: n - sum(counts.values())]:
        counts[t] += 1
    types = [t for t in QUESTION_TYPES for _ in range(counts[t])]
    return [types[i] for i in rng.permutation(n)]
