/* test_tcoord.c - the transaction coordinator's pure parts: the per-id
 * state machine (src/tcoord/txn.c) and the __transaction_state records
 * (src/tcoord/records.c). */
#include "test.h"

#include "base/buf.h"
#include "proto/kerr.h"
#include "tcoord/tcoord.h"
#include "txn/txn.h"

#define NOW 1000000

static tcoord_tp TP(const char *topic, int32_t p) { return (tcoord_tp){(char *)topic, p}; }

/* Runs InitProducerId and applies the stored state, as the coordinator does once durable. */
static int16_t init(tcoord_txn *t, int64_t pid, int16_t epoch, int64_t fresh, bool *abort_first)
{
    tcoord_meta next;
    bool write, af;
    int16_t err = tcoord_txn_init(t, pid, epoch, fresh, 60000, NOW, &next, &write, &af);
    if (abort_first)
        *abort_first = af;
    if (!err && write)
        tcoord_txn_apply(t, &next);
    return err;
}

static int16_t add(tcoord_txn *t, int16_t epoch, const tcoord_tp *parts, int32_t n, bool *wrote)
{
    tcoord_meta next;
    bool write;
    int16_t err = tcoord_txn_add(t, t->m.producer_id, epoch, parts, n, NOW + 1, &next, &write);
    if (wrote)
        *wrote = write;
    if (!err && write)
        tcoord_txn_apply(t, &next);
    return err;
}

static int16_t end(tcoord_txn *t, int16_t epoch, bool commit)
{
    tcoord_meta next;
    bool write;
    int16_t err = tcoord_txn_end(t, t->m.producer_id, epoch, commit, NOW + 2, &next, &write);
    if (!err && write)
        tcoord_txn_apply(t, &next);
    return err;
}

static void complete(tcoord_txn *t)
{
    tcoord_meta next;
    tcoord_txn_complete(t, NOW + 3, &next);
    tcoord_txn_apply(t, &next);
}

/* A new id gets the fresh producer id at epoch 0; each re-init bumps the epoch; a
 * client naming an older epoch or another id is fenced. */
TEST(init_bumps_and_fences)
{
    tcoord_txn *t = tcoord_txn_new("a");
    CHECK_EQ_INT(init(t, -1, -1, 7, NULL), KERR_NONE);
    CHECK_EQ_INT(t->m.producer_id, 7);
    CHECK_EQ_INT(t->m.epoch, 0);
    CHECK_EQ_INT(t->m.state, TCOORD_EMPTY);
    CHECK_EQ_INT(init(t, -1, -1, 8, NULL), KERR_NONE);
    CHECK_EQ_INT(t->m.producer_id, 7); /* the fresh id is not used */
    CHECK_EQ_INT(t->m.epoch, 1);
    CHECK_EQ_INT(init(t, 7, 0, 9, NULL), KERR_PRODUCER_FENCED);
    CHECK_EQ_INT(init(t, 6, 1, 9, NULL), KERR_PRODUCER_FENCED);
    CHECK_EQ_INT(init(t, 7, 1, 9, NULL), KERR_NONE);
    CHECK_EQ_INT(t->m.epoch, 2);
    CHECK_EQ_INT(init(t, 7, 1, 9, NULL), KERR_NONE); /* a retry of that bump (KIP-360): no new bump */
    CHECK_EQ_INT(t->m.epoch, 2);
    CHECK_EQ_INT(init(t, 7, 0, 9, NULL), KERR_PRODUCER_FENCED); /* not any older one */
    CHECK_EQ_INT(init(t, -1, -1, 9, NULL), KERR_NONE); /* a new producer bumps */
    CHECK_EQ_INT(t->m.epoch, 3);
    CHECK_EQ_INT(init(t, 7, 2, 9, NULL), KERR_PRODUCER_FENCED); /* the producer it replaced */
    CHECK_EQ_INT(t->m.epoch, 3);
    tcoord_txn_free(t);
}

/* An exhausted epoch moves the id to a new producer id at epoch 0. */
TEST(init_exhausted_epoch_gets_new_id)
{
    tcoord_txn *t = tcoord_txn_new("a");
    CHECK_EQ_INT(init(t, -1, -1, 7, NULL), KERR_NONE);
    t->m.epoch = TXN_EPOCH_EXHAUSTED;
    CHECK_EQ_INT(init(t, -1, -1, 70, NULL), KERR_NONE);
    CHECK_EQ_INT(t->m.producer_id, 70);
    CHECK_EQ_INT(t->m.epoch, 0);
    tcoord_txn_free(t);
}

/* Add, end, markers, complete: the states and partitions along the way; requests during the
 * prepare phase wait (CONCURRENT_TRANSACTIONS), a conflicting end is INVALID_TXN_STATE. */
