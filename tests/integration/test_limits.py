"""Pool limits and server connection life cycle settings, against a real
PostgreSQL 15: max_db_connections, max_user_connections, min_pool_size,
reserve_pool_size/reserve_pool_timeout, server_idle_timeout,
server_lifetime, and pool_mode per database and per user.

Each test observes the server side through pg_stat_activity, so that a limit
is checked where it matters: the number of PostgreSQL backends.

The last part is about clients, not servers: connections still logging in
(max_login_clients, max_login_clients_per_addr) must not lock logged-in
ones out, and running out of file descriptors must not make a hot loop.
"""
import asyncio
import os
import signal
import socket
import struct
import subprocess
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


# ---------------------------------------------------------------------------
# clients still logging in
# ---------------------------------------------------------------------------

SILENT_SOURCE = "127.0.0.2"     # another loopback address: silent sockets come from there


def silent_sockets(c, n, source=SILENT_SOURCE):
    """n TCP connections to c that never send a byte."""
    socks = []
    for _ in range(n):
        s = socket.create_connection((c.host, c.port), timeout=5, source_address=(source, 0))
        socks.append(s)
    return socks


def answered(s, wait=0.5):
    """What a silent socket got: None (nothing yet: held), b'' (closed), or bytes."""
    s.settimeout(wait)
    try:
        return s.recv(4096)
    except socket.timeout:
        return None
    except ConnectionResetError:
        return b""


def close_all(socks):
    for s in socks:
        s.close()


@pytest.mark.timeout(60)
def test_sockets_logging_in_do_not_count_against_max_client_conn(carrier):
    """40 sockets that never send their startup packet used to take 40 of
    max_client_conn's slots until client_login_timeout."""
    c = carrier(max_client_conn=5, client_login_timeout=30)
    socks = silent_sockets(c, 40)
    try:
        time.sleep(0.3)
        assert all(answered(s, 0.05) is None for s in socks), "silent sockets were closed"
        conns = [c.connect() for _ in range(5)]
        for i, x in enumerate(conns):
            assert x.execute("SELECT %s::int", (i,)).fetchone()[0] == i
        with pytest.raises(psycopg.OperationalError) as ei:
            c.connect()
        assert "sorry, too many clients already" in str(ei.value)
        for x in conns:
            x.close()
    finally:
        close_all(socks)


def startup(user="app", database="app"):
    body = struct.pack("!I", 196608) + b"user\0%s\0database\0%s\0\0" % (user.encode(), database.encode())
    return struct.pack("!I", len(body) + 4) + body


def refusal(s, wait=3):
    """Send s's startup packet; the FATAL it gets (fields), or None."""
    s.sendall(startup())
    data = b""
    s.settimeout(wait)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    if data[:1] != b"E":
        return None
    return harness.parse_error(data[5:])


@pytest.mark.timeout(60)
def test_login_bound_per_source_address(carrier):
    c = carrier(max_login_clients_per_addr=20, client_login_timeout=30)
    socks = silent_sockets(c, 20)
    try:
        time.sleep(0.3)
        assert all(answered(s, 0.05) is None for s in socks)
        # past the bound: told why after the startup packet, as PostgreSQL
        # tells "too many clients" (libpq sends SSLRequest first)
        for s in silent_sockets(c, 10):
            socks.append(s)
            f = refusal(s)
            assert f and (f["S"], f["C"]) == ("FATAL", "53300"), f
            assert f["M"] == 'too many connections from host "%s" still logging in' % SILENT_SOURCE, f
        # and one that says nothing is closed soon, not held
        extra = silent_sockets(c, 1)[0]
        socks.append(extra)
        t0 = time.monotonic()
        assert answered(extra, 5) == b"", "a refused silent socket was held"
        assert time.monotonic() - t0 < 3
        held = socks[:20]
        # other addresses are not affected
        for i in range(5):
            with c.connect() as x:
                assert x.execute("SELECT %s::int", (i,)).fetchone()[0] == i
        # a slot freed is a slot available, for that address too
        close_all(held[:5])
        time.sleep(0.3)
        again = silent_sockets(c, 5)
        socks += again
        time.sleep(0.3)
        assert all(answered(s, 0.05) is None for s in again)
    finally:
        close_all(socks)


