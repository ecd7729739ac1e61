"""compat - where the compatibility tier's pinned clients live.

tools/deps.sh test installs them (Maven artifacts, Go modules, a Python
virtualenv) into a cache outside the source tree and links them under
build/deps/. The tests only read from there, offline: nothing is downloaded
at test time.
"""

import os
from pathlib import Path

import pytest

import harness

DEPS = harness.REPO / "build" / "deps"
M2 = DEPS / "m2"
GOMOD = DEPS / "gomod"
VENV_PYTHON = DEPS / "venv" / "bin" / "python"
TOOLS_CLASSPATH = DEPS / "kafka-tools.classpath"


def need(path):
    """The installed thing at path, or a failed test that says how to get it."""
    if not Path(path).exists():
        pytest.fail("%s missing: run tools/deps.sh test" % path, pytrace=False)
    return path


def offline_env(**extra):
    """The environment for a client tier: no proxy downloads, our caches."""
    env = dict(os.environ)
    env.update(GOPROXY="off", GOFLAGS="-mod=readonly", GOMODCACHE=str(GOMOD), GOTOOLCHAIN="local")
    env.update({k: str(v) for k, v in extra.items()})
    return env
