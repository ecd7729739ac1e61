#!/usr/bin/env bash
# bench/raft.sh - benchmark of the Raft core, through the simulator's --bench
# mode: three voters, free I/O (no network delay, instant fsync), no faults,
# snapshots every 20000 entries. Prints one JSON object:
#   core_ns_per_commit          CPU ns inside the three cores per committed
#                               entry, one proposal per append
#   core_ns_per_commit_batched  the same with BATCH proposals per append
#   commits_per_sec_batched     committed entries per second of the whole
#                               simulation (cores + simulated world), batched
# Usage: bench/raft.sh [COMMITS] [BATCH]   (defaults 1000000, 256)
set -euo pipefail
cd "$(dirname "$0")/.."
COMMITS=${1:-1000000}
BATCH=${2:-256}
make -s sim-build >/dev/null
sim=./build/sim/chronik-sim
field() { sed -nE "s/.*\"$1\": ([0-9.]+).*/\1/p"; }
one=$("$sim" --bench --batch 1 --commits "$COMMITS")
many=$("$sim" --bench --batch "$BATCH" --commits "$COMMITS")
printf '{"bench": "raft", "nodes": 3, "commits": %s, "batch": %s, "core_ns_per_commit": %s, "core_ns_per_commit_batched": %s, "commits_per_sec_batched": %s, "commits_per_sec_unbatched": %s}\n' \
  "$COMMITS" "$BATCH" \
  "$(echo "$one" | field core_ns_per_commit)" "$(echo "$many" | field core_ns_per_commit)" \
  "$(echo "$many" | field commits_per_sec)" "$(echo "$one" | field commits_per_sec)"
