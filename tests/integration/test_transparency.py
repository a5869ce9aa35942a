"""Transaction pooling as transparent as a direct connection: one test per
way issue 9 found pgcarrier to break it (session state that leaked,
vanished or went stale; protocol states it did not follow; messages one
client could use to hurt another).

Most tests use pool_size=1, so that every other client's transaction runs
on the same server connection in between: the swap happens for sure.
"""

import asyncio
import re
import socket
import struct
import threading
import time

import psycopg
import pytest

import harness
from harness import RawConn, cstr, msg_bind, msg_execute, msg_parse, msg_describe


def _one(conn, sql, *params):
    return conn.execute(sql, params or None).fetchone()[0]


def _other_client(c, sql="SELECT 1"):
    """Another client runs a transaction (on the only server connection)."""
    with c.connect(application_name="other") as o:
        return o.execute(sql).fetchall()


@pytest.fixture
def role_r(pg):
    pg.sql("DROP ROLE IF EXISTS pgc_role_r; CREATE ROLE pgc_role_r NOLOGIN; "
           "GRANT pgc_role_r TO app")
    yield "pgc_role_r"
    pg.sql("DROP OWNED BY pgc_role_r; DROP ROLE IF EXISTS pgc_role_r", db="app")


# --------------------------------------------------------------- SET ROLE --

def test_set_role_carried_and_never_leaks(carrier, role_r):
    c = carrier(pool_mode="transaction", pool_size=1)
    with c.connect() as a:
        a.execute("SET ROLE pgc_role_r")
        assert _one(a, "SELECT current_user") == "pgc_role_r"
        # The next clients of the pool, on the same server connection, run as app.
        for _ in range(3):
            with c.connect(application_name="b") as b:
                assert _one(b, "SELECT current_user") == "app"
                assert _one(b, "SHOW role") == "none"
        # A's role followed it back onto the server.
        assert _one(a, "SELECT current_user") == "pgc_role_r"
        a.execute("RESET ROLE")
        _other_client(c)
        assert _one(a, "SELECT current_user") == "app"
    # A client that connects after A left never inherits A's role either.
    with c.connect() as a:
        a.execute("SET ROLE pgc_role_r")
    with c.connect() as b:
        assert _one(b, "SELECT current_user") == "app"


def test_session_authorization_pins_and_never_leaks(carrier, pg):
    c = carrier(pool_mode="transaction", pool_size=2)
    with c.connect(db="postgres", user="postgres") as a:
        a.execute("SET SESSION AUTHORIZATION app")
        pid = _one(a, "SELECT pg_backend_pid()")
        assert _one(a, "SELECT session_user") == "app"
        for _ in range(3):
            with c.connect(db="postgres", user="postgres") as b:
                assert _one(b, "SELECT session_user") == "postgres"
                assert _one(b, "SELECT pg_backend_pid()") != pid
        assert _one(a, "SELECT session_user") == "app"
        assert _one(a, "SELECT pg_backend_pid()") == pid
        a.execute("RESET SESSION AUTHORIZATION")
        assert _one(a, "SELECT session_user") == "postgres"
    assert re.search(r"pinned to its server connection: SET SESSION AUTHORIZATION", c.log())


def test_read_only_parameters_are_not_replayed(carrier):
    """A superuser's SET ROLE changes is_superuser, which cannot be SET:
    replaying it failed the whole preamble and lost every setting."""
    c = carrier(pool_mode="transaction", pool_size=1)
    with c.connect(db="postgres", user="postgres") as a:
        a.execute("SET search_path = pg_catalog, public")
        a.execute("SET work_mem = '7MB'")
        a.execute("SET ROLE app")
        assert a.info.parameter_status("is_superuser") == "off"
        _other_client(c)
        with c.connect(db="postgres", user="postgres") as b:
            assert _one(b, "SHOW work_mem") != "7MB"
        assert _one(a, "SHOW search_path") == "pg_catalog, public"
        assert _one(a, "SHOW work_mem") == "7MB"
        assert _one(a, "SELECT current_user") == "app"
    assert "could not apply" not in c.log()


