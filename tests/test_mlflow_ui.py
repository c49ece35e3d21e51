"""The MLflow UI over a finished grid, as a user sees it: `f3ocus ui` serves it on loopback,
headless Chromium (Debian's, installed by tests/system_deps/chromium.sh) renders the runs page,
and the REST API behind it shows the named runs, the parent's best_method, the summary metrics
and the artifacts through the server's proxy."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from gridutil import free_port, local_env, tiny_grid

pytestmark = [pytest.mark.slow, pytest.mark.isolated]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
AXES = """
method:
  F3OCUS: {federation.strategy: f3ocus}
  last-k: {federation.strategy: last_k}
"""
NAMES = {"f3ocus-nsga2-k1-2-s0", "last-k-k1-2-s0"}


@pytest.fixture(scope="module")
def grid_folder(tmp_path_factory, small_vqa):
    tmp = tmp_path_factory.mktemp("uigrid")
    extra = "set: {scoring.n_samples: 8, selection.max_evals: 300}"
    path = tiny_grid(tmp, small_vqa, AXES, name="ui", rounds=3, extra=extra)
    done = subprocess.run(
        [sys.executable, "-m", "f3ocus_ray.cli", "grid", str(path), "--report-dir", "rep"],
        cwd=tmp,
        env=local_env(tmp),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp, done.stdout + done.stderr


def test_the_demo_prints_one_line_per_trial_and_round_and_a_ranking(grid_folder):
    _, out = grid_folder
    for name in NAMES:
        assert all(f"{name}: round {r}/3" in out for r in (1, 2, 3)), out[-3000:]
    assert "## Ranking: mean of the last 3 rounds" in out
    assert "Downloading artifacts" not in out and "Trial status" not in out


def _get(url: str, body: dict | None = None) -> bytes:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


@pytest.fixture(scope="module")
def ui(grid_folder):
    tmp, _ = grid_folder
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "f3ocus_ray.cli", "ui", "--port", str(port)],
        cwd=tmp,  # the default store: ./mlflow.db
        env=local_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        link = proc.stdout.readline().split("MLflow UI: ")[-1].strip()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            try:
                _get(base + "/health")
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "no MLflow server"
                time.sleep(1)
        yield base, link
    finally:
        proc.send_signal(signal.SIGTERM)  # f3ocus ui ends its server's process group
        assert proc.wait(timeout=60) == 0


def test_the_ui_shows_named_runs_the_best_method_and_summary_metrics(ui):
    base, link = ui
    assert link.startswith(base + "/#/experiments/") and link.endswith(
        "/runs?compareRunsMode=CHART"
    )
    exp_id = link.split("/experiments/")[1].split("/")[0]
    runs = json.loads(_get(base + "/api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id]}))
    runs = runs["runs"]
    tags = {r["info"]["run_name"]: {t["key"]: t["value"] for t in r["data"]["tags"]} for r in runs}
    [parent] = [n for n, t in tags.items() if t.get("f3ocus.role") == "grid"]
    assert set(tags) - {parent} == NAMES
    assert tags[parent]["best_method"] in {"F3OCUS", "last-k"}
    assert "## Ranking" in tags[parent]["mlflow.note.content"]
    assert tags["f3ocus-nsga2-k1-2-s0"]["method"] == "F3OCUS"
    assert len({tags[n]["mlflow.runColor"] for n in NAMES}) == 2  # a colour per method
    for r in runs:
        if r["info"]["run_name"] in NAMES:
            metrics = {m["key"] for m in r["data"]["metrics"]}
            assert {"score", "score_final", "score_best", "score_last3", "best_round"} <= metrics
            assert not any(k.startswith("client/") for k in metrics)
            # artifacts come through the server's proxy (no absolute paths in the store)
            run_id = r["info"]["run_id"]
            png = _get(f"{base}/get-artifact?path=layer_choice.png&run_uuid={run_id}")
            assert png[:4] == b"\x89PNG"


def _dom(url: str, profile: Path) -> str:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=30000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (run tests/system_deps/chromium.sh)")
def test_headless_chromium_shows_the_parent_with_its_named_trials_and_best_method(ui, tmp_path):
    """The runs page lists the grid's parent run (its trials folded under it); the parent's
    page names its child runs and shows its best_method tag."""
    base, link = ui
    exp_id = link.split("/experiments/")[1].split("/")[0]
    found = json.loads(
        _get(
            base + "/api/2.0/mlflow/runs/search",
            {"experiment_ids": [exp_id], "filter": "tags.`f3ocus.role` = 'grid'"},
        )
    )
    [parent] = found["runs"]
    runs_page = _dom(link.replace("?compareRunsMode=CHART", ""), tmp_path / "a")
    assert parent["info"]["run_name"] in runs_page
    run_page = _dom(
        f"{base}/#/experiments/{exp_id}/runs/{parent['info']['run_id']}", tmp_path / "b"
    )
    assert all(name in run_page for name in NAMES), run_page[-2000:]
    assert "best_method" in run_page
