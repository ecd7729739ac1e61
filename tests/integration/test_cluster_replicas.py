"""The controller side of partition replication on a real three-node
cluster: replication factor defaults (3 on three brokers, for
__consumer_offsets and auto-created topics too), leadership moving to
another ISR member when a partition's leader is killed, the ISR change a
partition leader asks for (AlterPartition on the controller listener),
preferred-leader election bringing leadership back to a returning broker,
and ElectLeaders through Kafka's own leader-election tool.

Followers do not replicate data in these tests: the ISR is what the
controller sets, and the test itself plays the partition leader that asks
for a returning follower to rejoin the ISR."""

import signal
import uuid

import pytest

import compat
import harness
import kwire
from test_cluster import cluster, leader_view, status, wait_for  # noqa: F401 (cluster is a fixture)
from test_kafka_tools import kafka_tool

ERR_NONE = 0
ERR_NOT_CONTROLLER = 41
ERR_FENCED_LEADER_EPOCH = 74
ERR_INVALID_UPDATE_VERSION = 95
ERR_STALE_BROKER_EPOCH = 77
FAST_FENCING = {"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"}


def metadata_v7(node, topics, auto_create=False):
    """{topic: {partition: {leader, leader_epoch, replicas, isr}}} from node's
    Metadata v7 (the first version with leader epochs, not flexible)."""
    w = kwire.Writer().i32(len(topics))
    for t in topics:
        w.string(t)
    w.i8(1 if auto_create else 0)
    with kwire.Conn.to(node.bootstrap) as c:
        _, body = c.request(3, 7, w.bytes())
    r = kwire.Reader(body)
    r.i32()  # throttle
    for _ in range(r.array_len()):
        r.i32(), r.string(), r.i32(), r.string()
    r.string(), r.i32()  # cluster id, controller id
    out = {}
    for _ in range(r.array_len()):
        err, name, _internal = r.i16(), r.string(), r.i8()
        parts = {}
        for _ in range(r.array_len()):
            p = {"error": r.i16()}
            index = r.i32()
            p["leader"], p["leader_epoch"] = r.i32(), r.i32()
            p["replicas"] = [r.i32() for _ in range(r.array_len())]
            p["isr"] = [r.i32() for _ in range(r.array_len())]
            [r.i32() for _ in range(r.array_len())]  # offline replicas
            parts[index] = p
        if err == ERR_NONE:
            out[name] = parts
    return out


def partitions_of(node, topic, n=None, auto_create=False):
    """The topic's partitions once node's Metadata has all n (or any), else None."""
    parts = metadata_v7(node, [topic], auto_create).get(topic)
    return parts if parts and (n is None or len(parts) == n) else None


def create_topic(node, name, partitions, rf=-1):
    """CreateTopics v4 (not flexible) at node; replication factor -1 is the default."""
    w = kwire.Writer().i32(1).string(name).i32(partitions).i16(rf).i32(0).i32(0).i32(30000).i8(0)
    with kwire.Conn.to(node.bootstrap) as c:
        _, body = c.request(19, 4, w.bytes())
    r = kwire.Reader(body)
    r.i32(), r.array_len(), r.string()
    return r.i16()


def alter_partition(node, broker_id, broker_epoch, topic_id, index, leader_epoch, partition_epoch, isr):
    """AlterPartition v2 to node's controller listener: (top error, partition
    error, leader, leader epoch, isr, partition epoch)."""
    w = kwire.Writer().i32(broker_id).i64(broker_epoch).uvarint(2).raw(topic_id.bytes)
    w.uvarint(2).i32(index).i32(leader_epoch).uvarint(len(isr) + 1)
    for b in isr:
        w.i32(b)
    w.i8(0).i32(partition_epoch).tags().tags().tags()
    with kwire.Conn("127.0.0.1", node.controller_port) as c:
        _, body = c.request(56, 2, w.bytes())
    r = kwire.Reader(body)
    r.i32()
    top = r.i16()
    if (r.compact_array_len() or 0) == 0:
        return top, None, None, None, None, None
    r.take(16)
    r.compact_array_len()
    r.i32()
    err, leader, epoch = r.i16(), r.i32(), r.i32()
    isr_out = [r.i32() for _ in range(r.compact_array_len() or 0)]
    r.i8()
    return top, err, leader, epoch, isr_out, r.i32()


def by_id(nodes, node_id):
    return next(b for b in nodes if b.node_id == node_id)


def status_partition(node, topic, index):
    return next(p for p in status(node)["partitions"] if p["topic"] == topic and p["partition"] == index)


