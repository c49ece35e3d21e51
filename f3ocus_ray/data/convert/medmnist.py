"""The real MedVQA-FL: MedMNIST (v2, 2D) ``.npz`` files turned into VQA with the paper's
question templates.

``--src`` holds any of the 2D subsets as published (``pathmnist.npz``, ``chestmnist.npz``,
... or the MedMNIST+ sizes ``pathmnist_224.npz``), each with ``{train,val,test}_images`` and
``{train,val,test}_labels`` arrays; they are read with ``allow_pickle=False``.

Clients are the paper's nine modalities (the synthetic stand-in's names, whose paper counts
these subsets add up to): chestmnist + pneumoniamnist -> ``chest_xray``, octmnist -> ``oct``,
pathmnist -> ``colon_pathology``, dermamnist -> ``dermatoscope``, retinamnist -> ``fundus``,
breastmnist -> ``ultrasound``, bloodmnist -> ``blood_microscope``, tissuemnist ->
``kidney_cortex``, organ{a,c,s}mnist -> ``abdominal_ct``; ``--client-per-subset`` makes each
subset its own client instead.

Each image gets one question, as in the paper (707,962 triplets from as many images), of a
type drawn in the paper's proportions among the types its subset can answer: ``modality``
(the client's modality), ``anatomy`` (the organ, where the client shows one organ only) and
the subset's label question (the class name: a diagnosis, a tissue or cell type, a grade or,
for the organ subsets, the organ). Phrasings are the synthetic set's templates
(:mod:`f3ocus_ray.data.synthetic.questions`). ChestMNIST is multi-label: its answer is the
findings in label order, comma-separated, or ``normal``.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..format import DataError, Sample
from ..synthetic.questions import MODALITY_SPECS, TYPE_PROPORTIONS
from .common import ConvertOptions, files_under, map_split

TASK = "vqa"
_ORGANS = (
    "bladder",
    "femur-left",
    "femur-right",
    "heart",
    "kidney-left",
    "kidney-right",
    "liver",
    "lung-left",
    "lung-right",
    "pancreas",
    "spleen",
)


@dataclass(frozen=True)
class Subset:
    """A MedMNIST subset: its client, its label question (type, and the spec whose phrasing
    of that type it uses) and its class names (MedMNIST's ``INFO[...]['label']``)."""

    name: str
    client: str
    qtype: str
    phrasing: str
    labels: tuple[str, ...]
    multilabel: bool = False


SUBSETS: tuple[Subset, ...] = (
    Subset(
        "chestmnist",
        "chest_xray",
        "diagnosis",
        "chest_xray",
        (
            "atelectasis",
            "cardiomegaly",
            "effusion",
            "infiltration",
            "mass",
            "nodule",
            "pneumonia",
            "pneumothorax",
            "consolidation",
            "edema",
            "emphysema",
            "fibrosis",
            "pleural",
            "hernia",
        ),
        multilabel=True,
    ),
    Subset("pneumoniamnist", "chest_xray", "diagnosis", "chest_xray", ("normal", "pneumonia")),
    Subset(
        "octmnist",
        "oct",
        "diagnosis",
        "oct",
        ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"),
    ),
    Subset(
        "pathmnist",
        "colon_pathology",
        "tissue",
        "colon_pathology",
        (
            "adipose",
            "background",
            "debris",
            "lymphocytes",
            "mucus",
            "smooth muscle",
            "normal colon mucosa",
            "cancer-associated stroma",
            "colorectal adenocarcinoma epithelium",
        ),
    ),
    Subset(
        "dermamnist",
        "dermatoscope",
        "diagnosis",
        "dermatoscope",
        (
            "actinic keratoses and intraepithelial carcinoma",
            "basal cell carcinoma",
            "benign keratosis-like lesions",
            "dermatofibroma",
            "melanoma",
            "melanocytic nevi",
            "vascular lesions",
        ),
    ),
    Subset("retinamnist", "fundus", "grading", "fundus", ("0", "1", "2", "3", "4")),
    Subset("breastmnist", "ultrasound", "diagnosis", "ultrasound", ("malignant", "normal, benign")),
    Subset(
        "bloodmnist",
        "blood_microscope",
        "tissue",
        "blood_microscope",
        (
            "basophil",
            "eosinophil",
            "erythroblast",
            "immature granulocytes (myelocytes, metamyelocytes and promyelocytes)",
            "lymphocyte",
            "monocyte",
            "neutrophil",
            "platelet",
        ),
    ),
    Subset(
        "tissuemnist",
        "kidney_cortex",
        "tissue",
        "kidney_cortex",
        (
            "collecting duct, connecting tubule",
            "distal convoluted tubule",
            "glomerular endothelial cells",
            "interstitial endothelial cells",
            "leukocytes",
            "podocytes",
            "proximal tubule segments",
            "thick ascending limb",
        ),
    ),
    # the organ subsets' label is the organ: asked as "which organ is imaged?"
    Subset("organamnist", "abdominal_ct", "anatomy", "ultrasound", _ORGANS),
    Subset("organcmnist", "abdominal_ct", "anatomy", "ultrasound", _ORGANS),
    Subset("organsmnist", "abdominal_ct", "anatomy", "ultrasound", _ORGANS),
)
BY_NAME = {s.name: s for s in SUBSETS}
_FILE = re.compile(r"^([a-z]+mnist)(?:_(\d+))?\.npz$")


def _questions(sub: Subset) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """Question type -> (phrasings, fixed answer or None for the label's answer)."""
    spec = MODALITY_SPECS[sub.client]
    out: dict[str, tuple[tuple[str, ...], str | None]] = {
        "modality": (spec.asks["modality"].templates, spec.modality)
    }
    anatomy = spec.asks["anatomy"]
    organs = spec.attributes[anatomy.attribute]
    if sub.qtype != "anatomy" and len(organs) == 1 and not anatomy.needs_lesion:
        out["anatomy"] = (anatomy.templates, organs[0])
    out[sub.qtype] = (MODALITY_SPECS[sub.phrasing].asks[sub.qtype].templates, None)
    return out


def _answer(sub: Subset, label: np.ndarray, where: str) -> str:
    k = len(sub.labels)
    if sub.multilabel:
        if label.shape != (k,) or not np.isin(label, (0, 1)).all():
            raise DataError(f"{where}: expected {k} 0/1 labels, got {label.tolist()}")
        found = [sub.labels[j] for j in np.flatnonzero(label)]
        return ", ".join(found) if found else "normal"
    if label.size != 1 or not 0 <= int(label.reshape(-1)[0]) < k:
        raise DataError(f"{where}: expected one class index in [0, {k}), got {label.tolist()}")
    return sub.labels[int(label.reshape(-1)[0])]


def _find(src: Path) -> list[tuple[Subset, Path]]:
    if not src.is_dir():
        raise DataError(f"{src}: source folder not found")
    found: dict[str, Path] = {}
    for p in sorted([*files_under(src, "*.npz"), *files_under(src, "*/*.npz")]):
        m = _FILE.match(p.name.lower())
        if m is None or m.group(1) not in BY_NAME:
            raise DataError(
                f"{p}: not a 2D MedMNIST subset (expected one of: "
                f"{', '.join(s.name + '.npz' for s in SUBSETS)})"
            )
        if m.group(1) in found:
            raise DataError(f"{p}: subset {m.group(1)} given twice (also {found[m.group(1)]})")
        found[m.group(1)] = p
    if not found:
        raise DataError(f"{src}: no MedMNIST .npz files found (e.g. pathmnist.npz)")
    return [(s, found[s.name]) for s in SUBSETS if s.name in found]


def _arrays(npz, path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for key in (f"{split}_images", f"{split}_labels"):
        if key not in npz.files:
            raise DataError(f"{path}: missing array {key!r} (has {', '.join(npz.files)})")
        try:
            out.append(npz[key])
        except ValueError as e:  # object arrays need pickle: refused
            raise DataError(f"{path}: cannot read {key!r} without pickle: {e}") from None
    images, labels = out
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise DataError(
            f"{path}: {split}_images must be uint8 (n, H, W[, 3]), got {images.dtype} {images.shape}"
        )
    if len(labels) != len(images):
        raise DataError(f"{path}: {len(images)} {split} images but {len(labels)} labels")
    return images, labels


def read(src: Path, opts: ConvertOptions, stats: dict | None = None) -> Iterator[Sample]:
    for si, (sub, path) in enumerate(_find(src)):
        client = sub.name if opts.client_per_subset else sub.client
        asks = _questions(sub)
        types = list(asks)
        p = np.array([TYPE_PROPORTIONS[t] for t in types])
        try:
            npz = np.load(path, allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise DataError(f"{path}: cannot read .npz: {e}") from None
        with npz:
            for oi, official in enumerate(("train", "val", "test")):
                split = map_split(official, opts, str(path))
                if split is None:
                    continue
                images, labels = _arrays(npz, path, official)
                rng = np.random.default_rng([opts.seed, si, oi])
                kinds = rng.choice(len(types), size=len(images), p=p / p.sum())
                picks = rng.random(len(images))
                for i in range(len(images)):
                    where = f"{path}: {official}[{i}]"
                    qtype = types[kinds[i]]
                    templates, fixed = asks[qtype]
                    yield Sample(
                        images[i],
                        where,
                        client,
                        split,
                        question=templates[int(picks[i] * len(templates))],
                        answer=fixed if fixed is not None else _answer(sub, labels[i], where),
                        question_type=qtype,
                    )
