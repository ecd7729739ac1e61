"""Consumer groups against a real broker: the group coordinator with real
clients (kafka-python, confluent-kafka, kcat, kafkajs), committed offsets
across a restart, session-timeout eviction, and the group admin APIs
spoken on the wire (FindCoordinator v4, OffsetCommit, OffsetFetch v8,
ListGroups v4, DescribeGroups, DeleteGroups, OffsetDelete)."""

import collections
import json
import os
import shutil
import threading
import time

import kafka
import kafka.errors
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

import harness
import kwire

POLL_S = 0.05            # pause between checks of a condition with a deadline
DEADLINE_S = 60.0        # generous: ASan broker on a loaded 2-core machine
HERE = os.path.dirname(os.path.abspath(__file__))

ERR_NONE = 0
ERR_UNKNOWN_MEMBER_ID = 25
ERR_NON_EMPTY_GROUP = 68
ERR_GROUP_ID_NOT_FOUND = 69
ERR_GROUP_SUBSCRIBED_TO_TOPIC = 86


def wait_for(cond, what, deadline_s=DEADLINE_S):
    """Polls cond() until it is true; fails naming `what` at the deadline."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(POLL_S)
    pytest.fail("timed out waiting for %s" % what)


def create_topic(broker, name, partitions):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def produce(broker, topic, values):
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    for v in values:
        p.send(topic, key=str(v).encode(), value=str(v).encode())
    p.flush()
    p.close()


def committed(broker, group):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        if hasattr(admin, "list_group_offsets"):  # kafka-python 3
            offsets = admin.list_group_offsets(group)[group]
        else:
            offsets = admin.list_consumer_group_offsets(group)
        return {tp.partition: om.offset for tp, om in offsets.items()}
    finally:
        admin.close()


# kafka-python 3.0.12 drops a (re)join that is still in flight when poll()'s
# timeout ends: the member then never heartbeats again and loses its session
# (the broker answered the JoinGroup and SyncGroup in milliseconds). A poll
# long enough to hold a whole rebalance keeps the test about the broker.
POLL_MS = 100 if kafka.__version__.startswith("2.") else 2000


class Member(threading.Thread):
    """A kafka-python KafkaConsumer in a group, polling on its own thread,
    committing synchronously after every batch it processed."""

    def __init__(self, broker, topic, group, name, seen, lock):
        super().__init__(daemon=True)
        self.args = (broker.bootstrap, topic, group, name)
        self.seen, self.lock = seen, lock
        self.stop_event = threading.Event()
        self.partitions = frozenset()
        self.error = None

    def run(self):
        bootstrap, topic, group, name = self.args
        c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, client_id=name,
                          auto_offset_reset="earliest", enable_auto_commit=False,
                          session_timeout_ms=10000, heartbeat_interval_ms=300)
        try:
            while not self.stop_event.is_set():
                batch = c.poll(timeout_ms=POLL_MS)
                with self.lock:
                    for records in batch.values():
                        for rec in records:
                            self.seen[int(rec.value)] += 1
                if batch:
                    try:
                        c.commit()
                    except (kafka.errors.RebalanceInProgressError, kafka.errors.CommitFailedError):
                        pass  # a rebalance began (kafka-python 3 says so): commit after the next poll
                self.partitions = frozenset(tp.partition for tp in c.assignment())
        except Exception as e:  # reported by stop()
            self.error = e
        finally:
            c.close()

    def check(self):
        """False, or fails at once with what stopped this member's thread."""
        assert self.error is None, "%s stopped: %r" % (self.args[3], self.error)
        return False

    def stop(self):
        self.stop_event.set()
        self.join(DEADLINE_S)
        assert not self.is_alive(), "consumer thread did not stop"
        assert self.error is None, repr(self.error)


