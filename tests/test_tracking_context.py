"""RunTracker's MLflow context: standard tags, artifacts next to the database (relative to
it), stepped images, tables, dataset inputs (no Ray; a tmp SQLite store)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from f3ocus_ray.platform.plots import heatmap_png
from f3ocus_ray.platform.tracking import RunTracker, tracking_client


def _tracker(db: Path, **kw) -> RunTracker:
    return RunTracker(f"sqlite:///{db}", "exp", "f3ocus-nsga2-k3-s0", {"a": 1}, **kw)


def test_artifacts_live_next_to_the_database_and_survive_a_move(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a stray ./mlruns would show up here
    first = tmp_path / "first"
    with _tracker(first / "mlflow.db") as t:
        t.log_json({"x": 1}, "summary.json")
        t.log_image(heatmap_png(np.eye(3), list("abc"), list("xyz"), "m"), "masks", step=2)
        t.log_table([{"round": 1, "client": "oct", "score": 0.5}], "clients.json")
        t.log_table([{"round": 2, "client": "oct", "score": 0.6}], "clients.json")
        t.log_dataset(pd.DataFrame({"client": ["oct"], "n_train": [3]}), "medvqa", "/data")
        run_id = t.run_id
    assert not (tmp_path / "mlruns").exists()
    assert (first / "mlruns").is_dir()
    moved = tmp_path / "moved"
    shutil.move(first, moved)
    client = tracking_client(f"sqlite:///{moved / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")  # no absolute path
    arts = {a.path for a in client.list_artifacts(run_id)}
    assert {"summary.json", "clients.json", "images"} <= arts
    table = pd.read_json(
        client.download_artifacts(run_id, "clients.json", str(tmp_path)), orient="split"
    )
    assert table["score"].tolist() == pytest.approx([0.5, 0.6])
    images = [a.path for a in client.list_artifacts(run_id, "images")]
    assert any("masks" in p and "+step+2+" in p for p in images)  # the UI step slider
    [ds] = run.inputs.dataset_inputs
    assert ds.dataset.name == "medvqa" and ds.tags[0].value == "train"
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"


def test_runs_carry_the_standard_context_tags(tmp_path):
    with _tracker(tmp_path / "mlflow.db", tags={"method": "F3OCUS"}) as t:
        tags = t.client.get_run(t.run_id).data.tags
    assert tags["mlflow.user"] and tags["mlflow.source.type"] == "LOCAL"
    assert "mlflow.source.name" in tags and tags["method"] == "F3OCUS"
    given = {"mlflow.source.name": "f3ocus grid g.yaml", "mlflow.user": "me"}
    with _tracker(tmp_path / "other.db", context=given) as t:
        tags = t.client.get_run(t.run_id).data.tags
    assert tags["mlflow.source.name"] == "f3ocus grid g.yaml" and tags["mlflow.user"] == "me"