def topic_id(node, topic):
    """The topic's id from node's Metadata v10 (flexible: ids from v10)."""
    w = kwire.Writer().uvarint(2).raw(bytes(16)).compact_string(topic).tags().i8(0).i8(0).i8(0).tags()
    with kwire.Conn.to(node.bootstrap) as c:
        _, body = c.request(3, 10, w.bytes())
    r = kwire.Reader(body)
    r.i32()
    for _ in range(r.compact_array_len() or 0):
        r.i32(), r.compact_string(), r.i32(), r.compact_string(), r.tags()
    r.compact_string(), r.i32()
    for _ in range(r.compact_array_len() or 0):
        err, name, tid = r.i16(), r.compact_string(), uuid.UUID(bytes=r.take(16))
        if name == topic and err == ERR_NONE:
            return tid
        pytest.fail("unexpected topic %s error %d" % (name, err))
    return None


def rejoin_isr(controller, leader, topic, index, member):
    """Plays partition topic-index's leader: asks the controller to take
    member back into the ISR (what the leader's replica layer does once a
    follower has caught up). Returns the partition's state as answered."""
    p = status_partition(controller, topic, index)
    epoch = status(controller)["brokers"]
    broker_epoch = next(b["epoch"] for b in epoch if b["id"] == leader.node_id)
    tid = topic_id(controller, topic)
    isr = p["isr"] + [member]
    top, err, got_leader, leader_epoch, got_isr, partition_epoch = alter_partition(
        controller, leader.node_id, broker_epoch, tid, index, p["leader_epoch"], p["partition_epoch"], isr)
    assert (top, err) == (ERR_NONE, ERR_NONE), (top, err)
    assert got_leader == leader.node_id and leader_epoch == p["leader_epoch"], (got_leader, leader_epoch, p)
    assert sorted(got_isr) == sorted(isr) and partition_epoch == p["partition_epoch"] + 1, (got_isr, partition_epoch)
    # The same request again changes nothing and is answered the same way.
    again = alter_partition(controller, leader.node_id, broker_epoch, tid, index, p["leader_epoch"],
                            partition_epoch, isr)
    assert again[:2] == (ERR_NONE, ERR_NONE) and again[5] == partition_epoch, again
    # A stale leader epoch is fenced; a stale partition epoch refused; a
    # node that is not the controller says so.
    assert alter_partition(controller, leader.node_id, broker_epoch, tid, index, p["leader_epoch"] - 1,
                           partition_epoch, isr)[1] == ERR_FENCED_LEADER_EPOCH
    assert alter_partition(controller, leader.node_id, broker_epoch, tid, index, p["leader_epoch"],
                           partition_epoch - 1, isr)[1] == ERR_INVALID_UPDATE_VERSION
    # A sender not registered at the broker epoch it gives is refused whole.
    assert alter_partition(controller, leader.node_id, broker_epoch + 1000, tid, index, p["leader_epoch"],
                           partition_epoch, isr)[0] == ERR_STALE_BROKER_EPOCH
    return got_isr


def three_nodes(cluster, settings=None):  # noqa: F811
    nodes = cluster(3, settings=settings)
    controller_id, _ = wait_for(lambda: leader_view(nodes), "a quorum leader")
    controller = by_id(nodes, controller_id)
    wait_for(lambda: all(not b["fenced"] for b in status(controller)["brokers"])
             and len(status(controller)["brokers"]) == 3, "three unfenced brokers")
    return nodes, controller


# On three brokers a topic created without a replication factor gets 3 -
# Metadata on every node shows 3 replicas and an ISR of 3, each broker
# leading one of three partitions - and so do __consumer_offsets and a
# topic auto-created by a Metadata request.
def test_default_replication_factor_three(cluster):  # noqa: F811
    nodes, controller = three_nodes(cluster)
    assert create_topic(nodes[0], "rf-default", 3) == ERR_NONE
    for b in nodes:
        parts = wait_for(lambda: partitions_of(b, "rf-default", 3), "the topic on node %d" % b.node_id)
        assert all(sorted(p["replicas"]) == [1, 2, 3] and sorted(p["isr"]) == [1, 2, 3] for p in parts.values()), parts
        assert sorted(p["leader"] for p in parts.values()) == [1, 2, 3], parts
    parts = wait_for(lambda: partitions_of(nodes[1], "rf-auto", auto_create=True), "an auto-created topic")
    assert all(len(p["replicas"]) == 3 and len(p["isr"]) == 3 for p in parts.values()), parts
    assert create_topic(nodes[2], "rf-four", 1, rf=4) == 38  # INVALID_REPLICATION_FACTOR: three live brokers
    with kwire.Conn.to(nodes[2].bootstrap) as c:  # FindCoordinator creates __consumer_offsets
        c.request(10, 0, kwire.Writer().string("g").bytes())
    offsets = wait_for(lambda: partitions_of(nodes[2], "__consumer_offsets", 50), "__consumer_offsets")
    assert all(sorted(p["replicas"]) == [1, 2, 3] for p in offsets.values()), offsets
    leaders = [p["leader"] for p in offsets.values()]
    assert all(abs(leaders.count(i) - 50 / 3) < 2 for i in (1, 2, 3)), leaders


