"""Limits under hostile clients: a broker out of file descriptors, connection
limits (total, per address, idle) and the budget for request bytes being
received. Each test provokes the limit over loopback, bounded in time and
count, and checks what it costs the broker: CPU, memory, log lines."""

import resource
import socket
import time
import urllib.request

import pytest

import harness

HTTP_TIMEOUT_S = 10
CLIENT_TIMEOUT_S = 30.0
POLL_S = 0.05

pytestmark = pytest.mark.skipif(harness.TARGET != "chronik", reason="limits of the chronik binary")


def wait_for(what, fn, timeout_s=20.0):
    """Polls fn() until it returns a true value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(POLL_S)


def metrics(broker):
    """{name or name{labels}: value} from /metrics."""
    with urllib.request.urlopen(broker.admin_url + "/metrics", timeout=HTTP_TIMEOUT_S) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = int(value)
    return out


def open_connections(port, n):
    """n connected, non-blocking sockets (connect returns once in the backlog)."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5.0)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        socks.append(s)
    return socks


def close_all(socks):
    for s in socks:
        s.close()


def lines_with(broker, text):
    return [l for l in broker.log_text().splitlines() if text in l]


def kcat_lists(kcat, broker):
    r = harness.run_tool([kcat, "-L", "-b", broker.bootstrap, "-m", "5"], timeout_s=CLIENT_TIMEOUT_S)
    return r.returncode == 0 and " 1 brokers:" in r.stdout


# ---- item: out of file descriptors ------------------------------------------

FD_LIMIT = 200          # the broker's RLIMIT_NOFILE (soft = hard)
FD_FLOOD = 400          # connections opened against it
FD_HOLD_S = 3.0         # how long the flood is held open
FD_CPU_MAX_S = 1.0      # broker CPU allowed over that hold (a spinning accept loop uses ~3 s)
FD_WARN_LINES_MAX = 2   # rate-limited: one line per 10 s


def low_fd_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


# With a low descriptor limit and more connections than it allows, the broker neither spins nor floods its log; it logs its limits at start, counts the shed connections, and serves kcat again once the flood closes.
def test_out_of_descriptors_backs_off(broker_factory, kcat):
    broker = broker_factory(preexec_fn=low_fd_limit)
    assert lines_with(broker, "open file descriptor limit soft=%d hard=%d" % (FD_LIMIT, FD_LIMIT))
    flood = open_connections(broker.port, FD_FLOOD)
    try:
        wait_for("descriptors to run out", lambda: lines_with(broker, "out of file descriptors"))
        cpu0, t0 = broker.cpu_seconds(), time.monotonic()
        time.sleep(FD_HOLD_S)  # the flood must be held for a while: this is the measurement window
        cpu = broker.cpu_seconds() - cpu0
        held = time.monotonic() - t0
        assert cpu < FD_CPU_MAX_S, "broker used %.2f s CPU in %.1f s while out of descriptors" % (cpu, held)
    finally:
        close_all(flood)
    wait_for("kcat to list the broker after the flood", lambda: kcat_lists(kcat, broker))
    assert metrics(broker)["chronik_connections_refused_total{reason=\"out_of_descriptors\"}"] > 0
    warns = lines_with(broker, "out of file descriptors")
    assert 1 <= len(warns) <= FD_WARN_LINES_MAX, warns
    assert not lines_with(broker, "accept failed"), "unlimited accept warnings"
    assert len(broker.log_text().splitlines()) < 100
