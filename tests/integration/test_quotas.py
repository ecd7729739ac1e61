"""Client quotas (KIP-13, KIP-55, KIP-546): AlterClientQuotas and
DescribeClientQuotas over the wire (no Python client has them) and with
Kafka's kafka-configs, the entities' order of precedence, quotas kept in
the metadata log across a restart and forwarded from any node of a cluster;
enforcement of producer_byte_rate and consumer_byte_rate on real
confluent-kafka clients beside unthrottled ones, throttle_time_ms with the
connection paused on the wire (KIP-219), request_percentage (KIP-124), and
controller_mutation_rate (KIP-599): topics refused with
THROTTLING_QUOTA_EXCEEDED on the versions that know it (kafka-python), and
older versions accepted but throttled (confluent-kafka).

Rates are measured after a warm-up; the upper bounds are tight (the quota
must hold), the lower ones generous (a loaded 2-core machine, ASan builds)."""

import struct
import threading
import time

import kafka
import kafka.errors
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.admin import KafkaAdminClient

import compat
import harness
import kbatch
import kwire
from test_cluster import cluster  # noqa: F401  (fixture)
from test_kafka_tools import CONFIGS, kafka_tool

API_DESCRIBE_CLIENT_QUOTAS = 48
API_ALTER_CLIENT_QUOTAS = 49
EXACT, DEFAULT, SPECIFIED = 0, 1, 2
DEADLINE_S = 30.0


# ---- the wire -----------------------------------------------------------------

def alter(conn, entries, validate_only=False):
    """AlterClientQuotas v0. entries: [(entity {type: name or None}, {key: value or None (remove)})].
    Returns [(error code, message)] in order."""
    w = kwire.Writer().i32(len(entries))
    for entity, ops in entries:
        w.i32(len(entity))
        for t, n in entity.items():
            w.string(t).string(n)
        w.i32(len(ops))
        for k, v in ops.items():
            w.string(k).raw(struct.pack(">d", v if v is not None else 0.0)).i8(1 if v is None else 0)
    w.i8(1 if validate_only else 0)
    _, body = conn.request(API_ALTER_CLIENT_QUOTAS, 0, w.bytes(), timeout=30)
    r = kwire.Reader(body)
    r.i32()
    out = []
    for _ in range(r.array_len()):
        code, msg = r.i16(), r.string()
        for _ in range(r.array_len()):
            r.string(), r.string()
        out.append((code, msg))
    return out


def describe(conn, components, strict=False):
    """DescribeClientQuotas v0. components: [(type, match type, name)].
    Returns (error code, {frozenset(entity items): {key: value}})."""
    w = kwire.Writer().i32(len(components))
    for t, m, n in components:
        w.string(t).i8(m).string(n)
    w.i8(1 if strict else 0)
    _, body = conn.request(API_DESCRIBE_CLIENT_QUOTAS, 0, w.bytes())
    r = kwire.Reader(body)
    r.i32()
    code, _msg = r.i16(), r.string()
    found = {}
    for _ in range(r.array_len() or 0):
        entity = frozenset((r.string(), r.string()) for _ in range(r.array_len()))
        found[entity] = {r.string(): struct.unpack(">d", r.take(8))[0] for _ in range(r.array_len())}
    return code, found


def ent(user=0, client=0):
    """An entity: 0 leaves a type out, None is its default."""
    e = {}
    if user != 0:
        e["user"] = user
    if client != 0:
        e["client-id"] = client
    return e


def key(e):
    return frozenset(e.items())


def produce_v7(conn, topic, batch, client_id):
    """Produce v7 acks=1 of one batch to partition 0: (error code, throttle_time_ms)."""
    w = kwire.Writer().string(None).i16(1).i32(10000).i32(1).string(topic).i32(1).i32(0)
    w.i32(len(batch)).raw(batch)
    _, body = conn.request(kwire.API_PRODUCE, 7, w.bytes(), client_id=client_id, timeout=30)
    r = kwire.Reader(body)
    assert r.array_len() == 1 and r.string() == topic
    assert r.array_len() == 1 and r.i32() == 0
    code = r.i16()
    r.i64(), r.i64(), r.i64()
    return code, r.i32()


# ---- AlterClientQuotas / DescribeClientQuotas -----------------------------------

