"""The harness' own checks that other tests rely on: which builds count as
sanitizer builds, that sanitizer reports in a daemon log are found, and
that server_connections() counts pgcarrier's server connections exactly.
"""

import os
import subprocess
import sys

import pytest

import harness


@pytest.mark.parametrize("value,san,tsan", [("0", False, False), ("", False, False),
                                            ("1", True, False), ("thread", True, True)])
def test_pgcarrier_san_values(value, san, tsan):
    code = "import harness; print(harness.SAN, harness.TSAN)"
    env = dict(os.environ, PGCARRIER_SAN=value)
    r = subprocess.run([sys.executable, "-c", code], env=env, text=True,
                       cwd=os.path.dirname(__file__), stdout=subprocess.PIPE, timeout=30)
    assert r.stdout.split() == [str(san), str(tsan)]


@pytest.mark.parametrize("report", [
    "==1==ERROR: AddressSanitizer: heap-use-after-free on address 0x1",
    "src/engine/x.c:10:5: runtime error: signed integer overflow",
    "==================\nWARNING: ThreadSanitizer: data race (pid=1)\n  Read of size 4",
    "FATAL: ThreadSanitizer: unexpected memory mapping 0x1-0x2",
])
def test_sanitizer_reports_are_found(report):
    c = harness.Pgcarrier()
    try:
        with open(c.logfile, "w") as f:
            f.write("LOG: pgcarrier started\n" + report + "\nLOG: pgcarrier stopped\n")
        assert report in c.sanitizer_report()
        with open(c.logfile, "w") as f:
            f.write("LOG: pgcarrier started\nLOG: pgcarrier stopped\n")
        assert c.sanitizer_report() == ""
    finally:
        c.cleanup(check=False)


@pytest.mark.timeout(60)
def test_server_connections_counts_exactly(carrier, pg):
    """Session mode: each client holds one server connection, over the
    Unix socket (app) or TCP (md5db); they stay in the pool afterwards."""
    c = carrier(pool_mode="session", pool_size=10)
    assert harness.server_connections(c, pg) == 0
    held = [c.connect() for _ in range(3)] + [c.connect(db="md5db")]
    try:
        for conn in held:
            conn.execute("SELECT 1")
        assert harness.server_connections(c, pg) == 4
        with harness.ServerConnectionMonitor(c, pg, interval=0.01) as mon:
            held.append(c.connect(db="md5db"))
            held[-1].execute("SELECT 1")
        assert mon.error is None and 4 <= mon.max <= 5, (mon.error, mon.samples)
        assert harness.server_connections(c, pg) == 5
    finally:
        for conn in held:
            conn.close()
    # idle in the pool now, still pgcarrier's connections
    assert harness.server_connections(c, pg) == 5
