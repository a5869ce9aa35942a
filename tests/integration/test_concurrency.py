"""Concurrency tests: many clients over few server connections.  Every
client must get its own correct answers, transactions are never
interleaved, pool limits hold exactly across worker threads, and pgbench
runs without failures.

Pool limits are checked on pgcarrier's own server connections
(harness.ServerConnectionMonitor), not on pg_stat_activity, where the
backend of a connection pgcarrier has just closed still shows while it
exits; pg_stat_activity must then come down to the limit once they have.
"""

import asyncio
import random
import time

import pytest

import harness



def new_tag():
    return random.randint(1, 2 ** 31 - 2)


# ---------------------------------------------------------------------------
# 1000 clients over pool_size = 8
# ---------------------------------------------------------------------------

@pytest.mark.timeout(90)
def test_thousand_clients_transaction_mode(carrier, pg):
    N = 1000
    c = carrier(pool_mode="transaction", pool_size=8)
    tag = new_tag()
    results = {}
    errors = []

    async def main():
        connect_sem = asyncio.Semaphore(100)
        all_connected = asyncio.Event()
        connected = [0]

        async def client(i):
            async with connect_sem:
                conn = await c.aconnect()
            try:
                connected[0] += 1
                if connected[0] == N:
                    all_connected.set()
                await asyncio.wait_for(all_connected.wait(), 60)
                r = {}
                r["double"] = await conn.fetchval("SELECT $1::int * 2", i)
                r["text"] = await conn.fetchval("SELECT $1::text || '-' || $2::text",
                                                "c%d" % i, str(i * 7))
                async with conn.transaction():
                    await conn.execute("INSERT INTO scratch(client, seq, val) "
                                       "VALUES ($1, $2, $3)", tag, i, "v%d" % i)
                    tx1 = await conn.fetchval("SELECT txid_current()")
                    rows = await conn.fetch("SELECT seq, val FROM scratch "
                                            "WHERE client = $1 AND seq = $2", tag, i)
                    tx2 = await conn.fetchval("SELECT txid_current()")
                r["rows"] = [tuple(x) for x in rows]
                r["tx"] = (tx1, tx2)
                r["after"] = await conn.fetchval(
                    "SELECT count(*) FROM scratch WHERE client = $1 AND seq = $2", tag, i)
                results[i] = r
            except Exception as e:
                errors.append((i, repr(e)))
            finally:
                await conn.close(timeout=20)

        await asyncio.gather(*(client(i) for i in range(N)))

    with harness.ServerConnectionMonitor(c, pg) as mon:
        t0 = time.monotonic()
        asyncio.run(asyncio.wait_for(main(), 80))
        took = time.monotonic() - t0
    assert errors == [], errors[:10]
    assert len(results) == N
    for i, r in results.items():
        assert r["double"] == 2 * i
        assert r["text"] == "c%d-%d" % (i, i * 7)
        assert r["rows"] == [(i, "v%d" % i)]
        assert r["tx"][0] == r["tx"][1]
        assert r["after"] == 1
    assert len({r["tx"][0] for r in results.values()}) == N
    assert mon.error is None, mon.error
    assert 1 <= mon.max <= 8, "server connections seen: max %d" % mon.max
    assert pg.sql("SELECT count(*) FROM scratch WHERE client = %d" % tag, db="app") == str(N)
    pg.sql("DELETE FROM scratch WHERE client = %d" % tag, db="app")
    print("1000 clients: %.1fs, max server connections %d" % (took, mon.max))


# ---------------------------------------------------------------------------
# transactions are never interleaved
# ---------------------------------------------------------------------------

@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_transactions_not_interleaved(carrier, pg, mode):
    CLIENTS, TX = 40, 10
    pool = 4 if mode == "transaction" else CLIENTS
    c = carrier(pool_mode=mode, pool_size=pool)
    seen = []
    errors = []

    async def client(i):
        conn = await c.aconnect()
        try:
            for k in range(TX):
                await conn.execute("BEGIN")
                t1 = await conn.fetchval("SELECT txid_current()")
                p1 = await conn.fetchval("SELECT pg_backend_pid()")
                await conn.fetchval("SELECT set_config('pgc.owner', $1, true)", "%d/%d" % (i, k))
                await conn.execute("SELECT pg_sleep(0.002)")
                owner = await conn.fetchval("SELECT current_setting('pgc.owner')")
                t2 = await conn.fetchval("SELECT txid_current()")
                p2 = await conn.fetchval("SELECT pg_backend_pid()")
                await conn.execute("COMMIT")
                seen.append((i, k, t1, t2, p1, p2, owner))
                # outside a transaction the local setting is gone
                leftover = await conn.fetchval("SELECT current_setting('pgc.owner', true)")
                if leftover not in (None, ""):
                    errors.append(("leak", i, k, leftover))
        except Exception as e:
            errors.append((i, repr(e)))
        finally:
            await conn.close(timeout=10)

    async def main():
        await asyncio.gather(*(client(i) for i in range(CLIENTS)))

    asyncio.run(asyncio.wait_for(main(), 50))
    assert errors == [], errors[:10]
    assert len(seen) == CLIENTS * TX
    for i, k, t1, t2, p1, p2, owner in seen:
        assert t1 == t2, "txid changed inside a transaction"
        assert p1 == p2, "backend changed inside a transaction"
        assert owner == "%d/%d" % (i, k), "saw another client's transaction state"
    assert len({s[2] for s in seen}) == len(seen), "two transactions shared a txid"
    if mode == "transaction":
        assert len({s[4] for s in seen}) <= pool


