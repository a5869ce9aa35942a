#!/usr/bin/env bash
# Memory per idle client of the standalone daemon (and of PgBouncer, for
# comparison): N clients log in, run SELECT 1 and stay idle; the pooler's
# VmRSS before and after, divided by N.
#
#   PostgreSQL 15 on a free port (trust, max_connections = 50); the poolers
#   in transaction mode, pool size 4, logging off, reaching it over its Unix
#   socket; the clients (bench/idle_clients.py) over TCP, from 127.0.0.1,
#   127.0.0.2, ... (IDLE_PER_PROC clients per process and source address, so
#   that neither one process's fd limit nor one address's ephemeral ports
#   run out). Each count runs on a freshly started pooler.
#
# Usage (root):  bash bench/idle_memory.sh
#   IDLE_COUNTS="5000 50000"   client counts
#   IDLE_TARGETS=pgcarrier,pgbouncer[,pgbouncer125]
#       pgcarrier: ./build/release/pgcarrier (IDLE_CARRIER_BIN to override)
#       pgbouncer: /usr/sbin/pgbouncer; pgbouncer125: the binary that
#       BENCH_PGBOUNCER125 names (as for bench/run.sh; in the default
#       targets only when it is set)
#   IDLE_WORKERS=0             pgcarrier workers (0: one per core)
#   IDLE_PER_PROC=10000        clients per idle_clients.py process
#   IDLE_CONCURRENCY=100       logins in progress at once, per process
#
# Prints one line per target and count: "target N clients: before kB ->
# after kB, B bytes/client". A count that needs more file descriptors than
# `ulimit -Hn` allows (the pooler holds N + a few) is reported as skipped.
# Everything started is stopped on exit (also on failure or ^C).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

COUNTS=${IDLE_COUNTS:-5000 50000}
PGBOUNCER125=${BENCH_PGBOUNCER125:-}
TARGETS=${IDLE_TARGETS:-pgcarrier,pgbouncer${PGBOUNCER125:+,pgbouncer125}}
WORKERS=${IDLE_WORKERS:-0}
PER_PROC=${IDLE_PER_PROC:-10000}
CONCURRENCY=${IDLE_CONCURRENCY:-100}
CARRIER_BIN=${IDLE_CARRIER_BIN:-$ROOT/build/release/pgcarrier}
PGBIN=/usr/lib/postgresql/15/bin
PY=/usr/bin/python3
POOL_SIZE=4

[ "$(id -u)" -eq 0 ] || { echo "idle_memory: run as root (the servers run as user postgres)" >&2; exit 1; }
log() { printf '[idle %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

max=0
for n in $COUNTS; do [ "$n" -gt "$max" ] && max=$n; done
# as many descriptors as allowed: the poolers inherit this limit
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)
[ "$FD_LIMIT" = unlimited ] && FD_LIMIT=$((1 << 30))

. scripts/lib.sh   # free_port, stop_pid, pg_throwaway_start

