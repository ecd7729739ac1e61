/* api_broker_registration.c - BrokerRegistration (key 62) v0-v3 on the
 * controller listener: a broker joins the cluster. At the quorum leader it
 * becomes META_OP_REGISTER_BROKER (brokers.c decides; the record goes
 * through the quorum) and the answer carries the broker epoch; any other
 * node answers NOT_CONTROLLER. Every listener the broker names is kept
 * (the controller refuses a registration whose listeners are not
 * acceptable: src/meta/endpoints.c). */
#include <string.h>

#include "broker/broker_int.h"

static void reg_answer(breq *r, const meta_op *op, int16_t err)
{
    BrokerRegistrationResponse *resp = r->resp;
    resp->ErrorCode = err;
    resp->BrokerEpoch = err == KERR_NONE ? op->broker.epoch : -1;
}

static char *dup_kstr(kstr_t s)
{
    return xstrndup(s.len > 0 ? s.ptr : "", (size_t)MAX(s.len, 0));
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
    int32_t n = req->Listeners.count;
    if (n <= 0 || n > META_ENDPOINTS_MAX) {
        resp->ErrorCode = KERR_INVALID_REQUEST;
        return BREQ_DONE;
    }
    meta_op *op = meta_op_new(META_OP_REGISTER_BROKER, NULL, 0);
    meta_broker_op *b = &op->broker;
    b->id = req->BrokerId;
    b->incarnation = req->IncarnationId;
    b->nendpoints = n;
    b->endpoints = xcalloc((size_t)n, sizeof *b->endpoints);
    for (int32_t i = 0; i < n; i++) {
        const BrokerRegistrationRequest_Listener *ln = &req->Listeners.items[i];
        b->endpoints[i] = (meta_endpoint){dup_kstr(ln->Name), dup_kstr(ln->Host), ln->Port, ln->SecurityProtocol};
    }
    b->rack = kstr_is_null(req->Rack) ? NULL : xstrndup(req->Rack.ptr, (size_t)req->Rack.len);
    return meta_op_park(r, op, reg_answer);
}
