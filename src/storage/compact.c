/*
 * compact.c - log compaction (cleanup.policy=compact): keep the latest
 * record per key, rewriting sealed segments into new files that are swapped
 * in atomically.
 *
 * A PASS (plog_compact)
 * ======
 * The cleanable part of the log is the run of sealed segments, from the
 * first one not wholly below the log start, that are durable (synced, with
 * their indexes, and below the recovery point), end at or below
 * opts.max_offset (the high watermark: nothing a truncation could take
 * back is used) and are at least min_lag_ms old. The clean offset C says
 * that below it no superseded record is left; it lives in memory and
 * starts at 0 when the log opens and after a truncation, so the first pass
 * then treats the whole log as dirty. A pass runs when the dirty bytes
 * (cleanable segments ending past C) reach min_dirty_ratio of the
 * cleanable bytes, when a dirty segment is older than max_lag_ms, when a
 * kept tombstone's horizon has passed, or when forced. It:
 *  1. fills the key map (key -> latest offset, exact keys, at most
 *     map_bytes) from the dirty batches, from C up to E: the end of the
 *     cleanable part, or the first batch whose keys no longer fit (the
 *     first batch is always taken, so a pass always advances);
 *  2. walks the segments that start below E, from the first, in groups
 *     of adjacent segments whose sizes add up to at most segment_bytes,
 *     and writes each group's surviving batches into one new segment named
 *     by the group's first base offset (so the log start never moves); a
 *     single segment in which nothing changes is left alone (nothing is
 *     written until the first change);
 *  3. swaps each new segment in (below), then sets C = E.
 * A group left with no batch is not written: its segments are unlinked
 * (newest first; a crash leaves a subset of them, which holds superseded
 * records only), except the pass's first group, which becomes an empty
 * segment at its base (at or below the log start, which thus stays; a
 * later pass merges it). Reads expect every segment after the first to
 * hold a batch, so no other segment is ever left empty.
 *
 * RULES (which records survive)
 * =====
 *  R1 Offsets never move: a rewritten batch keeps its baseOffset,
 *     lastOffsetDelta, leader epoch and producer fields; its records keep
 *     their offset deltas (so lastOffsetDelta may exceed recordsCount - 1).
 *     A batch whose records are all removed disappears; reads of its
 *     offsets land on the next surviving batch.
 *  R2 Only records of plain batches (not transactional, not control)
 *     enter the map: a transactional record may be aborted. A compressed
 *     batch's records are read through its decompressed form.
 *  R3 A keyed record whose key maps to a later offset is superseded and
 *     removed, whatever its batch (transactional ones included).
 *  R4 A tombstone (null value, plain batch) that is its key's latest, and
 *     lies below C or in the map's range, is first kept and its batch
 *     stamped with a delete horizon (now + delete_retention_ms in
 *     baseTimestamp, attribute bit 6, Kafka's KIP-534; record timestamps
 *     are re-encoded against it and so unchanged). A later pass after the
 *     horizon removes it. Records past E are never removed.
 *  R5 Keyless records are kept.
 *  R6 maxTimestamp is recomputed over the kept records (CreateTime).
 *  R7 Control batches (transaction markers) are kept whole, but for R11,
 *     and with them the new segment keeps its group's .txnindex entries
 *     (txnindex.c).
 *  R8 A compressed batch follows R1-R7 and R9 on its decompressed
 *     records; a rewrite compresses its kept records again with the same
 *     codec (a rewrite with none left is a bare uncompressed header). One
 *     whose records cannot be read (corrupt, past the decompression
 *     bound) is kept whole with a warning, its keys stay out of the map,
 *     and behind it no tombstone is ever removed, since it might hide an
 *     older value of that key.
 *  R9 An idempotent batch whose records are all removed is kept as a bare
 *     header when it is its producer's last batch in the new segment, so
 *     the producer state rebuilt from the log keeps its last sequence.
 *  R10 A transactional batch of an aborted transaction (its producer's
 *     next ABORT marker at or after it has a first offset at or before
 *     it, per the .txnindex) is dropped whole, except as R9 keeps a
 *     producer's last batch. The caller keeps max_offset at or below the
 *     last stable offset, so no open transaction is cleaned.
 *  R11 A marker (COMMIT or ABORT) whose transaction has no batch left
 *     (no transactional batch of its producer kept since the producer's
 *     previous marker in this pass, which walks from the log start) and
 *     that is not its producer's last batch is stamped with a delete
 *     horizon like a tombstone (R4) and removed by a pass after it, with
 *     its .txnindex entry (Kafka's rule for markers). When the pass's
 *     producer maps are full, markers are kept.
 *  Invariant: after a pass, every record below E superseded by a record in
 *  the map's range is gone (unreadable batches aside); by induction, below C
 *  no superseded record is left, which is what makes R4 safe.
 *
 * FILES AND THE SWAP
 * ==================
 *   <B>.log.cleaned, <B>.index.cleaned, <B>.timeindex.cleaned
 *       the new segment for the group starting at B, being written
 *   <B>.<N>.swap
 *       the committed new segment: it replaces every segment whose base
 *       lies in [B, N), N being the base of the segment after the group
 *       (both 20 digits)
 * Order for one group:
 *   1. write and fdatasync <B>.log.cleaned and both index .cleaned files;
 *      fsync the directory;
 *   2. under the log lock, after checking that the group is still in the
 *      log (no truncation, no retention raced with the pass):
 *      rename <B>.log.cleaned -> <B>.<N>.swap      (the commit point)
 *      unlink the group's other segments, newest first
 *      rename the .cleaned indexes over <B>.index, <B>.timeindex
 *      rename <B>.<N>.swap -> <B>.log
 *      and replace the group by the new segment in memory;
 *   3. fsync the directory.
 * A failure before the commit point drops the .cleaned files and leaves
 * the log as it was; after it, the log goes FAILED (the next open finishes
 * the swap).
 *
 * RECOVERY (compact_recover, first thing plog_open does)
 * ========
 *  - every *.cleaned file is deleted (no swap was committed for it, or its
 *    swap already carries the data);
 *  - for every <B>.<N>.swap: the .log, .index and .timeindex of every
 *    segment with a base in [B, N) are deleted, then the swap is renamed to
 *    <B>.log (indexes missing from it are rebuilt by the usual recovery).
 * A crash at any point thus leaves either the old segments or the new one,
 * never neither, and never both.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "storage/storage_int.h"

#define CLEANED ".cleaned"
#define SWAP_EXT ".swap"
#define COMPACT_WRITE_CHUNK (256 * 1024)  /* output bytes buffered before a write */
#define PIDMAP_BYTES (4 * 1024 * 1024)     /* producer map per group (R9) */
#define THROTTLE_SLEEP_MAX_NS 100000000LL  /* one throttle sleep, at most */
#define PID_KEY_BYTES 8

