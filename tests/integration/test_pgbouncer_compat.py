"""Moving from PgBouncer is one step (docs/migrating-from-pgbouncer.md).

A pgbouncer.ini in the shape of PgBouncer's documented example ([databases]
first, a [pgbouncer] section with the keys PgBouncer 1.25 documents, comments
at the start of lines, %include) loads and serves unmodified, and every
warning it causes names a key.  Then each PgBouncer key that pgcarrier
honours is checked where its effect can be seen: query_timeout cancels a
long query, server_check_query runs on a server idle for server_check_delay,
server_round_robin takes the oldest idle server, tcp_keepalive sets
SO_KEEPALIVE (ss -o), unix_socket_mode/group are the socket's, ...
"""

import grp
import hashlib
import os
import re
import socket
import subprocess
import time

import psycopg
import pytest

import harness

# Keys PgBouncer 1.25 documents for [pgbouncer], [databases] and [users]
# lines, plus the [peers] section: a warning must name one of them.
PGBOUNCER_KEYS = set("""
admin_users application_name_add_host auth_dbname auth_file auth_hba_file
auth_ident_file auth_ldap_options auth_query auth_type auth_user
autodb_idle_timeout cancel_wait_timeout client_idle_timeout client_login_timeout
client_tls13_ciphers client_tls_ca_file client_tls_cert_file client_tls_ciphers
client_tls_dheparams client_tls_ecdhcurve client_tls_key_file client_tls_protocols
client_tls_sslmode conffile default_pool_size disable_pqexec dns_max_ttl
dns_nxdomain_ttl dns_zone_check_period idle_transaction_timeout
ignore_startup_parameters job_name listen_addr listen_backlog listen_port
log_connections log_disconnections log_pooler_errors log_stats logfile
max_client_conn max_db_client_connections max_db_connections max_packet_size
max_prepared_statements max_user_client_connections max_user_connections
min_pool_size peer_id pidfile pkt_buf pool_mode query_timeout query_wait_notify
query_wait_timeout reserve_pool_size reserve_pool_timeout resolv_conf
sbuf_loopcnt scram_iterations server_check_delay server_check_query
server_connect_timeout server_fast_close server_idle_timeout server_lifetime
server_login_retry server_reset_query server_reset_query_always
server_round_robin server_tls13_ciphers server_tls_ca_file server_tls_cert_file
server_tls_ciphers server_tls_key_file server_tls_protocols server_tls_sslmode
service_name so_reuseport stats_period stats_users suspend_timeout syslog
syslog_facility syslog_ident tcp_defer_accept tcp_keepalive tcp_keepcnt
tcp_keepidle tcp_keepintvl tcp_socket_buffer tcp_user_timeout
track_extra_parameters transaction_timeout unix_socket_dir unix_socket_group
unix_socket_mode user verbose
dbname host port password pool_size reserve_pool connect_query
load_balance_hosts client_encoding datestyle timezone application_name
[peers]
""".split())

WARNING = re.compile(r"WARNING: (\S+):(\d+): (\S+): ")

APP_PASSWORD = "app-pw"


def md5_secret(user, password):
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


class FileCarrier(harness.Pgcarrier):
    """A Pgcarrier whose configuration is a file the test writes as it
    wants it (a PgBouncer file, say) instead of the harness' [pgcarrier]."""

    def __init__(self, text_of, **kw):
        super().__init__(**kw)
        self.text_of = text_of      # callable(self) -> file text

    @property
    def pool_mode(self):
        return "session"

    def write_config(self):
        with open(self.config_path, "w") as f:
            f.write(self.text_of(self))
        self.give_files()


def run_as_line():
    return "user = %s\n" % harness.RUN_AS if harness.RUN_AS else ""


