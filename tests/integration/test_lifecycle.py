"""Lifecycle tests: what happens to clients, server connections and the
daemon itself when clients die, the server restarts or goes away, the
configuration is reloaded, the daemon is stopped, and timeouts/limits fire.

Every expectation comes from docs/behaviour.md.  All tests run against a real
PostgreSQL 15 (harness.PgServer) through a real pgcarrier daemon.
"""

import os
import select
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid

import psycopg
import pytest

import harness
from harness import RawConn, cstr, parse_error

PY = "/usr/bin/python3"


# ---------------------------------------------------------------------------
# helpers (local to this file on purpose: harness.py belongs to someone else)
# ---------------------------------------------------------------------------

def marker(tag):
    return "lc-%s-%s" % (tag, uuid.uuid4().hex[:12])


def scratch_count(pg, val):
    return int(pg.sql("SELECT count(*) FROM scratch WHERE val = '%s'" % val,
                      db="app"))


def scratch_delete(pg, val):
    try:
        pg.sql("DELETE FROM scratch WHERE val LIKE '%s%%'" % val, db="app")
    except Exception:
        pass


def one(conn, sql, params=None):
    return conn.execute(sql, params).fetchone()


def assert_clean_session(conn, what="next client"):
    """The server session behind conn is not inside someone else's
    transaction: first statement of a fresh implicit transaction, no xid."""
    row = one(conn, "SELECT now() = statement_timestamp(), "
                    "pg_current_xact_id_if_assigned() IS NULL")
    assert row == (True, True), (
        "%s runs inside a leftover transaction (now()=statement_timestamp(), "
        "no xid) = %r" % (what, row))


def backend_state(pg, pid):
    return pg.sql("SELECT coalesce(state, '<none>') FROM pg_stat_activity "
                  "WHERE pid = %d" % pid)


