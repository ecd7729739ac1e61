"""Behaviours where Chronik follows Kafka's lead, checked with the clients
that depend on them: error precedence of AlterConfigs, deprecated keys
Kafka 3.x still accepts, the initial rebalance delay of new groups,
LogAppendTime topics, compaction scheduling, and dynamic broker configs."""

import threading
import time

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, Consumer, KafkaError, Producer
from confluent_kafka.admin import ConfigResource
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource as KPConfigResource
from kafka.admin import ConfigResourceType as KPConfigResourceType

import kwire
from test_admin import admin, create_topic, describe_configs_v0, error_of, incremental_alter, result
from test_compaction import _earliest, read_all

NODE_ID = 1              # harness.Broker's default --node-id
CLIENT_TIMEOUT_S = 30.0  # one admin call, one flush, one consume
DEADLINE_S = 30.0        # an asynchronous effect must show by then
POLL_S = 0.05
MAX_TICKS = 40           # small appends that let a segment roll, far from filling one

ERR_NONE = 0
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_INVALID_CONFIG = 40
ERR_INVALID_REQUEST = 42

RES_TOPIC = 2
RES_BROKER = 4
OP_SET, OP_DELETE = 0, 1

SRC_TOPIC = 1
SRC_DYNAMIC_BROKER = 2
SRC_DYNAMIC_DEFAULT_BROKER = 3
SRC_STATIC_BROKER = 4
SRC_DEFAULT = 5


# ---- helpers -------------------------------------------------------------------

def configs_of(broker, rtype, name):
    a = admin(broker)
    res = ConfigResource(rtype, name)
    return result(a.describe_configs([res]))[res]


def wait_for(cond, what, deadline_s=DEADLINE_S):
    end = time.monotonic() + deadline_s
    while not cond():
        assert time.monotonic() < end, "timed out waiting for " + what
        time.sleep(POLL_S)


# ---- AlterConfigs error precedence ---------------------------------------------

# A missing topic is UNKNOWN_TOPIC_OR_PARTITION before its keys are looked at (an unknown key there is not INVALID_CONFIG).
def test_alter_configs_missing_topic_before_keys(broker):
    a = admin(broker)
    res = ConfigResource("topic", "no-such-topic",
                         set_config={"compression.type": "lz4", "offset.metadata.max.bytes": "12345"})
    err = error_of(a.alter_configs([res])[res])
    assert err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err
    with kwire.Conn.to(broker.bootstrap) as c:
        code, msg = incremental_alter(c, "no-such-topic", [("compression.type", OP_SET, "lz4"),
                                                           ("offset.metadata.max.bytes", OP_SET, "12345")])
        assert code == ERR_UNKNOWN_TOPIC_OR_PARTITION, msg
    create_topic(broker, "exists")
    err = error_of(a.alter_configs([ConfigResource("topic", "exists", set_config={
        "offset.metadata.max.bytes": "12345"})])[ConfigResource("topic", "exists")])
    assert err.code() == KafkaError.INVALID_CONFIG, err


# ---- deprecated keys ---------------------------------------------------------------

# message.format.version and message.downconversion.enable are accepted and shown as Kafka 3.x does; the topic works.
def test_deprecated_topic_keys_accepted(broker_factory):
    broker = broker_factory(settings={"log.message.format.version": "2.8",
                                      "log.message.downconversion.enable": "true"})
    create_topic(broker, "old-style", config={"message.format.version": "0.10.0",
                                              "message.downconversion.enable": "false"})
    cfg = configs_of(broker, "topic", "old-style")
    assert (cfg["message.format.version"].value, cfg["message.format.version"].source) == ("0.10.0", SRC_TOPIC)
    assert (cfg["message.downconversion.enable"].value,
            cfg["message.downconversion.enable"].source) == ("false", SRC_TOPIC)
    a = admin(broker)
    res = ConfigResource("topic", "old-style", set_config={"message.format.version": "3.0-IV1"})
    result(a.alter_configs([res]))
    assert configs_of(broker, "topic", "old-style")["message.format.version"].value == "3.0-IV1"
    bad = ConfigResource("topic", "old-style", set_config={"message.format.version": "latest!"})
    assert error_of(a.alter_configs([bad])[bad]).code() == KafkaError.INVALID_CONFIG
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    p.produce("old-style", b"v")
    assert p.flush(CLIENT_TIMEOUT_S) == 0