def test_alter_and_describe_over_the_wire(broker):
    with kwire.Conn.to(broker.bootstrap) as c:
        assert alter(c, [
            (ent("alice", "app"), {"producer_byte_rate": 1000, "consumer_byte_rate": 2000}),
            (ent(client="app"), {"producer_byte_rate": 3000}),
            (ent(client=None), {"request_percentage": 12.5}),
            (ent(user=None), {"consumer_byte_rate": 4000}),
            (ent("alice"), {"controller_mutation_rate": 5}),
        ]) == [(0, None)] * 5
        code, all_ = describe(c, [])
        assert code == 0 and all_ == {
            key(ent("alice", "app")): {"producer_byte_rate": 1000.0, "consumer_byte_rate": 2000.0},
            key(ent(client="app")): {"producer_byte_rate": 3000.0},
            key(ent(client=None)): {"request_percentage": 12.5},
            key(ent(user=None)): {"consumer_byte_rate": 4000.0},
            key(ent("alice")): {"controller_mutation_rate": 5.0},
        }
        # Kafka's filter: exact, default, specified; strict leaves out entities with other types.
        assert set(describe(c, [("client-id", EXACT, "app")])[1]) == {key(ent("alice", "app")), key(ent(client="app"))}
        assert set(describe(c, [("client-id", EXACT, "app")], strict=True)[1]) == {key(ent(client="app"))}
        assert set(describe(c, [("client-id", DEFAULT, None)])[1]) == {key(ent(client=None))}
        assert set(describe(c, [("user", SPECIFIED, None)])[1]) == {key(ent("alice", "app")), key(ent("alice"))}
        assert set(describe(c, [("user", SPECIFIED, None), ("client-id", SPECIFIED, None)])[1]) == {
            key(ent("alice", "app"))}
        assert describe(c, [("user", EXACT, "bob")]) == (0, {})
        assert describe(c, [("ip", SPECIFIED, None)]) == (0, {})
        # Bad filters and bad changes are refused with INVALID_REQUEST, nothing written.
        assert describe(c, [("user", EXACT, "a"), ("user", EXACT, "b")])[0] == kwire.ERR_INVALID_REQUEST
        assert describe(c, [("group", EXACT, "a")])[0] == kwire.ERR_INVALID_REQUEST
        assert describe(c, [("ip", SPECIFIED, None), ("user", SPECIFIED, None)])[0] == kwire.ERR_INVALID_REQUEST
        bad = alter(c, [
            (ent(client="x"), {"no_such_key": 1}),
            (ent(client="x"), {"producer_byte_rate": -5}),
            (ent(client="x"), {"producer_byte_rate": 10.5}),
            ({}, {"producer_byte_rate": 10}),
            ({"ip": "1.2.3.4"}, {"connection_creation_rate": 10}),
            ({"group": "g"}, {"producer_byte_rate": 10}),
        ])
        assert [e for e, _ in bad] == [kwire.ERR_INVALID_REQUEST] * 6 and all(m for _, m in bad)
        # validate_only checks and writes nothing.
        assert alter(c, [(ent(client="x"), {"producer_byte_rate": 10})], validate_only=True) == [(0, None)]
        assert describe(c, [("client-id", EXACT, "x")]) == (0, {})
        # Removing keys; an entity with none left is gone.
        assert alter(c, [(ent("alice", "app"), {"consumer_byte_rate": None}),
                         (ent(client="app"), {"producer_byte_rate": None})]) == [(0, None)] * 2
        code, all_ = describe(c, [("client-id", EXACT, "app")])
        assert all_ == {key(ent("alice", "app")): {"producer_byte_rate": 1000.0}}


def test_quotas_survive_a_restart(broker_factory):
    b = broker_factory(name="q")
    with kwire.Conn.to(b.bootstrap) as c:
        assert alter(c, [(ent("u", None), {"producer_byte_rate": 777})]) == [(0, None)]
    b.restart()
    with kwire.Conn.to(b.bootstrap) as c:
        assert describe(c, [])[1] == {key(ent("u", None)): {"producer_byte_rate": 777.0}}