# A kafka-python group of 2 on 4 partitions consumes every message exactly once, rebalancing when a member
# joins and when one leaves; the committed offsets survive a broker restart.
@pytest.mark.pyclients
def test_kafka_python_group_rebalance_and_restart(broker):
    topic, group = "kp-orders", "kp-group"
    create_topic(broker, topic, 4)
    produce(broker, topic, range(0, 200))
    seen, lock = collections.Counter(), threading.Lock()
    m1 = Member(broker, topic, group, "m1", seen, lock)
    m1.start()
    wait_for(lambda: m1.check() or m1.partitions == {0, 1, 2, 3}, "the first member to own every partition")
    m2 = Member(broker, topic, group, "m2", seen, lock)
    m2.start()
    wait_for(lambda: m1.partitions and m2.partitions and m1.partitions | m2.partitions == {0, 1, 2, 3}
             and not m1.partitions & m2.partitions, "a rebalance that splits the partitions")
    produce(broker, topic, range(200, 300))
    wait_for(lambda: m1.check() or m2.check() or len(seen) == 300, "300 distinct messages")
    m2.stop()
    wait_for(lambda: m1.partitions == {0, 1, 2, 3}, "a rebalance after a member left")
    produce(broker, topic, range(300, 400))
    wait_for(lambda: m1.check() or len(seen) == 400, "400 distinct messages")
    m1.stop()
    assert set(seen) == set(range(400))
    assert [v for v, n in seen.items() if n != 1] == []
    offsets = committed(broker, group)
    assert sorted(offsets) == [0, 1, 2, 3] and sum(offsets.values()) == 400

    broker.restart()
    assert committed(broker, group) == offsets
    produce(broker, topic, range(400, 410))
    after = collections.Counter()
    m3 = Member(broker, topic, group, "m3", after, lock)
    m3.start()
    wait_for(lambda: m3.check() or len(after) == 10, "the 10 messages produced after the restart")
    m3.stop()
    assert set(after) == set(range(400, 410))


# confluent-kafka with partition.assignment.strategy=cooperative-sticky consumes everything, and a second
# member gets its share through incremental rebalances.
@pytest.mark.pyclients
def test_confluent_cooperative_sticky(broker):
    from confluent_kafka import Consumer
    topic, group = "ck-orders", "ck-group"
    create_topic(broker, topic, 4)
    produce(broker, topic, range(100))
    seen, owned, stop = collections.Counter(), {}, threading.Event()
    lock, errors = threading.Lock(), []

    def member(name):
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "client.id": name,
                      "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                      "heartbeat.interval.ms": 300,
                      "partition.assignment.strategy": "cooperative-sticky"})
        try:
            c.subscribe([topic])
            while not stop.is_set():
                m = c.poll(0.1)
                owned[name] = frozenset(tp.partition for tp in c.assignment())
                if m is not None and not m.error():
                    with lock:
                        seen[int(m.value())] += 1
        except Exception as e:
            errors.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=member, args=(n,), daemon=True) for n in ("c1", "c2")]
    threads[0].start()
    wait_for(lambda: len(seen) == 100, "the first member to consume everything")
    assert owned["c1"] == {0, 1, 2, 3}
    threads[1].start()
    wait_for(lambda: owned.get("c1") and owned.get("c2") and owned["c1"] | owned["c2"] == {0, 1, 2, 3}
             and not owned["c1"] & owned["c2"], "an incremental rebalance giving c2 its share")
    produce(broker, topic, range(100, 200))
    wait_for(lambda: len(seen) == 200, "200 distinct messages")
    stop.set()
    for t in threads:
        t.join(DEADLINE_S)
    assert errors == []
    assert set(seen) == set(range(200))
    assert all(seen[v] == 1 for v in range(100, 200))  # no partition moved after the split


# `kcat -G group topic` (a librdkafka balanced consumer) reads everything, and a second run of the
# group starts from the committed offsets.
@pytest.mark.pyclients
def test_kcat_balanced_consumer(broker, kcat):
    topic, group = "kcat-orders", "kcat-group"
    create_topic(broker, topic, 3)
    produce(broker, topic, range(60))
    cmd = [kcat, "-b", broker.bootstrap, "-G", group, "-X", "auto.offset.reset=earliest", "-e", "-q",
           "-f", "%s\n", topic]
    first = harness.run_tool(cmd, timeout_s=DEADLINE_S)
    assert first.returncode == 0, first.stderr
    assert sorted(int(x) for x in first.stdout.split()) == list(range(60))
    wait_for(lambda: sum(committed(broker, group).values()) == 60, "kcat's offsets to be committed")
    produce(broker, topic, range(60, 70))
    second = harness.run_tool(cmd, timeout_s=DEADLINE_S)
    assert second.returncode == 0, second.stderr
    assert sorted(int(x) for x in second.stdout.split()) == list(range(60, 70))


