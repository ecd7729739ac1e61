/* quota.c - enforcing client quotas (KIP-13, KIP-55, KIP-219): the byte
 * rates of producers and consumers, per quota entity.
 *
 * Which quota applies to a request from (user, client id) is decided by the
 * image's quotas in Kafka's order of precedence (meta_quota_resolve); the
 * entity it came from decides what is measured together: an entity with a
 * user and a client id measures that pair, a user entity that user (all its
 * client ids), a client-id entity that client id (all users), defaults
 * included (a default user entity measures each user on its own).
 *
 * Rate. As Kafka's Rate over a SampledStat: 11 samples of 1 s each (Kafka's
 * defaults of quota.window.num and quota.window.size.seconds, fixed here); bytes go into the current sample, a new
 * sample starts when it is older than one window, and samples older than
 * all of them together are forgotten. The rate is the samples' sum over the
 * time they span. Kafka pads that time up to num-1 windows, which lets a
 * client new or idle burst (num-1) windows' worth of its quota at once, and
 * again each time the sample holding that burst expires; here the span is
 * what the samples really cover, at least one window, so a client running
 * flat out gets an even flow at its quota.
 *
 * Throttle. A request that takes the rate over the quota gets
 * (rate - quota) / quota * span milliseconds, the pause after which the
 * rate is back at the quota (Kafka's QuotaUtils.throttleTime), at most the
 * whole window. The response carries it in ThrottleTimeMs and the
 * connection is not read for that long once the response is out (KIP-219);
 * clients also hold back their next request themselves.
 *
 * Fetch. A consumer fetch reads at most quota * window bytes, and a fetch
 * whose bytes would take the client over the quota is answered with no
 * records (the bytes are not counted) and the throttle, as Kafka does,
 * unless nothing is counted yet (a single batch larger than the cap would
 * otherwise never pass).
 *
 * Request time (request_percentage, KIP-124). The time a handler runs on
 * its thread until it answers, as a percentage of one thread, measured the
 * same way; its throttle is at most one window, as Kafka bounds it. A
 * request that parks (a produce waiting for replicas, a fetch waiting for
 * data) is not counted: its handler's time is too short to matter and its
 * answer is made elsewhere. controller_mutation_rate is stored and
 * described but not enforced.
 *
 * Rates live in one map under a mutex; a rate unused for ten windows is
 * dropped when the map grows past QUOTA_SWEEP_AT.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/hmap.h"
#include "base/util.h"
#include "broker/broker_int.h"

#define QUOTA_SWEEP_AT 4096
#define QUOTA_WINDOW_NUM 11         /* Kafka's quota.window.num */
#define QUOTA_WINDOW_SIZE_MS 1000   /* Kafka's quota.window.size.seconds = 1 */

typedef struct qrate {
    int64_t used_ms;
    int32_t cur;
    int64_t *start; /* each sample's start */
    double *value;  /* each sample's bytes */
} qrate;

typedef struct broker_quotas {
    pthread_mutex_t mu;
    hmap rates;       /* "P|F" user '\0' client -> qrate */
    int32_t n;        /* samples */
    int64_t window_ms; /* one sample */
} broker_quotas;

void broker_quotas_init(broker *b)
{
    broker_quotas *q = xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    hmap_init(&q->rates);
    q->n = QUOTA_WINDOW_NUM;
    q->window_ms = QUOTA_WINDOW_SIZE_MS;
    b->quotas = q;
}

static void rate_free(qrate *x)
{
    free(x->start);
    free(x->value);
    free(x);
}

void broker_quotas_free(broker *b)
{
    broker_quotas *q = b->quotas;
    if (!q)
        return;
    const char *k;
    size_t kl;
    void *v;
    for (size_t i = 0; hmap_next(&q->rates, &i, &k, &kl, &v);)
        rate_free(v);
    hmap_free(&q->rates);
    pthread_mutex_destroy(&q->mu);
    free(q);
    b->quotas = NULL;
}

