"""Operating a cluster through any of its nodes: configuration changes sent
to a node that does not lead the metadata quorum (forwarded to the
controller, readable there as soon as they are answered), DescribeQuorum
and Kafka's kafka-metadata-quorum against every node, and the controlled
shutdown of a node on SIGTERM (its leaderships move before it exits).

The cluster fixture (test_cluster.py) starts real processes; the clients
are confluent-kafka, kafka-python and Kafka's own tools."""

import re
import signal
import time
import urllib.request

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

import compat
import kwire
from test_admin import (CLIENT_TIMEOUT_S, ERR_NONE, OP_APPEND, OP_SET, RES_BROKER, RES_TOPIC, describe_configs_v0, error_of,
                        incremental_alter, result)
from test_cluster import cluster, leader_view, status, topics_on, wait_for  # noqa: F401 (cluster: a fixture)


def requests_seen(node, api):
    """chronik_requests_total{api=...} on node's /metrics (both listeners)."""
    with urllib.request.urlopen(node.admin_url + "/metrics", timeout=10) as f:
        text = f.read().decode()
    m = re.search(r'^chronik_requests_total\{api="%s"\} (\d+)$' % api, text, re.M)
    return int(m.group(1)) if m else 0


def configs_at(node, resource_type, name):
    """DescribeConfigs sent to this very node: {key: value}."""
    with kwire.Conn.to(node.bootstrap) as c:
        code, cfg = describe_configs_v0(c, resource_type, name)
    assert code == ERR_NONE, code
    return {k: v[0] for k, v in cfg.items()}


def via(node):
    """A BROKER resource naming node: librdkafka sends a request holding one
    to that broker (and the request's other resources with it)."""
    return ConfigResource("broker", str(node.node_id))


def leader_and_follower(nodes):
    leader_id, _ = wait_for(lambda: leader_view(nodes), "a leader")
    leader = next(b for b in nodes if b.node_id == leader_id)
    return leader, next(b for b in nodes if b is not leader)


def three_nodes_and_a_topic(cluster, name):
    """(nodes, leader, follower, an AdminClient bootstrapped to the follower)
    with topic name created through the follower and known to every node."""
    nodes = cluster(3)
    leader, follower = leader_and_follower(nodes)
    a = AdminClient({"bootstrap.servers": follower.bootstrap})
    result(a.create_topics([NewTopic(name, 1, 1)]))
    for b in nodes:
        wait_for(lambda: name in topics_on(b), "the topic on node %d" % b.node_id)
    return nodes, leader, follower, a


# AlterConfigs through a node that does not lead the quorum: a topic override
# and that node's dynamic broker config, sent by confluent-kafka to that node,
# are read back there as soon as the call returns, and the topic's on every
# other node; validate_only changes nothing; an invalid value gets the same
# error through the follower as at the leader.
@pytest.mark.pyclients
def test_alter_configs_through_a_follower(cluster):
    nodes, leader, follower, a = three_nodes_and_a_topic(cluster, "cfg")
    before = requests_seen(follower, "AlterConfigs")
    topic = ConfigResource("topic", "cfg", set_config={"retention.ms": "4242"})
    broker = ConfigResource("broker", str(follower.node_id), set_config={"log.retention.bytes": "987654321"})
    result(a.alter_configs([topic, broker]))
    assert requests_seen(follower, "AlterConfigs") == before + 1  # the client did send it to the follower
    assert configs_at(follower, RES_TOPIC, "cfg")["retention.ms"] == "4242"
    assert configs_at(follower, RES_BROKER, str(follower.node_id))["log.retention.bytes"] == "987654321"
    for b in nodes:
        wait_for(lambda: configs_at(b, RES_TOPIC, "cfg")["retention.ms"] == "4242",
                 "the override on node %d" % b.node_id)

    checked = ConfigResource("topic", "cfg", set_config={"retention.ms": "1111"})
    result(a.alter_configs([checked, via(follower)], validate_only=True))
    assert configs_at(follower, RES_TOPIC, "cfg")["retention.ms"] == "4242"

    errors = []
    for node in (follower, leader):
        bad = ConfigResource("topic", "cfg", set_config={"retention.ms": "soon"})
        futures = a.alter_configs([bad, via(node)])
        errors.append(error_of(futures[bad]))
    assert errors[0].code() == KafkaError.INVALID_CONFIG, errors
    assert [e.code() for e in errors] == [errors[0].code()] * 2 and errors[0].str() == errors[1].str(), errors
    assert configs_at(follower, RES_TOPIC, "cfg")["retention.ms"] == "4242"


