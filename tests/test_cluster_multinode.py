"""Multi-node placement and node failure on a Ray cluster of several nodes on this machine
(`ray.cluster_utils.Cluster`, a custom resource `fake_gpu` standing in for GPUs): trials and
ClientWorkers land where their placement groups say, the results equal a single-node run's,
and a worker node killed mid-grid costs its trials one retry (FailureConfig), nothing more.
Each Ray here is this test's own (its own temp dir), shut down by the test (slow)."""

from __future__ import annotations

import ast
import os
import shutil
import threading
import time
from pathlib import Path

import mlflow
import pytest
from gridutil import tiny_grid

from f3ocus_ray.platform.grid_spec import load_grid
from f3ocus_ray.platform.tune_grid import run_grid

# own Ray clusters: run in a pytest process of their own (see the Makefile)
pytestmark = [pytest.mark.slow, pytest.mark.isolated]

ROUNDS = 3
AXES = "federation.strategy: [last_k, first_k]"
# fast detection of a killed node (Ray's default takes about 30 s)
SYSTEM_CONFIG = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 1000,
    "health_check_failure_threshold": 5,
}


@pytest.fixture(scope="module")
def raytmp():
    """A Ray temp dir of our own: our clusters' address file lives there, so no other Ray
    user on this machine connects to them by accident."""
    tmp = Path(f"/tmp/rm{os.getpid()}")
    (tmp / "ray").mkdir(parents=True, exist_ok=True)  # Ray's temp dir is $RAY_TMPDIR/ray
    old = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = str(tmp)
    os.environ.pop("RAY_ADDRESS", None)
    yield tmp
    if old is None:
        os.environ.pop("RAY_TMPDIR", None)
    else:
        os.environ["RAY_TMPDIR"] = old
    shutil.rmtree(tmp, ignore_errors=True)


def _cluster(raytmp: Path, head_cpus: int, nodes: int, node_cpus: int):
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": head_cpus,
            "node_ip_address": "127.0.0.1",
            "include_dashboard": False,
            "temp_dir": str(raytmp / "ray"),
            "_system_config": SYSTEM_CONFIG,
        },
    )
    workers = [
        cluster.add_node(num_cpus=node_cpus, resources={"fake_gpu": 1}, node_ip_address="127.0.0.1")
        for _ in range(nodes)
    ]
    cluster.wait_for_nodes()
    return cluster, workers


def _connect(cluster) -> None:
    import ray

    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)


def _shutdown(cluster) -> None:
    import ray

    ray.shutdown()
    cluster.shutdown()


def _trial_runs(db: Path, name: str):
    client = mlflow.MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client, []
    runs = client.search_runs([exp.experiment_id], max_results=100)
    trials = [r for r in runs if r.data.tags.get("f3ocus.role") != "grid"]
    return client, sorted(trials, key=lambda r: r.data.tags["f3ocus.trial"])


def _histories(db: Path, name: str) -> dict[str, list[tuple[int, float, float]]]:
    """trial -> [(round, score, loss)] as logged."""
    client, trials = _trial_runs(db, name)
    out = {}
    for r in trials:
        score = client.get_metric_history(r.info.run_id, "score")
        loss = {m.step: m.value for m in client.get_metric_history(r.info.run_id, "loss")}
        out[r.data.tags["f3ocus.trial"]] = sorted((m.step, m.value, loss[m.step]) for m in score)
    return out


def _grid(tmp_path: Path, data, name: str, engine: dict, tune: dict):
    path = tiny_grid(tmp_path, data, AXES, name=name, rounds=ROUNDS, tune=tune)
    sets = [f"engine.{k}={v}" for k, v in engine.items()]
    return load_grid(path, sets, cwd=tmp_path)


@pytest.fixture(scope="module")
def single_node(raytmp, small_vqa, tmp_path_factory):
    """The reference: the grid on one node holding every resource (2 workers per trial)."""
    tmp = tmp_path_factory.mktemp("single")
    cluster, _ = _cluster(raytmp, head_cpus=2, nodes=0, node_cpus=0)
    try:
        _connect(cluster)
        import ray

        assert len(ray.nodes()) == 1
        grid = _grid(
            tmp,
            small_vqa,
            "tn",
            {"num_workers": 2, "cpus_per_worker": 0.5},
            {"driver_cpus": 1, "max_concurrent_trials": 1},
        )
        out = run_grid(grid)
    finally:
        _shutdown(cluster)
    assert out.statuses == {"TERMINATED": 2}
    return _histories(tmp / "mlflow.db", "tn")


