/* api_list_groups.c - ListGroups (key 16) v0-v4: every group this node
 * coordinates (consumer groups and groups that only commit offsets), with
 * its protocol type and (v4+) state; v4 filters by state names
 * (case-insensitive). */
#include <string.h>
#include <strings.h>

#include "broker/broker_int.h"

typedef struct list_ctx {
    breq *r;
    const kstr_array_t *states; /* v4 filter, empty: all */
    int32_t n, cap;
    ListGroupsResponse_ListedGroup *items;
} list_ctx;

static bool state_wanted(const list_ctx *lc, group_state s)
{
    if (!lc->states || lc->states->count <= 0)
        return true;
    const char *name = group_state_name(s);
    for (int32_t i = 0; i < lc->states->count; i++) {
        kstr_t f = lc->states->items[i];
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
    if (g->state == GROUP_DEAD || !state_wanted(lc, g->state))
        return;
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
}

breq_rc api_list_groups(breq *r)
{
    const ListGroupsRequest *req = r->req;
    ListGroupsResponse *resp = r->resp;
    list_ctx lc = {.r = r, .states = r->hdr.api_version >= 4 ? &req->StatesFilter : NULL};
    group_coord_each(r->b->groups, list_one, &lc);
    resp->Groups.count = lc.n;
    resp->Groups.items = lc.items ? lc.items : breq_items(r, &ListGroupsResponse_ListedGroup_desc, 0);
    return BREQ_DONE;
}
