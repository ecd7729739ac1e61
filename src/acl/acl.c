/* acl.c - the ACL set, its indexes, filters and the authorization decision
 * (acl.h states the rules).
 *
 * Indexes of a set, kept in step with its entries by add and remove:
 *   by_id        16-byte id -> position + 1 in v;
 *   by_resource  key (type, pattern, name) -> bucket of the ACLs with exactly
 *                that resource pattern;
 *   prefix_lens  per resource type, the distinct lengths of its PREFIXED
 *                names with how many ACLs have each: a check looks up only
 *                the prefixes of those lengths.
 * Invariants (acl_set_check): every entry is in by_id at its position and
 * in its bucket once; every bucket is non-empty; a prefix length's count is
 * the number of PREFIXED ACLs of that type and name length.
 */
#include "acl/acl.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define ACL_TYPES 8 /* resource type codes 0..7 */

typedef struct bucket {
    int32_t n, cap;
    acl_entry **v;
} bucket;

typedef struct plen {
    int32_t len, count;
} plen;

struct acl_set {
    _Atomic int refs;
    int32_t n, cap;
    acl_entry **v;
    hmap by_id;
    hmap by_resource;
    int32_t nlens[ACL_TYPES];
    plen *lens[ACL_TYPES]; /* sorted by len */
};

/* ---- keys -------------------------------------------------------------------- */

/* The by_resource key of (type, pattern, name[0..len)) in out (malloc'ed). */
static char *resource_key(int8_t type, int8_t pattern, const char *name, size_t len, size_t *klen)
{
    char *k = xmalloc(len + 2);
    k[0] = (char)type;
    k[1] = (char)pattern;
    memcpy(k + 2, name, len);
    *klen = len + 2;
    return k;
}

static bucket *bucket_of(const acl_set *s, int8_t type, int8_t pattern, const char *name, size_t len)
{
    char stack[256];
    if (len + 2 <= sizeof stack) { /* the common case: no allocation per check */
        stack[0] = (char)type;
        stack[1] = (char)pattern;
        memcpy(stack + 2, name, len);
        return hmap_get(&s->by_resource, stack, len + 2);
    }
    size_t klen;
    char *k = resource_key(type, pattern, name, len, &klen);
    bucket *b = hmap_get(&s->by_resource, k, klen);
    free(k);
    return b;
}

/* ---- the set ------------------------------------------------------------------- */

acl_set *acl_set_new(void)
{
    acl_set *s = xcalloc(1, sizeof *s);
    atomic_store(&s->refs, 1);
    hmap_init(&s->by_id);
    hmap_init(&s->by_resource);
    return s;
}

acl_set *acl_set_ref(acl_set *s)
{
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

static void entry_free(acl_entry *e)
{
    free(e->name);
    free(e->principal);
    free(e->host);
    free(e);
}

void acl_set_unref(acl_set *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (int32_t i = 0; i < s->n; i++)
        entry_free(s->v[i]);
    free(s->v);
    const char *k;
    size_t kl;
    void *val;
    for (size_t it = 0; hmap_next(&s->by_resource, &it, &k, &kl, &val);) {
        free(((bucket *)val)->v);
        free(val);
    }
    hmap_free(&s->by_resource);
    hmap_free(&s->by_id);
    for (int t = 0; t < ACL_TYPES; t++)
        free(s->lens[t]);
    free(s);
}

static void id_index(acl_set *s, int32_t pos)
{
    hmap_put(&s->by_id, s->v[pos]->id, 16, (void *)(uintptr_t)(pos + 1));
}

/* Count (delta +1 or -1) a PREFIXED name length of type. */
static void count_len(acl_set *s, int8_t type, int32_t len, int delta)
{
    plen *l = s->lens[type];
    int32_t n = s->nlens[type], i = 0;
    while (i < n && l[i].len < len)
        i++;
    if (i < n && l[i].len == len) {
        l[i].count += delta;
        if (l[i].count == 0) {
            memmove(&l[i], &l[i + 1], (size_t)(n - i - 1) * sizeof *l);
            s->nlens[type]--;
        }
        return;
    }
    CK_ASSERT(delta > 0);
    s->lens[type] = l = xrealloc(l, (size_t)(n + 1) * sizeof *l);
    memmove(&l[i + 1], &l[i], (size_t)(n - i) * sizeof *l);
    l[i] = (plen){len, 1};
    s->nlens[type]++;
}

static void index_entry(acl_set *s, acl_entry *e)
{
    size_t klen;
    char *k = resource_key(e->resource_type, e->pattern_type, e->name, strlen(e->name), &klen);
    bucket *b = hmap_get(&s->by_resource, k, klen);
    if (!b) {
        b = xcalloc(1, sizeof *b);
        hmap_put(&s->by_resource, k, klen, b);
    }
    free(k);
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 2;
        b->v = xrealloc(b->v, (size_t)b->cap * sizeof *b->v);
    }
    b->v[b->n++] = e;
    if (e->pattern_type == ACL_PAT_PREFIXED)
        count_len(s, e->resource_type, (int32_t)strlen(e->name), +1);
}

