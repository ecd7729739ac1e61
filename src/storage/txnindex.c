/*
 * txnindex.c - the aborted-transaction index of a segment (KIP-98): which
 * producers' transactions were aborted where, so that a consumer reading
 * committed data can skip their records.
 *
 * FORMAT
 * ======
 * DATA_DIR/<topic>-<partition>/<base>.txnindex, beside <base>.log (Kafka's
 * layout and Kafka's entry format): entries back to back, no header, each
 * TXN_ENTRY_BYTES (34) bytes, big-endian:
 *
 *   off size field
 *   --- ---- ----------------------------------------------------------
 *     0    2 version (0)
 *     2    8 producer id (>= 0)
 *    10    8 first offset: the transaction's first batch
 *    18    8 last offset: the ABORT marker's offset
 *    26    8 last stable offset once this transaction was closed
 *
 * An entry lives in the segment that holds its ABORT marker (last offset),
 * in the order of the markers.
 *
 * A FILE IS VALID when its size is a multiple of 34 and every entry has
 * version 0, producer id >= 0, 0 <= first offset <= last offset, base <=
 * last offset < the segment's end, 0 <= last stable offset <= last offset
 * + 1 (it may lie below the first offset: another transaction was still
 * open), and last offsets strictly increase.
 *
 * WRITING. The index is kept whole in memory; an entry is added when an
 * ABORT marker is appended (leader and follower alike, by the producer
 * state's replay too: adding is idempotent, an entry whose last offset is
 * not beyond the segment's newest is a repeat). Like the other indexes the
 * file is written whole when the segment is sealed and at clean close, and
 * synced with them (segment.c, FSYNC ORDER 2).
 *
 * RECOVERY. A trusted segment (segment.c, RECOVERY) loads its .txnindex
 * and checks it; a missing, torn or invalid file, and every segment that
 * recovery scanned (an unclean shutdown: the active segment's index was
 * only in memory), is rebuilt. plog_txn_index_rebuild_from reports the
 * lowest such segment's base R; the producer state (txn.h) replays the
 * log and re-adds the entries, from its snapshot when that knows of no
 * ABORT marker at or after R (partitions without transactions, and data
 * directories from before this index), else from the log start (it must
 * know which transactions were open at R); then plog_txn_index_rebuilt
 * writes the rebuilt files of sealed segments. Truncation drops the entries at or after the
 * new end; retention and compaction delete and rewrite the file with its
 * segment.
 *
 * Invariants (plog_check_locked):
 *  T1 a segment's entries have strictly increasing last offsets within
 *     [base, end);
 *  T2 first offset <= last offset for every entry.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "storage/storage_int.h"

#define TXN_ENTRY_VERSION 0
#define TXN_INDEX_FILE_MAX (64u << 20)

_Static_assert(PLOG_TXN_ENTRY_BYTES == 2 + 4 * 8, "Kafka's AbortedTxn entry is 34 bytes");

void plog_txn_entry_encode(const plog_aborted_txn_t *e, uint8_t out[PLOG_TXN_ENTRY_BYTES])
{
    be16_store(out, TXN_ENTRY_VERSION);
    be64_store(out + 2, (uint64_t)e->producer_id);
    be64_store(out + 10, (uint64_t)e->first_offset);
    be64_store(out + 18, (uint64_t)e->last_offset);
    be64_store(out + 26, (uint64_t)e->last_stable_offset);
}

int plog_txn_index_decode(const uint8_t *p, size_t n, int64_t base, int64_t end, plog_aborted_txn_t **out,
                          uint32_t *count)
{
    *out = NULL;
    *count = 0;
    if (n % PLOG_TXN_ENTRY_BYTES != 0 || n > TXN_INDEX_FILE_MAX)
        return STORAGE_ERR_FORMAT;
    uint32_t k = (uint32_t)(n / PLOG_TXN_ENTRY_BYTES);
    plog_aborted_txn_t *v = xmalloc((size_t)MAX(k, 1u) * sizeof *v);
    for (uint32_t i = 0; i < k; i++) {
        const uint8_t *q = p + (size_t)i * PLOG_TXN_ENTRY_BYTES;
        plog_aborted_txn_t e = {(int64_t)be64_load(q + 2), (int64_t)be64_load(q + 10),
                                (int64_t)be64_load(q + 18), (int64_t)be64_load(q + 26)};
        bool ok = be16_load(q) == TXN_ENTRY_VERSION && e.producer_id >= 0 && e.first_offset >= 0 &&
                  e.first_offset <= e.last_offset && e.last_offset >= base && e.last_offset < end &&
                  e.last_stable_offset >= 0 && e.last_stable_offset <= e.last_offset + 1 && (i == 0 || e.last_offset > v[i - 1].last_offset);
        if (!ok) {
            free(v);
            return STORAGE_ERR_FORMAT;
        }
        v[i] = e;
    }
    *out = v;
    *count = k;
    return STORAGE_OK;
}

void seg_txn_push(seg_t *s, const plog_aborted_txn_t *e)
{
    CK_ASSERT(e->first_offset <= e->last_offset);
    CK_ASSERT(s->txn_n == 0 || s->txns[s->txn_n - 1].last_offset < e->last_offset);
    if (s->txn_n == s->txn_cap) {
        s->txn_cap = s->txn_cap ? 2 * s->txn_cap : 8;
        s->txns = xrealloc(s->txns, s->txn_cap * sizeof *s->txns);
    }
    s->txns[s->txn_n++] = *e;
}

void seg_txn_truncate(seg_t *s, int64_t end)
{
    while (s->txn_n && s->txns[s->txn_n - 1].last_offset >= end)
        s->txn_n--;
}

uint8_t *seg_txn_encode(const seg_t *s, size_t *n)
{
    *n = (size_t)s->txn_n * PLOG_TXN_ENTRY_BYTES;
    uint8_t *buf = xmalloc(*n + 1);
    for (uint32_t i = 0; i < s->txn_n; i++)
        plog_txn_entry_encode(&s->txns[i], buf + (size_t)i * PLOG_TXN_ENTRY_BYTES);
    return buf;
}

int seg_load_txn_index(seg_t *s, const char *dir)
{
    char p[SEG_PATH_MAX];
    seg_path(p, sizeof p, dir, s->base, SEG_TXN_INDEX_EXT);
    char *data = NULL;
    size_t n = 0;
    int r = sfs_read_small(s->fs, p, TXN_INDEX_FILE_MAX, &data, &n);
    if (r < 0)
        return r;
    plog_aborted_txn_t *v;
    uint32_t k;
    r = plog_txn_index_decode((const uint8_t *)data, n, s->base, s->end, &v, &k);
    free(data);
    if (r != STORAGE_OK)
        return -EINVAL;
    free(s->txns);
    s->txns = v;
    s->txn_n = s->txn_cap = k;
    return 0;
}

/* Under mu: the segment holding offset, or NULL. */
static seg_t *seg_holding(plog_t *log, int64_t offset)
{
    for (int i = log->nsegs - 1; i >= 0; i--)
        if (log->segs[i]->base <= offset)
            return offset < log->segs[i]->end ? log->segs[i] : NULL;
    return NULL;
}

