#!/usr/bin/python3
"""fsync_tax.py - what durable acknowledgements cost a client on this machine,
with no broker work involved: a producer benchmark against the in-memory mock
broker, alternately alone and while a side process does the disk work that
chronik's flusher does for that client: RATE fdatasyncs a second, each after
writing BYTES, in the run's work directory (for seed-async, overwriting a
file written with zeros first, like chronik's preallocated segment tail; for
produce, appending, as chronik does with large batches).

    /usr/bin/python3 bench/fsync_tax.py [--client seed-async|produce]
                                        [--reps N] [--rate R] [--bytes B]

The default rates and sizes are what chronik's /metrics counted for these
benchmarks (bench/RESULTS.md): seed-async about 990 fsyncs in a 2.6 s run
after ~12 KB each; produce (librdkafka, acks=1, 5 M x 100 B) about 540
fsyncs in 2.1 s after ~0.93 MB each. Prints a JSON line per run and one with
the medians; the order of the two cases alternates.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import runner  # noqa: E402  (Broker, MOCK, REPO, stage_binaries)

ZERO_CHUNK = 1 << 20


LOAD_SECONDS = 8.0  # longer than a benchmark run; the load is stopped when it ends


def fsync_load(path, rate, size, prezero):
    """The side process: rate x (pwrite size + fdatasync) for LOAD_SECONDS."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    if prezero:
        for off in range(0, int(rate * LOAD_SECONDS * size) + ZERO_CHUNK, ZERO_CHUNK):
            os.pwrite(fd, bytes(ZERO_CHUNK), off)
        os.fsync(fd)
    print("ready", flush=True)
    buf, off, n = b"x" * size, 0, 0
    start = time.monotonic()
    while time.monotonic() - start < LOAD_SECONDS:
        os.pwrite(fd, buf, off)
        os.fdatasync(fd)
        off += size
        n += 1
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    os.close(fd)


CLIENTS = {  # name: (topic, command after the bootstrap, rate, bytes, prezero)
    "seed-async": ("bench-seed-async", ["/usr/bin/python3", str(runner.REPO / "bench" / "seed.py"),
                                        "--mode", "async", "--bootstrap"], 380.0, 12000, True),
    "produce": ("bench-produce-acks1", [str(runner.REPO / "build" / "bench" / "produce"), "-a", "1",
                                        "-n", "5000000", "-t", "bench-produce-acks1", "-b"],
                255.0, 930_000, False),
}


def run_client(a, bootstrap):
    out = subprocess.run(CLIENTS[a.client][1] + [bootstrap], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def one_run(case, bootstrap, a, workdir):
    load = None
    if case == "fsync-load":
        load = subprocess.Popen([sys.executable, __file__, "--load", str(Path(workdir) / "load.dat"),
                                 "--client", a.client, "--rate", str(a.rate), "--bytes", str(a.bytes)],
                                stdout=subprocess.PIPE, text=True)
        assert load.stdout.readline().strip() == "ready"
    try:
        r = run_client(a, bootstrap)
    finally:
        if load:
            load.terminate()
            load.wait()
            Path(workdir, "load.dat").unlink(missing_ok=True)
    return {"case": case, "msg_per_s": r["msg_per_s"], "client_cpu_s": r["client_cpu_s"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--client", choices=sorted(CLIENTS), default="seed-async")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rate", type=float, default=None, help="fdatasyncs per second")
    ap.add_argument("--bytes", type=int, default=None, help="bytes written before each")
    ap.add_argument("--load", help=argparse.SUPPRESS)
    a = ap.parse_args()
    topic, _, rate, size, prezero = CLIENTS[a.client]
    a.rate = a.rate or rate
    a.bytes = a.bytes or size
    if a.load:
        return fsync_load(a.load, a.rate, a.bytes, prezero)
    workdir = tempfile.mkdtemp(prefix="chronik-fsync-tax-")
    runner.stage_binaries(workdir, {"mock": runner.MOCK})
    broker = runner.Broker("mock", workdir, [topic])
    runs = []
    try:
        for rep in range(1, a.reps + 1):
            cases = ("alone", "fsync-load") if rep % 2 else ("fsync-load", "alone")
            for case in cases:
                r = dict(one_run(case, broker.bootstrap, a, workdir), client=a.client, rep=rep,
                         rate=a.rate, bytes=a.bytes)
                print(json.dumps(r), flush=True)
                runs.append(r)
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    med = {c: {k: statistics.median(r[k] for r in runs if r["case"] == c)
               for k in ("msg_per_s", "client_cpu_s")} for c in ("alone", "fsync-load")}
    print(json.dumps({"medians": med}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
