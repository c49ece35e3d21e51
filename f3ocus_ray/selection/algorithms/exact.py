"""The true Pareto front of small instances: the epsilon-constraint method as a MILP (HiGHS).

With the total ``T = sum_l n_l`` fixed, ``Var = sum_l n_l^2 / L - (T / L)^2``, so minimising
the variance is minimising ``Q = sum_l n_l^2``, an integer of the parity of ``T`` (n^2 = n
mod 2). The epsilon-constraint method maximises importance subject to ``Q <= eps`` and steps
``eps`` down over the achievable values: start unconstrained, then ``eps = Q* - 2`` after each
optimum ``Q*``, until ``eps`` falls below the least achievable ``Q`` (the balanced histogram,
always achievable since ``k_i <= L``). Every point of the front is found.

``n_l^2`` is linearised in one of two ways (``ExactParams.formulation``):

* ``"onehot"`` (default): binary ``z[l, c]`` (c = 0..N) with ``sum_c z = 1``,
  ``sum_c c z = n_l``, ``Q = sum c^2 z``; HiGHS branches well on the ``z`` (about 5x faster
  than the alternative on N = 10, L = 12 instances with long fronts);
* ``"incremental"``: continuous ``y[l, c]`` in [0, 1] (c = 1..N) with
  ``sum_c y = n_l`` and ``Q = sum (2c - 1) y``. Because the increments ``2c - 1`` grow with
  ``c``, the least ``sum (2c - 1) y`` for an integer ``n_l`` is exactly ``n_l^2``, so
  ``Q <= eps`` is exact with no integer variables beyond the mask.

``exact`` budgets fix ``T = sum k_i``. In ``at_most`` mode ``T`` varies, so the sweep is run
for every total ``T`` from ``sum k_i`` down to ``N`` (a constraint ``sum m = T``) and the
union is filtered; a total whose best importance and least variance are together dominated
by points already found is skipped. Meant for small instances (N = 10, L = 12 takes seconds).

:func:`enumerate_front` is the brute-force ground truth for tiny instances. :func:`run_exact`
is the registered runner (``algorithm="exact"``).
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array, csr_array, vstack

from ..base import check_float
from ..pareto import non_dominated
from ..problem import SelectionError, SelectionProblem
from ..registry import Found

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExactParams:
    """The epsilon-constraint MILP.

    Attributes:
        formulation: ``"onehot"`` (one-hot count variables, default) or ``"incremental"``
            (continuous increments) linearisation of ``n_l^2``.
        mip_rel_gap: HiGHS relative MIP gap; tiny so that each point is truly optimal.
        time_limit: wall seconds for the whole sweep (``None``: no limit). When it runs out
            the front found so far is returned with a warning: it is then not exact.
    """

    formulation: str = "onehot"
    mip_rel_gap: float = 1e-9
    time_limit: float | None = None

    def __post_init__(self) -> None:
        if self.formulation not in ("incremental", "onehot"):
            raise SelectionError(
                "ExactParams.formulation must be 'incremental' or 'onehot', "
                f"got {self.formulation!r}"
            )
        check_float(self, "mip_rel_gap", 0.0, 1.0)
        if self.time_limit is not None:
            check_float(self, "time_limit", 0.0, open_low=True)


@dataclass
class ExactFront:
    masks: np.ndarray  # (F, N, L) bool
    F: np.ndarray  # (F, 2) minimisation objectives
    n_solves: int
    seconds: float
    complete: bool


def _min_sum_sq(total: int, n_units: int) -> int:
    q, r = divmod(total, n_units)
    return r * (q + 1) ** 2 + (n_units - r) * q * q


class _Model:
    """The MILP of one problem; ``solve(eps, total)`` maximises importance with Q <= eps."""

    def __init__(self, problem: SelectionProblem, params: ExactParams) -> None:
        self.problem = problem
        self.params = params
        N, L = problem.shape
        nm = N * L
        onehot = params.formulation == "onehot"
        counts = np.arange(0, N + 1) if onehot else np.arange(1, N + 1)
        nc = counts.size
        ny = L * nc
        self.nm, self.ny = nm, ny
        n_var = nm + ny
        # objective: minimise -importance
        c = np.zeros(n_var)
        c[:nm] = -problem.scores.ravel()
        self.c = c
        integrality = np.zeros(n_var)
        integrality[:nm] = 1
        if onehot:
            integrality[nm:] = 1
        self.integrality = integrality
        self.bounds = Bounds(np.zeros(n_var), np.ones(n_var))
        rows: list[csr_array] = []
        lo: list[np.ndarray] = []
        hi: list[np.ndarray] = []
        # budgets: sum_l m[i, l] in [min_i, max_i]
        r = np.repeat(np.arange(N), L)
        rows.append(csr_array((np.ones(nm), (r, np.arange(nm))), shape=(N, n_var)))
        lo.append(problem.min_counts.astype(float))
        hi.append(problem.max_counts.astype(float))
        # link: sum_i m[i, l] - sum_c c' y[l, c] = 0 (c' = c for one-hot, 1 for increments)
        mi = np.arange(nm)
        ml = mi % L
        yi = nm + np.arange(ny)
        yl = np.repeat(np.arange(L), nc)
        yc = np.tile(counts, L)
        link = coo_array(
            (
                np.concatenate([np.ones(nm), -(yc if onehot else np.ones(ny)).astype(float)]),
                (np.concatenate([ml, yl]), np.concatenate([mi, yi])),
            ),
            shape=(L, n_var),
        ).tocsr()
        rows.append(link)
        lo.append(np.zeros(L))
        hi.append(np.zeros(L))
        if onehot:  # sum_c z[l, c] = 1
            rows.append(csr_array((np.ones(ny), (yl, yi)), shape=(L, n_var)))
            lo.append(np.ones(L))
            hi.append(np.ones(L))
        self.base = (vstack(rows).tocsr(), np.concatenate(lo), np.concatenate(hi))
        # Q = sum_l sum_c w_c y[l, c]
        w = (yc * yc) if onehot else (2 * yc - 1)
        q_row = np.zeros(n_var)
        q_row[nm:] = w
        self.q_row = q_row
        t_row = np.zeros(n_var)
        t_row[:nm] = 1.0
        self.t_row = t_row

    def solve(self, eps: float, total: int | None, time_left: float | None):
        A, lo, hi = self.base
        extra_a = [self.q_row[None]]
        extra_lo, extra_hi = [-np.inf], [eps]
        if total is not None:
            extra_a.append(self.t_row[None])
            extra_lo.append(total)
            extra_hi.append(total)
        A_all = vstack([A, csr_array(np.vstack(extra_a))]).tocsr()
        cons = LinearConstraint(
            A_all, np.concatenate([lo, extra_lo]), np.concatenate([hi, extra_hi])
        )
        options = {"mip_rel_gap": self.params.mip_rel_gap, "presolve": True}
        if time_left is not None:
            options["time_limit"] = max(time_left, 1e-3)
        res = milp(
            self.c,
            constraints=cons,
            integrality=self.integrality,
            bounds=self.bounds,
            options=options,
        )
        if res.status == 2:  # infeasible
            return None
        if res.x is None:
            if res.status == 1:  # time limit without a solution
                raise TimeoutError
            raise SelectionError(f"the exact MILP failed: {res.message}")
        mask = np.round(res.x[: self.nm]).astype(bool).reshape(self.problem.shape)
        if res.status == 1:
            raise _Partial(mask)
        return mask


class _Partial(Exception):
    def __init__(self, mask: np.ndarray) -> None:
        super().__init__("time limit")
        self.mask = mask


def exact_front(problem: SelectionProblem, params: ExactParams | None = None) -> ExactFront:
    """The exact Pareto front (masks and minimisation objectives), sorted by importance."""
    params = params or ExactParams()
    start = time.perf_counter()
    model = _Model(problem, params)
    N, L = problem.shape
    K = int(problem.budgets.sum())
    totals = [K] if problem.budget_mode == "exact" else list(range(K, N - 1, -1))
    fixed_total = problem.budget_mode == "at_most"
    masks: list[np.ndarray] = []
    objs: list[np.ndarray] = []
    n_solves = 0
    complete = True

    def time_left() -> float | None:
        if params.time_limit is None:
            return None
        return params.time_limit - (time.perf_counter() - start)

    try:
        for total in totals:
            q_min = _min_sum_sq(total, L)
            var_min = q_min / L - (total / L) ** 2
            eps = np.inf
            first = True
            while True:
                left = time_left()
                if left is not None and left <= 0:
                    raise TimeoutError
                n_solves += 1
                try:
                    mask = model.solve(eps, total if fixed_total else None, left)
                except _Partial as part:
                    masks.append(part.mask)
                    objs.append(problem.evaluate(part.mask))
                    raise TimeoutError from None
                if mask is None:
                    break
                f = problem.evaluate(mask)
                if first and objs:
                    # skip this total if its best corner is dominated by points already found
                    corner = np.array([f[0], var_min])
                    prev = np.array(objs)
                    if np.any(np.all(prev <= corner, axis=1) & np.any(prev < corner, axis=1)):
                        break
                first = False
                masks.append(mask)
                objs.append(f)
                q = int(problem.histogram(mask).astype(np.int64) @ problem.histogram(mask))
                if q <= q_min:
                    break
                eps = q - 2 + 0.5  # next achievable value (same parity), with slack
    except TimeoutError:
        complete = False
        log.warning(
            "exact: time limit of %.1fs reached after %d MILPs; the front is incomplete",
            params.time_limit,
            n_solves,
        )
    F = np.array(objs).reshape(-1, 2)
    keep = non_dominated(F)
    M = np.array(masks).reshape(-1, N, L)[keep]
    return ExactFront(
        masks=M,
        F=F[keep],
        n_solves=n_solves,
        seconds=time.perf_counter() - start,
        complete=complete,
    )


def run_exact(
    problem: SelectionProblem, params: ExactParams, *, seed: int, termination: object
) -> Found:
    """:func:`exact_front` as a registry runner (deterministic and exhaustive: the seed and
    the termination do not apply; ``ExactParams.time_limit`` bounds it)."""
    front = exact_front(problem, params)
    return Found(front.masks, front.F, front.n_solves, front.complete)


def _row_options(problem: SelectionProblem, i: int) -> np.ndarray:
    L = problem.n_units
    sizes = range(int(problem.min_counts[i]), int(problem.max_counts[i]) + 1)
    rows = []
    for size in sizes:
        for combo in itertools.combinations(range(L), size):
            row = np.zeros(L, dtype=bool)
            row[list(combo)] = True
            rows.append(row)
    return np.array(rows)


def enumerate_front(
    problem: SelectionProblem, max_masks: int = 5_000_000, chunk: int = 200_000
) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: evaluate every feasible mask; returns the front's (masks, F).

    Raises:
        SelectionError: if the instance has more than ``max_masks`` feasible masks.
    """
    options = [_row_options(problem, i) for i in range(problem.n_clients)]
    sizes = [len(o) for o in options]
    total = int(np.prod(np.array(sizes, dtype=np.float64)))
    if total > max_masks:
        raise SelectionError(
            f"enumerate_front: {total} feasible masks exceed max_masks = {max_masks}"
        )
    best_masks = np.zeros((0,) + problem.shape, dtype=bool)
    best_F = np.zeros((0, 2))
    for start in range(0, total, chunk):
        flat = np.arange(start, min(total, start + chunk))
        idx = np.array(np.unravel_index(flat, sizes)).T  # (c, N)
        masks = np.stack([options[i][idx[:, i]] for i in range(problem.n_clients)], axis=1)
        F = problem.evaluate_unchecked(masks)
        all_masks = np.concatenate([best_masks, masks])
        all_F = np.concatenate([best_F, F])
        keep = non_dominated(all_F)
        best_masks, best_F = all_masks[keep], all_F[keep]
    return best_masks, best_F
