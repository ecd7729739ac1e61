/*
 * plog.c - a partition log's life cycle: open with recovery, the small
 * persistent files (chronik.checkpoint, leader-epoch-checkpoint,
 * partition.metadata), the epoch cache, sync, close. Formats and the
 * recovery rules are in segment.c's header.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "storage/storage_int.h"

void plog_config_default(plog_config_t *c)
{
    *c = (plog_config_t){
        .segment_bytes = PLOG_SEGMENT_BYTES_DEFAULT,
        .roll_ms = PLOG_ROLL_MS_DEFAULT,
        .index_interval_bytes = PLOG_INDEX_INTERVAL_DEFAULT,
        .index_bytes = PLOG_INDEX_BYTES_DEFAULT,
        .retention_ms = PLOG_RETENTION_MS_DEFAULT,
        .retention_bytes = -1,
        .flush_messages = 1,
        .flush_ms = PLOG_FLUSH_MS_DEFAULT,
        .preallocate_bytes = PLOG_PREALLOCATE_BYTES_DEFAULT,
        .cache_window_bytes = PLOG_CACHE_WINDOW_DEFAULT,
    };
}

static void config_sanitize(plog_config_t *c)
{
    c->segment_bytes = MAX(MIN(c->segment_bytes, PLOG_SEGMENT_BYTES_MAX), (int64_t)BATCH_HEADER_BYTES);
    c->index_interval_bytes = MAX(c->index_interval_bytes, 0);
    c->index_bytes = MAX(c->index_bytes, (int64_t)IDX_ENTRY_BYTES * 4);
    c->preallocate_bytes = MAX(MIN(c->preallocate_bytes, c->segment_bytes), 0);
    if (c->roll_ms <= 0)
        c->roll_ms = INT64_MAX;
    if (c->flush_ms <= 0)
        c->flush_ms = PLOG_FLUSH_MS_DEFAULT;
}

int64_t plog_now_ms(const plog_t *log)
{
    return log->clock ? log->clock(log->clock_arg) : clock_wall_ms();
}

void plog_set_error(plog_t *log, int state, const char *fmt, ...)
{
    if (log->state == STORAGE_ERR_DELETED)
        return; /* its files are going away: nothing more to report */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(log->errmsg, sizeof log->errmsg, fmt, ap);
    va_end(ap);
    if (log->state == STORAGE_OK || state == STORAGE_ERR_OFFLINE)
        log->state = state;
    log_error("storage", "%s dir=%s", log->errmsg, log->dir);
}

/* ---- epoch cache --------------------------------------------------------- */

static void epoch_assign(plog_t *log, int32_t epoch, int64_t start)
{
    if (epoch < 0 || (log->nepochs && log->epochs[log->nepochs - 1].epoch >= epoch))
        return;
    if (log->nepochs == log->cap_epochs) {
        log->cap_epochs = log->cap_epochs ? log->cap_epochs * 2 : 8;
        log->epochs = xrealloc(log->epochs, (size_t)log->cap_epochs * sizeof *log->epochs);
    }
    log->epochs[log->nepochs++] = (epoch_entry_t){epoch, start};
    log->epochs_dirty = true;
}

/* Drops entries starting at or after end. */
void epochs_truncate_end(plog_t *log, int64_t end)
{
    int n = log->nepochs;
    while (n > 0 && log->epochs[n - 1].start >= end)
        n--;
    if (n != log->nepochs)
        log->epochs_dirty = true;
    log->nepochs = n;
}

/* Drops entries that end before start; the first one then starts there. */
void epochs_truncate_start(plog_t *log, int64_t start)
{
    int drop = 0;
    while (drop + 1 < log->nepochs && log->epochs[drop + 1].start <= start)
        drop++;
    if (drop) {
        memmove(log->epochs, log->epochs + drop, (size_t)(log->nepochs - drop) * sizeof *log->epochs);
        log->nepochs -= drop;
        log->epochs_dirty = true;
    }
    if (log->nepochs && log->epochs[0].start < start) {
        log->epochs[0].start = start;
        log->epochs_dirty = true;
    }
}

void plog_epoch_assign_locked(plog_t *log, int32_t epoch, int64_t start)
{
    epoch_assign(log, epoch, start);
}

void plog_latest_epoch(plog_t *log, int32_t *epoch, int64_t *start_offset)
{
    pthread_mutex_lock(&log->mu);
    *epoch = log->nepochs ? log->epochs[log->nepochs - 1].epoch : PLOG_EPOCH_UNDEFINED;
    *start_offset = log->nepochs ? log->epochs[log->nepochs - 1].start : -1;
    pthread_mutex_unlock(&log->mu);
}

void plog_epoch_end_offset(plog_t *log, int32_t requested, int32_t *epoch, int64_t *end_offset)
{
    pthread_mutex_lock(&log->mu);
    *epoch = PLOG_EPOCH_UNDEFINED;
    *end_offset = -1;
    int n = log->nepochs;
    if (requested >= 0 && n > 0) {
        if (log->epochs[n - 1].epoch == requested) {
            *epoch = requested;
            *end_offset = log->leo;
        } else {
            int hi = 0; /* first entry with epoch > requested */
            while (hi < n && log->epochs[hi].epoch <= requested)
                hi++;
            if (hi < n) {
                *epoch = hi == 0 ? requested : log->epochs[hi - 1].epoch;
                *end_offset = log->epochs[hi].start;
            }
        }
    }
    pthread_mutex_unlock(&log->mu);
}

/* ---- small persistent files -------------------------------------------- */

