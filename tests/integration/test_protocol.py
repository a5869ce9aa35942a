"""Protocol tests: real PostgreSQL 15 behind pgcarrier, compared with the
same server reached directly.  Everything a client can do over protocol 3.0
must behave through pgcarrier as it does without it, in every pool mode.
"""

import hashlib
import os
import random
import select
import struct
import subprocess
import threading
import time

import pytest
import psycopg
from psycopg import errors as pgerr

import harness
from harness import (RawConn, msg, cstr, msg_parse, msg_bind, msg_describe,
                     msg_execute, msg_close, msg_func_call, parse_error,
                     data_row)

MODES = ["session", "transaction", "statement"]
PSQL = os.path.join(harness.PG_BINDIR, "psql")


def new_tag():
    return random.randint(1, 2 ** 31 - 2)


def run_psql(dsn, *args, timeout=30, input=None):
    r = subprocess.run([PSQL, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                        "-d", dsn] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout, input=input)
    return r


# ---------------------------------------------------------------------------
# simple query protocol
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("via", ["tcp", "unix"])
def test_psql_simple(carrier, pg, mode, via):
    c = carrier(pool_mode=mode)
    dsn = c.dsn() if via == "tcp" else c.unix_dsn()
    args = ["-c", "SELECT id, name, qty FROM items WHERE id <= 5 ORDER BY id",
            "-c", "SELECT current_database(), current_user, 1 + 1",
            "-c", "SELECT 'a' AS x; SELECT 'b' AS y, NULL AS z",
            "-c", "VALUES (1, 'one'), (2, 'two')"]
    got = run_psql(dsn, *args)
    want = run_psql(pg.dsn(), *args)
    assert want.returncode == 0, want.stderr
    assert got.returncode == 0, got.stderr + "\n" + c.log()[-2000:]
    assert got.stdout == want.stdout
    assert "1|item-1|10" in got.stdout


