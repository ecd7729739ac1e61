/* api_delete_topics.c - DeleteTopics (key 20) v0-v6: by name (v0-v5
 * TopicNames, v6 Topics[].Name) or by topic id (v6). The controller writes
 * a RemoveTopicRecord; the partitions' logs are then closed and removed.
 * The partitions count against the client's controller mutation quota
 * (quota.c). */
#include <string.h>

#include "broker/broker_int.h"

static breq_rc delete_done(breq *r) { (void)r; return BREQ_DONE; }

breq_rc api_delete_topics(breq *r)
{
    const DeleteTopicsRequest *req = r->req;
    DeleteTopicsResponse *resp = r->resp;
    bool v6 = r->hdr.api_version >= 6;
    int32_t n = MAX(v6 ? req->Topics.count : req->TopicNames.count, 0);
    resp->Responses.count = n;
    resp->Responses.items = breq_items(r, &DeleteTopicsResponse_DeletableTopicResult_desc, n);
    meta_wait *w = meta_wait_new(r, delete_done);
    meta_image *img = meta_acquire(r->b->meta);
    for (int32_t i = 0; i < n; i++) {
        DeleteTopicsResponse_DeletableTopicResult *out = &resp->Responses.items[i];
        kstr_t name = v6 ? req->Topics.items[i].Name : req->TopicNames.items[i];
        bool by_name = !kstr_is_null(name) && name.len >= 0;
        const meta_topic *t = by_name ? meta_image_topic(img, name.ptr, (size_t)name.len)
                                      : meta_image_topic_by_id(img, &req->Topics.items[i].TopicId);
        out->TopicId = by_name ? (t ? t->id : out->TopicId) : req->Topics.items[i].TopicId;
        if (!by_name && t)
            name = (kstr_t){breq_strdup(r, kstr_from(t->name)), (int32_t)strlen(t->name)};
        out->Name = name;
        if (!kstr_is_null(name) && broker_topic_denied(r, img, ACL_OP_DELETE, name) != KERR_NONE) {
            out->ErrorCode = KERR_TOPIC_AUTHORIZATION_FAILED; /* Kafka: DELETE on the topic */
            continue;
        }
        if (t && !broker_quota_mutation(r, t->npartitions, 5)) { /* strict from v5 */
            out->ErrorCode = KERR_THROTTLING_QUOTA_EXCEEDED;
            out->ErrorMessage = kstr_from(BROKER_QUOTA_MUTATION_MSG);
            continue;
        }
        meta_op *op = by_name ? meta_op_new(META_OP_DELETE_TOPIC, name.ptr, (size_t)name.len)
                              : meta_op_new(META_OP_DELETE_TOPIC, NULL, 0);
        if (!by_name)
            op->topic_id = out->TopicId;
        meta_wait_submit(w, op, &out->ErrorCode, &out->ErrorMessage);
    }
    meta_image_release(img);
    return meta_wait_end(w);
}