# kill -9 of a partition's leader: once it is fenced, the survivors'
# Metadata shows another ISR member leading with the leader epoch bumped and
# the dead broker out of the ISR. Restarted, it rejoins the ISR through the
# leader's AlterPartition (which the controller also refuses for a stale
# leader epoch, partition epoch or broker epoch), and preferred-leader
# election (checked every second here) gives it its leadership back, the
# epoch bumped again.
def test_leader_killed_then_preferred_leader_returns(cluster):  # noqa: F811
    nodes, controller = three_nodes(cluster, dict(FAST_FENCING, **{"leader.imbalance.check.interval.seconds": "1"}))
    assert create_topic(controller, "moving", 3) == ERR_NONE
    parts = wait_for(lambda: partitions_of(controller, "moving", 3), "the topic")
    index, before = next((i, p) for i, p in parts.items() if p["leader"] != controller.node_id)
    victim = by_id(nodes, before["leader"])
    assert before["replicas"][0] == victim.node_id  # placement makes the leader the preferred replica
    victim.kill9()
    survivors = [b for b in nodes if b is not victim]

    def moved(b):
        p = partitions_of(b, "moving", 3)
        p = p and p[index]
        return p if p and p["leader"] not in (-1, victim.node_id) and victim.node_id not in p["isr"] else None
    for b in survivors:
        after = wait_for(lambda: moved(b), "leadership to move on node %d" % b.node_id)
        assert after["leader"] in before["isr"] and after["leader_epoch"] > before["leader_epoch"], (before, after)
        assert sorted(after["isr"] + [victim.node_id]) == sorted(before["isr"]), (before, after)
    new_leader = by_id(nodes, after["leader"])
    victim.start()
    wait_for(lambda: not next(b for b in status(controller)["brokers"] if b["id"] == victim.node_id)["fenced"],
             "the restarted broker to be unfenced")
    assert partitions_of(controller, "moving", 3)[index]["leader"] == new_leader.node_id  # not in sync yet
    rejoin_isr(controller, new_leader, "moving", index, victim.node_id)
    back = wait_for(lambda: (lambda p: p if p["leader"] == victim.node_id else None)(
        partitions_of(controller, "moving", 3)[index]), "the preferred replica to lead again")
    assert back["leader_epoch"] > after["leader_epoch"] and len(back["isr"]) == 3, back
    for b in nodes:
        wait_for(lambda: partitions_of(b, "moving", 3)[index]["leader"] == victim.node_id,
                 "node %d to see the preferred leader" % b.node_id)


def leader_election_tool(classpath, node, *args):
    return kafka_tool(classpath, "org.apache.kafka.tools.LeaderElectionCommand",
                      "--bootstrap-server", node.bootstrap, *args)


# With automatic rebalancing off, a broker that was fenced and rejoined the
# ISR does not lead again by itself; Kafka's kafka-leader-election tool
# (ElectLeaders PREFERRED, sent to a node that is not the controller and
# forwarded) makes it lead; a second run finds nothing to do; UNCLEAN on a
# partition that has a live leader is not needed either.
def test_elect_leaders_tool(cluster):  # noqa: F811
    classpath = compat.need(compat.TOOLS_CLASSPATH).read_text().strip()
    nodes, controller = three_nodes(cluster, dict(FAST_FENCING, **{"auto.leader.rebalance.enable": "false"}))
    assert create_topic(controller, "elect", 3) == ERR_NONE
    parts = wait_for(lambda: partitions_of(controller, "elect", 3), "the topic")
    index, before = next((i, p) for i, p in parts.items() if p["leader"] != controller.node_id)
    victim = by_id(nodes, before["leader"])
    victim.proc.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: partitions_of(controller, "elect", 3)[index]["leader"] not in (-1, victim.node_id),
                 "leadership to move off the stopped broker")
    finally:
        victim.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: not next(b for b in status(controller)["brokers"] if b["id"] == victim.node_id)["fenced"],
             "the broker to be unfenced")
    moved = partitions_of(controller, "elect", 3)[index]
    rejoin_isr(controller, by_id(nodes, moved["leader"]), "elect", index, victim.node_id)
    other = next(b for b in nodes if b is not controller)
    out = leader_election_tool(classpath, other, "--election-type", "preferred", "--topic", "elect",
                               "--partition", index)
    assert "Successfully completed leader election (PREFERRED)" in out, out
    # The forwarded election is answered by the controller: the node that
    # forwarded it shows the result once it applies it.
    now = wait_for(lambda: (lambda p: p if p["leader"] == victim.node_id else None)(
        partitions_of(other, "elect", 3)[index]), "the preferred replica to lead again")
    assert now["leader_epoch"] > moved["leader_epoch"], now
    out = leader_election_tool(classpath, other, "--election-type", "preferred", "--all-topic-partitions")
    assert "elect-%d" % index not in out, out
    out = leader_election_tool(classpath, controller, "--election-type", "unclean", "--topic", "elect",
                               "--partition", index)
    assert "Valid replica already elected for partitions elect-%d" % index in out, out


