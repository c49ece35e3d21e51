"""Every path stays inside its folder: the converters, `data merge` and the loader refuse an
annotation or a symlink that leads out (`..`, an absolute path, a link), before they copy or
decode anything, and leave nothing behind. One check (`f3ocus_ray.data.files.path_inside`)
holds them all; a test per reader with a hostile record or link."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_data_convert import _fails, _img, _medmnist, _mimic, _openi, _pathvqa, _slake, _vqa_rad

from f3ocus_ray.data import DataError, load_dataset, read_annotations
from f3ocus_ray.data.convert import convert, merge
from f3ocus_ray.data.files import path_inside
from f3ocus_ray.data.format import read_image

OUTSIDE = r"leads outside .* \(through '\.\.', an absolute path or a symlink\)"


@pytest.fixture
def secret(tmp_path) -> Path:
    """A readable image outside every source: what a hostile source wants copied."""
    return _img(tmp_path / "elsewhere" / "secret.png", value=7)


def _link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(target)


def test_path_inside_resolves_dots_absolute_paths_and_links(tmp_path, secret):
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    _img(root / "images" / "a.png")
    _link(root / "images" / "same.png", root / "images" / "a.png")  # a link inside: fine
    assert path_inside(root, root / "images" / "same.png", "w") == (root / "images" / "a.png")
    assert path_inside(root, root / "images" / ".." / "images" / "a.png", "w").is_file()
    _link(root / "images" / "out.png", secret)
    _link(root / "linked_dir", secret.parent)
    for bad in ("../elsewhere/secret.png", str(secret), "images/out.png", "linked_dir/secret.png"):
        with pytest.raises(DataError, match="w: .*" + OUTSIDE):
            path_inside(root, root / bad, "w")
    with pytest.raises(DataError, match=OUTSIDE):  # a folder next door with the root's prefix
        path_inside(root, tmp_path / "set2" / "x.png", "w")


def test_slake_hostile_image_name_and_symlink(tmp_path, secret):
    src = _slake(tmp_path / "s")
    recs = json.loads((src / "test.json").read_text())
    recs[0]["img_name"] = "../../elsewhere/secret.png"
    (src / "test.json").write_text(json.dumps(recs))
    _fails("slake", src, tmp_path / "o", r"test\.json: record 0: .*" + OUTSIDE)
    src = _slake(tmp_path / "s2")
    _link(src / "imgs" / "xmlab3" / "source.jpg", secret)
    _fails("slake", src, tmp_path / "o", r"test\.json: record 0: .*" + OUTSIDE)
    src = _slake(tmp_path / "s3")  # an annotation file that is a link out
    _link(src / "test.json", src / ".." / "s" / "test.json")
    _fails("slake", src, tmp_path / "o", "SLAKE test.json: .*" + OUTSIDE)


def test_vqa_rad_absolute_image_name(tmp_path, secret):
    src = _vqa_rad(tmp_path / "r")
    path = src / "VQA_RAD Dataset Public.json"
    recs = json.loads(path.read_text())
    recs[0]["image_name"] = str(secret)
    path.write_text(json.dumps(recs))
    _fails("vqa-rad", src, tmp_path / "o", "record 0: .*" + OUTSIDE)


def test_vqa_med_linked_image_and_text_file(tmp_path, secret):
    from test_data_convert import _vqa_med_2019

    src = _vqa_med_2019(tmp_path / "vm")
    _link(src / "ImageClef-2019-VQA-Med-Training" / "Train_images" / "synpic100.jpg", secret)
    _fails("vqa-med-2019", src, tmp_path / "o", "synpic100.jpg " + OUTSIDE)
    src = _vqa_med_2019(tmp_path / "vm2")
    outside_txt = tmp_path / "elsewhere" / "All_QA_Pairs_val.txt"
    outside_txt.write_text("synpic200|q?|a\n")
    _link(src / "ImageClef-2019-VQA-Med-Validation" / "All_QA_Pairs_val.txt", outside_txt)
    _fails("vqa-med-2019", src, tmp_path / "o", "All_QA_Pairs_val.txt " + OUTSIDE)


def test_pathvqa_linked_parquet(tmp_path):
    src = _pathvqa(tmp_path / "pv")
    other = _pathvqa(tmp_path / "elsewhere" / "pv")
    _link(
        src / "data" / "test-00000-of-00001.parquet", other / "data" / "test-00000-of-00001.parquet"
    )
    _fails("pathvqa", src, tmp_path / "o", r"test-00000-of-00001\.parquet " + OUTSIDE)


def test_medmnist_linked_npz(tmp_path):
    src = _medmnist(tmp_path / "mm")
    other = _medmnist(tmp_path / "elsewhere" / "mm")
    _link(src / "pathmnist.npz", other / "pathmnist.npz")
    _fails("medmnist", src, tmp_path / "o", r"pathmnist\.npz " + OUTSIDE)


def test_openi_dotdot_file_name(tmp_path, secret):
    src = _openi(tmp_path / "oi", n=6)
    proj = src / "indiana_projections.csv"
    lines = proj.read_text().splitlines()
    uid, name, view = lines[1].split(",")
    lines[1] = f"{uid},../../../elsewhere/secret.png,{view}"
    proj.write_text("\n".join(lines) + "\n")
    _fails("open-i", src, tmp_path / "o", r"indiana_projections\.csv:2: .*" + OUTSIDE)


def test_mimic_linked_image_and_linked_files_folder(tmp_path, secret):
    src = _mimic(tmp_path / "m")
    jpg = src / "files" / "p10" / "p10000032" / "s50414267" / "d00-abc.jpg"
    _link(jpg, secret)
    _fails("mimic-cxr", src, tmp_path / "o", r"split\.csv:2: .*" + OUTSIDE)
    src = _mimic(tmp_path / "m2")
    elsewhere = _mimic(tmp_path / "elsewhere" / "m2")
    import shutil

    shutil.rmtree(src / "files")
    _link(src / "files", elsewhere / "files")  # the whole image tree is a link out
    _fails("mimic-cxr", src, tmp_path / "o", r"split\.csv:\d+: .*" + OUTSIDE)


def _converted_with_link(tmp_path, secret) -> Path:
    out = convert("slake", _slake(tmp_path / "s"), tmp_path / "slake", image_size=16)
    victim = out / read_annotations(out)[0].image
    _link(victim, secret)  # the data set now points out of its folder
    return out


def test_merge_and_loader_refuse_a_link_out_of_the_data_set(tmp_path, secret):
    a = _converted_with_link(tmp_path, secret)
    b = convert("vqa-rad", _vqa_rad(tmp_path / "r"), tmp_path / "rad")
    with pytest.raises(DataError, match=r"slake:1: .*" + OUTSIDE):
        merge([a, b], tmp_path / "t1")
    assert not (tmp_path / "t1").exists()
    with pytest.raises(DataError, match=r"annotations\.jsonl:1: .*" + OUTSIDE):
        load_dataset(a)
    with pytest.raises(DataError, match=r"annotations\.jsonl:1: .*" + OUTSIDE):
        read_image(a, read_annotations(a)[0], 8)  # a worker's read, were the loader bypassed
