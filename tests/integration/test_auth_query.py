"""auth_user / auth_query: secrets of users the auth file does not have are
asked from PostgreSQL itself (run as auth_user on a background thread),
cached for auth_query_cache_lifetime, and used for md5 and SCRAM
pass-through when the database entry has no password.

The tests run against a PostgreSQL of their own (module-scoped), whose
pg_hba.conf makes the auth_query roles use scram-sha-256 or md5 over TCP, so
that pgcarrier's server logins work only through pass-through."""

import os
import signal
import socket
import struct
import threading
import time

import psycopg
import pytest

import harness

AUTH_USER = "aq_auth"
AUTH_PW = "auth-user-pw-7731"
SCRAM_ROLES = {"aq_s%d" % i: "pw-scram-%d" % i for i in range(1, 6)}
MD5_ROLES = {"aq_m%d" % i: "pw-md5-%d" % i for i in range(1, 4)}
SLOW_QUERY = "SELECT usename, passwd FROM pg_shadow, pg_sleep(%s) WHERE usename=$1"

HBA = """# written by test_auth_query.py
local all all trust
host all aq_auth 127.0.0.1/32 scram-sha-256
host all +aq_scram_grp 127.0.0.1/32 scram-sha-256
host all +aq_md5_grp 127.0.0.1/32 md5
host all all 127.0.0.1/32 trust
"""


@pytest.fixture(scope="module")
def aqpg():
    srv = harness.PgServer("authq")
    try:
        sql = ["CREATE ROLE aq_scram_grp NOLOGIN;", "CREATE ROLE aq_md5_grp NOLOGIN;",
               "SET password_encryption = 'scram-sha-256';",
               "CREATE ROLE %s LOGIN SUPERUSER PASSWORD '%s';" % (AUTH_USER, AUTH_PW)]
        for r, pw in SCRAM_ROLES.items():
            sql.append("CREATE ROLE %s LOGIN PASSWORD '%s' IN ROLE aq_scram_grp;" % (r, pw))
        sql.append("SET password_encryption = 'md5';")
        for r, pw in MD5_ROLES.items():
            sql.append("CREATE ROLE %s LOGIN PASSWORD '%s' IN ROLE aq_md5_grp;" % (r, pw))
        srv.sql("\n".join(sql))
        assert srv.sql("SELECT passwd FROM pg_shadow WHERE usename = 'aq_m1'").startswith("md5")
        assert srv.sql("SELECT passwd FROM pg_shadow WHERE usename = 'aq_s1'").startswith("SCRAM-SHA-256$")
        with open(os.path.join(srv.datadir, "pg_hba.conf"), "w") as f:
            f.write(HBA)
        srv.sql("SELECT pg_reload_conf()")
        # Wait until the new pg_hba.conf is in force: no password, no login.
        deadline = time.monotonic() + 10
        while True:
            try:
                psycopg.connect(srv.dsn(user="aq_s1", password="wrong"), autocommit=True).close()
            except psycopg.OperationalError:
                break
            assert time.monotonic() < deadline, "pg_hba.conf reload did not take"
            time.sleep(0.1)
        yield srv
    finally:
        srv.cleanup()


def aq_carrier(carrier, aqpg, port=None, auth_file=None, **settings):
    """pgcarrier in front of aqpg over TCP, database entry without a password."""
    settings.setdefault("auth_type", "scram-sha-256")
    settings.setdefault("auth_user", AUTH_USER)
    dbs = {"app": {"host": "127.0.0.1", "port": port or aqpg.port, "dbname": "app"}}
    return carrier(server=aqpg, databases=dbs,
                   auth_file=auth_file if auth_file is not None else {AUTH_USER: AUTH_PW},
                   **settings)


def login(c, user, password, **kw):
    dsn = c.dsn(user=user) + " password=%s" % password
    return psycopg.connect(dsn, autocommit=True, prepare_threshold=None, **kw)


def refused(c, user, password):
    with pytest.raises(psycopg.OperationalError) as ei:
        login(c, user, password).close()
    return str(ei.value)


def auth_query_backends(pg):
    return int(pg.sql("SELECT count(*) FROM pg_stat_activity "
                      "WHERE application_name = 'pgcarrier-auth_query'"))


def assert_no_secrets(c, *extra):
    log = c.log()
    for s in (AUTH_PW,) + tuple(SCRAM_ROLES.values()) + tuple(MD5_ROLES.values()) + extra:
        assert s not in log, "secret %r in the log" % s
    assert "SCRAM-SHA-256$" not in log


def startup_packet(user, db="app"):
    body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
    return struct.pack("!I", len(body) + 4) + body


