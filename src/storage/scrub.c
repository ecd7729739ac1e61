/*
 * scrub.c - finding damage in a log, living with it, and repairing it.
 *
 * DAMAGE. A batch that fails its checks (header rules, offsets increasing,
 * CRC-32C) in data the log believed durable. It is found at open (below
 * the recovery point: a torn tail above it is cut as segment.c says), by
 * a read that copies batches (plog_read_copy), or by the scrubber that
 * re-reads closed segments. Never silently: in every case the log
 *   1. keeps every byte on disk as it is (nothing is cut or rewritten);
 *   2. goes read-only (state STORAGE_ERR_DAMAGED): appends, retention,
 *      compaction and checkpoints stop, so nothing below can be lost;
 *   3. remembers the damaged offsets [damaged_from, damaged_to): reads
 *      inside them fail with STORAGE_ERR_DAMAGED, reads before them stop
 *      short of them, reads after them are served (found by the scrubber
 *      in the middle of a log: the rest is good). Damage found at open
 *      ends the log at damaged_from: later segments stay on disk, unread.
 *   4. is reported: plog_damaged_range, plog_errmsg (status, metrics).
 *
 * SCAN. Batch by batch from position 0 of a segment: a batch whose header
 * is readable but whose CRC or offsets are wrong is one damaged range and
 * the scan goes on after it (its length is believed); an unreadable header
 * makes the rest of the segment one damaged range. Adjacent ranges merge.
 *
 * REPAIR (storage_repair_dir, `chronik log repair DIR`, broker stopped).
 * Moves the damaged part aside, never deletes it: into a new directory
 * "<DIR>.<hex>-damaged" beside the partition go the bytes of the first
 * damaged segment from the first bad batch on (as <base>.log.tail) and
 * every later segment's files whole; the segment is then cut at the bad
 * batch (fsynced), its stale index files are removed (rebuilt at open),
 * and the recovery point in chronik.checkpoint is lowered to the new log
 * end. The next open finds a consistent, writable log ending at the first
 * damaged offset.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "storage/storage_int.h"

/* ---- scanning ------------------------------------------------------------------ */

typedef struct damage_acc {
    seg_damage_fn fn;
    void *arg;
    int64_t from, to; /* pending range, from < 0 when none */
    uint64_t pos;
    const char *why;
    int ranges;
} damage_acc_t;

static void acc_flush(damage_acc_t *a)
{
    if (a->from < 0)
        return;
    a->fn(a->arg, a->from, a->to, a->pos, a->why);
    a->ranges++;
    a->from = -1;
}

static void acc_add(damage_acc_t *a, int64_t from, int64_t to, uint64_t pos, const char *why)
{
    if (a->from >= 0 && from <= a->to) {
        a->to = MAX(a->to, to);
        return;
    }
    acc_flush(a);
    *a = (damage_acc_t){a->fn, a->arg, from, MAX(to, from + 1), pos, why, a->ranges};
}

/* 0: batch at pos checked (*bad set when its CRC fails); -EBADMSG: the
 * header is unreadable; other -errno: read error. */
static int check_one(seg_t *s, uint64_t pos, uint64_t limit, int64_t expect, batch_info_t *b, bool *bad,
                     uint8_t **buf, size_t *cap)
{
    uint8_t hdr[BATCH_HEADER_BYTES];
    int r = seg_read_batch_header(s, pos, limit, b, hdr);
    if (r < 0 || pos + b->size > limit)
        return r == -EIO || r == 0 ? -EBADMSG : r;
    if (b->size > *cap) {
        *cap = b->size;
        *buf = xrealloc(*buf, *cap);
    }
    if ((r = sfs_pread_full(s->fs, s->fd, *buf, b->size, pos)) < 0)
        return r;
    *bad = !batch_crc_ok(*buf, b->size) || b->base_offset < expect || b->last_offset_delta < 0 ||
           b->records_count < 0 || b->records_count > b->last_offset_delta + 1;
    return 0;
}

