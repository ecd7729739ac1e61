"""harness - real broker processes for the integration tests.

A Broker is one process listening on free loopback ports with its own data
directory. It is started, waited for (the port accepts AND an ApiVersions
round-trip succeeds, polled against a deadline), stopped gracefully with
SIGTERM (exit code 0 and a clean sanitizer report required), killed with
SIGKILL, and restarted on the same ports and data directory.

Which program runs is chosen by the environment:
  CHRONIK_TARGET=chronik (default)  CHRONIK_BIN, default build/asan/chronik
  CHRONIK_TARGET=mock               build/bench/mock_broker (librdkafka's
                                    in-memory reference broker; ephemeral
                                    port, no persistence, node id 1)
Every broker gets TEST_SETTINGS unless the test overrides them.
The broker's stderr goes to a file that every incarnation appends to; its
tail is shown when a test fails.
"""

import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import kwire

REPO = Path(__file__).resolve().parents[2]
TARGET = os.environ.get("CHRONIK_TARGET", "chronik")
# A relative CHRONIK_BIN is taken from the directory pytest was started in.
CHRONIK_BIN = Path(os.environ.get("CHRONIK_BIN", REPO / "build" / "asan" / "chronik")).absolute()
MOCK_BIN = REPO / "build" / "bench" / "mock_broker"
# The optimised build with the system allocator: for measuring memory, which
# the sanitizers' own allocator (with its quarantine) would hide.
REL_BIN = Path(os.environ.get("CHRONIK_REL_BIN", REPO / "build" / "chronik")).absolute()

START_TIMEOUT_S = 30.0      # ASan start-up on a loaded 2-core machine
STOP_TIMEOUT_S = 20.0       # graceful shutdown after SIGTERM
KILL_TIMEOUT_S = 10.0
READY_POLL_S = 0.05         # pause between readiness probes (ends early if the process dies)
PORT_RETRIES = 3            # fresh ports when a chosen one was taken meanwhile
LOG_TAIL_LINES = 60

# Settings every test broker gets unless the test gives the key itself (a
# value of None leaves the broker's own default). Groups rebalance at once
# instead of waiting group.initial.rebalance.delay.ms (3 s by default).
TEST_SETTINGS = {"group.initial.rebalance.delay.ms": "0"}

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error")
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


def free_port():
    """A loopback port nobody listens on right now."""
    return free_ports(1)[0]


