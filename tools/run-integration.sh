#!/usr/bin/env bash
# Runs the integration tier: real broker processes (build/asan/chronik, or
# CHRONIK_BIN) and real clients over loopback. Extra arguments go to pytest,
# e.g. tools/run-integration.sh -k frontdoor -x
#
#   --new-python-clients   run the tests marked pyclients once more, with the
#                          newest confluent-kafka and kafka-python from the
#                          virtualenv tools/deps.sh test made (build/deps/venv)
#
# Exits with pytest's code, except that "no tests collected" (5) is a failure
# too. Nothing is written into the source tree: no cache dir, no bytecode.
set -u
cd "$(dirname "$0")/.."
PYTHON=/usr/bin/python3   # Debian's kafka/confluent_kafka modules live only here
label=integration
args=()
if [ "${1:-}" = --new-python-clients ]; then
  shift
  PYTHON=build/deps/venv/bin/python
  label="integration (newest Python clients)"
  args=(-m pyclients -W ignore::DeprecationWarning)
  if [ ! -x "$PYTHON" ]; then
    echo "$label: $PYTHON missing: run tools/deps.sh test"; exit 1
  fi
  "$PYTHON" -c 'import confluent_kafka, kafka; print("clients: confluent-kafka %s (librdkafka %s), kafka-python %s"
      % (confluent_kafka.__version__, confluent_kafka.libversion()[0], kafka.__version__))'
fi
export PYTHONDONTWRITEBYTECODE=1

"$PYTHON" -m pytest -q -p no:cacheprovider -o console_output_style=classic \
    -rfEs --durations=12 "${args[@]}" tests/integration "$@"
rc=$?
case $rc in
  0) echo "$label: passed" ;;
  5) echo "$label: no tests collected (counted as a failure)"; rc=1 ;;
  *) echo "$label: FAILED (pytest exit $rc)" ;;
esac
exit $rc
