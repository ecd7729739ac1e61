/*
 * replica.h - the partitions this node holds: their logs, leader epochs,
 * high watermarks, and the fetch requests waiting for data.
 *
 * The set of partitions follows the metadata image (replica_sync): a
 * partition that names this node as a replica gets its log opened (created
 * when new); a partition gone from the image has its log closed and its
 * directory deleted.
 *
 * High watermark. With one replica the high watermark is the durable end of
 * the log: the flushed offset when acknowledgements wait for fsync (the
 * default), else the log end. Consumers never see a record that a crash
 * could take back. When it advances, every waiter on the partition is woken
 * once (one-shot; waiters re-register if they still need to wait).
 *
 * Producer state. Each partition keeps its idempotent producers' state
 * (txn.h), rebuilt from its snapshot and log when the partition opens and
 * snapshotted every TXN_SNAPSHOT_INTERVAL_BYTES of appends and at clean
 * close. Appends of idempotent batches hold produce_lock across the check,
 * the append and the state update, so those three are atomic. The state
 * also tracks open transactions (the last stable offset) and writes the
 * log's aborted-transaction index, on leaders and followers alike.
 *
 * References: replica_get returns a counted reference; partition_put drops
 * it. A removed partition stays valid while referenced; when the last
 * reference goes, from any thread (the flusher's completions included),
 * the partition is handed to the manager's reaper thread, which closes its
 * log. partition_put itself never blocks on I/O or on the flusher.
 *
 * Deletion: a partition gone from the image refuses writes at once and its
 * directory is renamed "<topic>-<partition>.<hex>-delete" before anything
 * else happens (plog_mark_deleted); the reaper removes it. A directory
 * whose partition.metadata names another topic id is set aside as
 * "...-stray" instead of being opened.
 */
#ifndef CHRONIK_REPLICA_REPLICA_H
#define CHRONIK_REPLICA_REPLICA_H

#include <pthread.h>
#include <stdatomic.h>

#include "meta/meta.h"
#include "net/net.h"
#include "proto/batch.h"
#include "storage/storage.h"
#include "txn/txn.h"

typedef struct pwaiter {
    struct pwaiter *next;
    void (*wake)(void *arg); /* called with the partition's waiter lock held: keep it short */
    void *arg;
    bool queued;
    bool on_log_end;         /* wake on log-end advances (replica fetches), not the high watermark */
} pwaiter;

/* A parked acks=all append (leader.c): answered once the high watermark
 * reaches upto, or on timeout, loss of leadership or close. */
typedef struct ack_park ack_park;

/* What a leader knows of one follower (leader.c). */
typedef struct replica_peer {
    int32_t id;
    int64_t log_end;          /* its last fetch offset: durable on it; -1 unknown */
    int64_t last_caught_up_ms;
    int64_t last_fetch_ms;
    int64_t last_fetch_leader_end; /* the leader's log end at that fetch */
} replica_peer;

#define REPLICA_MAX 16 /* replicas of one partition */

