"""The Kafka-protocol subcommands of the chronik binary (topic, group, produce,
consume, completion) against a real broker: every subcommand's JSON output is
checked against what confluent-kafka's AdminClient, Producer and Consumer see,
and the error paths keep their promise (one line on stderr; exit 1 when the
broker refuses, 2 for usage or an unreachable broker)."""

import json
import os
import pty
import socket
import subprocess

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource

import harness
from test_cluster import cluster  # noqa: F401  (the fixture)

CLI_TIMEOUT_S = 30.0
CLIENT_TIMEOUT_S = 15.0
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

pytestmark = [pytest.mark.skipif(harness.TARGET != "chronik", reason="subcommands of the chronik binary"),
              pytest.mark.pyclients]


def chronik(broker, *args, stdin=None):
    """Runs `chronik ARGS --bootstrap BROKER`; checks no sanitizer finding."""
    cmd = [str(harness.CHRONIK_BIN)] + list(args)
    if broker is not None:
        cmd += ["--bootstrap", broker.bootstrap]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, input=stdin,
                       stdin=None if stdin is not None else subprocess.DEVNULL,
                       env=dict(os.environ, **harness.SANITIZER_ENV))
    assert not [m for m in harness.SANITIZER_MARKERS if m in r.stderr], r.stderr
    return r


def ok_json(broker, *args, stdin=None):
    r = chronik(broker, *args, "--json", stdin=stdin)
    assert r.returncode == EXIT_OK, r.stderr
    return json.loads(r.stdout)


def one_line_error(r, code, text):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chronik: ") and text in lines[0], r.stderr


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def committed(broker, group, topic, partitions):
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=CLIENT_TIMEOUT_S)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def progress_on_terminal(broker, *args):
    """What `chronik ARGS` writes to stderr when stderr is a terminal."""
    master, slave = pty.openpty()
    try:
        r = subprocess.run([str(harness.CHRONIK_BIN)] + list(args) + ["--bootstrap", broker.bootstrap],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                           timeout=CLI_TIMEOUT_S, env=dict(os.environ, **harness.SANITIZER_ENV))
        assert r.returncode == EXIT_OK
        os.set_blocking(master, False)
        try:
            return os.read(master, 1 << 16).decode(errors="replace")
        except BlockingIOError:
            return ""
    finally:
        os.close(master)
        os.close(slave)


def produce_values(broker, topic, values, partition=0):
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for v in values:
        p.produce(topic, value=v.encode(), partition=partition)
    assert p.flush(CLIENT_TIMEOUT_S) == 0


# topic create/list/describe/alter/delete: each answer matches what AdminClient sees; refusals exit 1 with one line.
def test_topic_commands(broker_factory):
    broker = broker_factory()
    created = ok_json(broker, "topic", "create", "cli-t", "-p", "3", "-c", "retention.ms=123456")
    assert created == {"topic": "cli-t", "partitions": 3, "replication_factor": 1}
    one_line_error(chronik(broker, "topic", "create", "cli-t"), EXIT_FAILED, "topic 'cli-t' already exists")

    listed = {t["name"]: t for t in ok_json(broker, "topic", "list")}
    ac = admin(broker)  # kept: a collected AdminClient fails its pending futures
    md = ac.list_topics(timeout=CLIENT_TIMEOUT_S)
    assert listed["cli-t"]["partitions"] == len(md.topics["cli-t"].partitions) == 3

    produce_values(broker, "cli-t", ["a", "b", "c", "d"], partition=1)
    d = ok_json(broker, "topic", "describe", "cli-t")
    parts = {p["partition"]: p for p in d["partitions"]}
    for pid, pm in md.topics["cli-t"].partitions.items():
        assert parts[pid]["leader"] == pm.leader and parts[pid]["replicas"] == pm.replicas
        assert parts[pid]["isr"] == pm.isrs
    assert [parts[p]["log_end_offset"] for p in range(3)] == [0, 4, 0]
    assert all(parts[p]["log_start_offset"] == 0 for p in range(3))
    cfgs = {c["name"]: c for c in d["configs"]}
    res = ConfigResource(ConfigResource.Type.TOPIC, "cli-t")
    seen = ac.describe_configs([res])[res].result(timeout=CLIENT_TIMEOUT_S)
    assert cfgs["retention.ms"]["value"] == "123456" == seen["retention.ms"].value
    assert cfgs["retention.ms"]["source"] == "DYNAMIC_TOPIC_CONFIG" == ConfigSource(seen["retention.ms"].source).name
    assert cfgs["cleanup.policy"]["source"] == ConfigSource(seen["cleanup.policy"].source).name

    assert ok_json(broker, "topic", "alter", "cli-t", "-c", "retention.ms=999")["set"] == 1
    seen = ac.describe_configs([res])[res].result(timeout=CLIENT_TIMEOUT_S)
    assert seen["retention.ms"].value == "999"
    human = chronik(broker, "topic", "describe", "cli-t")
    assert human.returncode == EXIT_OK and "PARTITION" in human.stdout and "retention.ms" in human.stdout

    assert ok_json(broker, "topic", "delete", "cli-t") == {"topic": "cli-t", "deleted": True}
    harness.wait_until(lambda: "cli-t" not in ac.list_topics(timeout=CLIENT_TIMEOUT_S).topics,
                       "the deleted topic to vanish", deadline_s=CLIENT_TIMEOUT_S)
    one_line_error(chronik(broker, "topic", "describe", "cli-t"), EXIT_FAILED, "unknown topic 'cli-t'")
    one_line_error(chronik(broker, "topic", "delete", "nope"), EXIT_FAILED, "unknown topic 'nope'")


