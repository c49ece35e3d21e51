"""Deterministic synthetic MedVQA-FL: nine modality clients of image-question-answer triplets.

Client sizes are proportional to the paper's counts (``scale``), with a floor
(``min_per_client``). Sample ``i`` of client ``c`` is drawn from its own random stream
``(seed, c, i)`` and each client is split 80/20 by a seeded permutation, so the data set is
a pure function of its arguments.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .format import DataError, DatasetWriter
from .images import render
from .questions import (
    MODALITY_SPECS,
    QUESTION_TYPES,
    TYPE_PROPORTIONS,
    make_question,
    sample_attributes,
)

__all__ = [
    "MEDVQA_FL_CLIENTS",
    "TEST_FRACTION",
    "ClientInfo",
    "VQASample",
    "client_sizes",
    "generate_vqa",
    "question_type_schedule",
    "synthesize",
    "split_mask",
]

TEST_FRACTION = 0.2


@dataclass(frozen=True)
class ClientInfo:
    """One MedVQA-FL client: its id, its name in the paper and its paper triplet count."""

    name: str
    title: str
    paper_count: int


MEDVQA_FL_CLIENTS: tuple[ClientInfo, ...] = (
    ClientInfo("chest_xray", "Chest X-ray", 117_976),
    ClientInfo("oct", "OCT", 109_309),
    ClientInfo("colon_pathology", "Colon pathology", 107_180),
    ClientInfo("dermatoscope", "Dermatoscope", 10_015),
    ClientInfo("fundus", "Fundus", 1_600),
    ClientInfo("ultrasound", "Ultrasound", 780),
    ClientInfo("blood_microscope", "Blood microscope", 17_092),
    ClientInfo("kidney_cortex", "Kidney cortex microscope", 236_386),
    ClientInfo("abdominal_ct", "Abdominal CT", 107_624),
)

# Task 6's VQA clients (with multi-label chest X-ray classification clients beside them)
MIXED_VQA_CLIENTS = ("chest_xray", "colon_pathology", "dermatoscope")


@dataclass(frozen=True)
class VQASample:
    """One generated triplet with its client, split and question type."""

    client: str
    index: int
    split: str
    image: np.ndarray
    question: str
    answer: str
    question_type: str


def _check_seed(seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")


def client_sizes(scale: float = 0.002, min_per_client: int = 40) -> dict[str, int]:
    """Samples per client: ``max(min_per_client, round(scale * paper_count))``."""
    if not (scale >= 0 and math.isfinite(scale)):
        raise DataError(f"scale must be a finite number >= 0, got {scale!r}")
    if min_per_client < 0:
        raise DataError(f"min_per_client must be >= 0, got {min_per_client!r}")
    sizes = {
        c.name: max(int(min_per_client), round(scale * c.paper_count)) for c in MEDVQA_FL_CLIENTS
    }
    if sum(sizes.values()) == 0:
        raise DataError("scale and min_per_client give an empty data set")
    return sizes


def split_mask(
    n: int, rng: np.random.Generator, test_fraction: float = TEST_FRACTION
) -> np.ndarray:
    """Boolean mask of the ``round(test_fraction * n)`` test samples, chosen by permutation."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: round(test_fraction * n)]] = True
    return mask


def question_type_schedule(n: int, rng: np.random.Generator) -> list[str]:
    """Question types of n samples in the paper's proportions (largest remainder), shuffled."""
    quotas = {t: TYPE_PROPORTIONS[t] * n for t in QUESTION_TYPES}
    counts = {t: math.floor(q) for t, q in quotas.items()}
    by_remainder = sorted(
        QUESTION_TYPES, key=lambda t: (-(quotas[t] - counts[t]), QUESTION_TYPES.index(t))
    )
    for t in by_remainder[: n - sum(counts.values())]:
        counts[t] += 1
    types = [t for t in QUESTION_TYPES for _ in range(counts[t])]
    return [types[i] for i in rng.permutation(n)]