int plog_write_epochs(plog_t *log)
{
    pthread_mutex_lock(&log->ckpt_mu);
    pthread_mutex_lock(&log->mu);
    buf_t b;
    buf_init(&b);
    char line[64];
    int n = snprintf(line, sizeof line, "%d\n%d\n", EPOCH_FILE_VERSION, log->nepochs);
    buf_put(&b, line, (size_t)n);
    for (int i = 0; i < log->nepochs; i++) {
        n = snprintf(line, sizeof line, "%d %" PRId64 "\n", log->epochs[i].epoch, log->epochs[i].start);
        buf_put(&b, line, (size_t)n);
    }
    log->epochs_dirty = false;
    pthread_mutex_unlock(&log->mu);
    int r = sfs_write_atomic(log->fs, log->dir, EPOCH_FILE, b.data, b.len);
    buf_free(&b);
    if (r == -ENOSPC || r == -EDQUOT) {
        pthread_mutex_lock(&log->mu);
        log->epochs_dirty = true; /* written again at the next sync */
        pthread_mutex_unlock(&log->mu);
        log_warn("storage", "disk full: %s not written yet dir=%s", EPOCH_FILE, log->dir);
    } else if (r < 0) {
        pthread_mutex_lock(&log->mu);
        log->epochs_dirty = true;
        plog_set_error(log, STORAGE_ERR_FAILED, "writing %s failed: %s", EPOCH_FILE, strerror(-r));
        pthread_mutex_unlock(&log->mu);
    }
    pthread_mutex_unlock(&log->ckpt_mu);
    return r < 0 ? STORAGE_ERR_IO : STORAGE_OK;
}

/* Parses leader-epoch-checkpoint; false when malformed. */
static bool parse_epochs(plog_t *log, const char *s)
{
    int version, count, used;
    if (sscanf(s, "%d\n%d\n%n", &version, &count, &used) != 2 || version != EPOCH_FILE_VERSION ||
        count < 0)
        return false;
    s += used;
    for (int i = 0; i < count; i++) {
        int32_t e;
        int64_t o;
        if (sscanf(s, "%" SCNd32 " %" SCNd64 "%n", &e, &o, &used) != 2 || e < 0 || o < 0)
            return false;
        if (log->nepochs && (e <= log->epochs[log->nepochs - 1].epoch ||
                             o < log->epochs[log->nepochs - 1].start))
            return false;
        epoch_assign(log, e, o);
        s += used;
        while (*s == '\n' || *s == '\r')
            s++;
    }
    log->epochs_dirty = false;
    return *s == 0;
}

static int load_epochs(plog_t *log, bool *ok)
{
    char path[SEG_PATH_MAX], *data;
    size_t n;
    snprintf(path, sizeof path, "%s/%s", log->dir, EPOCH_FILE);
    *ok = true;
    int r = sfs_read_small(log->fs, path, EPOCH_FILE_MAX, &data, &n);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    if (strlen(data) != n || !parse_epochs(log, data)) {
        log_warn("storage", "malformed %s, rebuilding epochs from a full scan dir=%s", EPOCH_FILE, log->dir);
        log->nepochs = 0;
        *ok = false;
    }
    free(data);
    return 0;
}

int plog_write_checkpoint(plog_t *log)
{
    pthread_mutex_lock(&log->ckpt_mu);
    pthread_mutex_lock(&log->mu);
    char text[160];
    int n = snprintf(text, sizeof text, "%s %d\nlog_start_offset %" PRId64 "\nrecovery_point %" PRId64 "\n",
                     CKPT_MAGIC, CKPT_VERSION, log->log_start, log->recovery_point);
    pthread_mutex_unlock(&log->mu);
    int r = sfs_write_atomic(log->fs, log->dir, CKPT_FILE, text, (size_t)n);
    if (r == -ENOSPC || r == -EDQUOT) {
        /* the recovery point only lags (more to scan after a crash) */
        pthread_mutex_lock(&log->mu);
        log->ckpt_dirty = true;
        pthread_mutex_unlock(&log->mu);
        log_warn("storage", "disk full: %s not written yet dir=%s", CKPT_FILE, log->dir);
    } else if (r < 0) {
        pthread_mutex_lock(&log->mu);
        plog_set_error(log, STORAGE_ERR_FAILED, "writing %s failed: %s", CKPT_FILE, strerror(-r));
        pthread_mutex_unlock(&log->mu);
    }
    pthread_mutex_unlock(&log->ckpt_mu);
    return r < 0 ? STORAGE_ERR_IO : STORAGE_OK;
}

/* Missing or malformed: log start 0 and recovery point 0 (scan all). */
static int load_checkpoint(plog_t *log, int64_t *log_start, int64_t *rp)
{
    char path[SEG_PATH_MAX], *data, magic[32];
    size_t n;
    int version;
    *log_start = *rp = 0;
    snprintf(path, sizeof path, "%s/%s", log->dir, CKPT_FILE);
    int r = sfs_read_small(log->fs, path, SMALL_FILE_MAX, &data, &n);
    if (r == -ENOENT)
        return STORAGE_OK;
    if (r < 0)
        return STORAGE_ERR_IO;
    int got = sscanf(data, "%31s %d\nlog_start_offset %" SCNd64 "\nrecovery_point %" SCNd64, magic,
                     &version, log_start, rp);
    free(data);
    if (got >= 2 && !strcmp(magic, CKPT_MAGIC) && version != CKPT_VERSION) {
        snprintf(log->errmsg, sizeof log->errmsg, "%s version %d not supported", CKPT_FILE, version);
        return STORAGE_ERR_FORMAT;
    }
    if (got != 4 || strcmp(magic, CKPT_MAGIC) || *log_start < 0 || *rp < 0) {
        log_warn("storage", "malformed %s, scanning the whole log dir=%s", CKPT_FILE, log->dir);
        *log_start = *rp = 0;
    }
    return STORAGE_OK;
}

static plog_t *log_new(const char *dir, const plog_config_t *cfg, sfs_t *fs);
static void log_free(plog_t *log);

int storage_lower_recovery_point(const char *dir, int64_t rp)
{
    plog_t *log = log_new(dir, NULL, sfs_posix());
    int64_t start, old_rp;
    int r = load_checkpoint(log, &start, &old_rp);
    if (r == STORAGE_OK) {
        log->log_start = MIN(start, rp);
        log->recovery_point = MIN(old_rp, rp);
        r = plog_write_checkpoint(log);
    }
    log_free(log);
    return r;
}

