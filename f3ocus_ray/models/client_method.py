"""The hooks a unit mode's client method offers the worker (FedDAT's local state and loss)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the config reads the unit modes' registry: no torch at import time
    from torch import Tensor


class ClientMethod:
    """A client's local work beyond plain training, as hooks the worker calls (Flower's
    ClientApp role). The default does nothing. `private` is a client's own state that never
    travels (the driver keeps it per client and hands it back, None on its first round)."""

    def prepare_train(self, private: dict[str, np.ndarray] | None, mask: np.ndarray) -> list:
        """Before local training (global state loaded, units masked): load the client's private
        state; return the private parameters it trains too (never sent)."""
        return []

    def step_loss(self) -> Callable[..., Tensor] | None:
        """`loss(model, data, idx)` of one local step; None: the task loss."""
        return None

    def collect_private(self) -> dict[str, np.ndarray]:
        """After local training: the client's private state to keep."""
        return {}

    @contextlib.contextmanager
    def eval_context(self, private: dict[str, np.ndarray] | None) -> Iterator[None]:
        """Around evaluation under the global state: the model the client deploys."""
        yield
