/* api_describe_configs.c - DescribeConfigs (key 32) v0-v4.
 *
 * TOPIC resources: every topic configuration key (topic_config.c) with its
 * effective value and where it comes from: the topic's override
 * (TOPIC_CONFIG), else the broker-level synonym's source (below). With
 * IncludeSynonyms (v1+) each entry lists those sources in that order.
 *
 * BROKER resources: the node's own configuration (config.c's table, its
 * aliases and ignored keys left out), each key with where its value comes
 * from: this node's dynamic value (DYNAMIC_BROKER_CONFIG), the cluster-wide
 * dynamic default (DYNAMIC_DEFAULT_BROKER_CONFIG), the file or flags
 * (STATIC_BROKER_CONFIG), else DEFAULT_CONFIG; read-only unless dynamic.
 * The empty name (the cluster-wide default) lists the dynamic defaults
 * set. Any other id, and any other resource type, is INVALID_REQUEST.
 * A topic key's synonyms follow the same order after its override.
 *
 * A topic needs DESCRIBE_CONFIGS on it (else TOPIC_AUTHORIZATION_FAILED),
 * a broker DESCRIBE_CONFIGS on the cluster (else
 * CLUSTER_AUTHORIZATION_FAILED), each resource on its own.
 *
 * ConfigurationKeys null (or empty) asks for every key; unknown names in it
 * are ignored. v0 reports IsDefault instead of ConfigSource. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

enum { RES_TOPIC = 2, RES_BROKER = 4 };
/* Kafka's ConfigSource ids. */
enum {
    SRC_TOPIC_CONFIG = 1,
    SRC_DYNAMIC_BROKER_CONFIG = 2,
    SRC_DYNAMIC_DEFAULT_BROKER_CONFIG = 3,
    SRC_STATIC_BROKER_CONFIG = 4,
    SRC_DEFAULT_CONFIG = 5
};
enum { VALUE_MAX = 2048, SYNONYMS_MAX = 5 };

typedef struct describe {
    breq *r;
    bool synonyms;
    const config *dflt; /* what the node would run with given no file and no flags */
    const meta_image *img;
    const kstr_array_t *keys;
    DescribeConfigsResponse_DescribeConfigsResult *out;
} describe;

typedef DescribeConfigsResponse_DescribeConfigsResourceResult entry_t;

static bool wanted(const describe *d, const char *name)
{
    if (d->keys->count <= 0)
        return true;
    for (int32_t i = 0; i < d->keys->count; i++)
        if (kstr_eq(d->keys->items[i], name))
            return true;
    return false;
}

static kstr_t copy_str(breq *r, const char *s)
{
    size_t n = strlen(s);
    return (kstr_t){arena_strndup(&r->arena, s, n), (int32_t)n};
}

static void set_entry(describe *d, entry_t *e, const char *name, const char *value, int8_t source,
                      int8_t type, bool read_only)
{
    e->Name = kstr_from(name);
    e->Value = copy_str(d->r, value);
    e->ReadOnly = read_only;
    e->IsDefault = source == SRC_DEFAULT_CONFIG;
    e->ConfigSource = source;
    e->IsSensitive = false;
    e->ConfigType = type;
    e->Documentation = KSTR_NULL;
    e->Synonyms.count = 0;
    if (d->synonyms)
        e->Synonyms.items =
            breq_items(d->r, &DescribeConfigsResponse_DescribeConfigsSynonym_desc, SYNONYMS_MAX);
}

static void add_synonym(describe *d, entry_t *e, const char *name, const char *value, int8_t source)
{
    if (!d->synonyms)
        return;
    CK_ASSERT(e->Synonyms.count < SYNONYMS_MAX);
    DescribeConfigsResponse_DescribeConfigsSynonym *s = &e->Synonyms.items[e->Synonyms.count++];
    s->Name = kstr_from(name);
    s->Value = copy_str(d->r, value);
    s->Source = source;
}

static void fail(describe *d, int16_t err, const char *msg)
{
    d->out->ErrorCode = err;
    d->out->ErrorMessage = kstr_from(msg);
    d->out->Configs.count = 0;
}

