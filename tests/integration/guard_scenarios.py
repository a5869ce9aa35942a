"""Session scenarios for the differential test of the session-state guard
(test_guard.py).

Each Scenario is a per-client script: a driver, startup parameters, and a
list of steps.  test_guard.py runs every scenario with many concurrent
clients twice, directly against PostgreSQL and through pgcarrier (transaction
mode, a tiny pool), and compares what each client saw, step by step.

Placeholders: ``{c}`` in any string of a scenario (SQL, parameters, names,
startup values, setup/cleanup SQL) is replaced by the client number, unique
in the whole run (a string that is exactly "{c}" becomes the int), so that concurrent clients never share a table, schema,
channel, lock key, cursor or statement text unless the scenario means it.

Drivers
-------
psycopg           psycopg 3, autocommit, ClientCursor: simple query protocol
                  (multi-statement strings allowed).  Explicit transactions
                  are SQL BEGIN/COMMIT/ROLLBACK steps.
psycopg_ext       psycopg 3, autocommit, server-side binding, never prepared:
                  extended protocol with the unnamed statement.
psycopg_prepared  psycopg 3, autocommit, prepare_threshold=0: every query is
                  a protocol-level named prepared statement (_pg3_N, the same
                  names in every client, each with its own queries);
                  opts={'prepared_max': n} makes psycopg deallocate (SQL
                  DEALLOCATE _pg3_N) and prepare again; opts=
                  {'prepare_threshold': n} and Q(..., prepare=True/False).
                  psycopg itself sends DEALLOCATE ALL after a ROLLBACK or a
                  DROP when it has prepared statements.
asyncpg           asyncpg with its default statement cache: every fetch is a
                  named prepared statement (__asyncpg_stmt_N__).
raw               harness.RawConn: byte-level protocol, pipelines with
                  several Syncs, Describe of old statements, errors in the
                  middle of a pipeline.

Steps (what is recorded for each is the step's result; see test_guard.py)
-----
Q(sql, *params)          run a statement; psycopg: (status, columns, rows)
                         per result set; asyncpg: rows (conn.fetch);
                         raw: simple Query, normalized messages.
X(sql, *params)          asyncpg: conn.execute (status; simple protocol when
                         no params); other drivers: same as Q.
PID(group=None)          SELECT pg_backend_pid() and the server clock, as a
                         statement of its own; NOT compared, collected out of
                         band.  Ungrouped PIDs feed the swap proof; the PIDs
                         of one group in one client must be one backend in
                         the pooled run, used by no other client between the
                         first and the last of them (pinning).
OTHER(sql)               run on a separate direct connection to PostgreSQL
                         (e.g. is the advisory lock held?); recorded.
NOTIFY(channel, payload) pg_notify from a separate direct connection.
NOTIFIES(n, settle=0)    wait (<= 3 s) until n notifications in all arrived
                         (n=0: wait 0.25 s), then settle seconds more (to
                         catch unwanted ones); record them all, sorted.
COPY_IN(sql, rows)       psycopg COPY ... FROM STDIN.
COPY_OUT(sql)            psycopg COPY ... TO STDOUT (raw bytes recorded).
PIPE([(sql, params)...]) psycopg pipeline mode (one batch, one Sync).
EXECMANY(sql, rows)      psycopg executemany / asyncpg executemany.
APREP(key, sql)          asyncpg conn.prepare(); kept under key.
ASTMT(key, *args)        asyncpg prepared_statement.fetch(*args).
ALISTEN(ch) / AUNLISTEN(ch)  asyncpg add_listener / remove_listener.
R(*msgs)                 raw: send the messages in one write, read up to as
                         many ReadyForQuery as there are Syncs.  Messages:
                         ('P', name, sql[, oids]), ('B', stmt, params[,
                         portal]), ('E', portal[, maxrows]), ('D', kind,
                         name), ('C', kind, name), ('S',), ('Q', sql).
SLEEP(seconds)           a longer pause (a yield point when idle).

Whenever the client is idle (not in a transaction) after a step, the
runner sleeps a little (jitter): that is where a pooled client can land on
another server connection.  Steps inside an explicit transaction are never
separated by a yield.

Option ``msg=False`` on Q/X/R: compare errors by SQLSTATE only (for errors
whose text names a protocol statement, which a pooler may word itself).
"""


class Step:
    def __init__(self, kind, *args, **kw):
        self.kind = kind
        self.args = args
        self.kw = kw

    def desc(self):
        parts = []
        for a in self.args:
            s = repr(a)
            if len(s) > 160:
                s = s[:157] + "..."
            parts.append(s)
        for k, v in self.kw.items():
            if v is not None and not (k == "msg" and v is True):
                parts.append("%s=%r" % (k, v))
        return "%s(%s)" % (self.kind, ", ".join(parts))

    def __repr__(self):
        return self.desc()


def Q(sql, *params, prepare=None, msg=True):
    return Step("Q", sql, *params, prepare=prepare, msg=msg)


def X(sql, *params, msg=True):
    return Step("X", sql, *params, msg=msg)


def PID(group=None):
    return Step("PID", group=group)


def OTHER(sql):
    return Step("OTHER", sql)


def NOTIFY(channel, payload=""):
    return Step("NOTIFY", channel, payload)


def NOTIFIES(n, settle=0.0):
    return Step("NOTIFIES", n, settle)


def COPY_IN(sql, rows):
    return Step("COPY_IN", sql, rows)


def COPY_OUT(sql):
    return Step("COPY_OUT", sql)


def PIPE(items):
    return Step("PIPE", items)


def EXECMANY(sql, rows):
    return Step("EXECMANY", sql, rows)


def APREP(key, sql):
    return Step("APREP", key, sql)


def ASTMT(key, *args):
    return Step("ASTMT", key, *args)


def ALISTEN(channel):
    return Step("ALISTEN", channel)


def AUNLISTEN(channel):
    return Step("AUNLISTEN", channel)


def R(*msgs, msg=True):
    return Step("R", *msgs, msg=msg)


def SLEEP(seconds):
    return Step("SLEEP", seconds)


SYNC = ("S",)


def subst(obj, c):
    """Replace {c} by the client number in every string of obj."""
    if isinstance(obj, str):
        if obj == "{c}":
            return c            # a parameter that is just the client number
        return obj.replace("{c}", str(c))
    if isinstance(obj, bytes):
        return obj.replace(b"{c}", str(c).encode())
    if isinstance(obj, tuple):
        return tuple(subst(x, c) for x in obj)
    if isinstance(obj, list):
        return [subst(x, c) for x in obj]
    if isinstance(obj, dict):
        return {subst(k, c): subst(v, c) for k, v in obj.items()}
    return obj


class Scenario:
    """name, driver, steps; startup: startup parameters (application_name
    defaults to 'guard_{c}'); setup/cleanup: SQL run as user app on a direct
    connection before/after each run (per client, {c} replaced); pins: the
    scenario holds pinned state at some point; tags: coverage categories;
    opts: driver options."""

    def __init__(self, name, driver, steps, startup=None, setup=None,
                 cleanup=None, pins=False, tags=(), opts=None):
        assert driver in DRIVERS, driver
        self.name = name
        self.driver = driver
        self.steps = list(steps)
        self.startup = {"application_name": "guard_{c}"}
        self.startup.update(startup or {})
        self.setup = setup
        self.cleanup = cleanup
        self.pins = pins
        self.tags = set(tags)
        self.opts = dict(opts or {})

    def __repr__(self):
        return "Scenario(%s)" % self.name


