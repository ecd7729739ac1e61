/*
 * leader.c - a partition's leader: the one append path, acknowledgements
 * (acks 0, 1, all), the high watermark, and the in-sync replica set
 * (Kafka's ISR model, KIP-497 for the "maximal" ISR while it grows).
 *
 * High watermark. The leader's own durable end (durable_end: the log end
 * once the flusher has synced it, or the log end itself for topics that
 * acknowledge without fsync) and each follower's last fetch offset (a
 * follower syncs what it appended before it fetches again, so its fetch
 * offset is durable on it) bound it: the high watermark is the lowest of
 * them over the maximal ISR (the committed ISR plus a member being added),
 * and it only grows here. Consumers are served below it; acks=all appends
 * complete once it passes them.
 *
 * ISR. A follower whose fetch offset reaches the high watermark (and the
 * start of the leader's current epoch) joins; one that has not caught up
 * with the leader's log end within replica.lag.time.max.ms leaves. Both go
 * through the controller (meta_alter_partition, AlterPartition): one
 * request in flight per partition; the committed ISR arrives with the next
 * metadata image (replica_sync) or the controller's answer, whichever has
 * the newer partition epoch.
 *
 * A leader cut off from the controller for three broker sessions (longer
 * than a controller failover) appends nothing more (NOT_LEADER_OR_FOLLOWER): the controller has fenced
 * it and moved its partitions, and what it took would be cut again when it
 * returns; clients go to the new leader.
 *
 * Locks: produce_lock before rlock; rlock before wlock. Acknowledgement
 * callbacks run with no partition lock held.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "proto/kerr.h"
#include "replica/replica_int.h"

struct ack_park {
    ack_park *next;
    int64_t upto;
    int32_t min_isr;
    int64_t deadline_ms;
    partition_acked_fn done;
    void *arg;
};

/* ---- leadership --------------------------------------------------------- */

int16_t partition_check_leader(const partition *p, int32_t epoch)
{
    if (!atomic_load(&((partition *)p)->leading))
        return KERR_NOT_LEADER_OR_FOLLOWER;
    int32_t cur = atomic_load(&((partition *)p)->leader_epoch);
    if (epoch < 0 || epoch == cur)
        return KERR_NONE;
    return epoch < cur ? KERR_FENCED_LEADER_EPOCH : KERR_UNKNOWN_LEADER_EPOCH;
}

