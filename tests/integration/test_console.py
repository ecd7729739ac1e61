"""The admin endpoint as a server of many clients (keep-alive, limits, slow
clients) and the operator console it serves: the page without scripts
(plain HTTP) and with them (Debian's chromium driven by playwright-core)."""

import json
import os
import queue
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import harness
from test_cluster import cluster  # noqa: F401 (the fixture)

HERE = os.path.dirname(os.path.abspath(__file__))
IO_TIMEOUT_S = 15
DEADLINE_S = 60


def _connect(broker):
    return socket.create_connection((broker.host, broker.admin_port), timeout=IO_TIMEOUT_S)


def _read_response(s):
    """(status, {lower-case header: value}, body) of one answer on s."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, "connection closed before an answer: %r" % data
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    n = int(headers["content-length"])
    while len(rest) < n:
        chunk = s.recv(65536)
        assert chunk, "connection closed inside a body"
        rest += chunk
    assert len(rest) == n, "more bytes than the answer: %r" % rest[n:]
    return int(lines[0].split()[1]), headers, rest


def _get(broker, path):
    with urllib.request.urlopen(broker.admin_url + path, timeout=IO_TIMEOUT_S) as r:
        return r.status, dict(r.headers), r.read().decode()


def _health_status(broker):
    try:
        return _get(broker, "/health")[0]
    except urllib.error.HTTPError as e:
        return e.code


def _read_to_end(s):
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def _closed(s):
    """True when the peer has closed s (EOF), waiting at most IO_TIMEOUT_S."""
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


# Clients that send half a request and hold it do not hold up /health for
# another client: it is answered while they are still waiting for theirs,
# and each of them is answered once its request is whole.
def test_stalled_clients_do_not_hold_up_health(broker):
    stalled = [_connect(broker) for _ in range(5)]
    try:
        for s in stalled:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        status, _, body = _get(broker, "/health")
        assert (status, body) == (200, "ok\n")
        for s in stalled:  # nothing answered yet: /health did not wait for them to time out
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(1)
            s.settimeout(IO_TIMEOUT_S)
        for s in stalled:
            s.sendall(b"\r\n")
            assert _read_response(s)[0] == 200
    finally:
        for s in stalled:
            s.close()


# HTTP/1.1 keeps the connection for the next request, also pipelined ones;
# HTTP/1.0 without keep-alive closes it after the answer.
def test_keep_alive_and_pipelining(broker):
    with _connect(broker) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = _read_response(s)
        assert (status, headers["connection"], body) == (200, "keep-alive", b"ok\n")
        s.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(s)[:3:2] == (200, b"ready\n")
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nHEAD /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = _read_to_end(s)  # both answers, the HEAD's without its body, then the close it asked for
        first, second = data.split(b"ok\n")
        assert first.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: keep-alive" in first, data
        assert second.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close" in second, data
        assert b"Content-Length: 6\r\n" in second and second.endswith(b"\r\n\r\n"), data  # "ready\n" not sent
    with _connect(broker) as s:
        s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        assert _read_response(s)[0] == 200
        assert _closed(s)


# A request that does not arrive whole within the server's limit is answered 408.
def test_incomplete_request_times_out_with_408(broker):
    with _connect(broker) as s:
        s.sendall(b"GET /status HTTP/1.1\r\nHo")
        status, headers, _ = _read_response(s)
        assert (status, headers["connection"]) == (408, "close")
        assert _closed(s)


# Malformed or oversized requests get the status that says why, and the connection closes.
@pytest.mark.parametrize("request_bytes,status", [
    (b"BLAH\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),                                   # no Host
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n", 413),
    (b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 60 + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 9000, 431),            # refused before it ends
    (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
])
def test_bad_requests_are_refused(broker, request_bytes, status):
    with _connect(broker) as s:
        s.sendall(request_bytes)
        got, headers, _ = _read_response(s)
        assert (got, headers["connection"]) == (status, "close")
        assert _closed(s)
    assert _get(broker, "/health")[0] == 200


# POST is refused with 405 and the connection kept; more connections than
# the limit are answered 503 and the endpoint serves again once they go.
def test_method_and_connection_limits(broker):
    with _connect(broker) as s:
        s.sendall(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        status, headers, _ = _read_response(s)
        assert (status, headers["allow"]) == (405, "GET, HEAD")
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(s)[0] == 200
    held = []
    try:
        for _ in range(64):
            held.append(_connect(broker))
            held[-1].sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(held[-1])[0] == 200  # accepted and kept open
        with _connect(broker) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, _ = _read_response(s)
            assert (status, headers["retry-after"]) == (503, "1")
    finally:
        for s in held:
            s.close()
    harness.wait_until(lambda: _health_status(broker) == 200, "the endpoint to serve again")


def _produce(bootstrap, topic, n):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    acked = []
    for i in range(n):
        p.produce(topic, b"r%d" % i, partition=0, on_delivery=lambda err, msg: acked.append(err is None))
    p.flush(IO_TIMEOUT_S)
    assert acked == [True] * n


def _commit(bootstrap, group, topic, offset):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        c.close()


# Without scripts GET / is the cluster as HTML tables: the topic's partition,
# the group's lag (a group id with markup in it is escaped), and the page's
# own style sheet and script are served with it.
@pytest.mark.pyclients
def test_console_page_without_scripts(broker):
    topic, group = "console-topic", "<b>g&'x\""
    _produce(broker.bootstrap, topic, 5)
    _commit(broker.bootstrap, group, topic, 2)
    status, headers, html = _get(broker, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert '<tr data-topic="console-topic"><td>console-topic</td><td class="num">0</td>' in html, html
    esc = "&lt;b&gt;g&amp;&#39;x&quot;"
    assert '<tr data-group="%s"><td>%s</td>' % (esc, esc) in html and "<b>g" not in html
    assert ('<td>console-topic-0</td><td class="num">2</td><td class="num">5</td><td class="num">3</td>') in html
    assert ('<td>%s</td><td><span class="endpoint">PLAINTEXT %s (PLAINTEXT)</span></td>'
            % (broker.bootstrap, broker.bootstrap)) in html, html
    assert '<script src="/console.js"></script>' in html and "http://" not in html and "https://" not in html
    for path, ctype in (("/console.js", "text/javascript"), ("/console.css", "text/css")):
        status, headers, body = _get(broker, path)
        assert status == 200 and headers["Content-Type"].startswith(ctype) and len(body) > 500
    doc = json.loads(_get(broker, "/api/console")[2])
    assert doc["console_version"] == 1 and doc["brokers"] == [{"id": broker.node_id, "state": "alive"}]
    assert doc["counters"]["records"] == 5 and doc["problems"] == []
    (g,) = [g for g in doc["groups"] if g["id"] == group]
    assert g["lag"] == 3 and g["offsets"] == [{"topic": topic, "partition": 0, "committed": 2, "end": 5, "lag": 3}]


def _console(node):
    with urllib.request.urlopen(node.admin_url + "/api/console", timeout=IO_TIMEOUT_S) as r:
        return json.loads(r.read())


def _reader(proc):
    """A queue of proc's stdout lines, fed by a daemon thread."""
    q = queue.Queue()

    def pump():
        for line in proc.stdout:
            q.put(line.strip())
        q.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return q


