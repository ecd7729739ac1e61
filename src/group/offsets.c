/* offsets.c - a group's committed offsets, their expiry, and which topics
 * a consumer group subscribes to (group.h). */
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/util.h"
#include "group/group_int.h"
#include "proto/proto.h"

#define OFFSET_TOPIC_MAX 255 /* longer than any valid topic name (249) */
#define OFFSET_KEY_MAX (OFFSET_TOPIC_MAX + 1 + sizeof(int32_t))

/* "topic\0" followed by the partition's bytes; 0 when the topic is too long. */
static size_t offset_key(char *key, const char *topic, size_t len, int32_t partition)
{
    if (len > OFFSET_TOPIC_MAX)
        return 0;
    memcpy(key, topic, len);
    key[len] = 0;
    memcpy(key + len + 1, &partition, sizeof partition);
    return len + 1 + sizeof partition;
}

static void entry_free(group_offset *o)
{
    free(o->topic);
    free(o->metadata);
    free(o);
}

const group_offset *group_offset_get(const group *g, const char *topic, size_t topic_len, int32_t partition)
{
    char key[OFFSET_KEY_MAX];
    size_t kl = offset_key(key, topic, topic_len, partition);
    return kl ? hmap_get(&g->offsets, key, kl) : NULL;
}

static bool newer_stored(const group_offset *cur, int64_t record_offset)
{
    return cur && record_offset >= 0 && cur->record_offset > record_offset;
}

void group_offset_put(group *g, const group_offset *o)
{
    char key[OFFSET_KEY_MAX];
    size_t len = strlen(o->topic), kl = offset_key(key, o->topic, len, o->partition);
    if (!kl)
        return;
    group_offset *cur = hmap_get(&g->offsets, key, kl);
    if (newer_stored(cur, o->record_offset))
        return;
    group_offset *n = xmalloc(sizeof *n);
    *n = *o;
    n->topic = xstrndup(o->topic, len);
    n->metadata = xstrdup(o->metadata ? o->metadata : "");
    hmap_put(&g->offsets, key, kl, n);
    if (cur)
        entry_free(cur);
}

void group_offset_delete(group *g, const char *topic, size_t topic_len, int32_t partition, int64_t record_offset)
{
    char key[OFFSET_KEY_MAX];
    size_t kl = offset_key(key, topic, topic_len, partition);
    group_offset *cur = kl ? hmap_get(&g->offsets, key, kl) : NULL;
    if (!cur || newer_stored(cur, record_offset))
        return;
    hmap_del(&g->offsets, key, kl);
    entry_free(cur);
}

size_t group_offset_count(const group *g) { return g->offsets.count; }

/* ---- transactional offsets ------------------------------------------------------------ */

void group_txn_offset_put(group *g, int64_t producer_id, const group_offset *o)
{
    int32_t i = 0;
    while (i < g->ntxn && !(g->txn[i].producer_id == producer_id && g->txn[i].o.partition == o->partition &&
                            strcmp(g->txn[i].o.topic, o->topic) == 0))
        i++;
    if (i == g->ntxn) {
        g->txn = xrealloc(g->txn, (size_t)(g->ntxn + 1) * sizeof *g->txn);
        g->ntxn++;
    } else {
        free(g->txn[i].o.topic);
        free(g->txn[i].o.metadata);
    }
    g->txn[i].producer_id = producer_id;
    g->txn[i].o = *o;
    g->txn[i].o.topic = xstrdup(o->topic);
    g->txn[i].o.metadata = xstrdup(o->metadata ? o->metadata : "");
}

int32_t group_txn_offsets_end(group *g, int64_t producer_id, bool commit)
{
    int32_t n = 0, kept = 0;
    for (int32_t i = 0; i < g->ntxn; i++) {
        group_txn_offset *t = &g->txn[i];
        if (t->producer_id != producer_id) {
            g->txn[kept++] = *t;
            continue;
        }
        if (commit)
            group_offset_put(g, &t->o);
        free(t->o.topic);
        free(t->o.metadata);
        n++;
    }
    g->ntxn = kept;
    return n;
}