def generate_vqa(
    *,
    seed: int = 0,
    scale: float = 0.002,
    min_per_client: int = 40,
    image_size: int = 64,
    clients: Sequence[str] | None = None,
) -> Iterator[VQASample]:
    """Yield the synthetic MedVQA-FL triplets, client by client in the paper's order.

    ``clients`` restricts generation to a subset (same samples as in the full set).
    """
    _check_seed(seed)
    if image_size < 8:
        raise DataError(f"image_size must be >= 8, got {image_size}")
    sizes = client_sizes(scale, min_per_client)
    known = [c.name for c in MEDVQA_FL_CLIENTS]
    for name in clients or ():
        if name not in known:
            raise DataError(f"unknown client {name!r}; known: {', '.join(known)}")
    for ci, info in enumerate(MEDVQA_FL_CLIENTS):
        if clients is not None and info.name not in clients:
            continue
        n = sizes[info.name]
        spec = MODALITY_SPECS[info.name]
        plan = np.random.default_rng([seed, ci, 0])
        types = question_type_schedule(n, plan)
        is_test = split_mask(n, plan)
        for i in range(n):
            rng = np.random.default_rng([seed, ci, 1, i])
            attrs = sample_attributes(spec, types[i], rng)
            question, answer = make_question(spec, types[i], attrs, rng)
            image = render(info.name, attrs, rng, image_size)
            split = "test" if is_test[i] else "train"
            yield VQASample(info.name, i, split, image, question, answer, types[i])


def synthesize(
    out_dir: str | Path,
    *,
    task: str = "vqa",
    seed: int = 0,
    scale: float = 0.002,
    min_per_client: int = 40,
    image_size: int = 64,
    n_clients: int = 4,
    alpha: float = 0.5,
    samples_per_client: int = 250,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic data set in the on-disk format and return its folder.

    ``task="vqa"``: MedVQA-FL (uses ``scale`` and ``min_per_client``).
    ``task="multilabel"``: chest X-ray multi-label classification with Dirichlet(``alpha``)
    label shift over ``n_clients`` clients of ``samples_per_client`` images each.
    ``task="domain_gap"``: 5 VQA source clients with their own image style and phrasing
    (Task 1's stand-in), ``samples_per_client`` each.
    ``task="mixed"``: Task 6's stand-in, 3 MedVQA-FL clients (:data:`MIXED_VQA_CLIENTS`, sized
    by ``scale`` and ``min_per_client``) and ``n_clients`` multi-label chest X-ray clients
    (``cls_<i>``, Dirichlet(``alpha``), ``samples_per_client`` each).
    Refuses a non-empty ``out_dir`` unless ``overwrite``; the folder appears atomically.
    """
    from .domain_gap import generate_domain_gap
    from .multilabel import MultilabelSample, generate_multilabel

    _check_seed(seed)
    if task == "vqa":
        params = {"scale": scale, "min_per_client": min_per_client}
        samples = generate_vqa(
            seed=seed, scale=scale, min_per_client=min_per_client, image_size=image_size
        )
    elif task == "domain_gap":
        params = {"samples_per_client": samples_per_client}
        samples = generate_domain_gap(
            seed=seed, samples_per_client=samples_per_client, image_size=image_size
        )
    elif task in ("multilabel", "mixed"):
        params = {"n_clients": n_clients, "alpha": alpha, "samples_per_client": samples_per_client}
        samples = generate_multilabel(
            seed=seed,
            n_clients=n_clients,
            alpha=alpha,
            samples_per_client=samples_per_client,
            image_size=image_size,
        )
        if task == "mixed":
            params.update(scale=scale, min_per_client=min_per_client)
            vqa = generate_vqa(
                seed=seed,
                scale=scale,
                min_per_client=min_per_client,
                image_size=image_size,
                clients=MIXED_VQA_CLIENTS,
            )
            renamed = (replace(s, client=s.client.replace("client_", "cls_")) for s in samples)
            samples = itertools.chain(vqa, renamed)
    else:
        raise DataError(
            f"unknown task {task!r} (expected 'vqa', 'domain_gap', 'multilabel' or 'mixed')"
        )
    with DatasetWriter(out_dir, overwrite=overwrite) as writer:
        for s in samples:
            if not isinstance(s, MultilabelSample):
                writer.add_vqa(
                    s.image,
                    client=s.client,
                    split=s.split,
                    question=s.question,
                    answer=s.answer,
                    question_type=s.question_type,
                )
            else:
                writer.add_multilabel(s.image, client=s.client, split=s.split, labels=s.labels)
        writer.meta = {
            "generator": "f3ocus_ray.data.synthesize",
            "task": task,
            "seed": seed,
            "image_size": image_size,
            **params,
        }
    return writer.path
