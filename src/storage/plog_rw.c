/*
 * plog_rw.c - a partition log in use: append, read, roll, retention,
 * delete-records, truncation, timestamp lookups (format in segment.c).
 *
 * The log mutex covers in-memory state and the single write() of an
 * append. Reads take a reference on the segment and do their preads
 * without the lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "storage/storage_int.h"

/* ---- helpers --------------------------------------------------------------- */

static seg_t *active(const plog_t *log) { return log->segs[log->nsegs - 1]; }

/* Index of the segment holding offset (or the first one after a gap). */
static int seg_index_for(const plog_t *log, int64_t offset)
{
    int lo = 0, hi = log->nsegs; /* first segment with base > offset */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (log->segs[mid]->base <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    int i = lo > 0 ? lo - 1 : 0;
    while (i + 1 < log->nsegs && log->segs[i]->end <= offset)
        i++;
    return i;
}

static int writable_locked(const plog_t *log)
{
    if (log->state == STORAGE_OK && log->nospace && clock_mono_ms() < log->nospace_until_ms)
        return STORAGE_ERR_NO_SPACE;
    return log->state;
}

static bool is_nospace(int err) { return err == -ENOSPC || err == -EDQUOT; }

/* Under the lock, after a write that found the disk full: refuse appends
 * for a backoff (storage.h, plog_space_short). */
static int nospace_locked(plog_t *log, const char *what, int64_t base)
{
    int64_t b = log->nospace_backoff_ms;
    log->nospace_backoff_ms = b ? MIN(b * 2, PLOG_NOSPACE_BACKOFF_MAX_MS) : PLOG_NOSPACE_BACKOFF_MIN_MS;
    log->nospace_until_ms = clock_mono_ms() + log->nospace_backoff_ms;
    if (!log->nospace)
        log_warn("storage", "disk full: %s %020" PRId64 " failed, writes refused until space returns dir=%s",
                 what, base, log->dir);
    log->nospace = true;
    return STORAGE_ERR_NO_SPACE;
}

static void space_back_locked(plog_t *log)
{
    if (!log->nospace)
        return;
    log->nospace = false;
    log->nospace_backoff_ms = 0;
    log_info("storage", "space returned, writes resumed dir=%s", log->dir);
}

bool plog_space_short(plog_t *log)
{
    pthread_mutex_lock(&log->mu);
    bool r = log->nospace;
    pthread_mutex_unlock(&log->mu);
    return r;
}

typedef struct plan {
    int32_t batches;
    int64_t offsets, records, first_base, last_offset;
} plan_t;

/* Walks the headers of a payload; replica payloads are CRC-checked and
 * must carry increasing offsets. */
static int plan_payload(const uint8_t *data, size_t len, bool replica, plan_t *p)
{
    *p = (plan_t){.first_base = -1, .last_offset = -1};
    if (len == 0)
        return STORAGE_ERR_INVALID;
    for (size_t pos = 0; pos < len;) {
        batch_info_t b;
        enum batch_err e = replica ? batch_check_stored(data + pos, len - pos, &b)
                                   : batch_parse_header(data + pos, len - pos, &b);
        if (e != BATCH_OK || b.last_offset_delta < 0 || b.records_count < 0)
            return STORAGE_ERR_INVALID;
        if (replica && p->batches && b.base_offset <= p->last_offset)
            return STORAGE_ERR_INVALID;
        if (p->batches == 0)
            p->first_base = b.base_offset;
        p->last_offset = batch_info_last_offset(&b);
        p->batches++;
        p->offsets += (int64_t)b.last_offset_delta + 1;
        p->records += b.records_count;
        pos += b.size;
    }
    return STORAGE_OK;
}

/* ---- roll --------------------------------------------------------------- */

/* Seals the active segment and starts one at new_base (>= log end). An
 * empty active segment is replaced instead. */
static int roll_locked(plog_t *log, int64_t new_base)
{
    seg_t *s = active(log), *n;
    CK_ASSERT(new_base >= log->leo);
    if (s->size == 0 && new_base == s->base)
        return STORAGE_OK;
    if (s->size > 0) {
        uint32_t tidx_n = s->tidx_n;
        if (s->max_ts >= 0)
            seg_tidx_push(s, s->max_ts, (uint32_t)(s->max_ts_offset - s->base));
        int w = seg_write_indexes(s, log->dir, false);
        if (w < 0)
            s->tidx_n = tidx_n; /* the roll is retried later, or never */
        if (is_nospace(w))
            return nospace_locked(log, "writing the indexes of segment", s->base);
        if (w < 0) {
            plog_set_error(log, STORAGE_ERR_FAILED, "writing indexes of %020" PRId64 " failed", s->base);
            return STORAGE_ERR_IO;
        }
        int r = seg_trim(s);
        if (r < 0) {
            plog_set_error(log, STORAGE_ERR_FAILED, "cutting the zero tail of %020" PRId64 " failed: %s",
                           s->base, strerror(-r));
            return STORAGE_ERR_IO;
        }
    }
    int r = seg_create(log->fs, log->dir, new_base, &n);
    if (is_nospace(r)) {
        seg_unlink_files(log->fs, log->dir, new_base);
        return nospace_locked(log, "creating segment", new_base);
    }
    if (r < 0) {
        plog_set_error(log, STORAGE_ERR_FAILED, "creating segment %020" PRId64 " failed: %s", new_base,
                       strerror(-r));
        return STORAGE_ERR_IO;
    }
    if (s->size == 0) { /* replace the empty active segment */
        seg_unlink_files(log->fs, log->dir, s->base);
        log->nsegs--;
        seg_unref(s);
    } else {
        s->sealed = true;
        s->idx_unsynced = true;
    }
    plog_push_seg(log, n);
    log->leo = new_base;
    log->dir_unsynced = true;
    log_info("storage", "rolled segment base=%020" PRId64 " dir=%s", new_base, log->dir);
    return STORAGE_OK;
}

static bool roll_due(const plog_t *log, const seg_t *s, size_t len, int64_t now)
{
    if (s->size == 0)
        return false;
    return s->size + len > (uint64_t)log->cfg.segment_bytes ||
           (s->roll_ref_ms >= 0 && now - s->roll_ref_ms > log->cfg.roll_ms) ||
           (int64_t)(s->idx_n + 1) * IDX_ENTRY_BYTES > log->cfg.index_bytes;
}

static int prepare_locked(plog_t *log, size_t len, const plan_t *p)
{
    if (len > (uint64_t)log->cfg.segment_bytes)
        return STORAGE_ERR_TOO_LARGE;
    int64_t start = MAX(p->first_base, log->leo);
    seg_t *s = active(log);
    bool overflow = p->last_offset - s->base > INT32_MAX;
    if (!overflow && !roll_due(log, s, len, plog_now_ms(log)))
        return STORAGE_OK;
    int64_t base = p->last_offset - log->leo > INT32_MAX ? start : log->leo;
    if (p->last_offset - base > INT32_MAX)
        return STORAGE_ERR_INVALID;
    return roll_locked(log, base);
}

int plog_roll(plog_t *log)
{
    pthread_mutex_lock(&log->mu);
    int r = writable_locked(log);
    if (r == STORAGE_OK && active(log)->size > 0)
        r = roll_locked(log, log->leo);
    pthread_mutex_unlock(&log->mu);
    return r;
}

int plog_maybe_roll(plog_t *log)
{
    pthread_mutex_lock(&log->mu);
    int r = writable_locked(log);
    seg_t *s = active(log);
    if (r == STORAGE_OK && s->size > 0 && s->roll_ref_ms >= 0 &&
        plog_now_ms(log) - s->roll_ref_ms > log->cfg.roll_ms)
        r = roll_locked(log, log->leo);
    pthread_mutex_unlock(&log->mu);
    return r;
}

/* ---- append ---------------------------------------------------------------- */

/* Keeps zeros written ahead of small appends (segment.c, PREALLOCATED
 * TAIL); a failure only costs the optimisation. */
static void preallocate_locked(plog_t *log, seg_t *s, size_t len)
{
    uint64_t ahead = (uint64_t)log->cfg.preallocate_bytes;
    if (ahead == 0 || len >= PLOG_PREALLOCATE_SMALL_APPEND || s->alloc >= s->size + ahead / 4)
        return;
    uint64_t upto = MIN(s->size + ahead, (uint64_t)log->cfg.segment_bytes);
    if (upto <= s->alloc)
        return;
    int r = seg_preallocate(s, upto);
    if (r < 0 && !is_nospace(r)) {
        log_warn("storage", "could not write zeros ahead in %020" PRId64 ".log: %s dir=%s", s->base,
                 strerror(-r), log->dir);
        seg_trim(s);
    } else if (r < 0) {
        seg_trim(s); /* a full disk: no zeros ahead, the data itself may still fit */
    }
}

/* Writes the payload at the end of the active segment and indexes it. */
static int write_locked(plog_t *log, const uint8_t *data, size_t len, const plan_t *p,
                        plog_append_result_t *res)
{
    seg_t *s = active(log);
    uint64_t pos0 = s->size;
    int r = sfs_pwrite_full(log->fs, s->fd, data, len, pos0);
    if (is_nospace(r)) {
        /* cut what part of the payload reached the file: the log ends at
         * its last whole batch, as before the call */
        int t = log->fs->ftruncate(log->fs, s->fd, pos0);
        if (t == 0) {
            s->alloc = pos0;
            s->trim_unsynced = true; /* the file's size changed: the next sync is an fsync */
            s->trims++;
            return nospace_locked(log, "append to segment", s->base);
        }
        r = t;
    }
    if (r < 0) {
        plog_set_error(log, STORAGE_ERR_FAILED, "append to %020" PRId64 ".log failed: %s", s->base,
                       strerror(-r));
        return STORAGE_ERR_IO;
    }
    int64_t base = -1;
    for (size_t pos = 0; pos < len;) {
        batch_info_t b;
        CK_ASSERT(batch_parse_header(data + pos, len - pos, &b) == BATCH_OK);
        if (base < 0)
            base = b.base_offset;
        seg_note_batch(s, &b, pos0 + pos, log->cfg.index_interval_bytes);
        plog_epoch_assign_locked(log, b.leader_epoch, b.base_offset);
        pos += b.size;
    }
    s->size += len;
    s->alloc = MAX(s->alloc, s->size);
    space_back_locked(log);
    preallocate_locked(log, s, len);
    int64_t now = plog_now_ms(log);
    if (s->roll_ref_ms < 0)
        s->roll_ref_ms = now;
    if (log->oldest_unflushed_ms < 0)
        log->oldest_unflushed_ms = now;
    log->unflushed_msgs += p->records;
    log->leo = s->end;
    *res = (plog_append_result_t){.base_offset = base, .last_offset = s->end - 1,
                                  .log_end_offset = log->leo, .log_start_offset = log->log_start,
                                  .batches = p->batches, .records = p->records};
    return STORAGE_OK;
}

/* Unlocks; wake: an append whose caller does not sync the log itself
 * wakes the flusher when the log is due. */
static void after_append(plog_t *log, bool wake)
{
    bool kick = wake && log->flusher &&
                (log->cfg.flush_messages <= 1 || log->unflushed_msgs >= log->cfg.flush_messages);
    flusher_t *f = log->flusher;
    pthread_mutex_unlock(&log->mu);
    if (kick)
        flusher_notify(f, log);
}

int plog_append(plog_t *log, uint8_t *data, size_t len, int32_t leader_epoch, plog_append_result_t *res)
{
    plan_t p;
    int r = plan_payload(data, len, false, &p);
    if (r != STORAGE_OK)
        return r;
    pthread_mutex_lock(&log->mu);
    r = writable_locked(log);
    if (r == STORAGE_OK && log->nepochs && leader_epoch < log->epochs[log->nepochs - 1].epoch)
        r = STORAGE_ERR_INVALID;
    p.first_base = log->leo;
    p.last_offset = log->leo + p.offsets - 1;
    if (r == STORAGE_OK)
        r = prepare_locked(log, len, &p);
    if (r != STORAGE_OK) {
        pthread_mutex_unlock(&log->mu);
        return r;
    }
    int64_t off = log->leo;
    for (size_t pos = 0; pos < len;) {
        uint8_t *q = data + pos;
        batch_set_base_offset(q, off);
        batch_set_leader_epoch(q, leader_epoch);
        off += (int64_t)(int32_t)be32_load(q + BATCH_OFF_LAST_OFFSET_DELTA) + 1;
        pos += be32_load(q + BATCH_OFF_LENGTH) + BATCH_LOG_OVERHEAD;
    }
    r = write_locked(log, data, len, &p, res);
    after_append(log, true);
    return r;
}

static int append_replica(plog_t *log, const uint8_t *data, size_t len, bool wake, plog_append_result_t *res)
{
    plan_t p;
    int r = plan_payload(data, len, true, &p);
    if (r != STORAGE_OK)
        return r;
    pthread_mutex_lock(&log->mu);
    r = writable_locked(log);
    if (r == STORAGE_OK && p.first_base < log->leo)
        r = STORAGE_ERR_INVALID;
    if (r == STORAGE_OK)
        r = prepare_locked(log, len, &p);
    if (r != STORAGE_OK) {
        pthread_mutex_unlock(&log->mu);
        return r;
    }
    r = write_locked(log, data, len, &p, res);
    after_append(log, wake);
    return r;
}

int plog_append_replica(plog_t *log, const uint8_t *data, size_t len, plog_append_result_t *res)
{
    return append_replica(log, data, len, true, res);
}

int plog_append_replica_nowake(plog_t *log, const uint8_t *data, size_t len, plog_append_result_t *res)
{
    return append_replica(log, data, len, false, res);
}

/* ---- read ----------------------------------------------------------------- */

/* Position of the last index entry in (after, upto] whose offset is below
 * max_offset; 0 when none. */
static uint64_t idx_jump(const seg_t *s, uint64_t after, uint64_t upto, int64_t max_offset)
{
    uint32_t lo = 0, hi = s->idx_n; /* first entry with pos > upto */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->idx[mid].pos <= upto)
            lo = mid + 1;
        else
            hi = mid;
    }
    while (lo > 0 && s->idx[lo - 1].pos > after) {
        if (s->base + s->idx[lo - 1].rel < max_offset)
            return s->idx[lo - 1].pos;
        lo--;
    }
    return 0;
}

