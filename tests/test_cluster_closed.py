"""A cluster closed by default, checked on the cluster files themselves (no cloud, no Ray):
token authentication on the on-premise head and nodes, MLflow accounts per client and no
password shipped to any node, cloud roles scoped to the project's bucket, and node set-up
from pinned versions without `curl | sh`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
SCRIPTS = [*CLUSTER.glob("*.sh"), *(ROOT / "tests" / "system_deps").glob("*.sh")]


def _yaml(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def test_no_script_pipes_a_download_into_a_shell():
    pipe_to_shell = re.compile(r"(curl|wget)\b[^\n|]*\|\s*(sudo\s+)?(ba|z)?sh\b")
    for f in [*SCRIPTS, *CLUSTER.glob("*.yaml"), ROOT / "Makefile"]:
        code = re.sub(r"(?m)^\s*#.*$", "", f.read_text())  # comments may name the pattern
        assert not pipe_to_shell.search(code), f
    assert pipe_to_shell.search("curl -LsSf https://x/install.sh | sh")  # the check bites


def _pins() -> dict[str, str]:
    pins = {}
    for line in (CLUSTER / "constraints-node.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"\d+(\.\d+)+", version), line
            pins[name.lower()] = version
    return pins


def test_nodes_install_pinned_versions():
    pins = _pins()
    script = (CLUSTER / "setup_node.sh").read_text()
    assert '-c "$PINS"' in script and 'UV_VERSION="' in script
    assert re.search(r'UV_VERSION="\d+\.\d+\.\d+"', script)
    # every package the script names, and every dependency of the project, has a pin
    # (Ray's is the YAML's F3OCUS_RAY_VERSION)
    named = re.findall(r'^\s*"\$\{PIP\[@\]\}"(.*?)(?<!\\)$', script, re.M | re.S)
    words = " ".join(named).replace("\\\n", " ").split()
    packages = {re.split(r"[\[=<>]", w.strip('"'))[0].lower() for w in words}
    packages -= {"-e", "$project", "--index-url", "$f3ocus_torch_index", "ray"}
    assert packages and packages <= set(pins), packages - set(pins)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"]:
        name = re.split(r"[\[=<>]", dep)[0].lower()
        assert name == "ray" or name in pins, dep
    for name in ("psycopg2-binary", "flask-wtf", "mlflow"):  # the head's tracking server
        assert name in pins


def test_on_premise_ray_requires_its_token(tmp_path):
    c = _yaml("local.yaml")
    starts = [cmd for cmd in c["head_start_ray_commands"] + c["worker_start_ray_commands"]
              if "ray start" in cmd]  # fmt: skip
    assert len(starts) == 2
    for cmd in starts:
        assert "RAY_AUTH_MODE=token" in cmd
        assert "RAY_AUTH_TOKEN_PATH=~/.f3ocus-cluster/ray_auth_token" in cmd
    assert c["file_mounts"]["~/.f3ocus-cluster"] == "~/.f3ocus-cluster"
    # make_env.sh makes the token once (256 bits, mode 600) and keeps it
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "F3OCUS_ARTIFACTS": "/srv/a"}
    for _ in range(2):
        subprocess.run(["bash", str(CLUSTER / "make_env.sh")], env=env, check=True,
                       capture_output=True)  # fmt: skip
        token = (tmp_path / ".f3ocus-cluster" / "ray_auth_token").read_text()
        assert re.fullmatch(r"[0-9a-f]{64}", token)
        if _ == 0:
            first = token
    assert token == first
    for f in ("ray_auth_token", "cluster.env"):
        assert (tmp_path / ".f3ocus-cluster" / f).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / ".f3ocus-cluster").stat().st_mode & 0o777 == 0o700


def test_mlflow_credentials_only_where_used_and_per_client(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "F3OCUS_ARTIFACTS": "s3://b/a"}
    subprocess.run(["bash", str(CLUSTER / "make_env.sh")], env=env, check=True,
                   capture_output=True)  # fmt: skip
    shipped = (tmp_path / ".f3ocus-cluster" / "cluster.env").read_text()
    assert [line.split("=")[0] for line in shipped.splitlines()] == ["F3OCUS_ARTIFACTS"]
    for f in SCRIPTS:  # no admin password comes from the laptop or goes to a node
        assert "MLFLOW_TRACKING_PASSWORD" not in f.read_text(), f
    assert ".mlflow/credentials" not in (CLUSTER / "setup_node.sh").read_text()
    server = (CLUSTER / "mlflow_server.sh").read_text()
    assert 'HEAD_USER="f3ocus-head"' in server  # the head's clients: an account of their own
    assert '"$HEAD_USER" "$(account "$HEAD_USER")" > "$HOME/.mlflow/credentials"' in server
    assert "add-user)" in server and "default_permission = READ" in server
    assert "admin.password" in server and 'rand > "$DIR/admin.password"' in server


def test_the_tracking_server_runs_on_postgresql_and_proxies_artifacts():
    server = (CLUSTER / "mlflow_server.sh").read_text()
    assert '--backend-store-uri "postgresql+psycopg2://mlflow@127.0.0.1:$PG_PORT/mlflow"' in server
    assert "--serve-artifacts --artifacts-destination" in server
    assert "sqlite" not in server
    assert "listen_addresses=127.0.0.1" in server and "--host 127.0.0.1" in server


def test_cloud_roles_are_scoped_to_the_bucket():
    aws = _yaml("aws-gpu.yaml")
    types = aws["available_node_types"]
    assert types["head"]["node_config"]["IamInstanceProfile"] == {"Name": "f3ocus-ray-head"}
    for name, t in types.items():
        if name != "head":
            assert "IamInstanceProfile" not in t["node_config"], name
    policy = json.loads((CLUSTER / "aws-head-policy.json").read_text())
    for st in policy["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if any(a.startswith("s3:") for a in actions):
            assert all(a.startswith("s3:") and "*" not in a for a in actions), st
            assert st["Resource"] in ("arn:aws:s3:::MY-BUCKET", "arn:aws:s3:::MY-BUCKET/*")
        assert not any(a in ("*", "s3:*", "iam:*") for a in actions), st
    gcp_fix = (CLUSTER / "gcp_scope_bucket.sh").read_text()
    assert "buckets add-iam-policy-binding" in gcp_fix
    assert "projects remove-iam-policy-binding" in gcp_fix
    assert "gcp_scope_bucket.sh" in (CLUSTER / "gcp-gpu.yaml").read_text()
    assert "gcp_scope_bucket.sh" in (CLUSTER / "README.md").read_text()
