"""Pareto utilities: non-dominated filtering, the archive, hypervolume and the pick rules.

Objective vectors are always in minimisation form ``F = (-importance, variance)``.
"""

from __future__ import annotations

import numpy as np

from .problem import SelectionError

# ----------------------------------------------------------------------------- dominance


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of ``F`` (n, 2), minimisation.

    Duplicated objective vectors keep their first occurrence only. The result is ordered by
    the first objective ascending (importance descending), which makes the second objective
    (variance) strictly descending along it.
    """
    F = np.asarray(F, dtype=np.float64)
    if F.ndim != 2 or F.shape[1] != 2:
        raise SelectionError(f"objective matrix must have shape (n, 2), got {F.shape}")
    n = F.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(n), F[:, 1], F[:, 0]))
    f2 = F[order, 1]
    prev_min = np.empty(n)
    prev_min[0] = np.inf
    np.minimum.accumulate(f2[:-1], out=prev_min[1:])
    keep = f2 < prev_min
    return order[keep]


def dominates(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise: does ``a`` dominate ``b`` (minimisation)? Broadcasts over leading axes."""
    return np.all(a <= b, axis=-1) & np.any(a < b, axis=-1)


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the rows of ``F`` (extremes get ``inf``)."""
    F = np.asarray(F, dtype=np.float64)
    n, m = F.shape
    if n <= 2:
        return np.full(n, np.inf)
    cd = np.zeros(n)
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        f = F[order, j]
        span = f[-1] - f[0]
        cd[order[0]] = cd[order[-1]] = np.inf
        if span > 0:
            cd[order[1:-1]] += (f[2:] - f[:-2]) / span
    return cd


class ParetoArchive:
    """An external archive of non-dominated solutions (decision rows + objectives).

    ``add`` merges a batch and keeps the non-dominated set; among equal objective vectors the
    one already archived wins, so the archive is stable. With ``max_size`` the most crowded
    members are dropped (the two extremes are always kept).
    """

    def __init__(self, max_size: int | None = None) -> None:
        if max_size is not None and max_size < 2:
            raise SelectionError(f"archive_size must be >= 2 or None, got {max_size}")
        self.max_size = max_size
        self.X: np.ndarray | None = None
        self.F: np.ndarray = np.zeros((0, 2))
        self.version = 0

    def __len__(self) -> int:
        return self.F.shape[0]

    def add(self, X: np.ndarray, F: np.ndarray) -> np.ndarray:
        """Merge rows; returns a bool array marking which of the new rows entered the archive."""
        F = np.asarray(F, dtype=np.float64)
        n_old = len(self)
        allF = np.concatenate([self.F, F]) if n_old else F
        keep = non_dominated(allF)
        if self.max_size is not None and keep.size > self.max_size:
            cd = crowding_distance(allF[keep])
            best = np.argsort(-cd, kind="stable")[: self.max_size]
            keep = np.sort(keep[best])
            keep = keep[np.argsort(allF[keep, 0], kind="stable")]
        entered = np.zeros(F.shape[0], dtype=bool)
        entered[keep[keep >= n_old] - n_old] = True
        if n_old and keep.size == n_old and np.array_equal(keep, np.arange(n_old)):
            return entered  # nothing changed (keep is sorted by f1 like the archive)
        X = np.asarray(X)
        if n_old:
            is_old = keep < n_old
            newX = np.empty((keep.size,) + X.shape[1:], dtype=X.dtype)
            newX[is_old] = self.X[keep[is_old]]
            newX[~is_old] = X[keep[~is_old] - n_old]
            self.X = newX
        else:
            self.X = X[keep]
        self.F = allF[keep]
        self.version += 1
        return entered


# ---------------------------------------------------------------------------- hypervolume

#: how far beyond the reference front's worst corner the HV reference point lies,
#: as a fraction of that front's range in each objective
REFERENCE_MARGIN = 0.1


def reference_point(F_ref: np.ndarray, margin: float = REFERENCE_MARGIN) -> np.ndarray:
    """The non-lenient HV reference point of a reference front (minimisation form).

    The worst corner of the front, pushed out by ``margin`` times the front's range in each
    objective. A degenerate range (a one-point front) uses ``|worst|`` (or 1 if that is 0) as
    the range, so the reference point is still well defined.
    """
    F_ref = np.asarray(F_ref, dtype=np.float64)
    if F_ref.ndim != 2 or F_ref.shape[0] == 0:
        raise SelectionError("a reference front needs at least one point")
    worst = F_ref.max(axis=0)
    span = worst - F_ref.min(axis=0)
    fallback = np.where(np.abs(worst) > 0, np.abs(worst), 1.0)
    span = np.where(span > 0, span, fallback)
    return worst + margin * span


def hypervolume(F: np.ndarray, ref_point: np.ndarray) -> float:
    """Hypervolume of ``F`` (minimisation) against ``ref_point`` (pymoo's indicator).

    Points that do not strictly dominate the reference point contribute nothing.
    """
    from pymoo.indicators.hv import HV

    F = np.asarray(F, dtype=np.float64).reshape(-1, 2)
    ref = np.asarray(ref_point, dtype=np.float64)
    F = F[np.all(F < ref, axis=1)]
    if F.shape[0] == 0:
        return 0.0
    return float(HV(ref_point=ref)(F))


def hypervolume_ratio(F: np.ndarray, F_ref: np.ndarray) -> tuple[float, float, np.ndarray]:
    """``(hv(F) / hv(F_ref), hv(F), ref_point)`` with the reference point of ``F_ref``."""
    ref = reference_point(F_ref)
    hv_ref = hypervolume(F_ref, ref)
    hv = hypervolume(F, ref)
    return (hv / hv_ref if hv_ref > 0 else float("nan")), hv, ref


# ------------------------------------------------------------------------------ the pick

PICK_RULES: tuple[str, ...] = (
    "knee",
    "weighted",
    "max_importance_under_variance",
    "min_variance_over_importance",
)

#: the parameter each rule uses when none is given
DEFAULT_PICK_PARAMS: dict[str, float | None] = {
    "knee": None,
    # alpha: weight of normalised importance against normalised variance
    "weighted": 0.5,
    # variance must be <= this fraction of client-only top-k's variance
    "max_importance_under_variance": 0.5,
    # importance must be >= this fraction of client-only top-k's importance
    "min_variance_over_importance": 0.9,
}


def _check_pick(rule: str, param: float | None) -> float | None:
    if rule not in PICK_RULES:
        raise SelectionError(f"pick must be one of {list(PICK_RULES)}, got {rule!r}")
    if param is None:
        return DEFAULT_PICK_PARAMS[rule]
    if rule == "knee":
        raise SelectionError("pick 'knee' takes no pick_param")
    value = float(param)
    if not np.isfinite(value):
        raise SelectionError(f"pick_param must be finite, got {param!r}")
    if rule in ("weighted", "min_variance_over_importance") and not 0.0 <= value <= 1.0:
        raise SelectionError(f"pick_param of {rule!r} must lie in [0, 1], got {value}")
    if rule == "max_importance_under_variance" and value < 0.0:
        raise SelectionError(f"pick_param of {rule!r} must be >= 0, got {value}")
    return value


def pick_index(
    importance: np.ndarray,
    variance: np.ndarray,
    rule: str = "knee",
    param: float | None = None,
    *,
    topk_importance: float | None = None,
    topk_variance: float | None = None,
) -> int:
    """Index of the front point the rule picks.

    The front (``importance``, ``variance``) need not be sorted; ties go to the higher
    importance.

    * ``knee``: the point farthest from the line between the two normalised extreme points
      (on the favourable side). With both objectives scaled to [0, 1] over the front the
      extremes are (0, 0) and (1, 1), so this is the point maximising
      ``importance_n - variance_n``.
    * ``weighted`` (``alpha``, default 0.5): maximises
      ``alpha * importance_n - (1 - alpha) * variance_n``.
    * ``max_importance_under_variance`` (fraction, default 0.5): the most important point
      whose variance is ``<= fraction * var(top-k)``; the lowest-variance point if none is.
    * ``min_variance_over_importance`` (fraction, default 0.9): the lowest-variance point
      whose importance is ``>= fraction * imp(top-k)``; the most important point if none is.
    """
    value = _check_pick(rule, param)
    imp = np.asarray(importance, dtype=np.float64)
    var = np.asarray(variance, dtype=np.float64)
    if imp.size == 0:
        raise SelectionError("cannot pick from an empty front")
    # order by importance descending, then variance ascending: argmax picks the first best
    order = np.lexsort((var, -imp))
    imp_o, var_o = imp[order], var[order]

    def unit(x: np.ndarray) -> np.ndarray:
        span = x.max() - x.min()
        return (x - x.min()) / span if span > 0 else np.zeros_like(x)

    if rule in ("knee", "weighted"):
        alpha = 0.5 if rule == "knee" else float(value)  # type: ignore[arg-type]
        score = alpha * unit(imp_o) - (1.0 - alpha) * unit(var_o)
        return int(order[int(np.argmax(score))])
    if rule == "max_importance_under_variance":
        if topk_variance is None:
            raise SelectionError(f"pick {rule!r} needs the client-only top-k variance")
        tol = 1e-12 * max(1.0, abs(topk_variance))
        ok = np.flatnonzero(var_o <= value * topk_variance + tol)  # type: ignore[operator]
        if ok.size == 0:
            return int(order[int(np.argmin(var_o))])
        return int(order[ok[0]])
    # min_variance_over_importance
    if topk_importance is None:
        raise SelectionError(f"pick {rule!r} needs the client-only top-k importance")
    tol = 1e-12 * max(1.0, abs(topk_importance))
    ok = np.flatnonzero(imp_o >= value * topk_importance - tol)  # type: ignore[operator]
    if ok.size == 0:
        return int(order[0])
    best = ok[np.argmin(var_o[ok])]
    return int(order[best])


# ------------------------------------------------------------------------- scalarisation


def normalisation(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ideal, span)`` of a set of objective vectors (span 1 where the range is 0)."""
    F = np.asarray(F, dtype=np.float64).reshape(-1, 2)
    ideal = F.min(axis=0)
    span = F.max(axis=0) - ideal
    return ideal, np.where(span > 0, span, 1.0)


def tchebycheff(
    F: np.ndarray, lam: np.ndarray, ideal: np.ndarray, span: np.ndarray, rho: float = 1e-3
) -> np.ndarray:
    """Augmented weighted Tchebycheff value (smaller is better) of normalised objectives.

    ``lam`` is the weight of the first objective (-importance); the second gets ``1 - lam``.
    ``F`` (..., 2) and ``lam`` broadcast against each other.
    """
    f = (np.asarray(F) - ideal) / span
    lam = np.asarray(lam, dtype=np.float64)
    a, b = lam * f[..., 0], (1.0 - lam) * f[..., 1]
    return np.maximum(a, b) + rho * (a + b)