def wait_until(pred, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        time.sleep(interval)


def raw_login(c, user="app", db="app", timeout=10, **params):
    """Log in over a raw socket.  Returns (RawConn, None) on success or
    (None, error-fields) when the login is answered with an ErrorResponse."""
    rc = RawConn(c.host, c.port, timeout=timeout)
    body = struct.pack("!I", 196608)
    for k, v in dict(params, user=user, database=db).items():
        body += cstr(k) + cstr(v)
    body += b"\0"
    rc.send_raw(struct.pack("!I", len(body) + 4) + body)
    while True:
        t, p = rc.recv()
        if t == "E":
            rc.sock.close()
            return None, parse_error(p)
        if t == "Z":
            return rc, None


def raw_query(rc, sql):
    """Simple query; returns (error fields or None, rows as lists of str,
    transaction status letter, or None when the connection was closed after
    a FATAL error)."""
    rc.send("Q", cstr(sql))
    err = None
    rows = []
    while True:
        try:
            t, p = rc.recv()
        except (EOFError, ConnectionResetError):
            if err is not None and err.get("V", err.get("S")) == "FATAL":
                return err, rows, None
            raise
        if t == "E" and err is None:
            err = parse_error(p)
        elif t == "D":
            rows.append([None if v is None else v.decode()
                         for v in harness.data_row(p)])
        elif t == "Z":
            return err, rows, chr(p[0])


def expect_error_then_close(rc, code, timeout=5.0):
    """Read from rc (without sending) until an ErrorResponse arrives; check
    its SQLSTATE; then the connection must be closed by pgcarrier."""
    rc.sock.settimeout(timeout)
    fields = None
    while fields is None:
        try:
            t, p = rc.recv()
        except socket.timeout:
            pytest.fail("no ErrorResponse %s within %.1f s" % (code, timeout))
        except (EOFError, ConnectionResetError):
            pytest.fail("connection closed without ErrorResponse %s" % code)
        if t == "E":
            fields = parse_error(p)
    assert fields.get("C") == code, "expected SQLSTATE %s, got %r" % (code, fields)
    assert_closed(rc.sock, timeout)
    return fields


def assert_closed(sock, timeout=5.0):
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except socket.timeout:
        pytest.fail("connection still open %.1f s after the FATAL error" % timeout)
    except ConnectionResetError:
        return
    assert data == b"", "unexpected data after FATAL error: %r" % data[:80]


def rst_close(sock):
    """Close abruptly: RST instead of FIN, no Terminate message."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def terminate_backends_like(pg, pattern):
    try:
        pg.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               "WHERE query LIKE '%%%s%%' AND pid <> pg_backend_pid()" % pattern)
    except Exception:
        pass


def sqlstate(exc):
    return getattr(exc, "sqlstate", None)


# ---------------------------------------------------------------------------
# clients that die
# ---------------------------------------------------------------------------

_KILLED_CLIENT = r"""
import sys, time, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True, prepare_threshold=None)
conn.execute("BEGIN")
conn.execute("INSERT INTO scratch(client, seq, val) VALUES (1, 1, %s)", (sys.argv[2],))
pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
print(pid, flush=True)
time.sleep(120)
"""


def _start_killed_client(c, val):
    p = subprocess.Popen([PY, "-c", _KILLED_CLIENT, c.dsn(), val],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    r, _, _ = select.select([p.stdout], [], [], 20)
    if not r:
        p.kill()
        p.wait()
        pytest.fail("client process did not report its backend pid: %s"
                    % p.stderr.read().decode(errors="replace"))
    line = p.stdout.readline().decode().strip()
    if not line.isdigit():
        p.wait(5)
        pytest.fail("client process failed: %r %s"
                    % (line, p.stderr.read().decode(errors="replace")))
    return p, int(line)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["sigkill-process", "socket-rst"])
def test_client_killed_mid_transaction_is_rolled_back(carrier, pg, how):
    """A client that vanishes inside a transaction: its transaction is rolled
    back, and (pool_size=1) the next client gets the same backend, clean."""
    c = carrier(pool_mode="transaction", pool_size=1)
    val = marker("killtx")
    try:
        if how == "sigkill-process":
            proc, pid_a = _start_killed_client(c, val)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        else:
            rc, err = raw_login(c)
            assert err is None, err
            for sql in ("BEGIN",
                        "INSERT INTO scratch(client, seq, val) VALUES (1, 1, '%s')" % val):
                e, _, st = raw_query(rc, sql)
                assert e is None and st == "T", (sql, e, st)
            e, rows, st = raw_query(rc, "SELECT pg_backend_pid()")
            assert e is None
            pid_a = int(rows[0][0])
            rst_close(rc.sock)

        with c.connect() as b:
            pid_b = one(b, "SELECT pg_backend_pid()")[0]
            assert pid_b == pid_a, (
                "pool_size=1: the next client should get the same server "
                "backend after a rollback (got %d, was %d)" % (pid_b, pid_a))
            assert_clean_session(b)
            n = one(b, "SELECT count(*) FROM scratch WHERE val = %s", (val,))[0]
            assert n == 0, "the dead client's INSERT is visible to the next client"
            # and it is really usable: a transaction of its own works
            b.execute("BEGIN")
            b.execute("INSERT INTO scratch(client, seq, val) VALUES (2, 1, %s)",
                      (val + "-b",))
            b.execute("COMMIT")
        assert scratch_count(pg, val) == 0, "killed client's transaction was committed"
        assert scratch_count(pg, val + "-b") == 1
        st = wait_until(lambda: backend_state(pg, pid_a) != "idle in transaction", 5)
        assert st, "backend %d left idle in transaction" % pid_a
    finally:
        scratch_delete(pg, val)


@pytest.mark.timeout(60)
def test_client_killed_while_query_running(carrier, pg):
    """A client killed while its query runs (pg_sleep): the server connection
    is closed (or cancelled and cleaned), never handed on dirty, and the next
    client is served promptly."""
    c = carrier(pool_mode="transaction", pool_size=1)
    val = marker("killq")
    try:
        rc, err = raw_login(c)
        assert err is None, err
        raw_query(rc, "BEGIN")
        e, _, _ = raw_query(rc, "INSERT INTO scratch(client, seq, val) "
                                "VALUES (1, 1, '%s')" % val)
        assert e is None, e
        _, rows, _ = raw_query(rc, "SELECT pg_backend_pid()")
        pid_a = int(rows[0][0])
        rc.send("Q", cstr("SELECT pg_sleep(25) /* %s */" % val))
        time.sleep(0.7)
        rst_close(rc.sock)

        # the next client must be served well before the 25 s sleep ends
        t0 = time.monotonic()
        b, err = raw_login(c, timeout=12)
        assert err is None, err
        try:
            e, rows, st = raw_query(
                b, "SELECT pg_backend_pid(), now() = statement_timestamp(), "
                   "pg_current_xact_id_if_assigned() IS NULL, "
                   "(SELECT count(*) FROM scratch WHERE val = '%s')" % val)
        except socket.timeout:
            pytest.fail("next client not served within 12 s: the server "
                        "connection of the killed client was waited for")
        elapsed = time.monotonic() - t0
        assert e is None, e
        pid_b, fresh, noxid, n = rows[0]
        assert (fresh, noxid) == ("t", "t"), (
            "next client runs inside the killed client's transaction: %r" % rows)
        assert n == "0", "killed client's INSERT visible to next client"
        assert st == "I"
        assert elapsed < 10, "next client waited %.1f s" % elapsed
        if int(pid_b) == pid_a:
            # reused: only acceptable if the query was cancelled and rolled back
            assert backend_state(pg, pid_a) in ("active", "idle")
        b.close()
        assert scratch_count(pg, val) == 0
    finally:
        terminate_backends_like(pg, val)
        scratch_delete(pg, val)


@pytest.mark.timeout(60)
def test_session_mode_runs_server_reset_query(carrier, pg):
    """Session mode: SET, temp table, prepared statements (SQL and protocol
    level), advisory lock and LISTEN of client A are gone for client B on the
    same backend."""
    c = carrier(pool_mode="session", pool_size=1)
    default_work_mem = pg.sql("SHOW work_mem")
    a = c.connect(prepare_threshold=0)
    a.execute("SET work_mem = '7777kB'")
    a.execute("CREATE TEMP TABLE lc_tmp_a(x int)")
    a.execute("PREPARE lc_sqlprep AS SELECT 42")
    a.execute("SELECT %s::int + 1", (1,))  # protocol-level named statement
    a.execute("SELECT pg_advisory_lock(424242)")
    a.execute("LISTEN lc_chan_a")
    assert one(a, "SELECT count(*) FROM pg_prepared_statements")[0] >= 2
    pid_a = one(a, "SELECT pg_backend_pid()")[0]
    a.close()

    with c.connect() as b:
        pid_b = one(b, "SELECT pg_backend_pid()")[0]
        assert pid_b == pid_a, "pool_size=1 session mode: backend not reused"
        assert one(b, "SHOW work_mem")[0] == default_work_mem, "SET leaked"
        assert one(b, "SELECT to_regclass('lc_tmp_a')")[0] is None, "temp table leaked"
        assert one(b, "SELECT count(*) FROM pg_prepared_statements")[0] == 0, \
            "prepared statements leaked"
        assert one(b, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                      "AND pid = pg_backend_pid()")[0] == 0, "advisory lock leaked"
        assert one(b, "SELECT count(*) FROM pg_listening_channels()")[0] == 0, \
            "LISTEN leaked"
        assert_clean_session(b)


# ---------------------------------------------------------------------------
# the server restarts / goes away
# ---------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_postgres_restart(carrier, fresh_pg):
    """Server restarted under pgcarrier: idle clients go on; a client in the
    middle of a query gets an ErrorResponse (not a hang); a client inside a
    transaction gets an error on its next statement; new clients work."""
    c = carrier(pool_mode="transaction", pool_size=4, server=fresh_pg,
                server_login_retry=1)
    idle = c.connect()
    assert one(idle, "SELECT 1")[0] == 1
    intx = c.connect()
    intx.execute("BEGIN")
    intx.execute("SELECT 1")
    busy = c.connect()
    result = {}

    def run_busy():
        try:
            busy.execute("SELECT pg_sleep(30)")
            result["ok"] = True
        except psycopg.Error as e:
            result["error"] = e

    th = threading.Thread(target=run_busy, daemon=True)
    th.start()
    # the same over a raw socket, to see exactly what pgcarrier sends
    rbusy, err = raw_login(c, timeout=15)
    assert err is None, err
    rbusy.send("Q", cstr("SELECT pg_sleep(30)"))
    time.sleep(0.7)
    fresh_pg.restart("fast")
    th.join(15)
    assert not th.is_alive(), "client in the middle of a query hangs after a server restart"
    assert "error" in result, "pg_sleep(30) 'succeeded' across a server restart"
    errors = []
    try:
        while True:
            t, p = rbusy.recv()
            if t == "E":
                errors.append(parse_error(p))
            assert t in ("T", "E", "N"), "unexpected message %r after server restart" % t
    except (EOFError, ConnectionResetError):
        pass
    except socket.timeout:
        pytest.fail("raw mid-query client: connection not closed 15 s after the "
                    "server restart; errors so far: %r" % errors)
    assert errors, "mid-query client: connection closed without an ErrorResponse"
    assert errors[0].get("C") in ("57P01", "08006") and \
        errors[0].get("V") == "FATAL", errors[0]
    # (the count of ErrorResponses is checked at the end)

    # the client whose transaction died with the server: an error, not success
    with pytest.raises(psycopg.Error):
        intx.execute("SELECT 1")

    # the idle client goes on: its next query works
    assert one(idle, "SELECT 2")[0] == 2, "idle client broken by server restart"
    assert one(idle, "SELECT count(*) FROM items")[0] == 100
    with c.connect() as n:
        assert one(n, "SELECT 3")[0] == 3
    assert c.running
    for x in (idle, intx, busy):
        x.close()
    assert len(errors) == 1, (
        "mid-query client got %d ErrorResponses (after a FATAL the connection "
        "must just close): %r" % (len(errors), [(f.get("C"), f.get("M")) for f in errors]))


@pytest.mark.timeout(60)
def test_server_down_then_back(carrier, fresh_pg):
    """Server stopped: queries get a clear error (08001 or the server's own
    message) quickly; once it is back, new clients work without restarting
    pgcarrier."""
    c = carrier(pool_mode="transaction", pool_size=2, server=fresh_pg,
                server_login_retry=1, server_connect_timeout=3)
    pid = c.pid
    idle = c.connect()
    assert one(idle, "SELECT 1")[0] == 1
    fresh_pg.stop("fast")

    t0 = time.monotonic()
    rc, err = raw_login(c, timeout=10)
    if err is None:
        err, _, _ = raw_query(rc, "SELECT 1")
        rc.close()
    elapsed = time.monotonic() - t0
    assert err is not None, "a query succeeded with the server down"
    assert err.get("C") in ("08001", "57P03", "08006"), (
        "server down: expected 08001 (or the server's own error), got %r" % err)
    assert err.get("M"), err
    assert elapsed < 8, "error took %.1f s" % elapsed

    # the already connected idle client also gets an error, not a hang
    t0 = time.monotonic()
    with pytest.raises(psycopg.Error):
        idle.execute("SELECT 1")
    assert time.monotonic() - t0 < 8
    idle.close()

    fresh_pg.start()
    last = [None]

    def works():
        try:
            with psycopg.connect(c.dsn(connect_timeout=5), autocommit=True,
                                 prepare_threshold=None) as n:
                return one(n, "SELECT count(*) FROM items")[0] == 100
        except psycopg.Error as e:
            last[0] = e
            return False

    assert wait_until(works, 15, 0.3), (
        "clients still fail 15 s after the server came back: %s" % last[0])
    assert c.pid == pid and c.running


def _cpu_seconds(pid):
    """utime + stime of a process, from /proc/<pid>/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _log_time(line):
    """Seconds since midnight of a pgcarrier log line ('YYYY-MM-DD HH:MM:SS.mmm UTC ...')."""
    hms = line.split(" ")[1]
    h, m, sec = hms.split(":")
    return int(h) * 3600 + int(m) * 60 + float(sec)


