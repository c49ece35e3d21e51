"""Cross-device federation: the engine's overhead per client update, and the driver's memory as
the number of registered clients grows.

Workload (defaults): the synthetic multi-label task (15 findings, Dirichlet label shift, as
experiments/t4_multilabel_4.yaml) with 1,000 clients of 32 samples, tiny ViLT, 50 clients per
round (`federation.clients_per_round`), 2 local steps, 5 rounds, strategy `random` (federated
dropout, budget 4 of 12 layers). Each round also evaluates a sample of as many clients
(`federation.eval_clients_per_round`); the run's final every-client evaluation is left out on
both sides (it is no client update).

(a) engine: the round (`Federation`, in this process) on a `RayExecutor` of --workers
    ClientWorkers of 1 CPU (1 torch thread) each;
(b) loop: the same updates as a plain sequential loop in this process with 1 torch thread:
    one ClientWorker's train/evaluate calls over the same participants, seeds and masks,
    FedAvg by hand. The bench checks that (a) and (b) end with bitwise the same global model.

With --workers 1 (the default) both sides do the same compute on one core, so their
difference is what the engine adds (dispatch, serialisation, the object store, the round's
bookkeeping); more workers also show the engine's parallel speed-up against the loop.

Before the clock starts, both sides decode the data of every client the rounds use and warm
up (one step and one evaluation). Printed: wall times, the engine's overhead per client
update = (engine - loop) / updates (target <= 5 ms), and the client affinity hits per round.

Driver memory: peak RSS of a driver process (the `Federation` with a stub executor whose
updates have the model's real tensor shapes, no training) at --registered clients vs
--clients, each in a fresh process, over the same rounds (target: ratio <= 1.5). The stub
stands in for the workers because the driver's memory is what is measured and 10,000 clients'
data would take long to generate.

    python bench/cross_device.py                    # the full size (minutes)
    python bench/cross_device.py --clients 40 --per-round 8 --rounds 2 --registered 400
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# the loop runs as a Ray worker of 1 CPU does: Ray sets OMP_NUM_THREADS=1 in such a worker, and
# without it torch.set_num_threads(1) alone leaves training 1.5-2x slower on this machine
os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

from f3ocus_ray.config import load_config  # noqa: E402
from f3ocus_ray.fl.executors import Affinity  # noqa: E402
from f3ocus_ray.fl.round import DriverSpec, Federation  # noqa: E402
from f3ocus_ray.fl.worker import ClientUpdate, ClientWorker  # noqa: E402
from f3ocus_ray.seeding import derive_eval_seed, derive_seed  # noqa: E402
from f3ocus_ray.strategies import masked_fedavg  # noqa: E402


def config(args, data_dir: str):
    return load_config(
        None,
        [
            "data.synthetic.task=multilabel",
            f"data.synthetic.n_clients={args.clients}",
            f"data.synthetic.samples_per_client={args.samples}",
            f"data.cache_dir={data_dir}",
            f"data.image_size={args.image_size}",
            "model.num_layers=12",
            "federation.budgets=4",
            "federation.strategy=random",
            f"federation.rounds={args.rounds}",
            f"federation.clients_per_round={args.per_round}",
            f"federation.eval_clients_per_round={args.per_round}",
            f"training.local_steps={args.steps}",
            "training.batch_size=16",
            "training.lr=2e-3",
            f"engine.num_workers={args.workers}",
            "engine.cpus_per_worker=1",
            "tracking.enabled=false",
        ],
    )


def used_clients(spec: DriverSpec, rounds: int) -> list[str]:
    """The clients the rounds train or evaluate: what both sides decode before the clock."""
    plan = Federation(spec, _NoJobs({}))
    used = set()
    for r in range(rounds):
        used.update(plan.participants(r).tolist(), plan.evaluated(r).tolist())
    return [spec.clients[i] for i in sorted(used)]


def engine(spec: DriverSpec, rounds: int, used: list[str]) -> tuple[float, dict, list[dict]]:
    """(a) Returns (seconds of the rounds, final state, per-round metrics)."""
    import ray

    from f3ocus_ray.fl.executors import RayExecutor

    executor = RayExecutor(spec.worker, spec.pool, BenchWorker)
    try:
        driver = Federation(spec, executor)
        ray.get([w.preload.remote(used) for w in executor.workers])
        ray.get([w.warm_up.remote(used[0], driver.state) for w in executor.workers])
        t0 = time.perf_counter()
        results = [driver.run_round() for _ in range(rounds)]
        seconds = time.perf_counter() - t0
        return seconds, driver.state, [r.metrics() for r in results]
    finally:
        executor.close()


def loop(spec: DriverSpec, rounds: int, used: list[str]) -> tuple[float, dict, int]:
    """(b) The same rounds by hand on one ClientWorker. Returns (seconds, final state,
    updates). Participants, masks and evaluated clients come from a Federation that runs no
    job (its strategy and draws), so both sides train the same clients with the same masks."""
    worker = BenchWorker(replace(spec.worker, torch_threads=1))  # as each Ray worker
    worker.preload(used)
    worker.warm_up(used[0], worker.initial_state())
    plan = Federation(spec, _NoJobs(worker.initial_state()))
    state = worker.initial_state()
    versions = dict.fromkeys(state, 0)
    updates = 0
    t0 = time.perf_counter()
    for r in range(rounds):
        part = plan.participants(r)
        masks = plan.strategy.select(r, plan.budgets[part], len(spec.unit_names)).masks
        trained = []
        for k, i in enumerate(part):
            client = spec.clients[i]
            u = worker.train(client, derive_seed(spec.seed, r, int(i)), masks[k], state, versions)
            trained.append((u.tensors, u.n_samples))
        updates += len(trained)
        state = masked_fedavg(state, trained)
        for tensors, _ in trained:
            versions.update(dict.fromkeys(tensors, r + 1))
        for i in plan.evaluated(r):
            worker.evaluate(
                spec.clients[i], derive_eval_seed(spec.seed, r, int(i)), state, versions
            )
    return time.perf_counter() - t0, state, updates


class BenchWorker(ClientWorker):
    def warm_up(self, client: str, state: dict) -> None:
        """One training step and an evaluation outside the clock: the first forward pass
        imports and initialises what it uses (tens of seconds on a busy machine). The mask
        trains no unit, so the rounds' masks still have their FLOPs counted on both sides."""
        mask = np.zeros(len(self.space.units), dtype=bool)
        versions = dict.fromkeys(state, 0)
        self.train(client, 0, mask, state, versions)
        self.evaluate(client, 0, state, versions)


