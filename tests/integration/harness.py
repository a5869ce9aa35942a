"""Integration test harness for pgcarrier: a real PostgreSQL 15 and a real
pgcarrier daemon, started and stopped by the tests.

This module is plain Python (no pytest fixtures here; those are in
conftest.py) so that every test file can ``import harness``.  Its API is
meant to stay stable; extend it, do not change what exists.

Environment
-----------
PGCARRIER_BIN   absolute path of the daemon binary (default: <repo>/pgcarrier)
PGCARRIER_SAN   "1" (ASan + UBSan) or "thread" (ThreadSanitizer) when the
                binary is a sanitizer build: every daemon log is then checked
                at teardown for "Sanitizer" (AddressSanitizer, LeakSanitizer,
                "WARNING: ThreadSanitizer: data race", ...) and
                "runtime error:" (UBSan).  Unset or "0": a plain build.
PG_BINDIR       PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
PGCARRIER_KEEP_LOGS  a directory: every daemon log is copied there at
                cleanup (pgcarrier-<port>.log), for debugging.

Importing the module raises RLIMIT_NOFILE (soft) of the test process to its
hard limit; the daemon, started from here, inherits it.

PgServer(name='pg')
    A fresh cluster: initdb as the ``postgres`` OS user in a new temp dir,
    listening on 127.0.0.1:<free port>, Unix socket in the temp dir.
    Settings: max_connections=300, fsync=off, synchronous_commit=off,
    shared_buffers=128MB, password_encryption=scram-sha-256.
    pg_hba: local trust; host md5user -> md5; host scramuser -> scram;
    host all others -> trust (127.0.0.1/32).
    Roles (all LOGIN): ``postgres`` (superuser), ``app`` (no password),
    ``md5user`` (password MD5_PASSWORD, stored as md5),
    ``scramuser`` (password SCRAM_PASSWORD, stored as SCRAM); and
    ``guard_role`` (NOLOGIN, granted to app, for SET ROLE tests).
    Database ``app`` (owner app) with tables
        items(id int primary key, name text, qty int)  -- 100 rows, id 1..100
        kv(k text primary key, v text)                  -- empty
        scratch(client int, seq int, val text)          -- empty, no key
    all granted to PUBLIC.
    Methods/properties:
        start(), stop(mode='fast'), restart(), is_running(), ensure_running()
        cleanup()                 stop + remove the temp dir (idempotent)
        sql(query, db='postgres', user='postgres') -> str
            runs the statements through psql -X -A -t -q -v ON_ERROR_STOP=1
            (script on stdin, so each statement is its own transaction) over
            the Unix socket as OS user postgres; returns stdout stripped;
            raises HarnessError (with psql's stderr) on failure.
        dsn(db='app', user='app', **kw)       direct TCP libpq DSN
        unix_dsn(db='app', user='app', **kw)  direct Unix-socket libpq DSN
        connect(db='app', user='app', **kw)   psycopg connection, autocommit,
            application_name 'pgc-direct' (not counted by server_backends)
        port, host ('127.0.0.1'), sockdir, datadir, logfile, log()

Pgcarrier(binary, settings=None, databases=None, users=None, auth_file=None)
    settings: dict of [pgcarrier] keys (overrides defaults: listen_addr
    127.0.0.1, listen_port <free>, unix_socket_dir <its temp dir>,
    workers 2).  databases: dict name -> connection string (str) or dict of
    key/values.  users: dict name -> str/dict ([users] section).
    auth_file: dict user -> secret, written as userlist.txt and referenced
    by the ``auth_file`` setting.  Run as root, the config gets
    ``user = postgres`` (RUN_AS) unless the settings name a user, and
    write_config() gives that user the temp dir, everything in it and the
    files that *_file settings name (give_files()).
        start(timeout=10)         run ``BIN -c FILE`` (stdout+stderr -> log
                                  file), wait until the TCP port accepts;
                                  on failure raise HarnessError with the log.
        stop(sig=SIGINT, timeout=10) -> exit code (returncode convention:
                                  negative = killed by that signal); if it
                                  does not exit in time, SIGKILL (then
                                  .stop_timed_out is True)
        kill(sig=SIGTERM)         send a signal, do not wait
        wait(timeout=10) -> exit code or None
        reload(settings=None, databases=None, users=None, auth_file=None,
               wait=0.5, **overrides)
                                  merge, rewrite the file, SIGHUP, sleep wait
        write_config()            rewrite the file from current attributes
        running (bool), pid, port, host, sockdir, config_path, logfile
        expect_exit               set True when the test makes the daemon
                                  exit by other means (admin SHUTDOWN, a
                                  signal sent with os.kill): cleanup then
                                  does not report its exit as a crash
        log() -> str              whole daemon log
        sanitizer_report() -> str '' or an excerpt with sanitizer findings
        dsn(db='app', user='app', **kw)       TCP libpq DSN
        unix_dsn(db='app', user='app', **kw)  Unix socket libpq DSN
        connect(db='app', user='app', unix=False, **kw)
            psycopg connection (autocommit=True unless given, connect
            timeout 10 s; prepare_threshold=None unless pool_mode is
            session, so psycopg never uses named prepared statements
            across transactions)
        aconnect(db='app', user='app', **kw)  coroutine: asyncpg connection
            (statement_cache_size=0 unless pool_mode is session)
        asyncpg_kwargs(db='app', user='app') -> dict(host, port, ...)
        pool_mode                 the effective default pool_mode
        cleanup(check=True)       stop, then (check) raise HarnessError if the
                                  daemon crashed / exited non-zero on SIGINT /
                                  left sanitizer reports; remove temp dir.

server_backends(pg, db=None, user=None) -> int
    client backends in pg_stat_activity that are not the harness' own
    (application_name 'pgc-direct*' / 'pgc-harness*'), optionally filtered
    by database and user: i.e. the server connections pgcarrier holds.
BackendMonitor(pg, db=None, user=None, interval=0.05)
    context manager: samples server_backends(pg, db, user) from a thread
    every interval seconds; .samples, .max, .error (an exception, or None).
wait_no_backends(pg, timeout=10) -> bool
    wait until server_backends(pg) == 0.
wait_backends(pg, at_most, db=None, user=None, timeout=10) -> bool
    wait until server_backends(pg, db, user) <= at_most (backends of closed
    connections take a moment to exit).
server_connections(carrier, pg) -> int
    the server connections the daemon of a Pgcarrier holds to pg now,
    counted exactly from the daemon's own sockets (/proc/<pid>/fd, ss for
    pg's Unix socket, /proc/net/tcp for its port): never more than it had
    at one moment, and blind to backends still exiting.  Use this, not
    server_backends, to check pool limits.
ServerConnectionMonitor(carrier, pg, interval=0.05)
    context manager: samples server_connections(carrier, pg) from a thread
    every interval seconds; .samples, .max, .error.
standard_databases(pg) -> dict
    the [databases] entries the ``carrier`` fixture uses:
        app      = host=<pg sockdir> port=<pg port> dbname=app
        postgres = host=<pg sockdir> port=<pg port> dbname=postgres
        md5db    = host=127.0.0.1 port=<pg port> dbname=app user=md5user
                   password=MD5_PASSWORD
        scramdb  = host=127.0.0.1 port=<pg port> dbname=app user=scramuser
                   password=SCRAM_PASSWORD
        *        = host=<pg sockdir> port=<pg port>

RawConn(host, port, timeout=10)
    Minimal protocol-3.0 client over a socket, for byte-exact tests.
        startup(user, database, raise_on_error=True, **params)
            -> list of (type, payload) up to ReadyForQuery, or up to and
            including an ErrorResponse (raises HarnessError instead when
            raise_on_error); sets .params (ParameterStatus) and .backend_key
        send(type, payload=b'')    one message (type is a 1-char str or b'')
        send_raw(bytes)
        recv() -> (type, payload)  next backend message (type 1-char str)
        recv_until_ready(n=1) -> list of messages up to the n-th 'Z'
        query(sql) -> list of messages (simple Query, up to 'Z')
        close()                    Terminate + close
    Message builders (bytes payloads): msg_parse(name, sql, oids=()),
    msg_bind(portal, stmt, params=(), fmts=(), rfmts=()),
    msg_describe(kind, name), msg_execute(portal, maxrows=0),
    msg_close(kind, name), msg_func_call(oid, args, fmts=(), rfmt=0),
    msg(type, payload=b'') -> one whole framed message (bytes),
    cstr(s); parse_error(payload) -> dict of field-letter -> str;
    data_row(payload) -> list of bytes|None.

Also: free_port(), PG_BINDIR, MD5_PASSWORD, SCRAM_PASSWORD, HarnessError,
SAN (bool: any sanitizer build), TSAN (bool: ThreadSanitizer build),
SANITIZER_MARKERS, pgcarrier_bin(), RUN_AS ("postgres" when the tests run
as root, else None: the account the daemon drops root's privileges for).
"""

