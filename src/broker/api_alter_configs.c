/* api_alter_configs.c - AlterConfigs (key 33) v0-v2 and
 * IncrementalAlterConfigs (key 44) v0-v1, for TOPIC resources.
 *
 * AlterConfigs replaces a topic's overrides with the ones given (keys not
 * listed go back to their defaults). IncrementalAlterConfigs changes single
 * keys: SET a value, DELETE the override, APPEND to or SUBTRACT from a list
 * key (cleanup.policy), starting from the effective value.
 *
 * Each resource needs ALTER_CONFIGS, on the topic (else
 * TOPIC_AUTHORIZATION_FAILED) or on the cluster for a broker (else
 * CLUSTER_AUTHORIZATION_FAILED), checked first.
 *
 * The resource is checked before its keys, as Kafka's AdminZkClient does
 * (topic name, then existence: a missing topic is UNKNOWN_TOPIC_OR_PARTITION
 * whatever its keys). Then every key and resulting value is checked here (an
 * unknown key or a bad value is INVALID_CONFIG naming it; a key or resource
 * given twice, a null value where one is needed, or an unknown operation is
 * INVALID_REQUEST); the controller checks existence again against the
 * latest state and writes ConfigRecords.
 * validate_only runs every check and changes nothing. The partition logs
 * take a change when the new metadata image is applied (replica_sync).
 *
 * BROKER resources ("" for the cluster-wide default, or this node's id)
 * change the dynamic broker configuration (dynamic_config.c): a key that
 * Kafka cannot change at run time is INVALID_REQUEST "Cannot update these
 * configs dynamically", a bad value INVALID_REQUEST too (both with Kafka's
 * "Invalid config value for resource" prefix), an unknown key
 * INVALID_CONFIG.
 *
 * Any node takes both APIs: every check above runs where the request
 * arrives, so an invalid change gets the same error at every node; a node
 * that does not lead the metadata quorum then forwards the change to the
 * one that does (src/meta/forward.c) and answers once it is committed and
 * applied to its own image, so DescribeConfigs there reads the new value
 * at once. The controller listener takes the forwarded requests (checked
 * again there; a BROKER resource may then name any node). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker_int.h"

enum { RES_TOPIC = 2, RES_BROKER = 4 };
enum { OP_SET = 0, OP_DELETE = 1, OP_APPEND = 2, OP_SUBTRACT = 3 };
enum { CT_LIST = 7 }; /* Kafka's ConfigType LIST, as topic_config_key.type holds it */
enum { MSG_MAX = 512, VALUE_MAX = 4096 };

/* One key's outcome: value NULL removes the override. */
typedef struct change {
    const char *key;
    const char *value;
} change;

static const char *fmt(breq *r, const char *f, ...) __attribute__((format(printf, 2, 3)));
static const char *fmt(breq *r, const char *f, ...)
{
    char buf[MSG_MAX];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return arena_strndup(&r->arena, buf, strlen(buf));
}

