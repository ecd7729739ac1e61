"""`chronik cluster local`: one command starts N nodes on this machine (ports
counted from --base-port, data in DIR/node-K), prints one ready line once
every node answers /ready and a leader is known, and stops every node when it
gets SIGTERM; a node that dies is named and the rest are stopped."""

import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import harness
import kwire
from test_cluster import wait_for

CONTROLLER_OFFSET, ADMIN_OFFSET = 100, 552   # the port scheme of src/admin/local.h
READY_DEADLINE_S = 90.0     # three ASan nodes on a loaded 2-core machine
STOP_DEADLINE_S = 60.0
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

pytestmark = pytest.mark.skipif(harness.TARGET != "chronik", reason="a subcommand of the chronik binary")


def ports_of(base, n):
    return [base + off + k for k in range(n) for off in (0, CONTROLLER_OFFSET, ADMIN_OFFSET)]


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_base(n):
    """A base port whose client, controller and admin ports for n nodes are all free."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - ADMIN_OFFSET)
        if all(port_free(p) for p in ports_of(base, n)):
            return base
    raise AssertionError("no free range of ports found")


def chronik(*args, cwd=None):
    r = harness.run_tool([str(harness.CHRONIK_BIN)] + list(args), cwd=cwd,
                         env=dict(os.environ, **harness.SANITIZER_ENV))
    assert not [m for m in harness.SANITIZER_MARKERS if m in r.stderr], r.stderr
    return r


class Launcher:
    """One `chronik cluster local` process; out holds the lines it printed."""

    def __init__(self, tmp_path, nodes, name="launcher"):
        self.dir = tmp_path / "cluster"
        self.nodes = nodes
        self.base = free_base(nodes)
        self.err_path = tmp_path / ("%s.stderr" % name)
        self.out = []
        self._partial = ""
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            [str(harness.CHRONIK_BIN), "cluster", "local", "--nodes", str(nodes), "--base-port", str(self.base),
             "--data-dir", str(self.dir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._err, cwd=tmp_path,
            env=dict(os.environ, **harness.SANITIZER_ENV))

    def line_matching(self, pattern, deadline_s):
        """Reads printed lines until one matches (returns the match) or the deadline passes."""
        deadline = time.monotonic() + deadline_s
        fd = self.proc.stdout.fileno()
        while True:
            while "\n" in self._partial:
                line, self._partial = self._partial.split("\n", 1)
                self.out.append(line + "\n")
                m = re.search(pattern, line)
                if m:
                    return m
            left = deadline - time.monotonic()
            assert left > 0, "no line matching %r after %.0f s:\n%s" % (pattern, deadline_s, self.report())
            ready, _, _ = select.select([fd], [], [], left)
            chunk = os.read(fd, 65536).decode(errors="replace") if ready else ""
            if ready and chunk == "":
                raise AssertionError("launcher exited (%s) before %r:\n%s" % (self.proc.wait(), pattern, self.report()))
            self._partial += chunk

    def pids(self):
        return [int(m.group(1)) for line in self.out for m in [re.search(r"^node \d+: .* pid (\d+)$", line)] if m]

    def client_port(self, k):
        return self.base + k - 1

    def admin_port(self, k):
        return self.base + ADMIN_OFFSET + k - 1

    def finish(self, sig=signal.SIGTERM):
        """Sends sig (if still running) and returns the exit code and the rest of the output."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        rest = self.proc.communicate(timeout=STOP_DEADLINE_S)[0].decode(errors="replace")
        self.out += (self._partial + rest).splitlines(keepends=True)
        self._partial = ""
        self._err.close()
        return self.proc.returncode

    def report(self):
        return "stdout:\n%s\nstderr:\n%s" % ("".join(self.out), self.err_path.read_text(errors="replace"))

    def node_logs(self):
        return {p.name: p.read_text(errors="replace") for p in self.dir.glob("node-*.log")}