import atexit
import contextlib
import os
import pwd
import random
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

PG_BINDIR = os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin")
MD5_PASSWORD = "md5-secret-pw"
SCRAM_PASSWORD = "scram-secret-pw"
SAN = os.environ.get("PGCARRIER_SAN", "0") not in ("", "0")
TSAN = os.environ.get("PGCARRIER_SAN", "0") == "thread"
# What a sanitizer writes to the daemon's stderr when it finds something:
# "Sanitizer" is in every ASan, LSan and TSan report ("WARNING: ThreadSanitizer:
# data race"), "runtime error:" in every UBSan one.
SANITIZER_MARKERS = ("Sanitizer", "runtime error:")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class HarnessError(Exception):
    pass


def _raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


_raise_nofile()


# The daemon refuses to run as root without ``user``: the harness runs it as
# this account then (None when the tests do not run as root).
RUN_AS = "postgres" if os.geteuid() == 0 else None


def pgcarrier_bin():
    b = os.environ.get("PGCARRIER_BIN")
    if b:
        return os.path.abspath(b)
    return os.path.join(REPO, "pgcarrier")


_ports_given = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A TCP port free on 127.0.0.1 right now, never one this process gave
    before, and below the kernel's ephemeral range (20000 up to it) where
    there is room: a free ephemeral port may be taken as the source port of
    an outgoing connection (a flood test, pgbench) before the server binds
    it. Small race with other programs, acceptable."""
    low = _ephemeral_low()
    span = low - 20000 if low - 20000 >= 2000 else 0
    for _ in range(200 if span else 0):
        port = 20000 + random.randrange(span)
        if port in _ports_given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sanitizer_excerpt(text):
    """The first sanitizer report in text with its context, or ''."""
    for marker in SANITIZER_MARKERS:
        i = text.find(marker)
        if i >= 0:
            start = text.rfind("\n", 0, max(0, i - 2000)) + 1
            return text[start:i + 6000]
    return ""


def process_cmdlines():
    """(pid, argv as a list of bytes) of every process that can be read."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                yield int(d), f.read().split(b"\0")
        except OSError:
            continue


