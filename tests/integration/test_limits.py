"""Pool limits and server connection life cycle settings, against a real
PostgreSQL 15: max_db_connections, max_user_connections, min_pool_size,
reserve_pool_size/reserve_pool_timeout, server_idle_timeout,
server_lifetime, and pool_mode per database and per user.

Each test observes the server side through pg_stat_activity, so that a limit
is checked where it matters: the number of PostgreSQL backends.
"""
import threading
import time

import psycopg
import pytest

import harness


def backends_max_during(pg, fn, db=None, user=None, interval=0.05):
    """Run fn() while sampling server_backends; return (fn result, max seen)."""
    seen = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                seen[0] = max(seen[0], harness.server_backends(pg, db=db, user=user))
            except Exception:
                pass
            time.sleep(interval)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        result = fn()
    finally:
        stop.set()
        t.join(5)
    return result, seen[0]


def run_clients(carrier, specs, queries=20):
    """specs: list of (db, user). Each client runs short transactions; returns errors."""
    errors = []

    def one(db, user, i):
        try:
            with carrier.connect(db=db, user=user) as conn:
                for j in range(queries):
                    with conn.transaction():
                        v = conn.execute("SELECT %s::int FROM pg_sleep(0.01)",
                                         (i * 1000 + j,)).fetchone()[0]
                        if v != i * 1000 + j:
                            errors.append("client %d got %r" % (i, v))
        except Exception as e:          # noqa: BLE001 - reported below
            errors.append("client %d (%s/%s): %r" % (i, db, user, e))

    threads = [threading.Thread(target=one, args=(db, user, i))
               for i, (db, user) in enumerate(specs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


@pytest.mark.timeout(90)
def test_max_db_connections_holds_across_pools(carrier, pg):
    # Two pools on database "app" (users app and postgres), 8 servers each at
    # most, but no more than 3 server connections to the database in all.
    c = carrier(pool_size=8, max_db_connections=3)
    specs = [("app", "app")] * 6 + [("app", "postgres")] * 6
    errors, most = backends_max_during(pg, lambda: run_clients(c, specs), db="app")
    assert errors == []
    assert 1 <= most <= 3, "max_db_connections=3 but %d backends seen" % most


@pytest.mark.timeout(90)
def test_max_user_connections_holds_across_databases(carrier, pg):
    c = carrier(pool_size=8, max_user_connections=2)
    specs = [("app", "app")] * 5 + [("postgres", "app")] * 5
    errors, most = backends_max_during(pg, lambda: run_clients(c, specs), user="app")
    assert errors == []
    assert 1 <= most <= 2, "max_user_connections=2 but %d backends seen" % most


def wait_for(pred, timeout=10, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


@pytest.mark.timeout(60)
def test_min_pool_size_opens_servers_ahead_of_demand(carrier, pg):
    c = carrier(pool_size=8, min_pool_size=3)
    with c.connect() as conn:      # the pool exists once a client has logged in
        assert conn.execute("SELECT 1").fetchone()[0] == 1
    assert wait_for(lambda: harness.server_backends(pg, db="app", user="app") == 3, 10), \
        "min_pool_size=3: %d backends" % harness.server_backends(pg, db="app", user="app")


@pytest.mark.timeout(60)
def test_reserve_pool_serves_a_client_that_waited_too_long(carrier, pg):
    c = carrier(pool_size=1, reserve_pool_size=1, reserve_pool_timeout=0.3,
                query_wait_timeout=20)
    holder = c.connect(autocommit=False)
    holder.execute("SELECT 1")      # holds the only regular server: transaction open
    try:
        with c.connect() as other:
            t0 = time.monotonic()
            assert other.execute("SELECT 2").fetchone()[0] == 2
            waited = time.monotonic() - t0
        assert waited < 5, "reserve pool did not step in (waited %.1f s)" % waited
        assert harness.server_backends(pg, db="app", user="app") <= 2
        assert "using reserve pool" in c.log()
    finally:
        holder.rollback()
        holder.close()


@pytest.mark.timeout(60)
def test_no_reserve_pool_means_waiting(carrier, pg):
    c = carrier(pool_size=1, query_wait_timeout=1)
    holder = c.connect(autocommit=False)
    holder.execute("SELECT 1")
    try:
        with c.connect() as other:
            with pytest.raises(psycopg.Error) as ei:
                other.execute("SELECT 2")
            # FATAL, then the connection closes: libpq may report the closing
            # rather than the SQLSTATE, but the message is pgcarrier's.
            assert ei.value.sqlstate == "57014" or "query_wait_timeout" in str(ei.value)
        assert harness.server_backends(pg, db="app", user="app") == 1
    finally:
        holder.rollback()
        holder.close()


@pytest.mark.timeout(60)
def test_server_idle_timeout_closes_idle_servers(carrier, pg):
    c = carrier(pool_size=4, server_idle_timeout=1)
    with c.connect() as conn:
        conn.execute("SELECT 1")
    assert harness.server_backends(pg, db="app", user="app") >= 1
    assert wait_for(lambda: harness.server_backends(pg, db="app", user="app") == 0, 10), \
        "idle server still open after server_idle_timeout"


@pytest.mark.timeout(60)
def test_server_lifetime_replaces_old_servers(carrier, pg):
    c = carrier(pool_size=1, server_lifetime=1)
    with c.connect() as conn:
        first = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == first
        time.sleep(1.5)
        conn.execute("SELECT 1")    # this use is past the lifetime: closed after it
        later = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    assert later != first, "server kept past server_lifetime"


@pytest.mark.timeout(60)
def test_pool_mode_per_database_and_per_user(carrier, pg):
    # Global transaction mode; database "sess" is in session mode; user
    # "postgres" is in session mode everywhere. In session mode a client keeps
    # its server while idle, so a second client of a pool of 1 must wait.
    dbs = harness.standard_databases(pg)
    dbs["sess"] = {"host": pg.sockdir, "port": pg.port, "dbname": "app",
                   "pool_mode": "session", "pool_size": 1}
    dbs["txn"] = {"host": pg.sockdir, "port": pg.port, "dbname": "app", "pool_size": 1}
    c = carrier(pool_mode="transaction", databases=dbs, query_wait_timeout=1,
                users={"postgres": "pool_mode=session"})

    def second_client_waits(db, user):
        with c.connect(db=db, user=user) as a:
            a.execute("SELECT 1")
            with c.connect(db=db, user=user) as b:
                try:
                    b.execute("SELECT 2")
                    return False
                except psycopg.Error as e:
                    assert e.sqlstate == "57014" or "query_wait_timeout" in str(e), e
                    return True

    assert second_client_waits("sess", "app"), "pool_mode=session on the database line ignored"
    assert not second_client_waits("txn", "app"), "transaction mode kept an idle client's server"
    assert second_client_waits("txn", "postgres"), "pool_mode=session in [users] ignored"


@pytest.mark.timeout(60)
def test_statement_mode_pipelined_block_is_refused_not_hung(carrier, pg):
    # BEGIN and a statement behind it in one write: the second statement runs
    # inside the block before pgcarrier sees the block. The client must get a
    # clear error (not wait forever), and the server must come back clean.
    c = carrier(pool_mode="statement", pool_size=1)
    rc = harness.RawConn(c.host, c.port)
    rc.startup("app", "app")
    rc.send_raw(harness.msg("Q", harness.cstr("BEGIN")) +
                harness.msg("Q", harness.cstr("INSERT INTO kv VALUES ('stmt-pipe', 'x')")))
    codes = []
    try:
        while True:
            t, p = rc.recv()
            if t == "E":
                codes.append(harness.parse_error(p).get("C"))
    except (EOFError, ConnectionResetError):
        pass
    assert "0A000" in codes, codes
    with c.connect() as conn:
        assert conn.execute("SELECT count(*) FROM kv WHERE k = 'stmt-pipe'").fetchone()[0] == 0
        assert conn.execute("SELECT now() = statement_timestamp()").fetchone()[0] is True
