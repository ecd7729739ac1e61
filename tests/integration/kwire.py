"""kwire - a tiny raw Kafka protocol client for tests that need exact bytes.

Real clients never send malformed frames, so the bad-input tests and the
golden-vector tools speak the wire format directly with this module:

  frame            = int32 length (big-endian, bytes that follow) + payload
  request payload  = request header + body
  header v1        = int16 api_key, int16 api_version, int32 correlation_id,
                     nullable string client_id (int16 length, -1 = null)
  header v2        = header v1 + tagged fields (uvarint count, 0 here)
  response payload = int32 correlation_id [+ tagged fields when the response
                     header is v1] + body

A request uses header v2 from the API's first flexible version on, v1
before it (ControlledShutdown v0 alone uses v0, without client_id). Every
response uses the header of the same flexibility except ApiVersions, whose
response header is always v0 so that a client can read the error before it
knows which versions the broker speaks.

Only what the tests need is decoded here: ApiVersions v0-v3 and Metadata v1.
"""

import random
import select
import socket
import struct
import time

# Kafka error codes the tests name.
ERR_NONE = 0
ERR_UNSUPPORTED_VERSION = 35
ERR_INVALID_REQUEST = 42

API_PRODUCE = 0
API_METADATA = 3
API_API_VERSIONS = 18

DEFAULT_TIMEOUT_S = 5.0
FRAME_BYTES_MAX = 100 * 1024 * 1024  # refuse to buffer more from a broker

# api_key -> (name, first flexible version or None), from the Kafka schemas.
APIS = {
    0: ('Produce', 9),
    1: ('Fetch', 12),
    2: ('ListOffsets', 6),
    3: ('Metadata', 9),
    4: ('LeaderAndIsr', 4),
    5: ('StopReplica', 2),
    6: ('UpdateMetadata', 6),
    7: ('ControlledShutdown', 3),
    8: ('OffsetCommit', 8),
    9: ('OffsetFetch', 6),
    10: ('FindCoordinator', 3),
    11: ('JoinGroup', 6),
    12: ('Heartbeat', 4),
    13: ('LeaveGroup', 4),
    14: ('SyncGroup', 4),
    15: ('DescribeGroups', 5),
    16: ('ListGroups', 3),
    17: ('SaslHandshake', None),
    18: ('ApiVersions', 3),
    19: ('CreateTopics', 5),
    20: ('DeleteTopics', 4),
    21: ('DeleteRecords', 2),
    22: ('InitProducerId', 2),
    23: ('OffsetForLeaderEpoch', 4),
    24: ('AddPartitionsToTxn', 3),
    25: ('AddOffsetsToTxn', 3),
    26: ('EndTxn', 3),
    27: ('WriteTxnMarkers', 1),
    28: ('TxnOffsetCommit', 3),
    29: ('DescribeAcls', 2),
    30: ('CreateAcls', 2),
    31: ('DeleteAcls', 2),
    32: ('DescribeConfigs', 4),
    33: ('AlterConfigs', 2),
    34: ('AlterReplicaLogDirs', 2),
    35: ('DescribeLogDirs', 2),
    36: ('SaslAuthenticate', 2),
    37: ('CreatePartitions', 2),
    38: ('CreateDelegationToken', 2),
    39: ('RenewDelegationToken', 2),
    40: ('ExpireDelegationToken', 2),
    41: ('DescribeDelegationToken', 2),
    42: ('DeleteGroups', 2),
    43: ('ElectLeaders', 2),
    44: ('IncrementalAlterConfigs', 1),
    45: ('AlterPartitionReassignments', 0),
    46: ('ListPartitionReassignments', 0),
    47: ('OffsetDelete', None),
    48: ('DescribeClientQuotas', 1),
    49: ('AlterClientQuotas', 1),
    50: ('DescribeUserScramCredentials', 0),
    51: ('AlterUserScramCredentials', 0),
    52: ('Vote', 0),
    53: ('BeginQuorumEpoch', None),
    54: ('EndQuorumEpoch', None),
    55: ('DescribeQuorum', 0),
    56: ('AlterPartition', 0),
    57: ('UpdateFeatures', 0),
    58: ('Envelope', 0),
    59: ('FetchSnapshot', 0),
    60: ('DescribeCluster', 0),
    61: ('DescribeProducers', 0),
    62: ('BrokerRegistration', 0),
    63: ('BrokerHeartbeat', 0),
    64: ('UnregisterBroker', 0),
    65: ('DescribeTransactions', 0),
    66: ('ListTransactions', 0),
    67: ('AllocateProducerIds', 0),
    68: ('ConsumerGroupHeartbeat', 0),
    69: ('ConsumerGroupDescribe', 0),
    70: ('ControllerRegistration', 0),
    71: ('GetTelemetrySubscriptions', 0),
    72: ('PushTelemetry', 0),
    73: ('AssignReplicasToDirs', 0),
    74: ('ListClientMetricsResources', 0),
    75: ('DescribeTopicPartitions', 0),
}


class WireError(Exception):
    """A response that does not parse, or a connection that broke."""