void plog_read_release(plog_read_result_t *res)
{
    if (res->seg_ref)
        seg_unref(res->seg_ref);
    res->seg_ref = NULL;
    res->fd = -1;
}

/* Extends [start, *end) over whole batches within limit and max_offset. */
static int extend_range(plog_t *log, walker_t *w, uint64_t limit, int64_t max_offset, uint64_t *end,
                        int64_t *next)
{
    pthread_mutex_lock(&log->mu);
    uint64_t jump = idx_jump(w->s, *end, limit, max_offset);
    pthread_mutex_unlock(&log->mu);
    uint64_t pos = *end;
    batch_info_t b;
    if (jump > *end) { /* whole batches lie between *end and the entry */
        int r = walker_header(w, jump, &b);
        if (r < 0)
            return r;
        if (r == 0) {
            pos = *end = jump;
            *next = b.base_offset;
        }
    }
    for (;;) {
        int r = walker_header(w, pos, &b);
        if (r < 0)
            return r;
        if (r == 1 || pos + b.size > limit || batch_info_last_offset(&b) >= max_offset)
            return 0;
        pos += b.size;
        *end = pos;
        *next = batch_info_last_offset(&b) + 1;
    }
}

/* Under the lock: checks the offset and picks the segment. 1 = empty. */
static int read_locate(plog_t *log, int64_t offset, int64_t *max_offset, plog_read_result_t *res,
                       seg_t **seg, uint64_t *from, uint64_t *limit)
{
    res->log_start_offset = log->log_start;
    res->log_end_offset = log->leo;
    if (log->state == STORAGE_ERR_OFFLINE)
        return STORAGE_ERR_OFFLINE;
    if (offset < log->log_start || offset > log->leo)
        return STORAGE_ERR_OUT_OF_RANGE;
    if (offset >= log->leo)
        return 1;
    if (log->damaged_from >= 0 && offset >= log->damaged_from && offset < log->damaged_to)
        return STORAGE_ERR_DAMAGED; /* never served (scrub.c) */
    if (log->damaged_from >= 0 && offset < log->damaged_from)
        *max_offset = MIN(*max_offset, log->damaged_from);
    if (offset >= *max_offset)
        return 1;
    seg_t *s = log->segs[seg_index_for(log, offset)];
    if (s->end <= offset)
        return 1;
    seg_ref(s);
    *seg = s;
    *from = seg_idx_floor(s, offset);
    *limit = s->size;
    return 0;
}

