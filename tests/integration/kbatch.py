"""Record batches (magic 2) built by hand for wire-level tests: CRC-32C,
zigzag varints, and uncompressed batches with or without producer ids."""

import struct

import kwire


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(v):
    """A zigzag varint (Kafka's signed varint/varlong)."""
    return kwire.Writer().uvarint((v << 1) ^ (v >> 63)).bytes()


def record_batch(values, pid=-1, epoch=-1, seq=-1, timestamp=0, corrupt_crc=False, transactional=False):
    """An uncompressed magic-2 batch of keyless records, base offset 0; with pid >= 0
    the batch carries producer (pid, epoch) and first sequence seq; transactional sets
    attribute bit 4 (a transaction's data, KIP-98)."""
    recs = b""
    for i, v in enumerate(values):
        body = b"\x00" + varint(0) + varint(i) + varint(-1) + varint(len(v)) + v + varint(0)
        recs += varint(len(body)) + body
    attributes = 0x10 if transactional else 0
    after_crc = struct.pack(">hiqqqhii", attributes, len(values) - 1, timestamp, timestamp, pid, epoch, seq,
                            len(values)) + recs
    crc = crc32c(after_crc) ^ (1 if corrupt_crc else 0)
    tail = struct.pack(">bI", 2, crc) + after_crc
    return struct.pack(">qii", 0, 4 + len(tail), 0) + tail


def produce(conn, topic, batch):
    """Produce v7, acks=all, one partition (0) of one batch; returns (error code, base offset)."""
    w = kwire.Writer().string(None).i16(-1).i32(10000).i32(1).string(topic).i32(1).i32(0)
    w.i32(len(batch)).raw(batch)
    _, body = conn.request(kwire.API_PRODUCE, 7, w.bytes(), timeout=15)
    r = kwire.Reader(body)
    assert r.array_len() == 1 and r.string() == topic
    assert r.array_len() == 1 and r.i32() == 0
    return r.i16(), r.i64()
