/* api_describe_groups.c - DescribeGroups (key 15) v0-v5: state, protocol
 * and members of each group asked for. Members' metadata and assignments
 * are shown only while the group is Stable (as Kafka does); an unknown
 * group is described as Dead. */
#include <string.h>

#include "broker/broker_int.h"

/* READ, DELETE and DESCRIBE on a group: what an unsecured node allows. */
#define GROUP_OPERATIONS ((1 << 3) | (1 << 6) | (1 << 8))

typedef struct describe_ctx {
    breq *r;
    DescribeGroupsResponse_DescribedGroup *out;
} describe_ctx;

static kstr_t copy_kstr(breq *r, const char *s)
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

static void describe_member(breq *r, const group *g, const group_member *m,
                            DescribeGroupsResponse_DescribedGroupMember *out)
{
    out->MemberId = copy_kstr(r, m->id);
    out->GroupInstanceId = copy_kstr(r, m->instance_id);
    out->ClientId = copy_kstr(r, m->client_id);
    out->ClientHost = copy_kstr(r, m->client_host);
    out->MemberMetadata = out->MemberAssignment = copy_bytes(r, NULL, 0);
    if (g->state == GROUP_STABLE) {
        int32_t len;
        const uint8_t *md = group_member_metadata(g, m, &len);
        out->MemberMetadata = copy_bytes(r, md, len);
        out->MemberAssignment = copy_bytes(r, m->assignment, m->assignment_len);
    }
}

static void describe(void *arg, const group *g)
{
    describe_ctx *dc = arg;
    breq *r = dc->r;
    DescribeGroupsResponse_DescribedGroup *out = dc->out;
    out->GroupState = kstr_from(group_state_name(g ? g->state : GROUP_DEAD));
    out->ProtocolType = KSTR_LIT("");
    out->ProtocolData = KSTR_LIT("");
    if (!g)
        return;
    if (g->protocol_type)
        out->ProtocolType = copy_kstr(r, g->protocol_type);
    if (g->state == GROUP_STABLE && g->protocol)
        out->ProtocolData = copy_kstr(r, g->protocol);
    out->Members.count = g->nmembers;
    out->Members.items = breq_items(r, &DescribeGroupsResponse_DescribedGroupMember_desc, g->nmembers);
    for (int32_t i = 0; i < g->nmembers; i++)
        describe_member(r, g, g->members[i], &out->Members.items[i]);
}

breq_rc api_describe_groups(breq *r)
{
    const DescribeGroupsRequest *req = r->req;
    DescribeGroupsResponse *resp = r->resp;
    int32_t n = MAX(req->Groups.count, 0);
    resp->Groups.count = n;
    resp->Groups.items = breq_items(r, &DescribeGroupsResponse_DescribedGroup_desc, n);
    for (int32_t i = 0; i < n; i++) {
        DescribeGroupsResponse_DescribedGroup *out = &resp->Groups.items[i];
        out->GroupId = req->Groups.items[i];
        describe_ctx dc = {r, out};
        int16_t err = broker_group_denied(r, ACL_OP_DESCRIBE, req->Groups.items[i]);
        if (err == KERR_NONE)
            err = group_coord_view(r->b->groups, breq_strdup(r, req->Groups.items[i]), describe, &dc);
        if (err != KERR_NONE)
            out->ErrorCode = err;
        if (req->IncludeAuthorizedOperations)
            out->AuthorizedOperations = GROUP_OPERATIONS;
    }
    return BREQ_DONE;
}