def rst_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("burst", [8, 40])
def test_clients_that_hung_up_do_not_count_against_the_address_bound(carrier, burst):
    """A burst of connections from one host that hang up (FIN, RST, or a
    startup packet and FIN) before pgcarrier has read any of them, then one
    live client: the live one logs in. The daemon is stopped (SIGSTOP) while
    the burst arrives, so that it accepts the dead connections and the live
    one together, as a loaded daemon does; they used to count against
    max_login_clients_per_addr until their ends were read, and the live
    client was refused with 53300 for them. 8 dead fill the bound and the
    refused client waits for its startup packet; 40 fill the refused
    clients' slots too, so the live one is looked at as it is accepted."""
    c = carrier(workers=1, max_login_clients_per_addr=5, client_login_timeout=30)
    os.kill(c.pid, signal.SIGSTOP)
    try:
        for i in range(burst):
            s = socket.create_connection((c.host, c.port), timeout=5,
                                         source_address=(SILENT_SOURCE, 0))
            if i % 3 == 0:
                rst_close(s)
            else:
                if i % 3 == 1:
                    s.sendall(startup())
                s.close()
        live = socket.create_connection((c.host, c.port), timeout=5,
                                        source_address=(SILENT_SOURCE, 0))
        live.sendall(startup())
    finally:
        os.kill(c.pid, signal.SIGCONT)
    try:
        live.settimeout(5)
        first = live.recv(1)
        assert first == b"R", "the live client was not let in: %r" % (first + live.recv(4096))
    finally:
        live.close()
    with c.connect() as x:
        assert x.execute("SELECT 1").fetchone()[0] == 1


@pytest.mark.timeout(60)
def test_global_login_bound_leaves_clients_in_the_backlog(carrier):
    """At max_login_clients a worker stops accepting: the next client waits
    (no error), and logs in as soon as a slot is free."""
    c = carrier(workers=1, max_login_clients=10, max_login_clients_per_addr=0, client_login_timeout=30)
    socks = silent_sockets(c, 10)
    out = {}

    def client():
        try:
            with c.connect() as x:
                out["value"] = x.execute("SELECT 41 + 1").fetchone()[0]
        except Exception as e:          # noqa: BLE001 - reported below
            out["error"] = e

    th = threading.Thread(target=client, daemon=True)
    try:
        time.sleep(0.3)
        th.start()
        th.join(1.5)
        assert th.is_alive(), "a client past max_login_clients was served: %r" % out
        socks.pop().close()
        th.join(5)
        assert not th.is_alive() and out.get("value") == 42, out
    finally:
        close_all(socks)


@pytest.mark.timeout(90)
def test_default_bounds_400_silent_sockets_lock_nobody_out(carrier):
    """The issue's case, with the default bounds: 400 silent sockets from
    one address, max_client_conn = 100; real clients log in at once."""
    c = carrier(max_client_conn=100, client_login_timeout=60)
    socks = silent_sockets(c, 400)
    try:
        t0 = time.monotonic()
        conns = [c.connect() for _ in range(20)]
        for x in conns:
            assert x.execute("SELECT 1").fetchone()[0] == 1
            x.close()
        assert time.monotonic() - t0 < 10
        assert "max_login_clients_per_addr" in c.log()
    finally:
        close_all(socks)


@pytest.mark.timeout(120)
def test_default_bounds_take_an_asyncpg_pool_of_100_at_once(carrier):
    import asyncpg
    c = carrier(pool_size=8)

    async def go():
        pool = await asyncpg.create_pool(min_size=100, max_size=100, statement_cache_size=0,
                                         **c.asyncpg_kwargs())
        try:
            conns = [await pool.acquire() for _ in range(100)]
            vals = await asyncio.gather(*(x.fetchval("SELECT $1::int", i) for i, x in enumerate(conns)))
            for x in conns:
                await pool.release(x)
            return vals
        finally:
            await pool.close()

    assert asyncio.run(go()) == list(range(100))


