"""Built-in mode on a hot standby (docs/builtin.md, "Hot standby").

A primary (harness.BuiltinPgServer) and a standby made from it with
pg_basebackup -R, as user postgres, on free ports, with the extension
preloaded (postgresql.conf comes with the base backup; the standby's own
port, socket directory and pgcarrier.port are appended). Through the
standby's pooler port: reads work, writes get PostgreSQL's 25006, and
clients are told in_hot_standby = on; after pg_promote(), writes work
through the same port, on the same client connection and on new ones, and
every client is told in_hot_standby = off (so libpq's
target_session_attrs=read-write accepts the pooler)."""

import os
import shutil
import subprocess
import time

import psycopg
import pytest

import harness

PG_BIN = harness.PG_BINDIR


def allow_replication(srv):
    with open(os.path.join(srv.datadir, "pg_hba.conf"), "a") as f:
        f.write("local replication all trust\n")


class Standby:
    """A hot standby of primary, with the extension preloaded."""

    def __init__(self, primary):
        self.port = harness.free_port()
        self.pooler_port = harness.free_port()
        self.dir = harness.postgres_tmpdir("pgc-standby-")
        self.sockdir = self.dir
        self.datadir = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "postgres.log")
        try:
            self._as_pg([os.path.join(PG_BIN, "pg_basebackup"), "-h", primary.sockdir,
                         "-p", str(primary.port), "-U", "postgres", "-D", self.datadir,
                         "-R", "-X", "stream", "-c", "fast", "--no-sync"])
            with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
                f.write("port = %d\nunix_socket_directories = '%s'\n"
                        "pgcarrier.port = %d\nhot_standby = on\n"
                        % (self.port, self.sockdir, self.pooler_port))
            r = self._as_pg([os.path.join(PG_BIN, "pg_ctl"), "-D", self.datadir, "-l",
                             self.logfile, "-w", "-t", "60", "start"], check=False)
            if r.returncode != 0:
                raise harness.HarnessError("standby did not start: %s%s\n%s"
                                           % (r.stdout, r.stderr, self.log()[-3000:]))
        except Exception:
            self.cleanup()
            raise

    def _as_pg(self, args, check=True):
        return subprocess.run(["runuser", "-u", "postgres", "--"] + args, check=check,
                              timeout=120, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=self.dir)

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def direct(self, db="postgres", user="postgres"):
        return psycopg.connect(host=self.sockdir, port=self.port, dbname=db, user=user,
                               application_name="pgc-direct-standby", autocommit=True,
                               connect_timeout=10)

    def pooler_dsn(self, **kw):
        return harness._dsn(host="127.0.0.1", port=self.pooler_port, dbname="app",
                            user="app", connect_timeout=10, application_name="pgc-pooled", **kw)

    def pooler_connect(self, **kw):
        return psycopg.connect(self.pooler_dsn(**kw), autocommit=True)

    def wait_pooler(self, timeout=20):
        deadline = time.monotonic() + timeout
        while not harness._port_open("127.0.0.1", self.pooler_port, timeout=0.2):
            if time.monotonic() > deadline:
                raise AssertionError("the standby's pooler does not listen\n" + self.log()[-3000:])
            time.sleep(0.05)

    def cleanup(self):
        if os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
            r = self._as_pg([os.path.join(PG_BIN, "pg_ctl"), "-D", self.datadir, "-m", "fast",
                             "-w", "-t", "30", "stop"], check=False)
            if r.returncode != 0:
                self._as_pg([os.path.join(PG_BIN, "pg_ctl"), "-D", self.datadir, "-m",
                             "immediate", "stop"], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def primary_and_standby():
    primary = harness.BuiltinPgServer("primary", before_start=allow_replication)
    standby = None
    try:
        primary.sql("INSERT INTO kv VALUES ('before-standby', 'p') ON CONFLICT (k) DO NOTHING",
                    db="app")
        standby = Standby(primary)
        standby.wait_pooler()
        yield primary, standby
    finally:
        if standby is not None:
            standby.cleanup()
        primary.cleanup()
    # nothing of either is left: no daemon for their data directories
    for _, args in harness.process_cmdlines():
        cmd = b"\0".join(args)
        assert (standby is None or standby.datadir.encode() not in cmd) and \
            primary.datadir.encode() not in cmd, cmd


def write(conn, key):
    conn.execute("INSERT INTO kv VALUES (%s, 'w') ON CONFLICT (k) DO UPDATE SET v = 'w'", (key,))


@pytest.mark.timeout(120)
def test_standby_pooler_serves_reads_refuses_writes_and_writes_after_promotion(primary_and_standby):
    primary, standby = primary_and_standby
    with standby.direct() as d:
        assert d.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True

    before = standby.pooler_connect()       # stays connected across the promotion
    assert before.info.parameter_status("in_hot_standby") == "on"
    assert before.execute("SELECT count(*) FROM items").fetchone()[0] == 100
    assert before.execute("SELECT v FROM kv WHERE k = 'before-standby'").fetchone()[0] == "p"
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as e:
        write(before, "on-standby")
    assert e.value.sqlstate == "25006"
    # the client and its connection are fine after the error
    assert before.execute("SELECT 1").fetchone()[0] == 1
    # libpq sees a standby behind the pooler
    with psycopg.connect(standby.pooler_dsn(target_session_attrs="standby"), autocommit=True) as c:
        assert c.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(standby.pooler_dsn(target_session_attrs="read-write")).close()

    with standby.direct() as d:
        assert d.execute("SELECT pg_promote(true, 60)").fetchone()[0] is True
        assert d.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False

    # the client connected before the promotion: writes now work, and it is told
    write(before, "after-promotion-old-client")
    assert before.info.parameter_status("in_hot_standby") == "off"
    before.close()
    # new clients: told the server is no standby any more, and writes work
    with standby.pooler_connect() as c:
        assert c.info.parameter_status("in_hot_standby") == "off"
        write(c, "after-promotion-new-client")
    with psycopg.connect(standby.pooler_dsn(target_session_attrs="read-write"), autocommit=True) as c:
        write(c, "after-promotion-read-write")
        assert c.execute("SELECT count(*) FROM kv WHERE k LIKE 'after-promotion-%'").fetchone()[0] == 3
    # several clients at once on the (few) pooled backends, each told
    conns = [standby.pooler_connect() for _ in range(8)]
    try:
        for i, c in enumerate(conns):
            write(c, "after-promotion-%d" % i)
            assert c.info.parameter_status("in_hot_standby") == "off", i
    finally:
        for c in conns:
            c.close()
