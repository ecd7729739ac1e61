/* scram.c - the users' SCRAM credentials in the metadata:
 * UserScramCredentialRecord and RemoveUserScramCredentialRecord applied to
 * an image, the controller's decision for AlterUserScramCredentials, and
 * when a forwarded change is visible in this node's image.
 *
 * A credential is (user, mechanism) -> salt, iterations, StoredKey and
 * ServerKey (src/sasl/sasl.h); the password and SaltedPassword are never
 * written. An image holds them as a meta_scram_set sorted by (name,
 * mechanism), reference-counted and shared with the versions before it
 * until a record changes it (then the private image takes its own copy).
 *
 * Records: a UserScramCredentialRecord of an unknown mechanism, with keys
 * not of the mechanism's length, an empty name or a salt longer than
 * SASL_SALT_MAX changes nothing (the controller writes none); one for a
 * (user, mechanism) that exists replaces it. A Remove of an absent one
 * changes nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"

typedef struct meta_scram_user {
    char *name;
    sasl_cred cred;
} meta_scram_user;

typedef struct meta_scram_set {
    _Atomic int refs;
    int32_t n;
    meta_scram_user *items; /* sorted by (name, mech), unique */
} meta_scram_set;

meta_scram_set *meta_scram_ref(meta_scram_set *s)
{
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void meta_scram_unref(meta_scram_set *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (int32_t i = 0; i < s->n; i++)
        free(s->items[i].name);
    free(s->items);
    free(s);
}

void meta_scram_check(const meta_scram_set *s)
{
    for (int32_t i = 0; s && i < s->n; i++) {
        CK_ASSERT(sasl_scram_key_len(s->items[i].cred.mech) > 0);
        if (i > 0) {
            int c = strcmp(s->items[i - 1].name, s->items[i].name);
            CK_ASSERT(c < 0 || (c == 0 && s->items[i - 1].cred.mech < s->items[i].cred.mech));
        }
    }
}

/* The private image's own set (a copy when shared). */
static meta_scram_set *own(meta_image *img)
{
    meta_scram_set *s = img->scram;
    if (s && atomic_load(&s->refs) == 1)
        return s;
    meta_scram_set *c = xcalloc(1, sizeof *c);
    atomic_store(&c->refs, 1);
    c->n = s ? s->n : 0;
    c->items = xcalloc((size_t)c->n + 1, sizeof *c->items);
    for (int32_t i = 0; i < c->n; i++) {
        c->items[i] = s->items[i];
        c->items[i].name = xstrdup(s->items[i].name);
    }
    meta_scram_unref(s);
    img->scram = c;
    return c;
}

/* Index of (name, mech), or -(insertion point) - 1. */
static int32_t find(const meta_scram_set *s, const char *name, int mech)
{
    int32_t lo = 0, hi = s ? s->n : 0;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->items[mid].name, name);
        if (c == 0)
            c = s->items[mid].cred.mech - mech;
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -lo - 1;
}

const sasl_cred *meta_image_scram(const meta_image *img, const char *name, int mech)
{
    int32_t i = find(img->scram, name, mech);
    return i >= 0 ? &img->scram->items[i].cred : NULL;
}

const sasl_cred *meta_image_scram_next(const meta_image *img, int32_t *pos, const char **name)
{
    if (!img->scram || *pos >= img->scram->n)
        return NULL;
    const meta_scram_user *u = &img->scram->items[(*pos)++];
    *name = u->name;
    return &u->cred;
}

/* ---- records ---------------------------------------------------------------------- */

static bool record_ok(const UserScramCredentialRecord *r)
{
    size_t k = sasl_scram_key_len(r->Mechanism);
    return k > 0 && r->Name.len > 0 && r->Name.len <= SASL_NAME_MAX && r->Salt.len >= 0 &&
           r->Salt.len <= SASL_SALT_MAX && r->StoredKey.len == (int32_t)k && r->ServerKey.len == (int32_t)k &&
           r->Iterations > 0 && !memchr(r->Name.ptr, 0, (size_t)r->Name.len);
}

static void apply_upsert(meta_image *img, const UserScramCredentialRecord *r)
{
    if (!record_ok(r))
        return;
    char *name = xstrndup(r->Name.ptr, (size_t)r->Name.len);
    meta_scram_set *s = own(img);
    int32_t i = find(s, name, r->Mechanism);
    if (i < 0) {
        i = -i - 1;
        s->items = xrealloc(s->items, (size_t)(s->n + 1) * sizeof *s->items);
        memmove(&s->items[i + 1], &s->items[i], (size_t)(s->n - i) * sizeof *s->items);
        s->n++;
        s->items[i].name = name;
    } else {
        free(name);
    }
    sasl_cred *c = &s->items[i].cred;
    memset(c, 0, sizeof *c);
    c->mech = r->Mechanism;
    c->iterations = r->Iterations;
    c->salt_len = (size_t)r->Salt.len;
    if (r->Salt.len > 0)
        memcpy(c->salt, r->Salt.ptr, c->salt_len);
    memcpy(c->stored_key, r->StoredKey.ptr, (size_t)r->StoredKey.len);
    memcpy(c->server_key, r->ServerKey.ptr, (size_t)r->ServerKey.len);
}