@pytest.mark.timeout(90)
def test_server_down_backoff_fast_errors(carrier, fresh_pg):
    """PostgreSQL stopped while clients keep coming: pgcarrier does not retry
    hot.  After a failed login it waits server_login_retry, doubled after
    each further failure (at most 4x), one login at a time; meanwhile
    clients get the login's own error at once (08001 in libpq's words), and
    the log line is rate-limited.  Once the server is back, the next login
    works and clients are served, with no restart of pgcarrier."""
    retry = 0.5
    c = carrier(pool_mode="transaction", pool_size=2, server=fresh_pg,
                server_login_retry=retry, log_connections=0,
                log_disconnections=0)
    pid = c.pid
    for db in ("app", "md5db"):
        with c.connect(db=db) as w:
            assert one(w, "SELECT 1")[0] == 1
    fresh_pg.stop("fast")
    time.sleep(0.3)    # pgcarrier notices its idle servers closing

    # 5 clients keep trying the Unix-socket pool for 4 s
    log0 = len(c.log().splitlines())
    cpu0, t0 = _cpu_seconds(pid), time.monotonic()
    results, lock = [], threading.Lock()

    def client(until):
        while time.monotonic() < until:
            start = time.monotonic()
            try:
                rc, err = raw_login(c, db="app", timeout=10)
            except (OSError, EOFError) as e:
                rc, err = None, {"exception": repr(e)}
            if rc is not None:
                err, _, _ = raw_query(rc, "SELECT 1")
                rc.close()
            with lock:
                results.append((time.monotonic() - start, err))
            time.sleep(0.05)

    until = time.monotonic() + 4
    ths = [threading.Thread(target=client, args=(until,), daemon=True)
           for _ in range(5)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(30)
    wall = time.monotonic() - t0
    cpu = _cpu_seconds(pid) - cpu0
    lines = c.log().splitlines()[log0:]
    failed = [l for l in lines if "could not log in to server for app/app" in l]
    lat = sorted(r[0] for r in results)
    p95 = lat[int(len(lat) * 0.95)]
    print("server down, %d client attempts in %.1f s: daemon CPU %.2f s, "
          "%d new log lines, %d server logins logged, error latency p95 "
          "%.1f ms max %.1f ms" % (len(results), wall, cpu, len(lines),
                                   len(failed), p95 * 1000, lat[-1] * 1000))
    print("\n".join(failed))

    assert c.running, "pgcarrier died while the server was down"
    assert len(results) >= 50, "clients made only %d attempts" % len(results)
    for _, err in results:
        assert err is not None, "a query succeeded with the server down"
        assert err.get("V") == "FATAL" and err.get("C") == "08001", err
        assert err.get("M", "").startswith(
            'could not connect to server on socket "%s/.s.PGSQL.%d"'
            % (fresh_pg.sockdir, fresh_pg.port)), err
    assert p95 < 0.5 and lat[-1] < 3, (
        "errors are not fast: p95 %.3f s, max %.3f s" % (p95, lat[-1]))
    # the hot loop burned more CPU than wall time; a few hundred refused
    # clients cost little
    assert cpu < 0.3 * wall, "daemon used %.2f s of CPU in %.1f s" % (cpu, wall)
    assert len(lines) < 30, "%d log lines in %.1f s:\n%s" % (
        len(lines), wall, "\n".join(lines[:40]))
    # backoff: 0.5, 1, 2, 2 s between logins (4 or 5 in 4 s), each one
    # logged. The first clients may start up to pool_size logins at once,
    # before any has failed: those fail together (one round, same wait);
    # after that, one login at a time.
    rounds = []
    for line in failed:
        delay = float(line.rsplit("next attempt in ", 1)[1].split(" s ")[0])
        if rounds and _log_time(line) - rounds[-1][0] < 0.1:
            rounds[-1][1].append(delay)
        else:
            rounds.append((_log_time(line), [delay]))
    assert 3 <= len(rounds) <= 6, failed
    assert len(rounds[0][1]) <= 2 and all(len(r[1]) == 1 for r in rounds[1:]), (
        "logins ran more than one at a time after the first failure:\n%s" % "\n".join(failed))
    delays = [round(max(r[1]), 2) for r in rounds]
    assert delays == [0.5, 1, 2, 2, 2, 2][:len(delays)], delays
    for i in range(1, len(rounds)):
        gap = rounds[i][0] - rounds[i - 1][0]
        assert gap >= delays[i - 1] - 0.02, (
            "login %d came %.3f s after the one before, not waiting %.1f s"
            % (i, gap, delays[i - 1]))

    # the TCP pool says so in libpq's words too, and at once the second time
    for _ in range(2):
        t1 = time.monotonic()
        rc, err = raw_login(c, db="md5db", timeout=10)
        if rc is not None:
            err, _, _ = raw_query(rc, "SELECT 1")
            rc.close()
        assert err is not None and err.get("C") == "08001", err
        assert err.get("M", "").startswith(
            'could not connect to server at "127.0.0.1", port %d: '
            % fresh_pg.port), err
        assert time.monotonic() - t1 < 2

    fresh_pg.start()
    t_back = time.monotonic()
    last = [None]

    def served(db):
        try:
            with psycopg.connect(c.dsn(db=db, connect_timeout=5),
                                 autocommit=True, prepare_threshold=None) as n:
                return one(n, "SELECT count(*) FROM items")[0] == 100
        except psycopg.Error as e:
            last[0] = e
            return False

    # the next login after the wait (at most 4 x 0.5 s) works
    assert wait_until(lambda: served("app"), 10, 0.1), (
        "clients still fail 10 s after the server came back: %s" % last[0])
    back_after = time.monotonic() - t_back
    assert wait_until(lambda: served("md5db"), 10, 0.1), last[0]
    print("served again %.2f s after the server came back" % back_after)
    assert back_after < 4 * retry + 2.5
    assert "server login for app/app works again after" in c.log()
    assert c.pid == pid and c.running


# ---------------------------------------------------------------------------
# reload
# ---------------------------------------------------------------------------

def _count_app_backends(direct):
    return direct.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND datname = 'app' AND pid <> pg_backend_pid() "
        "AND coalesce(application_name, '') NOT LIKE 'pgc-direct%' "
        "AND coalesce(application_name, '') NOT LIKE 'pgc-harness%'").fetchone()[0]