def test_failing_replay_is_an_error_for_that_client(carrier, pg, role_r):
    c = carrier(pool_mode="transaction", pool_size=1)
    with c.connect() as a:
        a.execute("SET ROLE pgc_role_r")
        _other_client(c)                     # the server's role is reset for it
        pg.sql("REVOKE pgc_role_r FROM app")
        with pytest.raises(psycopg.OperationalError) as e:
            a.execute("SELECT current_user")
        assert "could not restore this session's settings" in str(e.value)
        assert "permission denied to set role" in str(e.value)
    # Everyone else goes on.
    assert _other_client(c, "SELECT current_user") == [("app",)]


# -------------------------------------------------------------- the probe --

@pytest.mark.parametrize("simple", [True, False], ids=["simple", "extended"])
def test_custom_setting_carried(carrier, simple):
    """A custom setting (myapp.tenant) is not in pg_settings: the probe asks
    for it by name, with a well-formed Query, whichever protocol set it."""
    c = carrier(pool_mode="transaction", pool_size=1)
    kw = {"cursor_factory": psycopg.ClientCursor} if simple else {}
    with c.connect(**kw) as a:
        a.execute("SET myapp.tenant = 'acme'")
        _other_client(c)
        with c.connect(**kw) as b:
            assert _one(b, "SELECT current_setting('myapp.tenant', true)") in (None, "")
        assert _one(a, "SHOW myapp.tenant") == "acme"
    log = c.log()
    assert "probe failed" not in log, log[-2000:]
    assert "pinned" not in log, log[-2000:]


def test_notifications_reach_a_listener_that_runs_statements(carrier, pg):
    c = carrier(pool_mode="transaction", pool_size=2)
    n = 40
    got = []
    with c.connect() as lst, pg.connect() as d:
        lst.add_notify_handler(lambda note: got.append(note.payload))
        lst.execute("LISTEN pgc_tr_ch")
        for i in range(n):
            d.execute("SELECT pg_notify('pgc_tr_ch', %s)", [str(i)])
            # SET makes pgcarrier probe the session after each statement.
            lst.execute("SET work_mem = '%dMB'" % (i % 5 + 4))
        deadline = time.monotonic() + 5
        while len(got) < n and time.monotonic() < deadline:
            time.sleep(0.05)
            lst.execute("SELECT 1")
        assert got == [str(i) for i in range(n)]


def test_notification_pid_is_the_clients_backend(carrier):
    c = carrier(pool_mode="transaction", pool_size=2)
    got = []
    with c.connect() as a:
        a.add_notify_handler(lambda note: got.append((note.payload, note.pid)))
        a.execute("LISTEN pgc_tr_self")
        a.execute("NOTIFY pgc_tr_self, 'me'")
        with c.connect() as b:
            b.execute("NOTIFY pgc_tr_self, 'other'")
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            a.execute("SELECT 1")
        # libpq (and every driver) knows its backend by the pid of BackendKeyData.
        assert got == [("me", a.info.backend_pid), ("other", got[1][1])], (got, a.info.backend_pid)
        assert got[1][1] != a.info.backend_pid


# ------------------------------------------------------- the unnamed statement --

def test_unnamed_statement_survives_a_sync(carrier):
    c = carrier(pool_mode="transaction", pool_size=1)
    with RawConn(c.host, c.port) as r:
        r.startup("app", "app")
        r.send_raw(harness.msg("P", msg_parse("", "SELECT $1::int * 2")) + harness.msg("S"))
        assert [t for t, _ in r.recv_until_ready()] == ["1", "Z"]
        _other_client(c)                    # its Query drops the server's unnamed statement
        r.send_raw(harness.msg("D", msg_describe("S", "")) + harness.msg("S"))
        assert [t for t, _ in r.recv_until_ready()] == ["t", "T", "Z"]
        _other_client(c)
        r.send_raw(harness.msg("B", msg_bind("", "", ["21"])) + harness.msg("E", msg_execute("")) +
                   harness.msg("S"))
        msgs = r.recv_until_ready()
        rows = [harness.data_row(p) for t, p in msgs if t == "D"]
        assert rows == [[b"42"]], msgs
        # A simple Query drops it, as on a direct connection.
        r.query("SELECT 1")
        r.send_raw(harness.msg("B", msg_bind("", "", ["1"])) + harness.msg("S"))
        msgs = r.recv_until_ready()
        assert msgs[0][0] == "E" and harness.parse_error(msgs[0][1])["C"] == "26000", msgs


