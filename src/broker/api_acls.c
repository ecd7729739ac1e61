/* api_acls.c - DescribeAcls (29), CreateAcls (30) and DeleteAcls (31),
 * v0-v3. Describe reads the ACLs of the current image; Create and Delete
 * become controller changes (one per ACL, one per filter), forwarded to the
 * quorum leader from any node, answered once this node's image shows them.
 * DESCRIBE on the cluster lets a client describe, ALTER lets it create and
 * delete (Kafka's rule). Versions 0 have no pattern type: LITERAL is meant
 * (the schema's default), and a v0 filter ANY pattern. */
#include <string.h>

#include "broker/broker_int.h"

/* A filter's string: NULL for a null (any). */
static const char *filter_str(breq *r, kstr_t s)
{
    return kstr_is_null(s) ? NULL : breq_strdup(r, s);
}

/* ---- DescribeAcls ------------------------------------------------------------ */

/* The response's resource entry for e's pattern, added when new. */
static DescribeAclsResponse_DescribeAclsResource *resource_of(breq *r, DescribeAclsResponse *resp,
                                                              const acl_entry *e, int32_t cap)
{
    for (int32_t i = 0; i < resp->Resources.count; i++) {
        DescribeAclsResponse_DescribeAclsResource *x = &resp->Resources.items[i];
        if (x->ResourceType == e->resource_type && x->PatternType == e->pattern_type &&
            (size_t)x->ResourceName.len == strlen(e->name) && memcmp(x->ResourceName.ptr, e->name, strlen(e->name)) == 0)
            return x;
    }
    DescribeAclsResponse_DescribeAclsResource *x = &resp->Resources.items[resp->Resources.count++];
    x->ResourceType = e->resource_type;
    x->ResourceName = kstr_from(e->name);
    x->PatternType = e->pattern_type;
    x->Acls.count = 0;
    x->Acls.items = breq_items(r, &DescribeAclsResponse_AclDescription_desc, cap);
    return x;
}

breq_rc api_describe_acls(breq *r)
{
    const DescribeAclsRequest *req = r->req;
    DescribeAclsResponse *resp = r->resp;
    resp->Resources.count = 0;
    if (!broker_allowed_cluster(r, ACL_OP_DESCRIBE)) {
        resp->ErrorCode = KERR_CLUSTER_AUTHORIZATION_FAILED;
        resp->ErrorMessage = kstr_from(kerr_message(resp->ErrorCode));
        return BREQ_DONE;
    }
    acl_filter f = {req->ResourceTypeFilter, r->hdr.api_version == 0 ? ACL_PAT_ANY : req->PatternTypeFilter,
                    req->Operation,          req->PermissionType,
                    filter_str(r, req->ResourceNameFilter), filter_str(r, req->PrincipalFilter),
                    filter_str(r, req->HostFilter)};
    const char *bad = acl_filter_error(&f);
    if (bad) {
        resp->ErrorCode = KERR_INVALID_REQUEST;
        resp->ErrorMessage = kstr_from(bad);
        return BREQ_DONE;
    }
    meta_image *img = meta_acquire(r->b->meta);
    breq_hold_image(r, img); /* names point into its ACLs */
    int32_t n = acl_set_count(img->acls);
    resp->Resources.items = breq_items(r, &DescribeAclsResponse_DescribeAclsResource_desc, n);
    for (int32_t i = 0; i < n; i++) {
        const acl_entry *e = acl_set_at(img->acls, i);
        if (!acl_filter_matches(&f, e))
            continue;
        DescribeAclsResponse_DescribeAclsResource *x = resource_of(r, resp, e, n);
        x->Acls.items[x->Acls.count++] = (DescribeAclsResponse_AclDescription){
            kstr_from(e->principal), kstr_from(e->host), e->operation, e->permission};
    }
    return BREQ_DONE;
}

/* ---- CreateAcls --------------------------------------------------------------- */

