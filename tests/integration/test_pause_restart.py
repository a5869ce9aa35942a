"""PAUSE, a PostgreSQL restart, RESUME (docs/behaviour.md, "Admin console"):
200 connected clients run a loop of transactions, some with prepared
statements, some with session settings; the DBA pauses the pool, restarts
PostgreSQL and resumes. No client is disconnected, no transaction is lost
or run twice (every committed row is counted at the end, and a primary key
refuses a second run), and the settings and statements still work on the
new servers. Idle clients keep their connections, statements and settings
through the cycle too."""

import threading

import psycopg
import pytest

from console_helpers import CONSOLE_SETTINGS, console, show, wait_until

N_BUSY = 180
N_IDLE = 20


class Client(threading.Thread):
    """One client's loop: BEGIN; INSERT (cid, seq); COMMIT, seq + 1 after
    each COMMIT that succeeded. Kind 0 uses a prepared statement
    (prepare=True), kind 1 a session setting that gives its cid back, kind 2
    plain queries."""

    def __init__(self, carrier, cid, stop):
        super().__init__(daemon=True)
        self.carrier, self.cid, self.stop_ev = carrier, cid, stop
        self.kind = cid % 3
        self.committed = 0
        self.error = None
        self.conn = carrier.connect("app", prepare_threshold=None)
        if self.kind == 1:
            self.conn.execute("SET pgc_test.cid = '%d'" % cid)
            self.conn.execute("SET search_path = pause_s, public")
            self.conn.commit()

    def one(self):
        c = self.conn
        seq = self.committed
        if self.kind == 0:
            c.execute("INSERT INTO ledger VALUES (%s, %s)", (self.cid, seq), prepare=True)
        elif self.kind == 1:
            # The setting and the search_path come from the session (the guard's replay).
            c.execute("INSERT INTO ledger_view SELECT current_setting('pgc_test.cid')::int, %d" % seq)
        else:
            c.execute("INSERT INTO ledger VALUES (%d, %d)" % (self.cid, seq))
        c.commit()
        self.committed += 1

    def run(self):
        try:
            while not self.stop_ev.is_set():
                self.one()
        except Exception as e:  # noqa: BLE001
            self.error = e


@pytest.mark.timeout(600)
def test_pause_restart_resume_with_200_clients(fresh_pg, carrier):
    pg = fresh_pg
    pg.sql("CREATE TABLE ledger (cid int, seq int, PRIMARY KEY (cid, seq));"
           "GRANT ALL ON ledger TO app;"
           "CREATE SCHEMA pause_s AUTHORIZATION app;", db="app")
    # A table that only kind-1 clients' search_path finds.
    pg.sql("CREATE VIEW pause_s.ledger_view AS SELECT * FROM public.ledger;"
           "GRANT ALL ON pause_s.ledger_view TO app;", db="app")
    settings = dict(CONSOLE_SETTINGS)
    settings.update(max_client_conn=400, query_wait_timeout=120)
    c = carrier(server=pg, pool_size=8, **settings)
    adm = console(c)

    stop = threading.Event()
    busy = [Client(c, cid, stop) for cid in range(N_BUSY)]
    idle = [c.connect("app") for _ in range(N_IDLE)]
    for i, conn in enumerate(idle):
        conn.execute("SET pgc_test.idle = '%d'" % i)
        # A protocol-level prepared statement (SQL PREPARE would pin the client to its server).
        conn.execute("SELECT %s::int * 2", (i,), prepare=True)
        conn.commit()
    for t in busy:
        t.start()
    try:
        wait_until(lambda: sum(t.committed for t in busy) > 2000, timeout=120, what="load running")

        # PAUSE answers once every running transaction has ended and the servers are closed.
        adm.execute("PAUSE app")
        # What PostgreSQL holds, not the clients' counters: a client may have
        # had its COMMIT answered before PAUSE was, and not yet counted it.
        rows_paused = pg.sql("SELECT count(*) FROM ledger", db="app").strip()
        before_restart = sum(t.committed for t in busy)
        assert [r for r in show(adm, "SERVERS") if r["database"] == "app"] == []
        pg.restart("fast")
        wait_until(lambda: next(r for r in show(adm, "POOLS") if r["database"] == "app")["cl_waiting"] > 0,
                   what="clients waiting while paused")
        # Nothing ran meanwhile: every client waits for a server.
        assert pg.sql("SELECT count(*) FROM ledger", db="app").strip() == rows_paused
        adm.execute("RESUME app")
        wait_until(lambda: sum(t.committed for t in busy) > before_restart + 2000, timeout=120,
                   what="load going on after RESUME")
    finally:
        stop.set()
        for t in busy:
            t.join(120)

    errors = [(t.cid, repr(t.error)) for t in busy if t.error is not None]
    assert errors == []
    # Every committed transaction is there exactly once, none that was not committed.
    with pg.connect("app", user="postgres") as direct:
        got = {cid: (n, mx) for cid, n, mx in direct.execute(
            "SELECT cid, count(*), max(seq) FROM ledger GROUP BY cid").fetchall()}
    want = {t.cid: (t.committed, t.committed - 1) for t in busy if t.committed > 0}
    assert got == want
    # The busy clients' settings and statements still work on the new servers.
    for t in busy:
        if t.kind == 1:
            assert t.conn.execute("SELECT current_setting('pgc_test.cid')").fetchone() == (str(t.cid),)
        t.conn.close()
    # So do the idle ones', which slept through the cycle.
    for i, conn in enumerate(idle):
        assert conn.execute("SELECT current_setting('pgc_test.idle')").fetchone() == (str(i),)
        assert conn.execute("SELECT %s::int * 2", (i + 1,), prepare=True).fetchone() == (2 * i + 2,)
        conn.commit()
        conn.close()
    adm.close()
