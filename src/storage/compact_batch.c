/*
 * compact_batch.c - the parts of a compaction pass that work on batches:
 * the bounded key map, a whole-batch reader over a segment, and each
 * batch's verdict (keep it byte for byte, rewrite it without some records,
 * or drop it). The rules themselves are in compact.c's header (R1-R9).
 *
 * A compressed batch is worked on through its EXPANSION: a copy of its
 * header with the codec bits cleared and batchLength fixed, followed by
 * its decompressed records, i.e. the uncompressed batch it stands for (its
 * CRC is stale and never checked). A rewrite of the expansion gets its
 * records compressed again with the original codec before the header is
 * finished; a rewrite left with no record stays uncompressed, as an empty
 * header needs no codec.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/hmap.h"
#include "base/log.h"
#include "base/util.h"
#include "proto/compress.h"
#include "storage/storage_int.h"

#define KMAP_CAP_MIN 16u
#define KMAP_LOAD_NUM 3  /* grow past 3/4 full */
#define KMAP_LOAD_DEN 4
#define BREADER_CHUNK (256 * 1024)
#define EXPAND_MAX_BYTES KCODEC_MAX_OUT_DEFAULT /* decompressed records per batch, at most */

/* ---- key map ----------------------------------------------------------------- */

struct kslot {
    uint64_t hash;
    int64_t offset;   /* -1: empty slot */
    size_t key_pos;   /* in kmap.keys */
    int32_t key_len;
};

void kmap_init(kmap_t *m, size_t bytes_max)
{
    *m = (kmap_t){.bytes_max = bytes_max};
}

void kmap_free(kmap_t *m)
{
    free(m->slots);
    free(m->keys);
    *m = (kmap_t){.bytes_max = m->bytes_max};
}

/* Slots needed to hold n keys below the load limit. */
static uint32_t slots_for(uint64_t n)
{
    uint64_t cap = KMAP_CAP_MIN;
    while (cap * KMAP_LOAD_NUM < (n + 1) * KMAP_LOAD_DEN && cap < (1ull << 31))
        cap *= 2;
    return (uint32_t)cap;
}

bool kmap_fits(const kmap_t *m, uint32_t count, size_t key_bytes)
{
    uint64_t slots = slots_for((uint64_t)m->n + count);
    uint64_t need = slots * sizeof(kslot_t) + m->keys_len + key_bytes;
    return need <= m->bytes_max;
}

static kslot_t *find(const kmap_t *m, const void *key, int32_t len, uint64_t h)
{
    uint32_t mask = m->cap - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        kslot_t *s = &m->slots[i];
        if (s->offset < 0)
            return s;
        if (s->hash == h && s->key_len == len && memcmp(m->keys + s->key_pos, key, (size_t)len) == 0)
            return s;
    }
}

static void grow_slots(kmap_t *m)
{
    kslot_t *old = m->slots;
    uint32_t old_cap = m->cap;
    m->cap = slots_for((uint64_t)m->n + 1);
    m->slots = xmalloc((size_t)m->cap * sizeof *m->slots);
    for (uint32_t i = 0; i < m->cap; i++)
        m->slots[i].offset = -1;
    for (uint32_t i = 0; i < old_cap; i++) {
        if (old[i].offset < 0)
            continue;
        uint32_t mask = m->cap - 1, k = (uint32_t)old[i].hash & mask;
        while (m->slots[k].offset >= 0)
            k = (k + 1) & mask;
        m->slots[k] = old[i];
    }
    free(old);
}

static size_t store_key(kmap_t *m, const void *key, int32_t len)
{
    if (m->keys_len + (size_t)len > m->keys_cap) {
        size_t want = MAX(m->keys_cap * 2, m->keys_len + (size_t)len);
        size_t room = m->bytes_max > (size_t)m->cap * sizeof(kslot_t)
                          ? m->bytes_max - (size_t)m->cap * sizeof(kslot_t) : 0;
        m->keys_cap = MAX(MIN(want, room), m->keys_len + (size_t)len);
        m->keys = xrealloc(m->keys, m->keys_cap + 1);
    }
    size_t at = m->keys_len;
    memcpy(m->keys + at, key, (size_t)len);
    m->keys_len += (size_t)len;
    return at;
}

