/*
 * test_snapshot.c - metadata snapshots (snapshot.c, quorum.c): the payload
 * round-trips an image exactly; a torn, bit-flipped, misnamed or
 * other-version payload is refused with a reason; files are named, listed
 * and pruned as the essay says; a node restarts from its newest snapshot,
 * falls back to the older one plus the log when the newest is bad, and
 * refuses to start when no valid snapshot reaches its trimmed log. SCRAM
 * credential records apply, replace, remove and round-trip.
 */
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "meta/meta.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"
#include "storage/storage.h"
#include "meta_ops.h"
#include "test.h"

/* ---- an image with one of everything ----------------------------------------- */

static void put_broker(meta_image *img, int32_t id, int64_t epoch, const char *rack, bool ics)
{
    RegisterBrokerRecord rr;
    proto_set_defaults(&RegisterBrokerRecord_desc, 1, &rr);
    RegisterBrokerRecord_BrokerEndpoint ep[2] = {
        {.Name = kstr_from("PLAINTEXT"), .Host = kstr_from("10.0.0.1"), .Port = (uint16_t)(9000 + id)},
        {.Name = kstr_from("SSL"), .Host = kstr_from("ssl.example"), .Port = (uint16_t)(9400 + id),
         .SecurityProtocol = 1}};
    rr.BrokerId = id;
    memset(rr.IncarnationId.b, id, 16);
    rr.BrokerEpoch = epoch;
    rr.EndPoints = (RegisterBrokerRecord_BrokerEndpoint_array){id == 2 ? 2 : 1, ep}; /* 2: two listeners */
    rr.Rack = kstr_from(rack);
    rr.Fenced = id == 2;
    rr.InControlledShutdown = ics;
    meta_image_apply(img, META_REC_REGISTER_BROKER, &rr);
}

static void put_topic(meta_image *img, const char *name, uint8_t id, int32_t parts)
{
    TopicRecord t = {.Name = kstr_from(name)};
    memset(t.TopicId.b, id, 16);
    meta_image_apply(img, META_REC_TOPIC, &t);
    for (int32_t p = 0; p < parts; p++) {
        int32_t replicas[3] = {1, 2, 3}, isr[2] = {3, 1};
        PartitionRecord pr;
        proto_set_defaults(&PartitionRecord_desc, 0, &pr);
        pr.TopicId = t.TopicId;
        pr.PartitionId = p;
        pr.Replicas = (kint32_array_t){3, replicas};
        pr.Isr = (kint32_array_t){2, isr};
        pr.RemovingReplicas = pr.AddingReplicas = (kint32_array_t){0, NULL};
        pr.Leader = p % 2 ? 1 : 3;
        pr.LeaderEpoch = 5 + p;
        pr.PartitionEpoch = 9 + p;
        meta_image_apply(img, META_REC_PARTITION, &pr);
    }
}

static void put_config(meta_image *img, int8_t type, const char *res, const char *key, const char *value)
{
    ConfigRecord cr = {.ResourceType = type, .ResourceName = kstr_from(res), .Name = kstr_from(key),
                       .Value = kstr_from(value)};
    meta_image_apply(img, META_REC_CONFIG, &cr);
}

static void put_scram(meta_image *img, const char *name, int mech, const char *password)
{
    sasl_cred c;
    sasl_cred_make(&c, mech, password, (const uint8_t *)"saltsalt", 8, 4096);
    size_t k = sasl_scram_key_len(mech);
    UserScramCredentialRecord r = {kstr_from(name), (int8_t)mech, {c.salt, 8}, {c.stored_key, (int32_t)k},
                                   {c.server_key, (int32_t)k}, 4096};
    meta_image_apply(img, META_REC_USER_SCRAM_CREDENTIAL, &r);
}

static meta_image *rich_image(void)
{
    meta_image *img = meta_image_new();
    put_broker(img, 1, 0, NULL, false);
    put_broker(img, 2, 4, "rack-b", false);
    put_broker(img, 3, 2, "rack-c", true);
    put_config(img, META_RESOURCE_BROKER, "", "log.retention.ms", "1000");
    put_config(img, META_RESOURCE_BROKER, "2", "min.insync.replicas", "2");
    put_topic(img, "alpha", 1, 3);
    put_topic(img, "beta", 2, 1);
    put_config(img, META_RESOURCE_TOPIC, "beta", "cleanup.policy", "compact");
    ProducerIdsRecord pr = {.BrokerId = 1, .BrokerEpoch = -1, .NextProducerId = 5000};
    meta_image_apply(img, META_REC_PRODUCER_IDS, &pr);
    put_scram(img, "zoe", SASL_SCRAM_SHA_512, "pw-z");
    put_scram(img, "al", SASL_SCRAM_SHA_256, "pw-a");
    img->offset = 42;
    meta_image_check(img);
    return img;
}

