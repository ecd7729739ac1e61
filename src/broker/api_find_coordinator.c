/* api_find_coordinator.c - FindCoordinator (key 10) v0-v4: this node
 * coordinates every group (key type 0) and every transactional id (key
 * type 1); v4 batches several keys. Before it names itself for a group,
 * __consumer_offsets exists: the first request creates it and waits. Also
 * starts the node's group coordinator (broker_groups_start). */
#include <string.h>

#include "broker/broker_int.h"

enum { KEY_GROUP = 0, KEY_TRANSACTION = 1 };

group_coord *broker_groups_start(broker *b)
{
    const config *cfg = &b->cfg;
    group_config gc = {
        .min_session_timeout_ms = cfg->group_min_session_timeout_ms,
        .max_session_timeout_ms = cfg->group_max_session_timeout_ms,
        .initial_rebalance_delay_ms = cfg->group_initial_rebalance_delay_ms,
        .offsets_topic_partitions = cfg->offsets_topic_num_partitions,
        .offsets_retention_ms = cfg->offsets_retention_minutes * 60 * 1000,
        .offsets_retention_check_ms = cfg->offsets_retention_check_interval_ms,
    };
    return group_coord_start(&gc, b->meta, b->replicas);
}

/* The outcome for one key; ready is the state of __consumer_offsets.
 * Transactions are not served yet: like a Kafka broker whose transaction
 * coordinator is unavailable, answer COORDINATOR_NOT_AVAILABLE (clients retry
 * until their own timeout). */
static void locate(const breq *r, int8_t key_type, int16_t ready, int16_t *err, int32_t *node, kstr_t *host,
                   int32_t *port)
{
    *err = key_type == KEY_GROUP ? ready : key_type == KEY_TRANSACTION ? KERR_COORDINATOR_NOT_AVAILABLE : KERR_INVALID_REQUEST;
    if (*err) {
        *node = -1;
        *host = KSTR_LIT("");
        *port = -1;
        return;
    }
    *node = r->b->cfg.node_id;
    *host = kstr_from(r->b->cfg.advertise.host);
    *port = r->b->cfg.advertise.port;
}

/* ready: KERR_NONE, or why __consumer_offsets is not there. */
static breq_rc answer(breq *r, int16_t ready)
{
    const FindCoordinatorRequest *req = r->req;
    FindCoordinatorResponse *resp = r->resp;
    if (r->hdr.api_version < 4) {
        locate(r, req->KeyType, ready, &resp->ErrorCode, &resp->NodeId, &resp->Host, &resp->Port);
        resp->ErrorMessage = resp->ErrorCode ? kstr_from(kerr_message(resp->ErrorCode)) : KSTR_NULL;
        return BREQ_DONE;
    }
    int32_t n = MAX(req->CoordinatorKeys.count, 0);
    resp->Coordinators.count = n;
    resp->Coordinators.items = breq_items(r, &FindCoordinatorResponse_Coordinator_desc, n);
    for (int32_t i = 0; i < n; i++) {
        FindCoordinatorResponse_Coordinator *co = &resp->Coordinators.items[i];
        co->Key = req->CoordinatorKeys.items[i];
        locate(r, req->KeyType, ready, &co->ErrorCode, &co->NodeId, &co->Host, &co->Port);
        co->ErrorMessage = co->ErrorCode ? kstr_from(kerr_message(co->ErrorCode)) : KSTR_NULL;
    }
    return BREQ_DONE;
}

/* While parked, the response's (v0-3) ErrorCode field carries the outcome
 * of the topic's creation to answer_later; answer() overwrites it. */
static breq_rc answer_later(breq *r)
{
    FindCoordinatorResponse *resp = r->resp;
    return answer(r, resp->ErrorCode);
}

static void on_ready(void *arg, int16_t err)
{
    breq *r = arg;
    ((FindCoordinatorResponse *)r->resp)->ErrorCode = err;
    breq_resume(r, answer_later);
}

breq_rc api_find_coordinator(breq *r)
{
    const FindCoordinatorRequest *req = r->req;
    if (req->KeyType != KEY_GROUP)
        return answer(r, KERR_NONE);
    if (group_coord_ensure(r->b->groups, on_ready, r))
        return answer(r, KERR_NONE);
    return BREQ_PARKED;
}