static bool ids_has(const int32_t *ids, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static replica_peer *peer_find(partition *p, int32_t id)
{
    for (int32_t i = 0; i < p->npeers; i++)
        if (p->peers[i].id == id)
            return &p->peers[i];
    return NULL;
}

/* ---- acknowledgements ---------------------------------------------------- */

static void acks_run(ack_park *list, int16_t err_all, partition *p)
{
    while (list) {
        ack_park *next = list->next;
        int16_t err = err_all;
        if (err == KERR_NONE && p->nisr < list->min_isr)
            err = KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
        list->done(list->arg, err);
        free(list);
        list = next;
    }
}

/* Under rlock: the parked acks at or below hw, in order. */
static ack_park *acks_take_upto(partition *p, int64_t hw)
{
    ack_park *ready = NULL, **tail = &ready;
    while (p->acks && p->acks->upto <= hw) {
        ack_park *a = p->acks;
        p->acks = a->next;
        a->next = NULL;
        *tail = a;
        tail = &a->next;
    }
    return ready;
}

/* Under rlock: the parked acks whose deadline passed. */
static ack_park *acks_take_expired(partition *p, int64_t now)
{
    ack_park *gone = NULL, **pp = &p->acks;
    while (*pp) {
        ack_park *a = *pp;
        if (a->deadline_ms <= now) {
            *pp = a->next;
            a->next = gone;
            gone = a;
        } else {
            pp = &a->next;
        }
    }
    return gone;
}

void replica_fail_acks(partition *p, int16_t err)
{
    pthread_mutex_lock(&p->rlock);
    ack_park *all = p->acks;
    p->acks = NULL;
    pthread_mutex_unlock(&p->rlock);
    acks_run(all, err, p);
}

/* ---- the high watermark -------------------------------------------------- */

static int64_t own_durable_end(partition *p)
{
    if (!plog_ack_needs_flush(p->log))
        return plog_log_end_offset(p->log);
    return atomic_load(&p->durable_end);
}

/* Under rlock, leading: the lowest durable end over the maximal ISR. */
static int64_t hw_candidate(partition *p)
{
    int64_t hw = own_durable_end(p);
    for (int32_t i = 0; i < p->npeers; i++) {
        const replica_peer *r = &p->peers[i];
        bool in = ids_has(p->isr, p->nisr, r->id) ||
                  (p->alter_inflight && ids_has(p->pending_isr, p->npending_isr, r->id));
        if (in)
            hw = MIN(hw, r->log_end);
    }
    return hw;
}

/* Wakes the waiters that wait for the log end (replica fetches: they are
 * served up to it, and the high watermark changes nothing in their answer)
 * or, with log_end false, for the high watermark (consumers). */
static void wake_list(partition *p, bool log_end)
{
    pthread_mutex_lock(&p->wlock);
    pwaiter **pp = &p->waiters;
    while (*pp) {
        pwaiter *w = *pp;
        if (w->on_log_end == log_end) {
            *pp = w->next;
            w->queued = false;
            w->wake(w->arg);
        } else {
            pp = &w->next;
        }
    }
    pthread_mutex_unlock(&p->wlock);
}

void replica_wake_log_end(partition *p) { wake_list(p, true); }

/* Raises the high watermark to hw (never lowers it); wakes waiters. */
void replica_raise_hw(partition *p, int64_t hw)
{
    int64_t cur = atomic_load(&p->high_watermark);
    while (hw > cur && !atomic_compare_exchange_weak(&p->high_watermark, &cur, hw))
        ;
    if (hw > cur)
        wake_list(p, false);
}

/* Recomputes the leader's high watermark and answers the acks it passed. */
void replica_leader_advance(partition *p)
{
    pthread_mutex_lock(&p->rlock);
    if (!atomic_load(&p->leading)) {
        pthread_mutex_unlock(&p->rlock);
        return;
    }
    int64_t hw = hw_candidate(p);
    replica_raise_hw(p, hw);
    ack_park *ready = acks_take_upto(p, atomic_load(&p->high_watermark));
    pthread_mutex_unlock(&p->rlock);
    acks_run(ready, KERR_NONE, p);
}

/* ---- syncs ---------------------------------------------------------------- */

typedef struct sync_wait {
    partition *p;
    int64_t upto;
    partition_acked_fn done;
    void *arg;
} sync_wait;

static int16_t storage_kerr(int rc)
{
    if (rc == STORAGE_OK)
        return KERR_NONE;
    return rc == STORAGE_ERR_DELETED ? KERR_UNKNOWN_TOPIC_OR_PARTITION : KERR_KAFKA_STORAGE_ERROR;
}

/* Everything below upto is durable here: durable_end follows (it only
 * grows here), and so may the high watermark. */
static void note_durable(partition *p, int64_t upto)
{
    int64_t cur = atomic_load(&p->durable_end);
    while (upto > cur && !atomic_compare_exchange_weak(&p->durable_end, &cur, upto))
        ;
    if (atomic_load(&p->leading))
        replica_leader_advance(p);
}

static void synced(void *arg, int err)
{
    sync_wait *a = arg;
    partition *p = a->p;
    if (err == STORAGE_OK)
        note_durable(p, a->upto);
    if (a->done)
        a->done(a->arg, storage_kerr(err));
    partition_put(p);
    free(a);
}

void replica_request_sync(partition *p, int64_t upto, partition_acked_fn done, void *arg)
{
    sync_wait *a = xmalloc(sizeof *a);
    atomic_fetch_add(&p->refs, 1);
    *a = (sync_wait){p, upto, done, arg};
    flusher_request(replica_flusher(p->mgr), p->log, upto, synced, a);
}

int16_t replica_sync_now(partition *p)
{
    int rc = flusher_sync_now(replica_flusher(p->mgr), p->log);
    if (rc == STORAGE_OK)
        note_durable(p, plog_flushed_offset(p->log));
    return storage_kerr(rc);
}

void partition_sync(partition *p, partition_acked_fn done, void *arg)
{
    replica_request_sync(p, plog_log_end_offset(p->log), done, arg);
}

static void park_ack(partition *p, int64_t upto, int32_t min_isr, int64_t timeout_ms, partition_acked_fn done,
                     void *arg)
{
    ack_park *a = xmalloc(sizeof *a);
    *a = (ack_park){NULL, upto, min_isr, clock_mono_ms() + MAX(timeout_ms, 0), done, arg};
    pthread_mutex_lock(&p->rlock);
    int16_t err = KERR_NONE;
    if (!atomic_load(&p->leading))
        err = KERR_NOT_LEADER_OR_FOLLOWER;
    else if (atomic_load(&p->removed))
        err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (err == KERR_NONE && atomic_load(&p->high_watermark) < upto) {
        ack_park **pp = &p->acks; /* sorted by upto: appends come in order */
        while (*pp && (*pp)->upto <= upto)
            pp = &(*pp)->next;
        a->next = *pp;
        *pp = a;
        pthread_mutex_unlock(&p->rlock);
        return;
    }
    pthread_mutex_unlock(&p->rlock);
    acks_run(a, err, p);
}

void partition_await(partition *p, int64_t upto, int acks, int32_t min_isr, int64_t timeout_ms,
                     partition_acked_fn done, void *arg)
{
    bool flush = plog_ack_needs_flush(p->log);
    if (acks >= 0 || !done) {
        if (flush) {
            replica_request_sync(p, upto, acks == 0 ? NULL : done, acks == 0 ? NULL : arg);
            return;
        }
        replica_leader_advance(p); /* flush.messages/flush.ms relaxed: the log end counts */
        if (acks != 0 && done)
            done(arg, KERR_NONE);
        return;
    }
    /* acks=all: the sync moves this node's durable end; the followers'
     * fetches move the rest. */
    park_ack(p, upto, min_isr, timeout_ms, done, arg);
    if (flush)
        replica_request_sync(p, upto, NULL, NULL);
    else
        replica_leader_advance(p);
}

/* ---- the append path ----------------------------------------------------- */

static void append_locked(partition *p, const partition_append_req *rq, partition_append_res *out)
{
    int32_t epoch = atomic_load(&p->leader_epoch);
    txn_verdict v = {0};
    if (rq->first && rq->first->producer_id >= 0) {
        v = rq->first->control ? txn_state_check_marker(p->producers, rq->first,
                                                        batch_control_coordinator_epoch(rq->first))
                               : txn_state_check(p->producers, rq->first);
        if (v.err != KERR_NONE) {
            out->err = v.err;
            out->msg = v.msg;
            return;
        }
        if (v.duplicate) {
            out->duplicate = true;
            out->res.base_offset = v.first_offset;
            out->res.last_offset = v.last_offset;
            out->res.log_end_offset = v.last_offset + 1;
            out->res.log_start_offset = plog_log_start_offset(p->log);
            return;
        }
    }
    int rc = plog_append(p->log, rq->data, rq->len, epoch, &out->res);
    out->storage_rc = rc;
    if (rc != STORAGE_OK) {
        out->err = storage_kerr(rc);
        return;
    }
    if (rq->first && rq->first->producer_id >= 0)
        replica_apply_batch(p, rq->first, out->res.base_offset, out->res.last_offset);
}

void partition_append(partition *p, const partition_append_req *rq, partition_append_res *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&p->produce_lock);
    out->err = partition_check_leader(p, rq->expected_epoch);
    meta_t *meta = replica_meta(p->mgr);
    if (out->err == KERR_NONE && meta && meta_session_lost(meta))
        out->err = KERR_NOT_LEADER_OR_FOLLOWER; /* cut off from the controller: fenced by now */
    if (out->err == KERR_NONE && rq->acks == -1) {
        pthread_mutex_lock(&p->rlock);
        if (p->nisr < rq->min_isr)
            out->err = KERR_NOT_ENOUGH_REPLICAS;
        pthread_mutex_unlock(&p->rlock);
    }
    if (out->err == KERR_NONE)
        append_locked(p, rq, out);
    pthread_mutex_unlock(&p->produce_lock);
    if (out->err == KERR_NONE && !out->duplicate)
        replica_wake_log_end(p);
}

