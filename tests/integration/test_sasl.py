"""SASL authentication as real clients see it: SASL_PLAINTEXT and SASL_SSL
listeners, PLAIN and SCRAM-SHA-256/512 logins by kcat and confluent-kafka,
refusals (wrong password, a client that does not speak SASL), SCRAM users
made with AlterUserScramCredentials (at any node of a cluster) or at start-up
with --add-scram, and the login's principal in ACL checks.

The SCRAM admin API and the ACL admin API need a newer confluent-kafka than
Debian's: those tests are skipped with the old one (the newest-clients run
has them). The SASL_SSL test needs Debian's python3-cryptography for its
certificates (test_tls.Pki) and is skipped without it."""

import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka import admin as ck_admin

import compat
import harness
import kwire
from test_cluster import cluster  # noqa: F401  (the 3-node fixture)

pytestmark = pytest.mark.pyclients

CLIENT_TIMEOUT_S = 20.0
DEADLINE_S = 30.0
ADMIN_PW = "s3cret-admin"
MECHS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
AUTHZ = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"

has_scram_admin = pytest.mark.skipif(not hasattr(ck_admin.AdminClient, "alter_user_scram_credentials"),
                                     reason="this confluent-kafka has no SCRAM admin API")
has_acl_admin = pytest.mark.skipif(not hasattr(ck_admin, "AclBinding"),
                                   reason="this confluent-kafka has no ACL admin API")


def add_scram(user, pw):
    return ["--add-scram", "SCRAM-SHA-512=[name=%s,password=%s]" % (user, pw),
            "--add-scram", "SCRAM-SHA-256=[name=%s,password=%s]" % (user, pw)]


def sasl_broker(broker_factory, protocol="SASL_PLAINTEXT", settings=None, users=(("admin", ADMIN_PW),), **kw):
    """A broker with the harness's PLAINTEXT listener and a SASL one; returns (broker, sasl port)."""
    port = harness.free_port()
    s = {"listeners": "%s://127.0.0.1:%d" % (protocol, port)}
    s.update(settings or {})
    args = [a for u, p in users for a in add_scram(u, p)]
    b = broker_factory(settings=s, extra_args=args, **kw)
    for u, p in users:  # start-up users are created once the node leads its quorum
        harness.wait_until(lambda: login_error(port, "SCRAM-SHA-512", u, p) is None,
                           "start-up user %s" % u, DEADLINE_S, 0.2)
    return b, port


def sasl_conf(port, mech, user, pw, protocol="SASL_PLAINTEXT"):
    return {"bootstrap.servers": "127.0.0.1:%d" % port, "security.protocol": protocol,
            "sasl.mechanisms": mech, "sasl.username": user, "sasl.password": pw}


def kcat_sasl(mech, user, pw, protocol="SASL_PLAINTEXT"):
    return ["-X", "security.protocol=" + protocol, "-X", "sasl.mechanisms=" + mech,
            "-X", "sasl.username=" + user, "-X", "sasl.password=" + pw]


def login_error(port, mech, user, pw, extra=None):
    """Lists the cluster's topics as user; None when it worked, else the error text."""
    conf = dict(sasl_conf(port, mech, user, pw), **(extra or {}))
    errors = []
    conf["error_cb"] = lambda e: errors.append(e)
    try:
        ck_admin.AdminClient(conf).list_topics(timeout=8)
        return None
    except Exception as e:  # KafkaException: authentication failed or timed out
        return "%s %s" % (e, " ".join(map(str, errors)))


def produce(conf, topic, values):
    """Delivery errors (None for each record delivered)."""
    got = []
    p = Producer(dict(conf, **{"message.timeout.ms": 10000}))
    for v in values:
        p.produce(topic, v, on_delivery=lambda err, msg: got.append(err))
    p.flush(CLIENT_TIMEOUT_S)
    assert len(got) == len(values), got
    return got


