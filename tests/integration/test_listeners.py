"""Every client listener of every broker: a cluster whose nodes have an SSL
listener beside PLAINTEXT registers both, and each client is told the
brokers' addresses on the listener it connected on (Metadata,
DescribeCluster, FindCoordinator), as Kafka does (KIP-103). Brokers talk to
each other on the inter-broker (PLAINTEXT) listener whatever the clients
use. A broker without the client's listener is left out, and a partition it
leads has no leader on that listener (LISTENER_NOT_FOUND from Metadata v6).

Certificates come from test_tls's Pki (made at test time)."""

import json

import pytest
pytest.importorskip("cryptography", reason="TLS tests run on Debian's Python (python3-cryptography)")
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from kafka import KafkaClient  # noqa: E402
from kafka.protocol.metadata import MetadataRequest  # noqa: E402

import harness  # noqa: E402
import kwire  # noqa: E402
from test_cluster import cluster, status, wait_for  # noqa: E402,F401 (cluster: a fixture)
from test_tls import client_ctx, pki, tls_conn  # noqa: E402,F401 (pki: a fixture)

TIMEOUT_S = 30.0
MESSAGES = 20           # per partition
ERR_LEADER_NOT_AVAILABLE = 5
ERR_COORDINATOR_NOT_AVAILABLE = 15
ERR_LISTENER_NOT_FOUND = 72
API_METADATA, API_FIND_COORDINATOR, API_DESCRIBE_CLUSTER = 3, 10, 60


def ssl_settings(pki):
    return {"ssl.keystore.location": pki.path("keystore.pem"), "ssl.truststore.location": pki.path("ca.pem"),
            "ssl.client.auth": "none"}


def ssl_cluster(cluster, pki, n, with_ssl):
    """n nodes; node i (1-based) has an SSL listener when with_ssl(i).
    Returns (nodes, {node id: SSL port})."""
    ssl_ports = dict(zip(range(1, n + 1), harness.free_ports(n)))

    def node_kwargs(i):
        return {"settings": {"listeners": "SSL://127.0.0.1:%d" % ssl_ports[i]}} if with_ssl(i) else {}
    nodes = cluster(n, settings=ssl_settings(pki), node_kwargs=node_kwargs)
    return nodes, {i: p for i, p in ssl_ports.items() if with_ssl(i)}


def conn(node, ssl_port=None, pki=None):
    """A kwire connection to node's PLAINTEXT listener, or its SSL one."""
    if ssl_port is None:
        return kwire.Conn.to(node.bootstrap)
    return tls_conn(ssl_port, client_ctx(pki))


def ssl_conf(pki, port):
    return {"bootstrap.servers": "127.0.0.1:%d" % port, "security.protocol": "SSL",
            "ssl.ca.location": pki.path("ca.pem")}


# ---- raw requests ----------------------------------------------------------------

def metadata_v6(c, topics=None):
    """Metadata v6 (not flexible): brokers, controller, topics with partitions."""
    w = kwire.Writer()
    if topics is None:
        w.i32(-1)
    else:
        w.i32(len(topics))
        for t in topics:
            w.string(t)
    _, body = c.request(API_METADATA, 6, w.i8(0).bytes())
    r = kwire.Reader(body)
    r.i32()  # throttle
    brokers = [(r.i32(), r.string(), r.i32(), r.string()) for _ in range(r.array_len() or 0)]
    out = {"brokers": sorted(brokers), "cluster_id": r.string(), "controller_id": r.i32(), "topics": {}}
    for _ in range(r.array_len() or 0):
        err, name, _internal = r.i16(), r.string(), r.i8()
        parts = {}
        for _ in range(r.array_len() or 0):
            p = {"error_code": r.i16()}
            index = r.i32()
            p["leader_id"] = r.i32()
            for k in ("replica_nodes", "isr_nodes", "offline_replicas"):
                p[k] = [r.i32() for _ in range(r.array_len() or 0)]
            parts[index] = p
        out["topics"][name] = (err, parts)
    assert r.left() == 0
    return out


def describe_cluster_v0(c):
    """DescribeCluster v0 (flexible): (error, sorted [(id, host, port)])."""
    _, body = c.request(API_DESCRIBE_CLUSTER, 0, kwire.Writer().i8(0).tags().bytes())
    r = kwire.Reader(body)
    r.i32()
    err = r.i16()
    r.compact_string(), r.compact_string(), r.i32()  # message, cluster id, controller
    brokers = []
    for _ in range(r.compact_array_len() or 0):
        brokers.append((r.i32(), r.compact_string(), r.i32()))
        r.compact_string()
        r.tags()
    return err, sorted(brokers)