void kmap_put(kmap_t *m, const void *key, int32_t len, int64_t offset)
{
    CK_ASSERT(len >= 0 && offset >= 0);
    if (slots_for((uint64_t)m->n + 1) > m->cap)
        grow_slots(m);
    uint64_t h = hmap_hash(key, (size_t)len);
    kslot_t *s = find(m, key, len, h);
    if (s->offset < 0) {
        *s = (kslot_t){.hash = h, .key_pos = store_key(m, key, len), .key_len = len};
        m->n++;
    }
    CK_ASSERT(offset >= s->offset); /* the map is filled in offset order */
    s->offset = offset;
}

int64_t kmap_get(const kmap_t *m, const void *key, int32_t len)
{
    if (m->n == 0)
        return -1;
    return find(m, key, len, hmap_hash(key, (size_t)len))->offset;
}

/* ---- whole-batch reader -------------------------------------------------------- */

void breader_init(breader_t *r, seg_t *s, uint64_t from, uint64_t limit)
{
    *r = (breader_t){.s = s, .pos = from, .limit = limit};
}

void breader_free(breader_t *r)
{
    free(r->buf);
    r->buf = NULL;
}

static bool buffered(const breader_t *r, uint64_t pos, uint64_t n)
{
    return r->len && pos >= r->buf_pos && pos + n <= r->buf_pos + r->len;
}

/* Reads [pos, pos + want) (cut at the limit) into the buffer. */
static int fill(breader_t *r, uint64_t pos, uint64_t want)
{
    size_t n = (size_t)MIN(want, r->limit - pos);
    if (n > r->cap) {
        r->cap = n;
        r->buf = xrealloc(r->buf, r->cap);
    }
    r->len = 0;
    int rc = sfs_pread_full(r->s->fs, r->s->fd, r->buf, n, pos);
    if (rc < 0)
        return rc;
    r->buf_pos = pos;
    r->len = n;
    r->bytes_read += n;
    return 0;
}

int breader_next(breader_t *r, batch_info_t *b)
{
    if (r->pos >= r->limit)
        return 1;
    if (r->limit - r->pos < BATCH_HEADER_BYTES)
        return -EBADMSG;
    int rc;
    if (!buffered(r, r->pos, BATCH_HEADER_BYTES) && (rc = fill(r, r->pos, BREADER_CHUNK)) < 0)
        return rc;
    const uint8_t *p = r->buf + (r->pos - r->buf_pos);
    uint64_t size = (uint64_t)be32_load(p + BATCH_OFF_LENGTH) + BATCH_LOG_OVERHEAD;
    if (size < BATCH_HEADER_BYTES || size > r->limit - r->pos)
        return -EBADMSG;
    if (!buffered(r, r->pos, size)) {
        if ((rc = fill(r, r->pos, MAX(size, (uint64_t)BREADER_CHUNK))) < 0)
            return rc;
        p = r->buf;
    }
    if (batch_check_stored(p, (size_t)size, b) != BATCH_OK || b->size != size)
        return -EBADMSG;
    r->pos += size;
    return 0;
}

/* ---- verdicts ------------------------------------------------------------------- */

/* Batches whose records may stand as a key's latest value (R2). */
static bool mappable(const batch_info_t *b)
{
    return !b->control && !b->transactional;
}

/* Builds b's expansion (see the top) in tmp and describes it in *x; false
 * when b's records cannot be decompressed. */
