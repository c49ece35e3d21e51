"""The on-disk format: writer round trip, atomic writes, loader errors naming file and line."""

import json

import numpy as np
import pytest
from PIL import Image

from f3ocus_ray.data import CLASSIFICATION_PROMPT, DataError, DatasetWriter, Sample, load_dataset


def _images(n: int, size: int = 12, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8) for _ in range(n)]


def _write_folder(root, lines, images=("a.png", "b.png")):
    """A hand-made data set: some small PNGs and the given annotation lines (str or dict)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in images:
        Image.fromarray(np.full((10, 10, 3), 128, np.uint8)).save(root / name)
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    (root / "annotations.jsonl").write_text(text)
    return root


def _vqa(image="a.png", split="train", client="c1", **kw):
    return {
        "image": image,
        "question": "what?",
        "answer": "yes",
        "client": client,
        "split": split,
        **kw,
    }


def test_vqa_round_trip_keeps_records_and_pixels(tmp_path):
    imgs = _images(5, size=12)
    rows = [
        ("c2", "train", "is it big?", "yes"),
        ("c1", "train", "is it big?", "no"),
        ("c2", "test", "what colour?", "red"),
        ("c1", "test", "is it big?", "yes"),
        ("c2", "train", "what colour?", "blue"),
    ]
    with DatasetWriter(tmp_path / "ds") as w:
        for img, (client, split, q, a) in zip(imgs, rows, strict=True):
            w.add(
                Sample(
                    img, "test", client=client, split=split, question=q, answer=a, question_type="x"
                )
            )
    ds = load_dataset(tmp_path / "ds", image_size=12)
    assert ds.task == "vqa"
    assert ds.clients == ["c2", "c1"]  # order of first appearance
    assert ds.answers == ["blue", "no", "red", "yes"]
    assert ds.labels == []
    assert ds.sizes() == {"c2": {"train": 2, "test": 1}, "c1": {"train": 1, "test": 1}}
    c2 = ds.client_split("c2", "train")
    assert c2.images.dtype == np.uint8 and c2.images.shape == (2, 12, 12, 3)
    np.testing.assert_array_equal(c2.images[0], imgs[0])
    np.testing.assert_array_equal(c2.images[1], imgs[4])
    assert c2.questions == ["is it big?", "what colour?"]
    assert c2.answer_ids.dtype == np.int64
    assert [ds.answers[i] for i in c2.answer_ids] == ["yes", "blue"]
    assert c2.question_types == ["x", "x"]
    assert len(ds.client_split("c1", "test")) == 1
    assert "2 clients" in ds.describe() and "3 train / 2 test" in ds.describe()


def test_multilabel_round_trip_gives_multi_hot_rows(tmp_path):
    imgs = _images(3, size=8)
    with DatasetWriter(tmp_path / "ds") as w:
        w.add(Sample(imgs[0], "test", client="a", split="train", labels=["Mass", "Edema"]))
        w.add(Sample(imgs[1], "test", client="a", split="train", labels=[]))
        w.add(Sample(imgs[2], "test", client="b", split="test", labels=["No finding"]))
    ds = load_dataset(tmp_path / "ds", image_size=8)
    assert ds.task == "multilabel"
    assert ds.labels == ["Edema", "Mass", "No finding"] and ds.answers == []
    a = ds.client_split("a", "train")
    np.testing.assert_array_equal(a.label_matrix, [[1, 1, 0], [0, 0, 0]])
    assert a.label_matrix.dtype == np.float32
    assert a.answer_ids is None
    assert a.questions == [CLASSIFICATION_PROMPT] * 2
    np.testing.assert_array_equal(a.images[1], imgs[1])
    assert ds.client_split("b", "train").images.shape == (0, 8, 8, 3)


def test_loader_resizes_any_image_to_rgb_of_the_requested_size(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    Image.new("L", (40, 25), 200).save(root / "gray.png")
    Image.new("RGBA", (7, 9), (10, 20, 30, 255)).save(root / "rgba.png")
    Image.new("RGB", (50, 50), (255, 0, 0)).save(root / "red.jpg", quality=95)
    lines = [_vqa("gray.png"), _vqa("rgba.png"), _vqa("red.jpg", split="test")]
    (root / "annotations.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    ds = load_dataset(root, image_size=16, preload=True)
    tr = ds.client_split("c1", "train").images
    assert tr.shape == (2, 16, 16, 3)
    assert (tr[0] == 200).all()
    assert (tr[1] == [10, 20, 30]).all()
    red = ds.client_split("c1", "test").images[0].astype(int)
    assert (np.abs(red - [255, 0, 0]) <= 3).all()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"image": "a.png", "question": "q"', "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (
            {"image": "a.png", "question": "q", "client": "c", "split": "train"},
            "missing key 'answer'",
        ),
        (
            {"image": "a.png", "client": "c", "split": "train"},
            "missing key 'question' and 'answer'",
        ),
        (_vqa(answer=3), "'answer' must be a non-empty string"),
        (_vqa(split="val"), "unknown split 'val' (expected 'train' or 'test')"),
        (_vqa(image="/etc/passwd"), "must be relative"),
        (_vqa(image="../a.png"), "must be relative"),
        ({**_vqa(), "labels": ["x"]}, "mixes VQA keys"),
        (
            {"image": "a.png", "labels": ["x"], "client": "c1", "split": "train"},
            "multilabel record for client 'c1', whose records are vqa (line 1)",
        ),
        (
            {"image": "a.png", "labels": "x", "client": "c", "split": "train"},
            "'labels' must be a list",
        ),
        (_vqa(image="missing.png"), "image 'missing.png' not found"),
        (_vqa(question_type=5), "'question_type' must be a string"),
    ],
)
def test_bad_record_names_file_and_line(tmp_path, bad, message):
    root = _write_folder(tmp_path / "ds", [_vqa(), "", _vqa("b.png", split="test"), bad])
    with pytest.raises(DataError) as err:
        load_dataset(root)
    text = str(err.value)
    assert f"{root / 'annotations.jsonl'}:4: " in text
    assert message in text


def test_bad_labels_are_named(tmp_path):
    ok = {"image": "a.png", "labels": ["x"], "client": "c", "split": "train"}
    for bad, message in [
        ({**ok, "labels": "x"}, "'labels' must be a list"),
        ({**ok, "labels": ["x", "x"]}, "duplicates"),
        ({**ok, "labels": [1]}, "'labels' must be a list"),
    ]:
        root = _write_folder(tmp_path / message[:5].strip("'"), [ok, bad])
        with pytest.raises(DataError, match=r"annotations\.jsonl:2: .*" + message):
            load_dataset(root)


def test_corrupt_image_is_reported_when_decoded(tmp_path):
    root = _write_folder(tmp_path / "ds", [_vqa(), _vqa("bad.png", split="test")])
    (root / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    ds = load_dataset(root)  # annotations and file presence are fine
    ds.client_split("c1", "train")  # the good split decodes
    with pytest.raises(DataError, match=r"annotations\.jsonl:2: cannot read image 'bad.png'"):
        ds.client_split("c1", "test")
    with pytest.raises(DataError, match=r"annotations\.jsonl:2: cannot read image"):
        load_dataset(root, preload=True)


def test_missing_or_empty_annotations(tmp_path):
    with pytest.raises(DataError, match="data set folder not found"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"annotations\.jsonl: not found"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "empty" / "annotations.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="no records"):
        load_dataset(tmp_path / "empty")


def test_unknown_client_or_split_in_access(tmp_path):
    ds = load_dataset(_write_folder(tmp_path / "ds", [_vqa()]))
    with pytest.raises(KeyError, match="unknown client 'zz'"):
        ds.client_split("zz", "train")
    with pytest.raises(ValueError, match="unknown split 'val'"):
        ds.client_split("c1", "val")


def test_interrupted_write_leaves_nothing(tmp_path):
    out = tmp_path / "ds"
    with pytest.raises(RuntimeError, match="boom"), DatasetWriter(out) as w:
        w.add(Sample(_images(1)[0], "test", client="c", split="train", question="q", answer="a"))
        raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_non_empty_folder_and_replaces_on_overwrite(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (tmp_path / "ds" / "old.txt").write_text("x")
    with pytest.raises(DataError, match="not empty"):
        DatasetWriter(out)
    with pytest.raises(DataError, match="not a data set"):  # never replace what we did not write
        DatasetWriter(out, overwrite=True)
    (out / "old.txt").unlink()
    with DatasetWriter(out) as w:
        w.add(Sample(_images(1)[0], "test", client="c", split="test", question="q", answer="a"))
    with DatasetWriter(out, overwrite=True) as w:  # a data set is replaced
        w.add(Sample(_images(1)[0], "test", client="c", split="train", question="q", answer="a"))
    assert sorted(p.name for p in out.iterdir()) == ["annotations.jsonl", "images"]
    assert load_dataset(out, 12).sizes() == {"c": {"train": 1, "test": 0}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temp or old folders left
    empty = tmp_path / "empty"
    empty.mkdir()
    with DatasetWriter(empty) as w:  # an empty folder is fine
        w.add(Sample(_images(1)[0], "test", client="c", split="test", question="q", answer="a"))
    assert load_dataset(empty, 12).sizes() == {"c": {"train": 0, "test": 1}}


def test_writer_rejects_bad_input(tmp_path):
    with DatasetWriter(tmp_path / "ds") as w:
        with pytest.raises(DataError, match="unknown split"):
            w.add(Sample(_images(1)[0], "test", client="c", split="dev", question="q", answer="a"))
        with pytest.raises(DataError, match="uint8"):
            w.add(
                Sample(
                    np.zeros((4, 4, 3)), "test", client="c", split="train", question="q", answer="a"
                )
            )
        w.add(
            Sample(_images(1)[0], "test", client="a/b c", split="train", question="q", answer="a")
        )
        with pytest.raises(DataError, match="src:3: sample has both labels"):
            w.add(Sample(_images(1)[0], "src:3", "c", "train", "q", "a", labels=("Mass",)))
        with pytest.raises(DataError, match="src:4: a VQA sample needs a question and an answer"):
            w.add(Sample(_images(1)[0], "src:4", "c", "train", question="q"))
    rec = json.loads((tmp_path / "ds" / "annotations.jsonl").read_text())
    assert rec["image"] == "images/a_b_c/000000.png" and rec["client"] == "a/b c"
