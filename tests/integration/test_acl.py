"""ACLs as real clients see them.

With confluent-kafka's AdminClient (1.9+: the ACL admin API; skipped with
older clients, the new-clients run has them): CreateAcls/DescribeAcls/
DeleteAcls and their enforcement (deny by default, ALLOW and DENY,
super.users, a cluster where an ACL made at one node holds at another).

With any client (ACLs made over the wire with kwire): principals from TLS
client certificates (alice and bob, User:CN=...,OU=eng,O=acme) producing,
consuming, in groups and transactions; host-based ACLs from a raw client
bound to 127.0.0.2; Metadata leaving out what one may not describe; and a
3-node cluster that denies by default and still replicates. Certificates
are made at test time with the openssl command."""

import ssl
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka import admin as ck_admin

import harness
import kwire
from test_cluster import cluster  # noqa: F401  (the 3-node fixture)

pytestmark = [pytest.mark.pyclients]
needs_acl_admin = pytest.mark.skipif(not hasattr(ck_admin, "AclBinding"),
                                     reason="this confluent-kafka has no ACL admin API")

CLIENT_TIMEOUT_S = 15.0
AUTHZ = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer"}
ANON = "User:ANONYMOUS"


def acl(rtype, name, op, perm="ALLOW", pattern="LITERAL", principal=ANON, host="*"):
    return ck_admin.AclBinding(getattr(ck_admin.ResourceType, rtype), name,
                               getattr(ck_admin.ResourcePatternType, pattern), principal, host,
                               getattr(ck_admin.AclOperation, op), getattr(ck_admin.AclPermissionType, perm))


def any_filter(rtype="ANY", name=None, pattern="ANY"):
    return ck_admin.AclBindingFilter(getattr(ck_admin.ResourceType, rtype), name,
                                     getattr(ck_admin.ResourcePatternType, pattern), None, None,
                                     ck_admin.AclOperation.ANY, ck_admin.AclPermissionType.ANY)


def admin_of(b):
    return ck_admin.AdminClient({"bootstrap.servers": b.bootstrap})


def create(a, bindings):
    for f in a.create_acls(bindings, request_timeout=CLIENT_TIMEOUT_S).values():
        f.result(timeout=CLIENT_TIMEOUT_S)


def describe(a, flt=None):
    return a.describe_acls(flt or any_filter(), request_timeout=CLIENT_TIMEOUT_S).result(timeout=CLIENT_TIMEOUT_S)


def produce_error(b, topic):
    """Produces one record; returns the delivery error code (None: delivered)."""
    got = []
    p = Producer({"bootstrap.servers": b.bootstrap, "message.timeout.ms": 8000})
    p.produce(topic, b"v", on_delivery=lambda err, msg: got.append(err))
    p.flush(CLIENT_TIMEOUT_S)
    assert got, "no delivery report"
    return got[0].code() if got[0] else None


def make_topic(a, name):
    fs = a.create_topics([ck_admin.NewTopic(name, 1, 1)], request_timeout=CLIENT_TIMEOUT_S)
    fs[name].result(timeout=CLIENT_TIMEOUT_S)


# Create, describe (all, by type, by MATCH), delete by filter: what was made is what is listed and removed.
@needs_acl_admin
def test_acl_round_trip(broker):
    a = admin_of(broker)
    made = [acl("TOPIC", "orders", "READ"),
            acl("TOPIC", "logs-", "WRITE", pattern="PREFIXED"),
            acl("TOPIC", "*", "DESCRIBE", perm="DENY", principal="User:*"),
            acl("GROUP", "g1", "READ")]
    create(a, made)
    create(a, made[:1])  # a duplicate is a success that adds nothing
    assert sorted(map(str, describe(a))) == sorted(map(str, made))
    assert len(describe(a, any_filter("TOPIC"))) == 3
    assert len(describe(a, any_filter("TOPIC", "logs-eu", "MATCH"))) == 2  # the prefix and "*"
    deleted = a.delete_acls([any_filter("TOPIC", pattern="PREFIXED")], request_timeout=CLIENT_TIMEOUT_S)
    (f,) = deleted.values()
    assert [str(x) for x in f.result(timeout=CLIENT_TIMEOUT_S)] == [str(made[1])]
    assert sorted(map(str, describe(a))) == sorted(map(str, [made[0], made[2], made[3]]))