/* ---- the sampled rate ----------------------------------------------------------- */

static qrate *rate_new(const broker_quotas *q, int64_t now)
{
    qrate *x = xcalloc(1, sizeof *x);
    x->start = xcalloc((size_t)q->n, sizeof *x->start);
    x->value = xcalloc((size_t)q->n, sizeof *x->value);
    for (int32_t i = 0; i < q->n; i++)
        x->start[i] = now;
    return x;
}

static void rate_purge(const broker_quotas *q, qrate *x, int64_t now)
{
    for (int32_t i = 0; i < q->n; i++)
        if (now - x->start[i] >= q->n * q->window_ms) {
            x->start[i] = now;
            x->value[i] = 0;
        }
}

static void rate_add(const broker_quotas *q, qrate *x, double v, int64_t now)
{
    rate_purge(q, x, now);
    if (now - x->start[x->cur] >= q->window_ms) {
        x->cur = (x->cur + 1) % q->n;
        x->start[x->cur] = now;
        x->value[x->cur] = 0;
    }
    x->value[x->cur] += v;
    x->used_ms = now;
}

/* The span the samples cover (at least one window) and their sum. */
static void rate_measure(const broker_quotas *q, qrate *x, int64_t now, double *sum, int64_t *span)
{
    rate_purge(q, x, now);
    int64_t oldest = now;
    double total = 0;
    for (int32_t i = 0; i < q->n; i++) {
        total += x->value[i];
        if (x->value[i] > 0)
            oldest = MIN(oldest, x->start[i]);
    }
    *sum = total;
    *span = MAX(now - oldest, q->window_ms);
}

/* The pause that brings the rate back to quota (units per second), at
 * most max_ms. */
static uint32_t rate_throttle(const broker_quotas *q, qrate *x, double quota, int64_t now, int64_t max_ms)
{
    double sum;
    int64_t span;
    rate_measure(q, x, now, &sum, &span);
    double rate = sum * 1000.0 / (double)span;
    if (rate <= quota)
        return 0;
    double ms = (rate - quota) / quota * (double)span;
    return (uint32_t)MIN(llround(ms), max_ms);
}

/* ---- which rate ------------------------------------------------------------------- */

/* The user part of r's principal ("User:alice" -> "alice"). */
static const char *user_of(const breq *r)
{
    const char *p = r->principal ? r->principal : BROKER_PRINCIPAL_ANONYMOUS;
    const char *colon = strchr(p, ':');
    return colon ? colon + 1 : p;
}

typedef struct qkey {
    char *k;          /* tag, user, '\0', client id (in r's arena) */
    size_t len;
    double quota;
} qkey;

/* The quota of key for r's client, and the name of the rate it is
 * measured by; false when no quota applies (or r is not a client's). */
static bool resolve(breq *r, int key, char tag, qkey *out)
{
    if (r->internal || !r->b->quotas)
        return false;
    meta_image *img = meta_acquire(r->b->meta);
    bool found = false, by_user = false, by_client = false;
    const char *user = user_of(r), *client = "";
    if (meta_quotas_count(img->quotas) > 0) { /* the common case costs no copy */
        kstr_t c = r->hdr.client_id;
        client = kstr_is_null(c) ? "" : breq_strdup(r, c);
        found = meta_quota_resolve(img->quotas, key, user, client, &out->quota, &by_user, &by_client);
    }
    meta_image_release(img);
    if (!found)
        return false;
    size_t ul = by_user ? strlen(user) : 0, cl = by_client ? strlen(client) : 0;
    out->len = 1 + ul + 1 + cl;
    out->k = arena_alloc(&r->arena, out->len);
    out->k[0] = tag;
    memcpy(out->k + 1, user, ul);
    out->k[1 + ul] = '\0';
    memcpy(out->k + 2 + ul, client, cl);
    return true;
}

