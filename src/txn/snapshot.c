/*
 * snapshot.c - the producer-state snapshot of a partition and the rebuild
 * of the state from snapshot + log when the partition opens (txn.h).
 *
 * FORMAT
 * ======
 * DATA_DIR/<topic>-<partition>/chronik.producers, all integers big-endian:
 *
 *   off size field
 *   --- ---- ----------------------------------------------------------
 *     0    8 magic "CKPRODST"
 *     8    4 format version (2; version 1 files, without the two
 *                transaction fields below, are still read)
 *    12    4 producer count N (<= TXN_PRODUCERS_MAX)
 *    16    8 offset O: the state reflects every batch below O, none above
 *    24    8 wall-clock ms when written (informational)
 *    32    . N producers, least recently appended first, each:
 *              0  8 producer id (>= 0)
 *              8  2 producer epoch (>= 0)
 *             10  1 retained batch count B (<= TXN_BATCHES_RETAINED)
 *             11  1 reserved, 0
 *             12  8 time stamp of its last batch
 *             20  8 first offset of its open transaction (-1: none; v2)
 *             28  4 coordinator epoch of its last marker (-1: none; v2)
 *             32  B x 24 bytes, oldest first: first sequence (i32), last
 *                 sequence (i32), first offset (i64), last offset (i64)
 *   end-12 8 offset of the newest ABORT marker below O, -1 none (v2)
 *   end-4  4 CRC-32C of every byte before it
 *
 * A SNAPSHOT IS VALID when the magic, version and CRC match, the producers
 * exactly fill the file, no producer id repeats, and every retained batch
 * has first offset <= last offset < O, increasing within a producer, and
 * an open transaction's first offset is < O.
 *
 * WRITING. The state is encoded under the partition's produce lock, with
 * O = the log end at that moment (so no idempotent append is half done),
 * and written with sfs_write_atomic (tmp, fsync, rename, fsync dir):
 * every TXN_SNAPSHOT_INTERVAL_BYTES of appends and at clean close (after
 * the log itself is closed, so the log below O is durable by then).
 * Producers idle longer than producer.id.expiration.ms are dropped first.
 *
 * RECOVERY. A missing, unreadable or invalid snapshot is reported and the
 * state is rebuilt from the log start. A snapshot with O beyond the log end
 * describes writes a crash took back: it is ignored the same way. Else the
 * state is the snapshot plus the batches of the log from O (or from the log
 * start when retention has passed O) to the log end. The snapshot is only
 * an accelerator: the log is the truth.
 *
 * The replay also writes the aborted transactions it meets into the log's
 * transaction index (idempotently). When the log reports an index that
 * must be rebuilt from an offset R below O (storage.h,
 * plog_txn_index_rebuild_from; after an unclean shutdown R is the active
 * segment's base) and the snapshot knows of an ABORT marker at or after R,
 * the entries in [R, O) are missing: the snapshot is set aside and the
 * replay starts at the log start, since only that knows which
 * transactions were open at R. A partition that never saw an abort there
 * (every partition without transactions) keeps the cheap path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "base/log.h"
#include "base/util.h"
#include "txn/txn_int.h"

#define SNAP_MAGIC "CKPRODST"
#define SNAP_VERSION 2
#define SNAP_VERSION_NO_TXN 1
#define SNAP_HEADER_BYTES 32
#define SNAP_PRODUCER_BYTES 32
#define SNAP_BATCH_BYTES 24
#define SNAP_TRAILER_BYTES 4
#define SNAP_LAST_ABORT_BYTES 8 /* v2 */
#define SNAP_BYTES_MAX                                                                             \
    (SNAP_HEADER_BYTES +                                                                           \
     (size_t)TXN_PRODUCERS_MAX * (SNAP_PRODUCER_BYTES + TXN_BATCHES_RETAINED * SNAP_BATCH_BYTES) + \
     SNAP_LAST_ABORT_BYTES + SNAP_TRAILER_BYTES)

_Static_assert(sizeof(SNAP_MAGIC) - 1 == 8, "snapshot magic is 8 bytes");
_Static_assert(TXN_BATCHES_RETAINED <= UINT8_MAX, "batch count fits a byte");

static void encode_producer(const txn_producer *p, buf_t *out)
{
    buf_put_i64(out, p->id);
    buf_put_i16(out, p->epoch);
    buf_put_u8(out, p->nbatches);
    buf_put_u8(out, 0);
    buf_put_i64(out, p->last_timestamp);
    buf_put_i64(out, p->txn_first_offset);
    buf_put_i32(out, p->coordinator_epoch);
    for (int i = 0; i < p->nbatches; i++) {
        const txn_batch_meta *m = &p->batches[(p->head + i) % TXN_BATCHES_RETAINED];
        buf_put_i32(out, m->first_seq);
        buf_put_i32(out, m->last_seq);
        buf_put_i64(out, m->first_offset);
        buf_put_i64(out, m->last_offset);
    }
}

