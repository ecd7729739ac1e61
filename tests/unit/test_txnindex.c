/* test_txnindex.c - transactions on the partition side (KIP-98): open
 * transactions and the last stable offset, markers, the .txnindex format,
 * its recovery and rebuild, truncation, and compaction of aborted data. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "proto/batch.h"
#include "proto/kerr.h"
#include "storage/storage.h"
#include "storage/storage_int.h"
#include "test.h"
#include "txn/txn.h"
#include "txn/txn_int.h"

#define NOW_MS 1700000000000LL
#define DAY_MS (24LL * 3600 * 1000)

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static char *tmpdir(void)
{
    char *d = xstrdup("/tmp/chronik-txnidx-XXXXXX");
    CK_ASSERT(mkdtemp(d));
    return d;
}

static void rm_rf(char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* A transactional batch of n keyed records (key = key, "k0".. when NULL). */
static void txn_batch(buf_t *out, int64_t pid, int16_t epoch, int32_t seq, int n, const char *key)
{
    batch_builder_t bb;
    int16_t attrs = pid >= 0 ? BATCH_ATTR_TRANSACTIONAL : 0;
    batch_build_begin(&bb, out, 0, attrs, NOW_MS, pid, epoch, pid >= 0 ? seq : -1);
    for (int i = 0; i < n; i++)
        batch_build_add(&bb, NOW_MS, key, key ? (int32_t)strlen(key) : -1, "v", 1, NULL, 0);
    batch_build_end(&bb);
}

/* Appends the batch in b to log and applies it to s; returns its base offset. */
static int64_t put(plog_t *log, txn_state *s, buf_t *b)
{
    plog_append_result_t res;
    CK_ASSERT(plog_append(log, b->data, b->len, 0, &res) == STORAGE_OK);
    batch_info_t bi;
    CK_ASSERT(batch_parse_header(b->data, b->len, &bi) == BATCH_ERR_OK);
    if (s && bi.producer_id >= 0)
        CK_ASSERT(txn_state_apply_log(s, log, &bi, res.base_offset, res.last_offset) == STORAGE_OK);
    buf_reset(b);
    return res.base_offset;
}

static int64_t put_data(plog_t *log, txn_state *s, int64_t pid, int32_t seq, int n, const char *key)
{
    buf_t b;
    buf_init(&b);
    txn_batch(&b, pid, 0, seq, n, key);
    int64_t off = put(log, s, &b);
    buf_free(&b);
    return off;
}

static int64_t put_marker(plog_t *log, txn_state *s, int64_t pid, bool commit)
{
    buf_t b;
    buf_init(&b);
    batch_build_marker(&b, pid, 0, commit, 3, NOW_MS);
    int64_t off = put(log, s, &b);
    buf_free(&b);
    return off;
}

typedef struct found {
    plog_aborted_txn_t e[16];
    int n;
} found;

static void grab(void *arg, const plog_aborted_txn_t *e)
{
    found *f = arg;
    if (f->n < 16)
        f->e[f->n] = *e;
    f->n++;
}

static found aborted(plog_t *log, int64_t from, int64_t upto)
{
    found f = {.n = 0};
    plog_aborted_txns(log, from, upto, grab, &f);
    return f;
}

/* The state applied to a batch built in memory at offset off. */
static plog_aborted_txn_t apply_at(txn_state *s, plog_t *log, buf_t *b, int64_t off)
{
    batch_info_t bi;
    CK_ASSERT(batch_parse_header(b->data, b->len, &bi) == BATCH_ERR_OK);
    txn_state_apply_log(s, log, &bi, off, off + bi.last_offset_delta);
    buf_reset(b);
    found f = aborted(log, off, off + 1);
    CK_ASSERT(f.n <= 1);
    return f.n ? f.e[0] : (plog_aborted_txn_t){-1, -1, -1, -1};
}

static int64_t clock_ahead_ms; /* added to the wall clock of the logs open_log opens */

static int64_t test_clock(void *arg)
{
    (void)arg;
    return clock_wall_ms() + clock_ahead_ms;
}

