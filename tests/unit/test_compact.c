/* test_compact.c - log compaction: latest value per key, tombstones and
 * their delete horizon, the active segment, reads across compacted
 * segments, bounded key map, special batches, and crashes during a swap. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "proto/batch.h"
#include "proto/compress.h"
#include "storage/storage.h"
#include "test.h"

#define RECS_MAX 4096
#define KEY_MAX 24
#define VALUE_MAX 40

/* ---- helpers ------------------------------------------------------------------ */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static void rm_rf(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static char *tmpdir(void)
{
    char *d = xstrdup("/tmp/chronik-compact-XXXXXX");
    CK_ASSERT(mkdtemp(d));
    return d;
}

static int64_t fake_now = 1700000000000LL;
static int64_t segment_bytes = PLOG_SEGMENT_BYTES_DEFAULT; /* of the logs fx_open opens */
static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

typedef struct rec {
    int64_t offset;
    int64_t ts;
    bool has_key, tomb;
    char key[KEY_MAX];
    char value[VALUE_MAX];
} rec_t;

/* A log, its flusher and the model of everything appended. */
typedef struct fx {
    char *dir;
    sfs_t *fs;
    plog_t *log;
    flusher_t *fl;
    rec_t model[RECS_MAX];
    int n;
} fx_t;

static int fx_open(fx_t *x)
{
    plog_config_t c;
    plog_config_default(&c);
    c.clock = fake_clock;
    c.index_interval_bytes = 150;
    c.segment_bytes = segment_bytes;
    int r = plog_open(x->dir, &c, x->fs, true, &x->log);
    if (r == STORAGE_OK)
        flusher_attach(x->fl, x->log);
    return r;
}

static fx_t *fx_new(sfs_t *fs)
{
    fx_t *x = xcalloc(1, sizeof *x);
    x->dir = tmpdir();
    x->fs = fs ? fs : sfs_posix();
    x->fl = flusher_new();
    CK_ASSERT(fx_open(x) == STORAGE_OK);
    return x;
}

static void fx_free(fx_t *x)
{
    plog_close(x->log);
    flusher_free(x->fl);
    rm_rf(x->dir);
    free(x->dir);
    free(x);
}

static void compress_batch(buf_t *b, size_t at, int codec);

/* Appends one batch of n records (key NULL: keyless; value NULL:
 * tombstone) with the given attributes and producer; returns its base. */
static int64_t put_batch_codec(fx_t *x, int n, const char *const *keys, const char *const *values, int16_t attrs,
                               int64_t pid, int32_t seq, int codec)
{
    buf_t b;
    batch_builder_t bb;
    buf_init(&b);
    batch_build_begin(&bb, &b, 0, attrs, fake_now, pid, pid >= 0 ? 0 : -1, seq);
    for (int i = 0; i < n; i++)
        batch_build_add(&bb, fake_now + i, keys[i], keys[i] ? (int32_t)strlen(keys[i]) : -1, values[i],
                        values[i] ? (int32_t)strlen(values[i]) : -1, NULL, 0);
    batch_build_end(&bb);
    if (codec != BATCH_CODEC_NONE)
        compress_batch(&b, 0, codec);
    plog_append_result_t res;
    CK_ASSERT(plog_append(x->log, b.data, b.len, 0, &res) == STORAGE_OK);
    buf_free(&b);
    for (int i = 0; i < n; i++) {
        rec_t *m = &x->model[x->n++];
        CK_ASSERT(x->n <= RECS_MAX);
        *m = (rec_t){.offset = res.base_offset + i, .ts = fake_now + i, .has_key = keys[i] != NULL,
                     .tomb = values[i] == NULL};
        snprintf(m->key, sizeof m->key, "%s", keys[i] ? keys[i] : "");
        snprintf(m->value, sizeof m->value, "%s", values[i] ? values[i] : "");
    }
    return res.base_offset;
}

static int64_t put_batch(fx_t *x, int n, const char *const *keys, const char *const *values, int16_t attrs,
                         int64_t pid, int32_t seq)
{
    return put_batch_codec(x, n, keys, values, attrs, pid, seq, BATCH_CODEC_NONE);
}

static int64_t put(fx_t *x, const char *key, const char *value)
{
    return put_batch(x, 1, &key, &value, 0, -1, -1);
}

/* Rolls and makes every sealed segment durable (compaction needs that). */
static void seal(fx_t *x)
{
    CK_ASSERT(plog_roll(x->log) == STORAGE_OK);
    flusher_run_once(x->fl);
}

static plog_compact_opts_t opts(void)
{
    plog_compact_opts_t o;
    plog_compact_opts_default(&o);
    o.force = true;
    o.io_bytes_per_sec = 0;
    o.delete_retention_ms = 1000;
    return o;
}

static int compact(fx_t *x, plog_compact_stats_t *st)
{
    plog_compact_opts_t o = opts();
    return plog_compact(x->log, &o, st);
}

/* The uncompressed twin of the compressed batch at p (codec bits cleared,
 * records decompressed) in out; false when unreadable. */
static bool expand_batch(const uint8_t *p, const batch_info_t *info, buf_t *out)
{
    buf_reset(out);
    buf_put(out, p, BATCH_HEADER_BYTES);
    if (kcodec_decompress(info->codec, p + BATCH_HEADER_BYTES, info->size - BATCH_HEADER_BYTES, out,
                          KCODEC_MAX_OUT_DEFAULT) != 0)
        return false;
    be32_store(out->data + BATCH_OFF_LENGTH, (uint32_t)(out->len - BATCH_LOG_OVERHEAD));
    be16_store(out->data + BATCH_OFF_ATTRIBUTES, (uint16_t)(info->attributes & ~BATCH_ATTR_CODEC_MASK));
    return true;
}

/* Compresses the records of the uncompressed batch at b[at..] with codec
 * and fixes its header (length, codec bits, CRC). */
static void compress_batch(buf_t *b, size_t at, int codec)
{
    buf_t z;
    buf_init(&z);
    CK_ASSERT(kcodec_compress(codec, b->data + at + BATCH_HEADER_BYTES, b->len - at - BATCH_HEADER_BYTES, &z) == 0);
    b->len = at + BATCH_HEADER_BYTES;
    buf_put(b, z.data, z.len);
    buf_free(&z);
    uint8_t *h = b->data + at;
    be32_store(h + BATCH_OFF_LENGTH, (uint32_t)(b->len - at - BATCH_LOG_OVERHEAD));
    be16_store(h + BATCH_OFF_ATTRIBUTES, (uint16_t)(be16_load(h + BATCH_OFF_ATTRIBUTES) | codec));
    be32_store(h + BATCH_OFF_CRC, batch_crc_compute(h, b->len - at));
}

/* Reads every record of the log from its start; -1 on any error or when
 * offsets do not increase. Records of compressed batches are read through
 * decompression; those of unreadable ones are skipped. */
static int read_recs(plog_t *log, rec_t *out, int max)
{
    int n = 0;
    int64_t off = plog_log_start_offset(log), prev = -1;
    buf_t b, ex;
    buf_init(&b);
    buf_init(&ex);
    for (;;) {
        int64_t next;
        buf_reset(&b);
        if (plog_read_copy(log, off, INT64_MAX, 4096, &b, &next) != STORAGE_OK) {
            n = -1;
            break;
        }
        if (b.len == 0)
            break;
        for (size_t pos = 0; pos < b.len && n >= 0;) {
            batch_info_t info;
            batch_iter_t it;
            batch_record_t r;
            if (batch_check_stored(b.data + pos, b.len - pos, &info) != BATCH_OK) {
                n = -1;
                break;
            }
            const uint8_t *bp = b.data + pos;
            size_t bsize = info.size;
            if (info.codec != BATCH_CODEC_NONE && expand_batch(bp, &info, &ex)) {
                bp = ex.data;
                bsize = ex.len;
            }
            if (batch_iter_init(&it, bp, bsize)) {
                while (n >= 0 && batch_iter_next(&it, &r)) {
                    if (r.offset <= prev || n >= max || r.key_len >= KEY_MAX || r.value_len >= VALUE_MAX) {
                        n = -1;
                        break;
                    }
                    rec_t *m = &out[n++];
                    *m = (rec_t){.offset = r.offset, .ts = r.timestamp, .has_key = r.key != NULL,
                                 .tomb = r.value == NULL};
                    memcpy(m->key, r.key ? (const char *)r.key : "", r.key ? (size_t)r.key_len : 0);
                    memcpy(m->value, r.value ? (const char *)r.value : "", r.value ? (size_t)r.value_len : 0);
                    prev = r.offset;
                }
                if (it.failed)
                    n = -1;
            }
            pos += info.size;
        }
        if (n < 0 || next <= off)
            break;
        off = next;
    }
    buf_free(&b);
    buf_free(&ex);
    return n;
}

static bool rec_eq(const rec_t *a, const rec_t *b)
{
    return a->offset == b->offset && a->ts == b->ts && a->has_key == b->has_key && a->tomb == b->tomb &&
           !strcmp(a->key, b->key) && !strcmp(a->value, b->value);
}

/* The model record at offset, or NULL. */
static const rec_t *model_at(const fx_t *x, int64_t offset)
{
    for (int i = 0; i < x->n; i++)
        if (x->model[i].offset == offset)
            return &x->model[i];
    return NULL;
}

/* True when model record i is its key's latest below end. */
static bool latest_below(const fx_t *x, int i, int64_t end)
{
    const rec_t *m = &x->model[i];
    for (int k = i + 1; k < x->n && x->model[k].offset < end; k++)
        if (x->model[k].has_key && !strcmp(x->model[k].key, m->key))
            return false;
    return true;
}

/* Survivors of a complete pass over [.., cleanable_end): keyless records,
 * each key's latest below it (tombstones too unless gone), and everything
 * from cleanable_end on. */
static int expected(const fx_t *x, int64_t cleanable_end, bool tombs_gone, rec_t *out)
{
    int n = 0;
    for (int i = 0; i < x->n; i++) {
        const rec_t *m = &x->model[i];
        bool keep = m->offset >= cleanable_end || !m->has_key ||
                    (latest_below(x, i, cleanable_end) && !(m->tomb && tombs_gone));
        if (keep)
            out[n++] = *m;
    }
    return n;
}

/* The log holds exactly want[0, n). */
static bool log_holds(plog_t *log, const rec_t *want, int n)
{
    static rec_t got[RECS_MAX];
    int k = read_recs(log, got, RECS_MAX);
    if (k != n) {
        fprintf(stderr, "  log holds %d records, expected %d\n", k, n);
        return false;
    }
    for (int i = 0; i < n; i++) {
        if (!rec_eq(&got[i], &want[i])) {
            fprintf(stderr, "  record %d: offset %lld key %s, expected offset %lld key %s\n", i,
                    (long long)got[i].offset, got[i].key, (long long)want[i].offset, want[i].key);
            return false;
        }
    }
    return true;
}

static int check_quiet(const char *dir)
{
    FILE *f = fopen("/dev/null", "w");
    int r = storage_check_dir(dir, f);
    fclose(f);
    return r;
}

static int count_ext(const char *dir, const char *ext)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name), el = strlen(ext);
        n += l > el && !strcmp(e->d_name + l - el, ext);
    }
    if (d)
        closedir(d);
    return n;
}