# A kafkajs 2.2.4 consumer group consumes what kafkajs produced and commits it.
@pytest.mark.pyclients
def test_kafkajs_consumer_group(broker):
    node = shutil.which("node")
    assert node, "node not installed: run tools/deps.sh test"
    topic, group = "js-orders", "js-group"
    create_topic(broker, topic, 3)
    r = harness.run_tool([node, os.path.join(HERE, "kafkajs_group.js"), broker.bootstrap, topic, group, "90"],
                         timeout_s=DEADLINE_S + 30, cwd=HERE)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["produced"] == 90 and out["distinct"] == 90 and out["consumed"] == 90
    assert sum(committed(broker, group).values()) == 90


# ---- the wire, for what clients do not show ----------------------------------

def bytes_field(w, b):
    return w.i32(-1) if b is None else w.i32(len(b)).raw(b)


def read_bytes(r):
    n = r.i32()
    return None if n < 0 else r.take(n)


def join_v1(conn, group, member_id, session_ms, rebalance_ms):
    w = kwire.Writer().string(group).i32(session_ms).i32(rebalance_ms).string(member_id).string("consumer")
    bytes_field(w.i32(1).string("range"), b"\x00\x00\x00\x00\x00\x00\x00\x00")
    _, body = conn.request(11, 1, w.bytes(), timeout=DEADLINE_S)
    r = kwire.Reader(body)
    out = {"error": r.i16(), "generation": r.i32(), "protocol": r.string(), "leader": r.string(),
           "member_id": r.string()}
    out["members"] = [(r.string(), read_bytes(r)) for _ in range(r.array_len() or 0)]
    return out


def sync_v1(conn, group, generation, member_id, assignments):
    w = kwire.Writer().string(group).i32(generation).string(member_id).i32(len(assignments))
    for mid, a in assignments:
        bytes_field(w.string(mid), a)
    _, body = conn.request(14, 1, w.bytes(), timeout=DEADLINE_S)
    r = kwire.Reader(body)
    r.i32()
    return r.i16(), read_bytes(r)


def heartbeat_v1(conn, group, generation, member_id):
    _, body = conn.request(12, 1, kwire.Writer().string(group).i32(generation).string(member_id).bytes())
    r = kwire.Reader(body)
    r.i32()
    return r.i16()


def describe_v1(conn, group):
    _, body = conn.request(15, 1, kwire.Writer().i32(1).string(group).bytes())
    r = kwire.Reader(body)
    r.i32()
    assert r.array_len() == 1
    g = {"error": r.i16(), "group_id": r.string(), "state": r.string(), "protocol_type": r.string(),
         "protocol": r.string(), "members": []}
    for _ in range(r.array_len() or 0):
        g["members"].append({"member_id": r.string(), "client_id": r.string(), "client_host": r.string(),
                             "metadata": read_bytes(r), "assignment": read_bytes(r)})
    return g


def commit_v2(conn, group, offsets, generation=-1, member_id="", retention_ms=-1):
    """offsets: {(topic, partition): offset}; returns {(topic, partition): error}."""
    by_topic = collections.defaultdict(list)
    for (t, p), o in offsets.items():
        by_topic[t].append((p, o))
    w = kwire.Writer().string(group).i32(generation).string(member_id).i64(retention_ms).i32(len(by_topic))
    for t, parts in by_topic.items():
        w.string(t).i32(len(parts))
        for p, o in parts:
            w.i32(p).i64(o).string("m")
    _, body = conn.request(8, 2, w.bytes())
    r = kwire.Reader(body)
    out = {}
    for _ in range(r.array_len()):
        t = r.string()
        for _ in range(r.array_len()):
            p = r.i32()
            out[(t, p)] = r.i16()
    return out


