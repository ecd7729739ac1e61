"""Partition replication with real processes and real clients: three nodes,
replication factor 3, min.insync.replicas 2, acks=all with an idempotent
confluent-kafka producer. Partition leaders are killed -9, paused and
restarted while it produces; every acknowledged message must be consumed
exactly once, in order per partition, and the replicas' logs must end up
identical batch for batch."""

import glob
import hashlib
import os
import signal
import struct
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import harness
import kwire
from test_groups import find_coordinator_v4
from test_cluster import cluster, ready  # noqa: F401  (the cluster fixture)

DEADLINE_S = 60.0   # ASan builds on a loaded 2-core machine
POLL_S = 0.05


def wait_for(pred, what, deadline_s=DEADLINE_S):
    return harness.wait_until(pred, what, deadline_s, POLL_S)


def live(nodes):
    return [b for b in nodes if b.running()]


def partitions(node, topic):
    """{index: (leader, replicas, isr)} as node's metadata says, or None."""
    try:
        md = AdminClient({"bootstrap.servers": node.bootstrap}).list_topics(topic, timeout=5)
    except Exception:  # noqa: BLE001  (a node restarting)
        return None
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return {p.id: (p.leader, sorted(p.replicas), sorted(p.isrs)) for p in t.partitions.values()}


def create_topic(node, topic, nparts, rf=3, config=None):
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    admin.create_topics([NewTopic(topic, nparts, rf, config=config or {})])[topic].result(30)
    wait_for(lambda: (lambda m: m if m and len(m) == nparts and all(len(v[2]) == rf for v in m.values())
                      else None)(partitions(node, topic)), "the topic with a full ISR")


def full_isr(nodes, topic, nparts, rf=3):
    """Every live node's metadata shows every partition with a leader and a full ISR."""
    for b in live(nodes):
        m = partitions(b, topic)
        if not m or len(m) != nparts or any(v[0] < 0 or len(v[2]) != rf for v in m.values()):
            return False
    return True


def node_by_id(nodes, node_id):
    return next(b for b in nodes if b.node_id == node_id)


def log_digest(node, topic, index):
    """The partition's batches on node's disk, segment after segment (the
    walk stops at a segment's preallocated, still zero, tail)."""
    h = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(str(node.data_dir), "%s-%d" % (topic, index), "*.log"))):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + 12 <= len(data):
            length = struct.unpack_from(">i", data, pos + 8)[0]
            if length <= 0 or pos + 12 + length > len(data):
                break
            h.update(data[pos:pos + 12 + length])
            pos += 12 + length
    return h.hexdigest()


def same_logs(nodes, topic, nparts):
    return all(len({log_digest(b, topic, i) for b in nodes}) == 1 for i in range(nparts))


class Load:
    """An idempotent acks=all producer on a daemon thread: message i carries
    its number; delivery reports record what was acknowledged where."""

    def __init__(self, bootstrap, topic, total, rate=None, config=None):
        self.topic, self.total, self.rate = topic, total, rate
        self.acked = {}         # value -> (partition, offset)
        self.failed = 0
        self.errors = []        # the first few delivery errors
        self.sent = 0
        self.stop = False
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                           "linger.ms": 5, "message.timeout.ms": 120000, "retry.backoff.ms": 50,
                           "topic.metadata.refresh.interval.ms": 1000, **(config or {})})
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _report(self, err, msg):
        if err is None:
            self.acked[int(msg.value())] = (msg.partition(), msg.offset())
        else:
            self.failed += 1
            if len(self.errors) < 5:
                self.errors.append(str(err))

    def _run(self):
        try:
            self._produce_all()
        except Exception as e:  # noqa: BLE001  (reported by join)
            self.errors.append("producer thread: %r" % e)
            raise

    def _produce_all(self):
        start = time.monotonic()
        while self.sent < self.total and not self.stop:
            if self.rate and self.sent > (time.monotonic() - start) * self.rate:
                self.p.poll(0.005)
                continue
            try:
                self.p.produce(self.topic, key=str(self.sent % 97).encode(), value=str(self.sent).encode(),
                               on_delivery=self._report)
                self.sent += 1
            except BufferError:
                self.p.poll(0.01)
            self.p.poll(0)
        self.p.flush(180)

    def join(self):
        self.t.join(240)
        assert not self.t.is_alive(), "the producer did not finish"
        assert not any(e.startswith("producer thread") for e in self.errors), self.errors


