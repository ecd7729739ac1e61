"""Fixtures shared by the integration tests.

  broker          one started broker (see harness.Broker), stopped and checked
                  (exit 0, no sanitizer report) at teardown
  broker_factory  make(name=..., node_id=..., settings={...}, start=True,
                  preexec_fn=..., binary=..., host=...) for
                  tests that need several brokers or control over start-up;
                  every broker it made is stopped and checked at teardown
  kcat            path of the kcat binary (the test fails without one)

Tests marked pyclients drive confluent-kafka or kafka-python; they run once
with Debian's (old) clients and once more, with `-m pyclients`, under the
virtualenv of the newest ones (tools/run-integration.sh --new-python-clients).

When a test fails, the tail of every broker's stderr is attached to its report.
"""

import shutil

import pytest

import harness


def pytest_configure(config):
    config.addinivalue_line("markers", "pyclients: drives confluent-kafka or kafka-python; "
                            "tools/run-integration.sh --new-python-clients repeats these with the newest ones")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when == "call":  # setup/teardown errors carry the tail themselves
        for b in getattr(item, "_brokers", []):
            rep.sections.append(("%s stderr" % b.name, b.log_tail()))


@pytest.fixture
def broker_factory(request, tmp_path):
    made = []
    request.node._brokers = made

    def make(name=None, node_id=1, settings=None, extra_args=(), start=True, preexec_fn=None,
             binary=None, host="127.0.0.1", ssl_context=None):
        b = harness.Broker(tmp_path, name=name or "broker%d" % (len(made) + 1),
                           node_id=node_id, settings=settings, extra_args=extra_args,
                           preexec_fn=preexec_fn, binary=binary, host=host, ssl_context=ssl_context)
        made.append(b)
        return b.start() if start else b

    yield make

    failures = []
    for b in made:
        try:
            b.stop()
        except AssertionError as e:
            failures.append(str(e))
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


@pytest.fixture
def broker(broker_factory):
    return broker_factory(name="broker")


@pytest.fixture(scope="session")
def kcat():
    path = shutil.which("kcat") or shutil.which("kafkacat")
    if path is None:
        pytest.fail("kcat not installed: run tools/deps.sh test", pytrace=False)
    return path
