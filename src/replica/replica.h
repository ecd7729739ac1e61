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
 * the append and the state update, so those three are atomic.
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
#include "storage/storage.h"
#include "txn/txn.h"

typedef struct pwaiter {
    struct pwaiter *next;
    void (*wake)(void *arg); /* called with the partition's waiter lock held: keep it short */
    void *arg;
    bool queued;
} pwaiter;

typedef struct partition {
    _Atomic int refs;
    char *topic;
    int32_t index;
    kuuid_t topic_id;
    plog_t *log;
    int32_t leader_epoch;
    _Atomic int64_t high_watermark;
    _Atomic bool removed;
    pthread_mutex_t wlock;   /* waiters */
    pwaiter *waiters;
    struct replica_mgr *mgr;
    pthread_mutex_t produce_lock; /* idempotence check + append + state update */
    txn_state *producers;    /* guarded by produce_lock */
    _Atomic bool snapshotting; /* a producer snapshot is being written */
    struct partition *reap_next; /* the reaper's queue, once unreferenced */
} partition;

typedef struct replica_mgr replica_mgr;

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
 * After an append (res from plog_append): advance the high watermark now, or
 * once the data is durable. done(arg, err) is called when the append may be
 * acknowledged (acks >= 1): at once (from this thread) when no sync is
 * needed, else on the flusher thread after the sync. done may be NULL
 * (acks=0).
 */
typedef void (*partition_acked_fn)(void *arg, int err);
void partition_appended(partition *p, int64_t log_end_offset, partition_acked_fn done, void *arg);
/* Forces a sync of the partition's log (data up to its current end and its
 * checkpoint, e.g. a raised log start) and calls done(arg, err) on the
 * flusher thread once it is durable. */
void partition_sync(partition *p, partition_acked_fn done, void *arg);

/* Counts bytes appended to p (any append path, after the append, without
 * produce_lock held) and writes a producer snapshot when one is due. */
void partition_note_append(partition *p, size_t bytes);

#endif
