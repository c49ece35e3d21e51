#!/usr/bin/env bash
# Write ~/.f3ocus-cluster/cluster.env (mode 600, outside the repository) from your environment;
# `ray up` copies that folder to every node (file_mounts). Nothing secret is ever committed.
#   export MLFLOW_TRACKING_USERNAME=... MLFLOW_TRACKING_PASSWORD=...   # the MLflow admin
#   export F3OCUS_ARTIFACTS=s3://BUCKET/mlflow-artifacts              # or gs://BUCKET/...
#   bash cluster/make_env.sh
set -euo pipefail
: "${MLFLOW_TRACKING_USERNAME:?export MLFLOW_TRACKING_USERNAME (the MLflow admin user)}"
: "${MLFLOW_TRACKING_PASSWORD:?export MLFLOW_TRACKING_PASSWORD (the MLflow admin password)}"
: "${F3OCUS_ARTIFACTS:?export F3OCUS_ARTIFACTS (s3://BUCKET/path or gs://BUCKET/path)}"
SECRET="${MLFLOW_FLASK_SERVER_SECRET_KEY:-$(python3 -c 'import secrets; print(secrets.token_hex(32))')}"
DIR="$HOME/.f3ocus-cluster"
mkdir -p "$DIR"
chmod 700 "$DIR"
umask 077
{
    printf 'MLFLOW_TRACKING_USERNAME=%q\n' "$MLFLOW_TRACKING_USERNAME"
    printf 'MLFLOW_TRACKING_PASSWORD=%q\n' "$MLFLOW_TRACKING_PASSWORD"
    printf 'MLFLOW_FLASK_SERVER_SECRET_KEY=%q\n' "$SECRET"
    printf 'F3OCUS_ARTIFACTS=%q\n' "$F3OCUS_ARTIFACTS"
} > "$DIR/cluster.env"
chmod 600 "$DIR/cluster.env"
echo "wrote $DIR/cluster.env"