void plog_compact_opts_default(plog_compact_opts_t *o)
{
    *o = (plog_compact_opts_t){
        .max_offset = INT64_MAX,
        .delete_retention_ms = PLOG_DELETE_RETENTION_MS_DEFAULT,
        .min_dirty_ratio = PLOG_MIN_DIRTY_RATIO_DEFAULT,
        .min_lag_ms = 0,
        .max_lag_ms = INT64_MAX,
        .map_bytes = PLOG_COMPACT_MAP_BYTES_DEFAULT,
        .io_bytes_per_sec = PLOG_COMPACT_IO_BYTES_PER_SEC_DEFAULT,
    };
}

/* ---- the pass's view of the log -------------------------------------------------- */

typedef struct plan {
    seg_t **segs;        /* references to the cleanable segments, in order */
    uint64_t *sizes;     /* their sizes and ends when planned: a truncation */
    int64_t *ends;       /* may change a segment under the pass */
    int n;
    int64_t next_base;   /* base of the segment after segs[n - 1] */
    int64_t segment_bytes;
    int32_t index_interval;
    uint64_t gen;        /* trunc_gen when planned */
    int segments_before;
} plan_t;

typedef struct pass {
    plog_t *log;
    const plog_compact_opts_t *o;
    plan_t pl;
    cpass_t cp;
    plog_compact_stats_t *st;
    int64_t t0_ns;       /* throttle start */
    bool aborted;        /* the log changed under the pass, or cancelled */
} pass_t;

static bool cleanable(const plog_t *log, int i, const plog_compact_opts_t *o, int64_t now)
{
    const seg_t *s = log->segs[i];
    if (s->synced < s->size || s->idx_unsynced || log->segs[i + 1]->base > log->recovery_point)
        return false;
    if (s->end > o->max_offset)
        return false;
    return o->min_lag_ms <= 0 || s->max_ts < 0 || now - s->max_ts >= o->min_lag_ms;
}

/* Under the lock: is a pass due on segments [first, m)? */
static bool due_locked(const plog_t *log, const plog_compact_opts_t *o, int first, int m, int64_t now)
{
    int64_t clean = 0, dirty = 0;
    bool lagging = false;
    for (int i = first; i < m; i++) {
        const seg_t *s = log->segs[i];
        if (s->end <= log->clean_offset) {
            clean += (int64_t)s->size;
            continue;
        }
        dirty += (int64_t)s->size;
        lagging |= o->max_lag_ms < INT64_MAX && s->max_ts >= 0 && now - s->max_ts > o->max_lag_ms;
    }
    bool horizon = log->clean_horizon_ms > 0 && now >= log->clean_horizon_ms;
    double ratio = clean + dirty > 0 ? (double)dirty / (double)(clean + dirty) : 0.0;
    return o->force || horizon || lagging || (dirty > 0 && ratio >= o->min_dirty_ratio);
}

