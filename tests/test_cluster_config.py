"""The cluster YAMLs: valid for Ray's own schema and checks (offline, no cloud calls), refused
when broken, secure (SSH only, loopback services, no secrets), scale-to-zero; custom resources
in the trials' bundles (fast: no Ray started)."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from f3ocus_ray.cli import main
from f3ocus_ray.config import ExperimentConfig, safe_load_yaml
from f3ocus_ray.errors import ConfigError
from f3ocus_ray.platform.grid_spec import GridFile
from f3ocus_ray.platform.tune_trial import trial_bundles

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
CLOUD = ["aws-gpu.yaml", "gcp-gpu.yaml"]
ALL = [*CLOUD, "local.yaml"]


def _load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def ray_validate(config: dict) -> dict:
    """What `ray up` checks before it calls any cloud: fill in the provider's defaults, then
    Ray's JSON schema (ray/autoscaler/ray-schema.json) and its own consistency checks."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.mark.parametrize("name", ALL)
def test_cluster_yaml_validates_with_rays_own_schema(name):
    prepared = ray_validate(_load(name))
    assert prepared["head_node_type"] in prepared["available_node_types"]


def _break_fractional_node_gpu(c):
    c["available_node_types"]["gpu_small"]["resources"]["GPU"] = 0.5  # node resources: integers


def _break_unknown_key(c):
    c["max_worker"] = 3  # typo of max_workers


def _break_head_type(c):
    c["head_node_type"] = "no_such_type"


def _break_min_over_max(c):
    c["available_node_types"]["gpu_small"]["min_workers"] = c["max_workers"] + 1


def _break_node_type_field(c):
    c["available_node_types"]["gpu_large"]["gpus"] = 8  # not a node-type field