def consume_all(bootstrap, topic, nparts):
    """Every record of every partition up to its high watermark: {partition: [values]}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "verify-%s" % topic,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        ends = {}
        for i in range(nparts):
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, i), timeout=30)
            ends[i] = hi
        c.assign([TopicPartition(topic, i, 0) for i in range(nparts)])
        got = {i: [] for i in range(nparts)}
        deadline = time.monotonic() + DEADLINE_S
        while any((got[i] and got[i][-1][0] + 1 < ends[i]) or (not got[i] and ends[i] > 0)
                  for i in range(nparts)):
            assert time.monotonic() < deadline, "consuming stalled: %s of %s" % (
                {i: len(v) for i, v in got.items()}, ends)
            for m in c.consume(1000, 1.0):
                if m.error():
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                    continue
                got[m.partition()].append((m.offset(), int(m.value())))
        return {i: [v for _, v in got[i]] for i in range(nparts)}
    finally:
        c.close()


def check_exactly_once(load, got, duplicates_allowed=False):
    """Every acknowledged message is there once (at least once when
    duplicates_allowed: a producer without idempotence may write a retry
    twice), at the acknowledged partition, in produce order within its
    partition when exactly once."""
    where = {}
    for part, values in got.items():
        for v in values:
            assert duplicates_allowed or v not in where, "message %d duplicated (partitions %s and %d)" % (
                v, where[v], part)
            where[v] = part
        acked_here = [v for v in values if v in load.acked]
        assert duplicates_allowed or acked_here == sorted(acked_here), "partition %d out of order" % part
    lost = [v for v in load.acked if v not in where]
    assert not lost, "%d acknowledged messages lost, e.g. %s" % (len(lost), lost[:5])
    moved = [v for v, (p, _) in load.acked.items() if where[v] != p]
    assert not moved, "messages found elsewhere than acknowledged: %s" % moved[:5]


def settle(nodes, topic, nparts):
    """Every node up, every ISR full, and the replicas' logs identical."""
    wait_for(lambda: full_isr(nodes, topic, nparts), "every ISR to be full again")
    wait_for(lambda: same_logs(nodes, topic, nparts), "the replicas' logs to become identical")


# 100,000 messages while the leader of partition 0 is killed -9 and restarted
# five times: nothing acknowledged is lost or duplicated, and the replicas
# end identical.
@pytest.mark.pyclients
def test_acks_all_survives_leader_kills(cluster):  # noqa: F811
    nodes = cluster(3)
    topic, nparts, total = "kills", 3, 100000
    create_topic(nodes[0], topic, nparts)
    load = Load(",".join(b.bootstrap for b in nodes), topic, total, rate=2500)
    kills = 0
    for _ in range(5):
        wait_for(lambda: len(load.acked) > 0 and full_isr(nodes, topic, nparts), "traffic and a full ISR")
        before = len(load.acked)
        leader_id = partitions(live(nodes)[0], topic)[0][0]
        victim = node_by_id(nodes, leader_id)
        victim.kill9()
        kills += 1
        other = next(b for b in live(nodes))
        wait_for(lambda: (lambda m: m and m[0][0] not in (-1, leader_id))(partitions(other, topic)),
                 "a new leader for partition 0")
        wait_for(lambda: len(load.acked) > before + 100, "acknowledgements from the new leader")
        victim.start()
    load.join()
    assert load.sent == total and len(load.acked) == total, (
        "acknowledged %d of %d (%d failed: %s)" % (len(load.acked), total, load.failed, load.errors))
    settle(nodes, topic, nparts)
    check_exactly_once(load, consume_all(nodes[0].bootstrap, topic, nparts))
    assert kills == 5


