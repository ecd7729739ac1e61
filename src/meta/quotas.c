/* quotas.c - client quotas in the metadata (KIP-13, KIP-55, KIP-546):
 * ClientQuotaRecord applied to an image, the controller's decision for one
 * entity of AlterClientQuotas, when a forwarded change is visible, and the
 * lookup by Kafka's order of precedence that the broker's enforcement uses.
 *
 * An image holds its quotas as a meta_quotas: an array of entities, each
 * with the values set for it, shared by reference with the versions before
 * it and copied by the first record that changes it (a published set never
 * changes under a reader). An entity without any value left is dropped.
 *
 * Records: a ClientQuotaRecord sets (or with Remove, removes) one key of one
 * entity. A record whose entity is not a user, a client id or both (an ip
 * entity, a repeated type, none) or whose key is not one of ours changes
 * nothing: the controller writes none of them.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"

struct meta_quotas {
    atomic_int refs;
    int32_t n, cap;
    meta_quota *v;
};

static const char *const key_names[META_QUOTA_NKEYS] = {
    "producer_byte_rate", "consumer_byte_rate", "request_percentage", "controller_mutation_rate"};

const char *meta_quota_key_name(int key)
{
    CK_ASSERT(key >= 0 && key < META_QUOTA_NKEYS);
    return key_names[key];
}

int meta_quota_key_of(const char *name, size_t len)
{
    for (int k = 0; k < META_QUOTA_NKEYS; k++)
        if (strlen(key_names[k]) == len && memcmp(key_names[k], name, len) == 0)
            return k;
    return -1;
}

int32_t meta_quotas_count(const meta_quotas *q) { return q ? q->n : 0; }

const meta_quota *meta_quotas_at(const meta_quotas *q, int32_t i)
{
    CK_ASSERT(q && i >= 0 && i < q->n);
    return &q->v[i];
}

meta_quotas *meta_quotas_ref(meta_quotas *q)
{
    if (q)
        atomic_fetch_add(&q->refs, 1);
    return q;
}

static void entity_free(meta_quota_entity *e)
{
    free(e->user);
    free(e->client);
    *e = (meta_quota_entity){0};
}

static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

static meta_quota_entity entity_copy(const meta_quota_entity *e)
{
    return (meta_quota_entity){e->has_user, e->has_client, dup_or_null(e->user), dup_or_null(e->client)};
}

void meta_quotas_unref(meta_quotas *q)
{
    if (!q || atomic_fetch_sub(&q->refs, 1) != 1)
        return;
    for (int32_t i = 0; i < q->n; i++)
        entity_free(&q->v[i].e);
    free(q->v);
    free(q);
}

/* The image's own set, copied when shared. */
static meta_quotas *own(meta_image *img)
{
    meta_quotas *q = img->quotas;
    if (q && atomic_load(&q->refs) == 1)
        return q;
    meta_quotas *c = xcalloc(1, sizeof *c);
    atomic_init(&c->refs, 1);
    if (q) {
        c->cap = c->n = q->n;
        c->v = xcalloc((size_t)MAX(c->cap, 1), sizeof *c->v);
        for (int32_t i = 0; i < q->n; i++) {
            c->v[i] = q->v[i];
            c->v[i].e = entity_copy(&q->v[i].e);
        }
        meta_quotas_unref(q);
    }
    return img->quotas = c;
}

static bool same_name(const char *a, const char *b) { return a ? b && strcmp(a, b) == 0 : b == NULL; }

static bool same_entity(const meta_quota_entity *a, const meta_quota_entity *b)
{
    return a->has_user == b->has_user && a->has_client == b->has_client &&
           (!a->has_user || same_name(a->user, b->user)) && (!a->has_client || same_name(a->client, b->client));
}

const meta_quota *meta_quotas_find(const meta_quotas *q, const meta_quota_entity *e)
{
    for (int32_t i = 0; i < meta_quotas_count(q); i++)
        if (same_entity(&q->v[i].e, e))
            return &q->v[i];
    return NULL;
}

