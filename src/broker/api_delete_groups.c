/* api_delete_groups.c - DeleteGroups (key 42) v0-v2: groups without
 * members go, with their offsets (tombstones in __consumer_offsets,
 * answered once durable). A group with members: NON_EMPTY_GROUP; unknown:
 * GROUP_ID_NOT_FOUND. */
#include "broker/broker_int.h"

typedef struct delete_ctx {
    breq *r;
    int16_t *errs;
} delete_ctx;

static void deleted(void *arg)
{
    delete_ctx *dc = arg;
    DeleteGroupsResponse *resp = dc->r->resp;
    for (int32_t i = 0; i < resp->Results.count; i++)
        resp->Results.items[i].ErrorCode = dc->errs[i];
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
    for (int32_t i = 0; i < n; i++) {
        resp->Results.items[i].GroupId = req->GroupsNames.items[i];
        ids[i] = breq_strdup(r, req->GroupsNames.items[i]);
    }
    group_coord_delete_groups(r->b->groups, ids, dc->errs, n, deleted, dc);
    return BREQ_PARKED; /* deleted answers, maybe already */
}