static bool expand(const batch_info_t *b, buf_t *tmp, batch_info_t *x, bool warn)
{
    CK_ASSERT(b->codec != BATCH_CODEC_NONE && b->size >= BATCH_HEADER_BYTES);
    buf_reset(tmp);
    buf_put(tmp, b->data, BATCH_HEADER_BYTES);
    int rc = kcodec_decompress(b->codec, b->data + BATCH_HEADER_BYTES, b->size - BATCH_HEADER_BYTES, tmp,
                               EXPAND_MAX_BYTES);
    if (rc == 0 && tmp->len - BATCH_LOG_OVERHEAD > INT32_MAX)
        rc = -EFBIG;
    if (rc == 0) {
        be32_store(tmp->data + BATCH_OFF_LENGTH, (uint32_t)(tmp->len - BATCH_LOG_OVERHEAD));
        be16_store(tmp->data + BATCH_OFF_ATTRIBUTES, (uint16_t)(b->attributes & ~BATCH_ATTR_CODEC_MASK));
        if (batch_parse_header(tmp->data, tmp->len, x) != BATCH_OK)
            rc = -EBADMSG;
    }
    if (rc < 0 && warn)
        log_warn("compact", "%s batch at offset %lld kept whole: records unreadable (%s)",
                 batch_codec_name(b->codec), (long long)b->base_offset, strerror(-rc));
    return rc == 0;
}

/* Puts the keys of an uncompressed batch (or expansion) into the map. */
static bool map_records(cpass_t *p, const batch_info_t *b, bool force)
{
    batch_iter_t it;
    batch_record_t rec;
    if (!batch_iter_init(&it, b->data, b->size))
        return true;
    uint32_t count = 0;
    size_t bytes = 0;
    while (batch_iter_next(&it, &rec)) {
        if (rec.key && rec.offset >= p->dirty_start) {
            count++;
            bytes += (size_t)rec.key_len;
        }
    }
    if (count == 0)
        return true;
    if (!force && !kmap_fits(&p->map, count, bytes))
        return false;
    batch_iter_init(&it, b->data, b->size);
    while (batch_iter_next(&it, &rec))
        if (rec.key && rec.offset >= p->dirty_start)
            kmap_put(&p->map, rec.key, rec.key_len, rec.offset);
    return true;
}

bool compact_map_batch(cpass_t *p, const batch_info_t *b, bool force)
{
    if (!mappable(b))
        return true;
    if (b->codec == BATCH_CODEC_NONE)
        return map_records(p, b, force);
    buf_t tmp;
    batch_info_t x;
    buf_init(&tmp);
    bool ok = !expand(b, &tmp, &x, false) || map_records(p, &x, force);
    buf_free(&tmp);
    return ok;
}

enum rec_fate { FATE_KEEP, FATE_SUPERSEDED, FATE_EXPIRED };

static int64_t stamp_horizon(const cpass_t *p)
{
    if (p->delete_retention_ms > INT64_MAX - p->now_ms)
        return INT64_MAX;
    return p->now_ms + p->delete_retention_ms;
}

/* One record's fate (R3-R5); *horizon gets a kept tombstone's delete
 * horizon (-1 for anything else), *stamp whether the batch must get one. */
static enum rec_fate record_fate(const cpass_t *p, const batch_info_t *b, const batch_record_t *r,
                                 int64_t *horizon, bool *stamp)
{
    *horizon = -1;
    if (!r->key)
        return FATE_KEEP;
    int64_t latest = kmap_get(&p->map, r->key, r->key_len);
    if (latest > r->offset)
        return FATE_SUPERSEDED;
    if (r->value || b->transactional)
        return FATE_KEEP;
    if (!(r->offset < p->dirty_start || latest == r->offset))
        return FATE_KEEP; /* past the map: its older values may still be there */
    bool has = (b->attributes & BATCH_ATTR_DELETE_HORIZON) != 0;
    int64_t h = has ? b->base_timestamp : stamp_horizon(p);
    if (p->now_ms >= h && !p->opaque_seen)
        return FATE_EXPIRED;
    if (!p->opaque_seen)
        *horizon = h;
    *stamp = *stamp || !has;
    return FATE_KEEP;
}

