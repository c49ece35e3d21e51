"""Local training and evaluation of one client on one model: the compute of a round."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from f3ocus_ray.models.common import seeded
from f3ocus_ray.task import ClientTensors, generative_exact_match, task_loss


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
    step_loss: Callable[[nn.Module, ClientTensors, torch.Tensor], torch.Tensor] | None = None,
) -> TrainStats:
    """Train `params` in place with AdamW (fresh state, as each round starts anew).

    With `count_flops`, the first step runs under torch's FlopCounterMode (which counts and
    changes nothing); FLOPs are linear in the batch, so per-sample FLOPs times `samples` is the
    client's training compute (the optimiser's elementwise update is not counted).
    `step_loss(model, data, idx)`, if given, replaces the task loss of the batch `idx` (FedDAT's
    mutual distillation).
    Owns its randomness: the batch order and every draw from torch's generator (ViLT's patch
    order) come from `seed`, and the caller's generator state is left as found.
    """
    with seeded(seed):
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
                if step_loss is None:
                    loss = task_loss(data.forward(model, idx), data.targets[idx], data.task)
                else:
                    loss = step_loss(model, data, idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
            if counter is not None:
                per_sample = counter.get_total_flops() / len(idx)
            opt.step()
            total += float(loss.detach())
            samples += len(idx)
        return TrainStats(total / steps, samples, per_sample)


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
