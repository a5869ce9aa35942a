"""The admin console's commands: PAUSE, RESUME, DISABLE, ENABLE, RECONNECT,
WAIT_CLOSE, KILL, KILL_CLIENT, RELOAD, SET, SHUTDOWN (docs/behaviour.md,
"Admin console"). The PAUSE / PostgreSQL restart / RESUME cycle is
test_pause_restart.py's."""

import threading

import psycopg
import pytest

from console_helpers import (CONSOLE_SETTINGS, console, pool_row, show, wait_until)


@pytest.fixture
def admin_carrier(carrier):
    def make(**settings):
        conf = dict(CONSOLE_SETTINGS)
        conf.update(settings)
        return carrier(**conf)
    return make


def app_servers(adm, db="app"):
    return [r for r in show(adm, "SERVERS") if r["database"] == db]


class Load:
    """n clients running short transactions in a loop until stop(); counts
    what they ran and the errors they got."""

    def __init__(self, carrier, n, db="app", sql="SELECT 1"):
        self.carrier, self.sql, self.db = carrier, sql, db
        self.stop_ev = threading.Event()
        self.ok = 0
        self.errors = []
        self.mu = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def run(self):
        try:
            conn = self.carrier.connect(self.db)
        except Exception as e:  # noqa: BLE001
            with self.mu:
                self.errors.append(e)
            return
        while not self.stop_ev.is_set():
            try:
                conn.execute(self.sql)
                with self.mu:
                    self.ok += 1
            except Exception as e:  # noqa: BLE001
                with self.mu:
                    self.errors.append(e)
                break
        conn.close()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(60)


def test_pause_waits_for_running_transactions_then_resume(pg, admin_carrier):
    c = admin_carrier()
    adm = console(c)
    busy = c.connect()
    busy.execute("BEGIN")
    busy.execute("SELECT 1")
    idle = c.connect()
    idle.execute("SELECT 1")
    done = threading.Event()

    def pause():
        a = console(c)
        a.execute("PAUSE app")
        done.set()
        a.close()

    t = threading.Thread(target=pause, daemon=True)
    t.start()
    # PAUSE answers only once the transaction is over and the servers are closed.
    wait_until(lambda: [r for r in show(adm, "DATABASES") if r["name"] == "app"][0]["paused"] == 1,
               what="app paused")
    assert not done.wait(0.5)
    busy.execute("COMMIT")
    assert done.wait(30)
    t.join(10)
    assert app_servers(adm) == []
    # A new query waits (no server while paused); the idle client kept its connection.
    result = []
    q = threading.Thread(target=lambda: result.append(idle.execute("SELECT 7").fetchone()), daemon=True)
    q.start()
    wait_until(lambda: (pool_row(adm) or {}).get("cl_waiting") == 1, what="a waiting client")
    adm.execute("RESUME app")
    q.join(30)
    assert result == [(7,)]
    assert busy.execute("SELECT 8").fetchone() == (8,)
    busy.close()
    idle.close()
    adm.close()


def test_disable_enable(pg, admin_carrier):
    c = admin_carrier()
    adm = console(c)
    conn = c.connect()
    adm.execute("DISABLE app")
    with pytest.raises(psycopg.OperationalError, match='database "app" is not currently accepting connections'):
        c.connect()
    assert conn.execute("SELECT 1").fetchone() == (1,)
    assert [r for r in show(adm, "DATABASES") if r["name"] == "app"][0]["disabled"] == 1
    adm.execute("ENABLE app")
    c.connect().close()
    conn.close()
    adm.close()


def test_show_servers_lists_every_server_under_load(pg, admin_carrier):
    """Servers move between worker threads all the time under load; each
    SHOW SERVERS and SHOW POOLS still counts every one exactly once (before
    the census froze moves, 12% of listings had none of the 4)."""
    c = admin_carrier(pool_size=4, workers=2)
    adm = console(c)
    load = Load(c, 12)
    try:
        wait_until(lambda: load.ok > 200, what="load running")
        wait_until(lambda: len(app_servers(adm)) == 4, what="4 servers open")
        seen = []
        for _ in range(200):
            rows = app_servers(adm)
            ids = [r["id"] for r in rows]
            pool = pool_row(adm)
            seen.append((len(ids), len(set(ids)), pool["sv_active"] + pool["sv_idle"]))
        assert all(x == (4, 4, 4) for x in seen), [x for x in seen if x != (4, 4, 4)][:10]
    finally:
        load.stop()
    assert load.errors == []
    adm.close()


