#!/usr/bin/python3
"""kafka_tools.py - Apache Kafka's own benchmark tools as one-JSON-line benchmarks.

    /usr/bin/python3 bench/kafka_tools.py --bootstrap HOST:PORT --topic T
        perf --acks 1|all [--messages N] [--bytes B] [--throughput MSG_PER_S]
        e2e  [--messages N] [--bytes B]

perf runs kafka-producer-perf-test (org.apache.kafka.tools.ProducerPerformance,
the Java producer's defaults otherwise, unthrottled) and reports its
summary line: msg/s, MB/s (10^6 B of values), average, p50 and p99 latency
of each send-to-acknowledgement in ms. Unthrottled, those latencies are
mostly the client's own queue; with --throughput (a fixed rate well below
either broker's limit) they are the broker's. e2e runs
org.apache.kafka.tools.EndToEndLatency (one record produced with acks=all
and consumed before the next is sent) and reports its p50/p99 in ms.

The jars are the ones tools/deps.sh test installed (build/deps/
kafka-tools.classpath). Prints one JSON object; exits 1 if the tool failed.
"""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLASSPATH = REPO / "build" / "deps" / "kafka-tools.classpath"
JAVA = ["java", "-Xms256m", "-Xmx512m"]


def tool(cls, *args):
    if not CLASSPATH.exists():
        sys.exit("kafka_tools: %s missing: run tools/deps.sh test" % CLASSPATH)
    cmd = JAVA + ["-cp", CLASSPATH.read_text().strip(), cls] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-2000:] + p.stderr[-2000:])
        sys.exit(1)
    return p.stdout


def perf(a):
    out = tool("org.apache.kafka.tools.ProducerPerformance", "--bootstrap-server", a.bootstrap,
               "--topic", a.topic, "--num-records", a.messages, "--record-size", a.bytes,
               "--throughput", a.throughput, "--command-property", "acks=%s" % a.acks)
    m = re.search(r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                  r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th", out, re.M)
    if not m:
        sys.exit("kafka_tools: no summary line in:\n%s" % out[-2000:])
    n, rate = int(m.group(1)), float(m.group(2))
    return {"tool": "kafka-producer-perf-test", "acks": a.acks, "sent": n, "bytes": a.bytes,
            "throughput_limit": a.throughput,
            "msg_per_s": round(rate, 1), "mb_per_s": round(rate * a.bytes / 1e6, 2),
            "avg_ms": float(m.group(4)), "p50_ms": float(m.group(6)), "p99_ms": float(m.group(8)),
            "max_ms": float(m.group(5))}


def e2e(a):
    out = tool("org.apache.kafka.tools.EndToEndLatency", a.bootstrap, a.topic, a.messages, "all", a.bytes)
    avg = re.search(r"Avg latency: ([\d.]+) ms", out)
    pct = re.search(r"Percentiles: 50th = ([\d.]+), 99th = ([\d.]+), 99.9th = ([\d.]+)", out)
    if not (avg and pct):
        sys.exit("kafka_tools: no latency lines in:\n%s" % out[-2000:])
    return {"tool": "EndToEndLatency", "consumed": a.messages, "bytes": a.bytes,
            "avg_ms": float(avg.group(1)), "p50_ms": float(pct.group(1)), "p99_ms": float(pct.group(2)),
            "p999_ms": float(pct.group(3))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("mode", choices=("perf", "e2e"))
    ap.add_argument("--acks", default="1", choices=("1", "all"))
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--bytes", type=int, default=100)
    ap.add_argument("--throughput", type=int, default=-1, help="msg/s; -1: unthrottled")
    a = ap.parse_args()
    print(json.dumps(perf(a) if a.mode == "perf" else e2e(a)), flush=True)


if __name__ == "__main__":
    main()
