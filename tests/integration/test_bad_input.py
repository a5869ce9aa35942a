"""Bad input: malformed, oversized, out-of-place and garbage bytes from
clients, before and after login, and floods of connections.

Each case must get the ErrorResponse listed in docs/behaviour.md (FATAL +
SQLSTATE) and then a closed connection, and nothing else: one daemon serves
the whole module, and two well-behaved psycopg clients (one idle, one inside
an open transaction) connected during each test must still work at its end.
The last test checks that, after all of it, the daemon still runs and its
server connections are healthy.
"""

import os
import random
import socket
import struct
import threading
import time
import uuid

import psycopg
import pytest

import harness
from harness import RawConn, cstr, parse_error

PROTO_30 = 3 << 16
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
POOL_SIZE = 4


# ---------------------------------------------------------------------------
# one daemon for the module, restarted if a test killed it
# ---------------------------------------------------------------------------

def _new_daemon(pg, pgc_bin):
    dbs = {k: v for k, v in harness.standard_databases(pg).items() if k != "*"}
    c = harness.Pgcarrier(pgc_bin, settings={
        "pool_mode": "transaction",
        "default_pool_size": POOL_SIZE,
        "max_client_conn": 2000,
        "client_login_timeout": 5,
    }, databases=dbs)
    c.start()
    return c


@pytest.fixture(scope="module")
def daemon(pgc_bin, pg):
    holder = {"c": _new_daemon(pg, pgc_bin), "dead": []}
    yield holder
    problems = []
    for c in holder["dead"] + [holder["c"]]:
        try:
            c.cleanup(check=True)
        except harness.HarnessError as e:
            problems.append(str(e))
    harness.wait_no_backends(pg, 10)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def own_daemon(pg, pgc_bin):
    """Factory for a daemon of the test's own (with '*' or other settings).
    Not the conftest ``carrier`` fixture: its teardown waits for the server
    to have no pgcarrier backends, which the module daemon never allows."""
    made = []

    def make(**settings):
        conf = {"pool_mode": "transaction", "default_pool_size": 2,
                "max_client_conn": 2000}
        conf.update(settings)
        c = harness.Pgcarrier(pgc_bin, settings=conf,
                              databases=harness.standard_databases(pg))
        made.append(c)
        c.start()
        return c

    yield make
    problems = []
    for c in made:
        try:
            c.cleanup(check=True)
        except harness.HarnessError as e:
            problems.append(str(e))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def pgc(daemon, pg, pgc_bin):
    """The module's daemon, with two bystander clients checked at the end."""
    c = daemon["c"]
    if not c.running:
        daemon["dead"].append(c)
        c = daemon["c"] = _new_daemon(pg, pgc_bin)
    idle = c.connect()
    assert idle.execute("SELECT 1").fetchone()[0] == 1
    intx = c.connect()
    intx.execute("BEGIN")
    intx.execute("SELECT count(*) FROM items").fetchone()
    yield c
    try:
        if not c.running:
            pytest.fail("pgcarrier died during the test (exit %s); log tail:\n%s"
                        % (c.proc.returncode, c.log()[-3000:]), pytrace=False)
        try:
            assert intx.execute("SELECT count(*) FROM items").fetchone()[0] == 100
            intx.execute("COMMIT")
            assert idle.execute("SELECT 2").fetchone()[0] == 2
            with c.connect() as fresh:
                assert fresh.execute("SELECT 3").fetchone()[0] == 3
        except psycopg.Error as e:
            pytest.fail("a well-behaved client connected during the test broke: "
                        "%r\nlog tail:\n%s" % (e, c.log()[-3000:]), pytrace=False)
    finally:
        idle.close()
        intx.close()


# ---------------------------------------------------------------------------
# raw protocol helpers
# ---------------------------------------------------------------------------

def raw(c, timeout=5):
    return RawConn(c.host, c.port, timeout=timeout)


def startup_packet(params, version=PROTO_30, terminator=True):
    body = struct.pack("!I", version)
    for k, v in params.items():
        body += cstr(k) + cstr(v)
    if terminator:
        body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def login(c, timeout=5, **params):
    rc = raw(c, timeout)
    p = dict(user="app", database="app")
    p.update(params)
    rc.send_raw(startup_packet(p))
    for t, payload in iter(rc.recv, None):
        if t == "E":
            pytest.fail("login failed: %r" % parse_error(payload))
        if t == "Z":
            return rc


