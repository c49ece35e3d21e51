"""NSGA-II: pymoo's algorithm with budget-respecting sampling, crossover, mutation, repair."""

from __future__ import annotations

from dataclasses import dataclass

from pymoo.algorithms.moo.nsga2 import NSGA2

from ..base import (
    ArchiveMixin,
    CommonParams,
    MaskCrossover,
    MaskDuplicateElimination,
    MaskMutation,
    MaskRepair,
    MaskSampling,
    check_bool,
    check_float,
    check_int,
)


@dataclass(frozen=True)
class NSGA2Params(CommonParams):
    """NSGA-II (pymoo) on binary masks.

    Attributes:
        pop_size: population size (also the number of offspring per generation).
        crossover_prob: probability that a mating pair is recombined (else copied).
        row_mix_prob: in a recombination, the probability that a client's row mixes both
            parents' rows instead of taking one parent's row whole.
        mutation_prob: probability that an offspring is mutated.
        mean_moves: mean number of single-client moves of a mutation (geometric, >= 1).
        eliminate_duplicates: drop offspring whose mask is already in the population.
    """

    pop_size: int = 50
    crossover_prob: float = 0.5
    row_mix_prob: float = 0.2
    mutation_prob: float = 1.0
    mean_moves: float = 1.0
    eliminate_duplicates: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "pop_size", 4)
        check_float(self, "crossover_prob", 0.0, 1.0)
        check_float(self, "row_mix_prob", 0.0, 1.0)
        check_float(self, "mutation_prob", 0.0, 1.0)
        check_float(self, "mean_moves", 1.0, 1e6)
        check_bool(self, "eliminate_duplicates")


class SelectionNSGA2(ArchiveMixin, NSGA2):
    """pymoo's NSGA-II plus the shared non-dominated archive as its optimum."""

    def __init__(self, params: NSGA2Params, **kwargs) -> None:
        dup = MaskDuplicateElimination() if params.eliminate_duplicates else False
        super().__init__(
            pop_size=params.pop_size,
            sampling=MaskSampling(include_topk=params.seed_topk),
            crossover=MaskCrossover(prob=params.crossover_prob, mix=params.row_mix_prob),
            mutation=MaskMutation(
                prob=params.mutation_prob,
                mean_moves=params.mean_moves,
                guidance=params.guidance,
                chain=params.chain_prob,
            ),
            repair=MaskRepair(),
            eliminate_duplicates=dup,
            **kwargs,
        )
        self.params = params
        self.archive_size = params.archive_size

    def _setup(self, problem, **kwargs) -> None:
        super()._setup(problem, **kwargs)
        self._setup_archive()
