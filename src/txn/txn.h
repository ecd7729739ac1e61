/*
 * txn.h - producer ids and the idempotent producer (KIP-98, KIP-360).
 *
 * Two parts, one header:
 *
 *   txn_pids_*   this node's supply of producer ids. Ids come in blocks of
 *                TXN_PID_BLOCK_SIZE that the controller allocates through
 *                the metadata log (ProducerIdsRecord: the image keeps the
 *                first id of the next block), so an id is never handed out
 *                twice, not even across restarts. Getting a block is one
 *                call through a function pointer (txn_block_request_fn), so
 *                a multi-node cluster can serve it by an RPC to the
 *                controller instead of a local metadata change.
 *
 *   txn_state_*  one partition's producer state. For each producer id: its
 *                epoch, the time stamp of its last batch and the sequence
 *                range and offsets of its last TXN_BATCHES_RETAINED batches.
 *                A batch from a client (producerId >= 0) is checked against
 *                it: a retry of a retained batch is a duplicate, answered
 *                with its original offsets and not appended; an older epoch
 *                is INVALID_PRODUCER_EPOCH; a sequence that does not follow
 *                the last one (wrapping after INT32_MAX) is
 *                OUT_OF_ORDER_SEQUENCE_NUMBER; a newer epoch must start at
 *                sequence 0. A producer this partition has not seen may
 *                start at any sequence (its state may have expired).
 *                Transactions: a transactional batch opens its producer's
 *                transaction at its first offset unless one is open; the
 *                producer's next marker (a control batch, COMMIT or
 *                ABORT) closes it. An ABORT marker yields the aborted
 *                transaction's entry for the log's .txnindex (storage.h).
 *                The first unstable offset is the lowest first offset of
 *                an open transaction; consumers reading committed data
 *                stop at the last stable offset, min(it, high watermark).
 *                The state is rebuilt when the partition opens from a
 *                snapshot file (format at the top of txn_snapshot.c) plus
 *                the batches the log holds after it.
 *
 * Threads: a txn_state is not locked; its owner serialises the check, the
 * append and txn_state_apply (the partition's produce lock), and every
 * other call too, except txn_state_note_append which is atomic. txn_pids
 * locks itself.
 */
#ifndef CHRONIK_TXN_TXN_H
#define CHRONIK_TXN_TXN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "proto/batch.h"
#include "storage/storage.h"

/* ---- producer ids --------------------------------------------------------- */

#define TXN_PID_BLOCK_SIZE 1000             /* ids per ProducerIdsRecord */
#define TXN_PID_PREFETCH_LEFT 100           /* ask for the next block when fewer remain */
#define TXN_EPOCH_EXHAUSTED (INT16_MAX - 1) /* an epoch this high gets a new id */

typedef struct txn_pids txn_pids;

/* Asks for count new ids; the answer comes later (any thread) as
 * txn_pids_block_done(p, err, first, count). */
typedef void (*txn_block_request_fn)(void *ctx, txn_pids *p, int32_t count);

/* err: a Kafka error code; producer_id is -1 when err != 0. */
typedef void (*txn_pid_fn)(void *arg, int16_t err, int64_t producer_id);

typedef struct txn_pid_waiter {
    struct txn_pid_waiter *next;
    txn_pid_fn fn;
    void *arg;
} txn_pid_waiter;

/* All-zero memory is an empty, valid txn_pids: it initialises its lock on
 * first use and owns no memory, so it needs no destructor. */
struct txn_pids {
    _Atomic int init; /* 0 new, 1 initialising, 2 ready */
    pthread_mutex_t lock;
    int64_t next, end;              /* the current block: [next, end) */
    int64_t spare_first, spare_end; /* a prefetched block, empty when equal */
    bool requesting;                /* a block request is out */
    txn_pid_waiter *head, *tail;    /* waiting for a block, FIFO */
};

/*
 * A new producer id. Returns true with *id set when one is at hand. Else
 * queues w (caller-owned until w->fn has run) and returns false: w->fn
 * runs on the thread that completes the block request. Either way a block
 * request may be issued through request(ctx, ...), never with the lock held.
 */
bool txn_pids_next(txn_pids *p, txn_block_request_fn request, void *ctx, txn_pid_waiter *w,
                   int64_t *id);
/* The answer to a block request: serves the waiters (or fails them all
 * with err). May issue another request when waiters remain. */
void txn_pids_block_done(txn_pids *p, int16_t err, int64_t first, int32_t count,
                         txn_block_request_fn request, void *ctx);

/* ---- per-partition producer state -------------------------------------- */

#define TXN_BATCHES_RETAINED 5   /* Kafka's NUM_BATCHES_TO_RETAIN */
#define TXN_PRODUCERS_MAX 100000 /* per partition; least recently used evicted beyond (open transactions last) */
#define TXN_SNAPSHOT_INTERVAL_BYTES (64LL << 20) /* appended bytes between snapshots */
#define TXN_PRODUCER_ID_EXPIRATION_MS_DEFAULT (24LL * 3600 * 1000) /* producer.id.expiration.ms */
#define TXN_SNAPSHOT_FILE "chronik.producers"
#define TXN_SCAN_CHUNK_BYTES (1u << 20) /* log read size while rebuilding */

