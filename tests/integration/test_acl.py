"""ACLs as real clients see them: CreateAcls/DescribeAcls/DeleteAcls through
confluent-kafka's AdminClient, and their enforcement (deny by default with
the authorizer on, ALLOW and DENY, super.users, a cluster where an ACL made
at one node holds at another). The ACL admin API needs confluent-kafka 1.9+:
with older clients these tests are skipped (the new-clients run has them)."""

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka import admin as ck_admin

import harness
from test_cluster import cluster  # noqa: F401  (the 3-node fixture)

pytestmark = [pytest.mark.pyclients,
              pytest.mark.skipif(not hasattr(ck_admin, "AclBinding"),
                                 reason="this confluent-kafka has no ACL admin API")]

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
def test_super_user_and_allow_deny(broker_factory):
    b = broker_factory(settings=dict(AUTHZ, **{"super.users": "User:admin;" + ANON}))
    a = admin_of(b)
    create(a, [acl("BROKER", "kafka-cluster", "ALL", principal="User:admin")])
    make_topic(a, "t")
    assert produce_error(b, "t") is None
    assert describe(a)


# Restarted, a node keeps its ACLs (snapshot and log replay) and enforces them.
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
def test_acl_created_at_one_node_enforced_at_another(cluster):  # noqa: F811
    nodes = cluster(3, settings=dict(AUTHZ, **{"allow.everyone.if.no.acl.found": "true"}))
    make_topic(admin_of(nodes[0]), "shared")
    harness.wait_until(lambda: produce_error(nodes[2], "shared") is None, "produce at node 3", deadline_s=30)
    create(admin_of(nodes[1]), [acl("TOPIC", "shared", "WRITE", perm="DENY", principal="User:*")])
    harness.wait_until(lambda: produce_error(nodes[2], "shared") == KafkaError.TOPIC_AUTHORIZATION_FAILED,
                       "produce refused at node 3", deadline_s=30)