# IncrementalAlterConfigs through a follower: APPEND to a topic's list key and
# the cluster-wide default of a dynamic broker key, each read back on the
# follower at once and then on every node (the broker default in each node's
# own configuration).
@pytest.mark.pyclients
def test_incremental_alter_configs_through_a_follower(cluster):
    nodes, _, follower, a = three_nodes_and_a_topic(cluster, "inc")
    if hasattr(a, "incremental_alter_configs"):  # confluent-kafka >= 2.2
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry
        res = ConfigResource("topic", "inc", incremental_configs=[
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND)])
        own = ConfigResource("broker", str(follower.node_id), incremental_configs=[  # routes it to the follower
            ConfigEntry("log.retention.bytes", "55555", incremental_operation=AlterConfigOpType.SET)])
        result(a.incremental_alter_configs([res, own]))
        assert configs_at(follower, RES_BROKER, str(follower.node_id))["log.retention.bytes"] == "55555"
    else:
        with kwire.Conn.to(follower.bootstrap) as c:
            code, msg = incremental_alter(c, "inc", [("cleanup.policy", OP_APPEND, "compact")])
        assert code == ERR_NONE, msg
    assert configs_at(follower, RES_TOPIC, "inc")["cleanup.policy"] == "delete,compact"
    with kwire.Conn.to(follower.bootstrap) as c:
        code, msg = incremental_alter(c, "", [("log.cleaner.backoff.ms", OP_SET, "4321")], resource_type=RES_BROKER)
    assert code == ERR_NONE, msg
    assert configs_at(follower, RES_BROKER, str(follower.node_id))["log.cleaner.backoff.ms"] == "4321"
    for b in nodes:
        wait_for(lambda: configs_at(b, RES_TOPIC, "inc")["cleanup.policy"] == "delete,compact",
                 "the override on node %d" % b.node_id)
        wait_for(lambda: configs_at(b, RES_BROKER, str(b.node_id))["log.cleaner.backoff.ms"] == "4321",
                 "the broker default on node %d" % b.node_id)


# ---- DescribeQuorum through any node -----------------------------------------

QUORUM_TOOL = "org.apache.kafka.tools.MetadataQuorumCommand"


def metadata_quorum(node, *args):
    """kafka-metadata-quorum --bootstrap-server node ARGS: its stdout."""
    from test_kafka_tools import kafka_tool
    classpath = compat.need(compat.TOOLS_CLASSPATH).read_text().strip()
    return kafka_tool(classpath, QUORUM_TOOL, "--bootstrap-server", node.bootstrap, *args)


def status_fields(out):
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.splitlines() if ":" in line)}


def replication_rows(out):
    """{node id: status word} from describe --replication's table."""
    rows = {}
    for line in out.splitlines()[1:]:
        f = line.split()
        if f and f[0].isdigit():
            rows[int(f[0])] = f[-1]
    return rows


# Kafka's kafka-metadata-quorum, bootstrapped to each of three nodes in turn,
# describes the same quorum: describe --status names the same leader and
# epoch everywhere (the nodes that do not lead relay the leader's
# DescribeQuorum), describe --replication lists the three voters with the
# leader marked as such.
def test_kafka_metadata_quorum_on_every_node(cluster):
    nodes = cluster(3)
    leader_id, epoch = wait_for(lambda: leader_view(nodes), "a leader")
    for b in nodes:
        fields = status_fields(metadata_quorum(b, "describe", "--status"))
        assert (fields["LeaderId"], fields["LeaderEpoch"]) == (str(leader_id), str(epoch)), (b.node_id, fields)
        assert all('"id": %d' % n.node_id in fields["CurrentVoters"] for n in nodes), fields
        rows = replication_rows(metadata_quorum(b, "describe", "--replication"))
        assert sorted(rows) == [1, 2, 3], rows
        assert rows[leader_id] == "Leader" and all(rows[n] == "Follower" for n in rows if n != leader_id), rows
    assert leader_view(nodes) == (leader_id, epoch)  # no election meanwhile: the answers are comparable


# ---- controlled shutdown ------------------------------------------------------

EXIT_BOUND_S = 15.0   # SIGTERM to exit of a 3-node ASan cluster on a loaded 2-core machine


