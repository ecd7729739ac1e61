/* batch.c - record batch v2 validation, patching, iteration, building
 * (format table in batch.h). */
#include "proto/batch.h"

#include "base/crc32c.h"
#include "base/util.h"

_Static_assert(BATCH_HEADER_BYTES == BATCH_OFF_RECORDS_COUNT + 4, "batch header size");
_Static_assert(BATCH_CRC_START == BATCH_OFF_ATTRIBUTES, "CRC starts at attributes");

static const char *const err_msgs[] = {
#define BATCH_ERR_MSG_(name, code, msg) msg,
    BATCH_ERRORS(BATCH_ERR_MSG_)
#undef BATCH_ERR_MSG_
};
static const int16_t err_codes[] = {
#define BATCH_ERR_CODE_(name, code, msg) code,
    BATCH_ERRORS(BATCH_ERR_CODE_)
#undef BATCH_ERR_CODE_
};

const char *batch_strerror(enum batch_err e)
{
    if ((unsigned)e >= BATCH_ERR__COUNT)
        return "unknown batch error";
    return err_msgs[e];
}

int16_t batch_err_kafka_code(enum batch_err e)
{
    if ((unsigned)e >= BATCH_ERR__COUNT)
        return 2;
    return err_codes[e];
}

const char *batch_codec_name(int codec)
{
    static const char *const names[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    if (codec < 0 || codec >= (int)ARRAY_LEN(names))
        return "unknown";
    return names[codec];
}

enum batch_err batch_parse_header(const uint8_t *p, size_t n, batch_info_t *out)
{
    if (n < BATCH_LOG_OVERHEAD + 5) /* up to and including magic */
        return BATCH_ERR_SHORT;
    int32_t length = (int32_t)be32_load(p + BATCH_OFF_LENGTH);
    int8_t magic = (int8_t)p[BATCH_OFF_MAGIC];
    if (magic == 0 || magic == 1)
        return BATCH_ERR_OLD_MAGIC;
    if (magic != BATCH_MAGIC_V2)
        return BATCH_ERR_MAGIC;
    if (length < BATCH_MIN_LENGTH || length > INT32_MAX - BATCH_LOG_OVERHEAD)
        return BATCH_ERR_LENGTH;
    if ((size_t)length + BATCH_LOG_OVERHEAD > n)
        return BATCH_ERR_SHORT;
    out->data = p;
    out->size = (uint32_t)length + BATCH_LOG_OVERHEAD;
    out->base_offset = (int64_t)be64_load(p + BATCH_OFF_BASE_OFFSET);
    out->leader_epoch = (int32_t)be32_load(p + BATCH_OFF_LEADER_EPOCH);
    out->crc = be32_load(p + BATCH_OFF_CRC);
    out->attributes = (int16_t)be16_load(p + BATCH_OFF_ATTRIBUTES);
    out->last_offset_delta = (int32_t)be32_load(p + BATCH_OFF_LAST_OFFSET_DELTA);
    out->base_timestamp = (int64_t)be64_load(p + BATCH_OFF_BASE_TIMESTAMP);
    out->max_timestamp = (int64_t)be64_load(p + BATCH_OFF_MAX_TIMESTAMP);
    out->producer_id = (int64_t)be64_load(p + BATCH_OFF_PRODUCER_ID);
    out->producer_epoch = (int16_t)be16_load(p + BATCH_OFF_PRODUCER_EPOCH);
    out->base_sequence = (int32_t)be32_load(p + BATCH_OFF_BASE_SEQUENCE);
    out->records_count = (int32_t)be32_load(p + BATCH_OFF_RECORDS_COUNT);
    out->codec = (uint8_t)(out->attributes & BATCH_ATTR_CODEC_MASK);
    out->transactional = (out->attributes & BATCH_ATTR_TRANSACTIONAL) != 0;
    out->control = (out->attributes & BATCH_ATTR_CONTROL) != 0;
    out->log_append_time = (out->attributes & BATCH_ATTR_LOG_APPEND_TIME) != 0;
    if (out->codec > BATCH_CODEC_ZSTD)
        return BATCH_ERR_CODEC;
    return BATCH_OK;
}

uint32_t batch_crc_compute(const uint8_t *p, size_t size)
{
    CK_ASSERT(size >= BATCH_HEADER_BYTES);
    return crc32c(0, p + BATCH_CRC_START, size - BATCH_CRC_START);
}

bool batch_crc_ok(const uint8_t *p, size_t size)
{
    return batch_crc_compute(p, size) == be32_load(p + BATCH_OFF_CRC);
}

/* Skips a nullable byte string with a varint length; *len gets it. */
static bool skip_bytes(rd_t *r, int32_t *len, const uint8_t **view, bool nullable)
{
    if (!rd_varint(r, len))
        return false;
    if (*len < 0) {
        *view = NULL;
        return nullable && *len == -1;
    }
    return rd_bytes(r, (size_t)*len, view);
}

/* Parses one record of exactly its declared length. */
static bool parse_record(rd_t *r, const batch_info_t *b, batch_record_t *rec)
{
    int32_t len;
    if (!rd_varint(r, &len) || len < 0 || (size_t)len > rd_left(r))
        return false;
    rd_t body;
    rd_init(&body, r->p, (size_t)len);
    r->p += len;
    int64_t ts_delta;
    uint64_t hcount;
    if (!rd_i8(&body, &rec->attributes) || !rd_varlong(&body, &ts_delta) ||
        !rd_varint(&body, &rec->offset_delta))
        return false;
    if (!skip_bytes(&body, &rec->key_len, &rec->key, true) ||
        !skip_bytes(&body, &rec->value_len, &rec->value, true))
        return false;
    int32_t hc;
    if (!rd_varint(&body, &hc) || hc < 0)
        return false;
    hcount = (uint64_t)hc;
    rec->header_count = hc;
    rec->headers = body.p;
    for (uint64_t i = 0; i < hcount; i++) {
        int32_t l;
        const uint8_t *v;
        if (!skip_bytes(&body, &l, &v, false) || !skip_bytes(&body, &l, &v, true))
            return false;
    }
    rec->headers_len = (size_t)(body.p - rec->headers);
    rec->timestamp = (int64_t)((uint64_t)b->base_timestamp + (uint64_t)ts_delta);
    rec->offset = b->base_offset + rec->offset_delta;
    return rd_left(&body) == 0;
}

bool batch_iter_init(batch_iter_t *it, const uint8_t *p, size_t size)
{
    memset(it, 0, sizeof *it);
    if (batch_parse_header(p, size, &it->info) != BATCH_OK || it->info.codec != BATCH_CODEC_NONE)
        return false;
    rd_init(&it->r, p + BATCH_HEADER_BYTES, it->info.size - BATCH_HEADER_BYTES);
    return true;
}

bool batch_iter_next(batch_iter_t *it, batch_record_t *rec)
{
    if (it->failed || it->index >= it->info.records_count)
        return false;
    if (!parse_record(&it->r, &it->info, rec)) {
        it->failed = true;
        return false;
    }
    it->index++;
    return true;
}

/* The record walk of batch_check runs over every record a producer sends,
 * so it reads the varints in place with a one-byte fast path instead of
 * through rd_t, under exactly parse_record's rules: a varint has at most 5
 * bytes and 32 bits, a varlong at most 10 bytes and 64 bits. */
static inline bool walk_uvar(const uint8_t **pp, const uint8_t *end, int max_bytes, uint64_t *out)
{
    const uint8_t *p = *pp;
    if (p < end && *p < 0x80) {
        *out = *p;
        *pp = p + 1;
        return true;
    }
    uint64_t x = 0;
    for (int i = 0; i < max_bytes && p < end; i++) {
        uint8_t c = *p++;
        if (i == 9 && c > 1)
            return false; /* overflows 64 bits */
        x |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *out = x;
            *pp = p;
            return true;
        }
    }
    return false;
}