def fetch_offsets_v8(conn, groups, require_stable=False):
    """groups: {group: None (all) or [(topic, [partitions])]}; returns {group: (error, {(t, p): offset})}.
    With require_stable the values are (offset, partition error)."""
    w = kwire.Writer().uvarint(len(groups) + 1)
    for g, topics in groups.items():
        w.compact_string(g)
        if topics is None:
            w.uvarint(0)
        else:
            w.uvarint(len(topics) + 1)
            for t, parts in topics:
                w.compact_string(t).uvarint(len(parts) + 1)
                for p in parts:
                    w.i32(p)
                w.tags()
        w.tags()
    w.i8(1 if require_stable else 0).tags()
    _, body = conn.request(9, 8, w.bytes())
    r = kwire.Reader(body)
    r.i32()
    out = {}
    for _ in range(r.compact_array_len()):
        g, offs = r.compact_string(), {}
        for _ in range(r.compact_array_len()):
            t = r.compact_string()
            for _ in range(r.compact_array_len()):
                p, o, _epoch, _md, err = r.i32(), r.i64(), r.i32(), r.compact_string(), r.i16()
                assert err == ERR_NONE or require_stable
                r.tags()
                offs[(t, p)] = (o, err) if require_stable else o
            r.tags()
        out[g] = (r.i16(), offs)
        r.tags()
    return out


def list_groups_v4(conn, states=(), types=None):
    """ListGroups v4 {group: (protocol type, state)}, or with types (a list) v5
    {group: (protocol type, state, group type)}."""
    w = kwire.Writer().uvarint(len(states) + 1)
    for s in states:
        w.compact_string(s)
    if types is not None:
        w.uvarint(len(types) + 1)
        for t in types:
            w.compact_string(t)
    _, body = conn.request(16, 4 if types is None else 5, w.tags().bytes())
    r = kwire.Reader(body)
    r.i32()
    assert r.i16() == ERR_NONE
    out = {}
    for _ in range(r.compact_array_len()):
        row = (r.compact_string(), r.compact_string(), r.compact_string())
        if types is not None:
            row += (r.compact_string(),)
        r.tags()
        out[row[0]] = row[1:]
    return out


def find_coordinator_v4(conn, key_type, keys):
    w = kwire.Writer().i8(key_type).uvarint(len(keys) + 1)
    for k in keys:
        w.compact_string(k)
    _, body = conn.request(10, 4, w.tags().bytes(), timeout=DEADLINE_S)
    r = kwire.Reader(body)
    r.i32()
    out = []
    for _ in range(r.compact_array_len()):
        c = {"key": r.compact_string(), "node_id": r.i32(), "host": r.compact_string(), "port": r.i32(),
             "error": r.i16(), "message": r.compact_string()}
        r.tags()
        out.append(c)
    return out


def delete_groups_v1(conn, groups):
    w = kwire.Writer().i32(len(groups))
    for g in groups:
        w.string(g)
    _, body = conn.request(42, 1, w.bytes())
    r = kwire.Reader(body)
    r.i32()
    return {r.string(): r.i16() for _ in range(r.array_len())}


def offset_delete_v0(conn, group, topic, partitions):
    w = kwire.Writer().string(group).i32(1).string(topic).i32(len(partitions))
    for p in partitions:
        w.i32(p)
    _, body = conn.request(47, 0, w.bytes())
    r = kwire.Reader(body)
    top, _ = r.i16(), r.i32()
    parts = {}
    for _ in range(r.array_len() or 0):
        r.string()
        for _ in range(r.array_len()):
            p = r.i32()
            parts[p] = r.i16()
    return top, parts


# A member that stops heartbeating is evicted once session.timeout.ms has passed, not before.
def test_silent_member_evicted_after_session_timeout(broker_factory):
    session_ms = 1500
    b = broker_factory(settings={"group.min.session.timeout.ms": 500})
    with kwire.Conn.to(b.bootstrap) as c:
        assert find_coordinator_v4(c, 0, ["evict-group"])[0]["error"] == ERR_NONE
        j = join_v1(c, "evict-group", "", session_ms, 30000)
        assert j["error"] == ERR_NONE and j["generation"] == 1 and j["leader"] == j["member_id"]
        err, assignment = sync_v1(c, "evict-group", 1, j["member_id"], [(j["member_id"], b"\x00\x01")])
        assert err == ERR_NONE and assignment == b"\x00\x01"
        assert heartbeat_v1(c, "evict-group", 1, j["member_id"]) == ERR_NONE
        silent_since = time.monotonic()
        g = describe_v1(c, "evict-group")
        assert g["state"] == "Stable" and [m["member_id"] for m in g["members"]] == [j["member_id"]]
        assert g["members"][0]["assignment"] == b"\x00\x01" and g["members"][0]["client_host"] == "/127.0.0.1"
        wait_for(lambda: describe_v1(c, "evict-group")["members"] == [], "the silent member's eviction")
        assert time.monotonic() - silent_since >= session_ms / 1000.0 * 0.9
        assert describe_v1(c, "evict-group")["state"] == "Empty"
        assert heartbeat_v1(c, "evict-group", 1, j["member_id"]) == ERR_UNKNOWN_MEMBER_ID


