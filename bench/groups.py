#!/usr/bin/python3
"""Consumer-group benchmarks against a running broker (prints one JSON object).

  join_ms        time from the first subscribe() of 10 confluent-kafka consumers
                 in one group until every one of them has its assignment
                 (10-partition topic, range assignor), median of --runs
  commits_per_s  OffsetCommit v8 requests per second on one connection,
                 --window requests in flight (each acknowledged once durable)
  commit_p50_ms / commit_p99_ms   one commit at a time: latency

usage: bench/groups.py BOOTSTRAP [--runs 3] [--commits 5000] [--window 32]
"""

import argparse
import json
import socket
import statistics
import struct
import sys
import time
import uuid

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic


def join_once(bootstrap, topic, members=10):
    group = "bench-join-%s" % uuid.uuid4().hex[:8]
    assigned = set()
    consumers = []
    for i in range(members):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "session.timeout.ms": 10000, "heartbeat.interval.ms": 100,
                      "partition.assignment.strategy": "range", "enable.auto.commit": False})
        consumers.append(c)

    def on_assign(idx):
        def cb(consumer, parts):
            if parts:
                assigned.add(idx)
        return cb

    start = time.monotonic()
    for i, c in enumerate(consumers):
        c.subscribe([topic], on_assign=on_assign(i))
    deadline = start + 60
    while len(assigned) < members and time.monotonic() < deadline:
        for c in consumers:
            c.poll(0.005)
    elapsed = (time.monotonic() - start) * 1000
    for c in consumers:
        c.close()
    if len(assigned) < members:
        raise SystemExit("only %d of %d members assigned within 60 s" % (len(assigned), members))
    return elapsed


def frame(body):
    return struct.pack(">i", len(body)) + body


def compact_str(s):
    b = s.encode()
    return bytes([len(b) + 1]) + b


def offset_commit_v8(corr, group, topic, offset):
    hdr = struct.pack(">hhi", 8, 8, corr) + struct.pack(">h", 5) + b"bench" + b"\x00"
    body = compact_str(group) + struct.pack(">i", -1) + compact_str("") + b"\x00"  # generation, member, instance null
    body += b"\x02" + compact_str(topic) + b"\x02" + struct.pack(">iqi", 0, offset, -1) + b"\x01" + b"\x00" + b"\x00"
    body += b"\x00"
    return frame(hdr + body)


def recv_frame(sock, buf):
    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise SystemExit("connection closed")
        buf += chunk
    n = struct.unpack(">i", buf[:4])[0]
    return buf[4:4 + n], buf[4 + n:]


def find_coordinator_ready(bootstrap, group):
    """Commit once with retries until the coordinator (and __consumer_offsets) is ready."""
    host, port = bootstrap.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    buf = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        s.sendall(offset_commit_v8(1, group, "bench-commits", 0))
        resp, buf = recv_frame(s, buf)
        err = struct.unpack(">h", resp[-5:-3])[0]  # the only partition's ErrorCode
        if err == 0:
            return s, buf
    raise SystemExit("coordinator not ready")


def commits(bootstrap, total, window):
    group = "bench-commit-%s" % uuid.uuid4().hex[:8]
    s, buf = find_coordinator_ready(bootstrap, group)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # latency: one at a time
    lat = []
    for i in range(min(total, 2000)):
        t = time.monotonic()
        s.sendall(offset_commit_v8(i, group, "bench-commits", i))
        resp, buf = recv_frame(s, buf)
        lat.append((time.monotonic() - t) * 1000)
        assert struct.unpack(">h", resp[-5:-3])[0] == 0
    lat.sort()
    # throughput: pipelined
    sent = done = 0
    start = time.monotonic()
    while done < total:
        while sent < total and sent - done < window:
            s.sendall(offset_commit_v8(sent, group, "bench-commits", sent))
            sent += 1
        resp, buf = recv_frame(s, buf)
        assert struct.unpack(">h", resp[-5:-3])[0] == 0
        done += 1
    rate = total / (time.monotonic() - start)
    s.close()
    return rate, lat[len(lat) // 2], lat[int(len(lat) * 0.99)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--commits", type=int, default=5000)
    ap.add_argument("--window", type=int, default=32)
    a = ap.parse_args()
    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    topic = "bench-join-%s" % uuid.uuid4().hex[:8]
    fs = admin.create_topics([NewTopic(topic, 10, 1), NewTopic("bench-commits", 1, 1)])
    for t, f in fs.items():
        try:
            f.result(30)
        except Exception as e:  # bench-commits may exist from an earlier run
            if t == topic:
                raise
            print("note: %s: %s" % (t, e), file=sys.stderr)
    joins = [join_once(a.bootstrap, topic) for _ in range(a.runs)]
    rate, p50, p99 = commits(a.bootstrap, a.commits, a.window)
    print(json.dumps({"bench": "groups", "members": 10, "join_ms_runs": [round(j, 1) for j in joins],
                      "join_ms": round(statistics.median(joins), 1),
                      "commits_per_s": round(rate), "window": a.window,
                      "commit_p50_ms": round(p50, 3), "commit_p99_ms": round(p99, 3)}))


if __name__ == "__main__":
    main()
