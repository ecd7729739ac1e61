"""The franz-go tier: tests/go (kgo and kadm, pinned by go.mod) against one
Chronik. The Go package is built offline from the module cache that
tools/deps.sh filled, then run with the broker's address in CHRONIK_BOOTSTRAP."""

import harness
import compat

GO_DIR = harness.REPO / "tests" / "go"


def test_franz_go(broker, tmp_path):
    # kgo produce/consume with every codec, a cooperative-sticky group, kadm admin calls.
    compat.need(compat.GOMOD)
    binary = tmp_path / "franz.test"
    env = compat.offline_env(CHRONIK_BOOTSTRAP=broker.bootstrap)
    built = harness.run_tool(["go", "test", "-c", "-o", str(binary), "."], timeout_s=300, cwd=GO_DIR, env=env)
    assert built.returncode == 0, "go test -c failed:\n%s%s" % (built.stdout, built.stderr)
    run = harness.run_tool([str(binary), "-test.v", "-test.timeout", "150s"], timeout_s=180,
                           cwd=tmp_path, env=env)
    print(run.stdout[-6000:])
    assert run.returncode == 0, "franz-go tests failed:\n%s\n%s" % (run.stdout[-15000:], run.stderr[-3000:])
    assert "--- PASS: TestAdmin" in run.stdout