static void put_bytes(buf_t *out, const uint8_t *p, int32_t len)
{
    buf_put_varint(out, len);
    if (len > 0)
        buf_put(out, p, (size_t)len);
}

/* Re-encodes one record against a (possibly new) base timestamp. */
static void put_record(buf_t *out, const batch_record_t *r, int64_t base_ts)
{
    int64_t tsd = (int64_t)((uint64_t)r->timestamp - (uint64_t)base_ts);
    size_t len = 1 + varlong_size(tsd) + varint_size(r->offset_delta) + varint_size(r->key_len) +
                 (size_t)MAX(r->key_len, 0) + varint_size(r->value_len) + (size_t)MAX(r->value_len, 0) +
                 varint_size(r->header_count) + r->headers_len;
    CK_ASSERT(len <= INT32_MAX);
    buf_put_varint(out, (int32_t)len);
    buf_put_u8(out, (uint8_t)r->attributes);
    buf_put_varlong(out, tsd);
    buf_put_varint(out, r->offset_delta);
    put_bytes(out, r->key, r->key_len);
    put_bytes(out, r->value, r->value_len);
    buf_put_varint(out, r->header_count);
    buf_put(out, r->headers, r->headers_len);
}

/* Writes b with only its kept records (R6; every record when keep_all):
 * same baseOffset, lastOffsetDelta, producer fields and epoch; a new CRC. */
static void rewrite(const cpass_t *p, const batch_info_t *b, bool stamp, bool keep_all, buf_t *out)
{
    size_t at = out->len;
    buf_put(out, b->data, BATCH_HEADER_BYTES);
    int64_t base_ts = stamp ? stamp_horizon(p) : b->base_timestamp, max_ts = INT64_MIN, h;
    int32_t count = 0;
    bool unused = false;
    batch_iter_t it;
    batch_record_t rec;
    CK_ASSERT(batch_iter_init(&it, b->data, b->size));
    while (batch_iter_next(&it, &rec)) {
        if (!keep_all && record_fate(p, b, &rec, &h, &unused) != FATE_KEEP)
            continue;
        put_record(out, &rec, base_ts);
        max_ts = MAX(max_ts, rec.timestamp);
        count++;
    }
    uint8_t *hd = out->data + at;
    size_t size = out->len - at;
    CK_ASSERT(size <= INT32_MAX);
    be32_store(hd + BATCH_OFF_LENGTH, (uint32_t)(size - BATCH_LOG_OVERHEAD));
    if (stamp) {
        uint16_t attr = (uint16_t)(b->attributes | BATCH_ATTR_DELETE_HORIZON);
        be16_store(hd + BATCH_OFF_ATTRIBUTES, attr);
        be64_store(hd + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)base_ts);
    }
    if (count > 0 && !b->log_append_time)
        be64_store(hd + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)max_ts);
    be32_store(hd + BATCH_OFF_RECORDS_COUNT, (uint32_t)count);
    be32_store(hd + BATCH_OFF_CRC, batch_crc_compute(hd, size));
}

typedef struct tally {
    int32_t kept, superseded, expired;
    int64_t horizon;  /* earliest among kept tombstones; INT64_MAX none */
    bool stamp;
} tally_t;

/* Walks b's records once and counts their fates; false when malformed. */
static bool count_fates(const cpass_t *p, const batch_info_t *b, tally_t *t)
{
    batch_iter_t it;
    batch_record_t rec;
    *t = (tally_t){.horizon = INT64_MAX};
    if (!batch_iter_init(&it, b->data, b->size))
        return false;
    while (batch_iter_next(&it, &rec)) {
        int64_t h;
        enum rec_fate f = record_fate(p, b, &rec, &h, &t->stamp);
        t->kept += f == FATE_KEEP;
        t->superseded += f == FATE_SUPERSEDED;
        t->expired += f == FATE_EXPIRED;
        if (h >= 0)
            t->horizon = MIN(t->horizon, h);
    }
    return !it.failed && t->kept + t->superseded + t->expired == b->records_count;
}

