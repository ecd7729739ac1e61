/* test_log.c - the partition log: append/read, indexes, roll, retention,
 * truncation, recovery, flusher, and random crash points. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "proto/batch.h"
#include "storage/storage.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static void rm_rf(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static char *tmpdir(void)
{
    char *d = xstrdup("/tmp/chronik-log-XXXXXX");
    CK_ASSERT(mkdtemp(d));
    return d;
}

/* Remove a test directory made by tmpdir(). */
static void drop_dir(char *dir)
{
    rm_rf(dir);
    free(dir);
}

/* Reopen the log in dir and check that it recovered these start and end offsets. */
static void check_reopened(const char *dir, const plog_config_t *cfg, int64_t start, int64_t end)
{
    plog_t *log;
    REQUIRE(plog_open(dir, cfg, sfs_posix(), false, &log) == STORAGE_OK);
    CHECK_EQ_INT(plog_log_start_offset(log), start);
    CHECK_EQ_INT(plog_log_end_offset(log), end);
    plog_close(log);
}

static int64_t fake_now = 1700000000000LL;
static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

static void small_config(plog_config_t *c)
{
    plog_config_default(c);
    c->clock = fake_clock;
    c->index_interval_bytes = 200;
}

/* Appends a batch of n records (values of vsize bytes) at timestamp ts. */
static size_t make_batch(buf_t *b, int n, int64_t ts, int vsize)
{
    batch_builder_t bb;
    char v[512];
    CK_ASSERT(vsize <= (int)sizeof v);
    batch_build_begin(&bb, b, 0, 0, ts, -1, -1, -1);
    for (int i = 0; i < n; i++) {
        memset(v, 'a' + (i % 26), (size_t)vsize);
        batch_build_add(&bb, ts + i, "key", 3, v, vsize, NULL, 0);
    }
    return batch_build_end(&bb);
}

static int append_one(plog_t *log, int n, int64_t ts, int vsize, int32_t epoch, plog_append_result_t *res)
{
    buf_t b;
    buf_init(&b);
    make_batch(&b, n, ts, vsize);
    int r = plog_append(log, b.data, b.len, epoch, res);
    buf_free(&b);
    return r;
}

/* Reads the whole log from start; checks CRC, contiguity; returns batches. */
static int read_all(plog_t *log, int64_t from, buf_t *out)
{
    int64_t off = from, batches = 0;
    for (;;) {
        size_t at = out->len;
        int64_t next;
        int r = plog_read_copy(log, off, INT64_MAX, 1 << 20, out, &next);
        if (r != STORAGE_OK)
            return -1;
        if (out->len == at)
            break;
        for (size_t pos = at; pos < out->len;) {
            batch_info_t info;
            if (batch_check(out->data + pos, out->len - pos, &info) != BATCH_OK)
                return -2;
            if (info.base_offset != off)
                return -3;
            off = batch_info_last_offset(&info) + 1;
            pos += info.size;
            batches++;
        }
        if (next != off)
            return -4;
    }
    return (int)batches;
}

static int count_files(const char *dir, const char *ext)
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

static void seg_file(char *out, size_t n, const char *dir, int64_t base, const char *ext)
{
    snprintf(out, n, "%s/%020lld%s", dir, (long long)base, ext);
}

static int64_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* Runs an offline tool on dir with its report thrown away. */
static int tool_quiet(int (*tool)(const char *dir, FILE *out), const char *dir)
{
    FILE *f = fopen("/dev/null", "w");
    int r = tool(dir, f);
    fclose(f);
    return r;
}

static int check_quiet(const char *dir) { return tool_quiet(storage_check_dir, dir); }

/* ---- basics ------------------------------------------------------------------ */

/* Appends get consecutive offsets and read back byte for byte, with patched fields. */
TEST(append_and_read)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    buf_t all;
    buf_init(&all);
    for (int i = 0; i < 10; i++) {
        buf_t b;
        buf_init(&b);
        make_batch(&b, 3, 1000 + i, 20);
        plog_append_result_t res;
        REQUIRE(plog_append(log, b.data, b.len, 5, &res) == STORAGE_OK);
        CHECK_EQ_INT(res.base_offset, i * 3);
        CHECK_EQ_INT(res.last_offset, i * 3 + 2);
        CHECK_EQ_INT(res.log_end_offset, i * 3 + 3);
        batch_info_t info;
        CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_OK); /* patch kept the CRC */
        CHECK_EQ_INT(info.base_offset, i * 3);
        CHECK_EQ_INT(info.leader_epoch, 5);
        buf_put(&all, b.data, b.len);
        buf_free(&b);
    }
    CHECK_EQ_INT(plog_log_end_offset(log), 30);
    buf_t got;
    buf_init(&got);
    CHECK_EQ_INT(read_all(log, 0, &got), 10);
    CHECK(got.len == all.len && memcmp(got.data, all.data, all.len) == 0);
    plog_read_result_t rr;
    REQUIRE(plog_read(log, 4, INT64_MAX, 1, &rr) == STORAGE_OK);
    CHECK_EQ_INT(rr.first_offset, 3); /* the batch containing offset 4 */
    CHECK_EQ_INT(rr.next_offset, 6);
    CHECK(rr.fd >= 0 && rr.length == all.len / 10);
    uint8_t tmp[4096];
    CHECK(pread(rr.fd, tmp, rr.length, (off_t)rr.position) == (ssize_t)rr.length);
    CHECK(memcmp(tmp, all.data + rr.position, rr.length) == 0);
    plog_read_release(&rr);
    buf_free(&got);
    buf_free(&all);
    CHECK_EQ_INT(plog_close(log), STORAGE_OK);
    drop_dir(dir);
}

/* Reads respect max_bytes (at least one batch), max_offset, and the offset range. */
TEST(read_limits)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    for (int i = 0; i < 20; i++)
        REQUIRE(append_one(log, 2, 1000, 50, 0, &res) == STORAGE_OK);
    plog_read_result_t rr;
    REQUIRE(plog_read(log, 0, INT64_MAX, 1, &rr) == STORAGE_OK);
    uint32_t one = rr.length;
    CHECK_EQ_INT(rr.next_offset, 2);
    plog_read_release(&rr);
    REQUIRE(plog_read(log, 0, INT64_MAX, one * 5 / 2, &rr) == STORAGE_OK);
    CHECK_EQ_INT(rr.length, one * 2);
    CHECK_EQ_INT(rr.next_offset, 4);
    plog_read_release(&rr);
    REQUIRE(plog_read(log, 2, 9, 1 << 20, &rr) == STORAGE_OK); /* high watermark 9 */
    CHECK_EQ_INT(rr.first_offset, 2);
    CHECK_EQ_INT(rr.next_offset, 8); /* the batch 8..9 straddles the bound */
    plog_read_release(&rr);
    REQUIRE(plog_read(log, 8, 9, 1 << 20, &rr) == STORAGE_OK);
    CHECK_EQ_INT(rr.length, 0);
    plog_read_release(&rr);
    REQUIRE(plog_read(log, 40, INT64_MAX, 100, &rr) == STORAGE_OK);
    CHECK(rr.length == 0 && rr.log_end_offset == 40);
    plog_read_release(&rr);
    CHECK_EQ_INT(plog_read(log, 41, INT64_MAX, 100, &rr), STORAGE_ERR_OUT_OF_RANGE);
    plog_read_release(&rr);
    CHECK_EQ_INT(plog_read(log, -1, INT64_MAX, 100, &rr), STORAGE_ERR_OUT_OF_RANGE);
    plog_read_release(&rr);
    plog_close(log);
    drop_dir(dir);
}

/* With a sparse index, a read at every offset lands on the batch holding it. */
TEST(index_lookup_every_offset)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    cfg.index_interval_bytes = 300;
    cfg.segment_bytes = 64 * 1024;
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    for (int i = 0; i < 400; i++)
        REQUIRE(append_one(log, 1 + i % 4, 1000 + i, 10 + i % 90, 0, &res) == STORAGE_OK);
    int64_t leo = plog_log_end_offset(log);
    CHECK(plog_segment_count(log) > 1);
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t off = 0; off < leo; off++) {
            plog_read_result_t rr;
            REQUIRE(plog_read(log, off, INT64_MAX, 1, &rr) == STORAGE_OK);
            CHECK(rr.first_offset <= off && off < rr.next_offset);
            CHECK(rr.next_offset - rr.first_offset <= 4);
            plog_read_release(&rr);
        }
        plog_close(log); /* second pass: after reopen, indexes from files */
        REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_OK);
    }
    CHECK_EQ_INT(plog_log_end_offset(log), leo);
    plog_close(log);
    CHECK_EQ_INT(check_quiet(dir), 0);
    drop_dir(dir);
}

/* A full segment rolls; no .log exceeds segment_bytes; reopen finds everything. */
TEST(roll_by_size_and_reopen)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    cfg.segment_bytes = 4096;
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    for (int i = 0; i < 100; i++)
        REQUIRE(append_one(log, 3, 1000 + i, 60, 1 + i / 40, &res) == STORAGE_OK);
    int segs = plog_segment_count(log);
    CHECK(segs > 5);
    CHECK_EQ_INT(count_files(dir, ".log"), segs);
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (strstr(e->d_name, ".log"))
            CHECK(file_size(p) <= 4096);
    }
    closedir(d);
    buf_t before, after;
    buf_init(&before);
    buf_init(&after);
    CHECK_EQ_INT(read_all(log, 0, &before), 100);
    int64_t ts, tso;
    plog_max_timestamp(log, &ts, &tso);
    CHECK_EQ_INT(ts, 1099 + 2);
    CHECK_EQ_INT(tso, 299);
    plog_close(log);
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_OK);
    CHECK_EQ_INT(plog_segment_count(log), segs);
    CHECK_EQ_INT(read_all(log, 0, &after), 100);
    CHECK(before.len == after.len && memcmp(before.data, after.data, before.len) == 0);
    int32_t ep;
    int64_t st;
    plog_latest_epoch(log, &ep, &st);
    CHECK_EQ_INT(ep, 3);
    CHECK_EQ_INT(st, 240);
    plog_max_timestamp(log, &ts, &tso);
    CHECK_EQ_INT(ts, 1101);
    REQUIRE(append_one(log, 1, 5000, 10, 3, &res) == STORAGE_OK);
    CHECK_EQ_INT(res.base_offset, 300);
    plog_close(log);
    CHECK_EQ_INT(check_quiet(dir), 0);
    buf_free(&before);
    buf_free(&after);
    drop_dir(dir);
}

