#!/usr/bin/env bash
# run-fuzz.sh SECONDS BIN... - runs each libFuzzer target for SECONDS on a
# scratch copy of its seed corpus tests/fuzz/corpus/<name without fuzz_>/
# (the committed corpus is never modified), prints the executions per
# target and a final "fuzz: N passed, M failed". A target passes when it
# ends without a crash, leak or sanitizer report. Crash inputs are kept in
# build/fuzz/artifacts/<name>/.
set -u
if [ $# -lt 2 ]; then
  echo "usage: $0 SECONDS BIN..." >&2
  exit 2
fi
secs=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/chronik-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
passed=0; failed=0
for bin in "$@"; do
  base=$(basename "$bin")
  name=${base#fuzz_}
  corpus="$scratch/$name"
  mkdir -p "$corpus"
  if [ -d "$root/tests/fuzz/corpus/$name" ]; then
    cp -R "$root/tests/fuzz/corpus/$name/." "$corpus/"
  else
    echo "fuzz: $base: no seed corpus at tests/fuzz/corpus/$name, starting empty"
  fi
  artifacts="$root/build/fuzz/artifacts/$name"
  mkdir -p "$artifacts"
  log="$scratch/$name.log"
  "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$corpus" >"$log" 2>&1
  rc=$?
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    echo "fuzz: $base: ${execs:-?} executions in ${secs}s, no crash"
  else
    failed=$((failed + 1))
    echo "fuzz: $base: FAILED (exit $rc) after ${execs:-?} executions; artifacts in $artifacts"
    grep -E 'ERROR|SUMMARY|fuzz_|runtime error|Test unit written' "$log" | grep -v '^ *#' | head -20
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