# An offset committed with a retention time (OffsetCommit v2) is removed at the
# coordinator's next check once it has passed and then fetches as -1; one
# committed without keeps its value.
@pytest.mark.pyclients
def test_committed_offset_expires(broker_factory):
    broker = broker_factory(settings={"offsets.retention.check.interval.ms": "1000"})
    create_topic(broker, "exp", 1)
    with kwire.Conn.to(broker.bootstrap) as c:
        assert find_coordinator_v4(c, 0, ["exp-group"])[0]["error"] == ERR_NONE
        assert commit_v2(c, "exp-group", {("exp", 0): 7}, retention_ms=2000) == {("exp", 0): ERR_NONE}
        assert commit_v2(c, "keep-group", {("exp", 0): 9}) == {("exp", 0): ERR_NONE}
        part = [("exp", [0])]
        assert fetch_offsets_v8(c, {"exp-group": part})["exp-group"][1] == {("exp", 0): 7}
        wait_for(lambda: fetch_offsets_v8(c, {"exp-group": part})["exp-group"][1] == {("exp", 0): -1},
                 "the offset to expire")
        assert fetch_offsets_v8(c, {"keep-group": part})["keep-group"][1] == {("exp", 0): 9}


# FindCoordinator v4 answers batched group keys with this node, and transactional ids
# too (once __transaction_state exists); an empty transactional id is INVALID_REQUEST (42).
def test_find_coordinator_batched(broker):
    with kwire.Conn.to(broker.bootstrap) as c:
        got = find_coordinator_v4(c, 0, ["a", "b"])
        assert [x["key"] for x in got] == ["a", "b"]
        assert all(x["error"] == ERR_NONE and x["node_id"] == broker.node_id and x["port"] == broker.port
                   for x in got)
        got = find_coordinator_v4(c, 1, ["t1", "t2", ""])
        assert [x["key"] for x in got] == ["t1", "t2", ""]
        assert all(x["error"] == ERR_NONE and x["node_id"] == broker.node_id for x in got[:2])
        assert got[2]["error"] == 42


# Groups that only commit offsets are listed and described; OffsetFetch v8 reads several groups at once;
# OffsetDelete and DeleteGroups remove offsets and groups, refusing groups that have members.
@pytest.mark.pyclients
def test_simple_groups_admin_apis(broker):
    create_topic(broker, "adm-topic", 2)
    with kwire.Conn.to(broker.bootstrap) as c:
        assert find_coordinator_v4(c, 0, ["s1"])[0]["error"] == ERR_NONE
        assert commit_v2(c, "s1", {("adm-topic", 0): 5, ("adm-topic", 1): 7}) == \
            {("adm-topic", 0): ERR_NONE, ("adm-topic", 1): ERR_NONE}
        assert commit_v2(c, "s2", {("adm-topic", 1): 3}) == {("adm-topic", 1): ERR_NONE}
        assert commit_v2(c, "s2", {("no-such-topic", 0): 1}) == {("no-such-topic", 0): 3}
        got = fetch_offsets_v8(c, {"s1": None, "s2": [("adm-topic", [0, 1])], "nobody": None})
        assert got["s1"] == (ERR_NONE, {("adm-topic", 0): 5, ("adm-topic", 1): 7})
        assert got["s2"] == (ERR_NONE, {("adm-topic", 0): -1, ("adm-topic", 1): 3})
        assert got["nobody"] == (ERR_NONE, {})
        listed = list_groups_v4(c)
        assert listed["s1"] == ("", "Empty") and listed["s2"] == ("", "Empty")
        assert "s1" not in list_groups_v4(c, ["Stable"]) and "s1" in list_groups_v4(c, ["empty"])
        g = describe_v1(c, "s1")
        assert (g["error"], g["state"], g["protocol_type"], g["members"]) == (ERR_NONE, "Empty", "", [])
        assert describe_v1(c, "nobody")["state"] == "Dead"

        assert offset_delete_v0(c, "s1", "adm-topic", [0]) == (ERR_NONE, {0: ERR_NONE})
        assert fetch_offsets_v8(c, {"s1": None})["s1"] == (ERR_NONE, {("adm-topic", 1): 7})
        assert offset_delete_v0(c, "nobody", "adm-topic", [0])[0] == ERR_GROUP_ID_NOT_FOUND

        j = join_v1(c, "busy", "", 10000, 10000)
        assert j["error"] == ERR_NONE
        assert sync_v1(c, "busy", 1, j["member_id"], [])[0] == ERR_NONE
        assert delete_groups_v1(c, ["s1", "busy", "nobody"]) == \
            {"s1": ERR_NONE, "busy": ERR_NON_EMPTY_GROUP, "nobody": ERR_GROUP_ID_NOT_FOUND}
        assert "s1" not in list_groups_v4(c)
        assert list_groups_v4(c, ["Stable"])["busy"] == ("consumer", "Stable")
    broker.restart()
    with kwire.Conn.to(broker.bootstrap) as c:
        got = fetch_offsets_v8(c, {"s1": None, "s2": None})
        assert got["s1"] == (ERR_NONE, {}) and got["s2"] == (ERR_NONE, {("adm-topic", 1): 3})
        assert set(list_groups_v4(c)) == {"s2", "busy"}  # the deleted group stays deleted


