"""Synthetic multi-label chest X-ray classification with Dirichlet label shift over clients.

Fifteen CheXpert-like findings, each drawn at its own place with its own shape (a wedge
for atelectasis, a big heart for cardiomegaly, ...), so the drawn findings are the labels.
Each client's label distribution is drawn from Dirichlet(alpha): small ``alpha`` gives
clients dominated by a few findings, large ``alpha`` near-identical clients.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

from ..format import DataError, Sample
from .draw import Canvas, blob, disc, ellipse, gauss, paint, smooth_noise, to_uint8
from .plan import local_window, split_mask

__all__ = [
    "FINDINGS",
    "NO_FINDING",
    "client_label_distributions",
    "generate_multilabel",
    "label_shift",
    "render_chest",
]

NO_FINDING = "No finding"
FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Effusion",
    "Emphysema",
    "Fibrosis",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pleural thickening",
    "Pneumonia",
    "Pneumothorax",
    NO_FINDING,
)
SECOND_FINDING_PROB = 0.3


def client_label_distributions(n_clients: int, alpha: float, seed: int) -> np.ndarray:
    """(n_clients, 15) label distributions, one Dirichlet(alpha) draw per client."""
    if n_clients < 1:
        raise DataError(f"n_clients must be >= 1, got {n_clients}")
    if not (alpha > 0 and math.isfinite(alpha)):
        raise DataError(f"alpha must be a finite number > 0, got {alpha!r}")
    rng = np.random.default_rng([seed, 7919])
    p = rng.dirichlet(np.full(len(FINDINGS), float(alpha)), size=n_clients)
    p = np.maximum(p, 1e-12)  # tiny alpha can underflow to exact zeros
    return p / p.sum(axis=1, keepdims=True)


def _draw_labels(p: np.ndarray, rng: np.random.Generator) -> tuple[str, ...]:
    k = len(FINDINGS)
    first = int(rng.choice(k, p=p))
    if FINDINGS[first] == NO_FINDING:
        return (NO_FINDING,)
    labels = {first}
    if rng.random() < SECOND_FINDING_PROB:
        q = p.copy()
        q[first] = 0.0
        q[k - 1] = 0.0
        q = q / q.sum() if q.sum() > 1e-9 else np.r_[np.ones(k - 1), 0.0] / (k - 1)
        labels.add(int(rng.choice(k, p=q)))
    return tuple(FINDINGS[i] for i in sorted(labels))


def render_chest(findings: Iterable[str], rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A frontal chest X-ray (RGB uint8) showing exactly the given findings."""
    f = set(findings)
    unknown = f - set(FINDINGS)
    if unknown:
        raise DataError(f"unknown findings {sorted(unknown)}")
    cv = Canvas(size)
    img = cv.gray(0.05)
    body = ellipse(cv, 0.55, 0.5, 0.52, 0.47)
    paint(img, body, 0.55)
    img += body * (smooth_noise(cv, rng, 4) - 0.5) * 0.1
    big = "Emphysema" in f
    ry, rx = (0.34, 0.17) if big else (0.3, 0.15)
    lungs = [ellipse(cv, 0.5, 0.29, ry, rx), ellipse(cv, 0.5, 0.71, ry, rx)]
    both = np.maximum(*lungs)
    paint(img, both, 0.04 if big else 0.17)
    img += both * (smooth_noise(cv, rng, 8) - 0.5) * 0.05
    if "Fibrosis" in f:  # reticular lines in the lower lungs
        ph = rng.uniform(0, 6.3, size=2)
        grid = np.maximum(
            np.cos(2 * np.pi * 10 * cv.y + ph[0]), np.cos(2 * np.pi * 10 * cv.x + ph[1])
        )
        img += both * (cv.y > 0.5) * np.clip((grid - 0.5) / 0.5, 0, 1) * 0.35
    if "Pneumothorax" in f:  # lateral right lung: black, no markings, with a pleural line
        edge = 0.79 + float(rng.uniform(-0.02, 0.02))
        air = lungs[1] * (cv.x > edge) * (cv.y < 0.62)
        paint(img, air, 0.0)
        paint(img, lungs[1] * (np.abs(cv.x - edge) < cv.px) * (cv.y < 0.62), 0.85)
    if "Pleural thickening" in f:  # bright bands along both lateral lung borders
        for cx, sgn in ((0.29, -1), (0.71, 1)):
            band = ellipse(cv, 0.5, cx + sgn * 0.01, ry + 0.02, rx + 0.03) - ellipse(
                cv, 0.5, cx, ry, rx - 0.01
            )
            paint(img, np.clip(band, 0, 1) * (sgn * (cv.x - cx) > 0), 0.85)
    paint(img, ellipse(cv, 0.5, 0.5, 0.46, 0.045), 0.72)  # spine and mediastinum
    heart = (0.17, 0.2) if "Cardiomegaly" in f else (0.11, 0.11)
    paint(img, ellipse(cv, 0.65, 0.55, *heart), 0.62)
    if "Hernia" in f:  # gas bubble with a bright rim behind the heart
        paint(img, disc(cv, 0.74, 0.5, 0.075), 0.9)
        paint(img, disc(cv, 0.74, 0.5, 0.055), 0.03)
    if "Edema" in f:  # bilateral perihilar haze ("bat wing")
        img += 0.4 * (gauss(cv, 0.47, 0.37, 0.07) + gauss(cv, 0.47, 0.63, 0.07))
    if "Atelectasis" in f:  # collapsed left upper lobe: dense, sharp oblique lower border
        wedge = lungs[0] * np.clip((0.4 - (cv.y + 0.3 * (cv.x - 0.29))) / cv.px, 0, 1)
        paint(img, wedge, 0.72)
    if "Mass" in f:  # large sharp disc, left mid lung
        paint(img, disc(cv, 0.5 + rng.uniform(-0.02, 0.02), 0.28, 0.08), 0.9)
    if "Effusion" in f:  # fluid with a meniscus, left base
        level = 0.66 - 0.07 * ((cv.x - 0.29) / 0.15) ** 2
        paint(img, lungs[0] * np.clip((cv.y - level) / cv.px, 0, 1), 0.78)
    if "Nodule" in f:  # several small discs, right upper lung
        for k in range(3):
            paint(
                img,
                disc(cv, 0.3 + 0.05 * (k % 2) + rng.uniform(-0.01, 0.01), 0.64 + 0.07 * k, 0.028),
                0.95,
            )
    if "Consolidation" in f:  # homogeneous dense patch, right mid lung
        paint(img, ellipse(cv, 0.5, 0.74, 0.07, 0.09), 0.8)
    if "Pneumonia" in f:  # fluffy mottled cloud, right lower lung
        cloud = blob(cv, 0.67, 0.72, 0.08, rng, parts=6)
        img += cloud * (0.5 + 0.3 * smooth_noise(cv, rng, 10))
    if "Infiltration" in f:  # small patchy opacities scattered over both lungs
        for _ in range(7):
            cy, cx = rng.uniform(0.3, 0.7), rng.choice([0.22, 0.36, 0.64, 0.78])
            img += both * 0.35 * gauss(cv, cy, cx + rng.uniform(-0.03, 0.03), 0.025)
    img = img * np.float32(rng.uniform(0.93, 1.07)) + rng.normal(0, 0.02, img.shape).astype(
        np.float32
    )
    return to_uint8(img)


