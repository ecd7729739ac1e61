/* api_describe_configs.c - DescribeConfigs (key 32) v0-v4.
 *
 * TOPIC resources: every topic configuration key (topic_config.c) with its
 * effective value and where it comes from: the topic's override
 * (TOPIC_CONFIG), else the broker-level synonym when the broker's
 * configuration sets it to something other than its default
 * (STATIC_BROKER_CONFIG), else the default (DEFAULT_CONFIG). With
 * IncludeSynonyms (v1+) each entry lists those sources in that order.
 *
 * BROKER resources: the node's own configuration (config.h), read-only
 * since this broker has no dynamic broker configuration. The name must be
 * this node's id; the empty name (the cluster-wide dynamic defaults) has no
 * entries. Any other id, and any other resource type, is INVALID_REQUEST.
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
enum { SRC_TOPIC_CONFIG = 1, SRC_STATIC_BROKER_CONFIG = 4, SRC_DEFAULT_CONFIG = 5 };
/* Kafka's ConfigType ids (the topic keys carry theirs in the table). */
enum { CT_BOOLEAN = 1, CT_STRING = 2, CT_INT = 3, CT_SHORT = 4, CT_LONG = 5, CT_DOUBLE = 6, CT_LIST = 7 };
enum { VALUE_MAX = 2048, SYNONYMS_MAX = 3 };

