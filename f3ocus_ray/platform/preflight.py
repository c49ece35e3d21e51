"""Checks against the world outside the config, before any side effect (no data written, no
Ray started, no MLflow run): the workers must fit the machine or the cluster, and the Ray
cluster and the tracking server must answer. Every wait is bounded by `CONNECT_TIMEOUT_S`."""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from f3ocus_ray.config import EngineConfig, ExperimentConfig
from f3ocus_ray.errors import ConfigError

CONNECT_TIMEOUT_S = 5.0


def worker_bundles(eng: EngineConfig) -> list[dict[str, float]]:
    """What each ClientWorker reserves: CPU, a GPU fraction, `engine.resources_per_worker`."""
    worker = {"CPU": float(eng.cpus_per_worker)}
    if eng.gpus_per_worker:
        worker["GPU"] = float(eng.gpus_per_worker)
    worker.update({k: float(v) for k, v in eng.resources_per_worker.items()})
    return [dict(worker) for _ in range(eng.num_workers)]


def local_resources(gpus: bool = True) -> dict[str, float]:
    """What a local Ray started here would offer; its GPUs only with `gpus` (counting them
    imports torch, seconds that a CPU-only run's start-up need not wait for)."""
    cpus = {"CPU": float(os.cpu_count() or 1)}
    if not gpus:
        return cpus
    import torch

    return {**cpus, "GPU": float(torch.cuda.device_count())}


def check_fits(bundles: Sequence[Mapping[str, float]], available: Mapping[str, float], where: str):
    """Refuse bundles the cluster cannot hold all at once (Ray would wait for them forever)."""
    need: dict[str, float] = {}
    for b in bundles:
        for k, v in b.items():
            need[k] = need.get(k, 0.0) + v
    for k, v in need.items():
        if v > available.get(k, 0.0) + 1e-9:
            field = {"CPU": "cpus_per_worker", "GPU": "gpus_per_worker"}.get(
                k, "resources_per_worker"
            )
            raise ConfigError(
                f"engine.{field}: the workers need {v:g} {k} at once; {where} has "
                f"{available.get(k, 0.0):g} (lower engine.num_workers or engine.{field})"
            )


def ray_address(cfg: ExperimentConfig) -> str | None:
    return cfg.engine.address or os.environ.get("RAY_ADDRESS")  # set by `ray job submit`


def check_ray_address(address: str) -> None:
    """The Ray cluster at `address` (host:port, ray://host:port) accepts a connection."""
    if address == "auto":
        return  # the local node's running Ray: found by Ray itself, at once
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if not parts.hostname or not parts.port:
        raise ConfigError(f"engine.address: {address!r} is not host:port or ray://host:port")
    try:
        with socket.create_connection((parts.hostname, parts.port), CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise ConfigError(
            f"engine.address: no Ray cluster answers at {address} within "
            f"{CONNECT_TIMEOUT_S:g} s ({e.strerror or e})"
        ) from None


def check_tracking_server(uri: str) -> None:
    """An http(s) tracking URI answers MLflow's health check."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=CONNECT_TIMEOUT_S):
            pass
    except (OSError, urllib.error.URLError) as e:
        reason = getattr(e, "reason", e)
        raise ConfigError(
            f"tracking.uri: no MLflow server answers at {uri} within {CONNECT_TIMEOUT_S:g} s "
            f"({reason})"
        ) from None


def preflight(cfg: ExperimentConfig, bundles: Sequence[Mapping[str, float]]) -> None:
    """Before anything is written or started: the endpoints answer and, for a local Ray, the
    bundles fit this machine (a cluster's resources are checked once connected)."""
    address = ray_address(cfg)
    if address:
        check_ray_address(address)
    else:
        import ray

        if ray.is_initialized():
            check_fits(bundles, ray.cluster_resources(), "the running Ray")
        else:
            gpus = any(b.get("GPU") for b in bundles)
            check_fits(bundles, local_resources(gpus), "this machine")
    if cfg.tracking.enabled:
        check_tracking_server(cfg.tracking.uri)
