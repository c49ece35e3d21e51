"""`f3ocus grid --dry-run`: the size and cost of a grid, without running it.

Counts trials and client-level experiments (Σ over trials of their clients), the resources each
trial reserves, and resource-hours from a stated cost per client-round (per model, in the grid's
`cost:` section) or from a short calibration (one round of the first runnable trial). Trials
whose config the engine does not accept yet (a model not implemented, absent data) are counted
and listed as not runnable, never run or faked.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from f3ocus_ray.config import EngineConfig, get_dotted
from f3ocus_ray.errors import ConfigError
from f3ocus_ray.platform.grid_spec import Grid, Trial
from f3ocus_ray.platform.tune_trial import trial_bundles

_path_clients: dict[str, int] = {}


def count_clients(t: Trial) -> int | None:
    """A trial's client count, from its config, without generating or loading data."""
    if "clients" in t.meta:
        return int(t.meta["clients"])
    clients = get_dotted(t.raw, "data.clients")
    if clients:
        return len(clients)
    path = get_dotted(t.raw, "data.path")
    if path:
        ann = Path(path) / "annotations.jsonl"
        if not ann.is_file():
            return None
        if path not in _path_clients:
            import json

            names = {json.loads(line)["client"] for line in ann.open() if line.strip()}
            _path_clients[path] = len(names)
        return _path_clients[path]
    task = get_dotted(t.raw, "data.synthetic.task", "vqa")
    if task in ("multilabel", "mixed"):
        from f3ocus_ray.data.synthetic.medvqa import MIXED_VQA_CLIENTS

        vqa = len(MIXED_VQA_CLIENTS) if task == "mixed" else 0
        return vqa + int(get_dotted(t.raw, "data.synthetic.n_clients", 4))
    if task == "domain_gap":
        from f3ocus_ray.data.synthetic.domain_gap import DOMAIN_GAP_SOURCES

        return len(DOMAIN_GAP_SOURCES)
    from f3ocus_ray.data.synthetic.medvqa import MEDVQA_FL_CLIENTS

    return len(MEDVQA_FL_CLIENTS)


def _engine(t: Trial) -> EngineConfig:
    if t.cfg is not None:
        return t.cfg.engine
    try:
        return EngineConfig.model_validate(get_dotted(t.raw, "engine", {}) or {})
    except Exception:
        return EngineConfig()


def _rounds(t: Trial) -> int:
    return t.cfg.federation.rounds if t.cfg else int(get_dotted(t.raw, "federation.rounds", 5))


def _trained_per_round(t: Trial, n_clients: int) -> int:
    """The clients that train each round: all, or `federation.clients_per_round` of them."""
    if t.cfg is None:
        return n_clients
    try:
        return t.cfg.clients_per_round_for(n_clients)[0]
    except ConfigError:  # more than the clients: the grid's own check refuses it
        return n_clients


def calibrate_cost(grid: Grid, progress: Callable[[str], None]) -> tuple[str, float]:
    """Seconds per client-round of the first runnable trial, from one round."""
    from f3ocus_ray.platform.experiment import RunOptions, run_experiment

    t = next(x for x in grid.trials if x.cfg is not None)
    cfg = t.cfg.model_copy(
        update={
            "federation": t.cfg.federation.model_copy(update={"rounds": 1}),
            "tracking": t.cfg.tracking.model_copy(update={"enabled": False}),
        }
    )
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        s = run_experiment(cfg, progress, RunOptions(run_dir=Path(d) / "calibration"))
        setup = time.perf_counter() - t0 - s.rounds[0]["seconds"]
    per = s.rounds[0]["seconds"] * cfg.engine.num_workers / s.rounds[0]["participants"]
    progress(f"calibration: {per:.2f} s per client-round, {setup:.1f} s set-up ({t.label()})")
    return cfg.model.name, per


def dry_run(grid: Grid, calibrate: bool = False, progress: Callable[[str], None] = print) -> str:
    cost = dict(grid.spec.cost.seconds_per_client_round)
    source = "stated in the grid's cost: section"
    if calibrate and any(t.cfg is not None for t in grid.trials):
        name, per = calibrate_cost(grid, progress)
        cost[name] = per
        source = f"calibrated for {name}, stated for the others"
    trials = grid.trials
    n_clients = [count_clients(t) for t in trials]
    known = [c for c in n_clients if c is not None]
    lines = [f"grid {grid.name}: {len(trials)} trials"]
    if grid.spec.search:
        lines.append(f"  (search: {grid.spec.search.num_samples} Optuna samples of the base)")
    lines.append(
        f"client-level experiments: {sum(known):,}"
        + (f" (+ {len(trials) - len(known)} trials of unknown size)" if None in n_clients else "")
    )
    lines.append("axes: " + ", ".join(f"{k} ({len(v)})" for k, v in grid.spec.axes.items()))
    # resources per trial
    shapes = Counter()
    cpu_h = gpu_h = 0.0
    unknown_cost: Counter = Counter()
    for t, nc in zip(trials, n_clients, strict=True):
        eng = _engine(t)
        bundles = trial_bundles(eng, grid.spec.tune.driver_cpus, grid.spec.tune.driver_resources)
        shapes[repr(bundles)] += 1
        model = t.cfg.model.name if t.cfg else str(get_dotted(t.raw, "model.name", "tiny-vilt"))
        per = cost.get(model)
        if per is None or nc is None:
            unknown_cost[model] += 1
            continue
        trained = _trained_per_round(t, nc)
        wall = (
            grid.spec.cost.setup_seconds + _rounds(t) * math.ceil(trained / eng.num_workers) * per
        )
        cpu_h += wall / 3600 * sum(b.get("CPU", 0) for b in bundles)
        gpu_h += wall / 3600 * sum(b.get("GPU", 0) for b in bundles)
    lines.append("resources reserved per trial (placement group bundles: driver, then workers):")
    for shape, n in shapes.most_common():
        lines.append(f"  {n} trials: {shape}")
    lines.append(f"estimate ({source}): {cpu_h:,.1f} CPU-hours, {gpu_h:,.1f} GPU-hours")
    if unknown_cost:
        lines.append(
            "  not estimated (no cost for the model): "
            + ", ".join(f"{m} ({n} trials)" for m, n in unknown_cost.items())
        )
    refused = grid.refused()
    runnable = len(trials) - len(refused)
    lines.append(f"runnable now: {runnable} of {len(trials)} trials")
    if refused:
        reasons = Counter(t.error for t in refused)
        lines.append("not runnable yet (refused by the config):")
        for reason, n in reasons.most_common(8):
            lines.append(f"  {n} trials: {reason}")
    return "\n".join(lines)