@pytest.mark.timeout(60)
def test_reload_raises_pool_size_under_load(carrier, pg):
    c = carrier(pool_mode="transaction", pool_size=2)
    stop = threading.Event()
    errors = []
    counts = [0] * 7
    conns = [c.connect() for _ in range(7)]

    def load(i):
        try:
            while not stop.is_set():
                conns[i].execute("SELECT pg_sleep(0.15)")
                counts[i] += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=load, args=(i,), daemon=True)
               for i in range(7)]
    for t in threads:
        t.start()
    direct = pg.connect()
    try:
        seen_before = []
        t_end = time.monotonic() + 2.5
        while time.monotonic() < t_end:
            seen_before.append(_count_app_backends(direct))
            time.sleep(0.05)
        assert max(seen_before) <= 2, "pool_size=2 exceeded: %r" % max(seen_before)
        assert max(seen_before) == 2, "load did not use the pool: %r" % seen_before
        before = list(counts)

        c.reload(default_pool_size=5, wait=0.2)
        seen_after = []
        t_end = time.monotonic() + 4
        while time.monotonic() < t_end:
            seen_after.append(_count_app_backends(direct))
            time.sleep(0.05)
        assert max(seen_after) == 5, (
            "after reload to pool_size 5, server connections used: max %d"
            % max(seen_after))
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        direct.close()
    assert not errors, "clients failed during reload: %r" % errors
    assert all(counts[i] > before[i] for i in range(7)), (
        "some client made no progress after the reload: %r -> %r" % (before, counts))
    for x in conns:
        assert one(x, "SELECT 1")[0] == 1
        x.close()


