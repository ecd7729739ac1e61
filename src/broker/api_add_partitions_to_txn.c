/* api_add_partitions_to_txn.c - AddPartitionsToTxn (key 24) v0-v4: a
 * transactional producer names the partitions it is about to write
 * (tcoord_add; answered once the Ongoing state is durable). v0-v3 carry
 * one transaction; v4 (KIP-890, sent by brokers) carries several, each
 * either added or, with VerifyOnly, only checked: NONE when the partition
 * is in the producer's ongoing transaction, else why not. A partition of
 * an unknown topic is UNKNOWN_TOPIC_OR_PARTITION and the others of its
 * transaction OPERATION_NOT_ATTEMPTED. PRODUCER_FENCED is
 * INVALID_PRODUCER_EPOCH before v2.
 *
 * Authorization, as Kafka: v0-v3 need WRITE on the transactional id (else
 * every partition TRANSACTIONAL_ID_AUTHORIZATION_FAILED), v4 (from brokers)
 * CLUSTER_ACTION (else every partition CLUSTER_AUTHORIZATION_FAILED); the
 * partitions of a topic without WRITE get TOPIC_AUTHORIZATION_FAILED and
 * the others of their transaction OPERATION_NOT_ATTEMPTED. */
#include <stdatomic.h>
#include <string.h>

#include "broker/broker_int.h"

enum { FENCED_ERROR_VERSION = 2 };

typedef AddPartitionsToTxnRequest_AddPartitionsToTxnTopic_array req_topics;
typedef AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult_array resp_topics;

typedef struct add_ctx {
    breq *r;
    _Atomic int pending;       /* transactions still being added, + 1 while starting */
} add_ctx;

typedef struct add_one {
    add_ctx *ctx;
    resp_topics *res;
} add_one;

/* Results mirroring the request's topics, every error NONE. */
static void results_for(breq *r, const req_topics *topics, resp_topics *res)
{
    int32_t nt = MAX(topics->count, 0);
    res->count = nt;
    res->items = breq_items(r, &AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult_desc, nt);
    for (int32_t i = 0; i < nt; i++) {
        const AddPartitionsToTxnRequest_AddPartitionsToTxnTopic *t = &topics->items[i];
        int32_t np = MAX(t->Partitions.count, 0);
        res->items[i].Name = t->Name;
        res->items[i].ResultsByPartition.count = np;
        res->items[i].ResultsByPartition.items =
            breq_items(r, &AddPartitionsToTxnResponse_AddPartitionsToTxnPartitionResult_desc, np);
        for (int32_t j = 0; j < np; j++)
            res->items[i].ResultsByPartition.items[j].PartitionIndex = t->Partitions.items[j];
    }
}

/* Every partition still at NONE gets err. */
static void fill(resp_topics *res, int16_t err)
{
    for (int32_t i = 0; i < res->count; i++)
        for (int32_t j = 0; j < res->items[i].ResultsByPartition.count; j++)
            if (res->items[i].ResultsByPartition.items[j].PartitionErrorCode == KERR_NONE)
                res->items[i].ResultsByPartition.items[j].PartitionErrorCode = err;
}

/* The request's partitions as tcoord_tp; -1 (with the errors filled) when
 * one of them may not be written or does not exist. */
static int32_t collect(breq *r, const req_topics *topics, resp_topics *res, tcoord_tp **out)
{
    int32_t n = 0, bad = 0;
    for (int32_t i = 0; i < res->count; i++)
        n += res->items[i].ResultsByPartition.count;
    tcoord_tp *tps = arena_alloc(&r->arena, (size_t)MAX(n, 1) * sizeof *tps);
    meta_image *img = meta_acquire(r->b->meta);
    n = 0;
    for (int32_t i = 0; i < res->count; i++) {
        const meta_topic *mt = topics->items[i].Name.len > 0
                                   ? meta_image_topic(img, topics->items[i].Name.ptr, (size_t)topics->items[i].Name.len)
                                   : NULL;
        char *name = breq_strdup(r, topics->items[i].Name);
        int16_t denied = broker_topic_denied(r, img, ACL_OP_WRITE, topics->items[i].Name);
        for (int32_t j = 0; j < res->items[i].ResultsByPartition.count; j++) {
            AddPartitionsToTxnResponse_AddPartitionsToTxnPartitionResult *pr = &res->items[i].ResultsByPartition.items[j];
            if (denied || !mt || pr->PartitionIndex < 0 || pr->PartitionIndex >= mt->npartitions) {
                pr->PartitionErrorCode = denied ? denied : KERR_UNKNOWN_TOPIC_OR_PARTITION;
                bad++;
            }
            tps[n++] = (tcoord_tp){name, pr->PartitionIndex};
        }
    }
    meta_image_release(img);
    *out = tps;
    if (bad)
        fill(res, KERR_OPERATION_NOT_ATTEMPTED);
    return bad ? -1 : n;
}

