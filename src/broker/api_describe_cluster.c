/* api_describe_cluster.c - DescribeCluster (key 60) v0-v1: the cluster id,
 * the controller (the quorum leader) and the live brokers (cluster_view.c). Every node answers for the BROKER
 * endpoint type only (v1 may ask for CONTROLLER endpoints, which clients
 * get from the controller listener instead). */
#include "broker/broker_int.h"

enum { ENDPOINT_BROKER = 1 };

/* Acl operations a client may perform on the cluster: with no authorizer,
 * every operation Kafka defines for the cluster resource (bit i = op i:
 * CREATE 5, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10,
 * ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12). */
#define CLUSTER_AUTHORIZED_OPS                                                                     \
    ((1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12))

breq_rc api_describe_cluster(breq *r)
{
    const DescribeClusterRequest *req = r->req;
    DescribeClusterResponse *resp = r->resp;
    const config *c = &r->b->cfg;
    resp->EndpointType = ENDPOINT_BROKER;
    if (r->hdr.api_version >= 1 && req->EndpointType != ENDPOINT_BROKER) {
        resp->ErrorCode = KERR_UNSUPPORTED_ENDPOINT_TYPE;
        resp->ErrorMessage = kstr_from("this node answers for the BROKER endpoint type only");
        resp->ClusterId = kstr_from(c->cluster_id);
        resp->Brokers.count = 0;
        return BREQ_DONE;
    }
    resp->ClusterId = kstr_from(c->cluster_id);
    if ((resp->ErrorCode = broker_cluster_denied(r, ACL_OP_DESCRIBE)) != KERR_NONE) {
        resp->Brokers.count = 0;
        return BREQ_DONE;
    }
    resp->ControllerId = broker_view_controller(r->b);
    meta_image *img = meta_acquire(r->b->meta);
    broker_view *v;
    int32_t n = broker_view_list(r, img, &v);
    meta_image_release(img);
    resp->Brokers.count = n;
    resp->Brokers.items = breq_items(r, &DescribeClusterResponse_DescribeClusterBroker_desc, n);
    for (int32_t i = 0; i < n; i++) {
        DescribeClusterResponse_DescribeClusterBroker *br = &resp->Brokers.items[i];
        br->BrokerId = v[i].id;
        br->Host = kstr_from(v[i].host);
        br->Port = v[i].port;
        br->Rack = kstr_from(v[i].rack);
    }
    if (req->IncludeClusterAuthorizedOperations)
        resp->ClusterAuthorizedOperations = CLUSTER_AUTHORIZED_OPS;
    return BREQ_DONE;
}