@pytest.mark.parametrize("mode", MODES)
def test_psql_error_then_continue(carrier, pg, mode):
    """An error in a script without ON_ERROR_STOP: psql goes on."""
    c = carrier(pool_mode=mode)
    script = ("SELECT 1;\nSELECT * FROM no_such_table;\nSELECT 1/0;\n"
              "SELECT 'still here';\n")
    outs = []
    for dsn in (pg.dsn(), c.dsn()):
        r = subprocess.run([PSQL, "-X", "-A", "-t", "-d", dsn, "-f", "-"],
                           input=script, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        outs.append((r.returncode, r.stdout,
                     [l.split(":", 3)[-1] for l in r.stderr.splitlines()]))
    assert outs[0] == outs[1]
    assert "still here" in outs[1][1]


SAMPLE_QUERIES = [
    "SELECT 1 AS one, 'text'::text AS t, NULL::int AS n, 1.5::numeric AS num",
    "SELECT '2024-02-29 12:34:56+00'::timestamptz AS ts, '1 day'::interval AS iv",
    "SELECT ARRAY[1,2,3] AS a, '{\"k\": [1, 2]}'::jsonb AS j, '\\xdeadbeef'::bytea AS b",
    "SELECT id, name, qty FROM items ORDER BY id",
    "SELECT count(*), sum(qty), max(name) FROM items",
    "SELECT g, md5(g::text) FROM generate_series(1, 2000) g",
    "SELECT current_database(), current_user",
    "SHOW server_version_num",
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cursor", ["server-binding", "client-binding"])
def test_psycopg_queries_match_direct(carrier, pg, mode, cursor):
    c = carrier(pool_mode=mode)
    kw = {}
    if cursor == "client-binding":
        kw["cursor_factory"] = psycopg.ClientCursor
    with pg.connect(**kw) as d, c.connect(**kw) as p:
        for q in SAMPLE_QUERIES:
            want = d.execute(q).fetchall()
            got = p.execute(q).fetchall()
            assert got == want, q
            assert [x.name for x in p.execute(q).description] == \
                [x.name for x in d.execute(q).description]


@pytest.mark.parametrize("mode", MODES)
def test_multi_statement_simple_query(carrier, pg, mode):
    c = carrier(pool_mode=mode)
    q = "SELECT 1 AS a; SELECT 'two' AS b, 2; SELECT id FROM items WHERE id < 4 ORDER BY id"
    res = []
    for conn in (pg.connect(cursor_factory=psycopg.ClientCursor),
                 c.connect(cursor_factory=psycopg.ClientCursor)):
        with conn:
            cur = conn.cursor()
            cur.execute(q)
            sets = [cur.fetchall()]
            while cur.nextset():
                sets.append(cur.fetchall())
            res.append(sets)
    assert res[0] == res[1] == [[(1,)], [("two", 2)], [(1,), (2,), (3,)]]


# ---------------------------------------------------------------------------
# extended query protocol
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_psycopg_parameters(carrier, pg, mode):
    c = carrier(pool_mode=mode)
    import datetime
    import decimal
    params = [42, -7, "héllo ' \" \\ wörld", None, decimal.Decimal("3.14159"),
              datetime.date(2020, 1, 2), b"\x00\x01\xff", [1, 2, 3], True,
              2 ** 40, 1.25]
    q = "SELECT " + ", ".join("%s" for _ in params)
    with pg.connect() as d, c.connect() as p:
        for binary in (False, True):
            want = d.execute(q, params, binary=binary).fetchone()
            got = p.execute(q, params, binary=binary).fetchone()
            assert got == want
        for i in range(50):
            assert p.execute("SELECT %s::int * 2, %s::text || 'x'",
                             [i, str(i)]).fetchone() == (i * 2, "%dx" % i)
        rows = p.execute("SELECT id, name FROM items WHERE id = ANY(%s) ORDER BY id",
                         [[3, 5, 99]]).fetchall()
        assert rows == [(3, "item-3"), (5, "item-5"), (99, "item-99")]


@pytest.mark.parametrize("mode", MODES)
def test_psycopg_executemany_and_errors(carrier, pg, mode):
    c = carrier(pool_mode=mode)
    tag = new_tag()
    with c.connect() as p:
        cur = p.cursor()
        cur.executemany("INSERT INTO scratch(client, seq, val) VALUES (%s, %s, %s)",
                        [(tag, i, "v%d" % i) for i in range(200)])
        with pytest.raises(pgerr.UndefinedTable):
            p.execute("SELECT * FROM no_such_table WHERE x = %s", [1])
        with pytest.raises(pgerr.InvalidTextRepresentation):
            p.execute("SELECT %s::int", ["nope"])
        with pytest.raises(pgerr.SyntaxError):
            p.execute("SELEC 1")
        assert p.execute("SELECT count(*), sum(seq) FROM scratch WHERE client = %s",
                         [tag]).fetchone() == (200, sum(range(200)))
        p.execute("DELETE FROM scratch WHERE client = %s", [tag])


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_psycopg_transactions(carrier, pg, mode):
    c = carrier(pool_mode=mode)
    tag = new_tag()
    with c.connect(autocommit=False) as p:
        with p.transaction():
            p.execute("INSERT INTO scratch VALUES (%s, 1, 'committed')", [tag])
        try:
            with p.transaction():
                p.execute("INSERT INTO scratch VALUES (%s, 2, 'rolled back')", [tag])
                p.execute("SELECT 1/0")
        except pgerr.DivisionByZero:
            pass
        p.execute("INSERT INTO scratch VALUES (%s, 3, 'explicit rollback')", [tag])
        p.rollback()
        with p.transaction():
            with p.transaction():  # savepoint
                p.execute("INSERT INTO scratch VALUES (%s, 4, 'savepoint')", [tag])
            try:
                with p.transaction():
                    p.execute("INSERT INTO scratch VALUES (%s, 5, 'sp rolled back')", [tag])
                    raise RuntimeError("boom")
            except RuntimeError:
                pass
        p.commit()
    assert pg.sql("SELECT string_agg(seq::text, ',' ORDER BY seq) FROM scratch "
                  "WHERE client = %d" % tag, db="app") == "1,4"
    pg.sql("DELETE FROM scratch WHERE client = %d" % tag, db="app")


@pytest.mark.parametrize("mode", MODES)
def test_asyncpg_extended(carrier, pg, mode):
    import asyncio
    c = carrier(pool_mode=mode)
    tag = new_tag()

    async def main():
        conn = await c.aconnect()
        try:
            assert await conn.fetchval("SELECT $1::int * 2", 21) == 42
            assert await conn.fetchval("SELECT $1::text || $2::text", "a", "b") == "ab"
            rows = await conn.fetch("SELECT id, name FROM items WHERE id BETWEEN $1 AND $2 "
                                    "ORDER BY id", 10, 14)
            assert [tuple(r) for r in rows] == [(i, "item-%d" % i) for i in range(10, 15)]
            big = await conn.fetch("SELECT g, repeat('z', g % 50) FROM generate_series(1, 5000) g")
            assert len(big) == 5000 and big[-1][0] == 5000
            await conn.executemany("INSERT INTO scratch VALUES ($1, $2, $3)",
                                   [(tag, i, "x" * i) for i in range(100)])
            assert await conn.fetchval("SELECT count(*) FROM scratch WHERE client = $1",
                                       tag) == 100
            for i in range(30):  # many unnamed / cached statements in a row
                assert await conn.fetchval("SELECT $1::bigint + %d" % (i % 5), i) == i + i % 5
            try:
                await conn.fetchval("SELECT 1 / $1::int", 0)
                raise AssertionError("no error")
            except Exception as e:
                assert getattr(e, "sqlstate", None) == "22012", repr(e)
            assert await conn.fetchval("SELECT 'alive'") == "alive"
            if mode != "statement":
                async with conn.transaction():
                    await conn.execute("INSERT INTO scratch VALUES ($1, 1000, 'tx')", tag)
                    n = await conn.fetchval("SELECT count(*) FROM scratch WHERE client = $1", tag)
                    assert n == 101
                    txa = await conn.fetchval("SELECT txid_current()")
                    txb = await conn.fetchval("SELECT txid_current()")
                    assert txa == txb
            if mode == "session":
                # named prepared statements, reused across transactions
                st = await conn.prepare("SELECT $1::int + 100")
                for i in range(5):
                    assert await st.fetchval(i) == i + 100
                    await conn.execute("SELECT 1")
            await conn.execute("DELETE FROM scratch WHERE client = $1", tag)
        finally:
            await conn.close()

    asyncio.run(asyncio.wait_for(main(), 50))


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_asyncpg_copy(carrier, pg, mode):
    import asyncio
    import io
    c = carrier(pool_mode=mode)
    tag = new_tag()

    async def main():
        conn = await c.aconnect()
        try:
            recs = [(tag, i, "row %d \t with tab" % i) for i in range(5000)]
            if mode == "session":
                # binary COPY; asyncpg prepares a named statement first
                await conn.copy_records_to_table("scratch", records=recs)
            else:
                data = "".join("%d\t%d\t%s\n" % (a, b, v.replace("\t", "\\t"))
                               for a, b, v in recs).encode()
                await conn.copy_to_table("scratch", source=io.BytesIO(data))
            got = await conn.fetch("SELECT client, seq, val FROM scratch WHERE client = $1 "
                                   "ORDER BY seq", tag)
            assert [tuple(r) for r in got] == recs
            out = io.BytesIO()
            # (no query arguments: asyncpg would then reuse an unnamed
            # statement across a Sync, which only session mode can keep)
            await conn.copy_from_query("SELECT seq, val FROM scratch WHERE client = %d "
                                       "ORDER BY seq" % tag, output=out, format="csv")
            assert out.getvalue().count(b"\n") == 5000
            await conn.execute("DELETE FROM scratch WHERE client = $1", tag)
        finally:
            await conn.close()

    asyncio.run(asyncio.wait_for(main(), 50))


# ---------------------------------------------------------------------------
# pipeline mode (psycopg) and raw pipelines
# ---------------------------------------------------------------------------

def _pipeline_scenario(conn, tag):
    """Returns a trace of what the client observed."""
    trace = []
    with conn.pipeline():
        curs = [conn.execute("SELECT %s::int * 3, %s::text", [i, "r%d" % i])
                for i in range(20)]
        ins = conn.execute("INSERT INTO scratch VALUES (%s, 1, 'p1') RETURNING seq", [tag])
        cnt = conn.execute("SELECT count(*) FROM scratch WHERE client = %s", [tag])
    trace.append([cur.fetchone() for cur in curs])
    trace.append(ins.fetchone())
    trace.append(cnt.fetchone())

    # an error in the middle of a pipeline
    with conn.pipeline() as p:
        a = conn.execute("INSERT INTO scratch VALUES (%s, 2, 'before sync') RETURNING seq",
                         [tag])
        p.sync()
        conn.execute("SELECT 10 / %s::int", [0])
        # psycopg raises the error at whichever call first reads it (timing)
        err = []
        try:
            conn.execute("INSERT INTO scratch VALUES (%s, 3, 'skipped')", [tag])
        except psycopg.Error as e:
            err.append(("error", type(e).__name__, e.sqlstate))
        try:
            p.sync()
        except psycopg.Error as e:
            err.append(("error", type(e).__name__, e.sqlstate))
        trace.append(err[0] if err else "no error")
        after = conn.execute("SELECT 'after error', %s::int", [7])
    trace.append(a.fetchone())
    trace.append(after.fetchone())
    # and the connection is still fine
    trace.append(conn.execute("SELECT seq FROM scratch WHERE client = %s ORDER BY seq",
                              [tag]).fetchall())
    with conn.pipeline():
        last = conn.execute("SELECT 'usable'")
    trace.append(last.fetchone())
    conn.execute("DELETE FROM scratch WHERE client = %s", [tag])
    return trace


@pytest.mark.parametrize("mode", MODES)
def test_psycopg_pipeline(carrier, pg, mode):
    c = carrier(pool_mode=mode)
    with pg.connect() as d:
        want = _pipeline_scenario(d, new_tag())
    with c.connect() as p:
        got = _pipeline_scenario(p, new_tag())
    assert got == want
    assert got[0] == [(i * 3, "r%d" % i) for i in range(20)]
    assert got[3] == ("error", "DivisionByZero", "22012")
    assert got[4] == (2,)
    assert got[5][0] == "after error"
    assert got[6] == [(1,), (2,)]  # row 3 was never inserted


def _norm(msgs):
    out = []
    for t, p in msgs:
        if t == "S":  # ParameterStatus may legitimately differ
            continue
        if t in "EN":
            f = parse_error(p)
            out.append((t, tuple((k, f.get(k)) for k in "SVCMDHP")))
        else:
            out.append((t, p))
    return out


def _raw_direct(pg):
    r = RawConn(pg.host, pg.port)
    r.startup("app", "app", application_name="pgc-direct")
    return r


def _raw_carrier(c, unix=False):
    r = RawConn(c.sockdir if unix else c.host, c.port)
    r.startup("app", "app")
    return r


def _exchange(conn, data, n_ready, chunk=None):
    if chunk:
        for i in range(0, len(data), chunk):
            conn.send_raw(data[i:i + chunk])
            time.sleep(0.001)
    else:
        conn.send_raw(data)
    return conn.recv_until_ready(n_ready)


PIPELINE = b"".join([
    msg("P", msg_parse("", "SELECT $1::int + 1 AS plus", [23])),
    msg("B", msg_bind("", "", ["41"])),
    msg("D", msg_describe("P", "")),
    msg("E", msg_execute("")),
    msg("P", msg_parse("", "SELECT 1/0")),
    msg("B", msg_bind("", "")),
    msg("E", msg_execute("")),
    msg("P", msg_parse("", "SELECT 3")),  # skipped: error above
    msg("B", msg_bind("", "")),
    msg("E", msg_execute("")),
    msg("S"),
    msg("P", msg_parse("", "SELECT g FROM generate_series(1, 5) g")),
    msg("B", msg_bind("", "", rfmts=[1])),
    msg("D", msg_describe("P", "")),
    msg("E", msg_execute("", 2)),  # PortalSuspended
    msg("E", msg_execute("", 0)),
    msg("S"),
    msg("P", msg_parse("", "SELECT $1::text, $2::int4", [0, 0])),
    msg("D", msg_describe("S", "")),  # ParameterDescription + RowDescription
    msg("B", msg_bind("", "", ["txt", struct.pack("!i", 7)], fmts=[0, 1])),
    msg("E", msg_execute("")),
    msg("C", msg_close("S", "")),
    msg("C", msg_close("P", "")),
    msg("B", msg_bind("", "nonexistent_stmt")),  # 26000
    msg("E", msg_execute("")),
    msg("S"),
    msg("Q", cstr("")),  # EmptyQueryResponse
    msg("Q", cstr("SELECT 1 AS a; SELECT 1/0; SELECT 3")),
    msg("Q", cstr("SELECT 'x' AS b")),
    msg("P", msg_parse("", "")),  # empty extended query
    msg("B", msg_bind("", "")),
    msg("E", msg_execute("")),
    msg("S"),
])
PIPELINE_READY = 7


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("chunk", [None, 7])
def test_raw_pipeline_matches_direct(carrier, pg, mode, chunk):
    """Byte-level comparison of the backend messages for a pipeline with
    errors, portal suspension, describes, closes; sent in one write or in
    7-byte pieces."""
    c = carrier(pool_mode=mode)
    with _raw_direct(pg) as d:
        want = _norm(_exchange(d, PIPELINE, PIPELINE_READY))
    with _raw_carrier(c) as r:
        got = _norm(_exchange(r, PIPELINE, PIPELINE_READY, chunk))
        # still in sync afterwards
        assert _norm(r.query("SELECT 'sync'"))[-3:-1] == \
            [("D", struct.pack("!hi", 1, 4) + b"sync"),
             ("C", b"SELECT 1\0")]
    assert [t for t, _ in got] == [t for t, _ in want]
    assert got == want
    types = "".join(t for t, _ in got)
    assert types.startswith("12TDC1EZ")
    assert "s" in types and "t" in types and "I" in types


@pytest.mark.parametrize("mode", MODES)
def test_raw_flush_without_sync(carrier, pg, mode):
    """Results requested with Flush arrive before any Sync; the server stays
    attached until the Sync."""
    c = carrier(pool_mode=mode)
    for conn in (_raw_direct(pg), _raw_carrier(c)):
        with conn:
            conn.send_raw(msg("P", msg_parse("", "SELECT 'flushed'")) +
                          msg("B", msg_bind("", "")) + msg("E", msg_execute("")) +
                          msg("H"))
            seen = []
            while not seen or seen[-1] != "C":
                seen.append(conn.recv()[0])
            assert seen == ["1", "2", "D", "C"]
            conn.send_raw(msg("P", msg_parse("", "SELECT pg_backend_pid()")) +
                          msg("B", msg_bind("", "")) + msg("E", msg_execute("")) +
                          msg("H"))
            seen = []
            while not seen or seen[-1] != "C":
                seen.append(conn.recv()[0])
            assert seen == ["1", "2", "D", "C"]
            conn.send("S")
            assert [t for t, _ in conn.recv_until_ready()] == ["Z"]


@pytest.mark.parametrize("mode", ["session"])
def test_raw_named_statements(carrier, pg, mode):
    c = carrier(pool_mode=mode)
    seq = b"".join([
        msg("P", msg_parse("st1", "SELECT $1::int * 10", [23])), msg("S"),
        msg("B", msg_bind("", "st1", ["4"])), msg("E", msg_execute("")), msg("S"),
        msg("B", msg_bind("", "st1", ["5"])), msg("E", msg_execute("")), msg("S"),
        msg("P", msg_parse("st1", "SELECT 2")), msg("S"),  # 42P05 duplicate
        msg("C", msg_close("S", "st1")), msg("S"),
        msg("B", msg_bind("", "st1", ["6"])), msg("E", msg_execute("")), msg("S"),
    ])
    with _raw_direct(pg) as d:
        want = _norm(_exchange(d, seq, 6))
    with _raw_carrier(c) as r:
        got = _norm(_exchange(r, seq, 6))
    assert got == want
    errs = [dict(p)["C"] for t, p in got if t == "E"]
    assert errs == ["42P05", "26000"]


@pytest.mark.parametrize("mode", MODES)
def test_function_call(carrier, pg, mode):
    """FunctionCall ('F') messages, text and binary, with an error."""
    c = carrier(pool_mode=mode)
    oid = int(pg.sql("SELECT 'int4pl'::regproc::oid"))
    seq = b"".join([
        msg("F", msg_func_call(oid, ["20", "22"])),
        msg("F", msg_func_call(oid, [struct.pack("!i", 40), struct.pack("!i", 2)],
                               fmts=[1], rfmt=1)),
        msg("F", msg_func_call(oid, ["2147483647", "1"])),  # 22003
        msg("F", msg_func_call(oid, ["1", None])),  # strict: NULL result
    ])
    with _raw_direct(pg) as d:
        want = _norm(_exchange(d, seq, 4))
    with _raw_carrier(c) as r:
        got = _norm(_exchange(r, seq, 4))
    assert got == want
    assert got[0] == ("V", struct.pack("!i", 2) + b"42")
    assert got[2] == ("V", struct.pack("!ii", 4, 42))
    assert got[4][0] == "E" and dict(got[4][1])["C"] == "22003"
    assert got[6] == ("V", struct.pack("!i", -1))


# ---------------------------------------------------------------------------
# COPY
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_psycopg_copy_in_out(carrier, pg, mode):
    c = carrier(pool_mode=mode)
    tag = new_tag()
    rows = [(tag, i, "line %d \\ with \t tab and \u00e9 %s" % (i, "y" * (i % 300)))
            for i in range(30000)]
    with c.connect() as p:
        cur = p.cursor()
        with cur.copy("COPY scratch (client, seq, val) FROM STDIN") as cp:
            for r in rows:
                cp.write_row(r)
        assert p.execute("SELECT count(*) FROM scratch WHERE client = %s",
                         [tag]).fetchone() == (len(rows),)
        q = ("COPY (SELECT client, seq, val FROM scratch WHERE client = %d ORDER BY seq) "
             "TO STDOUT" % tag)
        got = bytearray()
        with cur.copy(q) as cp:
            for data in cp:
                got += data
        # binary COPY out, row by row
        with cur.copy(q + " (FORMAT binary)") as cp:
            cp.set_types(["int4", "int4", "text"])
            back = list(cp.rows())
        assert back == rows
        # COPY with bad data fails cleanly, nothing inserted, conn usable
        with pytest.raises(pgerr.InvalidTextRepresentation):
            with cur.copy("COPY scratch (client, seq) FROM STDIN") as cp:
                cp.write(b"%d\t1\n%d\tnot-a-number\n" % (tag + 1, tag + 1))
        # client-side abort (CopyFail)
        with pytest.raises(pgerr.QueryCanceled):
            with cur.copy("COPY scratch (client, seq) FROM STDIN") as cp:
                cp.write_row((tag + 1, 2))
                raise ValueError("client gives up")
        assert p.execute("SELECT count(*) FROM scratch WHERE client = %s",
                         [tag + 1]).fetchone() == (0,)
    with pg.connect() as d:
        want = bytearray()
        with d.cursor().copy(q) as cp:
            for data in cp:
                want += data
        d.execute("DELETE FROM scratch WHERE client = %s", [tag])
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(want).hexdigest()
    assert got.count(b"\n") == len(rows)


@pytest.mark.parametrize("mode", MODES)
def test_raw_copy_messages(carrier, pg, mode):
    """COPY over simple and extended protocol, CopyFail, compared byte-wise."""
    c = carrier(pool_mode=mode)
    tag = new_tag()
    out = []
    for conn in (_raw_direct(pg), _raw_carrier(c)):
        with conn:
            tr = []
            conn.send("Q", cstr("COPY scratch (client, seq, val) FROM STDIN"))
            tr.append(conn.recv())  # G
            data = b"".join(b"%d\t%d\tv%d\n" % (tag, i, i) for i in range(1000))
            conn.send_raw(b"".join(msg("d", data[i:i + 333]) for i in range(0, len(data), 333))
                          + msg("c"))
            tr += conn.recv_until_ready()
            conn.send("Q", cstr("COPY scratch (client, seq) FROM STDIN"))
            tr.append(conn.recv())
            conn.send_raw(msg("d", b"%d\t5000\n" % tag) + msg("f", cstr("aborted by test")))
            tr += conn.recv_until_ready()
            conn.send_raw(b"".join([
                msg("P", msg_parse("", "COPY (SELECT seq, val FROM scratch WHERE client = %d "
                                   "ORDER BY seq LIMIT 50) TO STDOUT" % tag)),
                msg("B", msg_bind("", "")), msg("E", msg_execute("")), msg("S")]))
            tr += conn.recv_until_ready()
            conn.send_raw(b"".join([
                msg("P", msg_parse("", "COPY scratch (client, seq) FROM STDIN")),
                msg("B", msg_bind("", "")), msg("E", msg_execute(""))]))
            tr.append(conn.recv())  # G (CopyInResponse)
            conn.send_raw(msg("d", b"%d\t7000\n" % tag) + msg("c") + msg("S"))
            tr += conn.recv_until_ready()
            tr += conn.query("DELETE FROM scratch WHERE client = %d" % tag)
            out.append(_norm(tr))
    assert out[0] == out[1]
    types = "".join(t for t, _ in out[1])
    assert types.startswith("GCZGEZ12H")


# ---------------------------------------------------------------------------
# large results
# ---------------------------------------------------------------------------

@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_large_messages_from_client(carrier, pg, mode):
    """Client messages of tens of MB (Bind with a 24 MB parameter, a 16 MB
    simple Query, 8 MB CopyData) cross pgcarrier intact."""
    c = carrier(pool_mode=mode)
    big = "".join(random.choice("abcdefghij") for _ in range(1000)) * 24 * 1024
    want = hashlib.md5(big.encode()).hexdigest()
    with c.connect() as p:
        assert p.execute("SELECT length(x), md5(x) FROM (SELECT %s::text AS x) s",
                         [big]).fetchone() == (len(big), want)
        q = "SELECT md5('%s')" % big[:16 * 1024 * 1024]
        assert p.execute(q).fetchone() == (
            hashlib.md5(big[:16 * 1024 * 1024].encode()).hexdigest(),)
        tag = new_tag()
        with p.cursor().copy("COPY scratch (client, seq, val) FROM STDIN") as cp:
            cp.write(b"%d\t1\t%s\n" % (tag, big[:8 * 1024 * 1024].encode()))
        assert p.execute("SELECT length(val) FROM scratch WHERE client = %s",
                         [tag]).fetchone() == (8 * 1024 * 1024,)
        p.execute("DELETE FROM scratch WHERE client = %s", [tag])


BIG_SQL = "SELECT g, repeat(md5(g::text), 32) FROM generate_series(1, 110000) g"


def _big_expected():
    h = hashlib.sha256()
    for g in range(1, 110001):
        h.update(b"%d|%s\n" % (g, hashlib.md5(str(g).encode()).hexdigest().encode() * 32))
    return h.hexdigest()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", MODES)
def test_large_result_over_100mb(carrier, pg, mode):
    c = carrier(pool_mode=mode)
    expected = _big_expected()
    with c.connect() as p:
        cur = p.cursor()
        cur.execute(BIG_SQL)
        h = hashlib.sha256()
        n = 0
        total = 0
        while True:
            rows = cur.fetchmany(5000)
            if not rows:
                break
            for g, s in rows:
                h.update(b"%d|%s\n" % (g, s.encode()))
                total += len(s)
            n += len(rows)
        assert n == 110000
        assert total > 100 * 1024 * 1024
        assert h.hexdigest() == expected
        assert p.execute("SELECT 'after big'").fetchone() == ("after big",)


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.timeout(90)
def test_slow_reader_large_result(carrier, pg):
    """A client reading 110 MB slowly: all bytes arrive, and pgcarrier does
    not buffer the result in memory (backpressure to the server)."""
    c = carrier(pool_mode="transaction")
    with _raw_carrier(c) as r:
        base = _rss_kb(c.pid)
        peak = base
        r.send("Q", cstr(BIG_SQL))
        r.sock.setsockopt(__import__("socket").SOL_SOCKET,
                          __import__("socket").SO_RCVBUF, 65536)
        n = 0
        h = hashlib.sha256()
        t0 = time.monotonic()
        while True:
            t, p = r.recv()
            if t == "D":
                g, s = data_row(p)
                h.update(b"%s|%s\n" % (g, s))
                n += 1
                if n % 500 == 0:
                    time.sleep(0.01)
                    peak = max(peak, _rss_kb(c.pid))
            elif t == "Z":
                break
            else:
                assert t in "TC", (t, p)
        assert n == 110000
        assert h.hexdigest() == _big_expected()
        assert time.monotonic() - t0 < 80
    if not harness.SAN:
        assert peak - base < 48 * 1024, \
            "pgcarrier RSS grew by %d kB while a client read slowly" % (peak - base)


# ---------------------------------------------------------------------------
# notices, notifications, parameter status
# ---------------------------------------------------------------------------

NOTICE_SQL = """DO $$
BEGIN
  RAISE NOTICE 'hello %', 42;
  FOR i IN 1..50 LOOP RAISE NOTICE 'n%', i; END LOOP;
  RAISE WARNING 'careful' USING DETAIL = 'some detail', HINT = 'a hint';
END $$"""


@pytest.mark.parametrize("mode", MODES)
def test_notices(carrier, pg, mode):
    c = carrier(pool_mode=mode)
    res = []
    for conn in (pg.connect(), c.connect()):
        with conn:
            got = []
            conn.add_notice_handler(lambda d: got.append(
                (d.severity, d.sqlstate, d.message_primary, d.message_detail, d.message_hint)))
            conn.execute(NOTICE_SQL)
            conn.execute("SELECT 1")
            res.append(got)
    assert res[0] == res[1]
    assert res[1][0] == ("NOTICE", "00000", "hello 42", None, None)
    assert res[1][-1] == ("WARNING", "01000", "careful", "some detail", "a hint")
    assert len(res[1]) == 52


def test_listen_notify_session(carrier, pg):
    c = carrier(pool_mode="session")
    with c.connect() as listener, c.connect() as sender, pg.connect() as direct:
        got = []
        listener.add_notify_handler(lambda n: got.append((n.channel, n.payload)))
        listener.execute("LISTEN pgc_chan")
        sender.execute("NOTIFY pgc_chan, 'from carrier'")
        direct.execute("SELECT pg_notify('pgc_chan', 'from direct')")
        # delivered asynchronously while the listener is idle
        r, _, _ = select.select([listener.fileno()], [], [], 5)
        assert r, "notification not forwarded to an idle client"
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            listener.execute("SELECT 1")
            time.sleep(0.05)
        assert got == [("pgc_chan", "from carrier"), ("pgc_chan", "from direct")]
        listener.execute("UNLISTEN *")
        sender.execute("NOTIFY pgc_chan, 'unheard'")
        time.sleep(0.2)
        listener.execute("SELECT 1")
        assert len(got) == 2


@pytest.mark.parametrize("mode", MODES)
def test_parameter_status(carrier, pg, mode):
    c = carrier(pool_mode=mode)
    keys = ["server_version", "server_encoding", "client_encoding",
            "standard_conforming_strings", "integer_datetimes", "DateStyle"]
    with pg.connect() as d, c.connect() as p:
        for k in keys:
            assert p.info.parameter_status(k) == d.info.parameter_status(k), k
        assert p.info.server_version == d.info.server_version
        # ParameterStatus sent by the server after the login is forwarded
        if mode != "statement":
            p.execute("SET application_name = 'pgc-param-test'")
            assert p.info.parameter_status("application_name") == "pgc-param-test"
            p.execute("RESET application_name")
            p.execute("SET DateStyle = 'SQL, DMY'")
            assert p.info.parameter_status("DateStyle") == "SQL, DMY"
            p.execute("RESET DateStyle")


# ---------------------------------------------------------------------------
# cancel
# ---------------------------------------------------------------------------

_cancel_seq = [0]


def _cancel_once(conn, pg, settle=0.2):
    """Run pg_sleep(30) on conn; once the server really executes it (seen in
    pg_stat_activity), cancel it with conn.cancel() from another thread.
    Returns seconds from the cancel request to the QueryCanceled error.
    Then waits ``settle`` seconds, so that a late duplicate of the cancel
    signal (see test_no_stray_cancel_after_cancel_returns) lands while the
    connection is idle and cannot disturb the caller's next query."""
    _cancel_seq[0] += 1
    marker = "pgc-cancel-%d-%d" % (os.getpid(), _cancel_seq[0])
    sent = []
    stop = threading.Event()

    def canceller():
        with pg.connect(db="postgres", user="postgres") as mon:
            deadline = time.monotonic() + 15
            while not stop.is_set() and time.monotonic() < deadline:
                n = mon.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                "AND query LIKE %s", ["%" + marker + "%"]).fetchone()[0]
                if n:
                    sent.append(time.monotonic())
                    conn.cancel()
                    return
                time.sleep(0.02)

    th = threading.Thread(target=canceller)
    th.start()
    try:
        with pytest.raises(pgerr.QueryCanceled) as ei:
            conn.execute("SELECT pg_sleep(30) /* %s */" % marker)
    finally:
        stop.set()
        th.join()
    assert ei.value.sqlstate == "57014"
    assert sent, ("the query was cancelled before this test's cancel request "
                  "was sent: a stray cancel from an earlier request")
    took = time.monotonic() - sent[0]
    time.sleep(settle)
    return took


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", MODES)
def test_cancel(carrier, pg, mode):
    c = carrier(pool_mode=mode)
    # several connections, so the clients and the cancel requests land on
    # both worker threads
    for i in range(8):
        with c.connect(unix=(i % 2 == 1)) as conn:
            took = _cancel_once(conn, pg)
            assert took < 5, "cancel took %.1fs" % took
            assert conn.execute("SELECT 'usable'").fetchone() == ("usable",)
            if mode != "statement":
                conn.autocommit = False
                took = _cancel_once(conn, pg)  # inside a transaction
                assert took < 5
                conn.rollback()
                conn.autocommit = True
            assert conn.execute("SELECT 2").fetchone() == (2,)


class CancelDelayProxy:
    """TCP proxy in front of the real server (for a pgcarrier [databases]
    entry).  Ordinary connections are piped through; on a CancelRequest it
    forwards the 16 bytes, waits until the server closes that connection,
    then keeps its own side open ``delay`` more seconds before closing, as a
    slow postmaster would."""

    def __init__(self, target_port, delay):
        import asyncio
        self.target_port, self.delay = target_port, delay
        self.cancels = []  # arrival times of CancelRequests
        self.port = None
        self._writers = []
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()
        self._ready.wait(10)

    def _run(self):
        import asyncio
        asyncio.set_event_loop(self._loop)

        async def pipe(r, w):
            try:
                while True:
                    d = await r.read(65536)
                    if not d:
                        break
                    w.write(d)
                    await w.drain()
            except Exception:
                pass
            finally:
                try:
                    w.close()
                except Exception:
                    pass

        async def handle(cr, cw):
            self._writers.append(cw)
            try:
                head = await cr.readexactly(8)
            except Exception:
                cw.close()
                return
            sr, sw = await asyncio.open_connection("127.0.0.1", self.target_port)
            self._writers.append(sw)
            if struct.unpack("!II", head)[1] == 80877102:
                self.cancels.append(time.monotonic())
                sw.write(head + await cr.readexactly(8))
                await sw.drain()
                await sr.read()  # until the server closes
                await asyncio.sleep(self.delay)
                sw.close()
                cw.close()
                return
            sw.write(head)
            await asyncio.gather(pipe(cr, sw), pipe(sr, cw))

        async def main():
            srv = await asyncio.start_server(handle, "127.0.0.1", 0)
            self.port = srv.sockets[0].getsockname()[1]
            self._ready.set()
            await asyncio.Event().wait()

        try:
            self._loop.run_until_complete(main())
        except Exception:
            pass

    def close(self):
        def shut():
            for w in self._writers:
                try:
                    w.transport.abort()
                except Exception:
                    pass
            self._loop.call_later(0.1, self._loop.stop)
        self._loop.call_soon_threadsafe(shut)
        self._th.join(5)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_cancel_returns_after_server_finished(carrier, pg, mode):
    """With PostgreSQL itself, when the client's cancel connection is closed
    the cancel has been delivered: the postmaster closes it only after
    signalling the backend (twice: the backend and its process group).  A
    pooler that closes the client's cancel connection earlier lets the
    client go on while the server still acts on the cancel, and a late
    signal then cancels the client's next query (in transaction mode:
    another client's).  So pgcarrier must answer the client's CancelRequest
    (close) only once the server has closed pgcarrier's cancel connection."""
    proxy = CancelDelayProxy(pg.port, delay=1.0)
    try:
        c = carrier(pool_mode=mode, extra_databases={
            "proxied": {"host": "127.0.0.1", "port": proxy.port, "dbname": "app"}})
        with c.connect(db="proxied") as conn:
            timings = []
            orig_cancel = conn.cancel

            def timed_cancel():
                t0 = time.monotonic()
                orig_cancel()
                timings.append(time.monotonic() - t0)

            conn.cancel = timed_cancel
            _cancel_once(conn, pg, settle=0)
            assert conn.execute("SELECT 'usable'").fetchone() == ("usable",)
        assert len(proxy.cancels) == 1
        assert timings[0] >= 0.9, (
            "conn.cancel() returned after %.3fs, before the server had closed "
            "the forwarded cancel connection (1.0s)" % timings[0])
    finally:
        proxy.close()


@pytest.mark.timeout(60)
def test_cancel_does_not_hit_other_clients(carrier, pg):
    """In transaction mode a client that holds no server sends cancels: they
    must not reach the server connection another client is using now."""
    c = carrier(pool_mode="transaction", pool_size=1)
    with c.connect() as a, c.connect() as b:
        a.execute("SELECT 1")  # a used the only server before b
        errors = []

        def run_b():
            try:
                b.execute("SELECT pg_sleep(1.5)")
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        th = threading.Thread(target=run_b)
        th.start()
        time.sleep(0.3)
        for _ in range(3):
            a.cancel()
            time.sleep(0.1)
        th.join(20)
        assert not th.is_alive()
        assert errors == []
        assert a.execute("SELECT 'a ok'").fetchone() == ("a ok",)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_asyncpg_timeout_cancels(carrier, pg, mode):
    import asyncio
    c = carrier(pool_mode=mode)

    async def main():
        conn = await c.aconnect()
        try:
            # warm up: server login done, so the timeout below fires while
            # pg_sleep runs (not during Parse, where PG may drop a cancel)
            assert await conn.fetchval("SELECT 1") == 1
            for _ in range(3):
                t0 = time.monotonic()
                with pytest.raises(asyncio.TimeoutError):
                    await conn.fetchval("SELECT pg_sleep(30)", timeout=1.0)
                assert time.monotonic() - t0 < 6
                assert await conn.fetchval("SELECT $1::int + 1", 1, timeout=10) == 2
        finally:
            await conn.close(timeout=5)

    asyncio.run(asyncio.wait_for(main(), 40))
    # nothing left running on the server
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if pg.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                  "'SELECT pg_sleep(30)%' AND state = 'active'") == "0":
            break
        time.sleep(0.1)
    else:
        raise AssertionError("pg_sleep still running on the server after cancel")


