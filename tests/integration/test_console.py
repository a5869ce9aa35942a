"""The admin console: SHOW commands against clients and servers in known
states, the numbers they give, PgBouncer's column names and types, and who
may use it (docs/behaviour.md, "Admin console")."""

import os
import subprocess
import threading

import psycopg
import pytest

import harness
from console_helpers import (CONSOLE_SETTINGS, Holder, console, pool_row, show,
                             show_columns, stats_row, wait_until)

PSQL = os.path.join(harness.PG_BINDIR, "psql")
TEXT, INT4, INT8, NUMERIC = 25, 23, 20, 1700


@pytest.fixture
def admin_carrier(carrier):
    def make(**settings):
        conf = dict(CONSOLE_SETTINGS)
        conf.update(settings)
        return carrier(**conf)
    return make


def test_pools_clients_servers_with_50_clients_8_busy_42_waiting(pg, admin_carrier):
    """50 clients, pool_size 8: 8 run a statement that blocks in PostgreSQL,
    42 wait for a server; then all finish, and SHOW STATS counted exactly
    their transactions."""
    c = admin_carrier(pool_size=8)
    adm = console(c)
    before = stats_row(adm) or {"total_xact_count": 0, "total_query_count": 0,
                                "total_server_assignment_count": 0}
    h = Holder(pg, c, 50)
    try:
        row = wait_until(lambda: (lambda r: r if r and r["cl_waiting"] == 42 and r["sv_active"] == 8
                                  else None)(pool_row(adm)), what="42 waiting, 8 active")
        assert row["cl_active"] == 8
        assert row["sv_idle"] == 0 and row["sv_login"] == 0
        assert row["sv_total"] == 8 and row["pool_size"] == 8
        assert row["pool_mode"] == "transaction"
        assert row["maxwait"] >= 0
        clients = [r for r in show(adm, "CLIENTS") if r["database"] == "app"]
        assert len(clients) == 50
        assert sorted(r["state"] for r in clients).count("active") == 8
        assert sum(1 for r in clients if r["state"] == "waiting") == 42
        servers = [r for r in show(adm, "SERVERS") if r["database"] == "app"]
        assert len(servers) == 8 and all(r["state"] == "active" for r in servers)
        # Each active client's link is its server's ptr, and the other way round.
        by_ptr = {s["ptr"]: s for s in servers}
        for cl in clients:
            if cl["state"] == "active":
                assert by_ptr[cl["link"]]["link"] == cl["ptr"]
        assert {s["remote_pid"] for s in servers} == set(
            int(x) for x in pg.sql("SELECT pid FROM pg_stat_activity WHERE datname = 'app' "
                                   "AND wait_event_type = 'Lock'").split())
        workers = show(adm, "WORKERS")
        assert len(workers) == 2
        assert sum(w["clients"] for w in workers) == 51      # and the console
        assert sum(w["servers"] for w in workers) == 8
    finally:
        h.release()
        h.close()
    assert not h.errors and h.done == 50
    after = wait_until(lambda: (lambda r: r if r and r["total_xact_count"] >= before["total_xact_count"] + 50
                                else None)(stats_row(adm)), what="50 transactions counted")
    assert after["total_xact_count"] - before["total_xact_count"] == 50
    assert after["total_query_count"] - before["total_query_count"] == 50
    assert after["total_server_assignment_count"] - before["total_server_assignment_count"] == 50
    assert after["total_requests"] == after["total_query_count"]
    assert after["total_wait_time"] > 0          # 42 of them waited
    assert after["total_exhausted_count"] >= 1
    assert "pool app/app exhausted: all 8 server connections are in use (pool_size 8)" in c.log()
    # The clients have closed their sockets; pgcarrier sees each end when it reads it.
    row = wait_until(lambda: (lambda r: r if r and r["cl_active"] == 0 and r["cl_waiting"] == 0
                              else None)(pool_row(adm)), what="the 50 clients gone from SHOW POOLS")
    assert row["sv_idle"] == 8
    adm.close()


