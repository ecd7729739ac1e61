/*
 * conn.c - the client's connection: resolve, connect, ApiVersions, ready;
 * on failure or loss, fail what is on the wire and retry after a backoff.
 *
 *   DOWN --attempt--> RESOLVING --> CONNECTING --on_connect--> HANDSHAKE
 *        --ApiVersions ok--> (LOGIN --SASL ok (auth.c)-->) READY
 *   any of them --failure, loss, connect_timeout_ms--> DOWN (backoff timer)
 *   any --kclient_free or net stopping--> CLOSED (final)
 *
 * Only the current connection's callbacks count: the connection is cleared
 * from k->conn before net_conn_close(), so the on_close that call runs (at
 * once, on the reactor) is recognised as stale and ignored.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "kclient/kclient_int.h"
#include "proto/kerr.h"

static void on_connect(net_conn *c, void *ctx);
static void on_frame(net_conn *c, const uint8_t *frame, size_t len, void *ctx);
static void on_close(net_conn *c, int err, void *ctx);

/* ---- backoff -------------------------------------------------------------------- */

static uint64_t rng_next(kclient_t *k)
{
    k->rng ^= k->rng << 13;
    k->rng ^= k->rng >> 7;
    k->rng ^= k->rng << 17;
    return k->rng;
}

/* backoff_min_ms doubling per failed attempt up to backoff_max_ms, ±jitter. */
static uint64_t backoff_ms(kclient_t *k)
{
    uint32_t shift = k->attempts > 0 ? MIN(k->attempts - 1, 20u) : 0;
    uint64_t base = MIN((uint64_t)k->cfg.backoff_min_ms << shift, (uint64_t)k->cfg.backoff_max_ms);
    uint64_t span = 2 * KCLIENT_BACKOFF_JITTER_PCT + 1;
    uint64_t pct = 100 - KCLIENT_BACKOFF_JITTER_PCT + rng_next(k) % span;
    return base * pct / 100;
}

static void backoff_fired(void *arg)
{
    kclient_t *k = arg;
    CK_ASSERT(k->state == KS_DOWN);
    STAT_INC(k, reconnects);
    conn_attempt(k);
}

/* The connection (or attempt) is gone: fail the wire, back off. */
static void conn_lost(kclient_t *k, int err)
{
    CK_ASSERT(k->conn == NULL);
    bool was_ready = k->state == KS_READY;
    atomic_store(&k->ready, false);
    timer_stop(k, &k->conn_timer);
    timer_stop(k, &k->reauth_timer);
    k->relogin = false;
    if (err == ESHUTDOWN) {
        net_stopped(k); /* everything completes CLOSED */
        return;
    }
    k->state = KS_DOWN; /* before the callbacks: what they send must queue */
    req_fail_all(k, &k->wire, KCLIENT_ERR_DISCONNECTED);
    if (was_ready) {
        k->attempts = 0;
        log_info("kclient", "connection lost addr=%s err=%s", k->addr, err ? strerror(err) : "eof");
    } else {
        k->attempts++;
        STAT_INC(k, connect_failures);
        static log_ratelimit rl = LOG_RATELIMIT_INIT(LOG_RATELIMIT_DEFAULT_MS);
        log_info_limited(&rl, "kclient", "connect failed addr=%s err=%s attempts=%u", k->addr,
                         err ? strerror(err) : "eof", k->attempts);
    }
    net_timer_add(k->r, &k->backoff_timer, backoff_ms(k), backoff_fired, k);
    client_check(k);
}

void conn_drop(kclient_t *k, int err)
{
    net_conn *c = k->conn;
    CK_ASSERT(c != NULL);
    k->conn = NULL;
    net_conn_close(c); /* its on_close, if it runs now, is stale */
    conn_lost(k, err);
}

/* ---- connecting ---------------------------------------------------------------- */

static void conn_expired(void *arg)
{
    kclient_t *k = arg;
    CK_ASSERT(k->conn != NULL);
    conn_drop(k, ETIMEDOUT);
}

