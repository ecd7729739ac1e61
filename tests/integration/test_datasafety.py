"""Data safety from the outside: one process per data directory, topic
deletion under a live producer and consumer, damaged logs, a full disk.

Each test provokes the situation with the real binary and real clients
(confluent-kafka, kwire) and checks what a user would check: what was
acknowledged is there, what was deleted is gone, and nothing bad is served
silently."""

import json
import os
import subprocess
import threading
import time
import urllib.request
import uuid

import pytest

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient

import harness

CLIENT_TIMEOUT_S = 30.0
POLL_DEADLINE_S = 20.0
POLL_INTERVAL_S = 0.05


def wait_until(pred, what, deadline_s=POLL_DEADLINE_S):
    return harness.wait_until(pred, what, deadline_s, POLL_INTERVAL_S)


def snapshot_tree(root):
    """{relative path: (size, mtime_ns)} of every file and directory under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size if n in filenames else 0, st.st_mtime_ns)
    return out


def produce_values(bootstrap, topic, values, acks="all", **conf):
    """Produces values (bytes); returns (values acknowledged, errors)."""
    acked, errors = [], []

    def cb(err, msg):
        (errors if err else acked).append(err or msg.value())

    p = Producer(dict({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 0,
                       "message.timeout.ms": 20000}, **conf))
    for v in values:
        p.produce(topic, v, callback=cb)
        p.poll(0)
    assert p.flush(CLIENT_TIMEOUT_S) == 0
    return acked, errors


def consume_all(bootstrap, topic, expect_at_least, deadline_s=POLL_DEADLINE_S):
    """Values of topic from the beginning, read until expect_at_least arrived
    and then until one idle second passes (or the deadline)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "ds-%s" % uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "check.crcs": True, "topic.metadata.refresh.interval.ms": 500})
    c.subscribe([topic])
    got, idle_since = [], None
    deadline = time.monotonic() + deadline_s
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF):
                if len(got) >= expect_at_least:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > 1.0:
                        break
                continue
            if m.error():
                continue
            idle_since = None
            got.append(m.value())
    finally:
        c.close()
    return got


# ---- 1. one process per data directory --------------------------------------

# A second broker on a data directory in use exits 1 naming the lock file and
# the holder's pid, touches nothing in the directory, and the first keeps serving.
def test_second_process_refused_by_data_dir_lock(broker_factory, tmp_path):
    a = broker_factory(name="a")
    acked, _ = produce_values(a.bootstrap, "locked", [b"m%d" % i for i in range(100)])
    assert len(acked) == 100
    before = snapshot_tree(a.data_dir)
    r = harness.run_tool([str(harness.CHRONIK_BIN), "server",
                          "--listen", "127.0.0.1:%d" % harness.free_port(),
                          "--controller-listen", "127.0.0.1:%d" % harness.free_port(),
                          "--admin-listen", "127.0.0.1:%d" % harness.free_port(),
                          "--data-dir", str(a.data_dir)], timeout_s=30)
    assert r.returncode == 1, r.stderr
    assert "in use by another process" in r.stderr and ".lock" in r.stderr
    assert "pid %d" % a.proc.pid in r.stderr
    assert snapshot_tree(a.data_dir) == before
    assert len(consume_all(a.bootstrap, "locked", 100)) == 100
    # once the holder is gone the directory can be taken again
    a.restart()
    assert len(consume_all(a.bootstrap, "locked", 100)) == 100


# ---- 2. delete a topic in use, with auto-creation on ------------------------

def _open_fds(pid):
    fd_dir = "/proc/%d/fd" % pid
    out = []
    for fd in os.listdir(fd_dir):
        try:
            out.append(os.readlink(os.path.join(fd_dir, fd)))
        except OSError:
            pass
    return out


