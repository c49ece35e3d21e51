"""Per-sample loss gradients of every unit in one vectorised pass, and their Gram matrices.

`vmap(grad(loss of one sample))` over chunks of `chunk_size` samples yields the gradients of all
units at once; each unit's rows land in its own (n, d_l) matrix J_l. Where an op cannot be
vmapped the same per-sample function runs in a Python loop instead (same numbers, slower).
Memory: the J_l of all units (n x sum d_l floats) plus one chunk's activations.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor
from torch.func import grad, vmap

from f3ocus_ray.scoring.problem import ScoringProblem, flatten_units

log = logging.getLogger(__name__)


def per_sample_gradients(problem: ScoringProblem) -> list[Tensor]:
    """Per unit l, J_l of shape (n, d_l): row i is the flattened gradient of sample i's loss."""
    targets, loss_fn = problem.require_loss()
    fn = problem.function()
    primals = fn.primals(problem.names)

    def sample_loss(params: dict[str, Tensor], target: Tensor, *x: Tensor) -> Tensor:
        return loss_fn(fn.one(params, *x), target.unsqueeze(0))

    one = grad(sample_loss)
    batched = vmap(one, in_dims=(None, 0) + (0,) * len(fn.inputs))
    n = fn.n
    sizes = [sum(primals[name].numel() for name in unit) for unit in problem.units]
    dtype = next(iter(primals.values())).dtype
    out = [torch.empty(n, d, dtype=dtype, device=targets.device) for d in sizes]
    vectorised = True
    for start in range(0, n, problem.chunk_size):
        sl = slice(start, min(start + problem.chunk_size, n))
        grads = None
        if vectorised:
            try:
                grads = batched(primals, targets[sl], *fn.rows(sl))
            except (RuntimeError, NotImplementedError) as err:
                log.warning("vmap failed (%s); per-sample loop instead", str(err).split("\n")[0])
                vectorised = False
        if grads is None:
            each = [one(primals, targets[i], *(x[i] for x in fn.inputs)) for i in range(n)[sl]]
            grads = {name: torch.stack([g[name] for g in each]) for name in problem.names}
        for buf, rows in zip(out, flatten_units(problem.units, grads, batch_dims=1), strict=True):
            buf[sl] = rows
    return out


def gram(rows: Tensor) -> Tensor:
    """The float64 Gram matrix rows @ rows.T."""
    r = rows.double()
    return r @ r.T


def per_sample_grams(problem: ScoringProblem) -> np.ndarray:
    """(L, n, n): per unit, the Gram matrix of the samples' loss gradients, float64."""
    return np.stack([gram(j).cpu().numpy() for j in per_sample_gradients(problem)])
