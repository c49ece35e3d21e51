"""The parts every reader shares: options, samples, image decoding, splits, clients, writing.

A reader is a generator ``read(src, opts) -> Iterator[Sample]`` (the format's
:class:`~f3ocus_ray.data.format.Sample`); :func:`write_samples` decodes each sample's image (from
a file, encoded bytes or an array), resizes it and hands it to the atomic
:class:`~f3ocus_ray.data.format.DatasetWriter`.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from ..files import open_image, path_inside
from ..format import DataError, DatasetWriter, Sample

__all__ = [
    "UNCERTAIN_RULES",
    "VAL_SPLITS",
    "ConvertOptions",
    "dirichlet_clients",
    "files_under",
    "find_file",
    "iter_checked",
    "load_image",
    "map_split",
    "norm_answer",
    "norm_text",
    "primary_labels",
    "read_csv",
    "split_units",
    "write_samples",
]

VAL_SPLITS = ("train", "test", "drop")
UNCERTAIN_RULES = ("positive", "negative", "ignore")
_OFFICIAL = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validate": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}


@dataclass(frozen=True)
class ConvertOptions:
    """What a conversion may be told; each reader reads only the options it documents.

    ``image_size``: images larger than N x N are resized to N x N (0 keeps them as they are).
    ``val_split``: where an official validation split goes (the format has train and test).
    ``clients``, ``alpha``, ``seed``: Dirichlet label-shift partition of sets without sources
    (Open-I, MIMIC-CXR). ``uncertain``: CheXpert's -1 labels (MIMIC-CXR). ``client_per_subset``:
    MedMNIST subsets as clients instead of the paper's 9 modalities. ``test_fraction``: for sets
    without an official split (Open-I).
    """

    image_size: int = 384
    val_split: str = "train"
    seed: int = 0
    clients: int | None = None
    alpha: float = 0.5
    uncertain: str = "positive"
    client_per_subset: bool = False
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, int) or self.image_size < 0:
            raise DataError(f"image_size must be an integer >= 0, got {self.image_size!r}")
        if self.val_split not in VAL_SPLITS:
            raise DataError(f"val_split must be one of {', '.join(VAL_SPLITS)}")
        if self.uncertain not in UNCERTAIN_RULES:
            raise DataError(f"uncertain must be one of {', '.join(UNCERTAIN_RULES)}")
        if self.clients is not None and self.clients < 1:
            raise DataError(f"clients must be >= 1, got {self.clients}")
        if not self.alpha > 0:
            raise DataError(f"alpha must be > 0, got {self.alpha}")
        if not 0 < self.test_fraction < 1:
            raise DataError(f"test_fraction must be in (0, 1), got {self.test_fraction}")


def map_split(official: str, opts: ConvertOptions, where: str) -> str | None:
    """An official split name onto the format's: train, test, or the val rule (None = drop)."""
    key = _OFFICIAL.get(str(official).strip().lower())
    if key is None:
        raise DataError(f"{where}: unknown split {official!r} (expected train, val or test)")
    if key == "val":
        return None if opts.val_split == "drop" else opts.val_split
    return key


_WS = re.compile(r"\s+")


def norm_text(value, where: str, field: str) -> str:
    """A field as one line of text (whitespace collapsed); empty or missing is an error."""
    if value is None or isinstance(value, float) and np.isnan(value):
        raise DataError(f"{where}: missing {field!r}")
    text = _WS.sub(" ", str(value)).strip()
    if not text:
        raise DataError(f"{where}: empty {field!r}")
    return text


def norm_answer(value, where: str) -> str:
    """Answers are compared as the challenges do: lower case, whitespace collapsed."""
    return norm_text(value, where, "answer").lower()


def find_file(src: Path, names: Sequence[str], what: str) -> Path:
    """The first of ``names`` found in ``src`` or up to two folders below (case-insensitive)."""
    if not src.is_dir():
        raise DataError(f"{src}: source folder not found")
    wanted = [n.lower() for n in names]
    for pattern in ("*", "*/*", "*/*/*"):  # shallowest first: a big image tree is not listed
        found = {p.name.lower(): p for p in sorted(src.glob(pattern)) if p.name.lower() in wanted}
        for n in wanted:
            if n in found and found[n].is_file():
                path_inside(src, found[n], f"{src}: {what}")
                return found[n]
    raise DataError(f"{src}: no {what} found (expected one of: {', '.join(names)})")


def files_under(src: Path, pattern: str) -> list[Path]:
    """``src.glob(pattern)`` in sorted order; a match that leads outside ``src`` (a symlink)
    is an error naming it, never read."""
    found = sorted(src.glob(pattern))
    for p in found:
        path_inside(src, p, str(src))
    return found