static void unindex_entry(acl_set *s, const acl_entry *e)
{
    size_t klen;
    char *k = resource_key(e->resource_type, e->pattern_type, e->name, strlen(e->name), &klen);
    bucket *b = hmap_get(&s->by_resource, k, klen);
    CK_ASSERT(b != NULL);
    int32_t i = 0;
    while (i < b->n && b->v[i] != e)
        i++;
    CK_ASSERT(i < b->n);
    b->v[i] = b->v[--b->n];
    if (b->n == 0) {
        hmap_del(&s->by_resource, k, klen);
        free(b->v);
        free(b);
    }
    free(k);
    if (e->pattern_type == ACL_PAT_PREFIXED)
        count_len(s, e->resource_type, (int32_t)strlen(e->name), -1);
}

bool acl_set_add(acl_set *s, const uint8_t id[16], const acl_binding *b)
{
    if (acl_binding_error(b) || s->n >= ACL_SET_MAX || hmap_get(&s->by_id, id, 16))
        return false;
    acl_entry *e = xcalloc(1, sizeof *e);
    memcpy(e->id, id, 16);
    e->resource_type = b->resource_type;
    e->pattern_type = b->pattern_type;
    e->operation = b->operation;
    e->permission = b->permission;
    e->name = xstrdup(b->name);
    e->principal = xstrdup(b->principal);
    e->host = xstrdup(b->host);
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->v = xrealloc(s->v, (size_t)s->cap * sizeof *s->v);
    }
    s->v[s->n++] = e;
    id_index(s, s->n - 1);
    index_entry(s, e);
    return true;
}

bool acl_set_remove(acl_set *s, const uint8_t id[16])
{
    void *pos1 = hmap_del(&s->by_id, id, 16);
    if (!pos1)
        return false;
    int32_t pos = (int32_t)((uintptr_t)pos1 - 1);
    acl_entry *e = s->v[pos];
    unindex_entry(s, e);
    s->v[pos] = s->v[--s->n];
    if (pos < s->n)
        id_index(s, pos);
    entry_free(e);
    return true;
}

acl_set *acl_set_own(acl_set **sp)
{
    acl_set *s = *sp;
    if (!s)
        return *sp = acl_set_new();
    if (atomic_load(&s->refs) == 1)
        return s;
    acl_set *c = acl_set_new();
    for (int32_t i = 0; i < s->n; i++) {
        acl_binding b = acl_entry_binding(s->v[i]);
        CK_ASSERT(acl_set_add(c, s->v[i]->id, &b));
    }
    acl_set_unref(s);
    return *sp = c;
}

int32_t acl_set_count(const acl_set *s)
{
    return s ? s->n : 0;
}

bool acl_set_has_id(const acl_set *s, const uint8_t id[16])
{
    return s && hmap_get(&s->by_id, id, 16) != NULL;
}

