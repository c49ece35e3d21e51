"""The paper's two tables from MLflow runs: Table 1 (methods x tasks, mean ± std over seeds) and
Table 2 (per method: score, communication, trainable parameters, compute, wall time).

A run's method is its `method` axis when the grid names one, else a label derived from its
logged config (strategy, meta-heuristic, trained units); its task is its `task` axis, else its
config's `name`. A run's score is the mean of its last 3 rounds (the final round alone is
noisy); every per-round cost is the mean over the run's rounds; both then over seeds.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from f3ocus_ray.models.units import get_unit_mode, unit_mode_names

# strategy "full" trains every unit: a PEFT baseline named by its unit mode's label
FULL_FINE_TUNING = get_unit_mode("layers").label


def _full_method(unit_mode: str) -> str:
    try:
        return get_unit_mode(unit_mode).label
    except ValueError:  # a mode no longer (or not yet) registered in this process
        return f"full ({unit_mode})"


LAST_N = 3  # a run's score: the mean of its last rounds

# per-round metrics averaged for Table 2, and their column names
_ROUND_METRICS = {
    "mbit_up": "Mbit up / client / round",
    "trainable_params": "trainable params / client",
    "gflops_per_client": "GFLOPs / client / round",
    "seconds_score": "s scoring / round",
    "seconds_select": "s selection / round",
    "seconds_train": "s training / round",
}
# where each is logged (run_record.round_metrics: costs per client, `*_total` beside them)
_LOGGED_AS = {"gflops_per_client": "gflops"}
# runs logged before `*_total` existed (no `mbit_up_total`) summed these over clients
_PER_CLIENT = {"mbit_up", "trainable_params"}


def method_label(params: dict[str, str], axes: dict[str, str]) -> str:
    """The run's method: its `method` axis, else strategy [meta-heuristic] [+ units]."""
    if "method" in axes:
        return axes["method"]
    strategy = params.get("federation.strategy", "?")
    # runs logged before the rename carry `model.units`
    units = params.get("model.unit_mode", params.get("model.units", "layers"))
    if strategy == "full":
        return _full_method(units)
    label = f"f3ocus-{params.get('selection.algorithm')}" if strategy == "f3ocus" else strategy
    return label if units == "layers" else f"{label} + {units}"


def task_label(params: dict[str, str], axes: dict[str, str]) -> str:
    return axes.get("task", params.get("name", "?"))


@dataclass
class RunFigures:
    """What the tables need of one finished run."""

    method: str
    task: str
    final: float  # the metric after the last round
    curve: list[float]  # the metric per round
    per_round: dict[str, float]  # mean over rounds of each Table 2 metric (per client)
    usage: np.ndarray | None = None  # (units, rounds) clients training each unit per round
    name: str = ""  # the run's name

    @property
    def last(self) -> list[float]:
        """The last rounds' scores."""
        return self.curve[-LAST_N:]

    @property
    def score(self) -> float:
        """The run's score: the mean of its last rounds."""
        return statistics.fmean(self.last) if self.curve else float("nan")


@dataclass
class Cell:
    values: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.pstdev(self.values) if len(self.values) > 1 else 0.0

    def text(self, scale: float = 100.0) -> str:
        if not self.values:
            return "–"
        if len(self.values) == 1:  # one seed: no spread to show
            return f"{self.mean * scale:.2f}"
        return f"{self.mean * scale:.2f} ± {self.std * scale:.2f}"


def run_figures(client, run, metric: str, axes: dict[str, str], n_clients: int) -> RunFigures:
    """Read one run's curve and per-round costs from MLflow."""
    params = run.data.params
    hist = sorted(client.get_metric_history(run.info.run_id, metric), key=lambda m: m.step)
    curve = [m.value for m in hist if m.step >= 1]
    per_round = {}
    summed = "mbit_up_total" not in run.data.metrics  # an older run's costs
    for key in _ROUND_METRICS:
        rows = client.get_metric_history(run.info.run_id, _LOGGED_AS.get(key, key))
        if not rows and key in _LOGGED_AS:  # an older run's name
            rows = client.get_metric_history(run.info.run_id, key)
        scale = 1 / n_clients if summed and key in _PER_CLIENT else 1.0
        values = [m.value for m in rows if m.step >= 1]
        if values:
            per_round[key] = statistics.fmean(values) * scale
    return RunFigures(
        method=run.data.tags.get("method") or method_label(params, axes),
        task=task_label(params, axes),
        final=curve[-1] if curve else float("nan"),
        curve=curve,
        per_round=per_round,
        name=run.info.run_name,
    )


