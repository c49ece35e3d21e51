"""The algorithm registry: a meta-heuristic added by one registration call is known everywhere
(``select``, ``solve``, ``make_params``, the config, the F3OCUS strategy), and an unknown name
is a clear error everywhere."""

from dataclasses import dataclass

import numpy as np
import pytest

from f3ocus_ray.config import ConfigError, parse_config
from f3ocus_ray.selection import (
    ALGORITHMS,
    META_HEURISTICS,
    CommonParams,
    Found,
    SelectionError,
    SelectionProblem,
    algorithm_names,
    get_algorithm,
    make_params,
    meta_heuristic_names,
    params_class,
    register_algorithm,
    select,
    solve,
    unregister_algorithm,
)
from f3ocus_ray.selection import operators as ops
from f3ocus_ray.selection.base import MaskAlgorithm
from f3ocus_ray.selection.synthetic import peaked_scores


@dataclass(frozen=True)
class RandomSearchParams(CommonParams):
    """Random search: fresh budget-respecting masks every generation.

    Attributes:
        batch: masks drawn per generation.
    """

    batch: int = 25


class RandomSearch(MaskAlgorithm):
    """The toy meta-heuristic: every generation draws ``batch`` new random masks; the
    archive of everything evaluated is the front (as for every :class:`MaskAlgorithm`)."""

    def _initialize_infill(self):
        return self.to_pop(self.initial_masks(self.params.batch))

    def _infill(self):
        return self.to_pop(ops.sample_masks(self.sp, self.params.batch, self.rng))


@pytest.fixture
def toy():
    register_algorithm("toy", RandomSearchParams, pymoo=RandomSearch, meta_heuristic=True)
    yield "toy"
    unregister_algorithm("toy")


def test_the_built_in_algorithms_are_the_registry(toy):
    assert ALGORITHMS == ("nsga2", "abc", "aco", "sa", "mopso", "exact", "optuna")
    assert META_HEURISTICS == ("nsga2", "abc", "aco", "sa", "mopso")
    assert algorithm_names() == (*ALGORITHMS, "toy")
    assert meta_heuristic_names() == (*META_HEURISTICS, "toy")
    assert get_algorithm("toy").params is params_class("toy") is RandomSearchParams


@pytest.mark.parametrize("mode", ["exact", "at_most"])
def test_a_registered_meta_heuristic_runs_through_select(toy, mode):
    scores, budgets = peaked_scores(6, 10, seed=2), [1, 2, 3, 4, 10, 3]
    problem = SelectionProblem(scores, budgets, mode)
    run = dict(budget_mode=mode, termination=("n_eval", 300), seed=5, params={"batch": 30})
    res = select(scores, budgets, algorithm=toy, **run)
    assert res.algorithm == "toy" and res.n_evals == 300
    assert res.mask.dtype == np.bool_ and res.mask.shape == problem.shape
    assert problem.feasible(res.mask) and np.all(problem.feasible(res.front_masks))
    assert np.allclose(problem.evaluate(res.front_masks)[:, 1], res.front_variance)
    assert np.all(np.diff(res.front_importance) < 0) and np.all(np.diff(res.front_variance) < 0)
    # seeded like every algorithm run by pymoo: the same seed, the same front
    again = select(scores, budgets, algorithm=toy, **run)
    assert np.array_equal(again.front_masks, res.front_masks)
    # its parameters are validated like the built-in ones'
    assert make_params(toy, {"batch": 7}) == RandomSearchParams(batch=7)
    with pytest.raises(SelectionError, match="unknown parameter 'bach'.*did you mean 'batch'"):
        solve(problem, toy, params={"bach": 7})


def test_the_config_and_the_f3ocus_strategy_take_a_registered_algorithm(toy):
    from f3ocus_ray.strategies import make_strategy

    cfg = parse_config({"selection": {"algorithm": toy, "max_evals": 200, "params": {"batch": 20}}})
    assert cfg.selection.algorithm == "toy"
    with pytest.raises(ConfigError, match="selection.params: unknown parameter 'pop_size'"):
        parse_config({"selection": {"algorithm": toy, "params": {"pop_size": 20}}})
    budgets = np.array([2, 3, 1, 4])
    strategy = make_strategy("f3ocus", seed=1, selection=cfg.selection)
    chosen = strategy.select(0, budgets, 8, peaked_scores(4, 8, seed=0))
    assert chosen.masks.sum(axis=1).tolist() == budgets.tolist()
    assert chosen.info.algorithm == "toy" and chosen.info.n_evals == 200


def test_an_unknown_algorithm_is_refused_everywhere():
    assert "toy" not in algorithm_names()  # the fixture removed it
    problem = SelectionProblem(peaked_scores(3, 5, seed=0), 2)
    listed = r"unknown selection algorithm 'toy'; valid: \['nsga2', 'abc', .*'optuna'\]"
    with pytest.raises(SelectionError, match=listed):
        select(problem.scores, 2, algorithm="toy")
    with pytest.raises(SelectionError, match=listed):
        solve(problem, "toy")
    with pytest.raises(SelectionError, match=listed):
        make_params("toy")
    with pytest.raises(SelectionError, match="'mopso2' \\(did you mean 'mopso'\\?\\)"):
        solve(problem, "mopso2")
    with pytest.raises(
        ConfigError,
        match="selection.algorithm: unknown selection algorithm 'toy'; choose from nsga2, ",
    ):
        parse_config({"selection": {"algorithm": "toy"}})
    with pytest.raises(ConfigError, match="'nsga3' \\(did you mean 'nsga2'\\?\\)"):
        parse_config({"selection": {"algorithm": "nsga3"}})
    with pytest.raises(SelectionError, match="unknown selection algorithm 'toy'"):
        unregister_algorithm("toy")


def test_a_runner_registers_with_run_and_bad_registrations_are_refused():
    def client_topk_only(problem, params, *, seed, termination):
        topk = problem.client_topk()
        return Found(topk[None], problem.evaluate(topk)[None], 1)

    register_algorithm("topk", RandomSearchParams, run=client_topk_only)
    try:
        problem = SelectionProblem(peaked_scores(3, 5, seed=0), 2)
        res = select(problem.scores, 2, algorithm="topk")
        assert np.array_equal(res.mask, problem.client_topk()) and res.n_evals == 1
        assert "topk" in algorithm_names() and "topk" not in meta_heuristic_names()
        with pytest.raises(SelectionError, match="'topk' is already registered"):
            register_algorithm("topk", RandomSearchParams, run=client_topk_only)
    finally:
        unregister_algorithm("topk")
    with pytest.raises(SelectionError, match="exactly one of pymoo= or run="):
        register_algorithm("both", RandomSearchParams, pymoo=RandomSearch, run=client_topk_only)
    with pytest.raises(SelectionError, match="exactly one of pymoo= or run="):
        register_algorithm("neither", RandomSearchParams)
    with pytest.raises(SelectionError, match="must be a dataclass"):
        register_algorithm("plain", dict, pymoo=RandomSearch)
    assert algorithm_names() == ALGORITHMS
