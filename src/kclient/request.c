/*
 * request.c - a request's life: encoded and reserved by kclient_send on the
 * caller's thread, queued, written, matched by correlation id, decoded and
 * completed on the reactor thread (see the invariants in kclient.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "kclient/kclient_int.h"

/* ---- queues ------------------------------------------------------------------ */

static void kq_push(kq *l, kreq *q)
{
    q->prev = l->tail;
    q->next = NULL;
    if (l->tail != NULL)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
    l->n++;
}

static void kq_remove(kq *l, kreq *q)
{
    CK_ASSERT(l->n > 0);
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        l->head = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    else
        l->tail = q->prev;
    q->prev = q->next = NULL;
    l->n--;
}

void timer_stop(kclient_t *k, net_timer *t)
{
    if (!k->reactor_gone)
        net_timer_cancel(t);
}

/* ---- building and completing ------------------------------------------------- */

kreq *req_new(kclient_t *k, int16_t api_key, int16_t api_version, bool internal)
{
    kreq *q = xcalloc(1, sizeof(*q));
    q->k = k;
    client_ref(k);
    q->api_key = api_key;
    q->api_version = api_version;
    q->internal = internal;
    q->corr = (int32_t)(atomic_fetch_add(&k->next_corr, 1) & 0x7fffffffu);
    net_timer_init(&q->timer);
    buf_init(&q->frame);
    proto_req_header_t h = {.api_key = api_key, .api_version = api_version,
                            .correlation_id = q->corr, .client_id = kstr_from(k->client_id)};
    proto_request_header_encode(&h, &q->frame);
    return q;
}

static void req_free(kreq *q)
{
    kclient_t *k = q->k;
    buf_free(&q->frame);
    free(q);
    client_unref(k);
}

static void unreserve(kclient_t *k, size_t bytes)
{
    atomic_fetch_sub(&k->pending, 1);
    atomic_fetch_sub(&k->pending_bytes, bytes);
}

/* Take q out of wherever it is. */
static void req_detach(kclient_t *k, kreq *q)
{
    if (q->where == W_QUEUED) {
        kq_remove(&k->queue, q);
    } else if (q->where == W_WIRE) {
        kq_remove(&k->wire, q);
        void *was = hmap_del(&k->inflight, &q->corr, sizeof(q->corr));
        CK_ASSERT(was == q);
    }
    q->where = W_NONE;
    timer_stop(k, &q->timer);
}

void req_complete(kreq *q, int err, const void *body, kclient_resp_t *resp)
{
    kclient_t *k = q->k;
    req_detach(k, q);
    if (!q->internal)
        unreserve(k, q->frame_len);
    if (err == KCLIENT_ERR_TIMED_OUT)
        STAT_INC(k, timeouts);
    else if (err == KCLIENT_ERR_DISCONNECTED)
        STAT_INC(k, disconnects);
    k->in_cb++;
    q->cb(q->arg, err, body, resp);
    k->in_cb--;
    req_free(q);
}

void req_fail_all(kclient_t *k, kq *l, int err)
{
    while (l->head != NULL)
        req_complete(l->head, err, NULL, NULL);
    UNUSED(k);
}

/* ---- sending ------------------------------------------------------------------- */

static bool version_usable(const kclient_t *k, int16_t api_key, int16_t v)
{
    if (!atomic_load(&k->versions_known))
        return true;
    int16_t lo = atomic_load(&k->vmin[api_key]), hi = atomic_load(&k->vmax[api_key]);
    return hi >= 0 && v >= lo && v <= hi;
}

/* Write q on the ready (or handshaking) connection. False: the connection
 * is known closed (q is completed DISCONNECTED). */
bool req_wire_send(kclient_t *k, kreq *q)
{
    CK_ASSERT(k->conn != NULL && q->where == W_NONE);
    q->where = W_WIRE;
    kq_push(&k->wire, q);
    void *was = hmap_put(&k->inflight, &q->corr, sizeof(q->corr), q);
    CK_ASSERT(was == NULL);
    STAT_INC(k, sent);
    if (net_conn_send_buf(k->conn, &q->frame) == 0)
        return true;
    req_complete(q, KCLIENT_ERR_DISCONNECTED, NULL, NULL);
    return false;
}

