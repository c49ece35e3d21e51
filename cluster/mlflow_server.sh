#!/usr/bin/env bash
# The MLflow tracking server on the head: loopback only (reach it through SSH port forwarding),
# the basic-auth app, run metadata in PostgreSQL, artifacts proxied (--serve-artifacts) to
# $F3OCUS_ARTIFACTS (s3://..., gs://... or a folder), from ~/.f3ocus-cluster/cluster.env.
#
# PostgreSQL: a database cluster of this (non-root) user in $DIR/pg, started with pg_ctl,
# listening on 127.0.0.1 and a socket in $DIR/pg only; no system service. The server reaches it
# as the role `mlflow`, whose password is in $DIR/pg/pgpass (mode 600, libpq's PGPASSFILE), never
# on a command line. Run as root, set F3OCUS_PG_USER: PostgreSQL then runs as that user (initdb
# refuses root). Install the server once: `sudo apt-get install postgresql` (setup_node.sh does).
#
# Accounts: the admin's password is made here on the first start and never leaves the head
# ($DIR/admin.password). The head's own MLflow clients (the grid and the trial drivers, which
# the grid pins to the head) log as `f3ocus-head`, whose credentials go to ~/.mlflow/credentials
# on the head only. Worker nodes log nothing to MLflow and get no credentials. People get an
# account each (`add-user NAME`); every account reads every experiment and writes its own.
#
#   mlflow_server.sh start|restart|stop|status
#   mlflow_server.sh add-user NAME   an account of its own for one client; prints its password
#   mlflow_server.sh backup          pg_dump of the runs next to the artifacts (before `ray down`);
#                                    a new head restores it on its first start (accounts are not
#                                    carried over: add them again)
# Other layouts (and tests/test_mlflow_postgres.py) set F3OCUS_ENV_FILE, F3OCUS_MLFLOW_DIR
# ($HOME/mlflow), F3OCUS_VENV ($HOME/venv), F3OCUS_MLFLOW_PORT (5000), F3OCUS_MLFLOW_WORKERS (4),
# F3OCUS_PG_PORT (5433),
# F3OCUS_PG_BIN (the newest /usr/lib/postgresql/*/bin) or F3OCUS_PG_USER (see above).
set -euo pipefail
ENV_FILE="${F3OCUS_ENV_FILE:-$HOME/.f3ocus-cluster/cluster.env}"
if [ -f "$ENV_FILE" ]; then
    set -a
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    set +a
fi
: "${F3OCUS_ARTIFACTS:?missing: run cluster/make_env.sh before ray up}"
DIR="${F3OCUS_MLFLOW_DIR:-$HOME/mlflow}"
VENV="${F3OCUS_VENV:-$HOME/venv}"
PORT="${F3OCUS_MLFLOW_PORT:-5000}"
WORKERS="${F3OCUS_MLFLOW_WORKERS:-4}"
PG_PORT="${F3OCUS_PG_PORT:-5433}"
PG_BIN="${F3OCUS_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
PY="$VENV/bin/python"
PID="$DIR/server.pid"
PG_DIR="$DIR/pg"
PGDATA="$PG_DIR/data"
HEAD_USER="f3ocus-head"
BACKUP="${F3OCUS_ARTIFACTS%/}/_backend/mlflow.pgdump"
[ -x "$PG_BIN/initdb" ] || {
    echo "PostgreSQL's server is not installed: sudo apt-get install postgresql" >&2; exit 1; }
umask 077
mkdir -p "$PG_DIR"
export PGHOST="$PG_DIR" PGPORT="$PG_PORT" PGPASSFILE="$PG_DIR/pgpass"
if [ -n "${F3OCUS_PG_USER:-}" ]; then  # root: PostgreSQL's files and processes are that user's
    chmod 711 "$DIR"
    chown "$F3OCUS_PG_USER" "$PG_DIR"
fi

pg() {  # run a PostgreSQL command as its user
    if [ -n "${F3OCUS_PG_USER:-}" ]; then runuser -u "$F3OCUS_PG_USER" -- "$@"; else "$@"; fi
}

rand() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; echo; }

copy() {  # copy SRC DST between the head's disk and s3:// or gs://
    case "$1$2" in
        *s3://*) aws s3 cp --only-show-errors "$1" "$2" ;;
        *gs://*) gcloud storage cp "$1" "$2" ;;
        *) mkdir -p "$(dirname "$2")" && cp "$1" "$2" ;;
    esac
}

pg_running() { pg "$PG_BIN/pg_ctl" -D "$PGDATA" status > /dev/null 2>&1; }

