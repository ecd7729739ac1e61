"""Network partitions of the metadata quorum, made by packet filtering.

The test moves itself (its main thread, and so every process and client
thread it starts) into a network namespace of its own, brings its loopback
up and starts three chronik nodes there, node i listening on 127.0.0.(10+i)
with its own group id. An nftables table in that namespace marks every
connection a node opens with the node's id (matched by the socket's group
id), so that cutting node i off drops exactly its traffic: packets to its
client and controller listeners, packets from them, and both directions of
every connection it opened. Its admin port stays reachable, so the test
still reads its /status and /metrics. Healing deletes the cut rules.

The namespace disappears with its last process; the test's thread returns
to its former namespace at teardown, whatever happened. Without root,
namespaces, ip or nft the tests are skipped, saying which is missing
(Debian 12: tools/deps.sh test installs iproute2 and nftables)."""

import ctypes
import os
import shutil
import subprocess
import time
import urllib.request

import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

import harness
from test_cluster import cluster, leader_view, status, topics_on, wait_for  # noqa: F401 (fixture)

CLONE_NEWNET = 0x40000000
PARTITION_S = 10.0          # how long a node stays cut off
NEW_LEADER_S = 3.0          # a majority elects a new leader within this of losing its leader
FETCH_TIMEOUT_MS = 2000     # quorum.fetch.timeout.ms default: a follower notices a silent leader
GID_BASE = 61000            # node i runs with group id GID_BASE + i
TABLE = "chronik_partition"

_libc = ctypes.CDLL(None, use_errno=True)


def node_host(i):
    return "127.0.0.%d" % (10 + i)


def run_nft(script):
    """Runs an nft script in the test's namespace; the CompletedProcess."""
    return subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True, timeout=10)


BASE_RULES = """
table inet %(t)s {
  chain cut { }
  chain out {
    type filter hook output priority 0; policy accept;
%(marks)s
    jump cut
  }
}
"""


class Firewall:
    """The namespace's nftables table: connection marks by node, and cut(node)/heal()."""

    def __init__(self, ids):
        marks = "\n".join("    ct state new meta skgid %d ct mark set %d" % (GID_BASE + i, i) for i in ids)
        r = run_nft(BASE_RULES % {"t": TABLE, "marks": marks})
        if r.returncode != 0:
            pytest.skip("nftables unusable in a new network namespace: " + r.stderr.strip())

    def cut(self, b):
        ports = "{ %d, %d }" % (b.port, b.controller_port)
        rules = ["ip daddr %s tcp dport %s drop" % (b.host, ports),
                 "ip saddr %s tcp sport %s drop" % (b.host, ports),
                 "ct mark %d drop" % b.node_id]
        r = run_nft("".join("add rule inet %s cut %s\n" % (TABLE, x) for x in rules))
        assert r.returncode == 0, r.stderr

    def heal(self):
        r = run_nft("flush chain inet %s cut\n" % TABLE)
        assert r.returncode == 0, r.stderr


@pytest.fixture
def netns():
    """The test's thread in a fresh network namespace with lo up, and its Firewall class."""
    if os.geteuid() != 0:
        pytest.skip("partition tests need root (a network namespace and nftables rules of their own)")
    for tool, pkg in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            pytest.skip("partition tests need %s (Debian package %s: tools/deps.sh test)" % (tool, pkg))
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if _libc.unshare(CLONE_NEWNET) != 0:
            pytest.skip("cannot create a network namespace: " + os.strerror(ctypes.get_errno()))
        try:
            r = harness.run_tool(["ip", "link", "set", "lo", "up"], timeout_s=10)
            if r.returncode != 0:
                pytest.skip("cannot bring lo up in a new network namespace: " + r.stderr.strip())
            yield Firewall
        finally:
            assert _libc.setns(home, CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())
    finally:
        os.close(home)


def as_node(i):
    """preexec_fn: node i runs with its own group id (what its connections are marked by)."""
    def drop_to_group():
        os.setgroups([])
        os.setgid(GID_BASE + i)
    return drop_to_group


@pytest.fixture
def three_in_netns(netns, cluster):
    """Three voters in the namespace, each on its own loopback address and
    group, and the Firewall, healed before the nodes are stopped."""
    fw = netns([1, 2, 3])  # before any node opens a connection, so that all are marked
    try:
        yield cluster(3, node_kwargs=lambda i: {"host": node_host(i), "preexec_fn": as_node(i)}), fw
    finally:
        fw.heal()


def elections(node):
    """chronik_raft_elections_total on the node's /metrics."""
    with urllib.request.urlopen(node.admin_url + "/metrics", timeout=10) as f:
        for line in f.read().decode().splitlines():
            if line.startswith("chronik_raft_elections_total "):
                return int(line.split()[1])
    raise AssertionError("no chronik_raft_elections_total on node %d" % node.node_id)


def voter_at(leader, node_id):
    """The leader's /status entry for one voter (log end, lag, last fetch)."""
    (v,) = [v for v in status(leader)["quorum"]["voters"] if v["id"] == node_id]
    return v


def by_id(nodes, node_id):
    return next(b for b in nodes if b.node_id == node_id)


def stable_leader(nodes):
    """(leader, epoch) once every node agrees and the leader sees every voter caught up."""
    view = wait_for(lambda: leader_view(nodes), "the nodes to agree on a leader")
    leader = by_id(nodes, view[0])
    wait_for(lambda: all(voter_at(leader, b.node_id)["lag"] == 0 for b in nodes), "every voter to catch up")
    return leader, view[1]