DRIVERS = ("psycopg", "psycopg_ext", "psycopg_prepared", "asyncpg", "raw")

# ParameterStatus values PostgreSQL 15 reports (GUC_REPORT); the runner
# records the ones that changed after each step.
REPORTED = ("application_name", "client_encoding", "DateStyle",
            "default_transaction_read_only", "in_hot_standby",
            "integer_datetimes", "IntervalStyle", "is_superuser",
            "server_encoding", "server_version", "session_authorization",
            "standard_conforming_strings", "TimeZone")

# A schema per client, with a table t(v) holding the client number, for
# search_path scenarios.
SCHEMA_SETUP = ("DROP SCHEMA IF EXISTS gs_{c} CASCADE; CREATE SCHEMA gs_{c}; "
                "CREATE TABLE gs_{c}.t(v int); INSERT INTO gs_{c}.t VALUES ({c})")
SCHEMA_CLEANUP = "DROP SCHEMA IF EXISTS gs_{c} CASCADE"
SCRATCH_CLEANUP = ("DELETE FROM scratch WHERE client = {c}; "
                   "DELETE FROM kv WHERE k LIKE 'g{c}-%'")
KEY = "880000 + {c}"      # a session advisory lock key per client
KEY2 = "990000 + {c}"

WM = "SHOW work_mem"


def held(key=KEY):
    """OTHER step: is the advisory lock free for another session?"""
    return OTHER("SELECT pg_try_advisory_xact_lock(%s) AS free" % key)


S = []


def scenario(*a, **kw):
    S.append(Scenario(*a, **kw))


# ---------------------------------------------------------------------------
# protocol-level named prepared statements
# ---------------------------------------------------------------------------

scenario("prep_psycopg_reuse", "psycopg_prepared", [
    Q("SELECT id, name, qty FROM items WHERE id = %s", 1), PID(),
    Q("SELECT id, name, qty FROM items WHERE id = %s", 2), PID(),
    Q("SELECT id, name, qty FROM items WHERE id = %s", 3), PID(),
    Q("SELECT id, name, qty FROM items WHERE id = %s", "{c}"),
    Q("SELECT count(*) FROM items WHERE qty > %s", 500),
    Q("SELECT count(*) FROM items WHERE qty > %s", 900),
], tags=["prepared", "psycopg_prepared"])

scenario("prep_psycopg_rotate_deallocate", "psycopg_prepared", [
    Q("SELECT %s::int + 1", 1), Q("SELECT %s::int + 2", 1), PID(),
    Q("SELECT %s::int + 3", 1), Q("SELECT %s::int + 4", 1), PID(),
    Q("SELECT %s::int + 1", 5), Q("SELECT %s::int + 5", 1),
    Q("SELECT %s::int + 2", 5), Q("SELECT %s::int + 6", 1), PID(),
    Q("SELECT %s::int + 3", 9),
    Q("SELECT %s::int + 1", 9),
], opts={"prepared_max": 2}, tags=["prepared", "deallocate"])

scenario("prep_psycopg_rollback_reprepare", "psycopg_prepared", [
    Q("SELECT name FROM items WHERE id = %s", 7), PID(),
    Q("BEGIN"), Q("SELECT name FROM items WHERE id = %s", 8),
    Q("SELECT qty FROM items WHERE id = %s", 8),
    Q("ROLLBACK"),   # psycopg now sends DEALLOCATE ALL
    Q("SELECT name FROM items WHERE id = %s", 9), PID(),
    Q("SELECT qty FROM items WHERE id = %s", 9),
    Q("SELECT name FROM items WHERE id = %s", 10),
], tags=["prepared", "deallocate", "transactions"])

scenario("prep_psycopg_in_failed_txn", "psycopg_prepared", [
    Q("SELECT %s::int * 2", 21), PID(),
    Q("BEGIN"), Q("SELECT 1 / %s", 0),
    Q("SELECT %s::int * 3", 1),          # 25P02: Parse in a failed transaction
    Q("ROLLBACK"),
    Q("SELECT %s::int * 3", 2), PID(),
    Q("SELECT %s::int * 2", 22),
], tags=["prepared", "errors"])

scenario("prep_psycopg_explicit_prepare", "psycopg_prepared", [
    Q("SELECT name FROM items WHERE id = %s", 20, prepare=True), PID(),
    Q("SELECT qty FROM items WHERE id = %s", 20), PID(),
    Q("SELECT name FROM items WHERE id = %s", 21), PID(),
    Q("SELECT qty FROM items WHERE id = %s", 21),
    Q("SELECT qty FROM items WHERE id = %s", 22),      # 3rd use: prepared now
    Q("SELECT qty FROM items WHERE id = %s", 23), PID(),
    Q("SELECT qty FROM items WHERE id = %s", 24),
    Q("SELECT name FROM items WHERE id = %s", 25, prepare=False),
    Q("SELECT name FROM items WHERE id = %s", 26), PID(),
    Q("SELECT qty FROM items WHERE id = %s", 27),
], opts={"prepare_threshold": 2}, tags=["prepared", "psycopg_prepared"])

scenario("prep_psycopg_search_path", "psycopg_prepared", [
    Q("SET search_path = gs_{c}, public"), PID(),
    Q("SELECT v FROM t WHERE v >= %s", 0), PID(),
    Q("SELECT v + %s FROM t", 1), PID(),
    Q("SELECT v FROM t WHERE v >= %s", 0),
    Q("RESET search_path"),
    Q("SELECT count(*) FROM items WHERE id < %s", 5),
], setup=SCHEMA_SETUP, cleanup=SCHEMA_CLEANUP,
    tags=["prepared", "search_path", "set"])

scenario("prep_psycopg_executemany", "psycopg_prepared", [
    EXECMANY("INSERT INTO scratch(client, seq, val) VALUES (%s, %s, %s)",
             [("{c}", i, "v%d" % i) for i in range(12)]), PID(),
    Q("SELECT count(*), min(seq), max(seq) FROM scratch WHERE client = %s", "{c}"),
    EXECMANY("UPDATE scratch SET val = %s WHERE client = %s AND seq = %s",
             [("w%d" % i, "{c}", i) for i in range(0, 12, 3)]), PID(),
    Q("SELECT seq, val FROM scratch WHERE client = %s ORDER BY seq", "{c}"),
    Q("DELETE FROM scratch WHERE client = %s", "{c}"),
], cleanup=SCRATCH_CLEANUP, tags=["prepared", "pipeline"])

scenario("prep_asyncpg_cache", "asyncpg", [
    Q("SELECT id, name FROM items WHERE id = $1", 11), PID(),
    Q("SELECT id, name FROM items WHERE id = $1", 12), PID(),
    Q("SELECT $1::text || '-' || $2::int", "x", "{c}"), PID(),
    Q("SELECT id, name FROM items WHERE id = $1", 13),
    Q("SELECT $1::text || '-' || $2::int", "y", 2),
    Q("SELECT count(*) FROM items"),
], tags=["prepared", "asyncpg"])

scenario("prep_asyncpg_explicit", "asyncpg", [
    APREP("s1", "SELECT id, qty FROM items WHERE id = $1"),
    APREP("s2", "SELECT sum(qty) FROM items WHERE id <= $1"), PID(),
    ASTMT("s1", 4), PID(), ASTMT("s2", 10), PID(),
    ASTMT("s1", 5), ASTMT("s2", 20), PID(),
    ASTMT("s1", 6),
], tags=["prepared", "asyncpg"])

