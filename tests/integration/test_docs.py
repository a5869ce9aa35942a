"""The documentation's examples work as written.

Every ```ini block of README.md and docs/*.md must load with
``pgcarrier --check`` exactly as it is printed (comments after values
included).  A file that a config names (an auth file, say) is shown in the
same document as a block whose info string names it, such as
```` ```text userlist.txt ````; such files are written next to the config
before it is checked.  The README's shell examples that are cheap to check are
checked: ``./pgcarrier`` command lines are run (with ``--check`` instead of
starting a daemon), ``make`` targets must exist (``make -n``), and scripts
named with ``bash FILE`` must exist and parse (``bash -n``).  Also here:
what ``--check`` itself does (docs/behaviour.md, "Command line").
"""

import glob
import os
import re
import shlex
import socket
import subprocess
import time

import pytest

import harness

DOCS = ["README.md"] + sorted(os.path.relpath(p, harness.REPO) for p in
                              glob.glob(os.path.join(harness.REPO, "docs", "*.md")))
CONFIG_SECTION = re.compile(r"^\[(pgcarrier|pgbouncer|databases|users|peers)\]", re.M | re.I)


def fenced_blocks(doc):
    """(line of the opening fence, language, file name or None, body) of
    each fenced block: the info string is "language [file name]"."""
    with open(os.path.join(harness.REPO, doc)) as f:
        lines = f.read().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = re.match(r"^```\s*(\S*)\s*(\S*)", lines[i])
        if not m:
            i += 1
            continue
        start, lang, name, body = i + 1, m.group(1).lower(), m.group(2) or None, []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        out.append((start, lang, name, "\n".join(body) + "\n"))
        i += 1
    return out


def ini_blocks():
    return [(doc, line, body) for doc in DOCS
            for line, lang, _, body in fenced_blocks(doc) if lang == "ini"]


def named_files(doc):
    """{file name: text} of the blocks of doc that name a file."""
    return {name: body for _, _, name, body in fenced_blocks(doc) if name}


def run(args, cwd=None, timeout=20, env=None):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, cwd=cwd, timeout=timeout,
                       text=True, env=env)
    return r.returncode, r.stdout, r.stderr


def check(pgc_bin, path, cwd=None):
    return run([pgc_bin, "--check", "-c", path], cwd=cwd)


@pytest.fixture
def workdir(tmp_path):
    return str(tmp_path)


# ---------------------------------------------------------------------------
# every ```ini block loads as written
# ---------------------------------------------------------------------------

def test_config_samples_are_tagged_ini():
    """A config sample that is not tagged ini would escape the check below."""
    untagged = ["%s:%d" % (doc, line) for doc in DOCS
                for line, lang, _, body in fenced_blocks(doc)
                if lang != "ini" and CONFIG_SECTION.search(body)]
    assert untagged == [], "config samples not in ```ini blocks: %s" % untagged
    docs_with_ini = {doc for doc, _, _ in ini_blocks()}
    assert {"README.md", "docs/behaviour.md"} <= docs_with_ini, docs_with_ini


@pytest.mark.timeout(60)
@pytest.mark.parametrize("doc,line,body", ini_blocks(),
                         ids=["%s:%d" % (d, n) for d, n, _ in ini_blocks()])
def test_ini_block_loads(pgc_bin, workdir, doc, line, body):
    for name, text in named_files(doc).items():
        assert "/" not in name, "%s: a block names %s: only plain file names" % (doc, name)
        with open(os.path.join(workdir, name), "w") as f:
            f.write(text)
    path = os.path.join(workdir, "pgcarrier.ini")
    with open(path, "w") as f:
        f.write(body)
    rc, out, err = check(pgc_bin, path, cwd=workdir)
    assert (rc, out, err) == (0, "configuration file %s is valid\n" % path, ""), \
        "%s:%d does not load as written: %s%s" % (doc, line, out, err)


# ---------------------------------------------------------------------------
# the README's shell examples
# ---------------------------------------------------------------------------

def readme_commands():
    """(line, argv) of each command in the README's ```sh blocks, without
    its trailing comment and leading VAR=value assignments."""
    cmds = []
    for start, lang, _, body in fenced_blocks("README.md"):
        if lang not in ("sh", "bash", "shell"):
            continue
        for k, text in enumerate(body.split("\n")):
            argv = shlex.split(text, comments=True)
            while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
                argv.pop(0)
            if argv:
                cmds.append((start + 1 + k, argv))
    return cmds