/* Compresses the records of the rewritten expansion at out[at..] with
 * codec, in place, and finishes its header (length, codec bits, CRC). */
static void recompress(int codec, buf_t *out, size_t at)
{
    buf_t z;
    buf_init(&z);
    size_t rec_at = at + BATCH_HEADER_BYTES;
    int rc = kcodec_compress(codec, out->data + rec_at, out->len - rec_at, &z);
    CK_ASSERT(rc == 0); /* compressing memory cannot fail but for memory */
    out->len = rec_at;
    buf_put(out, z.data, z.len);
    buf_free(&z);
    uint8_t *hd = out->data + at;
    size_t size = out->len - at;
    CK_ASSERT(size <= INT32_MAX);
    be32_store(hd + BATCH_OFF_LENGTH, (uint32_t)(size - BATCH_LOG_OVERHEAD));
    be16_store(hd + BATCH_OFF_ATTRIBUTES, (uint16_t)(be16_load(hd + BATCH_OFF_ATTRIBUTES) | codec));
    be32_store(hd + BATCH_OFF_CRC, batch_crc_compute(hd, size));
}

/* The verdict on an uncompressed batch (or an expansion). */
static enum compact_verdict verdict(cpass_t *p, const batch_info_t *b, bool last_of_producer, buf_t *out)
{
    tally_t t;
    if (!count_fates(p, b, &t)) {
        p->opaque_seen = true; /* R8 */
        return COMPACT_KEEP;
    }
    p->next_horizon_ms = MIN(p->next_horizon_ms, t.horizon);
    p->records_removed += t.superseded;
    p->tombstones_removed += t.expired;
    if (t.superseded + t.expired == 0 && !t.stamp)
        return COMPACT_KEEP;
    if (t.kept == 0 && !(b->producer_id >= 0 && last_of_producer))
        return COMPACT_DROP;
    rewrite(p, b, t.stamp, false, out);
    return COMPACT_REWRITE;
}