# ListGroups v5 (what Kafka 4 clients send) names every group "classic" and
# filters by group type, case-insensitively.
def test_list_groups_v5_group_type(broker):
    with kwire.Conn.to(broker.bootstrap) as c:
        assert find_coordinator_v4(c, 0, ["live"])[0]["error"] == ERR_NONE
        j = join_v1(c, "live", "", 10000, 10000)
        assert j["error"] == ERR_NONE
        assert sync_v1(c, "live", 1, j["member_id"], [])[0] == ERR_NONE
        assert list_groups_v4(c, types=[]) == {"live": ("consumer", "Stable", "classic")}
        assert list_groups_v4(c, types=["Classic", "consumer"]) == {"live": ("consumer", "Stable", "classic")}
        assert list_groups_v4(c, types=["consumer"]) == {}
        assert list_groups_v4(c, ["Empty"], types=["classic"]) == {}


def compact_bytes(w, b):
    return w.uvarint(len(b) + 1).raw(b)


def join_v9(conn, group, member_id, instance_id=None):
    w = kwire.Writer().compact_string(group).i32(10000).i32(10000).compact_string(member_id)
    w.compact_string(instance_id).compact_string("consumer").uvarint(2).compact_string("range")
    compact_bytes(w, b"\x00\x01").tags()
    w.compact_string(None).tags()
    _, body = conn.request(11, 9, w.bytes(), timeout=DEADLINE_S)
    r = kwire.Reader(body)
    r.i32()
    out = {"error": r.i16(), "generation": r.i32(), "protocol_type": r.compact_string(),
           "protocol": r.compact_string(), "leader": r.compact_string(), "skip": r.i8() != 0,
           "member_id": r.compact_string(), "members": []}
    for _ in range(r.compact_array_len()):
        out["members"].append((r.compact_string(), r.compact_string(), r.take(r.uvarint() - 1)))
        r.tags()
    return out


def sync_v5(conn, group, generation, member_id, instance_id, assignments):
    w = kwire.Writer().compact_string(group).i32(generation).compact_string(member_id).compact_string(instance_id)
    w.compact_string("consumer").compact_string("range").uvarint(len(assignments) + 1)
    for mid, a in assignments:
        compact_bytes(w.compact_string(mid), a).tags()
    _, body = conn.request(14, 5, w.tags().bytes(), timeout=DEADLINE_S)
    r = kwire.Reader(body)
    r.i32()
    err, ptype, pname = r.i16(), r.compact_string(), r.compact_string()
    return err, ptype, pname, r.take(r.uvarint() - 1)


