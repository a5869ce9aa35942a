#!/bin/sh
# bench/report_cost.sh - what the in-backend session-state report costs
# (src/extension/report.c): pgbench -S -M prepared, 100 clients, through the
# built-in pooler (pool 8, transaction mode), with pgcarrier.session_report
# on and off, alternating, ROUNDS times each. For each run: TPS, and the CPU
# time the server's client backends used per transaction (utime + stime of
# the pooler's backends, from /proc, in microseconds).
#
#   sudo bench/report_cost.sh                 # the installed extension
#   STAGE=/tmp/stage sudo bench/report_cost.sh   # a `make install-extension DESTDIR=/tmp/stage` tree
#
# Environment: SECONDS_PER_RUN (20), ROUNDS (3), CLIENTS (100), POOL (8),
# SCALE (10), THREADS (4), PORT (55432), POOLER_PORT (56432), PG_BIN,
# ORDER ("on off": the modes of each round, in order), DIRECT (set: also
# pgbench straight to the server, POOL clients, with and without
# pgcarrier.report = on in the startup packet: the backend's own cost).
# Runs as root (the cluster runs as postgres, in a temporary directory).
set -eu

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-100}
POOL=${POOL:-8}
SCALE=${SCALE:-10}
THREADS=${THREADS:-4}
PORT=${PORT:-55432}
POOLER_PORT=${POOLER_PORT:-56432}
STAGE=${STAGE:-}
ORDER=${ORDER:-on off}

DIR=$(mktemp -d /tmp/pgc-report-cost.XXXXXX)
chown postgres "$DIR"
DATA=$DIR/data
as_pg() { runuser -u postgres -- "$@"; }
cleanup() { as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM

as_pg "$PG_BIN/initdb" -D "$DATA" -A trust -U postgres >/dev/null
{
	echo "port = $PORT"
	echo "listen_addresses = '127.0.0.1'"
	echo "unix_socket_directories = '$DIR'"
	echo "max_connections = 200"
	echo "shared_buffers = 256MB"
	echo "shared_preload_libraries = 'pgcarrier'"
	echo "pgcarrier.port = $POOLER_PORT"
	echo "pgcarrier.default_pool_size = $POOL"
	echo "pgcarrier.max_client_conn = 1000"
	echo "pgcarrier.workers = 1"
	if [ -n "$STAGE" ]; then
		echo "dynamic_library_path = '$STAGE$("$PG_BIN/pg_config" --pkglibdir):\$libdir'"
		echo "pgcarrier.daemon_path = '$STAGE$("$PG_BIN/pg_config" --bindir)/pgcarrier'"
	fi
} >>"$DATA/postgresql.conf"
as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$DIR/log" -w start >/dev/null
psql_pg() { as_pg "$PG_BIN/psql" -X -q -A -t -h "$DIR" -p "$PORT" -U postgres -d postgres -c "$1"; }
as_pg "$PG_BIN/pgbench" -i -q -s "$SCALE" -h "$DIR" -p "$PORT" -U postgres postgres >/dev/null 2>&1

# CPU ticks (utime + stime) of the client backends the pooler opened.
backend_ticks() {
	total=0
	for pid in $(psql_pg "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND client_port IS NOT NULL AND pid <> pg_backend_pid()"); do
		t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
		total=$((total + t))
	done
	echo "$total"
}

run() {	# $1 = on | off
	psql_pg "ALTER SYSTEM SET pgcarrier.session_report = $1" >/dev/null
	# new server connections for the new setting: restart (the pooler with it)
	as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$DIR/log" -w -m fast restart >/dev/null
	sleep 2
	# warm up, and open the pool's server connections
	PGPASSWORD= "$PG_BIN/pgbench" -S -M prepared -n -c "$CLIENTS" -j "$THREADS" -T 3 \
		-h 127.0.0.1 -p "$POOLER_PORT" -U postgres postgres >/dev/null 2>&1
	before=$(backend_ticks)
	out=$("$PG_BIN/pgbench" -S -M prepared -n -c "$CLIENTS" -j "$THREADS" -T "$SECONDS_PER_RUN" \
		-h 127.0.0.1 -p "$POOLER_PORT" -U postgres postgres 2>&1)
	after=$(backend_ticks)
	tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | tail -1)
	txns=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
	hz=$(getconf CLK_TCK)
	us=$(awk -v a="$after" -v b="$before" -v n="$txns" -v hz="$hz" 'BEGIN { if (n > 0) printf "%.2f", (a - b) * 1e6 / hz / n; else print "?" }')
	echo "report=$1 tps=$tps transactions=$txns backend_cpu_us_per_txn=$us"
}

# The backend alone: pgbench straight to the server with POOL clients, each
# backend asked for reports as the pooler asks (PGOPTIONS) or not: no pooler
# in the way, so the difference is the reporter's own cost.
direct() {	# $1 = on | off

	out=$(PGOPTIONS="-c pgcarrier.report=$1" "$PG_BIN/pgbench" -S -M prepared -n -c "$POOL" -j "$THREADS" \
		-T "$SECONDS_PER_RUN" -h 127.0.0.1 -p "$PORT" -U postgres postgres 2>&1)
	tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | tail -1)
	echo "direct report=$1 tps=$tps"
}

echo "pgbench -S -M prepared -c $CLIENTS -j $THREADS -T $SECONDS_PER_RUN, pool $POOL, scale $SCALE, $(nproc) cores"
i=0
while [ "$i" -lt "$ROUNDS" ]; do
	for mode in $ORDER; do
		run "$mode"
	done
	if [ -n "${DIRECT:-}" ]; then
		for mode in $ORDER; do
			direct "$mode"
		done
	fi
	i=$((i + 1))
done
