"""The one on-disk format of every data set: image files plus ``annotations.jsonl``.

One JSON object a line, paths relative to the data set folder::

    {"image": "images/oct/000001.png", "question": "...", "answer": "...",
     "client": "oct", "split": "train"}                                  # VQA
    {"image": "images/c0/000001.png", "labels": ["Edema", "Mass"],
     "client": "c0", "split": "test"}                                    # classification

A client holds records of one task; a data set may mix VQA and classification clients (the
paper's Task 6). An optional ``question_type`` (string) is kept; other keys are ignored. Any bad record
raises :class:`DataError` naming the file and line. :class:`DatasetWriter` builds a data set
in a hidden sibling folder and renames it into place, so an interrupted write never leaves a
half-written data set. The synthetic generators and the converters hand it :class:`Sample`
objects.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

__all__ = [
    "ANNOTATIONS",
    "DECODED_CACHE",
    "META",
    "SPLITS",
    "DataError",
    "DatasetWriter",
    "Record",
    "Sample",
    "encode_png",
    "read_annotations",
    "read_image",
]

from .files import DataError, open_image, path_inside

ANNOTATIONS = "annotations.jsonl"
META = "meta.json"
DECODED_CACHE = ".f3ocus-cache"  # the decoded cache's default folder (data/decoded_cache.py)
SPLITS = ("train", "test")
_VQA_KEYS = ("question", "answer")


@dataclass(frozen=True)
class Record:
    """One annotation line. VQA records have question/answer, classification ones labels."""

    image: str
    client: str
    split: str
    question: str | None = None
    answer: str | None = None
    labels: tuple[str, ...] | None = None
    question_type: str | None = None
    line: int = 0

    @property
    def task(self) -> str:
        return "multilabel" if self.labels is not None else "vqa"

    def to_json(self) -> dict:
        out: dict = {"image": self.image}
        if self.labels is None:
            out["question"], out["answer"] = self.question, self.answer
        else:
            out["labels"] = list(self.labels)
        out["client"], out["split"] = self.client, self.split
        if self.question_type is not None:
            out["question_type"] = self.question_type
        return out


@dataclass(frozen=True)
class Sample:
    """One record to write, before its image is stored.

    ``image``: a uint8 (H, W) or (H, W, 3) array; a converter's sample may hold a file path or
    encoded bytes instead, decoded before it is written. ``where`` names the source (file and
    line or row; a generator's client and index) for error messages. VQA samples have question
    and answer (and optionally a question type), classification samples labels.
    """

    image: np.ndarray | Path | bytes
    where: str
    client: str
    split: str
    question: str | None = None
    answer: str | None = None
    labels: tuple[str, ...] | None = None
    question_type: str | None = None


def _str_field(obj: dict, key: str, where: str) -> str:
    if key not in obj:
        raise DataError(f"{where}: missing key '{key}'")
    value = obj[key]
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
    return value


def _parse_record(obj, where: str, line: int) -> Record:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    image = _str_field(obj, "image", where)
    rel = PurePosixPath(image)
    if rel.is_absolute() or ".." in rel.parts or "\\" in image:
        raise DataError(f"{where}: image path {image!r} must be relative to the data set folder")
    client = _str_field(obj, "client", where)
    split = _str_field(obj, "split", where)
    if split not in SPLITS:
        raise DataError(f"{where}: unknown split {split!r} (expected 'train' or 'test')")
    has_vqa = [k for k in _VQA_KEYS if k in obj]
    if has_vqa and "labels" in obj:
        raise DataError(f"{where}: record mixes VQA keys (question, answer) with 'labels'")
    qtype = obj.get("question_type")
    if qtype is not None and not isinstance(qtype, str):
        raise DataError(f"{where}: 'question_type' must be a string, got {qtype!r}")
    if "labels" in obj:
        labels = obj["labels"]
        if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
            raise DataError(
                f"{where}: 'labels' must be a list of non-empty strings, got {labels!r}"
            )
        if len(set(labels)) != len(labels):
            raise DataError(f"{where}: 'labels' has duplicates: {labels!r}")
        return Record(image, client, split, labels=tuple(labels), line=line)
    if not has_vqa:
        raise DataError(f"{where}: missing key 'question' and 'answer' (VQA) or 'labels'")
    question = _str_field(obj, "question", where)
    answer = _str_field(obj, "answer", where)
    return Record(image, client, split, question, answer, question_type=qtype, line=line)


def read_annotations(root: str | Path) -> list[Record]:
    """Parse and validate ``root/annotations.jsonl``; each client's records are of one task."""
    root = Path(root)
    path = root / ANNOTATIONS
    if not root.is_dir():
        raise DataError(f"{root}: data set folder not found")
    if not path.is_file():
        raise DataError(f"{path}: not found (a data set folder needs an {ANNOTATIONS})")
    records: list[Record] = []
    first_of_client: dict[str, Record] = {}
    try:
        with path.open(encoding="utf-8") as fh:
            for line, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                where = f"{path}:{line}"
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as e:
                    raise DataError(f"{where}: invalid JSON: {e.msg} (column {e.colno})") from None
                rec = _parse_record(obj, where, line)
                first = first_of_client.setdefault(rec.client, rec)
                if rec.task != first.task:
                    raise DataError(
                        f"{where}: {rec.task} record for client {rec.client!r}, whose records are "
                        f"{first.task} (line {first.line}); a client holds one task (a data set "
                        "may mix VQA clients and classification clients)"
                    )
                records.append(rec)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason})") from None
    if not records:
        raise DataError(f"{path}: no records")
    return records


