#!/usr/bin/env bash
# See pgcarrier work: 1000 pgbench clients on 8 PostgreSQL connections.
#
# On a fresh Debian 12 machine, as root:   bash scripts/demo.sh
#
# Installs dependencies, builds ./pgcarrier, starts a throwaway PostgreSQL 15
# (max_connections = 100) in a temporary directory on a free port, puts
# pgcarrier in front of it (transaction pooling, 8 server connections), runs
# `pgbench -c 1000 -j 2 -T 20 -S` through pgcarrier and shows, sampled during
# the run, how many clients pgcarrier had and how many server backends it
# used. Everything it started is stopped and the directory removed on exit.
#
# Knobs: DEMO_CLIENTS (1000), DEMO_DURATION (20), DEMO_POOL_SIZE (8).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CLIENTS=${DEMO_CLIENTS:-1000}
DURATION=${DEMO_DURATION:-20}
POOL_SIZE=${DEMO_POOL_SIZE:-8}
PGBIN=/usr/lib/postgresql/15/bin

if [ "$(id -u)" -ne 0 ]; then
    echo "demo.sh: run as root (it installs packages and runs PostgreSQL as user postgres)" >&2
    exit 1
fi

say() { printf '\n== %s\n' "$*"; }

say "installing dependencies"
bash scripts/deps.sh

say "building pgcarrier"
make

# pgcarrier and pgbench each hold one descriptor per client.
need=$((CLIENTS * 2 + 200))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
    ulimit -n "$need" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi

. scripts/lib.sh   # free_port, stop_pid (we are at the repository root)

TMP=$(mktemp -d /tmp/pgcarrier-demo.XXXXXX)
chmod 755 "$TMP"
chown postgres: "$TMP"
PGDATA=$TMP/data
CARRIER_PID=
SAMPLER_PID=
PG_STARTED=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$SAMPLER_PID" ]; then kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; fi
    stop_pid "$CARRIER_PID"
    if [ "$PG_STARTED" = 1 ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
cleanup_on_exit

PGPORT=$(free_port)
say "starting a throwaway PostgreSQL 15 on port $PGPORT (socket in $TMP)"
pg_throwaway_start "$TMP" "$PGPORT" "listen_addresses=''" max_connections=100 fsync=off || exit 1

PSQL=("$PGBIN/psql" -X -q -h "$TMP" -p "$PGPORT" -U postgres)
"${PSQL[@]}" -d postgres -c 'CREATE DATABASE bench'
say "pgbench -i -s 10 (1,000,000 rows)"
"$PGBIN/pgbench" -i -s 10 -q -h "$TMP" -p "$PGPORT" -U postgres bench 2>&1 | tail -n 1

CPORT=$(free_port)
# The demo runs as root; pgcarrier refuses root unless told whom to become
# (it drops root's privileges once its sockets and files are open).
cat >"$TMP/pgcarrier.ini" <<EOF
[pgcarrier]
user = postgres
listen_addr = 127.0.0.1
listen_port = $CPORT
unix_socket_dir = $TMP
workers = 0
pool_mode = transaction
default_pool_size = $POOL_SIZE
max_client_conn = 2000
auth_type = trust
logfile = $TMP/pgcarrier.log
log_connections = 0
log_disconnections = 0

[databases]
bench = host=$TMP port=$PGPORT dbname=bench
EOF

say "starting ./pgcarrier on 127.0.0.1:$CPORT (transaction mode, default_pool_size = $POOL_SIZE)"
sed 's/^/    /' "$TMP/pgcarrier.ini"
"$ROOT/pgcarrier" -c "$TMP/pgcarrier.ini" >"$TMP/pgcarrier.out" 2>&1 &
CARRIER_PID=$!
for i in $(seq 1 100); do
    if ! kill -0 "$CARRIER_PID" 2>/dev/null; then
        echo "demo.sh: pgcarrier exited at startup:" >&2
        cat "$TMP/pgcarrier.out" "$TMP/pgcarrier.log" 2>/dev/null >&2 || true
        CARRIER_PID=
        exit 1
    fi
    [ -n "$(ss -Htln "( sport = :$CPORT )")" ] && break
    [ "$i" = 100 ] && { echo "demo.sh: pgcarrier does not listen on $CPORT" >&2; exit 1; }
    sleep 0.1
done

# Backends of database "bench" whose client is pgcarrier: it reaches
# PostgreSQL over the Unix socket (client_port -1); pgbench only ever talks
# to pgcarrier, over TCP.
pgbench_sampled "$CPORT" "SELECT count(*) FROM pg_stat_activity
              WHERE datname = 'bench' AND backend_type = 'client backend'
                AND client_port = -1 AND pid <> pg_backend_pid()" "pgcarrier"

if [ "$PGBENCH_RC" -ne 0 ]; then
    echo "pgcarrier log (last lines):"
    tail -n 20 "$TMP/pgcarrier.log" 2>/dev/null || true
    exit 1
fi
echo "demo done; stopping pgcarrier and PostgreSQL, removing $TMP"
