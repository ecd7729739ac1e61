"""The idempotent producer (KIP-98): producer ids, duplicates, sequence and
epoch checks, producer state across restarts, DescribeProducers.

Hand-built requests use kwire; the record batches carry a producer id,
epoch and base sequence and a real CRC-32C."""

import time

import pytest

import kbatch
import kwire

API_INIT_PRODUCER_ID = 22
API_DESCRIBE_PRODUCERS = 61

ERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45
ERR_INVALID_PRODUCER_EPOCH = 47
ERR_PRODUCER_FENCED = 90


# ---- wire helpers -------------------------------------------------------------

def idempotent_batch(values, pid, epoch, seq):
    """A magic-2 batch of uncompressed records from producer (pid, epoch), first sequence seq."""
    return kbatch.record_batch(values, pid, epoch, seq, timestamp=int(time.time() * 1000))


produce = kbatch.produce


def init_producer_id(conn, version=1, txn_id=None, pid=-1, epoch=-1, timeout_ms=60000):
    """InitProducerId; returns (error code, producer id, epoch)."""
    if version >= 2:
        w = kwire.Writer().compact_string(txn_id).i32(timeout_ms)
        if version >= 3:
            w.i64(pid).i16(epoch)
        w.tags()
    else:
        w = kwire.Writer().string(txn_id).i32(timeout_ms)
    _, body = conn.request(API_INIT_PRODUCER_ID, version, w.bytes(), timeout=15)
    r = kwire.Reader(body)
    r.i32()  # throttle
    return r.i16(), r.i64(), r.i16()


def describe_producers(conn, topic, partition=0):
    """DescribeProducers v0; returns (error code, [(pid, epoch, last seq, last ts, coord epoch, txn start)])."""
    w = kwire.Writer().uvarint(2).compact_string(topic).uvarint(2).i32(partition).tags().tags()
    _, body = conn.request(API_DESCRIBE_PRODUCERS, 0, w.bytes())
    r = kwire.Reader(body)
    r.i32()
    assert r.compact_array_len() == 1 and r.compact_string() == topic
    assert r.compact_array_len() == 1 and r.i32() == partition
    err = r.i16()
    r.compact_string()
    producers = []
    for _ in range(r.compact_array_len()):
        producers.append((r.i64(), r.i32(), r.i32(), r.i64(), r.i32(), r.i64()))
        r.tags()
    return err, producers