void txn_state_encode(txn_state *s, int64_t offset, buf_t *out)
{
    size_t start = out->len;
    buf_put(out, SNAP_MAGIC, 8);
    buf_put_i32(out, SNAP_VERSION);
    buf_put_i32(out, s->count);
    buf_put_i64(out, offset);
    buf_put_i64(out, clock_wall_ms());
    for (const txn_producer *p = s->lru_head; p; p = p->next) {
        CK_ASSERT(p->nbatches == 0 ||
                  p->batches[(p->head + p->nbatches - 1) % TXN_BATCHES_RETAINED].last_offset <
                      offset);
        encode_producer(p, out);
    }
    buf_put_i64(out, s->last_abort_offset);
    buf_put_i32(out, (int32_t)crc32c(0, out->data + start, out->len - start));
    atomic_store(&s->unsnapshotted_bytes, 0);
}

/* One producer entry; false when malformed. */
static bool decode_producer(txn_state *s, rd_t *r, int64_t offset, int32_t version)
{
    int64_t id, ts, txn_first = -1;
    int32_t coord_epoch = -1;
    int16_t epoch;
    uint8_t nb, reserved;
    if (!rd_i64(r, &id) || !rd_i16(r, &epoch) || !rd_u8(r, &nb) || !rd_u8(r, &reserved) ||
        !rd_i64(r, &ts))
        return false;
    if (version >= SNAP_VERSION && (!rd_i64(r, &txn_first) || !rd_i32(r, &coord_epoch)))
        return false;
    if (id < 0 || epoch < 0 || nb > TXN_BATCHES_RETAINED || txn_state_find(s, id) ||
        txn_first < -1 || txn_first >= offset || coord_epoch < -1)
        return false;
    txn_producer *p = txn_state_add(s, id, epoch);
    p->last_timestamp = ts;
    p->coordinator_epoch = coord_epoch;
    if (txn_first >= 0)
        txn_ongoing_begin(s, p, txn_first);
    int64_t prev_last = INT64_MIN;
    for (int i = 0; i < nb; i++) {
        txn_batch_meta m;
        if (!rd_i32(r, &m.first_seq) || !rd_i32(r, &m.last_seq) || !rd_i64(r, &m.first_offset) ||
            !rd_i64(r, &m.last_offset))
            return false;
        if (m.first_offset > m.last_offset || m.first_offset <= prev_last ||
            m.last_offset >= offset || m.first_seq < 0 || m.last_seq < 0)
            return false;
        prev_last = m.last_offset;
        txn_producer_push(p, &m);
    }
    return true;
}

static int decode_fail(txn_state *s)
{
    txn_state_clear(s);
    return STORAGE_ERR_FORMAT;
}

int txn_state_decode(txn_state *s, const uint8_t *p, size_t n, int64_t *offset)
{
    txn_state_clear(s);
    if (n < SNAP_HEADER_BYTES + SNAP_TRAILER_BYTES || n > SNAP_BYTES_MAX ||
        memcmp(p, SNAP_MAGIC, 8) != 0)
        return STORAGE_ERR_FORMAT;
    if (be32_load(p + n - SNAP_TRAILER_BYTES) != crc32c(0, p, n - SNAP_TRAILER_BYTES))
        return STORAGE_ERR_FORMAT;
    rd_t r;
    rd_init(&r, p + 8, n - 8 - SNAP_TRAILER_BYTES);
    int32_t version, count;
    int64_t off, written_ms;
    if (!rd_i32(&r, &version) || !rd_i32(&r, &count) || !rd_i64(&r, &off) ||
        !rd_i64(&r, &written_ms))
        return STORAGE_ERR_FORMAT;
    if ((version != SNAP_VERSION && version != SNAP_VERSION_NO_TXN) || count < 0 || count > TXN_PRODUCERS_MAX || off < 0)
        return STORAGE_ERR_FORMAT;
    for (int32_t i = 0; i < count; i++)
        if (!decode_producer(s, &r, off, version))
            return decode_fail(s);
    if (version >= SNAP_VERSION &&
        (!rd_i64(&r, &s->last_abort_offset) || s->last_abort_offset < -1 || s->last_abort_offset >= off))
        return decode_fail(s);
    if (rd_left(&r) != 0)
        return decode_fail(s);
    txn_state_assert(s);
    *offset = off;
    return STORAGE_OK;
}

