"""What a run records in MLflow, apart from how it is logged: the params that apply to its
method, its name and colour, its tags, the per-round metrics as the UI shows them, and the
summary metrics that rank the methods.

Per-round metric names carry no prefix: MLflow's UI puts every `prefix/` section before
"Model metrics", so the main ones (`score`, `loss`, `train_loss`, `usage_variance`) and the
summary (`score_final`, `score_best`, `score_last3`, `best_round`,
`score_gap_vs_question_only`) sit there with the costs (per client of the round's
participants, and `*_total`), `selection_*`, `engine_*` and `seconds_*`. Per-client scores go
to a table artifact, not metrics.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable
from typing import Any

from f3ocus_ray.config import ExperimentConfig
from f3ocus_ray.models.registry import GENERATIVE, REAL
from f3ocus_ray.platform.paper_tables import method_label, method_order, task_label

LAST_N = 3  # the ranking score: the mean of the last rounds (one round is noisy)
CLIENT_TABLE = "clients.json"  # per round and client: score, loss, train loss, GFLOPs
LAYER_CHOICE = "layer_choice.png"  # units x rounds: how many clients trained each unit

# a colour per method, in method_order: the same in the UI (mlflow.runColor) and the report
PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)


def method_colours(methods: Iterable[str]) -> dict[str, str]:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(method_order(methods))}


# --- params ---------------------------------------------------------------------------------

_UNIT_MODE_KEYS = {
    "model.adapter_reduction": {"adapters", "dual_adapters"},
    "model.lora_rank": {"lora"},
    "model.prompt_length": {"prompt"},
    "model.distill_weight": {"dual_adapters"},
    "model.distill_temperature": {"dual_adapters"},
}
_TINY_ONLY = (
    "model.hidden_size",
    "model.num_heads",
    "model.intermediate_size",
    "model.patch_size",
    "model.vision_layers",
    "model.initializer_range",
    "model.init_seed",
)
_REAL_ONLY = ("model.path", "model.dtype", "model.device")
_SYNTH_CLIENT_KEYS = {  # which synthetic task reads which key
    "data.synthetic.n_clients": {"multilabel", "mixed"},
    "data.synthetic.alpha": {"multilabel", "mixed"},
    "data.synthetic.samples_per_client": {"multilabel", "mixed", "domain_gap"},
}


def run_params(cfg: ExperimentConfig, experiment: str) -> dict[str, Any]:
    """The config's params that apply to this run's method, as it ran: no selection.* unless
    the server selects (f3ocus), the scoring the strategy really does (none, or its method and
    schedule), no keys of other unit modes, families or synthetic tasks, no unset values, and
    the MLflow experiment the run is really in."""
    flat = cfg.flat()
    strategy = cfg.federation.strategy
    unit_mode = cfg.model.unit_mode
    scoring = cfg.effective_scoring()
    synth_task = cfg.data.synthetic.task
    out: dict[str, Any] = {}
    for k, v in flat.items():
        if v is None or k.startswith("tracking."):
            continue
        if k.startswith("selection.") and strategy != "f3ocus":
            continue
        if k.startswith("scoring."):
            continue  # below, from what ran
        if k.startswith("data.synthetic.") and (
            cfg.data.path is not None or synth_task not in _SYNTH_CLIENT_KEYS.get(k, {synth_task})
        ):
            continue
        if k == "data.cache_dir" and cfg.data.path is not None:
            continue
        if k in _UNIT_MODE_KEYS and unit_mode not in _UNIT_MODE_KEYS[k]:
            continue
        real = cfg.model.name in REAL
        if (k in _TINY_ONLY and real) or (k in _REAL_ONLY and not real):
            continue
        if k == "model.max_answer_length" and cfg.model.name not in GENERATIVE:
            continue
        if k == "model.freeze_vision" and cfg.model.name.endswith("vilt"):
            continue
        out[k] = v
    if scoring is not None:
        out["scoring.method"] = scoring.method
        out["scoring.schedule"] = scoring.schedule
        out["scoring.n_samples"] = scoring.n_samples
        out["scoring.mode"] = scoring.mode
        if scoring.schedule == "every_k":
            out["scoring.every_k"] = scoring.every_k
        if scoring.mode == "logits":
            out["scoring.tol"], out["scoring.max_iter"] = scoring.tol, scoring.max_iter
    out["tracking.experiment"] = experiment
    return out


# --- names and tags -------------------------------------------------------------------------

# axes whose value the method slug, budget and seed already show
_NAMED_AXES = {
    "method",
    "seed",
    "federation.strategy",
    "selection.algorithm",
    "model.unit_mode",
    "federation.budgets",
}


def slug(text: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


def method_slug(cfg: ExperimentConfig) -> str:
    strategy, unit_mode = cfg.federation.strategy, cfg.model.unit_mode
    if strategy == "full":
        return f"full-{slug(unit_mode)}"
    name = f"f3ocus-{cfg.selection.algorithm}" if strategy == "f3ocus" else strategy
    return slug(name if unit_mode == "layers" else f"{name}-{unit_mode}")


def budget_slug(cfg: ExperimentConfig) -> str:
    b = cfg.federation.budgets
    values = [b] if isinstance(b, int) else list(b)
    lo, hi = min(values), max(values)
    return f"k{lo}" if lo == hi else f"k{lo}-{hi}"


def run_name(cfg: ExperimentConfig, axes: dict[str, Any]) -> str:
    """A run named after what varied, e.g. `f3ocus-nsga2-k3-s0` (other axes appended)."""
    parts = [method_slug(cfg), budget_slug(cfg), f"s{cfg.seed}"]
    parts += [slug(v) for k, v in axes.items() if k not in _NAMED_AXES]
    return "-".join(parts)


def unique_names(names: list[str]) -> list[str]:
    """Names made distinct by a counter where two trials would share one."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if names.count(n) == 1 else f"{n}-{seen[n]}")
    return out