# group describe/list/reset-offsets/delete against a live confluent-kafka consumer and after it left.
def test_group_commands(broker_factory):
    broker = broker_factory()
    ok_json(broker, "topic", "create", "cli-g", "-p", "2")
    produce_values(broker, "cli-g", ["v%d" % i for i in range(6)], partition=0)
    produce_values(broker, "cli-g", ["w%d" % i for i in range(4)], partition=1)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "cg", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    try:
        c.subscribe(["cli-g"])
        got = []
        harness.wait_until(lambda: got.extend(m for m in c.consume(10, timeout=0.5) if not m.error())
                           or len(got) >= 10, "the consumer to read all 10 records", deadline_s=CLIENT_TIMEOUT_S)
        c.commit(offsets=[TopicPartition("cli-g", 0, 2), TopicPartition("cli-g", 1, 4)], asynchronous=False)

        d = ok_json(broker, "group", "describe", "cg")
        assert d["state"] == "Stable" and d["protocol_type"] == "consumer" and len(d["members"]) == 1
        assigned = {p for a in d["members"][0]["assignment"] for p in a["partitions"]}
        assert assigned == {0, 1}
        rows = {o["partition"]: o for o in d["offsets"]}
        assert (rows[0]["committed_offset"], rows[0]["log_end_offset"], rows[0]["lag"]) == (2, 6, 4)
        assert (rows[1]["committed_offset"], rows[1]["log_end_offset"], rows[1]["lag"]) == (4, 4, 0)
        assert any(g["group"] == "cg" for g in ok_json(broker, "group", "list"))

        r = chronik(broker, "group", "reset-offsets", "cg", "--topic", "cli-g", "--to-earliest")
        one_line_error(r, EXIT_FAILED, "active member")
        one_line_error(chronik(broker, "group", "delete", "cg"), EXIT_FAILED, "not empty")
        one_line_error(chronik(broker, "consume", "cli-g", "-g", "cg", "-n", "1"), EXIT_FAILED, "active member")
    finally:
        c.close()
    assert committed(broker, "cg", "cli-g", 2) == {0: 2, 1: 4}

    plan = ok_json(broker, "group", "reset-offsets", "cg", "--topic", "cli-g", "--to-earliest", "--dry-run")
    assert plan["dry_run"] and {p["partition"]: p["new_offset"] for p in plan["partitions"]} == {0: 0, 1: 0}
    assert committed(broker, "cg", "cli-g", 2) == {0: 2, 1: 4}, "a dry run committed"

    done = ok_json(broker, "group", "reset-offsets", "cg", "--topic", "cli-g", "--to-offset", "5")
    assert {p["partition"]: (p["old_offset"], p["new_offset"]) for p in done["partitions"]} == {0: (2, 5), 1: (4, 4)}
    assert committed(broker, "cg", "cli-g", 2) == {0: 5, 1: 4}
    ok_json(broker, "group", "reset-offsets", "cg", "--topic", "cli-g", "--to-datetime", "2000-01-01T00:00:00Z")
    assert committed(broker, "cg", "cli-g", 2) == {0: 0, 1: 0}
    ok_json(broker, "group", "reset-offsets", "cg", "--topic", "cli-g", "--to-latest")
    assert committed(broker, "cg", "cli-g", 2) == {0: 6, 1: 4}

    assert ok_json(broker, "group", "delete", "cg") == {"group": "cg", "deleted": True}
    one_line_error(chronik(broker, "group", "describe", "cg"), EXIT_FAILED, "unknown group 'cg'")
    r = chronik(broker, "group", "reset-offsets", "cg", "--topic", "nope", "--to-latest")
    one_line_error(r, EXIT_FAILED, "unknown topic 'nope'")