static bool same(kstr_t a, kstr_t b)
{
    return a.len == b.len && (a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

/* ALTER_CONFIGS on the resource, checked after the duplicates and before
 * anything else (Kafka's order). */
static int16_t denied(breq *r, const meta_image *img, int8_t type, kstr_t name, const char **msg)
{
    int16_t err = broker_config_denied(r, img, ACL_OP_ALTER_CONFIGS, type, name);
    if (err != KERR_NONE)
        *msg = kerr_message(err);
    return err;
}

/* The resource before its keys (Kafka's order): its type, its name, then
 * whether the topic exists. */
static int16_t check_resource(const meta_image *img, int8_t type, kstr_t name, const char **msg)
{
    if (type != RES_TOPIC)
        return *msg = "only topic and broker configurations can be altered", KERR_INVALID_REQUEST;
    if (name.len <= 0 || !meta_valid_topic_name(name.ptr, (size_t)name.len))
        return *msg = "invalid topic name", KERR_INVALID_TOPIC_EXCEPTION;
    if (!meta_image_topic(img, name.ptr, (size_t)name.len))
        return *msg = "unknown topic", KERR_UNKNOWN_TOPIC_OR_PARTITION;
    return KERR_NONE;
}

static int16_t check_key(breq *r, kstr_t name, const topic_config_key **k, const char **msg)
{
    *k = topic_config_find(name.ptr, (size_t)MAX(name.len, 0));
    if (!*k)
        return *msg = fmt(r, "unknown topic config '%s'", breq_strdup(r, name)),
               KERR_INVALID_CONFIG;
    return KERR_NONE;
}

static int16_t check_value(breq *r, const topic_config_key *k, const char *value, const char **msg)
{
    if (!topic_config_valid(k, value))
        return *msg = fmt(r, "invalid value '%s' for topic config '%s'", value, k->name),
               KERR_INVALID_CONFIG;
    return KERR_NONE;
}

static int16_t check_twice(breq *r, const change *ch, int32_t n, const char *key, const char **msg)
{
    for (int32_t i = 0; i < n; i++)
        if (strcmp(ch[i].key, key) == 0)
            return *msg = fmt(r, "config '%s' given twice", key), KERR_INVALID_REQUEST;
    return KERR_NONE;
}

/* Queue the checked changes of one topic. */
static void submit(meta_wait *w, int8_t type, kstr_t name, const change *ch, int32_t n, bool replace,
                   bool validate_only, int16_t *err, kstr_t *msg)
{
    meta_op *op =
        meta_op_new(META_OP_ALTER_CONFIGS, name.ptr ? name.ptr : "", (size_t)MAX(name.len, 0));
    op->broker_resource = type == RES_BROKER;
    op->replace_configs = replace;
    op->validate_only = validate_only;
    for (int32_t i = 0; i < n; i++)
        meta_op_add_config(op, ch[i].key, strlen(ch[i].key), ch[i].value,
                           ch[i].value ? strlen(ch[i].value) : 0);
    meta_wait_submit(w, op, err, msg);
}

static breq_rc alter_done(breq *r)
{
    (void)r;
    return BREQ_DONE;
}

/* ---- BROKER resources (dynamic_config.c) ---------------------------------------- */

/* One key's change of a BROKER resource: key, operation and value (NULL
 * with OP_DELETE). */
typedef struct broker_item {
    kstr_t key;
    int8_t op;
    kstr_t value;
} broker_item;

/* Checks a BROKER resource's changes in Kafka's order: the name, then
 * whether every key may change at run time, then each operation and value. */
static int16_t broker_changes(breq *r, kstr_t name, const broker_item *it, int32_t n, change *ch,
                              const char **msg)
{
    /* at the controller, a change another node forwarded may name that node */
    bool any_node = r->table == &broker_controller_api;
    int16_t err = dynconf_check_resource(r->b, name, any_node, msg);
    const char **keys = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *keys);
    for (int32_t i = 0; i < n; i++)
        keys[i] = breq_strdup(r, it[i].key);
    if (err == KERR_NONE)
        err = dynconf_check_keys(r, name, keys, n, msg);
    for (int32_t i = 0; err == KERR_NONE && i < n; i++) {
        err = check_twice(r, ch, i, keys[i], msg);
        if (err == KERR_NONE && (it[i].op < OP_SET || it[i].op > OP_SUBTRACT))
            err = KERR_INVALID_REQUEST,
            *msg = fmt(r, "unknown operation %d for '%s'", it[i].op, keys[i]);
        if (err == KERR_NONE && (it[i].op == OP_APPEND || it[i].op == OP_SUBTRACT))
            err = KERR_INVALID_CONFIG, *msg = fmt(r, "broker config '%s' is not a list", keys[i]);
        if (err == KERR_NONE && it[i].op == OP_SET && kstr_is_null(it[i].value))
            err = KERR_INVALID_REQUEST, *msg = fmt(r, "null value for broker config '%s'", keys[i]);
        if (err != KERR_NONE)
            break;
        ch[i] = (change){keys[i], it[i].op == OP_DELETE ? NULL : breq_strdup(r, it[i].value)};
        err = dynconf_check_value(r, name, ch[i].key, ch[i].value, msg);
    }
    return err;
}

/* ---- AlterConfigs ----------------------------------------------------------- */

static bool dup_resource(const AlterConfigsRequest *req, int32_t i)
{
    const AlterConfigsRequest_AlterConfigsResource *a = &req->Resources.items[i];
    for (int32_t j = 0; j < req->Resources.count; j++)
        if (j != i && req->Resources.items[j].ResourceType == a->ResourceType &&
            same(req->Resources.items[j].ResourceName, a->ResourceName))
            return true;
    return false;
}

static int16_t replace_changes(breq *r, const meta_image *img,
                               const AlterConfigsRequest_AlterConfigsResource *res, change *ch,
                               const char **msg)
{
    if (res->ResourceType == RES_BROKER) {
        int32_t n = MAX(res->Configs.count, 0);
        broker_item *it = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *it);
        for (int32_t i = 0; i < n; i++)
            it[i] = (broker_item){res->Configs.items[i].Name, OP_SET, res->Configs.items[i].Value};
        return broker_changes(r, res->ResourceName, it, n, ch, msg);
    }
    int16_t err = check_resource(img, res->ResourceType, res->ResourceName, msg);
    for (int32_t i = 0; err == KERR_NONE && i < res->Configs.count; i++) {
        const AlterConfigsRequest_AlterableConfig *c = &res->Configs.items[i];
        const topic_config_key *k;
        err = check_key(r, c->Name, &k, msg);
        if (err == KERR_NONE)
            err = check_twice(r, ch, i, k->name, msg);
        if (err == KERR_NONE && kstr_is_null(c->Value))
            err = KERR_INVALID_REQUEST, *msg = fmt(r, "null value for topic config '%s'", k->name);
        if (err != KERR_NONE)
            break;
        ch[i] = (change){k->name, breq_strdup(r, c->Value)};
        err = check_value(r, k, ch[i].value, msg);
    }
    return err;
}

