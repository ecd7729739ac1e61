/*
 * plog_trunc.c - cutting a partition log from the end (replication) and
 * looking offsets up by timestamp (ListOffsets).
 *
 * Truncation is rare (a follower after a leader change), so it does its
 * file work under the log lock; only the final fdatasync and the
 * checkpoint writes happen outside it, before the call returns and thus
 * before any new append (segment.c, fsync order 4).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "storage/storage_int.h"

/* Deletes segments [from, nsegs) (files and memory), newest first, so a
 * crash in between leaves a contiguous prefix of the log. */
static void drop_tail_locked(plog_t *log, int from)
{
    for (int i = log->nsegs - 1; i >= from; i--) {
        seg_unlink_files(log->fs, log->dir, log->segs[i]->base);
        seg_unref(log->segs[i]);
    }
    log->nsegs = from;
}

/* Recomputes max timestamp and index bookkeeping of a segment cut at its
 * current size. */
static int recompute_tail(seg_t *s)
{
    uint64_t from = s->idx_n ? s->idx[s->idx_n - 1].pos : 0;
    s->max_ts = s->tidx_n ? s->tidx[s->tidx_n - 1].ts : -1;
    s->max_ts_offset = s->tidx_n ? s->base + s->tidx[s->tidx_n - 1].rel : -1;
    seg_scan_t sc;
    int r = seg_walk(s, from, s->base, false, NULL, NULL, &sc);
    if (r == 0 && sc.max_ts > s->max_ts) {
        s->max_ts = sc.max_ts;
        s->max_ts_offset = sc.max_ts_offset;
    }
    s->bytes_since_index = s->size - from;
    return r;
}

/* Cuts segment s at pos; new_end is the offset after what remains. */
static int cut_locked(plog_t *log, seg_t *s, uint64_t pos, int64_t new_end)
{
    int r = log->fs->ftruncate(log->fs, s->fd, pos);
    if (r < 0) {
        plog_set_error(log, STORAGE_ERR_FAILED, "truncating %020" PRId64 ".log failed: %s", s->base,
                       strerror(-r));
        return STORAGE_ERR_IO;
    }
    log_info("storage", "truncated segment=%020" PRId64 " position=%" PRIu64 " bytes=%" PRIu64 " dir=%s",
             s->base, pos, s->size - pos, log->dir);
    s->size = pos;
    s->alloc = pos;
    s->dropped = MIN(s->dropped, pos);
    s->synced = MIN(s->synced, pos);
    while (s->idx_n && s->idx[s->idx_n - 1].pos >= pos)
        s->idx_n--;
    while (s->tidx_n && s->base + s->tidx[s->tidx_n - 1].rel >= new_end)
        s->tidx_n--;
    seg_txn_truncate(s, new_end);
    s->end = new_end;
    s->sealed = false;
    s->idx_unsynced = false;
    if (s->size == 0)
        s->roll_ref_ms = -1;
    char p[SEG_PATH_MAX];
    seg_path(p, sizeof p, log->dir, s->base, ".index");
    log->fs->unlink(log->fs, p);
    seg_path(p, sizeof p, log->dir, s->base, ".timeindex");
    log->fs->unlink(log->fs, p);
    seg_path(p, sizeof p, log->dir, s->base, SEG_TXN_INDEX_EXT);
    log->fs->unlink(log->fs, p);
    return recompute_tail(s) < 0 ? STORAGE_ERR_IO : STORAGE_OK;
}

/* Finds where to cut for offset: segment index, position, new end. */
static int find_cut_locked(plog_t *log, int64_t offset, int *si, uint64_t *pos, int64_t *new_end)
{
    int i = 0;
    while (i + 1 < log->nsegs && log->segs[i + 1]->base <= offset)
        i++;
    seg_t *s = log->segs[i];
    walker_t w;
    batch_info_t b;
    walker_init(&w, s, s->size);
    int r = walker_find(&w, seg_idx_floor(s, offset), offset, pos, &b);
    walker_free(&w);
    if (r < 0)
        return STORAGE_ERR_IO;
    if (r == 1) { /* offset lies after this segment's data */
        *pos = s->size;
        *new_end = s->end;
    } else {
        *new_end = *pos == 0 ? s->base : b.base_offset;
    }
    if (*pos == 0 && i > 0) { /* nothing of segment i stays */
        i--;
        *pos = log->segs[i]->size;
        *new_end = log->segs[i]->end;
    }
    *si = i;
    return STORAGE_OK;
}

