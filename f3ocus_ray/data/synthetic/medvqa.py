"""Deterministic synthetic MedVQA-FL: nine modality clients of image-question-answer triplets.

Client sizes are proportional to the paper's counts (``scale``), with a floor
(``min_per_client``). Sample ``i`` of client ``c`` is drawn from its own random stream
``(seed, c, i)`` and each client is split 80/20 by a seeded permutation, so the data set is
a pure function of its arguments.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..format import DataError, Sample
from .images import render
from .plan import check_seed, local_window, question_type_schedule, split_mask
from .questions import MODALITY_SPECS, make_question, sample_attributes

__all__ = [
    "MEDVQA_FL_CLIENTS",
    "MIXED_VQA_CLIENTS",
    "ClientInfo",
    "client_sizes",
    "generate_vqa",
]


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


def generate_vqa(
    *,
    seed: int = 0,
    scale: float = 0.002,
    min_per_client: int = 40,
    image_size: int = 64,
    clients: Sequence[str] | None = None,
    window: range | None = None,
) -> Iterator[Sample]:
    """Yield the synthetic MedVQA-FL triplets, client by client in the paper's order.

    ``clients`` restricts generation to a subset (same samples as in the full set);
    ``window``, to the samples at these positions of the (restricted) sequence.
    """
    check_seed(seed)
    if image_size < 8:
        raise DataError(f"image_size must be >= 8, got {image_size}")
    sizes = client_sizes(scale, min_per_client)
    known = [c.name for c in MEDVQA_FL_CLIENTS]
    for name in clients or ():
        if name not in known:
            raise DataError(f"unknown client {name!r}; known: {', '.join(known)}")
    offset = 0
    for ci, info in enumerate(MEDVQA_FL_CLIENTS):
        if clients is not None and info.name not in clients:
            continue
        n = sizes[info.name]
        mine, offset = local_window(window, offset, n), offset + n
        if not mine:
            continue
        spec = MODALITY_SPECS[info.name]
        plan = np.random.default_rng([seed, ci, 0])
        types = question_type_schedule(n, plan)
        is_test = split_mask(n, plan)
        for i in mine:
            rng = np.random.default_rng([seed, ci, 1, i])
            attrs = sample_attributes(spec, types[i], rng)
            question, answer = make_question(spec, types[i], attrs, rng)
            image = render(info.name, attrs, rng, image_size)
            split = "test" if is_test[i] else "train"
            yield Sample(
                image,
                f"{info.name}:{i}",
                info.name,
                split,
                question,
                answer,
                question_type=types[i],
            )
