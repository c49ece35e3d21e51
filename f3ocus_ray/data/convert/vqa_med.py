"""VQA-Med 2019, 2020 and 2021 (ImageCLEF): pipe-separated text files and image folders.

The three releases share one text format but not their file names, so the reader finds its
files in ``--src`` (the unpacked training, validation and test archives, side by side):

- a text file's split is the first of ``test``, ``val``, ``train`` in its name, else in its
  nearest parent folder's name (``ImageClef-2019-VQA-Med-Training/All_QA_Pairs_train.txt``,
  ``VQAMed2019Test/VQAMed2019_Test_Questions_w_Ref_Answers.txt``, 2020's
  ``VQAnswering_2020_Val_QA_Pairs.txt``); README, image-id lists, VQG files and the 2019
  per-category copies (``QAPairsByCategory/``) are skipped;
- a line ``image_id|question|answer`` or ``image_id|category|question|answer`` is one record
  (the category is kept as question type); where a split only has ``image_id|question`` and
  ``image_id|answer`` files (names with ``question`` and ``answer``, the 2020/2021 test sets),
  they are joined on the image id;
- an answer with ``#``-separated alternatives (2019 test) keeps the first;
- ``image_id`` is the file name without ``.jpg``, looked up in the image folders of the same
  split (folders whose name or parent's name holds the split word), then anywhere in ``--src``.

VQA-Med 2021 ships no training set of its own (its training data is VQA-Med 2020's train and
validation sets): put those folders in ``--src`` too. One client per year, ``vqa_med_<year>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ..format import DataError, Sample
from .common import ConvertOptions, files_under, map_split, norm_answer, norm_text

TASK = "vqa"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SKIP = re.compile(r"readme|image_?ids|imageids|vqg|bycategory", re.IGNORECASE)
# a split word starts a name or a CamelCase/separated word ("Train_images", "VQAMed2019Test",
# "-ValidationSet"), so "EvaluationCode" holds no "val"
_SPLIT = re.compile(r"(?<![A-Za-z])(?i:test|val|train)|Test|Val|Train")


def _split_of(path: Path, src: Path) -> str | None:
    rel = path.relative_to(src)
    for part in reversed(rel.parts):
        m = _SPLIT.search(part)
        if m:
            return m.group(0).lower()
    return None


def _image_index(src: Path) -> tuple[dict[str, dict[str, Path]], dict[str, list[Path]]]:
    by_split: dict[str, dict[str, Path]] = {}
    anywhere: dict[str, list[Path]] = {}
    for p in files_under(src, "**/*"):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            split = _split_of(p.parent, src) if p.parent != src else None
            by_split.setdefault(split or "", {}).setdefault(p.stem, p)
            anywhere.setdefault(p.stem, []).append(p)
    return by_split, anywhere


def _lines(path: Path) -> Iterator[tuple[str, list[str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read: {e}") from None
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield f"{path}:{n}", [f.strip() for f in line.split("|")]


def _image_id(value: str, where: str) -> str:
    value = norm_text(value, where, "image id")
    stem, dot, ext = value.rpartition(".")
    return stem if dot and "." + ext.lower() in IMAGE_SUFFIXES else value


def _records(files: list[Path]) -> Iterator[tuple[str, str, str, str, str | None]]:
    """(where, image_id, question, answer, category) of one split's text files."""
    qa, questions, answers = [], [], []
    for path in files:
        name = path.name.lower()
        rows = list(_lines(path))
        if not rows:
            continue
        width = len(rows[0][1])
        if width >= 3:
            qa.append(rows)
        elif width == 2 and "answer" in name and "question" not in name:
            answers.append(rows)
        elif width == 2 and "question" in name:
            questions.append(rows)
        else:
            raise DataError(
                f"{rows[0][0]}: expected image_id|question|answer "
                f"(or a *Questions*/*Answers* file of image_id|text), got {width} field(s)"
            )
    if qa:
        for rows in qa:
            for where, f in rows:
                if len(f) not in (3, 4):
                    raise DataError(f"{where}: expected 3 or 4 '|'-separated fields, got {len(f)}")
                cat = f[1] if len(f) == 4 else None
                yield where, _image_id(f[0], where), f[-2], f[-1], cat
        return
    if answers and not questions:
        raise DataError(f"{answers[0][0][0]}: reference answers without a *Questions* file")
    if questions and not answers:
        raise DataError(
            f"{questions[0][0][0]}: questions without reference answers (no *Answers* file)"
        )
    ref: dict[str, str] = {}
    for rows in answers:
        for where, f in rows:
            if len(f) != 2:
                raise DataError(f"{where}: expected image_id|answer, got {len(f)} field(s)")
            ref[_image_id(f[0], where)] = f[1]
    for rows in questions:
        for where, f in rows:
            if len(f) != 2:
                raise DataError(f"{where}: expected image_id|question, got {len(f)} field(s)")
            iid = _image_id(f[0], where)
            if iid not in ref:
                raise DataError(f"{where}: no reference answer for image {iid!r}")
            yield where, iid, f[1], ref[iid], None


def reader(year: int):
    client = f"vqa_med_{year}"

    def read(src: Path, opts: ConvertOptions, stats: dict | None = None) -> Iterator[Sample]:
        if not src.is_dir():
            raise DataError(f"{src}: source folder not found")
        files: dict[str, list[Path]] = {}
        for p in files_under(src, "**/*.txt"):
            if _SKIP.search(str(p.relative_to(src))):
                continue
            split = _split_of(p, src)
            if split is not None:
                files.setdefault(split, []).append(p)
        if not files:
            raise DataError(
                f"{src}: no VQA-Med {year} text files found (expected e.g. "
                "*train*.txt / *val*.txt / *test*.txt with image_id|question|answer lines)"
            )
        by_split, anywhere = _image_index(src)
        for official in ("train", "val", "test"):
            split = map_split(official, opts, str(src))
            if split is None or official not in files:
                continue
            local = by_split.get(official, {})
            for where, iid, q, a, cat in _records(files[official]):
                path = local.get(iid)
                if path is None:
                    paths = anywhere.get(iid, [])
                    if len(paths) != 1:
                        what = "not found" if not paths else f"ambiguous ({len(paths)} files)"
                        raise DataError(f"{where}: image {iid!r} {what} under {src}")
                    path = paths[0]
                yield Sample(
                    path,
                    where,
                    client,
                    split,
                    question=norm_text(q, where, "question"),
                    answer=norm_answer(a.split("#")[0], where),
                    question_type=cat.lower() if cat else None,
                )

    read.__doc__ = f"Read VQA-Med {year} from its unpacked release folders."
    return read
