/* api_end_txn.c - EndTxn (key 26) v0-v4: commit or abort the producer's
 * transaction. Answered once PrepareCommit or PrepareAbort is durable in
 * __transaction_state; the markers then go out and the transaction
 * completes in the background (tcoord.h). PRODUCER_FENCED is
 * INVALID_PRODUCER_EPOCH before v2. v5 (KIP-890 part 2: an epoch bump on
 * every end) is not served. */
#include "broker/broker_int.h"

enum { FENCED_ERROR_VERSION = 2 };

static void ended(void *arg, int16_t err, int64_t producer_id, int16_t epoch)
{
    (void)producer_id;
    (void)epoch;
    breq *r = arg;
    ((EndTxnResponse *)r->resp)->ErrorCode = broker_fenced_error(r, err, FENCED_ERROR_VERSION);
    breq_finish(r);
}

breq_rc api_end_txn(breq *r)
{
    const EndTxnRequest *req = r->req;
    int16_t denied = broker_txn_denied(r, req->TransactionalId);
    if (denied != KERR_NONE) {
        ((EndTxnResponse *)r->resp)->ErrorCode = denied;
        return BREQ_DONE;
    }
    tcoord_end(r->b->txns, breq_strdup(r, req->TransactionalId), req->ProducerId, req->ProducerEpoch,
               req->Committed, ended, r);
    return BREQ_PARKED;
}