static void encode(const meta_image *img, buf_t *out)
{
    char err[256] = "";
    buf_init(out);
    REQUIRE(meta_snapshot_encode(img, 1234567, out, err, sizeof err) == 0);
}

/* ---- payload ------------------------------------------------------------------- */

/* decode(encode(img)) is img: every field, and re-encoding gives the same bytes. */
TEST(round_trip)
{
    meta_image *img = rich_image();
    buf_t a, b;
    encode(img, &a);
    meta_image *back = NULL;
    int64_t created = 0;
    char err[256] = "";
    REQUIRE(meta_snapshot_decode(a.data, a.len, 42, &back, &created, err, sizeof err) == 0);
    CHECK(created == 1234567 && back->offset == 42);
    encode(back, &b);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    CHECK(back->nbrokers == 3 && back->next_broker_epoch == 5 && back->next_producer_id == 5000);
    const meta_broker *b2 = meta_image_broker(back, 2), *b3 = meta_image_broker(back, 3);
    CHECK(b2->fenced && b2->epoch == 4 && strcmp(b2->rack, "rack-b") == 0);
    REQUIRE(b2->nendpoints == 2 && b3->nendpoints == 1);
    CHECK(strcmp(b2->endpoints[0].name, "PLAINTEXT") == 0 && b2->endpoints[0].port == 9002 &&
          b2->endpoints[0].protocol == 0 && strcmp(b2->endpoints[0].host, "10.0.0.1") == 0);
    CHECK(strcmp(b2->endpoints[1].name, "SSL") == 0 && b2->endpoints[1].port == 9402 &&
          b2->endpoints[1].protocol == 1 && strcmp(b2->endpoints[1].host, "ssl.example") == 0);
    CHECK(strcmp(b3->endpoints[0].name, "PLAINTEXT") == 0 && b3->endpoints[0].port == 9003);
    CHECK(b3->in_controlled_shutdown && !b3->fenced && !meta_image_broker(back, 1)->rack);
    CHECK(strcmp(meta_broker_config_get(back, "2", "min.insync.replicas"), "2") == 0);
    const meta_topic *t = meta_image_topic(back, "alpha", 5);
    REQUIRE(t && t->npartitions == 3);
    CHECK(t->partitions[1].leader == 1 && t->partitions[1].leader_epoch == 6 &&
          t->partitions[1].partition_epoch == 10 && t->partitions[1].nisr == 2);
    CHECK(strcmp(meta_topic_config(meta_image_topic(back, "beta", 4), "cleanup.policy"), "compact") == 0);
    const sasl_cred *z = meta_image_scram(back, "zoe", SASL_SCRAM_SHA_512);
    CHECK(z && z->iterations == 4096 && sasl_cred_check_password(z, "pw-z", 4));
    CHECK(!meta_image_scram(back, "zoe", SASL_SCRAM_SHA_256) && meta_image_scram(back, "al", SASL_SCRAM_SHA_256));
    meta_image_release(back);
    meta_image_release(img);
    buf_free(&a);
    buf_free(&b);
}

/* SCRAM credential records: a later record replaces, Remove deletes, a copy
 * of the image is unaffected, a malformed record changes nothing; the
 * controller's decision keeps keys only and refuses what Kafka refuses. */
static void apply_emit(void *ctx, int16_t type, const proto_struct_desc *d, const void *rec)
{
    UNUSED(d);
    meta_image_apply(ctx, type, rec);
}

