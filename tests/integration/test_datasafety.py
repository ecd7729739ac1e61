"""Data safety from the outside: one process per data directory, topic
deletion under a live producer and consumer, damaged logs, a full disk.

Each test provokes the situation with the real binary and real clients
(confluent-kafka, kwire) and checks what a user would check: what was
acknowledged is there, what was deleted is gone, and nothing bad is served
silently."""

import os
import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient

import harness

CLIENT_TIMEOUT_S = 30.0
POLL_DEADLINE_S = 20.0
POLL_INTERVAL_S = 0.05


def wait_until(pred, what, deadline_s=POLL_DEADLINE_S):
    deadline = time.monotonic() + deadline_s
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(POLL_INTERVAL_S)


def snapshot_tree(root):
    """{relative path: (size, mtime_ns)} of every file and directory under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size if n in filenames else 0, st.st_mtime_ns)
    return out


def produce_values(bootstrap, topic, values, acks="all"):
    """Produces values (bytes); returns the list of values acknowledged."""
    acked, errors = [], []

    def cb(err, msg):
        (errors if err else acked).append(err or msg.value())

    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 0,
                  "message.timeout.ms": 20000})
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

    t = threading.Thread(target=consume)
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
