"""LNTK importance: λ1(Θ^l) of each unit's layer-wise NTK Θ^l = J_l J_lᵀ on a client's samples.

Two choices of J_l (the paper does not say which outputs):
- `loss` (default): J_l is the Jacobian of the n per-sample losses w.r.t. unit l's parameters,
  so Θ^l is the n x n Gram matrix of per-sample gradients, built unit by unit in row blocks of
  at most `chunk_size` samples (`per_sample.py`, whose docstring states the peak memory:
  model + chunk_size x params(largest unit) x 4 bytes + one n x n kernel), then a dense
  `eigvalsh` per unit.
- `logits`: J_l is the Jacobian of all n x C output logits, Θ^l is (nC) x (nC). λ1 comes from
  matrix-free Lanczos (each step one vjp and one jvp per chunk of samples; J and Θ are never
  formed), to `tol` relative residual or `max_iter` steps.

`exact_eigenvalues` is the reference: explicit Jacobians sample by sample through the whole
model (no prefix split, no vmap over samples) and a dense eigendecomposition. Its memory is
(nC) x d_l floats per unit plus the smaller Gram matrix: for small n only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from torch.func import jacrev, jvp, vjp

from f3ocus_ray.scoring.functional import ModelFunction
from f3ocus_ray.scoring.lanczos import dense_top_eigenvalue, top_eigenvalue
from f3ocus_ray.scoring.per_sample import unit_grams
from f3ocus_ray.scoring.problem import ScoringProblem, flatten_units

log = logging.getLogger(__name__)


def lntk(problem: ScoringProblem) -> np.ndarray:
    """Per unit, λ1 of its layer-wise NTK in `problem.mode` (exact path if `problem.exact`)."""
    if problem.exact:
        return exact_eigenvalues(problem)
    if problem.mode == "loss":
        return loss_eigenvalues(problem)
    return logits_eigenvalues(problem)


def loss_eigenvalues(problem: ScoringProblem) -> np.ndarray:
    """λ1 of each unit's Gram matrix; one unit's kernel is alive at a time."""
    return np.array([np.linalg.eigvalsh(g)[-1] for g in unit_grams(problem)], dtype=np.float64)


def _add(acc: dict[str, Tensor] | None, new: dict[str, Tensor]) -> dict[str, Tensor]:
    return new if acc is None else {k: acc[k] + new[k] for k in acc}


def ntk_operator(
    fn: ModelFunction, primals: dict[str, Tensor], chunk_size: int
) -> Callable[[Tensor], Tensor]:
    """v -> J Jᵀ v for J the Jacobian of all n samples' outputs w.r.t. `primals`: per chunk of
    samples one vjp (Jᵀ v summed over chunks), then one jvp per chunk (J w)."""
    n = fn.n
    chunks = [slice(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]
    dtype = next(iter(primals.values())).dtype

    def on_chunk(sl: slice) -> Callable[[dict[str, Tensor]], Tensor]:
        return lambda p: fn(p, *fn.rows(sl))

    def matvec(v: Tensor) -> Tensor:
        v = v.to(dtype).view(n, -1)
        w = None
        for sl in chunks:
            out, pullback = vjp(on_chunk(sl), primals)
            w = _add(w, pullback(v[sl].view_as(out))[0])
        return torch.cat([jvp(on_chunk(sl), (primals,), (w,))[1].reshape(-1) for sl in chunks])

    return matvec


def logits_eigenvalues(problem: ScoringProblem) -> np.ndarray:
    fn = problem.function()
    with torch.no_grad():
        per_sample = fn(fn.primals(problem.names), *fn.rows(slice(0, 1))).numel()
    values = []
    for unit in problem.units:
        primals = fn.primals(unit)
        top = top_eigenvalue(
            ntk_operator(fn, primals, problem.chunk_size),
            fn.n * per_sample,
            tol=problem.tol,
            max_iter=problem.max_iter,
            generator=torch.Generator().manual_seed(problem.seed),
            device=next(iter(primals.values())).device,
        )
        if not top.converged:
            log.warning(
                "Lanczos stopped at max_iter=%d, residual %.2g", top.iterations, top.residual
            )
        log.debug("λ1 %.6g after %d Lanczos steps", top.value, top.iterations)
        values.append(top.value)
    return np.array(values, dtype=np.float64)


def exact_eigenvalues(problem: ScoringProblem) -> np.ndarray:
    fn = problem.function(use_split=False)
    if problem.mode == "loss":
        targets, loss_fn = problem.require_loss()

        def output(p: dict[str, Tensor], i: int) -> Tensor:
            return loss_fn(fn(p, *fn.rows(slice(i, i + 1))), targets[i : i + 1]).reshape(1)
    else:

        def output(p: dict[str, Tensor], i: int) -> Tensor:
            return fn(p, *fn.rows(slice(i, i + 1))).reshape(-1)

    values = []
    for unit in problem.units:
        primals = fn.primals(unit)
        jac = None  # (n * outputs, d_l), float64, filled sample by sample
        for i in range(fn.n):
            rows = flatten_units([unit], jacrev(output)(primals, i), batch_dims=1)[0]
            if jac is None:
                jac = rows.new_empty((fn.n * rows.shape[0], rows.shape[1]), dtype=torch.float64)
            jac[i * rows.shape[0] : (i + 1) * rows.shape[0]] = rows
        values.append(dense_top_eigenvalue(jac))
    return np.array(values, dtype=np.float64)
