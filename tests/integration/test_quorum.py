"""The metadata quorum as tools see it: each listener with its own dispatch
table, and DescribeQuorum (what kafka-metadata-quorum and
Admin.describeMetadataQuorum read) on both the client and the controller
listener of a single node."""

import tarfile
import time

import kwire
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from harness import REPO

API_DESCRIBE_QUORUM = 55
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
META_TOPIC = "__cluster_metadata"


def describe_quorum(conn, partitions=(0,), topic=META_TOPIC, version=1):
    body = (kwire.Writer().uvarint(2).compact_string(topic).uvarint(len(partitions) + 1))
    for p in partitions:
        body.i32(p).tags()
    body.tags().tags()
    _, resp = conn.request(API_DESCRIBE_QUORUM, version, body.bytes())
    r = kwire.Reader(resp)
    out = {"error_code": r.i16(), "partitions": []}
    for _ in range(r.uvarint() - 1):
        r.compact_string()
        for _ in range(r.uvarint() - 1):
            part = {"index": r.i32(), "error_code": r.i16(), "leader_id": r.i32(),
                    "leader_epoch": r.i32(), "high_watermark": r.i64(), "voters": [], "observers": []}
            for key in ("voters", "observers"):
                for _ in range(r.uvarint() - 1):
                    rep = {"id": r.i32(), "log_end_offset": r.i64()}
                    if version >= 1:
                        rep["last_fetch_ts"], rep["last_caught_up_ts"] = r.i64(), r.i64()
                    r.tags()
                    part[key].append(rep)
            r.tags()
            out["partitions"].append(part)
        r.tags()
    r.tags()
    assert r.left() == 0
    return out


# The controller listener serves its own table: ApiVersions lists exactly
# the Raft APIs (Fetch, Vote, BeginQuorumEpoch, EndQuorumEpoch,
# FetchSnapshot), BrokerRegistration, BrokerHeartbeat and AlterPartition,
# the changes other nodes forward (CreateTopics, DeleteTopics,
# CreatePartitions, AlterConfigs, IncrementalAlterConfigs, ElectLeaders,
# AlterPartitionReassignments, AllocateProducerIds, CreateAcls, DeleteAcls,
# AlterUserScramCredentials, AlterClientQuotas), ApiVersions, the SASL
# login (SaslHandshake, SaslAuthenticate) and DescribeQuorum there, while the client listener lists every client API
# and DescribeQuorum too.
def test_each_listener_has_its_own_table(broker):
    with kwire.Conn("127.0.0.1", broker.controller_port) as c:
        ctl = kwire.api_versions(c, 3)
    with kwire.Conn.to(broker.bootstrap) as c:
        cli = kwire.api_versions(c, 3)
    assert ctl["error_code"] == 0 and set(ctl["apis"]) == {1, kwire.API_API_VERSIONS, 17, 19, 20, 30, 31, 33, 36, 37,
                                                           43, 44, 45, 49, 51, 52, 53, 54, API_DESCRIBE_QUORUM, 56, 59, 62, 63, 67}
    assert ctl["apis"][1] == (16, 16)  # Fetch: the version the quorum speaks
    assert API_DESCRIBE_QUORUM in cli["apis"] and 0 in cli["apis"] and len(cli["apis"]) > 10


# A single node describes itself as the quorum's leader and only voter, with
# the metadata log's end as high watermark, on either listener; a partition
# other than __cluster_metadata-0 gets UNKNOWN_TOPIC_OR_PARTITION.
def test_describe_quorum_single_node(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic("q1", 3, 1)]).values():
        f.result(30)
    for port in (broker.port, broker.controller_port):
        with kwire.Conn("127.0.0.1", port) as c:
            d = describe_quorum(c, partitions=(0, 1))
        assert d["error_code"] == 0
        p0, p1 = d["partitions"]
        assert p0["error_code"] == 0 and p0["leader_id"] == broker.node_id
        assert p0["high_watermark"] > 0
        assert [v["id"] for v in p0["voters"]] == [broker.node_id] and p0["observers"] == []
        assert p0["voters"][0]["log_end_offset"] == p0["high_watermark"]
        assert p1["error_code"] == ERR_UNKNOWN_TOPIC_OR_PARTITION


# A data directory written before the metadata quorum existed (tests/data/
# legacy-single-node.tar.gz: a topic with a config override and 30 records,
# and a deleted topic) is adopted as it is: the same topics, configs and
# records; the node elects itself and keeps a quorum-state file; new topics
# are created through the quorum and everything survives a restart.
def test_adopts_a_data_directory_from_before_the_quorum(broker_factory, tmp_path):
    with tarfile.open(REPO / "tests" / "data" / "legacy-single-node.tar.gz") as t:
        t.extractall(tmp_path / "legacy")
    b = broker_factory(name="legacy", start=False)
    b.data_dir = tmp_path / "legacy" / "data"
    b.start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})

    def check():
        md = admin.list_topics(timeout=30)
        names = {n for n in md.topics if not n.startswith("__")}
        assert "legacy-a" in names and "legacy-b" not in names, names
        assert len(md.topics["legacy-a"].partitions) == 3
        res = ConfigResource(ConfigResource.Type.TOPIC, "legacy-a")
        cfg = admin.describe_configs([res])[res].result(30)
        assert cfg["retention.ms"].value == "123456789"
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "legacy-check",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.assign([TopicPartition("legacy-a", p, 0) for p in range(3)])
        got, deadline = set(), time.monotonic() + 30
        while len(got) < 30 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.add(m.value())
        c.close()
        assert got == {b"a%d" % i for i in range(30)}

    check()
    state = (b.data_dir / "__cluster_metadata-0" / "quorum-state").read_text()
    assert "epoch 1" in state, state
    for f in admin.create_topics([NewTopic("after-adoption", 2, 1)]).values():
        f.result(30)
    b.restart()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    check()
    assert "after-adoption" in admin.list_topics(timeout=30).topics
    assert "epoch 2" in (b.data_dir / "__cluster_metadata-0" / "quorum-state").read_text()
