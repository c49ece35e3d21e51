"""VQA-RAD (Lau et al. 2018): ``VQA_RAD Dataset Public.json`` and ``VQA_RAD Image Folder/``.

The JSON is a list of objects with ``image_name``, ``question``, ``answer``,
``question_type`` (kept) and ``phrase_type``: ``freeform``/``para`` are the training
questions, ``test_freeform``/``test_para`` the official test set. One client, ``vqa_rad``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..format import DataError, Sample
from .common import ConvertOptions, find_file, map_split, norm_answer, norm_text
from .slake import read_json_list

CLIENT = "vqa_rad"
TASK = "vqa"
JSON = "VQA_RAD Dataset Public.json"
IMAGES = "VQA_RAD Image Folder"
PHRASE_TYPES = {"freeform": "train", "para": "train", "test_freeform": "test", "test_para": "test"}


def read(src: Path, opts: ConvertOptions, stats: dict | None = None) -> Iterator[Sample]:
    path = find_file(src, [JSON], "VQA-RAD annotation file")
    images = path.parent / IMAGES
    if not images.is_dir():
        raise DataError(f"{images}: image folder not found (next to {path.name})")
    for i, rec in enumerate(read_json_list(path)):
        where = f"{path}: record {i}"
        if not isinstance(rec, dict):
            raise DataError(f"{where}: expected an object")
        for key in ("image_name", "question", "answer", "phrase_type"):
            if key not in rec:
                raise DataError(f"{where}: missing field {key!r}")
        phrase = str(rec["phrase_type"]).strip().lower()
        if phrase not in PHRASE_TYPES:
            raise DataError(
                f"{where}: unknown phrase_type {rec['phrase_type']!r} "
                f"(expected {', '.join(PHRASE_TYPES)})"
            )
        split = map_split(PHRASE_TYPES[phrase], opts, where)
        assert split is not None
        qtype = rec.get("question_type")
        yield Sample(
            images / norm_text(rec["image_name"], where, "image_name"),
            where,
            CLIENT,
            split,
            question=norm_text(rec["question"], where, "question"),
            answer=norm_answer(rec["answer"], where),
            question_type=str(qtype).strip().lower() if qtype else None,
        )