int plog_read(plog_t *log, int64_t offset, int64_t max_offset, uint32_t max_bytes, plog_read_result_t *res)
{
    *res = (plog_read_result_t){.fd = -1, .first_offset = -1, .next_offset = offset, .fs = log->fs};
    seg_t *s = NULL;
    uint64_t from = 0, limit = 0, start;
    pthread_mutex_lock(&log->mu);
    int r = read_locate(log, offset, &max_offset, res, &s, &from, &limit);
    pthread_mutex_unlock(&log->mu);
    if (r != 0)
        return r == 1 ? STORAGE_OK : r;
    walker_t w;
    batch_info_t b;
    walker_init(&w, s, limit);
    r = walker_find(&w, from, offset, &start, &b);
    if (r == 0 && batch_info_last_offset(&b) < max_offset) {
        uint64_t end = start + b.size;
        int64_t next = batch_info_last_offset(&b) + 1;
        uint64_t cap = MIN(limit, start + MAX((uint64_t)max_bytes, (uint64_t)b.size));
        r = extend_range(log, &w, cap, max_offset, &end, &next);
        res->fd = s->fd;
        res->position = start;
        res->length = (uint32_t)(end - start);
        res->first_offset = b.base_offset;
        res->next_offset = next;
        res->seg_ref = s;
        s = NULL;
    }
    walker_free(&w);
    if (s)
        seg_unref(s);
    return r < 0 && !res->seg_ref ? STORAGE_ERR_IO : STORAGE_OK;
}

