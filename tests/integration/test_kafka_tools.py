"""Apache Kafka's own command-line tools against Chronik, run from the jars
tools/deps.sh installed (java -cp <kafka-tools.classpath> <tool class>), the
way bin/kafka-*.sh run them: kafka-topics, the console producer and
consumer, kafka-consumer-groups, kafka-configs, the producer and consumer
perf tests, kafka-transactions, kafka-log-dirs, and kafka-dump-log reading
Chronik's own segment files (__consumer_offsets and __transaction_state
records included)."""

import json
import os
import re
from pathlib import Path

import pytest

import compat
import harness

TOOL_TIMEOUT_S = 120
TOPICS = "org.apache.kafka.tools.TopicCommand"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
CONFIGS = "org.apache.kafka.tools.ConfigCommand"
PRODUCER_PERF = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER_PERF = "org.apache.kafka.tools.ConsumerPerformance"
DUMP_LOG = "org.apache.kafka.tools.DumpLogSegments"
LOG_DIRS = "org.apache.kafka.tools.LogDirsCommand"


@pytest.fixture(scope="module")
def classpath():
    return compat.need(compat.TOOLS_CLASSPATH).read_text().strip()


def kafka_tool(classpath, cls, *args, stdin=None, ok=True):
    """Runs one tool; returns its stdout. ok=True requires exit 0 and no Java exception."""
    import subprocess
    r = subprocess.run(["java", "-Xms64m", "-Xmx512m", "-cp", classpath, cls, *map(str, args)],
                       input=stdin, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    err = "\n".join(l for l in r.stderr.splitlines() if not l.startswith("SLF4J"))
    if ok:
        assert r.returncode == 0, "%s %s exited %d\n%s\n%s" % (cls, args, r.returncode, r.stdout[-4000:], err[-4000:])
        assert "Exception" not in err, "%s %s:\n%s" % (cls, args, err[-4000:])
    return r.stdout


def test_kafka_topics(broker, classpath):
    # kafka-topics: create, list, describe, alter (partitions), delete.
    b = broker.bootstrap
    out = kafka_tool(classpath, TOPICS, "--bootstrap-server", b, "--create", "--topic", "tt",
                     "--partitions", 3, "--replication-factor", 1, "--config", "retention.ms=3600000")
    assert "Created topic tt." in out
    assert "tt" in kafka_tool(classpath, TOPICS, "--bootstrap-server", b, "--list").split()
    out = kafka_tool(classpath, TOPICS, "--bootstrap-server", b, "--describe", "--topic", "tt")
    assert "PartitionCount: 3" in out and "retention.ms=3600000" in out
    assert len(re.findall(r"Partition: \d+\s+Leader: %d\s+Replicas: %d\s+Isr: %d" % ((broker.node_id,) * 3), out)) == 3
    kafka_tool(classpath, TOPICS, "--bootstrap-server", b, "--alter", "--topic", "tt", "--partitions", 5)
    out = kafka_tool(classpath, TOPICS, "--bootstrap-server", b, "--describe", "--topic", "tt")
    assert "PartitionCount: 5" in out
    kafka_tool(classpath, TOPICS, "--bootstrap-server", b, "--delete", "--topic", "tt")
    assert "tt" not in kafka_tool(classpath, TOPICS, "--bootstrap-server", b, "--list").split()


def lag_rows(out):
    """{partition: (current, log_end, lag)} from kafka-consumer-groups --describe."""
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 6 and f[2].isdigit():
            rows[int(f[2])] = tuple(int(x) if x.lstrip("-").isdigit() else None for x in f[3:6])
    return rows


def test_console_clients_and_consumer_groups(broker, classpath):
    # Console producer (keys) and consumer (group), then kafka-consumer-groups:
    # list, describe with lag, reset-offsets (earliest, to-offset, shift-by), delete.
    b = broker.bootstrap
    kafka_tool(classpath, TOPICS, "--bootstrap-server", b, "--create", "--topic", "cc", "--partitions", 1)
    lines = "".join("k%d:v%d\n" % (i, i) for i in range(30))
    kafka_tool(classpath, CONSOLE_PRODUCER, "--bootstrap-server", b, "--topic", "cc",
               "--reader-property", "parse.key=true", "--reader-property", "key.separator=:", stdin=lines)
    out = kafka_tool(classpath, CONSOLE_CONSUMER, "--bootstrap-server", b, "--topic", "cc", "--group", "cg",
                     "--from-beginning", "--max-messages", 20, "--formatter-property", "print.key=true",
                     "--formatter-property", "key.separator=:")
    assert out.splitlines()[:20] == ["k%d:v%d" % (i, i) for i in range(20)]

    assert "cg" in kafka_tool(classpath, GROUPS, "--bootstrap-server", b, "--list").split()
    out = kafka_tool(classpath, GROUPS, "--bootstrap-server", b, "--list", "--type", "classic")
    assert re.search(r"^cg\s+Classic\s*$", out, re.M), out
    out = kafka_tool(classpath, GROUPS, "--bootstrap-server", b, "--describe", "--group", "cg", "--state")
    assert re.search(r"^cg\s+127\.0\.0\.1:%d\s+\(%d\)\s+\S+\s+Empty\s+0\s*$" % (broker.port, broker.node_id), out, re.M), out
    rows = lag_rows(kafka_tool(classpath, GROUPS, "--bootstrap-server", b, "--describe", "--group", "cg"))
    assert rows == {0: (20, 30, 10)}, rows

    def reset(*how):
        kafka_tool(classpath, GROUPS, "--bootstrap-server", b, "--reset-offsets", "--group", "cg",
                   "--topic", "cc", *how, "--execute")
        return lag_rows(kafka_tool(classpath, GROUPS, "--bootstrap-server", b, "--describe", "--group", "cg"))

    assert reset("--to-earliest") == {0: (0, 30, 30)}
    assert reset("--to-offset", 25) == {0: (25, 30, 5)}
    assert reset("--shift-by", -5) == {0: (20, 30, 10)}
    assert reset("--to-latest") == {0: (30, 30, 0)}
    out = kafka_tool(classpath, GROUPS, "--bootstrap-server", b, "--delete", "--group", "cg")
    assert "successful" in out
    assert "cg" not in kafka_tool(classpath, GROUPS, "--bootstrap-server", b, "--list").split()


def test_kafka_configs(broker, classpath):
    # kafka-configs: alter (add, delete) and describe topic configs; describe broker configs.
    b = broker.bootstrap
    kafka_tool(classpath, TOPICS, "--bootstrap-server", b, "--create", "--topic", "cfg", "--partitions", 1)
    topic = ("--bootstrap-server", b, "--entity-type", "topics", "--entity-name", "cfg")
    kafka_tool(classpath, CONFIGS, *topic, "--alter", "--add-config", "retention.ms=60000,cleanup.policy=[delete,compact]")
    out = kafka_tool(classpath, CONFIGS, *topic, "--describe")
    assert "retention.ms=60000" in out and "cleanup.policy=delete,compact" in out
    kafka_tool(classpath, CONFIGS, *topic, "--alter", "--delete-config", "retention.ms")
    out = kafka_tool(classpath, CONFIGS, *topic, "--describe")
    assert "retention.ms" not in out and "cleanup.policy=delete,compact" in out
    out = kafka_tool(classpath, CONFIGS, "--bootstrap-server", b, "--entity-type", "brokers",
                     "--entity-name", broker.node_id, "--describe", "--all")
    assert re.search(r"^\s*message\.max\.bytes=1048588 ", out, re.M), out[:2000]
    assert "log.segment.bytes=" in out


def test_perf_tools(broker, classpath):
    # kafka-producer-perf-test (acks=all) and kafka-consumer-perf-test read every record back.
    b = broker.bootstrap
    n = 20000
    out = kafka_tool(classpath, PRODUCER_PERF, "--topic", "perf", "--num-records", n, "--record-size", 100,
                     "--throughput", -1, "--bootstrap-server", b, "--command-property", "acks=all")
    assert re.search(r"^%d records sent" % n, out, re.M), out
    out = kafka_tool(classpath, CONSUMER_PERF, "--bootstrap-server", b, "--topic", "perf",
                     "--num-records", n, "--timeout", 30000)
    values = out.strip().splitlines()[-1].split(", ")
    assert int(values[4]) == n, out


def dump(classpath, *files, extra=()):
    return kafka_tool(classpath, DUMP_LOG, *extra, "--files", ",".join(map(str, files)))


def test_dump_log_reads_chronik_segments(broker_factory, classpath):
    # kafka-dump-log reads every segment, index and time index Chronik wrote
    # (several rolled segments, compressed and plain batches, idempotent
    # producer state), the metadata log and __consumer_offsets, without error.
    b = broker_factory(name="dump", settings={"log.segment.bytes": 65536})
    for codec in ("none", "gzip", "zstd"):
        kafka_tool(classpath, PRODUCER_PERF, "--topic", "dl", "--num-records", 2000, "--record-size", 100,
                   "--throughput", -1, "--bootstrap-server", b.bootstrap,
                   "--command-property", "compression.type=%s" % codec)
    kafka_tool(classpath, CONSOLE_CONSUMER, "--bootstrap-server", b.bootstrap, "--topic", "dl", "--group", "dlg",
               "--from-beginning", "--max-messages", 10)
    part = b.data_dir / "dl-0"
    rolled = sorted(part.glob("*.log"))[:-1]  # live: rolled segments end at their last batch
    assert rolled and "isvalid: false" not in dump(classpath, *rolled)
    kafka_tool(classpath, TOPICS, "--bootstrap-server", b.bootstrap, "--create", "--topic", "np",
               "--partitions", 1, "--config", "preallocate=false")
    kafka_tool(classpath, CONSOLE_PRODUCER, "--bootstrap-server", b.bootstrap, "--topic", "np",
               stdin="".join("%d\n" % i for i in range(50)))
    out = dump(classpath, *sorted((b.data_dir / "np-0").glob("*.log")))  # live, active, not preallocated
    assert sum(int(m) for m in re.findall(r" count: (\d+)", out)) == 50, out
    b.stop()  # a preallocated active segment keeps its zeros until the log is closed
    logs = sorted(part.glob("*.log"))
    assert len(logs) > 3, "expected several rolled segments, got %s" % logs
    out = dump(classpath, *logs, extra=("--deep-iteration",))
    assert "isvalid: false" not in out
    counts = [int(m) for m in re.findall(r"^baseOffset: \d+ lastOffset: \d+ count: (\d+)", out, re.M)]
    assert sum(counts) == 6000
    assert len(re.findall(r"^\| offset: \d+", out, re.M)) == 6000
    assert {"none", "gzip", "zstd"} <= set(re.findall(r"compresscodec: (\w+)", out))

    indexes = sorted(part.glob("*.index")) + sorted(part.glob("*.timeindex"))
    assert len(indexes) == 2 * len(logs)
    out = dump(classpath, *indexes, extra=("--index-sanity-check",))
    assert "is corrupt" not in out and "Exception" not in out
    out = dump(classpath, *indexes, extra=("--verify-index-only",))
    assert "Mismatches" not in out and "mismatch" not in out.lower(), out[:3000]

    meta = sorted((b.data_dir / "__cluster_metadata-0").glob("*.log"))
    out = dump(classpath, *meta)  # the batches; their records: test_dump_log_decodes_metadata_log
    assert "isvalid: true" in out and "isvalid: false" not in out

    offsets = sorted(b.data_dir.glob("__consumer_offsets-*/*.log"))
    out = dump(classpath, *offsets, extra=("--offsets-decoder",))
    assert '"group":"dlg"' in out, out[:3000]


@pytest.mark.skip(reason="known gap: a controller round is one Kafka record holding several metadata "
                  "records, which kafka-dump-log --cluster-metadata-decoder cannot read (docs/COMPATIBILITY.md)")
def test_dump_log_decodes_metadata_log(broker_factory, classpath):
    # kafka-dump-log --cluster-metadata-decoder reads every record of Chronik's metadata log.
    b = broker_factory(name="meta")
    kafka_tool(classpath, TOPICS, "--bootstrap-server", b.bootstrap, "--create", "--topic", "mt", "--partitions", 2)
    b.stop()
    out = dump(classpath, *sorted((b.data_dir / "__cluster_metadata-0").glob("*.log")),
               extra=("--cluster-metadata-decoder",))
    assert '"type":"TOPIC_RECORD"' in out and '"name":"mt"' in out and "skipping" not in out, out[-3000:]


def test_kafka_metadata_quorum(broker, classpath):
    # kafka-metadata-quorum describes the leader and the voters (DescribeQuorum on the client listener).
    out = kafka_tool(classpath, "org.apache.kafka.tools.MetadataQuorumCommand",
                     "--bootstrap-server", broker.bootstrap, "describe", "--status")
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert fields["LeaderId"].strip() == str(broker.node_id), out
    assert fields["CurrentVoters"].strip().startswith("[{\"id\": %d" % broker.node_id) or \
        str(broker.node_id) in fields["CurrentVoters"], out


def test_kafka_log_dirs(broker, classpath):
    # kafka-log-dirs (DescribeLogDirs): the broker's one log directory as an
    # absolute path, each partition's size on disk (the one written to is
    # larger than the empty one), no lag, no future logs.
    b = broker.bootstrap
    kafka_tool(classpath, TOPICS, "--bootstrap-server", b, "--create", "--topic", "ld",
               "--partitions", 2, "--replication-factor", 1)
    kafka_tool(classpath, CONSOLE_PRODUCER, "--bootstrap-server", b, "--topic", "ld",
               "--property", "parse.key=true", "--property", "key.separator=:",
               stdin="".join("k:%s\n" % ("v" * 100) for _ in range(50)))
    out = kafka_tool(classpath, LOG_DIRS, "--bootstrap-server", b, "--describe", "--topic-list", "ld")
    doc = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    [br] = doc["brokers"]
    assert br["broker"] == broker.node_id
    [d] = br["logDirs"]
    assert d["error"] is None and d["logDir"] == os.path.realpath(broker.data_dir)
    parts = {p["partition"]: p for p in d["partitions"]}
    assert set(parts) == {"ld-0", "ld-1"}
    assert all(p["offsetLag"] == 0 and p["isFuture"] is False for p in parts.values())
    sizes = sorted(p["size"] for p in parts.values())
    assert sizes[1] > 50 * 100 and sizes[0] < sizes[1], parts  # one key: one partition holds it all
    # every topic when none is named: the internal ones too once they exist
    out = kafka_tool(classpath, LOG_DIRS, "--bootstrap-server", b, "--describe")
    doc = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    assert {"ld-0", "ld-1"} <= {p["partition"] for p in doc["brokers"][0]["logDirs"][0]["partitions"]}


def test_dump_log_reads_chronik_transactions(broker, classpath):
    # kafka-dump-log reads Chronik's transaction markers and its .txnindex files
    # (Kafka's format): the aborted transaction's producer, first and last offsets.
    import kwire
    from test_transactions import write_mixed
    with kwire.Conn.to(broker.bootstrap) as conn:
        end, _ = write_mixed(conn, "dltx")
    broker.stop()
    part = broker.data_dir / "dltx-0"
    out = dump(classpath, *sorted(part.glob("*.log")), extra=("--deep-iteration",))
    assert "isvalid: false" not in out
    assert "endTxnMarker: ABORT" in out and "endTxnMarker: COMMIT" in out, out[:3000]
    out = dump(classpath, *sorted(part.glob("*.txnindex")))
    entries = re.findall(r"producerId: (\d+) firstOffset: (\d+) lastOffset: (\d+) lastStableOffset: (\d+)", out)
    # a1-a2 at 0-1, p1 at 2, b1 at 3 (B still open when A aborts: the entry's LSO), ABORT at end - 2
    assert [(int(f), int(la), int(s)) for _, f, la, s in entries] == [(0, end - 2, 3)], out[:3000]


def test_kafka_transactions_and_transaction_log(broker_factory, classpath):
    # kafka-transactions list and describe show a transaction Chronik coordinates, and
    # kafka-dump-log --transaction-log-decoder reads the records of __transaction_state.
    from test_groups import find_coordinator_v4
    from test_idempotence import init_producer_id
    from test_txn_coordinator import add_partitions_v3
    import kwire
    b = broker_factory(name="txtool")
    kafka_tool(classpath, TOPICS, "--bootstrap-server", b.bootstrap, "--create", "--topic", "txtool", "--partitions", 2)
    with kwire.Conn.to(b.bootstrap) as c:
        harness.wait_until(lambda: find_coordinator_v4(c, 1, ["tool-tx"])[0]["error"] == 0, "the coordinator")
        err, pid, epoch = init_producer_id(c, version=4, txn_id="tool-tx")
        assert err == 0
        assert add_partitions_v3(c, "tool-tx", pid, epoch, {"txtool": [0, 1]}) == {("txtool", 0): 0, ("txtool", 1): 0}
    tool = "org.apache.kafka.tools.TransactionsCommand"
    out = kafka_tool(classpath, tool, "--bootstrap-server", b.bootstrap, "list")
    assert re.search(r"^tool-tx\s+%d\s+%d\s+Ongoing" % (b.node_id, pid), out, re.M), out
    out = kafka_tool(classpath, tool, "--bootstrap-server", b.bootstrap, "describe", "--transactional-id", "tool-tx")
    assert "Ongoing" in out and "txtool-0" in out and "txtool-1" in out and str(pid) in out, out
    b.stop()
    logs = [f for f in sorted(b.data_dir.glob("__transaction_state-*/*.log")) if f.stat().st_size > 0]
    out = dump(classpath, *logs, extra=("--transaction-log-decoder",))
    assert '"transactionalId":"tool-tx"' in out and '"transactionStatus":"Empty"' in out, out[:3000]
    assert '"transactionStatus":"Ongoing","transactionPartitions":[{"topic":"txtool","partitionIds":[0,1]}]' in out
    assert '"producerId":%d' % pid in out and "isvalid: false" not in out, out[:3000]