@pytest.mark.parametrize(
    "breakage",
    [
        _break_fractional_node_gpu,
        _break_unknown_key,
        _break_head_type,
        _break_min_over_max,
        _break_node_type_field,
    ],
)
@pytest.mark.parametrize("name", CLOUD)
def test_a_broken_copy_is_refused(name, breakage, tmp_path):
    broken = _load(name)
    breakage(broken)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(broken))
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        ray_validate(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("name", CLOUD)
def test_cloud_cluster_head_cpu_workers_gpu_scale_to_zero(name):
    c = _load(name)
    types = c["available_node_types"]
    head = types[c["head_node_type"]]
    assert head["resources"]["GPU"] == 0 and head["resources"]["CPU"] >= 4
    workers = {k: v for k, v in types.items() if k != c["head_node_type"]}
    assert {"gpu_small", "gpu_large"} <= set(workers)
    assert types["gpu_small"]["resources"]["GPU"] == 1
    assert types["gpu_large"]["resources"]["GPU"] == 8
    for t in workers.values():
        assert t["min_workers"] == 0  # an idle cluster costs only its head
    # spot / preemptible by default, the on-demand twins off until switched on
    for k in ("gpu_small", "gpu_large"):
        nc = types[k]["node_config"]
        if name.startswith("aws"):
            assert nc["InstanceMarketOptions"]["MarketType"] == "spot"
            assert "InstanceMarketOptions" not in types[f"{k}_ondemand"]["node_config"]
        else:
            assert nc["scheduling"]["provisioningModel"] == "SPOT"
            assert "provisioningModel" not in types[f"{k}_ondemand"]["node_config"]["scheduling"]
        assert types[f"{k}_ondemand"]["max_workers"] == 0
        assert types[f"{k}_ondemand"]["resources"] == types[k]["resources"]


@pytest.mark.parametrize("name", ALL)
def test_only_ssh_is_open_and_services_listen_on_loopback(name):
    c = _load(name)
    # AWS: Ray's default security group opens 22 to the internet and all ports only between
    # the cluster's own nodes; any IpPermissions here would add inbound rules
    assert not c["provider"].get("security_group", {}).get("IpPermissions")
    head_cmds = " ".join(c["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_cmds
    assert "mlflow_server.sh restart" in head_cmds
    everything = yaml.safe_dump(c)
    assert "0.0.0.0" not in everything
    if name.startswith("gcp"):  # every node on the dedicated network (SSH + internal only)
        for t in c["available_node_types"].values():
            (nic,) = t["node_config"]["networkInterfaces"]
            assert nic["subnetwork"].endswith("/subnetworks/f3ocus-ray")
    server = (CLUSTER / "mlflow_server.sh").read_text()
    assert "--host 127.0.0.1" in server and "--app-name basic-auth" in server


def test_no_secrets_in_cluster_files():
    pattern = re.compile(
        r"AKIA[0-9A-Z]{16}|BEGIN [A-Z ]*PRIVATE KEY|aws_secret_access_key\s*=|"
        r"\"private_key\"|(?i:password)\s*[:=]\s*[\"']?[A-Za-z0-9]{6,}"
    )
    for f in CLUSTER.iterdir():
        assert not pattern.search(f.read_text()), f
    for name in ALL:
        auth = _load(name)["auth"]
        assert set(auth) <= {"ssh_user", "ssh_private_key"}  # a path at most, never a key
    # the bucket comes from the environment: make_env.sh refuses without it
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    done = subprocess.run(
        ["bash", str(CLUSTER / "make_env.sh")], env=env, capture_output=True, text=True
    )
    assert done.returncode != 0 and "F3OCUS_ARTIFACTS" in done.stderr


@pytest.mark.parametrize("name", ALL)
def test_nodes_install_this_project_with_the_laptops_ray(name):
    c = _load(name)
    assert c["file_mounts"]["~/f3ocus-ray"] == "."
    setup = " ".join(c["setup_commands"])
    assert f"F3OCUS_RAY_VERSION={ray.__version__} " in setup
    assert "cluster/setup_node.sh" in setup
    script = (CLUSTER / "setup_node.sh").read_text()
    assert '-e "$PROJECT"' in script and "torch.cuda.is_available()" in script
    for f in ("setup_node.sh", "mlflow_server.sh", "make_env.sh"):
        assert subprocess.run(["bash", "-n", str(CLUSTER / f)]).returncode == 0


def test_gpu_grid_pins_drivers_on_the_head_and_shares_gpus():
    raw = safe_load_yaml((CLUSTER / "gpu_smoke_grid.yaml").read_text())
    spec = GridFile.model_validate(raw)
    assert spec.tune.driver_resources == {"node:__internal_head__": 0.001}
    assert spec.tune.max_failures >= 1
    base = dict(raw["base"])
    base["data"] = {k: v for k, v in base["data"].items() if k != "path"}  # on the nodes only
    cfg = ExperimentConfig.model_validate(base)
    bundles = trial_bundles(cfg.engine, spec.tune.driver_cpus, spec.tune.driver_resources)
    assert bundles[0] == {"CPU": 1.0, "node:__internal_head__": 0.001}
    assert bundles[1:] == [{"CPU": 2.0, "GPU": 0.25}] * 4
    # a small GPU node of either cloud holds one trial's 4 workers
    for name in CLOUD:
        node = _load(name)["available_node_types"]["gpu_small"]["resources"]
        assert sum(b["GPU"] for b in bundles[1:]) <= node["GPU"]
        assert sum(b["CPU"] for b in bundles[1:]) <= node["CPU"]


def test_resources_per_worker_in_every_worker_bundle():
    cfg = ExperimentConfig.model_validate(
        {"engine": {"num_workers": 3, "gpus_per_worker": 0.5, "resources_per_worker": {"a": 1}}}
    )
    assert (
        trial_bundles(cfg.engine, 0.5) == [{"CPU": 0.5}] + [{"CPU": 1.0, "GPU": 0.5, "a": 1.0}] * 3
    )
    for bad in ({"GPU": 1}, {"fake_gpu": 0}):
        with pytest.raises(Exception, match="resources_per_worker"):
            ExperimentConfig.model_validate({"engine": {"resources_per_worker": bad}})


def test_grid_storage_path_from_the_command_line(tmp_path, monkeypatch):
    import f3ocus_ray.platform.tune_grid as tg

    (tmp_path / "g.yaml").write_text("name: g\nbase: {}\naxes: {seed: [0]}\n")
    seen = {}

    def fake_run_grid(grid, **kwargs):
        seen["storage"] = tg.storage_root(grid)
        raise ConfigError("stop here")

    monkeypatch.setattr(tg, "run_grid", fake_run_grid)
    assert main(["grid", str(tmp_path / "g.yaml"), "--storage-path", "s3://b/ray"]) == 2
    assert seen["storage"] == "s3://b/ray"
