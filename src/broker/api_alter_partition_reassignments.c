/* api_alter_partition_reassignments.c - AlterPartitionReassignments (key
 * 45) v0 on the client listener (and the controller listener, where other
 * nodes forward it): move partitions to new replicas, or cancel a move
 * (Replicas null). One META_OP_REASSIGN (the rules are
 * src/meta/reassign.c's), forwarded to the controller by a node that does
 * not lead the metadata quorum. It needs ALTER on the cluster (else
 * CLUSTER_AUTHORIZATION_FAILED, at the top and for every partition). */
#include <stdio.h>
#include <string.h>

#include "broker/broker_int.h"

#define REASSIGN_PARTITIONS_MAX 10000 /* per request */

/* Controller thread (r is parked), or r's thread with op NULL when
 * refused: each partition's outcome, in the request's order. The shape reserved each message's room in the arena
 * (ErrorMessage.ptr, META_MSG_MAX bytes): nothing is allocated here. */
static void reassign_answer(breq *r, const meta_op *op, int16_t err)
{
    AlterPartitionReassignmentsResponse *resp = r->resp;
    resp->ErrorCode = err;
    int32_t k = 0;
    for (int32_t i = 0; i < resp->Responses.count; i++) {
        AlterPartitionReassignmentsResponse_ReassignableTopicResponse *t = &resp->Responses.items[i];
        for (int32_t j = 0; j < t->Partitions.count; j++, k++) {
            AlterPartitionReassignmentsResponse_ReassignablePartitionResponse *p = &t->Partitions.items[j];
            const meta_reassign_item *it = op && k < op->reassign.n ? &op->reassign.items[k] : NULL;
            p->ErrorCode = err != KERR_NONE ? err : it ? it->err : KERR_UNKNOWN_SERVER_ERROR;
            char *room = (char *)p->ErrorMessage.ptr;
            p->ErrorMessage = KSTR_NULL;
            if (it && it->msg && p->ErrorCode != KERR_NONE) {
                snprintf(room, META_MSG_MAX, "%s", it->msg);
                p->ErrorMessage = kstr_from(room);
            }
        }
    }
}

static int32_t count_partitions(const AlterPartitionReassignmentsRequest *req)
{
    int64_t n = 0;
    for (int32_t i = 0; i < req->Topics.count; i++)
        n += MAX(req->Topics.items[i].Partitions.count, 0);
    return (int32_t)MIN(n, INT32_MAX);
}

breq_rc api_alter_partition_reassignments(breq *r)
{
    const AlterPartitionReassignmentsRequest *req = r->req;
    AlterPartitionReassignmentsResponse *resp = r->resp;
    if (count_partitions(req) > REASSIGN_PARTITIONS_MAX) {
        resp->ErrorCode = KERR_INVALID_REQUEST;
        return BREQ_DONE;
    }
    int16_t denied = broker_cluster_denied(r, ACL_OP_ALTER);
    meta_op *op = denied == KERR_NONE ? meta_op_new(META_OP_REASSIGN, NULL, 0) : NULL;
    resp->Responses.count = MAX(req->Topics.count, 0);
    resp->Responses.items = arena_alloc(&r->arena, (size_t)(resp->Responses.count + 1) * sizeof *resp->Responses.items);
    for (int32_t i = 0; i < resp->Responses.count; i++) {
        const AlterPartitionReassignmentsRequest_ReassignableTopic *t = &req->Topics.items[i];
        AlterPartitionReassignmentsResponse_ReassignableTopicResponse *o = &resp->Responses.items[i];
        int32_t n = MAX(t->Partitions.count, 0);
        *o = (AlterPartitionReassignmentsResponse_ReassignableTopicResponse){.Name = t->Name};
        o->Partitions.count = n;
        o->Partitions.items = arena_alloc(&r->arena, (size_t)(n + 1) * sizeof *o->Partitions.items);
        for (int32_t j = 0; j < n; j++) {
            const AlterPartitionReassignmentsRequest_ReassignablePartition *p = &t->Partitions.items[j];
            o->Partitions.items[j] = (AlterPartitionReassignmentsResponse_ReassignablePartitionResponse){
                .PartitionIndex = p->PartitionIndex, .ErrorMessage = {arena_alloc(&r->arena, META_MSG_MAX), 0}};
            if (op)
                meta_op_add_reassign(op, t->Name.ptr, (size_t)MAX(t->Name.len, 0), p->PartitionIndex, p->Replicas.items,
                                 p->Replicas.count < 0 ? -1 : p->Replicas.count);
        }
    }
    if (!op) {
        reassign_answer(r, NULL, denied);
        return BREQ_DONE;
    }
    return meta_op_park(r, op, reassign_answer);
}