# A follower cut off from the other two for 10 s causes no election: while
# it is away the other two keep the same leader and epoch, and it, unable
# to win a pre-vote, never raises its own epoch; healed, it follows the same
# leader in the same epoch, no node has stood for an election, and its lag
# at the leader returns to 0.
def test_cut_off_follower_causes_no_election(three_in_netns):
    nodes, fw = three_in_netns
    leader, epoch = stable_leader(nodes)
    victim = next(b for b in nodes if b is not leader)
    others = [b for b in nodes if b is not victim]
    before = {b.node_id: elections(b) for b in nodes}
    fw.cut(victim)
    roles, silent_ms = set(), 0
    end = time.monotonic() + PARTITION_S
    while time.monotonic() < end:  # the partition's length is the stimulus; the checks run throughout
        assert leader_view(others) == (leader.node_id, epoch)
        q = status(victim)["quorum"]
        assert q["epoch"] == epoch, "the cut-off node raised its epoch: %s" % q
        roles.add(q["role"])
        silent_ms = max(silent_ms, voter_at(leader, victim.node_id)["last_fetch_ms_ago"])
        time.sleep(0.1)
    fw.heal()
    assert silent_ms > 4 * FETCH_TIMEOUT_MS, "the cut did not silence node %d: %d ms" % (victim.node_id, silent_ms)
    assert "prospective" in roles, "the cut-off node never tried a pre-vote: roles %s" % roles
    wait_for(lambda: leader_view(nodes) == (leader.node_id, epoch), "the healed node to follow the same leader")
    wait_for(lambda: voter_at(leader, victim.node_id)["lag"] == 0, "the healed node's lag to return to 0")
    assert {b.node_id: elections(b) for b in nodes} == before
    assert all(status(b)["quorum"]["epoch"] == epoch for b in nodes)


# The quorum leader cut off: the other two elect a new leader within 3 s
# (the fetch timeout and a pre-vote and a vote round), take a CreateTopics
# meanwhile, and once healed the old leader follows the new one in the new
# epoch and has the topic.
def test_cut_off_leader_is_replaced(three_in_netns):
    nodes, fw = three_in_netns
    leader, epoch = stable_leader(nodes)
    rest = [b for b in nodes if b is not leader]
    fw.cut(leader)
    new_id, new_epoch = wait_for(lambda: (lambda v: v if v and v[0] != leader.node_id else None)(leader_view(rest)),
                                 "the majority to elect a new leader", deadline_s=NEW_LEADER_S)
    assert new_epoch > epoch
    admin = AdminClient({"bootstrap.servers": ",".join(b.bootstrap for b in rest)})
    for f in admin.create_topics([NewTopic("made-while-cut", 1, 1)]).values():
        f.result(30)
    assert "made-while-cut" in topics_on(by_id(nodes, new_id))
    assert leader_view(rest) == (new_id, new_epoch)
    fw.heal()
    wait_for(lambda: leader_view(nodes) == (new_id, new_epoch), "the old leader to follow the new one")
    assert [status(b)["quorum"]["role"] for b in nodes].count("leader") == 1
    wait_for(lambda: "made-while-cut" in topics_on(leader), "the old leader to catch up")
    wait_for(lambda: voter_at(by_id(nodes, new_id), leader.node_id)["lag"] == 0, "the old leader's lag to be 0")


# Data replication across a cut: the leader of a replicated partition is cut
# off while an acks=all producer runs (idempotent where the client allows). The majority elects a new
# partition leader and goes on acknowledging; the cut-off leader cannot
# acknowledge anything more (its followers stopped fetching from it), so no
# offset is ever acknowledged twice; after healing it truncates, catches up,
# and every acknowledged message is there.
# Debian's librdkafka 2.0.2 declares a fatal "sequence desynchronization"
# when a batch it timed out on the cut-off leader is followed by later ones
# at the new leader; newer librdkafka recovers, so it runs this with
# idempotence and must see every message exactly once.
IDEMPOTENT = confluent_kafka.libversion()[1] >= 0x02010000


@pytest.mark.pyclients
def test_cut_off_partition_leader_loses_nothing(three_in_netns):
    import test_replication as tr
    nodes, fw = three_in_netns
    topic = "cut-data"
    tr.create_topic(nodes[0], topic, 1)
    # A cut leader answers nothing: librdkafka gives its requests there up
    # after socket.timeout.ms (60 s by default) and sends them to the new leader.
    load = tr.Load(",".join(b.bootstrap for b in nodes), topic, 40000, rate=2000,
                   config=dict({"request.timeout.ms": 5000, "socket.timeout.ms": 5000,
                                "enable.idempotence": IDEMPOTENT}, **({} if IDEMPOTENT else {"max.in.flight": 1})))
    wait_for(lambda: len(load.acked) > 500, "acknowledgements before the cut")
    leader_id = tr.partitions(nodes[0], topic)[0][0]
    victim = by_id(nodes, leader_id)
    others = [b for b in nodes if b is not victim]
    fw.cut(victim)
    try:
        wait_for(lambda: (lambda m: m and m[0][0] not in (-1, leader_id))(tr.partitions(others[0], topic)),
                 "a new partition leader on the majority side")
        before = len(load.acked)
        wait_for(lambda: len(load.acked) > before + 500, "acknowledgements from the new leader")
    finally:
        fw.heal()
    load.join()
    assert len(load.acked) == load.total, "acknowledged %d of %d (%s)" % (len(load.acked), load.total, load.errors)
    offsets = [o for (_, o) in load.acked.values()]
    assert len(offsets) == len(set(offsets)), "an offset was acknowledged twice: two leaders acknowledged"
    tr.settle(nodes, topic, 1)
    tr.check_exactly_once(load, tr.consume_all(nodes[0].bootstrap, topic, 1), duplicates_allowed=not IDEMPOTENT)
