#!/usr/bin/env bash
# Node set-up for the cluster YAMLs (run by `ray up` on the head and on every worker node, from
# the project copy that file_mounts put in ~/f3ocus-ray). Idempotent: `ray up` runs it again on
# every update.
#   F3OCUS_RAY_VERSION  the Ray version to install: must equal the laptop's (`ray --version`)
#   F3OCUS_TORCH_INDEX  optional pip index for torch (e.g. https://download.pytorch.org/whl/cu128);
#                       unset: PyPI, whose Linux x86_64 torch wheels are the CUDA build
# Every package at a pinned version (cluster/constraints-node.txt, uv below), from the Debian and
# PyPI indexes through their own clients: no `curl | sh`. No credentials are written here: the
# head's MLflow server gives the head's clients an account (mlflow_server.sh), and worker nodes
# log nothing to MLflow.
set -euo pipefail
: "${F3OCUS_RAY_VERSION:?set F3OCUS_RAY_VERSION (the cluster YAML does)}"
PROJECT="$HOME/f3ocus-ray"
VENV="$HOME/venv"
UV_VERSION="0.13.9"
PINS="$PROJECT/cluster/constraints-node.txt"

# the head's tracking server keeps its runs in PostgreSQL (the Debian package's binaries; the
# server runs a database cluster of its own, no system service)
if ! ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || ! command -v pip3 > /dev/null; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql python3-pip
fi
# Python 3.11 in a venv of its own (the images ship an older system Python), through uv, a
# pinned wheel from PyPI (uv checks the interpreter it downloads against its own checksums)
UV="$HOME/.local/bin/uv"
if [ "$("$UV" --version 2>/dev/null | awk '{print $2}')" != "$UV_VERSION" ]; then
    python3 -m pip install --user --quiet "uv==$UV_VERSION"
fi
[ -x "$VENV/bin/python" ] || "$UV" venv --python 3.11 "$VENV"
grep -q 'f3ocus-ray venv' "$HOME/.bashrc" || \
    echo 'export PATH="$HOME/venv/bin:$PATH"  # f3ocus-ray venv' >> "$HOME/.bashrc"

# torch first (the CUDA build), then Ray at the laptop's version, then the project
PIP=("$UV" pip install --python "$VENV/bin/python" -c "$PINS")
if [ -n "${F3OCUS_TORCH_INDEX:-}" ]; then
    "${PIP[@]}" torch --index-url "$F3OCUS_TORCH_INDEX"
else
    "${PIP[@]}" torch
fi
"${PIP[@]}" "ray[default,tune,train]==${F3OCUS_RAY_VERSION}" boto3 google-api-python-client \
    pyarrow psycopg2-binary "mlflow[auth]"
"${PIP[@]}" -e "$PROJECT"

# The smoke data set at the same path on every node (ClientWorkers read data from local paths):
# deterministic, so every node generates the same files. Real data: a shared file system or a
# copy at the same path on every node (cluster/README.md).
SMOKE="$HOME/f3ocus-data/smoke"
if [ ! -f "$SMOKE/annotations.jsonl" ]; then
    rm -rf "$SMOKE"
    "$VENV/bin/f3ocus" data synth --out "$SMOKE" --scale 0.001 --min-per-client 30 --image-size 32
fi

# GPU nodes: fail the set-up now if torch cannot see the GPUs (driver / CUDA build mismatch)
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "$VENV/bin/python" -c "import torch; assert torch.cuda.is_available(), 'torch sees no GPU'"
fi
