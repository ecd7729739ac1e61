/*
 * batch.h - Kafka record batches, magic v2: validate, inspect, patch, build,
 * and walk the records of uncompressed batches.
 *
 * A batch is a 61-byte header followed by its records (all big-endian):
 *
 *   off size field                 notes
 *   --- ---- --------------------- ----------------------------------------
 *     0    8 baseOffset            assigned by the leader (patched in place)
 *     8    4 batchLength           bytes after this field (total - 12)
 *    12    4 partitionLeaderEpoch  set by the leader (patched in place)
 *    16    1 magic                 2
 *    17    4 crc                   CRC-32C of bytes [21, end)
 *    21    2 attributes            bits 0-2 codec, 3 LogAppendTime,
 *                                  4 transactional, 5 control, 6 deleteHorizon
 *    23    4 lastOffsetDelta
 *    27    8 baseTimestamp
 *    35    8 maxTimestamp
 *    43    8 producerId            -1 when not idempotent
 *    51    2 producerEpoch
 *    53    4 baseSequence
 *    57    4 recordsCount
 *    61    . records               compressed as a whole when codec != 0
 *
 * A record (inside uncompressed records) is: length varint, attributes i8,
 * timestampDelta varlong, offsetDelta varint, keyLength varint (-1 = null),
 * key, valueLength varint (-1 = null), value, headerCount varint, then per
 * header keyLength varint (>= 0), key, valueLength varint, value.
 *
 * baseOffset, batchLength and partitionLeaderEpoch lie outside the CRC, so
 * the leader assigns offsets and epochs without recomputing it.
 *
 * Everything here works on borrowed bytes and allocates nothing except the
 * builder's output buffer.
 */
#ifndef CHRONIK_PROTO_BATCH_H
#define CHRONIK_PROTO_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define BATCH_HEADER_BYTES 61
#define BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define BATCH_MAGIC_V2 2
#define BATCH_CRC_START 21    /* CRC covers [BATCH_CRC_START, end) */
#define BATCH_MIN_LENGTH (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD) /* 49 */
#define BATCH_RECORDS_MAX 0x7fffffff /* recordsCount is an int32 */

/* Field offsets inside the header. */
enum {
    BATCH_OFF_BASE_OFFSET = 0,
    BATCH_OFF_LENGTH = 8,
    BATCH_OFF_LEADER_EPOCH = 12,
    BATCH_OFF_MAGIC = 16,
    BATCH_OFF_CRC = 17,
    BATCH_OFF_ATTRIBUTES = 21,
    BATCH_OFF_LAST_OFFSET_DELTA = 23,
    BATCH_OFF_BASE_TIMESTAMP = 27,
    BATCH_OFF_MAX_TIMESTAMP = 35,
    BATCH_OFF_PRODUCER_ID = 43,
    BATCH_OFF_PRODUCER_EPOCH = 51,
    BATCH_OFF_BASE_SEQUENCE = 53,
    BATCH_OFF_RECORDS_COUNT = 57,
};

/* attributes bits */
#define BATCH_ATTR_CODEC_MASK 0x07
#define BATCH_ATTR_LOG_APPEND_TIME 0x08
#define BATCH_ATTR_TRANSACTIONAL 0x10
#define BATCH_ATTR_CONTROL 0x20
#define BATCH_ATTR_DELETE_HORIZON 0x40

enum batch_codec {
    BATCH_CODEC_NONE = 0,
    BATCH_CODEC_GZIP = 1,
    BATCH_CODEC_SNAPPY = 2,
    BATCH_CODEC_LZ4 = 3,
    BATCH_CODEC_ZSTD = 4,
};
const char *batch_codec_name(int codec);

/*
 * Errors: X(name, kafka error code the broker answers with, message).
 * Kafka codes: 2 CORRUPT_MESSAGE, 10 MESSAGE_TOO_LARGE, 43
 * UNSUPPORTED_FOR_MESSAGE_FORMAT, 76 UNSUPPORTED_COMPRESSION_TYPE,
 * 87 INVALID_RECORD.
 */
