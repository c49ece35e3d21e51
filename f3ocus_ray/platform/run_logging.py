"""What one experiment logs into its MLflow run, round by round and at its end.

Per round: the metrics as the UI shows them (run_record.round_metrics), the client table, the
masks and scores (JSON, and stepped images for the UI's slider), the Pareto front. At the end:
the summary metrics (from the run's logged history, so a resumed run's too) and the layer
choice, units x rounds (from the run folder's `layer_usage.json`, kept across resumes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from f3ocus_ray.fl.round import RoundResult
from f3ocus_ray.platform import run_record as rr
from f3ocus_ray.platform.plots import heatmap_png
from f3ocus_ray.platform.prepare import PreparedExperiment
from f3ocus_ray.platform.tracking import RunTracker


def log_start(tracker: RunTracker, config_yaml: str, prep: PreparedExperiment) -> None:
    """A new run's config, budgets, data facts (constant over rounds: params, not charts) and
    its data set as the run's dataset input."""
    facts = prep.facts
    tracker.log_text(config_yaml, "config.yaml")
    tracker.log_json(dict(zip(facts.clients, prep.budgets, strict=True)), "budgets.json")
    params = {"data.n_clients": len(facts.clients), "data.task": facts.task}
    params["baseline.majority"] = round(facts.majority_score, 4)
    if facts.question_only_score is not None:
        params["baseline.question_only"] = round(facts.question_only_score, 4)
    tracker.log_params(params)
    log_dataset(tracker, prep)


def log_round(tracker: RunTracker | None, res: RoundResult, prep: PreparedExperiment) -> None:
    """One round's metrics, client table rows, masks (JSON, and a stepped image for the UI's
    slider), scores and Pareto plot into the experiment's MLflow run."""
    if tracker is None:
        return
    # masks and scores cover the round's participants (every client unless clients_per_round)
    rows, cols = res.participants, prep.driver_spec.unit_names
    tracker.log_metrics(rr.round_metrics(res.metrics(), len(rows)), step=res.round)
    tracker.log_table(rr.client_rows(res.round, res), rr.CLIENT_TABLE)
    tracker.log_json(
        {
            "round": res.round,
            "units": cols,
            "masks": dict(zip(rows, res.masks.astype(int).tolist(), strict=True)),
        },
        f"masks/round_{res.round:03d}.json",
    )
    if res.raw_scores is not None:
        tracker.log_json(
            {
                "round": res.round,
                "method": prep.driver_spec.scoring.method,
                "units": cols,
                "raw": dict(zip(rows, res.raw_scores.tolist(), strict=True)),
                "normalised": dict(zip(rows, res.scores.tolist(), strict=True)),
            },
            f"scores/round_{res.round:03d}.json",
        )
        title = f"{prep.driver_spec.scoring.method} scores S (per client), round {res.round}"
        png = heatmap_png(res.scores, rows, cols, title, "viridis")
        tracker.log_image(png, "scores", step=res.round)
    if res.pareto_png is not None:
        tracker.log_png(res.pareto_png, f"pareto/round_{res.round:03d}.png")
    budget_of = dict(zip(prep.facts.clients, prep.budgets, strict=True))
    budgets = [f"{c} (k={budget_of[c]})" for c in rows]
    png = heatmap_png(res.masks, budgets, cols, f"selected units, round {res.round}")
    tracker.log_image(png, "masks", step=res.round)


def log_summary(tracker: RunTracker, question_only: float | None) -> dict[str, float]:
    """The run's summary metrics, from its logged history (so a resumed run's too)."""
    hist = tracker.client.get_metric_history(tracker.run_id, "score")
    curve = [(m.step, m.value) for m in hist if m.step >= 1]
    totals = {}
    for key, total in rr.TOTALS.items():
        values = [m.value for m in tracker.client.get_metric_history(tracker.run_id, key)]
        if values:
            totals[total] = sum(values)
    summary = rr.summary_metrics(curve, question_only, totals)
    last = max((s for s, _ in curve), default=0)
    tracker.log_metrics(summary, step=last)
    return summary


def log_layer_choice(tracker: RunTracker, run_dir: Path, prep: PreparedExperiment, method: str):
    """One figure: units x rounds, how many clients trained each unit in each round."""
    usage = (
        json.loads((run_dir / USAGE_FILE).read_text()) if (run_dir / USAGE_FILE).is_file() else {}
    )
    if not usage:
        return
    rounds = sorted(usage, key=int)
    matrix = np.array([usage[r] for r in rounds], dtype=float).T  # units x rounds
    title = (
        f"{method}: clients training each unit per round\n"
        f"budgets {format_budgets(prep.facts.clients, prep.budgets)}"
    )
    png = heatmap_png(matrix, prep.driver_spec.unit_names, rounds, title, "Blues", xlabel="round")
    tracker.log_png(png, rr.LAYER_CHOICE)


def format_budgets(clients: list[str], budgets: list[int]) -> str:
    if len(set(budgets)) == 1:
        return f"k={budgets[0]} for all {len(clients)} clients"
    return ", ".join(f"{c[:10]} {k}" for c, k in zip(clients, budgets, strict=True))


USAGE_FILE = "layer_usage.json"  # in the run folder: round -> clients per unit (for resumes)


def record_usage(run_dir: Path, res: RoundResult) -> None:
    f = run_dir / USAGE_FILE
    usage = json.loads(f.read_text()) if f.is_file() else {}
    usage[str(res.round)] = res.masks.sum(axis=0).astype(int).tolist()
    f.write_text(json.dumps(usage))


def log_dataset(tracker: RunTracker, prep: PreparedExperiment) -> None:
    import pandas as pd

    facts = prep.facts
    df = pd.DataFrame(
        {
            "client": facts.clients,
            "n_train": facts.n_train,
            "n_test": facts.n_test,
            "budget": prep.budgets,
        }
    )
    name = Path(str(facts.path)).name or "data"
    tracker.log_dataset(df, name=f"{name} ({facts.task})", source=str(facts.path))
