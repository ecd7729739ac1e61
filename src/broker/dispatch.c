/* dispatch.c - from a frame to a handler and back: header, version checks,
 * body decoding, response encoding (broker_int.h). */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "broker/broker_int.h"

/* Each listener has its own table: the APIs it implements, by api key.
 * ApiVersions on a listener advertises exactly its table's ranges (clamped
 * to the schemas' valid versions). */

/* The client listener (PLAINTEXT): everything Kafka clients and tools use. */
static const api_handler client_handlers[] = {
    {API_PRODUCE, 0, 9, api_produce}, /* v0-v2: old message formats get error 43 */
    {API_FETCH, 4, 12, api_fetch},
    {API_LIST_OFFSETS, 1, 7, api_list_offsets},
    {API_METADATA, 0, 12, api_metadata},
    {API_OFFSET_COMMIT, 0, 9, api_offset_commit},
    {API_OFFSET_FETCH, 0, 9, api_offset_fetch},
    {API_FIND_COORDINATOR, 0, 4, api_find_coordinator},
    {API_JOIN_GROUP, 0, 9, api_join_group},
    {API_HEARTBEAT, 0, 4, api_heartbeat},
    {API_LEAVE_GROUP, 0, 5, api_leave_group},
    {API_SYNC_GROUP, 0, 5, api_sync_group},
    {API_DESCRIBE_GROUPS, 0, 5, api_describe_groups},
    {API_LIST_GROUPS, 0, 5, api_list_groups},
    {API_API_VERSIONS, 0, 3, api_versions},
    {API_CREATE_TOPICS, 0, 7, api_create_topics},
    {API_DELETE_TOPICS, 0, 6, api_delete_topics},
    {API_DELETE_RECORDS, 0, 2, api_delete_records},
    {API_INIT_PRODUCER_ID, 0, 4, api_init_producer_id},
    {API_ADD_PARTITIONS_TO_TXN, 0, 4, api_add_partitions_to_txn},
    {API_ADD_OFFSETS_TO_TXN, 0, 4, api_add_offsets_to_txn},
    {API_END_TXN, 0, 4, api_end_txn},
    {API_TXN_OFFSET_COMMIT, 0, 4, api_txn_offset_commit},
    {API_OFFSET_FOR_LEADER_EPOCH, 0, 4, api_offset_for_leader_epoch},
    {API_DESCRIBE_CONFIGS, 0, 4, api_describe_configs},
    {API_ALTER_CONFIGS, 0, 2, api_alter_configs},
    {API_CREATE_PARTITIONS, 0, 3, api_create_partitions},
    {API_DELETE_GROUPS, 0, 2, api_delete_groups},
    {API_ELECT_LEADERS, 0, 2, api_elect_leaders},
    {API_ALTER_PARTITION_REASSIGNMENTS, 0, 0, api_alter_partition_reassignments},
    {API_LIST_PARTITION_REASSIGNMENTS, 0, 0, api_list_partition_reassignments},
    {API_INCREMENTAL_ALTER_CONFIGS, 0, 1, api_incremental_alter_configs},
    {API_OFFSET_DELETE, 0, 0, api_offset_delete},
    {API_DESCRIBE_CLUSTER, 0, 1, api_describe_cluster},
    {API_DESCRIBE_LOG_DIRS, 0, 4, api_describe_log_dirs},
    {API_DESCRIBE_PRODUCERS, 0, 0, api_describe_producers},
    {API_WRITE_TXN_MARKERS, 0, 1, api_write_txn_markers}, /* from the transaction coordinator */
    {API_DESCRIBE_TRANSACTIONS, 0, 0, api_describe_transactions},
    {API_LIST_TRANSACTIONS, 0, 1, api_list_transactions},
    {API_DESCRIBE_QUORUM, 0, 1, api_describe_quorum},
    {API_DESCRIBE_ACLS, 0, 3, api_describe_acls},
    {API_CREATE_ACLS, 0, 3, api_create_acls},
    {API_DELETE_ACLS, 0, 3, api_delete_acls},
    {API_SASL_HANDSHAKE, 0, 1, api_sasl_handshake},
    {API_SASL_AUTHENTICATE, 0, 2, api_sasl_authenticate},
    {API_DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0, api_describe_user_scram_credentials},
    {API_ALTER_USER_SCRAM_CREDENTIALS, 0, 0, api_alter_user_scram_credentials},
    {API_DESCRIBE_CLIENT_QUOTAS, 0, 1, api_describe_client_quotas},
    {API_ALTER_CLIENT_QUOTAS, 0, 1, api_alter_client_quotas},
};

