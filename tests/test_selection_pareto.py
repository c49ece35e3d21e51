"""Pareto utilities: non-dominated filtering, the archive, hypervolume, the pick rules."""

import numpy as np
import pytest

from f3ocus_ray.selection import (
    SelectionError,
    hypervolume,
    hypervolume_ratio,
    non_dominated,
    pick_index,
    reference_point,
)
from f3ocus_ray.selection.pareto import ParetoArchive, crowding_distance


def brute_non_dominated(F):
    keep = []
    for i, f in enumerate(F):
        dominated = any(np.all(g <= f) and np.any(g < f) for j, g in enumerate(F) if j != i)
        duplicate = any(np.array_equal(F[j], f) for j in keep)
        if not dominated and not duplicate:
            keep.append(i)
    return sorted(keep)


def test_non_dominated_matches_brute_force_with_ties_and_duplicates():
    rng = np.random.default_rng(0)
    for _ in range(30):
        F = rng.integers(0, 6, size=(40, 2)).astype(float)
        got = non_dominated(F)
        assert sorted(got.tolist()) == brute_non_dominated(F)
        # ordered by importance descending = first objective ascending, variance descending
        assert np.all(np.diff(F[got, 0]) > 0) and np.all(np.diff(F[got, 1]) < 0)


def test_archive_keeps_the_non_dominated_set_and_its_extremes_when_truncated():
    rng = np.random.default_rng(1)
    archive = ParetoArchive()
    seen_F = []
    for _ in range(10):
        F = rng.random((15, 2))
        X = rng.integers(0, 255, size=(15, 3), dtype=np.uint8)
        archive.add(X, F)
        seen_F.append(F)
    allF = np.concatenate(seen_F)
    expected = allF[non_dominated(allF)]
    assert np.array_equal(archive.F, expected)
    # the stored rows follow their objectives
    small = ParetoArchive(max_size=3)
    x = np.arange(6)[:, None]
    F = np.array([[0.0, 5.0], [1.0, 4.0], [1.1, 3.9], [2.0, 2.0], [4.0, 1.0], [5.0, 0.0]])
    small.add(x, F)
    assert len(small) == 3
    assert small.F[0].tolist() == [0.0, 5.0] and small.F[-1].tolist() == [5.0, 0.0]
    assert small.X[:, 0].tolist() == [0, 3, 5]  # the least crowded inner point survives
    entered = small.add(np.array([[9]]), np.array([[10.0, 10.0]]))
    assert not entered.any() and len(small) == 3


def test_crowding_distance_extremes_are_infinite():
    F = np.array([[0.0, 3.0], [1.0, 2.0], [2.5, 0.5], [3.0, 0.0]])
    cd = crowding_distance(F)
    assert np.isinf(cd[0]) and np.isinf(cd[-1])
    assert cd[1] == pytest.approx(2.5 / 3 + 2.5 / 3)


def test_reference_point_is_the_worst_corner_pushed_out_by_ten_percent_of_the_range():
    F = np.array([[-10.0, 4.0], [-8.0, 2.0], [-5.0, 0.0]])
    ref = reference_point(F)
    assert ref == pytest.approx([-5.0 + 0.5, 4.0 + 0.4])
    # one-point front: |worst| stands in for the range
    assert reference_point(np.array([[-10.0, 0.0]])) == pytest.approx([-9.0, 0.1])


def test_hypervolume_of_a_staircase_and_its_ratio():
    F = np.array([[-10.0, 4.0], [-8.0, 2.0], [-5.0, 0.0]])
    ref = np.array([-4.0, 5.0])
    # staircase: (-10..-8) x (4..5), (-8..-5) x (2..5), (-5..-4) x (0..5)
    expected = 2 * 1 + 3 * 3 + 1 * 5
    assert hypervolume(F, ref) == pytest.approx(expected)
    # points outside the reference box add nothing
    assert hypervolume(np.vstack([F, [[0.0, -1.0]]]), ref) == pytest.approx(expected)
    ratio, hv, ref2 = hypervolume_ratio(F[:2], F)
    assert ref2 == pytest.approx(reference_point(F))
    assert ratio == pytest.approx(hv / hypervolume(F, ref2))
    assert 0.5 < ratio < 1.0
    assert hypervolume_ratio(F, F)[0] == pytest.approx(1.0)


# a front with an obvious knee at importance 9, variance 1
IMP = np.array([10.0, 9.5, 9.0, 6.0, 3.0])
VAR = np.array([10.0, 4.0, 1.0, 0.5, 0.0])


def test_knee_is_the_point_farthest_from_the_extremes_line():
    assert pick_index(IMP, VAR, "knee") == 2
    # order does not matter
    perm = np.array([3, 0, 4, 2, 1])
    assert perm[pick_index(IMP[perm], VAR[perm], "knee")] == 2
    # a one-point front picks it; a two-point front keeps the most important one
    assert pick_index(IMP[:1], VAR[:1], "knee") == 0
    assert pick_index(IMP[[0, 4]], VAR[[0, 4]], "knee") == 0


def test_weighted_pick_moves_along_the_front_with_alpha():
    assert pick_index(IMP, VAR, "weighted", 1.0) == 0
    assert pick_index(IMP, VAR, "weighted", 0.0) == 4
    assert pick_index(IMP, VAR, "weighted", 0.5) == pick_index(IMP, VAR, "knee")


def test_threshold_picks_and_their_fallbacks():
    kw = {"topk_importance": 10.0, "topk_variance": 10.0}
    rule = "max_importance_under_variance"
    assert pick_index(IMP, VAR, rule, 0.5, **kw) == 1  # var <= 5
    assert pick_index(IMP, VAR, rule, 0.05, **kw) == 3  # var <= 0.5
    # nothing under the threshold: the lowest-variance point
    assert pick_index(IMP, VAR + 1.0, rule, 0.05, **kw) == 4
    rule = "min_variance_over_importance"
    assert pick_index(IMP, VAR, rule, 0.9, **kw) == 2  # imp >= 9
    assert pick_index(IMP, VAR, rule, 0.5, **kw) == 3  # imp >= 5
    assert pick_index(IMP, VAR, rule, 1.0, topk_importance=11, topk_variance=10) == 0


@pytest.mark.parametrize(
    ("rule", "param", "message"),
    [
        ("elbow", None, "pick must be one of"),
        ("knee", 0.3, "takes no pick_param"),
        ("weighted", 1.5, r"in \[0, 1\]"),
        ("min_variance_over_importance", -0.1, r"in \[0, 1\]"),
        ("max_importance_under_variance", -1.0, ">= 0"),
        ("weighted", float("nan"), "finite"),
    ],
)
def test_bad_pick_rules_are_rejected(rule, param, message):
    with pytest.raises(SelectionError, match=message):
        pick_index(IMP, VAR, rule, param, topk_importance=10.0, topk_variance=10.0)
