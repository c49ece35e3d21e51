"""What LNTK scoring costs a client, on the demo's tiny ViLT, one torch thread.

(1) `loss` mode, all 12 units, default n = 64, against one local epoch on the same client
    (`local_train`, AdamW, batch 16, ceil(N/16) steps, the last 4 units + head trained, as the
    demo's last_k strategy). Both in this process, median of --repeats after a warm-up.
(2) `logits` mode, matrix-free Lanczos against the exact path (explicit Jacobian, dense
    eigendecomposition) at n = 8, 32, 128 on --logits-units. Every variant runs in a fresh
    subprocess; its peak memory is that process's VmHWM (peak resident set size of its own
    address space, /proc/<pid>/status), read by the child as it ends or fails, or by this
    process just before killing it at --timeout. (ru_maxrss is not used: a forked child
    inherits the parent's high-water mark.) Each child runs under an address-space limit of
    --mem-limit-gib. An `idle` child (imports, model and data, no scoring) gives the floor.

    .venv/bin/python bench/ntk.py [--train-samples 240] [--repeats 3] [--logits-units 11]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from f3ocus_ray.config import ModelConfig
from f3ocus_ray.fl.training import local_train
from f3ocus_ray.models import ModelSpec, build_model
from f3ocus_ray.scoring import score_units
from f3ocus_ray.task import ClientTensors

# the config's default model (tiny ViLT, 12 blocks of width 64) on 64 px images, 16-token
# questions, a 500-token vocabulary and 200 answers
DEMO = ModelSpec.from_config(
    ModelConfig(), image_size=64, vocab_size=500, max_text_len=16, num_outputs=200
)


def demo_client(n: int, seed: int = 0) -> ClientTensors:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(6, 17, (n,), generator=g)
    mask = (torch.arange(16)[None, :] < lengths[:, None]).long()
    return ClientTensors(
        pixel_values=torch.rand(n, 3, 64, 64, generator=g) * 2 - 1,
        input_ids=torch.randint(1, 500, (n, 16), generator=g) * mask,
        attention_mask=mask,
        targets=torch.randint(0, DEMO.num_outputs, (n,), generator=g),
        task="vqa",
    )


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def loss_mode_vs_epoch(train_samples: int, n_samples: int, repeats: int) -> None:
    model, space = build_model(DEMO)
    data = demo_client(train_samples)
    steps = math.ceil(train_samples / 16)
    mask = np.zeros(space.num_units, dtype=bool)
    mask[-4:] = True

    def epoch() -> None:
        params = space.apply(model, mask)
        local_train(
            model, params, data, steps=steps, batch_size=16, lr=1e-4, weight_decay=0.0, seed=0
        )

    def scoring() -> None:
        score_units(model, space, data, mode="loss", n_samples=n_samples)

    t_score = _median_seconds(scoring, repeats)
    t_epoch = _median_seconds(epoch, repeats)
    print(f"(1) client of {train_samples} samples, {space.num_units} units, 1 torch thread")
    print(f"    LNTK loss mode, n={n_samples}, all units : {t_score:7.3f} s")
    print(f"    one local epoch ({steps} steps of 16, 4 units+head): {t_epoch:7.3f} s")
    print(f"    ratio scoring / epoch          : {t_score / t_epoch:7.3f}  (target <= 1.0)")


def vm_hwm_mib(pid: int | str = "self") -> float:
    """Peak resident set size of a process's own address space, MiB (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        line = next(ln for ln in f if ln.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _describe(err: Exception) -> str:
    refused = re.search(r"allocate (\d+) bytes", str(err))
    if refused:
        return f"out of memory (a further {int(refused.group(1)) / 2**20:.0f} MiB refused)"
    return f"{type(err).__name__}: {str(err).splitlines()[0][:70]}"