scenario("prep_asyncpg_in_txn", "asyncpg", [
    X("BEGIN"),
    APREP("s", "SELECT $1::int + 100"), ASTMT("s", 1),
    X("COMMIT"), PID(),
    ASTMT("s", 2), PID(),
    X("BEGIN"), APREP("r", "SELECT $1::int - 100"), X("ROLLBACK"),
    ASTMT("r", 3), PID(),
    ASTMT("s", 3),
], tags=["prepared", "asyncpg", "transactions"])

scenario("prep_asyncpg_executemany", "asyncpg", [
    EXECMANY("INSERT INTO scratch(client, seq, val) VALUES ($1, $2, $3)",
             [("{c}", i, "a%d" % i) for i in range(20)]), PID(),
    Q("SELECT count(*), sum(seq) FROM scratch WHERE client = $1", "{c}"), PID(),
    EXECMANY("INSERT INTO kv(k, v) VALUES ($1, $2)",
             [("g{c}-a", "1"), ("g{c}-b", "2"), ("g{c}-a", "dup")]), PID(),
    Q("SELECT k, v FROM kv WHERE k LIKE $1 ORDER BY k", "g{c}-%"),
    X("DELETE FROM scratch WHERE client = {c}"),
], cleanup=SCRATCH_CLEANUP, tags=["pipeline", "asyncpg", "errors"])

scenario("prep_raw_close_reprepare", "raw", [
    R(("P", "st_a", "SELECT 1 AS one"), SYNC), PID(),
    R(("B", "st_a", ()), ("E", ""), SYNC), PID(),
    R(("C", "S", "st_a"), SYNC),
    R(("P", "st_a", "SELECT 2 AS two"), SYNC), PID(),
    R(("B", "st_a", ()), ("E", ""), SYNC),
    R(("C", "S", "st_a"), ("C", "S", "never_prepared"), SYNC),
    R(("B", "st_a", ()), ("E", ""), SYNC, msg=False),
], tags=["prepared", "raw", "deallocate"])

scenario("prep_raw_same_name_other_queries", "raw", [
    R(("P", "shared", "SELECT $1::int + {c} AS v", (23,)), SYNC), PID(),
    R(("B", "shared", ("1",)), ("E", ""), SYNC), PID(),
    R(("B", "shared", ("2",)), ("E", ""), SYNC), PID(),
    R(("P", "shared2", "SELECT '{c}'::text AS mine"), SYNC),
    R(("B", "shared2", ()), ("E", ""), ("B", "shared", ("3",)), ("E", ""), SYNC),
    PID(),
    R(("B", "shared", ("4",)), ("E", ""), SYNC),
], tags=["prepared", "raw"])

scenario("prep_raw_describe_later", "raw", [
    R(("P", "ds", "SELECT id, name FROM items WHERE id = $1", (23,)), SYNC),
    PID(),
    R(("D", "S", "ds"), SYNC), PID(),
    R(("D", "S", "ds"), ("B", "ds", ("5",)), ("D", "P", ""), ("E", ""), SYNC),
    PID(),
    R(("D", "S", "ds"), SYNC),
], tags=["prepared", "raw", "describe"])

scenario("prep_raw_sql_deallocate", "raw", [
    R(("P", "dq_{c}", "SELECT 'dq' || $1::text", (25,)), SYNC), PID(),
    R(("B", "dq_{c}", ("x",)), ("E", ""), SYNC),
    Q("DEALLOCATE dq_{c}"), PID(),
    R(("B", "dq_{c}", ("y",)), ("E", ""), SYNC, msg=False),
    R(("P", "dq_{c}", "SELECT 'again' || $1::text", (25,)), SYNC), PID(),
    R(("B", "dq_{c}", ("z",)), ("E", ""), SYNC),
    Q("DEALLOCATE ALL"),
    R(("B", "dq_{c}", ("w",)), ("E", ""), SYNC, msg=False),
], tags=["prepared", "raw", "deallocate"])

scenario("prep_raw_error_mid_pipeline", "raw", [
    R(("P", "ok1", "SELECT 10 + $1::int AS v"),
      ("B", "ok1", ("1",)), ("E", ""),
      ("P", "bad1", "SELEKT oops"),
      ("B", "bad1", ()), ("E", ""), SYNC, msg=False),
    PID(),
    R(("B", "ok1", ("2",)), ("E", ""), SYNC),
    R(("B", "bad1", ()), ("E", ""), SYNC, msg=False), PID(),
    R(("B", "ok1", ("3",)), ("E", ""), SYNC),
], tags=["prepared", "raw", "pipeline", "errors"])

scenario("prep_raw_in_failed_txn", "raw", [
    Q("BEGIN"), Q("SELECT 1/0"),
    R(("P", "ft", "SELECT 'ft'::text || $1::text"), SYNC),     # 25P02
    Q("ROLLBACK"), PID(),
    R(("B", "ft", ("x",)), ("E", ""), SYNC, msg=False),        # 26000
    Q("BEGIN"),
    R(("P", "ft", "SELECT 'ft'::text || $1::text"), ("B", "ft", ("y",)),
      ("E", ""), SYNC),
    Q("SELECT 1/0"), Q("ROLLBACK"), PID(),   # the statement stays prepared
    R(("B", "ft", ("z",)), ("E", ""), SYNC), PID(),
    R(("C", "S", "ft"), ("P", "ft", "SELECT 'again'::text"),
      ("B", "ft", ()), ("E", ""), SYNC),
], tags=["prepared", "raw", "errors", "transactions"])

scenario("raw_pipeline_multi_sync", "raw", [
    R(("P", "", "SELECT $1::int * 2 AS d"), ("B", "", ("21",)), ("E", ""), SYNC,
      ("P", "", "SELECT 1 / $1::int"), ("B", "", ("0",)), ("E", ""), SYNC,
      ("P", "", "SELECT $1::text AS t"), ("B", "", ("after",)), ("E", ""), SYNC),
    PID(),
    R(("P", "pm", "SELECT $1::int + 1"), SYNC,
      ("B", "pm", ("1",)), ("E", ""), SYNC,
      ("B", "pm", ("2",)), ("E", ""), SYNC), PID(),
    R(("B", "pm", ("40",)), ("E", ""), SYNC),
], tags=["pipeline", "raw", "errors", "unnamed"])

scenario("raw_unnamed_in_pipeline", "raw", [
    R(("P", "", "SELECT 'first'::text"), ("B", "", ()), ("E", ""),
      ("P", "", "SELECT 'second'::text, $1::int"), ("B", "", ("2",)),
      ("D", "P", ""), ("E", ""), SYNC),
    PID(),
    R(("P", "", "SELECT $1::int AS n"), ("D", "S", ""), ("B", "", ("7",)),
      ("E", ""), ("B", "", ("8",)), ("E", ""), SYNC),
    PID(),
    R(("Q", "SELECT 'simple'")),
], tags=["pipeline", "raw", "unnamed"])

scenario("raw_portal_partial_fetch", "raw", [
    R(("Q", "BEGIN")),
    R(("P", "pp", "SELECT id FROM items WHERE id <= 7 ORDER BY id"),
      ("B", "pp", (), "portal1"), ("E", "portal1", 3), SYNC),
    R(("E", "portal1", 3), SYNC),
    R(("E", "portal1", 0), SYNC),
    R(("Q", "COMMIT")), PID(),
    R(("B", "pp", (), "portal1"), ("E", "portal1", 2), SYNC), PID(),
    R(("E", "portal1", 2), SYNC, msg=False),
], tags=["prepared", "raw", "transactions"])

