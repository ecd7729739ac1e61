#!/usr/bin/env bash
# Installs what `make` (build), `make run`/`make start` and the README's
# quickstart (run: the build's packages, kcat and curl) or `make test` (test)
# needs on Debian 12.
# As root it runs apt-get/npm itself; otherwise it prints the exact command
# to run and stops with an error.
#
# The compatibility tier's clients are pinned and cached outside the source
# tree in $CHRONIK_CACHE (default ~/.cache/chronik), so a second run needs no
# network: Maven artifacts (m2/), Go modules (gomod/), Python wheels
# (wheels/) and a virtualenv per requirements file. What the tests use is
# linked or listed under build/deps/:
#   build/deps/venv                  python with the newest confluent-kafka and kafka-python
#   build/deps/m2                    Maven repository for `mvn -o` (tests/java)
#   build/deps/gomod                 GOMODCACHE for tests/go (built with GOPROXY=off)
#   build/deps/kafka-tools.classpath Apache Kafka's tools and broker (tests/java/tools/pom.xml)
set -euo pipefail
mode=${1:-build}
cd "$(dirname "$0")/.."

build_pkgs=(gcc make libc6-dev zlib1g-dev libzstd-dev liblz4-dev libsnappy-dev libssl-dev)
run_pkgs=(kcat curl)
test_pkgs=(clang libclang-rt-14-dev kcat librdkafka-dev openssl python3 python3-kafka python3-cryptography
           python3-confluent-kafka python3-pytest python3-venv curl procps
           openjdk-17-jdk-headless maven iproute2 nftables chromium)

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
  # kafkajs and playwright-core (drives Debian's chromium for the console
  # test), pinned by tests/integration/package-lock.json
  if [ ! -d tests/integration/node_modules/kafkajs ] || [ ! -d tests/integration/node_modules/playwright-core ]; then
    if [ -w tests/integration ]; then
      echo "deps: npm ci (kafkajs, playwright-core) in tests/integration"
      (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
    else
      echo "deps: kafkajs or playwright-core missing. Run:  (cd tests/integration && npm ci)"
      exit 1
    fi
  fi
fi

[ "$mode" = test ] || exit 0

# ---- the compatibility tier: pinned, cached, offline on a second run ----
cache=${CHRONIK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chronik}
deps=build/deps
mkdir -p "$cache" "$deps"
stamp_ok() { [ -f "$deps/$1.stamp" ] && [ "$(cat "$deps/$1.stamp")" = "$2" ]; }
digest() { cat "$@" | sha256sum | cut -c1-16; }

# Java: kafka-clients + JUnit for tests/java, Kafka's tools and broker jars.
if ! command -v mvn >/dev/null || ! command -v javac >/dev/null; then
  echo "deps: mvn and javac (JDK 17) are needed for the Java tier"; exit 1
fi
ln -sfn "$cache/m2" "$deps/m2"
sum=$(digest tests/java/pom.xml tests/java/tools/pom.xml)
if ! stamp_ok java "$sum"; then
  echo "deps: resolving the Java tier (tests/java/pom.xml, tests/java/tools/pom.xml)"
  mvn_q=(mvn -B -q "-Dmaven.repo.local=$cache/m2")
  (cd tests/java && "${mvn_q[@]}" test -Dtest=InstallTest) >"$deps/mvn.log" 2>&1 \
    && (cd tests/java/tools && "${mvn_q[@]}" dependency:build-classpath \
          "-Dmdep.outputFile=$PWD/../../../$deps/kafka-tools.classpath") >>"$deps/mvn.log" 2>&1 \
    || { cat "$deps/mvn.log"; echo "deps: Maven resolution failed"; exit 1; }
  echo "$sum" >"$deps/java.stamp"
fi

# Go: franz-go (kgo, kadm) for tests/go, pinned by go.mod/go.sum.
if ! command -v go >/dev/null || ! go version | grep -qE 'go1\.(2[6-9]|[3-9][0-9])'; then
  echo "deps: Go 1.26 or newer is needed for the franz-go tier (franz-go 1.22 requires it; Debian 12's golang is 1.19)"; exit 1
fi
ln -sfn "$cache/gomod" "$deps/gomod"
sum=$(digest tests/go/go.mod tests/go/go.sum)
if ! stamp_ok go "$sum"; then
  echo "deps: downloading Go modules (tests/go/go.mod)"
  (cd tests/go && GOMODCACHE="$cache/gomod" GOFLAGS=-mod=readonly go mod download) \
    || { echo "deps: go mod download failed"; exit 1; }
  echo "$sum" >"$deps/go.stamp"
fi

# Python: the newest clients in a virtualenv, from cached wheels.
req=tests/integration/requirements-new-clients.txt
sum=$(digest "$req")
venv="$cache/venv-$sum"
if [ ! -x "$venv/bin/python" ] || ! stamp_ok venv "$sum"; then
  echo "deps: virtualenv with $(grep -E '^(confluent|kafka)' "$req" | tr '\n' ' ')"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-index --find-links "$cache/wheels" -r "$req" 2>/dev/null \
    || { "$venv/bin/pip" download -q --disable-pip-version-check -d "$cache/wheels" -r "$req" \
         && "$venv/bin/pip" install -q --disable-pip-version-check --no-index --find-links "$cache/wheels" -r "$req"; } \
    || { echo "deps: pip install -r $req failed"; exit 1; }
  echo "$sum" >"$deps/venv.stamp"
fi
ln -sfn "$venv" "$deps/venv"
