"""Run a grid (or an Optuna search) as Ray Tune trials, tracked in one MLflow experiment.

One Tune experiment per grid run (`<grid>-<time>`), stored under `tune.storage_path`
(`./ray_results` by default; `s3://`, `gs://` or a shared folder on clusters); one parent MLflow
run for it, one nested run per trial. `resume=True` restores the Tune experiment: finished
trials are not run again, interrupted ones continue from their last round. Tune unpickles the
experiment's state, so a local one is first checked to be writable by no one but us
(`storage_trust`).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from f3ocus_ray.config import SAFE_NAME, ExperimentConfig, parse_config, set_dotted
from f3ocus_ray.errors import ConfigError, UserError
from f3ocus_ray.platform import run_record as rr
from f3ocus_ray.platform.grid_spec import Grid, SearchSettings, check_runnable
from f3ocus_ray.platform.preflight import check_fits, preflight, ray_address
from f3ocus_ray.platform.ray_session import ensure_ray
from f3ocus_ray.platform.report import grid_answer, ranking_markdown
from f3ocus_ray.platform.storage_trust import check_private_storage
from f3ocus_ray.platform.tracking import BEST_METHOD_TAG, RunTracker, context_tags
from f3ocus_ray.platform.tune_trial import GridContext, TrialSpec, grid_trial, trial_bundles

log = logging.getLogger(__name__)


@dataclass
class GridOutcome:
    run_name: str
    path: str  # the Tune experiment's folder / URI
    parent_run_id: str | None
    statuses: dict[str, int]  # TERMINATED / ERROR counts
    best: dict[str, Any] | None
    best_method: str | None = None  # by the mean of the last 3 rounds (the parent's tag)


def storage_root(grid: Grid) -> str:
    sp = grid.spec.tune.storage_path
    if sp is None:
        return str(Path("ray_results").resolve())
    if "://" in sp:
        return sp
    return str(Path(sp).expanduser().resolve())


def latest_run(grid: Grid) -> str:
    """The newest `<grid>-*` Tune experiment under a local storage path."""
    root = storage_root(grid)
    if "://" in root:
        raise UserError("--resume with remote storage needs --run NAME (the grid run's name)")
    runs = sorted(Path(root).glob(f"{grid.name}-*"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise UserError(f"nothing to resume: no {grid.name}-* run under {root}")
    return runs[-1].name


def _search_space(search: SearchSettings) -> dict[str, Any]:
    from ray import tune

    space = {}
    for key, p in search.space.items():
        if p.type == "choice":
            if not p.values:
                raise ConfigError(f"search.space.{key}: choice needs values")
            space[key] = tune.choice(p.values)
            continue
        if p.low is None or p.high is None or p.low >= p.high:
            raise ConfigError(f"search.space.{key}: needs low < high")
        if p.type == "uniform":
            space[key] = tune.uniform(p.low, p.high)
        elif p.type == "loguniform":
            space[key] = tune.loguniform(p.low, p.high)
        else:
            space[key] = tune.randint(int(p.low), int(p.high) + 1)
    return space


def _check_search(grid: Grid) -> None:
    """The base config with each key at its bounds must be valid."""
    import copy

    for key, p in grid.spec.search.space.items():
        for v in p.values or [p.low, p.high]:
            raw = copy.deepcopy(grid.trials[0].raw if grid.trials else grid.base_raw)
            value = int(v) if p.type == "int" else v
            set_dotted(raw, key, value)
            try:
                parse_config(raw, "search")
            except ConfigError as e:
                raise ConfigError(f"{grid.source}: search.space.{key}={value}: {e}") from None


def _bundles(grid: Grid, cfg: ExperimentConfig) -> list[dict[str, float]]:
    return trial_bundles(cfg.engine, grid.spec.tune.driver_cpus, grid.spec.tune.driver_resources)


def _preflight(grid: Grid) -> None:
    """Every distinct engine and tracking server of the trials, before any side effect
    (refused trial configs are reported by check_runnable)."""
    if grid.refused():
        return
    seen: set[str] = set()
    for t in grid.trials:
        key = t.cfg.engine.model_dump_json() + t.cfg.tracking.model_dump_json()
        if key not in seen:
            seen.add(key)
            preflight(t.cfg, _bundles(grid, t.cfg))


def _answer(parent: RunTracker, grid: str, run_name: str) -> str | None:
    """The parent run carries the answer: the best method (a tag), the ranking (its
    description, until the report adds the full tables; and a bar chart, the image the chart
    view shows first while the trials are folded under the parent)."""
    header, rows, best, png = grid_answer(parent.client, grid, run_name)
    if best is not None:
        parent.set_tags({BEST_METHOD_TAG: best})
        parent.set_description(f"Best method: **{best}**\n\n" + ranking_markdown(header, rows))
        parent.log_image(png, "ranking", step=0)
        parent.log_png(png, "ranking.png")
    return best


def _round_progress(ctx: GridContext, progress: Callable[[str], None]):
    """A Tune callback: one line per trial and round, named as the trial's MLflow run."""
    from ray.tune import Callback

    class RoundProgress(Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            config = trial.config or {}
            spec = ctx.trials[config["index"]] if "index" in config else None
            name = spec.name if spec is not None else trial.trial_id
            rounds = spec.cfg.federation.rounds if spec is not None else "?"
            progress(
                f"{name}: round {int(result.get('round', 0))}/{rounds}  "
                f"score {result.get('score', float('nan')):.3f}  "
                f"up {result.get('mbit_up', float('nan')):.2f} Mbit (all clients)  "
                f"{result.get('seconds', float('nan')):.1f} s"
            )

    return RoundProgress()


def run_grid(
    grid: Grid,
    *,
    resume: bool = False,
    run_name: str | None = None,
    progress: Callable[[str], None] = log.info,
    dashboard: bool = False,
) -> GridOutcome:
    """Validate every trial, then run them on Ray Tune; returns the trials' statuses."""
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    spec = grid.spec
    if run_name is not None and not re.fullmatch(SAFE_NAME, run_name):
        raise ConfigError(f"--run {run_name!r}: a folder name (letters, digits, _ . -)")
    root = storage_root(grid)
    if resume:
        run_name = run_name or latest_run(grid)
    else:
        run_name = run_name or f"{grid.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = f"{root.rstrip('/')}/{run_name}"
    # a mistyped --resume stops here: no data prepared, no Ray, no (empty, RUNNING) parent run
    if resume and "://" not in path:
        check_private_storage(path)  # Tune unpickles tuner.pkl from it: a trust boundary
    if resume and not tune.Tuner.can_restore(path):
        raise UserError(f"nothing to resume at {path}")
    _preflight(grid)
    if spec.search is None:
        check_runnable(grid)  # one bad combination refuses the grid, before any work
    else:
        if len(grid.trials) != 1:
            raise ConfigError(f"{grid.source}: use either axes or search, not both")
        check_runnable(grid)
        _check_search(grid)
    first = grid.trials[0].cfg
    if ensure_ray(first.engine.address, dashboard=dashboard) and ray_address(first):
        where = f"the Ray cluster at {ray_address(first)}"
        for bundles in {repr(b): b for b in (_bundles(grid, t.cfg) for t in grid.trials)}.values():
            check_fits(bundles, ray.cluster_resources(), where)

    uri = first.tracking.uri
    parent = None
    context = context_tags(source=f"f3ocus grid {grid.source}")
    names = rr.unique_names([rr.run_name(t.cfg, t.axes) for t in grid.trials])
    methods = [rr.run_tags(t.cfg, t.axes)["method"] for t in grid.trials]
    if first.tracking.enabled:
        params = {f"grid.axis.{k}": list(v) for k, v in spec.axes.items()}
        params["grid.trials"] = len(grid.trials)
        tags = {"f3ocus.grid": grid.name, "f3ocus.grid_run": run_name, "f3ocus.role": "grid"}
        tags["mlflow.note.content"] = f"Grid {grid.name}: running {len(grid.trials)} trials."
        parent = RunTracker(
            uri, grid.name, run_name, params, key=f"{run_name}/grid", tags=tags, context=context
        )
    ctx = GridContext(
        grid_name=grid.name,
        run_name=run_name,
        tracking_uri=uri,
        parent_run_id=parent.run_id if parent else None,
        driver_cpus=spec.tune.driver_cpus,
        trials=[
            TrialSpec(t.key, t.axes, t.cfg, n) for t, n in zip(grid.trials, names, strict=True)
        ],
        search_base=grid.trials[0].raw if spec.search else None,
        context=context,
        colours=rr.method_colours(methods),
    )

    def resources(config: dict[str, Any]) -> tune.PlacementGroupFactory:
        cfg = ctx.trials[config["index"]].cfg if "index" in config else first
        return tune.PlacementGroupFactory(
            trial_bundles(cfg.engine, spec.tune.driver_cpus, spec.tune.driver_resources)
        )

    # Tune's own console output (a configuration box, result tables) gives way to RoundProgress
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # nor its advice on snapshot frequency, which tiny rounds trigger
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    trainable = tune.with_resources(tune.with_parameters(grid_trial, ctx=ctx), resources)
    run_config = tune.RunConfig(
        name=run_name,
        storage_path=root,
        failure_config=tune.FailureConfig(
            max_failures=spec.tune.max_failures, fail_fast=spec.tune.fail_fast
        ),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        verbose=0,  # no status tables: one line per trial and round (RoundProgress)
        callbacks=[_round_progress(ctx, progress)],
    )
    if spec.search is None:
        param_space = {"index": tune.grid_search(list(range(len(grid.trials))))}
        # reuse_actors: a finished trial's process (torch and transformers imported) runs the
        # next trial with the same bundles, saving a process start and ~2 s of imports each
        tune_config = tune.TuneConfig(
            max_concurrent_trials=spec.tune.max_concurrent_trials, reuse_actors=True
        )
    else:
        s = spec.search
        param_space = _search_space(s)
        searcher = ConcurrencyLimiter(
            OptunaSearch(metric=s.metric, mode=s.mode, seed=s.seed), max_concurrent=s.max_concurrent
        )
        tune_config = tune.TuneConfig(
            search_alg=searcher, num_samples=s.num_samples, reuse_actors=True
        )

    if resume:
        progress(f"resuming grid run {run_name} from {path}")
        tuner = tune.Tuner.restore(
            path, trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        n = len(grid.trials) if spec.search is None else spec.search.num_samples
        progress(f"grid run {run_name}: {n} trials, stored in {path}")
        tuner = tune.Tuner(
            trainable, param_space=param_space, tune_config=tune_config, run_config=run_config
        )
    try:
        results = tuner.fit()
    except BaseException:
        if parent is not None:
            parent.client.set_terminated(parent.run_id, "FAILED")
        raise
    statuses: dict[str, int] = {}
    for r in results:
        status = "ERROR" if r.error else "TERMINATED"
        statuses[status] = statuses.get(status, 0) + 1
    best = None
    metric = spec.search.metric if spec.search else spec.tune.metric
    mode = spec.search.mode if spec.search else spec.tune.mode
    try:
        b = results.get_best_result(metric=metric, mode=mode)
        best = {"config": b.config, metric: b.metrics.get(metric)}
    except (RuntimeError, ValueError, KeyError):
        pass
    best_method = None
    if parent is not None:
        best_method = _answer(parent, grid.name, run_name)
        parent.client.set_terminated(parent.run_id, "FAILED" if "ERROR" in statuses else "FINISHED")
    parent_id = parent.run_id if parent else None
    return GridOutcome(run_name, path, parent_id, statuses, best, best_method)
