#!/usr/bin/python3
"""fsync_tax.py - what durable acknowledgements cost a client on this machine,
with no broker work involved: kafka-python's pipelined producer (seed.py
--mode async) against the in-memory mock broker, alternately alone and while
a side process does what chronik's flusher does for that client: RATE
fdatasyncs a second, each after overwriting BYTES in a file that was written
with zeros first (chronik's preallocated segment tail), in the run's work
directory.

    /usr/bin/python3 bench/fsync_tax.py [--reps N] [--rate R] [--bytes B]

The default rate is what chronik's /metrics counted for seed-async (about
860 fsyncs in a 2.6 s run, bench/RESULTS.md). Prints a JSON line per run and
one with the medians; the order of the two cases alternates.
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


def fsync_load(path, rate, size, seconds):
    """The side process: pre-zeroed file, then rate x (pwrite size + fdatasync)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    total = int(rate * seconds * size) + ZERO_CHUNK
    for off in range(0, total, ZERO_CHUNK):
        os.pwrite(fd, bytes(ZERO_CHUNK), off)
    os.fsync(fd)
    print("ready", flush=True)
    buf, off, n = b"x" * size, 0, 0
    start = time.monotonic()
    while time.monotonic() - start < seconds and off + size <= total:
        os.pwrite(fd, buf, off)
        os.fdatasync(fd)
        off += size
        n += 1
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    os.close(fd)
    os.unlink(path)


def seed_async(bootstrap):
    out = subprocess.run(["/usr/bin/python3", str(runner.REPO / "bench" / "seed.py"),
                          "--bootstrap", bootstrap, "--mode", "async"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def one_run(case, bootstrap, a, workdir):
    load = None
    if case == "fsync-load":
        load = subprocess.Popen([sys.executable, __file__, "--load", str(Path(workdir) / "load.dat"),
                                 "--rate", str(a.rate), "--bytes", str(a.bytes)],
                                stdout=subprocess.PIPE, text=True)
        assert load.stdout.readline().strip() == "ready"
    try:
        r = seed_async(bootstrap)
    finally:
        if load:
            load.terminate()
            load.wait()
    return {"case": case, "msg_per_s": r["msg_per_s"], "client_cpu_s": r["client_cpu_s"],
            "seconds": r["seconds"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rate", type=float, default=330.0, help="fdatasyncs per second")
    ap.add_argument("--bytes", type=int, default=12000, help="bytes written before each")
    ap.add_argument("--load", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.load:
        return fsync_load(a.load, a.rate, a.bytes, seconds=60.0)
    workdir = tempfile.mkdtemp(prefix="chronik-fsync-tax-")
    runner.stage_binaries(workdir, {"mock": runner.MOCK})
    broker = runner.Broker("mock", workdir, ["bench-seed-async"])
    runs = []
    try:
        seed_async(broker.bootstrap)  # warm-up, untimed
        for rep in range(1, a.reps + 1):
            cases = ("alone", "fsync-load") if rep % 2 else ("fsync-load", "alone")
            for case in cases:
                r = dict(one_run(case, broker.bootstrap, a, workdir), rep=rep, rate=a.rate, bytes=a.bytes)
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