static plog_t *open_log(const char *dir, int64_t segment_bytes)
{
    plog_config_t cfg;
    plog_config_default(&cfg);
    cfg.clock = test_clock;
    if (segment_bytes > 0)
        cfg.segment_bytes = segment_bytes;
    plog_t *log;
    CK_ASSERT(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    return log;
}

/* ---- the producer state -------------------------------------------------- */

/* The first unstable offset is the lowest first offset of an open
 * transaction; a marker closes one; an ABORT yields Kafka's entry whose
 * last stable offset accounts for transactions still open. */
TEST(first_unstable_offset)
{
    char *dir = tmpdir();
    plog_t *log = open_log(dir, 0);
    txn_state *s = txn_state_new();
    buf_t b;
    buf_init(&b);
    CHECK_EQ_INT(txn_state_first_unstable(s), INT64_MAX);
    put_data(log, s, 1, 0, 2, NULL); /* 0-1 */
    put_data(log, s, 2, 0, 1, NULL); /* 2 */
    put_data(log, s, -1, 0, 1, NULL); /* 3: not transactional */
    put_data(log, s, 1, 2, 1, NULL); /* 4: pid 1 again, same transaction */
    CHECK_EQ_INT(txn_state_first_unstable(s), 0);
    CHECK_EQ_INT(txn_state_txn_start(s, 1), 0);
    CHECK_EQ_INT(put_marker(log, s, 1, true), 5);
    CHECK_EQ_INT(txn_state_first_unstable(s), 2);
    CHECK_EQ_INT(txn_state_txn_start(s, 1), -1);
    CHECK_EQ_INT(aborted(log, 0, INT64_MAX).n, 0); /* a commit is not indexed */
    CHECK_EQ_INT(put_marker(log, s, 2, false), 6);
    CHECK_EQ_INT(txn_state_first_unstable(s), INT64_MAX);
    found f = aborted(log, 0, INT64_MAX);
    REQUIRE(f.n == 1);
    CHECK_EQ_INT(f.e[0].producer_id, 2);
    CHECK_EQ_INT(f.e[0].first_offset, 2);
    CHECK_EQ_INT(f.e[0].last_offset, 6);
    CHECK_EQ_INT(f.e[0].last_stable_offset, 7);
    /* with another transaction open below it, the entry's LSO is that one's start */
    put_data(log, s, 4, 0, 1, NULL); /* 7 */
    put_data(log, s, 5, 0, 1, NULL); /* 8 */
    CHECK_EQ_INT(put_marker(log, s, 5, false), 9);
    f = aborted(log, 9, 10);
    REQUIRE(f.n == 1);
    CHECK_EQ_INT(f.e[0].first_offset, 8);
    CHECK_EQ_INT(f.e[0].last_stable_offset, 7);
    CHECK_EQ_INT(txn_state_first_unstable(s), 7);
    /* a marker for a producer with nothing open indexes an empty range */
    CHECK_EQ_INT(put_marker(log, s, 9, false), 10);
    f = aborted(log, 10, 11);
    REQUIRE(f.n == 1);
    CHECK_EQ_INT(f.e[0].first_offset, 10);
    /* a marker beyond the log is not indexed */
    batch_build_marker(&b, 5, 0, false, 0, NOW_MS);
    CHECK_EQ_INT(apply_at(s, log, &b, 50).first_offset, -1);
    txn_state_assert(s);
    buf_free(&b);
    txn_state_free(s);
    plog_close(log);
    rm_rf(dir);
}

/* Markers older than the partition's producer epoch or coordinator epoch are refused. */
TEST(marker_checks)
{
    txn_state *s = txn_state_new();
    buf_t b;
    buf_init(&b);
    batch_build_marker(&b, 7, 2, true, 5, NOW_MS);
    batch_info_t bi;
    REQUIRE(batch_parse_header(b.data, b.len, &bi) == BATCH_ERR_OK);
    CHECK_EQ_INT(batch_control_type(&bi), BATCH_CONTROL_COMMIT);
    CHECK_EQ_INT(batch_control_coordinator_epoch(&bi), 5);
    CHECK_EQ_INT(txn_state_check_marker(s, &bi, 5).err, KERR_NONE);
    txn_state_apply(s, &bi, 0, 0);
    CHECK_EQ_INT(txn_state_check_marker(s, &bi, 4).err, KERR_TRANSACTION_COORDINATOR_FENCED);
    bi.producer_epoch = 1;
    CHECK_EQ_INT(txn_state_check_marker(s, &bi, 5).err, KERR_INVALID_PRODUCER_EPOCH);
    bi.producer_epoch = 3;
    CHECK_EQ_INT(txn_state_check_marker(s, &bi, 5).err, KERR_NONE);
    buf_free(&b);
    txn_state_free(s);
}

/* An open transaction survives a snapshot and keeps holding the LSO after a load. */
TEST(snapshot_keeps_open_transactions)
{
    char *dir = tmpdir();
    plog_t *log = open_log(dir, 0);
    txn_state *s = txn_state_new();
    put_data(log, s, 1, 0, 1, NULL); /* 0 */
    put_data(log, s, 2, 0, 2, NULL); /* 1-2 */
    put_marker(log, s, 1, true);    /* 3 */
    buf_t snap;
    buf_init(&snap);
    txn_state_encode(s, plog_log_end_offset(log), &snap);
    REQUIRE(txn_snapshot_write(sfs_posix(), dir, &snap) == STORAGE_OK);
    txn_state *t = txn_state_new();
    REQUIRE(txn_state_load(t, log, sfs_posix(), dir, NOW_MS, DAY_MS * 365 * 100) == STORAGE_OK);
    CHECK_EQ_INT(txn_state_first_unstable(t), 1);
    CHECK_EQ_INT(txn_state_txn_start(t, 2), 1);
    /* an open transaction's producer is not expired */
    CHECK_EQ_INT(txn_state_expire(t, NOW_MS + 2 * DAY_MS, DAY_MS), 1);
    CHECK_EQ_INT(txn_state_txn_start(t, 2), 1);
    buf_free(&snap);
    txn_state_free(s);
    txn_state_free(t);
    plog_close(log);
    rm_rf(dir);
}

/* ---- the .txnindex file --------------------------------------------------- */

/* Entries round-trip; torn, versioned-wrong or unordered files are refused. */
TEST(txnindex_round_trip)
{
    plog_aborted_txn_t in[3] = {{1, 100, 105, 106}, {2, 101, 110, 111}, {1, 112, 120, 101}};
    uint8_t file[3 * PLOG_TXN_ENTRY_BYTES];
    for (int i = 0; i < 3; i++)
        plog_txn_entry_encode(&in[i], file + i * PLOG_TXN_ENTRY_BYTES);
    plog_aborted_txn_t *out;
    uint32_t n;
    REQUIRE(plog_txn_index_decode(file, sizeof file, 100, 121, &out, &n) == STORAGE_OK);
    REQUIRE(n == 3);
    for (int i = 0; i < 3; i++)
        CHECK(memcmp(&in[i], &out[i], sizeof in[i]) == 0);
    free(out);
    CHECK_EQ_INT(plog_txn_index_decode(file, sizeof file - 1, 100, 121, &out, &n), STORAGE_ERR_FORMAT);
    CHECK_EQ_INT(plog_txn_index_decode(file, sizeof file, 100, 120, &out, &n), STORAGE_ERR_FORMAT);
    CHECK_EQ_INT(plog_txn_index_decode(file, sizeof file, 106, 121, &out, &n), STORAGE_ERR_FORMAT);
    uint8_t bad[sizeof file];
    memcpy(bad, file, sizeof file);
    bad[1] = 1; /* version 1 */
    CHECK_EQ_INT(plog_txn_index_decode(bad, sizeof bad, 100, 121, &out, &n), STORAGE_ERR_FORMAT);
    memcpy(bad, file, sizeof file);
    memcpy(bad + PLOG_TXN_ENTRY_BYTES, file, PLOG_TXN_ENTRY_BYTES); /* last offsets repeat */
    CHECK_EQ_INT(plog_txn_index_decode(bad, sizeof bad, 100, 121, &out, &n), STORAGE_ERR_FORMAT);
    REQUIRE(plog_txn_index_decode(file, 0, 100, 121, &out, &n) == STORAGE_OK);
    CHECK_EQ_INT(n, 0);
    free(out);
}

static int64_t file_size(const char *dir, int64_t base)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%020lld.txnindex", dir, (long long)base);
    struct stat st;
    return stat(p, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* Builds three segments with aborted transactions in the first two:
 * [0..] pid 1 aborted, [..] pid 2 aborted; returns the segment bases. */
static void three_segments(plog_t *log, txn_state *s, int64_t bases[3])
{
    bases[0] = 0;
    put_data(log, s, 1, 0, 2, NULL); /* 0-1 */
    put_marker(log, s, 1, false);    /* 2 */
    CK_ASSERT(plog_roll(log) == STORAGE_OK);
    bases[1] = plog_log_end_offset(log);
    put_data(log, s, 2, 0, 1, NULL); /* 3 */
    put_data(log, s, 3, 0, 1, NULL); /* 4 */
    put_marker(log, s, 3, true);     /* 5 */
    put_marker(log, s, 2, false);    /* 6 */
    CK_ASSERT(plog_roll(log) == STORAGE_OK);
    bases[2] = plog_log_end_offset(log);
    put_data(log, s, 4, 0, 1, NULL); /* 7: open */
}

/* A log of three_segments with its producer state. */
typedef struct fx {
    char *dir;
    plog_t *log;
    txn_state *s;
    int64_t bases[3];
} fx;

static fx fx_three(void)
{
    fx x = {.dir = tmpdir(), .s = txn_state_new()};
    x.log = open_log(x.dir, 0);
    three_segments(x.log, x.s, x.bases);
    return x;
}

static void fx_done(fx *x)
{
    txn_state_free(x->s);
    plog_close(x->log);
    rm_rf(x->dir);
}

/* Each segment's index is written with it (34 bytes an entry), loads again
 * at open without a rebuild, and answers range queries. */
TEST(txnindex_files_and_queries)
{
    fx x = fx_three();
    plog_t *log = x.log;
    char *dir = x.dir;
    int64_t *bases = x.bases;
    CHECK_EQ_INT(file_size(dir, bases[0]), PLOG_TXN_ENTRY_BYTES);
    CHECK_EQ_INT(file_size(dir, bases[1]), PLOG_TXN_ENTRY_BYTES);
    CHECK_EQ_INT(aborted(log, 0, 3).n, 1);
    CHECK_EQ_INT(aborted(log, 3, 4).n, 1);  /* pid 2's range starts at 3 */
    CHECK_EQ_INT(aborted(log, 0, 2).n, 1);  /* pid 1 began before 2 */
    CHECK_EQ_INT(aborted(log, 7, 8).n, 0);
    CHECK_EQ_INT(aborted(log, 0, 100).n, 2);
    plog_close(log);
    CHECK_EQ_INT(file_size(dir, bases[2]), 0); /* clean close writes the active one */
    x.log = open_log(dir, 0);
    CHECK_EQ_INT(plog_txn_index_rebuild_from(x.log), INT64_MAX);
    found f = aborted(x.log, 0, 100);
    REQUIRE(f.n == 2);
    CHECK_EQ_INT(f.e[1].producer_id, 2);
    CHECK_EQ_INT(f.e[1].first_offset, 3);
    CHECK_EQ_INT(f.e[1].last_offset, 6);
    fx_done(&x);
}

/* A missing or torn .txnindex, and every segment recovery had to scan,
 * is rebuilt by the producer state's replay at load, files included. */
TEST(txnindex_recovery_rebuild)
{
    fx x = fx_three();
    char *dir = x.dir;
    int64_t *bases = x.bases;
    plog_close(x.log);
    plog_t *log;
    char p[4200];
    snprintf(p, sizeof p, "%s/%020lld.txnindex", dir, (long long)bases[0]);
    REQUIRE(unlink(p) == 0);
    snprintf(p, sizeof p, "%s/%020lld.txnindex", dir, (long long)bases[1]);
    REQUIRE(truncate(p, PLOG_TXN_ENTRY_BYTES - 3) == 0);
    log = open_log(dir, 0);
    CHECK_EQ_INT(plog_txn_index_rebuild_from(log), bases[0]);
    CHECK_EQ_INT(aborted(log, 0, 100).n, 0);
    txn_state *t = txn_state_new();
    REQUIRE(txn_state_load(t, log, sfs_posix(), dir, NOW_MS, DAY_MS) == STORAGE_OK);
    CHECK_EQ_INT(plog_txn_index_rebuild_from(log), INT64_MAX);
    found f = aborted(log, 0, 100);
    REQUIRE(f.n == 2);
    CHECK_EQ_INT(f.e[0].first_offset, 0);
    CHECK_EQ_INT(f.e[0].last_offset, 2);
    CHECK_EQ_INT(f.e[1].first_offset, 3);
    CHECK_EQ_INT(f.e[1].last_offset, 6);
    CHECK_EQ_INT(f.e[1].last_stable_offset, 7);
    CHECK_EQ_INT(txn_state_first_unstable(t), 7);
    CHECK_EQ_INT(file_size(dir, bases[0]), PLOG_TXN_ENTRY_BYTES);
    CHECK_EQ_INT(file_size(dir, bases[1]), PLOG_TXN_ENTRY_BYTES);
    plog_close(log);
    /* an unclean shutdown: the recovery point falls back, segments get scanned */
    REQUIRE(storage_lower_recovery_point(dir, 0) == 0);
    log = open_log(dir, 0);
    CHECK_EQ_INT(plog_txn_index_rebuild_from(log), bases[0]);
    txn_state_free(t);
    t = txn_state_new();
    REQUIRE(txn_state_load(t, log, sfs_posix(), dir, NOW_MS, DAY_MS) == STORAGE_OK);
    CHECK_EQ_INT(aborted(log, 0, 100).n, 2);
    txn_state_free(t);
    x.log = log;
    fx_done(&x);
}

/* The snapshot's offset of the newest ABORT marker decides whether a
 * rebuild needs the whole log: none since the rebuilt segment's base, the
 * snapshot serves (a producer known only to it survives); one, the state
 * comes from the log start. */
static int32_t producers_after_rebuild(bool abort_in_active)
{
    char *dir = tmpdir();
    plog_t *log = open_log(dir, 0);
    txn_state *s = txn_state_new();
    put_data(log, s, 1, 0, 1, NULL); /* 0: producer 1, in a segment retention removes */
    CK_ASSERT(plog_roll(log) == STORAGE_OK);
    put_data(log, s, 2, 0, 1, NULL); /* 1 */
    if (abort_in_active)
        put_marker(log, s, 2, false); /* 2 */
    buf_t snap;
    buf_init(&snap);
    txn_state_encode(s, plog_log_end_offset(log), &snap);
    CK_ASSERT(txn_snapshot_write(sfs_posix(), dir, &snap) == STORAGE_OK);
    CK_ASSERT(plog_delete_records(log, 1) == STORAGE_OK);
    int deleted = 0;
    CK_ASSERT(plog_retention(log, &deleted) == STORAGE_OK && deleted == 1);
    plog_close(log);
    CK_ASSERT(storage_lower_recovery_point(dir, 0) == 0); /* as after a crash */
    log = open_log(dir, 0);
    CK_ASSERT(plog_txn_index_rebuild_from(log) == 1);
    txn_state *t = txn_state_new();
    CK_ASSERT(txn_state_load(t, log, sfs_posix(), dir, NOW_MS, DAY_MS * 365 * 100) == STORAGE_OK);
    CK_ASSERT(aborted(log, 0, 100).n == (abort_in_active ? 1 : 0));
    int32_t n = txn_state_count(t);
    buf_free(&snap);
    txn_state_free(s);
    txn_state_free(t);
    plog_close(log);
    rm_rf(dir);
    return n;
}

TEST(rebuild_uses_snapshot_unless_aborts)
{
    CHECK_EQ_INT(producers_after_rebuild(false), 2);
    CHECK_EQ_INT(producers_after_rebuild(true), 1);
}

/* Truncation drops the entries of markers it removes. */
TEST(txnindex_truncation)
{
    fx x = fx_three();
    int64_t end;
    REQUIRE(plog_truncate(x.log, 6, &end) == STORAGE_OK);
    CHECK_EQ_INT(end, 6);
    CHECK_EQ_INT(aborted(x.log, 0, 100).n, 1);
    txn_state *t = txn_state_new();
    REQUIRE(txn_state_load(t, x.log, sfs_posix(), x.dir, NOW_MS, DAY_MS) == STORAGE_OK);
    CHECK_EQ_INT(txn_state_first_unstable(t), 3); /* pid 2's transaction is open again */
    CHECK_EQ_INT(aborted(x.log, 0, 100).n, 1);
    txn_state_free(t);
    fx_done(&x);
}

/* Retention deletes a segment's .txnindex with it, and its entries. */
TEST(txnindex_retention)
{
    fx x = fx_three();
    REQUIRE(plog_delete_records(x.log, x.bases[2]) == STORAGE_OK);
    int deleted = 0;
    REQUIRE(plog_retention(x.log, &deleted) == STORAGE_OK);
    CHECK_EQ_INT(deleted, 2);
    CHECK_EQ_INT(file_size(x.dir, x.bases[0]), -1);
    CHECK_EQ_INT(file_size(x.dir, x.bases[1]), -1);
    CHECK_EQ_INT(aborted(x.log, 0, 100).n, 0);
    fx_done(&x);
}

/* ---- compaction -------------------------------------------------------------- */

typedef struct seen {
    int aborted_batches, markers, committed;
} seen;

/* Calls fn for every batch of the log, in order. */
static void each_batch(plog_t *log, void (*fn)(void *arg, const batch_info_t *b), void *arg)
{
    buf_t b;
    buf_init(&b);
    int64_t next = plog_log_start_offset(log);
    while (next < plog_log_end_offset(log)) {
        buf_reset(&b);
        int64_t from = next;
        CK_ASSERT(plog_read_copy(log, from, INT64_MAX, 1 << 20, &b, &next) == STORAGE_OK);
        for (size_t pos = 0; pos < b.len;) {
            batch_info_t bi;
            CK_ASSERT(batch_parse_header(b.data + pos, b.len - pos, &bi) == BATCH_ERR_OK);
            fn(arg, &bi);
            pos += bi.size;
        }
        if (next <= from)
            break;
    }
    buf_free(&b);
}

typedef struct scan_ctx {
    seen v;
    int64_t aborted_pid;
} scan_ctx;

static void scan_one(void *arg, const batch_info_t *bi)
{
    scan_ctx *c = arg;
    c->v.markers += bi->control;
    c->v.aborted_batches += !bi->control && bi->producer_id == c->aborted_pid;
    c->v.committed += !bi->control && bi->producer_id != c->aborted_pid;
}

static seen scan(plog_t *log, int64_t aborted_pid)
{
    scan_ctx c = {.aborted_pid = aborted_pid};
    each_batch(log, scan_one, &c);
    return c.v;
}

/* Compaction drops an aborted transaction's batches, keeps committed data,
 * and keeps the markers and their index entries until delete.retention.ms
 * after the pass that emptied their transaction. */
TEST(compaction_drops_aborted_data)
{
    char *dir = tmpdir();
    plog_t *log = open_log(dir, 0);
    flusher_t *fl = flusher_new();
    flusher_attach(fl, log);
    txn_state *s = txn_state_new();
    put_data(log, s, 1, 0, 1, "a");  /* 0: aborted */
    put_data(log, s, 2, 0, 1, "b");  /* 1: committed */
    put_data(log, s, 1, 1, 1, "c");  /* 2: aborted */
    put_marker(log, s, 1, false);   /* 3 */
    put_marker(log, s, 2, true);    /* 4 */
    put_data(log, s, 1, 2, 1, "d"); /* 5: pid 1's last batch, committed */
    put_marker(log, s, 1, true);    /* 6 */
    REQUIRE(plog_roll(log) == STORAGE_OK);
    put_data(log, s, -1, 0, 1, "e"); /* 7 */
    flusher_run_once(fl);
    seen before = scan(log, 1);
    CHECK_EQ_INT(before.aborted_batches, 3);
    plog_compact_opts_t o;
    plog_compact_opts_default(&o);
    o.force = true;
    plog_compact_stats_t st;
    REQUIRE(plog_compact(log, &o, &st) == STORAGE_OK);
    CHECK(st.ran);
    CHECK_EQ_INT(st.records_removed, 2);
    seen after = scan(log, 1);
    CHECK_EQ_INT(after.aborted_batches, 1); /* only its committed last batch */
    CHECK_EQ_INT(after.markers, 3);
    CHECK_EQ_INT(after.committed, 2);
    found f = aborted(log, 0, 100);
    REQUIRE(f.n == 1);
    CHECK_EQ_INT(f.e[0].last_offset, 3);
    plog_close(log);
    log = open_log(dir, 0);
    CHECK_EQ_INT(plog_txn_index_rebuild_from(log), INT64_MAX);
    CHECK_EQ_INT(aborted(log, 0, 100).n, 1);
    flusher_attach(fl, log);
    /* before delete.retention.ms has passed the emptied ABORT marker stays */
    REQUIRE(plog_compact(log, &o, &st) == STORAGE_OK);
    CHECK_EQ_INT(scan(log, 1).markers, 3);
    plog_close(log);
    /* after it, the pass removes it and its entry; markers of transactions
     * with data left, or a producer's last batch, stay */
    clock_ahead_ms = o.delete_retention_ms + 1000;
    log = open_log(dir, 0);
    flusher_attach(fl, log);
    REQUIRE(plog_compact(log, &o, &st) == STORAGE_OK);
    CHECK_EQ_INT(st.records_removed, 1);
    after = scan(log, 1);
    CHECK_EQ_INT(after.markers, 2);
    CHECK_EQ_INT(after.committed, 2);
    CHECK_EQ_INT(aborted(log, 0, 100).n, 0);
    plog_close(log);
    log = open_log(dir, 0);
    CHECK_EQ_INT(aborted(log, 0, 100).n, 0);
    txn_state *t = txn_state_new();
    REQUIRE(txn_state_load(t, log, sfs_posix(), dir, NOW_MS, DAY_MS * 365 * 100) == STORAGE_OK);
    CHECK_EQ_INT(txn_state_first_unstable(t), INT64_MAX);
    txn_state_free(t);
    clock_ahead_ms = 0;
    plog_close(log);
    flusher_free(fl);
    txn_state_free(s);
    rm_rf(dir);
}

/* ---- crashes ------------------------------------------------------------------ */

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* What the index must hold for the log as it is: a plain model of the rules
 * (open transactions by producer; an ABORT closes one into an entry). */
typedef struct model {
    found f;
    int64_t open[8];
} model;

static void model_one(void *arg, const batch_info_t *bi)
{
    model *m = arg;
    if (bi->producer_id < 0 || !bi->transactional)
        return;
    int64_t *o = &m->open[bi->producer_id];
    if (!bi->control) {
        *o = *o >= 0 ? *o : bi->base_offset;
        return;
    }
    int64_t first = *o >= 0 ? *o : bi->base_offset, lso = bi->base_offset + 1;
    *o = -1;
    for (int i = 0; i < 8; i++)
        lso = m->open[i] >= 0 ? MIN(lso, m->open[i]) : lso;
    if (batch_control_type(bi) == BATCH_CONTROL_ABORT && m->f.n < 16)
        m->f.e[m->f.n++] = (plog_aborted_txn_t){bi->producer_id, first, bi->base_offset, lso};
}

static found model_of(plog_t *log)
{
    model m = {.f = {.n = 0}};
    for (int i = 0; i < 8; i++)
        m.open[i] = -1;
    each_batch(log, model_one, &m);
    return m.f;
}

/* One random workload of transactions, plain data, rolls, syncs and
 * producer snapshots on a file system that crashes at its nth write. */
static void txn_workload(plog_t *log, flusher_t *fl, fault_fs_t *ff, const char *dir, uint64_t *s)
{
    txn_state *st = txn_state_new();
    int32_t seq[8] = {0};
    for (int step = 0; step < 40 && !fault_fs_crashed(ff); step++) {
        int op = (int)(rng(s) % 10);
        int64_t pid = 1 + (int64_t)(rng(s) % 4);
        buf_t b;
        buf_init(&b);
        if (op < 4)
            txn_batch(&b, pid, 0, seq[pid], 1 + (int)(rng(s) % 3), NULL);
        else if (op < 6)
            batch_build_marker(&b, pid, 0, rng(s) % 2, 1, NOW_MS);
        else if (op < 7)
            txn_batch(&b, -1, 0, 0, 1, NULL);
        if (b.len) {
            plog_append_result_t res;
            batch_info_t bi;
            CK_ASSERT(batch_parse_header(b.data, b.len, &bi) == BATCH_ERR_OK);
            if (plog_append(log, b.data, b.len, 0, &res) == STORAGE_OK && bi.producer_id >= 0) {
                txn_state_apply_log(st, log, &bi, res.base_offset, res.last_offset);
                seq[pid] += bi.control ? 0 : bi.records_count;
            }
        } else if (op < 8) {
            flusher_run_once(fl);
        } else if (op < 9) {
            plog_roll(log);
        } else {
            buf_t snap;
            buf_init(&snap);
            txn_state_encode(st, plog_log_end_offset(log), &snap);
            txn_snapshot_write(fault_fs_sfs(ff), dir, &snap);
            buf_free(&snap);
        }
        buf_free(&b);
    }
    flusher_run_once(fl);
    txn_state_free(st);
}

/* Crash anywhere: after recovery and the producer state's load, the index
 * holds exactly the aborted transactions of the log that survived. */
TEST(txnindex_random_crashes)
{
    uint64_t iters = getenv("CRASH_ITERS") ? strtoull(getenv("CRASH_ITERS"), NULL, 10) : 150;
    log_set_level(LOG_ERROR);
    int failures = 0;
    for (uint64_t it = 1; it <= iters && failures < 3; it++) {
        uint64_t s = it * 0x9e3779b97f4a7c15ULL;
        char *dir = tmpdir();
        fault_fs_t *ff = fault_fs_new();
        flusher_t *fl = flusher_new();
        plog_config_t cfg;
        plog_config_default(&cfg);
        cfg.segment_bytes = 400 + (int64_t)(rng(&s) % 800);
        plog_t *log;
        REQUIRE(plog_open(dir, &cfg, fault_fs_sfs(ff), true, &log) == STORAGE_OK);
        flusher_attach(fl, log);
        fault_fs_crash_at(ff, it % 97 + 1);
        txn_workload(log, fl, ff, dir, &s);
        plog_close(log);
        flusher_free(fl);
        fault_fs_crash(ff, it);
        fault_fs_free(ff);
        REQUIRE(plog_open(dir, &cfg, sfs_posix(), false, &log) == STORAGE_OK);
        txn_state *t = txn_state_new();
        REQUIRE(txn_state_load(t, log, sfs_posix(), dir, NOW_MS, DAY_MS * 365 * 100) == STORAGE_OK);
        found want = model_of(log), got = aborted(log, 0, INT64_MAX);
        bool same = want.n == got.n && memcmp(want.e, got.e, (size_t)MIN(want.n, 16) * sizeof want.e[0]) == 0;
        if (!same) {
            fprintf(stderr, "  seed %llu: %d entries, the log has %d\n", (unsigned long long)it, got.n, want.n);
            failures++;
        }
        CHECK(same);
        txn_state_free(t);
        plog_close(log);
        rm_rf(dir);
    }
    log_set_level(LOG_INFO);
}
