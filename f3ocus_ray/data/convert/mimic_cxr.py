"""MIMIC-CXR-JPG (Johnson et al. 2019): ``mimic-cxr-2.0.0-chexpert.csv`` (``subject_id``,
``study_id`` and the 14 CheXpert labeler columns), ``mimic-cxr-2.0.0-split.csv``
(``dicom_id``, ``study_id``, ``subject_id``, ``split``) and the images at
``files/p<first 2 digits>/p<subject_id>/s<study_id>/<dicom_id>.jpg`` (``.csv.gz`` is read too).

Labels: the CheXpert labeler's 14 classes (13 findings + ``No Finding``), named as in the CSV.
A label is 1.0 (positive), 0.0 (negative), -1.0 (uncertain) or blank (not mentioned).
Uncertain labels follow ``--uncertain``: ``positive`` (the CheXpert paper's "U-Ones", the
default: an uncertain mention is counted as present), ``negative`` ("U-Zeros") or ``ignore``
("U-Ignore"; the on-disk format has no per-label mask, so a study with any uncertain label is
left out). Images of studies the labeler did not label are left out; both counts go to
``meta.json``.

The official split is kept (``validate`` follows ``--val-split``). Clients: patients are dealt
to ``--clients`` clients (default 10, the paper's Task 5) by a Dirichlet (``--alpha``)
label-shift partition over each patient's rarest label, seeded by ``--seed``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..format import DataError, Sample
from .common import (
    ConvertOptions,
    dirichlet_clients,
    find_file,
    map_split,
    primary_labels,
    read_csv,
)

TASK = "multilabel"
DEFAULT_CLIENTS = 10
CHEXPERT = "mimic-cxr-2.0.0-chexpert.csv"
SPLIT = "mimic-cxr-2.0.0-split.csv"
LABELS = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Enlarged Cardiomediastinum",
    "Fracture",
    "Lung Lesion",
    "Lung Opacity",
    "No Finding",
    "Pleural Effusion",
    "Pleural Other",
    "Pneumonia",
    "Pneumothorax",
    "Support Devices",
)
_VALUES = {"1.0": 1, "1": 1, "0.0": 0, "0": 0, "-1.0": -1, "-1": -1, "": 0}


def study_labels(row: dict[str, str], rule: str, where: str) -> tuple[str, ...] | None:
    """The positive labels of one CheXpert row under the uncertainty rule (None: dropped)."""
    out = []
    for name in LABELS:
        value = _VALUES.get((row[name] or "").strip())
        if value is None:
            raise DataError(f"{where}: {name} must be 1.0, 0.0, -1.0 or blank, got {row[name]!r}")
        if value == -1 and rule == "ignore":
            return None
        if value == 1 or value == -1 and rule == "positive":
            out.append(name)
    return tuple(out)


def read(src: Path, opts: ConvertOptions, stats: dict | None = None) -> Iterator[Sample]:
    chexpert_path = find_file(src, [CHEXPERT, CHEXPERT + ".gz"], "MIMIC-CXR CheXpert labels")
    split_path = find_file(src, [SPLIT, SPLIT + ".gz"], "MIMIC-CXR split CSV")
    files = split_path.parent / "files"
    if not files.is_dir():
        raise DataError(f"{files}: image folder not found (next to {split_path.name})")
    labels: dict[str, tuple[str, ...] | None] = {}
    for n, row in enumerate(read_csv(chexpert_path, ["subject_id", "study_id", *LABELS]), start=2):
        labels[row["study_id"].strip()] = study_labels(row, opts.uncertain, f"{chexpert_path}:{n}")
    rows = []
    unlabelled = uncertain = 0
    cols = ["dicom_id", "study_id", "subject_id", "split"]
    for n, row in enumerate(read_csv(split_path, cols), start=2):
        where = f"{split_path}:{n}"
        split = map_split(row["split"], opts, where)
        study = row["study_id"].strip()
        if study not in labels:
            unlabelled += 1
            continue
        if labels[study] is None:
            uncertain += 1
            continue
        if split is not None:
            rows.append((where, row["subject_id"].strip(), study, row["dicom_id"].strip(), split))
    if not rows:
        raise DataError(f"{split_path}: no labelled image left to convert")
    subjects = list(dict.fromkeys(r[1] for r in rows))
    union: dict[str, set[str]] = {s: set() for s in subjects}
    for _, subject, study, _, _ in rows:
        union[subject].update(labels[study] or ())
    n_clients = opts.clients or DEFAULT_CLIENTS
    keys = primary_labels([sorted(union[s]) for s in subjects])
    owner = dict(
        zip(subjects, dirichlet_clients(keys, n_clients, opts.alpha, opts.seed), strict=True)
    )
    if stats is not None:
        stats.update(
            unlabelled_images=unlabelled, uncertain_images_dropped=uncertain, clients=n_clients
        )
    width = len(str(n_clients - 1))
    for c in range(n_clients):
        for where, subject, study, dicom, split in rows:
            if owner[subject] != c:
                continue
            if not (subject.isdigit() and study.isdigit()):
                raise DataError(f"{where}: subject_id and study_id must be numbers")
            path = files / f"p{subject[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom}.jpg"
            yield Sample(path, where, f"client_{c:0{width}d}", split, labels=labels[study])