# ---------------------------------------------------------------------------
# session settings
# ---------------------------------------------------------------------------

scenario("set_reset_work_mem", "psycopg", [
    Q("SET work_mem = '3MB'"), PID(), Q(WM), PID(), Q(WM),
    Q("RESET work_mem"), PID(), Q(WM),
    Q("SET SESSION work_mem TO '5MB'"), PID(), Q(WM),
], tags=["set"])

scenario("set_to_default", "psycopg", [
    Q("SET statement_timeout = '45s'"), PID(), Q("SHOW statement_timeout"),
    Q("SET statement_timeout TO DEFAULT"), PID(), Q("SHOW statement_timeout"),
    Q("SET lock_timeout = '7s'"), PID(),
    Q("SET lock_timeout = DEFAULT"), Q("SHOW lock_timeout"),
], tags=["set", "set_default"])

scenario("reset_all", "psycopg", [
    Q("SET work_mem = '6MB'"), Q("SET search_path = gs_{c}"),
    Q("SET TimeZone = 'Europe/Paris'"), Q("SET extra_float_digits = 3"), PID(),
    Q("SELECT current_setting('work_mem'), current_setting('search_path'), "
      "current_setting('TimeZone'), current_setting('extra_float_digits')"),
    Q("RESET ALL"), PID(),
    Q("SELECT current_setting('work_mem'), current_setting('search_path'), "
      "current_setting('TimeZone'), current_setting('extra_float_digits')"),
], setup=SCHEMA_SETUP, cleanup=SCHEMA_CLEANUP, tags=["set", "reset_all"])

scenario("set_config_session_and_local", "psycopg", [
    Q("SELECT set_config('work_mem', '5MB', false)"), PID(), Q(WM),
    Q("SELECT set_config('work_mem', '6MB', true)"), PID(), Q(WM),
    Q("BEGIN"), Q("SELECT set_config('work_mem', '7MB', true)"), Q(WM),
    Q("COMMIT"), PID(), Q(WM),
    Q("BEGIN"), Q("SELECT set_config('work_mem', '8MB', false)"), Q("COMMIT"),
    PID(), Q(WM),
    Q("SELECT set_config('work_mem', '9MB', false) FROM items WHERE id = 1"),
    PID(), Q(WM),
], tags=["set", "set_config"])

scenario("set_in_txn_commit_rollback", "psycopg", [
    Q("BEGIN"), Q("SET work_mem = '7MB'"), Q(WM), Q("COMMIT"), PID(), Q(WM),
    Q("BEGIN"), Q("SET work_mem = '11MB'"), Q(WM), Q("ROLLBACK"), PID(), Q(WM),
    Q("BEGIN"), Q("RESET work_mem"), Q("ROLLBACK"), PID(), Q(WM),
    Q("BEGIN"), Q("RESET work_mem"), Q("COMMIT"), PID(), Q(WM),
], tags=["set", "transactions"])

scenario("set_savepoints", "psycopg", [
    Q("BEGIN"), Q("SET work_mem = '2MB'"), Q("SAVEPOINT a"),
    Q("SET work_mem = '3MB'"), Q("ROLLBACK TO SAVEPOINT a"), Q(WM),
    Q("SAVEPOINT b"), Q("SET search_path = gs_{c}"), Q("RELEASE SAVEPOINT b"),
    Q("COMMIT"), PID(), Q(WM), Q("SHOW search_path"), PID(), Q(WM),
    Q("BEGIN"), Q("SAVEPOINT c"), Q("SET work_mem = '9MB'"),
    Q("SELECT 1/0"), Q("ROLLBACK TO c"), Q(WM), Q("COMMIT"), PID(), Q(WM),
], setup=SCHEMA_SETUP, cleanup=SCHEMA_CLEANUP,
    tags=["set", "transactions", "savepoint", "errors"])

scenario("set_local", "psycopg", [
    Q("SET work_mem = '2MB'"),
    Q("BEGIN"), Q("SET LOCAL work_mem = '12MB'"), Q(WM), Q("COMMIT"), PID(),
    Q(WM),
    Q("SET LOCAL work_mem = '13MB'"), PID(), Q(WM),   # warning, no effect
    Q("BEGIN"), Q("SET LOCAL TimeZone = 'Asia/Tokyo'"), Q("SHOW TimeZone"),
    Q("COMMIT"), PID(), Q("SHOW TimeZone"),
], tags=["set", "set_local", "paramstatus"])

scenario("set_error_in_txn", "psycopg", [
    Q("SET work_mem = '2MB'"), PID(),
    Q("BEGIN"), Q("SET work_mem = '3MB'"),
    Q("INSERT INTO kv VALUES ('g{c}-1', 'x')"),
    Q("SELECT 1/0"), Q(WM), Q("ROLLBACK"), PID(), Q(WM),
    Q("SELECT count(*) FROM kv WHERE k = 'g{c}-1'"),
    Q("SET work_mem = 'lots'"), PID(), Q(WM),
    Q("SET no_such_setting = 1"), Q(WM),
], cleanup=SCRATCH_CLEANUP, tags=["set", "errors", "transactions"])

scenario("search_path_schema", "psycopg", [
    Q("SELECT v FROM t"),
    Q("SET search_path = gs_{c}, public"), PID(), Q("SELECT v FROM t"), PID(),
    Q("SELECT v FROM t"), Q("SELECT count(*) FROM items"),
    Q("SELECT current_schema()"),
    Q("RESET search_path"), PID(), Q("SELECT v FROM t"),
    Q("SET SCHEMA 'gs_{c}'"), PID(), Q("SELECT v FROM t"), Q("SHOW search_path"),
], setup=SCHEMA_SETUP, cleanup=SCHEMA_CLEANUP, tags=["set", "search_path"])

scenario("timezone_datestyle_paramstatus", "psycopg", [
    Q("SET TimeZone = 'Asia/Tokyo'"), PID(),
    Q("SELECT '2020-01-01 00:00:00+00'::timestamptz::text"), PID(),
    Q("SET DateStyle = 'SQL, DMY'"), Q("SET IntervalStyle = 'postgres_verbose'"),
    PID(),
    Q("SELECT '2020-03-04'::date::text, '1 day 2 hours'::interval::text"),
    Q("SET TIME ZONE 'America/New_York'"), PID(), Q("SHOW TimeZone"),
    Q("RESET TimeZone"), Q("RESET DateStyle"), PID(),
    Q("SELECT '2020-01-01 00:00:00+00'::timestamptz::text, "
      "'2020-03-04'::date::text, '1 day'::interval::text"),
], tags=["set", "paramstatus", "timezone"])

scenario("application_name_set", "psycopg", [
    Q("SHOW application_name"),
    Q("SET application_name = 'renamed_{c}'"), PID(), Q("SHOW application_name"),
    Q("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"),
    PID(),
    Q("RESET application_name"), PID(), Q("SHOW application_name"),
    Q("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"),
], tags=["set", "paramstatus", "application_name"])

scenario("startup_options", "psycopg", [
    Q("SHOW work_mem"), Q("SELECT v FROM t"), Q("SHOW application_name"), PID(),
    Q("SET work_mem = '1MB'"), PID(), Q(WM),
    Q("RESET work_mem"), PID(), Q(WM),
    Q("SET search_path = public"), Q("RESET ALL"), PID(),
    Q("SELECT current_setting('work_mem'), current_setting('search_path'), "
      "current_setting('application_name')"),
    Q("SELECT v FROM t"),
], startup={"options": "-c work_mem=12MB -c search_path=gs_{c},public",
            "application_name": "opt_{c}"},
    setup=SCHEMA_SETUP, cleanup=SCHEMA_CLEANUP,
    tags=["startup", "set", "search_path"])

