"""SA: multi-objective simulated annealing on binary masks (pymoo ``Algorithm``).

Parallel annealing chains in the spirit of Ulungu's MOSA and Czyzak's Pareto simulated
annealing: chain ``j`` anneals the augmented Tchebycheff scalarisation with weight
``lam_j`` (spread evenly over [0, 1]) of the objectives normalised by the current archive's
extent. Each generation every chain proposes one neighbour (a geometric number of
single-client moves) and accepts it by the Metropolis rule ``exp(-delta / T)``. The
temperature follows a geometric schedule from ``t_start`` to ``t_end`` over the termination's
progress (evaluations, generations or seconds alike). With probability ``restart_prob`` a
chain restarts from the archive member best for its weight. The result is the
non-dominated archive of every mask evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import operators as ops
from ..base import CommonParams, MaskAlgorithm, check_float, check_int
from ..pareto import normalisation, tchebycheff


@dataclass(frozen=True)
class SAParams(CommonParams):
    """Multi-objective simulated annealing.

    Attributes:
        n_chains: parallel chains (masks per generation), each with its own weight.
        t_start: initial temperature (objectives normalised to [0, 1] by the archive).
        t_end: final temperature (> 0, <= t_start); geometric cooling in between.
        mean_moves: mean number of single-client moves of a proposal (geometric, >= 1).
        restart_prob: per chain and generation, probability of restarting from the archive
            member best for the chain's weight.
    """

    n_chains: int = 50
    t_start: float = 0.05
    t_end: float = 1e-4
    mean_moves: float = 1.0
    restart_prob: float = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "n_chains", 1)
        check_float(self, "t_start", 0.0, 1e6, open_low=True)
        check_float(self, "t_end", 0.0, self.t_start, open_low=True)
        check_float(self, "mean_moves", 1.0, 1e6)
        check_float(self, "restart_prob", 0.0, 1.0)


class MultiObjectiveAnnealing(MaskAlgorithm):
    """Multi-objective SA; see the module docstring."""

    def __init__(self, params: SAParams, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.p = params

    def temperature(self) -> float:
        perc = float(np.clip(self.termination.perc, 0.0, 1.0))
        return self.p.t_start * (self.p.t_end / self.p.t_start) ** perc

    def _initialize_infill(self):
        n = self.p.n_chains
        self.lam = (np.arange(n) + 0.5) / n
        return self.to_pop(self.initial_masks(n))

    def _initialize_advance(self, infills=None, **kwargs):
        self.X = self.masks_of(infills).copy()
        self.F = infills.get("F").copy()

    def _infill(self):
        rng, p = self.rng, self.p
        n = p.n_chains
        restart = rng.random(n) < p.restart_prob
        if restart.any() and len(self.pareto) > 0:
            ideal, span = normalisation(self.pareto.F)
            g = tchebycheff(self.pareto.F[None], self.lam[restart, None], ideal, span)
            best = np.argmin(g, axis=1)
            self.X[restart] = self.archive_masks(best)
            self.F[restart] = self.pareto.F[best]
        moves = ops.geometric_moves(rng, n, p.mean_moves)
        self.cand = ops.mutate(self.sp, self.X, rng, moves, guidance=p.guidance, chain=p.chain_prob)
        return self.to_pop(self.cand)

    def _advance(self, infills=None, **kwargs):
        Fc = infills.get("F")
        ideal, span = normalisation(np.concatenate([self.pareto.F, Fc]))
        delta = tchebycheff(Fc, self.lam, ideal, span) - tchebycheff(self.F, self.lam, ideal, span)
        T = self.temperature()
        u = self.rng.random(delta.size)
        accept = (delta <= 0) | (u < np.exp(-np.maximum(delta, 0.0) / T))
        self.X[accept] = self.cand[accept]
        self.F[accept] = Fc[accept]
