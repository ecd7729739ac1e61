/* api_find_coordinator.c - FindCoordinator (key 10) v0-v4: a group's
 * coordinator is the broker that leads the group's partition of
 * __consumer_offsets (the one its records go to), as in Kafka; a
 * transactional id's (key type 1) is the leader of its partition of
 * __transaction_state (same mapping); on a single node that is this node.
 * v4 batches several keys of one type. Before it answers, the key type's
 * topic exists: the first request creates it and waits. Also starts the
 * node's group coordinator (broker_groups_start). */
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
        .offsets_topic_replication_factor = cfg->offsets_topic_replication_factor,
        .offsets_retention_ms = cfg->offsets_retention_minutes * 60 * 1000,
        .offsets_retention_check_ms = cfg->offsets_retention_check_interval_ms,
    };
    return group_coord_start(&gc, b->meta, b->replicas);
}

/* The leader of the key's partition of topic (__consumer_offsets or
 * __transaction_state), with its advertised address; this node when it
 * leads it or no broker has registered (a lone node's first moments);
 * COORDINATOR_NOT_AVAILABLE while it has no live leader, or one without an
 * endpoint for the listener r came on (as Kafka answers). */
static void coordinator_of(const breq *r, const char *topic, kstr_t key, int16_t *err, int32_t *node, kstr_t *host,
                           int32_t *port)
{
    const broker *b = r->b;
    meta_image *img = meta_acquire(b->meta);
    const meta_topic *t = meta_image_topic(img, topic, strlen(topic));
    int32_t leader = b->cfg.node_id;
    if (t && t->npartitions > 0) {
        int32_t p = group_rec_partition(key.ptr ? key.ptr : "", (size_t)MAX(key.len, 0), t->npartitions);
        leader = t->partitions[p].leader;
    }
    const meta_broker *mb = leader != b->cfg.node_id && img->nbrokers > 0 ? meta_image_broker(img, leader) : NULL;
    const char *addr;
    if (leader == b->cfg.node_id || img->nbrokers == 0) {
        const char *self_host;
        *node = b->cfg.node_id;
        broker_view_self(r, &self_host, port);
        *host = kstr_from(self_host);
    } else if (mb && !mb->fenced && broker_view_addr(r, mb, &addr, port)) {
        *node = mb->id;
        *host = kstr_from(arena_strndup((arena_t *)&r->arena, addr, strlen(addr)));
    } else {
        *err = KERR_COORDINATOR_NOT_AVAILABLE;
        *node = -1;
        *host = KSTR_LIT("");
        *port = -1;
    }
    meta_image_release(img);
}

static void locate(const breq *r, kstr_t key, int8_t key_type, int16_t ready, int16_t *err, int32_t *node,
                   kstr_t *host, int32_t *port)
{
    *err = key_type == KEY_GROUP || key_type == KEY_TRANSACTION ? ready : KERR_INVALID_REQUEST;
    if (!*err && key_type == KEY_TRANSACTION && (key.len <= 0 || key.len > TCOORD_ID_MAX))
        *err = KERR_INVALID_REQUEST;
    if (!*err) /* Kafka: DESCRIBE on the group or the transactional id */
        *err = key_type == KEY_GROUP ? broker_group_denied(r, ACL_OP_DESCRIBE, key)
               : broker_allowed_k(r, ACL_OP_DESCRIBE, ACL_RES_TRANSACTIONAL_ID, key)
                   ? KERR_NONE
                   : KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    if (*err) {
        *node = -1;
        *host = KSTR_LIT("");
        *port = -1;
        return;
    }
    coordinator_of(r, key_type == KEY_GROUP ? GROUP_TOPIC : TCOORD_TOPIC, key, err, node, host, port);
}

/* ready: KERR_NONE, or why __consumer_offsets is not there. */
static breq_rc answer(breq *r, int16_t ready)
{
    const FindCoordinatorRequest *req = r->req;
    FindCoordinatorResponse *resp = r->resp;
    if (r->hdr.api_version < 4) {
        locate(r, req->Key, req->KeyType, ready, &resp->ErrorCode, &resp->NodeId, &resp->Host, &resp->Port);
        resp->ErrorMessage = resp->ErrorCode ? kstr_from(kerr_message(resp->ErrorCode)) : KSTR_NULL;
        return BREQ_DONE;
    }
    int32_t n = MAX(req->CoordinatorKeys.count, 0);
    resp->Coordinators.count = n;
    resp->Coordinators.items = breq_items(r, &FindCoordinatorResponse_Coordinator_desc, n);
    for (int32_t i = 0; i < n; i++) {
        FindCoordinatorResponse_Coordinator *co = &resp->Coordinators.items[i];
        co->Key = req->CoordinatorKeys.items[i];
        locate(r, co->Key, req->KeyType, ready, &co->ErrorCode, &co->NodeId, &co->Host, &co->Port);
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
    bool ready = req->KeyType == KEY_GROUP         ? group_coord_ensure(r->b->groups, on_ready, r)
                 : req->KeyType == KEY_TRANSACTION ? tcoord_ensure(r->b->txns, on_ready, r)
                                                   : true;
    return ready ? answer(r, KERR_NONE) : BREQ_PARKED;
}
