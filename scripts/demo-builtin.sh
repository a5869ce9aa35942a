#!/usr/bin/env bash
# See built-in mode work: PostgreSQL pools its own connections.
#
# On a fresh Debian 12 machine, as root:   bash scripts/demo-builtin.sh
#
# Installs dependencies, builds and installs the extension and its daemon
# (make install-extension), starts a throwaway PostgreSQL 15
# (max_connections = 100) in a temporary directory on a free port with
#
#     shared_preload_libraries = 'pgcarrier'
#     pgcarrier.port = <a free port>
#
# (plus pgcarrier.default_pool_size and pgcarrier.max_client_conn), runs
# `pgbench -c 1000 -j 2 -T 20 -S` on the pooler's port and shows, sampled
# during the run, how many clients the pooler had and how many server
# backends it used (pg_stat_activity), then the pooler's settings and
# backends as psql sees them. Everything it started is stopped and the
# directory removed on exit, also on failure or Ctrl-C.
#
# Knobs: DEMO_CLIENTS (1000), DEMO_DURATION (20), DEMO_POOL_SIZE (8),
# DEMO_NO_INSTALL=1 (skip deps.sh and make install-extension: use what is
# installed).
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${DEMO_CLIENTS:-1000}
DURATION=${DEMO_DURATION:-20}
POOL_SIZE=${DEMO_POOL_SIZE:-8}
PGBIN=/usr/lib/postgresql/15/bin

if [ "$(id -u)" -ne 0 ]; then
    echo "demo-builtin.sh: run as root (it installs packages and the extension, and runs PostgreSQL as user postgres)" >&2
    exit 1
fi

say() { printf '\n== %s\n' "$*"; }

if [ "${DEMO_NO_INSTALL:-0}" != 1 ]; then
    say "installing dependencies"
    bash scripts/deps.sh
    say "building and installing the extension (make install-extension)"
    make install-extension
fi
if [ ! -e "$("$PGBIN/pg_config" --pkglibdir)/pgcarrier.so" ]; then
    echo "demo-builtin.sh: the extension is not installed (make install-extension)" >&2
    exit 1
fi

# The pooler (a child of the server, which inherits this limit) and pgbench
# each hold one descriptor per client.
need=$((CLIENTS * 2 + 200))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
    ulimit -n "$need" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi

. scripts/lib.sh   # free_port, pg_throwaway_start (we are at the repository root)

TMP=$(mktemp -d /tmp/pgcarrier-demo-builtin.XXXXXX)
chmod 755 "$TMP"
chown postgres: "$TMP"
PGDATA=$TMP/data
SAMPLER_PID=
PG_STARTED=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$SAMPLER_PID" ]; then kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; fi
    if [ "$PG_STARTED" = 1 ]; then
        # The server stops its pooler with it (docs/builtin.md, "How it runs").
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
cleanup_on_exit

PGPORT=$(free_port)
CPORT=$(free_port)
say "starting a throwaway PostgreSQL 15 on port $PGPORT, its pooler on port $CPORT (socket in $TMP)"
cat <<EOF
    shared_preload_libraries = 'pgcarrier'
    pgcarrier.port = $CPORT
    pgcarrier.default_pool_size = $POOL_SIZE
    pgcarrier.max_client_conn = $((CLIENTS + 100))
EOF
pg_throwaway_start "$TMP" "$PGPORT" "listen_addresses=127.0.0.1" max_connections=100 fsync=off \
    shared_preload_libraries=pgcarrier pgcarrier.port="$CPORT" \
    pgcarrier.default_pool_size="$POOL_SIZE" pgcarrier.max_client_conn=$((CLIENTS + 100)) || exit 1

# The server's own port, over its Unix socket.
PSQL=("$PGBIN/psql" -X -q -h "$TMP" -p "$PGPORT" -U postgres)
"${PSQL[@]}" -d postgres -c 'CREATE DATABASE bench'
say "pgbench -i -s 10 (1,000,000 rows)"
"$PGBIN/pgbench" -i -s 10 -q -h "$TMP" -p "$PGPORT" -U postgres bench 2>&1 | tail -n 1

for i in $(seq 1 150); do
    [ -n "$(ss -Htln "( sport = :$CPORT )")" ] && break
    [ "$i" = 150 ] && { echo "demo-builtin.sh: the pooler does not listen on $CPORT; server log:" >&2
                        tail -n 30 "$TMP/postgres.log" >&2; exit 1; }
    sleep 0.1
done

# Backends of database "bench": only the pooler opens them (pgbench talks to
# the pooler's port only).
pgbench_sampled "$CPORT" "SELECT count(*) FROM pg_stat_activity
              WHERE datname = 'bench' AND backend_type = 'client backend'" "the pooler"

say "the pooler as psql sees it (CREATE EXTENSION pgcarrier; SELECT * FROM pgcarrier.settings)"
"${PSQL[@]}" -d bench -c 'CREATE EXTENSION pgcarrier'
"${PSQL[@]}" -d bench -P pager=off -c 'SELECT name, setting, source FROM pgcarrier.settings ORDER BY name'
say "a client on the pooler's port (psql -h 127.0.0.1 -p $CPORT -d bench), and the backends it shares"
"$PGBIN/psql" -X -h 127.0.0.1 -p "$CPORT" -U postgres -d bench -P pager=off -c \
    "SELECT backend_type, count(*) AS backends, count(*) FILTER (WHERE state = 'idle') AS idle
       FROM pg_stat_activity WHERE datname = 'bench' GROUP BY 1"
echo "the supervisor (a background worker of the server) and the daemon it runs:"
PM_PID=$(head -n 1 "$PGDATA/postmaster.pid")
SUP_PID=$(ps -o pid=,args= --ppid "$PM_PID" | awk '/pgcarrier supervisor/ { print $1 }')
ps -o pid=,args= -p "$PM_PID" | sed 's/^ */    /'
[ -n "$SUP_PID" ] && ps -o pid=,args= -p "$SUP_PID" --ppid "$SUP_PID" | sed 's/^ */      /'

if [ "$PGBENCH_RC" -ne 0 ]; then
    echo "server log (last lines):"
    tail -n 20 "$TMP/postgres.log" 2>/dev/null || true
    exit 1
fi
echo "demo done; stopping PostgreSQL (and with it the pooler), removing $TMP"
