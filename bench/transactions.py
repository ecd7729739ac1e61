#!/usr/bin/python3
"""transactions.py - transactional producer against idempotent producer, one node.

    /usr/bin/python3 bench/transactions.py [--reps 3] [--messages N] [--per-txn 100] [--commits N]
                                          [--binary build/chronik] [--broker chronik|kafka]

For each repetition a fresh `build/chronik server` (release build, one node,
its defaults: fdatasync before every acknowledgement, a new data directory
under $TMPDIR) gets a 3-partition topic, and confluent-kafka (librdkafka)
producers, acks=all, linger.ms 5, 100 B values spread over the 3 partitions,
run one after the other (the order of the first two swapped every
repetition):

  idempotent     enable.idempotence, --messages produced then flushed; msg/s
  transactional  transactional.id, --messages in transactions of --per-txn
                 (begin, produce, commit_transaction); msg/s
  commit         --commits transactions of one record on each of the 3
                 partitions, flushed first; p50/p99 ms of commit_transaction
                 alone (EndTxn: the PrepareCommit record durable; the markers
                 follow asynchronously) and of the whole transaction

Around each one the broker's fdatasync count (chronik_log_fsyncs_total from
/metrics) and CPU seconds (utime+stime) are read: fsyncs_per_txn and
broker_cpu_s.

--broker kafka runs the same against Apache Kafka (one KRaft node, the
installed kafka_2.13 of tools/deps.sh test, started by bench/runner.py),
the reference broker; it does not fsync before acknowledging, and its
fsync counts are not known (-1).

stdout: one JSON object per measurement, then {"medians": ...} over the
repetitions; stderr: progress.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "build", "chronik")
DEADLINE_S = 60.0
TOPIC = "bench-txn"
NPARTS = 3
VALUE = b"v" * 100


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KafkaBroker:
    """Apache Kafka through bench/runner.py's Broker; the same face as Broker."""

    def __init__(self, work):
        sys.path.insert(0, os.path.join(REPO, "bench"))
        import runner
        self.b = runner.Broker("kafka", work, [TOPIC])
        self.bootstrap = self.b.bootstrap
        self.proc = self.b.proc

    def fsyncs(self):
        return -1

    def cpu_s(self):
        return Broker.cpu_s(self)

    def stop(self):
        self.b.stop()


class Broker:
    def __init__(self, work, binary):
        self.dir = os.path.join(work, "data")
        self.port, self.cport, self.aport = free_port(), free_port(), free_port()
        self.log = open(os.path.join(work, "broker.log"), "ab")
        self.proc = subprocess.Popen([binary, "server", "--node-id", "1",
                                      "--listen", "127.0.0.1:%d" % self.port,
                                      "--controller-listen", "127.0.0.1:%d" % self.cport,
                                      "--admin-listen", "127.0.0.1:%d" % self.aport,
                                      "--data-dir", self.dir],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log)
        self.bootstrap = "127.0.0.1:%d" % self.port
        wait(lambda: self.http("/ready") is not None, "the broker to be ready")

    def http(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.aport, path), timeout=5) as f:
                return f.read().decode() if f.status == 200 else None
        except OSError:
            return None

    def fsyncs(self):
        for line in (self.http("/metrics") or "").splitlines():
            if line.startswith("chronik_log_fsyncs_total "):
                return int(float(line.split()[1]))
        return -1

    def cpu_s(self):
        fields = open("/proc/%d/stat" % self.proc.pid).read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def wait(pred, what):
    deadline = time.monotonic() + DEADLINE_S
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit("transactions.py: timed out waiting for " + what)
        time.sleep(0.01)


def pct(v, p):
    s = sorted(v)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def producer(bootstrap, **extra):
    conf = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "queue.buffering.max.messages": 1000000}
    conf.update(extra)
    return Producer(conf)


def produce_n(p, n, first=0):
    for i in range(first, first + n):
        while True:
            try:
                p.produce(TOPIC, VALUE, partition=i % NPARTS)
                break
            except BufferError:
                p.poll(0.01)


def idempotent(b, args):
    p = producer(b.bootstrap, **{"enable.idempotence": True})
    produce_n(p, NPARTS)  # connected, producer id known, before the clock
    assert p.flush(DEADLINE_S) == 0
    t0 = time.monotonic()
    produce_n(p, args.messages)
    assert p.flush(DEADLINE_S) == 0, "undelivered"
    s = time.monotonic() - t0
    return {"msgs_per_s": round(args.messages / s), "seconds": round(s, 3)}


