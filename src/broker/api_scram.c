/* api_scram.c - DescribeUserScramCredentials (50) and
 * AlterUserScramCredentials (51), v0, and the SCRAM users given at start-up
 * (--add-scram, sasl.scram.bootstrap.users).
 *
 * Describe reads the credentials of the current image (mechanism and
 * iterations, never a key); a user asked for by name and not there is
 * RESOURCE_NOT_FOUND. Alter becomes one controller change per upsertion
 * or deletion, forwarded to the quorum leader from any node and answered
 * once this node's image shows it; the answer has one result per user (the
 * first error of its changes). Kafka's rules: a user named twice for the
 * same mechanism is DUPLICATE_RESOURCE, an empty name or iterations outside
 * 4096-16384 UNACCEPTABLE_CREDENTIAL (and, Chronik's bound, a salt empty
 * or over 64 bytes), an unknown mechanism
 * UNSUPPORTED_SASL_MECHANISM. DESCRIBE on the cluster lets a client
 * describe, ALTER lets it alter.
 *
 * Start-up users are created by the node that leads the metadata quorum (a
 * voter given --add-scram), and only when the user has no credential of
 * that mechanism in the leader's latest state: a node restarting with the
 * flag never resets a password changed since. The change is not forwarded
 * (AlterUserScramCredentials cannot say "if absent"); a node that is not
 * the leader leaves it to the one that is, checking again each second.
 */
#include <openssl/rand.h>
#include <string.h>

#include "base/log.h"
#include "broker/broker_int.h"

