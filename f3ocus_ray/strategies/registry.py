"""The one list of strategies: name -> (class, the scoring method its selection needs).

Adding a strategy is its module plus one `register_strategy` line below (or a call from the
caller's own module). The config's `federation.strategy` accepts exactly these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from f3ocus_ray.scoring.registry import scorer_names
from f3ocus_ray.strategies.base import Strategy
from f3ocus_ray.strategies.baselines import (
    FirstKStrategy,
    FullStrategy,
    LastKStrategy,
    RandomStrategy,
)
from f3ocus_ray.strategies.f3ocus import F3ocusStrategy
from f3ocus_ray.strategies.score_topk import ScoreTopKStrategy


@dataclass(frozen=True)
class StrategyEntry:
    cls: type[Strategy]
    scorer: str | None  # the scoring method whose scores it selects by (None: none)


_STRATEGIES: dict[str, StrategyEntry] = {}


def register_strategy(name: str, cls: type[Strategy], scorer: str | None = None) -> None:
    if name in _STRATEGIES:
        raise ValueError(f"strategy {name!r} is already registered")
    if scorer is not None and scorer not in scorer_names():
        raise ValueError(f"strategy {name!r}: unknown scoring method {scorer!r}")
    if cls.needs_scores and scorer is None:
        raise ValueError(f"strategy {name!r} selects by scores: name its scoring method")
    _STRATEGIES[name] = StrategyEntry(cls, scorer)


def unregister_strategy(name: str) -> None:
    _STRATEGIES.pop(name)


def strategy_names() -> tuple[str, ...]:
    return tuple(_STRATEGIES)


def strategy_entry(name: str) -> StrategyEntry:
    try:
        return _STRATEGIES[name]
    except KeyError:
        raise ValueError(
            f"unknown selection strategy {name!r}; choose from {', '.join(_STRATEGIES)}"
        ) from None


def make_strategy(
    name: str,
    seed: int,
    selection: Any = None,
    *,
    schedule: str | None = None,
    every_k: int = 1,
) -> Strategy:
    """The strategy `name`. A score-based one scores every round unless `schedule` says
    otherwise; any other scores only on a `schedule` of its own (for logging)."""
    entry = strategy_entry(name)
    if schedule is None:
        schedule = "every_round" if entry.scorer else "off"
    return entry.cls(
        name=name,
        seed=seed,
        scorer=entry.scorer,
        schedule=schedule,
        every_k=every_k,
        selection=selection,
    )


register_strategy("full", FullStrategy)
register_strategy("random", RandomStrategy)
register_strategy("first_k", FirstKStrategy)
register_strategy("last_k", LastKStrategy)
register_strategy("lntk", ScoreTopKStrategy, scorer="lntk")
register_strategy("f3ocus", F3ocusStrategy, scorer="lntk")
register_strategy("magnitude", ScoreTopKStrategy, scorer="magnitude")
register_strategy("fishmask", ScoreTopKStrategy, scorer="fisher")
register_strategy("gradflow", ScoreTopKStrategy, scorer="gradflow")
register_strategy("grasp", ScoreTopKStrategy, scorer="grasp")
register_strategy("snip", ScoreTopKStrategy, scorer="snip")
register_strategy("rgn", ScoreTopKStrategy, scorer="rgn")
register_strategy("synflow", ScoreTopKStrategy, scorer="synflow")
register_strategy("spt", ScoreTopKStrategy, scorer="spt")
register_strategy("fedselect", ScoreTopKStrategy, scorer="fedselect")
