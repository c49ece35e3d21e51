"""MOPSO: multi-objective particle swarm for binary masks via random keys (pymoo ``Algorithm``).

In the style of Coello, Pulido and Lechuga's MOPSO (2004) and MOPSO-CD (Raquel and Naval,
2005; pymoo's ``MOPSO_CD``), written for whole-swarm numpy updates. A particle's position is
one key in [0, 1] per client and unit, decoded to each client's top-``k_i`` keys (so budgets
always hold; in ``at_most`` mode the count is the number of keys above 1/2, clipped to
[1, k_i]). Velocities follow

    v <- w v + c1 r1 (pbest - x) + c2 r2 (leader - x),   |v| <= v_max,   x <- clip(x + v)

Leaders are archive members chosen by binary tournament on crowding distance (less crowded
wins); an archive mask enters the velocity rule as keys 0.75 (trained) / 0.25 (untrained).
The personal best is replaced when dominated by the new position, or with probability 1/2
when neither dominates. Turbulence: with probability ``mutation_prob`` (decaying linearly to
a tenth over the run) a particle's decoded mask gets a few single-client moves and its
position is re-encoded from the mutated mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import operators as ops
from ..base import CommonParams, MaskAlgorithm, check_float, check_int
from ..pareto import crowding_distance, dominates


@dataclass(frozen=True)
class MOPSOParams(CommonParams):
    """Multi-objective particle swarm on random keys.

    Attributes:
        swarm_size: particles (masks per generation).
        inertia: inertia weight ``w``.
        c1: cognitive coefficient (pull towards the personal best).
        c2: social coefficient (pull towards the leader).
        v_max: velocity bound per key.
        mutation_prob: initial per-particle turbulence probability (decays to a tenth).
        mean_moves: mean number of single-client moves of a turbulence (geometric, >= 1).
    """

    swarm_size: int = 50
    inertia: float = 0.4
    c1: float = 0.5
    c2: float = 1.5
    v_max: float = 0.4
    mutation_prob: float = 0.5
    mean_moves: float = 1.5

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "swarm_size", 2)
        check_float(self, "inertia", 0.0, 2.0)
        check_float(self, "c1", 0.0, 10.0)
        check_float(self, "c2", 0.0, 10.0)
        check_float(self, "v_max", 0.0, 1.0, open_low=True)
        check_float(self, "mutation_prob", 0.0, 1.0)
        check_float(self, "mean_moves", 1.0, 1e6)


class BinaryMOPSO(MaskAlgorithm):
    """MOPSO on random keys; see the module docstring."""

    def __init__(self, params: MOPSOParams, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.p = params

    def _keys_of(self, masks: np.ndarray) -> np.ndarray:
        """Positions that decode to ``masks``: 0.75 / 0.25 plus noise that keeps the order."""
        noise = self.rng.random(masks.shape, dtype=np.float32)
        noise -= np.float32(0.5)
        noise *= np.float32(0.48)
        noise += _encode32(masks)
        return noise

    def _initialize_infill(self):
        n = self.p.swarm_size
        masks = self.initial_masks(n)
        self.pos = self._keys_of(masks)
        self.vel = self.rng.uniform(-self.p.v_max, self.p.v_max, self.pos.shape).astype(np.float32)
        return self.to_pop(masks)

    def _initialize_advance(self, infills=None, **kwargs):
        self.pbest = self.pos.copy()
        self.pbest_F = infills.get("F").copy()

    def _leaders(self, n: int) -> np.ndarray:
        rng = self.rng
        size = len(self.pareto)
        cd = crowding_distance(self.pareto.F)
        a = rng.integers(0, size, size=n)
        b = rng.integers(0, size, size=n)
        win = np.where(cd[a] >= cd[b], a, b)
        return _encode32(self.archive_masks(win))

    def _infill(self):
        rng, p = self.rng, self.p
        n = p.swarm_size
        f32 = np.float32
        # velocity and position update, in place and in float32 (the hot path at large N)
        r = rng.random((2,) + self.pos.shape, dtype=f32)
        vel, pos = self.vel, self.pos
        vel *= f32(p.inertia)
        tmp = np.subtract(self.pbest, pos)
        tmp *= r[0]
        tmp *= f32(p.c1)
        vel += tmp
        np.subtract(self._leaders(n), pos, out=tmp)
        tmp *= r[1]
        tmp *= f32(p.c2)
        vel += tmp
        np.clip(vel, -f32(p.v_max), f32(p.v_max), out=vel)
        pos += vel
        np.clip(pos, f32(0.0), f32(1.0), out=pos)
        masks = ops.decode_keys(self.sp, pos)
        # turbulence on the decoded masks
        perc = float(np.clip(self.termination.perc, 0.0, 1.0))
        rate = p.mutation_prob * (1.0 - 0.9 * perc)
        hit = np.flatnonzero(rng.random(n) < rate)
        if hit.size:
            moves = ops.geometric_moves(rng, hit.size, p.mean_moves)
            masks[hit] = ops.mutate(
                self.sp,
                masks[hit],
                rng,
                moves,
                guidance=p.guidance,
                chain=p.chain_prob,
            )
            pos[hit] = self._keys_of(masks[hit])
        # the population holds the decoded masks; positions are the swarm's own state
        return self.to_pop(masks)

    def _advance(self, infills=None, **kwargs):
        F = infills.get("F")
        new_dom = dominates(F, self.pbest_F)
        old_dom = dominates(self.pbest_F, F)
        coin = self.rng.random(F.shape[0]) < 0.5
        take = new_dom | (~old_dom & coin)
        self.pbest[take] = self.pos[take]
        self.pbest_F[take] = F[take]


def _encode32(masks: np.ndarray) -> np.ndarray:
    return np.where(masks, np.float32(0.75), np.float32(0.25))
