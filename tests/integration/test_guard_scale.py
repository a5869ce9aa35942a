"""The session-state guard at scale: prepared statements with 1000 clients
over a pool of 8 server connections (transaction mode).

The issue: "pgbench -M prepared, asyncpg (which prepares everything),
psycopg with prepare=True, and JDBC with its default prepareThreshold must
all work at 1000 clients over a pool of 8."  One test per client kind:

test_pgbench_prepared   pgbench -M prepared -c 1000 -j 2 -t 5 with a script
                        that checks every answer itself (a wrong one makes
                        the client abort: pgbench exits non-zero).
test_asyncpg            1000 asyncpg connections in one event loop with the
                        default statement cache (every query is a named
                        statement), plus Connection.prepare() and
                        executemany() inside a transaction.
test_psycopg            1000 psycopg AsyncConnections, prepare_threshold=0
                        (every query is prepared on its first execution).
test_jdbc               a Java program (compiled at test time against
                        /usr/share/java/postgresql.jar) with 1000 threads,
                        one connection each, default prepareThreshold (5):
                        each statement runs ITERS times, so from its 5th
                        execution on pgjdbc uses a named statement S_<n>.

Every test holds all 1000 client connections open at the same time while
they work (the clients wait for each other after connecting, and again
before closing), checks each client's answers against its own number, wants
zero errors, and samples the server backends pgcarrier holds (at most 8).

Proof that the statements really were named prepared statements: every SQL
text carries a marker of its own; after the run the test opens 8 clients
through pgcarrier, each in a transaction (so they hold the 8 server
connections), and reads pg_prepared_statements on each backend.  The
statements must be there under pgcarrier's names (pgc_<n>), no client name
(P_0, __asyncpg_stmt_1__, _pg3_0, S_1) may be, and the executions PostgreSQL
counted for them (generic_plans + custom_plans, summed over the backends)
must be exactly the executions the clients made of named statements.
"""

import asyncio
import os
import random
import re
import shutil
import subprocess
import time

import pytest

import harness

pytestmark = pytest.mark.timeout(240)

N = 1000                 # client connections, all open at once
POOL = 8                 # server connections
CONNECT_CONCURRENCY = 100  # connection attempts in flight at once
PGBENCH = os.path.join(harness.PG_BINDIR, "pgbench")
JDBC_JAR = "/usr/share/java/postgresql.jar"


def new_tag():
    return random.randint(1, 2 ** 31 - 2)


def check_backends(mon):
    """At least 3 samples, and between 1 and POOL server backends seen."""
    assert mon.error is None, "backend sampler failed: %r" % (mon.error,)
    assert len(mon.samples) >= 3, "too few backend samples: %r" % mon.samples
    assert 1 <= mon.max <= POOL, \
        "server backends seen: max %d (pool_size %d)" % (mon.max, POOL)


def server_statements(c, marker):
    """{backend pid: [(name, statement, executions)]} of the named prepared
    statements whose text contains marker, on every server connection of the
    pool (one client in a transaction per server connection), and the names
    of statements not named by pgcarrier found on any of them."""
    conns = []
    found, foreign = {}, []
    try:
        for _ in range(POOL):
            k = c.connect()
            k.execute("BEGIN")
            k.execute("SELECT 1")
            conns.append(k)
        for k in conns:
            pid = k.execute("SELECT pg_backend_pid()").fetchone()[0]
            assert pid not in found, \
                "two clients in a transaction on one backend %d" % pid
            found[pid] = [tuple(r) for r in k.execute(
                "SELECT name, statement, generic_plans + custom_plans "
                "FROM pg_prepared_statements WHERE strpos(statement, %s) > 0",
                [marker]).fetchall()]
            foreign += [(pid, r[0], r[1]) for r in k.execute(
                "SELECT name, statement FROM pg_prepared_statements "
                "WHERE name !~ '^pgc_[0-9]+$'").fetchall()]
        for k in conns:
            k.execute("ROLLBACK")
    finally:
        for k in conns:
            try:
                k.close()
            except Exception:
                pass
    return found, foreign


