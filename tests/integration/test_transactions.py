"""Transactions on the partition side (KIP-98): transactional batches, markers written
with WriteTxnMarkers (spoken on the wire as a transaction coordinator would), the last
stable offset, and read_committed consumers (librdkafka and kafka-python) that must
never see aborted records while read_uncommitted ones see everything.

Producer ids come from InitProducerId (no transactional id); the batches are built by
hand (kbatch) with the transactional attribute, so no transaction coordinator is needed."""

import re
import time

import pytest

import kbatch
import kwire
from harness import run_tool, wait_until
from test_cluster import cluster  # noqa: F401  (the cluster fixture)

API_LIST_OFFSETS = 2
API_INIT_PRODUCER_ID = 22
API_WRITE_TXN_MARKERS = 27

ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_INVALID_PRODUCER_EPOCH = 47
ERR_INVALID_TXN_STATE = 48

READ_UNCOMMITTED, READ_COMMITTED = 0, 1


# ---- wire helpers -------------------------------------------------------------

def new_producer(conn):
    """A producer id and epoch from InitProducerId v1 (no transactional id)."""
    w = kwire.Writer().string(None).i32(60000)
    _, body = conn.request(API_INIT_PRODUCER_ID, 1, w.bytes(), timeout=15)
    r = kwire.Reader(body)
    r.i32()
    err, pid, epoch = r.i16(), r.i64(), r.i16()
    assert err == 0, err
    return pid, epoch


produce = kbatch.produce


class Txn:
    """One producer's transactional writes to partition 0 of a topic."""

    def __init__(self, conn, topic):
        self.conn, self.topic = conn, topic
        self.pid, self.epoch = new_producer(conn)
        self.seq = 0

    def send(self, *values, transactional=True):
        batch = kbatch.record_batch([v.encode() for v in values], self.pid, self.epoch, self.seq,
                                    timestamp=int(time.time() * 1000), transactional=transactional)
        err, base = produce(self.conn, self.topic, batch)
        if err == 0:
            self.seq += len(values)
        return err, base

    def end(self, commit, epoch=None, coordinator_epoch=0, topic=None):
        return write_txn_markers(self.conn, self.pid, self.epoch if epoch is None else epoch, commit,
                                 topic or self.topic, [0], coordinator_epoch)


def write_txn_markers(conn, pid, epoch, commit, topic, partitions, coordinator_epoch=0):
    """WriteTxnMarkers v1 with one marker; returns {partition: error code}."""
    w = kwire.Writer().uvarint(2).i64(pid).i16(epoch).i8(1 if commit else 0)
    w.uvarint(2).compact_string(topic).uvarint(len(partitions) + 1)
    for p in partitions:
        w.i32(p)
    w.tags()
    w.i32(coordinator_epoch).tags().tags()
    _, body = conn.request(API_WRITE_TXN_MARKERS, 1, w.bytes(), timeout=40)
    r = kwire.Reader(body)
    assert r.compact_array_len() == 1 and r.i64() == pid
    assert r.compact_array_len() == 1 and r.compact_string() == topic
    out = {}
    for _ in range(r.compact_array_len()):
        part, err = r.i32(), r.i16()
        r.tags()
        out[part] = err
    return out


def latest_offset(conn, topic, isolation):
    """ListOffsets v2 latest (-1) for partition 0 at the isolation level given."""
    w = kwire.Writer().i32(-1).i8(isolation).i32(1).string(topic).i32(1).i32(0).i64(-1)
    _, body = conn.request(API_LIST_OFFSETS, 2, w.bytes())
    r = kwire.Reader(body)
    r.i32()
    assert r.array_len() == 1 and r.string() == topic
    assert r.array_len() == 1 and r.i32() == 0
    err, _ts, off = r.i16(), r.i64(), r.i64()
    assert err == 0, err
    return off


# ---- consumers ----------------------------------------------------------------------

