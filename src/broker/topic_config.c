/* topic_config.c - the topic configuration keys (Kafka's names), their
 * broker-level defaults and synonyms, validation, and the mapping from a
 * topic's effective configuration to its log's (broker_int.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "broker/broker_int.h"

#define BROKER true  /* the default is the broker key's value */
#define FIXED false /* the default is fixed_default */

/* Config types as DescribeConfigs v3+ reports them. */
enum { TC_BOOLEAN = 1, TC_STRING = 2, TC_INT = 3, TC_SHORT = 4, TC_LONG = 5, TC_DOUBLE = 6, TC_LIST = 7 };

/* Keys whose default is a broker key's value (their synonym) say BROKER;
 * the rest have a fixed default. */
static const topic_config_key keys[] = {
    {"cleanup.policy", NULL, TC_LIST, FIXED, "delete"},
    {"compression.type", NULL, TC_STRING, FIXED, "producer"},
    {"delete.retention.ms", "log.cleaner.delete.retention.ms", TC_LONG, BROKER, NULL},
    {"file.delete.delay.ms", NULL, TC_LONG, FIXED, "60000"},
    {"flush.messages", "log.flush.interval.messages", TC_LONG, BROKER, NULL},
    {"flush.ms", "log.flush.interval.ms", TC_LONG, BROKER, NULL},
    {"index.interval.bytes", "log.index.interval.bytes", TC_INT, BROKER, NULL},
    {"max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", TC_LONG, BROKER, NULL},
    {"max.message.bytes", "message.max.bytes", TC_INT, BROKER, NULL},
    /* Deprecated in Kafka 3.x, which still accepts them and ignores them
     * (message format v2 is the only one, and down-conversion is never
     * done): accepted, shown, ignored. */
    {"message.downconversion.enable", "log.message.downconversion.enable", TC_BOOLEAN, FIXED, "true"},
    {"message.format.version", "log.message.format.version", TC_STRING, FIXED, "3.0-IV1"},
    {"message.timestamp.type", "log.message.timestamp.type", TC_STRING, BROKER, NULL},
    {"min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", TC_DOUBLE, BROKER, NULL},
    {"min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", TC_LONG, BROKER, NULL},
    {"min.insync.replicas", "min.insync.replicas", TC_INT, BROKER, NULL},
    {"preallocate", "log.preallocate", TC_BOOLEAN, BROKER, NULL},
    {"retention.bytes", "log.retention.bytes", TC_LONG, BROKER, NULL},
    {"retention.ms", "log.retention.ms", TC_LONG, BROKER, NULL},
    {"segment.bytes", "log.segment.bytes", TC_INT, BROKER, NULL},
    {"segment.index.bytes", NULL, TC_INT, FIXED, "10485760"},
    {"segment.ms", "log.roll.ms", TC_LONG, BROKER, NULL},
    {"unclean.leader.election.enable", "unclean.leader.election.enable", TC_BOOLEAN, BROKER, NULL},
};

const topic_config_key *topic_config_keys(size_t *n)
{
    *n = ARRAY_LEN(keys);
    return keys;
}

const topic_config_key *topic_config_find(const char *name, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        if (strlen(keys[i].name) == len && memcmp(keys[i].name, name, len) == 0)
            return &keys[i];
    return NULL;
}

/* The broker-level value of a key, formatted. */
void topic_config_default(const config *c, const topic_config_key *k, char *out, size_t n)
{
    if (!k->broker_default) {
        snprintf(out, n, "%s", k->fixed_default);
        return;
    }
    bool known = config_get(c, k->synonym, out, n);
    CK_ASSERT(known); /* the table names a broker key for every broker-level default */
}

static bool parse_long(const char *v, int64_t lo, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || end == v || x < lo)
        return false;
    *out = x;
    return true;
}

/* A Kafka release as message.format.version names one: "0.10.0",
 * "2.8", "3.0-IV1" (digits and dots, an optional -IVn suffix). */
static bool valid_format_version(const char *v)
{
    size_t digits = strspn(v, "0123456789.");
    if (digits == 0 || !isdigit((unsigned char)v[0]))
        return false;
    const char *rest = v + digits;
    if (!*rest)
        return true;
    return strncmp(rest, "-IV", 3) == 0 && rest[3] && strspn(rest + 3, "0123456789") == strlen(rest + 3);
}

