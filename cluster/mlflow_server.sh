#!/usr/bin/env bash
# The MLflow tracking server on the head: 127.0.0.1:5000 only (reach it through SSH port
# forwarding), basic-auth app, credentials from ~/.f3ocus-cluster/cluster.env (copied by
# `ray up` from your laptop; never committed), metadata in SQLite on the head, artifacts proxied
# to $F3OCUS_ARTIFACTS (s3://... or gs://...).
#   mlflow_server.sh start|restart   (the YAMLs' head_start_ray_commands run `restart`)
#   mlflow_server.sh stop
#   mlflow_server.sh backup          copy the metadata DB next to the artifacts (before `ray down`)
set -euo pipefail
ENV_FILE="$HOME/.f3ocus-cluster/cluster.env"
[ -f "$ENV_FILE" ] || { echo "missing $ENV_FILE: run cluster/make_env.sh before ray up" >&2; exit 1; }
set -a
# shellcheck disable=SC1090
. "$ENV_FILE"
set +a
: "${MLFLOW_TRACKING_USERNAME:?}" "${MLFLOW_TRACKING_PASSWORD:?}"
: "${MLFLOW_FLASK_SERVER_SECRET_KEY:?}" "${F3OCUS_ARTIFACTS:?}"
DIR="$HOME/mlflow"
PID="$DIR/server.pid"
BACKUP="${F3OCUS_ARTIFACTS%/}/_backend/mlflow.db"
mkdir -p "$DIR"
export PATH="$HOME/venv/bin:$PATH"

copy() {  # copy SRC DST between the head's disk and s3:// or gs://
    case "$1$2" in
        *s3://*) aws s3 cp --only-show-errors "$1" "$2" ;;
        *gs://*) gcloud storage cp "$1" "$2" ;;
        *) cp "$1" "$2" ;;
    esac
}

stop() {
    if [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null; then
        kill "$(cat "$PID")"
        sleep 2
    fi
    rm -f "$PID"
}

start() {
    # a new head restores the metadata of an earlier cluster's backup, if there is one
    [ -f "$DIR/mlflow.db" ] || copy "$BACKUP" "$DIR/mlflow.db" 2>/dev/null || true
    umask 077
    cat > "$DIR/basic_auth.ini" <<INI
[mlflow]
default_permission = NO_PERMISSIONS
database_uri = sqlite:///$DIR/auth.db
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
    # the admin is created from these on the first start (MLflow reads them from the env)
    MLFLOW_AUTH_CONFIG_PATH="$DIR/basic_auth.ini" \
    MLFLOW_AUTH_ADMIN_USERNAME="$MLFLOW_TRACKING_USERNAME" \
    MLFLOW_AUTH_ADMIN_PASSWORD="$MLFLOW_TRACKING_PASSWORD" \
    nohup mlflow server --app-name basic-auth --host 127.0.0.1 --port 5000 \
        --backend-store-uri "sqlite:///$DIR/mlflow.db" \
        --artifacts-destination "$F3OCUS_ARTIFACTS" --workers 4 \
        > "$DIR/server.log" 2>&1 < /dev/null &
    echo $! > "$PID"
    for _ in $(seq 60); do
        curl -fsS http://127.0.0.1:5000/health >/dev/null 2>&1 && { echo "MLflow on 127.0.0.1:5000"; return; }
        sleep 1
    done
    echo "MLflow did not start; see $DIR/server.log" >&2
    tail -20 "$DIR/server.log" >&2
    exit 1
}

case "${1:-start}" in
    start) [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null || start ;;
    restart) stop; start ;;
    stop) stop ;;
    backup) copy "$DIR/mlflow.db" "$BACKUP" && echo "backed up to $BACKUP" ;;
    *) echo "usage: $0 start|restart|stop|backup" >&2; exit 2 ;;
esac
