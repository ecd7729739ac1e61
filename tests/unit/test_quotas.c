/*
 * test_quotas.c - client quotas in the metadata (quotas.c): records set and
 * remove values, an entity without values goes, versions share a set until
 * one changes it, bad records change nothing, Kafka's order of precedence,
 * the controller's checks and records, visibility, and a snapshot round trip.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "meta/meta.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"
#include "test.h"

/* Apply one ClientQuotaRecord: user/client NULL is the default, "-" leaves
 * the type out. */
static void put(meta_image *img, const char *user, const char *client, const char *key, double v, bool remove)
{
    ClientQuotaRecord_EntityData ents[2];
    int32_t n = 0;
    if (!user || strcmp(user, "-") != 0)
        ents[n++] = (ClientQuotaRecord_EntityData){kstr_from(META_QUOTA_USER), kstr_from(user)};
    if (!client || strcmp(client, "-") != 0)
        ents[n++] = (ClientQuotaRecord_EntityData){kstr_from(META_QUOTA_CLIENT_ID), kstr_from(client)};
    ClientQuotaRecord r = {{n, ents}, kstr_from(key), v, remove};
    meta_image_apply(img, META_REC_CLIENT_QUOTA, &r);
}

static double resolve(const meta_image *img, const char *user, const char *client, int *which)
{
    double v = -1;
    bool by_user = false, by_client = false;
    if (!meta_quota_resolve(img->quotas, META_QUOTA_PRODUCER_BYTE_RATE, user, client, &v, &by_user, &by_client))
        return -1;
    *which = (by_user ? 2 : 0) | (by_client ? 1 : 0);
    return v;
}

TEST(records_set_remove_and_share)
{
    meta_image *img = meta_image_new();
    put(img, "alice", "app", "producer_byte_rate", 100, false);
    put(img, "alice", "app", "consumer_byte_rate", 200, false);
    put(img, "-", NULL, "request_percentage", 12.5, false);
    CHECK(meta_quotas_count(img->quotas) == 2);
    meta_image *v2 = meta_image_copy(img);
    CHECK(v2->quotas == img->quotas); /* shared until changed */
    put(v2, "alice", "app", "producer_byte_rate", 0, true);
    put(v2, "alice", "app", "consumer_byte_rate", 0, true);
    CHECK(v2->quotas != img->quotas);
    CHECK(meta_quotas_count(v2->quotas) == 1 && meta_quotas_count(img->quotas) == 2);
    meta_quota_entity e = {true, true, "alice", "app"};
    const meta_quota *q = meta_quotas_find(img->quotas, &e);
    REQUIRE(q && q->set == 3 && q->value[META_QUOTA_CONSUMER_BYTE_RATE] == 200);
    CHECK(!meta_quotas_find(v2->quotas, &e));
    /* records that name no user or client id, or an unknown key, change nothing */
    ClientQuotaRecord_EntityData ip = {kstr_from("ip"), kstr_from("1.2.3.4")};
    ClientQuotaRecord bad = {{1, &ip}, kstr_from("producer_byte_rate"), 5, false};
    meta_image_apply(v2, META_REC_CLIENT_QUOTA, &bad);
    ClientQuotaRecord_EntityData twice[2] = {{kstr_from("user"), kstr_from("a")}, {kstr_from("user"), kstr_from("b")}};
    ClientQuotaRecord bad2 = {{2, twice}, kstr_from("producer_byte_rate"), 5, false};
    meta_image_apply(v2, META_REC_CLIENT_QUOTA, &bad2);
    put(v2, "bob", "-", "no_such_key", 5, false);
    put(v2, "bob", "-", "producer_byte_rate", 0, true); /* removing what is not there */
    CHECK(meta_quotas_count(v2->quotas) == 1);
    meta_image_release(v2);
    meta_image_release(img);
}

/* KIP-55: /users/U/clients/C first ... /clients/<default> last; the entity
 * found decides what is measured together. */