def api_name(api_key):
    """The schema name of an API key ("Metadata"), or "Api<key>" if unknown."""
    entry = APIS.get(api_key)
    return entry[0] if entry else "Api%d" % api_key


def is_flexible(api_key, api_version):
    """True when this request version uses compact fields and tagged fields."""
    entry = APIS.get(api_key)
    if entry is None:
        return api_version >= 0x7F  # unknown API: a guess that never matters
    return entry[1] is not None and api_version >= entry[1]


def request_header_version(api_key, api_version):
    if api_key == 7 and api_version == 0:
        return 0
    return 2 if is_flexible(api_key, api_version) else 1


def response_header_version(api_key, api_version):
    if api_key == API_API_VERSIONS:
        return 0
    return 1 if is_flexible(api_key, api_version) else 0


class Writer:
    """Appends Kafka primitive types to a bytearray."""

    def __init__(self):
        self.buf = bytearray()

    def raw(self, b):
        self.buf += b
        return self

    def i8(self, v):
        self.buf += struct.pack(">b", v)
        return self

    def i16(self, v):
        self.buf += struct.pack(">h", v)
        return self

    def i32(self, v):
        self.buf += struct.pack(">i", v)
        return self

    def u32(self, v):
        self.buf += struct.pack(">I", v)
        return self

    def i64(self, v):
        self.buf += struct.pack(">q", v)
        return self

    def uvarint(self, v):
        assert v >= 0
        while v >= 0x80:
            self.buf.append((v & 0x7F) | 0x80)
            v >>= 7
        self.buf.append(v)
        return self

    def string(self, s):
        """Nullable string, int16 length (-1 = null)."""
        if s is None:
            return self.i16(-1)
        b = s.encode() if isinstance(s, str) else s
        return self.i16(len(b)).raw(b)

    def compact_string(self, s):
        """Nullable compact string, uvarint length + 1 (0 = null)."""
        if s is None:
            return self.uvarint(0)
        b = s.encode() if isinstance(s, str) else s
        return self.uvarint(len(b) + 1).raw(b)

    def tags(self):
        """An empty tagged-field section."""
        return self.uvarint(0)

    def bytes(self):
        return bytes(self.buf)