/* The rate named k, made when new; q->mu held. */
static qrate *rate_of(broker_quotas *q, const qkey *k, int64_t now)
{
    qrate *x = hmap_get(&q->rates, k->k, k->len);
    if (x)
        return x;
    if (q->rates.count >= QUOTA_SWEEP_AT) {
        const char *kk;
        size_t kl;
        void *v;
        for (size_t i = 0; hmap_next(&q->rates, &i, &kk, &kl, &v);)
            if (now - ((qrate *)v)->used_ms > 10 * q->n * q->window_ms)
                rate_free(hmap_del(&q->rates, kk, kl));
    }
    x = rate_new(q, now);
    hmap_put(&q->rates, k->k, k->len, x);
    return x;
}

/* ---- produce and fetch ------------------------------------------------------------- */

void broker_quota_produce(breq *r, size_t bytes)
{
    qkey k;
    if (!resolve(r, META_QUOTA_PRODUCER_BYTE_RATE, 'P', &k))
        return;
    broker_quotas *q = r->b->quotas;
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&q->mu);
    qrate *x = rate_of(q, &k, now);
    rate_add(q, x, (double)bytes, now);
    r->throttle_ms = MAX(r->throttle_ms, rate_throttle(q, x, k.quota, now, q->n * q->window_ms));
    pthread_mutex_unlock(&q->mu);
}

int64_t broker_quota_fetch_cap(breq *r)
{
    qkey k;
    if (!resolve(r, META_QUOTA_CONSUMER_BYTE_RATE, 'F', &k))
        return INT64_MAX;
    const broker_quotas *q = r->b->quotas;
    double cap = k.quota * (double)(q->n * q->window_ms) / 1000.0;
    return cap >= 9e18 ? INT64_MAX : MAX((int64_t)cap, 1);
}

bool broker_quota_fetch(breq *r, int64_t bytes)
{
    qkey k;
    if (!resolve(r, META_QUOTA_CONSUMER_BYTE_RATE, 'F', &k))
        return true;
    broker_quotas *q = r->b->quotas;
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&q->mu);
    qrate *x = rate_of(q, &k, now);
    double before;
    int64_t span;
    rate_measure(q, x, now, &before, &span);
    rate_add(q, x, (double)bytes, now);
    uint32_t t = rate_throttle(q, x, k.quota, now, q->n * q->window_ms);
    bool send = t == 0 || before == 0 || bytes == 0;
    if (!send)
        x->value[x->cur] -= (double)bytes;
    r->throttle_ms = MAX(r->throttle_ms, t);
    pthread_mutex_unlock(&q->mu);
    return send;
}

/* Kafka's request quota: the time handling took as a percentage of one
 * thread, its throttle at most one window. */
void broker_quota_request_time(breq *r, int64_t ns)
{
    qkey k;
    if (ns <= 0 || !resolve(r, META_QUOTA_REQUEST_PERCENTAGE, 'R', &k))
        return;
    broker_quotas *q = r->b->quotas;
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&q->mu);
    qrate *x = rate_of(q, &k, now);
    rate_add(q, x, (double)ns * 100.0 / 1e9, now);
    r->throttle_ms = MAX(r->throttle_ms, rate_throttle(q, x, k.quota, now, q->window_ms));
    pthread_mutex_unlock(&q->mu);
}

/* ---- the response ----------------------------------------------------------------- */

void broker_quota_throttle(breq *r)
{
    if (r->throttle_ms == 0)
        return;
    const proto_struct_desc *d = r->hdr.api->response;
    for (uint16_t i = 0; i < d->nfields; i++) {
        const proto_field_desc *f = &d->fields[i];
        if (strcmp(f->name, "ThrottleTimeMs") == 0 && f->type == PROTO_T_INT32 && !(f->flags & PROTO_F_ARRAY)) {
            int32_t *p = (int32_t *)((char *)r->resp + f->offset);
            *p = MAX(*p, (int32_t)MIN(r->throttle_ms, (uint32_t)INT32_MAX));
        }
    }
    net_req_mute(r->nreq, r->throttle_ms);
}
