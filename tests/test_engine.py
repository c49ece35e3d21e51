"""The federated engine on Ray, end to end (slow: starts Ray and trains a tiny ViLT)."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import mlflow
import numpy as np
import pytest

from f3ocus_ray.config import load_config
from f3ocus_ray.fl.executors import InProcessExecutor, RayExecutor
from f3ocus_ray.fl.round import Federation
from f3ocus_ray.fl.worker import ClientWorker
from f3ocus_ray.platform.checkpoint import load_checkpoint
from f3ocus_ray.platform.experiment import run_experiment
from f3ocus_ray.platform.prepare import prepare

pytestmark = pytest.mark.slow

CLIENTS = "[chest_xray, oct, dermatoscope, blood_microscope]"


def small_config(data_path, tmp_path, *extra):
    return load_config(
        None,
        [
            f"data.path={data_path}",
            f"data.clients={CLIENTS}",
            "data.image_size=32",
            "model.num_layers=4",
            "model.patch_size=8",
            "federation.budgets=[2, 1, 2, 1]",
            "federation.strategy=last_k",
            "training.batch_size=16",
            "training.lr=3e-3",
            "engine.num_workers=2",
            f"output_dir={tmp_path / 'runs'}",
            f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
            "tracking.experiment=test",
            *extra,
        ],
    )


def test_end_to_end_beats_majority_and_tracks(ray_local, small_vqa, tmp_path):
    cfg = small_config(small_vqa, tmp_path, "federation.rounds=4", "training.local_epochs=6")
    summary = run_experiment(cfg)
    assert summary.score > summary.majority_score + 0.1, (summary.score, summary.majority_score)
    assert len(summary.rounds) == 4

    # the run folder: resolved config, tokenizer, checkpoint (tensors only)
    assert load_config(summary.run_dir / "config.yaml") == cfg
    assert (summary.run_dir / "tokenizer.json").stat().st_size > 0
    ckpt = load_checkpoint(summary.run_dir / "checkpoint.pt")
    assert ckpt["round"] == 4

    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri)
    run = client.get_run(summary.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["federation.strategy"] == "last_k"
    assert run.data.params["training.lr"] == "0.003"
    history = client.get_metric_history(summary.run_id, "score")
    assert [m.step for m in history] == [1, 2, 3, 4]
    assert history[-1].value == pytest.approx(summary.score)
    # Mbit = the transmitted tensors' parameters x 32 bits: last_k with budgets [2, 1, 2, 1]
    # sends units {2,3}, {3}, {2,3}, {3} and the head to each client
    from f3ocus_ray.models import build_model

    model, space = build_model(prepare(cfg).driver_spec.worker.model)
    unit = space.unit_sizes(model)
    numel = {n: p.numel() for n, p in model.named_parameters()}
    head = sum(numel[n] for n in space.head)
    sent = 2 * (unit[2] + unit[3]) + 2 * unit[3] + 4 * head
    for key in ("mbit_up", "mbit_down"):  # per client; totals named as totals
        values = [m.value for m in client.get_metric_history(summary.run_id, key + "_total")]
        assert values == pytest.approx([sent * 32 / 1e6] * 4)
        values = [m.value for m in client.get_metric_history(summary.run_id, key)]
        assert values == pytest.approx([sent * 32 / 1e6 / 4] * 4)
    gflops = client.get_metric_history(summary.run_id, "gflops_total")
    assert len(gflops) == 4 and all(m.value > 0 for m in gflops)
    assert not any(k.startswith("client/") for k in run.data.metrics)  # a table instead
    table = client.download_artifacts(summary.run_id, "clients.json", str(tmp_path))
    rows = json.loads(open(table).read())["data"]
    assert len(rows) == 4 * 4  # rounds x clients
    summary_metrics = client.get_run(summary.run_id).data.metrics
    assert summary_metrics["score_final"] == pytest.approx(summary.score)
    assert {"score_best", "score_last3", "best_round", "total_mbit_up"} <= set(summary_metrics)
    arts = {a.path for a in client.list_artifacts(summary.run_id, "masks")}
    assert "masks/round_001.json" in arts
    assert "layer_choice.png" in {a.path for a in client.list_artifacts(summary.run_id)}
    path = client.download_artifacts(summary.run_id, "masks/round_001.json", str(tmp_path))
    saved = json.loads(open(path).read())
    # last_k with budgets [2, 1, 2, 1] over 4 layers
    assert saved["masks"]["chest_xray"] == [0, 0, 1, 1]
    assert saved["masks"]["oct"] == [0, 0, 0, 1]


def _run_rounds(ray, prep, rounds):
    from f3ocus_ray.fl.driver import Driver

    driver = Driver.remote(prep.driver_spec)
    try:
        results = [ray.get(driver.run_round.remote()) for _ in range(rounds)]
        state = ray.get(driver.state_dict.remote())
    finally:
        ray.kill(driver)
    return results, state


def test_one_vs_two_workers_identical_and_worker_kill_recovers(ray_local, small_vqa, tmp_path):
    ray = ray_local
    base = ["federation.rounds=3", "training.local_steps=6", "federation.strategy=random"]
    one = prepare(small_config(small_vqa, tmp_path, *base, "engine.num_workers=1"))
    two = prepare(small_config(small_vqa, tmp_path, *base, "engine.num_workers=2"))

    res1, state1 = _run_rounds(ray, one, 3)
    res2, state2 = _run_rounds(ray, two, 3)
    for a, b in zip(res1, res2, strict=True):
        assert a.score == b.score and a.loss == b.loss
        assert (a.masks == b.masks).all()
        assert a.train_loss == b.train_loss
    for name in state1["state"]:
        np.testing.assert_array_equal(state1["state"][name], state2["state"][name])

    # the same round on the in-process executor (no Ray) gives the same numbers
    executor = InProcessExecutor(one.driver_spec.worker)
    try:
        federation = Federation(one.driver_spec, executor)
        local = [federation.run_round() for _ in range(3)]
    finally:
        executor.close()
    for a, b in zip(local, res1, strict=True):
        assert a.score == b.score and a.train_loss == b.train_loss and a.mbit_up == b.mbit_up
    for name in state1["state"]:
        np.testing.assert_array_equal(federation.state[name], state1["state"][name])

    # the same 2-worker run with a worker killed while it trains a client in round 2 ends
    # identically: the worker is restarted and the client redone
    markers = tmp_path / "markers"
    markers.mkdir()
    executor = RayExecutor(two.driver_spec.worker, two.driver_spec.pool, _held_worker(markers))
    try:
        federation = Federation(two.driver_spec, executor)
        results = [federation.run_round()]
        for m in markers.iterdir():
            m.unlink()
        (markers / "hold").touch()  # round 2's train jobs wait at their start
        with ThreadPoolExecutor(1) as pool:
            round_2 = pool.submit(federation.run_round)
            started = _first_marker(markers)
            victim, client = int(started.name.split("-")[1]), started.name.split("-", 2)[2]
            os.kill(victim, signal.SIGKILL)
            (markers / "hold").unlink()
            results.append(round_2.result(timeout=300))
        # the killed job ran again, in another process
        started_in = {m.name.split("-")[1] for m in markers.glob(f"started-*-{client}")}
        results.append(federation.run_round())
        pids = executor.call_all("pid")
    finally:
        executor.close()
    assert victim not in pids  # the worker was replaced
    assert str(victim) in started_in and len(started_in) == 2, started_in
    for a, b in zip(results, res2, strict=True):
        assert a.score == b.score and a.train_loss == b.train_loss
    for name in state2["state"]:
        np.testing.assert_array_equal(federation.state[name], state2["state"][name])


def _held_worker(markers):
    """A ClientWorker that marks each train job's start (started-<pid>-<client>) and waits
    there while markers/hold exists: the test kills a worker at a known point."""

    class HeldWorker(ClientWorker):
        def train(self, client, *args):
            (markers / f"started-{os.getpid()}-{client}").touch()
            deadline = time.monotonic() + 120
            while (markers / "hold").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            return super().train(client, *args)

    return HeldWorker


def _first_marker(markers, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = sorted(markers.glob("started-*"))
        if started:
            return started[0]
        time.sleep(0.01)
    raise AssertionError("no train job started")


def test_clients_score_units_on_schedule_and_scores_are_logged(ray_local, small_vqa, tmp_path):
    """LNTK scores computed on the workers every 2nd round equal a direct computation."""
    import torch

    from f3ocus_ray.data.client_tensors import load_client_tensors, open_dataset
    from f3ocus_ray.models import build_model
    from f3ocus_ray.scoring import score_units
    from f3ocus_ray.seeding import derive_score_seed

    cfg = small_config(
        small_vqa,
        tmp_path,
        "federation.rounds=3",
        "training.local_steps=3",
        "scoring.schedule=every_k",
        "scoring.every_k=2",
        "scoring.n_samples=8",
    )
    summary = run_experiment(cfg)
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri)
    arts = {a.path for a in client.list_artifacts(summary.run_id, "scores")}
    assert arts == {"scores/round_001.json", "scores/round_003.json"}
    # the heatmaps are stepped images (the UI's slider), one per scoring round
    images = [a.path for a in client.list_artifacts(summary.run_id, "images")]
    steps = sorted(p.split("+")[2] for p in images if p.startswith("images/scores+step+"))
    assert steps == ["1", "1", "3", "3"], images  # a .png and its compressed preview
    path = client.download_artifacts(summary.run_id, "scores/round_001.json", str(tmp_path))
    logged = json.loads(open(path).read())
    assert logged["method"] == "lntk" and len(logged["units"]) == 4
    for c in summary.clients:
        assert sum(logged["normalised"][c]) == pytest.approx(1.0)
        assert all(v > 0 for v in logged["raw"][c])
    assert len(client.get_metric_history(summary.run_id, "seconds_score")) == 3

    # round 1's scores are those of the initial model: recompute one client here
    ws = prepare(cfg).driver_spec.worker
    model, space = build_model(ws.model)
    torch.set_num_threads(1)
    ds, tok = open_dataset(ws.data_path, ws.image_size, ws.tokenizer_json)
    data = load_client_tensors(ds, tok, "oct", "train", ws.max_text_len)
    direct = score_units(model, space, data, n_samples=8, seed=derive_score_seed(cfg.seed, 0, 1))
    np.testing.assert_allclose(logged["raw"]["oct"], direct.raw, rtol=1e-6)


@pytest.mark.parametrize("algorithm", ["nsga2", "sa"])
def test_f3ocus_in_the_loop_spreads_layers_more_than_client_top_k(
    ray_local, small_vqa, tmp_path, algorithm
):
    cfg = small_config(
        small_vqa,
        tmp_path,
        "federation.rounds=2",
        "training.local_steps=2",
        "federation.strategy=f3ocus",
        f"selection.algorithm={algorithm}",
        "selection.max_evals=2000",
        "scoring.n_samples=8",
        "model.num_layers=6",
        "federation.budgets=[3, 2, 3, 2]",
    )
    summary = run_experiment(cfg)
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri)

    def history(key):
        return [m.value for m in client.get_metric_history(summary.run_id, key)]

    ours, top_k = history("usage_variance"), history("selection_topk_usage_variance")
    assert len(ours) == len(top_k) == 2
    assert all(a <= b for a, b in zip(ours, top_k, strict=True))
    assert any(a < b for a, b in zip(ours, top_k, strict=True)), (ours, top_k)
    arts = {a.path for a in client.list_artifacts(summary.run_id, "pareto")}
    assert arts == {"pareto/round_001.png", "pareto/round_002.png"}
    for r in (1, 2):
        path = client.download_artifacts(summary.run_id, f"masks/round_00{r}.json", str(tmp_path))
        masks = json.loads(open(path).read())["masks"]
        assert [sum(masks[c]) for c in summary.clients] == [3, 2, 3, 2]


def test_corrupt_image_fails_the_run_cleanly(ray_local, small_vqa, tmp_path, monkeypatch):
    """An image that turns unreadable after the launcher's image check (tests/test_image_check.py
    holds that check) is found on a worker: the error names the file, the MLflow run is FAILED
    (never left RUNNING), and the CLI exits with code 2."""
    import shutil

    import f3ocus_ray.platform.data_prep as data_prep

    checked = []
    monkeypatch.setattr(data_prep, "check_images", lambda *a, **k: checked.append(a))

    from f3ocus_ray.cli import main
    from f3ocus_ray.data import DataError, read_annotations

    data = tmp_path / "broken"
    shutil.copytree(small_vqa, data)
    victim = next(r for r in read_annotations(data) if r.client == "oct" and r.split == "train")
    (data / victim.image).write_bytes(b"not a png")
    cfg = small_config(data, tmp_path, "federation.rounds=2", "training.local_steps=1")
    with pytest.raises(DataError, match=victim.image):
        run_experiment(cfg)
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri)
    runs = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert checked  # the launcher's check was skipped, so the worker met the image

    args = ["run", str(tmp_path / "none.yaml")]
    (tmp_path / "none.yaml").write_text(cfg.to_yaml())
    assert main(args) == 2


def test_adapter_units_with_lntk_transmit_only_the_selected_adapters(
    ray_local, small_vqa, tmp_path
):
    from f3ocus_ray.models import build_model

    cfg = small_config(
        small_vqa,
        tmp_path,
        "federation.rounds=1",
        "training.local_steps=2",
        "model.unit_mode=adapters",
        "federation.strategy=lntk",
        "scoring.n_samples=8",
    )
    summary = run_experiment(cfg)
    model, space = build_model(prepare(cfg).driver_spec.worker.model)
    adapter = int(space.unit_sizes(model)[0])
    head = sum(p.numel() for n, p in model.named_parameters() if n in set(space.head))
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri)
    [up] = client.get_metric_history(summary.run_id, "mbit_up_total")
    assert up.value == pytest.approx((6 * adapter + 4 * head) * 32 / 1e6)  # budgets [2,1,2,1]
    path = client.download_artifacts(summary.run_id, "scores/round_001.json", str(tmp_path))
    scores = json.loads(open(path).read())
    assert scores["units"] and all(v > 0 for row in scores["raw"].values() for v in row)
    ckpt = load_checkpoint(summary.run_dir / "checkpoint.pt")
    assert all(".adapter." in n or n in space.head for n in ckpt["state"])


def test_training_that_diverges_fails_the_run(ray_local, small_vqa, tmp_path):
    """A NaN loss ends the run with a user error (exit 2 from the CLI) and a FAILED run, not a
    FINISHED one; the checkpoint keeps the last finite round, if any."""
    from f3ocus_ray.errors import TrainingDiverged

    cfg = small_config(
        small_vqa, tmp_path, "federation.rounds=2", "training.local_steps=3", "training.lr=1e30"
    )
    with pytest.raises(
        TrainingDiverged, match="training diverged in round 1: clients .* not finite"
    ):
        run_experiment(cfg)
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri)
    exp = client.get_experiment_by_name("test")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FAILED"
    assert not client.get_metric_history(run.info.run_id, "score")  # no round was logged


def test_a_run_that_died_resumes_to_the_uninterrupted_result(ray_local, small_vqa, tmp_path):
    """A run that dies after round 2's checkpoint (here its process raises, as when the driver
    is killed) continues with `f3ocus run --resume RUN_DIR` in the same MLflow run, and ends
    exactly where an uninterrupted run ends."""
    from f3ocus_ray.cli import main
    from f3ocus_ray.platform.experiment import RunOptions

    cfg = small_config(
        small_vqa, tmp_path, "federation.rounds=3", "training.local_steps=4",
        "federation.strategy=random",
    )  # fmt: skip
    full = run_experiment(cfg, options=RunOptions(run_dir=tmp_path / "runs" / "full"))

    class Died(Exception):
        pass

    def die_after_round_2(res, ckpt):
        if res.round == 2:
            raise Died

    run_dir = tmp_path / "runs" / "died"
    with pytest.raises(Died):
        run_experiment(cfg, options=RunOptions(run_dir=run_dir, on_round=die_after_round_2))
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri)
    exp = client.get_experiment_by_name("test").experiment_id
    (died,) = [r for r in client.search_runs([exp]) if r.info.run_name == "died"]
    assert died.info.status == "FAILED" and load_checkpoint(run_dir / "checkpoint.pt")["round"] == 2

    assert main(["run", "--resume", str(run_dir)]) == 0
    (run,) = [r for r in client.search_runs([exp]) if r.info.run_name == "died"]  # the same run
    assert run.info.run_id == died.info.run_id and run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "score")
    assert [m.step for m in history] == [1, 2, 3]
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == [
        r["score"] for r in full.rounds
    ]
    a, b = (
        load_checkpoint(run_dir / "checkpoint.pt"),
        load_checkpoint(full.run_dir / "checkpoint.pt"),
    )
    for name in b["state"]:
        np.testing.assert_array_equal(a["state"][name], b["state"][name])