TEST(scram_credentials)
{
    meta_image *img = meta_image_new();
    put_scram(img, "u", SASL_SCRAM_SHA_512, "one");
    meta_image *old = meta_image_copy(img);
    put_scram(img, "u", SASL_SCRAM_SHA_512, "two");
    CHECK(sasl_cred_check_password(meta_image_scram(img, "u", SASL_SCRAM_SHA_512), "two", 3));
    CHECK(sasl_cred_check_password(meta_image_scram(old, "u", SASL_SCRAM_SHA_512), "one", 3));
    UserScramCredentialRecord bad = {kstr_from("v"), 9, {NULL, 0}, {NULL, 0}, {NULL, 0}, 4096};
    meta_image_apply(img, META_REC_USER_SCRAM_CREDENTIAL, &bad);
    CHECK(!meta_image_scram(img, "v", 9));
    RemoveUserScramCredentialRecord rm = {kstr_from("u"), SASL_SCRAM_SHA_512};
    meta_image_apply(img, META_REC_REMOVE_USER_SCRAM_CREDENTIAL, &rm);
    CHECK(!meta_image_scram(img, "u", SASL_SCRAM_SHA_512) && meta_image_scram(old, "u", SASL_SCRAM_SHA_512));
    meta_writer w = {.img = img, .emit = apply_emit, .ctx = img};
    meta_op *op = meta_op_scram("w", 1, SASL_SCRAM_SHA_256, false);
    const char *msg = NULL;
    op->scram.iterations = 100;
    op->scram.salt_len = 4;
    CHECK(meta_scram_alter(&w, &op->scram, &msg) == KERR_UNACCEPTABLE_CREDENTIAL && msg);
    op->scram.iterations = 4096;
    sasl_scram_salt_password(SASL_SCRAM_SHA_256, "pw", 2, op->scram.salt, 4, 4096, op->scram.salted);
    CHECK(meta_scram_alter(&w, &op->scram, &msg) == KERR_NONE);
    CHECK(sasl_cred_check_password(meta_image_scram(img, "w", SASL_SCRAM_SHA_256), "pw", 2));
    CHECK(meta_scram_visible(img, op));
    op->scram.remove = true;
    CHECK(meta_scram_alter(&w, &op->scram, &msg) == KERR_NONE && !meta_image_scram(img, "w", SASL_SCRAM_SHA_256));
    CHECK(meta_scram_alter(&w, &op->scram, &msg) == KERR_RESOURCE_NOT_FOUND);
    meta_op_free(op);
    meta_image_check(img);
    meta_image_release(old);
    meta_image_release(img);
}

/* An image with nothing in it is a snapshot with an empty body. */
TEST(empty_image_round_trip)
{
    meta_image *img = meta_image_new();
    img->offset = 3;
    buf_t a;
    encode(img, &a);
    meta_image *back = NULL;
    char err[256] = "";
    REQUIRE(meta_snapshot_decode(a.data, a.len, 3, &back, NULL, err, sizeof err) == 0);
    CHECK(back->ntopics == 0 && back->nbrokers == 0 && back->offset == 3);
    meta_image_release(back);
    meta_image_release(img);
    buf_free(&a);
}

/* Every torn length and every flipped byte is refused, with a reason. */
TEST(torn_or_corrupt_refused)
{
    meta_image *img = rich_image();
    buf_t a;
    encode(img, &a);
    char err[256];
    meta_image *back = NULL;
    for (size_t n = 0; n < a.len; n++) {
        err[0] = 0;
        CHECK(meta_snapshot_decode(a.data, n, 42, &back, NULL, err, sizeof err) == -1 && err[0] && !back);
    }
    for (size_t i = 0; i < a.len; i++) {
        a.data[i] ^= 0x10;
        err[0] = 0;
        CHECK(meta_snapshot_decode(a.data, a.len, 42, &back, NULL, err, sizeof err) == -1 && err[0] && !back);
        a.data[i] ^= 0x10;
    }
    CHECK(meta_snapshot_decode(a.data, a.len, 41, &back, NULL, err, sizeof err) == -1);
    CHECK(strstr(err, "named 41") != NULL);
    a.data[11] = 2; /* format version 2 */
    CHECK(meta_snapshot_decode(a.data, a.len, 42, &back, NULL, err, sizeof err) == -1);
    CHECK(strstr(err, "version 2") != NULL);
    meta_image_release(img);
    buf_free(&a);
}

/* A broker epoch counter the records cannot rebuild is not snapshotted. */
TEST(unrepresentable_image_refused)
{
    meta_image *img = rich_image();
    img->next_broker_epoch = 99;
    buf_t a;
    buf_init(&a);
    char err[256] = "";
    CHECK(meta_snapshot_encode(img, 0, &a, err, sizeof err) == -1 && strstr(err, "broker epoch"));
    meta_image_release(img);
    buf_free(&a);
}

/* ---- files ---------------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static bool exists(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* Kafka's names; listing ignores other files; prune keeps the newest two
 * and drops any below the log start. */
