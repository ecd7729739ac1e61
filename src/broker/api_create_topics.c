/* api_create_topics.c - CreateTopics (key 19) v0-v7: validate names,
 * partition counts, the shape of assignments and configs here; the
 * controller checks existence, places the replicas (or checks the explicit
 * assignment against the registered brokers) and writes the records.
 * validate_only runs every check and creates nothing. The partitions
 * count against the client's controller mutation quota (quota.c). */
#include <string.h>

#include "broker/broker_int.h"

static bool may_create(breq *r, kstr_t name)
{
    meta_image *img = meta_acquire(r->b->meta);
    bool ok = broker_may_create_topic(r, img, name);
    meta_image_release(img);
    return ok;
}

/* The controller mutation quota, strict from v6: a topic that exists takes
 * nothing (the controller answers TOPIC_ALREADY_EXISTS). */
static bool quota_refused(breq *r, kstr_t name, int32_t parts)
{
    meta_image *img = meta_acquire(r->b->meta);
    bool exists = meta_image_topic(img, name.ptr, (size_t)MAX(name.len, 0)) != NULL;
    meta_image_release(img);
    return !exists && !broker_quota_mutation(r, parts, 6);
}

static bool duplicate(const CreateTopicsRequest *req, int32_t i)
{
    kstr_t n = req->Topics.items[i].Name;
    for (int32_t j = 0; j < req->Topics.count; j++)
        if (j != i && req->Topics.items[j].Name.len == n.len &&
            memcmp(req->Topics.items[j].Name.ptr, n.ptr, (size_t)n.len) == 0)
            return true;
    return false;
}

/* Checks that need no metadata; returns an error code with its message. */
static int16_t check_topic(breq *r, const CreateTopicsRequest_CreatableTopic *t, int32_t *parts, int16_t *rf,
                           const char **msg)
{
    const config *c = &r->b->cfg;
    *parts = t->NumPartitions == -1 ? c->num_partitions : t->NumPartitions;
    *rf = t->ReplicationFactor == -1 ? c->default_replication_factor : t->ReplicationFactor;
    if (t->Assignments.count > 0) {
        if (t->NumPartitions != -1 || t->ReplicationFactor != -1)
            return *msg = "give either assignments or partitions and replication factor", KERR_INVALID_REQUEST;
        *parts = t->Assignments.count;
        for (int32_t i = 0; i < t->Assignments.count; i++)
            if (t->Assignments.items[i].PartitionIndex != i)
                return *msg = "assignments must name partitions 0..n-1 in order",
                       KERR_INVALID_REPLICA_ASSIGNMENT;
        *rf = (int16_t)MIN(MAX(t->Assignments.items[0].BrokerIds.count, 0), INT16_MAX);
    }
    for (int32_t i = 0; i < MAX(t->Configs.count, 0); i++) {
        const CreateTopicsRequest_CreateableTopicConfig *cf = &t->Configs.items[i];
        const topic_config_key *k = topic_config_find(cf->Name.ptr, (size_t)MAX(cf->Name.len, 0));
        if (!k)
            return *msg = "unknown topic config", KERR_INVALID_CONFIG;
        if (!kstr_is_null(cf->Value) && !topic_config_valid(k, breq_strdup(r, cf->Value)))
            return *msg = "invalid topic config value", KERR_INVALID_CONFIG;
    }
    return KERR_NONE;
}

static breq_rc create_done(breq *r)
{
    CreateTopicsResponse *resp = r->resp;
    meta_image *img = meta_acquire(r->b->meta);
    for (int32_t i = 0; i < resp->Topics.count; i++) {
        CreateTopicsResponse_CreatableTopicResult *out = &resp->Topics.items[i];
        const meta_topic *t = meta_image_topic(img, out->Name.ptr, (size_t)MAX(out->Name.len, 0));
        if (out->ErrorCode != KERR_NONE) {
            out->NumPartitions = -1;
            out->ReplicationFactor = -1;
            out->Configs.count = -1;
        } else if (t) {
            out->TopicId = t->id;
            if (out->ReplicationFactor == -1 && t->npartitions > 0) /* the controller's default */
                out->ReplicationFactor = (int16_t)MIN(t->partitions[0].nreplicas, INT16_MAX);
        }
    }
    meta_image_release(img);
    return BREQ_DONE;
}

breq_rc api_create_topics(breq *r)
{
    const CreateTopicsRequest *req = r->req;
    CreateTopicsResponse *resp = r->resp;
    int32_t n = MAX(req->Topics.count, 0);
    resp->Topics.count = n;
    resp->Topics.items = breq_items(r, &CreateTopicsResponse_CreatableTopicResult_desc, n);
    meta_wait *w = meta_wait_new(r, create_done);
    for (int32_t i = 0; i < n; i++) {
        const CreateTopicsRequest_CreatableTopic *t = &req->Topics.items[i];
        CreateTopicsResponse_CreatableTopicResult *out = &resp->Topics.items[i];
        out->Name = t->Name;
        out->Configs.count = 0;
        const char *msg = NULL;
        int32_t parts;
        int16_t rf;
        int16_t err = duplicate(req, i) ? (msg = "topic named twice", KERR_INVALID_REQUEST)
                                        : check_topic(r, t, &parts, &rf, &msg);
        if (err == KERR_NONE && !may_create(r, t->Name))
            err = KERR_TOPIC_AUTHORIZATION_FAILED, msg = NULL;
        if (err == KERR_NONE && quota_refused(r, t->Name, parts))
            err = KERR_THROTTLING_QUOTA_EXCEEDED, msg = BROKER_QUOTA_MUTATION_MSG;
        if (err != KERR_NONE) {
            out->ErrorCode = err;
            out->ErrorMessage = kstr_from(msg);
            continue;
        }
        out->NumPartitions = parts;
        out->ReplicationFactor = rf;
        meta_op *op = meta_op_new(META_OP_CREATE_TOPIC, t->Name.ptr, (size_t)MAX(t->Name.len, 0));
        op->partitions = parts;
        op->replication_factor = rf;
        op->validate_only = req->validateOnly;
        for (int32_t j = 0; j < MAX(t->Assignments.count, 0); j++) {
            const kint32_array_t *ids = &t->Assignments.items[j].BrokerIds;
            meta_op_add_assignment(op, ids->items, MAX(ids->count, 0));
        }
        for (int32_t j = 0; j < MAX(t->Configs.count, 0); j++) {
            const CreateTopicsRequest_CreateableTopicConfig *cf = &t->Configs.items[j];
            if (!kstr_is_null(cf->Value))
                meta_op_add_config(op, cf->Name.ptr, (size_t)cf->Name.len, cf->Value.ptr, (size_t)cf->Value.len);
        }
        meta_wait_submit(w, op, &out->ErrorCode, &out->ErrorMessage);
    }
    return meta_wait_end(w);
}