/* Marks the log damaged after a bad batch was found in live data: the
 * batches from the one at offset to the end of what was read. */
static void read_corrupt(plog_t *log, int64_t offset, int64_t next, enum batch_err e)
{
    pthread_mutex_lock(&log->mu);
    plog_mark_damaged_locked(log, offset, MAX(next, offset + 1), "corrupt batch near offset %" PRId64 " on read: %s",
                             offset, batch_strerror(e));
    pthread_mutex_unlock(&log->mu);
}

int plog_read_copy(plog_t *log, int64_t offset, int64_t max_offset, uint32_t max_bytes, struct buf *out,
                   int64_t *next_offset)
{
    plog_read_result_t res;
    int r = plog_read(log, offset, max_offset, max_bytes, &res);
    *next_offset = res.next_offset;
    if (r != STORAGE_OK || res.length == 0) {
        plog_read_release(&res);
        return r;
    }
    size_t at = out->len;
    uint8_t *p = buf_extend(out, res.length);
    if (sfs_pread_full(log->fs, res.fd, p, res.length, res.position) < 0) {
        out->len = at;
        r = STORAGE_ERR_IO;
    }
    for (size_t pos = 0; r == STORAGE_OK && pos < res.length;) {
        batch_info_t b;
        enum batch_err e = batch_check_stored(p + pos, res.length - pos, &b);
        if (e != BATCH_OK) {
            read_corrupt(log, b.base_offset >= offset ? b.base_offset : offset, res.next_offset, e);
            out->len = at;
            r = STORAGE_ERR_DAMAGED;
            break;
        }
        pos += b.size;
    }
    plog_read_release(&res);
    return r;
}