bool group_txn_offset_pending(const group *g, const char *topic, int32_t partition)
{
    for (int32_t i = 0; i < g->ntxn; i++)
        if (g->txn[i].o.partition == partition && strcmp(g->txn[i].o.topic, topic) == 0)
            return true;
    return false;
}

const group_offset *group_offset_next(const group *g, size_t *iter)
{
    void *v;
    return hmap_next(&g->offsets, iter, NULL, NULL, &v) ? v : NULL;
}

void offsets_free(group *g)
{
    size_t it = 0;
    void *v;
    while (hmap_next(&g->offsets, &it, NULL, NULL, &v))
        entry_free(v);
    hmap_free(&g->offsets);
    for (int32_t i = 0; i < g->ntxn; i++) {
        free(g->txn[i].o.topic);
        free(g->txn[i].o.metadata);
    }
    free(g->txn);
    g->txn = NULL;
    g->ntxn = 0;
}

/*
 * Kafka's rule: offsets with an explicit expire timestamp (OffsetCommit
 * v1-v4) go at that time; otherwise an Empty consumer group's offsets go
 * retention after the group became Empty, and a group that only commits
 * offsets loses each one retention after its commit. Groups with members
 * keep theirs.
 */
static bool expired(const group *g, const group_offset *o, int64_t now_ms)
{
    if (o->expire_ts_ms >= 0)
        return now_ms >= o->expire_ts_ms;
    int64_t base = g->protocol_type && g->state_ts_ms >= 0 ? g->state_ts_ms : o->commit_ts_ms;
    return now_ms - base >= g->cfg->offsets_retention_ms;
}

int32_t group_offsets_expire(group *g, int64_t now_ms, group_offset_fn fn, void *arg)
{
    if (g->state != GROUP_EMPTY)
        return 0;
    group_offset **gone = NULL;
    int32_t n = 0;
    size_t it = 0;
    void *v;
    while (hmap_next(&g->offsets, &it, NULL, NULL, &v))
        if (expired(g, v, now_ms)) {
            gone = xrealloc(gone, (size_t)(n + 1) * sizeof *gone);
            gone[n++] = v;
        }
    for (int32_t i = 0; i < n; i++) {
        if (fn)
            fn(arg, gone[i]);
        group_offset_delete(g, gone[i]->topic, strlen(gone[i]->topic), gone[i]->partition, -1);
    }
    free(gone);
    return n;
}

/* Does one member's ConsumerProtocolSubscription name topic? -1: unreadable. */
static int subscription_has(const uint8_t *md, int32_t len, const char *topic, size_t topic_len)
{
    rd_t r;
    rd_init(&r, md, len > 0 ? (size_t)len : 0);
    int16_t v;
    if (!md || !rd_i16(&r, &v) || v < 0)
        return -1;
    const proto_struct_desc *d = &ConsumerProtocolSubscription_desc;
    v = MIN(v, d->max_version); /* later versions only add fields at the end */
    arena_t a;
    arena_init(&a);
    ConsumerProtocolSubscription sub;
    proto_err_t err;
    int found = -1;
    if (proto_decode(d, v, false, &r, &a, &sub, &err) == 0) {
        found = 0;
        for (int32_t i = 0; i < sub.Topics.count && !found; i++)
            found = sub.Topics.items[i].len == (int32_t)topic_len &&
                    memcmp(sub.Topics.items[i].ptr, topic, topic_len) == 0;
    }
    arena_free(&a);
    return found;
}

bool group_subscribes(const group *g, const char *topic, size_t topic_len)
{
    for (int32_t i = 0; i < g->nmembers; i++) {
        int32_t len;
        const uint8_t *md = group_member_metadata(g, g->members[i], &len);
        if (subscription_has(md, len, topic, topic_len) != 0)
            return true;
    }
    return false;
}
