"""PathVQA (He et al. 2020), from its parquet release (the Hugging Face hub's
``flaviagiammarino/path-vqa``): ``data/{train,validation,test}-*.parquet`` with columns
``image`` (a struct with the encoded ``bytes``), ``question`` and ``answer``.

The original release is pickled (``*.pkl``); pickles can run code when loaded, so they are
refused: download the parquet release instead. One client, ``pathvqa``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ..format import DataError, Sample
from .common import ConvertOptions, files_under, map_split, norm_answer, norm_text

CLIENT = "pathvqa"
TASK = "vqa"
COLUMNS = ("image", "question", "answer")
_SPLIT = re.compile(r"^(train|validation|valid|val|test)\b", re.IGNORECASE)
PARQUET = "use the parquet release (huggingface.co/datasets/flaviagiammarino/path-vqa, data/)"
PICKLE_REFUSED = f"PathVQA's pickle release is not read (unpickling can run code): {PARQUET}"


def read(src: Path, opts: ConvertOptions, stats: dict | None = None) -> Iterator[Sample]:
    if not src.is_dir():
        raise DataError(f"{src}: source folder not found")
    files = files_under(src, "**/*.parquet")
    if not files:
        pickles = files_under(src, "**/*.pkl")
        if pickles:
            raise DataError(f"{pickles[0]}: {PICKLE_REFUSED}")
        raise DataError(f"{src}: no *.parquet files found: {PARQUET}")
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow comes with ray[tune]
        raise DataError("reading parquet needs pyarrow (pip install pyarrow)") from None
    for path in files:
        m = _SPLIT.match(path.name)
        if m is None:
            raise DataError(
                f"{path}: cannot tell the split (file name must start with train, validation or test)"
            )
        split = map_split(m.group(1), opts, str(path))
        if split is None:
            continue
        try:
            pf = pq.ParquetFile(path)
        except Exception as e:
            raise DataError(f"{path}: cannot read parquet: {e}") from None
        missing = [c for c in COLUMNS if c not in pf.schema_arrow.names]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
        row = 0
        for batch in pf.iter_batches(batch_size=256, columns=list(COLUMNS)):
            for rec in batch.to_pylist():
                where = f"{path}: row {row}"
                row += 1
                image = rec["image"]
                data = image.get("bytes") if isinstance(image, dict) else image
                if not isinstance(data, bytes | bytearray) or not data:
                    raise DataError(f"{where}: 'image' has no encoded bytes")
                yield Sample(
                    bytes(data),
                    where,
                    CLIENT,
                    split,
                    question=norm_text(rec["question"], where, "question"),
                    answer=norm_answer(rec["answer"], where),
                )