def consume_values(broker, topic, expected, timeout_s=60):
    """Every value in the partition, in offset order (stops at the end once expected are read)."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "idem-check",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, 0)])
    out, deadline = [], time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF and len(out) >= expected:
                    break
                continue
            out.append(m.value())
    finally:
        c.close()
    return out


# ---- librdkafka across a kill -9 ---------------------------------------------

# librdkafka with enable.idempotence=true and acks=all keeps producing a numbered sequence while
# the broker is killed -9 (with batches in flight) and restarted, three times: the partition ends up
# with every number exactly once, in order.
@pytest.mark.pyclients
def test_idempotent_producer_survives_kill9(broker):
    from confluent_kafka import Producer
    topic = "idem-kill9"
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "acks": "all",
                  "linger.ms": 2, "message.timeout.ms": 120000, "reconnect.backoff.max.ms": 200,
                  "batch.num.messages": 200})
    errors, acked = [], [0]

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked[0] += 1

    kill_at = [2000, 4000, 6000]
    n, deadline = 0, time.monotonic() + 90
    while time.monotonic() < deadline and (kill_at or n < 10000):
        try:
            p.produce(topic, value=b"%08d" % n, on_delivery=on_delivery)
            n += 1
        except BufferError:
            p.poll(0.01)
        p.poll(0)
        if kill_at and acked[0] >= kill_at[0] and len(p) > 0:
            kill_at.pop(0)
            broker.kill9()
            time.sleep(0.2)  # let requests fail and queue up for retry
            broker.start()
    assert not kill_at, "only %d deliveries acknowledged in time" % acked[0]
    assert p.flush(90) == 0, "messages still undelivered"
    assert not errors, errors[:5]
    values = consume_values(broker, topic, n)
    numbers = [int(v) for v in values]
    dups = len(numbers) - len(set(numbers))
    assert dups == 0, "%d duplicates" % dups
    assert numbers == list(range(n)), "gaps or reordering: %d of %d stored" % (len(numbers), n)


# ---- hand-built requests ---------------------------------------------------------

# A retried batch is acknowledged with its original base offset and not stored twice; a sequence
# gap is OUT_OF_ORDER_SEQUENCE_NUMBER (45); the producer ids differ per InitProducerId.
@pytest.mark.pyclients
def test_duplicate_and_gap(broker):
    topic = "idem-wire"
    with kwire.Conn.to(broker.bootstrap) as c:
        err, pid, epoch = init_producer_id(c)
        assert (err, epoch) == (0, 0) and pid >= 0
        err2, pid2, _ = init_producer_id(c, version=2)
        assert err2 == 0 and pid2 != pid
        first = idempotent_batch([b"a", b"b", b"c"], pid, 0, 0)
        second = idempotent_batch([b"d", b"e"], pid, 0, 3)
        assert produce(c, topic, first) == (0, 0)
        assert produce(c, topic, second) == (0, 3)
        assert produce(c, topic, idempotent_batch([b"a", b"b", b"c"], pid, 0, 0)) == (0, 0)
        assert produce(c, topic, second) == (0, 3)
        assert produce(c, topic, idempotent_batch([b"x"], pid, 0, 9))[0] == ERR_OUT_OF_ORDER_SEQUENCE_NUMBER
        assert produce(c, topic, idempotent_batch([b"f"], pid, 0, 5)) == (0, 5)
        err, producers = describe_producers(c, topic)
        assert err == 0
        assert producers == [(pid, 0, 5, producers[0][3], -1, -1)]
    assert consume_values(broker, topic, 6) == [b"a", b"b", b"c", b"d", b"e", b"f"]


# An epoch bump (InitProducerId v3+ with the current id and epoch) gives epoch + 1; the new epoch
# must start at sequence 0; the old epoch is then INVALID_PRODUCER_EPOCH (47), and asking to bump
# from the old epoch is PRODUCER_FENCED (90) on v4, INVALID_PRODUCER_EPOCH on v3.
def test_epoch_bump_and_fencing(broker):
    topic = "idem-epoch"
    with kwire.Conn.to(broker.bootstrap) as c:
        err, pid, epoch = init_producer_id(c, version=4)
        assert (err, epoch) == (0, 0)
        assert produce(c, topic, idempotent_batch([b"0"], pid, 0, 0)) == (0, 0)
        assert init_producer_id(c, version=4, pid=pid, epoch=0) == (0, pid, 1)
        assert produce(c, topic, idempotent_batch([b"1"], pid, 1, 1))[0] == ERR_OUT_OF_ORDER_SEQUENCE_NUMBER
        assert produce(c, topic, idempotent_batch([b"1"], pid, 1, 0)) == (0, 1)
        assert produce(c, topic, idempotent_batch([b"2"], pid, 0, 1))[0] == ERR_INVALID_PRODUCER_EPOCH
        assert init_producer_id(c, version=4, pid=pid, epoch=0) == (ERR_PRODUCER_FENCED, -1, -1)
        assert init_producer_id(c, version=3, pid=pid, epoch=0) == (ERR_INVALID_PRODUCER_EPOCH, -1, -1)
        # an empty transactional id is malformed (transactional ids: test_txn_coordinator.py)
        assert init_producer_id(c, version=1, txn_id="")[0] == kwire.ERR_INVALID_REQUEST


# After a clean restart the producer state comes from its snapshot: a retry is still a duplicate
# with its original offset, DescribeProducers still lists the producer, and producer ids are
# never handed out twice.
def test_state_and_ids_survive_restart(broker):
    topic = "idem-restart"
    with kwire.Conn.to(broker.bootstrap) as c:
        _, pid, _ = init_producer_id(c)
        for i in range(4):
            assert produce(c, topic, idempotent_batch([b"v%d" % i], pid, 0, i)) == (0, i)
    broker.restart()
    snapshot = broker.data_dir / ("%s-0" % topic) / "chronik.producers"
    assert snapshot.exists()
    with kwire.Conn.to(broker.bootstrap) as c:
        assert produce(c, topic, idempotent_batch([b"v2"], pid, 0, 2)) == (0, 2)
        assert produce(c, topic, idempotent_batch([b"v9"], pid, 0, 9))[0] == ERR_OUT_OF_ORDER_SEQUENCE_NUMBER
        err, producers = describe_producers(c, topic)
        assert err == 0 and [(p[0], p[1], p[2]) for p in producers] == [(pid, 0, 3)]
        _, pid_after, _ = init_producer_id(c)
        assert pid_after > pid
    broker.kill9()
    snapshot.unlink()  # rebuilt from the log alone
    broker.start()
    with kwire.Conn.to(broker.bootstrap) as c:
        assert produce(c, topic, idempotent_batch([b"v3"], pid, 0, 3)) == (0, 3)
        assert produce(c, topic, idempotent_batch([b"v4"], pid, 0, 4)) == (0, 4)
        _, pid_last, _ = init_producer_id(c)
        assert pid_last > pid_after


# DescribeProducers on an unknown partition is UNKNOWN_TOPIC_OR_PARTITION; ApiVersions
# advertises InitProducerId v0-v4 and DescribeProducers v0.
def test_describe_unknown_and_versions(broker):
    with kwire.Conn.to(broker.bootstrap) as c:
        assert describe_producers(c, "no-such-topic")[0] == 3
        apis = kwire.api_versions(c, 3)["apis"]
        assert apis[API_INIT_PRODUCER_ID] == (0, 4)
        assert apis[API_DESCRIBE_PRODUCERS] == (0, 0)