/* An active segment older than roll_ms rolls at the next append or maybe_roll. */
TEST(roll_by_time)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    cfg.roll_ms = 1000;
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    REQUIRE(append_one(log, 1, fake_now, 10, 0, &res) == STORAGE_OK);
    fake_now += 500;
    REQUIRE(append_one(log, 1, fake_now, 10, 0, &res) == STORAGE_OK);
    CHECK_EQ_INT(plog_segment_count(log), 1);
    fake_now += 501;
    REQUIRE(append_one(log, 1, fake_now, 10, 0, &res) == STORAGE_OK);
    CHECK_EQ_INT(plog_segment_count(log), 2);
    CHECK_EQ_INT(plog_maybe_roll(log), STORAGE_OK);
    CHECK_EQ_INT(plog_segment_count(log), 2);
    fake_now += 1001;
    CHECK_EQ_INT(plog_maybe_roll(log), STORAGE_OK);
    CHECK_EQ_INT(plog_segment_count(log), 3);
    CHECK_EQ_INT(plog_maybe_roll(log), STORAGE_OK); /* empty active: no roll */
    CHECK_EQ_INT(plog_segment_count(log), 3);
    plog_close(log);
    drop_dir(dir);
}

/* Retention by time deletes expired sealed segments, never the active one. */
TEST(retention_by_time)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    cfg.retention_ms = 10000;
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    int64_t t0 = fake_now;
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < 3; i++)
            REQUIRE(append_one(log, 2, t0 + s * 5000, 10, 0, &res) == STORAGE_OK);
        if (s < 3)
            REQUIRE(plog_roll(log) == STORAGE_OK);
    }
    CHECK_EQ_INT(plog_segment_count(log), 4);
    int deleted;
    fake_now = t0 + 12000; /* segment 0 (max ts t0+1) expired */
    CHECK_EQ_INT(plog_retention(log, &deleted), STORAGE_OK);
    CHECK_EQ_INT(deleted, 1);
    CHECK_EQ_INT(plog_log_start_offset(log), 6);
    fake_now = t0 + 100000; /* everything expired: active stays */
    CHECK_EQ_INT(plog_retention(log, &deleted), STORAGE_OK);
    CHECK_EQ_INT(deleted, 2);
    CHECK_EQ_INT(plog_segment_count(log), 1);
    CHECK_EQ_INT(plog_log_start_offset(log), 18);
    CHECK_EQ_INT(count_files(dir, ".log"), 1);
    buf_t got;
    buf_init(&got);
    CHECK_EQ_INT(read_all(log, 18, &got), 3);
    plog_read_result_t rr;
    CHECK_EQ_INT(plog_read(log, 17, INT64_MAX, 100, &rr), STORAGE_ERR_OUT_OF_RANGE);
    plog_read_release(&rr);
    plog_close(log);
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_OK);
    CHECK_EQ_INT(plog_log_start_offset(log), 18);
    plog_close(log);
    buf_free(&got);
    drop_dir(dir);
}

/* Retention by bytes keeps the newest segments within retention_bytes. */
TEST(retention_by_bytes)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    cfg.segment_bytes = 2048;
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    for (int i = 0; i < 60; i++)
        REQUIRE(append_one(log, 2, fake_now, 100, 0, &res) == STORAGE_OK);
    int before = plog_segment_count(log);
    cfg.retention_bytes = 5000;
    plog_set_config(log, &cfg);
    int deleted;
    CHECK_EQ_INT(plog_retention(log, &deleted), STORAGE_OK);
    CHECK(deleted > 0);
    CHECK_EQ_INT(plog_segment_count(log), before - deleted);
    CHECK(plog_size_bytes(log) <= 5000 + 2048);
    CHECK(plog_size_bytes(log) >= 5000 - 2048);
    buf_t got;
    buf_init(&got);
    CHECK(read_all(log, plog_log_start_offset(log), &got) > 0);
    buf_free(&got);
    plog_close(log);
    drop_dir(dir);
}

/* DeleteRecords moves the log start (persisted); whole segments below go at retention. */
TEST(delete_records)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    cfg.segment_bytes = 2048;
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    for (int i = 0; i < 40; i++)
        REQUIRE(append_one(log, 2, fake_now, 100, 0, &res) == STORAGE_OK);
    int segs = plog_segment_count(log);
    CHECK_EQ_INT(plog_delete_records(log, 81), STORAGE_ERR_OUT_OF_RANGE);
    CHECK_EQ_INT(plog_delete_records(log, 33), STORAGE_OK);
    CHECK_EQ_INT(plog_log_start_offset(log), 33);
    plog_read_result_t rr;
    CHECK_EQ_INT(plog_read(log, 32, INT64_MAX, 100, &rr), STORAGE_ERR_OUT_OF_RANGE);
    plog_read_release(&rr);
    REQUIRE(plog_read(log, 33, INT64_MAX, 1, &rr) == STORAGE_OK);
    CHECK_EQ_INT(rr.first_offset, 32); /* whole batch containing 33 */
    plog_read_release(&rr);
    int deleted;
    CHECK_EQ_INT(plog_retention(log, &deleted), STORAGE_OK);
    CHECK(deleted > 0 && deleted < segs);
    CHECK_EQ_INT(plog_log_start_offset(log), 33);
    plog_close(log);
    check_reopened(dir, &cfg, 33, 80);
    drop_dir(dir);
}

/* Truncation inside a segment removes the batch containing the offset and all after. */
TEST(truncate_in_segment)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    for (int i = 0; i < 30; i++)
        REQUIRE(append_one(log, 3, 1000 + i * 10, 40, i < 20 ? 1 : 2, &res) == STORAGE_OK);
    int64_t end;
    CHECK_EQ_INT(plog_truncate(log, 46, &end), STORAGE_OK);
    CHECK_EQ_INT(end, 45);
    CHECK_EQ_INT(plog_log_end_offset(log), 45);
    int32_t ep;
    int64_t eo;
    plog_latest_epoch(log, &ep, &eo);
    CHECK_EQ_INT(ep, 1); /* epoch 2 started at 60: gone */
    REQUIRE(append_one(log, 2, 9000, 40, 3, &res) == STORAGE_OK);
    CHECK_EQ_INT(res.base_offset, 45);
    buf_t got;
    buf_init(&got);
    CHECK_EQ_INT(read_all(log, 0, &got), 16);
    int64_t off, ts;
    CHECK_EQ_INT(plog_offset_for_timestamp(log, 1145, &off, &ts), STORAGE_OK);
    CHECK_EQ_INT(off, 45); /* only the new batch has ts >= 1145 */
    plog_close(log);
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_OK);
    CHECK_EQ_INT(plog_log_end_offset(log), 47);
    got.len = 0;
    CHECK_EQ_INT(read_all(log, 0, &got), 16);
    plog_close(log);
    CHECK_EQ_INT(check_quiet(dir), 0);
    buf_free(&got);
    drop_dir(dir);
}

/* Truncation into an earlier segment deletes later segments and fixes indexes. */
TEST(truncate_across_segments)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    cfg.segment_bytes = 1500;
    cfg.index_interval_bytes = 100;
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    for (int i = 0; i < 60; i++)
        REQUIRE(append_one(log, 2, 1000 + i, 60, 0, &res) == STORAGE_OK);
    int segs = plog_segment_count(log);
    REQUIRE(segs >= 6);
    int64_t end;
    CHECK_EQ_INT(plog_truncate(log, 31, &end), STORAGE_OK);
    CHECK_EQ_INT(end, 30);
    CHECK(plog_segment_count(log) < segs);
    CHECK_EQ_INT(count_files(dir, ".log"), plog_segment_count(log));
    for (int64_t o = 0; o < 30; o++) {
        plog_read_result_t rr;
        REQUIRE(plog_read(log, o, INT64_MAX, 1, &rr) == STORAGE_OK);
        CHECK(rr.first_offset <= o && o < rr.next_offset);
        plog_read_release(&rr);
    }
    for (int i = 0; i < 20; i++)
        REQUIRE(append_one(log, 2, 2000 + i, 60, 0, &res) == STORAGE_OK);
    CHECK_EQ_INT(plog_log_end_offset(log), 70);
    /* truncate exactly at a segment base */
    plog_close(log);
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_OK);
    buf_t got;
    buf_init(&got);
    CHECK_EQ_INT(read_all(log, 0, &got), 35);
    CHECK_EQ_INT(plog_truncate(log, 0, &end), STORAGE_OK);
    CHECK_EQ_INT(end, 0);
    CHECK_EQ_INT(plog_segment_count(log), 1);
    CHECK_EQ_INT(count_files(dir, ".log"), 1);
    plog_close(log);
    CHECK_EQ_INT(check_quiet(dir), 0);
    buf_free(&got);
    drop_dir(dir);
}

/* truncate_fully restarts an emptied log at any offset, durably. */
TEST(truncate_fully)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    for (int i = 0; i < 5; i++)
        REQUIRE(append_one(log, 2, 1000, 10, 4, &res) == STORAGE_OK);
    CHECK_EQ_INT(plog_truncate_fully(log, 1000), STORAGE_OK);
    CHECK_EQ_INT(plog_log_start_offset(log), 1000);
    CHECK_EQ_INT(plog_log_end_offset(log), 1000);
    int32_t ep;
    int64_t eo;
    plog_latest_epoch(log, &ep, &eo);
    CHECK_EQ_INT(ep, -1);
    REQUIRE(append_one(log, 2, 1000, 10, 5, &res) == STORAGE_OK);
    CHECK_EQ_INT(res.base_offset, 1000);
    plog_close(log);
    check_reopened(dir, &cfg, 1000, 1002);
    drop_dir(dir);
}