def test_stats_count_transactions_queries_and_swaps(pg, admin_carrier):
    c = admin_carrier(pool_size=2)
    adm = console(c)
    a, b = c.connect(), c.connect()
    a.execute("SELECT 1")
    before = stats_row(adm)
    # b holds the server a just used; a gets the other one: a swap.
    b.execute("BEGIN")
    b.execute("SELECT 1")
    a.execute("SELECT 2")
    b.execute("COMMIT")
    for _ in range(10):
        a.execute("SELECT 3")
    a.execute("BEGIN")
    a.execute("SELECT 4")
    a.execute("SELECT 5")
    a.execute("COMMIT")
    after = stats_row(adm)
    d = {k: after[k] - before[k] for k in after if k != "database"}
    assert d["total_xact_count"] == 1 + 1 + 10 + 1
    assert d["total_query_count"] == 3 + 1 + 10 + 4
    assert d["total_server_assignment_count"] == 1 + 1 + 10 + 1
    assert d["total_swap_count"] >= 1
    assert d["total_received"] > 0 and d["total_sent"] > 0
    assert d["total_xact_time"] > 0 and d["total_query_time"] > 0
    a.close()
    b.close()
    adm.close()


def test_stats_averages_over_stats_period(pg, admin_carrier):
    c = admin_carrier(stats_period=1)
    adm = console(c)
    stop = threading.Event()

    def load():
        conn = c.connect()
        while not stop.is_set():
            conn.execute("SELECT 1")
        conn.close()

    t = threading.Thread(target=load, daemon=True)
    t.start()
    try:
        avg = wait_until(lambda: (lambda r: r if r and r["xact_count"] > 0 else None)(
            stats_row(adm, what="STATS_AVERAGES")), what="a window with transactions")
        assert avg["query_count"] >= avg["xact_count"] > 0
        full = stats_row(adm)
        assert full["avg_xact_count"] > 0 and full["avg_query_time"] > 0
        totals = {r["name"]: r["value"] for r in show(adm, "TOTALS")}
        assert totals["total_xact_count"] > 0 and totals["avg_xact_count"] > 0
    finally:
        stop.set()
        t.join(10)
    wait_until(lambda: "stats: database app:" in c.log(), what="a log_stats line")
    adm.close()


