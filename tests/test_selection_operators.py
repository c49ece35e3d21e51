"""The shared variation operators keep every budget, in both modes, on awkward budgets."""

import numpy as np
import pytest

from f3ocus_ray.selection import SelectionProblem
from f3ocus_ray.selection import operators as ops

MODES = ["exact", "at_most"]


def problems(mode):
    rng = np.random.default_rng(7)
    yield SelectionProblem(rng.random((6, 9)), [1, 2, 3, 9, 4, 8], mode)
    yield SelectionProblem(rng.random((4, 5)) ** 4, 5, mode)  # everybody trains everything
    yield SelectionProblem(rng.random((5, 1)), 1, mode)  # a single unit
    yield SelectionProblem(np.zeros((3, 6)), [2, 3, 1], mode)  # all-zero scores


def counts_ok(problem, masks):
    rows = masks.sum(-1)
    return np.all((rows >= problem.min_counts) & (rows <= problem.max_counts))


def test_top_counts_matches_a_stable_argsort_with_ties():
    rng = np.random.default_rng(0)
    for trial in range(100):
        values = rng.integers(0, 3, (6, 4, 7)).astype(float) if trial % 2 else rng.random((6, 4, 7))
        counts = rng.integers(0, 8, (6, 4))
        order = np.argsort(-values, axis=-1, kind="stable")
        ranks = np.argsort(order, axis=-1, kind="stable")
        assert np.array_equal(ops.top_counts(values, counts), ranks < counts[..., None])


@pytest.mark.parametrize("mode", MODES)
def test_sampling_recombination_mutation_keep_the_budgets(mode):
    for problem in problems(mode):
        rng = np.random.default_rng(3)
        a = ops.sample_masks(problem, 40, rng, include_topk=True)
        b = ops.sample_masks(problem, 40, rng)
        assert counts_ok(problem, a) and counts_ok(problem, b)
        assert np.array_equal(a[0], problem.client_topk())
        for mix in (0.0, 0.5, 1.0):
            child = ops.recombine(problem, a, b, rng, take_b=0.5, mix=mix)
            assert counts_ok(problem, child)
        for guidance in (0.0, 20.0):
            moved = ops.mutate(
                problem, a, rng, rng.integers(0, 6, 40), guidance=guidance, chain=0.5
            )
            assert counts_ok(problem, moved)
        keys = rng.random((40,) + problem.shape)
        assert counts_ok(problem, ops.decode_keys(problem, keys))


@pytest.mark.parametrize("mode", MODES)
def test_repair_fixes_any_mask_and_keeps_feasible_rows(mode):
    for problem in problems(mode):
        rng = np.random.default_rng(5)
        raw = rng.random((50,) + problem.shape) < rng.random((50, 1, 1))
        fixed = ops.repair(problem, raw, rng)
        assert counts_ok(problem, fixed)
        rows = raw.sum(-1)
        ok_rows = (rows >= problem.min_counts) & (rows <= problem.max_counts)
        assert np.array_equal(fixed[ok_rows], raw[ok_rows])
        # rows over budget only lose units, rows under budget only gain units
        over = rows > problem.max_counts
        assert not np.any(fixed[over] & ~raw[over])
        under = rows < problem.min_counts
        assert not np.any(raw[under] & ~fixed[under])


def test_mutation_moves_exactly_one_unit_per_move_in_exact_mode():
    problem = SelectionProblem(np.random.default_rng(2).random((8, 10)), 3)
    rng = np.random.default_rng(9)
    masks = ops.sample_masks(problem, 200, rng)
    moved = ops.mutate(problem, masks, rng, 1, guidance=0.0, chain=0.0)
    changed_rows = (moved != masks).any(-1).sum(-1)
    assert np.all(changed_rows == 1)
    assert np.all((moved != masks).sum((1, 2)) == 2)
    # an ejection chain changes two clients and moves usage by at most one unit
    chained = ops.mutate(problem, masks, rng, 1, guidance=0.0, chain=1.0)
    changed = (chained != masks).any(-1).sum(-1)
    # (a single client changes only when nobody else trains the unit it took)
    assert np.all(changed >= 1) and np.all(changed <= 2) and np.mean(changed == 2) > 0.8
    usage_shift = np.abs(chained.sum(1) - masks.sum(1)).sum(-1)
    assert np.all(usage_shift <= 2) and np.any(usage_shift == 0)


def test_guided_moves_follow_their_trade_off():
    """With strong guidance the moves raise importance or lower variance far more often than
    uniform moves do (each mask draws its own trade-off)."""
    problem = SelectionProblem(np.random.default_rng(4).random((10, 12)) ** 2, 4)
    rng = np.random.default_rng(1)
    masks = ops.sample_masks(problem, 400, rng)
    F0 = problem.evaluate(masks)

    def improving(guidance):
        moved = ops.mutate(problem, masks, np.random.default_rng(0), 1, guidance=guidance)
        F1 = problem.evaluate(moved)
        return np.mean((F1[:, 0] < F0[:, 0]) | (F1[:, 1] < F0[:, 1]))

    assert improving(40.0) > improving(0.0) + 0.1


def test_random_keys_round_trip():
    problem = SelectionProblem(np.random.default_rng(0).random((5, 7)), [1, 2, 3, 7, 4], "at_most")
    rng = np.random.default_rng(0)
    masks = ops.sample_masks(problem, 30, rng)
    assert np.array_equal(ops.decode_keys(problem, ops.encode_masks(masks)), masks)