/* ---- retention and delete-records -------------------------------------------- */

static bool seg_expired(const plog_t *log, int i, int64_t now, int64_t total)
{
    const seg_t *s = log->segs[i];
    if (log->segs[i + 1]->base <= log->log_start)
        return true;
    if (log->cfg.retention_ms >= 0 && s->max_ts >= 0 && now - s->max_ts > log->cfg.retention_ms)
        return true;
    return log->cfg.retention_bytes >= 0 && total - (int64_t)s->size >= log->cfg.retention_bytes;
}

int plog_retention(plog_t *log, int *deleted)
{
    pthread_mutex_lock(&log->mu);
    int r = writable_locked(log), k = 0;
    int64_t now = plog_now_ms(log), total = 0;
    for (int i = 0; i < log->nsegs; i++)
        total += (int64_t)log->segs[i]->size;
    while (r == STORAGE_OK && k + 1 < log->nsegs && seg_expired(log, k, now, total))
        total -= (int64_t)log->segs[k++]->size;
    seg_t **gone = xmalloc((size_t)(k + 1) * sizeof *gone);
    memcpy(gone, log->segs, (size_t)k * sizeof *gone);
    memmove(log->segs, log->segs + k, (size_t)(log->nsegs - k) * sizeof *log->segs);
    log->nsegs -= k;
    if (k) {
        log->log_start = MAX(log->log_start, log->segs[0]->base);
        epochs_truncate_start(log, log->log_start);
        plog_check_locked(log);
    }
    bool epochs = log->epochs_dirty;
    pthread_mutex_unlock(&log->mu);
    if (k && plog_write_checkpoint(log) != STORAGE_OK)
        r = STORAGE_ERR_IO;
    if (k && epochs && plog_write_epochs(log) != STORAGE_OK)
        r = STORAGE_ERR_IO;
    for (int i = 0; i < k; i++) {
        log_info("storage", "retention deleted segment base=%020" PRId64 " bytes=%" PRIu64 " dir=%s",
                 gone[i]->base, gone[i]->size, log->dir);
        seg_unlink_files(log->fs, log->dir, gone[i]->base);
        seg_unref(gone[i]);
    }
    free(gone);
    if (deleted)
        *deleted = k;
    return r;
}

int plog_delete_records(plog_t *log, int64_t offset)
{
    pthread_mutex_lock(&log->mu);
    int r = writable_locked(log);
    if (r == STORAGE_OK && (offset > log->leo || offset < 0))
        r = STORAGE_ERR_OUT_OF_RANGE;
    if (r == STORAGE_OK && offset > log->log_start) {
        log->log_start = offset;
        log->ckpt_dirty = true; /* written by the next plog_sync */
        epochs_truncate_start(log, offset);
    }
    pthread_mutex_unlock(&log->mu);
    return r;
}
