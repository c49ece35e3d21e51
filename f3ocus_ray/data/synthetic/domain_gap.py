"""Task 1's stand-in: 5 source clients with a domain gap (the paper's SLAKE, VQA-RAD and
VQA-Med 2019/2020/2021).

Each source draws from its own few modalities of the MedVQA-FL renderers, then applies its
own acquisition style to the image (gamma, contrast, blur, noise, colour cast) and its own
phrasing to the question, as real sources differ in scanners and annotators. The answer is
unchanged: the same finding must be recognised through each source's style.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..format import DataError, Sample
from .draw import box_blur
from .images import render
from .plan import local_window, question_type_schedule, split_mask
from .questions import MODALITY_SPECS, make_question, sample_attributes


@dataclass(frozen=True)
class SourceStyle:
    name: str
    modalities: tuple[str, ...]
    gamma: float  # intensity curve
    contrast: float  # around mid-grey
    blur: int  # box-blur radius in pixels (at 64 px; scaled with the image)
    noise: float  # std of additive Gaussian noise, in [0, 1] intensity units
    tint: tuple[float, float, float]  # per-channel gain
    phrasing: str  # a format with {q}: the question as this source's annotators ask it


DOMAIN_GAP_SOURCES: tuple[SourceStyle, ...] = (
    SourceStyle("slake", ("chest_xray", "abdominal_ct"), 1.0, 1.0, 0, 0.02, (1.0, 1.0, 1.0), "{q}"),
    SourceStyle(
        "vqa_rad",
        ("chest_xray", "abdominal_ct", "ultrasound"),
        0.7,
        1.3,
        0,
        0.05,
        (1.0, 1.0, 1.0),
        "radiology question: {q}",
    ),
    SourceStyle(
        "vqa_med_2019",
        ("abdominal_ct", "ultrasound", "fundus"),
        1.4,
        0.8,
        1,
        0.03,
        (1.05, 1.0, 0.9),
        "q: {q}",
    ),
    SourceStyle(
        "vqa_med_2020",
        ("dermatoscope", "colon_pathology", "fundus"),
        1.0,
        1.1,
        1,
        0.08,
        (0.9, 1.0, 1.1),
        "in this image, {q}",
    ),
    SourceStyle(
        "vqa_med_2021",
        ("chest_xray", "dermatoscope", "blood_microscope"),
        0.85,
        0.9,
        2,
        0.04,
        (1.1, 0.95, 0.95),
        "please answer: {q}",
    ),
)


def apply_style(image: np.ndarray, style: SourceStyle, rng: np.random.Generator) -> np.ndarray:
    """The source's acquisition style on an RGB uint8 image."""
    x = image.astype(np.float32) / 255.0
    x = x**style.gamma
    x = (x - 0.5) * style.contrast + 0.5
    radius = round(style.blur * image.shape[0] / 64)
    x = box_blur(x, radius) if radius else x
    x = x * np.asarray(style.tint, dtype=np.float32)
    x = x + rng.normal(0.0, style.noise, x.shape).astype(np.float32)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def generate_domain_gap(
    *,
    seed: int = 0,
    samples_per_client: int = 150,
    image_size: int = 64,
    window: range | None = None,
) -> Iterator[Sample]:
    """Yield the 5 sources' triplets, source by source (80/20 split per source; ``window``:
    only the samples at these positions of the sequence)."""
    if samples_per_client < 5:
        raise DataError(f"samples_per_client must be >= 5, got {samples_per_client}")
    for si, style in enumerate(DOMAIN_GAP_SOURCES):
        n = samples_per_client
        mine = local_window(window, si * n, n)
        if not mine:
            continue
        plan = np.random.default_rng([seed, 100 + si, 0])
        types = question_type_schedule(n, plan)
        is_test = split_mask(n, plan)
        for i in mine:
            rng = np.random.default_rng([seed, 100 + si, 1, i])
            modality = style.modalities[int(rng.integers(len(style.modalities)))]
            spec = MODALITY_SPECS[modality]
            attrs = sample_attributes(spec, types[i], rng)
            question, answer = make_question(spec, types[i], attrs, rng)
            image = apply_style(render(modality, attrs, rng, image_size), style, rng)
            split = "test" if is_test[i] else "train"
            yield Sample(
                image,
                f"{style.name}:{i}",
                style.name,
                split,
                style.phrasing.format(q=question),
                answer,
                question_type=types[i],
            )
