/*
 * lifecycle.c - this node as a broker of the cluster: it registers with the
 * controller and heartbeats to it, and, while this node is the controller,
 * it asks for silent brokers to be fenced (KIP-631's broker lifecycle).
 *
 * One thread per node. Every broker.heartbeat.interval.ms it sends to the
 * controller (the quorum leader):
 *   - BrokerRegistration (62) while it has no broker epoch: its node id, the
 *     random incarnation id drawn at start, every client listener with
 *     its advertised address and security protocol (meta_config's
 *     endpoints), rack null; the answer is its broker epoch;
 *   - BrokerHeartbeat (63) once it has one: the epoch and the metadata
 *     offset it has applied (the controller unfences it once that passes
 *     its registration).
 * The controller is reached over kclient at the leader's controller listener
 * (controller.quorum.voters); a node that leads the quorum submits the
 * change to its own controller. NOT_CONTROLLER, a lost connection or an
 * unknown leader are retried after LC_RETRY_MS with whoever leads then;
 * STALE_BROKER_EPOCH or BROKER_ID_NOT_REGISTERED make it register again.
 * While this node leads, it submits META_OP_FENCE_EXPIRED every
 * LC_FENCE_EVERY_MS with broker.session.timeout.ms: a dead broker is fenced
 * (and its partitions move) at most that long after its session expires. A
 * round that fences nobody writes nothing, so the tick is cheap; at 1 s it
 * added 0-1 s (0.5 s on average) to every partition failover.
 *
 * Controlled shutdown (lifecycle_shutdown, KIP-631): from then on every
 * heartbeat carries WantShutDown, sent every LC_RETRY_MS until the
 * controller answers ShouldShutDown (it has fenced this broker and moved
 * its leaderships, committed); never again one without it, or the
 * controller would unfence the broker.
 *
 * A single voter registers and is unfenced in meta_open
 * (lifecycle_first_beats), before the node serves clients: a single node is
 * never seen fenced.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/log.h"
#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"

#define LC_RETRY_MS 100
#define LC_FENCE_EVERY_MS 100
#define LC_INTERVAL_DEFAULT_MS 250
enum { API_BROKER_REGISTRATION = 62, API_BROKER_HEARTBEAT = 63 };

/* One request's outcome, filled by a kclient callback or an op's done.
 * Two references: the waiter's (which gives up when stopping) and the
 * completer's. */
typedef struct lc_call {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    bool done;
    int16_t err;
    int64_t epoch;   /* registration: the broker epoch */
    bool fenced;     /* heartbeat */
    bool should_shut_down; /* heartbeat */
} lc_call;

struct lifecycle {
    meta_t *m;
    int32_t node_id;
    kuuid_t incarnation;
    int32_t nendpoints;
    meta_endpoint *endpoints;  /* its client listeners, as registered */
    int32_t interval_ms;
    int32_t session_timeout_ms;
    int n_voters;
    int32_t voter_ids[META_VOTERS_MAX];
    char voter_addrs[META_VOTERS_MAX][300];
    kclient_t *clients[META_VOTERS_MAX]; /* lifecycle thread only */
    const kclient_security *security;    /* to the controller listeners */
    net_t *net;
    _Atomic int64_t epoch;               /* -1: not registered; written by the lifecycle thread */
    bool fenced;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;                  /* stopping, clients */
    pthread_cond_t cv;
    _Atomic bool stopping;
    _Atomic bool want_shutdown;          /* heartbeats carry WantShutDown */
    _Atomic int64_t last_ok_ms;          /* monotonic time of the last answer that kept this broker unfenced */
    bool shutdown_granted;               /* under mu: the controller said ShouldShutDown */
    bool wake;                           /* under mu: beat now */
};

static void new_incarnation(kuuid_t *id)
{
    if (getrandom(id->b, sizeof id->b, 0) != (ssize_t)sizeof id->b)
        CK_PANIC("getrandom failed");
    id->b[6] = (uint8_t)((id->b[6] & 0x0f) | 0x40);
    id->b[8] = (uint8_t)((id->b[8] & 0x3f) | 0x80);
}