def test_pgbouncer_column_names_and_types(admin_carrier):
    """What a program written for PgBouncer 1.25 reads: names, order, types."""
    c = admin_carrier()
    adm = console(c)
    conn = c.connect()
    conn.execute("SELECT 1")
    cols = show_columns(adm, "POOLS")
    assert cols[:17] == [("database", TEXT), ("user", TEXT)] + [
        (n, INT4) for n in ("cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req",
                            "sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used",
                            "sv_tested", "sv_login", "maxwait", "maxwait_us")] + [
        ("pool_mode", TEXT), ("load_balance_hosts", TEXT)]
    socket_cols = [("type", TEXT), ("user", TEXT), ("database", TEXT), ("replication", TEXT),
                   ("state", TEXT), ("addr", TEXT), ("port", INT4), ("local_addr", TEXT),
                   ("local_port", INT4), ("connect_time", TEXT), ("request_time", TEXT),
                   ("wait", INT4), ("wait_us", INT4), ("close_needed", INT4), ("ptr", TEXT),
                   ("link", TEXT), ("remote_pid", INT4), ("tls", TEXT), ("application_name", TEXT),
                   ("prepared_statements", INT4), ("id", INT4)]
    assert show_columns(adm, "CLIENTS")[:21] == socket_cols
    assert show_columns(adm, "SERVERS")[:21] == socket_cols
    names = ["server_assignment_count", "xact_count", "query_count", "received", "sent", "xact_time",
             "query_time", "wait_time", "client_parse_count", "server_parse_count", "bind_count"]
    stats = show_columns(adm, "STATS")
    assert stats[0] == ("database", TEXT)
    assert [n for n, _ in stats[1:23]] == ["total_" + n for n in names] + [
        "avg_" + n.replace("received", "recv") for n in names]
    assert all(t == NUMERIC for _, t in stats[1:])
    totals = ["server_assignment_count", "xact_count", "query_count", "bytes_received", "bytes_sent",
              "xact_time", "query_time", "wait_time"]
    assert [n for n, _ in show_columns(adm, "STATS_TOTALS")] == ["database"] + totals + [
        "client_parse_count", "server_parse_count", "bind_count"]
    assert [n for n, _ in show_columns(adm, "STATS_AVERAGES")] == ["database"] + totals + [
        "avg_client_parse_count", "avg_server_parse_count", "avg_bind_count"]
    assert show_columns(adm, "DATABASES")[:17] == [
        ("name", TEXT), ("host", TEXT), ("port", INT4), ("database", TEXT), ("force_user", TEXT),
        ("pool_size", INT4), ("min_pool_size", INT4), ("reserve_pool_size", INT4),
        ("server_lifetime", INT4), ("pool_mode", TEXT), ("load_balance_hosts", TEXT),
        ("max_connections", INT4), ("current_connections", INT4), ("max_client_connections", INT4),
        ("current_client_connections", INT4), ("paused", INT4), ("disabled", INT4)]
    assert show_columns(adm, "USERS") == [
        ("name", TEXT), ("pool_size", TEXT), ("reserve_pool_size", TEXT), ("pool_mode", TEXT),
        ("max_user_connections", INT4), ("current_connections", INT4),
        ("max_user_client_connections", INT4), ("current_client_connections", INT4)]
    assert show_columns(adm, "CONFIG") == [("key", TEXT), ("value", TEXT), ("default", TEXT),
                                           ("changeable", TEXT)]
    assert show_columns(adm, "LISTS") == [("list", TEXT), ("items", INT4)]
    assert show_columns(adm, "MEM") == [("name", TEXT), ("size", INT4), ("used", INT4), ("free", INT4),
                                        ("memtotal", INT4)]
    assert show_columns(adm, "STATE") == [("key", TEXT), ("value", TEXT)]
    assert show_columns(adm, "VERSION") == [("version", TEXT)]
    conn.close()
    adm.close()