pg_start() {
    local fresh=0
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        rand | pg tee "$PG_DIR/postgres.password" > /dev/null
        pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --pwfile="$PG_DIR/postgres.password" \
            --auth=scram-sha-256 -E UTF8 > "$DIR/initdb.log"
        fresh=1
    fi
    pg_running || pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PG_DIR/postgres.log" -w -t 60 -o \
        "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_DIR" \
        start > /dev/null || { tail -20 "$PG_DIR/postgres.log" >&2; exit 1; }
    if [ "$fresh" = 1 ]; then
        local pw
        pw="$(rand)"
        printf '*:*:*:mlflow:%s\n' "$pw" | pg tee "$PGPASSFILE" > /dev/null
        # the passwords go through stdin and files, never a command line (ps shows those)
        PGPASSWORD="$(cat "$PG_DIR/postgres.password")" pg "$PG_BIN/psql" -q -v ON_ERROR_STOP=1 \
            -U postgres -d postgres <<SQL
CREATE ROLE mlflow LOGIN PASSWORD '$pw';
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE mlflow_auth OWNER mlflow;
SQL
        # a new head restores the runs of an earlier cluster's backup, if there is one
        if copy "$BACKUP" "$DIR/restore.pgdump" 2>/dev/null; then
            pg "$PG_BIN/pg_restore" -U mlflow -d mlflow --no-owner < "$DIR/restore.pgdump"
            rm -f "$DIR/restore.pgdump"
        fi
    fi
}

healthy() { curl -fsS -m 2 "http://127.0.0.1:$PORT/health" > /dev/null 2>&1; }

account() {  # account NAME: a fresh password for NAME (created if new), printed on stdout
    NEW_PASSWORD="$(rand)" ADMIN_PASSWORD="$(cat "$DIR/admin.password")" "$PY" - "$PORT" "$1" <<'PY'
import base64, json, os, sys, urllib.error, urllib.request

port, name = sys.argv[1:]
pw = os.environ["NEW_PASSWORD"]
token = base64.b64encode(f"admin:{os.environ['ADMIN_PASSWORD']}".encode()).decode()


def call(method, path):
    body = json.dumps({"username": name, "password": pw}).encode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow/users/{path}"
    urllib.request.urlopen(urllib.request.Request(url, body, headers, method=method), timeout=30)


try:
    call("POST", "create")
except urllib.error.HTTPError as e:
    if e.code not in (400, 409):  # an existing account: set its password
        raise
    call("PATCH", "update-password")
print(pw)
PY
}

start() {
    pg_start
    [ -f "$DIR/admin.password" ] || rand > "$DIR/admin.password"
    [ -f "$DIR/flask.secret" ] || rand > "$DIR/flask.secret"
    cat > "$DIR/basic_auth.ini" <<INI
[mlflow]
default_permission = READ
database_uri = postgresql+psycopg2://mlflow@127.0.0.1:$PG_PORT/mlflow_auth
admin_username = admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = 60
INI
    # a session of its own (setsid): `stop` ends the server and every worker it started;
    # no server-side job runner (GenAI evaluation jobs, unused here: 7 more processes)
    MLFLOW_AUTH_CONFIG_PATH="$DIR/basic_auth.ini" \
    MLFLOW_AUTH_ADMIN_PASSWORD="$(cat "$DIR/admin.password")" \
    MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$DIR/flask.secret")" \
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    setsid nohup "$VENV/bin/mlflow" server --app-name basic-auth --host 127.0.0.1 --port "$PORT" \
        --backend-store-uri "postgresql+psycopg2://mlflow@127.0.0.1:$PG_PORT/mlflow" \
        --serve-artifacts --artifacts-destination "$F3OCUS_ARTIFACTS" --workers "$WORKERS" \
        > "$DIR/server.log" 2>&1 < /dev/null &
    echo $! > "$PID"
    for _ in $(seq 120); do
        if healthy; then
            # the head's own clients: an account of their own, not the admin's
            mkdir -p "$HOME/.mlflow"
            printf '[mlflow]\nmlflow_tracking_username = %s\nmlflow_tracking_password = %s\n' \
                "$HEAD_USER" "$(account "$HEAD_USER")" > "$HOME/.mlflow/credentials"
            echo "MLflow on 127.0.0.1:$PORT (PostgreSQL on 127.0.0.1:$PG_PORT)"
            return
        fi
        kill -0 "$(cat "$PID")" 2>/dev/null || break
        sleep 1
    done
    echo "MLflow did not start; see $DIR/server.log" >&2
    tail -20 "$DIR/server.log" >&2
    exit 1
}

stop() {  # the server's session (it leads it: setsid), then PostgreSQL
    if [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null; then
        local pgid
        pgid="$(cat "$PID")"
        kill -TERM -- "-$pgid" 2>/dev/null || true
        for _ in $(seq 10); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
    rm -f "$PID"
    if pg_running; then pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop > /dev/null; fi
}

running() { [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null && pg_running; }

case "${1:-start}" in
    start) running || { stop; start; } ;;
    restart) stop; start ;;
    stop) stop ;;
    status) running && healthy && echo "MLflow on 127.0.0.1:$PORT" ;;
    add-user)
        name="${2:?usage: $0 add-user NAME}"
        running || { echo "the server is not running" >&2; exit 1; }
        echo "MLflow account $name, password (shown once): $(account "$name")" ;;
    backup)
        pg "$PG_BIN/pg_dump" -U mlflow -d mlflow -Fc > "$DIR/backup.pgdump"
        copy "$DIR/backup.pgdump" "$BACKUP" && echo "backed up to $BACKUP" ;;
    *) echo "usage: $0 start|restart|stop|status|add-user NAME|backup" >&2; exit 2 ;;
esac
