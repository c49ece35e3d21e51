"""The general-domain pretraining corpus: synthetic scenes of coloured shapes, counts, positions
and a number written on a sign, each with a caption and questions with one-word answers.

Its words (colours, toy shapes, places, number words) and its image style (flat RGB
backgrounds, stripes and checks, crisp saturated shapes) differ from the synthetic medical
sets' (grey scans, tissues, findings). Drawing reuses the soft masks of
:mod:`f3ocus_ray.data.synthetic.draw`. Deterministic: the same seed gives the same corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from f3ocus_ray.data.synthetic.draw import Canvas, disc, ellipse, paint, to_uint8

__all__ = ["COLOURS", "SHAPES", "Corpus", "answer_vocabulary", "generate_corpus"]

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.75, 0.2),
    "blue": (0.15, 0.25, 0.95),
    "yellow": (0.95, 0.9, 0.1),
    "purple": (0.6, 0.15, 0.75),
    "orange": (1.0, 0.55, 0.0),
    "white": (1.0, 1.0, 1.0),
    "black": (0.02, 0.02, 0.02),
}
SHAPES = ("circle", "square", "triangle", "ring", "diamond")
PLACES = ("left", "right", "top", "bottom", "middle")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
BACKDROPS = ("plain", "stripes", "checks", "fade")
MAX_OBJECTS = 4

# a 3 x 5 bitmap font for the digit on the sign
_FONT = {
    0: "111101101101111",
    1: "010110010010111",
    2: "111001111100111",
    3: "111001111001111",
    4: "101101111001001",
    5: "111100111001111",
    6: "111100111101111",
    7: "111001010010010",
    8: "111101111101111",
    9: "111101111001111",
}


@dataclass(frozen=True)
class Thing:
    shape: str
    colour: str
    cy: float
    cx: float
    size: float

    @property
    def place(self) -> str:
        """Where it is, by the larger offset from the centre (middle near the centre)."""
        dy, dx = self.cy - 0.5, self.cx - 0.5
        if max(abs(dy), abs(dx)) < 0.12:
            return "middle"
        if abs(dx) >= abs(dy):
            return "left" if dx < 0 else "right"
        return "top" if dy < 0 else "bottom"


@dataclass(frozen=True)
class Corpus:
    """images (n, s, s, 3) uint8; per image a caption and its (question, answer) pairs."""

    images: np.ndarray
    captions: list[str]
    qa: list[list[tuple[str, str]]]

    def texts(self) -> list[str]:
        """Every caption and question (the tokenizer's training text)."""
        return [*self.captions, *(q for pairs in self.qa for q, _ in pairs)]


def answer_vocabulary() -> list[str]:
    """Every answer a question can have, in a fixed order."""
    return sorted({*COLOURS, *SHAPES, *PLACES, *NUMBERS, "yes", "no"})


def _shape_mask(cv: Canvas, t: Thing) -> np.ndarray:
    if t.shape == "circle":
        return disc(cv, t.cy, t.cx, t.size)
    if t.shape == "ring":
        return np.clip(disc(cv, t.cy, t.cx, t.size) - disc(cv, t.cy, t.cx, t.size * 0.55), 0, 1)
    dy, dx = np.abs(cv.y - t.cy), np.abs(cv.x - t.cx)
    if t.shape == "square":
        d = np.maximum(dy, dx) - t.size * 0.85
    elif t.shape == "diamond":
        d = (dy + dx) / 1.2 - t.size
    else:  # triangle, apex up: below the two slanted edges and above the base
        rel = cv.y - (t.cy - t.size)
        d = np.maximum(dx - rel * 0.6, cv.y - (t.cy + t.size * 0.8))
        d = np.maximum(d, -rel)
    return np.clip(0.5 - d / cv.px, 0.0, 1.0)


def _backdrop(cv: Canvas, rng: np.random.Generator) -> np.ndarray:
    kind = BACKDROPS[rng.integers(len(BACKDROPS))]
    a = rng.uniform(0.35, 0.8, size=3).astype(np.float32)
    b = np.clip(a + rng.uniform(-0.25, 0.25, size=3), 0, 1).astype(np.float32)
    img = cv.rgb(a)
    if kind == "stripes":
        period = rng.uniform(0.08, 0.2)
        on = (np.floor((cv.x + cv.y * rng.uniform(-1, 1)) / period) % 2).astype(np.float32)
        paint(img, on, b)
    elif kind == "checks":
        period = rng.uniform(0.1, 0.25)
        on = ((np.floor(cv.x / period) + np.floor(cv.y / period)) % 2).astype(np.float32)
        paint(img, on, b)
    elif kind == "fade":
        paint(img, cv.y.astype(np.float32), b)
    return img


def _sign(img: np.ndarray, cv: Canvas, digit: int, rng: np.random.Generator) -> None:
    """A white sign with a black digit in a corner (3 x 5 font, pixels of about 2/64)."""
    cell = max(1, round(cv.size * 0.035))
    h, w = 5 * cell + 2 * cell, 3 * cell + 2 * cell
    y0 = int(rng.integers(0, 2)) * (cv.size - h)
    x0 = int(rng.integers(0, 2)) * (cv.size - w)
    img[y0 : y0 + h, x0 : x0 + w] = 0.97
    bits = np.array([int(c) for c in _FONT[digit]], dtype=np.float32).reshape(5, 3)
    glyph = np.kron(bits, np.ones((cell, cell), dtype=np.float32))
    region = img[y0 + cell : y0 + cell + 5 * cell, x0 + cell : x0 + cell + 3 * cell]
    region[glyph > 0] = 0.05


def _things(rng: np.random.Generator) -> list[Thing]:
    n = int(rng.integers(1, MAX_OBJECTS + 1))
    out: list[Thing] = []
    for _ in range(50):  # rejection sampling: shapes do not overlap
        if len(out) == n:
            break
        size = float(rng.uniform(0.07, 0.13))
        cy, cx = rng.uniform(0.16, 0.84, size=2)
        if all(np.hypot(cy - t.cy, cx - t.cx) > size + t.size + 0.04 for t in out):
            shape = SHAPES[rng.integers(len(SHAPES))]
            colour = list(COLOURS)[rng.integers(len(COLOURS))]
            out.append(Thing(shape, colour, float(cy), float(cx), size))
    return out


def _plural(n: int, shape: str) -> str:
    return f"{NUMBERS[n]} {shape}{'' if n == 1 else 's'}"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _caption(things: list[Thing], digit: int | None) -> str:
    parts = [f"{_article(t.colour)} {t.colour} {t.shape} at the {t.place}" for t in things]
    text = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "")
    text += parts[-1]
    if digit is not None:
        text += f", sign {NUMBERS[digit]}"
    return text


