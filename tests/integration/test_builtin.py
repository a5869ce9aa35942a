"""Built-in mode (docs/builtin.md): a PostgreSQL 15 cluster with
shared_preload_libraries = 'pgcarrier', whose supervisor background worker
runs the installed daemon (make install-extension).

Each test that stops, breaks or reconfigures its server gets one of its own;
the others share one (``builtin``)."""

import os
import re
import socket
import subprocess
import time

import psycopg
import pytest

import harness

PG_BIN = harness.PG_BINDIR
CRASH_SIGNS = ("terminating any other active server processes",
               "database system was interrupted",
               "automatic recovery in progress",
               "all server processes terminated; reinitializing")


def installed_daemon():
    r = subprocess.run([os.path.join(PG_BIN, "pg_config"), "--bindir"],
                       stdout=subprocess.PIPE, text=True, check=True)
    return os.path.join(r.stdout.strip(), "pgcarrier")


@pytest.fixture(scope="module", autouse=True)
def _installed():
    lib = subprocess.run([os.path.join(PG_BIN, "pg_config"), "--pkglibdir"],
                         stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
    if not os.path.exists(os.path.join(lib, "pgcarrier.so")) or \
            not os.access(installed_daemon(), os.X_OK):
        pytest.fail("the extension is not installed: run make install-extension "
                    "(make integration does)", pytrace=False)


@pytest.fixture(scope="module")
def builtin():
    srv = harness.BuiltinPgServer("builtin")
    try:
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture
def fresh_builtin(request):
    made = []

    def make(**kw):
        srv = harness.BuiltinPgServer("builtin1", **kw)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.cleanup()


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_for(cond, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def no_crash_in(log):
    for sign in CRASH_SIGNS:
        assert sign not in log, "server log shows a crash: %r" % sign


def psql(srv, sql, port=None, host="127.0.0.1", user="app", db="app", password=None):
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-A", "-t", "-w",
                           "-h", host, "-p", str(port or srv.pooler_port),
                           "-U", user, "-d", db, "-c", sql],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, timeout=60)


# ---------------------------------------------------------------- clients --

