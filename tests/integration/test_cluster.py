"""Several chronik processes forming one cluster on loopback: the metadata
quorum elects one leader, replicates the metadata log to every voter, fails
over when its leader is killed, and a returning node catches up; every node
registers as a broker and heartbeats, and a silent one is fenced.

Each node is a real broker process (harness.Broker) with every node's ports
chosen before any starts, so controller.quorum.voters is the same on all."""

import json
import random
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

import harness
import kwire
from test_quorum import describe_quorum

DEADLINE_S = 30.0     # ASan builds on a loaded 2-core machine
POLL_S = 0.05
ERR_NOT_LEADER_OR_FOLLOWER = 6


def wait_for(pred, what, deadline_s=DEADLINE_S):
    return harness.wait_until(pred, what, deadline_s, POLL_S)


def status(node):
    """GET /status: the JSON document, whether the node is healthy (200) or not (503)."""
    try:
        with urllib.request.urlopen(node.admin_url + "/status", timeout=10) as f:
            return json.loads(f.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def ready(node):
    try:
        with urllib.request.urlopen(node.admin_url + "/ready", timeout=5) as f:
            return f.status == 200
    except OSError:
        return False


@pytest.fixture
def cluster(broker_factory):
    """make(n, observers=0, settings=None, node_kwargs=None): n voters and
    that many broker-only nodes (process.roles=broker), ports picked first,
    started in random order; node_kwargs(i), if given, returns more
    broker_factory arguments for node i (e.g. host, preexec_fn)."""
    def make(n, observers=0, settings=None, node_kwargs=None):
        def node(i):  # node_kwargs may add settings of that node's own
            kw = dict(node_kwargs(i)) if node_kwargs else {}
            own = dict(settings or {}, **kw.pop("settings", {}))
            return broker_factory(name="node%d" % i, node_id=i, settings=own, start=False, **kw)
        nodes = [node(i) for i in range(1, n + observers + 1)]
        ports = harness.free_ports(3 * len(nodes))  # distinct across the nodes too
        for i, b in enumerate(nodes):
            b._pick_ports(ports[3 * i:3 * i + 3])
        voters = ",".join("%d@%s:%d" % (b.node_id, b.host, b.controller_port) for b in nodes[:n])
        for b in nodes:
            b.extra_args += ["--voters", voters]
        for b in nodes[n:]:
            b.extra_args += ["--set", "process.roles=broker"]
        order = list(nodes)
        random.shuffle(order)
        for b in order:
            b.start()
            time.sleep(random.uniform(0, 0.3))  # nodes start at any time, in any order
        wait_for(lambda: all(ready(b) for b in nodes), "every node to be ready")
        return nodes
    return make


def leader_view(nodes):
    """(leader id, epoch) if every node agrees on one, else None."""
    seen = set()
    for b in nodes:
        q = status(b)["quorum"]
        seen.add((q["leader_id"], q["epoch"]))
    if len(seen) == 1:
        (view,) = seen
        return view if view[0] >= 0 else None
    return None


def topics_on(node):
    with kwire.Conn.to(node.bootstrap) as c:
        return {t["name"] for t in kwire.metadata_v1(c)["topics"]}


# Three nodes started in random order elect one leader; every node's status
# agrees on leader and epoch, and DescribeQuorum at the leader lists every
# voter caught up; the others' controller listeners point at it, their client
# listeners relay its answer.
def test_three_nodes_elect_one_leader(cluster):
    nodes = cluster(3)
    leader_id, epoch = wait_for(lambda: leader_view(nodes), "the nodes to agree on a leader")
    assert epoch >= 1
    leader = next(b for b in nodes if b.node_id == leader_id)
    with kwire.Conn("127.0.0.1", leader.controller_port) as c:
        d = wait_for(lambda: (lambda x: x if all(v["log_end_offset"] == x["partitions"][0]["high_watermark"]
                                                  for v in x["partitions"][0]["voters"]) else None)(
            describe_quorum(c)), "every voter to catch up")
    p = d["partitions"][0]
    assert p["leader_id"] == leader_id and sorted(v["id"] for v in p["voters"]) == [1, 2, 3]
    for b in nodes:
        if b is not leader:
            with kwire.Conn("127.0.0.1", b.controller_port) as c:
                other = describe_quorum(c)["partitions"][0]
            assert other["error_code"] == ERR_NOT_LEADER_OR_FOLLOWER and other["leader_id"] == leader_id
            with kwire.Conn.to(b.bootstrap) as c:
                relayed = describe_quorum(c)["partitions"][0]
            assert relayed["error_code"] == 0 and relayed["leader_id"] == leader_id, relayed
            assert sorted(v["id"] for v in relayed["voters"]) == [1, 2, 3]
    elections = sum(status(b)["quorum"]["elections"] for b in nodes)
    assert elections <= 3, "an election storm at start: %d elections" % elections


# A topic created through the quorum leader appears in Metadata on every
# node; killing the leader with SIGKILL elects another, which creates topics
# too; the killed node restarts and catches up with both topics.
def test_leader_failover_and_catch_up(cluster):
    nodes = cluster(3)
    leader_id, epoch = wait_for(lambda: leader_view(nodes), "a leader")
    leader = next(b for b in nodes if b.node_id == leader_id)
    admin = AdminClient({"bootstrap.servers": leader.bootstrap})
    for f in admin.create_topics([NewTopic("before-failover", 2, 1)]).values():
        f.result(30)
    for b in nodes:
        wait_for(lambda: "before-failover" in topics_on(b), "the topic on node %d" % b.node_id)
    leader.kill9()
    rest = [b for b in nodes if b is not leader]
    t0 = time.monotonic()
    new_id, new_epoch = wait_for(lambda: (lambda v: v if v and v[0] != leader_id else None)(leader_view(rest)),
                                 "a new leader")
    failover_s = time.monotonic() - t0
    assert new_epoch > epoch and failover_s < 15, failover_s
    new_leader = next(b for b in rest if b.node_id == new_id)
    admin = AdminClient({"bootstrap.servers": new_leader.bootstrap})
    for f in admin.create_topics([NewTopic("after-failover", 1, 1)]).values():
        f.result(30)
    leader.start()
    wait_for(lambda: ready(leader), "the old leader to be ready again")
    wait_for(lambda: {"before-failover", "after-failover"} <= topics_on(leader), "the old leader to catch up")
    assert status(leader)["quorum"]["leader_id"] == new_id


# A node that does not lead the quorum forwards topic changes to the one that
# does: a topic created through it is in its own Metadata as soon as the
# create is answered (read-your-writes), then on every node; a deletion
# through it likewise; and auto-creation on a Metadata request it receives
# goes through the leader too.
def test_changes_through_a_follower(cluster):
    nodes = cluster(3)
    leader_id, _ = wait_for(lambda: leader_view(nodes), "a leader")
    follower = next(b for b in nodes if b.node_id != leader_id)
    admin = AdminClient({"bootstrap.servers": follower.bootstrap})
    for f in admin.create_topics([NewTopic("via-follower", 3, 1)]).values():
        f.result(30)
    assert "via-follower" in topics_on(follower)
    for b in nodes:
        wait_for(lambda: "via-follower" in topics_on(b), "the topic on node %d" % b.node_id)
    for f in admin.delete_topics(["via-follower"], operation_timeout=30).values():
        f.result(30)
    assert "via-follower" not in topics_on(follower)
    with kwire.Conn.to(follower.bootstrap) as c:
        md = kwire.metadata_v1(c, topics=["auto-via-follower"])
    names = {t["name"] for t in md["topics"]}
    assert "auto-via-follower" in names or "auto-via-follower" in topics_on(follower)
    for b in nodes:
        wait_for(lambda: "auto-via-follower" in topics_on(b), "the auto-created topic on node %d" % b.node_id)


# Through a follower too: new partitions (visible there when answered) and
# producer ids for an idempotent producer (the follower's block comes from
# the leader, so two nodes never hand out the same id).
def test_partitions_and_producer_ids_through_a_follower(cluster):
    nodes = cluster(3)
    leader_id, _ = wait_for(lambda: leader_view(nodes), "a leader")
    followers = [b for b in nodes if b.node_id != leader_id]
    admin = AdminClient({"bootstrap.servers": followers[0].bootstrap})
    for f in admin.create_topics([NewTopic("grows", 1, 1)]).values():
        f.result(30)
    for f in admin.create_partitions([NewPartitions("grows", 4)]).values():
        f.result(30)
    with kwire.Conn.to(followers[0].bootstrap) as c:
        md = kwire.metadata_v1(c, topics=["grows"])
    (t,) = [t for t in md["topics"] if t["name"] == "grows"]
    assert len(t["partitions"]) == 4
    ids = []
    for b in followers + [b for b in nodes if b.node_id == leader_id]:
        with kwire.Conn.to(b.bootstrap) as c:
            body = kwire.Writer().i16(-1).i32(60000).bytes()  # InitProducerId v0, no transactional id
            _, resp = c.request(22, 0, body)
        r = kwire.Reader(resp)
        r.i32()
        assert r.i16() == 0
        ids.append(r.i64())
    assert len(set(ids)) == 3 and min(ids) >= 0, ids


# All three nodes stopped and started again at once: one leader, at most two
# elections in all (no election storm), and the metadata is still there.
def test_restart_all_at_once(cluster):
    nodes = cluster(3)
    leader_id, _ = wait_for(lambda: leader_view(nodes), "a leader")
    leader = next(b for b in nodes if b.node_id == leader_id)
    admin = AdminClient({"bootstrap.servers": leader.bootstrap})
    for f in admin.create_topics([NewTopic("kept", 1, 1)]).values():
        f.result(30)
    for b in nodes:
        b.stop()
    for b in nodes:
        b.start()
    wait_for(lambda: all(ready(b) for b in nodes), "every node to be ready again")
    wait_for(lambda: leader_view(nodes), "one leader")
    elections = sum(status(b)["quorum"]["elections"] for b in nodes)
    assert 1 <= elections <= 2, "elections after a full restart: %d" % elections
    for b in nodes:
        assert "kept" in topics_on(b)


# A follower paused (SIGSTOP) for longer than the fetch timeout and then
# resumed causes no election: pre-vote keeps it from deposing a healthy
# leader, so the epoch does not change.
def test_paused_follower_causes_no_election(cluster):
    nodes = cluster(3)
    leader_id, epoch = wait_for(lambda: leader_view(nodes), "a leader")
    follower = next(b for b in nodes if b.node_id != leader_id)
    follower.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(5.0)  # the pause itself: more than twice the 2 s fetch timeout
    finally:
        follower.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: ready(follower), "the resumed follower to be ready")
    others = [b for b in nodes if b is not follower]
    assert leader_view(others) == (leader_id, epoch)
    wait_for(lambda: leader_view(nodes) == (leader_id, epoch), "the follower to rejoin the same epoch")