def query_ok(rc, sql="SELECT 1"):
    msgs = rc.query(sql)
    errs = [parse_error(p) for t, p in msgs if t == "E"]
    assert not errs, errs
    return [harness.data_row(p) for t, p in msgs if t == "D"]


def assert_closed(sock, timeout=5.0, after="the FATAL error"):
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except socket.timeout:
        pytest.fail("connection still open %.1f s after %s" % (timeout, after))
    except ConnectionResetError:
        return
    assert data == b"", "unexpected data after %s: %r" % (after, data[:80])


def expect_fatal(rc, code, message=None, timeout=5.0):
    """The next backend message is a FATAL ErrorResponse with this SQLSTATE
    (and message text, if given); then the connection is closed."""
    rc.sock.settimeout(timeout)
    while True:
        try:
            t, p = rc.recv()
        except socket.timeout:
            pytest.fail("no ErrorResponse %s within %.1f s" % (code, timeout))
        except (EOFError, ConnectionResetError):
            pytest.fail("connection closed without an ErrorResponse (expected %s)"
                        % code)
        if t == "N":
            continue
        assert t == "E", "expected ErrorResponse %s, got message %r %r" % (
            code, t, p[:80])
        break
    f = parse_error(p)
    assert f.get("V", f.get("S")) == "FATAL", f
    assert f.get("C") == code, "expected SQLSTATE %s, got %r" % (code, f)
    if message is not None:
        assert message in f.get("M", ""), "expected message %r, got %r" % (
            message, f.get("M"))
    assert_closed(rc.sock, timeout)
    return f


def expect_close_or_fatal(rc, code, timeout=5.0):
    """Either just closed, or a FATAL with this SQLSTATE and then closed."""
    rc.sock.settimeout(timeout)
    try:
        data = rc.sock.recv(1)
    except socket.timeout:
        pytest.fail("connection neither answered nor closed within %.1f s" % timeout)
    except ConnectionResetError:
        return None
    if data == b"":
        return None
    rc.buf = data
    return expect_fatal(rc, code, timeout=timeout)


def rst_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def stuck_in_transaction(pg):
    return int(pg.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND state LIKE 'idle in transaction%' "
        "AND coalesce(application_name, '') NOT LIKE 'pgc-direct%' "
        "AND coalesce(application_name, '') NOT LIKE 'pgc-harness%'"))


def marker(tag):
    return "bi-%s-%s" % (tag, uuid.uuid4().hex[:12])


# ---------------------------------------------------------------------------
# startup phase
# ---------------------------------------------------------------------------

# Each edge of the startup phase is compared with a direct connection to
# PostgreSQL (its ProcessStartupPacket): faults it only logs (COMMERROR)
# close the connection without a word; the others get a FATAL.  Steps are
# sent one by one, each after the answer to the one before had time to come.
SHUT = "shut"           # a step: half-close (FIN) instead of more bytes
PAUSE = 0.15


def startup_exchange(host, port, steps, timeout=3.0):
    """Run steps against a server; returns (answers, error, ending):
    answers the one-byte replies to SSLRequest/GSSENCRequest, error the
    ErrorResponse that came (its S/V/C/M fields: PostgreSQL's F/L/R name
    its own source lines) or, for the pre-3.0 format, its text; ending
    'closed' or 'open' (still open after timeout)."""
    s = socket.create_connection((host, port), timeout=timeout)
    data = b""
    ending = "closed"
    try:
        for step in steps:
            if step == SHUT:
                s.shutdown(socket.SHUT_WR)
            else:
                s.sendall(step)
            time.sleep(PAUSE)
        s.settimeout(timeout)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        ending = "open"
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    answers = b""
    while data[:1] in (b"N", b"S", b"G"):
        answers += data[:1]
        data = data[1:]
    error = None
    if data[:1] == b"E" and len(data) >= 5 and data[1:5] == struct.pack("!I", len(data) - 1):
        f = parse_error(data[5:])
        error = {k: f.get(k) for k in "SVCM"}
    elif data:
        error = data        # pre-3.0 'E' + text, compared byte for byte
    return answers, error, ending


def _start(params=None, version=PROTO_30, terminator=True):
    return startup_packet(params if params is not None else {"user": "app", "database": "app"},
                          version, terminator)


def _padded(length):
    """A startup packet of exactly this length: valid up to its padding."""
    head = struct.pack("!I", length) + struct.pack("!I", PROTO_30) + b"user\0app\0"
    return head + b"\0" * max(0, length - len(head))


