"""Metadata snapshots: with a small
metadata.log.max.record.bytes.between.snapshots a node snapshots its
committed metadata image, trims the metadata log below the older snapshot it
keeps, and on restart loads the newest snapshot and replays only the log
above it; a node that was down while the others snapshotted and trimmed
catches up through FetchSnapshot.

The evidence is what the node reports: /status quorum.snapshot and
log_start_offset, the /metrics gauge chronik_raft_snapshot_offset, the
start-up line "quorum opened ... snapshot_end=N entries=M", the checkpoint
files in the metadata log directory, and Metadata listing every topic."""

import re
import urllib.request

from confluent_kafka.admin import AdminClient, NewTopic

import harness
from test_cluster import cluster, leader_view, ready, status, topics_on, wait_for  # noqa: F401

SNAP_BYTES = "2000"   # a snapshot every few topic creations
TOPICS = 40
META_DIR = "__cluster_metadata-0"


def create_topics(node, names):
    """One CreateTopics per topic: one metadata round (log entry) each."""
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    for name in names:
        for f in admin.create_topics([NewTopic(name, 2, 1)]).values():
            f.result(30)


def checkpoints(node):
    return sorted(p.name for p in (node.data_dir / META_DIR).glob("[0-9]*-[0-9]*.checkpoint"))


def opened_lines(node):
    """(snapshot_end, entries) of every "quorum opened" line, oldest first."""
    return [(int(m.group(1)), int(m.group(2)))
            for m in re.finditer(r"quorum opened .*snapshot_end=(\d+) entries=(\d+)", node.log_text())]


def metric(node, name):
    with urllib.request.urlopen(node.admin_url + "/metrics", timeout=10) as f:
        for line in f.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError("no metric " + name)


def trimmed(node, above=0):
    """The quorum status once the node has a snapshot and its log starts above `above`."""
    q = status(node)["quorum"]
    return q if q["snapshot"]["end_offset"] > 0 and q["log_start_offset"] > above else None


# A single node creating 40 topics takes several snapshots, keeps at most
# two checkpoint files, and trims its log; restarted, it starts from its
# newest snapshot (replaying only the entries above it) with every topic.
def test_restart_replays_from_the_snapshot(broker_factory):
    b = broker_factory(settings={"metadata.log.max.record.bytes.between.snapshots": SNAP_BYTES})
    names = ["snap-%02d" % i for i in range(TOPICS)]
    create_topics(b, names)
    q = wait_for(lambda: trimmed(b), "a snapshot and a trimmed metadata log")
    assert q["snapshot"]["taken"] >= 2 and q["snapshot"]["age_ms"] >= 0
    assert 1 <= len(checkpoints(b)) <= 2, checkpoints(b)
    assert metric(b, "chronik_raft_snapshot_offset") >= q["snapshot"]["end_offset"]  # only ever grows
    assert metric(b, "chronik_raft_snapshot_age_ms") >= 0
    assert metric(b, "chronik_raft_log_start_offset") > 0
    assert len(opened_lines(b)) == 1 and opened_lines(b)[0][0] == 0
    b.stop()
    b.start()
    snap_end, entries = opened_lines(b)[-1]
    assert snap_end > 0, "the restart did not load a snapshot"
    after = status(b)["quorum"]
    # (the entries replayed above it may already have made a newer one)
    assert after["snapshot"]["end_offset"] >= snap_end and after["log_start_offset"] > 0
    assert entries < after["log_end_offset"] - 1, "the restart replayed from offset 0"
    assert set(names) <= topics_on(b)


# Three voters; one is stopped while the other two create topics past
# several snapshots and trim their logs above the stopped node's log end.
# Restarted, it cannot fetch the log it missed: it installs the leader's
# snapshot through FetchSnapshot and then shows every topic.
def test_stopped_node_catches_up_through_fetch_snapshot(cluster):  # noqa: F811
    nodes = cluster(3, settings={"metadata.log.max.record.bytes.between.snapshots": SNAP_BYTES})
    leader_id, _ = wait_for(lambda: leader_view(nodes), "a leader")
    leader = next(n for n in nodes if n.node_id == leader_id)
    down = next(n for n in nodes if n is not leader)
    down_end = status(down)["quorum"]["log_end_offset"]
    down.stop()
    rest = [n for n in nodes if n is not down]
    names = ["cu-%02d" % i for i in range(TOPICS)]
    create_topics(leader, names)
    for n in rest:
        wait_for(lambda: trimmed(n, above=down_end), "node %d to trim its log past %d" % (n.node_id, down_end))
    down.start()
    wait_for(lambda: ready(down), "the restarted node to be ready")
    wait_for(lambda: set(names) <= topics_on(down), "every topic on the restarted node")
    q = wait_for(lambda: (lambda s: s if s["snapshot"]["installed"] >= 1 else None)(status(down)["quorum"]),
                 "the restarted node to report an installed snapshot")
    assert q["snapshot"]["end_offset"] > down_end and q["log_start_offset"] > down_end
    assert "metadata snapshot installed" in down.log_text()
    assert 1 <= len(checkpoints(down)) <= 2