def check_prepared(c, marker, expected):
    """expected: {text fragment (contains marker): executions of it as a
    named statement, over all clients}.  See the module docstring."""
    found, foreign = server_statements(c, marker)
    assert len(found) == POOL, "inspected %d backends, want %d" % (len(found), POOL)
    assert foreign == [], "statements not named by pgcarrier on the servers: %r" \
        % foreign[:10]
    problems = []
    for frag, want in expected.items():
        rows = [(pid, name, stmt, n) for pid, rs in found.items()
                for name, stmt, n in rs if frag in stmt]
        bad = [r for r in rows if not re.match(r"^pgc_[0-9]+$", r[1])]
        if bad:
            problems.append("%s: statements not named pgc_<n>: %r" % (frag, bad))
        if want and not rows:
            problems.append("%s: prepared on no server connection" % frag)
        total = sum(r[3] for r in rows)
        if total != want:
            problems.append("%s: servers executed it %d times as a named "
                            "statement, clients did %d (%d backends have it)"
                            % (frag, total, want, len(rows)))
    assert not problems, "\n".join(problems) + "\nall found: %r" % found
    return found


def log_tail(c, n=3000):
    return c.log()[-n:]


# ---------------------------------------------------------------------------
# pgbench -M prepared
# ---------------------------------------------------------------------------

# Only single-statement (autocommit) transactions: pgbench prepares a command
# with a synchronous PQprepare the first time a client runs it, which blocks
# its whole thread; if other clients of that thread sat in open transactions
# holding all 8 server connections, that would be a deadlock of pgbench's
# making (the same with any transaction pooler).  Every answer is checked by
# the script: a wrong one divides by zero in a meta command, which aborts the
# client and makes pgbench exit with status 2.
PGBENCH_SCRIPT = r"""\set id random(1, 100)
SELECT qty AS qty, :client_id::int * 2 AS dbl, :id::int AS echo FROM items WHERE id = :id /* %(m)s-a */ \gset
\if :qty != :id * 10 or :dbl != :client_id * 2 or :echo != :id
\set fail 1 / 0
\endif
SELECT :client_id::int + :id::int AS s, count(*) AS n FROM items WHERE id <= :id /* %(m)s-b */ \gset
\if :s != :client_id + :id or :n != :id
\set fail 1 / 0
\endif
"""


def test_pgbench_prepared(carrier, pg, tmp_path):
    if not os.access(PGBENCH, os.X_OK):
        pytest.skip("pgbench not found at %s" % PGBENCH)
    TX = 5
    marker = "scale-pgbench-%d" % new_tag()
    script = tmp_path / "check.sql"
    script.write_text(PGBENCH_SCRIPT % {"m": marker})
    c = carrier(pool_mode="transaction", pool_size=POOL)
    cmd = [PGBENCH, "-n", "-M", "prepared", "-c", str(N), "-j", "2",
           "-t", str(TX), "-f", str(script),
           "-h", c.host, "-p", str(c.port), "-U", "app", "app"]
    with harness.BackendMonitor(pg) as mon:
        t0 = time.monotonic()
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=180)
        took = time.monotonic() - t0
    out, err = r.stdout, r.stderr
    ctx = "pgbench exit %d\n--- stdout ---\n%s\n--- stderr ---\n%s\n" \
          "--- pgcarrier log ---\n%s" % (r.returncode, out[-3000:], err[-3000:],
                                          log_tail(c))
    assert r.returncode == 0, ctx
    errs = [ln for ln in err.splitlines() if re.search(r"error|abort", ln, re.I)]
    assert errs == [], ctx
    m = re.search(r"number of transactions actually processed: (\d+)/(\d+)", out)
    assert m and int(m.group(1)) == N * TX == int(m.group(2)), ctx
    m = re.search(r"number of failed transactions: (\d+)", out)
    assert m and int(m.group(1)) == 0, ctx
    assert "query mode: prepared" in out, ctx
    check_backends(mon)
    check_prepared(c, marker, {marker + "-a": N * TX, marker + "-b": N * TX})
    print("pgbench -M prepared, %d clients x %d: %.1fs, max server backends %d"
          % (N, TX, took, mon.max))


