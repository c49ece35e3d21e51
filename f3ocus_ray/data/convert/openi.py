"""Open-I (Indiana University chest X-rays), in the layout of its common Kaggle release:
``indiana_reports.csv`` (``uid``, ``MeSH``, ...), ``indiana_projections.csv`` (``uid``,
``filename``, ``projection``) and the PNGs in ``images/images_normalized/``.

Labels: the project's 15 classes (:data:`f3ocus_ray.data.synthetic.multilabel.FINDINGS`,
the 14 ChestX-ray14 findings + ``No finding``), read from each report's MeSH major terms
(``Cardiomegaly/borderline;Pulmonary Atelectasis/base/left``): a term's heading is matched
against :data:`HEADINGS` (plus ``Pleural thickening`` for a pleura heading qualified as
thickened, or the reverse); ``normal`` is ``No finding``. A report with none of the 15 (only
other findings: granuloma, scoliosis, ...) is left out and counted in ``meta.json``.

Open-I has no official split or sites: reports (a patient's frontal and lateral views stay
together) are dealt to ``--clients`` clients (default 4, the paper's Task 4) by a Dirichlet
(``--alpha``) label-shift partition over each report's rarest label, then each client's
reports are split train/test (``--test-fraction``, default 0.2), all seeded by ``--seed``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..format import DataError, Sample
from ..synthetic.multilabel import FINDINGS, NO_FINDING
from .common import (
    ConvertOptions,
    dirichlet_clients,
    find_file,
    primary_labels,
    read_csv,
    split_units,
)

TASK = "multilabel"
DEFAULT_CLIENTS = 4
REPORTS = "indiana_reports.csv"
PROJECTIONS = "indiana_projections.csv"
HEADINGS = {
    "normal": NO_FINDING,
    "atelectasis": "Atelectasis",
    "pulmonary atelectasis": "Atelectasis",
    "cardiomegaly": "Cardiomegaly",
    "consolidation": "Consolidation",
    "edema": "Edema",
    "pulmonary edema": "Edema",
    "effusion": "Effusion",
    "pleural effusion": "Effusion",
    "emphysema": "Emphysema",
    "pulmonary emphysema": "Emphysema",
    "fibrosis": "Fibrosis",
    "pulmonary fibrosis": "Fibrosis",
    "hernia": "Hernia",
    "hernia, hiatal": "Hernia",
    "infiltrate": "Infiltration",
    "infiltration": "Infiltration",
    "mass": "Mass",
    "nodule": "Nodule",
    "pulmonary nodule": "Nodule",
    "pneumonia": "Pneumonia",
    "pneumothorax": "Pneumothorax",
}
assert set(HEADINGS.values()) | {"Pleural thickening"} == set(FINDINGS)


def mesh_labels(mesh: str) -> tuple[str, ...]:
    """The FINDINGS named by a report's MeSH terms (in FINDINGS order)."""
    found = set()
    for term in mesh.split(";"):
        parts = [p.strip().lower() for p in term.split("/")]
        head, quals = parts[0], parts[1:]
        if head in HEADINGS:
            found.add(HEADINGS[head])
        elif (head == "thickening" and any(q.startswith("pleura") for q in quals)) or (
            head == "pleura" and any(q.startswith("thicken") for q in quals)
        ):
            found.add("Pleural thickening")
    if len(found) > 1:
        found.discard(NO_FINDING)
    return tuple(f for f in FINDINGS if f in found)


def _image_dir(base: Path, first: str) -> Path:
    for d in (base / "images" / "images_normalized", base / "images_normalized", base / "images"):
        if (d / first).is_file():
            return d
    raise DataError(
        f"{base}: image {first!r} not found in images/images_normalized/, "
        "images_normalized/ or images/"
    )


def read(src: Path, opts: ConvertOptions, stats: dict | None = None) -> Iterator[Sample]:
    reports_path = find_file(src, [REPORTS], "Open-I reports CSV")
    proj_path = find_file(src, [PROJECTIONS], "Open-I projections CSV")
    labels: dict[str, tuple[str, ...]] = {}
    unmapped = 0
    for n, row in enumerate(read_csv(reports_path, ["uid", "MeSH"]), start=2):
        uid = row["uid"].strip()
        if not uid:
            raise DataError(f"{reports_path}:{n}: empty uid")
        found = mesh_labels(row["MeSH"] or "")
        if found:
            labels[uid] = found
        else:
            unmapped += 1
    views: dict[str, list[tuple[str, str]]] = {}
    for n, row in enumerate(read_csv(proj_path, ["uid", "filename"]), start=2):
        uid, name = row["uid"].strip(), row["filename"].strip()
        if not name:
            raise DataError(f"{proj_path}:{n}: empty filename")
        if uid in labels:
            views.setdefault(uid, []).append((f"{proj_path}:{n}", name))
    uids = [u for u in labels if u in views]
    if not uids:
        raise DataError(f"{src}: no report with one of the 15 findings has an image")
    images = _image_dir(proj_path.parent, views[uids[0]][0][1])
    n_clients = opts.clients or DEFAULT_CLIENTS
    owner = dirichlet_clients(
        primary_labels([labels[u] for u in uids]), n_clients, opts.alpha, opts.seed
    )
    width = len(str(n_clients - 1))
    if stats is not None:
        stats.update(reports_without_findings=unmapped, clients=n_clients)
    for c in range(n_clients):
        mine = [u for u, o in zip(uids, owner, strict=True) if o == c]
        for uid, split in zip(
            mine, split_units(len(mine), opts.test_fraction, opts.seed + c), strict=True
        ):
            for where, name in views[uid]:
                yield Sample(
                    images / name, where, f"client_{c:0{width}d}", split, labels=labels[uid]
                )
