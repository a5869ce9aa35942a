"""The Prometheus endpoint (/metrics), and real tools against pgcarrier:
Debian's prometheus-pgbouncer-exporter reading the admin console, and
Debian's prometheus server scraping /metrics (docs/behaviour.md,
"Metrics")."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

import psycopg
import pytest

import harness
from console_helpers import (CONSOLE_SETTINGS, Holder, console, fetch, metric, parse_metrics,
                             pool_row, show, wait_until)


@pytest.fixture
def metrics_carrier(carrier):
    def make(**settings):
        conf = dict(CONSOLE_SETTINGS, stats_listen_port=harness.free_port())
        conf.update(settings)
        c = carrier(**conf)
        c.metrics_url = "http://127.0.0.1:%d/metrics" % conf["stats_listen_port"]
        return c
    return make


def scrape(c):
    status, headers, body = fetch(c.metrics_url)
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse_metrics(body)


def test_metrics_match_show_pools(pg, metrics_carrier):
    c = metrics_carrier(pool_size=8)
    adm = console(c)
    h = Holder(pg, c, 20)
    try:
        wait_until(lambda: (pool_row(adm) or {}).get("cl_waiting") == 12, what="12 waiting")
        row = pool_row(adm)
        samples, types = scrape(c)
        labels = dict(database="app", user="app")
        assert metric(samples, "pgcarrier_pool_clients", state="active", **labels) == row["cl_active"] == 8
        assert metric(samples, "pgcarrier_pool_clients", state="waiting", **labels) == row["cl_waiting"] == 12
        assert metric(samples, "pgcarrier_pool_servers", state="active", **labels) == row["sv_active"] == 8
        assert metric(samples, "pgcarrier_pool_servers", state="idle", **labels) == row["sv_idle"] == 0
        assert metric(samples, "pgcarrier_pool_size", **labels) == 8
        assert metric(samples, "pgcarrier_pool_maxwait_seconds", **labels) >= 0
        assert metric(samples, "pgcarrier_clients", state="waiting") == 12
        assert metric(samples, "pgcarrier_clients", state="console") == 1
        assert metric(samples, "pgcarrier_servers", state="active") == 8
        assert sum(v for n, ls, v in samples if n == "pgcarrier_worker_clients") == 21
        assert types["pgcarrier_pool_clients"] == "gauge"
    finally:
        h.release()
        h.close()
    assert not h.errors
    wait_until(lambda: metric(scrape(c)[0], "pgcarrier_transactions_total", database="app") == 20,
               what="20 transactions")
    samples, types = scrape(c)
    assert metric(samples, "pgcarrier_queries_total", database="app") == 20
    assert metric(samples, "pgcarrier_server_assignments_total", database="app") == 20
    assert metric(samples, "pgcarrier_client_wait_seconds_count", database="app") == 20
    assert metric(samples, "pgcarrier_client_wait_seconds_bucket", database="app", le="+Inf") == 20
    assert metric(samples, "pgcarrier_client_wait_seconds_sum", database="app") > 0
    assert metric(samples, "pgcarrier_pool_exhaustions_total", database="app") >= 1
    assert types["pgcarrier_client_wait_seconds"] == "histogram"
    assert types["pgcarrier_transactions_total"] == "counter"
    stats = [r for r in show(adm, "STATS") if r["database"] == "app"][0]
    assert metric(samples, "pgcarrier_received_bytes_total", database="app") == stats["total_received"]
    adm.close()


def test_metrics_pins_errors_workers_build(pg, metrics_carrier):
    c = metrics_carrier()
    conn = c.connect()
    conn.execute("LISTEN some_channel")
    with pytest.raises(psycopg.errors.DivisionByZero):
        conn.execute("SELECT 1/0")
    samples, types = wait_until(lambda: (lambda s: s if metric(s[0], "pgcarrier_pinned_clients",
                                                               reason="listen") == 1 else None)(scrape(c)),
                                what="a client pinned by LISTEN")
    assert metric(samples, "pgcarrier_pins_total", database="app", reason="listen") == 1
    assert metric(samples, "pgcarrier_pool_pinned_clients", database="app", user="app") == 1
    assert metric(samples, "pgcarrier_errors_total", database="app", **{"class": "22"}) == 1
    assert metric(samples, "pgcarrier_build_info", version="0.1.0") == 1
    assert metric(samples, "pgcarrier_workers") == 2
    assert metric(samples, "pgcarrier_worker_events_total", worker="0") > 0
    assert metric(samples, "pgcarrier_worker_cpu_seconds_total", worker="1") >= 0
    assert metric(samples, "pgcarrier_database_paused", database="app") == 0
    # HEAD: the headers only.
    req = "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", int(c.metrics_url.split(":")[2].split("/")[0])), timeout=10)
    s.sendall(req.encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b""
    conn.close()


def _port(c):
    return int(urllib.parse.urlparse(c.metrics_url).port)


def _raw(c, data, timeout=10):
    s = socket.create_connection(("127.0.0.1", _port(c)), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return out


def test_bad_http_requests(pg, metrics_carrier):
    c = metrics_carrier()
    app = c.connect()
    assert _raw(c, b"garbage\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert _raw(c, b"GET metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert _raw(c, b"GET /metrics SPDY/9\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert _raw(c, b"\x00\xff\x16\x03\x01\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert _raw(c, b"GET /nope HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 ")
    assert _raw(c, b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").startswith(b"HTTP/1.1 405 ")
    assert _raw(c, b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 431 ")
    assert _raw(c, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200 ")
    assert _raw(c, b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200 ")
    # Pooling never noticed.
    assert app.execute("SELECT 1").fetchone() == (1,)
    app.close()


def test_slow_and_silent_clients(pg, metrics_carrier):
    """More silent connections than the endpoint serves at once: pooling
    goes on, and they are closed at the endpoint's time limit, after which
    /metrics answers again."""
    c = metrics_carrier()
    app = c.connect()
    silent = [socket.create_connection(("127.0.0.1", _port(c)), timeout=30) for _ in range(20)]
    slow = socket.create_connection(("127.0.0.1", _port(c)), timeout=30)
    slow.sendall(b"GET /metr")
    for _ in range(50):
        assert app.execute("SELECT 1").fetchone() == (1,)
    # Each is closed by the endpoint (recv sees the end), not by us.
    for s in silent[:16]:
        assert s.recv(100) in (b"",)
    status, _, _ = fetch(c.metrics_url, timeout=30)
    assert status == 200
    for s in silent:
        s.close()
    slow.close()
    assert app.execute("SELECT 1").fetchone() == (1,)
    app.close()


def test_metrics_off_by_default(carrier):
    c = carrier()
    assert "metrics endpoint" not in c.log()


def test_metrics_port_in_use_refuses_start(carrier):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    c = carrier(start=False, stats_listen_port=port)
    with pytest.raises(harness.HarnessError, match="stats_listen_addr"):
        c.start()
    s.close()


def test_prometheus_pgbouncer_exporter(pg, carrier):
    """Debian's prometheus-pgbouncer-exporter, unmodified, pointed at the
    console as it would be at PgBouncer's, exports its metrics."""
    exe = shutil.which("prometheus-pgbouncer-exporter")
    if exe is None:
        pytest.fail("prometheus-pgbouncer-exporter is not installed (scripts/deps.sh)")
    # One line per server database: the exporter labels SHOW DATABASES' rows by that.
    dbs = {k: v for k, v in harness.standard_databases(pg).items() if k in ("app", "postgres")}
    c = carrier(admin_users="pgbouncer", databases=dbs)
    conn = c.connect()
    conn.execute("SELECT 1")
    port = harness.free_port()
    log = tempfile.NamedTemporaryFile(prefix="pgc-exporter-", suffix=".log", delete=False)
    proc = subprocess.Popen([exe, "--pgbouncer-host", c.host, "--pgbouncer-port", str(c.port),
                             "--pgbouncer-user", "pgbouncer", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        body = wait_until(lambda: (lambda r: r[2] if r and r[0] == 200 else None)(
            _try_fetch("http://127.0.0.1:%d/metrics" % port)), what="the exporter answering")
        samples, _ = parse_metrics(body)
        assert metric(samples, "pgbouncer_active_clients", database="app", user="app") == 1
        assert metric(samples, "pgbouncer_waiting_clients", database="app", user="app") == 0
        assert metric(samples, "pgbouncer_requests_total", database="app") >= 1
        assert metric(samples, "pgbouncer_received_bytes_total", database="app") > 0
        assert metric(samples, "pgbouncer_pool_size", database="app") == 8
        assert metric(samples, "pgbouncer_pools") == 1
        assert metric(samples, "pgbouncer_used_clients") == 2      # app, and the exporter
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    with open(log.name) as f:
        out = f.read()
    os.unlink(log.name)
    assert "Traceback" not in out and "ERROR" not in out, out
    conn.close()


def _try_fetch(url):
    try:
        return fetch(url, timeout=5)
    except OSError:
        return None


@pytest.mark.timeout(180)
def test_prometheus_scrapes_metrics(pg, metrics_carrier):
    """Debian's prometheus server scrapes /metrics; its API returns the series."""
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.fail("prometheus is not installed (scripts/deps.sh)")
    c = metrics_carrier()
    conn = c.connect()
    conn.execute("SELECT 1")
    d = tempfile.mkdtemp(prefix="pgc-prometheus-")
    port = harness.free_port()
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: pgcarrier\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % _port(c))
    log = open(os.path.join(d, "prometheus.log"), "w")
    proc = subprocess.Popen([exe, "--config.file=" + os.path.join(d, "prometheus.yml"),
                             "--storage.tsdb.path=" + os.path.join(d, "data"),
                             "--web.listen-address=127.0.0.1:%d" % port],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=d)
    api = "http://127.0.0.1:%d/api/v1/" % port
    try:
        def query(q):
            r = _try_fetch(api + "query?query=" + urllib.parse.quote(q))
            if not r or r[0] != 200:
                return None
            res = json.loads(r[2])["data"]["result"]
            return res or None

        res = wait_until(lambda: query("pgcarrier_build_info"), timeout=120, interval=0.5,
                         what="prometheus to have scraped pgcarrier")
        assert res[0]["metric"]["version"] == "0.1.0" and res[0]["value"][1] == "1"
        res = wait_until(lambda: query('pgcarrier_transactions_total{database="app"}'), timeout=60,
                         interval=0.5, what="the transactions series")
        assert float(res[0]["value"][1]) >= 1
        res = query('pgcarrier_pool_servers{database="app",state="idle"}')
        assert res and float(res[0]["value"][1]) == 1
        targets = json.loads(_try_fetch(api + "targets")[2])["data"]["activeTargets"]
        assert targets[0]["health"] == "up", targets
        assert targets[0]["lastError"] == ""
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(d, ignore_errors=True)
    conn.close()
