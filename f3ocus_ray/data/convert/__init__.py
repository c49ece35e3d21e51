"""Readers of the real data sets' release layouts, writing the common on-disk format.

``convert(format, src, out, **options)`` reads one release with the reader registered under
its name in :data:`FORMATS` and writes ``out`` atomically (images re-encoded as PNG, at most
``image_size`` px, and ``annotations.jsonl``); ``merge(srcs, out)`` joins converted sets with
distinct clients into one (Task 1: SLAKE + VQA-RAD + VQA-Med 2019/2020/2021). Official
validation splits go to train by default (``val_split``: the format has train and test only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..format import DataError, Sample, read_annotations
from . import medmnist, mimic_cxr, openi, pathvqa, slake, vqa_med, vqa_rad
from .common import ConvertOptions, iter_checked, write_samples

__all__ = ["FORMATS", "ConvertOptions", "Format", "convert", "merge"]


@dataclass(frozen=True)
class Format:
    """A registered release layout: its reader, its task and what it is."""

    read: Callable[..., Iterator[Sample]]
    task: str
    title: str


FORMATS: dict[str, Format] = {
    "slake": Format(slake.read, "vqa", "SLAKE (English questions)"),
    "vqa-rad": Format(vqa_rad.read, "vqa", "VQA-RAD"),
    "vqa-med-2019": Format(vqa_med.reader(2019), "vqa", "ImageCLEF VQA-Med 2019"),
    "vqa-med-2020": Format(vqa_med.reader(2020), "vqa", "ImageCLEF VQA-Med 2020"),
    "vqa-med-2021": Format(vqa_med.reader(2021), "vqa", "ImageCLEF VQA-Med 2021"),
    "pathvqa": Format(pathvqa.read, "vqa", "PathVQA (parquet release)"),
    "medmnist": Format(medmnist.read, "vqa", "MedVQA-FL from MedMNIST .npz files"),
    "open-i": Format(openi.read, "multilabel", "Open-I chest X-rays (Kaggle CSV layout)"),
    "mimic-cxr": Format(mimic_cxr.read, "multilabel", "MIMIC-CXR-JPG with CheXpert labels"),
}


def convert(
    fmt: str,
    src: str | Path,
    out: str | Path,
    *,
    overwrite: bool = False,
    **options,
) -> Path:
    """Convert the release of data set ``fmt`` in ``src`` into the on-disk format at ``out``.

    ``options`` are :class:`ConvertOptions` fields. Raises :class:`DataError` naming the file
    (and line or record) for a missing file or column, a bad record or an unreadable image;
    nothing is left at ``out`` then.
    """
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    opts = ConvertOptions(**options)
    src = Path(src)
    if not src.is_dir():
        raise DataError(f"{src}: source folder not found")
    stats: dict = {}
    meta = {
        "converter": "f3ocus_ray.data.convert",
        "format": fmt,
        "source": str(src.resolve()),
        "task": FORMATS[fmt].task,
        "options": {k: v for k, v in vars(opts).items()},
        "stats": stats,
    }
    samples = iter_checked(FORMATS[fmt].read(src, opts, stats), src)
    path, _ = write_samples(
        out, samples, image_size=opts.image_size, meta=meta, overwrite=overwrite, sources=[src]
    )
    return path


def merge(srcs: Sequence[str | Path], out: str | Path, *, overwrite: bool = False) -> Path:
    """Join data sets in the on-disk format (one task, distinct clients) into ``out``."""
    if len(srcs) < 2:
        raise DataError("merge needs at least two data sets")
    parts = []
    owner: dict[str, Path] = {}
    for s in srcs:
        root = Path(s)
        records = read_annotations(root)
        if parts and records[0].task != parts[0][1][0].task:
            raise DataError(
                f"{root}: a {records[0].task} data set cannot be merged with "
                f"{parts[0][0]} ({parts[0][1][0].task})"
            )
        for c in dict.fromkeys(r.client for r in records):
            if c in owner:
                raise DataError(f"{root}: client {c!r} is also in {owner[c]}; clients must differ")
            owner[c] = root
        parts.append((root, records))

    def samples() -> Iterator[Sample]:
        for root, records in parts:
            for r in records:
                yield Sample(
                    root / r.image,
                    f"{root}:{r.line}",
                    r.client,
                    r.split,
                    question=r.question,
                    answer=r.answer,
                    labels=r.labels,
                    question_type=r.question_type,
                )

    meta = {"merged": [str(root.resolve()) for root, _ in parts]}
    path, _ = write_samples(
        out, samples(), meta=meta, overwrite=overwrite, sources=[root for root, _ in parts]
    )
    return path
