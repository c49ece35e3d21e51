"""Local training and evaluation of one client on one model: the compute of a round.

Shared by the Ray workers and by the sequential baseline of `bench/fl_overhead.py`, so both
run exactly the same code.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from f3ocus_ray.models.common import seeded


@dataclass
class ClientTensors:
    """One client's split, model-ready: images normalised to [-1, 1], questions tokenised."""

    pixel_values: torch.Tensor  # (n, 3, H, W) float32
    input_ids: torch.Tensor  # (n, T) int64
    attention_mask: torch.Tensor  # (n, T) int64
    # (n,) int64 answer ids (vqa), (n, C) float32 multi-hot (multilabel), or (n, T) int64 next
    # tokens (generative: targets[:, t] is the token logits[:, t] must predict, -100 where no
    # loss: prompt and padding; see f3ocus_ray/data/generative.py)
    targets: torch.Tensor
    task: str  # the client's own task: "vqa" | "multilabel" | "generative"
    # the client's head: outputs [lo, hi) of a model shared by tasks (mixed data sets); None = all
    outputs: tuple[int, int] | None = None

    def __len__(self) -> int:
        return self.pixel_values.shape[0]

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        targets: np.ndarray,
        task: str,
        outputs: tuple[int, int] | None = None,
    ) -> ClientTensors:
        pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        return cls(
            pixel_values=(pixels.float() / 127.5 - 1.0).contiguous(),
            input_ids=torch.as_tensor(input_ids, dtype=torch.long),
            attention_mask=torch.as_tensor(attention_mask, dtype=torch.long),
            targets=torch.as_tensor(targets),
            task=task,
            outputs=outputs,
        )

    def forward(self, model: nn.Module, idx: torch.Tensor | slice) -> torch.Tensor:
        """The logits of the client's head for samples `idx`."""
        logits = model(self.pixel_values[idx], self.input_ids[idx], self.attention_mask[idx])
        return select_outputs(logits, self.outputs)

    def to(self, device: torch.device | str) -> ClientTensors:
        """The same split on `device` (self when already there)."""
        if self.pixel_values.device == torch.device(device):
            return self
        return ClientTensors(
            self.pixel_values.to(device),
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.targets.to(device),
            self.task,
            self.outputs,
        )


def select_outputs(logits: torch.Tensor, outputs: tuple[int, int] | None) -> torch.Tensor:
    """The block [lo, hi) of the last dimension (one task's head of a shared model), or all."""
    return logits if outputs is None else logits[..., outputs[0] : outputs[1]]


IGNORE = -100  # generative targets: no loss at this position


def task_loss(logits: torch.Tensor, targets: torch.Tensor, task: str) -> torch.Tensor:
    """Mean loss over the batch. Generative: each sample's mean token cross-entropy over its
    answer positions (targets != -100), then the mean over samples (so a batch of one, as in
    the per-sample gradients of LNTK, is that sample's own mean)."""
    if task == "vqa":
        return F.cross_entropy(logits, targets)
    if task == "generative":
        keep = targets != IGNORE
        tokens = F.cross_entropy(
            logits.float().flatten(0, 1), targets.clamp(min=0).flatten(), reduction="none"
        ).view_as(targets)
        per_sample = (tokens * keep).sum(1) / keep.sum(1).clamp(min=1)
        return per_sample.mean()
    return F.binary_cross_entropy_with_logits(logits, targets.float())


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


def generative_exact_match(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(n,) bool: the sample's greedy answer is exactly its gold answer (normalised at encoding).

    Teacher-forced argmax equal to the gold token at every answer position, EOS included, is
    equivalent to greedy generation producing exactly the gold answer and stopping: generation
    step k sees the prompt and its own k previous tokens; if every earlier greedy token equalled
    the gold one, that is the gold prefix the teacher-forced logits at step k were computed on
    (causal attention: positions after step k, padding included, do not change it), so greedy
    step k emits gold token k iff the teacher-forced argmax does; by induction the whole answer
    and its EOS match iff every position matches. The test checks this against `generate()`."""
    keep = targets != IGNORE
    hit = (logits.argmax(-1) == targets) | ~keep
    return hit.all(1) & keep.any(1)


def score_of(sums: dict[str, float], task: str) -> float:
    """Accuracy (vqa, generative) or micro-F1 (multilabel, mixed) from summed evaluation counts."""
    if task in ("vqa", "generative"):
        return sums["correct"] / max(sums["n"], 1.0)
    denom = 2 * sums["tp"] + sums["fp"] + sums["fn"]
    return 2 * sums["tp"] / denom if denom else 0.0
