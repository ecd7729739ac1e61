/* api_offset_fetch.c - OffsetFetch (key 9) v0-v9: a group's committed
 * offsets, for the partitions asked or (v2+, null topics) all of them;
 * v8+ asks for several groups at once. A partition without a committed
 * offset gets -1. With RequireStable (v7+, read_committed consumers) a
 * partition with an offset committed in a transaction still open is
 * UNSTABLE_OFFSET_COMMIT (the consumer retries). DESCRIBE on the group is
 * needed (else GROUP_AUTHORIZATION_FAILED), and on each topic: a partition
 * asked for of a topic without it is TOPIC_AUTHORIZATION_FAILED, and such
 * topics are left out of an all-offsets answer. */
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

/* One group's request, whichever version shaped it. */
typedef struct want_topic {
    kstr_t name;
    const kint32_array_t *parts;
    int16_t denied;          /* TOPIC_AUTHORIZATION_FAILED without DESCRIBE */
} want_topic;

typedef struct got_part {
    int32_t partition;
    int64_t offset;
    int32_t epoch;
    kstr_t metadata;
    int16_t err;
} got_part;

typedef struct got_topic {
    kstr_t name;
    int32_t n;
    got_part *parts;
} got_topic;

typedef struct view_ctx {
    breq *r;
    int32_t nwant;           /* -1: every committed offset */
    want_topic *want;
    bool require_stable;
    int32_t ntopics;         /* out */
    got_topic *topics;
} view_ctx;

static kstr_t copy_kstr(breq *r, const char *s)
{
    return kstr_from(arena_strndup(&r->arena, s, strlen(s)));
}

static void fill(view_ctx *v, const group *g, const char *topic, got_part *gp, int32_t index,
                 const group_offset *o)
{
    *gp = (got_part){index, -1, -1, KSTR_LIT(""), KERR_NONE};
    if (v->require_stable && g && group_txn_offset_pending(g, topic, index)) {
        gp->err = KERR_UNSTABLE_OFFSET_COMMIT;
        return;
    }
    if (o) {
        gp->offset = o->offset;
        gp->epoch = o->leader_epoch;
        gp->metadata = copy_kstr(v->r, o->metadata);
    }
}

static void view_wanted(view_ctx *v, const group *g)
{
    v->ntopics = v->nwant;
    v->topics = arena_alloc(&v->r->arena, (size_t)MAX(v->nwant, 1) * sizeof *v->topics);
    for (int32_t i = 0; i < v->nwant; i++) {
        const want_topic *w = &v->want[i];
        got_topic *t = &v->topics[i];
        t->name = w->name;
        t->n = MAX(w->parts->count, 0);
        t->parts = arena_alloc(&v->r->arena, (size_t)MAX(t->n, 1) * sizeof *t->parts);
        const char *topic = breq_strdup(v->r, w->name);
        for (int32_t j = 0; j < t->n; j++) {
            int32_t p = w->parts->items[j];
            if (w->denied) {
                t->parts[j] = (got_part){p, -1, -1, KSTR_LIT(""), w->denied};
                continue;
            }
            const group_offset *o = g && w->name.len > 0 ? group_offset_get(g, w->name.ptr, (size_t)w->name.len, p) : NULL;
            fill(v, g, topic, &t->parts[j], p, o);
        }
    }
}