def child(n: int, variant: str, units: list[int], mem_limit: int) -> None:
    """One measurement in this (fresh) process; prints a JSON line, exits 1 on failure."""
    resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))
    counts: list[int] = []

    class _Steps(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno == logging.DEBUG:  # "λ1 %g after %d Lanczos steps"
                counts.append(int(record.args[1]))

    logger = logging.getLogger("f3ocus_ray.scoring.lntk")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(_Steps())
    model, space = build_model(DEMO)
    data = demo_client(n)
    sub = space.__class__(units=tuple(space.units[i] for i in units), head=space.head)
    out: dict = {"seconds": 0.0, "raw": []}
    try:
        if variant != "idle":
            t0 = time.perf_counter()
            exact = variant == "exact"
            scores = score_units(model, sub, data, mode="logits", n_samples=n, exact=exact)
            out = {"seconds": time.perf_counter() - t0, "raw": scores.raw.tolist()}
    except Exception as err:  # report, with the peak reached, and fail
        out = {"error": _describe(err)}
    out.update(lanczos_steps=counts, peak_mib=vm_hwm_mib())
    print(json.dumps(out), flush=True)
    sys.exit(1 if "error" in out else 0)


def run_child(args: list[str], timeout: float) -> tuple[dict, str]:
    """(result with peak_mib, status) of one fresh subprocess."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        peak = vm_hwm_mib(proc.pid)
        proc.kill()
        proc.communicate()
        return {"peak_mib": peak}, f"killed at {timeout:.0f} s"
    lines = out.strip().splitlines()
    if not lines:
        last = (err.strip().splitlines() or ["?"])[-1]
        return {"peak_mib": float("nan")}, f"crashed: {last[:80]}"
    result = json.loads(lines[-1])
    return result, ("failed: " + result["error"]) if "error" in result else "ok"


def logits_free_vs_exact(ns: list[int], units: list[int], timeout: float, mem_gib: float) -> None:
    model, space = build_model(DEMO)
    sizes = space.unit_sizes(model)
    limit = str(int(mem_gib * 2**30))
    c = DEMO.num_outputs
    unit_args = [str(u) for u in units]
    print(
        f"(2) logits mode, C={c} outputs, units {units} (d_l = {sizes[units].tolist()}), "
        f"peak RSS (VmHWM) of a fresh process each, address space limit {mem_gib:g} GiB"
    )
    idle, _ = run_child(
        ["--n", "8", "--variant", "idle", "--mem", limit, "--units", *unit_args], 600
    )
    print(f"    idle process (imports, model, data): {idle['peak_mib']:8.0f} MiB")
    print(f"    {'n':>4} {'variant':>12} {'seconds':>9} {'s/unit':>8} {'peak MiB':>9}  notes")
    for n in ns:
        rows, d = n * c, int(sizes[units].max())
        dense_mib = (rows * d * 8 + min(rows, d) ** 2 * 8) / 2**20
        free = None
        for variant in ("matrix-free", "exact"):
            args = ["--n", str(n), "--variant", variant, "--mem", limit, "--units", *unit_args]
            res, status = run_child(args, timeout)
            peak = res["peak_mib"]
            note = f"J (float64) + Gram alone: {dense_mib:.0f} MiB; " if variant == "exact" else ""
            if status != "ok":
                print(f"    {n:>4} {variant:>12} {'-':>9} {'-':>8} {peak:9.0f}  {note}{status}")
                continue
            if variant == "matrix-free":
                free = np.array(res["raw"])
                note = f"Lanczos steps {res['lanczos_steps']}"
            elif free is not None:
                rel = np.abs(free - np.array(res["raw"])) / np.array(res["raw"])
                note += f"max rel. diff to matrix-free {rel.max():.1e}"
            secs = res["seconds"]
            print(
                f"    {n:>4} {variant:>12} {secs:9.2f} {secs / len(units):8.2f} {peak:9.0f}  {note}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--train-samples", type=int, default=240)
    ap.add_argument("--n-samples", type=int, default=64, help="LNTK samples in (1)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--logits-n", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--logits-units", type=int, nargs="+", default=[11])
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per variant in (2)")
    ap.add_argument("--mem-limit-gib", type=float, default=12.0)
    ap.add_argument("--skip", choices=["loss", "logits"], default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--units", type=int, nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--mem", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.child:
        child(args.n, args.variant, args.units, args.mem)
        return
    if args.skip != "loss":
        loss_mode_vs_epoch(args.train_samples, args.n_samples, args.repeats)
    if args.skip != "logits":
        logits_free_vs_exact(args.logits_n, args.logits_units, args.timeout, args.mem_limit_gib)


if __name__ == "__main__":
    main()
