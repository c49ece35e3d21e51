"""`f3ocus report --grid NAME`: comparison tables and plots of a grid run, from MLflow alone.

`tables.md` holds the paper's tables (see `paper_tables`): Table 1 (methods x tasks, mean ± std
over seeds) and, per task, Table 2 (score, Mbit, trainable parameters, GFLOPs, seconds), with
`table1.csv` / `table2_<task>.csv`, the metric per round by method and the layer usage of each
method's selections (`rounds_by_method_<task>.png`, `selection_usage_<task>.png`).
`comparison.md` holds one row per trial (its axis values, final metric, best metric, rounds,
communication), then the metric averaged over the other axes for each axis value (mean ± std),
one bar plot per axis and the per-round curves of every trial. All under `<out>/<grid run>/`.
"""

from __future__ import annotations

import csv
import json
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from f3ocus_ray.errors import UserError
from f3ocus_ray.platform import paper_tables as pt
from f3ocus_ray.platform.tracking import tracking_client


def grid_runs(client: mlflow.MlflowClient, grid: str, run_name: str | None = None):
    """(grid run name, its trial runs): the latest grid run unless `run_name` is given."""
    exp = client.get_experiment_by_name(grid)
    if exp is None:
        raise UserError(f"no MLflow experiment named {grid!r}")
    parents = client.search_runs(
        [exp.experiment_id], "tags.`f3ocus.role` = 'grid'", order_by=["start_time DESC"]
    )
    if run_name is None:
        if not parents:
            raise UserError(f"experiment {grid!r} holds no grid run")
        run_name = parents[0].data.tags["f3ocus.grid_run"]
    trials = [
        r
        for r in client.search_runs(
            [exp.experiment_id], f"tags.`f3ocus.grid_run` = '{run_name}'", max_results=50_000
        )
        if r.data.tags.get("f3ocus.role") != "grid"
    ]
    return run_name, sorted(trials, key=lambda r: r.data.tags.get("f3ocus.trial", ""))


def _axes(run) -> dict[str, str]:
    return {k[5:]: v for k, v in run.data.tags.items() if k.startswith("axis.")}