# The same with the leader paused (SIGSTOP) long enough to be fenced, then
# resumed: it must stop acknowledging, follow the new leader and truncate
# whatever the new leader lacks.
@pytest.mark.pyclients
def test_acks_all_survives_paused_leader(cluster):  # noqa: F811
    nodes = cluster(3)
    topic, nparts, total = "pauses", 2, 30000
    create_topic(nodes[0], topic, nparts)
    load = Load(",".join(b.bootstrap for b in nodes), topic, total, rate=2500)
    for _ in range(2):
        wait_for(lambda: len(load.acked) > 0 and full_isr(nodes, topic, nparts), "traffic and a full ISR")
        leader_id = partitions(nodes[0], topic)[0][0]
        victim = node_by_id(nodes, leader_id)
        other = next(b for b in nodes if b is not victim)
        victim.proc.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: (lambda m: m and m[0][0] not in (-1, leader_id))(partitions(other, topic)),
                     "a new leader while the old one is paused")
        finally:
            victim.proc.send_signal(signal.SIGCONT)
    load.join()
    assert len(load.acked) == total, "acknowledged %d of %d (%s)" % (len(load.acked), total, load.errors)
    settle(nodes, topic, nparts)
    check_exactly_once(load, consume_all(nodes[0].bootstrap, topic, nparts))


# Two of three replicas gone (broker-only nodes, so the metadata quorum
# lives on): acks=all is refused with NOT_ENOUGH_REPLICAS, acks=1 still
# works on the leader; they return and the ISR grows back to three.
@pytest.mark.pyclients
def test_two_replicas_down(cluster):  # noqa: F811
    nodes = cluster(3, observers=2)
    topic = "minisr"
    admin = AdminClient({"bootstrap.servers": nodes[0].bootstrap})
    admin.create_topics([NewTopic(topic, 1, replica_assignment=[[3, 4, 5]])])[topic].result(30)
    wait_for(lambda: (lambda m: m and m[0][2] == [3, 4, 5])(partitions(nodes[0], topic)), "a full ISR")
    for b in (node_by_id(nodes, 4), node_by_id(nodes, 5)):
        b.kill9()
    wait_for(lambda: (lambda m: m and m[0][2] == [3])(partitions(nodes[0], topic)),
             "the ISR to shrink to the leader")
    errors = []
    p_all = Producer({"bootstrap.servers": nodes[0].bootstrap, "acks": "all", "message.timeout.ms": 3000,
                      "retries": 0})
    p_all.produce(topic, value=b"all", on_delivery=lambda err, m: errors.append(err))
    p_all.flush(30)
    assert len(errors) == 1 and errors[0] is not None and \
        errors[0].code() == KafkaError.NOT_ENOUGH_REPLICAS, errors
    acked = []
    p_one = Producer({"bootstrap.servers": nodes[0].bootstrap, "acks": 1})
    p_one.produce(topic, value=b"one", on_delivery=lambda err, m: acked.append(err))
    p_one.flush(30)
    assert acked == [None]
    for b in (node_by_id(nodes, 4), node_by_id(nodes, 5)):
        b.start()
    wait_for(lambda: (lambda m: m and m[0][2] == [3, 4, 5])(partitions(nodes[0], topic)),
             "the ISR to grow back to three")
    done = []
    p_all.produce(topic, value=b"all-again", on_delivery=lambda err, m: done.append(err))
    p_all.flush(30)
    assert done == [None]