# produce (stdin and -f, key, headers) and consume (--json, --format, -g) round-trip with confluent-kafka.
def test_produce_consume(broker_factory, tmp_path):
    broker = broker_factory()
    ok_json(broker, "topic", "create", "cli-d", "-p", "2")
    r = ok_json(broker, "produce", "cli-d", "-k", "key1", "-H", "h=1", "-p", "1", stdin="one\ntwo\nthree\n")
    assert r["records"] == 3
    big = tmp_path / "lines.txt"
    big.write_text("".join("line-%05d\n" % i for i in range(3000)))
    r = chronik(broker, "produce", "cli-d", "-p", "0", "-f", str(big))
    assert r.returncode == EXIT_OK and r.stderr == "", r.stderr  # no progress when stderr is not a terminal

    assert "records/s" in progress_on_terminal(broker, "produce", "cli-d", "-p", "0", "-f", str(big))
    assert "records/s" in progress_on_terminal(broker, "consume", "cli-d", "--from-beginning", "-n", "10")

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "seer", "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition("cli-d", 1, 0)])
        msgs = []
        harness.wait_until(lambda: msgs.extend(m for m in c.consume(3, timeout=0.5) if not m.error())
                           or len(msgs) >= 3, "the three keyed records", deadline_s=CLIENT_TIMEOUT_S)
        assert [(m.key(), m.value(), m.headers()) for m in msgs] == \
            [(b"key1", v, [("h", b"1")]) for v in (b"one", b"two", b"three")]
    finally:
        c.close()

    recs = [json.loads(line) for line in chronik(broker, "consume", "cli-d", "--from-beginning", "-n", "6003",
                                                    "--json").stdout.splitlines()]
    assert len(recs) == 6003
    p1 = [r for r in recs if r["partition"] == 1]
    assert [(r["key"], r["value"], r["headers"], r["offset"]) for r in p1] == \
        [("key1", v, {"h": "1"}, i) for i, v in enumerate(["one", "two", "three"])]
    assert [r["value"] for r in recs if r["partition"] == 0] == ["line-%05d" % i for i in range(3000)] * 2

    fmt = chronik(broker, "consume", "cli-d", "--from-beginning", "-n", "6003", "--format", "%T/%p/%o:%k=%v;%h\\n")
    assert "cli-d/1/2:key1=three;h=1\n" in fmt.stdout and "cli-d/0/0:=line-00000;\n" in fmt.stdout

    r = chronik(broker, "consume", "cli-d", "-g", "cli-reader", "--from-beginning", "--timeout", "2")
    assert r.returncode == EXIT_OK and len(r.stdout.splitlines()) == 6003, r.stderr
    assert committed(broker, "cli-reader", "cli-d", 2) == {0: 6000, 1: 3}
    r = chronik(broker, "consume", "cli-d", "-g", "cli-reader", "--timeout", "1")
    assert r.returncode == EXIT_OK and r.stdout == "", "the group's commit was not where reading resumed"
    one_line_error(chronik(broker, "consume", "nope", "-n", "1"), EXIT_FAILED, "unknown topic 'nope'")
    one_line_error(chronik(broker, "produce", "nope", stdin="x\n"), EXIT_FAILED, "unknown topic 'nope'")


