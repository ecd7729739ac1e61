/* api_describe_transactions.c - DescribeTransactions (key 65) v0: the state
 * of transactional ids this node coordinates (kafka-transactions describe).
 * An id of a partition led elsewhere is NOT_COORDINATOR; an id nobody has
 * initialised, TRANSACTIONAL_ID_NOT_FOUND. An id needs DESCRIBE (else
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED); the topics of its transaction
 * listed are those the caller may DESCRIBE, as in Kafka. */
#include <string.h>

#include "broker/broker_int.h"

typedef DescribeTransactionsResponse_TransactionState txn_out;

typedef struct view_ctx {
    breq *r;
    const meta_image *img; /* the ACLs to filter the topics with */
    txn_out *out;
} view_ctx;

/* Under the coordinator lock: copy what the response needs. */
static void view(void *arg, const tcoord_txn *t)
{
    view_ctx *v = arg;
    txn_out *o = v->out;
    if (!t || t->m.producer_id < 0) {
        o->ErrorCode = KERR_TRANSACTIONAL_ID_NOT_FOUND;
        return;
    }
    o->TransactionState = kstr_from(tcoord_state_name(t->m.state));
    o->TransactionTimeoutMs = t->m.timeout_ms;
    o->TransactionStartTimeMs = t->m.start_ms;
    o->ProducerId = t->m.producer_id;
    o->ProducerEpoch = t->m.epoch;
    int32_t nt = 0;
    DescribeTransactionsResponse_TopicData *ts =
        breq_items(v->r, &DescribeTransactionsResponse_TopicData_desc, t->m.nparts);
    for (int32_t i = 0; i < t->m.nparts; i++) {
        const tcoord_tp *tp = &t->m.parts[i]; /* sorted: a topic's partitions are together */
        if (!broker_allowed_in(v->r, v->img, ACL_OP_DESCRIBE, ACL_RES_TOPIC, tp->topic, strlen(tp->topic)))
            continue;
        if (nt == 0 || strcmp(ts[nt - 1].Topic.ptr, tp->topic) != 0) {
            ts[nt].Topic = kstr_from(arena_strndup(&v->r->arena, tp->topic, strlen(tp->topic)));
            ts[nt].Partitions.items = arena_alloc(&v->r->arena, (size_t)t->m.nparts * sizeof(int32_t));
            nt++;
        }
        kint32_array_t *ps = &ts[nt - 1].Partitions;
        ps->items[ps->count++] = tp->partition;
    }
    o->Topics = (DescribeTransactionsResponse_TopicData_array){nt, ts};
}

breq_rc api_describe_transactions(breq *r)
{
    const DescribeTransactionsRequest *req = r->req;
    DescribeTransactionsResponse *resp = r->resp;
    int32_t n = MAX(req->TransactionalIds.count, 0);
    resp->TransactionStates.count = n;
    resp->TransactionStates.items = breq_items(r, &DescribeTransactionsResponse_TransactionState_desc, n);
    meta_image *img = meta_acquire(r->b->meta);
    for (int32_t i = 0; i < n; i++) {
        txn_out *o = &resp->TransactionStates.items[i];
        o->TransactionalId = req->TransactionalIds.items[i];
        o->TransactionState = KSTR_LIT("");
        if (!broker_allowed_in(r, img, ACL_OP_DESCRIBE, ACL_RES_TRANSACTIONAL_ID, o->TransactionalId.ptr,
                               (size_t)MAX(o->TransactionalId.len, 0))) {
            o->ErrorCode = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            continue;
        }
        view_ctx v = {r, img, o};
        int16_t err = tcoord_describe(r->b->txns, breq_strdup(r, o->TransactionalId), view, &v);
        if (err)
            o->ErrorCode = err;
    }
    meta_image_release(img);
    return BREQ_DONE;
}
