"""pytest fixtures for the pgcarrier integration suite (see harness.py).

Fixtures
--------
pg          session-scoped harness.PgServer shared by all tests.  Do not stop
            or reconfigure it; use ``fresh_pg`` for that.
fresh_pg    function-scoped PgServer of its own (costs ~2 s: initdb).
carrier     factory, function-scoped:
                carrier(pool_mode='transaction', pool_size=8, server=None,
                        databases=None, extra_databases=None, users=None,
                        auth_file=None, start=True, **settings)
            -> harness.Pgcarrier (started unless start=False) in front of
            ``server`` (default: ``pg``) with harness.standard_databases()
            (replaced by ``databases``, extended by ``extra_databases``),
            default_pool_size=pool_size, max_client_conn=2000 and any other
            [pgcarrier] settings given as keywords.  At teardown every daemon
            made is stopped (SIGINT, SIGKILL after 10 s); the test errors if a
            daemon crashed, exited non-zero on SIGINT without the test
            having stopped it itself, or (PGCARRIER_SAN=1) logged a
            sanitizer report.  Teardown then waits (<= 10 s) until the
            server has no pgcarrier backends left, so tests do not see each
            other's connections.
pgc_bin     the daemon binary path (fails the test when it does not exist).

Markers
-------
@pytest.mark.timeout(seconds)   per-test wall clock limit (SIGALRM),
                                default 120 s, setup/teardown included.
"""

import os
import signal

import pytest

import harness

DEFAULT_TIMEOUT = 120


def pytest_configure(config):
    config.addinivalue_line("markers",
                            "timeout(seconds): per-test wall-clock limit")


class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _test_timeout(request):
    m = request.node.get_closest_marker("timeout")
    seconds = int(m.args[0]) if m and m.args else DEFAULT_TIMEOUT

    def on_alarm(signum, frame):
        raise TestTimeout("test exceeded its %d s time limit" % seconds)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def pg():
    server = harness.PgServer("pg")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def fresh_pg():
    server = harness.PgServer("freshpg")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def pgc_bin():
    b = harness.pgcarrier_bin()
    if not os.access(b, os.X_OK):
        pytest.fail("pgcarrier binary %s not built (run make, or set PGCARRIER_BIN)" % b)
    return b


@pytest.fixture
def carrier(request, pgc_bin):
    made = []
    servers = []

    def make(pool_mode="transaction", pool_size=8, server=None, databases=None,
             extra_databases=None, users=None, auth_file=None, start=True,
             **settings):
        srv = server
        if srv is None:
            srv = request.getfixturevalue("pg")
            srv.ensure_running()
        if srv not in servers:
            servers.append(srv)
        dbs = dict(databases) if databases is not None else \
            harness.standard_databases(srv)
        if extra_databases:
            dbs.update(extra_databases)
        conf = {"pool_mode": pool_mode, "default_pool_size": pool_size,
                "max_client_conn": 2000}
        conf.update(settings)
        c = harness.Pgcarrier(pgc_bin, settings=conf, databases=dbs,
                              users=users, auth_file=auth_file)
        made.append(c)
        if start:
            c.start()
        return c

    yield make

    errors = []
    for c in made:
        try:
            c.cleanup(check=True)
        except harness.HarnessError as e:
            errors.append("pgcarrier on port %d: %s" % (c.port, e))
    for srv in servers:
        try:
            if srv.is_running():
                harness.wait_no_backends(srv, 10)
        except Exception:
            pass
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture(scope="module")
def pgbench_db(pg):
    """pg with pgbench's tables (scale 1) in database app."""
    harness.pgbench_init(pg)
    return pg