def encode_png(image: np.ndarray) -> bytes:
    """A uint8 (H, W) or (H, W, 3) array as the PNG bytes the writer stores."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
        raise DataError(
            f"image must be a uint8 (H, W) or (H, W, 3) array, got {arr.dtype} {arr.shape}"
        )
    out = io.BytesIO()
    Image.fromarray(arr).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def read_image(root: Path, rec: Record, image_size: int | None = None) -> np.ndarray:
    """Decode one record's image as RGB uint8, resized to image_size x image_size if given.
    The file must lie inside ``root`` (symlinks resolved) and within the pixel bound."""
    where, what = f"{root / ANNOTATIONS}:{rec.line}", f"image {rec.image!r}"
    try:
        with open_image(path_inside(root, root / rec.image, where), where, what) as im:
            im = im.convert("RGB")
            if image_size is not None and im.size != (image_size, image_size):
                im = im.resize((image_size, image_size), Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{where}: {what} not found") from None
    except DataError:
        raise
    except Exception as e:  # PIL raises many types for corrupt files
        raise DataError(f"{where}: cannot read {what}: {e}") from None


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class DatasetWriter:
    """Write a data set atomically: use as a context manager, add samples, and on a clean
    exit the folder appears at ``path`` (on an exception nothing is left behind)."""

    def __init__(
        self, out_dir: str | Path, *, overwrite: bool = False, sources: Sequence[Path] = ()
    ):
        """`overwrite` replaces an existing data set (a folder with annotations.jsonl), never any
        other folder; `sources` (what is read) may not overlap the output in either direction."""
        self.path = Path(out_dir)
        self.overwrite = overwrite
        self.sources = tuple(Path(s) for s in sources)
        self.meta: dict | None = None
        self._records: list[Record] = []
        self._counts: dict[str, int] = {}
        self._tmp: Path | None = None
        self._check_target()

    def _check_target(self) -> None:
        p = self.path
        if p.exists() and not p.is_dir():
            raise DataError(f"{p}: exists and is not a folder")
        out = p.resolve()
        for src in self.sources:
            src_abs = src.resolve()
            if out == src_abs or src_abs in out.parents or out in src_abs.parents:
                raise DataError(
                    f"{p}: the output overlaps the source {src}; write it outside the source"
                )
        if p.is_dir() and any(p.iterdir()):
            if not self.overwrite:
                raise DataError(
                    f"{p}: folder exists and is not empty (pass overwrite=True to replace it)"
                )
            if not (p / ANNOTATIONS).is_file():
                raise DataError(
                    f"{p}: not a data set (no {ANNOTATIONS}); refusing to replace a folder "
                    "this tool did not write"
                )

    def __enter__(self) -> DatasetWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.tmp-", dir=self.path.parent))
        self._tmp.chmod(0o755)
        return self

    def _add(self, png: bytes, rec: Record) -> Record:
        if self._tmp is None:
            raise RuntimeError("DatasetWriter must be used as a context manager")
        if rec.split not in SPLITS:
            raise DataError(f"unknown split {rec.split!r} (expected 'train' or 'test')")
        folder = _UNSAFE.sub("_", rec.client) or "_"
        n = self._counts.get(folder, 0)
        self._counts[folder] = n + 1
        rel = f"images/{folder}/{n:06d}.png"
        (self._tmp / "images" / folder).mkdir(parents=True, exist_ok=True)
        (self._tmp / rel).write_bytes(png)
        rec = replace(rec, image=rel, line=len(self._records) + 1)
        self._records.append(rec)
        return rec

    def add(self, sample: Sample, png: bytes | None = None) -> Record:
        """Add one sample (its image an array, or already encoded by :func:`encode_png` as
        `png`, e.g. in a worker process); returns its record."""
        if sample.labels is not None:
            if sample.question is not None or sample.answer is not None:
                raise DataError(f"{sample.where}: sample has both labels and a question/answer")
            rec = Record("", sample.client, sample.split, labels=tuple(sample.labels))
        else:
            if not sample.question or not sample.answer:
                raise DataError(f"{sample.where}: a VQA sample needs a question and an answer")
            rec = Record(
                "",
                sample.client,
                sample.split,
                sample.question,
                sample.answer,
                question_type=sample.question_type,
            )
        return self._add(encode_png(sample.image) if png is None else png, rec)  # type: ignore[arg-type]

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._tmp is not None
        if exc_type is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            return
        try:
            self._commit()
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise

    def _commit(self) -> None:
        assert self._tmp is not None
        if not self._records:
            raise DataError(f"{self.path}: refusing to write a data set without records")
        lines = (json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in self._records)
        (self._tmp / ANNOTATIONS).write_text("".join(lines), encoding="utf-8")
        if self.meta is not None:
            (self._tmp / META).write_text(json.dumps(self.meta, indent=2, sort_keys=True) + "\n")
        self._check_target()
        old = None
        if self.path.is_dir():
            old = self.path.with_name(f".{self.path.name}.old-{os.getpid()}")
            os.rename(self.path, old)
        os.rename(self._tmp, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