static int by_topic_partition(const void *a, const void *b)
{
    const group_offset *x = *(const group_offset *const *)a, *y = *(const group_offset *const *)b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

static void view_all(view_ctx *v, const group *g)
{
    size_t n = g ? group_offset_count(g) : 0, k = 0, it = 0;
    const group_offset **all = xmalloc(MAX(n, 1) * sizeof *all);
    for (const group_offset *o; k < n && (o = group_offset_next(g, &it));)
        all[k++] = o;
    qsort(all, k, sizeof *all, by_topic_partition);
    v->topics = arena_alloc(&v->r->arena, MAX(k, 1) * sizeof *v->topics);
    v->ntopics = 0;
    for (size_t i = 0; i < k;) {
        size_t j = i;
        while (j < k && strcmp(all[j]->topic, all[i]->topic) == 0)
            j++;
        got_topic *t = &v->topics[v->ntopics++];
        t->name = copy_kstr(v->r, all[i]->topic);
        t->n = (int32_t)(j - i);
        t->parts = arena_alloc(&v->r->arena, (j - i) * sizeof *t->parts);
        for (size_t m = i; m < j; m++)
            fill(v, g, all[m]->topic, &t->parts[m - i], all[m]->partition, all[m]);
        i = j;
    }
    free(all);
}

static void view(void *arg, const group *g)
{
    view_ctx *v = arg;
    if (v->nwant < 0)
        view_all(v, g);
    else
        view_wanted(v, g);
}

/* Before the view, outside the coordinator's lock: the topics asked for
 * that r may not describe. */
static void deny_wanted(breq *r, view_ctx *v)
{
    if (!broker_authz_on(r) || v->nwant <= 0)
        return;
    meta_image *img = meta_acquire(r->b->meta);
    for (int32_t i = 0; i < v->nwant; i++)
        v->want[i].denied = broker_topic_denied(r, img, ACL_OP_DESCRIBE, v->want[i].name);
    meta_image_release(img);
}

/* After an all-offsets view: drop the topics r may not describe. */
static void drop_denied(breq *r, view_ctx *v)
{
    if (!broker_authz_on(r) || v->nwant >= 0)
        return;
    meta_image *img = meta_acquire(r->b->meta);
    int32_t k = 0;
    for (int32_t i = 0; i < v->ntopics; i++)
        if (broker_topic_denied(r, img, ACL_OP_DESCRIBE, v->topics[i].name) == KERR_NONE)
            v->topics[k++] = v->topics[i];
    v->ntopics = k;
    meta_image_release(img);
}

/* NOT_COORDINATOR (and no offsets) when another node coordinates it now. */
static int16_t fetch_group(breq *r, kstr_t group_id, view_ctx *v)
{
    v->r = r;
    int16_t denied = broker_group_denied(r, ACL_OP_DESCRIBE, group_id);
    if (denied != KERR_NONE)
        return denied;
    deny_wanted(r, v);
    int16_t err = group_coord_view(r->b->groups, breq_strdup(r, group_id), view, v);
    drop_denied(r, v);
    return err;
}

/* v0-v7: one group, top-level topics. */
static void answer_single(breq *r)
{
    const OffsetFetchRequest *req = r->req;
    OffsetFetchResponse *resp = r->resp;
    view_ctx v = {.nwant = req->Topics.count, .require_stable = r->hdr.api_version >= 7 && req->RequireStable};
    if (v.nwant > 0) {
        want_topic *w = arena_alloc(&r->arena, (size_t)v.nwant * sizeof *w);
        for (int32_t i = 0; i < v.nwant; i++)
            w[i] = (want_topic){req->Topics.items[i].Name, &req->Topics.items[i].PartitionIndexes};
        v.want = w;
    }
    int16_t err = fetch_group(r, req->GroupId, &v);
    if (err != KERR_NONE)
        resp->ErrorCode = err;
    resp->Topics.count = v.ntopics;
    resp->Topics.items = breq_items(r, &OffsetFetchResponse_OffsetFetchResponseTopic_desc, v.ntopics);
    for (int32_t i = 0; i < v.ntopics; i++) {
        OffsetFetchResponse_OffsetFetchResponseTopic *t = &resp->Topics.items[i];
        t->Name = v.topics[i].name;
        t->Partitions.count = v.topics[i].n;
        t->Partitions.items = breq_items(r, &OffsetFetchResponse_OffsetFetchResponsePartition_desc, v.topics[i].n);
        for (int32_t j = 0; j < v.topics[i].n; j++) {
            const got_part *gp = &v.topics[i].parts[j];
            OffsetFetchResponse_OffsetFetchResponsePartition *p = &t->Partitions.items[j];
            p->PartitionIndex = gp->partition;
            p->CommittedOffset = gp->offset;
            p->CommittedLeaderEpoch = gp->epoch;
            p->Metadata = gp->metadata;
            p->ErrorCode = gp->err;
        }
    }
}

/* v8+: several groups, each with its own topics. */
static void answer_group(breq *r, const OffsetFetchRequest_OffsetFetchRequestGroup *in,
                         OffsetFetchResponse_OffsetFetchResponseGroup *out)
{
    const OffsetFetchRequest *req = r->req;
    view_ctx v = {.nwant = in->Topics.count, .require_stable = req->RequireStable};
    if (v.nwant > 0) {
        want_topic *w = arena_alloc(&r->arena, (size_t)v.nwant * sizeof *w);
        for (int32_t i = 0; i < v.nwant; i++)
            w[i] = (want_topic){in->Topics.items[i].Name, &in->Topics.items[i].PartitionIndexes};
        v.want = w;
    }
    int16_t err = fetch_group(r, in->GroupId, &v);
    if (err != KERR_NONE)
        out->ErrorCode = err;
    out->GroupId = in->GroupId;
    out->Topics.count = v.ntopics;
    out->Topics.items = breq_items(r, &OffsetFetchResponse_OffsetFetchResponseTopics_desc, v.ntopics);
    for (int32_t i = 0; i < v.ntopics; i++) {
        OffsetFetchResponse_OffsetFetchResponseTopics *t = &out->Topics.items[i];
        t->Name = v.topics[i].name;
        t->Partitions.count = v.topics[i].n;
        t->Partitions.items = breq_items(r, &OffsetFetchResponse_OffsetFetchResponsePartitions_desc, v.topics[i].n);
        for (int32_t j = 0; j < v.topics[i].n; j++) {
            const got_part *gp = &v.topics[i].parts[j];
            OffsetFetchResponse_OffsetFetchResponsePartitions *p = &t->Partitions.items[j];
            p->PartitionIndex = gp->partition;
            p->CommittedOffset = gp->offset;
            p->CommittedLeaderEpoch = gp->epoch;
            p->Metadata = gp->metadata;
            p->ErrorCode = gp->err;
        }
    }
}

breq_rc api_offset_fetch(breq *r)
{
    const OffsetFetchRequest *req = r->req;
    OffsetFetchResponse *resp = r->resp;
    if (r->hdr.api_version < 8) {
        answer_single(r);
        return BREQ_DONE;
    }
    int32_t n = MAX(req->Groups.count, 0);
    resp->Groups.count = n;
    resp->Groups.items = breq_items(r, &OffsetFetchResponse_OffsetFetchResponseGroup_desc, n);
    for (int32_t i = 0; i < n; i++)
        answer_group(r, &req->Groups.items[i], &resp->Groups.items[i]);
    return BREQ_DONE;
}