@pytest.mark.timeout(60)
def test_scram_pass_through(carrier, aqpg):
    """The server wants SCRAM for the role and pgcarrier has no password:
    the login works only with the keys the client proved."""
    c = aq_carrier(carrier, aqpg)
    with login(c, "aq_s1", SCRAM_ROLES["aq_s1"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("aq_s1",)
        assert harness.server_backends(aqpg, db="app", user="aq_s1") >= 1
    # a second client: cached secret, same pooled server
    with login(c, "aq_s1", SCRAM_ROLES["aq_s1"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("aq_s1",)
    # one kept connection for auth_query, as auth_user
    assert auth_query_backends(aqpg) == 1
    assert aqpg.sql("SELECT usename FROM pg_stat_activity "
                    "WHERE application_name = 'pgcarrier-auth_query'") == AUTH_USER
    # The server ends that connection: the next query reconnects.
    aqpg.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE application_name = 'pgcarrier-auth_query'")
    with login(c, "aq_s2", SCRAM_ROLES["aq_s2"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("aq_s2",)
    assert auth_query_backends(aqpg) == 1
    assert_no_secrets(c)


@pytest.mark.timeout(60)
def test_md5_pass_through(carrier, aqpg):
    """md5-stored password, server asks md5: servers log in with the hash auth_query gave."""
    c = aq_carrier(carrier, aqpg, auth_type="md5")
    for _ in range(2):
        with login(c, "aq_m1", MD5_ROLES["aq_m1"]) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("aq_m1",)
            assert harness.server_backends(aqpg, db="app", user="aq_m1") >= 1
    # cleartext "password" method works with an md5 secret too
    c2 = aq_carrier(carrier, aqpg, auth_type="password")
    with login(c2, "aq_m2", MD5_ROLES["aq_m2"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("aq_m2",)
    assert_no_secrets(c)
    assert_no_secrets(c2)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("auth_type", ["scram-sha-256", "md5", "password"])
def test_wrong_password_and_unknown_user(carrier, aqpg, auth_type):
    c = aq_carrier(carrier, aqpg, auth_type=auth_type)
    for user in ("aq_s2", "aq_m2"):
        text = refused(c, user, "not-the-password")
        assert 'password authentication failed for user "%s"' % user in text, text
    # No such role: exactly the same failure (SCRAM after the mock exchange).
    text = refused(c, "aq_nobody", "whatever-pw")
    assert 'password authentication failed for user "aq_nobody"' in text, text
    # a NULL secret (role without a password) is the same too
    text = refused(c, "app", "whatever-pw")
    assert 'password authentication failed for user "app"' in text, text
    # and the right passwords still work afterwards
    with login(c, "aq_s2", SCRAM_ROLES["aq_s2"]) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert_no_secrets(c, "not-the-password", "whatever-pw")


@pytest.mark.timeout(60)
def test_cache_lifetime(carrier, aqpg):
    aqpg.sql("SET password_encryption = 'scram-sha-256';\n"
             "DROP ROLE IF EXISTS aq_c1; DROP ROLE IF EXISTS aq_c2;\n"
             "CREATE ROLE aq_c1 LOGIN PASSWORD 'old-pw-c1' IN ROLE aq_scram_grp;")
    try:
        c = aq_carrier(carrier, aqpg, auth_query_cache_lifetime=30)
        with login(c, "aq_c1", "old-pw-c1") as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("aq_c1",)
        assert "password authentication failed" in refused(c, "aq_c2", "pw-c2")
        aqpg.sql("ALTER ROLE aq_c1 PASSWORD 'new-pw-c1';\n"
                 "CREATE ROLE aq_c2 LOGIN PASSWORD 'pw-c2' IN ROLE aq_scram_grp;")
        # Within the lifetime: the cached answers (the pooled server connection stays logged in).
        with login(c, "aq_c1", "old-pw-c1") as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("aq_c1",)
        assert "password authentication failed" in refused(c, "aq_c1", "new-pw-c1")
        assert "password authentication failed" in refused(c, "aq_c2", "pw-c2")
        # A lifetime of 1 s (a reload applies to entries already cached).
        c.reload(auth_query_cache_lifetime=1, wait=0.3)
        time.sleep(1.1)
        with login(c, "aq_c1", "new-pw-c1") as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("aq_c1",)
        assert "password authentication failed" in refused(c, "aq_c1", "old-pw-c1")
        with login(c, "aq_c2", "pw-c2") as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("aq_c2",)
        # lifetime 0: every login asks the server
        c.reload(auth_query_cache_lifetime=0, wait=0.3)
        aqpg.sql("ALTER ROLE aq_c2 PASSWORD 'pw-c2-again'")
        with login(c, "aq_c2", "pw-c2-again") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert_no_secrets(c, "old-pw-c1", "new-pw-c1", "pw-c2")
    finally:
        c.stop()
        harness.wait_no_backends(aqpg, 10)
        aqpg.sql("DROP ROLE IF EXISTS aq_c1; DROP ROLE IF EXISTS aq_c2;")


@pytest.mark.timeout(60)
def test_auth_query_failures_are_clear_and_secret_free(carrier, aqpg):
    # auth_user cannot log in: wrong password in the auth file
    c = aq_carrier(carrier, aqpg, auth_file={AUTH_USER: "wrong-auth-pw-123"})
    text = refused(c, "aq_s1", SCRAM_ROLES["aq_s1"])
    assert 'authentication failed for user "aq_s1": auth_query could not be run' in text, text
    log = c.log()
    assert 'password authentication failed for user "%s"' % AUTH_USER in log, log[-3000:]
    assert "wrong-auth-pw-123" not in log
    assert_no_secrets(c)
    # an SQL error in auth_query (and the right password now: a new connection)
    c.reload(auth_file={AUTH_USER: AUTH_PW}, auth_query="SELECT usename, passwd FROM nowhere WHERE usename=$1",
             wait=0.3)
    text = refused(c, "aq_s1", SCRAM_ROLES["aq_s1"])
    assert 'auth_query could not be run' in text, text
    assert 'relation "nowhere" does not exist' in c.log()
    # a query of the wrong shape
    c.reload(auth_query="SELECT passwd FROM pg_shadow WHERE usename=$1", wait=0.3)
    assert 'auth_query could not be run' in refused(c, "aq_s1", SCRAM_ROLES["aq_s1"])
    # back to the default: works
    c.reload(auth_query="SELECT usename, passwd FROM pg_shadow WHERE usename=$1", wait=0.3)
    with login(c, "aq_s1", SCRAM_ROLES["aq_s1"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("aq_s1",)
    assert_no_secrets(c, "wrong-auth-pw-123")
    # server not there at all
    dead = aq_carrier(carrier, aqpg, port=harness.free_port(), server_connect_timeout=2)
    text = refused(dead, "aq_s1", SCRAM_ROLES["aq_s1"])
    assert 'auth_query could not be run' in text, text
    assert "could not connect" in dead.log()


@pytest.mark.timeout(60)
def test_many_clients_at_once(carrier, aqpg):
    """50 clients of 5 roles (SCRAM and md5 secrets) log in at the same time."""
    c = aq_carrier(carrier, aqpg, auth_type="md5", auth_query_cache_lifetime=0, pool_size=4)
    roles = [("aq_s1", SCRAM_ROLES["aq_s1"]), ("aq_s3", SCRAM_ROLES["aq_s3"]),
             ("aq_s4", SCRAM_ROLES["aq_s4"]), ("aq_m1", MD5_ROLES["aq_m1"]), ("aq_m3", MD5_ROLES["aq_m3"])]
    n = 50
    barrier = threading.Barrier(n)
    errors = []

    def run(i):
        user, pw = roles[i % len(roles)]
        try:
            barrier.wait(10)
            with login(c, user, pw) as conn:
                for _ in range(3):
                    assert conn.execute("SELECT current_user").fetchone() == (user,)
        except Exception as e:  # reported below
            errors.append("%s: %r" % (user, e))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    assert not errors, errors[:5]
    assert auth_query_backends(aqpg) == 1
    assert_no_secrets(c)


@pytest.mark.timeout(60)
def test_client_leaves_while_query_runs(carrier, aqpg):
    """Clients that vanish or time out while their auth_query runs: the
    thread never touches them again (ASan), and the others go on."""
    c = aq_carrier(carrier, aqpg, auth_query=SLOW_QUERY % "0.3", auth_query_cache_lifetime=0,
                   client_login_timeout=1)
    socks = []
    for i in range(12):
        s = socket.create_connection((c.host, c.port), timeout=10)
        s.sendall(startup_packet("aq_s%d" % (i % 5 + 1)))
        if i % 3 == 0:
            s.close()               # gone at once
        else:
            socks.append(s)
    time.sleep(0.2)
    for s in socks[::2]:
        s.close()                   # gone while its query runs or waits
    # the rest is closed by client_login_timeout while queries are still queued
    time.sleep(1.5)
    for s in socks[1::2]:
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        s.close()
    assert c.running
    # queries still finishing for clients long gone; then a normal login
    time.sleep(0.5)
    c.reload(client_login_timeout=30, wait=0.3)
    with login(c, "aq_s5", SCRAM_ROLES["aq_s5"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("aq_s5",)
    assert c.running
    assert "client_login_timeout" in c.log()


@pytest.mark.timeout(60)
def test_sigint_with_query_in_flight(carrier, aqpg):
    c = aq_carrier(carrier, aqpg, auth_query=SLOW_QUERY % "20")
    result = {}

    def client():
        try:
            login(c, "aq_s1", SCRAM_ROLES["aq_s1"]).close()
            result["ok"] = True
        except Exception as e:
            result["error"] = str(e)

    t = threading.Thread(target=client)
    t.start()
    deadline = time.monotonic() + 10
    while aqpg.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgcarrier-auth_query' "
                   "AND state = 'active'") != "1":
        assert time.monotonic() < deadline, "auth_query never started"
        time.sleep(0.05)
    t0 = time.monotonic()
    rc = c.stop(signal.SIGINT, timeout=10)
    took = time.monotonic() - t0
    t.join(10)
    # The server notices only when pg_sleep ends that pgcarrier is gone: end it now.
    aqpg.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE application_name = 'pgcarrier-auth_query'")
    assert rc == 0 and not c.stop_timed_out
    assert took < 3, took
    assert "the database system is shutting down" in result.get("error", ""), result