TEST(precedence)
{
    meta_image *img = meta_image_new();
    int w = -1;
    CHECK(resolve(img, "u", "c", &w) == -1);
    put(img, "-", NULL, "producer_byte_rate", 8, false);
    CHECK(resolve(img, "u", "c", &w) == 8 && w == 1);
    put(img, "-", "c", "producer_byte_rate", 7, false);
    CHECK(resolve(img, "u", "c", &w) == 7 && w == 1);
    CHECK(resolve(img, "u", "other", &w) == 8);
    put(img, NULL, "-", "producer_byte_rate", 6, false);
    CHECK(resolve(img, "u", "c", &w) == 6 && w == 2);
    put(img, NULL, NULL, "producer_byte_rate", 5, false);
    CHECK(resolve(img, "u", "c", &w) == 5 && w == 3);
    put(img, NULL, "c", "producer_byte_rate", 4, false);
    CHECK(resolve(img, "u", "c", &w) == 4 && w == 3);
    put(img, "u", "-", "producer_byte_rate", 3, false);
    CHECK(resolve(img, "u", "c", &w) == 3 && w == 2);
    CHECK(resolve(img, "v", "c", &w) == 4);
    put(img, "u", NULL, "producer_byte_rate", 2, false);
    CHECK(resolve(img, "u", "c", &w) == 2 && w == 3);
    put(img, "u", "c", "producer_byte_rate", 1, false);
    CHECK(resolve(img, "u", "c", &w) == 1 && w == 3);
    /* another key set on a more precise entity does not hide this one */
    put(img, "v", "c", "consumer_byte_rate", 9, false);
    CHECK(resolve(img, "v", "c", &w) == 4);
    meta_image_release(img);
}

static void apply_emit(void *ctx, int16_t type, const proto_struct_desc *d, const void *rec)
{
    UNUSED(d);
    meta_image_apply(ctx, type, rec);
}

TEST(controller_checks_writes_and_visibility)
{
    meta_image *img = meta_image_new();
    meta_writer w = {.img = img, .emit = apply_emit, .ctx = img};
    const char *msg = NULL;
    meta_quota_op op = {.e = {false, true, NULL, "app"}, .set = 1u << META_QUOTA_PRODUCER_BYTE_RATE};
    op.value[META_QUOTA_PRODUCER_BYTE_RATE] = 1024;
    CHECK(!meta_quota_visible(img, &op));
    CHECK(meta_quota_alter(&w, &op, &msg) == KERR_NONE);
    CHECK(meta_quota_visible(img, &op));
    meta_quota_op rm = {.e = {false, true, NULL, "app"}, .remove = 1u << META_QUOTA_PRODUCER_BYTE_RATE};
    CHECK(!meta_quota_visible(img, &rm));
    CHECK(meta_quota_alter(&w, &rm, &msg) == KERR_NONE);
    CHECK(meta_quota_visible(img, &rm) && meta_quotas_count(img->quotas) == 0);
    meta_quota_op bad = op;
    bad.value[META_QUOTA_PRODUCER_BYTE_RATE] = 10.5;
    CHECK(meta_quota_alter(&w, &bad, &msg) == KERR_INVALID_REQUEST && msg);
    bad.value[META_QUOTA_PRODUCER_BYTE_RATE] = -1;
    CHECK(meta_quota_alter(&w, &bad, &msg) == KERR_INVALID_REQUEST);
    bad.value[META_QUOTA_PRODUCER_BYTE_RATE] = 1;
    bad.remove = bad.set;
    CHECK(meta_quota_alter(&w, &bad, &msg) == KERR_INVALID_REQUEST);
    meta_quota_op none = {.set = 0};
    CHECK(meta_quota_alter(&w, &none, &msg) == KERR_INVALID_REQUEST);
    meta_quota_op pct = {.e = {true, false, "u", NULL}, .set = 1u << META_QUOTA_REQUEST_PERCENTAGE};
    pct.value[META_QUOTA_REQUEST_PERCENTAGE] = 12.5;
    CHECK(meta_quota_alter(&w, &pct, &msg) == KERR_NONE && meta_quota_visible(img, &pct));
    meta_image_release(img);
}

TEST(snapshot_round_trip)
{
    meta_image *img = meta_image_new();
    put(img, "alice", "app", "producer_byte_rate", 100, false);
    put(img, NULL, "-", "consumer_byte_rate", 200, false);
    put(img, "-", NULL, "request_percentage", 12.5, false);
    put(img, "-", "x", "controller_mutation_rate", 3, false);
    img->offset = 7;
    buf_t a, b;
    buf_init(&a);
    buf_init(&b);
    char err[256] = "";
    REQUIRE(meta_snapshot_encode(img, 1, &a, err, sizeof err) == 0);
    meta_image *back = NULL;
    int64_t created = 0;
    REQUIRE(meta_snapshot_decode(a.data, a.len, 7, &back, &created, err, sizeof err) == 0);
    CHECK(meta_quotas_count(back->quotas) == 4);
    for (int32_t i = 0; i < meta_quotas_count(img->quotas); i++) {
        const meta_quota *q = meta_quotas_at(img->quotas, i), *p = meta_quotas_find(back->quotas, &q->e);
        REQUIRE(p);
        CHECK(p->set == q->set && memcmp(p->value, q->value, sizeof q->value) == 0);
    }
    REQUIRE(meta_snapshot_encode(back, 1, &b, err, sizeof err) == 0);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    meta_image_release(back);
    meta_image_release(img);
    buf_free(&a);
    buf_free(&b);
}
