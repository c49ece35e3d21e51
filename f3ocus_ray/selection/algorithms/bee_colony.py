"""ABC: a multi-objective artificial bee colony on binary masks (pymoo ``Algorithm``).

Decomposition-based (as in MOEA/D-ABC variants): food source ``j`` carries a trade-off
weight ``lam_j`` (spread evenly over [0, 1]) and is judged by the augmented Tchebycheff value
``g_j`` of its objectives, normalised by the archive's extent, so ABC's greedy one-to-one
selection keeps its original single-objective form while the colony covers the front.
Generations alternate two phases, each evaluating one batch of ``n_sources`` masks:

* employed bees: every source ``x_j`` gets a neighbour ``v``: some of its client rows move
  towards a partner (an archive member with probability ``archive_partner``, else another
  source): they take or mix the partner's row; then single-client moves are applied;
* onlooker bees: sources are drawn by roulette on their fitness ``1 / (1 + r_j / mean(r))``,
  where ``r_j`` is how far ``g_j(x_j)`` is above the best archive value for ``lam_j``, and the
  drawn sources get neighbours the same way.

Greedy selection: ``v`` replaces ``x_j`` when ``g_j(v) <= g_j(x_j)``; only a strict
improvement resets the source's trial counter. Scouts: a source not improved for ``limit``
trials is abandoned; its scout starts from the archive member best for ``lam_j`` with a few
moves (or from a fresh random mask with probability ``scout_random``). The non-dominated
archive of everything evaluated is the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import operators as ops
from ..base import CommonParams, MaskAlgorithm, check_float, check_int
from ..pareto import normalisation, tchebycheff


@dataclass(frozen=True)
class ABCParams(CommonParams):
    """Multi-objective artificial bee colony.

    Attributes:
        n_sources: food sources (= employed bees = onlooker bees); masks per generation.
        n_neighbours: a source's partners are the sources up to this many weights away
            (or the archive members best for those weights).
        limit: trials without improvement before a source is abandoned to a scout.
        row_prob: per client, the probability that a neighbour takes the partner's row, and
            again the probability that it mixes both rows.
        mean_moves: mean number of single-client moves added to each neighbour (>= 1).
        archive_partner: probability that the partner is an archive member, not a source.
        scout_random: probability that a scout starts from a fresh random mask instead of the
            archive member best for its source's weight.
        scout_moves: mean number of moves applied to a scout's archive member (>= 1).
    """

    n_sources: int = 50
    n_neighbours: int = 5
    limit: int = 2
    row_prob: float = 0.1
    mean_moves: float = 1.0
    archive_partner: float = 0.5
    scout_random: float = 0.0
    scout_moves: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "n_sources", 2)
        check_int(self, "n_neighbours", 1)
        check_int(self, "limit", 1)
        check_float(self, "row_prob", 0.0, 1.0)
        check_float(self, "mean_moves", 1.0, 1e6)
        check_float(self, "archive_partner", 0.0, 1.0)
        check_float(self, "scout_random", 0.0, 1.0)
        check_float(self, "scout_moves", 1.0, 1e6)


class BeeColony(MaskAlgorithm):
    """Multi-objective ABC; see the module docstring."""

    def __init__(self, params: ABCParams, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.p = params

    # ------------------------------------------------------------------ helpers
    def _moves(self, masks: np.ndarray, mean: float) -> np.ndarray:
        moves = ops.geometric_moves(self.rng, masks.shape[0], mean)
        return ops.mutate(
            self.sp,
            masks,
            self.rng,
            moves,
            guidance=self.p.guidance,
            chain=self.p.chain_prob,
        )

    def _neighbours(self, src: np.ndarray) -> np.ndarray:
        """Neighbours of the sources ``src`` (indices into the colony)."""
        rng, sp, S = self.rng, self.sp, self.p.n_sources
        n = src.size
        x = self.X[src]
        # partners come from the source's neighbourhood in weight space (as in MOEA/D)
        T = min(self.p.n_neighbours, S - 1)
        offset = rng.integers(1, T + 1, size=n) * np.where(rng.random(n) < 0.5, -1, 1)
        other = np.clip(src + offset, 0, S - 1)
        other = np.where(other == src, np.clip(src - offset, 0, S - 1), other)
        partner = self.X[other]
        use_arch = rng.random(n) < self.p.archive_partner
        if use_arch.any():
            best, _ = self._best_in_archive(self.lam[other[use_arch]])
            partner[use_arch] = self.archive_masks(best)
        v = ops.recombine(sp, x, partner, rng, take_b=self.p.row_prob, mix=self.p.row_prob)
        return self._moves(v, self.p.mean_moves)

    def _best_in_archive(self, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per weight: the best archive index and its Tchebycheff value."""
        ideal, span = normalisation(self.pareto.F)
        g = tchebycheff(self.pareto.F[None], lam[:, None], ideal, span)
        best = np.argmin(g, axis=1)
        return best, g[np.arange(lam.size), best]

    def _fitness(self) -> np.ndarray:
        ideal, span = normalisation(self.pareto.F)
        g = tchebycheff(self.F, self.lam, ideal, span)
        _, g_best = self._best_in_archive(self.lam)
        r = np.maximum(g - g_best, 0.0)
        fit = 1.0 / (1.0 + r / (r.mean() + 1e-12))
        return fit / fit.sum()

    # --------------------------------------------------------------- pymoo hooks
    def _initialize_infill(self):
        n = self.p.n_sources
        self.lam = (np.arange(n) + 0.5) / n
        return self.to_pop(self.initial_masks(n))

    def _initialize_advance(self, infills=None, **kwargs):
        self.X = self.masks_of(infills).copy()
        self.F = infills.get("F").copy()
        self.trials = np.zeros(self.p.n_sources, dtype=np.int64)
        self.phase = "employed"

    def _infill(self):
        n = self.p.n_sources
        if self.phase == "employed":
            self.src = np.arange(n)
            self.cand = self._neighbours(self.src)
            # scouts: abandoned sources are replaced by new masks in this batch
            self.scout = self.trials > self.p.limit
            if self.scout.any():
                self.cand[self.scout] = self._scout_masks(np.flatnonzero(self.scout))
        else:
            self.src = np.sort(self.rng.choice(n, size=n, p=self._fitness()))
            self.cand = self._neighbours(self.src)
            self.scout = np.zeros(n, dtype=bool)
        return self.to_pop(self.cand)

    def _advance(self, infills=None, **kwargs):
        Fv = infills.get("F")
        s = self.scout
        if s.any():
            self.X[s], self.F[s], self.trials[s] = self.cand[s], Fv[s], 0
        # greedy selection, in order (an onlooker's source may be drawn more than once)
        ideal, span = normalisation(np.concatenate([self.pareto.F, Fv]))
        for j in np.flatnonzero(~s):
            t = self.src[j]
            gv = tchebycheff(Fv[j], self.lam[t], ideal, span)
            gx = tchebycheff(self.F[t], self.lam[t], ideal, span)
            if gv <= gx:
                self.X[t], self.F[t] = self.cand[j], Fv[j]
            self.trials[t] = 0 if gv < gx else self.trials[t] + 1
        self.phase = "onlooker" if self.phase == "employed" else "employed"

    def _scout_masks(self, sources: np.ndarray) -> np.ndarray:
        rng, sp = self.rng, self.sp
        best, _ = self._best_in_archive(self.lam[sources])
        start = self.archive_masks(best)
        scouts = self._moves(start, self.p.scout_moves)
        fresh = rng.random(sources.size) < self.p.scout_random
        if fresh.any():
            scouts[fresh] = ops.sample_masks(sp, int(fresh.sum()), rng)
        return scouts
