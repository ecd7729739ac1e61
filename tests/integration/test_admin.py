"""Single-node admin APIs as clients see them: DescribeConfigs, AlterConfigs,
IncrementalAlterConfigs, CreatePartitions, DeleteRecords, DescribeCluster,
and the topic lifecycle around them.

confluent-kafka's AdminClient (librdkafka) and kafka-python's
KafkaAdminClient drive what they implement; the APIs they lack here
(IncrementalAlterConfigs, DeleteRecords, DescribeCluster) and exact-field
checks go over the wire with kwire."""

import os
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, ConfigResource, ConfigSource, NewPartitions,
                                   NewTopic)
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource as KPConfigResource
from kafka.admin import ConfigResourceType as KPConfigResourceType

import harness
import kwire

# Every test here drives confluent-kafka or kafka-python: the new-clients run repeats them.
pytestmark = pytest.mark.pyclients

NODE_ID = 1                # harness.Broker's default --node-id
CLIENT_TIMEOUT_S = 30.0    # one admin call or one produce flush
POLL_DEADLINE_S = 15.0     # an asynchronous effect (directory removal) must show by then
POLL_INTERVAL_S = 0.05

# Kafka error codes.
ERR_NONE = 0
ERR_OFFSET_OUT_OF_RANGE = 1
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_INVALID_PARTITIONS = 37
ERR_INVALID_REPLICA_ASSIGNMENT = 39
ERR_INVALID_CONFIG = 40
ERR_INVALID_REQUEST = 42
ERR_UNSUPPORTED_ENDPOINT_TYPE = 115

# ConfigSource ids on the wire.
SRC_TOPIC = 1
SRC_STATIC_BROKER = 4
SRC_DEFAULT = 5

RES_TOPIC = 2
RES_BROKER = 4

OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3

API_LIST_OFFSETS = 2
API_FETCH = 1
API_DELETE_RECORDS = 21
API_DESCRIBE_CONFIGS = 32
API_CREATE_PARTITIONS = 37
API_INCREMENTAL_ALTER_CONFIGS = 44
API_DESCRIBE_CLUSTER = 60

DEFAULT_SEGMENT_BYTES = "1073741824"
DEFAULT_RETENTION_MS = "604800000"
SMALL_SEGMENT_BYTES = 16384   # above the 14 KiB minimum


# ---- helpers: clients --------------------------------------------------------

def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap, "socket.timeout.ms": 10000})


def result(futures):
    """Waits for every future of an AdminClient call; returns {key: result}."""
    return {k: f.result(timeout=CLIENT_TIMEOUT_S) for k, f in futures.items()}


def error_of(future):
    """The KafkaError a failed admin future carries (fails the test if it succeeded)."""
    with pytest.raises(KafkaException) as e:
        future.result(timeout=CLIENT_TIMEOUT_S)
    return e.value.args[0]


def create_topic(broker, name, partitions=1, config=None):
    a = admin(broker)  # the client must outlive its futures
    result(a.create_topics([NewTopic(name, partitions, 1, config=config or {})]))


def topic_configs(broker, name):
    """{key: ConfigEntry} of a topic, with synonyms."""
    a = admin(broker)
    res = ConfigResource("topic", name)
    return result(a.describe_configs([res]))[res]


def produce(broker, topic, values, partition=0, extra=None):
    """Produces values to one partition, flushing; returns their offsets."""
    conf = {"bootstrap.servers": broker.bootstrap, "linger.ms": 0}
    conf.update(extra or {})
    p = Producer(conf)
    reports = []
    for v in values:
        p.produce(topic, v, partition=partition,
                  on_delivery=lambda err, msg: reports.append((err, msg.partition(), msg.offset())))
    assert p.flush(CLIENT_TIMEOUT_S) == 0, "undelivered messages"
    assert [r[0] for r in reports] == [None] * len(values), reports
    assert {r[1] for r in reports} == {partition}, reports
    return [r[2] for r in reports]