def free_ports(n):
    """n distinct loopback ports nobody listens on right now (all held
    while they are picked, so the kernel cannot hand one out twice)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class BrokerError(AssertionError):
    pass


class Broker:
    """One broker process. Attributes: bootstrap, host, port, data_dir, proc, node_id."""

    def __init__(self, workdir, name="broker", node_id=1, settings=None, extra_args=(), preexec_fn=None,
                 binary=None, host="127.0.0.1", ssl_context=None):
        self.name = name
        self.host = host  # every listener binds this loopback address
        self.kind = TARGET
        self.node_id = node_id
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / ("%s-data" % name)
        self.log_path = self.workdir / ("%s.stderr" % name)
        merged = dict(TEST_SETTINGS, **(settings or {}))
        self.settings = {k: v for k, v in merged.items() if v is not None}
        self.extra_args = list(extra_args)
        self.preexec_fn = preexec_fn  # runs in the child before exec (e.g. setrlimit)
        self.binary = Path(binary) if binary else CHRONIK_BIN  # e.g. REL_BIN to measure memory
        self.ssl_context = ssl_context  # the client listener speaks TLS: the start-up check does too
        self.port = self.controller_port = self.admin_port = None
        self.proc = None
        self._log = None
        self.starts = 0

    # ---- properties ---------------------------------------------------
    @property
    def bootstrap(self):
        return "%s:%d" % (self.host, self.port)

    @property
    def admin_url(self):
        return "http://%s:%d" % (self.host, self.admin_port)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # ---- start --------------------------------------------------------
    def start(self):
        """Starts the process and returns once it answers ApiVersions."""
        assert not self.running(), "%s already running" % self.name
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fresh_ports = self.port is None
        for attempt in range(PORT_RETRIES):
            if fresh_ports:
                self._pick_ports()
            self._spawn()
            try:
                self._wait_ready()
                self.starts += 1
                return self
            except BrokerError:
                if not (fresh_ports and self._port_clash() and attempt + 1 < PORT_RETRIES):
                    raise
        raise AssertionError("unreachable")

    def _pick_ports(self, ports=None):
        """Three fresh ports, or the three given (picked together with other nodes')."""
        self.port, self.controller_port, self.admin_port = ports or free_ports(3)

    def _command(self):
        if self.kind == "mock":
            return [str(MOCK_BIN)]
        cmd = [str(self.binary), "server",
               "--listen", "%s:%d" % (self.host, self.port),
               "--controller-listen", "%s:%d" % (self.host, self.controller_port),
               "--admin-listen", "%s:%d" % (self.host, self.admin_port),
               "--data-dir", str(self.data_dir),
               "--node-id", str(self.node_id)]
        for k, v in self.settings.items():
            cmd += ["--set", "%s=%s" % (k, v)]
        return cmd + self.extra_args

    def _spawn(self):
        exe = MOCK_BIN if self.kind == "mock" else self.binary
        if not exe.exists():
            raise BrokerError("%s does not exist: build it first (make integration does)" % exe)
        env = dict(os.environ, **SANITIZER_ENV)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = open(self.log_path, "ab")
        self._log.write(b"---- start %d: %s\n" % (self.starts + 1, " ".join(self._command()).encode()))
        self._log.flush()
        self.proc = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE if self.kind == "mock" else subprocess.DEVNULL,
                                     stderr=self._log, env=env, cwd=self.workdir,
                                     preexec_fn=self.preexec_fn)

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        if self.kind == "mock":
            self._read_mock_bootstrap(deadline)
        last = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError("%s exited with %s during start-up\n%s"
                                  % (self.name, self.proc.returncode, self.log_tail()))
            try:
                with kwire.Conn(self.host, self.port, timeout=2.0, ssl_context=self.ssl_context) as c:
                    r = kwire.api_versions(c, 0, timeout=2.0)
                    if r["error_code"] == kwire.ERR_NONE and r["apis"]:
                        return
                    last = "ApiVersions error %d" % r["error_code"]
            except (OSError, kwire.WireError, TimeoutError) as e:
                last = repr(e)
            try:
                self.proc.wait(timeout=READY_POLL_S)
            except subprocess.TimeoutExpired:
                pass
        self._terminate_quietly()
        raise BrokerError("%s not ready after %.0f s (last: %s)\n%s"
                          % (self.name, START_TIMEOUT_S, last, self.log_tail()))

    def _read_mock_bootstrap(self, deadline):
        ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line:
            self._terminate_quietly()
            raise BrokerError("mock broker printed no bootstrap address\n%s" % self.log_tail())
        self.port = int(line.split(",")[0].rsplit(":", 1)[1])

    def _port_clash(self):
        text = self.log_path.read_text(errors="replace")[self._log_offset:]
        return "in use" in text or "EADDRINUSE" in text

    def _terminate_quietly(self):
        if self.running():
            self.proc.kill()
            self.proc.wait(timeout=KILL_TIMEOUT_S)
        self._close_log()

    def _close_log(self):
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    # ---- stop ---------------------------------------------------------
    def stop(self):
        """SIGTERM, wait, and require exit code 0 and no sanitizer report."""
        if self.proc is None:
            return
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=KILL_TIMEOUT_S)
                self._close_log()
                raise BrokerError("%s did not exit within %.0f s of SIGTERM\n%s"
                                  % (self.name, STOP_TIMEOUT_S, self.log_tail()))
        self._close_log()
        rc = self.proc.returncode
        self.proc = None
        problems = self.sanitizer_findings()
        if rc != 0 or problems:
            raise BrokerError("%s exited with %s; sanitizer findings: %s\n%s"
                              % (self.name, rc, problems or "none", self.log_tail()))

    def kill9(self):
        """SIGKILL: no shutdown code runs, unsynced state is lost."""
        assert self.running(), "%s not running" % self.name
        self.proc.kill()
        self.proc.wait(timeout=KILL_TIMEOUT_S)
        self._close_log()
        self.proc = None

    def restart(self):
        """Graceful stop (checked) and start on the same ports and data dir."""
        self.stop()
        if self.kind == "mock":
            self.port = None  # the mock cannot choose its port
        return self.start()

    # ---- resources ----------------------------------------------------
    def cpu_seconds(self):
        """User + system CPU time the running process has used so far."""
        fields = Path("/proc/%d/stat" % self.proc.pid).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self):
        """Resident set size of the running process."""
        for line in Path("/proc/%d/status" % self.proc.pid).read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise BrokerError("no VmRSS for pid %d" % self.proc.pid)

    # ---- logs ---------------------------------------------------------
    def log_text(self):
        if self._log is not None:
            self._log.flush()
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines=LOG_TAIL_LINES):
        text = self.log_text().splitlines()
        return "---- %s stderr (%s), last %d lines ----\n%s" % (
            self.name, self.log_path, min(lines, len(text)), "\n".join(text[-lines:]))

    def sanitizer_findings(self):
        text = self.log_text()
        return [m for m in SANITIZER_MARKERS if m in text]


def wait_until(pred, what, deadline_s=30.0, poll_s=0.05):
    """Polls pred() until it returns a true value (returned) or deadline_s
    passes (an AssertionError naming what was awaited)."""
    deadline = time.monotonic() + deadline_s
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(poll_s)


def run_tool(cmd, timeout_s=30.0, cwd=None, env=None):
    """Runs a client program; returns the CompletedProcess (text mode)."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                          cwd=cwd, env=env, stdin=subprocess.DEVNULL)
