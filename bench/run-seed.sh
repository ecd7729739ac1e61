#!/bin/bash
# run-seed.sh - the kafka-python "seed" benchmarks only (async: 50,000 x 244 B;
# sync: 5,000 x 244 B send().get()), 3 times against a fresh chronik and the
# mock broker. --no-build (first argument) skips make; other arguments go to
# bench/runner.py.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--no-build" ]; then
    shift
else
    make -j2 build/chronik build/bench/mock_broker >&2
fi
exec /usr/bin/python3 bench/runner.py --benches seed-async,seed-sync "$@"