# Authorizer on, no ACL: produce and admin calls are refused; an ALLOW lets produce in; a DENY wins.
@needs_acl_admin
def test_deny_by_default_then_allow_then_deny(broker_factory):
    b = broker_factory(settings=dict(AUTHZ, **{"super.users": "User:nobody"}))
    a = admin_of(b)
    with pytest.raises(KafkaException) as e:
        create(a, [acl("TOPIC", "t", "WRITE")])
    assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    with pytest.raises(KafkaException) as e:
        make_topic(a, "t")
    assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce_error(b, "t") == KafkaError.TOPIC_AUTHORIZATION_FAILED


# ANONYMOUS as a super user may do everything; with ALLOW CREATE+WRITE a plain user produces, a DENY stops it.
@needs_acl_admin
def test_super_user_and_allow_deny(broker_factory):
    b = broker_factory(settings=dict(AUTHZ, **{"super.users": "User:admin;" + ANON}))
    a = admin_of(b)
    create(a, [acl("BROKER", "kafka-cluster", "ALL", principal="User:admin")])
    make_topic(a, "t")
    assert produce_error(b, "t") is None
    assert describe(a)


# Restarted, a node keeps its ACLs (snapshot and log replay) and enforces them.
@needs_acl_admin
def test_acls_enforced_after_restart(broker_factory):
    b = broker_factory(settings=dict(AUTHZ, **{"allow.everyone.if.no.acl.found": "true"}))
    a = admin_of(b)
    make_topic(a, "t")
    create(a, [acl("TOPIC", "t", "WRITE", perm="DENY", principal="User:*")])
    assert produce_error(b, "t") == KafkaError.TOPIC_AUTHORIZATION_FAILED
    b.stop()
    b.start()
    assert produce_error(b, "t") == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert len(describe(admin_of(b))) == 1


# A 3-node cluster: an ACL created at one node holds at another (every node applies the metadata log).
@needs_acl_admin
def test_acl_created_at_one_node_enforced_at_another(cluster):  # noqa: F811
    nodes = cluster(3, settings=dict(AUTHZ, **{"allow.everyone.if.no.acl.found": "true"}))
    make_topic(admin_of(nodes[0]), "shared")
    harness.wait_until(lambda: produce_error(nodes[2], "shared") is None, "produce at node 3", deadline_s=30)
    create(admin_of(nodes[1]), [acl("TOPIC", "shared", "WRITE", perm="DENY", principal="User:*")])
    harness.wait_until(lambda: produce_error(nodes[2], "shared") == KafkaError.TOPIC_AUTHORIZATION_FAILED,
                       "produce refused at node 3", deadline_s=30)


# ---- ACLs over the wire, principals from TLS certificates ---------------------

RES = {"TOPIC": 2, "GROUP": 3, "CLUSTER": 4, "TRANSACTIONAL_ID": 5}
OPS = {"ALL": 2, "READ": 3, "WRITE": 4, "CREATE": 5, "DELETE": 6, "ALTER": 7, "DESCRIBE": 8,
       "DESCRIBE_CONFIGS": 10, "ALTER_CONFIGS": 11}
PERM = {"DENY": 2, "ALLOW": 3}
LITERAL = 3
API_CREATE_ACLS, API_CREATE_TOPICS = 30, 19
ERR_TOPIC_AUTHZ, ERR_GROUP_AUTHZ, ERR_TXN_AUTHZ = 29, 30, 53
ALICE = "User:CN=alice,OU=eng,O=acme"  # Kafka's default principal for the subject /O=acme/OU=eng/CN=alice
BOB = "User:CN=bob,OU=eng,O=acme"
ADMIN = "User:CN=admin,OU=ops,O=acme"


def wire_acl(rtype, name, op, perm="ALLOW", principal=ANON, host="*"):
    return (RES[rtype], name, principal, host, OPS[op], PERM[perm])


