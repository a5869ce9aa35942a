"""The SQL interface of built-in mode (docs/builtin.md, "SQL interface"):
CREATE EXTENSION pgcarrier gives the views pgcarrier.pools, clients,
servers, stats, pins, config (and one for each other SHOW: databases,
users, stats_totals, stats_averages, totals, lists, mem, state, version,
workers, errors) on the running pooler's admin console, and the functions
pause, resume, reconnect, kill_client, wait_close, disable, enable, kill;
superusers and members of
pgcarrier_admin may use them (pg_monitor members may read the views), and
everyone else gets 42501."""

import os
import subprocess
import threading
import time

import psycopg
import pytest

import harness

PG_BIN = harness.PG_BINDIR


@pytest.fixture(scope="module", autouse=True)
def _installed():
    lib = subprocess.run([os.path.join(PG_BIN, "pg_config"), "--pkglibdir"],
                         stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
    if not os.path.exists(os.path.join(lib, "pgcarrier.so")):
        pytest.fail("the extension is not installed: run make install-extension "
                    "(make integration does)", pytrace=False)


@pytest.fixture(scope="module")
def builtin():
    srv = harness.BuiltinPgServer("builtinsql")
    try:
        srv.sql("CREATE EXTENSION pgcarrier")
        srv.sql("CREATE ROLE ops LOGIN; GRANT pgcarrier_admin TO ops; "
                "CREATE ROLE nobody LOGIN; "
                "CREATE ROLE watcher LOGIN; GRANT pg_monitor TO watcher")
        yield srv
    finally:
        srv.cleanup()


def direct(srv, user="postgres", db="postgres"):
    """A direct connection to the server (not through the pooler)."""
    return psycopg.connect(srv.dsn(db, user), autocommit=True)


def wait_for(cond, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def console_columns(srv, show):
    """The column names of the pooler's SHOW show, from its console (psql as
    the server's own OS user, whom the console trusts on its Unix socket)."""
    r = subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(PG_BIN, "psql"), "-X", "-A",
                        "-h", srv.sockdir, "-p", str(srv.pooler_port), "-d", "pgcarrier",
                        "-c", "SHOW " + show], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()[0].split("|")


def rows(conn, sql, *args):
    cur = conn.execute(sql, args or None)
    names = [d.name for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


# ----------------------------------------------------------------- views --

def test_clients_and_pools_show_the_pooled_clients(builtin):
    pooled = [builtin.pooler_connect(application_name="sqlview-%d" % i) for i in range(3)]
    try:
        for c in pooled:
            assert c.execute("SELECT 1").fetchone() == (1,)
        with direct(builtin) as d:
            q = "SELECT * FROM pgcarrier.clients WHERE application_name LIKE 'sqlview-%%' ORDER BY id"
            # a client is released from its server just after its result is relayed
            wait_for(lambda: [c["state"] for c in rows(d, q)] == ["idle"] * 3,
                     what="three idle clients in pgcarrier.clients")
            cl = rows(d, q)
            assert [c["application_name"] for c in cl] == ["sqlview-0", "sqlview-1", "sqlview-2"]
            for c in cl:
                assert (c["type"], c["user"], c["database"], c["state"]) == ("C", "app", "app", "idle")
                assert c["connect_time"] is not None        # a timestamptz
                assert c["id"] > 0
            pool = rows(d, "SELECT * FROM pgcarrier.pools WHERE database = 'app' AND \"user\" = 'app'")
            assert len(pool) == 1
            assert pool[0]["cl_active"] >= 3 and pool[0]["cl_waiting"] == 0
            assert pool[0]["pool_mode"] == "transaction"
            # the SQL interface's own console connection is a client too, of the console
            me = rows(d, "SELECT * FROM pgcarrier.clients WHERE database = 'pgcarrier'")
            assert [(c["user"], c["application_name"]) for c in me] == \
                [("postgres", "pgcarrier SQL interface")]
            # one more pooled client: one more cl_active
            extra = builtin.pooler_connect(application_name="sqlview-3")
            try:
                extra.execute("SELECT 1")
                after = d.execute("SELECT cl_active FROM pgcarrier.pools "
                                  "WHERE database = 'app' AND \"user\" = 'app'").fetchone()[0]
                assert after == pool[0]["cl_active"] + 1
            finally:
                extra.close()
    finally:
        for c in pooled:
            c.close()


def test_servers_stats_pins_config(builtin):
    with builtin.pooler_connect(application_name="sqlstats") as c, direct(builtin) as d:
        before = d.execute("SELECT coalesce(sum(total_xact_count), 0) FROM pgcarrier.stats "
                           "WHERE database = 'app'").fetchone()[0]
        for _ in range(5):
            with c.transaction():
                c.execute("SELECT 1")
        # a temporary table pins the client to its server connection
        c.execute("CREATE TEMP TABLE sqlpin(x int)")
        backend = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        wait_for(lambda: d.execute("SELECT total_xact_count FROM pgcarrier.stats "
                                   "WHERE database = 'app'").fetchone()[0] >= before + 5,
                 what="stats to count 5 transactions")
        servers = rows(d, "SELECT * FROM pgcarrier.servers WHERE database = 'app'")
        assert servers and all(s["type"] == "S" for s in servers)
        assert backend in [s["remote_pid"] for s in servers]
        pins = rows(d, "SELECT * FROM pgcarrier.pins")
        mine = [p for p in pins if p["remote_pid"] == backend]
        assert len(mine) == 1 and "temporary tables" in mine[0]["pinned_by"], pins
        assert mine[0]["pinned_since"] is not None
        cfg = dict(d.execute("SELECT key, value FROM pgcarrier.config").fetchall())
        assert cfg["listen_port"] == str(builtin.pooler_port)
        assert cfg["admin_peer_same_uid"] == "1"
        assert d.execute("SELECT changeable FROM pgcarrier.config WHERE key = 'workers'").fetchone() == (False,)
        # the settings view stays
        assert d.execute("SELECT setting FROM pgcarrier.settings WHERE name = 'pgcarrier.port'") \
            .fetchone() == (str(builtin.pooler_port),)


def test_show_rejects_anything_but_one_name(builtin):
    with direct(builtin) as d:
        for bad in ("POOLS; SHUTDOWN", "POOLS x", ""):
            with pytest.raises(psycopg.errors.InvalidParameterValue):
                d.execute("SELECT * FROM pgcarrier.show(%s) AS t(x text)", (bad,))
        # an unknown SHOW: the console's own error, with its SQLSTATE (42704)
        with pytest.raises(psycopg.errors.UndefinedObject) as e:
            d.execute("SELECT * FROM pgcarrier.show('NOSUCH') AS t(x text)")
        assert "unknown SHOW" in str(e.value)
        # a column the console does not have
        with pytest.raises(psycopg.errors.UndefinedColumn):
            d.execute("SELECT * FROM pgcarrier.show('VERSION') AS t(nosuch text)")
        assert d.execute("SELECT * FROM pgcarrier.show('VERSION') AS t(version text)") \
            .fetchone()[0].startswith("pgcarrier ")


# --------------------------------------------------------------- control --

def test_pause_waits_and_resume_lets_the_query_run(builtin):
    with builtin.pooler_connect(application_name="sqlpause") as c, direct(builtin) as d:
        c.execute("SELECT 1")
        d.execute("SELECT pgcarrier.pause('app')")
        try:
            done = {}

            def query():
                with builtin.pooler_connect(application_name="sqlpause2") as c2:
                    done["v"] = c2.execute("SELECT 7").fetchone()[0]
                    done["t"] = time.monotonic()

            th = threading.Thread(target=query)
            th.start()
            time.sleep(1.0)
            assert "v" not in done          # it waits while paused
            wait_for(lambda: d.execute("SELECT coalesce(sum(cl_waiting), 0) FROM pgcarrier.pools "
                                       "WHERE database = 'app'").fetchone()[0] >= 1,
                     what="a waiting client in pgcarrier.pools")
            resumed = time.monotonic()
        finally:
            d.execute("SELECT pgcarrier.resume('app')")
        th.join(20)
        assert done.get("v") == 7 and done["t"] >= resumed
        # every database at once (the default NULL)
        d.execute("SELECT pgcarrier.pause()")
        d.execute("SELECT pgcarrier.resume()")
        assert c.execute("SELECT 8").fetchone()[0] == 8
        # the console's errors come through with their SQLSTATE
        with pytest.raises(psycopg.errors.InvalidParameterValue) as e:   # 22023
            d.execute("SELECT pgcarrier.pause('pgcarrier')")
        assert "cannot be paused" in str(e.value)
        assert "PAUSE \"pgcarrier\"" in e.value.diag.context
        d.execute("SELECT pgcarrier.reconnect('app')")
        assert c.execute("SELECT 9").fetchone()[0] == 9


def test_pause_through_the_pooler_is_refused(builtin):
    """Through the pooler, PAUSE would wait for the very server connection
    that runs it: refused at once, with a hint."""
    builtin.sql("GRANT pgcarrier_admin TO app")
    try:
        with builtin.pooler_connect(db="postgres", application_name="sqlselfpause") as c:
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as e:
                c.execute("SELECT pgcarrier.pause()")
            assert "server's own port" in e.value.diag.message_hint
            # reading the views through the pooler is fine
            assert c.execute("SELECT count(*) FROM pgcarrier.pools").fetchone()[0] >= 1
    finally:
        builtin.sql("REVOKE pgcarrier_admin FROM app")


def test_kill_client_ends_the_client(builtin):
    victim = builtin.pooler_connect(application_name="sqlvictim")
    try:
        victim.execute("SELECT 1")
        with direct(builtin) as d:
            cid = d.execute("SELECT id FROM pgcarrier.clients WHERE application_name = 'sqlvictim'") \
                .fetchone()[0]
            d.execute("SELECT pgcarrier.kill_client(%s)", (cid,))
            with pytest.raises(psycopg.OperationalError, match="administrator command"):
                wait_for(lambda: not victim.execute("SELECT 1"), what="the client killed")
            wait_for(lambda: d.execute("SELECT count(*) FROM pgcarrier.clients "
                                       "WHERE application_name = 'sqlvictim'").fetchone()[0] == 0,
                     what="the killed client to leave pgcarrier.clients")
            with pytest.raises(psycopg.errors.UndefinedObject):     # 42704: no such client
                d.execute("SELECT pgcarrier.kill_client(%s)", (cid,))
    finally:
        victim.close()


# Every other SHOW the console has, as a view (the same columns, in order).
OTHER_VIEWS = {
    "databases": "DATABASES", "users": "USERS", "stats_totals": "STATS_TOTALS",
    "stats_averages": "STATS_AVERAGES", "totals": "TOTALS", "lists": "LISTS", "mem": "MEM",
    "state": "STATE", "version": "VERSION", "workers": "WORKERS", "errors": "ERRORS",
}


def test_every_show_of_the_console_is_a_view(builtin):
    with builtin.pooler_connect() as c:
        with pytest.raises(psycopg.errors.DivisionByZero):
            c.execute("SELECT 1/0")
    with direct(builtin) as d:
        for view, show in OTHER_VIEWS.items():
            cur = d.execute("SELECT * FROM pgcarrier.%s" % view)
            names = [col.name for col in cur.description]
            assert names == console_columns(builtin, show), view
            assert cur.fetchall(), view
        assert [r["name"] for r in rows(d, "SELECT name FROM pgcarrier.databases")].count("app") == 1
        assert d.execute("SELECT count(*) FROM pgcarrier.workers").fetchone()[0] == 2
        assert d.execute("SELECT value FROM pgcarrier.state WHERE key = 'paused'").fetchone()[0] == "no"
        assert d.execute("SELECT version FROM pgcarrier.version").fetchone()[0].startswith("pgcarrier")
        assert d.execute("SELECT count FROM pgcarrier.errors WHERE database = 'app' "
                         "AND sqlstate_class = '22'").fetchone()[0] >= 1


def test_disable_enable_kill_wait_close(builtin):
    with direct(builtin) as d:
        d.execute("SELECT pgcarrier.disable('app')")
        try:
            assert d.execute("SELECT disabled FROM pgcarrier.databases WHERE name = 'app'").fetchone()[0] == 1
            with pytest.raises(psycopg.OperationalError, match="not currently accepting connections"):
                builtin.pooler_connect(application_name="sqldisabled")
        finally:
            d.execute("SELECT pgcarrier.enable('app')")
        victim = builtin.pooler_connect(application_name="sqlkill")
        try:
            victim.execute("SELECT 1")
            d.execute("SELECT pgcarrier.kill('app')")
            with pytest.raises(psycopg.OperationalError):
                wait_for(lambda: not victim.execute("SELECT 1"), what="the client killed")
        finally:
            victim.close()
        # KILL leaves the database paused, as PgBouncer's does
        d.execute("SELECT pgcarrier.resume('app')")
        with builtin.pooler_connect() as c:
            assert c.execute("SELECT 7").fetchone()[0] == 7
        d.execute("SELECT pgcarrier.reconnect('app')")
        d.execute("SELECT pgcarrier.wait_close('app')")
        d.execute("SELECT pgcarrier.wait_close()")
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            d.execute("SELECT pgcarrier.disable('')")


def test_wait_close_through_the_pooler_is_refused(builtin):
    builtin.sql("GRANT pgcarrier_admin TO app")
    try:
        with builtin.pooler_connect(db="postgres") as c:
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
                c.execute("SELECT pgcarrier.wait_close()")
    finally:
        builtin.sql("REVOKE pgcarrier_admin FROM app")


# ------------------------------------------------------------ privileges --

def test_a_role_without_privileges_gets_42501(builtin):
    with direct(builtin, user="nobody") as n:
        for sql in ("SELECT * FROM pgcarrier.pools", "SELECT * FROM pgcarrier.clients",
                    "SELECT * FROM pgcarrier.config",
                    "SELECT * FROM pgcarrier.show('POOLS') AS t(database text)",
                    "SELECT pgcarrier.pause('app')", "SELECT pgcarrier.resume()",
                    "SELECT pgcarrier.reconnect()", "SELECT pgcarrier.kill_client(1)",
                    "SELECT * FROM pgcarrier.workers", "SELECT pgcarrier.disable('app')",
                    "SELECT pgcarrier.kill('app')", "SELECT pgcarrier.wait_close()"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                n.execute(sql)
        # the settings view is everyone's, as pg_settings is
        assert n.execute("SELECT count(*) FROM pgcarrier.settings").fetchone()[0] > 10


def test_the_backend_checks_even_a_mistaken_grant(builtin):
    builtin.sql("GRANT EXECUTE ON FUNCTION pgcarrier.pause(text) TO nobody")
    try:
        with direct(builtin, user="nobody") as n:
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
                n.execute("SELECT pgcarrier.pause('app')")
            assert "pgcarrier_admin" in str(e.value.diag.message_detail)
    finally:
        builtin.sql("REVOKE EXECUTE ON FUNCTION pgcarrier.pause(text) FROM nobody")


def test_pgcarrier_admin_may_do_everything_pg_monitor_may_read(builtin):
    with direct(builtin, user="ops") as o:
        assert o.execute("SELECT count(*) FROM pgcarrier.pools").fetchone()[0] >= 0
        o.execute("SELECT pgcarrier.pause('app')")
        o.execute("SELECT pgcarrier.resume('app')")
        # the console connection logs in as the role
        assert o.execute("SELECT count(*) FROM pgcarrier.clients WHERE database = 'pgcarrier' "
                         "AND \"user\" = 'ops'").fetchone()[0] == 1
    with direct(builtin, user="watcher") as w:
        assert w.execute("SELECT count(*) FROM pgcarrier.stats").fetchone()[0] >= 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            w.execute("SELECT pgcarrier.pause('app')")


def test_the_role_is_nologin_and_a_second_database_reuses_it(builtin):
    assert builtin.sql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'pgcarrier_admin'") == "f"
    # roles are cluster-wide: CREATE EXTENSION in another database finds it
    builtin.sql("CREATE EXTENSION pgcarrier", db="app")
    try:
        assert builtin.sql("SELECT count(*) FROM pgcarrier.pools", db="app") != ""
    finally:
        builtin.sql("DROP EXTENSION pgcarrier", db="app")
    assert builtin.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'pgcarrier_admin'") == "1"


def test_a_peer_of_another_uid_is_no_admin(builtin):
    """admin_peer_same_uid admits only the daemon's own OS user: the test
    runs as root, the daemon as postgres, and pg_hba.conf has no line for
    the console's database that would let root's psql in as an admin."""
    r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-A", "-t", "-w",
                        "-h", builtin.sockdir, "-p", str(builtin.pooler_port),
                        "-U", "nobody", "-d", "pgcarrier", "-c", "PAUSE"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode != 0
    assert "permission denied" in r.stderr or "authentication failed" in r.stderr, r.stderr


# ------------------------------------------------------ pooler not running --

def test_pooler_not_running_is_a_clear_error(builtin):
    with direct(builtin) as d:
        builtin.add_conf("pgcarrier.enabled = off")
        builtin.reload()
        try:
            wait_for(lambda: not builtin.pooler_open(), timeout=20, what="the pooler to stop")
            d.execute("SELECT 1")       # the session takes the reload
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as e:
                d.execute("SELECT * FROM pgcarrier.pools")
            assert "pgcarrier.enabled is off" in str(e.value)
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
                d.execute("SELECT pgcarrier.pause()")
        finally:
            builtin.add_conf("pgcarrier.enabled = on")
            builtin.reload()
            builtin.wait_pooler(20)
    # back: the views answer again
    with direct(builtin) as d:
        wait_for(lambda: _answers(d), timeout=20, what="the views to answer again")


def _answers(d):
    try:
        d.execute("SELECT count(*) FROM pgcarrier.pools")
        return True
    except psycopg.Error:
        return False


def test_dblink_gives_a_non_superuser_no_way_in(builtin):
    """The console trusts the server's OS uid, which every backend has: a
    non-superuser's dblink to it is refused by dblink itself, since the
    console asks for no password (the same protection as for the server's
    own peer and trust lines)."""
    if not os.path.exists(os.path.join(PG_BIN, "..", "lib", "dblink.so")):
        pytest.skip("dblink is not installed")
    builtin.sql("CREATE EXTENSION IF NOT EXISTS dblink; GRANT EXECUTE ON FUNCTION "
                "dblink(text, text) TO nobody")
    conninfo = "host=%s port=%d dbname=pgcarrier user=nobody password=x" % (
        builtin.sockdir, builtin.pooler_port)
    with direct(builtin, user="nobody") as n:
        with pytest.raises(psycopg.Error) as e:
            n.execute("SELECT * FROM dblink(%s, 'PAUSE') AS t(x text)", (conninfo,))
        assert "password is required" in str(e.value)
    # a superuser may, as it may connect to the server itself
    with direct(builtin) as d:
        assert d.execute("SELECT * FROM dblink(%s, 'SHOW VERSION') AS t(version text)",
                         (conninfo,)).fetchone()[0].startswith("pgcarrier ")


def test_a_cancelled_pause_closes_its_console_connection(builtin):
    """pause() waits for a running transaction; statement_timeout ends the
    wait (libpq is driven on the backend's latch), the console connection
    is closed, the pool stays paused until resume()."""
    with builtin.pooler_connect(application_name="sqlbusy") as busy, direct(builtin) as d:
        busy.execute("BEGIN")
        busy.execute("SELECT 1")            # holds its server connection
        d.execute("SET statement_timeout = '1s'")
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            d.execute("SELECT pgcarrier.pause('app')")
        assert time.monotonic() - t0 < 5
        d.execute("RESET statement_timeout")
        # only this query's own console connection is left
        wait_for(lambda: d.execute("SELECT count(*) FROM pgcarrier.clients "
                                   "WHERE database = 'pgcarrier'").fetchone()[0] == 1,
                 what="the cancelled pause's console connection to close")
        busy.execute("COMMIT")
        d.execute("SELECT pgcarrier.resume('app')")
        assert busy.execute("SELECT 5").fetchone() == (5,)


def test_pooler_that_cannot_start_gives_08001(tmp_path):
    srv = harness.BuiltinPgServer("builtinsql2", wait=False,
                                  conf="pgcarrier.daemon_path = '/nonexistent/pgcarrier'")
    try:
        srv.sql("CREATE EXTENSION pgcarrier")
        with direct(srv) as d:
            with pytest.raises(psycopg.errors.SqlclientUnableToEstablishSqlconnection) as e:
                d.execute("SELECT * FROM pgcarrier.pools")
            assert "could not connect to the pooler's admin console" in str(e.value)
            assert "Is the pooler running?" in e.value.diag.message_hint
    finally:
        srv.cleanup()


def test_a_pooler_that_does_not_answer_times_out(builtin):
    """A daemon stopped (SIGSTOP) accepts nothing: the login gives up after
    10 s with 08001, and the views answer again once it runs."""
    import signal
    pids = builtin.pooler_pids()
    assert len(pids) == 1
    with direct(builtin) as d:
        os.kill(pids[0], signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with pytest.raises(psycopg.errors.SqlclientUnableToEstablishSqlconnection) as e:
                d.execute("SELECT * FROM pgcarrier.pools")
            assert 9 <= time.monotonic() - t0 < 20
            assert "did not answer within 10 s" in e.value.diag.message_detail
        finally:
            os.kill(pids[0], signal.SIGCONT)
        wait_for(lambda: _answers(d), timeout=20, what="the views to answer again")
