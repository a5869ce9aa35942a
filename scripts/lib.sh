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