def find_coordinator_v0(c, group):
    """FindCoordinator v0 for a group: (error, node, host, port)."""
    _, body = c.request(API_FIND_COORDINATOR, 0, kwire.Writer().string(group).bytes())
    r = kwire.Reader(body)
    return r.i16(), r.i32(), r.string(), r.i32()


def brokers_v1(c):
    return sorted((b["node_id"], b["host"], b["port"]) for b in kwire.metadata_v1(c, [])["brokers"])


# ---- a 3-node cluster, every node with PLAINTEXT and SSL ------------------------------

def create_spread_topic(pki, ssl_port, topic):
    """Three partitions, partition p led by node p + 1, created over SSL."""
    admin = AdminClient(ssl_conf(pki, ssl_port))
    fs = admin.create_topics([NewTopic(topic, 3, replica_assignment=[[1, 2, 3], [2, 3, 1], [3, 1, 2]])],
                             request_timeout=TIMEOUT_S)
    fs[topic].result(timeout=TIMEOUT_S)


def leaders_of(conf, topic):
    c = Consumer(dict(conf, **{"group.id": "probe"}))
    try:
        t = c.list_topics(topic, timeout=10).topics.get(topic)
    finally:
        c.close()
    return {p: t.partitions[p].leader for p in t.partitions} if t and not t.error else {}


def cluster_brokers(conf):
    """{id: (host, port)} as a confluent-kafka client on conf's listener is told."""
    c = Consumer(dict(conf, **{"group.id": "probe"}))
    try:
        md = c.list_topics(timeout=10)
        return {b.id: (b.host, b.port) for b in md.brokers.values()}
    finally:
        c.close()


def produce_each_partition(conf, topic):
    errors, acked = [], []
    p = Producer(dict(conf, **{"acks": "all", "message.timeout.ms": int(TIMEOUT_S * 1000)}))

    def done(err, msg):
        (errors if err else acked).append(err or (msg.partition(), msg.value()))
    for part in range(3):
        for i in range(MESSAGES):
            p.produce(topic, value=b"p%d-m%d" % (part, i), partition=part, on_delivery=done)
    assert p.flush(TIMEOUT_S) == 0
    assert not errors, errors
    return sorted(acked)


def consume_all(conf, topic, group):
    c = Consumer(dict(conf, **{"group.id": group, "auto.offset.reset": "earliest",
                               "enable.auto.commit": False}))
    got = []
    try:
        c.subscribe([topic])
        harness.wait_until(lambda: got.extend(m_ok(c.consume(num_messages=100, timeout=0.5))) or
                           len(got) >= 3 * MESSAGES, "every message consumed over SSL", TIMEOUT_S)
        c.commit(asynchronous=False)  # the group coordinator answers on the SSL listener too
        committed = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
        assert [tp.offset for tp in committed] == [MESSAGES] * 3
    finally:
        c.close()
    return sorted(got)


def m_ok(msgs):
    out = []
    for m in msgs:
        assert not m.error(), m.error()
        out.append((m.partition(), m.value()))
    return out


def kafka_python_metadata(bootstrap, **security):
    """Metadata v5 from kafka-python's own client on one listener."""
    client = KafkaClient(bootstrap_servers=bootstrap, api_version=(2, 5, 0), request_timeout_ms=10000,
                         **security)
    try:
        node = client.least_loaded_node()
        harness.wait_until(lambda: client.ready(node) or client.poll(timeout_ms=100) and False,
                           "kafka-python connected to %s" % bootstrap, TIMEOUT_S)
        f = client.send(node, MetadataRequest[5](topics=None, allow_auto_topic_creation=False))
        client.poll(future=f, timeout_ms=int(TIMEOUT_S * 1000))
        assert f.succeeded(), f.exception
        return f.value
    finally:
        client.close()


def check_kafka_python_metadata(resp, want_brokers, topic, controller_id):
    assert resp.throttle_time_ms == 0
    assert sorted(resp.brokers) == [(i, "127.0.0.1", port, None) for i, port in sorted(want_brokers.items())]
    assert resp.controller_id == controller_id
    assert resp.cluster_id
    topics = {t[1]: t for t in resp.topics}
    err, name, internal, parts = topics[topic]
    assert (err, name, internal) == (0, topic, False)
    assert len(parts) == 3
    for p_err, index, leader, replicas, isr, offline in sorted(parts, key=lambda p: p[1]):
        want_replicas = [[1, 2, 3], [2, 3, 1], [3, 1, 2]][index]
        assert (p_err, leader, list(replicas), list(offline)) == (0, index + 1, want_replicas, [])
        assert sorted(isr) == [1, 2, 3]


