"""The selection problem: validation, objectives, budgets, client-only top-k, the API's
argument checking."""

import numpy as np
import pytest

from f3ocus_ray.selection import (
    ALGORITHMS,
    SelectionError,
    SelectionProblem,
    make_params,
    make_termination,
    params_class,
    select,
)


def naive_objectives(scores, mask):
    importance = sum(
        scores[i, j] for i in range(mask.shape[0]) for j in range(mask.shape[1]) if mask[i, j]
    )
    counts = mask.sum(axis=0)
    return importance, float(np.var(counts))


@pytest.mark.parametrize(
    ("scores", "budgets", "mode", "message"),
    [
        (np.ones((3, 4)), [1, 5, 2], "exact", "budgets[1] = 5 exceeds the number of units L = 4"),
        (np.ones((3, 4)), [1, 0, 2], "exact", "budgets[1] = 0"),
        (np.ones((3, 4)), [1, 2], "exact", "expected shape (3,)"),
        (np.ones((3, 4)), [1, 2.5, 2], "exact", "must be integers: budgets[1] = 2.5"),
        (np.ones((3, 4)), True, "exact", "boolean"),
        (-np.eye(3, 4), 1, "exact", "non-negative: scores[0, 0] = -1.0"),
        (np.full((2, 2), np.nan), 1, "exact", "finite: scores[0, 0] = nan"),
        (np.array([[1.0, np.inf]]), 1, "exact", "finite: scores[0, 1] = inf"),
        (np.ones(4), 1, "exact", "2-D matrix"),
        (np.ones((0, 4)), 1, "exact", "at least one client"),
        (np.ones((2, 4)), 1, "some", "budget_mode must be one of"),
        ([["a", "b"]], 1, "exact", "numeric"),
    ],
)
def test_impossible_inputs_raise_a_clear_error(scores, budgets, mode, message):
    with pytest.raises(SelectionError, match=None) as err:
        SelectionProblem(scores, budgets, mode)
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)


def test_select_validates_before_searching():
    with pytest.raises(SelectionError, match="exceeds the number of units L = 4"):
        select(np.ones((2, 4)), 5)
    with pytest.raises(SelectionError, match=r"unknown selection algorithm 'nsga'.*'nsga2'"):
        select(np.ones((2, 4)), 1, algorithm="nsga")
    with pytest.raises(SelectionError, match="pick must be one of"):
        select(np.ones((2, 4)), 1, pick="elbow")


def test_unknown_params_list_the_valid_ones():
    with pytest.raises(SelectionError) as err:
        make_params("nsga2", {"pop": 10})
    text = str(err.value)
    assert "unknown parameter 'pop'" in text and "did you mean 'pop_size'" in text
    assert "'crossover_prob'" in text and "'archive_size'" in text
    with pytest.raises(SelectionError, match="n_ants must be an integer >= 2"):
        make_params("aco", {"n_ants": 1})
    with pytest.raises(SelectionError, match="evaporation must lie in"):
        make_params("aco", {"evaporation": 0.0})
    with pytest.raises(SelectionError, match="t_end must lie in"):
        make_params("sa", {"t_start": 0.01, "t_end": 0.1})
    with pytest.raises(SelectionError, match="formulation"):
        make_params("exact", {"formulation": "quadratic"})
    with pytest.raises(SelectionError, match="seed_topk must be true or false"):
        make_params("mopso", {"seed_topk": "yes"})
    with pytest.raises(SelectionError, match="mapping"):
        make_params("abc", [("limit", 3)])


def test_every_algorithm_has_a_frozen_params_dataclass():
    import dataclasses

    for name in ALGORITHMS:
        cls = params_class(name)
        assert dataclasses.is_dataclass(cls)
        params = make_params(name, None)
        field = dataclasses.fields(cls)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(params, field, getattr(params, field))
        assert make_params(name, params) is params
        assert cls.__doc__ and "Attributes:" in cls.__doc__


@pytest.mark.parametrize(
    "termination", [("n_evals", 0), ("n_eval", -5), ("generations", 10), ("time",), 100]
)
def test_bad_termination_is_rejected(termination):
    with pytest.raises(SelectionError, match="termination"):
        make_termination(termination)


def test_evaluate_matches_a_naive_computation_and_is_batch_independent():
    rng = np.random.default_rng(1)
    scores = rng.random((4, 7)) * 3
    problem = SelectionProblem(scores, [1, 3, 7, 2])
    masks = rng.random((20, 4, 7)) < 0.4
    F = problem.evaluate(masks)
    for mask, f in zip(masks, F, strict=True):
        imp, var = naive_objectives(scores, mask)
        assert f[0] == pytest.approx(-imp, rel=1e-12)
        assert f[1] == pytest.approx(var, rel=1e-12, abs=1e-12)
    # the value of a mask does not depend on the rest of the batch
    assert np.array_equal(problem.evaluate(masks[5]), F[5])
    assert np.array_equal(problem.evaluate(masks[3:9]), F[3:9])
    assert problem.importance(masks[0]) == pytest.approx(-F[0, 0])
    assert problem.variance(masks[0]) == pytest.approx(F[0, 1])
    with pytest.raises(SelectionError, match="masks must have shape"):
        problem.evaluate(np.zeros((4, 6), dtype=bool))


def test_budget_modes_define_feasibility():
    scores = np.ones((2, 4))
    exact = SelectionProblem(scores, [2, 3])
    at_most = SelectionProblem(scores, [2, 3], "at_most")
    full = np.array([[1, 1, 0, 0], [1, 1, 1, 0]], dtype=bool)
    fewer = np.array([[1, 0, 0, 0], [1, 1, 1, 0]], dtype=bool)
    empty = np.array([[0, 0, 0, 0], [1, 1, 1, 0]], dtype=bool)
    over = np.array([[1, 1, 1, 0], [1, 1, 1, 0]], dtype=bool)
    assert exact.feasible(full) and at_most.feasible(full)
    assert not exact.feasible(fewer) and at_most.feasible(fewer)
    assert not exact.feasible(empty) and not at_most.feasible(empty)
    assert not exact.feasible(over) and not at_most.feasible(over)
    with pytest.raises(
        SelectionError, match="client 0 trains 1 units, its budget allows exactly 2"
    ):
        exact.check_feasible(fewer)
    with pytest.raises(SelectionError, match="client 0 trains 3 units.*between 1 and 2"):
        at_most.check_feasible(over)


def test_client_topk_takes_each_clients_best_units_ties_to_the_lower_index():
    scores = np.array([[0.1, 0.9, 0.5, 0.9], [3.0, 1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    problem = SelectionProblem(scores, [2, 1, 3])
    expected = np.array([[0, 1, 0, 1], [1, 0, 0, 0], [1, 1, 1, 0]], dtype=bool)
    assert np.array_equal(problem.client_topk(), expected)
    imp, var = problem.evaluate(expected)
    assert -imp == pytest.approx(0.9 + 0.9 + 3.0 + 3.0)
    assert var == pytest.approx(np.var([2, 2, 1, 1]))
