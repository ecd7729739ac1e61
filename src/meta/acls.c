/* acls.c - the cluster's ACLs in the metadata: AccessControlEntryRecord and
 * RemoveAccessControlEntryRecord applied to an image, the controller's
 * decisions for CreateAcls and DeleteAcls, and when a forwarded change is
 * visible in this node's image.
 *
 * An image holds its ACLs as an acl_set (src/acl) shared by reference with
 * the versions before it; a record takes the private image's own copy first
 * (acl_set_own), so a published set never changes under a reader.
 *
 * Records: an AccessControlEntryRecord whose fields do not make a valid ACL
 * (acl_binding_error) or whose id is taken changes nothing, and so does a
 * RemoveAccessControlEntryRecord of an unknown id: the controller writes
 * neither, and a record read back must never break the set's indexes.
 */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"

void meta_acl_op_free(meta_acl_op *a)
{
    free(a->name);
    free(a->principal);
    free(a->host);
    acl_set_unref(a->matched);
}

acl_binding meta_acl_binding(const meta_acl_op *a)
{
    return (acl_binding){a->resource_type, a->pattern_type, a->operation, a->permission,
                         a->name,          a->principal,    a->host};
}

acl_filter meta_acl_filter(const meta_acl_op *a)
{
    return (acl_filter){a->resource_type, a->pattern_type, a->operation, a->permission,
                        a->name,          a->principal,    a->host};
}

/* ---- records ---------------------------------------------------------------- */

static char *kstr_dup(kstr_t s)
{
    return xstrndup(s.ptr ? s.ptr : "", (size_t)MAX(s.len, 0));
}

static void apply_entry(meta_image *img, const AccessControlEntryRecord *r)
{
    char *name = kstr_dup(r->ResourceName), *principal = kstr_dup(r->Principal), *host = kstr_dup(r->Host);
    acl_binding b = {r->ResourceType, r->PatternType, r->Operation, r->PermissionType, name, principal, host};
    if (!acl_binding_error(&b) && !acl_set_has_id(img->acls, r->Id.b))
        acl_set_add(acl_set_own(&img->acls), r->Id.b, &b);
    free(name);
    free(principal);
    free(host);
}

static void apply_remove(meta_image *img, const RemoveAccessControlEntryRecord *r)
{
    if (acl_set_has_id(img->acls, r->Id.b))
        acl_set_remove(acl_set_own(&img->acls), r->Id.b);
}

void meta_acls_apply(meta_image *img, int16_t type, const void *rec)
{
    if (type == META_REC_ACCESS_CONTROL_ENTRY)
        apply_entry(img, rec);
    else if (type == META_REC_REMOVE_ACCESS_CONTROL_ENTRY)
        apply_remove(img, rec);
}

void meta_acl_record(const acl_entry *e, AccessControlEntryRecord *out)
{
    memcpy(out->Id.b, e->id, 16);
    out->ResourceType = e->resource_type;
    out->ResourceName = kstr_from(e->name);
    out->PatternType = e->pattern_type;
    out->Principal = kstr_from(e->principal);
    out->Host = kstr_from(e->host);
    out->Operation = e->operation;
    out->PermissionType = e->permission;
}

/* ---- the controller's decisions ------------------------------------------------- */

/* Kafka's CreateAcls: an ACL equal to one that exists is a success that
 * writes nothing. */
int16_t meta_acl_create(const meta_writer *w, const meta_rand *rand, meta_acl_op *a, const char **msg)
{
    acl_binding b = meta_acl_binding(a);
    if ((*msg = acl_binding_error(&b)) != NULL)
        return KERR_INVALID_REQUEST;
    if (acl_set_find(w->img->acls, &b))
        return KERR_NONE;
    if (acl_set_count(w->img->acls) >= ACL_SET_MAX)
        return *msg = "the cluster holds as many ACLs as it may", KERR_POLICY_VIOLATION;
    acl_entry e = {.resource_type = b.resource_type, .pattern_type = b.pattern_type, .operation = b.operation,
                   .permission = b.permission, .name = a->name, .principal = a->principal, .host = a->host};
    do
        rand->fill(rand->ctx, e.id, sizeof e.id);
    while (acl_set_has_id(w->img->acls, e.id));
    AccessControlEntryRecord r;
    meta_acl_record(&e, &r);
    meta_write(w, META_REC_ACCESS_CONTROL_ENTRY, &AccessControlEntryRecord_desc, &r);
    return KERR_NONE;
}

/* Every ACL the filter matches is removed; a->matched gets copies of them. */
int16_t meta_acl_delete(const meta_writer *w, meta_acl_op *a, const char **msg)
{
    acl_filter f = meta_acl_filter(a);
    if ((*msg = acl_filter_error(&f)) != NULL)
        return KERR_INVALID_REQUEST;
    acl_set_unref(a->matched);
    a->matched = acl_set_new();
    for (int32_t i = 0; i < acl_set_count(w->img->acls); i++) {
        const acl_entry *e = acl_set_at(w->img->acls, i);
        acl_binding b = acl_entry_binding(e);
        if (acl_filter_matches(&f, e))
            acl_set_add(a->matched, e->id, &b);
    }
    for (int32_t i = 0; i < acl_set_count(a->matched); i++) {
        RemoveAccessControlEntryRecord r;
        memcpy(r.Id.b, acl_set_at(a->matched, i)->id, 16);
        meta_write(w, META_REC_REMOVE_ACCESS_CONTROL_ENTRY, &RemoveAccessControlEntryRecord_desc, &r);
    }
    return KERR_NONE;
}

/* A forwarded change shows in img: the ACL exists, or none of those the
 * leader removed is left. */
bool meta_acl_visible(const meta_image *img, const meta_op *op)
{
    if (op->kind == META_OP_CREATE_ACL) {
        acl_binding b = meta_acl_binding(&op->acl);
        return acl_set_find(img->acls, &b) != NULL;
    }
    for (int32_t i = 0; i < acl_set_count(op->acl.matched); i++) {
        acl_binding b = acl_entry_binding(acl_set_at(op->acl.matched, i));
        if (acl_set_find(img->acls, &b))
            return false;
    }
    return true;
}