static bool same_name(kstr_t a, kstr_t b)
{
    return a.len == b.len && (a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

/* ---- DescribeUserScramCredentials ------------------------------------------------ */

static void describe_user(breq *r, const meta_image *img, kstr_t name,
                          DescribeUserScramCredentialsResponse_DescribeUserScramCredentialsResult *out)
{
    char *user = breq_strdup(r, name);
    out->User = kstr_from(user);
    out->CredentialInfos.items = breq_items(r, &DescribeUserScramCredentialsResponse_CredentialInfo_desc, 2);
    out->CredentialInfos.count = 0;
    for (int mech = SASL_SCRAM_SHA_256; mech <= SASL_SCRAM_SHA_512; mech++) {
        const sasl_cred *c = meta_image_scram(img, user, mech);
        if (c)
            out->CredentialInfos.items[out->CredentialInfos.count++] =
                (DescribeUserScramCredentialsResponse_CredentialInfo){(int8_t)mech, c->iterations};
    }
    if (out->CredentialInfos.count == 0) {
        out->ErrorCode = KERR_RESOURCE_NOT_FOUND;
        out->ErrorMessage = kstr_from("no SCRAM credential for this user");
    }
}

static bool named_before(const DescribeUserScramCredentialsRequest *req, int32_t i)
{
    for (int32_t j = 0; j < i; j++)
        if (same_name(req->Users.items[i].Name, req->Users.items[j].Name))
            return true;
    return false;
}

breq_rc api_describe_user_scram_credentials(breq *r)
{
    const DescribeUserScramCredentialsRequest *req = r->req;
    DescribeUserScramCredentialsResponse *resp = r->resp;
    resp->Results.count = 0;
    int16_t denied = broker_cluster_denied(r, ACL_OP_DESCRIBE);
    if (denied != KERR_NONE) {
        resp->ErrorCode = denied;
        resp->ErrorMessage = kstr_from(kerr_message(denied));
        return BREQ_DONE;
    }
    meta_image *img = meta_acquire(r->b->meta);
    const proto_struct_desc *d = &DescribeUserScramCredentialsResponse_DescribeUserScramCredentialsResult_desc;
    if (req->Users.count < 0) { /* null: every user */
        int32_t pos = 0, n = 0;
        const char *name, *prev = NULL;
        while (meta_image_scram_next(img, &pos, &name))
            n++;
        resp->Results.items = breq_items(r, d, n);
        for (pos = 0; meta_image_scram_next(img, &pos, &name); prev = name)
            if (!prev || strcmp(prev, name) != 0)
                describe_user(r, img, kstr_from(name), &resp->Results.items[resp->Results.count++]);
    } else {
        resp->Results.items = breq_items(r, d, req->Users.count);
        for (int32_t i = 0; i < req->Users.count; i++) {
            DescribeUserScramCredentialsResponse_DescribeUserScramCredentialsResult *out =
                &resp->Results.items[resp->Results.count++];
            if (!named_before(req, i)) {
                describe_user(r, img, req->Users.items[i].Name, out);
                continue;
            }
            out->User = kstr_from(breq_strdup(r, req->Users.items[i].Name));
            out->ErrorCode = KERR_DUPLICATE_RESOURCE;
            out->ErrorMessage = kstr_from("user named more than once");
        }
    }
    meta_image_release(img);
    return BREQ_DONE;
}

/* ---- AlterUserScramCredentials --------------------------------------------------- */

typedef AlterUserScramCredentialsResponse_AlterUserScramCredentialsResult alter_result;

/* One result per change while they run; merged per user once all are done. */
static breq_rc merge_results(breq *r)
{
    AlterUserScramCredentialsResponse *resp = r->resp;
    int32_t n = 0;
    for (int32_t i = 0; i < resp->Results.count; i++) {
        alter_result *x = &resp->Results.items[i], *into = NULL;
        for (int32_t j = 0; j < n && !into; j++)
            if (same_name(resp->Results.items[j].User, x->User))
                into = &resp->Results.items[j];
        if (!into)
            resp->Results.items[n++] = *x;
        else if (into->ErrorCode == KERR_NONE && x->ErrorCode != KERR_NONE)
            *into = *x;
    }
    resp->Results.count = n;
    return BREQ_DONE;
}

/* Kafka's checks of one change, before it reaches the controller. */
typedef AlterUserScramCredentialsRequest_ScramCredentialUpsertion upsertion;

static int16_t alter_problem(kstr_t name, int8_t mech, const upsertion *u, const char **msg)
{
    if (name.len <= 0 || name.len > SASL_NAME_MAX)
        return *msg = "user name empty or too long", KERR_UNACCEPTABLE_CREDENTIAL;
    if (sasl_scram_key_len(mech) == 0)
        return *msg = "unknown SCRAM mechanism", KERR_UNSUPPORTED_SASL_MECHANISM;
    if (!u)
        return KERR_NONE;
    if (u->Iterations < SASL_SCRAM_ITERATIONS_MIN || u->Iterations > SASL_SCRAM_ITERATIONS_MAX)
        return *msg = "iterations must be within 4096 and 16384", KERR_UNACCEPTABLE_CREDENTIAL;
    if (u->SaltedPassword.len != (int32_t)sasl_scram_key_len(mech))
        return *msg = "salted password of the wrong length", KERR_UNACCEPTABLE_CREDENTIAL;
    if (u->Salt.len <= 0 || u->Salt.len > SASL_SALT_MAX)
        return *msg = "salt empty or longer than 64 bytes", KERR_UNACCEPTABLE_CREDENTIAL;
    return KERR_NONE;
}

/* Is (name, mech) named by an earlier change of the request (index < i of all)? */
static bool duplicate(const AlterUserScramCredentialsRequest *req, int32_t i, kstr_t name, int8_t mech)
{
    int32_t nd = MAX(req->Deletions.count, 0), nu = MAX(req->Upsertions.count, 0);
    for (int32_t j = 0; j < nd + nu; j++) {
        if (j == i)
            continue;
        kstr_t n2 = j < nd ? req->Deletions.items[j].Name : req->Upsertions.items[j - nd].Name;
        int8_t m2 = j < nd ? req->Deletions.items[j].Mechanism : req->Upsertions.items[j - nd].Mechanism;
        if (m2 == mech && same_name(n2, name))
            return true;
    }
    return false;
}

static meta_op *upsert_op(const AlterUserScramCredentialsRequest_ScramCredentialUpsertion *u)
{
    meta_op *op = meta_op_scram(u->Name.ptr, (size_t)u->Name.len, u->Mechanism, false);
    op->scram.iterations = u->Iterations;
    op->scram.salt_len = (size_t)u->Salt.len; /* 1..SASL_SALT_MAX (alter_problem) */
    memcpy(op->scram.salt, u->Salt.ptr, op->scram.salt_len);
    memcpy(op->scram.salted, u->SaltedPassword.ptr, (size_t)u->SaltedPassword.len);
    return op;
}

breq_rc api_alter_user_scram_credentials(breq *r)
{
    const AlterUserScramCredentialsRequest *req = r->req;
    AlterUserScramCredentialsResponse *resp = r->resp;
    int32_t nd = MAX(req->Deletions.count, 0), nu = MAX(req->Upsertions.count, 0);
    resp->Results.count = nd + nu;
    resp->Results.items = breq_items(r, &AlterUserScramCredentialsResponse_AlterUserScramCredentialsResult_desc,
                                     nd + nu);
    bool allowed = broker_allowed_cluster(r, ACL_OP_ALTER);
    meta_wait *w = meta_wait_new(r, merge_results);
    for (int32_t i = 0; i < nd + nu; i++) {
        const AlterUserScramCredentialsRequest_ScramCredentialUpsertion *u =
            i < nd ? NULL : &req->Upsertions.items[i - nd];
        kstr_t name = u ? u->Name : req->Deletions.items[i].Name;
        int8_t mech = u ? u->Mechanism : req->Deletions.items[i].Mechanism;
        alter_result *out = &resp->Results.items[i];
        out->User = kstr_from(breq_strdup(r, name));
        const char *msg = NULL;
        int16_t err = !allowed ? KERR_CLUSTER_AUTHORIZATION_FAILED
                      : duplicate(req, i, name, mech)
                          ? (msg = "user and mechanism named more than once", KERR_DUPLICATE_RESOURCE)
                          : alter_problem(name, mech, u, &msg);
        if (err != KERR_NONE) {
            out->ErrorCode = err;
            out->ErrorMessage = msg ? kstr_from(msg) : KSTR_NULL;
            continue;
        }
        meta_op *op = u ? upsert_op(u) : meta_op_scram(name.ptr, (size_t)name.len, mech, true);
        meta_wait_submit(w, op, &out->ErrorCode, &out->ErrorMessage);
    }
    return meta_wait_end(w);
}

/* ---- start-up users ---------------------------------------------------------------- */

int broker_sasl_parse_bootstrap(const char *s, int *mech, char *name, size_t nlen, char *pw, size_t plen)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq[1] != '[' || s[strlen(s) - 1] != ']')
        return -1;
    *mech = sasl_mech_from_name(s, (size_t)(eq - s));
    const char *n = strstr(eq, "[name="), *p = strstr(eq, ",password=");
    if (sasl_scram_key_len(*mech) == 0 || n != eq + 1 || !p || p < n)
        return -1;
    n += 6;
    p += 10;
    snprintf(name, nlen, "%.*s", (int)(strstr(eq, ",password=") - n), n);
    snprintf(pw, plen, "%.*s", (int)(strlen(p) - 1), p);
    return name[0] && pw[0] ? 0 : -1;
}