# Deleting a topic while a producer and a group consumer use it: the
# auto-created successor gets a new topic id and a fresh directory, deleted
# records never come back, every write acknowledged after the delete is
# served, also after a restart, and no file of the old topic stays open.
def test_delete_and_recreate_under_live_clients(broker):
    topic = "d"
    acked_old, _ = produce_values(broker.bootstrap, topic, [b"old-%d" % i for i in range(300)])
    assert len(acked_old) == 300
    old_id = (broker.data_dir / "d-0" / "partition.metadata").read_text()

    stop = threading.Event()
    seen = []

    def consume():
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "live",
                      "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 200})
        c.subscribe([topic])
        while not stop.is_set():
            m = c.poll(0.1)
            if m is not None and not m.error():
                seen.append(m.value())
        c.close()

    # daemon: librdkafka 2.0's consumer close can hang after its topic was
    # deleted and created again, and must not keep the test run from exiting
    t = threading.Thread(target=consume, daemon=True)
    t.start()
    try:
        wait_until(lambda: len(seen) >= 300, "the consumer to read the first records")
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for f in admin.delete_topics([topic], operation_timeout=10).values():
            f.result(CLIENT_TIMEOUT_S)
        acked_new, _ = produce_values(broker.bootstrap, topic, [b"new-%d" % i for i in range(2000)])
    finally:
        stop.set()
        t.join(30)
    assert len(acked_new) > 0
    new_id = wait_until(lambda: (broker.data_dir / "d-0" / "partition.metadata").exists()
                        and (broker.data_dir / "d-0" / "partition.metadata").read_text(),
                        "the new partition directory")
    assert new_id != old_id
    got = consume_all(broker.bootstrap, topic, len(acked_new))
    assert not [v for v in got if v.startswith(b"old-")], "deleted records served again"
    assert set(acked_new) <= set(got)
    wait_until(lambda: not [p for p in _open_fds(broker.proc.pid) if "(deleted)" in p or "-delete" in p],
               "the deleted topic's files to be closed")
    wait_until(lambda: not [n for n in os.listdir(broker.data_dir) if n.endswith("-delete")],
               "the deleted directory to be removed")
    broker.restart()
    got = consume_all(broker.bootstrap, topic, len(acked_new))
    assert not [v for v in got if v.startswith(b"old-")]
    assert set(acked_new) <= set(got), "writes acknowledged after the delete lost across a restart"


# A topic deleted while the broker is down is not resurrected: after the
# restart it is gone, and creating it again starts empty.
def test_delete_then_restart_then_recreate(broker):
    acked, _ = produce_values(broker.bootstrap, "gone", [b"old-%d" % i for i in range(50)])
    assert len(acked) == 50
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.delete_topics(["gone"], operation_timeout=10).values():
        f.result(CLIENT_TIMEOUT_S)
    broker.restart()
    assert not [n for n in os.listdir(broker.data_dir) if n.startswith("gone-")]
    acked, _ = produce_values(broker.bootstrap, "gone", [b"new-%d" % i for i in range(10)])
    assert len(acked) == 10
    got = consume_all(broker.bootstrap, "gone", 10)
    assert sorted(got) == sorted(acked)


# ---- 4. damage found by the scrubber -----------------------------------------

def _status(broker):
    r = harness.run_tool([str(harness.CHRONIK_BIN), "cluster", "status", "--admin",
                          "127.0.0.1:%d" % broker.admin_port, "--json"], timeout_s=CLIENT_TIMEOUT_S)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None


def _metrics(broker):
    with urllib.request.urlopen(broker.admin_url + "/metrics", timeout=10) as f:
        return f.read().decode()


def _partition(doc, topic):
    rows = [p for p in doc["partitions"] if p["topic"] == topic]
    return rows[0] if rows else None


