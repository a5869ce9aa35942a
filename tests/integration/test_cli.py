"""Command line: --version, --help, config file errors (FILE:LINE: on
stderr, exit status 1), and -d (daemonize, pidfile, serves, stops on
SIGINT).  See docs/behaviour.md, "Command line" and "Config file"."""

import os
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
    d = tempfile.mkdtemp(prefix="pgc-cli-")
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

def _config(workdir, port, main_extra="", db_section=None, tail=""):
    dbs = db_section if db_section is not None else \
        "app = host=/tmp port=5432 dbname=app\n"
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
