#!/usr/bin/env bash
# Benchmark direct PostgreSQL, PgBouncer and pgcarrier in one run on this
# machine, following shared BENCHMARKS.md's method:
#
#   PostgreSQL 15, pgbench -i -s 10, max_connections = 1200,
#   shared_buffers = 1GB, fsync = off, synchronous_commit = off.
#   Poolers reach it over its Unix socket, pgbench reaches them (and
#   PostgreSQL, for "direct") over TCP 127.0.0.1. Poolers in transaction
#   mode, pool size 8, logging off; pgcarrier with workers = 0 (one per core).
#
#   pgbench -h 127.0.0.1 -p PORT -n -j 2 -T 20 -c N -S [-M ...] [-C] postgres
#   Workloads: S8, S100, S1000 (-S at 8, 100 and 1000 clients), P100, P1000
#   (-S -M prepared at 100 and 1000), E100, E1000 (-S -M extended at 100 and
#   1000: Parse/Bind/Execute of an unnamed statement per query, what most
#   drivers send), C8 (-S -C at 8); -T 45 at 1000 clients (pgbench's clock
#   includes connecting). A run that exits non-zero or logs any pgbench
#   "error:" counts as failed.
#   TLS workloads: T8C (-S -C at 8: a TLS handshake and a login per
#   transaction) and T100 (-S at 100, connections kept), pgbench with
#   PGSSLMODE=require (encryption, no certificate check). Every target gets
#   the same certificate and key, made for the run with the openssl CLI
#   (BENCH_TLS_KEY: ECDSA P-256 by default, or RSA 2048), and the same
#   authentication as in the other workloads (trust), so that only TLS
#   differs. The TLS workloads run after the plain ones, each target
#   restarted with TLS on: PgBouncer and pgcarrier with client_tls_sslmode =
#   require, client_tls_cert_file and client_tls_key_file (the plain
#   workloads keep a pooler without TLS, as before, so their SSLRequest is
#   still answered "N"); direct PostgreSQL with ssl = on (ALTER SYSTEM and a
#   reload; off again afterwards). The negotiated protocol, cipher and key
#   exchange of each target (openssl s_client -starttls postgres) go into
#   the report, with the session tickets it sends per handshake (issuing
#   them is part of a full handshake's cost; libpq never uses them).
#   T8C's pooler CPU per transaction is its CPU per TLS connection (one
#   transaction per connection), as C8's is per plain connection.
#   Pooler CPU per transaction from /proc/PID/stat (utime + stime, all
#   threads) before/after. Memory per idle client: 5000 clients connect, run
#   SELECT 1 and stay idle; pooler VmRSS before/after.
#   PostgreSQL's CPU per transaction, for every target: utime + stime of the
#   postmaster's children before/after (all backends and auxiliary
#   processes, read from /proc), plus the postmaster's own utime + stime +
#   cutime + cstime, which hold the backends that exit during the run (-C)
#   once it has reaped them (bench/measure.py pg-cpu).
#   Latency p50 and p99 per run from pgbench's per-transaction log (--log,
#   one file per thread, in the run's directory): bench/measure.py latency
#   takes the percentiles over the logged transactions and the files are
#   removed right away. pgbench logs every transaction by default, a random
#   tenth at 1000 clients (--sampling-rate; a -T 45 run would log tens of
#   MB). Writing the log costs pgbench a little CPU on every target alike.
#   System calls per transaction of the poolers (pgbouncer, pgbouncer125,
#   pgcarrier, builtin; not direct): when S100 is among the workloads, one
#   more -S 100 run of BENCH_SYSCALL_DURATION seconds per pooler, after its
#   measured ones, under strace -c -f -p POOLER (every thread); strace is
#   stopped with SIGINT when pgbench is done (it detaches and writes its
#   summary). strace slows the pooler, so that run's TPS is not reported,
#   only calls per transaction: read/recv, write/writev/send, epoll_wait,
#   epoll_ctl, futex, other, total (the 100 logins and logouts included).
#
# Targets: direct, pgbouncer, pgbouncer125, pgcarrier, pgcarrier_noguard,
# pgcarrier_nostats and builtin.
# pgbouncer125 is PgBouncer 1.25 (BENCHMARKS.md: built by hand, outside the
# repository), run only when BENCH_PGBOUNCER125 gives its binary (copied
# into the run's directory), with the Debian pgbouncer's ini but for port,
# log and pid file; it runs every workload, as its own group after
# pgbouncer. report.py's Targets then compare pgcarrier with both
# PgBouncers: TPS on S100, S1000, P100, P1000 and p99 at 100 clients.
# builtin is built-in mode (docs/builtin.md): the same PostgreSQL, started
# with shared_preload_libraries = 'pgcarrier' when builtin is selected (the
# extension built from src/extension and copied, with the same pgcarrier
# binary the standalone targets run, into the run's directory:
# dynamic_library_path and pgcarrier.daemon_path point there, so nothing
# needs installing and both modes run one binary). Its pooler listens on its
# own port (pgcarrier.port) with the standalone's settings (transaction
# mode, pool size 8, workers, max_client_conn) and, as they do, reaches
# PostgreSQL over its Unix socket (pgcarrier.server_host); authentication
# is the server's pg_hba.conf (initdb's trust lines). It is "started" and
# "stopped" with ALTER SYSTEM SET pgcarrier.enabled = on/off and a reload
# (the supervisor starts and stops the daemon; with ssl = on for the TLS
# workloads, which the pooler then offers with the server's certificate).
# It runs every workload, in pgcarrier's group: each workload runs on
# pgcarrier and right after on builtin, so that report.py's "built-in /
# standalone" rows in Targets (goal >= 1.00) compare runs of the same moment.
# With builtin selected every target runs on this PostgreSQL with the
# extension preloaded (its pooler off outside builtin's turn): the
# in-backend reporter only acts in the pooler's own backends. pgcarrier_nostats is pgcarrier with stats = 0 (no
# counting on the forwarding path): it runs S100 only, paired with pgcarrier
# like the guard-off one, so that report.py prices the statistics,
# 1 - TPS(stats on) / TPS(stats off) (goal < 2 %).
# pgcarrier_noguard: the same
# pgcarrier binary with a second ini, identical but for session_guard = off
# (and its port, log and pid file). pgcarrier_noguard is there to price the
# session-state guard: it runs only the simple-protocol workloads S8, S100
# and S1000 (no prepared, extended or -C run, no idle-memory test). When both
# pgcarrier targets are selected they are up at the same time, and each of
# those workloads runs on the one and right after on the other (guard on
# first in odd repeats, guard off first in even ones), so that both halves of
# a pair see the same machine. report.py adds a "Targets" section: -M
# prepared / -S on pgcarrier (goal >= 1.25) and the guard's cost,
# 1 - TPS(guard on) / TPS(guard off) (goal <= 3 %). Runs vary by up to
# ~20 %, so judge the 3 % goal on BENCH_REPEAT >= 3, not on one run.
#
# pgcarrier_dN (BENCH_PIPELINE_DEPTHS): pgcarrier with
# server_pipeline_depth = N in its ini (and its own port, log and pid file),
# nothing else changed; depth 0 writes no such line, so with the default
# ("0") the benchmark is what it was. Each runs every workload, the strace
# run too (not the idle-memory test), in pgcarrier's group: each workload
# runs on pgcarrier and right after on every pgcarrier_dN, so that the
# report's "Pipelining depth" section compares runs of the same moment. A
# pgcarrier that does not know the setting refuses the ini (pgcarrier -t,
# checked once before the runs): that depth's cells read 'fail'.
#
# Usage (root):  bash bench/run.sh
#   BENCH_DURATION=20       seconds per pgbench run (1000 clients: x 45/20)
#   BENCH_DURATION_1000=    override the 1000-client duration
#   BENCH_REPEAT=1          repeats; the table shows the median
#   BENCH_ONLY=direct,pgbouncer,pgbouncer125,pgcarrier,pgcarrier_noguard,pgcarrier_nostats,builtin   targets to run
#                           (pgbouncer125 only by default when BENCH_PGBOUNCER125 is set)
#   BENCH_PGBOUNCER125=     path of a PgBouncer 1.25 binary: adds target pgbouncer125
#   BENCH_WORKLOADS=S8,S100,S1000,P100,P1000,E100,E1000,C8,T8C,T100   workloads to run
#   BENCH_TLS_KEY=ec-p256   certificate key for T8C/T100: ec-p256 or rsa2048
#   BENCH_BUILTIN_PIPELINE_DEPTH=0   builtin's pgcarrier.server_pipeline_depth
#   BENCH_PIPELINE_DEPTHS=0 pgcarrier's server_pipeline_depth values to run,
#                           e.g. "0 2 4 8": one more pgcarrier target per depth
#                           N > 0, pgcarrier_dN (see below); 0 is pgcarrier
#                           itself, which always runs (the other columns'
#                           reference)
#   BENCH_IDLE_CLIENTS=5000 idle clients for the memory test (0: skip it)
#   BENCH_WORKERS=0         pgcarrier workers
#   BENCH_SYSCALLS=1        the strace run per pooler (0: skip it)
#   BENCH_SYSCALL_DURATION=5  seconds of that run
#   BENCH_LATENCY_SAMPLE=1  fraction of transactions pgbench logs for p50/p99
#   BENCH_LATENCY_SAMPLE_1000=0.1  the same at 1000 clients
#   BENCH_KEEP=1            keep the temporary directory (logs, pgbench output)
#
# Prints the table and writes it to bench/results/latest.md, and the same as
# a chart to bench/results/latest.png (python3-matplotlib), with dated copies.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${BENCH_DURATION:-20}
DURATION_1000=${BENCH_DURATION_1000:-$(( (DURATION * 45 + 19) / 20 ))}
REPEAT=${BENCH_REPEAT:-1}
# PgBouncer 1.25 (a binary built by hand, see BENCHMARKS.md): a target only
# when its path is given.
PGBOUNCER125=${BENCH_PGBOUNCER125:-}
DEFAULT_ONLY=direct,pgbouncer${PGBOUNCER125:+,pgbouncer125},pgcarrier,pgcarrier_noguard,pgcarrier_nostats,builtin
ONLY=${BENCH_ONLY:-$DEFAULT_ONLY}
WORKLOADS=${BENCH_WORKLOADS:-S8,S100,S1000,P100,P1000,E100,E1000,C8,T8C,T100}
TLS_KEY=${BENCH_TLS_KEY:-ec-p256}
PIPELINE_DEPTHS=${BENCH_PIPELINE_DEPTHS:-0}
IDLE_CLIENTS=${BENCH_IDLE_CLIENTS:-5000}
WORKERS=${BENCH_WORKERS:-0}
SYSCALLS=${BENCH_SYSCALLS:-1}
SYSCALL_DURATION=${BENCH_SYSCALL_DURATION:-5}
# Fraction of transactions pgbench logs for the latency percentiles: every
# one by default, a tenth at 1000 clients (-T 45 there: the log would reach
# tens of MB per run; a random tenth still holds thousands above p99).
LATENCY_SAMPLE=${BENCH_LATENCY_SAMPLE:-1}
LATENCY_SAMPLE_1000=${BENCH_LATENCY_SAMPLE_1000:-0.1}
POOL_SIZE=8
PGBIN=/usr/lib/postgresql/15/bin
PY=/usr/bin/python3
DB=postgres