@pytest.mark.timeout(120)
def test_default_bounds_take_pgbench_with_1000_clients(carrier):
    c = carrier(pool_size=8)
    script = os.path.join(c.dir, "one.sql")
    with open(script, "w") as f:
        f.write("SELECT 1;\n")
    r = subprocess.run([os.path.join(harness.PG_BINDIR, "pgbench"), "-n", "-h", c.host,
                        "-p", str(c.port), "-U", "app", "-c", "1000", "-j", "2", "-t", "2",
                        "-f", script, "app"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=100)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "number of transactions actually processed: 2000/2000" in r.stdout, r.stdout[-2000:]


# ---------------------------------------------------------------------------
# out of file descriptors
# ---------------------------------------------------------------------------

def limited(c, nofile):
    """Make c start its daemon under RLIMIT_NOFILE = nofile (soft and hard):
    a wrapper that execs it through prlimit, so the pid stays the daemon's."""
    wrapper = os.path.join(c.dir, "pgcarrier-nofile-%d" % nofile)
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec prlimit --nofile=%d:%d -- %s "$@"\n' % (nofile, nofile, c.binary))
    os.chmod(wrapper, 0o755)
    c.binary = wrapper
    return c


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.timeout(120)
def test_out_of_descriptors_refuses_clearly_without_a_hot_loop(pg, pgc_bin):
    c = limited(harness.Pgcarrier(pgc_bin, settings={
        "pool_mode": "transaction", "default_pool_size": 2, "max_client_conn": 1000,
        "workers": 1}, databases=harness.standard_databases(pg)), 64)
    held = []
    try:
        c.start()
        assert "RLIMIT_NOFILE is 64, too low for max_client_conn = 1000" in c.log(), c.log()
        refused = None
        for _ in range(100):
            try:
                x = c.connect()
                x.execute("SELECT 1")
                held.append(x)
            except psycopg.OperationalError as e:
                refused = e
                break
        assert refused is not None, "100 clients under a limit of 64 descriptors"
        assert "sorry, too many clients already" in str(refused), refused
        assert len(held) > 20, "only %d clients before the limit" % len(held)

        # knocking on, and a socket that sends nothing: refused at once, no spin
        cpu0, lines0 = cpu_seconds(c.pid), c.log().count("\n")
        for _ in range(30):
            t0 = time.monotonic()
            with pytest.raises(psycopg.OperationalError) as ei:
                c.connect()
            assert "sorry, too many clients already" in str(ei.value), ei.value
            assert time.monotonic() - t0 < 3
        s = socket.create_connection((c.host, c.port), timeout=5)
        t0 = time.monotonic()
        assert answered(s, 5) == b"", "a silent socket was held while out of descriptors"
        assert time.monotonic() - t0 < 3
        s.close()
        s = socket.create_connection((c.host, c.port), timeout=5)
        f = refusal(s)
        s.close()
        assert f and (f["C"], f["M"]) == ("53300", "sorry, too many clients already"), f
        assert f.get("D") == "pgcarrier is out of file descriptors.", f
        time.sleep(2)
        spent = cpu_seconds(c.pid) - cpu0
        lines = c.log().count("\n") - lines0
        assert spent < 1.0, "%.2f s of CPU in ~3 s out of descriptors" % spent
        assert lines <= 40, "%d log lines in ~3 s out of descriptors:\n%s" % (lines, c.log()[-3000:])

        # descriptors come back: so does service
        for x in held[:5]:
            x.close()
        del held[:5]
        time.sleep(0.3)
        with c.connect() as x:
            assert x.execute("SELECT 2").fetchone()[0] == 2
        for x in held:
            assert x.execute("SELECT 3").fetchone()[0] == 3
    finally:
        for x in held:
            x.close()
        c.cleanup(check=True)