def run_tags(cfg: ExperimentConfig, axes: dict[str, Any]) -> dict[str, str]:
    """method, selector, scorer, unit mode, task and seed: what to group and filter by."""
    flat = {k: str(v) for k, v in cfg.flat().items()}
    str_axes = {k: str(v) for k, v in axes.items()}
    scoring = cfg.effective_scoring()
    return {
        "method": method_label(flat, str_axes),
        "selector": cfg.selection.algorithm if cfg.federation.strategy == "f3ocus" else "none",
        "scorer": scoring.method if scoring is not None else "none",
        "unit_mode": cfg.model.unit_mode,
        "task": task_label(flat, str_axes),
        "seed": str(cfg.seed),
    }


# --- metrics --------------------------------------------------------------------------------

_PER_CLIENT_COST = {"mbit_up", "mbit_down", "trainable_params"}  # RoundResult: summed
_RENAMED = {
    "gflops_train": "gflops_total",
    "gflops_per_client": "gflops",
    "seconds": "seconds_round",
}


def round_metrics(metrics: dict[str, float], n_clients: int) -> dict[str, float]:
    """A round's metrics (RoundResult.metrics) as logged: costs per client and as `*_total`,
    no prefixes, no per-client keys (those go to the client table)."""
    out = {}
    for k, v in metrics.items():
        if k.startswith("client/"):
            continue
        if k in _PER_CLIENT_COST:
            out[k] = v / max(1, n_clients)
            out[f"{k}_total"] = v
        elif k in _RENAMED:
            out[_RENAMED[k]] = v
        elif k.startswith(("selection/", "engine/")):
            out[k.replace("/", "_", 1)] = v
        else:
            out[k] = v
    return out


def client_rows(rnd: int, res: Any) -> list[dict[str, Any]]:
    """The round's per-client rows of the client table."""
    return [
        {
            "round": rnd,
            "client": c,
            "score": res.client_score[c],
            "loss": res.client_loss[c],
            "train_loss": res.train_loss.get(c),
            "gflops": res.client_gflops.get(c),
        }
        for c in res.client_score
    ]


def summary_metrics(
    curve: list[tuple[int, float]], question_only: float | None, totals: dict[str, float]
) -> dict[str, float]:
    """From the score per round (step, value): final, best, the mean of the last 3 rounds, the
    best round, the gap of that mean to the question-only baseline; and the cost totals."""
    if not curve:
        return {}
    curve = sorted(curve)
    values = [v for _, v in curve]
    best_step, best = max(curve, key=lambda sv: (sv[1], -sv[0]))
    last = statistics.fmean(values[-LAST_N:])
    out = {
        "score_final": values[-1],
        "score_best": best,
        "best_round": float(best_step),
        "score_last3": last,
        **totals,
    }
    if question_only is not None:
        out["score_gap_vs_question_only"] = last - question_only
    return out


# the per-round metrics summed over rounds into the run's cost totals
TOTALS = {
    "mbit_up_total": "total_mbit_up",
    "mbit_down_total": "total_mbit_down",
    "gflops_total": "total_gflops",
    "seconds_round": "total_seconds",
}
