/* api_allocate_producer_ids.c - AllocateProducerIds (key 67) v0 on the
 * controller listener: another node, which does not lead the metadata
 * quorum, asks for a block of producer ids for its idempotent producers;
 * the block (TXN_PID_BLOCK_SIZE ids) is reserved through the quorum like
 * every change (meta_alloc_producer_ids) and the answer waits for it. */
#include "broker/broker_int.h"

static breq_rc pids_answered(breq *r)
{
    (void)r;
    return BREQ_DONE;
}

static void pids_done(void *arg, int16_t err, int64_t first, int32_t count)
{
    breq *r = arg;
    AllocateProducerIdsResponse *resp = r->resp;
    resp->ErrorCode = err;
    resp->ProducerIdStart = err == KERR_NONE ? first : -1;
    resp->ProducerIdLen = err == KERR_NONE ? count : 0;
    breq_resume(r, pids_answered);
}

breq_rc api_allocate_producer_ids(breq *r)
{
    meta_alloc_producer_ids(r->b->meta, TXN_PID_BLOCK_SIZE, pids_done, r);
    return BREQ_PARKED;
}
