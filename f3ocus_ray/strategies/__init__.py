"""Server strategies: which units each client trains, when clients score, how updates merge.

`make_strategy(name, seed, selection)` builds one from the registry (`strategy_names()`);
`register_strategy(name, cls, scorer)` adds one. See `base.Strategy` for the seam.
"""

from f3ocus_ray.strategies.aggregation import masked_fedavg
from f3ocus_ray.strategies.base import Selection, Strategy, scores_due, top_k_mask
from f3ocus_ray.strategies.registry import (
    make_strategy,
    register_strategy,
    strategy_entry,
    strategy_names,
    unregister_strategy,
)

__all__ = [
    "Selection",
    "Strategy",
    "make_strategy",
    "masked_fedavg",
    "register_strategy",
    "scores_due",
    "strategy_entry",
    "strategy_names",
    "top_k_mask",
    "unregister_strategy",
]