SSL = struct.pack("!II", 8, SSL_REQUEST)
GSS = struct.pack("!II", 8, GSSENC_REQUEST)

# (id, steps): compared with PostgreSQL itself.
STARTUP_EDGES = [
    ("eof-at-once", [SHUT]),
    ("terminate-instead-of-startup", [b"X\0\0\0\x04"]),
    ("partial-length-word", [b"\0\0", SHUT]),
    ("length-4", [struct.pack("!I", 4)]),
    ("length-7", [struct.pack("!I", 7) + b"\x00\x03\x00"]),
    ("length-10004-is-a-length", [_padded(10004)]),
    ("length-10005", [_padded(10005)]),
    ("length-2^31", [struct.pack("!I", 2 ** 31) + struct.pack("!I", PROTO_30)]),
    ("length-ffffffff", [struct.pack("!I", 0xFFFFFFFF) + struct.pack("!I", PROTO_30)]),
    ("http-request", [b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"]),
    ("garbage-ff", [b"\xff" * 64]),
    ("incomplete-packet", [_start()[:10], SHUT]),
    ("no-terminator", [_start(terminator=False)]),
    ("protocol-2.0", [_start(version=2 << 16)]),
    ("protocol-4.0", [_start(version=4 << 16)]),
    ("no-user", [_start({"database": "app"})]),
    ("ssl-request-twice", [SSL, SSL]),
    ("data-after-ssl-request", [SSL + _start()]),
    ("ssl-request-of-12-bytes", [struct.pack("!III", 12, SSL_REQUEST, 0)]),
    ("cancel-request-of-12-bytes", [struct.pack("!III", 12, CANCEL_REQUEST, 1)]),
    ("cancel-request-of-20-bytes", [struct.pack("!IIIII", 20, CANCEL_REQUEST, 1, 2, 3)]),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("steps", [e[1] for e in STARTUP_EDGES], ids=[e[0] for e in STARTUP_EDGES])
def test_startup_edge_as_postgres(pgc, pg, steps):
    want = startup_exchange(pg.host, pg.port, steps)
    got = startup_exchange(pgc.host, pgc.port, steps)
    assert got == want, "PostgreSQL: %r\npgcarrier:  %r" % (want, got)


# GSSENCRequest: this PostgreSQL has GSSAPI and answers 'G', pgcarrier has
# none and answers 'N', as a PostgreSQL without it would; what follows is
# then what ProcessStartupPacket does after an 'N' (read from its source):
# a second request of a kind already answered reads as a protocol version,
# and bytes sent before the answer are refused.
GSS_EDGES = [
    ("gss-request-twice", [GSS, GSS],
     (b"N", {"S": "FATAL", "V": "FATAL", "C": "0A000",
             "M": "unsupported frontend protocol 1234.5680: server supports 3.0 to 3.0"}, "closed")),
    ("data-after-gss-request", [GSS + _start()],
     (b"N", {"S": "FATAL", "V": "FATAL", "C": "08P01",
             "M": "received unencrypted data after GSSAPI encryption request"}, "closed")),
    ("ssl-gss-ssl", [SSL, GSS, SSL],
     (b"NN", {"S": "FATAL", "V": "FATAL", "C": "0A000",
              "M": "unsupported frontend protocol 1234.5679: server supports 3.0 to 3.0"}, "closed")),
    ("gss-ssl-gss", [GSS, SSL, GSS],
     (b"NN", {"S": "FATAL", "V": "FATAL", "C": "0A000",
              "M": "unsupported frontend protocol 1234.5680: server supports 3.0 to 3.0"}, "closed")),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("steps,want", [e[1:] for e in GSS_EDGES], ids=[e[0] for e in GSS_EDGES])
def test_startup_gss_edge(pgc, steps, want):
    assert startup_exchange(pgc.host, pgc.port, steps) == want


@pytest.mark.timeout(30)
def test_gss_then_ssl_refused_then_login(pgc):
    """After 'N' to both requests, the client may still log in in clear text."""
    rc = raw(pgc)
    for req in (GSS, SSL):
        rc.send_raw(req)
        assert rc.sock.recv(1) == b"N"
    rc.send_raw(_start())
    for t, p in iter(rc.recv, None):
        assert t != "E", parse_error(p)
        if t == "Z":
            break
    assert query_ok(rc, "SELECT 7") == [[b"7"]]
    rc.close()


@pytest.mark.timeout(30)
def test_silent_startup_faults_are_logged_not_flooded(pgc):
    """The faults that close silently are logged, rate-limited: 200 of them
    make a handful of lines at most, and the daemon serves on."""
    before = pgc.log().count("invalid length of startup packet")
    for _ in range(200):
        with socket.create_connection((pgc.host, pgc.port), timeout=5) as s:
            s.sendall(b"X\0\0\0\x04")
            s.settimeout(5)
            try:
                assert s.recv(1) == b""
            except ConnectionResetError:
                pass
    lines = pgc.log().count("invalid length of startup packet") - before
    assert lines <= 20, "%d log lines for 200 bad startup packets" % lines
    assert "invalid length of startup packet" in pgc.log()


@pytest.mark.timeout(30)
def test_startup_without_terminator(pgc):
    rc = raw(pgc)
    rc.send_raw(startup_packet({"user": "app", "database": "app"}, terminator=False))
    expect_fatal(rc, "08P01",
                 "invalid startup packet layout: expected terminator as last byte")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("minor,options", [
    (1, {"_pq_.foo": "bar"}),
    (0, {"_pq_.foo": "bar", "_pq_.other": "1"}),
    (1, {}),
])
def test_negotiate_protocol_version(pgc, minor, options):
    rc = raw(pgc)
    params = {"user": "app", "database": "app"}
    params.update(options)
    rc.send_raw(startup_packet(params, version=(3 << 16) | minor))
    t, p = rc.recv()
    assert t == "v", "expected NegotiateProtocolVersion first, got %r %r" % (t, p[:80])
    newest, n = struct.unpack("!II", p[:8])
    names = [x.decode() for x in p[8:].split(b"\0")[:n]]
    # the field is documented as "newest minor version"; PostgreSQL itself
    # sends the whole version number (3 << 16): both mean 3.0
    assert newest in (0, PROTO_30), \
        "NegotiateProtocolVersion should offer 3.0, got %#x" % newest
    assert sorted(names) == sorted(options), names
    # then the login goes on normally
    seen = set()
    while True:
        t, p = rc.recv()
        seen.add(t)
        assert t != "E", parse_error(p)
        if t == "R":
            assert struct.unpack("!I", p[:4])[0] == 0, "expected AuthenticationOk"
        if t == "Z":
            break
    assert "R" in seen and "K" in seen, seen
    assert query_ok(rc, "SELECT 41 + 1") == [[b"42"]]
    rc.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("code", [SSL_REQUEST, GSSENC_REQUEST],
                         ids=["SSLRequest", "GSSENCRequest"])
def test_encryption_request_refused_then_login(pgc, code):
    rc = raw(pgc)
    rc.send_raw(struct.pack("!II", 8, code))
    rc.sock.settimeout(5)
    b = rc.sock.recv(1)
    assert b == b"N", "expected 'N', got %r" % b
    rc.send_raw(startup_packet({"user": "app", "database": "app"}))
    for t, p in iter(rc.recv, None):
        assert t != "E", parse_error(p)
        if t == "Z":
            break
    assert query_ok(rc, "SELECT count(*) FROM items") == [[b"100"]]
    rc.close()


@pytest.mark.timeout(30)
def test_cancel_request_unknown_key_has_no_effect(pgc):
    victim = pgc.connect()
    out = {}

    def run():
        try:
            victim.execute("SELECT pg_sleep(1.5)")
            out["ok"] = True
        except psycopg.Error as e:
            out["error"] = e

    th = threading.Thread(target=run, daemon=True)
    th.start()
    time.sleep(0.3)
    rnd = random.Random(4242)
    for _ in range(5):
        rc = raw(pgc)
        rc.send_raw(struct.pack("!IIII", 16, CANCEL_REQUEST,
                                rnd.getrandbits(31), rnd.getrandbits(32)))
        assert_closed(rc.sock, 5, after="a CancelRequest")
    th.join(10)
    assert not th.is_alive()
    assert out.get("ok"), "a CancelRequest with an unknown key cancelled " \
                          "someone's query: %r" % out.get("error")
    victim.close()


@pytest.mark.timeout(30)
def test_no_user(pgc):
    rc = raw(pgc)
    rc.send_raw(startup_packet({"database": "app"}))
    expect_fatal(rc, "28000", "no PostgreSQL user name specified in startup packet")


@pytest.mark.timeout(30)
def test_unknown_database(pgc):
    rc = raw(pgc)
    rc.send_raw(startup_packet({"user": "app", "database": "bi_nosuchdb"}))
    expect_fatal(rc, "3D000", 'database "bi_nosuchdb" does not exist')


@pytest.mark.timeout(30)
def test_unknown_database_behind_wildcard(own_daemon):
    """With a '*' entry the name goes to the server, whose 3D000 the client
    gets (at login or at its first query), as FATAL, then a closed socket."""
    c = own_daemon()
    rc = raw(c)
    rc.send_raw(startup_packet({"user": "app", "database": "bi_nosuchdb2"}))
    rc.sock.settimeout(10)
    while True:
        t, p = rc.recv()
        if t in ("E", "Z"):
            break
    if t == "Z":
        rc.send("Q", cstr("SELECT 1"))
    else:
        rc.buf = bytes([ord(t)]) + struct.pack("!I", len(p) + 4) + p + rc.buf
    expect_fatal(rc, "3D000", 'database "bi_nosuchdb2" does not exist', timeout=10)
    with c.connect() as ok:
        assert ok.execute("SELECT 1").fetchone()[0] == 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize("value", ["database", "true", "1"])
def test_replication_refused(pgc, value):
    rc = raw(pgc)
    rc.send_raw(startup_packet({"user": "app", "database": "app",
                                "replication": value}))
    expect_fatal(rc, "0A000",
                 "replication connections are not supported by pgcarrier")


# ---------------------------------------------------------------------------
# after login
# ---------------------------------------------------------------------------

def _open_tx_with_row(rc, val):
    """BEGIN + INSERT on rc; returns the server backend pid it is linked to."""
    query_ok(rc, "BEGIN")
    query_ok(rc, "INSERT INTO scratch(client, seq, val) VALUES (9, 1, '%s')" % val)
    return int(query_ok(rc, "SELECT pg_backend_pid()")[0][0])


def _assert_rolled_back(pg, val, pid):
    """The dropped client's backend is no longer inside its transaction
    (rolled back, or closed) and the row never became visible."""
    def state():
        return pg.sql("SELECT coalesce(max(state), 'gone') FROM pg_stat_activity "
                      "WHERE pid = %d" % pid)
    deadline = time.monotonic() + 5
    while state().startswith("idle in transaction") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not state().startswith("idle in transaction"), (
        "backend %d of the dropped client is left idle in transaction" % pid)
    assert int(pg.sql("SELECT count(*) FROM scratch WHERE val = '%s'" % val,
                      db="app")) == 0, "transaction of a dropped client committed"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("length", [0, 3])
@pytest.mark.parametrize("in_tx", [False, True], ids=["idle", "in-tx"])
def test_message_length_too_small(pgc, pg, length, in_tx):
    rc = login(pgc)
    val = marker("len%d" % length)
    pid = _open_tx_with_row(rc, val) if in_tx else None
    rc.send_raw(b"Q" + struct.pack("!I", length))
    expect_fatal(rc, "08P01", "invalid message length")
    if in_tx:
        _assert_rolled_back(pg, val, pid)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("length", [2 ** 31, 0xFFFFFFFF, (1 << 30) + 4])
@pytest.mark.parametrize("in_tx", [False, True], ids=["idle", "in-tx"])
def test_message_length_too_large(pgc, pg, length, in_tx):
    rc = login(pgc)
    val = marker("big")
    pid = _open_tx_with_row(rc, val) if in_tx else None
    rc.send_raw(b"Q" + struct.pack("!I", length) + b"SELECT 1")
    expect_fatal(rc, "08P01", "invalid message length")
    if in_tx:
        _assert_rolled_back(pg, val, pid)


@pytest.mark.timeout(30)
def test_max_packet_size_setting(own_daemon):
    c = own_daemon(max_packet_size=65536)
    rc = login(c)
    sql = "SELECT length('%s')" % ("x" * 60000)
    assert query_ok(rc, sql) == [[b"60000"]]
    # the header alone is enough to refuse: the body is never sent
    rc.send_raw(b"Q" + struct.pack("!I", 200000))
    expect_fatal(rc, "08P01", "invalid message length")
    with c.connect() as ok:
        assert ok.execute("SELECT 1").fetchone()[0] == 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mtype", [b"!", b"\x00", b"Z", b"\xff"],
                         ids=["bang", "nul", "Z", "ff"])
@pytest.mark.parametrize("in_tx", [False, True], ids=["idle", "in-tx"])
def test_unknown_message_type(pgc, pg, mtype, in_tx):
    rc = login(pgc)
    val = marker("type")
    pid = _open_tx_with_row(rc, val) if in_tx else None
    rc.send_raw(mtype + struct.pack("!I", 4))
    expect_fatal(rc, "08P01", "invalid frontend message type %d" % mtype[0])
    if in_tx:
        _assert_rolled_back(pg, val, pid)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("where", ["startup", "after-login", "in-tx", "in-tx-rst"])
def test_half_message_then_disconnect(pgc, pg, where):
    val = marker("half")
    if where == "startup":
        rc = raw(pgc)
        pkt = startup_packet({"user": "app", "database": "app"})
        rc.send_raw(pkt[:len(pkt) // 2])
        time.sleep(0.1)
        rc.sock.close()
        return
    rc = login(pgc)
    pid = _open_tx_with_row(rc, val) if where.startswith("in-tx") else None
    body = cstr("SELECT 'this query never completes'")
    rc.send_raw(b"Q" + struct.pack("!I", len(body) + 4) + body[:10])
    time.sleep(0.2)
    if where.endswith("rst"):
        rst_close(rc.sock)
    else:
        rc.sock.close()
    if pid is not None:
        _assert_rolled_back(pg, val, pid)


@pytest.mark.timeout(30)
def test_garbage_after_login(pgc):
    rc = login(pgc)
    rc.send_raw(b"\xff" * 64)
    expect_fatal(rc, "08P01", "invalid frontend message type 255")


@pytest.mark.timeout(60)
def test_random_garbage_fuzz(pgc):
    """Seeded random bytes, before and after login, then a close (FIN or
    RST): no answer is required, only that nothing breaks."""
    rnd = random.Random(20240601)
    for i in range(80):
        after_login = i % 2 == 1
        try:
            rc = login(pgc) if after_login else raw(pgc)
            n = rnd.randint(1, 300)
            rc.send_raw(bytes(rnd.getrandbits(8) for _ in range(n)))
        except (OSError, EOFError):
            continue
        time.sleep(0.005)
        if i % 3 == 0:
            rst_close(rc.sock)
        else:
            rc.sock.close()
    assert pgc.running


@pytest.mark.timeout(60)
def test_connection_flood(pgc, pg):
    """200 connections opened and closed at once, 100 that send a startup
    packet and go, 50 that log in and reset: the daemon's fds come back to
    where they were, and it serves normally."""
    base = fd_count(pgc.pid)
    socks = []
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect((pgc.host, pgc.port))
        socks.append(s)
    for i, s in enumerate(socks):
        if i % 2:
            rst_close(s)
        else:
            s.close()
    pkt = startup_packet({"user": "app", "database": "app"})
    for _ in range(100):
        with socket.create_connection((pgc.host, pgc.port), timeout=5) as s:
            s.sendall(pkt)
    for i in range(50):
        rc = login(pgc)
        if i % 2:
            rst_close(rc.sock)
        else:
            rc.close()
    # the daemon gets back to (about) the descriptors it had
    deadline = time.monotonic() + 10
    while fd_count(pgc.pid) > base + 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert fd_count(pgc.pid) <= base + 5, (
        "descriptor leak: %d fds before the flood, %d after"
        % (base, fd_count(pgc.pid)))
    with pgc.connect() as ok:
        assert ok.execute("SELECT count(*) FROM items").fetchone()[0] == 100
    assert harness.server_backends(pg, db="app") <= POOL_SIZE


# ---------------------------------------------------------------------------
# after all of the above
# ---------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_zz_daemon_healthy_after_all(daemon, pg):
    c = daemon["c"]
    assert not daemon["dead"], "the daemon died during this module: see the " \
                               "tests whose teardown failed"
    assert c.running
    with c.connect() as x:
        assert x.execute("SELECT count(*) FROM items").fetchone()[0] == 100
        x.execute("BEGIN")
        x.execute("SELECT 1")
        x.execute("COMMIT")
    time.sleep(0.3)
    assert stuck_in_transaction(pg) == 0, pg.sql(
        "SELECT string_agg(pid || ':' || state || ':' || query, E'\\n') "
        "FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'")
    assert harness.server_backends(pg, db="app") <= POOL_SIZE
    # every server connection it holds answers
    conns = [c.connect() for _ in range(POOL_SIZE + 2)]
    for i, x in enumerate(conns):
        assert x.execute("SELECT %s::int", (i,)).fetchone()[0] == i
    for x in conns:
        x.close()
    log = c.log()
    assert "Sanitizer" not in log and "runtime error:" not in log
