"""ACO: a multi-objective ant colony on binary masks (pymoo ``Algorithm``).

Decomposition-based, in the spirit of MOEA/D-ACO (Ke, Zhang and Battiti, 2013): the ants are
split into ``n_groups`` groups, group ``g`` aims at the trade-off weight
``lam_g = (g + 1/2) / n_groups`` between importance and variance and owns a pheromone matrix
``tau_g`` (N x L). Each ant builds every client's unit set from pheromone and heuristic:

    P(client i takes unit l) ~ tau_g[i, l]^alpha
                               * (s[i, l]^lam * exp(-u_l / (mean(u) + 1))^(1 - lam))^beta

where ``s`` is the client-normalised score, ``u`` the unit usage of the clients the ant has
already built, and ``lam`` the ant's own weight (inside its group's interval). The k_i units
are drawn without replacement (Gumbel top-k); clients are built in ``n_blocks`` blocks (in a
random order each generation) so that the whole colony is built with a few array operations.
In ``at_most`` mode each client's count is drawn from a count pheromone.

After every generation each group evaporates its pheromone,
``tau_g <- (1 - rho) tau_g + rho * mean(elite masks)``, where the elite are the ``n_elite``
archive members best for the group's (augmented Tchebycheff) weight; pheromone is kept in
[tau_min, 1] (MAX-MIN ant system) so no unit is ever ruled out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import operators as ops
from ..base import CommonParams, MaskAlgorithm, check_float, check_int
from ..pareto import normalisation, tchebycheff


@dataclass(frozen=True)
class ACOParams(CommonParams):
    """Multi-objective ant colony.

    Attributes:
        n_ants: ants per generation (masks per generation).
        n_groups: weight groups, each with its own pheromone matrix.
        evaporation: pheromone evaporation rate ``rho`` in (0, 1].
        alpha: pheromone exponent.
        beta: heuristic exponent.
        tau_min: lower pheromone bound (upper bound 1).
        n_elite: archive members that deposit pheromone for each group.
        n_blocks: client blocks built in sequence (the usage heuristic sees earlier blocks).
        local_moves: mean number of single-client moves applied to each ant after
            construction (0: none); a light local search.
    """

    n_ants: int = 50
    n_groups: int = 25
    evaporation: float = 0.1
    alpha: float = 1.0
    beta: float = 2.0
    tau_min: float = 0.005
    n_elite: int = 3
    n_blocks: int = 8
    local_moves: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "n_ants", 2)
        check_int(self, "n_groups", 1)
        check_float(self, "evaporation", 0.0, 1.0, open_low=True)
        check_float(self, "alpha", 0.0, 100.0)
        check_float(self, "beta", 0.0, 100.0)
        check_float(self, "tau_min", 0.0, 1.0, open_low=True)
        check_int(self, "n_elite", 1)
        check_int(self, "n_blocks", 1)
        check_float(self, "local_moves", 0.0, 1e6)


class AntColony(MaskAlgorithm):
    """Multi-objective ACO; see the module docstring."""

    def __init__(self, params: ACOParams, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.p = params

    def _setup(self, problem, **kwargs) -> None:
        super()._setup(problem, **kwargs)
        N, L = self.sp.shape
        G = min(self.p.n_groups, self.p.n_ants)
        self.n_groups = G
        self.tau = np.ones((G, N, L))
        self.log_s = np.log(ops.normalised_scores(self.sp) + 1e-2)
        kmax = int(self.sp.budgets.max())
        # count pheromone (at_most): tau_count[g, i, c - 1] for c = 1..k_max
        self.tau_count = np.ones((G, N, kmax))
        self.count_ok = np.arange(1, kmax + 1)[None, :] <= self.sp.budgets[:, None]

    def _construct(self) -> np.ndarray:
        rng, sp, p = self.rng, self.sp, self.p
        A, G = p.n_ants, self.n_groups
        N, L = sp.shape
        group = np.arange(A) % G
        lam = ((group + rng.random(A)) / G)[:, None, None]
        order = rng.permutation(N)
        blocks = np.array_split(order, min(p.n_blocks, N))
        usage = np.zeros((A, L))
        masks = np.zeros((A, N, L), dtype=bool)
        log_tau = np.log(self.tau)
        for blk in blocks:
            log_eta_var = -usage / (usage.mean(-1, keepdims=True) + 1.0)
            logw = p.alpha * log_tau[group[:, None], blk[None, :]] + p.beta * (
                lam * self.log_s[blk][None] + (1.0 - lam) * log_eta_var[:, None, :]
            )
            keys = logw + ops.gumbel(rng, logw.shape)
            if sp.budget_mode == "exact":
                counts = sp.budgets[blk]
            else:
                lt = np.where(
                    self.count_ok[blk],
                    np.log(self.tau_count[group[:, None], blk[None, :]]),
                    -np.inf,
                )
                counts = 1 + np.argmax(lt + ops.gumbel(rng, lt.shape), axis=-1)
            m = ops.top_counts(keys, counts)
            masks[:, blk] = m
            usage += m.sum(axis=1)
        if p.local_moves > 0:
            moves = rng.poisson(p.local_moves, size=A)
            masks = ops.mutate(sp, masks, rng, moves, guidance=p.guidance, chain=p.chain_prob)
        return masks

    def _update_pheromone(self) -> None:
        p = self.p
        F = self.pareto.F
        G = self.n_groups
        ideal, span = normalisation(F)
        lam = ((np.arange(G) + 0.5) / G)[:, None]
        g = tchebycheff(F[None], lam, ideal, span)  # (G, A)
        e = min(p.n_elite, F.shape[0])
        elite = np.argsort(g, axis=1, kind="stable")[:, :e]  # (G, e)
        N, L = self.sp.shape
        elite_masks = self.archive_masks(elite.ravel()).reshape(G, e, N, L)
        deposit = elite_masks.mean(axis=1)
        rho = p.evaporation
        self.tau = np.clip((1 - rho) * self.tau + rho * deposit, p.tau_min, 1.0)
        if self.sp.budget_mode == "at_most":
            kmax = self.tau_count.shape[-1]
            rows = elite_masks.sum(-1)  # (G, e, N)
            onehot = (rows[..., None] == np.arange(1, kmax + 1)).mean(axis=1)
            self.tau_count = np.clip((1 - rho) * self.tau_count + rho * onehot, p.tau_min, 1.0)

    def _initialize_infill(self):
        masks = self._construct()
        if self.p.seed_topk:
            masks[0] = self.sp.client_topk()
        return self.to_pop(masks)

    def _infill(self):
        self._update_pheromone()
        return self.to_pop(self._construct())

    def _advance(self, infills=None, **kwargs):
        pass  # the archive is updated by the frame; pheromone before the next construction
