"""The five meta-heuristics (and the exact and Optuna baselines) through the one entry point.

Quality is measured by the hypervolume of (-importance, variance), both minimised, against
the non-lenient reference point: the exact front's worst corner pushed out by 10% of the
front's range in each objective (``hypervolume_ratio``).
"""

import time

import numpy as np
import pytest

from f3ocus_ray.selection import (
    ALGORITHMS,
    META_HEURISTICS,
    SelectionProblem,
    exact_front,
    hypervolume_ratio,
    select,
    solve,
)
from f3ocus_ray.selection.synthetic import paper_like_scores, peaked_scores

MODES = ["exact", "at_most"]


def budget_for(algorithm, n_evals):
    # Optuna evaluates one trial at a time (~1 ms each): keep its runs short
    return ("n_eval", min(n_evals, 200) if algorithm == "optuna" else n_evals)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_returned_mask_is_feasible(algorithm, mode):
    rng = np.random.default_rng(42)
    instances = [
        (rng.random((6, 9)), [1, 2, 3, 9, 4, 8]),  # k = 1 and k = L
        (peaked_scores(5, 8, seed=1), 3),
        (np.zeros((4, 5)), 2),  # no information at all
    ]
    for scores, budgets in instances:
        res = select(
            scores,
            budgets,
            algorithm=algorithm,
            budget_mode=mode,
            seed=1,
            termination=budget_for(algorithm, 400),
        )
        problem = SelectionProblem(scores, budgets, mode)
        assert res.mask.dtype == np.bool_ and res.mask.shape == problem.shape
        assert problem.feasible(res.mask)
        assert np.all(problem.feasible(res.front_masks))
        # the reported objectives are those of the masks
        F = problem.evaluate(res.front_masks)
        assert np.allclose(-F[:, 0], res.front_importance) and np.allclose(
            F[:, 1], res.front_variance
        )
        assert res.importance == pytest.approx(problem.importance(res.mask))
        assert res.variance == pytest.approx(problem.variance(res.mask))
        assert np.array_equal(res.front_masks[res.pick_index], res.mask)
        # the front is non-dominated: importance strictly down, variance strictly down
        assert np.all(np.diff(res.front_importance) < 0) and np.all(np.diff(res.front_variance) < 0)


# N = 5 clients, L = 10 units, budget 3, peaked scores (fronts of 20-26 points)
SMALL_SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def small_exact_fronts():
    fronts = {}
    for mode in MODES:
        for seed in SMALL_SEEDS:
            problem = SelectionProblem(peaked_scores(5, 10, seed=seed), 3, mode)
            fronts[mode, seed] = exact_front(problem).F
    return fronts


@pytest.mark.parametrize("algorithm", META_HEURISTICS)
def test_small_instances_reach_99_percent_of_the_exact_hypervolume(algorithm, small_exact_fronts):
    """exact budgets: 5,000 evaluations; at_most budgets (a larger space): 10,000."""
    for mode, n_evals, seeds in (("exact", 5000, SMALL_SEEDS), ("at_most", 10_000, [0, 1])):
        for seed in seeds:
            ref = small_exact_fronts[mode, seed]
            assert len(ref) >= 15
            problem = SelectionProblem(peaked_scores(5, 10, seed=seed), 3, mode)
            front = solve(problem, algorithm, seed=seed, termination=("n_eval", n_evals))
            ratio = hypervolume_ratio(front.F, ref)[0]
            assert ratio >= 0.99, (mode, seed, ratio)
            assert ratio <= 1.0 + 1e-9  # nothing beats the exact front


def test_a_tiny_budget_is_far_from_the_exact_front(small_exact_fronts):
    """The reference point is not lenient: the initial population alone scores well below
    0.99, so the test above measures search, not the reference point."""
    problem = SelectionProblem(peaked_scores(5, 10, seed=0), 3)
    for algorithm in META_HEURISTICS:
        front = solve(problem, algorithm, seed=0, termination=("n_eval", 50))
        ratio = hypervolume_ratio(front.F, small_exact_fronts["exact", 0])[0]
        assert ratio < 0.95, (algorithm, ratio)


