"""TLS on both sides of pgcarrier, against a real PostgreSQL 15 and real
clients (libpq through psycopg and psql, asyncpg, Python's ssl module).

Certificates are made here with the openssl command line (module fixture
``certs``): a CA, a server certificate for localhost / 127.0.0.1, a second
server certificate for another name (verify-full failures), client
certificates CN=app and CN=other, and a CN=app certificate from a second,
untrusted CA.  A second PostgreSQL (module fixture ``tls_pg``) runs with
ssl = on and only accepts TLS over TCP (hostssl), so that the server side
can be checked from PostgreSQL's own pg_stat_ssl.

Covered:
  - client_tls_sslmode (pgcarrier) x sslmode (libpq): who gets TLS, who is
    refused and with what;
  - cert authentication (auth_type = cert, HBA cert lines), hostssl /
    hostnossl in the HBA file;
  - SCRAM-SHA-256-PLUS (tls-server-end-point): libpq's channel_binding, and
    a SCRAM client of our own to check that bad binding data, a downgrade
    ('y' flag) and PLUS over plain TCP are refused;
  - server_tls_sslmode against PostgreSQL with and without ssl, certificate
    checks (verify-ca, verify-full), a client certificate towards the
    server, protocol versions;
  - data integrity with TLS on both sides in transaction pooling (psycopg
    threads with large results and COPY, asyncpg prepared statements, a
    pipeline);
  - handshakes that stall (client_login_timeout), SSLRequest on the Unix
    socket, bytes after SSLRequest, GSSENCRequest then SSLRequest, cancel
    requests, a TLS client that vanishes mid-transaction;
  - configuration errors at start and at reload.

Two tests here first found pgcarrier bugs, since fixed: SCRAM errors with a
DETAIL never reached the client (test_scram_downgrade_flag_refused), and
SIGINT waited for clients still in the handshake or login
(test_sigint_does_not_wait_for_stalled_login).
"""

import asyncio
import base64
import ctypes
import ctypes.util
import gc
import hashlib
import hmac
import os
import pwd
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import psycopg
import pytest

import harness
from test_auth import scram_secret

PW = "tls-s3cret-pw"
SSL_REQUEST = struct.pack("!II", 8, 80877103)
GSSENC_REQUEST = struct.pack("!II", 8, 80877104)


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------

class Certs:
    def __init__(self, d):
        self.dir = d

    def __getattr__(self, name):
        # certs.server_crt -> <dir>/server.crt, certs.app_key -> <dir>/app.key
        if "_" not in name:
            raise AttributeError(name)
        base, ext = name.rsplit("_", 1)
        return os.path.join(self.dir, "%s.%s" % (base, ext))


def _openssl(d, *args):
    r = subprocess.run(["openssl"] + list(args), cwd=d, capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise harness.HarnessError("openssl %s failed: %s" % (" ".join(args), r.stderr))


def _make_ca(d, name, cn):
    _openssl(d, "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
             "-out", name + ".crt", "-days", "30", "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def _make_leaf(d, name, ca, cn, san=None):
    _openssl(d, "req", "-new", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
             "-out", name + ".csr", "-subj", "/CN=" + cn)
    ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    if san:
        ext += "subjectAltName=%s\n" % san
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext)
    _openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt",
             "-CAkey", ca + ".key", "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
             "-out", name + ".crt", "-days", "30", "-sha256", "-extfile", name + ".ext")


@pytest.fixture(scope="module")
def certs():
    d = tempfile.mkdtemp(prefix="pgc-tls-certs-")
    os.chmod(d, 0o755)
    try:
        _make_ca(d, "ca", "pgcarrier test CA")
        _make_ca(d, "ca2", "pgcarrier untrusted CA")
        _make_leaf(d, "server", "ca", "localhost", "DNS:localhost,IP:127.0.0.1")
        _make_leaf(d, "wrong", "ca", "wrong.example", "DNS:wrong.example")
        _make_leaf(d, "app", "ca", "app")
        _make_leaf(d, "other", "ca", "other")
        _make_leaf(d, "rogue", "ca2", "app")
        for f in os.listdir(d):
            os.chmod(os.path.join(d, f), 0o600 if f.endswith(".key") else 0o644)
        yield Certs(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------
# A PostgreSQL with ssl = on that takes TCP connections over TLS only
# ---------------------------------------------------------------------------

TLS_PG_HBA = """# written by test_tls.py
local   all       all                  trust
hostssl postgres  app   127.0.0.1/32   cert
hostssl all       all   127.0.0.1/32   trust
"""


def _pg_set(server, **settings):
    """ALTER SYSTEM + reload on a PgServer."""
    stmts = "".join("ALTER SYSTEM SET %s = '%s';\n" % (k, v) for k, v in settings.items())
    server.sql(stmts + "SELECT pg_reload_conf();")


@pytest.fixture(scope="module")
def tls_pg(certs):
    srv = harness.PgServer("tlspg")
    try:
        pw = pwd.getpwnam("postgres")
        for name in ("server.crt", "server.key", "wrong.crt", "wrong.key", "ca.crt"):
            dst = os.path.join(srv.datadir, name)
            shutil.copy(os.path.join(certs.dir, name), dst)
            os.chown(dst, pw.pw_uid, pw.pw_gid)
            os.chmod(dst, 0o600)
        with open(os.path.join(srv.datadir, "postgresql.conf"), "a") as f:
            f.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                    "ssl_ca_file = 'ca.crt'\n")
        with open(os.path.join(srv.datadir, "pg_hba.conf"), "w") as f:
            f.write(TLS_PG_HBA)
        srv.restart()
        # The setup is what the tests rely on: TLS works directly, plain TCP does not.
        with srv.connect(sslmode="verify-full", sslrootcert=certs.ca_crt,
                         host="localhost", hostaddr="127.0.0.1") as conn:
            assert conn.pgconn.ssl_in_use
        with pytest.raises(psycopg.OperationalError, match="no pg_hba.conf entry"):
            srv.connect(sslmode="disable").close()
        yield srv
    finally:
        srv.cleanup()


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def client_tls(certs, mode="require", ca=False, **extra):
    """[pgcarrier] settings for TLS towards clients."""
    d = {"client_tls_sslmode": mode,
         "client_tls_cert_file": certs.server_crt,
         "client_tls_key_file": certs.server_key}
    if ca:
        d["client_tls_ca_file"] = certs.ca_crt
    d.update(extra)
    return d


def dsn(c, db="app", user="app", **kw):
    """libpq DSN for pgcarrier c with host=localhost (for verify-full) and
    hostaddr=127.0.0.1; keywords None are left out."""
    params = dict(host="localhost", hostaddr="127.0.0.1", port=c.port, dbname=db,
                  user=user, connect_timeout=10)
    params.update(kw)
    out = []
    for k, v in params.items():
        if v is not None:
            v = str(v)
            if v == "" or any(ch in v for ch in " '\\"):
                v = "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
            out.append("%s=%s" % (k, v))
    return " ".join(out)


def tls_connect(c, db="app", user="app", sslmode="require", cert=None, certs=None,
                root=None, autocommit=True, **kw):
    """psycopg connection to c. cert: 'app', 'other', 'rogue' or None."""
    if cert:
        kw["sslcert"] = os.path.join(certs.dir, cert + ".crt")
        kw["sslkey"] = os.path.join(certs.dir, cert + ".key")
    if root:
        kw["sslrootcert"] = root
    return psycopg.connect(dsn(c, db, user, sslmode=sslmode, **kw),
                           autocommit=autocommit, prepare_threshold=None)


def refused(fn, *args, **kw):
    """The error text of a connection attempt that must fail."""
    try:
        conn = fn(*args, **kw)
    except psycopg.OperationalError as e:
        text = str(e)
    else:
        conn.close()
        pytest.fail("the connection was accepted: %r %r" % (args, kw))
    # The failed libpq connection (and its socket) lives as long as the
    # exception's traceback: free it now, or pgcarrier keeps a client that
    # is still "logging in" (see test_sigint_does_not_wait_for_stalled_login).
    gc.collect()
    return text


_libpq = None


def ssl_attr(conn, name):
    """libpq's PQsslAttribute(conn, name), e.g. 'protocol', 'cipher'."""
    global _libpq
    if _libpq is None:
        _libpq = ctypes.CDLL(ctypes.util.find_library("pq") or "libpq.so.5")
        _libpq.PQsslAttribute.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        _libpq.PQsslAttribute.restype = ctypes.c_char_p
    v = _libpq.PQsslAttribute(conn.pgconn.pgconn_ptr, name.encode())
    return v.decode() if v is not None else None


