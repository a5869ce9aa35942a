"""Pipelined multiplexing (server_pipeline_depth, src/engine/pipeline.h):
units of other clients sent to a server still busy with one client's.

The strongest check is differential: many clients over 2 server
connections with depth 4 run a mix of statements (errors in the middle,
a BEGIN hidden in a multi-statement text, a procedure that commits, SET,
NOTIFY, COPY, large results, a view that changes a reported setting under
the units queued behind it) and every client's results must equal those
of the same client run directly against PostgreSQL. SHOW WORKERS proves
that units were pipelined, and that some ran again after a break.

Cancel requests and clients that leave while their unit is queued are
tested one by one, with server_pipeline_max_wait raised so that units
queue behind a slow one on purpose.
"""

import threading
import time

import psycopg
import pytest

import harness
from console_helpers import CONSOLE_SETTINGS, console, show

def pipelined(carrier):
    """(units pipelined, units that ran again) over all workers."""
    with console(carrier) as adm:
        rows = show(adm, "WORKERS")
    return (sum(int(r["pipelined"]) for r in rows), sum(int(r["pipeline_reruns"]) for r in rows))


def pipe_carrier(carrier, pool_size=2, depth=4, **settings):
    conf = dict(CONSOLE_SETTINGS)
    conf.update(server_pipeline_depth=depth)
    conf.update(settings)
    return carrier(pool_mode="transaction", pool_size=pool_size, **conf)


# ---------------------------------------------------------------------------
# pgbench: pipelining happens, and nothing fails
# ---------------------------------------------------------------------------

@pytest.mark.timeout(90)
@pytest.mark.parametrize("workers,proto", [(1, "simple"), (2, "simple"), (1, "extended"), (2, "prepared")])
def test_pgbench_select_only_is_pipelined(carrier, pgbench_db, workers, proto):
    c = pipe_carrier(carrier, pool_size=2, depth=4, workers=workers)
    n, _ = harness.run_pgbench(c, ["-c", "40", "-j", "2", "-T", "4", "-S", "-M", proto], pg=pgbench_db)
    done, again = pipelined(c)
    print("pgbench -S through depth 4: %d transactions, %d pipelined, %d ran again" % (n, done, again))
    assert done > 0, "no unit was pipelined"


# ---------------------------------------------------------------------------
# The differential run: every client's results as on a direct connection
# ---------------------------------------------------------------------------

SETUP = """
DROP TABLE IF EXISTS pl_items, pl_uniq CASCADE;
DROP VIEW IF EXISTS pl_tokyo;
DROP PROCEDURE IF EXISTS pl_commit();
CREATE TABLE pl_items(id int PRIMARY KEY, v text);
INSERT INTO pl_items SELECT g, 'v' || g FROM generate_series(1, 1000) g;
CREATE TABLE pl_uniq(id int PRIMARY KEY);
-- Its text calls no function: the guard sees a plain read, yet it changes
-- a reported setting of the session it runs in.
CREATE VIEW pl_tokyo AS SELECT set_config('TimeZone', 'Asia/Tokyo', false) AS tz;
DROP VIEW IF EXISTS pl_german;
CREATE VIEW pl_german AS SELECT set_config('DateStyle', 'German, DMY', false) AS ds;
CREATE PROCEDURE pl_commit() LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO pl_uniq VALUES (-1) ON CONFLICT DO NOTHING;
  COMMIT;
END $$;
GRANT ALL ON pl_items, pl_uniq TO app;
GRANT SELECT ON pl_tokyo, pl_german TO app;
"""

# Reads the session's time zone, directly and through formatting.
TZ_READ = "SELECT current_setting('TimeZone'), '2020-01-01 00:00:00+00'::timestamptz::text"


def script(i):
    """Client i's statements, each its own unit (simple Query protocol)."""
    s = []
    if i % 8 == 3:
        # First, while its settings are everyone's: units of others queue behind it.
        s += ["SELECT tz, pg_sleep(0.05) FROM pl_tokyo", TZ_READ]   # changes its own session only
    s += [
        "SELECT id, v FROM pl_items WHERE id = %d" % (i * 7 % 1000 + 1),
        "SELECT 1/0",                                   # an error in a pipelined unit
        TZ_READ,
        "SELECT count(*) FROM pl_items WHERE id <= %d" % (i + 1),
        "INSERT INTO pl_uniq VALUES (%d)" % i,
        "INSERT INTO pl_uniq VALUES (%d)" % i,          # unique violation
        "SELECT %d; BEGIN" % i,                         # a BEGIN hidden in a multi-statement text
        "SELECT %d + 1" % i,
        "COMMIT",
        "CALL pl_commit()",                             # a procedure that commits
        "SET application_name = 'pl%d'" % i,            # SET inside a unit
        "SELECT current_setting('application_name')",
        "NOTIFY pl_chan, '%d'" % i,
        "SELECT length(repeat('x', 100000) || g), g FROM generate_series(1, 30) g",
        "SELECT repeat('y', 300000)",                   # a large result
        TZ_READ,
    ]
    if i % 4 == 0:
        s += ["SET statement_timeout = '50ms'", "SELECT pg_sleep(0.2)", "RESET statement_timeout"]
    s += ["SELECT v FROM pl_items WHERE id = %d" % (i + 1), TZ_READ]
    return s


