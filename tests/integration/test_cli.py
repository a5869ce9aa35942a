"""Command line: --version, --help, config file errors (FILE:LINE: on
stderr, exit status 1), and -d (daemonize, pidfile, serves, stops on
SIGINT).  See docs/behaviour.md, "Command line" and "Config file"."""

import os
import pwd
import re
import signal
import socket
import subprocess
import tempfile
import time

import psycopg
import pytest

import harness


def run(args, timeout=10, cwd=None):
    """Run the binary; a config error must make it exit by itself, so a
    process still running after `timeout` is killed and reported."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, cwd=cwd)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        pytest.fail("%s still running after %d s; stderr: %s"
                    % (args, timeout, err.decode(errors="replace")))
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


@pytest.fixture
def workdir():
    """A temp dir; when the tests run as root, the daemon's account owns it
    (it removes its socket, lock file and pidfile there at exit)."""
    d = tempfile.mkdtemp(prefix="pgc-cli-")
    os.chmod(d, 0o755)
    if harness.RUN_AS:
        pw = pwd.getpwnam(harness.RUN_AS)
        os.chown(d, pw.pw_uid, pw.pw_gid)
    yield d
    subprocess.run(["rm", "-rf", d])


# ---------------------------------------------------------------------------
# --version / --help / unknown options
# ---------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_version(pgc_bin):
    rc, out, err = run([pgc_bin, "--version"])
    assert rc == 0, (rc, out, err)
    assert out.strip() == "pgcarrier 0.1.0", (out, err)


@pytest.mark.timeout(30)
def test_help(pgc_bin):
    rc, out, err = run([pgc_bin, "--help"])
    assert rc == 0, (rc, out, err)
    text = out + err
    assert "usage" in text.lower(), text
    for opt in ("-c", "-d", "--help", "--version"):
        assert opt in text, "--help does not mention %s:\n%s" % (opt, text)


@pytest.mark.timeout(30)
def test_unknown_option_fails(pgc_bin):
    rc, out, err = run([pgc_bin, "--no-such-option"])
    assert rc != 0, (rc, out, err)
    assert err.strip(), "no message on stderr for an unknown option"


@pytest.mark.timeout(30)
def test_missing_config_file(pgc_bin, workdir):
    path = os.path.join(workdir, "does-not-exist.ini")
    rc, out, err = run([pgc_bin, "-c", path])
    assert rc == 1, (rc, out, err)
    assert path in err, err


# ---------------------------------------------------------------------------
# bad config files: exit 1, "FILE:LINE: message" on stderr
# ---------------------------------------------------------------------------

def _config(workdir, port, main_extra="", db_section=None, tail="", user=True):
    """A config file's text; run as root, it names the account to become
    (user=False leaves that out)."""
    dbs = db_section if db_section is not None else \
        "app = host=/tmp port=5432 dbname=app\n"
    if user and harness.RUN_AS:
        main_extra = "user = %s\n" % harness.RUN_AS + main_extra
    return ("[pgcarrier]\n"                     # line 1
            "listen_addr = 127.0.0.1\n"         # line 2
            "listen_port = %d\n"                # line 3
            "unix_socket_dir = %s\n"            # line 4
            "%s"                                # line 5...
            "\n[databases]\n%s%s" % (port, workdir, main_extra, dbs, tail))


# (id, extra [pgcarrier] lines, [databases] body or None, tail, text of the
#  bad line (its first occurrence in the file), words the message must name)
BAD = [
    ("unknown-key", "no_such_key = 1\n", None, "", "no_such_key", ["no_such_key"]),
    ("unknown-key-later", "workers = 1\nlisten_port_x = 1\n", None, "",
     "listen_port_x", ["listen_port_x"]),
    ("bad-int", "default_pool_size = lots\n", None, "", "default_pool_size",
     ["default_pool_size"]),
    ("negative-int", "max_client_conn = -5\n", None, "", "max_client_conn",
     ["max_client_conn"]),
    ("port-range", "", None, "", "listen_port = 99999", ["listen_port"]),
    ("bad-pool-mode", "pool_mode = sometimes\n", None, "", "pool_mode",
     ["pool_mode"]),
    ("bad-time", "query_wait_timeout = 5 fortnights\n", None, "",
     "query_wait_timeout", ["query_wait_timeout"]),
    ("bad-bool", "log_connections = perhaps\n", None, "", "log_connections",
     ["log_connections"]),
    ("duplicate-key", "workers = 1\nverbose = 0\nworkers = 2\n", None, "",
     "workers = 2", ["workers"]),
    ("unknown-section", "", None, "\n[frobnicate]\nx = 1\n", "[frobnicate]",
     ["frobnicate"]),
    ("section-no-bracket", "", None, "\n[users\n", "[users", []),
    ("db-bad-port", "", "app = host=/tmp port=notaport dbname=app\n", "",
     "port=notaport", ["port"]),
    ("db-unknown-key", "", "app = host=/tmp hots=localhost\n", "", "hots=",
     ["hots"]),
    ("db-no-equals", "", "app = host=/tmp dbname\n", "", "app = host=/tmp dbname",
     []),
    ("db-bad-pool-mode", "", "app = host=/tmp pool_mode=sometimes\n", "",
     "pool_mode=sometimes", ["pool_mode"]),
    ("db-duplicate", "",
     "app = host=/tmp dbname=app\nother = host=/tmp\napp = host=/tmp dbname=x\n",
     "", "dbname=x", ["app"]),
    ("line-outside-section", None, None, "", "listen_port", []),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", BAD, ids=[b[0] for b in BAD])
def test_bad_config_exits_with_file_line(pgc_bin, workdir, case):
    name, extra, dbs, tail, bad_text, words = case
    port = harness.free_port()
    if name == "line-outside-section":
        text = "listen_port = %d\n" % port + _config(workdir, port)
    else:
        text = _config(workdir, port, extra, dbs, tail)
    if name == "port-range":
        text = text.replace("listen_port = %d" % port, "listen_port = 99999")
    lines = text.splitlines()
    line = 1 + next(i for i, ln in enumerate(lines) if bad_text in ln)
    path = os.path.join(workdir, "bad.ini")
    with open(path, "w") as f:
        f.write(text)
    rc, out, err = run([pgc_bin, "-c", path], cwd=workdir)
    numbered = "".join("%3d| %s\n" % (i + 1, ln) for i, ln in enumerate(lines))
    assert rc == 1, "exit status %r (want 1) for:\n%s\nstderr: %s" % (rc, numbered, err)
    assert "%s:%d:" % (path, line) in err, (
        "stderr lacks %s:%d: for:\n%s\nstderr: %s" % (path, line, numbered, err))
    msg = err[err.index("%s:%d:" % (path, line)):]
    for w in words:
        assert w in msg, "message does not name %r: %s" % (w, msg)


@pytest.mark.timeout(30)
def test_bad_auth_file_is_reported(pgc_bin, workdir):
    port = harness.free_port()
    auth = os.path.join(workdir, "userlist.txt")
    with open(auth, "w") as f:
        f.write('"app" "secret"\n"broken line without quotes\n')
    path = os.path.join(workdir, "auth.ini")
    with open(path, "w") as f:
        f.write(_config(workdir, port, "auth_file = %s\n" % auth))
    rc, out, err = run([pgc_bin, "-c", path], cwd=workdir)
    assert rc == 1, (rc, err)
    assert "%s:2:" % auth in err, err


@pytest.mark.timeout(30)
def test_good_config_is_not_an_error(pgc_bin, workdir):
    """Control for the cases above: the same file without the bad line
    starts (and stops cleanly on SIGINT)."""
    port = harness.free_port()
    path = os.path.join(workdir, "good.ini")
    with open(path, "w") as f:
        f.write(_config(workdir, port, "workers = 1\npool_mode = session\n"
                                       "query_wait_timeout = 1.5s\n"
                                       "client_idle_timeout = 500ms\n"
                                       "server_lifetime = 1h\n"
                                       "server_idle_timeout = 3min\n"))
    p = subprocess.Popen([pgc_bin, "-c", path], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        assert p.poll() is None, "exited with %s: %s" % (
            p.returncode, p.stderr.read().decode(errors="replace"))
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        try:
            rc = p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
    assert rc == 0, "exit %s after SIGINT" % rc


# ---------------------------------------------------------------------------
# -d: daemonize
# ---------------------------------------------------------------------------

def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.timeout(60)
def test_daemonize_with_pidfile(pgc_bin, pg, workdir):
    port = harness.free_port()
    pidfile = os.path.join(workdir, "pgcarrier.pid")
    logfile = os.path.join(workdir, "pgcarrier.log")
    path = os.path.join(workdir, "d.ini")
    dbs = "app = host=%s port=%d dbname=app\n" % (pg.sockdir, pg.port)
    with open(path, "w") as f:
        f.write(_config(workdir, port, "pidfile = %s\nlogfile = %s\n"
                                       "pool_mode = transaction\n"
                                       % (pidfile, logfile), dbs))
    # relative paths must keep working after the daemon's chdir: run it from
    # elsewhere with an absolute -c
    rc, out, err = run([pgc_bin, "-d", "-c", path], timeout=15, cwd="/")
    assert rc == 0, "the launching process exited %r: %s" % (rc, err)
    pid = None
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(pidfile) as f:
                    txt = f.read().strip()
                if re.fullmatch(r"\d+", txt):
                    pid = int(txt)
                    break
            except OSError:
                pass
            time.sleep(0.05)
        assert pid, "no pidfile %s after -d" % pidfile
        assert _alive(pid), "pid %d from the pidfile is not running" % pid
        with open("/proc/%d/status" % pid) as f:
            ppid = int(re.search(r"PPid:\s+(\d+)", f.read()).group(1))
        assert ppid != os.getpid(), "-d did not detach from its parent"

        last = [None]

        def serve():
            try:
                with psycopg.connect("host=127.0.0.1 port=%d dbname=app user=app "
                                     "connect_timeout=5" % port,
                                     autocommit=True, prepare_threshold=None) as c:
                    return c.execute("SELECT count(*) FROM items").fetchone()[0] == 100
            except psycopg.Error as e:
                last[0] = e
                return False

        deadline = time.monotonic() + 10
        ok = serve()
        while not ok and time.monotonic() < deadline:
            time.sleep(0.2)
            ok = serve()
        assert ok, "daemonized pgcarrier does not serve: %s\nlog: %s" % (
            last[0], open(logfile).read()[-2000:] if os.path.exists(logfile) else "")
        assert os.path.exists(logfile), "logfile not written"

        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), "daemon still running 10 s after SIGINT"
        pid = None
    finally:
        if pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)
    log = open(logfile, errors="replace").read() if os.path.exists(logfile) else ""
    assert "Sanitizer" not in log and "runtime error:" not in log, log[-3000:]


# ---------------------------------------------------------------------------
# never take over another server's socket, port or pidfile
# ---------------------------------------------------------------------------

def _write(workdir, name, text):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def _bare_config(sockdir, port, listen_addr="", extra=""):
    """A config listening on the Unix socket of sockdir/port only (no TCP
    unless listen_addr), with the harness' account when run as root."""
    user = "user = %s\n" % harness.RUN_AS if harness.RUN_AS else ""
    return ("[pgcarrier]\n%slisten_addr = %s\nlisten_port = %d\nunix_socket_dir = %s\n%s"
            "\n[databases]\napp = host=/tmp port=5432 dbname=app\n"
            % (user, listen_addr, port, sockdir, extra))