# Both followers forwarding topic creations at once (auto-creation on
# Metadata: four connections to each, each asking for five new topics at a
# time, ten times) do not hold back the quorum: its fetches do not wait
# behind the forwarded changes, so every topic is created and the leader and
# epoch stay as they were, with no election.
def test_forwarding_from_both_followers_keeps_the_leader(cluster):
    nodes = cluster(3)
    leader_id, epoch = wait_for(lambda: leader_view(nodes), "a leader")
    elections = sum(status(b)["quorum"]["elections"] for b in nodes)
    followers = [b for b in nodes if b.node_id != leader_id]
    batches = {(b, k): [["fwd-%d-%d-%d-%d" % (b.node_id, k, i, j) for j in range(5)] for i in range(10)]
               for b in followers for k in range(4)}
    failures = []

    def auto_create(b, batches):
        try:
            with kwire.Conn.to(b.bootstrap, timeout=60) as c:
                for names in batches:
                    kwire.metadata_v1(c, topics=names, timeout=60)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            failures.append(repr(e))
    threads = [threading.Thread(target=auto_create, args=(b, bl), daemon=True) for (b, _), bl in batches.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    every = {n for bl in batches.values() for names in bl for n in names}
    for b in nodes:
        wait_for(lambda: every <= topics_on(b), "the forwarded topics on node %d" % b.node_id)
    assert leader_view(nodes) == (leader_id, epoch)
    assert sum(status(b)["quorum"]["elections"] for b in nodes) == elections


# Five voters: one leader, the metadata on all five, and the quorum survives
# losing two of them (a majority of three remains).
def test_five_nodes_survive_two_losses(cluster):
    nodes = cluster(5)
    leader_id, _ = wait_for(lambda: leader_view(nodes), "a leader")
    leader = next(b for b in nodes if b.node_id == leader_id)
    admin = AdminClient({"bootstrap.servers": leader.bootstrap})
    for f in admin.create_topics([NewTopic("five", 1, 1)]).values():
        f.result(30)
    for b in nodes:
        wait_for(lambda: "five" in topics_on(b), "the topic on node %d" % b.node_id)
    lost = [b for b in nodes if b is not leader][:1] + [leader]
    for b in lost:
        b.kill9()
    rest = [b for b in nodes if b not in lost]
    new_id, _ = wait_for(lambda: (lambda v: v if v and v[0] != leader_id else None)(leader_view(rest)),
                         "a leader among the three left")
    new_leader = next(b for b in rest if b.node_id == new_id)
    admin = AdminClient({"bootstrap.servers": new_leader.bootstrap})
    for f in admin.create_topics([NewTopic("after-two-losses", 1, 1)]).values():
        f.result(30)
    for b in rest:
        wait_for(lambda: "after-two-losses" in topics_on(b), "the new topic on node %d" % b.node_id)


def list_offsets_error(node, topic, partition):
    """ListOffsets v1 (latest) for one partition: its error code."""
    body = (kwire.Writer().i32(-1).i32(1).string(topic).i32(1).i32(partition).i64(-1).bytes())
    with kwire.Conn.to(node.bootstrap) as c:
        _, resp = c.request(2, 1, body)
    r = kwire.Reader(resp)
    assert r.i32() == 1
    r.string()
    assert r.i32() == 1
    assert r.i32() == partition
    return r.i16()


# A node asked for a partition that another node holds answers
# NOT_LEADER_OR_FOLLOWER (clients refresh their metadata and go there), and
# UNKNOWN_TOPIC_OR_PARTITION only for a partition the topic does not have.
def test_partition_held_elsewhere(cluster):
    nodes = cluster(3)
    leader_id, _ = wait_for(lambda: leader_view(nodes), "a leader")
    leader = next(b for b in nodes if b.node_id == leader_id)
    admin = AdminClient({"bootstrap.servers": leader.bootstrap})
    for f in admin.create_topics([NewTopic("held", 1, 1)]).values():
        f.result(30)
    # placed on any registered broker, whose log opens once it applies the topic
    holder = wait_for(lambda: [b for b in nodes if (b.data_dir / "held-0").is_dir()], "the partition's log")
    assert len(holder) == 1
    other = next(b for b in nodes if b is not holder[0])
    wait_for(lambda: "held" in topics_on(other), "the topic on another node")
    assert list_offsets_error(holder[0], "held", 0) == 0
    assert list_offsets_error(other, "held", 0) == ERR_NOT_LEADER_OR_FOLLOWER
    assert list_offsets_error(other, "held", 7) == 3


# Three voters and two broker-only nodes: the brokers follow the metadata
# log as observers (listed by the leader, caught up), forward changes they
# receive, and a node listed as a voter cannot be broker-only.
def test_voters_and_broker_only_nodes(cluster, tmp_path):
    nodes = cluster(3, observers=2)
    leader_id, _ = wait_for(lambda: leader_view(nodes), "a leader")
    leader = next(b for b in nodes if b.node_id == leader_id)

    def observers_caught_up():
        q = status(leader)["quorum"]
        obs = {o["id"]: o for o in q["observers"]}
        return set(obs) == {4, 5} and all(o["lag"] == 0 for o in obs.values())
    wait_for(observers_caught_up, "the broker-only nodes to follow the log")
    assert all(status(b)["quorum"]["role"] in ("follower", "unattached") for b in nodes[3:])
    admin = AdminClient({"bootstrap.servers": nodes[4].bootstrap})
    for f in admin.create_topics([NewTopic("from-a-broker", 1, 1)]).values():
        f.result(30)
    for b in nodes:
        wait_for(lambda: "from-a-broker" in topics_on(b), "the topic on node %d" % b.node_id)
    r = harness.run_tool([str(harness.CHRONIK_BIN), "server", "--node-id", "1", "--set", "process.roles=broker",
                          "--listen", "127.0.0.1:%d" % harness.free_port(),
                          "--controller-listen", "127.0.0.1:%d" % harness.free_port(),
                          "--admin-listen", "127.0.0.1:%d" % harness.free_port(),
                          "--data-dir", str(tmp_path / "refused"),
                          "--voters", "1@127.0.0.1:%d" % nodes[0].controller_port], timeout_s=30)
    assert r.returncode == 1 and "cannot be a voter" in r.stderr, r.stderr


def metadata_brokers(node):
    """(sorted [(id, port)], controller id) from the node's Metadata v1."""
    with kwire.Conn.to(node.bootstrap) as c:
        md = kwire.metadata_v1(c, [])
    return sorted((b["node_id"], b["port"]) for b in md["brokers"]), md["controller_id"]


ERR_STALE_BROKER_EPOCH = 77
ERR_NOT_CONTROLLER = 41


def heartbeat_error(node, broker_id, epoch):
    """ErrorCode of a BrokerHeartbeat v0 sent to node's controller listener."""
    body = (kwire.Writer().i32(broker_id).i64(epoch).i64(0).i8(0).i8(0).tags().bytes())
    with kwire.Conn("127.0.0.1", node.controller_port) as c:
        _, resp = c.request(63, 0, body)
    r = kwire.Reader(resp)
    r.i32()
    return r.i16()


def brokers_in_status(node):
    return {b["id"]: b for b in status(node)["brokers"]}


# Every node registers with the controller and heartbeats: each node's
# Metadata lists the three brokers with their advertised ports, and all
# name the quorum leader as controller; the leader's /status knows each
# broker's last heartbeat, the others report -1; a heartbeat sent to a node
# that is not the controller gets NOT_CONTROLLER, one with a stale broker
# epoch STALE_BROKER_EPOCH.
def test_every_node_lists_every_broker(cluster):
    nodes = cluster(3)
    leader_id, _ = wait_for(lambda: leader_view(nodes), "a leader")
    want = sorted((b.node_id, b.port) for b in nodes)
    for b in nodes:
        wait_for(lambda: metadata_brokers(b) == (want, leader_id),
                 "node %d to list every broker with controller %d" % (b.node_id, leader_id))
    leader = next(b for b in nodes if b.node_id == leader_id)
    seen = brokers_in_status(leader)
    assert sorted(seen) == [1, 2, 3]
    assert all(not v["fenced"] and 0 <= v["last_heartbeat_ms_ago"] < 30000 for v in seen.values()), seen
    assert all(v["port"] == b.port for b in nodes for v in [seen[b.node_id]])
    other = next(b for b in nodes if b is not leader)
    assert all(v["last_heartbeat_ms_ago"] == -1 for v in brokers_in_status(other).values())
    # Only the controller takes heartbeats; it refuses a stale broker epoch.
    assert heartbeat_error(other, other.node_id, 0) == ERR_NOT_CONTROLLER
    assert heartbeat_error(leader, other.node_id, 1 << 40) == ERR_STALE_BROKER_EPOCH


# A broker stopped (SIGSTOP) for longer than the session timeout is fenced:
# the leader's /status shows it fenced and degraded, Metadata no longer lists
# it, /metrics counts it; after SIGCONT it heartbeats and is unfenced again.
def test_silent_broker_is_fenced_and_returns(cluster):
    nodes = cluster(3, settings={"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"})
    leader_id, _ = wait_for(lambda: leader_view(nodes), "a leader")
    leader = next(b for b in nodes if b.node_id == leader_id)
    victim = next(b for b in nodes if b is not leader)
    wait_for(lambda: len(metadata_brokers(leader)[0]) == 3, "every broker registered")
    victim.proc.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: brokers_in_status(leader)[victim.node_id]["fenced"], "the stopped broker to be fenced")
        st = status(leader)
        assert not st["healthy"] and any("broker %d is fenced" % victim.node_id in p for p in st["problems"]), st
        assert victim.node_id not in [i for i, _ in metadata_brokers(leader)[0]]
        with urllib.request.urlopen(leader.admin_url + "/metrics", timeout=10) as f:
            metrics = f.read().decode()
        assert 'chronik_brokers{state="fenced"} 1' in metrics, metrics
    finally:
        victim.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: not brokers_in_status(leader)[victim.node_id]["fenced"], "the broker to be unfenced")
    want = sorted((b.node_id, b.port) for b in nodes)
    wait_for(lambda: metadata_brokers(leader)[0] == want, "the broker listed again")


