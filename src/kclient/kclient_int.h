/*
 * kclient_int.h - the client's internals, shared by kclient.c (lifetime),
 * request.c (requests and responses) and conn.c (connection, handshake,
 * backoff). Not part of the module's interface.
 *
 * Fields under "reactor-owned" are touched only on the client's reactor
 * thread (or, once it has ended, by kclient_free's thread); the atomics may
 * be read anywhere.
 */
#ifndef CHRONIK_KCLIENT_INT_H
#define CHRONIK_KCLIENT_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/hmap.h"
#include "kclient/kclient.h"
#include "proto/proto.h"
#include "sasl/sasl.h"

#define PROTO_API_VERSIONS_MAX 3 /* the handshake's first try */

enum kstate { KS_DOWN, KS_RESOLVING, KS_CONNECTING, KS_HANDSHAKE, KS_LOGIN, KS_READY, KS_CLOSED };
enum kwhere { W_NONE, W_QUEUED, W_WIRE };

typedef struct kreq {
    struct kreq *prev, *next;
    kclient_t *k;             /* holds a reference on k */
    buf_t frame;              /* header + body; handed to net when sent */
    size_t frame_len;         /* what the reservation counted */
    int32_t corr;
    int16_t api_key, api_version;
    bool raw;                 /* deliver the body undecoded */
    bool internal;            /* the handshake: no reservation, no timer */
    uint8_t where;            /* enum kwhere */
    int64_t deadline_ms;
    net_timer timer;
    kclient_cb cb;
    void *arg;
} kreq;

typedef struct kq {
    kreq *head, *tail;
    uint32_t n;
} kq;

struct kclient_resp {
    arena_t arena;
    uint8_t *frame;           /* a copy of the response frame */
    size_t len;
    size_t body_off;          /* where the body starts after the header */
    int32_t corr;
    bool *kept;               /* during the callback: set by kclient_resp_keep */
};

struct kclient {
    net_t *net;
    net_reactor *r;
    char *addr;               /* as given */
    char host[NET_HOST_MAX];
    uint16_t port;
    char *client_id;
    kclient_config cfg;

    _Atomic int refs;         /* the handle, each kreq, posted messages, resolvers */
    _Atomic bool closed;      /* sends fail with CLOSED */
    _Atomic bool ready;
    _Atomic uint32_t next_corr;
    _Atomic uint64_t pending;
    _Atomic uint64_t pending_bytes;
    _Atomic int16_t vmin[PROTO_API_KEY_LIMIT];
    _Atomic int16_t vmax[PROTO_API_KEY_LIMIT];
    _Atomic bool versions_known;
    struct {
        _Atomic uint64_t sent, received, timeouts, disconnects, connects, reconnects,
            connect_failures, refused_queue_full, refused_version, stale, malformed;
    } st;

    /* reactor-owned */
    enum kstate state;
    net_conn *conn;           /* the current connection, or NULL */
    kq queue;                 /* W_QUEUED, submission order */
    kq wire;                  /* W_WIRE, send order */
    hmap inflight;            /* correlation id (4 bytes) -> kreq */
    net_timer conn_timer;     /* connect + handshake deadline */
    net_timer backoff_timer;
    net_timer reauth_timer;   /* auth.c: log in again before the session ends */
    sasl_scram_client scram;  /* auth.c: the login under way */
    bool relogin;             /* auth.c: a re-authentication is under way (READY, nothing new sent) */
    uint32_t attempts;        /* failed attempts since the last ready connection */
    uint64_t resolve_seq;     /* the resolver result still wanted */
    int16_t hs_version;       /* ApiVersions version of the next handshake */
    uint64_t rng;
    int in_cb;                /* depth of this client's callbacks */
    bool pumping;
    bool reactor_gone;        /* the reactor ended: timers are dead */

    pthread_mutex_t mu;       /* guards shut_done and resolve_abandoned */
    pthread_cond_t cv;
    bool shut_done;           /* kclient_free waits for it */
    bool resolve_abandoned;   /* a resolver thread must not touch net any more */
};

#define STAT_INC(k, f) atomic_fetch_add_explicit(&(k)->st.f, 1, memory_order_relaxed)

/* kclient.c */
void client_ref(kclient_t *k);
void client_unref(kclient_t *k);
void client_check(const kclient_t *k);
void net_stopped(kclient_t *k);

/* request.c */
void timer_stop(kclient_t *k, net_timer *t);
void req_fail_all(kclient_t *k, kq *q, int err);
void req_pump(kclient_t *k);
bool req_wire_send(kclient_t *k, kreq *q);
kreq *req_new(kclient_t *k, int16_t api_key, int16_t api_version, bool internal);
void req_complete(kreq *q, int err, const void *body, kclient_resp_t *resp);
void req_on_frame(kclient_t *k, const uint8_t *frame, size_t len);

/* conn.c */
void conn_attempt(kclient_t *k);
void conn_drop(kclient_t *k, int err);
void conn_ready(kclient_t *k);
/* Send an internal request (no reservation, no timer) on the connection;
 * raw: the response is not decoded. */
void conn_send_internal(kclient_t *k, int16_t api_key, int16_t v, const proto_struct_desc *d, const void *req,
                        bool raw, kclient_cb cb);

/* auth.c */
bool auth_wanted(const kclient_t *k);
void auth_start(kclient_t *k, bool relogin);

#endif
