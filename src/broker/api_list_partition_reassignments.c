/* api_list_partition_reassignments.c - ListPartitionReassignments (key 46)
 * v0 on the client listener: the partitions with a move in progress (all,
 * or among those named), with their replicas and the ones being added and
 * removed, from this node's published metadata image (which every node
 * applies from the same log, so no forwarding is needed). It needs
 * DESCRIBE on the cluster (else CLUSTER_AUTHORIZATION_FAILED). */
#include "broker/broker_int.h"

static bool moving(const meta_partition *p)
{
    return p->nadding > 0 || p->nremoving > 0;
}

static ListPartitionReassignmentsResponse_OngoingPartitionReassignment ongoing(const meta_partition *p)
{
    return (ListPartitionReassignmentsResponse_OngoingPartitionReassignment){
        .PartitionIndex = p->index, .Replicas = {p->nreplicas, p->replicas},
        .AddingReplicas = {p->nadding, p->adding}, .RemovingReplicas = {p->nremoving, p->removing}};
}

/* Topic t's moving partitions (indexes NULL: all of them) into o; false when none. */
static bool add_topic(breq *r, const meta_topic *t, const kint32_array_t *indexes,
                      ListPartitionReassignmentsResponse_OngoingTopicReassignment *o)
{
    int32_t n = indexes ? MAX(indexes->count, 0) : t->npartitions;
    *o = (ListPartitionReassignmentsResponse_OngoingTopicReassignment){.Name = kstr_from(t->name)};
    o->Partitions.items = arena_alloc(&r->arena, (size_t)(n + 1) * sizeof *o->Partitions.items);
    for (int32_t i = 0; i < n; i++) {
        int32_t index = indexes ? indexes->items[i] : i;
        if (index >= 0 && index < t->npartitions && moving(&t->partitions[index]))
            o->Partitions.items[o->Partitions.count++] = ongoing(&t->partitions[index]);
    }
    return o->Partitions.count > 0;
}

breq_rc api_list_partition_reassignments(breq *r)
{
    const ListPartitionReassignmentsRequest *req = r->req;
    ListPartitionReassignmentsResponse *resp = r->resp;
    if ((resp->ErrorCode = broker_cluster_denied(r, ACL_OP_DESCRIBE)) != KERR_NONE)
        return BREQ_DONE;
    meta_image *img = meta_acquire(r->b->meta);
    breq_hold_image(r, img); /* the response points into it */
    bool all = req->Topics.count < 0;
    int32_t n = all ? img->ntopics : req->Topics.count;
    resp->Topics.items = arena_alloc(&r->arena, (size_t)(n + 1) * sizeof *resp->Topics.items);
    for (int32_t i = 0; i < n; i++) {
        const ListPartitionReassignmentsRequest_ListPartitionReassignmentsTopics *q = all ? NULL : &req->Topics.items[i];
        const meta_topic *t = all ? img->topics[i] : meta_image_topic(img, q->Name.ptr, (size_t)MAX(q->Name.len, 0));
        if (t && add_topic(r, t, q ? &q->PartitionIndexes : NULL, &resp->Topics.items[resp->Topics.count]))
            resp->Topics.count++;
    }
    return BREQ_DONE;
}
