"""Numpy drawing primitives for the synthetic images.

All shapes work on a float canvas in normalised coordinates: ``y`` runs down and ``x`` runs
right, both in [0, 1), so the same drawing code serves any image size. Masks are soft
(anti-aliased over about one pixel) floats in [0, 1].
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = [
    "Canvas",
    "blob",
    "box_blur",
    "curve",
    "disc",
    "ellipse",
    "gauss",
    "irregular",
    "paint",
    "scatter_points",
    "smooth_noise",
    "stamp",
    "to_uint8",
]


@lru_cache(maxsize=16)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    y, x = np.meshgrid(c, c, indexing="ij")
    y.setflags(write=False)
    x.setflags(write=False)
    return y, x


class Canvas:
    """Coordinate grids of one image size, with the pixel size for soft edges."""

    def __init__(self, size: int):
        self.size = size
        self.y, self.x = _grid(size)
        self.px = 1.0 / size

    def gray(self, value: float = 0.0) -> np.ndarray:
        return np.full((self.size, self.size), value, dtype=np.float32)

    def rgb(self, colour) -> np.ndarray:
        img = np.empty((self.size, self.size, 3), dtype=np.float32)
        img[:] = np.asarray(colour, dtype=np.float32)
        return img


def _soft(signed_dist: np.ndarray, px: float) -> np.ndarray:
    """1 inside (negative distance), 0 outside, linear over one pixel."""
    return np.clip(0.5 - signed_dist / px, 0.0, 1.0)


def ellipse(cv: Canvas, cy, cx, ry, rx, angle: float = 0.0) -> np.ndarray:
    """Soft mask of an ellipse (angle in radians, counter-clockwise)."""
    dy, dx = cv.y - cy, cv.x - cx
    if angle:
        c, s = np.cos(angle), np.sin(angle)
        dx, dy = c * dx - s * dy, s * dx + c * dy
    r = np.sqrt((dy / ry) ** 2 + (dx / rx) ** 2)
    return _soft((r - 1.0) * min(ry, rx), cv.px)


def disc(cv: Canvas, cy, cx, r) -> np.ndarray:
    """Soft mask of a disc."""
    d = np.sqrt((cv.y - cy) ** 2 + (cv.x - cx) ** 2)
    return _soft(d - r, cv.px)


def irregular(cv: Canvas, cy, cx, r, rng: np.random.Generator, roughness: float = 0.3):
    """Soft mask of a blob whose radius varies with angle (irregular border)."""
    theta = np.arctan2(cv.y - cy, cv.x - cx)
    rad = np.ones_like(theta)
    for k, amp in ((2, 0.5), (3, 0.6), (5, 0.4), (7, 0.3)):
        rad += roughness * amp * rng.uniform(0.3, 1.0) * np.sin(k * theta + rng.uniform(0, 6.3))
    d = np.sqrt((cv.y - cy) ** 2 + (cv.x - cx) ** 2)
    return _soft(d - r * rad, cv.px)


def gauss(cv: Canvas, cy, cx, sigma) -> np.ndarray:
    """Isotropic Gaussian bump with peak 1."""
    return np.exp(-((cv.y - cy) ** 2 + (cv.x - cx) ** 2) / (2.0 * sigma**2)).astype(np.float32)


def blob(cv: Canvas, cy, cx, r, rng: np.random.Generator, parts: int = 5) -> np.ndarray:
    """Fluffy cloud: a union of Gaussian bumps around a centre, peak about 1."""
    out = np.zeros_like(cv.y)
    for _ in range(parts):
        oy, ox = rng.normal(0.0, r * 0.45, size=2)
        out = np.maximum(out, gauss(cv, cy + oy, cx + ox, r * rng.uniform(0.45, 0.7)))
    return out


def _window(cv: Canvas, cy, cx, r) -> tuple[slice, slice] | None:
    """Pixel rows and columns that a disc of radius r (plus one pixel) can touch."""
    n = cv.size
    y0, y1 = max(int((cy - r) * n) - 1, 0), min(int((cy + r) * n) + 2, n)
    x0, x1 = max(int((cx - r) * n) - 1, 0), min(int((cx + r) * n) + 2, n)
    if y0 >= y1 or x0 >= x1:
        return None
    return slice(y0, y1), slice(x0, x1)


def stamp(img: np.ndarray, cv: Canvas, cy, cx, r, colour, clip: np.ndarray | None = None) -> None:
    """Paint a small soft disc in place, touching only its bounding window (fast).

    ``clip`` (a full-size mask) limits the disc, e.g. to inside a lesion.
    """
    win = _window(cv, cy, cx, r)
    if win is None:
        return
    m = _soft(np.sqrt((cv.y[win] - cy) ** 2 + (cv.x[win] - cx) ** 2) - r, cv.px)
    if clip is not None:
        m = m * clip[win]
    paint(img[win], m, colour)


def curve(cv: Canvas, points: np.ndarray, width: float) -> np.ndarray:
    """Soft mask of a polyline through (k, 2) points (y, x)."""
    pts = np.asarray(points, dtype=np.float32)
    out = np.zeros_like(cv.y)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    r = width / 2 + cv.px
    n = cv.size
    rows = slice(max(int((lo[0] - r) * n) - 1, 0), min(int((hi[0] + r) * n) + 2, n))
    cols = slice(max(int((lo[1] - r) * n) - 1, 0), min(int((hi[1] + r) * n) + 2, n))
    if rows.start >= rows.stop or cols.start >= cols.stop:
        return out
    a, ab = pts[:-1], pts[1:] - pts[:-1]
    py, px = cv.y[rows, cols].reshape(-1, 1), cv.x[rows, cols].reshape(-1, 1)
    t = ((py - a[:, 0]) * ab[:, 0] + (px - a[:, 1]) * ab[:, 1]) / np.maximum((ab**2).sum(1), 1e-12)
    t = np.clip(t, 0.0, 1.0)
    d2 = (py - a[:, 0] - t * ab[:, 0]) ** 2 + (px - a[:, 1] - t * ab[:, 1]) ** 2
    d = np.sqrt(d2.min(axis=1)).reshape(rows.stop - rows.start, cols.stop - cols.start)
    out[rows, cols] = _soft(d - width / 2, cv.px)
    return out


def smooth_noise(cv: Canvas, rng: np.random.Generator, cells: int) -> np.ndarray:
    """Value noise in [0, 1]: a cells x cells random grid, bilinearly upsampled."""
    g = rng.random((cells + 1, cells + 1)).astype(np.float32)
    fy, fx = cv.y * cells, cv.x * cells
    iy, ix = np.floor(fy).astype(int), np.floor(fx).astype(int)
    ty, tx = fy - iy, fx - ix
    ty, tx = ty * ty * (3 - 2 * ty), tx * tx * (3 - 2 * tx)
    a = g[iy, ix] * (1 - tx) + g[iy, ix + 1] * tx
    b = g[iy + 1, ix] * (1 - tx) + g[iy + 1, ix + 1] * tx
    return a * (1 - ty) + b * ty


def box_blur(img: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur over the first two axes (edge-padded)."""
    if radius <= 0:
        return img
    k = 2 * radius + 1
    out = img.astype(np.float32)
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius + 1, radius)
        c = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis)
        n = out.shape[axis]
        out = (np.take(c, range(k, k + n), axis=axis) - np.take(c, range(n), axis=axis)) / k
    return out