const acl_entry *acl_set_at(const acl_set *s, int32_t i)
{
    CK_ASSERT(s && i >= 0 && i < s->n);
    return s->v[i];
}

acl_binding acl_entry_binding(const acl_entry *e)
{
    return (acl_binding){e->resource_type, e->pattern_type, e->operation, e->permission,
                         e->name,          e->principal,    e->host};
}

const acl_entry *acl_set_find(const acl_set *s, const acl_binding *b)
{
    if (!s)
        return NULL;
    const bucket *k = bucket_of(s, b->resource_type, b->pattern_type, b->name, strlen(b->name));
    for (int32_t i = 0; k && i < k->n; i++) {
        const acl_entry *e = k->v[i];
        if (e->operation == b->operation && e->permission == b->permission &&
            strcmp(e->principal, b->principal) == 0 && strcmp(e->host, b->host) == 0)
            return e;
    }
    return NULL;
}

void acl_set_check(const acl_set *s)
{
    int32_t prefixed[ACL_TYPES] = {0};
    CK_ASSERT(s->by_id.count == (size_t)s->n);
    for (int32_t i = 0; i < s->n; i++) {
        const acl_entry *e = s->v[i];
        CK_ASSERT((uintptr_t)hmap_get(&s->by_id, e->id, 16) == (uintptr_t)(i + 1));
        const bucket *b = bucket_of(s, e->resource_type, e->pattern_type, e->name, strlen(e->name));
        CK_ASSERT(b && b->n > 0);
        int found = 0;
        for (int32_t j = 0; j < b->n; j++)
            found += b->v[j] == e;
        CK_ASSERT(found == 1);
        if (e->pattern_type == ACL_PAT_PREFIXED)
            prefixed[e->resource_type]++;
    }
    for (int t = 0; t < ACL_TYPES; t++) {
        int32_t sum = 0;
        for (int32_t i = 0; i < s->nlens[t]; i++) {
            CK_ASSERT(s->lens[t][i].count > 0 && (i == 0 || s->lens[t][i - 1].len < s->lens[t][i].len));
            sum += s->lens[t][i].count;
        }
        CK_ASSERT(sum == prefixed[t]);
    }
}

/* ---- validation and filters ------------------------------------------------------- */

static bool concrete_type(int8_t t)
{
    return t >= ACL_RES_TOPIC && t <= ACL_RES_USER;
}

static bool concrete_op(int8_t op)
{
    return op >= ACL_OP_ALL && op <= ACL_OP_DESCRIBE_TOKENS;
}

/* "Type:name", both parts non-empty. */
static bool principal_ok(const char *p)
{
    const char *colon = strchr(p, ':');
    return colon && colon != p && colon[1] != 0;
}

const char *acl_binding_error(const acl_binding *b)
{
    if (!concrete_type(b->resource_type))
        return "invalid resource type";
    if (b->pattern_type != ACL_PAT_LITERAL && b->pattern_type != ACL_PAT_PREFIXED)
        return "invalid pattern type: LITERAL or PREFIXED";
    if (!concrete_op(b->operation))
        return "invalid operation";
    if (b->permission != ACL_PERM_ALLOW && b->permission != ACL_PERM_DENY)
        return "invalid permission type: ALLOW or DENY";
    if (!b->name || !b->name[0] || strlen(b->name) > ACL_NAME_MAX)
        return "resource name must be non-empty";
    if (!b->principal || !principal_ok(b->principal))
        return "principal must be of the form Type:name";
    if (!b->host || !b->host[0])
        return "host must be non-empty (\"*\" for any)";
    if (b->resource_type == ACL_RES_CLUSTER && strcmp(b->name, ACL_CLUSTER_NAME) != 0)
        return "the only CLUSTER resource is kafka-cluster";
    return NULL;
}

