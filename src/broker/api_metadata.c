/* api_metadata.c - Metadata (key 3) v0-v12: the brokers, the cluster id,
 * the controller and the requested topics (all of them when the request's
 * topic list is null, or empty in v0). */
#include "broker/broker_int.h"

static void fill_brokers(breq *r, MetadataResponse *resp)
{
    const config *c = &r->b->cfg;
    resp->Brokers.count = 1;
    resp->Brokers.items = arena_alloc(&r->arena, sizeof *resp->Brokers.items);
    MetadataResponse_MetadataResponseBroker *br = &resp->Brokers.items[0];
    br->NodeId = c->node_id;
    br->Host = kstr_from(c->advertise.host);
    br->Port = c->advertise.port;
    br->Rack = KSTR_NULL;
    resp->ClusterId = kstr_from(c->cluster_id);
    resp->ControllerId = c->node_id;
}

/* Every requested topic is answered; a topic the node does not have gets
 * UNKNOWN_TOPIC_OR_PARTITION (by name) or UNKNOWN_TOPIC_ID (by id). */
static void fill_topics(breq *r, const MetadataRequest *req, MetadataResponse *resp)
{
    int32_t n = req->Topics.count > 0 ? req->Topics.count : 0;
    resp->Topics.count = n;
    resp->Topics.items = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *resp->Topics.items);
    for (int32_t i = 0; i < n; i++) {
        const MetadataRequest_MetadataRequestTopic *t = &req->Topics.items[i];
        MetadataResponse_MetadataResponseTopic *out = &resp->Topics.items[i];
        proto_set_defaults(&MetadataResponse_MetadataResponseTopic_desc, r->hdr.api_version, out);
        out->Name = t->Name;
        out->TopicId = t->TopicId;
        out->ErrorCode = kstr_is_null(t->Name) ? KERR_UNKNOWN_TOPIC_ID : KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
}

breq_rc api_metadata(breq *r)
{
    const MetadataRequest *req = r->req;
    MetadataResponse *resp = r->resp;
    fill_brokers(r, resp);
    fill_topics(r, req, resp);
    return BREQ_DONE;
}
