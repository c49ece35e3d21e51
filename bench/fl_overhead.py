"""The Ray engine's overhead against the compute floor on this machine.

One workload (the demo's 9 clients x R rounds x S local steps, tiny ViLT, evaluation every
round) run (a) as a plain sequential loop in one process with 2 torch threads calling the same
local-training code, and (b) through the Ray engine with 2 workers of 1 CPU each. Prints both
wall times (median of --repeats), Ray's one-time start-up separately, the ratio (b)/(a), and
each worker's peak memory.

    .venv/bin/python bench/fl_overhead.py [--rounds 3] [--steps 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import numpy as np  # noqa: E402
import ray  # noqa: E402
import torch  # noqa: E402

from f3ocus_ray.config import load_config  # noqa: E402
from f3ocus_ray.fl.aggregation import masked_fedavg  # noqa: E402
from f3ocus_ray.fl.client_data import load_client_tensors, open_dataset  # noqa: E402
from f3ocus_ray.fl.driver import FederatedDriver  # noqa: E402
from f3ocus_ray.fl.seeding import derive_seed  # noqa: E402
from f3ocus_ray.fl.strategies import make_strategy  # noqa: E402
from f3ocus_ray.fl.training import evaluate, local_train  # noqa: E402
from f3ocus_ray.models import build_model  # noqa: E402
from f3ocus_ray.platform.experiment import prepare  # noqa: E402
from f3ocus_ray.platform.ray_session import ensure_ray  # noqa: E402


def sequential(prep, rounds: int) -> float:
    """(a) the compute floor: one process, 2 torch threads, the same training code."""
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    spec = prep.driver_spec
    ws = spec.worker
    model, space = build_model(ws.model)
    params = dict(model.named_parameters())
    ds, tok = open_dataset(ws.data_path, ws.image_size, ws.tokenizer_json)
    data = {
        (c, s): load_client_tensors(ds, tok, c, s, ws.max_text_len)
        for c in spec.clients
        for s in ("train", "test")
    }
    state = {n: params[n].detach().numpy().copy() for n in space.all_params}
    strategy = make_strategy(spec.strategy, spec.seed)
    tr = ws.training
    for r in range(rounds):
        masks = strategy.select(r, np.asarray(spec.budgets), space.num_units)
        updates = []
        for i, c in enumerate(spec.clients):
            with torch.no_grad():
                for n in space.all_params:
                    params[n].copy_(torch.from_numpy(state[n]))
            trainable = space.apply(model, masks[i], tr.train_head)
            seed = derive_seed(spec.seed, r, i)
            local_train(
                model,
                trainable,
                data[(c, "train")],
                steps=tr.local_steps,
                batch_size=tr.batch_size,
                lr=tr.lr,
                weight_decay=tr.weight_decay,
                seed=seed,
            )
            names = space.trainable(masks[i], tr.train_head)
            updates.append(
                ({n: params[n].detach().numpy().copy() for n in names}, len(data[(c, "train")]))
            )
        state = masked_fedavg(state, updates)
        with torch.no_grad():
            for n in space.all_params:
                params[n].copy_(torch.from_numpy(state[n]))
        for c in spec.clients:
            evaluate(model, data[(c, "test")], tr.eval_batch_size)
    return time.perf_counter() - t0


def engine(prep, rounds: int) -> tuple[float, list[float]]:
    """(b) the Ray engine: 2 ClientWorkers of 1 CPU; the driver in this process."""
    t0 = time.perf_counter()
    driver = FederatedDriver(prep.driver_spec)
    for _ in range(rounds):
        driver.run_round()
    wall = time.perf_counter() - t0
    rss = driver.worker_peak_rss_mb()
    for w in driver.workers:
        ray.kill(w)
    return wall, rss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8, help="local steps per client per round")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg = load_config(
        "experiments/demo.yaml",
        [
            f"training.local_steps={args.steps}",
            "engine.num_workers=2",
            "engine.cpus_per_worker=1",
            "tracking.enabled=false",
        ],
    )
    prep = prepare(cfg)  # generates the synthetic set on first use
    n = len(prep.driver_spec.clients)
    print(
        f"workload: {n} clients x {args.rounds} rounds x {args.steps} local steps "
        f"(batch {cfg.training.batch_size}), tiny ViLT, eval every round"
    )

    t = time.perf_counter()
    ensure_ray(num_cpus=2)
    startup = time.perf_counter() - t

    seq, eng, rss = [], [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        seq.append(sequential(prep, args.rounds))
        wall, peak = engine(prep, args.rounds)
        eng.append(wall)
        rss = peak
    a, b = statistics.median(seq), statistics.median(eng)
    print(
        f"(a) sequential, 1 process, 2 torch threads : median {a:6.2f} s  runs {[round(x, 2) for x in seq]}"
    )
    print(
        f"(b) Ray engine, 2 workers x 1 CPU          : median {b:6.2f} s  runs {[round(x, 2) for x in eng]}"
    )
    print(f"Ray start-up (once, not counted)           : {startup:6.2f} s")
    print(f"ratio (b)/(a)                              : {b / a:6.3f}  (target <= 1.0)")
    print(f"peak RSS per worker                        : {', '.join(f'{m:.0f} MB' for m in rss)}")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
