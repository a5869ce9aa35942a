"""Helpers for the admin console and /metrics tests (test_console*.py,
test_metrics.py): console connections, SHOW as dicts, clients held in known
states, and a parser of the Prometheus text format.

Clients are held in known states without timing: a direct connection takes
an exclusive advisory lock, and pooled clients ask for the shared one in
their own statement, so that those with a server block inside PostgreSQL
and the others wait in pgcarrier's queue until the lock is released.
"""

import re
import threading
import time
import urllib.request

import psycopg

# pgcarrier settings for console tests: who may use the console.
CONSOLE_SETTINGS = {"admin_users": "admin", "stats_users": "stats"}
HOLD_KEY = 4242


def console(carrier, user="admin", db="pgcarrier", unix=False, **kw):
    """A psycopg connection to the admin console (simple query protocol:
    psycopg sends a query without parameters as a simple Query, unless it
    has run it prepare_threshold times: then it prepares it, with the
    extended protocol, which the console refuses)."""
    kw.setdefault("autocommit", True)
    kw.setdefault("prepare_threshold", None)
    dsn = carrier.unix_dsn(db, user) if unix else carrier.dsn(db, user)
    return psycopg.connect(dsn, **kw)


def show(conn, what):
    """SHOW what -> list of dicts (column name -> value)."""
    cur = conn.execute("SHOW " + what)
    names = [d.name for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def show_columns(conn, what):
    """SHOW what -> [(column name, type oid)]."""
    cur = conn.execute("SHOW " + what)
    cur.fetchall()
    return [(d.name, d.type_code) for d in cur.description]


def pool_row(conn, db="app", user="app"):
    for r in show(conn, "POOLS"):
        if r["database"] == db and r["user"] == user:
            return r
    return None


def stats_row(conn, db="app", what="STATS"):
    for r in show(conn, what):
        if r["database"] == db:
            return r
    return None


def wait_until(pred, timeout=30, interval=0.05, what="condition"):
    """Poll pred() until it returns something true; its value. Not a timing
    threshold: the deadline only bounds a test that would otherwise hang."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


class Holder:
    """n pooled clients that each run one statement blocking on the advisory
    lock HOLD_KEY, which a direct connection holds until release()."""

    def __init__(self, pg, carrier, n, db="app", user="app", key=HOLD_KEY):
        self.lock_conn = pg.connect()
        self.lock_conn.execute("SELECT pg_advisory_lock(%s)" % key)
        self.carrier = carrier
        self.key = key
        self.conns = [carrier.connect(db, user) for _ in range(n)]
        self.errors = []
        self.done = 0
        self._mu = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(c,), daemon=True)
                        for c in self.conns]
        for t in self.threads:
            t.start()

    def _run(self, conn):
        try:
            conn.execute("SELECT pg_advisory_xact_lock_shared(%d)" % self.key)
            with self._mu:
                self.done += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            with self._mu:
                self.errors.append(e)

    def release(self, join=True):
        self.lock_conn.execute("SELECT pg_advisory_unlock(%s)" % self.key)
        if join:
            for t in self.threads:
                t.join(60)

    def close(self):
        for c in self.conns:
            try:
                c.close()
            except Exception:
                pass
        try:
            self.lock_conn.close()
        except Exception:
            pass


# ---------------------------------------------------------------- metrics

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text exposition -> (samples, types): samples is a list of
    (name, {label: value}, float); types maps family names to their TYPE.
    Raises ValueError on a line that is not valid exposition format."""
    samples, types = [], {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
            continue
        if line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError("bad exposition line: %r" % line)
        labels = {}
        if m.group(3):
            rest = m.group(3)
            for lm in _LABEL.finditer(rest):
                labels[lm.group(1)] = (lm.group(2).replace('\\"', '"')
                                       .replace("\\n", "\n").replace("\\\\", "\\"))
        samples.append((m.group(1), labels, float(m.group(4))))
    return samples, types


def metric(samples, name, **labels):
    """The value of the one sample of name with these labels (None if none)."""
    found = [v for n, ls, v in samples
             if n == name and all(ls.get(k) == str(x) for k, x in labels.items())]
    if len(found) > 1:
        raise AssertionError("more than one %s%r" % (name, labels))
    return found[0] if found else None


def fetch(url, timeout=10):
    """GET url -> (status, headers, body text); HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()
