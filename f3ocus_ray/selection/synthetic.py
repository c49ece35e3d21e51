"""Synthetic score matrices for tests, benchmarks and demos (no model needed).

Per-layer importance scores such as LNTK eigenvalues vary smoothly with depth and concentrate
on a few layers that many clients share, so client-only top-k piles the clients onto the same
layers: that overlap is what the server-side refinement spreads out.
"""

from __future__ import annotations

import numpy as np


def peaked_scores(
    n_clients: int,
    n_units: int,
    seed: int = 0,
    *,
    n_peaks: int = 3,
    width: float = 1.0,
    noise: float = 0.3,
) -> np.ndarray:
    """Scores with ``n_peaks`` peaks shared by all clients (Gaussian bumps of ``width``
    units with random heights), each client scaled by U(0.5, 1.5), plus ``noise * U(0, 1)``.

    Long Pareto fronts (many clients compete for the same units): the hard instances of the
    benchmark.
    """
    rng = np.random.default_rng(seed)
    units = np.arange(n_units)
    centres = rng.choice(n_units, size=min(n_peaks, n_units), replace=False)
    base = np.zeros(n_units)
    for c in centres:
        base += rng.uniform(0.5, 1.0) * np.exp(-0.5 * ((units - c) / width) ** 2)
    scale = rng.uniform(0.5, 1.5, size=(n_clients, 1))
    return base[None, :] * scale + noise * rng.random((n_clients, n_units))


def paper_like_scores(
    seed: int = 0,
    n_clients: int = 5,
    n_units: int = 32,
    *,
    n_regions: int = 4,
    peaks_per_client: int = 2,
    width: float = 2.0,
    noise: float = 0.05,
) -> np.ndarray:
    """The paper's figure-like case: 5 clients, 32 layers; every client's scores peak (bumps
    of ``width`` layers, heights U(0.7, 1)) at ``peaks_per_client`` of ``n_regions`` layer
    regions shared by the federation, plus ``noise * U(0, 1)``.
    """
    rng = np.random.default_rng(seed)
    units = np.arange(n_units)
    regions = rng.choice(np.arange(2, n_units - 2), size=n_regions, replace=False)
    scores = noise * rng.random((n_clients, n_units))
    for i in range(n_clients):
        for c in rng.choice(regions, size=peaks_per_client, replace=False):
            scores[i] += rng.uniform(0.7, 1.0) * np.exp(-0.5 * ((units - c) / width) ** 2)
    return scores
