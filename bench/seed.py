#!/usr/bin/python3
"""seed.py - kafka-python producer benchmark (the original "seed" figures).

    /usr/bin/python3 bench/seed.py --bootstrap HOST:PORT --mode async|sync
                                   [--topic T] [--messages N] [--bytes B]
                                   [--max-seconds S]

kafka-python (Debian's python3-kafka, 2.0.2) with acks=1 and its defaults
otherwise (linger_ms=0, batch_size=16384, 5 requests in flight, no
compression), B-byte values (default 244), no key.

  async  send() every message, then flush(): msg/s over the whole run.
  sync   send().get() one message at a time: msg/s and the latency of each
         send-to-acknowledgement, p50/p99/max in milliseconds. It stops
         early after --max-seconds (the JSON says how many were sent).

Before the clock starts, one message is sent and awaited, so connecting,
ApiVersions probing and topic auto-creation are not timed. Prints one JSON
object; exits 1 if any send failed.
"""

import argparse
import json
import os
import sys
import time

import kafka

DEFAULT_BYTES = 244
DEFAULT_ASYNC_MESSAGES = 50_000
DEFAULT_SYNC_MESSAGES = 5_000
DEFAULT_MAX_SECONDS = 120.0
GET_TIMEOUT_S = 30.0
FLUSH_TIMEOUT_S = 300.0


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def make_producer(bootstrap):
    return kafka.KafkaProducer(bootstrap_servers=bootstrap, acks=1, client_id="chronik-bench-seed")


def run_async(producer, topic, value, n):
    futures = []
    t0 = time.perf_counter()
    for _ in range(n):
        futures.append(producer.send(topic, value))
    producer.flush(timeout=FLUSH_TIMEOUT_S)
    secs = time.perf_counter() - t0
    failed = sum(1 for f in futures if not f.succeeded())
    return {"messages": n, "sent": n - failed, "failed": failed, "seconds": round(secs, 3),
            "msg_per_s": round((n - failed) / secs)}


def run_sync(producer, topic, value, n, max_seconds):
    lat = []
    failed = 0
    t0 = time.perf_counter()
    deadline = t0 + max_seconds
    for _ in range(n):
        s = time.perf_counter()
        try:
            producer.send(topic, value).get(timeout=GET_TIMEOUT_S)
        except kafka.errors.KafkaError:
            failed += 1
        lat.append(time.perf_counter() - s)
        if s > deadline:
            break
    secs = time.perf_counter() - t0
    lat.sort()
    ms = lambda v: round(v * 1000.0, 3)
    return {"messages": n, "sent": len(lat) - failed, "failed": failed,
            "stopped_early": len(lat) < n, "seconds": round(secs, 3),
            "msg_per_s": round((len(lat) - failed) / secs, 1),
            "p50_ms": ms(percentile(lat, 50)), "p99_ms": ms(percentile(lat, 99)),
            "max_ms": ms(lat[-1])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--mode", choices=("async", "sync"), required=True)
    ap.add_argument("--topic", default=None)
    ap.add_argument("--messages", type=int, default=None)
    ap.add_argument("--bytes", type=int, default=DEFAULT_BYTES)
    ap.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS)
    a = ap.parse_args()
    n = a.messages or (DEFAULT_ASYNC_MESSAGES if a.mode == "async" else DEFAULT_SYNC_MESSAGES)
    topic = a.topic or "bench-seed-%s" % a.mode
    value = (b"0123456789abcdefghijklmnopqrstuvwxyz" * (a.bytes // 36 + 1))[:a.bytes]

    producer = make_producer(a.bootstrap)
    producer.send(topic, value).get(timeout=GET_TIMEOUT_S)  # warm-up, untimed
    cpu0 = os.times()
    if a.mode == "async":
        r = run_async(producer, topic, value, n)
    else:
        r = run_sync(producer, topic, value, n, a.max_seconds)
    cpu1 = os.times()
    producer.close()
    out = {"bench": "seed-" + a.mode, "client": "kafka-python " + kafka.__version__, "acks": 1,
           "message_bytes": a.bytes}
    out.update(r)
    out["client_cpu_s"] = round((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system), 2)
    print(json.dumps(out), flush=True)
    return 1 if r["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
