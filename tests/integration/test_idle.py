"""Idle clients hold little: no I/O buffer (the worker's free list gives its
buffers back to the system when they are not needed), and parameter lists
shared with the other clients of their worker (src/engine/pshare.h). What
is shared must still behave as each client's own."""

import hashlib
import random
import time

import pytest


def _one(conn, sql, *params):
    return conn.execute(sql, params or None).fetchone()[0]


@pytest.mark.timeout(60)
def test_idle_client_comes_back_with_large_messages(carrier):
    """Clients go idle (their buffers given back, more than a tick passes so
    that the free list is trimmed) and then send, and get, messages many
    times the size of a buffer."""
    c = carrier(pool_mode="transaction", pool_size=2)
    conns = [c.connect(application_name="idle") for _ in range(20)]
    try:
        for p in conns:
            assert _one(p, "SELECT 1") == 1
        time.sleep(1.5)           # several ticks: spare buffers go back
        big = "".join(random.choice("abcdefghij") for _ in range(1000)) * 3 * 1024
        want = hashlib.md5(big.encode()).hexdigest()
        for p in conns[:5]:
            assert p.execute("SELECT length(%s::text), md5(%s::text)",
                             [big, big]).fetchone() == (len(big), want)
            assert _one(p, "SELECT length(repeat('x', 5000000))") == 5000000
        time.sleep(0.5)
        for p in conns:
            assert _one(p, "SELECT 2") == 2
    finally:
        for p in conns:
            p.close()


def test_shared_parameter_lists_stay_per_client(carrier):
    """Clients with the same startup parameters share one list: one of them
    changing or resetting a setting changes nothing for the others."""
    c = carrier(pool_mode="transaction", pool_size=1)
    a = c.connect(application_name="same", options="-c search_path=s1")
    b = c.connect(application_name="same", options="-c search_path=s1")
    try:
        for p in (a, b):
            assert _one(p, "SHOW application_name") == "same"
            assert _one(p, "SHOW search_path") == "s1"
        a.execute("SET application_name = 'changed'")
        a.execute("SET search_path = s2")
        assert a.info.parameter_status("application_name") == "changed"
        assert _one(b, "SHOW application_name") == "same"
        assert _one(b, "SHOW search_path") == "s1"
        assert b.info.parameter_status("application_name") == "same"
        assert _one(a, "SHOW application_name") == "changed"
        assert _one(a, "SHOW search_path") == "s2"
        # RESET goes back to the client's own startup values.
        a.execute("RESET application_name")
        a.execute("RESET search_path")
        assert _one(a, "SHOW application_name") == "same"
        assert _one(a, "SHOW search_path") == "s1"
        assert a.info.parameter_status("application_name") == "same"
        # A third client, with the first two idle, sees what it asked for.
        with c.connect(application_name="third") as t:
            assert _one(t, "SHOW application_name") == "third"
            assert t.info.parameter_status("application_name") == "third"
        assert _one(b, "SHOW application_name") == "same"
    finally:
        a.close()
        b.close()
