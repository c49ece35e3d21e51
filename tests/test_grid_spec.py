"""Grid expansion, refusal before any work, and the dry run (fast: no Ray)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from f3ocus_ray.cli import main
from f3ocus_ray.errors import ConfigError
from f3ocus_ray.platform.dry_run import dry_run
from f3ocus_ray.platform.grid_spec import check_runnable, load_grid

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path, text: str) -> Path:
    p = tmp_path / "grid.yaml"
    p.write_text(textwrap.dedent(text))
    return p


GRID = """
    name: g
    base:
      model: {num_layers: 6}
      federation: {rounds: 2, strategy: f3ocus}
    set: {training.lr: 0.01}
    axes:
      method:
        last_k: {federation.strategy: last_k}
        f3ocus-sa: {federation.strategy: f3ocus, selection.algorithm: sa}
        f3ocus-abc: {federation.strategy: f3ocus, selection.algorithm: abc}
      federation.budgets: [2, 4]
      seed: [0, 1, 2]
    exclude:
      - {method: last_k, federation.budgets: 4}
"""


def test_expansion_axes_bundles_exclusions_seeds(tmp_path):
    grid = load_grid(_write(tmp_path, GRID), cwd=tmp_path)
    assert len(grid.trials) == 3 * 2 * 3 - 3  # last_k x budget 4 excluded (3 seeds)
    assert not grid.refused()
    keys = [(t.axes["method"], t.axes["federation.budgets"], t.axes["seed"]) for t in grid.trials]
    assert len(set(keys)) == len(keys)
    assert ("last_k", 4, 0) not in keys
    t = next(
        t
        for t in grid.trials
        if t.axes == {"method": "f3ocus-abc", "federation.budgets": 4, "seed": 2}
    )
    assert t.cfg.selection.algorithm == "abc" and t.cfg.federation.strategy == "f3ocus"
    assert t.cfg.federation.budgets == 4 and t.cfg.seed == 2 and t.cfg.training.lr == 0.01
    assert t.cfg.federation.rounds == 2 and t.cfg.model.num_layers == 6
    # relative paths were made absolute (trials run in their own folders)
    assert t.cfg.tracking.uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert Path(t.cfg.output_dir).is_absolute() and Path(t.cfg.data.cache_dir).is_absolute()
    assert [t.index for t in grid.trials] == list(range(len(grid.trials)))


def test_bad_combination_refused_with_its_axis_values(tmp_path):
    bad = GRID.replace("federation.budgets: [2, 4]", "federation.budgets: [2, 9]")
    grid = load_grid(_write(tmp_path, bad), cwd=tmp_path)
    assert len(grid.refused()) == 9
    with pytest.raises(ConfigError, match=r"federation.budgets=9.*exceeds the 6 selectable"):
        check_runnable(grid)


def test_unknown_exclusion_axis_and_unknown_key_refused(tmp_path):
    with pytest.raises(ConfigError, match="'modle' is not an axis"):
        load_grid(_write(tmp_path, GRID + "      - {modle: x}\n"), cwd=tmp_path)
    grid = load_grid(_write(tmp_path, GRID.replace("seed: [0, 1, 2]", "sede: [0]")), cwd=tmp_path)
    assert "did you mean 'seed'" in grid.refused()[0].error


def test_cli_refuses_a_bad_grid_before_any_trial(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = GRID.replace("seed: [0, 1, 2]", "training.lr: [0.01, -1.0]")
    code = main(["grid", str(_write(tmp_path, bad))])
    err = capsys.readouterr().err
    assert code == 2
    assert "training.lr=-1.0" in err and "method=last_k" in err
    assert not (tmp_path / "ray_results").exists() and not (tmp_path / "mlflow.db").exists()


def test_paper_grid_dry_run_counts_over_10k_client_experiments(tmp_path):
    grid = load_grid(ROOT / "experiments" / "paper_grid.yaml", cwd=tmp_path)
    text = dry_run(grid)
    n_clients = int(text.split("client-level experiments: ")[1].split()[0].replace(",", ""))
    # 15 methods x 2 budgets x 3 seeds per (task, model); tasks of 5, 8, 9, 4, 10 and 3 + 2
    # clients; the two classification families on all six, the two generative ones on 1-3
    per = 15 * 2 * 3
    assert n_clients == per * (2 * (5 + 8 + 9 + 4 + 10 + 5) + 2 * (5 + 8 + 9)) >= 10_000
    assert len(grid.trials) == per * (2 * 6 + 2 * 3)
    assert f"{len(grid.trials)} trials" in text and "CPU-hours" in text
    assert f"runnable now: {len(grid.trials)} of {len(grid.trials)} trials" in text


def test_smoke_grid_dry_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["grid", str(ROOT / "experiments" / "smoke_grid.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "smoke_grid: 10 trials" in out
    assert "client-level experiments: 40" in out
    assert "10 trials: [{'CPU': 0.25}, {'CPU': 0.75}]" in out
    assert "runnable now: 10 of 10" in out


@pytest.mark.parametrize("run", [None, "tr-20990101-000000", "../escape"])
def test_a_mistyped_resume_is_refused_before_any_work(
    tmp_path, capsys, monkeypatch, run, small_vqa
):
    """`grid --resume` with no run, or a run that does not exist (or is not a folder name),
    ends with exit 2 before Ray starts or MLflow is touched: no parent run is left RUNNING."""
    import ray
    from gridutil import tiny_grid

    monkeypatch.chdir(tmp_path)
    path = tiny_grid(tmp_path, small_vqa, "seed: [0, 1]", name="tr")
    started = ray.is_initialized()
    args = ["grid", str(path), "--resume"] + (["--run", run] if run else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    expected = {None: "nothing to resume", "../escape": "a folder name"}.get(
        run, "nothing to resume at"
    )
    assert expected in err and err.count("\n") == 1
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray_results").exists()
    assert ray.is_initialized() == started