@pytest.mark.parametrize("algorithm", [*META_HEURISTICS, "exact"])
def test_paper_like_case_pick_spreads_layers_and_keeps_90_percent_importance(algorithm):
    """5 clients, 32 layers, budget 4, each client's scores peaked at 2 of 4 shared layer
    regions: the default (knee) pick lowers the layer-usage variance of client-only top-k and
    keeps >= 90% of its importance, and trains more distinct layers."""
    for seed in range(3):
        res = select(
            paper_like_scores(seed), 4, algorithm=algorithm, seed=seed, termination=("n_eval", 5000)
        )
        assert res.pick == "knee"
        assert res.variance < res.topk_variance
        assert res.importance >= 0.9 * res.topk_importance
        covered = (res.mask.sum(0) > 0).sum()
        assert covered > (res.topk_mask.sum(0) > 0).sum()


@pytest.mark.parametrize("algorithm", [*META_HEURISTICS, "optuna"])
def test_same_seed_same_result(algorithm):
    scores = peaked_scores(6, 9, seed=4)
    kw = {"algorithm": algorithm, "termination": budget_for(algorithm, 1500)}
    a = select(scores, 3, seed=7, **kw)
    b = select(scores, 3, seed=7, **kw)
    c = select(scores, 3, seed=8, **kw)
    assert np.array_equal(a.front_masks, b.front_masks)
    assert np.array_equal(a.front_F, b.front_F)
    assert np.array_equal(a.mask, b.mask)
    # another seed searches differently (the fronts differ somewhere)
    same = a.front_masks.shape == c.front_masks.shape and np.array_equal(
        a.front_masks, c.front_masks
    )
    assert not same


@pytest.mark.parametrize("algorithm", META_HEURISTICS)
def test_termination_by_evaluations_generations_and_time(algorithm):
    scores = peaked_scores(5, 12, seed=0)
    res = select(scores, 3, algorithm=algorithm, termination=("n_eval", 1000))
    # every population size divides 1000; NSGA-II may fall short of unique offspring once
    assert 1000 <= res.n_evals < 1050
    res = select(scores, 3, algorithm=algorithm, termination=("n_gen", 5), params={})
    assert 100 <= res.n_evals <= 500
    start = time.perf_counter()
    res = select(scores, 3, algorithm=algorithm, termination=("time", 0.3))
    assert 0.25 < time.perf_counter() - start < 3.0
    assert res.n_evals > 100


def test_hypervolume_ratio_against_a_reference_front():
    scores = peaked_scores(5, 10, seed=1)
    exact = select(scores, 3, algorithm="exact")
    assert exact.hv_ratio is None
    assert exact.reference_point == pytest.approx(
        exact.front_F.max(0) + 0.1 * (exact.front_F.max(0) - exact.front_F.min(0))
    )
    res = select(scores, 3, algorithm="sa", reference=exact, termination=("n_eval", 200))
    assert np.array_equal(res.reference_point, exact.reference_point)
    assert 0 < res.hv_ratio < 1
    assert res.hypervolume == pytest.approx(res.hv_ratio * exact.hypervolume)
    metrics = res.metrics()
    assert metrics["hv_ratio"] == res.hv_ratio and metrics["n_evals"] == 200
    assert metrics["front_size"] == len(res.front_importance)
    assert metrics["importance_vs_topk"] == pytest.approx(res.importance / res.topk_importance)
    assert "hv_ratio" not in exact.metrics()


def test_algorithms_are_pymoo_algorithms_sharing_minimize_callbacks_and_result():
    from pymoo.core.callback import Callback
    from pymoo.optimize import minimize

    from f3ocus_ray.selection.algorithms.annealing import MultiObjectiveAnnealing, SAParams
    from f3ocus_ray.selection.base import PymooSelection

    class Count(Callback):
        def __init__(self):
            super().__init__()
            self.calls = 0
            self.sizes = []

        def notify(self, algorithm):
            self.calls += 1
            self.sizes.append(len(algorithm.opt))

    problem = SelectionProblem(peaked_scores(5, 10, seed=0), 3)
    callback = Count()
    res = minimize(
        PymooSelection(problem),
        MultiObjectiveAnnealing(SAParams()),
        ("n_gen", 12),
        seed=3,
        callback=callback,
    )
    assert callback.calls == 12 and min(callback.sizes) >= 1
    assert res.X.shape[1] == 50 and res.F.shape[1] == 2
    masks = res.X.reshape(-1, 5, 10)
    assert np.all(problem.feasible(masks))
    assert np.allclose(problem.evaluate(masks), res.F)
