/*
 * status.h - the node's live state as status.c reads it at the moment of a
 * request, shared by GET /status (status.c) and the operator console
 * (console.c): the metadata image joined with this node's logs.
 */
#ifndef CHRONIK_BROKER_STATUS_H
#define CHRONIK_BROKER_STATUS_H

#include "broker/broker_int.h"

/* One partition: what the image says and, where this node holds a replica,
 * what its log holds. */
typedef struct status_row {
    const meta_topic *t;
    const meta_partition *mp;
    const char *state;
    char error[320];
    bool local;
    int64_t log_start, log_end, hw, bytes;
    int64_t damaged_from, damaged_to; /* -1 when none */
    int segments;
} status_row;

typedef struct status_snap {
    broker *b;
    meta_image *img;
    status_row *rows;
    int nrows;
    int offline, under_replicated, leaderless, groups, read_only;
    int txns, open_txns;
    int fenced;                 /* registered brokers that are fenced */
    int64_t *hb_age_ms;         /* per registered broker, -1 unknown */
    int64_t disk_free, disk_total, disk_warn_below; /* -1 when unknown */
    meta_quorum_status quorum;
    bool ready;
    char ready_reason[200];
    uint64_t connections;
} status_snap;

/* Read the node's state; every status_take has its status_release. */
void status_take(status_snap *s, broker *b);
void status_release(status_snap *s);
/* Ready, and every partition led, fully replicated and online; no broker fenced. */
bool status_healthy(const status_snap *s);
/* The warnings: facts worth a look that do not make the node unhealthy. */
void status_each_warning(const status_snap *s, void (*fn)(void *arg, const char *text), void *arg);
/* The JSON of GET /status (status.c's header describes it). */
void status_render_json(const status_snap *s, buf_t *o);
/* v as a JSON string. */
void status_jstr(buf_t *o, const char *v);
/* Registered broker br's endpoint for the inter-broker listener, or NULL. */
const meta_endpoint *status_inter_broker(const status_snap *s, const meta_broker *br);
/* Writes br's endpoints to o: between two sep; each as open, name, mid,
 * host, then tail given the port (%u) and protocol name (%s); str writes a
 * string as the format needs it (escaped). */
typedef struct status_endpoint_fmt {
    const char *sep, *open, *mid, *tail;
    void (*str)(buf_t *o, const char *v);
} status_endpoint_fmt;
void status_endpoints(buf_t *o, const meta_broker *br, const status_endpoint_fmt *f);
/* A security protocol code's name (PLAINTEXT, SSL, ...), UNKNOWN otherwise. */
const char *status_protocol_name(int16_t protocol);
/* The elements of a JSON array of strings: status_jlist_add(&list, text)
 * appends one (a callback for status_each_problem). */
typedef struct status_jlist {
    buf_t *o;
    int n;
} status_jlist;
void status_jlist_add(void *arg, const char *text);
/* A topic whose name starts with "__" (__consumer_offsets, ...). */
bool status_internal_topic(const meta_topic *t);

/* The operator console (console.c): its data as HTML or JSON (admin_http_cb.console). */
void broker_console(buf_t *out, bool html, void *ctx);

#endif
