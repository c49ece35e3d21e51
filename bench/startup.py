"""Where a run's fixed time and memory go: `f3ocus run` of the demo workload (9 clients x 6
rounds x one local epoch, 2 workers x 1 CPU) in a fresh process, against the plain one-process
loop of the same training code (the in-process executor, 2 torch threads), also fresh.

The processes write timestamps themselves (F3OCUS_TIMING, f3ocus_ray/timing.py): the
launching process's phases (config, data, Ray start, MLflow run), each worker's imports, model
build, data decoding and first training step. This script polls the process tree's RSS (for
the peak) and takes RSS and PSS per process (psutil's memory_full_info) after round 1.

    .venv/bin/python bench/startup.py [--rounds 6] [--set KEY=VALUE ...] [--only run|plain]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "experiments/demo.yaml"
HEAVY = ("torch", "transformers", "mlflow", "matplotlib", "pymoo", "optuna", "ray", "pandas")


# -- the plain loop (run in a child process of its own) -----------------------------------
def plain_loop(overrides: list[str]) -> None:
    from dataclasses import replace

    from f3ocus_ray.config import load_config
    from f3ocus_ray.fl.executors import InProcessExecutor
    from f3ocus_ray.fl.round import Federation
    from f3ocus_ray.platform.prepare import prepare
    from f3ocus_ray.timing import mark

    mark("cli")
    cfg = load_config(CONFIG, overrides)
    mark("config")
    prep = prepare(cfg)
    mark("prepared")
    spec = prep.driver_spec
    executor = InProcessExecutor(replace(spec.worker, torch_threads=2))
    federation = Federation(spec, executor)
    for _ in range(cfg.federation.rounds):
        res = federation.run_round()
        mark("round", round=res.round)
    print(json.dumps({"score": res.score, "digest": digest(federation.state)}))


def digest(state: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        value = state[name]  # numpy, or a tensor from a checkpoint
        h.update((value.numpy() if hasattr(value, "numpy") else value).tobytes())
    return h.hexdigest()[:16]


# -- measuring a child -----------------------------------------------------------------------
def role(p: psutil.Process, root: int) -> str:
    if p.pid == root:
        return "launching process"
    try:
        cmd = " ".join(p.cmdline())
    except psutil.Error:
        return "?"
    for pat, name in [
        (r"gcs_server", "Ray GCS"),
        (r"/raylet ", "Ray raylet"),
        (r"dashboard/dashboard\.py", "Ray dashboard (API server)"),
        (r"ray::DashboardAgent", "Ray dashboard agent"),
        (r"ray::RuntimeEnvAgent", "Ray runtime-env agent"),
        (r"autoscaler/_private/monitor\.py", "Ray autoscaler monitor"),
        (r"log_monitor\.py", "Ray log monitor"),
        (r"ray::ClientWorker|ray::_?\w*Worker", "ClientWorker"),
        (r"ray::FederatedDriver|ray::Driver", "driver actor"),
        (r"ray::IDLE", "Ray idle worker"),
        (r"ray_process_reaper|reaper", "Ray reaper"),
    ]:
        if re.search(pat, cmd):
            return name
    return cmd[:40]


def tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


class Sampler(threading.Thread):
    """The tree's summed RSS every 0.1 s (its peak), and RSS + PSS per process on request."""

    def __init__(self, proc: psutil.Process):
        super().__init__(daemon=True)
        self.proc, self.peak, self.peak_n, self.stop = proc, 0, 0, False
        self.at_peak: list[tuple[str, int, float]] = []  # (role, pid, RSS MB) at the peak
        self.snapshot: list[tuple[str, int, float, float]] | None = None
        self.want_snapshot = False

    def run(self) -> None:
        while not self.stop and self.proc.is_running():
            total, sizes = 0, []
            procs = tree(self.proc)
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                sizes.append((p, rss))
            if total > self.peak:
                self.peak, self.peak_n = total, len(sizes)
                self.at_peak = [(role(p, self.proc.pid), p.pid, rss / 2**20) for p, rss in sizes]
            if self.want_snapshot:
                self.want_snapshot = False
                rows = []
                for p in procs:
                    try:
                        m = p.memory_full_info()
                        name = role(p, self.proc.pid)
                    except psutil.Error:
                        continue  # ended meanwhile
                    if m.rss:
                        rows.append((name, p.pid, m.rss / 2**20, m.pss / 2**20))
                self.snapshot = rows
            time.sleep(0.1)