if [ "$(id -u)" -ne 0 ]; then
    echo "bench: run as root (PostgreSQL and the poolers run as user postgres)" >&2
    exit 1
fi

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
has() { case ",$1," in *",$2,"*) return 0 ;; esac; return 1; }
# Whether target $1 runs workload $2: the guard-off pgcarrier only prices the
# guard on the simple protocol. The pgcarrier_dN run everything.
takes() {
    case $1 in
        pgcarrier_noguard) case $2 in S8|S100|S1000) return 0 ;; esac; return 1 ;;
        pgcarrier_nostats) case $2 in S100) return 0 ;; esac; return 1 ;;
    esac
    return 0
}

for t in ${ONLY//,/ }; do
    case $t in direct|pgbouncer|pgbouncer125|pgcarrier|pgcarrier_noguard|pgcarrier_nostats|builtin) ;;
        pgcarrier_d*) echo "bench: '$t' in BENCH_ONLY: pipelining depths come from BENCH_PIPELINE_DEPTHS" >&2; exit 1 ;;
        *) echo "bench: unknown target '$t' in BENCH_ONLY" >&2; exit 1 ;; esac
done
# One target per pipelining depth N > 0, pgcarrier_dN, with pgcarrier (depth
# 0, the reference); in increasing order, each once.
DEPTH_TARGETS=()
for d in $PIPELINE_DEPTHS; do
    case $d in ''|*[!0-9]*) echo "bench: BENCH_PIPELINE_DEPTHS takes whole numbers (\"0 2 4 8\"), not '$d'" >&2; exit 1 ;; esac
done
for d in $(printf '%s\n' $PIPELINE_DEPTHS | sed 's/^0*\([0-9]\)/\1/' | sort -n -u); do
    [ "$d" -gt 0 ] && DEPTH_TARGETS+=("pgcarrier_d$d")
done
if [ "${#DEPTH_TARGETS[@]}" -gt 0 ]; then
    if has "$ONLY" pgcarrier; then
        for t in "${DEPTH_TARGETS[@]}"; do ONLY+=",$t"; done
    else
        echo "bench: BENCH_PIPELINE_DEPTHS=\"$PIPELINE_DEPTHS\" needs target pgcarrier in BENCH_ONLY" >&2
        exit 1
    fi
