/* api_elect_leaders.c - ElectLeaders (key 43) v0-v2 on the client listener
 * (and on the controller listener, where other nodes forward it): elect
 * the preferred replica (type 0; v0 always) or, when a partition has no
 * live leader, any live replica (type 1, unclean) of the partitions listed,
 * or of every partition when the list is null. One META_OP_ELECT_LEADERS
 * (the rules are src/meta/election.c's), forwarded to the controller by a
 * node that does not lead the metadata quorum (src/meta/forward.c). It
 * needs ALTER on the cluster (else CLUSTER_AUTHORIZATION_FAILED, at the top
 * and for every partition named). */
#include <string.h>

#include "broker/broker_int.h"

#define ELECT_PARTITIONS_MAX 100000 /* per request */

/* Controller thread (r is parked): the op's outcome, one entry per topic
 * run of its items (the request's order). */
static void elect_answer(breq *r, const meta_op *op, int16_t err)
{
    ElectLeadersResponse *resp = r->resp;
    resp->ErrorCode = err;
    const meta_elect_op *e = &op->elect;
    resp->ReplicaElectionResults.items = arena_alloc(&r->arena, (size_t)(e->n + 1) * sizeof *resp->ReplicaElectionResults.items);
    int32_t nt = 0;
    for (int32_t i = 0; i < e->n; i++) { /* a failed op answers each partition with its error (v0 has no top one) */
        int16_t perr = err != KERR_NONE ? err : e->items[i].err;
        bool same = nt > 0 && strcmp(e->items[i - 1].topic, e->items[i].topic) == 0;
        ElectLeadersResponse_ReplicaElectionResult *t = &resp->ReplicaElectionResults.items[same ? nt - 1 : nt];
        if (!same) {
            *t = (ElectLeadersResponse_ReplicaElectionResult){.Topic = kstr_from(arena_strndup(&r->arena, e->items[i].topic, strlen(e->items[i].topic)))};
            t->PartitionResult.items = arena_alloc(&r->arena, (size_t)(e->n - i + 1) * sizeof *t->PartitionResult.items);
            nt++;
        }
        t->PartitionResult.items[t->PartitionResult.count++] = (ElectLeadersResponse_PartitionResult){
            .PartitionId = e->items[i].partition, .ErrorCode = perr,
            .ErrorMessage = perr ? kstr_from(kerr_message(perr)) : KSTR_NULL};
    }
    resp->ReplicaElectionResults.count = nt;
}

/* Every partition named gets err (and the top error, v1+). */
static breq_rc elect_refused(breq *r, int16_t err)
{
    const ElectLeadersRequest *req = r->req;
    ElectLeadersResponse *resp = r->resp;
    int32_t nt = MAX(req->TopicPartitions.count, 0);
    resp->ErrorCode = err;
    resp->ReplicaElectionResults.count = nt;
    resp->ReplicaElectionResults.items = breq_items(r, &ElectLeadersResponse_ReplicaElectionResult_desc, nt);
    for (int32_t i = 0; i < nt; i++) {
        const ElectLeadersRequest_TopicPartitions *t = &req->TopicPartitions.items[i];
        ElectLeadersResponse_ReplicaElectionResult *o = &resp->ReplicaElectionResults.items[i];
        int32_t np = MAX(t->Partitions.count, 0);
        o->Topic = t->Topic;
        o->PartitionResult.count = np;
        o->PartitionResult.items = breq_items(r, &ElectLeadersResponse_PartitionResult_desc, np);
        for (int32_t j = 0; j < np; j++)
            o->PartitionResult.items[j] = (ElectLeadersResponse_PartitionResult){
                .PartitionId = t->Partitions.items[j], .ErrorCode = err, .ErrorMessage = kstr_from(kerr_message(err))};
    }
    return BREQ_DONE;
}

breq_rc api_elect_leaders(breq *r)
{
    const ElectLeadersRequest *req = r->req;
    ElectLeadersResponse *resp = r->resp;
    int64_t n = 0;
    for (int32_t i = 0; i < req->TopicPartitions.count; i++)
        n += MAX(req->TopicPartitions.items[i].Partitions.count, 0);
    if (n > ELECT_PARTITIONS_MAX) {
        resp->ErrorCode = KERR_INVALID_REQUEST;
        return BREQ_DONE;
    }
    int16_t denied = broker_cluster_denied(r, ACL_OP_ALTER);
    if (denied != KERR_NONE)
        return elect_refused(r, denied);
    meta_op *op = meta_op_new(META_OP_ELECT_LEADERS, NULL, 0);
    op->elect.type = r->hdr.api_version >= 1 ? req->ElectionType : META_ELECT_PREFERRED;
    op->elect.all = req->TopicPartitions.count < 0;
    for (int32_t i = 0; i < req->TopicPartitions.count; i++) {
        const ElectLeadersRequest_TopicPartitions *t = &req->TopicPartitions.items[i];
        for (int32_t j = 0; j < t->Partitions.count; j++)
            meta_op_add_elect(op, t->Topic.ptr, (size_t)MAX(t->Topic.len, 0), t->Partitions.items[j]);
    }
    return meta_op_park(r, op, elect_answer);
}