/* ---- partition.metadata ---------------------------------------------------- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void uuid_encode(const uint8_t id[16], char out[23])
{
    int o = 0;
    for (int i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)id[i] << 16;
        if (i + 1 < 16)
            v |= (uint32_t)id[i + 1] << 8;
        if (i + 2 < 16)
            v |= id[i + 2];
        int chars = i + 2 < 16 ? 4 : 2; /* 16 = 5*3 + 1 */
        for (int k = 0; k < chars; k++)
            out[o++] = b64url[(v >> (18 - 6 * k)) & 63];
    }
    out[o] = 0;
}

static bool uuid_decode(const char *s, uint8_t id[16])
{
    uint8_t bits[24];
    for (int i = 0; i < 22; i++) {
        const char *p = s[i] ? strchr(b64url, s[i]) : NULL;
        if (!p)
            return false;
        bits[i] = (uint8_t)(p - b64url);
    }
    for (int i = 0, o = 0; o < 16; i += 4) {
        uint32_t v = (uint32_t)bits[i] << 18 | (uint32_t)bits[i + 1] << 12;
        if (o + 1 < 16)
            v |= (uint32_t)bits[i + 2] << 6 | bits[i + 3];
        id[o++] = (uint8_t)(v >> 16);
        if (o < 16)
            id[o++] = (uint8_t)(v >> 8);
        if (o < 16)
            id[o++] = (uint8_t)v;
    }
    return true;
}

/* A log being created (segment.c, CREATION): partition.metadata is
 * written in place and synced, then one sync of the directory makes it and
 * the first segment durable together. */
static int write_created_meta(plog_t *log, const char *text, size_t n)
{
    int r = sfs_write_synced(log->fs, log->dir, META_FILE, text, n);
    if (r == 0)
        r = log->fs->fsync_dir(log->fs, log->dir);
    if (r == 0) {
        pthread_mutex_lock(&log->mu);
        log->dir_unsynced = false;
        log->created = false;
        pthread_mutex_unlock(&log->mu);
    }
    return r;
}

int plog_set_topic_id(plog_t *log, const uint8_t topic_id[16])
{
    char id[23], text[64];
    uuid_encode(topic_id, id);
    int n = snprintf(text, sizeof text, "version: 0\ntopic_id: %s\n", id);
    pthread_mutex_lock(&log->ckpt_mu);
    pthread_mutex_lock(&log->mu);
    bool created = log->created && log->leo == 0 && log->state == STORAGE_OK;
    pthread_mutex_unlock(&log->mu);
    int r = created ? write_created_meta(log, text, (size_t)n)
                    : sfs_write_atomic(log->fs, log->dir, META_FILE, text, (size_t)n);
    pthread_mutex_unlock(&log->ckpt_mu);
    return r < 0 ? STORAGE_ERR_IO : STORAGE_OK;
}

int storage_read_topic_id(sfs_t *fs, const char *dir, uint8_t topic_id[16])
{
    char path[SEG_PATH_MAX], *data, id[32];
    size_t n;
    int version;
    snprintf(path, sizeof path, "%s/%s", dir, META_FILE);
    int r = sfs_read_small(fs, path, SMALL_FILE_MAX, &data, &n);
    if (r == -ENOENT)
        return STORAGE_ERR_NOT_FOUND;
    if (r < 0)
        return STORAGE_ERR_IO;
    int got = sscanf(data, "version: %d\ntopic_id: %31s", &version, id);
    free(data);
    if (got != 2 || version != 0 || strlen(id) != 22 || !uuid_decode(id, topic_id))
        return STORAGE_ERR_FORMAT;
    return STORAGE_OK;
}

int plog_topic_id(plog_t *log, uint8_t topic_id[16])
{
    pthread_mutex_lock(&log->ckpt_mu);
    int r = storage_read_topic_id(log->fs, log->dir, topic_id);
    pthread_mutex_unlock(&log->ckpt_mu);
    return r;
}

/* ---- deletion ------------------------------------------------------------------ */

int plog_mark_deleted(plog_t *log, char *new_dir, size_t len)
{
    pthread_mutex_lock(&log->ckpt_mu); /* no small-file write runs meanwhile */
    pthread_mutex_lock(&log->mu);
    log->state = STORAGE_ERR_DELETED;
    snprintf(log->errmsg, sizeof log->errmsg, "partition deleted");
    pthread_mutex_unlock(&log->mu);
    int r = storage_set_aside(log->fs, log->dir, "delete", new_dir, len);
    if (r == 0) {
        pthread_mutex_lock(&log->mu);
        CK_ASSERT(!log->dir_old);
        log->dir_old = log->dir; /* readers that loaded it before keep a valid string */
        log->dir = xstrdup(new_dir);
        pthread_mutex_unlock(&log->mu);
    }
    pthread_mutex_unlock(&log->ckpt_mu);
    return r;
}

/* ---- accessors ------------------------------------------------------------- */

#define LOCKED_GET(type, expr)                                                 \
    do {                                                                       \
        pthread_mutex_lock(&log->mu);                                          \
        type v_ = (expr);                                                      \
        pthread_mutex_unlock(&log->mu);                                        \
        return v_;                                                             \
    } while (0)

int64_t plog_log_start_offset(plog_t *log) { LOCKED_GET(int64_t, log->log_start); }
int64_t plog_log_end_offset(plog_t *log) { LOCKED_GET(int64_t, log->leo); }
int64_t plog_flushed_offset(plog_t *log) { LOCKED_GET(int64_t, log->flushed); }
int plog_segment_count(plog_t *log) { LOCKED_GET(int, log->nsegs); }
int plog_state(plog_t *log) { LOCKED_GET(int, log->state); }
bool plog_ack_needs_flush(plog_t *log) { LOCKED_GET(bool, log->cfg.flush_messages <= 1); }
const char *plog_errmsg(plog_t *log) { return log->errmsg; }
const char *plog_dir(plog_t *log) { return log->dir; }

