"""`f3ocus ui`: refused before any server on a missing store; the link opens the runs' charts."""

from __future__ import annotations

from f3ocus_ray.cli import main
from f3ocus_ray.platform.tracking import RunTracker
from f3ocus_ray.platform.ui import latest_experiment, runs_link, server_command


def test_a_missing_store_exits_2_and_starts_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["ui", "--tracking-uri", "sqlite:///nothing.db"]) == 2
    assert "nothing.db does not exist" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no database, no mlruns/


def test_the_link_is_the_latest_experiments_runs_in_chart_mode(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with RunTracker(uri, "older", "a", {}):
        pass
    with RunTracker(uri, "newer", "b", {}) as t:
        newer = t.run.info.experiment_id
    assert latest_experiment(uri) == newer
    assert runs_link(5000, newer) == (
        f"http://127.0.0.1:5000/#/experiments/{newer}/runs?compareRunsMode=CHART"
    )
    cmd = server_command(uri, 5001)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--artifacts-destination") + 1] == str(tmp_path / "mlruns")