/* Writes updates round-robin over nkeys keys, rolling every per_seg. */
static void updates(fx_t *x, int nkeys, int count, int per_seg)
{
    for (int i = 0; i < count; i++) {
        char k[16], v[32];
        snprintf(k, sizeof k, "key-%d", i % nkeys);
        snprintf(v, sizeof v, "value-%d", i);
        put(x, k, v);
        fake_now++;
        if ((i + 1) % per_seg == 0)
            seal(x);
    }
}

/* ---- tests --------------------------------------------------------------------- */

/* Each key keeps its latest value at its original offset; older values go;
 * small segments merge; the log start and end stay. */
TEST(latest_value_per_key)
{
    fx_t *x = fx_new(NULL);
    updates(x, 10, 300, 40);
    put(x, "key-1", "in-active");
    int64_t start = plog_log_start_offset(x->log), end = plog_log_end_offset(x->log);
    int64_t sealed_end = 280; /* 7 full segments of 40 sealed; 20 + 1 in the active one */
    int before = plog_segment_count(x->log);
    plog_compact_stats_t st;
    REQUIRE(compact(x, &st) == STORAGE_OK);
    CHECK(st.ran && st.complete);
    CHECK_EQ_INT(st.records_removed, 270);
    CHECK(st.groups_rewritten >= 1);
    CHECK(plog_segment_count(x->log) < before);
    CHECK_EQ_INT(plog_log_start_offset(x->log), start);
    CHECK_EQ_INT(plog_log_end_offset(x->log), end);
    static rec_t want[RECS_MAX];
    int n = expected(x, sealed_end, false, want);
    CHECK_EQ_INT(n, 10 + 21);
    CHECK(log_holds(x->log, want, n));
    CHECK_EQ_INT(check_quiet(x->dir), 0);
    /* the result persists */
    plog_close(x->log);
    REQUIRE(fx_open(x) == STORAGE_OK);
    CHECK(log_holds(x->log, want, n));
    /* a second pass finds nothing to change */
    REQUIRE(compact(x, &st) == STORAGE_OK);
    CHECK_EQ_INT(st.records_removed, 0);
    CHECK_EQ_INT(st.groups_rewritten, 0);
    CHECK(log_holds(x->log, want, n));
    fx_free(x);
}

