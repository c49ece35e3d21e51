"""The input every scoring method shares: a model, its units as parameter-name groups, n samples.

Nothing here is model-specific: a unit is any group of parameter names (a transformer block, an
adapter's own weights, a LayerNorm), and the model is any module with `model(*inputs) -> logits`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from f3ocus_ray.scoring.functional import ModelFunction
from f3ocus_ray.task import select_outputs

LossFn = Callable[[Tensor, Tensor], Tensor]
"""(logits (b, ...), targets (b, ...)) -> the mean loss over the b samples (a scalar)."""

MODES = ("loss", "logits")


@dataclass(frozen=True)
class ScoringProblem:
    """A model, its selectable units, a client's n samples and the options of the scorers.

    `inputs` are the model's positional inputs, each with leading dimension n. `loss_fn` and
    `targets` are needed by every method except LNTK in `logits` mode, magnitude and SynFlow.
    `mode`, `tol`, `max_iter` and `exact` only concern LNTK; `seed` seeds Lanczos' start vector.
    `chunk_size` and `gradient_budget_mb` bound the per-sample gradients held at once, and
    `vmap_size` the samples per vmapped call (LNTK loss mode, SNR, Fisher: see `per_sample.py`).
    """

    model: nn.Module
    units: tuple[tuple[str, ...], ...]
    inputs: tuple[Tensor, ...]
    targets: Tensor | None = None
    loss_fn: LossFn | None = None
    mode: str = "loss"
    chunk_size: int = 16
    gradient_budget_mb: float = 64.0  # per-sample gradients below this never go in row blocks
    vmap_size: int | None = None  # samples per vmapped per-sample-gradient call; None: chunk_size
    tol: float = 1e-6
    max_iter: int = 100
    seed: int = 0
    exact: bool = False
    outputs: tuple[int, int] | None = None  # the client's head among the logits; None = all

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not self.units or any(not u for u in self.units):
            raise ValueError("need at least one unit, and every unit needs parameters")
        if not self.inputs or self.inputs[0].shape[0] == 0:
            raise ValueError("need at least one sample")
        if self.chunk_size < 1 or self.max_iter < 1 or self.tol <= 0:
            raise ValueError("chunk_size and max_iter must be >= 1, tol > 0")
        if self.vmap_size is not None and self.vmap_size < 1:
            raise ValueError(f"vmap_size must be >= 1 or None, got {self.vmap_size}")
        if not self.gradient_budget_mb >= 0:
            raise ValueError(f"gradient_budget_mb must be >= 0, got {self.gradient_budget_mb}")
        known = {n for n, _ in self.model.named_parameters()}
        missing = [n for u in self.units for n in u if n not in known]
        if missing:
            raise ValueError(f"unknown parameter names in units: {missing[:3]}")

    @property
    def n(self) -> int:
        return int(self.inputs[0].shape[0])

    @property
    def samples_per_call(self) -> int:
        """Samples per vmapped per-sample-gradient call (`vmap_size`, else `chunk_size`)."""
        return self.chunk_size if self.vmap_size is None else self.vmap_size

    @property
    def names(self) -> tuple[str, ...]:
        """Every unit's parameter names, in unit order."""
        return tuple(n for u in self.units for n in u)

    def require_loss(self) -> tuple[Tensor, LossFn]:
        if self.targets is None or self.loss_fn is None:
            raise ValueError("this score needs targets and a loss_fn")
        return self.targets, self.loss_fn

    def function(
        self, inputs: tuple[Tensor, ...] | None = None, *, use_split: bool = True
    ) -> ModelFunction:
        """The model as a function of the units' parameters, on `inputs` (default: the samples)."""
        return ModelFunction(
            self.model,
            self.inputs if inputs is None else inputs,
            self.names,
            use_split=use_split,
            outputs=self.outputs,
        )

    def logits(self, sl: slice) -> Tensor:
        """The client's logits of samples `sl`, by a plain forward pass (autograd applies)."""
        return select_outputs(self.model(*(x[sl] for x in self.inputs)), self.outputs)

    def parameters(self) -> dict[str, Tensor]:
        """Current values of the units' parameters, detached."""
        params = dict(self.model.named_parameters())
        return {n: params[n].detach() for n in self.names}


def unit_sums(units: Sequence[Sequence[str]], values: Mapping[str, Tensor]) -> np.ndarray:
    """Per unit, the float64 sum of all entries of its parameters' tensors in `values`."""
    return np.array(
        [sum(float(values[n].double().sum()) for n in unit) for unit in units], dtype=np.float64
    )


def flatten_units(
    units: Sequence[Sequence[str]], values: Mapping[str, Tensor], batch_dims: int = 0
) -> list[Tensor]:
    """Per unit, its tensors flattened and concatenated (keeping `batch_dims` leading dims)."""
    out = []
    for unit in units:
        parts = [values[n].reshape(*values[n].shape[:batch_dims], -1) for n in unit]
        out.append(torch.cat(parts, dim=-1))
    return out
