/* api_create_partitions.c - CreatePartitions (key 37) v0-v3: raise a
 * topic's partition count to a new total. A topic named twice, or explicit
 * assignments that are not one per new partition, are rejected here; the
 * controller checks that the topic exists and that the total grows, places
 * the new replicas or checks the assignments against the registered brokers,
 * and opens nothing when validate_only is set. The new
 * partitions' logs are open before the answer goes out (the controller's
 * change listener runs before the change completes). Each topic needs
 * ALTER (else TOPIC_AUTHORIZATION_FAILED, checked after the duplicates as
 * Kafka does). The new partitions count against the client's controller
 * mutation quota (quota.c). */
#include <string.h>

#include "broker/broker_int.h"

static bool duplicate(const CreatePartitionsRequest *req, int32_t i)
{
    kstr_t n = req->Topics.items[i].Name;
    for (int32_t j = 0; j < req->Topics.count; j++)
        if (j != i && req->Topics.items[j].Name.len == n.len &&
            memcmp(req->Topics.items[j].Name.ptr, n.ptr, (size_t)MAX(n.len, 0)) == 0)
            return true;
    return false;
}

/* Explicit assignments: one per new partition (the controller checks the
 * broker ids). Only checked when the total is a real increase (else the controller's
 * INVALID_PARTITIONS answer comes first, as Kafka orders them). */
static int16_t check_assignments(const meta_image *img,
                                 const CreatePartitionsRequest_CreatePartitionsTopic *t,
                                 const char **msg)
{
    if (t->Assignments.count < 0)
        return KERR_NONE;
    const meta_topic *mt =
        t->Name.len > 0 ? meta_image_topic(img, t->Name.ptr, (size_t)t->Name.len) : NULL;
    if (!mt || t->Count <= mt->npartitions)
        return KERR_NONE;
    if (t->Assignments.count != t->Count - mt->npartitions)
        return *msg = "one assignment is needed per new partition", KERR_INVALID_REPLICA_ASSIGNMENT;
    return KERR_NONE;
}

/* The partitions a real increase adds (0 otherwise: the controller refuses
 * it), counted against the controller mutation quota, strict from v3. */
static int32_t new_partitions(const meta_image *img, const CreatePartitionsRequest_CreatePartitionsTopic *t)
{
    const meta_topic *mt =
        t->Name.len > 0 ? meta_image_topic(img, t->Name.ptr, (size_t)t->Name.len) : NULL;
    return mt && t->Count > mt->npartitions ? t->Count - mt->npartitions : 0;
}

static breq_rc create_done(breq *r)
{
    (void)r;
    return BREQ_DONE;
}

breq_rc api_create_partitions(breq *r)
{
    const CreatePartitionsRequest *req = r->req;
    CreatePartitionsResponse *resp = r->resp;
    int32_t n = MAX(req->Topics.count, 0);
    resp->Results.count = n;
    resp->Results.items =
        breq_items(r, &CreatePartitionsResponse_CreatePartitionsTopicResult_desc, n);
    meta_wait *w = meta_wait_new(r, create_done);
    meta_image *img = meta_acquire(r->b->meta);
    for (int32_t i = 0; i < n; i++) {
        const CreatePartitionsRequest_CreatePartitionsTopic *t = &req->Topics.items[i];
        CreatePartitionsResponse_CreatePartitionsTopicResult *out = &resp->Results.items[i];
        out->Name = t->Name;
        const char *msg = NULL;
        int16_t err = duplicate(req, i) ? (msg = "topic named twice", KERR_INVALID_REQUEST)
                                        : broker_topic_denied(r, img, ACL_OP_ALTER, t->Name);
        if (err == KERR_NONE)
            err = check_assignments(img, t, &msg);
        if (err == KERR_NONE && !broker_quota_mutation(r, new_partitions(img, t), 3))
            err = KERR_THROTTLING_QUOTA_EXCEEDED, msg = BROKER_QUOTA_MUTATION_MSG;
        if (err != KERR_NONE) {
            out->ErrorCode = err;
            out->ErrorMessage = kstr_from(msg);
            continue;
        }
        meta_op *op = meta_op_new(META_OP_CREATE_PARTITIONS, t->Name.ptr ? t->Name.ptr : "",
                                  (size_t)MAX(t->Name.len, 0));
        op->partitions = t->Count;
        op->validate_only = req->ValidateOnly;
        for (int32_t j = 0; j < MAX(t->Assignments.count, 0); j++) {
            const kint32_array_t *ids = &t->Assignments.items[j].BrokerIds;
            meta_op_add_assignment(op, ids->items, MAX(ids->count, 0));
        }
        meta_wait_submit(w, op, &out->ErrorCode, &out->ErrorMessage);
    }
    meta_image_release(img);
    return meta_wait_end(w);
}
