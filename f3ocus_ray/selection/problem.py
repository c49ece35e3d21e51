"""The server-side selection problem: scores and budgets in, objectives of masks out.

A decision is a binary mask ``M`` (N clients x L units): ``M[i, l]`` says that client ``i``
trains unit ``l``. Two objectives (PAPER.md, Step 2):

* importance ``sum(M * S)``, to be maximised;
* the variance of the unit-usage histogram ``n_l = sum_i M[i, l]``,
  ``Var = (1/L) sum_l (n_l - mean(n))**2``, to be minimised.

Internally every algorithm minimises ``F = (-importance, variance)``.

Budgets: in ``exact`` mode (the default, as in the paper's figure) client ``i`` trains exactly
``k_i`` units; in ``at_most`` mode it trains between 1 and ``k_i`` units.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

BudgetMode = Literal["exact", "at_most"]
BUDGET_MODES: tuple[str, ...] = ("exact", "at_most")


class SelectionError(ValueError):
    """An impossible selection input (bad scores, budgets, masks or options)."""


def _as_scores(scores: object) -> np.ndarray:
    try:
        arr = np.array(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SelectionError(f"scores must be a numeric N x L matrix: {exc}") from None
    if arr.ndim != 2:
        raise SelectionError(
            f"scores must be a 2-D matrix (N clients x L units), got shape {arr.shape}"
        )
    n, l_units = arr.shape
    if n < 1 or l_units < 1:
        raise SelectionError(f"scores must have at least one client and one unit, got {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise SelectionError(
            f"scores must be finite: scores[{i}, {j}] = {arr[i, j]} "
            f"({int(bad.sum())} non-finite entries)"
        )
    neg = arr < 0
    if neg.any():
        i, j = np.argwhere(neg)[0]
        raise SelectionError(
            f"scores must be non-negative: scores[{i}, {j}] = {arr[i, j]} "
            f"({int(neg.sum())} negative entries)"
        )
    arr.setflags(write=False)
    return arr


def _as_budgets(budgets: object, n_clients: int, n_units: int) -> np.ndarray:
    if isinstance(budgets, bool | np.bool_):
        raise SelectionError("budgets must be integers, got a boolean")
    try:
        raw = np.array(budgets, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SelectionError(f"budgets must be an integer or N integers: {exc}") from None
    if raw.ndim == 0:
        raw = np.full(n_clients, float(raw))
    if raw.ndim != 1 or raw.shape[0] != n_clients:
        raise SelectionError(
            f"budgets must be one integer or one per client: expected shape ({n_clients},) "
            f"to match scores with {n_clients} clients, got shape {raw.shape}"
        )
    if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
        i = int(np.flatnonzero(~np.isfinite(raw) | (raw != np.round(raw)))[0])
        raise SelectionError(f"budgets must be integers: budgets[{i}] = {raw[i]}")
    out = raw.astype(np.int64)
    low = np.flatnonzero(out < 1)
    if low.size:
        i = int(low[0])
        raise SelectionError(f"budgets must be >= 1: budgets[{i}] = {out[i]}")
    high = np.flatnonzero(out > n_units)
    if high.size:
        i = int(high[0])
        raise SelectionError(f"budgets[{i}] = {out[i]} exceeds the number of units L = {n_units}")
    out.setflags(write=False)
    return out


class SelectionProblem:
    """Scores ``S`` (N x L, non-negative), budgets ``k`` (N,), a budget mode.

    Args:
        scores: importance of unit ``l`` for client ``i``; finite and ``>= 0``.
        budgets: one integer for all clients or one per client, ``1 <= k_i <= L``.
        budget_mode: ``"exact"`` (``sum_l M[i, l] == k_i``) or ``"at_most"``
            (``1 <= sum_l M[i, l] <= k_i``).

    Raises:
        SelectionError: on any impossible input, naming what is wrong.
    """

    def __init__(
        self, scores: object, budgets: object, budget_mode: BudgetMode | str = "exact"
    ) -> None:
        if budget_mode not in BUDGET_MODES:
            raise SelectionError(
                f"budget_mode must be one of {list(BUDGET_MODES)}, got {budget_mode!r}"
            )
        self.scores = _as_scores(scores)
        self.n_clients, self.n_units = self.scores.shape
        self.budgets = _as_budgets(budgets, self.n_clients, self.n_units)
        self.budget_mode: str = budget_mode
        # the row-count bounds every feasible mask satisfies
        self.min_counts = (
            self.budgets.copy() if budget_mode == "exact" else np.ones_like(self.budgets)
        )
        self.min_counts.setflags(write=False)
        self.max_counts = self.budgets

    # ------------------------------------------------------------------ shapes
    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_clients, self.n_units)

    def _as_masks(self, masks: object) -> tuple[np.ndarray, bool]:
        arr = np.asarray(masks)
        single = arr.ndim == 2
        if single:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1:] != self.shape:
            raise SelectionError(
                f"masks must have shape (N, L) = {self.shape} or (P, N, L), got {np.shape(masks)}"
            )
        if arr.dtype != np.bool_:
            if not np.all((arr == 0) | (arr == 1)):
                raise SelectionError("masks must be binary (0/1 or bool)")
            arr = arr.astype(bool)
        return arr, single

    # -------------------------------------------------------------- objectives
    def histogram(self, masks: object) -> np.ndarray:
        """Unit-usage counts ``n_l`` of each mask: (P, L) int64 (or (L,) for one mask)."""
        arr, single = self._as_masks(masks)
        counts = arr.sum(axis=1, dtype=np.int64)
        return counts[0] if single else counts

    def importance(self, masks: object) -> np.ndarray | float:
        arr, single = self._as_masks(masks)
        imp = np.einsum("pnl,nl->p", arr, self.scores)
        return float(imp[0]) if single else imp

    def variance(self, masks: object) -> np.ndarray | float:
        arr, single = self._as_masks(masks)
        var = variance_of_counts(arr.sum(axis=1, dtype=np.int64))
        return float(var[0]) if single else var

    def evaluate(self, masks: object) -> np.ndarray:
        """Objectives as minimisation: (P, 2) ``[-importance, variance]`` ((2,) for one mask).

        Vectorised over the whole population; the values of a mask do not depend on the
        other masks in the batch (no BLAS reductions), so results are bitwise reproducible.
        """
        arr, single = self._as_masks(masks)
        F = self.evaluate_unchecked(arr)
        return F[0] if single else F

    def evaluate_unchecked(self, masks: np.ndarray) -> np.ndarray:
        """The hot path: ``masks`` is a (P, N, L) bool array; no validation."""
        out = np.empty((masks.shape[0], 2))
        out[:, 0] = -np.einsum("pnl,nl->p", masks, self.scores)
        out[:, 1] = variance_of_counts(masks.sum(axis=1, dtype=np.int64))
        return out

    # ---------------------------------------------------------------- budgets
    def feasible(self, masks: object) -> np.ndarray | bool:
        """Whether each mask meets the budgets in this problem's mode."""
        arr, single = self._as_masks(masks)
        rows = arr.sum(axis=2)
        ok = np.all((rows >= self.min_counts) & (rows <= self.max_counts), axis=1)
        return bool(ok[0]) if single else ok

    def check_feasible(self, masks: object) -> None:
        """Raise :class:`SelectionError` naming the first client whose row breaks its budget."""
        arr, _ = self._as_masks(masks)
        rows = arr.sum(axis=2)
        bad = (rows < self.min_counts) | (rows > self.max_counts)
        if bad.any():
            p, i = np.argwhere(bad)[0]
            want = (
                f"exactly {self.budgets[i]}"
                if self.budget_mode == "exact"
                else f"between 1 and {self.budgets[i]}"
            )
            raise SelectionError(
                f"mask {p}: client {i} trains {rows[p, i]} units, its budget allows {want}"
            )

    def client_topk(self) -> np.ndarray:
        """Client-only top-k: each client's ``k_i`` highest-scoring units (ties: lower index).

        It maximises importance in both budget modes (scores are non-negative), and is the
        reference point of the pick rules.
        """
        order = np.argsort(-self.scores, axis=1, kind="stable")
        mask = np.zeros(self.shape, dtype=bool)
        take = np.arange(self.n_units)[None, :] < self.budgets[:, None]
        np.put_along_axis(mask, order, take, axis=1)
        return mask

    def __repr__(self) -> str:
        return (
            f"SelectionProblem(N={self.n_clients}, L={self.n_units}, "
            f"budget_mode={self.budget_mode!r}, budgets={self.budgets.tolist()[:8]}"
            f"{'...' if self.n_clients > 8 else ''})"
        )


def variance_of_counts(counts: np.ndarray) -> np.ndarray:
    """Population variance of integer histograms (..., L), computed exactly in integers.

    ``Var = (L * sum n^2 - (sum n)^2) / L^2``; the integer numerator makes equal histograms
    give bitwise-equal variances whatever their order.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_units = counts.shape[-1]
    total = counts.sum(axis=-1)
    sq = np.einsum("...l,...l->...", counts, counts)
    return (n_units * sq - total * total) / float(n_units * n_units)


__all__ = [
    "BUDGET_MODES",
    "BudgetMode",
    "SelectionError",
    "SelectionProblem",
    "variance_of_counts",
]