def consume(kcat, broker, topic, partition, count):
    """The first count values of a partition, read with kcat."""
    r = harness.run_tool([kcat, "-C", "-b", broker.bootstrap, "-t", topic, "-p", str(partition),
                          "-o", "beginning", "-c", str(count), "-e", "-f", "%o:%s\n"],
                         timeout_s=CLIENT_TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def topic_names(broker):
    return set(admin(broker).list_topics(timeout=CLIENT_TIMEOUT_S).topics)


def wait_until(pred, what):
    deadline = time.monotonic() + POLL_DEADLINE_S
    while not pred():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(POLL_INTERVAL_S)


# ---- helpers: raw requests ---------------------------------------------------

def incremental_alter(conn, topic, ops, validate_only=False, resource_type=RES_TOPIC):
    """IncrementalAlterConfigs v0 for one resource; ops = [(name, op, value)].
    Returns (error_code, error_message)."""
    w = kwire.Writer().i32(1).i8(resource_type).string(topic).i32(len(ops))
    for name, op, value in ops:
        w.string(name).i8(op).string(value)
    w.i8(1 if validate_only else 0)
    _, body = conn.request(API_INCREMENTAL_ALTER_CONFIGS, 0, w.bytes())
    r = kwire.Reader(body)
    r.i32()
    assert r.array_len() == 1
    code, msg = r.i16(), r.string()
    assert (r.i8(), r.string()) == (resource_type, topic)
    return code, msg


def delete_records(conn, topic, partition, offset):
    """DeleteRecords v1 for one partition; returns (error_code, low_watermark)."""
    w = kwire.Writer().i32(1).string(topic).i32(1).i32(partition).i64(offset).i32(10000)
    _, body = conn.request(API_DELETE_RECORDS, 1, w.bytes())
    r = kwire.Reader(body)
    r.i32()
    assert r.array_len() == 1 and r.string() == topic and r.array_len() == 1
    assert r.i32() == partition
    low = r.i64()
    return r.i16(), low


def list_offset(conn, topic, partition, timestamp):
    """ListOffsets v1 (-2 earliest, -1 latest); returns (error_code, offset)."""
    w = kwire.Writer().i32(-1).i32(1).string(topic).i32(1).i32(partition).i64(timestamp)
    _, body = conn.request(API_LIST_OFFSETS, 1, w.bytes())
    r = kwire.Reader(body)
    assert r.array_len() == 1 and r.string() == topic and r.array_len() == 1
    assert r.i32() == partition
    code = r.i16()
    r.i64()
    return code, r.i64()


def fetch_error(conn, topic, partition, offset):
    """Fetch v4 of one partition at offset; returns (error_code, high_watermark)."""
    w = kwire.Writer().i32(-1).i32(0).i32(0).i32(1 << 20).i8(0)
    w.i32(1).string(topic).i32(1).i32(partition).i64(offset).i32(1 << 20)
    _, body = conn.request(API_FETCH, 4, w.bytes())
    r = kwire.Reader(body)
    r.i32()
    assert r.array_len() == 1 and r.string() == topic and r.array_len() == 1
    assert r.i32() == partition
    return r.i16(), r.i64()


def create_partitions_raw(conn, topics, validate_only=False):
    """CreatePartitions v1; topics = [(name, count, assignments or None)].
    Returns [(name, error_code)]."""
    w = kwire.Writer().i32(len(topics))
    for name, count, assignments in topics:
        w.string(name).i32(count)
        if assignments is None:
            w.i32(-1)
        else:
            w.i32(len(assignments))
            for ids in assignments:
                w.i32(len(ids))
                for i in ids:
                    w.i32(i)
    w.i32(10000).i8(1 if validate_only else 0)
    _, body = conn.request(API_CREATE_PARTITIONS, 1, w.bytes())
    r = kwire.Reader(body)
    r.i32()
    out = []
    for _ in range(r.array_len()):
        name, code = r.string(), r.i16()
        r.string()
        out.append((name, code))
    return out


def describe_configs_v0(conn, resource_type, name, keys=None):
    """DescribeConfigs v0 of one resource; returns (error_code, {key: (value, read_only, is_default)})."""
    w = kwire.Writer().i32(1).i8(resource_type).string(name)
    if keys is None:
        w.i32(-1)
    else:
        w.i32(len(keys))
        for k in keys:
            w.string(k)
    _, body = conn.request(API_DESCRIBE_CONFIGS, 0, w.bytes())
    r = kwire.Reader(body)
    r.i32()
    assert r.array_len() == 1
    code = r.i16()
    r.string()
    assert (r.i8(), r.string()) == (resource_type, name)
    configs = {}
    for _ in range(r.array_len()):
        key, value = r.string(), r.string()
        read_only, is_default, _sensitive = r.i8(), r.i8(), r.i8()
        configs[key] = (value, bool(read_only), bool(is_default))
    assert r.left() == 0
    return code, configs


def describe_cluster(conn, version, endpoint_type=1):
    """DescribeCluster v0/v1 (flexible); returns the decoded fields."""
    w = kwire.Writer().i8(1)  # IncludeClusterAuthorizedOperations
    if version >= 1:
        w.i8(endpoint_type)
    w.tags()
    _, body = conn.request(API_DESCRIBE_CLUSTER, version, w.bytes())
    r = kwire.Reader(body)
    out = {"throttle": r.i32(), "error_code": r.i16(), "error_message": r.compact_string()}
    if version >= 1:
        out["endpoint_type"] = r.i8()
    out["cluster_id"] = r.compact_string()
    out["controller_id"] = r.i32()
    out["brokers"] = []
    for _ in range(r.compact_array_len() or 0):
        b = {"id": r.i32(), "host": r.compact_string(), "port": r.i32(), "rack": r.compact_string()}
        r.tags()
        out["brokers"].append(b)
    out["authorized_operations"] = r.i32()
    r.tags()
    assert r.left() == 0
    return out


# ---- DescribeConfigs ------------------------------------------------------------

# A topic's overrides are TOPIC_CONFIG, broker-set values STATIC_BROKER_CONFIG, the rest DEFAULT_CONFIG, with synonyms in that order.
def test_describe_configs_sources_and_synonyms(broker_factory):
    broker = broker_factory(settings={"log.retention.bytes": "123456789"})
    create_topic(broker, "dc", config={"retention.ms": "12345", "cleanup.policy": "compact"})
    cfg = topic_configs(broker, "dc")
    assert (cfg["retention.ms"].value, cfg["retention.ms"].source) == ("12345", SRC_TOPIC)
    assert (cfg["cleanup.policy"].value, cfg["cleanup.policy"].source) == ("compact", SRC_TOPIC)
    assert (cfg["retention.bytes"].value, cfg["retention.bytes"].source) == ("123456789", SRC_STATIC_BROKER)
    assert (cfg["segment.bytes"].value, cfg["segment.bytes"].source) == (DEFAULT_SEGMENT_BYTES, SRC_DEFAULT)
    assert cfg["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not cfg["retention.ms"].is_default and cfg["segment.bytes"].is_default
    assert all(not e.is_read_only and not e.is_sensitive for e in cfg.values())
    syn = [(s.name, s.value, s.source) for s in cfg["retention.ms"].synonyms.values()]
    assert syn == [("retention.ms", "12345", SRC_TOPIC), ("log.retention.ms", DEFAULT_RETENTION_MS, SRC_DEFAULT)]
    # (synonyms sharing a name collapse in this client's dict: see the kafka-python test)
    # every topic key is listed, each once
    assert {"flush.messages", "max.message.bytes", "min.insync.replicas", "segment.ms"} <= set(cfg)


# DescribeConfigs v0 honours the key filter and reports IsDefault; an unknown topic is UNKNOWN_TOPIC_OR_PARTITION.
def test_describe_configs_v0_filter_and_unknown_topic(broker):
    create_topic(broker, "dc0", config={"segment.ms": "100000"})
    with kwire.Conn.to(broker.bootstrap) as c:
        code, cfg = describe_configs_v0(c, RES_TOPIC, "dc0", ["segment.ms", "retention.ms", "no.such.key"])
        assert code == ERR_NONE
        assert cfg == {"segment.ms": ("100000", False, False), "retention.ms": (DEFAULT_RETENTION_MS, False, True)}
        code, cfg = describe_configs_v0(c, RES_TOPIC, "missing-topic")
        assert (code, cfg) == (ERR_UNKNOWN_TOPIC_OR_PARTITION, {})


# A broker resource lists the node's configuration, read-only unless dynamic, with the sources of its values; another id is INVALID_REQUEST.
def test_describe_broker_configs(broker_factory):
    broker = broker_factory(settings={"log.retention.bytes": "123456789"})
    a = admin(broker)
    res = ConfigResource("broker", str(NODE_ID))
    cfg = result(a.describe_configs([res]))[res]
    assert (cfg["log.retention.bytes"].value, cfg["log.retention.bytes"].source) == ("123456789", SRC_STATIC_BROKER)
    assert (cfg["num.partitions"].value, cfg["num.partitions"].source) == ("1", SRC_DEFAULT)
    assert cfg["listeners"].value.startswith("PLAINTEXT://%s" % broker.bootstrap)
    assert cfg["node.id"].value == str(NODE_ID)
    assert cfg["node.id"].is_read_only and not cfg["log.retention.ms"].is_read_only
    with kwire.Conn.to(broker.bootstrap) as c:
        code, _ = describe_configs_v0(c, RES_BROKER, "7")
        assert code == ERR_INVALID_REQUEST


# ---- AlterConfigs / IncrementalAlterConfigs -----------------------------------

# IncrementalAlterConfigs SET, APPEND and DELETE change single keys; validate_only changes nothing.
def test_incremental_alter_set_append_delete(broker):
    create_topic(broker, "ia", config={"segment.ms": "100000"})
    with kwire.Conn.to(broker.bootstrap) as c:
        code, msg = incremental_alter(c, "ia", [("retention.ms", OP_SET, "5000"),
                                                ("cleanup.policy", OP_APPEND, "compact")])
        assert code == ERR_NONE, msg
    cfg = topic_configs(broker, "ia")
    assert (cfg["retention.ms"].value, cfg["retention.ms"].source) == ("5000", SRC_TOPIC)
    assert (cfg["cleanup.policy"].value, cfg["cleanup.policy"].source) == ("delete,compact", SRC_TOPIC)
    assert (cfg["segment.ms"].value, cfg["segment.ms"].source) == ("100000", SRC_TOPIC)

    with kwire.Conn.to(broker.bootstrap) as c:
        code, msg = incremental_alter(c, "ia", [("retention.ms", OP_DELETE, None),
                                                ("cleanup.policy", OP_SUBTRACT, "delete")])
        assert code == ERR_NONE, msg
        code, msg = incremental_alter(c, "ia", [("segment.ms", OP_SET, "200000")], validate_only=True)
        assert code == ERR_NONE, msg
    cfg = topic_configs(broker, "ia")
    assert (cfg["retention.ms"].value, cfg["retention.ms"].source) == (DEFAULT_RETENTION_MS, SRC_DEFAULT)
    assert (cfg["cleanup.policy"].value, cfg["cleanup.policy"].source) == ("compact", SRC_TOPIC)
    assert cfg["segment.ms"].value == "100000"


# AlterConfigs replaces the whole set of overrides: keys not given go back to their defaults.
def test_alter_configs_replaces(broker):
    create_topic(broker, "ac", config={"retention.ms": "12345", "cleanup.policy": "compact"})
    res = ConfigResource("topic", "ac", set_config={"segment.ms": "100000"})
    a = admin(broker)
    result(a.alter_configs([res]))
    cfg = topic_configs(broker, "ac")
    assert (cfg["segment.ms"].value, cfg["segment.ms"].source) == ("100000", SRC_TOPIC)
    assert (cfg["retention.ms"].value, cfg["retention.ms"].source) == (DEFAULT_RETENTION_MS, SRC_DEFAULT)
    assert (cfg["cleanup.policy"].value, cfg["cleanup.policy"].source) == ("delete", SRC_DEFAULT)


def kafka_python_alter_and_describe(bootstrap, topic, configs):
    """kafka-python's alter_configs then describe_configs (with synonyms), as
    {name: (name, value, read_only, source, is_sensitive, [(name, value, source)])}
    whichever kafka-python runs: 2.x answers with raw responses, 3.x with dicts."""
    a = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="chronik-it-admin")
    resource = KPConfigResource(KPConfigResourceType.TOPIC, topic, configs=configs)
    try:
        altered = a.alter_configs([resource])
        described = a.describe_configs([KPConfigResource(KPConfigResourceType.TOPIC, topic)],
                                       include_synonyms=True, **({"config_filter": "all"} if isinstance(altered, dict) else {}))
    finally:
        a.close()
    if isinstance(altered, dict):  # kafka-python 3
        assert altered == {"topic": {topic: "OK"}}, altered
        src = lambda name: {"DYNAMIC_TOPIC_CONFIG": SRC_TOPIC, "STATIC_BROKER_CONFIG": SRC_STATIC_BROKER,
                            "DEFAULT_CONFIG": SRC_DEFAULT}[name]
        return {k: (k, e["value"], e["read_only"], src(e["config_source"]), e["is_sensitive"],
                    [(s["name"], s["value"], src(s["source"])) for s in e["synonyms"]])
                for k, e in described["topic"][topic].items()}
    assert [r[0] for r in altered.resources] == [ERR_NONE], altered
    (res,) = [r for resp_ in described for r in resp_.resources]
    assert res[0] == ERR_NONE, res
    return {e[0]: e for e in res[4]}


# kafka-python's admin client alters and describes topic configs too, synonyms
# in order (2.x: AlterConfigs v1, DescribeConfigs v2; 3.x: the newest versions).
@pytest.mark.pyclients
def test_kafka_python_alter_and_describe(broker_factory):
    broker = broker_factory(settings={"log.retention.bytes": "123456789"})
    create_topic(broker, "kp")
    entries = kafka_python_alter_and_describe(broker.bootstrap, "kp", {"retention.ms": "7777"})
    assert entries["retention.ms"][1] == "7777"
    assert entries["retention.ms"][3] == SRC_TOPIC
    assert entries["segment.bytes"][3] == SRC_DEFAULT
    assert [tuple(x) for x in entries["retention.ms"][5]] == \
        [("retention.ms", "7777", SRC_TOPIC), ("log.retention.ms", DEFAULT_RETENTION_MS, SRC_DEFAULT)]
    assert entries["retention.bytes"][1:4] == ("123456789", False, SRC_STATIC_BROKER)
    assert [tuple(x) for x in entries["retention.bytes"][5]] == \
        [("log.retention.bytes", "123456789", SRC_STATIC_BROKER), ("log.retention.bytes", "-1", SRC_DEFAULT)]


# Unknown keys and bad values are INVALID_CONFIG naming the key; nothing changes.
def test_invalid_configs_rejected(broker):
    create_topic(broker, "bad", config={"retention.ms": "12345"})
    a = admin(broker)
    res = ConfigResource("topic", "bad", set_config={"no.such.key": "1"})
    err = error_of(a.alter_configs([res])[res])
    assert err.code() == KafkaError.INVALID_CONFIG and "no.such.key" in err.str()
    res = ConfigResource("topic", "bad", set_config={"retention.ms": "soon"})
    err = error_of(a.alter_configs([res])[res])
    assert err.code() == KafkaError.INVALID_CONFIG and "retention.ms" in err.str()
    with kwire.Conn.to(broker.bootstrap) as c:
        code, msg = incremental_alter(c, "bad", [("no.such.key", OP_SET, "1")])
        assert code == ERR_INVALID_CONFIG and "no.such.key" in msg
        code, msg = incremental_alter(c, "bad", [("retention.ms", OP_APPEND, "1")])
        assert code == ERR_INVALID_CONFIG and "retention.ms" in msg
        code, msg = incremental_alter(c, "bad", [("retention.ms", OP_SET, "1"), ("retention.ms", OP_DELETE, None)])
        assert code == ERR_INVALID_REQUEST
        code, msg = incremental_alter(c, str(NODE_ID), [("num.partitions", OP_SET, "1")], resource_type=RES_BROKER)
        assert code == ERR_INVALID_REQUEST
        code, _ = incremental_alter(c, "no-such-topic", [("retention.ms", OP_SET, "1")])
        assert code == ERR_UNKNOWN_TOPIC_OR_PARTITION
    cfg = topic_configs(broker, "bad")
    assert (cfg["retention.ms"].value, cfg["retention.ms"].source) == ("12345", SRC_TOPIC)


# A segment.bytes change reaches the partition's log: later appends roll at the new size.
def test_altered_segment_bytes_reaches_the_log(broker):
    create_topic(broker, "roll")
    seg_dir = broker.data_dir / "roll-0"
    with kwire.Conn.to(broker.bootstrap) as c:
        code, msg = incremental_alter(c, "roll", [("segment.bytes", OP_SET, str(SMALL_SEGMENT_BYTES))])
        assert code == ERR_NONE, msg
    for _ in range(8):  # 8 batches of ~6 KiB
        produce(broker, "roll", [b"x" * 1000] * 6)
    logs = sorted(p for p in os.listdir(seg_dir) if p.endswith(".log"))
    assert len(logs) >= 3, logs


# ---- CreatePartitions -------------------------------------------------------------

# Partitions 1 -> 3: the new partition 2 takes produce and serves it back at once.
def test_create_partitions_then_produce(broker, kcat):
    create_topic(broker, "cp")
    a = admin(broker)
    result(a.create_partitions([NewPartitions("cp", 3)]))
    md = a.list_topics("cp", timeout=CLIENT_TIMEOUT_S)
    assert sorted(md.topics["cp"].partitions) == [0, 1, 2]
    assert produce(broker, "cp", [b"to-two-a", b"to-two-b"], partition=2) == [0, 1]
    assert consume(kcat, broker, "cp", 2, 2) == ["0:to-two-a", "1:to-two-b"]
    assert (broker.data_dir / "cp-2").is_dir()


# CreatePartitions refuses a non-increase, an unknown topic, foreign assignments and a topic named twice; validate_only adds nothing.
def test_create_partitions_errors(broker):
    create_topic(broker, "cpe", partitions=2)
    a = admin(broker)
    assert error_of(a.create_partitions([NewPartitions("cpe", 2)])["cpe"]).code() == KafkaError.INVALID_PARTITIONS
    assert error_of(a.create_partitions([NewPartitions("cpe", 1)])["cpe"]).code() == KafkaError.INVALID_PARTITIONS
    assert error_of(a.create_partitions([NewPartitions("nope", 4)])["nope"]).code() == \
        KafkaError.UNKNOWN_TOPIC_OR_PART
    result(a.create_partitions([NewPartitions("cpe", 5)], validate_only=True))
    with kwire.Conn.to(broker.bootstrap) as c:
        assert create_partitions_raw(c, [("cpe", 3, [[NODE_ID + 1]])]) == [("cpe", ERR_INVALID_REPLICA_ASSIGNMENT)]
        assert create_partitions_raw(c, [("cpe", 4, [[NODE_ID]])]) == [("cpe", ERR_INVALID_REPLICA_ASSIGNMENT)]
        assert create_partitions_raw(c, [("cpe", 3, None), ("cpe", 4, None)]) == \
            [("cpe", ERR_INVALID_REQUEST), ("cpe", ERR_INVALID_REQUEST)]
        assert create_partitions_raw(c, [("cpe", 6, None)], validate_only=True) == [("cpe", ERR_NONE)]
    assert sorted(a.list_topics("cpe", timeout=CLIENT_TIMEOUT_S).topics["cpe"].partitions) == [0, 1]
    with kwire.Conn.to(broker.bootstrap) as c:
        assert create_partitions_raw(c, [("cpe", 3, [[NODE_ID]])]) == [("cpe", ERR_NONE)]
    assert sorted(a.list_topics("cpe", timeout=CLIENT_TIMEOUT_S).topics["cpe"].partitions) == [0, 1, 2]
    assert not (broker.data_dir / "cpe-3").exists()


# ---- DeleteRecords ------------------------------------------------------------------

# DeleteRecords raises the log start: ListOffsets earliest follows, a fetch below it is OFFSET_OUT_OF_RANGE.
def test_delete_records(broker, kcat):
    create_topic(broker, "dr")
    assert produce(broker, "dr", [b"m%d" % i for i in range(10)]) == list(range(10))
    with kwire.Conn.to(broker.bootstrap) as c:
        assert delete_records(c, "dr", 0, 4) == (ERR_NONE, 4)
        assert list_offset(c, "dr", 0, -2) == (ERR_NONE, 4)
        assert list_offset(c, "dr", 0, -1) == (ERR_NONE, 10)
        assert fetch_error(c, "dr", 0, 2)[0] == ERR_OFFSET_OUT_OF_RANGE
        assert fetch_error(c, "dr", 0, 4)[0] == ERR_NONE
        assert delete_records(c, "dr", 0, 2) == (ERR_NONE, 4)   # below the start: no change
        assert delete_records(c, "dr", 0, 11)[0] == ERR_OFFSET_OUT_OF_RANGE
        assert delete_records(c, "dr", 0, -5)[0] == ERR_OFFSET_OUT_OF_RANGE
        assert delete_records(c, "dr", 1, 0)[0] == ERR_UNKNOWN_TOPIC_OR_PARTITION
        assert delete_records(c, "nope", 0, 0)[0] == ERR_UNKNOWN_TOPIC_OR_PARTITION
    assert consume(kcat, broker, "dr", 0, 1) == ["4:m4"]
    with kwire.Conn.to(broker.bootstrap) as c:
        assert delete_records(c, "dr", 0, -1) == (ERR_NONE, 10)  # -1: the high watermark
        assert list_offset(c, "dr", 0, -2) == (ERR_NONE, 10)
    # the new start survives a restart, and a SIGKILL right after the answer
    broker.restart()
    with kwire.Conn.to(broker.bootstrap) as c:
        assert list_offset(c, "dr", 0, -2) == (ERR_NONE, 10)
    assert produce(broker, "dr", [b"n%d" % i for i in range(5)]) == list(range(10, 15))
    with kwire.Conn.to(broker.bootstrap) as c:
        assert delete_records(c, "dr", 0, 13) == (ERR_NONE, 13)
    broker.kill9()
    broker.start()
    with kwire.Conn.to(broker.bootstrap) as c:
        assert list_offset(c, "dr", 0, -2) == (ERR_NONE, 13)


# ---- DescribeCluster ----------------------------------------------------------------

# DescribeCluster names this node as the only broker and the controller; v1 refuses the CONTROLLER endpoint type.
def test_describe_cluster(broker):
    with kwire.Conn.to(broker.bootstrap) as c:
        for v in (0, 1):
            d = describe_cluster(c, v)
            assert d["error_code"] == ERR_NONE
            assert d["cluster_id"] == "chronik-cluster" and d["controller_id"] == NODE_ID
            assert d["brokers"] == [{"id": NODE_ID, "host": "127.0.0.1", "port": broker.port, "rack": None}]
            assert d["authorized_operations"] > 0
        assert describe_cluster(c, 1)["endpoint_type"] == 1
        d = describe_cluster(c, 1, endpoint_type=2)
        assert d["error_code"] == ERR_UNSUPPORTED_ENDPOINT_TYPE and d["brokers"] == []


# ---- topic lifecycle -----------------------------------------------------------------

# validate_only creates nothing: no topic in metadata, no directory.
def test_validate_only_creates_nothing(broker):
    a = admin(broker)
    result(a.create_topics([NewTopic("vo", 2, 1, config={"retention.ms": "1000"})], validate_only=True))
    assert "vo" not in topic_names(broker)
    assert not (broker.data_dir / "vo-0").exists()
    err = error_of(a.create_topics([NewTopic("vo", 1, 1, config={"no.such": "1"})], validate_only=True)["vo"])
    assert err.code() == KafkaError.INVALID_CONFIG


# A deleted topic leaves the metadata and its partition directories are removed.
def test_delete_topic_removes_it(broker):
    create_topic(broker, "gone", partitions=2)
    produce(broker, "gone", [b"a", b"b"])
    assert (broker.data_dir / "gone-0").is_dir() and (broker.data_dir / "gone-1").is_dir()
    a = admin(broker)
    result(a.delete_topics(["gone"]))
    assert "gone" not in topic_names(broker)
    wait_until(lambda: not (broker.data_dir / "gone-0").exists() and not (broker.data_dir / "gone-1").exists(),
               "the partition directories to be removed")
    with kwire.Conn.to(broker.bootstrap) as c:
        code, _ = describe_configs_v0(c, RES_TOPIC, "gone")
        assert code == ERR_UNKNOWN_TOPIC_OR_PARTITION