def test_reconnect_and_wait_close_under_load(pg, admin_carrier):
    c = admin_carrier(pool_size=4)
    adm = console(c)
    load = Load(c, 12)
    try:
        wait_until(lambda: load.ok > 200, what="load running")
        old = {r["id"] for r in app_servers(adm)}
        assert old
        adm.execute("RECONNECT app")
        adm.execute("WAIT_CLOSE app")
        now = {r["id"] for r in app_servers(adm)}
        assert not (old & now)
        before = load.ok
        wait_until(lambda: load.ok > before + 100, what="load going on")
    finally:
        load.stop()
    assert load.errors == []
    assert "RECONNECT app" in c.log()
    adm.close()


def test_kill_under_load_then_resume(pg, admin_carrier):
    c = admin_carrier(pool_size=4)
    adm = console(c)
    other = c.connect("postgres", "postgres")
    load = Load(c, 8)
    try:
        wait_until(lambda: load.ok > 100, what="load running")
        adm.execute("KILL app")
        wait_until(lambda: len(load.errors) == 8, what="every client of app ended")
        assert all("terminating connection due to administrator command" in str(e) for e in load.errors)
        assert app_servers(adm) == []
        # Another database is not touched.
        assert other.execute("SELECT 1").fetchone() == (1,)
        # app is paused until RESUME: a new client's query waits, then runs.
        conn = c.connect()
        result = []
        q = threading.Thread(target=lambda: result.append(conn.execute("SELECT 5").fetchone()), daemon=True)
        q.start()
        wait_until(lambda: (pool_row(adm) or {}).get("cl_waiting") == 1, what="a waiting client")
        adm.execute("RESUME app")
        q.join(30)
        assert result == [(5,)]
        conn.close()
    finally:
        load.stop()
    other.close()
    adm.close()


def test_kill_client(pg, admin_carrier):
    c = admin_carrier()
    adm = console(c)
    victim = c.connect()
    victim.execute("BEGIN")
    victim.execute("SELECT 1")
    bystander = c.connect()
    vid = [r["id"] for r in show(adm, "CLIENTS") if r["database"] == "app" and r["state"] == "active"][0]
    adm.execute("KILL_CLIENT %d" % vid)
    with pytest.raises(psycopg.OperationalError, match="administrator command"):
        wait_until(lambda: not victim.execute("SELECT 1"), what="the client killed")
    assert bystander.execute("SELECT 2").fetchone() == (2,)
    assert vid not in [r["id"] for r in show(adm, "CLIENTS")]
    bystander.close()
    adm.close()


def test_reload_and_set(pg, admin_carrier):
    c = admin_carrier(pool_size=8)
    adm = console(c)
    conn = c.connect()
    conn.execute("SELECT 1")
    # RELOAD reads the file as SIGHUP does.
    c.settings["default_pool_size"] = 5
    c.write_config()
    adm.execute("RELOAD")
    assert pool_row(adm)["pool_size"] == 5
    # SET: until the next RELOAD.
    adm.execute("SET default_pool_size = 3")
    assert pool_row(adm)["pool_size"] == 3
    cfg = {r["key"]: r["value"] for r in show(adm, "CONFIG")}
    assert cfg["default_pool_size"] == "3"
    adm.execute("SET server_reset_query = 'DISCARD ALL'")
    adm.execute("SET log_connections TO 0")
    cfg = {r["key"]: r["value"] for r in show(adm, "CONFIG")}
    assert cfg["log_connections"] == "0" and cfg["default_pool_size"] == "3"
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="expected an integer"):
        adm.execute("SET default_pool_size = many")
    with pytest.raises(psycopg.errors.CantChangeRuntimeParam, match="without restarting"):
        adm.execute("SET listen_port = 1")
    with pytest.raises(psycopg.errors.UndefinedObject, match='unrecognized configuration parameter "nope"'):
        adm.execute("SET nope = 1")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="names a file"):
        adm.execute("SET auth_file = '/etc/passwd'")
    with pytest.raises(psycopg.errors.SyntaxError):
        adm.execute("SET default_pool_size")
    assert pool_row(adm)["pool_size"] == 3      # the refused values changed nothing
    adm.execute("RELOAD")
    assert pool_row(adm)["pool_size"] == 5
    # A file that does not load: RELOAD fails, the running configuration stays.
    with open(c.config_path, "a") as f:
        f.write("\n[pgcarrier]\nno_such_key = 1\n")
    with pytest.raises(psycopg.errors.ConfigFileError, match="no_such_key"):
        adm.execute("RELOAD")
    assert pool_row(adm)["pool_size"] == 5
    assert conn.execute("SELECT 1").fetchone() == (1,)
    conn.close()
    adm.close()