@pytest.mark.timeout(60)
def test_single_server_shared_across_workers(carrier, pg):
    """pool_size=1 with clients on both workers: the one server connection
    moves between worker threads; every client finishes, and there is never
    a second server."""
    c = carrier(pool_mode="transaction", pool_size=1)
    pids = set()
    errors = []

    async def client(i):
        conn = await c.aconnect()
        try:
            for k in range(10):
                async with conn.transaction():
                    pids.add(await conn.fetchval("SELECT pg_backend_pid()"))
                    assert await conn.fetchval("SELECT $1::int + $2::int", i, k) == i + k
        except Exception as e:
            errors.append((i, repr(e)))
        finally:
            await conn.close(timeout=10)

    async def main():
        await asyncio.gather(*(client(i) for i in range(24)))

    with harness.ServerConnectionMonitor(c, pg) as mon:
        asyncio.run(asyncio.wait_for(main(), 50))
    assert errors == []
    assert len(pids) == 1
    assert mon.error is None, mon.error
    assert mon.max == 1, mon.max


@pytest.mark.timeout(60)
def test_waiting_clients_fifo_no_starvation(carrier, pg):
    """More clients than servers, each holding its server for a while:
    everybody is served, and the pool never grows past its size."""
    c = carrier(pool_mode="transaction", pool_size=2)
    done = []

    async def client(i):
        conn = await c.aconnect()
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_sleep(0.05)")
                done.append((i, time.monotonic()))
        finally:
            await conn.close(timeout=10)

    async def main():
        await asyncio.gather(*(client(i) for i in range(40)))

    with harness.ServerConnectionMonitor(c, pg) as mon:
        t0 = time.monotonic()
        asyncio.run(asyncio.wait_for(main(), 40))
        took = time.monotonic() - t0
    assert len(done) == 40
    assert mon.error is None, mon.error
    assert 1 <= mon.max <= 2, mon.max
    # 40 x 50 ms over 2 servers: about 1 s; must not be serialised to one
    assert took < 15


# ---------------------------------------------------------------------------
# a client that vanishes in a transaction does not leave the server dirty
# ---------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_client_abort_mid_transaction(carrier, pg):
    c = carrier(pool_mode="transaction", pool_size=1)
    tag = new_tag()

    async def main():
        a = await c.aconnect()
        await a.execute("BEGIN")
        await a.execute("INSERT INTO scratch VALUES ($1, 1, 'uncommitted')", tag)
        await a.execute("SELECT set_config('pgc.dirty', 'yes', true)")
        a.terminate()  # socket closed, no Terminate, no COMMIT

        b = await c.aconnect()
        try:
            t0 = time.monotonic()
            assert await b.fetchval("SELECT txid_current_if_assigned()", timeout=10) is None
            assert await b.fetchval("SELECT count(*) FROM scratch WHERE client = $1", tag) == 0
            assert await b.fetchval("SELECT current_setting('pgc.dirty', true)") in (None, "")
            assert time.monotonic() - t0 < 5

            # now a client disappears while its query still runs
            x = await c.aconnect()
            task = asyncio.ensure_future(x.execute("SELECT pg_sleep(20) /* abandoned */"))
            await asyncio.sleep(0.5)
            x.terminate()
            try:
                await task
            except Exception:
                pass
            t0 = time.monotonic()
            assert await b.fetchval("SELECT 'next client served'", timeout=10) == \
                "next client served"
            assert time.monotonic() - t0 < 5, "waited for the abandoned query"
            assert await b.fetchval("SELECT txid_current_if_assigned()") is None
        finally:
            await b.close(timeout=10)

    try:
        asyncio.run(asyncio.wait_for(main(), 50))
        assert pg.sql("SELECT count(*) FROM scratch WHERE client = %d" % tag,
                      db="app") == "0"
    finally:
        # the abandoned backend may still sleep (pgcarrier closed its
        # connection, PostgreSQL notices only when it next writes)
        pg.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               "WHERE query LIKE '%pg_sleep(20) /* abandoned */%' "
               "AND pid <> pg_backend_pid()")


