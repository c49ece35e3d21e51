"""LNTK loss mode in bounded memory: per unit, at most chunk_size per-sample gradient rows of the
largest unit alive, and the same kernels as the unbounded computation."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from f3ocus_ray.scoring import ScoringProblem, score_problem
from f3ocus_ray.scoring.per_sample import plan, unit_grams

torch.set_num_threads(1)

UNITS = (("a.weight", "a.bias"), ("b.weight", "b.bias"), ("c.weight", "c.bias"))


def _problem(
    n: int, chunk_size: int, budget: float = 0.0, vmap_size: int | None = None
) -> ScoringProblem:
    """The MLP's units have 70, 88 and 36 parameters; budget 0: the chunk bound alone."""
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("a", nn.Linear(6, 10))
    model.add_module("t", nn.Tanh())
    model.add_module("b", nn.Linear(10, 8))
    model.add_module("u", nn.Tanh())
    model.add_module("c", nn.Linear(8, 4))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 6, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    return ScoringProblem(
        model,
        UNITS,
        (x,),
        y,
        F.cross_entropy,
        chunk_size=chunk_size,
        gradient_budget_mb=budget,
        vmap_size=vmap_size,
    )


def _explicit_grams(problem: ScoringProblem) -> list[np.ndarray]:
    """All per-sample gradients by plain autograd, one sample at a time: J Jᵀ per unit."""
    params = dict(problem.model.named_parameters())
    (x,) = problem.inputs
    out = []
    for unit in problem.units:
        rows = []
        for i in range(problem.n):
            loss = F.cross_entropy(problem.model(x[i : i + 1]), problem.targets[i : i + 1])
            grads = torch.autograd.grad(loss, [params[n] for n in unit])
            rows.append(torch.cat([g.reshape(-1) for g in grads]).double())
        j = torch.stack(rows)
        out.append((j @ j.T).numpy())
    return out


def test_plan_groups_small_units_and_blocks_a_large_one():
    # budget 4 x 100 = 400 floats: units 0 (80 floats for n = 8) and 2 + 3 fit whole
    assert plan([10, 100, 10, 10], n=8, chunk_size=4) == [([0], 8), ([1], 2), ([2, 3], 8)]
    # everything fits: all units in one pass (the unbounded path's cost)
    assert plan([10, 20, 30], n=4, chunk_size=16) == [([0, 1, 2], 4)]
    # a unit that needs blocks never gets more than chunk_size rows per block
    assert plan([1, 100], n=50, chunk_size=3) == [([0], 50), ([1], 1)]
    assert plan([100], n=20, chunk_size=8) == [([0], 4)]  # two blocks of 4 rows: 8
    # a floor above the chunk bound: small models keep one pass
    assert plan([10, 100, 10, 10], n=8, chunk_size=4, floor=8 * 130) == [([0, 1, 2, 3], 8)]
    assert plan([10, 100, 10, 10], n=8, chunk_size=4, floor=8 * 130 - 1)[0] == ([0, 1, 2], 8)


def test_the_floor_keeps_a_small_model_in_one_pass():
    seen = []
    problem = _problem(n=12, chunk_size=2, budget=1.0)  # 1 MB: all three units at once
    grams = list(unit_grams(problem, on_rows=lambda p: seen.append((len(p), len(p["a.bias"])))))
    # every sample's gradients formed once, for all 6 tensors, 2 samples per vmapped call
    assert seen == [(6, 2)] * 6 and len(grams) == 3


@pytest.mark.parametrize("chunk_size", [1, 3, 64])
def test_grams_equal_the_explicit_per_sample_gradients_at_any_chunk_size(chunk_size):
    problem = _problem(n=12, chunk_size=chunk_size)
    expected = _explicit_grams(problem)
    got = list(unit_grams(problem))
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7 * np.abs(e).max())


@pytest.mark.parametrize(("chunk_size", "vmap_size"), [(2, None), (5, None), (8, 1)])
def test_at_most_chunk_size_rows_of_the_largest_unit_are_alive(chunk_size, vmap_size):
    problem = _problem(n=12, chunk_size=chunk_size, vmap_size=vmap_size)
    params = dict(problem.model.named_parameters())
    d_max = max(sum(params[n].numel() for n in unit) for unit in problem.units)
    alive: list[weakref.ref] = []
    peak = 0

    def on_rows(block: dict[str, torch.Tensor]) -> None:
        nonlocal peak
        alive.extend(weakref.ref(t) for t in block.values())
        peak = max(peak, sum(r().numel() for r in alive if r() is not None))

    grams = list(unit_grams(problem, on_rows=on_rows))
    assert 0 < peak <= chunk_size * d_max
    # the blocked path really ran (more than one block per unit) and gave the same kernel
    assert len(alive) > 2 * sum(len(u) for u in UNITS)
    for g, e in zip(grams, _explicit_grams(problem), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7 * np.abs(e).max())


def test_lntk_loss_scores_do_not_depend_on_chunk_size():
    small = score_problem(_problem(n=12, chunk_size=2))
    whole = score_problem(_problem(n=12, chunk_size=64))
    np.testing.assert_allclose(small, whole, rtol=1e-6)
