"""`ray job submit` of a tiny grid to a Ray head started by the test (loopback only, its own
temp dir), stopped by the test (slow)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import psutil
import pytest
from gridutil import free_port, local_env, tiny_grid

# own Ray head: run in its own pytest process (see the Makefile), not beside the session Ray
pytestmark = [pytest.mark.slow, pytest.mark.isolated]

BIN = Path(sys.executable).parent


@pytest.fixture
def ray_head(tmp_path):
    raytmp = Path(f"/tmp/rh{os.getpid()}")
    raytmp.mkdir(exist_ok=True)
    port, dash = free_port(), free_port()
    # the head's agents get free ports too: Ray's defaults (e.g. 52365) clash with any other
    # Ray on this machine, and a job agent that cannot bind refuses every submission
    agents = [
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--metrics-export-port={free_port()}",
    ]
    env = local_env()
    log = open(tmp_path / "head.log", "w")  # noqa: SIM115
    head = subprocess.Popen(
        [
            str(BIN / "ray"), "start", "--head", "--block",
            "--node-ip-address=127.0.0.1", f"--port={port}",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
            "--include-dashboard=true", "--num-cpus=2", "--num-gpus=0",
            f"--temp-dir={raytmp}", "--disable-usage-stats", *agents,
        ],
        env=env, stdout=log, stderr=log, start_new_session=True,
    )  # fmt: skip
    address = f"http://127.0.0.1:{dash}"
    try:
        from ray.job_submission import JobSubmissionClient

        for _ in range(240):
            try:
                JobSubmissionClient(address).list_jobs()
                break
            except Exception:
                if head.poll() is not None:
                    raise RuntimeError((tmp_path / "head.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield address
    finally:
        family = [head.pid]
        try:
            family += [c.pid for c in psutil.Process(head.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops its own node on SIGTERM
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        for pid in family:  # what survived of our own head
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(raytmp, ignore_errors=True)


def test_ray_job_submit_runs_a_grid(ray_head, small_vqa, tmp_path):
    wd = tmp_path / "wd"
    wd.mkdir()
    path = tiny_grid(tmp_path, small_vqa, "federation.strategy: [last_k, first_k]", name="tj")
    shutil.copy(path, wd / "grid.yaml")
    sub_id = f"tj-{os.getpid()}"
    command = [
        str(BIN / "ray"), "job", "submit", "--address", ray_head, "--working-dir", str(wd),
        "--submission-id", sub_id, "--", str(BIN / "f3ocus"), "grid", "grid.yaml",
    ]  # fmt: skip
    # the head's job agent may come up after its HTTP server on a busy machine; Ray then
    # refuses the submission at once ("No available agent"), so such a refusal is retried
    for _ in range(60):
        done = subprocess.run(command, env=local_env(), capture_output=True, text=True, timeout=400)
        if "No available agent" not in done.stdout + done.stderr:
            break
        time.sleep(2)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    from ray.job_submission import JobStatus, JobSubmissionClient

    assert JobSubmissionClient(ray_head).get_job_status(sub_id) == JobStatus.SUCCEEDED
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tj")
    runs = client.search_runs([exp.experiment_id])
    trials = [r for r in runs if r.data.tags.get("f3ocus.role") != "grid"]
    assert len(trials) == 2 and all(r.info.status == "FINISHED" for r in trials)
    for r in trials:
        assert [m.step for m in client.get_metric_history(r.info.run_id, "score")] == [1, 2]