static int truncate_fully_locked(plog_t *log, int64_t offset)
{
    seg_t *keep = NULL;
    for (int i = 0; i < log->nsegs; i++)
        if (log->segs[i]->base == offset)
            keep = log->segs[i];
    for (int i = log->nsegs - 1; i >= 0; i--) { /* newest first */
        if (log->segs[i] == keep)
            continue;
        seg_unlink_files(log->fs, log->dir, log->segs[i]->base);
        seg_unref(log->segs[i]);
    }
    log->nsegs = 0;
    int r = STORAGE_OK;
    if (keep) {
        plog_push_seg(log, keep);
        r = cut_locked(log, keep, 0, offset);
    } else if (seg_create(log->fs, log->dir, offset, &keep) < 0) {
        keep = seg_new(log->fs, offset); /* placeholder, the log is failed */
        plog_set_error(log, STORAGE_ERR_FAILED, "creating segment %020" PRId64 " failed", offset);
        r = STORAGE_ERR_IO;
        plog_push_seg(log, keep);
    } else {
        plog_push_seg(log, keep);
    }
    log->log_start = log->leo = log->flushed = log->recovery_point = offset;
    log->nepochs = 0;
    log->epochs_dirty = true;
    log->dir_unsynced = true;
    log->trunc_gen++;
    log_info("storage", "log emptied, restarting at offset=%" PRId64 " dir=%s", offset, log->dir);
    return r;
}

static int truncate_locked(plog_t *log, int64_t offset)
{
    if (offset <= log->log_start)
        return truncate_fully_locked(log, offset);
    int i;
    uint64_t pos;
    int64_t new_end;
    int r = find_cut_locked(log, offset, &i, &pos, &new_end);
    if (r != STORAGE_OK)
        return r;
    drop_tail_locked(log, i + 1);
    r = cut_locked(log, log->segs[i], pos, new_end);
    log->leo = log->segs[i]->end;
    log->flushed = MIN(log->flushed, log->leo);
    log->recovery_point = MIN(log->recovery_point, log->leo);
    log->log_start = MIN(log->log_start, log->leo);
    log->trunc_gen++;
    epochs_truncate_end(log, log->leo);
    return r;
}

/* After the in-memory cut: persist the lowered recovery point and epochs,
 * then make the cut durable. */
static int truncate_persist(plog_t *log)
{
    pthread_mutex_lock(&log->mu);
    seg_t *s = log->segs[log->nsegs - 1];
    seg_ref(s);
    bool epochs = log->epochs_dirty;
    pthread_mutex_unlock(&log->mu);
    int r = plog_write_checkpoint(log);
    if (r == STORAGE_OK && epochs)
        r = plog_write_epochs(log);
    if (r == STORAGE_OK && (log->fs->fdatasync(log->fs, s->fd) < 0 ||
                            log->fs->fsync_dir(log->fs, log->dir) < 0))
        r = STORAGE_ERR_IO;
    pthread_mutex_lock(&log->mu);
    if (r == STORAGE_OK)
        s->synced = s->size;
    else
        plog_set_error(log, STORAGE_ERR_FAILED, "making a truncation durable failed");
    pthread_mutex_unlock(&log->mu);
    seg_unref(s);
    return r;
}

int plog_truncate(plog_t *log, int64_t offset, int64_t *new_end)
{
    pthread_mutex_lock(&log->mu);
    int r = log->state;
    bool changed = r == STORAGE_OK && offset < log->leo;
    if (changed)
        r = truncate_locked(log, offset);
    if (r == STORAGE_OK)
        plog_check_locked(log);
    if (new_end)
        *new_end = log->leo;
    pthread_mutex_unlock(&log->mu);
    if (r == STORAGE_OK && changed)
        r = truncate_persist(log);
    return r;
}