# ---- group.initial.rebalance.delay.ms ------------------------------------------------

# By default (3000 ms, Kafka's value) two consumers that start together share the group's first rebalance.
def test_initial_rebalance_delay_default(broker_factory):
    broker = broker_factory(settings={"group.initial.rebalance.delay.ms": None})
    cfg = configs_of(broker, "broker", str(NODE_ID))
    assert (cfg["group.initial.rebalance.delay.ms"].value,
            cfg["group.initial.rebalance.delay.ms"].source) == ("3000", SRC_DEFAULT)
    create_topic(broker, "together", partitions=2)
    assigns = {"a": [], "b": []}
    stop, errors = threading.Event(), []

    def member(name):
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "together-group",
                      "client.id": name, "session.timeout.ms": 10000})
        try:
            c.subscribe(["together"], on_assign=lambda _c, parts: assigns[name].append(
                sorted(p.partition for p in parts)))
            while not stop.is_set():
                c.poll(0.05)
        except Exception as e:  # reported by the main thread
            errors.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=member, args=(n,), daemon=True) for n in ("a", "b")]
    for t in threads:
        t.start()
    wait_for(lambda: assigns["a"] and assigns["b"], "both members to be assigned")
    stop.set()
    for t in threads:
        t.join(CLIENT_TIMEOUT_S)
    assert errors == []
    # One rebalance: each member was assigned once, one partition each.
    assert (assigns["a"], assigns["b"]) in (([[0]], [[1]]), ([[1]], [[0]])), assigns


# ---- message.timestamp.type=LogAppendTime --------------------------------------------

def produce_at(broker, topic, timestamp_ms, extra=None):
    """Produces three records with a fixed CreateTime; returns the delivery reports' timestamps."""
    conf = {"bootstrap.servers": broker.bootstrap, "linger.ms": 5}
    conf.update(extra or {})
    p = Producer(conf)
    reports = []
    for i in range(3):
        p.produce(topic, b"v%d" % i, key=b"k", timestamp=timestamp_ms,
                  on_delivery=lambda err, msg: reports.append((err, msg.timestamp())))
    assert p.flush(CLIENT_TIMEOUT_S) == 0
    assert [e for e, _ in reports] == [None] * 3, reports
    return [ts for _, ts in reports]


def consumed_timestamps(broker, topic, count):
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "ts-" + topic,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    out = []
    try:
        c.subscribe([topic])
        end = time.monotonic() + DEADLINE_S
        while len(out) < count and time.monotonic() < end:
            m = c.poll(0.2)
            if m is not None and not m.error():
                out.append(m.timestamp())
    finally:
        c.close()
    assert len(out) == count, out
    return out


# A LogAppendTime topic stamps batches with the broker's clock: the delivery report (from the produce
# response's log_append_time_ms) and the consumer both see it, compressed and idempotent batches too; CreateTime
# topics keep the producer's.
def test_log_append_time_topic(broker):
    create_topic(broker, "lat", config={"message.timestamp.type": "LogAppendTime"})
    create_topic(broker, "ct")
    cfg = configs_of(broker, "topic", "lat")["message.timestamp.type"]
    assert (cfg.value, cfg.source) == ("LogAppendTime", SRC_TOPIC)
    old = 1000000000000
    before = int(time.time() * 1000)
    stamped = produce_at(broker, "lat", old) + produce_at(broker, "lat", old, {"compression.type": "lz4"}) + \
        produce_at(broker, "lat", old, {"enable.idempotence": True})
    after = int(time.time() * 1000)
    for ts_type, ts in stamped:
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME and before <= ts <= after, stamped
    assert consumed_timestamps(broker, "lat", 9) == stamped
    kept = produce_at(broker, "ct", old)
    assert kept == [(TIMESTAMP_CREATE_TIME, old)] * 3
    assert consumed_timestamps(broker, "ct", 3) == kept


