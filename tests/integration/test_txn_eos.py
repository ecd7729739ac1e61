"""Exactly-once consume-transform-produce with confluent-kafka's transactional producer,
across a kill -9 of a broker while a transaction is open.

The loop reads a batch of an input topic (read_committed, one consumer group), produces
each record's transform to an output topic, hands the consumer's positions to the
transaction (send_offsets_to_transaction) and commits. Part way through, a transaction
is left open (records produced and flushed, offsets sent, no commit) and a broker is
killed with SIGKILL. The loop then starts again as an application would after a crash:
a new producer with the same transactional.id (its InitProducerId fences the old one
and aborts the open transaction), a new consumer resuming from the group's committed
offsets. At the end a read_committed consumer of the output sees every input record's
transform exactly once; a read_uncommitted one may also see the aborted ones, and only
those."""

import json
import shutil
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from harness import run_tool, wait_until
from test_admin import create_topic
from test_cluster import cluster  # noqa: F401  (the cluster fixture)
from test_replication import create_topic as create_replicated_topic
from test_replication import live, node_by_id, partitions
from test_txn_coordinator import TXN_SETTINGS, coordinator_of

DEADLINE_S = 90.0  # ASan brokers on a loaded 2-core machine
N = 300            # input records
NPARTS = 2
BATCH = 25         # records per transaction
BEFORE_KILL = 4    # transactions committed before the one left open
TXN_ID = "eos-loop"
GROUP = "eos-group"
HERE = Path(__file__).resolve().parent


def bootstrap_of(nodes):
    return ",".join(b.bootstrap for b in live(nodes))


def fill_input(bootstrap, topic):
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for i in range(N):
        p.produce(topic, b"in-%d" % i, partition=i % NPARTS)
    assert p.flush(DEADLINE_S) == 0, "undelivered input"
    return {b"in-%d" % i for i in range(N)}


def transform(value):
    return b"out-" + value


class Loop:
    """One incarnation of the application: a transactional producer and a consumer of the
    input in one group; step() runs one read-transform-write transaction."""

    def __init__(self, bootstrap, src, dst):
        self.src, self.dst = src, dst
        self.producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": TXN_ID,
                                  "transaction.timeout.ms": 60000, "linger.ms": 5})
        self.producer.init_transactions(DEADLINE_S)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP,
                                  "isolation.level": "read_committed", "enable.auto.commit": False,
                                  "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
        self.consumer.subscribe([src])

    def read_batch(self):
        """Up to BATCH records (polling until at least one came or the deadline)."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            got = [m for m in self.consumer.consume(BATCH, 1.0) if not m.error()]
            if got:
                return got
        raise AssertionError("no input within %.0f s" % DEADLINE_S)

    def open_transaction(self):
        """Begins, writes a batch's transforms (flushed: on the broker, uncommitted) and the
        consumer's positions; returns the input values."""
        msgs = self.read_batch()
        self.producer.begin_transaction()
        for m in msgs:
            self.producer.produce(self.dst, transform(m.value()), partition=m.partition())
        assert self.producer.flush(DEADLINE_S) == 0, "transactional records undelivered"
        positions = [tp for tp in self.consumer.position(self.consumer.assignment()) if tp.offset >= 0]
        self.producer.send_offsets_to_transaction(positions, self.consumer.consumer_group_metadata(), DEADLINE_S)
        return [m.value() for m in msgs]

    def step(self):
        values = self.open_transaction()
        self.producer.commit_transaction(DEADLINE_S)
        return values

    def close(self):
        self.consumer.close()