/* ---- where a broker-level value comes from --------------------------------- */

/* Where a broker-level value comes from, with its synonyms in Kafka's
 * order: this node's dynamic value, the cluster-wide dynamic default, the
 * static configuration, the default. */
typedef struct origin {
    const char *node, *cluster; /* dynamic values, or NULL */
    char live[VALUE_MAX], stat[VALUE_MAX], dflt[VALUE_MAX];
} origin;

static void origin_of(describe *d, const char *key, origin *o)
{
    dynconf_lookup(d->r->b, d->img, key, &o->node, &o->cluster);
    config_get(&d->r->b->cfg, key, o->live, sizeof o->live);
    config_get(&d->r->b->static_cfg, key, o->stat, sizeof o->stat);
    config_get(d->dflt, key, o->dflt, sizeof o->dflt);
}

static int8_t origin_source(const origin *o)
{
    return o->node      ? SRC_DYNAMIC_BROKER_CONFIG
           : o->cluster ? SRC_DYNAMIC_DEFAULT_BROKER_CONFIG
           : strcmp(o->stat, o->dflt) != 0 ? SRC_STATIC_BROKER_CONFIG
                                            : SRC_DEFAULT_CONFIG;
}

static void origin_synonyms(describe *d, entry_t *e, const char *key, const origin *o)
{
    if (o->node)
        add_synonym(d, e, key, o->node, SRC_DYNAMIC_BROKER_CONFIG);
    if (o->cluster)
        add_synonym(d, e, key, o->cluster, SRC_DYNAMIC_DEFAULT_BROKER_CONFIG);
    if (strcmp(o->stat, o->dflt) != 0)
        add_synonym(d, e, key, o->stat, SRC_STATIC_BROKER_CONFIG);
    add_synonym(d, e, key, o->dflt, SRC_DEFAULT_CONFIG);
}

/* ---- topics ---------------------------------------------------------------- */

static void topic_entry(describe *d, const meta_topic *t, const topic_config_key *k, entry_t *e)
{
    const char *override = meta_topic_config(t, k->name);
    origin o = {0};
    if (k->synonym && config_get(&d->r->b->cfg, k->synonym, o.live, sizeof o.live)) {
        origin_of(d, k->synonym, &o);
    } else { /* no broker-level setting (or an ignored one) */
        topic_config_default(&d->r->b->cfg, k, o.live, sizeof o.live);
        topic_config_default(d->dflt, k, o.dflt, sizeof o.dflt);
        snprintf(o.stat, sizeof o.stat, "%s", o.dflt);
    }
    int8_t src = override ? SRC_TOPIC_CONFIG : origin_source(&o);
    set_entry(d, e, k->name, override ? override : o.live, src, k->type, false);
    if (override)
        add_synonym(d, e, k->name, override, SRC_TOPIC_CONFIG);
    origin_synonyms(d, e, k->synonym ? k->synonym : k->name, &o);
}

static void describe_topic(describe *d, const meta_image *img, kstr_t name)
{
    if (name.len <= 0 || !meta_valid_topic_name(name.ptr, (size_t)name.len)) {
        fail(d, KERR_INVALID_TOPIC_EXCEPTION, "invalid topic name");
        return;
    }
    const meta_topic *t = meta_image_topic(img, name.ptr, (size_t)name.len);
    if (!t) {
        fail(d, KERR_UNKNOWN_TOPIC_OR_PARTITION, "unknown topic");
        return;
    }
    size_t nk;
    const topic_config_key *keys = topic_config_keys(&nk);
    d->out->Configs.items =
        breq_items(d->r, &DescribeConfigsResponse_DescribeConfigsResourceResult_desc, (int32_t)nk);
    d->out->Configs.count = 0;
    for (size_t i = 0; i < nk; i++)
        if (wanted(d, keys[i].name))
            topic_entry(d, t, &keys[i], &d->out->Configs.items[d->out->Configs.count++]);
}