/* The controller listener: what nodes of the metadata quorum and
 * Kafka's controller-facing tools send. */
static const api_handler controller_handlers[] = {
    {API_FETCH, 16, 16, api_raft}, /* the metadata log between voters */
    {API_API_VERSIONS, 0, 3, api_versions},
    {API_SASL_HANDSHAKE, 1, 1, api_sasl_handshake}, /* a SASL controller listener's logins */
    {API_SASL_AUTHENTICATE, 0, 2, api_sasl_authenticate},
    {API_CREATE_TOPICS, 0, 7, api_create_topics}, /* forwarded by the other nodes */
    {API_DELETE_TOPICS, 0, 6, api_delete_topics},
    {API_CREATE_PARTITIONS, 0, 3, api_create_partitions},
    {API_ALTER_CONFIGS, 0, 2, api_alter_configs},
    {API_INCREMENTAL_ALTER_CONFIGS, 0, 1, api_incremental_alter_configs},
    {API_VOTE, 0, 0, api_raft},
    {API_BEGIN_QUORUM_EPOCH, 0, 0, api_raft},
    {API_END_QUORUM_EPOCH, 0, 0, api_raft},
    {API_DESCRIBE_QUORUM, 0, 1, api_describe_quorum},
    {API_FETCH_SNAPSHOT, 0, 0, api_raft},
    {API_BROKER_REGISTRATION, 0, 3, api_broker_registration},
    {API_BROKER_HEARTBEAT, 0, 1, api_broker_heartbeat},
    {API_ALTER_PARTITION, 0, 3, api_alter_partition}, /* partition leaders' ISR changes */
    {API_ELECT_LEADERS, 0, 2, api_elect_leaders},     /* forwarded by the other nodes */
    {API_ALTER_PARTITION_REASSIGNMENTS, 0, 0, api_alter_partition_reassignments},
    {API_ALLOCATE_PRODUCER_IDS, 0, 0, api_allocate_producer_ids},
    {API_CREATE_ACLS, 0, 3, api_create_acls}, /* forwarded by the other nodes */
    {API_DELETE_ACLS, 0, 3, api_delete_acls},
    {API_ALTER_USER_SCRAM_CREDENTIALS, 0, 0, api_alter_user_scram_credentials}, /* forwarded */
    {API_ALTER_CLIENT_QUOTAS, 0, 1, api_alter_client_quotas}, /* forwarded by the other nodes */
};

const api_table broker_client_api = {client_handlers, ARRAY_LEN(client_handlers), "client"};
const api_table broker_controller_api = {controller_handlers, ARRAY_LEN(controller_handlers), "controller"};

const api_handler *broker_handler(const api_table *t, int16_t api_key)
{
    for (size_t i = 0; i < t->count; i++)
        if (t->handlers[i].api_key == api_key)
            return &t->handlers[i];
    return NULL;
}

void breq_free(breq *r)
{
    meta_image_release(r->image);
    arena_free(&r->arena);
    free(r);
}

void breq_finish(breq *r)
{
    broker_quota_throttle(r);
    buf_t b;
    buf_init(&b);
    proto_response_encode(r->hdr.api_key, r->hdr.api_version, r->hdr.correlation_id, r->resp, &b);
    net_req_reply_buf(r->nreq, &b);
    breq_free(r);
}

void breq_noreply(breq *r)
{
    broker_quota_throttle(r);
    net_req_noreply(r->nreq);
    breq_free(r);
}

static void close_malformed(breq *r, const char *what, const proto_err_t *err)
{
    char msg[PROTO_ERR_MSG_MAX];
    log_warn("broker", "closing connection: %s peer=%s api_key=%d api_version=%d detail=\"%s\"", what,
             net_conn_peer(net_req_conn(r->nreq)), r->hdr.api_key, r->hdr.api_version,
             err ? proto_err_format(err, msg, sizeof msg) : "");
    atomic_fetch_add(&r->b->stats.request_errors, 1);
    net_req_close_conn(r->nreq);
    breq_free(r);
}

/* Set a top-level int16 field named ErrorCode, if the response has one. */
static void set_top_error(const proto_struct_desc *d, void *resp, int16_t code)
{
    for (uint16_t i = 0; i < d->nfields; i++)
        if (strcmp(d->fields[i].name, "ErrorCode") == 0 && d->fields[i].type == PROTO_T_INT16 &&
            !(d->fields[i].flags & PROTO_F_ARRAY))
            *(int16_t *)((char *)resp + d->fields[i].offset) = code;
}