breq_rc api_alter_configs(breq *r)
{
    const AlterConfigsRequest *req = r->req;
    AlterConfigsResponse *resp = r->resp;
    int32_t n = MAX(req->Resources.count, 0);
    resp->Responses.count = n;
    resp->Responses.items =
        breq_items(r, &AlterConfigsResponse_AlterConfigsResourceResponse_desc, n);
    meta_wait *w = meta_wait_new(r, alter_done);
    meta_image *img = meta_acquire(r->b->meta);
    for (int32_t i = 0; i < n; i++) {
        const AlterConfigsRequest_AlterConfigsResource *res = &req->Resources.items[i];
        AlterConfigsResponse_AlterConfigsResourceResponse *out = &resp->Responses.items[i];
        out->ResourceType = res->ResourceType;
        out->ResourceName = res->ResourceName;
        int32_t nc = MAX(res->Configs.count, 0);
        change *ch = arena_alloc(&r->arena, (size_t)(nc ? nc : 1) * sizeof *ch);
        const char *msg = NULL;
        int16_t err = dup_resource(req, i) ? (msg = "resource named twice", KERR_INVALID_REQUEST)
                                           : denied(r, img, res->ResourceType, res->ResourceName, &msg);
        if (err == KERR_NONE)
            err = replace_changes(r, img, res, ch, &msg);
        if (err != KERR_NONE) {
            out->ErrorCode = err;
            out->ErrorMessage = kstr_from(msg);
            continue;
        }
        submit(w, res->ResourceType, res->ResourceName, ch, nc, true, req->ValidateOnly,
               &out->ErrorCode, &out->ErrorMessage);
    }
    meta_image_release(img);
    return meta_wait_end(w);
}

/* ---- IncrementalAlterConfigs ---------------------------------------------------- */

/* The next item of a comma-separated list, without surrounding blanks;
 * false at the end. */
static bool next_item(const char **p, const char **item, size_t *len)
{
    if (!**p)
        return false;
    const char *s = *p, *e = strchr(s, ',');
    const char *end = e ? e : s + strlen(s);
    *p = e ? e + 1 : end;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *item = s;
    *len = (size_t)(end - s);
    return true;
}

static bool in_list(const char *list, const char *item, size_t len)
{
    const char *x;
    size_t n;
    while (next_item(&list, &x, &n))
        if (n == len && memcmp(x, item, len) == 0)
            return true;
    return false;
}

/* Appends to out (a comma-separated list) the items of src that are not in
 * except, skipping empty items and those already in out. */
static void merge(char *out, size_t cap, const char *src, const char *except)
{
    const char *x;
    size_t n;
    while (next_item(&src, &x, &n)) {
        size_t used = strlen(out);
        if (n > 0 && !in_list(except, x, n) && !in_list(out, x, n) && used + n + 2 <= cap)
            snprintf(out + used, cap - used, "%s%.*s", used ? "," : "", (int)n, x);
    }
}

/* APPEND / SUBTRACT applied to the topic's effective value of k. */
static const char *list_op(breq *r, const meta_topic *t, const topic_config_key *k, int8_t op,
                           const char *v)
{
    char cur[VALUE_MAX], out[VALUE_MAX] = "";
    const char *o = meta_topic_config(t, k->name);
    if (o)
        snprintf(cur, sizeof cur, "%s", o);
    else
        topic_config_default(&r->b->cfg, k, cur, sizeof cur);
    if (op == OP_APPEND) {
        merge(out, sizeof out, cur, "");
        merge(out, sizeof out, v, "");
    } else {
        merge(out, sizeof out, cur, v);
    }
    return arena_strndup(&r->arena, out, strlen(out));
}