/* ---- the broker ----------------------------------------------------------- */

static void broker_entry(describe *d, const config_key_info *k, entry_t *e)
{
    origin o;
    origin_of(d, k->name, &o);
    set_entry(d, e, k->name, o.live, origin_source(&o), k->kafka_type, !k->dynamic);
    origin_synonyms(d, e, k->name, &o);
    if (k->sensitive) { /* a password: Kafka's null value, flagged */
        e->IsSensitive = true;
        e->Value = KSTR_NULL;
        for (int32_t i = 0; i < e->Synonyms.count; i++)
            e->Synonyms.items[i].Value = KSTR_NULL;
    }
}

/* The cluster-wide default resource lists only the dynamic defaults set. */
static void default_entry(describe *d, const config_key_info *k, entry_t *e, const char *value)
{
    set_entry(d, e, k->name, value, SRC_DYNAMIC_DEFAULT_BROKER_CONFIG, k->kafka_type, false);
    add_synonym(d, e, k->name, value, SRC_DYNAMIC_DEFAULT_BROKER_CONFIG);
}

static void describe_broker(describe *d, kstr_t name)
{
    d->out->Configs.count = 0;
    const char *msg;
    if (dynconf_check_resource(d->r->b, name, false, &msg) != KERR_NONE) {
        fail(d, KERR_INVALID_REQUEST, msg);
        return;
    }
    int32_t n = (int32_t)config_key_count();
    d->out->Configs.items =
        breq_items(d->r, &DescribeConfigsResponse_DescribeConfigsResourceResult_desc, n);
    for (int32_t i = 0; i < n; i++) {
        config_key_info k;
        config_key_at((size_t)i, &k);
        if (k.alias || k.ignored || !wanted(d, k.name))
            continue;
        const char *dflt = meta_broker_config_get(d->img, "", k.name);
        if (name.len > 0)
            broker_entry(d, &k, &d->out->Configs.items[d->out->Configs.count++]);
        else if (dflt)
            default_entry(d, &k, &d->out->Configs.items[d->out->Configs.count++], dflt);
    }
}

/* ---- request --------------------------------------------------------------- */

static const config *default_config(breq *r)
{
    config *c = arena_alloc(&r->arena, sizeof *c);
    char err[256];
    config_defaults(c);
    if (config_finish(c, err, sizeof err) != 0)
        CK_PANIC("the default configuration does not finish: %s", err);
    return c;
}

breq_rc api_describe_configs(breq *r)
{
    const DescribeConfigsRequest *req = r->req;
    DescribeConfigsResponse *resp = r->resp;
    int32_t n = MAX(req->Resources.count, 0);
    resp->Results.count = n;
    resp->Results.items = breq_items(r, &DescribeConfigsResponse_DescribeConfigsResult_desc, n);
    meta_image *img = meta_acquire(r->b->meta);
    breq_hold_image(r, img); /* values of overrides point into it */
    describe d = {.r = r,
                  .synonyms = r->hdr.api_version >= 1 && req->IncludeSynonyms,
                  .dflt = default_config(r),
                  .img = img};
    for (int32_t i = 0; i < n; i++) {
        const DescribeConfigsRequest_DescribeConfigsResource *res = &req->Resources.items[i];
        d.out = &resp->Results.items[i];
        d.keys = &res->ConfigurationKeys;
        d.out->ResourceType = res->ResourceType;
        d.out->ResourceName = res->ResourceName;
        d.out->ErrorMessage = KSTR_NULL;
        int16_t denied = broker_config_denied(r, img, ACL_OP_DESCRIBE_CONFIGS, res->ResourceType, res->ResourceName);
        if (denied != KERR_NONE)
            fail(&d, denied, kerr_message(denied));
        else if (res->ResourceType == RES_TOPIC)
            describe_topic(&d, img, res->ResourceName);
        else if (res->ResourceType == RES_BROKER)
            describe_broker(&d, res->ResourceName);
        else
            fail(&d, KERR_INVALID_REQUEST, "unsupported resource type");
    }
    return BREQ_DONE;
}
