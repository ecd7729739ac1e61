/* api_list_groups.c - ListGroups (key 16) v0-v5: every group this node
 * coordinates (consumer groups and groups that only commit offsets), with
 * its protocol type, (v4+) state and (v5+) group type; v4 filters by state
 * names and v5 by group types (both case-insensitive). Every group here
 * speaks the classic protocol, so its type is "classic" (KIP-848 names). */
#include <string.h>
#include <strings.h>

#include "broker/broker_int.h"

#define GROUP_TYPE_CLASSIC "classic"

typedef struct list_ctx {
    breq *r;
    const kstr_array_t *states; /* v4 filter, empty: all */
    bool classic_wanted;        /* v5 type filter admits "classic" */
    bool all_groups;            /* DESCRIBE on the cluster: no per-group check */
    int32_t n, cap;
    ListGroupsResponse_ListedGroup *items;
} list_ctx;

/* An absent or empty filter admits everything. */
static bool filter_admits(const kstr_array_t *filter, const char *name)
{
    if (!filter || filter->count <= 0)
        return true;
    for (int32_t i = 0; i < filter->count; i++) {
        kstr_t f = filter->items[i];
        if (f.len == (int32_t)strlen(name) && strncasecmp(f.ptr, name, (size_t)f.len) == 0)
            return true;
    }
    return false;
}

static kstr_t copy_kstr(breq *r, const char *s)
{
    return kstr_from(arena_strndup(&r->arena, s ? s : "", s ? strlen(s) : 0));
}

static void list_one(void *arg, const group *g)
{
    list_ctx *lc = arg;
    if (g->state == GROUP_DEAD || !lc->classic_wanted || !filter_admits(lc->states, group_state_name(g->state)))
        return;
    if (!lc->all_groups && broker_group_denied(lc->r, ACL_OP_DESCRIBE, kstr_from(g->id)) != KERR_NONE)
        return; /* Kafka lists only the groups the client may describe */
    if (lc->n == lc->cap) {
        lc->cap = lc->cap ? 2 * lc->cap : 16;
        ListGroupsResponse_ListedGroup *grown = breq_items(lc->r, &ListGroupsResponse_ListedGroup_desc, lc->cap);
        if (lc->n)
            memcpy(grown, lc->items, (size_t)lc->n * sizeof *grown);
        lc->items = grown;
    }
    ListGroupsResponse_ListedGroup *out = &lc->items[lc->n++];
    out->GroupId = copy_kstr(lc->r, g->id);
    out->ProtocolType = copy_kstr(lc->r, g->protocol_type);
    out->GroupState = copy_kstr(lc->r, group_state_name(g->state));
    out->GroupType = kstr_from(GROUP_TYPE_CLASSIC);
}

breq_rc api_list_groups(breq *r)
{
    const ListGroupsRequest *req = r->req;
    ListGroupsResponse *resp = r->resp;
    list_ctx lc = {.r = r,
                   .all_groups = broker_allowed_cluster(r, ACL_OP_DESCRIBE),
                   .states = r->hdr.api_version >= 4 ? &req->StatesFilter : NULL,
                   .classic_wanted = r->hdr.api_version < 5 || filter_admits(&req->TypesFilter, GROUP_TYPE_CLASSIC)};
    group_coord_each(r->b->groups, list_one, &lc);
    resp->Groups.count = lc.n;
    resp->Groups.items = lc.items ? lc.items : breq_items(r, &ListGroupsResponse_ListedGroup_desc, 0);
    return BREQ_DONE;
}
