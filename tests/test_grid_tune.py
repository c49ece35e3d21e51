"""Grids on local Ray Tune: one FINISHED MLflow run per trial, placement groups, Optuna search,
the report, and a grid logging over HTTP to a real `mlflow server` (slow: runs trials)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
from gridutil import free_port, tiny_grid

from f3ocus_ray.platform.grid_spec import load_grid
from f3ocus_ray.platform.report import build_report
from f3ocus_ray.platform.tune_grid import run_grid

pytestmark = pytest.mark.slow


def _trial_runs(client, grid_name):
    exp = client.get_experiment_by_name(grid_name)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("f3ocus.role") == "grid"]
    trials = [r for r in runs if r.data.tags.get("f3ocus.role") != "grid"]
    return parents, sorted(trials, key=lambda r: r.data.tags["f3ocus.trial"])


def test_grid_on_local_ray_one_finished_run_per_trial(ray_local, small_vqa, tmp_path):
    path = tiny_grid(tmp_path, small_vqa, "federation.strategy: [last_k, random]\nseed: [3]")
    grid = load_grid(path, cwd=tmp_path)
    # the PG of a trial is 2 CPUs (driver 1 + worker 1) = the whole local Ray: a worker
    # scheduled outside the trial's placement group would wait forever
    out = run_grid(grid)
    assert out.statuses == {"TERMINATED": 2}
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    parents, trials = _trial_runs(client, "tg")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(trials) == 2
    pgs = set()
    for run, strategy in zip(trials, ["last_k", "random"], strict=True):
        assert run.info.status == "FINISHED"
        tags, params = run.data.tags, run.data.params
        assert tags["axis.federation.strategy"] == strategy and tags["axis.seed"] == "3"
        assert params["axis.federation.strategy"] == strategy and params["seed"] == "3"
        assert params["federation.strategy"] == strategy
        assert tags["mlflow.parentRunId"] == out.parent_run_id
        assert tags["f3ocus.placement_group_bundles"] == "[{'CPU': 1.0}, {'CPU': 1.0}]"
        pgs.add(tags["f3ocus.placement_group"])
        hist = client.get_metric_history(run.info.run_id, "score")
        assert [m.step for m in hist] == [1, 2]
        arts = {a.path for a in client.list_artifacts(run.info.run_id, "masks")}
        assert {"masks/round_001.json", "masks/round_002.json"} <= arts
        assert "config.yaml" in {a.path for a in client.list_artifacts(run.info.run_id)}
    # every trial ran inside a placement group; the two ran one after the other, so the second
    # reused the first's trial actor and its placement group (reuse_actors)
    assert "none" not in pgs and len(pgs) == 1

    # the comparison report, from MLflow alone
    folder = build_report("tg", f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "rep")
    md = (folder / "comparison.md").read_text()
    assert "last-k-k1-2-s3 | FINISHED" in md and "## federation.strategy" in md
    assert (folder / "rounds.png").stat().st_size > 0
    # the paper's tables: one row per method, the task as column, costs per client and round
    tables = (folder / "tables.md").read_text()
    assert "## Table 1" in tables and "## Table 2" in tables
    t1 = (folder / "table1.csv").read_text().splitlines()
    assert t1[0].startswith("method,") and {r.split(",")[0] for r in t1[1:]} == {"last_k", "random"}
    for png in ("rounds_by_method_", "layer_choice_"):
        assert len(list(folder.glob(f"{png}*.png"))) == 1


def test_optuna_search_over_lr(ray_local, small_vqa, tmp_path):
    search = """
    search:
      metric: score
      mode: max
      num_samples: 2
      max_concurrent: 1
      space:
        training.lr: {type: loguniform, low: 1.0e-4, high: 1.0e-2}
    """
    path = tiny_grid(tmp_path, small_vqa, "seed: [0]", name="ts", rounds=1, extra=search)
    out = run_grid(load_grid(path, cwd=tmp_path))
    assert out.statuses == {"TERMINATED": 2}
    assert 1e-4 <= out.best["config"]["training.lr"] <= 1e-2
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    _, trials = _trial_runs(client, "ts")
    lrs = sorted(float(r.data.params["training.lr"]) for r in trials)
    assert len(trials) == 2 and lrs[0] != lrs[1]
    assert all(r.info.status == "FINISHED" for r in trials)


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "server.log", "w"),  # noqa: SIM115
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError((tmp_path / "server.log").read_text()[-2000:])
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers: our own group
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a worker still draining: it is ours to end
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_grid_logs_over_http_to_a_mlflow_server(ray_local, small_vqa, tmp_path, mlflow_server):
    path = tiny_grid(tmp_path, small_vqa, "federation.strategy: [last_k, first_k]", name="th")
    grid = load_grid(path, [f"tracking.uri={mlflow_server}"], cwd=tmp_path)
    out = run_grid(grid)
    assert out.statuses == {"TERMINATED": 2}
    client = mlflow.MlflowClient(mlflow_server)
    parents, trials = _trial_runs(client, "th")
    assert len(parents) == 1 and len(trials) == 2
    for run in trials:
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "score")] == [1, 2]
        local = client.download_artifacts(run.info.run_id, "masks/round_002.json", str(tmp_path))
        masks = json.loads(Path(local).read_text())["masks"]
        expected = (
            [0, 0, 1, 1] if run.data.tags["axis.federation.strategy"] == "last_k" else [1, 1, 0, 0]
        )
        assert masks["chest_xray"] == expected
    # the artifacts went through the server into its artifact root
    assert any((tmp_path / "artifacts").rglob("round_002.json"))
    assert not (tmp_path / "mlflow.db").exists()


def test_dry_run_calibrates_its_estimate_from_one_timed_round(ray_local, small_vqa, tmp_path):
    from f3ocus_ray.platform.dry_run import dry_run

    # 10,000 rounds are never run: the calibration times one round of the first trial
    extra = "cost: {setup_seconds: 0}"
    path = tiny_grid(tmp_path, small_vqa, "seed: [0, 1]", name="tc", rounds=10_000, extra=extra)
    said: list[str] = []
    text = dry_run(load_grid(path, cwd=tmp_path), calibrate=True, progress=said.append)
    [line] = [s for s in said if s.startswith("calibration:")]
    per = float(line.split()[1])  # seconds per client-round
    assert 0 < per < 30
    assert "estimate (calibrated for tiny-vilt, stated for the others)" in text
    cpu_hours = float(text.split("estimate (")[1].split("): ")[1].split(" CPU-hours")[0])
    # 2 trials x 10,000 rounds x 4 clients on 1 worker x per, on bundles of 1 + 1 CPUs; `per`
    # is printed to 0.01 s and the estimate to 0.1 h
    factor = 2 * 10_000 * 4 / 3600 * 2
    assert factor * (per - 0.005) - 0.05 <= cpu_hours <= factor * (per + 0.005) + 0.05