def clean_env():
    """Our environment without what an outer make passes to its children
    (a jobserver, SAN=...), so that make -n sees only its own arguments."""
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(k, None)
    return env


def test_readme_has_checked_commands():
    kinds = {argv[0] for _, argv in readme_commands()}
    assert {"./pgcarrier", "make", "bash"} <= kinds, kinds


@pytest.mark.timeout(60)
def test_readme_pgcarrier_commands(pgc_bin, workdir):
    """./pgcarrier lines: options that --help lists; --help, --version and
    --check run; a line that would start the daemon is run with --check,
    with the README's first ini block as its config file."""
    rc, help_text, _ = run([pgc_bin, "--help"])
    assert rc == 0
    readme_ini = [body for doc, _, body in ini_blocks() if doc == "README.md"]
    with open(os.path.join(workdir, "pgcarrier.ini"), "w") as f:
        f.write(readme_ini[0])
    seen = 0
    for line, argv in readme_commands():
        if argv[0] != "./pgcarrier":
            continue
        seen += 1
        where = "README.md:%d: %s" % (line, " ".join(argv))
        for a in argv[1:]:
            if a.startswith("-"):
                assert re.search(r"(^|[\s,])%s([\s,=]|$)" % re.escape(a.split("=")[0]),
                                 help_text, re.M), "%s: --help has no %s" % (where, a)
        args = [a for a in argv[1:] if a != "-d"]
        if not {"--help", "-h", "--version", "-V", "--check", "-t"} & set(args):
            args = ["--check"] + args
        rc, out, err = run([pgc_bin] + args, cwd=workdir)
        assert rc == 0, "%s: exit %d: %s%s" % (where, rc, out, err)
        if "--version" in args:
            assert re.match(r"^pgcarrier \d+\.\d+\.\d+$", out.strip()), (where, out)
        if "--check" in args or "-t" in args:
            assert out.endswith(" is valid\n"), (where, out, err)
    assert seen >= 3


def make_targets(assignments):
    """Targets of the Makefile with these VAR=value arguments, from make's
    database (make -qp: nothing is built, and no recipe runs, not even
    those with $(MAKE) in them, which make -n would run)."""
    r = subprocess.run(["make", "-qp", "-C", harness.REPO] + assignments,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=clean_env(), timeout=30)
    return set(re.findall(r"(?m)^([A-Za-z0-9_.-]+):(?!=)", r.stdout))


@pytest.mark.timeout(60)
def test_readme_make_targets_and_scripts():
    """make lines name targets that exist; bash FILE lines name scripts that
    exist and parse."""
    checked = 0
    for line, argv in readme_commands():
        where = "README.md:%d: %s" % (line, " ".join(argv))
        if argv[0] == "make":
            assignments = [a for a in argv[1:] if "=" in a]
            targets = [a for a in argv[1:] if "=" not in a] or ["all"]
            missing = set(targets) - make_targets(assignments)
            assert not missing, "%s: no make target %s" % (where, sorted(missing))
            checked += 1
        elif argv[0] == "bash" and len(argv) >= 2:
            path = os.path.join(harness.REPO, argv[1])
            assert os.path.isfile(path), "%s: no such file" % where
            rc, out, err = run(["bash", "-n", path])
            assert rc == 0, "%s: %s" % (where, err)
            checked += 1
    assert checked >= 5


# ---------------------------------------------------------------------------
# --check itself
# ---------------------------------------------------------------------------

def test_check_reports_errors(pgc_bin, workdir):
    path = os.path.join(workdir, "bad.ini")
    with open(path, "w") as f:
        f.write("[pgcarrier]\nlogfile = /tmp/bob's.log ; default stderr\n")
    for opt in ("--check", "-t"):
        rc, out, err = run([pgc_bin, opt, "-c", path])
        assert rc == 1, (opt, rc, out, err)
        assert out == "", out
        assert err.startswith("%s:2: unterminated ' quote in the value for logfile" % path), err


