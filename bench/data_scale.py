"""Memory and throughput of the data path as the data grows: synthetic MedVQA-FL on 2 workers.

Modes (each generates its synthetic sets once, in parallel, under --data-dir, and decodes each
client split once into the decoded cache under it; later runs reuse both):

  scale    the same experiment at scale S and 4S: per size, each worker's peak RSS, the
           training samples/s and the time to the first round (which includes decoding the
           splits into the cache on a cold cache). Target: peak RSS at 4S <= 1.1 x at S.
  compare  at S, the streaming path (engine.worker_cache_mb=0: every batch read from the
           cache) against the in-memory path (every split held whole): training samples/s of
           each. Target: streaming >= 0.9 x in-memory.
  full     one run to the end at S (e.g. --scale 0.1 --image-size 384), then the disk and
           memory headroom left on this machine.

    .venv/bin/python bench/data_scale.py scale   --scale 0.01 --image-size 224
    .venv/bin/python bench/data_scale.py compare --scale 0.01 --image-size 224
    .venv/bin/python bench/data_scale.py full    --scale 0.1  --image-size 384 --rounds 2
    # a tiny smoke run:
    .venv/bin/python bench/data_scale.py scale --scale 0.0005 --image-size 32 --steps 2

The model is the tiny ViLT (random weights) with a patch of image_size / 7 pixels, so the
compute per sample stays small and the data path dominates.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import psutil  # noqa: E402
import ray  # noqa: E402

from f3ocus_ray.config import load_config  # noqa: E402
from f3ocus_ray.fl.driver import FederatedDriver  # noqa: E402
from f3ocus_ray.platform.prepare import prepare  # noqa: E402
from f3ocus_ray.platform.ray_session import ensure_ray  # noqa: E402


def trained_samples(n: int, steps: int, batch: int) -> int:
    """Samples one client processes in `steps` steps (an epoch's last batch is smaller)."""
    pos, total = 0, 0
    for _ in range(steps):
        if pos >= n:
            pos = 0
        total += min(batch, n - pos)
        pos += batch
    return total


def config(args: argparse.Namespace, scale: float, cache_mb: float, rounds: int):
    patch = max(2, args.image_size // 7)
    while args.image_size % patch:
        patch -= 1
    return load_config(
        "experiments/demo.yaml",
        [
            f"data.synthetic.scale={scale}",
            f"data.synthetic.min_per_client={args.min_per_client}",
            f"data.synthetic.workers={args.synth_workers}",
            f"data.image_size={args.image_size}",
            f"data.cache_dir={args.data_dir}",
            f"model.patch_size={patch}",
            "model.num_layers=4",
            "federation.budgets=2",
            f"federation.rounds={rounds}",
            f"training.local_steps={args.steps}",
            f"training.batch_size={args.batch_size}",
            "engine.num_workers=2",
            "engine.cpus_per_worker=1",
            f"engine.worker_cache_mb={cache_mb}",
            "tracking.enabled=false",
        ],
    )


def run(args: argparse.Namespace, scale: float, cache_mb: float, rounds: int) -> dict:
    """One experiment on fresh workers: time to the first round, training samples/s over
    all rounds, each worker's peak RSS (MB)."""
    t = time.perf_counter()
    prep = prepare(config(args, scale, cache_mb, rounds))  # generates the set on first use
    setup = time.perf_counter() - t
    spec = prep.driver_spec
    per_round = sum(trained_samples(n, args.steps, args.batch_size) for n in spec.n_train)
    t = time.perf_counter()
    driver = FederatedDriver(spec)
    try:
        results = [driver.run_round()]
        first = time.perf_counter() - t
        results += [driver.run_round() for _ in range(rounds - 1)]
        rss = driver.worker_peak_rss_mb()
    finally:
        driver.close()
    train_s = sum(r.seconds_train for r in results)
    return {
        "samples": sum(spec.n_train) + sum(spec.n_test),
        "prepare_s": setup,
        "first_round_s": first,
        "samples_per_s": per_round * rounds / train_s,
        "warm_samples_per_s": per_round * (rounds - 1) / sum(r.seconds_train for r in results[1:])
        if rounds > 1
        else float("nan"),
        "rss": rss,
        "path": prep.facts.path,
    }


def show(label: str, r: dict) -> None:
    rss = ", ".join(f"{m:.0f}" for m in r["rss"])
    print(
        f"{label:<28} {r['samples']:>8} samples  peak RSS per worker [{rss}] MB  "
        f"first round {r['first_round_s']:.1f} s  train {r['samples_per_s']:.1f} samples/s "
        f"(rounds 2+: {r['warm_samples_per_s']:.1f})  [data prep {r['prepare_s']:.1f} s]"
    )


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["scale", "compare", "full"])
    ap.add_argument("--scale", type=float, default=0.01, help="S (scale mode: S and 4S)")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--min-per-client", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8, help="local steps per client per round")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument(
        "--cache-mb",
        type=float,
        default=0,
        help="engine.worker_cache_mb of the scale and full runs (0: stream every batch)",
    )
    ap.add_argument("--synth-workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    ap.add_argument("--data-dir", default="/tmp/f3ocus-data-scale")
    args = ap.parse_args()
    ensure_ray(num_cpus=2)
    print(
        f"synthetic MedVQA-FL at {args.image_size} px, tiny ViLT, 2 workers x 1 CPU, "
        f"{args.steps} local steps of batch {args.batch_size}, {args.rounds} rounds"
    )
    if args.mode == "scale":
        small = run(args, args.scale, args.cache_mb, args.rounds)
        show(f"S  = scale {args.scale:g}", small)
        big = run(args, 4 * args.scale, args.cache_mb, args.rounds)
        show(f"4S = scale {4 * args.scale:g}", big)
        ratio = max(big["rss"]) / max(small["rss"])
        print(f"peak RSS 4S / S: {ratio:.3f}  (target <= 1.1)")
    elif args.mode == "compare":
        run(args, args.scale, 0, 1)  # builds the decoded cache: both runs below read it warm
        stream = run(args, args.scale, 0, args.rounds)
        show("streaming (worker_cache_mb=0)", stream)
        memory = run(args, args.scale, 1e9, args.rounds)
        show("in memory (every split held)", memory)
        ratio = stream["samples_per_s"] / memory["samples_per_s"]
        print(f"samples/s streaming / in-memory: {ratio:.3f}  (target >= 0.9)")
    else:
        r = run(args, args.scale, args.cache_mb, args.rounds)
        show(f"scale {args.scale:g}, to the end", r)
        data, cache = r["path"], r["path"] / ".f3ocus-cache"
        disk = shutil.disk_usage(data)
        mem = psutil.virtual_memory()
        print(
            f"data set {folder_mb(data) - folder_mb(cache):.0f} MB, decoded cache "
            f"{folder_mb(cache):.0f} MB; disk free {disk.free / 2**30:.1f} GiB of "
            f"{disk.total / 2**30:.1f} GiB; memory available {mem.available / 2**30:.1f} GiB of "
            f"{mem.total / 2**30:.1f} GiB; peak worker RSS {max(r['rss']):.0f} MB"
        )
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