fi
is_depth() { case $1 in pgcarrier_d*) return 0 ;; esac; return 1; }
depth_of() { echo "${1#pgcarrier_d}"; }
if has "$ONLY" pgbouncer125 && [ ! -x "$PGBOUNCER125" ]; then
    echo "bench: target pgbouncer125 needs BENCH_PGBOUNCER125=/path/to/pgbouncer (1.25), not '${PGBOUNCER125}'" >&2
    exit 1
fi
if [ "$SYSCALLS" = 1 ] && ! command -v strace >/dev/null 2>&1; then
    echo "bench: BENCH_SYSCALLS=1 needs strace (apt-get install strace), or BENCH_SYSCALLS=0" >&2
    exit 1
fi
for w in ${WORKLOADS//,/ }; do
    case $w in S8|S100|S1000|P100|P1000|E100|E1000|C8|T8C|T100) ;;
        *) echo "bench: unknown workload '$w' in BENCH_WORKLOADS" >&2; exit 1 ;; esac
done
case $TLS_KEY in
    ec-p256) TLS_KEY_TEXT="ECDSA P-256"; TLS_NEWKEY=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
    rsa2048) TLS_KEY_TEXT="RSA 2048"; TLS_NEWKEY=(-newkey rsa:2048) ;;
    *) echo "bench: BENCH_TLS_KEY must be ec-p256 or rsa2048, not '$TLS_KEY'" >&2; exit 1 ;;
esac
# The TLS workloads; the others run over plain TCP, as they always have.
is_tls() { case $1 in T8C|T100) return 0 ;; esac; return 1; }
WANT_TLS=0
for w in ${WORKLOADS//,/ }; do
    if is_tls "$w"; then WANT_TLS=1; fi
done
# pgbench and psql get their sslmode from here only: PGSSLMODE=require in the
# TLS phase, libpq's default (prefer) otherwise.
unset PGSSLMODE PGREQUIRESSL

if ! command -v pgbouncer >/dev/null 2>&1 || [ ! -x "$PGBIN/pgbench" ] || [ ! -x "$PY" ]; then
    bash scripts/deps.sh
fi
if [ "$WANT_TLS" = 1 ] && ! command -v openssl >/dev/null 2>&1; then
    echo "bench: the TLS workloads need the openssl command (apt-get install openssl)" >&2
    exit 1
fi

CARRIER_OK=1
WANT_CARRIER=0
if has "$ONLY" pgcarrier || has "$ONLY" pgcarrier_noguard || has "$ONLY" pgcarrier_nostats || has "$ONLY" builtin; then
    WANT_CARRIER=1
    log "building pgcarrier (make)"
    make >/dev/null || CARRIER_OK=0
    [ -x ./pgcarrier ] || CARRIER_OK=0
    [ "$CARRIER_OK" = 1 ] || log "no ./pgcarrier (make failed): its cells will read 'fail'"
fi
BUILTIN_OK=0
if has "$ONLY" builtin && [ "$CARRIER_OK" = 1 ]; then
    log "building the extension (make extension)"
    if make extension >/dev/null && [ -f src/extension/pgcarrier.so ]; then
        BUILTIN_OK=1
    else
        log "no src/extension/pgcarrier.so (make extension failed; postgresql-server-dev-15?): builtin's cells will read 'fail'"
    fi
fi

# 1000 pgbench clients plus 1000 pooler sockets; 5000 idle clients on both ends.
want_fd=$(( IDLE_CLIENTS + 3000 ))
[ "$want_fd" -lt 12000 ] && want_fd=12000
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fd" ]; then
    ulimit -n "$want_fd" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $(( IDLE_CLIENTS + 200 )) ]; then
    log "warning: ulimit -n is $(ulimit -n), too low for $IDLE_CLIENTS idle clients"
fi

. scripts/lib.sh   # free_port, stop_pid (we are at the repository root)

TMP=$(mktemp -d /tmp/pgcarrier-bench.XXXXXX)
chmod 755 "$TMP"
chown postgres: "$TMP"
PGDATA=$TMP/data
OUT=$TMP/results
mkdir -p "$OUT"
: >"$OUT/runs.tsv"
: >"$OUT/idle.tsv"
: >"$OUT/syscalls.tsv"
declare -A PID=()   # target -> pid of its running pooler
IDLE_PID=
STRACE_PID=
PG_STARTED=0

