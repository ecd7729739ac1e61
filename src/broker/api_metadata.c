/* api_metadata.c - Metadata (key 3) v0-v12: the live brokers (cluster_view.c), the cluster id,
 * the controller, and the requested topics (all of them when the request's
 * topic list is null, or empty in v0). A requested topic that does not
 * exist is created first when auto-creation is on and the request allows
 * it (v4+ AllowAutoTopicCreation).
 *
 * Listeners (KIP-103): every address given is the endpoint of the listener
 * the request came on. A partition whose leader is registered without an
 * endpoint for it has no leader to give: LISTENER_NOT_FOUND (72) from v6,
 * LEADER_NOT_AVAILABLE before, leader -1, as Kafka answers; replicas
 * registered without that endpoint are listed as offline (v5+). */
#include <string.h>

#include "broker/broker_int.h"

static void fill_brokers(breq *r, const meta_image *img, MetadataResponse *resp)
{
    broker_view *v;
    int32_t n = broker_view_list(r, img, &v);
    resp->Brokers.count = n;
    resp->Brokers.items = breq_items(r, &MetadataResponse_MetadataResponseBroker_desc, n);
    for (int32_t i = 0; i < n; i++) {
        MetadataResponse_MetadataResponseBroker *br = &resp->Brokers.items[i];
        br->NodeId = v[i].id;
        br->Host = kstr_from(v[i].host);
        br->Port = v[i].port;
        br->Rack = kstr_from(v[i].rack);
    }
    resp->ClusterId = kstr_from(r->b->cfg.cluster_id);
    resp->ControllerId = broker_view_controller(r->b);
}

static bool is_internal(const char *name)
{
    return strcmp(name, "__consumer_offsets") == 0 || strcmp(name, "__transaction_state") == 0;
}

/* The partition's leader and error as r's client may be told them. */
static void leader_for(const breq *r, const meta_image *img, const meta_partition *mp, int32_t *leader,
                       int16_t *err)
{
    *leader = mp->leader;
    *err = mp->leader < 0 ? KERR_LEADER_NOT_AVAILABLE : KERR_NONE;
    const meta_broker *mb = mp->leader >= 0 ? meta_image_broker(img, mp->leader) : NULL;
    const char *host;
    int32_t port;
    if (mb && !broker_view_addr(r, mb, &host, &port)) {
        *leader = -1;
        *err = r->hdr.api_version >= 6 ? KERR_LISTENER_NOT_FOUND : KERR_LEADER_NOT_AVAILABLE;
    }
}

/* The partition's replicas registered without an endpoint for r's listener. */
static kint32_array_t offline_for(breq *r, const meta_image *img, const meta_partition *mp)
{
    kint32_array_t out = {0, NULL};
    const char *host;
    int32_t port;
    for (int32_t i = 0; i < mp->nreplicas; i++) {
        const meta_broker *mb = meta_image_broker(img, mp->replicas[i]);
        if (!mb || broker_view_addr(r, mb, &host, &port))
            continue;
        if (!out.items)
            out.items = arena_alloc(&r->arena, (size_t)mp->nreplicas * sizeof *out.items);
        out.items[out.count++] = mp->replicas[i];
    }
    return out;
}

static void fill_topic(breq *r, const meta_image *img, const meta_topic *t,
                       MetadataResponse_MetadataResponseTopic *out)
{
    out->ErrorCode = KERR_NONE;
    out->Name = kstr_from(t->name);
    out->TopicId = t->id;
    out->IsInternal = is_internal(t->name);
    out->Partitions.count = t->npartitions;
    out->Partitions.items = breq_items(r, &MetadataResponse_MetadataResponsePartition_desc, t->npartitions);
    for (int32_t i = 0; i < t->npartitions; i++) {
        const meta_partition *mp = &t->partitions[i];
        MetadataResponse_MetadataResponsePartition *p = &out->Partitions.items[i];
        leader_for(r, img, mp, &p->LeaderId, &p->ErrorCode);
        p->PartitionIndex = mp->index;
        p->LeaderEpoch = mp->leader_epoch;
        p->ReplicaNodes = (kint32_array_t){mp->nreplicas, mp->replicas};
        p->IsrNodes = (kint32_array_t){mp->nisr, mp->isr};
        p->OfflineReplicas = offline_for(r, img, mp);
    }
}

static bool all_topics(breq *r, const MetadataRequest *req)
{
    return req->Topics.count < 0 || (r->hdr.api_version == 0 && req->Topics.count == 0);
}

/* The response refers into the image, which must outlive the encoding:
 * it is released when the request is freed (kept in the arena's care). */
static breq_rc metadata_fill(breq *r)
{
    const MetadataRequest *req = r->req;
    MetadataResponse *resp = r->resp;
    meta_image *img = meta_acquire(r->b->meta);
    breq_hold_image(r, img);
    fill_brokers(r, img, resp);
    if (all_topics(r, req)) { /* the topics the client may not describe are left out */
        resp->Topics.count = 0;
        resp->Topics.items = breq_items(r, &MetadataResponse_MetadataResponseTopic_desc, img->ntopics);
        for (int32_t i = 0; i < img->ntopics; i++)
            if (broker_topic_denied(r, img, ACL_OP_DESCRIBE, kstr_from(img->topics[i]->name)) == KERR_NONE)
                fill_topic(r, img, img->topics[i], &resp->Topics.items[resp->Topics.count++]);
        return BREQ_DONE;
    }
    int32_t n = req->Topics.count;
    resp->Topics.count = n;
    resp->Topics.items = breq_items(r, &MetadataResponse_MetadataResponseTopic_desc, n);
    for (int32_t i = 0; i < n; i++) {
        const MetadataRequest_MetadataRequestTopic *t = &req->Topics.items[i];
        MetadataResponse_MetadataResponseTopic *out = &resp->Topics.items[i];
        const meta_topic *mt = !kstr_is_null(t->Name) ? meta_image_topic(img, t->Name.ptr, (size_t)t->Name.len)
                                                      : meta_image_topic_by_id(img, &t->TopicId);
        kstr_t name = mt ? kstr_from(mt->name) : t->Name;
        if (!kstr_is_null(name) && broker_topic_denied(r, img, ACL_OP_DESCRIBE, name) != KERR_NONE) {
            out->Name = name;
            out->TopicId = t->TopicId;
            out->ErrorCode = KERR_TOPIC_AUTHORIZATION_FAILED;
            continue;
        }
        if (mt) {
            fill_topic(r, img, mt, out);
            continue;
        }
        out->Name = t->Name;
        out->TopicId = t->TopicId;
        if (kstr_is_null(t->Name))
            out->ErrorCode = KERR_UNKNOWN_TOPIC_ID;
        else if (!meta_valid_topic_name(t->Name.ptr, (size_t)t->Name.len))
            out->ErrorCode = KERR_INVALID_TOPIC_EXCEPTION;
        else if (!meta_caught_up(r->b->meta))
            out->ErrorCode = KERR_LEADER_NOT_AVAILABLE; /* this node is still catching up: retry */
        else
            out->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    return BREQ_DONE;
}

breq_rc api_metadata(breq *r)
{
    const MetadataRequest *req = r->req;
    bool allow = r->hdr.api_version < 4 || req->AllowAutoTopicCreation;
    if (allow && !all_topics(r, req)) {
        int32_t n = req->Topics.count;
        kstr_t *names = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *names);
        for (int32_t i = 0; i < n; i++)
            names[i] = req->Topics.items[i].Name;
        if (broker_autocreate(r, names, n, metadata_fill))
            return BREQ_PARKED;
    }
    return metadata_fill(r);
}
