"""The single-node data path with real clients: produce, consume, compression,
auto-creation, durability across kill -9, and the produce error codes."""

import json
import struct
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import harness
import kbatch
import kwire

HERE = Path(__file__).resolve().parent
CODECS = ["gzip", "snappy", "lz4", "zstd"]


def kcat_consume(kcat, bootstrap, topic, fmt="%k\t%s\n", count=None, timeout_s=60):
    cmd = [kcat, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", fmt]
    if count is not None:
        cmd += ["-c", str(count)]
    r = harness.run_tool(cmd, timeout_s=timeout_s)
    assert r.returncode == 0, r.stderr
    return r.stdout


def dump_codecs(broker, topic, partition=0):
    """Codec names of the stored batches, from `chronik log dump` (offline-safe read)."""
    r = harness.run_tool([str(harness.CHRONIK_BIN), "log", "dump",
                          str(broker.data_dir / ("%s-%d" % (topic, partition)))])
    assert r.returncode == 0, r.stdout + r.stderr
    return {line.split("codec:")[1].split()[0] for line in r.stdout.splitlines() if "codec: " in line}


# kcat produces 10,000 keyed messages to a new topic and consumes them back identical, in order.
def test_kcat_10000_keyed_messages_roundtrip(broker, kcat):
    topic = "kcat-roundtrip"
    lines = ["key-%05d:value-%05d-%s" % (i, i, uuid.uuid4().hex) for i in range(10000)]
    r = subprocess.run([kcat, "-P", "-b", broker.bootstrap, "-t", topic, "-K:"],
                       input="\n".join(lines) + "\n", text=True, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = kcat_consume(kcat, broker.bootstrap, topic, fmt="%k:%s\n", count=10000)
    assert out.splitlines() == lines


# confluent-kafka with acks=all and each codec: every delivery is acknowledged, the
# batches are stored compressed as they came, and consumers get the values back.
@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.pyclients
def test_confluent_acks_all_compressed(broker, kcat, codec):
    from confluent_kafka import Producer
    topic = "codec-%s" % codec
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all",
                  "compression.type": codec, "linger.ms": 5})
    delivered, errors = [], []

    def on_delivery(err, msg):
        (errors if err else delivered).append(err or msg.offset())

    values = ["%s-value-%d-%s" % (codec, i, "x" * (i % 50)) for i in range(2000)]
    for i, v in enumerate(values):
        p.produce(topic, key=b"k%d" % i, value=v.encode(), on_delivery=on_delivery)
        p.poll(0)
    assert p.flush(30) == 0
    assert errors == []
    assert sorted(delivered) == list(range(len(values)))
    out = kcat_consume(kcat, broker.bootstrap, topic, fmt="%s\n", count=len(values))
    assert out.splitlines() == values
    broker.stop()
    assert codec in dump_codecs(broker, topic), "batches were not stored %s-compressed" % codec
    broker.start()


# kafka-python (acks=1) to a brand-new topic: flush() returns well under a second
# (auto-creation through the controller is quick), and a consumer reads it back.
@pytest.mark.pyclients
def test_kafka_python_new_topic_flush_is_quick(broker):
    from kafka import KafkaConsumer, KafkaProducer
    topic = "kp-fresh-%s" % uuid.uuid4().hex[:8]
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks=1)
    p.partitions_for(topic)  # the first metadata request creates the topic
    start = time.monotonic()
    for i in range(100):
        p.send(topic, key=b"k%d" % i, value=b"v%d" % i)
    p.flush(timeout=10)
    elapsed = time.monotonic() - start
    p.close()
    assert elapsed < 1.0, "flush took %.3f s" % elapsed
    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                      consumer_timeout_ms=5000)
    got = [(m.key, m.value) for m in c]
    c.close()
    assert got == [(b"k%d" % i, b"v%d" % i) for i in range(100)]


# kafkajs 2.2.4 produces with acks=-1; the records are there to consume.
def test_kafkajs_produces(broker, kcat):
    msgs = ["k%d=v%d" % (i, i) for i in range(20)]
    r = harness.run_tool(["node", str(HERE / "kafkajs_produce.js"), broker.bootstrap, "kjs-topic", "-1"]
                         + msgs, cwd=str(HERE), timeout_s=60)
    assert r.returncode == 0, r.stderr
    ack = json.loads(r.stdout.strip().splitlines()[-1])
    assert ack[0]["errorCode"] == 0
    out = kcat_consume(kcat, broker.bootstrap, "kjs-topic", fmt="%k=%s\n", count=20)
    assert out.splitlines() == msgs


