"""Operating a cluster through any of its nodes: configuration changes sent
to a node that does not lead the metadata quorum (forwarded to the
controller, readable there as soon as they are answered), DescribeQuorum
and Kafka's kafka-metadata-quorum against every node, and the controlled
shutdown of a node on SIGTERM (its leaderships move before it exits).

The cluster fixture (test_cluster.py) starts real processes; the clients
are confluent-kafka, kafka-python and Kafka's own tools."""

import re
import threading
import urllib.request

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

import compat
import kwire
from test_admin import (ERR_NONE, OP_APPEND, OP_SET, RES_BROKER, RES_TOPIC, describe_configs_v0, error_of,
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
