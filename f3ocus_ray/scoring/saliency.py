"""The layer-selection baselines of the paper's Table 1 as per-unit importance scores.

Every scorer maps a `ScoringProblem` to one float per unit, larger = more important. g is the
gradient of the mean loss over the client's n samples, g_i that of sample i's loss, θ a unit's
parameters; each docstring states the score and its reduction over the unit's parameters.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.func import grad

from f3ocus_ray.scoring.gradients import hessian_gradient_product, mean_loss_gradient
from f3ocus_ray.scoring.per_sample import per_sample_grams
from f3ocus_ray.scoring.problem import ScoringProblem, unit_sums


def _sq_norms(problem: ScoringProblem, values: dict[str, Tensor]) -> np.ndarray:
    return unit_sums(problem.units, {k: v.double() ** 2 for k, v in values.items()})


def grad_norm(problem: ScoringProblem) -> np.ndarray:
    """‖g‖₂, the L2 norm over all of the unit's parameters."""
    return np.sqrt(_sq_norms(problem, mean_loss_gradient(problem)))


def rgn(problem: ScoringProblem) -> np.ndarray:
    """Relative gradient norm ‖g‖₂ / ‖θ‖₂, both L2 over the unit (Lee et al. 2023)."""
    theta = np.sqrt(_sq_norms(problem, problem.parameters()))
    return grad_norm(problem) / np.maximum(theta, np.finfo(float).tiny)


def snr(problem: ScoringProblem) -> np.ndarray:
    """Gradient signal-to-noise ‖ḡ‖² / tr Cov(g_i): ḡ the mean of the per-sample gradients,
    Cov their sample covariance (n-1); both summed over the unit's parameters."""
    grams = per_sample_grams(problem)
    n = grams.shape[1]
    mean_sq = grams.sum(axis=(1, 2)) / n**2  # ‖ḡ‖² = 1ᵀ G 1 / n²
    spread = (np.trace(grams, axis1=1, axis2=2) - n * mean_sq) / max(n - 1, 1)
    return mean_sq / np.maximum(spread, np.finfo(float).tiny)


def fisher(problem: ScoringProblem) -> np.ndarray:
    """Empirical Fisher (FishMask, Sung et al. 2021): (1/n) Σ_i g_i², summed over the unit."""
    grams = per_sample_grams(problem)
    return np.trace(grams, axis1=1, axis2=2) / grams.shape[1]


def magnitude(problem: ScoringProblem) -> np.ndarray:
    """Weight magnitude: the mean of |θ| over the unit's parameters (data-free)."""
    params = problem.parameters()
    abs_sums = unit_sums(problem.units, {k: v.abs() for k, v in params.items()})
    sizes = np.array([sum(params[n].numel() for n in unit) for unit in problem.units])
    return abs_sums / sizes


def snip(problem: ScoringProblem) -> np.ndarray:
    """SNIP connection sensitivity Σ|θ ⊙ g| over the unit (Lee et al. 2019)."""
    g = mean_loss_gradient(problem)
    return unit_sums(problem.units, {k: (v * g[k]).abs() for k, v in problem.parameters().items()})


def _theta_hg(problem: ScoringProblem) -> dict[str, Tensor]:
    hg = hessian_gradient_product(problem, mean_loss_gradient(problem))
    return {k: v.double() * hg[k].double() for k, v in problem.parameters().items()}


def grasp(problem: ScoringProblem) -> np.ndarray:
    """GraSP Σ θ ⊙ Hg over the unit, signed (Wang et al. 2020; their pruning score is
    -θ ⊙ Hg, removing the largest, so the importance is its negation). H: Hessian of the mean
    loss over all units' parameters, by Hessian-vector product."""
    return unit_sums(problem.units, _theta_hg(problem))