int txn_snapshot_write(sfs_t *fs, const char *dir, const buf_t *snap)
{
    int r = sfs_write_atomic(fs, dir, TXN_SNAPSHOT_FILE, snap->data, snap->len);
    if (r < 0) {
        log_warn("txn", "cannot write the producer snapshot dir=%s err=\"%s\"", dir, strerror(-r));
        return STORAGE_ERR_IO;
    }
    return STORAGE_OK;
}

/* Loads the snapshot file into s; *offset = where the log replay starts
 * (-1: no usable snapshot, replay everything). */
static void load_snapshot(txn_state *s, sfs_t *fs, const char *dir, int64_t log_end,
                          int64_t *offset)
{
    char path[STORAGE_PATH_MAX];
    *offset = -1;
    if (snprintf(path, sizeof path, "%s/%s", dir, TXN_SNAPSHOT_FILE) >= (int)sizeof path)
        return;
    char *data = NULL;
    size_t len = 0;
    int r = sfs_read_small(fs, path, SNAP_BYTES_MAX, &data, &len);
    if (r == -ENOENT)
        return;
    int64_t off = -1;
    if (r < 0) {
        log_warn("txn",
                 "cannot read the producer snapshot path=%s err=\"%s\"; rebuilding from the log",
                 path, strerror(-r));
    } else if (txn_state_decode(s, (const uint8_t *)data, len, &off) != STORAGE_OK) {
        log_warn("txn", "invalid producer snapshot path=%s; rebuilding from the log", path);
    } else if (off > log_end) {
        log_warn(
            "txn",
            "producer snapshot beyond the log end path=%s offset=%lld log_end=%lld; rebuilding "
            "from the log",
            path, (long long)off, (long long)log_end);
        txn_state_clear(s);
    } else {
        *offset = off;
    }
    free(data);
}

/* Apply the stored batches in b that start at or after from. */
static void replay_chunk(txn_state *s, plog_t *log, const buf_t *b, int64_t from)
{
    for (size_t pos = 0; pos + BATCH_LOG_OVERHEAD <= b->len;) {
        batch_info_t bi;
        if (batch_parse_header(b->data + pos, b->len - pos, &bi) != BATCH_ERR_OK)
            break;
        if (bi.base_offset >= from && bi.producer_id >= 0 && bi.producer_epoch >= 0 &&
            (bi.control || bi.base_sequence >= 0))
            txn_state_apply_log(s, log, &bi, bi.base_offset, batch_info_last_offset(&bi));
        pos += bi.size;
    }
}

static int replay(txn_state *s, plog_t *log, int64_t from, int64_t end, int64_t *bytes)
{
    int64_t off = MAX(from, plog_log_start_offset(log));
    buf_t b;
    buf_init(&b);
    int rc = STORAGE_OK;
    while (off < end) {
        buf_reset(&b);
        int64_t next = off;
        rc = plog_read_copy(log, off, INT64_MAX, TXN_SCAN_CHUNK_BYTES, &b, &next);
        if (rc != STORAGE_OK)
            break;
        replay_chunk(s, log, &b, from);
        *bytes += (int64_t)b.len;
        if (next <= off)
            break;
        off = next;
    }
    buf_free(&b);
    return rc;
}

int txn_state_load(txn_state *s, plog_t *log, sfs_t *fs, const char *dir, int64_t now_ms,
                   int64_t expiration_ms)
{
    txn_state_clear(s);
    int64_t end = plog_log_end_offset(log), from;
    load_snapshot(s, fs, dir, end, &from);
    int64_t rebuild_from = plog_txn_index_rebuild_from(log);
    if (from > rebuild_from && s->last_abort_offset >= rebuild_from) {
        /* a transaction index is rebuilt from the state at its segment's
         * start, which only a replay from the log start knows */
        log_info("txn", "rebuilding transaction indexes dir=%s from_offset=%lld", dir, (long long)rebuild_from);
        txn_state_clear(s);
        from = -1;
    }
    int64_t bytes = 0;
    int rc = replay(s, log, from < 0 ? INT64_MIN : from, end, &bytes);
    if (rc == STORAGE_OK)
        rc = plog_txn_index_rebuilt(log); /* writes what the replay rebuilt */
    int32_t expired = txn_state_expire(s, now_ms, expiration_ms);
    txn_state_assert(s);
    if (s->count > 0 || bytes > 0)
        log_info("txn",
                 "producer state loaded dir=%s producers=%d snapshot_offset=%lld log_end=%lld "
                 "replayed_bytes=%lld expired=%d",
                 dir, s->count, (long long)from, (long long)end, (long long)bytes, expired);
    /* A long replay makes the next snapshot come sooner. */
    atomic_store(&s->unsnapshotted_bytes, bytes);
    return rc;
}
