"""A new user's first run: what the chronik binary says when an argument, an
address or the data directory is wrong (the key words of each message and the
exit code), that every listener is checked before the data directory is
touched, that two nodes run side by side on one host, and `chronik
wait-ready`."""

import os
import socket
import subprocess
import tempfile

import pytest

import harness

EXIT_USAGE = 2              # a bad argument
EXIT_FAILED = 1             # the server could not start; wait-ready: not ready
TOOL_TIMEOUT_S = 30.0
NOBODY_UID = 65534

pytestmark = pytest.mark.skipif(harness.TARGET != "chronik", reason="messages of the chronik binary")


def chronik(*args, preexec_fn=None, timeout_s=TOOL_TIMEOUT_S):
    r = subprocess.run([str(harness.CHRONIK_BIN)] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout_s, stdin=subprocess.DEVNULL, preexec_fn=preexec_fn,
                       env=dict(os.environ, **harness.SANITIZER_ENV))
    assert not [m for m in harness.SANITIZER_MARKERS if m in r.stderr], r.stderr
    return r


def server(tmp_path, *args, **kw):
    """chronik server on free loopback ports (args override them)."""
    ports = ["--listen", "127.0.0.1:%d" % harness.free_port(),
             "--controller-listen", "127.0.0.1:%d" % harness.free_port(),
             "--admin-listen", "127.0.0.1:%d" % harness.free_port()]
    return chronik("server", "--data-dir", tmp_path / "data", *ports, *args, **kw)


# An unknown option and a stray argument are named as such; a flag without its value says so.
@pytest.mark.parametrize("args,words", [
    (["--bogus"], "unknown option '--bogus'"),
    (["--bogus=1"], "unknown option '--bogus'"),
    (["positional"], "unexpected argument 'positional'"),
    (["--listen"], "option '--listen' needs a value"),
])
def test_bad_server_arguments(args, words):
    r = chronik("server", *args)
    assert r.returncode == EXIT_USAGE and words in r.stderr, r.stderr


# A malformed --listen says what is wrong with it: the port's range, a port that is no number, no port.
@pytest.mark.parametrize("value,words", [
    ("127.0.0.1:99999", "port out of range"),
    ("127.0.0.1:abc", "port is not a number"),
    ("nohost", "no port"),
])
def test_bad_listen_address(value, words):
    r = chronik("server", "--listen", value)
    assert r.returncode == EXIT_USAGE, r.stderr
    assert "'%s'" % value in r.stderr and words in r.stderr, r.stderr


# --admin-listen gets the same explanation, naming its key.
def test_bad_admin_listen_address():
    r = chronik("server", "--admin-listen", "127.0.0.1:99999")
    assert r.returncode == EXIT_USAGE, r.stderr
    assert "admin.listeners" in r.stderr and "port out of range" in r.stderr, r.stderr


def drop_to_nobody():
    os.setuid(NOBODY_UID)


# An existing data directory this process may not write in is named, with the cause, before any log is opened.
def test_unwritable_data_dir(tmp_path):
    parent = tempfile.mkdtemp(prefix="chronik-ro-")
    try:
        os.chmod(parent, 0o755)
        data = os.path.join(parent, "data")
        os.mkdir(data, 0o555)
        r = chronik("server", "--data-dir", data, "--listen", "127.0.0.1:0",
                    "--controller-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                    preexec_fn=drop_to_nobody)
        assert r.returncode == EXIT_FAILED, r.stderr
        assert "cannot write in the data directory dir=%s" % data in r.stderr, r.stderr
        assert "Permission denied" in r.stderr and "metadata log" not in r.stderr, r.stderr
        assert os.listdir(data) == []
    finally:
        os.chmod(os.path.join(parent, "data"), 0o755)
        os.rmdir(os.path.join(parent, "data"))
        os.rmdir(parent)


# Each listener whose address is taken is reported, naming its flag, before the data directory is created.
@pytest.mark.parametrize("flag", ["--listen", "--controller-listen", "--admin-listen"])
def test_address_in_use_checked_first(tmp_path, flag):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        r = server(tmp_path, flag, "127.0.0.1:%d" % taken.getsockname()[1])
    assert r.returncode == EXIT_FAILED, r.stderr
    assert "Address already in use" in r.stderr and flag in r.stderr, r.stderr
    assert not (tmp_path / "data").exists()


# Two nodes run side by side on one host, each with its own listeners and data directory.
def test_two_nodes_on_one_host(broker_factory, kcat):
    a, b = broker_factory(name="a"), broker_factory(name="b")
    for node in (a, b):
        r = harness.run_tool([kcat, "-L", "-b", node.bootstrap, "-m", "10"], timeout_s=TOOL_TIMEOUT_S)
        assert r.returncode == 0 and "broker 1 at %s" % node.bootstrap in r.stdout, r.stdout + r.stderr


# `cluster status` with a malformed --admin names the argument and what is wrong; an unknown argument is named.
def test_cluster_status_bad_admin():
    r = chronik("cluster", "status", "--admin", "nohost")
    assert r.returncode == EXIT_USAGE, r.stderr
    assert "invalid --admin 'nohost'" in r.stderr and "no port" in r.stderr, r.stderr
    r = chronik("cluster", "status", "--colour")
    assert r.returncode == EXIT_USAGE and "unknown argument '--colour'" in r.stderr, r.stderr


# `server --help` lists every admin endpoint, /status included.
def test_server_help_lists_endpoints():
    r = chronik("server", "--help")
    assert r.returncode == 0, r.stderr
    for path in ("/health", "/ready", "/metrics", "/status"):
        assert path in r.stdout, path


# `wait-ready` returns 0 once a node is ready, 1 when none answers in time or the watched process has ended, 2 for bad arguments.
def test_wait_ready(broker):
    r = chronik("wait-ready", "--admin", "127.0.0.1:%d" % broker.admin_port, "--timeout", "20")
    assert r.returncode == 0 and "ready" in r.stdout, r.stderr
    nobody = "127.0.0.1:%d" % harness.free_port()
    r = chronik("wait-ready", "--admin", nobody, "--timeout", "0.3")
    assert r.returncode == EXIT_FAILED and "not ready after" in r.stderr, r.stderr
    gone = subprocess.Popen(["true"])
    gone.wait()
    r = chronik("wait-ready", "--admin", nobody, "--pid", gone.pid, "--timeout", "20")
    assert r.returncode == EXIT_FAILED and "ended" in r.stderr, r.stderr
    r = chronik("wait-ready", "--timeout", "soon")
    assert r.returncode == EXIT_USAGE and "invalid --timeout 'soon'" in r.stderr, r.stderr