/* A tombstone removes its key's older values at once, is kept until
 * delete_retention_ms after the pass that first kept it, then goes. */
TEST(tombstone_kept_then_dropped)
{
    fx_t *x = fx_new(NULL);
    put(x, "a", "a1");
    put(x, "b", "b1");
    put(x, "c", "c1");
    put(x, "b", "b2");
    int64_t tomb = put(x, "b", NULL);
    put(x, "c", "c2");
    seal(x);
    put(x, "d", "d1");
    plog_compact_stats_t st;
    REQUIRE(compact(x, &st) == STORAGE_OK);
    static rec_t want[RECS_MAX];
    int n = expected(x, 6, false, want);
    CHECK_EQ_INT(n, 3 + 1);
    CHECK(log_holds(x->log, want, n)); /* timestamps of the stamped tombstone unchanged */
    fake_now += 999;
    REQUIRE(compact(x, &st) == STORAGE_OK);
    CHECK_EQ_INT(st.tombstones_removed, 0);
    CHECK(log_holds(x->log, want, n));
    fake_now += 1;
    plog_compact_opts_t o = opts();
    o.force = false; /* the horizon alone makes the pass due */
    o.min_dirty_ratio = 0.99;
    REQUIRE(plog_compact(x->log, &o, &st) == STORAGE_OK);
    CHECK(st.ran);
    CHECK_EQ_INT(st.tombstones_removed, 1);
    n = expected(x, 6, true, want);
    CHECK_EQ_INT(n, 3);
    CHECK(log_holds(x->log, want, n));
    /* reading at the tombstone's offset lands on the next survivor */
    buf_t b;
    int64_t next;
    buf_init(&b);
    REQUIRE(plog_read_copy(x->log, tomb, INT64_MAX, 1, &b, &next) == STORAGE_OK);
    batch_info_t info;
    REQUIRE(batch_check_stored(b.data, b.len, &info) == BATCH_OK);
    CHECK_EQ_INT(info.base_offset, tomb + 1);
    buf_free(&b);
    fx_free(x);
}

/* The active segment is never rewritten, duplicates in it included. */
TEST(active_segment_untouched)
{
    fx_t *x = fx_new(NULL);
    updates(x, 3, 30, 10);
    for (int i = 0; i < 5; i++)
        put(x, "key-0", "again");
    char path[4200];
    snprintf(path, sizeof path, "%s/%020lld.log", x->dir, 30LL);
    static uint8_t before[8192], after[8192];
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    ssize_t nb = read(fd, before, sizeof before);
    close(fd);
    REQUIRE(compact(x, NULL) == STORAGE_OK);
    fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    ssize_t na = read(fd, after, sizeof after);
    close(fd);
    CHECK(nb > 0 && nb == na && memcmp(before, after, (size_t)nb) == 0);
    static rec_t want[RECS_MAX];
    int n = expected(x, 30, false, want);
    CHECK_EQ_INT(n, 3 + 5);
    CHECK(log_holds(x->log, want, n));
    fx_free(x);
}

/* The first record at or after off in batches (concatenated); -1 none. */
static int64_t first_at(const buf_t *b, int64_t off)
{
    for (size_t pos = 0; pos < b->len;) {
        batch_info_t info;
        batch_iter_t it;
        batch_record_t r;
        if (batch_check_stored(b->data + pos, b->len - pos, &info) != BATCH_OK ||
            !batch_iter_init(&it, b->data + pos, info.size))
            return -1;
        while (batch_iter_next(&it, &r))
            if (r.offset >= off)
                return r.offset;
        pos += info.size;
    }
    return -1;
}

