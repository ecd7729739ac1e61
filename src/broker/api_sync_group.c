/* api_sync_group.c - SyncGroup (key 14) v0-v5: the leader hands in the
 * assignment of the new generation; every member waits (parked) until it is
 * stored, then gets its own. v5 checks the protocol type and name. */
#include <string.h>

#include "broker/broker_int.h"

typedef struct sync_wait {
    group_waiter w; /* first: the coordinator hands it back */
    breq *r;
} sync_wait;

static kstr_t copy_str(breq *r, const char *s)
{
    return s ? kstr_from(arena_strndup(&r->arena, s, strlen(s))) : KSTR_NULL;
}

static void sync_done(group_waiter *w, const group_result *res)
{
    breq *r = ((sync_wait *)w)->r;
    SyncGroupResponse *resp = r->resp;
    resp->ErrorCode = res->error;
    resp->ProtocolType = copy_str(r, res->protocol_type);
    resp->ProtocolName = copy_str(r, res->protocol_name);
    uint8_t *a = arena_alloc(&r->arena, (size_t)MAX(res->assignment_len, 1));
    if (res->assignment_len > 0)
        memcpy(a, res->assignment, (size_t)res->assignment_len);
    resp->Assignment = (kbytes_t){a, MAX(res->assignment_len, 0)};
    breq_finish(r);
}

static const char *opt_str(breq *r, kstr_t s)
{
    return s.len >= 0 ? breq_strdup(r, s) : NULL;
}

breq_rc api_sync_group(breq *r)
{
    const SyncGroupRequest *req = r->req;
    SyncGroupResponse *resp = r->resp;
    resp->Assignment = (kbytes_t){(const uint8_t *)"", 0};
    if (req->GroupId.len <= 0) {
        resp->ErrorCode = KERR_INVALID_GROUP_ID;
        return BREQ_DONE;
    }
    if ((resp->ErrorCode = broker_group_denied(r, ACL_OP_READ, req->GroupId)) != KERR_NONE)
        return BREQ_DONE;
    int32_t n = MAX(req->Assignments.count, 0);
    group_assignment_in *as = arena_alloc(&r->arena, (size_t)MAX(n, 1) * sizeof *as);
    for (int32_t i = 0; i < n; i++) {
        const SyncGroupRequest_SyncGroupRequestAssignment *a = &req->Assignments.items[i];
        as[i] = (group_assignment_in){breq_strdup(r, a->MemberId), a->Assignment.ptr, MAX(a->Assignment.len, 0)};
    }
    sync_wait *sw = arena_alloc(&r->arena, sizeof *sw);
    *sw = (sync_wait){{sync_done}, r};
    group_sync_req sr = {
        .member_id = breq_strdup(r, req->MemberId),
        .instance_id = req->GroupInstanceId.len > 0 ? breq_strdup(r, req->GroupInstanceId) : NULL,
        .protocol_type = opt_str(r, req->ProtocolType),
        .protocol_name = opt_str(r, req->ProtocolName),
        .generation = req->GenerationId,
        .nassignments = n,
        .assignments = as,
        .waiter = &sw->w,
    };
    group_coord_sync(r->b->groups, breq_strdup(r, req->GroupId), &sr);
    return BREQ_PARKED; /* sync_done answers, maybe already */
}
