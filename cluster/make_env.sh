#!/usr/bin/env bash
# Write ~/.f3ocus-cluster/ (mode 700, outside the repository); `ray up` copies that folder to
# every node (file_mounts). Nothing secret is ever committed, and no MLflow password travels:
# the head makes the MLflow admin's password itself and gives its own clients an account of
# their own (cluster/mlflow_server.sh; people get one with `mlflow_server.sh add-user NAME`).
#   cluster.env       F3OCUS_ARTIFACTS, where the MLflow server puts artifacts (not a secret)
#   ray_auth_token    the Ray cluster's token (local.yaml turns token authentication on): made
#                     once, kept; every node needs it to join, and your laptop to submit jobs
#                     (export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=~/.f3ocus-cluster/ray_auth_token)
#   export F3OCUS_ARTIFACTS=s3://BUCKET/mlflow-artifacts   # or gs://BUCKET/..., or a folder
#   bash cluster/make_env.sh
set -euo pipefail
: "${F3OCUS_ARTIFACTS:?export F3OCUS_ARTIFACTS (s3://BUCKET/path, gs://BUCKET/path or a folder)}"
DIR="$HOME/.f3ocus-cluster"
mkdir -p "$DIR"
chmod 700 "$DIR"
umask 077
printf 'F3OCUS_ARTIFACTS=%q\n' "$F3OCUS_ARTIFACTS" > "$DIR/cluster.env"
if [ ! -s "$DIR/ray_auth_token" ]; then  # 256 random bits, as `ray get-auth-token --generate`
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$DIR/ray_auth_token"
fi
chmod 600 "$DIR/cluster.env" "$DIR/ray_auth_token"
echo "wrote $DIR/cluster.env and $DIR/ray_auth_token"