# ---------------------------------------------------------------------------
# logins to servers: trust (unix, tcp), md5, scram
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["session", "transaction"])
@pytest.mark.parametrize("method", ["trust-unix", "trust-tcp", "md5", "scram", "auth_file"])
def test_server_login(carrier, pg, mode, method):
    extra = {"tcptrust": {"host": "127.0.0.1", "port": pg.port, "dbname": "app"},
             "authf": {"host": "127.0.0.1", "port": pg.port, "dbname": "app"}}
    auth = {"scramuser": harness.SCRAM_PASSWORD, "md5user": harness.MD5_PASSWORD}
    c = carrier(pool_mode=mode, extra_databases=extra, auth_file=auth)
    db, user, expect = {
        "trust-unix": ("app", "app", "app"),
        "trust-tcp": ("tcptrust", "app", "app"),
        "md5": ("md5db", "app", "md5user"),
        "scram": ("scramdb", "app", "scramuser"),
        "auth_file": ("authf", "scramuser", "scramuser"),
    }[method]
    conns = [c.connect(db=db, user=user) for _ in range(4)]
    try:
        for i, conn in enumerate(conns):
            assert conn.execute("SELECT current_user, current_database(), %s::int",
                                [i]).fetchone() == (expect, "app", i)
    finally:
        for conn in conns:
            conn.close()
    if method == "auth_file":
        with c.connect(db="authf", user="md5user") as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("md5user",)


