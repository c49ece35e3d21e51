"""`f3ocus runs gc`: a run whose process was killed with SIGKILL stays RUNNING in MLflow; gc
ends it as KILLED, and leaves a live run alone."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import mlflow
import pytest

from f3ocus_ray.cli import main

pytestmark = pytest.mark.slow  # two processes importing MLflow

CHILD = textwrap.dedent(
    """
    import sys, time
    from f3ocus_ray.platform.tracking import RunTracker
    t = RunTracker(sys.argv[1], "gc", sys.argv[2], {})
    t.log_metrics({"score": 0.5}, step=1)
    print("ready", flush=True)
    time.sleep(600)
    """
)


def _start(uri: str, name: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, uri, name], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_gc_ends_the_runs_of_killed_processes_only(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    killed, live = _start(uri, "killed"), _start(uri, "live")
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert killed.returncode == -signal.SIGKILL  # the fault happened
        client = mlflow.MlflowClient(uri)
        exp = client.get_experiment_by_name("gc").experiment_id
        status = {r.info.run_name: r.info.status for r in client.search_runs([exp])}
        assert status == {"killed": "RUNNING", "live": "RUNNING"}

        assert main(["runs", "gc", "--tracking-uri", uri, "--dry-run"]) == 0
        assert "1 orphaned run would end" in capsys.readouterr().out
        assert main(["runs", "gc", "--tracking-uri", uri]) == 0
        out = capsys.readouterr().out
        assert "ended run" in out and "(gc/killed) as KILLED" in out and "is gone" in out
        runs = {r.info.run_name: r for r in client.search_runs([exp])}
        assert runs["killed"].info.status == "KILLED" and runs["live"].info.status == "RUNNING"
        assert "gone" in runs["killed"].data.tags["f3ocus.gc"]
    finally:
        live.kill()
        live.wait(timeout=30)
