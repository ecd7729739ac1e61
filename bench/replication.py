#!/usr/bin/python3
"""replication.py - 3 Chronik nodes against 3 Apache Kafka brokers, replication factor 3.

    /usr/bin/python3 bench/replication.py [--targets chronik,kafka] [--reps N]
        [--benches seed-async,seed-sync,produce-acksall,e2e-rate,failover]
        [--messages N] [--e2e-seconds S] [--failovers N]

One run, on this machine, one cluster at a time (never both at once):

  chronik  three `build/chronik server` processes (release build, every node
           a voter of the metadata quorum and a broker, fresh data
           directories, default settings: fdatasync before every
           acknowledgement, min.insync.replicas 1, broker heartbeats 250 ms,
           session 1.5 s), started like bench/cluster.py does.
  kafka    three Apache Kafka 4.4.0 nodes in KRaft combined mode
           (process.roles=broker,controller, three voters, like chronik),
           from the jars tools/deps.sh test installs, heap -Xms1g -Xmx1g
           each, G1, Kafka's defaults otherwise (no fsync; broker session
           9 s, heartbeats 2 s; min.insync.replicas 1).

Every topic is created explicitly with one partition and replication factor
3, and the clock starts once its ISR is full. For every repetition each
target gets a fresh cluster, takes an untimed warm-up (--warmup-messages
with librdkafka acks=all, then kafka-python async and sync sends, on a topic
of its own: a new JVM is not measured cold) and runs, bootstrapped with all
three nodes:

  seed-async       bench/seed.py --mode async: kafka-python, acks=1,
                   50,000 x 244 B; msg/s
  seed-sync        bench/seed.py --mode sync: send().get() one at a time,
                   5,000 messages; p50/p99 ms
  produce-acksall  build/bench/produce -a -1: librdkafka (C), 100 B,
                   linger.ms 5, acks=all, --messages (default 2,000,000); msg/s
  e2e-rate         build/bench/e2e_rate: librdkafka producer (acks=all,
                   linger.ms 0: the client adds no wait) at a fixed 10,000
                   msg/s for --e2e-seconds after a 2 s warm-up, consumer in
                   the same process; p50/p99 ms from handing a message to
                   librdkafka to receiving it (ack_p50/ack_p99: to its
                   delivery report). A cluster that cannot take 10,000
                   one-message requests a second shows seconds here.
  e2e-rate-linger5 the same with linger.ms 5 (librdkafka's default): the
                   client batches ~50 messages a request and adds up to 5 ms

and once per target, after the last repetition (on its cluster):

  failover  --failovers rounds (default 10) for each of two cases: the
            victim is a node that does not lead the metadata quorum
            ("follower"), or the quorum leader itself ("quorum-leader",
            found with DescribeQuorum). Each round creates a one-partition
            topic with the victim first in its replica list (so it leads
            it), waits for a full ISR and one acknowledged produce, then
            kill -9 of the victim, and from then on asks the survivors'
            Metadata every 5 ms for the partition's leader and sends a
            one-record Produce with acks=all straight to it (raw Kafka
            protocol, v3) until one succeeds: kill -> first success, ms.
            leader_seen_ms is when a survivor's Metadata first named the
            successor. The victim is restarted and the ISR full again
            before the next round.

Around each workload the CPU time of the three server processes
(utime+stime, /proc) is read (cluster_cpu_s), and others_cpu_frac is the
share of the machine everything else used meanwhile.

stdout: one JSON object per measurement, then {"medians": ...};
stderr: progress and a summary table.
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

from confluent_kafka.admin import AdminClient, NewTopic
from kafka.protocol.api import RequestHeader
from kafka.protocol.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.produce import ProduceRequest, ProduceResponse
from kafka.record.memory_records import MemoryRecordsBuilder

import cluster as qcluster  # bench/cluster.py: chronik nodes on free ports
from runner import (KAFKA_CLASSPATH, KAFKA_HEAP, api_versions_ok, children_cpu, cpu_totals, free_port, load_1m,
                    log, proc_stat)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
SEED = os.path.join(REPO, "bench", "seed.py")
PRODUCE = os.path.join(REPO, "build", "bench", "produce")
E2E = os.path.join(REPO, "build", "bench", "e2e_rate")
ALL_BENCHES = ("seed-async", "seed-sync", "produce-acksall", "e2e-rate", "e2e-rate-linger5", "failover")
START_TIMEOUT_S = 120.0     # three JVMs on two loaded cores
SETTLE_TIMEOUT_S = 60.0
FAILOVER_TIMEOUT_S = 60.0
PROBE_POLL_S = 0.005
PROBE_PRODUCE_TIMEOUT_MS = 30000
WIRE_TIMEOUT_S = 35.0
BENCH_TIMEOUT_S = 900.0
KAFKA_CLUSTER_ID = "Q2hyb25pa1JlcGxCZW5jaA"
ERR_NONE = 0


# ---- the Kafka protocol, raw (kafka-python's request classes) ---------------

def _recv_exact(sock, n):
    return qcluster.recv_exact(sock, n)


def call(port, request, response_cls=None, raw_header=None, timeout=WIRE_TIMEOUT_S):
    """One request on a fresh connection to 127.0.0.1:port; the response
    body (after correlation id) decoded by response_cls, or raw bytes."""
    payload = raw_header
    if payload is None:
        header = RequestHeader(request, correlation_id=1, client_id="bench-repl")  # kept: encode is a weak method
        payload = header.encode() + request.encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", _recv_exact(s, 4))[0]
        body = _recv_exact(s, size)[4:]
    return response_cls.decode(body) if response_cls else body


def metadata(port, topic):
    """({broker ids}, {partition: (leader, replicas, isr)}) or None."""
    try:
        r = call(port, MetadataRequest[1](topics=[topic]), MetadataResponse[1], timeout=2.0)
    except (OSError, ConnectionError, struct.error):
        return None
    brokers = {b[0] for b in r.brokers}
    for err, name, _internal, parts in r.topics:
        if name == topic and err == ERR_NONE:
            return brokers, {p[1]: (p[2], sorted(p[3]), sorted(p[4])) for p in parts}
    return brokers, {}


def produce_one(port, topic, partition, acks=-1):
    """One record, acks=all; the partition's error code (-1: no answer)."""
    b = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 16)
    b.append(timestamp=None, key=None, value=b"failover-probe", headers=[])
    b.close()
    req = ProduceRequest[3](transactional_id=None, required_acks=acks, timeout=PROBE_PRODUCE_TIMEOUT_MS,
                            topics=[(topic, [(partition, b.buffer())])])
    try:
        r = call(port, req, ProduceResponse[3])
    except (OSError, ConnectionError, struct.error):
        return -1
    return r.topics[0][1][0][1]