def postgres_tmpdir(prefix):
    """A new temporary directory that the postgres user owns (mode 0755)."""
    d = tempfile.mkdtemp(prefix=prefix)
    pw = pwd.getpwnam("postgres")
    os.chown(d, pw.pw_uid, pw.pw_gid)
    os.chmod(d, 0o755)
    return d


def _port_open(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _dsn(**kw):
    parts = []
    for k, v in kw.items():
        if v is None:
            continue
        v = str(v)
        if v == "" or any(c in v for c in " '\\"):
            v = "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
        parts.append("%s=%s" % (k, v))
    return " ".join(parts)


# Objects to clean up at interpreter exit, even if a fixture finalizer
# never ran (e.g. KeyboardInterrupt in the middle of setup).
_LIVE = []


def _atexit_cleanup():
    for obj in list(_LIVE):
        try:
            obj.cleanup(check=False) if isinstance(obj, Pgcarrier) else obj.cleanup()
        except Exception:
            pass


atexit.register(_atexit_cleanup)


# ---------------------------------------------------------------------------
# PostgreSQL server
# ---------------------------------------------------------------------------

_PG_SETUP_SQL = """
SET password_encryption = 'md5';
CREATE ROLE md5user LOGIN PASSWORD '%(md5)s';
SET password_encryption = 'scram-sha-256';
CREATE ROLE scramuser LOGIN PASSWORD '%(scram)s';
CREATE ROLE app LOGIN;
CREATE ROLE guard_role NOLOGIN;
GRANT guard_role TO app;
CREATE DATABASE app OWNER app;
""" % {"md5": MD5_PASSWORD, "scram": SCRAM_PASSWORD}

_APP_SETUP_SQL = """
SET ROLE app;
CREATE TABLE items(id int PRIMARY KEY, name text, qty int);
INSERT INTO items SELECT i, 'item-' || i, i * 10 FROM generate_series(1, 100) i;
CREATE TABLE kv(k text PRIMARY KEY, v text);
CREATE TABLE scratch(client int, seq int, val text);
GRANT ALL ON items, kv, scratch TO PUBLIC;
"""


class PgServer:
    def __init__(self, name="pg"):
        self.name = name
        self.host = "127.0.0.1"
        self.port = free_port()
        self.dir = postgres_tmpdir("pgc-%s-" % name)
        self.sockdir = self.dir
        self.datadir = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "postgres.log")
        self._cleaned = False
        _LIVE.append(self)
        try:
            self._initdb()
            self.start()
            self._setup()
        except Exception:
            self.cleanup()
            raise

    # -- plumbing --------------------------------------------------------
    def _as_pg(self, args, check=True, timeout=120, **kw):
        cmd = ["runuser", "-u", "postgres", "--"] + args
        return subprocess.run(cmd, check=check, timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=self.dir, **kw)

    def _initdb(self):
        self._as_pg([os.path.join(PG_BINDIR, "initdb"), "-D", self.datadir,
                     "-U", "postgres", "-A", "trust", "-E", "UTF8",
                     "--locale=C", "--no-sync"])
        conf = """
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
password_encryption = scram-sha-256
logging_collector = off
log_min_messages = warning
""" % (self.port, self.sockdir)
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write(conf)
        hba = """# written by the pgcarrier test harness
local all all trust
host all md5user 127.0.0.1/32 md5
host all scramuser 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
"""
        with open(os.path.join(self.datadir, "pg_hba.conf"), "w") as f:
            f.write(hba)

    def _setup(self):
        self.sql(_PG_SETUP_SQL)
        self.sql(_APP_SETUP_SQL, db="app")

    # -- lifecycle -------------------------------------------------------
    def start(self):
        r = self._as_pg([os.path.join(PG_BINDIR, "pg_ctl"), "-D", self.datadir,
                         "-l", self.logfile, "-w", "-t", "60", "start"],
                        check=False)
        if r.returncode != 0:
            raise HarnessError("pg_ctl start failed: %s%s\n--- log ---\n%s"
                               % (r.stdout, r.stderr, self.log()[-4000:]))

    def stop(self, mode="fast"):
        r = self._as_pg([os.path.join(PG_BINDIR, "pg_ctl"), "-D", self.datadir,
                         "-m", mode, "-w", "-t", "60", "stop"], check=False)
        return r.returncode

    def restart(self, mode="fast"):
        self.stop(mode)
        self.start()

    def is_running(self):
        r = self._as_pg([os.path.join(PG_BINDIR, "pg_ctl"), "-D", self.datadir,
                         "status"], check=False)
        return r.returncode == 0

    def ensure_running(self):
        if not self.is_running():
            self.start()

    def cleanup(self):
        if self._cleaned:
            return
        self._cleaned = True
        try:
            if os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
                if self.stop("fast") != 0:
                    self.stop("immediate")
        finally:
            pidfile = os.path.join(self.datadir, "postmaster.pid")
            try:
                with open(pidfile) as f:
                    pid = int(f.readline())
                os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
            shutil.rmtree(self.dir, ignore_errors=True)
            if self in _LIVE:
                _LIVE.remove(self)

    # -- access ----------------------------------------------------------
    def sql(self, query, db="postgres", user="postgres", timeout=60):
        r = subprocess.run(
            ["runuser", "-u", "postgres", "--", "env", "PGAPPNAME=pgc-harness",
             os.path.join(PG_BINDIR, "psql"), "-X", "-A", "-t", "-q",
             "-v", "ON_ERROR_STOP=1", "-h", self.sockdir, "-p", str(self.port),
             "-U", user, "-d", db, "-f", "-"],
            input=query, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, timeout=timeout, cwd=self.dir)
        if r.returncode != 0:
            raise HarnessError("psql failed (%d): %s\nquery: %s"
                               % (r.returncode, r.stderr.strip(), query))
        return r.stdout.strip()

    def dsn(self, db="app", user="app", **kw):
        kw.setdefault("application_name", "pgc-direct")
        kw.setdefault("connect_timeout", 10)
        return _dsn(host=self.host, port=self.port, dbname=db, user=user, **kw)

    def unix_dsn(self, db="app", user="app", **kw):
        kw.setdefault("application_name", "pgc-direct")
        kw.setdefault("connect_timeout", 10)
        return _dsn(host=self.sockdir, port=self.port, dbname=db, user=user,
                    **kw)

    def connect(self, db="app", user="app", **kw):
        import psycopg
        kw.setdefault("autocommit", True)
        return psycopg.connect(self.dsn(db, user), **kw)

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class BuiltinPgServer(PgServer):
    """A PgServer with the pgcarrier extension preloaded: built-in mode
    (docs/builtin.md). Needs ``make install-extension`` (the integration
    target runs it). ``pooler_port`` is pgcarrier.port; ``conf`` is added
    to postgresql.conf; ``hba``, when given, replaces pg_hba.conf (its
    first line must keep the harness's local postgres login: trust);
    ``before_start(server)`` runs after initdb, before the first start.
    The supervisor's LOG lines reach the server log (in log_min_messages'
    order, LOG is above WARNING)."""

    def __init__(self, name="builtin", conf="", hba=None, wait=True, before_start=None):
        self.pooler_port = free_port()
        self.extra_conf = conf
        self.extra_hba = hba
        self.before_start = before_start
        PgServer.__init__(self, name)
        if wait:
            self.wait_pooler()

    @property
    def conf_path(self):
        return os.path.join(self.datadir, "postgresql.conf")

    def _initdb(self):
        PgServer._initdb(self)
        # PGCARRIER_BUILTIN_LIBDIR (a directory with a pgcarrier.so, searched
        # before $libdir) and PGCARRIER_BUILTIN_DAEMON (a daemon binary) test
        # a build without installing it, as when several branches are tested
        # on one machine; by default the installed extension and daemon (make
        # install-extension) run.
        libdir = os.environ.get("PGCARRIER_BUILTIN_LIBDIR")
        daemon = os.environ.get("PGCARRIER_BUILTIN_DAEMON")
        with open(self.conf_path, "a") as f:
            f.write("shared_preload_libraries = 'pgcarrier'\n"
                    "pgcarrier.port = %d\n"
                    "pgcarrier.workers = 2\n%s%s%s\n"
                    % (self.pooler_port,
                       "dynamic_library_path = '%s:$libdir'\n" % libdir if libdir else "",
                       "pgcarrier.daemon_path = '%s'\n" % daemon if daemon else "",
                       self.extra_conf))
        if self.extra_hba is not None:
            with open(os.path.join(self.datadir, "pg_hba.conf"), "w") as f:
                f.write(self.extra_hba)
        if self.before_start is not None:
            self.before_start(self)

    def add_conf(self, text):
        with open(self.conf_path, "a") as f:
            f.write(text + "\n")

    def cleanup(self):
        """Stop the server (its supervisor stops the daemon); with a
        sanitizer build of the daemon (PGCARRIER_BUILTIN_DAEMON, which make
        integration sets then), raise HarnessError with what the sanitizer
        wrote to the server log."""
        if self._cleaned:
            return
        report = ""
        try:
            if os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
                self.stop("fast")
            if SAN and os.environ.get("PGCARRIER_BUILTIN_DAEMON"):
                report = sanitizer_excerpt(self.log())
        finally:
            PgServer.cleanup(self)
        if report:
            raise HarnessError("the built-in pooler's daemon (%s) had sanitizer findings:\n%s"
                               % (os.environ.get("PGCARRIER_BUILTIN_DAEMON"), report))

    def reload(self):
        self.sql("SELECT pg_reload_conf()")

    def pooler_open(self):
        return _port_open("127.0.0.1", self.pooler_port, timeout=0.2)

    def wait_pooler(self, timeout=15):
        deadline = time.monotonic() + timeout
        while not self.pooler_open():
            if time.monotonic() > deadline:
                raise HarnessError("the built-in pooler does not accept on port %d "
                                   "within %ss\n--- log ---\n%s"
                                   % (self.pooler_port, timeout, self.log()[-4000:]))
            time.sleep(0.05)

    def pooler_pids(self):
        """The daemons run for this data directory (by their command line)."""
        conf = os.path.join(self.datadir, "pgcarrier.ini").encode()
        return [pid for pid, args in process_cmdlines() if conf in args]

    def supervisor_pids(self):
        r = self.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgcarrier supervisor'")
        return [int(x) for x in r.split()] if r else []

    def pooler_dsn(self, db="app", user="app", **kw):
        kw.setdefault("application_name", "pgc-pooled")
        kw.setdefault("connect_timeout", 10)
        return _dsn(host="127.0.0.1", port=self.pooler_port, dbname=db, user=user, **kw)

    def pooler_connect(self, db="app", user="app", **kw):
        import psycopg
        kw.setdefault("autocommit", True)
        return psycopg.connect(self.pooler_dsn(db, user), **kw)