def measure(cmd: list[str], env: dict[str, str], marks_file: Path) -> dict:
    t0 = time.time()
    child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    proc = psutil.Process(child.pid)
    sampler = Sampler(proc)
    sampler.start()
    created: dict[int, float] = {}
    while child.poll() is None:
        for p in tree(proc):
            if p.pid not in created:
                try:
                    created[p.pid] = p.create_time()
                except psutil.Error:
                    pass
        if sampler.snapshot is None and not sampler.want_snapshot and marks_file.is_file():
            if '"event": "round"' in marks_file.read_text():
                sampler.want_snapshot = True  # round 1 is done: everything is up
        time.sleep(0.05)
    out = child.stdout.read()
    wall = time.time() - t0
    sampler.stop = True
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{cmd} exited with {child.returncode}")
    marks = [json.loads(line) for line in marks_file.read_text().splitlines()]
    return {
        "t0": t0,
        "wall": wall,
        "root": child.pid,
        "marks": marks,
        "created": created,
        "peak": sampler.peak,
        "peak_n": sampler.peak_n,
        "at_peak": sampler.at_peak,
        "snapshot": sampler.snapshot or [],
        "stdout": out,
    }


# -- the report --------------------------------------------------------------------------------
def first(marks: list[dict], event: str, pid: int | None = None) -> dict | None:
    return next(
        (m for m in marks if m["event"] == event and (pid is None or m["pid"] == pid)), None
    )


LABELS = {
    "import": "first f3ocus_ray import",
    "cli": "command line parsed",
    "config": "config loaded (imports: pydantic, the model registries, torch)",
    "experiment": "run_experiment entered (imports: MLflow, Ray, plots)",
    "prepared": "data prepared (tokenizer, baselines; no image decoded)",
    "ray_start": "Ray start ...",
    "ray_up": "... Ray up",
    "tracking": "MLflow run open",
    "driver_init": "driver: start workers",
    "driver_ready": "driver: workers up, initial state here",
    "worker_init": "worker: imports done, ClientWorker.__init__",
    "model_built": "worker: model built",
    "first_step": "worker: first training step begins",
}


def timeline(r: dict) -> list[str]:
    """Each process's marks in time order, in seconds after launch."""
    t0, marks, root = r["t0"], r["marks"], r["root"]
    lines = []
    for pid in sorted({m["pid"] for m in marks}, key=lambda p: (p != root, p)):
        mine = [m for m in marks if m["pid"] == pid]
        kind = "launching process" if pid == root else "Ray worker process"
        lines.append(f"  {kind} (pid {pid}), seconds after launch:")
        created = r["created"].get(pid)
        if created and pid != root:
            lines.append(f"    {created - t0:6.2f}  process created")
        decoded: dict[tuple[str, str], float] = {}
        for m in mine:
            if m["event"] == "data":
                decoded.setdefault((m["client"], m["split"]), m["seconds"])
            elif m["event"] in LABELS and first(mine, m["event"]) is m:
                lines.append(f"    {m['t'] - t0:6.2f}  {LABELS[m['event']]}")
                if m["event"] == "first_step" and decoded:
                    n, secs = len(decoded), sum(decoded.values())
                    lines.append(f"            (data decoded so far: {n} splits, {secs:.2f} s)")
        if decoded:
            n, secs = len(decoded), sum(decoded.values())
            lines.append(f"            data decoded in all: {n} splits, {secs:.2f} s")
        rounds = [m for m in mine if m["event"] == "round"]
        if rounds:
            lines.append(f"    {rounds[0]['t'] - t0:6.2f}  round 1 done")
            lines.append(f"    {rounds[-1]['t'] - t0:6.2f}  round {rounds[-1]['round']} done")
    return lines


def summary(name: str, r: dict) -> dict:
    marks, t0 = r["marks"], r["t0"]
    step = first(marks, "first_step")
    rounds = [m for m in marks if m["event"] == "round"]
    return {
        "name": name,
        "wall": r["wall"],
        "first_step": step["t"] - t0 if step else float("nan"),
        "rounds": (rounds[-1]["t"] - step["t"]) if rounds and step else float("nan"),
        "peak_gb": r["peak"] / 2**30,
        "peak_n": r["peak_n"],
    }


def memory_table(r: dict) -> list[str]:
    rows = sorted(r["snapshot"], key=lambda x: -x[2])
    lines = [f"  {'process':32}{'pid':>8}{'RSS MB':>9}{'PSS MB':>9}"]
    for name, pid, rss, pss in rows:
        lines.append(f"  {name:32}{pid:>8}{rss:9.0f}{pss:9.0f}")
    lines.append(
        f"  {'all ' + str(len(rows)) + ' processes':32}{'':>8}"
        f"{sum(x[2] for x in rows):9.0f}{sum(x[3] for x in rows):9.0f}"
    )
    return lines