static inline bool walk_varint(const uint8_t **pp, const uint8_t *end, int32_t *v)
{
    uint64_t u;
    if (!walk_uvar(pp, end, 5, &u) || u > UINT32_MAX)
        return false;
    *v = unzigzag32((uint32_t)u);
    return true;
}

/* Skips a byte string with a varint length (-1: null, when nullable). */
static inline bool walk_bytes(const uint8_t **pp, const uint8_t *end, bool nullable)
{
    int32_t len;
    if (!walk_varint(pp, end, &len))
        return false;
    if (len < 0)
        return nullable && len == -1;
    if ((size_t)len > (size_t)(end - *pp))
        return false;
    *pp += len;
    return true;
}

/* One record [q, end): attributes, timestampDelta, offsetDelta, key,
 * value, headers, nothing left over. */
static inline bool walk_record(const uint8_t *q, const uint8_t *end, int32_t *offset_delta)
{
    uint64_t ts_delta;
    int32_t headers;
    if (q >= end)
        return false;
    q++; /* attributes */
    if (!walk_uvar(&q, end, 10, &ts_delta) || !walk_varint(&q, end, offset_delta) ||
        !walk_bytes(&q, end, true) || !walk_bytes(&q, end, true) || !walk_varint(&q, end, &headers) ||
        headers < 0)
        return false;
    for (int32_t i = 0; i < headers; i++)
        if (!walk_bytes(&q, end, false) || !walk_bytes(&q, end, true))
            return false;
    return q == end;
}

