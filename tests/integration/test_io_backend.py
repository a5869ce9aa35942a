"""The event loop's backend (io_backend, PGCARRIER_IO_BACKEND): the one
selected is the one the workers use (their descriptors in /proc say so, not
only the log), and io_uring refused by the kernel falls back to epoll with
one log line. See docs/behaviour.md, "Config file" (io_backend)."""

import ctypes
import os
import platform

import psycopg
import pytest

from console_helpers import CONSOLE_SETTINGS, console, show

# A seccomp filter (classic BPF) that makes io_uring_setup fail with EPERM,
# as Docker's default profile and other sandboxes do: the real way a
# kernel that has io_uring refuses it to one process. io_uring_setup is
# system call 425 on every architecture (the generic table's numbers).
NR_IO_URING_SETUP = 425
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
EPERM = 1


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte),
                ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def _deny_io_uring():
    """Runs in the daemon's process before exec: from here on,
    io_uring_setup returns EPERM (the filter is inherited by exec)."""
    libc = ctypes.CDLL(None, use_errno=True)
    prog = (SockFilter * 4)(
        SockFilter(0x20, 0, 0, 0),                              # A = seccomp_data.nr
        SockFilter(0x15, 0, 1, NR_IO_URING_SETUP),              # A == io_uring_setup?
        SockFilter(0x06, 0, 0, SECCOMP_RET_ERRNO | EPERM),      #   yes: fail with EPERM
        SockFilter(0x06, 0, 0, SECCOMP_RET_ALLOW))              #   no: let it run
    fprog = SockFprog(len(prog), prog)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "could not install the seccomp filter")


def event_loops(pid):
    """The kinds of event-loop descriptors process pid holds, e.g.
    {"eventpoll": 2} (one per worker)."""
    kinds = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        for kind in ("eventpoll", "io_uring"):
            if target == "anon_inode:[%s]" % kind:
                kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def started_line(c):
    return [l for l in c.log().splitlines() if "pgcarrier started" in l]


def serves(c):
    for dsn in (c.dsn(), c.unix_dsn()):     # TCP and the Unix socket (EPOLLEXCLUSIVE in every worker)
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
    # several clients at once, each a few transactions (the pool shares servers)
    conns = [psycopg.connect(c.dsn(), autocommit=True) for _ in range(4)]
    try:
        for i in range(3):
            for conn in conns:
                assert conn.execute("SELECT %s::int", (i,)).fetchone() == (i,)
    finally:
        for conn in conns:
            conn.close()


def make(carrier, setting, env, **kw):
    """A pgcarrier with io_backend = setting (None: not set) and
    PGCARRIER_IO_BACKEND = env (None: unset), whatever the test run's is."""
    settings = dict(CONSOLE_SETTINGS, **({"io_backend": setting} if setting else {}))
    c = carrier(start=False, **settings)
    c.env_changes["PGCARRIER_IO_BACKEND"] = env
    for k, v in kw.items():
        setattr(c, k, v)
    return c.start()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("setting,env,used", [
    ("epoll", None, "epoll"),
    (None, None, "epoll"),                 # the default
    ("io_uring", None, "io_uring"),
    ("auto", None, "io_uring"),
    ("epoll", "io_uring", "io_uring"),      # the variable overrides the file
    ("io_uring", "epoll", "epoll"),
])
def test_backend_in_use(carrier, setting, env, used):
    c = make(carrier, setting, env)
    serves(c)
    assert event_loops(c.pid) == {"eventpoll" if used == "epoll" else "io_uring": 2}, event_loops(c.pid)
    assert started_line(c) and started_line(c)[0].endswith("io_backend %s" % used), started_line(c)
    assert "io_uring is unavailable" not in c.log()
    with console(c) as adm:
        cfg = {r["key"]: r for r in show(adm, "CONFIG")}
        # SHOW CONFIG gives the setting (the file's); the log line, what runs
        assert cfg["io_backend"]["value"] == (setting or "epoll") and cfg["io_backend"]["default"] == "epoll"
        assert cfg["io_backend"]["changeable"] == "no"
        with pytest.raises(psycopg.errors.CantChangeRuntimeParam, match="without restarting"):
            adm.execute("SET io_backend = epoll")


@pytest.mark.timeout(60)
@pytest.mark.skipif(platform.system() != "Linux", reason="seccomp is Linux's")
@pytest.mark.parametrize("setting,level", [("io_uring", "WARNING"), ("auto", "LOG")])
def test_fallback_when_io_uring_is_refused(carrier, setting, level):
    c = make(carrier, setting, None, preexec_fn=_deny_io_uring)
    serves(c)
    assert event_loops(c.pid) == {"eventpoll": 2}, event_loops(c.pid)
    lines = [l for l in c.log().splitlines() if "io_uring is unavailable" in l]
    # one line for all workers, with the kernel's reason
    assert len(lines) == 1, c.log()
    assert ("%s: io_backend = %s: io_uring is unavailable (io_uring_queue_init: Operation not permitted), "
            "using epoll" % (level, setting)) in lines[0], lines
    assert started_line(c)[0].endswith("io_backend epoll"), started_line(c)


@pytest.mark.timeout(30)
def test_invalid_backend_names(carrier):
    c = carrier(start=False)
    c.env_changes["PGCARRIER_IO_BACKEND"] = "kqueue"
    with pytest.raises(Exception, match='invalid PGCARRIER_IO_BACKEND "kqueue": expected epoll, io_uring or auto'):
        c.start()
    c = carrier(start=False, io_backend="poll")
    with pytest.raises(Exception, match='invalid value "poll" for io_backend: expected epoll, io_uring or auto'):
        c.start()
