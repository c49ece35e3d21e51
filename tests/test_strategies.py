import numpy as np
import pytest

from f3ocus_ray.fl.strategies import make_strategy


@pytest.mark.parametrize("name", ["random", "first_k", "last_k"])
def test_budgeted_strategies_meet_each_budget(name):
    budgets = np.array([1, 4, 12, 3])
    for r in range(3):
        m = make_strategy(name, seed=7).select(r, budgets, 12)
        assert m.shape == (4, 12) and m.dtype == bool
        assert m.sum(1).tolist() == budgets.tolist()


def test_first_and_last_k_pick_the_ends():
    m = make_strategy("first_k", 0).select(0, np.array([2]), 5)
    assert m[0].tolist() == [True, True, False, False, False]
    m = make_strategy("last_k", 0).select(0, np.array([2]), 5)
    assert m[0].tolist() == [False, False, False, True, True]


def test_full_trains_everything_and_random_varies_by_round_not_by_call():
    assert make_strategy("full", 0).select(0, np.array([1, 2]), 6).all()
    s = make_strategy("random", 3)
    b = np.array([3] * 8)
    r0, r0_again, r1 = s.select(0, b, 12), s.select(0, b, 12), s.select(1, b, 12)
    assert (r0 == r0_again).all()
    assert (r0 != r1).any()
    assert (make_strategy("random", 4).select(0, b, 12) != r0).any()


def test_budget_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"budgets must lie in \[1, 5\]"):
        make_strategy("last_k", 0).select(0, np.array([6]), 5)