/* b's records belong to a transaction that was aborted (R10). */
static bool aborted_data(const cpass_t *p, const batch_info_t *b)
{
    if (!b->transactional || b->control || b->producer_id < 0)
        return false;
    uint32_t lo = 0, hi = p->naborted; /* the first marker at or after b */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (p->aborted[mid].last_offset < b->base_offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (uint32_t i = lo; i < p->naborted; i++)
        if (p->aborted[i].producer_id == b->producer_id)
            return p->aborted[i].first_offset <= b->base_offset;
    return false;
}

/* Records offset for b's producer in m; false when m is full. */
static bool note_producer(cpass_t *p, kmap_t *m, const batch_info_t *b, int64_t offset)
{
    if (p->txn_maps_full || !kmap_fits(m, 1, sizeof b->producer_id)) {
        p->txn_maps_full = true;
        return false;
    }
    kmap_put(m, &b->producer_id, sizeof b->producer_id, offset);
    return true;
}

/* R11: a marker whose transaction has no record left in the log. */
static enum compact_verdict marker_verdict(cpass_t *p, const batch_info_t *b, bool last_of_producer, buf_t *out)
{
    int64_t data = kmap_get(&p->txn_data, &b->producer_id, sizeof b->producer_id);
    int64_t prev = kmap_get(&p->txn_marks, &b->producer_id, sizeof b->producer_id);
    if (!note_producer(p, &p->txn_marks, b, b->base_offset) || data > prev || last_of_producer)
        return COMPACT_KEEP;
    bool has = (b->attributes & BATCH_ATTR_DELETE_HORIZON) != 0;
    int64_t h = has ? b->base_timestamp : stamp_horizon(p);
    if (has && p->now_ms >= h) {
        if (batch_control_type(b) == BATCH_CONTROL_ABORT) {
            p->dropped_aborts = xrealloc(p->dropped_aborts, (p->ndropped_aborts + 1) * sizeof *p->dropped_aborts);
            p->dropped_aborts[p->ndropped_aborts++] = b->base_offset;
        }
        p->records_removed += b->records_count;
        return COMPACT_DROP;
    }
    p->next_horizon_ms = MIN(p->next_horizon_ms, h);
    if (has)
        return COMPACT_KEEP;
    rewrite(p, b, true, true, out);
    return COMPACT_REWRITE;
}

#define TXN_UNDECIDED (-1)

/* R10, R11: transactional data and markers. TXN_UNDECIDED when the
 * transaction rules leave b to the usual ones. */
static int txn_verdict(cpass_t *p, const batch_info_t *b, bool last_of_producer, buf_t *out)
{
    if (b->control)
        return b->producer_id >= 0 && b->codec == BATCH_CODEC_NONE && batch_control_type(b) >= 0
                   ? marker_verdict(p, b, last_of_producer, out)
                   : COMPACT_KEEP; /* R7 */
    if (aborted_data(p, b) && !last_of_producer) {
        p->records_removed += b->records_count;
        return COMPACT_DROP; /* R10 */
    }
    if (b->transactional && b->producer_id >= 0)
        note_producer(p, &p->txn_data, b, batch_info_last_offset(b)); /* kept, whatever its records' fate */
    return TXN_UNDECIDED;
}

enum compact_verdict compact_batch(cpass_t *p, const batch_info_t *b, bool last_of_producer, buf_t *out)
{
    int tv = txn_verdict(p, b, last_of_producer, out);
    if (tv != TXN_UNDECIDED)
        return (enum compact_verdict)tv;
    if (b->codec == BATCH_CODEC_NONE)
        return verdict(p, b, last_of_producer, out);
    buf_t tmp;
    batch_info_t x;
    buf_init(&tmp);
    enum compact_verdict v = COMPACT_KEEP;
    if (!expand(b, &tmp, &x, true)) {
        p->opaque_seen = true; /* R8 */
    } else {
        size_t at = out->len;
        v = verdict(p, &x, last_of_producer, out);
        if (v == COMPACT_REWRITE && be32_load(out->data + at + BATCH_OFF_RECORDS_COUNT) > 0)
            recompress(b->codec, out, at);
    }
    buf_free(&tmp);
    return v;
}

/* ---- produce-side check ------------------------------------------------------------ */

/* KEYS_OK or KEYS_MISSING for an uncompressed batch (or expansion);
 * KEYS_UNREADABLE when its records do not parse. */
static enum plog_keys batch_keys(const batch_info_t *b)
{
    batch_iter_t it;
    batch_record_t rec;
    if (!batch_iter_init(&it, b->data, b->size))
        return PLOG_KEYS_UNREADABLE;
    int32_t n = 0;
    while (batch_iter_next(&it, &rec)) {
        if (!rec.key)
            return PLOG_KEYS_MISSING;
        n++;
    }
    return it.failed || n != b->records_count ? PLOG_KEYS_UNREADABLE : PLOG_KEYS_OK;
}

enum plog_keys plog_compact_check_keys(const uint8_t *data, size_t len)
{
    buf_t tmp;
    buf_init(&tmp);
    enum plog_keys k = PLOG_KEYS_OK;
    for (size_t pos = 0; pos < len && k == PLOG_KEYS_OK;) {
        batch_info_t b, x;
        if (batch_parse_header(data + pos, len - pos, &b) != BATCH_OK)
            break; /* batch_validate reports it */
        if (b.control)
            ;
        else if (b.codec == BATCH_CODEC_NONE)
            k = batch_keys(&b);
        else
            k = expand(&b, &tmp, &x, false) ? batch_keys(&x) : PLOG_KEYS_UNREADABLE;
        pos += b.size;
    }
    buf_free(&tmp);
    return k;
}