def heartbeat_v4(conn, group, generation, member_id, instance_id):
    w = kwire.Writer().compact_string(group).i32(generation).compact_string(member_id).compact_string(instance_id)
    _, body = conn.request(12, 4, w.tags().bytes())
    r = kwire.Reader(body)
    r.i32()
    return r.i16()


def leave_v5(conn, group, members):
    """members: [(member_id, instance_id)]; returns (error, [member errors])."""
    w = kwire.Writer().compact_string(group).uvarint(len(members) + 1)
    for mid, iid in members:
        w.compact_string(mid).compact_string(iid).compact_string("bye").tags()
    _, body = conn.request(13, 5, w.tags().bytes())
    r = kwire.Reader(body)
    r.i32()
    err, out = r.i16(), []
    for _ in range(r.compact_array_len()):
        r.compact_string(), r.compact_string()
        out.append(r.i16())
        r.tags()
    return err, out


# JoinGroup v9 asks a new dynamic member for its id first (MEMBER_ID_REQUIRED); a static member joins at
# once, and its rejoin under a new id in a Stable group skips the assignment and fences the old id;
# LeaveGroup v5 removes members by member id and by instance id.
def test_flexible_versions_member_id_and_static_members(broker):
    ERR_MEMBER_ID_REQUIRED, ERR_FENCED_INSTANCE_ID = 79, 82
    with kwire.Conn.to(broker.bootstrap) as c:
        assert find_coordinator_v4(c, 0, ["flex"])[0]["error"] == ERR_NONE
        first = join_v9(c, "flex", "")
        assert first["error"] == ERR_MEMBER_ID_REQUIRED and first["member_id"].startswith("kwire-")
        j = join_v9(c, "flex", first["member_id"])
        assert (j["error"], j["generation"], j["protocol_type"], j["protocol"]) == (ERR_NONE, 1, "consumer", "range")
        assert j["leader"] == j["member_id"] == first["member_id"]
        assert j["members"] == [(j["member_id"], None, b"\x00\x01")]
        assert sync_v5(c, "flex", 1, j["member_id"], None, [(j["member_id"], b"A")]) == \
            (ERR_NONE, "consumer", "range", b"A")
        assert leave_v5(c, "flex", [(j["member_id"], None), ("ghost", None)]) == \
            (ERR_NONE, [ERR_NONE, ERR_UNKNOWN_MEMBER_ID])

        s1 = join_v9(c, "flex", "", "inst")
        assert s1["error"] == ERR_NONE and s1["member_id"].startswith("inst-") and s1["leader"] == s1["member_id"]
        gen = s1["generation"]
        assert sync_v5(c, "flex", gen, s1["member_id"], "inst", [(s1["member_id"], b"S")])[0] == ERR_NONE
        s2 = join_v9(c, "flex", "", "inst")
        assert s2["error"] == ERR_NONE and s2["generation"] == gen and s2["member_id"] != s1["member_id"]
        assert s2["skip"] and s2["leader"] == s2["member_id"] and len(s2["members"]) == 1
        assert heartbeat_v4(c, "flex", gen, s1["member_id"], "inst") == ERR_FENCED_INSTANCE_ID
        assert heartbeat_v4(c, "flex", gen, s2["member_id"], "inst") == ERR_NONE
        assert sync_v5(c, "flex", gen, s2["member_id"], "inst", [])[3] == b"S"
        assert leave_v5(c, "flex", [("", "inst")]) == (ERR_NONE, [ERR_NONE])
        g = describe_v1(c, "flex")
        assert (g["state"], g["members"]) == ("Empty", [])


# An acknowledged offset commit is durable: it survives SIGKILL of the broker right after the answer.
@pytest.mark.pyclients
def test_acknowledged_commit_survives_kill9(broker):
    create_topic(broker, "durable-topic", 1)
    with kwire.Conn.to(broker.bootstrap) as c:
        assert find_coordinator_v4(c, 0, ["dg"])[0]["error"] == ERR_NONE
        for n in range(1, 21):
            assert commit_v2(c, "dg", {("durable-topic", 0): n}) == {("durable-topic", 0): ERR_NONE}
    broker.kill9()
    broker.start()
    with kwire.Conn.to(broker.bootstrap) as c:
        assert fetch_offsets_v8(c, {"dg": None})["dg"] == (ERR_NONE, {("durable-topic", 0): 20})