def example_ini(pg):
    """A pgbouncer.ini written from PgBouncer 1.25's documented keys, laid
    out as PgBouncer's example file is: [databases] first, the [pgbouncer]
    section with its keys (most at their documented defaults), comments only
    at the start of lines, and a %include."""

    def text(c):
        with open(os.path.join(c.dir, "databases.d.ini"), "w") as f:
            f.write(";; included from pgbouncer.ini\n"
                    "postgres = host=%s port=%d dbname=postgres\n" % (pg.sockdir, pg.port))
        with open(os.path.join(c.dir, "userlist.txt"), "w") as f:
            f.write('"app" "%s"\n' % md5_secret("app", APP_PASSWORD))
        return """\
;; database name = connect string
;;
;; connect string params:
;;   dbname= host= port= user= password= auth_user=
;;   client_encoding= datestyle= timezone=
;;   pool_size= reserve_pool= max_db_connections=
;;   pool_mode= connect_query= application_name=
[databases]

; the application's database, over TCP
app = host=127.0.0.1 port=%(pgport)d dbname=app

  ; more databases in a file of their own
%%include databases.d.ini

;; per-user settings
[users]

app = pool_mode=transaction max_user_connections=50

;; configuration section
[pgbouncer]

;;;
;;; administrative settings
;;;

logfile = %(dir)s/pgbouncer.log
pidfile = %(dir)s/pgbouncer.pid

;;;
;;; where to wait for clients
;;;

listen_addr = 127.0.0.1
listen_port = %(port)d
unix_socket_dir = %(dir)s
unix_socket_mode = 0777
;unix_socket_group =
%(user)s
;;;
;;; authentication settings
;;;

auth_type = md5
auth_file = %(dir)s/userlist.txt
;auth_hba_file =
;auth_user = pgbouncer
auth_query = SELECT usename, passwd FROM pg_shadow WHERE usename=$1

;;;
;;; users allowed into the console
;;;

admin_users = postgres
stats_users = stats, postgres

;;;
;;; pooler personality
;;;

pool_mode = session
server_reset_query = DISCARD ALL
server_reset_query_always = 0
ignore_startup_parameters = extra_float_digits
track_extra_parameters = IntervalStyle
server_check_query = <empty>
server_check_delay = 30
max_prepared_statements = 200
application_name_add_host = 0

;;;
;;; connection limits
;;;

max_client_conn = 100
default_pool_size = 20
min_pool_size = 0
reserve_pool_size = 0
reserve_pool_timeout = 5
max_db_connections = 0
max_user_connections = 0
server_round_robin = 0

;;;
;;; logging
;;;

syslog = 0
syslog_facility = daemon
syslog_ident = pgbouncer
log_connections = 1
log_disconnections = 1
log_pooler_errors = 1
log_stats = 1
stats_period = 60
verbose = 0

;;;
;;; timeouts
;;;

server_lifetime = 3600
server_idle_timeout = 600
server_connect_timeout = 15
server_login_retry = 15
query_timeout = 0
query_wait_timeout = 120
cancel_wait_timeout = 10
client_idle_timeout = 0
client_login_timeout = 60
autodb_idle_timeout = 3600
idle_transaction_timeout = 0
server_fast_close = 0

;;;
;;; TLS settings
;;;

client_tls_sslmode = disable
;client_tls_key_file =
;client_tls_cert_file =
server_tls_sslmode = prefer
server_tls_protocols = secure
server_tls_ciphers = default

;;;
;;; dangerous timeouts
;;;

;transaction_timeout = 0

;;;
;;; low-level tuning options
;;;

pkt_buf = 4096
max_packet_size = 2147483647
listen_backlog = 128
sbuf_loopcnt = 5
so_reuseport = 0
tcp_defer_accept = 0
tcp_socket_buffer = 0
tcp_keepalive = 1
tcp_keepcnt = 0
tcp_keepidle = 0
tcp_keepintvl = 0
tcp_user_timeout = 0
dns_max_ttl = 15
dns_nxdomain_ttl = 15
""" % {"pgport": pg.port, "dir": c.dir, "port": c.port, "user": run_as_line()}

    return text


def bouncer_carrier(pgc_bin, text_of):
    c = FileCarrier(text_of, binary=pgc_bin)
    c.logfile = os.path.join(c.dir, "pgbouncer.log")
    return c


@pytest.fixture
def bouncers():
    made = []
    yield made
    errors = []
    for c in made:
        try:
            c.cleanup(check=True)
        except harness.HarnessError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


