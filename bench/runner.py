#!/usr/bin/python3
"""runner.py - runs Chronik's benchmarks against build/chronik, the mock and Apache Kafka.

    /usr/bin/python3 bench/runner.py [--reps N] [--benches a,b,...]
                                     [--targets chronik,mock,kafka] [--messages N]
                                     [--seed-messages N] [--sync-messages N]

For every repetition and every target it starts a fresh broker on free
loopback ports -- build/chronik (release build, new data directory under
$TMPDIR, default settings: every acknowledgement waits for fdatasync) or
build/bench/mock_broker (librdkafka's in-memory mock cluster) -- runs the
chosen benchmarks one after the other, and stops it. The order of the two
targets alternates between repetitions so that neither always goes first,
and so does the order of the two produce benchmarks, so that neither always
runs second, on a broker that has just written 500 MB.

The target kafka is Apache Kafka 4.4.0 itself, started from the jars
tools/deps.sh test installed (build/deps/kafka-tools.classpath) as one
KRaft node in combined mode (process.roles=broker,controller), storage
formatted fresh, heap -Xms1g -Xmx1g (Kafka's own start script's default),
G1, and Kafka's defaults otherwise: no fsync before an acknowledgement.

Benchmarks (each prints one JSON object; see the programs):
  seed-async       bench/seed.py --mode async  (kafka-python, 244 B, acks=1)
  seed-sync        bench/seed.py --mode sync   (send().get() each)
  produce-acks1    build/bench/produce -a 1    (librdkafka, 100 B, linger 5 ms)
  produce-acksall  build/bench/produce -a -1
  consume          build/bench/consume, reads produce-acks1's topic from 0
  perf-acks1       kafka-producer-perf-test (the Java producer), 100 B, acks=1
  perf-acksall     the same with acks=all
  perf-latency     the same with acks=all at a fixed 10,000 msg/s for 60 s: the broker's latency
  e2e-latency      Kafka's EndToEndLatency: produce one record (acks=all), consume it, repeat
  topic-create     bench/topic_create.py: one-partition topics created one by one

Around each benchmark the broker's CPU time (utime+stime of the whole
process, /proc/PID/stat) is read, giving broker_cpu_s and
broker_cpu_s_per_M (seconds per million messages), and so are its minor
page faults (broker_minflt) and, for chronik, its request counters from
GET /metrics (broker_requests, e.g. {"Produce": 612}, and broker_fsyncs), and its peak
resident set so far (broker_rss_mb, VmHWM of /proc/PID/status). The 1-minute load
average is read before each benchmark (load_1m; this run itself adds to
it), and others_cpu_frac is the CPU that everything except this broker and
this benchmark client used meanwhile, as a fraction of all CPUs (from
/proc/stat): other users of the machine show there. The programs are copied to the work directory first,
so a rebuild by someone else during the run does not change what runs.

stdout: one JSON object for the run's environment, one per benchmark run,
then {"medians": ...}. stderr: progress and a table of the medians.
Exit status 1 if any benchmark failed.

The mock keeps only the last 5 MiB of each partition (librdkafka's mock
log limit), so "consume" cannot read millions of messages from it and is
not run there.

Once per repetition the disk itself is measured too ("fsync-floor", target
"disk"): as many appends as seed-sync sends, each FSYNC_FLOOR_BYTES (about
one 244-byte record's batch as stored) to a file in the work directory and
each followed by fdatasync; p50/p99 in ms -- the latency any broker that
fsyncs before acknowledging must add, measured in the same minute.
"""

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHRONIK = REPO / "build" / "chronik"
MOCK = REPO / "build" / "bench" / "mock_broker"
PRODUCE = REPO / "build" / "bench" / "produce"
CONSUME = REPO / "build" / "bench" / "consume"
SEED = REPO / "bench" / "seed.py"
KAFKA_TOOLS = REPO / "bench" / "kafka_tools.py"
TOPIC_CREATE = REPO / "bench" / "topic_create.py"
KAFKA_CLASSPATH = REPO / "build" / "deps" / "kafka-tools.classpath"
KAFKA_HEAP = ["-Xms1g", "-Xmx1g"]
PERF_LATENCY_RATE = 10_000  # msg/s, far below either broker's limit
PERF_LATENCY_S = 60  # long enough that the Java producer's warm-up (~3,000 slow
                     # records in its first 0.3 s) stays under the 1 % p99 counts