/* ---- records ---------------------------------------------------------------- */

static char *kname(kstr_t s)
{
    return kstr_is_null(s) ? NULL : xstrndup(s.ptr ? s.ptr : "", (size_t)s.len);
}

static bool kis(kstr_t s, const char *want)
{
    return !kstr_is_null(s) && (size_t)s.len == strlen(want) && memcmp(s.ptr, want, (size_t)s.len) == 0;
}

/* The record's entity, or false when it is not a user and/or client id. */
static bool record_entity(const ClientQuotaRecord *r, meta_quota_entity *e)
{
    *e = (meta_quota_entity){0};
    for (int32_t i = 0; i < r->Entity.count; i++) {
        const ClientQuotaRecord_EntityData *d = &r->Entity.items[i];
        bool user = kis(d->EntityType, META_QUOTA_USER);
        if (!user && !kis(d->EntityType, META_QUOTA_CLIENT_ID))
            return entity_free(e), false;
        if (user ? e->has_user : e->has_client)
            return entity_free(e), false;
        if (user) {
            e->has_user = true;
            e->user = kname(d->EntityName);
        } else {
            e->has_client = true;
            e->client = kname(d->EntityName);
        }
    }
    return e->has_user || e->has_client;
}

void meta_quotas_apply(meta_image *img, const ClientQuotaRecord *r)
{
    int key = kstr_is_null(r->Key) ? -1 : meta_quota_key_of(r->Key.ptr, (size_t)r->Key.len);
    meta_quota_entity e;
    if (key < 0 || !record_entity(r, &e))
        return;
    const meta_quota *have = meta_quotas_find(img->quotas, &e);
    if (r->Remove && (!have || !(have->set & (1u << key)))) {
        entity_free(&e);
        return;
    }
    meta_quotas *q = own(img);
    int32_t i = 0;
    while (i < q->n && !same_entity(&q->v[i].e, &e))
        i++;
    if (i == q->n) {
        if (q->n == q->cap) {
            q->cap = MAX(8, q->cap * 2);
            q->v = xrealloc(q->v, (size_t)q->cap * sizeof *q->v);
        }
        q->v[q->n++] = (meta_quota){.e = e};
    } else {
        entity_free(&e);
    }
    meta_quota *x = &q->v[i];
    if (r->Remove) {
        x->set &= (uint8_t)~(1u << key);
        x->value[key] = 0;
    } else {
        x->set |= (uint8_t)(1u << key);
        x->value[key] = r->Value;
    }
    if (x->set == 0) {
        entity_free(&x->e);
        q->v[i] = q->v[--q->n];
    }
}

/* The record for key k of entity e (its strings point into e; ents holds
 * its components). */
static void record_of(const meta_quota_entity *e, int k, bool remove, double value,
                      ClientQuotaRecord_EntityData ents[2], ClientQuotaRecord *r)
{
    int32_t n = 0;
    if (e->has_user)
        ents[n++] = (ClientQuotaRecord_EntityData){kstr_from(META_QUOTA_USER), kstr_from(e->user)};
    if (e->has_client)
        ents[n++] = (ClientQuotaRecord_EntityData){kstr_from(META_QUOTA_CLIENT_ID), kstr_from(e->client)};
    *r = (ClientQuotaRecord){{n, ents}, kstr_from(key_names[k]), remove ? 0 : value, remove};
}

void meta_quotas_put(const meta_image *img, void (*put)(void *ctx, const ClientQuotaRecord *r), void *ctx)
{
    for (int32_t i = 0; i < meta_quotas_count(img->quotas); i++) {
        const meta_quota *x = &img->quotas->v[i];
        for (int k = 0; k < META_QUOTA_NKEYS; k++) {
            if (!(x->set & (1u << k)))
                continue;
            ClientQuotaRecord_EntityData ents[2];
            ClientQuotaRecord r;
            record_of(&x->e, k, false, x->value[k], ents, &r);
            put(ctx, &r);
        }
    }
}

