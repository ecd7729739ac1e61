"""The broker's front door: ApiVersions and Metadata as real clients see them,
and bad input that must cost only the offending connection."""

import json
import struct

import kafka
import pytest
from kafka import KafkaAdminClient

import harness
import kwire

NODE_ID = 1                 # harness.Broker's default --node-id
CLIENT_TIMEOUT_S = 30.0     # a whole client run (connect + requests)
CLOSE_DEADLINE_S = 5.0      # a bad connection must be closed within this
KAFKA_PYTHON_PROBE_MS = 10000

# What the broker promises in ApiVersions (api key -> (min, max)).
API_VERSIONS_RANGE = (0, 3)
METADATA_RANGE = (0, 12)


# ---- real clients ---------------------------------------------------------

# kcat (librdkafka) lists this node, under its configured node id, as the cluster's only broker.
@pytest.mark.parametrize("node_id", [NODE_ID, 7])
def test_kcat_lists_the_broker(broker_factory, kcat, node_id):
    broker = broker_factory(node_id=node_id)
    r = harness.run_tool([kcat, "-L", "-b", broker.bootstrap, "-m", "15"], timeout_s=CLIENT_TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    assert " 1 brokers:" in r.stdout, r.stdout
    assert "broker %d at %s" % (node_id, broker.bootstrap) in r.stdout, r.stdout
    assert " 0 topics:" in r.stdout, r.stdout


# kafka-python infers a broker of at least Kafka 2.0 from our ApiVersions v0 table.
@pytest.mark.pyclients
def test_kafka_python_infers_version_2_or_later(broker):
    try:
        from kafka import KafkaClient
    except ImportError:  # kafka-python 3 replaced its network client
        from kafka.net.compat import KafkaNetClient
        client = KafkaNetClient(bootstrap_servers=broker.bootstrap, client_id="chronik-it-kafka-python")
        try:
            inferred = probed = client.check_version(timeout_ms=KAFKA_PYTHON_PROBE_MS)
        finally:
            client.close()
    else:
        client = KafkaClient(bootstrap_servers=broker.bootstrap, api_version=None,
                             api_version_auto_timeout_ms=KAFKA_PYTHON_PROBE_MS,
                             client_id="chronik-it-kafka-python")
        try:
            inferred = client.config["api_version"]
            probed = client.check_version(timeout=KAFKA_PYTHON_PROBE_MS / 1000)
        finally:
            client.close()
    # kafka-python 2.0.2 reads (2,0) from Fetch v8, (2,1) Fetch v10, (2,3) Fetch v11,
    # (2,4) Produce v8, (2,5) DescribeAcls v2; (1,0) only from Metadata v5.
    assert inferred >= (2, 0, 0), "inferred %s: none of those in ApiVersions" % (inferred,)
    assert probed >= (2, 0, 0), probed


# kafka-python's admin client finds this node as broker and controller.
@pytest.mark.pyclients
def test_kafka_python_admin_describes_cluster(broker):
    probe = {"api_version_auto_timeout_ms": KAFKA_PYTHON_PROBE_MS} if kafka.__version__.startswith("2.") else {}
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, api_version=None,
                             client_id="chronik-it-kafka-python-admin", **probe)
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    # kafka-python 2 reads Metadata (node_id), 3 reads DescribeCluster (broker_id).
    assert [(b.get("node_id", b.get("broker_id")), b["host"], b["port"]) for b in cluster["brokers"]] == \
        [(NODE_ID, "127.0.0.1", broker.port)]
    assert cluster["controller_id"] == NODE_ID


# kafkajs 2.2.4 connects and describes a one-broker cluster with this node as controller.
def test_kafkajs_describes_cluster(broker):
    script = harness.REPO / "tests" / "integration" / "kafkajs_connect.js"
    r = harness.run_tool(["node", str(script), broker.bootstrap], timeout_s=CLIENT_TIMEOUT_S,
                         cwd=script.parent)
    assert r.returncode == 0, r.stderr
    cluster = json.loads(r.stdout)
    assert cluster["brokers"] == [{"nodeId": NODE_ID, "host": "127.0.0.1", "port": broker.port}]
    assert cluster["controller"] == NODE_ID


# ---- ApiVersions and Metadata on the wire -------------------------------------