/* Reading at any offset (kept or removed, plog_read and plog_read_copy)
 * starts at a batch from which the next surviving record is reached. */
TEST(reads_at_every_offset)
{
    fx_t *x = fx_new(NULL);
    for (int i = 0; i < 60; i++) { /* batches of 4: one unique key, three shared */
        char k[4][16], v[4][16];
        const char *ks[4], *vs[4];
        for (int j = 0; j < 4; j++) {
            if (j == 0)
                snprintf(k[j], sizeof k[j], "u%d", i);
            else
                snprintf(k[j], sizeof k[j], "k%d", (i * 4 + j) % 7);
            snprintf(v[j], sizeof v[j], "v%d", i * 4 + j);
            ks[j] = k[j];
            vs[j] = v[j];
        }
        put_batch(x, 4, ks, vs, 0, -1, -1);
        if (i % 12 == 11)
            seal(x);
    }
    REQUIRE(compact(x, NULL) == STORAGE_OK);
    static rec_t want[RECS_MAX];
    int n = expected(x, 240, false, want);
    REQUIRE(n == 60 + 7 && log_holds(x->log, want, n));
    buf_t b;
    buf_init(&b);
    for (int64_t off = 0, k = 0; off < 240; off++) {
        while (k < n && want[k].offset < off)
            k++;
        buf_reset(&b);
        int64_t next;
        REQUIRE(plog_read_copy(x->log, off, INT64_MAX, 1 << 20, &b, &next) == STORAGE_OK);
        CHECK_EQ_INT(first_at(&b, off), want[k].offset);
        plog_read_result_t rr;
        REQUIRE(plog_read(x->log, off, INT64_MAX, 1, &rr) == STORAGE_OK);
        uint8_t hdr[BATCH_HEADER_BYTES];
        CHECK(rr.length >= BATCH_HEADER_BYTES && pread(rr.fd, hdr, sizeof hdr, (off_t)rr.position) == sizeof hdr);
        CHECK(b.len >= sizeof hdr && memcmp(hdr, b.data, sizeof hdr) == 0);
        plog_read_release(&rr);
    }
    buf_free(&b);
    fx_free(x);
}

/* A key map too small for the dirty part compacts in several passes to the
 * same result, holding at most about map_bytes. */
TEST(small_map_compacts_in_passes)
{
    fx_t *x = fx_new(NULL);
    updates(x, 150, 900, 100);
    plog_compact_opts_t o = opts();
    o.map_bytes = 2048;
    plog_compact_stats_t st = {0};
    int passes = 0;
    do {
        REQUIRE(plog_compact(x->log, &o, &st) == STORAGE_OK);
        passes++;
    } while (!st.complete && passes < 100);
    CHECK(passes > 3 && st.complete);
    static rec_t want[RECS_MAX];
    int n = expected(x, 900, false, want);
    CHECK_EQ_INT(n, 150);
    CHECK(log_holds(x->log, want, n));
    CHECK_EQ_INT(check_quiet(x->dir), 0);
    fx_free(x);
}

/* Keyless records, control batches and compressed batches are kept whole;
 * transactional records never supersede, but are superseded. */
TEST(special_batches)
{
    fx_t *x = fx_new(NULL);
    const char *nk[] = {NULL}, *nv[] = {"keyless"};
    put_batch(x, 1, nk, nv, 0, -1, -1);
    const char *tk[] = {"t"}, *tv[] = {"txn-old"};
    put_batch(x, 1, tk, tv, BATCH_ATTR_TRANSACTIONAL, 5, 0);
    put(x, "t", "plain-new"); /* supersedes the transactional record */
    put(x, "u", "plain-old");
    const char *uk[] = {"u"}, *uv[] = {"txn-new"};
    put_batch(x, 1, uk, uv, BATCH_ATTR_TRANSACTIONAL, 5, 1); /* does not supersede */
    const char *ck[] = {"\x00\x00\x00\x00"}, *cv[] = {"marker"};
    int64_t ctl = put_batch(x, 1, ck, cv, BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL, 5, -1);
    put(x, "z", "z-old");
    /* an unreadable "compressed" batch: the codec bits set on an uncompressed body */
    buf_t cb;
    batch_builder_t bb;
    buf_init(&cb);
    batch_build_begin(&bb, &cb, 0, 0, fake_now, -1, -1, -1);
    batch_build_add(&bb, fake_now, "z", 1, "z-zipped", 8, NULL, 0);
    size_t cz = batch_build_end(&bb);
    be16_store(cb.data + BATCH_OFF_ATTRIBUTES, BATCH_CODEC_GZIP);
    be32_store(cb.data + BATCH_OFF_CRC, batch_crc_compute(cb.data, cz));
    plog_append_result_t res;
    REQUIRE(plog_append(x->log, cb.data, cb.len, 0, &res) == STORAGE_OK);
    put(x, "z", NULL); /* behind a compressed batch: never dropped */
    seal(x);
    fake_now += 10000;
    REQUIRE(compact(x, NULL) == STORAGE_OK);
    fake_now += 10000;
    plog_compact_stats_t st;
    REQUIRE(compact(x, &st) == STORAGE_OK);
    CHECK_EQ_INT(st.tombstones_removed, 0);
    static rec_t got[RECS_MAX];
    int n = read_recs(x->log, got, RECS_MAX);
    /* keyless, t=plain-new, u=plain-old, u=txn-new, marker, z tombstone */
    REQUIRE(n == 6);
    CHECK(!got[0].has_key && !strcmp(got[0].value, "keyless"));
    CHECK(!strcmp(got[1].key, "t") && !strcmp(got[1].value, "plain-new"));
    CHECK(!strcmp(got[2].value, "plain-old") && !strcmp(got[3].value, "txn-new"));
    CHECK_EQ_INT(got[4].offset, ctl);
    CHECK(!strcmp(got[5].key, "z") && got[5].tomb);
    /* the compressed batch is there byte for byte */
    buf_t b;
    int64_t next;
    buf_init(&b);
    REQUIRE(plog_read_copy(x->log, res.base_offset, INT64_MAX, 1, &b, &next) == STORAGE_OK);
    CHECK(b.len >= cz && memcmp(b.data + BATCH_OFF_LEADER_EPOCH + 4, cb.data + BATCH_OFF_LEADER_EPOCH + 4,
                                cz - BATCH_OFF_LEADER_EPOCH - 4) == 0);
    buf_free(&b);
    buf_free(&cb);
    CHECK_EQ_INT(plog_compact_check_keys(NULL, 0), PLOG_KEYS_OK);
    fx_free(x);
}