# consume decodes batches in every codec a producer may choose.
def test_consume_compressed(broker_factory):
    broker = broker_factory()
    ok_json(broker, "topic", "create", "cli-z", "-p", "1")
    codecs = ("gzip", "snappy", "lz4", "zstd")
    for codec in codecs:
        p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 50})
        for i in range(5):
            p.produce("cli-z", key=codec.encode(), value=("%s-%d" % (codec, i)).encode() * 20, partition=0)
        assert p.flush(CLIENT_TIMEOUT_S) == 0
    r = chronik(broker, "consume", "cli-z", "--from-beginning", "-n", "20", "--format", "%o %k %v\\n")
    assert r.returncode == EXIT_OK, r.stderr
    assert r.stdout.splitlines() == ["%d %s %s" % (n * 5 + i, c, ("%s-%d" % (c, i)) * 20)
                                     for n, c in enumerate(codecs) for i in range(5)]


# Unreachable broker, bad usage, --help and completion: exit codes and one-line errors.
def test_usage_and_unreachable():
    down = "127.0.0.1:%d" % harness.free_port()
    for args in (["topic", "list"], ["group", "list"], ["consume", "t", "-n", "1"]):
        r = chronik(None, *args, "--bootstrap", down)
        one_line_error(r, EXIT_USAGE, "cannot reach %s" % down)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        addr = "127.0.0.1:%d" % silent.getsockname()[1]
        r = chronik(None, "topic", "list", "--bootstrap", addr, "--request-timeout", "1")
        one_line_error(r, EXIT_USAGE, "timed out")
    for args in (["topic", "create"], ["topic", "frob"], ["group", "reset-offsets", "g", "--topic", "t"],
                 ["consume", "t", "-n", "zero"], ["topic", "list", "--bootstrap", "nohostport"]):
        assert chronik(None, *args).returncode == EXIT_USAGE, args
    for cmd in (["topic"], ["group"], ["produce"], ["consume"], ["completion"]):
        r = chronik(None, *cmd, "--help")
        assert r.returncode == EXIT_OK and "usage: chronik " + cmd[0] in r.stdout, r.stdout
    assert "Exit status" in chronik(None, "topic", "--help").stdout
    for shell in ("bash", "zsh"):
        r = chronik(None, "completion", shell)
        assert r.returncode == EXIT_OK and "reset-offsets" in r.stdout and "--from-beginning" in r.stdout
    assert chronik(None, "completion", "fish").returncode == EXIT_USAGE


# Against three nodes: partitions led by every node are described, produced to and consumed from their leaders,
# and after a leader is killed, produce and consume find the new leaders.
def test_three_nodes(cluster):
    nodes = cluster(3)
    node = nodes[0]
    ok_json(node, "topic", "create", "cli-c", "-p", "6", "-r", "3")
    d = ok_json(node, "topic", "describe", "cli-c")
    leaders = {p["leader"] for p in d["partitions"]}
    assert len(leaders) > 1, d["partitions"]  # the test means something only with several leaders
    assert all(sorted(p["replicas"]) == [1, 2, 3] for p in d["partitions"])
    for p in range(6):
        lines = "".join("p%d-%d\n" % (p, i) for i in range(20))
        assert ok_json(nodes[p % 3], "produce", "cli-c", "-p", str(p), stdin=lines)["records"] == 20
    d = ok_json(nodes[1], "topic", "describe", "cli-c")
    assert [p["log_end_offset"] for p in sorted(d["partitions"], key=lambda p: p["partition"])] == [20] * 6
    recs = [json.loads(line) for line in chronik(nodes[2], "consume", "cli-c", "-g", "cli-cg", "--from-beginning",
                                                    "-n", "120", "--json").stdout.splitlines()]
    assert sorted((r["partition"], r["offset"]) for r in recs) == [(p, i) for p in range(6) for i in range(20)]
    assert all(r["value"] == "p%d-%d" % (r["partition"], r["offset"]) for r in recs)
    g = ok_json(nodes[1], "group", "describe", "cli-cg")
    assert sorted((o["partition"], o["committed_offset"], o["lag"]) for o in g["offsets"]) == \
        [(p, 20, 0) for p in range(6)]

    victim_id = d["partitions"][0]["leader"]
    nodes[victim_id - 1].kill9()
    survivor = nodes[victim_id % 3]
    assert ok_json(survivor, "produce", "cli-c", "-p", "0", stdin="after\n")["records"] == 1
    recs = [json.loads(line) for line in chronik(survivor, "consume", "cli-c", "--from-beginning", "-n", "121",
                                                    "--json").stdout.splitlines()]
    assert len(recs) == 121 and {"partition": 0, "offset": 20, "value": "after"}.items() <= \
        [r for r in recs if r["offset"] == 20][0].items()