const char *acl_filter_error(const acl_filter *f)
{
    if (f->resource_type == ACL_RES_UNKNOWN || f->resource_type < 0 || f->resource_type > ACL_RES_USER)
        return "invalid resource type filter";
    if (f->pattern_type < ACL_PAT_ANY || f->pattern_type > ACL_PAT_PREFIXED)
        return "invalid pattern type filter";
    if (f->operation < ACL_OP_ANY || f->operation > ACL_OP_DESCRIBE_TOKENS)
        return "invalid operation filter";
    if (f->permission < ACL_PERM_ANY || f->permission > ACL_PERM_ALLOW)
        return "invalid permission type filter";
    return NULL;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Kafka's ResourcePatternFilter: ANY and an exact pattern type compare
 * names; MATCH takes every pattern that applies to the literal name. */
static bool pattern_matches(const acl_filter *f, const acl_entry *e)
{
    if (f->resource_type != ACL_RES_ANY && f->resource_type != e->resource_type)
        return false;
    if (f->pattern_type != ACL_PAT_ANY && f->pattern_type != ACL_PAT_MATCH && f->pattern_type != e->pattern_type)
        return false;
    if (!f->name)
        return true;
    if (f->pattern_type != ACL_PAT_MATCH)
        return strcmp(f->name, e->name) == 0;
    if (e->pattern_type == ACL_PAT_LITERAL)
        return strcmp(f->name, e->name) == 0 || strcmp(e->name, ACL_WILDCARD) == 0;
    return starts_with(f->name, e->name);
}

bool acl_filter_matches(const acl_filter *f, const acl_entry *e)
{
    return pattern_matches(f, e) && (!f->principal || strcmp(f->principal, e->principal) == 0) &&
           (!f->host || strcmp(f->host, e->host) == 0) &&
           (f->operation == ACL_OP_ANY || f->operation == e->operation) &&
           (f->permission == ACL_PERM_ANY || f->permission == e->permission);
}

/* ---- configuration ---------------------------------------------------------------- */

void acl_config_init(acl_config *c, const char *class_name, const char *super_users, bool allow_if_no_acl)
{
    memset(c, 0, sizeof *c);
    c->enabled = class_name && class_name[0];
    c->allow_if_no_acl = allow_if_no_acl;
    const char *p = super_users ? super_users : "";
    while (*p) {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *a = p, *z = p + n;
        while (a < z && (*a == ' ' || *a == '\t'))
            a++;
        while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
            z--;
        if (z > a) {
            c->super_users = xrealloc(c->super_users, (size_t)(c->nsuper + 1) * sizeof *c->super_users);
            c->super_users[c->nsuper++] = xstrndup(a, (size_t)(z - a));
        }
        p += n + (end ? 1 : 0);
    }
}

void acl_config_free(acl_config *c)
{
    for (int32_t i = 0; i < c->nsuper; i++)
        free(c->super_users[i]);
    free(c->super_users);
    memset(c, 0, sizeof *c);
}

bool acl_is_super(const acl_config *c, const char *principal)
{
    for (int32_t i = 0; i < c->nsuper; i++)
        if (strcmp(c->super_users[i], principal) == 0)
            return true;
    return false;
}

/* ---- the decision ------------------------------------------------------------------ */

static bool allow_covers(int8_t acl_op, int8_t want)
{
    if (acl_op == ACL_OP_ALL || acl_op == want)
        return true;
    if (want == ACL_OP_DESCRIBE)
        return acl_op == ACL_OP_READ || acl_op == ACL_OP_WRITE || acl_op == ACL_OP_DELETE || acl_op == ACL_OP_ALTER;
    return want == ACL_OP_DESCRIBE_CONFIGS && acl_op == ACL_OP_ALTER_CONFIGS;
}

static bool applies_to(const acl_entry *e, const acl_request *q)
{
    return (strcmp(e->principal, ACL_WILDCARD_PRINCIPAL) == 0 || strcmp(e->principal, q->principal) == 0) &&
           (strcmp(e->host, ACL_WILDCARD) == 0 || strcmp(e->host, q->host) == 0);
}

typedef struct verdict {
    bool any_acl; /* some ACL applies to the resource */
    bool allowed;
    bool denied;
} verdict;

static void weigh(const bucket *b, const acl_request *q, verdict *v)
{
    if (!b)
        return;
    v->any_acl = true;
    for (int32_t i = 0; i < b->n && !v->denied; i++) {
        const acl_entry *e = b->v[i];
        if (!applies_to(e, q))
            continue;
        if (e->permission == ACL_PERM_DENY && (e->operation == ACL_OP_ALL || e->operation == q->operation))
            v->denied = true;
        else if (e->permission == ACL_PERM_ALLOW && allow_covers(e->operation, q->operation))
            v->allowed = true;
    }
}

bool acl_authorize(const acl_set *s, const acl_config *c, const acl_request *q)
{
    if (!c->enabled || acl_is_super(c, q->principal))
        return true;
    verdict v = {false, false, false};
    if (s && q->resource_type >= 0 && q->resource_type < ACL_TYPES) {
        int8_t t = q->resource_type;
        weigh(bucket_of(s, t, ACL_PAT_LITERAL, q->name, q->name_len), q, &v);
        if (!(q->name_len == 1 && q->name[0] == '*'))
            weigh(bucket_of(s, t, ACL_PAT_LITERAL, ACL_WILDCARD, 1), q, &v);
        for (int32_t i = 0; i < s->nlens[t] && !v.denied; i++) {
            int32_t len = s->lens[t][i].len;
            if ((size_t)len > q->name_len)
                break;
            weigh(bucket_of(s, t, ACL_PAT_PREFIXED, q->name, (size_t)len), q, &v);
        }
    }
    if (v.denied)
        return false;
    if (!v.any_acl)
        return c->allow_if_no_acl;
    return v.allowed;
}

/* Whether a DENY matching q covers the ALLOW a (same type): on "*", on a's
 * own literal name, or a prefix of a's name. */
static bool allow_denied(const acl_set *s, const acl_request *q, const acl_entry *a)
{
    for (int32_t i = 0; i < s->n; i++) {
        const acl_entry *d = s->v[i];
        if (d->permission != ACL_PERM_DENY || d->resource_type != a->resource_type || !applies_to(d, q) ||
            (d->operation != ACL_OP_ALL && d->operation != q->operation))
            continue;
        if (d->pattern_type == ACL_PAT_LITERAL &&
            (strcmp(d->name, ACL_WILDCARD) == 0 ||
             (a->pattern_type == ACL_PAT_LITERAL && strcmp(d->name, a->name) == 0)))
            return true;
        if (d->pattern_type == ACL_PAT_PREFIXED && starts_with(a->name, d->name))
            return true;
    }
    return false;
}

/* A scan of the set: only InitProducerId without a transactional id asks
 * this, once per producer. */
bool acl_authorize_any(const acl_set *s, const acl_config *c, const acl_request *q)
{
    if (!c->enabled || acl_is_super(c, q->principal))
        return true;
    bool any_of_type = false;
    for (int32_t i = 0; s && i < s->n; i++) {
        const acl_entry *e = s->v[i];
        if (e->resource_type != q->resource_type)
            continue;
        any_of_type = true;
        if (e->permission == ACL_PERM_ALLOW && applies_to(e, q) && allow_covers(e->operation, q->operation) &&
            !allow_denied(s, q, e))
            return true;
    }
    return !any_of_type && c->allow_if_no_acl;
}

const char *acl_operation_name(int8_t op)
{
    static const char *const names[] = {"UNKNOWN", "ANY", "ALL", "READ", "WRITE", "CREATE", "DELETE", "ALTER",
                                        "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS",
                                        "IDEMPOTENT_WRITE", "CREATE_TOKENS", "DESCRIBE_TOKENS"};
    return op >= 0 && (size_t)op < ARRAY_LEN(names) ? names[op] : "UNKNOWN";
}
