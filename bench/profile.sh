#!/bin/bash
# profile.sh - where a benchmark's broker time goes: starts a fresh chronik
# (a copy of build/chronik, default settings, new data directory), runs one
# benchmark against it under a profiler attached to the broker, and prints
# the profile, the broker's CPU seconds and minor faults, and its request
# counters.
#
#   bench/profile.sh BENCH [perf|strace] [-- extra chronik --set args]
#
# BENCH: seed-async | seed-sync | produce-acks1 | produce-acksall | consume
# (consume first fills its topic with produce-acks1, unprofiled).
#   perf    perf record -g on the broker; prints the top symbols (default)
#   strace  strace -f -c on the broker; prints syscall counts
#   none    no profiler: the broker's CPU and faults only
# CHRONIK_ENV (env, e.g. "GLIBC_TUNABLES=glibc.malloc.trim_threshold=1073741824")
# is put in the broker's environment only, for A/B experiments.
# MESSAGES (env, default 2000000) sizes produce/consume; SEED_MESSAGES
# (default 50000 async, 5000 sync) sizes the kafka-python runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${1:?usage: bench/profile.sh BENCH [perf|strace] [-- KEY=VALUE ...]}
tool=${2:-perf}
shift $(( $# >= 2 ? 2 : 1 ))
[ "${1:-}" = "--" ] && shift
sets=()
for kv in "$@"; do sets+=(--set "$kv"); done
messages=${MESSAGES:-2000000}

work=$(mktemp -d /tmp/chronik-profile-XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT
cp build/chronik "$work/chronik"
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p=$(port); c=$(port); a=$(port)
env ${CHRONIK_ENV:-} "$work/chronik" server --listen 127.0.0.1:$p --controller-listen 127.0.0.1:$c \
    --admin-listen 127.0.0.1:$a --data-dir "$work/data" "${sets[@]}" 2>"$work/broker.stderr" &
pid=$!
for _ in $(seq 100); do
    curl -sf http://127.0.0.1:$a/health >/dev/null 2>&1 && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
if ! curl -sf http://127.0.0.1:$a/health >/dev/null 2>&1; then
    echo "profile: chronik did not start:" >&2
    tail -5 "$work/broker.stderr" >&2
    exit 1
fi
bs=127.0.0.1:$p

case $bench in
  seed-async) cmd=(/usr/bin/python3 bench/seed.py --bootstrap $bs --mode async --messages ${SEED_MESSAGES:-50000}) ;;
  seed-sync)  cmd=(/usr/bin/python3 bench/seed.py --bootstrap $bs --mode sync --messages ${SEED_MESSAGES:-5000}) ;;
  produce-acks1)   cmd=(build/bench/produce -b $bs -t p -n $messages -a 1) ;;
  produce-acksall) cmd=(build/bench/produce -b $bs -t p -n $messages -a -1) ;;
  consume)
    build/bench/produce -b $bs -t p -n $messages -a 1 >/dev/null
    cmd=(build/bench/consume -b $bs -t p -n $messages) ;;
  *) echo "unknown benchmark $bench" >&2; exit 2 ;;
esac

stat() { awk '{ print $14 + $15, $10 }' /proc/$pid/stat; }
read -r t0 f0 < <(stat)
case $tool in
  perf)   perf record -q -F 999 -g -p $pid -o "$work/perf.data" 2>/dev/null & prof=$! ;;
  strace) strace -f ${STRACE_OPTS:--c} -p $pid -o "$work/strace.txt" & prof=$! ;;
  none)   prof= ;;
  *) echo "unknown tool $tool" >&2; exit 2 ;;
esac
sleep 1 # let the profiler attach
"${cmd[@]}"
[ -n "$prof" ] && { kill -INT $prof; wait $prof 2>/dev/null || true; }
read -r t1 f1 < <(stat)
hz=$(getconf CLK_TCK)
echo "broker: cpu $(( t1 - t0 )) ticks (${hz}/s), minor faults $(( f1 - f0 )) (profiler overhead included)"
curl -s http://127.0.0.1:$a/metrics | grep '^chronik_requests_total' || true
if [ "$tool" = none ]; then
    :
elif [ "$tool" = perf ]; then
    perf report -i "$work/perf.data" --no-children --sort comm,sym -g ${PERF_GRAPH:-none} 2>/dev/null \
        | grep -v "^#" | grep "%" | head -${PERF_LINES:-30}
else
    head -${STRACE_LINES:-25} "$work/strace.txt"
fi
