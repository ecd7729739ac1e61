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
 * Rate. As Kafka's Rate over a SampledStat (quota_rate.c): quota.window.num
 * samples of quota.window.size.seconds each (Kafka's defaults, 11 of 1 s).
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
 * answer is made elsewhere.
 *
 * Controller mutations (controller_mutation_rate, KIP-599). Partitions
 * created (CreateTopics, CreatePartitions) and deleted (DeleteTopics) per
 * second, measured by a token bucket (quota_rate.c) per quota entity.
 * Strict on the versions that know THROTTLING_QUOTA_EXCEEDED: a topic is
 * refused with it while the bucket is below zero, and the request's
 * throttle is the time the bucket needs to refill to zero; a topic taken
 * while the bucket is not yet below zero is accepted whatever its size.
 * Permissive on older versions: every topic is accepted, and a bucket left
 * below zero throttles the request (response and connection) as the byte
 * rates do.
 *
 * Rates live in one map under a mutex; a rate unused for ten windows is
 * dropped when the map grows past QUOTA_SWEEP_AT.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/hmap.h"
#include "base/util.h"
#include "broker/broker_int.h"
#include "broker/quota_rate.h"

#define QUOTA_SWEEP_AT 4096

typedef struct broker_quotas {
    pthread_mutex_t mu;
    hmap rates;       /* "P|F|R|M" user '\0' client -> quota_rate */
    quota_window w;
} broker_quotas;

void broker_quotas_init(broker *b)
{
    broker_quotas *q = xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    hmap_init(&q->rates);
    q->w.num = MAX(b->cfg.quota_window_num, 1);
    q->w.size_ms = (int64_t)MAX(b->cfg.quota_window_size_seconds, 1) * 1000;
    b->quotas = q;
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
        quota_rate_free(v);
    hmap_free(&q->rates);
    pthread_mutex_destroy(&q->mu);
    free(q);
    b->quotas = NULL;
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
static quota_rate *rate_of(broker_quotas *q, const qkey *k, int64_t now)
{
    quota_rate *x = hmap_get(&q->rates, k->k, k->len);
    if (x)
        return x;
    if (q->rates.count >= QUOTA_SWEEP_AT) {
        const char *kk;
        size_t kl;
        void *v;
        for (size_t i = 0; hmap_next(&q->rates, &i, &kk, &kl, &v);)
            if (now - ((quota_rate *)v)->used_ms > 10 * q->w.num * q->w.size_ms)
                quota_rate_free(hmap_del(&q->rates, kk, kl));
    }
    x = quota_rate_new(&q->w, now);
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
    quota_rate *x = rate_of(q, &k, now);
    quota_rate_add(&q->w, x, (double)bytes, now);
    r->throttle_ms = MAX(r->throttle_ms, quota_rate_throttle(&q->w, x, k.quota, now, q->w.num * q->w.size_ms));
    pthread_mutex_unlock(&q->mu);
}

int64_t broker_quota_fetch_cap(breq *r)
{
    qkey k;
    if (!resolve(r, META_QUOTA_CONSUMER_BYTE_RATE, 'F', &k))
        return INT64_MAX;
    const broker_quotas *q = r->b->quotas;
    double cap = k.quota * (double)(q->w.num * q->w.size_ms) / 1000.0;
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
    quota_rate *x = rate_of(q, &k, now);
    double before;
    int64_t span;
    quota_rate_measure(&q->w, x, now, &before, &span);
    quota_rate_add(&q->w, x, (double)bytes, now);
    uint32_t t = quota_rate_throttle(&q->w, x, k.quota, now, q->w.num * q->w.size_ms);
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
    quota_rate *x = rate_of(q, &k, now);
    quota_rate_add(&q->w, x, (double)ns * 100.0 / 1e9, now);
    r->throttle_ms = MAX(r->throttle_ms, quota_rate_throttle(&q->w, x, k.quota, now, q->w.size_ms));
    pthread_mutex_unlock(&q->mu);
}

/* ---- controller mutations --------------------------------------------------------- */

bool broker_quota_mutation(breq *r, int32_t partitions, int16_t strict_since)
{
    qkey k;
    if (partitions <= 0 || !resolve(r, META_QUOTA_CONTROLLER_MUTATION_RATE, 'M', &k))
        return true;
    broker_quotas *q = r->b->quotas;
    bool strict = r->hdr.api_version >= strict_since, ok = true;
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&q->mu);
    quota_rate *x = rate_of(q, &k, now);
    double tokens = quota_bucket_tokens(&q->w, x, k.quota, now);
    if (strict && tokens < 0) {
        ok = false;
    } else {
        quota_bucket_take(&q->w, x, k.quota, partitions, now);
        tokens = strict ? 0 : x->tokens; /* strict: taking never throttles */
    }
    r->throttle_ms = MAX(r->throttle_ms, quota_bucket_throttle(tokens, k.quota));
    pthread_mutex_unlock(&q->mu);
    return ok;
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