TMP=$(mktemp -d /tmp/pgcarrier-idle.XXXXXX)
chmod 755 "$TMP"
chown postgres: "$TMP"
PG_STARTED=0
POOLER_PID=
CLIENT_PIDS=()
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${CLIENT_PIDS[@]}"; do stop_pid "$p"; done
    stop_pid "$POOLER_PID"
    if [ "$PG_STARTED" = 1 ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$TMP/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    [ "$rc" -ne 0 ] && for f in "$TMP"/*.log "$TMP"/*.out; do
        [ -f "$f" ] && { echo "--- $f" >&2; tail -n 10 "$f" >&2; }
    done
    rm -rf "$TMP"
    exit "$rc"
}
cleanup_on_exit

PGPORT=$(free_port)
log "PostgreSQL 15 on $TMP/.s.PGSQL.$PGPORT"
pg_throwaway_start "$TMP" "$PGPORT" "listen_addresses=''" max_connections=50 fsync=off || exit 1
MAX_CLIENTS=$((max + 100))

cat >"$TMP/userlist.txt" <<EOF
"postgres" ""
EOF
bouncer_ini() { # name port
    cat >"$TMP/$1.ini" <<EOF
[databases]
postgres = host=$TMP port=$PGPORT dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir =
auth_type = trust
auth_file = $TMP/userlist.txt
pool_mode = transaction
default_pool_size = $POOL_SIZE
max_client_conn = $MAX_CLIENTS
logfile = $TMP/$1.log
log_connections = 0
log_disconnections = 0
log_stats = 0
EOF
}
carrier_ini() { # port
    { bench_carrier_settings pgcarrier "$1" "$TMP"; cat <<EOF

[databases]
postgres = host=$TMP port=$PGPORT dbname=postgres
EOF
    } >"$TMP/pgcarrier.ini"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Start target $1 on port $2 as user postgres; sets POOLER_PID.
start_pooler() {
    local t=$1 port=$2
    case $t in
        pgcarrier) carrier_ini "$port"; set -- "$CARRIER_BIN" -c "$TMP/pgcarrier.ini" ;;
        pgbouncer) bouncer_ini "$t" "$port"; set -- /usr/sbin/pgbouncer "$TMP/$t.ini" ;;
        pgbouncer125)
            [ -n "$PGBOUNCER125" ] || { echo "idle_memory: pgbouncer125 needs BENCH_PGBOUNCER125" >&2; return 1; }
            bouncer_ini "$t" "$port"; set -- "$PGBOUNCER125" "$TMP/$t.ini" ;;
        *) echo "idle_memory: unknown target '$t'" >&2; return 1 ;;
    esac
    chown postgres: "$TMP"/*.ini "$TMP/userlist.txt"
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$@" >>"$TMP/$t.out" 2>&1 &
    POOLER_PID=$!
    for _ in $(seq 1 100); do
        kill -0 "$POOLER_PID" 2>/dev/null || { log "$t exited at startup"; POOLER_PID=; return 1; }
        if "$PGBIN/psql" -X -q -At -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    log "$t does not answer on port $port"
    return 1
}

measure() { # target n
    local t=$1 n=$2 port before after left i k count ok failed line
    if [ "$FD_LIMIT" -lt $((n + 100)) ]; then
        echo "$t $n clients: skipped (ulimit -Hn is $FD_LIMIT: a pooler with $n clients needs more descriptors)"
        return 0
    fi
    port=$(free_port)
    start_pooler "$t" "$port" || { echo "$t $n clients: failed to start"; return 0; }
    sleep 1
    before=$(rss_kb "$POOLER_PID")
    CLIENT_PIDS=()
    left=$n; i=0
    while [ "$left" -gt 0 ]; do
        count=$(( left < PER_PROC ? left : PER_PROC ))
        k=$((i + 1))
        "$PY" "$ROOT/bench/idle_clients.py" --host 127.0.0.1 --port "$port" --source "127.0.0.$k" \
            --user postgres --dbname postgres -n "$count" --concurrency "$CONCURRENCY" --ready-file "$TMP/ready.$i" --hold 900 \
            >"$TMP/clients.$i.out" 2>&1 &
        CLIENT_PIDS+=($!)
        left=$((left - count)); i=$((i + 1))
    done
    ok=0; failed=0
    for ((k = 0; k < i; k++)); do
        for _ in $(seq 1 1500); do     # at most 5 minutes each
            [ -f "$TMP/ready.$k" ] && break
            kill -0 "${CLIENT_PIDS[$k]}" 2>/dev/null || break
            sleep 0.2
        done
        line=$(cat "$TMP/ready.$k" 2>/dev/null || echo "ok=0 failed=?")
        ok=$((ok + $(sed -n 's/^ok=\([0-9]*\).*/\1/p' <<<"$line")))
    done
    sleep 3
    after=$(rss_kb "$POOLER_PID" 2>/dev/null || echo 0)
    if [ "$ok" = "$n" ] && [ "$after" -gt 0 ]; then
        echo "$t $n clients: VmRSS $before kB -> $after kB, $(( (after - before) * 1024 / n )) bytes/client"
    else
        echo "$t $n clients: FAILED (ok=$ok of $n; VmRSS $before -> $after kB): $(cat "$TMP"/clients.*.out | grep -m3 idle_clients | tr '\n' ' ')"
    fi
    for k in "${CLIENT_PIDS[@]}"; do stop_pid "$k"; done
    CLIENT_PIDS=()
    rm -f "$TMP"/ready.*
    stop_pid "$POOLER_PID"; POOLER_PID=
}

for t in ${TARGETS//,/ }; do
    for n in $COUNTS; do
        log "$t: $n idle clients"
        measure "$t" "$n"
    done
done