/* Move queued requests to the wire while the connection is ready. */
void req_pump(kclient_t *k)
{
    if (k->pumping)
        return;
    k->pumping = true;
    while (k->state == KS_READY && !k->relogin && k->queue.head != NULL &&
           k->wire.n < k->cfg.inflight_max) {
        kreq *q = k->queue.head;
        kq_remove(&k->queue, q);
        q->where = W_NONE;
        if (!version_usable(k, q->api_key, q->api_version)) {
            STAT_INC(k, refused_version);
            req_complete(q, KCLIENT_ERR_UNSUPPORTED_VERSION, NULL, NULL);
            continue;
        }
        if (!req_wire_send(k, q))
            break;
    }
    k->pumping = false;
    client_check(k);
}

static void req_expired(void *arg)
{
    kreq *q = arg;
    kclient_t *k = q->k;
    req_complete(q, KCLIENT_ERR_TIMED_OUT, NULL, NULL);
    req_pump(k);
}

/* On the reactor: queue q with its deadline, and send what can go. */
static void submit_run(void *arg)
{
    kreq *q = arg;
    kclient_t *k = q->k;
    if (k->state == KS_CLOSED) {
        req_complete(q, KCLIENT_ERR_CLOSED, NULL, NULL);
        return;
    }
    int64_t left = q->deadline_ms - clock_mono_ms();
    net_timer_add(k->r, &q->timer, left > 0 ? (uint64_t)left : 0, req_expired, q);
    q->where = W_QUEUED;
    kq_push(&k->queue, q);
    req_pump(k);
}

/* Reserve room for one more request of `bytes`; false: over a limit. */
static bool reserve(kclient_t *k, size_t bytes)
{
    uint64_t n = atomic_fetch_add(&k->pending, 1);
    uint64_t b = atomic_fetch_add(&k->pending_bytes, bytes);
    if (n < k->cfg.pending_max && b + bytes <= k->cfg.pending_bytes_max)
        return true;
    unreserve(k, bytes);
    return false;
}

/* The checks every send makes before encoding. */
static int send_check(kclient_t *k, int16_t api_key, int16_t api_version, kclient_cb cb)
{
    CK_ASSERT(k != NULL && cb != NULL);
    if (!proto_api_version_ok(proto_api(api_key), api_version))
        return KCLIENT_ERR_UNKNOWN_API;
    if (atomic_load(&k->closed))
        return KCLIENT_ERR_CLOSED;
    if (!version_usable(k, api_key, api_version)) {
        STAT_INC(k, refused_version);
        return KCLIENT_ERR_UNSUPPORTED_VERSION;
    }
    return KCLIENT_OK;
}

/* Reserve, then hand q (fully encoded) to the reactor. */
static int submit(kclient_t *k, kreq *q, uint32_t timeout_ms, kclient_cb cb, void *arg)
{
    q->frame_len = q->frame.len;
    if (!reserve(k, q->frame_len)) {
        STAT_INC(k, refused_queue_full);
        req_free(q);
        return KCLIENT_ERR_QUEUE_FULL;
    }
    if (timeout_ms == 0 || timeout_ms > KCLIENT_TIMEOUT_MAX_MS)
        timeout_ms = KCLIENT_TIMEOUT_MAX_MS;
    q->deadline_ms = clock_mono_ms() + timeout_ms;
    q->cb = cb;
    q->arg = arg;
    if (net_current_reactor() == k->r && !k->reactor_gone) {
        submit_run(q);
        return KCLIENT_OK;
    }
    if (net_post(k->r, submit_run, q))
        return KCLIENT_OK;
    unreserve(k, q->frame_len);
    req_free(q);
    return KCLIENT_ERR_CLOSED;
}

int kclient_send(kclient_t *k, int16_t api_key, int16_t api_version, const void *request,
                 uint32_t timeout_ms, kclient_cb cb, void *arg)
{
    int err = send_check(k, api_key, api_version, cb);
    if (err != KCLIENT_OK)
        return err;
    CK_ASSERT(request != NULL);
    kreq *q = req_new(k, api_key, api_version, false);
    proto_encode(proto_api(api_key)->request, api_version,
                 proto_request_flexible(api_key, api_version), request, &q->frame);
    return submit(k, q, timeout_ms, cb, arg);
}

int kclient_send_raw(kclient_t *k, int16_t api_key, int16_t api_version, const uint8_t *body,
                     size_t len, uint32_t timeout_ms, kclient_cb cb, void *arg)
{
    int err = send_check(k, api_key, api_version, cb);
    if (err != KCLIENT_OK)
        return err;
    CK_ASSERT(body != NULL || len == 0);
    kreq *q = req_new(k, api_key, api_version, false);
    q->raw = true;
    buf_put(&q->frame, body, len);
    return submit(k, q, timeout_ms, cb, arg);
}

