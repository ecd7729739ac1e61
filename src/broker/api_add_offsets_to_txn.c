/* api_add_offsets_to_txn.c - AddOffsetsToTxn (key 25) v0-v4: a
 * transactional producer is about to commit a group's offsets within its
 * transaction (TxnOffsetCommit, KIP-447), so the group's partition of
 * __consumer_offsets joins the transaction and gets its marker at the end.
 * __consumer_offsets is created first when it does not exist yet.
 * PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2. It needs WRITE on
 * the transactional id and READ on the group (else
 * TRANSACTIONAL_ID_ or GROUP_AUTHORIZATION_FAILED). */
#include <string.h>

#include "broker/broker_int.h"

enum { FENCED_ERROR_VERSION = 2 };

static void added(void *arg, int16_t err, int64_t producer_id, int16_t epoch)
{
    (void)producer_id;
    (void)epoch;
    breq *r = arg;
    ((AddOffsetsToTxnResponse *)r->resp)->ErrorCode = broker_fenced_error(r, err, FENCED_ERROR_VERSION);
    breq_finish(r);
}

static breq_rc add(breq *r)
{
    const AddOffsetsToTxnRequest *req = r->req;
    int32_t n = meta_topic_partitions(r->b->meta, GROUP_TOPIC);
    if (n <= 0) {
        ((AddOffsetsToTxnResponse *)r->resp)->ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
        return BREQ_DONE;
    }
    tcoord_tp tp = {(char *)GROUP_TOPIC,
                    group_rec_partition(req->GroupId.ptr ? req->GroupId.ptr : "", (size_t)MAX(req->GroupId.len, 0), n)};
    tcoord_add(r->b->txns, breq_strdup(r, req->TransactionalId), req->ProducerId, req->ProducerEpoch, &tp, 1, added,
               r);
    return BREQ_PARKED;
}

static void on_ready(void *arg, int16_t err)
{
    (void)err; /* add() sees whether the topic is there */
    breq_resume(arg, add);
}

breq_rc api_add_offsets_to_txn(breq *r)
{
    const AddOffsetsToTxnRequest *req = r->req;
    int16_t denied = broker_txn_denied(r, req->TransactionalId);
    if (denied == KERR_NONE)
        denied = broker_group_denied(r, ACL_OP_READ, req->GroupId);
    if (denied != KERR_NONE) {
        ((AddOffsetsToTxnResponse *)r->resp)->ErrorCode = denied;
        return BREQ_DONE;
    }
    if (req->GroupId.len <= 0) {
        ((AddOffsetsToTxnResponse *)r->resp)->ErrorCode = KERR_INVALID_GROUP_ID;
        return BREQ_DONE;
    }
    if (!group_coord_ensure(r->b->groups, on_ready, r))
        return BREQ_PARKED;
    return add(r);
}
