#!/usr/bin/env bash
# Runs the integration tier: real broker processes (build/asan/chronik, or
# CHRONIK_BIN) and real clients over loopback. Extra arguments go to pytest,
# e.g. tools/run-integration.sh -k frontdoor -x
#
# Exits with pytest's code, except that "no tests collected" (5) is a failure
# too. Nothing is written into the source tree: no cache dir, no bytecode.
set -u
cd "$(dirname "$0")/.."
PYTHON=/usr/bin/python3   # Debian's kafka/confluent_kafka modules live only here
export PYTHONDONTWRITEBYTECODE=1

"$PYTHON" -m pytest -q -p no:cacheprovider -o console_output_style=classic \
    -rfEs tests/integration "$@"
rc=$?
case $rc in
  0) echo "integration: passed" ;;
  5) echo "integration: no tests collected (counted as a failure)"; rc=1 ;;
  *) echo "integration: FAILED (pytest exit $rc)" ;;
esac
exit $rc