lifecycle_t *lifecycle_new(meta_t *m, const meta_config *cfg)
{
    lifecycle_t *l = xcalloc(1, sizeof *l);
    l->m = m;
    l->node_id = cfg->node_id;
    new_incarnation(&l->incarnation);
    l->nendpoints = MIN(cfg->nendpoints, META_ENDPOINTS_MAX);
    l->endpoints = meta_endpoints_dup(cfg->endpoints, l->nendpoints);
    l->interval_ms = cfg->heartbeat_interval_ms > 0 ? cfg->heartbeat_interval_ms : LC_INTERVAL_DEFAULT_MS;
    l->session_timeout_ms = cfg->session_timeout_ms > 0 ? cfg->session_timeout_ms
                                                        : META_BROKER_SESSION_TIMEOUT_MS_DEFAULT;
    l->n_voters = MIN(cfg->n_voters, META_VOTERS_MAX);
    for (int i = 0; i < l->n_voters; i++) {
        l->voter_ids[i] = cfg->voter_ids[i];
        snprintf(l->voter_addrs[i], sizeof l->voter_addrs[i], "%s", cfg->voter_addrs[i]);
    }
    l->security = cfg->controller_security;
    l->epoch = -1;
    l->fenced = true;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    return l;
}

/* ---- waiting for one answer ------------------------------------------------ */

static lc_call *call_new(void)
{
    lc_call *c = xcalloc(1, sizeof *c);
    *c = (lc_call){.refs = 2, .done = false, .err = KERR_REQUEST_TIMED_OUT, .epoch = -1, .fenced = true};
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    return c;
}