/* Under the lock: picks the cleanable segments; false when no pass is due. */
static bool plan_locked(plog_t *log, const plog_compact_opts_t *o, int64_t now, plan_t *pl, int64_t *dirty_start)
{
    if (log->clean_gen != log->trunc_gen) {
        log->clean_offset = 0;
        log->clean_horizon_ms = 0;
        log->clean_gen = log->trunc_gen;
    }
    int first = 0;
    while (first + 1 < log->nsegs && log->segs[first + 1]->base <= log->log_start)
        first++;
    int m = first;
    while (m + 1 < log->nsegs && cleanable(log, m, o, now))
        m++;
    if (m == first || !due_locked(log, o, first, m, now))
        return false;
    *pl = (plan_t){.n = m - first, .next_base = log->segs[m]->base, .segment_bytes = log->cfg.segment_bytes,
                   .index_interval = log->cfg.index_interval_bytes, .gen = log->trunc_gen,
                   .segments_before = log->nsegs};
    pl->segs = xmalloc((size_t)pl->n * sizeof *pl->segs);
    pl->sizes = xmalloc((size_t)pl->n * sizeof *pl->sizes);
    pl->ends = xmalloc((size_t)pl->n * sizeof *pl->ends);
    for (int i = 0; i < pl->n; i++) {
        pl->segs[i] = log->segs[first + i];
        pl->sizes[i] = pl->segs[i]->size;
        pl->ends[i] = pl->segs[i]->end;
        seg_ref(pl->segs[i]);
    }
    *dirty_start = MAX(log->clean_offset, pl->segs[0]->base);
    return true;
}

static void plan_free(plan_t *pl)
{
    for (int i = 0; i < pl->n; i++)
        seg_unref(pl->segs[i]);
    free(pl->segs);
    free(pl->sizes);
    free(pl->ends);
    pl->segs = NULL;
}

/* ---- throttle and cancellation ------------------------------------------------------- */

/* Sleeps while the pass's I/O runs ahead of io_bytes_per_sec; true when
 * the pass must stop (cancelled). */
