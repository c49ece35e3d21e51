"""The cluster's tracking server for real: `cluster/mlflow_server.sh` starts PostgreSQL (as a
non-root user, on loopback) and `mlflow server` against it, with basic-auth and proxied
artifacts; 8 processes then log runs at once through the project's tracking code. No metric is
lost, no run is left RUNNING, and the runs are in PostgreSQL. A client without an account, or
with a wrong password, is refused; `add-user` gives a client an account of its own.

Needs PostgreSQL's server binaries and, as root, the user `f3ocus-pg`:
`tests/system_deps/postgresql.sh` (which `make test` runs) installs both."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.isolated

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "cluster" / "mlflow_server.sh"
PG_USER = "f3ocus-pg"
N_PROCS, N_STEPS = 8, 20

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from f3ocus_ray.platform.tracking import RunTracker
    uri, go, i, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    go.with_name(f"ready-{i}").touch()
    while not go.exists():  # all processes imported: start together
        time.sleep(0.01)
    with RunTracker(uri, "pg_race", f"trial-{i}", {"i": i}, key=f"pg/{i}") as t:
        for step in range(1, n + 1):
            t.log_metrics({"score": i + step / 1000, "loss": 1.0 / step}, step=step)
        t.log_text(f"trial {i}", "note.txt")
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("PostgreSQL's server is not installed: run tests/system_deps/postgresql.sh")
    return str(Path(found[-1]).parent)


def _pg_user() -> str | None:
    """The non-root user PostgreSQL runs as when we are root (None: ourselves)."""
    if os.getuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        pytest.skip(f"no user {PG_USER}: run tests/system_deps/postgresql.sh")
    return PG_USER


@pytest.fixture(scope="module")
def server():
    pg_bin = _pg_bin()
    pg_user = _pg_user()
    base = Path(tempfile.mkdtemp(prefix="f3pg-", dir="/tmp"))  # short: a socket path is bounded
    base.chmod(0o711)  # PostgreSQL's user reaches its folder inside
    home = base / "home"
    home.mkdir()
    (base / "cluster.env").write_text(f"F3OCUS_ARTIFACTS={base / 'artifacts'}\n")
    port, pg_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "HOME": str(home),
        "F3OCUS_ENV_FILE": str(base / "cluster.env"),
        "F3OCUS_MLFLOW_DIR": str(base / "mlflow"),
        "F3OCUS_VENV": sys.prefix,
        "F3OCUS_MLFLOW_PORT": str(port),
        "F3OCUS_PG_PORT": str(pg_port),
        "F3OCUS_MLFLOW_WORKERS": "2",
        "F3OCUS_PG_BIN": pg_bin,
        **({"F3OCUS_PG_USER": pg_user} if pg_user else {}),
    }
    for k in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(k, None)

    def script(*args: str) -> subprocess.CompletedProcess:
        cmd = ["bash", str(SERVER), *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)

    try:
        done = script("start")
        log = base / "mlflow" / "server.log"
        assert done.returncode == 0, done.stderr + (log.read_text()[-3000:] if log.exists() else "")
        yield {
            "uri": f"http://127.0.0.1:{port}",
            "pg_port": pg_port,
            "base": base,
            "home": home,
            "script": script,
            "pg_user": pg_user,
        }
    finally:
        stopped = script("stop")
        shutil.rmtree(base, ignore_errors=True)
    assert stopped.returncode == 0, stopped.stderr


def _credentials(home: Path) -> dict[str, str]:
    lines = (home / ".mlflow" / "credentials").read_text().splitlines()
    pairs = dict(line.split(" = ", 1) for line in lines if " = " in line)
    return {
        "MLFLOW_TRACKING_USERNAME": pairs["mlflow_tracking_username"],
        "MLFLOW_TRACKING_PASSWORD": pairs["mlflow_tracking_password"],
    }


def test_eight_processes_log_to_mlflow_on_postgresql(server, tmp_path, monkeypatch):
    """8 processes at once, each a run of N_STEPS rounds of 2 metrics and an artifact."""
    import mlflow

    uri, base = server["uri"], server["base"]
    creds = _credentials(server["home"])
    assert creds["MLFLOW_TRACKING_USERNAME"] == "f3ocus-head"  # the head's account, not admin
    assert oct((server["home"] / ".mlflow" / "credentials").stat().st_mode & 0o777) == "0o600"

    go = tmp_path / "go"
    env = {**os.environ, **creds}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, uri, str(go), str(i), str(N_STEPS)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(N_PROCS)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < N_PROCS and time.monotonic() < deadline:
        time.sleep(0.05)  # every child has imported mlflow: start them together
    go.touch()
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]

    for k, v in creds.items():
        monkeypatch.setenv(k, v)
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("pg_race")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    assert sorted(int(r.data.params["i"]) for r in runs) == list(range(N_PROCS))
    assert {r.info.status for r in runs} == {"FINISHED"}  # none left RUNNING
    for r in runs:
        i = int(r.data.params["i"])
        expected = {"score": {s: i + s / 1000 for s in range(1, N_STEPS + 1)}}
        expected["loss"] = {s: 1.0 / s for s in range(1, N_STEPS + 1)}
        for name, values in expected.items():
            history = client.get_metric_history(r.info.run_id, name)
            assert {m.step: m.value for m in history} == pytest.approx(values), (i, name)
            assert len(history) == N_STEPS  # each logged once
        # artifacts went through the server (--serve-artifacts) to the destination folder
        local = client.download_artifacts(r.info.run_id, "note.txt", str(tmp_path))
        assert Path(local).read_text() == f"trial {i}"
    assert len(list((base / "artifacts").rglob("note.txt"))) == N_PROCS

    # the runs are in PostgreSQL (queried as its role `mlflow`, over the socket in its folder)
    prefix = ["runuser", "-u", server["pg_user"], "--"] if server["pg_user"] else []
    pg_dir = base / "mlflow" / "pg"
    sql = "SELECT status, count(*) FROM runs GROUP BY status"
    pg = subprocess.run(
        [*prefix, "env", f"PGPASSFILE={pg_dir / 'pgpass'}", f"{_pg_bin()}/psql", "-h", str(pg_dir),
         "-p", str(server["pg_port"]), "-U", "mlflow", "-d", "mlflow", "-tAc", sql],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert pg.returncode == 0, pg.stderr
    assert pg.stdout.split() == [f"FINISHED|{N_PROCS}"]


def test_clients_need_an_account_of_their_own(server, monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = server["uri"]
    for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(MlflowException, match="401|nauthorized|credentials"):
        mlflow.MlflowClient(uri).search_experiments()  # a node without credentials
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "admin")
    with pytest.raises(MlflowException, match="401|nauthorized|credentials"):
        mlflow.MlflowClient(uri).search_experiments()  # no default admin password

    done = server["script"]("add-user", "alice")
    assert done.returncode == 0, done.stderr
    password = done.stdout.strip().rsplit(" ", 1)[-1]
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("alice_exp")
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "m", 1.0)
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}