def test_asyncpg_without_statement_cache(carrier):
    """asyncpg with statement_cache_size=0 (what every asyncpg user behind a
    pooler sets) parses the unnamed statement, syncs, then binds it: with two
    clients taking turns on one server connection, the Bind lands after the
    other client's statements."""
    c = carrier(pool_mode="transaction", pool_size=1)

    async def worker(i):
        conn = await c.aconnect(statement_cache_size=0)
        try:
            for k in range(30):
                assert await conn.fetchval("SELECT $1::int + %d" % i, k) == k + i
        finally:
            await conn.close()

    async def main():
        await asyncio.gather(*(worker(i) for i in range(3)))

    asyncio.run(asyncio.wait_for(main(), 60))


# ------------------------------------------------------- shared statements --

def _raw_prepare_and_run(r, name, sql):
    r.send_raw(harness.msg("P", msg_parse(name, sql)) + harness.msg("S"))
    r.recv_until_ready()
    r.send_raw(harness.msg("B", msg_bind("", name)) + harness.msg("E", msg_execute("")) +
               harness.msg("S"))
    msgs = r.recv_until_ready()
    errs = [harness.parse_error(p)["M"] for t, p in msgs if t == "E"]
    return errs or [harness.data_row(p) for t, p in msgs if t == "D"]


def test_statement_of_a_temp_table_is_not_shared(carrier, pg):
    """Client A prepares a text that means its temp table; after A drops it,
    client B prepares the same text on the same server: B's statement must
    mean the permanent table, as on a direct connection (where a fresh Parse
    never meets "cached plan must not change result type")."""
    pg.sql("DROP TABLE IF EXISTS pgc_stale_t; CREATE TABLE pgc_stale_t(a int); "
           "INSERT INTO pgc_stale_t VALUES (1); GRANT ALL ON pgc_stale_t TO PUBLIC", db="app")
    c = carrier(pool_mode="transaction", pool_size=1)
    q = "SELECT * FROM pgc_stale_t"
    try:
        with RawConn(c.host, c.port) as a:
            a.startup("app", "app")
            a.query("CREATE TEMP TABLE pgc_stale_t(b text)")
            a.query("INSERT INTO pgc_stale_t VALUES ('temp')")
            assert _raw_prepare_and_run(a, "s1", q) == [[b"temp"]]
            a.query("DROP TABLE pg_temp.pgc_stale_t")
            with RawConn(c.host, c.port) as b:
                b.startup("app", "app")
                assert _raw_prepare_and_run(b, "s1", q) == [[b"1"]]
    finally:
        pg.sql("DROP TABLE pgc_stale_t", db="app")


def test_statement_after_table_recreated(carrier, pg):
    c = carrier(pool_mode="transaction", pool_size=1)
    q = "SELECT * FROM pgc_ddl_t"
    with RawConn(c.host, c.port) as a:
        a.startup("app", "app")
        a.query("DROP TABLE IF EXISTS pgc_ddl_t")
        a.query("CREATE TABLE pgc_ddl_t(a int)")
        a.query("INSERT INTO pgc_ddl_t VALUES (1)")
        assert _raw_prepare_and_run(a, "s1", q) == [[b"1"]]
        with RawConn(c.host, c.port) as b:
            b.startup("app", "app")
            b.query("DROP TABLE pgc_ddl_t")
            b.query("CREATE TABLE pgc_ddl_t(a text, b int)")
            b.query("INSERT INTO pgc_ddl_t VALUES ('x', 2)")
            # A fresh Parse after the DDL sees the new table, as directly.
            assert _raw_prepare_and_run(b, "s1", q) == [[b"x", b"2"]]
            b.query("DROP TABLE pgc_ddl_t")


