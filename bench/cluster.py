#!/usr/bin/python3
"""cluster.py - the metadata quorum's figures on 3 nodes of this machine.

    /usr/bin/python3 bench/cluster.py [--creates N] [--failovers N] [--nodes 3]

Starts N chronik processes (build/chronik, release build, fresh data
directories under $TMPDIR, default settings, every node a voter), waits
until all are ready, then measures:

  create_ms    CreateTopics of one topic (1 partition), sent one after the
               other to the quorum leader's client listener with kafka's
               wire protocol (one connection, v4), until each answers:
               p50, p99, max over --creates topics.
  startup      elections counted by /metrics on every node after the first
               start (chronik_raft_elections_total summed), and the time
               from the first process start to every node ready.
  failover_ms  SIGKILL of the quorum leader to the next successful
               CreateTopics on the new leader (found from the survivors'
               /status), then the killed node is restarted and caught up
               before the next round: median and max over --failovers.

Prints one JSON object with the figures, and a table on stderr.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "build", "chronik")
DEADLINE_S = 30.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, work, node_id):
        self.id = node_id
        self.dir = os.path.join(work, "node%d" % node_id)
        self.port, self.cport, self.aport = free_port(), free_port(), free_port()
        self.proc = None

    def start(self, voters):
        log = open(self.dir + ".log", "ab")
        self.proc = subprocess.Popen([BIN, "server", "--node-id", str(self.id),
                                      "--listen", "127.0.0.1:%d" % self.port,
                                      "--controller-listen", "127.0.0.1:%d" % self.cport,
                                      "--admin-listen", "127.0.0.1:%d" % self.aport,
                                      "--data-dir", self.dir, "--voters", voters],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)

    def http(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.aport, path), timeout=5) as f:
                return f.status, f.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return None, b""

    def ready(self):
        return self.http("/ready")[0] == 200

    def status(self):
        code, body = self.http("/status")
        return json.loads(body) if code else None

    def elections(self):
        code, body = self.http("/metrics")
        for line in body.decode().splitlines():
            if line.startswith("chronik_raft_elections_total "):
                return int(line.split()[1])
        return 0


def wait(pred, what):
    deadline = time.monotonic() + DEADLINE_S
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit("cluster.py: timed out waiting for " + what)
        time.sleep(0.005)


def leader_of(nodes):
    for n in nodes:
        if n.proc and n.proc.poll() is None:
            st = n.status()
            if st and st["quorum"]["role"] == "leader":
                return n
    return None


# ---- CreateTopics v5 on a raw connection ------------------------------------

def create_topic(sock, corr, name):
    body = struct.pack(">i", 1) + struct.pack(">h", len(name)) + name.encode()
    body += struct.pack(">ihii", 1, 1, 0, 0)  # partitions, rf, assignments, configs
    body += struct.pack(">ib", 30000, 0)        # timeout, validate_only
    cid = b"bench"
    hdr = struct.pack(">hhih", 19, 4, corr, len(cid)) + cid
    msg = hdr + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    resp = recv_exact(sock, size)
    # corr, throttle, topics count, name, error code
    n = struct.unpack(">h", resp[12:14])[0]
    return struct.unpack(">h", resp[14 + n:16 + n])[0]


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


def creates(leader, count, prefix):
    times = []
    with socket.create_connection(("127.0.0.1", leader.port)) as s:
        for i in range(count):
            t0 = time.perf_counter()
            err = create_topic(s, i, "%s-%d" % (prefix, i))
            times.append((time.perf_counter() - t0) * 1000)
            if err != 0:
                raise SystemExit("cluster.py: CreateTopics error %d" % err)
    return times


def failover_once(nodes, voters, k):
    old = wait(lambda: leader_of(nodes), "a leader")
    t0 = time.perf_counter()
    old.proc.send_signal(signal.SIGKILL)
    old.proc.wait()
    while True:
        new = leader_of([n for n in nodes if n is not old])
        if new:
            try:
                with socket.create_connection(("127.0.0.1", new.port), timeout=2) as s:
                    if create_topic(s, 1, "failover-%d" % k) == 0:
                        break
            except OSError:
                pass
        if time.perf_counter() - t0 > DEADLINE_S:
            raise SystemExit("cluster.py: no successful create after killing the leader")
        time.sleep(0.002)
    ms = (time.perf_counter() - t0) * 1000
    old.start(voters)
    wait(old.ready, "the killed node to come back")
    return ms


def pct(v, p):
    s = sorted(v)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--creates", type=int, default=1000)
    ap.add_argument("--failovers", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="chronik-cluster-bench-")
    nodes = [Node(work, i) for i in range(1, a.nodes + 1)]
    voters = ",".join("%d@127.0.0.1:%d" % (n.id, n.cport) for n in nodes)
    try:
        t0 = time.perf_counter()
        for n in nodes:
            n.start(voters)
        wait(lambda: all(n.ready() for n in nodes), "every node to be ready")
        ready_ms = (time.perf_counter() - t0) * 1000
        elections = sum(n.elections() for n in nodes)
        leader = wait(lambda: leader_of(nodes), "a leader")
        ct = creates(leader, a.creates, "bench")
        fo = [failover_once(nodes, voters, k) for k in range(a.failovers)]
        out = {"bench": "cluster", "nodes": a.nodes, "startup_ready_ms": round(ready_ms, 1),
               "startup_elections": elections,
               "create_ms": {"n": len(ct), "p50": round(pct(ct, 50), 3), "p99": round(pct(ct, 99), 3),
                             "max": round(max(ct), 3)},
               "failover_ms": {"n": len(fo), "median": round(statistics.median(fo), 1) if fo else None,
                               "max": round(max(fo), 1) if fo else None, "all": [round(x) for x in fo]}}
        print(json.dumps(out))
        print("startup: ready in %.0f ms, %d election(s)\ncreate (to the leader): p50 %.2f ms, p99 %.2f ms\n"
              "failover (kill -9 leader -> next create): median %s ms, max %s ms"
              % (ready_ms, elections, out["create_ms"]["p50"], out["create_ms"]["p99"],
                 out["failover_ms"]["median"], out["failover_ms"]["max"]), file=sys.stderr)
    finally:
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                n.proc.send_signal(signal.SIGTERM)
                n.proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
