"""The largest eigenvalue of a symmetric PSD operator given only as a matrix-vector product."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class TopEigen:
    value: float
    iterations: int
    converged: bool
    residual: float  # ||A y - value y|| of the Ritz vector y: some eigenvalue is that close


def top_eigenvalue(
    matvec: Callable[[Tensor], Tensor],
    dim: int,
    *,
    tol: float = 1e-6,
    max_iter: int = 100,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> TopEigen:
    """Lanczos with full reorthogonalisation, vectors in float64, one matvec per iteration.

    Stops when the Ritz residual is <= tol * value (so the value is within that relative
    distance of an eigenvalue), when the Krylov space is exhausted (exact), or at `max_iter`.
    """
    q = torch.randn(dim, generator=generator, dtype=torch.float64).to(device)
    basis = [q / q.norm()]
    alphas: list[float] = []
    betas: list[float] = []
    value, residual = 0.0, float("inf")
    for k in range(min(max_iter, dim)):
        w = matvec(basis[-1]).to(torch.float64)
        alphas.append(float(w @ basis[-1]))
        stack = torch.stack(basis)
        for _ in range(2):  # twice is enough to keep the basis orthogonal in floating point
            w = w - stack.T @ (stack @ w)
        beta = float(w.norm())
        ritz, vecs = np.linalg.eigh(np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1))
        value = float(ritz[-1])
        residual = beta * abs(float(vecs[-1, -1]))
        scale = max(abs(value), float(np.abs(ritz).max()), np.finfo(float).tiny)
        if residual <= tol * scale or beta <= 1e-13 * scale or k + 1 == dim:
            return TopEigen(value, k + 1, True, residual)
        betas.append(beta)
        basis.append(w / beta)
    return TopEigen(value, len(alphas), False, residual)


def dense_top_eigenvalue(jacobian: Tensor) -> float:
    """λ1(J Jᵀ) = λ1(Jᵀ J) from the smaller of the two Gram matrices, dense, float64."""
    j = jacobian.double()
    g = j @ j.T if j.shape[0] <= j.shape[1] else j.T @ j
    return float(torch.linalg.eigvalsh(g)[-1])
