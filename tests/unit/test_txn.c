/* test_txn.c - the idempotent producer: sequence, epoch and duplicate rules
 * of a partition's producer state, snapshots, rebuilding from a log, and
 * the producer-id block supply. */
#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/crc32c.h"
#include "base/util.h"
#include "meta/meta.h"
#include "proto/batch.h"
#include "proto/kerr.h"
#include "storage/storage.h"
#include "test.h"
#include "txn/txn.h"
#include "txn/txn_int.h"

/* ---- helpers ------------------------------------------------------------- */

enum { T0_MS = 1700000000 }; /* seconds; times below are T0 * 1000 + x */
#define NOW_MS (T0_MS * 1000LL)

/* The header fields the state looks at, for a batch of n records. */
static batch_info_t idem(int64_t pid, int16_t epoch, int32_t seq, int32_t n)
{
    return (batch_info_t){.producer_id = pid,
                          .producer_epoch = epoch,
                          .base_sequence = seq,
                          .last_offset_delta = n - 1,
                          .records_count = n,
                          .max_timestamp = NOW_MS};
}

/* Check then apply at offset *next (as a successful append would). */
static txn_verdict append(txn_state *s, batch_info_t b, int64_t *next)
{
    txn_verdict v = txn_state_check(s, &b);
    if (v.err == KERR_NONE && !v.duplicate) {
        txn_state_apply(s, &b, *next, *next + b.last_offset_delta);
        *next += b.last_offset_delta + 1;
    }
    txn_state_assert(s);
    return v;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static char *tmpdir(void)
{
    char *d = xstrdup("/tmp/chronik-txn-XXXXXX");
    CK_ASSERT(mkdtemp(d));
    return d;
}

static void rm_rf(char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* A stored idempotent batch of n records. */
static void build(buf_t *out, int64_t pid, int16_t epoch, int32_t seq, int n)
{
    batch_builder_t bb;
    batch_build_begin(&bb, out, 0, 0, NOW_MS, pid, epoch, seq);
    for (int i = 0; i < n; i++)
        batch_build_add(&bb, NOW_MS, NULL, -1, "v", 1, NULL, 0);
    batch_build_end(&bb);
}

static void log_append(plog_t *log, int64_t pid, int16_t epoch, int32_t seq, int n)
{
    buf_t b;
    buf_init(&b);
    build(&b, pid, epoch, seq, n);
    plog_append_result_t res;
    CK_ASSERT(plog_append(log, b.data, b.len, 0, &res) == STORAGE_OK);
    buf_free(&b);
}

typedef struct infos {
    txn_producer_info p[8];
    int n;
} infos;

static void collect(void *arg, const txn_producer_info *p)
{
    infos *c = arg;
    if (c->n < 8)
        c->p[c->n] = *p;
    c->n++;
}

/* ---- sequences, epochs, duplicates -------------------------------------- */

/* The last sequence of a batch wraps to 0 after INT32_MAX. */
TEST(last_sequence_wraps)
{
    CHECK_EQ_INT(txn_last_sequence(0, 0), 0);
    CHECK_EQ_INT(txn_last_sequence(10, 4), 14);
    CHECK_EQ_INT(txn_last_sequence(INT32_MAX, 0), INT32_MAX);
    CHECK_EQ_INT(txn_last_sequence(INT32_MAX, 1), 0);
    CHECK_EQ_INT(txn_last_sequence(INT32_MAX - 2, 5), 2);
}

/* An unknown producer may start at any sequence; then each batch must follow the last. */
TEST(sequence_must_follow)
{
    txn_state *s = txn_state_new();
    int64_t off = 0;
    CHECK_EQ_INT(append(s, idem(7, 0, 40, 3), &off).err, KERR_NONE);
    CHECK_EQ_INT(append(s, idem(7, 0, 43, 2), &off).err, KERR_NONE);
    txn_verdict v = append(s, idem(7, 0, 46, 1), &off); /* 45 is missing */
    CHECK_EQ_INT(v.err, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CHECK(v.msg != NULL);
    CHECK_EQ_INT(append(s, idem(7, 0, 45, 1), &off).err, KERR_NONE);
    CHECK_EQ_INT(off, 6);
    CHECK_EQ_INT(txn_state_count(s), 1);
    txn_state_free(s);
}

/* A retry of any of the last five batches is a duplicate with its original offsets; older is out of
 * order. */
TEST(duplicates_of_last_five)
{
    txn_state *s = txn_state_new();
    int64_t off = 100;
    for (int i = 0; i < 7; i++)
        REQUIRE(append(s, idem(1, 2, i * 10, 10), &off).err == KERR_NONE);
    for (int i = 2; i < 7; i++) {
        txn_verdict v = append(s, idem(1, 2, i * 10, 10), &off);
        CHECK_EQ_INT(v.err, KERR_NONE);
        CHECK(v.duplicate);
        CHECK_EQ_INT(v.first_offset, 100 + i * 10);
        CHECK_EQ_INT(v.last_offset, 100 + i * 10 + 9);
    }
    CHECK_EQ_INT(append(s, idem(1, 2, 10, 10), &off).err, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* same first sequence, different length: not the same batch */
    CHECK_EQ_INT(append(s, idem(1, 2, 60, 5), &off).err, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CHECK_EQ_INT(off, 170);
    txn_state_free(s);
}

/* An older epoch is refused; a newer one must start at 0 and forgets the old batches. */
TEST(epochs)
{
    txn_state *s = txn_state_new();
    int64_t off = 0;
    REQUIRE(append(s, idem(9, 3, 0, 5), &off).err == KERR_NONE);
    CHECK_EQ_INT(append(s, idem(9, 2, 5, 1), &off).err, KERR_INVALID_PRODUCER_EPOCH);
    CHECK_EQ_INT(append(s, idem(9, 2, 0, 5), &off).err,
                 KERR_INVALID_PRODUCER_EPOCH); /* not a dup */
    CHECK_EQ_INT(append(s, idem(9, 4, 5, 1), &off).err, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CHECK_EQ_INT(append(s, idem(9, 4, 0, 2), &off).err, KERR_NONE);
    CHECK_EQ_INT(txn_state_epoch(s, 9), 4);
    CHECK_EQ_INT(append(s, idem(9, 3, 0, 5), &off).err, KERR_INVALID_PRODUCER_EPOCH);
    txn_verdict v = append(s, idem(9, 4, 0, 2), &off);
    CHECK(v.duplicate && v.first_offset == 5);
    CHECK_EQ_INT(txn_state_epoch(s, 10), -1);
    txn_state_free(s);
}

/* After INT32_MAX the sequence goes on at 0, also inside one batch. */
TEST(sequence_wrap)
{
    txn_state *s = txn_state_new();
    int64_t off = 0;
    REQUIRE(append(s, idem(3, 0, INT32_MAX - 1, 2), &off).err == KERR_NONE);
    CHECK_EQ_INT(append(s, idem(3, 0, 0, 3), &off).err, KERR_NONE);
    CHECK_EQ_INT(append(s, idem(3, 0, 3, 1), &off).err, KERR_NONE);
    txn_state *w = txn_state_new();
    REQUIRE(append(w, idem(4, 0, INT32_MAX - 1, 4), &off).err == KERR_NONE); /* last seq 1 */
    CHECK_EQ_INT(append(w, idem(4, 0, 2, 1), &off).err, KERR_NONE);
    txn_verdict v = append(w, idem(4, 0, INT32_MAX - 1, 4), &off);
    CHECK(v.duplicate);
    txn_state_free(s);
    txn_state_free(w);
}

/* Idempotent batches without epoch or sequence are refused; a plain
 * batch while the producer's transaction is open is INVALID_TXN_STATE. */
TEST(bad_batches)
{
    txn_state *s = txn_state_new();
    int64_t off = 0;
    CHECK_EQ_INT(append(s, idem(1, -1, 0, 1), &off).err, KERR_INVALID_RECORD);
    CHECK_EQ_INT(append(s, idem(1, 0, -1, 1), &off).err, KERR_INVALID_RECORD);
    CHECK_EQ_INT(txn_state_count(s), 0);
    batch_info_t t = idem(1, 0, 0, 1);
    t.transactional = true;
    CHECK_EQ_INT(append(s, t, &off).err, KERR_NONE);
    CHECK_EQ_INT(txn_state_txn_start(s, 1), 0);
    CHECK_EQ_INT(append(s, idem(1, 0, 1, 1), &off).err, KERR_INVALID_TXN_STATE);
    txn_state_free(s);
}

/* DescribeProducers' view: epoch, last sequence, time stamp, least recent first. */
TEST(each_lists_producers)
{
    txn_state *s = txn_state_new();
    int64_t off = 0;
    append(s, idem(5, 1, 0, 4), &off);
    append(s, idem(6, 0, 10, 1), &off);
    append(s, idem(5, 1, 4, 1), &off);
    infos c = {0};
    txn_state_each(s, collect, &c);
    REQUIRE(c.n == 2);
    CHECK_EQ_INT(c.p[0].producer_id, 6);
    CHECK_EQ_INT(c.p[0].last_sequence, 10);
    CHECK_EQ_INT(c.p[1].producer_id, 5);
    CHECK_EQ_INT(c.p[1].epoch, 1);
    CHECK_EQ_INT(c.p[1].last_sequence, 4);
    CHECK_EQ_INT(c.p[1].last_offset, 5);
    CHECK_EQ_INT(c.p[1].last_timestamp, NOW_MS);
    txn_state_free(s);
}

/* Producers idle for the expiration time are dropped; the rest stay. */
TEST(expire_idle)
{
    txn_state *s = txn_state_new();
    int64_t off = 0;
    batch_info_t old = idem(1, 0, 0, 1);
    old.max_timestamp = NOW_MS - 1000;
    append(s, old, &off);
    append(s, idem(2, 0, 0, 1), &off);
    batch_info_t odd = idem(3, 0, 0, 1);
    odd.max_timestamp = INT64_MIN; /* a client's odd time stamp must not overflow */
    append(s, odd, &off);
    CHECK_EQ_INT(txn_state_expire(s, NOW_MS, 1000), 2);
    CHECK_EQ_INT(txn_state_count(s), 1);
    CHECK_EQ_INT(txn_state_epoch(s, 2), 0);
    txn_state_assert(s);
    txn_state_free(s);
}

/* Beyond TXN_PRODUCERS_MAX the least recently appended producer goes. */
TEST(evicts_least_recent)
{
    txn_state *s = txn_state_new();
    int64_t off = 0;
    for (int64_t id = 0; id < TXN_PRODUCERS_MAX; id++) {
        batch_info_t b = idem(id, 0, 0, 1);
        txn_state_apply(s, &b, off, off);
        off++;
    }
    batch_info_t again = idem(0, 0, 1, 1); /* producer 0 becomes the most recent */
    txn_state_apply(s, &again, off, off);
    off++;
    batch_info_t extra = idem(TXN_PRODUCERS_MAX, 0, 0, 1);
    txn_state_apply(s, &extra, off, off);
    CHECK_EQ_INT(txn_state_count(s), TXN_PRODUCERS_MAX);
    CHECK_EQ_INT(txn_state_epoch(s, 0), 0);
    CHECK_EQ_INT(txn_state_epoch(s, 1), -1);
    txn_state_assert(s);
    txn_state_free(s);
}

/* ---- snapshots -------------------------------------------------------------- */

/* A snapshot decodes to the same producers, which still detect their duplicates. */
TEST(snapshot_round_trip)
{
    txn_state *s = txn_state_new();
    int64_t off = 0;
    for (int i = 0; i < 7; i++)
        append(s, idem(11, 1, i * 2, 2), &off);
    append(s, idem(12, 0, INT32_MAX, 1), &off);
    buf_t b;
    buf_init(&b);
    txn_state_encode(s, off, &b);
    txn_state *d = txn_state_new();
    int64_t at = -1;
    REQUIRE(txn_state_decode(d, b.data, b.len, &at) == STORAGE_OK);
    CHECK_EQ_INT(at, off);
    infos a = {0}, c = {0};
    txn_state_each(s, collect, &a);
    txn_state_each(d, collect, &c);
    REQUIRE(a.n == 2 && c.n == 2);
    CHECK(memcmp(a.p, c.p, 2 * sizeof a.p[0]) == 0);
    txn_verdict v = append(d, idem(11, 1, 4, 2), &off);
    CHECK(v.duplicate && v.first_offset == 4 && v.last_offset == 5);
    CHECK_EQ_INT(append(d, idem(11, 1, 2, 2), &off).err, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CHECK_EQ_INT(append(d, idem(12, 0, 0, 1), &off).err, KERR_NONE);
    buf_t e;
    buf_init(&e);
    txn_state *empty = txn_state_new();
    txn_state_encode(empty, 0, &e);
    CHECK(txn_state_decode(d, e.data, e.len, &at) == STORAGE_OK && txn_state_count(d) == 0 &&
          at == 0);
    buf_free(&e);
    buf_free(&b);
    txn_state_free(empty);
    txn_state_free(d);
    txn_state_free(s);
}

/* A flipped byte, a cut, a bad magic or a future version makes the snapshot unusable. */
TEST(snapshot_rejects_damage)
{
    txn_state *s = txn_state_new();
    int64_t off = 0, at;
    append(s, idem(1, 0, 0, 3), &off);
    buf_t b;
    buf_init(&b);
    txn_state_encode(s, off, &b);
    txn_state *d = txn_state_new();
    for (size_t i = 0; i < b.len; i++) {
        b.data[i] ^= 0x40;
        CHECK(txn_state_decode(d, b.data, b.len, &at) == STORAGE_ERR_FORMAT);
        CHECK_EQ_INT(txn_state_count(d), 0);
        b.data[i] ^= 0x40;
    }
    for (size_t n = 0; n < b.len; n++)
        CHECK(txn_state_decode(d, b.data, n, &at) == STORAGE_ERR_FORMAT);
    be32_store(b.data + 8, 3); /* version 3, with a matching CRC */
    be32_store(b.data + b.len - 4, crc32c(0, b.data, b.len - 4));
    CHECK(txn_state_decode(d, b.data, b.len, &at) == STORAGE_ERR_FORMAT);
    buf_free(&b);
    txn_state_free(d);
    txn_state_free(s);
}

/* A version 1 snapshot (before transactions: no transaction fields) still loads. */
TEST(snapshot_reads_version_1)
{
    buf_t b;
    buf_init(&b);
    buf_put(&b, "CKPRODST", 8);
    buf_put_i32(&b, 1);
    buf_put_i32(&b, 1);
    buf_put_i64(&b, 10);     /* covers the log below 10 */
    buf_put_i64(&b, NOW_MS);
    buf_put_i64(&b, 42);     /* producer 42 */
    buf_put_i16(&b, 3);
    buf_put_u8(&b, 1);
    buf_put_u8(&b, 0);
    buf_put_i64(&b, NOW_MS);
    buf_put_i32(&b, 0);      /* sequences 0-4 at offsets 5-9 */
    buf_put_i32(&b, 4);
    buf_put_i64(&b, 5);
    buf_put_i64(&b, 9);
    buf_put_i32(&b, (int32_t)crc32c(0, b.data, b.len));
    txn_state *d = txn_state_new();
    int64_t at = -1;
    REQUIRE(txn_state_decode(d, b.data, b.len, &at) == STORAGE_OK);
    CHECK_EQ_INT(at, 10);
    CHECK_EQ_INT(txn_state_epoch(d, 42), 3);
    CHECK_EQ_INT(txn_state_txn_start(d, 42), -1);
    CHECK_EQ_INT(txn_state_first_unstable(d), INT64_MAX);
    buf_free(&b);
    txn_state_free(d);
}

/* A snapshot falls due after TXN_SNAPSHOT_INTERVAL_BYTES of appends and encoding restarts the
 * count. */
TEST(snapshot_due_by_bytes)
{
    txn_state *s = txn_state_new();
    CHECK(!txn_state_note_append(s, TXN_SNAPSHOT_INTERVAL_BYTES - 1));
    CHECK(!txn_state_snapshot_due(s));
    CHECK(txn_state_note_append(s, 1));
    CHECK(txn_state_note_append(s, 1)); /* still due until a snapshot is taken */
    buf_t b;
    buf_init(&b);
    txn_state_encode(s, 0, &b);
    CHECK(!txn_state_snapshot_due(s));
    CHECK(!txn_state_note_append(s, 100));
    buf_free(&b);
    txn_state_free(s);
}

/* ---- rebuilding from the log ------------------------------------------------- */

/* The state comes back from the log alone, from a snapshot plus the log after it, and
 * a snapshot beyond the log end (a crash took writes back) is ignored. */
TEST(load_from_log_and_snapshot)
{
    char *dir = tmpdir();
    plog_config_t cfg;
    plog_config_default(&cfg);
    plog_t *log;
    REQUIRE(plog_open(dir, &cfg, sfs_posix(), true, &log) == STORAGE_OK);
    log_append(log, 21, 0, 0, 3);   /* offsets 0-2 */
    log_append(log, -1, -1, -1, 2); /* 3-4, not idempotent */
    log_append(log, 22, 1, 7, 1);   /* 5 */
    txn_state *s = txn_state_new();
    REQUIRE(txn_state_load(s, log, sfs_posix(), dir, NOW_MS,
                           TXN_PRODUCER_ID_EXPIRATION_MS_DEFAULT) == STORAGE_OK);
    CHECK_EQ_INT(txn_state_count(s), 2);
    txn_verdict v = txn_state_check(
        s, &(batch_info_t){.producer_id = 21, .base_sequence = 0, .last_offset_delta = 2});
    CHECK(v.duplicate && v.first_offset == 0 && v.last_offset == 2);

    buf_t snap;
    buf_init(&snap);
    txn_state_encode(s, plog_log_end_offset(log), &snap);
    REQUIRE(txn_snapshot_write(sfs_posix(), dir, &snap) == STORAGE_OK);
    log_append(log, 22, 1, 8, 2); /* 6-7, after the snapshot */
    txn_state *t = txn_state_new();
    REQUIRE(txn_state_load(t, log, sfs_posix(), dir, NOW_MS,
                           TXN_PRODUCER_ID_EXPIRATION_MS_DEFAULT) == STORAGE_OK);
    v = txn_state_check(
        t, &(batch_info_t){
               .producer_id = 22, .producer_epoch = 1, .base_sequence = 8, .last_offset_delta = 1});
    CHECK(v.duplicate && v.first_offset == 6);
    CHECK_EQ_INT(txn_state_count(t), 2);

    buf_reset(&snap);
    txn_state_encode(t, 1000, &snap); /* beyond the log end */
    REQUIRE(txn_snapshot_write(sfs_posix(), dir, &snap) == STORAGE_OK);
    REQUIRE(txn_state_load(t, log, sfs_posix(), dir, NOW_MS,
                           TXN_PRODUCER_ID_EXPIRATION_MS_DEFAULT) == STORAGE_OK);
    CHECK_EQ_INT(txn_state_count(t), 2);
    v = txn_state_check(t, &(batch_info_t){.producer_id = 22,
                                           .producer_epoch = 1,
                                           .base_sequence = 10,
                                           .last_offset_delta = 0});
    CHECK_EQ_INT(v.err, KERR_NONE);
    CHECK(!v.duplicate);
    /* expired at load: the batches are a day old by then */
    REQUIRE(txn_state_load(t, log, sfs_posix(), dir, NOW_MS + TXN_PRODUCER_ID_EXPIRATION_MS_DEFAULT,
                           TXN_PRODUCER_ID_EXPIRATION_MS_DEFAULT) == STORAGE_OK);
    CHECK_EQ_INT(txn_state_count(t), 0);
    buf_free(&snap);
    txn_state_free(s);
    txn_state_free(t);
    plog_close(log);
    rm_rf(dir);
}

/* ---- producer ids -------------------------------------------------------------- */

typedef struct fake_ctl {
    int requests;
    int32_t last_count;
} fake_ctl;

static void fake_request(void *ctx, txn_pids *p, int32_t count)
{
    (void)p;
    fake_ctl *c = ctx;
    c->requests++;
    c->last_count = count;
}

typedef struct got {
    int calls;
    int16_t err;
    int64_t id;
} got;

static void got_id(void *arg, int16_t err, int64_t id)
{
    got *g = arg;
    g->calls++;
    g->err = err;
    g->id = id;
}

/* Ids come from blocks: waiters are served when a block arrives, and the next block is fetched
 * early. */
TEST(pids_blocks)
{
    static txn_pids p; /* zeroed memory is a valid empty supply */
    fake_ctl c = {0};
    got g1 = {0}, g2 = {0};
    txn_pid_waiter w1 = {.fn = got_id, .arg = &g1}, w2 = {.fn = got_id, .arg = &g2};
    int64_t id = -1;
    CHECK(!txn_pids_next(&p, fake_request, &c, &w1, &id));
    CHECK(!txn_pids_next(&p, fake_request, &c, &w2, &id));
    CHECK_EQ_INT(c.requests, 1);
    CHECK_EQ_INT(c.last_count, TXN_PID_BLOCK_SIZE);
    txn_pids_block_done(&p, KERR_NONE, 5000, TXN_PID_BLOCK_SIZE, fake_request, &c);
    CHECK(g1.calls == 1 && g1.err == KERR_NONE && g1.id == 5000);
    CHECK(g2.calls == 1 && g2.id == 5001);
    txn_pid_waiter w = {.fn = got_id, .arg = &g1};
    int64_t last = 5001;
    while (last < 5000 + TXN_PID_BLOCK_SIZE - TXN_PID_PREFETCH_LEFT) {
        REQUIRE(txn_pids_next(&p, fake_request, &c, &w, &id));
        CHECK_EQ_INT(id, last + 1);
        last = id;
    }
    CHECK_EQ_INT(c.requests, 2); /* the prefetch */
    txn_pids_block_done(&p, KERR_NONE, 9000, TXN_PID_BLOCK_SIZE, fake_request, &c);
    while (last < 5000 + TXN_PID_BLOCK_SIZE - 1)
        REQUIRE(txn_pids_next(&p, fake_request, &c, &w, &last));
    REQUIRE(txn_pids_next(&p, fake_request, &c, &w, &id));
    CHECK_EQ_INT(id, 9000);
    CHECK_EQ_INT(g1.calls, 1);
}

/* A failed block request fails every waiter; the next call asks again. */
TEST(pids_failure)
{
    static txn_pids p;
    fake_ctl c = {0};
    got g = {0};
    txn_pid_waiter w = {.fn = got_id, .arg = &g};
    int64_t id;
    CHECK(!txn_pids_next(&p, fake_request, &c, &w, &id));
    txn_pids_block_done(&p, KERR_KAFKA_STORAGE_ERROR, -1, 0, fake_request, &c);
    CHECK(g.calls == 1 && g.err == KERR_KAFKA_STORAGE_ERROR && g.id == -1);
    CHECK(!txn_pids_next(&p, fake_request, &c, &w, &id));
    CHECK_EQ_INT(c.requests, 2);
    txn_pids_block_done(&p, KERR_NONE, 0, 10, fake_request, &c);
    CHECK(g.calls == 2 && g.err == KERR_NONE && g.id == 0);
}

/* ---- producer-id blocks through the metadata log ------------------------------- */

typedef struct block_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int16_t err;
    int64_t first;
    int32_t count;
} block_wait;

static void block_done(void *arg, int16_t err, int64_t first, int32_t count)
{
    block_wait *w = arg;
    pthread_mutex_lock(&w->lock);
    w->done = true, w->err = err, w->first = first, w->count = count;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Allocates a block on the controller thread and waits for its answer. */
static block_wait alloc_block(meta_t *m, int32_t count)
{
    block_wait w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    meta_alloc_producer_ids(m, count, block_done, &w);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    return w;
}

/* Blocks follow each other, survive a restart (ProducerIdsRecord replay), and bad sizes are
 * refused. */
TEST(meta_blocks_never_reused)
{
    char *dir = tmpdir();
    meta_t *m;
    meta_config mc = {.data_dir = dir, .fs = sfs_posix(), .node_id = 1};
    REQUIRE(meta_open(&mc, NULL, NULL, &m) == STORAGE_OK);
    block_wait a = alloc_block(m, TXN_PID_BLOCK_SIZE);
    CHECK(a.err == KERR_NONE && a.first == 0 && a.count == TXN_PID_BLOCK_SIZE);
    block_wait b = alloc_block(m, 10);
    CHECK(b.err == KERR_NONE && b.first == TXN_PID_BLOCK_SIZE && b.count == 10);
    block_wait bad = alloc_block(m, 0);
    CHECK(bad.err == KERR_INVALID_REQUEST && bad.first == -1);
    meta_close(m);
    REQUIRE(meta_open(&mc, NULL, NULL, &m) == STORAGE_OK);
    meta_image *img = meta_acquire(m);
    CHECK_EQ_INT(img->next_producer_id, TXN_PID_BLOCK_SIZE + 10);
    meta_image_release(img);
    block_wait c = alloc_block(m, TXN_PID_BLOCK_SIZE);
    CHECK(c.err == KERR_NONE && c.first == TXN_PID_BLOCK_SIZE + 10);
    meta_close(m);
    rm_rf(dir);
}