/* The codecs of the batches in the log that hold records, in order. */
static int codecs_of(plog_t *log, uint8_t *codecs, int max)
{
    buf_t b;
    int n = 0;
    buf_init(&b);
    for (int64_t off = plog_log_start_offset(log), next;; off = next) {
        buf_reset(&b);
        CK_ASSERT(plog_read_copy(log, off, INT64_MAX, 1 << 20, &b, &next) == STORAGE_OK);
        for (size_t pos = 0; pos < b.len && n < max;) {
            batch_info_t info;
            CK_ASSERT(batch_check_stored(b.data + pos, b.len - pos, &info) == BATCH_OK);
            if (info.records_count > 0)
                codecs[n++] = info.codec;
            pos += info.size;
        }
        if (b.len == 0 || next <= off)
            break;
    }
    buf_free(&b);
    return n;
}

/* Compressed batches (each codec) are compacted like plain ones: each
 * key's latest value stays at its offset inside a batch still compressed
 * with the same codec, older values go, keyless records stay. */
TEST(compressed_batches_compacted)
{
    static const int codecs[] = {BATCH_CODEC_GZIP, BATCH_CODEC_SNAPPY, BATCH_CODEC_LZ4, BATCH_CODEC_ZSTD};
    for (size_t c = 0; c < sizeof codecs / sizeof codecs[0]; c++) {
        fx_t *x = fx_new(NULL);
        char vals[4][5][VALUE_MAX];
        for (int r = 0; r < 4; r++) {
            const char *keys[5] = {"k0", "k1", "k2", NULL, "k4"}, *values[5];
            for (int i = 0; i < 5; i++) {
                snprintf(vals[r][i], VALUE_MAX, "%s-round-%d-%d", batch_codec_name(codecs[c]), r, i);
                values[i] = vals[r][i];
            }
            int n = r == 3 ? 3 : 5; /* the last batch rewrites k0..k2 only */
            put_batch_codec(x, n, keys, values, 0, -1, -1, codecs[c]);
        }
        put(x, "k1", "plain-latest");
        seal(x);
        put(x, "k2", "in-active");
        plog_compact_stats_t st;
        REQUIRE(compact(x, &st) == STORAGE_OK);
        /* superseded: k0 and k2 of rounds 0-2, k1 of rounds 0-3, k4 of rounds 0-1 */
        CHECK_EQ_INT(st.records_removed, 3 + 3 + 4 + 2);
        static rec_t want[RECS_MAX];
        int64_t sealed_end = plog_log_end_offset(x->log) - 1;
        int n = expected(x, sealed_end, false, want);
        CHECK_EQ_INT(n, 3 + 1 + 1 + 1 + 1 + 1); /* 3 keyless, k0, k1, k2, k4, k2 active */
        CHECK(log_holds(x->log, want, n));
        uint8_t got[16];
        int nb = codecs_of(x->log, got, 16);
        CHECK_EQ_INT(nb, 6); /* rounds 0-3 (keyless records, k4, k0, k2), plain k1, active k2 */
        for (int i = 0; i < 4 && i < nb; i++)
            CHECK_EQ_INT(got[i], codecs[c]);
        /* persists, and a second pass changes nothing */
        plog_close(x->log);
        REQUIRE(fx_open(x) == STORAGE_OK);
        CHECK(log_holds(x->log, want, n));
        REQUIRE(compact(x, &st) == STORAGE_OK);
        CHECK_EQ_INT(st.records_removed, 0);
        CHECK(log_holds(x->log, want, n));
        fx_free(x);
    }
}

/* Tombstones inside compressed batches, and those behind them, are kept,
 * stamped, then dropped after the delete horizon. */
TEST(compressed_tombstones_dropped)
{
    fx_t *x = fx_new(NULL);
    const char *k1[] = {"a", "b", "c"}, *v1[] = {"a-old", "b-old", "c-old"};
    put_batch_codec(x, 3, k1, v1, 0, -1, -1, BATCH_CODEC_ZSTD);
    put(x, "a", NULL); /* behind a compressed batch */
    const char *k2[] = {"b", "c"}, *v2[] = {NULL, "c-new"};
    put_batch_codec(x, 2, k2, v2, 0, -1, -1, BATCH_CODEC_GZIP);
    seal(x);
    plog_compact_stats_t st;
    REQUIRE(compact(x, &st) == STORAGE_OK);
    CHECK_EQ_INT(st.records_removed, 3);
    CHECK_EQ_INT(st.tombstones_removed, 0);
    static rec_t want[RECS_MAX];
    int n = expected(x, INT64_MAX, false, want);
    CHECK_EQ_INT(n, 3);
    CHECK(log_holds(x->log, want, n));
    fake_now += 10000; /* past delete_retention_ms */
    REQUIRE(compact(x, &st) == STORAGE_OK);
    CHECK_EQ_INT(st.tombstones_removed, 2);
    n = expected(x, INT64_MAX, true, want);
    CHECK_EQ_INT(n, 1);
    CHECK(log_holds(x->log, want, n));
    uint8_t got[4];
    CHECK_EQ_INT(codecs_of(x->log, got, 4), 1);
    CHECK_EQ_INT(got[0], BATCH_CODEC_GZIP);
    fx_free(x);
}

