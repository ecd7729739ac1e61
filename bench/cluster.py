#!/usr/bin/python3
"""cluster.py - the metadata quorum's figures on 3 nodes of this machine.

    build/deps/venv/bin/python bench/cluster.py [--creates N] [--producers N] [--failovers N]
                                                [--nodes 3] [--keep] [--bin PATH [--bin PATH2 ... --rounds R]]

(the newest confluent-kafka, which tools/deps.sh test installs there: Debian's
librdkafka 2.0.2 asks for a new topic's metadata only at its once-a-second
topic scan, so each of its producers waits ~1 s whatever the broker does)

Starts N chronik processes (build/chronik, release build, fresh data
directories under $TMPDIR, default settings, every node a voter), waits
until all are ready, then measures:

  create_ms    CreateTopics of one topic (1 partition), sent one after the
               other to the quorum leader's client listener with kafka's
               wire protocol (one connection, v4), until each answers:
               p50, p99, max over --creates topics.
  create_via_follower_ms
               the same sent to a node that does not lead the quorum (it
               forwards each to the controller and answers once the topic
               is applied on itself). The two take turns, one create at a
               time, so both see the same growing number of topics.
  auto_create  --producers confluent-kafka (librdkafka) producers in this one
               process, producer i bootstrapped to node i mod N, each
               producing one message (acks=all) to a topic of its own that
               does not exist yet, so that the node it asks auto-creates it.
               Every producer is made and has fetched the cluster's metadata
               before the clock starts; then one thread per producer
               produce()s and flush()es (librdkafka's own threads do the
               network work, the GIL is released while they wait). Figures:
               wall time from the start to the last acknowledgement, and each
               producer's time to its acknowledgement (p50, max).
  startup      elections counted by /metrics on every node after the first
               start (chronik_raft_elections_total summed), and the time
               from the first process start to every node ready.
  failover_ms  SIGKILL of the quorum leader to the next successful
               CreateTopics on the new leader (found from the survivors'
               /status), then the killed node is restarted and caught up
               before the next round: median and max over --failovers.

Prints one JSON object with the figures, and a table on stderr.

Comparing builds: with --bin given twice or more, each of --rounds rounds
runs every binary once, one after the other (a fresh cluster each time), so
that load from other work on the machine falls on all of them alike; one
JSON line per run (with the 1-minute load average when the creates began),
then the medians over the rounds per binary, e.g. the tree before and after
a change: --producers 0 --failovers 0 --bin /tmp/before --bin build/chronik.
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
import threading
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "build", "chronik")
DEADLINE_S = 30.0
BIN_PATH = [BIN]  # --bin replaces it (A/B runs of two builds)


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
        self.proc = subprocess.Popen([BIN_PATH[0], "server", "--node-id", str(self.id),
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


def creates(nodes, count):
    """count creates to each node, taking turns (so that each figure sees
    the same number of topics); one connection per node. ms per node."""
    times = [[] for _ in nodes]
    conns = [socket.create_connection(("127.0.0.1", n.port)) for n in nodes]
    try:
        for i in range(count):
            for k, s in enumerate(conns):
                t0 = time.perf_counter()
                err = create_topic(s, i, "bench-%d-%d" % (nodes[k].id, i))
                times[k].append((time.perf_counter() - t0) * 1000)
                if err != 0:
                    raise SystemExit("cluster.py: CreateTopics error %d" % err)
    finally:
        for s in conns:
            s.close()
    return times


def auto_create(nodes, count, prefix="auto"):
    """count producers, each auto-creating its own topic; the figures."""
    import confluent_kafka
    from confluent_kafka import Producer
    version = confluent_kafka.version()
    client = "confluent-kafka %s (librdkafka %s)" % (version[0] if isinstance(version, tuple) else version,
                                                     confluent_kafka.libversion()[0])
    prods = [Producer({"bootstrap.servers": "127.0.0.1:%d" % nodes[i % len(nodes)].port, "acks": "all",
                       "linger.ms": 0}) for i in range(count)]
    for p in prods:
        p.list_topics(timeout=DEADLINE_S)  # connected, metadata known; no topic named yet
    acked, errors = [None] * count, []
    start = threading.Barrier(count + 1)

    def one(i):
        def done(err, _msg):
            if err is not None:
                errors.append("%d: %s" % (i, err))
            acked[i] = time.perf_counter()
        start.wait()
        prods[i].produce("%s-%d" % (prefix, i), b"x", on_delivery=done)
        prods[i].flush(DEADLINE_S)
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(DEADLINE_S)
    if errors or None in acked:
        raise SystemExit("cluster.py: auto-creating producers failed: %s, %d unacknowledged"
                         % (errors[:5], acked.count(None)))
    each = [(t - t0) * 1000 for t in acked]
    return {"producers": count, "client": client, "wall_ms": round(max(each), 1), "each_p50_ms": round(pct(each, 50), 1),
            "each_max_ms": round(max(each), 1)}


def failover_once(nodes, voters, k):
    old = wait(lambda: leader_of(nodes), "a leader")
    t0 = time.perf_counter()
    old.proc.send_signal(signal.SIGKILL)
    old.proc.wait()
    elected, failed = None, []
    while True:
        new = leader_of([n for n in nodes if n is not old])
        if new:
            elected = elected or time.perf_counter()
            try:
                with socket.create_connection(("127.0.0.1", new.port), timeout=2) as s:
                    err = create_topic(s, 1, "failover-%d" % k)
                    if err == 0:
                        break
                    failed.append("error %d" % err)
            except OSError as e:
                failed.append(type(e).__name__)
        if time.perf_counter() - t0 > DEADLINE_S:
            raise SystemExit("cluster.py: no successful create after killing the leader")
        time.sleep(0.002)
    ms = (time.perf_counter() - t0) * 1000
    if ms > 3000:
        print("cluster.py: failover %d took %.0f ms (leader seen after %.0f ms; failed creates: %s)"
              % (k, ms, (elected - t0) * 1000, failed[:10]), file=sys.stderr)
    old.start(voters)
    wait(old.ready, "the killed node to come back")
    return ms


def pct(v, p):
    s = sorted(v)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def summary(times):
    return {"n": len(times), "p50": round(pct(times, 50), 3), "p99": round(pct(times, 99), 3),
            "max": round(max(times), 3)}


def report(out):
    print("startup: ready in %.0f ms, %d election(s)\n"
          "create (to the leader): p50 %.2f ms, p99 %.2f ms\n"
          "create (to a follower): p50 %.2f ms, p99 %.2f ms\n"
          "%s producers auto-creating: all acknowledged in %s ms (each: p50 %s ms)\n"
          "failover (kill -9 leader -> next create): median %s ms, max %s ms"
          % (out["startup_ready_ms"], out["startup_elections"], out["create_ms"]["p50"], out["create_ms"]["p99"],
             out["create_via_follower_ms"]["p50"], out["create_via_follower_ms"]["p99"],
             *[(out["auto_create"] or {}).get(k) for k in ("producers", "wall_ms", "each_p50_ms")],
             out["failover_ms"]["median"], out["failover_ms"]["max"]), file=sys.stderr)


def run_once(a, bin_path):
    """One fresh cluster of bin_path: the figures, as one JSON object."""
    BIN_PATH[0] = bin_path
    work = tempfile.mkdtemp(prefix="chronik-cluster-bench-")
    ok = False
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
        follower = next(n for n in nodes if n is not leader)
        load = os.getloadavg()[0]
        ct, cf = creates([leader, follower], a.creates)
        ac = auto_create(nodes, a.producers) if a.producers else None
        fo = [failover_once(nodes, voters, k) for k in range(a.failovers)]
        out = {"bench": "cluster", "bin": bin_path, "nodes": a.nodes, "startup_ready_ms": round(ready_ms, 1),
               "startup_elections": elections, "load1_at_creates": round(load, 2), "create_ms": summary(ct),
               "create_via_follower_ms": summary(cf), "auto_create": ac,
               "failover_ms": {"n": len(fo), "median": round(statistics.median(fo), 1) if fo else None,
                               "max": round(max(fo), 1) if fo else None, "all": [round(x) for x in fo]}}
        ok = True
        return out
    finally:
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                n.proc.send_signal(signal.SIGTERM)
                n.proc.wait(timeout=30)
        if ok and not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("cluster.py: data and logs kept in %s" % work, file=sys.stderr)


def compare(a):
    """--bin given more than once: --rounds rounds, each running every
    binary once in turn (a fresh cluster each), so that load from other work
    falls on all of them alike; medians over the rounds per binary."""
    runs = []
    for r in range(a.rounds):
        for b in a.bin:
            out = run_once(a, b)
            out["round"] = r + 1
            print(json.dumps(out), flush=True)
            runs.append(out)
    med = {}
    for b in a.bin:
        mine = [o for o in runs if o["bin"] == b]
        med[b] = {k: round(statistics.median(o[f][q] for o in mine), 3)
                  for k, f, q in (("create_p50", "create_ms", "p50"), ("create_p99", "create_ms", "p99"),
                                  ("via_follower_p50", "create_via_follower_ms", "p50"),
                                  ("via_follower_p99", "create_via_follower_ms", "p99"))}
        med[b]["load1"] = round(statistics.median(o["load1_at_creates"] for o in mine), 2)
        print("%s: median of %d: leader p50 %.2f p99 %.2f ms, via follower p50 %.2f p99 %.2f ms (load %.2f)"
              % (b, len(mine), med[b]["create_p50"], med[b]["create_p99"], med[b]["via_follower_p50"],
                 med[b]["via_follower_p99"], med[b]["load1"]), file=sys.stderr)
    print(json.dumps({"bench": "cluster-compare", "rounds": a.rounds, "medians": med}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--creates", type=int, default=1000)
    ap.add_argument("--producers", type=int, default=100)
    ap.add_argument("--failovers", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the nodes' data and logs (kept anyway on failure)")
    ap.add_argument("--bin", action="append",
                    help="a chronik binary to run (default: build/chronik); twice or more: compare them")
    ap.add_argument("--rounds", type=int, default=5, help="with several --bin: rounds of one run each")
    a = ap.parse_args()
    a.bin = a.bin or [BIN]
    if len(a.bin) > 1:
        compare(a)
        return
    out = run_once(a, a.bin[0])
    print(json.dumps(out))
    report(out)


if __name__ == "__main__":
    main()