cleanup() {
    local rc=$? t f
    trap - EXIT INT TERM
    stop_pid "$STRACE_PID"   # SIGTERM: strace detaches before it exits
    stop_pid "$IDLE_PID"
    for t in "${!PID[@]}"; do [ "$t" = builtin ] || stop_pid "${PID[$t]}"; done
    # builtin's daemon is the server's: it goes with it (its supervisor's pipe)
    if [ "$PG_STARTED" = 1 ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [ "$rc" -ne 0 ] && [ -d "$TMP" ]; then
        for f in "$TMP"/postgres.log "$TMP"/pgbouncer.log "$TMP"/pgbouncer125.log "$TMP"/pgcarrier.log \
                 "$TMP"/pgcarrier_noguard.log "$TMP"/pgcarrier_nostats.log "$TMP"/pgcarrier_d*.log "$TMP"/*.out; do
            [ -f "$f" ] && { echo "--- $f (last lines)" >&2; tail -n 15 "$f" >&2; }
        done
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "bench: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
cleanup_on_exit

# ------------------------------------------------------------- certificate
# One self-signed certificate and key for every target's TLS workloads; the
# key belongs to postgres, mode 600, as PostgreSQL wants it.
TLS_CERT=$TMP/tls/server.crt
TLS_KEYFILE=$TMP/tls/server.key
PG_TLS_OPTS=()
if [ "$WANT_TLS" = 1 ]; then
    mkdir -p "$TMP/tls"
    log "TLS certificate: $TLS_KEY_TEXT, self-signed (openssl req)"
    openssl req -x509 -new "${TLS_NEWKEY[@]}" -nodes -sha256 -days 3 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$TLS_KEYFILE" -out "$TLS_CERT" >"$TMP/tls/openssl.log" 2>&1 \
        || { cat "$TMP/tls/openssl.log" >&2; exit 1; }
    chown -R postgres: "$TMP/tls"
    chmod 600 "$TLS_KEYFILE"
    # ssl itself stays off (ALTER SYSTEM turns it on for the TLS phase only).
    PG_TLS_OPTS=("ssl_cert_file=$TLS_CERT" "ssl_key_file=$TLS_KEYFILE")
fi

# ---------------------------------------------------------------- PostgreSQL
PGPORT=$(free_port)
BUILTIN_PORT=$(free_port)
MAX_CLIENTS=$(( IDLE_CLIENTS + 1100 ))
# builtin: the extension and the daemon it runs, from this run's directory
# (copied once: the tree may be rebuilt while the benchmark runs).
BUILTIN_OPTS=()
if [ "$BUILTIN_OK" = 1 ]; then
    mkdir -p "$TMP/lib"
    # only the library there: PostgreSQL tries the bare name "pgcarrier" first
    install -m 755 src/extension/pgcarrier.so "$TMP/lib/pgcarrier.so"
    install -m 755 -o postgres ./pgcarrier "$TMP/pgcarrier"   # as for the standalone targets, below
    BUILTIN_OPTS=(shared_preload_libraries=pgcarrier "dynamic_library_path=$TMP/lib"
        "pgcarrier.daemon_path=$TMP/pgcarrier" "pgcarrier.port=$BUILTIN_PORT"
        "pgcarrier.workers=$WORKERS" "pgcarrier.server_host=$TMP"
        "pgcarrier.default_pool_size=$POOL_SIZE" "pgcarrier.max_client_conn=$MAX_CLIENTS"
        "pgcarrier.server_pipeline_depth=${BENCH_BUILTIN_PIPELINE_DEPTH:-0}")
fi
log "PostgreSQL 15 on 127.0.0.1:$PGPORT and $TMP/.s.PGSQL.$PGPORT$( [ "$BUILTIN_OK" = 1 ] && echo ", extension preloaded (built-in pooler on port $BUILTIN_PORT when its turn comes)")"
pg_throwaway_start "$TMP" "$PGPORT" "listen_addresses='127.0.0.1'" max_connections=1200 \
    shared_buffers=1GB fsync=off synchronous_commit=off "${PG_TLS_OPTS[@]}" "${BUILTIN_OPTS[@]}" || exit 1
PSQL=("$PGBIN/psql" -X -q -At -h "$TMP" -p "$PGPORT" -U postgres -d "$DB")
# The postmaster: PostgreSQL's CPU is its own and its children's (run_workload).
PG_PID=$(head -n 1 "$PGDATA/postmaster.pid")
if [ "$BUILTIN_OK" = 1 ]; then
    # off until its turn (pgcarrier.enabled is not on the command line, so ALTER SYSTEM decides)
    "${PSQL[@]}" -c 'ALTER SYSTEM SET pgcarrier.enabled = off' -c 'SELECT pg_reload_conf()' >/dev/null
fi
log "pgbench -i -s 10"
"$PGBIN/pgbench" -i -s 10 -q -h "$TMP" -p "$PGPORT" -U postgres "$DB" >"$TMP/init.log" 2>&1 \
    || { cat "$TMP/init.log" >&2; exit 1; }
"${PSQL[@]}" -c 'CHECKPOINT' >/dev/null

# ------------------------------------------------------------------ poolers
BOUNCER_PORT=$(free_port)
BOUNCER125_PORT=$(free_port)
CARRIER_PORT=$(free_port)
NOGUARD_PORT=$(free_port)
NOSTATS_PORT=$(free_port)
declare -A DEPTH_PORT=()   # depth -> port of pgcarrier_dN
for t in "${DEPTH_TARGETS[@]}"; do DEPTH_PORT[$(depth_of "$t")]=$(free_port); done

# TLS with clients, the same lines for PgBouncer and pgcarrier.
tls_settings() {
    cat <<EOF
client_tls_sslmode = require
client_tls_cert_file = $TLS_CERT
client_tls_key_file = $TLS_KEYFILE
EOF
}

cat >"$TMP/userlist.txt" <<EOF
"postgres" ""
EOF
cat >"$TMP/pgbouncer.ini" <<EOF
[databases]
$DB = host=$TMP port=$PGPORT dbname=$DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir = $TMP
auth_type = trust
auth_file = $TMP/userlist.txt
pool_mode = transaction
default_pool_size = $POOL_SIZE
max_client_conn = $MAX_CLIENTS
logfile = $TMP/pgbouncer.log
pidfile = $TMP/pgbouncer.pid
log_connections = 0
log_disconnections = 0
log_stats = 0
EOF
# The TLS phase's PgBouncer: the same, plus TLS with clients ([pgbouncer] is
# the last section).
cp "$TMP/pgbouncer.ini" "$TMP/pgbouncer_tls.ini"
tls_settings >>"$TMP/pgbouncer_tls.ini"
# PgBouncer 1.25 gets the Debian one's settings, only its port, log and pid
# file differ (so that the two compare as peers). Its defaults do the rest:
# max_prepared_statements = 200 since 1.22, which -M prepared needs.
for f in pgbouncer pgbouncer_tls; do
    sed -e "s/^listen_port = .*/listen_port = $BOUNCER125_PORT/" \
        -e "s|^logfile = .*|logfile = $TMP/pgbouncer125.log|" \
        -e "s|^pidfile = .*|pidfile = $TMP/pgbouncer125.pid|" \
        "$TMP/$f.ini" >"$TMP/${f/pgbouncer/pgbouncer125}.ini"
done

# pgcarrier.ini and pgcarrier_noguard.ini differ in session_guard only (and
# in port, log and pid file, so that both can run at once); both spell
# session_guard out rather than lean on the default. pgcarrier_tls.ini is
# pgcarrier.ini plus TLS with clients, for the TLS phase. pgcarrier_dN.ini
# is pgcarrier.ini plus server_pipeline_depth = N (none for depth 0).
carrier_ini() { # name port guard(on|off) stats(1|0) [file] [depth]
    { bench_carrier_settings "$1" "$2" "$TMP"; cat <<EOF
pidfile = $TMP/$1.pid
session_guard = $3
stats = $4
$( [ -n "${5:-}" ] && tls_settings )
$( [ "${6:-0}" -gt 0 ] && echo "server_pipeline_depth = $6" )

[databases]
$DB = host=$TMP port=$PGPORT dbname=$DB
EOF
    } >"$TMP/${5:-$1}.ini"
}
carrier_ini pgcarrier "$CARRIER_PORT" on 1
carrier_ini pgcarrier_noguard "$NOGUARD_PORT" off 1
carrier_ini pgcarrier_nostats "$NOSTATS_PORT" on 0
carrier_ini pgcarrier "$CARRIER_PORT" on 1 pgcarrier_tls
for t in "${DEPTH_TARGETS[@]}"; do
    carrier_ini "$t" "${DEPTH_PORT[$(depth_of "$t")]}" on 1 "" "$(depth_of "$t")"
    carrier_ini "$t" "${DEPTH_PORT[$(depth_of "$t")]}" on 1 "${t}_tls" "$(depth_of "$t")"
done
# One copy of the binary serves both targets, taken once: ./pgcarrier may be
# rebuilt while the benchmark runs.
if [ "$CARRIER_OK" = 1 ] && [ "$WANT_CARRIER" = 1 ]; then
    install -m 755 -o postgres ./pgcarrier "$TMP/pgcarrier"
fi
# PgBouncer 1.25 likewise (and user postgres may not reach where it was built).
if has "$ONLY" pgbouncer125; then
    install -m 755 -o postgres "$PGBOUNCER125" "$TMP/pgbouncer125"
fi
chown postgres: "$TMP"/*.ini "$TMP/userlist.txt"
# A pgcarrier that does not know server_pipeline_depth refuses its ini: say
# so once, and let that depth's cells read 'fail' (start_pooler skips it).
declare -A DEPTH_REFUSED=()
if [ "$CARRIER_OK" = 1 ]; then
    for t in "${DEPTH_TARGETS[@]}"; do
        if ! why=$(setpriv --reuid=postgres --regid=postgres --init-groups -- \
                       "$TMP/pgcarrier" -t -c "$TMP/$t.ini" 2>&1); then
            DEPTH_REFUSED[$t]=1
            log "$t: this pgcarrier refuses server_pipeline_depth = $(depth_of "$t") ($(tail -n 1 <<<"$why")): its cells will read 'fail'"
        fi
    done
fi

port_of() {
    case $1 in
        direct) echo "$PGPORT" ;;
        pgbouncer) echo "$BOUNCER_PORT" ;;
        pgbouncer125) echo "$BOUNCER125_PORT" ;;
        pgcarrier) echo "$CARRIER_PORT" ;;
        pgcarrier_noguard) echo "$NOGUARD_PORT" ;;
        pgcarrier_nostats) echo "$NOSTATS_PORT" ;;
        pgcarrier_d*) echo "${DEPTH_PORT[$(depth_of "$1")]}" ;;
        builtin) echo "$BUILTIN_PORT" ;;
    esac
}

# Which phase runs: 0 plain workloads (poolers without TLS, PostgreSQL with
# ssl = off, libpq's default sslmode), 1 TLS workloads (the *_tls.ini,
# ssl = on, PGSSLMODE=require).
TLS_PHASE=0
ini_of() { # target
    if [ "$TLS_PHASE" = 1 ]; then echo "$TMP/${1}_tls.ini"; else echo "$TMP/$1.ini"; fi
}
phase_env() { # run "$@" with this phase's sslmode
    if [ "$TLS_PHASE" = 1 ]; then PGSSLMODE=require "$@"; else "$@"; fi
}

# Start a pooler as user postgres (PgBouncer refuses root); setpriv execs, so
# $! is the pooler's own pid, kept in PID[target]. In the TLS phase it must
# answer psql with sslmode=require.
start_pooler() {
    local t=$1 port pid
    port=$(port_of "$t")
    if [ "$t" = builtin ]; then start_builtin; return; fi
    case $t in
        pgbouncer) set -- /usr/sbin/pgbouncer "$(ini_of "$t")" ;;
        pgbouncer125) set -- "$TMP/pgbouncer125" "$(ini_of "$t")" ;;
        pgcarrier|pgcarrier_noguard|pgcarrier_nostats|pgcarrier_d*)
            [ "$CARRIER_OK" = 1 ] || return 1
            [ -z "${DEPTH_REFUSED[$t]:-}" ] || return 1
            set -- "$TMP/pgcarrier" -c "$(ini_of "$t")" ;;
    esac
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$@" >>"$TMP/$t.out" 2>&1 &
    pid=$!
    PID[$t]=$pid
    for _ in $(seq 1 100); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            log "$t exited at startup"; tail -n 20 "$TMP/$t.out" "$TMP/$t.log" 2>/dev/null >&2 || true
            unset "PID[$t]"
            return 1
        fi
        if [ -n "$(ss -Htln "( sport = :$port )")" ] &&
           phase_env "$PGBIN/psql" -X -q -At -h 127.0.0.1 -p "$port" -U postgres -d "$DB" \
               -c 'SELECT 1' >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    log "$t does not answer on 127.0.0.1:$port"
    stop_pooler "$t"
    return 1
}

stop_pooler() { # target
    if [ "$1" = builtin ]; then stop_builtin; return; fi
    stop_pid "${PID[$1]:-}"
    unset "PID[$1]"
}

# The built-in pooler's daemon: the process run with this cluster's
# pgcarrier.ini (docs/builtin.md, "How it runs").
builtin_pid() {
    local d
    for d in /proc/[0-9]*; do
        if { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -qF -- "-c $PGDATA/pgcarrier.ini "; then
            echo "${d#/proc/}"
            return 0
        fi
    done
    return 1
}

# builtin "starts" with pgcarrier.enabled = on (and ssl = on in the TLS
# phase) and a reload: the supervisor starts the daemon.
start_builtin() {
    local pid
    [ "$BUILTIN_OK" = 1 ] || return 1
    local sql=(-c "ALTER SYSTEM SET pgcarrier.enabled = on")
    [ "$TLS_PHASE" = 1 ] && sql+=(-c "ALTER SYSTEM SET ssl = on")
    "${PSQL[@]}" "${sql[@]}" -c 'SELECT pg_reload_conf()' >/dev/null || return 1
    for _ in $(seq 1 200); do
        pid=$(builtin_pid || true)
        if [ -n "$pid" ] && [ -n "$(ss -Htln "( sport = :$BUILTIN_PORT )")" ] &&
           phase_env "$PGBIN/psql" -X -q -At -h 127.0.0.1 -p "$BUILTIN_PORT" -U postgres -d "$DB" \
               -c 'SELECT 1' >/dev/null 2>&1; then
            PID[builtin]=$pid
            return 0
        fi
        sleep 0.1
    done
    log "builtin does not answer on 127.0.0.1:$BUILTIN_PORT"; tail -n 20 "$TMP/postgres.log" >&2
    stop_builtin
    return 1
}

stop_builtin() {
    local pid=${PID[builtin]:-}
    unset "PID[builtin]"
    [ "$BUILTIN_OK" = 1 ] || return 0
    local sql=(-c "ALTER SYSTEM SET pgcarrier.enabled = off")
    [ "$TLS_PHASE" = 1 ] && sql+=(-c "ALTER SYSTEM SET ssl = off")
    "${PSQL[@]}" "${sql[@]}" -c 'SELECT pg_reload_conf()' >/dev/null || true
    for _ in $(seq 1 100); do
        [ -z "$(builtin_pid || true)" ] && return 0
        sleep 0.1
    done
    log "warning: builtin's daemon${pid:+ ($pid)} still runs after pgcarrier.enabled = off"
}

pooler_alive() { # target
    [ -n "${PID[$1]:-}" ] && kill -0 "${PID[$1]}" 2>/dev/null
}

cpu_ticks() { # utime + stime of all threads; fields after "pid (comm) "
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# Wait until PostgreSQL has at most $1 client backends (besides ours): after
# a 1000-client direct run, backends take a while to exit.
settle() {
    local max=$1 n
    for _ in $(seq 1 600); do
        n=$("${PSQL[@]}" -c "SELECT count(*) FROM pg_stat_activity
                 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" 2>/dev/null || echo 9999)
        [ "$n" -le "$max" ] && return 0
        sleep 0.1
    done
    log "warning: $n client backends still there"
}

# PostgreSQL's CPU ticks so far (postmaster, its reaped and its live
# children; measure.py pg-cpu), not counting the built-in pooler's daemon.
pg_cpu_ticks() {
    "$PY" "$ROOT/bench/measure.py" pg-cpu "$PG_PID" ${PID[builtin]:-} || echo -
}

# Sets clients, T and args (pgbench's options) for workload $1.
workload_args() {
    T=$DURATION
    case $1 in
        S8)    clients=8;    args=(-S) ;;
        S100)  clients=100;  args=(-S) ;;
        S1000) clients=1000; args=(-S); T=$DURATION_1000 ;;
        P100)  clients=100;  args=(-S -M prepared) ;;
        P1000) clients=1000; args=(-S -M prepared); T=$DURATION_1000 ;;
        E100)  clients=100;  args=(-S -M extended) ;;
        E1000) clients=1000; args=(-S -M extended); T=$DURATION_1000 ;;
        C8)    clients=8;    args=(-S -C) ;;
        T8C)   clients=8;    args=(-S -C) ;;     # with PGSSLMODE=require (TLS phase)
        T100)  clients=100;  args=(-S) ;;
    esac
}

run_workload() { # target workload rep
    local t=$1 w=$2 rep=$3 port clients T args before after rc tps txns status cpu pid
    local pg_before pg_after pg_cpu sample lat
    port=$(port_of "$t")
    pid=${PID[$t]:-}
    workload_args "$w"
    local outf="$TMP/pgbench.$t.$w.$rep"
    # Per-transaction latencies: pgbench's log, one file per thread
    # ($outf.lat.PID[.N]), reduced to p50/p99 after the run and removed.
    sample=$LATENCY_SAMPLE
    [ "$clients" -ge 1000 ] && sample=$LATENCY_SAMPLE_1000
    rm -f "$outf".lat.*
    before=-
    [ "$t" != direct ] && [ -n "$pid" ] && before=$(cpu_ticks "$pid" 2>/dev/null || echo -)
    pg_before=$(pg_cpu_ticks)
    set +e
    (
        phase_env timeout -k 10 $(( T * 3 + 120 )) \
            "$PGBIN/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -j 2 -T "$T" -c "$clients" "${args[@]}" \
                --log --log-prefix="$outf.lat" --sampling-rate="$sample" "$DB" \
            >"$outf" 2>"$outf.err"
        rc=$?
        # The client's CPU: this subshell's waited-for children (pgbench, under
        # timeout), in clock ticks. `times` (getrusage) is exact where
        # /proc/PID/stat's cutime may show nothing.
        times >"$outf.times"
        awk -v clk="$(getconf CLK_TCK)" 'NR == 2 {
            t = 0
            for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
            printf "%d\n", t * clk + 0.5 }' "$outf.times" >"$outf.cpu"
        exit $rc
    )
    rc=$?
    set -e
    pg_after=$(pg_cpu_ticks)
    cpu=-
    if [ "$before" != - ] && kill -0 "$pid" 2>/dev/null; then
        after=$(cpu_ticks "$pid" 2>/dev/null || echo -)
        [ "$after" != - ] && cpu=$(( after - before ))
    fi
    pg_cpu=-
    [ "$pg_before" != - ] && [ "$pg_after" != - ] && pg_cpu=$(( pg_after - pg_before ))
    lat=$("$PY" "$ROOT/bench/measure.py" latency "$outf.lat" || printf -- '-\t-\t0')
    rm -f "$outf".lat.*
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$outf" | head -n 1)
    txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$outf" | head -n 1)
    # rc 0 with 0 transactions: every client was still connecting when -T
    # ran out (direct, 1000 clients, on a slow machine): a real 0 TPS.
    # Any error pgbench logs counts as a failure: with -M prepared, pgbench
    # logs a failed PREPARE and carries on, and a pooler that does not track
    # prepared statements then "passes" only by luck.
    local errs
    errs=$(grep -c 'error:' "$outf.err" 2>/dev/null || true)
    if [ "$rc" -eq 0 ] && [ "${errs:-0}" -eq 0 ] && [ -n "$tps" ] && [ -n "$txns" ]; then
        status=ok
        log "$t $w: $tps tps, $txns transactions, latency p50/p99 $(cut -f1,2 <<<"$lat" | tr '\t' /) ms ($(cut -f3 <<<"$lat") logged)$(
            [ "$cpu" = - ] || echo ", pooler CPU $cpu ticks"), PostgreSQL CPU $pg_cpu ticks"
    else
        status=fail
        log "$t $w: FAILED (pgbench exit $rc, ${errs:-0} errors logged, ${txns:-no} transactions): $(grep -m1 -E 'error|ERROR|FATAL|abort' "$outf.err" 2>/dev/null || tail -n 1 "$outf.err")"
        [ -z "$tps" ] && tps=0
        [ -z "$txns" ] && txns=0
    fi
    local client_cpu
    client_cpu=$(cat "$outf.cpu" 2>/dev/null || echo -)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$w" "$rep" "$status" "$tps" "$txns" "$cpu" "${client_cpu:--}" \
        "$pg_cpu" "$(cut -f1,2 <<<"$lat")" >>"$OUT/runs.tsv"
    # Every pooler that is up may keep its pool of server connections.
    settle $(( POOL_SIZE * ${#PID[@]} ))
}

# Direct PostgreSQL's TLS: ssl = on for the TLS phase only (a reload; the
# poolers reach PostgreSQL over its Unix socket, never with TLS). Waits until
# new connections see the change; with on, until sslmode=require connects.
DIRECT_TLS=0
direct_ssl() { # on|off
    "${PSQL[@]}" -c "ALTER SYSTEM SET ssl = $1" -c 'SELECT pg_reload_conf()' >/dev/null || return 1
    for _ in $(seq 1 100); do
        if [ "$1" = on ]; then
            PGSSLMODE=require "$PGBIN/psql" -X -q -At -h 127.0.0.1 -p "$PGPORT" -U postgres -d "$DB" \
                -c 'SELECT 1' >/dev/null 2>&1 && return 0
        else
            [ "$("${PSQL[@]}" -c 'SHOW ssl' 2>/dev/null)" = off ] && return 0
        fi
        sleep 0.1
    done
    log "direct: ssl = $1 did not take effect"; tail -n 5 "$TMP/postgres.log" >&2
    return 1
}

# The TLS a target negotiates with a client (libpq's defaults are OpenSSL's,
# as s_client's): "protocol, cipher, key exchange, signature, tickets", from
# openssl s_client. It logs in (a startup packet for $DB as postgres; trust)
# and waits a second for the answers, so that the session tickets are
# counted whenever they come (without that, s_client left before PgBouncer
# 1.18's two arrived, and counted none).
tls_info() { # port
    local len
    len=$(printf '%02x' $(( 33 + ${#DB} )))   # length, protocol 3.0, user, database, end
    { printf "\\x00\\x00\\x00\\x${len}\\x00\\x03\\x00\\x00user\\x00postgres\\x00database\\x00${DB}\\x00\\x00"; sleep 1; } |
        timeout 10 openssl s_client -connect "127.0.0.1:$1" -starttls postgres -brief -msg 2>&1 |
        awk -F': ' '/^Protocol version/ { p = $2 } /^Ciphersuite/ { c = $2 }
                    /^(Server|Peer) Temp Key/ { k = $2 } /^Signature type/ { s = $2 }
                    /^<<< .*NewSessionTicket/ { t++ }
                    END { if (p == "") print "?"; else printf "%s, %s, key exchange %s, signature %s, %d session ticket(s) per handshake\n", p, c, k, s, t }'
}

# System calls per transaction of a pooler: one more -S 100 run of
# SYSCALL_DURATION seconds with strace -c -f attached to the pooler (all its
# threads). strace slows the pooler several times over, so only the calls
# per transaction count, not this run's TPS. The count includes the 100
# logins and logouts, a small share of a run of thousands of transactions.
takes_strace() { # target
    case $1 in pgbouncer|pgbouncer125|pgcarrier|pgcarrier_d*|builtin) return 0 ;; esac
    return 1
}

all_traced() { # pid: whether strace has attached to every thread
    local s
    for s in /proc/"$1"/task/*/status; do
        grep -q '^TracerPid:[[:space:]]*0$' "$s" 2>/dev/null && return 1
    done
    return 0
}

mark_syscalls_failed() { # target rep
    printf '%s\t%s\tfail\t0\t-\t-\t-\t-\t-\t-\t-\n' "$1" "$2" >>"$OUT/syscalls.tsv"
}

syscall_run() { # target rep
    local t=$1 rep=$2 pid port clients T args rc txns out
    pid=${PID[$t]:-}
    port=$(port_of "$t")
    workload_args S100
    out="$TMP/strace.$t.$rep"
    strace -c -f -o "$out" -p "$pid" 2>"$out.err" &
    STRACE_PID=$!
    for _ in $(seq 1 100); do
        all_traced "$pid" && break
        sleep 0.1
    done
    set +e
    timeout -k 10 $(( SYSCALL_DURATION * 3 + 120 )) \
        "$PGBIN/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -j 2 -T "$SYSCALL_DURATION" -c "$clients" \
            "${args[@]}" "$DB" >"$out.pgbench" 2>&1
    rc=$?
    set -e
    # SIGINT: strace detaches from every thread and writes its summary
    kill -INT "$STRACE_PID" 2>/dev/null || true
    wait "$STRACE_PID" 2>/dev/null || true
    STRACE_PID=
    txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out.pgbench" | head -n 1)
    if [ "$rc" -ne 0 ] || [ -z "$txns" ] || ! grep -q total "$out" 2>/dev/null; then
        log "$t syscalls: FAILED (pgbench exit $rc, ${txns:-no} transactions): $(tail -n 1 "$out.err" 2>/dev/null)"
        mark_syscalls_failed "$t" "$rep"
        return 0
    fi
    local per
    per=$("$PY" "$ROOT/bench/measure.py" syscalls "$out" "$txns")
    log "$t syscalls per transaction (read write epoll_wait epoll_ctl futex other total): $(tr '\t' ' ' <<<"$per") ($txns transactions under strace)"
    printf '%s\t%s\tok\t%s\t%s\n' "$t" "$rep" "$txns" "$per" >>"$OUT/syscalls.tsv"
    settle $(( POOL_SIZE * ${#PID[@]} ))
}

mark_failed() { # target workload rep: the pooler is not there
    printf '%s\t%s\t%s\tfail\t0\t0\t-\t-\t-\t-\t-\n' "$1" "$2" "$3" >>"$OUT/runs.tsv"
}

idle_test() { # target rep, on a freshly started pooler
    local t=$1 rep=$2 port before after line ok
    port=$(port_of "$t")
    if ! start_pooler "$t"; then
        printf '%s\t%s\tfail\t0\t0\t0\n' "$t" "$rep" >>"$OUT/idle.tsv"
        return 0
    fi
    sleep 1
    before=$(rss_kb "${PID[$t]}")
    rm -f "$TMP/idle.ready"
    "$PY" "$ROOT/bench/idle_clients.py" --host 127.0.0.1 --port "$port" --user postgres --dbname "$DB" \
        -n "$IDLE_CLIENTS" --ready-file "$TMP/idle.ready" --hold 900 >"$TMP/idle.$t.out" 2>&1 &
    IDLE_PID=$!
    for _ in $(seq 1 3000); do
        [ -f "$TMP/idle.ready" ] && break
        kill -0 "$IDLE_PID" 2>/dev/null || break
        sleep 0.2
    done
    line=$(cat "$TMP/idle.ready" 2>/dev/null || echo "ok=0 failed=?")
    sleep 2
    after=0
    pooler_alive "$t" && after=$(rss_kb "${PID[$t]}")
    ok=${line#ok=}; ok=${ok%% *}
    if [ "$ok" = "$IDLE_CLIENTS" ] && [ "$after" -gt 0 ]; then
        log "$t idle: $line, VmRSS $before kB -> $after kB"
        printf '%s\t%s\tok\t%s\t%s\t%s\n' "$t" "$rep" "$before" "$after" "$ok" >>"$OUT/idle.tsv"
    else
        log "$t idle: FAILED ($line; VmRSS $before kB -> $after kB): $(grep -m3 idle_clients "$TMP/idle.$t.out" | tr '\n' ' ')"
        printf '%s\t%s\tfail\t%s\t%s\t%s\n' "$t" "$rep" "$before" "$after" "$ok" >>"$OUT/idle.tsv"
    fi
    stop_pid "$IDLE_PID"; IDLE_PID=
    stop_pooler "$t"
}

# ---------------------------------------------------------------- the runs
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cores=$(nproc)"
    echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "kernel=Linux $(uname -r)"
    echo "postgres=$("$PGBIN/postgres" -V | sed 's/^postgres (PostgreSQL) /PostgreSQL /')"
    echo "pgbouncer=$(/usr/sbin/pgbouncer -V 2>/dev/null | head -n 1)"
    if has "$ONLY" pgbouncer125; then echo "pgbouncer125=$("$PGBOUNCER125" -V 2>/dev/null | head -n 1)"; fi
    echo "syscalls=$( [ "$SYSCALLS" = 1 ] && echo "$SYSCALL_DURATION" || echo 0)"
    echo "latency_sample=$LATENCY_SAMPLE"
    echo "latency_sample_1000=$LATENCY_SAMPLE_1000"
    echo "pgcarrier=$( [ -x "$TMP/pgcarrier" ] && "$TMP/pgcarrier" --version 2>/dev/null | head -n 1 | sed 's/^pgcarrier //' || echo '?')"
    echo "workers=$WORKERS"
    echo "pipeline_depths=$(echo 0 "${DEPTH_TARGETS[@]#pgcarrier_d}")"
    if has "$ONLY" builtin; then echo "builtin=$( [ "$BUILTIN_OK" = 1 ] && echo "src/extension/pgcarrier.so, the same pgcarrier binary, pgcarrier.server_host = the Unix socket" || echo "not built")"; fi
    echo "duration=$DURATION"
    echo "duration_1000=$DURATION_1000"
    echo "repeat=$REPEAT"
    echo "targets=$ONLY"
    echo "workloads=$WORKLOADS"
    echo "clk_tck=$(getconf CLK_TCK)"
    echo "idle_clients=$IDLE_CLIENTS"
    if [ "$WANT_TLS" = 1 ]; then echo "tls_key=$TLS_KEY_TEXT"; fi
} >"$OUT/meta"

# A round runs one group of targets after the other: direct; pgbouncer; the
# two pgcarriers, both up at once, each workload run on one and then on the
# other.
for rep in $(seq 1 "$REPEAT"); do
    for group in direct pgbouncer pgbouncer125 "pgcarrier ${DEPTH_TARGETS[*]} builtin pgcarrier_noguard pgcarrier_nostats"; do
        members=()
        for t in $group; do has "$ONLY" "$t" && members+=("$t"); done
        [ "${#members[@]}" -gt 0 ] || continue
        # Alternate who goes first in a pair, so that neither always runs on
        # what the other leaves behind.
        if [ "${#members[@]}" -ge 2 ] && [ $(( rep % 2 )) = 0 ]; then
            members=("${members[@]:1}" "${members[0]}")
        fi
        # Two phases: the plain workloads, then the TLS ones with every
        # target of the group restarted (or, for direct, reloaded) with TLS.
        for TLS_PHASE in 0 1; do
            ws=()
            for w in ${WORKLOADS//,/ }; do
                if is_tls "$w"; then
                    if [ "$TLS_PHASE" = 1 ]; then ws+=("$w"); fi
                elif [ "$TLS_PHASE" = 0 ]; then
                    ws+=("$w")
                fi
            done
            [ "${#ws[@]}" -gt 0 ] || continue
            phase=()
            for t in "${members[@]}"; do
                for w in "${ws[@]}"; do
                    if takes "$t" "$w"; then phase+=("$t"); break; fi
                done
            done
            [ "${#phase[@]}" -gt 0 ] || continue
            if [ "$TLS_PHASE" = 1 ]; then
                log "== round $rep/$REPEAT, TLS ($TLS_KEY_TEXT): ${phase[*]}"
            else
                log "== round $rep/$REPEAT: ${phase[*]}"
            fi
            for t in "${phase[@]}"; do
                if [ "$t" = direct ]; then
                    [ "$TLS_PHASE" = 1 ] || continue
                    DIRECT_TLS=0
                    direct_ssl on && DIRECT_TLS=1 || log "direct: no TLS: its TLS cells will read 'fail'"
                else
                    start_pooler "$t" || log "$t did not start: its cells will read 'fail'"
                fi
                if [ "$TLS_PHASE" = 1 ] && [ "$rep" = 1 ] && { [ "$t" = direct ] || pooler_alive "$t"; }; then
                    echo "tls_$t=$(tls_info "$(port_of "$t")")" >>"$OUT/meta"
                fi
            done
            for w in "${ws[@]}"; do
                for t in "${phase[@]}"; do
                    takes "$t" "$w" || continue
                    if [ "$t" = direct ] && [ "$TLS_PHASE" = 1 ] && [ "$DIRECT_TLS" != 1 ]; then
                        mark_failed "$t" "$w" "$rep"
                        continue
                    fi
                    if [ "$t" != direct ] && ! pooler_alive "$t"; then
                        if [ -n "${PID[$t]:-}" ]; then
                            log "$t died; restarting it"
                            unset "PID[$t]"
                            start_pooler "$t" || true
                        fi
                        if ! pooler_alive "$t"; then
                            mark_failed "$t" "$w" "$rep"
                            continue
                        fi
                    fi
                    run_workload "$t" "$w" "$rep"
                done
            done
            # The strace run, after the measured ones (it slows the pooler).
            if [ "$SYSCALLS" = 1 ] && [ "$TLS_PHASE" = 0 ] && has "$WORKLOADS" S100; then
                for t in "${phase[@]}"; do
                    takes_strace "$t" || continue
                    if pooler_alive "$t"; then
                        syscall_run "$t" "$rep"
                    else
                        mark_syscalls_failed "$t" "$rep"
                    fi
                done
            fi
            for t in "${phase[@]}"; do
                if [ "$t" = direct ]; then
                    if [ "$TLS_PHASE" = 1 ]; then direct_ssl off || exit 1; fi
                else
                    stop_pooler "$t"
                fi
            done
        done
        TLS_PHASE=0
        for t in "${members[@]}"; do
            if [ "$t" != direct ] && [ "$t" != pgcarrier_noguard ] && [ "$t" != pgcarrier_nostats ] &&
               ! is_depth "$t" && [ "$IDLE_CLIENTS" -gt 0 ]; then
                idle_test "$t" "$rep"
            fi
        done
    done
done

mkdir -p bench/results
"$PY" bench/report.py "$OUT" --chart "$TMP/chart.png" >"$TMP/table.md"
stamp=$(date -u +%Y%m%d-%H%M%S)
cp "$TMP/table.md" bench/results/latest.md
cp "$TMP/table.md" "bench/results/$stamp.md"
if [ -f "$TMP/chart.png" ]; then
    cp "$TMP/chart.png" bench/results/latest.png
    cp "$TMP/chart.png" "bench/results/$stamp.png"
fi
cp "$OUT/runs.tsv" "bench/results/$stamp.runs.tsv"
cp "$OUT/idle.tsv" "bench/results/$stamp.idle.tsv"
cp "$OUT/syscalls.tsv" "bench/results/$stamp.syscalls.tsv"
echo
cat "$TMP/table.md"
echo
log "written to bench/results/latest.md$([ -f bench/results/latest.png ] && echo " and bench/results/latest.png")"
