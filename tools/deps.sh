#!/usr/bin/env bash
# Installs what `make` (build), `make run`/`make start` and the README's
# quickstart (run: the build's packages, kcat and curl) or `make test` (test)
# needs on Debian 12.
# As root it runs apt-get/npm itself; otherwise it prints the exact command
# to run and stops with an error.
set -euo pipefail
mode=${1:-build}
cd "$(dirname "$0")/.."

build_pkgs=(gcc make libc6-dev zlib1g-dev libzstd-dev liblz4-dev libsnappy-dev)
run_pkgs=(kcat curl)
test_pkgs=(clang libclang-rt-14-dev kcat librdkafka-dev python3 python3-kafka
           python3-confluent-kafka python3-pytest curl procps)

missing=()
want=("${build_pkgs[@]}")
[ "$mode" = run ] && want+=("${run_pkgs[@]}")
[ "$mode" = test ] && want+=("${test_pkgs[@]}")
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Node.js may come from elsewhere than Debian: only the commands matter.
if [ "$mode" = test ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "deps: missing packages. Run:"
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
fi

if [ "$mode" = test ]; then
  # kafkajs, pinned by tests/integration/package-lock.json
  if [ ! -d tests/integration/node_modules/kafkajs ]; then
    if [ -w tests/integration ]; then
      echo "deps: npm ci (kafkajs) in tests/integration"
      (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
    else
      echo "deps: kafkajs missing. Run:  (cd tests/integration && npm ci)"
      exit 1
    fi
  fi
fi
