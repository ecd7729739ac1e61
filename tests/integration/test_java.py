"""The Java client tier: tests/java (JUnit 5 under Maven, Apache Kafka's own
kafka-clients) against two Chronik brokers: a plain one (CHRONIK_BOOTSTRAP)
and a secured one, with a SASL_PLAINTEXT listener (CHRONIK_SASL_BOOTSTRAP),
SCRAM users admin (a super user) and alice, and an authorizer that denies
what no ACL allows (AclTest, SaslTest). Maven runs offline (-o) from the
repository tools/deps.sh filled. Every skip must be one of the named, known
ones."""

import re
import xml.etree.ElementTree as ET

from confluent_kafka.admin import AdminClient

import harness
import compat

JAVA_DIR = harness.REPO / "tests" / "java"
REPORTS = harness.REPO / "build" / "java" / "surefire-reports"
MVN_TIMEOUT_S = 420
AUTHZ = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
USERS = (("admin", "admin-secret"), ("alice", "alice-secret"))  # as in Chronik.java


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


def secured_broker(broker_factory):
    """The secured broker; returns its SASL_PLAINTEXT address once its users exist."""
    port = harness.free_port()
    args = []
    for user, pw in USERS:
        args += ["--add-scram", "SCRAM-SHA-512=[name=%s,password=%s]" % (user, pw)]
    broker_factory(name="secured", extra_args=args, settings={
        "listeners": "SASL_PLAINTEXT://127.0.0.1:%d" % port, "authorizer.class.name": AUTHZ,
        "super.users": "User:admin", "allow.everyone.if.no.acl.found": "false"})
    sasl = "127.0.0.1:%d" % port
    for user, pw in USERS:  # start-up users are created once the node leads its quorum
        harness.wait_until(lambda: scram_login_works(sasl, user, pw), "start-up user %s" % user, 30.0, 0.2)
    return sasl


def scram_login_works(bootstrap, user, pw):
    conf = {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": pw}
    try:
        AdminClient(conf).list_topics(timeout=5)
        return True
    except Exception:  # KafkaException: not yet there
        return False


def test_java_client(broker, broker_factory):
    # Producer, consumer groups, Admin API, ACLs and SASL of kafka-clients 4.x; see tests/java.
    compat.need(compat.M2)
    for old in REPORTS.glob("TEST-*.xml"):
        old.unlink()
    env = compat.offline_env(CHRONIK_BOOTSTRAP=broker.bootstrap, CHRONIK_SASL_BOOTSTRAP=secured_broker(broker_factory))
    r = harness.run_tool(["mvn", "-o", "-B", "-q", "-Dmaven.repo.local=%s" % compat.M2,
                          "-Dsurefire.printSummary=true", "test"],
                         timeout_s=MVN_TIMEOUT_S, cwd=JAVA_DIR, env=env)
    out = r.stdout + r.stderr
    tests, bad, skipped = surefire_results()
    print("java tier: %d tests, %d failed, skipped: %s" % (tests, bad, ", ".join(skipped) or "none"))
    assert r.returncode == 0 and bad == 0, "mvn test failed (exit %d):\n%s" % (
        r.returncode, re.sub(r"\x1b\[[0-9;]*m", "", out)[-20000:])
    assert tests >= 20, "too few Java tests ran (%d): is the tier wired?" % tests
    known = {"UnservedTest.consumerGroupProtocol"}
    assert set(skipped) <= known, "unexpected skips: %s" % sorted(set(skipped) - known)