def test_statement_parsed_under_set_local_is_not_shared(carrier, pg):
    pg.sql("DROP SCHEMA IF EXISTS pgc_sp1 CASCADE; DROP SCHEMA IF EXISTS pgc_sp2 CASCADE; "
           "CREATE SCHEMA pgc_sp1 AUTHORIZATION app; CREATE SCHEMA pgc_sp2 AUTHORIZATION app; "
           "CREATE TABLE pgc_sp1.t(v int); INSERT INTO pgc_sp1.t VALUES (1); "
           "CREATE TABLE pgc_sp2.t(v text); INSERT INTO pgc_sp2.t VALUES ('two'); "
           "GRANT ALL ON ALL TABLES IN SCHEMA pgc_sp1, pgc_sp2 TO PUBLIC; "
           "GRANT USAGE ON SCHEMA pgc_sp1, pgc_sp2 TO PUBLIC", db="app")
    c = carrier(pool_mode="transaction", pool_size=1)
    q = "SELECT v FROM t"
    try:
        with RawConn(c.host, c.port) as a, RawConn(c.host, c.port) as b:
            a.startup("app", "app", options="-c search_path=pgc_sp1")
            b.startup("app", "app", options="-c search_path=pgc_sp1")
            a.query("BEGIN")
            a.query("SET LOCAL search_path = pgc_sp2")
            assert _raw_prepare_and_run(a, "s1", q) == [[b"two"]]
            a.query("COMMIT")
            # b's search_path is pgc_sp1, and so was a's outside its transaction.
            assert _raw_prepare_and_run(b, "s1", q) == [[b"1"]]
            # Different search_paths never share a statement either.
            b.query("SET search_path = pgc_sp2")
            assert _raw_prepare_and_run(b, "s2", q + " WHERE true") == [[b"two"]]
            b.query("SET search_path = pgc_sp1")
            assert _raw_prepare_and_run(b, "s3", q + " WHERE true") == [[b"1"]]
    finally:
        pg.sql("DROP SCHEMA pgc_sp1 CASCADE; DROP SCHEMA pgc_sp2 CASCADE", db="app")


def test_one_client_same_text_under_two_search_paths(carrier, pg):
    """A client whose settings changed has statements of its own; the same
    text parsed under another search_path still needs another statement
    (on a direct connection each Parse is analysed in its own path)."""
    pg.sql("DROP SCHEMA IF EXISTS pgc_tp1 CASCADE; DROP SCHEMA IF EXISTS pgc_tp2 CASCADE; "
           "CREATE SCHEMA pgc_tp1 AUTHORIZATION app; CREATE SCHEMA pgc_tp2 AUTHORIZATION app; "
           "CREATE TABLE pgc_tp1.t(v int); INSERT INTO pgc_tp1.t VALUES (1); "
           "CREATE TABLE pgc_tp2.t(v text); INSERT INTO pgc_tp2.t VALUES ('two'); "
           "GRANT ALL ON ALL TABLES IN SCHEMA pgc_tp1, pgc_tp2 TO PUBLIC; "
           "GRANT USAGE ON SCHEMA pgc_tp1, pgc_tp2 TO PUBLIC", db="app")
    c = carrier(pool_mode="transaction", pool_size=1)
    q = "SELECT v FROM t WHERE 1 = 1"
    try:
        with RawConn(c.host, c.port) as b:
            b.startup("app", "app")
            b.query("SET search_path = pgc_tp2")
            b.query("SELECT 1")             # the guard has seen the change: b's statements are its own
            assert _raw_prepare_and_run(b, "s2", q) == [[b"two"]]
            b.query("SET search_path = pgc_tp1")
            b.query("SELECT 1")
            assert _raw_prepare_and_run(b, "s3", q) == [[b"1"]]
            assert _raw_prepare_and_run(b, "s4", q) == [[b"1"]]
            # A SET and a Parse in one pipeline: the Parse is made before the
            # SET's effect is known, and must still mean the text in the new path.
            for path, name, want in (("pgc_tp2", "p2", [[b"two"]]), ("pgc_tp1", "p1", [[b"1"]])):
                b.send_raw(harness.msg("Q", cstr("SET search_path = " + path)) +
                           harness.msg("P", msg_parse(name, q)) + harness.msg("S"))
                b.recv_until_ready()
                b.recv_until_ready()
                b.send_raw(harness.msg("B", msg_bind("", name)) + harness.msg("E", msg_execute("")) +
                           harness.msg("S"))
                msgs = b.recv_until_ready()
                errs = [harness.parse_error(p)["M"] for t, p in msgs if t == "E"]
                assert (errs or [harness.data_row(p) for t, p in msgs if t == "D"]) == want
    finally:
        pg.sql("DROP SCHEMA pgc_tp1 CASCADE; DROP SCHEMA pgc_tp2 CASCADE", db="app")