PYTHON = "/usr/bin/python3"
BIN = {}  # name -> the copy that runs (see stage_binaries)

ALL_BENCHES = ("seed-async", "seed-sync", "produce-acks1", "produce-acksall", "consume",
               "perf-acks1", "perf-acksall", "perf-latency", "e2e-latency", "topic-create")
DEFAULT_BENCHES = ALL_BENCHES[:5]
TOPICS = {"seed-async": "bench-seed-async", "seed-sync": "bench-seed-sync",
          "produce-acks1": "bench-produce-acks1", "produce-acksall": "bench-produce-acksall",
          "consume": "bench-produce-acks1", "perf-acks1": "bench-perf-acks1",
          "perf-acksall": "bench-perf-acksall", "perf-latency": "bench-perf-latency",
          "e2e-latency": "bench-e2e",
          "topic-create": "bench-create-0"}
MOCK_SKIPS = {"consume": "the mock keeps only the last 5 MiB of a partition"}
MEDIAN_KEYS = ("msg_per_s", "mb_per_s", "p50_ms", "p99_ms", "broker_cpu_s_per_M", "broker_rss_mb")
NOISE_KEYS = ("load_1m", "others_cpu_frac")

START_TIMEOUT_S = 60.0  # a JVM broker on a loaded 2-core machine
STOP_TIMEOUT_S = 30.0
READY_POLL_S = 0.05
STAGE_RETRIES = 10
STAGE_RETRY_S = 1.0
PORT_RETRIES = 3  # fresh ports when one chosen was taken before chronik bound it
BENCH_TIMEOUT_S = 600.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
FSYNC_FLOOR_BYTES = 320


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_versions_ok(port):
    """One ApiVersions v0 round trip; True when the broker answers error 0."""
    body = struct.pack(">hhih", 18, 0, 1, len(b"bench")) + b"bench"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            head = s.recv(10)
            return len(head) >= 10 and struct.unpack(">iih", head[:10])[2] == 0
    except OSError:
        return False


def proc_stat(pid):
    """(cpu seconds = utime + stime, minor faults) of a whole process."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[7])


def peak_rss_mb(pid):
    """VmHWM (the peak resident set) of a process, in MiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


FSYNCS = "fsyncs"


def request_counts(admin_port):
    """chronik_requests_total by API from chronik's /metrics, plus its
    fsync count under the key FSYNCS, or {}."""
    if admin_port is None:
        return {}
    try:
        url = "http://127.0.0.1:%d/metrics" % admin_port
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith('chronik_requests_total{api="'):
            name = line.split('"')[1]
            out[name] = int(line.rsplit(" ", 1)[1])
        elif line.startswith("chronik_log_fsyncs_total "):
            out[FSYNCS] = int(line.rsplit(" ", 1)[1])
    return out


