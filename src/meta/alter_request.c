/*
 * alter_request.c - this node's ISR changes on their way to the controller
 * (meta_alter_partition, meta.h): the broker side of AlterPartition.
 *
 * One thread per node (the AlterPartition thread) owns a list of requests.
 * Each request goes through:
 *   DUE       waiting to be sent (at due_ms);
 *   SENT      at the controller: this node's own controller thread as a
 *             META_OP_ALTER_PARTITION op when this node leads the quorum,
 *             else one AlterPartition request (v2, or v3 with every
 *             member's broker epoch -1: unknown) to the leader's controller
 *             listener carrying every request due at that moment, over the
 *             quorum's kclient to that voter;
 *   ANSWERED  the controller's answer (or a transport error) is in;
 *   SEEN      a success waiting until this node's published image holds
 *             the partition at the answered partition epoch (woken by each
 *             publish: meta_ap_published), or the topic is gone.
 * NOT_CONTROLLER, NETWORK_EXCEPTION, REQUEST_TIMED_OUT and an unknown
 * controller send the request again after AP_RETRY_MS while its deadline
 * (timeout_ms after the call) has not passed; the sender's broker epoch is
 * taken anew each time. Every other answer, and any answer at the deadline,
 * is delivered: done runs once, on this thread, outside the lock.
 *
 * Shutdown: meta_ap_stop joins the thread (before the controller thread
 * stops, so no op of ours is queued after it); meta_ap_free, once the
 * quorum's clients are freed (their callbacks have run), answers what is
 * left with REQUEST_TIMED_OUT and frees it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"

#define AP_RETRY_MS 100
#define AP_BATCH_MAX 512 /* partitions per AlterPartition request */
#define AP_SEND_TIMEOUT_MS 30000
#define API_ALTER_PARTITION 56

typedef enum { AP_DUE, AP_SENT, AP_ANSWERED, AP_SEEN } ap_state;

typedef struct ap_req {
    struct ap_req *next;
    ap_state state;
    kuuid_t topic_id;
    int32_t index, leader_epoch, partition_epoch, nisr;
    int32_t *isr;
    int64_t deadline_ms, due_ms;
    int16_t err;
    int32_t out_leader_epoch, out_partition_epoch, out_nisr;
    int32_t *out_isr;
    meta_alter_partition_fn done;
    void *arg;
} ap_req;

struct meta_ap {
    meta_t *m;
    int32_t node_id;
    qnet_t *qnet;
    pthread_mutex_t mu;       /* everything below */
    pthread_cond_t cv;
    ap_req *head;
    bool kicked;              /* something changed since the thread last looked */
    bool stopping, started;
    pthread_t thread;
};

meta_ap *meta_ap_new(meta_t *m, int32_t node_id)
{
    meta_ap *ap = xcalloc(1, sizeof *ap);
    ap->m = m;
    ap->node_id = node_id;
    pthread_mutex_init(&ap->mu, NULL);
    pthread_cond_init(&ap->cv, NULL);
    return ap;
}

static void kick_locked(meta_ap *ap)
{
    ap->kicked = true;
    pthread_cond_signal(&ap->cv);
}

void meta_ap_published(meta_ap *ap)
{
    pthread_mutex_lock(&ap->mu);
    if (ap->head) /* with nothing in flight no image can finish anything: no wake-up per publish */
        kick_locked(ap);
    pthread_mutex_unlock(&ap->mu);
}

/* Record the controller's answer to q (any thread). */
static void answered(meta_ap *ap, ap_req *q, int16_t err, int32_t leader_epoch, int32_t partition_epoch,
                     const int32_t *isr, int32_t nisr)
{
    pthread_mutex_lock(&ap->mu);
    CK_ASSERT(q->state == AP_SENT);
    q->state = AP_ANSWERED;
    q->err = err;
    if (err == KERR_NONE) {
        q->out_leader_epoch = leader_epoch;
        q->out_partition_epoch = partition_epoch;
        free(q->out_isr);
        q->out_isr = xmalloc((size_t)(nisr > 0 ? nisr : 1) * sizeof *q->out_isr);
        q->out_nisr = MAX(nisr, 0);
        if (nisr > 0)
            memcpy(q->out_isr, isr, (size_t)nisr * sizeof *isr);
    }
    kick_locked(ap);
    pthread_mutex_unlock(&ap->mu);
}