@pytest.mark.timeout(60)
def test_session_mode_server_reset_between_clients(carrier, pg):
    """Session mode, one server: what a client leaves behind (settings, temp
    table, prepared statement, advisory lock, LISTEN, open cursor WITH HOLD)
    is gone for the next client on the same server connection."""
    c = carrier(pool_mode="session", pool_size=1)
    with c.connect() as a:
        pid_a = a.execute("SELECT pg_backend_pid()").fetchone()[0]
        a.execute("SET search_path = pg_catalog")
        a.execute("SET statement_timeout = '123s'")
        a.execute("SELECT set_config('pgc.left', 'behind', false)")
        a.execute("CREATE TEMP TABLE leftover(x int)")
        a.execute("PREPARE leftover_stmt AS SELECT 1")
        a.execute("SELECT pg_advisory_lock(4242)")
        a.execute("LISTEN leftover_chan")
        a.execute("DECLARE leftover_cur CURSOR WITH HOLD FOR SELECT 1")
    with c.connect() as b:
        assert b.execute("SELECT pg_backend_pid()").fetchone()[0] == pid_a, \
            "expected the same server connection to be reused"
        assert b.execute("SHOW search_path").fetchone()[0] == '"$user", public'
        assert b.execute("SHOW statement_timeout").fetchone()[0] == "0"
        assert b.execute("SELECT current_setting('pgc.left', true)").fetchone()[0] in (None, "")
        assert b.execute("SELECT count(*) FROM pg_class WHERE relname = 'leftover' "
                         "AND relpersistence = 't'").fetchone()[0] == 0
        assert b.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0
        assert b.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                         "AND pid = pg_backend_pid()").fetchone()[0] == 0
        assert b.execute("SELECT count(*) FROM pg_listening_channels()").fetchone()[0] == 0
        assert b.execute("SELECT count(*) FROM pg_cursors").fetchone()[0] == 0


# ---------------------------------------------------------------------------
# pgbench
# ---------------------------------------------------------------------------

CUSTOM_SCRIPT = r"""\set aid random(1, 100000)
\set delta random(-5000, 5000)
BEGIN;
SELECT set_config('pgc.client', :client_id::text, true);
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
SELECT 1 / (current_setting('pgc.client') = :client_id::text)::int;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, :aid, :delta, CURRENT_TIMESTAMP);
END;
"""


def run_pgbench(c, args, timeout=40):
    return harness.run_pgbench(c, args, timeout=timeout)


def assert_pool_held(mon, pg, pool):
    """pgcarrier never had more than pool server connections, and the
    server's backends come down to that once the exiting ones are gone."""
    assert mon.error is None, mon.error
    assert 1 <= mon.max <= pool, "server connections: max %d, pool_size %d" % (mon.max, pool)
    assert harness.wait_backends(pg, pool, db="app", user="app"), \
        "%d server backends 10 s after pgbench, pool_size %d" % (
            harness.server_backends(pg, db="app", user="app"), pool)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode,proto", [("session", "prepared"),
                                        ("transaction", "extended"),
                                        ("statement", "simple")])
def test_pgbench_select_only(carrier, pgbench_db, mode, proto):
    pool = 50 if mode == "session" else 8
    c = carrier(pool_mode=mode, pool_size=pool)
    with harness.ServerConnectionMonitor(c, pgbench_db) as mon:
        n, out = run_pgbench(c, ["-c", "50", "-j", "2", "-T", "5", "-S", "-M", proto])
    assert_pool_held(mon, pgbench_db, pool)
    print("pgbench -S %s/%s: %d transactions" % (mode, proto, n))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode,proto", [("session", "simple"),
                                        ("transaction", "simple"),
                                        ("transaction", "extended")])
def test_pgbench_custom_script(carrier, pgbench_db, tmp_path, mode, proto):
    script = tmp_path / "custom.sql"
    script.write_text(CUSTOM_SCRIPT)
    pool = 50 if mode == "session" else 8
    c = carrier(pool_mode=mode, pool_size=pool)
    before = int(pgbench_db.sql("SELECT count(*) FROM pgbench_history", db="app"))
    with harness.ServerConnectionMonitor(c, pgbench_db) as mon:
        n, out = run_pgbench(c, ["-c", "50", "-j", "2", "-T", "5", "-M", proto,
                                 "-f", str(script)])
    after = int(pgbench_db.sql("SELECT count(*) FROM pgbench_history", db="app"))
    assert after - before == n, "committed rows do not match pgbench's count"
    assert_pool_held(mon, pgbench_db, pool)
