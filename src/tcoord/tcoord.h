/*
 * tcoord.h - the transaction coordinator (KIP-98, KIP-447, KIP-890 part 1):
 * transactional ids, their producer ids and epochs, and the two-phase end
 * of a transaction, kept in the internal compacted topic __transaction_state.
 *
 * Layer: above group (it places ids with group_rec_partition, Kafka's
 * mapping for both topics) and replica (it appends through the one append
 * path); below broker, whose handlers call it. It sends WriteTxnMarkers
 * (API 27) to the data partitions' leaders through kclient, this node
 * included, on the client listener.
 *
 * Three parts, one header:
 *   tcoord_txn_*  one transactional id's state machine (txn.c). Pure: no
 *                 clock, no I/O, no locks. Each request computes the next
 *                 durable state (tcoord_meta); the caller writes it to the
 *                 log and applies it once durable (tcoord_txn.pending in
 *                 between: other requests get CONCURRENT_TRANSACTIONS).
 *   tcoord_rec_*  the records of __transaction_state (records.c).
 *   tcoord_*      the coordinator (coord.c, log.c, markers.c): every id of
 *                 the partitions this node leads behind one mutex, loaded
 *                 from the log when it becomes leader and dropped when it
 *                 is not any more; a thread for timeouts, expiry, reloads
 *                 and marker retries.
 *
 * States (Kafka's names and numbers, stored in TransactionLogValue):
 *
 *     Empty --AddPartitions--> Ongoing --EndTxn--> PrepareCommit|PrepareAbort
 *     PrepareX --every marker acknowledged--> CompleteX
 *     Ongoing --InitProducerId (epoch bumped), timeout--> PrepareAbort
 *     Empty, CompleteX --InitProducerId--> Empty (epoch + 1, or a new id
 *                       when the epoch is exhausted)
 *     Empty, CompleteX --idle transactional.id.expiration.ms--> Dead (tombstone)
 *
 * Invariants (tcoord_txn_check):
 *   1. Only Ongoing and PrepareX have partitions; Ongoing has at least one.
 *   2. producer_id >= 0 and epoch >= 0 once the id was initialised.
 *   3. At most one state write per id is in flight (pending).
 */
#ifndef CHRONIK_TCOORD_TCOORD_H
#define CHRONIK_TCOORD_TCOORD_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "kclient/kclient.h"

#define TCOORD_TOPIC "__transaction_state"
#define TCOORD_PARTS_MAX 100000   /* partitions of one transaction */
#define TCOORD_ID_MAX 32767        /* transactional id length */

typedef enum tcoord_state {
    TCOORD_EMPTY = 0,
    TCOORD_ONGOING = 1,
    TCOORD_PREPARE_COMMIT = 2,
    TCOORD_PREPARE_ABORT = 3,
    TCOORD_COMPLETE_COMMIT = 4,
    TCOORD_COMPLETE_ABORT = 5,
    TCOORD_DEAD = 6,
    TCOORD_PREPARE_EPOCH_FENCE = 7,
} tcoord_state;

#define TCOORD_STATE_COUNT 8

/* "Empty", "Ongoing", ...; parse is case-sensitive, as Kafka's. */
const char *tcoord_state_name(tcoord_state s);
bool tcoord_state_parse(const char *s, size_t len, tcoord_state *out);

typedef struct tcoord_tp {
    char *topic;
    int32_t partition;
} tcoord_tp;

/* What one TransactionLogValue holds: the durable state of an id. */
typedef struct tcoord_meta {
    int64_t producer_id;
    int16_t epoch;
    int32_t timeout_ms;
    tcoord_state state;
    int32_t nparts;
    tcoord_tp *parts;        /* owned; sorted by (topic, partition), no duplicates */
    int64_t update_ms;
    int64_t start_ms;        /* -1 unless Ongoing or PrepareX */
    int16_t last_epoch;      /* not stored (-1 after a load): the epoch a producer had before it
                              * bumped it itself with InitProducerId (KIP-360), -1 none */
} tcoord_meta;

void tcoord_meta_copy(tcoord_meta *dst, const tcoord_meta *src);
void tcoord_meta_free(tcoord_meta *m);
bool tcoord_meta_has(const tcoord_meta *m, const char *topic, int32_t partition);

typedef struct tcoord_txn {
    char *id;
    tcoord_meta m;           /* as durable in the log */
    bool pending;            /* a state write is in flight */
    /* markers (PrepareX): partitions not yet acknowledged */
    int32_t nleft;
    tcoord_tp *left;
    int32_t inflight;        /* WriteTxnMarkers requests out */
    uint32_t round;          /* marker round, to drop stale answers */
    int64_t retry_ms;        /* next round not before */
    bool warned;             /* a marker failure was logged */
} tcoord_txn;

tcoord_txn *tcoord_txn_new(const char *id);
void tcoord_txn_free(tcoord_txn *t);
void tcoord_txn_check(const tcoord_txn *t);

/* ---- the state machine (txn.c) --------------------------------------------------- */

/* Every function below reads t and, when it returns KERR_NONE with *write
 * set, fills next with the state to store (caller frees next). */

/* InitProducerId. pid/epoch: the client's current ones (-1, -1 when none;
 * KIP-360: the current epoch is bumped, the one before a bump the producer
 * asked for is a retry answered with the current epoch, any other is
 * fenced);
 * fresh_pid: an unused producer id, taken when a new one is needed. With an
 * Ongoing transaction the result is a PrepareAbort at a bumped epoch and
 * *abort_first: the caller stores it, starts its markers and answers
 * CONCURRENT_TRANSACTIONS (the client retries). */
int16_t tcoord_txn_init(const tcoord_txn *t, int64_t pid, int16_t epoch, int64_t fresh_pid, int32_t timeout_ms,
                        int64_t now_ms, tcoord_meta *next, bool *write, bool *abort_first);