# Every ApiVersions version 0-3 answers with the same table, in exactly its version's layout.
@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_api_versions_each_version(broker, version):
    with kwire.Conn.to(broker.bootstrap) as c:
        r = kwire.api_versions(c, version)
    assert r["error_code"] == kwire.ERR_NONE
    assert r["apis"][kwire.API_API_VERSIONS] == API_VERSIONS_RANGE
    assert r["apis"][kwire.API_METADATA] == METADATA_RANGE
    assert all(lo <= hi for lo, hi in r["apis"].values()), r["apis"]
    assert r["throttle_time_ms"] == (None if version == 0 else 0)
    assert r["trailing"] == 0


# ApiVersions v3 carrying client software name and version is answered in flexible form.
def test_api_versions_v3_with_client_software(broker):
    body = kwire.api_versions_body(3, "chronik-it", "1.2.3-rc.1")
    with kwire.Conn.to(broker.bootstrap) as c:
        corr, resp = c.request(kwire.API_API_VERSIONS, 3, body, correlation_id=0x5eed)
    assert corr == 0x5eed
    r = kwire.parse_api_versions(resp, 3)
    assert r["error_code"] == kwire.ERR_NONE
    assert r["apis"][kwire.API_API_VERSIONS] == API_VERSIONS_RANGE
    assert r["trailing"] == 0


# An ApiVersions version above ours gets error 35 and a v0 body (header v0) listing
# our APIs, and the connection stays open for the client's retry at a lower version.
@pytest.mark.parametrize("version", [4, 99])
def test_api_versions_unknown_version_answered_as_v0(broker, version):
    body = kwire.api_versions_body(3, "chronik-it", "9.9")
    with kwire.Conn.to(broker.bootstrap) as c:
        corr, resp = c.request(kwire.API_API_VERSIONS, version, body, correlation_id=77)
        assert corr == 77
        r = kwire.parse_api_versions(resp, 0)
        assert r["error_code"] == kwire.ERR_UNSUPPORTED_VERSION
        assert r["apis"][kwire.API_API_VERSIONS] == API_VERSIONS_RANGE
        assert r["trailing"] == 0
        again = kwire.api_versions(c, 0)
        assert again["error_code"] == kwire.ERR_NONE
        assert again["apis"] == r["apis"]


OUT_OF_RANGE_METADATA = [METADATA_RANGE[1] + 1, 0x7FFF]


def _out_of_range_metadata(conn, version, correlation_id):
    hdr = kwire.request_header(kwire.API_METADATA, version, correlation_id, "chronik-it")
    conn.send_frame(hdr + kwire.Writer().uvarint(1).tags().bytes())  # no topics, no tags
    return conn.recv_frame()


# Another API at a version outside its range is answered under the same correlation
# id, and the connection stays usable.
@pytest.mark.parametrize("version", OUT_OF_RANGE_METADATA)
def test_out_of_range_version_answered_with_correlation_id(broker, version):
    with kwire.Conn.to(broker.bootstrap) as c:
        resp = _out_of_range_metadata(c, version, 4242)
        assert struct.unpack(">i", resp[:4])[0] == 4242
        assert kwire.api_versions(c, 0)["error_code"] == kwire.ERR_NONE


# An API whose response has a top-level ErrorCode carries UNSUPPORTED_VERSION (35)
# there when asked at a version outside its range (DescribeCluster: v0-v1 supported).
# (A Metadata response has no such field: it can only keep the correlation id.)
API_DESCRIBE_CLUSTER = 60


@pytest.mark.parametrize("version", [2, 0x7FFF])
def test_out_of_range_version_reports_unsupported_version(broker, version):
    with kwire.Conn.to(broker.bootstrap) as c:
        hdr = kwire.request_header(API_DESCRIBE_CLUSTER, version, 4343, "chronik-it")
        c.send_frame(hdr + kwire.Writer().i8(0).tags().bytes())
        resp = c.recv_frame()
        assert struct.unpack(">i", resp[:4])[0] == 4343
        # response header v1: correlation id, tagged fields; body: ThrottleTimeMs, ErrorCode
        assert resp[4] == 0, "expected an empty tagged-field section: %s" % resp.hex()
        throttle, err = struct.unpack(">ih", resp[5:11])
        assert err == kwire.ERR_UNSUPPORTED_VERSION, "response: %s" % resp.hex()
        assert kwire.api_versions(c, 0)["error_code"] == kwire.ERR_NONE


