#!/usr/bin/env bash
# One GPU, under 5 minutes: a ViLT-B-sized model (built from config, random weights) at 384 px
# in bf16 autocast on 2 workers x 0.5 GPU (bench/gpu_check.yaml), 3 rounds with LNTK loss-mode
# scoring every round. Prints training samples/s, the peak GPU memory of each worker process
# and LNTK seconds per client, from round 2 on (round 1 warms up: CUDA, data to the workers).
#
#   bench/gpu_check.sh [--family tiny-vilt|tiny-blip|tiny-albef|tiny-blip2|tiny-llava]
#                      [--rounds N] [--keep]
#
# Families: only those built from config (no checkpoint needed), at the YAML's sizes.
# Environment: F3OCUS (default .venv/bin/f3ocus), PYTHON (default .venv/bin/python).
# The run folder goes to a temporary folder, removed at the end unless --keep.
set -euo pipefail
cd "$(dirname "$0")/.."

family=tiny-vilt
rounds=3
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --family) family="${2:?--family needs a name}"; shift 2 ;;
    --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$family" in
  tiny-vilt|tiny-blip|tiny-albef|tiny-blip2|tiny-llava) ;;
  *) echo "gpu_check: --family $family is not built from config (tiny-vilt, tiny-blip," \
       "tiny-albef, tiny-blip2, tiny-llava)" >&2; exit 2 ;;
esac
case "$rounds" in
  ''|*[!0-9]*) echo "gpu_check: --rounds must be a whole number >= 2" >&2; exit 2 ;;
esac
if [ "$rounds" -lt 2 ]; then echo "gpu_check: --rounds must be >= 2" >&2; exit 2; fi
F3OCUS="${F3OCUS:-.venv/bin/f3ocus}"
PYTHON="${PYTHON:-.venv/bin/python}"
if ! command -v nvidia-smi >/dev/null; then
  echo "gpu_check: no nvidia-smi: this check needs an NVIDIA GPU" >&2
  exit 2
fi
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"

out="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
sampler=""
cleanup() {
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi
  if [ "$keep" = 0 ]; then rm -rf "$out"; else echo "kept: $out"; fi
}
trap cleanup EXIT

# GPU memory every 0.5 s: per process (pid, MiB) where the driver lists them, and the whole GPU
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1 > "$out/idle.txt"
(
  while :; do
    nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits \
      >> "$out/apps.csv" 2>/dev/null || true
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1 >> "$out/gpu.csv"
    sleep 0.5
  done
) &
sampler=$!

start=$(date +%s)
timeout 290 "$F3OCUS" run bench/gpu_check.yaml --set "model.name=$family" \
  --set "federation.rounds=$rounds" --set "output_dir=$out/runs" 2>&1 | tee "$out/run.log"
kill "$sampler" 2>/dev/null || true
sampler=""
run_dir="$(sed -n 's/^run folder: //p' "$out/run.log" | tail -1)"
if [ -z "$run_dir" ] || [ ! -f "$run_dir/summary.json" ]; then
  echo "gpu_check: the run did not finish (see above)" >&2
  exit 1
fi

"$PYTHON" - "$run_dir" "$out" "$family" "$(( $(date +%s) - start ))" <<'PY'
import csv
import json
import statistics
import sys
from pathlib import Path

import yaml

run_dir, out, family, wall = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
summary = json.loads((run_dir / "summary.json").read_text())
rounds = summary["rounds"][1:]  # round 1 warms up
clients = len(summary["client_score"])
tr, eng = cfg["training"], cfg["engine"]
# every client's train split holds >= local_steps x batch_size samples (see the YAML)
samples = clients * tr["local_steps"] * tr["batch_size"]
train_s = statistics.median(r["seconds_train"] for r in rounds)
score_s = statistics.median(r["seconds_score"] for r in rounds)
m = cfg["model"]
print(
    f"\n== gpu_check: {family}, hidden {m['hidden_size']}, {m['num_layers']} blocks, "
    f"{cfg['data']['image_size']} px, {tr['precision']}, {eng['num_workers']} workers x "
    f"{eng['gpus_per_worker']} GPU, {clients} clients, {wall} s in all"
)
print(f"training: {samples / train_s:.1f} samples/s ({samples} samples in {train_s:.2f} s, median)")
print(
    f"LNTK loss mode, n = {cfg['scoring']['n_samples']}: "
    f"{score_s * eng['num_workers'] / clients:.2f} s per client "
    f"(round's scoring {score_s:.2f} s over {eng['num_workers']} workers in parallel)"
)
peaks: dict[str, int] = {}
apps = out / "apps.csv"
if apps.exists():
    for row in csv.reader(apps.read_text().splitlines()):
        if len(row) == 2 and row[1].strip().isdigit():
            pid = row[0].strip()
            peaks[pid] = max(peaks.get(pid, 0), int(row[1]))
if peaks:
    for pid, mib in sorted(peaks.items(), key=lambda kv: -kv[1]):
        print(f"peak GPU memory, process {pid}: {mib} MiB")
else:
    idle = int((out / "idle.txt").read_text().split()[0])
    used = max(int(x) for x in (out / "gpu.csv").read_text().split())
    print(
        f"peak GPU memory: {used - idle} MiB for both workers together (the driver lists no "
        f"processes here, e.g. inside a container): about {(used - idle) / 2:.0f} MiB per worker"
    )
PY