# --------------------------------------------------------------- sequences --

def test_currval_never_another_clients_value(carrier, pg):
    pg.sql("DROP SEQUENCE IF EXISTS pgc_seq; CREATE SEQUENCE pgc_seq; "
           "GRANT ALL ON pgc_seq TO PUBLIC", db="app")
    c = carrier(pool_mode="transaction", pool_size=1)
    with c.connect() as a, c.connect() as b:
        va = _one(a, "SELECT nextval('pgc_seq')")
        # b never called nextval: on a direct connection, currval is not defined for it.
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            b.execute("SELECT currval('pgc_seq')")
        vb = _one(b, "SELECT nextval('pgc_seq')")
        assert vb != va
        # a's own value is on a server connection that has served b since: refused clearly.
        with pytest.raises(psycopg.errors.FeatureNotSupported) as e:
            a.execute("SELECT currval('pgc_seq')")
        assert "currval() and lastval()" in str(e.value)
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            a.execute("SELECT lastval()")
        # In the same transaction as nextval(), it works as directly.
        a.execute("BEGIN")
        v = _one(a, "SELECT nextval('pgc_seq')")
        assert _one(a, "SELECT currval('pgc_seq')") == v
        assert _one(a, "SELECT lastval()") == v
        a.execute("COMMIT")
        # and in one Query
        rows = a.execute("SELECT nextval('pgc_seq') AS n, currval('pgc_seq') AS c").fetchall()
        assert rows[0][0] == rows[0][1]
    pg.sql("DROP SEQUENCE pgc_seq", db="app")


# -------------------------------------------------------------------- COPY --

def test_extended_protocol_copy_gives_the_server_back(carrier):
    """libpq runs COPY through the extended protocol: Parse/Bind/Execute/Sync,
    the data, CopyDone and a second Sync; PostgreSQL ignores the first Sync."""
    c = carrier(pool_mode="transaction", pool_size=1, query_wait_timeout=5)
    with RawConn(c.host, c.port) as r:
        r.startup("app", "app")
        r.send_raw(harness.msg("P", msg_parse("", "COPY scratch(client, seq, val) FROM STDIN")) +
                   harness.msg("B", msg_bind("", "")) + harness.msg("E", msg_execute("")) +
                   harness.msg("S"))
        assert [r.recv()[0] for _ in range(3)] == ["1", "2", "G"]
        r.send_raw(harness.msg("d", b"7701\t1\ta\n7701\t2\tb\n") + harness.msg("c") + harness.msg("S"))
        assert [t for t, _ in r.recv_until_ready()] == ["C", "Z"]
        # The server went back to the pool: another client gets it at once.
        t0 = time.monotonic()
        assert _other_client(c, "SELECT count(*) FROM scratch WHERE client = 7701") == [(2,)]
        assert time.monotonic() - t0 < 3
        r.query("DELETE FROM scratch WHERE client = 7701")


def test_copy_data_sent_ahead_of_copy_in_response(carrier):
    """asyncpg sends its data right behind the COPY statement."""
    c = carrier(pool_mode="transaction", pool_size=1)

    async def main():
        conn = await c.aconnect()
        try:
            await conn.copy_records_to_table("scratch", records=[(7702, i, "x") for i in range(50)],
                                             columns=["client", "seq", "val"])
            assert await conn.fetchval("SELECT count(*) FROM scratch WHERE client = 7702") == 50
            await conn.execute("DELETE FROM scratch WHERE client = 7702")
        finally:
            await conn.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert _other_client(c) == [(1,)]


