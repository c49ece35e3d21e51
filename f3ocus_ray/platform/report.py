"""`f3ocus report --grid NAME`: comparison tables and plots of a grid run, from MLflow alone.

`tables.md` holds the paper's tables (see `paper_tables`): Table 1 (methods x tasks, mean ± std
over seeds) and, per task, Table 2 (score, Mbit, trainable parameters, GFLOPs, seconds), with
`table1.csv` / `table2_<task>.csv`, the metric per round by method and each method's layer
choice, units x rounds, side by side (`rounds_by_method_<task>.png`, `layer_choice_<task>.png`),
and last the methods ranked by the mean of their last 3 rounds. `comparison.md` holds one row
per trial (its run name, axis values, score, final and best metric, rounds, communication per
client), then the score averaged over the other axes for each axis value (mean ± std), one bar
plot per axis and the per-round curves of every trial, a colour per method and the
question-only baseline as a dashed line. All under `<out>/<grid run>/`, and logged to the grid's
parent MLflow run (`report/`; the tables are its description).
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
from f3ocus_ray.platform.plots import ranking_png, side_by_side_png
from f3ocus_ray.platform.run_record import method_colours
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


def _baseline(runs) -> float | None:
    """The question-only baseline of the runs' data (a param; older runs: a metric)."""
    for r in runs:
        v = r.data.params.get("baseline.question_only") or r.data.metrics.get(
            "question_only_baseline"
        )
        if v is not None:
            return float(v)
    return None


def _method(run) -> str:
    return run.data.tags.get("method") or pt.method_label(run.data.params, _axes(run))


def _mbit_up(run) -> float:
    """Mbit up per client in the last round (older runs logged the sum over clients)."""
    m = run.data.metrics
    if "mbit_up" not in m:
        return float("nan")
    return m["mbit_up"] if "mbit_up_total" in m else m["mbit_up"] / _n_clients(run)


def build_report(
    grid: str,
    tracking_uri: str,
    out: str | Path,
    metric: str = "score",
    run_name: str | None = None,
) -> Path:
    """The report's files under `<out>/<grid run>/`; also logged to the grid's parent run (its
    artifacts, its description = the tables, its `best_method` tag)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    client = tracking_client(tracking_uri)
    run_name, runs = grid_runs(client, grid, run_name)
    folder = Path(out) / run_name
    folder.mkdir(parents=True, exist_ok=True)
    axis_names = sorted({a for r in runs for a in _axes(r)})
    colours = method_colours(_method(r) for r in runs)
    baseline = _baseline(runs)
    rows, curves = [], {}
    for r in runs:
        hist = sorted(client.get_metric_history(r.info.run_id, metric), key=lambda m: m.step)
        values = [m.value for m in hist if m.step >= 1]
        curves[r.info.run_name] = (values, colours[_method(r)])
        ax = _axes(r)
        rows.append(
            [r.info.run_name, r.info.status]
            + [ax.get(a, "") for a in axis_names]
            + [
                statistics.fmean(values[-pt.LAST_N :]) if values else float("nan"),
                values[-1] if values else float("nan"),
                max(values) if values else float("nan"),
                len(values),
                _mbit_up(r),
            ]
        )
    score_name = f"{metric}, mean of last {pt.LAST_N} rounds"
    header = ["run", "status", *axis_names, score_name, f"final {metric}", f"best {metric}"]
    header += ["rounds", "Mbit up / client (last round)"]
    parts = [
        f"# Grid {grid}, run {run_name}: {len(runs)} trials",
        "",
        pt.markdown(header, rows),
        "",
    ]
    _write_csv(folder / "trials.csv", header, rows)

    score_col = 2 + len(axis_names)
    for i, a in enumerate(axis_names):
        groups: dict[str, list[float]] = defaultdict(list)
        for row in rows:
            groups[row[2 + i]].append(row[score_col])
        if len(groups) < 2:
            continue
        summary = [[v, len(xs), statistics.fmean(xs), _spread(xs)] for v, xs in groups.items()]
        parts += [
            f"## {a}",
            "",
            pt.markdown([a, "trials", f"mean {score_name}", "std over trials"], summary),
            "",
        ]
        labels = [str(s[0]) for s in summary]
        fig, axp = plt.subplots(figsize=(6, 0.45 * len(summary) + 1.4))
        bar_colours = [colours.get(v, "#1f77b4") for v in labels]
        errs = [0.0 if s[3] == "–" else s[3] for s in summary]
        axp.barh(labels, [s[2] for s in summary], xerr=errs, color=bar_colours)
        axp.invert_yaxis()  # first value on top; horizontal bars: labels never overlap
        if baseline is not None:
            axp.axvline(baseline, color="k", ls="--", lw=1, label="question-only baseline")
            axp.legend(fontsize=7, loc="lower right")
        axp.set_xlabel(score_name)
        axp.set_title(f"{grid}: {a}")
        fig.tight_layout()
        fig.savefig(folder / f"by_{a.replace('/', '_')}.png", dpi=100)
        plt.close(fig)

    tables = _paper_tables(client, runs, metric, folder, f"Grid {grid}, run {run_name}", colours)

    fig, axp = plt.subplots(figsize=(7, 4))
    for name, (values, colour) in curves.items():
        axp.plot(range(1, len(values) + 1), values, label=name, lw=1.2, color=colour)
    if baseline is not None:
        axp.axhline(baseline, color="k", ls="--", lw=1, label="question-only baseline")
    axp.set_xlabel("round")
    axp.set_ylabel(metric)
    if len(curves) <= 12:
        axp.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(folder / "rounds.png", dpi=100)
    plt.close(fig)
    (folder / "comparison.md").write_text("\n".join(parts))
    parent = _parent(client, grid, run_name)
    if parent is not None:
        client.log_artifacts(parent.info.run_id, str(folder), "report")
        if tables is not None:
            best = parent.data.tags.get("best_method")
            head = f"Best method: **{best}**\n\n" if best else ""
            client.set_tag(parent.info.run_id, "mlflow.note.content", head + tables)
    return folder


def _spread(xs: list[float]) -> float | str:
    return statistics.pstdev(xs) if len(xs) > 1 else "–"


def _parent(client, grid: str, run_name: str):
    exp = client.get_experiment_by_name(grid)
    found = client.search_runs(
        [exp.experiment_id],
        f"tags.`f3ocus.role` = 'grid' and tags.`f3ocus.grid_run` = '{run_name}'",
    )
    return found[0] if found else None


def _n_clients(run) -> int:
    if "data.n_clients" in run.data.params:
        return int(run.data.params["data.n_clients"])
    return max(
        1, sum(1 for k in run.data.metrics if k.startswith("client/") and k.endswith("/score"))
    )


def _usage(client, run) -> np.ndarray | None:
    """Clients training each unit per round, (units, rounds), from the run's mask artifacts."""
    with tempfile.TemporaryDirectory() as d:
        try:
            folder = Path(client.download_artifacts(run.info.run_id, "masks", d))
        except Exception:  # no masks logged (a run that failed before its first round)
            return None
        rows = [
            np.array(list(json.loads(f.read_text())["masks"].values()), dtype=float)
            for f in sorted(folder.glob("round_*.json"))
        ]
    return np.array([r.sum(axis=0) for r in rows]).T if rows else None