#define BATCH_ERRORS(X)                                                        \
    X(OK, 0, "ok")                                                             \
    X(EMPTY, 87, "no record batch in the payload")                             \
    X(SHORT, 2, "batch truncated: fewer bytes than its header claims")        \
    X(LENGTH, 2, "batch length out of range")                                  \
    X(OLD_MAGIC, 43, "record batch magic < 2 is not supported")               \
    X(MAGIC, 2, "unknown record batch magic")                                  \
    X(CRC, 2, "record batch CRC-32C mismatch")                                 \
    X(CODEC, 76, "unknown compression codec")                                  \
    X(COUNT, 87, "recordsCount inconsistent with lastOffsetDelta or records")  \
    X(RECORD, 2, "malformed record inside the batch")                          \
    X(OFFSET_DELTA, 87, "record offset deltas are not 0, 1, 2, ...")          \
    X(TOO_LARGE, 10, "record batch larger than the size limit")               \
    X(TOO_MANY, 87, "more record batches than the limit")

enum batch_err {
#define BATCH_ERR_ENUM_(name, code, msg) BATCH_ERR_##name,
    BATCH_ERRORS(BATCH_ERR_ENUM_)
#undef BATCH_ERR_ENUM_
    BATCH_ERR__COUNT
};
#define BATCH_OK BATCH_ERR_OK

const char *batch_strerror(enum batch_err e);
int16_t batch_err_kafka_code(enum batch_err e);

/* Everything the header says about one batch (plus where it is). */
typedef struct batch_info {
    const uint8_t *data;   /* first byte of the batch (view)          */
    uint32_t size;         /* total bytes: batchLength + 12           */
    int64_t base_offset;
    int32_t leader_epoch;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t records_count;
    uint8_t codec;         /* enum batch_codec */
    bool transactional;
    bool control;
    bool log_append_time;
} batch_info_t;

static inline int64_t batch_info_last_offset(const batch_info_t *b)
{
    return b->base_offset + b->last_offset_delta;
}

/* Summary of a whole payload (several concatenated batches). */
typedef struct batch_summary {
    int32_t batches;
    int64_t records;         /* sum of recordsCount                  */
    int64_t offsets;         /* sum of lastOffsetDelta + 1           */
    int64_t max_timestamp;   /* max over batches, -1 when none       */
    size_t bytes;
} batch_summary_t;

/* Limits for batch_validate; 0 in a field means "no limit". */
typedef struct batch_limits {
    uint32_t max_batch_bytes;  /* max.message.bytes                    */
    int32_t max_batches;       /* batches per payload                  */
} batch_limits_t;

/*
 * Parses the header of the batch at p without touching the CRC or the
 * records. Checks: at least 12 bytes, batchLength >= 49 and fits n, magic
 * 2, codec known. Fills *out (out->size is the batch's total size).
 */
enum batch_err batch_parse_header(const uint8_t *p, size_t n, batch_info_t *out);

/* True when the stored CRC matches the bytes. p must hold a whole batch
 * whose header batch_parse_header accepted. */
bool batch_crc_ok(const uint8_t *p, size_t size);
uint32_t batch_crc_compute(const uint8_t *p, size_t size);

/*
 * Full check of one batch as received from a producer: header, CRC,
 * recordsCount >= 1, lastOffsetDelta == recordsCount - 1 (for compressed
 * batches only the header can be checked), and for uncompressed batches a
 * walk over every record (lengths, varints, offsetDelta == index).
 */
enum batch_err batch_check(const uint8_t *p, size_t n, batch_info_t *out);

/*
 * The record walk of batch_check for an uncompressed batch whose header
 * batch_parse_header accepted: recordsCount records, each exactly its
 * declared length with well-formed varints, key, value and headers, with
 * offsetDelta == its index, and nothing after the last. The same verdict
 * as walking the records with batch_iter (RECORD when a record does not
 * parse, OFFSET_DELTA, COUNT for bytes left over).
 */
enum batch_err batch_check_records(const uint8_t *p, const batch_info_t *b);

/*
 * Stored-data check (recovery, replication): header + CRC only, and
 * recordsCount/lastOffsetDelta sane (compaction may leave gaps, so
 * lastOffsetDelta >= recordsCount - 1 is allowed and records are not
 * walked). Used by storage on every batch it scans.
 */
enum batch_err batch_check_stored(const uint8_t *p, size_t n, batch_info_t *out);

/*
 * Validates a produce payload: one or more batches exactly filling n bytes,
 * each passing batch_check. infos (may be NULL) receives up to max_infos
 * entries; more batches than max_infos (when infos != NULL) or than
 * lim->max_batches is BATCH_ERR_TOO_MANY. sum may be NULL. On error,
 * *err_pos (may be NULL) is the byte offset of the failing batch.
 */
