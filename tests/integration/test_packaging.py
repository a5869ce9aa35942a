"""Packaging a DBA expects: ``make install`` (PREFIX, DESTDIR) puts the
daemon, its man pages, a sample configuration and a systemd unit where they
belong; the man pages render with man -l without a warning; the sample
configuration loads with --check; the unit names the installed paths.
(sd_notify and syslog are checked against a live daemon in
test_pgbouncer_compat.py.)"""

import os
import subprocess

import pytest

import harness

EXPECTED = [
    "etc/pgcarrier/pgcarrier.ini",
    "etc/pgcarrier/userlist.txt",
    "usr/bin/pgcarrier",
    "usr/lib/systemd/system/pgcarrier.service",
    "usr/share/doc/pgcarrier/behaviour.md",
    "usr/share/doc/pgcarrier/examples/pgcarrier.ini",
    "usr/share/doc/pgcarrier/examples/userlist.txt",
    "usr/share/doc/pgcarrier/migrating-from-pgbouncer.md",
    "usr/share/man/man1/pgcarrier.1",
    "usr/share/man/man5/pgcarrier.ini.5",
]


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=300, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("destdir"))
    r = run(["make", "-s", "install", "PREFIX=/usr", "DESTDIR=" + dest], cwd=harness.REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    return dest


def listing(root):
    out = []
    for d, _dirs, files in os.walk(root):
        out += [os.path.relpath(os.path.join(d, f), root) for f in files]
    return sorted(out)


@pytest.mark.timeout(300)
def test_make_install_into_destdir_lists_the_files(installed):
    assert listing(installed) == EXPECTED
    mode = lambda p: os.stat(os.path.join(installed, p)).st_mode & 0o777
    assert mode("usr/bin/pgcarrier") == 0o755
    assert mode("etc/pgcarrier/pgcarrier.ini") == 0o640
    assert mode("etc/pgcarrier/userlist.txt") == 0o600     # it holds secrets
    r = run([os.path.join(installed, "usr/bin/pgcarrier"), "--version"])
    assert r.returncode == 0 and r.stdout.startswith("pgcarrier ")


@pytest.mark.timeout(300)
def test_install_keeps_an_existing_configuration(installed):
    conf = os.path.join(installed, "etc/pgcarrier/pgcarrier.ini")
    with open(conf, "a") as f:
        f.write("; the DBA's own line\n")
    r = run(["make", "-s", "install", "PREFIX=/usr", "DESTDIR=" + installed], cwd=harness.REPO)
    assert r.returncode == 0, r.stderr
    with open(conf) as f:
        assert f.read().endswith("; the DBA's own line\n")


@pytest.mark.timeout(300)
def test_other_prefix_keeps_everything_under_it(tmp_path):
    dest = str(tmp_path)
    r = run(["make", "-s", "install", "PREFIX=/opt/pgc", "DESTDIR=" + dest], cwd=harness.REPO)
    assert r.returncode == 0, r.stderr
    files = listing(dest)
    assert all(f.startswith("opt/pgc/") for f in files), files
    assert "opt/pgc/etc/pgcarrier/pgcarrier.ini" in files
    with open(os.path.join(dest, "opt/pgc/lib/systemd/system/pgcarrier.service")) as f:
        unit = f.read()
    assert "ExecStart=/opt/pgc/bin/pgcarrier -c /opt/pgc/etc/pgcarrier/pgcarrier.ini" in unit


@pytest.mark.parametrize("page", ["usr/share/man/man1/pgcarrier.1",
                                  "usr/share/man/man5/pgcarrier.ini.5"])
def test_man_pages_render_without_warnings(installed, page):
    r = run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", os.path.join(installed, page)],
            env=dict(os.environ, MANWIDTH="80"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    text = subprocess.run(["col", "-b"], input=r.stdout, stdout=subprocess.PIPE, text=True).stdout
    assert "pgcarrier" in text and "SEE ALSO" in text


def test_man_page_names_every_setting_of_the_reference():
    """pgcarrier.ini(5) and docs/behaviour.md's reference config list the
    same [pgcarrier] settings."""
    import re
    with open(os.path.join(harness.REPO, "docs", "behaviour.md")) as f:
        doc = f.read()
    block = doc.split("```ini", 1)[1].split("```", 1)[0]
    keys = set(re.findall(r"^;?\s?([a-z_0-9]+) = ", block.split("[databases]")[0], re.M))
    with open(os.path.join(harness.REPO, "man", "pgcarrier.ini.5")) as f:
        page = f.read().replace("\\-", "-")
    missing = sorted(k for k in keys if k not in page)
    assert missing == [], missing


def test_sample_config_and_unit(pgc_bin, installed):
    conf = os.path.join(installed, "usr/share/doc/pgcarrier/examples/pgcarrier.ini")
    r = run([pgc_bin, "--check", "-c", conf])
    assert (r.returncode, r.stderr) == (0, ""), r.stdout + r.stderr
    with open(os.path.join(installed, "usr/lib/systemd/system/pgcarrier.service")) as f:
        unit = f.read()
    for line in ("Type=notify", "ExecStart=/usr/bin/pgcarrier -c /etc/pgcarrier/pgcarrier.ini",
                 "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGINT"):
        assert line + "\n" in unit, line
    assert "@" not in unit.replace("$MAINPID", "")