# ---------------------------------------------------------------------------
# asyncpg (default statement cache: every query is a named statement)
# ---------------------------------------------------------------------------

def test_asyncpg(carrier, pg):
    import asyncpg
    REPEAT, ROWS = 5, 3
    tag = new_tag()
    m = "scale-asyncpg-%d" % tag
    q_a = "SELECT $1::int * 2 /* %s-a */" % m
    q_b = "SELECT $1::int + $2::int AS s, $3::text AS who /* %s-b */" % m
    q_c = "INSERT INTO scratch(client, seq, val) VALUES ($1, $2, $3) /* %s-c */" % m
    q_d = ("SELECT count(*), min(val), max(val) FROM scratch "
           "WHERE client = $1 AND seq / 100 = $2 /* %s-d */" % m)
    c = carrier(pool_mode="transaction", pool_size=POOL)
    errors = []
    done = set()

    async def main():
        sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
        connected = asyncio.Event()
        worked = asyncio.Event()
        count = {"conn": 0, "work": 0}

        def arrive(key, ev):
            count[key] += 1
            if count[key] == N:
                ev.set()

        async def client(i):
            conn = None
            try:
                async with sem:
                    # default statement_cache_size (100), unlike c.aconnect()
                    conn = await asyncpg.connect(**c.asyncpg_kwargs())
            except Exception as e:
                errors.append((i, "connect", repr(e)))
            arrive("conn", connected)
            try:
                await asyncio.wait_for(connected.wait(), 120)
                if conn is None:
                    return
                me = "c%d" % i
                for k in range(REPEAT):
                    v = await conn.fetchval(q_a, i * 100 + k)
                    if v != 2 * (i * 100 + k):
                        errors.append((i, "a", k, v))
                async with conn.transaction():
                    stmt = await conn.prepare(q_b)
                    for k in range(ROWS):
                        row = await stmt.fetchrow(i, k, me)
                        if tuple(row) != (i + k, me):
                            errors.append((i, "b", k, tuple(row)))
                    await conn.executemany(
                        q_c, [(tag, i * 100 + k, me) for k in range(ROWS)])
                    row = await conn.fetchrow(q_d, tag, i)
                    if tuple(row) != (ROWS, me, me):
                        errors.append((i, "d in tx", tuple(row)))
                row = await conn.fetchrow(q_d, tag, i)
                if tuple(row) != (ROWS, me, me):
                    errors.append((i, "d after", tuple(row)))
                done.add(i)
            except Exception as e:
                errors.append((i, "work", repr(e)))
            finally:
                arrive("work", worked)
                try:
                    await asyncio.wait_for(worked.wait(), 120)
                except Exception as e:
                    errors.append((i, "wait", repr(e)))
                if conn is not None:
                    try:
                        await conn.close(timeout=30)
                    except Exception as e:
                        errors.append((i, "close", repr(e)))

        await asyncio.gather(*(client(i) for i in range(N)))

    try:
        with harness.BackendMonitor(pg) as mon:
            t0 = time.monotonic()
            asyncio.run(asyncio.wait_for(main(), 200))
            took = time.monotonic() - t0
        assert errors == [], "%d errors, first: %r\n--- pgcarrier log ---\n%s" \
            % (len(errors), errors[:10], log_tail(c))
        assert len(done) == N
        check_backends(mon)
        assert pg.sql("SELECT count(*) FROM scratch WHERE client = %d" % tag,
                      db="app") == str(N * ROWS)
        check_prepared(c, m, {m + "-a": N * REPEAT, m + "-b": N * ROWS,
                              m + "-c": N * ROWS, m + "-d": 2 * N})
    finally:
        pg.sql("DELETE FROM scratch WHERE client = %d" % tag, db="app")
    print("asyncpg, %d clients: %.1fs, max server backends %d"
          % (N, took, mon.max))