def finished_figures(client, runs, metric: str = "score") -> list[pt.RunFigures]:
    return [
        pt.run_figures(client, r, metric, _axes(r), _n_clients(r))
        for r in runs
        if r.info.status == "FINISHED"
    ]


def grid_answer(client, grid: str, run_name: str, metric: str = "score"):
    """The grid run's ranking: (header, rows, best method, the ranking figure as PNG or None)."""
    _, runs = grid_runs(client, grid, run_name)
    figures = finished_figures(client, runs, metric)
    header, rows, best = pt.ranking(figures)
    if best is None:
        return header, rows, None, None
    colours = method_colours(_method(r) for r in runs)
    bars = [(r[1], float(r[2]), float(r[3])) for r in rows]
    png = ranking_png(bars, colours, _baseline(runs), f"{grid}, {run_name}: best {best}")
    return header, rows, best, png


def ranking_markdown(header, rows) -> str:
    return "\n".join(
        [
            f"## Ranking: mean of the last {pt.LAST_N} rounds (± spread: std of those rounds' "
            "scores over all seeds)",
            "",
            pt.markdown(header, rows),
            "",
        ]
    )


def _paper_tables(
    client, runs, metric: str, folder: Path, title: str, colours: dict[str, str]
) -> str | None:
    import matplotlib.pyplot as plt

    figures = finished_figures(client, runs, metric)
    for f, r in zip(figures, [r for r in runs if r.info.status == "FINISHED"], strict=True):
        f.usage = _usage(client, r)
    if not figures:
        return None
    baseline = _baseline(runs)
    header, rows = pt.table1(figures)
    parts = [
        f"# {title}: the paper's tables",
        "",
        f"## Table 1: {metric} (%), mean of the last {pt.LAST_N} rounds; mean ± std over seeds",
        "",
        pt.markdown(header, rows),
        "",
    ]
    _write_csv(folder / "table1.csv", header, rows)
    for task in sorted({f.task for f in figures}):
        h2, r2 = pt.table2(figures, task)
        parts += [
            f"## Table 2, {task}: score (mean of the last {pt.LAST_N} rounds) and costs "
            "(means over rounds); both then over seeds",
            "",
        ]
        parts += [pt.markdown(h2, r2), ""]
        safe = task.replace("/", "_")
        _write_csv(folder / f"table2_{safe}.csv", h2, r2)
        chosen = [f for f in figures if f.task == task]
        methods = pt.method_order(f.method for f in chosen)

        fig, ax = plt.subplots(figsize=(7, 4))
        for m in methods:
            curves = [f.curve for f in chosen if f.method == m and f.curve]
            n = min(len(c) for c in curves)
            mean = np.mean([c[:n] for c in curves], axis=0)
            ax.plot(range(1, n + 1), mean, label=m, lw=1.4, color=colours.get(m))
        if baseline is not None:
            ax.axhline(baseline, color="k", ls="--", lw=1, label="question-only baseline")
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
        usage = {m: np.mean(_same_rounds(u), axis=0) for m, u in usage.items() if u}
        if usage:
            units = [str(i) for i in range(next(iter(usage.values())).shape[0])]
            png = side_by_side_png(
                usage, units, f"{task}: clients training each unit (row) per round"
            )
            (folder / f"layer_choice_{safe}.png").write_bytes(png)
    h, r, _ = pt.ranking(figures)
    parts.append(ranking_markdown(h, r))
    text = "\n".join(parts)
    (folder / "tables.md").write_text(text)
    return text


def _same_rounds(mats: list[np.ndarray]) -> list[np.ndarray]:
    n = min(m.shape[1] for m in mats)
    return [m[:, :n] for m in mats]


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