def scatter_points(
    rng: np.random.Generator, n: int, min_dist: float, lo=0.05, hi=0.95, avoid=()
) -> list[tuple[float, float]]:
    """Up to n random points (y, x) in [lo, hi)^2, roughly min_dist apart.

    Drawn from a jittered grid of spacing ``min_dist`` (vectorised, so fast); ``avoid``
    holds (y, x, r) discs that points must stay out of.
    """
    k = max(1, int(np.ceil((hi - lo) / min_dist)))
    g = (np.arange(k) + 0.5) * min_dist + lo
    pts = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    pts = pts + rng.uniform(-0.25, 0.25, size=pts.shape) * min_dist
    keep = (pts < hi).all(axis=1)
    for ay, ax, ar in avoid:
        keep &= (pts[:, 0] - ay) ** 2 + (pts[:, 1] - ax) ** 2 >= ar**2
    pts = pts[keep]
    pts = pts[rng.permutation(len(pts))[:n]]
    return [(float(y), float(x)) for y, x in pts]


def paint(img: np.ndarray, mask: np.ndarray, colour) -> np.ndarray:
    """Alpha-blend a colour (scalar for gray, triple for RGB) into img where mask > 0."""
    if img.ndim == 3:
        m = mask[..., None]
        img *= 1 - m
        img += m * np.asarray(colour, dtype=np.float32)
    else:
        img *= 1 - mask
        img += mask * np.float32(colour)
    return img


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] (gray or RGB) to an RGB uint8 array."""
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