def test_trials_and_workers_land_on_both_nodes_as_their_placement_groups_say(
    raytmp, small_vqa, single_node, tmp_path
):
    # head: the trials' drivers (pinned there like on a cloud cluster); two "GPU" nodes with
    # one fake_gpu each; a worker takes 0.75 of one, so each trial's 2 workers need both nodes
    cluster, (a, b) = _cluster(raytmp, head_cpus=1, nodes=2, node_cpus=1)
    try:
        _connect(cluster)
        import ray

        head = next(n["NodeID"] for n in ray.nodes() if "node:__internal_head__" in n["Resources"])
        grid = _grid(
            tmp_path,
            small_vqa,
            "tn",
            {"num_workers": 2, "cpus_per_worker": 0.5, "resources_per_worker": "{fake_gpu: 0.75}"},
            {
                "driver_cpus": 0.5,
                "driver_resources": {"node:__internal_head__": 0.001},
                "max_concurrent_trials": 1,
            },
        )
        out = run_grid(grid)
    finally:
        _shutdown(cluster)
    assert out.statuses == {"TERMINATED": 2}
    _, trials = _trial_runs(tmp_path / "mlflow.db", "tn")
    assert len(trials) == 2
    for run in trials:
        tags = run.data.tags
        assert run.info.status == "FINISHED"
        assert ast.literal_eval(tags["f3ocus.placement_group_bundles"]) == [
            {"CPU": 0.5, "node:__internal_head__": 0.001},
            *[{"CPU": 0.5, "fake_gpu": 0.75}] * 2,
        ]
        bundle_nodes = tags["f3ocus.placement_group_nodes"].split(",")
        workers = tags["f3ocus.worker_nodes"].split(",")
        # the driver where bundle 0 is (the head); each worker on a node of a worker bundle
        assert tags["f3ocus.driver_node"] == bundle_nodes[0] == head
        assert sorted(workers) == sorted(bundle_nodes[1:])
        assert set(workers) == {a.node_id, b.node_id}  # one trial, both GPU nodes
    # the same numbers as on one node (the result does not depend on where workers run)
    assert _histories(tmp_path / "mlflow.db", "tn") == single_node


def test_a_worker_node_killed_mid_grid_costs_its_trial_one_retry(
    raytmp, small_vqa, single_node, tmp_path
):
    # no CPU on the head: each trial (driver + 1 worker) runs on one of the two "GPU" nodes
    cluster, nodes = _cluster(raytmp, head_cpus=0, nodes=2, node_cpus=2)
    by_id = {n.node_id: n for n in nodes}
    killed: dict[str, str] = {}
    db = tmp_path / "mlflow.db"

    def kill_a_busy_node():
        """When a trial has logged a round (and checkpointed it) but not its last, kill the
        node its driver runs on, as a reclaimed spot instance would go."""
        deadline = time.time() + 240
        while time.time() < deadline and not killed:
            time.sleep(0.3)
            if not db.exists():
                continue
            try:
                client, trials = _trial_runs(db, "tf")
                for r in trials:
                    node = r.data.tags.get("f3ocus.driver_node")
                    steps = client.get_metric_history(r.info.run_id, "score")
                    if r.info.status == "RUNNING" and node in by_id and 1 <= len(steps) < ROUNDS:
                        cluster.remove_node(by_id[node], allow_graceful=False)
                        killed.update(trial=r.data.tags["f3ocus.trial"], node=node)
                        return
            except Exception:  # the DB mid-write: look again
                continue

    try:
        _connect(cluster)
        grid = _grid(
            tmp_path,
            small_vqa,
            "tf",
            {"num_workers": 1, "cpus_per_worker": 1, "resources_per_worker": "{fake_gpu: 1}"},
            {"driver_cpus": 1, "max_concurrent_trials": 2, "max_failures": 2},
        )
        killer = threading.Thread(target=kill_a_busy_node, daemon=True)
        killer.start()
        out = run_grid(grid)
        killer.join(timeout=5)
    finally:
        _shutdown(cluster)
    assert killed, "no trial was caught mid-grid"
    assert out.statuses == {"TERMINATED": 2}
    from ray import tune

    failures = {t.config["index"]: t.num_failures for t in tune.ExperimentAnalysis(out.path).trials}
    k = int(killed["trial"].split("_")[1])
    assert failures == {k: 1, 1 - k: 0}  # retried once per the FailureConfig, the other not
    client, trials = _trial_runs(db, "tf")
    assert len(trials) == 2  # the retried trial continued its own MLflow run
    for r in trials:
        assert r.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(r.info.run_id, "score")]
        assert steps == list(range(1, ROUNDS + 1))  # every round once
    retried = next(r for r in trials if r.data.tags["f3ocus.trial"] == killed["trial"])
    assert retried.data.tags["f3ocus.driver_node"] != killed["node"]  # now on the other node
    # and the numbers of a fault-free run (1 worker per trial here, 2 on the single node)
    assert _histories(db, "tf") == single_node