/* ---- at this node's own controller ------------------------------------------ */

typedef struct ap_local {
    meta_ap *ap;
    ap_req *q;
    meta_op *op;
} ap_local;

static void local_done(void *arg, int16_t err, const char *msg)
{
    ap_local *l = arg;
    const meta_alter_op *a = &l->op->alter;
    UNUSED(msg);
    answered(l->ap, l->q, err, a->out_leader_epoch, a->out_partition_epoch, a->out_isr, a->out_nisr);
    free(l);
}

static void send_local(meta_ap *ap, ap_req *q)
{
    meta_op *op = meta_op_new(META_OP_ALTER_PARTITION, NULL, 0);
    op->topic_id = q->topic_id;
    meta_alter_op *a = &op->alter;
    a->index = q->index;
    a->broker_id = ap->node_id;
    a->broker_epoch = meta_broker_epoch(ap->m);
    a->leader_epoch = q->leader_epoch;
    a->partition_epoch = q->partition_epoch;
    a->nisr = q->nisr;
    a->isr = xmalloc((size_t)(q->nisr ? q->nisr : 1) * sizeof *a->isr);
    memcpy(a->isr, q->isr, (size_t)q->nisr * sizeof *a->isr);
    a->ineligible_v1 = true;
    ap_local *l = xmalloc(sizeof *l);
    *l = (ap_local){ap, q, op};
    op->done = local_done;
    op->arg = l;
    meta_submit(ap->m, op);
}

/* ---- at another node's controller --------------------------------------------- */

typedef struct ap_batch {
    meta_ap *ap;
    int n;
    ap_req *reqs[AP_BATCH_MAX];
} ap_batch;

static void batch_fail(ap_batch *b, int16_t err)
{
    for (int i = 0; i < b->n; i++)
        answered(b->ap, b->reqs[i], err, -1, -1, NULL, 0);
    free(b);
}

/* The answer to request i of the batch: the response keeps the order. */
static void batch_one(ap_batch *b, int i, const AlterPartitionResponse *r)
{
    ap_req *q = b->reqs[i];
    const AlterPartitionResponse_TopicData *t = i < r->Topics.count ? &r->Topics.items[i] : NULL;
    const AlterPartitionResponse_PartitionData *p = t && t->Partitions.count == 1 ? &t->Partitions.items[0] : NULL;
    if (r->ErrorCode != KERR_NONE || !p || p->PartitionIndex != q->index ||
        memcmp(t->TopicId.b, q->topic_id.b, 16) != 0)
        answered(b->ap, q, r->ErrorCode != KERR_NONE ? r->ErrorCode : KERR_UNKNOWN_SERVER_ERROR, -1, -1, NULL, 0);
    else
        answered(b->ap, q, p->ErrorCode, p->LeaderEpoch, p->PartitionEpoch, p->Isr.items, p->Isr.count);
}

