/*
 * kclient.c - requests, responses and their completion (see kclient.h).
 *
 * A request (kreq) is in exactly one place (invariant 1):
 *   W_NONE    being built or completed,
 *   W_QUEUED  in k->queue, waiting for a ready connection,
 *   W_WIRE    in k->wire and in k->inflight (by correlation id), written to
 *             the current connection.
 * Invariants, checked by client_check():
 *   1. k->wire.n == k->inflight.count; every wire request is in the map.
 *   2. k->wire is empty unless a connection exists (state >= CONNECTING).
 *   3. A non-internal request holds its reservation in k->pending /
 *      k->pending_bytes from kclient_send until its completion.
 *   4. Requests are completed only on the reactor thread (or, once the
 *      reactor has ended, by kclient_free's thread), exactly once.
 * The connection half (connect, handshake, backoff) is in conn.c.
 */
#include <openssl/crypto.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "kclient/kclient_int.h"
#include "proto/kerr.h"

/* ---- errors ---------------------------------------------------------------- */

const char *kclient_strerror(int err)
{
    switch (err) {
#define KCLIENT_ERR_MSG(name, code, msg) case code: return msg;
        KCLIENT_ERR_TABLE(KCLIENT_ERR_MSG)
#undef KCLIENT_ERR_MSG
    }
    return "unknown kclient error";
}

const char *kclient_err_name(int err)
{
    switch (err) {
#define KCLIENT_ERR_NAME(name, code, msg) case code: return #name;
        KCLIENT_ERR_TABLE(KCLIENT_ERR_NAME)
#undef KCLIENT_ERR_NAME
    }
    return "UNKNOWN";
}

int16_t kclient_err_kafka(int err)
{
    switch (err) {
    case KCLIENT_OK: return KERR_NONE;
    case KCLIENT_ERR_TIMED_OUT: return KERR_REQUEST_TIMED_OUT;
    case KCLIENT_ERR_DISCONNECTED:
    case KCLIENT_ERR_CLOSED:
    case KCLIENT_ERR_QUEUE_FULL: return KERR_NETWORK_EXCEPTION;
    case KCLIENT_ERR_UNSUPPORTED_VERSION:
    case KCLIENT_ERR_UNKNOWN_API: return KERR_UNSUPPORTED_VERSION;
    case KCLIENT_ERR_MALFORMED: return KERR_CORRUPT_MESSAGE;
    }
    return KERR_UNKNOWN_SERVER_ERROR;
}

/* ---- configuration and lifetime -------------------------------------------- */

kclient_config kclient_config_defaults(void)
{
    return (kclient_config){
        .client_id = KCLIENT_DEFAULT_CLIENT_ID,
        .connect_timeout_ms = KCLIENT_DEFAULT_CONNECT_TIMEOUT_MS,
        .backoff_min_ms = KCLIENT_DEFAULT_BACKOFF_MIN_MS,
        .backoff_max_ms = KCLIENT_DEFAULT_BACKOFF_MAX_MS,
        .pending_max = KCLIENT_DEFAULT_PENDING_MAX,
        .pending_bytes_max = KCLIENT_DEFAULT_PENDING_BYTES_MAX,
        .inflight_max = KCLIENT_DEFAULT_INFLIGHT_MAX,
    };
}

kclient_config kclient_config_secure(const kclient_security *sec)
{
    kclient_config c = kclient_config_defaults();
    c.security = sec;
    return c;
}

static void config_fix(kclient_config *cfg)
{
    kclient_config d = kclient_config_defaults();
    if (cfg->client_id == NULL)
        cfg->client_id = d.client_id;
    if (cfg->connect_timeout_ms == 0)
        cfg->connect_timeout_ms = d.connect_timeout_ms;
    if (cfg->backoff_min_ms == 0)
        cfg->backoff_min_ms = 1;
    if (cfg->backoff_max_ms < cfg->backoff_min_ms)
        cfg->backoff_max_ms = cfg->backoff_min_ms;
    if (cfg->pending_max == 0)
        cfg->pending_max = d.pending_max;
    if (cfg->pending_bytes_max == 0)
        cfg->pending_bytes_max = d.pending_bytes_max;
    if (cfg->inflight_max == 0)
        cfg->inflight_max = d.inflight_max;
}

void client_ref(kclient_t *k) { atomic_fetch_add(&k->refs, 1); }

void client_unref(kclient_t *k)
{
    int before = atomic_fetch_sub(&k->refs, 1);
    CK_ASSERT(before > 0);
    if (before != 1)
        return;
    CK_ASSERT(k->queue.n == 0 && k->wire.n == 0 && k->conn == NULL);
    hmap_free(&k->inflight);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    free(k->addr);
    free(k->client_id);
    OPENSSL_cleanse(&k->scram, sizeof k->scram);
    free(k);
}

static void start_run(void *arg)
{
    kclient_t *k = arg;
    if (k->state == KS_DOWN)
        conn_attempt(k);
    client_unref(k);
}

