/* api_offset_delete.c - OffsetDelete (key 47) v0: removes committed
 * offsets of a group (tombstones, answered once durable). An Empty group
 * loses any; a consumer group with members only those of topics it does
 * not subscribe to (else GROUP_SUBSCRIBED_TO_TOPIC); other groups with
 * members refuse (NON_EMPTY_GROUP). It needs DELETE on the group (else
 * GROUP_AUTHORIZATION_FAILED) and READ on each topic (else its partitions
 * TOPIC_AUTHORIZATION_FAILED). */
#include <string.h>

#include "broker/broker_int.h"

typedef struct odel_ctx {
    breq *r;
    int32_t n;
    group_offset_del *parts;
    OffsetDeleteResponse_OffsetDeleteResponsePartition **outs;
    int16_t top_err;
} odel_ctx;

static void odel_done(void *arg)
{
    odel_ctx *oc = arg;
    OffsetDeleteResponse *resp = oc->r->resp;
    resp->ErrorCode = oc->top_err;
    for (int32_t i = 0; i < oc->n; i++)
        oc->outs[i]->ErrorCode = oc->top_err ? KERR_NONE : oc->parts[i].error;
    if (oc->top_err)
        resp->Topics.count = 0;
    breq_finish(oc->r);
}

static void collect(breq *r, odel_ctx *oc, const meta_image *img)
{
    const OffsetDeleteRequest *req = r->req;
    OffsetDeleteResponse *resp = r->resp;
    int32_t nt = MAX(req->Topics.count, 0), n = 0;
    for (int32_t i = 0; i < nt; i++)
        n += MAX(req->Topics.items[i].Partitions.count, 0);
    oc->parts = arena_alloc(&r->arena, (size_t)MAX(n, 1) * sizeof *oc->parts);
    oc->outs = arena_alloc(&r->arena, (size_t)MAX(n, 1) * sizeof *oc->outs);
    resp->Topics.count = nt;
    resp->Topics.items = breq_items(r, &OffsetDeleteResponse_OffsetDeleteResponseTopic_desc, nt);
    for (int32_t i = 0; i < nt; i++) {
        const OffsetDeleteRequest_OffsetDeleteRequestTopic *t = &req->Topics.items[i];
        OffsetDeleteResponse_OffsetDeleteResponseTopic *to = &resp->Topics.items[i];
        int32_t np = MAX(t->Partitions.count, 0);
        const meta_topic *mt = t->Name.len > 0 ? meta_image_topic(img, t->Name.ptr, (size_t)t->Name.len) : NULL;
        to->Name = t->Name;
        to->Partitions.count = np;
        to->Partitions.items = breq_items(r, &OffsetDeleteResponse_OffsetDeleteResponsePartition_desc, np);
        const char *topic = breq_strdup(r, t->Name);
        for (int32_t j = 0; j < np; j++) {
            int32_t p = t->Partitions.items[j].PartitionIndex;
            bool known = mt && p >= 0 && p < mt->npartitions;
            int16_t err = broker_topic_denied(r, img, ACL_OP_READ, t->Name);
            if (err == KERR_NONE && !known)
                err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            oc->parts[oc->n] = (group_offset_del){topic, p, err};
            to->Partitions.items[j].PartitionIndex = p;
            oc->outs[oc->n++] = &to->Partitions.items[j];
        }
    }
}

breq_rc api_offset_delete(breq *r)
{
    const OffsetDeleteRequest *req = r->req;
    odel_ctx *oc = arena_alloc(&r->arena, sizeof *oc);
    oc->r = r;
    int16_t denied = broker_group_denied(r, ACL_OP_DELETE, req->GroupId);
    if (denied != KERR_NONE) {
        ((OffsetDeleteResponse *)r->resp)->ErrorCode = denied;
        return BREQ_DONE;
    }
    meta_image *img = meta_acquire(r->b->meta);
    collect(r, oc, img);
    meta_image_release(img);
    group_coord_offset_delete(r->b->groups, breq_strdup(r, req->GroupId), oc->parts, oc->n, &oc->top_err, odel_done,
                              oc);
    return BREQ_PARKED; /* odel_done answers, maybe already */
}
