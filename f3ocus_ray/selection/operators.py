"""Budget-respecting variation operators shared by all the meta-heuristics.

Everything works on populations of masks, a (P, N, L) bool array, and returns feasible masks
(for the problem's budget mode) whenever its input is feasible. ``repair`` makes any mask
feasible. The pymoo adapters in :mod:`.base` wrap these functions as pymoo operators.

Operators:

* :func:`sample_masks`: random feasible masks, from uniform to strongly score-biased, so the
  initial population spans the trade-off from "spread" to client-only top-k.
* :func:`recombine`: row-wise recombination of two parents; each client's row comes from one
  parent or is a mix of both parents' rows (their common units first).
* :func:`mutate`: a number of single-client moves: swap one trained unit for an untrained
  one (and, in ``at_most`` mode, also add or drop one), optionally guided by the scores and
  the unit-usage histogram, optionally extended to two-client ejection chains.
* :func:`repair`: keep a row's units when they fit its budget, drop random ones when there are
  too many, add random ones when there are too few.
* :func:`decode_keys` / :func:`encode_masks`: the random-key encoding (one float per client
  and unit) used by the particle swarm and the Optuna baseline.
"""

from __future__ import annotations

import numpy as np

from .problem import SelectionProblem

# ------------------------------------------------------------------------------ helpers