# ---------------------------------------------------------------------------
# psycopg, prepare_threshold=0 (every query prepared on first execution)
# ---------------------------------------------------------------------------

def test_psycopg(carrier, pg):
    import psycopg
    REPEAT, ROWS = 5, 3
    tag = new_tag()
    m = "scale-psycopg-%d" % tag
    q_a = "SELECT %%s::int * 3, %%s::text /* %s-a */" % m
    q_c = "INSERT INTO scratch(client, seq, val) VALUES (%%s, %%s, %%s) /* %s-c */" % m
    q_d = ("SELECT count(*), min(val), max(val) FROM scratch "
           "WHERE client = %%s AND seq / 100 = %%s /* %s-d */" % m)
    c = carrier(pool_mode="transaction", pool_size=POOL)
    dsn = c.dsn(connect_timeout=60)
    errors = []
    done = set()

    async def main():
        sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
        connected = asyncio.Event()
        worked = asyncio.Event()
        count = {"conn": 0, "work": 0}

        def arrive(key, ev):
            count[key] += 1
            if count[key] == N:
                ev.set()

        async def client(i):
            conn = None
            try:
                async with sem:
                    conn = await psycopg.AsyncConnection.connect(
                        dsn, autocommit=True, prepare_threshold=0)
            except Exception as e:
                errors.append((i, "connect", repr(e)))
            arrive("conn", connected)
            try:
                await asyncio.wait_for(connected.wait(), 120)
                if conn is None:
                    return
                me = "c%d" % i
                cur = conn.cursor()
                for k in range(REPEAT):
                    await cur.execute(q_a, [i * 100 + k, me])
                    row = await cur.fetchone()
                    if row != (3 * (i * 100 + k), me):
                        errors.append((i, "a", k, row))
                async with conn.transaction():
                    for k in range(ROWS):
                        await cur.execute(q_c, [tag, i * 100 + k, me])
                    await cur.execute(q_d, [tag, i])
                    row = await cur.fetchone()
                    if row != (ROWS, me, me):
                        errors.append((i, "d in tx", row))
                await cur.execute(q_d, [tag, i])
                row = await cur.fetchone()
                if row != (ROWS, me, me):
                    errors.append((i, "d after", row))
                done.add(i)
            except Exception as e:
                errors.append((i, "work", repr(e)))
            finally:
                arrive("work", worked)
                try:
                    await asyncio.wait_for(worked.wait(), 120)
                except Exception as e:
                    errors.append((i, "wait", repr(e)))
                if conn is not None:
                    try:
                        await conn.close()
                    except Exception as e:
                        errors.append((i, "close", repr(e)))

        await asyncio.gather(*(client(i) for i in range(N)))

    try:
        with harness.BackendMonitor(pg) as mon:
            t0 = time.monotonic()
            asyncio.run(asyncio.wait_for(main(), 200))
            took = time.monotonic() - t0
        assert errors == [], "%d errors, first: %r\n--- pgcarrier log ---\n%s" \
            % (len(errors), errors[:10], log_tail(c))
        assert len(done) == N
        check_backends(mon)
        assert pg.sql("SELECT count(*) FROM scratch WHERE client = %d" % tag,
                      db="app") == str(N * ROWS)
        check_prepared(c, m, {m + "-a": N * REPEAT, m + "-c": N * ROWS,
                              m + "-d": 2 * N})
    finally:
        pg.sql("DELETE FROM scratch WHERE client = %d" % tag, db="app")
    print("psycopg prepare_threshold=0, %d clients: %.1fs, max server backends %d"
          % (N, took, mon.max))


# ---------------------------------------------------------------------------
# JDBC, default prepareThreshold (5)
# ---------------------------------------------------------------------------