kclient_t *kclient_new(net_t *net, net_reactor *r, const char *hostport, const kclient_config *cfg)
{
    CK_ASSERT(net != NULL && hostport != NULL);
    kclient_t *k = xcalloc(1, sizeof(*k));
    if (net_parse_hostport(hostport, k->host, &k->port) != 0 || k->host[0] == '\0') {
        free(k);
        errno = EINVAL;
        return NULL;
    }
    k->cfg = cfg ? *cfg : kclient_config_defaults();
    config_fix(&k->cfg);
    k->client_id = xstrdup(k->cfg.client_id);
    k->cfg.client_id = k->client_id;
    k->addr = xstrdup(hostport);
    k->net = net;
    k->r = r ? r : net_reactor_at(net, 0);
    atomic_init(&k->refs, 1);
    atomic_init(&k->next_corr, 1);
    for (int i = 0; i < PROTO_API_KEY_LIMIT; i++) {
        atomic_init(&k->vmin[i], -1);
        atomic_init(&k->vmax[i], -1);
    }
    hmap_init(&k->inflight);
    net_timer_init(&k->conn_timer);
    net_timer_init(&k->backoff_timer);
    net_timer_init(&k->reauth_timer);
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    k->rng = ((uint64_t)clock_mono_ns() ^ hmap_hash(hostport, strlen(hostport)) ^ (uintptr_t)k) | 1;
    k->state = KS_DOWN;
    k->hs_version = PROTO_API_VERSIONS_MAX;
    client_ref(k);
    if (!net_post(k->r, start_run, k)) {
        k->state = KS_CLOSED; /* net has ended: every send fails CLOSED */
        atomic_store(&k->closed, true);
        client_unref(k);
    }
    return k;
}

/* On the reactor (or after it ended): fail everything, close, stop. */
static void shutdown_local(kclient_t *k)
{
    pthread_mutex_lock(&k->mu); /* a resolver still running will not post to net */
    k->resolve_abandoned = true;
    pthread_mutex_unlock(&k->mu);
    atomic_store(&k->closed, true);
    atomic_store(&k->ready, false);
    k->state = KS_CLOSED;
    timer_stop(k, &k->conn_timer);
    timer_stop(k, &k->backoff_timer);
    timer_stop(k, &k->reauth_timer);
    if (k->conn != NULL) {
        net_conn *c = k->conn;
        k->conn = NULL;
        net_conn_close(c);
    }
    req_fail_all(k, &k->wire, KCLIENT_ERR_CLOSED);
    req_fail_all(k, &k->queue, KCLIENT_ERR_CLOSED);
    client_check(k);
}

static void shutdown_run(void *arg)
{
    kclient_t *k = arg;
    shutdown_local(k);
    pthread_mutex_lock(&k->mu);
    k->shut_done = true;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    client_unref(k);
}

void kclient_free(kclient_t *k)
{
    if (k == NULL)
        return;
    if (net_current_reactor() == k->r) {
        CK_ASSERT(k->in_cb == 0); /* not from its own callbacks */
        shutdown_local(k);
    } else {
        client_ref(k);
        if (net_post(k->r, shutdown_run, k)) {
            pthread_mutex_lock(&k->mu);
            while (!k->shut_done)
                pthread_cond_wait(&k->cv, &k->mu);
            pthread_mutex_unlock(&k->mu);
        } else {
            client_unref(k);
            net_wait(k->net); /* the reactor thread is gone once this returns */
            k->reactor_gone = true;
            shutdown_local(k);
        }
    }
    client_unref(k);
}

void net_stopped(kclient_t *k)
{
    log_info("kclient", "net stopped, failing pending requests addr=%s", k->addr);
    shutdown_local(k);
}

/* ---- small accessors ----------------------------------------------------------- */

int16_t kclient_api_version(const kclient_t *k, int16_t api_key)
{
    if (api_key < 0 || api_key >= PROTO_API_KEY_LIMIT)
        return -1;
    return atomic_load(&k->vmax[api_key]);
}

int16_t kclient_api_version_min(const kclient_t *k, int16_t api_key)
{
    if (api_key < 0 || api_key >= PROTO_API_KEY_LIMIT)
        return -1;
    return atomic_load(&k->vmin[api_key]);
}

bool kclient_ready(const kclient_t *k) { return atomic_load(&k->ready); }
net_reactor *kclient_reactor(const kclient_t *k) { return k->r; }
const char *kclient_address(const kclient_t *k) { return k->addr; }

void kclient_stats_get(const kclient_t *k, kclient_stats *o)
{
    o->requests_sent = atomic_load(&k->st.sent);
    o->responses_received = atomic_load(&k->st.received);
    o->timeouts = atomic_load(&k->st.timeouts);
    o->disconnects = atomic_load(&k->st.disconnects);
    o->connects = atomic_load(&k->st.connects);
    o->reconnects = atomic_load(&k->st.reconnects);
    o->connect_failures = atomic_load(&k->st.connect_failures);
    o->refused_queue_full = atomic_load(&k->st.refused_queue_full);
    o->refused_version = atomic_load(&k->st.refused_version);
    o->stale_responses = atomic_load(&k->st.stale);
    o->malformed_responses = atomic_load(&k->st.malformed);
    o->pending = atomic_load(&k->pending);
    o->pending_bytes = atomic_load(&k->pending_bytes);
}

void client_check(const kclient_t *k)
{
    CK_ASSERT(k->wire.n == k->inflight.count);
    CK_ASSERT(k->wire.n == 0 || k->conn != NULL);
    CK_ASSERT((k->queue.head == NULL) == (k->queue.n == 0));
    CK_ASSERT((k->wire.head == NULL) == (k->wire.n == 0));
    CK_ASSERT(k->state != KS_CLOSED || (k->queue.n == 0 && k->wire.n == 0));
}
