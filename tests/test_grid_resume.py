"""Resume: a grid whose process is killed mid-trial, resumed with --resume, ends with every
trial finished once, no duplicate MLflow runs, and the interrupted trial's metrics equal to an
uninterrupted run's (slow: two grid processes with their own local Ray)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import psutil
import pytest
from gridutil import local_env, tiny_grid

from f3ocus_ray.platform.experiment import RunOptions, run_experiment
from f3ocus_ray.platform.grid_spec import load_grid

pytestmark = pytest.mark.slow

F3OCUS = str(Path(sys.executable).parent / "f3ocus")


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the grid process and everything it started (its own Ray), nothing else."""
    try:
        family = [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        family = [proc.pid]
    for pid in family:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)


def _trial_progress(db: Path) -> list[tuple[str, str, int]]:
    """(trial, status, rounds logged) per trial run, read-only with sqlite3: an MlflowClient
    would run MLflow's schema migrations on a database the grid process is still creating."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
        return con.execute(
            """SELECT t.value, r.status,
                      (SELECT COUNT(*) FROM metrics m WHERE m.run_uuid = r.run_uuid
                                                        AND m.key = 'score')
               FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'f3ocus.trial'"""
        ).fetchall()


def _runs(db: Path):
    client = mlflow.MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("tr")
    if exp is None:
        return client, []
    runs = client.search_runs([exp.experiment_id], max_results=100)
    return client, [r for r in runs if r.data.tags.get("f3ocus.role") != "grid"]


def test_killed_grid_resumes_without_loss_or_duplicates(ray_local, small_vqa, tmp_path):
    rounds = 6
    path = tiny_grid(tmp_path, small_vqa, "seed: [0, 1]", name="tr", rounds=rounds)
    raytmp = Path(f"/tmp/rt{os.getpid()}")
    raytmp.mkdir(exist_ok=True)
    env = local_env(raytmp)
    log = open(tmp_path / "first.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [F3OCUS, "grid", str(path)], cwd=tmp_path, env=env, stdout=log, stderr=log
    )
    db = tmp_path / "mlflow.db"
    interrupted = None
    try:
        deadline = time.time() + 240
        while time.time() < deadline and interrupted is None:
            time.sleep(0.2)
            if proc.poll() is not None:
                pytest.fail(
                    "the grid ended before it could be killed: "
                    + (tmp_path / "first.log").read_text()[-3000:]
                )
            if not db.exists():
                continue
            try:
                trials = _trial_progress(db)
            except sqlite3.Error:  # the database is being created
                continue
            if any(status == "FINISHED" for _, status, _ in trials):
                for trial, status, logged in trials:
                    if status == "RUNNING" and 1 <= logged < rounds - 1:
                        interrupted = trial
    finally:
        _kill_tree(proc)
    assert interrupted is not None, "never saw a finished trial and one in flight"

    done = subprocess.run(
        [F3OCUS, "grid", str(path), "--resume"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 TERMINATED" in done.stdout

    client, runs = _runs(db)
    assert sorted(r.data.tags["f3ocus.trial"] for r in runs) == [
        "trial_00000",
        "trial_00001",
    ]  # one run per trial: none duplicated
    assert all(r.info.status == "FINISHED" for r in runs)
    for r in runs:
        steps = [m.step for m in client.get_metric_history(r.info.run_id, "score")]
        assert steps == list(range(1, rounds + 1)), steps  # no round lost, none logged twice
    # the interrupted trial's metrics equal an uninterrupted run's
    grid = load_grid(path, cwd=tmp_path)
    trial = next(t for t in grid.trials if t.key == interrupted)
    cfg = trial.cfg.model_copy(
        update={"tracking": trial.cfg.tracking.model_copy(update={"enabled": False})}
    )
    ref = run_experiment(cfg, options=RunOptions(run_dir=tmp_path / "ref"))
    run = next(r for r in runs if r.data.tags["f3ocus.trial"] == interrupted)
    shutil.rmtree(raytmp, ignore_errors=True)
    for key in ("score", "loss", "train_loss"):
        got = [
            m.value
            for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
        ]
        assert got == pytest.approx([x[key] for x in ref.rounds], rel=1e-6, abs=1e-9), key
