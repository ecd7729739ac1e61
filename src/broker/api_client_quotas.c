/* api_client_quotas.c - DescribeClientQuotas (48) and AlterClientQuotas
 * (49), v0-v1 (KIP-546). Describe reads the quotas of the current image;
 * Alter becomes one controller change per entity, forwarded to the quorum
 * leader from any node and answered once this node's image shows it.
 * DESCRIBE_CONFIGS on the cluster lets a client describe, ALTER_CONFIGS
 * lets it alter (Kafka's rule).
 *
 * Entities are users and client ids, alone or together; a null name is
 * the type's default. Kafka's ip entities (connection rates) are refused
 * by Alter and match nothing in Describe. Keys: producer_byte_rate,
 * consumer_byte_rate, request_percentage, controller_mutation_rate.
 *
 * Describe's filter (Kafka's): each component names an entity type that
 * the entity must have, with match type 0 its exact name (a null name: the
 * default), 1 the default, 2 any name but the default; with strict, the
 * entity may have no other type. A type given twice, an empty or unknown
 * type, or ip with user or client-id is INVALID_REQUEST. */
#include <string.h>

#include "base/util.h"
#include "broker/broker_int.h"

#define QUOTA_IP "ip"
enum { MATCH_EXACT = 0, MATCH_DEFAULT = 1, MATCH_SPECIFIED = 2 };

static bool kis(kstr_t s, const char *want)
{
    return !kstr_is_null(s) && (size_t)s.len == strlen(want) && memcmp(s.ptr, want, (size_t)s.len) == 0;
}

/* ---- DescribeClientQuotas ------------------------------------------------------- */

typedef struct qfilter {
    bool user, client, ip;        /* components given */
    int8_t user_match, client_match;
    const char *user_name, *client_name; /* MATCH_EXACT: NULL is the default */
    bool strict;
} qfilter;

static bool name_matches(int8_t match, const char *want, const char *have)
{
    if (match == MATCH_DEFAULT || (match == MATCH_EXACT && !want))
        return have == NULL;
    if (match == MATCH_SPECIFIED)
        return have != NULL;
    return have && strcmp(have, want) == 0;
}

static bool filter_matches(const qfilter *f, const meta_quota_entity *e)
{
    if (f->ip)
        return false; /* no ip entity is ever stored */
    if (f->user && !(e->has_user && name_matches(f->user_match, f->user_name, e->user)))
        return false;
    if (f->client && !(e->has_client && name_matches(f->client_match, f->client_name, e->client)))
        return false;
    return !f->strict || ((!e->has_user || f->user) && (!e->has_client || f->client));
}

/* The filter of req, or an error message. */
static const char *filter_parse(breq *r, const DescribeClientQuotasRequest *req, qfilter *f)
{
    *f = (qfilter){.strict = req->Strict};
    for (int32_t i = 0; i < req->Components.count; i++) {
        const DescribeClientQuotasRequest_ComponentData *c = &req->Components.items[i];
        bool *seen = kis(c->EntityType, META_QUOTA_USER)        ? &f->user
                     : kis(c->EntityType, META_QUOTA_CLIENT_ID) ? &f->client
                     : kis(c->EntityType, QUOTA_IP)             ? &f->ip
                                                                : NULL;
        if (!seen)
            return "unknown entity type in the filter (user, client-id or ip)";
        if (*seen)
            return "an entity type appears more than once in the filter";
        if (c->MatchType < MATCH_EXACT || c->MatchType > MATCH_SPECIFIED)
            return "unknown match type (0 exact, 1 default, 2 specified)";
        *seen = true;
        const char *name = c->MatchType == MATCH_EXACT && !kstr_is_null(c->Match) ? breq_strdup(r, c->Match) : NULL;
        if (seen == &f->user)
            f->user_match = c->MatchType, f->user_name = name;
        else if (seen == &f->client)
            f->client_match = c->MatchType, f->client_name = name;
    }
    if (f->ip && (f->user || f->client))
        return "an ip component cannot be combined with user or client-id";
    return NULL;
}

static void describe_entry(breq *r, const meta_quota *q, DescribeClientQuotasResponse_EntryData *out)
{
    out->Entity.count = 0;
    out->Entity.items = breq_items(r, &DescribeClientQuotasResponse_EntityData_desc, 2);
    if (q->e.has_user)
        out->Entity.items[out->Entity.count++] =
            (DescribeClientQuotasResponse_EntityData){kstr_from(META_QUOTA_USER), kstr_from(q->e.user)};
    if (q->e.has_client)
        out->Entity.items[out->Entity.count++] =
            (DescribeClientQuotasResponse_EntityData){kstr_from(META_QUOTA_CLIENT_ID), kstr_from(q->e.client)};
    out->Values.count = 0;
    out->Values.items = breq_items(r, &DescribeClientQuotasResponse_ValueData_desc, META_QUOTA_NKEYS);
    for (int k = 0; k < META_QUOTA_NKEYS; k++)
        if (q->set & (1u << k))
            out->Values.items[out->Values.count++] =
                (DescribeClientQuotasResponse_ValueData){kstr_from(meta_quota_key_name(k)), q->value[k]};
}

