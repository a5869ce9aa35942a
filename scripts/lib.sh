# Shell helpers shared by scripts/demo.sh and bench/run.sh (sourced, not run).

# A free TCP port on this machine, never one handed out before by this shell.
free_port() {
    local p
    for _ in $(seq 1 500); do
        p=$((20000 + RANDOM % 40000))
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
