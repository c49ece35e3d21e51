"""LNTK eigenvalues against closed forms and explicitly built kernels, on small models."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from f3ocus_ray.scoring import ScoringProblem, score_problem, top_eigenvalue

torch.set_num_threads(1)


def _ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, targets)


class MLP(nn.Module):
    def __init__(self, branchy: bool = False):
        super().__init__()
        self.a = nn.Linear(6, 10)
        self.b = nn.Linear(10, 8)
        self.c = nn.Linear(8, 4)
        self.branchy = branchy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branchy and x.sum() > 1e9:  # data-dependent control flow: vmap cannot run it
            x = x * 0
        return self.c(torch.tanh(self.b(torch.tanh(self.a(x)))))


UNITS = (("a.weight", "a.bias"), ("b.weight", "b.bias"), ("c.weight", "c.bias"))


def _mlp_problem(model: nn.Module, n: int = 12, **kw) -> ScoringProblem:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 6, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    return ScoringProblem(model, UNITS, (x,), y, _ce, **kw)


def _explicit_loss_gram_top(model: nn.Module, problem: ScoringProblem) -> np.ndarray:
    """Per-sample gradients by plain autograd, one sample at a time, and a dense Gram."""
    params = dict(model.named_parameters())
    (x,) = problem.inputs
    out = []
    for unit in problem.units:
        rows = []
        for i in range(problem.n):
            loss = _ce(model(x[i : i + 1]), problem.targets[i : i + 1])
            grads = torch.autograd.grad(loss, [params[n] for n in unit])
            rows.append(torch.cat([g.reshape(-1) for g in grads]).double())
        j = torch.stack(rows)
        out.append(float(torch.linalg.eigvalsh(j @ j.T)[-1]))
    return np.array(out)


def test_linear_logits_mode_is_top_eigenvalue_of_x_xt():
    """y = W x with C outputs: Θ = (X Xᵀ) ⊗ I_C, so λ1(Θ) = λ1(X Xᵀ)."""
    torch.manual_seed(0)
    lin = nn.Linear(7, 3, bias=False)
    x = torch.randn(10, 7)
    problem = ScoringProblem(lin, (("weight",),), (x,), mode="logits", tol=1e-8)
    expected = np.linalg.eigvalsh(x.double().numpy() @ x.double().numpy().T)[-1]
    np.testing.assert_allclose(score_problem(problem), [expected], rtol=1e-5)


def test_loss_mode_matches_explicit_gram_of_per_sample_gradients():
    torch.manual_seed(0)
    model = MLP()
    problem = _mlp_problem(model, chunk_size=5)
    expected = _explicit_loss_gram_top(model, problem)
    np.testing.assert_allclose(score_problem(problem), expected, rtol=1e-5)


def test_non_vmappable_model_falls_back_to_a_per_sample_loop(caplog):
    torch.manual_seed(0)
    model = MLP(branchy=True)
    problem = _mlp_problem(model, chunk_size=4)
    with caplog.at_level(logging.WARNING, logger="f3ocus_ray.scoring.per_sample"):
        got = score_problem(problem)
    assert "per-sample loop" in caplog.text
    np.testing.assert_allclose(got, _explicit_loss_gram_top(model, problem), rtol=1e-5)


@pytest.mark.parametrize("mode", ["loss", "logits"])
def test_matrix_free_matches_exact_reference_on_mlp(mode):
    torch.manual_seed(0)
    problem = _mlp_problem(MLP(), mode=mode, chunk_size=5, tol=1e-9)
    fast = score_problem(problem)
    exact = score_problem(replace(problem, exact=True))
    np.testing.assert_allclose(fast, exact, rtol=1e-5)


def test_lanczos_on_a_known_spectrum():
    eig = torch.tensor([5.0, 4.9, 3.0, 1.0, 0.5, 0.0, 0.0, 0.0], dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64, generator=torch.Generator()))
    a = q @ torch.diag(eig) @ q.T
    full = top_eigenvalue(lambda v: a @ v, 8, tol=1e-12)
    assert full.converged and abs(full.value - 5.0) < 1e-10
    capped = top_eigenvalue(lambda v: a @ v, 8, tol=1e-14, max_iter=2)
    assert not capped.converged and capped.iterations == 2 and capped.value <= 5.0 + 1e-12