TEST(files_named_listed_pruned)
{
    char dir[] = "/tmp/chronik-snap-XXXXXX";
    REQUIRE(mkdtemp(dir));
    sfs_t *fs = sfs_posix();
    char name[64];
    meta_snapshot_name(name, sizeof name, (raft_snapshot_id_t){120, 3});
    CHECK(strcmp(name, "00000000000000000120-0000000003.checkpoint") == 0);
    uint8_t x[4] = {1, 2, 3, 4};
    for (int64_t end = 10; end <= 40; end += 10)
        CHECK(meta_snapshot_write(fs, dir, (raft_snapshot_id_t){end, 1}, x, sizeof x) == 0);
    CHECK(sfs_write_atomic(fs, dir, "chronik.checkpoint", x, sizeof x) == 0);
    raft_snapshot_id_t ids[8];
    REQUIRE(meta_snapshot_list(fs, dir, ids, 8) == 4);
    CHECK(ids[0].end_offset == 40 && ids[3].end_offset == 10 && ids[0].epoch == 1);
    uint8_t *back;
    size_t len;
    REQUIRE(meta_snapshot_read(fs, dir, ids[1], &back, &len) == 0);
    CHECK(len == 4 && memcmp(back, x, 4) == 0);
    free(back);
    CHECK(meta_snapshot_prune(fs, dir, 2, 0) == 2);
    CHECK(meta_snapshot_list(fs, dir, ids, 8) == 2 && ids[1].end_offset == 30);
    CHECK(meta_snapshot_prune(fs, dir, 2, 35) == 1 && exists(dir, "chronik.checkpoint"));
    meta_snapshot_set_aside(fs, dir, (raft_snapshot_id_t){40, 1});
    CHECK(meta_snapshot_list(fs, dir, ids, 8) == 0);
    CHECK(exists(dir, "00000000000000000040-0000000001.checkpoint.bad"));
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- a node restarting ------------------------------------------------------------ */

static int16_t create(meta_t *m, const char *name)
{
    meta_op *op = meta_op_new(META_OP_CREATE_TOPIC, name, strlen(name));
    op->partitions = 2;
    op->replication_factor = 1;
    return run(m, op).err;
}

/* Waits (deadline 20 s) for two snapshots and a trimmed log. */
static bool wait_trimmed(meta_t *m, meta_quorum_status *q)
{
    for (int i = 0; i < 2000; i++) {
        meta_quorum_status_get(m, q);
        if (q->snapshots_taken >= 2 && q->log_start_offset > 0 && q->snapshot_end_offset > q->log_start_offset)
            return true;
        usleep(10000);
    }
    return false;
}

static int count_topics(meta_t *m, int n)
{
    meta_image *img = meta_acquire(m);
    int found = 0;
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%02d", i);
        found += meta_image_topic(img, name, strlen(name)) != NULL;
    }
    meta_image_release(img);
    return found;
}

static void flip_newest(const char *logdir, int nth)
{
    raft_snapshot_id_t ids[8];
    REQUIRE(meta_snapshot_list(sfs_posix(), logdir, ids, 8) > nth);
    char name[64], p[600];
    meta_snapshot_name(name, sizeof name, ids[nth]);
    snprintf(p, sizeof p, "%s/%s", logdir, name);
    FILE *f = fopen(p, "r+b");
    REQUIRE(f);
    fseek(f, 50, SEEK_SET);
    fputc(0xEE, f);
    fclose(f);
}

/* Restart from the newest snapshot; a bad newest one falls back to the older
 * plus the log; with every snapshot bad and the log trimmed, no start. */
TEST(restart_from_snapshot_and_fall_back)
{
    enum { N = 30 };
    char dir[] = "/tmp/chronik-snapnode-XXXXXX", logdir[512];
    REQUIRE(mkdtemp(dir));
    snprintf(logdir, sizeof logdir, "%s/%s-0", dir, META_TOPIC_NAME);
    meta_config mc = {.data_dir = dir, .fs = sfs_posix(), .node_id = 1, .snapshot_max_bytes = 300};
    meta_t *m;
    REQUIRE(meta_open(&mc, NULL, NULL, &m) == STORAGE_OK);
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%02d", i);
        CHECK(create(m, name) == KERR_NONE);
    }
    meta_quorum_status q;
    CHECK(wait_trimmed(m, &q));
    meta_close(m);
    raft_snapshot_id_t ids[8];
    CHECK(meta_snapshot_list(sfs_posix(), logdir, ids, 8) == 2);

    REQUIRE(meta_open(&mc, NULL, NULL, &m) == STORAGE_OK);
    meta_quorum_status_get(m, &q);
    CHECK(q.snapshot_end_offset > 0 && q.log_start_offset > 0);
    CHECK(count_topics(m, N) == N);
    meta_close(m);

    flip_newest(logdir, 0);
    REQUIRE(meta_open(&mc, NULL, NULL, &m) == STORAGE_OK);
    CHECK(count_topics(m, N) == N);
    meta_close(m);

    int n = meta_snapshot_list(sfs_posix(), logdir, ids, 8);
    for (int i = 0; i < n; i++)
        flip_newest(logdir, i);
    CHECK(meta_open(&mc, NULL, NULL, &m) != STORAGE_OK);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