/* ListOffsets by timestamp finds the first record at or after the time. */
TEST(offset_for_timestamp)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    cfg.segment_bytes = 1500;
    cfg.index_interval_bytes = 100;
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    for (int i = 0; i < 50; i++) /* batch i: 4 records at 10000+100i+{0..3} */
        REQUIRE(append_one(log, 4, 10000 + 100 * i, 30, 0, &res) == STORAGE_OK);
    int64_t off, ts;
    CHECK_EQ_INT(plog_offset_for_timestamp(log, 0, &off, &ts), STORAGE_OK);
    CHECK(off == 0 && ts == 10000);
    for (int i = 0; i < 50; i += 7) {
        CHECK_EQ_INT(plog_offset_for_timestamp(log, 10000 + 100 * i + 2, &off, &ts), STORAGE_OK);
        CHECK_EQ_INT(off, 4 * i + 2);
        CHECK_EQ_INT(ts, 10000 + 100 * i + 2);
        CHECK_EQ_INT(plog_offset_for_timestamp(log, 10000 + 100 * i + 50, &off, &ts), STORAGE_OK);
        CHECK_EQ_INT(off, i == 49 ? -1 : 4 * (i + 1));
    }
    CHECK_EQ_INT(plog_offset_for_timestamp(log, 99999, &off, &ts), STORAGE_OK);
    CHECK(off == -1 && ts == -1);
    plog_close(log);
    drop_dir(dir);
}

/* ---- recovery ------------------------------------------------------------------ */

/* Creates the log in dir with ten batches of two records. */
static plog_t *open_with_ten(const char *dir, const plog_config_t *cfg)
{
    plog_t *log;
    plog_append_result_t res;
    CK_ASSERT(plog_open(dir, cfg, sfs_posix(), true, &log) == STORAGE_OK);
    for (int i = 0; i < 10; i++)
        CK_ASSERT(append_one(log, 2, 1000, 30, 0, &res) == STORAGE_OK);
    return log;
}

/* Reopens what open_with_ten left after a crash: its ten batches are there,
 * the .log at path ends at them (size bytes), the next append goes at leo. */
static void check_recovered_ten(const char *dir, const plog_config_t *cfg, const char *path, int64_t leo,
                                int64_t size)
{
    plog_t *log;
    plog_append_result_t res;
    REQUIRE(plog_open(dir, cfg, sfs_posix(), false, &log) == STORAGE_OK);
    CHECK_EQ_INT(plog_log_end_offset(log), leo);
    CHECK_EQ_INT(file_size(path), size);
    buf_t got;
    buf_init(&got);
    CHECK_EQ_INT(read_all(log, 0, &got), 10);
    buf_free(&got);
    REQUIRE(append_one(log, 2, 1000, 30, 0, &res) == STORAGE_OK);
    CHECK_EQ_INT(res.base_offset, leo);
    plog_close(log);
    CHECK_EQ_INT(check_quiet(dir), 0);
}

/* A segment below the recovery point found empty (its truncation was in
 * flight at a crash) is not trusted with a stale time index: it is rescanned. */
TEST(emptied_segment_drops_stale_time_index)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    plog_t *log;
    plog_append_result_t res;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    REQUIRE(append_one(log, 1, 5000, 10, 0, &res) == STORAGE_OK); /* offset 0 holds the max timestamp */
    for (int i = 0; i < 3; i++)
        REQUIRE(append_one(log, 2, 1000, 10, 0, &res) == STORAGE_OK);
    plog_close(log); /* clean: recovery point 7, time index entry (5000, offset 0) */
    char p[4200];
    seg_file(p, sizeof p, dir, 0, ".log");
    REQUIRE(truncate(p, 0) == 0);
    seg_file(p, sizeof p, dir, 0, ".index"); /* cut too, as truncation leaves it */
    REQUIRE(truncate(p, 0) == 0);
    seg_file(p, sizeof p, dir, 0, ".timeindex");
    REQUIRE(file_size(p) > 0);
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_OK);
    CHECK_EQ_INT(plog_log_end_offset(log), 0);
    REQUIRE(append_one(log, 1, 1000, 10, 0, &res) == STORAGE_OK);
    CHECK_EQ_INT(res.base_offset, 0);
    plog_close(log);
    CHECK_EQ_INT(check_quiet(dir), 0);
    drop_dir(dir);
}

/* Garbage or half a batch at the end of the active segment is cut at open. */
TEST(torn_tail_recovered)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    for (int variant = 0; variant < 3; variant++) {
        plog_t *log = open_with_ten(dir, &cfg);
        int64_t leo = plog_log_end_offset(log);
        int64_t base = 0;
        plog_close(log);
        char p[4200];
        seg_file(p, sizeof p, dir, base, ".log");
        int64_t size = file_size(p);
        buf_t b;
        buf_init(&b);
        make_batch(&b, 3, 1000, 30);
        batch_set_base_offset(b.data, leo);
        int fd = open(p, O_WRONLY | O_APPEND);
        if (variant == 0)
            CHECK(write(fd, b.data, b.len / 2) > 0); /* half a batch */
        else if (variant == 1)
            CHECK(write(fd, "\x01\x02garbage-garbage-garbage-garbage-garbage-garbage-garbage-garbage-garbage", 72) > 0);
        else {
            b.data[b.len - 1] ^= 1; /* whole batch, bad CRC */
            CHECK(write(fd, b.data, b.len) > 0);
        }
        close(fd);
        /* make it look like a crash: recovery point back to the segment start */
        char ck[4200];
        snprintf(ck, sizeof ck, "%s/chronik.checkpoint", dir);
        FILE *f = fopen(ck, "w");
        fprintf(f, "chronik-checkpoint 1\nlog_start_offset 0\nrecovery_point 0\n");
        fclose(f);
        check_recovered_ten(dir, &cfg, p, leo, size);
        buf_free(&b);
        rm_rf(dir);
        mkdir(dir, 0755);
    }
    drop_dir(dir);
}

/* Small appends keep zeros written ahead in the active .log; large ones
 * do not; rolls and clean close cut the zeros, so files end at the data. */
TEST(preallocated_tail)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    cfg.roll_ms = INT64_MAX; /* no time-based roll at reopen */
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    REQUIRE(append_one(log, 2, 1000, 30, 0, &res) == STORAGE_OK);
    int64_t first = plog_size_bytes(log);
    for (int i = 0; i < 9; i++)
        REQUIRE(append_one(log, 2, 1000, 30, 0, &res) == STORAGE_OK);
    char p0[4200], p1[4200];
    seg_file(p0, sizeof p0, dir, 0, ".log");
    CHECK_EQ_INT(file_size(p0), first + PLOG_PREALLOCATE_BYTES_DEFAULT);
    CHECK_EQ_INT(check_quiet(dir), 0); /* the zero tail is not a problem */
    buf_t got;
    buf_init(&got);
    CHECK_EQ_INT(read_all(log, 0, &got), 10);
    int64_t sealed = plog_size_bytes(log);
    REQUIRE(plog_roll(log) == STORAGE_OK);
    CHECK_EQ_INT(file_size(p0), sealed);
    /* a large append extends the file by itself only */
    buf_t big;
    buf_init(&big);
    make_batch(&big, 200, 2000, 400);
    REQUIRE(big.len >= PLOG_PREALLOCATE_SMALL_APPEND);
    REQUIRE(plog_append(log, big.data, big.len, 0, &res) == STORAGE_OK);
    seg_file(p1, sizeof p1, dir, 20, ".log");
    CHECK_EQ_INT(file_size(p1), (int64_t)big.len);
    REQUIRE(append_one(log, 1, 3000, 10, 0, &res) == STORAGE_OK);
    CHECK(file_size(p1) > plog_size_bytes(log) - sealed);
    int64_t leo = plog_log_end_offset(log), total = plog_size_bytes(log);
    plog_close(log);
    CHECK_EQ_INT(file_size(p1), total - sealed);
    check_reopened(dir, &cfg, 0, leo);
    /* preallocate_bytes = 0: files always end at the data */
    cfg.preallocate_bytes = 0;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_OK);
    REQUIRE(append_one(log, 1, 3000, 10, 0, &res) == STORAGE_OK);
    CHECK_EQ_INT(file_size(p1), plog_size_bytes(log) - sealed);
    plog_close(log);
    buf_free(&got);
    buf_free(&big);
    drop_dir(dir);
}

/* Resident page-cache pages of the file at path in [from, to), by mincore. */
static int resident_pages(const char *path, int64_t from, int64_t to)
{
    int fd = open(path, O_RDONLY);
    CK_ASSERT(fd >= 0);
    int64_t size = file_size(path);
    void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    CK_ASSERT(m != MAP_FAILED);
    size_t pages = ((size_t)size + 4095) / 4096;
    unsigned char *vec = xmalloc(pages);
    CK_ASSERT(mincore(m, (size_t)size, vec) == 0);
    int n = 0;
    for (int64_t p = from / 4096; p < (to + 4095) / 4096 && p < (int64_t)pages; p++)
        n += vec[p] & 1;
    free(vec);
    munmap(m, (size_t)size);
    close(fd);
    return n;
}

static void on_synced(void *arg, int err) { *(int *)arg = err == STORAGE_OK ? 1 : -1; }