enum batch_err batch_validate(const uint8_t *p, size_t n, const batch_limits_t *lim,
                              batch_info_t *infos, int max_infos, batch_summary_t *sum,
                              size_t *err_pos);

/* In-place patches of the fields outside the CRC. */
static inline void batch_set_base_offset(uint8_t *batch, int64_t base_offset)
{
    be64_store(batch + BATCH_OFF_BASE_OFFSET, (uint64_t)base_offset);
}
static inline void batch_set_leader_epoch(uint8_t *batch, int32_t epoch)
{
    be32_store(batch + BATCH_OFF_LEADER_EPOCH, (uint32_t)epoch);
}
/* For LogAppendTime topics: sets the attribute bit and maxTimestamp, then
 * recomputes the CRC (these fields are covered by it). */
void batch_set_log_append_time(uint8_t *batch, size_t size, int64_t now_ms);

/* ---- records of an uncompressed batch ------------------------------- */

typedef struct batch_record {
    int8_t attributes;
    int64_t timestamp;     /* baseTimestamp + timestampDelta */
    int64_t offset;        /* baseOffset + offsetDelta */
    int32_t offset_delta;
    const uint8_t *key;    /* NULL when null */
    int32_t key_len;       /* -1 when null */
    const uint8_t *value;  /* NULL when null */
    int32_t value_len;     /* -1 when null */
    const uint8_t *headers; /* raw header bytes (view) */
    size_t headers_len;
    int32_t header_count;
} batch_record_t;

typedef struct batch_iter {
    rd_t r;
    batch_info_t info;
    int32_t index;
    bool failed;
} batch_iter_t;

/* Starts a walk over an uncompressed batch that batch_parse_header
 * accepted; returns false for compressed batches. */
bool batch_iter_init(batch_iter_t *it, const uint8_t *p, size_t size);
/* Next record; false at the end or on malformed data (it->failed set). */
bool batch_iter_next(batch_iter_t *it, batch_record_t *rec);

/* ---- control batches (KIP-98 transaction markers) --------------------- */

/* A control batch (attributes transactional | control) holds one record
 * whose key is version (i16, 0) + type (i16) and, for the two marker
 * types, whose value is version (i16, 0) + coordinator epoch (i32). */
#define BATCH_CONTROL_ABORT 0
#define BATCH_CONTROL_COMMIT 1
#define BATCH_CONTROL_KEY_BYTES 4
#define BATCH_CONTROL_VALUE_BYTES 6

/* The type of control batch b (its first record's key), or -1 when b is
 * not a control batch or its record cannot be read. b->data must hold the
 * whole batch (b->size bytes). */
int batch_control_type(const batch_info_t *b);
/* The coordinator epoch of a marker's value, or -1 when unreadable. */
int32_t batch_control_coordinator_epoch(const batch_info_t *b);
/* Appends a transaction marker (COMMIT when commit, else ABORT) of
 * producer (producer_id, producer_epoch) to out, base offset 0; returns
 * its size. */
size_t batch_build_marker(buf_t *out, int64_t producer_id, int16_t producer_epoch, bool commit,
                          int32_t coordinator_epoch, int64_t timestamp);

/* ---- building uncompressed batches ------------------------------------ */

typedef struct batch_header_kv {
    const void *key;
    int32_t key_len;       /* >= 0 */
    const void *value;
    int32_t value_len;     /* -1 = null */
} batch_header_kv_t;

typedef struct batch_builder {
    buf_t *out;
    size_t start;          /* offset of the batch in out */
    int64_t base_timestamp;
    int64_t max_timestamp;
    int32_t count;
} batch_builder_t;

/* Starts a batch at the end of out. attributes: codec must be NONE. */
void batch_build_begin(batch_builder_t *b, buf_t *out, int64_t base_offset, int16_t attributes,
                       int64_t base_timestamp, int64_t producer_id, int16_t producer_epoch,
                       int32_t base_sequence);
/* key/value may be NULL with len -1 for null. */
void batch_build_add(batch_builder_t *b, int64_t timestamp, const void *key, int32_t key_len,
                     const void *value, int32_t value_len, const batch_header_kv_t *headers,
                     int32_t header_count);
/* Fills batchLength, lastOffsetDelta, maxTimestamp, recordsCount and the
 * CRC; returns the batch's size. Needs at least one record. */
size_t batch_build_end(batch_builder_t *b);

#endif