def alter_reassignments(node, topic, index, replicas):
    """AlterPartitionReassignments v0 (replicas None cancels): the partition's error."""
    w = kwire.Writer().i32(30000).uvarint(2).compact_string(topic).uvarint(2).i32(index)
    if replicas is None:
        w.uvarint(0)
    else:
        w.uvarint(len(replicas) + 1)
        for b in replicas:
            w.i32(b)
    w.tags().tags().tags()
    with kwire.Conn.to(node.bootstrap) as c:
        _, body = c.request(45, 0, w.bytes())
    r = kwire.Reader(body)
    r.i32()
    top, _msg = r.i16(), r.compact_string()
    assert top == ERR_NONE, top
    r.compact_array_len(), r.compact_string(), r.compact_array_len(), r.i32()
    return r.i16()


def list_reassignments(node):
    """ListPartitionReassignments v0 for every topic: {(topic, partition): (replicas, adding, removing)}."""
    with kwire.Conn.to(node.bootstrap) as c:
        _, body = c.request(46, 0, kwire.Writer().i32(30000).uvarint(0).tags().bytes())
    r = kwire.Reader(body)
    r.i32()
    assert r.i16() == ERR_NONE
    r.compact_string()
    out = {}
    ints = lambda: [r.i32() for _ in range(r.compact_array_len() or 0)]  # noqa: E731
    for _ in range(r.compact_array_len() or 0):
        name = r.compact_string()
        for _ in range(r.compact_array_len() or 0):
            index = r.i32()
            out[(name, index)] = (ints(), ints(), ints())
            r.tags()
        r.tags()
    return out


# A partition moved to a new replica (through a node that is not the
# controller, which forwards it): the replicas become the union, Kafka's
# ListPartitionReassignments shows what is added and removed, bad targets
# are refused; once the leader's AlterPartition has the new replica in the
# ISR the move completes: replicas and ISR the target, leadership off the
# removed replica.
def test_partition_reassignment(cluster):  # noqa: F811
    nodes, controller = three_nodes(cluster)
    other = next(b for b in nodes if b is not controller)
    assert create_topic(controller, "mv", 1, rf=2) == ERR_NONE
    p = wait_for(lambda: (partitions_of(other, "mv", 1) or {}).get(0), "the topic")
    a, b = p["replicas"]
    c = next(n.node_id for n in nodes if n.node_id not in (a, b))
    assert alter_reassignments(other, "mv", 0, [b, b]) == 39       # INVALID_REPLICA_ASSIGNMENT
    assert alter_reassignments(other, "mv", 0, [b, 9]) == 39
    assert alter_reassignments(other, "mv", 0, None) == 85         # NO_REASSIGNMENT_IN_PROGRESS
    assert alter_reassignments(other, "nope", 0, [a]) == 3         # UNKNOWN_TOPIC_OR_PARTITION
    assert alter_reassignments(other, "mv", 0, [b, c]) == ERR_NONE
    for n in nodes:
        got = wait_for(lambda: list_reassignments(n).get(("mv", 0)), "the move listed on node %d" % n.node_id)
        assert got == ([b, c, a], [c], [a]), got
    p = partitions_of(controller, "mv", 1)[0]
    assert p["replicas"] == [b, c, a] and sorted(p["isr"]) == sorted([a, b]) and p["leader"] == a, p
    st = status_partition(controller, "mv", 0)
    broker_epoch = next(x["epoch"] for x in status(controller)["brokers"] if x["id"] == a)
    tid = topic_id(controller, "mv")
    assert alter_partition(other, a, broker_epoch, tid, 0, st["leader_epoch"], st["partition_epoch"],
                           [a, b, c])[0] == ERR_NOT_CONTROLLER  # only the controller decides
    top, err, leader, leader_epoch, isr, _ = alter_partition(controller, a, broker_epoch, tid,
                                                             0, st["leader_epoch"], st["partition_epoch"], [a, b, c])
    assert (top, err) == (ERR_NONE, ERR_NONE) and leader == b and sorted(isr) == sorted([b, c]), (err, leader, isr)
    assert leader_epoch == st["leader_epoch"] + 1
    for n in nodes:
        done = wait_for(lambda: (lambda q: q if q["replicas"] == [b, c] else None)(partitions_of(n, "mv", 1)[0]),
                        "the move to complete on node %d" % n.node_id)
        assert done["leader"] == b and sorted(done["isr"]) == sorted([b, c]), done
        assert ("mv", 0) not in list_reassignments(n)
