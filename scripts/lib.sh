# Shell helpers shared by scripts/demo*.sh and bench/run.sh (sourced, not run).

# A free TCP port on this machine, never one handed out before by this shell.
# Below the kernel's ephemeral range where there is room (20000..32767 with
# Linux's default 32768..60999): a port that is free now may otherwise be
# taken as the source port of an outgoing connection before the server
# binds it, and stay blocked in TIME_WAIT (bench/run.sh's -C runs make
# thousands of connections, and a pooler started after them could not bind).
free_port() {
    local p lo span
    lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 0)
    span=$(( lo - 20000 ))
    [ "$span" -ge 2000 ] || span=40000
    for _ in $(seq 1 500); do
        p=$((20000 + RANDOM % span))
        case " ${USED_PORTS:-} " in *" $p "*) continue ;; esac
        if [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
            USED_PORTS="${USED_PORTS:-} $p"
            echo "$p"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

# Stop a process: SIGTERM, then SIGKILL after 5 s.
stop_pid() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Start a throwaway PostgreSQL 15 as user postgres: cluster in DIR/data, Unix
# socket in DIR, on PORT, with the given extra settings (name=value). Sets
# PG_STARTED=1 once a server may be running, for the caller's cleanup.
pg_throwaway_start() {
    local dir=$1 port=$2 opts s
    shift 2
    opts="-p $port -k $dir"
    for s in "$@"; do opts="$opts -c $s"; done
    runuser -u postgres -- "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
        --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    PG_STARTED=1
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 120 \
        -o "$opts" start >/dev/null || { tail -n 30 "$dir/postgres.log" >&2; return 1; }
}

# The demos' load: pgbench -S with CLIENTS clients for DURATION s on the
# pooler's port, sampling once a second the clients connected to the pooler
# (established TCP sockets on the port) and the server backends that
# BACKENDS_SQL counts (run with the caller's PSQL array). LABEL names the
# pooler in what is printed. Uses TMP, PGBIN, CLIENTS, DURATION,
# POOL_SIZE; sets SAMPLER_PID while the sampler runs (for the caller's
# cleanup) and PGBENCH_RC.
pgbench_sampled() { # port backends_sql label
    local port=$1 backends_sql=$2 label=$3 samples=$TMP/samples
    : >"$samples"
    (
        trap 'exit 0' TERM
        while :; do
            c=$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l)
            b=$("${PSQL[@]}" -d postgres -Atc "$backends_sql" 2>/dev/null || echo '?')
            echo "$c $b" >>"$samples"
            sleep 1
        done
    ) &
    SAMPLER_PID=$!

    say "pgbench -c $CLIENTS -j 2 -T $DURATION -S on $label's port $port"
    set +e
    "$PGBIN/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -S -c "$CLIENTS" -j 2 -T "$DURATION" -P 5 bench \
        2>&1 >"$TMP/pgbench.out" | tee "$TMP/pgbench.err" | grep --line-buffered '^progress'
    PGBENCH_RC=${PIPESTATUS[0]}
    set -e
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=

    cat "$TMP/pgbench.out"
    if [ "$PGBENCH_RC" -ne 0 ]; then
        echo "pgbench exited with status $PGBENCH_RC; its last errors:"
        grep -v '^progress' "$TMP/pgbench.err" | tail -n 20
    fi

    say "sampled once a second during the run (clients on $label / PostgreSQL backends used)"
    awk '{ printf "%s/%s ", $1, $2 } END { print "" }' "$samples" | fold -s -w 100
    awk -v pool="$POOL_SIZE" -v label="$label" '
        $2 ~ /^[0-9]+$/ { if ($1 > mc) mc = $1; if ($2 > mb) mb = $2 }
        END {
            printf "\nat most %d clients connected to %s at once; at most %d PostgreSQL backends used (pool size %d)\n", mc, label, mb, pool
        }' "$samples"
}

# Run the caller's cleanup function when the script exits, however it
# exits: ^C and TERM exit with the shell's codes for them (130, 143), so
# that cleanup sees why.
cleanup_on_exit() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# The [pgcarrier] lines the benchmarks share (bench/run.sh, bench/idle_memory.sh),
# as the project's benchmark method sets the poolers up: TCP on 127.0.0.1:PORT
# and a Unix socket in DIR, transaction mode, trust, logging of connections
# off; log file DIR/NAME.log. Uses WORKERS, POOL_SIZE and MAX_CLIENTS.
bench_carrier_settings() { # name port dir
    cat <<EOF
[pgcarrier]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir = $3
workers = $WORKERS
pool_mode = transaction
default_pool_size = $POOL_SIZE
max_client_conn = $MAX_CLIENTS
auth_type = trust
logfile = $3/$1.log
log_connections = 0
log_disconnections = 0
EOF
}