scenario("startup_timezone_datestyle", "psycopg", [
    Q("SHOW TimeZone"), Q("SHOW DateStyle"), PID(),
    Q("SELECT '2021-06-01 12:00:00+00'::timestamptz::text"),
    Q("SET TimeZone = 'UTC'"), PID(), Q("SHOW TimeZone"),
    Q("RESET TimeZone"), PID(), Q("SHOW TimeZone"),
    Q("SELECT '2021-06-01'::date::text"),
], startup={"options": "-c TimeZone=America/Sao_Paulo -c DateStyle=German"},
    tags=["startup", "paramstatus", "timezone"])

scenario("startup_client_encoding", "psycopg", [
    Q("SHOW client_encoding"), Q("SELECT 'caf\u00e9'::text, length('caf\u00e9')"),
    PID(),
    Q("SET client_encoding = 'UTF8'"), PID(), Q("SELECT 'na\u00efve'::text"),
    Q("RESET client_encoding"), PID(), Q("SHOW client_encoding"),
    Q("SELECT '\u00e0 la'::text"),
], startup={"client_encoding": "LATIN1"},
    tags=["startup", "paramstatus", "encoding"])

scenario("asyncpg_server_settings", "asyncpg", [
    Q("SELECT current_setting('application_name'), "
      "current_setting('search_path'), current_setting('TimeZone')"), PID(),
    Q("SELECT v FROM t"), PID(),
    X("SET TimeZone = 'Asia/Kolkata'"), PID(), Q("SHOW TimeZone"),
    X("RESET ALL"), PID(),
    Q("SELECT current_setting('application_name'), "
      "current_setting('search_path'), current_setting('TimeZone')"),
], startup={"application_name": "as_{c}", "search_path": "gs_{c}, public",
            "TimeZone": "Pacific/Auckland"},
    setup=SCHEMA_SETUP, cleanup=SCHEMA_CLEANUP,
    tags=["startup", "asyncpg", "paramstatus", "search_path"])

scenario("asyncpg_set_and_prepared", "asyncpg", [
    X("SET work_mem = '14MB'"), PID(),
    Q("SELECT current_setting('work_mem'), $1::int", 1), PID(),
    X("SET search_path = gs_{c}"), PID(),
    Q("SELECT v, $1::int FROM t", 2), PID(),
    Q("SELECT current_setting('work_mem'), $1::int", 3),
    X("RESET work_mem"), X("RESET search_path"), PID(),
    Q("SELECT current_setting('work_mem'), current_setting('search_path')"),
], setup=SCHEMA_SETUP, cleanup=SCHEMA_CLEANUP,
    tags=["set", "asyncpg", "prepared"])

scenario("multi_statement_set", "psycopg", [
    Q("SET work_mem = '4MB'; SELECT 1 AS one; SHOW work_mem"), PID(), Q(WM),
    Q("SET work_mem = '5MB'; SELECT 1/0; SET work_mem = '6MB'"), PID(), Q(WM),
    Q("BEGIN; SET work_mem = '7MB'; COMMIT; SELECT 2"), PID(), Q(WM),
    Q("RESET work_mem; SHOW work_mem"), PID(), Q(WM),
], tags=["set", "multi_statement", "errors"])

scenario("custom_guc", "psycopg", [
    Q("SET guardapp.tenant_{c} = 'tenant-{c}'"), PID(),
    Q("SELECT current_setting('guardapp.tenant_{c}')"), PID(),
    Q("SELECT current_setting('guardapp.tenant_{c}')"),
    Q("RESET guardapp.tenant_{c}"), PID(),
    Q("SELECT coalesce(current_setting('guardapp.tenant_{c}', true), '')"),
], tags=["set"])