class _NoJobs:
    """An executor that runs nothing: the loop borrows a Federation's draws only."""

    def __init__(self, state):
        self.state = state

    def initial_state(self):
        return self.state


class StubExecutor:
    """The driver-memory measure: train jobs return the model's tensors for the client's mask
    (the real shapes and counts), evaluations a multi-label count; no compute."""

    def __init__(self, worker: ClientWorker):
        self.worker, self._affinity = worker, Affinity()

    def share(self, obj):
        return obj

    def initial_state(self):
        return self.worker.initial_state()

    def affinity_hits(self):
        return self._affinity.hits

    def close(self):
        pass

    def run(self, jobs):
        out = []
        for job in jobs:
            self._affinity.note(job.client, 0)
            if job.method == "train":
                client, seed, mask, state = job.args[:4]
                w = self.worker
                names = w.space.trainable(mask, w.spec.model.train_head, None)
                out.append(ClientUpdate({n: state[n] + 1e-3 for n in names}, 26, 0.5, 0.0, 2, 0.1))
            else:
                out.append({"n": 6.0, "loss_sum": 3.0, "tp": 4.0, "fp": 2.0, "fn": 2.0})
        return out


def driver_peak_rss(registered: int, args) -> float:
    """Peak RSS (MB) of this process after a stub-executor run with `registered` clients."""
    with tempfile.TemporaryDirectory() as d:
        tiny = {**vars(args), "clients": 2, "samples": 5, "per_round": 1}
        cfg = config(argparse.Namespace(**tiny), d)
        from f3ocus_ray.platform.prepare import prepare

        spec = prepare(cfg).driver_spec  # two real clients: the model spec and settings
    spec = replace(
        spec,
        clients=[f"client_{i:05d}" for i in range(registered)],
        budgets=[4] * registered,
        n_train=[26] * registered,
        n_test=[6] * registered,
        clients_per_round=args.per_round,
        eval_clients_per_round=args.per_round,
    )
    federation = Federation(spec, StubExecutor(ClientWorker(spec.worker)))
    for _ in range(args.rounds):
        federation.run_round()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_in_fresh_process(registered: int, args) -> float:
    cmd = [sys.executable, __file__, "--driver-rss", str(registered)]
    for key in ("per_round", "rounds", "steps", "image_size"):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["peak_rss_mb"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=32, help="samples per client")
    ap.add_argument("--per-round", type=int, default=50)
    ap.add_argument("--steps", type=int, default=2, help="local steps per client update")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--registered", type=int, default=10_000, help="driver memory: clients")
    ap.add_argument("--data-dir", default="data", help="where the synthetic set is cached")
    ap.add_argument("--driver-rss", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.driver_rss is not None:  # one driver-memory measure, in its own process
        print(json.dumps({"peak_rss_mb": driver_peak_rss(args.driver_rss, args)}))
        return 0

    import ray

    from f3ocus_ray.platform.prepare import prepare
    from f3ocus_ray.platform.ray_session import ensure_ray

    t0 = time.perf_counter()
    prep = prepare(config(args, args.data_dir))
    spec = replace(prep.driver_spec, rounds=None)  # no final every-client evaluation
    print(f"data: {len(spec.clients)} clients, {sum(spec.n_train)} train samples "
          f"({time.perf_counter() - t0:.1f} s to generate or open)")  # fmt: skip

    used = used_clients(spec, args.rounds)
    seconds_loop, state_loop, updates = loop(spec, args.rounds, used)
    started = ensure_ray(num_cpus=args.workers)
    try:
        seconds_engine, state_engine, metrics = engine(spec, args.rounds, used)
    finally:
        if started:
            ray.shutdown()
    same = all(np.array_equal(state_loop[n], state_engine[n]) for n in state_loop)
    per_update_ms = (seconds_engine - seconds_loop) / updates * 1e3
    hits = [int(m["engine/affinity_hits"]) for m in metrics]
    jobs = [int(m["engine/jobs"]) for m in metrics]
    print(f"updates: {updates} ({args.rounds} rounds x {args.per_round} clients, "
          f"{args.steps} local steps, {args.workers} workers)")  # fmt: skip
    print(f"loop   {seconds_loop:8.2f} s  (1 torch thread, one process)")
    print(f"engine {seconds_engine:8.2f} s  (Ray, {args.workers} workers of 1 CPU)")
    note = "target <= 5 ms" if args.workers == 1 else "a speed-up, not an overhead: --workers 1"
    print(f"engine overhead per client update: {per_update_ms:+.2f} ms ({note})")
    print(f"affinity hits per round: {hits} of {jobs} jobs")
    print(f"same final model (loop vs engine): {same}")

    small = rss_in_fresh_process(args.clients, args)
    large = rss_in_fresh_process(args.registered, args)
    print(
        f"driver peak RSS (stub executor): {args.clients:,} clients {small:.0f} MB, "
        f"{args.registered:,} clients {large:.0f} MB, ratio {large / small:.2f} (target <= 1.5)"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