int plog_truncate_fully(plog_t *log, int64_t offset)
{
    if (offset < 0)
        return STORAGE_ERR_INVALID;
    pthread_mutex_lock(&log->mu);
    int r = log->state;
    if (r == STORAGE_OK)
        r = truncate_fully_locked(log, offset);
    if (r == STORAGE_OK)
        plog_check_locked(log);
    pthread_mutex_unlock(&log->mu);
    if (r == STORAGE_OK)
        r = truncate_persist(log);
    return r;
}

/* ---- timestamps ------------------------------------------------------------ */

void plog_max_timestamp(plog_t *log, int64_t *ts, int64_t *offset)
{
    pthread_mutex_lock(&log->mu);
    *ts = *offset = -1;
    for (int i = 0; i < log->nsegs; i++) {
        const seg_t *s = log->segs[i];
        if (s->max_ts > *ts && s->max_ts_offset >= log->log_start) {
            *ts = s->max_ts;
            *offset = s->max_ts_offset;
        }
    }
    pthread_mutex_unlock(&log->mu);
}

/* In an uncompressed batch: the first record at or after min_offset with a
 * timestamp >= ts. */
static bool record_for_ts(seg_t *s, uint64_t pos, const batch_info_t *b, int64_t ts, int64_t min_offset,
                          int64_t *offset, int64_t *found)
{
    uint8_t *data = xmalloc(b->size);
    bool ok = false;
    batch_iter_t it;
    batch_record_t rec;
    if (sfs_pread_full(s->fs, s->fd, data, b->size, pos) == 0 && batch_iter_init(&it, data, b->size)) {
        while (!ok && batch_iter_next(&it, &rec)) {
            int64_t rts = b->log_append_time ? b->max_timestamp : rec.timestamp;
            if (rts >= ts && rec.offset >= min_offset) {
                *offset = rec.offset;
                *found = rts;
                ok = true;
            }
        }
    }
    free(data);
    return ok;
}

/* Walks segment s from pos for the first batch reaching ts. */
static int scan_for_ts(seg_t *s, uint64_t from, uint64_t limit, int64_t ts, int64_t min_offset,
                       int64_t *offset, int64_t *found)
{
    walker_t w;
    batch_info_t b;
    walker_init(&w, s, limit);
    int r;
    for (uint64_t pos = from; (r = walker_header(&w, pos, &b)) == 0; pos += b.size) {
        if (b.max_timestamp < ts || batch_info_last_offset(&b) < min_offset)
            continue;
        if (b.codec != BATCH_CODEC_NONE || !record_for_ts(s, pos, &b, ts, min_offset, offset, found)) {
            *offset = MAX(b.base_offset, min_offset);
            *found = b.max_timestamp;
        }
        break;
    }
    walker_free(&w);
    return r < 0 ? STORAGE_ERR_IO : STORAGE_OK;
}

int plog_offset_for_timestamp(plog_t *log, int64_t ts, int64_t *offset, int64_t *found_ts)
{
    *offset = *found_ts = -1;
    pthread_mutex_lock(&log->mu);
    if (log->state == STORAGE_ERR_OFFLINE) {
        pthread_mutex_unlock(&log->mu);
        return STORAGE_ERR_OFFLINE;
    }
    seg_t *s = NULL;
    for (int i = 0; i < log->nsegs && !s; i++)
        if (log->segs[i]->end > log->log_start && log->segs[i]->max_ts >= ts)
            s = log->segs[i];
    if (!s) {
        pthread_mutex_unlock(&log->mu);
        return STORAGE_OK;
    }
    uint32_t k = 0, hi = s->tidx_n; /* k: entries with ts < target */
    while (k < hi) {
        uint32_t mid = k + (hi - k) / 2;
        if (s->tidx[mid].ts < ts)
            k = mid + 1;
        else
            hi = mid;
    }
    uint64_t from = k ? seg_idx_floor(s, s->base + s->tidx[k - 1].rel) : 0;
    uint64_t limit = s->size;
    int64_t min_offset = log->log_start;
    seg_ref(s);
    pthread_mutex_unlock(&log->mu);
    int r = scan_for_ts(s, from, limit, ts, min_offset, offset, found_ts);
    seg_unref(s);
    return r;
}
