"""Blind baselines (VQA, multi-label, mixed) on hand-made sets with known answers."""

from pathlib import Path

import pytest

from f3ocus_ray.data import DataError, FederatedDataset, Record, blind_baselines, vqa_baselines
from f3ocus_ray.data.baselines import multilabel_majority_counts


def _rec(client, split, question, answer, qtype="diagnosis"):
    return Record("x.png", client, split, question, answer, question_type=qtype)


def test_baselines_by_hand():
    records = [
        # train: overall majority "yes" (4 of 7)
        _rec("a", "train", "q1", "yes"),
        _rec("a", "train", "q1", "yes"),
        _rec("b", "train", "q1", "no"),
        _rec("b", "train", "q1", "no"),
        _rec("b", "train", "q1", "no"),
        _rec("a", "train", "q2", "yes", "modality"),
        _rec("b", "train", "q2", "yes", "modality"),
        # test
        _rec("a", "test", "q1", "yes"),  # majority ok, q-only (no) wrong, per-client (yes) ok
        _rec("b", "test", "q1", "no"),  # majority wrong, q-only ok, per-client ok
        _rec("a", "test", "q2", "no", "modality"),  # all three wrong
        _rec("a", "test", "q3", "yes", "modality"),  # unseen question: falls back to "yes", ok
    ]
    b = vqa_baselines(FederatedDataset(Path("mem"), records, 8))
    assert b.n_test == 4
    assert b.majority == pytest.approx(2 / 4)
    assert b.question_only == pytest.approx(2 / 4)
    assert b.question_only_per_client == pytest.approx(3 / 4)
    assert b.per_type == {"diagnosis": 1.0, "modality": 0.5}
    assert "question-only 50.0%" in str(b)


def test_baselines_need_vqa_with_both_splits():
    only_train = [_rec("a", "train", "q", "y")]
    with pytest.raises(DataError, match="both train and test"):
        vqa_baselines(FederatedDataset(Path("mem"), only_train, 8))
    ml = [Record("x.png", "a", "train", labels=("Mass",)), Record("x.png", "a", "test", labels=())]
    with pytest.raises(DataError, match="need a VQA data set"):
        vqa_baselines(FederatedDataset(Path("mem"), ml, 8))


def _lab(client, split, *labels):
    return Record("x.png", client, split, labels=tuple(labels))


MULTILABEL = [
    # train: "A" in 3 of 4 records (the majority label set is {A}); "B" in 2, not a majority
    _lab("m", "train", "A", "B"),
    _lab("m", "train", "A"),
    _lab("m", "train", "A"),
    _lab("m", "train", "B"),
    # test, predicting {A}: tp 1 fn 1 / fp 1 / fp 1 fn 1
    _lab("m", "test", "A", "B"),
    _lab("m", "test"),
    _lab("m", "test", "B"),
]


def test_multilabel_and_mixed_blind_baselines_by_hand():
    ds = FederatedDataset(Path("mem"), MULTILABEL, 8)
    assert multilabel_majority_counts(ds) == (1, 2, 2)
    assert blind_baselines(ds) == (pytest.approx(2 / 6), None)
    # mixed: the VQA majority ("yes") is right on 1 of 2 test questions: +1 tp, +1 fp, +1 fn
    vqa = [
        _rec("v", "train", "q1", "yes"),
        _rec("v", "train", "q1", "yes"),
        _rec("v", "train", "q1", "no"),
        _rec("v", "test", "q1", "yes"),
        _rec("v", "test", "q1", "no"),
    ]
    mixed = FederatedDataset(Path("mem"), vqa + MULTILABEL, 8)
    assert mixed.task == "mixed"
    assert blind_baselines(mixed) == (pytest.approx(4 / 10), None)
    assert blind_baselines(FederatedDataset(Path("mem"), vqa, 8)) == (0.5, 0.5)