@pytest.mark.timeout(60)
def test_reload_add_and_remove_database(carrier, pg):
    base = {k: v for k, v in harness.standard_databases(pg).items() if k != "*"}
    c = carrier(pool_mode="transaction", pool_size=2, databases=base)
    _, err = raw_login(c, db="lc_newdb")
    assert err and err.get("C") == "3D000", err

    added = dict(base, lc_newdb={"host": pg.sockdir, "port": pg.port,
                                 "dbname": "app"})
    c.reload(databases=added)
    # a raw client, so that a hang fails in seconds, not at the test timeout
    x, err = raw_login(c, db="lc_newdb")
    assert err is None, "added database not reachable after reload: %r" % err
    e, rows, _ = raw_query(x, "SELECT current_database()")
    assert e is None and rows == [["app"]], (e, rows)

    c.reload(databases=base)
    _, err = raw_login(c, db="lc_newdb")
    assert err is not None, "removed database still accepts new connections"
    assert err.get("C") == "3D000", err
    assert 'database "lc_newdb" does not exist' in err.get("M", ""), err
    # the client connected before the removal goes on
    for sql, want in (("SELECT 1", [["1"]]), ("BEGIN", []),
                      ("SELECT count(*) FROM items", [["100"]]), ("COMMIT", []),
                      ("SELECT 2", [["2"]])):
        try:
            e, rows, _ = raw_query(x, sql)
        except socket.timeout:
            pytest.fail("client connected to a removed database: %r got no "
                        "answer within 10 s" % sql)
        assert e is None and rows == want, (
            "client connected to a removed database: %r -> %r %r" % (sql, e, rows))
    x.close()
    with c.connect() as y:
        assert one(y, "SELECT 1")[0] == 1