/* ---- followers, seen from the leader ---------------------------------- */

static void propose_isr(partition *p, const int32_t *isr, int32_t n);

/* Under rlock: a follower at or above the high watermark and the start of
 * this leader's epoch joins the ISR. */
static void maybe_grow(partition *p, replica_peer *r)
{
    if (ids_has(p->isr, p->nisr, r->id) || p->alter_inflight || clock_mono_ms() < p->alter_retry_ms)
        return;
    int32_t epoch;
    int64_t epoch_start;
    plog_latest_epoch(p->log, &epoch, &epoch_start);
    if (r->log_end < atomic_load(&p->high_watermark) ||
        (epoch == atomic_load(&p->leader_epoch) && r->log_end < epoch_start))
        return;
    int32_t isr[REPLICA_MAX], n = 0;
    for (int32_t i = 0; i < p->nisr; i++)
        isr[n++] = p->isr[i];
    isr[n++] = r->id;
    propose_isr(p, isr, n);
}

int16_t partition_follower_fetched(partition *p, int32_t replica_id, int64_t fetch_offset)
{
    pthread_mutex_lock(&p->rlock);
    replica_peer *r = atomic_load(&p->leading) ? peer_find(p, replica_id) : NULL;
    if (!r) {
        pthread_mutex_unlock(&p->rlock);
        return KERR_NOT_LEADER_OR_FOLLOWER;
    }
    int64_t now = clock_mono_ms(), leader_end = plog_log_end_offset(p->log);
    fetch_offset = MIN(fetch_offset, leader_end);
    /* Kafka's rule: caught up now when at the log end; caught up as of the
     * previous fetch when at the end that fetch saw. */
    if (fetch_offset >= leader_end)
        r->last_caught_up_ms = now;
    else if (fetch_offset >= r->last_fetch_leader_end)
        r->last_caught_up_ms = MAX(r->last_caught_up_ms, r->last_fetch_ms);
    r->log_end = fetch_offset;
    r->last_fetch_ms = now;
    r->last_fetch_leader_end = leader_end;
    maybe_grow(p, r);
    int64_t hw = hw_candidate(p);
    replica_raise_hw(p, hw);
    ack_park *ready = acks_take_upto(p, atomic_load(&p->high_watermark));
    pthread_mutex_unlock(&p->rlock);
    acks_run(ready, KERR_NONE, p);
    return KERR_NONE;
}