# The earlier system's failing reproduction: kafka-python bootstrapped only to
# a node that does not lead the quorum auto-creates a topic by producing to
# it, well under a second later the write is acknowledged, and every record
# is consumed back through that node.
def test_kafka_python_auto_creates_through_a_follower(cluster):
    from kafka import KafkaConsumer, KafkaProducer
    nodes = cluster(3)
    leader_id, _ = wait_for(lambda: leader_view(nodes), "a leader")
    follower = next(b for b in nodes if b.node_id != leader_id)
    p = KafkaProducer(bootstrap_servers=follower.bootstrap, acks=1)
    t0 = time.monotonic()
    p.send("kp-auto", b"first").get(timeout=30)
    first_ack_s = time.monotonic() - t0
    for i in range(99):
        p.send("kp-auto", b"m%d" % i)
    p.flush(30)
    p.close()
    assert first_ack_s < 5.0, first_ack_s  # typically ~0.3 s; the bound leaves room for ASan on 2 cores
    c = KafkaConsumer("kp-auto", bootstrap_servers=follower.bootstrap, auto_offset_reset="earliest",
                      consumer_timeout_ms=10000)
    got = [m.value for m in c]
    c.close()
    assert sorted(got) == sorted([b"first"] + [b"m%d" % i for i in range(99)])