bool topic_config_valid(const topic_config_key *k, const char *v)
{
    int64_t x;
    switch (k->type) {
    case TC_LONG:
        return parse_long(v, -1, &x);
    case TC_INT:
        return parse_long(v, 0, &x) && x <= INT32_MAX;
    case TC_BOOLEAN:
        return strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
    case TC_DOUBLE: {
        char *end;
        strtod(v, &end);
        return *v && !*end;
    }
    default:
        if (strcmp(k->name, "cleanup.policy") == 0)
            return strcmp(v, "delete") == 0 || strcmp(v, "compact") == 0 ||
                   strcmp(v, "compact,delete") == 0 || strcmp(v, "delete,compact") == 0;
        if (strcmp(k->name, "message.timestamp.type") == 0)
            return strcmp(v, "CreateTime") == 0 || strcmp(v, "LogAppendTime") == 0;
        if (strcmp(k->name, "message.format.version") == 0)
            return valid_format_version(v);
        return true;
    }
}

/* Effective value of a boolean key: the topic's override, else the broker's. */
static bool effective_bool(const config *c, const meta_topic *t, const char *name)
{
    const char *v = t ? meta_topic_config(t, name) : NULL;
    if (v && (strcmp(v, "true") == 0 || strcmp(v, "false") == 0))
        return v[0] == 't';
    char buf[8];
    topic_config_default(c, topic_config_find(name, strlen(name)), buf, sizeof buf);
    return strcmp(buf, "true") == 0;
}

/* Effective value: the topic's override, else the broker's. */
static int64_t effective_long(const config *c, const meta_topic *t, const char *name)
{
    const char *v = t ? meta_topic_config(t, name) : NULL;
    int64_t x;
    if (v && parse_long(v, INT64_MIN, &x))
        return x;
    char buf[64];
    topic_config_default(c, topic_config_find(name, strlen(name)), buf, sizeof buf);
    return strtoll(buf, NULL, 10);
}

int64_t topic_config_long(const config *c, const meta_topic *t, const char *name)
{
    return effective_long(c, t, name);
}

double topic_config_double(const config *c, const meta_topic *t, const char *name)
{
    const char *v = t ? meta_topic_config(t, name) : NULL;
    char buf[64];
    if (!v) {
        topic_config_default(c, topic_config_find(name, strlen(name)), buf, sizeof buf);
        v = buf;
    }
    return strtod(v, NULL);
}

bool topic_config_log_append_time(const config *c, const meta_topic *t)
{
    const char *v = t ? meta_topic_config(t, "message.timestamp.type") : NULL;
    return v ? strcmp(v, "LogAppendTime") == 0 : c->log_message_timestamp_type == CONFIG_LOG_APPEND_TIME;
}

void topic_config_plog(void *ctx, const meta_topic *t, plog_config_t *out)
{
    const config *c = ctx;
    plog_config_default(out);
    out->segment_bytes = effective_long(c, t, "segment.bytes");
    out->roll_ms = effective_long(c, t, "segment.ms");
    out->index_interval_bytes = (int32_t)effective_long(c, t, "index.interval.bytes");
    out->retention_ms = effective_long(c, t, "retention.ms");
    out->retention_bytes = effective_long(c, t, "retention.bytes");
    int64_t fm = effective_long(c, t, "flush.messages"), fms = effective_long(c, t, "flush.ms");
    /* Durable by default: only an explicit flush.messages > 1 or a finite
     * flush.ms lets acknowledgements run ahead of fsync. */
    if ((fm == INT64_MAX && fms == INT64_MAX) || fm <= 1) {
        out->flush_messages = 1;
    } else {
        out->flush_messages = fm;
        out->flush_ms = fms;
    }
    if (out->segment_bytes < PLOG_SEGMENT_BYTES_MIN)
        out->segment_bytes = PLOG_SEGMENT_BYTES_MIN;
    out->preallocate_bytes = effective_bool(c, t, "preallocate") ? PLOG_PREALLOCATE_BYTES_DEFAULT : 0;
    out->cache_window_bytes = c->log_cache_window_bytes < 0 ? -1 : c->log_cache_window_bytes;
    /* A compact-only topic keeps the latest value of every key forever:
     * time and size retention apply only when the policy includes delete. */
    const char *policy = t ? meta_topic_config(t, "cleanup.policy") : NULL;
    if (policy && !strstr(policy, "delete")) {
        out->retention_ms = -1;
        out->retention_bytes = -1;
    }
    /* As Kafka's LogConfig.maxSegmentMs: a compacted topic's active segment
     * rolls once max.compaction.lag.ms has passed, so that its records can
     * be cleaned within that lag. */
    int64_t max_lag = effective_long(c, t, "max.compaction.lag.ms");
    if (policy && strstr(policy, "compact") && max_lag > 0 && max_lag < out->roll_ms)
        out->roll_ms = max_lag;
}