breq_rc api_create_acls(breq *r)
{
    const CreateAclsRequest *req = r->req;
    CreateAclsResponse *resp = r->resp;
    int32_t n = MAX(req->Creations.count, 0);
    resp->Results.count = n;
    resp->Results.items = breq_items(r, &CreateAclsResponse_AclCreationResult_desc, n);
    bool allowed = broker_allowed_cluster(r, ACL_OP_ALTER);
    meta_wait *w = meta_wait_new(r, meta_wait_answered);
    for (int32_t i = 0; i < n; i++) {
        const CreateAclsRequest_AclCreation *c = &req->Creations.items[i];
        CreateAclsResponse_AclCreationResult *out = &resp->Results.items[i];
        acl_filter b = {c->ResourceType, r->hdr.api_version == 0 ? ACL_PAT_LITERAL : c->ResourcePatternType,
                        c->Operation,    c->PermissionType,
                        breq_strdup(r, c->ResourceName), breq_strdup(r, c->Principal), breq_strdup(r, c->Host)};
        acl_binding check = {b.resource_type, b.pattern_type, b.operation, b.permission, b.name, b.principal, b.host};
        const char *bad = acl_binding_error(&check);
        if (!allowed || bad) {
            out->ErrorCode = allowed ? KERR_INVALID_REQUEST : KERR_CLUSTER_AUTHORIZATION_FAILED;
            out->ErrorMessage = bad && allowed ? kstr_from(bad) : KSTR_NULL;
            continue;
        }
        meta_wait_submit(w, meta_op_acl(META_OP_CREATE_ACL, &b), &out->ErrorCode, &out->ErrorMessage);
    }
    return meta_wait_end(w);
}

/* ---- DeleteAcls --------------------------------------------------------------- */

typedef struct filter_slot {
    breq *r;
    DeleteAclsResponse_DeleteAclsFilterResult *out;
} filter_slot;

/* On the controller thread, before the op is freed: the ACLs it removed
 * become the filter's matches (r is parked: nothing else uses its arena). */
static void keep_matched(void *ctx, const meta_op *op)
{
    filter_slot *s = ctx;
    breq *r = s->r;
    int32_t n = acl_set_count(op->acl.matched);
    s->out->MatchingAcls.count = n;
    s->out->MatchingAcls.items = breq_items(r, &DeleteAclsResponse_DeleteAclsMatchingAcl_desc, n);
    for (int32_t i = 0; i < n; i++) {
        const acl_entry *e = acl_set_at(op->acl.matched, i);
        DeleteAclsResponse_DeleteAclsMatchingAcl *x = &s->out->MatchingAcls.items[i];
        x->ResourceType = e->resource_type;
        x->ResourceName = kstr_from(arena_strndup(&r->arena, e->name, strlen(e->name)));
        x->PatternType = e->pattern_type;
        x->Principal = kstr_from(arena_strndup(&r->arena, e->principal, strlen(e->principal)));
        x->Host = kstr_from(arena_strndup(&r->arena, e->host, strlen(e->host)));
        x->Operation = e->operation;
        x->PermissionType = e->permission;
    }
}

breq_rc api_delete_acls(breq *r)
{
    const DeleteAclsRequest *req = r->req;
    DeleteAclsResponse *resp = r->resp;
    int32_t n = MAX(req->Filters.count, 0);
    resp->FilterResults.count = n;
    resp->FilterResults.items = breq_items(r, &DeleteAclsResponse_DeleteAclsFilterResult_desc, n);
    bool allowed = broker_allowed_cluster(r, ACL_OP_ALTER);
    meta_wait *w = meta_wait_new(r, meta_wait_answered);
    for (int32_t i = 0; i < n; i++) {
        const DeleteAclsRequest_DeleteAclsFilter *f = &req->Filters.items[i];
        DeleteAclsResponse_DeleteAclsFilterResult *out = &resp->FilterResults.items[i];
        out->MatchingAcls.count = 0;
        acl_filter af = {f->ResourceTypeFilter, r->hdr.api_version == 0 ? ACL_PAT_ANY : f->PatternTypeFilter,
                         f->Operation,          f->PermissionType,
                         filter_str(r, f->ResourceNameFilter), filter_str(r, f->PrincipalFilter),
                         filter_str(r, f->HostFilter)};
        const char *bad = acl_filter_error(&af);
        if (!allowed || bad) {
            out->ErrorCode = allowed ? KERR_INVALID_REQUEST : KERR_CLUSTER_AUTHORIZATION_FAILED;
            out->ErrorMessage = bad && allowed ? kstr_from(bad) : KSTR_NULL;
            continue;
        }
        filter_slot *s = arena_alloc(&r->arena, sizeof *s);
        *s = (filter_slot){r, out};
        meta_wait_submit_keep(w, meta_op_acl(META_OP_DELETE_ACLS, &af), &out->ErrorCode, &out->ErrorMessage,
                              keep_matched, s);
    }
    return meta_wait_end(w);
}