/* After a sync, synced data more than the cache window behind the end leaves the page cache; the rest stays. */
TEST(cache_window_drops_old_pages)
{
    enum { WINDOW = 64 * 1024, SEG = 256 * 1024 };
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    cfg.roll_ms = INT64_MAX;
    cfg.segment_bytes = SEG;
    cfg.preallocate_bytes = 0; /* file sizes are the logical sizes */
    cfg.cache_window_bytes = WINDOW;
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    flusher_t *f = flusher_new();
    flusher_attach(f, log);
    plog_append_result_t res;
    /* two sealed segments, and an active one holding more than twice the window */
    int64_t sealed = 0;
    while (plog_segment_count(log) < 3 || plog_size_bytes(log) - sealed < 2 * WINDOW) {
        int before = plog_segment_count(log);
        int64_t size = plog_size_bytes(log);
        REQUIRE(append_one(log, 4, 1000, 400, 0, &res) == STORAGE_OK);
        if (plog_segment_count(log) > before)
            sealed = size;
    }
    int synced = 0;
    flusher_request(f, log, plog_log_end_offset(log), on_synced, &synced);
    flusher_run_once(f);
    REQUIRE(synced == 1);
    int64_t active = plog_size_bytes(log) - sealed, bases[3];
    int nb = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".log") && nb < 3)
            bases[nb++] = atoll(e->d_name);
    closedir(d);
    REQUIRE(nb == 3);
    char p[4200];
    for (int i = 0; i < 3; i++) {
        seg_file(p, sizeof p, dir, bases[i], ".log");
        int64_t size = file_size(p);
        if (size != active) { /* sealed: every whole page gone */
            CHECK_EQ_INT(resident_pages(p, 0, size & ~4095LL), 0);
            continue;
        }
        CHECK_EQ_INT(resident_pages(p, 0, (size - WINDOW) & ~4095LL), 0);
        CHECK(resident_pages(p, size - WINDOW / 2, size) > 0); /* the newest data stays cached */
    }
    plog_close(log);
    flusher_free(f);
    drop_dir(dir);
}

/* After a crash, a zero tail is cut without loss, and so is garbage in it. */
TEST(zero_tail_after_crash)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    for (int variant = 0; variant < 2; variant++) {
        plog_t *log = open_with_ten(dir, &cfg);
        flusher_t *f = flusher_new();
        flusher_attach(f, log);
        flusher_run_once(f);
        int64_t leo = plog_log_end_offset(log), size = plog_size_bytes(log);
        /* the files as a crash would leave them: copied while the log is open */
        char *copy = tmpdir(), cmd[9000], p[4200];
        snprintf(cmd, sizeof cmd, "cp -r %s/. %s/", dir, copy);
        REQUIRE(system(cmd) == 0);
        plog_close(log);
        flusher_free(f);
        seg_file(p, sizeof p, copy, 0, ".log");
        CHECK(file_size(p) > size);
        if (variant == 1) { /* a torn write inside the zeros */
            int fd = open(p, O_WRONLY);
            CHECK(pwrite(fd, "\x07garbage", 8, (off_t)size + 100) == 8);
            close(fd);
            CHECK_EQ_INT(check_quiet(copy), 1);
        } else {
            CHECK_EQ_INT(check_quiet(copy), 0);
        }
        check_recovered_ten(copy, &cfg, p, leo, size);
        drop_dir(copy);
        rm_rf(dir);
        mkdir(dir, 0755);
    }
    drop_dir(dir);
}

/* Corruption in a sealed, durable segment takes the partition offline; others are fine. */
TEST(corrupt_sealed_segment_offline)
{
    char *dir = tmpdir(), *dir2 = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    cfg.segment_bytes = 2048;
    for (int variant = 0; variant < 2; variant++) {
        plog_t *log, *other;
        REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
        REQUIRE(plog_open(dir2, &cfg, sfs_posix(), true, &other) == STORAGE_OK);
        plog_append_result_t res;
        for (int i = 0; i < 40; i++) {
            REQUIRE(append_one(log, 2, 1000, 60, 0, &res) == STORAGE_OK);
            REQUIRE(append_one(other, 2, 1000, 60, 0, &res) == STORAGE_OK);
        }
        REQUIRE(plog_segment_count(log) >= 3);
        plog_close(log);
        plog_close(other);
        char p[4200];
        seg_file(p, sizeof p, dir, 0, ".log");
        int64_t size = file_size(p);
        /* variant 0: middle of the segment, found by verify_on_open;
         * variant 1: its last batch, found by the cheap check at every open */
        off_t at = variant == 0 ? (off_t)(size / 2) : (off_t)(size - 5);
        int fd = open(p, O_RDWR);
        uint8_t c;
        CHECK(pread(fd, &c, 1, at) == 1);
        c ^= 0x10;
        CHECK(pwrite(fd, &c, 1, at) == 1);
        close(fd);
        plog_config_t c2 = cfg;
        c2.verify_on_open = variant == 0;
        int r = plog_open(dir, &c2, sfs_posix(), false, &log);
        CHECK_EQ_INT(r, STORAGE_ERR_DAMAGED); /* read-only, serving the valid prefix */
        REQUIRE(log != NULL);
        CHECK_EQ_INT(plog_state(log), STORAGE_ERR_DAMAGED);
        CHECK(strstr(plog_errmsg(log), "corrupt") != NULL);
        plog_read_result_t rr;
        CHECK_EQ_INT(plog_read(log, 0, INT64_MAX, 100, &rr), STORAGE_OK);
        CHECK(rr.length > 0);
        plog_read_release(&rr);
        CHECK_EQ_INT(append_one(log, 1, 1000, 10, 0, &res), STORAGE_ERR_DAMAGED);
        CHECK_EQ_INT(file_size(p), size); /* nothing was cut */
        plog_close(log);
        REQUIRE(plog_open(dir2, &c2, sfs_posix(), false, &other) == STORAGE_OK);
        buf_t got;
        buf_init(&got);
        CHECK_EQ_INT(read_all(other, 0, &got), 40);
        buf_free(&got);
        plog_close(other);
        CHECK_EQ_INT(check_quiet(dir), 1);
        rm_rf(dir);
        rm_rf(dir2);
        mkdir(dir, 0755);
        mkdir(dir2, 0755);
    }
    rm_rf(dir);
    rm_rf(dir2);
    free(dir);
    free(dir2);
}

/* A missing or damaged index is rebuilt from the .log and written back. */
TEST(missing_index_rebuilt)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    cfg.segment_bytes = 4096;
    cfg.index_interval_bytes = 100;
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    for (int i = 0; i < 60; i++)
        REQUIRE(append_one(log, 2, 1000 + i, 60, 0, &res) == STORAGE_OK);
    plog_close(log);
    char p[4200], q[4200];
    seg_file(p, sizeof p, dir, 0, ".index");
    int64_t isize = file_size(p);
    CHECK(isize > 0);
    unlink(p);
    seg_file(q, sizeof q, dir, 0, ".timeindex");
    FILE *f = fopen(q, "w");
    fputs("garbage!garbage!garbage!", f); /* 24 bytes: 2 entries, not monotonic */
    fclose(f);
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_OK);
    CHECK_EQ_INT(file_size(p), isize);
    for (int64_t o = 0; o < 120; o++) {
        plog_read_result_t rr;
        REQUIRE(plog_read(log, o, INT64_MAX, 1, &rr) == STORAGE_OK);
        CHECK(rr.first_offset <= o && o < rr.next_offset);
        plog_read_release(&rr);
    }
    int64_t off, ts;
    CHECK_EQ_INT(plog_offset_for_timestamp(log, 1010, &off, &ts), STORAGE_OK);
    CHECK_EQ_INT(off, 19); /* batch 9 = offsets 18, 19 at 1009, 1010 */
    plog_close(log);
    CHECK_EQ_INT(check_quiet(dir), 0);
    drop_dir(dir);
}

/* Leftover tmp files and orphan indexes are deleted at open. */
TEST(leftovers_cleaned)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    char p[4200];
    snprintf(p, sizeof p, "%s/chronik.checkpoint.tmp", dir);
    fclose(fopen(p, "w"));
    seg_file(p, sizeof p, dir, 500, ".index");
    fclose(fopen(p, "w"));
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_OK);
    CHECK_EQ_INT(count_files(dir, ".tmp"), 0);
    CHECK_EQ_INT(count_files(dir, ".index"), 0);
    plog_close(log);
    drop_dir(dir);
}

/* ---- epochs, metadata, replica appends ------------------------------------------ */

/* The epoch cache answers OffsetForLeaderEpoch and survives reopen in Kafka's format. */
TEST(leader_epochs)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    REQUIRE(append_one(log, 5, 1000, 10, 1, &res) == STORAGE_OK);  /* 0..4 */
    REQUIRE(append_one(log, 5, 1000, 10, 3, &res) == STORAGE_OK);  /* 5..9 */
    REQUIRE(append_one(log, 5, 1000, 10, 3, &res) == STORAGE_OK);  /* 10..14 */
    REQUIRE(append_one(log, 5, 1000, 10, 4, &res) == STORAGE_OK);  /* 15..19 */
    CHECK_EQ_INT(append_one(log, 1, 1000, 10, 2, &res), STORAGE_ERR_INVALID); /* stale epoch */
    int32_t e;
    int64_t o;
    plog_epoch_end_offset(log, 1, &e, &o);
    CHECK(e == 1 && o == 5);
    plog_epoch_end_offset(log, 2, &e, &o);
    CHECK(e == 1 && o == 5);
    plog_epoch_end_offset(log, 3, &e, &o);
    CHECK(e == 3 && o == 15);
    plog_epoch_end_offset(log, 4, &e, &o);
    CHECK(e == 4 && o == 20);
    plog_epoch_end_offset(log, 0, &e, &o);
    CHECK(e == 0 && o == 0);
    plog_epoch_end_offset(log, 9, &e, &o);
    CHECK(e == -1 && o == -1);
    plog_close(log);
    char p[4200], *text = NULL;
    snprintf(p, sizeof p, "%s/leader-epoch-checkpoint", dir);
    FILE *f = fopen(p, "r");
    REQUIRE(f);
    size_t cap = 0;
    ssize_t n = getdelim(&text, &cap, 0, f);
    fclose(f);
    CHECK(n > 0 && strcmp(text, "0\n3\n1 0\n3 5\n4 15\n") == 0);
    free(text);
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_OK);
    plog_epoch_end_offset(log, 3, &e, &o);
    CHECK(e == 3 && o == 15);
    plog_close(log);
    drop_dir(dir);
}

