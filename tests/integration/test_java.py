"""The Java client tier: tests/java (JUnit 5 under Maven, Apache Kafka's own
kafka-clients) against one Chronik. Maven runs offline (-o) from the
repository tools/deps.sh filled; the broker's address goes in
CHRONIK_BOOTSTRAP. Every skip must be one of the named, known ones."""

import re
import xml.etree.ElementTree as ET

import harness
import compat

JAVA_DIR = harness.REPO / "tests" / "java"
REPORTS = harness.REPO / "build" / "java" / "surefire-reports"
MVN_TIMEOUT_S = 420


def surefire_results():
    """(tests, failures+errors, skipped names) over every report file."""
    tests = bad = 0
    skipped = []
    for f in sorted(REPORTS.glob("TEST-*.xml")):
        root = ET.parse(f).getroot()
        tests += int(root.get("tests"))
        bad += int(root.get("failures")) + int(root.get("errors"))
        for case in root.iter("testcase"):
            if case.find("skipped") is not None:
                skipped.append("%s.%s" % (case.get("classname").rsplit(".", 1)[-1], case.get("name")))
    return tests, bad, skipped


def test_java_client(broker):
    # Producer, consumer groups and Admin API of kafka-clients 4.x; see tests/java.
    compat.need(compat.M2)
    for old in REPORTS.glob("TEST-*.xml"):
        old.unlink()
    env = compat.offline_env(CHRONIK_BOOTSTRAP=broker.bootstrap)
    r = harness.run_tool(["mvn", "-o", "-B", "-q", "-Dmaven.repo.local=%s" % compat.M2,
                          "-Dsurefire.printSummary=true", "test"],
                         timeout_s=MVN_TIMEOUT_S, cwd=JAVA_DIR, env=env)
    out = r.stdout + r.stderr
    tests, bad, skipped = surefire_results()
    print("java tier: %d tests, %d failed, skipped: %s" % (tests, bad, ", ".join(skipped) or "none"))
    assert r.returncode == 0 and bad == 0, "mvn test failed (exit %d):\n%s" % (
        r.returncode, re.sub(r"\x1b\[[0-9;]*m", "", out)[-20000:])
    assert tests >= 20, "too few Java tests ran (%d): is the tier wired?" % tests
    known = {"UnservedTest.acls",
             "UnservedTest.saslPlain",
             "UnservedTest.consumerGroupProtocol", "UnservedTest.describeLogDirs"}
    assert set(skipped) <= known, "unexpected skips: %s" % sorted(set(skipped) - known)
