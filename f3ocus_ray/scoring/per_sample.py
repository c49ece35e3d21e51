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
           + n² x 8 bytes (one unit's kernel) + column slices copied to float64 for the
           products (2 x 2²¹ entries x 12 bytes ≤ 48 MB)

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
Block = list[Grads]  # rows of per-sample gradients, one piece per vmapped call
SLICE = 1 << 21  # entries (rows x columns) per float64 product: bounds the float64 copies


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

    def rows(self, names: Sequence[str], sl: slice) -> Block:
        """Per-sample gradients of samples `sl`: one {name: (rows, *shape)} piece per vmapped
        call of at most `vmap_size` samples (never copied together: `cross_gram` reads them)."""
        primals = self.fn.primals(names)
        block: Block = []
        for start in range(sl.start, sl.stop, self.vmap_size):
            block += self._chunk(primals, slice(start, min(start + self.vmap_size, sl.stop)))
        return block

    def _chunk(self, primals: Grads, sl: slice) -> Block:
        if self.vectorised:
            try:
                return [self.batched(primals, self.targets[sl], *self.fn.rows(sl))]
            except (RuntimeError, NotImplementedError) as err:
                log.warning("vmap failed (%s); per-sample loop instead", str(err).split("\n")[0])
                self.vectorised = False
        return [  # one piece per sample: nothing stacked, nothing copied
            {
                k: g.unsqueeze(0)
                for k, g in self.one(
                    primals, self.targets[i], *(x[i] for x in self.fn.inputs)
                ).items()
            }
            for i in range(sl.start, sl.stop)
        ]


def _columns(block: Block, name: str, lo: int, hi: int) -> Tensor:
    """Columns [lo, hi) of `name`'s flattened per-sample gradients, all rows, float64."""
    return torch.cat([p[name].reshape(p[name].shape[0], -1)[:, lo:hi] for p in block]).double()


def cross_gram(a: Block, b: Block, names: Sequence[str]) -> Tensor:
    """Σ over `names` of A Bᵀ (rows flattened per sample), float64, in column slices (so only
    a slice of the rows is ever copied, to float64)."""
    ra, rb = (sum(next(iter(p.values())).shape[0] for p in x) for x in (a, b))
    out = None
    for name in names:
        width = a[0][name][0].numel()
        if out is None:
            out = a[0][name].new_zeros((ra, rb), dtype=torch.float64)
        cols = max(1, SLICE // max(ra, rb))
        for lo in range(0, width, cols):
            x = _columns(a, name, lo, lo + cols)
            y = x if b is a else _columns(b, name, lo, lo + cols)
            out += x @ y.T
    assert out is not None
    return out


def plan(
    sizes: Sequence[int], n: int, chunk_size: int, floor: int = 0
) -> list[tuple[list[int], int]]:
    """Groups of consecutive units and their row-block size: (unit indices, b). The budget is
    max(chunk_size x max(sizes), floor) floats. A group whose n rows fit has b = n (one pass);
    a unit alone that does not fit has b = max(1, ⌊budget / (2 d)⌋) (two blocks alive)."""
    budget = max(chunk_size * max(sizes), floor)
    groups: list[tuple[list[int], int]] = []
    current: list[int] = []
    total = 0
    for i, d in enumerate(sizes):
        if current and n * (total + d) <= budget:
            current.append(i)
            total += d
            continue
        if current:
            groups.append((current, n))
        if n * d <= budget:
            current, total = [i], d
        else:
            groups.append(([i], max(1, budget // (2 * d))))
            current, total = [], 0
    if current:
        groups.append((current, n))
    return groups


def unit_grams(
    problem: ScoringProblem, on_rows: Callable[[Grads], None] | None = None
) -> Iterator[np.ndarray]:
    """Per unit in order, its (n, n) float64 Gram matrix of per-sample loss gradients.

    Peak memory as in the module docstring. `on_rows`, if given, sees every piece of
    per-sample gradients as it is formed (tests count what is alive)."""
    source = _RowSource(problem)
    n = source.fn.n
    primals = source.fn.primals(problem.names)
    sizes = [sum(primals[name].numel() for name in unit) for unit in problem.units]
    del primals

    def rows(names: Sequence[str], sl: slice) -> Block:
        block = source.rows(names, sl)
        if on_rows is not None:
            for piece in block:
                on_rows(piece)
        return block

    floor = int(problem.gradient_budget_mb * 2**20) // 4  # float32 per-sample gradients
    for indices, b in plan(sizes, n, problem.chunk_size, floor):
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
