"""`f3ocus ui`: the MLflow UI on loopback over a tracking store, and the link to its runs.

The server is MLflow's own (`mlflow server`), bound to 127.0.0.1, serving a SQLite store's
artifacts through its artifact proxy from `mlruns/` next to the database (see tracking.py),
so a moved database folder keeps its artifacts. The link opens the experiment's runs in chart
mode (MLflow 3 would otherwise open on its GenAI overview).
"""

from __future__ import annotations

import sys
from pathlib import Path

from f3ocus_ray.errors import UserError
from f3ocus_ray.platform.tracking import artifacts_root, tracking_client
from f3ocus_ray.platform.uris import SQLITE, resolve_tracking_uri

HOST = "127.0.0.1"


def runs_link(port: int, experiment_id: str, host: str = HOST) -> str:
    """The experiment's runs view in chart mode."""
    return f"http://{host}:{port}/#/experiments/{experiment_id}/runs?compareRunsMode=CHART"


def latest_experiment(uri: str, name: str | None = None) -> str:
    """The id of experiment `name`, else of the one most recently updated."""
    client = tracking_client(uri)
    if name is not None:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise UserError(f"--experiment: no MLflow experiment named {name!r} in {uri}")
        return exp.experiment_id
    exps = [e for e in client.search_experiments() if e.name != "Default"]
    if not exps:
        raise UserError(f"{uri}: no experiments yet (run `f3ocus grid` or `f3ocus run` first)")
    return max(exps, key=lambda e: e.last_update_time or 0).experiment_id


def server_command(uri: str, port: int) -> list[str]:
    """`mlflow server` on loopback over `uri` (a SQLite file that must exist)."""
    uri = resolve_tracking_uri(uri)
    if not uri.startswith(SQLITE):
        raise UserError(f"--tracking-uri {uri}: f3ocus ui serves a local sqlite:/// store")
    if not Path(uri[len(SQLITE) :]).is_file():
        raise UserError(f"--tracking-uri: {uri[len(SQLITE) :]} does not exist")
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--artifacts-destination",
        str(artifacts_root(uri)),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
