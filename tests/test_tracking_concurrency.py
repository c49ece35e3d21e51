"""Several processes open one fresh SQLite tracking database at the same moment: MLflow's schema
creation is serialised, so every process logs its run and the database stays readable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import mlflow
import pytest

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from f3ocus_ray.platform.tracking import RunTracker
    uri, go, i = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    while not go.exists():  # all processes imported: start together
        time.sleep(0.005)
    with RunTracker(uri, "race", f"run-{i}", {"i": i}) as t:
        t.log_metrics({"m": float(i)}, step=1)
    """
)


def test_concurrent_first_runs_on_a_fresh_sqlite_database(tmp_path):
    db, go, n = tmp_path / "mlflow.db", tmp_path / "go", 6
    uri = f"sqlite:///{db}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, uri, str(go), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    time.sleep(8)  # let every child finish importing mlflow before the start signal
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("race").experiment_id])
    assert sorted(r.data.params["i"] for r in runs) == [str(i) for i in range(n)]
    assert all(r.info.status == "FINISHED" and r.data.metrics["m"] == float(r.data.params["i"])
               for r in runs)  # fmt: skip
