"""Per unit, the n x n Gram matrix of the samples' loss gradients, in bounded memory.

G_l = J_l J_lᵀ, row i of J_l the flattened gradient of sample i's loss w.r.t. unit l. The rows
come from `vmap(grad(loss of one sample))` over at most v = `vmap_size` (default `chunk_size`)
samples per call; where an op cannot be vmapped the same per-sample function runs in a Python
loop (same numbers, slower).

Memory. With c = `chunk_size`, d_max the parameters of the largest unit, M the floor
`gradient_budget_mb` and the budget B = max(c x d_max x 4 bytes, M), at most B bytes of
per-sample gradients are alive at any time:

    peak ≈ model + activations of one vmapped call (v samples)
           + B (float32 per-sample gradients; c x d_max x 4 bytes for a big model)
           + n² x 8 bytes (one unit's kernel) + column slices for the float64 products
           (≤ c x 2¹⁶ x 8 bytes)

(For c = 1 two rows are alive at once.) The floor M only keeps small models fast: below it,
units are never split into row blocks needlessly. The activations grow with v and the depth
above the unit (a ViLT-B block: about 14 MB per sample): for a big model a small `vmap_size`
(1-2) keeps them below the gradients at little cost in speed, as each sample's matmuls are
already large.

Consecutive units whose whole J (n rows) fits in B together are computed in one pass (small
units: adapters, LoRA, LayerNorms). A unit whose n rows do not fit is done in row blocks of
b ≈ B / (2 d_l) samples (c/2 for the largest unit): G's block (i, j) needs blocks i and j
alive together, so block j is recomputed for every i ≤ j. Compute per such unit: about
n²/c + n/2 per-sample gradients instead of n: memory is traded for time, and a larger
`chunk_size` (or budget) buys the time back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.func import grad, vmap

from f3ocus_ray.scoring.problem import ScoringProblem

log = logging.getLogger(__name__)

Grads = dict[str, Tensor]
COLUMNS = 1 << 16  # columns per float64 product: bounds the float64 copies of the float32 rows


class _RowSource:
    """Per-sample loss gradients w.r.t. some of the problem's parameters, for a slice of samples
    (vmapped `chunk_size` samples at a time, or a per-sample loop once vmap has failed)."""

    def __init__(self, problem: ScoringProblem):
        targets, loss_fn = problem.require_loss()
        self.fn = fn = problem.function()
        self.targets = targets
        self.vmap_size = problem.samples_per_call
        self.vectorised = True

        def sample_loss(params: Grads, target: Tensor, *x: Tensor) -> Tensor:
            return loss_fn(fn.one(params, *x), target.unsqueeze(0))

        self.one = grad(sample_loss)
        self.batched = vmap(self.one, in_dims=(None, 0) + (0,) * len(fn.inputs))

    def rows(self, names: Sequence[str], sl: slice) -> Grads:
        """{name: (|sl|, *shape)} per-sample gradients of samples `sl`, `vmap_size` at a time
        (more than that are copied into preallocated rows, one call's gradients at a time)."""
        primals = self.fn.primals(names)
        count = sl.stop - sl.start
        if count <= self.vmap_size:
            return self._chunk(primals, sl)
        out = {k: v.new_empty((count, *v.shape)) for k, v in primals.items()}
        for start in range(sl.start, sl.stop, self.vmap_size):
            part = slice(start, min(start + self.vmap_size, sl.stop))
            grads = self._chunk(primals, part)
            for k in names:
                out[k][part.start - sl.start : part.stop - sl.start] = grads.pop(k)
        return out

    def _chunk(self, primals: Grads, sl: slice) -> Grads:
        if self.vectorised:
            try:
                return self.batched(primals, self.targets[sl], *self.fn.rows(sl))
            except (RuntimeError, NotImplementedError) as err:
                log.warning("vmap failed (%s); per-sample loop instead", str(err).split("\n")[0])
                self.vectorised = False
        each = [
            self.one(primals, self.targets[i], *(x[i] for x in self.fn.inputs))
            for i in range(sl.start, sl.stop)
        ]
        return {k: torch.stack([g[k] for g in each]) for k in primals}


def cross_gram(a: Grads, b: Grads, names: Sequence[str]) -> Tensor:
    """Σ over `names` of A Bᵀ (rows flattened per sample), float64, in column slices."""
    ra, rb = next(iter(a.values())).shape[0], next(iter(b.values())).shape[0]
    out = None
    for name in names:
        x, y = a[name].reshape(ra, -1), b[name].reshape(rb, -1)
        if out is None:
            out = x.new_zeros((ra, rb), dtype=torch.float64)
        for s in range(0, x.shape[1], COLUMNS):
            out += x[:, s : s + COLUMNS].double() @ y[:, s : s + COLUMNS].double().T
    assert out is not None
    return out


def plan(
    sizes: Sequence[int], n: int, chunk_size: int, floor: int = 0, vmap_size: int | None = None
) -> list[tuple[list[int], int]]:
    """Groups of consecutive units and their row-block size: (unit indices, b).

    The budget is max(chunk_size x max(sizes), floor) floats. Rows computed in more than one
    vmapped call of `vmap_size` (default chunk_size) samples also hold one call's gradients
    while they are copied in. A group whose n rows fit has b = n (one pass); a unit alone that
    does not fit has the largest b whose two blocks fit (at least 1)."""
    budget = max(chunk_size * max(sizes), floor)
    v = chunk_size if vmap_size is None else vmap_size

    def held(rows: int) -> int:  # rows alive while `rows` of them are formed
        return rows if rows <= v else rows + v

    groups: list[tuple[list[int], int]] = []
    current: list[int] = []
    total = 0
    for i, d in enumerate(sizes):
        if current and held(n) * (total + d) <= budget:
            current.append(i)
            total += d
            continue
        if current:
            groups.append((current, n))
        if held(n) * d <= budget:
            current, total = [i], d
            continue
        fit = budget // d  # rows of this unit within the budget
        b = fit // 2 if fit // 2 <= v else (fit - v) // 2
        groups.append(([i], max(1, b)))
        current, total = [], 0
    if current:
        groups.append((current, n))
    return groups


def unit_grams(
    problem: ScoringProblem, on_rows: Callable[[Grads], None] | None = None
) -> Iterator[np.ndarray]:
    """Per unit in order, its (n, n) float64 Gram matrix of per-sample loss gradients.

    Peak memory as in the module docstring. `on_rows`, if given, sees every block of
    per-sample gradients as it is formed (tests count what is alive)."""
    source = _RowSource(problem)
    n = source.fn.n
    primals = source.fn.primals(problem.names)
    sizes = [sum(primals[name].numel() for name in unit) for unit in problem.units]
    del primals

    def rows(names: Sequence[str], sl: slice) -> Grads:
        block = source.rows(names, sl)
        if on_rows is not None:
            on_rows(block)
        return block

    floor = int(problem.gradient_budget_mb * 2**20) // 4  # float32 per-sample gradients
    for indices, b in plan(sizes, n, problem.chunk_size, floor, source.vmap_size):
        units = [problem.units[i] for i in indices]
        names = [name for unit in units for name in unit]
        if b >= n:
            block = rows(names, slice(0, n))
            for unit in units:
                yield cross_gram(block, block, unit).cpu().numpy()
            del block
            continue
        (unit,) = units
        starts = range(0, n, b)
        g = np.empty((n, n), dtype=np.float64)
        for i in starts:
            si = slice(i, min(i + b, n))
            a = rows(unit, si)
            g[si, si] = cross_gram(a, a, unit).cpu().numpy()
            for j in starts:
                if j <= i:
                    continue
                sj = slice(j, min(j + b, n))
                other = rows(unit, sj)
                g[si, sj] = cross_gram(a, other, unit).cpu().numpy()
                g[sj, si] = g[si, sj].T
                del other  # before the next block is formed
            del a
        yield g


def per_sample_grams(problem: ScoringProblem) -> np.ndarray:
    """(L, n, n): per unit, the Gram matrix of the samples' loss gradients, float64."""
    return np.stack(list(unit_grams(problem)))