enum batch_err batch_check_records(const uint8_t *p, const batch_info_t *b)
{
    const uint8_t *r = p + BATCH_HEADER_BYTES, *end = p + b->size;
    for (int32_t n = 0; n < b->records_count; n++) {
        int32_t len, delta;
        if (!walk_varint(&r, end, &len) || len < 0 || (size_t)len > (size_t)(end - r))
            return BATCH_ERR_RECORD;
        if (!walk_record(r, r + len, &delta))
            return BATCH_ERR_RECORD;
        if (delta != n)
            return BATCH_ERR_OFFSET_DELTA;
        r += len;
    }
    /* bytes left over, or a negative count */
    return r == end && b->records_count >= 0 ? BATCH_OK : BATCH_ERR_COUNT;
}

enum batch_err batch_check_stored(const uint8_t *p, size_t n, batch_info_t *out)
{
    enum batch_err e = batch_parse_header(p, n, out);
    if (e != BATCH_OK)
        return e;
    if (!batch_crc_ok(p, out->size))
        return BATCH_ERR_CRC;
    if (out->last_offset_delta < 0 || out->records_count < 0 ||
        out->records_count > out->last_offset_delta + 1)
        return BATCH_ERR_COUNT;
    if (out->base_offset < 0 || out->base_offset > INT64_MAX - out->last_offset_delta)
        return BATCH_ERR_COUNT;
    return BATCH_OK;
}

enum batch_err batch_check(const uint8_t *p, size_t n, batch_info_t *out)
{
    enum batch_err e = batch_parse_header(p, n, out);
    if (e != BATCH_OK)
        return e;
    if (!batch_crc_ok(p, out->size))
        return BATCH_ERR_CRC;
    if (out->records_count < 1 || out->last_offset_delta != out->records_count - 1)
        return BATCH_ERR_COUNT;
    if (out->codec == BATCH_CODEC_NONE)
        return batch_check_records(p, out);
    return BATCH_OK;
}

enum batch_err batch_validate(const uint8_t *p, size_t n, const batch_limits_t *lim,
                              batch_info_t *infos, int max_infos, batch_summary_t *sum,
                              size_t *err_pos)
{
    batch_summary_t s = {.max_timestamp = -1};
    size_t pos = 0;
    enum batch_err e = n == 0 ? BATCH_ERR_EMPTY : BATCH_OK;
    while (e == BATCH_OK && pos < n) {
        batch_info_t info;
        e = batch_check(p + pos, n - pos, &info);
        if (e != BATCH_OK)
            break;
        if (lim && lim->max_batch_bytes && info.size > lim->max_batch_bytes) {
            e = BATCH_ERR_TOO_LARGE;
            break;
        }
        if ((lim && lim->max_batches && s.batches >= lim->max_batches) ||
            (infos && s.batches >= max_infos)) {
            e = BATCH_ERR_TOO_MANY;
            break;
        }
        if (infos)
            infos[s.batches] = info;
        s.batches++;
        s.records += info.records_count;
        s.offsets += (int64_t)info.last_offset_delta + 1;
        s.max_timestamp = MAX(s.max_timestamp, info.max_timestamp);
        pos += info.size;
    }
    s.bytes = pos;
    if (err_pos)
        *err_pos = pos;
    if (sum)
        *sum = s;
    return e;
}

void batch_set_log_append_time(uint8_t *batch, size_t size, int64_t now_ms)
{
    CK_ASSERT(size >= BATCH_HEADER_BYTES);
    uint16_t attr = be16_load(batch + BATCH_OFF_ATTRIBUTES);
    be16_store(batch + BATCH_OFF_ATTRIBUTES, (uint16_t)(attr | BATCH_ATTR_LOG_APPEND_TIME));
    be64_store(batch + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)now_ms);
    be32_store(batch + BATCH_OFF_CRC, batch_crc_compute(batch, size));
}

/* ---- builder ----------------------------------------------------------- */

