/* api_broker_registration.c - BrokerRegistration (key 62) v0-v3 on the
 * controller listener: a broker joins the cluster. At the quorum leader it
 * becomes META_OP_REGISTER_BROKER (brokers.c decides; the record goes
 * through the quorum) and the answer carries the broker epoch; any other
 * node answers NOT_CONTROLLER. Only the PLAINTEXT listener (by name, else
 * by security protocol 0) is kept. */
#include <string.h>

#include "broker/broker_int.h"

static void reg_answer(breq *r, const meta_op *op, int16_t err)
{
    BrokerRegistrationResponse *resp = r->resp;
    resp->ErrorCode = err;
    resp->BrokerEpoch = err == KERR_NONE ? op->broker.epoch : -1;
}

static const BrokerRegistrationRequest_Listener *plaintext(const BrokerRegistrationRequest *req)
{
    for (int32_t i = 0; i < req->Listeners.count; i++) {
        const kstr_t *n = &req->Listeners.items[i].Name;
        if (n->len == 9 && memcmp(n->ptr, "PLAINTEXT", 9) == 0)
            return &req->Listeners.items[i];
    }
    for (int32_t i = 0; i < req->Listeners.count; i++)
        if (req->Listeners.items[i].SecurityProtocol == 0)
            return &req->Listeners.items[i];
    return NULL;
}

breq_rc api_broker_registration(breq *r)
{
    const BrokerRegistrationRequest *req = r->req;
    BrokerRegistrationResponse *resp = r->resp;
    resp->BrokerEpoch = -1;
    if (meta_controller_id(r->b->meta) != r->b->cfg.node_id) {
        resp->ErrorCode = KERR_NOT_CONTROLLER;
        return BREQ_DONE;
    }
    const BrokerRegistrationRequest_Listener *ln = plaintext(req);
    if (!ln) {
        resp->ErrorCode = KERR_INVALID_REQUEST;
        return BREQ_DONE;
    }
    meta_op *op = meta_op_new(META_OP_REGISTER_BROKER, NULL, 0);
    meta_broker_op *b = &op->broker;
    b->id = req->BrokerId;
    b->incarnation = req->IncarnationId;
    b->host = xstrndup(ln->Host.ptr, (size_t)MAX(ln->Host.len, 0));
    b->port = ln->Port;
    b->rack = kstr_is_null(req->Rack) ? NULL : xstrndup(req->Rack.ptr, (size_t)req->Rack.len);
    return meta_op_park(r, op, reg_answer);
}