static void conn_open(kclient_t *k, const char *target)
{
    static const net_client_cb cb = {
        .on_connect = on_connect, .on_frame = on_frame, .on_close = on_close};
    net_client_cb mine = cb;
    mine.ctx = k;
    mine.tls = k->cfg.security ? k->cfg.security->tls : NULL;
    mine.tls_host = k->host;
    net_conn *c = net_connect(k->net, k->r, target, &mine);
    if (c == NULL) {
        conn_lost(k, errno);
        return;
    }
    k->conn = c;
    k->state = KS_CONNECTING;
    net_timer_add(k->r, &k->conn_timer, k->cfg.connect_timeout_ms, conn_expired, k);
}

typedef struct resolve_job {
    kclient_t *k;
    uint64_t seq;
    int err;
    char target[NET_HOST_MAX + 16];
} resolve_job;

static void resolve_done(void *arg)
{
    resolve_job *j = arg;
    kclient_t *k = j->k;
    if (k->state == KS_RESOLVING && k->resolve_seq == j->seq) {
        if (j->err != 0)
            conn_lost(k, j->err);
        else
            conn_open(k, j->target);
    }
    client_unref(k);
    free(j);
}

/* The helper thread: getaddrinfo, then back to the reactor. */
static void *resolve_thread(void *arg)
{
    resolve_job *j = arg;
    kclient_t *k = j->k;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(k->host, NULL, &hints, &res);
    if (rc != 0 || res == NULL) {
        j->err = EHOSTUNREACH;
    } else {
        struct sockaddr_storage ss;
        memcpy(&ss, res->ai_addr, MIN(sizeof(ss), (size_t)res->ai_addrlen));
        if (ss.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(k->port);
        else
            ((struct sockaddr_in *)&ss)->sin_port = htons(k->port);
        net_format_addr((struct sockaddr *)&ss, j->target, sizeof(j->target));
    }
    if (res != NULL)
        freeaddrinfo(res);
    /* Once the client is shut down, net may be freed any time: post only
     * under the lock that shutdown takes to abandon us. */
    pthread_mutex_lock(&k->mu);
    bool posted = !k->resolve_abandoned && net_post(k->r, resolve_done, j);
    pthread_mutex_unlock(&k->mu);
    if (!posted) {
        client_unref(k);
        free(j);
    }
    return NULL;
}

static bool host_numeric(const char *host)
{
    unsigned char a[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static void resolve_start(kclient_t *k)
{
    resolve_job *j = xcalloc(1, sizeof(*j));
    j->k = k;
    j->seq = ++k->resolve_seq;
    k->state = KS_RESOLVING;
    client_ref(k);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rc = pthread_create(&t, &attr, resolve_thread, j);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        client_unref(k);
        free(j);
        conn_lost(k, rc);
    }
}

void conn_attempt(kclient_t *k)
{
    CK_ASSERT(k->state == KS_DOWN && k->conn == NULL);
    k->hs_version = PROTO_API_VERSIONS_MAX;
    if (host_numeric(k->host))
        conn_open(k, k->addr);
    else
        resolve_start(k);
}

/* ---- the handshake ------------------------------------------------------------- */

static void handshake_send(kclient_t *k);

/* The usable range of every api: the peer's intersected with ours. */
static void versions_set(kclient_t *k, const ApiVersionsResponse *resp)
{
    for (int i = 0; i < PROTO_API_KEY_LIMIT; i++) {
        atomic_store(&k->vmin[i], -1);
        atomic_store(&k->vmax[i], -1);
    }
    for (int32_t i = 0; i < resp->ApiKeys.count; i++) {
        const ApiVersionsResponse_ApiVersion *v = &resp->ApiKeys.items[i];
        const proto_api_desc *api = proto_api(v->ApiKey);
        if (api == NULL)
            continue;
        int16_t lo = MAX(v->MinVersion, api->min_version), hi = MIN(v->MaxVersion, api->max_version);
        if (lo <= hi) {
            atomic_store(&k->vmin[v->ApiKey], lo);
            atomic_store(&k->vmax[v->ApiKey], hi);
        }
    }
    atomic_store(&k->versions_known, true);
}

/* Decode the answer at our version, else as v0 (how a peer answers a
 * version it does not know). */
static int handshake_decode(kclient_t *k, kclient_resp_t *r, ApiVersionsResponse *out)
{
    size_t n;
    const uint8_t *body = kclient_resp_body(r, &n);
    proto_err_t perr;
    int16_t vs[2] = {k->hs_version, 0};
    for (int i = 0; i < 2; i++) {
        rd_t rd;
        rd_init(&rd, body, n);
        bool flex = proto_response_flexible(PROTO_API_API_VERSIONS, vs[i]);
        if (proto_decode(&ApiVersionsResponse_desc, vs[i], flex, &rd, kclient_resp_arena(r), out,
                         &perr) == 0 &&
            (out->ErrorCode != KERR_UNSUPPORTED_VERSION || i == 1))
            return 0;
    }
    return -1;
}

/* The peer's own ApiVersions top, from an UNSUPPORTED_VERSION answer. */
static int16_t handshake_retry_version(const ApiVersionsResponse *resp)
{
    for (int32_t i = 0; i < resp->ApiKeys.count; i++)
        if (resp->ApiKeys.items[i].ApiKey == PROTO_API_API_VERSIONS)
            return MIN(resp->ApiKeys.items[i].MaxVersion, (int16_t)PROTO_API_VERSIONS_MAX);
    return 0;
}

static void handshake_done(void *arg, int err, const void *response, kclient_resp_t *r)
{
    kclient_t *k = arg;
    UNUSED(response);
    if (k->state != KS_HANDSHAKE || err == KCLIENT_ERR_DISCONNECTED || err == KCLIENT_ERR_CLOSED)
        return; /* the connection is gone already */
    ApiVersionsResponse resp;
    if (err != KCLIENT_OK || handshake_decode(k, r, &resp) < 0) {
        log_warn("kclient", "bad ApiVersions response addr=%s err=%s", k->addr, kclient_err_name(err));
        conn_drop(k, EPROTO);
        return;
    }
    if (resp.ErrorCode == KERR_UNSUPPORTED_VERSION && k->hs_version > 0) {
        k->hs_version = MIN(handshake_retry_version(&resp), (int16_t)(k->hs_version - 1));
        handshake_send(k);
        return;
    }
    if (resp.ErrorCode != KERR_NONE) {
        log_warn("kclient", "ApiVersions refused addr=%s error=%s", k->addr, kerr_name(resp.ErrorCode));
        conn_drop(k, EPROTO);
        return;
    }
    versions_set(k, &resp);
    if (auth_wanted(k)) {
        k->state = KS_LOGIN;
        auth_start(k, false);
        return;
    }
    conn_ready(k);
}

void conn_ready(kclient_t *k)
{
    timer_stop(k, &k->conn_timer);
    k->state = KS_READY;
    k->attempts = 0;
    atomic_store(&k->ready, true);
    STAT_INC(k, connects);
    log_debug("kclient", "ready addr=%s peer=%s", k->addr, net_conn_peer(k->conn));
    req_pump(k);
}

void conn_send_internal(kclient_t *k, int16_t api_key, int16_t v, const proto_struct_desc *d, const void *req,
                        bool raw, kclient_cb cb)
{
    kreq *q = req_new(k, api_key, v, true);
    proto_encode(d, v, proto_request_flexible(api_key, v), req, &q->frame);
    q->frame_len = q->frame.len;
    q->raw = raw;
    q->cb = cb;
    q->arg = k;
    req_wire_send(k, q);
}

static void handshake_send(kclient_t *k)
{
    ApiVersionsRequest req;
    proto_set_defaults(&ApiVersionsRequest_desc, k->hs_version, &req);
    req.ClientSoftwareName = KSTR_LIT("chronik");
    req.ClientSoftwareVersion = KSTR_LIT(CHRONIK_VERSION);
    conn_send_internal(k, PROTO_API_API_VERSIONS, k->hs_version, &ApiVersionsRequest_desc, &req, true,
                       handshake_done);
}

/* ---- net callbacks (the reactor thread) ------------------------------------------ */

static void on_connect(net_conn *c, void *ctx)
{
    kclient_t *k = ctx;
    if (c != k->conn)
        return;
    CK_ASSERT(k->state == KS_CONNECTING);
    k->state = KS_HANDSHAKE;
    handshake_send(k);
}

static void on_frame(net_conn *c, const uint8_t *frame, size_t len, void *ctx)
{
    kclient_t *k = ctx;
    if (c != k->conn)
        return;
    req_on_frame(k, frame, len);
}

static void on_close(net_conn *c, int err, void *ctx)
{
    kclient_t *k = ctx;
    if (c != k->conn)
        return;
    k->conn = NULL;
    net_conn_close(c);
    conn_lost(k, err);
}