def generate_multilabel(
    *,
    seed: int = 0,
    n_clients: int = 4,
    alpha: float = 0.5,
    samples_per_client: int = 250,
    image_size: int = 64,
    window: range | None = None,
) -> Iterator[Sample]:
    """Yield ``samples_per_client`` labelled chest X-rays per client, 80/20 split per client
    (``window``: only the samples at these positions of the sequence)."""
    if samples_per_client < 1:
        raise DataError(f"samples_per_client must be >= 1, got {samples_per_client}")
    dists = client_label_distributions(n_clients, alpha, seed)
    width = len(str(n_clients - 1))
    for ci in range(n_clients):
        mine = local_window(window, ci * samples_per_client, samples_per_client)
        if not mine:
            continue
        name = f"client_{ci:0{width}d}"
        is_test = split_mask(samples_per_client, np.random.default_rng([seed, 100_000 + ci, 0]))
        for i in mine:
            rng = np.random.default_rng([seed, 100_000 + ci, 1, i])
            labels = _draw_labels(dists[ci], rng)
            image = render_chest(labels, rng, image_size)
            split = "test" if is_test[i] else "train"
            yield Sample(image, f"{name}:{i}", name, split, labels=labels)


def label_shift(label_matrices: Iterable[np.ndarray]) -> float:
    """Heterogeneity of clients' label distributions: mean pairwise total-variation distance
    between their normalised label frequencies (0 = identical clients, 1 = disjoint labels)."""
    freqs = []
    for m in label_matrices:
        s = np.asarray(m, dtype=np.float64).sum(axis=0)
        freqs.append(s / s.sum() if s.sum() > 0 else s)
    if len(freqs) < 2:
        return 0.0
    d = [0.5 * np.abs(a - b).sum() for i, a in enumerate(freqs) for b in freqs[i + 1 :]]
    return float(np.mean(d))