def wire_request(bootstrap, api_key, version, body, tls=None, source=None):
    """One request as ANONYMOUS over plaintext, or over TLS with tls (an
    ssl.SSLContext holding a client certificate), from address source if
    given; the response body's Reader."""
    with kwire.Conn.to(bootstrap, source=source) as c:
        if tls:
            c.sock = tls.wrap_socket(c.sock, server_hostname="localhost")
        _, body = c.request(api_key, version, body, timeout=CLIENT_TIMEOUT_S)
    return kwire.Reader(body)


def create_topic_wire(bootstrap, name, replicas, configs, tls):
    """CreateTopics v1: one partition on the brokers replicas (the first leads)."""
    w = kwire.Writer().i32(1).string(name).i32(-1).i16(-1).i32(1).i32(0).i32(len(replicas))
    for b in replicas:
        w.i32(b)
    w.i32(len(configs))
    for k, v in configs.items():
        w.string(k).string(v)
    r = wire_request(bootstrap, API_CREATE_TOPICS, 1, w.i32(int(CLIENT_TIMEOUT_S * 1000)).i8(0).bytes(), tls)
    assert r.array_len() == 1 and r.string() == name
    assert r.i16() == 0, r.string()


def create_wire(bootstrap, bindings, tls=None, expect=0):
    """CreateAcls v1 (as wire_request sends it); every result must be expect."""
    w = kwire.Writer().i32(len(bindings))
    for rtype, name, principal, host, op, perm in bindings:
        w.i8(rtype).string(name).i8(LITERAL).string(principal).string(host).i8(op).i8(perm)
    r = wire_request(bootstrap, API_CREATE_ACLS, 1, w.bytes(), tls)
    r.i32()  # throttle
    errors = []
    for _ in range(r.array_len()):
        errors.append(r.i16())
        r.string()  # the message
    assert errors == [expect] * len(bindings), errors


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=CLIENT_TIMEOUT_S)