/* partition.metadata round-trips a topic id in Kafka's text format. */
TEST(topic_id)
{
    char *dir = tmpdir();
    plog_t *log;
    REQUIRE(plog_open(dir, NULL, sfs_posix(), true, &log) == STORAGE_OK);
    uint8_t id[16], got[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(i * 37 + 250);
    CHECK_EQ_INT(plog_topic_id(log, got), STORAGE_ERR_NOT_FOUND);
    CHECK_EQ_INT(plog_set_topic_id(log, id), STORAGE_OK);
    CHECK_EQ_INT(plog_topic_id(log, got), STORAGE_OK);
    CHECK(memcmp(id, got, 16) == 0);
    char p[4200], text[128] = {0};
    snprintf(p, sizeof p, "%s/partition.metadata", dir);
    FILE *f = fopen(p, "r");
    REQUIRE(f);
    CHECK(fread(text, 1, sizeof text - 1, f) > 0);
    fclose(f);
    CHECK(strncmp(text, "version: 0\ntopic_id: ", 21) == 0);
    CHECK_EQ_INT(strlen(text), 21 + 22 + 1);
    plog_close(log);
    drop_dir(dir);
}

/* ---- creation and its crash states (segment.c, CREATION) --------------------- */

static const uint8_t create_id[16] = {7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* What the broker does with a partition it holds: open with create, then
 * write partition.metadata unless it names the topic already. */
static plog_t *broker_open(const char *dir, sfs_t *fs)
{
    plog_t *log;
    CK_ASSERT(plog_open(dir, NULL, fs, true, &log) == STORAGE_OK);
    uint8_t id[16];
    if (plog_topic_id(log, id) != STORAGE_OK)
        CHECK_EQ_INT(plog_set_topic_id(log, create_id), STORAGE_OK);
    return log;
}

/* Makes everything appended durable with a round of a new flusher (freed
 * after the log is closed: *f); true when it did. */
static bool flush_now(plog_t *log, flusher_t **f)
{
    *f = flusher_new();
    flusher_attach(*f, log);
    int synced = 0;
    flusher_request(*f, log, plog_log_end_offset(log), on_synced, &synced);
    flusher_run_once(*f);
    return synced == 1;
}

/* A new log costs one sync of partition.metadata and one of the directory;
 * nothing else is written but the segment and partition.metadata. */
TEST(create_syncs_once)
{
    char *parent = tmpdir(), dir[4200];
    snprintf(dir, sizeof dir, "%s/topic-0", parent);
    flusher_t *f;
    fault_fs_t *ff = fault_fs_new();
    plog_t *log = broker_open(dir, fault_fs_sfs(ff));
    fault_fs_stats_t st;
    fault_fs_stats(ff, &st);
    CHECK_EQ_INT(st.syncs, 1);
    CHECK_EQ_INT(st.dir_syncs, 1);
    CHECK_EQ_INT(st.renames, 0);
    CHECK_EQ_INT(count_files(dir, ".log"), 1);
    CHECK_EQ_INT(count_files(dir, ".metadata"), 1);
    CHECK_EQ_INT(count_files(dir, "checkpoint"), 0);
    CHECK(flush_now(log, &f));
    fault_fs_stats(ff, &st);
    CHECK_EQ_INT(st.syncs + st.dir_syncs, 2); /* nothing more was to be made durable */
    plog_close(log);
    flusher_free(f);
    fault_fs_free(ff);
    drop_dir(parent);
}

/* Without partition.metadata (the metadata log, tools) the first flush
 * syncs the directory before anything appended counts as durable. */
TEST(create_dir_synced_by_first_flush)
{
    char *parent = tmpdir(), dir[4200];
    snprintf(dir, sizeof dir, "%s/topic-0", parent);
    flusher_t *f;
    fault_fs_t *ff = fault_fs_new();
    plog_t *log;
    REQUIRE(plog_open(dir, NULL, fault_fs_sfs(ff), true, &log) == STORAGE_OK);
    fault_fs_stats_t st;
    fault_fs_stats(ff, &st);
    CHECK_EQ_INT(st.syncs + st.dir_syncs, 0);
    plog_append_result_t res;
    REQUIRE(append_one(log, 1, 1000, 10, -1, &res) == STORAGE_OK);
    CHECK(flush_now(log, &f));
    fault_fs_stats(ff, &st);
    CHECK_EQ_INT(st.dir_syncs, 1); /* no epoch, so no leader-epoch-checkpoint: the directory's own */
    CHECK_EQ_INT(plog_flushed_offset(log), 1);
    plog_close(log);
    flusher_free(f);
    fault_fs_free(ff);
    drop_dir(parent);
}

/* Every state a crash can leave a creation in is completed at the next
 * start: no directory; the directory with or without its first segment;
 * partition.metadata absent, empty, torn or whole; .tmp files of an
 * older version. The log then opens empty, names the topic, takes data
 * and keeps it across a reopen. */
TEST(create_crash_states)
{
    static const char *const metas[] = {NULL, "", "version: 0\ntopic_id: BwE", NULL /* whole, below */};
    int states = 0;
    for (int nodir = 0; nodir < 2; nodir++)
        for (int seg = 0; seg < 2; seg++)
            for (int meta = 0; meta < 4; meta++)
                for (int tmp = 0; tmp < 2; tmp++) {
                    if (nodir && (seg || meta || tmp))
                        continue; /* no directory: nothing in it */
                    char *parent = tmpdir(), dir[4200], p[4200];
                    snprintf(dir, sizeof dir, "%s/topic-3", parent);
                    if (!nodir)
                        REQUIRE(mkdir(dir, 0755) == 0);
                    if (seg) {
                        seg_file(p, sizeof p, dir, 0, ".log");
                        test_write_file(dir, p + strlen(dir) + 1, "");
                    }
                    if (meta == 3) {
                        plog_t *w = broker_open(dir, sfs_posix()); /* a whole one, as step 3 writes it */
                        plog_close(w);
                        seg_file(p, sizeof p, dir, 0, ".log");
                        if (!seg)
                            unlink(p);
                        unlink(strcat(strcpy(p, dir), "/chronik.checkpoint"));
                    } else if (metas[meta]) {
                        test_write_file(dir, "partition.metadata", metas[meta]);
                    }
                    if (tmp) {
                        test_write_file(dir, "partition.metadata.tmp", "version: 0\n");
                        test_write_file(dir, "chronik.checkpoint.tmp", "chronik-che");
                    }
                    plog_t *log = broker_open(dir, sfs_posix());
                    CHECK_EQ_INT(plog_segment_count(log), 1);
                    CHECK_EQ_INT(plog_log_start_offset(log), 0);
                    CHECK_EQ_INT(plog_log_end_offset(log), 0);
                    CHECK_EQ_INT(count_files(dir, ".tmp"), 0);
                    uint8_t id[16];
                    CHECK(plog_topic_id(log, id) == STORAGE_OK && memcmp(id, create_id, 16) == 0);
                    plog_append_result_t res;
                    REQUIRE(append_one(log, 3, 1000, 10, 0, &res) == STORAGE_OK);
                    flusher_t *f;
                    CHECK(flush_now(log, &f));
                    plog_close(log);
                    flusher_free(f);
                    REQUIRE(plog_open(dir, NULL, sfs_posix(), false, &log) == STORAGE_OK);
                    CHECK_EQ_INT(plog_log_end_offset(log), 3);
                    CHECK(plog_topic_id(log, id) == STORAGE_OK && memcmp(id, create_id, 16) == 0);
                    plog_close(log);
                    drop_dir(parent);
                    states++;
                }
    CHECK_EQ_INT(states, 17);
}

/* A directory with no segment whose checkpoint names a log start above 0
 * is not a creation cut short: it opens at that start. */
TEST(create_not_confused_with_emptied_log)
{
    char *dir = tmpdir();
    test_write_file(dir, "chronik.checkpoint", "chronik-checkpoint 1\nlog_start_offset 40\nrecovery_point 40\n");
    plog_t *log;
    REQUIRE(plog_open(dir, NULL, sfs_posix(), true, &log) == STORAGE_OK);
    CHECK_EQ_INT(plog_log_start_offset(log), 40);
    CHECK_EQ_INT(plog_log_end_offset(log), 40);
    CHECK_EQ_INT(plog_set_topic_id(log, create_id), STORAGE_OK);
    CHECK_EQ_INT(count_files(dir, ".tmp"), 0);
    plog_close(log);
    drop_dir(dir);
}

/* Replica appends keep offsets and epochs, check CRCs and refuse going backwards. */
TEST(append_replica)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    buf_t b;
    buf_init(&b);
    size_t n1 = make_batch(&b, 3, 1000, 10);
    make_batch(&b, 2, 1000, 10);
    batch_set_base_offset(b.data, 0);
    batch_set_leader_epoch(b.data, 7);
    batch_set_base_offset(b.data + n1, 3);
    batch_set_leader_epoch(b.data + n1, 8);
    plog_append_result_t res;
    CHECK_EQ_INT(plog_append_replica(log, b.data, b.len, &res), STORAGE_OK);
    CHECK_EQ_INT(res.log_end_offset, 5);
    CHECK_EQ_INT(plog_append_replica(log, b.data, b.len, &res), STORAGE_ERR_INVALID);
    batch_set_base_offset(b.data, 100);
    batch_set_base_offset(b.data + n1, 103);
    b.data[n1 - 1] ^= 1;
    CHECK_EQ_INT(plog_append_replica(log, b.data, b.len, &res), STORAGE_ERR_INVALID);
    b.data[n1 - 1] ^= 1;
    CHECK_EQ_INT(plog_append_replica(log, b.data, b.len, &res), STORAGE_OK); /* gap allowed */
    CHECK_EQ_INT(res.log_end_offset, 105);
    int32_t e;
    int64_t o;
    plog_epoch_end_offset(log, 7, &e, &o);
    CHECK(e == 7 && o == 3);
    plog_read_result_t rr;
    REQUIRE(plog_read(log, 50, INT64_MAX, 1, &rr) == STORAGE_OK); /* in the gap */
    CHECK_EQ_INT(rr.first_offset, 100);
    plog_read_release(&rr);
    plog_close(log);
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_OK);
    CHECK_EQ_INT(plog_log_end_offset(log), 105);
    plog_close(log);
    buf_free(&b);
    drop_dir(dir);
}

/* ---- flusher ---------------------------------------------------------------- */

