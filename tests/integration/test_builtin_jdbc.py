"""JDBC through the built-in pooler (docs/builtin.md).

As test_guard_scale.test_jdbc does for the standalone daemon: a Java
program compiled at test time against Debian's pgjdbc
(/usr/share/java/postgresql.jar), run against a cluster with the extension
preloaded. It logs in with SCRAM-SHA-256 as ``scramuser`` (the server's
own pg_hba.conf line and pg_authid secret; the pooler logs in to the
server with SCRAM pass-through), on 2 server connections
(pgcarrier.default_pool_size = 2) for 16 clients, and uses pgjdbc's default
prepareThreshold (5): from the 5th execution a statement is a named
server-side statement (S_n), which the guard prepares again on whichever
backend the client gets. Each client also runs a transaction (insert, read
back, commit) and a rollback, and checks every answer."""

import os
import shutil
import subprocess

import pytest

import harness

JDBC_JAR = "/usr/share/java/postgresql.jar"

JAVA_SRC = r"""
import java.sql.*;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;

/* args: host port user password clients iterations tag.  Prints FAIL lines
 * and one SUMMARY line; exit 0 when every answer was right. */
public class BuiltinJdbc {
    static final ConcurrentLinkedQueue<String> errors = new ConcurrentLinkedQueue<>();

    public static void main(String[] a) throws Exception {
        final String url = "jdbc:postgresql://" + a[0] + ":" + a[1] + "/app";
        final Properties props = new Properties();
        props.setProperty("user", a[2]);
        props.setProperty("password", a[3]);
        props.setProperty("connectTimeout", "30");
        props.setProperty("socketTimeout", "60");
        props.setProperty("ApplicationName", "pgc-pooled-jdbc");
        final int n = Integer.parseInt(a[4]);
        final int iters = Integer.parseInt(a[5]);
        final int tag = Integer.parseInt(a[6]);
        final CountDownLatch connected = new CountDownLatch(n);
        final AtomicInteger ok = new AtomicInteger();
        Thread[] threads = new Thread[n];
        for (int t = 0; t < n; t++) {
            final int i = t;
            threads[t] = new Thread(() -> {
                try (Connection conn = DriverManager.getConnection(url, props)) {
                    connected.countDown();
                    connected.await(60, TimeUnit.SECONDS);
                    String who;
                    try (Statement st = conn.createStatement();
                         ResultSet rs = st.executeQuery("SELECT current_user, session_user")) {
                        rs.next();
                        who = rs.getString(1) + "/" + rs.getString(2);
                    }
                    if (!who.equals(a[2] + "/" + a[2]))
                        throw new Exception("logged in as " + who);
                    try (PreparedStatement ps = conn.prepareStatement(
                            "SELECT ?::int * 3, ?::text, (SELECT count(*) FROM items)")) {
                        for (int k = 0; k < iters; k++) {
                            int v = i * 1000 + k;
                            ps.setInt(1, v);
                            ps.setString(2, "c" + i);
                            try (ResultSet rs = ps.executeQuery()) {
                                if (!rs.next() || rs.getInt(1) != 3 * v || !rs.getString(2).equals("c" + i)
                                        || rs.getInt(3) != 100)
                                    throw new Exception("wrong answer at " + k);
                            }
                        }
                    }
                    conn.setAutoCommit(false);
                    try (PreparedStatement ins = conn.prepareStatement(
                            "INSERT INTO scratch(client, seq, val) VALUES (?, ?, ?)");
                         PreparedStatement sel = conn.prepareStatement(
                            "SELECT count(*) FROM scratch WHERE client = ? AND seq = ?")) {
                        for (int k = 0; k < iters; k++) {
                            ins.setInt(1, tag + i); ins.setInt(2, k); ins.setString(3, "v" + k);
                            ins.executeUpdate();
                        }
                        sel.setInt(1, tag + i); sel.setInt(2, 0);
                        try (ResultSet rs = sel.executeQuery()) {
                            if (!rs.next() || rs.getInt(1) != 1)
                                throw new Exception("own insert not seen in the transaction");
                        }
                        conn.commit();
                        ins.setInt(1, tag + i); ins.setInt(2, -1); ins.setString(3, "rolled back");
                        ins.executeUpdate();
                        conn.rollback();
                        sel.setInt(1, tag + i); sel.setInt(2, -1);
                        try (ResultSet rs = sel.executeQuery()) {
                            if (!rs.next() || rs.getInt(1) != 0)
                                throw new Exception("a rolled-back row is there");
                        }
                        conn.commit();
                    }
                    ok.incrementAndGet();
                } catch (Exception e) {
                    connected.countDown();
                    errors.add("client " + i + ": " + e);
                }
            });
            threads[t].start();
        }
        for (Thread th : threads)
            th.join();
        for (String e : errors)
            System.out.println("FAIL " + e);
        System.out.println("SUMMARY ok=" + ok.get() + " of " + n);
        System.exit(ok.get() == n ? 0 : 1);
    }
}
"""


@pytest.fixture
def builtin_pool2():
    srv = harness.BuiltinPgServer("builtin-jdbc", conf="pgcarrier.default_pool_size = 2")
    try:
        yield srv
    finally:
        srv.cleanup()


@pytest.mark.timeout(240)
def test_jdbc_through_the_builtin_pooler(builtin_pool2, tmp_path):
    javac, java = shutil.which("javac"), shutil.which("java")
    if not javac or not java or not os.path.exists(JDBC_JAR):
        pytest.skip("javac/java or %s missing (libpostgresql-jdbc-java, "
                    "openjdk-17-jdk-headless)" % JDBC_JAR)
    srv = builtin_pool2
    clients, iters, tag = 16, 12, 700000
    (tmp_path / "BuiltinJdbc.java").write_text(JAVA_SRC)
    r = subprocess.run([javac, "-cp", JDBC_JAR, "-d", str(tmp_path),
                        str(tmp_path / "BuiltinJdbc.java")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180)
    assert r.returncode == 0, "javac failed:\n" + r.stdout
    with harness.BackendMonitor(srv, db="app", user="scramuser") as mon:
        r = subprocess.run([java, "-cp", "%s:%s" % (tmp_path, JDBC_JAR), "BuiltinJdbc",
                            "127.0.0.1", str(srv.pooler_port), "scramuser",
                            harness.SCRAM_PASSWORD, str(clients), str(iters), str(tag)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=180)
    assert r.returncode == 0, "java exit %d\n%s\n%s\n--- log ---\n%s" % (
        r.returncode, r.stdout, r.stderr[-3000:], srv.log()[-3000:])
    assert "SUMMARY ok=%d of %d" % (clients, clients) in r.stdout, r.stdout
    assert mon.error is None, mon.error
    assert 1 <= mon.max <= 2, mon.samples
    # what the clients committed is there, the rolled-back rows are not
    assert srv.sql("SELECT count(*), count(*) FILTER (WHERE seq = -1) FROM scratch "
                   "WHERE client >= %d AND client < %d" % (tag, tag + clients),
                   db="app") == "%d|0" % (clients * iters)
