"""Load any data set in the on-disk format into per-client arrays.

``load_dataset(path)`` validates every annotation line and checks that every image file
exists; pixels are decoded per (client, split) on first access and cached, so a worker that
hosts a few clients decodes only theirs (``preload=True`` decodes everything up front).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import path_inside
from .format import ANNOTATIONS, SPLITS, DataError, Record, read_annotations, read_image

__all__ = ["CLASSIFICATION_PROMPT", "ClientData", "FederatedDataset", "load_dataset"]

CLASSIFICATION_PROMPT = "what findings are present"


@dataclass
class ClientData:
    """The samples of one client in one split.

    ``images`` (n, H, W, 3) uint8; ``questions`` the questions (for classification, the fixed
    :data:`CLASSIFICATION_PROMPT` for every sample, so both tasks share one input path);
    ``answer_ids`` (n,) int64 indices into ``FederatedDataset.answers`` (VQA) or
    ``label_matrix`` (n, K) float32 multi-hot over ``FederatedDataset.labels``.
    """

    client: str
    split: str
    images: np.ndarray
    questions: list[str]
    answer_ids: np.ndarray | None = None
    label_matrix: np.ndarray | None = None
    question_types: list[str | None] | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def targets(self) -> np.ndarray:
        """``answer_ids`` for VQA, ``label_matrix`` for classification."""
        out = self.answer_ids if self.answer_ids is not None else self.label_matrix
        assert out is not None
        return out


class FederatedDataset:
    """A data set split over clients; see :func:`load_dataset`.

    Fields: ``root``, ``task`` ("vqa" | "multilabel", or "mixed" when VQA clients and
    classification clients share the data set), ``clients`` (in order of first appearance in
    the file), ``answers`` (sorted answer vocabulary over all splits; empty without VQA
    clients), ``labels`` (sorted label vocabulary; empty without classification clients),
    ``image_size``, ``records`` (the parsed annotation lines).
    """

    def __init__(self, root: Path, records: list[Record], image_size: int):
        self.root = root
        self.records = records
        self.image_size = image_size
        self._client_task = {r.client: r.task for r in records}  # one task per client
        kinds = set(self._client_task.values())
        self.task = kinds.pop() if len(kinds) == 1 else "mixed"
        self.clients: list[str] = list(self._client_task)
        self.answers: list[str] = sorted({r.answer for r in records if r.answer is not None})
        self.labels: list[str] = sorted({lab for r in records for lab in r.labels or ()})
        self._answer_index = {v: i for i, v in enumerate(self.answers)}
        self._label_index = {v: i for i, v in enumerate(self.labels)}
        self._by_key: dict[tuple[str, str], list[Record]] = {}
        for r in records:
            self._by_key.setdefault((r.client, r.split), []).append(r)
        self._cache: dict[tuple[str, str], ClientData] = {}

    @property
    def vocabulary(self) -> list[str]:
        """The class names, one per model output: ``answers``, then ``labels``."""
        return self.answers + self.labels

    @property
    def num_classes(self) -> int:
        return len(self.vocabulary)

    def client_task(self, client: str) -> str:
        """ "vqa" or "multilabel": the task of one client."""
        if client not in self._client_task:
            raise KeyError(f"unknown client {client!r}; known: {', '.join(self.clients)}")
        return self._client_task[client]

    def output_range(self, client: str) -> tuple[int, int] | None:
        """The client's head among the model's outputs: the answers' or the labels' block of
        ``vocabulary`` in a mixed data set; None (all outputs) otherwise."""
        if self.task != "mixed":
            return None
        a = len(self.answers)
        return (0, a) if self.client_task(client) == "vqa" else (a, a + len(self.labels))

    def client_records(self, client: str, split: str) -> list[Record]:
        """The annotation records of one client and split (file order)."""
        if client not in self.clients:
            raise KeyError(f"unknown client {client!r}; known: {', '.join(self.clients)}")
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r} (expected 'train' or 'test')")
        return self._by_key.get((client, split), [])

    def client_split(self, client: str, split: str) -> ClientData:
        """Arrays of one client's split, decoded on first access and cached."""
        key = (client, split)
        if key not in self._cache:
            self._cache[key] = self._build(client, split, self.client_records(client, split))
        return self._cache[key]

    def _build(self, client: str, split: str, recs: list[Record]) -> ClientData:
        s = self.image_size
        images = np.empty((len(recs), s, s, 3), dtype=np.uint8)
        for i, r in enumerate(recs):
            images[i] = read_image(self.root, r, s)
        targets = self.targets_of(client, recs)
        questions = self.split_questions(client, recs)
        if self.client_task(client) == "vqa":
            qtypes = [r.question_type for r in recs]
            return ClientData(
                client, split, images, questions, answer_ids=targets, question_types=qtypes
            )
        return ClientData(client, split, images, questions, label_matrix=targets)

    def targets_of(self, client: str, recs: list[Record]) -> np.ndarray:
        """The targets of these records of one client: answer ids (n,) int64 (VQA) or the
        multi-hot label matrix (n, K) float32 (classification)."""
        if self.client_task(client) == "vqa":
            return np.array([self._answer_index[r.answer] for r in recs], dtype=np.int64)
        labels = np.zeros((len(recs), len(self.labels)), dtype=np.float32)
        for i, r in enumerate(recs):
            labels[i, [self._label_index[lab] for lab in r.labels or ()]] = 1.0
        return labels

    def split_questions(self, client: str, recs: list[Record]) -> list[str]:
        """The questions of these records (the fixed prompt for classification)."""
        if self.client_task(client) == "vqa":
            return [r.question for r in recs]  # type: ignore[misc]
        return [CLASSIFICATION_PROMPT] * len(recs)

    def preload(self) -> FederatedDataset:
        """Decode every image now (surfaces unreadable images at once)."""
        for c in self.clients:
            for sp in SPLITS:
                self.client_split(c, sp)
        return self

    def questions(self, split: str | None = None) -> list[str]:
        """All questions in file order (the tokenizer's corpus); the prompt for classification."""
        recs = [r for r in self.records if split is None or r.split == split]
        return [CLASSIFICATION_PROMPT if r.question is None else r.question for r in recs]

    def sizes(self) -> dict[str, dict[str, int]]:
        """Samples per client and split."""
        return {c: {sp: len(self._by_key.get((c, sp), [])) for sp in SPLITS} for c in self.clients}

    def describe(self) -> str:
        """A short multi-line summary for logs."""
        sizes = self.sizes()
        total = {sp: sum(v[sp] for v in sizes.values()) for sp in SPLITS}
        kinds = [f"{len(self.answers)} answers"] if self.answers else []
        kinds += [f"{len(self.labels)} labels"] if self.labels else []
        lines = [
            f"{self.root}: {self.task}, {len(self.clients)} clients, "
            f"{total['train']} train / {total['test']} test, {' + '.join(kinds)}, "
            f"{self.image_size}px"
        ]
        width = max(len(c) for c in self.clients)
        for c, v in sizes.items():
            task = f"  ({self.client_task(c)})" if self.task == "mixed" else ""
            lines.append(f"  {c:<{width}}  train {v['train']:>7}  test {v['test']:>7}{task}")
        return "\n".join(lines)

    def answer_counts(self, split: str = "train") -> Counter:
        """How often each answer (or label) occurs in a split."""
        recs = [r for r in self.records if r.split == split]
        return Counter(r.answer for r in recs if r.answer is not None) + Counter(
            lab for r in recs for lab in r.labels or ()
        )

    def __repr__(self) -> str:
        return (
            f"FederatedDataset({str(self.root)!r}, task={self.task!r}, clients={len(self.clients)})"
        )


def load_dataset(
    path: str | Path, image_size: int = 64, *, preload: bool = False
) -> FederatedDataset:
    """Read a data set folder (``annotations.jsonl`` + images) of either task.

    Raises :class:`DataError` naming the file and line for a bad record, a missing image or
    one that leads outside ``path`` through a symlink (and, when decoded, an unreadable one). Images of any size are resized to
    ``image_size`` x ``image_size`` RGB uint8.
    """
    if not isinstance(image_size, int) or image_size < 1:
        raise DataError(f"image_size must be a positive integer, got {image_size!r}")
    root = Path(path)
    records = read_annotations(root)
    for r in records:
        where = f"{root / ANNOTATIONS}:{r.line}"
        if not path_inside(root, root / r.image, where).is_file():  # no symlink out of root
            raise DataError(f"{where}: image {r.image!r} not found")
    ds = FederatedDataset(root, records, image_size)
    return ds.preload() if preload else ds