def backend_ssl(conn):
    """(ssl, version) of the PostgreSQL backend this connection reaches."""
    return conn.execute("SELECT ssl, version FROM pg_stat_ssl "
                        "WHERE pid = pg_backend_pid()").fetchone()


def no_verify_ctx(cert=None, certs=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(os.path.join(certs.dir, cert + ".crt"),
                            os.path.join(certs.dir, cert + ".key"))
    return ctx


def raw_tls(c, ctx=None, timeout=10):
    """harness.RawConn to c's TCP port, switched to TLS after SSLRequest."""
    rc = harness.RawConn(c.host, c.port, timeout=timeout)
    rc.send_raw(SSL_REQUEST)
    assert rc.sock.recv(1) == b"S"
    rc.sock = (ctx or no_verify_ctx()).wrap_socket(rc.sock)
    return rc


def expect_fatal_then_close(rc, sqlstate, message):
    """The next message on raw connection rc is this FATAL error, then the end."""
    t, p = rc.recv()
    assert t == "E", (t, p)
    f = harness.parse_error(p)
    assert (f["S"], f["C"], f["M"]) == ("FATAL", sqlstate, message)
    assert read_until_closed(rc.sock) == b""


def read_until_closed(sock, limit=1 << 20):
    """Everything the peer sends until it closes (socket timeout = hang guard)."""
    data = b""
    while len(data) < limit:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def reload_and_wait(c, settings=None, **overrides):
    """SIGHUP with new settings; wait (bounded) until the log says whether
    the config was taken. True if reloaded, False if refused."""
    def counts():
        log = c.log()
        return log.count("configuration reloaded"), log.count("configuration not reloaded")

    before = counts()
    c.reload(settings, wait=0, **overrides)
    for _ in range(400):
        now = counts()
        if now != before:
            return now[0] > before[0]
        time.sleep(0.025)
    pytest.fail("pgcarrier did not log the outcome of a reload")


# ---------------------------------------------------------------------------
# 1. client_tls_sslmode x libpq sslmode
# ---------------------------------------------------------------------------

PGC_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
LIBPQ_MODES = ["disable", "prefer", "require", "verify-ca", "verify-full"]


def _expected(pgc_mode, libpq_mode):
    if pgc_mode == "disable":
        return "plain" if libpq_mode in ("disable", "prefer") else "no-ssl"
    if libpq_mode == "disable":
        return "plain" if pgc_mode in ("allow", "prefer") else "requires-tls"
    return "tls"


def _check_unix_socket(c):
    """Unix-socket clients never get TLS and are never refused for it."""
    for mode in ("disable", "prefer", "require"):
        # libpq does not try TLS over a Unix socket, even with require
        with psycopg.connect(c.unix_dsn(sslmode=mode), autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert not conn.pgconn.ssl_in_use
    # A raw SSLRequest on the Unix socket is answered 'N', and the client
    # may go on in clear text on the same connection.
    rc = harness.RawConn(c.sockdir, c.port)
    try:
        rc.send_raw(SSL_REQUEST)
        assert rc.sock.recv(1) == b"N"
        rc.startup("app", "app")
        assert harness.data_row(dict(rc.query("SELECT 7"))["D"]) == [b"7"]
    finally:
        rc.close()


def _check_client_certificate_required(c, certs):
    """verify-ca / verify-full: the handshake itself fails without a client
    certificate, or with one from an unknown CA; the CN does not matter."""
    for cert, alert in ((None, "alert certificate required"), ("rogue", "alert unknown ca")):
        text = refused(tls_connect, c, sslmode="require", cert=cert, certs=certs,
                       sslcert="/nonexistent/none.crt" if cert is None else None)
        assert "SSL error" in text and alert in text, text
    # A raw TLS client without a certificate: no startup message gets through.
    rc = harness.RawConn(c.host, c.port)
    try:
        rc.send_raw(SSL_REQUEST)
        assert rc.sock.recv(1) == b"S"
        with pytest.raises((ssl.SSLError, OSError, EOFError)):
            rc.sock = no_verify_ctx().wrap_socket(rc.sock)
            rc.startup("app", "app")
    finally:
        rc.sock.close()
    with tls_connect(c, cert="other", certs=certs) as conn:
        # auth_type trust: only the CA matters, not the CN
        assert conn.execute("SELECT current_user").fetchone() == ("app",)
    assert "TLS handshake failed: peer did not return a certificate" in c.log()


@pytest.mark.parametrize("pgc_mode", PGC_MODES)
def test_sslmode_matrix(carrier, certs, pgc_mode):
    """One daemon per client_tls_sslmode, every libpq sslmode against it
    (all combinations are tried before the test reports); then Unix-socket
    clients, and for verify-*, clients without a good certificate."""
    if pgc_mode == "disable":
        c = carrier(client_tls_sslmode="disable")
    else:
        c = carrier(**client_tls(certs, pgc_mode, ca=pgc_mode.startswith("verify")))
    failures = []
    for libpq_mode in LIBPQ_MODES:
        # A client certificate is always offered: only verify-* asks for one.
        kw = dict(sslmode=libpq_mode, cert="app", certs=certs, root=certs.ca_crt)
        expect = _expected(pgc_mode, libpq_mode)
        try:
            if expect in ("plain", "tls"):
                with tls_connect(c, **kw) as conn:
                    assert conn.execute("SELECT current_user, 42").fetchone() == ("app", 42)
                    assert conn.pgconn.ssl_in_use == (expect == "tls")
                    if expect == "tls":
                        # "secure" protocols by default: TLS 1.2 or 1.3, libpq takes 1.3
                        assert ssl_attr(conn, "protocol") == "TLSv1.3"
            elif expect == "no-ssl":
                text = refused(tls_connect, c, **kw)
                assert "server does not support SSL, but SSL was required" in text, text
            else:
                text = refused(tls_connect, c, **kw)
                assert ("this connection requires TLS (client_tls_sslmode = %s)" % pgc_mode
                        in text), text
        except (AssertionError, pytest.fail.Exception, psycopg.Error) as e:
            failures.append("libpq sslmode=%s (expected %s): %s" % (libpq_mode, expect, e))
    assert not failures, "\n".join(failures)
    _check_unix_socket(c)
    if pgc_mode.startswith("verify"):
        _check_client_certificate_required(c, certs)


def test_psql_over_tls(carrier, certs):
    c = carrier(**client_tls(certs, "require"))
    out = subprocess.run(
        [harness.PG_BINDIR + "/psql", "-X", "-At",
         dsn(c, sslmode="verify-full", sslrootcert=certs.ca_crt),
         "-c", "\\conninfo", "-c", "SELECT 'ok:' || count(*) FROM items"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "SSL connection (protocol: TLSv1.3" in out.stdout, out.stdout
    assert "ok:100" in out.stdout
    out = subprocess.run([harness.PG_BINDIR + "/psql", "-X", "-At",
                          dsn(c, sslmode="disable"), "-c", "SELECT 1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "this connection requires TLS (client_tls_sslmode = require)" in out.stderr


@pytest.mark.parametrize("protocols,cases", [
    ("tlsv1.2", [({}, "TLSv1.2"), ({"ssl_min_protocol_version": "TLSv1.3"}, None)]),
    ("tlsv1.3", [({}, "TLSv1.3"), ({"ssl_max_protocol_version": "TLSv1.2"}, None)]),
    ("secure", [({"ssl_max_protocol_version": "TLSv1.2"}, "TLSv1.2")]),
])
def test_client_tls_protocols(carrier, certs, protocols, cases):
    c = carrier(**client_tls(certs, "require", client_tls_protocols=protocols))
    for libpq_kw, expect in cases:
        if expect is None:
            text = refused(tls_connect, c, **libpq_kw)
            assert "alert protocol version" in text, text
            continue
        with tls_connect(c, **libpq_kw) as conn:
            assert ssl_attr(conn, "protocol") == expect
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_client_tls_ciphers(carrier, certs):
    c = carrier(**client_tls(certs, "require", client_tls_protocols="tlsv1.2",
                             client_tls_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"))
    with tls_connect(c) as conn:
        assert ssl_attr(conn, "protocol") == "TLSv1.2"
        assert ssl_attr(conn, "cipher") == "ECDHE-ECDSA-AES128-GCM-SHA256"
    # a client that offers none of them fails the handshake
    ctx = no_verify_ctx()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")
    rc = harness.RawConn(c.host, c.port)
    try:
        rc.send_raw(SSL_REQUEST)
        assert rc.sock.recv(1) == b"S"
        with pytest.raises((ssl.SSLError, OSError)):
            rc.sock = ctx.wrap_socket(rc.sock)
    finally:
        rc.sock.close()
    with tls_connect(c) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# ---------------------------------------------------------------------------
# 2./3. cert authentication, hostssl / hostnossl
# ---------------------------------------------------------------------------

def test_auth_type_cert(carrier, certs):
    c = carrier(auth_type="cert", **client_tls(certs, "require", ca=True))
    with tls_connect(c, cert="app", certs=certs) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("app",)
        assert conn.pgconn.ssl_in_use
    # The CN must equal the user name.
    text = refused(tls_connect, c, cert="other", certs=certs)
    assert 'certificate authentication failed for user "app"' in text, text
    # CN=other as user other passes pgcarrier; PostgreSQL has no such role
    text = refused(tls_connect, c, user="other", cert="other", certs=certs)
    assert 'role "other" does not exist' in text, text
    # No certificate at all.
    text = refused(tls_connect, c, sslcert="/nonexistent/none.crt")
    assert "connection requires a valid client certificate" in text, text
    # A certificate from an untrusted CA fails the handshake itself.
    text = refused(tls_connect, c, cert="rogue", certs=certs)
    assert "SSL error" in text and "alert unknown ca" in text, text
    # Unix socket clients cannot present a certificate.
    text = refused(psycopg.connect, c.unix_dsn())
    assert "connection requires a valid client certificate" in text, text
    # Client certificates also work through psql.
    out = subprocess.run([harness.PG_BINDIR + "/psql", "-X", "-At",
                          dsn(c, sslmode="verify-full", sslrootcert=certs.ca_crt,
                              sslcert=certs.app_crt, sslkey=certs.app_key),
                          "-c", "SELECT current_user"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == "app", out.stderr


def test_auth_type_cert_raw_errors(carrier, certs):
    """The exact ErrorResponse: FATAL 28000, read over TLS."""
    c = carrier(auth_type="cert", **client_tls(certs, "require", ca=True))
    for cert, message in ((None, "connection requires a valid client certificate"),
                          ("other", 'certificate authentication failed for user "app"')):
        rc = raw_tls(c, no_verify_ctx(cert, certs))
        try:
            msgs = rc.startup("app", "app", raise_on_error=False)
            assert msgs[-1][0] == "E", msgs
            f = harness.parse_error(msgs[-1][1])
            assert (f["S"], f["C"], f["M"]) == ("FATAL", "28000", message)
            assert read_until_closed(rc.sock) == b""
        finally:
            rc.sock.close()
    rc = raw_tls(c, no_verify_ctx("app", certs))
    try:
        rc.startup("app", "app")
        assert harness.data_row(dict(rc.query("SELECT current_user"))["D"]) == [b"app"]
    finally:
        rc.close()


def resumed_login(c, ctx, session=None):
    """Log in over TLS with ctx, offering session; run a query (by then a
    TLS 1.3 ticket has come in). Returns (session_reused, session)."""
    rc = harness.RawConn(c.host, c.port, timeout=10)
    try:
        rc.send_raw(SSL_REQUEST)
        assert rc.sock.recv(1) == b"S"
        rc.sock = ctx.wrap_socket(rc.sock, session=session)
        rc.startup("app", "app")
        assert harness.data_row(dict(rc.query("SELECT current_user"))["D"]) == [b"app"]
        return rc.sock.session_reused, rc.sock.session
    finally:
        rc.close()


def test_no_tls13_resumption(carrier, certs):
    """TLS 1.3: no ticket, so a client has no session to offer."""
    c = carrier(auth_type="cert", **client_tls(certs, "require", ca=True))
    ctx = no_verify_ctx("app", certs)
    ctx.maximum_version = ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    reused, s1 = resumed_login(c, ctx)
    assert not reused and not s1.has_ticket
    assert not resumed_login(c, ctx, s1)[0]


def test_session_resumption(carrier, certs):
    """A TLS 1.2 client that offers the session of its last connection
    resumes it, also with a verified client certificate (cert
    authentication: the resumed session carries it); a client without one
    gets a full handshake; a reload (new TLS contexts, new ticket keys)
    ends the sessions issued before it."""
    c = carrier(auth_type="cert", **client_tls(certs, "require", ca=True))
    ctx = no_verify_ctx("app", certs)
    ctx.maximum_version = ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    reused, s1 = resumed_login(c, ctx)
    assert not reused
    reused, s2 = resumed_login(c, ctx, s1)
    assert reused
    reused, s3 = resumed_login(c, ctx, s2)
    assert reused
    assert not resumed_login(c, ctx)[0]
    assert reload_and_wait(c)
    reused, s4 = resumed_login(c, ctx, s3)
    assert not reused
    assert resumed_login(c, ctx, s4)[0]


@pytest.mark.parametrize("version, resume", [("TLSv1_3", False), ("TLSv1_2", False), ("TLSv1_2", True)])
def test_login_without_nodelay_is_not_delayed(carrier, certs, version, resume):
    """A client with Nagle's algorithm on (Python's ssl sockets) sends its
    startup packet only once its last handshake flight is acknowledged.
    What pgcarrier sends right after the handshake does that (the TLS 1.2
    Finished), and where it sends nothing (TLS 1.3; TLS 1.2 resumption: its
    Finished came first) it acknowledges at once. Otherwise
    the login waits for the delayed ACK, about 40 ms each time; the fastest
    of five logins shows it, whatever the machine's load."""
    c = carrier(auth_type="cert", **client_tls(certs, "require", ca=True))
    ctx = no_verify_ctx("app", certs)
    ctx.maximum_version = ctx.minimum_version = getattr(ssl.TLSVersion, version)
    session = resumed_login(c, ctx)[1] if resume else None
    fastest = None
    for _ in range(5):
        rc = harness.RawConn(c.host, c.port, timeout=10)
        try:
            rc.send_raw(SSL_REQUEST)
            assert rc.sock.recv(1) == b"S"
            rc.sock = ctx.wrap_socket(rc.sock, session=session)
            assert rc.sock.session_reused == resume
            t0 = time.monotonic()
            rc.startup("app", "app")
            took = time.monotonic() - t0
            session = rc.sock.session if resume else None
        finally:
            rc.close()
        fastest = took if fastest is None else min(fastest, took)
    assert fastest < 0.025, "the fastest TLS login took %.1f ms" % (fastest * 1000)


def write_hba(c, text):
    path = os.path.join(c.dir, "hba.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def hba_carrier(carrier, hba, **settings):
    """A started pgcarrier with auth_type = hba and this HBA file."""
    c = carrier(start=False, auth_type="hba", **settings)
    c.settings["auth_hba_file"] = write_hba(c, hba)
    c.start()
    return c


def test_hba_hostssl_cert(carrier, certs):
    c = hba_carrier(carrier, """
local     all  all                trust
hostssl   app  app  127.0.0.1/32  cert
hostssl   all  all  127.0.0.1/32  trust
hostnossl app  app  127.0.0.1/32  reject
""", **client_tls(certs, "prefer", ca=True))
    with tls_connect(c, cert="app", certs=certs) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("app",)
    text = refused(tls_connect, c, cert="other", certs=certs)
    assert 'certificate authentication failed for user "app"' in text, text
    text = refused(tls_connect, c, sslcert="/nonexistent/none.crt")
    assert "connection requires a valid client certificate" in text, text
    # database postgres: the trust line, no certificate needed
    with tls_connect(c, db="postgres", sslcert="/nonexistent/none.crt") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # plain TCP: the hostssl lines do not match, the hostnossl line rejects
    text = refused(tls_connect, c, sslmode="disable")
    assert ('pg_hba.conf rejects connection for host "127.0.0.1", user "app", '
            'database "app", no encryption') in text, text
    text = refused(tls_connect, c, db="postgres", sslmode="disable")
    assert ('no pg_hba.conf entry for host "127.0.0.1", user "app", '
            'database "postgres", no encryption') in text, text
    with psycopg.connect(c.unix_dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_hba_clientcert_on_password_lines(carrier, certs):
    """clientcert=verify-ca / verify-full on a scram-sha-256 line: the
    certificate comes on top of the password, as in PostgreSQL."""
    c = hba_carrier(carrier, """
local     all  all    trust
hostssl   app  other  127.0.0.1/32  scram-sha-256 clientcert=verify-ca
hostssl   all  all    127.0.0.1/32  scram-sha-256 clientcert=verify-full
""", auth_file={"app": scram_secret(PW), "other": scram_secret(PW)}, **client_tls(certs, "prefer", ca=True))
    with tls_connect(c, cert="app", certs=certs, password=PW) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("app",)
    text = refused(tls_connect, c, cert="app", certs=certs, password="wrong")
    assert 'password authentication failed for user "app"' in text, text
    # verify-full: the CN must be the user; verify-ca: any certificate that verifies
    text = refused(tls_connect, c, cert="other", certs=certs, password=PW)
    assert 'password authentication failed for user "app"' in text, text
    assert "user \"app\", database \"app\": certificate validation (clientcert=verify-full): CN mismatch" in c.log()
    text = refused(tls_connect, c, sslcert="/nonexistent/none.crt", password=PW)
    assert "connection requires a valid client certificate" in text, text
    # user other, certificate CN=app on the verify-ca line: pgcarrier lets it
    # through, and it is PostgreSQL that has no such role
    text = refused(tls_connect, c, db="app", user="other", cert="app", certs=certs, password=PW)
    assert 'role "other" does not exist' in text, text


def test_hba_cert_needs_hostssl(carrier, certs):
    c = carrier(start=False, auth_type="hba", **client_tls(certs, "prefer", ca=True))
    path = write_hba(c, "local all all trust\nhost all all 127.0.0.1/32 cert\n")
    c.settings["auth_hba_file"] = path
    with pytest.raises(harness.HarnessError) as ei:
        c.start()
    c.expect_exit = True
    assert "%s:2:" % path in str(ei.value)
    assert "cert authentication is only supported on hostssl connections" in str(ei.value)


def test_hba_hostnossl_before_hostssl(carrier, certs):
    c = hba_carrier(carrier, """
hostnossl all  all  127.0.0.1/32  reject
hostssl   app  all  127.0.0.1/32  trust
""", **client_tls(certs, "prefer"))
    with tls_connect(c) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 1").fetchone() == (1,)
    text = refused(tls_connect, c, sslmode="disable")
    assert ('pg_hba.conf rejects connection for host "127.0.0.1", user "app", '
            'database "app", no encryption') in text, text
    text = refused(tls_connect, c, db="postgres")
    assert ('no pg_hba.conf entry for host "127.0.0.1", user "app", '
            'database "postgres", SSL encryption') in text, text
    # no local line: Unix socket clients find no entry
    text = refused(psycopg.connect, c.unix_dsn())
    assert 'no pg_hba.conf entry for host "[local]", user "app", database "app"' in text, text


def test_hba_hostssl_reject_hostnossl_trust(carrier, certs):
    c = hba_carrier(carrier, """
hostssl   all  all  127.0.0.1/32  reject
hostnossl all  all  127.0.0.1/32  trust
""", **client_tls(certs, "prefer"))
    with tls_connect(c, sslmode="disable") as conn:
        assert not conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 1").fetchone() == (1,)
    text = refused(tls_connect, c, sslmode="require")
    assert ('pg_hba.conf rejects connection for host "127.0.0.1", user "app", '
            'database "app", SSL encryption') in text, text
    # libpq's prefer tries again in plain after an error over TLS
    with tls_connect(c, sslmode="prefer") as conn:
        assert not conn.pgconn.ssl_in_use


# ---------------------------------------------------------------------------
# 4. SCRAM-SHA-256-PLUS
# ---------------------------------------------------------------------------

def test_scram_channel_binding_libpq(carrier, certs):
    c = carrier(auth_type="scram-sha-256", auth_file={"app": scram_secret(PW)},
                **client_tls(certs, "prefer"))
    # libpq refuses to finish without SCRAM-SHA-256-PLUS: success proves it
    with tls_connect(c, password=PW, channel_binding="require") as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT current_user").fetchone() == ("app",)
    with tls_connect(c, password=PW, channel_binding="disable") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with tls_connect(c, password=PW, sslmode="verify-full", root=certs.ca_crt) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # over plain TCP libpq gives up by itself
    text = refused(tls_connect, c, password=PW, sslmode="disable", channel_binding="require")
    assert "channel binding" in text, text
    with tls_connect(c, password=PW, sslmode="disable") as conn:
        assert not conn.pgconn.ssl_in_use
    # wrong password over TLS, with and without binding
    for cb in ("require", "prefer"):
        text = refused(tls_connect, c, password="wrong", channel_binding=cb)
        assert 'password authentication failed for user "app"' in text, text
    assert PW not in c.log()


def test_scram_plus_clear_text_secret_and_hba(carrier, certs):
    """A clear-text secret in the auth file, SCRAM chosen by a hostssl line."""
    c = carrier(start=False, auth_type="hba", auth_file={"app": PW},
                **client_tls(certs, "prefer"))
    c.settings["auth_hba_file"] = write_hba(c, """
hostssl   all  all  127.0.0.1/32  scram-sha-256
hostnossl all  all  127.0.0.1/32  md5
""")
    c.start()
    with tls_connect(c, password=PW, channel_binding="require") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("app",)
    with tls_connect(c, password=PW, sslmode="disable") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    text = refused(tls_connect, c, password="nope", channel_binding="require")
    assert 'password authentication failed for user "app"' in text


class Scram:
    """A SCRAM-SHA-256(-PLUS) client over a harness.RawConn, of our own, to
    send what libpq never sends."""

    def __init__(self, rc, password):
        self.rc, self.password = rc, password

    def start(self, user="app", db="app"):
        body = struct.pack("!I", 196608) + harness.cstr("user") + harness.cstr(user) + \
            harness.cstr("database") + harness.cstr(db) + b"\0"
        self.rc.send_raw(struct.pack("!I", len(body) + 4) + body)
        t, p = self.rc.recv()
        assert t == "R" and struct.unpack("!I", p[:4])[0] == 10, (t, p)
        return [m.decode() for m in p[4:].split(b"\0") if m]

    def login(self, mech, gs2, cb_data=b""):
        """-> the messages after the client-final-message (or the first error)."""
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = "n=,r=" + nonce
        first = gs2 + first_bare
        self.rc.send("p", harness.cstr(mech) + struct.pack("!i", len(first)) + first.encode())
        t, p = self.rc.recv()
        if t == "E":
            return [(t, p)]
        assert t == "R" and struct.unpack("!I", p[:4])[0] == 11, (t, p)
        server_first = p[4:].decode()
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(),
                                     base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored = hashlib.sha256(client_key).digest()
        without_proof = "c=%s,r=%s" % (base64.b64encode(gs2.encode() + cb_data).decode(),
                                       attrs["r"])
        auth_msg = ",".join([first_bare, server_first, without_proof])
        sig = hmac.new(stored, auth_msg.encode(), "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        final = without_proof + ",p=" + base64.b64encode(proof).decode()
        self.rc.send("p", final.encode())
        msgs = []
        while True:
            t, p = self.rc.recv()
            msgs.append((t, p))
            if t in ("E", "Z"):
                return msgs


def _end_point(rc):
    # tls-server-end-point for a certificate signed with ECDSA-SHA256: SHA-256 of its DER
    return hashlib.sha256(rc.sock.getpeercert(binary_form=True)).digest()


def _error(msgs):
    assert msgs[-1][0] == "E", msgs
    return harness.parse_error(msgs[-1][1])


def test_scram_plus_raw(carrier, certs):
    c = carrier(auth_type="scram-sha-256", auth_file={"app": scram_secret(PW)},
                **client_tls(certs, "prefer"))
    plus = "SCRAM-SHA-256-PLUS"
    gs2p = "p=tls-server-end-point,,"

    # over TLS: both mechanisms, PLUS first; the right binding data logs in
    rc = raw_tls(c)
    try:
        s = Scram(rc, PW)
        assert s.start() == [plus, "SCRAM-SHA-256"]
        msgs = s.login(plus, gs2p, _end_point(rc))
        assert msgs[-1][0] == "Z", msgs
        assert [t for t, _ in msgs].count("R") == 2   # SASLFinal, AuthenticationOk
        assert harness.data_row(dict(rc.query("SELECT current_user"))["D"]) == [b"app"]
    finally:
        rc.close()

    # bad binding data: the proof is right, the binding is not
    rc = raw_tls(c)
    try:
        s = Scram(rc, PW)
        s.start()
        f = _error(s.login(plus, gs2p, b"\0" * 32))
        assert (f["S"], f["C"], f["M"]) == ("FATAL", "28000", "SCRAM channel binding check failed")
    finally:
        rc.sock.close()

    # 'n' over TLS is fine (the client does not support binding)
    rc = raw_tls(c)
    try:
        s = Scram(rc, PW)
        s.start()
        assert s.login("SCRAM-SHA-256", "n,,")[-1][0] == "Z"
    finally:
        rc.close()

    # over plain TCP: no PLUS offered, and choosing it anyway fails
    rc = harness.RawConn(c.host, c.port)
    try:
        s = Scram(rc, PW)
        assert s.start() == ["SCRAM-SHA-256"]
        f = _error(s.login(plus, gs2p, b"\0" * 32))
        assert (f["S"], f["C"], f["M"]) == (
            "FATAL", "08P01", "client selected an invalid SASL authentication mechanism")
    finally:
        rc.sock.close()
    # 'y' over plain TCP is fine: the server really cannot bind there
    rc = harness.RawConn(c.host, c.port)
    try:
        s = Scram(rc, PW)
        s.start()
        assert s.login("SCRAM-SHA-256", "y,,")[-1][0] == "Z"
    finally:
        rc.close()

    # wrong password with correct binding
    rc = raw_tls(c)
    try:
        s = Scram(rc, "wrong")
        s.start()
        f = _error(s.login(plus, gs2p, _end_point(rc)))
        assert (f["C"], f["M"]) == ("28P01", 'password authentication failed for user "app"')
    finally:
        rc.sock.close()


def test_scram_downgrade_flag_refused(carrier, certs):
    """'y': the client could bind but thinks the server cannot (a downgrade
    by a man in the middle who removed SCRAM-SHA-256-PLUS): PostgreSQL's
    FATAL 28000 with its DETAIL."""
    c = carrier(auth_type="scram-sha-256", auth_file={"app": scram_secret(PW)},
                **client_tls(certs, "prefer"))
    rc = raw_tls(c)
    try:
        s = Scram(rc, PW)
        s.start()
        f = _error(s.login("SCRAM-SHA-256", "y,,"))
        assert (f["S"], f["C"], f["M"]) == ("FATAL", "28000", "SCRAM channel binding negotiation error")
        assert "thinks the server does not" in f.get("D", "")
    finally:
        rc.sock.close()


# ---------------------------------------------------------------------------
# 5. TLS towards PostgreSQL
# ---------------------------------------------------------------------------

def tls_db(server, host="127.0.0.1", db="app", **kw):
    d = {"host": host, "port": server.port, "dbname": db}
    d.update(kw)
    return d


def server_tls(certs, mode, ca=None, **extra):
    d = {"server_tls_sslmode": mode}
    if ca:
        d["server_tls_ca_file"] = os.path.join(certs.dir, ca + ".crt")
    d.update(extra)
    return d


def raw_login_error(c, db="app", user="app"):
    """The ErrorResponse fields a raw plain client gets at login."""
    rc = harness.RawConn(c.host, c.port)
    try:
        msgs = rc.startup(user, db, raise_on_error=False)
        assert msgs[-1][0] == "E", msgs
        return harness.parse_error(msgs[-1][1])
    finally:
        rc.sock.close()


def plain_connect(c, db="app", user="app"):
    return psycopg.connect(c.dsn(db, user), autocommit=True, prepare_threshold=None)


@pytest.mark.parametrize("mode,ca", [("prefer", None), ("require", None),
                                     ("verify-ca", "ca"), ("verify-full", "ca")])
def test_server_tls_modes_use_tls(carrier, certs, tls_pg, mode, ca):
    c = carrier(server=tls_pg, databases={"app": tls_db(tls_pg, "localhost"),
                                          "byip": tls_db(tls_pg, "127.0.0.1", "app")},
                **server_tls(certs, mode, ca))
    for _ in range(3):   # new and reused server connections
        for db in ("app", "byip"):   # verify-full: DNS and IP subjectAltName
            with plain_connect(c, db=db) as conn:
                assert backend_ssl(conn) == (True, "TLSv1.3")
                assert conn.execute("SELECT count(*) FROM items").fetchone() == (100,)


@pytest.mark.parametrize("protocols,version", [("tlsv1.2", "TLSv1.2"), ("all", "TLSv1.3")])
def test_server_tls_protocols(carrier, certs, tls_pg, protocols, version):
    c = carrier(server=tls_pg, databases={"app": tls_db(tls_pg)},
                **server_tls(certs, "require", server_tls_protocols=protocols))
    with plain_connect(c) as conn:
        assert backend_ssl(conn) == (True, version)


def test_server_tls_ciphers(carrier, certs, tls_pg):
    c = carrier(server=tls_pg, databases={"app": tls_db(tls_pg)},
                **server_tls(certs, "require", server_tls_protocols="tlsv1.2",
                             server_tls_ciphers="ECDHE-ECDSA-AES256-GCM-SHA384"))
    with plain_connect(c) as conn:
        assert conn.execute("SELECT ssl, version, cipher FROM pg_stat_ssl "
                            "WHERE pid = pg_backend_pid()").fetchone() == \
            (True, "TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384")


def test_server_plain_refused_by_hostssl_server(carrier, certs, tls_pg):
    c = carrier(server=tls_pg, databases={"app": tls_db(tls_pg)}, **server_tls(certs, "disable"))
    text = refused(plain_connect, c)
    assert ('no pg_hba.conf entry for host "127.0.0.1", user "app", database "app", '
            'no encryption') in text, text
    # pgcarrier itself is still fine
    assert c.running


def test_server_tls_allow(carrier, certs, tls_pg, pg):
    """allow, as libpq: plain first, TLS when the server refuses the plain login."""
    c = carrier(server=tls_pg, databases={"app": tls_db(tls_pg), "plain": tls_db(pg)},
                **server_tls(certs, "allow"))
    for _ in range(2):
        with plain_connect(c) as conn:
            assert backend_ssl(conn) == (True, "TLSv1.3")
        with plain_connect(c, db="plain") as conn:
            assert backend_ssl(conn) == (False, None)


def test_server_tls_require_against_plain_server(carrier, certs, pg):
    c = carrier(databases={"app": tls_db(pg), "unixdb": {"host": pg.sockdir, "port": pg.port,
                                                          "dbname": "app"}},
                **server_tls(certs, "require"))
    text = refused(plain_connect, c)
    assert "server does not support SSL, but SSL was required" in text, text
    f = raw_login_error(c)
    assert (f["S"], f["C"], f["M"]) == ("FATAL", "08001", "server does not support SSL, but SSL "
                                        "was required (server_tls_sslmode = require)")
    # a Unix-socket server never uses TLS, whatever the mode
    with plain_connect(c, db="unixdb") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM pg_stat_ssl WHERE pid = pg_backend_pid() "
                            "AND ssl").fetchone() == (0,)


def test_server_tls_prefer_against_plain_server(carrier, certs, pg):
    c = carrier(databases={"app": tls_db(pg)}, **server_tls(certs, "prefer"))
    for _ in range(2):
        with plain_connect(c) as conn:
            assert backend_ssl(conn) == (False, None)


def test_server_tls_verify_full_unix_socket(carrier, certs, tls_pg):
    c = carrier(server=tls_pg, databases={"app": {"host": tls_pg.sockdir,
                                                  "port": tls_pg.port, "dbname": "app"}},
                **server_tls(certs, "verify-full", "ca"))
    with plain_connect(c) as conn:
        assert conn.execute("SELECT count(*) FROM pg_stat_ssl WHERE pid = pg_backend_pid() "
                            "AND ssl").fetchone() == (0,)


def test_server_tls_verify_ca_wrong_ca(carrier, certs, tls_pg):
    c = carrier(server=tls_pg, databases={"app": tls_db(tls_pg)},
                **server_tls(certs, "verify-ca", "ca2"))
    text = refused(plain_connect, c)
    assert "TLS with the server failed: certificate verify failed" in text, text
    # and again: a failed login does not wedge the pool
    f = raw_login_error(c)
    assert (f["S"], f["C"]) == ("FATAL", "08006"), f
    assert f["M"].startswith("TLS with the server failed: certificate verify failed"), f


def test_server_tls_verify_full_host_mismatch(carrier, certs, tls_pg):
    """verify-full checks the [databases] host; the server switches to a
    certificate for another name (reload), then back."""
    c = carrier(server=tls_pg,
                databases={"full": tls_db(tls_pg, "localhost"),
                           "full2": tls_db(tls_pg, "localhost"),
                           "fullip": tls_db(tls_pg, "127.0.0.1")},
                **server_tls(certs, "verify-full", "ca"))
    c2 = carrier(server=tls_pg, databases={"ca": tls_db(tls_pg, "localhost")},
                 **server_tls(certs, "verify-ca", "ca"))
    with plain_connect(c, db="full") as conn:
        assert backend_ssl(conn)[0] is True
    _pg_set(tls_pg, ssl_cert_file="wrong.crt", ssl_key_file="wrong.key")
    try:
        # wait until PostgreSQL has loaded the other certificate
        for _ in range(100):
            try:
                tls_pg.connect(sslmode="verify-full", sslrootcert=certs.ca_crt,
                               host="localhost", hostaddr="127.0.0.1").close()
            except psycopg.OperationalError:
                break
            time.sleep(0.1)
        else:
            pytest.fail("PostgreSQL did not switch certificates")
        # pgcarrier's pool may still hold a connection made with the old
        # certificate: transaction mode would hand it out; use new databases
        for db in ("full2", "fullip"):
            text = refused(plain_connect, c, db=db)
            assert "TLS with the server failed: certificate verify failed" in text, text
        # verify-ca does not look at the name
        with plain_connect(c2, db="ca") as conn:
            assert backend_ssl(conn)[0] is True
    finally:
        tls_pg.sql("ALTER SYSTEM RESET ssl_cert_file; ALTER SYSTEM RESET ssl_key_file; "
                   "SELECT pg_reload_conf();")
    for _ in range(100):
        try:
            tls_pg.connect(sslmode="verify-full", sslrootcert=certs.ca_crt,
                           host="localhost", hostaddr="127.0.0.1").close()
            break
        except psycopg.OperationalError:
            time.sleep(0.1)
    else:
        pytest.fail("PostgreSQL did not switch back to its certificate")


def test_server_tls_client_certificate(carrier, certs, tls_pg):
    """PostgreSQL's hostssl ... cert line for database postgres: pgcarrier
    presents server_tls_cert_file."""
    dbs = {"postgres": tls_db(tls_pg, "localhost", "postgres")}
    c = carrier(server=tls_pg, databases=dbs,
                **server_tls(certs, "verify-full", "ca", server_tls_cert_file=certs.app_crt,
                             server_tls_key_file=certs.app_key))
    with plain_connect(c, db="postgres") as conn:
        assert conn.execute("SELECT current_user, ssl, client_dn FROM pg_stat_ssl "
                            "WHERE pid = pg_backend_pid()").fetchone() == ("app", True, "/CN=app")
    c2 = carrier(server=tls_pg, databases=dbs, **server_tls(certs, "require"))
    text = refused(plain_connect, c2, db="postgres")
    assert "connection requires a valid client certificate" in text, text
    c3 = carrier(server=tls_pg, databases=dbs,
                 **server_tls(certs, "require", server_tls_cert_file=certs.other_crt,
                              server_tls_key_file=certs.other_key))
    text = refused(plain_connect, c3, db="postgres")
    assert 'certificate authentication failed for user "app"' in text, text


# ---------------------------------------------------------------------------
# 6. Data integrity, TLS on both sides, transaction pooling
# ---------------------------------------------------------------------------

def _md5_blob(tag, n):
    return "".join(hashlib.md5(("%d%s" % (g, tag)).encode()).hexdigest()
                   for g in range(1, n + 1))


def _copy_rows(client):
    """~1 MB of COPY text for one client: 100 rows of ~10 kB."""
    rows = []
    for seq in range(100):
        val = hashlib.sha256(b"%d-%d" % (client, seq)).hexdigest() * 160
        rows.append((client, seq, val[:10000 - (seq % 7)]))
    return rows


@pytest.fixture
def both_sides(carrier, certs, tls_pg):
    """pgcarrier with TLS to clients (require) and to tls_pg (verify-full)."""
    tls_pg.sql("TRUNCATE scratch", db="app")
    return carrier(server=tls_pg, pool_size=2, workers=2,
                   databases={"app": tls_db(tls_pg, "localhost")},
                   **client_tls(certs, "require"), **server_tls(certs, "verify-full", "ca"))


@pytest.mark.timeout(180)
def test_integrity_psycopg_threads(both_sides, tls_pg, certs):
    c = both_sides
    sizes = [100 * 1024, 300 * 1024, 700 * 1024, 2 * 1024 * 1024]
    errors = []
    copied = {}
    n_clients = 20

    def work(i):
        try:
            with tls_connect(c, autocommit=False, sslmode="verify-full",
                             root=certs.ca_crt) as conn:
                assert conn.pgconn.ssl_in_use
                # a large result
                n = sizes[i % len(sizes)] // 32
                tag = "t%d" % i
                got = conn.execute("SELECT string_agg(md5(g::text || %s), '' ORDER BY g) "
                                   "FROM generate_series(1, %s) g", [tag, n]).fetchone()[0]
                assert backend_ssl(conn)[0] is True
                conn.commit()
                assert got == _md5_blob(tag, n), "client %d: large result differs" % i
                # a large parameter echoed back, binary
                blob = os.urandom(256 * 1024 + i)
                with conn.cursor(binary=True) as cur:
                    cur.execute("SELECT %b::bytea, length(%b::bytea)", [blob, blob])
                    assert cur.fetchone() == (blob, len(blob))
                conn.commit()
                # COPY FROM STDIN ~1 MB, then COPY TO STDOUT
                rows = _copy_rows(i)
                with conn.cursor() as cur:
                    with cur.copy("COPY scratch (client, seq, val) FROM STDIN") as cp:
                        for r in rows:
                            cp.write_row(r)
                conn.commit()
                out = bytearray()
                with conn.cursor() as cur:
                    with cur.copy("COPY (SELECT client, seq, val FROM scratch WHERE client = %d "
                                  "ORDER BY seq) TO STDOUT" % i) as cp:
                        for chunk in cp:
                            out += chunk
                conn.commit()
                expect = "".join("%d\t%d\t%s\n" % r for r in rows).encode()
                assert bytes(out) == expect, "client %d: COPY TO STDOUT differs" % i
                copied[i] = bytes(out)
                # a small multi-statement transaction that rolls back
                conn.execute("INSERT INTO scratch VALUES (%s, -1, 'rolled back')", [i])
                conn.rollback()
        except Exception as e:  # reported by the main thread
            errors.append("client %d: %r" % (i, e))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_clients)]
    with harness.BackendMonitor(tls_pg, db="app") as mon:
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
    assert not any(t.is_alive() for t in threads), "clients hung"
    assert not errors, "\n".join(errors)
    # transaction pooling held: never more than pool_size server connections
    assert mon.error is None and mon.max <= 2, (mon.error, mon.max)
    # the same data read directly from PostgreSQL
    with tls_pg.connect(sslmode="require") as direct:
        assert direct.execute("SELECT count(*), count(*) FILTER (WHERE seq < 0) "
                              "FROM scratch").fetchone() == (100 * n_clients, 0)
        for i in (0, 7, n_clients - 1):
            out = bytearray()
            with direct.cursor() as cur:
                with cur.copy("COPY (SELECT client, seq, val FROM scratch WHERE client = %d "
                              "ORDER BY seq) TO STDOUT" % i) as cp:
                    for chunk in cp:
                        out += chunk
            assert bytes(out) == copied[i]


def test_integrity_pipeline(both_sides):
    """Thousands of small messages in few TLS records, both ways."""
    c = both_sides
    with tls_connect(c) as conn:
        with conn.pipeline():
            curs = []
            for i in range(3000):
                cur = conn.cursor()
                cur.execute("SELECT %s::int, repeat('p', %s)", [i, i % 50])
                curs.append(cur)
        for i, cur in enumerate(curs):
            assert cur.fetchone() == (i, "p" * (i % 50))
        # one query text of ~4 MB
        big = "SELECT length(" + "'" + "q" * (4 << 20) + "')"
        assert conn.execute(big).fetchone() == (4 << 20,)


def test_integrity_asyncpg(both_sides):
    import asyncpg
    c = both_sides

    async def one(i):
        # asyncpg's default statement cache: named statements, which the
        # session-state guard carries across servers (the unnamed one it
        # does not, see docs/behaviour.md)
        conn = await asyncpg.connect(host=c.host, port=c.port, user="app", database="app",
                                     ssl=no_verify_ctx(), timeout=30)
        try:
            assert conn._transport.get_extra_info("ssl_object") is not None
            stmt = await conn.prepare("SELECT $1::int * 2 AS d, repeat(md5($1::text), $2::int) AS r")
            for k in range(20):
                row = await stmt.fetchrow(k + i, 50 * k)
                assert row["d"] == 2 * (k + i)
                assert row["r"] == hashlib.md5(str(k + i).encode()).hexdigest() * (50 * k)
            big = os.urandom(512 * 1024)
            echo = await conn.prepare("SELECT $1::bytea")
            assert await echo.fetchval(big) == big
            async with conn.transaction():
                await conn.executemany("INSERT INTO scratch VALUES ($1, $2, $3)",
                                       [(1000 + i, s, "a%d" % s) for s in range(50)])
            assert await conn.fetchval("SELECT count(*) FROM scratch WHERE client = $1",
                                       1000 + i) == 50
            assert await stmt.fetchval(21, 0) == 42
        finally:
            await conn.close()

    async def main():
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(8))), 120)

    asyncio.run(main())


def test_slow_tls_reader_does_not_block_others(both_sides):
    """A TLS client that does not read a large result: its ciphertext waits
    in pgcarrier, others are served meanwhile, nothing is lost."""
    c = both_sides
    n = 4 * 1024 * 1024
    unit = b"0123456789abcdef"
    rc = raw_tls(c, timeout=60)
    rc.buf = bytearray()
    try:
        rc.startup("app", "app")
        rc.send("Q", harness.cstr("SELECT repeat('%s', %d)" % (unit.decode(), n // 16)))
        for i in range(10):
            with tls_connect(c) as conn:
                assert conn.execute("SELECT %s::int", [i]).fetchone() == (i,)
        msgs = rc.recv_until_ready()
        rows = [p for t, p in msgs if t == "D"]
        assert len(rows) == 1 and harness.data_row(rows[0])[0] == unit * (n // 16)
        assert harness.data_row(dict(rc.query("SELECT 1"))["D"]) == [b"1"]
    finally:
        rc.close()


def test_many_concurrent_handshakes(both_sides, certs):
    c = both_sides
    errors = []

    def work(i):
        try:
            for _ in range(3):
                with tls_connect(c, sslmode="verify-full", root=certs.ca_crt) as conn:
                    assert conn.execute("SELECT %s::int", [i]).fetchone() == (i,)
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]


def test_tls_client_vanishes_mid_transaction(both_sides, tls_pg):
    """No close_notify, the socket just closes: the transaction is rolled
    back and the server connection is reused clean."""
    c = both_sides
    for k in range(3):
        rc = raw_tls(c)
        rc.startup("app", "app")
        rc.query("BEGIN")
        rc.query("INSERT INTO scratch VALUES (5000, %d, 'vanished')" % k)
        rc.sock.close()          # no unwrap(): no close_notify
    for _ in range(4):
        with tls_connect(c) as conn:
            assert conn.execute("SELECT count(*) FROM scratch WHERE client = 5000").fetchone() == (0,)
            assert conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert tls_pg.sql("SELECT count(*) FROM scratch WHERE client = 5000", db="app") == "0"


def test_server_terminated_over_tls(both_sides, tls_pg):
    """PostgreSQL ends a TLS backend: the linked TLS client gets the
    server's FATAL; an idle one is replaced for the next transaction."""
    c = both_sides
    conn = tls_connect(c, autocommit=False)
    try:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]   # linked: in a transaction
        tls_pg.sql("SELECT pg_terminate_backend(%d)" % pid)
        with pytest.raises(psycopg.OperationalError) as ei:
            conn.execute("SELECT 1")
        assert "terminating connection due to administrator command" in str(ei.value)
    finally:
        conn.close()
    del ei
    gc.collect()
    with tls_connect(c) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]   # released after it
        tls_pg.sql("SELECT pg_terminate_backend(%d)" % pid)
        for _ in range(100):
            if tls_pg.sql("SELECT count(*) FROM pg_stat_activity WHERE pid = %d" % pid) == "0":
                break
            time.sleep(0.05)
        # pgcarrier saw the TLS connection end while it was idle in the pool
        assert conn.execute("SELECT ssl FROM pg_stat_ssl "
                            "WHERE pid = pg_backend_pid()").fetchone() == (True,)


def test_cancel_request_reaches_tls_client(both_sides, tls_pg):
    """libpq sends CancelRequest in plain text, even with
    client_tls_sslmode = require: it must work."""
    c = both_sides
    result = {}
    conn = tls_connect(c)
    try:
        def run():
            try:
                conn.execute("SELECT pg_sleep(30)")
                result["r"] = "finished"
            except psycopg.errors.QueryCanceled:
                result["r"] = "canceled"
            except Exception as e:
                result["r"] = repr(e)

        th = threading.Thread(target=run)
        th.start()
        for _ in range(200):
            if tls_pg.sql("SELECT count(*) FROM pg_stat_activity WHERE query = "
                          "'SELECT pg_sleep(30)' AND state = 'active'") == "1":
                break
            time.sleep(0.05)
        conn.cancel()
        th.join(30)
        assert result.get("r") == "canceled", result
        assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# 7. The handshake: stalls, SSLRequest oddities
# ---------------------------------------------------------------------------

def _client_hello():
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = no_verify_ctx().wrap_bio(inc, out)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_stalled_handshakes_time_out(carrier, certs):
    c = carrier(client_login_timeout=1, **client_tls(certs, "require"))
    hello = _client_hello()
    stalled = []
    for stage in ("after-S", "half-hello", "after-hello"):
        s = socket.create_connection((c.host, c.port), timeout=15)
        s.sendall(SSL_REQUEST)
        assert s.recv(1) == b"S"
        if stage == "half-hello":
            s.sendall(hello[:len(hello) // 2])
        elif stage == "after-hello":
            s.sendall(hello)
        stalled.append((stage, s))
    # others log in meanwhile, over TLS
    for _ in range(5):
        with tls_connect(c) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    for stage, s in stalled:
        try:
            data = read_until_closed(s)   # socket timeout 15 s: a hang fails here
        except socket.timeout:
            pytest.fail("stalled handshake (%s) was not closed" % stage)
        finally:
            s.close()
        if stage == "after-hello":
            assert data[:1] == b"\x16", data[:10]    # the ServerHello record
        else:
            assert data == b""
    with tls_connect(c) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_sigint_does_not_wait_for_stalled_login(carrier, certs):
    c = carrier(**client_tls(certs, "require"))   # client_login_timeout = 60 (default)
    s = socket.create_connection((c.host, c.port), timeout=10)
    try:
        s.sendall(SSL_REQUEST)
        assert s.recv(1) == b"S"
        with tls_connect(c) as conn:   # some other, finished client
            assert conn.execute("SELECT 1").fetchone() == (1,)
        c.kill(signal.SIGINT)
        # no transaction is open: the exit should come within a few ticks
        assert c.wait(timeout=2.5) == 0, "pgcarrier still running 2.5 s after SIGINT"
    finally:
        s.close()
        c.wait(timeout=10)


def test_unencrypted_data_after_ssl_request(carrier, certs):
    c = carrier(**client_tls(certs, "prefer"))
    for extra in (b"garbage!", harness.msg("Q", harness.cstr("SELECT 1"))):
        rc = harness.RawConn(c.host, c.port)
        try:
            rc.send_raw(SSL_REQUEST + extra)
            expect_fatal_then_close(rc, "08P01", "received unencrypted data after SSL request")
        finally:
            rc.sock.close()
    # with TLS off too: 'N', then the same refusal (as PostgreSQL after its 'N')
    c2 = carrier()
    rc = harness.RawConn(c2.host, c2.port)
    try:
        body = struct.pack("!I", 196608) + b"user\0app\0database\0app\0\0"
        rc.send_raw(SSL_REQUEST + struct.pack("!I", len(body) + 4) + body)
        assert rc.sock.recv(1) == b"N"
        expect_fatal_then_close(rc, "08P01", "received unencrypted data after SSL request")
    finally:
        rc.close()


def test_ssl_request_answers(carrier, certs):
    c = carrier(**client_tls(certs, "prefer"))
    # GSSENCRequest: 'N' (no GSSAPI), then SSLRequest on the same connection: 'S'
    rc = harness.RawConn(c.host, c.port)
    try:
        rc.send_raw(GSSENC_REQUEST)
        assert rc.sock.recv(1) == b"N"
        rc.send_raw(SSL_REQUEST)
        assert rc.sock.recv(1) == b"S"
        rc.sock = no_verify_ctx().wrap_socket(rc.sock)
        rc.startup("app", "app")
        assert harness.data_row(dict(rc.query("SELECT 5"))["D"]) == [b"5"]
    finally:
        rc.close()
    # a second SSLRequest inside TLS is an error, not a second handshake
    # (PostgreSQL says the same: it reads it as a protocol version)
    rc = raw_tls(c)
    try:
        rc.send_raw(SSL_REQUEST)
        expect_fatal_then_close(rc, "0A000",
                                "unsupported frontend protocol 1234.5679: server supports 3.0 to 3.0")
    finally:
        rc.sock.close()
    # disable: 'N'
    c2 = carrier()
    rc = harness.RawConn(c2.host, c2.port)
    try:
        rc.send_raw(SSL_REQUEST)
        assert rc.sock.recv(1) == b"N"
    finally:
        rc.sock.close()
    # a client that is not TLS at all after 'S' (sends a startup packet in clear)
    rc = harness.RawConn(c.host, c.port)
    try:
        rc.send_raw(SSL_REQUEST)
        assert rc.sock.recv(1) == b"S"
        body = struct.pack("!I", 196608) + b"user\0app\0database\0app\0\0"
        rc.send_raw(struct.pack("!I", len(body) + 4) + body)
        data = read_until_closed(rc.sock)
        assert data == b"" or data[:1] == b"\x15", data[:20]   # nothing, or a TLS alert
    finally:
        rc.sock.close()
    assert "TLS handshake failed: wrong version number" in c.log()
    with tls_connect(c) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# ---------------------------------------------------------------------------
# 8. Configuration
# ---------------------------------------------------------------------------

def _bad_configs(certs, d):
    missing = os.path.join(d, "missing.crt")
    garbage = os.path.join(d, "garbage.crt")
    with open(garbage, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    return [
        (client_tls(certs, "require", client_tls_cert_file=missing),
         'could not load client_tls_cert_file "%s"' % missing),
        (client_tls(certs, "require", client_tls_cert_file=garbage),
         'could not load client_tls_cert_file "%s"' % garbage),
        (client_tls(certs, "prefer", client_tls_key_file=os.path.join(d, "missing.key")),
         'could not load client_tls_key_file "%s"' % os.path.join(d, "missing.key")),
        (client_tls(certs, "prefer", client_tls_key_file=certs.app_key),
         ("client_tls_key_file", certs.app_key)),
        (client_tls(certs, "prefer", client_tls_ca_file=missing),
         'could not load client_tls_ca_file "%s"' % missing),
        ({"client_tls_sslmode": "require"},
         "client_tls_sslmode = require needs client_tls_cert_file and client_tls_key_file"),
        (client_tls(certs, "verify-ca"), "client_tls_sslmode = verify-ca needs client_tls_ca_file"),
        ({"client_tls_sslmode": "sometimes"}, 'invalid value "sometimes" for client_tls_sslmode'),
        (client_tls(certs, "require", client_tls_protocols="tlsv9"),
         'invalid value "tlsv9" for client_tls_protocols'),
        (client_tls(certs, "require", client_tls_ciphers="NO-SUCH-CIPHER"),
         'invalid value "NO-SUCH-CIPHER" for client_tls_ciphers'),
        (dict(client_tls(certs, "require"), auth_type="cert"), "auth_type = cert needs TLS with clients"),
        (server_tls(certs, "verify-full"), "server_tls_sslmode = verify-full needs server_tls_ca_file"),
        (dict(server_tls(certs, "verify-ca"), server_tls_ca_file=missing),
         'could not load server_tls_ca_file "%s"' % missing),
        (server_tls(certs, "require", server_tls_cert_file=certs.app_crt),
         "server_tls_cert_file and server_tls_key_file go together"),
        (server_tls(certs, "require", server_tls_cert_file=missing, server_tls_key_file=certs.app_key),
         'could not load server_tls_cert_file "%s"' % missing),
    ]


def test_bad_tls_config_refused_at_start(carrier, certs):
    d = tempfile.mkdtemp(prefix="pgc-tls-bad-")
    try:
        for settings, message in _bad_configs(certs, d):
            c = carrier(start=False, **settings)
            with pytest.raises(harness.HarnessError) as ei:
                c.start()
            c.expect_exit = True
            for m in (message if isinstance(message, tuple) else (message,)):
                assert m in str(ei.value), (settings, str(ei.value)[-1500:])
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_relative_file_names(carrier, certs):
    c = carrier(start=False, client_tls_sslmode="require", client_tls_cert_file="tls/s.crt",
                client_tls_key_file="tls/s.key", client_tls_ca_file="tls/ca.crt",
                auth_type="cert")
    os.mkdir(os.path.join(c.dir, "tls"))
    for src, dst in (("server.crt", "s.crt"), ("server.key", "s.key"), ("ca.crt", "ca.crt")):
        shutil.copy(os.path.join(certs.dir, src), os.path.join(c.dir, "tls", dst))
    c.start()
    with tls_connect(c, cert="app", certs=certs, sslmode="verify-full", root=certs.ca_crt) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("app",)


def test_reload_bad_cert_keeps_old_config(carrier, certs):
    c = carrier(start=False)
    cur_crt, cur_key = os.path.join(c.dir, "cur.crt"), os.path.join(c.dir, "cur.key")
    shutil.copy(certs.server_crt, cur_crt)
    shutil.copy(certs.server_key, cur_key)
    c.settings.update(client_tls(certs, "require", client_tls_cert_file=cur_crt,
                                 client_tls_key_file=cur_key))
    c.start()
    held = tls_connect(c, sslmode="verify-full", root=certs.ca_crt)
    try:
        missing = os.path.join(c.dir, "missing.crt")
        assert reload_and_wait(c, client_tls_cert_file=missing) is False
        assert c.running
        assert 'could not load client_tls_cert_file "%s"' % missing in c.log()
        # old config: TLS with the old certificate, plain still refused
        with tls_connect(c, sslmode="verify-full", root=certs.ca_crt) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        text = refused(tls_connect, c, sslmode="disable")
        assert "this connection requires TLS" in text
        assert held.execute("SELECT 2").fetchone() == (2,)

        # a renewed certificate in the same files: the next reload takes it,
        # new connections get it (this one is for another name)
        shutil.copy(certs.wrong_crt, cur_crt)
        shutil.copy(certs.wrong_key, cur_key)
        assert reload_and_wait(c, client_tls_cert_file=cur_crt)
        text = refused(tls_connect, c, sslmode="verify-full", root=certs.ca_crt)
        assert "localhost" in text or "does not match" in text, text
        with tls_connect(c, sslmode="verify-ca", root=certs.ca_crt) as conn:
            assert conn.execute("SELECT 3").fetchone() == (3,)
        assert held.execute("SELECT 4").fetchone() == (4,)
        assert held.pgconn.ssl_in_use

        # TLS off by reload: 'N', plain accepted again
        assert reload_and_wait(c, client_tls_sslmode="disable")
        with tls_connect(c, sslmode="prefer") as conn:
            assert not conn.pgconn.ssl_in_use
        assert held.execute("SELECT 5").fetchone() == (5,)
    finally:
        held.close()


def test_reload_turns_server_tls_on(carrier, certs, tls_pg):
    c = carrier(server=tls_pg, databases={"app": tls_db(tls_pg, "localhost")})
    text = refused(plain_connect, c)
    assert "no encryption" in text, text
    assert reload_and_wait(c, server_tls(certs, "verify-full", "ca"))
    with plain_connect(c) as conn:
        assert backend_ssl(conn)[0] is True
    # a bad server CA on reload is refused; the old one stays
    assert reload_and_wait(c, server_tls_ca_file=os.path.join(c.dir, "nope.crt")) is False
    assert "could not load server_tls_ca_file" in c.log()
    with plain_connect(c) as conn:
        assert backend_ssl(conn)[0] is True
