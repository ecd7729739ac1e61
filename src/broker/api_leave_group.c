/* api_leave_group.c - LeaveGroup (key 13) v0-v5: members leave a group,
 * which rebalances. v0-v2 name one member id; v3+ a batch of members, each
 * by member id or by static instance id, each with its own error. */
#include "broker/broker_int.h"

breq_rc api_leave_group(breq *r)
{
    const LeaveGroupRequest *req = r->req;
    LeaveGroupResponse *resp = r->resp;
    bool batched = r->hdr.api_version >= 3;
    if (req->GroupId.len <= 0) {
        resp->ErrorCode = KERR_INVALID_GROUP_ID;
        return BREQ_DONE;
    }
    if ((resp->ErrorCode = broker_group_denied(r, ACL_OP_READ, req->GroupId)) != KERR_NONE)
        return BREQ_DONE;
    int32_t n = batched ? MAX(req->Members.count, 0) : 1;
    group_leave_in *ms = arena_alloc(&r->arena, (size_t)MAX(n, 1) * sizeof *ms);
    for (int32_t i = 0; i < n; i++) {
        if (!batched) {
            ms[i] = (group_leave_in){breq_strdup(r, req->MemberId), NULL, KERR_NONE};
            continue;
        }
        const LeaveGroupRequest_MemberIdentity *m = &req->Members.items[i];
        const char *instance_id = m->GroupInstanceId.len > 0 ? breq_strdup(r, m->GroupInstanceId) : NULL;
        ms[i] = (group_leave_in){breq_strdup(r, m->MemberId), instance_id, KERR_NONE};
    }
    resp->ErrorCode = group_coord_leave(r->b->groups, breq_strdup(r, req->GroupId), ms, n);
    if (!batched) {
        if (!resp->ErrorCode)
            resp->ErrorCode = ms[0].error;
        return BREQ_DONE;
    }
    resp->Members.count = resp->ErrorCode ? 0 : n;
    resp->Members.items = breq_items(r, &LeaveGroupResponse_MemberResponse_desc, n);
    for (int32_t i = 0; i < resp->Members.count; i++) {
        LeaveGroupResponse_MemberResponse *out = &resp->Members.items[i];
        out->MemberId = req->Members.items[i].MemberId;
        out->GroupInstanceId = req->Members.items[i].GroupInstanceId;
        out->ErrorCode = ms[i].error;
    }
    return BREQ_DONE;
}