def consume_all(conf, topic, n):
    c = Consumer(dict(conf, **{"group.id": "g-" + topic, "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    out = []
    try:
        harness.wait_until(lambda: (lambda m: out.append(m.value()) if m and not m.error() else None)(
            c.poll(0.5)) or len(out) >= n, "%d records" % n, DEADLINE_S, 0)
    finally:
        c.close()
    return out


# kcat produces with each mechanism over SASL_PLAINTEXT; confluent-kafka reads
# the records back with SCRAM-SHA-512, and the broker logs each login's principal.
def test_kcat_and_confluent_log_in_with_each_mechanism(broker_factory, kcat):
    b, port = sasl_broker(broker_factory)
    for mech in MECHS:
        r = subprocess.run([kcat, "-b", "127.0.0.1:%d" % port, *kcat_sasl(mech, "admin", ADMIN_PW),
                            "-P", "-t", "sasl-t"], input="via %s\n" % mech, capture_output=True, text=True,
                           timeout=CLIENT_TIMEOUT_S)
        assert r.returncode == 0, r.stderr
    got = consume_all(sasl_conf(port, "SCRAM-SHA-512", "admin", ADMIN_PW), "sasl-t", 3)
    assert sorted(got) == sorted(("via %s" % m).encode() for m in MECHS)
    log = b.log_text()
    for mech in MECHS:
        assert "principal=User:admin mechanism=%s" % mech in log


# A wrong password (and an unknown user) is refused with SASL_AUTHENTICATION_FAILED's
# generic message; the log says why without the password; others keep being served.
def test_wrong_password_is_refused_and_others_are_served(broker_factory, kcat):
    b, port = sasl_broker(broker_factory)
    for mech, user, pw in [(m, "admin", "not-the-pw") for m in MECHS] + [("SCRAM-SHA-256", "nobody", "x")]:
        r = harness.run_tool([kcat, "-b", "127.0.0.1:%d" % port, *kcat_sasl(mech, user, pw), "-L"],
                             timeout_s=CLIENT_TIMEOUT_S)
        assert r.returncode != 0
        assert "Authentication failed: invalid user name or password" in r.stderr, r.stderr
    assert login_error(port, "SCRAM-SHA-512", "admin", ADMIN_PW) is None
    assert produce(sasl_conf(port, "PLAIN", "admin", ADMIN_PW), "after-failures", [b"ok"]) == [None]
    # the broker's own lines (the harness heads the log with the command line)
    log = "\n".join(line for line in b.log_text().splitlines() if not line.startswith("----"))
    assert 'SASL login failed' in log and 'user="nobody"' in log
    assert "not-the-pw" not in log and ADMIN_PW not in log


# A client that does not speak SASL gets ApiVersions, and is disconnected at its next request.
def test_plaintext_client_on_a_sasl_port_is_disconnected(broker_factory):
    b, port = sasl_broker(broker_factory)
    with kwire.Conn("127.0.0.1", port) as c:
        assert kwire.api_versions(c, 0)["error_code"] == kwire.ERR_NONE
        with pytest.raises(kwire.WireError):
            kwire.metadata_v1(c)
    with kwire.Conn.to(b.bootstrap) as c:  # the PLAINTEXT listener is unaffected, and has no SASL
        assert kwire.metadata_v1(c)["brokers"]
        assert handshake_v1(c, "PLAIN") == 34  # ILLEGAL_SASL_STATE


def sasl_handshake_v0(conn, mech):
    w = kwire.Writer()
    w.string(mech)
    _, body = conn.request(17, 0, w.bytes())
    r = kwire.Reader(body)
    err = r.i16()
    return err, [r.string() for _ in range(r.i32())]


# SaslHandshake v0 (Kafka's first framing): the PLAIN token travels as a bare
# frame and is answered with an empty one; then requests are served. A wrong
# password closes the connection.
def test_handshake_v0_with_bare_tokens(broker_factory):
    _, port = sasl_broker(broker_factory)
    with kwire.Conn("127.0.0.1", port) as c:
        err, mechs = sasl_handshake_v0(c, "PLAIN")
        assert err == 0 and mechs == list(MECHS)
        c.send_frame(b"\0admin\0" + ADMIN_PW.encode())
        assert c.recv_frame() == b""
        assert kwire.metadata_v1(c)["brokers"]
    with kwire.Conn("127.0.0.1", port) as c:
        assert sasl_handshake_v0(c, "GSSAPI")[0] == 33  # UNSUPPORTED_SASL_MECHANISM
    with kwire.Conn("127.0.0.1", port) as c:
        assert sasl_handshake_v0(c, "PLAIN")[0] == 0
        c.send_frame(b"\0admin\0wrong")
        with pytest.raises(kwire.WireError):
            c.recv_frame()


def sasl_authenticate_v1(conn, token):
    w = kwire.Writer()
    w.i32(len(token))
    w.raw(token)
    _, body = conn.request(36, 1, w.bytes())
    r = kwire.Reader(body)
    err, msg = r.i16(), r.string()
    auth = r.take(r.i32())
    return err, msg, auth, r.i64()


def handshake_v1(conn, mech):
    w = kwire.Writer()
    w.string(mech)
    _, body = conn.request(17, 1, w.bytes())
    return kwire.Reader(body).i16()


# connections.max.reauth.ms (KIP-368): SaslAuthenticate v1 tells the session's
# lifetime; the connection is served until then, re-authentication (same user)
# extends it, and once it has passed the next request closes the connection.
def test_session_lifetime_and_reauthentication(broker_factory):
    lifetime_ms = 1500
    _, port = sasl_broker(broker_factory, settings={"connections.max.reauth.ms": str(lifetime_ms)},
                          users=(("admin", ADMIN_PW), ("eve", "pw-eve")))
    token = b"\0admin\0" + ADMIN_PW.encode()
    with kwire.Conn("127.0.0.1", port) as c:
        assert handshake_v1(c, "PLAIN") == 0
        err, _, _, life = sasl_authenticate_v1(c, token)
        assert (err, life) == (0, lifetime_ms)
        assert handshake_v1(c, "PLAIN") == 0  # re-authentication
        assert sasl_authenticate_v1(c, token)[0] == 0
        start = time.monotonic()
        assert kwire.metadata_v1(c)["brokers"]

        def closed():
            try:
                kwire.metadata_v1(c)
                return False
            except (kwire.WireError, OSError):
                return True
        harness.wait_until(closed, "the expired session's connection to close", DEADLINE_S, 0.2)
        assert time.monotonic() - start >= lifetime_ms / 1000.0 * 0.5
    with kwire.Conn("127.0.0.1", port) as c:  # another user cannot take over a session
        assert handshake_v1(c, "PLAIN") == 0
        assert sasl_authenticate_v1(c, token)[0] == 0
        assert handshake_v1(c, "PLAIN") == 0
        assert sasl_authenticate_v1(c, b"\0eve\0pw-eve")[0] == 58  # SASL_AUTHENTICATION_FAILED


# SASL_SSL with SCRAM-SHA-512: confluent-kafka produces and consumes over TLS.
def test_sasl_ssl_scram(broker_factory, tmp_path):
    pytest.importorskip("cryptography", reason="certificates need Debian's python3-cryptography")
    from test_tls import Pki
    d = tmp_path / "pki"
    d.mkdir()
    pki = Pki(d)
    b, port = harness_sasl_ssl(broker_factory, pki)
    conf = dict(sasl_conf(port, "SCRAM-SHA-512", "admin", ADMIN_PW, "SASL_SSL"),
                **{"ssl.ca.location": pki.path("ca.pem")})
    assert produce(conf, "over-tls", [b"a", b"b"]) == [None, None]
    assert consume_all(conf, "over-tls", 2) == [b"a", b"b"]
    assert "principal=User:admin mechanism=SCRAM-SHA-512" in b.log_text()


def harness_sasl_ssl(broker_factory, pki):
    port = harness.free_port()
    s = {"listeners": "SASL_SSL://127.0.0.1:%d" % port, "ssl.keystore.location": pki.path("keystore.pem")}
    b = broker_factory(settings=s, extra_args=add_scram("admin", ADMIN_PW))
    extra = {"ssl.ca.location": pki.path("ca.pem"), "security.protocol": "SASL_SSL"}
    harness.wait_until(lambda: login_error(port, "SCRAM-SHA-512", "admin", ADMIN_PW, extra) is None,
                       "the start-up user over SASL_SSL", DEADLINE_S, 0.2)
    return b, port


# Kafka's own tools: kafka-configs creates a SCRAM-SHA-256 user (AlterUserScramCredentials,
# 8192 iterations) and the Java console producer logs in as it with Kafka's SCRAM client.
def test_kafka_configs_user_and_java_client_login(broker_factory, tmp_path):
    from test_kafka_tools import CONFIGS, CONSOLE_PRODUCER, kafka_tool
    cp = compat.need(compat.TOOLS_CLASSPATH).read_text().strip()
    b, port = sasl_broker(broker_factory)
    out = kafka_tool(cp, CONFIGS, "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "users",
                     "--entity-name", "jane", "--add-config", "SCRAM-SHA-256=[iterations=8192,password=pw-jane]")
    assert "Completed updating config for user jane" in out
    props = tmp_path / "jane.properties"
    props.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"
                     "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                     'username="jane" password="pw-jane";\n')
    kafka_tool(cp, CONSOLE_PRODUCER, "--bootstrap-server", "127.0.0.1:%d" % port, "--topic", "from-java",
               "--producer.config", props, stdin="hello from java\n")
    assert consume_all(sasl_conf(port, "PLAIN", "jane", "pw-jane"), "from-java", 1) == [b"hello from java"]
    assert "principal=User:jane mechanism=SCRAM-SHA-256" in b.log_text()


def upsert(a, user, pw, mech="SCRAM_SHA_512"):
    info = ck_admin.ScramCredentialInfo(getattr(ck_admin.ScramMechanism, mech), 4096)
    fs = a.alter_user_scram_credentials([ck_admin.UserScramCredentialUpsertion(user, info, pw.encode())],
                                        request_timeout=CLIENT_TIMEOUT_S)
    for f in fs.values():
        f.result(timeout=CLIENT_TIMEOUT_S)


def delete(a, user, mech="SCRAM_SHA_512"):
    fs = a.alter_user_scram_credentials(
        [ck_admin.UserScramCredentialDeletion(user, getattr(ck_admin.ScramMechanism, mech))],
        request_timeout=CLIENT_TIMEOUT_S)
    for f in fs.values():
        f.result(timeout=CLIENT_TIMEOUT_S)


# AlterUserScramCredentials creates a user who can then log in (SCRAM and PLAIN);
# Describe lists its mechanism and iterations; deleting it refuses the next login.
@has_scram_admin
def test_admin_client_creates_and_deletes_a_user(broker_factory):
    b, port = sasl_broker(broker_factory)
    a = ck_admin.AdminClient({"bootstrap.servers": b.bootstrap})
    assert login_error(port, "SCRAM-SHA-512", "carol", "pw-carol") is not None
    upsert(a, "carol", "pw-carol")
    assert login_error(port, "SCRAM-SHA-512", "carol", "pw-carol") is None
    assert login_error(port, "PLAIN", "carol", "pw-carol") is None
    d = a.describe_user_scram_credentials(["carol"], request_timeout=CLIENT_TIMEOUT_S)
    (desc,) = [f.result(timeout=CLIENT_TIMEOUT_S) for f in d.values()]
    assert [(i.mechanism, i.iterations) for i in desc.scram_credential_infos] == \
        [(ck_admin.ScramMechanism.SCRAM_SHA_512, 4096)]
    delete(a, "carol")
    assert login_error(port, "SCRAM-SHA-512", "carol", "pw-carol") is not None
    with pytest.raises(Exception):
        delete(a, "carol")  # RESOURCE_NOT_FOUND


# A user created at one node (forwarded to the controller) logs in at every other node.
@has_scram_admin
def test_user_created_at_one_node_logs_in_at_another(cluster):
    ports = harness.free_ports(3)
    nodes = cluster(3, node_kwargs=lambda i: {
        "extra_args": ["--set", "listeners=SASL_PLAINTEXT://127.0.0.1:%d" % ports[i - 1]]})
    a = ck_admin.AdminClient({"bootstrap.servers": nodes[1].bootstrap})
    upsert(a, "dave", "pw-dave", "SCRAM_SHA_256")
    for p in (ports[0], ports[2]):
        harness.wait_until(lambda: login_error(p, "SCRAM-SHA-256", "dave", "pw-dave") is None,
                           "dave to log in at port %d" % p, DEADLINE_S, 0.2)


# --add-scram on every voter of a 3-node cluster: the leader creates the user
# once, and it logs in at every node.
def test_start_up_user_in_a_cluster(cluster):
    ports = harness.free_ports(3)
    cluster(3, node_kwargs=lambda i: {"extra_args": ["--set", "listeners=SASL_PLAINTEXT://127.0.0.1:%d" % ports[i - 1],
                                                      *add_scram("root", "pw-root")]})
    for p in ports:
        harness.wait_until(lambda: login_error(p, "SCRAM-SHA-512", "root", "pw-root") is None,
                           "root to log in at port %d" % p, DEADLINE_S, 0.2)


# A password changed after start-up is not reset when the node restarts with --add-scram.
@has_scram_admin
def test_start_up_user_does_not_reset_a_changed_password(broker_factory):
    b, port = sasl_broker(broker_factory)
    upsert(ck_admin.AdminClient({"bootstrap.servers": b.bootstrap}), "admin", "changed-pw")
    b.restart()
    harness.wait_until(lambda: login_error(port, "SCRAM-SHA-512", "admin", "changed-pw") is None,
                       "the changed password after restart", DEADLINE_S, 0.2)
    assert login_error(port, "SCRAM-SHA-512", "admin", ADMIN_PW) is not None


def acl_allow_write(principal, topic):
    return ck_admin.AclBinding(ck_admin.ResourceType.TOPIC, topic, ck_admin.ResourcePatternType.LITERAL,
                               principal, "*", ck_admin.AclOperation.WRITE, ck_admin.AclPermissionType.ALLOW)


# With the authorizer on, the SCRAM login's principal is what ACLs see: alice,
# allowed WRITE on the topic, produces; bob, with no ACL, is refused.
@has_scram_admin
@has_acl_admin
def test_principal_in_acl_checks(broker_factory):
    b, port = sasl_broker(broker_factory, settings={"authorizer.class.name": AUTHZ,
                                                    "super.users": "User:admin;User:ANONYMOUS"})
    a = ck_admin.AdminClient({"bootstrap.servers": b.bootstrap})
    upsert(a, "alice", "pw-alice")
    upsert(a, "bob", "pw-bob")
    a.create_topics([ck_admin.NewTopic("guarded", 1, 1)])["guarded"].result(timeout=CLIENT_TIMEOUT_S)
    for f in a.create_acls([acl_allow_write("User:alice", "guarded")],
                           request_timeout=CLIENT_TIMEOUT_S).values():
        f.result(timeout=CLIENT_TIMEOUT_S)
    assert produce(sasl_conf(port, "SCRAM-SHA-512", "alice", "pw-alice"), "guarded", [b"x"]) == [None]
    (err,) = produce(sasl_conf(port, "SCRAM-SHA-512", "bob", "pw-bob"), "guarded", [b"y"])
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err

