#!/usr/bin/python3
"""topic_create.py - topic creation latency.

    /usr/bin/python3 bench/topic_create.py --bootstrap HOST:PORT [--topics N] [--prefix P]

Creates N one-partition topics one after the other with confluent-kafka's
AdminClient (Debian's python3-confluent-kafka), each timed from the
CreateTopics call to its answer (the broker answers once the topic is
usable). Prints one JSON object: topics/s, p50/p99/max in ms; exits 1 if
any creation failed.
"""

import argparse
import json
import sys
import time

from confluent_kafka.admin import AdminClient, NewTopic


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topics", type=int, default=50)
    ap.add_argument("--prefix", default="bench-create")
    a = ap.parse_args()
    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    admin.list_topics(timeout=30)  # connected before the clock starts
    lat = []
    t0 = time.perf_counter()
    for i in range(a.topics):
        s = time.perf_counter()
        fut = admin.create_topics([NewTopic("%s-%d" % (a.prefix, i), 1, 1)], operation_timeout=30)
        fut["%s-%d" % (a.prefix, i)].result(timeout=60)
        lat.append(time.perf_counter() - s)
    secs = time.perf_counter() - t0
    lat.sort()
    pick = lambda q: round(lat[max(0, -(-len(lat) * q // 100) - 1)] * 1000, 3)
    print(json.dumps({"created": len(lat), "msg_per_s": round(len(lat) / secs, 1),
                      "p50_ms": pick(50), "p99_ms": pick(99), "max_ms": round(lat[-1] * 1000, 3)}))


if __name__ == "__main__":
    sys.exit(main())