# ------------------------------------------------------- session_pinning = error --

def test_pinning_error_before_the_next_statement(carrier, pg):
    pg.sql("CREATE OR REPLACE FUNCTION pgc_mk_temp() RETURNS int LANGUAGE plpgsql AS "
           "$$BEGIN CREATE TEMP TABLE IF NOT EXISTS pgc_hidden(v int); RETURN 1; END$$", db="app")
    pg.sql("DELETE FROM kv WHERE k = 'pgc-after'", db="app")
    c = carrier(pool_mode="transaction", pool_size=2, session_pinning="error")
    with RawConn(c.host, c.port) as r:
        r.startup("app", "app")
        # Both in one write: the second must not run.
        r.send_raw(harness.msg("Q", cstr("SELECT pgc_mk_temp()")) +
                   harness.msg("Q", cstr("INSERT INTO kv VALUES ('pgc-after', 'ran')")))
        msgs = []
        try:
            while True:
                msgs.append(r.recv())
        except (EOFError, OSError):
            pass
        errs = [harness.parse_error(p) for t, p in msgs if t == "E"]
        assert errs and errs[-1]["C"] == "0A000" and errs[-1]["S"] == "FATAL", msgs
        assert "temporary tables" in errs[-1]["M"]
    assert pg.sql("SELECT count(*) FROM kv WHERE k = 'pgc-after'", db="app") == "0"
    pg.sql("DROP FUNCTION pgc_mk_temp()", db="app")


# ------------------------------------------------------------ big messages --

@pytest.mark.parametrize("size", [40 * 1024, 300 * 1024])
def test_large_named_parse(carrier, size):
    c = carrier(pool_mode="transaction", pool_size=1)
    pad = "x" * size
    with c.connect() as a:
        q = "SELECT length(%s::text), '" + pad + "' IS NOT NULL"
        assert a.execute(q, ["abc"], prepare=True).fetchone() == (3, True)
        _other_client(c)
        assert a.execute(q, ["abcd"], prepare=True).fetchone() == (4, True)


# ------------------------------------------------------ one client vs others --

def test_password_message_after_login_hurts_only_its_sender(carrier):
    c = carrier(pool_mode="transaction", pool_size=1)
    with c.connect() as bystander:
        with RawConn(c.host, c.port) as r:
            r.startup("app", "app")
            r.send("p", cstr("secret"))
            t, p = r.recv()
            err = harness.parse_error(p)
            assert t == "E" and err["S"] == "FATAL" and err["C"] == "08P01", err
            assert err["M"] == "invalid frontend message type 112"
            with pytest.raises((EOFError, OSError)):
                r.recv()
        for _ in range(3):
            assert _one(bystander, "SELECT 1") == 1
            assert _other_client(c) == [(1,)]


def test_bind_names_are_read_within_the_message(carrier):
    """A Bind whose statement name has no terminator inside the message: the
    guard must not read the next message as part of it."""
    c = carrier(pool_mode="transaction", pool_size=1)
    with RawConn(c.host, c.port) as r:
        r.startup("app", "app")
        # A statement named "S": the type byte of a Sync right after the
        # broken Bind spells that name, if the name is read past the Bind.
        r.send_raw(harness.msg("P", msg_parse("S", "SELECT 1")) + harness.msg("S"))
        assert [t for t, _ in r.recv_until_ready()] == ["1", "Z"]
        bad = harness.msg("B", b"\0")                # the portal name, and no statement name
        nxt = harness.msg("Q", cstr("SELECT 'still framed'"))
        r.send_raw(bad + harness.msg("S") + nxt)
        msgs = r.recv_until_ready(2)
        assert msgs[0][0] == "E", msgs
        rows = [harness.data_row(p) for t, p in msgs if t == "D"]
        assert rows == [[b"still framed"]], msgs
    assert _other_client(c) == [(1,)]