@pytest.mark.parametrize("user", ["md5user", "scramuser"])
def test_server_login_wrong_password(carrier, pg, user):
    extra = {"badpw": {"host": "127.0.0.1", "port": pg.port, "dbname": "app",
                       "user": user, "password": "wrong-password"}}
    c = carrier(pool_mode="transaction", extra_databases=extra)
    with RawConn(c.host, c.port) as r:
        msgs = r.startup("app", "badpw", raise_on_error=False)
        t, p = msgs[-1]
        assert t == "E", msgs
        f = parse_error(p)
        assert f["S"] == "FATAL" and f["C"] == "28P01", f
        assert "password authentication failed" in f["M"]
        assert "wrong-password" not in c.log()
    # the good databases still work
    with c.connect(db="md5db") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("md5user",)


# ---------------------------------------------------------------------------
# statement mode refuses transaction blocks
# ---------------------------------------------------------------------------

def test_statement_mode_refuses_transaction_block(carrier, pg):
    c = carrier(pool_mode="statement")
    tag = new_tag()
    with c.connect(autocommit=False) as conn:
        with pytest.raises(psycopg.Error) as ei:
            conn.execute("INSERT INTO scratch VALUES (%s, 1, 'x')", [tag])  # implicit BEGIN
        assert ei.value.sqlstate == "0A000"
        assert "transaction blocks are not allowed in statement pooling mode" in str(ei.value)
        conn.rollback()
        conn.autocommit = True
        assert conn.execute("SELECT 'goes on'").fetchone() == ("goes on",)
    with _raw_carrier(c) as r:
        m = r.query("BEGIN")
        errs = [parse_error(p) for t, p in m if t == "E"]
        assert errs and errs[0]["C"] == "0A000" and errs[0]["S"] == "ERROR"
        assert m[-1] == ("Z", b"I")
        assert _norm(r.query("SELECT 1"))[-1] == ("Z", b"I")
    assert pg.sql("SELECT count(*) FROM scratch WHERE client = %d" % tag, db="app") == "0"
    assert pg.sql("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'") == "0"