def leaders_at(node, topic):
    """{partition: leader id} in node's Metadata."""
    with kwire.Conn.to(node.bootstrap) as c:
        md = kwire.metadata_v1(c, topics=[topic])
    (t,) = [t for t in md["topics"] if t["name"] == topic]
    return {p["partition_index"]: p["leader_id"] for p in t["partitions"]}


def spread_topic(nodes, name, partitions=6):
    """A topic with every partition replicated on the three nodes, led by each in turn."""
    a = AdminClient({"bootstrap.servers": nodes[0].bootstrap})
    result(a.create_topics([NewTopic(name, partitions, 3)]))
    for b in nodes:
        wait_for(lambda: len(leaders_at(b, name)) == partitions if name in topics_on(b) else False,
                 "the topic on node %d" % b.node_id)
    return leaders_at(nodes[0], name)


def sigterm_and_wait(node):
    """SIGTERM; the seconds until the process exited 0 (and sanitizer-clean)."""
    t0 = time.monotonic()
    node.proc.send_signal(signal.SIGTERM)
    node.proc.wait(timeout=EXIT_BOUND_S + 10)
    took = time.monotonic() - t0
    node.stop()  # already gone: checks exit code 0 and the sanitizer report
    return took


def produce_to(producer, topic, partitions, tag):
    """One acknowledged record per partition (kafka-python, acks=1)."""
    for p in partitions:
        md = producer.send(topic, b"%s-%d" % (tag, p), partition=p).get(timeout=CLIENT_TIMEOUT_S)
        assert md.partition == p


# SIGTERM to a broker that leads partitions: it asks the controller to move
# them before it stops. The controller's Metadata shows none led by it the
# moment its process has exited (the controller lets it go only once the
# move is committed), the third node's soon after; it exits 0 within a few
# seconds, and a kafka-python producer goes on producing to the moved
# partitions.
@pytest.mark.pyclients
def test_sigterm_moves_leaderships_first(cluster):
    from kafka import KafkaProducer
    nodes = cluster(3)
    leader, _ = leader_and_follower(nodes)
    before = spread_topic(nodes, "moving")
    victim = next(b for b in nodes if b is not leader and b.node_id in before.values())
    theirs = sorted(p for p, l in before.items() if l == victim.node_id)
    others = [b for b in nodes if b is not victim]
    producer = KafkaProducer(bootstrap_servers=[b.bootstrap for b in others], acks=1, retries=10,
                             retry_backoff_ms=200, metadata_max_age_ms=1000)
    try:
        produce_to(producer, "moving", theirs, b"before")
        took = sigterm_and_wait(victim)
        assert victim.node_id not in leaders_at(leader, "moving").values()  # the controller: at once
        third = next(b for b in others if b is not leader)
        wait_for(lambda: victim.node_id not in leaders_at(third, "moving").values(), "the move on the third node")
        assert "the controller let this broker go" in victim.log_text()
        assert took < EXIT_BOUND_S, took
        produce_to(producer, "moving", theirs, b"after")
    finally:
        producer.close(timeout=5)
    assert all(leaders_at(leader, "moving")[p] in (leader.node_id, third.node_id) for p in theirs)


# SIGTERM to the quorum leader: it moves its partitions, then hands the
# quorum over (EndQuorumEpoch) instead of leaving the others to time out;
# when its process has exited another node already leads a later epoch,
# which has committed the move, after one election.
def test_sigterm_to_the_quorum_leader_hands_over(cluster):
    nodes = cluster(3)
    leader, _ = leader_and_follower(nodes)
    epoch = status(leader)["quorum"]["epoch"]
    elections = sum(status(b)["quorum"]["elections"] for b in nodes)
    spread_topic(nodes, "handover")
    took = sigterm_and_wait(leader)
    rest = [b for b in nodes if b is not leader]
    views = {b.node_id: status(b)["quorum"] for b in rest}
    new = [i for i, q in views.items() if q["role"] == "leader"]
    assert len(new) == 1 and views[new[0]]["epoch"] > epoch, views
    successor = next(b for b in rest if b.node_id == new[0])
    assert leader.node_id not in leaders_at(successor, "handover").values()
    assert "quorum leadership handed over" in leader.log_text()
    assert took < EXIT_BOUND_S, took
    assert sum(status(b)["quorum"]["elections"] for b in rest) <= elections + 1