static void batch_answered(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    ap_batch *b = arg;
    UNUSED(resp);
    if (err != KCLIENT_OK || !response) {
        batch_fail(b, err != KCLIENT_OK ? kclient_err_kafka(err) : KERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    for (int i = 0; i < b->n; i++)
        batch_one(b, i, response);
    free(b);
}

static void fill_partition(AlterPartitionRequest_PartitionData *p, const ap_req *q, int16_t v, arena_t *a)
{
    memset(p, 0, sizeof *p);
    p->PartitionIndex = q->index;
    p->LeaderEpoch = q->leader_epoch;
    p->PartitionEpoch = q->partition_epoch;
    p->NewIsr = (kint32_array_t){q->nisr, q->isr};
    p->NewIsrWithEpochs.count = v >= 3 ? q->nisr : 0;
    p->NewIsrWithEpochs.items = arena_alloc(a, (size_t)(q->nisr + 1) * sizeof *p->NewIsrWithEpochs.items);
    for (int32_t i = 0; v >= 3 && i < q->nisr; i++)
        p->NewIsrWithEpochs.items[i] = (AlterPartitionRequest_BrokerState){q->isr[i], -1};
}

static int send_batch(meta_ap *ap, kclient_t *c, ap_batch *b)
{
    int16_t v = kclient_api_version(c, API_ALTER_PARTITION) >= 3 ? 3 : 2;
    arena_t a;
    arena_init(&a);
    AlterPartitionRequest req = {.BrokerId = ap->node_id, .BrokerEpoch = meta_broker_epoch(ap->m)};
    req.Topics.count = b->n;
    req.Topics.items = arena_alloc(&a, (size_t)b->n * sizeof *req.Topics.items);
    int64_t timeout_ms = AP_SEND_TIMEOUT_MS, now = clock_mono_ms();
    for (int i = 0; i < b->n; i++) {
        AlterPartitionRequest_TopicData *t = &req.Topics.items[i];
        memset(t, 0, sizeof *t);
        t->TopicId = b->reqs[i]->topic_id;
        t->Partitions.count = 1;
        t->Partitions.items = arena_alloc(&a, sizeof *t->Partitions.items);
        fill_partition(t->Partitions.items, b->reqs[i], v, &a);
        timeout_ms = MIN(timeout_ms, MAX(b->reqs[i]->deadline_ms - now, AP_RETRY_MS));
    }
    int rc = kclient_send(c, API_ALTER_PARTITION, v, &req, (uint32_t)timeout_ms, batch_answered, b);
    arena_free(&a);
    return rc;
}

/* Send the due requests taken off the list (marked SENT) to the controller. */
static void send_due(meta_ap *ap, ap_batch *b)
{
    int32_t leader = meta_controller_id(ap->m);
    if (leader == ap->node_id) {
        for (int i = 0; i < b->n; i++)
            send_local(ap, b->reqs[i]);
        free(b);
        return;
    }
    kclient_t *c = leader >= 0 && ap->qnet ? qnet_client(ap->qnet, leader) : NULL;
    int rc = c ? send_batch(ap, c, b) : KCLIENT_ERR_CLOSED;
    if (rc != KCLIENT_OK)
        batch_fail(b, c ? kclient_err_kafka(rc) : KERR_NOT_CONTROLLER);
}

/* ---- the thread ---------------------------------------------------------------- */

static bool retriable(int16_t err)
{
    return err == KERR_NOT_CONTROLLER || err == KERR_NETWORK_EXCEPTION || err == KERR_REQUEST_TIMED_OUT;
}

/* The image shows q's answer (or the partition is gone). */
static bool seen(const meta_image *img, const ap_req *q)
{
    const meta_topic *t = meta_image_topic_by_id(img, &q->topic_id);
    return !t || q->index >= t->npartitions || t->partitions[q->index].partition_epoch >= q->out_partition_epoch;
}

static void req_free(ap_req *q)
{
    free(q->isr);
    free(q->out_isr);
    free(q);
}

static void deliver(ap_req *q)
{
    if (q->err == KERR_NONE)
        q->done(q->arg, KERR_NONE, q->out_leader_epoch, q->out_partition_epoch, q->out_isr, q->out_nisr);
    else
        q->done(q->arg, q->err, -1, -1, NULL, 0);
    req_free(q);
}

/* The next state of an answered request; true when it is to be delivered. */
static bool after_answer(ap_req *q, const meta_image *img, int64_t now)
{
    if (q->state == AP_ANSWERED && retriable(q->err) && now < q->deadline_ms) {
        q->state = AP_DUE;
        q->due_ms = now + AP_RETRY_MS;
        return false;
    }
    if (q->state == AP_ANSWERED && q->err == KERR_NONE)
        q->state = AP_SEEN;
    if (q->state == AP_SEEN && !seen(img, q) && now < q->deadline_ms)
        return false;
    return true;
}

/* One look at the list (under mu): answered requests move on, finished ones
 * go to *ready, due ones to b; the time of the next due one. */
static int64_t sweep_locked(meta_ap *ap, const meta_image *img, ap_req **ready, ap_batch *b)
{
    int64_t now = clock_mono_ms(), wake = now + 1000;
    for (ap_req **pp = &ap->head, *q; (q = *pp);) {
        bool finished = (q->state == AP_ANSWERED || q->state == AP_SEEN) && after_answer(q, img, now);
        if (finished) {
            *pp = q->next;
            q->next = *ready;
            *ready = q;
            continue;
        }
        if (q->state == AP_SEEN)
            wake = MIN(wake, q->deadline_ms);
        if (q->state == AP_DUE && q->due_ms <= now && b->n < AP_BATCH_MAX) {
            q->state = AP_SENT;
            b->reqs[b->n++] = q;
        } else if (q->state == AP_DUE) {
            wake = MIN(wake, q->due_ms);
        }
        pp = &q->next;
    }
    return wake;
}

static void *ap_thread(void *arg)
{
    meta_ap *ap = arg;
    pthread_mutex_lock(&ap->mu);
    while (!ap->stopping) {
        ap->kicked = false;
        pthread_mutex_unlock(&ap->mu);
        meta_image *img = meta_acquire(ap->m);
        ap_batch *b = xcalloc(1, sizeof *b);
        b->ap = ap;
        ap_req *ready = NULL;
        pthread_mutex_lock(&ap->mu);
        int64_t wake = sweep_locked(ap, img, &ready, b);
        pthread_mutex_unlock(&ap->mu);
        meta_image_release(img);
        for (ap_req *q, *next = ready; (q = next);) {
            next = q->next;
            deliver(q);
        }
        if (b->n > 0)
            send_due(ap, b);
        else
            free(b);
        pthread_mutex_lock(&ap->mu);
        if (!ap->kicked && !ap->stopping && !ready && clock_mono_ms() < wake) {
            struct timespec ts = clock_abstime_after_ms(wake - clock_mono_ms());
            pthread_cond_timedwait(&ap->cv, &ap->mu, &ts);
        }
    }
    pthread_mutex_unlock(&ap->mu);
    return NULL;
}

void meta_ap_start(meta_ap *ap, qnet_t *qnet)
{
    ap->qnet = qnet;
    ap->started = true;
    if (pthread_create(&ap->thread, NULL, ap_thread, ap) != 0)
        CK_PANIC("cannot start the AlterPartition thread");
}

void meta_ap_stop(meta_ap *ap)
{
    pthread_mutex_lock(&ap->mu);
    ap->stopping = true;
    pthread_cond_signal(&ap->cv);
    pthread_mutex_unlock(&ap->mu);
    if (ap->started)
        pthread_join(ap->thread, NULL);
    ap->started = false;
}

void meta_ap_free(meta_ap *ap)
{
    if (!ap)
        return;
    meta_ap_stop(ap);
    for (ap_req *q, *next = ap->head; (q = next);) {
        next = q->next;
        CK_ASSERT(q->state != AP_SENT); /* local ops ran with the controller thread, remote ones with qnet_free */
        q->err = KERR_REQUEST_TIMED_OUT;
        deliver(q);
    }
    pthread_mutex_destroy(&ap->mu);
    pthread_cond_destroy(&ap->cv);
    free(ap);
}

void meta_alter_partition(meta_t *m, const kuuid_t *topic_id, int32_t index, int32_t leader_epoch,
                          int32_t partition_epoch, const int32_t *isr, int32_t nisr, int64_t timeout_ms,
                          meta_alter_partition_fn done, void *arg)
{
    CK_ASSERT(nisr >= 0 && done);
    meta_ap *ap = meta_ap_of(m);
    ap_req *q = xcalloc(1, sizeof *q);
    *q = (ap_req){.state = AP_DUE, .topic_id = *topic_id, .index = index, .leader_epoch = leader_epoch,
                  .partition_epoch = partition_epoch, .nisr = nisr, .done = done, .arg = arg};
    q->isr = xmalloc((size_t)(nisr ? nisr : 1) * sizeof *q->isr);
    if (nisr)
        memcpy(q->isr, isr, (size_t)nisr * sizeof *isr);
    q->due_ms = clock_mono_ms();
    q->deadline_ms = q->due_ms + MAX(timeout_ms, 0);
    pthread_mutex_lock(&ap->mu);
    ap_req **pp = &ap->head;
    while (*pp) /* in call order */
        pp = &(*pp)->next;
    *pp = q;
    kick_locked(ap);
    pthread_mutex_unlock(&ap->mu);
}
