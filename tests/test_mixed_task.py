"""Task 6: VQA clients and classification clients in one federation, one model with two heads."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
import torch

from f3ocus_ray.config import load_config
from f3ocus_ray.data import DataError, load_dataset, synthesize
from f3ocus_ray.data.client_tensors import load_client_tensors
from f3ocus_ray.data.synthetic.medvqa import MIXED_VQA_CLIENTS
from f3ocus_ray.fl.training import evaluate, local_train
from f3ocus_ray.models import ModelSpec, build_model
from f3ocus_ray.platform.data_prep import prepare_data
from f3ocus_ray.platform.experiment import run_experiment
from f3ocus_ray.platform.prepare import prepare
from f3ocus_ray.scoring import score_units
from f3ocus_ray.task import score_of


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    return synthesize(
        tmp_path_factory.mktemp("data") / "mixed",
        task="mixed",
        scale=0.0005,
        min_per_client=24,
        n_clients=2,
        samples_per_client=30,
        image_size=32,
    )


def test_mixed_data_set_has_one_task_per_client_and_two_output_blocks(mixed):
    ds = load_dataset(mixed, image_size=32)
    assert ds.task == "mixed"
    assert ds.clients == [*MIXED_VQA_CLIENTS, "cls_0", "cls_1"]
    a, k = len(ds.answers), len(ds.labels)
    assert a > 0 and k == 15 and ds.num_classes == a + k
    for c in MIXED_VQA_CLIENTS:
        assert ds.client_task(c) == "vqa" and ds.output_range(c) == (0, a)
        assert ds.client_split(c, "train").answer_ids.max() < a
    for c in ("cls_0", "cls_1"):
        assert ds.client_task(c) == "multilabel" and ds.output_range(c) == (a, a + k)
        assert ds.client_split(c, "train").label_matrix.shape[1] == k
    facts = prepare_data(load_config(None, [f"data.path={mixed}", "data.image_size=32"]).data)
    assert facts.task == "mixed" and facts.output_blocks == (a, k)
    assert 0 <= facts.majority_score < 1 and facts.question_only_score is None


def test_a_client_holding_both_tasks_is_refused(tmp_path):
    from PIL import Image

    (tmp_path / "d").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "d" / "a.png")
    lines = [
        {"image": "a.png", "question": "q", "answer": "yes", "client": "c", "split": "train"},
        {"image": "a.png", "labels": ["x"], "client": "c", "split": "test"},
    ]
    (tmp_path / "d" / "annotations.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(DataError, match=r"annotations\.jsonl:2: multilabel record for client 'c'"):
        load_dataset(tmp_path / "d")


def _model(facts, units="layers"):
    spec = ModelSpec(
        name="tiny-vilt",
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        intermediate_size=64,
        patch_size=8,
        image_size=32,
        vocab_size=facts.vocab_size,
        max_text_len=16,
        num_outputs=facts.num_outputs,
        init_seed=0,
        unit_mode=units,
        output_blocks=facts.output_blocks,
    )
    return build_model(spec)


def test_each_client_trains_only_its_own_head_and_vqa_pools_into_micro_f1(mixed):
    from f3ocus_ray.data.tokenizer import tokenizer_from_json

    facts = prepare_data(load_config(None, [f"data.path={mixed}", "data.image_size=32"]).data)
    ds, tok = load_dataset(mixed, image_size=32), tokenizer_from_json(facts.tokenizer_json)
    model, space = _model(facts)
    assert len(space.task_heads) == 2
    (vqa_range, vqa_head), (cls_range, cls_head) = space.task_heads
    assert vqa_range == (0, facts.output_blocks[0]) and vqa_head and cls_head
    for client, own, other in [("chest_xray", vqa_head, cls_head), ("cls_0", cls_head, vqa_head)]:
        data = load_client_tensors(ds, tok, client, "train", 16)
        names = space.trainable(np.array([True, False]), True, data.outputs)
        assert set(own) <= set(names) and not set(other) & set(names)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        params = space.apply(model, np.array([True, False]), True, data.outputs)
        local_train(model, params, data, steps=2, batch_size=8, lr=1e-2, weight_decay=0.1, seed=0)
        for n, p in model.named_parameters():
            assert torch.equal(p, before[n]) == (n not in names), n
        # LNTK scores on the client's own head's outputs
        scores = score_units(model, space, data, n_samples=8)
        assert np.all(np.isfinite(scores.raw)) and np.all(scores.raw > 0)

    vqa = load_client_tensors(ds, tok, "chest_xray", "test", 16)
    sums = evaluate(model, vqa, 8, seed=0)
    assert sums["tp"] == sums["correct"] and sums["fp"] == sums["fn"] == sums["n"] - sums["correct"]
    assert score_of(sums, "mixed") == pytest.approx(score_of(sums, "vqa"))


@pytest.mark.slow
def test_mixed_federation_end_to_end(ray_local, mixed, tmp_path):
    cfg = load_config(
        None,
        [
            f"data.path={mixed}",
            "data.image_size=32",
            "model.num_layers=3",
            "federation.rounds=2",
            "federation.budgets=[1, 2, 1, 2, 1]",
            "federation.strategy=f3ocus",
            "scoring.n_samples=8",
            "selection.max_evals=500",
            "training.local_steps=2",
            "engine.num_workers=2",
            f"output_dir={tmp_path / 'runs'}",
            f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        ],
    )
    summary = run_experiment(cfg)
    assert set(summary.client_score) == {*MIXED_VQA_CLIENTS, "cls_0", "cls_1"}
    assert 0 <= summary.score <= 1
    # uploads: each client's selected blocks, the shared head and its own task head only
    prep = prepare(cfg)
    model, space = build_model(prep.driver_spec.worker.model)
    numel = {n: p.numel() for n, p in model.named_parameters()}
    client = mlflow.MlflowClient(cfg.tracking.uri)
    path = client.download_artifacts(summary.run_id, "masks/round_002.json", str(tmp_path))
    masks = json.loads(open(path).read())
    ds = load_dataset(mixed, image_size=32)
    expected = 0
    assert list(masks["masks"]) == prep.facts.clients
    for name, row in masks["masks"].items():
        trained = space.trainable(np.array(row, dtype=bool), True, ds.output_range(name))
        expected += sum(numel[n] for n in trained)
    [_, up] = client.get_metric_history(summary.run_id, "mbit_up_total")
    assert up.value == pytest.approx(expected * 32 / 1e6)
