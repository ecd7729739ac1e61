"""The documentation works as written: docs/CONFIG.md is what the configuration
table prints, and the shell blocks (```sh) of docs/QUICKSTART.md and
docs/CLUSTER.md, run in order in one bash process in an empty directory with
the chronik binary first on the PATH, all succeed and print what the docs say
they print. A doc that stops working fails here."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import harness

DOCS = harness.REPO / "docs"
SCRIPT_TIMEOUT_S = 240
DEFAULT_PORTS = (9092, 9093, 9094, 9192, 9193, 9194, 9644, 9645, 9646)

pytestmark = pytest.mark.skipif(harness.TARGET != "chronik", reason="Chronik's own documentation")


def sh_blocks(doc):
    """The ```sh blocks of a Markdown file, in order."""
    return re.findall(r"^```sh\n(.*?)^```$", doc.read_text(), flags=re.S | re.M)


def run_doc(doc, tmp_path):
    """Runs every sh block of doc in one `bash -euo pipefail` in tmp_path; each block is
    announced on stdout with a marker. Returns (returncode, stdout, stderr). Whatever the
    doc started in the background is killed at the end."""
    blocks = sh_blocks(doc)
    assert blocks, "no sh blocks in " + doc.name
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "chronik").symlink_to(harness.CHRONIK_BIN)
    script = "".join("echo '@@block %d'\n%s" % (i, b) for i, b in enumerate(blocks))
    script += "echo '@@done'\n"
    env = dict(os.environ, **harness.SANITIZER_ENV)
    # /usr/bin before the rest, as on a Debian machine: its python3 is the one that sees
    # Debian's python3-kafka, which the quickstart uses
    env["PATH"] = "%s:/usr/bin:%s" % (bindir, env.get("PATH", ""))
    p = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=SCRIPT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        out, err = p.communicate()
        pytest.fail("%s timed out; stdout:\n%s\nstderr:\n%s" % (doc.name, out[-4000:], err[-4000:]))
    finally:
        try:
            os.killpg(p.pid, 9)   # anything the doc left running
        except ProcessLookupError:
            pass
    return p.returncode, out, err


def busy_port():
    import socket
    for port in DEFAULT_PORTS:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return port
    return None


def check_ran(doc, rc, out, err):
    n = len(sh_blocks(doc))
    assert rc == 0 and "@@done" in out, "%s failed in block %s (exit %d)\nstdout:\n%s\nstderr:\n%s" % (
        doc.name, re.findall(r"@@block (\d+)", out)[-1:], rc, out[-4000:], err[-4000:])
    assert out.count("@@block") == n
    assert not [m for m in harness.SANITIZER_MARKERS if m in err], err


def test_config_doc_is_the_config_table():
    r = subprocess.run([str(harness.CHRONIK_BIN), "server", "--config-doc"], capture_output=True, text=True,
                       timeout=30, env=dict(os.environ, **harness.SANITIZER_ENV))
    assert r.returncode == 0, r.stderr
    assert "| `log.retention.ms` |" in r.stdout
    assert (DOCS / "CONFIG.md").read_text() == r.stdout, "docs/CONFIG.md is stale: run 'make docs'"


def test_readme_links_the_docs():
    readme = (harness.REPO / "README.md").read_text()
    for name in ("QUICKSTART.md", "CLUSTER.md", "CONFIG.md", "OPERATIONS.md"):
        assert "docs/" + name in readme, name
        assert (DOCS / name).is_file(), name


@pytest.mark.parametrize("name", ["QUICKSTART.md", "CLUSTER.md"])
def test_doc_commands_work(name, tmp_path):
    if shutil.which("kcat") is None:
        pytest.fail("kcat not installed: run tools/deps.sh test")
    busy = busy_port()
    assert busy is None, "port %d is in use: the docs' commands use the default ports" % busy
    doc = DOCS / name
    rc, out, err = run_doc(doc, tmp_path)
    check_ran(doc, rc, out, err)
    if name == "QUICKSTART.md":
        for word in ("hello", "bonjour", "hola", "user-1=Alice", "k1=from kcat @",
                     "from-python 0 0 hello from kafka-python", "greetings"):
            assert word in out, word
    else:
        assert out.count("one") >= 1 and "three" in out
        assert "orders" in out
