"""Helpers for the platform tests: small grids, free ports, a loopback Ray env (no tests here)."""

from __future__ import annotations

import os
import socket
import textwrap
from pathlib import Path

import yaml

CLIENTS = ["chest_xray", "oct", "dermatoscope", "blood_microscope"]


def tiny_grid(
    tmp_path: Path, data_path, axes: str, *, name="tg", rounds=2, extra="", tune=None
) -> Path:
    """A grid of tiny experiments (4 clients, 4 layers, 1 worker); `axes`/`extra` are YAML."""
    grid = {
        "name": name,
        "base": {
            "data": {"path": str(data_path), "image_size": 32, "clients": CLIENTS},
            "model": {"num_layers": 4, "patch_size": 8},
            "federation": {"rounds": rounds, "budgets": [2, 1, 2, 1], "strategy": "last_k"},
            "training": {"local_steps": 2, "batch_size": 16, "lr": 3.0e-3},
            "engine": {"num_workers": 1, "cpus_per_worker": 1},
            "output_dir": str(tmp_path / "runs"),
            "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        },
        "axes": yaml.safe_load(textwrap.dedent(axes)),
        "tune": {
            "storage_path": str(tmp_path / "ray_results"),
            "driver_cpus": 1,
            "max_concurrent_trials": 1,
            **(tune or {}),
        },
    }
    if extra:
        grid.update(yaml.safe_load(textwrap.dedent(extra)))
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(grid, sort_keys=False))
    return p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_env(tmp: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    if tmp is not None:
        env["RAY_TMPDIR"] = str(tmp)
    return env