scenario("set_alt_syntax_and_characteristics", "psycopg", [
    Q("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
    PID(), Q("SHOW default_transaction_isolation"),
    Q("BEGIN"), Q("SHOW transaction_isolation"), Q("COMMIT"), PID(),
    Q("SET TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE"), PID(),
    Q("SHOW TimeZone"),
    Q("SET TIME ZONE LOCAL"), PID(), Q("SHOW TimeZone"),
    Q("RESET default_transaction_isolation"), PID(),
    Q("SHOW default_transaction_isolation"),
], tags=["set", "paramstatus"])

scenario("set_read_only_default", "psycopg", [
    Q("SET default_transaction_read_only = on"), PID(),
    Q("INSERT INTO kv VALUES ('g{c}-ro', 'x')"), PID(),
    Q("SELECT count(*) FROM kv WHERE k = 'g{c}-ro'"),
    Q("RESET default_transaction_read_only"), PID(),
    Q("INSERT INTO kv VALUES ('g{c}-ro', 'y')"),
    Q("SELECT v FROM kv WHERE k = 'g{c}-ro'"),
], cleanup=SCRATCH_CLEANUP, tags=["set", "paramstatus"])

scenario("set_statement_timeout", "psycopg", [
    Q("SET statement_timeout = '500ms'"), PID(),
    Q("SELECT pg_sleep(5)"), PID(),
    Q("SELECT 'alive'"),
    Q("RESET statement_timeout"), PID(),
    Q("SELECT pg_sleep(0.05)::text"),
], tags=["set", "errors"])

scenario("set_via_do_block", "psycopg", [
    Q("DO $$ BEGIN PERFORM set_config('work_mem', '17MB', false); END $$"),
    PID(), Q(WM), PID(), Q(WM),
    Q("DO $$ BEGIN EXECUTE 'RESET work_mem'; END $$"), PID(), Q(WM),
], tags=["set"])

scenario("psycopg_ext_set", "psycopg_ext", [
    Q("SET work_mem = '18MB'"), PID(),
    Q("SELECT current_setting('work_mem'), %s::int", 1), PID(),
    Q("SELECT set_config('search_path', %s, false)", "gs_{c}, public"), PID(),
    Q("SELECT v FROM t WHERE v = %s", "{c}"),
    Q("BEGIN"), Q("SELECT set_config('work_mem', %s, false)", "20MB"),
    Q("SHOW work_mem"), Q("ROLLBACK"), PID(),
    Q("SHOW work_mem"),
], setup=SCHEMA_SETUP, cleanup=SCHEMA_CLEANUP, tags=["set", "unnamed"])

scenario("raw_paramstatus_stream", "raw", [
    Q("SET application_name = 'raw_{c}'"), PID(),
    Q("SET TimeZone = 'Africa/Cairo'"), PID(),
    Q("SHOW TimeZone"),
    Q("SET DateStyle = 'Postgres, MDY'; SET IntervalStyle = 'iso_8601'"), PID(),
    Q("BEGIN; SET TimeZone = 'UTC'; ROLLBACK"), PID(),
    Q("RESET ALL"), PID(),
    Q("SELECT current_setting('TimeZone'), current_setting('application_name')"),
], startup={"application_name": "rawstart_{c}",
            "options": "-c IntervalStyle=sql_standard"},
    tags=["paramstatus", "raw", "startup", "reset_all"])

scenario("raw_startup_guc_params", "raw", [
    Q("SELECT current_setting('work_mem'), current_setting('search_path')"),
    PID(),
    Q("SET work_mem = '2MB'"), PID(), Q("RESET work_mem"), PID(),
    Q("SELECT current_setting('work_mem'), current_setting('search_path')"),
], startup={"work_mem": "21MB", "search_path": "gs_{c}, public",
            "DateStyle": "ISO, DMY"},
    setup=SCHEMA_SETUP, cleanup=SCHEMA_CLEANUP, tags=["startup", "raw"])

# ---------------------------------------------------------------------------
# pinned state: temp tables, advisory locks, LISTEN, cursors, SQL PREPARE
# ---------------------------------------------------------------------------

scenario("temp_table_lifecycle", "psycopg", [
    Q("CREATE TEMP TABLE tt_{c}(v int)"), PID("pin"),
    Q("INSERT INTO tt_{c} VALUES ({c}), ({c} + 1)"), PID("pin"),
    Q("SELECT v FROM tt_{c} ORDER BY v"), SLEEP(0.02), PID("pin"),
    Q("BEGIN"), Q("INSERT INTO tt_{c} VALUES (0)"), Q("COMMIT"), PID("pin"),
    Q("SELECT count(*) FROM tt_{c}"),
    Q("DROP TABLE tt_{c}"), PID(), PID(), PID(),
    Q("SELECT to_regclass('pg_temp.tt_{c}') IS NULL"), PID(),
], pins=True, tags=["temp", "pinning"])

scenario("temp_table_via_search_path", "psycopg", [
    # pg_temp first in search_path: a plain CREATE TABLE is temporary
    Q("SET search_path = pg_temp, public"), PID(),
    Q("CREATE TABLE tsp_{c}(v int)"), PID("pin"),
    Q("INSERT INTO tsp_{c} VALUES ({c})"), SLEEP(0.02), PID("pin"),
    Q("SELECT v FROM tsp_{c}"), PID("pin"),
    Q("DROP TABLE tsp_{c}"), PID(), PID(),
    Q("RESET search_path"), PID(), Q("SHOW search_path"),
], pins=True, tags=["temp", "pinning", "search_path"])

scenario("temp_table_on_commit_drop", "psycopg", [
    Q("BEGIN"), Q("CREATE TEMP TABLE tc_{c}(v int) ON COMMIT DROP"),
    Q("INSERT INTO tc_{c} VALUES (1), (2)"), Q("SELECT sum(v) FROM tc_{c}"),
    Q("COMMIT"), PID(), PID(),
    Q("SELECT to_regclass('pg_temp.tc_{c}') IS NULL"), PID(),
    Q("BEGIN"), Q("CREATE TEMP TABLE tc_{c}(v int)"), Q("ROLLBACK"), PID(),
    Q("SELECT * FROM tc_{c}"), PID(),
], tags=["temp"])

scenario("temp_table_prepared_and_discard", "psycopg_prepared", [
    Q("CREATE TEMP TABLE tp_{c}(v int)"), PID("pin"),
    Q("INSERT INTO tp_{c} VALUES (%s)", "{c}"), PID("pin"),
    Q("INSERT INTO tp_{c} VALUES (%s)", 5), PID("pin"),
    Q("SELECT v FROM tp_{c} WHERE v > %s ORDER BY v", 0), PID("pin"),
    Q("DISCARD ALL"), PID(), PID(),
    # psycopg does not know DISCARD ALL dropped its _pg3_N: 26000
    Q("SELECT v FROM tp_{c} WHERE v > %s ORDER BY v", 0, msg=False),
    Q("SELECT %s::int + 1", 1), PID(),
], pins=True, tags=["temp", "pinning", "discard", "prepared"])

scenario("advisory_lock_session", "psycopg", [
    Q("SELECT pg_advisory_lock(%s)" % KEY), PID("pin"), held(), SLEEP(0.02),
    PID("pin"), held(),
    Q("SELECT pg_try_advisory_lock(%s)" % KEY),   # reentrant: count 2
    Q("SELECT pg_advisory_unlock(%s)" % KEY), PID("pin"), held(),
    Q("SELECT pg_advisory_unlock(%s)" % KEY), held(), PID(), PID(),
    Q("SELECT pg_advisory_unlock(%s)" % KEY), PID(),
], pins=True, tags=["advisory", "pinning"])

scenario("advisory_unlock_all", "psycopg", [
    Q("SELECT pg_try_advisory_lock(%s)" % KEY),
    Q("SELECT pg_advisory_lock_shared(%s)" % KEY2), PID("pin"),
    held(KEY), held(KEY2), PID("pin"),
    Q("SELECT pg_advisory_unlock_all()"), held(KEY), held(KEY2), PID(), PID(),
    PID(),
], pins=True, tags=["advisory", "pinning"])

scenario("advisory_xact_lock", "psycopg", [
    Q("BEGIN"), Q("SELECT pg_advisory_xact_lock(%s)" % KEY), held(),
    Q("COMMIT"), PID(), held(), PID(),
    Q("SELECT pg_try_advisory_xact_lock(%s)" % KEY), held(), PID(),
], tags=["advisory"])

scenario("listen_notify", "psycopg", [
    Q("LISTEN ch_{c}"), PID("pin"),
    NOTIFY("ch_{c}", "hello-{c}"), NOTIFIES(1), PID("pin"),
    NOTIFY("ch_{c}", "again"), SLEEP(0.02), Q("SELECT 1"),
    NOTIFIES(2), PID("pin"),
    Q("UNLISTEN ch_{c}"), NOTIFY("ch_{c}", "unheard"), NOTIFIES(2, 0.2), PID(),
    PID(), PID(),
], pins=True, tags=["listen", "pinning"])

scenario("listen_unlisten_all", "psycopg", [
    Q("LISTEN a_{c}"), Q("LISTEN b_{c}"), PID("pin"),
    NOTIFY("a_{c}", "1"), NOTIFY("b_{c}", "2"), NOTIFIES(2), PID("pin"),
    Q("UNLISTEN *"), NOTIFY("a_{c}", "3"), NOTIFY("b_{c}", "4"),
    NOTIFIES(2, 0.2), PID(), PID(), PID(),
], pins=True, tags=["listen", "pinning"])

scenario("listen_self_notify", "psycopg", [
    Q("LISTEN me_{c}"), PID("pin"),
    Q("NOTIFY me_{c}, 'to myself'"), NOTIFIES(1), PID("pin"),
    Q("BEGIN"), Q("NOTIFY me_{c}, 'in txn'"), Q("ROLLBACK"), NOTIFIES(1, 0.1),
    Q("BEGIN"), Q("SELECT pg_notify('me_{c}', 'committed')"), Q("COMMIT"),
    NOTIFIES(2), PID("pin"),
    Q("UNLISTEN me_{c}"), PID(), PID(),
], pins=True, tags=["listen", "pinning", "transactions"])

scenario("asyncpg_listener", "asyncpg", [
    ALISTEN("al_{c}"), PID("pin"),
    NOTIFY("al_{c}", "p1"), NOTIFIES(1), PID("pin"),
    NOTIFY("al_{c}", "p2"), NOTIFIES(2),
    AUNLISTEN("al_{c}"), PID(), NOTIFY("al_{c}", "p3"), NOTIFIES(2, 0.2), PID(),
    PID(),
], pins=True, tags=["listen", "asyncpg", "pinning"])

scenario("holdable_cursor", "psycopg", [
    Q("BEGIN"),
    Q("DECLARE cur_{c} CURSOR WITH HOLD FOR "
      "SELECT id, name FROM items WHERE id <= 9 ORDER BY id"),
    Q("FETCH 2 FROM cur_{c}"), Q("COMMIT"), PID("pin"),
    Q("FETCH 3 FROM cur_{c}"), SLEEP(0.02), PID("pin"),
    Q("MOVE 1 IN cur_{c}"), Q("FETCH 10 FROM cur_{c}"), PID("pin"),
    Q("CLOSE cur_{c}"), PID(), PID(), Q("FETCH 1 FROM cur_{c}"), PID(),
], pins=True, tags=["cursor", "pinning"])

scenario("cursor_without_hold", "psycopg", [
    Q("BEGIN"), Q("DECLARE nc_{c} CURSOR FOR SELECT id FROM items ORDER BY id"),
    Q("FETCH 2 FROM nc_{c}"), Q("COMMIT"), PID(),
    Q("FETCH 2 FROM nc_{c}"), PID(),
    Q("DECLARE ac_{c} CURSOR WITH HOLD FOR SELECT 1"), Q("CLOSE ac_{c}"), PID(),
    Q("CLOSE ALL"), PID(),
], tags=["cursor", "errors"])

scenario("sql_prepare_execute", "psycopg", [
    Q("PREPARE q_{c}(int) AS SELECT $1 + {c}"), PID("pin"),
    Q("EXECUTE q_{c}(1)"), PID("pin"),
    Q("SELECT name FROM pg_prepared_statements WHERE from_sql ORDER BY name"),
    Q("EXECUTE q_{c}(2)"), PID("pin"),
    Q("DEALLOCATE q_{c}"), PID(), PID(),
    Q("EXECUTE q_{c}(3)"), PID(),
    Q("SELECT name FROM pg_prepared_statements WHERE from_sql ORDER BY name"),
], pins=True, tags=["sql_prepare", "pinning"])

scenario("sql_prepare_deallocate_all", "psycopg", [
    Q("PREPARE qa_{c} AS SELECT 'a'"), Q("PREPARE qb_{c}(text) AS SELECT $1"),
    PID("pin"),
    Q("EXECUTE qa_{c}"), Q("EXECUTE qb_{c}('b')"), PID("pin"),
    Q("DEALLOCATE ALL"), PID(), PID(),
    Q("SELECT count(*) FROM pg_prepared_statements WHERE from_sql"),
    Q("EXECUTE qa_{c}"), PID(),
], pins=True, tags=["sql_prepare", "pinning", "deallocate"])

scenario("discard_all_unpins", "psycopg", [
    Q("SET work_mem = '22MB'"), Q("CREATE TEMP TABLE td_{c}(v int)"),
    Q("LISTEN d_{c}"), Q("PREPARE dp_{c} AS SELECT 1"),
    Q("SELECT pg_advisory_lock(%s)" % KEY), PID("pin"), held(), PID("pin"),
    Q("DISCARD ALL"), held(), PID(), PID(),
    Q(WM), Q("SELECT to_regclass('pg_temp.td_{c}') IS NULL"),
    Q("SELECT count(*) FROM pg_prepared_statements WHERE from_sql"),
    NOTIFY("d_{c}", "gone"), NOTIFIES(0), PID(),
    Q("SHOW application_name"),
], pins=True, tags=["discard", "pinning", "temp", "listen", "advisory",
                    "sql_prepare"])

scenario("discard_variants", "psycopg", [
    Q("CREATE TEMP TABLE dv_{c}(v int)"), PID("pin"),
    Q("DISCARD TEMP"), PID(), PID(),
    Q("SELECT to_regclass('pg_temp.dv_{c}') IS NULL"),
    Q("PREPARE dv_{c} AS SELECT 1"), PID("pin2"),
    Q("DISCARD PLANS"), Q("EXECUTE dv_{c}"), PID("pin2"),
    Q("SET work_mem = '23MB'"), Q("DISCARD ALL"), PID(), Q(WM), PID(),
], pins=True, tags=["discard", "pinning"])

# ---------------------------------------------------------------------------
# transactions, errors, COPY
# ---------------------------------------------------------------------------

scenario("error_mid_txn_state", "psycopg", [
    Q("SET work_mem = '2MB'"), PID(),
    Q("BEGIN"), Q("SET work_mem = '3MB'"),
    Q("INSERT INTO scratch VALUES ({c}, 1, 'x')"),
    Q("SELECT * FROM no_such_table_{c}"), Q("SELECT 1"), Q("COMMIT"), PID(),
    Q(WM), Q("SELECT count(*) FROM scratch WHERE client = {c}"),
    Q("BEGIN"), Q("INSERT INTO scratch VALUES ({c}, 2, 'y')"), Q("COMMIT"),
    PID(), Q("SELECT seq, val FROM scratch WHERE client = {c}"),
    Q("DELETE FROM scratch WHERE client = {c}"),
], cleanup=SCRATCH_CLEANUP, tags=["errors", "transactions", "set"])

scenario("txn_isolation_and_readonly", "psycopg", [
    Q("BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY"),
    Q("SHOW transaction_isolation"), Q("SHOW transaction_read_only"),
    Q("INSERT INTO kv VALUES ('g{c}-s', 'x')"), Q("ROLLBACK"), PID(),
    Q("SHOW transaction_isolation"), Q("SHOW transaction_read_only"), PID(),
    Q("START TRANSACTION"), Q("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
    Q("SHOW transaction_isolation"), Q("COMMIT"), PID(),
    Q("SHOW transaction_isolation"),
], cleanup=SCRATCH_CLEANUP, tags=["transactions", "errors"])

scenario("copy_in_out", "psycopg", [
    COPY_IN("COPY scratch(client, seq, val) FROM STDIN",
            [("{c}", i, "c%d" % i) for i in range(30)]), PID(),
    COPY_OUT("COPY (SELECT seq, val FROM scratch WHERE client = {c} "
             "ORDER BY seq) TO STDOUT"), PID(),
    Q("BEGIN"),
    COPY_IN("COPY scratch(client, seq, val) FROM STDIN",
            [("{c}", 100, "in-txn")]),
    Q("SET LOCAL work_mem = '5MB'"),
    COPY_OUT("COPY (SELECT count(*), current_setting('work_mem') FROM scratch "
             "WHERE client = {c}) TO STDOUT WITH (FORMAT csv)"),
    Q("COMMIT"), PID(),
    Q("SELECT count(*) FROM scratch WHERE client = {c}"),
    Q("DELETE FROM scratch WHERE client = {c}"),
], cleanup=SCRATCH_CLEANUP, tags=["copy", "transactions"])

scenario("copy_error_in_txn", "psycopg", [
    Q("SET work_mem = '6MB'"),
    Q("BEGIN"), Q("SET work_mem = '7MB'"),
    COPY_IN("COPY scratch(client, seq, val) FROM STDIN",
            [("{c}", 1, "ok"), ("{c}", "bad", "row")]),
    Q("ROLLBACK"), PID(),
    Q("SELECT count(*) FROM scratch WHERE client = {c}"), Q(WM), PID(),
    COPY_OUT("COPY (SELECT 1/0) TO STDOUT"), PID(), Q(WM),
], cleanup=SCRATCH_CLEANUP, tags=["copy", "errors", "set"])

scenario("psycopg_pipeline", "psycopg_ext", [
    PIPE([("SET work_mem = '8MB'", None),
          ("SELECT current_setting('work_mem')", None),
          ("SELECT %s::int + 1", (1,))]), PID(),
    Q("SHOW work_mem"), PID(),
    PIPE([("INSERT INTO scratch VALUES (%s, 1, 'p')", ("{c}",)),
          ("SELECT 1/0", None),
          ("INSERT INTO scratch VALUES (%s, 2, 'q')", ("{c}",))]), PID(),
    Q("SELECT count(*) FROM scratch WHERE client = %s", "{c}"),
    Q("SHOW work_mem"),
], cleanup=SCRATCH_CLEANUP, tags=["pipeline", "errors", "set"])

scenario("psycopg_prepared_pipeline", "psycopg_prepared", [
    PIPE([("SELECT %s::int * 10", (1,)), ("SELECT %s::text || 'x'", ("a",))]),
    PID(),
    PIPE([("SELECT %s::int * 10", (2,)), ("SELECT %s::text || 'x'", ("b",)),
          ("SELECT %s::int / 0", (3,))]), PID(),
    Q("SELECT %s::int * 10", 4), PID(),
    Q("SELECT %s::text || 'x'", "c"),
], tags=["pipeline", "prepared", "errors"])


# ---------------------------------------------------------------------------
# issue 9: state that leaked, vanished or went stale
# ---------------------------------------------------------------------------

scenario("set_role_follows_client", "psycopg", [
    Q("SELECT current_user, session_user"), PID(),
    Q("SET ROLE guard_role"), PID(),
    Q("SELECT current_user, session_user, current_setting('role')"), PID(),
    Q("SELECT count(*) FROM items WHERE id <= {c} % 7 + 1"), PID(),
    Q("BEGIN"), Q("SET LOCAL ROLE app"), Q("SELECT current_user"), Q("COMMIT"),
    Q("SELECT current_user"), PID(),
    Q("RESET ROLE"), PID(), Q("SELECT current_user, current_setting('role')"),
], tags=["set", "role"])

scenario("set_role_with_settings", "psycopg_ext", [
    Q("SET search_path = gs_{c}, public"), Q("SET ROLE guard_role"),
    Q("SET work_mem = '31MB'"), PID(),
    Q("SELECT current_user, current_setting('work_mem'), current_setting('search_path')"), PID(),
    Q("SELECT v FROM t"), PID(),
    Q("SET ROLE NONE"), Q("SELECT current_user"), PID(),
], setup=SCHEMA_SETUP, cleanup=SCHEMA_CLEANUP, tags=["set", "role", "search_path"])

scenario("custom_setting_simple", "psycopg", [
    Q("SET myapp.tenant = 't{c}'"), PID(),
    Q("SHOW myapp.tenant"), PID(),
    Q("SELECT current_setting('myapp.tenant')"), PID(),
    Q("RESET myapp.tenant"), PID(), Q("SELECT current_setting('myapp.tenant', true)"),
], tags=["set", "custom_setting"])

scenario("custom_setting_extended", "psycopg_ext", [
    Q("SET myapp.region = 'r{c}'"), PID(),
    Q("SELECT current_setting('myapp.region')"), PID(),
    Q("SELECT set_config('myapp.region', 'z{c}', false)"), PID(),
    Q("SHOW myapp.region"),
], tags=["set", "custom_setting", "set_config"])

scenario("raw_unnamed_across_syncs", "raw", [
    R(("P", "", "SELECT $1::int * {c}"), SYNC), PID(),
    R(("D", "S", ""), SYNC), PID(),
    R(("B", "", ["2"]), ("E", ""), SYNC), PID(),
    R(("B", "", ["3"]), ("E", ""), SYNC),
    R(("Q", "SELECT 1")),
    R(("B", "", ["4"]), ("E", ""), SYNC, msg=False),      # dropped by the Query: 26000
    R(("P", "", "SELECT $1::text || '-{c}'"), ("B", "", ["a"]), ("E", ""), SYNC), PID(),
    R(("B", "", ["b"]), ("E", ""), SYNC),
], tags=["raw", "unnamed", "describe"])

scenario("sequence_in_one_transaction", "psycopg", [
    Q("SELECT currval('gseq_{c}')"),                       # not yet defined: 55000
    Q("BEGIN"), Q("SELECT nextval('gseq_{c}')"), Q("SELECT currval('gseq_{c}'), lastval()"),
    Q("COMMIT"), PID(),
    Q("SELECT nextval('gseq_{c}'), currval('gseq_{c}')"), PID(),
    Q("INSERT INTO scratch VALUES ({c}, nextval('gseq_{c}'), 'n'); "
      "SELECT currval('gseq_{c}') - lastval()"), PID(),
    Q("SELECT count(*) FROM scratch WHERE client = {c}"),
], setup="DROP SEQUENCE IF EXISTS gseq_{c}; CREATE SEQUENCE gseq_{c}",
    cleanup="DROP SEQUENCE IF EXISTS gseq_{c}; " + SCRATCH_CLEANUP,
    tags=["sequence", "multi_statement"])

scenario("prepared_large_statement", "psycopg_prepared", [
    Q("SELECT %s::int + 1, length('" + "y" * 40000 + "')", "{c}"), PID(),
    Q("SELECT %s::int + 1, length('" + "y" * 40000 + "')", 2), PID(),
], tags=["prepared", "large"])

scenario("reset_to_startup_timezone", "psycopg", [
    Q("SHOW TimeZone"), Q("SET TIME ZONE 'UTC'"), PID(), Q("SHOW TimeZone"),
    Q("RESET TIME ZONE"), PID(), Q("SHOW TimeZone"),
    Q("SET TIME ZONE 'Asia/Tokyo'"), Q("SET TIME ZONE DEFAULT"), PID(), Q("SHOW TimeZone"),
    Q("SET TIME ZONE 'UTC'"), Q("SET TIME ZONE LOCAL"), PID(), Q("SHOW TimeZone"),
    Q("SET DateStyle = ISO"), Q("RESET DateStyle"), PID(), Q("SHOW DateStyle"),
], startup={"options": "-c TimeZone=America/Chicago -c DateStyle=Postgres,DMY"},
    tags=["set_default", "timezone", "startup", "paramstatus"])

scenario("temp_table_shadows_prepared", "psycopg_prepared", [
    Q("SELECT count(*) FROM kv WHERE k = %s", "g{c}-x"), PID(),
    Q("CREATE TEMP TABLE kv(k text, extra int)"), PID("pin"),
    Q("INSERT INTO kv VALUES ('g{c}-x', 1)"),
    Q("SELECT count(*) FROM kv WHERE k = %s", "g{c}-x"), PID("pin"),
    Q("DROP TABLE pg_temp.kv"), PID(), PID(),
    Q("SELECT count(*) FROM kv WHERE k = %s", "g{c}-x"), PID(),
], pins=True, cleanup=SCRATCH_CLEANUP, tags=["temp", "prepared", "pinning"])

SCENARIOS = S
BY_NAME = {s.name: s for s in S}
assert len(BY_NAME) == len(S), "duplicate scenario names"

# Coverage categories the corpus must keep (checked by test_guard.py).
REQUIRED_TAGS = ("prepared", "psycopg_prepared", "asyncpg", "deallocate",
                 "describe", "set", "set_default", "reset_all", "set_config",
                 "set_local", "savepoint", "transactions", "search_path",
                 "paramstatus", "timezone", "application_name", "startup",
                 "temp", "advisory", "listen", "cursor", "sql_prepare",
                 "discard", "errors", "pipeline", "copy", "multi_statement",
                 "raw", "unnamed", "pinning", "role", "custom_setting",
                 "sequence", "large")