def test_kafka_configs_tool(broker):
    cp = compat.need(compat.TOOLS_CLASSPATH).read_text().strip()
    b = broker.bootstrap
    kafka_tool(cp, CONFIGS, "--bootstrap-server", b, "--alter", "--entity-type", "clients", "--entity-name", "tool",
               "--add-config", "producer_byte_rate=1048576,consumer_byte_rate=2097152")
    kafka_tool(cp, CONFIGS, "--bootstrap-server", b, "--alter", "--entity-type", "users", "--entity-name", "ann",
               "--entity-type", "clients", "--entity-default", "--add-config", "request_percentage=50")
    out = kafka_tool(cp, CONFIGS, "--bootstrap-server", b, "--describe", "--entity-type", "clients",
                     "--entity-name", "tool")
    assert "producer_byte_rate=1048576" in out and "consumer_byte_rate=2097152" in out
    out = kafka_tool(cp, CONFIGS, "--bootstrap-server", b, "--describe", "--entity-type", "users",
                     "--entity-name", "ann", "--entity-type", "clients", "--entity-default")
    assert "request_percentage=50" in out
    kafka_tool(cp, CONFIGS, "--bootstrap-server", b, "--alter", "--entity-type", "clients", "--entity-name", "tool",
               "--delete-config", "producer_byte_rate")
    with kwire.Conn.to(broker.bootstrap) as c:
        assert describe(c, [("client-id", EXACT, "tool")], strict=True)[1] == {
            key(ent(client="tool")): {"consumer_byte_rate": 2097152.0}}


def test_alter_at_any_node_of_a_cluster(cluster):  # noqa: F811
    nodes = cluster(3)
    for i, n in enumerate(nodes):
        with kwire.Conn.to(n.bootstrap) as c:
            assert alter(c, [(ent(client="c%d" % i), {"producer_byte_rate": 100 + i})]) == [(0, None)]
            assert describe(c, [("client-id", EXACT, "c%d" % i)])[1] == {
                key(ent(client="c%d" % i)): {"producer_byte_rate": 100.0 + i}}
    want = {key(ent(client="c%d" % i)): {"producer_byte_rate": 100.0 + i} for i in range(3)}
    for n in nodes:
        with kwire.Conn.to(n.bootstrap) as c:
            harness.wait_until(lambda: describe(c, [])[1] == want, "every node to hold the quotas", DEADLINE_S)


# ---- enforcement ------------------------------------------------------------------

def make_topic(bootstrap, name):
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=30)


class Flood(threading.Thread):
    """A producer (client id cid) sending 1 KiB values as fast as it can (or
    at most pace bytes a second) for run_s; acked bytes are stamped by the
    delivery callbacks."""

    def __init__(self, bootstrap, topic, cid, run_s, pace=None):
        super().__init__(daemon=True)
        self.p = Producer({"bootstrap.servers": bootstrap, "client.id": cid, "linger.ms": 5,
                           "batch.size": 16384, "acks": 1, "queue.buffering.max.kbytes": 64})
        self.topic, self.run_s, self.pace, self.acks, self.errors = topic, run_s, pace, [], []
        self.start_t = None

    def _done(self, err, msg):
        if err:
            self.errors.append(err)
        else:
            self.acks.append((time.monotonic(), len(msg.value())))

    def run(self):
        v = b"x" * 1024
        self.start_t = time.monotonic()
        sent = 0
        while time.monotonic() - self.start_t < self.run_s:
            if self.pace and sent > self.pace * (time.monotonic() - self.start_t):
                self.p.poll(0.005)
                continue
            try:
                self.p.produce(self.topic, v, callback=self._done)
                sent += len(v)
            except BufferError:
                self.p.poll(0.01)
            self.p.poll(0)
        self.p.flush(30)

    def bytes_between(self, t0, t1):
        return sum(n for t, n in self.acks if self.start_t + t0 <= t < self.start_t + t1)


def test_producer_byte_rate(broker):
    # What the client has queued (64 KiB) goes out at once and is paid for
    # after: a quarter of a second of the quota, so 5 s measure it closely.
    quota = 256 * 1024
    make_topic(broker.bootstrap, "pq")
    with kwire.Conn.to(broker.bootstrap) as c:
        assert alter(c, [(ent(client="slow-p"), {"producer_byte_rate": quota})]) == [(0, None)]
    slow = Flood(broker.bootstrap, "pq", "slow-p", 7.0)
    fast = Flood(broker.bootstrap, "pq", "fast-p", 7.0, pace=quota * 10)
    slow.start()
    fast.start()
    slow.join(60)
    fast.join(60)
    assert not slow.is_alive() and not fast.is_alive()
    assert not slow.errors and not fast.errors
    warm, end = 2.0, 7.0
    slow_rate = slow.bytes_between(warm, end) / (end - warm)
    fast_rate = fast.bytes_between(warm, end) / (end - warm)
    print("producer_byte_rate %d: throttled %.0f B/s, unthrottled %.0f B/s" % (quota, slow_rate, fast_rate))
    assert slow_rate <= quota * 1.1, "throttled producer at %.0f B/s, quota %d" % (slow_rate, quota)
    assert slow_rate >= quota * 0.3, "throttled producer starved: %.0f B/s" % slow_rate
    assert fast_rate >= quota * 5, "unthrottled producer slowed: %.0f B/s" % fast_rate


