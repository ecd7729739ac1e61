/* api_delete_groups.c - DeleteGroups (key 42) v0-v2: groups without
 * members go, with their offsets (tombstones in __consumer_offsets,
 * answered once durable). A group with members: NON_EMPTY_GROUP; unknown:
 * GROUP_ID_NOT_FOUND. */
#include "broker/broker_int.h"

typedef struct delete_ctx {
    breq *r;
    int16_t *errs;   /* per group asked of the coordinator, in request order */
} delete_ctx;

static void deleted(void *arg)
{
    delete_ctx *dc = arg;
    DeleteGroupsResponse *resp = dc->r->resp;
    for (int32_t i = 0, k = 0; i < resp->Results.count; i++)
        if (resp->Results.items[i].ErrorCode == KERR_NONE) /* not refused */
            resp->Results.items[i].ErrorCode = dc->errs[k++];
    breq_finish(dc->r);
}

breq_rc api_delete_groups(breq *r)
{
    const DeleteGroupsRequest *req = r->req;
    DeleteGroupsResponse *resp = r->resp;
    int32_t n = MAX(req->GroupsNames.count, 0);
    resp->Results.count = n;
    resp->Results.items = breq_items(r, &DeleteGroupsResponse_DeletableGroupResult_desc, n);
    const char **ids = arena_alloc(&r->arena, (size_t)MAX(n, 1) * sizeof *ids);
    delete_ctx *dc = arena_alloc(&r->arena, sizeof *dc);
    dc->r = r;
    dc->errs = arena_alloc(&r->arena, (size_t)MAX(n, 1) * sizeof *dc->errs);
    int32_t k = 0; /* the groups the client may delete (DELETE on the group) */
    for (int32_t i = 0; i < n; i++) {
        DeleteGroupsResponse_DeletableGroupResult *out = &resp->Results.items[i];
        out->GroupId = req->GroupsNames.items[i];
        if ((out->ErrorCode = broker_group_denied(r, ACL_OP_DELETE, out->GroupId)) == KERR_NONE)
            ids[k++] = breq_strdup(r, req->GroupsNames.items[i]);
    }
    group_coord_delete_groups(r->b->groups, ids, dc->errs, k, deleted, dc);
    return BREQ_PARKED; /* deleted answers, maybe already */
}