def gradflow(problem: ScoringProblem) -> np.ndarray:
    """Gradient-flow preservation Σ|θ ⊙ Hg| over the unit: how much removing the unit would
    change the gradient norm, either way (Lubana & Dick 2021, GraSP without the sign)."""
    return unit_sums(problem.units, {k: v.abs() for k, v in _theta_hg(problem).items()})


def synflow(problem: ScoringProblem) -> np.ndarray:
    """SynFlow (Tanaka et al. 2020), data-free: R = Σ f(1; |θ|), the model's outputs summed, with
    every parameter replaced by its absolute value and every input by ones (one sample of the
    inputs' shapes: an all-ones image, token id 1, attention on), in float64; the score is
    Σ |θ| ⊙ ∂R/∂|θ| over the unit. Exact for positively homogeneous nets; for transformers
    (LayerNorm, softmax) a heuristic that can be negative."""
    ones = tuple(
        torch.ones_like(x[:1], dtype=torch.float64 if x.is_floating_point() else x.dtype)
        for x in problem.inputs
    )
    fn = problem.function(ones, use_split=False)
    state = {
        k: (v.abs().double() if v.is_floating_point() else v) for k, v in fn.constants().items()
    }
    unit_abs = {k: state[k] for k in problem.names}

    def total(p: dict[str, Tensor]) -> Tensor:
        return fn({**state, **p}, *ones).sum()

    dr = grad(total)(unit_abs)
    return unit_sums(problem.units, {k: v * dr[k] for k, v in unit_abs.items()})


SPT_TOP_FRACTION = 0.01  # SPT's budget of sensitive parameters: the top 1% of the units' own


def spt(problem: ScoringProblem) -> np.ndarray:
    """SPT (He et al. 2023), layer-level: a parameter's sensitivity is the first-order loss drop
    of a gradient step on it alone, ∝ g²; the unit's score is how many of the top
    SPT_TOP_FRACTION most sensitive parameters (over all units) it holds (a count, so a unit
    rich in sensitive weights gets the structured tuning, as SPT allocates it)."""
    g = mean_loss_gradient(problem)
    sens = {k: v.double() ** 2 for k, v in g.items()}
    flat = torch.cat([sens[n].flatten() for n in problem.names])
    k = max(1, round(SPT_TOP_FRACTION * flat.numel()))
    threshold = torch.topk(flat, k).values.min()
    return unit_sums(problem.units, {n: (v >= threshold).double() for n, v in sens.items()})


FEDSELECT_STEPS = 5  # local SGD steps of the probe
FEDSELECT_LR = 1e-2


def fedselect(problem: ScoringProblem) -> np.ndarray:
    """FedSelect (Tamirisa et al. 2024), layer-level: the parameters that change most in local
    training are the ones worth fine-tuning; the unit's score is Σ|Δθ| / Σ|θ| over the unit after
    FEDSELECT_STEPS SGD steps (lr FEDSELECT_LR, cycling over chunks of the n samples) on all
    units at once. The only scorer that writes parameters: it puts them back before returning
    (requires_grad flags are restored by the caller)."""
    params = dict(problem.model.named_parameters())
    before = {n: params[n].detach().clone() for n in problem.names}
    for p in problem.model.parameters():
        p.requires_grad_(False)
    trainable = [params[n].requires_grad_(True) for n in problem.names]
    opt = torch.optim.SGD(trainable, lr=FEDSELECT_LR)
    n = problem.inputs[0].shape[0]
    try:
        for step in range(FEDSELECT_STEPS):
            start = (step * problem.chunk_size) % n
            sl = slice(start, start + problem.chunk_size)
            logits = problem.logits(sl)
            loss = problem.loss_fn(logits, problem.targets[sl])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        moved = {k: (params[k].detach() - v).abs() for k, v in before.items()}
    finally:
        with torch.no_grad():
            for k, v in before.items():
                params[k].copy_(v)
                params[k].grad = None
    size = unit_sums(problem.units, {k: v.abs() for k, v in before.items()})
    return unit_sums(problem.units, moved) / np.maximum(size, np.finfo(float).tiny)