int seg_scan_damage(seg_t *s, uint64_t limit, int64_t end_offset, seg_damage_fn fn, void *arg,
                    uint64_t *batches)
{
    damage_acc_t a = {fn, arg, -1, -1, 0, NULL, 0};
    uint8_t *buf = NULL;
    size_t cap = 0;
    int64_t expect = s->base;
    uint64_t pos = 0, n = 0;
    int r = 0;
    while (pos < limit) {
        batch_info_t b;
        bool bad = false;
        r = check_one(s, pos, limit, expect, &b, &bad, &buf, &cap);
        if (r == -EBADMSG) {
            acc_add(&a, expect, MAX(end_offset, expect + 1), pos, "unreadable batch header");
            r = 0;
            break;
        }
        if (r < 0)
            break;
        int64_t last = batch_info_last_offset(&b);
        if (bad)
            acc_add(&a, MAX(expect, b.base_offset < expect ? expect : b.base_offset), MAX(last + 1, expect + 1),
                    pos, "CRC or offset check failed");
        expect = MAX(expect, last + 1);
        pos += b.size;
        n++;
    }
    acc_flush(&a);
    free(buf);
    if (batches)
        *batches = n;
    return r < 0 ? r : a.ranges;
}

/* ---- the damaged state ---------------------------------------------------------- */

void plog_mark_damaged_locked(plog_t *log, int64_t from, int64_t to, const char *fmt, ...)
{
    CK_ASSERT(from >= 0 && to > from);
    if (log->state == STORAGE_ERR_DELETED)
        return;
    log->damaged_from = log->damaged_from < 0 ? from : MIN(log->damaged_from, from);
    log->damaged_to = MAX(log->damaged_to, to);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(log->errmsg, sizeof log->errmsg, fmt, ap);
    va_end(ap);
    if (log->state == STORAGE_OK)
        log->state = STORAGE_ERR_DAMAGED;
    log_error("storage", "log damaged, read-only until repaired: %s offsets=%" PRId64 "..%" PRId64 " dir=%s",
              log->errmsg, log->damaged_from, log->damaged_to - 1, log->dir);
}

bool plog_damaged_range(plog_t *log, int64_t *from, int64_t *to)
{
    pthread_mutex_lock(&log->mu);
    bool d = log->damaged_from >= 0;
    if (d) {
        *from = log->damaged_from;
        *to = log->damaged_to;
    }
    pthread_mutex_unlock(&log->mu);
    return d;
}

/* ---- the scrubber ------------------------------------------------------------------- */

#define IOPRIO_CLASS_IDLE 3
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_WHO_PROCESS 1

void storage_io_priority_idle(void)
{
    if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT) != 0)
        log_debug("storage", "idle I/O priority not available err=\"%s\"", strerror(errno));
}

typedef struct scrub_hit {
    plog_t *log;
    seg_t *s;
    int found;
} scrub_hit_t;

static void scrub_found(void *arg, int64_t from, int64_t to, uint64_t pos, const char *why)
{
    scrub_hit_t *h = arg;
    pthread_mutex_lock(&h->log->mu);
    plog_mark_damaged_locked(h->log, from, to, "%s in segment %020" PRId64 ".log at position %" PRIu64
                             " (offsets %" PRId64 "..%" PRId64 "), found by the scrubber",
                             why, h->s->base, pos, from, to - 1);
    pthread_mutex_unlock(&h->log->mu);
    h->found++;
}

/* The sealed, synced segment at or after base (with a reference), or NULL. */
static seg_t *next_sealed(plog_t *log, int64_t base, uint64_t *limit, int64_t *end)
{
    seg_t *s = NULL;
    pthread_mutex_lock(&log->mu);
    bool go = log->state != STORAGE_ERR_OFFLINE && log->state != STORAGE_ERR_DELETED;
    for (int i = 0; go && i + 1 < log->nsegs; i++) {
        seg_t *c = log->segs[i];
        if (c->base >= base && c->synced >= c->size) {
            seg_ref(c);
            s = c;
            *limit = c->size;
            *end = c->end;
            break;
        }
    }
    pthread_mutex_unlock(&log->mu);
    return s;
}