TEST(commit_path)
{
    tcoord_txn *t = tcoord_txn_new("a");
    init(t, -1, -1, 7, NULL);
    tcoord_tp ps[] = {TP("b", 1), TP("a", 0), TP("b", 0)};
    bool wrote;
    CHECK_EQ_INT(add(t, 0, ps, 3, &wrote), KERR_NONE);
    CHECK(wrote);
    CHECK_EQ_INT(t->m.state, TCOORD_ONGOING);
    CHECK_EQ_INT(t->m.nparts, 3);
    CHECK(strcmp(t->m.parts[0].topic, "a") == 0 && t->m.parts[2].partition == 1); /* sorted */
    CHECK_EQ_INT(t->m.start_ms, NOW + 1);
    CHECK_EQ_INT(add(t, 0, ps, 2, &wrote), KERR_NONE);
    CHECK(!wrote); /* nothing new */
    CHECK_EQ_INT(add(t, 1, ps, 1, NULL), KERR_PRODUCER_FENCED);
    CHECK_EQ_INT(tcoord_txn_verify(t, 7, 0, "b", 0), KERR_NONE);
    CHECK_EQ_INT(tcoord_txn_verify(t, 7, 0, "c", 0), KERR_INVALID_TXN_STATE);
    CHECK_EQ_INT(tcoord_txn_verify(t, 8, 0, "b", 0), KERR_INVALID_PRODUCER_ID_MAPPING);
    CHECK_EQ_INT(end(t, 0, true), KERR_NONE);
    CHECK_EQ_INT(t->m.state, TCOORD_PREPARE_COMMIT);
    CHECK_EQ_INT(t->nleft, 3); /* every partition needs its marker */
    CHECK_EQ_INT(end(t, 0, true), KERR_CONCURRENT_TRANSACTIONS);
    CHECK_EQ_INT(end(t, 0, false), KERR_INVALID_TXN_STATE);
    CHECK_EQ_INT(add(t, 0, ps, 1, NULL), KERR_CONCURRENT_TRANSACTIONS);
    CHECK_EQ_INT(init(t, -1, -1, 9, NULL), KERR_CONCURRENT_TRANSACTIONS);
    complete(t);
    CHECK_EQ_INT(t->m.state, TCOORD_COMPLETE_COMMIT);
    CHECK_EQ_INT(t->m.nparts, 0);
    CHECK_EQ_INT(t->nleft, 0);
    CHECK_EQ_INT(end(t, 0, true), KERR_NONE);  /* a retry */
    CHECK_EQ_INT(end(t, 0, false), KERR_INVALID_TXN_STATE);
    CHECK_EQ_INT(add(t, 0, ps, 1, &wrote), KERR_NONE); /* the next transaction */
    CHECK(wrote && t->m.nparts == 1 && t->m.state == TCOORD_ONGOING);
    tcoord_txn_check(t);
    tcoord_txn_free(t);
}

/* EndTxn with no transaction is INVALID_TXN_STATE; an unknown producer id is a mapping error. */
TEST(end_without_transaction)
{
    tcoord_txn *t = tcoord_txn_new("a");
    init(t, -1, -1, 7, NULL);
    CHECK_EQ_INT(end(t, 0, true), KERR_INVALID_TXN_STATE);
    tcoord_meta next;
    bool write;
    CHECK_EQ_INT(tcoord_txn_end(t, 8, 0, true, NOW, &next, &write), KERR_INVALID_PRODUCER_ID_MAPPING);
    CHECK(!write);
    tcoord_txn_free(t);
}

/* Re-init with a transaction open: the old producer's transaction is aborted at a bumped
 * epoch first (so its late writes are fenced), then the retry bumps again. */
TEST(init_aborts_open_transaction)
{
    tcoord_txn *t = tcoord_txn_new("a");
    init(t, -1, -1, 7, NULL);
    tcoord_tp p = TP("x", 0);
    add(t, 0, &p, 1, NULL);
    bool abort_first = false;
    CHECK_EQ_INT(init(t, -1, -1, 9, &abort_first), KERR_NONE);
    CHECK(abort_first);
    CHECK_EQ_INT(t->m.state, TCOORD_PREPARE_ABORT);
    CHECK_EQ_INT(t->m.epoch, 1);
    CHECK_EQ_INT(t->nleft, 1);
    CHECK_EQ_INT(end(t, 0, false), KERR_PRODUCER_FENCED); /* the zombie */
    CHECK_EQ_INT(init(t, -1, -1, 9, NULL), KERR_CONCURRENT_TRANSACTIONS);
    complete(t);
    CHECK_EQ_INT(t->m.state, TCOORD_COMPLETE_ABORT);
    CHECK_EQ_INT(init(t, -1, -1, 9, &abort_first), KERR_NONE);
    CHECK(!abort_first);
    CHECK_EQ_INT(t->m.epoch, 2);
    CHECK_EQ_INT(t->m.state, TCOORD_EMPTY);
    tcoord_txn_free(t);
}

/* A transaction past its timeout is aborted at a bumped epoch, which fences its producer; before
 * it, or in other states, nothing happens. Idle ids expire only from Empty or Complete states. */
