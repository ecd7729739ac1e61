/* api_join_group.c - JoinGroup (key 11) v0-v9: a member joins (or
 * rejoins) a group; the request waits (parked) until the group's join
 * phase ends. v4+ first answers MEMBER_ID_REQUIRED with a fresh member id
 * unless the member is static (group.instance.id, v5+); v9 tells a static
 * leader to skip the assignment. The state machine is src/group. */
#include <stdio.h>
#include <string.h>

#include "broker/broker_int.h"

#define MEMBER_ID_MAX 512 /* generated ids: client or instance id (capped) + uuid */
#define ID_PREFIX_MAX 255

typedef struct join_wait {
    group_waiter w; /* first: the coordinator hands it back */
    breq *r;
} join_wait;

static kstr_t copy_str(breq *r, const char *s)
{
    return s ? kstr_from(arena_strndup(&r->arena, s, strlen(s))) : KSTR_NULL;
}

static kbytes_t copy_bytes(breq *r, const uint8_t *p, int32_t len)
{
    uint8_t *c = arena_alloc(&r->arena, (size_t)MAX(len, 1));
    if (len > 0)
        memcpy(c, p, (size_t)len);
    return (kbytes_t){c, MAX(len, 0)};
}

static void join_done(group_waiter *w, const group_result *res)
{
    breq *r = ((join_wait *)w)->r;
    JoinGroupResponse *resp = r->resp;
    resp->ErrorCode = res->error;
    resp->GenerationId = res->generation;
    resp->MemberId = copy_str(r, res->member_id);
    resp->Leader = copy_str(r, res->leader);
    resp->ProtocolType = copy_str(r, res->protocol_type);
    resp->ProtocolName = copy_str(r, res->protocol_name); /* null goes out as "" before v7 */
    resp->SkipAssignment = res->skip_assignment;
    resp->Members.count = res->nmembers;
    resp->Members.items = breq_items(r, &JoinGroupResponse_JoinGroupResponseMember_desc, res->nmembers);
    for (int32_t i = 0; i < res->nmembers; i++) {
        JoinGroupResponse_JoinGroupResponseMember *m = &resp->Members.items[i];
        m->MemberId = copy_str(r, res->members[i].member_id);
        m->GroupInstanceId = copy_str(r, res->members[i].instance_id);
        m->Metadata = copy_bytes(r, res->members[i].metadata, res->members[i].metadata_len);
    }
    breq_finish(r);
}

/* "/127.0.0.1" from "127.0.0.1:51234" (Kafka's client host form). */
static const char *client_host(breq *r)
{
    const char *peer = net_conn_peer(net_req_conn(r->nreq));
    const char *colon = strrchr(peer, ':');
    size_t len = colon ? (size_t)(colon - peer) : strlen(peer);
    if (len >= 2 && peer[0] == '[' && peer[len - 1] == ']')
        peer++, len -= 2;
    char *h = arena_alloc(&r->arena, len + 2);
    h[0] = '/';
    memcpy(h + 1, peer, len);
    return h;
}

/* A nullable string as a C string in the arena; "" counts as absent. */
static const char *opt_str(breq *r, kstr_t s)
{
    return s.len > 0 ? breq_strdup(r, s) : NULL;
}

breq_rc api_join_group(breq *r)
{
    const JoinGroupRequest *req = r->req;
    int16_t v = r->hdr.api_version;
    JoinGroupResponse *resp = r->resp;
    if (req->GroupId.len <= 0 || broker_group_denied(r, ACL_OP_READ, req->GroupId) != KERR_NONE) {
        resp->ErrorCode = req->GroupId.len <= 0 ? KERR_INVALID_GROUP_ID : KERR_GROUP_AUTHORIZATION_FAILED;
        resp->MemberId = req->MemberId;
        return BREQ_DONE;
    }
    int32_t np = MAX(req->Protocols.count, 0);
    group_protocol_in *ps = arena_alloc(&r->arena, (size_t)MAX(np, 1) * sizeof *ps);
    for (int32_t i = 0; i < np; i++) {
        const JoinGroupRequest_JoinGroupRequestProtocol *p = &req->Protocols.items[i];
        ps[i] = (group_protocol_in){breq_strdup(r, p->Name), p->Metadata.ptr, MAX(p->Metadata.len, 0)};
    }
    const char *client_id = breq_strdup(r, r->hdr.client_id);
    const char *instance_id = opt_str(r, req->GroupInstanceId);
    char prefix[ID_PREFIX_MAX + 1];
    snprintf(prefix, sizeof prefix, "%s", instance_id ? instance_id : client_id);
    char *fresh = arena_alloc(&r->arena, MEMBER_ID_MAX);
    group_coord_new_member_id(prefix, NULL, fresh, MEMBER_ID_MAX);
    join_wait *jw = arena_alloc(&r->arena, sizeof *jw);
    *jw = (join_wait){{join_done}, r};
    group_join_req jr = {
        .member_id = breq_strdup(r, req->MemberId),
        .instance_id = instance_id,
        .client_id = client_id,
        .client_host = client_host(r),
        .protocol_type = breq_strdup(r, req->ProtocolType),
        .fresh_id = fresh,
        .session_timeout_ms = req->SessionTimeoutMs,
        .rebalance_timeout_ms = req->RebalanceTimeoutMs,
        .nprotocols = np,
        .protocols = ps,
        .require_known_member = v >= 4,
        .skip_assignment_ok = v >= 9,
        .waiter = &jw->w,
    };
    group_coord_join(r->b->groups, breq_strdup(r, req->GroupId), &jr);
    return BREQ_PARKED; /* join_done answers, maybe already */
}