JAVA_SRC = r"""
import java.sql.*;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;

/* args: host port clients iterations marker tag.  One thread and one
 * connection per client, all connected at once (latch), each statement run
 * `iterations` times with the client's own numbers, checked.  Prints FAIL
 * lines (at most 20) and one SUMMARY line; exit 0 when all is well. */
public class ScaleJdbc {
    static final ConcurrentLinkedQueue<String> errors = new ConcurrentLinkedQueue<>();
    static final AtomicInteger nErrors = new AtomicInteger();

    static void fail(int i, String what) {
        if (nErrors.incrementAndGet() <= 20)
            errors.add("client " + i + ": " + what);
    }

    public static void main(String[] a) throws Exception {
        final String url = "jdbc:postgresql://" + a[0] + ":" + a[1] + "/app";
        final int n = Integer.parseInt(a[2]);
        final int iters = Integer.parseInt(a[3]);
        final String m = a[4];
        final int tag = Integer.parseInt(a[5]);
        final Properties props = new Properties();
        props.setProperty("user", "app");
        props.setProperty("connectTimeout", "60");
        props.setProperty("socketTimeout", "150");
        final Semaphore connSem = new Semaphore(50);
        final CountDownLatch connected = new CountDownLatch(n);
        final CountDownLatch worked = new CountDownLatch(n);
        final AtomicInteger nConnected = new AtomicInteger();
        final AtomicInteger nOk = new AtomicInteger();
        final AtomicInteger open = new AtomicInteger();
        final AtomicInteger maxOpen = new AtomicInteger();
        final String qA = "SELECT ?::int * 2 AS d, ?::text AS who /* " + m + "-a */";
        final String qC = "INSERT INTO scratch(client, seq, val) VALUES (?, ?, ?) /* " + m + "-c */";
        final String qD = "SELECT count(*), min(val), max(val) FROM scratch "
            + "WHERE client = ? AND seq / 1000 = ? /* " + m + "-d */";
        long t0 = System.nanoTime();
        Thread[] threads = new Thread[n];
        for (int t = 0; t < n; t++) {
            final int i = t;
            threads[t] = new Thread(null, () -> {
                Connection conn = null;
                try {
                    connSem.acquire();
                    try {
                        conn = DriverManager.getConnection(url, props);
                        nConnected.incrementAndGet();
                        maxOpen.accumulateAndGet(open.incrementAndGet(), Math::max);
                    } finally {
                        connSem.release();
                    }
                } catch (Exception e) {
                    fail(i, "connect: " + e);
                }
                connected.countDown();
                try {
                    if (!connected.await(120, TimeUnit.SECONDS))
                        fail(i, "not all clients connected in time");
                    else if (conn != null) {
                        String me = "c" + i;
                        boolean ok = true;
                        try (PreparedStatement ps = conn.prepareStatement(qA)) {
                            for (int k = 0; k < iters; k++) {
                                int v = i * 1000 + k;
                                ps.setInt(1, v);
                                ps.setString(2, me);
                                try (ResultSet rs = ps.executeQuery()) {
                                    if (!rs.next() || rs.getInt(1) != 2 * v
                                            || !me.equals(rs.getString(2)) || rs.next()) {
                                        fail(i, "a: wrong answer at " + k);
                                        ok = false;
                                    }
                                }
                            }
                        }
                        conn.setAutoCommit(false);
                        try (PreparedStatement ps = conn.prepareStatement(qC)) {
                            for (int k = 0; k < iters; k++) {
                                ps.setInt(1, tag);
                                ps.setInt(2, i * 1000 + k);
                                ps.setString(3, me);
                                if (ps.executeUpdate() != 1) {
                                    fail(i, "c: insert count at " + k);
                                    ok = false;
                                }
                            }
                        }
                        try (PreparedStatement ps = conn.prepareStatement(qD)) {
                            for (int k = 0; k < iters; k++) {
                                ps.setInt(1, tag);
                                ps.setInt(2, i);
                                try (ResultSet rs = ps.executeQuery()) {
                                    if (!rs.next() || rs.getInt(1) != iters
                                            || !me.equals(rs.getString(2))
                                            || !me.equals(rs.getString(3))) {
                                        fail(i, "d: wrong answer at " + k);
                                        ok = false;
                                    }
                                }
                            }
                        }
                        conn.commit();
                        conn.setAutoCommit(true);
                        if (ok)
                            nOk.incrementAndGet();
                    }
                } catch (Exception e) {
                    fail(i, "work: " + e);
                } finally {
                    worked.countDown();
                    try {
                        if (!worked.await(120, TimeUnit.SECONDS))
                            fail(i, "not all clients done in time");
                    } catch (InterruptedException e) {
                        fail(i, "interrupted");
                    }
                    if (conn != null) {
                        try {
                            conn.close();
                        } catch (Exception e) {
                            fail(i, "close: " + e);
                        }
                        open.decrementAndGet();
                    }
                }
            }, "client-" + t, 256 * 1024);
            threads[t].start();
        }
        for (Thread th : threads)
            th.join(200_000);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        for (String e : errors)
            System.out.println("FAIL " + e);
        System.out.println("SUMMARY clients=" + n + " connected=" + nConnected.get()
            + " ok=" + nOk.get() + " errors=" + nErrors.get()
            + " max_open=" + maxOpen.get() + " ms=" + ms);
        System.exit(nErrors.get() == 0 && nOk.get() == n ? 0 : 1);
    }
}
"""


