/* api_broker_heartbeat.c - BrokerHeartbeat (key 63) v0-v1 on the controller
 * listener: a registered broker is alive and says how far it has applied
 * the metadata log. At the quorum leader it becomes META_OP_BROKER_HEARTBEAT
 * (brokers.c unfences a caught-up broker, fences one that asks); any other
 * node answers NOT_CONTROLLER. */
#include "broker/broker_int.h"

static void hb_answer(breq *r, const meta_op *op, int16_t err)
{
    BrokerHeartbeatResponse *resp = r->resp;
    resp->ErrorCode = err;
    resp->IsCaughtUp = err == KERR_NONE && op->broker.caught_up;
    resp->IsFenced = err != KERR_NONE || op->broker.fenced;
    resp->ShouldShutDown = err == KERR_NONE && op->broker.should_shut_down;
}

breq_rc api_broker_heartbeat(breq *r)
{
    const BrokerHeartbeatRequest *req = r->req;
    BrokerHeartbeatResponse *resp = r->resp;
    if (meta_controller_id(r->b->meta) != r->b->cfg.node_id) {
        resp->ErrorCode = KERR_NOT_CONTROLLER;
        return BREQ_DONE;
    }
    meta_op *op = meta_op_new(META_OP_BROKER_HEARTBEAT, NULL, 0);
    meta_broker_op *b = &op->broker;
    b->id = req->BrokerId;
    b->epoch = req->BrokerEpoch;
    b->metadata_offset = req->CurrentMetadataOffset;
    b->wants_fence = req->WantFence;
    b->wants_shutdown = req->WantShutDown;
    return meta_op_park(r, op, hb_answer);
}
