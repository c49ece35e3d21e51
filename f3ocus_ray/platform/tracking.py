"""MLflow tracking of one run: params, per-round metrics, masks and heatmaps, the config.

A run that raises is marked FAILED, never left RUNNING. Runs carry MLflow's standard context
tags (user, source, git commit). On a SQLite store, new experiments keep their artifacts under
`mlflow-artifacts:/<experiment>`, resolved here to `mlruns/` next to the database file and by
`f3ocus ui` (the MLflow server's artifact proxy, `--artifacts-destination`) to the same folder:
the database and its `mlruns/` can move together, and a test's artifacts stay in its tmp folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import os
import socket
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

import mlflow
import psutil
from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

from f3ocus_ray.platform.plots import heatmap_png
from f3ocus_ray.platform.uris import SQLITE, resolve_tracking_uri

# no "Downloading artifacts" progress bars in the console (the report reads artifacts)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

PROXY_SCHEME = "mlflow-artifacts"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"  # MLflow 3 opens such experiments on the runs


def artifacts_root(uri: str) -> Path | None:
    """Where a SQLite store's proxied artifacts live: `mlruns/` next to the database."""
    uri = resolve_tracking_uri(uri)
    return Path(uri[len(SQLITE) :]).parent / "mlruns" if uri.startswith(SQLITE) else None


def _proxied_repo(artifact_uri: str, tracking_uri: str | None = None, registry_uri=None):
    """`mlflow-artifacts:/x` under a SQLite tracking URI is the folder `<db dir>/mlruns/x`;
    under an HTTP server it is the server's artifact proxy (MLflow's own repository)."""
    root = artifacts_root(tracking_uri or mlflow.get_tracking_uri())
    if root is None:
        return MlflowArtifactsRepository(artifact_uri, tracking_uri, registry_uri)
    return LocalArtifactRepository(str(root / unquote(urlparse(artifact_uri).path).lstrip("/")))


_artifact_repository_registry.register(PROXY_SCHEME, _proxied_repo)


def tracking_client(uri: str) -> mlflow.MlflowClient:
    """A client of `uri`. A SQLite database is created, or migrated, by one process at a time:
    MLflow's schema migration is not safe when several processes open a fresh file at once
    (some crash, and the file can be left broken), so the first touch holds a file lock."""
    uri = resolve_tracking_uri(uri)
    if not uri.startswith(SQLITE):
        return mlflow.MlflowClient(tracking_uri=uri)
    db = Path(uri[len(SQLITE) :])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return mlflow.MlflowClient(tracking_uri=uri)  # creates and migrates the schema


KEY_TAG = "f3ocus.key"
# who runs a run, so that `f3ocus runs gc` can tell a live run from an orphan (kill -9)
HOST_TAG, PID_TAG, PID_START_TAG = "f3ocus.host", "f3ocus.pid", "f3ocus.pid_start"
HEARTBEAT_TAG = "f3ocus.heartbeat"  # the time of the run's last logged metrics  # a deterministic id: a resumed trial finds its own run by it
PARENT_TAG = "mlflow.parentRunId"
RUN_COLOUR_TAG = "mlflow.runColor"  # the UI draws the run in this colour (a method's)
BEST_METHOD_TAG = "best_method"


def get_or_create_experiment(client: mlflow.MlflowClient, name: str) -> str:
    """The experiment's id; safe when several processes create it at once."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if artifacts_root(client.tracking_uri) is not None:
        location = f"{PROXY_SCHEME}:/{quote(name, safe='')}"
    try:
        return client.create_experiment(
            name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: "custom_model_development"}
        )
    except mlflow.exceptions.MlflowException:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def find_run(client: mlflow.MlflowClient, experiment_id: str, key: str):
    """The run tagged with `key` (the oldest, should there be several), or None."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'", order_by=["start_time ASC"]
    )
    return runs[0] if runs else None