def test_jdbc(carrier, pg, tmp_path):
    javac, java = shutil.which("javac"), shutil.which("java")
    if not javac or not java or not os.path.exists(JDBC_JAR):
        pytest.skip("javac/java or %s missing (libpostgresql-jdbc-java, "
                    "openjdk-17-jdk-headless)" % JDBC_JAR)
    ITERS = 12
    THRESHOLD = 5        # pgjdbc's default prepareThreshold
    tag = new_tag()
    m = "scale-jdbc-%d" % tag
    (tmp_path / "ScaleJdbc.java").write_text(JAVA_SRC)
    r = subprocess.run([javac, "-cp", JDBC_JAR, "-d", str(tmp_path),
                        str(tmp_path / "ScaleJdbc.java")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    assert r.returncode == 0, "javac failed:\n" + r.stdout
    c = carrier(pool_mode="transaction", pool_size=POOL)
    try:
        with harness.BackendMonitor(pg) as mon:
            t0 = time.monotonic()
            r = subprocess.run(
                [java, "-cp", "%s:%s" % (tmp_path, JDBC_JAR), "ScaleJdbc",
                 c.host, str(c.port), str(N), str(ITERS), m, str(tag)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                timeout=210)
            took = time.monotonic() - t0
        out = r.stdout
        ctx = "java exit %d\n--- stdout ---\n%s\n--- stderr ---\n%s\n" \
              "--- pgcarrier log ---\n%s" % (r.returncode, out[-4000:],
                                              r.stderr[-3000:], log_tail(c))
        s = re.search(r"^SUMMARY clients=(\d+) connected=(\d+) ok=(\d+) "
                      r"errors=(\d+) max_open=(\d+) ms=(\d+)$", out, re.M)
        assert s, ctx
        clients, conn_, ok, errs, max_open, _ = map(int, s.groups())
        assert (clients, conn_, ok, errs) == (N, N, N, 0), ctx
        assert max_open == N, ctx
        assert r.returncode == 0, ctx
        check_backends(mon)
        assert pg.sql("SELECT count(*) FROM scratch WHERE client = %d" % tag,
                      db="app") == str(N * ITERS)
        # pgjdbc runs a statement unnamed for its first THRESHOLD-1
        # executions, then as a named statement S_<n>.
        named = N * (ITERS - THRESHOLD + 1)
        check_prepared(c, m, {m + "-a": named, m + "-c": named,
                              m + "-d": named})
    finally:
        pg.sql("DELETE FROM scratch WHERE client = %d" % tag, db="app")
    print("JDBC, %d clients: %.1fs (%s), max server backends %d"
          % (N, took, s.group(0), mon.max))