# A byte flipped in the middle of a closed segment, which start-up does not
# read, is found by the scrubber: the partition turns read-only with the
# damaged offsets on status and /metrics, and a CRC-checking consumer gets
# every offset before them and never the damaged batch.
def test_scrubber_finds_damage_in_a_closed_segment(broker_factory):
    b = broker_factory(settings={"log.segment.bytes": "16384"})
    acked, errors = produce_values(b.bootstrap, "scrubbed", [b"%04d" % i + b"x" * 996 for i in range(60)],
                                    **{"batch.size": 4096})
    assert len(acked) == 60, errors[:3]
    b.stop()
    segs = sorted((b.data_dir / "scrubbed-0").glob("*.log"))
    assert len(segs) >= 3
    data = bytearray(segs[0].read_bytes())
    data[len(data) // 3] ^= 0xFF   # a record inside the segment, not its last batch
    segs[0].write_bytes(bytes(data))
    b.settings["log.scrub.interval.ms"] = "300"
    b.start()
    doc = wait_until(lambda: (lambda rc_doc: rc_doc[1] if rc_doc[0] == 1 and
                              (_partition(rc_doc[1], "scrubbed") or {}).get("state") == "read-only"
                              else None)(_status(b)), "the scrubber to report the damage")
    p = _partition(doc, "scrubbed")
    first_bad, after_bad = p["damaged_from"], p["damaged_to"]
    assert 0 <= first_bad < after_bad <= 60 and "scrubber" in p["error"], p
    m = _metrics(b)
    assert 'chronik_partition_damaged_from_offset{topic="scrubbed",partition="0"} %d' % first_bad in m
    assert "chronik_partitions_read_only 1" in m
    got = consume_all(b.bootstrap, "scrubbed", first_bad, deadline_s=10)
    offsets = sorted(int(v[:4]) for v in got)
    assert offsets[:first_bad] == list(range(first_bad)), offsets
    assert not [o for o in offsets if first_bad <= o < after_bad], "a damaged batch was served"


# ---- 5. a full disk ------------------------------------------------------------

@pytest.fixture
def small_fs(tmp_path):
    """A 64 MiB tmpfs mounted for this test (skipped where mounting is not allowed)."""
    mnt = tmp_path / "small-fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): %s" % r.stderr.strip())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(bootstrap, topic, value_bytes, max_messages):
    """Produces until the broker refuses; returns the values acknowledged."""
    acked, errors = [], []

    def cb(err, msg):
        (errors if err else acked).append(err or msg.value())

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "message.timeout.ms": 3000, "queue.buffering.max.messages": 1000})
    for i in range(max_messages):
        if errors:
            break
        p.produce(topic, b"%08d" % i + b"f" * (value_bytes - 8), callback=cb)
        p.poll(0)
        if i % 200 == 199:
            p.flush(CLIENT_TIMEOUT_S)
    p.flush(CLIENT_TIMEOUT_S)
    return acked, errors


# On a full disk writes fail cleanly (KAFKA_STORAGE_ERROR), the partition is
# reported read-only and the disk low; deleting another topic frees space and
# writes resume without a restart; everything acknowledged survives kill -9.
def test_full_disk_recovers_when_space_returns(small_fs, broker_factory):
    b = harness.Broker(small_fs, name="full")
    broker_factory_made = broker_factory  # noqa: F841 (keeps the factory's teardown after ours)
    b.data_dir = small_fs / "data"
    b.start()
    try:
        spare, _ = produce_values(b.bootstrap, "spare", [b"s" * 10000 for _ in range(2000)])
        assert len(spare) == 2000
        acked, errors = _fill(b.bootstrap, "fill", 10000, 20000)
        assert errors and acked, (len(acked), errors[:1])
        assert all(e.code() in (KafkaError.KAFKA_STORAGE_ERROR, KafkaError._MSG_TIMED_OUT) for e in errors), errors[:3]
        rc, doc = _status(b)
        assert rc == 1 and _partition(doc, "fill")["state"] == "read-only", doc
        assert doc["disk"]["low"] is True and doc["warnings"], doc
        assert "chronik_log_dir_free_bytes" in _metrics(b)
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        for f in admin.delete_topics(["spare"], operation_timeout=10).values():
            f.result(CLIENT_TIMEOUT_S)

        def one_more():
            more, _ = produce_values(b.bootstrap, "fill", [b"after-%d" % time.monotonic_ns()])
            acked.extend(more)
            return more
        wait_until(one_more, "writes to resume once space returned", deadline_s=30)
        b.kill9()
        b.start()
        got = consume_all(b.bootstrap, "fill", len(acked), deadline_s=60)
        assert set(acked) <= set(got), "acknowledged writes lost: %d of %d" % (len(set(acked) - set(got)), len(acked))
    finally:
        b.stop()