# Metadata v1 lists this node as the only broker and controller, and no topics yet.
def test_metadata_v1_lists_only_this_node(broker):
    with kwire.Conn.to(broker.bootstrap) as c:
        md = kwire.metadata_v1(c)
    assert md["brokers"] == [{"node_id": NODE_ID, "host": "127.0.0.1", "port": broker.port, "rack": None}]
    assert md["controller_id"] == NODE_ID
    assert md["topics"] == []
    assert md["trailing"] == 0


# ---- bad input ---------------------------------------------------------------
# Each case writes something malformed on its own connection. The broker must
# close that connection (an error response first is allowed) and keep
# answering on others.

def _metadata_v1_huge_array():
    hdr = kwire.request_header(kwire.API_METADATA, 1, 11, "bad")
    return kwire.frame(hdr + kwire.Writer().i32(0x7FFFFFFF).string("t").bytes())


def _metadata_v12_huge_compact_array():
    hdr = kwire.request_header(kwire.API_METADATA, 12, 12, "bad")
    return kwire.frame(hdr + kwire.Writer().uvarint(0x80000000).raw(b"\x00" * 8).bytes())


def _random_frame():
    payload = bytearray(kwire.random_bytes(20240501, 256))
    payload[0:2] = b"\x7a\x5c"  # api key 31324: garbage that names no API
    return kwire.frame(bytes(payload))


def _truncated_frame():
    full = kwire.frame(kwire.request_header(kwire.API_API_VERSIONS, 0, 13, "bad"))
    declared = struct.pack(">i", len(full) - 4 + 100)
    return declared + full[4:]


def _client_id_overrun():
    hdr = kwire.Writer().i16(kwire.API_API_VERSIONS).i16(0).i32(14).i16(30000).raw(b"abc")
    return kwire.frame(hdr.bytes())


BAD_INPUTS = {
    # name: (bytes to send, then half-close our side?)
    "random_frame": (_random_frame(), False),
    "random_stream_then_eof": (kwire.random_bytes(7, 4096), True),
    "truncated_frame_then_eof": (_truncated_frame(), True),
    "length_2_31_minus_1": (struct.pack(">i", 0x7FFFFFFF) + b"\x00\x12\x00\x00", False),
    "length_minus_1": (struct.pack(">i", -1) + b"\x00" * 16, False),
    "length_int32_min": (struct.pack(">i", -0x80000000) + b"\x00" * 16, False),
    "length_zero": (struct.pack(">i", 0), False),
    "metadata_v1_array_count_2_31_minus_1": (_metadata_v1_huge_array(), False),
    "metadata_v12_compact_array_count_2_31": (_metadata_v12_huge_compact_array(), False),
    "unknown_api_key_9999": (kwire.frame(kwire.request_header(9999, 0, 15, "bad") + b"\x00" * 8), False),
    "client_id_longer_than_frame": (_client_id_overrun(), False),
}


def _assert_serving(conn):
    r = kwire.api_versions(conn, 0)
    assert r["error_code"] == kwire.ERR_NONE
    md = kwire.metadata_v1(conn)
    assert [b["node_id"] for b in md["brokers"]] == [NODE_ID]


# A malformed request closes only its own connection; other connections, open and new, keep being served.
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_closes_only_that_connection(broker, case):
    data, half_close = BAD_INPUTS[case]
    with kwire.Conn.to(broker.bootstrap) as healthy, kwire.Conn.to(broker.bootstrap) as bad:
        _assert_serving(healthy)
        bad.send_bad(data, half_close)
        assert bad.wait_closed(CLOSE_DEADLINE_S), "broker kept the bad connection open (%s)" % case
        assert broker.running()
        _assert_serving(healthy)
    with kwire.Conn.to(broker.bootstrap) as fresh:
        _assert_serving(fresh)


# Every kind of bad input in a row, interleaved with good requests, leaves one broker serving.
def test_bad_inputs_in_sequence_leave_broker_serving(broker):
    with kwire.Conn.to(broker.bootstrap) as healthy:
        for case in sorted(BAD_INPUTS):
            data, half_close = BAD_INPUTS[case]
            with kwire.Conn.to(broker.bootstrap) as bad:
                bad.send_bad(data, half_close)
                assert bad.wait_closed(CLOSE_DEADLINE_S), case
            _assert_serving(healthy)
