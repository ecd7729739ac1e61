#!/bin/bash
# vs-kafka.sh - Chronik against Apache Kafka 4.4.0 (one KRaft node in combined
# mode, from the jars tools/deps.sh test installs) on the same workloads, in
# one run, the order of the two brokers alternating between repetitions
# (bench/runner.py --targets chronik,kafka). Chronik runs with its defaults
# (fsync before every acknowledgement), Kafka with its own (no fsync).
# stdout: JSON lines; stderr: progress and the medians table. Arguments go to
# runner.py (e.g. --reps 3, --messages 5000000).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh test >&2
make -j2 build/chronik build/bench/produce build/bench/consume >&2
exec /usr/bin/python3 bench/runner.py --targets chronik,kafka \
  --benches seed-async,seed-sync,produce-acks1,produce-acksall,consume,perf-acks1,perf-acksall,perf-latency,e2e-latency,topic-create \
  --messages 1000000 "$@"