@pytest.mark.timeout(60)
def test_reload_bad_file_keeps_old_config(carrier, pg):
    c = carrier(pool_mode="transaction", pool_size=2)
    keep = c.connect()
    with open(c.config_path) as f:
        good = f.read().splitlines()
    # a bad key on line 3, and the app database removed: if anything of this
    # file were applied, "app" would disappear
    bad = []
    for ln in good:
        if ln.startswith("app ="):
            continue
        bad.append(ln)
        if ln.strip() == "[pgcarrier]":
            bad.append("lc_no_such_setting = 1")
    assert bad[2] == "lc_no_such_setting = 1"
    log_before = len(c.log())
    with open(c.config_path, "w") as f:
        f.write("\n".join(bad) + "\n")
    os.kill(c.pid, signal.SIGHUP)

    def logged():
        return "%s:3:" % c.config_path in c.log()[log_before:] or \
            "pgcarrier.ini:3:" in c.log()[log_before:]

    assert wait_until(logged, 5), (
        "bad file on reload not logged as FILE:LINE: -- log tail:\n%s"
        % c.log()[-2000:])
    assert c.running, "daemon died on a bad reload"
    assert one(keep, "SELECT 1")[0] == 1
    with c.connect(db="app") as n:
        assert one(n, "SELECT count(*) FROM items")[0] == 100

    # a good file afterwards is applied
    dbs = dict(c.databases, lc_afterfix={"host": pg.sockdir, "port": pg.port,
                                         "dbname": "app"})
    c.reload(databases=dbs)
    with c.connect(db="lc_afterfix") as n:
        assert one(n, "SELECT current_database()")[0] == "app"
    keep.close()


