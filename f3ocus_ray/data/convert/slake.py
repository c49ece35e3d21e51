"""SLAKE (Liu et al. 2021): ``train.json``, ``validate.json``, ``test.json`` and ``imgs/``.

Each JSON file is a list of objects with ``img_name`` (relative to ``imgs/``, e.g.
``xmlab102/source.jpg``), ``question``, ``answer``, ``q_lang`` (``en`` or ``zh``) and
``content_type`` (kept as the question type). Only English questions are kept. One client,
``slake``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ..format import DataError, Sample
from .common import ConvertOptions, find_file, map_split, norm_answer, norm_text

CLIENT = "slake"
TASK = "vqa"
FILES = {"train": "train.json", "val": "validate.json", "test": "test.json"}


def read_json_list(path: Path) -> list:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: cannot read JSON: {e}") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    return data


def read(src: Path, opts: ConvertOptions, stats: dict | None = None) -> Iterator[Sample]:
    paths = {official: find_file(src, [name], f"SLAKE {name}") for official, name in FILES.items()}
    for official, path in paths.items():
        split = map_split(official, opts, str(path))
        if split is None:
            continue
        images = path.parent / "imgs"
        for i, rec in enumerate(read_json_list(path)):
            where = f"{path}: record {i}"
            if not isinstance(rec, dict):
                raise DataError(f"{where}: expected an object")
            for key in ("img_name", "question", "answer", "q_lang"):
                if key not in rec:
                    raise DataError(f"{where}: missing field {key!r}")
            if rec["q_lang"] != "en":
                if stats is not None:
                    stats["non_english_skipped"] = stats.get("non_english_skipped", 0) + 1
                continue
            qtype = rec.get("content_type")
            yield Sample(
                images / norm_text(rec["img_name"], where, "img_name"),
                where,
                CLIENT,
                split,
                question=norm_text(rec["question"], where, "question"),
                answer=norm_answer(rec["answer"], where),
                question_type=str(qtype).lower() if qtype else None,
            )