static void call_unref_locked(lc_call *c)
{
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

static void call_finish(lc_call *c, int16_t err, int64_t epoch, bool fenced, bool shut)
{
    pthread_mutex_lock(&c->mu);
    c->err = err;
    c->epoch = epoch;
    c->fenced = fenced;
    c->should_shut_down = shut;
    c->done = true;
    pthread_cond_signal(&c->cv);
    call_unref_locked(c);
}

/* The outcome, or REQUEST_TIMED_OUT when the node stops first; drops c. */
static lc_call call_wait(lifecycle_t *l, lc_call *c)
{
    pthread_mutex_lock(&c->mu);
    while (!c->done && !atomic_load(&l->stopping)) {
        struct timespec ts = clock_abstime_after_ms(100);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    lc_call out = {.err = c->done ? c->err : KERR_REQUEST_TIMED_OUT, .epoch = c->epoch, .fenced = c->fenced,
                   .should_shut_down = c->done && c->should_shut_down};
    call_unref_locked(c);
    return out;
}

/* ---- to this node's own controller ---------------------------------------- */

typedef struct self_arg {
    lc_call *call;
    meta_op *op;
} self_arg;

static void self_done(void *arg, int16_t err, const char *msg)
{
    self_arg *s = arg;
    UNUSED(msg);
    call_finish(s->call, err, s->op->broker.epoch, s->op->broker.fenced, s->op->broker.should_shut_down);
    free(s);
}

static void submit_self(lifecycle_t *l, bool reg, lc_call *c)
{
    meta_op *op = meta_op_new(reg ? META_OP_REGISTER_BROKER : META_OP_BROKER_HEARTBEAT, NULL, 0);
    meta_broker_op *b = &op->broker;
    b->id = l->node_id;
    b->incarnation = l->incarnation;
    b->nendpoints = l->nendpoints;
    b->endpoints = meta_endpoints_dup(l->endpoints, l->nendpoints);
    b->epoch = reg ? -1 : l->epoch;
    b->fenced = true;
    b->wants_shutdown = !reg && atomic_load(&l->want_shutdown);
    meta_image *img = meta_acquire(l->m);
    b->metadata_offset = img->offset;
    meta_image_release(img);
    self_arg *s = xmalloc(sizeof *s);
    *s = (self_arg){c, op};
    op->done = self_done;
    op->arg = s;
    meta_submit(l->m, op);
}

/* ---- to another node's controller ------------------------------------------ */

static void reg_answered(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    UNUSED(resp);
    const BrokerRegistrationResponse *r = response;
    if (err != KCLIENT_OK)
        call_finish(arg, kclient_err_kafka(err), -1, true, false);
    else
        call_finish(arg, r->ErrorCode, r->BrokerEpoch, true, false);
}

static void hb_answered(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    UNUSED(resp);
    const BrokerHeartbeatResponse *r = response;
    if (err != KCLIENT_OK)
        call_finish(arg, kclient_err_kafka(err), -1, true, false);
    else
        call_finish(arg, r->ErrorCode, -1, r->IsFenced, r->ShouldShutDown);
}

static kclient_t *client_for(lifecycle_t *l, int32_t id)
{
    for (int i = 0; i < l->n_voters; i++) {
        if (l->voter_ids[i] != id)
            continue;
        kclient_config kc = kclient_config_secure(l->security);
        if (!l->clients[i] && l->net)
            l->clients[i] = kclient_new(l->net, NULL, l->voter_addrs[i], &kc);
        return l->clients[i];
    }
    return NULL;
}

static int send_registration(lifecycle_t *l, kclient_t *k, lc_call *c)
{
    BrokerRegistrationRequest req;
    proto_set_defaults(&BrokerRegistrationRequest_desc, 0, &req);
    BrokerRegistrationRequest_Listener ln[META_ENDPOINTS_MAX];
    for (int32_t i = 0; i < l->nendpoints; i++)
        ln[i] = (BrokerRegistrationRequest_Listener){.Name = kstr_from(l->endpoints[i].name),
                                                     .Host = kstr_from(l->endpoints[i].host),
                                                     .Port = l->endpoints[i].port,
                                                     .SecurityProtocol = l->endpoints[i].protocol};
    req.BrokerId = l->node_id;
    req.ClusterId = kstr_from("");
    req.IncarnationId = l->incarnation;
    req.Listeners = (BrokerRegistrationRequest_Listener_array){l->nendpoints, ln};
    req.Features = (BrokerRegistrationRequest_Feature_array){0, NULL};
    req.Rack = KSTR_NULL;
    return kclient_send(k, API_BROKER_REGISTRATION, 0, &req, (uint32_t)l->interval_ms, reg_answered, c);
}

static int send_heartbeat(lifecycle_t *l, kclient_t *k, lc_call *c)
{
    BrokerHeartbeatRequest req;
    proto_set_defaults(&BrokerHeartbeatRequest_desc, 0, &req);
    req.BrokerId = l->node_id;
    req.BrokerEpoch = l->epoch;
    meta_image *img = meta_acquire(l->m);
    req.CurrentMetadataOffset = img->offset;
    meta_image_release(img);
    req.WantShutDown = atomic_load(&l->want_shutdown);
    return kclient_send(k, API_BROKER_HEARTBEAT, 0, &req, (uint32_t)l->interval_ms, hb_answered, c);
}

/* ---- one beat --------------------------------------------------------------- */

/* Send to another voter's controller; under l->mu, so that
 * lifecycle_free never frees a client being sent on. */
static void send_remote(lifecycle_t *l, int32_t leader, bool reg, lc_call *c)
{
    pthread_mutex_lock(&l->mu);
    kclient_t *k = atomic_load(&l->stopping) ? NULL : client_for(l, leader);
    int rc = !k ? KCLIENT_ERR_CLOSED : reg ? send_registration(l, k, c) : send_heartbeat(l, k, c);
    pthread_mutex_unlock(&l->mu);
    if (rc != KCLIENT_OK)
        call_finish(c, kclient_err_kafka(rc), -1, true, false);
}

/* Apply an answer to this node's broker state (lifecycle thread). */
static void take_answer(lifecycle_t *l, int32_t leader, bool reg, const lc_call *c)
{
    if (c->err == KERR_NONE && reg) {
        l->epoch = c->epoch;
        log_info("meta", "registered with the controller node_id=%d controller=%d broker_epoch=%lld",
                 l->node_id, leader, (long long)c->epoch);
    } else if (c->err == KERR_NONE) {
        if (l->fenced != c->fenced)
            log_info("meta", "this broker is %s broker_epoch=%lld", c->fenced ? "fenced" : "unfenced",
                     (long long)l->epoch);
        l->fenced = c->fenced;
        if (!c->fenced)
            atomic_store(&l->last_ok_ms, clock_mono_ms());
        if (c->should_shut_down && atomic_load(&l->want_shutdown)) {
            pthread_mutex_lock(&l->mu);
            l->shutdown_granted = true;
            pthread_cond_broadcast(&l->cv);
            pthread_mutex_unlock(&l->mu);
        }
    } else if (c->err == KERR_STALE_BROKER_EPOCH || c->err == KERR_BROKER_ID_NOT_REGISTERED) {
        log_warn("meta", "registering again node_id=%d err=%d", l->node_id, c->err);
        l->epoch = -1;
        l->fenced = true;
    }
}

/* Register or heartbeat once at the controller; a Kafka error code. */
static int16_t beat(lifecycle_t *l)
{
    int32_t leader = meta_controller_id(l->m);
    if (leader < 0)
        return KERR_NOT_CONTROLLER;
    bool reg = l->epoch < 0;
    lc_call *c = call_new();
    if (leader == l->node_id)
        submit_self(l, reg, c);
    else
        send_remote(l, leader, reg, c);
    lc_call out = call_wait(l, c);
    take_answer(l, leader, reg, &out);
    return out.err;
}

static void ignore_done(void *arg, int16_t err, const char *msg)
{
    UNUSED(arg), UNUSED(err), UNUSED(msg);
}

static void fence_expired(lifecycle_t *l)
{
    meta_op *op = meta_op_new(META_OP_FENCE_EXPIRED, NULL, 0);
    op->broker.session_timeout_ms = l->session_timeout_ms;
    op->done = ignore_done;
    meta_submit(l->m, op);
}

/* Sleep until due_ms, a wake-up (*woken) or a stop; false when stopping. */
static bool lc_sleep(lifecycle_t *l, int64_t due_ms, bool *woken)
{
    pthread_mutex_lock(&l->mu);
    while (!atomic_load(&l->stopping) && !l->wake && clock_mono_ms() < due_ms) {
        struct timespec ts = clock_abstime_after_ms(MIN(due_ms - clock_mono_ms(), 1000));
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    }
    *woken = l->wake;
    l->wake = false;
    bool go = !atomic_load(&l->stopping);
    pthread_mutex_unlock(&l->mu);
    return go;
}

static void *lifecycle_thread(void *arg)
{
    lifecycle_t *l = arg;
    int64_t next_beat = 0, next_fence = 0;
    bool woken = false;
    for (;;) {
        int64_t now = clock_mono_ms();
        if (now >= next_fence) {
            if (meta_controller_id(l->m) == l->node_id)
                fence_expired(l);
            next_fence = now + LC_FENCE_EVERY_MS;
        }
        if (now >= next_beat || woken) {
            bool was_registered = l->epoch >= 0;
            int16_t err = beat(l);
            /* right after registering, heartbeat at once to be unfenced; shutting
             * down, until the controller lets this broker go */
            bool again = err != KERR_NONE || (!was_registered && l->epoch >= 0) || l->fenced ||
                         (atomic_load(&l->want_shutdown) && !lifecycle_shutdown_granted(l));
            next_beat = clock_mono_ms() + (again ? MIN(LC_RETRY_MS, l->interval_ms) : l->interval_ms);
        }
        if (!lc_sleep(l, MIN(next_beat, next_fence), &woken))
            return NULL;
    }
}

bool lifecycle_shutdown_granted(lifecycle_t *l)
{
    pthread_mutex_lock(&l->mu);
    bool granted = l->shutdown_granted;
    pthread_mutex_unlock(&l->mu);
    return granted;
}

bool lifecycle_shutdown(lifecycle_t *l, int64_t deadline_ms, bool (*give_up)(void *arg), void *arg)
{
    pthread_mutex_lock(&l->mu);
    if (!atomic_exchange(&l->want_shutdown, true)) {
        l->wake = true;
        pthread_cond_broadcast(&l->cv);
    }
    while (!l->shutdown_granted && clock_mono_ms() < deadline_ms) {
        pthread_mutex_unlock(&l->mu);
        bool pointless = give_up(arg);
        pthread_mutex_lock(&l->mu);
        if (pointless || l->shutdown_granted)
            break;
        /* bounded: give_up's conditions (leader, brokers) change without a signal here */
        struct timespec ts = clock_abstime_after_ms(MIN(deadline_ms - clock_mono_ms(), 100));
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    }
    bool granted = l->shutdown_granted;
    pthread_mutex_unlock(&l->mu);
    return granted;
}

void lifecycle_first_beats(lifecycle_t *l)
{
    for (int i = 0; i < 2 && meta_controller_id(l->m) == l->node_id; i++)
        beat(l);
}

void lifecycle_start(lifecycle_t *l, net_t *net)
{
    l->net = net;
    if (pthread_create(&l->thread, NULL, lifecycle_thread, l) != 0)
        CK_PANIC("cannot start the broker lifecycle thread");
    l->started = true;
}

bool lifecycle_session_lost(lifecycle_t *l)
{
    int64_t ok = atomic_load(&l->last_ok_ms);
    /* Three sessions: a controller failover (an election, then a new
     * controller whose broker clocks start afresh) silences every broker's
     * heartbeats for a while without fencing any; only a longer silence
     * means this broker was cut off and fenced. */
    return l->n_voters > 1 && ok > 0 && clock_mono_ms() - ok > 3 * (int64_t)l->session_timeout_ms;
}

int64_t lifecycle_epoch(lifecycle_t *l)
{
    return atomic_load(&l->epoch);
}

void lifecycle_free(lifecycle_t *l)
{
    if (!l)
        return;
    kclient_t *clients[META_VOTERS_MAX];
    pthread_mutex_lock(&l->mu);
    atomic_store(&l->stopping, true);
    pthread_cond_broadcast(&l->cv);
    memcpy(clients, l->clients, sizeof clients);
    memset(l->clients, 0, sizeof l->clients);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->n_voters; i++) /* completes what is pending: nobody waits on it */
        kclient_free(clients[i]);
    if (l->started)
        pthread_join(l->thread, NULL);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    meta_endpoints_free(l->endpoints, l->nendpoints);
    free(l);
}