/* An idempotent batch whose records all go is kept as a bare header when
 * it is its producer's last, so its sequence numbers stay in the log. */
TEST(idempotent_last_batch_kept_empty)
{
    fx_t *x = fx_new(NULL);
    const char *k[] = {"p"}, *v1[] = {"one"}, *v2[] = {"two"};
    put_batch(x, 1, k, v1, 0, 7, 0);
    int64_t last = put_batch(x, 1, k, v2, 0, 7, 1);
    put(x, "p", "plain");
    seal(x);
    REQUIRE(compact(x, NULL) == STORAGE_OK);
    buf_t b;
    int64_t next;
    buf_init(&b);
    REQUIRE(plog_read_copy(x->log, 0, INT64_MAX, 1 << 20, &b, &next) == STORAGE_OK);
    batch_info_t info;
    REQUIRE(batch_check_stored(b.data, b.len, &info) == BATCH_OK);
    CHECK_EQ_INT(info.base_offset, last);
    CHECK_EQ_INT(info.records_count, 0);
    CHECK_EQ_INT(info.producer_id, 7);
    CHECK_EQ_INT(info.base_sequence, 1);
    CHECK_EQ_INT(info.size, BATCH_HEADER_BYTES);
    REQUIRE(b.len > info.size);
    REQUIRE(batch_check_stored(b.data + info.size, b.len - info.size, &info) == BATCH_OK);
    CHECK_EQ_INT(info.base_offset, last + 1);
    buf_free(&b);
    fx_free(x);
}

/* Nothing past max_offset (the high watermark) or in segments younger than
 * min_lag_ms is cleaned, and a log below the dirty ratio is left alone. */
TEST(bounds_and_ratio)
{
    fx_t *x = fx_new(NULL);
    updates(x, 2, 20, 10); /* segments [0, 10), [10, 20) */
    put(x, "key-0", "active");
    plog_compact_opts_t o = opts();
    o.max_offset = 10;
    plog_compact_stats_t st;
    REQUIRE(plog_compact(x->log, &o, &st) == STORAGE_OK);
    static rec_t want[RECS_MAX];
    int n = expected(x, 10, false, want);
    CHECK(log_holds(x->log, want, n));
    o = opts();
    o.min_lag_ms = 1000000;
    REQUIRE(plog_compact(x->log, &o, &st) == STORAGE_OK);
    CHECK(!st.ran);
    o = opts();
    REQUIRE(plog_compact(x->log, &o, &st) == STORAGE_OK);
    n = expected(x, 20, false, want);
    CHECK(log_holds(x->log, want, n));
    updates(x, 2, 2, 2); /* a small dirty segment after a compacted one */
    o.force = false;
    o.min_dirty_ratio = 0.99;
    REQUIRE(plog_compact(x->log, &o, &st) == STORAGE_OK);
    CHECK(!st.ran);
    o.min_dirty_ratio = 0.1;
    REQUIRE(plog_compact(x->log, &o, &st) == STORAGE_OK);
    CHECK(st.ran);
    fx_free(x);
}

/* plog_open finishes a committed swap (replacing every segment it names)
 * and deletes unfinished .cleaned files. */
TEST(recovery_finishes_swap)
{
    fx_t *x = fx_new(NULL);
    updates(x, 50, 40, 20); /* [0, 20), [20, 40), active 40 */
    put(x, "key-0", "active");
    plog_close(x->log);
    char a[4200], b2[4200], swp[4200], junk[4200];
    snprintf(a, sizeof a, "%s/%020lld.log", x->dir, 0LL);
    snprintf(b2, sizeof b2, "%s/%020lld.log", x->dir, 20LL);
    snprintf(swp, sizeof swp, "%s/%020lld.%020lld.swap", x->dir, 0LL, 40LL);
    snprintf(junk, sizeof junk, "%s/%020lld.index.cleaned", x->dir, 40LL);
    char cmd[17000];
    snprintf(cmd, sizeof cmd, "cat %s %s > %s && echo x > %s", a, b2, swp, junk);
    REQUIRE(system(cmd) == 0);
    REQUIRE(fx_open(x) == STORAGE_OK);
    CHECK_EQ_INT(plog_segment_count(x->log), 2);
    CHECK_EQ_INT(count_ext(x->dir, ".swap") + count_ext(x->dir, ".cleaned"), 0);
    CHECK(log_holds(x->log, x->model, x->n));
    CHECK_EQ_INT(check_quiet(x->dir), 0);
    fx_free(x);
}

/* Builds the log the crash test compacts: 40 keys, 400 updates, segments
 * of 50, one tombstone, 7 records in the active segment. */
static void crash_workload(fx_t *x)
{
    updates(x, 40, 400, 50);
    put(x, "key-3", NULL);
    seal(x);
    updates(x, 40, 7, 1000);
    flusher_run_once(x->fl); /* the active segment's records are durable too */
}

/* After a crash at the Nth file operation of a pass (several groups, so
 * several swaps), the log reopens consistent, with every record a consumer
 * needs (each key's latest value at its offset, the whole active segment)
 * and nothing but original records; a pass after recovery reaches the
 * uncrashed result. */
