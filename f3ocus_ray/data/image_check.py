"""Check a data set's images once, before a run starts anything.

A truncated or corrupt image, or a decompression bomb, would otherwise surface on a worker,
after Ray has started and an MLflow run exists. :func:`check_images` opens every image the
run will read (each file once, however many records name it) with
:func:`~f3ocus_ray.data.files.check_image`, and keeps a positive verdict in the cache folder,
keyed by a hash of the image names, sizes, modification times and inodes (and the pixel bound):
a re-run of an unchanged data set pays a ``stat`` per image, not a decode. Hashing each image's
bytes instead would read the whole data set at every start, which is the cost the cache avoids;
a file rewritten in place keeps its name but changes its modification time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from .files import MAX_IMAGE_PIXELS, check_image, path_inside
from .format import ANNOTATIONS, Record

__all__ = ["CHECKS_FOLDER", "check_images"]

CHECKS_FOLDER = "image-checks"
_VERSION = 1  # bump when check_image checks more


def check_images(root: str | Path, records: Sequence[Record], cache_dir: Path | None) -> bool:
    """Raise a DataError naming the annotation line and file of the first bad image; return
    True when an earlier verdict in ``cache_dir`` made the check unnecessary. Nothing is
    written unless every image passed."""
    root = Path(root)
    first: dict[str, Record] = {}
    for r in records:
        first.setdefault(r.image, r)
    where = {img: f"{root / ANNOTATIONS}:{r.line}" for img, r in first.items()}
    real = {img: path_inside(root, root / img, where[img]) for img in first}
    digest = hashlib.sha256(f"v{_VERSION} {MAX_IMAGE_PIXELS} {os.path.realpath(root)}\n".encode())
    for img in sorted(first):
        try:
            st = real[img].stat()
        except OSError:
            st = None  # check_image reports it
        sig = (st.st_size, st.st_mtime_ns, st.st_ino) if st else None
        digest.update(f"{img}\0{sig}\n".encode())
    marker = cache_dir / CHECKS_FOLDER / digest.hexdigest() if cache_dir is not None else None
    if marker is not None and marker.is_file():
        return True
    for img in first:
        check_image(real[img], where[img], f"image {img!r}")
    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{root}: {len(first)} images passed\n")
    return False