def test_shutdown_with_clients_mid_transaction(pg, admin_carrier):
    c = admin_carrier()
    c.expect_exit = True
    adm = console(c)
    mid = c.connect()
    mid.execute("BEGIN")
    mid.execute("INSERT INTO kv VALUES ('shutdown', 'x')")
    adm.execute("SHUTDOWN")
    # The open transaction finishes; then the client is told and the pooler exits.
    mid.execute("UPDATE kv SET v = 'y' WHERE k = 'shutdown'")
    mid.execute("COMMIT")
    with pytest.raises(psycopg.OperationalError):
        wait_until(lambda: not mid.execute("SELECT 1"), what="the client disconnected")
    assert c.wait(30) == 0
    assert pg.sql("SELECT v FROM kv WHERE k = 'shutdown'", db="app") == "y"
    pg.sql("DELETE FROM kv WHERE k = 'shutdown'", db="app")


def test_shutdown_wait_for_clients(pg, admin_carrier):
    c = admin_carrier()
    c.expect_exit = True
    stay = c.connect()
    adm = console(c)
    adm.execute("SHUTDOWN WAIT_FOR_CLIENTS")
    adm.close()
    # No new clients; those that stay are served until they leave.
    with pytest.raises(psycopg.OperationalError):
        wait_until(lambda: not c.connect().close(), what="new clients refused")
    assert stay.execute("SELECT 3").fetchone() == (3,)
    assert c.running
    stay.close()
    assert c.wait(30) == 0


def test_resume_one_database_while_all_are_paused_is_refused(pg, admin_carrier):
    """PAUSE without a database holds them all: RESUME app alone would
    answer and leave app paused, so it is refused (55000), as PgBouncer
    does; RESUME without a database lets them all go."""
    c = admin_carrier()
    adm = console(c)
    adm.execute("PAUSE")
    with pytest.raises(psycopg.Error) as ei:
        adm.execute("RESUME app")
    assert ei.value.sqlstate == "55000"
    assert "RESUME without a database" in str(ei.value)
    adm.execute("RESUME")
    conn = c.connect()
    assert conn.execute("SELECT 1").fetchone() == (1,)
    conn.close()
    adm.close()


def test_wait_close_waits_for_servers_a_reload_made_stale(pg, admin_carrier):
    """A reload that changes where app's servers log in makes the open ones
    stale (SHOW SERVERS' close_needed); WAIT_CLOSE answers only once the
    last of them is closed, here when its transaction ends."""
    c = admin_carrier(pool_size=2)
    adm = console(c)
    busy = c.connect()
    busy.execute("BEGIN")
    busy.execute("SELECT 1")            # busy holds its server until COMMIT
    dbs = dict(c.databases)
    dbs["app"] = dict(dbs["app"], host="127.0.0.1")
    c.reload(databases=dbs)
    wait_until(lambda: any(r["close_needed"] == 1 for r in app_servers(adm)), what="a stale server")
    done = threading.Event()

    def wait_close():
        a = console(c)
        a.execute("WAIT_CLOSE app")
        done.set()
        a.close()

    t = threading.Thread(target=wait_close, daemon=True)
    t.start()
    assert not done.wait(1.0)
    busy.execute("COMMIT")
    assert done.wait(30)
    t.join(10)
    assert not any(r["close_needed"] for r in app_servers(adm))
    assert busy.execute("SELECT 2").fetchone() == (2,)   # on a new server, at the new address
    busy.close()
    adm.close()


def test_client_idle_timeout_spares_a_console_client_waiting_for_its_command(pg, admin_carrier):
    """A console client whose PAUSE waits for a running query is not idle:
    client_idle_timeout does not end it meanwhile."""
    c = admin_carrier(client_idle_timeout=1)
    busy = c.connect(autocommit=True)
    q = threading.Thread(target=lambda: busy.execute("SELECT pg_sleep(3)"), daemon=True)
    q.start()
    wait_until(lambda: (pool_row(console(c)) or {}).get("sv_active") == 1, what="the query running")
    adm = console(c)
    result = []

    def pause():
        try:
            adm.execute("PAUSE app")
            result.append("PAUSE")
        except Exception as e:  # noqa: BLE001
            result.append(e)

    t = threading.Thread(target=pause, daemon=True)
    t.start()
    t.join(30)
    q.join(30)
    assert result == ["PAUSE"]
    adm.close()
    adm2 = console(c)
    adm2.execute("RESUME app")
    adm2.close()
    busy.close()