TEST(crash_during_swap)
{
    static rec_t want[RECS_MAX], got[RECS_MAX];
    int crashed = 0, completed = 0;
    segment_bytes = 8000; /* groups of two 50-record segments */
    for (uint64_t at = 1; at < 400 && !completed; at++) {
        fault_fs_t *ff = fault_fs_new();
        fx_t *x = fx_new(fault_fs_sfs(ff));
        crash_workload(x);
        int64_t sealed_end = 401;
        fault_fs_crash_at(ff, at);
        int rc = compact(x, NULL);
        if (!fault_fs_crashed(ff)) {
            completed = rc == STORAGE_OK;
            CHECK(completed);
        }
        crashed += fault_fs_crashed(ff);
        plog_close(x->log);
        fault_fs_crash(ff, at);
        REQUIRE(fx_open(x) == STORAGE_OK);
        CHECK_EQ_INT(plog_state(x->log), STORAGE_OK);
        CHECK_EQ_INT(count_ext(x->dir, ".swap") + count_ext(x->dir, ".cleaned"), 0);
        CHECK_EQ_INT(check_quiet(x->dir), 0);
        int n = read_recs(x->log, got, RECS_MAX), k = expected(x, sealed_end, false, want), j = 0;
        REQUIRE(n >= k);
        for (int i = 0; i < n; i++) { /* nothing but original records, every needed one */
            const rec_t *m = model_at(x, got[i].offset);
            CHECK(m && rec_eq(m, &got[i]));
            if (j < k && got[i].offset == want[j].offset)
                j++;
        }
        CHECK_EQ_INT(j, k);
        REQUIRE(compact(x, NULL) == STORAGE_OK);
        CHECK(log_holds(x->log, want, k));
        if (test_failed_now)
            fprintf(stderr, "  crash point %llu failed, dir %s\n", (unsigned long long)at, x->dir);
        fx_free(x);
        fault_fs_free(ff);
        if (test_failed_now)
            break;
    }
    segment_bytes = PLOG_SEGMENT_BYTES_DEFAULT;
    printf("crash_during_swap: %d crash points, pass completed: %d\n", crashed, completed);
    CHECK(crashed > 5 && completed);
}

/* Compaction below the high watermark and a truncation above it work
 * together: the truncated part is cleaned afresh once rewritten. */
TEST(compaction_and_truncation)
{
    fx_t *x = fx_new(NULL);
    updates(x, 5, 60, 20); /* [0, 20), [20, 40), [40, 60), active 60 */
    plog_compact_opts_t o = opts();
    o.max_offset = 20;
    REQUIRE(plog_compact(x->log, &o, NULL) == STORAGE_OK);
    REQUIRE(plog_truncate(x->log, 30, NULL) == STORAGE_OK);
    x->n = 30;
    updates(x, 5, 10, 1000);
    seal(x); /* [0, 20) compacted, [20, 40), active 40 */
    put(x, "key-1", NULL);
    put(x, "key-2", "last");
    seal(x);
    REQUIRE(compact(x, NULL) == STORAGE_OK);
    static rec_t want[RECS_MAX];
    int n = expected(x, 42, false, want);
    CHECK_EQ_INT(n, 5);
    CHECK(log_holds(x->log, want, n));
    CHECK_EQ_INT(check_quiet(x->dir), 0);
    fx_free(x);
}

typedef struct racer {
    fx_t *x;
    int calls, at;
} racer_t;

/* The pass's cancel hook, used to truncate and append in the middle of it. */
static bool race_truncate(void *arg)
{
    racer_t *r = arg;
    if (++r->calls == r->at) {
        CK_ASSERT(plog_truncate(r->x->log, 30, NULL) == STORAGE_OK);
        r->x->n = 30;
        for (int i = 0; i < 3; i++)
            put(r->x, "new", "after-truncation");
    }
    return false;
}

/* A truncation (and new appends) at any moment of a pass never makes the
 * log offline or inconsistent: the pass gives up what it had not swapped. */
TEST(truncation_races_pass)
{
    static rec_t got[RECS_MAX];
    int raced = 0;
    for (int at = 1; at < 200; at += 3) {
        fx_t *x = fx_new(NULL);
        updates(x, 5, 60, 20);
        racer_t r = {x, 0, at};
        plog_compact_opts_t o = opts();
        o.cancel = race_truncate;
        o.cancel_arg = &r;
        CHECK_EQ_INT(plog_compact(x->log, &o, NULL), STORAGE_OK);
        bool hit = r.calls >= at;
        raced += hit;
        CHECK_EQ_INT(plog_state(x->log), STORAGE_OK);
        CHECK_EQ_INT(check_quiet(x->dir), 0);
        int n = read_recs(x->log, got, RECS_MAX);
        CHECK(n >= 3);
        for (int i = 0; i < n; i++) {
            const rec_t *m = model_at(x, got[i].offset);
            CHECK(m && rec_eq(m, &got[i]));
        }
        plog_close(x->log);
        CHECK_EQ_INT(fx_open(x), STORAGE_OK);
        CHECK_EQ_INT(plog_log_end_offset(x->log), hit ? 33 : 60);
        fx_free(x);
        if (test_failed_now) {
            fprintf(stderr, "  truncation at hook call %d\n", at);
            return;
        }
        if (!hit)
            break; /* the pass ended before the hook's call */
    }
    CHECK(raced > 10);
}

#define LIVE_RECORDS 3000
#define LIVE_KEYS 25
#define LIVE_PER_SEGMENT 60

typedef struct live {
    plog_t *log;
    flusher_t *fl;
    atomic_bool done, synced;
    atomic_int reads, bad, passes;
} live_t;

static void live_synced(void *arg, int err)
{
    live_t *l = arg;
    CK_ASSERT(err == STORAGE_OK);
    atomic_store(&l->synced, true);
}

/* After a roll: waits until the log is durable and the main thread has
 * begun a pass since, so that passes interleave with the appends. */
static void live_wait(live_t *l)
{
    atomic_store(&l->synced, false);
    flusher_request(l->fl, l->log, plog_log_end_offset(l->log), live_synced, l);
    while (!atomic_load(&l->synced))
        sched_yield();
    int p = atomic_load(&l->passes);
    while (atomic_load(&l->passes) < p + 2)
        sched_yield();
}