def import_profile(module: str, env: dict[str, str], before: str = "") -> str:
    """Seconds of `import module` (after `before`), by top-level package, from -X importtime."""
    code = f"{before}\nimport {module}"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    by_pkg: dict[str, float] = {}
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)", line)
        if m:
            pkg = m[2].split(".")[0]
            by_pkg[pkg] = by_pkg.get(pkg, 0.0) + int(m[1]) / 1e6
    if before:  # what `before` imported is not this module's cost
        done0 = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", before],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        for line in done0.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)", line)
            if m:
                pkg = m[2].split(".")[0]
                by_pkg[pkg] = by_pkg.get(pkg, 0.0) - int(m[1]) / 1e6
    top = sorted(by_pkg.items(), key=lambda kv: -kv[1])
    heavy = [k for k in HEAVY if by_pkg.get(k, 0) > 0.01]
    total = sum(v for v in by_pkg.values() if v > 0)
    parts = ", ".join(f"{k} {v:.2f}" for k, v in top[:6] if v > 0.01)
    return f"{total:.2f} s ({parts}); heavy packages: {', '.join(heavy) or 'none'}"


def run_digest(run_root: Path) -> str:
    import torch

    (ckpt,) = run_root.glob("*/checkpoint.pt")
    state = torch.load(ckpt, weights_only=False)["state"]
    return digest(state)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--only", choices=["run", "plain"], help="measure one runner only")
    ap.add_argument("--plain-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--run-args", default="", help="more `f3ocus run` arguments, e.g. --dashboard")
    args = ap.parse_args()
    overrides = [
        f"federation.rounds={args.rounds}",
        "training.local_epochs=1",
        "engine.num_workers=2",
        "engine.cpus_per_worker=1",
        *args.overrides,
    ]
    if args.plain_child:
        plain_loop(overrides)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="f3ocus-startup-"))
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="disabled")
    # not timed: the synthetic data set and the MLflow database exist before, as on a 2nd run
    setup = (
        "import sys, mlflow\n"
        "from f3ocus_ray.config import load_config\n"
        "from f3ocus_ray.platform.prepare import prepare\n"
        "prepare(load_config(sys.argv[1], sys.argv[3:]))\n"
        "mlflow.MlflowClient(sys.argv[2]).search_experiments()\n"
    )
    subprocess.run(
        [sys.executable, "-c", setup, CONFIG, uri, *overrides], cwd=ROOT, env=env, check=True
    )

    results = {}
    if args.only in (None, "run"):
        marks = tmp / "run.jsonl"
        cmd = [sys.executable, "-m", "f3ocus_ray.cli", "run", CONFIG, "--tracking-uri", uri]
        cmd += [x for o in [*overrides, f"output_dir={tmp / 'runs'}"] for x in ("--set", o)]
        cmd += args.run_args.split()
        results["f3ocus run"] = measure(cmd, {**env, "F3OCUS_TIMING": str(marks)}, marks)
        results["f3ocus run"]["digest"] = run_digest(tmp / "runs")
    if args.only in (None, "plain"):
        marks = tmp / "plain.jsonl"
        cmd = [sys.executable, __file__, "--plain-child", "--rounds", str(args.rounds)]
        cmd += [x for o in args.overrides for x in ("--set", o)]
        results["plain loop"] = measure(cmd, {**env, "F3OCUS_TIMING": str(marks)}, marks)
        results["plain loop"]["digest"] = json.loads(results["plain loop"]["stdout"])["digest"]

    print(f"workload: {CONFIG} with {' '.join(overrides)}")
    for name, r in results.items():
        print(f"\n== {name}: timeline")
        print("\n".join(timeline(r)))
        print(f"== {name}: memory after round 1 (RSS counts shared pages in each process)")
        print("\n".join(memory_table(r)))
        at_peak = sorted(r["at_peak"], key=lambda x: -x[2])
        print(f"== {name}: RSS at the peak ({r['peak'] / 2**30:.2f} GB): ", end="")
        print(", ".join(f"{n} {m:.0f} MB" for n, _, m in at_peak))
    print("\n== imports (python -X importtime, seconds by package)")
    worker = "f3ocus_ray.fl.worker, f3ocus_ray.models.vilt"  # the class and tiny-vilt's family
    print("  worker, after ray:   " + import_profile(worker, env, "import ray"))
    print("  launch, run path:    " + import_profile("f3ocus_ray.platform.experiment", env))

    print(
        f"\n{'':14}{'whole s':>9}{'1st step s':>11}{'rounds s':>9}{'peak RSS GB':>12}"
        f"{'procs':>6}  result digest"
    )
    rows = {name: summary(name, r) for name, r in results.items()}
    for name, s in rows.items():
        print(
            f"{name:14}{s['wall']:9.1f}{s['first_step']:11.1f}{s['rounds']:9.1f}"
            f"{s['peak_gb']:12.2f}{s['peak_n']:6d}  {results[name]['digest']}"
        )
    if len(rows) == 2:
        a, b = rows["f3ocus run"], rows["plain loop"]
        print(
            f"f3ocus run / plain loop: whole {a['wall'] / b['wall']:.2f} (target <= 0.85); "
            f"launch -> first step {a['first_step']:.1f} s (target <= 8); "
            f"peak RSS {a['peak_gb']:.2f} GB (target <= 1.5)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