# ----------------------------------------------------- RESET to the startup --

@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_reset_goes_back_to_the_startup_value(carrier, pg, mode):
    c = carrier(pool_mode=mode, pool_size=2)
    dsn = c.dsn(options="-c DateStyle=Postgres,MDY -c TimeZone=PST8PDT")
    with pg.connect(options="-c DateStyle=Postgres,MDY -c TimeZone=PST8PDT") as d, \
            psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as p:
        for conn in (d, p):
            seen = []
            for sql in ("SET DateStyle = ISO", "RESET DateStyle", "SHOW DateStyle",
                        "SET TIME ZONE 'UTC'", "RESET TIME ZONE", "SHOW TimeZone",
                        "SET TIME ZONE 'UTC'", "SET TIME ZONE DEFAULT", "SHOW TimeZone",
                        "SET TIME ZONE 'UTC'", "SET TIME ZONE LOCAL", "SHOW TimeZone",
                        "SET TimeZone = 'UTC'", "SET SESSION TimeZone TO DEFAULT", "SHOW TimeZone"):
                cur = conn.execute(sql)
                if sql.startswith("SHOW"):
                    seen.append(cur.fetchone()[0])
            seen.append(conn.info.parameter_status("TimeZone"))
            seen.append(conn.info.parameter_status("DateStyle"))
            if conn is d:
                want = seen
            else:
                assert seen == want


def test_psql_gdesc(carrier):
    """psql's \\gdesc: Parse of the unnamed statement, Sync, then Describe."""
    import subprocess
    c = carrier(pool_mode="transaction", pool_size=1)
    r = subprocess.run(["psql", "-X", "-A", "-t", c.dsn()], input="SELECT 1 AS one, 'x'::text AS two \\gdesc\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["one|integer", "two|text"], r.stdout


def test_prepared_statement_sees_a_temp_table_created_after_it(carrier, pg):
    """A direct session's statement is analysed again when its first temp
    table appears (the search path changes). Through pgcarrier the backend
    may have had a temp schema from an earlier client, so nothing makes
    PostgreSQL look again: the client's statement must be its own."""
    pg.sql("DROP TABLE IF EXISTS pgc_shadow; CREATE TABLE pgc_shadow(k text); "
           "GRANT ALL ON pgc_shadow TO PUBLIC", db="app")
    c = carrier(pool_mode="transaction", pool_size=1)
    q = "SELECT count(*) FROM pgc_shadow"
    try:
        with c.connect() as x:             # leaves a temp schema on the backend
            x.execute("CREATE TEMP TABLE pgc_other(v int)")
            x.execute("DROP TABLE pgc_other")
        with RawConn(c.host, c.port) as a:
            a.startup("app", "app")
            assert _raw_prepare_and_run(a, "s1", q) == [[b"0"]]
            a.query("CREATE TEMP TABLE pgc_shadow(k text)")
            a.query("INSERT INTO pgc_shadow VALUES ('mine')")
            a.send_raw(harness.msg("B", msg_bind("", "s1")) + harness.msg("E", msg_execute("")) +
                       harness.msg("S"))
            rows = [harness.data_row(p) for t, p in a.recv_until_ready() if t == "D"]
            assert rows == [[b"1"]]
    finally:
        pg.sql("DROP TABLE pgc_shadow", db="app")


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_reset_answers_only_what_postgresql_answers(carrier, mode):
    """The startup values put back behind a RESET are pgcarrier's: their
    rows never reach the client."""
    c = carrier(pool_mode=mode, pool_size=2)
    with RawConn(c.host, c.port) as r:
        r.startup("app", "app", DateStyle="Postgres, MDY")
        r.query("SET DateStyle = ISO")
        msgs = r.query("RESET DateStyle")
        assert [t for t, _ in msgs if t not in ("S", "N")] == ["C", "Z"], msgs
        assert r.params["DateStyle"] == "Postgres, MDY"
        rows = [harness.data_row(p) for t, p in r.query("SHOW DateStyle") if t == "D"]
        assert rows == [[b"Postgres, MDY"]]
