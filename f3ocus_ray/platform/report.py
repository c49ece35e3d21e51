"""`f3ocus report --grid NAME`: comparison tables and plots of a grid run, from MLflow alone.

One row per trial (its axis values, final metric, best metric, rounds, communication), then the
metric averaged over the other axes for each axis value (mean ± std), one bar plot per axis and
the per-round curves of every trial. Written to `<out>/<grid run>/` as Markdown, CSV and PNG.
"""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import mlflow

from f3ocus_ray.errors import UserError
from f3ocus_ray.platform.tracking import resolve_tracking_uri


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


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(out)


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

    client = mlflow.MlflowClient(tracking_uri=resolve_tracking_uri(tracking_uri))
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
    parts = [f"# Grid {grid}, run {run_name}: {len(runs)} trials", "", _table(header, rows), ""]
    with (folder / "trials.csv").open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])

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
        parts += [f"## {a}", "", _table([a, "trials", f"mean final {metric}", "std"], summary), ""]
        fig, axp = plt.subplots(figsize=(max(4, len(summary) * 0.9), 3))
        axp.bar([str(s[0]) for s in summary], [s[2] for s in summary], yerr=[s[3] for s in summary])
        axp.set_ylabel(f"final {metric}")
        axp.set_title(f"{grid}: {a}")
        fig.tight_layout()
        fig.savefig(folder / f"by_{a.replace('/', '_')}.png", dpi=100)
        plt.close(fig)

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