/* ---- the controller's decision --------------------------------------------------- */

void meta_quota_op_free(meta_quota_op *q) { entity_free(&q->e); }

/* Kafka keeps the byte rates as longs and the percentage as a double. */
const char *meta_quota_op_error(const meta_quota_op *q)
{
    if (!q->e.has_user && !q->e.has_client)
        return "the quota entity names neither a user nor a client id";
    if (q->set & q->remove)
        return "a quota key is both set and removed";
    for (int k = 0; k < META_QUOTA_NKEYS; k++) {
        if (!(q->set & (1u << k)))
            continue;
        double v = q->value[k];
        if (!isfinite(v) || v <= 0)
            return "a quota value must be a positive number";
        if (k != META_QUOTA_REQUEST_PERCENTAGE && (v != floor(v) || v > 9.2e18))
            return "producer_byte_rate, consumer_byte_rate and controller_mutation_rate take whole numbers";
    }
    return NULL;
}

int16_t meta_quota_alter(const meta_writer *w, const meta_quota_op *q, const char **msg)
{
    if ((*msg = meta_quota_op_error(q)) != NULL)
        return KERR_INVALID_REQUEST;
    const meta_quota *have = meta_quotas_find(w->img->quotas, &q->e);
    if (!have && meta_quotas_count(w->img->quotas) >= META_QUOTAS_MAX && q->set)
        return *msg = "the cluster holds as many quota entities as it may", KERR_POLICY_VIOLATION;
    for (int k = 0; k < META_QUOTA_NKEYS; k++) {
        bool set = q->set & (1u << k), remove = (q->remove & (1u << k)) && have && (have->set & (1u << k));
        if (!set && !remove)
            continue;
        ClientQuotaRecord_EntityData ents[2];
        ClientQuotaRecord r;
        record_of(&q->e, k, remove, q->value[k], ents, &r);
        meta_write(w, META_REC_CLIENT_QUOTA, &ClientQuotaRecord_desc, &r);
        have = meta_quotas_find(w->img->quotas, &q->e); /* the write applied it */
    }
    return KERR_NONE;
}

bool meta_quota_visible(const meta_image *img, const meta_quota_op *q)
{
    const meta_quota *have = meta_quotas_find(img->quotas, &q->e);
    for (int k = 0; k < META_QUOTA_NKEYS; k++) {
        bool on = have && (have->set & (1u << k));
        if ((q->set & (1u << k)) && (!on || have->value[k] != q->value[k]))
            return false;
        if ((q->remove & (1u << k)) && on)
            return false;
    }
    return true;
}

/* ---- precedence ------------------------------------------------------------------ */

bool meta_quota_resolve(const meta_quotas *q, int key, const char *user, const char *client, double *value,
                        bool *by_user, bool *by_client)
{
    CK_ASSERT(user && client);
    if (meta_quotas_count(q) == 0)
        return false;
    /* KIP-55's order: which components, and whether each is the named entity */
    static const struct {
        bool has_user, has_client, named_user, named_client;
    } order[] = {
        {true, true, true, true},   {true, true, true, false},   {true, false, true, false},
        {true, true, false, true},  {true, true, false, false},  {true, false, false, false},
        {false, true, false, true}, {false, true, false, false},
    };
    for (size_t i = 0; i < ARRAY_LEN(order); i++) {
        meta_quota_entity e = {order[i].has_user, order[i].has_client, order[i].named_user ? (char *)user : NULL,
                               order[i].named_client ? (char *)client : NULL};
        const meta_quota *x = meta_quotas_find(q, &e);
        if (x && (x->set & (1u << key))) {
            *value = x->value[key];
            *by_user = e.has_user;
            *by_client = e.has_client;
            return true;
        }
    }
    return false;
}