/* ---- ISR changes through the controller --------------------------------- */

typedef struct alter_call {
    partition *p;
    int32_t leader_epoch;
} alter_call;

/* Under rlock: adopt a committed ISR newer than ours. */
void replica_adopt_isr(partition *p, int32_t partition_epoch, const int32_t *isr, int32_t nisr)
{
    if (partition_epoch < p->partition_epoch || nisr > REPLICA_MAX)
        return;
    p->partition_epoch = partition_epoch;
    p->nisr = nisr;
    memcpy(p->isr, isr, (size_t)nisr * sizeof *isr);
}

static void alter_done(void *arg, int16_t err, int32_t leader_epoch, int32_t partition_epoch, const int32_t *isr,
                       int32_t nisr)
{
    alter_call *c = arg;
    partition *p = c->p;
    pthread_mutex_lock(&p->rlock);
    p->alter_inflight = false;
    if (err == KERR_NONE && leader_epoch == atomic_load(&p->leader_epoch))
        replica_adopt_isr(p, partition_epoch, isr, nisr);
    else if (err != KERR_NONE)
        p->alter_retry_ms = clock_mono_ms() + 500;
    pthread_mutex_unlock(&p->rlock);
    if (err != KERR_NONE && err != KERR_FENCED_LEADER_EPOCH && err != KERR_NOT_LEADER_OR_FOLLOWER)
        log_warn("replica", "ISR change refused topic=%s partition=%d err=%s", p->topic, p->index, kerr_name(err));
    replica_leader_advance(p); /* the ISR changed: the high watermark may move, parked acks may fail */
    partition_put(p);
    free(c);
}

