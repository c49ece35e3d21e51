"""The exact epsilon-constraint MILP against brute-force enumeration."""

import numpy as np
import pytest

from f3ocus_ray.selection import (
    ExactParams,
    SelectionError,
    SelectionProblem,
    enumerate_front,
    exact_front,
    select,
)
from f3ocus_ray.selection.synthetic import peaked_scores


def tiny_instances(mode):
    rng = np.random.default_rng(11)
    yield SelectionProblem(rng.random((3, 6)), [2, 3, 2], mode)
    yield SelectionProblem(peaked_scores(3, 6, seed=1, width=1.0, noise=0.2), 3, mode)
    # integer scores: many ties in importance
    yield SelectionProblem(rng.integers(0, 4, (3, 6)).astype(float), [1, 2, 4], mode)
    if mode == "exact":  # a longer front (10 points); its at_most twin takes 1 s to enumerate
        yield SelectionProblem(peaked_scores(4, 6, seed=2, width=1.0, noise=0.2), 3, mode)


@pytest.mark.parametrize("formulation", ["onehot", "incremental"])
@pytest.mark.parametrize("mode", ["exact", "at_most"])
def test_exact_front_equals_brute_force_enumeration(mode, formulation):
    for problem in tiny_instances(mode):
        front = exact_front(problem, ExactParams(formulation=formulation))
        masks, F = enumerate_front(problem)
        assert front.complete
        assert front.F.shape == F.shape, (front.F, F)
        assert np.allclose(front.F, F, rtol=0, atol=1e-9)
        # the masks are feasible and have the objectives reported
        problem.check_feasible(front.masks)
        assert np.allclose(problem.evaluate(front.masks), front.F, atol=1e-12)


def test_a_real_trade_off_is_found():
    """On peaked scores the exact front spans from client-only top-k to the balanced
    histogram (the least variance any mask can have)."""
    problem = SelectionProblem(peaked_scores(4, 8, seed=3), 3)
    front = exact_front(problem)
    assert len(front.F) >= 5
    topk = problem.evaluate(problem.client_topk())
    assert front.F[0] == pytest.approx(topk)  # max importance end
    # 12 units over 8 layers: four layers used twice, four once
    assert front.F[-1, 1] == pytest.approx(np.var([2, 2, 2, 2, 1, 1, 1, 1]))


def test_equal_scores_give_a_single_balanced_point():
    problem = SelectionProblem(np.ones((4, 6)), 3)
    front = exact_front(problem)
    assert front.F.shape == (1, 2)
    assert front.F[0] == pytest.approx([-12.0, 0.0])


def test_select_exact_and_the_brute_force_guard():
    res = select(np.random.default_rng(0).random((3, 5)), 2, algorithm="exact")
    assert res.n_evals >= len(res.front_importance)
    with pytest.raises(SelectionError, match="exceed max_masks"):
        enumerate_front(SelectionProblem(np.ones((8, 12)), 4), max_masks=1000)