# In headless chromium the console of a 3-node cluster shows a created topic
# and a consumer group's lag; once a node is stopped it shows that broker down.
@pytest.mark.pyclients
def test_console_in_chromium(cluster):  # noqa: F811 (the fixture)
    node_bin = shutil.which("node")
    assert node_bin and os.path.exists("/usr/bin/chromium"), "run tools/deps.sh test"
    nodes = cluster(3, settings={"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"})
    bootstrap = ",".join(n.bootstrap for n in nodes)
    topic, group = "console-js", "console-group"
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(topic, 2, 3)])[topic].result(IO_TIMEOUT_S)
    _produce(bootstrap, topic, 30)
    _commit(bootstrap, group, topic, 10)
    viewed = harness.wait_until(
        lambda: next((n for n in nodes if any(g["id"] == group for g in _console(n)["groups"])), None),
        "a node coordinating the group", deadline_s=DEADLINE_S)
    leader = _console(viewed)["status"]["quorum"]["leader_id"]
    victim = next((n for n in nodes if n is not viewed and n.node_id != leader),
                  next(n for n in nodes if n is not viewed))
    solo = "console-solo"  # its one replica is on the victim: it loses its leader with it
    a.create_topics([NewTopic(solo, 1, replica_assignment=[[victim.node_id]])])[solo].result(IO_TIMEOUT_S)
    harness.wait_until(lambda: any(p["topic"] == solo for p in _console(viewed)["status"]["partitions"]),
                       "the viewed node to know " + solo, deadline_s=DEADLINE_S)
    proc = subprocess.Popen([node_bin, os.path.join(HERE, "console_browser.js"), viewed.admin_url + "/", topic,
                             group, "20", str(victim.node_id)], cwd=HERE, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = _reader(proc)
        assert lines.get(timeout=2 * DEADLINE_S) == "READY", proc.stderr.read() if proc.poll() is not None else ""
        victim.stop()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert lines.get(timeout=2 * DEADLINE_S) == "DOWN", proc.stderr.read() if proc.poll() is not None else ""
        assert proc.wait(timeout=DEADLINE_S) == 0, proc.stderr.read()
        problem = "partition %s-0 has no leader" % solo
        try:
            harness.wait_until(lambda: problem in _console(viewed)["problems"], problem, deadline_s=DEADLINE_S)
        except AssertionError:
            d = _console(viewed)
            raise AssertionError("%s: %s %s" % (problem, d["problems"], [p for p in d["status"]["partitions"] if p["topic"] == solo]))
        status, _, html = _get(viewed, "/")
        assert "<li>%s</li>" % problem in html and "<li>broker %d is down</li>" % victim.node_id in html, html
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=IO_TIMEOUT_S)
