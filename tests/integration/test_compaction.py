"""Log compaction as clients see it: a topic with cleanup.policy=compact
keeps the latest value of every key at its original offset, drops older
values and (after delete.retention.ms) tombstones, never moves the log
start, and refuses records without a key."""

import os
import struct
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer
from confluent_kafka import TopicPartition as CkTopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

# Every test here drives confluent-kafka or kafka-python: the new-clients run repeats them.
pytestmark = pytest.mark.pyclients

CLIENT_TIMEOUT_S = 30.0      # one admin call or one produce flush
COMPACTION_DEADLINE_S = 60.0  # the cleaner must have caught up by then
POLL_INTERVAL_S = 0.2
READ_DEADLINE_S = 20.0       # one full read of the partition

SEGMENT_BYTES = 14336        # the smallest segment size the broker accepts
KEYS = 10
UPDATES = 1500
AFTER_TOMBSTONE = 300        # updates after the tombstone, so that it gets sealed
VALUE_PAD = 200
SEGMENT_FILES_MAX = 4        # compacted segments merge: few files remain
COMMITS = 2000
OFFSETS_BYTES_MAX = 3 * SEGMENT_BYTES  # the active segment plus a compacted remainder


def create_topic(broker, name, policy):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    config = {"cleanup.policy": policy, "segment.bytes": str(SEGMENT_BYTES),
              "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100"}
    for f in a.create_topics([NewTopic(name, 1, 1, config=config)]).values():
        f.result(timeout=CLIENT_TIMEOUT_S)


def produce(broker, topic, records, compression="none"):
    """Produces (key, value) pairs in order; returns {offset: (key, value)}."""
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "batch.size": SEGMENT_BYTES // 2,
                  "compression.type": compression})
    reports = []
    for k, v in records:
        p.produce(topic, v, key=k, partition=0,
                  on_delivery=lambda err, msg: reports.append((err, msg.offset(), msg.key(), msg.value())))
    assert p.flush(CLIENT_TIMEOUT_S) == 0, "undelivered messages"
    assert all(r[0] is None for r in reports), [r for r in reports if r[0] is not None][:3]
    return {off: (k, v) for _, off, k, v in reports}


def read_all(broker, topic):
    """(earliest offset, [(offset, key, value)]) of partition 0, read to its end."""
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest")
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        earliest = c.beginning_offsets([tp])[tp]
        end = c.end_offsets([tp])[tp]
        c.seek_to_beginning(tp)
        out = []
        deadline = time.monotonic() + READ_DEADLINE_S
        while (not out or out[-1][0] < end - 1) and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                out.extend((r.offset, r.key, r.value) for r in recs)
        assert out and out[-1][0] == end - 1, "could not read up to the end offset %d" % end
        return earliest, out
    finally:
        c.close()


def read_all_librdkafka(broker, topic):
    """read_all through librdkafka, which decodes every codec (zstd included)."""
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "compaction-reader",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        earliest, end = c.get_watermark_offsets(CkTopicPartition(topic, 0), timeout=CLIENT_TIMEOUT_S)
        c.assign([CkTopicPartition(topic, 0, OFFSET_BEGINNING)])
        out = []
        deadline = time.monotonic() + READ_DEADLINE_S
        while (not out or out[-1][0] < end - 1) and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                out.append((m.offset(), m.key(), m.value()))
        assert out and out[-1][0] == end - 1, "could not read up to the end offset %d" % end
        return earliest, out
    finally:
        c.close()


def segment_files(broker, topic):
    return sorted((broker.data_dir / ("%s-0" % topic)).glob("*.log"))


def compacted_state(broker, topic, produced, deleted_key, max_records=KEYS + SEGMENT_BYTES // VALUE_PAD,
                    reader=read_all):
    """None when the log is not compacted yet, else a summary for the checks."""
    earliest, recs = reader(broker, topic)
    assert earliest == 0, "the log start moved to %d" % earliest
    for off, k, v in recs:  # offsets never move: each survivor is what was produced there
        assert produced.get(off) == (k, v), "offset %d holds %r, produced %r" % (off, (k, v), produced.get(off))
    latest = {}
    for off in sorted(produced):
        latest[produced[off][0]] = off
    kept = {off for off, _, _ in recs}
    assert all(latest[k] in kept for k in latest if k != deleted_key), "a latest value is missing"
    if any(k == deleted_key for _, k, _ in recs):
        return None  # the tombstone or an older value of its key is still there
    if len(recs) > max_records or len(segment_files(broker, topic)) > SEGMENT_FILES_MAX:
        return None
    return len(recs)


