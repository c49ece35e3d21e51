"""One federated experiment, end to end: data, tokenizer, Ray, the driver's rounds, MLflow.

Everything a user can get wrong is checked before Ray starts or an MLflow run is created.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray

from f3ocus_ray.config import ExperimentConfig, load_config
from f3ocus_ray.errors import TrainingDiverged, UserError
from f3ocus_ray.fl.driver import Driver, FederatedDriver
from f3ocus_ray.fl.executors import RayExecutor
from f3ocus_ray.fl.round import DriverSpec, RoundResult
from f3ocus_ray.platform import run_record as rr
from f3ocus_ray.platform.checkpoint import load_checkpoint, save_checkpoint
from f3ocus_ray.platform.paper_tables import method_label
from f3ocus_ray.platform.preflight import check_fits, preflight, ray_address, worker_bundles
from f3ocus_ray.platform.prepare import PreparedExperiment, prepare, worker_modules
from f3ocus_ray.platform.ray_session import ensure_ray
from f3ocus_ray.timing import mark

if TYPE_CHECKING:  # MLflow and matplotlib load when the run opens: after Ray has started
    from f3ocus_ray.platform.tracking import RunTracker

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    run_dir: Path
    run_id: str | None
    clients: list[str]
    metric: str  # "accuracy" or "micro-F1"
    score: float
    majority_score: float
    question_only_score: float | None
    client_score: dict[str, float]
    rounds: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _new_run_dir(cfg: ExperimentConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.output_dir) / f"{cfg.name}-{stamp}"
    run_dir, i = base, 1
    while run_dir.exists():
        run_dir, i = Path(f"{base}-{i}"), i + 1
    run_dir.mkdir(parents=True)
    return run_dir


def _tracker(cfg: ExperimentConfig, run_dir: Path) -> RunTracker:
    """The run's MLflow run, keyed by its folder: `resume_experiment` finds it again."""
    from f3ocus_ray.platform.tracking import RUN_COLOUR_TAG, RunTracker

    key = f"run:{run_dir.resolve()}"
    params = rr.run_params(cfg, cfg.tracking.experiment)
    tags = {**rr.run_tags(cfg, {}), RUN_COLOUR_TAG: rr.PALETTE[0]}
    return RunTracker(
        cfg.tracking.uri, cfg.tracking.experiment, run_dir.name, params, key=key, tags=tags
    )


def resume_experiment(
    run_dir: str | Path, progress: Callable[[str], None] = log.info, *, dashboard: bool = False
) -> RunSummary:
    """Continue a run whose process or driver died, from its folder (the resolved config.yaml
    and the last round's checkpoint.pt), in the same MLflow run. Its rounds are computed as an
    uninterrupted run's would be (every draw is seeded by (seed, round, client))."""
    run_dir = Path(run_dir)
    ckpt = run_dir / "checkpoint.pt"
    if not (run_dir / "config.yaml").is_file() or not ckpt.is_file():
        raise UserError(f"{run_dir}: not a run folder (needs config.yaml and checkpoint.pt)")
    cfg = load_config(run_dir / "config.yaml")
    resume = load_checkpoint(ckpt)
    if resume["round"] >= cfg.federation.rounds:
        raise UserError(f"{run_dir}: nothing to resume, all {cfg.federation.rounds} rounds ran")
    tracker = _tracker(cfg, run_dir) if cfg.tracking.enabled else None
    logged = tracker.logged_steps() if tracker is not None else 0
    options = RunOptions(
        dashboard=dashboard, run_dir=run_dir, tracker=tracker, resume=resume, logged_rounds=logged
    )
    with tracker or contextlib.nullcontext():  # FINISHED, or FAILED again if it raises
        return run_experiment(cfg, progress, options)


def _coverage(res: RoundResult, n_clients: int) -> str:
    """'  (50 trained, 100 evaluated of 1000 clients)' under partial participation, else ''."""
    trained, tested = len(res.participants), len(res.client_score)
    if trained == tested == n_clients:
        return ""
    return f"  ({trained} trained, {tested} evaluated of {n_clients} clients)"


