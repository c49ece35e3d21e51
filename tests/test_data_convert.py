"""Readers of the real data sets: fixtures in each release's layout convert to the on-disk
format (records, splits, clients, labels), load with the project's loader, and malformed
sources fail naming the file, leaving nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from f3ocus_ray.cli import _FORMAT_NAMES, main
from f3ocus_ray.data import DataError, load_dataset, read_annotations
from f3ocus_ray.data.convert import FORMATS, convert, merge
from f3ocus_ray.data.synthetic.questions import MODALITY_SPECS


def _img(path: Path, size=(24, 20), value: int = 100, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 50, 200)).save(path)
    return path


def _by(records, key):
    out: dict = {}
    for r in records:
        out.setdefault(getattr(r, key), []).append(r)
    return out


def _fails(fmt, src, out, match, **kw):
    with pytest.raises(DataError, match=match):
        convert(fmt, src, out, **kw)
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.tmp")]


# --- SLAKE -------------------------------------------------------------------------------


def _slake(root: Path) -> Path:
    def rec(img, q, a, lang="en", ctype="Organ"):
        return {"img_name": img, "question": q, "answer": a, "q_lang": lang, "content_type": ctype}

    files = {
        "train.json": [
            rec("xmlab1/source.jpg", "Which organ is shown?", "Lung"),
            rec("xmlab1/source.jpg", "图中是什么器官?", "肺", lang="zh"),
            rec("xmlab2/source.jpg", "Is this a CT?", "Yes", ctype="Modality"),
        ],
        "validate.json": [rec("xmlab2/source.jpg", "Where is  the lesion?", "Left  Lung")],
        "test.json": [rec("xmlab3/source.jpg", "Is it abnormal?", "No", ctype="Abnormality")],
    }
    for name, recs in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(recs, ensure_ascii=False), encoding="utf-8")
    for i in (1, 2, 3):
        _img(root / "imgs" / f"xmlab{i}" / "source.jpg", value=40 * i)
    return root


def test_slake_english_only_splits_and_load(tmp_path):
    src = _slake(tmp_path / "Slake1.0")
    out = convert("slake", src, tmp_path / "out", image_size=16)
    recs = read_annotations(out)
    assert [r.question for r in recs] == [
        "Which organ is shown?",
        "Is this a CT?",
        "Where is the lesion?",
        "Is it abnormal?",
    ]
    assert [r.answer for r in recs] == ["lung", "yes", "left lung", "no"]
    assert [r.split for r in recs] == ["train", "train", "train", "test"]  # validate -> train
    assert {r.client for r in recs} == {"slake"}
    assert recs[0].question_type == "organ"
    ds = load_dataset(out, image_size=16, preload=True)
    assert ds.sizes() == {"slake": {"train": 3, "test": 1}}
    with Image.open(out / recs[0].image) as im:
        assert im.size == (16, 16)  # 24 x 20 shrunk to at most 16
    meta = json.loads((out / "meta.json").read_text())
    assert meta["format"] == "slake" and meta["stats"]["non_english_skipped"] == 1

    dropped = convert("slake", src, tmp_path / "drop", val_split="drop", image_size=0)
    assert len(read_annotations(dropped)) == 3
    with Image.open(dropped / read_annotations(dropped)[0].image) as im:
        assert im.size == (24, 20)  # image_size=0 keeps the size


def test_slake_missing_field_and_missing_file(tmp_path):
    src = _slake(tmp_path / "s")
    recs = json.loads((src / "test.json").read_text())
    del recs[0]["answer"]
    (src / "test.json").write_text(json.dumps(recs))
    _fails("slake", src, tmp_path / "o", r"test\.json: record 0: missing field 'answer'")
    (src / "test.json").unlink()
    _fails("slake", src, tmp_path / "o", r"no SLAKE test\.json found")


# --- VQA-RAD -----------------------------------------------------------------------------


def _vqa_rad(root: Path, bad_image: bool = False) -> Path:
    recs = [
        {"image_name": "synpic1.jpg", "question": "Is there a mass?", "answer": "Yes",
         "question_type": "PRES", "phrase_type": "freeform"},
        {"image_name": "synpic1.jpg", "question": "Is a mass present?", "answer": "yes",
         "question_type": "PRES", "phrase_type": "para"},
        {"image_name": "synpic2.jpg", "question": "How many lesions?", "answer": 2,
         "question_type": "COUNT", "phrase_type": "test_freeform"},
        {"image_name": "synpic2.jpg", "question": "Count the lesions", "answer": 2,
         "question_type": "COUNT", "phrase_type": "test_para"},
    ]  # fmt: skip
    root.mkdir(parents=True)
    (root / "VQA_RAD Dataset Public.json").write_text(json.dumps(recs))
    _img(root / "VQA_RAD Image Folder" / "synpic1.jpg", mode="L")
    p = _img(root / "VQA_RAD Image Folder" / "synpic2.jpg")
    if bad_image:
        p.write_bytes(p.read_bytes()[:40])
    return root


def test_vqa_rad_phrase_type_splits(tmp_path):
    out = convert("vqa-rad", _vqa_rad(tmp_path / "rad"), tmp_path / "out")
    recs = read_annotations(out)
    assert [r.split for r in recs] == ["train", "train", "test", "test"]
    assert [r.answer for r in recs] == ["yes", "yes", "2", "2"]
    assert recs[2].question_type == "count" and {r.client for r in recs} == {"vqa_rad"}
    assert load_dataset(out, image_size=8).client_split("vqa_rad", "test").images.shape == (
        2, 8, 8, 3,
    )  # fmt: skip


def test_vqa_rad_bad_image_and_unknown_phrase_type(tmp_path):
    _fails(
        "vqa-rad",
        _vqa_rad(tmp_path / "a", bad_image=True),
        tmp_path / "o",
        r"record 2: cannot read image .*synpic2\.jpg",
    )
    src = _vqa_rad(tmp_path / "b")
    path = src / "VQA_RAD Dataset Public.json"
    recs = json.loads(path.read_text())
    recs[1]["phrase_type"] = "holdout"
    path.write_text(json.dumps(recs))
    _fails("vqa-rad", src, tmp_path / "o", r"Public\.json: record 1: unknown phrase_type 'holdout'")


# --- VQA-Med -----------------------------------------------------------------------------


def _vqa_med_2019(root: Path) -> Path:
    train = root / "ImageClef-2019-VQA-Med-Training"
    (train / "QAPairsByCategory").mkdir(parents=True)
    (train / "All_QA_Pairs_train.txt").write_text(
        "synpic100|what modality is shown?|ct w/contrast (iv)\n"
        "synpic101|in which plane is the image?|Axial\n"
    )
    (train / "QAPairsByCategory" / "C1_Modality_train.txt").write_text(
        "synpic100|what modality is shown?|ct w/contrast (iv)\n"
    )
    (train / "README.txt").write_text("read me|not|data\n")
    (root / "EvaluationCode").mkdir(parents=True)  # no split word: not read
    (root / "EvaluationCode" / "scores.txt").write_text("a|b|c\n")
    _img(train / "Train_images" / "synpic100.jpg")
    _img(train / "Train_images" / "synpic101.jpg")
    val = root / "ImageClef-2019-VQA-Med-Validation"
    val.mkdir()
    (val / "All_QA_Pairs_val.txt").write_text("synpic200|what organ system?|spine\n")
    _img(val / "Val_images" / "synpic200.jpg")
    test = root / "VQAMed2019Test"
    test.mkdir()
    (test / "VQAMed2019_Test_Questions_w_Ref_Answers.txt").write_text(
        "synpic300|abnormality|what is abnormal?|glioma#multi-cystic mass\n"
    )
    (test / "VQAMed2019_Test_Questions.txt").write_text("synpic300|what is abnormal?\n")
    _img(test / "VQAMed2019_Test_Images" / "synpic300.jpg")
    return root


def test_vqa_med_2019_layout(tmp_path):
    out = convert("vqa-med-2019", _vqa_med_2019(tmp_path / "vm19"), tmp_path / "out")
    recs = read_annotations(out)
    assert [(r.split, r.answer) for r in recs] == [
        ("train", "ct w/contrast (iv)"),
        ("train", "axial"),
        ("train", "spine"),
        ("test", "glioma"),
    ]
    assert recs[-1].question_type == "abnormality"
    assert load_dataset(out).clients == ["vqa_med_2019"]


def test_vqa_med_2020_joins_test_questions_and_answers(tmp_path):
    root = tmp_path / "vm20"
    train = root / "VQAMed2020-VQAnswering-TrainingSet"
    train.mkdir(parents=True)
    (train / "VQAnswering_2020_Train_QA_pairs.txt").write_text("synpic1|is this normal?|no\n")
    (train / "VQAnswering_2020_Train_ImageIDs.txt").write_text("synpic1\n")
    _img(train / "VQAnswering_2020_Train_images" / "synpic1.jpg")
    test = root / "VQA-Med-2020-Task1-VQAnswering-TestSet"
    test.mkdir()
    (test / "VQAMed2020-Task1-VQAnswering-Test-Questions.txt").write_text(
        "synpic2|what is abnormal?\nsynpic3|is this normal?\n"
    )
    (test / "VQAMed2020-Task1-VQAnswering-Test-ReferenceAnswers.txt").write_text(
        "synpic3|yes\nsynpic2|Hiatal Hernia\n"
    )
    _img(test / "VQA-500-Images" / "synpic2.jpg")
    _img(test / "VQA-500-Images" / "synpic3.jpg")
    out = convert("vqa-med-2020", root, tmp_path / "out")
    recs = read_annotations(out)
    assert [(r.split, r.question, r.answer) for r in recs] == [
        ("train", "is this normal?", "no"),
        ("test", "what is abnormal?", "hiatal hernia"),
        ("test", "is this normal?", "yes"),
    ]
    assert {r.client for r in recs} == {"vqa_med_2020"}
    # a line that is not image_id|question|answer fails naming file and line
    (train / "VQAnswering_2020_Train_QA_pairs.txt").write_text("synpic1|q|a\nbroken line|x|y|z|w\n")
    _fails("vqa-med-2020", root, tmp_path / "o", r"Train_QA_pairs\.txt:2: expected 3 or 4")
    (train / "VQAnswering_2020_Train_QA_pairs.txt").write_text("synpic9|q|a\n")
    _fails(
        "vqa-med-2021", root, tmp_path / "o", r"Train_QA_pairs\.txt:1: image 'synpic9' not found"
    )


# --- PathVQA -----------------------------------------------------------------------------


def _png_bytes(value: int) -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (value, value, 0)).save(buf, format="PNG")
    return buf.getvalue()


def _pathvqa(root: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = root / "data"
    data.mkdir(parents=True)
    for split, n in (("train", 3), ("validation", 1), ("test", 2)):
        table = pa.table(
            {
                "image": [{"bytes": _png_bytes(10 * i), "path": None} for i in range(n)],
                "question": [f"{split} question {i}?" for i in range(n)],
                "answer": ["Yes" if i % 2 else "no" for i in range(n)],
            }
        )
        pq.write_table(table, data / f"{split}-00000-of-00001.parquet")
    return root


def test_pathvqa_parquet(tmp_path):
    out = convert("pathvqa", _pathvqa(tmp_path / "pv"), tmp_path / "out", val_split="test")
    ds = load_dataset(out)
    assert ds.sizes() == {"pathvqa": {"train": 3, "test": 3}}
    assert ds.answers == ["no", "yes"]


def test_pathvqa_refuses_pickle_and_bad_columns(tmp_path):
    src = tmp_path / "pkl"
    (src / "qas" / "train").mkdir(parents=True)
    marker = tmp_path / "unpickled"
    import pickle

    class Boom:  # unpickling this would create the marker file
        def __reduce__(self):
            return (Path.touch, (marker,))

    (src / "qas" / "train" / "train_qa.pkl").write_bytes(pickle.dumps(Boom()))
    _fails("pathvqa", src, tmp_path / "o", r"train_qa\.pkl: .*use the parquet release")
    assert not marker.exists()

    import pyarrow as pa
    import pyarrow.parquet as pq

    bad = tmp_path / "bad"
    bad.mkdir()
    pq.write_table(pa.table({"question": ["q"], "answer": ["a"]}), bad / "train-0.parquet")
    _fails("pathvqa", bad, tmp_path / "o", r"train-0\.parquet: missing column\(s\) image")
    pq.write_table(
        pa.table({"image": [{"bytes": b"junk"}], "question": ["q"], "answer": ["a"]}),
        bad / "train-0.parquet",
    )
    _fails("pathvqa", bad, tmp_path / "o", r"train-0\.parquet: row 0: cannot read image")


# --- MedMNIST -> MedVQA-FL ---------------------------------------------------------------


def _medmnist(root: Path) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def arrays(n, shape, labels):
        out = {}
        for split in ("train", "val", "test"):
            out[f"{split}_images"] = rng.integers(0, 255, (n, *shape), dtype=np.uint8)
            out[f"{split}_labels"] = labels(n)
        return out

    np.savez(root / "pathmnist.npz", **arrays(12, (28, 28, 3), lambda n: np.arange(n)[:, None] % 9))
    patterns = np.zeros((3, 14), np.uint8)
    patterns[1, [0, 10]] = 1  # atelectasis, emphysema
    patterns[2, 12] = 1  # pleural
    np.savez(root / "chestmnist.npz", **arrays(10, (28, 28), lambda n: patterns[np.arange(n) % 3]))
    np.savez(root / "organamnist.npz", **arrays(8, (28, 28), lambda n: np.arange(n)[:, None] % 11))
    return root


def test_medmnist_builds_medvqa_fl_with_the_templates(tmp_path):
    out = convert("medmnist", _medmnist(tmp_path / "mm"), tmp_path / "out", val_split="drop")
    ds = load_dataset(out, image_size=28)
    assert ds.clients == ["chest_xray", "colon_pathology", "abdominal_ct"]  # the paper's order
    assert ds.sizes()["colon_pathology"] == {"train": 12, "test": 12}
    recs = _by(ds.records, "client")
    spec = MODALITY_SPECS["colon_pathology"]
    for r in recs["colon_pathology"]:
        assert r.question_type in ("modality", "anatomy", "tissue")
        templates = spec.asks[r.question_type].templates
        assert r.question in templates
        if r.question_type == "modality":
            assert r.answer == "pathology"
        if r.question_type == "anatomy":
            assert r.answer == "colon"
    tissue = [r for r in recs["colon_pathology"] if r.question_type == "tissue"]
    assert tissue and all(r.answer in {"adipose", "background", "debris", "lymphocytes", "mucus",
        "smooth muscle", "normal colon mucosa", "cancer-associated stroma",
        "colorectal adenocarcinoma epithelium"} for r in tissue)  # fmt: skip
    organs = [r for r in recs["abdominal_ct"] if r.question_type == "anatomy"]
    assert organs and all(r.question == "which organ is imaged?" for r in organs)
    chest = [r.answer for r in recs["chest_xray"] if r.question_type == "diagnosis"]
    assert chest and set(chest) <= {"normal", "atelectasis, emphysema", "pleural"}
    # deterministic, and one client per subset on request
    again = convert("medmnist", tmp_path / "mm", tmp_path / "again", val_split="drop")
    assert (again / "annotations.jsonl").read_text() == (out / "annotations.jsonl").read_text()
    per = convert("medmnist", tmp_path / "mm", tmp_path / "per", client_per_subset=True)
    assert load_dataset(per).clients == ["chestmnist", "pathmnist", "organamnist"]
    assert load_dataset(per).sizes()["pathmnist"] == {"train": 24, "test": 12}  # val -> train


def test_medmnist_refuses_pickles_bad_labels_and_unknown_files(tmp_path):
    src = tmp_path / "obj"
    src.mkdir()
    imgs = np.zeros((2, 28, 28), np.uint8)
    np.savez(
        src / "octmnist.npz",
        train_images=imgs,
        train_labels=np.array([{"a": 1}, None], dtype=object),
        val_images=imgs,
        val_labels=np.zeros((2, 1)),
        test_images=imgs,
        test_labels=np.zeros((2, 1)),
    )
    _fails(
        "medmnist", src, tmp_path / "o", r"octmnist\.npz: cannot read 'train_labels' without pickle"
    )
    np.savez(src / "octmnist.npz", train_images=imgs, train_labels=np.array([[0], [7]]))
    _fails("medmnist", src, tmp_path / "o", r"octmnist\.npz: train\[1\]: expected one class index")
    (src / "octmnist.npz").unlink()
    np.savez(src / "nodulemnist3d.npz", train_images=imgs)
    _fails("medmnist", src, tmp_path / "o", r"nodulemnist3d\.npz: not a 2D MedMNIST subset")


# --- Open-I ------------------------------------------------------------------------------


def _openi(root: Path, n: int = 24) -> Path:
    meshes = [
        "normal",
        "Cardiomegaly/borderline;Pulmonary Atelectasis/base/left",
        "Calcified Granuloma/lung/upper lobe/right",  # none of the 15: left out
        "Pleura/thickening/apex;Nodule/lung",
        "Hernia, Hiatal",
        "Pleural Effusion/bilateral/small",
    ]
    reports = ["uid,MeSH,Problems,image,indication,comparison,findings,impression"]
    proj = ["uid,filename,projection"]
    for u in range(1, n + 1):
        reports.append(f'{u},"{meshes[u % len(meshes)]}",x,Xray Chest PA and Lateral,,,,')
        for k, view in enumerate(("Frontal", "Lateral")):
            name = f"{u}_IM-{u:04d}-{k}001.dcm.png"
            proj.append(f"{u},{name},{view}")
            _img(root / "images" / "images_normalized" / name, mode="L", value=u)
    (root / "indiana_reports.csv").write_text("\n".join(reports) + "\n")
    (root / "indiana_projections.csv").write_text("\n".join(proj) + "\n")
    return root


def test_openi_labels_clients_and_splits(tmp_path):
    out = convert("open-i", _openi(tmp_path / "openi"), tmp_path / "out", clients=3, alpha=1.0)
    ds = load_dataset(out)
    assert ds.task == "multilabel"
    assert set(ds.clients) <= {"client_0", "client_1", "client_2"}
    assert set(ds.labels) == {
        "No finding", "Cardiomegaly", "Atelectasis", "Pleural thickening", "Nodule", "Hernia",
        "Effusion",
    }  # fmt: skip
    recs = read_annotations(out)
    assert len(recs) == 2 * 20  # 24 reports, 4 without any of the 15 findings, 2 views each
    labels = {r.labels for r in recs}
    assert ("Atelectasis", "Cardiomegaly") in labels and ("Nodule", "Pleural thickening") in labels
    # both views of a report share client and split
    pairs = _by(recs, "labels")
    assert all(len(v) % 2 == 0 for v in pairs.values())
    for a, b in zip(recs[::2], recs[1::2], strict=True):
        assert (a.client, a.split, a.labels) == (b.client, b.split, b.labels)
    assert {r.split for r in recs} == {"train", "test"}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["stats"]["reports_without_findings"] == 4


def test_openi_missing_column_and_image(tmp_path):
    src = _openi(tmp_path / "a", n=6)
    text = (src / "indiana_reports.csv").read_text().replace("MeSH", "Mesh_terms", 1)
    (src / "indiana_reports.csv").write_text(text)
    _fails("open-i", src, tmp_path / "o", r"indiana_reports\.csv: missing column\(s\) MeSH")
    src = _openi(tmp_path / "b", n=6)
    (src / "images" / "images_normalized" / "1_IM-0001-1001.dcm.png").unlink()
    _fails("open-i", src, tmp_path / "o", r"indiana_projections\.csv:\d+: image .*1_IM-0001-1001")


# --- MIMIC-CXR ---------------------------------------------------------------------------

_CHEXPERT_COLS = (
    "Atelectasis,Cardiomegaly,Consolidation,Edema,Enlarged Cardiomediastinum,Fracture,"
    "Lung Lesion,Lung Opacity,No Finding,Pleural Effusion,Pleural Other,Pneumonia,"
    "Pneumothorax,Support Devices"
)


def _mimic(root: Path, split_of=("train", "validate", "test", "train")) -> Path:
    studies = [  # (subject, study, {label: value})
        ("10000032", "50414267", {"No Finding": "1.0"}),
        ("10000032", "53189527", {"Edema": "-1.0", "Cardiomegaly": "1.0"}),
        ("10000764", "57375967", {"Pneumonia": "-1.0", "Atelectasis": "0.0"}),
        ("11000011", "55000001", {"Pleural Effusion": "1.0", "Support Devices": "1.0"}),
    ]
    cols = _CHEXPERT_COLS.split(",")
    chexpert = ["subject_id,study_id," + _CHEXPERT_COLS]
    splits = ["dicom_id,study_id,subject_id,split"]
    for k, (subject, study, labs) in enumerate(studies):
        chexpert.append(",".join([subject, study, *(labs.get(c, "") for c in cols)]))
        for v in range(2):
            dicom = f"d{k}{v}-abc"
            splits.append(f"{dicom},{study},{subject},{split_of[k]}")
            _img(root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom}.jpg")
    splits.append("dnolabel,59999999,10000032,train")  # a study the labeler left out
    (root / "mimic-cxr-2.0.0-chexpert.csv").write_text("\n".join(chexpert) + "\n")
    (root / "mimic-cxr-2.0.0-split.csv").write_text("\n".join(splits) + "\n")
    return root


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("positive", {"50414267": ("No Finding",), "53189527": ("Cardiomegaly", "Edema"),
                      "57375967": ("Pneumonia",)}),
        ("negative", {"50414267": ("No Finding",), "53189527": ("Cardiomegaly",),
                      "57375967": ()}),
        ("ignore", {"50414267": ("No Finding",)}),
    ],
)  # fmt: skip
def test_mimic_uncertain_rule_splits_and_clients(tmp_path, rule, expected):
    src = _mimic(tmp_path / "mimic")
    out = convert("mimic-cxr", src, tmp_path / "out", uncertain=rule, clients=2)
    recs = read_annotations(out)
    rows = [line.split(",") for line in (src / "mimic-cxr-2.0.0-split.csv").read_text().split()]
    subject_of = {r[1]: r[2] for r in rows[1:]}
    expected = {**expected, "55000001": ("Pleural Effusion", "Support Devices")}
    meta = json.loads((out / "meta.json").read_text())
    assert len(recs) == 2 * len(expected) == sum(meta["counts"].values())
    got: dict = {}
    for r in recs:
        got.setdefault(r.labels, []).append(r)
    assert {k: len(v) for k, v in got.items()} == {
        v: 2 * sum(1 for e in expected.values() if e == v) for v in expected.values()
    }
    assert {r.split for r in recs} == ({"train", "test"} if rule != "ignore" else {"train"})
    # a patient's images stay with one client: patient 10000032's two studies
    if rule != "ignore":
        c1 = {r.client for r in recs if r.labels == expected["50414267"]}
        c2 = {r.client for r in recs if r.labels == expected["53189527"]}
        assert len(c1 | c2) == 1 and subject_of["50414267"] == subject_of["53189527"]
    assert {r.client for r in recs} <= {"client_0", "client_1"}
    assert meta["stats"]["unlabelled_images"] == 1
    assert meta["stats"]["uncertain_images_dropped"] == (4 if rule == "ignore" else 0)
    load_dataset(out, preload=True)


def test_mimic_unknown_split_missing_column_and_image(tmp_path):
    src = _mimic(tmp_path / "a", split_of=("train", "holdout", "test", "train"))
    _fails("mimic-cxr", src, tmp_path / "o", r"split\.csv:4: unknown split 'holdout'")
    src = _mimic(tmp_path / "b")
    path = src / "mimic-cxr-2.0.0-chexpert.csv"
    path.write_text(path.read_text().replace("Edema,", "Oedema,", 1))
    _fails("mimic-cxr", src, tmp_path / "o", r"chexpert\.csv: missing column\(s\) Edema")
    src = _mimic(tmp_path / "c")
    next((src / "files").rglob("d20-abc.jpg")).unlink()
    _fails("mimic-cxr", src, tmp_path / "o", r"split\.csv:6: image .*d20-abc\.jpg not found")


# --- merge, CLI ----------------------------------------------------------------------------


def test_merge_t1_sources_and_refuse_clashes(tmp_path):
    a = convert("slake", _slake(tmp_path / "s"), tmp_path / "slake")
    b = convert("vqa-rad", _vqa_rad(tmp_path / "r"), tmp_path / "rad")
    out = merge([a, b], tmp_path / "t1")
    ds = load_dataset(out)
    assert ds.clients == ["slake", "vqa_rad"]
    assert ds.sizes()["vqa_rad"] == {"train": 2, "test": 2}
    with pytest.raises(DataError, match="client 'slake' is also in"):
        merge([a, a], tmp_path / "t1b")
    c = convert("open-i", _openi(tmp_path / "oi", n=6), tmp_path / "oi_out")
    with pytest.raises(DataError, match="multilabel data set cannot be merged"):
        merge([a, c], tmp_path / "t1c")
    assert not (tmp_path / "t1b").exists() and not (tmp_path / "t1c").exists()


def test_cli_convert_and_merge(tmp_path, capsys):
    src = _slake(tmp_path / "s")
    out = tmp_path / "slake"
    assert main(["data", "convert", "--format", "slake", "--src", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "slake" in printed and f"wrote {out}" in printed
    # refuses a non-empty output, exit 2, one line
    assert main(["data", "convert", "--format", "slake", "--src", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not empty" in err and err.count("\n") == 1
    assert (
        main(["data", "convert", "--format", "vqa-rad", "--src", str(tmp_path / "nope"),
              "--out", str(tmp_path / "x")])
        == 2
    )  # fmt: skip
    assert "source folder not found" in capsys.readouterr().err
    rad = tmp_path / "rad"
    main(["data", "convert", "--format", "vqa-rad", "--src", str(_vqa_rad(tmp_path / "r")),
          "--out", str(rad), "--image-size", "0"])  # fmt: skip
    assert main(["data", "merge", "--src", str(out), str(rad), "--out", str(tmp_path / "t1")]) == 0
    assert load_dataset(tmp_path / "t1").clients == ["slake", "vqa_rad"]


def test_cli_lists_every_format():
    assert tuple(FORMATS) == _FORMAT_NAMES


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("where", ["equal", "inside", "above"])
def test_an_output_overlapping_its_source_is_refused_even_with_overwrite(tmp_path, where):
    """`--out` equal to, inside or above `--src` (with `--overwrite`) would replace the source
    data: refused before anything is written, and the source is left byte for byte."""
    src = _slake(tmp_path / "raw" / "slake")
    out = {"equal": src, "inside": src / "converted", "above": tmp_path / "raw"}[where]
    before = _tree(tmp_path / "raw")
    with pytest.raises(DataError, match="the output overlaps the source"):
        convert("slake", src, out, overwrite=True)
    assert _tree(tmp_path / "raw") == before
    a = convert("slake", src, tmp_path / "a")
    with pytest.raises(DataError, match="the output overlaps the source"):
        merge([a, convert("vqa-rad", _vqa_rad(tmp_path / "r"), tmp_path / "b")], a, overwrite=True)
    assert load_dataset(a).clients == ["slake"]


def test_overwrite_replaces_a_data_set_but_never_another_folder(tmp_path):
    src = _slake(tmp_path / "s")
    home = tmp_path / "home"
    (home / "notes.txt").parent.mkdir(parents=True)
    (home / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not a data set .*refusing to replace a folder"):
        convert("slake", src, home, overwrite=True)
    assert (home / "notes.txt").read_text() == "mine"
    out = convert("slake", src, tmp_path / "out")
    assert convert("slake", src, out, overwrite=True) == out  # a data set is replaced