def test_every_show(pg, admin_carrier):
    c = admin_carrier(users={"alice": "pool_mode=session max_user_connections=3"})
    adm = console(c)
    conn = c.connect()
    conn.execute("SELECT 1")
    conn.execute("SET application_name = 'shown'")
    conn.execute("SELECT 1")
    me = [r for r in show(adm, "CLIENTS") if r["database"] == "app"]
    assert len(me) == 1 and me[0]["application_name"] == "shown" and me[0]["state"] == "idle"
    assert me[0]["type"] == "C" and me[0]["user"] == "app" and me[0]["addr"] == "127.0.0.1"
    assert me[0]["connect_time"].endswith("UTC") and me[0]["pinned_by"] is None
    assert me[0]["worker"] in (0, 1)
    srv = [r for r in show(adm, "SERVERS") if r["database"] == "app"]
    assert len(srv) == 1 and srv[0]["state"] == "idle" and srv[0]["type"] == "S"
    assert srv[0]["addr"] == pg.sockdir and srv[0]["port"] == pg.port and srv[0]["close_needed"] == 0
    dbs = {r["name"]: r for r in show(adm, "DATABASES")}
    assert dbs["app"]["database"] == "app" and dbs["app"]["pool_size"] == 8
    assert dbs["app"]["current_connections"] == 1 and dbs["app"]["current_client_connections"] == 1
    assert dbs["app"]["paused"] == 0 and dbs["app"]["disabled"] == 0
    assert dbs["md5db"]["force_user"] == "md5user" and dbs["md5db"]["host"] == "127.0.0.1"
    assert dbs["app"]["reserve_pool"] == dbs["app"]["reserve_pool_size"]
    users = {r["name"]: r for r in show(adm, "USERS")}
    assert users["app"]["current_connections"] == 1 and users["app"]["current_client_connections"] == 1
    assert users["alice"]["pool_mode"] == "session" and users["alice"]["max_user_connections"] == 3
    cfg = {r["key"]: r for r in show(adm, "CONFIG")}
    assert cfg["default_pool_size"]["value"] == "8" and cfg["default_pool_size"]["default"] == "20"
    assert cfg["default_pool_size"]["changeable"] == "yes" and cfg["listen_port"]["changeable"] == "no"
    assert cfg["admin_users"]["value"] == "admin"
    lists = {r["list"]: r["items"] for r in show(adm, "LISTS")}
    assert lists["pools"] == 1 and lists["used_clients"] == 2 and lists["used_servers"] == 1
    assert lists["login_clients"] == 0 and lists["databases"] == len(harness.standard_databases(pg))
    mem = {r["name"]: r for r in show(adm, "MEM")}
    assert mem["client"]["used"] == 2 and mem["server"]["used"] == 1
    state = {r["key"]: r["value"] for r in show(adm, "STATE")}
    assert state == {"active": "yes", "paused": "no", "suspended": "no", "shutting_down": "no"}
    assert show(adm, "VERSION")[0]["version"].startswith("pgcarrier ")
    helps = [r["command"] for r in show(adm, "HELP")]
    assert "SHOW POOLS" in helps and "KILL_CLIENT id" in helps
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="SHOW FDS is not supported"):
        adm.execute("SHOW FDS")
    # lower case, a trailing semicolon, several in one Query: one result each
    cur = adm.execute("show version; SHOW state;")
    assert cur.fetchall() == [("pgcarrier 0.1.0",)]
    assert cur.nextset() and len(cur.fetchall()) == 4
    conn.close()
    adm.close()


def test_pins_errors_and_lost_servers(pg, admin_carrier):
    c = admin_carrier()
    adm = console(c)
    conn = c.connect()
    conn.execute("CREATE TEMP TABLE t(x int)")
    pins = wait_until(lambda: show(adm, "PINS"), what="a pinned client")
    assert len(pins) == 1 and pins[0]["pinned_by"] == "temporary tables"
    assert pins[0]["pinned_since"].endswith("UTC") and pins[0]["database"] == "app"
    cl = [r for r in show(adm, "CLIENTS") if r["database"] == "app"][0]
    assert cl["id"] == pins[0]["id"] and cl["pinned_by"] == "temporary tables"
    assert stats_row(adm)["total_pins_temp_table"] == 1 and stats_row(adm)["total_pin_count"] == 1
    with pytest.raises(psycopg.errors.DivisionByZero):
        conn.execute("SELECT 1/0")
    with pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute("SELECT * FROM no_such_table")
    errors = {(r["database"], r["sqlstate_class"]): r["count"] for r in show(adm, "ERRORS")}
    assert errors[("app", "22")] == 1 and errors[("app", "42")] == 1
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(c.dsn("nosuchdb", "app").replace("dbname=nosuchdb", "dbname=nosuchdb"))
    errors = {(r["database"], r["sqlstate_class"]): r["count"] for r in show(adm, "ERRORS")}
    # (the '*' line makes nosuchdb a database: the server says 3D000)
    assert errors.get(("nosuchdb", "3D"), 0) >= 1
    # The pinned client's backend is killed while it is linked: a server lost.
    pid = pins[0]["remote_pid"]
    pg.sql("SELECT pg_terminate_backend(%d)" % pid)
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    wait_until(lambda: stats_row(adm)["total_server_lost_count"] == 1, what="a server lost")
    assert "server connection app/app (backend %d) lost" % pid in c.log()
    assert show(adm, "PINS") == []
    conn.close()
    adm.close()


