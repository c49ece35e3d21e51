"""Gradients of the mean loss over a client's samples, and Hessian-gradient products.

Both run over chunks of `chunk_size` samples (batched forward, no vmap) and weight each chunk
by its share of the samples, so the result is that of the mean loss over all n.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor
from torch.func import grad

from f3ocus_ray.scoring.functional import ModelFunction
from f3ocus_ray.scoring.problem import ScoringProblem

Grads = dict[str, Tensor]


def _over_chunks(
    problem: ScoringProblem, per_chunk: Callable[[ModelFunction, Grads, slice], Grads]
) -> Grads:
    fn = problem.function()
    primals = fn.primals(problem.names)
    total: Grads | None = None
    for start in range(0, fn.n, problem.chunk_size):
        sl = slice(start, min(start + problem.chunk_size, fn.n))
        weight = (sl.stop - sl.start) / fn.n
        part = per_chunk(fn, primals, sl)
        scaled = {k: v * weight for k, v in part.items()}
        total = scaled if total is None else {k: total[k] + scaled[k] for k in total}
    assert total is not None
    return total


def _chunk_loss(problem: ScoringProblem, fn: ModelFunction, sl: slice) -> Callable[[Grads], Tensor]:
    targets, loss_fn = problem.require_loss()
    return lambda p: loss_fn(fn(p, *fn.rows(sl)), targets[sl])


def mean_loss_gradient(problem: ScoringProblem) -> Grads:
    """g = ∇_θ L for L the mean loss over the n samples, θ all units' parameters."""
    return _over_chunks(problem, lambda fn, p, sl: grad(_chunk_loss(problem, fn, sl))(p))


def hessian_gradient_product(problem: ScoringProblem, g: Grads) -> Grads:
    """H g = ∇_θ <∇_θ L, g> (reverse over reverse), H the Hessian of L over all units."""

    def per_chunk(fn: ModelFunction, p: Grads, sl: slice) -> Grads:
        loss_grad = grad(_chunk_loss(problem, fn, sl))

        def directional(q: Grads) -> Tensor:
            dq = loss_grad(q)
            return sum((dq[k] * g[k]).sum() for k in dq)

        return grad(directional)(p)

    return _over_chunks(problem, per_chunk)