class RunTracker:
    """One MLflow run. Use as a context manager; `None` experiment disables tracking.

    With `key`, the run tagged with it is continued when it exists (a resumed trial: params
    are not logged again, the run is set RUNNING again) instead of a new run being created.
    `parent_run_id` nests the run under a parent (a grid); `tags` are set on creation, after
    `context` (MLflow's context tags, `context_tags()` of the launching process by default).
    """

    def __init__(
        self,
        uri: str,
        experiment: str,
        run_name: str,
        params: dict[str, Any],
        *,
        key: str | None = None,
        parent_run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        context: dict[str, str] | None = None,
    ):
        self.client = tracking_client(uri)
        exp_id = get_or_create_experiment(self.client, experiment)
        existing = find_run(self.client, exp_id, key) if key else None
        self.resumed = existing is not None
        if existing is not None:
            self.run = existing
            self.run_id = existing.info.run_id
            if existing.info.status != "RUNNING":
                self.client.update_run(self.run_id, status="RUNNING")
            self._set_owner()
            return
        all_tags = dict(context if context is not None else context_tags())
        all_tags.update({str(k): str(v) for k, v in (tags or {}).items()})
        if key:
            all_tags[KEY_TAG] = key
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        self.run = self.client.create_run(exp_id, run_name=run_name, tags=all_tags)
        self.run_id = self.run.info.run_id
        self.log_params(params)
        self._set_owner()

    def _set_owner(self) -> None:
        me = psutil.Process()
        owner = {HOST_TAG: socket.gethostname(), PID_TAG: me.pid, PID_START_TAG: me.create_time()}
        owner[HEARTBEAT_TAG] = time.time()
        tags = [mlflow.entities.RunTag(k, str(v)) for k, v in owner.items()]
        self.client.log_batch(self.run_id, tags=tags)

    def logged_steps(self, metric: str = "score") -> int:
        """The last step of `metric` already in the run (0 if none)."""
        history = self.client.get_metric_history(self.run_id, metric)
        return max((m.step for m in history), default=0)

    def __enter__(self) -> RunTracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if exc_type else "FINISHED")

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        ms = [mlflow.entities.Metric(_metric_key(k), float(v), 0, step) for k, v in metrics.items()]
        beat = [mlflow.entities.RunTag(HEARTBEAT_TAG, str(time.time()))]
        for i in range(0, len(ms), 1000):  # MLflow's batch limit
            self.client.log_batch(self.run_id, metrics=ms[i : i + 1000], tags=beat)

    def log_text(self, text: str, path: str) -> None:
        self.client.log_text(self.run_id, text, path)

    def log_json(self, obj: Any, path: str) -> None:
        self.client.log_text(self.run_id, json.dumps(obj, indent=1), path)

    def log_png(self, png: bytes, path: str) -> None:
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / Path(path).name
            f.write_bytes(png)
            folder = str(Path(path).parent)
            self.client.log_artifact(self.run_id, str(f), None if folder == "." else folder)

    def log_image(self, png: bytes, key: str, step: int) -> None:
        """A stepped image: the run's chart view shows it with a step slider."""
        from PIL import Image

        self.client.log_image(self.run_id, Image.open(io.BytesIO(png)), key=key, step=step)

    def log_table(self, rows: list[dict[str, Any]], path: str) -> None:
        """Rows appended to a table artifact (shown as a table in the UI)."""
        import pandas as pd

        self.client.log_table(self.run_id, pd.DataFrame(rows), path)

    def log_params(self, params: dict[str, Any]) -> None:
        ps = [mlflow.entities.Param(k, _param(v)) for k, v in sorted(params.items())]
        for i in range(0, len(ps), 100):  # MLflow's batch limit for params
            self.client.log_batch(self.run_id, params=ps[i : i + 100])

    def log_dataset(self, df, name: str, source: str, context: str = "train") -> None:
        """The data set as the run's MLflow dataset input (its per-client table)."""
        from mlflow.data.pandas_dataset import from_pandas
        from mlflow.entities import DatasetInput, InputTag

        with warnings.catch_warnings():  # MLflow's schema hints about integer columns
            warnings.simplefilter("ignore")
            ds = from_pandas(df, source=source, name=name)._to_mlflow_entity()
        tag = InputTag(key="mlflow.data.context", value=context)
        self.client.log_inputs(self.run_id, [DatasetInput(dataset=ds, tags=[tag])])

    @contextlib.contextmanager
    def system_metrics(self, interval: float = 10.0):
        """MLflow's system metrics (CPU, memory, disk, network, GPU) of this process's node,
        every `interval` seconds, while the block runs: the UI's "System metrics" section."""
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # no start/stop
        monitor = SystemMetricsMonitor(
            self.run_id,
            sampling_interval=interval,
            resume_logging=self.resumed,
            tracking_uri=self.client.tracking_uri,
        )
        monitor.start()
        try:
            yield
        finally:
            monitor.finish()

    def set_description(self, markdown: str) -> None:
        self.client.set_tag(self.run_id, "mlflow.note.content", markdown)

    def log_heatmap(self, matrix, rows, cols, title: str, path: str, cmap: str = "Blues") -> None:
        self.log_png(heatmap_png(matrix, rows, cols, title, cmap), path)

    def set_tags(self, tags: dict[str, Any]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, str(v))


def context_tags(source: str | None = None) -> dict[str, str]:
    """MLflow's standard context tags of this process (user, source name and type, git commit
    when run from a checkout); `source` names the command (e.g. `f3ocus grid x.yaml`)."""
    from mlflow.tracking.context.registry import resolve_tags
    from mlflow.utils.git_utils import get_git_commit

    tags = {k: str(v) for k, v in resolve_tags().items()}
    if "mlflow.source.git.commit" not in tags:  # MLflow looks next to the main script only
        commit = get_git_commit(os.getcwd())
        if commit:
            tags["mlflow.source.git.commit"] = commit
    if source:
        tags["mlflow.source.name"] = source
    return tags


def _param(v: Any) -> str:
    s = json.dumps(v) if isinstance(v, list | dict) else str(v)
    return s[:6000]


def _metric_key(k: str) -> str:
    # MLflow keys allow alphanumerics, _ - . / and space
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in k)