def test_psql_through_the_pooler(builtin):
    r = psql(builtin, "SELECT current_user, count(*) FROM items")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "app|100"
    # on the pooler's Unix socket, in the server's socket directory
    r = psql(builtin, "SELECT 42", host=builtin.sockdir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "42"


def test_psycopg_through_the_pooler_and_backends_report(builtin):
    with builtin.pooler_connect() as conn:
        assert conn.execute("SELECT sum(qty) FROM items").fetchone()[0] == 50500
        # the server connection under it asked for the backend's reports
        who = conn.execute("SELECT current_setting('pgcarrier.report'), "
                           "current_user, session_user").fetchone()
        assert who == ("on", "app", "app")
        with conn.transaction():
            conn.execute("INSERT INTO kv VALUES ('builtin-psycopg', 'x') "
                         "ON CONFLICT (k) DO UPDATE SET v = 'x'")
    with builtin.connect() as direct:
        # a direct connection does not report
        assert direct.execute("SHOW pgcarrier.report").fetchone()[0] == "off"
        assert direct.execute("SELECT v FROM kv WHERE k = 'builtin-psycopg'").fetchone()[0] == "x"


def test_asyncpg_through_the_pooler_with_its_statement_cache(builtin):
    import asyncio
    import asyncpg

    async def run():
        conns = [await asyncpg.connect(host="127.0.0.1", port=builtin.pooler_port, database="app",
                                       user="app", timeout=30) for _ in range(4)]
        try:
            for i in range(30):
                c = conns[i % 4]
                # prepared by asyncpg once per connection, on whatever server it lands
                assert await c.fetchval("SELECT qty FROM items WHERE id = $1", i + 1) == (i + 1) * 10
            async with conns[0].transaction():
                await conns[0].execute("INSERT INTO kv VALUES ('builtin-asyncpg', 'y') "
                                       "ON CONFLICT (k) DO UPDATE SET v = 'y'")
            assert await conns[1].fetchval("SELECT v FROM kv WHERE k = 'builtin-asyncpg'") == "y"
        finally:
            for c in conns:
                await c.close()

    asyncio.run(run())


@pytest.mark.timeout(120)
def test_pgbench_select_only_through_the_pooler(builtin):
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    init = subprocess.run([os.path.join(PG_BIN, "pgbench"), "-i", "-q", "-s", "1",
                           "-h", "127.0.0.1", "-p", str(builtin.port), "-U", "app", "app"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert init.returncode == 0, init.stdout
    run = subprocess.run([os.path.join(PG_BIN, "pgbench"), "-S", "-n", "-c", "20", "-j", "2",
                          "-T", "4", "-h", "127.0.0.1", "-p", str(builtin.pooler_port),
                          "-U", "app", "app"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                         timeout=90)
    assert run.returncode == 0, run.stdout
    m = re.search(r"number of transactions actually processed: (\d+)", run.stdout)
    assert m and int(m.group(1)) > 1000, run.stdout
    assert "number of failed transactions: 0" in run.stdout, run.stdout


def test_reload_changes_the_pool_size(fresh_builtin):
    import threading

    srv = fresh_builtin(conf="pgcarrier.default_pool_size = 2")

    def burst(n=8):
        errors = []

        def one():
            try:
                with srv.pooler_connect() as c:
                    c.execute("SELECT pg_sleep(0.4)")
            except Exception as e:
                errors.append(e)

        ths = [threading.Thread(target=one) for _ in range(n)]
        with harness.BackendMonitor(srv, db="app", user="app") as mon:
            for t in ths:
                t.start()
            for t in ths:
                t.join(30)
        assert not errors, errors
        return mon.max

    assert burst() == 2
    srv.sql("ALTER SYSTEM SET pgcarrier.default_pool_size = 5")
    srv.reload()
    wait_for(lambda: "default_pool_size = 5" in open(os.path.join(srv.datadir, "pgcarrier.ini")).read(),
             what="pgcarrier.ini rewritten")
    time.sleep(0.5)
    assert burst() == 5
    assert srv.sql("SHOW pgcarrier.default_pool_size") == "5"
    assert len(srv.pooler_pids()) == 1   # reloaded, not restarted


def test_databases_setting_restricts_what_is_pooled(fresh_builtin):
    srv = fresh_builtin(conf="pgcarrier.databases = 'app'")
    with srv.pooler_connect(db="app") as c:
        assert c.execute("SELECT current_database()").fetchone()[0] == "app"
    with pytest.raises(psycopg.OperationalError) as ei:
        srv.pooler_connect(db="postgres").close()
    assert 'database "postgres" does not exist' in str(ei.value)
    # a reload opens it
    srv.sql("ALTER SYSTEM SET pgcarrier.databases = 'app, postgres'")
    srv.reload()
    wait_for(lambda: _connects(srv, "postgres"), 5, "postgres pooled after the reload")


def _connects(srv, db):
    try:
        srv.pooler_connect(db=db).close()
        return True
    except psycopg.OperationalError:
        return False


def test_enabled_off_stops_the_pooler_and_on_starts_it(fresh_builtin):
    srv = fresh_builtin()
    srv.sql("ALTER SYSTEM SET pgcarrier.enabled = off")
    srv.reload()
    wait_for(lambda: not srv.pooler_pids(), 10, "the pooler stopped")
    assert port_free(srv.pooler_port)
    assert srv.sql("SELECT 1") == "1"
    srv.sql("ALTER SYSTEM SET pgcarrier.enabled = on")
    srv.reload()
    srv.wait_pooler(10)
    assert "pgcarrier: stopping the pooler" in srv.log()


def _guard_pair(srv, make_state, check_a, check_b):
    """Two pooled clients on one server connection (pool size 1): a makes
    state with make_state; then b must see check_b and a check_a, turn by turn."""
    a = srv.pooler_connect()
    b = srv.pooler_connect()
    try:
        a.execute(make_state)
        for _ in range(3):
            assert b.execute(check_b[0]).fetchone()[0] == check_b[1]
            assert a.execute(check_a[0]).fetchone()[0] == check_a[1]
    finally:
        a.close()
        b.close()


@pytest.fixture(scope="module")
def guard_server():
    srv = harness.BuiltinPgServer("builtin-guard", conf="pgcarrier.default_pool_size = 1")
    try:
        srv.sql("CREATE FUNCTION tune() RETURNS text LANGUAGE sql "
                "AS $$ SELECT set_config('work_mem', '7MB', false) $$;"
                "CREATE FUNCTION take_lock() RETURNS void LANGUAGE sql "
                "AS $$ SELECT pg_advisory_lock(4243) $$", db="app")
        yield srv
    finally:
        srv.cleanup()


def test_guard_setting_made_in_a_do_block_follows_its_client(guard_server):
    _guard_pair(guard_server,
                "DO $$ BEGIN PERFORM set_config('work_mem', '6MB', false); END $$",
                ("SHOW work_mem", "6MB"), ("SHOW work_mem", "4MB"))


def test_guard_advisory_lock_taken_in_a_do_block_never_reaches_another_client(guard_server):
    srv = guard_server
    with srv.pooler_connect() as a:
        a.execute("DO $$ BEGIN PERFORM pg_advisory_lock(4242); END $$")
        pid_a = a.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert srv.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                       "AND pid = %d" % pid_a) == "1"
        assert a.execute("SELECT pg_backend_pid()").fetchone()[0] == pid_a
    # a left holding it: the server is reset (or closed) before anyone else has it
    with srv.pooler_connect() as b:
        assert b.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                         "AND pid = pg_backend_pid()").fetchone()[0] == 0


@pytest.mark.parametrize("sql,param,value", [
    ("SELECT set_config('work_mem', '8MB', false)", b"work_mem", b"8192"),
    ("SELECT tune()", b"work_mem", b"7168"),
    ("SELECT take_lock()", b"pgcarrier.session_state", b"a"),
])
def test_backend_reports_set_config_and_advisory_locks_called_from_a_select(guard_server, sql, param,
                                                                             value):
    """The reporter itself, on a direct connection that asks for reports as
    pgcarrier does: a setting changed by set_config() in a SELECT or an
    inlined SQL function is reported by PostgreSQL itself (every setting is
    a reported one in such a backend), and a session advisory lock taken
    from a SELECT is in pgcarrier.session_state (letter a)."""
    with psycopg.connect(guard_server.dsn(options="-c pgcarrier.report=on"), autocommit=True) as c:
        assert c.pgconn.parameter_status(b"pgcarrier.report") == b"on"
        assert c.pgconn.parameter_status(b"work_mem") is None   # not at login: only changes
        c.execute("SET work_mem = '5MB'")
        assert c.pgconn.parameter_status(b"work_mem") == b"5120"
        c.execute(sql)
        got = c.pgconn.parameter_status(param)
        assert got is not None and (got == value or got.endswith(b" " + value)), got


def test_backend_reports_nothing_to_a_direct_client(guard_server):
    """A direct client (no pgcarrier.report in its startup packet) is told
    what PostgreSQL tells anyone: no extra ParameterStatus."""
    with psycopg.connect(guard_server.dsn(), autocommit=True) as c:
        c.execute("SET work_mem = '5MB'")
        c.execute("SELECT pg_advisory_lock(99)")
        c.execute("SELECT 1")
        assert c.pgconn.parameter_status(b"work_mem") is None
        assert c.pgconn.parameter_status(b"pgcarrier.session_state") is None


# ------------------------------------------------------------ supervision --

@pytest.mark.timeout(60)
def test_daemon_killed_comes_back_without_crash_recovery(fresh_builtin):
    srv = fresh_builtin()
    direct = srv.connect()
    direct.execute("SELECT 1")
    with srv.pooler_connect() as c:
        c.execute("SELECT 1")
    [old] = srv.pooler_pids()
    os.kill(old, 9)
    wait_for(lambda: srv.pooler_pids() and srv.pooler_pids() != [old], 10, "a new daemon")
    srv.wait_pooler(10)
    with srv.pooler_connect() as c:
        assert c.execute("SELECT 7").fetchone()[0] == 7
    # the direct client never noticed
    assert direct.execute("SELECT 8").fetchone()[0] == 8
    direct.close()
    log = srv.log()
    assert "was terminated by signal 9" in log
    assert "starting the pooler again in 1 s" in log
    no_crash_in(log)


def test_daemon_exits_when_its_parent_end_of_the_pipe_closes(pgc_bin):
    c = harness.Pgcarrier(pgc_bin, settings={"auth_type": "trust"},
                          databases={"*": {"host": "127.0.0.1", "port": 1}})
    try:
        c.write_config()
        r, w = os.pipe()
        log = open(c.logfile, "ab")
        proc = subprocess.Popen([pgc_bin, "-c", c.config_path, "--parent-fd=%d" % r],
                                pass_fds=[r], stdout=log, stderr=subprocess.STDOUT)
        os.close(r)
        wait_for(lambda: harness._port_open("127.0.0.1", c.port), 10, "the daemon to listen")
        t0 = time.monotonic()
        os.close(w)
        proc.wait(5)
        assert time.monotonic() - t0 < 1.0
        assert "the parent process (the supervisor) is gone" in c.log()
        assert port_free(c.port)
    finally:
        c.cleanup(check=False)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", ["smart", "fast", "immediate"])
def test_server_stops_in_every_mode_with_pooled_clients(fresh_builtin, mode):
    srv = fresh_builtin()
    clients = [srv.pooler_connect() for _ in range(5)]
    for c in clients:
        c.execute("SELECT 1")
    session = srv.pooler_connect()      # one with session state: pinned to its server
    session.execute("CREATE TEMP TABLE t(x int)")
    daemons = srv.pooler_pids()
    assert len(daemons) == 1
    t0 = time.monotonic()
    assert srv.stop(mode) == 0, srv.log()[-3000:]
    took = time.monotonic() - t0
    assert took < 15, "pg_ctl stop -m %s took %.1f s" % (mode, took)
    wait_for(lambda: not srv.pooler_pids(), 2, "no daemon left")
    assert port_free(srv.pooler_port)
    for c in clients + [session]:
        c.close()
    # and the server starts again, with its pooler
    srv.start()
    srv.wait_pooler()
    with srv.pooler_connect() as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1


@pytest.mark.timeout(300)
def test_twenty_start_stop_cycles_leave_nothing_behind(fresh_builtin):
    srv = fresh_builtin()
    for i in range(20):
        mode = ("fast", "smart", "immediate")[i % 3]
        assert srv.stop(mode) == 0, "stop %d (%s)\n%s" % (i, mode, srv.log()[-3000:])
        wait_for(lambda: not srv.pooler_pids(), 2, "no daemon after stop %d (%s)" % (i, mode))
        assert port_free(srv.pooler_port), "port held after stop %d (%s)" % (i, mode)
        srv.start()
        srv.wait_pooler()
        pids = srv.pooler_pids()
        assert len(pids) == 1, "after start %d: %r\n%s" % (i, pids, srv.log()[-3000:])
    assert srv.stop("fast") == 0
    wait_for(lambda: not srv.pooler_pids(), 2, "no daemon at the end")
    assert port_free(srv.pooler_port)


# -------------------------------------------------------------- bad input --

def test_bad_values_at_start_are_refused_and_the_server_runs(fresh_builtin):
    srv = fresh_builtin(conf="pgcarrier.default_pool_size = 'many'\n", wait=False)
    assert srv.sql("SELECT 1") == "1"
    log = srv.log()
    assert 'invalid value for parameter "pgcarrier.default_pool_size": "many"' in log
    assert "the pooler will not start" in log
    time.sleep(1)
    assert not srv.pooler_pids() and not srv.pooler_open()
    # fixed by a reload
    srv.add_conf("pgcarrier.default_pool_size = 4")
    srv.reload()
    srv.wait_pooler()
    with srv.pooler_connect() as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1


def test_bad_values_at_reload_are_refused_and_the_pooler_keeps_going(fresh_builtin):
    srv = fresh_builtin()
    [pid] = srv.pooler_pids()
    srv.add_conf("pgcarrier.pool_mode = 'sometimes'\npgcarrier.max_client_conn = -3\n"
                 "pgcarrier.query_wait_timeout = '3 parsecs'")
    srv.reload()
    wait_for(lambda: 'invalid value for parameter "pgcarrier.pool_mode": "sometimes"' in srv.log(),
             5, "the reload's message")
    log = srv.log()
    assert "pgcarrier.max_client_conn" in log and "outside the valid range" in log
    assert 'invalid value for parameter "pgcarrier.query_wait_timeout"' in log
    assert srv.sql("SHOW pgcarrier.pool_mode") == "transaction"
    assert srv.pooler_pids() == [pid]
    with srv.pooler_connect() as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1
    # a setting that needs a restart says so, as PostgreSQL's own
    srv.add_conf("pgcarrier.port = %d" % harness.free_port())
    srv.reload()
    wait_for(lambda: 'parameter "pgcarrier.port" cannot be changed without restarting the server'
             in srv.log(), 5, "the restart message")


def test_missing_daemon_binary_is_logged_and_the_server_runs(fresh_builtin):
    srv = fresh_builtin(conf="pgcarrier.daemon_path = '/nonexistent/pgcarrier'", wait=False)
    assert srv.sql("SELECT 1") == "1"
    wait_for(lambda: 'could not start the pooler: program "/nonexistent/pgcarrier"' in srv.log(),
             5, "the message")
    assert "No such file or directory" in srv.log()
    assert not srv.pooler_open()
    # installed later (here: pointed at): a reload tries again at once
    srv.add_conf("pgcarrier.daemon_path = ''")
    srv.reload()
    srv.wait_pooler()


@pytest.mark.timeout(60)
def test_port_in_use_is_logged_and_the_server_runs(fresh_builtin):
    port = harness.free_port()
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind(("127.0.0.1", port))
    squatter.listen(1)
    try:
        srv = fresh_builtin(conf="pgcarrier.port = %d" % port, wait=False)
        srv.pooler_port = port
        assert srv.sql("SELECT 1") == "1"
        wait_for(lambda: "could not listen on 127.0.0.1 port %d: it is in use" % port in srv.log(),
                 10, "the daemon's message")
        wait_for(lambda: "exited with exit code 1" in srv.log(), 10, "the supervisor's message")
        assert srv.sql("SELECT 2") == "2"
        no_crash_in(srv.log())
    finally:
        squatter.close()
    # the port is free again: the next attempt (back-off) serves
    srv.wait_pooler(20)
    with srv.pooler_connect() as c:
        assert c.execute("SELECT 3").fetchone()[0] == 3


def test_create_extension_and_its_settings_view(builtin):
    r = psql(builtin, "LOAD 'pgcarrier'", port=builtin.port, user="postgres")
    assert r.returncode == 0, r.stderr
    r = psql(builtin, "CREATE EXTENSION IF NOT EXISTS pgcarrier; "
             "SELECT setting FROM pgcarrier.settings WHERE name = 'pgcarrier.port'",
             port=builtin.port, user="postgres")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(builtin.pooler_port)


# --------------------------------------------------------- authentication --

# Debian's default pg_hba.conf, unchanged, below two lines of the test's own.
DEBIAN_HBA = """\
host    all             rejected        127.0.0.1/32            reject
host    all             bob             127.0.0.1/32            md5
# Debian's default:
local   all             postgres                                peer
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
local   replication     all                                     peer
host    replication     all             127.0.0.1/32            scram-sha-256
host    replication     all             ::1/128                 scram-sha-256
"""

AUTH_SETUP = """
SET password_encryption = 'scram-sha-256';
CREATE ROLE alice LOGIN PASSWORD 'alice-pw';
CREATE ROLE carol LOGIN PASSWORD 'carol-pw';
CREATE ROLE rejected LOGIN PASSWORD 'rejected-pw';
CREATE ROLE nologin NOLOGIN PASSWORD 'nologin-pw';
CREATE ROLE expired LOGIN PASSWORD 'expired-pw' VALID UNTIL '2001-01-01';
SET password_encryption = 'md5';
CREATE ROLE bob LOGIN PASSWORD 'bob-pw';
"""

RLS_SETUP = """
CREATE TABLE notes(owner name, body text);
INSERT INTO notes VALUES ('alice', 'for alice'), ('carol', 'for carol');
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON notes USING (owner = current_user);
GRANT SELECT ON notes TO PUBLIC;
"""


@pytest.fixture(scope="module")
def hba_server():
    srv = harness.BuiltinPgServer("builtin-hba", hba=DEBIAN_HBA)
    try:
        srv.sql(AUTH_SETUP)
        srv.sql(RLS_SETUP, db="app")
        yield srv
    finally:
        srv.cleanup()


def pooled(srv, user, password, db="app"):
    return psycopg.connect(srv.pooler_dsn(db, user, password=password), autocommit=True)


def refused(srv, user, password, db="app"):
    with pytest.raises(psycopg.OperationalError) as ei:
        pooled(srv, user, password, db).close()
    return str(ei.value)


def test_auth_scram_role_logs_in_as_itself(hba_server):
    srv = hba_server
    with pooled(srv, "alice", "alice-pw") as c:
        row = c.execute("SELECT current_user, session_user, usename, client_addr::text "
                        "FROM pg_stat_activity WHERE pid = pg_backend_pid()").fetchone()
        assert row == ("alice", "alice", "alice", "127.0.0.1/32")
        # row-level security sees the client's own role
        assert c.execute("SELECT body FROM notes").fetchall() == [("for alice",)]
    with pooled(srv, "carol", "carol-pw") as c:
        assert c.execute("SELECT body FROM notes").fetchall() == [("for carol",)]
        assert c.execute("SELECT current_setting('pgcarrier.report')").fetchone()[0] == "on"


def test_auth_wrong_password(hba_server):
    msg = refused(hba_server, "alice", "not-her-password")
    assert 'password authentication failed for user "alice"' in msg


def test_auth_reject_line(hba_server):
    msg = refused(hba_server, "rejected", "rejected-pw")
    assert 'pg_hba.conf rejects connection for host "127.0.0.1", user "rejected"' in msg


def test_auth_nologin_role(hba_server):
    msg = refused(hba_server, "nologin", "nologin-pw")
    assert 'password authentication failed for user "nologin"' in msg


def test_auth_valid_until_in_the_past(hba_server):
    msg = refused(hba_server, "expired", "expired-pw")
    assert 'password authentication failed for user "expired"' in msg
    # and directly, the same
    with pytest.raises(psycopg.OperationalError) as ei:
        psycopg.connect(hba_server.dsn("app", "expired", password="expired-pw")).close()
    assert 'password authentication failed for user "expired"' in str(ei.value)


def test_auth_md5_role(hba_server):
    with pooled(hba_server, "bob", "bob-pw") as c:
        assert c.execute("SELECT current_user, session_user").fetchone() == ("bob", "bob")
    assert 'password authentication failed for user "bob"' in refused(hba_server, "bob", "nope")


def test_auth_transaction_pooling_keeps_each_role(hba_server):
    """Two roles, many clients each, few backends: nobody ever runs as another."""
    import threading
    errors = []

    def client(user, pw):
        try:
            with pooled(hba_server, user, pw) as c:
                for _ in range(20):
                    got = c.execute("SELECT current_user, session_user, "
                                    "(SELECT count(*) FROM notes)").fetchone()
                    if got != (user, user, 1):
                        errors.append((user, got))
        except Exception as e:
            errors.append((user, e))

    ths = [threading.Thread(target=client, args=a)
           for a in [("alice", "alice-pw"), ("carol", "carol-pw")] * 6]
    for t in ths:
        t.start()
    for t in ths:
        t.join(60)
    assert not errors, errors[:5]


def test_auth_hba_reload_applies(hba_server):
    srv = hba_server
    hba = os.path.join(srv.datadir, "pg_hba.conf")
    with open(hba) as f:
        before = f.read()
    try:
        with open(hba, "w") as f:
            f.write("host all carol 127.0.0.1/32 reject\n" + before)
        srv.reload()
        wait_for(lambda: "pg_hba.conf rejects" in (lambda m: m)(_try_refused(srv)), 5,
                 "the new line applied")
    finally:
        with open(hba, "w") as f:
            f.write(before)
        srv.reload()
    wait_for(lambda: _try_ok(srv), 5, "the old file applied again")


def _try_refused(srv):
    try:
        pooled(srv, "carol", "carol-pw").close()
        return ""
    except psycopg.OperationalError as e:
        return str(e)


def _try_ok(srv):
    return _try_refused(srv) == ""


def test_auth_password_changed_while_the_pooler_runs(hba_server):
    srv = hba_server
    srv.sql("ALTER SYSTEM SET pgcarrier.auth_query_cache_lifetime = 0")
    srv.reload()
    try:
        wait_for(lambda: "auth_query_cache_lifetime = 0ms" in
                 open(os.path.join(srv.datadir, "pgcarrier.ini")).read(), 5, "the reload")
        time.sleep(0.3)
        srv.sql("CREATE ROLE dave LOGIN PASSWORD 'dave-old'")
        with pooled(srv, "dave", "dave-old") as c:
            assert c.execute("SELECT current_user").fetchone()[0] == "dave"
        srv.sql("ALTER ROLE dave PASSWORD 'dave-new'")
        assert 'password authentication failed for user "dave"' in refused(srv, "dave", "dave-old")
        with pooled(srv, "dave", "dave-new") as c:
            # a new server login too, with the new keys
            c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE usename = 'dave' AND pid <> pg_backend_pid()")
            assert c.execute("SELECT session_user").fetchone()[0] == "dave"
    finally:
        srv.sql("ALTER SYSTEM RESET pgcarrier.auth_query_cache_lifetime")
        srv.reload()


def test_auth_entry_is_no_database_for_clients(hba_server):
    """auth_query's own [databases] entry (pgcarrier_auth, on the Unix socket)
    is no way around the server's rules for TCP clients."""
    msg = refused(hba_server, "alice", "alice-pw", db="pgcarrier_auth")
    assert 'database "pgcarrier_auth" does not exist' in msg


def test_auth_peer_client_of_the_pooler_gets_a_clear_error(hba_server):
    """Documented limitation (docs/builtin.md): the pooler admits a peer client
    on its Unix socket as the server would, but its backend login over TCP
    has nothing to prove: a clear error, and a line in the log."""
    srv = hba_server
    r = subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(PG_BIN, "psql"), "-X",
                        "-h", srv.sockdir, "-p", str(srv.pooler_port), "-U", "postgres",
                        "-d", "postgres", "-c", "SELECT 1"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode != 0
    assert 'pgcarrier has no password to log in to the server as user "postgres"' in r.stderr
    wait_for(lambda: "could not log in to server for postgres/postgres" in srv.log(), 5, "the log line")


# -------------------------------------------------------------------- TLS --

TLS_HBA = """\
local   all   all                      trust
hostssl all   tlsonly   127.0.0.1/32   trust
host    all   tlsonly   127.0.0.1/32   reject
host    all   all       127.0.0.1/32   trust
"""


def _server_certificate(srv):
    import pwd
    key = os.path.join(srv.datadir, "server.key")
    crt = os.path.join(srv.datadir, "server.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pw = pwd.getpwnam("postgres")
    for p in (key, crt):
        os.chown(p, pw.pw_uid, pw.pw_gid)
    os.chmod(key, 0o600)


def test_tls_with_the_servers_own_certificate_and_hostssl_lines(fresh_builtin):
    srv = fresh_builtin(conf="ssl = on\npgcarrier.server_sslmode = prefer", hba=TLS_HBA,
                        before_start=_server_certificate)
    srv.sql("CREATE ROLE tlsonly LOGIN")
    with psycopg.connect(srv.pooler_dsn(sslmode="require"), autocommit=True) as c:
        assert c.pgconn.ssl_in_use
        # the pooler's own backend connection uses TLS too (server_sslmode = prefer)
        assert c.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
    with psycopg.connect(srv.pooler_dsn(sslmode="disable"), autocommit=True) as c:
        assert not c.pgconn.ssl_in_use
    # hostssl: admitted with TLS, rejected without, by the pooler and by the server
    with psycopg.connect(srv.pooler_dsn(user="tlsonly", sslmode="require"), autocommit=True) as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "tlsonly"
    with pytest.raises(psycopg.OperationalError) as ei:
        psycopg.connect(srv.pooler_dsn(user="tlsonly", sslmode="disable")).close()
    assert "pg_hba.conf rejects connection" in str(ei.value)
