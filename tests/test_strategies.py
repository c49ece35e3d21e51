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


def test_score_top_k_takes_each_clients_best_units():
    scores = np.array([[0.1, 0.5, 0.2, 0.2], [0.4, 0.1, 0.3, 0.2]])
    m = make_strategy("lntk", 0).select(0, np.array([1, 2]), 4, scores)
    assert m.tolist() == [[False, True, False, False], [True, False, True, False]]
    # ties go to the lower index
    m = make_strategy("snip", 0).select(0, np.array([2]), 4, np.array([[0.2, 0.3, 0.3, 0.2]]))
    assert m[0].tolist() == [False, True, True, False]
    with pytest.raises(ValueError, match="needs the clients' scores"):
        make_strategy("lntk", 0).select(0, np.array([1]), 4)
    with pytest.raises(ValueError, match="scores shape"):
        make_strategy("lntk", 0).select(0, np.array([1]), 4, np.ones((2, 4)))


def test_f3ocus_spreads_clients_where_lntk_piles_them_up():
    from f3ocus_ray.config import SelectionConfig
    from f3ocus_ray.selection.synthetic import paper_like_scores

    scores = paper_like_scores(seed=3, n_clients=5, n_units=32)
    budgets = np.full(5, 4)
    lntk = make_strategy("lntk", 0).select(0, budgets, 32, scores)
    f3 = make_strategy("f3ocus", 0, SelectionConfig(max_evals=5000))
    mask = f3.select(0, budgets, 32, scores)
    assert mask.sum(1).tolist() == [4] * 5
    assert mask.sum(0).var() < lntk.sum(0).var()
    assert (mask * scores).sum() >= 0.9 * (lntk * scores).sum()
    assert f3.last_result is not None and f3.last_result.n_evals <= 5000
    again = make_strategy("f3ocus", 0, SelectionConfig(max_evals=5000)).select(
        0, budgets, 32, scores
    )
    assert (again == mask).all()