/* Offset i holds key "k<i % LIVE_KEYS>" and value "v<i>". */
static void *live_append(void *arg)
{
    live_t *l = arg;
    for (int i = 0; i < LIVE_RECORDS; i++) {
        char k[16], v[16];
        int kl = snprintf(k, sizeof k, "k%d", i % LIVE_KEYS), vl = snprintf(v, sizeof v, "v%d", i);
        buf_t b;
        batch_builder_t bb;
        buf_init(&b);
        batch_build_begin(&bb, &b, 0, 0, fake_now, -1, -1, -1);
        batch_build_add(&bb, fake_now, k, kl, v, vl, NULL, 0);
        batch_build_end(&bb);
        plog_append_result_t res;
        CK_ASSERT(plog_append(l->log, b.data, b.len, 0, &res) == STORAGE_OK && res.base_offset == i);
        buf_free(&b);
        if ((i + 1) % LIVE_PER_SEGMENT == 0) {
            CK_ASSERT(plog_roll(l->log) == STORAGE_OK);
            live_wait(l);
        }
    }
    atomic_store(&l->done, true);
    return NULL;
}

/* Reads the whole log again and again: offsets increase, content matches. */
static void *live_read(void *arg)
{
    live_t *l = arg;
    static rec_t got[RECS_MAX * 2];
    while (!atomic_load(&l->done)) {
        int n = read_recs(l->log, got, RECS_MAX * 2);
        bool ok = n >= 0;
        for (int i = 0; ok && i < n; i++) {
            char k[16], v[16];
            snprintf(k, sizeof k, "k%d", (int)(got[i].offset % LIVE_KEYS));
            snprintf(v, sizeof v, "v%d", (int)got[i].offset);
            ok = !strcmp(got[i].key, k) && !strcmp(got[i].value, v);
        }
        atomic_fetch_add(&l->bad, !ok);
        atomic_fetch_add(&l->reads, 1);
    }
    return NULL;
}

/* Passes run while a producer appends and rolls and a consumer reads the
 * whole log over and over: every read is consistent, and once the
 * producer stops, a last pass leaves each key's latest value. */
TEST(passes_under_live_traffic)
{
    fx_t *x = fx_new(NULL);
    flusher_start(x->fl);
    live_t l = {.log = x->log, .fl = x->fl};
    pthread_t ta, tr;
    REQUIRE(pthread_create(&ta, NULL, live_append, &l) == 0);
    REQUIRE(pthread_create(&tr, NULL, live_read, &l) == 0);
    plog_compact_opts_t o = opts();
    o.force = false;
    o.min_dirty_ratio = 0.2;
    int passes = 0;
    while (!atomic_load(&l.done)) {
        plog_compact_stats_t st;
        atomic_fetch_add(&l.passes, 1);
        CHECK_EQ_INT(plog_compact(x->log, &o, &st), STORAGE_OK);
        passes += st.groups_rewritten > 0;
        sched_yield();
    }
    pthread_join(ta, NULL);
    pthread_join(tr, NULL);
    REQUIRE(plog_roll(x->log) == STORAGE_OK);
    flusher_run_once(x->fl);
    REQUIRE(compact(x, NULL) == STORAGE_OK);
    static rec_t got[RECS_MAX];
    int n = read_recs(x->log, got, RECS_MAX);
    CHECK_EQ_INT(n, LIVE_KEYS);
    for (int i = 0; i < n; i++)
        CHECK_EQ_INT(got[i].offset, LIVE_RECORDS - LIVE_KEYS + i);
    CHECK_EQ_INT(atomic_load(&l.bad), 0);
    CHECK(passes > 10 && atomic_load(&l.reads) > 0);
    printf("passes_under_live_traffic: %d passes rewrote segments, %d full reads\n", passes, atomic_load(&l.reads));
    CHECK_EQ_INT(plog_state(x->log), STORAGE_OK);
    CHECK_EQ_INT(check_quiet(x->dir), 0);
    fx_free(x);
}

/* A compacted topic refuses records without keys, compressed or not, and
 * compressed records it cannot read. */
TEST(keys_present_check)
{
    static const int codecs[] = {BATCH_CODEC_NONE, BATCH_CODEC_GZIP, BATCH_CODEC_SNAPPY, BATCH_CODEC_LZ4,
                                 BATCH_CODEC_ZSTD};
    for (size_t c = 0; c < ARRAY_LEN(codecs); c++) {
        for (int keyless = 0; keyless < 2; keyless++) {
            buf_t b;
            batch_builder_t bb;
            buf_init(&b);
            batch_build_begin(&bb, &b, 0, 0, 1, -1, -1, -1);
            batch_build_add(&bb, 1, "k", 1, "v", 1, NULL, 0);
            batch_build_add(&bb, 2, keyless ? NULL : "k2", keyless ? -1 : 2, "v", 1, NULL, 0);
            batch_build_end(&bb);
            if (codecs[c] != BATCH_CODEC_NONE)
                compress_batch(&b, 0, codecs[c]);
            CHECK_EQ_INT(plog_compact_check_keys(b.data, b.len), keyless ? PLOG_KEYS_MISSING : PLOG_KEYS_OK);
            if (codecs[c] != BATCH_CODEC_NONE) { /* damage the compressed bytes, keep the CRC right */
                memset(b.data + BATCH_HEADER_BYTES, 0xa5, b.len - BATCH_HEADER_BYTES);
                be32_store(b.data + BATCH_OFF_CRC, batch_crc_compute(b.data, b.len));
                CHECK_EQ_INT(plog_compact_check_keys(b.data, b.len), PLOG_KEYS_UNREADABLE);
            }
            buf_free(&b);
        }
    }
}
