/* api_init_producer_id.c - InitProducerId (key 22) v0-v4 for idempotent
 * producers: a new producer id with epoch 0, taken from this node's block
 * of ids (txn.h; blocks come from the controller through the metadata log).
 *
 * With ProducerId and ProducerEpoch set (v3+, KIP-360) the producer asks to
 * bump its epoch: an id this cluster issued gets epoch + 1, unless a
 * partition here has already seen a newer epoch for it (the caller is
 * fenced: PRODUCER_FENCED on v4+, INVALID_PRODUCER_EPOCH before), or the
 * epoch is exhausted (then a new id). An id never issued gets a new id.
 *
 * Transactions are not available: a transactional id is answered with
 * COORDINATOR_NOT_AVAILABLE, as Kafka does while it cannot serve
 * transactions (clients retry until their own timeout); an empty one is
 * INVALID_REQUEST. */
#include <string.h>

#include "base/log.h"
#include "broker/broker_int.h"

enum { FENCED_ERROR_VERSION = 4 }; /* PRODUCER_FENCED from this version on */

typedef struct pid_wait {
    txn_pid_waiter w;
    breq *r;
} pid_wait;

static void block_allocated(void *arg, int16_t err, int64_t first, int32_t count);

/* txn_block_request_fn: the controller reserves the block. */
static void request_block(void *ctx, txn_pids *pids, int32_t count)
{
    broker *b = ctx;
    CK_ASSERT(pids == &b->pids);
    meta_alloc_producer_ids(b->meta, count, block_allocated, b);
}

static void block_allocated(void *arg, int16_t err, int64_t first, int32_t count)
{
    broker *b = arg;
    if (err != KERR_NONE)
        log_warn("txn", "cannot allocate producer ids err=%s", kerr_name(err));
    else
        log_info("txn", "producer id block allocated first=%lld count=%d", (long long)first, count);
    txn_pids_block_done(&b->pids, err, first, count, request_block, b);
}

static void answer(InitProducerIdResponse *resp, int16_t err, int64_t id, int16_t epoch)
{
    resp->ErrorCode = err;
    resp->ProducerId = err == KERR_NONE ? id : -1;
    resp->ProducerEpoch = err == KERR_NONE ? epoch : -1;
}

/* txn_pid_fn: a block arrived (any thread). An allocation failure is
 * retriable for the client. */
static void pid_ready(void *arg, int16_t err, int64_t id)
{
    breq *r = arg;
    answer(r->resp, err == KERR_NONE ? KERR_NONE : KERR_COORDINATOR_LOAD_IN_PROGRESS, id, 0);
    breq_finish(r);
}

static breq_rc new_id(breq *r)
{
    pid_wait *pw = arena_alloc(&r->arena, sizeof *pw);
    pw->w.fn = pid_ready;
    pw->w.arg = r;
    pw->r = r;
    int64_t id;
    if (!txn_pids_next(&r->b->pids, request_block, r->b, &pw->w, &id))
        return BREQ_PARKED;
    answer(r->resp, KERR_NONE, id, 0);
    return BREQ_DONE;
}

typedef struct epoch_scan {
    int64_t producer_id;
    int16_t max_epoch;
} epoch_scan;

static void scan_partition(void *arg, partition *p)
{
    epoch_scan *es = arg;
    pthread_mutex_lock(&p->produce_lock);
    int16_t e = txn_state_epoch(p->producers, es->producer_id);
    pthread_mutex_unlock(&p->produce_lock);
    es->max_epoch = MAX(es->max_epoch, e);
}

static breq_rc bump_epoch(breq *r, int64_t producer_id, int16_t epoch)
{
    meta_image *img = meta_acquire(r->b->meta);
    bool issued = producer_id < img->next_producer_id;
    meta_image_release(img);
    if (!issued || epoch >= TXN_EPOCH_EXHAUSTED)
        return new_id(r);
    epoch_scan es = {producer_id, -1};
    replica_each(r->b->replicas, scan_partition, &es);
    if (es.max_epoch > epoch) {
        answer(r->resp,
               r->hdr.api_version >= FENCED_ERROR_VERSION ? KERR_PRODUCER_FENCED
                                                          : KERR_INVALID_PRODUCER_EPOCH,
               -1, -1);
        return BREQ_DONE;
    }
    answer(r->resp, KERR_NONE, producer_id, (int16_t)(epoch + 1));
    return BREQ_DONE;
}

breq_rc api_init_producer_id(breq *r)
{
    const InitProducerIdRequest *req = r->req;
    if (!kstr_is_null(req->TransactionalId)) {
        answer(r->resp,
               req->TransactionalId.len == 0 ? KERR_INVALID_REQUEST
                                             : KERR_COORDINATOR_NOT_AVAILABLE,
               -1, -1);
        return BREQ_DONE;
    }
    if (r->hdr.api_version >= 3 && req->ProducerId >= 0 && req->ProducerEpoch >= 0)
        return bump_epoch(r, req->ProducerId, req->ProducerEpoch);
    return new_id(r);
}