/* ---- responses ------------------------------------------------------------------ */

static kclient_resp_t *resp_new(const uint8_t *frame, size_t len, int32_t corr)
{
    kclient_resp_t *r = xcalloc(1, sizeof(*r));
    arena_init(&r->arena);
    r->frame = xmalloc(len > 0 ? len : 1);
    memcpy(r->frame, frame, len);
    r->len = len;
    r->corr = corr;
    return r;
}

/* Skip the header and (unless raw) decode the body of q's response. */
static int resp_decode(const kreq *q, kclient_resp_t *r, void **body)
{
    proto_err_t perr;
    rd_t rd;
    rd_init(&rd, r->frame, r->len);
    int32_t corr;
    *body = NULL;
    if (proto_response_header_decode(&rd, &r->arena, q->api_key, q->api_version, &corr, &perr) < 0)
        goto bad;
    r->body_off = rd_offset(&rd);
    if (q->raw)
        return 0;
    const proto_struct_desc *d = proto_api(q->api_key)->response;
    *body = arena_alloc(&r->arena, d->size);
    if (proto_decode(d, q->api_version, proto_response_flexible(q->api_key, q->api_version), &rd,
                     &r->arena, *body, &perr) == 0)
        return 0;
bad:;
    char msg[PROTO_ERR_MSG_MAX];
    static log_ratelimit rl = LOG_RATELIMIT_INIT(LOG_RATELIMIT_DEFAULT_MS);
    log_warn_limited(&rl, "kclient", "malformed response addr=%s corr=%d error=\"%s\"",
                     q->k->addr, (int)q->corr, proto_err_format(&perr, msg, sizeof(msg)));
    *body = NULL;
    return -1;
}

/* A response frame on the current connection. */
void req_on_frame(kclient_t *k, const uint8_t *frame, size_t len)
{
    if (len < sizeof(int32_t)) {
        STAT_INC(k, malformed);
        conn_drop(k, EPROTO);
        return;
    }
    int32_t corr = (int32_t)be32_load(frame);
    kreq *q = hmap_get(&k->inflight, &corr, sizeof(corr));
    if (q == NULL) {
        STAT_INC(k, stale); /* timed out already */
        return;
    }
    req_detach(k, q);
    STAT_INC(k, received);
    kclient_resp_t *r = resp_new(frame, len, corr);
    bool kept = false; /* once kept, r may be freed by another thread at any time */
    r->kept = &kept;
    void *body;
    if (resp_decode(q, r, &body) < 0) {
        STAT_INC(k, malformed);
        req_complete(q, KCLIENT_ERR_MALFORMED, NULL, NULL);
    } else {
        req_complete(q, KCLIENT_OK, body, r);
    }
    if (!kept)
        kclient_resp_free(r);
    req_pump(k);
}

const uint8_t *kclient_resp_body(const kclient_resp_t *r, size_t *len)
{
    *len = r->len - r->body_off;
    return r->frame + r->body_off;
}

arena_t *kclient_resp_arena(kclient_resp_t *r) { return &r->arena; }
int32_t kclient_resp_correlation_id(const kclient_resp_t *r) { return r->corr; }
void kclient_resp_keep(kclient_resp_t *r)
{
    CK_ASSERT(r->kept != NULL); /* inside its callback, once */
    *r->kept = true;
    r->kept = NULL;
}

void kclient_resp_free(kclient_resp_t *r)
{
    if (r == NULL)
        return;
    arena_free(&r->arena);
    free(r->frame);
    free(r);
}

typedef struct delivery {
    kclient_cb cb;
    void *arg;
    int err;
    const void *response;
    kclient_resp_t *resp;
} delivery;

static void deliver_run(void *arg)
{
    delivery *d = arg;
    d->cb(d->arg, d->err, d->response, d->resp);
    kclient_resp_free(d->resp);
    free(d);
}

bool kclient_deliver(net_reactor *to, kclient_cb cb, void *arg, int err, const void *response,
                     kclient_resp_t *resp)
{
    CK_ASSERT(to != NULL && cb != NULL);
    if (resp != NULL)
        kclient_resp_keep(resp);
    delivery *d = xmalloc(sizeof(*d));
    *d = (delivery){cb, arg, err, response, resp};
    if (net_post(to, deliver_run, d))
        return true;
    kclient_resp_free(resp);
    free(d);
    return false;
}