# kill -9 in the middle of a producer run: after a restart every message whose
# delivery was acknowledged is consumable, at its acknowledged offset, intact.
@pytest.mark.pyclients
def test_kill9_keeps_every_acknowledged_message(broker, kcat):
    from confluent_kafka import Producer
    topic = "kill9"
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 2,
                  "message.timeout.ms": 5000, "retries": 0})
    acked = {}

    def on_delivery(err, msg):
        if err is None:
            acked[msg.offset()] = msg.value()

    deadline = time.monotonic() + 30
    i = 0
    killed = False
    while time.monotonic() < deadline:
        try:
            p.produce(topic, value=b"msg-%08d" % i, on_delivery=on_delivery)
            i += 1
        except BufferError:
            pass
        p.poll(0.001 if not killed else 0.05)
        if not killed and len(acked) >= 3000:
            broker.kill9()
            killed = True
            stop_at = time.monotonic() + 3
            deadline = min(deadline, stop_at)
    p.flush(6)
    assert killed, "only %d deliveries acknowledged in time" % len(acked)
    broker.start()
    out = kcat_consume(kcat, broker.bootstrap, topic, fmt="%o %s\n")
    stored = {int(line.split(" ", 1)[0]): line.split(" ", 1)[1].encode()
              for line in out.splitlines() if line}
    missing = [o for o in acked if stored.get(o) != acked[o]]
    assert not missing, "%d acknowledged messages lost or changed, e.g. offsets %s" % (
        len(missing), sorted(missing)[:5])


# ---- produce error codes, with hand-built requests ---------------------------

def record_batch(values, corrupt_crc=False):
    return kbatch.record_batch(values, corrupt_crc=corrupt_crc)


def produce_v7(conn, topic, batch, corr=7):
    w = kwire.Writer().i16(-1).i16(1).i32(5000).i32(1).string(topic).i32(1).i32(0)
    w.i32(len(batch)).raw(batch)
    conn.send_frame(kwire.request_header(0, 7, corr, "chronik-it") + w.bytes())
    r = kwire.Reader(conn.recv_frame())
    assert r.i32() == corr
    assert r.array_len() == 1
    assert r.string() == topic
    assert r.array_len() == 1
    assert r.i32() == 0
    err = r.i16()
    base = r.i64()
    return err, base


# A valid hand-built batch is accepted; a bad CRC gets CORRUPT_MESSAGE (2); a batch over
# max.message.bytes gets MESSAGE_TOO_LARGE (10); a bad topic name INVALID_TOPIC_EXCEPTION (17).
def test_produce_error_codes(broker_factory):
    b = broker_factory(settings={"message.max.bytes": 2000})
    with kwire.Conn.to(b.bootstrap) as c:
        assert produce_v7(c, "errs", record_batch([b"hello", b"world"])) == (0, 0)
        assert produce_v7(c, "errs", record_batch([b"again"])) == (0, 2)
        assert produce_v7(c, "errs", record_batch([b"bad"], corrupt_crc=True))[0] == 2
        assert produce_v7(c, "errs", record_batch([b"x" * 3000]))[0] == 10
        assert produce_v7(c, "bad/name", record_batch([b"x"]))[0] == 17
        assert produce_v7(c, "errs", record_batch([b"after"])) == (0, 3)


# Produce v0-v2 is advertised (librdkafka gates gzip/snappy/lz4 on it), but the old
# message formats (magic 0 and 1) are refused with UNSUPPORTED_FOR_MESSAGE_FORMAT (43).
@pytest.mark.parametrize("version", [0, 2])
def test_produce_old_message_format_refused(broker, version):
    value = b"old"
    msg = struct.pack(">bbq", 1, 0, 0) + struct.pack(">i", -1) + struct.pack(">i", len(value)) + value
    msg = struct.pack(">I", 0) + msg  # CRC (not reached: the magic is refused first)
    mset = struct.pack(">qi", 0, len(msg)) + msg
    w = kwire.Writer().i16(1).i32(5000).i32(1).string("old-format").i32(1).i32(0)
    w.i32(len(mset)).raw(mset)
    with kwire.Conn.to(broker.bootstrap) as c:
        c.send_frame(kwire.request_header(0, version, 11, "chronik-it") + w.bytes())
        r = kwire.Reader(c.recv_frame())
        assert r.i32() == 11
        assert r.array_len() == 1 and r.string() == "old-format"
        assert r.array_len() == 1 and r.i32() == 0
        assert r.i16() == 43


# A batch larger than the topic's segment.bytes is refused with RECORD_LIST_TOO_LARGE (18),
# a final error, not a retriable storage error; smaller batches still go in.
@pytest.mark.pyclients
def test_batch_larger_than_segment_is_refused(broker):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("small-seg", 1, 1, config={"segment.bytes": "16384"})])["small-seg"].result(30)
    with kwire.Conn.to(broker.bootstrap) as c:
        assert produce_v7(c, "small-seg", record_batch([b"y" * 500] * 40))[0] == 18
        assert produce_v7(c, "small-seg", record_batch([b"small"])) == (0, 0)