int plog_scrub(plog_t *log, plog_cancel_fn cancel, void *cancel_arg, plog_scrub_stats_t *st)
{
    plog_scrub_stats_t local;
    st = st ? st : &local;
    *st = (plog_scrub_stats_t){0};
    int64_t base = 0, end;
    uint64_t limit;
    seg_t *s;
    while ((s = next_sealed(log, base, &limit, &end)) != NULL) {
        scrub_hit_t h = {log, s, 0};
        uint64_t batches = 0;
        int r = seg_scan_damage(s, limit, end, scrub_found, &h, &batches);
        base = s->base + 1;
        st->segments++;
        st->batches += batches;
        st->bytes += limit;
        st->damaged_ranges += h.found;
        seg_unref(s);
        if (r < 0)
            return STORAGE_ERR_IO;
        if (cancel && cancel(cancel_arg))
            break;
    }
    return STORAGE_OK;
}

/* ---- repair -------------------------------------------------------------------------- */

/* Refuses while a broker holds the data directory the partition is in. */
static int repair_lock(const char *dir, FILE *out)
{
    char p[SEG_PATH_MAX];
    snprintf(p, sizeof p, "%s/../.lock", dir);
    int fd = open(p, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -2; /* no lock file: no broker has run here */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(out, "%s: the data directory is in use by a running broker (it holds %s): stop it first\n",
                dir, p);
        close(fd);
        return -1;
    }
    return fd;
}

static int move_file(const char *dir, const char *aside, const char *name, FILE *out)
{
    char from[SEG_PATH_MAX], to[SEG_PATH_MAX + 160];
    snprintf(from, sizeof from, "%s/%s", dir, name);
    snprintf(to, sizeof to, "%s/%s", aside, name);
    if (rename(from, to) == 0) {
        fprintf(out, "  moved %s\n", name);
        return 0;
    }
    if (errno == ENOENT)
        return 0;
    fprintf(out, "  cannot move %s: %s\n", from, strerror(errno));
    return -1;
}

/* Copies [pos, size) of the segment file to aside/<base>.log.tail. */
static int save_tail(seg_t *s, const char *aside, uint64_t pos, FILE *out)
{
    char p[SEG_PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%020" PRId64 ".log.tail", aside, s->base);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(out, "  cannot create %s: %s\n", p, strerror(errno));
        return -1;
    }
    uint8_t buf[64 * 1024];
    int r = 0;
    for (uint64_t at = pos; at < s->size && r == 0;) {
        size_t n = (size_t)MIN((uint64_t)sizeof buf, s->size - at);
        r = sfs_pread_full(s->fs, s->fd, buf, n, at);
        if (r == 0 && write(fd, buf, n) != (ssize_t)n)
            r = -errno;
        at += n;
    }
    if (r == 0 && fsync(fd) != 0)
        r = -errno;
    close(fd);
    if (r < 0)
        fprintf(out, "  cannot save the damaged bytes: %s\n", strerror(-r));
    else
        fprintf(out, "  saved %" PRIu64 " bytes from position %" PRIu64 " as %s\n", s->size - pos, pos, p);
    return r;
}

static int cut_segment(const char *dir, int64_t base, uint64_t pos, FILE *out)
{
    char p[SEG_PATH_MAX];
    seg_path(p, sizeof p, dir, base, ".log");
    int fd = open(p, O_RDWR | O_CLOEXEC);
    int r = fd < 0 || ftruncate(fd, (off_t)pos) != 0 || fsync(fd) != 0 ? -1 : 0;
    if (fd >= 0)
        close(fd);
    static const char *const idx[] = SEG_INDEX_EXTS;
    for (size_t i = 0; i < ARRAY_LEN(idx); i++) {
        seg_path(p, sizeof p, dir, base, idx[i]);
        unlink(p);
    }
    if (r < 0)
        fprintf(out, "  cannot cut segment %020" PRId64 ": %s\n", base, strerror(errno));
    return r;
}

