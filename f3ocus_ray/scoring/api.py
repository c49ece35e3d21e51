"""One entry point for the engine: per-unit importance of one client's data, by any method."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import nn

from f3ocus_ray.models.layer_space import LayerSpace
from f3ocus_ray.scoring.problem import ScoringProblem
from f3ocus_ray.scoring.registry import scorer, scorer_names
from f3ocus_ray.scoring.state import preserved
from f3ocus_ray.task import ClientTensors, task_loss

METHODS: tuple[str, ...] = scorer_names()  # the built-in methods


@dataclass(frozen=True)
class UnitScores:
    raw: np.ndarray  # (L,) the method's score per unit (λ1 for LNTK)
    normalised: np.ndarray  # (L,) raw / Σ|raw|: sums to 1 for non-negative scores
    seconds: float


def normalise(raw: np.ndarray) -> np.ndarray:
    """S^l = raw^l / Σ_k |raw^k| (order-preserving; uniform if every score is zero)."""
    raw = np.asarray(raw, dtype=np.float64)
    total = np.abs(raw).sum()
    if not np.isfinite(total) or total == 0:
        return np.full(raw.shape, 1.0 / raw.size)
    return raw / total


def select_samples(n_total: int, n_samples: int, seed: int | None) -> torch.Tensor:
    """The first `n_samples` indices (seed None) or a seeded random subset, sorted."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    k = min(n_samples, n_total)
    if seed is None:
        return torch.arange(k)
    picked = np.random.default_rng(seed).choice(n_total, size=k, replace=False)
    return torch.as_tensor(np.sort(picked))


def score_problem(problem: ScoringProblem, method: str = "lntk") -> np.ndarray:
    """Raw per-unit scores of `method` for a model-agnostic problem; the model is left as found."""
    score = scorer(method)
    with preserved(problem.model, problem.seed):
        return np.asarray(score(problem), dtype=np.float64)


def score_units(
    model: nn.Module,
    space: LayerSpace,
    data: ClientTensors,
    *,
    method: str = "lntk",
    mode: str = "loss",
    n_samples: int = 64,
    seed: int | None = None,
    chunk_size: int = 16,
    gradient_budget_mb: float = 64.0,
    vmap_size: int | None = None,
    tol: float = 1e-6,
    max_iter: int = 100,
    exact: bool = False,
) -> UnitScores:
    """Score every unit of `space` on `n_samples` of the client's samples.

    Samples: the first `n_samples` (seed None) or a subset drawn with `seed` (all if fewer).
    `method`: one of METHODS. LNTK only: `mode` "loss" (λ1 of the n x n Gram matrix of
    per-sample loss gradients) or "logits" (λ1 of the (nC) x (nC) kernel of the logits, by
    Lanczos to relative residual `tol` within `max_iter` steps); `exact` takes the explicit
    Jacobian reference path (small n only). `chunk_size` samples go through one vmap / one
    batched pass; per-sample gradients held at once (loss mode) stay within
    max(chunk_size x params of the largest unit x 4 bytes, `gradient_budget_mb`), formed
    `vmap_size` (default chunk_size) samples per vmapped call. Parameters, requires_grad flags, train/eval modes and the caller's torch RNG
    are left as found. `seconds` is the wall time of the whole call."""
    start = time.perf_counter()
    if len(data) == 0:
        raise ValueError("the client has no samples")
    idx = select_samples(len(data), n_samples, seed)
    device = next(model.parameters()).device
    inputs = (data.pixel_values[idx], data.input_ids[idx], data.attention_mask[idx])
    problem = ScoringProblem(
        model=model,
        units=tuple(u.params for u in space.units),
        inputs=tuple(x.to(device) for x in inputs),
        targets=data.targets[idx].to(device),
        loss_fn=partial(task_loss, task=data.task),
        mode=mode,
        chunk_size=chunk_size,
        gradient_budget_mb=gradient_budget_mb,
        vmap_size=vmap_size,
        tol=tol,
        max_iter=max_iter,
        seed=0 if seed is None else seed,
        exact=exact,
        outputs=data.outputs,
    )
    raw = score_problem(problem, method)
    return UnitScores(raw=raw, normalised=normalise(raw), seconds=time.perf_counter() - start)
