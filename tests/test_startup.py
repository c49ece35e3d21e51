"""Start-up: a local Ray starts lean (no dashboard unless `--dashboard`, no autoscaler monitor),
the driver of a local run lives in the launching process, and a worker imports only what it
uses."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from f3ocus_ray.cli import main
from f3ocus_ray.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "experiments" / "demo.yaml")
GRID = str(ROOT / "experiments" / "smoke_grid.yaml")
# what a ClientWorker never needs: tracking, plots, the server's search, the grid's tuner
NOT_IN_A_WORKER = {"mlflow", "matplotlib", "pandas", "pymoo", "optuna"}


class _Stop(UserError):
    pass


@pytest.mark.parametrize("flag", [[], ["--dashboard"]])
def test_dashboard_flag_reaches_run_and_grid(monkeypatch, flag):
    import f3ocus_ray.platform.experiment as experiment
    import f3ocus_ray.platform.tune_grid as tune_grid

    seen = []

    def fake_run(cfg, progress=None, options=None):
        seen.append(("run", options.dashboard))
        raise _Stop("stop")

    def fake_grid(grid, **kw):
        seen.append(("grid", kw["dashboard"]))
        raise _Stop("stop")

    monkeypatch.setattr(experiment, "run_experiment", fake_run)
    monkeypatch.setattr(tune_grid, "run_grid", fake_grid)
    assert main(["run", DEMO, *flag]) == 2
    assert main(["grid", GRID, *flag]) == 2
    assert seen == [("run", bool(flag)), ("grid", bool(flag))]


@pytest.mark.parametrize("dashboard", [False, True])
def test_a_local_ray_starts_without_dashboard_unless_asked(monkeypatch, dashboard):
    """ray.init gets include_dashboard as asked, while the head's Node class leaves out the
    autoscaler monitor and (without the dashboard) the API server; it is put back after."""
    import ray
    from ray._private import node as ray_node

    from f3ocus_ray.platform import ray_session

    original = ray_node.Node
    calls = []

    class Params:  # the RayParams fields LeanHead sets
        no_monitor = False
        include_log_monitor = None

        def update_if_absent(self, **kw):
            for k, v in kw.items():
                if getattr(self, k) is None:
                    setattr(self, k, v)

    def fake_init(**kw):
        node_cls = ray_node.Node
        params = Params()
        monkeypatch.setattr(original, "__init__", lambda self, p, *a, **k: None)
        started = []
        monkeypatch.setattr(original, "start_api_server", lambda self, **k: started.append(k))
        head = node_cls(params, head=True)
        head.start_api_server(include_dashboard=kw["include_dashboard"], raise_on_failure=False)
        calls.append((kw, node_cls, params.no_monitor, bool(started)))
        return type("Ctx", (), {"dashboard_url": "127.0.0.1:8265"})()

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert ray_session.ensure_ray(num_cpus=1, dashboard=dashboard, preload=["f3ocus_ray.fl.worker"])
    ((kw, node_cls, no_monitor, api_server),) = calls
    assert kw["include_dashboard"] is dashboard and kw["_node_ip_address"] == "127.0.0.1"
    assert kw["_system_config"] == {"preload_python_modules": ["f3ocus_ray.fl.worker"]}
    assert node_cls is not original and issubclass(node_cls, original)
    assert no_monitor and api_server is dashboard
    assert ray_node.Node is original


def test_worker_preload_names_each_familys_modules():
    """What a local run's workers import as Ray starts: real modules, one family each."""
    import importlib.util

    from f3ocus_ray.models.registry import MODEL_NAMES
    from f3ocus_ray.platform.prepare import worker_modules

    for name in MODEL_NAMES:
        mods = worker_modules(name)
        assert mods[0] == "f3ocus_ray.fl.worker" and len(mods) == 2
        assert all(importlib.util.find_spec(m) is not None for m in mods), mods


def _session_processes() -> list[str]:
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            out.append(" ".join(p.cmdline()))
        except psutil.Error:
            pass
    return out


def _listening_url(cmd_part: str) -> str | None:
    for p in psutil.Process().children(recursive=True):
        try:
            if cmd_part in " ".join(p.cmdline()):
                for c in p.net_connections(kind="tcp"):
                    if c.status == psutil.CONN_LISTEN and c.laddr.ip == "127.0.0.1":
                        return f"http://127.0.0.1:{c.laddr.port}"
        except psutil.Error:
            pass
    return None


@pytest.mark.slow
@pytest.mark.isolated
def test_ray_processes_without_and_with_dashboard():
    import ray

    from f3ocus_ray.platform.ray_session import ensure_ray

    assert not ray.is_initialized()
    for dashboard in (False, True):
        assert ensure_ray(num_cpus=1, dashboard=dashboard)
        try:
            assert ray.get(ray.remote(lambda: 1).remote()) == 1
            procs = _session_processes()
            assert any("gcs_server" in c for c in procs) and any("raylet" in c for c in procs)
            assert not any("autoscaler/_private/monitor.py" in c for c in procs), procs
            has_dashboard = any("dashboard/dashboard.py" in c for c in procs)
            assert has_dashboard is dashboard, procs
            if dashboard:  # and it serves: the dashboard's version endpoint answers
                base = None
                for _ in range(100):
                    base = _listening_url("dashboard/dashboard.py")
                    if base:
                        break
                    import time

                    time.sleep(0.2)
                assert base is not None
                with urllib.request.urlopen(f"{base}/api/version", timeout=10) as r:
                    assert r.status == 200
        finally:
            ray.shutdown()


def _module_lister():
    """A ClientWorker that reports which of NOT_IN_A_WORKER its process has imported."""
    from f3ocus_ray.fl.worker import ClientWorker

    class ListingWorker(ClientWorker):
        def heavy_modules(self) -> list[str]:
            return sorted({m.split(".")[0] for m in sys.modules} & NOT_IN_A_WORKER)

    return ListingWorker


def test_workers_import_only_what_they_use(ray_local, small_vqa, tmp_path):
    """After a round (scoring, training, evaluation), a worker has imported none of the
    launching side's packages."""
    from f3ocus_ray.config import load_config
    from f3ocus_ray.fl.executors import RayExecutor
    from f3ocus_ray.fl.round import Federation
    from f3ocus_ray.platform.prepare import prepare

    cfg = load_config(
        None,
        [
            f"data.path={small_vqa}",
            "data.clients=[chest_xray, oct]",
            "data.image_size=32",
            "model.num_layers=4",
            "model.patch_size=8",
            "federation.budgets=[2, 1]",
            "federation.strategy=f3ocus",
            "federation.rounds=1",
            "training.local_steps=1",
            "engine.num_workers=1",
            "tracking.enabled=false",
        ],
    )
    spec = prepare(cfg).driver_spec
    executor = RayExecutor(spec.worker, spec.pool, _module_lister())
    try:
        res = Federation(spec, executor).run_round()
        assert res.raw_scores is not None  # the worker scored, trained and evaluated
        assert executor.call_all("heavy_modules") == [[]]
    finally:
        executor.close()