def test_check_loads_the_files_it_names(pgc_bin, workdir):
    """An auth file that is missing or malformed makes --check fail, as it
    would make a start fail."""
    path = os.path.join(workdir, "p.ini")
    with open(path, "w") as f:
        f.write("[pgcarrier]\nauth_type = md5\nauth_file = users.txt ; next to p.ini\n")
    rc, out, err = check(pgc_bin, path)
    assert rc == 1 and "%s:3: cannot read auth_file" % path in err, (rc, out, err)
    with open(os.path.join(workdir, "users.txt"), "w") as f:
        f.write('"alice" Hunter2pw\n')
    rc, out, err = check(pgc_bin, path)
    assert rc == 1 and "users.txt:1: expected a double-quoted secret" in err, (rc, out, err)
    assert "Hunter2pw" not in err, err
    with open(os.path.join(workdir, "users.txt"), "w") as f:
        f.write('"alice" "secret"\n')
    rc, out, err = check(pgc_bin, path)
    assert (rc, out) == (0, "configuration file %s is valid\n" % path), (rc, out, err)


def test_check_opens_no_socket_log_or_pidfile(pgc_bin, workdir):
    """--check next to a live listener on the same port: still valid, and
    it creates neither the Unix socket, nor the log file, nor the pidfile."""
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        path = os.path.join(workdir, "c.ini")
        with open(path, "w") as f:
            f.write("[pgcarrier]\nlisten_port = %d\nunix_socket_dir = %s\n"
                    "logfile = %s/pgc.log\npidfile = %s/pgc.pid\n"
                    "[databases]\n* = host=/tmp ; any database\n"
                    % (port, workdir, workdir, workdir))
        rc, out, err = check(pgc_bin, path)
        assert (rc, out, err) == (0, "configuration file %s is valid\n" % path, "")
        assert sorted(os.listdir(workdir)) == ["c.ini"]
    finally:
        busy.close()


# ---------------------------------------------------------------------------
# the README's server-login setups, against Debian's default pg_hba.conf
# ---------------------------------------------------------------------------

DEBIAN_HBA = """local   all             postgres                                peer
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
"""


class TextCarrier(harness.Pgcarrier):
    """A harness daemon run with a config file given as text."""

    def __init__(self, binary, text):
        super().__init__(binary)
        self.text = text

    def write_config(self):
        text = self.text
        if harness.RUN_AS and not re.search(r"(?m)^user\s*=", text):
            # As root the daemon needs an account to run as (README, "Run").
            text = text.replace("[pgcarrier]\n", "[pgcarrier]\nuser = %s\n" % harness.RUN_AS, 1)
            self.settings["user"] = harness.RUN_AS
        with open(self.config_path, "w") as f:
            f.write(text)
        self.give_files()


def readme_ini_with(marker):
    blocks = [body for doc, _, body in ini_blocks() if doc == "README.md" and marker in body]
    assert len(blocks) == 1, "README: %d ini blocks with %r" % (len(blocks), marker)
    return blocks[0]


def set_key(text, key, value):
    """Set a [pgcarrier] key of an INI text (replace its line or add one)."""
    line = "%s = %s" % (key, value)
    if re.search(r"(?m)^%s\s*=" % key, text):
        return re.sub(r"(?m)^%s\s*=.*$" % key, line, text)
    return text.replace("[pgcarrier]\n", "[pgcarrier]\n%s\n" % line, 1)


def adapt(text, c, pg):
    """The README's config, on the test's ports and directories."""
    text = set_key(text, "listen_port", c.port)
    text = set_key(text, "unix_socket_dir", c.sockdir)
    text = set_key(text, "workers", 1)
    text = re.sub(r"(?m)^logfile\s*=.*\n", "", text)
    return (text.replace("port=5432", "port=%d" % pg.port)
            .replace("host=/var/run/postgresql", "host=" + pg.sockdir))


def start_readme_carrier(pgc_bin, pg, marker):
    c = TextCarrier(pgc_bin, "")
    c.text = adapt(readme_ini_with(marker), c, pg)
    return c.start()


def readme_secrets_query():
    for _, argv in readme_commands():
        if "-c" in argv and "pg_authid" in argv[argv.index("-c") + 1]:
            return argv[argv.index("-c") + 1]
    pytest.fail("README has no psql command that reads pg_authid")