breq_rc api_describe_client_quotas(breq *r)
{
    const DescribeClientQuotasRequest *req = r->req;
    DescribeClientQuotasResponse *resp = r->resp;
    resp->Entries = (DescribeClientQuotasResponse_EntryData_array){-1, NULL};
    if (!broker_allowed_cluster(r, ACL_OP_DESCRIBE_CONFIGS)) {
        resp->ErrorCode = KERR_CLUSTER_AUTHORIZATION_FAILED;
        resp->ErrorMessage = kstr_from(kerr_message(resp->ErrorCode));
        return BREQ_DONE;
    }
    qfilter f;
    const char *bad = filter_parse(r, req, &f);
    if (bad) {
        resp->ErrorCode = KERR_INVALID_REQUEST;
        resp->ErrorMessage = kstr_from(bad);
        return BREQ_DONE;
    }
    meta_image *img = meta_acquire(r->b->meta);
    breq_hold_image(r, img); /* names point into its quotas */
    int32_t n = meta_quotas_count(img->quotas);
    resp->Entries.count = 0;
    resp->Entries.items = breq_items(r, &DescribeClientQuotasResponse_EntryData_desc, n);
    for (int32_t i = 0; i < n; i++) {
        const meta_quota *q = meta_quotas_at(img->quotas, i);
        if (filter_matches(&f, &q->e))
            describe_entry(r, q, &resp->Entries.items[resp->Entries.count++]);
    }
    return BREQ_DONE;
}

/* ---- AlterClientQuotas ------------------------------------------------------------ */

static char *name_dup(kstr_t s)
{
    return kstr_is_null(s) ? NULL : xstrndup(s.ptr ? s.ptr : "", (size_t)s.len);
}

/* The change one entry asks for, or an error message (q is then freed). */
static const char *entry_parse(const AlterClientQuotasRequest_EntryData *en, meta_quota_op *q)
{
    *q = (meta_quota_op){0};
    const char *bad = NULL;
    for (int32_t i = 0; i < en->Entity.count && !bad; i++) {
        const AlterClientQuotasRequest_EntityData *d = &en->Entity.items[i];
        bool user = kis(d->EntityType, META_QUOTA_USER);
        if (kis(d->EntityType, QUOTA_IP))
            bad = "ip quota entities (connection rates) are not supported";
        else if (!user && !kis(d->EntityType, META_QUOTA_CLIENT_ID))
            bad = "unknown entity type (user or client-id)";
        else if (user ? q->e.has_user : q->e.has_client)
            bad = "an entity type appears more than once in the entity";
        else if (user)
            q->e.has_user = true, q->e.user = name_dup(d->EntityName);
        else
            q->e.has_client = true, q->e.client = name_dup(d->EntityName);
    }
    for (int32_t i = 0; i < en->Ops.count && !bad; i++) {
        const AlterClientQuotasRequest_OpData *o = &en->Ops.items[i];
        int k = kstr_is_null(o->Key) ? -1 : meta_quota_key_of(o->Key.ptr, (size_t)o->Key.len);
        if (k < 0)
            bad = "unknown quota key (producer_byte_rate, consumer_byte_rate, request_percentage, "
                  "controller_mutation_rate)";
        else if ((q->set | q->remove) & (1u << k))
            bad = "a quota key appears more than once in the entry";
        else if (o->Remove)
            q->remove |= (uint8_t)(1u << k);
        else
            q->set |= (uint8_t)(1u << k), q->value[k] = o->Value;
    }
    if (!bad)
        bad = meta_quota_op_error(q);
    if (bad)
        meta_quota_op_free(q);
    return bad;
}

breq_rc api_alter_client_quotas(breq *r)
{
    const AlterClientQuotasRequest *req = r->req;
    AlterClientQuotasResponse *resp = r->resp;
    int32_t n = MAX(req->Entries.count, 0);
    resp->Entries.count = n;
    resp->Entries.items = breq_items(r, &AlterClientQuotasResponse_EntryData_desc, n);
    bool allowed = broker_allowed_cluster(r, ACL_OP_ALTER_CONFIGS);
    meta_wait *w = meta_wait_new(r, meta_wait_answered);
    for (int32_t i = 0; i < n; i++) {
        const AlterClientQuotasRequest_EntryData *en = &req->Entries.items[i];
        AlterClientQuotasResponse_EntryData *out = &resp->Entries.items[i];
        out->ErrorMessage = KSTR_NULL;
        int32_t ne = MAX(en->Entity.count, 0);
        out->Entity.count = ne;
        out->Entity.items = breq_items(r, &AlterClientQuotasResponse_EntityData_desc, ne);
        for (int32_t j = 0; j < ne; j++)
            out->Entity.items[j] = (AlterClientQuotasResponse_EntityData){en->Entity.items[j].EntityType,
                                                                           en->Entity.items[j].EntityName};
        if (!allowed) {
            out->ErrorCode = KERR_CLUSTER_AUTHORIZATION_FAILED;
            continue;
        }
        meta_quota_op q;
        const char *bad = entry_parse(en, &q);
        if (bad) {
            out->ErrorCode = KERR_INVALID_REQUEST;
            out->ErrorMessage = kstr_from(bad);
            continue;
        }
        if (req->ValidateOnly) {
            meta_quota_op_free(&q);
            continue;
        }
        meta_wait_submit(w, meta_op_quota(&q), &out->ErrorCode, &out->ErrorMessage);
    }
    return meta_wait_end(w);
}