# A 6-partition topic is spread over the 3 registered brokers (each leads
# two); librdkafka produces keyed messages with acks=all through one node
# and kafka-python group consumers bootstrapped to another read every one,
# each group coordinated by the broker that leads its offsets partition.
def test_spread_topic(cluster):
    from confluent_kafka import Producer
    from kafka import KafkaConsumer
    nodes = cluster(3)
    wait_for(lambda: leader_view(nodes), "a leader")
    admin = AdminClient({"bootstrap.servers": nodes[0].bootstrap})
    for f in admin.create_topics([NewTopic("spread", 6, 1)]).values():
        f.result(30)
    md = admin.list_topics("spread", timeout=30).topics["spread"]
    leaders = sorted(p.leader for p in md.partitions.values())
    assert leaders == [1, 1, 2, 2, 3, 3], leaders
    p = Producer({"bootstrap.servers": nodes[1].bootstrap, "acks": "all"})
    for i in range(600):
        p.produce("spread", key=b"k%d" % i, value=b"v%d" % i)
    assert p.flush(60) == 0
    # groups whose __consumer_offsets partitions (hence coordinators) lie on
    # different brokers; each reads every record once and commits there
    coordinators = set()
    for g in ("spread-a", "spread-b", "spread-c", "spread-d"):
        c = KafkaConsumer("spread", group_id=g, bootstrap_servers=nodes[2].bootstrap,
                          auto_offset_reset="earliest", consumer_timeout_ms=6000)
        seen = [m.value for m in c]
        c.commit()
        coordinators.add(c._coordinator.coordinator_id)
        c.close()
        assert sorted(seen) == sorted(b"v%d" % i for i in range(600)), "%s: %d seen" % (g, len(seen))
    assert len(coordinators) >= 2, coordinators