typedef struct txn_state txn_state;

txn_state *txn_state_new(void);
void txn_state_free(txn_state *s);

/* The sequence number of a batch's last record (wraps after INT32_MAX). */
int32_t txn_last_sequence(int32_t base_sequence, int32_t last_offset_delta);

typedef struct txn_verdict {
    int16_t err;    /* Kafka error code; KERR_NONE: append (or duplicate) */
    bool duplicate; /* in the log already at [first_offset, last_offset] */
    int64_t first_offset;
    int64_t last_offset;
    const char *msg; /* static detail when err != 0 */
} txn_verdict;

/* Checks a client's batch with producer_id >= 0 (not a control batch). */
txn_verdict txn_state_check(const txn_state *s, const batch_info_t *b);
/* Records a batch with producer_id >= 0 that the log holds at
 * [first_offset, last_offset]: after a checked append, or while replaying
 * the log (then unchecked, as a follower would). Control batches only move
 * the epoch. */
void txn_state_apply(txn_state *s, const batch_info_t *b, int64_t first_offset,
                     int64_t last_offset);

typedef struct txn_producer_info {
    int64_t producer_id;
    int16_t epoch;
    int32_t last_sequence;  /* -1 when no batch is retained */
    int64_t last_timestamp; /* max timestamp of its last batch */
    int64_t last_offset;    /* -1 when no batch is retained */
    int64_t txn_first_offset;  /* its open transaction's first offset, -1 none */
    int32_t coordinator_epoch; /* of its last marker, -1 none */
} txn_producer_info;

typedef void (*txn_producer_fn)(void *arg, const txn_producer_info *p);

int32_t txn_state_count(const txn_state *s);
/* Least recently appended first. */
void txn_state_each(const txn_state *s, txn_producer_fn fn, void *arg);
/* The producer's epoch, or -1 when it is not known here. */
int16_t txn_state_epoch(const txn_state *s, int64_t producer_id);
/* Drops producers whose last batch is expiration_ms or more older than
 * now_ms (Kafka's producer.id.expiration.ms rule). Returns how many. */
int32_t txn_state_expire(txn_state *s, int64_t now_ms, int64_t expiration_ms);

/* Counts appended bytes (any thread); true when TXN_SNAPSHOT_INTERVAL_BYTES
 * or more have accumulated since the last txn_state_encode. Several threads
 * may see true at once: recheck with txn_state_snapshot_due under the lock. */
bool txn_state_note_append(txn_state *s, size_t bytes);
bool txn_state_snapshot_due(const txn_state *s);

/* ---- transactions -------------------------------------------------------- */

/* The lowest first offset of an open transaction; INT64_MAX when none. */
int64_t txn_state_first_unstable(const txn_state *s);
/* The open transaction of producer_id: its first offset, or -1. */
int64_t txn_state_txn_start(const txn_state *s, int64_t producer_id);
/* Checks a transaction marker (a control batch the broker built) before
 * it is appended: INVALID_PRODUCER_EPOCH when its producer epoch is older
 * than the one this partition knows, TRANSACTION_COORDINATOR_FENCED when
 * coordinator_epoch is older than the producer's last marker's. */
txn_verdict txn_state_check_marker(const txn_state *s, const batch_info_t *b, int32_t coordinator_epoch);
/* txn_state_apply for a batch of log whose bytes b->data holds whole; an
 * ABORT marker's aborted transaction goes into log's transaction index
 * (plog_txn_index_add: idempotent, so replays may repeat it). Returns the
 * storage code of that write (STORAGE_OK when there was none). */
int txn_state_apply_log(txn_state *s, plog_t *log, const batch_info_t *b, int64_t first_offset,
                        int64_t last_offset);

/* ---- snapshots (txn_snapshot.c) ----------------------------------------- */

/* Appends a snapshot of s that covers the log below offset to out, and
 * restarts the appended-bytes count. */
void txn_state_encode(txn_state *s, int64_t offset, buf_t *out);
/* Replaces the contents of s with a snapshot; *offset gets the offset it
 * covers. STORAGE_OK, or STORAGE_ERR_FORMAT (s is then empty). */
int txn_state_decode(txn_state *s, const uint8_t *p, size_t n, int64_t *offset);
/* Writes an encoded snapshot as dir/TXN_SNAPSHOT_FILE, atomically. */
int txn_snapshot_write(sfs_t *fs, const char *dir, const buf_t *snap);
/*
 * Rebuilds s (empty) for log: loads dir/TXN_SNAPSHOT_FILE when it is valid
 * and not beyond the log end, then replays the batches from the snapshot's
 * offset (or the log start) to the log end; expires idle producers.
 * Returns a storage error when the log cannot be read.
 */
int txn_state_load(txn_state *s, plog_t *log, sfs_t *fs, const char *dir, int64_t now_ms,
                   int64_t expiration_ms);

#endif
