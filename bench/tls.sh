#!/usr/bin/env bash
# tls.sh - produce and consume throughput over PLAINTEXT and over SSL, for
# one or more chronik binaries (e.g. a build of main beside this one, to show
# that the plaintext path costs nothing). One JSON object per run on stdout.
#
#   bench/tls.sh [--reps N] [--messages N] [--size BYTES] BIN[=LABEL] ...
#
# For each repetition the binaries take turns (the order swapped every
# repetition); each gets a fresh broker with a new data directory under /tmp
# and its defaults (every acknowledgement waits for fdatasync), then:
# build/bench/produce (acks=1, linger.ms=5, one partition) and
# build/bench/consume (from offset 0) over PLAINTEXT, then, when the binary
# knows ssl.keystore.location, the same over an SSL listener into another
# topic. The certificate (a CA and a P-256 server key) is made once with
# the openssl command. Each object is the program's JSON with target,
# listener, rep, broker_cpu_s (the broker's utime+stime during the run) and
# others_cpu_frac (what everything but broker and client used meanwhile, as
# a share of all CPUs: above ~0.1 the figure is disturbed, rerun).
set -euo pipefail
cd "$(dirname "$0")/.."
reps=3 messages=2000000 size=100
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift 2 ;;
    --messages) messages=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(build/chronik)
for b in build/bench/produce build/bench/consume; do
  [ -x "$b" ] || { echo "tls.sh: $b missing: make bench" >&2; exit 2; }
done

work=$(mktemp -d /tmp/chronik-tls-bench.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ca.key" \
  -out "$work/ca.pem" -days 2 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/server.key" \
  -out "$work/server.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -out "$work/server.pem" -days 2 -extfile "$work/san.ext" 2>/dev/null
cat "$work/server.key" "$work/server.pem" >"$work/keystore.pem"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
busy_s() { awk -v t="$(getconf CLK_TCK)" '/^cpu /{print ($2 + $3 + $4 + $7 + $8 + $9) / t}' /proc/stat; }
ncpu=$(getconf _NPROCESSORS_ONLN)

# run_one LABEL LISTENER REP PORT EXTRA...: produce then consume, one JSON line each.
run_one() {
  local label=$1 listener=$2 rep=$3 port=$4; shift 4
  local topic="bench-${listener,,}-$rep" prog c0 c1 out
  for prog in produce consume; do
    local args=(-b "127.0.0.1:$port" -t "$topic" -n "$messages" "$@")
    [ $prog = produce ] && args+=(-s "$size" -a 1)
    c0=$(cpu_s "$pid") b0=$(busy_s) t0=$(date +%s.%N)
    out=$(build/bench/$prog "${args[@]}")
    c1=$(cpu_s "$pid") b1=$(busy_s) t1=$(date +%s.%N)
    # others_cpu_frac: what the rest of the machine used meanwhile, as a share of every CPU
    local extra
    extra=$(echo "$out" | awk -v c0="$c0" -v c1="$c1" -v b0="$b0" -v b1="$b1" -v t0="$t0" -v t1="$t1" -v n="$ncpu" '
      { match($0, /"client_cpu_s": [0-9.]+/); cl = substr($0, RSTART + 16, RLENGTH - 16)
        o = (b1 - b0 - (c1 - c0) - cl) / ((t1 - t0) * n); if (o < 0) o = 0
        printf "\"broker_cpu_s\": %.2f, \"others_cpu_frac\": %.2f", c1 - c0, o }')
    echo "$out" | sed "s/^{/{\"target\": \"$label\", \"listener\": \"$listener\", \"rep\": $rep, $extra, /"
  done
}

run_target() {
  local bin=${1%%=*} label=${1#*=} rep=$2
  [ "$label" != "$1" ] || label=$bin
  local port cport aport sport data="$work/data-$rep-$(basename "$label")"
  port=$(free_port) cport=$(free_port) aport=$(free_port) sport=$(free_port)
  local args=(server --listen "127.0.0.1:$port" --controller-listen "127.0.0.1:$cport"
              --admin-listen "127.0.0.1:$aport" --data-dir "$data")
  local ssl=false help
  help=$("$bin" server --help 2>&1 || true)
  if [[ $help == *ssl.keystore.location* ]]; then
    ssl=true
    args+=(--set "listeners=SSL://127.0.0.1:$sport" --set "ssl.keystore.location=$work/keystore.pem")
  fi
  "$bin" "${args[@]}" 2>"$work/broker.log" &
  pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$aport/ready" >/dev/null && break; sleep 0.1; done
  run_one "$label" PLAINTEXT "$rep" "$port"
  if $ssl; then
    run_one "$label" SSL "$rep" "$sport" -X security.protocol=ssl -X "ssl.ca.location=$work/ca.pem"
  fi
  kill "$pid"; wait "$pid" || true; pid=""
  rm -rf "$data"
}

for rep in $(seq "$reps"); do
  order=("${targets[@]}")
  if [ $((rep % 2)) -eq 0 ] && [ ${#targets[@]} -gt 1 ]; then
    order=(); for ((i=${#targets[@]}-1; i>=0; i--)); do order+=("${targets[$i]}"); done
  fi
  for t in "${order[@]}"; do run_target "$t" "$rep"; done
done