typedef struct partition {
    _Atomic int refs;
    char *topic;
    int32_t index;
    kuuid_t topic_id;
    plog_t *log;
    /* Leadership, from the metadata image (replica_sync); written under
     * rlock, readable from any thread without it. */
    _Atomic int32_t leader_epoch;
    _Atomic int32_t leader_id;   /* -1: none */
    _Atomic bool leading;        /* this node leads at leader_epoch */
    _Atomic int64_t high_watermark;
    _Atomic int64_t durable_end; /* synced here (leader.c) */
    int32_t mgr_node_id;         /* this node */
    _Atomic bool removed;
    pthread_mutex_t wlock;   /* waiters */
    pwaiter *waiters;
    struct replica_mgr *mgr;
    pthread_mutex_t produce_lock; /* leadership check + idempotence check + append + state update */
    txn_state *producers;    /* guarded by produce_lock */
    _Atomic int64_t first_unstable; /* txn_state_first_unstable(producers), published under produce_lock */
    _Atomic bool snapshotting; /* a producer snapshot is being written */
    struct partition *reap_next; /* the reaper's queue, once unreferenced */
    /* Replication state, guarded by rlock (leader.c). */
    pthread_mutex_t rlock;
    int32_t partition_epoch;
    int32_t nreplicas, nisr;
    int32_t replicas[REPLICA_MAX];
    int32_t isr[REPLICA_MAX];     /* committed: from the image */
    int32_t npeers;
    replica_peer peers[REPLICA_MAX]; /* the other replicas, while leading */
    bool alter_inflight;          /* an AlterPartition is with the controller */
    int32_t pending_isr[REPLICA_MAX]; /* its proposed ISR (the "maximal" ISR while growing) */
    int32_t npending_isr;
    int64_t alter_retry_ms;       /* not before (after a refusal) */
    ack_park *acks;               /* parked acks=all appends, by upto */
    int32_t fetcher_leader;       /* the broker this follower fetches from; -1 none (fetcher.c) */
    int64_t fetch_backoff_until;  /* fetcher.c: skip until (mono ms), after a partition error */
    int64_t hw_checkpointed;      /* last value written to replication-offset-checkpoint */
} partition;

typedef struct replica_mgr replica_mgr;

/* How follower fetchers reach leaders (TLS, SASL login; NULL: plaintext);
 * set before replica_connect, it must outlive the manager. */
void replica_set_peer_security(replica_mgr *m, const kclient_security *sec);
const kclient_security *replica_peer_security(const replica_mgr *m);

/* Derives a partition's log configuration from its topic's overrides. */
typedef void (*replica_config_fn)(void *ctx, const meta_topic *t, plog_config_t *out);

replica_mgr *replica_new(const char *data_dir, sfs_t *fs, int32_t node_id, replica_config_fn cfg_fn,
                         void *cfg_ctx);
void replica_free(replica_mgr *m); /* closes every log */
flusher_t *replica_flusher(replica_mgr *m);
/* producer.id.expiration.ms: idle producers are dropped from the producer
 * state at snapshots and loads (default TXN_PRODUCER_ID_EXPIRATION_MS_DEFAULT). */
void replica_set_producer_id_expiration(replica_mgr *m, int64_t ms);

/* Bring the partitions in line with img (metadata listener). prev, when
 * not NULL, is the image synced before, held by the caller, with the same
 * broker-level settings: a topic that is the very same object in both
 * (images share unchanged topics) keeps its logs' configuration as it is;
 * NULL reconfigures every log held. */
void replica_sync(replica_mgr *m, const meta_image *img, const meta_image *prev);

partition *replica_get(replica_mgr *m, const char *topic, size_t len, int32_t index);
void partition_put(partition *p);

/* Number of partitions held, and a walk over them (for retention, metrics). */
typedef void (*replica_each_fn)(void *arg, partition *p);
void replica_each(replica_mgr *m, replica_each_fn fn, void *arg);

/* Wait for the high watermark to advance (one-shot). */
void partition_watch(partition *p, pwaiter *w);
/* Stop waiting; after it returns, w->wake is not running and will not run. */
void partition_unwatch(partition *p, pwaiter *w);

/*
 * Acknowledgements. done(arg, err) gets a Kafka error code (KERR_NONE when
 * the append may be acknowledged). It runs at once (from the caller's
 * thread) when nothing needs waiting for, else on the flusher thread after
 * the sync, or on whichever thread advances the high watermark (acks=all).
 * done may be NULL (acks=0).
 */
typedef void (*partition_acked_fn)(void *arg, int16_t err);