# log.message.timestamp.type is the default of topics without an override.
def test_log_append_time_broker_default(broker_factory):
    broker = broker_factory(settings={"log.message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    stamped = produce_at(broker, "auto-lat", 1000000000000)
    cfg = configs_of(broker, "topic", "auto-lat")["message.timestamp.type"]
    assert (cfg.value, cfg.source) == ("LogAppendTime", SRC_STATIC_BROKER)
    assert all(t == TIMESTAMP_LOG_APPEND_TIME and ts >= before for t, ts in stamped), stamped
    assert consumed_timestamps(broker, "auto-lat", 3) == stamped


# ---- compaction scheduling -------------------------------------------------------------

# The cleaner runs every log.cleaner.backoff.ms (not only at retention checks), and max.compaction.lag.ms=100
# bounds how long a record stays uncleaned: 40 records of 4 keys end as the latest value of each key.
def test_compaction_runs_every_cleaner_backoff(broker_factory):
    broker = broker_factory(settings={"log.cleaner.backoff.ms": "200"})
    cfg = {"cleanup.policy": "compact", "segment.bytes": "10000",
           "min.cleanable.dirty.ratio": "0.01", "max.compaction.lag.ms": "100"}
    create_topic(broker, "cleaned", config=cfg)
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "batch.size": 4096})
    pad = b"x" * 1000
    errors = []
    for i in range(40):
        p.produce("cleaned", b"%d-" % i + pad, key=b"k%d" % (i % 4), on_delivery=lambda e, _m: errors.append(e))
        p.poll(0)
    assert p.flush(CLIENT_TIMEOUT_S) == 0
    assert errors == [None] * 40, errors[:3]
    # The active segment rolls once max.compaction.lag.ms has passed (on the next append, as in Kafka):
    # a few small records later, every key has only its latest value left.
    ticks = [0]

    def one_value_per_key():
        if ticks[0] < MAX_TICKS:
            ticks[0] += 1
            p.produce("cleaned", b"t", key=b"tick")
            assert p.flush(CLIENT_TIMEOUT_S) == 0
        values = [(k, v) for _, k, v in read_all(broker, "cleaned")[1] if k != b"tick"]
        return len(values) == 4 and dict(values) == {b"k%d" % k: b"%d-" % (36 + k) + pad for k in range(4)}
    wait_for(one_value_per_key, "one value per key after compaction")



# ---- dynamic broker configs ---------------------------------------------------------------

# AlterConfigs on the cluster-wide default ("") and IncrementalAlterConfigs on this node change dynamic keys:
# DescribeConfigs shows their sources, a topic without an override takes the new log.retention.ms (its
# sealed segments are deleted), and the values survive a restart.
def test_dynamic_broker_config_takes_effect(broker_factory):
    broker = broker_factory(settings={"log.retention.check.interval.ms": "200"})
    create_topic(broker, "aging", config={"segment.bytes": "16384"})
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "batch.size": 4096})
    for i in range(60):
        p.produce("aging", b"x" * 1000, partition=0)
        p.poll(0)
    assert p.flush(CLIENT_TIMEOUT_S) == 0
    assert _earliest(broker, "aging") == 0
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="chronik-it-admin")
    try:
        resp = kp.alter_configs([KPConfigResource(KPConfigResourceType.BROKER, "",
                                                  configs={"log.retention.ms": "1"})])
    finally:
        kp.close()
    assert [r[0] for r in resp.resources] == [ERR_NONE], resp
    wait_for(lambda: _earliest(broker, "aging") > 0, "retention under the new cluster-wide log.retention.ms")
    topic_cfg = configs_of(broker, "topic", "aging")["retention.ms"]
    assert (topic_cfg.value, topic_cfg.source) == ("1", SRC_DYNAMIC_DEFAULT_BROKER)

    with kwire.Conn.to(broker.bootstrap) as c:
        code, msg = incremental_alter(c, str(NODE_ID), [("log.retention.ms", OP_SET, "7200000"),
                                                        ("log.cleaner.backoff.ms", OP_SET, "1000")],
                                      resource_type=RES_BROKER)
        assert code == ERR_NONE, msg
    broker.restart()
    cfg = configs_of(broker, "broker", str(NODE_ID))
    assert (cfg["log.retention.ms"].value, cfg["log.retention.ms"].source) == ("7200000", SRC_DYNAMIC_BROKER)
    assert broker_synonyms(broker, "log.retention.ms") == [
        ("log.retention.ms", "7200000", SRC_DYNAMIC_BROKER), ("log.retention.ms", "1", SRC_DYNAMIC_DEFAULT_BROKER),
        ("log.retention.ms", "604800000", SRC_DEFAULT)]
    assert (cfg["log.cleaner.backoff.ms"].value, cfg["log.cleaner.backoff.ms"].source) == \
        ("1000", SRC_DYNAMIC_BROKER)
    assert not cfg["log.retention.ms"].is_read_only and cfg["num.partitions"].is_read_only
    with kwire.Conn.to(broker.bootstrap) as c:
        code, defaults = describe_configs_v0(c, RES_BROKER, "")
    assert (code, defaults) == (ERR_NONE, {"log.retention.ms": ("1", False, False)})
    assert configs_of(broker, "topic", "aging")["retention.ms"].value == "7200000"

    with kwire.Conn.to(broker.bootstrap) as c:
        code, msg = incremental_alter(c, str(NODE_ID), [("log.retention.ms", OP_DELETE, None)],
                                      resource_type=RES_BROKER)
        assert code == ERR_NONE, msg
    cfg = configs_of(broker, "broker", str(NODE_ID))["log.retention.ms"]
    assert (cfg.value, cfg.source) == ("1", SRC_DYNAMIC_DEFAULT_BROKER)


