/*
 * broker_int.h - what the files of src/broker share: the node's state, the
 * per-request context and the handler table. Not included outside src/broker.
 *
 * A request's life: net hands a frame to dispatch.c, which decodes the
 * header and body into the request's arena, fills the response with the
 * schema defaults and calls the API's handler. A handler returns
 * BREQ_DONE (the response is encoded and sent at once), or BREQ_PARKED and
 * later calls breq_finish() (from any thread) when it is woken by the event
 * it waited for: a sync, a replica's fetch, new data for a long poll.
 */
#ifndef CHRONIK_BROKER_INT_H
#define CHRONIK_BROKER_INT_H

#include <stdatomic.h>

#include "admin/http.h"
#include "base/arena.h"
#include "broker/broker.h"
#include "broker/config.h"
#include "net/net.h"
#include "proto/kerr.h"
#include "proto/proto.h"

/* Kafka api keys the broker names in code. */
enum api_key {
    API_PRODUCE = 0, API_FETCH = 1, API_LIST_OFFSETS = 2, API_METADATA = 3,
    API_OFFSET_COMMIT = 8, API_OFFSET_FETCH = 9, API_FIND_COORDINATOR = 10,
    API_JOIN_GROUP = 11, API_HEARTBEAT = 12, API_LEAVE_GROUP = 13, API_SYNC_GROUP = 14,
    API_DESCRIBE_GROUPS = 15, API_LIST_GROUPS = 16, API_API_VERSIONS = 18,
    API_CREATE_TOPICS = 19, API_DELETE_TOPICS = 20, API_DELETE_RECORDS = 21,
    API_INIT_PRODUCER_ID = 22, API_DESCRIBE_CONFIGS = 32, API_ALTER_CONFIGS = 33,
    API_CREATE_PARTITIONS = 37, API_DELETE_GROUPS = 42, API_INCREMENTAL_ALTER_CONFIGS = 44,
    API_OFFSET_DELETE = 47, API_DESCRIBE_CLUSTER = 60, API_DESCRIBE_PRODUCERS = 61,
};

typedef struct broker_stats {
    _Atomic uint64_t requests[PROTO_API_KEY_LIMIT];
    _Atomic uint64_t request_errors;      /* closed for a malformed request */
    _Atomic uint64_t unsupported_versions;
} broker_stats;

typedef struct broker {
    config cfg;
    net_t *net;
    admin_http *admin;
    uint16_t port;             /* bound client port */
    int64_t started_ms;
    broker_stats stats;
} broker;

typedef struct breq {
    broker *b;
    net_req *nreq;
    arena_t arena;
    proto_req_header_t hdr;
    void *req;                 /* decoded request body (api->request) */
    void *resp;                /* response body (api->response), defaults set */
    int64_t received_ms;
} breq;

typedef enum breq_rc { BREQ_DONE, BREQ_PARKED, BREQ_NO_RESPONSE } breq_rc;
typedef breq_rc (*breq_handler_fn)(breq *r);

typedef struct api_handler {
    int16_t api_key;
    int16_t min_version, max_version; /* what this broker implements */
    breq_handler_fn fn;
} api_handler;

/* The handler of an api key that this broker implements, or NULL. */
const api_handler *broker_handler(int16_t api_key);
/* Every implemented handler, in api-key order (ApiVersions lists them). */
const api_handler *broker_handlers(size_t *count);

/* Encode r->resp, send it and free r. Any thread. */
void breq_finish(breq *r);
/* Complete r without a response (acks=0) and free it. Any thread. */
void breq_noreply(breq *r);

/* net's frame callback (dispatch.c). */
void broker_on_frame(net_conn *c, net_req *req, const uint8_t *frame, size_t len, void *ctx);

/* Handlers, one file each. */
breq_rc api_versions(breq *r);
breq_rc api_metadata(breq *r);

/* A string view as a NUL-terminated copy in the request's arena. */
static inline char *breq_strdup(breq *r, kstr_t s)
{
    return arena_strndup(&r->arena, s.ptr ? s.ptr : "", s.len > 0 ? (size_t)s.len : 0);
}

#endif