def transactional(b, args, txn_id):
    p = producer(b.bootstrap, **{"transactional.id": txn_id})
    p.init_transactions(DEADLINE_S)
    txns = args.messages // args.per_txn
    t0 = time.monotonic()
    for k in range(txns):
        p.begin_transaction()
        produce_n(p, args.per_txn, k * args.per_txn)
        p.commit_transaction(DEADLINE_S)
    s = time.monotonic() - t0
    return {"msgs_per_s": round(txns * args.per_txn / s), "txns_per_s": round(txns / s, 1),
            "seconds": round(s, 3), "txns": txns}


def commit_latency(b, args):
    p = producer(b.bootstrap, **{"transactional.id": "bench-commit", "linger.ms": 0})
    p.init_transactions(DEADLINE_S)
    commit, whole = [], []
    for _ in range(args.commits):
        t0 = time.monotonic()
        p.begin_transaction()
        produce_n(p, NPARTS)
        assert p.flush(DEADLINE_S) == 0
        t1 = time.monotonic()
        p.commit_transaction(DEADLINE_S)
        t2 = time.monotonic()
        commit.append((t2 - t1) * 1000)
        whole.append((t2 - t0) * 1000)
    return {"txns": args.commits, "commit_p50_ms": round(pct(commit, 50), 3),
            "commit_p99_ms": round(pct(commit, 99), 3), "txn_p50_ms": round(pct(whole, 50), 3),
            "txn_p99_ms": round(pct(whole, 99), 3)}


def measured(b, name, rep, fn, txns):
    f0, c0 = b.fsyncs(), b.cpu_s()
    out = fn()
    fsyncs = b.fsyncs() - f0 if f0 >= 0 else -1   # -1: not known (Kafka)
    out.update({"bench": name, "rep": rep, "fsyncs": fsyncs, "broker_cpu_s": round(b.cpu_s() - c0, 2)})
    if txns:
        out["fsyncs_per_txn"] = round(fsyncs / txns, 2) if fsyncs >= 0 else -1
    print(json.dumps(out), flush=True)
    print("rep %d %s: %s" % (rep, name, out), file=sys.stderr)
    return out


def one_rep(rep, args):
    work = tempfile.mkdtemp(prefix="chronik-bench-txn-")
    b = KafkaBroker(work) if args.broker == "kafka" else Broker(work, args.binary)
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})  # outlives its future
        admin.create_topics([NewTopic(TOPIC, NPARTS, 1)])[TOPIC].result(DEADLINE_S)
        order = [("idempotent", lambda: idempotent(b, args), 0),
                 ("transactional", lambda: transactional(b, args, "bench-txn-%d" % rep),
                  args.messages // args.per_txn)]
        if rep % 2:
            order.reverse()
        got = [measured(b, name, rep, fn, txns) for name, fn, txns in order]
        got.append(measured(b, "commit", rep, lambda: commit_latency(b, args), args.commits))
        return got
    finally:
        b.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--messages", type=int, default=300000)
    ap.add_argument("--per-txn", type=int, default=100)
    ap.add_argument("--commits", type=int, default=1000)
    ap.add_argument("--binary", default=BIN, help="the broker to run (default: the release build)")
    ap.add_argument("--broker", choices=("chronik", "kafka"), default="chronik")
    args = ap.parse_args()
    if args.broker == "chronik" and not os.path.exists(args.binary):
        raise SystemExit("transactions.py: %s missing: make build/chronik" % args.binary)
    runs = [r for rep in range(args.reps) for r in one_rep(rep, args)]
    med = {}
    for name, keys in (("idempotent", ("msgs_per_s",)), ("transactional", ("msgs_per_s", "fsyncs_per_txn")),
                       ("commit", ("commit_p50_ms", "commit_p99_ms", "txn_p50_ms", "txn_p99_ms", "fsyncs_per_txn"))):
        for k in keys:
            med["%s_%s" % (name, k)] = statistics.median(r[k] for r in runs if r["bench"] == name)
    med["transactional_vs_idempotent"] = round(med["transactional_msgs_per_s"] / med["idempotent_msgs_per_s"], 3)
    print(json.dumps({"medians": med, "broker": args.broker, "reps": args.reps, "messages": args.messages, "per_txn": args.per_txn,
                      "commits": args.commits}))


if __name__ == "__main__":
    main()