@pytest.mark.timeout(90)
def test_readme_server_login_setups(pgc_bin, fresh_pg):
    import psycopg
    pg = fresh_pg
    with open(os.path.join(pg.datadir, "pg_hba.conf"), "w") as f:
        f.write(DEBIAN_HBA)
    pg.sql("CREATE ROLE alice LOGIN PASSWORD 'alice-pw'; "
           "CREATE ROLE app_pool LOGIN PASSWORD 's3cret'; SELECT pg_reload_conf()")
    # wait until PostgreSQL itself refuses alice over the socket (peer)
    for _ in range(100):
        try:
            psycopg.connect(pg.unix_dsn(user="alice")).close()
        except psycopg.OperationalError as e:
            if "Peer authentication failed" in str(e):
                break
        time.sleep(0.05)
    else:
        pytest.fail("pg_hba.conf with peer authentication not in force")

    made = []
    try:
        # the minimal config, over the Unix socket: peer fails, as README says
        c = start_readme_carrier(pgc_bin, pg, "host=/var/run/postgresql")
        made.append(c)
        with pytest.raises(psycopg.OperationalError,
                           match='Peer authentication failed for user "alice"'):
            psycopg.connect(c.dsn(db="appdb", user="alice")).close()

        # one role for the pool
        c = start_readme_carrier(pgc_bin, pg, "user=app_pool")
        made.append(c)
        with psycopg.connect(c.dsn(db="appdb", user="alice"), autocommit=True) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == "app_pool"

        # each client as itself: SCRAM pass-through with the README's query
        c = TextCarrier(pgc_bin, "")
        made.append(c)
        c.text = adapt(readme_ini_with("auth_type = scram-sha-256"), c, pg)
        with open(os.path.join(c.dir, "userlist.txt"), "w") as f:
            f.write(pg.sql(readme_secrets_query()) + "\n")
        c.start()
        with psycopg.connect(c.dsn(db="appdb", user="alice", password="alice-pw"),
                             autocommit=True) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == "alice"
        with pytest.raises(psycopg.OperationalError,
                           match='password authentication failed for user "alice"'):
            psycopg.connect(c.dsn(db="appdb", user="alice", password="wrong")).close()
    finally:
        errors = []
        for c in made:
            try:
                c.cleanup(check=True)
            except harness.HarnessError as e:
                errors.append(str(e))
        assert errors == []


# ---------------------------------------------------------------------------
# the README's main command: scripts/demo-builtin.sh, run small
# ---------------------------------------------------------------------------

@pytest.mark.timeout(180)
def test_demo_builtin_runs_and_leaves_nothing_behind():
    """The built-in demo, with 50 clients for 3 s on the installed extension
    (DEMO_NO_INSTALL=1: make integration has installed it): pgbench through
    the pooler port succeeds on at most the pool's backends, psql shows
    pgcarrier.settings, and no server, daemon or directory is left."""
    if os.geteuid() != 0:
        pytest.skip("the demo runs as root")
    before = set(glob.glob("/tmp/pgcarrier-demo-builtin.*"))
    env = dict(clean_env(), DEMO_NO_INSTALL="1", DEMO_CLIENTS="50",
               DEMO_DURATION="3", DEMO_POOL_SIZE="4")
    rc, out, err = run(["bash", os.path.join(harness.REPO, "scripts", "demo-builtin.sh")],
                       timeout=150, env=env)
    assert rc == 0, out[-3000:] + err[-3000:]
    assert "number of failed transactions: 0" in out, out[-3000:]
    m = re.search(r"at most (\d+) clients connected to the pooler at once; "
                  r"at most (\d+) PostgreSQL backends used", out)
    assert m and int(m.group(1)) == 50 and 1 <= int(m.group(2)) <= 4, out[-3000:]
    assert re.search(r"pgcarrier\.default_pool_size\s*\|\s*4\s*\|", out), out[-3000:]
    assert "pgcarrier supervisor" in out, out[-3000:]
    left = set(glob.glob("/tmp/pgcarrier-demo-builtin.*")) - before
    assert left == set(), left
    for _, args in harness.process_cmdlines():
        cmd = b"\0".join(args)
        assert b"/tmp/pgcarrier-demo-builtin." not in cmd, "left running: %r" % cmd