TEST(timeout_and_expiry)
{
    tcoord_txn *t = tcoord_txn_new("a");
    init(t, -1, -1, 7, NULL);
    tcoord_meta next;
    CHECK(!tcoord_txn_timed_out(t, NOW + 10000000, &next));
    tcoord_tp p = TP("x", 0);
    add(t, 0, &p, 1, NULL);
    CHECK(!tcoord_txn_timed_out(t, NOW + 1 + 59999, &next));
    CHECK(!tcoord_txn_expired(t, NOW + 100000000, 1000));
    REQUIRE(tcoord_txn_timed_out(t, NOW + 1 + 60000, &next));
    CHECK_EQ_INT(next.state, TCOORD_PREPARE_ABORT);
    CHECK_EQ_INT(next.epoch, 1);
    CHECK_EQ_INT(next.nparts, 1);
    tcoord_txn_apply(t, &next);
    complete(t);
    CHECK(!tcoord_txn_expired(t, NOW + 3 + 999, 1000));
    CHECK(tcoord_txn_expired(t, NOW + 3 + 1000, 1000));
    CHECK_EQ_INT(init(t, 7, 0, 9, NULL), KERR_PRODUCER_FENCED); /* the timed-out producer is fenced */
    t->pending = true;
    CHECK(!tcoord_txn_expired(t, NOW + 3 + 1000, 1000));
    tcoord_txn_free(t);
}

/* Records round-trip: key and value (v0) decode to the same id and state; a null value is a
 * tombstone; garbage is refused. */
TEST(records_round_trip)
{
    tcoord_tp parts[] = {TP("a", 0), TP("a", 3), TP("b", 1)};
    tcoord_meta m = {42, 3, 15000, TCOORD_PREPARE_COMMIT, 3, parts, NOW, NOW - 5};
    buf_t k, v;
    buf_init(&k);
    buf_init(&v);
    tcoord_rec_key(&k, "my-txn");
    tcoord_rec_value(&v, &m);
    char *id;
    tcoord_meta out;
    bool tomb;
    REQUIRE(tcoord_rec_decode(k.data, (int32_t)k.len, v.data, (int32_t)v.len, &id, &out, &tomb) == 0);
    CHECK(strcmp(id, "my-txn") == 0 && !tomb);
    CHECK_EQ_INT(out.producer_id, 42);
    CHECK_EQ_INT(out.epoch, 3);
    CHECK_EQ_INT(out.timeout_ms, 15000);
    CHECK_EQ_INT(out.state, TCOORD_PREPARE_COMMIT);
    CHECK_EQ_INT(out.update_ms, NOW);
    CHECK_EQ_INT(out.start_ms, NOW - 5);
    REQUIRE(out.nparts == 3);
    for (int i = 0; i < 3; i++)
        CHECK(strcmp(out.parts[i].topic, parts[i].topic) == 0 && out.parts[i].partition == parts[i].partition);
    tcoord_meta_free(&out);
    free(id);
    REQUIRE(tcoord_rec_decode(k.data, (int32_t)k.len, NULL, -1, &id, &out, &tomb) == 0);
    CHECK(tomb && strcmp(id, "my-txn") == 0);
    free(id);
    CHECK(tcoord_rec_decode(v.data, 1, v.data, (int32_t)v.len, &id, &out, &tomb) != 0);
    v.data[16] = 99; /* the status byte (after version, pid, epoch, timeout): no such state */
    CHECK(tcoord_rec_decode(k.data, (int32_t)k.len, v.data, (int32_t)v.len, &id, &out, &tomb) != 0);
    buf_free(&k);
    buf_free(&v);
}

/* The byte layout is Kafka's: key = int16 0, string id; value v0 starts int16 0, int64 pid. */
TEST(records_layout)
{
    buf_t k, v;
    buf_init(&k);
    buf_init(&v);
    tcoord_rec_key(&k, "t");
    const uint8_t key[] = {0, 0, 0, 1, 't'};
    CHECK(k.len == sizeof key && memcmp(k.data, key, sizeof key) == 0);
    tcoord_meta m = {0x0102, 5, 100, TCOORD_EMPTY, 0, NULL, 1, -1};
    tcoord_rec_value(&v, &m);
    const uint8_t head[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 5, 0, 0, 0, 100, TCOORD_EMPTY};
    CHECK(v.len == sizeof head + 4 + 8 + 8 && memcmp(v.data, head, sizeof head) == 0);
    buf_free(&k);
    buf_free(&v);
}

/* State names are Kafka's, and parse back. */
TEST(state_names)
{
    tcoord_state s;
    CHECK(strcmp(tcoord_state_name(TCOORD_PREPARE_EPOCH_FENCE), "PrepareEpochFence") == 0);
    CHECK(tcoord_state_parse("CompleteAbort", 13, &s) && s == TCOORD_COMPLETE_ABORT);
    CHECK(!tcoord_state_parse("ongoing", 7, &s));
}