typedef struct ack {
    int fired, err, order;
} ack_t;
static int ack_seq;
static void on_ack(void *arg, int err)
{
    ack_t *a = arg;
    a->fired++;
    a->err = err;
    a->order = ++ack_seq;
}

/* One round syncs each dirty file once, however many requests wait; callbacks in order. */
TEST(flusher_shares_syncs)
{
    char *dirs[3];
    plog_t *logs[3];
    fault_fs_t *ff = fault_fs_new();
    flusher_t *f = flusher_new();
    plog_config_t cfg;
    small_config(&cfg);
    for (int i = 0; i < 3; i++) {
        dirs[i] = tmpdir();
        REQUIRE(plog_open(dirs[i], &cfg, fault_fs_sfs(ff), true, &logs[i]) == STORAGE_OK);
        flusher_attach(f, logs[i]);
    }
    for (int i = 0; i < 3; i++) { /* first append: epoch file written once */
        plog_append_result_t res;
        REQUIRE(append_one(logs[i], 2, 1000, 50, 0, &res) == STORAGE_OK);
    }
    flusher_run_once(f);
    fault_fs_reset_stats(ff);
    ack_t acks[3][20];
    memset(acks, 0, sizeof acks);
    ack_seq = 0;
    for (int k = 0; k < 20; k++) {
        for (int i = 0; i < 3; i++) {
            plog_append_result_t res;
            REQUIRE(append_one(logs[i], 2, 1000, 50, 0, &res) == STORAGE_OK);
            flusher_request(f, logs[i], res.log_end_offset, on_ack, &acks[i][k]);
        }
    }
    CHECK_EQ_INT(acks[0][0].fired, 0);
    int syncs = flusher_run_once(f);
    CHECK_EQ_INT(syncs, 3);
    fault_fs_stats_t st;
    fault_fs_stats(ff, &st);
    CHECK_EQ_INT(st.syncs, 3);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(plog_flushed_offset(logs[i]), 42);
        for (int k = 0; k < 20; k++) {
            CHECK(acks[i][k].fired == 1 && acks[i][k].err == STORAGE_OK);
            if (k)
                CHECK(acks[i][k].order == acks[i][k - 1].order + 1);
        }
    }
    CHECK_EQ_INT(flusher_run_once(f), 0); /* nothing dirty */
    for (int i = 0; i < 3; i++) {
        plog_close(logs[i]);
        rm_rf(dirs[i]);
        free(dirs[i]);
    }
    flusher_free(f);
    fault_fs_free(ff);
}

/* A new log (small_config) in a new *dir on a new fault fs *ff, attached
 * to a new flusher *f; NULL when it cannot be opened. */
static plog_t *open_attached(char **dir, fault_fs_t **ff, flusher_t **f)
{
    *dir = tmpdir();
    *ff = fault_fs_new();
    *f = flusher_new();
    plog_config_t cfg;
    small_config(&cfg);
    plog_t *log;
    if (plog_open(*dir, &cfg, fault_fs_sfs(*ff), true, &log) != STORAGE_OK)
        return NULL;
    flusher_attach(*f, log);
    return log;
}

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, errors;
} waiter_t;

static void on_done(void *arg, int err)
{
    waiter_t *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done++;
    w->errors += err != STORAGE_OK;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

typedef struct producer {
    plog_t *log;
    flusher_t *f;
    waiter_t *w;
    int n;
} producer_t;

static void *produce(void *arg)
{
    producer_t *p = arg;
    for (int i = 0; i < p->n; i++) {
        plog_append_result_t res;
        if (append_one(p->log, 5, 1000, 100, 0, &res) != STORAGE_OK)
            abort();
        flusher_request(p->f, p->log, res.log_end_offset, on_done, p->w);
    }
    return NULL;
}

typedef struct syncer {
    plog_t *log;
    flusher_t *f;
    atomic_bool stop;
    int errors;
} syncer_t;

/* A follower's fetcher, in a loop: syncs the log itself. */
static void *sync_loop(void *arg)
{
    syncer_t *s = arg;
    while (!atomic_load(&s->stop))
        s->errors += flusher_sync_now(s->f, s->log) != STORAGE_OK;
    return NULL;
}

/* Concurrent producers on the flusher thread, and with beside a thread
 * calling flusher_sync_now on the same log meanwhile (syncs then run one
 * at a time): every request completes, all is durable at the end. */
static void group_commit(bool beside)
{
    char *dir;
    fault_fs_t *ff;
    flusher_t *f;
    plog_t *log = open_attached(&dir, &ff, &f);
    REQUIRE(log);
    flusher_start(f);
    fault_fs_reset_stats(ff);
    waiter_t w = {.done = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    syncer_t sy = {.log = log, .f = f};
    atomic_init(&sy.stop, false);
    pthread_t syt;
    if (beside)
        pthread_create(&syt, NULL, sync_loop, &sy);
    enum { THREADS = 4, PER = 200 };
    pthread_t th[THREADS];
    producer_t pr = {log, f, &w, PER};
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, produce, &pr);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&w.mu);
    while (w.done < THREADS * PER && pthread_cond_timedwait(&w.cv, &w.mu, &dl) == 0)
        ;
    int done = w.done, errors = w.errors;
    pthread_mutex_unlock(&w.mu);
    atomic_store(&sy.stop, true);
    if (beside)
        pthread_join(syt, NULL);
    CHECK_EQ_INT(done, THREADS * PER);
    CHECK_EQ_INT(errors, 0);
    CHECK_EQ_INT(sy.errors, 0);
    CHECK_EQ_INT(plog_flushed_offset(log), THREADS * PER * 5);
    flusher_stats_t st;
    flusher_get_stats(f, &st);
    CHECK(beside || st.syncs <= (uint64_t)THREADS * PER);
    CHECK_EQ_INT(st.callbacks, THREADS * PER);
    plog_close(log);
    flusher_free(f);
    fault_fs_free(ff);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    drop_dir(dir);
}

/* The flusher thread group-commits concurrent producers: every request completes. */
TEST(flusher_thread_group_commit) { group_commit(false); }

TEST(flusher_sync_now_beside_thread) { group_commit(true); }

/* flush.messages > 1 acknowledges from the page cache and syncs every N messages. */
TEST(flusher_relaxed_flush_messages)
{
    char *dir = tmpdir();
    fault_fs_t *ff = fault_fs_new();
    flusher_t *f = flusher_new();
    plog_config_t cfg;
    small_config(&cfg);
    cfg.flush_messages = 10;
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, fault_fs_sfs(ff), true, &log) == STORAGE_OK);
    CHECK(!plog_ack_needs_flush(log));
    flusher_attach(f, log);
    plog_append_result_t res;
    REQUIRE(append_one(log, 4, 1000, 10, 0, &res) == STORAGE_OK);
    flusher_run_once(f);
    CHECK_EQ_INT(plog_flushed_offset(log), 0);
    REQUIRE(append_one(log, 6, 1000, 10, 0, &res) == STORAGE_OK);
    CHECK(flusher_run_once(f) >= 1);
    CHECK_EQ_INT(plog_flushed_offset(log), 10);
    plog_close(log);
    flusher_free(f);
    fault_fs_free(ff);
    drop_dir(dir);
}

/* flush.ms: unsynced relaxed writes are synced once the oldest is flush_ms old. */
TEST(flusher_relaxed_flush_ms)
{
    for (int advance = 0; advance < 2; advance++) {
        char *dir = tmpdir();
        fault_fs_t *ff = fault_fs_new();
        flusher_t *f = flusher_new(); /* its first round looks at every log */
        plog_config_t cfg;
        small_config(&cfg);
        cfg.flush_messages = 1000;
        cfg.flush_ms = 100;
        plog_t *log;
        REQUIRE(plog_open(dir, &cfg, fault_fs_sfs(ff), true, &log) == STORAGE_OK);
        flusher_attach(f, log);
        plog_append_result_t res;
        REQUIRE(append_one(log, 3, 1000, 10, 0, &res) == STORAGE_OK);
        fake_now += advance ? 101 : 99;
        flusher_run_once(f);
        CHECK_EQ_INT(plog_flushed_offset(log), advance ? 3 : 0);
        plog_close(log);
        flusher_free(f);
        fault_fs_free(ff);
        rm_rf(dir);
        free(dir);
    }
}

/* A failed fsync fails the waiting requests and makes the log refuse writes. */
TEST(sync_failure_is_sticky)
{
    char *dir;
    fault_fs_t *ff;
    flusher_t *f;
    plog_t *log = open_attached(&dir, &ff, &f);
    REQUIRE(log);
    plog_append_result_t res;
    ack_t a = {0}, b = {0};
    REQUIRE(append_one(log, 1, 1000, 10, 0, &res) == STORAGE_OK);
    flusher_request(f, log, res.log_end_offset, on_ack, &a);
    flusher_run_once(f);
    CHECK(a.fired == 1 && a.err == STORAGE_OK);
    fault_fs_fail_sync_at(ff, 1);
    REQUIRE(append_one(log, 1, 1000, 10, 0, &res) == STORAGE_OK);
    flusher_request(f, log, res.log_end_offset, on_ack, &b);
    flusher_run_once(f);
    CHECK(b.fired == 1 && b.err == STORAGE_ERR_FAILED);
    CHECK_EQ_INT(plog_state(log), STORAGE_ERR_FAILED);
    CHECK_EQ_INT(append_one(log, 1, 1000, 10, 0, &res), STORAGE_ERR_FAILED);
    plog_close(log);
    flusher_free(f);
    /* a failed write, too */
    plog_config_t cfg;
    small_config(&cfg);
    REQUIRE(plog_open(dir, &cfg, fault_fs_sfs(ff), false, &log) == STORAGE_OK);
    fault_fs_fail_write_at(ff, 1);
    CHECK_EQ_INT(append_one(log, 1, 1000, 10, 0, &res), STORAGE_ERR_IO);
    CHECK_EQ_INT(plog_state(log), STORAGE_ERR_FAILED);
    plog_close(log);
    fault_fs_free(ff);
    drop_dir(dir);
}

/* A follower's append does not wake the flusher; flusher_sync_now makes it
 * durable on the calling thread, counted in the flusher's syncs. */