static void bootstrap_done(void *arg, int16_t err, const char *msg)
{
    broker *b = arg;
    if (err != KERR_NONE)
        log_info("broker", "start-up SCRAM user not created yet (retrying) err=%d msg=\"%s\"", err, msg ? msg : "");
    atomic_fetch_sub(&b->sasl_bootstrap_inflight, 1);
}

static void bootstrap_one(broker *b, const meta_image *img, const char *entry)
{
    int mech;
    char name[SASL_NAME_MAX + 1], pw[256];
    if (broker_sasl_parse_bootstrap(entry, &mech, name, sizeof name, pw, sizeof pw) != 0) {
        log_error("broker", "sasl.scram.bootstrap.users: want MECH=[name=NAME,password=PASSWORD], skipped");
        return;
    }
    if (meta_image_scram(img, name, mech))
        return;
    meta_op *op = meta_op_scram(name, strlen(name), (int8_t)mech, false);
    op->scram.if_absent = true;
    op->scram.iterations = SASL_SCRAM_ITERATIONS_MIN;
    op->scram.salt_len = 16;
    CK_ASSERT(RAND_bytes(op->scram.salt, 16) == 1);
    sasl_scram_salt_password(mech, pw, strlen(pw), op->scram.salt, 16, op->scram.iterations, op->scram.salted);
    op->done = bootstrap_done;
    op->arg = b;
    atomic_fetch_add(&b->sasl_bootstrap_inflight, 1);
    meta_submit(b->meta, op);
}

void broker_sasl_bootstrap(broker *b)
{
    if (!b->cfg.sasl_bootstrap_scram[0] || atomic_load(&b->sasl_bootstrap_inflight) > 0 ||
        meta_controller_id(b->meta) != b->cfg.node_id)
        return;
    meta_image *img = meta_acquire(b->meta);
    char *copy = xstrdup(b->cfg.sasl_bootstrap_scram), *save = NULL;
    for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save))
        bootstrap_one(b, img, tok);
    OPENSSL_cleanse(copy, strlen(copy));
    free(copy);
    meta_image_release(img);
}