static void apply_remove(meta_image *img, const RemoveUserScramCredentialRecord *r)
{
    if (r->Name.len <= 0 || r->Name.len > SASL_NAME_MAX)
        return;
    char name[SASL_NAME_MAX + 1];
    memcpy(name, r->Name.ptr, (size_t)r->Name.len);
    name[r->Name.len] = 0;
    if (find(img->scram, name, r->Mechanism) < 0)
        return;
    meta_scram_set *s = own(img);
    int32_t i = find(s, name, r->Mechanism);
    free(s->items[i].name);
    memmove(&s->items[i], &s->items[i + 1], (size_t)(s->n - i - 1) * sizeof *s->items);
    s->n--;
}

void meta_scram_apply(meta_image *img, int16_t type, const void *rec)
{
    if (type == META_REC_USER_SCRAM_CREDENTIAL)
        apply_upsert(img, rec);
    else if (type == META_REC_REMOVE_USER_SCRAM_CREDENTIAL)
        apply_remove(img, rec);
}

static UserScramCredentialRecord to_record(const char *name, const sasl_cred *c)
{
    size_t k = sasl_scram_key_len(c->mech);
    return (UserScramCredentialRecord){kstr_from(name), c->mech, {c->salt, (int32_t)c->salt_len},
                                       {c->stored_key, (int32_t)k}, {c->server_key, (int32_t)k}, c->iterations};
}

void meta_scram_each_record(const meta_image *img, void (*fn)(void *ctx, const UserScramCredentialRecord *r),
                            void *ctx)
{
    for (int32_t i = 0; img->scram && i < img->scram->n; i++) {
        UserScramCredentialRecord r = to_record(img->scram->items[i].name, &img->scram->items[i].cred);
        fn(ctx, &r);
    }
}

/* ---- the controller's decision ------------------------------------------------------ */

int16_t meta_scram_alter(const meta_writer *w, meta_scram_op *s, const char **msg)
{
    if (!s->name || !s->name[0] || strlen(s->name) > SASL_NAME_MAX)
        return *msg = "user name empty or too long", KERR_UNACCEPTABLE_CREDENTIAL;
    if (sasl_scram_key_len(s->mech) == 0)
        return *msg = "unknown SCRAM mechanism", KERR_UNSUPPORTED_SASL_MECHANISM;
    const sasl_cred *have = meta_image_scram(w->img, s->name, s->mech);
    if (s->remove) {
        if (!have)
            return *msg = "no such credential", KERR_RESOURCE_NOT_FOUND;
        RemoveUserScramCredentialRecord r = {kstr_from(s->name), s->mech};
        meta_write(w, META_REC_REMOVE_USER_SCRAM_CREDENTIAL, &RemoveUserScramCredentialRecord_desc, &r);
        return KERR_NONE;
    }
    if (s->iterations < SASL_SCRAM_ITERATIONS_MIN || s->iterations > SASL_SCRAM_ITERATIONS_MAX)
        return *msg = "iterations must be within 4096 and 16384", KERR_UNACCEPTABLE_CREDENTIAL;
    if (s->salt_len == 0 || s->salt_len > SASL_SALT_MAX)
        return *msg = "salt empty or too long", KERR_UNACCEPTABLE_CREDENTIAL;
    if (have && s->if_absent)
        return KERR_NONE;
    sasl_cred c = {.mech = s->mech, .iterations = s->iterations, .salt_len = s->salt_len};
    memcpy(c.salt, s->salt, s->salt_len);
    sasl_scram_keys(s->mech, s->salted, c.stored_key, c.server_key);
    UserScramCredentialRecord r = to_record(s->name, &c);
    meta_write(w, META_REC_USER_SCRAM_CREDENTIAL, &UserScramCredentialRecord_desc, &r);
    return KERR_NONE;
}

bool meta_scram_visible(const meta_image *img, const meta_op *op)
{
    const meta_scram_op *s = &op->scram;
    const sasl_cred *have = meta_image_scram(img, s->name, s->mech);
    if (s->remove)
        return have == NULL;
    if (s->if_absent)
        return have != NULL;
    return have && have->iterations == s->iterations && have->salt_len == s->salt_len &&
           memcmp(have->salt, s->salt, s->salt_len) == 0;
}
