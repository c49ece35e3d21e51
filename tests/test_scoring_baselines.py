"""Each baseline saliency score against its closed form on two independent linear maps.

Model: logits = [X W1ᵀ, X W2ᵀ], loss = mean_i ½‖logits_i − y_i‖². With residuals R_l = X W_lᵀ − Y_l:
g_l = R_lᵀ X / n, per-sample g_li = r_li x_iᵀ (Gram (R_l R_lᵀ) ∘ (X Xᵀ)), H g_l = g_l Σ with
Σ = XᵀX / n (the units do not interact), and with all-ones input Σ f(1; |W|) = Σ_l ‖W_l‖₁.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from f3ocus_ray.scoring import METHODS, ScoringProblem, normalise, score_problem

torch.set_num_threads(1)


class TwoMaps(nn.Module):
    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(2, 5, dtype=torch.float64))
        self.w2 = nn.Parameter(0.3 * torch.randn(3, 5, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x @ self.w1.T, x @ self.w2.T], dim=-1)


def _half_sq(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out - y) ** 2).sum(-1).mean()


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(0)
    model = TwoMaps()
    x = torch.randn(9, 5, dtype=torch.float64)
    y = torch.randn(9, 5, dtype=torch.float64)
    problem = ScoringProblem(model, (("w1",), ("w2",)), (x,), y, _half_sq, chunk_size=4)
    xs, ys = x.numpy(), y.numpy()
    ws = [model.w1.detach().numpy(), model.w2.detach().numpy()]
    res = [xs @ ws[0].T - ys[:, :2], xs @ ws[1].T - ys[:, 2:]]
    n = xs.shape[0]
    g = [r.T @ xs / n for r in res]
    grams = [(r @ r.T) * (xs @ xs.T) for r in res]
    hg = [gl @ (xs.T @ xs / n) for gl in g]
    return problem, ws, g, grams, hg, xs, ys


def _spt(g):
    # 25 parameters: the top 1% is the single most sensitive one (largest g²)
    top = int(np.argmax(np.concatenate([(gl**2).ravel() for gl in g])))
    return [float(top < g[0].size), float(top >= g[0].size)]


def _fedselect(ws, xs, ys):
    # 5 SGD steps (lr 1e-2) over chunks of 4 samples: starts 0, 4, 8, 3, 7 (mod 9)
    w = [wl.copy() for wl in ws]
    targets = [ys[:, :2], ys[:, 2:]]
    for start in (0, 4, 8, 3, 7):
        x = xs[start : start + 4]
        w = [
            wl - 1e-2 * (x @ wl.T - t[start : start + 4]).T @ x / len(x)
            for wl, t in zip(w, targets, strict=True)
        ]
    return [np.abs(a - b).sum() / np.abs(b).sum() for a, b in zip(w, ws, strict=True)]


def _expected(method, ws, g, grams, hg, xs, ys):
    n = grams[0].shape[0]

    def snr(gr):
        mean_sq = gr.sum() / n**2
        return mean_sq / ((np.trace(gr) - n * mean_sq) / (n - 1))

    table = {
        "lntk": [np.linalg.eigvalsh(gr)[-1] for gr in grams],
        "grad_norm": [np.linalg.norm(gl) for gl in g],
        "rgn": [np.linalg.norm(gl) / np.linalg.norm(w) for gl, w in zip(g, ws, strict=True)],
        "snr": [snr(gr) for gr in grams],
        "fisher": [np.trace(gr) / n for gr in grams],
        "magnitude": [np.abs(w).mean() for w in ws],
        "snip": [np.abs(w * gl).sum() for w, gl in zip(ws, g, strict=True)],
        "grasp": [(w * h).sum() for w, h in zip(ws, hg, strict=True)],
        "gradflow": [np.abs(w * h).sum() for w, h in zip(ws, hg, strict=True)],
        "synflow": [np.abs(w).sum() for w in ws],
    }
    if method == "spt":
        return np.array(_spt(g))
    if method == "fedselect":
        return np.array(_fedselect(ws, xs, ys))
    return np.array(table[method])


@pytest.mark.parametrize("method", METHODS)
def test_baseline_matches_its_closed_form(case, method):
    np.testing.assert_allclose(
        score_problem(case[0], method), _expected(method, *case[1:]), rtol=1e-9
    )


def test_grasp_keeps_its_sign_and_normalise_preserves_order():
    raw = np.array([2.0, -1.0, 1.0])
    np.testing.assert_allclose(normalise(raw), [0.5, -0.25, 0.25])
    np.testing.assert_allclose(normalise(np.zeros(4)), np.full(4, 0.25))


def test_logits_mode_on_independent_maps_is_lambda1_of_x_xt(case):
    problem = case[0]
    (x,) = problem.inputs
    expected = np.linalg.eigvalsh((x @ x.T).numpy())[-1]
    got = score_problem(ScoringProblem(problem.model, problem.units, (x,), mode="logits"))
    np.testing.assert_allclose(got, [expected, expected], rtol=1e-9)