static int16_t one_change(breq *r, const meta_topic *t,
                          const IncrementalAlterConfigsRequest_AlterableConfig *c,
                          const topic_config_key *k, change *out, const char **msg)
{
    int8_t op = c->ConfigOperation;
    if (op < OP_SET || op > OP_SUBTRACT)
        return *msg = fmt(r, "unknown operation %d for topic config '%s'", op, k->name),
               KERR_INVALID_REQUEST;
    *out = (change){k->name, NULL};
    if (op == OP_DELETE)
        return KERR_NONE;
    if (kstr_is_null(c->Value))
        return *msg = fmt(r, "null value for topic config '%s'", k->name), KERR_INVALID_REQUEST;
    const char *v = breq_strdup(r, c->Value);
    if (op != OP_SET && k->type != CT_LIST)
        return *msg =
                   fmt(r, "topic config '%s' is not a list to append to or subtract from", k->name),
               KERR_INVALID_CONFIG;
    if (op != OP_SET && !t)
        return *msg = "unknown topic", KERR_UNKNOWN_TOPIC_OR_PARTITION;
    out->value = op == OP_SET ? v : list_op(r, t, k, op, v);
    return check_value(r, k, out->value, msg);
}

static int16_t incremental_changes(breq *r, const meta_image *img,
                                   const IncrementalAlterConfigsRequest_AlterConfigsResource *res,
                                   change *ch, const char **msg)
{
    if (res->ResourceType == RES_BROKER) {
        int32_t n = MAX(res->Configs.count, 0);
        broker_item *it = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *it);
        for (int32_t i = 0; i < n; i++) {
            const IncrementalAlterConfigsRequest_AlterableConfig *c = &res->Configs.items[i];
            it[i] = (broker_item){c->Name, c->ConfigOperation, c->Value};
        }
        return broker_changes(r, res->ResourceName, it, n, ch, msg);
    }
    int16_t err = check_resource(img, res->ResourceType, res->ResourceName, msg);
    if (err != KERR_NONE)
        return err;
    const meta_topic *t =
        meta_image_topic(img, res->ResourceName.ptr, (size_t)res->ResourceName.len);
    for (int32_t i = 0; err == KERR_NONE && i < res->Configs.count; i++) {
        const IncrementalAlterConfigsRequest_AlterableConfig *c = &res->Configs.items[i];
        const topic_config_key *k;
        err = check_key(r, c->Name, &k, msg);
        if (err == KERR_NONE)
            err = check_twice(r, ch, i, k->name, msg);
        if (err == KERR_NONE)
            err = one_change(r, t, c, k, &ch[i], msg);
    }
    return err;
}

static bool dup_incremental(const IncrementalAlterConfigsRequest *req, int32_t i)
{
    const IncrementalAlterConfigsRequest_AlterConfigsResource *a = &req->Resources.items[i];
    for (int32_t j = 0; j < req->Resources.count; j++)
        if (j != i && req->Resources.items[j].ResourceType == a->ResourceType &&
            same(req->Resources.items[j].ResourceName, a->ResourceName))
            return true;
    return false;
}

breq_rc api_incremental_alter_configs(breq *r)
{
    const IncrementalAlterConfigsRequest *req = r->req;
    IncrementalAlterConfigsResponse *resp = r->resp;
    int32_t n = MAX(req->Resources.count, 0);
    resp->Responses.count = n;
    resp->Responses.items =
        breq_items(r, &IncrementalAlterConfigsResponse_AlterConfigsResourceResponse_desc, n);
    meta_wait *w = meta_wait_new(r, alter_done);
    meta_image *img = meta_acquire(r->b->meta);
    for (int32_t i = 0; i < n; i++) {
        const IncrementalAlterConfigsRequest_AlterConfigsResource *res = &req->Resources.items[i];
        IncrementalAlterConfigsResponse_AlterConfigsResourceResponse *out =
            &resp->Responses.items[i];
        out->ResourceType = res->ResourceType;
        out->ResourceName = res->ResourceName;
        int32_t nc = MAX(res->Configs.count, 0);
        change *ch = arena_alloc(&r->arena, (size_t)(nc ? nc : 1) * sizeof *ch);
        const char *msg = NULL;
        int16_t err = dup_incremental(req, i) ? (msg = "resource named twice", KERR_INVALID_REQUEST)
                                              : denied(r, img, res->ResourceType, res->ResourceName, &msg);
        if (err == KERR_NONE)
            err = incremental_changes(r, img, res, ch, &msg);
        if (err != KERR_NONE) {
            out->ErrorCode = err;
            out->ErrorMessage = kstr_from(msg);
            continue;
        }
        submit(w, res->ResourceType, res->ResourceName, ch, nc, false, req->ValidateOnly,
               &out->ErrorCode, &out->ErrorMessage);
    }
    meta_image_release(img);
    return meta_wait_end(w);
}