@pytest.fixture
def launch(tmp_path):
    made = []

    def make(nodes):
        last = None
        for _ in range(harness.PORT_RETRIES):  # a port of the range may be taken meanwhile
            lc = Launcher(tmp_path, nodes)
            made.append(lc)
            try:
                lc.line_matching(r"^cluster ready: ", READY_DEADLINE_S)
                return lc
            except AssertionError as e:
                last = e
                lc.finish(signal.SIGKILL)
                if not any("in use" in t for t in lc.node_logs().values()):
                    raise
        raise last

    yield make
    for lc in made:  # a failed test leaves nothing running
        if lc.proc.poll() is None:
            lc.proc.kill()
            lc.proc.wait()
        lc._err.close()
        for pid in lc.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def ready(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/ready" % port, timeout=5) as f:
            return f.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def leader_seen_by(admin_port):
    r = chronik("cluster", "status", "--admin", "127.0.0.1:%d" % admin_port, "--json")
    assert r.returncode in (EXIT_OK, EXIT_FAILED), r.stderr
    return json.loads(r.stdout)["quorum"]["leader_id"]


def gone(pid):
    try:
        os.kill(pid, 0)
        return False
    except ProcessLookupError:
        return True


def assert_clean_logs(lc):
    for name, text in lc.node_logs().items():
        assert not [m for m in harness.SANITIZER_MARKERS if m in text], "%s:\n%s" % (name, text[-4000:])


# Three nodes from one command: the ready line names a leader and every
# node's client port; every node answers ApiVersions and /ready; every
# node's `cluster status` names the same leader, and the leader's text
# status lists each voter's position; SIGTERM stops all with exit 0.
def test_three_nodes_start_agree_and_stop(launch):
    lc = launch(3)
    m = re.search(r"^cluster ready: 3 nodes, leader (\d), bootstrap (\S+)$", lc.out[-1])
    assert m, lc.report()
    leader = int(m.group(1))
    assert m.group(2) == ",".join("127.0.0.1:%d" % lc.client_port(k) for k in (1, 2, 3))
    pids = lc.pids()
    assert len(pids) == 3, lc.report()
    for k in (1, 2, 3):
        with kwire.Conn("127.0.0.1", lc.client_port(k)) as c:
            r = kwire.api_versions(c, 0)
            assert r["error_code"] == kwire.ERR_NONE and r["apis"]
        assert ready(lc.admin_port(k)), "node %d not ready" % k
        wait_for(lambda: leader_seen_by(lc.admin_port(k)) == leader, "node %d to name leader %d" % (k, leader),
                 READY_DEADLINE_S)
    text = chronik("cluster", "status", "--admin", "127.0.0.1:%d" % lc.admin_port(leader)).stdout
    assert re.search(r"this node leader", text) and "VOTER" in text, text
    for k in (1, 2, 3):
        assert re.search(r"^  %d +\d+ +\d+ " % k, text, re.M), text
    assert lc.finish() == EXIT_OK, lc.report()
    assert all(gone(p) for p in pids), "a node outlived the launcher"
    for k in (1, 2, 3):
        assert "node %d stopped: exit 0\n" % k in lc.out, lc.report()
    assert_clean_logs(lc)


# A node killed with SIGKILL is named by the launcher, which stops the
# others and exits 1.
def test_a_dead_node_stops_the_cluster(launch):
    lc = launch(2)
    pids = lc.pids()
    os.kill(pids[1], signal.SIGKILL)
    assert lc.finish(sig=None) == EXIT_FAILED, lc.report()
    err = lc.err_path.read_text()
    assert "node 2 (pid %d) ended: killed by signal 9" % pids[1] in err, err
    assert "node 1 stopped: exit 0\n" in lc.out, lc.report()
    assert gone(pids[0])


# A second launcher on the same data directory: its node cannot take the
# directory's lock, exits 1 naming the holder, and the launcher says which
# node ended and why; the first cluster is untouched.
def test_a_locked_data_dir_is_reported(launch, tmp_path):
    first = launch(1)
    second = Launcher(tmp_path, 1, name="second")
    assert second.finish(sig=None) == EXIT_FAILED, second.report()
    err = second.err_path.read_text()
    assert re.search(r"node 1 \(pid \d+\) ended: exit 1", err), err
    assert "is in use by another process (pid %d holds" % first.pids()[0] in err, err
    assert ready(first.admin_port(1))
    assert first.finish() == EXIT_OK, first.report()


# Bad arguments exit 2 with a message naming the problem, and start nothing.
@pytest.mark.parametrize("args, message", [
    (["--nodes", "0"], "invalid --nodes '0'"),
    (["--nodes", "x"], "invalid --nodes 'x'"),
    (["--nodes", "10"], "from 1 to 9"),
    ([], "--nodes N is required"),
    (["--nodes", "3", "--base-port", "70000"], "invalid --base-port"),
    (["--nodes", "3", "--bogus"], "unknown argument '--bogus'"),
])
def test_bad_arguments(tmp_path, args, message):
    r = chronik("cluster", "local", *args, cwd=tmp_path)
    assert r.returncode == EXIT_USAGE, r
    assert message in r.stderr and "usage: chronik cluster local" in r.stderr, r.stderr
    assert not (tmp_path / "chronik-cluster").exists()