# A consumer group's committed offsets survive the failover of the node that
# coordinates it (the leader of its __consumer_offsets partition).
@pytest.mark.pyclients
def test_group_offsets_survive_coordinator_failover(cluster):  # noqa: F811
    nodes = cluster(3)
    topic = "offs"
    create_topic(nodes[0], topic, 2)
    bootstrap = ",".join(b.bootstrap for b in nodes)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(100):
        p.produce(topic, value=str(i).encode(), partition=i % 2)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "survivors", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(topic, 0, 17), TopicPartition(topic, 1, 23)], asynchronous=False)
    c.close()
    offsets_parts = len(partitions(nodes[0], "__consumer_offsets"))
    assert offsets_parts > 0 and full_isr(nodes, "__consumer_offsets", offsets_parts)
    with kwire.Conn.to(nodes[0].bootstrap) as conn:
        found = find_coordinator_v4(conn, 0, ["survivors"])[0]
    assert found["error"] == 0
    node_by_id(nodes, found["node_id"]).kill9()
    survivors = live(nodes)

    def committed():
        c2 = Consumer({"bootstrap.servers": ",".join(b.bootstrap for b in survivors), "group.id": "survivors"})
        try:
            got = c2.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=5)
            return [(t.partition, t.offset) for t in got]
        except Exception:  # noqa: BLE001  (coordinator moving)
            return None
        finally:
            c2.close()
    assert wait_for(lambda: (lambda r: r if r == [(0, 17), (1, 23)] else None)(committed()),
                    "the committed offsets from the new coordinator") == [(0, 17), (1, 23)]


def produce_values(bootstrap, topic, values, acks, one_by_one=False):
    """Produce values (ints) to partition 0; returns the delivery errors (None:
    acknowledged). one_by_one: each waits for the previous one's answer."""
    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 0, "retries": 0,
                  "message.timeout.ms": 20000})
    for v in values:
        p.produce(topic, value=str(v).encode(), partition=0, on_delivery=lambda err, m: errors.append(err))
        if one_by_one:
            p.flush(30)
    p.flush(30)
    return errors


# KIP-101 / KIP-279: a leader whose last writes reached no follower (acks=1,
# followers paused) dies; a follower takes over at a new epoch and is
# written to; the old leader returns as a follower and must cut its tail at
# the divergence point instead of keeping records the new leader lacks.
# Twice, so the second returning leader's lineage differs by two epochs.
@pytest.mark.pyclients
def test_returning_leader_truncates_unreplicated_tail(cluster):  # noqa: F811
    nodes = cluster(3, settings={"broker.session.timeout.ms": "4000", "auto.leader.rebalance.enable": "false"})
    topic = "diverge"
    create_topic(nodes[0], topic, 1)
    committed, orphans, next_value = [], [], 0
    for round_ in range(2):
        batch = list(range(next_value, next_value + 20))
        next_value += 20
        assert produce_values(",".join(b.bootstrap for b in live(nodes)), topic, batch, "all") == [None] * 20
        committed += batch
        wait_for(lambda: full_isr(nodes, topic, 1), "a full ISR")
        leader_id = wait_for(lambda: (lambda ids: ids.pop() if len(ids) == 1 else None)(
            {partitions(b, topic)[0][0] for b in nodes}), "every node to agree on the leader")
        leader = node_by_id(nodes, leader_id)
        cuts = leader.log_text().count("truncated topic=%s partition=0" % topic)
        followers = [b for b in nodes if b is not leader]
        tail = list(range(next_value, next_value + 30))
        next_value += 30
        for f in followers:
            f.proc.send_signal(signal.SIGSTOP)
        try:
            # On the leader only: a paused follower may still take in the answer to
            # the fetch it had parked (the first record), never the later ones.
            assert produce_values(leader.bootstrap, topic, tail, "1", one_by_one=True) == [None] * 30
        finally:
            leader.kill9()
            for f in followers:
                f.proc.send_signal(signal.SIGCONT)
        orphans += tail
        wait_for(lambda: (lambda m: m and m[0][0] not in (-1, leader_id) and len(m[0][2]) == 2)(
            partitions(followers[0], topic)), "a new leader from the two followers")
        fresh = list(range(next_value, next_value + 20))
        next_value += 20
        assert produce_values(",".join(b.bootstrap for b in followers), topic, fresh, "all") == [None] * 20
        committed += fresh
        leader.start()
        settle(nodes, topic, 1)
        assert leader.log_text().count("truncated topic=%s partition=0" % topic) > cuts, \
            "the old leader did not truncate"
    got = consume_all(nodes[0].bootstrap, topic, 1)[0]
    assert [v for v in got if v not in orphans] == committed, "committed records missing or reordered: %s" % got
    survived = [v for v in got if v in orphans]
    assert len(survived) <= 2, "unacknowledged-by-the-ISR records kept: %s" % survived