static bool pace(pass_t *ps)
{
    if (ps->o->cancel && ps->o->cancel(ps->o->cancel_arg)) {
        ps->aborted = true;
        return true;
    }
    int64_t rate = ps->o->io_bytes_per_sec;
    if (rate <= 0)
        return false;
    double bytes = (double)(ps->st->bytes_read + ps->st->bytes_written);
    int64_t due_ns = (int64_t)(bytes / (double)rate * 1e9), ahead = due_ns - (clock_mono_ns() - ps->t0_ns);
    if (ahead > 0) {
        ahead = MIN(ahead, THROTTLE_SLEEP_MAX_NS);
        struct timespec ts = {.tv_sec = ahead / 1000000000LL, .tv_nsec = ahead % 1000000000LL};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* A read of segment s failed with rc at pos. A truncation since the plan
 * explains anything (the pass is abandoned); else a batch that fails its
 * CRC marks the log offline, and any other error fails the pass. */
static int read_error(pass_t *ps, const seg_t *s, uint64_t pos, int rc)
{
    plog_t *log = ps->log;
    pthread_mutex_lock(&log->mu);
    if (log->trunc_gen != ps->pl.gen) {
        ps->aborted = true;
        rc = 0;
    } else if (rc == -EBADMSG) {
        plog_set_error(log, STORAGE_ERR_OFFLINE,
                       "corrupt batch in segment %020" PRId64 ".log near position %" PRIu64 " while compacting",
                       s->base, pos);
    }
    pthread_mutex_unlock(&log->mu);
    return rc == 0 ? STORAGE_OK : rc == -EBADMSG ? STORAGE_ERR_OFFLINE : STORAGE_ERR_IO;
}

/* ---- step 1: the key map --------------------------------------------------------------- */

/* Maps segment s from the dirty start; *full (with cp.dirty_end set) when
 * the map filled up inside it. */
static int map_segment(pass_t *ps, int i, bool *full)
{
    cpass_t *cp = &ps->cp;
    seg_t *s = ps->pl.segs[i];
    breader_t r;
    batch_info_t b;
    int rc;
    pthread_mutex_lock(&ps->log->mu);
    uint64_t from = seg_idx_floor(s, cp->dirty_start);
    pthread_mutex_unlock(&ps->log->mu);
    breader_init(&r, s, MIN(from, ps->pl.sizes[i]), ps->pl.sizes[i]);
    while ((rc = breader_next(&r, &b)) == 0) {
        if (batch_info_last_offset(&b) < cp->dirty_start)
            continue;
        if (!compact_map_batch(cp, &b, cp->map.n == 0)) {
            cp->dirty_end = MAX(b.base_offset, cp->dirty_start);
            *full = true;
            break;
        }
        if (pace(ps))
            break;
    }
    ps->st->bytes_read += (int64_t)r.bytes_read;
    uint64_t at = r.pos;
    breader_free(&r);
    return rc < 0 ? read_error(ps, s, at, rc) : STORAGE_OK;
}

static int build_map(pass_t *ps)
{
    cpass_t *cp = &ps->cp;
    bool full = false;
    cp->dirty_end = cp->dirty_start;
    for (int i = 0; i < ps->pl.n && !full && !ps->aborted; i++) {
        int64_t after = i + 1 < ps->pl.n ? ps->pl.segs[i + 1]->base : ps->pl.next_base;
        if (ps->pl.ends[i] <= cp->dirty_start)
            continue;
        int rc = map_segment(ps, i, &full);
        if (rc != STORAGE_OK)
            return rc;
        if (!full)
            cp->dirty_end = after;
    }
    ps->st->complete = !full && !ps->aborted;
    return STORAGE_OK;
}

/* ---- step 2: writing a group ---------------------------------------------------------- */

typedef struct cwriter {
    pass_t *ps;
    seg_t *ns;          /* the new segment: size, end, indexes in memory */
    seg_t *src;         /* single-segment group: source of the unchanged prefix */
    buf_t pend;         /* bytes not yet written */
    uint64_t flushed;   /* bytes in the file */
    bool changed;       /* the group differs from its source */
} cwriter_t;

static void cleaned_path(char *out, size_t n, const char *dir, int64_t base, const char *ext)
{
    char e[32];
    snprintf(e, sizeof e, "%s" CLEANED, ext);
    seg_path(out, n, dir, base, e);
}

static int writer_flush(cwriter_t *w)
{
    if (w->pend.len == 0)
        return 0;
    int rc = sfs_pwrite_full(w->ns->fs, w->ns->fd, w->pend.data, w->pend.len, w->flushed);
    if (rc == 0) {
        w->flushed += w->pend.len;
        w->ps->st->bytes_written += (int64_t)w->pend.len;
    }
    buf_reset(&w->pend);
    return rc;
}

/* Copies the source's first n bytes (the unchanged prefix) to the file. */
static int copy_prefix(cwriter_t *w, uint64_t n)
{
    for (uint64_t at = 0; at < n;) {
        size_t k = (size_t)MIN((uint64_t)COMPACT_WRITE_CHUNK, n - at);
        uint8_t *p = buf_extend(&w->pend, k);
        int rc = sfs_pread_full(w->src->fs, w->src->fd, p, k, at);
        if (rc < 0)
            return rc;
        w->ps->st->bytes_read += (int64_t)k;
        if ((rc = writer_flush(w)) < 0)
            return rc;
        at += k;
    }
    return 0;
}

/* The group differs from its source: create the .cleaned file. */
static int writer_change(cwriter_t *w)
{
    if (w->changed)
        return 0;
    char p[SEG_PATH_MAX];
    cleaned_path(p, sizeof p, w->ps->log->dir, w->ns->base, ".log");
    int rc = w->ns->fs->open(w->ns->fs, p, SFS_RDWR | SFS_CREATE | SFS_TRUNC, &w->ns->fd);
    if (rc < 0)
        return rc;
    w->changed = true;
    return w->src ? copy_prefix(w, w->ns->size) : 0;
}

static int writer_add(cwriter_t *w, const batch_info_t *b, bool changed)
{
    int rc;
    if (changed && (rc = writer_change(w)) < 0)
        return rc;
    if (w->ns->size + b->size > (uint64_t)PLOG_SEGMENT_BYTES_MAX)
        return -EFBIG;
    seg_note_batch(w->ns, b, w->ns->size, w->ps->pl.index_interval);
    w->ns->size += b->size;
    if (!w->changed)
        return 0; /* still identical to the source: copied if a change comes */
    buf_put(&w->pend, b->data, b->size);
    return w->pend.len >= COMPACT_WRITE_CHUNK ? writer_flush(w) : 0;
}

static void writer_discard(cwriter_t *w)
{
    if (w->changed) {
        static const char *const exts[] = SEG_FILE_EXTS;
        for (size_t i = 0; i < ARRAY_LEN(exts); i++) {
            char p[SEG_PATH_MAX];
            cleaned_path(p, sizeof p, w->ps->log->dir, w->ns->base, exts[i]);
            w->ns->fs->unlink(w->ns->fs, p);
        }
    }
    seg_unref(w->ns);
    w->ns = NULL;
}

/* Makes the new segment durable: data, indexes, directory (step 1). */
static int writer_finish(cwriter_t *w)
{
    seg_t *s = w->ns;
    sfs_t *fs = s->fs;
    int rc = writer_flush(w);
    if (rc == 0)
        rc = fs->fdatasync(fs, s->fd);
    if (rc < 0)
        return rc;
    s->synced = s->size;
    if (s->max_ts >= 0)
        seg_tidx_push(s, s->max_ts, (uint32_t)(s->max_ts_offset - s->base));
    s->sealed = true;
    if ((rc = seg_write_indexes_as(s, w->ps->log->dir, CLEANED, true)) < 0)
        return rc;
    return fs->fsync_dir(fs, w->ps->log->dir);
}

/* The last offset of every producer's last batch in segs (R9), by a
 * header walk; *overflow when the map could not hold them all. */
static int producers_of(seg_t **segs, const uint64_t *sizes, int n, kmap_t *pids, bool *overflow)
{
    *overflow = false;
    for (int i = 0; i < n; i++) {
        walker_t wk;
        batch_info_t b;
        int rc;
        walker_init(&wk, segs[i], sizes[i]);
        for (uint64_t pos = 0; (rc = walker_header(&wk, pos, &b)) == 0; pos += b.size) {
            if (b.producer_id < 0 || b.control)
                continue;
            if (kmap_get(pids, &b.producer_id, PID_KEY_BYTES) < 0 && !kmap_fits(pids, 1, PID_KEY_BYTES))
                *overflow = true;
            else
                kmap_put(pids, &b.producer_id, PID_KEY_BYTES, batch_info_last_offset(&b));
        }
        walker_free(&wk);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Passes the batches of one segment through the verdicts into w. */
static int clean_segment(cwriter_t *w, seg_t *s, uint64_t size, const kmap_t *pids, bool pid_overflow)
{
    pass_t *ps = w->ps;
    breader_t r;
    batch_info_t b, nb;
    buf_t tmp;
    int rc;
    buf_init(&tmp);
    breader_init(&r, s, 0, size);
    while ((rc = breader_next(&r, &b)) == 0 && !pace(ps)) {
        bool last = b.producer_id >= 0 &&
                    (pid_overflow || kmap_get(pids, &b.producer_id, PID_KEY_BYTES) == batch_info_last_offset(&b));
        buf_reset(&tmp);
        enum compact_verdict v = compact_batch(&ps->cp, &b, last, &tmp);
        if (v == COMPACT_KEEP) {
            rc = writer_add(w, &b, false);
        } else if (v == COMPACT_DROP) {
            rc = writer_change(w);
        } else {
            CK_ASSERT(batch_parse_header(tmp.data, tmp.len, &nb) == BATCH_OK && nb.size == tmp.len);
            rc = writer_add(w, &nb, true);
        }
        if (rc < 0)
            break;
    }
    ps->st->bytes_read += (int64_t)r.bytes_read;
    uint64_t at = r.pos;
    breader_free(&r);
    buf_free(&tmp);
    return rc < 0 ? read_error(ps, s, at, rc) : STORAGE_OK;
}

/* ---- step 2: the swap ------------------------------------------------------------------ */

static void swap_path(char *out, size_t n, const char *dir, int64_t base, int64_t next)
{
    snprintf(out, n, "%s/%020" PRId64 ".%020" PRId64 SWAP_EXT, dir, base, next);
}

/* Under the lock: index of the group in the log, or -1 when it changed. */
static int locate_locked(const plog_t *log, const pass_t *ps, seg_t **grp, int n, int64_t next)
{
    if (log->state != STORAGE_OK || log->trunc_gen != ps->pl.gen)
        return -1;
    int i = 0;
    while (i < log->nsegs && log->segs[i] != grp[0])
        i++;
    if (i + n >= log->nsegs || log->segs[i + n]->base != next)
        return -1;
    for (int k = 1; k < n; k++)
        if (log->segs[i + k] != grp[k])
            return -1;
    return i;
}

/* Under the lock, after the commit point: the renames and unlinks. */
static int swap_files_locked(plog_t *log, seg_t **grp, int n, const char *swp)
{
    sfs_t *fs = log->fs;
    char from[SEG_PATH_MAX], to[SEG_PATH_MAX];
    int rc = 0;
    for (int k = n - 1; k >= 1 && rc == 0; k--)
        rc = seg_unlink_files(fs, log->dir, grp[k]->base);
    static const char *const idx[] = SEG_INDEX_EXTS;
    for (size_t k = 0; k < ARRAY_LEN(idx) && rc == 0; k++) {
        cleaned_path(from, sizeof from, log->dir, grp[0]->base, idx[k]);
        seg_path(to, sizeof to, log->dir, grp[0]->base, idx[k]);
        rc = fs->rename(fs, from, to);
    }
    seg_path(to, sizeof to, log->dir, grp[0]->base, ".log");
    return rc == 0 ? fs->rename(fs, swp, to) : rc;
}

/* Under the lock: the group [i, i + n) becomes ns. */
static void replace_locked(plog_t *log, int i, int n, seg_t *ns)
{
    log->segs[i] = ns;
    memmove(log->segs + i + 1, log->segs + i + n, (size_t)(log->nsegs - i - n) * sizeof *log->segs);
    log->nsegs -= n - 1;
    plog_check_locked(log);
}

/* Under the lock: the group [i, i + n), whose records are all gone,
 * leaves the log (files newest first; any subset of them left behind by a
 * crash holds only superseded records). */
static int drop_locked(plog_t *log, seg_t **grp, int n, int i)
{
    int rc = 0;
    for (int k = n - 1; k >= 0; k--) {
        int r = seg_unlink_files(log->fs, log->dir, grp[k]->base);
        rc = rc ? rc : r;
    }
    memmove(log->segs + i, log->segs + i + n, (size_t)(log->nsegs - i - n) * sizeof *log->segs);
    log->nsegs -= n;
    plog_check_locked(log);
    return rc;
}

/* Step 2 for one group: ns replaces it, or, when ns is NULL, it goes.
 * *done tells whether that happened. */
static int swap_group(pass_t *ps, seg_t **grp, int n, int64_t next, seg_t *ns, bool *done)
{
    plog_t *log = ps->log;
    char from[SEG_PATH_MAX], swp[SEG_PATH_MAX];
    cleaned_path(from, sizeof from, log->dir, grp[0]->base, ".log");
    swap_path(swp, sizeof swp, log->dir, grp[0]->base, next);
    *done = false;
    pthread_mutex_lock(&log->mu);
    int i = locate_locked(log, ps, grp, n, next), rc = 0;
    if (i >= 0 && !ns) {
        rc = drop_locked(log, grp, n, i);
        *done = true;
    } else if (i >= 0 && (rc = log->fs->rename(log->fs, from, swp)) == 0) {
        rc = swap_files_locked(log, grp, n, swp);
        replace_locked(log, i, n, ns);
        *done = true;
    }
    if (*done && rc < 0)
        plog_set_error(log, STORAGE_ERR_FAILED, "compaction of %020" PRId64 " failed: %s", grp[0]->base,
                       strerror(-rc));
    pthread_mutex_unlock(&log->mu);
    if (!*done) {
        ps->aborted = i < 0;
        return rc < 0 ? STORAGE_ERR_IO : STORAGE_OK;
    }
    for (int k = 0; k < n; k++)
        seg_unref(grp[k]); /* the log's references */
    if (rc == 0 && (rc = log->fs->fsync_dir(log->fs, log->dir)) < 0) {
        pthread_mutex_lock(&log->mu);
        plog_set_error(log, STORAGE_ERR_FAILED, "directory sync after compaction failed: %s", strerror(-rc));
        pthread_mutex_unlock(&log->mu);
    }
    return rc < 0 ? STORAGE_ERR_FAILED : STORAGE_OK;
}

static bool marker_dropped(const cpass_t *cp, int64_t offset)
{
    for (uint32_t i = 0; i < cp->ndropped_aborts; i++)
        if (cp->dropped_aborts[i] == offset)
            return true;
    return false;
}

/* R7, R11: the group's aborted transactions whose markers stay. */
static void keep_txn_index(pass_t *ps, seg_t **grp, int n, seg_t *ns)
{
    pthread_mutex_lock(&ps->log->mu);
    for (int k = 0; k < n; k++)
        for (uint32_t e = 0; e < grp[k]->txn_n; e++)
            if (!marker_dropped(&ps->cp, grp[k]->txns[e].last_offset))
                seg_txn_push(ns, &grp[k]->txns[e]);
    pthread_mutex_unlock(&ps->log->mu);
}

/* Cleans, writes and swaps the group segs[i, j). A group left with nothing
 * goes, except the first (it holds the log start); an empty segment in the
 * middle would hide the next one from reads. */
static int clean_group(pass_t *ps, int i, int j)
{
    seg_t **grp = ps->pl.segs + i;
    int n = j - i, rc;
    int64_t next = j < ps->pl.n ? ps->pl.segs[j]->base : ps->pl.next_base;
    kmap_t pids;
    bool pid_overflow, done = false;
    kmap_init(&pids, PIDMAP_BYTES);
    cwriter_t w = {.ps = ps, .ns = seg_new(ps->log->fs, grp[0]->base), .src = n == 1 ? grp[0] : NULL};
    buf_init(&w.pend);
    rc = producers_of(grp, ps->pl.sizes + i, n, &pids, &pid_overflow);
    rc = rc < 0 ? read_error(ps, grp[0], 0, rc) : STORAGE_OK;
    if (rc == STORAGE_OK && n > 1)
        rc = writer_change(&w) < 0 ? STORAGE_ERR_IO : STORAGE_OK;
    for (int k = 0; k < n && rc == STORAGE_OK && !ps->aborted; k++)
        rc = clean_segment(&w, grp[k], ps->pl.sizes[i + k], &pids, pid_overflow);
    kmap_free(&pids);
    keep_txn_index(ps, grp, n, w.ns);
    bool go = rc == STORAGE_OK && !ps->aborted && w.changed, empty = w.ns->size == 0 && i > 0;
    if (go && !empty)
        rc = writer_finish(&w) < 0 ? STORAGE_ERR_IO : STORAGE_OK;
    buf_free(&w.pend);
    if (go && rc == STORAGE_OK)
        rc = swap_group(ps, grp, n, next, empty ? NULL : w.ns, &done);
    ps->st->groups_rewritten += done;
    if (!done || empty)
        writer_discard(&w);
    return rc;
}

/* The end of the group starting at i: adjacent segments below the map's
 * end whose sizes add up to at most segment_bytes, spanning < 2^31 offsets. */
static int group_end(const pass_t *ps, int i)
{
    const plan_t *pl = &ps->pl;
    uint64_t total = pl->sizes[i];
    int j = i + 1;
    while (j < pl->n && pl->segs[j]->base < ps->cp.dirty_end &&
           total + pl->sizes[j] <= (uint64_t)pl->segment_bytes &&
           pl->ends[j] - pl->segs[i]->base - 1 <= INT32_MAX) {
        total += pl->sizes[j];
        j++;
    }
    return j;
}

static int clean_groups(pass_t *ps)
{
    int rc = STORAGE_OK;
    ps->cp.opaque_seen = false;
    for (int i = 0; i < ps->pl.n && rc == STORAGE_OK && !ps->aborted;) {
        if (ps->pl.segs[i]->base >= ps->cp.dirty_end)
            break; /* untouched: past the map */
        int j = group_end(ps, i);
        rc = clean_group(ps, i, j);
        i = j;
    }
    return rc;
}

/* ---- step 3 and the entry point --------------------------------------------------------- */

/* Under the lock: a pass may start (and is now marked running). */
static bool begin_locked(plog_t *log)
{
    if (log->state != STORAGE_OK || log->cleaning)
        return false;
    log->cleaning = true;
    return true;
}

static void finish_pass(pass_t *ps, int rc)
{
    plog_t *log = ps->log;
    pthread_mutex_lock(&log->mu);
    bool applied = rc == STORAGE_OK && !ps->aborted && log->trunc_gen == ps->pl.gen;
    if (applied) {
        log->clean_offset = MAX(log->clean_offset, ps->cp.dirty_end);
        log->clean_horizon_ms = ps->cp.next_horizon_ms == INT64_MAX ? 0 : ps->cp.next_horizon_ms;
    }
    log->cleaning = false;
    ps->st->clean_offset = log->clean_offset;
    ps->st->segments_after = log->nsegs;
    pthread_mutex_unlock(&log->mu);
    ps->st->records_removed = ps->cp.records_removed;
    ps->st->tombstones_removed = ps->cp.tombstones_removed;
    if (ps->st->groups_rewritten > 0 || rc != STORAGE_OK)
        log_info("storage",
                 "compacted dir=%s rc=%d groups=%d segments=%d->%d removed=%" PRId64 " tombstones=%" PRId64
                 " clean_offset=%" PRId64 " read=%" PRId64 " written=%" PRId64,
                 log->dir, rc, ps->st->groups_rewritten, ps->st->segments_before, ps->st->segments_after,
                 ps->st->records_removed, ps->st->tombstones_removed, ps->st->clean_offset, ps->st->bytes_read,
                 ps->st->bytes_written);
}

static void add_aborted(void *arg, const plog_aborted_txn_t *e)
{
    cpass_t *cp = arg;
    cp->aborted = xrealloc(cp->aborted, (cp->naborted + 1) * sizeof *cp->aborted);
    cp->aborted[cp->naborted++] = *e;
}

/* R10: the log's aborted transactions, by marker offset. */
static void collect_aborted(plog_t *log, cpass_t *cp)
{
    plog_aborted_txns(log, 0, INT64_MAX, add_aborted, cp);
}

int plog_compact(plog_t *log, const plog_compact_opts_t *opts, plog_compact_stats_t *st)
{
    plog_compact_stats_t local;
    pass_t ps = {.log = log, .o = opts, .st = st ? st : &local, .t0_ns = clock_mono_ns()};
    *ps.st = (plog_compact_stats_t){0};
    int64_t now = plog_now_ms(log), dirty_start = 0;
    pthread_mutex_lock(&log->mu);
    int rc = log->state;
    bool go = begin_locked(log);
    if (go && !plan_locked(log, opts, now, &ps.pl, &dirty_start)) {
        log->cleaning = false;
        go = false;
    }
    pthread_mutex_unlock(&log->mu);
    if (!go)
        return rc;
    ps.st->ran = true;
    ps.st->segments_before = ps.pl.segments_before;
    ps.cp = (cpass_t){.dirty_start = dirty_start, .now_ms = now, .next_horizon_ms = INT64_MAX,
                      .delete_retention_ms = MAX(opts->delete_retention_ms, (int64_t)0)};
    kmap_init(&ps.cp.map, (size_t)MAX(opts->map_bytes, (int64_t)0));
    collect_aborted(log, &ps.cp);
    kmap_init(&ps.cp.txn_data, COMPACT_TXN_MAP_BYTES);
    kmap_init(&ps.cp.txn_marks, COMPACT_TXN_MAP_BYTES);
    rc = build_map(&ps);
    if (rc == STORAGE_OK && !ps.aborted)
        rc = clean_groups(&ps);
    kmap_free(&ps.cp.map);
    free(ps.cp.aborted);
    free(ps.cp.dropped_aborts);
    kmap_free(&ps.cp.txn_data);
    kmap_free(&ps.cp.txn_marks);
    finish_pass(&ps, rc);
    plan_free(&ps.pl);
    return rc;
}

/* ---- recovery ---------------------------------------------------------------------------- */

typedef struct leftovers {
    char **names;       /* *.cleaned and *.swap */
    int n, cap;
    int64_t *bases;     /* segments (.log) */
    int nb, capb;
} leftovers_t;

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

static int collect_leftover(void *arg, const char *name, bool is_dir)
{
    leftovers_t *l = arg;
    int64_t base;
    const char *ext;
    if (is_dir)
        return 0;
    if (has_suffix(name, CLEANED) || has_suffix(name, SWAP_EXT)) {
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 4;
            l->names = xrealloc(l->names, (size_t)l->cap * sizeof *l->names);
        }
        l->names[l->n++] = xstrdup(name);
    } else if (seg_parse_name(name, &base, &ext) && strcmp(ext, ".log") == 0) {
        if (l->nb == l->capb) {
            l->capb = l->capb ? l->capb * 2 : 16;
            l->bases = xrealloc(l->bases, (size_t)l->capb * sizeof *l->bases);
        }
        l->bases[l->nb++] = base;
    }
    return 0;
}

/* "<B>.<N>.swap" -> B, N. */
static bool parse_swap(const char *name, int64_t *base, int64_t *next)
{
    const char *ext, *ext2;
    return seg_parse_name(name, base, &ext) && seg_parse_name(ext + 1, next, &ext2) &&
           strcmp(ext2, SWAP_EXT) == 0 && *next > *base;
}

/* Finishes one committed swap (compact.c's header, RECOVERY). */
static int finish_swap(sfs_t *fs, const char *dir, const leftovers_t *l, const char *name)
{
    int64_t base, next;
    if (!parse_swap(name, &base, &next)) {
        log_warn("storage", "ignoring a malformed swap file name=%s dir=%s", name, dir);
        return 0;
    }
    for (int i = 0; i < l->nb; i++) {
        if (l->bases[i] < base || l->bases[i] >= next)
            continue;
        int rc = seg_unlink_files(fs, dir, l->bases[i]);
        if (rc < 0)
            return rc;
    }
    char from[SEG_PATH_MAX], to[SEG_PATH_MAX];
    snprintf(from, sizeof from, "%s/%s", dir, name);
    seg_path(to, sizeof to, dir, base, ".log");
    log_warn("storage", "finishing an interrupted compaction: %s replaces the segments in [%" PRId64 ", %" PRId64
             ") dir=%s", name, base, next, dir);
    return fs->rename(fs, from, to);
}

int compact_recover(sfs_t *fs, const char *dir)
{
    leftovers_t l = {0};
    int rc = fs->readdir(fs, dir, collect_leftover, &l);
    bool changed = false;
    for (int i = 0; i < l.n && rc == 0; i++) {
        if (!has_suffix(l.names[i], CLEANED))
            continue;
        char p[SEG_PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, l.names[i]);
        log_info("storage", "deleting an unfinished compaction file path=%s", p);
        rc = fs->unlink(fs, p);
        changed = true;
    }
    for (int i = 0; i < l.n && rc == 0; i++) {
        if (has_suffix(l.names[i], SWAP_EXT)) {
            rc = finish_swap(fs, dir, &l, l.names[i]);
            changed = true;
        }
    }
    if (rc == 0 && changed)
        rc = fs->fsync_dir(fs, dir);
    for (int i = 0; i < l.n; i++)
        free(l.names[i]);
    free(l.names);
    free(l.bases);
    return rc;
}
