"""A worker's bounded in-memory cache of client splits, least recently used evicted first.

A split that fits the budget is loaded whole onto the worker's device (the fastest path for
the demo's sizes); one larger than the budget, or any with a budget of 0, stays a view that
reads each batch from the decoded cache. Both give the same batches bit for bit.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch

from f3ocus_ray.task import ClientTensors

__all__ = ["SplitLRU"]


def _materialise(view: ClientTensors, device: torch.device) -> ClientTensors:
    whole = slice(None)
    return ClientTensors(
        view.pixel_values[whole],
        view.input_ids[whole],
        view.attention_mask[whole],
        view.targets[whole],
        view.task,
        view.outputs,
    ).to(device)


class SplitLRU:
    """`get(key)` returns the split `open_view(key)` describes: held in memory while the
    splits held total at most `budget_bytes`, else streamed to `device` per batch."""

    def __init__(
        self,
        open_view: Callable[[tuple[str, str]], ClientTensors],
        budget_bytes: int,
        device: torch.device,
    ):
        self.open_view = open_view
        self.budget = budget_bytes
        self.device = device
        self.held: OrderedDict[tuple[str, str], ClientTensors] = OrderedDict()
        self._views: dict[tuple[str, str], ClientTensors] = {}  # a few paths each: unbounded
        self.hits = self.misses = self.evictions = 0

    @property
    def held_bytes(self) -> int:
        return sum(t.nbytes for t in self.held.values())

    def get(self, key: tuple[str, str]) -> ClientTensors:
        if key in self.held:
            self.hits += 1
            self.held.move_to_end(key)
            return self.held[key]
        self.misses += 1
        if key not in self._views:
            self._views[key] = self.open_view(key).to(self.device)
        view = self._views[key]
        size = view.nbytes
        if size > self.budget:
            return view
        while self.held and self.held_bytes + size > self.budget:
            self.held.popitem(last=False)
            self.evictions += 1
        self.held[key] = _materialise(view, self.device)
        return self.held[key]