# ---------------------------------------------------------------------------
# signals
# ---------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_sigint_graceful_shutdown(carrier, pg):
    c = carrier(pool_mode="transaction", pool_size=4)
    val = marker("sigint")
    try:
        a = c.connect()
        a.execute("BEGIN")
        a.execute("INSERT INTO scratch(client, seq, val) VALUES (1, 1, %s)", (val,))
        b = c.connect()
        assert one(b, "SELECT 1")[0] == 1

        c.kill(signal.SIGINT)
        time.sleep(0.5)
        assert c.running, "SIGINT exited while a client was inside a transaction"

        # new connections are refused
        refused = False
        try:
            rc, err = raw_login(c, timeout=5)
            if err is not None:
                refused = True
                assert err.get("C") in ("57P01", "57P03", "08006", "53300"), err
            else:
                rc.close()
        except (ConnectionRefusedError, ConnectionResetError, EOFError):
            refused = True
        except socket.timeout:
            pytest.fail("a connection made after SIGINT was accepted and left "
                        "without an answer for 5 s")
        assert refused, "a new connection was accepted after SIGINT"

        # the open transaction can finish
        a.execute("INSERT INTO scratch(client, seq, val) VALUES (1, 2, %s)", (val,))
        a.execute("COMMIT")

        rc_exit = c.wait(10)
        assert rc_exit == 0, "exit status after SIGINT: %r" % rc_exit
        assert scratch_count(pg, val) == 2, "transaction finished during shutdown was lost"
        with pytest.raises(psycopg.Error):
            a.execute("SELECT 1")
        with pytest.raises(psycopg.Error):
            b.execute("SELECT 1")
        log = c.log()
        assert "Sanitizer" not in log
        a.close()
        b.close()
    finally:
        scratch_delete(pg, val)


@pytest.mark.timeout(60)
def test_sigint_idle_clients_get_57P01(carrier):
    """With no transaction open, SIGINT disconnects clients with FATAL 57P01
    and exits 0 promptly."""
    c = carrier(pool_mode="transaction", pool_size=2)
    rc, err = raw_login(c)
    assert err is None, err
    raw_query(rc, "SELECT 1")
    t0 = time.monotonic()
    c.kill(signal.SIGINT)
    f = expect_error_then_close(rc, "57P01", timeout=8)
    assert f.get("S") == "FATAL", f
    assert c.wait(10) == 0
    assert time.monotonic() - t0 < 8


@pytest.mark.timeout(60)
def test_sigterm_exits_promptly(carrier, pg):
    c = carrier(pool_mode="transaction", pool_size=2)
    val = marker("sigterm")
    try:
        a = c.connect()
        a.execute("BEGIN")
        a.execute("INSERT INTO scratch(client, seq, val) VALUES (1, 1, %s)", (val,))
        b = c.connect()
        b.execute("SELECT 1")
        t0 = time.monotonic()
        c.kill(signal.SIGTERM)
        code = c.wait(5)
        elapsed = time.monotonic() - t0
        assert code is not None, "still running 5 s after SIGTERM"
        assert elapsed < 3, "SIGTERM took %.1f s" % elapsed
        assert code not in (-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS), code
        # the server side of the open transaction goes away, uncommitted
        assert harness.wait_no_backends(pg, 10), "server backends left behind"
        assert scratch_count(pg, val) == 0
        a.close()
        b.close()
    finally:
        scratch_delete(pg, val)


# ---------------------------------------------------------------------------
# timeouts and limits
# ---------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_query_wait_timeout(carrier):
    c = carrier(pool_mode="transaction", pool_size=1, query_wait_timeout=1)
    a = c.connect()
    a.execute("BEGIN")
    a.execute("SELECT 1")
    t0 = time.monotonic()
    rc, err = raw_login(c, timeout=10)
    if err is None:
        t0 = time.monotonic()
        rc.send("Q", cstr("SELECT 1"))
        err = expect_error_then_close(rc, "57014", timeout=8)
    else:
        assert err.get("C") == "57014", err
    waited = time.monotonic() - t0
    assert 0.7 <= waited <= 4, "query_wait_timeout=1 fired after %.2f s" % waited
    assert "query_wait_timeout" in err.get("M", ""), err
    assert err.get("S") == "FATAL", err
    # the holder is unaffected and, once done, others get the server
    a.execute("COMMIT")
    with c.connect() as b:
        assert one(b, "SELECT 1")[0] == 1
    a.close()