class Reader:
    """Reads Kafka primitive types; any underflow raises WireError."""

    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def left(self):
        return len(self.data) - self.pos

    def take(self, n):
        if n < 0 or self.left() < n:
            raise WireError("need %d bytes at offset %d, have %d" % (n, self.pos, self.left()))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def _unpack(self, fmt, n):
        return struct.unpack(fmt, self.take(n))[0]

    def i8(self):
        return self._unpack(">b", 1)

    def i16(self):
        return self._unpack(">h", 2)

    def i32(self):
        return self._unpack(">i", 4)

    def i64(self):
        return self._unpack(">q", 8)

    def uvarint(self):
        v = shift = 0
        for _ in range(10):
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7
        raise WireError("uvarint longer than 10 bytes at offset %d" % self.pos)

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def compact_string(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def array_len(self):
        n = self.i32()
        return None if n < 0 else n

    def compact_array_len(self):
        n = self.uvarint()
        return None if n == 0 else n - 1

    def tags(self):
        """Skips a tagged-field section; returns {tag: raw bytes}."""
        out = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            out[tag] = self.take(self.uvarint())
        return out


def request_header(api_key, api_version, correlation_id, client_id="kwire", header_version=None):
    """Encodes a request header (v0, v1 or v2)."""
    hv = request_header_version(api_key, api_version) if header_version is None else header_version
    w = Writer().i16(api_key).i16(api_version).i32(correlation_id)
    if hv >= 1:
        w.string(client_id)
    if hv >= 2:
        w.tags()
    return w.bytes()


def frame(payload):
    """Prefixes a payload with its int32 length."""
    return struct.pack(">i", len(payload)) + payload


def parse_request_header(payload):
    """Splits a request frame payload: returns (api_key, api_version, correlation_id)."""
    r = Reader(payload)
    return r.i16(), r.i16(), r.i32()


class Conn:
    """One blocking TCP connection to a broker, with deadlines on every read.
    source: the local address to connect from (e.g. "127.0.0.2"), else the system's choice.
    ssl_context: speak TLS with it (the server must be named "localhost")."""

    def __init__(self, host, port, timeout=DEFAULT_TIMEOUT_S, source=None, ssl_context=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        if ssl_context is not None:
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname="localhost")
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._rx = bytearray()
        self._next_corr = 1

    @classmethod
    def to(cls, bootstrap, timeout=DEFAULT_TIMEOUT_S, source=None):
        host, port = bootstrap.rsplit(":", 1)
        return cls(host, int(port), timeout, source)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, payload):
        self.sock.sendall(frame(payload))

    def shutdown_write(self):
        """Half-closes: the broker reads end-of-stream, we can still read."""
        self.sock.shutdown(socket.SHUT_WR)

    def send_bad(self, data, half_close=False):
        """Sends bytes the broker may refuse midway: a broker that closes (or
        resets) the connection before everything is written is not an error
        here; wait_closed() then observes the close."""
        try:
            self.sock.sendall(data)
            if half_close:
                self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from broker before the deadline")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from broker before the deadline") from None
        if not chunk:
            raise WireError("connection closed by broker")
        self._rx += chunk

    def recv_frame(self, timeout=DEFAULT_TIMEOUT_S):
        """Reads one response frame; returns its payload."""
        deadline = time.monotonic() + timeout
        while len(self._rx) < 4:
            self._fill(deadline)
        n = struct.unpack(">i", self._rx[:4])[0]
        if n < 0 or n > FRAME_BYTES_MAX:
            raise WireError("bad response frame length %d" % n)
        while len(self._rx) < 4 + n:
            self._fill(deadline)
        payload = bytes(self._rx[4:4 + n])
        del self._rx[:4 + n]
        return payload

    def request(self, api_key, api_version, body, correlation_id=None, client_id="kwire",
                header_version=None, timeout=DEFAULT_TIMEOUT_S):
        """Sends one request; returns (correlation_id, response body after the header).

        The response header is read as v0 or v1 from the request's api and version."""
        if correlation_id is None:
            correlation_id = self._next_corr
            self._next_corr += 1
        hdr = request_header(api_key, api_version, correlation_id, client_id, header_version)
        self.send_frame(hdr + body)
        r = Reader(self.recv_frame(timeout))
        corr = r.i32()
        if corr != correlation_id:
            raise WireError("correlation id %d, expected %d" % (corr, correlation_id))
        if response_header_version(api_key, api_version) >= 1:
            r.tags()
        return corr, r.data[r.pos:]

    def wait_closed(self, timeout=DEFAULT_TIMEOUT_S):
        """Waits until the broker closes the connection, discarding anything it
        sends first. True when closed (FIN or RST), False at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([self.sock], [], [], remaining)
            if not ready:
                continue
            try:
                if not self.sock.recv(65536):
                    return True
            except OSError:  # reset, or not connected any more
                return True


# ---- ApiVersions ---------------------------------------------------------

def api_versions_body(version, software_name="kwire", software_version="1.0"):
    if version >= 3:
        return Writer().compact_string(software_name).compact_string(software_version).tags().bytes()
    return b""


def parse_api_versions(body, version):
    """Returns {"error_code", "apis": {key: (min, max)}, "throttle_time_ms",
    "tags", "trailing"}; "trailing" counts bytes left over after the body."""
    r = Reader(body)
    out = {"error_code": r.i16(), "apis": {}, "throttle_time_ms": None, "tags": {}}
    flexible = version >= 3
    n = r.compact_array_len() if flexible else r.array_len()
    for _ in range(n or 0):
        key, lo, hi = r.i16(), r.i16(), r.i16()
        if flexible:
            r.tags()
        out["apis"][key] = (lo, hi)
    if version >= 1:
        out["throttle_time_ms"] = r.i32()
    if flexible:
        out["tags"] = r.tags()
    out["trailing"] = r.left()
    return out


def api_versions(conn, version=0, **kw):
    """Sends ApiVersions `version`; returns the parsed response. A broker that
    answers an unsupported version does so with a v0 body, parsed as such."""
    _, body = conn.request(API_API_VERSIONS, version, api_versions_body(version), **kw)
    if len(body) >= 2 and struct.unpack(">h", body[:2])[0] == ERR_UNSUPPORTED_VERSION:
        return parse_api_versions(body, 0)
    return parse_api_versions(body, version)


# ---- Metadata v1 ---------------------------------------------------------

def metadata_v1_body(topics=None):
    """topics None asks for every topic (v1 null array)."""
    w = Writer()
    if topics is None:
        return w.i32(-1).bytes()
    w.i32(len(topics))
    for t in topics:
        w.string(t)
    return w.bytes()


def parse_metadata_v1(body):
    r = Reader(body)
    brokers = []
    for _ in range(r.array_len() or 0):
        brokers.append({"node_id": r.i32(), "host": r.string(), "port": r.i32(), "rack": r.string()})
    out = {"brokers": brokers, "controller_id": r.i32(), "topics": []}
    for _ in range(r.array_len() or 0):
        t = {"error_code": r.i16(), "name": r.string(), "is_internal": r.i8() != 0, "partitions": []}
        for _ in range(r.array_len() or 0):
            p = {"error_code": r.i16(), "partition_index": r.i32(), "leader_id": r.i32()}
            p["replica_nodes"] = [r.i32() for _ in range(r.array_len() or 0)]
            p["isr_nodes"] = [r.i32() for _ in range(r.array_len() or 0)]
            t["partitions"].append(p)
        out["topics"].append(t)
    out["trailing"] = r.left()
    return out


def metadata_v1(conn, topics=None, **kw):
    _, body = conn.request(API_METADATA, 1, metadata_v1_body(topics), **kw)
    return parse_metadata_v1(body)


def random_bytes(seed, n):
    """Deterministic garbage for bad-input tests."""
    return random.Random(seed).randbytes(n)