/* A version this broker does not implement: ApiVersions answers with a v0
 * body that lists what is supported (so any client can pick); every other
 * API gets UNSUPPORTED_VERSION with its correlation id. */
static void answer_unsupported(breq *r)
{
    atomic_fetch_add(&r->b->stats.unsupported_versions, 1);
    const proto_api_desc *api = r->hdr.api;
    int16_t v = r->hdr.api_version;
    if (api->api_key == API_API_VERSIONS) {
        r->hdr.api_version = 0;
        proto_set_defaults(api->response, 0, r->resp);
        api_versions(r);
        ((ApiVersionsResponse *)r->resp)->ErrorCode = KERR_UNSUPPORTED_VERSION;
    } else {
        v = v < api->min_version ? api->min_version : v > api->max_version ? api->max_version : v;
        r->hdr.api_version = v;
        proto_set_defaults(api->response, v, r->resp);
        set_top_error(api->response, r->resp, KERR_UNSUPPORTED_VERSION);
    }
    breq_finish(r);
}

static void run_handler(breq *r, const api_handler *h, rd_t *rd)
{
    const proto_api_desc *api = r->hdr.api;
    r->body = rd->p; /* the raw body, for handlers that read more than the schema (Raft's pre-vote tag) */
    r->body_len = rd_left(rd);
    r->req = arena_alloc(&r->arena, api->request->size);
    proto_err_t err;
    if (proto_request_body_decode(&r->hdr, rd, &r->arena, r->req, &err) != 0) {
        close_malformed(r, "malformed request", &err);
        return;
    }
    proto_set_defaults(api->response, r->hdr.api_version, r->resp);
    int64_t t0 = clock_mono_ns();
    breq_rc rc = h->fn(r);
    if (rc == BREQ_DONE) /* a parked request may be answered and freed already */
        broker_quota_request_time(r, clock_mono_ns() - t0);
    switch (rc) {
    case BREQ_DONE:
        breq_finish(r);
        break;
    case BREQ_NO_RESPONSE:
        breq_noreply(r);
        break;
    case BREQ_PARKED:
        break;
    }
}

static void on_frame(const api_table *t, const broker_listener *l, net_conn *c, net_req *req,
                     const uint8_t *frame, size_t len, broker *b)
{
    breq *r = xcalloc(1, sizeof *r);
    r->b = b;
    r->table = t;
    r->via = l;
    r->listener = t == &broker_controller_api ? NULL : l;
    arena_init(&r->arena);
    broker_authz_identify(r, c, t);
    r->nreq = req;
    r->received_ms = net_req_received_ms(req);
    if (broker_sasl_raw(r, frame, len))
        return;
    rd_t rd;
    rd_init(&rd, frame, len);
    proto_err_t err;
    if (proto_request_header_decode(&rd, &r->arena, &r->hdr, &err) != 0) {
        close_malformed(r, "bad request header", &err);
        return;
    }
    if (!broker_sasl_admit(r)) {
        close_malformed(r, "not authenticated (SASL listener)", NULL);
        return;
    }
    if (!r->principal) {
        close_malformed(r, "no ssl.principal.mapping.rules rule maps the client certificate", NULL);
        return;
    }
    if (!broker_authz_controller_admit(r)) {
        close_malformed(r, "the principal may not use the controller listener (CLUSTER_ACTION)", NULL);
        return;
    }
    const api_handler *h = broker_handler(t, r->hdr.api_key);
    if (!h) {
        close_malformed(r, "API not supported", NULL);
        return;
    }
    atomic_fetch_add(&r->b->stats.requests[r->hdr.api_key], 1);
    r->resp = arena_alloc(&r->arena, r->hdr.api->response->size);
    if (r->hdr.api_version < h->min_version || r->hdr.api_version > h->max_version ||
        !r->hdr.version_ok) {
        answer_unsupported(r);
        return;
    }
    run_handler(r, h, &rd);
}

void broker_on_frame(net_conn *c, net_req *req, const uint8_t *frame, size_t len, void *ctx)
{
    const broker_listener *l = ctx;
    on_frame(&broker_client_api, l, c, req, frame, len, l->b);
}

void broker_on_controller_frame(net_conn *c, net_req *req, const uint8_t *frame, size_t len, void *ctx)
{
    const broker_listener *l = ctx;
    on_frame(&broker_controller_api, l, c, req, frame, len, l->b);
}
