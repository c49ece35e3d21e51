"""Reading files a data set names, safely: every path stays inside its root, every image is
bounded before it is decoded.

:func:`path_inside` is the one check of a path against the folder it belongs to (a data set
folder, a converter's ``--src``): after ``..``, absolute paths and symlinks are resolved, a
path outside the folder is refused. The loader, the converters (through
:func:`~f3ocus_ray.data.convert.common.write_samples` and the files they look up) and
``data merge`` all go through it, so a hostile annotation or a symlink cannot make them read or
copy a file from elsewhere. :func:`open_image` opens an image with its size checked against
:data:`MAX_IMAGE_PIXELS` before any pixel is decoded (a decompression bomb is refused, not
decoded).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from f3ocus_ray.errors import UserError

__all__ = ["MAX_IMAGE_PIXELS", "DataError", "check_image", "open_image", "path_inside"]

# 8192 x 8192: above any medical image the converters read (a MIMIC-CXR JPEG is ~3000 x 2500),
# far below what exhausts a worker's memory. PIL itself raises only at twice its bound.
MAX_IMAGE_PIXELS = 8192 * 8192
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


class DataError(UserError, ValueError):
    """A data set is missing, malformed or unreadable; the message names file and line."""


def path_inside(roots: Path | Sequence[Path], path: str | Path, where: str) -> Path:
    """The real path of ``path`` (as built from its root, e.g. ``root / rec.image``), or a
    DataError if, after ``..`` and symlinks, it lies outside every one of ``roots``.

    The path need not exist (the caller reports a missing file itself)."""
    roots = [roots] if isinstance(roots, str | Path) else list(roots)
    real = Path(os.path.realpath(path))
    for root in roots:
        if real.is_relative_to(os.path.realpath(root)):
            return real
    names = " or ".join(str(r) for r in roots) or "(no folder)"
    raise DataError(
        f"{where}: {path} leads outside {names} (through '..', an absolute path or a symlink); "
        "only files inside the data set folder are read"
    )


def open_image(path: Path | object, where: str, what: str = "image") -> Image.Image:
    """``Image.open`` with its pixel count checked first (the header only is read): a
    DataError ``"{where}: cannot read {what}: ..."`` for a file PIL cannot identify, or one
    larger than :data:`MAX_IMAGE_PIXELS`. The caller closes it (``with open_image(...)``)."""
    try:
        with warnings.catch_warnings():  # PIL warns beyond the bound; refused below instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except FileNotFoundError:
        raise
    except Exception as e:  # PIL raises many types for corrupt files, and a bomb error
        raise DataError(f"{where}: cannot read {what}: {e}") from None
    w, h = im.size
    if w * h > MAX_IMAGE_PIXELS:
        im.close()
        raise DataError(
            f"{where}: cannot read {what}: {w} x {h} pixels exceed the bound of {MAX_IMAGE_PIXELS} "
            "pixels (a decompression bomb?); refusing to decode it"
        )
    return im


def check_image(path: Path, where: str, what: str = "image") -> None:
    """Refuse (DataError) an image that is missing, larger than the bound, truncated or
    corrupt. The bound is checked on the header, before any pixel is decoded; ``verify()``
    then checks a PNG's chunk checksums, and a decode catches what verify cannot (pixel data
    shorter than the header claims, a truncated JPEG, whose ``verify`` checks nothing); a JPEG
    is decoded at 1/8 scale."""
    try:
        with open_image(path, where, what) as im:
            im.verify()
        with open_image(path, where, what) as im:
            if im.format == "JPEG":
                im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
    except FileNotFoundError:
        raise DataError(f"{where}: {what} not found") from None
    except DataError:
        raise
    except Exception as e:  # PIL raises many types for corrupt files
        raise DataError(f"{where}: cannot read {what}: {e}") from None