def gumbel(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard Gumbel noise: ``argmax(log w + G)`` samples proportional to ``w``."""
    u = rng.random(shape)
    return -np.log(-np.log(u + 1e-300) + 1e-300)


def top_counts(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per row (last axis) the ``counts`` largest values, as a bool mask; ties: lower index.

    ``values`` (..., L) float, ``counts`` broadcastable to ``values.shape[:-1]``, in [0, L].
    A row's threshold comes from a plain sort (an order of magnitude faster than a stable
    argsort); rows whose threshold is tied fall back to the stable argsort.
    """
    values = np.asarray(values, dtype=np.float64)
    n_units = values.shape[-1]
    counts = np.broadcast_to(np.asarray(counts, dtype=np.int64), values.shape[:-1])
    srt = np.sort(values, axis=-1)
    pos = np.clip(n_units - counts, 0, n_units - 1)[..., None]
    thr = np.take_along_axis(srt, pos, axis=-1)
    mask = values >= thr
    mask &= (counts > 0)[..., None]
    bad = mask.sum(axis=-1) != counts
    if bad.any():
        sub = values[bad]
        order = np.argsort(-sub, axis=-1, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(
            ranks, order, np.broadcast_to(np.arange(n_units), order.shape).copy(), axis=-1
        )
        mask[bad] = ranks < counts[bad][:, None]
    return mask


def normalised_scores(problem: SelectionProblem) -> np.ndarray:
    """Scores divided by each client's maximum (rows of zeros stay zero): values in [0, 1]."""
    s = problem.scores
    top = s.max(axis=1, keepdims=True)
    return np.divide(s, top, out=np.zeros_like(s), where=top > 0)


def random_counts(problem: SelectionProblem, n: int, rng: np.random.Generator) -> np.ndarray:
    """Row counts for ``n`` masks: the budgets (exact) or uniform in [1, k_i] (at_most)."""
    k = problem.budgets
    if problem.budget_mode == "exact":
        return np.broadcast_to(k, (n, k.size)).copy()
    return rng.integers(1, k + 1, size=(n, k.size))


# ----------------------------------------------------------------------------- operators


def sample_masks(
    problem: SelectionProblem,
    n: int,
    rng: np.random.Generator,
    *,
    bias_max: float = 8.0,
    include_topk: bool = False,
) -> np.ndarray:
    """``n`` feasible masks: each client's units drawn without replacement with weights
    ``exp(beta * s_norm)``, ``beta`` evenly spread over [0, bias_max] across the masks (0 is
    uniform; large values approach client-only top-k). With ``include_topk`` the first mask
    is client-only top-k. In ``at_most`` mode the counts are uniform in [1, k_i] for half
    the masks and the full budgets for the other half.
    """
    N, L = problem.shape
    beta = np.linspace(0.0, bias_max, n) if n > 1 else np.zeros(1)
    beta = rng.permutation(beta)
    keys = beta[:, None, None] * normalised_scores(problem)[None] + gumbel(rng, (n, N, L))
    counts = random_counts(problem, n, rng)
    if problem.budget_mode == "at_most":
        full = rng.random(n) < 0.5
        counts[full] = problem.budgets
    masks = top_counts(keys, counts)
    if include_topk and n > 0:
        masks[0] = problem.client_topk()
    return masks


def repair(problem: SelectionProblem, masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Make every mask feasible while keeping as much of it as the budgets allow.

    Rows within budget are unchanged; rows over budget keep a random subset of their units;
    rows under budget (``exact``: fewer than ``k_i``; ``at_most``: none) gain random units.
    """
    masks = np.asarray(masks, dtype=bool)
    rows = masks.sum(axis=-1)
    counts = np.clip(rows, problem.min_counts, problem.max_counts)
    if np.array_equal(rows, counts):
        return masks.copy()
    priority = masks + rng.random(masks.shape)
    return top_counts(priority, counts)


def recombine(
    problem: SelectionProblem,
    a: np.ndarray,
    b: np.ndarray,
    rng: np.random.Generator,
    *,
    take_b: float = 0.5,
    mix: float = 0.2,
) -> np.ndarray:
    """A child of parents ``a`` and ``b`` (both (P, N, L) feasible masks).

    Each client's row is, with probability ``mix``, a mix of both parents' rows (units in
    both first, then random units of either, as many as one parent's row has); otherwise it
    is ``b``'s row with probability ``take_b`` and ``a``'s row else. Always feasible.
    """
    P, N, _ = a.shape
    u = rng.random((P, N))
    is_mix = u < mix
    from_b = (~is_mix) & (rng.random((P, N)) < take_b)
    child = np.where(from_b[..., None], b, a)
    if is_mix.any():
        pa, ia = np.nonzero(is_mix)
        ra, rb = a[pa, ia], b[pa, ia]
        if problem.budget_mode == "exact":
            counts = problem.budgets[ia]
        else:
            pick_b = rng.random(ia.size) < 0.5
            counts = np.where(pick_b, rb.sum(-1), ra.sum(-1))
        priority = ra.astype(np.float64) + rb + rng.random(ra.shape)
        child[pa, ia] = top_counts(priority, counts)
    return child


def mutate(
    problem: SelectionProblem,
    masks: np.ndarray,
    rng: np.random.Generator,
    n_moves: np.ndarray | int,
    *,
    guidance: float = 0.0,
    chain: float = 0.0,
    counts: np.ndarray | None = None,
) -> np.ndarray:
    """Apply ``n_moves[p]`` single-client moves to mask ``p`` (a copy is returned).

    A move picks a client at random and swaps one of its trained units for an untrained one;
    in ``at_most`` mode a move may instead add a unit (row below budget) or drop one (row
    above 1). The units are drawn with weights ``exp(beta * g)``, where ``beta`` is uniform in
    [0, guidance] per mask (0 is a uniform draw) and ``g`` prefers, with a random trade-off
    ``lam`` per mask, adding high-score / little-used units and dropping low-score / much-used
    ones: ``g_in = lam * s - (1 - lam) * c`` and ``g_out = -g_in`` with ``s`` the client's
    normalised score and ``c`` the unit's usage divided by the mask's largest usage.

    With probability ``chain`` a swap of client ``i`` (unit ``a`` out, ``b`` in) is extended
    to an ejection chain: another client ``j`` that trains ``b`` swaps it for a unit ``c`` it
    does not train (``j`` drawn with weights ``exp(-beta * s[j, b])``, ``c`` like an added
    unit above). The usage moves from ``a`` to ``c`` through ``b``; with ``c = a`` the two
    clients exchange units and the histogram (the variance) is unchanged, which is how the
    assignment behind one variance level is fine-tuned. Without such a ``j`` the move stays a
    swap.

    ``counts`` may pass the masks' usage histograms (P, L) when the caller has them.
    """
    masks = np.array(masks, dtype=bool, copy=True)
    P, N, L = masks.shape
    moves = np.broadcast_to(np.asarray(n_moves, dtype=np.int64), (P,))
    n_rounds = int(moves.max()) if P else 0
    if n_rounds == 0:
        return masks
    movable = (
        np.flatnonzero(problem.budgets < L)
        if problem.budget_mode == "exact"
        else np.flatnonzero(problem.budgets > 0)
    )
    if movable.size == 0:
        return masks  # every client trains every unit: nothing can move
    at_most = problem.budget_mode == "at_most"
    s_norm = normalised_scores(problem)
    beta = rng.random(P) * guidance
    lam = rng.random(P)
    use = counts.copy() if counts is not None else masks.sum(axis=1, dtype=np.int64)
    for r in range(n_rounds):
        idx = np.flatnonzero(moves > r)
        m = idx.size
        i = movable[rng.integers(0, movable.size, size=m)]
        row = masks[idx, i]  # (m, L)
        size = row.sum(-1)
        k = problem.budgets[i]
        if at_most:
            kind = rng.random(m)
            can_add = size < k
            can_drop = size > 1
            can_swap = size < L
            add = can_add & ((kind < 0.2) | ~(can_swap | can_drop))
            drop = ~add & can_drop & ((kind > 0.8) | ~can_swap)
            swap = ~add & ~drop & can_swap
        else:
            add = drop = np.zeros(m, dtype=bool)
            swap = np.ones(m, dtype=bool)
        if guidance > 0:
            usage = use[idx] / np.maximum(use[idx].max(-1, keepdims=True), 1)
            g_in = lam[idx, None] * s_norm[i] - (1 - lam[idx, None]) * usage
            g_in = beta[idx, None] * g_in
        else:
            g_in = np.zeros((m, L))
        noise = gumbel(rng, (2, m, L))
        key_in = np.where(row, -np.inf, g_in + noise[0])
        key_out = np.where(row, -g_in + noise[1], -np.inf)
        unit_in = np.argmax(key_in, axis=-1)
        unit_out = np.argmax(key_out, axis=-1)
        do_in = swap | add
        do_out = swap | drop
        rows_in, rows_out = np.arange(m)[do_in], np.arange(m)[do_out]
        masks[idx[rows_in], i[rows_in], unit_in[rows_in]] = True
        masks[idx[rows_out], i[rows_out], unit_out[rows_out]] = False
        # ejection chains: a second client j that trains unit_in gives it up for a unit c
        # it does not train; c = unit_out makes an exchange that keeps the histogram
        ex = np.flatnonzero(swap & (rng.random(m) < chain))
        if ex.size:
            pe, a, b, ie = idx[ex], unit_out[ex], unit_in[ex], i[ex]
            e = ex.size
            # j trains b (after i took it, so j != i is forced below) and not every unit
            holders = masks[pe, :, b] & ~masks[pe].all(axis=-1)  # (e, N)
            holders[np.arange(e), ie] = False
            key_j = np.where(
                holders,
                -beta[pe, None] * s_norm[:, b].T + gumbel(rng, holders.shape),
                -np.inf,
            )
            j = np.argmax(key_j, axis=-1)
            has = holders.any(axis=-1)
            rj = masks[pe, j]  # (e, L)
            use_e = use[pe].astype(np.float64)
            use_e[np.arange(e), a] -= 1  # i's move already made
            use_e[np.arange(e), b] += 1
            usage = use_e / np.maximum(use_e.max(-1, keepdims=True), 1)
            lam_e = lam[pe, None]
            g_c = beta[pe, None] * (lam_e * s_norm[j] - (1 - lam_e) * usage)
            key_c = np.where(rj, -np.inf, g_c + gumbel(rng, rj.shape))
            c = np.argmax(key_c, axis=-1)
            pe, b, j, c = pe[has], b[has], j[has], c[has]
            masks[pe, j, b] = False
            masks[pe, j, c] = True
            np.add.at(use, (pe, b), -1)
            np.add.at(use, (pe, c), 1)
        np.add.at(use, (idx[rows_in], unit_in[rows_in]), 1)
        np.add.at(use, (idx[rows_out], unit_out[rows_out]), -1)
    return masks


def geometric_moves(rng: np.random.Generator, n: int, mean: float) -> np.ndarray:
    """Numbers of moves, ``>= 1`` with the given mean (geometric distribution)."""
    mean = max(float(mean), 1.0)
    return rng.geometric(1.0 / mean, size=n)


# --------------------------------------------------------------------- random-key encoding


def decode_keys(problem: SelectionProblem, keys: np.ndarray) -> np.ndarray:
    """Random keys (P, N, L) in [0, 1] to masks: each client's ``c_i`` largest keys, with
    ``c_i = k_i`` (exact) or ``c_i = clip(#keys > 0.5, 1, k_i)`` (at_most)."""
    if problem.budget_mode == "exact":
        counts = problem.budgets
    else:
        counts = np.clip((keys > 0.5).sum(-1), 1, problem.budgets)
    # keys clipped to 0 or 1 tie often: break ties towards the lower index up front (keys
    # that differ, even in float32, keep their order)
    tie_break = np.arange(keys.shape[-1]) * 1e-12
    return top_counts(np.subtract(keys, tie_break, dtype=np.float64), counts)


def encode_masks(masks: np.ndarray) -> np.ndarray:
    """Masks to random keys that decode back to them: 0.75 for a trained unit, 0.25 else."""
    return np.where(masks, 0.75, 0.25)