def test_pgbouncer_ini_loads_and_serves(pg, pgc_bin, bouncers):
    c = bouncer_carrier(pgc_bin, example_ini(pg))
    bouncers.append(c)
    c.write_config()
    # --check says what it warns about on stderr, each line naming a key
    r = subprocess.run([pgc_bin, "--check", "-c", c.config_path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration file %s is valid\n" % c.config_path
    check_warnings = r.stderr.splitlines()
    assert check_warnings, "the example sets keys pgcarrier does not act on"
    for line in check_warnings:
        m = re.match(r"warning: (\S+):(\d+): (\S+): ", line)
        assert m and m.group(3) in PGBOUNCER_KEYS, line

    c.start()
    # md5 from the auth file, session pooling by default, the [users] line's
    # transaction mode for app, the %include'd database
    with psycopg.connect(c.dsn(user="app", password=APP_PASSWORD), autocommit=True,
                         prepare_threshold=None) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 100
    with psycopg.connect(c.dsn(db="postgres", user="app", password=APP_PASSWORD),
                         autocommit=True) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == "postgres"
    # extra_float_digits is in ignore_startup_parameters: accepted (it is a real GUC anyway)
    with psycopg.connect(c.dsn(user="app", password=APP_PASSWORD, options="-c extra_float_digits=2"),
                         autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SELECT 1")
    # a wrong password is refused: auth_type md5, as the file says
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(c.dsn(user="app", password="wrong"))

    log = c.log()
    warnings = WARNING.findall(log)
    assert warnings
    for _file, _line, key in warnings:
        assert key in PGBOUNCER_KEYS, key
    named = {key for _f, _l, key in warnings}
    assert {"pkt_buf", "max_packet_size", "dns_max_ttl", "sbuf_loopcnt"} <= named
    # the console's and the statistics' keys are honoured: no warning
    assert not named & {"stats_users", "stats_period", "log_stats"}
    # one warning per key
    assert len(named) == len(warnings)
    # and no other warning at all
    other = [l for l in log.splitlines() if "WARNING:" in l and not WARNING.search(l)]
    assert other == []


def test_pgbouncer_comments_are_read_as_pgbouncer_reads_them(pg, pgc_bin, bouncers):
    """In a [pgbouncer] file ';' and '#' after a value are part of it; the
    same lines under [pgcarrier] are comments (docs/behaviour.md)."""
    def text(c):
        return ("[databases]\napp = host=%s port=%d dbname=app\n"
                "[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir = %s\n"
                "auth_type = trust\n%s"
                "server_reset_query = SELECT 1 ;SELECT 2 # both run\n"
                "logfile = %s/a ; b.log\n"
                % (pg.sockdir, pg.port, c.port, c.dir, run_as_line(), c.dir))
    c = bouncer_carrier(pgc_bin, text)
    c.logfile = os.path.join(c.dir, "a ; b.log")
    bouncers.append(c)
    c.start()
    assert os.path.exists(os.path.join(c.dir, "a ; b.log"))
    with psycopg.connect(c.dsn(), autocommit=True) as conn:
        conn.execute("SELECT 1")
    assert "configuration file" not in c.log() or "WARNING" not in c.log()


# ---------------------------------------------------------------------------
# each honoured key, by its effect
# ---------------------------------------------------------------------------

def test_query_timeout_cancels_a_long_query(carrier, pg):
    c = carrier(query_timeout=1, workers=1)
    conn = c.connect()
    start = time.monotonic()
    with pytest.raises(psycopg.Error) as e:
        conn.execute("SELECT pg_sleep(60)")
    assert "query_timeout" in str(e.value)
    assert time.monotonic() - start < 55
    assert conn.closed or conn.broken
    # the backend's query was cancelled, not left to run: no pg_sleep left
    deadline = time.monotonic() + 20
    while True:
        n = int(pg.sql("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' "
                       "AND state = 'active'"))
        if n == 0:
            break
        assert time.monotonic() < deadline, "the query still runs on the server"
        time.sleep(0.1)
    # a client idle inside a transaction is not running a query
    with c.connect() as conn2:
        conn2.execute("BEGIN")
        time.sleep(1.5)
        assert conn2.execute("SELECT 1").fetchone()[0] == 1
        conn2.execute("COMMIT")
    assert "query_timeout" in c.log()


@pytest.fixture
def seq(pg):
    names = []

    def make(name):
        pg.sql("DROP SEQUENCE IF EXISTS %s; CREATE SEQUENCE %s; GRANT ALL ON SEQUENCE %s TO PUBLIC"
               % (name, name, name), db="app")
        names.append(name)
        return name

    yield make
    for n in names:
        pg.sql("DROP SEQUENCE IF EXISTS %s" % n, db="app")


def seq_calls(pg, name):
    """How often nextval() ran on the sequence (0 if never)."""
    return int(pg.sql("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM %s" % name,
                      db="app"))


@pytest.mark.parametrize("delay,checks", [(0, 3), (3600, 0)])
def test_server_check_query_runs_on_a_server_idle_past_the_delay(carrier, pg, seq, delay, checks):
    s = seq("pgc_check_seq_%d" % delay)
    c = carrier(pool_size=1, workers=1, server_check_query="SELECT nextval('%s')" % s,
                server_check_delay=delay)
    with c.connect() as conn:
        conn.execute("SELECT 1")        # the pool's one server exists and is idle now
        before = seq_calls(pg, s)
        for _ in range(3):
            conn.execute("SELECT 1")
        # each of the three took the idle server: checked first when idle for the delay or longer
        assert seq_calls(pg, s) - before == checks


def test_server_check_query_that_fails_replaces_the_server(carrier):
    c = carrier(pool_size=1, workers=1, server_check_query="SELECT 1/0", server_check_delay=0)
    with c.connect() as conn:
        pids = [conn.execute("SELECT pg_backend_pid()").fetchone()[0] for _ in range(3)]
    assert len(set(pids)) == 3


def backend_pids(c, n):
    """pg_backend_pid() of n transactions in a row of one client."""
    with c.connect() as conn:
        return [conn.execute("SELECT pg_backend_pid()").fetchone()[0] for _ in range(n)]


def two_idle_servers(c):
    a, b = c.connect(), c.connect()
    a.execute("BEGIN")
    b.execute("BEGIN")
    a.execute("SELECT 1")
    b.execute("SELECT 1")
    a.execute("COMMIT")
    b.execute("COMMIT")
    a.close()
    b.close()


@pytest.mark.parametrize("rr", [0, 1])
def test_server_round_robin(carrier, rr):
    c = carrier(pool_size=2, workers=1, server_round_robin=rr)
    two_idle_servers(c)
    pids = backend_pids(c, 4)
    if rr:
        assert len(set(pids)) == 2 and pids[0] != pids[1] and pids[1] != pids[2], pids
    else:
        assert len(set(pids)) == 1, pids


def socket_timers(pid, port_filter):
    """ss -tnop lines of process pid matching port_filter (an ss filter)."""
    r = subprocess.run(["ss", "-tnopH"] + port_filter.split(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return [l for l in r.stdout.splitlines() if "pid=%d," % pid in l]


@pytest.mark.parametrize("on", [1, 0])
def test_tcp_keepalive_sets_so_keepalive(carrier, pg, on):
    dbs = harness.standard_databases(pg)
    dbs["app"] = {"host": "127.0.0.1", "port": pg.port, "dbname": "app"}
    c = carrier(databases=dbs, tcp_keepalive=on, tcp_keepidle=7777, tcp_keepintvl=11, tcp_keepcnt=3,
                tcp_user_timeout=30000, pool_mode="session")
    with c.connect() as conn:
        conn.execute("SELECT 1")
        # ss shows one timer per socket: a retransmission one may show for a moment after data
        deadline = time.monotonic() + 10
        while True:
            lines = socket_timers(c.pid, "sport = :%d" % c.port) + \
                socket_timers(c.pid, "dport = :%d" % pg.port)
            settled = len(lines) >= 2 and not any("timer:(on," in l for l in lines)
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert len(lines) >= 2, lines     # the client's connection and the server connection
    for line in lines:
        if on:
            # keepidle 7777 s: the timer shows about 2 h 9 min
            assert "timer:(keepalive,129min" in line or "timer:(keepalive,2h" in line, line
        else:
            assert "keepalive" not in line, line


def test_tcp_keepalive_after_a_reload_reaches_new_clients(carrier):
    """Clients' sockets take their options from the listener (set once at
    start, netopt.h); after a reload that changes them, new clients get the
    new values."""
    c = carrier(tcp_keepalive=1, tcp_keepidle=7777, pool_mode="session")

    def client_timer():
        with c.connect() as conn:
            conn.execute("SELECT 1")
            deadline = time.monotonic() + 10
            while True:
                lines = socket_timers(c.pid, "sport = :%d" % c.port)
                if (lines and not any("timer:(on," in l for l in lines)) or time.monotonic() > deadline:
                    return lines
                time.sleep(0.2)

    lines = client_timer()
    assert lines and all("timer:(keepalive,129min" in l or "timer:(keepalive,2h" in l for l in lines), lines
    c.reload(settings={"tcp_keepidle": 3000})
    lines = client_timer()
    # keepidle 3000 s: the timer shows about 50 min
    assert lines and all("timer:(keepalive,49min" in l or "timer:(keepalive,50min" in l for l in lines), lines


def test_unix_socket_mode_and_group(carrier):
    group = harness.RUN_AS or grp.getgrgid(os.getgid()).gr_name
    c = carrier(unix_socket_mode="0770", unix_socket_group=group)
    st = os.stat(os.path.join(c.sockdir, ".s.PGSQL.%d" % c.port))
    assert st.st_mode & 0o7777 == 0o770
    assert st.st_gid == grp.getgrnam(group).gr_gid
    with c.connect(unix=True) as conn:
        conn.execute("SELECT 1")


def test_application_name_add_host(carrier):
    c = carrier(application_name_add_host=1, pool_mode="session")
    with psycopg.connect(c.dsn(application_name="myapp"), autocommit=True) as conn:
        port = conn.pgconn.socket and socket.socket(fileno=os.dup(conn.pgconn.socket)).getsockname()[1]
        name = conn.execute("SHOW application_name").fetchone()[0]
        assert name == "myapp - 127.0.0.1:%d" % port
        # later SETs are the client's own
        conn.execute("SET application_name = 'other'")
        assert conn.execute("SHOW application_name").fetchone()[0] == "other"
    with psycopg.connect(c.dsn(), autocommit=True) as conn:
        assert re.match(r"^app - 127\.0\.0\.1:\d+$", conn.execute("SHOW application_name").fetchone()[0])


def first_query(r, sql):
    """Messages of one query, or of what came before the server closed."""
    r.send("Q", harness.cstr(sql))
    msgs = []
    try:
        while not msgs or msgs[-1][0] != "Z":
            msgs.append(r.recv())
    except (EOFError, OSError):
        msgs.append(("EOF", b""))
    return msgs


@pytest.mark.parametrize("ignored", [False, True])
def test_ignore_startup_parameters_lets_an_unknown_parameter_through(carrier, ignored):
    settings = {"ignore_startup_parameters": "pgc_unknown_param, other"} if ignored else {}
    c = carrier(**settings)
    with harness.RawConn(c.host, c.port) as r:
        msgs = r.startup("app", "app", raise_on_error=False, pgc_unknown_param="1")
        assert msgs[-1][0] == "Z", msgs
        out = first_query(r, "SELECT 41 + 1")
        if not ignored:
            # the server does not know it: the session cannot be set up, as directly
            assert out[-1][0] == "EOF" or any(t == "E" for t, _ in out), out
            assert not any(t == "D" for t, _ in out), out
            return
        assert harness.data_row([p for t, p in out if t == "D"][0]) == [b"42"]


@pytest.mark.parametrize("always,resets", [(1, 3), (0, 0)])
def test_server_reset_query_always(carrier, pg, seq, always, resets):
    s = seq("pgc_reset_seq_%d" % always)
    c = carrier(pool_size=1, workers=1, server_reset_query="SELECT nextval('%s')" % s,
                server_reset_query_always=always, session_guard=0)
    with c.connect() as conn:
        conn.execute("SELECT 1")
        deadline = time.monotonic() + 10
        before = seq_calls(pg, s)
        for _ in range(3):
            conn.execute("SELECT 1")
        # released after each transaction, the server runs the reset before its next use
        while seq_calls(pg, s) - before < resets and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seq_calls(pg, s) - before == resets


def test_so_reuseport_lets_processes_share_the_port(carrier, pgc_bin):
    a = carrier(so_reuseport=1)
    b = harness.Pgcarrier(pgc_bin, settings=dict(a.settings, unix_socket_dir=None),
                          databases=a.databases)
    b.port = a.port
    b.settings["listen_port"] = a.port
    b.settings["unix_socket_dir"] = b.dir
    try:
        b.start()
        deadline = time.monotonic() + 10
        while "pgcarrier started" not in b.log() and b.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "pgcarrier started" in b.log(), b.log()
        assert b.running and a.running
    finally:
        b.cleanup()


@pytest.mark.parametrize("fast", [1, 0])
def test_server_fast_close(carrier, pg, fast):
    c = carrier(pool_mode="session", server_fast_close=fast)
    conn = c.connect()
    conn.execute("SELECT 1")
    dbs = dict(c.databases)
    dbs["app"] = {"host": "127.0.0.1", "port": pg.port, "dbname": "app"}   # a new login would differ
    c.reload(databases=dbs)
    deadline = time.monotonic() + 10
    if fast:
        with pytest.raises(psycopg.OperationalError, match="server_fast_close"):
            while time.monotonic() < deadline:
                conn.execute("SELECT 1")
                time.sleep(0.1)
    else:
        for _ in range(5):
            assert conn.execute("SELECT 1").fetchone()[0] == 1
        conn.close()


@pytest.mark.parametrize("use_auth_db", [True, False])
def test_auth_dbname_chooses_where_auth_query_runs(carrier, pg, use_auth_db):
    dbs = harness.standard_databases(pg)
    dbs["md5app"] = {"host": "127.0.0.1", "port": pg.port, "dbname": "app"}
    dbs["authdb"] = {"host": pg.sockdir, "port": pg.port, "dbname": "postgres"}
    settings = dict(auth_type="md5", auth_user="postgres",
                    auth_query="SELECT usename, passwd FROM pg_shadow WHERE usename = $1 "
                               "AND current_database() = 'postgres'")
    if use_auth_db:
        settings["auth_dbname"] = "authdb"
    c = carrier(databases=dbs, auth_file={"postgres": ""}, **settings)
    dsn = c.dsn(db="md5app", user="md5user", password=harness.MD5_PASSWORD)
    if use_auth_db:
        with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == "md5user"
    else:
        # run in database app, the query finds no row: the login fails as a wrong password would
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(dsn)


def test_auth_type_any_ignores_the_user_name(carrier, pg):
    dbs = {"app": {"host": pg.sockdir, "port": pg.port, "dbname": "app", "user": "app"}}
    c = carrier(databases=dbs, auth_type="any")
    with c.connect(user="nobody_at_all") as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "app"


def test_syslog_reaches_the_syslog_socket(carrier):
    path = os.path.join(harness.tempfile.mkdtemp(prefix="pgc-syslog-"), "log")
    os.chmod(os.path.dirname(path), 0o755)
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    os.chmod(path, 0o666)
    rx.settimeout(10)
    try:
        c = carrier(syslog=1, syslog_ident="pgc-test", syslog_facility="local3", syslog_socket=path)
        got = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any("pgcarrier started" in g for g in got):
            got.append(rx.recv(4096).decode())
        started = [g for g in got if "pgcarrier started" in g]
        assert started, got
        # <PRI> = local3 (19) * 8 + info (6); then the time, ident[pid]: LEVEL: message
        assert re.match(r"^<158>\w{3} [ \d]\d \d\d:\d\d:\d\d pgc-test\[%d\]: LOG: pgcarrier started"
                        % c.pid, started[0]), started[0]
        with c.connect() as conn:
            conn.execute("SELECT 1")
        # the log file still gets everything
        assert "pgcarrier started" in c.log()
    finally:
        rx.close()
        harness.shutil.rmtree(os.path.dirname(path), ignore_errors=True)


def test_sd_notify(carrier):
    """READY=1 once it listens, RELOADING=1 and READY=1 around a reload,
    STOPPING=1 when it stops: what a systemd Type=notify unit needs."""
    d = harness.tempfile.mkdtemp(prefix="pgc-notify-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "notify")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    os.chmod(path, 0o666)
    rx.settimeout(15)
    c = carrier(start=False)
    c.write_config()
    env = dict(os.environ, NOTIFY_SOCKET=path)
    logf = open(c.logfile, "ab")
    proc = subprocess.Popen([c.binary, "-c", c.config_path], stdin=subprocess.DEVNULL,
                            stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=c.dir)
    try:
        assert rx.recv(4096) == b"READY=1"
        # it really listens by then
        with socket.create_connection((c.host, c.port), timeout=5):
            pass
        proc.send_signal(harness.signal.SIGHUP)
        msg = rx.recv(4096).decode()
        assert re.match(r"^RELOADING=1\nMONOTONIC_USEC=\d+$", msg), msg
        assert rx.recv(4096) == b"READY=1"
        proc.send_signal(harness.signal.SIGINT)
        assert rx.recv(4096) == b"STOPPING=1"
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        logf.close()
        rx.close()
        harness.shutil.rmtree(d, ignore_errors=True)
    if harness.SAN:
        assert not any(m in c.log() for m in harness.SANITIZER_MARKERS), c.log()
