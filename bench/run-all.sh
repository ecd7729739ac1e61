#!/bin/bash
# run-all.sh - build build/chronik and the benchmark programs, then run every
# benchmark 3 times against a fresh chronik and the mock broker (bench/runner.py).
# stdout: JSON lines (environment, one per run, medians); stderr: progress and
# the medians table. --no-build (first argument) runs the programs already in
# build/; other arguments go to runner.py (e.g. --reps 5, --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--no-build" ]; then
    shift
else
    make -j2 build/chronik build/bench/mock_broker build/bench/produce build/bench/consume >&2
fi
exec /usr/bin/python3 bench/runner.py "$@"