# A dynamic log.cleaner.backoff.ms applies to the running cleaner: with a static 10-minute backoff, setting
# 200 ms on the cluster-wide default gets a compacted topic cleaned within the deadline.
def test_dynamic_cleaner_backoff(broker_factory):
    broker = broker_factory(settings={"log.cleaner.backoff.ms": "600000"})
    create_topic(broker, "dyn-clean", config={"cleanup.policy": "compact", "segment.bytes": "10000",
                                              "min.cleanable.dirty.ratio": "0.01"})
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "batch.size": 4096})
    for i in range(40):
        p.produce("dyn-clean", b"%d-" % i + b"x" * 1000, key=b"k%d" % (i % 4))
        p.poll(0)
    assert p.flush(CLIENT_TIMEOUT_S) == 0
    with kwire.Conn.to(broker.bootstrap) as c:
        code, msg = incremental_alter(c, "", [("log.cleaner.backoff.ms", OP_SET, "200")], resource_type=RES_BROKER)
        assert code == ERR_NONE, msg
    wait_for(lambda: len(read_all(broker, "dyn-clean")[1]) < 40, "the cleaner under the new backoff")


def broker_synonyms(broker, key):
    """[(name, value, source)] synonyms of one key of this node, through kafka-python (DescribeConfigs v2)."""
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="chronik-it-admin")
    try:
        resp = kp.describe_configs([KPConfigResource(KPConfigResourceType.BROKER, str(NODE_ID))],
                                   include_synonyms=True)
    finally:
        kp.close()
    (res,) = [r for resp_ in resp for r in resp_.resources]
    (entry,) = [e for e in res[4] if e[0] == key]
    return [tuple(x) for x in entry[5]]


# Keys Kafka cannot change at run time are refused with its error (INVALID_REQUEST, "Cannot update these
# configs dynamically"); bad values, unknown keys and other broker ids too, and nothing changes.
def test_dynamic_broker_config_refusals(broker):
    with kwire.Conn.to(broker.bootstrap) as c:
        code, msg = incremental_alter(c, str(NODE_ID), [("log.retention.ms", OP_SET, "5000"),
                                                        ("num.partitions", OP_SET, "3"),
                                                        ("node.id", OP_SET, "2")], resource_type=RES_BROKER)
        assert code == ERR_INVALID_REQUEST and "Cannot update these configs dynamically" in msg, msg
        assert "num.partitions" in msg and "node.id" in msg and "log.retention.ms" not in msg.split(":")[-1]
        code, msg = incremental_alter(c, "", [("log.retention.ms", OP_SET, "soon")], resource_type=RES_BROKER)
        assert code == ERR_INVALID_REQUEST and "log.retention.ms" in msg, msg
        code, msg = incremental_alter(c, "", [("producer.id.expiration.ms", OP_SET, "0")],
                                      resource_type=RES_BROKER)
        assert code == ERR_INVALID_REQUEST and "producer.id.expiration.ms" in msg, msg
        code, msg = incremental_alter(c, "", [("no.such.key", OP_SET, "1")], resource_type=RES_BROKER)
        assert code == ERR_INVALID_CONFIG, msg
        code, msg = incremental_alter(c, "7", [("log.retention.ms", OP_SET, "5000")], resource_type=RES_BROKER)
        assert code == ERR_INVALID_REQUEST, msg
    cfg = configs_of(broker, "broker", str(NODE_ID))["log.retention.ms"]
    assert (cfg.value, cfg.source) == ("604800000", SRC_DEFAULT)