typedef struct describe {
    breq *r;
    bool synonyms;
    const config *dflt; /* what the node would run with given no file and no flags */
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

/* ---- topics ---------------------------------------------------------------- */

static void topic_entry(describe *d, const meta_topic *t, const topic_config_key *k, entry_t *e)
{
    char live[VALUE_MAX], dflt[VALUE_MAX];
    topic_config_default(&d->r->b->cfg, k, live, sizeof live);
    topic_config_default(d->dflt, k, dflt, sizeof dflt);
    const char *override = meta_topic_config(t, k->name);
    bool static_set = k->synonym && strcmp(live, dflt) != 0;
    int8_t src = override     ? SRC_TOPIC_CONFIG
                 : static_set ? SRC_STATIC_BROKER_CONFIG
                              : SRC_DEFAULT_CONFIG;
    set_entry(d, e, k->name, override ? override : live, src, k->type, false);
    if (override)
        add_synonym(d, e, k->name, override, SRC_TOPIC_CONFIG);
    if (static_set)
        add_synonym(d, e, k->synonym, live, SRC_STATIC_BROKER_CONFIG);
    add_synonym(d, e, k->synonym ? k->synonym : k->name, dflt, SRC_DEFAULT_CONFIG);
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

typedef enum bk_kind {
    BK_I16,
    BK_I32,
    BK_I64,
    BK_DOUBLE,
    BK_BOOL,
    BK_STR,
    BK_ADDR,
    BK_ADVERTISED,
    BK_LISTENERS,
    BK_VOTERS,
    BK_LOGLEVEL
} bk_kind;

typedef struct broker_key {
    const char *name;
    bk_kind kind;
    size_t off; /* offsetof(config, ...) */
    int8_t type;
} broker_key;

#define F(field) offsetof(config, field)

/* The keys of config.c's table under their canonical names (aliases such
 * as log.retention.hours are left out: they set the same fields). */
static const broker_key broker_keys[] = {
    {"admin.listeners", BK_ADDR, F(admin_listen), CT_STRING},
    {"advertised.listeners", BK_ADVERTISED, F(advertise), CT_STRING},
    {"auto.create.topics.enable", BK_BOOL, F(auto_create_topics_enable), CT_BOOLEAN},
    {"cluster.id", BK_STR, F(cluster_id), CT_STRING},
    {"controller.quorum.voters", BK_VOTERS, F(voters), CT_LIST},
    {"default.replication.factor", BK_I16, F(default_replication_factor), CT_SHORT},
    {"group.initial.rebalance.delay.ms", BK_I32, F(group_initial_rebalance_delay_ms), CT_INT},
    {"group.max.session.timeout.ms", BK_I32, F(group_max_session_timeout_ms), CT_INT},
    {"group.min.session.timeout.ms", BK_I32, F(group_min_session_timeout_ms), CT_INT},
    {"listeners", BK_LISTENERS, F(listen), CT_STRING},
    {"log.dirs", BK_STR, F(data_dir), CT_STRING},
    {"log.flush.interval.messages", BK_I64, F(log_flush_interval_messages), CT_LONG},
    {"log.flush.interval.ms", BK_I64, F(log_flush_interval_ms), CT_LONG},
    {"log.cache.window.bytes", BK_I64, F(log_cache_window_bytes), CT_LONG},
    {"log.cleaner.backoff.ms", BK_I64, F(log_cleaner_backoff_ms), CT_LONG},
    {"log.cleaner.delete.retention.ms", BK_I64, F(log_cleaner_delete_retention_ms), CT_LONG},
    {"log.cleaner.max.compaction.lag.ms", BK_I64, F(log_cleaner_max_compaction_lag_ms), CT_LONG},
    {"log.cleaner.min.cleanable.ratio", BK_DOUBLE, F(log_cleaner_min_cleanable_ratio), CT_DOUBLE},
    {"log.cleaner.min.compaction.lag.ms", BK_I64, F(log_cleaner_min_compaction_lag_ms), CT_LONG},
    {"log.index.interval.bytes", BK_I32, F(log_index_interval_bytes), CT_INT},
    {"log.level", BK_LOGLEVEL, F(log_level), CT_STRING},
    {"log.message.timestamp.type", BK_STR, F(log_message_timestamp_type), CT_STRING},
    {"log.preallocate", BK_BOOL, F(log_preallocate), CT_BOOLEAN},
    {"log.retention.bytes", BK_I64, F(log_retention_bytes), CT_LONG},
    {"log.retention.check.interval.ms", BK_I64, F(log_retention_check_interval_ms), CT_LONG},
    {"log.retention.ms", BK_I64, F(log_retention_ms), CT_LONG},
    {"log.roll.ms", BK_I64, F(log_roll_ms), CT_LONG},
    {"log.segment.bytes", BK_I64, F(log_segment_bytes), CT_INT},
    {"message.max.bytes", BK_I32, F(message_max_bytes), CT_INT},
    {"min.insync.replicas", BK_I32, F(min_insync_replicas), CT_INT},
    {"node.id", BK_I32, F(node_id), CT_INT},
    {"num.network.threads", BK_I32, F(num_network_threads), CT_INT},
    {"num.partitions", BK_I32, F(num_partitions), CT_INT},
    {"offsets.retention.check.interval.ms", BK_I64, F(offsets_retention_check_interval_ms), CT_LONG},
    {"offsets.retention.minutes", BK_I64, F(offsets_retention_minutes), CT_INT},
    {"offsets.topic.num.partitions", BK_I32, F(offsets_topic_num_partitions), CT_INT},
    {"quorum.election.backoff.max.ms", BK_I32, F(quorum_election_backoff_max_ms), CT_INT},
    {"quorum.election.timeout.ms", BK_I32, F(quorum_election_timeout_ms), CT_INT},
    {"quorum.fetch.timeout.ms", BK_I32, F(quorum_fetch_timeout_ms), CT_INT},
    {"replica.lag.time.max.ms", BK_I32, F(replica_lag_time_max_ms), CT_LONG},
    {"socket.request.max.bytes", BK_I32, F(socket_request_max_bytes), CT_INT},
};

/* "HOST:PORT", bracketing an IPv6 host; returns the length written. */
static int fmt_addr(char *out, size_t n, const config_addr *a)
{
    return snprintf(out, n, strchr(a->host, ':') ? "[%s]:%d" : "%s:%d", a->host, a->port);
}

static void fmt_voters(const config *c, char *out, size_t n)
{
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < c->nvoters && used < n; i++) {
        int w = snprintf(out + used, n - used, "%s%" PRId32 "@", i ? "," : "", c->voters[i].id);
        if (w < 0 || (size_t)w >= n - used)
            return;
        used += (size_t)w;
        w = fmt_addr(out + used, n - used, &c->voters[i].addr);
        if (w < 0)
            return;
        used += (size_t)w;
    }
}

static void broker_value(const config *c, const broker_key *k, char *out, size_t n)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    const char *p = (const char *)c + k->off;
    char a[CONFIG_HOST_MAX + 16], b[CONFIG_HOST_MAX + 16];
    switch (k->kind) {
    case BK_I16:
        snprintf(out, n, "%d", *(const int16_t *)p);
        break;
    case BK_I32:
        snprintf(out, n, "%" PRId32, *(const int32_t *)p);
        break;
    case BK_I64:
        snprintf(out, n, "%" PRId64, *(const int64_t *)p);
        break;
    case BK_DOUBLE:
        snprintf(out, n, "%g", *(const double *)p);
        break;
    case BK_BOOL:
        snprintf(out, n, "%s", *(const bool *)p ? "true" : "false");
        break;
    case BK_STR:
        snprintf(out, n, "%s", p);
        break;
    case BK_ADDR:
        fmt_addr(out, n, (const config_addr *)p);
        break;
    case BK_ADVERTISED:
        fmt_addr(a, sizeof a, &c->advertise);
        snprintf(out, n, "PLAINTEXT://%s", a);
        break;
    case BK_LISTENERS:
        fmt_addr(a, sizeof a, &c->listen);
        fmt_addr(b, sizeof b, &c->controller_listen);
        snprintf(out, n, "PLAINTEXT://%s,CONTROLLER://%s", a, b);
        break;
    case BK_VOTERS:
        fmt_voters(c, out, n);
        break;
    case BK_LOGLEVEL: {
        int32_t l = *(const int32_t *)p;
        snprintf(out, n, "%s", l >= 0 && l < 4 ? levels[l] : "info");
        break;
    }
    }
}