def _serving_unix(sockdir, port):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(2)
        s.connect(os.path.join(sockdir, ".s.PGSQL.%d" % port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _spawn(path, ready):
    """Start the daemon in the foreground; wait until ready() or its exit."""
    p = subprocess.Popen([harness.pgcarrier_bin(), "-c", path], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while p.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert p.poll() is None and ready(), "did not start: %s" % (
        p.communicate(timeout=10)[0].decode(errors="replace") if p.poll() is not None else "timeout")
    return p


def _stop(p, sig=signal.SIGINT):
    p.send_signal(sig)
    try:
        return p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()


def _first_line(path):
    with open(path) as f:
        return f.readline().strip()


def _dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


@pytest.mark.timeout(60)
def test_second_pgcarrier_on_the_same_port_is_refused(carrier, pgc_bin, workdir):
    """A second instance on the same TCP port used to join it through
    SO_REUSEPORT and take half of the clients."""
    a = carrier()
    path = _write(workdir, "b.ini", _config(workdir, a.port))
    rc, out, err = run([pgc_bin, "-c", path])
    assert rc == 1, (rc, err)
    assert "127.0.0.1 port %d" % a.port in err, err
    assert "process %d" % a.pid in err, err
    for i in range(20):
        with a.connect() as conn:
            assert conn.execute("SELECT %s::int", (i,)).fetchone()[0] == i


@pytest.mark.timeout(60)
def test_live_unix_socket_is_not_taken_over(carrier, pgc_bin, workdir):
    a = carrier()
    lock = os.path.join(a.sockdir, ".s.PGSQL.%d.lock" % a.port)
    assert _first_line(lock) == str(a.pid)
    path = _write(workdir, "b.ini", _bare_config(a.sockdir, a.port))
    rc, out, err = run([pgc_bin, "-c", path])
    assert rc == 1, (rc, err)
    assert lock in err and "process %d" % a.pid in err, err
    assert _first_line(lock) == str(a.pid)
    with a.connect(unix=True) as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1


@pytest.mark.timeout(60)
def test_postgres_socket_is_not_taken_over(fresh_pg, pgc_bin, workdir):
    """unix_socket_dir and listen_port of a PostgreSQL server: refused on its
    lock file; its socket stays, and works, also after the attempt."""
    pg = fresh_pg
    postmaster = _first_line(os.path.join(pg.datadir, "postmaster.pid"))
    sock = os.path.join(pg.sockdir, ".s.PGSQL.%d" % pg.port)
    before = os.stat(sock).st_ino
    path = _write(workdir, "pg.ini", _bare_config(pg.sockdir, pg.port))
    rc, out, err = run([pgc_bin, "-c", path])
    assert rc == 1, (rc, err)
    assert sock + ".lock" in err and "process %s" % postmaster in err, err
    assert os.stat(sock).st_ino == before, "PostgreSQL's socket file was replaced"
    assert pg.sql("SELECT 42") == "42"


@pytest.mark.timeout(60)
def test_dead_socket_and_stale_lock_file_are_replaced(pgc_bin, workdir):
    """What a pgcarrier killed with SIGKILL leaves (its socket, its lock file
    with its pid) does not stop the next one; that one's files go at exit."""
    port = harness.free_port()
    sock = os.path.join(workdir, ".s.PGSQL.%d" % port)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock)
    s.close()                   # the file stays, nobody listens
    with open(sock + ".lock", "w") as f:
        f.write("%d\n/old.ini\n" % _dead_pid())
    path = _write(workdir, "s.ini", _bare_config(workdir, port))
    p = _spawn(path, lambda: _serving_unix(workdir, port))
    try:
        assert _first_line(sock + ".lock") == str(p.pid)
    finally:
        assert _stop(p) == 0
    assert not os.path.exists(sock) and not os.path.exists(sock + ".lock")


@pytest.mark.timeout(60)
def test_socket_someone_listens_on_is_refused(pgc_bin, workdir):
    """A server that writes no lock file (PgBouncer, say) still keeps its socket."""
    port = harness.free_port()
    sock = os.path.join(workdir, ".s.PGSQL.%d" % port)
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(sock)
    other.listen(8)
    try:
        path = _write(workdir, "l.ini", _bare_config(workdir, port))
        rc, out, err = run([pgc_bin, "-c", path])
        assert rc == 1, (rc, err)
        assert sock in err and "process %d is listening" % os.getpid() in err, err
        assert _serving_unix(workdir, port)
        assert not os.path.exists(sock + ".lock"), "a refused start left its lock file"
    finally:
        other.close()


@pytest.mark.timeout(60)
def test_socket_path_that_is_not_a_socket_is_refused(pgc_bin, workdir):
    port = harness.free_port()
    sock = _write(workdir, ".s.PGSQL.%d" % port, "precious\n")
    path = _write(workdir, "f.ini", _bare_config(workdir, port))
    rc, out, err = run([pgc_bin, "-c", path])
    assert rc == 1, (rc, err)
    assert "not a socket" in err, err
    assert open(sock).read() == "precious\n"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_exit_removes_its_own_files_only(carrier, sig):
    a = carrier()
    sock = os.path.join(a.sockdir, ".s.PGSQL.%d" % a.port)
    a.kill(sig)
    a.wait(10)
    assert not os.path.exists(sock) and not os.path.exists(sock + ".lock")
    # files that replaced ours while we ran are someone else's: left alone
    b = carrier()
    sock = os.path.join(b.sockdir, ".s.PGSQL.%d" % b.port)
    os.unlink(sock)
    os.unlink(sock + ".lock")
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(sock)
    other.listen(8)
    with open(sock + ".lock", "w") as f:
        f.write("%d\n" % os.getpid())
    try:
        b.kill(sig)
        b.wait(10)
        assert os.path.exists(sock) and _serving_unix(b.sockdir, b.port)
        assert _first_line(sock + ".lock") == str(os.getpid())
    finally:
        other.close()


@pytest.mark.timeout(60)
def test_socket_in_tmp_is_removed_after_dropping_root(carrier):
    """In /tmp (sticky) only a file's owner may remove it: the socket and
    lock file made as root must be the run-as user's for that."""
    c = carrier(unix_socket_dir="/tmp")
    sock = "/tmp/.s.PGSQL.%d" % c.port
    assert os.path.exists(sock)
    assert c.stop() == 0
    assert not os.path.exists(sock) and not os.path.exists(sock + ".lock")


def _read_pid(path, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            txt = _first_line(path)
            if re.fullmatch(r"\d+", txt):
                return int(txt)
        except OSError:
            pass
        time.sleep(0.05)
    return None


def _kill_and_wait(pid):
    if pid and _alive(pid):
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(60)
def test_live_pidfile_is_not_overwritten(pgc_bin, workdir):
    """-d twice with the same pidfile: the second start fails on the
    command line (exit 1, naming the pidfile and the pid), the first daemon
    and its pidfile stay."""
    pidfile = os.path.join(workdir, "p.pid")
    first = _write(workdir, "1.ini", _config(workdir, harness.free_port(), "pidfile = %s\n" % pidfile))
    os.mkdir(os.path.join(workdir, "2"))
    os.chmod(os.path.join(workdir, "2"), 0o777)
    second = _write(workdir, "2.ini", _config(os.path.join(workdir, "2"), harness.free_port(),
                                               "pidfile = %s\n" % pidfile))
    rc, out, err = run([pgc_bin, "-d", "-c", first], timeout=15)
    assert rc == 0, err
    pid = _read_pid(pidfile)
    try:
        assert pid and _alive(pid)
        rc, out, err = run([pgc_bin, "-d", "-c", second], timeout=15)
        assert rc == 1, "second -d exited %r: %s" % (rc, err)
        assert pidfile in err and "process %d" % pid in err, err
        assert _read_pid(pidfile) == pid and _alive(pid)
    finally:
        _kill_and_wait(pid)
    assert not os.path.exists(pidfile), "pidfile left after a clean exit"


@pytest.mark.timeout(60)
def test_stale_pidfile_is_replaced(pgc_bin, workdir):
    pidfile = _write(workdir, "s.pid", "%d\n" % _dead_pid())
    path = _write(workdir, "s.ini", _config(workdir, harness.free_port(), "pidfile = %s\n" % pidfile))
    rc, out, err = run([pgc_bin, "-d", "-c", path], timeout=15)
    assert rc == 0, err
    pid = _read_pid(pidfile)
    try:
        assert pid and _alive(pid)
    finally:
        _kill_and_wait(pid)


@pytest.mark.timeout(60)
def test_daemonize_failure_fails_the_command(carrier, pgc_bin, workdir):
    """-d used to exit 0 before the daemon had tried to listen."""
    a = carrier()
    path = _write(workdir, "d.ini", _config(workdir, a.port))
    rc, out, err = run([pgc_bin, "-d", "-c", path], timeout=15)
    assert rc == 1, (rc, err)
    assert "port %d" % a.port in err, err


# ---------------------------------------------------------------------------
# root: refused, unless told whom to become
# ---------------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _status_ids(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split()[1:]
    return None


@needs_root
@pytest.mark.timeout(30)
def test_root_is_refused_without_user(pgc_bin, workdir):
    path = _write(workdir, "r.ini", _config(workdir, harness.free_port(), user=False))
    rc, out, err = run([pgc_bin, "-c", path])
    assert rc == 1, (rc, err)
    assert "must not run as root" in err and '"user"' in err, err
    assert not any(n.startswith(".s.PGSQL") for n in os.listdir(workdir)), os.listdir(workdir)


@needs_root
@pytest.mark.timeout(30)
@pytest.mark.parametrize("user,words", [("root", "must not run as root"),
                                        ("pgc_no_such_user", "no such user")])
def test_user_that_cannot_be_used_is_refused(pgc_bin, workdir, user, words):
    path = _write(workdir, "u.ini", _config(workdir, harness.free_port(), "user = %s\n" % user,
                                            user=False))
    rc, out, err = run([pgc_bin, "-c", path])
    assert rc == 1, (rc, err)
    assert "user = %s" % user in err and words in err, err


@needs_root
@pytest.mark.timeout(30)
def test_user_drops_root_for_good(carrier):
    """Real, effective, saved and file-system ids are the user's, with its
    groups, and no capability is left."""
    c = carrier()
    pw = pwd.getpwnam(harness.RUN_AS)
    assert _status_ids(c.pid, "Uid") == [str(pw.pw_uid)] * 4
    assert _status_ids(c.pid, "Gid") == [str(pw.pw_gid)] * 4
    assert sorted(map(int, _status_ids(c.pid, "Groups"))) == \
        sorted(set(os.getgrouplist(harness.RUN_AS, pw.pw_gid)))
    assert int(_status_ids(c.pid, "CapEff")[0], 16) == 0
    assert "running as user \"%s\"" % harness.RUN_AS in c.log()
    with c.connect() as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1


@needs_root
@pytest.mark.timeout(30)
def test_reload_reads_files_as_that_user(carrier):
    """After the drop, a file only root may read cannot be reloaded: the old
    config stays, and the log says why."""
    c = carrier()
    secret = os.path.join(c.dir, "root-only.txt")
    with open(secret, "w") as f:
        f.write('"app" "pw"\n')
    os.chown(secret, 0, 0)
    os.chmod(secret, 0o600)
    text = open(c.config_path).read().replace("[pgcarrier]\n", "[pgcarrier]\nauth_file = %s\n" % secret)
    with open(c.config_path, "w") as f:
        f.write(text)
    c.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "configuration not reloaded" not in c.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "configuration not reloaded" in c.log() and "Permission denied" in c.log(), c.log()[-2000:]
    with c.connect() as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1


@needs_root
@pytest.mark.timeout(30)
def test_without_root_user_can_only_name_ourselves(pgc_bin, workdir):
    """Not root: `user` naming someone else is an error (nobody to become)."""
    path = _write(workdir, "n.ini", _config(workdir, harness.free_port(), "user = nobody\n",
                                            user=False))
    rc, out, err = run(["setpriv", "--reuid=%s" % harness.RUN_AS, "--regid=%s" % harness.RUN_AS,
                        "--init-groups", pgc_bin, "-c", path])
    assert rc == 1, (rc, err)
    assert "only root can become another user" in err, err