def build_report(
    grid: str,
    tracking_uri: str,
    out: str | Path,
    metric: str = "score",
    run_name: str | None = None,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    client = tracking_client(tracking_uri)
    run_name, runs = grid_runs(client, grid, run_name)
    folder = Path(out) / run_name
    folder.mkdir(parents=True, exist_ok=True)
    axis_names = sorted({a for r in runs for a in _axes(r)})
    rows, curves = [], {}
    for r in runs:
        hist = sorted(client.get_metric_history(r.info.run_id, metric), key=lambda m: m.step)
        values = [m.value for m in hist]
        curves[r.data.tags.get("f3ocus.trial", r.info.run_name)] = values
        mbit = r.data.metrics.get("mbit_up")
        ax = _axes(r)
        rows.append(
            [r.data.tags.get("f3ocus.trial", r.info.run_name), r.info.status]
            + [ax.get(a, "") for a in axis_names]
            + [
                values[-1] if values else float("nan"),
                max(values) if values else float("nan"),
                len(values),
                mbit if mbit is not None else float("nan"),
            ]
        )
    header = ["trial", "status", *axis_names, f"final {metric}", f"best {metric}", "rounds"]
    header.append("mbit_up (last round)")
    parts = [
        f"# Grid {grid}, run {run_name}: {len(runs)} trials",
        "",
        pt.markdown(header, rows),
        "",
    ]
    _write_csv(folder / "trials.csv", header, rows)

    final_col = 2 + len(axis_names)
    for i, a in enumerate(axis_names):
        groups: dict[str, list[float]] = defaultdict(list)
        for row in rows:
            groups[row[2 + i]].append(row[final_col])
        if len(groups) < 2:
            continue
        summary = [
            [v, len(xs), statistics.fmean(xs), statistics.pstdev(xs) if len(xs) > 1 else 0.0]
            for v, xs in groups.items()
        ]
        parts += [
            f"## {a}",
            "",
            pt.markdown([a, "trials", f"mean final {metric}", "std"], summary),
            "",
        ]
        fig, axp = plt.subplots(figsize=(max(4, len(summary) * 0.9), 3))
        axp.bar([str(s[0]) for s in summary], [s[2] for s in summary], yerr=[s[3] for s in summary])
        axp.set_ylabel(f"final {metric}")
        axp.set_title(f"{grid}: {a}")
        fig.tight_layout()
        fig.savefig(folder / f"by_{a.replace('/', '_')}.png", dpi=100)
        plt.close(fig)

    _paper_tables(client, runs, metric, folder, f"Grid {grid}, run {run_name}")

    fig, axp = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        axp.plot(range(1, len(values) + 1), values, label=name, lw=1)
    axp.set_xlabel("round")
    axp.set_ylabel(metric)
    if len(curves) <= 12:
        axp.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(folder / "rounds.png", dpi=100)
    plt.close(fig)
    (folder / "comparison.md").write_text("\n".join(parts))
    return folder


def _n_clients(run) -> int:
    return max(
        1, sum(1 for k in run.data.metrics if k.startswith("client/") and k.endswith("/score"))
    )


def _usage(client, run) -> np.ndarray | None:
    """Share of clients training each unit, over all rounds (from the run's mask artifacts)."""
    with tempfile.TemporaryDirectory() as d:
        try:
            folder = Path(client.download_artifacts(run.info.run_id, "masks", d))
        except Exception:  # no masks logged (a run that failed before its first round)
            return None
        rows = [
            np.array(list(json.loads(f.read_text())["masks"].values()), dtype=float)
            for f in sorted(folder.glob("round_*.json"))
        ]
    return np.mean([r.mean(axis=0) for r in rows], axis=0) if rows else None


def _paper_tables(client, runs, metric: str, folder: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    figures = []
    for r in runs:
        if r.info.status != "FINISHED":
            continue
        f = pt.run_figures(client, r, metric, _axes(r), _n_clients(r))
        f.usage = _usage(client, r)
        figures.append(f)
    if not figures:
        return
    header, rows = pt.table1(figures)
    parts = [
        f"# {title}: the paper's tables",
        "",
        f"## Table 1: final {metric} (%), mean ± std over seeds",
        "",
        pt.markdown(header, rows),
        "",
    ]
    _write_csv(folder / "table1.csv", header, rows)
    for task in sorted({f.task for f in figures}):
        h2, r2 = pt.table2(figures, task)
        parts += [f"## Table 2, {task}: score and costs, means over rounds and seeds", ""]
        parts += [pt.markdown(h2, r2), ""]
        safe = task.replace("/", "_")
        _write_csv(folder / f"table2_{safe}.csv", h2, r2)
        chosen = [f for f in figures if f.task == task]
        methods = pt.method_order(f.method for f in chosen)

        fig, ax = plt.subplots(figsize=(7, 4))
        for m in methods:
            curves = [f.curve for f in chosen if f.method == m and f.curve]
            n = min(len(c) for c in curves)
            ax.plot(range(1, n + 1), np.mean([c[:n] for c in curves], axis=0), label=m, lw=1.2)
        ax.set_xlabel("round")
        ax.set_ylabel(f"{metric} (mean over seeds)")
        ax.set_title(task)
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        fig.savefig(folder / f"rounds_by_method_{safe}.png", dpi=100)
        plt.close(fig)

        usage = {
            m: [f.usage for f in chosen if f.method == m and f.usage is not None] for m in methods
        }
        usage = {m: np.mean(u, axis=0) for m, u in usage.items() if u}
        if usage:
            fig, ax = plt.subplots(figsize=(7, 0.4 * len(usage) + 1.2))
            im = ax.imshow(
                np.array(list(usage.values())), aspect="auto", cmap="Blues", vmin=0, vmax=1
            )
            ax.set_yticks(range(len(usage)), list(usage))
            ax.set_xlabel("unit (block)")
            ax.set_title(f"{task}: share of clients training each unit, all rounds")
            fig.colorbar(im, ax=ax)
            fig.tight_layout()
            fig.savefig(folder / f"selection_usage_{safe}.png", dpi=100)
            plt.close(fig)
    (folder / "tables.md").write_text("\n".join(parts))


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