class Pki:
    """A CA, a server certificate for localhost/127.0.0.1 (keystore.pem) and
    client certificates, made with the openssl command under d."""

    def __init__(self, d):
        self.dir = d
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", self.path("ca.key"), "-out", self.path("ca.pem"), "-days", "2",
                "-subj", "/CN=Chronik ACL Test CA", "-addext", "basicConstraints=critical,CA:TRUE")
        (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        self.issue("server", "/CN=localhost", self.path("server.ext"))
        (d / "keystore.pem").write_bytes(b"".join((d / f).read_bytes() for f in ("server.key", "server.pem", "ca.pem")))
        for name, subject in (("alice", "/O=acme/OU=eng/CN=alice"), ("bob", "/O=acme/OU=eng/CN=bob"),
                              ("admin", "/O=acme/OU=ops/CN=admin")):
            self.issue(name, subject)

    def path(self, name):
        return str(self.dir / name)

    def issue(self, name, subject, extfile=None):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", self.path(name + ".key"), "-out", self.path(name + ".csr"), "-subj", subject)
        openssl("x509", "-req", "-in", self.path(name + ".csr"), "-CA", self.path("ca.pem"),
                "-CAkey", self.path("ca.key"), "-set_serial", str(abs(hash(name)) % 10**9), "-days", "2",
                "-out", self.path(name + ".pem"), *(["-extfile", extfile] if extfile else []))

    def context(self, who):
        ctx = ssl.create_default_context(cafile=self.path("ca.pem"))
        ctx.load_cert_chain(self.path(who + ".pem"), self.path(who + ".key"))
        return ctx

    def client(self, who, bootstrap, **extra):
        conf = {"bootstrap.servers": bootstrap, "security.protocol": "SSL", "ssl.ca.location": self.path("ca.pem"),
                "ssl.certificate.location": self.path(who + ".pem"), "ssl.key.location": self.path(who + ".key")}
        conf.update(extra)
        return conf


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("acl-pki")
    return Pki(d)


def ssl_settings(pki, port, **more):
    s = dict(AUTHZ, **{"listeners": "SSL://127.0.0.1:%d" % port, "ssl.keystore.location": pki.path("keystore.pem"),
                       "ssl.truststore.location": pki.path("ca.pem"), "ssl.client.auth": "required"})
    s.update(more)
    return s


def ssl_broker(broker_factory, pki, **more):
    """Authorizer on, ANONYMOUS (the plaintext listener) a super user, an SSL listener
    requiring client certificates; returns (broker, SSL bootstrap)."""
    port = harness.free_port()
    b = broker_factory(settings=ssl_settings(pki, port, **dict({"super.users": ANON}, **more)))
    return b, "127.0.0.1:%d" % port


def ssl_broker_with_acls(broker_factory, pki, bindings):
    """ssl_broker with topic t and the ACLs bindings (made over the wire)."""
    b, ssl_bootstrap = ssl_broker(broker_factory, pki)
    make_topic_plain(b, "t")
    create_wire(b.bootstrap, bindings)
    return b, ssl_bootstrap


def produce_as(conf, topic, **extra):
    """One record with conf's identity; the delivery error code (None: delivered)."""
    got = []
    p = Producer(dict(conf, **{"message.timeout.ms": 8000}, **extra))
    p.produce(topic, b"v", on_delivery=lambda err, msg: got.append(err))
    p.flush(CLIENT_TIMEOUT_S)
    assert got, "no delivery report"
    return got[0].code() if got[0] else None


def consume_as(conf, topic, group):
    """Reads topic from the start in group; returns ("ok", value) or ("error", code)."""
    c = Consumer(dict(conf, **{"group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False}))
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                return ("error", m.error().code())
            c.commit(m, asynchronous=False)
            return ("ok", m.value())
        return ("timeout", None)
    finally:
        c.close()


def make_topic_plain(b, name, partitions=1, replicas=1, config=None):
    a = ck_admin.AdminClient({"bootstrap.servers": b.bootstrap})
    fs = a.create_topics([ck_admin.NewTopic(name, partitions, replicas, config=config or {})],
                         request_timeout=CLIENT_TIMEOUT_S)
    fs[name].result(timeout=CLIENT_TIMEOUT_S)


# alice may write and read t and read group g; bob has no ACL; a DENY on group g2 for alice wins.
def test_tls_principals_produce_consume_group(broker_factory, pki):
    _, ssl_bootstrap = ssl_broker_with_acls(broker_factory, pki, [
        wire_acl("TOPIC", "t", "WRITE", principal=ALICE),
        wire_acl("TOPIC", "t", "READ", principal=ALICE),
        wire_acl("GROUP", "g", "READ", principal=ALICE),
        wire_acl("GROUP", "*", "READ", principal=ALICE),
        wire_acl("GROUP", "g2", "READ", perm="DENY", principal=ALICE)])
    alice, bob = pki.client("alice", ssl_bootstrap), pki.client("bob", ssl_bootstrap)
    assert produce_as(alice, "t") is None
    assert produce_as(bob, "t") == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert consume_as(alice, "t", "g") == ("ok", b"v")
    assert consume_as(alice, "t", "g2") == ("error", KafkaError.GROUP_AUTHORIZATION_FAILED)
    assert consume_as(bob, "t", "g")[0] == "error"


# ssl.client.auth=requested: a client without a certificate is User:ANONYMOUS (a super user here), bob is bob.
def test_tls_without_certificate_is_anonymous(broker_factory, pki):
    b, ssl_bootstrap = ssl_broker(broker_factory, pki, **{"ssl.client.auth": "requested"})
    make_topic_plain(b, "t")
    no_cert = {"bootstrap.servers": ssl_bootstrap, "security.protocol": "SSL", "ssl.ca.location": pki.path("ca.pem")}
    assert produce_as(no_cert, "t") is None
    assert produce_as(pki.client("bob", ssl_bootstrap), "t") == KafkaError.TOPIC_AUTHORIZATION_FAILED


# ssl.principal.mapping.rules: eng's certificates map to their upper-cased CN; any other is refused
# (its connection closed after its first request), as no rule maps it.
def test_principal_mapping_rules(broker_factory, pki):
    b, ssl_bootstrap = ssl_broker(broker_factory, pki, **{
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]*),OU=eng,O=acme$/$1/U"})
    make_topic_plain(b, "t")
    create_wire(b.bootstrap, [wire_acl("TOPIC", "t", "WRITE", principal="User:ALICE")])
    assert produce_as(pki.client("alice", ssl_bootstrap), "t") is None
    assert produce_as(pki.client("bob", ssl_bootstrap), "t") == KafkaError.TOPIC_AUTHORIZATION_FAILED
    with pytest.raises(kwire.WireError):
        wire_request(ssl_bootstrap, kwire.API_METADATA, 1, kwire.metadata_v1_body(), pki.context("admin"))


# Committed offsets: OffsetFetch and OffsetCommit need DESCRIBE/READ on the topic besides the group.
def test_offsets_need_topic_access(broker_factory, pki):
    _, ssl_bootstrap = ssl_broker_with_acls(broker_factory, pki, [
        wire_acl("TOPIC", "t", "ALL", principal=ALICE),
        wire_acl("GROUP", "g", "READ", principal="User:*")])
    alice, bob = pki.client("alice", ssl_bootstrap), pki.client("bob", ssl_bootstrap)
    assert produce_as(alice, "t") is None
    assert consume_as(alice, "t", "g") == ("ok", b"v")
    tp = [TopicPartition("t", 0)]
    for who, expect in ((alice, None), (bob, KafkaError.TOPIC_AUTHORIZATION_FAILED)):
        c = Consumer(dict(who, **{"group.id": "g", "enable.auto.commit": False}))
        try:
            if expect is None:
                (got,) = c.committed(tp, timeout=CLIENT_TIMEOUT_S)
                assert got.error is None and got.offset == 1
            else:
                with pytest.raises(KafkaException) as e:
                    c.commit(offsets=[TopicPartition("t", 0, 0)], asynchronous=False)
                assert e.value.args[0].code() == expect
                try:
                    (got,) = c.committed(tp, timeout=CLIENT_TIMEOUT_S)
                    code = got.error.code() if got.error else None
                except KafkaException as ke:
                    code = ke.args[0].code()
                assert code == expect
        finally:
            c.close()
    assert all_committed(ssl_bootstrap, pki.context("alice"), "g") == ["t"]
    assert all_committed(ssl_bootstrap, pki.context("bob"), "g") == []  # t is left out


def all_committed(bootstrap, tls, group):
    """OffsetFetch v2 with null topics (every committed offset): the topics answered."""
    r = wire_request(bootstrap, 9, 2, kwire.Writer().string(group).i32(-1).bytes(), tls)  # no throttle time in v2
    topics = []
    for _ in range(r.array_len()):
        topics.append(r.string())
        for _ in range(r.array_len()):
            r.i32(), r.i64(), r.string(), r.i16()
    assert r.i16() == 0
    return topics


# Transactional ids: alice may use tx-ok (and group g), not tx-no; sending offsets for a group she may not read fails.
def test_transactional_ids_and_groups(broker_factory, pki):
    _, ssl_bootstrap = ssl_broker_with_acls(broker_factory, pki, [
        wire_acl("TOPIC", "t", "ALL", principal=ALICE),
        wire_acl("TRANSACTIONAL_ID", "tx-ok", "WRITE", principal=ALICE),
        wire_acl("GROUP", "g", "READ", principal=ALICE)])
    alice = pki.client("alice", ssl_bootstrap)
    p = Producer(dict(alice, **{"transactional.id": "tx-no", "transaction.timeout.ms": 10000}))
    with pytest.raises(KafkaException) as e:
        p.init_transactions(CLIENT_TIMEOUT_S)
    assert e.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    p = Producer(dict(alice, **{"transactional.id": "tx-ok", "transaction.timeout.ms": 10000}))
    p.init_transactions(CLIENT_TIMEOUT_S)
    p.begin_transaction()
    p.produce("t", b"in-txn")
    meta = Consumer(dict(alice, **{"group.id": "g"})).consumer_group_metadata()
    p.send_offsets_to_transaction([TopicPartition("t", 0, 0)], meta, CLIENT_TIMEOUT_S)
    p.commit_transaction(CLIENT_TIMEOUT_S)
    p.begin_transaction()
    denied = Consumer(dict(alice, **{"group.id": "g-no"})).consumer_group_metadata()
    with pytest.raises(KafkaException) as e:
        p.send_offsets_to_transaction([TopicPartition("t", 0, 0)], denied, CLIENT_TIMEOUT_S)
    assert e.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED


# Admin calls on a topic: CreatePartitions needs ALTER, DescribeConfigs DESCRIBE_CONFIGS.
def test_topic_admin_calls(broker_factory, pki):
    b, ssl_bootstrap = ssl_broker_with_acls(broker_factory, pki, [
        wire_acl("TOPIC", "t", "ALTER", principal=ALICE),
        wire_acl("TOPIC", "t", "DESCRIBE_CONFIGS", principal=ALICE)])
    for who, code in (("bob", KafkaError.TOPIC_AUTHORIZATION_FAILED), ("alice", None)):
        a = ck_admin.AdminClient(pki.client(who, ssl_bootstrap))
        res = ck_admin.ConfigResource(ck_admin.ConfigResource.Type.TOPIC, "t")
        futures = [a.create_partitions([ck_admin.NewPartitions("t", 2 if code is None else 3)],
                                       request_timeout=CLIENT_TIMEOUT_S)["t"],
                   a.describe_configs([res], request_timeout=CLIENT_TIMEOUT_S)[res]]
        for f in futures:
            if code is None:
                f.result(timeout=CLIENT_TIMEOUT_S)
            else:
                with pytest.raises(KafkaException) as e:
                    f.result(timeout=CLIENT_TIMEOUT_S)
                assert e.value.args[0].code() == code
    md = ck_admin.AdminClient({"bootstrap.servers": b.bootstrap}).list_topics("t", timeout=CLIENT_TIMEOUT_S)
    assert len(md.topics["t"].partitions) == 2


def admin_api_errors(bootstrap, tls):
    """From 127.0.0.2 (not a broker's address, so no CLUSTER_ACTION by address), the errors of:
    DeleteRecords t/0, OffsetForLeaderEpoch t/0, DescribeConfigs of broker 1 and of topic t,
    ElectLeaders t/0 and ListPartitionReassignments (all)."""
    def ask(api_key, version, body):
        return wire_request(bootstrap, api_key, version, body, tls, source="127.0.0.2")
    out = {}
    r = ask(21, 1, kwire.Writer().i32(1).string("t").i32(1).i32(0).i64(0).i32(5000).bytes())
    r.i32(), r.array_len(), r.string(), r.array_len(), r.i32(), r.i64()
    out["DeleteRecords"] = r.i16()
    r = ask(23, 2, kwire.Writer().i32(1).string("t").i32(1).i32(0).i32(-1).i32(0).bytes())
    r.i32(), r.array_len(), r.string(), r.array_len()
    out["OffsetForLeaderEpoch"] = r.i16()
    for rtype, name in ((4, "1"), (2, "t")):
        r = ask(32, 1, kwire.Writer().i32(1).i8(rtype).string(name).i32(-1).i8(0).bytes())
        r.i32(), r.array_len()
        out["DescribeConfigs %s" % ("broker" if rtype == 4 else "topic")] = r.i16()
    r = ask(43, 1, kwire.Writer().i8(0).i32(1).string("t").i32(1).i32(0).i32(5000).bytes())
    r.i32()
    out["ElectLeaders"] = r.i16()
    r = ask(46, 0, kwire.Writer().i32(5000).uvarint(0).tags().bytes())
    r.i32()
    out["ListPartitionReassignments"] = r.i16()
    return out


# Cluster and topic admin APIs: bob (no ACL) is refused each; alice with DELETE and DESCRIBE on t and
# ALTER, DESCRIBE and DESCRIBE_CONFIGS on the cluster passes the checks.
def test_admin_apis_need_acls(broker_factory, pki):
    _, ssl_bootstrap = ssl_broker_with_acls(broker_factory, pki, [
        wire_acl("TOPIC", "t", "DELETE", principal=ALICE),
        wire_acl("TOPIC", "t", "DESCRIBE_CONFIGS", principal=ALICE),
        wire_acl("CLUSTER", "kafka-cluster", "ALTER", principal=ALICE),
        wire_acl("CLUSTER", "kafka-cluster", "DESCRIBE_CONFIGS", principal=ALICE)])
    topic, cluster_ = ERR_TOPIC_AUTHZ, KafkaError.CLUSTER_AUTHORIZATION_FAILED
    assert admin_api_errors(ssl_bootstrap, pki.context("bob")) == {
        "DeleteRecords": topic, "OffsetForLeaderEpoch": topic, "DescribeConfigs broker": cluster_,
        "DescribeConfigs topic": topic, "ElectLeaders": cluster_, "ListPartitionReassignments": cluster_}
    got = admin_api_errors(ssl_bootstrap, pki.context("alice"))
    assert got == {"DeleteRecords": 0, "OffsetForLeaderEpoch": 0, "DescribeConfigs broker": 0,
                   "DescribeConfigs topic": 0, "ElectLeaders": got["ElectLeaders"],
                   "ListPartitionReassignments": 0}
    assert got["ElectLeaders"] != cluster_


# Host-based ACLs and Metadata filtering: DESCRIBE on t is allowed from 127.0.0.1 only, "hidden" is denied to all.
def test_host_acls_and_metadata_filtering(broker_factory):
    b = broker_factory(settings=dict(AUTHZ, **{"allow.everyone.if.no.acl.found": "true"}))
    for name in ("t", "hidden", "open"):
        make_topic_plain(b, name)
    create_wire(b.bootstrap, [wire_acl("TOPIC", "t", "DESCRIBE", host="127.0.0.1"),
        wire_acl("TOPIC", "hidden", "DESCRIBE", perm="DENY", principal="User:*")])

    def seen(source, topics=None):
        with kwire.Conn.to(b.bootstrap, source=source) as c:
            md = kwire.metadata_v1(c, topics, timeout=CLIENT_TIMEOUT_S)
        return {t["name"]: t["error_code"] for t in md["topics"]}

    assert seen("127.0.0.1") == {"t": 0, "open": 0}
    assert seen("127.0.0.2") == {"open": 0}
    assert seen("127.0.0.2", ["t", "hidden"]) == {"t": ERR_TOPIC_AUTHZ, "hidden": ERR_TOPIC_AUTHZ}
    assert seen("127.0.0.1", ["t"]) == {"t": 0}


# Deny by default on 3 nodes, admin the only super user (over SSL): followers still fetch (acks=all with
# min.insync.replicas=3 completes), and alice's ACL created at node 2 lets her produce at node 1. Clients
# speak SSL to node 1 alone (it leads r3): other nodes register their PLAINTEXT endpoint only.
def test_cluster_deny_by_default_replicates(cluster, pki):  # noqa: F811
    ports = harness.free_ports(3)
    settings = dict(AUTHZ, **{"super.users": ADMIN, "allow.everyone.if.no.acl.found": "false"})
    nodes = cluster(3, settings=settings,
                    node_kwargs=lambda i: {"settings": ssl_settings(pki, ports[i - 1])})
    ssl_at = ["127.0.0.1:%d" % p for p in ports]
    admin = pki.context("admin")
    create_topic_wire(ssl_at[0], "r3", [1, 2, 3], {"min.insync.replicas": "3"}, admin)
    harness.wait_until(lambda: produce_as(pki.client("admin", ssl_at[0]), "r3", acks="all") is None,
                       "acks=all produce by the super user", deadline_s=30)
    assert produce_as(pki.client("alice", ssl_at[0]), "r3") == KafkaError.TOPIC_AUTHORIZATION_FAILED
    grant = [wire_acl("TOPIC", "r3", "WRITE", principal=ALICE)]
    create_wire(nodes[1].bootstrap, grant, expect=KafkaError.CLUSTER_AUTHORIZATION_FAILED)  # ANONYMOUS may not
    create_wire(ssl_at[1], grant, tls=admin)
    harness.wait_until(lambda: produce_as(pki.client("alice", ssl_at[0]), "r3", acks="all") is None,
                       "alice's produce at node 1", deadline_s=30)