def _check_finite(res: RoundResult) -> None:
    """A round whose training or test loss is not finite ends the run (marked FAILED)."""
    bad = {c: v for c, v in res.train_loss.items() if not math.isfinite(v)}
    if bad or not math.isfinite(res.loss):
        where = f"clients {', '.join(bad)}" if bad else "the test loss"
        raise TrainingDiverged(
            f"training diverged in round {res.round}: {where} not finite "
            "(lower training.lr, or check the data)"
        )


def _unwrap(e: ray.exceptions.RayTaskError) -> BaseException:
    """A user error raised on a worker (a corrupt image) surfaces as itself."""
    cause = e.cause
    while isinstance(cause, ray.exceptions.RayTaskError):
        cause = cause.cause
    return cause if isinstance(cause, UserError) else e


@contextlib.contextmanager
def _surfacing_user_errors() -> Any:
    """Re-raise a user error that a Ray task raised as itself, with no Ray wrapping."""
    try:
        yield
    except ray.exceptions.RayTaskError as e:
        err = _unwrap(e)
        if err is e:
            raise
        raise err from None


@dataclass
class RunOptions:
    """How `run_experiment` is hosted; the defaults are `f3ocus run`'s.

    A Tune trial passes its own: Ray already up, a run folder and an open MLflow run of its
    own, the driver in-process (its ClientWorkers land in the trial's placement group), a
    checkpoint to continue from, and a callback after each round (report + checkpoint).
    """

    start_ray: bool = True
    dashboard: bool = False  # a local Ray started here serves its web dashboard
    run_dir: Path | None = None
    tracker: RunTracker | None = None  # an open run to log into; the caller ends it
    # None: in this process on a local Ray (one process less: if this process dies, an actor
    # driver, which it owns, dies with it; `--resume` continues either), as an actor next to
    # the workers on a cluster (a client's round trips stay inside the cluster)
    in_process_driver: bool | None = None
    resume: dict[str, Any] | None = None  # a driver checkpoint (load_checkpoint)
    logged_rounds: int = 0  # rounds already in the MLflow run: not logged again
    on_round: Callable[[RoundResult, Path], None] | None = None  # (result, checkpoint file)
    method: str | None = None  # the method's label in titles (default: from the config)


class _DriverHandle:
    """The driver as an actor (on a cluster) or as an object in this process (a local run, a
    trial). Created, it returns at once: the processes start while the caller goes on (opens
    its MLflow run); the first call waits for them."""

    def __init__(self, spec: DriverSpec, in_process: bool):
        self.spec = spec
        self.pool = RayExecutor(spec.worker, spec.pool) if in_process else None
        self.actor = None if in_process else Driver.remote(spec)
        self.local: FederatedDriver | None = None

    def call(self, method: str, *args: Any) -> Any:
        with _surfacing_user_errors():
            if self.actor is not None:
                return ray.get(getattr(self.actor, method).remote(*args))
            if self.local is None:  # waits for the first worker's initial state
                self.local = FederatedDriver(self.spec, self.pool)
            return getattr(self.local, method)(*args)

    def close(self) -> None:
        if self.actor is not None:
            ray.kill(self.actor)  # its workers go with it
        else:
            self.pool.close()


def run_experiment(
    cfg: ExperimentConfig,
    progress: Callable[[str], None] = log.info,
    options: RunOptions | None = None,
) -> RunSummary:
    """Run one experiment; returns its summary. Raises UserError before any work on bad input."""
    opts = options or RunOptions()
    t0 = time.perf_counter()
    bundles = worker_bundles(cfg.engine)
    if opts.start_ray:
        preflight(cfg, bundles)
    mark("experiment")
    prep = prepare(cfg)
    mark("prepared")
    facts = prep.facts
    progress(
        f"data: {facts.path} ({facts.task}, {len(facts.clients)} clients, "
        f"{sum(facts.n_train)} train / {sum(facts.n_test)} test samples)"
    )
    preload = worker_modules(cfg.model.name)
    if opts.start_ray and ensure_ray(cfg.engine.address, dashboard=opts.dashboard, preload=preload):
        if ray_address(cfg):
            where = f"the Ray cluster at {ray_address(cfg)}"
            check_fits(bundles, ray.cluster_resources(), where)
    in_process = opts.in_process_driver
    if in_process is None:
        in_process = ray_address(cfg) is None
    # the workers start (imports, model) while this process writes the run folder and opens
    # the MLflow run
    driver = _DriverHandle(prep.driver_spec, in_process)
    try:
        return _run(cfg, prep, driver, progress, opts, t0)
    finally:
        driver.close()