def describe_quorum_leader(cport):
    """DescribeQuorum v0 to a controller listener: the leader id when this
    node answers as the leader (error 0), else None."""
    name = b"__cluster_metadata"
    body = bytes([2, len(name) + 1]) + name + bytes([2]) + struct.pack(">i", 0) + bytes([0, 0, 0])
    header = struct.pack(">hhih", 55, 0, 1, len(b"bench")) + b"bench" + bytes([0])
    try:
        resp = call(cport, None, raw_header=header + body, timeout=2.0)
    except (OSError, ConnectionError, struct.error):
        return None
    # header tagged fields (1 byte), error_code, topics count, topic name
    # (compact: length + 1, then the bytes), partitions count, then the first
    # partition's index, error_code and leader_id
    err = struct.unpack_from(">h", resp, 1)[0]
    pos = 4 + resp[4] + 1
    _index, perr, leader = struct.unpack_from(">ihi", resp, pos)
    return leader if err == ERR_NONE and perr == ERR_NONE else None


# ---- the two kinds of cluster ------------------------------------------------

class NodeProcess:
    """What the benchmark does to a node's process, either kind."""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ChronikNode(NodeProcess, qcluster.Node):
    def up(self):
        return self.ready()


class KafkaNode(NodeProcess):
    """One Kafka 4.4.0 process in combined mode; same interface as ChronikNode."""

    def __init__(self, work, node_id):
        self.id = node_id
        self.dir = os.path.join(work, "kafka%d" % node_id)
        os.makedirs(self.dir)
        self.port, self.cport = free_port(), free_port()
        self.props = os.path.join(self.dir, "server.properties")
        self.proc = None
        self.formatted = False

    def _write_props(self, voters):
        with open(self.props, "w") as f:
            f.write("\n".join([
                "process.roles=broker,controller", "node.id=%d" % self.id,
                "controller.quorum.voters=%s" % voters,
                "listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (self.port, self.cport),
                "advertised.listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
                "controller.listener.names=CONTROLLER", "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "log.dirs=%s" % os.path.join(self.dir, "data"), ""]))

    def start(self, voters):
        cp = open(KAFKA_CLASSPATH).read().strip()
        if not self.formatted:
            self._write_props(voters)
            fmt = subprocess.run(["java", "-cp", cp, "kafka.tools.StorageTool", "format", "-t",
                                  KAFKA_CLUSTER_ID, "-c", self.props], capture_output=True)
            if fmt.returncode != 0:
                raise SystemExit("replication.py: kafka format failed: %s" % fmt.stderr.decode()[-2000:])
            self.formatted = True
        log_f = open(self.dir + ".log", "ab")
        self.proc = subprocess.Popen(["java"] + KAFKA_HEAP + ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                                      "-Djava.awt.headless=true", "-cp", cp, "kafka.Kafka", self.props],
                                     stdin=subprocess.DEVNULL, stdout=log_f, stderr=log_f, cwd=self.dir)

    def up(self):
        return self.alive() and api_versions_ok(self.port)


def wait_for(pred, what, timeout_s):
    deadline = time.monotonic() + timeout_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit("replication.py: timed out waiting for " + what)
        time.sleep(0.02)


class Cluster:
    def __init__(self, kind, work, n=3):
        self.kind = kind
        cls = ChronikNode if kind == "chronik" else KafkaNode
        self.nodes = [cls(work, i) for i in range(1, n + 1)]
        self.voters = ",".join("%d@127.0.0.1:%d" % (x.id, x.cport) for x in self.nodes)
        try:
            for x in self.nodes:
                x.start(self.voters)
            self.wait_whole()
        except BaseException:
            self.stop()
            raise

    @property
    def bootstrap(self):
        return ",".join("127.0.0.1:%d" % x.port for x in self.nodes)

    def node(self, node_id):
        return next(x for x in self.nodes if x.id == node_id)

    def live(self):
        return [x for x in self.nodes if x.alive()]

    def quorum_leader(self):
        for x in self.live():
            lid = describe_quorum_leader(x.cport)
            if lid == x.id:
                return x
        return None

    def wait_whole(self):
        """Every node up, registered (Metadata lists all), a quorum leader."""
        def whole():
            if not all(x.up() for x in self.nodes):
                return False
            md = metadata(self.nodes[0].port, "__none__")
            return md and len(md[0]) == len(self.nodes) and self.quorum_leader()
        wait_for(whole, "every %s node to be up and registered" % self.kind, START_TIMEOUT_S)

    def create_topic(self, topic, assignment=None):
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        nt = NewTopic(topic, 1, replica_assignment=[assignment]) if assignment else NewTopic(topic, 1, 3)
        admin.create_topics([nt])[topic].result(60)
        self.wait_isr(topic, assignment[0] if assignment else None)

    def wait_isr(self, topic, leader=None):
        def full():
            for x in self.live():
                md = metadata(x.port, topic)
                if not md or 0 not in md[1]:
                    return False
                lead, _reps, isr = md[1][0]
                if len(isr) != len(self.nodes) or lead < 0 or (leader is not None and lead != leader):
                    return False
            return True
        wait_for(full, "%s's ISR to be full on %s" % (topic, self.kind), SETTLE_TIMEOUT_S)

    def cpu_s(self):
        return sum(proc_stat(x.proc.pid)[0] for x in self.live())

    def stop(self):
        """SIGTERM to every node at once (a Kafka node left alone waits for
        a quorum that its stopped peers no longer make), then each waited for."""
        for x in self.nodes:
            if x.alive():
                x.proc.send_signal(signal.SIGTERM)
        for x in self.nodes:
            if x.proc is not None:
                x.stop()


# ---- workloads ---------------------------------------------------------------

def workload_command(name, c, a):
    topic = "bench-%s" % name
    if name.startswith("seed-"):
        mode = name.split("-")[1]
        return topic, [PYTHON, SEED, "--bootstrap", c.bootstrap, "--mode", mode, "--topic", topic,
                       "--messages", str(a.seed_messages if mode == "async" else a.sync_messages)]
    if name == "produce-acksall":
        return topic, [PRODUCE, "-b", c.bootstrap, "-t", topic, "-n", str(a.messages), "-a", "-1"]
    linger = "5" if name.endswith("-linger5") else "0"
    return topic, [E2E, "-b", c.bootstrap, "-t", topic, "-r", str(a.e2e_rate), "-d", str(a.e2e_seconds),
                   "-X", "linger.ms=" + linger]


def run_workload(name, c, rep, a):
    topic, cmd = workload_command(name, c, a)
    c.create_topic(topic)
    base = {"bench": name, "target": c.kind, "rep": rep, "load_1m": round(load_1m(), 2)}
    (all0, _), kid0, cpu0, t0 = cpu_totals(), children_cpu(), c.cpu_s(), time.monotonic()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=BENCH_TIMEOUT_S, cwd=REPO)
    wall = time.monotonic() - t0
    cpu, kid, (all1, _) = c.cpu_s() - cpu0, children_cpu() - kid0, cpu_totals()
    lines = [l for l in p.stdout.decode().splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        return dict(base, run_error="exit %d" % p.returncode,
                    stderr=p.stderr.decode(errors="replace").strip().splitlines()[-5:],
                    result=json.loads(lines[-1]) if lines else None)
    r = json.loads(lines[-1])
    r.pop("bench", None)
    out = dict(base, **r)
    out["wall_s"] = round(wall, 3)
    out["cluster_cpu_s"] = round(cpu, 2)
    others = (all1 - all0) - cpu - kid
    out["others_cpu_frac"] = round(max(0.0, others) / (wall * os.cpu_count()), 2)
    return out


# ---- failover ---------------------------------------------------------------

def probe(c, victim, topic):
    """After the kill: (ms to the first acks=all success, ms to the first
    Metadata naming a live successor, error codes seen)."""
    t0 = time.perf_counter()
    seen_ms, errors = None, {}
    while time.perf_counter() - t0 < FAILOVER_TIMEOUT_S:
        for s in c.live():
            md = metadata(s.port, topic)
            if not md or 0 not in md[1]:
                continue
            lead = md[1][0][0]
            if lead < 0 or lead == victim.id:
                break
            if seen_ms is None:
                seen_ms = (time.perf_counter() - t0) * 1000
            err = produce_one(c.node(lead).port, topic, 0)
            if err == ERR_NONE:
                return (time.perf_counter() - t0) * 1000, seen_ms, errors
            errors[err] = errors.get(err, 0) + 1
            break
        time.sleep(PROBE_POLL_S)
    raise SystemExit("replication.py: no acks=all success %.0f s after killing node %d"
                     % (FAILOVER_TIMEOUT_S, victim.id))


def failover_round(c, case, k):
    ql = wait_for(c.quorum_leader, "a quorum leader", SETTLE_TIMEOUT_S)
    if case == "quorum-leader":
        victim = ql
    else:
        others = [x for x in c.nodes if x is not ql]
        victim = others[k % len(others)]
    rest = [x.id for x in c.nodes if x is not victim]
    topic = "failover-%s-%d" % (case, k)
    c.create_topic(topic, [victim.id] + rest)
    if produce_one(victim.port, topic, 0) != ERR_NONE:
        raise SystemExit("replication.py: the warm-up produce to node %d failed" % victim.id)
    victim.kill9()
    ms, seen_ms, errors = probe(c, victim, topic)
    victim.start(c.voters)
    c.wait_whole()
    c.wait_isr(topic)
    return {"victim": victim.id, "quorum_leader": ql.id, "ms": round(ms, 1),
            "leader_seen_ms": round(seen_ms, 1), "errors": {str(e): n for e, n in errors.items()}}


def run_failover(c, a):
    out = []
    for case in ("follower", "quorum-leader"):
        rounds = []
        for k in range(a.failovers):
            r = failover_round(c, case, k)
            log("%s failover %s %d: %s" % (c.kind, case, k, r))
            rounds.append(r)
        ms = [r["ms"] for r in rounds]
        out.append({"bench": "failover-" + case, "target": c.kind, "rounds": len(ms),
                    "median_ms": round(statistics.median(ms), 1), "max_ms": max(ms),
                    "leader_seen_median_ms": round(statistics.median(r["leader_seen_ms"] for r in rounds), 1),
                    "all": rounds})
    return out


# ---- the run ------------------------------------------------------------------

MEDIAN_KEYS = ("msg_per_s", "p50_ms", "p99_ms", "p999_ms", "ack_p50_ms", "ack_p99_ms", "cluster_cpu_s",
               "others_cpu_frac")


def medians(results):
    med = {}
    for r in results:
        if "run_error" in r or r["bench"].startswith("failover"):
            continue
        med.setdefault("%s/%s" % (r["bench"], r["target"]), []).append(r)
    out = {}
    for key, rs in med.items():
        m = {"runs": len(rs)}
        for k in MEDIAN_KEYS:
            vals = [r[k] for r in rs if r.get(k) is not None]
            if vals:
                m[k] = statistics.median(vals)
        out[key] = m
    for r in results:
        if r["bench"].startswith("failover"):
            out["%s/%s" % (r["bench"], r["target"])] = {k: r[k] for k in
                                                        ("rounds", "median_ms", "max_ms", "leader_seen_median_ms")}
    return out


def warm_up(c, a):
    """Untimed traffic on a topic of its own before the first measurement,
    so that neither cluster is measured cold (a fresh JVM's JIT and heap)."""
    if a.warmup_messages <= 0:
        return
    c.create_topic("bench-warmup")
    t0 = time.monotonic()
    for cmd in ([PRODUCE, "-b", c.bootstrap, "-t", "bench-warmup", "-n", str(a.warmup_messages), "-a", "-1"],
                [PYTHON, SEED, "--bootstrap", c.bootstrap, "--mode", "async", "--topic", "bench-warmup",
                 "--messages", str(a.warmup_messages // 20)],
                [PYTHON, SEED, "--bootstrap", c.bootstrap, "--mode", "sync", "--topic", "bench-warmup",
                 "--messages", "1000"]):
        subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=BENCH_TIMEOUT_S, cwd=REPO)
    log("%s warm-up: %.1f s" % (c.kind, time.monotonic() - t0))


def run_target(kind, rep, a, work, last):
    d = tempfile.mkdtemp(prefix="%s-%d-" % (kind, rep), dir=work)
    t0 = time.monotonic()
    c = Cluster(kind, d)
    log("rep %d: %s cluster up in %.1f s at %s" % (rep, kind, time.monotonic() - t0, c.bootstrap))
    results = []
    try:
        warm_up(c, a)
        for name in [b for b in a.benches if b != "failover"]:
            r = run_workload(name, c, rep, a)
            print(json.dumps(r), flush=True)
            log("rep %d %s %s: %s" % (rep, kind, name, {k: r.get(k) for k in MEDIAN_KEYS + ("run_error",)
                                                           if r.get(k) is not None}))
            results.append(r)
        if last and "failover" in a.benches:
            for r in run_failover(c, a):
                print(json.dumps(r), flush=True)
                results.append(r)
    finally:
        c.stop()
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", default="chronik,kafka")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--benches", default=",".join(ALL_BENCHES))
    ap.add_argument("--messages", type=int, default=2_000_000, help="produce-acksall")
    ap.add_argument("--seed-messages", type=int, default=50_000)
    ap.add_argument("--sync-messages", type=int, default=5_000)
    ap.add_argument("--e2e-rate", type=int, default=10_000)
    ap.add_argument("--e2e-seconds", type=int, default=20)
    ap.add_argument("--failovers", type=int, default=10, help="rounds per case")
    ap.add_argument("--warmup-messages", type=int, default=500_000,
                    help="untimed before the first workload (librdkafka acks=all, then 1/20 of it "
                         "kafka-python async and 1,000 sync); 0: none")
    ap.add_argument("--keep", action="store_true", help="keep data directories and logs")
    a = ap.parse_args()
    a.targets = a.targets.split(",")
    a.benches = a.benches.split(",")
    bad = [b for b in a.benches if b not in ALL_BENCHES] + [t for t in a.targets if t not in ("chronik", "kafka")]
    if bad:
        ap.error("unknown: %s" % ",".join(bad))
    for exe in (qcluster.BIN, PRODUCE, E2E):
        if not os.path.exists(exe):
            sys.exit("replication.py: %s missing: make build/chronik bench" % exe)
    work = tempfile.mkdtemp(prefix="chronik-repl-bench-")
    print(json.dumps({"run": {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "nproc": os.cpu_count(), "load_1m": round(load_1m(), 2),
                              "targets": a.targets, "reps": a.reps}}), flush=True)
    results = []
    for rep in range(1, a.reps + 1):
        order = a.targets if rep % 2 else list(reversed(a.targets))
        for kind in order:
            results += run_target(kind, rep, a, work, rep == a.reps)
    med = medians(results)
    print(json.dumps({"medians": med}), flush=True)
    for k in sorted(med):
        log("%-32s %s" % (k, med[k]))
    log("work directory %s" % work)
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if any("run_error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