static void one_done(void *arg, int16_t err, int64_t producer_id, int16_t epoch)
{
    (void)producer_id;
    (void)epoch;
    add_one *o = arg;
    add_ctx *ctx = o->ctx;
    fill(o->res, broker_fenced_error(ctx->r, err, FENCED_ERROR_VERSION));
    if (atomic_fetch_sub(&ctx->pending, 1) == 1)
        breq_finish(ctx->r);
}

/* One transaction: added (answered through one_done) or verified now. */
static void one(add_ctx *ctx, kstr_t id, int64_t pid, int16_t epoch, bool verify, const req_topics *topics,
                resp_topics *res)
{
    breq *r = ctx->r;
    results_for(r, topics, res);
    int16_t denied = r->hdr.api_version < 4 ? broker_txn_denied(r, id)
                     : broker_allowed_cluster_action(r) ? KERR_NONE
                                                        : KERR_CLUSTER_AUTHORIZATION_FAILED;
    if (denied != KERR_NONE) {
        fill(res, denied);
        return;
    }
    tcoord_tp *tps;
    int32_t n = collect(r, topics, res, &tps);
    if (n < 0)
        return;
    const char *txn_id = breq_strdup(r, id);
    if (verify) {
        int16_t *errs = arena_alloc(&r->arena, (size_t)MAX(n, 1) * sizeof *errs);
        tcoord_verify(r->b->txns, txn_id, pid, epoch, tps, n, errs);
        for (int32_t i = 0, k = 0; i < res->count; i++)
            for (int32_t j = 0; j < res->items[i].ResultsByPartition.count; j++)
                res->items[i].ResultsByPartition.items[j].PartitionErrorCode = errs[k++];
        return;
    }
    add_one *o = arena_alloc(&r->arena, sizeof *o);
    *o = (add_one){ctx, res};
    atomic_fetch_add(&ctx->pending, 1);
    tcoord_add(r->b->txns, txn_id, pid, epoch, tps, n, one_done, o);
}

breq_rc api_add_partitions_to_txn(breq *r)
{
    const AddPartitionsToTxnRequest *req = r->req;
    AddPartitionsToTxnResponse *resp = r->resp;
    add_ctx *ctx = arena_alloc(&r->arena, sizeof *ctx);
    ctx->r = r;
    atomic_init(&ctx->pending, 1);
    if (r->hdr.api_version < 4) {
        one(ctx, req->V3AndBelowTransactionalId, req->V3AndBelowProducerId, req->V3AndBelowProducerEpoch, false,
            &req->V3AndBelowTopics, &resp->ResultsByTopicV3AndBelow);
    } else {
        int32_t n = MAX(req->Transactions.count, 0);
        resp->ResultsByTransaction.count = n;
        resp->ResultsByTransaction.items = breq_items(r, &AddPartitionsToTxnResponse_AddPartitionsToTxnResult_desc, n);
        for (int32_t i = 0; i < n; i++) {
            const AddPartitionsToTxnRequest_AddPartitionsToTxnTransaction *t = &req->Transactions.items[i];
            resp->ResultsByTransaction.items[i].TransactionalId = t->TransactionalId;
            one(ctx, t->TransactionalId, t->ProducerId, t->ProducerEpoch, t->VerifyOnly, &t->Topics,
                &resp->ResultsByTransaction.items[i].TopicResults);
        }
    }
    if (atomic_fetch_sub(&ctx->pending, 1) == 1)
        return BREQ_DONE;
    return BREQ_PARKED; /* the last one_done answers */
}