def _questions(
    things: list[Thing], digit: int | None, rng: np.random.Generator
) -> list[tuple[str, str]]:
    t = things[rng.integers(len(things))]
    other_colour = list(COLOURS)[rng.integers(len(COLOURS))]
    other_shape = SHAPES[rng.integers(len(SHAPES))]
    colour_count = sum(u.colour == other_colour for u in things)
    pool = [
        (f"what colour is the {t.shape} at the {t.place}?", t.colour),
        (f"which toy shape is painted {t.colour}?", t.shape)
        if sum(u.colour == t.colour for u in things) == 1
        else (f"what shape sits at the {t.place}?", t.shape),
        (f"where is the {t.colour} {t.shape}?", t.place),
        ("how many toys are in the picture?", NUMBERS[len(things)]),
        (f"how many {other_colour} things can you count?", NUMBERS[colour_count]),
        (
            f"is there a {other_shape} in the scene?",
            "yes" if any(u.shape == other_shape for u in things) else "no",
        ),
    ]
    if digit is not None:
        pool.append(("what number does the sign say?", NUMBERS[digit]))
    else:
        pool.append(("is there a sign with a number?", "no"))
    picks = rng.choice(len(pool), size=3, replace=False)
    return [pool[i] for i in sorted(picks)]


def generate_corpus(n: int, image_size: int = 64, seed: int = 0) -> Corpus:
    """`n` scenes at `image_size` pixels, each with a caption and three question-answer pairs."""
    if n < 1:
        raise ValueError(f"the corpus needs at least one image, got n={n}")
    cv = Canvas(image_size)
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    captions: list[str] = []
    qa: list[list[tuple[str, str]]] = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])  # image i does not depend on n
        img = _backdrop(cv, rng)
        things = _things(rng)
        for t in things:
            # a soft shadow under each shape: depth cues the medical scans do not have
            paint(img, ellipse(cv, t.cy + 0.02, t.cx + 0.02, t.size, t.size) * 0.3, (0, 0, 0))
            paint(img, _shape_mask(cv, t), COLOURS[t.colour])
        digit = int(rng.integers(10)) if rng.random() < 0.5 else None
        if digit is not None:
            _sign(img, cv, digit, rng)
        images[i] = to_uint8(img)
        captions.append(_caption(things, digit))
        qa.append(_questions(things, digit, rng))
    return Corpus(images, captions, qa)