TEST(flusher_sync_now_on_caller)
{
    char *dir;
    fault_fs_t *ff;
    flusher_t *f;
    plog_t *log = open_attached(&dir, &ff, &f);
    REQUIRE(log);
    flusher_run_once(f); /* the first round looks at every log */
    buf_t b;
    buf_init(&b);
    make_batch(&b, 4, 1000, 10);
    plog_append_result_t res;
    REQUIRE(plog_append_replica_nowake(log, b.data, b.len, &res) == STORAGE_OK);
    CHECK_EQ_INT(flusher_run_once(f), 0); /* not put on the dirty list */
    CHECK_EQ_INT(plog_flushed_offset(log), 0);
    fault_fs_reset_stats(ff);
    CHECK_EQ_INT(flusher_sync_now(f, log), STORAGE_OK);
    CHECK_EQ_INT(plog_flushed_offset(log), 4);
    fault_fs_stats_t st;
    fault_fs_stats(ff, &st);
    flusher_stats_t fst;
    flusher_get_stats(f, &fst);
    CHECK(fst.syncs >= 1 && fst.syncs <= st.syncs); /* the epochs file's fsync is not a log sync */
    uint64_t before = st.syncs;
    CHECK_EQ_INT(flusher_sync_now(f, log), STORAGE_OK); /* nothing left: no sync */
    fault_fs_stats(ff, &st);
    CHECK_EQ_INT(st.syncs, before);
    batch_set_base_offset(b.data, 4);
    REQUIRE(plog_append_replica_nowake(log, b.data, b.len, &res) == STORAGE_OK);
    fault_fs_fail_sync_at(ff, 1);
    CHECK_EQ_INT(flusher_sync_now(f, log), STORAGE_ERR_FAILED);
    CHECK_EQ_INT(plog_flushed_offset(log), 4); /* the failed sync made nothing durable */
    CHECK_EQ_INT(plog_state(log), STORAGE_ERR_FAILED);
    buf_free(&b);
    plog_close(log);
    flusher_free(f);
    fault_fs_free(ff);
    drop_dir(dir);
}

/* ---- random crash points ----------------------------------------------------- */

typedef struct expect {
    int64_t base, last;
    buf_t bytes;
    int acked; /* 1 ok, -1 failed */
    int err;
} expect_t;

static void on_expect(void *arg, int err)
{
    expect_t *e = arg;
    e->acked = err == STORAGE_OK ? 1 : -1;
    e->err = err;
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Checks every acknowledged batch survived byte for byte and nothing bad is served. */
static int verify_after_crash(const char *dir, const plog_config_t *cfg, expect_t *ex, int nex, uint64_t seed)
{
    plog_t *log;
    int r = plog_open(dir, cfg, sfs_posix(), false, &log);
    if (r != STORAGE_OK) {
        fprintf(stderr, "seed %llu: reopen failed: %s\n", (unsigned long long)seed, storage_strerror(r));
        plog_close(log);
        return 1;
    }
    buf_t all;
    buf_init(&all);
    int batches = read_all(log, plog_log_start_offset(log), &all);
    int bad = batches < 0;
    for (int i = 0; i < nex && !bad; i++) {
        if (ex[i].acked != 1)
            continue;
        buf_t got;
        buf_init(&got);
        int64_t next;
        r = plog_read_copy(log, ex[i].base, INT64_MAX, 1, &got, &next);
        bad = r != STORAGE_OK || got.len < ex[i].bytes.len ||
              memcmp(got.data, ex[i].bytes.data, ex[i].bytes.len) != 0;
        if (bad)
            fprintf(stderr, "seed %llu: acked batch at %lld lost or changed (leo %lld)\n",
                    (unsigned long long)seed, (long long)ex[i].base, (long long)plog_log_end_offset(log));
        buf_free(&got);
    }
    if (batches < 0)
        fprintf(stderr, "seed %llu: read_all failed %d\n", (unsigned long long)seed, batches);
    buf_free(&all);
    plog_close(log);
    if (!bad && check_quiet(dir) != 0) {
        fprintf(stderr, "seed %llu: check_dir failed after recovery\n", (unsigned long long)seed);
        bad = 1;
    }
    return bad;
}

/* Runs appends/flushes/rolls/truncations until the fs "loses power". */
static int crash_workload(plog_t *log, flusher_t *f, fault_fs_t *ff, expect_t *ex, int maxex, uint64_t *s)
{
    int nex = 0;
    for (int step = 0; step < 60 && !fault_fs_crashed(ff) && nex < maxex; step++) {
        int op = (int)(rng(s) % 10);
        if (op < 6) {
            buf_t b;
            buf_init(&b);
            make_batch(&b, 1 + (int)(rng(s) % 4), 1000 + step, 1 + (int)(rng(s) % 200));
            plog_append_result_t res;
            if (plog_append(log, b.data, b.len, 1, &res) == STORAGE_OK) {
                ex[nex] = (expect_t){.base = res.base_offset, .last = res.last_offset, .bytes = b};
                flusher_request(f, log, res.log_end_offset, on_expect, &ex[nex]);
                nex++;
            } else {
                buf_free(&b);
            }
        } else if (op < 9) {
            flusher_run_once(f);
        } else if (rng(s) % 3 == 0 && plog_log_end_offset(log) > 0) {
            int64_t to = (int64_t)(rng(s) % (uint64_t)plog_log_end_offset(log)), end;
            flusher_run_once(f);
            plog_truncate(log, to, &end);
            for (int i = 0; i < nex; i++) /* truncated data is no longer expected */
                if (ex[i].last >= to)
                    ex[i].acked = 0;
        } else {
            plog_roll(log);
        }
    }
    flusher_run_once(f);
    return nex;
}

/* Crash at op N = 1, 2, 3, ...: acknowledged batches survive, torn tails are cut. */
TEST(random_crash_points)
{
    enum { MAXEX = 64 };
    uint64_t iters = getenv("CRASH_ITERS") ? strtoull(getenv("CRASH_ITERS"), NULL, 10) : 300;
    log_set_level(LOG_ERROR);
    int failures = 0, acked = 0, crashed = 0;
    uint64_t first = getenv("CRASH_FIRST") ? strtoull(getenv("CRASH_FIRST"), NULL, 10) : 1;
    for (uint64_t it = first; it < first + iters && failures < 3; it++) {
        uint64_t s = it * 0x9e3779b97f4a7c15ULL;
        char *dir = tmpdir();
        fault_fs_t *ff = fault_fs_new();
        flusher_t *f = flusher_new();
        plog_config_t cfg;
        small_config(&cfg);
        cfg.segment_bytes = 1024 + (int64_t)(rng(&s) % 2048);
        cfg.index_interval_bytes = 128;
        plog_t *log;
        REQUIRE(plog_open(dir, &cfg, fault_fs_sfs(ff), true, &log) == STORAGE_OK);
        flusher_attach(f, log);
        fault_fs_crash_at(ff, it % 151 + 1); /* crash point: the Nth mutating op */
        expect_t ex[MAXEX];
        int nex = crash_workload(log, f, ff, ex, MAXEX, &s);
        crashed += fault_fs_crashed(ff);
        for (int i = 0; i < nex; i++)
            acked += ex[i].acked == 1;
        plog_close(log);
        flusher_free(f);
        fault_fs_crash(ff, it);
        fault_fs_free(ff);
        if (getenv("CRASH_DEBUG")) {
            char cmd[300];
            snprintf(cmd, sizeof cmd, "rm -rf /tmp/crash-%llu; cp -r %s /tmp/crash-%llu", (unsigned long long)it, dir, (unsigned long long)it);
            if (system(cmd)) {}
        }
        if (verify_after_crash(dir, &cfg, ex, nex, it)) {
            fprintf(stderr, "  crash test failed: seed=%llu dir kept at %s\n", (unsigned long long)it, dir);
            failures++;
        } else {
            rm_rf(dir);
        }
        for (int i = 0; i < nex; i++)
            buf_free(&ex[i].bytes);
        free(dir);
    }
    log_set_level(LOG_INFO);
    printf("random_crash_points: %llu runs, %d crashed mid-workload, %d acknowledged batches verified\n",
           (unsigned long long)iters, crashed, acked);
    CHECK(crashed > 0 && acked > 0);
    CHECK_EQ_INT(failures, 0);
}

/* ---- tools and data dir --------------------------------------------------------- */

static int seen_partitions;
static int on_partition(void *arg, const char *topic, int32_t partition)
{
    (void)arg;
    if ((!strcmp(topic, "orders") && partition == 3) || (!strcmp(topic, "a-b.c") && partition == 0))
        seen_partitions++;
    else
        seen_partitions += 100;
    return 0;
}

/* Partition dirs are created as <topic>-<partition> and listed back; bad names refused. */
TEST(data_dir_partitions)
{
    char *data = tmpdir();
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/x", data);
    plog_t *a, *b;
    REQUIRE(storage_open_partition(sub, "orders", 3, NULL, sfs_posix(), &a) == STORAGE_OK);
    REQUIRE(storage_open_partition(sub, "a-b.c", 0, NULL, sfs_posix(), &b) == STORAGE_OK);
    plog_t *c;
    CHECK_EQ_INT(storage_open_partition(sub, "bad/name", 0, NULL, sfs_posix(), &c), STORAGE_ERR_INVALID);
    CHECK(strstr(plog_dir(a), "/orders-3") != NULL);
    char junk[4300];
    snprintf(junk, sizeof junk, "%s/not-a-partition", sub);
    mkdir(junk, 0755);
    seen_partitions = 0;
    CHECK_EQ_INT(storage_list_partitions(sub, sfs_posix(), on_partition, NULL), STORAGE_OK);
    CHECK_EQ_INT(seen_partitions, 2);
    plog_close(a);
    plog_close(b);
    rm_rf(data);
    free(data);
}

/* check_dir reports problems and dump_dir prints every batch with its CRC status. */
TEST(check_and_dump_tools)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    cfg.segment_bytes = 2048;
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    for (int i = 0; i < 30; i++)
        REQUIRE(append_one(log, 2, 1000, 60, 2, &res) == STORAGE_OK);
    plog_close(log);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    CHECK_EQ_INT(storage_dump_dir(dir, m), 0);
    fclose(m);
    int lines = 0;
    for (char *p = text; (p = strstr(p, "crcOk: true")); p++)
        lines++;
    CHECK_EQ_INT(lines, 30);
    CHECK(strstr(text, "baseOffset: 58 lastOffset: 59 count: 2 leaderEpoch: 2") != NULL);
    free(text);
    CHECK_EQ_INT(check_quiet(dir), 0);
    char p[4200];
    seg_file(p, sizeof p, dir, 0, ".log");
    int fd = open(p, O_RDWR);
    CHECK(pwrite(fd, "XX", 2, 100) == 2);
    close(fd);
    m = open_memstream(&text, &len);
    CHECK_EQ_INT(storage_check_dir(dir, m), 1);
    fclose(m);
    CHECK(strstr(text, "CRC") != NULL);
    free(text);
    m = open_memstream(&text, &len);
    CHECK_EQ_INT(storage_dump_dir(dir, m), 1);
    fclose(m);
    CHECK(strstr(text, "crcOk: false") != NULL);
    free(text);
    drop_dir(dir);
}