def _server_backends_query(db=None, user=None):
    q = ("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
         " AND pid <> pg_backend_pid()"
         " AND coalesce(application_name, '') NOT LIKE 'pgc-direct%'"
         " AND coalesce(application_name, '') NOT LIKE 'pgc-harness%'")
    if db is not None:
        q += " AND datname = '%s'" % db.replace("'", "''")
    if user is not None:
        q += " AND usename = '%s'" % user.replace("'", "''")
    return q


def server_backends(pg, db=None, user=None):
    """Client backends not opened by the harness itself (see docstring)."""
    return int(pg.sql(_server_backends_query(db, user)))


class _Sampler:
    """A value sampled from a thread every interval seconds while the
    ``with`` block runs: .samples, .max, .error (an exception, or None).
    Subclasses give _sampling(), a context manager yielding the function
    that takes one sample."""

    def __init__(self, interval):
        self.interval = interval
        self.samples = []
        self.error = None
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            with self._sampling() as sample:
                while not self._stop.is_set():
                    self.samples.append(sample())
                    self._stop.wait(self.interval)
        except Exception as e:  # the test looks at .error
            self.error = e

    def __enter__(self):
        self._th.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._th.join(10)

    @property
    def max(self):
        return max(self.samples) if self.samples else 0


class BackendMonitor(_Sampler):
    """Samples server_backends(pg, db, user) from a thread, over one direct
    connection (see docstring)."""

    def __init__(self, pg, db=None, user=None, interval=0.05):
        super().__init__(interval)
        self.pg = pg
        self.query = _server_backends_query(db, user)

    @contextlib.contextmanager
    def _sampling(self):
        with self.pg.connect(db="postgres", user="postgres",
                             application_name="pgc-direct-monitor") as conn:
            yield lambda: conn.execute(self.query).fetchone()[0]