def read_all(bootstrap, topic, isolation):
    """Every value a consumer at `isolation` reads from all partitions of topic, once its
    position reached the high watermark of each (so every marker has landed)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "eos-reader-" + isolation,
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "enable.partition.eof": True, "fetch.wait.max.ms": 100})
    c.assign([TopicPartition(topic, p, 0) for p in range(NPARTS)])
    out, deadline = [], time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if not m.error():
                out.append(m.value())
                continue
            assert m.error().code() == KafkaError._PARTITION_EOF, str(m.error())
            highs = [c.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in range(NPARTS)]
            pos = [tp.offset for tp in c.position([TopicPartition(topic, p) for p in range(NPARTS)])]
            if all(q >= h for q, h in zip(pos, highs)):
                return out
    finally:
        c.close()
    raise AssertionError("%s reader stopped after %d records" % (isolation, len(out)))


def run_exactly_once(nodes, crash):
    """Runs the loop over N inputs with one crash (crash(): kills and returns what to
    restart, or None when the caller restarts itself) while a transaction is open;
    checks the output read_committed and read_uncommitted."""
    src, dst = "eos-in", "eos-out"
    inputs = fill_input(bootstrap_of(nodes), src)
    loop = Loop(bootstrap_of(nodes), src, dst)
    done = []
    for _ in range(BEFORE_KILL):
        done += loop.step()
    aborted = loop.open_transaction()
    zombie = loop
    crash()
    zombie.close()  # leaves the group at once: the next consumer need not wait out its session

    loop = Loop(bootstrap_of(nodes), src, dst)  # its InitProducerId aborts the open transaction
    with pytest.raises(KafkaException) as fenced:
        zombie.producer.commit_transaction(DEADLINE_S)
    assert fenced.value.args[0].fatal() or not fenced.value.args[0].retriable(), fenced.value
    deadline = time.monotonic() + 4 * DEADLINE_S
    while len(done) < N:
        assert time.monotonic() < deadline, "the loop processed %d of %d" % (len(done), N)
        done += loop.step()
    loop.close()

    assert len(done) == N and set(done) == inputs  # no input processed twice by a commit
    want = sorted(transform(v) for v in inputs)
    assert sorted(read_all(bootstrap_of(nodes), dst, "read_committed")) == want
    seen = read_all(bootstrap_of(nodes), dst, "read_uncommitted")
    assert set(seen) == set(want)
    extra = list(seen)
    for v in want:
        extra.remove(v)
    assert set(extra) <= {transform(v) for v in aborted}, extra  # only the aborted ones twice


# One broker killed -9 after the open transaction's records and offsets reached it,
# restarted on the same data directory.
@pytest.mark.pyclients
def test_exactly_once_across_broker_kill(broker_factory):
    b = broker_factory(name="broker", settings=TXN_SETTINGS)
    create_topic(b, "eos-in", NPARTS)
    create_topic(b, "eos-out", NPARTS)

    def crash():
        b.kill9()
        b.start()
    run_exactly_once([b], crash)


def eos_cluster(cluster):  # noqa: F811
    nodes = cluster(3, settings=TXN_SETTINGS)
    for t in ("eos-in", "eos-out"):
        create_replicated_topic(nodes[0], t, NPARTS, rf=3)
    return nodes


def kill_and_restart(nodes, victim):
    """Kills victim -9 and restarts it once the others have a leader for every output
    partition again."""
    victim.kill9()
    other = live(nodes)[0]
    wait_until(lambda: (lambda m: m and all(v[0] not in (-1, victim.node_id) for v in m.values()))(
        partitions(other, "eos-out")), "leaders without the killed node", DEADLINE_S)
    victim.start()


# Three nodes: the leader of an output partition dies with the transaction open.
@pytest.mark.pyclients
def test_exactly_once_across_output_leader_kill(cluster):  # noqa: F811
    nodes = eos_cluster(cluster)
    run_exactly_once(nodes, lambda: kill_and_restart(
        nodes, node_by_id(nodes, partitions(nodes[0], "eos-out")[0][0])))


# Three nodes: the transaction coordinator of the loop's transactional.id dies with the
# transaction open.
@pytest.mark.pyclients
def test_exactly_once_across_coordinator_kill(cluster):  # noqa: F811
    nodes = eos_cluster(cluster)
    run_exactly_once(nodes, lambda: kill_and_restart(nodes, coordinator_of(nodes, TXN_ID)))


# ---- kafkajs ------------------------------------------------------------------------

# kafkajs 2.2.4's transactional producer: a committed transaction is seen by a consumer at
# kafkajs's default isolation (read committed), an aborted one only with readUncommitted;
# sendOffsets commits the group's offset with the transaction, and not when it aborts.
@pytest.mark.pyclients
def test_kafkajs_transactions(broker_factory):
    node = shutil.which("node")
    assert node, "node not installed: run tools/deps.sh test"
    b = broker_factory(name="broker", settings=TXN_SETTINGS)
    create_topic(b, "kjs-txn", 1)
    r = run_tool([node, str(HERE / "kafkajs_txn.js"), b.bootstrap, "kjs-txn", "kjs-txn-group"],
                 timeout_s=3 * DEADLINE_S, cwd=HERE)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["committed"] == ["c1", "c2", "c3"]
    assert out["uncommitted"] == ["c1", "c2", "a1", "c3"]
    assert out["offset"] == "7"