def cpu_totals():
    """(user+nice+system, steal) seconds over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2]) / CLK_TCK, (v[7] if len(v) > 7 else 0) / CLK_TCK


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def load_1m():
    return os.getloadavg()[0]


class Broker:
    """A fresh chronik, mock or kafka process; .bootstrap, .proc, .stop()."""

    def __init__(self, kind, workdir, topics, settings=()):
        self.kind = kind
        self.dir = Path(tempfile.mkdtemp(prefix="%s-" % kind, dir=workdir))
        self.log_path = self.dir / "broker.stderr"
        self._log = open(self.log_path, "ab")
        self.admin_port = None
        if kind == "chronik":
            self._start_chronik(settings)
        elif kind == "kafka":
            self._start_kafka()
        else:
            self._start_mock(topics)

    def _start_chronik(self, settings):
        for attempt in range(PORT_RETRIES):
            try:
                return self._spawn_chronik(settings)
            except RuntimeError:
                clash = "in use" in self.log_path.read_text(errors="replace")
                if not clash or attempt + 1 == PORT_RETRIES:
                    raise
                log("chronik: a chosen port was taken meanwhile; new ports")

    def _spawn_chronik(self, settings):
        port, self.admin_port = free_port(), free_port()
        cmd = [str(BIN["chronik"]), "server", "--listen", "127.0.0.1:%d" % port,
               "--controller-listen", "127.0.0.1:%d" % free_port(),
               "--admin-listen", "127.0.0.1:%d" % self.admin_port,
               "--data-dir", str(self.dir / "data")]
        for kv in settings:
            cmd += ["--set", kv]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._log, cwd=self.dir)
        self.bootstrap = "127.0.0.1:%d" % port
        self._wait_ready(port, "chronik")

    def _wait_ready(self, port, what):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited during start-up; see %s" % (what, self.log_path))
            if api_versions_ok(port):
                return
            time.sleep(READY_POLL_S)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("%s not ready after %.0f s; see %s" % (what, START_TIMEOUT_S, self.log_path))

    def _start_kafka(self):
        """Apache Kafka, one KRaft node in combined mode, storage formatted fresh."""
        port, cport = free_port(), free_port()
        props = self.dir / "server.properties"
        props.write_text("\n".join([
            "process.roles=broker,controller", "node.id=1",
            "controller.quorum.voters=1@127.0.0.1:%d" % cport,
            "listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (port, cport),
            "advertised.listeners=PLAINTEXT://127.0.0.1:%d" % port,
            "controller.listener.names=CONTROLLER", "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs=%s" % (self.dir / "data"),
            # one node: the internal topics cannot have three replicas
            "offsets.topic.replication.factor=1", "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1", "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1", ""]))
        java = ["java", "-cp", KAFKA_CLASSPATH.read_text().strip()]
        fmt = subprocess.run(java + ["kafka.tools.StorageTool", "format", "-t", "Q2hyb25pa0JlbmNoS2Fmaw",
                                     "-c", str(props)], capture_output=True, cwd=self.dir)
        if fmt.returncode != 0:
            raise RuntimeError("kafka storage format failed: %s" % fmt.stderr.decode()[-2000:])
        cmd = ["java"] + KAFKA_HEAP + ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
                                       "-cp", KAFKA_CLASSPATH.read_text().strip(), "kafka.Kafka", str(props)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, cwd=self.dir)
        self.bootstrap = "127.0.0.1:%d" % port
        self._wait_ready(port, "kafka")

    def _start_mock(self, topics):
        cmd = [str(BIN["mock"])]
        for t in sorted(set(topics)):
            cmd += ["--topic", "%s:1" % t]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._log, cwd=self.dir)
        line = self.proc.stdout.readline().decode().strip()
        if not line:
            self.stop()
            raise RuntimeError("mock printed no bootstrap address; see %s" % self.log_path)
        self.bootstrap = line.split(",")[0]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()
        return self.proc.returncode


def bench_command(name, bootstrap, a):
    topic = TOPICS[name]
    if name.startswith("seed-"):
        mode = name.split("-", 1)[1]
        n = a.seed_messages if mode == "async" else a.sync_messages
        return [PYTHON, str(SEED), "--bootstrap", bootstrap, "--mode", mode, "--topic", topic,
                "--messages", str(n), "--max-seconds", str(a.sync_max_seconds)]
    if name == "perf-latency":
        return [PYTHON, str(KAFKA_TOOLS), "--bootstrap", bootstrap, "--topic", topic, "perf",
                "--acks", "all", "--messages", str(PERF_LATENCY_RATE * PERF_LATENCY_S),
                "--throughput", str(PERF_LATENCY_RATE)]
    if name.startswith("perf-"):
        acks = "1" if name == "perf-acks1" else "all"
        return [PYTHON, str(KAFKA_TOOLS), "--bootstrap", bootstrap, "--topic", topic, "perf",
                "--acks", acks, "--messages", str(a.messages)]
    if name == "e2e-latency":
        return [PYTHON, str(KAFKA_TOOLS), "--bootstrap", bootstrap, "--topic", topic, "e2e",
                "--messages", str(a.sync_messages)]
    if name == "topic-create":
        return [PYTHON, str(TOPIC_CREATE), "--bootstrap", bootstrap, "--topics", str(a.create_topics)]
    if name.startswith("produce-"):
        acks = "1" if name == "produce-acks1" else "-1"
        return [str(BIN["produce"]), "-b", bootstrap, "-t", topic, "-n", str(a.messages), "-a", acks]
    return [str(BIN["consume"]), "-b", bootstrap, "-t", topic, "-n", str(a.messages)]


def messages_done(r):
    for k in ("sent", "delivered", "consumed", "created"):
        if k in r:
            return r[k]
    return 0


def run_one(name, broker, rep, a):
    """Runs one benchmark against a live broker; returns its JSON, augmented."""
    base = {"bench": name, "target": broker.kind, "rep": rep, "load_1m": round(load_1m(), 2)}
    if broker.kind == "chronik" and a.chronik_set:
        base["chronik_set"] = a.chronik_set
    if broker.kind == "mock" and name in MOCK_SKIPS:
        return dict(base, skipped=MOCK_SKIPS[name])
    cmd = bench_command(name, broker.bootstrap, a)
    req0 = request_counts(broker.admin_port)
    (all0, steal0), kid0 = cpu_totals(), children_cpu()
    (cpu0, flt0), t0 = proc_stat(broker.proc.pid), time.monotonic()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=BENCH_TIMEOUT_S, cwd=REPO)
    wall = time.monotonic() - t0
    cpu, flt = proc_stat(broker.proc.pid)
    cpu, flt = cpu - cpu0, flt - flt0
    (all1, steal1), kid = cpu_totals(), children_cpu() - kid0
    req1 = request_counts(broker.admin_port)
    lines = [l for l in p.stdout.decode().splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        err = p.stderr.decode(errors="replace").strip().splitlines()[-5:]
        return dict(base, run_error="exit %d" % p.returncode, stderr=err,
                    result=json.loads(lines[-1]) if lines else None)
    r = json.loads(lines[-1])
    r.pop("bench", None)
    out = dict(base, **r)
    out["wall_s"] = round(wall, 3)
    out["broker_cpu_s"] = round(cpu, 2)
    n = messages_done(r)
    out["broker_cpu_s_per_M"] = round(cpu / n * 1e6, 3) if n else None
    out["broker_minflt"] = flt
    out["broker_rss_mb"] = peak_rss_mb(broker.proc.pid)
    # CPU used meanwhile by everything but this broker and this client, as a
    # fraction of the machine: other users' load during the measurement.
    others = (all1 - all0) - cpu - kid
    out["others_cpu_frac"] = round(max(0.0, others) / (wall * os.cpu_count()), 2)
    out["steal_frac"] = round((steal1 - steal0) / (wall * os.cpu_count()), 2)
    if req1:
        out["broker_fsyncs"] = req1.pop(FSYNCS, 0) - req0.pop(FSYNCS, 0)
        out["broker_requests"] = {k: v - req0.get(k, 0) for k, v in req1.items()
                                  if v - req0.get(k, 0) > 0}
    return out


def fsync_floor(rep, workdir, writes):
    """Latency of append + fdatasync on the work directory's file system."""
    path = Path(workdir) / "fsync-floor.dat"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    lat = []
    try:
        block = b"x" * FSYNC_FLOOR_BYTES
        t0 = time.perf_counter()
        for _ in range(writes):
            s = time.perf_counter()
            os.write(fd, block)
            os.fdatasync(fd)
            lat.append(time.perf_counter() - s)
        secs = time.perf_counter() - t0
    finally:
        os.close(fd)
        path.unlink()
    lat.sort()
    pick = lambda q: round(lat[max(0, -(-len(lat) * q // 100) - 1)] * 1000, 3)
    return {"bench": "fsync-floor", "target": "disk", "rep": rep, "load_1m": round(load_1m(), 2),
            "writes": len(lat), "msg_per_s": round(len(lat) / secs, 1), "p50_ms": pick(50),
            "p99_ms": pick(99), "max_ms": round(lat[-1] * 1000, 3)}


def bench_order(benches, rep):
    """The benchmarks of one repetition: produce-acks1 and produce-acksall
    swap places in even repetitions (consume, which reads produce-acks1's
    topic, stays after both)."""
    b = list(benches)
    if rep % 2 == 0 and "produce-acks1" in b and "produce-acksall" in b:
        i, j = b.index("produce-acks1"), b.index("produce-acksall")
        b[i], b[j] = b[j], b[i]
    return b


def run_rep(rep, targets, a, workdir):
    results = []
    if "seed-sync" in a.benches:
        r = fsync_floor(rep, workdir, a.sync_messages)
        print(json.dumps(r), flush=True)
        log("rep %d disk fsync-floor: %s" % (rep, summary(r)))
        results.append(r)
    order = targets if rep % 2 == 1 else list(reversed(targets))
    for kind in order:
        broker = Broker(kind, workdir, [TOPICS[b] for b in a.benches], a.chronik_set)
        log("rep %d: %s up at %s (pid %d)" % (rep, kind, broker.bootstrap, broker.proc.pid))
        try:
            for name in bench_order(a.benches, rep):
                r = run_one(name, broker, rep, a)
                print(json.dumps(r), flush=True)
                log("rep %d %s %s: %s" % (rep, kind, name, summary(r)))
                results.append(r)
        finally:
            rc = broker.stop()
            if rc not in (0, None) and not (kind == "kafka" and rc == 143):  # the JVM's exit on SIGTERM
                log("%s exited with %s; see %s" % (kind, rc, broker.log_path))
            if not a.keep:
                shutil.rmtree(broker.dir, ignore_errors=True)
    return results


def summary(r):
    if "skipped" in r:
        return "skipped (%s)" % r["skipped"]
    if "run_error" in r:
        return "FAILED %s %s" % (r["run_error"], r.get("stderr"))
    parts = ["%s=%s" % (k, r[k]) for k in MEDIAN_KEYS if r.get(k) is not None]
    return " ".join(parts) + " load=%s others=%s" % (r["load_1m"], r.get("others_cpu_frac", "-"))


def medians(results, benches, targets):
    med = {}
    for name in benches:
        for kind in targets:
            ok = [r for r in results if r["bench"] == name and r["target"] == kind
                  and "run_error" not in r and "skipped" not in r]
            if not ok:
                continue
            m = {"runs": len(ok)}
            for k in MEDIAN_KEYS + NOISE_KEYS:
                vals = [r[k] for r in ok if r.get(k) is not None]
                if vals:
                    m[k] = statistics.median(vals)
            med["%s/%s" % (name, kind)] = m
    return med


def stage_binaries(workdir, needed):
    """Copies the programs to workdir/bin so that concurrent rebuilds of
    build/ cannot swap them mid-run. A copy taken while the linker is still
    writing the file is not an ELF image yet: wait and copy again."""
    bindir = Path(workdir) / "bin"
    bindir.mkdir(exist_ok=True)
    for name, src in needed.items():
        BIN[name] = bindir / src.name
        for _ in range(STAGE_RETRIES):
            shutil.copy2(src, BIN[name])
            with open(BIN[name], "rb") as f:
                if f.read(4) == b"\x7fELF":
                    break
            time.sleep(STAGE_RETRY_S)
        else:
            sys.exit("runner: %s is not a complete program (being rebuilt?)" % src)


def environment():
    def sh(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, cwd=REPO, timeout=10).stdout.decode().strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"run": {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "nproc": os.cpu_count(), "cpu": cpu, "mem_gb": round(mem_gb, 1),
                    "kernel": platform.release(), "load_1m": round(load_1m(), 2),
                    "git": sh(["git", "rev-parse", "--short", "HEAD"]),
                    "git_dirty_files": len(sh(["git", "status", "--porcelain"]).splitlines()),
                    "sha256": {k: hashlib.sha256(v.read_bytes()).hexdigest()[:12]
                               for k, v in BIN.items()}}}


def print_table(med, benches, targets):
    log("medians (msg/s | p50 ms | p99 ms | broker CPU s per M msgs | broker peak RSS | others' CPU share):")
    for name in benches:
        cells = []
        for kind in targets:
            m = med.get("%s/%s" % (name, kind))
            if not m:
                continue
            txt = "%s: %s msg/s" % (kind, m.get("msg_per_s"))
            if "p99_ms" in m:
                txt += " p50 %s p99 %s ms" % (m["p50_ms"], m["p99_ms"])
            if m.get("broker_cpu_s_per_M") is not None:
                txt += " cpu/M %s" % m["broker_cpu_s_per_M"]
            if m.get("broker_rss_mb") is not None:
                txt += " rss %s MiB" % m["broker_rss_mb"]
            if m.get("others_cpu_frac") is not None:
                txt += " (others %s)" % m["others_cpu_frac"]
            cells.append(txt)
        log("  %-16s %s" % (name, " | ".join(cells)))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--benches", default=",".join(DEFAULT_BENCHES),
                    help="any of %s" % ",".join(ALL_BENCHES))
    ap.add_argument("--targets", default="chronik,mock", help="any of chronik,mock,kafka")
    ap.add_argument("--messages", type=int, default=5_000_000, help="produce and consume")
    ap.add_argument("--seed-messages", type=int, default=50_000)
    ap.add_argument("--sync-messages", type=int, default=5_000)
    ap.add_argument("--sync-max-seconds", type=float, default=60.0)
    ap.add_argument("--create-topics", type=int, default=50, help="topic-create")
    ap.add_argument("--workdir", default=None, help="default: a new directory under $TMPDIR")
    ap.add_argument("--chronik-set", action="append", default=[], metavar="KEY=VALUE",
                    help="passed to chronik as --set (diagnosis only: the recorded figures "
                         "use the defaults)")
    ap.add_argument("--keep", action="store_true", help="keep data directories and broker logs")
    a = ap.parse_args()
    a.benches = [b for b in a.benches.split(",") if b]
    a.targets = [t for t in a.targets.split(",") if t]
    bad = [b for b in a.benches if b not in ALL_BENCHES] + \
          [t for t in a.targets if t not in ("chronik", "mock", "kafka")]
    if bad:
        ap.error("unknown benchmark or target: %s" % ", ".join(bad))
    if "consume" in a.benches and "produce-acks1" not in a.benches:
        ap.error("consume reads the topic produce-acks1 writes: run both")
    return a


def main():
    a = parse_args()
    needed = {"chronik": CHRONIK, "mock": MOCK, "produce": PRODUCE, "consume": CONSUME}
    if "chronik" not in a.targets:
        del needed["chronik"]
    if "mock" not in a.targets:
        del needed["mock"]
    if not any(b.startswith("produce") for b in a.benches):
        del needed["produce"]
    if "consume" not in a.benches:
        del needed["consume"]
    for exe in needed.values():
        if not exe.exists():
            sys.exit("runner: %s is missing: run bench/run-all.sh (it builds)" % exe)
    if "kafka" in a.targets and not KAFKA_CLASSPATH.exists():
        sys.exit("runner: %s is missing: run tools/deps.sh test" % KAFKA_CLASSPATH)
    workdir = a.workdir or tempfile.mkdtemp(prefix="chronik-bench-")
    stage_binaries(workdir, needed)
    print(json.dumps(environment()), flush=True)
    results = []
    t0 = time.monotonic()
    for rep in range(1, a.reps + 1):
        results += run_rep(rep, a.targets, a, workdir)
    benches, targets = a.benches, a.targets
    if "seed-sync" in a.benches:
        benches, targets = benches + ["fsync-floor"], targets + ["disk"]
    med = medians(results, benches, targets)
    print(json.dumps({"medians": med}), flush=True)
    print_table(med, benches, targets)
    log("total %.0f s; work directory %s" % (time.monotonic() - t0, workdir))
    if not a.keep and not a.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if any("run_error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
