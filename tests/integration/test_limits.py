"""Limits under hostile clients: a broker out of file descriptors, connection
limits (total, per address, idle) and the budget for request bytes being
received. Each test provokes the limit over loopback, bounded in time and
count, and checks what it costs the broker: CPU, memory, log lines."""

import resource
import select
import socket
import struct
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


# ---- item: the budget for request bytes --------------------------------------

MiB = 1024 * 1024
BUDGET = 32 * MiB           # queued.max.request.bytes for the test
FRAME = 30 * MiB            # the length each hostile connection announces
SENT = 28 * MiB             # ... of which it sends this much, then stalls
HOSTILE = 8
SEND_WINDOW_S = 6.0         # how long the hostile connections push bytes
RSS_GROWTH_MAX = 80 * MiB   # one reservation in flight (and its buffer's last doubling)
RSS_SETTLED_MAX = 16 * MiB  # after they close: back near the idle figure
CPU_STALLED_MAX_S = 0.5     # broker CPU while every hostile connection is stalled


def push_partial_frames(port, n, rss_probe):
    """n connections each announce FRAME bytes and send up to SENT of them
    for SEND_WINDOW_S; returns (sockets, bytes sent by each, largest RSS seen)."""
    socks = open_connections(port, n)
    payload = {s: struct.pack(">i", FRAME) + b"\x00" * SENT for s in socks}
    sent = {s: 0 for s in socks}
    peak = rss_probe()
    deadline = time.monotonic() + SEND_WINDOW_S
    while time.monotonic() < deadline and any(sent[s] < len(payload[s]) for s in socks):
        _, writable, _ = select.select([], [s for s in socks if sent[s] < len(payload[s])], [], 0.1)
        for s in writable:
            try:
                sent[s] += s.send(memoryview(payload[s])[sent[s]:sent[s] + MiB])
            except BlockingIOError:
                pass
        peak = max(peak, rss_probe())
    return socks, [sent[s] for s in socks], peak


# Eight connections each sending most of a huge request: the broker reads only what its budget allows (the others wait, unread, without errors), small requests still get through, its memory stays bounded, and it goes back near its idle size once they close.
def test_partial_requests_share_a_budget(broker_factory, kcat):
    broker = broker_factory(binary=harness.REL_BIN,
                            settings={"queued.max.request.bytes": str(BUDGET)})
    idle = broker.rss_bytes()
    socks, sent, peak = push_partial_frames(broker.port, HOSTILE, broker.rss_bytes)
    try:
        m = metrics(broker)
        assert m["chronik_request_budget_waits_total"] >= HOSTILE - 1, m
        assert m["chronik_request_queued_bytes"] <= FRAME, m
        assert sum(1 for n in sent if n >= SENT) <= 2, sent  # the kernel buffers the rest
        assert peak - idle < RSS_GROWTH_MAX, "RSS grew %d MiB" % ((peak - idle) // MiB)
        assert kcat_lists(kcat, broker), "a small request must pass a budget held by large ones"
        cpu0 = broker.cpu_seconds()
        time.sleep(1.0)  # the measurement window for a stalled broker
        assert broker.cpu_seconds() - cpu0 < CPU_STALLED_MAX_S
    finally:
        close_all(socks)
    wait_for("RSS back near idle", lambda: broker.rss_bytes() - idle < RSS_SETTLED_MAX)
    wait_for("freed memory handed back", lambda: metrics(broker)["chronik_memory_trims_total"] >= 1)
    assert metrics(broker)["chronik_request_queued_bytes"] == 0
    assert kcat_lists(kcat, broker)


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


# ---- item: connection limits ------------------------------------------------

PER_IP_MAX = 3
PER_IP_TRIES = 8
TOTAL_MAX = 5
IDLE_MS = 300
IDLE_CONNS = 50
CLOSE_DEADLINE_S = 10.0


def closed_by_peer(s, timeout_s=CLOSE_DEADLINE_S):
    """True once the broker has closed s (EOF or reset), False if still open at the deadline."""
    s.setblocking(True)
    s.settimeout(timeout_s)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def still_open(s):
    """True if the broker has not closed s: an ApiVersions round trip works on it."""
    s.setblocking(True)
    s.settimeout(CLOSE_DEADLINE_S)
    s.sendall(bytes.fromhex("0000000f" "0012" "0000" "00000001" "0005" "6c696d6974"))
    return len(s.recv(4)) == 4


# Over max.connections.per.ip, further connections from that address are closed at once and counted on /metrics; the admitted ones keep working and one warning line says so.
def test_max_connections_per_ip(broker_factory):
    broker = broker_factory(settings={"max.connections.per.ip": str(PER_IP_MAX)})
    socks = open_connections(broker.port, PER_IP_TRIES)
    try:
        refused = [s for s in socks if closed_by_peer(s, 0.5)]
        assert len(refused) == PER_IP_TRIES - PER_IP_MAX
        kept = [s for s in socks if s not in refused]
        assert all(still_open(s) for s in kept)
        m = metrics(broker)
        assert m["chronik_connections_refused_total{reason=\"max_connections_per_ip\"}"] == len(refused)
        assert m["chronik_connections_refused_total{reason=\"max_connections\"}"] == 0
    finally:
        close_all(socks)
    warns = lines_with(broker, "limit per address reached")
    assert len(warns) == 1 and "max_connections_per_ip=%d" % PER_IP_MAX in warns[0], warns


# At max.connections the client listener refuses more (counted), while the admin listener still answers; a slot freed is usable again.
def test_max_connections_spares_admin(broker_factory, kcat):
    broker = broker_factory(settings={"max.connections": str(TOTAL_MAX)})
    socks = open_connections(broker.port, TOTAL_MAX)
    try:
        assert all(still_open(s) for s in socks)
        extra = open_connections(broker.port, 2)
        assert all(closed_by_peer(s) for s in extra)
        close_all(extra)
        m = metrics(broker)  # the admin listener is not counted against the limit
        assert m["chronik_connections_refused_total{reason=\"max_connections\"}"] == 2
        assert m["chronik_connections_active"] == TOTAL_MAX
    finally:
        close_all(socks)
    wait_for("kcat to connect once slots are free", lambda: kcat_lists(kcat, broker))


# connections.max.idle.ms closes connections that go quiet, counts them, and logs the closes rate-limited.
def test_idle_connections_closed(broker_factory):
    broker = broker_factory(settings={"connections.max.idle.ms": str(IDLE_MS)})
    socks = open_connections(broker.port, IDLE_CONNS)
    try:
        t0 = time.monotonic()
        assert all(closed_by_peer(s) for s in socks)
        took = time.monotonic() - t0
        assert took < IDLE_MS / 1000 + 2.0, "idle connections closed after %.1f s" % took
    finally:
        close_all(socks)
    assert metrics(broker)["chronik_connections_idle_closed_total"] >= IDLE_CONNS
    assert len(lines_with(broker, "closing idle connection")) <= 2


# The connection settings are real keys: a bad value is refused by name.
def test_connection_keys_validated(tmp_path):
    r = harness.run_tool([str(harness.CHRONIK_BIN), "server", "--data-dir", str(tmp_path / "d"),
                          "--set", "max.connections.per.ip=0"], env=dict(harness.SANITIZER_ENV))
    assert r.returncode == 2 and "max.connections.per.ip" in r.stderr, r.stderr