/* "<dir>.<32 hex>-damaged", created. */
static int make_aside(const char *dir, char *aside, size_t len, FILE *out)
{
    uint8_t b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        CK_PANIC("getrandom failed");
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", b[i]);
    if (snprintf(aside, len, "%s.%s-damaged", dir, hex) >= (int)len || mkdir(aside, 0755) != 0) {
        fprintf(out, "%s: cannot create a directory for the damaged part: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int repair_from(const char *dir, seg_t *s, int64_t from, uint64_t pos, const int64_t *later, int nlater,
                       FILE *out)
{
    char aside[SEG_PATH_MAX + 64];
    fprintf(out, "%s: damaged from offset %" PRId64 " (segment %020" PRId64 ".log, position %" PRIu64 ")\n", dir,
            from, s->base, pos);
    if (make_aside(dir, aside, sizeof aside, out) < 0)
        return 2;
    if (pos < s->size && save_tail(s, aside, pos, out) < 0)
        return 2;
    static const char *const exts[] = SEG_FILE_EXTS;
    for (int k = 0; k < nlater; k++)
        for (size_t e = 0; e < ARRAY_LEN(exts); e++) {
            char name[64];
            snprintf(name, sizeof name, "%020" PRId64 "%s", later[k], exts[e]);
            if (move_file(dir, aside, name, out) < 0)
                return 2;
        }
    if (cut_segment(dir, s->base, pos, out) < 0 || storage_lower_recovery_point(dir, from) != STORAGE_OK ||
        sfs_posix()->fsync_dir(sfs_posix(), dir) < 0) {
        fprintf(out, "%s: repair incomplete; the damaged part is in %s\n", dir, aside);
        return 2;
    }
    fprintf(out, "%s: repaired; the log now ends at offset %" PRId64 " and is writable again; the damaged part "
                 "is kept in %s\n", dir, from, aside);
    return 0;
}

/* Opens the log as the broker would, checking every segment: where it finds
 * damage is where the repair cuts (so the next open agrees by construction). */
static int find_damage(const char *dir, int64_t *from, int64_t *seg, uint64_t *pos, FILE *out)
{
    plog_config_t cfg;
    plog_config_default(&cfg);
    cfg.verify_on_open = true;
    plog_t *log = NULL;
    int r = plog_open(dir, &cfg, sfs_posix(), false, &log);
    if (r == STORAGE_ERR_DAMAGED) {
        *from = log->damaged_from;
        *seg = log->damaged_seg;
        *pos = log->damaged_pos;
    } else if (r != STORAGE_OK) {
        fprintf(out, "%s: cannot open the log: %s%s%s\n", dir, storage_strerror(r), log ? ": " : "",
                log ? log->errmsg : "");
    }
    plog_close(log);
    return r;
}

int storage_repair_dir(const char *dir, FILE *out)
{
    int lock = repair_lock(dir, out);
    if (lock == -1)
        return 2;
    int64_t from = -1, seg = -1, *bases = NULL;
    uint64_t pos = 0;
    int r = find_damage(dir, &from, &seg, &pos, out), rc = 2;
    if (r == STORAGE_OK) {
        fprintf(out, "%s: no damage found, nothing to repair\n", dir);
        rc = 0;
    } else if (r == STORAGE_ERR_DAMAGED) {
        int n = storage_list_segment_bases(dir, &bases, out), i = 0;
        while (i < n && bases[i] <= seg)
            i++;
        seg_t *s = n >= 0 ? storage_open_segment_ro(dir, seg, out) : NULL;
        if (s)
            rc = repair_from(dir, s, from, pos, bases + i, n - i, out);
        if (s)
            seg_unref(s);
    }
    if (lock >= 0)
        close(lock);
    free(bases);
    return rc;
}