int64_t plog_size_bytes(plog_t *log)
{
    pthread_mutex_lock(&log->mu);
    int64_t n = 0;
    for (int i = 0; i < log->nsegs; i++)
        n += (int64_t)log->segs[i]->size;
    pthread_mutex_unlock(&log->mu);
    return n;
}

void plog_set_config(plog_t *log, const plog_config_t *cfg)
{
    pthread_mutex_lock(&log->mu);
    log->cfg = *cfg;
    config_sanitize(&log->cfg);
    pthread_mutex_unlock(&log->mu);
}

void plog_get_config(plog_t *log, plog_config_t *out)
{
    pthread_mutex_lock(&log->mu);
    *out = log->cfg;
    pthread_mutex_unlock(&log->mu);
}

/* Asserts the invariants of segment.c's header (I1-I5) and txnindex.c's (T1-T2). */
void plog_check_locked(const plog_t *log)
{
    CK_ASSERT(log->nsegs >= 1);
    CK_ASSERT(log->log_start <= log->leo);
    CK_ASSERT(log->leo == log->segs[log->nsegs - 1]->end);
    CK_ASSERT(log->flushed <= log->leo);
    for (int i = 0; i < log->nsegs; i++) {
        const seg_t *s = log->segs[i];
        CK_ASSERT(s->synced <= s->size && s->base <= s->end);
        CK_ASSERT(i + 1 == log->nsegs || (s->sealed && s->end <= log->segs[i + 1]->base));
        CK_ASSERT(s->idx_n == 0 || s->idx[s->idx_n - 1].pos < s->size);
        seg_txn_check(s);
    }
}

/* ---- segment list --------------------------------------------------------- */

void plog_push_seg(plog_t *log, seg_t *s)
{
    if (log->nsegs == log->cap_segs) {
        log->cap_segs = log->cap_segs ? log->cap_segs * 2 : 8;
        log->segs = xrealloc(log->segs, (size_t)log->cap_segs * sizeof *log->segs);
    }
    log->segs[log->nsegs++] = s;
}

static plog_t *log_new(const char *dir, const plog_config_t *cfg, sfs_t *fs)
{
    plog_t *log = xcalloc(1, sizeof *log);
    pthread_mutex_init(&log->mu, NULL);
    pthread_mutex_init(&log->ckpt_mu, NULL);
    pthread_mutex_init(&log->sync_mu, NULL);
    log->dir = xstrdup(dir);
    log->fs = fs;
    log->oldest_unflushed_ms = -1;
    log->damaged_from = log->damaged_to = -1;
    log->txn_rebuild_from = INT64_MAX;
    if (cfg)
        log->cfg = *cfg;
    else
        plog_config_default(&log->cfg);
    config_sanitize(&log->cfg);
    log->clock = log->cfg.clock;
    log->clock_arg = log->cfg.clock_arg;
    return log;
}

static void log_free(plog_t *log)
{
    for (int i = 0; i < log->nsegs; i++)
        seg_unref(log->segs[i]);
    free(log->segs);
    free(log->epochs);
    free(log->dir);
    free(log->dir_old);
    pthread_mutex_destroy(&log->mu);
    pthread_mutex_destroy(&log->ckpt_mu);
    pthread_mutex_destroy(&log->sync_mu);
    free(log);
}

/* ---- open: listing ------------------------------------------------------- */

typedef struct listing {
    int64_t *bases;
    int n, cap;
    char **junk; /* file names to delete */
    int njunk, capjunk;
} listing_t;

static void push_name(listing_t *l, const char *name)
{
    if (l->njunk == l->capjunk) {
        l->capjunk = l->capjunk ? l->capjunk * 2 : 8;
        l->junk = xrealloc(l->junk, (size_t)l->capjunk * sizeof *l->junk);
    }
    l->junk[l->njunk++] = xstrdup(name);
}

