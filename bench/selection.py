"""Benchmark of the server-side selection algorithms (not part of the test suite).

    .venv/bin/python bench/selection.py            # the full benchmark (~5 minutes)
    .venv/bin/python bench/selection.py --quick    # fewer seeds and sizes (~1 minute)

Prints four tables:

1. grid: every meta-heuristic at the same evaluation budget (20,000) on N in {5, 50, 500,
   1000} clients x L in {12, 32} units (peaked scores, budget 4): wall and CPU seconds, front
   size, and the hypervolume ratio to the exact front where the MILP is tractable (N = 5),
   otherwise to the best front found by any algorithm (the non-dominated union);
2. speed targets: each algorithm's default budget at N = 100 and N = 1000, L = 32 (targets
   <= 2 s and <= 20 s);
3. quality target: N = 10, L = 12, budget 4, 20,000 evaluations, 5 seeds (5 instances):
   the minimum hypervolume ratio to the exact front (target >= 0.99);
4. our NSGA-II against Optuna's NSGA-II sampler (one float key per client and unit,
   decoded to top-k_i) at equal evaluations: hypervolume ratio to exact and seconds.

Hypervolume is always of (-importance, variance), both minimised, against the reference
front's worst corner pushed out by 10% of its range in each objective. Seconds are wall-clock
(the CPU seconds of this process are shown too: on a shared machine they are the fairer
figure). Run it alone: it is single-process but CPU-bound.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from f3ocus_ray.selection import (  # noqa: E402
    DEFAULT_TERMINATION,
    META_HEURISTICS,
    SelectionProblem,
    exact_front,
    hypervolume_ratio,
    non_dominated,
    solve,
)
from f3ocus_ray.selection.synthetic import peaked_scores  # noqa: E402

BUDGET = 4


def run(problem, algorithm, seed, n_evals=None):
    termination = DEFAULT_TERMINATION if n_evals is None else ("n_eval", n_evals)
    wall, cpu = time.perf_counter(), time.process_time()
    front = solve(problem, algorithm, seed=seed, termination=termination)
    return front, time.perf_counter() - wall, time.process_time() - cpu


def grid(sizes, n_evals):
    print(f"\n== 1. grid: every algorithm at {n_evals:,} evaluations (peaked scores, budget 4) ==")
    print(
        f"{'N':>5} {'L':>3} {'algorithm':<9} {'wall_s':>7} {'cpu_s':>7} {'front':>6}"
        f" {'n_evals':>8} {'hv_ratio':>9}  reference"
    )
    for n_clients, n_units in sizes:
        problem = SelectionProblem(peaked_scores(n_clients, n_units, seed=1), BUDGET)
        fronts = {}
        for algorithm in META_HEURISTICS:
            fronts[algorithm] = run(problem, algorithm, seed=0, n_evals=n_evals)
        if n_clients <= 5:
            ref = exact_front(problem).F
            ref_name = "exact"
        else:
            allF = np.concatenate([f.F for f, _, _ in fronts.values()])
            ref = allF[non_dominated(allF)]
            ref_name = "best of all"
        for algorithm, (front, wall, cpu) in fronts.items():
            ratio = hypervolume_ratio(front.F, ref)[0]
            print(
                f"{n_clients:>5} {n_units:>3} {algorithm:<9} {wall:>7.2f} {cpu:>7.2f}"
                f" {len(front.F):>6} {front.n_evals:>8} {ratio:>9.4f}  {ref_name}",
                flush=True,
            )


def speed(sizes, grid_times=None):
    print(
        f"\n== 2. speed: default budget {DEFAULT_TERMINATION} at L = 32 "
        "(targets: N=100 <= 2 s, N=1000 <= 20 s) =="
    )
    print(f"{'N':>5} {'algorithm':<9} {'wall_s':>7} {'cpu_s':>7} {'target_s':>9}  met")
    for n_clients in sizes:
        target = 2.0 if n_clients <= 100 else 20.0
        problem = SelectionProblem(peaked_scores(n_clients, 32, seed=2), BUDGET)
        for algorithm in META_HEURISTICS:
            _, wall, cpu = run(problem, algorithm, seed=0)
            ok = "yes" if wall <= target else ("cpu only" if cpu <= target else "NO")
            print(
                f"{n_clients:>5} {algorithm:<9} {wall:>7.2f} {cpu:>7.2f} {target:>9.1f}  {ok}",
                flush=True,
            )


def quality(seeds, n_evals=20_000):
    print(
        f"\n== 3. quality: N=10, L=12, budget 4, {n_evals:,} evaluations, seeds {list(seeds)}: "
        "HV ratio to exact (target: min >= 0.99) =="
    )
    refs = {}
    for s in seeds:
        problem = SelectionProblem(peaked_scores(10, 12, seed=100 + s), BUDGET)
        start = time.perf_counter()
        ex = exact_front(problem)
        refs[s] = (problem, ex.F)
        print(
            f"   exact front, instance {100 + s}: {len(ex.F)} points, {ex.n_solves} MILPs, "
            f"{time.perf_counter() - start:.1f} s"
        )
    print(f"{'algorithm':<9} {'min':>7} {'mean':>7} {'wall_s':>7}  per seed")
    for algorithm in META_HEURISTICS:
        ratios, walls = [], []
        for s in seeds:
            problem, ref = refs[s]
            front, wall, _ = run(problem, algorithm, seed=s, n_evals=n_evals)
            ratios.append(hypervolume_ratio(front.F, ref)[0])
            walls.append(wall)
        met = "met" if min(ratios) >= 0.99 else "NOT MET"
        print(
            f"{algorithm:<9} {min(ratios):>7.4f} {np.mean(ratios):>7.4f} {np.mean(walls):>7.2f}"
            f"  {' '.join(f'{r:.4f}' for r in ratios)}  {met}",
            flush=True,
        )
    return refs


def versus_optuna(refs, budgets, seeds):
    print(
        "\n== 4. NSGA-II vs Optuna NSGA-II sampler (random keys, top-k_i decoding), "
        "N=10, L=12, equal evaluations =="
    )
    print(
        f"{'n_evals':>8} {'seed':>4} {'nsga2_hv':>9} {'optuna_hv':>10} {'nsga2_s':>8}"
        f" {'optuna_s':>9}  nsga2 >= optuna, faster"
    )
    for n_evals in budgets:
        for s in seeds:
            problem, ref = refs[s]
            ours, t_ours, _ = run(problem, "nsga2", seed=s, n_evals=n_evals)
            theirs, t_theirs, _ = run(problem, "optuna", seed=s, n_evals=n_evals)
            hv_ours = hypervolume_ratio(ours.F, ref)[0]
            hv_theirs = hypervolume_ratio(theirs.F, ref)[0]
            ok = "yes" if hv_ours >= hv_theirs and t_ours < t_theirs else "NO"
            print(
                f"{n_evals:>8} {s:>4} {hv_ours:>9.4f} {hv_theirs:>10.4f} {t_ours:>8.2f}"
                f" {t_theirs:>9.2f}  {ok}",
                flush=True,
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and seeds")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.quick:
        grid([(5, 12), (50, 32)], 20_000)
        speed([100])
        refs = quality(range(2))
        versus_optuna(refs, [2000], range(1))
    else:
        grid([(n, units) for n in (5, 50, 500, 1000) for units in (12, 32)], 20_000)
        speed([100, 1000])
        refs = quality(range(5))
        versus_optuna(refs, [2000, 5000], range(3))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