static void broker_entry(describe *d, const broker_key *k, entry_t *e)
{
    char live[VALUE_MAX], dflt[VALUE_MAX];
    broker_value(&d->r->b->cfg, k, live, sizeof live);
    broker_value(d->dflt, k, dflt, sizeof dflt);
    bool static_set = strcmp(live, dflt) != 0;
    set_entry(d, e, k->name, live, static_set ? SRC_STATIC_BROKER_CONFIG : SRC_DEFAULT_CONFIG,
              k->type, true);
    if (static_set)
        add_synonym(d, e, k->name, live, SRC_STATIC_BROKER_CONFIG);
    add_synonym(d, e, k->name, dflt, SRC_DEFAULT_CONFIG);
}

static void describe_broker(describe *d, kstr_t name)
{
    d->out->Configs.count = 0;
    if (name.len <= 0)
        return; /* no cluster-wide dynamic defaults exist */
    char *s = breq_strdup(d->r, name), *end;
    errno = 0;
    long long id = strtoll(s, &end, 10);
    if (errno || *end || end == s) {
        fail(d, KERR_INVALID_REQUEST, "broker id must be an integer");
        return;
    }
    if (id != d->r->b->cfg.node_id) {
        fail(d, KERR_INVALID_REQUEST,
             "unexpected broker id: ask the broker itself, or give the empty name");
        return;
    }
    int32_t n = (int32_t)ARRAY_LEN(broker_keys);
    d->out->Configs.items =
        breq_items(d->r, &DescribeConfigsResponse_DescribeConfigsResourceResult_desc, n);
    for (int32_t i = 0; i < n; i++)
        if (wanted(d, broker_keys[i].name))
            broker_entry(d, &broker_keys[i], &d->out->Configs.items[d->out->Configs.count++]);
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
                  .dflt = default_config(r)};
    for (int32_t i = 0; i < n; i++) {
        const DescribeConfigsRequest_DescribeConfigsResource *res = &req->Resources.items[i];
        d.out = &resp->Results.items[i];
        d.keys = &res->ConfigurationKeys;
        d.out->ResourceType = res->ResourceType;
        d.out->ResourceName = res->ResourceName;
        d.out->ErrorMessage = KSTR_NULL;
        if (res->ResourceType == RES_TOPIC)
            describe_topic(&d, img, res->ResourceName);
        else if (res->ResourceType == RES_BROKER)
            describe_broker(&d, res->ResourceName);
        else
            fail(&d, KERR_INVALID_REQUEST, "unsupported resource type");
    }
    return BREQ_DONE;
}