def run_client(dsn, i, loops, out, proto):
    """proto: simple (Query), extended (the unnamed statement) or prepared (named statements)."""
    results = []
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
        for _ in range(loops):
            for sql in script(i):
                try:
                    if proto == "simple":
                        cur = conn.execute(sql)
                    else:
                        cur = conn.execute(sql.replace("%", "%%"), (), prepare=proto == "prepared")
                    results.append(("ok", cur.fetchall() if cur.description else cur.statusmessage))
                except psycopg.Error as e:
                    results.append(("error", e.sqlstate))
            with conn.cursor().copy("COPY (SELECT id, v FROM pl_items WHERE id <= %d) TO STDOUT" % (i + 3)) as cp:
                results.append(("copy", b"".join(bytes(b) for b in cp)))
            conn.execute("RESET ALL")
    out[i] = results


def run_all(dsn_of, n, loops, proto):
    out = {}
    threads = [threading.Thread(target=run_client, args=(dsn_of(i), i, loops, out, proto)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


@pytest.mark.timeout(240)
@pytest.mark.parametrize("workers,proto", [(1, "simple"), (2, "simple"), (1, "extended"), (2, "prepared")])
def test_every_client_gets_its_direct_results(carrier, pg, workers, proto):
    pg.sql(SETUP, db="app")
    n, loops = 32, 3
    direct = run_all(lambda i: pg.dsn(), n, loops, proto)
    pg.sql("TRUNCATE pl_uniq", db="app")
    # Units queue behind slow ones too (max_wait 1 s): more of them, and more breaks.
    c = pipe_carrier(carrier, pool_size=2, depth=4, workers=workers, server_pipeline_max_wait=1)
    pooled = run_all(lambda i: c.dsn(), n, loops, proto)
    assert sorted(pooled) == list(range(n))
    for i in range(n):
        assert len(pooled[i]) == len(direct[i]), "client %d: %d results, %d directly" % (
            i, len(pooled[i]), len(direct[i]))
        for k, (a, b) in enumerate(zip(pooled[i], direct[i])):
            assert a == b, "client %d, result %d: %r through pgcarrier, %r directly" % (i, k, a, b)
    done, again = pipelined(c)
    print("%d units pipelined, %d ran again" % (done, again))
    assert done > 0, "no unit was pipelined"
    assert again > 0, "no pipelined unit ran again"


# ---------------------------------------------------------------------------
# One by one: a break, cancels, a follower that leaves
# ---------------------------------------------------------------------------

def slow_carrier(carrier):
    """One server connection; units queue behind a slow one (max_wait 30 s)."""
    return pipe_carrier(carrier, pool_size=1, depth=4, workers=1, server_pipeline_max_wait=30)


def in_thread(fn, *args):
    box = {}

    def run():
        try:
            box["result"] = fn(*args)
        except Exception as e:        # handed to the test, which asserts on it
            box["error"] = e
    t = threading.Thread(target=run)
    t.start()
    return t, box


def query(dsn, sql, conn_box=None):
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
        if conn_box is not None:
            conn_box["conn"] = conn
        try:
            return ("ok", conn.execute(sql).fetchall())
        except psycopg.Error as e:
            return ("error", e.sqlstate)


def wait_for(cond, what, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def active_clients(c):
    with console(c) as adm:
        return sum(1 for r in show(adm, "CLIENTS") if r["state"] == "active" and r["database"] == "app")


@pytest.mark.timeout(60)
def test_units_behind_a_unit_that_changed_the_session_run_again(carrier, pg):
    pg.sql(SETUP, db="app")
    c = slow_carrier(carrier)
    expected = query(pg.dsn(), TZ_READ)
    head, head_box = in_thread(query, c.dsn(), "SELECT tz, pg_sleep(1.5) FROM pl_tokyo")
    wait_for(lambda: active_clients(c) == 1, "the slow unit to run")
    followers = [in_thread(query, c.dsn(), TZ_READ) for _ in range(2)]
    wait_for(lambda: pipelined(c)[0] == 2, "two units to be pipelined behind it")
    head.join(20)
    for t, box in followers:
        t.join(20)
        assert box.get("result") == expected, box
    assert head_box["result"][0] == "ok", head_box
    done, again = pipelined(c)
    assert again == 2, (done, again)


def queries(dsn, sqls):
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
        return [conn.execute(q).fetchall() for q in sqls]


@pytest.mark.timeout(60)
def test_units_dropped_after_a_break_leave_no_setting_behind(carrier, pg):
    """The unit ahead changes DateStyle (a break); the one behind it changes
    TimeZone, and runs although its answers are dropped: nobody else may
    see that TimeZone, and its own client must, when its unit runs again."""
    pg.sql(SETUP, db="app")
    c = slow_carrier(carrier)
    head_sqls = ["SELECT ds, pg_sleep(1.5) FROM pl_german", TZ_READ]
    changer_sqls = ["SELECT tz FROM pl_tokyo", TZ_READ]
    expected = [queries(pg.dsn(), q) for q in (head_sqls, changer_sqls, [TZ_READ])]
    head, head_box = in_thread(queries, c.dsn(), head_sqls)
    wait_for(lambda: active_clients(c) == 1, "the slow unit to run")
    changer, changer_box = in_thread(queries, c.dsn(), changer_sqls)
    wait_for(lambda: pipelined(c)[0] == 1, "the unit that changes TimeZone to be pipelined")
    reader, reader_box = in_thread(queries, c.dsn(), [TZ_READ])
    wait_for(lambda: pipelined(c)[0] == 2, "a unit behind it")
    for t in (head, changer, reader):
        t.join(20)
    assert [head_box.get("result"), changer_box.get("result"), reader_box.get("result")] == expected, \
        (head_box, changer_box, reader_box)
    assert pipelined(c)[1] >= 2


@pytest.mark.timeout(60)
def test_cancel_of_the_running_unit_does_not_reach_those_queued_behind(carrier, pg):
    c = slow_carrier(carrier)
    conn_box = {}
    head, head_box = in_thread(query, c.dsn(), "SELECT pg_sleep(20)", conn_box)
    wait_for(lambda: active_clients(c) == 1, "the slow unit to run")
    followers = [in_thread(query, c.dsn(), "SELECT %d" % k) for k in (42, 43)]
    wait_for(lambda: pipelined(c)[0] == 2, "two units to be pipelined behind it")
    conn_box["conn"].cancel()
    head.join(20)
    assert head_box["result"] == ("error", "57014"), head_box
    for (t, box), k in zip(followers, (42, 43)):
        t.join(20)
        assert box.get("result") == ("ok", [(k,)]), box


@pytest.mark.timeout(60)
def test_cancel_of_a_queued_unit_cancels_that_unit_only(carrier, pg):
    c = slow_carrier(carrier)
    head, head_box = in_thread(query, c.dsn(), "SELECT pg_sleep(1), 'head'")
    wait_for(lambda: active_clients(c) == 1, "the slow unit to run")
    conn_box = {}
    victim, victim_box = in_thread(query, c.dsn(), "SELECT pg_sleep(20), 'victim'", conn_box)
    wait_for(lambda: pipelined(c)[0] == 1, "the unit to be cancelled to be pipelined")
    last, last_box = in_thread(query, c.dsn(), "SELECT 44")
    wait_for(lambda: pipelined(c)[0] == 2, "a unit behind it")
    conn_box["conn"].cancel()
    for t in (head, victim, last):
        t.join(30)
    assert head_box["result"] == ("ok", [("", "head")]), head_box
    assert victim_box["result"] == ("error", "57014"), victim_box
    assert last_box["result"] == ("ok", [(44,)]), last_box


@pytest.mark.timeout(60)
def test_a_client_that_leaves_while_its_unit_is_queued(carrier, pg):
    c = slow_carrier(carrier)
    head, head_box = in_thread(query, c.dsn(), "SELECT pg_sleep(1), 'head'")
    wait_for(lambda: active_clients(c) == 1, "the slow unit to run")
    raw = harness.RawConn(c.host, c.port)
    raw.startup("app", "app")
    raw.send("Q", harness.cstr("SELECT repeat('z', 100000)"))
    wait_for(lambda: pipelined(c)[0] == 1, "its unit to be pipelined")
    raw.sock.close()                  # gone, without a Terminate, its answer still to come
    last, last_box = in_thread(query, c.dsn(), "SELECT 45")
    head.join(20)
    last.join(20)
    assert head_box["result"] == ("ok", [("", "head")]), head_box
    assert last_box["result"] == ("ok", [(45,)]), last_box
    # The server connection lived on: one backend served everything.
    with console(c) as adm:
        assert len([r for r in show(adm, "SERVERS") if r["database"] == "app"]) == 1
    assert "lost while serving" not in c.log()
