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
 * With a transactional id the transaction coordinator answers (tcoord.h):
 * it is given a fresh id from the same blocks (used when the id is new or
 * its epoch is exhausted, else left unused) and bumps the id's epoch,
 * aborting a transaction the previous producer left open first. An empty
 * transactional id is INVALID_REQUEST. Also starts the node's transaction
 * coordinator (broker_txns_start). */
#include <string.h>

#include "base/log.h"
#include "broker/broker_int.h"

enum { FENCED_ERROR_VERSION = 4 }; /* PRODUCER_FENCED from this version on */

typedef struct pid_wait {
    txn_pid_waiter w;
    breq *r;
    broker_pid_fn fn;
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

int16_t broker_fenced_error(const breq *r, int16_t err, int16_t fenced_version)
{
    return err == KERR_PRODUCER_FENCED && r->hdr.api_version < fenced_version ? KERR_INVALID_PRODUCER_EPOCH : err;
}

/* txn_pid_fn: a block arrived (any thread). An allocation failure is
 * retriable for the client. */
static void pid_ready(void *arg, int16_t err, int64_t id)
{
    pid_wait *pw = arg;
    pw->fn(pw->r, err == KERR_NONE ? KERR_NONE : KERR_COORDINATOR_LOAD_IN_PROGRESS, id);
}

breq_rc broker_new_producer_id(breq *r, broker_pid_fn fn)
{
    pid_wait *pw = arena_alloc(&r->arena, sizeof *pw);
    pw->w.fn = pid_ready;
    pw->w.arg = pw;
    pw->r = r;
    pw->fn = fn;
    int64_t id;
    if (txn_pids_next(&r->b->pids, request_block, r->b, &pw->w, &id))
        fn(r, KERR_NONE, id);
    return BREQ_PARKED;
}

static void idempotent_id(breq *r, int16_t err, int64_t id)
{
    answer(r->resp, err, id, 0);
    breq_finish(r);
}

static breq_rc new_id(breq *r) { return broker_new_producer_id(r, idempotent_id); }

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

/* ---- transactional producers ------------------------------------------------- */

tcoord *broker_txns_start(broker *b)
{
    const config *cfg = &b->cfg;
    tcoord_config tc = {
        .partitions = cfg->txn_state_log_num_partitions,
        .replication_factor = cfg->txn_state_log_replication_factor,
        .min_isr = cfg->txn_state_log_min_isr,
        .max_timeout_ms = cfg->txn_max_timeout_ms,
        .id_expiration_ms = cfg->txn_id_expiration_ms,
        .abort_check_ms = cfg->txn_abort_check_ms,
        .expire_check_ms = cfg->txn_expire_check_ms,
        .node_id = cfg->node_id,
    };
    return tcoord_start(&tc, b->meta, b->replicas);
}

static void txn_done(void *arg, int16_t err, int64_t producer_id, int16_t epoch)
{
    breq *r = arg;
    answer(r->resp, broker_fenced_error(r, err, FENCED_ERROR_VERSION), producer_id, epoch);
    breq_finish(r);
}

static void txn_fresh_id(breq *r, int16_t err, int64_t id)
{
    const InitProducerIdRequest *req = r->req;
    if (err) {
        txn_done(r, err, -1, -1);
        return;
    }
    char *txn_id = arena_strndup(&r->arena, req->TransactionalId.ptr, (size_t)req->TransactionalId.len);
    int64_t pid = r->hdr.api_version >= 3 ? req->ProducerId : -1;
    int16_t epoch = r->hdr.api_version >= 3 ? req->ProducerEpoch : -1;
    tcoord_init_pid(r->b->txns, txn_id, req->TransactionTimeoutMs, pid, epoch, id, txn_done, r);
}

breq_rc api_init_producer_id(breq *r)
{
    const InitProducerIdRequest *req = r->req;
    if (!kstr_is_null(req->TransactionalId)) {
        if (req->TransactionalId.len == 0) {
            answer(r->resp, KERR_INVALID_REQUEST, -1, -1);
            return BREQ_DONE;
        }
        int16_t denied = broker_txn_denied(r, req->TransactionalId);
        if (denied != KERR_NONE) {
            answer(r->resp, denied, -1, -1);
            return BREQ_DONE;
        }
    } else if (broker_cluster_denied(r, ACL_OP_IDEMPOTENT_WRITE) != KERR_NONE &&
               !broker_allowed_any(r, ACL_OP_WRITE, ACL_RES_TOPIC)) {
        answer(r->resp, KERR_CLUSTER_AUTHORIZATION_FAILED, -1, -1); /* Kafka: or WRITE on any topic */
        return BREQ_DONE;
    }
    if (!kstr_is_null(req->TransactionalId)) {
        return broker_new_producer_id(r, txn_fresh_id);
    }
    if (r->hdr.api_version >= 3 && req->ProducerId >= 0 && req->ProducerEpoch >= 0)
        return bump_epoch(r, req->ProducerId, req->ProducerEpoch);
    return new_id(r);
}