# Three nodes with PLAINTEXT and SSL: an SSL client bootstrapped at node 1
# is told all three brokers with their SSL ports, creates a topic with one
# partition led by each node, produces to every partition (acks=all: the
# followers fetch from each leader over the inter-broker listener) and
# consumes everything back in a group; a PLAINTEXT client is told the
# PLAINTEXT ports; kafka-python's Metadata on each listener is right field
# by field; DescribeCluster and FindCoordinator answer per listener too;
# /status and `chronik cluster status --json` list both endpoints of each.
def test_ssl_and_plaintext_clients_see_their_own_listener(cluster, pki):
    nodes, ssl_ports = ssl_cluster(cluster, pki, 3, lambda i: True)
    plain_ports = {b.node_id: b.port for b in nodes}
    first = nodes[0]
    ssl = ssl_conf(pki, ssl_ports[first.node_id])
    plain = {"bootstrap.servers": first.bootstrap}
    want_ssl = {i: ("127.0.0.1", p) for i, p in ssl_ports.items()}
    want_plain = {i: ("127.0.0.1", p) for i, p in plain_ports.items()}
    wait_for(lambda: cluster_brokers(ssl) == want_ssl, "the SSL client to see every broker's SSL port")
    assert cluster_brokers(plain) == want_plain

    topic = "over-ssl"
    create_spread_topic(pki, ssl_ports[first.node_id], topic)
    wait_for(lambda: leaders_of(ssl, topic) == {0: 1, 1: 2, 2: 3}, "each node to lead its partition")
    acked = produce_each_partition(ssl, topic)
    assert acked == sorted((p, b"p%d-m%d" % (p, i)) for p in range(3) for i in range(MESSAGES))
    assert consume_all(ssl, topic, "ssl-group") == acked

    controller = status(first)["quorum"]["leader_id"]
    for b in nodes:
        resp = kafka_python_metadata("127.0.0.1:%d" % ssl_ports[b.node_id], security_protocol="SSL",
                                     ssl_cafile=pki.path("ca.pem"), ssl_check_hostname=True)
        check_kafka_python_metadata(resp, ssl_ports, topic, controller)
        resp = kafka_python_metadata(b.bootstrap)
        check_kafka_python_metadata(resp, plain_ports, topic, controller)
        with conn(b, ssl_ports[b.node_id], pki) as c:
            assert describe_cluster_v0(c) == (0, sorted((i, "127.0.0.1", p) for i, p in ssl_ports.items()))
            err, node, host, port = find_coordinator_v0(c, "ssl-group")
            assert err == 0 and (host, port) == ("127.0.0.1", ssl_ports[node])
        with conn(b) as c:
            assert describe_cluster_v0(c) == (0, sorted((i, "127.0.0.1", p) for i, p in plain_ports.items()))
            err, node, host, port = find_coordinator_v0(c, "ssl-group")
            assert err == 0 and (host, port) == ("127.0.0.1", plain_ports[node])

    def endpoints(i):
        return [{"name": "PLAINTEXT", "host": "127.0.0.1", "port": plain_ports[i], "security_protocol": "PLAINTEXT"},
                {"name": "SSL", "host": "127.0.0.1", "port": ssl_ports[i], "security_protocol": "SSL"}]
    r = harness.run_tool([str(harness.CHRONIK_BIN), "cluster", "status", "--json",
                          "--admin", "127.0.0.1:%d" % first.admin_port], timeout_s=TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    for doc in (json.loads(r.stdout), status(nodes[1])):
        brokers = {x["id"]: x for x in doc["brokers"]}
        assert sorted(brokers) == [1, 2, 3]
        for i, x in brokers.items():
            assert (x["host"], x["port"], x["endpoints"]) == ("127.0.0.1", plain_ports[i], endpoints(i))


# ---- a broker without the client's listener -----------------------------------------

def coordinated_by(c, node_id):
    """A group name whose coordinator (asked on c) is node_id."""
    for i in range(1000):
        group = "g%d" % i
        err, node, _, _ = find_coordinator_v0(c, group)
        if err == 0 and node == node_id:
            return group
    return None


def ssl_partitions(c, topic):
    return metadata_v6(c, [topic])["topics"][topic][1]


# Node 1 has an SSL listener, node 2 has not: on node 1's SSL listener node 2
# is left out of Metadata and DescribeCluster, the partition it leads has
# leader -1 with LISTENER_NOT_FOUND (v6) or LEADER_NOT_AVAILABLE (v1), node 2
# is listed as an offline replica there, and a group it coordinates gets
# COORDINATOR_NOT_AVAILABLE; PLAINTEXT clients see
# both. Restarted with an SSL listener, node 2 registers it and SSL clients
# are told its address and its leadership.
def test_broker_without_the_listener(cluster, pki):
    nodes, ssl_ports = ssl_cluster(cluster, pki, 2, lambda i: i == 1)
    n1, n2 = nodes
    admin = AdminClient({"bootstrap.servers": n1.bootstrap})
    admin.create_topics([NewTopic("half", 2, replica_assignment=[[1, 2], [2, 1]])],
                        request_timeout=TIMEOUT_S)["half"].result(timeout=TIMEOUT_S)
    with conn(n1) as c:
        wait_for(lambda: {p: x["leader_id"] for p, x in metadata_v6(c, ["half"])["topics"]["half"][1].items()}
                 == {0: 1, 1: 2}, "each node to lead its partition")
        assert brokers_v1(c) == [(1, "127.0.0.1", n1.port), (2, "127.0.0.1", n2.port)]
        assert [p["offline_replicas"] for p in metadata_v6(c, ["half"])["topics"]["half"][1].values()] == [[], []]
        wait_for(lambda: find_coordinator_v0(c, "g0")[0] == 0, "the offsets topic")
        group = coordinated_by(c, 2)
        assert group
    with conn(n1, ssl_ports[1], pki) as c:
        md = metadata_v6(c, ["half"])
        assert md["brokers"] == [(1, "127.0.0.1", ssl_ports[1], None)]
        parts = md["topics"]["half"][1]
        assert parts[0] == {"error_code": 0, "leader_id": 1, "replica_nodes": [1, 2], "isr_nodes": parts[0]["isr_nodes"],
                            "offline_replicas": [2]}
        assert (parts[1]["error_code"], parts[1]["leader_id"], parts[1]["replica_nodes"], parts[1]["offline_replicas"]) \
            == (ERR_LISTENER_NOT_FOUND, -1, [2, 1], [2])
        v1 = {p["partition_index"]: p for p in kwire.metadata_v1(c, ["half"])["topics"][0]["partitions"]}
        assert (v1[0]["error_code"], v1[0]["leader_id"]) == (0, 1)
        assert (v1[1]["error_code"], v1[1]["leader_id"]) == (ERR_LEADER_NOT_AVAILABLE, -1)
        assert brokers_v1(c) == [(1, "127.0.0.1", ssl_ports[1])]
        assert describe_cluster_v0(c) == (0, [(1, "127.0.0.1", ssl_ports[1])])
        assert find_coordinator_v0(c, group)[0] == ERR_COORDINATOR_NOT_AVAILABLE
    seen = {x["id"]: x for x in status(n1)["brokers"]}
    assert [e["name"] for e in seen[1]["endpoints"]] == ["PLAINTEXT", "SSL"]
    assert [e["name"] for e in seen[2]["endpoints"]] == ["PLAINTEXT"]

    # Node 2 comes back with an SSL listener: its new registration carries it.
    n2.stop()
    ssl_ports[2] = harness.free_port()
    n2.settings["listeners"] = "SSL://127.0.0.1:%d" % ssl_ports[2]
    n2.start()
    with conn(n1, ssl_ports[1], pki) as c:
        wait_for(lambda: metadata_v6(c, ["half"])["brokers"] ==
                 [(1, "127.0.0.1", ssl_ports[1], None), (2, "127.0.0.1", ssl_ports[2], None)],
                 "node 2's SSL endpoint to be registered")
        wait_for(lambda: {p: (x["error_code"], x["leader_id"]) for p, x in ssl_partitions(c, "half").items()}
                 == {0: (0, 1), 1: (0, 2)}, "node 2 to lead again, on the SSL listener too")
        err, node, host, port = find_coordinator_v0(c, group)
        assert (err, node, host, port) == (0, 2, "127.0.0.1", ssl_ports[2])