def test_psql_and_pgbouncer_alias(admin_carrier):
    c = admin_carrier()
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    for db in ("pgcarrier", "pgbouncer"):
        out = subprocess.run([PSQL, "-X", "-h", c.host, "-p", str(c.port), "-U", "admin", db,
                              "-c", "SHOW POOLS", "-c", "SHOW VERSION"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        assert "cl_active" in out.stdout and "pgcarrier 0.1.0" in out.stdout
    # The Unix socket too.
    out = subprocess.run([PSQL, "-X", "-At", "-h", c.sockdir, "-p", str(c.port), "-U", "stats",
                          "pgcarrier", "-c", "SHOW STATE"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=30)
    assert out.returncode == 0 and "paused|no" in out.stdout, out.stderr


def _login_error(c, user, db="pgcarrier"):
    with harness.RawConn(c.host, c.port) as r:
        msgs = r.startup(user, db, raise_on_error=False)
    errs = [harness.parse_error(p) for t, p in msgs if t == "E"]
    return errs[0] if errs else None


def test_access_rules(admin_carrier):
    c = admin_carrier()
    # Anyone else: 42501 and nothing else (no ReadyForQuery, no data).
    err = _login_error(c, "mallory")
    assert err["C"] == "42501" and err["S"] == "FATAL"
    assert err["M"] == 'permission denied for database "pgcarrier"'
    assert _login_error(c, "app", "pgbouncer")["C"] == "42501"
    assert "may not use the admin console" in c.log()
    # A stats user may SHOW, not command.
    st = console(c, "stats")
    assert show(st, "STATE")
    for cmd in ("RELOAD", "PAUSE", "RESUME app", "SET default_pool_size = 3", "SHUTDOWN", "KILL app",
                "KILL_CLIENT 1", "RECONNECT", "WAIT_CLOSE", "DISABLE app"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for"):
            st.execute(cmd)
    assert show(st, "CONFIG")
    st.close()
    adm = console(c)
    adm.execute("RELOAD")
    adm.close()


def test_console_authentication_and_hba(pg, carrier):
    """The console authenticates as any client: the auth file, and an HBA
    file that names the console's database."""
    c = carrier(start=False, auth_type="hba", auth_file={"admin": "s3cret"}, **CONSOLE_SETTINGS)
    hba = os.path.join(c.dir, "hba.conf")
    with open(hba, "w") as f:
        f.write("host pgcarrier admin 127.0.0.1/32 scram-sha-256\n"
                "host pgbouncer admin 127.0.0.1/32 reject\n"
                "host all all 127.0.0.1/32 trust\n")
    c.settings["auth_hba_file"] = hba
    c.start()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(c.dsn("pgcarrier", "admin", password="wrong"))
    adm = psycopg.connect(c.dsn("pgcarrier", "admin", password="s3cret"), autocommit=True)
    assert show(adm, "STATE")
    adm.close()
    with pytest.raises(psycopg.OperationalError, match="rejects connection"):
        psycopg.connect(c.dsn("pgbouncer", "admin", password="s3cret"))


def test_console_over_tls(carrier):
    c = carrier(start=False, **CONSOLE_SETTINGS)
    key, crt = os.path.join(c.dir, "server.key"), os.path.join(c.dir, "server.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", key, "-out", crt],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(key, 0o600)
    c.settings.update(client_tls_sslmode="require", client_tls_cert_file=crt, client_tls_key_file=key)
    c.start()
    adm = psycopg.connect(c.dsn("pgcarrier", "admin", sslmode="require"), autocommit=True)
    me = [r for r in show(adm, "CLIENTS") if r["database"] == "pgcarrier"]
    assert len(me) == 1 and me[0]["tls"].startswith("TLSv1.")
    adm.close()


def test_extended_protocol_copy_and_bad_input(pg, admin_carrier):
    # Without the '*' line, so that a database can be unknown.
    c = admin_carrier(databases={k: v for k, v in harness.standard_databases(pg).items() if k != "*"})
    app = c.connect()
    app.execute("SELECT 1")
    adm = console(c)
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="only the simple query protocol"):
        adm.execute("SHOW %s", ["POOLS"])
    assert show(adm, "VERSION")                      # the connection goes on
    with pytest.raises(psycopg.errors.SyntaxError, match='unknown command "COPY"'):
        adm.execute("COPY items FROM STDIN")
    with pytest.raises(psycopg.errors.SyntaxError, match='unknown command "SELECT"'):
        adm.execute("SELECT 1")
    with pytest.raises(psycopg.errors.UndefinedObject, match='unknown SHOW: "NOSUCH"'):
        adm.execute("SHOW NOSUCH")
    with pytest.raises(psycopg.errors.SyntaxError, match="expected SHOW name"):
        adm.execute("SHOW")
    with pytest.raises(psycopg.errors.SyntaxError, match="expected KILL_CLIENT id"):
        adm.execute("KILL_CLIENT")
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        adm.execute("KILL_CLIENT abc")
    with pytest.raises(psycopg.errors.UndefinedObject, match="no such client"):
        adm.execute("KILL_CLIENT 99999999")
    with pytest.raises(psycopg.errors.InvalidCatalogName, match='no such database: "nosuch"'):
        adm.execute("PAUSE nosuch")
    with pytest.raises(psycopg.errors.SyntaxError, match="expected DISABLE db"):
        adm.execute("DISABLE")
    with pytest.raises(psycopg.errors.SyntaxError):
        adm.execute("RESUME a b")
    with pytest.raises(psycopg.errors.SyntaxError):
        adm.execute("SHOW 'unterminated")
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="SUSPEND is not supported"):
        adm.execute("SUSPEND")
    # An error ends the Query: what follows it does not run.
    with pytest.raises(psycopg.errors.SyntaxError):
        adm.execute("FOO; PAUSE")
    assert {r["key"]: r["value"] for r in show(adm, "STATE")}["paused"] == "no"
    adm.close()

    with harness.RawConn(c.host, c.port) as r:
        r.startup("admin", "pgcarrier")
        # Parse/Bind/Execute/Sync: one error, then ReadyForQuery; nothing ran.
        r.send_raw(harness.msg("P", harness.msg_parse("", "PAUSE")) + harness.msg("B", harness.msg_bind("", "")) +
                   harness.msg("E", harness.msg_execute("")) + harness.msg("S"))
        msgs = r.recv_until_ready()
        assert [t for t, _ in msgs] == ["E", "Z"]
        assert harness.parse_error(msgs[0][1])["C"] == "0A000"
        # CopyData outside COPY is ignored, as by PostgreSQL; a FunctionCall is refused.
        r.send("d", b"junk")
        r.send("F", harness.msg_func_call(1, []))
        msgs = r.recv_until_ready()
        assert [t for t, _ in msgs] == ["E", "Z"] and harness.parse_error(msgs[0][1])["C"] == "0A000"
        # A command longer than the console reads whole.
        msgs = r.query("SHOW " + "X" * 40000)
        assert harness.parse_error(msgs[0][1])["C"] == "54000" and msgs[-1][0] == "Z"
        # An empty query.
        assert [t for t, _ in r.query("  ;; ")] == ["I", "Z"]
        msgs = r.query("SHOW STATE")
        assert [t for t, _ in msgs] == ["T", "D", "D", "D", "D", "C", "Z"]
        # A message no client may send: PostgreSQL's FATAL, for this client only.
        r.send("?", b"")
        t, p = r.recv()
        assert t == "E" and harness.parse_error(p)["C"] == "08P01"
    # Pooling was never disturbed.
    assert app.execute("SELECT 42").fetchone() == (42,)
    assert {r["key"]: r["value"] for r in show(console(c), "STATE")}["paused"] == "no"
    app.close()


def test_console_client_cancel_and_kill_client(admin_carrier):
    c = admin_carrier()
    adm = console(c)
    other = console(c, "stats")
    other_id = [r["id"] for r in show(adm, "CLIENTS") if r["user"] == "stats"][0]
    # A cancel request for a console client does nothing (no server to cancel on).
    adm.cancel()
    assert show(adm, "STATE")
    adm.execute("KILL_CLIENT %d" % other_id)
    with pytest.raises(psycopg.OperationalError):
        wait_until(lambda: not other.execute("SHOW STATE").fetchall(), what="the killed console client")
    adm.close()


def test_console_with_many_statements_and_a_slow_reader(pg, admin_carrier):
    """A client that asks for a lot and does not read: its output waits, the
    worker goes on serving everyone else."""
    c = admin_carrier()
    conns = [c.connect() for _ in range(200)]
    with harness.RawConn(c.host, c.port) as r:
        r.startup("admin", "pgcarrier")
        r.send_raw(harness.msg("Q", harness.cstr("; ".join(["SHOW CLIENTS"] * 300))))
        # Not read: meanwhile the pooled clients work.
        for conn in conns[:20]:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        n = 0
        while True:
            t, _ = r.recv()
            if t == "C":
                n += 1
            if t == "Z":
                break
        assert n == 300
    for conn in conns:
        conn.close()


def test_sv_used_counts_idle_servers_due_for_the_check_query(pg, carrier):
    """An idle server older than server_check_delay is sv_used (PgBouncer's
    meaning: server_check_query runs on it before it serves again), not
    sv_idle; once checked and used it is active, then idle again."""
    settings = dict(CONSOLE_SETTINGS)
    c = carrier(server_check_delay=1, **settings)
    adm = console(c)
    conn = c.connect()
    conn.execute("SELECT 1")
    row = pool_row(adm)
    assert (row["sv_idle"], row["sv_used"]) == (1, 0)
    wait_until(lambda: pool_row(adm)["sv_used"] == 1, what="the idle server due for its check")
    assert pool_row(adm)["sv_idle"] == 0
    assert conn.execute("SELECT 2").fetchone() == (2,)   # checked, then served
    row = pool_row(adm)
    assert (row["sv_idle"], row["sv_used"]) == (1, 0)
    conn.close()
    adm.close()


@pytest.mark.skipif(harness.RUN_AS is None, reason="needs root: the daemon then runs as postgres")
@pytest.mark.parametrize("on", [0, 1])
def test_admin_peer_same_uid(admin_carrier, on):
    """admin_peer_same_uid = 1: a console login on the Unix socket from the
    daemon's own OS user (postgres here) is an admin without a password,
    whatever name it gives; another uid (root) still needs its password.
    Off (the default): the daemon's own uid is nobody special."""
    c = admin_carrier(auth_type="md5", auth_file={"admin": "secret"}, admin_peer_same_uid=on)

    def run(as_daemon_user, sql):
        cmd = [PSQL, "-X", "-A", "-t", "-w", "-h", c.sockdir, "-p", str(c.port),
               "-U", "someone", "-d", "pgcarrier", "-c", sql]
        if as_daemon_user:
            cmd = ["runuser", "-u", harness.RUN_AS, "--"] + cmd
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=30, cwd="/")

    r = run(True, "SHOW VERSION; PAUSE; RESUME")
    if on:
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("pgcarrier ")
    else:
        assert r.returncode != 0 and "password" in r.stderr, r.stderr
    r = run(False, "SHOW VERSION")
    assert r.returncode != 0 and "password" in r.stderr, r.stderr
    # over TCP, even the daemon's own user needs its password
    r = subprocess.run(["runuser", "-u", harness.RUN_AS, "--", PSQL, "-X", "-w", "-h", "127.0.0.1",
                        "-p", str(c.port), "-U", "someone", "-d", "pgcarrier", "-c", "SHOW VERSION"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30, cwd="/")
    assert r.returncode != 0 and "password" in r.stderr, r.stderr