@pytest.mark.parametrize("policy", ["compact", "compact,delete"])
def test_compacted_topic_keeps_latest_per_key(broker_factory, policy):
    b = broker_factory(settings={"log.cleaner.backoff.ms": "200"})
    topic = "compacted-" + policy.replace(",", "-")
    create_topic(b, topic, policy)
    pad = b"x" * VALUE_PAD
    records = [(b"k%d" % (i % KEYS), b"v%d-" % i + pad) for i in range(UPDATES)]
    deleted = b"k%d" % (KEYS - 1)
    records.append((deleted, None))
    records += [(b"k%d" % (i % (KEYS - 1)), b"w%d-" % i + pad) for i in range(AFTER_TOMBSTONE)]
    produced = produce(b, topic, records)
    assert len(produced) == len(records)
    deadline = time.monotonic() + COMPACTION_DEADLINE_S
    state = compacted_state(b, topic, produced, deleted)
    while state is None and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S)
        state = compacted_state(b, topic, produced, deleted)
    assert state is not None, "not compacted within %.0f s: %d segment files" % (
        COMPACTION_DEADLINE_S, len(segment_files(b, topic)))
    assert state < len(records) // 10


def batch_codecs(broker, topic):
    """The codec of every record batch with records in the partition's segment files."""
    codecs = []
    for f in segment_files(broker, topic):
        data = f.read_bytes()
        pos = 0
        while pos + 61 <= len(data):
            length, = struct.unpack_from(">i", data, pos + 8)
            attributes, = struct.unpack_from(">h", data, pos + 21)
            count, = struct.unpack_from(">i", data, pos + 57)
            if count > 0:
                codecs.append(attributes & 7)
            pos += 12 + length
    return codecs


CODEC_IDS = {"gzip": 1, "zstd": 4}


# Compressed batches (written by librdkafka) are compacted too: the count
# shrinks, the latest value per key stays at its offset, the tombstone goes,
# and the surviving batches are still compressed with the producer's codec.
@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_topic_compacted(broker_factory, compression):
    b = broker_factory(settings={"log.cleaner.backoff.ms": "200"})
    topic = "compacted-" + compression
    create_topic(b, topic, "compact")

    def value(tag, i):  # hex text: compresses to about half, so batches stay compressed
        return b"%s%d-" % (tag, i) + os.urandom(VALUE_PAD // 2).hex().encode()
    records = [(b"k%d" % (i % KEYS), value(b"v", i)) for i in range(UPDATES)]
    deleted = b"k%d" % (KEYS - 1)
    records.append((deleted, None))
    records += [(b"k%d" % (i % (KEYS - 1)), value(b"w", i)) for i in range(AFTER_TOMBSTONE)]
    produced = produce(b, topic, records, compression)
    assert len(produced) == len(records)
    assert CODEC_IDS[compression] in batch_codecs(b, topic), "the producer did not compress"
    max_records = KEYS + 2 * SEGMENT_BYTES // VALUE_PAD  # the active segment holds more compressed
    deadline = time.monotonic() + COMPACTION_DEADLINE_S
    state = compacted_state(b, topic, produced, deleted, max_records, read_all_librdkafka)
    while state is None and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S)
        state = compacted_state(b, topic, produced, deleted, max_records, read_all_librdkafka)
    assert state is not None, "not compacted within %.0f s: %d segment files" % (
        COMPACTION_DEADLINE_S, len(segment_files(b, topic)))
    assert state < len(records) // 10
    codecs = batch_codecs(b, topic)
    assert codecs and all(c == CODEC_IDS[compression] for c in codecs), codecs


