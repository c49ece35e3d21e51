"""Procedural images of the nine MedVQA-FL modalities.

Each renderer draws the attributes of :mod:`f3ocus_ray.data.synthetic.questions` (finding, severity,
side, tissue, ...) with large, high-contrast cues, on top of modality-typical statistics
(gray X-ray with two lung fields, layered OCT bands, H&E pathology colours, ...), so clients
differ as real modalities do and every answer can be read off the image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .draw import (
    Canvas,
    blob,
    box_blur,
    curve,
    disc,
    ellipse,
    gauss,
    irregular,
    paint,
    scatter_points,
    smooth_noise,
    stamp,
    to_uint8,
)

__all__ = ["RENDERERS", "render"]

Attrs = dict[str, str]


def _side_x(side: str, left: float, right: float, rng: np.random.Generator, jit=0.03) -> float:
    return (left if side == "left" else right) + float(rng.uniform(-jit, jit))


def _finish(img: np.ndarray, rng: np.random.Generator, noise: float = 0.02) -> np.ndarray:
    img = img * np.float32(rng.uniform(0.93, 1.07))
    img = img + rng.normal(0.0, noise, size=img.shape).astype(np.float32)
    return to_uint8(img)


def _points_in(mask: np.ndarray, cv: Canvas, rng, n: int, min_dist: float):
    """Up to n random points (roughly min_dist apart) where the mask is at least half on."""
    out = []
    for y, x in scatter_points(rng, 1 << 30, min_dist, 0.0, 1.0):
        if mask[min(int(y * cv.size), cv.size - 1), min(int(x * cv.size), cv.size - 1)] > 0.5:
            out.append((y, x))
    return out[:n]


# --- chest X-ray --------------------------------------------------------------------------


def chest_xray(a: Attrs, rng: np.random.Generator, cv: Canvas) -> np.ndarray:
    img = cv.gray(0.05)
    body = ellipse(cv, 0.55, 0.5, 0.52, 0.47)
    paint(img, body, 0.55)
    img += body * (smooth_noise(cv, rng, 4) - 0.5) * 0.1
    lungs = [ellipse(cv, 0.5, 0.29, 0.3, 0.15), ellipse(cv, 0.5, 0.71, 0.3, 0.15)]
    both = np.maximum(*lungs)
    paint(img, both, 0.16)
    if a["tissue"] == "heterogeneous":
        ph = rng.uniform(0, 6.3, size=2)
        grid = np.maximum(
            np.cos(2 * np.pi * 9 * cv.y + ph[0]), np.cos(2 * np.pi * 9 * cv.x + ph[1])
        )
        img += both * np.clip((grid - 0.5) / 0.5, 0, 1) * 0.32
    else:
        img += both * (smooth_noise(cv, rng, 8) - 0.5) * 0.05
    paint(img, ellipse(cv, 0.5, 0.5, 0.46, 0.045), 0.72)  # spine and mediastinum
    paint(img, ellipse(cv, 0.64, 0.55, 0.12, 0.12), 0.62)  # heart
    finding = a["finding"]
    if finding != "normal":
        severe = a["severity"] == "severe"
        right = a["side"] == "right"
        cx = _side_x(a["side"], 0.27, 0.73, rng, 0.02)
        cy = (0.36 if a["zone"] == "upper" else 0.64) + float(rng.uniform(-0.03, 0.03))
        if finding == "nodule":
            stamp(img, cv, cy, cx, 0.095 if severe else 0.055, 0.88)
        elif finding == "pneumonia":
            cloud = blob(cv, cy, cx, 0.11 if severe else 0.07, rng, parts=6)
            img += cloud * (0.45 + 0.25 * smooth_noise(cv, rng, 10))
        else:  # effusion: fluid filling the lung base up to a meniscus
            lung = lungs[1 if right else 0]
            level = (0.5 if severe else 0.66) - 0.07 * ((cv.x - cx) / 0.15) ** 2
            fluid = lung * np.clip((cv.y - level) / cv.px, 0, 1)
            paint(img, fluid, 0.78)
    return _finish(img, rng)


# --- OCT ----------------------------------------------------------------------------------

_OCT_BANDS = (  # (depth below the inner surface, reflectivity)
    (0.05, 0.9),
    (0.14, 0.45),
    (0.18, 0.2),
    (0.24, 0.55),
    (0.28, 0.25),
    (0.34, 0.95),
)
_OCT_DEPTH = _OCT_BANDS[-1][0]


def oct_scan(a: Attrs, rng: np.random.Generator, cv: Canvas) -> np.ndarray:
    x = cv.x
    refl = 1.0 if a["tissue"] == "hyperreflective" else 0.45
    top = 0.24 + 0.015 * np.sin(2 * np.pi * x * rng.uniform(0.5, 1.5) + rng.uniform(0, 6.3))
    nerve = a["anatomy"] == "optic disc"
    pit_w = 0.09 if nerve else 0.07
    top = top + (0.2 if nerve else 0.08) * np.exp(-(((x - 0.5) / pit_w) ** 2))
    thick = np.ones_like(x)
    finding = a["finding"]
    severe = a["severity"] == "severe"
    cx = _side_x(a["side"], 0.27, 0.73, rng)
    if finding == "dme":
        thick = thick + (0.6 if severe else 0.35) * np.exp(-(((x - cx) / 0.12) ** 2))
        top = top - (thick - 1) * _OCT_DEPTH * 0.6
    elif finding == "cnv":
        top = top - (0.12 if severe else 0.07) * np.exp(-(((x - cx) / 0.1) ** 2))
    depth = (cv.y - top) / thick
    img = cv.gray(0.04)
    prev = 0.0
    for end, val in _OCT_BANDS:
        img[(depth >= prev) & (depth < end)] = val * refl
        prev = end
    below = depth >= prev
    img[below] = 0.3 * refl * np.exp(-(depth[below] - prev) * 8)
    if nerve:  # the nerve head interrupts the deep layers
        img[(np.abs(x - 0.5) < 0.06) & (depth > 0.05)] = 0.06
    bottom = top + _OCT_DEPTH * thick
    col = (int(cx * cv.size), slice(None))
    if finding == "cnv":
        r = 0.1 if severe else 0.06
        by = float(bottom[0, col[0]]) - r * 0.6
        paint(img, irregular(cv, by, cx, r, rng, 0.3), 0.97)
    elif finding == "dme":
        r = 0.055 if severe else 0.035
        my = float(top[0, col[0]] + bottom[0, col[0]]) / 2
        for k in (-1, 0, 1):
            paint(
                img, ellipse(cv, my + rng.uniform(-0.01, 0.01), cx + k * r * 1.9, r * 0.9, r), 0.02
            )
    elif finding == "drusen":
        h = 0.07 if severe else 0.045
        for k in (-1, 0, 1):
            ox = cx + k * 0.085
            dome = np.clip(h - ((x - ox) / 0.045) ** 2 * h, 0, None)
            rpe = bottom - (_OCT_DEPTH - _OCT_BANDS[-2][0]) * thick
            paint(img, ((cv.y < rpe) & (cv.y > rpe - dome)).astype(np.float32), 0.97)
    img = img * (0.7 + 0.6 * rng.random(img.shape).astype(np.float32))  # speckle
    return _finish(img, rng, 0.02)


# --- colon pathology (H&E) ----------------------------------------------------------------

_PINK = (0.93, 0.62, 0.76)
_DPINK = (0.82, 0.42, 0.6)
_PURPLE = (0.4, 0.22, 0.6)
_DPURPLE = (0.24, 0.1, 0.4)
_WHITE = (0.97, 0.95, 0.97)


def colon_pathology(a: Attrs, rng: np.random.Generator, cv: Canvas) -> np.ndarray:
    tissue = a["tissue"]
    if tissue == "adipose":
        img = cv.rgb(_WHITE)
        seeds = np.array(scatter_points(rng, 16, 0.16, -0.05, 1.05))
        d = np.sqrt((cv.y[..., None] - seeds[:, 0]) ** 2 + (cv.x[..., None] - seeds[:, 1]) ** 2)
        d.sort(axis=-1)
        paint(img, np.clip(1.5 - (d[..., 1] - d[..., 0]) / (0.7 * cv.px), 0, 1), _DPINK)
    elif tissue == "mucosa":
        img = cv.rgb(_PINK)
        for gy, gx in scatter_points(rng, 6, 0.3, 0.1, 0.9):
            r = rng.uniform(0.07, 0.09)
            stamp(img, cv, gy, gx, r + 0.03, (0.9, 0.7, 0.82))
            stamp(img, cv, gy, gx, r, (0.99, 0.93, 0.97))
            for t in np.linspace(0, 2 * np.pi, 11)[:-1] + rng.uniform(0, 1):
                stamp(
                    img, cv, gy + (r + 0.02) * np.sin(t), gx + (r + 0.02) * np.cos(t), 0.02, _PURPLE
                )
    else:  # stroma: wavy pink fibres with elongated nuclei
        img = cv.rgb(_PINK)
        th = rng.uniform(0, np.pi)
        u = cv.x * np.cos(th) + cv.y * np.sin(th)
        v = -cv.x * np.sin(th) + cv.y * np.cos(th)
        fib = np.sin(2 * np.pi * 10 * u + 1.2 * np.sin(2 * np.pi * 2 * v))
        paint(img, np.clip(fib * 2 - 0.5, 0, 1), _DPINK)
        for ny, nx in scatter_points(rng, 9, 0.15):
            paint(img, ellipse(cv, ny, nx, 0.013, 0.04, -th), _PURPLE)
    finding = a["finding"]
    if finding != "normal":
        severe = a["severity"] == "severe"
        cx = _side_x(a["side"], 0.3, 0.7, rng)
        cy = 0.5 + float(rng.uniform(-0.05, 0.05))
        mask = irregular(cv, cy, cx, 0.27 if severe else 0.17, rng, 0.25)
        if finding == "adenocarcinoma":
            paint(img, mask, (0.6, 0.4, 0.66))
            for ny, nx in _points_in(mask, cv, rng, 60, 0.045):
                stamp(img, cv, ny, nx, rng.uniform(0.022, 0.03), _DPURPLE, mask)
        else:  # necrosis: pale debris
            paint(img, mask, (0.8, 0.72, 0.76))
            for ny, nx in _points_in(mask, cv, rng, 40, 0.03):
                stamp(img, cv, ny, nx, 0.011, (0.3, 0.2, 0.35), mask)
    img *= 1 + rng.normal(0, 0.03, size=3).astype(np.float32)  # stain variation
    return _finish(img, rng)


# --- dermatoscope -------------------------------------------------------------------------


def dermatoscope(a: Attrs, rng: np.random.Generator, cv: Canvas) -> np.ndarray:
    skin = np.array((0.86, 0.66, 0.55)) + rng.uniform(-0.05, 0.05, size=3)
    img = cv.rgb(skin)
    img += ((smooth_noise(cv, rng, 5) - 0.5) * 0.08)[..., None]
    severe = a["severity"] == "severe"
    r = 0.22 if severe else 0.13
    cx = _side_x(a["side"], 0.36, 0.64, rng)
    cy = 0.5 + float(rng.uniform(-0.05, 0.05))
    finding = a["finding"]
    if finding == "nevus":
        m = ellipse(cv, cy, cx, r * rng.uniform(0.9, 1.05), r)
        paint(img, box_blur(m, 1), (0.55, 0.35, 0.22))
        paint(img, gauss(cv, cy, cx, r * 0.4) * m * 0.5, (0.42, 0.25, 0.15))
    elif finding == "melanoma":
        m = irregular(cv, cy, cx, r, rng, 0.5)
        paint(img, m, (0.2, 0.12, 0.1))
        paint(
            img,
            irregular(cv, cy + r * 0.2, cx - r * 0.2, r * 0.45, rng, 0.4) * m,
            (0.38, 0.42, 0.55),
        )
    else:  # keratosis: waxy tan, square-ish, with milia-like white dots
        d = (
            np.maximum(np.abs(cv.y - cy), np.abs(cv.x - cx)) * 0.6
            + np.sqrt((cv.y - cy) ** 2 + (cv.x - cx) ** 2) * 0.4
        )
        m = np.clip(0.5 - (d - r * 0.95) / cv.px, 0, 1)
        paint(img, m, (0.76, 0.58, 0.36))
        for ny, nx in _points_in(m, cv, rng, 9, 0.05):
            stamp(img, cv, ny, nx, 0.018, (0.98, 0.96, 0.9))
    if a["tissue"] == "hairy":
        for _ in range(8):
            p0, p2 = rng.uniform(0, 1, size=2), rng.uniform(0, 1, size=2)
            p1 = (p0 + p2) / 2 + rng.normal(0, 0.15, size=2)
            t = np.linspace(0, 1, 8)[:, None]
            pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
            paint(img, curve(cv, pts, 0.02), (0.12, 0.08, 0.06))
    paint(img, 1 - disc(cv, 0.5, 0.5, 0.56), (0.03, 0.03, 0.03))  # the dermatoscope's field
    return _finish(img, rng)


# --- fundus -------------------------------------------------------------------------------


def fundus(a: Attrs, rng: np.random.Generator, cv: Canvas) -> np.ndarray:
    rr = np.sqrt((cv.y - 0.5) ** 2 + (cv.x - 0.5) ** 2) / 0.47
    img = cv.rgb((0.85, 0.38, 0.14)) * (1 - 0.4 * rr**2)[..., None]
    if a["tissue"] == "heterogeneous":  # tessellated: choroidal pattern shows through
        tes = np.clip((smooth_noise(cv, rng, 12) - 0.45) * 6, 0, 1)
        paint(img, tes * 0.8, (0.5, 0.17, 0.08))
    else:
        img *= (1 + (smooth_noise(cv, rng, 4) - 0.5) * 0.08)[..., None]
    dx = (0.72 if a["anatomy"] == "right" else 0.28) + float(rng.uniform(-0.02, 0.02))
    dy = 0.5 + float(rng.uniform(-0.03, 0.03))
    sgn = 1.0 if dx > 0.5 else -1.0
    img *= (1 - 0.35 * gauss(cv, 0.5, 0.5 - sgn * 0.12, 0.06))[..., None]  # macula
    t = np.linspace(0, 1, 9)[:, None]
    for up in (-1.0, 1.0):
        temporal = np.hstack([dy + up * 0.3 * np.sin(np.pi * 0.75 * t), dx - sgn * 0.6 * t])
        nasal = np.hstack([dy + up * 0.25 * t, dx + sgn * 0.18 * t])
        for pts in (temporal, nasal):
            paint(img, curve(cv, pts, 0.022), (0.55, 0.1, 0.06))
    stamp(img, cv, dy, dx, 0.085, (0.98, 0.85, 0.55))
    stamp(img, cv, dy, dx, 0.068 if a["finding"] == "glaucoma" else 0.028, (1.0, 0.98, 0.9))
    if a["finding"] == "diabetic retinopathy":
        n = {"mild": 5, "moderate": 12, "severe": 24}[a["severity"]]
        lo, hi = (0.17, 0.43) if a["position"] == "upper" else (0.57, 0.83)
        for ly, lx in scatter_points(rng, n, 0.045, lo, hi, avoid=((dy, dx, 0.12),)):
            lx = 0.15 + 0.7 * lx
            if rng.random() < 0.7:
                stamp(img, cv, ly, lx, rng.uniform(0.017, 0.028), (0.42, 0.03, 0.03))
            else:
                stamp(img, cv, ly, lx, rng.uniform(0.013, 0.02), (1.0, 0.93, 0.45))
    paint(img, 1 - disc(cv, 0.5, 0.5, 0.47), (0.02, 0.02, 0.02))
    return _finish(img, rng)


# --- ultrasound ---------------------------------------------------------------------------


def ultrasound(a: Attrs, rng: np.random.Generator, cv: Canvas) -> np.ndarray:
    ry, rx = cv.y + 0.05, cv.x - 0.5
    rad, ang = np.sqrt(ry**2 + rx**2), np.arctan2(rx, ry)
    fan = ((np.abs(ang) < 0.62) & (rad > 0.12) & (rad < 1.02)).astype(np.float32)
    speckle = box_blur(rng.rayleigh(1.0, size=cv.y.shape).astype(np.float32), 0) / 1.25
    tissue = 0.42 * speckle
    if a["tissue"] == "heterogeneous":
        tissue *= 0.2 + 1.6 * smooth_noise(cv, rng, 5)
    else:
        tissue *= 0.95 + 0.1 * smooth_noise(cv, rng, 6)
    tissue += 0.45 * ((rad > 0.13) & (rad < 0.17))  # skin line
    finding = a["finding"]
    if finding != "normal":
        severe = a["severity"] == "severe"
        cx = _side_x(a["side"], 0.37, 0.63, rng)
        cy = 0.55 + float(rng.uniform(-0.04, 0.04))
        if finding == "benign":  # oval, smooth, wider than tall, posterior enhancement
            m = ellipse(cv, cy, cx, 0.065 if severe else 0.04, 0.12 if severe else 0.07)
            col = (np.abs(cv.x - cx) < (0.1 if severe else 0.06)) & (cv.y > cy)
            tissue = tissue * (1 + 0.5 * col)
        else:  # irregular, taller than wide, posterior shadow
            r = 0.1 if severe else 0.06
            m = irregular(cv, cy, cx, r, rng, 0.6)
            col = (np.abs(cv.x - cx) < r * 0.7) & (cv.y > cy)
            tissue = tissue * (1 - 0.7 * col)
        tissue = tissue * (1 - m) + m * 0.05 * speckle
    return _finish(tissue * fan, rng, 0.01)


# --- blood smear --------------------------------------------------------------------------


def _wbc(img, kind: str, cy: float, cx: float, rng, cv: Canvas) -> None:
    nuc = (0.34, 0.13, 0.52)
    if kind == "lymphocyte":
        stamp(img, cv, cy, cx, 0.1, (0.62, 0.7, 0.93))
        stamp(img, cv, cy, cx, 0.082, nuc)
        return
    cyto = (0.86, 0.76, 0.88) if kind == "neutrophil" else (0.98, 0.64, 0.44)
    stamp(img, cv, cy, cx, 0.14, cyto)
    if kind == "eosinophil":
        for gy, gx in scatter_points(rng, 60, 0.03, cy - 0.13, cy + 0.13):
            gx += cx - cy
            if (gy - cy) ** 2 + (gx - cx) ** 2 < 0.12**2:
                stamp(img, cv, gy, gx, 0.011, (0.9, 0.38, 0.22))
        lobes = [(-0.045, 0.0), (0.045, 0.0)]
    else:
        lobes = [(-0.05, -0.03), (0.0, 0.045), (0.05, -0.03)]
    th = rng.uniform(0, 2 * np.pi)
    c, s = np.cos(th), np.sin(th)
    for oy, ox in lobes:
        stamp(img, cv, cy + c * oy - s * ox, cx + s * oy + c * ox, 0.042, nuc)


def blood_microscope(a: Attrs, rng: np.random.Generator, cv: Canvas) -> np.ndarray:
    img = cv.rgb((0.94, 0.9, 0.88))
    wx = _side_x(a["side"], 0.3, 0.7, rng)
    wy = 0.5 + float(rng.uniform(-0.08, 0.08))
    finding = a["finding"]
    frac = 0.0 if finding == "normal" else (0.8 if a["severity"] == "severe" else 0.35)
    for ry, rx in scatter_points(rng, 24, 0.115, 0.04, 0.96, avoid=((wy, wx, 0.2),)):
        hit = rng.random() < frac
        if hit and finding == "sickle cell":
            paint(img, ellipse(cv, ry, rx, 0.024, 0.08, rng.uniform(0, np.pi)), (0.72, 0.25, 0.28))
            continue
        stamp(img, cv, ry, rx, 0.052, (0.86, 0.47, 0.47))
        stamp(img, cv, ry, rx, 0.022, (0.93, 0.72, 0.7))
        if hit:  # malaria ring forms
            stamp(img, cv, ry + 0.02, rx - 0.015, 0.019, (0.3, 0.08, 0.42))
    _wbc(img, a["tissue"], wy, wx, rng, cv)
    return _finish(img, rng)


# --- kidney cortex (grayscale microscopy) -------------------------------------------------


def kidney_cortex(a: Attrs, rng: np.random.Generator, cv: Canvas) -> np.ndarray:
    img = cv.gray(0.3) + (smooth_noise(cv, rng, 8) - 0.5) * 0.12
    tissue = a["tissue"]
    if tissue == "glomerulus":
        for gy, gx in [tuple(rng.uniform(0.38, 0.62, size=2))]:  # one large glomerulus
            stamp(img, cv, gy, gx, 0.225, 0.78)
            stamp(img, cv, gy, gx, 0.205, 0.07)
            stamp(img, cv, gy, gx, 0.17, 0.5)
            for py, px in scatter_points(rng, 60, 0.045, gy - 0.16, gy + 0.16):
                px += gx - gy
                if (py - gy) ** 2 + (px - gx) ** 2 < 0.15**2:
                    stamp(img, cv, py, px, 0.018, 0.93)
    else:
        proximal = tissue == "proximal tubule"
        for ty, tx in scatter_points(rng, 10, 0.23):
            r = 0.1 * rng.uniform(0.9, 1.1)
            paint(
                img, ellipse(cv, ty, tx, r * rng.uniform(0.85, 1.0), r), 0.72 if proximal else 0.8
            )
            if proximal:
                paint(img, box_blur(disc(cv, ty, tx, 0.035), 1), 0.45)
            else:
                stamp(img, cv, ty, tx, 0.07, 0.08)
            for t in np.linspace(0, 2 * np.pi, 8)[:-1] + rng.uniform(0, 1):
                stamp(img, cv, ty + 0.08 * np.sin(t), tx + 0.08 * np.cos(t), 0.012, 0.35)
    finding = a["finding"]
    if finding != "normal":
        severe = a["severity"] == "severe"
        cx = _side_x(a["side"], 0.3, 0.7, rng)
        cy = 0.5 + float(rng.uniform(-0.05, 0.05))
        mask = irregular(cv, cy, cx, 0.27 if severe else 0.17, rng, 0.25)
        if finding == "fibrosis":
            th = rng.uniform(0, np.pi)
            u = cv.x * np.cos(th) + cv.y * np.sin(th)
            stripes = 0.15 + 0.8 * (np.sin(2 * np.pi * 14 * u) > 0.2)
            img = img * (1 - mask) + mask * stripes
        else:  # inflammation: dense dark infiltrate
            paint(img, mask, 0.62)
            for ny, nx in _points_in(mask, cv, rng, 60, 0.035):
                stamp(img, cv, ny, nx, 0.014, 0.04, mask)
    return _finish(img, rng)


# --- abdominal CT -------------------------------------------------------------------------

_CT_ORGANS = {"liver": (0.4, 0.3), "spleen": (0.5, 0.76)}


def abdominal_ct(a: Attrs, rng: np.random.Generator, cv: Canvas) -> np.ndarray:
    contrast = a["contrast"] == "yes"
    img = cv.gray(0.0)
    paint(img, ellipse(cv, 0.5, 0.5, 0.36, 0.46), 0.3)
    paint(img, ellipse(cv, 0.5, 0.5, 0.32, 0.42), 0.5)
    for _ in range(4):  # bowel loops with gas
        by, bx = rng.uniform(0.25, 0.45), rng.uniform(0.42, 0.68)
        stamp(img, cv, by, bx, rng.uniform(0.04, 0.06), 0.47)
        stamp(img, cv, by, bx, 0.018, 0.05)
    liver = ellipse(cv, 0.4, 0.3, 0.17, 0.2)
    paint(img, liver, 0.7 if contrast else 0.6)
    if a["tissue"] == "heterogeneous":
        img += liver * (smooth_noise(cv, rng, 9) - 0.5) * 0.5
    paint(img, ellipse(cv, 0.5, 0.76, 0.12, 0.08), 0.66 if contrast else 0.58)
    kidneys = [(0.62, 0.32), (0.62, 0.68)]
    for ky, kx in kidneys:
        paint(img, ellipse(cv, ky, kx, 0.09, 0.065), 0.95 if contrast else 0.58)
        if contrast:
            paint(img, ellipse(cv, ky, kx, 0.05, 0.035), 0.72)
    stamp(img, cv, 0.62, 0.5, 0.032, 0.98 if contrast else 0.55)  # aorta
    stamp(img, cv, 0.75, 0.5, 0.065, 0.95)  # vertebral body
    stamp(img, cv, 0.83, 0.5, 0.025, 0.2)
    finding = a["finding"]
    if finding != "normal":
        severe = a["severity"] == "severe"
        organ = a["organ"]
        if organ == "kidney":
            ly, lx = kidneys[int(rng.integers(2))]
            r = 0.06 if severe else 0.04
        else:
            ly, lx = _CT_ORGANS[organ]
            r = (0.1 if severe else 0.06) * (1.0 if organ == "liver" else 0.72)
        ly += float(rng.uniform(-0.015, 0.015))
        lx += float(rng.uniform(-0.015, 0.015))
        if finding == "cyst":  # dark, round, sharp
            stamp(img, cv, ly, lx, r, 0.08)
        else:  # bright irregular mass with a dark rim
            paint(img, irregular(cv, ly, lx, r * 1.3, rng, 0.3), 0.15)
            paint(img, irregular(cv, ly, lx, r, rng, 0.3), 0.97)
    return _finish(img, rng, 0.015)


RENDERERS: dict[str, Callable[[Attrs, np.random.Generator, Canvas], np.ndarray]] = {
    "chest_xray": chest_xray,
    "oct": oct_scan,
    "colon_pathology": colon_pathology,
    "dermatoscope": dermatoscope,
    "fundus": fundus,
    "ultrasound": ultrasound,
    "blood_microscope": blood_microscope,
    "kidney_cortex": kidney_cortex,
    "abdominal_ct": abdominal_ct,
}


def render(modality: str, attrs: Attrs, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """Draw one (size, size, 3) uint8 image of a modality with the given attributes."""
    return RENDERERS[modality](attrs, rng, Canvas(size))
