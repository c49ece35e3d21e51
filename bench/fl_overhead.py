"""The Ray engine's overhead against the compute floor on this machine.

One workload (the demo's 9 clients of unequal size x R rounds x one local epoch, tiny ViLT,
evaluation every round) run (a) as a plain sequential loop in one process with 2 torch threads
(the same round on the in-process executor), and (b) through the Ray engine with 2 workers of
1 CPU each. Prints both
wall times (median of --repeats), Ray's one-time start-up separately, the ratio (b)/(a), and
each worker's peak memory.

    .venv/bin/python bench/fl_overhead.py [--rounds 3] [--steps N] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402

from f3ocus_ray.config import load_config  # noqa: E402
from f3ocus_ray.fl.driver import FederatedDriver  # noqa: E402
from f3ocus_ray.fl.executors import InProcessExecutor  # noqa: E402
from f3ocus_ray.fl.round import Federation  # noqa: E402
from f3ocus_ray.fl.training import num_local_steps  # noqa: E402
from f3ocus_ray.platform.prepare import prepare  # noqa: E402
from f3ocus_ray.platform.ray_session import ensure_ray  # noqa: E402


def sequential(prep, rounds: int) -> tuple[float, float]:
    """(a) the compute floor: the same round in one process (the in-process executor), 2 torch
    threads.

    Returns (set-up seconds: model and data, round seconds).
    """
    spec = prep.driver_spec
    t0 = time.perf_counter()
    executor = InProcessExecutor(replace(spec.worker, torch_threads=2))
    executor.worker.preload(spec.clients)
    federation = Federation(spec, executor)
    t1 = time.perf_counter()
    for _ in range(rounds):
        federation.run_round()
    return t1 - t0, time.perf_counter() - t1


def engine(prep, rounds: int) -> tuple[float, float, list[float]]:
    """(b) the Ray engine: 2 ClientWorkers of 1 CPU; the driver in this process.

    Returns (set-up seconds: worker processes, model, initial state and, as in (a), every
    client's data decoded; round seconds; peak RSS of each worker in MB).
    """
    t0 = time.perf_counter()
    driver = FederatedDriver(prep.driver_spec)
    ray.get([w.preload.remote(prep.driver_spec.clients) for w in driver.workers])
    t1 = time.perf_counter()
    for _ in range(rounds):
        driver.run_round()
    t2 = time.perf_counter()
    rss = driver.worker_peak_rss_mb()
    driver.close()
    return t1 - t0, t2 - t1, rss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="local steps per client per round (default: one local epoch, so unequal clients)",
    )
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    overrides = ["training.local_epochs=1", "engine.num_workers=2", "engine.cpus_per_worker=1"]
    if args.steps:
        overrides.append(f"training.local_steps={args.steps}")
    cfg = load_config("experiments/demo.yaml", [*overrides, "tracking.enabled=false"])
    prep = prepare(cfg)  # generates the synthetic set on first use
    tr = cfg.training
    steps = [
        num_local_steps(m, tr.batch_size, tr.local_epochs, tr.local_steps)
        for m in prep.driver_spec.n_train
    ]
    print(
        f"workload: {len(steps)} clients x {args.rounds} rounds, local steps per client {steps} "
        f"(batch {tr.batch_size}), tiny ViLT, evaluation of every client every round"
    )

    t = time.perf_counter()
    ensure_ray(num_cpus=2)
    startup = time.perf_counter() - t

    seq, eng, rss = [], [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        seq.append(sequential(prep, args.rounds))
        *timing, rss = engine(prep, args.rounds)
        eng.append(timing)

    def med(runs, k):
        return statistics.median(r[k] for r in runs)

    a_set, a_run, b_set, b_run = med(seq, 0), med(seq, 1), med(eng, 0), med(eng, 1)
    print(
        "medians of",
        args.repeats,
        "runs (set-up = model, data, worker processes; once per experiment)",
    )
    print(f"{'':44}{'set-up':>9}{'rounds':>9}{'total':>9}")
    print(
        f"{'(a) sequential, 1 process, 2 torch threads':44}{a_set:9.2f}{a_run:9.2f}{a_set + a_run:9.2f}"
    )
    print(f"{'(b) Ray engine, 2 workers x 1 CPU':44}{b_set:9.2f}{b_run:9.2f}{b_set + b_run:9.2f}")
    print(
        f"rounds per run, (a): {[round(r[1], 2) for r in seq]}  (b): {[round(r[1], 2) for r in eng]}"
    )
    print(f"Ray start-up (once per cluster, not counted): {startup:.2f} s")
    print(f"ratio (b)/(a), rounds     : {b_run / a_run:.3f}  (target <= 1.0)")
    print(f"ratio (b)/(a), with set-up: {(b_set + b_run) / (a_set + a_run):.3f}")
    print(f"peak RSS per worker: {', '.join(f'{m:.0f} MB' for m in rss)}")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
