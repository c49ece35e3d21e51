"""The pymoo frame shared by the meta-heuristics.

* :class:`PymooSelection`: the selection problem as a pymoo ``Problem``; a decision vector is
  a flattened mask.
* :class:`ArchiveMixin`: every algorithm keeps an external non-dominated archive of every
  mask it evaluated; ``self.opt`` (hence pymoo's ``Result.X`` / ``Result.F``) is that archive.
* :class:`MaskAlgorithm`: a pymoo ``Algorithm`` base for our own algorithms (ABC, ACO, SA,
  MOPSO) with helpers to move between pymoo populations and (P, N, L) masks.
* pymoo operator adapters (sampling, crossover, mutation, repair, duplicate elimination)
  wrapping :mod:`.operators`.
* :class:`CommonParams`: the fields every meta-heuristic's parameters share.

Termination (:mod:`.termination`), seeding, callbacks and the ``Result`` come from
``pymoo.optimize.minimize`` (:func:`.registry.run_pymoo`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.core.crossover import Crossover
from pymoo.core.duplicate import DuplicateElimination
from pymoo.core.mutation import Mutation
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling

from . import operators as ops
from .pareto import ParetoArchive
from .problem import SelectionError, SelectionProblem


@dataclass(frozen=True)
class CommonParams:
    """Fields shared by every meta-heuristic.

    Attributes:
        archive_size: maximum size of the external non-dominated archive (the returned front);
            the most crowded members are dropped beyond it. ``None``: unbounded.
        seed_topk: put client-only top-k in the initial population (it is the
            max-importance end of every front, and the reference of the pick rules).
        guidance: strength of the score/usage guidance of the single-client moves
            (:func:`.operators.mutate`); 0 draws the units uniformly.
        chain_prob: probability that a swap is extended to a two-client ejection chain
            (another client gives up the unit just taken; see :func:`.operators.mutate`).
    """

    archive_size: int | None = 1000
    seed_topk: bool = True
    guidance: float = 20.0
    chain_prob: float = 0.3

    def __post_init__(self) -> None:
        check_int(self, "archive_size", 2, allow_none=True)
        check_bool(self, "seed_topk")
        check_float(self, "guidance", 0.0, 1e3)
        check_float(self, "chain_prob", 0.0, 1.0)


def check_int(params: object, name: str, low: int, allow_none: bool = False) -> None:
    value = getattr(params, name)
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise SelectionError(
            f"{type(params).__name__}.{name} must be an integer >= {low}, got {value!r}"
        )


def check_bool(params: object, name: str) -> None:
    value = getattr(params, name)
    if not isinstance(value, bool | np.bool_):
        raise SelectionError(f"{type(params).__name__}.{name} must be true or false, got {value!r}")


def check_float(
    params: object, name: str, low: float, high: float = np.inf, *, open_low: bool = False
) -> None:
    value = getattr(params, name)
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
    ok = ok and np.isfinite(value) and value <= high and (value > low if open_low else value >= low)
    if not ok:
        bound = f"{'(' if open_low else '['}{low}, {high}]"
        raise SelectionError(f"{type(params).__name__}.{name} must lie in {bound}, got {value!r}")


# ------------------------------------------------------------------------------ problem


class PymooSelection(Problem):
    """A :class:`SelectionProblem` for pymoo: ``n_var = N * L``, two objectives
    ``(-importance, variance)``, no constraints (the operators keep the budgets)."""

    def __init__(self, selection: SelectionProblem) -> None:
        self.selection = selection
        N, L = selection.shape
        super().__init__(n_var=N * L, n_obj=2, xl=0.0, xu=1.0, vtype=bool)

    def masks(self, X: np.ndarray) -> np.ndarray:
        """Decision vectors (P, N*L) to masks (P, N, L)."""
        N, L = self.selection.shape
        return np.asarray(X).reshape(-1, N, L).astype(bool, copy=False)

    def _evaluate(self, x, out, *args, **kwargs):
        out["F"] = self.selection.evaluate_unchecked(self.masks(x))


# ------------------------------------------------------------------------------ archive


class ArchiveMixin:
    """Keeps ``self.pareto``, the non-dominated archive of every mask evaluated so far, and
    makes it the algorithm's optimum: ``self.opt`` (hence pymoo's ``Result.X``/``Result.F``)
    is a population built from the archive when read (building it every generation would
    cost more than the search at N = 100). ``advance``/``tell`` return ``None`` instead of
    the optimum between generations; callbacks and ``Result`` see the archive."""

    archive_size: int | None = None

    def _setup_archive(self) -> None:
        self.pareto = ParetoArchive(self.archive_size)
        self._opt_cache: Population | None = None
        self._opt_version = -1

    def _post_advance(self) -> None:
        infills = self.off
        if infills is not None and len(infills) > 0:
            X, F = infills.get("X", "F")
            masks = self.problem.masks(X).reshape(len(F), -1)
            self.pareto.add(np.packbits(masks, axis=1), F)
        self._skip_opt = False
        super()._post_advance()  # callbacks see the up-to-date ``opt``
        # pymoo's ``advance`` then returns ``self.opt``; nobody needs that population every
        # generation, so that one read returns None (``result()`` still reads the archive)
        self._skip_opt = True

    def _set_optimum(self) -> None:
        pass  # the archive is the optimum; see ``opt``

    def result(self):
        self._skip_opt = False
        return super().result()

    @property
    def opt(self) -> Population | None:
        pareto = self.__dict__.get("pareto")
        if pareto is None or len(pareto) == 0:
            return None
        if self.__dict__.get("_skip_opt"):
            self._skip_opt = False
            return None
        if self._opt_version != pareto.version:
            n = len(pareto)
            X = self.archive_masks(np.arange(n)).reshape(n, -1)
            self._opt_cache = Population.new("X", X, "F", pareto.F, "CV", np.zeros((n, 1)))
            self._opt_version = pareto.version
        return self._opt_cache

    def archive_masks(self, idx: np.ndarray) -> np.ndarray:
        """Archive members ``idx`` as (len(idx), N, L) bool masks (stored bit-packed)."""
        N, L = self.problem.selection.shape
        rows = np.unpackbits(self.pareto.X[np.asarray(idx)], axis=1, count=N * L)
        return rows.astype(bool).reshape(-1, N, L)

    @opt.setter
    def opt(self, value) -> None:
        pass  # pymoo resets ``opt`` on initialisation; the archive stays the optimum


class MaskAlgorithm(ArchiveMixin, Algorithm):
    """Base for our pymoo algorithms on masks: subclasses implement ``_initialize_infill``,
    ``_infill`` and ``_advance`` on (P, N, L) masks via :meth:`to_pop` / :meth:`masks_of`."""

    def __init__(self, params: CommonParams, **kwargs) -> None:
        from pymoo.util.display.multi import MultiObjectiveOutput

        super().__init__(output=MultiObjectiveOutput(), **kwargs)
        self.params = params
        self.archive_size = params.archive_size

    def _setup(self, problem, **kwargs) -> None:
        if not isinstance(problem, PymooSelection):
            raise SelectionError("these algorithms solve a PymooSelection problem")
        self.sp: SelectionProblem = problem.selection
        self._setup_archive()

    @property
    def rng(self) -> np.random.Generator:
        return self.random_state

    def to_pop(self, masks: np.ndarray) -> Population:
        return Population.new("X", masks.reshape(masks.shape[0], -1))

    def masks_of(self, pop: Population) -> np.ndarray:
        return self.problem.masks(pop.get("X"))

    def initial_masks(self, n: int) -> np.ndarray:
        return ops.sample_masks(self.sp, n, self.rng, include_topk=self.params.seed_topk)


# ---------------------------------------------------------------------- pymoo operators


class MaskSampling(Sampling):
    """Budget-respecting initial masks (:func:`.operators.sample_masks`)."""

    def __init__(self, include_topk: bool = True) -> None:
        super().__init__()
        self.include_topk = include_topk

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        masks = ops.sample_masks(
            problem.selection, n_samples, random_state, include_topk=self.include_topk
        )
        return masks.reshape(n_samples, -1)


class MaskCrossover(Crossover):
    """Two children per pair by :func:`.operators.recombine` (complementary row choices)."""

    def __init__(self, prob: float = 0.9, mix: float = 0.2) -> None:
        super().__init__(n_parents=2, n_offsprings=2, prob=prob)
        self.mix = mix

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        sp = problem.selection
        _, n_matings, _ = X.shape
        a = problem.masks(X[0])
        b = problem.masks(X[1])
        c1 = ops.recombine(sp, a, b, random_state, take_b=0.5, mix=self.mix)
        c2 = ops.recombine(sp, b, a, random_state, take_b=0.5, mix=self.mix)
        return np.stack([c1.reshape(n_matings, -1), c2.reshape(n_matings, -1)])


class MaskMutation(Mutation):
    """:func:`.operators.mutate` with a geometric number of moves per mask."""

    def __init__(
        self,
        prob: float = 1.0,
        mean_moves: float = 2.0,
        guidance: float = 4.0,
        chain: float = 0.3,
    ) -> None:
        super().__init__(prob=prob)
        self.mean_moves = mean_moves
        self.guidance = guidance
        self.chain = chain

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        masks = problem.masks(X)
        moves = ops.geometric_moves(random_state, masks.shape[0], self.mean_moves)
        out = ops.mutate(
            problem.selection,
            masks,
            random_state,
            moves,
            guidance=self.guidance,
            chain=self.chain,
        )
        return out.reshape(X.shape[0], -1)


class MaskRepair(Repair):
    """:func:`.operators.repair` (a no-op on feasible masks)."""

    def _do(self, problem, X, random_state=None, **kwargs):
        rng = random_state if random_state is not None else np.random.default_rng(0)
        masks = ops.repair(problem.selection, problem.masks(X), rng)
        return masks.reshape(X.shape[0], -1)


class MaskDuplicateElimination(DuplicateElimination):
    """Drops exact duplicate masks by hashing their packed bits (no O(P^2 N L) distances)."""

    def _do(self, pop, other, is_duplicate):
        seen: set[bytes] = set()
        if other is not None and len(other) > 0:
            seen.update(r.tobytes() for r in np.packbits(other.get("X").astype(bool), axis=1))
        packed = np.packbits(pop.get("X").astype(bool), axis=1)
        for i, row in enumerate(packed):
            key = row.tobytes()
            if key in seen:
                is_duplicate[i] = True
            else:
                seen.add(key)
        return is_duplicate