static void propose_isr(partition *p, const int32_t *isr, int32_t n)
{
    meta_t *meta = replica_meta(p->mgr);
    if (!meta)
        return; /* not connected yet: the next fetch or tick proposes again */
    p->alter_inflight = true;
    p->npending_isr = n;
    memcpy(p->pending_isr, isr, (size_t)n * sizeof *isr);
    alter_call *c = xmalloc(sizeof *c);
    atomic_fetch_add(&p->refs, 1);
    *c = (alter_call){p, atomic_load(&p->leader_epoch)};
    log_info("replica", "ISR change proposed topic=%s partition=%d isr_size=%d->%d", p->topic, p->index, p->nisr, n);
    meta_alter_partition(meta, &p->topic_id, p->index, c->leader_epoch, p->partition_epoch, isr, n,
                         REPLICA_ALTER_TIMEOUT_MS, alter_done, c);
}

/* Under rlock: followers in the ISR that have not caught up within lag_ms. */
static void maybe_shrink(partition *p, int64_t now, int64_t lag_ms)
{
    if (p->alter_inflight || now < p->alter_retry_ms)
        return;
    int32_t isr[REPLICA_MAX], n = 0;
    for (int32_t i = 0; i < p->nisr; i++) {
        replica_peer *r = peer_find(p, p->isr[i]);
        if (r && now - r->last_caught_up_ms > lag_ms)
            continue;
        isr[n++] = p->isr[i];
    }
    if (n < p->nisr && n > 0)
        propose_isr(p, isr, n);
}

/* The ticker's visit: ISR shrinking and acks=all timeouts. */
void replica_leader_tick(partition *p, int64_t now, int64_t lag_ms)
{
    pthread_mutex_lock(&p->rlock);
    if (atomic_load(&p->leading))
        maybe_shrink(p, now, lag_ms);
    ack_park *late = acks_take_expired(p, now);
    pthread_mutex_unlock(&p->rlock);
    acks_run(late, KERR_REQUEST_TIMED_OUT, p);
}

/* Under rlock: this node now leads at epoch; every other replica starts
 * unknown and, if in the ISR, caught up as of now (Kafka's rule, so a new
 * leader does not shrink the ISR at once). */
void replica_become_leader(partition *p, int64_t now)
{
    p->npeers = 0;
    for (int32_t i = 0; i < p->nreplicas; i++) {
        if (p->replicas[i] == p->mgr_node_id)
            continue;
        p->peers[p->npeers++] = (replica_peer){.id = p->replicas[i], .log_end = -1, .last_caught_up_ms = now,
                                              .last_fetch_ms = 0, .last_fetch_leader_end = -1};
    }
    p->alter_inflight = false;
    p->alter_retry_ms = 0;
}

/* Debug check of the partition's invariants (tests and debug builds). */
void replica_check(partition *p)
{
    pthread_mutex_lock(&p->rlock);
    CK_ASSERT(atomic_load(&p->high_watermark) <= plog_log_end_offset(p->log) || plog_state(p->log) != STORAGE_OK);
    CK_ASSERT(p->nisr <= p->nreplicas || p->nreplicas == 0);
    for (int32_t i = 0; i < p->nisr; i++)
        CK_ASSERT(ids_has(p->replicas, p->nreplicas, p->isr[i]));
    if (atomic_load(&p->leading))
        CK_ASSERT(ids_has(p->isr, p->nisr, p->mgr_node_id) || p->nisr == 0);
    pthread_mutex_unlock(&p->rlock);
}