def _run(
    cfg: ExperimentConfig,
    prep: PreparedExperiment,
    driver: _DriverHandle,
    progress: Callable[[str], None],
    opts: RunOptions,
    t0: float,
) -> RunSummary:
    # MLflow and matplotlib load here, after Ray has started and the workers are spawning
    from f3ocus_ray.platform.run_logging import (
        log_layer_choice,
        log_round,
        log_start,
        log_summary,
        record_usage,
    )

    facts = prep.facts
    run_dir = opts.run_dir or _new_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(cfg.to_yaml())
    (run_dir / "tokenizer.json").write_text(facts.tokenizer_json)
    metric = "accuracy" if facts.task == "vqa" else "micro-F1"  # mixed: pooled micro-F1

    if opts.tracker is not None:
        tracking = contextlib.nullcontext(opts.tracker)
    elif cfg.tracking.enabled:
        tracking = _tracker(cfg, run_dir)
    else:
        tracking = contextlib.nullcontext(None)
    with tracking as tracker:  # a run that raises is marked FAILED
        mark("tracking")
        summary = RunSummary(
            run_dir,
            tracker.run_id if tracker else None,
            facts.clients,
            metric,
            score=0.0,
            majority_score=facts.majority_score,
            question_only_score=facts.question_only_score,
            client_score={},
        )
        if tracker and opts.resume is None and not getattr(tracker, "resumed", False):
            log_start(tracker, cfg.to_yaml(), prep)
        res: RoundResult | None = None
        system = contextlib.ExitStack()  # MLflow's system metrics while the rounds run
        try:
            if tracker:
                system.enter_context(tracker.system_metrics())
                # where the workers run (their Ray node ids), for multi-node clusters
                tracker.set_tags({"f3ocus.worker_nodes": ",".join(driver.call("worker_nodes"))})
            done = 0
            if opts.resume is not None:
                driver.call("load_state_dict", opts.resume)
                done = int(opts.resume["round"])
                progress(f"resumed after round {done}/{cfg.federation.rounds}")
            for _ in range(done, cfg.federation.rounds):
                res = driver.call("run_round")
                _check_finite(res)
                ckpt = run_dir / "checkpoint.pt"
                save_checkpoint(ckpt, driver.call("state_dict"))
                record_usage(run_dir, res)
                if res.round > opts.logged_rounds:
                    log_round(tracker, res, prep)
                summary.rounds.append({"round": res.round, **res.metrics()})
                mark("round", round=res.round)
                progress(
                    f"round {res.round}/{cfg.federation.rounds}  {metric} {res.score:.3f}  "
                    f"loss {res.loss:.3f}  up {res.mbit_up:.2f} Mbit  {res.seconds:.1f} s"
                    + _coverage(res, len(facts.clients))
                )
                if opts.on_round is not None:
                    opts.on_round(res, ckpt)
            if res is None:  # resumed after the last round: evaluate nothing new
                raise RuntimeError("nothing left to run: the checkpoint is after the last round")
        finally:
            system.close()
        summary.score, summary.client_score = res.score, dict(res.client_score)
        summary.seconds = time.perf_counter() - t0
        result = {
            "metric": metric,
            "score": summary.score,
            "majority_baseline": summary.majority_score,
            "question_only_baseline": summary.question_only_score,
            "client_score": summary.client_score,
            "rounds": summary.rounds,
        }
        (run_dir / "summary.json").write_text(json.dumps(result, indent=1))
        if tracker:
            result["summary"] = log_summary(tracker, summary.question_only_score)
            method = opts.method or method_label({k: str(v) for k, v in cfg.flat().items()}, {})
            log_layer_choice(tracker, run_dir, prep, method)
            tracker.log_json(result, "summary.json")
    return summary