/*
 * The one append path for a partition's leader: Produce, the group
 * coordinator, and transaction markers. Under produce_lock it checks that
 * this node leads the partition (at expected_epoch unless that is -1),
 * that the ISR has min_isr members when acks is -1 (NOT_ENOUGH_REPLICAS),
 * the idempotence rules when first->producer_id >= 0, then appends with
 * the current leader epoch and records the producer state. The caller then
 * waits for the acknowledgement with partition_await (up to res.log_end_offset,
 * or last_offset + 1 for a duplicate).
 */
typedef struct partition_append_req {
    uint8_t *data;             /* validated batches, patched in place */
    size_t len;
    const batch_info_t *first; /* the first batch's header; NULL: not idempotent */
    int32_t expected_epoch;    /* -1: any */
    int acks;                  /* 0, 1 or -1 */
    int32_t min_isr;           /* min.insync.replicas (acks=-1) */
} partition_append_req;

typedef struct partition_append_res {
    int16_t err;               /* KERR_NONE: appended (or a duplicate) */
    int storage_rc;            /* the storage code behind a storage error */
    const char *msg;           /* static detail, or NULL */
    plog_append_result_t res;
    bool duplicate;            /* an idempotent retry: res.base_offset/last_offset are the original's */
} partition_append_res;

void partition_append(partition *p, const partition_append_req *rq, partition_append_res *out);

/* Waits for the acknowledgement of data below upto: acks 0 none (done may
 * be NULL), 1 once durable here, -1 once the high watermark reaches upto
 * while the ISR keeps min_isr members (else NOT_ENOUGH_REPLICAS_AFTER_APPEND),
 * or REQUEST_TIMED_OUT after timeout_ms or when leadership moves first (the
 * data may survive on the new leader: the outcome is unknown). */
void partition_await(partition *p, int64_t upto, int acks, int32_t min_isr, int64_t timeout_ms,
                     partition_acked_fn done, void *arg);

/* Forces a sync of the partition's log (data up to its current end and its
 * checkpoint, e.g. a raised log start) and calls done(arg, err) on the
 * flusher thread once it is durable. */
void partition_sync(partition *p, partition_acked_fn done, void *arg);

/* The last stable offset (KIP-98): min(first offset of an open
 * transaction, high watermark). Consumers reading committed data stop
 * there. Any thread. */
int64_t partition_last_stable_offset(partition *p);

/* Leadership of p here: KERR_NONE when this node leads at epoch (-1: any
 * epoch), else NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH (epoch older
 * than the current) or UNKNOWN_LEADER_EPOCH (newer). */
int16_t partition_check_leader(const partition *p, int32_t epoch);

/* A follower's fetch at the leader (api_fetch.c): records that replica_id
 * has everything below fetch_offset durable, which may advance the high
 * watermark and grow the ISR. Returns a Kafka error code. */
int16_t partition_follower_fetched(partition *p, int32_t replica_id, int64_t fetch_offset);

/* Calls fn for each batch of p's log from its start to its end, read
 * chunk_bytes at a time (the view is valid during the call only); for the
 * coordinators that rebuild their state from an internal topic (scan.c).
 * STORAGE_OK, or the error of a read, with *at its offset. */
typedef void (*partition_batch_fn)(void *arg, const batch_info_t *bi, const uint8_t *data);
int partition_scan(partition *p, size_t chunk_bytes, partition_batch_fn fn, void *arg, int64_t *at);

/* Starts the follower fetchers (fetcher.c): after net has started. */
void replica_connect(replica_mgr *m, net_t *net, meta_t *meta);

/* Called every REPLICA_TICK_MS by the manager's ticker: ISR shrinking,
 * acks=all timeouts, retries of refused ISR changes. */
#define REPLICA_TICK_MS 50
#define REPLICA_LAG_TIME_MAX_MS_DEFAULT 30000 /* replica.lag.time.max.ms */
void replica_set_lag_time_max(replica_mgr *m, int64_t ms);

/* Counts bytes appended to p (any append path, after the append, without
 * produce_lock held) and writes a producer snapshot when one is due. */
void partition_note_append(partition *p, size_t bytes);

#endif