@pytest.mark.timeout(60)
def test_client_idle_timeout(carrier):
    c = carrier(pool_mode="transaction", pool_size=2, client_idle_timeout=1)
    busy = c.connect()
    rc, err = raw_login(c)
    assert err is None, err
    raw_query(rc, "SELECT 1")
    t0 = time.monotonic()
    # an active client (query every 0.3 s) is not idle and stays connected
    for _ in range(8):
        assert one(busy, "SELECT 1")[0] == 1
        time.sleep(0.3)
    f = expect_error_then_close(rc, "57P05", timeout=5)
    assert time.monotonic() - t0 >= 0.8
    assert f.get("S") == "FATAL"
    assert "idle-session timeout" in f.get("M", ""), f
    assert one(busy, "SELECT 2")[0] == 2
    busy.close()


@pytest.mark.timeout(60)
def test_idle_transaction_timeout(carrier, pg):
    c = carrier(pool_mode="transaction", pool_size=1, idle_transaction_timeout=1)
    val = marker("idletx")
    try:
        rc, err = raw_login(c)
        assert err is None, err
        raw_query(rc, "BEGIN")
        e, _, st = raw_query(rc, "INSERT INTO scratch(client, seq, val) "
                                 "VALUES (1, 1, '%s')" % val)
        assert e is None and st == "T"
        t0 = time.monotonic()
        f = expect_error_then_close(rc, "25P03", timeout=6)
        assert time.monotonic() - t0 >= 0.7
        assert f.get("S") == "FATAL"
        assert "idle-in-transaction timeout" in f.get("M", ""), f
        with c.connect() as b:
            assert_clean_session(b, "client after an idle-in-transaction timeout")
            assert one(b, "SELECT count(*) FROM scratch WHERE val = %s", (val,))[0] == 0
        assert scratch_count(pg, val) == 0
    finally:
        scratch_delete(pg, val)


@pytest.mark.timeout(60)
def test_max_client_conn(carrier):
    c = carrier(pool_mode="transaction", pool_size=2, max_client_conn=3)
    conns = [c.connect() for _ in range(3)]
    for x in conns:
        assert one(x, "SELECT 1")[0] == 1
    _, err = raw_login(c)
    assert err is not None, "a 4th client was accepted with max_client_conn=3"
    assert err.get("C") == "53300", err
    assert err.get("S") == "FATAL", err
    assert "sorry, too many clients already" in err.get("M", ""), err
    for i, x in enumerate(conns):
        assert one(x, "SELECT %s::int", (i,))[0] == i
    # a slot freed is a slot available
    conns.pop().close()

    def can_connect():
        rc, e = raw_login(c)
        if rc is not None:
            rc.close()
        return e is None

    assert wait_until(can_connect, 5, 0.2), "slot not freed after a client left"
    for x in conns:
        x.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("begin", ["BEGIN",
                                   "START TRANSACTION ISOLATION LEVEL REPEATABLE READ"])
def test_statement_mode_refuses_transaction_blocks(carrier, pg, begin):
    c = carrier(pool_mode="statement", pool_size=1)
    val = marker("stmt")
    try:
        rc, err = raw_login(c)
        assert err is None, err
        e, _, st = raw_query(rc, begin)
        assert e is not None, "%s accepted in statement mode" % begin
        assert e.get("C") == "0A000", e
        assert "transaction blocks are not allowed in statement pooling mode" \
            in e.get("M", ""), e
        assert st == "I", "ReadyForQuery after the refusal should be 'I', got %r" % st
        # the connection stays usable and the server was rolled back
        e, rows, st = raw_query(rc, "SELECT now() = statement_timestamp(), "
                                    "pg_current_xact_id_if_assigned() IS NULL")
        assert e is None and rows == [["t", "t"]] and st == "I", (e, rows, st)
        e, _, st = raw_query(rc, "INSERT INTO scratch(client, seq, val) "
                                 "VALUES (1, 1, '%s')" % val)
        assert e is None and st == "I", e
        rc.close()
        assert scratch_count(pg, val) == 1

        # psycopg without autocommit starts a transaction block: refused too
        x = c.connect(autocommit=False)
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            x.execute("INSERT INTO scratch(client, seq, val) VALUES (2, 1, %s)",
                      (val + "-x",))
        x.rollback()
        x.autocommit = True
        assert one(x, "SELECT 1")[0] == 1
        assert_clean_session(x)
        x.close()
        assert scratch_count(pg, val + "-x") == 0
    finally:
        scratch_delete(pg, val)
