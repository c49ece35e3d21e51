"""MLflow tracking of one run: params, per-round metrics, masks and heatmaps, the config.

A run that raises is marked FAILED, never left RUNNING.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow

from f3ocus_ray.platform.plots import heatmap_png


def resolve_tracking_uri(uri: str) -> str:
    """Make a relative `sqlite:///file.db` absolute, so every process on the node agrees."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


class RunTracker:
    """One MLflow run. Use as a context manager; `None` experiment disables tracking."""

    def __init__(self, uri: str, experiment: str, run_name: str, params: dict[str, Any]):
        self.client = mlflow.MlflowClient(tracking_uri=resolve_tracking_uri(uri))
        exp = self.client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(experiment)
        self.run = self.client.create_run(exp_id, run_name=run_name)
        self.run_id = self.run.info.run_id
        self.client.log_batch(
            self.run_id,
            params=[mlflow.entities.Param(k, _param(v)) for k, v in sorted(params.items())],
        )

    def __enter__(self) -> RunTracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if exc_type else "FINISHED")

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        ms = [mlflow.entities.Metric(_metric_key(k), float(v), 0, step) for k, v in metrics.items()]
        for i in range(0, len(ms), 1000):  # MLflow's batch limit
            self.client.log_batch(self.run_id, metrics=ms[i : i + 1000])

    def log_text(self, text: str, path: str) -> None:
        self.client.log_text(self.run_id, text, path)

    def log_json(self, obj: Any, path: str) -> None:
        self.client.log_text(self.run_id, json.dumps(obj, indent=1), path)

    def log_png(self, png: bytes, path: str) -> None:
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / Path(path).name
            f.write_bytes(png)
            self.client.log_artifact(self.run_id, str(f), str(Path(path).parent))

    def log_heatmap(self, matrix, rows, cols, title: str, path: str, cmap: str = "Blues") -> None:
        self.log_png(heatmap_png(matrix, rows, cols, title, cmap), path)

    def set_tags(self, tags: dict[str, Any]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, str(v))


def _param(v: Any) -> str:
    s = json.dumps(v) if isinstance(v, list | dict) else str(v)
    return s[:6000]


def _metric_key(k: str) -> str:
    # MLflow keys allow alphanumerics, _ - . / and space
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in k)
