"""A model viewed as a pure function of some of its parameters, for `torch.func` transforms."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from itertools import chain

import torch
from torch import Tensor, nn
from torch.func import functional_call

from f3ocus_ray.models.split import find_prefix_split
from f3ocus_ray.task import select_outputs


class _Bound(nn.Module):
    """Calls `body(model, *xs)` so that `functional_call` can swap the model's parameters."""

    def __init__(self, model: nn.Module, body: Callable[..., Tensor]):
        super().__init__()
        self.m = model
        self._body = body

    def forward(self, *xs: Tensor) -> Tensor:
        return self._body(self.m, *xs)


def _whole(model: nn.Module, *xs: Tensor) -> Tensor:
    return model(*xs)


class ModelFunction:
    """`logits = self(params, *xs)`: every parameter or buffer not in `params` is a constant.

    If the model has a frozen-prefix split and no name in `wrt` lies in its prefix, the prefix
    runs once here under no_grad and `self.inputs` are its outputs; otherwise `self.inputs` are
    the model inputs. Either way `self(params, *self.inputs)` are the model's logits (only the
    block `outputs` = [lo, hi) of them if given: one task's head of a model shared by tasks).
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: tuple[Tensor, ...],
        wrt: Collection[str],
        *,
        use_split: bool = True,
        outputs: tuple[int, int] | None = None,
    ):
        self.outputs = outputs
        split = find_prefix_split(model) if use_split else None
        self.split_used = split is not None and split.prefix_params.isdisjoint(wrt)
        if self.split_used:
            with torch.no_grad():
                self.inputs = tuple(split.prefix(*inputs))
            body = split.body
        else:
            self.inputs = tuple(inputs)
            body = _whole
        self._bound = _Bound(model, body)
        state = chain(model.named_parameters(), model.named_buffers())
        self._constants = {name: t.detach() for name, t in state}

    @property
    def n(self) -> int:
        return int(self.inputs[0].shape[0])

    def constants(self) -> dict[str, Tensor]:
        """All parameters and buffers, detached (a new dict)."""
        return dict(self._constants)

    def primals(self, names: Collection[str]) -> dict[str, Tensor]:
        return {n: self._constants[n] for n in names}

    def __call__(self, params: Mapping[str, Tensor], *xs: Tensor) -> Tensor:
        full = {f"m.{k}": v for k, v in self._constants.items()}
        full.update({f"m.{k}": v for k, v in params.items()})
        return select_outputs(functional_call(self._bound, full, xs), self.outputs)

    def one(self, params: Mapping[str, Tensor], *x: Tensor) -> Tensor:
        """Logits of one sample given without its batch dimension (shape (1, ...))."""
        return self(params, *(t.unsqueeze(0) for t in x))

    def rows(self, sl: slice) -> tuple[Tensor, ...]:
        return tuple(x[sl] for x in self.inputs)
