#!/usr/bin/env bash
# Runs every unit-test program given, then prints the total.
set -u
passed=0; failed=0; bad=()
for t in "$@"; do
  out=$("$t" 2>&1); rc=$?
  printf '%s\n' "$out" | grep -E '^FAIL|CHECK failed|REQUIRE failed|ERROR: AddressSanitizer|LeakSanitizer|runtime error|PANIC' | head -40
  line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -1)
  p=$(printf '%s' "$line" | sed -nE 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\1/p')
  f=$(printf '%s' "$line" | sed -nE 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\2/p')
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  if [ $rc -ne 0 ]; then bad+=("$t"); [ "${f:-0}" = 0 ] && failed=$((failed + 1)); fi
  echo "unit: $(basename "$t"): ${line:-no summary (exit $rc)}"
done
echo "unit: $passed passed, $failed failed"
[ ${#bad[@]} -eq 0 ]