def _socket_inodes(pid):
    """Inodes of the sockets process pid has open now (empty if it is gone)."""
    out = set()
    d = "/proc/%d/fd" % pid
    try:
        names = os.listdir(d)
    except OSError:
        return out
    for fd in names:
        try:
            link = os.readlink(os.path.join(d, fd))
        except OSError:
            continue  # closed since listdir
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


def _unix_peer_inodes(path):
    """Inodes of the client ends of the established connections to the Unix
    socket at path (the peers of its accepted sockets), from ss."""
    r = subprocess.run(["ss", "-xnH", "src", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=10)
    if r.returncode != 0:
        raise HarnessError("ss failed: %s" % r.stderr.strip())
    peers = set()
    for line in r.stdout.splitlines():
        f = line.split()
        # u_str ESTAB recv-q send-q <local path> <inode> <peer addr> <peer inode>
        if len(f) >= 8 and f[-1].isdigit() and f[-1] != "0":
            peers.add(int(f[-1]))
    return peers


def _tcp_inodes_to_port(port):
    """Inodes of the established TCP sockets whose remote port is port."""
    out = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            # sl local_address rem_address st ... inode (field 9); 01 = ESTABLISHED
            if len(f) > 9 and f[3] == "01" and int(f[2].rsplit(":", 1)[1], 16) == port:
                out.add(int(f[9]))
    return out


def server_connections(carrier, pg):
    """Server connections the daemon of ``carrier`` (a Pgcarrier) holds to
    PostgreSQL ``pg`` right now, counted from the daemon's own sockets:
    those of its open descriptors that are connected to pg's Unix socket
    (the peers of the accepted sockets ``ss`` lists for that path) or to
    pg's TCP port (/proc/net/tcp, tcp6).  Unlike pg_stat_activity this
    does not see backends that are still exiting after pgcarrier closed
    their connection.  The descriptors are listed before and after the
    connections, and only sockets in both lists count, so every counted
    connection was open at one same moment: a sample never counts more
    connections than the daemon had at once (it may miss one being made).
    All the daemon's server connections count, whatever their pool, the
    auth_query connection and cancel requests in flight included."""
    pid = carrier.pid
    before = _socket_inodes(pid)
    sock = os.path.join(pg.sockdir, ".s.PGSQL.%d" % pg.port)
    connected = _unix_peer_inodes(sock) | _tcp_inodes_to_port(pg.port)
    return len(before & connected & _socket_inodes(pid))


class ServerConnectionMonitor(_Sampler):
    """Samples server_connections(carrier, pg) from a thread every interval
    seconds while the ``with`` block runs; .samples, .max, .error (an
    exception, or None), like BackendMonitor but exact."""

    def __init__(self, carrier, pg, interval=0.05):
        super().__init__(interval)
        self.carrier, self.pg = carrier, pg

    @contextlib.contextmanager
    def _sampling(self):
        yield lambda: server_connections(self.carrier, self.pg)


PGBENCH = os.path.join(PG_BINDIR, "pgbench")


def pgbench_init(pg, scale=1):
    """pgbench's tables, made directly in pg's database app."""
    r = subprocess.run([PGBENCH, "-i", "-q", "-s", str(scale), "-h", pg.sockdir,
                        "-p", str(pg.port), "-U", "app", "app"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    if r.returncode != 0:
        raise HarnessError("pgbench -i failed:\n" + r.stdout)


def run_pgbench(c, args, timeout=60, pg=None):
    """pgbench through pgcarrier c: the number of transactions it ran. It
    must exit 0 with transactions done, none failed and none aborted; the
    failure message carries both logs (pg's too, when given)."""
    cmd = [PGBENCH, "-n", "-h", c.host, "-p", str(c.port), "-U", "app"] + args + ["app"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout)
    out = r.stdout
    processed = re.search(r"number of transactions actually processed: (\d+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    assert r.returncode == 0, "pgbench exit %d\n%s\n--- pgcarrier log ---\n%s\n--- server log ---\n%s" % (
        r.returncode, out[-3000:], c.log()[-2000:], pg.log()[-2000:] if pg else "")
    assert processed and int(processed.group(1)) > 0, out
    assert failed and int(failed.group(1)) == 0, out
    assert "aborted" not in out.lower(), out
    return int(processed.group(1)), out


def wait_backends(pg, at_most, db=None, user=None, timeout=10):
    """Wait until server_backends(pg, db, user) <= at_most, i.e. until the
    backends of connections pgcarrier closed have exited; True if so within
    timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if server_backends(pg, db, user) <= at_most:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def wait_no_backends(pg, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if server_backends(pg) == 0:
                return True
        except Exception:
            return False
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def standard_databases(pg):
    return {
        "app": {"host": pg.sockdir, "port": pg.port, "dbname": "app"},
        "postgres": {"host": pg.sockdir, "port": pg.port, "dbname": "postgres"},
        "md5db": {"host": "127.0.0.1", "port": pg.port, "dbname": "app",
                  "user": "md5user", "password": MD5_PASSWORD},
        "scramdb": {"host": "127.0.0.1", "port": pg.port, "dbname": "app",
                    "user": "scramuser", "password": SCRAM_PASSWORD},
        "*": {"host": pg.sockdir, "port": pg.port},
    }


# ---------------------------------------------------------------------------
# pgcarrier daemon
# ---------------------------------------------------------------------------

def _fmt_value(v):
    if isinstance(v, dict):
        return " ".join("%s=%s" % (k, _fmt_value(x)) for k, x in v.items())
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


class Pgcarrier:
    def __init__(self, binary=None, settings=None, databases=None, users=None,
                 auth_file=None):
        self.binary = binary or pgcarrier_bin()
        self.dir = tempfile.mkdtemp(prefix="pgc-carrier-")
        os.chmod(self.dir, 0o755)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.sockdir = self.dir
        self.config_path = os.path.join(self.dir, "pgcarrier.ini")
        self.logfile = os.path.join(self.dir, "pgcarrier.log")
        self.auth_file_path = os.path.join(self.dir, "userlist.txt")
        self.settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": self.port,
            "unix_socket_dir": self.sockdir,
            "workers": 2,
        }
        self.settings.update(settings or {})
        self.databases = dict(databases or {})
        self.users = dict(users or {})
        self.auth_file = dict(auth_file) if auth_file else None
        self.proc = None
        # The daemon's environment: os.environ with these changes (None
        # removes a variable), and a function run in the child before exec
        # (test_io_backend.py's seccomp filter).
        self.env_changes = {}
        self.preexec_fn = None
        self.stop_timed_out = False
        self._stopped_by_harness = False  # stop()/kill() was called
        self.expect_exit = False  # set by tests that make it exit on its own
        self._cleaned = False
        self._logfh = None
        _LIVE.append(self)

    # -- config ----------------------------------------------------------
    @property
    def pool_mode(self):
        return str(self.settings.get("pool_mode", "session"))

    def write_config(self):
        if RUN_AS and "user" not in self.settings:
            self.settings["user"] = RUN_AS
        if self.auth_file is not None:
            with open(self.auth_file_path, "w") as f:
                for u, s in self.auth_file.items():
                    f.write('"%s" "%s"\n' % (u.replace('"', '""'),
                                              s.replace('"', '""')))
            self.settings["auth_file"] = self.auth_file_path
        lines = ["; written by the pgcarrier test harness", "[pgcarrier]"]
        for k, v in self.settings.items():
            lines.append("%s = %s" % (k, _fmt_value(v)))
        lines += ["", "[databases]"]
        for k, v in self.databases.items():
            lines.append("%s = %s" % (k, _fmt_value(v)))
        if self.users:
            lines += ["", "[users]"]
            for k, v in self.users.items():
                lines.append("%s = %s" % (k, _fmt_value(v)))
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, self.config_path)
        self.give_files()

    def give_files(self):
        """When the daemon drops root for RUN_AS, that user must be able to
        reread what a reload reads (the config, auth and HBA files, TLS
        keys) and to remove its socket and lock file at exit: give it the
        temp dir with everything in it, and the files the settings name
        elsewhere (test_tls's certificates). Called by write_config."""
        user = self.settings.get("user")
        if not RUN_AS or user != RUN_AS:
            return
        pw = pwd.getpwnam(user)
        paths = [self.dir]
        for root, dirs, files in os.walk(self.dir):
            paths += [os.path.join(root, n) for n in dirs + files]
        for k, v in self.settings.items():
            if k.endswith("_file") and isinstance(v, str) and v:
                p = v if os.path.isabs(v) else os.path.join(self.dir, v)
                if os.path.isfile(p):
                    paths.append(p)
        for p in paths:
            try:
                os.lchown(p, pw.pw_uid, pw.pw_gid)
            except OSError:
                pass

    # -- lifecycle -------------------------------------------------------
    def start(self, timeout=10):
        if not os.access(self.binary, os.X_OK):
            raise HarnessError("pgcarrier binary not found: %s" % self.binary)
        self.write_config()
        self._logfh = open(self.logfile, "ab")
        env = dict(os.environ)
        for k, v in self.env_changes.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        self.proc = subprocess.Popen([self.binary, "-c", self.config_path],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._logfh, stderr=subprocess.STDOUT,
                                     cwd=self.dir, env=env, preexec_fn=self.preexec_fn)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self._stopped_by_harness = True  # already reported here
                raise HarnessError("pgcarrier exited with %s during startup\n"
                                   "--- config ---\n%s--- log ---\n%s"
                                   % (self.proc.returncode, self._config_text(),
                                      self.log()[-6000:]))
            if _port_open(self.host, self.port):
                return self
            if time.monotonic() > deadline:
                self._stopped_by_harness = True
                self.proc.kill()
                self.proc.wait()
                raise HarnessError("pgcarrier did not accept on port %d within "
                                   "%ss\n--- config ---\n%s--- log ---\n%s"
                                   % (self.port, timeout, self._config_text(),
                                      self.log()[-6000:]))
            time.sleep(0.05)

    def _config_text(self):
        try:
            with open(self.config_path) as f:
                return f.read()
        except OSError:
            return ""

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGTERM):
        self._stopped_by_harness = True
        if self.running:
            self.proc.send_signal(sig)

    def wait(self, timeout=10):
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGINT, timeout=10):
        if self.proc is None:
            return None
        self._stopped_by_harness = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.stop_timed_out = True
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def reload(self, settings=None, databases=None, users=None, auth_file=None,
               wait=0.5, **overrides):
        if settings:
            self.settings.update(settings)
        self.settings.update(overrides)
        if databases is not None:
            self.databases = dict(databases)
        if users is not None:
            self.users = dict(users)
        if auth_file is not None:
            self.auth_file = dict(auth_file)
        self.write_config()
        self.proc.send_signal(signal.SIGHUP)
        if wait:
            time.sleep(wait)

    def log(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def sanitizer_report(self):
        return sanitizer_excerpt(self.log())

    def cleanup(self, check=True):
        """Stop the daemon; with check, raise HarnessError describing a
        crash, a failed graceful shutdown or sanitizer findings."""
        if self._cleaned:
            return
        self._cleaned = True
        problems = []
        try:
            if self.proc is not None:
                died_early = self.proc.poll() is not None
                by_harness = self._stopped_by_harness or self.expect_exit
                if died_early and not by_harness:
                    problems.append("pgcarrier exited on its own during the "
                                    "test (exit code %s)" % self.proc.returncode)
                rc = self.stop(signal.SIGINT, timeout=10)
                if not died_early and not by_harness:
                    if self.stop_timed_out:
                        pass  # clients may still hold transactions open
                    elif rc != 0:
                        problems.append("pgcarrier exited with %s after SIGINT"
                                        % rc)
            if self._logfh:
                self._logfh.close()
            if SAN:
                rep = self.sanitizer_report()
                if rep:
                    problems.append("sanitizer report in pgcarrier log:\n" + rep)
            if check and problems:
                raise HarnessError("\n".join(problems) + "\n--- log tail ---\n"
                                   + self.log()[-3000:])
        finally:
            if self in _LIVE:
                _LIVE.remove(self)
            keep = os.environ.get("PGCARRIER_KEEP_LOGS")
            if keep:
                try:
                    os.makedirs(keep, exist_ok=True)
                    shutil.copy(self.logfile, os.path.join(
                        keep, "pgcarrier-%d.log" % self.port))
                except OSError:
                    pass
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- client access ---------------------------------------------------
    def dsn(self, db="app", user="app", **kw):
        kw.setdefault("connect_timeout", 10)
        return _dsn(host=self.host, port=self.port, dbname=db, user=user, **kw)

    def unix_dsn(self, db="app", user="app", **kw):
        kw.setdefault("connect_timeout", 10)
        return _dsn(host=self.sockdir, port=self.port, dbname=db, user=user,
                    **kw)

    def connect(self, db="app", user="app", unix=False, **kw):
        import psycopg
        kw.setdefault("autocommit", True)
        if self.pool_mode != "session":
            kw.setdefault("prepare_threshold", None)
        dsn = self.unix_dsn(db, user) if unix else self.dsn(db, user)
        conn = psycopg.connect(dsn, **kw)
        return conn

    def asyncpg_kwargs(self, db="app", user="app"):
        return dict(host=self.host, port=self.port, database=db, user=user,
                    timeout=30)

    async def aconnect(self, db="app", user="app", **kw):
        import asyncpg
        args = self.asyncpg_kwargs(db, user)
        args.update(kw)
        if self.pool_mode != "session":
            args.setdefault("statement_cache_size", 0)
        return await asyncpg.connect(**args)


# ---------------------------------------------------------------------------
# Raw protocol client
# ---------------------------------------------------------------------------

def msg(mtype, payload=b""):
    if isinstance(mtype, str):
        mtype = mtype.encode()
    return mtype + struct.pack("!I", len(payload) + 4) + payload


def cstr(s):
    if isinstance(s, str):
        s = s.encode()
    return s + b"\0"


def msg_parse(name, sql, oids=()):
    return (cstr(name) + cstr(sql) + struct.pack("!h", len(oids))
            + b"".join(struct.pack("!I", o) for o in oids))


def msg_bind(portal, stmt, params=(), fmts=(), rfmts=()):
    out = cstr(portal) + cstr(stmt)
    out += struct.pack("!h", len(fmts)) + b"".join(struct.pack("!h", f) for f in fmts)
    out += struct.pack("!h", len(params))
    for p in params:
        if p is None:
            out += struct.pack("!i", -1)
        else:
            if isinstance(p, str):
                p = p.encode()
            out += struct.pack("!i", len(p)) + p
    out += struct.pack("!h", len(rfmts)) + b"".join(struct.pack("!h", f) for f in rfmts)
    return out


def msg_describe(kind, name):
    return kind.encode() + cstr(name)


def msg_execute(portal, maxrows=0):
    return cstr(portal) + struct.pack("!i", maxrows)


def msg_close(kind, name):
    return kind.encode() + cstr(name)


def msg_func_call(oid, args, fmts=(), rfmt=0):
    out = struct.pack("!I", oid)
    out += struct.pack("!h", len(fmts)) + b"".join(struct.pack("!h", f) for f in fmts)
    out += struct.pack("!h", len(args))
    for a in args:
        if a is None:
            out += struct.pack("!i", -1)
        else:
            if isinstance(a, str):
                a = a.encode()
            out += struct.pack("!i", len(a)) + a
    out += struct.pack("!h", rfmt)
    return out


def parse_error(payload):
    """ErrorResponse/NoticeResponse payload -> {field letter: value}."""
    out = {}
    for part in payload.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return out


def data_row(payload):
    n = struct.unpack("!h", payload[:2])[0]
    pos = 2
    vals = []
    for _ in range(n):
        ln = struct.unpack("!i", payload[pos:pos + 4])[0]
        pos += 4
        if ln < 0:
            vals.append(None)
        else:
            vals.append(payload[pos:pos + ln])
            pos += ln
    return vals


class RawConn:
    def __init__(self, host, port, timeout=10):
        if host.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(os.path.join(host, ".s.PGSQL.%d" % port))
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.params = {}
        self.backend_key = None

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, mtype, payload=b""):
        self.sock.sendall(msg(mtype, payload))

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed by peer")
            self.buf += chunk

    def recv(self):
        self._fill(5)
        mtype = chr(self.buf[0])
        ln = struct.unpack("!I", self.buf[1:5])[0]
        self._fill(1 + ln)
        payload = self.buf[5:1 + ln]
        self.buf = self.buf[1 + ln:]
        return mtype, payload

    def startup(self, user, database, raise_on_error=True, **params):
        body = struct.pack("!I", 196608)
        params = dict(params, user=user, database=database)
        for k, v in params.items():
            body += cstr(k) + cstr(v)
        body += b"\0"
        self.send_raw(struct.pack("!I", len(body) + 4) + body)
        msgs = []
        while True:
            t, p = self.recv()
            msgs.append((t, p))
            if t == "E":
                if raise_on_error:
                    raise HarnessError("login failed: %r" % parse_error(p))
                return msgs
            if t == "S":
                k, v = p.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
            if t == "K":
                self.backend_key = struct.unpack("!II", p)
            if t == "Z":
                return msgs

    def recv_until_ready(self, n=1):
        msgs = []
        while n > 0:
            t, p = self.recv()
            msgs.append((t, p))
            if t == "Z":
                n -= 1
        return msgs

    def query(self, sql):
        self.send("Q", cstr(sql))
        return self.recv_until_ready(1)

    def close(self):
        try:
            self.send("X")
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