void batch_build_begin(batch_builder_t *b, buf_t *out, int64_t base_offset, int16_t attributes,
                       int64_t base_timestamp, int64_t producer_id, int16_t producer_epoch,
                       int32_t base_sequence)
{
    CK_ASSERT((attributes & BATCH_ATTR_CODEC_MASK) == BATCH_CODEC_NONE);
    memset(b, 0, sizeof *b);
    b->out = out;
    b->start = out->len;
    b->base_timestamp = base_timestamp;
    b->max_timestamp = base_timestamp;
    uint8_t *h = buf_extend(out, BATCH_HEADER_BYTES);
    memset(h, 0, BATCH_HEADER_BYTES);
    be64_store(h + BATCH_OFF_BASE_OFFSET, (uint64_t)base_offset);
    be32_store(h + BATCH_OFF_LEADER_EPOCH, (uint32_t)-1);
    h[BATCH_OFF_MAGIC] = BATCH_MAGIC_V2;
    be16_store(h + BATCH_OFF_ATTRIBUTES, (uint16_t)attributes);
    be64_store(h + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)base_timestamp);
    be64_store(h + BATCH_OFF_PRODUCER_ID, (uint64_t)producer_id);
    be16_store(h + BATCH_OFF_PRODUCER_EPOCH, (uint16_t)producer_epoch);
    be32_store(h + BATCH_OFF_BASE_SEQUENCE, (uint32_t)base_sequence);
}

static void put_bytes(buf_t *t, const void *p, int32_t len)
{
    buf_put_varint(t, len);
    if (len > 0)
        buf_put(t, p, (size_t)len);
}

void batch_build_add(batch_builder_t *b, int64_t timestamp, const void *key, int32_t key_len,
                     const void *value, int32_t value_len, const batch_header_kv_t *headers,
                     int32_t header_count)
{
    CK_ASSERT(header_count >= 0 && (header_count == 0 || headers));
    buf_t body;
    buf_init(&body);
    buf_put_u8(&body, 0);
    buf_put_varlong(&body, (int64_t)((uint64_t)timestamp - (uint64_t)b->base_timestamp));
    buf_put_varint(&body, b->count);
    put_bytes(&body, key, key ? key_len : -1);
    put_bytes(&body, value, value ? value_len : -1);
    buf_put_varint(&body, header_count);
    for (int32_t i = 0; i < header_count; i++) {
        CK_ASSERT(headers[i].key_len >= 0);
        put_bytes(&body, headers[i].key, headers[i].key_len);
        put_bytes(&body, headers[i].value, headers[i].value ? headers[i].value_len : -1);
    }
    CK_ASSERT(body.len <= INT32_MAX);
    buf_put_varint(b->out, (int32_t)body.len);
    buf_put(b->out, body.data, body.len);
    buf_free(&body);
    b->max_timestamp = MAX(b->max_timestamp, timestamp);
    b->count++;
}

size_t batch_build_end(batch_builder_t *b)
{
    CK_ASSERT(b->count >= 1);
    size_t size = b->out->len - b->start;
    CK_ASSERT(size <= INT32_MAX);
    uint8_t *h = b->out->data + b->start;
    be32_store(h + BATCH_OFF_LENGTH, (uint32_t)(size - BATCH_LOG_OVERHEAD));
    be32_store(h + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(b->count - 1));
    be64_store(h + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)b->max_timestamp);
    be32_store(h + BATCH_OFF_RECORDS_COUNT, (uint32_t)b->count);
    be32_store(h + BATCH_OFF_CRC, batch_crc_compute(h, size));
    return size;
}

/* ---- control batches ---------------------------------------------------- */

/* The first record of control batch b; false when there is none. */
static bool control_record(const batch_info_t *b, batch_record_t *rec)
{
    if (!b->control || b->records_count < 1)
        return false;
    batch_iter_t it;
    return batch_iter_init(&it, b->data, b->size) && batch_iter_next(&it, rec);
}

int batch_control_type(const batch_info_t *b)
{
    batch_record_t rec;
    if (!control_record(b, &rec) || rec.key_len < BATCH_CONTROL_KEY_BYTES)
        return -1;
    return (int16_t)be16_load(rec.key + 2);
}

int32_t batch_control_coordinator_epoch(const batch_info_t *b)
{
    batch_record_t rec;
    if (!control_record(b, &rec) || rec.value_len < BATCH_CONTROL_VALUE_BYTES)
        return -1;
    return (int32_t)be32_load(rec.value + 2);
}

size_t batch_build_marker(buf_t *out, int64_t producer_id, int16_t producer_epoch, bool commit,
                          int32_t coordinator_epoch, int64_t timestamp)
{
    uint8_t key[BATCH_CONTROL_KEY_BYTES], value[BATCH_CONTROL_VALUE_BYTES];
    be16_store(key, 0);
    be16_store(key + 2, commit ? BATCH_CONTROL_COMMIT : BATCH_CONTROL_ABORT);
    be16_store(value, 0);
    be32_store(value + 2, (uint32_t)coordinator_epoch);
    batch_builder_t b;
    batch_build_begin(&b, out, 0, BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL, timestamp, producer_id,
                      producer_epoch, -1);
    batch_build_add(&b, timestamp, key, sizeof key, value, sizeof value, NULL, 0);
    return batch_build_end(&b);
}