/* ---- a full disk ----------------------------------------------------------- */

static void full_disk_case(int64_t preallocate)
{
    char *dir = tmpdir();
    fault_fs_t *ff = fault_fs_new();
    plog_config_t cfg;
    small_config(&cfg);
    cfg.preallocate_bytes = preallocate;
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, fault_fs_sfs(ff), true, &log) == STORAGE_OK);
    plog_append_result_t res;
    for (int i = 0; i < 10; i++)
        REQUIRE(append_one(log, 2, 1000 + i, 100, 0, &res) == STORAGE_OK);
    flusher_t *f = flusher_new();
    flusher_attach(f, log);
    flusher_run_once(f);
    char p[4200];
    seg_file(p, sizeof p, dir, 0, ".log");
    int64_t size_before = preallocate ? -1 : file_size(p);
    fault_fs_set_space(ff, 37); /* part of the next batch fits, not all of it */
    int ok = 0, r;
    while ((r = append_one(log, 2, 2000, 100, 0, &res)) == STORAGE_OK && ok < 100000)
        ok++; /* appends into zeros written ahead need no space */
    CHECK_EQ_INT(r, STORAGE_ERR_NO_SPACE);
    CHECK(preallocate > 0 || ok == 0);
    int64_t leo = 20 + 2 * ok;
    CHECK_EQ_INT(plog_log_end_offset(log), leo);
    CHECK_EQ_INT(plog_state(log), STORAGE_OK);
    CHECK(plog_space_short(log));
    if (size_before >= 0)
        CHECK_EQ_INT(file_size(p), size_before); /* the partial write was cut back */
    fault_fs_reset_stats(ff);
    CHECK_EQ_INT(append_one(log, 2, 2000, 100, 0, &res), STORAGE_ERR_NO_SPACE); /* within the backoff */
    fault_fs_stats_t st;
    fault_fs_stats(ff, &st);
    CHECK_EQ_INT(st.writes, 0);
    fault_fs_set_space(ff, -1); /* space returns */
    int64_t deadline = clock_mono_ms() + 5000;
    while ((r = append_one(log, 2, 2000, 100, 0, &res)) == STORAGE_ERR_NO_SPACE && clock_mono_ms() < deadline)
        usleep(10000);
    CHECK_EQ_INT(r, STORAGE_OK);
    CHECK_EQ_INT(res.base_offset, leo);
    CHECK(!plog_space_short(log));
    plog_close(log);
    flusher_free(f);
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_OK);
    buf_t out;
    buf_init(&out);
    CHECK_EQ_INT(read_all(log, 0, &out), 11 + ok);
    CHECK_EQ_INT(plog_log_end_offset(log), leo + 2);
    buf_free(&out);
    plog_close(log);
    fault_fs_free(ff);
    drop_dir(dir);
}

/* ENOSPC cuts the append back to the last whole batch, refuses writes for a
 * backoff without touching the disk, and the log resumes once space returns. */
TEST(full_disk_is_recoverable) { full_disk_case(0); }

/* The same with zeros written ahead of small appends (their write is what
 * finds the disk full first). */
TEST(full_disk_is_recoverable_preallocated) { full_disk_case(PLOG_PREALLOCATE_BYTES_DEFAULT); }

/* ---- damage ----------------------------------------------------------------- */

/* A log of n batches of 2 records each, closed cleanly (recovery point at
 * its end), rolled every roll_every batches (0: never). */
static void write_closed(const char *dir, const plog_config_t *cfg, int n, int roll_every)
{
    plog_t *log;
    CK_ASSERT(plog_open(dir, cfg, sfs_posix(), true, &log) == STORAGE_OK);
    for (int i = 0; i < n; i++) {
        plog_append_result_t res;
        CK_ASSERT(append_one(log, 2, 1000 + i, 100, 0, &res) == STORAGE_OK);
        if (roll_every && (i + 1) % roll_every == 0)
            CK_ASSERT(plog_roll(log) == STORAGE_OK);
    }
    plog_close(log);
}

static void flip_byte(const char *path, int64_t pos)
{
    int fd = open(path, O_RDWR);
    uint8_t c;
    CK_ASSERT(pread(fd, &c, 1, pos) == 1);
    c ^= 0x5a;
    CK_ASSERT(pwrite(fd, &c, 1, pos) == 1);
    close(fd);
}

static int repair_quiet(const char *dir) { return tool_quiet(storage_repair_dir, dir); }

/* A cleanly closed log whose tail was cut comes up read-only serving the
 * valid prefix (not offline with nothing), and repair makes it writable
 * with nothing deleted. */
TEST(torn_tail_below_recovery_point_is_read_only_prefix)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    write_closed(dir, &cfg, 10, 0);
    char p[4200];
    seg_file(p, sizeof p, dir, 0, ".log");
    int64_t size = file_size(p);
    CHECK(truncate(p, size - 10) == 0);
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_ERR_DAMAGED);
    CHECK_EQ_INT(plog_log_end_offset(log), 18);
    int64_t from = -1, to = -1;
    CHECK(plog_damaged_range(log, &from, &to));
    CHECK_EQ_INT(from, 18);
    CHECK_EQ_INT(to, 20);
    buf_t out;
    buf_init(&out);
    CHECK_EQ_INT(read_all(log, 0, &out), 9);
    plog_append_result_t res;
    CHECK_EQ_INT(append_one(log, 1, 5000, 10, 0, &res), STORAGE_ERR_DAMAGED);
    plog_close(log);
    CHECK_EQ_INT(file_size(p), size - 10); /* nothing was cut */
    CHECK_EQ_INT(repair_quiet(dir), 0);
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_OK);
    CHECK_EQ_INT(plog_log_end_offset(log), 18);
    CHECK_EQ_INT(append_one(log, 1, 5000, 10, 0, &res), STORAGE_OK);
    CHECK_EQ_INT(res.base_offset, 18);
    plog_close(log);
    CHECK_EQ_INT(check_quiet(dir), 0);
    buf_free(&out);
    drop_dir(dir);
}

/* The scrubber finds a flipped byte in the middle of a closed segment: the
 * log goes read-only, the damaged batch is never served, and reads before
 * and after it still are. */
TEST(scrub_finds_damage_in_a_closed_segment)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    write_closed(dir, &cfg, 30, 10); /* segments at 0, 20, 40 (+ the empty active one) */
    char p[4200];
    seg_file(p, sizeof p, dir, 20, ".log");
    int64_t size = file_size(p);
    flip_byte(p, size / 2 + size / 20); /* the records of the segment's 6th batch */
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_OK); /* trusted at open */
    plog_scrub_stats_t st;
    CHECK_EQ_INT(plog_scrub(log, NULL, NULL, &st), STORAGE_OK);
    CHECK_EQ_INT(st.damaged_ranges, 1);
    CHECK(st.segments >= 3);
    CHECK_EQ_INT(plog_state(log), STORAGE_ERR_DAMAGED);
    int64_t from = -1, to = -1;
    REQUIRE(plog_damaged_range(log, &from, &to));
    CHECK(from >= 20 && from < 40 && to == from + 2);
    buf_t out;
    buf_init(&out);
    int64_t next;
    CHECK_EQ_INT(plog_read_copy(log, from, INT64_MAX, 1 << 20, &out, &next), STORAGE_ERR_DAMAGED);
    CHECK_EQ_INT(plog_read_copy(log, 0, INT64_MAX, 1 << 20, &out, &next), STORAGE_OK);
    int64_t off = 0;
    while (off < from) { /* reads before the damage stop short of it */
        size_t at = out.len;
        REQUIRE(plog_read_copy(log, off, INT64_MAX, 1 << 20, &out, &next) == STORAGE_OK);
        REQUIRE(out.len > at);
        off = next;
    }
    CHECK_EQ_INT(off, from);
    out.len = 0;
    CHECK_EQ_INT(plog_read_copy(log, to, INT64_MAX, 1 << 20, &out, &next), STORAGE_OK);
    CHECK(out.len > 0); /* after it, served */
    plog_append_result_t res;
    CHECK_EQ_INT(append_one(log, 1, 5000, 10, 0, &res), STORAGE_ERR_DAMAGED);
    plog_close(log);
    buf_free(&out);
    drop_dir(dir);
}

/* log check names offsets and reports every damaged range of a segment,
 * not only the first. */
TEST(check_reports_every_damaged_range)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    small_config(&cfg);
    write_closed(dir, &cfg, 10, 0);
    char p[4200];
    seg_file(p, sizeof p, dir, 0, ".log");
    int64_t size = file_size(p), batch = size / 10;
    flip_byte(p, 2 * batch + batch / 2);
    flip_byte(p, 7 * batch + batch / 2);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    CHECK_EQ_INT(storage_check_dir(dir, m), 1);
    fclose(m);
    CHECK(strstr(text, "damaged: offsets 4..5") != NULL);
    CHECK(strstr(text, "damaged: offsets 14..15") != NULL);
    free(text);
    drop_dir(dir);
}
