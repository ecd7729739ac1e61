/*
 * coord_int.h - the coordinator's state, shared by coord.c (requests and
 * the deadline thread) and coord_log.c (__consumer_offsets: appends and the
 * rebuild at start-up). Not included outside src/group.
 *
 * Locking. One mutex (c->lock) covers every group. State-machine calls and
 * log appends (plog_append: offsets are assigned in the order the state
 * changed) happen under it. Nothing that can call back into the
 * coordinator runs under it: after unlocking, fx_run hands the appends to
 * the partition (whose durability callback may fire at once, on this
 * thread) and only then answers the waiting requests.
 */
#ifndef CHRONIK_GROUP_COORD_INT_H
#define CHRONIK_GROUP_COORD_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/hmap.h"
#include "group/group_int.h"
#include "meta/itopic.h"
#include "meta/meta.h"
#include "proto/batch.h"
#include "replica/replica.h"

#define COORD_LOAD_CHUNK_BYTES (1u << 20) /* read size while rebuilding */

struct group_coord {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    _Atomic int refs;          /* the owner's, the thread's, each append and creation in flight */
    bool stopping;
    group_config cfg;
    meta_t *meta;
    replica_mgr *replicas;
    hmap groups;               /* group id -> group* */
    meta_itopic topic;         /* __consumer_offsets, created on first need */
    int32_t *loaded_epoch;     /* per partition: the leader epoch its groups were loaded at; -1 none */
    int32_t nloaded;           /* entries of loaded_epoch */
    int64_t wake_ms;           /* when the sleeping thread wakes */
    int64_t retention_due_ms;  /* next offsets expiry pass */
};

/* An append to __consumer_offsets whose completion runs once durable. */
typedef struct append_job append_job;
struct append_job {
    append_job *next;
    group_coord *c;
    partition *p;
    int64_t base_offset;       /* offset of the batch's first record */
    int64_t end_offset;        /* log end after it */
    void (*durable)(append_job *j, int16_t err); /* no lock held; err is a Kafka code */
    char *group_id;
    int32_t generation;        /* metadata stores */
    group_commit_req *commit;  /* offset commits */
    int32_t *parts;            /* commit->parts index of each record */
    int64_t producer_id;       /* transactional commits; -1 otherwise */
    int32_t nparts;
    int64_t commit_ts_ms;
    int64_t expire_ts_ms;
    struct waitgroup *wg;      /* deletions */
};

/* Work left for after the lock is released. */
typedef struct fx {
    group_out out;
    append_job *jobs;
} fx;

void fx_init(fx *f);
/* Without the lock: hands the appends over, then answers the waiters. */
void fx_run(fx *f);

/* Records for one partition, built under the lock. */
typedef struct rec_batch {
    buf_t buf;
    batch_builder_t bb;
    int32_t count;
} rec_batch;

void rb_init(rec_batch *b, int64_t now_ms);
/* A transactional batch of producer_id at epoch (TxnOffsetCommit). */
void rb_init_txn(rec_batch *b, int64_t now_ms, int64_t producer_id, int16_t epoch);
/* value NULL: a tombstone. */
void rb_add(rec_batch *b, int64_t now_ms, const buf_t *key, const buf_t *value);
void rb_free(rec_batch *b);
/* Appends b (count > 0) to partition index of __consumer_offsets. Returns
 * the job (queued on f, durable to be set by the caller), or NULL with *err. */
append_job *rb_append(group_coord *c, int32_t index, rec_batch *b, fx *f, int16_t *err);

void coord_ref(group_coord *c);
void coord_unref(group_coord *c);
group *coord_group(group_coord *c, const char *id, bool create, int64_t now_ms);
int32_t coord_partition_of(group_coord *c, const char *group_id);

/* Under the lock: why this node cannot serve group_id now (stopping, no
 * __consumer_offsets yet, another node's partition), or KERR_NONE. */
int16_t coord_unavailable(group_coord *c, const char *group_id, fx *f);
/* After a state-machine call: persist if asked, wake the thread, drop an unused group. */
void coord_settle(group_coord *c, group *g, int64_t now_ms, fx *f);

/* Under the lock: producer_id's transaction ended in partition index of
 * __consumer_offsets; its pending offsets there are committed or dropped. */
void coord_txn_end(group_coord *c, int32_t index, int64_t producer_id, bool commit);

/* Persist a group's metadata (after a state-machine call asked for it). */
void coord_store_group(group_coord *c, group *g, int64_t now_ms, fx *f);

/* Under the lock: whether this node coordinates group_id now. Loads the
 * groups of its __consumer_offsets partition when this node has become its
 * leader (at a new epoch), drops them when it no longer leads. KERR_NONE,
 * or NOT_COORDINATOR. */
int16_t coord_own(group_coord *c, const char *group_id, fx *f);
/* Under the lock: the same for every partition (the deadline thread). */
void coord_own_all(group_coord *c, fx *f);

#endif
