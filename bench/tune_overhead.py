"""The platform's overhead: a grid of M identical tiny trials through Ray Tune (placement
groups, per-round checkpoints, MLflow per trial) against the same trials back to back in one
process (`run_experiment` with the driver in that process as a trial hosts it, ClientWorker
actors, MLflow). Prints total wall, the sum of trial compute and the overhead per trial.
Target: overhead <= 15% of the summed trial compute for trials of >= 20 s.

    .venv/bin/python bench/tune_overhead.py --trials 3 --rounds 6 --local-steps 36
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--local-steps", type=int, default=12)
    args = ap.parse_args()

    import yaml

    from f3ocus_ray.platform.experiment import RunOptions, run_experiment
    from f3ocus_ray.platform.grid_spec import load_grid
    from f3ocus_ray.platform.ray_session import ensure_ray
    from f3ocus_ray.platform.tune_grid import run_grid

    ensure_ray(num_cpus=2)
    tmp = Path(tempfile.mkdtemp(prefix="tune_overhead-"))
    base = {
        "data": {
            "path": None,
            "synthetic": {"scale": 0.001, "min_per_client": 30},
            "image_size": 32,
        },
        "model": {"num_layers": 4, "patch_size": 8},
        "federation": {"rounds": args.rounds, "budgets": 2, "strategy": "last_k"},
        "training": {"local_steps": args.local_steps, "batch_size": 16},
        "engine": {"num_workers": 1, "cpus_per_worker": 1},
        "output_dir": str(tmp / "runs"),
        "tracking": {"uri": f"sqlite:///{tmp / 'mlflow.db'}"},
    }
    grid_file = tmp / "bench_grid.yaml"
    grid_file.write_text(
        yaml.safe_dump(
            {
                "name": "bench_grid",
                "base": base,
                "axes": {"name": [f"t{i}" for i in range(args.trials)]},  # M identical trials
                "tune": {"storage_path": str(tmp / "ray_results"), "driver_cpus": 1},
            }
        )
    )
    grid = load_grid(grid_file, cwd=tmp)

    # the same trials back to back in this process (warm-up first: data, imports)
    seq = []
    for t in grid.trials:
        t0 = time.perf_counter()
        # the driver in this process, as a trial hosts it; the ClientWorkers are actors in both
        run_experiment(t.cfg, progress=lambda m: None, options=RunOptions(in_process_driver=True))
        seq.append(time.perf_counter() - t0)
    compute = sum(seq)

    t0 = time.perf_counter()
    out = run_grid(grid, progress=lambda m: None)
    wall = time.perf_counter() - t0
    assert out.statuses == {"TERMINATED": args.trials}, out.statuses
    over = (wall - compute) / args.trials
    print(f"trials: {args.trials} x {args.rounds} rounds (one at a time, 2 CPUs)")
    print(
        f"back to back, one process: {compute:.1f} s  (per trial: {', '.join(f'{s:.1f}' for s in seq)})"
    )
    print(f"through the platform (Tune): total wall {wall:.1f} s")
    print(
        f"overhead per trial: {over:.1f} s = {100 * (wall - compute) / compute:.1f}% of the "
        f"summed trial compute"
    )


if __name__ == "__main__":
    main()
