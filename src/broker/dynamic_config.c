/* dynamic_config.c - dynamic broker configuration, as Kafka's
 * DynamicBrokerConfig does it in its "cluster-wide" update mode.
 *
 * The keys that config.c's table marks dynamic can be changed at run time
 * with AlterConfigs / IncrementalAlterConfigs on a BROKER resource: named
 * by this node's id (this node only) or by "" (the cluster-wide default).
 * The node that receives the change checks it and forwards it to the
 * controller (forward.c), whose controller listener takes any node id.
 * The controller keeps them as ConfigRecords (resource type BROKER) in the
 * metadata log, so they survive a restart, and every applied image
 * recomputes the node's settings: the static configuration (file and
 * flags), then the cluster-wide defaults, then this node's own values (at
 * each level a canonical key wins over its aliases, as log.retention.ms
 * over log.retention.hours). A topic without an override follows the new
 * value: its log is reconfigured when the image is applied. Other keys are
 * refused with Kafka's error: INVALID_REQUEST "Cannot update these configs
 * dynamically: ...". */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/broker_int.h"

enum { MSG_MAX = 1024 };

static void node_name(const broker *b, char *out, size_t n) { snprintf(out, n, "%d", b->cfg.node_id); }

/* Applies the records of one resource, aliases or canonical keys. */
static void apply_level(config *c, const meta_image *img, const char *resource, bool aliases)
{
    for (int32_t i = 0; i < img->nbroker_configs; i++) {
        const meta_broker_config *rec = &img->broker_configs[i];
        config_key_info k;
        if (strcmp(rec->resource, resource) != 0 || !config_key_find(rec->key, &k) || !k.dynamic ||
            k.alias != aliases)
            continue;
        char err[256];
        if (config_set(c, rec->key, rec->value, err, sizeof err) != 0)
            log_warn("broker", "dynamic config ignored resource=\"%s\" err=\"%s\"", resource, err);
    }
}

bool dynconf_apply(broker *b, const meta_image *img)
{
    config *next = xmalloc(sizeof *next);
    *next = b->static_cfg;
    char node[16];
    node_name(b, node, sizeof node);
    apply_level(next, img, "", true);
    apply_level(next, img, "", false);
    apply_level(next, img, node, true);
    apply_level(next, img, node, false);
    char err[256];
    if (config_finish(next, err, sizeof err) != 0) {
        log_warn("broker", "dynamic configs ignored err=\"%s\"", err);
        *next = b->static_cfg;
    }
    bool changed = config_copy_dynamic(&b->cfg, next);
    free(next);
    return changed;
}

int16_t dynconf_check_resource(const broker *b, kstr_t name, bool any_node, const char **msg)
{
    if (name.len <= 0)
        return KERR_NONE; /* the cluster-wide default */
    char buf[16], node[16];
    if ((size_t)name.len >= sizeof buf)
        return *msg = "Unable to parse broker name as a base 10 number.", KERR_INVALID_REQUEST;
    memcpy(buf, name.ptr, (size_t)name.len);
    buf[name.len] = 0;
    char *end;
    errno = 0;
    long id = strtol(buf, &end, 10);
    if (errno || *end || end == buf)
        return *msg = "Unable to parse broker name as a base 10 number.", KERR_INVALID_REQUEST;
    node_name(b, node, sizeof node);
    if (id < 0 || id > INT32_MAX || (!any_node && strcmp(buf, node) != 0))
        return *msg = "unexpected broker id: give this node's id, or the empty name for the cluster-wide default",
               KERR_INVALID_REQUEST;
    return KERR_NONE;
}

static const char *kafka_prefixed(breq *r, kstr_t resource, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const char *kafka_prefixed(breq *r, kstr_t resource, const char *fmt, ...)
{
    char buf[MSG_MAX];
    int n = snprintf(buf, sizeof buf, "Invalid config value for resource ConfigResource(type=BROKER, name='%.*s'): ",
                     (int)MAX(resource.len, 0), resource.ptr ? resource.ptr : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    return arena_strndup(&r->arena, buf, strlen(buf));
}

int16_t dynconf_check_keys(breq *r, kstr_t resource, const char *const *keys, int32_t n, const char **msg)
{
    char list[MSG_MAX] = "";
    for (int32_t i = 0; i < n; i++) {
        config_key_info k;
        if (!config_key_find(keys[i], &k) || k.ignored) {
            *msg = kafka_prefixed(r, resource, "unknown broker config '%s'", keys[i]);
            return KERR_INVALID_CONFIG;
        }
        size_t used = strlen(list);
        if (!k.dynamic)
            snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", keys[i]);
    }
    if (!list[0])
        return KERR_NONE;
    *msg = kafka_prefixed(r, resource, "Cannot update these configs dynamically: Set(%s)", list);
    return KERR_INVALID_REQUEST;
}

int16_t dynconf_check_value(breq *r, kstr_t resource, const char *key, const char *value, const char **msg)
{
    if (!value)
        return KERR_NONE;
    config *scratch = xmalloc(sizeof *scratch);
    *scratch = r->b->static_cfg;
    char err[256];
    int rc = config_set(scratch, key, value, err, sizeof err);
    if (rc == 0)
        rc = config_finish(scratch, err, sizeof err); /* the ranges it checks */
    free(scratch);
    if (rc == 0)
        return KERR_NONE;
    *msg = kafka_prefixed(r, resource, "%s", err);
    return KERR_INVALID_REQUEST;
}

/* The dynamic value of key (or of one of its aliases) at resource, or NULL. */
static const char *level_value(const meta_image *img, const char *resource, const char *key)
{
    const char *v = meta_broker_config_get(img, resource, key);
    for (int32_t i = 0; !v && i < img->nbroker_configs; i++) {
        const meta_broker_config *rec = &img->broker_configs[i];
        if (strcmp(rec->resource, resource) == 0 && config_same_setting(rec->key, key))
            v = rec->value;
    }
    return v;
}

void dynconf_lookup(const broker *b, const meta_image *img, const char *key, const char **node_value,
                    const char **default_value)
{
    char node[16];
    node_name(b, node, sizeof node);
    *node_value = level_value(img, node, key);
    *default_value = level_value(img, "", key);
}