/* AddPartitionsToTxn / AddOffsetsToTxn: *write is false when every
 * partition is in the transaction already. */
int16_t tcoord_txn_add(const tcoord_txn *t, int64_t pid, int16_t epoch, const tcoord_tp *parts, int32_t n,
                       int64_t now_ms, tcoord_meta *next, bool *write);
/* AddPartitionsToTxn v4 VerifyOnly for one partition. */
int16_t tcoord_txn_verify(const tcoord_txn *t, int64_t pid, int16_t epoch, const char *topic, int32_t partition);
/* EndTxn: *write false for a retry of an end already completed. */
int16_t tcoord_txn_end(const tcoord_txn *t, int64_t pid, int16_t epoch, bool commit, int64_t now_ms,
                       tcoord_meta *next, bool *write);
/* An Ongoing transaction past its timeout: true with next = PrepareAbort at
 * a bumped epoch (the producer is fenced). */
bool tcoord_txn_timed_out(const tcoord_txn *t, int64_t now_ms, tcoord_meta *next);
/* PrepareX with every marker acknowledged: next = CompleteX. */
void tcoord_txn_complete(const tcoord_txn *t, int64_t now_ms, tcoord_meta *next);
/* Empty or CompleteX and idle for expiration_ms. */
bool tcoord_txn_expired(const tcoord_txn *t, int64_t now_ms, int64_t expiration_ms);
/* Applies a durable state: m = next (moved; next is emptied), markers reset. */
void tcoord_txn_apply(tcoord_txn *t, tcoord_meta *next);

/* ---- __transaction_state records (records.c) ------------------------------------ */

/* Key (version 0) and value (version 0) bytes, each "int16 version, body". */
void tcoord_rec_key(buf_t *out, const char *txn_id);
void tcoord_rec_value(buf_t *out, const tcoord_meta *m);
/* Decodes one record into *id (malloc'd) and m (tombstone: *tombstone).
 * Returns 0, or -1 for bytes that are no transaction record. */
int tcoord_rec_decode(const uint8_t *key, int32_t key_len, const uint8_t *value, int32_t value_len, char **id,
                      tcoord_meta *m, bool *tombstone);

/* ---- the coordinator (coord.c) --------------------------------------------------- */

typedef struct tcoord tcoord;
struct meta;
struct replica_mgr;
struct net;

typedef struct tcoord_config {
    int32_t partitions;             /* transaction.state.log.num.partitions */
    int16_t replication_factor;     /* transaction.state.log.replication.factor */
    int16_t min_isr;                /* transaction.state.log.min.isr */
    int32_t max_timeout_ms;         /* transaction.max.timeout.ms */
    int64_t id_expiration_ms;       /* transactional.id.expiration.ms */
    int64_t abort_check_ms;         /* transaction.abort.timed.out.transaction.cleanup.interval.ms */
    int64_t expire_check_ms;        /* transaction.remove.expired.transaction.cleanup.interval.ms */
    int32_t node_id;
} tcoord_config;

/* Loads the ids of the partitions this node leads and starts the thread. */
tcoord *tcoord_start(const tcoord_config *cfg, struct meta *meta, struct replica_mgr *replicas);
/* Markers go out once the network runs (before that they wait). */
void tcoord_connect(tcoord *c, struct net *net);
/* How marker requests reach other brokers (NULL: plaintext); before
 * tcoord_connect, and it must outlive c. */
void tcoord_set_peer_security(tcoord *c, const kclient_security *sec);
/* Answers waiting requests NOT_COORDINATOR, stops the thread, closes the
 * marker clients; appends in flight keep the rest alive. */
void tcoord_stop(tcoord *c);

/* FindCoordinator: true when __transaction_state exists; otherwise its
 * creation starts and done(arg, err) runs later on another thread. */
typedef void (*tcoord_ready_fn)(void *arg, int16_t err);
bool tcoord_ensure(tcoord *c, tcoord_ready_fn done, void *arg);

/* A request's answer: exactly once, on any thread, no lock held (possibly
 * before the call that was given it returns). */
typedef void (*tcoord_done_fn)(void *arg, int16_t err, int64_t producer_id, int16_t epoch);

void tcoord_init_pid(tcoord *c, const char *txn_id, int32_t timeout_ms, int64_t pid, int16_t epoch,
                     int64_t fresh_pid, tcoord_done_fn done, void *arg);
/* Answered once the Ongoing state is durable. While the producer's previous
 * transaction is still ending it waits for that end, up to TCOORD_PARK_MS,
 * before CONCURRENT_TRANSACTIONS. txn_id and parts are copied. */
void tcoord_add(tcoord *c, const char *txn_id, int64_t pid, int16_t epoch, const tcoord_tp *parts, int32_t n,
                tcoord_done_fn done, void *arg);
/* Per-partition verdicts in errs[i] (the whole transaction's error when it
 * fails before the partitions are looked at). */
void tcoord_verify(tcoord *c, const char *txn_id, int64_t pid, int16_t epoch, const tcoord_tp *parts, int32_t n,
                   int16_t *errs);
void tcoord_end(tcoord *c, const char *txn_id, int64_t pid, int16_t epoch, bool commit, tcoord_done_fn done,
                void *arg);

/* Read access under the lock: fn copies what it keeps, calls nothing back.
 * describe: t is NULL for an unknown id; the error says when this node is
 * not the coordinator (fn not called). */
typedef void (*tcoord_view_fn)(void *arg, const tcoord_txn *t);
int16_t tcoord_describe(tcoord *c, const char *txn_id, tcoord_view_fn fn, void *arg);
void tcoord_each(tcoord *c, tcoord_view_fn fn, void *arg);

#endif
