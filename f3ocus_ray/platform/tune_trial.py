"""One grid trial = one Tune trial = one federated experiment.

The trial function hosts the driver in-process; its ClientWorkers are created from here and
land in the trial's placement group (Tune sets `placement_group_capture_child_tasks`), so the
trial reserves exactly `[driver bundle] + [one bundle per worker]` and nested actors never wait
for resources outside it. Every round is reported to Tune with a checkpoint of the federated
state; a restored trial continues from its last round and from its own MLflow run (found by a
deterministic key), so nothing is logged twice.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray import tune

from f3ocus_ray.config import EngineConfig, ExperimentConfig, parse_config, set_dotted
from f3ocus_ray.fl.round import RoundResult
from f3ocus_ray.platform import run_record as rr
from f3ocus_ray.platform.checkpoint import load_checkpoint
from f3ocus_ray.platform.experiment import RunOptions, run_experiment
from f3ocus_ray.platform.preflight import worker_bundles
from f3ocus_ray.platform.tracking import RUN_COLOUR_TAG, RunTracker

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass(frozen=True)
class TrialSpec:
    key: str
    axes: dict[str, Any]
    cfg: ExperimentConfig
    name: str = ""  # the MLflow run's name, after what varied (default: the key)


@dataclass(frozen=True)
class GridContext:
    """What every trial needs, shipped once (tune.with_parameters)."""

    grid_name: str
    run_name: str  # the Tune experiment's name: one per grid run, kept on resume
    tracking_uri: str
    parent_run_id: str | None
    driver_cpus: float
    trials: list[TrialSpec] = field(default_factory=list)  # a grid
    search_base: dict[str, Any] | None = None  # a search: the base raw config
    context: dict[str, str] = field(default_factory=dict)  # MLflow context tags of the launcher
    colours: dict[str, str] = field(default_factory=dict)  # method -> the runs' UI colour

    def trial_for(self, config: dict[str, Any]) -> TrialSpec:
        if "index" in config:
            return self.trials[config["index"]]
        raw = dict(self.search_base or {})
        import copy

        raw = copy.deepcopy(raw)
        for k, v in config.items():
            set_dotted(raw, k, v)
        cfg = parse_config(raw, "search trial")
        key = tune.get_context().get_trial_id()
        return TrialSpec(f"trial_{key}", dict(config), cfg, f"{rr.run_name(cfg, {})}-{key}")


def trial_bundles(
    eng: EngineConfig, driver_cpus: float, driver_resources: dict[str, float] | None = None
) -> list[dict[str, float]]:
    """The driver's bundle (CPU and `tune.driver_resources`, e.g. the head node's
    `node:__internal_head__`), then one per ClientWorker (CPU, fractional GPU and
    `engine.resources_per_worker`)."""
    driver = {
        "CPU": float(driver_cpus),
        **{k: float(v) for k, v in (driver_resources or {}).items()},
    }
    return [driver, *worker_bundles(eng)]


def placement_tags(pg: Any) -> dict[str, str]:
    """Where this trial runs: the driver's Ray node and each bundle's node, in bundle order."""
    tags = {"f3ocus.driver_node": ray.get_runtime_context().get_node_id()}
    if pg is not None:
        nodes = ray.util.placement_group_table(pg).get("bundles_to_node_id", {})
        tags["f3ocus.placement_group_nodes"] = ",".join(nodes[i] for i in sorted(nodes))
    return tags


def _tune_metrics(res: RoundResult) -> dict[str, float]:
    return {"round": res.round, **{k: float(v) for k, v in res.metrics().items()}}


def grid_trial(config: dict[str, Any], ctx: GridContext) -> None:
    import torch

    torch.set_num_threads(max(1, int(ctx.driver_cpus)))
    for name in ("ray.train", "ray.tune"):  # no "Checkpoint successfully created" per round
        logging.getLogger(name).setLevel(logging.WARNING)
    spec = ctx.trial_for(config)
    cfg = spec.cfg
    tctx = tune.get_context()
    pg = ray.util.get_current_placement_group()
    run_dir = Path(cfg.output_dir) / ctx.run_name / spec.key

    resume = None
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            resume = load_checkpoint(Path(d) / CHECKPOINT_FILE)

    tracker = None
    run_tags = rr.run_tags(cfg, spec.axes)
    if cfg.tracking.enabled:
        params = {
            **rr.run_params(cfg, ctx.grid_name),
            **{f"axis.{k}": v for k, v in spec.axes.items()},
        }
        tags = {
            **{f"axis.{k}": v for k, v in spec.axes.items()},
            **run_tags,
            RUN_COLOUR_TAG: ctx.colours.get(run_tags["method"], rr.PALETTE[0]),
            "f3ocus.grid": ctx.grid_name,
            "f3ocus.grid_run": ctx.run_name,
            "f3ocus.trial": spec.key,
            "f3ocus.tune_trial_id": tctx.get_trial_id(),
            "f3ocus.placement_group": pg.id.hex() if pg is not None else "none",
        }
        tracker = RunTracker(
            ctx.tracking_uri,
            ctx.grid_name,
            spec.name or spec.key,
            params,
            key=f"{ctx.run_name}/{spec.key}",
            parent_run_id=ctx.parent_run_id,
            tags=tags,
            context=ctx.context,
        )
    logged = tracker.logged_steps() if tracker is not None else 0
    if tracker is not None:  # set again on a restored trial: it may run on other nodes now
        tracker.set_tags(placement_tags(pg))

    def on_round(res: RoundResult, ckpt_file: Path) -> None:
        with tempfile.TemporaryDirectory() as d:
            shutil.copy(ckpt_file, Path(d) / CHECKPOINT_FILE)
            tune.report(_tune_metrics(res), checkpoint=tune.Checkpoint.from_directory(d))

    if resume is not None and resume["round"] >= cfg.federation.rounds:
        if tracker is not None:  # killed after its last checkpoint: nothing left to run
            tracker.client.set_terminated(tracker.run_id, "FINISHED")
        return
    options = RunOptions(
        start_ray=False,
        run_dir=run_dir,
        tracker=tracker,
        in_process_driver=True,
        resume=resume,
        logged_rounds=logged,
        on_round=on_round,
        method=run_tags["method"],
    )
    try:
        run_experiment(cfg, progress=lambda m: log.info("%s: %s", spec.key, m), options=options)
    except BaseException:
        if tracker is not None:
            tracker.client.set_terminated(tracker.run_id, "FAILED")
        raise
    if tracker is not None:
        tracker.set_tags({"f3ocus.placement_group_bundles": _bundles(pg)})
        tracker.client.set_terminated(tracker.run_id, "FINISHED")


def _bundles(pg: Any) -> str:
    if pg is None:
        return "none"
    return str(pg.bundle_specs)
