#!/usr/bin/env bash
# Node set-up for the cluster YAMLs (run by `ray up` on the head and on every worker node, from
# the project copy that file_mounts put in ~/f3ocus-ray). Idempotent: `ray up` runs it again on
# every update.
#   F3OCUS_RAY_VERSION  the Ray version to install: must equal the laptop's (`ray --version`)
#   F3OCUS_TORCH_INDEX  optional pip index for torch (e.g. https://download.pytorch.org/whl/cu128);
#                       unset: PyPI, whose Linux x86_64 torch wheels are the CUDA build
set -euo pipefail
: "${F3OCUS_RAY_VERSION:?set F3OCUS_RAY_VERSION (the cluster YAML does)}"
PROJECT="$HOME/f3ocus-ray"
VENV="$HOME/venv"

# Python 3.11 in a venv of its own (the images ship an older system Python), through uv
if ! command -v uv >/dev/null 2>&1 && [ ! -x "$HOME/.local/bin/uv" ]; then
    curl -LsSf https://astral.sh/uv/install.sh | sh
fi
UV="$(command -v uv || echo "$HOME/.local/bin/uv")"
[ -x "$VENV/bin/python" ] || "$UV" venv --python 3.11 "$VENV"
grep -q 'f3ocus-ray venv' "$HOME/.bashrc" || \
    echo 'export PATH="$HOME/venv/bin:$PATH"  # f3ocus-ray venv' >> "$HOME/.bashrc"

# torch first (the CUDA build), then Ray at the laptop's version, then the project
if [ -n "${F3OCUS_TORCH_INDEX:-}" ]; then
    "$UV" pip install --python "$VENV/bin/python" torch --index-url "$F3OCUS_TORCH_INDEX"
else
    "$UV" pip install --python "$VENV/bin/python" torch
fi
"$UV" pip install --python "$VENV/bin/python" "ray[default,tune,train]==${F3OCUS_RAY_VERSION}" \
    "boto3>=1.26" "google-api-python-client>=2" "pyarrow"
"$UV" pip install --python "$VENV/bin/python" -e "$PROJECT"

# MLflow client credentials for the basic-auth server on the head (~/.mlflow/credentials is read
# by every MLflow client on this node), from the env file `ray up` copied here (never in git)
ENV_FILE="$HOME/.f3ocus-cluster/cluster.env"
if [ -f "$ENV_FILE" ]; then
    # shellcheck disable=SC1090
    set -a; . "$ENV_FILE"; set +a
    mkdir -p "$HOME/.mlflow"
    umask 077
    printf '[mlflow]\nmlflow_tracking_username = %s\nmlflow_tracking_password = %s\n' \
        "$MLFLOW_TRACKING_USERNAME" "$MLFLOW_TRACKING_PASSWORD" > "$HOME/.mlflow/credentials"
    chmod 600 "$HOME/.mlflow/credentials" "$ENV_FILE"
fi

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