static int list_entry(void *arg, const char *name, bool is_dir)
{
    listing_t *l = arg;
    int64_t base;
    const char *ext;
    size_t len = strlen(name);
    if (is_dir)
        return 0;
    if (len > 4 && !strcmp(name + len - 4, ".tmp")) {
        push_name(l, name);
    } else if (seg_parse_name(name, &base, &ext) && !strcmp(ext, ".log")) {
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 16;
            l->bases = xrealloc(l->bases, (size_t)l->cap * sizeof *l->bases);
        }
        l->bases[l->n++] = base;
    } else if (seg_parse_name(name, &base, &ext) && (!strcmp(ext, ".index") || !strcmp(ext, ".timeindex") ||
                                                        !strcmp(ext, SEG_TXN_INDEX_EXT))) {
        push_name(l, name); /* kept below when its .log exists */
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static bool has_base(const listing_t *l, int64_t base)
{
    return l->n > 0 && bsearch(&base, l->bases, (size_t)l->n, sizeof base, cmp_i64) != NULL;
}

/* Lists segments (sorted) and deletes leftovers: tmp files and orphaned
 * index files. */
static int list_dir(plog_t *log, listing_t *l)
{
    memset(l, 0, sizeof *l);
    int r = log->fs->readdir(log->fs, log->dir, list_entry, l);
    if (r < 0)
        return r;
    if (l->n > 1)
        qsort(l->bases, (size_t)l->n, sizeof *l->bases, cmp_i64);
    for (int i = 0; i < l->njunk; i++) {
        int64_t base;
        const char *ext;
        if (!(seg_parse_name(l->junk[i], &base, &ext) && !strstr(ext, ".tmp") && has_base(l, base))) {
            char p[SEG_PATH_MAX];
            snprintf(p, sizeof p, "%s/%s", log->dir, l->junk[i]);
            log_info("storage", "deleting leftover file path=%s", p);
            log->fs->unlink(log->fs, p);
        }
        free(l->junk[i]);
    }
    free(l->junk);
    l->junk = NULL;
    return 0;
}

/* ---- open: recovery -------------------------------------------------------- */

typedef struct recover_ctx {
    plog_t *log;
    seg_t *s;
} recover_ctx_t;

static void recover_note(void *arg, const batch_info_t *b, uint64_t pos)
{
    recover_ctx_t *c = arg;
    seg_note_batch(c->s, b, pos, c->log->cfg.index_interval_bytes);
    epoch_assign(c->log, b->leader_epoch, b->base_offset);
}

static void tail_first(void *arg, const batch_info_t *b, uint64_t pos)
{
    int64_t *first_last = arg;
    UNUSED(pos);
    if (*first_last < 0)
        *first_last = batch_info_last_offset(b);
}

/* Cheap check of a segment believed durable: indexes load and agree with
 * the file, and the batches after the last index entry walk to the end. */
static bool trust_segment(plog_t *log, seg_t *s)
{
    if (seg_load_indexes(s, log->dir) != 0)
        return false;
    uint64_t from = s->idx_n ? s->idx[s->idx_n - 1].pos : 0;
    int64_t first_last = -1;
    seg_scan_t sc;
    if (seg_walk(s, from, s->base, true, tail_first, &first_last, &sc) < 0 || sc.err != BATCH_OK)
        return false;
    if (s->idx_n && first_last != s->base + s->idx[s->idx_n - 1].rel)
        return false;
    s->end = sc.batches ? sc.next_offset : s->base;
    if (s->tidx_n) {
        s->max_ts = s->tidx[s->tidx_n - 1].ts;
        s->max_ts_offset = s->base + s->tidx[s->tidx_n - 1].rel;
    }
    if (sc.max_ts > s->max_ts) {
        s->max_ts = sc.max_ts;
        s->max_ts_offset = sc.max_ts_offset;
    }
    /* the newest time-index entry must name an offset the segment holds */
    if (s->tidx_n && (int64_t)s->tidx[s->tidx_n - 1].rel >= s->end - s->base)
        return false;
    s->bytes_since_index = s->size - from;
    return true;
}

/* Full CRC scan; returns STORAGE_OK, _IO, or _OFFLINE; *torn is set when a
 * torn tail was cut. */
static int scan_segment(plog_t *log, seg_t *s, int64_t rp, bool *torn)
{
    recover_ctx_t c = {log, s};
    seg_scan_t sc;
    s->idx_n = s->tidx_n = 0;
    s->bytes_since_index = 0;
    s->max_ts = s->max_ts_offset = -1;
    s->end = s->base;
    if (seg_walk(s, 0, s->base, true, recover_note, &c, &sc) < 0)
        return STORAGE_ERR_IO;
    if (sc.err == BATCH_OK)
        return STORAGE_OK;
    if (sc.next_offset < rp) {
        /* durable data is bad: keep every byte, serve the valid prefix (scrub.c) */
        s->size = s->alloc = sc.valid_end;
        s->synced = MIN(s->synced, s->size);
        log->damaged_seg = s->base;
        log->damaged_pos = sc.valid_end;
        plog_mark_damaged_locked(log, sc.next_offset, rp,
                                 "corrupt batch in segment %020" PRId64 ".log at position %" PRIu64
                                 " (offset %" PRId64 ", below the recovery point %" PRId64 "): %s",
                                 s->base, sc.valid_end, sc.next_offset, rp, batch_strerror(sc.err));
        return STORAGE_ERR_DAMAGED;
    }
    int zeros = seg_zero_from(s, sc.valid_end); /* 1: a preallocated tail (segment.c), not data */
    if (zeros < 0)
        return STORAGE_ERR_IO;
    if (zeros == 1)
        log_info("storage", "cutting zero tail segment=%020" PRId64 " position=%" PRIu64 " bytes=%" PRIu64
                 " dir=%s", s->base, sc.valid_end, s->size - sc.valid_end, log->dir);
    else
        log_warn("storage", "truncating torn tail segment=%020" PRId64 " position=%" PRIu64 " bytes=%" PRIu64
                 " reason=\"%s\" dir=%s", s->base, sc.valid_end, s->size - sc.valid_end,
                 batch_strerror(sc.err), log->dir);
    if (log->fs->ftruncate(log->fs, s->fd, sc.valid_end) < 0)
        return STORAGE_ERR_IO;
    s->size = s->alloc = sc.valid_end;
    s->synced = MIN(s->synced, s->size);
    *torn = zeros != 1; /* a torn tail ends the log here; zeros lose nothing */
    return STORAGE_OK;
}

static void drop_segment_files(plog_t *log, int64_t base, const char *why)
{
    char p[SEG_PATH_MAX];
    uint64_t size = 0;
    int fd;
    seg_path(p, sizeof p, log->dir, base, ".log");
    if (log->fs->open(log->fs, p, SFS_RDONLY, &fd) == 0) {
        log->fs->fsize(log->fs, fd, &size);
        log->fs->close(log->fs, fd);
    }
    log_warn("storage", "deleting segment %020" PRId64 " (%s) bytes=%" PRIu64 " dir=%s", base, why, size,
             log->dir);
    seg_unlink_files(log->fs, log->dir, base);
}

/* Opens and checks segment i of the listing. */
static int recover_one(plog_t *log, const listing_t *l, int i, int64_t rp, bool *torn, bool *scanned)
{
    seg_t *s;
    int r = seg_open_file(log->fs, log->dir, l->bases[i], &s);
    if (r < 0) {
        plog_set_error(log, STORAGE_ERR_FAILED, "cannot open segment %020" PRId64 ": %s", l->bases[i],
                       strerror(-r));
        return STORAGE_ERR_IO;
    }
    plog_push_seg(log, s);
    if (log->nsegs > 1 && s->base < log->segs[log->nsegs - 2]->end) {
        plog_set_error(log, STORAGE_ERR_OFFLINE, "segment %020" PRId64 " overlaps the previous one", s->base);
        return STORAGE_ERR_OFFLINE;
    }
    bool durable = i + 1 < l->n && l->bases[i + 1] <= rp;
    *scanned = false;
    if (!log->cfg.verify_on_open && s->base < rp && trust_segment(log, s) && s->end <= rp)
        return STORAGE_OK;
    if (durable && !log->cfg.verify_on_open)
        log_warn("storage", "index of segment %020" PRId64 " inconsistent, rebuilding dir=%s", s->base, log->dir);
    *scanned = true;
    return scan_segment(log, s, rp, torn);
}

static int recover_segments(plog_t *log, const listing_t *l, int64_t rp)
{
    bool torn = false;
    for (int i = 0; i < l->n; i++) {
        if (torn) {
            drop_segment_files(log, l->bases[i], "after a torn tail");
            continue;
        }
        bool scanned;
        int r = recover_one(log, l, i, rp, &torn, &scanned);
        if (r == STORAGE_ERR_DAMAGED)
            return r; /* the log ends here; later segments stay on disk, unread */
        if (r != STORAGE_OK)
            return r;
        seg_t *s = log->segs[log->nsegs - 1];
        s->idx_unsynced = scanned; /* rewrite + sync */
        if (scanned || seg_load_txn_index(s, log->dir) != 0)
            plog_txn_index_mark_rebuild(log, s);
        if (!torn && i + 1 < l->n && l->bases[i + 1] > rp && s->end != l->bases[i + 1]) {
            /* an unsynced sealed segment lost its tail at a batch boundary
             * while the next one kept data: the log ends here */
            log_warn("storage", "segment %020" PRId64 " ends at offset %" PRId64 " but the next starts at %"
                     PRId64 ": unsynced tail lost dir=%s", s->base, s->end, l->bases[i + 1], log->dir);
            torn = true;
        }
    }
    return STORAGE_OK;
}

/* Makes the recovered state durable: syncs scanned segments, writes their
 * indexes, fixes log start / recovery point, and creates the active
 * segment when there is none. */
static int finish_open(plog_t *log, int64_t ckpt_start, int64_t rp)
{
    sfs_t *fs = log->fs;
    if (log->nsegs == 0) {
        seg_t *s;
        int r = seg_create(fs, log->dir, ckpt_start, &s);
        if (r < 0)
            return STORAGE_ERR_IO;
        plog_push_seg(log, s);
    }
    for (int i = 0; i < log->nsegs; i++) {
        seg_t *s = log->segs[i];
        s->sealed = i + 1 < log->nsegs;
        if (!s->idx_unsynced)
            continue;
        if (fs->fdatasync(fs, s->fd) < 0 || (s->sealed && seg_write_indexes(s, log->dir, true) < 0))
            return STORAGE_ERR_IO;
        s->synced = s->size;
        s->idx_unsynced = false;
    }
    seg_t *act = log->segs[log->nsegs - 1];
    log->leo = act->end;
    log->log_start = MIN(MAX(ckpt_start, log->segs[0]->base), log->leo);
    log->flushed = log->leo;
    log->recovery_point = MAX(MIN(rp, log->leo), act->base);
    epochs_truncate_end(log, log->leo);
    epochs_truncate_start(log, log->log_start);
    if (log->created) {
        log->dir_unsynced = true; /* synced with partition.metadata, or by the first flush */
        return STORAGE_OK;
    }
    if (fs->fsync_dir(fs, log->dir) < 0)
        return STORAGE_ERR_IO;
    return STORAGE_OK;
}

/* Roll time reference of the active segment after open. */
static void init_roll_ref(plog_t *log)
{
    seg_t *act = log->segs[log->nsegs - 1];
    uint8_t hdr[BATCH_HEADER_BYTES];
    batch_info_t b;
    act->roll_ref_ms = -1;
    if (act->size == 0)
        return;
    if (seg_read_batch_header(act, 0, act->size, &b, hdr) == 0 && b.max_timestamp >= 0)
        act->roll_ref_ms = MIN(b.max_timestamp, plog_now_ms(log));
    else
        act->roll_ref_ms = plog_now_ms(log);
}

/* Makes the log's directory; *made when this call made it (it is empty). */
static int make_dir(plog_t *log, bool *made)
{
    int r = log->fs->mkdir(log->fs, log->dir);
    if (r == -ENOENT) /* the data directory is missing too */
        r = sfs_mkdir_p(log->fs, log->dir);
    *made = r == 0;
    return r == 0 || r == -EEXIST ? STORAGE_OK : STORAGE_ERR_IO;
}

/* Reads what an existing directory holds and recovers its segments
 * (segment.c, RECOVERY); STORAGE_ERR_DAMAGED leaves a usable prefix. */
static int recover_dir(plog_t *log, int64_t *ckpt_start, int64_t *rp)
{
    listing_t l;
    bool epochs_ok;
    int r = load_checkpoint(log, ckpt_start, rp);
    if (r != STORAGE_OK)
        return r;
    if (load_epochs(log, &epochs_ok) < 0)
        return STORAGE_ERR_IO;
    if (!epochs_ok)
        *rp = 0;
    int cr = compact_recover(log->fs, log->dir);
    if (cr == -ENOENT)
        return STORAGE_ERR_NOT_FOUND;
    if (cr < 0)
        return STORAGE_ERR_IO;
    int lr = list_dir(log, &l);
    if (lr == -ENOENT)
        return STORAGE_ERR_NOT_FOUND;
    if (lr < 0)
        return STORAGE_ERR_IO;
    if (l.n == 0 && *ckpt_start == 0) {
        /* no segment and log start 0: no data ever reached this directory
         * (a creation cut short, segment.c CREATION): completed as a new log */
        log_info("storage", "directory holds no segment, completing it as a new log dir=%s", log->dir);
        log->created = true;
    }
    r = recover_segments(log, &l, *rp);
    free(l.bases);
    return r;
}

static int open_dir(plog_t *log, bool create)
{
    int64_t ckpt_start = 0, rp = 0;
    bool made = false;
    if (create && make_dir(log, &made) != STORAGE_OK)
        return STORAGE_ERR_IO;
    log->created = made;
    int r = made ? STORAGE_OK : recover_dir(log, &ckpt_start, &rp);
    bool damaged = r == STORAGE_ERR_DAMAGED;
    if (r != STORAGE_OK && !damaged)
        return r;
    r = finish_open(log, ckpt_start, rp);
    if (r != STORAGE_OK)
        return r;
    init_roll_ref(log);
    plog_check_locked(log);
    if (damaged)
        return STORAGE_ERR_DAMAGED; /* read-only: no checkpoint may move past the damage */
    if (log->created)
        return STORAGE_OK; /* no chronik.checkpoint yet: log start 0, recovery point 0, as it says */
    r = plog_write_checkpoint(log);
    if (r == STORAGE_OK && log->epochs_dirty)
        r = plog_write_epochs(log);
    return r;
}

int plog_open(const char *dir, const plog_config_t *cfg, sfs_t *fs, bool create, plog_t **out)
{
    plog_t *log = log_new(dir, cfg, fs);
    int r = open_dir(log, create);
    if (r == STORAGE_ERR_OFFLINE || r == STORAGE_ERR_DAMAGED) {
        *out = log; /* kept so the caller can report it; refuses writes (and reads when offline) */
        return r;
    }
    if (r != STORAGE_OK) {
        if (log->errmsg[0])
            log_error("storage", "open failed: %s dir=%s", log->errmsg, dir);
        log_free(log);
        *out = NULL;
        return r;
    }
    log_info("storage", "opened log dir=%s segments=%d log_start=%" PRId64 " log_end=%" PRId64, dir,
             log->nsegs, log->log_start, log->leo);
    *out = log;
    return STORAGE_OK;
}

/* ---- sync and close --------------------------------------------------------- */

/* Syncs the index files of a sealed segment. */
static int sync_index_files(plog_t *log, int64_t base)
{
    static const char *const exts[] = SEG_INDEX_EXTS;
    for (size_t i = 0; i < ARRAY_LEN(exts); i++) {
        char p[SEG_PATH_MAX];
        int fd;
        seg_path(p, sizeof p, log->dir, base, exts[i]);
        int r = log->fs->open(log->fs, p, SFS_RDONLY, &fd);
        if (r < 0)
            return r;
        r = log->fs->fdatasync(log->fs, fd);
        log->fs->close(log->fs, fd);
        if (r < 0)
            return r;
    }
    return 0;
}

bool plog_wants_sync(plog_t *log, int64_t now_ms)
{
    pthread_mutex_lock(&log->mu);
    bool dirty = log->leo > log->flushed || log->dir_unsynced || log->epochs_dirty || log->ckpt_dirty;
    bool due = log->cfg.flush_messages <= 1 || log->unflushed_msgs >= log->cfg.flush_messages ||
               (log->oldest_unflushed_ms >= 0 && now_ms - log->oldest_unflushed_ms >= log->cfg.flush_ms);
    bool r = log->state == STORAGE_OK && dirty && due;
    pthread_mutex_unlock(&log->mu);
    return r;
}

typedef struct sync_item {
    seg_t *s;
    uint64_t size;  /* synced up to here when done */
    bool data, idx;
    bool trim;      /* the file was cut: fsync, so its new size is durable */
    uint32_t trims; /* the segment's count of cuts when collected */
} sync_item_t;

/* Under the lock: what needs syncing. */
static int collect_sync(plog_t *log, sync_item_t **items)
{
    int n = 0;
    *items = xmalloc((size_t)log->nsegs * sizeof **items);
    for (int i = 0; i < log->nsegs; i++) {
        seg_t *s = log->segs[i];
        if (s->synced >= s->size && !s->idx_unsynced && !s->trim_unsynced)
            continue;
        seg_ref(s);
        (*items)[n++] = (sync_item_t){s, s->size, s->synced < s->size, s->idx_unsynced, s->trim_unsynced,
                                      s->trims};
    }
    return n;
}

/* Under the lock, after a successful sync: records what became durable and
 * returns the recovery point it allows. */
static int64_t apply_sync(plog_t *log, sync_item_t *items, int n, int64_t target, uint64_t gen)
{
    for (int i = 0; i < n; i++) {
        seg_t *s = items[i].s;
        s->synced = MIN(MAX(s->synced, items[i].size), s->size);
        if (items[i].idx && gen == log->trunc_gen)
            s->idx_unsynced = false;
        if (items[i].trim && s->trims == items[i].trims)
            s->trim_unsynced = false;
    }
    if (gen == log->trunc_gen)
        log->flushed = MAX(log->flushed, MIN(target, log->leo));
    for (int i = 0; i + 1 < log->nsegs; i++)
        if (log->segs[i]->synced < log->segs[i]->size || log->segs[i]->idx_unsynced ||
            log->segs[i]->trim_unsynced)
            return log->recovery_point;
    /* every sealed segment is durable with its indexes */
    return MAX(log->segs[log->nsegs - 1]->base, log->recovery_point);
}

static int do_syncs(plog_t *log, sync_item_t *items, int n, bool dir, int *count)
{
    int r = 0;
    for (int i = 0; i < n && r == 0; i++) {
        if (items[i].trim && (r = log->fs->fsync(log->fs, items[i].s->fd)) == 0)
            ++*count;
        else if (r == 0 && items[i].data && (r = log->fs->fdatasync(log->fs, items[i].s->fd)) == 0)
            ++*count;
        if (r == 0 && items[i].idx && (r = sync_index_files(log, items[i].s->base)) == 0)
            *count += 2;
    }
    if (r == 0 && dir)
        r = log->fs->fsync_dir(log->fs, log->dir);
    return r;
}

#define CACHE_PAGE 4096

typedef struct drop_item {
    seg_t *s;
    uint64_t from, to;
} drop_item_t;

/* Under the lock: the synced ranges that have fallen more than the cache
 * window behind the log end and are not yet dropped, newest segment first;
 * stops at a segment dropped whole. */
static int collect_drops(plog_t *log, drop_item_t **out)
{
    *out = NULL;
    int64_t keep = log->cfg.cache_window_bytes;
    if (keep < 0 || !log->fs->real_fds)
        return 0;
    int n = 0;
    uint64_t behind = 0; /* bytes after the segment being looked at */
    for (int i = log->nsegs - 1; i >= 0; i--) {
        seg_t *s = log->segs[i];
        uint64_t back = behind >= (uint64_t)keep ? 0 : (uint64_t)keep - behind;
        uint64_t limit = s->size > back ? s->size - back : 0;
        limit = MIN(limit, s->synced) & ~(uint64_t)(CACHE_PAGE - 1);
        if (limit > s->dropped) {
            if (!*out)
                *out = xmalloc((size_t)log->nsegs * sizeof **out);
            seg_ref(s);
            (*out)[n++] = (drop_item_t){s, s->dropped, limit};
            s->dropped = limit;
        } else if (back == 0 && s->dropped >= (s->size & ~(uint64_t)(CACHE_PAGE - 1))) {
            break; /* older segments went before this one */
        }
        behind += s->size;
    }
    return n;
}

static void drop_cached(drop_item_t *items, int n)
{
    for (int i = 0; i < n; i++) {
        posix_fadvise(items[i].s->fd, (off_t)items[i].from, (off_t)(items[i].to - items[i].from),
                      POSIX_FADV_DONTNEED);
        seg_unref(items[i].s);
    }
    free(items);
}

/* Under sync_mu: plog_sync's work. */
static int sync_serialised(plog_t *log)
{
    pthread_mutex_lock(&log->mu);
    if (log->state != STORAGE_OK) {
        pthread_mutex_unlock(&log->mu);
        return -1;
    }
    sync_item_t *items;
    int n = collect_sync(log, &items), count = 0;
    int64_t target = log->leo;
    uint64_t gen = log->trunc_gen;
    bool dir = log->dir_unsynced, epochs = log->epochs_dirty, ckpt = log->ckpt_dirty;
    log->dir_unsynced = false;
    log->ckpt_dirty = false;
    log->unflushed_msgs = 0;
    log->oldest_unflushed_ms = -1;
    pthread_mutex_unlock(&log->mu);

    int r = do_syncs(log, items, n, dir, &count);
    if (r == 0 && epochs && plog_write_epochs(log) != STORAGE_OK)
        r = -EIO;
    pthread_mutex_lock(&log->mu);
    int64_t rp = log->recovery_point;
    if (r < 0) {
        log->dir_unsynced |= dir;
        plog_set_error(log, STORAGE_ERR_FAILED, "sync failed: %s", strerror(-r));
    } else {
        rp = apply_sync(log, items, n, target, gen);
    }
    bool move = r == 0 && rp > log->recovery_point;
    if (move)
        log->recovery_point = rp;
    if (r < 0)
        log->ckpt_dirty |= ckpt;
    drop_item_t *drops = NULL;
    int ndrops = r == 0 ? collect_drops(log, &drops) : 0;
    pthread_mutex_unlock(&log->mu);
    drop_cached(drops, ndrops);
    for (int i = 0; i < n; i++)
        seg_unref(items[i].s);
    free(items);
    if ((move || (ckpt && r == 0)) && plog_write_checkpoint(log) != STORAGE_OK)
        r = -EIO;
    return r < 0 ? -1 : count;
}

int plog_sync(plog_t *log, bool force)
{
    int64_t now = plog_now_ms(log);
    if (!force && !plog_wants_sync(log, now))
        return 0;
    pthread_mutex_lock(&log->sync_mu);
    int r = sync_serialised(log);
    pthread_mutex_unlock(&log->sync_mu);
    return r;
}

/* Clean close: everything synced, active indexes on disk, recovery point at
 * the log end, so the next open scans nothing. */
static void close_clean(plog_t *log)
{
    pthread_mutex_lock(&log->mu);
    int r = seg_trim(log->segs[log->nsegs - 1]);
    pthread_mutex_unlock(&log->mu);
    if (r < 0) {
        log_warn("storage", "could not cut the zero tail at close: %s dir=%s", strerror(-r), log->dir);
        return;
    }
    if (plog_sync(log, true) < 0)
        return;
    seg_t *act = log->segs[log->nsegs - 1];
    if (act->max_ts >= 0)
        seg_tidx_push(act, act->max_ts, (uint32_t)(act->max_ts_offset - act->base));
    if (seg_write_indexes(act, log->dir, true) < 0) {
        log_warn("storage", "could not write indexes at close dir=%s", log->dir);
        return;
    }
    pthread_mutex_lock(&log->mu);
    log->recovery_point = log->flushed;
    pthread_mutex_unlock(&log->mu);
    plog_write_checkpoint(log);
}

int plog_close(plog_t *log)
{
    if (!log)
        return STORAGE_OK;
    flush_req_t *reqs = NULL;
    if (log->flusher)
        flusher_detach(log->flusher, log, &reqs);
    if (log->state == STORAGE_OK)
        close_clean(log);
    int state = log->state;
    while (reqs) {
        flush_req_t *q = reqs;
        reqs = q->next;
        bool ok = state == STORAGE_OK && q->upto <= log->flushed;
        q->cb(q->arg, ok ? STORAGE_OK : (state == STORAGE_OK ? STORAGE_ERR_CLOSED : state));
        free(q);
    }
    log_free(log);
    return state == STORAGE_ERR_OFFLINE ? STORAGE_OK : state;
}