int plog_txn_index_add(plog_t *log, const plog_aborted_txn_t *e)
{
    CK_ASSERT(e->producer_id >= 0 && e->first_offset <= e->last_offset);
    pthread_mutex_lock(&log->mu);
    seg_t *s = seg_holding(log, e->last_offset);
    if (s && (s->txn_n == 0 || s->txns[s->txn_n - 1].last_offset < e->last_offset)) {
        seg_txn_push(s, e);
        s->txn_dirty = s->sealed; /* the active one is written when sealed */
    }
    pthread_mutex_unlock(&log->mu);
    return STORAGE_OK;
}

int plog_aborted_txns(plog_t *log, int64_t from, int64_t upto, plog_aborted_fn fn, void *arg)
{
    int n = 0;
    pthread_mutex_lock(&log->mu);
    for (int i = 0; i < log->nsegs; i++) {
        const seg_t *s = log->segs[i];
        if (s->end <= from)
            continue;
        for (uint32_t k = 0; k < s->txn_n; k++) {
            const plog_aborted_txn_t *e = &s->txns[k];
            if (e->last_offset >= from && e->first_offset < upto) {
                fn(arg, e);
                n++;
            }
        }
    }
    pthread_mutex_unlock(&log->mu);
    return n;
}

int64_t plog_txn_index_rebuild_from(plog_t *log)
{
    pthread_mutex_lock(&log->mu);
    int64_t from = log->txn_rebuild_from;
    pthread_mutex_unlock(&log->mu);
    return from;
}

void plog_txn_index_mark_rebuild(plog_t *log, seg_t *s)
{
    s->txn_n = 0;
    log->txn_rebuild_from = MIN(log->txn_rebuild_from, s->base);
}

int plog_txn_index_rebuilt(plog_t *log)
{
    pthread_mutex_lock(&log->mu);
    int n = 0;
    seg_t **dirty = xmalloc((size_t)MAX(log->nsegs, 1) * sizeof *dirty);
    for (int i = 0; i < log->nsegs; i++) {
        seg_t *s = log->segs[i];
        if (s->sealed && (s->txn_dirty || s->base >= log->txn_rebuild_from)) {
            seg_ref(s);
            dirty[n++] = s;
            s->txn_dirty = false;
        }
    }
    log->txn_rebuild_from = INT64_MAX;
    pthread_mutex_unlock(&log->mu);
    /* sealed segments' entries change only under the caller (the
     * partition's single writer): written without the lock */
    int rc = STORAGE_OK;
    for (int i = 0; i < n; i++) {
        if (rc == STORAGE_OK && seg_write_txn_index(dirty[i], log->dir, "", true) < 0)
            rc = STORAGE_ERR_IO;
        seg_unref(dirty[i]);
    }
    free(dirty);
    if (rc != STORAGE_OK)
        log_warn("storage", "cannot write the rebuilt transaction indexes dir=%s", log->dir);
    return rc;
}

void seg_txn_check(const seg_t *s)
{
    for (uint32_t k = 0; k < s->txn_n; k++) {
        const plog_aborted_txn_t *e = &s->txns[k];
        CK_ASSERT(e->first_offset <= e->last_offset);
        CK_ASSERT(e->last_offset >= s->base && e->last_offset < s->end);
        CK_ASSERT(k == 0 || s->txns[k - 1].last_offset < e->last_offset);
    }
}