def read_csv(path: Path, required: Iterable[str]) -> list[dict[str, str]]:
    """Rows of a CSV (``.csv`` or ``.csv.gz``) as dicts; a missing column names the file."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise DataError(f"{path}: cannot read CSV: {e}") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    return list(reader)


def _resize(im: Image.Image, size: int) -> Image.Image:
    if size and (im.width > size or im.height > size):
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    return im


def _to_array(im: Image.Image) -> np.ndarray:
    if im.mode in ("I", "I;16", "I;16B", "F"):  # 16-bit or float greyscale: scale to 8 bits
        a = np.asarray(im, dtype=np.float64)
        hi = a.max()
        return (a / hi * 255 if hi > 0 else a).round().astype(np.uint8)
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8)


def load_image(image: Path | bytes | np.ndarray, where: str, size: int = 0) -> np.ndarray:
    """Decode and verify one image as uint8 (H, W) or (H, W, 3), at most size x size."""
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or arr.ndim == 3 and arr.shape[-1] != 3:
            raise DataError(f"{where}: expected a uint8 image array, got {arr.dtype} {arr.shape}")
        if size and max(arr.shape[:2]) > size:
            return _to_array(_resize(Image.fromarray(arr), size))
        return arr
    what = f"image {image}" if isinstance(image, Path) else "image"
    try:
        src = image if isinstance(image, Path) else io.BytesIO(image)
        with open_image(src, where, what) as im:
            if size and im.format == "JPEG":
                im.draft(im.mode, (size, size))  # decode big JPEGs at a reduced scale
            im.load()  # decodes everything: a truncated or corrupt file fails here
            return _to_array(_resize(im, size))
    except FileNotFoundError:
        raise DataError(f"{where}: {what} not found") from None
    except DataError:
        raise
    except Exception as e:  # PIL raises many types for corrupt files
        raise DataError(f"{where}: cannot read {what}: {e}") from None


def primary_labels(label_sets: Sequence[Sequence[str]]) -> list[str]:
    """Each sample's rarest label in the whole set ('' for none): the key that the label-shift
    partition deals out, so rare findings are skewed over clients too."""
    freq = Counter(lab for labs in label_sets for lab in set(labs))
    return [min(labs, key=lambda x: (freq[x], x)) if labs else "" for labs in label_sets]


def dirichlet_clients(keys: Sequence[str], n_clients: int, alpha: float, seed: int) -> list[int]:
    """Client of each unit: per key (its primary label), the units are dealt to clients in
    Dirichlet(alpha) proportions (small alpha: strong label shift), deterministically."""
    rng = np.random.default_rng([seed, 8191])
    out = [0] * len(keys)
    by_key: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        by_key.setdefault(k, []).append(i)
    for k in sorted(by_key):
        idx = by_key[k]
        order = rng.permutation(len(idx))
        p = rng.dirichlet(np.full(n_clients, float(alpha)))
        cuts = np.floor(np.cumsum(p)[:-1] * len(idx)).astype(int)
        for c, part in enumerate(np.split(order, cuts)):
            for j in part:
                out[idx[j]] = c
    return out


def split_units(n: int, test_fraction: float, seed: int) -> list[str]:
    """A seeded train/test split of n units (for sets without an official split)."""
    rng = np.random.default_rng([seed, 4099])
    test = set(rng.permutation(n)[: round(test_fraction * n)].tolist())
    return ["test" if i in test else "train" for i in range(n)]


def write_samples(
    out: str | Path,
    samples: Iterable[Sample],
    *,
    image_size: int = 0,
    meta: dict | None = None,
    overwrite: bool = False,
    sources: Sequence[Path] = (),
) -> tuple[Path, Counter]:
    """Decode and write every sample atomically; returns the folder and counts per split.
    `sources` are the folders read: the output may not overlap them, and an image file must
    lie inside one of them (this is where every converter's and merge's files are opened, so
    a hostile record or a symlink cannot copy a file from elsewhere)."""
    counts: Counter = Counter()
    with DatasetWriter(out, overwrite=overwrite, sources=sources) as writer:
        for s in samples:
            if isinstance(s.image, Path):
                path_inside(sources, s.image, s.where)
            writer.add(replace(s, image=load_image(s.image, s.where, image_size)))
            counts[s.split] += 1
        writer.meta = {**(meta or {}), "counts": dict(counts)}
    return writer.path, counts


def iter_checked(samples: Iterable[Sample], src: Path) -> Iterator[Sample]:
    """Pass samples through; an empty source is an error naming it."""
    n = 0
    for s in samples:
        n += 1
        yield s
    if n == 0:
        raise DataError(f"{src}: no samples found")
