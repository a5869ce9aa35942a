#!/usr/bin/env bash
# Install everything pgcarrier needs to build, test, demo and benchmark on
# Debian 12, as root. Safe to run again: when every package is already
# installed it does nothing but make sure no packaged service holds a port.
#
#   bash scripts/deps.sh            install what is missing
#   DEPS_FORCE=1 bash scripts/deps.sh   always run apt-get update + install
set -euo pipefail

# Each package is here for something in the repository:
#   build-essential pkg-config libssl-dev libpq-dev libpg-query-dev  the build
#   liburing-dev      the io_uring event loop (io_backend, src/engine/poller_uring.c)
#   libtsan2          gcc's ThreadSanitizer runtime (make SAN=thread, in make check)
#   libcmocka-dev     unit tests
#   openssl           certificates for the TLS tests and the benchmark
#   postgresql-15 postgresql-client-15   servers, psql and pgbench for tests, demo, bench
#   postgresql-server-dev-15   PGXS, to build the extension (built-in mode, src/extension)
#   pgbouncer         the benchmark's reference pooler
#   python3 ...       the integration suite (pytest, psycopg, asyncpg)
#   libpostgresql-jdbc-java openjdk-17-jdk-headless   the JDBC test
#   iproute2 (ss) util-linux (runuser, setarch)       scripts and the test harness
#   groff-base man-db  the man pages render (man -l) in the packaging test
#   python3-matplotlib the benchmark's chart (bench/report.py)
#   prometheus prometheus-pgbouncer-exporter   real tools against /metrics and the console (test_metrics.py)
PKGS=(
    build-essential pkg-config
    libssl-dev openssl libcmocka-dev libpg-query-dev libtsan2 liburing-dev
    postgresql-15 postgresql-client-15 libpq-dev postgresql-server-dev-15
    pgbouncer
    python3 python3-pytest python3-psycopg python3-asyncpg
    libpostgresql-jdbc-java openjdk-17-jdk-headless
    iproute2 util-linux
    groff-base man-db python3-matplotlib
    prometheus prometheus-pgbouncer-exporter
)

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: must run as root (apt-get install)" >&2
    exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ] || [ "${DEPS_FORCE:-0}" = 1 ]; then
    echo "deps.sh: installing: ${missing[*]:-(forced) ${PKGS[*]}}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${PKGS[@]}"
else
    echo "deps.sh: all packages already installed"
fi

# The postgresql and pgbouncer packages start their own services on install.
# Tests, demo and bench start private servers on free ports, so stop the
# packaged ones and keep them from starting again at boot.
if command -v pg_lsclusters >/dev/null 2>&1; then
    while read -r ver cluster _port status _rest; do
        [ -n "${ver:-}" ] || continue
        if [ "$status" = online ]; then
            echo "deps.sh: stopping packaged cluster $ver/$cluster"
            pg_ctlcluster "$ver" "$cluster" stop || true
        fi
        conf="/etc/postgresql/$ver/$cluster/start.conf"
        if [ -f "$conf" ] && grep -qx 'auto' "$conf"; then
            sed -i 's/^auto$/manual/' "$conf" || true
        fi
    done < <(pg_lsclusters -h 2>/dev/null || true)
fi

for svc in pgbouncer prometheus prometheus-pgbouncer-exporter prometheus-node-exporter; do
    if [ -x "/etc/init.d/$svc" ]; then
        service "$svc" stop >/dev/null 2>&1 || true
        if command -v update-rc.d >/dev/null 2>&1; then
            update-rc.d "$svc" disable >/dev/null 2>&1 || true
        fi
    fi
done

# The PostgreSQL binaries live outside PATH on Debian; the scripts use full
# paths, but say where they are for humans.
if [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
    echo "deps.sh: /usr/lib/postgresql/15/bin/postgres missing after install" >&2
    exit 1
fi
echo "deps.sh: ok"
