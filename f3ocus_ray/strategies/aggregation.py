"""Masked FedAvg: each tensor is averaged over the clients that trained it, weighted by samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def masked_fedavg(
    global_state: Mapping[str, np.ndarray],
    updates: Sequence[tuple[Mapping[str, np.ndarray], int]],
) -> dict[str, np.ndarray]:
    """Return the new global state.

    `updates` holds (tensors a client trained, its number of training samples), in client-id
    order; the sums run in that order, so the result does not depend on which worker finished
    first. A tensor no client trained keeps its global value. Sums are in float64.
    """
    sums: dict[str, np.ndarray] = {}
    weights: dict[str, float] = {}
    for tensors, n in updates:
        if n <= 0:
            raise ValueError(f"an update has non-positive sample count {n}")
        for name, value in tensors.items():
            if name not in global_state:
                raise KeyError(f"update for unknown tensor {name!r}")
            acc = sums.get(name)
            weighted = np.asarray(value, dtype=np.float64) * n
            sums[name] = weighted if acc is None else acc + weighted
            weights[name] = weights.get(name, 0.0) + n
    new = dict(global_state)
    for name, total in sums.items():
        new[name] = (total / weights[name]).astype(global_state[name].dtype)
    return new