def consume_for(bootstrap, topic, cid, run_s, group):
    """(start, [(time, bytes)]) of a consumer reading topic from the start."""
    c = Consumer({"bootstrap.servers": bootstrap, "client.id": cid, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "max.partition.fetch.bytes": 16384})
    got = []
    try:
        c.subscribe([topic])
        start, deadline = None, time.monotonic() + DEADLINE_S + run_s
        while (start is None or time.monotonic() - start < run_s) and time.monotonic() < deadline:
            for m in c.consume(100, 0.2):
                if m.error() is None:
                    start = start or time.monotonic()
                    got.append((time.monotonic(), len(m.value())))
        assert start is not None, "%s consumed nothing" % cid
    finally:
        c.close()
    return start, got


def test_consumer_byte_rate(broker):
    quota = 100 * 1024
    make_topic(broker.bootstrap, "cq")
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20, "batch.size": 16384})
    v = b"y" * 1024
    for i in range(3000):
        while True:
            try:
                p.produce("cq", v)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0
    with kwire.Conn.to(broker.bootstrap) as c:
        assert alter(c, [(ent(client="slow-c"), {"consumer_byte_rate": quota})]) == [(0, None)]
    results = {}

    def run(cid):
        results[cid] = consume_for(broker.bootstrap, "cq", cid, 7.0, "g-" + cid)

    threads = [threading.Thread(target=run, args=(cid,), daemon=True) for cid in ("slow-c", "fast-c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not any(t.is_alive() for t in threads)
    warm, end = 2.0, 7.0
    s0, slow = results["slow-c"]
    f0, fast = results["fast-c"]
    slow_rate = sum(n for t, n in slow if s0 + warm <= t < s0 + end) / (end - warm)
    print("consumer_byte_rate %d: throttled %.0f B/s" % (quota, slow_rate))
    assert slow_rate <= quota * 1.1, "throttled consumer at %.0f B/s, quota %d" % (slow_rate, quota)
    assert slow_rate >= quota * 0.3, "throttled consumer starved: %.0f B/s" % slow_rate
    # The unthrottled consumer reads everything, far faster than the quota.
    assert sum(n for _, n in fast) == 3000 * 1024
    fast_rate = 3000 * 1024 / max(fast[-1][0] - f0, 0.001)
    assert fast_rate >= quota * 3, "unthrottled consumer slowed: %.0f B/s" % fast_rate


def test_throttle_time_on_the_wire(broker):
    # Over its quota a produce is answered at once with throttle_time_ms, and
    # the connection is not read again until that time has passed (KIP-219);
    # another client id on another connection is not held up.
    make_topic(broker.bootstrap, "wq")
    with kwire.Conn.to(broker.bootstrap) as c:
        assert alter(c, [(ent(client="wire"), {"producer_byte_rate": 10000})]) == [(0, None)]
    batch = kbatch.record_batch([b"z" * 1000] * 30)
    with kwire.Conn.to(broker.bootstrap, timeout=30) as c, kwire.Conn.to(broker.bootstrap, timeout=30) as other:
        code, throttle = produce_v7(c, "wq", batch, "wire")
        assert code == 0 and throttle > 1000  # 30 kB against 10 kB/s
        t0 = time.monotonic()
        assert produce_v7(other, "wq", batch, "free") == (0, 0)
        assert time.monotonic() - t0 < throttle / 1000.0
        code, throttle2 = produce_v7(c, "wq", batch, "wire")
        assert time.monotonic() - t0 >= 0.8 * throttle / 1000.0, "the connection was read while throttled"
        assert code == 0 and throttle2 > 0


def metadata_throttle(conn, client_id):
    """Metadata v4 (no topics): the response's throttle_time_ms."""
    body = kwire.Writer().i32(0).i8(0).bytes()
    _, resp = conn.request(kwire.API_METADATA, 4, body, client_id=client_id, timeout=30)
    return kwire.Reader(resp).i32()


def test_request_percentage(broker):
    # A client id allowed a millionth of a percent of a thread is throttled
    # (at most one window, as Kafka bounds it) and paused; another is not.
    with kwire.Conn.to(broker.bootstrap) as c:
        assert alter(c, [(ent(client="busy"), {"request_percentage": 0.000001})]) == [(0, None)]
    with kwire.Conn.to(broker.bootstrap, timeout=30) as c, kwire.Conn.to(broker.bootstrap, timeout=30) as other:
        throttle = metadata_throttle(c, "busy")
        assert 0 < throttle <= 1000
        t0 = time.monotonic()
        assert metadata_throttle(other, "idle") == 0
        assert metadata_throttle(c, "busy") > 0
        assert time.monotonic() - t0 >= 0.8 * throttle / 1000.0, "the connection was read while throttled"


def test_user_quota_and_precedence(broker):
    # Without SASL or TLS the principal is User:ANONYMOUS: a quota on that
    # user throttles every client id of it, except one whose own
    # (user, client-id) entity comes first and allows more.
    make_topic(broker.bootstrap, "uq")
    with kwire.Conn.to(broker.bootstrap) as c:
        assert alter(c, [(ent("ANONYMOUS"), {"producer_byte_rate": 10000}),
                         (ent("ANONYMOUS", "vip"), {"producer_byte_rate": 1e9})]) == [(0, None)] * 2
    batch = kbatch.record_batch([b"u" * 1000] * 30)
    with kwire.Conn.to(broker.bootstrap, timeout=30) as a, kwire.Conn.to(broker.bootstrap, timeout=30) as v:
        code, throttle = produce_v7(a, "uq", batch, "anyone")
        assert code == 0 and throttle > 1000
        assert produce_v7(v, "uq", batch, "vip") == (0, 0)


# ---- controller_mutation_rate (KIP-599) -------------------------------------------

API_CREATE_TOPICS = 19
ERR_THROTTLING_QUOTA_EXCEEDED = 89


def create_topics_wire(conn, version, topics, client_id):
    """CreateTopics v4 (not flexible) or v6 (flexible) of [(name, partitions)]
    with replication factor 1: (throttle_time_ms, {name: error code})."""
    flex = version >= 5
    w = kwire.Writer()
    arr = (lambda n: w.uvarint(n + 1)) if flex else w.i32
    name = w.compact_string if flex else w.string
    arr(len(topics))
    for t, parts in topics:
        name(t)
        w.i32(parts).i16(1)
        arr(0)
        arr(0)
        if flex:
            w.tags()
    w.i32(30000).i8(0)
    if flex:
        w.tags()
    _, body = conn.request(API_CREATE_TOPICS, version, w.bytes(), client_id=client_id, timeout=30)
    r = kwire.Reader(body)
    throttle, codes = r.i32(), {}
    for _ in range(r.compact_array_len() if flex else r.array_len()):
        t = r.compact_string() if flex else r.string()
        codes[t] = r.i16()
        r.compact_string() if flex else r.string()
        if flex:
            r.i32(), r.i16()
            n = r.compact_array_len()
            for _ in range(max(n or 0, 0)):
                r.compact_string(), r.compact_string(), r.i8(), r.i8(), r.i8(), r.tags()
            r.tags()
    return throttle, codes


def set_mutation_rate(bootstrap, client, rate):
    with kwire.Conn.to(bootstrap) as c:
        assert alter(c, [(ent(client=client), {"controller_mutation_rate": rate})]) == [(0, None)]


@pytest.mark.pyclients
@pytest.mark.skipif(kafka.__version__.startswith("2."),
                    reason="kafka-python 2.x speaks CreateTopics v3 at most, where the quota only throttles")
def test_controller_mutation_rate_refuses(broker):
    # 2 partitions a second is a burst of 22 (11 windows of 1 s). kafka-python
    # speaks CreateTopics v7, DeleteTopics v6 and CreatePartitions v3: while
    # the quota is not yet used up a topic is accepted whatever its size; past
    # it, the topics beyond the allowance are refused with
    # THROTTLING_QUOTA_EXCEEDED and nothing of them is made. The client then
    # holds its connection back for the throttle time (fresh clients of the
    # same client id are refused too); another client id is not held up, and
    # the refused topic gets through once the quota has refilled.
    set_mutation_rate(broker.bootstrap, "mut", 2)
    admins = []

    def admin(cid="mut"):
        admins.append(KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id=cid,
                                       request_timeout_ms=30000))
        return admins[-1]

    def codes(resp):
        return {t["name"]: t["error_code"] for t in resp["topics"]}

    def spec(n):
        return {"num_partitions": n, "replication_factor": 1}

    try:
        a = admin()
        assert codes(a.create_topics({"m20": spec(20)}, raise_errors=False)) == {"m20": 0}
        # 2 tokens left: m10 takes 10 (the bucket goes below zero), m1 is refused
        resp = a.create_topics({"m10": spec(10), "m1": spec(1)}, raise_errors=False)
        assert codes(resp) == {"m10": 0, "m1": ERR_THROTTLING_QUOTA_EXCEEDED}
        t_refused = time.monotonic()
        refused = admin().delete_topics(["m20"], raise_errors=False)
        assert [t["error_code"] for t in refused["topics"]] == [ERR_THROTTLING_QUOTA_EXCEEDED]
        more = admin().create_partitions({"m10": 12}, raise_errors=False)
        assert [t.error_code for t in more.results] == [ERR_THROTTLING_QUOTA_EXCEEDED]
        listed = set(admin("free").list_topics())
        assert {"m20", "m10"} <= listed and "m1" not in listed
        assert codes(admin("free").create_topics({"f5": spec(5)}, raise_errors=False)) == {"f5": 0}

        def m1_created():
            try:
                return codes(a.create_topics({"m1": spec(1)}, raise_errors=False)) == {"m1": 0}
            except kafka.errors.NodeNotReadyError:  # paused by the throttle time
                return False
        # 8 tokens short at 2 a second: m1 gets through after about 4 s
        harness.wait_until(m1_created, "the refilled quota accepts m1", deadline_s=DEADLINE_S, poll_s=0.2)
        assert time.monotonic() - t_refused >= 2.5
    finally:
        for x in admins:
            x.close()


def test_controller_mutation_throttle_on_the_wire(broker):
    # CreateTopics v6 (strict): a topic refused carries the time until the
    # bucket is back at zero, and the connection is paused that long. v4
    # (permissive) is accepted past the quota and throttled the same way.
    set_mutation_rate(broker.bootstrap, "wire", 1)
    with kwire.Conn.to(broker.bootstrap, timeout=30) as c, kwire.Conn.to(broker.bootstrap, timeout=30) as other:
        assert create_topics_wire(c, 6, [("w12", 12)], "wire") == (0, {"w12": 0})  # burst 11: 1 short
        refused_ms, codes = create_topics_wire(c, 6, [("w1", 1)], "wire")
        assert codes == {"w1": ERR_THROTTLING_QUOTA_EXCEEDED} and 0 < refused_ms <= 1000
        t0 = time.monotonic()
        assert create_topics_wire(other, 6, [("o1", 1)], "other") == (0, {"o1": 0})
        throttle, codes = create_topics_wire(c, 4, [("w2", 2)], "wire")
        assert time.monotonic() - t0 >= 0.8 * refused_ms / 1000.0, "the connection was read while throttled"
        assert codes == {"w2": 0} and throttle > 1000  # accepted, 2 tokens short at least
        t1 = time.monotonic()
        create_topics_wire(c, 4, [("w3", 1)], "wire")
        assert time.monotonic() - t1 >= 0.8 * throttle / 1000.0, "the connection was read while throttled"


@pytest.mark.pyclients
def test_controller_mutation_permissive_client(broker):
    # confluent-kafka (librdkafka) speaks CreateTopics below v6: past the
    # quota its topics are still created, and its throttle callback reports
    # the throttle time the broker sent.
    set_mutation_rate(broker.bootstrap, "old", 1)
    events = []
    a = AdminClient({"bootstrap.servers": broker.bootstrap, "client.id": "old",
                     "throttle_cb": lambda ev: events.append(ev.throttle_time)})
    for name, parts in (("p11", 11), ("p3", 3)):
        a.create_topics([NewTopic(name, parts, 1)], request_timeout=30)[name].result(timeout=30)
    harness.wait_until(lambda: a.poll(0.1) >= 0 and any(t >= 1.0 for t in events),
                       "a throttle event of at least a second", deadline_s=DEADLINE_S)
    md = a.list_topics(timeout=30)
    assert len(md.topics["p3"].partitions) == 3
