"""What a client's task is, independent of any engine: its tensors, loss and metric.

`ClientTensors` is one client's split, model-ready; `task_loss` is what training minimises and
LNTK differentiates; `score_of` turns evaluation counts into the reported metric (accuracy, or
micro-F1 for multi-label and mixed data sets).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def normalise_pixels(images: torch.Tensor) -> torch.Tensor:
    """(n, H, W, 3) uint8 -> (n, 3, H, W) float32 in [-1, 1]; elementwise, so a batch
    normalised alone equals the same rows of the whole split normalised at once."""
    return (images.permute(0, 3, 1, 2).float() / 127.5 - 1.0).contiguous()


@dataclass(frozen=True)
class MappedRows:
    """The rows of one ``.npy`` file, read on indexing: `rows[idx]` maps the file, copies
    rows `idx` (in that order), unmaps it and returns them as a tensor on `device` (pixels
    normalised when `pixels`). Mapping per batch keeps the process's resident memory at one
    batch however large the file: pages of a long-lived map would count in its RSS."""

    path: Path
    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int  # bytes before the array (the .npy header)
    pixels: bool = False
    device: torch.device = torch.device("cpu")

    @classmethod
    def open(cls, path: Path, *, pixels: bool = False) -> MappedRows:
        with open(path, "rb") as f:
            fmt = np.lib.format
            if fmt.read_magic(f) == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
            if fortran:
                raise ValueError(f"{path}: a Fortran-ordered array")
            return cls(Path(path), tuple(shape), dtype, f.tell(), pixels)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx: torch.Tensor | np.ndarray | slice) -> torch.Tensor:
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu().numpy()
        if not isinstance(idx, slice):
            idx = np.asarray(idx, dtype=np.int64)
        if self.shape[0] == 0:
            rows = np.empty((0, *self.shape[1:]), self.dtype)[idx]
        else:
            mm = np.memmap(self.path, self.dtype, "r", self.offset, self.shape)
            try:
                # a slice is a view of the map: copied before it closes; a fancy index copies
                rows = np.array(mm[idx]) if isinstance(idx, slice) else np.asarray(mm[idx])
            finally:
                mm._mmap.close()  # type: ignore[attr-defined]
        t = torch.from_numpy(rows)
        # normalised on the CPU, as the in-memory path does before its one move to the device
        return (normalise_pixels(t) if self.pixels else t).to(self.device)

    def to(self, device: torch.device | str) -> MappedRows:
        return replace(self, device=torch.device(device))

    @property
    def nbytes(self) -> int:
        """Bytes of the whole split once loaded (pixels as float32)."""
        n = int(np.prod(self.shape)) if self.shape else 0
        return n * (4 if self.pixels else self.dtype.itemsize)


Rows = torch.Tensor | MappedRows  # a split's field: in memory, or read per batch from disk


@dataclass
class ClientTensors:
    """One client's split, model-ready: images normalised to [-1, 1], questions tokenised.

    Each field is a tensor (the whole split in memory) or :class:`MappedRows` (read from the
    decoded cache per batch); indexing either gives the same batch tensor."""

    pixel_values: Rows  # (n, 3, H, W) float32
    input_ids: Rows  # (n, T) int64
    attention_mask: Rows  # (n, T) int64
    # (n,) int64 answer ids (vqa), (n, C) float32 multi-hot (multilabel), or (n, T) int64 next
    # tokens (generative: targets[:, t] is the token logits[:, t] must predict, -100 where no
    # loss: prompt and padding; see f3ocus_ray/data/generative.py)
    targets: Rows
    task: str  # the client's own task: "vqa" | "multilabel" | "generative"
    # the client's head: outputs [lo, hi) of a model shared by tasks (mixed data sets); None = all
    outputs: tuple[int, int] | None = None

    def __len__(self) -> int:
        return self.pixel_values.shape[0]

    @property
    def streamed(self) -> bool:
        """Read from disk per batch (else held in memory)."""
        return isinstance(self.pixel_values, MappedRows)

    @property
    def nbytes(self) -> int:
        """Bytes the split takes in memory once loaded."""
        fields = (self.pixel_values, self.input_ids, self.attention_mask, self.targets)
        return sum(
            f.nbytes if isinstance(f, MappedRows) else f.element_size() * f.numel() for f in fields
        )

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
        return cls(
            pixel_values=normalise_pixels(torch.from_numpy(np.ascontiguousarray(images))),
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
    return micro_f1(sums["tp"], sums["fp"], sums["fn"])


def micro_f1(tp: float, fp: float, fn: float) -> float:
    """2 tp / (2 tp + fp + fn); 0 when there is nothing to count."""
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else 0.0