def rdkafka_values(broker, topic, isolation, until_offset, timeout_s=30):
    """Values librdkafka delivers from partition 0 until its position reaches until_offset."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "txn-%s" % isolation,
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "isolation.level": isolation, "fetch.wait.max.ms": 100})
    c.assign([TopicPartition(topic, 0, 0)])
    out, deadline = [], time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                out.append(m.value().decode())
            elif m is not None and m.error().code() != KafkaError._PARTITION_EOF:
                raise AssertionError(str(m.error()))
            pos = c.position([TopicPartition(topic, 0)])[0].offset
            if m is not None and m.error() and pos >= until_offset:
                return out
    finally:
        c.close()
    raise AssertionError("librdkafka (%s) stopped at %s before offset %d" % (isolation, out, until_offset))


def kafka_python_has_isolation():
    """kafka-python knows isolation_level (and skips control batches) from 2.1 on; 2.0
    reads uncommitted and returns transaction markers as records."""
    from kafka import KafkaConsumer
    return "isolation_level" in KafkaConsumer.DEFAULT_CONFIG


def kafka_python_values(broker, topic, isolation, expected, timeout_s=30):
    """Values kafka-python delivers from partition 0 until expected are read (or the deadline)."""
    from kafka import KafkaConsumer, TopicPartition
    kw = {"isolation_level": isolation} if kafka_python_has_isolation() else {}
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000,
                      **kw)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek(tp, 0)
    out, deadline = [], time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(out) < len(expected):
            for recs in c.poll(timeout_ms=500).values():
                out.extend(m.value.decode() for m in recs)
    finally:
        c.close()
    return out


def write_mixed(conn, topic):
    """A aborts (two batches around others' data), B commits, plain data in between.
    Returns (offset after the last marker, committed values in offset order)."""
    a, b = Txn(conn, topic), Txn(conn, topic)
    assert a.send("a1", "a2")[0] == 0
    assert produce(conn, topic, kbatch.record_batch([b"p1"]))[0] == 0
    assert b.send("b1")[0] == 0
    assert a.send("a3")[0] == 0
    assert b.send("b2")[0] == 0
    assert a.end(commit=False) == {0: 0}
    assert b.end(commit=True) == {0: 0}
    end = latest_offset(conn, topic, READ_UNCOMMITTED)
    return end, ["p1", "b1", "b2"]


# ---- tests --------------------------------------------------------------------------

# Aborted records never reach read_committed consumers (librdkafka, and kafka-python
# where it has isolation_level); committed and plain ones do, in order;
# read_uncommitted consumers see everything (and no marker as a record).
@pytest.mark.pyclients
def test_aborted_data_is_invisible_to_read_committed(broker):
    topic = "txn-abort"
    with kwire.Conn.to(broker.bootstrap) as conn:
        end, committed = write_mixed(conn, topic)
        assert latest_offset(conn, topic, READ_COMMITTED) == end  # nothing left open
    assert rdkafka_values(broker, topic, "read_committed", end) == committed
    assert sorted(rdkafka_values(broker, topic, "read_uncommitted", end)) == \
        sorted(committed + ["a1", "a2", "a3"])
    if kafka_python_has_isolation():  # older ones also hand control records to the application
        assert kafka_python_values(broker, topic, "read_committed", committed) == committed
        got = kafka_python_values(broker, topic, "read_uncommitted", committed + ["x"] * 3)
        assert sorted(got) == sorted(committed + ["a1", "a2", "a3"])


# An open transaction holds back the last stable offset: read_committed consumers and
# ListOffsets stop at its first offset (later plain data too) until the marker commits it.
@pytest.mark.pyclients
def test_open_transaction_holds_back_read_committed(broker):
    topic = "txn-open"
    with kwire.Conn.to(broker.bootstrap) as conn:
        assert produce(conn, topic, kbatch.record_batch([b"before"]))[0] == 0
        t = Txn(conn, topic)
        _, first = t.send("t1")
        assert produce(conn, topic, kbatch.record_batch([b"after"]))[0] == 0
        hw = latest_offset(conn, topic, READ_UNCOMMITTED)
        assert hw == first + 2
        assert latest_offset(conn, topic, READ_COMMITTED) == first
        assert rdkafka_values(broker, topic, "read_committed", first) == ["before"]
        assert t.end(commit=True) == {0: 0}
        assert latest_offset(conn, topic, READ_COMMITTED) == hw + 1
        assert rdkafka_values(broker, topic, "read_committed", hw + 1) == ["before", "t1", "after"]


# WriteTxnMarkers answers per partition: an epoch older than the partition knows is
# INVALID_PRODUCER_EPOCH, an unknown topic UNKNOWN_TOPIC_OR_PARTITION; a plain batch from
# a producer whose transaction is open is INVALID_TXN_STATE.
def test_write_txn_markers_errors(broker):
    topic = "txn-errors"
    with kwire.Conn.to(broker.bootstrap) as conn:
        t = Txn(conn, topic)
        t.epoch = 3
        assert t.send("x1")[0] == 0
        assert t.send("x2", transactional=False)[0] == ERR_INVALID_TXN_STATE
        assert t.end(commit=False, epoch=2) == {0: ERR_INVALID_PRODUCER_EPOCH}
        assert t.end(commit=False, topic="txn-no-such-topic") == {0: ERR_UNKNOWN_TOPIC_OR_PARTITION}
        assert write_txn_markers(conn, t.pid, 3, True, topic, [0, 7]) == {0: 0, 7: ERR_UNKNOWN_TOPIC_OR_PARTITION}
        assert latest_offset(conn, topic, READ_COMMITTED) == latest_offset(conn, topic, READ_UNCOMMITTED)


# The aborted-transaction index and the open transactions survive a kill -9 (the index
# is rebuilt from the log) and a clean restart: read_committed still filters, and a
# transaction left open still holds the LSO until its marker comes.
@pytest.mark.pyclients
def test_transactions_survive_restarts(broker):
    topic = "txn-restart"
    with kwire.Conn.to(broker.bootstrap) as conn:
        end, committed = write_mixed(conn, topic)
        t = Txn(conn, topic)
        _, first = t.send("open1")
    broker.kill9()
    broker.start()
    with kwire.Conn.to(broker.bootstrap) as conn:
        assert latest_offset(conn, topic, READ_COMMITTED) == first
    assert rdkafka_values(broker, topic, "read_committed", first) == committed
    broker.stop()
    broker.start()
    with kwire.Conn.to(broker.bootstrap) as conn:
        assert latest_offset(conn, topic, READ_COMMITTED) == first
        assert write_txn_markers(conn, t.pid, t.epoch, False, topic, [0]) == {0: 0}
        wait_until(lambda: latest_offset(conn, topic, READ_COMMITTED) == first + 2, "LSO after the abort")
    assert rdkafka_values(broker, topic, "read_committed", first + 2) == committed


# `chronik log dump` shows each marker (COMMIT / ABORT, coordinator epoch) and the
# segment's aborted-transaction index entries (producer, first and last offsets, LSO);
# `chronik log check` passes them and reports a torn index of a sealed segment.
def test_log_dump_shows_markers_and_index(broker_factory):
    broker = broker_factory(name="dump", settings={"log.segment.bytes": 16384})
    topic = "txn-dump"
    with kwire.Conn.to(broker.bootstrap) as conn:
        a = Txn(conn, topic)
        assert a.send("a1")[0] == 0
        assert a.end(commit=False, coordinator_epoch=4) == {0: 0}
        b = Txn(conn, topic)
        assert b.send("b1")[0] == 0
        assert b.end(commit=True, coordinator_epoch=5) == {0: 0}
        for _ in range(2):  # the second rolls the segment: the markers' one is sealed
            assert produce(conn, topic, kbatch.record_batch([b"x" * 9000]))[0] == 0
    broker.stop()
    part = broker.data_dir / (topic + "-0")
    r = run_tool([str(broker.binary), "log", "dump", str(part)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "endTxnMarker: ABORT coordinatorEpoch: 4" in r.stdout, r.stdout
    assert "endTxnMarker: COMMIT coordinatorEpoch: 5" in r.stdout, r.stdout
    entries = re.findall(r"producerId: (\d+) firstOffset: (\d+) lastOffset: (\d+) lastStableOffset: (\d+)",
                         r.stdout)
    assert entries == [(str(a.pid), "0", "1", "2")], r.stdout
    r = run_tool([str(broker.binary), "log", "check", str(part)])
    assert r.returncode == 0 and "transaction index" not in r.stdout, r.stdout
    index = sorted(part.glob("*.txnindex"))[0]
    index.write_bytes(index.read_bytes()[:-3])  # torn
    r = run_tool([str(broker.binary), "log", "check", str(part)])
    assert r.returncode == 1 and "problem: transaction index torn or invalid" in r.stdout, r.stdout


# ---- replicated partitions ----------------------------------------------------------

ERR_NOT_LEADER_OR_FOLLOWER = 6


# Followers track open transactions and build their own aborted-transaction index from the
# replicated markers: after the leader is killed, the new leader keeps read_committed
# consumers at the open transaction's start, still filters the aborted data, and commits
# the open transaction when its marker comes. A follower refuses markers.
@pytest.mark.pyclients
def test_followers_keep_transactions_across_failover(cluster):  # noqa: F811
    from test_replication import create_topic, node_by_id, partitions, wait_for, full_isr, live
    nodes = cluster(3)
    topic = "txn-failover"
    create_topic(nodes[0], topic, 1)
    leader_id = partitions(nodes[0], topic)[0][0]
    leader = node_by_id(nodes, leader_id)
    follower = next(b for b in nodes if b.node_id != leader_id)
    with kwire.Conn.to(leader.bootstrap) as conn:
        end, committed = write_mixed(conn, topic)
        t = Txn(conn, topic)
        _, first = t.send("open1")
    with kwire.Conn.to(follower.bootstrap) as conn:
        assert write_txn_markers(conn, t.pid, t.epoch, True, topic, [0]) == {0: ERR_NOT_LEADER_OR_FOLLOWER}
    wait_for(lambda: full_isr(nodes, topic, 1), "a full ISR holding every write")
    leader.kill9()
    other = live(nodes)[0]
    wait_for(lambda: (lambda m: m and m[0][0] not in (-1, leader_id))(partitions(other, topic)), "a new leader")
    new_leader = node_by_id(nodes, partitions(other, topic)[0][0])
    with kwire.Conn.to(new_leader.bootstrap) as conn:
        assert latest_offset(conn, topic, READ_UNCOMMITTED) == first + 1
        assert latest_offset(conn, topic, READ_COMMITTED) == first
    assert rdkafka_values(new_leader, topic, "read_committed", first) == committed
    with kwire.Conn.to(new_leader.bootstrap) as conn:
        assert write_txn_markers(conn, t.pid, t.epoch, True, topic, [0]) == {0: 0}
        assert latest_offset(conn, topic, READ_COMMITTED) == first + 2
    assert rdkafka_values(new_leader, topic, "read_committed", first + 2) == committed + ["open1"]


# Markers on __consumer_offsets are written and acknowledged like any other (then handed
# to the group coordinator); the coordinator's reload after a restart skips them and
# keeps the committed offsets.
@pytest.mark.pyclients
def test_markers_on_consumer_offsets(broker):
    from confluent_kafka import Consumer, TopicPartition
    topic = "txn-groups"
    with kwire.Conn.to(broker.bootstrap) as conn:
        assert produce(conn, topic, kbatch.record_batch([b"v"]))[0] == 0
        pid, epoch = new_producer(conn)

    def committed():
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "txn-g", "enable.auto.commit": False})
        try:
            return c.committed([TopicPartition(topic, 0)], timeout=20)[0].offset
        finally:
            c.close()

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "txn-g", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    c.close()
    with kwire.Conn.to(broker.bootstrap) as conn:
        errs = write_txn_markers(conn, pid, epoch, True, "__consumer_offsets", list(range(50)))
    assert errs == {p: 0 for p in range(50)}
    broker.stop()
    broker.start()
    assert committed() == 1