def method_order(methods: Iterable[str]) -> list[str]:
    """F3OCUS variants first, then LNTK, then the rest alphabetically (PEFT baselines last)."""
    peft = {get_unit_mode(n).label for n in unit_mode_names()}

    def key(m: str) -> tuple[int, str]:
        low = m.lower()
        rank = 0 if low.startswith("f3ocus") else 1 if low.startswith("lntk") else 2
        return (3 if m in peft else rank), low

    return sorted(set(methods), key=key)


def table1(runs: list[RunFigures]) -> tuple[list[str], list[list[str]]]:
    """Methods x tasks, the runs' score (mean of the last 3 rounds) in percent, mean ± std
    over the runs (seeds) of each."""
    tasks = sorted({r.task for r in runs})
    cells: dict[tuple[str, str], Cell] = defaultdict(Cell)
    for r in runs:
        cells[r.method, r.task].values.append(r.score)
    rows = [[m, *(cells[m, t].text() for t in tasks)] for m in method_order(r.method for r in runs)]
    return ["method", *tasks], rows


def table2(runs: list[RunFigures], task: str) -> tuple[list[str], list[list[str]]]:
    """One task: per method the score and the per-round costs, and the communication saved
    against full fine-tuning when the runs hold it."""
    chosen = [r for r in runs if r.task == task]
    by_method: dict[str, list[RunFigures]] = defaultdict(list)
    for r in chosen:
        by_method[r.method].append(r)

    def mean_of(rs: list[RunFigures], key: str) -> float:
        values = [r.per_round[key] for r in rs if key in r.per_round]
        return statistics.fmean(values) if values else float("nan")

    full = by_method.get(FULL_FINE_TUNING)
    full_mbit = mean_of(full, "mbit_up") if full else None
    header = ["method", f"score (%), mean of last {LAST_N} rounds", *_ROUND_METRICS.values()]
    if full_mbit:
        header.append("communication vs full FT")
    rows = []
    for m in method_order(by_method):
        rs = by_method[m]
        row = [m, Cell([r.score for r in rs]).text()]
        for key in _ROUND_METRICS:
            v = mean_of(rs, key)
            row.append(_fmt(v, key))
        if full_mbit:
            mbit = mean_of(rs, "mbit_up")
            row.append(f"{full_mbit / mbit:.1f}× less" if mbit > 0 else "–")
        rows.append(row)
    return header, rows


def ranking(runs: list[RunFigures]) -> tuple[list[str], list[list[str]], str | None]:
    """Methods best first by their score (mean of the last 3 rounds, mean over seeds), with
    its spread: the std of those last rounds' scores over all seeds. Returns the table and the
    best method."""
    by_method: dict[str, list[RunFigures]] = defaultdict(list)
    for r in runs:
        if r.curve:
            by_method[r.method].append(r)
    order = sorted(by_method, key=lambda m: -statistics.fmean(r.score for r in by_method[m]))
    header = [
        "rank",
        "method",
        f"score (%), mean of last {LAST_N} rounds",
        "± spread",
        "final (%)",
        "best (%)",
        "runs",
    ]
    rows = []
    for i, m in enumerate(order, 1):
        rs = by_method[m]
        pooled = [v for r in rs for v in r.last]
        spread = statistics.pstdev(pooled) if len(pooled) > 1 else 0.0
        rows.append(
            [
                str(i),
                m,
                f"{statistics.fmean(r.score for r in rs) * 100:.2f}",
                f"{spread * 100:.2f}",
                f"{statistics.fmean(r.final for r in rs) * 100:.2f}",
                f"{statistics.fmean(max(r.curve) for r in rs) * 100:.2f}",
                str(len(rs)),
            ]
        )
    return header, rows, (order[0] if order else None)


def _fmt(v: float, key: str) -> str:
    if v != v:  # nan
        return "–"
    if key == "trainable_params":
        return f"{v:,.0f}"
    if key.startswith("seconds"):
        return f"{v:.2f}"
    return f"{v:.3f}"


def markdown(header: list[str], rows: list[list[Any]]) -> str:
    """A markdown table; floats with 4 decimals, anything else as str()."""

    def cell(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(out)
