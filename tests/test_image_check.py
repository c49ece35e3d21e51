"""Bad images are found before a run starts anything: a truncated or corrupt file, or a
decompression bomb, is refused by `prepare_data` (exit 2, one line naming the annotation line
and the file; no Ray, no MLflow run, no run folder), not on a worker. The verdict is cached."""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from f3ocus_ray.cli import main
from f3ocus_ray.data import DataError, read_annotations
from f3ocus_ray.data.files import MAX_IMAGE_PIXELS, check_image, open_image
from f3ocus_ray.data.image_check import CHECKS_FOLDER, check_images


def _noise(size=(40, 30)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def _encoded(fmt: str, size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    _noise(size).save(buf, format=fmt)
    return buf.getvalue()


def _bomb_png(width: int, height: int) -> bytes:
    """A small valid PNG whose header claims width x height pixels (checksum fixed)."""
    data = bytearray(_encoded("PNG"))
    ihdr = bytearray(data[16:29])  # after the signature and the IHDR length and type
    ihdr[0:8] = struct.pack(">II", width, height)
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)))
    return bytes(data)


def _flipped(data: bytes) -> bytes:
    mid = len(data) // 2
    return data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :]


BAD = {
    "truncated.png": (_encoded("PNG")[:300], "Truncated File Read"),
    "flipped.png": (_flipped(_encoded("PNG")), "bad header checksum in b'IDAT'"),
    "truncated.jpg": (_encoded("JPEG", (256, 256))[:20000], "image file is truncated"),
    "short_pixel_data.png": (_bomb_png(100, 100), "unrecognized data stream"),  # verify passes
    "bomb.png": (_bomb_png(8193, 8192), "pixels exceed the bound"),
    "huge_bomb.png": (_bomb_png(60000, 60000), "could be decompression bomb"),  # PIL's own
    "not_an_image.png": (b"hello", "cannot identify image file"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_check_image_refuses_truncated_corrupt_and_oversized_files(tmp_path, name):
    data, expected = BAD[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DataError, match=f"^where: cannot read image x: .*{re.escape(expected)}"):
        check_image(path, "where", "image x")


def test_check_image_accepts_good_files_up_to_the_bound(tmp_path):
    for fmt in ("PNG", "JPEG", "BMP"):
        path = tmp_path / f"ok.{fmt.lower()}"
        path.write_bytes(_encoded(fmt))
        check_image(path, "w")
    (tmp_path / "edge.png").write_bytes(_bomb_png(8192, 8192))
    assert 8192 * 8192 == MAX_IMAGE_PIXELS
    with open_image(tmp_path / "edge.png", "w") as im:  # at the bound: the header passes
        assert im.size == (8192, 8192)


@pytest.fixture
def vqa_copy(tmp_path, small_vqa) -> Path:
    return Path(shutil.copytree(small_vqa, tmp_path / "set"))


def test_check_images_names_the_line_and_caches_a_pass(vqa_copy, tmp_path):
    records = read_annotations(vqa_copy)
    cache = tmp_path / "cache"
    assert check_images(vqa_copy, records, cache) is False  # checked
    assert len(list((cache / CHECKS_FOLDER).iterdir())) == 1
    assert check_images(vqa_copy, records, cache) is True  # the cached verdict
    victim = records[5]
    path = vqa_copy / victim.image
    path.write_bytes(path.read_bytes()[:100])  # changed in place: size and mtime change
    with pytest.raises(DataError, match=rf"annotations\.jsonl:{victim.line}: cannot read image "):
        check_images(vqa_copy, records, cache)
    assert len(list((cache / CHECKS_FOLDER).iterdir())) == 1  # no verdict for a failure
    os.utime(path, ns=(0, 0))
    with pytest.raises(DataError):  # same size, other mtime: checked again
        check_images(vqa_copy, records, cache)


def test_a_bad_image_fails_the_run_before_ray_mlflow_or_any_folder(
    vqa_copy, tmp_path, capsys, monkeypatch
):
    import ray

    def no_ray(*a, **k):
        raise AssertionError("Ray started")

    monkeypatch.setattr(ray, "init", no_ray)
    victim = read_annotations(vqa_copy)[-1]
    (vqa_copy / victim.image).write_bytes(_bomb_png(20000, 20000))
    db = tmp_path / "mlflow.db"
    args = ["run", "experiments/demo.yaml", f"--set=data.path={vqa_copy}"]
    args += ["--set=data.image_size=32", "--tracking-uri", f"sqlite:///{db}"]
    args += [f"--set=output_dir={tmp_path / 'runs'}", f"--set=data.cache_dir={tmp_path / 'c'}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert f"annotations.jsonl:{victim.line}: cannot read image {victim.image!r}" in err
    assert not db.exists() and not (tmp_path / "runs").exists() and not (tmp_path / "c").exists()


def test_a_bad_image_refuses_a_grid_before_ray_or_mlflow(vqa_copy, tmp_path, capsys, monkeypatch):
    import ray
    from gridutil import CLIENTS, tiny_grid

    monkeypatch.chdir(tmp_path)
    victim = next(r for r in read_annotations(vqa_copy) if r.client == CLIENTS[-1])
    path = vqa_copy / victim.image
    path.write_bytes(path.read_bytes()[:60])  # truncated
    grid = tiny_grid(tmp_path, vqa_copy, "seed: [0, 1]", name="bad")
    started = ray.is_initialized()
    assert main(["grid", str(grid)]) == 2
    err = capsys.readouterr().err
    assert f"annotations.jsonl:{victim.line}: cannot read image {victim.image!r}" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray_results").exists()
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()
    assert ray.is_initialized() == started
