import numpy as np
import pytest

from f3ocus_ray.strategies import (
    Selection,
    Strategy,
    make_strategy,
    register_strategy,
    strategy_names,
    unregister_strategy,
)
from f3ocus_ray.strategies.score_topk import ScoreTopKStrategy


@pytest.mark.parametrize("name", ["random", "first_k", "last_k"])
def test_budgeted_strategies_meet_each_budget(name):
    budgets = np.array([1, 4, 12, 3])
    for r in range(3):
        m = make_strategy(name, seed=7).select(r, budgets, 12).masks
        assert m.shape == (4, 12) and m.dtype == bool
        assert m.sum(1).tolist() == budgets.tolist()


def test_first_and_last_k_pick_the_ends():
    m = make_strategy("first_k", 0).select(0, np.array([2]), 5).masks
    assert m[0].tolist() == [True, True, False, False, False]
    m = make_strategy("last_k", 0).select(0, np.array([2]), 5).masks
    assert m[0].tolist() == [False, False, False, True, True]


def test_full_trains_everything_and_random_varies_by_round_not_by_call():
    assert make_strategy("full", 0).select(0, np.array([1, 2]), 6).masks.all()
    s = make_strategy("random", 3)
    b = np.array([3] * 8)
    r0, r0_again, r1 = (s.select(r, b, 12).masks for r in (0, 0, 1))
    assert (r0 == r0_again).all()
    assert (r0 != r1).any()
    assert (make_strategy("random", 4).select(0, b, 12).masks != r0).any()


def test_budget_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"budgets must lie in \[1, 5\]"):
        make_strategy("last_k", 0).select(0, np.array([6]), 5)


def test_score_top_k_takes_each_clients_best_units():
    scores = np.array([[0.1, 0.5, 0.2, 0.2], [0.4, 0.1, 0.3, 0.2]])
    m = make_strategy("lntk", 0).select(0, np.array([1, 2]), 4, scores).masks
    assert m.tolist() == [[False, True, False, False], [True, False, True, False]]
    # ties go to the lower index
    m = make_strategy("snip", 0).select(0, np.array([2]), 4, np.array([[0.2, 0.3, 0.3, 0.2]])).masks
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
    lntk = make_strategy("lntk", 0).select(0, budgets, 32, scores).masks
    f3 = make_strategy("f3ocus", 0, SelectionConfig(max_evals=5000))
    chosen = f3.select(0, budgets, 32, scores)
    mask = chosen.masks
    assert mask.sum(1).tolist() == [4] * 5
    assert mask.sum(0).var() < lntk.sum(0).var()
    assert (mask * scores).sum() >= 0.9 * (lntk * scores).sum()
    assert chosen.info is not None and chosen.info.n_evals <= 5000
    assert chosen.metrics(scores)["evaluations"] == chosen.info.n_evals
    again = make_strategy("f3ocus", 0, SelectionConfig(max_evals=5000))
    again = again.select(0, budgets, 32, scores).masks
    assert (again == mask).all()


class _MiddleK(Strategy):
    """A toy strategy: client i trains the k_i units in the middle of the stack."""

    def select(self, round_idx, budgets, num_units, scores=None) -> Selection:
        start = (num_units - np.asarray(budgets)) // 2
        units = np.arange(num_units)[None, :]
        return Selection((units >= start[:, None]) & (units < (start + budgets)[:, None]))


@pytest.fixture
def middle_k():
    register_strategy("middle_k", _MiddleK)  # the one line a new strategy needs
    yield
    unregister_strategy("middle_k")


def test_a_new_strategy_is_one_class_and_one_registration(middle_k):
    from f3ocus_ray.config import parse_config

    masks = make_strategy("middle_k", 0).select(0, np.array([2, 4]), 6).masks
    assert masks.astype(int).tolist() == [[0, 0, 1, 1, 0, 0], [0, 1, 1, 1, 1, 0]]
    cfg = parse_config({"federation": {"strategy": "middle_k"}})
    assert cfg.federation.strategy == "middle_k" and cfg.effective_scoring() is None
    assert "middle_k" in strategy_names()


def test_an_unknown_strategy_is_an_error_everywhere():
    from f3ocus_ray.config import ConfigError, parse_config

    with pytest.raises(ValueError, match="unknown selection strategy 'middle_k'"):
        make_strategy("middle_k", 0)
    with pytest.raises(ConfigError, match="federation.strategy: unknown strategy 'middle_k'"):
        parse_config({"federation": {"strategy": "middle_k"}})
    with pytest.raises(ValueError, match="name its scoring method"):
        register_strategy("top_k_of_nothing", ScoreTopKStrategy)


def test_the_strategy_owns_its_scoring_schedule():
    every = make_strategy("lntk", 0)
    assert [every.scores_due(r) for r in range(3)] == [True, True, True]
    once = make_strategy("f3ocus", 0, schedule="once")
    assert [once.scores_due(r) for r in range(3)] == [True, False, False]
    every_2 = make_strategy("lntk", 0, schedule="every_k", every_k=2)
    assert [every_2.scores_due(r) for r in range(4)] == [True, False, True, False]
    assert not any(make_strategy("last_k", 0).scores_due(r) for r in range(3))