# A compacted topic refuses a batch holding a record without a key, also
# when the batch is compressed, and takes keyed ones.
@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_compacted_topic_refuses_keyless_records(broker, compression):
    topic = "compacted-keys-" + compression
    create_topic(broker, topic, "compact")
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "retries": 0,
                  "compression.type": compression})
    reports = []
    p.produce(topic, b"no key " * 20, partition=0, on_delivery=lambda err, msg: reports.append(err))
    assert p.flush(CLIENT_TIMEOUT_S) == 0  # one batch each: a batch is refused whole
    p.produce(topic, b"keyed " * 20, key=b"k", partition=0, on_delivery=lambda err, msg: reports.append(err))
    assert p.flush(CLIENT_TIMEOUT_S) == 0
    assert reports[0] is not None and reports[0].code() == KafkaError.INVALID_RECORD, reports
    assert reports[1] is None, reports


def offsets_log_bytes(broker):
    """The segments' sizes; one the cleaner removes while they are listed counts 0."""
    total = 0
    for f in (broker.data_dir / "__consumer_offsets-0").glob("*.log"):
        try:
            total += f.stat().st_size
        except FileNotFoundError:
            pass
    return total


# Commit-heavy load: __consumer_offsets (compacted by the group coordinator's
# topic config) stays bounded, and the committed offset survives a restart,
# rebuilt from the compacted log.
def test_consumer_offsets_stay_bounded(broker_factory):
    b = broker_factory(settings={"log.cleaner.backoff.ms": "200", "offsets.topic.num.partitions": "1"})
    create_topic(b, "source", "delete")
    c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id="heavy", enable_auto_commit=False)
    tp = TopicPartition("source", 0)
    c.assign([tp])
    c.commit({tp: OffsetAndMetadata(0, "")})
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    res = ConfigResource("topic", "__consumer_offsets", set_config={
        "cleanup.policy": "compact", "retention.ms": "-1", "segment.bytes": str(SEGMENT_BYTES),
        "min.cleanable.dirty.ratio": "0.01"})
    for f in a.alter_configs([res]).values():
        f.result(timeout=CLIENT_TIMEOUT_S)
    for i in range(1, COMMITS + 1):
        c.commit({tp: OffsetAndMetadata(i, "m" * VALUE_PAD)})
    c.close()
    written = COMMITS * VALUE_PAD
    assert written > 5 * OFFSETS_BYTES_MAX
    deadline = time.monotonic() + COMPACTION_DEADLINE_S
    while offsets_log_bytes(b) > OFFSETS_BYTES_MAX and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S)
    assert offsets_log_bytes(b) <= OFFSETS_BYTES_MAX, "__consumer_offsets holds %d bytes after %d bytes of commits" % (
        offsets_log_bytes(b), written)
    b.restart()
    c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id="heavy", enable_auto_commit=False)
    try:
        assert c.committed(tp) == COMMITS
    finally:
        c.close()


def _earliest(broker, topic):
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        return c.beginning_offsets([tp])[tp]
    finally:
        c.close()


# A compact-only topic is exempt from time retention (the latest value of every key is
# kept forever), while a compact,delete topic is not: with retention.ms=1 only the
# latter loses its sealed segments.
def test_compact_only_topic_ignores_time_retention(broker_factory):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    b = broker_factory(settings={"log.retention.check.interval.ms": 100})
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    common = {"retention.ms": "1", "segment.bytes": "16384", "min.cleanable.dirty.ratio": "0.99"}
    topics = {"keep-forever": dict(common, **{"cleanup.policy": "compact"}),
              "compact-delete": dict(common, **{"cleanup.policy": "compact,delete"})}
    for f in admin.create_topics([NewTopic(t, 1, 1, config=c) for t, c in topics.items()]).values():
        f.result(30)
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "batch.size": 4096})
    for t in topics:
        for i in range(400):
            p.produce(t, key=b"k%d" % i, value=b"v" * 100)
    assert p.flush(30) == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _earliest(b, "compact-delete") == 0:
        time.sleep(0.05)
    assert _earliest(b, "compact-delete") > 0, "time retention never ran on compact,delete"
    assert _earliest(b, "keep-forever") == 0
