"""Local training and evaluation of one client on one model: the compute of a round."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from f3ocus_ray.models.checkpointing import activation_checkpointing
from f3ocus_ray.models.common import seeded
from f3ocus_ray.task import ClientTensors, generative_exact_match, task_loss

StepLoss = Callable[[nn.Module, ClientTensors, torch.Tensor], torch.Tensor]


def num_local_steps(n_samples: int, batch_size: int, epochs: int, steps: int | None) -> int:
    return steps if steps is not None else epochs * math.ceil(n_samples / batch_size)


@dataclass(frozen=True)
class TrainStats:
    loss: float  # mean training loss over the steps
    samples: int  # samples processed (steps x batch, the last batches of an epoch smaller)
    flops_per_sample: float | None  # forward + backward FLOPs, measured on the first step


def local_train(
    model: nn.Module,
    params: list[nn.Parameter],
    data: ClientTensors,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    count_flops: bool = False,
    step_loss: StepLoss | None = None,
    precision: str = "fp32",
    micro_batch_size: int | None = None,
    gradient_checkpointing: bool = False,
) -> TrainStats:
    """Train `params` in place with AdamW (fresh state, as each round starts anew).

    With `count_flops`, the first step runs under torch's FlopCounterMode (which counts and
    changes nothing); FLOPs are linear in the batch, so per-sample FLOPs times `samples` is the
    client's training compute (the optimiser's elementwise update is not counted).
    `step_loss(model, data, idx)`, if given, replaces the task loss of the batch `idx` (FedDAT's
    mutual distillation; like the task loss it must be the mean over the batch's samples).
    Big models: `precision` "bf16" runs forward and loss under CUDA bf16 autocast (parameters,
    gradients and the optimiser keep their dtype; refused on a CPU model); `micro_batch_size` splits
    each batch into micro-batches whose losses are weighted by their share of the batch and
    accumulated, so the step's gradient is the whole batch's up to float rounding;
    `gradient_checkpointing` recomputes the blocks' activations in the backward pass. The
    defaults run the plain full-batch fp32 step.
    Owns its randomness: the batch order and every draw from torch's generator (ViLT's patch
    order) come from `seed`, and the caller's generator state is left as found.
    """
    autocast = _autocast(model, precision)
    with seeded(seed), activation_checkpointing(model, gradient_checkpointing):
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        n = len(data)
        order = torch.randperm(n, generator=gen)
        pos, total, samples, per_sample = 0, 0.0, 0, None
        for step in range(steps):
            if pos >= n:
                order, pos = torch.randperm(n, generator=gen), 0
            idx = order[pos : pos + batch_size]
            pos += batch_size
            counter = FlopCounterMode(display=False) if count_flops and step == 0 else None
            with counter or contextlib.nullcontext():
                opt.zero_grad(set_to_none=True)
                loss = batch_backward(model, data, idx, step_loss, micro_batch_size, autocast)
            if counter is not None:
                per_sample = counter.get_total_flops() / len(idx)
            opt.step()
            total += loss
            samples += len(idx)
        return TrainStats(total / steps, samples, per_sample)


def _autocast(model: nn.Module, precision: str) -> Callable[[], contextlib.AbstractContextManager]:
    if precision == "fp32":
        return contextlib.nullcontext
    if precision != "bf16":
        raise ValueError(f"training.precision must be fp32 or bf16, got {precision!r}")
    device = next(model.parameters()).device
    if device.type != "cuda":
        raise ValueError(
            f"training.precision: bf16 autocasts on CUDA only; the model is on {device} "
            "(use fp32, or a GPU: model.device cuda/auto and engine.gpus_per_worker > 0)"
        )
    return lambda: torch.autocast("cuda", dtype=torch.bfloat16)


def batch_backward(
    model: nn.Module,
    data: ClientTensors,
    idx: torch.Tensor,
    step_loss: StepLoss | None = None,
    micro_batch_size: int | None = None,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> float:
    """Add the gradient of batch `idx`'s mean loss to the parameters' `.grad`; returns that
    loss. With `micro_batch_size`, micro-batch k's mean loss is weighted by |k| / |idx| before
    its backward, so the accumulated gradient is the batch's (activations of one micro-batch
    alive at a time). Forward and loss run under `autocast()`, the backward outside it."""
    parts = [idx] if micro_batch_size is None else list(idx.split(micro_batch_size))
    total = 0.0
    for part in parts:
        with autocast():
            if step_loss is None:
                loss = task_loss(data.forward(model, part), data.targets[part], data.task)
            else:
                loss = step_loss(model, data, part)
        if len(parts) > 1:
            loss = loss * (len(part) / len(idx))
        loss.backward()
        total += float(loss.detach())
    return total


@torch.no_grad()
def evaluate(
    model: nn.Module, data: ClientTensors, batch_size: int, *, seed: int
) -> dict[str, float]:
    """Sums over the split: n, loss_sum, and correct (vqa) or tp/fp/fn at threshold 0.5.

    ViLT draws a random order of image patches in every forward pass, and the order changes
    float sums: the draws come from `seed`, and the caller's generator state is left as found.
    """
    with seeded(seed):
        return _evaluate(model, data, batch_size)


def _evaluate(model: nn.Module, data: ClientTensors, batch_size: int) -> dict[str, float]:
    out = {"n": 0.0, "loss_sum": 0.0, "correct": 0.0, "tp": 0.0, "fp": 0.0, "fn": 0.0}
    for start in range(0, len(data), batch_size):
        sl = slice(start, start + batch_size)
        logits = data.forward(model, sl)
        targets = data.targets[sl]
        m = logits.shape[0]
        out["n"] += m
        out["loss_sum"] += float(task_loss(logits, targets, data.task)) * m
        if data.task == "vqa":
            correct = float((logits.argmax(-1) == targets).sum())
            out["correct"] += correct
            # one prediction and one truth per sample: micro-F1 of these counts is the accuracy,
            # so VQA clients pool with classification clients in a mixed data set
            out["tp"] += correct
            out["fp"] += m - correct
            out["fn"] += m - correct
        elif data.task == "generative":
            out["correct"] += float(generative_exact_match(logits, targets).sum())
        else:
            pred = logits > 0
            truth = targets > 0.5
            out["tp"] += float((pred & truth).sum())
            out["fp"] += float((pred & ~truth).sum())
            out["fn"] += float((~pred & truth).sum())
    return out
