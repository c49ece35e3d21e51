#!/usr/bin/env bash
# What tests/test_mlflow_postgres.py needs from the system, installed if missing (idempotent;
# `make test` runs it): PostgreSQL's server binaries (Debian's `postgresql` package, without its
# system-wide cluster: the test starts a cluster of its own with initdb/pg_ctl), and, when run
# as root, the non-root user the test runs PostgreSQL as (initdb refuses to run as root).
set -euo pipefail
PG_USER="${F3OCUS_PG_USER:-f3ocus-pg}"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
if ! ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1; then
    # no "main" cluster and no service: only the binaries are wanted
    $SUDO mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" | \
        $SUDO tee /etc/postgresql-common/createcluster.d/f3ocus-no-main.conf > /dev/null
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql
fi
if [ "$(id -u)" = 0 ] && ! id "$PG_USER" > /dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
fi
