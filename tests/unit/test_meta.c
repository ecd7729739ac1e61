/* test_meta.c - the metadata image's brokers and topic sharing, replica
 * placement, and the controller's broker decisions: registration,
 * heartbeats, fencing and leadership moving off a fenced broker. */
#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/util.h"
#include "meta/meta.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"
#include "storage/storage.h"
#include "meta_ops.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------- */

enum { NODE = 7 };

/* Counts the records a writer emitted, by type; each goes through the
 * version-0 encoding and back, as the metadata log and its replay do. */
typedef struct sink {
    meta_image *img;
    int counts[32];
    int total;
} sink;

static void sink_emit(void *ctx, int16_t type, const proto_struct_desc *d, const void *rec)
{
    sink *s = ctx;
    buf_t b;
    buf_init(&b);
    proto_encode(d, 0, true, rec, &b);
    arena_t a;
    arena_init(&a);
    void *back = arena_alloc(&a, d->size);
    rd_t r;
    rd_init(&r, b.data, b.len);
    proto_err_t err;
    CK_ASSERT(proto_decode(d, 0, true, &r, &a, back, &err) == 0);
    meta_image_apply(s->img, type, back);
    meta_image_check(s->img);
    arena_free(&a);
    buf_free(&b);
    s->counts[type]++;
    s->total++;
}

static meta_writer writer(sink *s)
{
    return (meta_writer){.img = s->img, .emit = sink_emit, .ctx = s};
}

static kuuid_t uuid_of(uint8_t x)
{
    kuuid_t u;
    memset(u.b, x, sizeof u.b);
    return u;
}

static meta_endpoint endpoint(const char *name, const char *host, int port, int16_t protocol)
{
    return (meta_endpoint){(char *)name, (char *)host, (uint16_t)port, protocol};
}

/* The port of registered broker id's PLAINTEXT endpoint, -1 when none. */
static int plaintext_port(const meta_image *img, int32_t id)
{
    const meta_endpoint *e = meta_broker_endpoint(meta_image_broker(img, id), "PLAINTEXT");
    return e ? e->port : -1;
}

/* Register broker id (incarnation inc) through the controller's logic. */
static int64_t reg(sink *s, meta_liveness *lv, int32_t id, uint8_t inc, int64_t now_ms)
{
    meta_endpoint ep = endpoint("PLAINTEXT", "h", 9000 + id, 0);
    meta_registration r = {.id = id, .incarnation = uuid_of(inc), .nendpoints = 1, .endpoints = &ep};
    meta_writer w = writer(s);
    int64_t epoch;
    const char *msg = NULL;
    CK_ASSERT(meta_broker_register(&w, lv, &r, s->img->offset + s->total, now_ms, &epoch, &msg) ==
              KERR_NONE);
    return epoch;
}

static int16_t beat(sink *s, meta_liveness *lv, int32_t id, int64_t epoch, int64_t now_ms,
                    bool fence, bool shutdown, meta_heartbeat_reply *out)
{
    meta_heartbeat hb = {.id = id,
                         .epoch = epoch,
                         .metadata_offset = INT64_MAX / 2,
                         .wants_fence = fence,
                         .wants_shutdown = shutdown};
    meta_writer w = writer(s);
    const char *msg = NULL;
    return meta_broker_heartbeat(&w, lv, &hb, now_ms, out, &msg);
}

/* A topic (id byte x) whose partitions have the given replicas; ISR =
 * replicas, leader the first. */
static void add_topic(meta_image *img, const char *name, uint8_t x, int32_t n, int32_t rf,
                      const int32_t *replicas)
{
    TopicRecord tr = {.Name = kstr_from(name), .TopicId = uuid_of(x)};
    meta_image_apply(img, META_REC_TOPIC, &tr);
    for (int32_t p = 0; p < n; p++) {
        PartitionRecord pr;
        proto_set_defaults(&PartitionRecord_desc, 0, &pr);
        pr.TopicId = tr.TopicId;
        pr.PartitionId = p;
        pr.Replicas = (kint32_array_t){rf, (int32_t *)&replicas[p * rf]};
        pr.Isr = pr.Replicas;
        pr.Leader = replicas[p * rf];
        pr.LeaderEpoch = 0;
        pr.PartitionEpoch = 0;
        meta_image_apply(img, META_REC_PARTITION, &pr);
    }
    meta_image_check(img);
}

static const meta_partition *part(const meta_image *img, const char *topic, int32_t p)
{
    const meta_topic *t = meta_image_topic(img, topic, strlen(topic));
    CK_ASSERT(t && p < t->npartitions);
    return &t->partitions[p];
}

static bool in(const int32_t *v, int32_t n, int32_t x)
{
    for (int32_t i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

/* n live brokers 1..n registered and unfenced (epochs 0..n-1). */
static meta_image *live_brokers(int32_t n)
{
    meta_image *img = meta_image_new();
    for (int32_t id = 1; id <= n; id++) {
        RegisterBrokerRecord r;
        proto_set_defaults(&RegisterBrokerRecord_desc, 0, &r);
        r.BrokerId = id;
        r.BrokerEpoch = id - 1;
        r.Fenced = false;
        meta_image_apply(img, META_REC_REGISTER_BROKER, &r);
    }
    return img;
}

/* ---- broker records ------------------------------------------------------- */

/* A registration keeps the PLAINTEXT endpoint, the rack, and starts fenced; a
 * new one replaces it and moves the epoch counter. */
TEST(register_record)
{
    meta_image *img = meta_image_new();
    RegisterBrokerRecord r;
    proto_set_defaults(&RegisterBrokerRecord_desc, 0, &r);
    RegisterBrokerRecord_BrokerEndpoint eps[2] = {
        {.Name = kstr_from("CONTROLLER"),
         .Host = kstr_from("c"),
         .Port = 9093,
         .SecurityProtocol = 0},
        {.Name = kstr_from("PLAINTEXT"),
         .Host = kstr_from("b2"),
         .Port = 9092,
         .SecurityProtocol = 0},
    };
    r.BrokerId = 2;
    r.IncarnationId = uuid_of(1);
    r.BrokerEpoch = 5;
    r.EndPoints = (RegisterBrokerRecord_BrokerEndpoint_array){2, eps};
    r.Rack = kstr_from("r1");
    meta_image_apply(img, META_REC_REGISTER_BROKER, &r);
    const meta_broker *b = meta_image_broker(img, 2);
    REQUIRE(b);
    REQUIRE(b->nendpoints == 2);
    CHECK(strcmp(b->endpoints[0].name, "CONTROLLER") == 0 && strcmp(b->endpoints[0].host, "c") == 0 &&
          b->endpoints[0].port == 9093);
    CHECK(plaintext_port(img, 2) == 9092 && strcmp(meta_broker_endpoint(b, "PLAINTEXT")->host, "b2") == 0);
    CHECK(strcmp(b->rack, "r1") == 0);
    CHECK(b->fenced && !b->in_controlled_shutdown && b->epoch == 5 && b->incarnation.b[0] == 1);
    CHECK_EQ_INT(img->next_broker_epoch, 6);
    r.BrokerId = 1, r.BrokerEpoch = 6, r.Rack = kstr_from(NULL), r.EndPoints.count = 0;
    meta_image_apply(img, META_REC_REGISTER_BROKER, &r);
    REQUIRE(img->nbrokers == 2 && img->brokers[0].id == 1 && img->brokers[1].id == 2);
    CHECK(img->brokers[0].rack == NULL && img->brokers[0].nendpoints == 0 &&
          !meta_broker_endpoint(&img->brokers[0], "PLAINTEXT"));
    r.BrokerId = 2, r.BrokerEpoch = 7, r.IncarnationId = uuid_of(2);
    meta_image_apply(img, META_REC_REGISTER_BROKER, &r);
    CHECK(img->nbrokers == 2 && meta_image_broker(img, 2)->epoch == 7 &&
          img->next_broker_epoch == 8);
    CHECK(meta_image_broker(img, 3) == NULL);
    meta_image_check(img);
    meta_image_release(img);
}

/* Fence, unfence, registration change and unregister act only at the broker's epoch. */
TEST(fence_unfence_unregister_records)
{
    meta_image *img = live_brokers(3);
    FenceBrokerRecord f = {.Id = 2, .Epoch = 0}; /* stale: broker 2 is at epoch 1 */
    meta_image_apply(img, META_REC_FENCE_BROKER, &f);
    CHECK(!meta_image_broker(img, 2)->fenced);
    f.Epoch = 1;
    meta_image_apply(img, META_REC_FENCE_BROKER, &f);
    CHECK(meta_image_broker(img, 2)->fenced);
    int32_t pos = 0, seen = 0;
    for (const meta_broker *b; (b = meta_image_next_live(img, &pos));)
        seen = seen * 10 + b->id;
    CHECK_EQ_INT(seen, 13);
    UnfenceBrokerRecord u = {.Id = 2, .Epoch = 1};
    meta_image_apply(img, META_REC_UNFENCE_BROKER, &u);
    CHECK(!meta_image_broker(img, 2)->fenced);
    BrokerRegistrationChangeRecord c = {
        .BrokerId = 3, .BrokerEpoch = 2, .Fenced = 1, .InControlledShutdown = 1};
    meta_image_apply(img, META_REC_BROKER_REGISTRATION_CHANGE, &c);
    CHECK(meta_image_broker(img, 3)->fenced && meta_image_broker(img, 3)->in_controlled_shutdown);
    c = (BrokerRegistrationChangeRecord){.BrokerId = 3, .BrokerEpoch = 2, .Fenced = -1};
    meta_image_apply(img, META_REC_BROKER_REGISTRATION_CHANGE, &c);
    CHECK(!meta_image_broker(img, 3)->fenced);
    UnregisterBrokerRecord un = {.BrokerId = 1, .BrokerEpoch = 9};
    meta_image_apply(img, META_REC_UNREGISTER_BROKER, &un);
    CHECK(meta_image_broker(img, 1) != NULL);
    un.BrokerEpoch = 0;
    meta_image_apply(img, META_REC_UNREGISTER_BROKER, &un);
    CHECK(meta_image_broker(img, 1) == NULL && img->nbrokers == 2);
    meta_image_check(img);
    meta_image_release(img);
}

/* ---- image versions -------------------------------------------------------- */

/* A new version shares the topics it does not change; a change copies only
 * that topic and leaves the older version as it was. */
TEST(unchanged_topics_shared)
{
    meta_image *v1 = live_brokers(3);
    int32_t reps[] = {1, 2, 2, 3};
    add_topic(v1, "a", 0xa, 2, 2, reps);
    add_topic(v1, "b", 0xb, 2, 2, reps);
    meta_image *v2 = meta_image_copy(v1);
    CHECK(v2->topics[0] == v1->topics[0] && v2->topics[1] == v1->topics[1]);
    PartitionChangeRecord pc;
    proto_set_defaults(&PartitionChangeRecord_desc, 0, &pc);
    pc.TopicId = uuid_of(0xa);
    pc.PartitionId = 1;
    pc.Leader = 3;
    meta_image_apply(v2, META_REC_PARTITION_CHANGE, &pc);
    meta_image_check(v2);
    CHECK(v2->topics[0] != v1->topics[0] && v2->topics[1] == v1->topics[1]);
    CHECK(part(v1, "a", 1)->leader == 2 && part(v1, "a", 1)->leader_epoch == 0);
    CHECK(part(v2, "a", 1)->leader == 3 && part(v2, "a", 1)->leader_epoch == 1);
    CHECK(part(v2, "a", 1)->partition_epoch == 1 && part(v2, "a", 0)->partition_epoch == 0);
    /* A change to a topic the private image already owns changes it in place. */
    meta_topic *owned = v2->topics[0];
    pc.Leader = -2;
    int32_t isr[] = {3};
    pc.Isr = (kint32_array_t){1, isr};
    meta_image_apply(v2, META_REC_PARTITION_CHANGE, &pc);
    CHECK(v2->topics[0] == owned && part(v2, "a", 1)->nisr == 1 &&
          part(v2, "a", 1)->leader_epoch == 1);
    meta_image_release(v1); /* v2's shared topic b outlives v1 */
    CHECK(part(v2, "b", 1)->leader == 2);
    TopicRecord again = {.Name = kstr_from("b"), .TopicId = uuid_of(0xc)};
    meta_image_apply(v2, META_REC_TOPIC, &again); /* a name the image has: no change */
    again = (TopicRecord){.Name = kstr_from("c"), .TopicId = uuid_of(0xa)};
    meta_image_apply(v2, META_REC_TOPIC, &again); /* an id the image has: no change */
    CHECK_EQ_INT(v2->ntopics, 2);
    meta_image *v3 = meta_image_copy(v2);
    RemoveTopicRecord rm = {.TopicId = uuid_of(0xb)};
    meta_image_apply(v3, META_REC_REMOVE_TOPIC, &rm);
    CHECK(v3->ntopics == 1 && meta_image_topic(v2, "b", 1) != NULL);
    meta_image_release(v2);
    meta_image_release(v3);
}

/* ---- placement -------------------------------------------------------------- */

static void counts_of(const int32_t *out, int32_t count, int16_t rf, int32_t nb, int *leaders,
                      int *replicas)
{
    memset(leaders, 0, (size_t)(nb + 1) * sizeof *leaders);
    memset(replicas, 0, (size_t)(nb + 1) * sizeof *replicas);
    for (int32_t i = 0; i < count; i++) {
        leaders[out[i * rf]]++;
        for (int32_t j = 0; j < rf; j++) {
            CHECK(!in(&out[i * rf], j, out[i * rf + j]));
            replicas[out[i * rf + j]]++;
        }
    }
}

static int spread(const int *v, int32_t nb)
{
    int lo = v[1], hi = v[1];
    for (int32_t i = 2; i <= nb; i++)
        lo = MIN(lo, v[i]), hi = MAX(hi, v[i]);
    return hi - lo;
}

/* Leaders differ by at most one per broker over 3 and 5 brokers for 6, 12
 * and 30 partitions, and so do replicas when the count divides evenly. */
TEST(placement_even)
{
    static const int32_t nbs[] = {3, 5}, parts[] = {6, 12, 30};
    for (size_t b = 0; b < ARRAY_LEN(nbs); b++) {
        meta_image *img = live_brokers(nbs[b]);
        for (size_t p = 0; p < ARRAY_LEN(parts); p++) {
            for (int16_t rf = 1; rf <= 3; rf++) {
                for (uint64_t seed = 0; seed < 20; seed++) {
                    int32_t out[30 * 3];
                    char msg[160];
                    REQUIRE(meta_place_replicas(img, NODE, 0, parts[p], rf, NULL, seed, out, msg,
                                                sizeof msg) == KERR_NONE);
                    int leaders[6], replicas[6];
                    counts_of(out, parts[p], rf, nbs[b], leaders, replicas);
                    CHECK(spread(leaders, nbs[b]) <= 1);
                    CHECK(spread(replicas, nbs[b]) <= ((parts[p] * rf) % nbs[b] ? 2 : 1));
                }
            }
        }
        meta_image_release(img);
    }
}

/* The same image and seed place the same way, in one call or in pieces;
 * seeds vary the start. */
TEST(placement_deterministic)
{
    meta_image *img = live_brokers(5);
    int32_t a[30 * 3], b[30 * 3];
    char msg[160];
    CHECK(meta_place_replicas(img, NODE, 0, 30, 3, NULL, 42, a, msg, sizeof msg) == KERR_NONE);
    CHECK(meta_place_replicas(img, NODE, 0, 10, 3, NULL, 42, b, msg, sizeof msg) == KERR_NONE);
    CHECK(meta_place_replicas(img, NODE, 10, 20, 3, NULL, 42, b + 30, msg, sizeof msg) ==
          KERR_NONE);
    CHECK(memcmp(a, b, sizeof a) == 0);
    int starts = 0;
    for (uint64_t seed = 0; seed < 50; seed++) {
        CHECK(meta_place_replicas(img, NODE, 0, 1, 1, NULL, seed, b, msg, sizeof msg) == KERR_NONE);
        starts |= 1 << b[0];
    }
    CHECK_EQ_INT(starts, 0x3e); /* every broker leads partition 0 for some seed */
    meta_image_release(img);
}

/* Only unfenced brokers are candidates; a factor above their number is
 * refused with both numbers named. */
TEST(placement_refuses_rf_above_live)
{
    meta_image *img = live_brokers(3);
    FenceBrokerRecord f = {.Id = 2, .Epoch = 1};
    meta_image_apply(img, META_REC_FENCE_BROKER, &f);
    int32_t out[8 * 2];
    char msg[160];
    CHECK(meta_place_replicas(img, NODE, 0, 4, 3, NULL, 1, out, msg, sizeof msg) ==
          KERR_INVALID_REPLICATION_FACTOR);
    CHECK(strstr(msg, "3") && strstr(msg, "2 live brokers"));
    CHECK(meta_place_replicas(img, NODE, 0, 4, 0, NULL, 1, out, msg, sizeof msg) ==
          KERR_INVALID_REPLICATION_FACTOR);
    REQUIRE(meta_place_replicas(img, NODE, 0, 8, 2, NULL, 1, out, msg, sizeof msg) == KERR_NONE);
    for (int i = 0; i < 16; i++)
        CHECK(out[i] == 1 || out[i] == 3);
    meta_image_release(img);
}

/* An explicit assignment is kept when valid; an unknown or repeated id, a
 * count unlike the others, or only fenced brokers are refused. */
TEST(placement_explicit)
{
    meta_image *img = live_brokers(3);
    int32_t ok0[] = {3, 1}, ok1[] = {2, 3}, unknown[] = {1, 9}, dup[] = {2, 2}, three[] = {1, 2, 3};
    meta_assignment good[] = {{2, ok0}, {2, ok1}};
    int32_t out[4];
    char msg[160];
    REQUIRE(meta_place_replicas(img, NODE, 0, 2, 2, good, 0, out, msg, sizeof msg) == KERR_NONE);
    CHECK(out[0] == 3 && out[1] == 1 && out[2] == 2 && out[3] == 3);
    meta_assignment bad1[] = {{2, ok0}, {2, unknown}};
    CHECK(meta_place_replicas(img, NODE, 0, 2, 2, bad1, 0, out, msg, sizeof msg) ==
          KERR_INVALID_REPLICA_ASSIGNMENT);
    CHECK(strstr(msg, "broker 9") && strstr(msg, "partition 1"));
    meta_assignment bad2[] = {{2, dup}};
    CHECK(meta_place_replicas(img, NODE, 5, 1, 2, bad2, 0, out, msg, sizeof msg) ==
          KERR_INVALID_REPLICA_ASSIGNMENT);
    CHECK(strstr(msg, "partition 5") && strstr(msg, "twice"));
    meta_assignment bad3[] = {{2, ok0}, {3, three}};
    CHECK(meta_place_replicas(img, NODE, 0, 2, 2, bad3, 0, NULL, msg, sizeof msg) ==
          KERR_INVALID_REPLICA_ASSIGNMENT);
    FenceBrokerRecord f = {.Id = 2, .Epoch = 1};
    meta_image_apply(img, META_REC_FENCE_BROKER, &f);
    f = (FenceBrokerRecord){.Id = 3, .Epoch = 2};
    meta_image_apply(img, META_REC_FENCE_BROKER, &f);
    meta_assignment fenced[] = {{2, ok1}};
    CHECK(meta_place_replicas(img, NODE, 0, 1, 2, fenced, 0, out, msg, sizeof msg) ==
          KERR_INVALID_REPLICA_ASSIGNMENT);
    CHECK(meta_replica_live(img, NODE, 1) && !meta_replica_live(img, NODE, 2));
    meta_image_release(img);
}

/* With no broker registered everything lands on this node, as a single node
 * always did. */
TEST(placement_no_brokers_this_node)
{
    meta_image *img = meta_image_new();
    int32_t out[6];
    char msg[160];
    REQUIRE(meta_place_replicas(img, NODE, 0, 6, 1, NULL, 99, out, msg, sizeof msg) == KERR_NONE);
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(out[i], NODE);
    CHECK(meta_place_replicas(img, NODE, 0, 6, 2, NULL, 99, out, msg, sizeof msg) ==
          KERR_INVALID_REPLICATION_FACTOR);
    int32_t self[] = {NODE}, other[] = {1};
    meta_assignment a[] = {{1, self}}, b[] = {{1, other}};
    CHECK(meta_place_replicas(img, NODE, 0, 1, 1, a, 0, out, msg, sizeof msg) == KERR_NONE &&
          out[0] == NODE);
    CHECK(meta_place_replicas(img, NODE, 0, 1, 1, b, 0, out, msg, sizeof msg) ==
          KERR_INVALID_REPLICA_ASSIGNMENT);
    CHECK(meta_replica_live(img, NODE, NODE));
    meta_image_release(img);
}

/* ---- registration, heartbeats, fencing ------------------------------------- */

/* Registration fences; the same incarnation again is a retry; a new one
 * gets a new epoch. */
TEST(register_and_reregister)
{
    meta_image *img = meta_image_new();
    sink s = {.img = img};
    meta_liveness lv = {0};
    int64_t e1 = reg(&s, &lv, 1, 0x11, 0);
    int64_t e2 = reg(&s, &lv, 2, 0x21, 0);
    CHECK(e1 == 0 && e2 == 1 && s.counts[META_REC_REGISTER_BROKER] == 2);
    CHECK(meta_image_broker(img, 1)->fenced && plaintext_port(img, 1) == 9001);
    CHECK_EQ_INT(reg(&s, &lv, 1, 0x11, 5), e1);
    CHECK_EQ_INT(s.total, 2);
    CHECK_EQ_INT(reg(&s, &lv, 1, 0x12, 6), 2);
    CHECK(meta_image_broker(img, 1)->epoch == 2 &&
          meta_image_broker(img, 1)->incarnation.b[0] == 0x12);
    meta_endpoint ep = endpoint("PLAINTEXT", "h", 1, 0);
    meta_registration bad = {.id = -1, .nendpoints = 1, .endpoints = &ep};
    meta_writer w = writer(&s);
    int64_t epoch;
    const char *msg = NULL;
    CHECK(meta_broker_register(&w, &lv, &bad, 0, 0, &epoch, &msg) == KERR_INVALID_REQUEST &&
          epoch == -1);
    meta_image_release(img);
}

/* Every listener is registered and replayed; a registration without
 * listeners, with a name twice, too many or an unknown protocol is
 * refused; the same incarnation with other listeners registers anew. */
TEST(register_listeners)
{
    meta_image *img = meta_image_new();
    sink s = {.img = img};
    meta_liveness lv = {0};
    meta_writer w = writer(&s);
    int64_t epoch;
    const char *msg = NULL;
    meta_endpoint eps[META_ENDPOINTS_MAX + 1];
    for (int i = 0; i <= META_ENDPOINTS_MAX; i++)
        eps[i] = endpoint(i == 0 ? "PLAINTEXT" : i == 1 ? "SSL" : "L", "h", 9000 + i, i == 1 ? 1 : 0);
    eps[2].name = (char *)"EXTERNAL", eps[2].host = (char *)"::1";
    meta_registration r = {.id = 4, .incarnation = uuid_of(4), .nendpoints = 0, .endpoints = eps};
    CHECK(meta_broker_register(&w, &lv, &r, 0, 0, &epoch, &msg) == KERR_INVALID_REQUEST);
    r.nendpoints = META_ENDPOINTS_MAX + 1;
    CHECK(meta_broker_register(&w, &lv, &r, 0, 0, &epoch, &msg) == KERR_INVALID_REQUEST);
    r.nendpoints = 5; /* "L" twice */
    CHECK(meta_broker_register(&w, &lv, &r, 0, 0, &epoch, &msg) == KERR_INVALID_REQUEST);
    r.nendpoints = 2;
    eps[1].protocol = 9;
    CHECK(meta_broker_register(&w, &lv, &r, 0, 0, &epoch, &msg) == KERR_INVALID_REQUEST);
    eps[1].protocol = 1;
    eps[1].name = (char *)"";
    CHECK(meta_broker_register(&w, &lv, &r, 0, 0, &epoch, &msg) == KERR_INVALID_REQUEST);
    eps[1].name = (char *)"SSL";
    CHECK_EQ_INT(s.total, 0);
    r.nendpoints = 3;
    CHECK(meta_broker_register(&w, &lv, &r, 0, 0, &epoch, &msg) == KERR_NONE && epoch == 0);
    const meta_broker *b = meta_image_broker(img, 4);
    REQUIRE(b && b->nendpoints == 3);
    CHECK(strcmp(b->endpoints[1].name, "SSL") == 0 && b->endpoints[1].port == 9001 && b->endpoints[1].protocol == 1);
    char addr[64];
    CHECK(meta_broker_addr(img, 4, "SSL", addr, sizeof addr) && strcmp(addr, "h:9001") == 0);
    CHECK(meta_broker_addr(img, 4, "EXTERNAL", addr, sizeof addr) && strcmp(addr, "[::1]:9002") == 0);
    CHECK(!meta_broker_addr(img, 4, "INTERNAL", addr, sizeof addr) && !meta_broker_addr(img, 5, "SSL", addr, 64));
    CHECK(!meta_broker_addr(img, 4, "SSL", addr, 4)); /* does not fit */
    /* The same registration again is a retry: nothing written. */
    CHECK(meta_broker_register(&w, &lv, &r, 1, 0, &epoch, &msg) == KERR_NONE && epoch == 0);
    CHECK_EQ_INT(s.total, 1);
    /* The same incarnation with a listener moved: a new registration. */
    eps[1].port = 9443;
    CHECK(meta_broker_register(&w, &lv, &r, 1, 0, &epoch, &msg) == KERR_NONE && epoch == 1);
    CHECK_EQ_INT(s.total, 2);
    b = meta_image_broker(img, 4);
    CHECK(b->epoch == 1 && b->fenced && meta_broker_endpoint(b, "SSL")->port == 9443);
    /* ... and with one listener fewer. */
    r.nendpoints = 1;
    CHECK(meta_broker_register(&w, &lv, &r, 2, 0, &epoch, &msg) == KERR_NONE && epoch == 2);
    b = meta_image_broker(img, 4);
    CHECK(b->nendpoints == 1 && !meta_broker_endpoint(b, "SSL") && plaintext_port(img, 4) == 9000);
    meta_image_check(img);
    meta_image_release(img);
}

/* A record naming one endpoint twice keeps the first, as a map would. */
TEST(register_record_repeated_name)
{
    meta_image *img = meta_image_new();
    RegisterBrokerRecord r;
    proto_set_defaults(&RegisterBrokerRecord_desc, 0, &r);
    RegisterBrokerRecord_BrokerEndpoint eps[2] = {
        {.Name = kstr_from("SSL"), .Host = kstr_from("a"), .Port = 1, .SecurityProtocol = 1},
        {.Name = kstr_from("SSL"), .Host = kstr_from("b"), .Port = 2, .SecurityProtocol = 1},
    };
    r.BrokerId = 1;
    r.EndPoints = (RegisterBrokerRecord_BrokerEndpoint_array){2, eps};
    meta_image_apply(img, META_REC_REGISTER_BROKER, &r);
    const meta_broker *b = meta_image_broker(img, 1);
    REQUIRE(b && b->nendpoints == 1);
    CHECK(strcmp(b->endpoints[0].host, "a") == 0 && b->endpoints[0].port == 1);
    meta_image_release(img);
}

/* Unknown brokers and stale epochs are refused; a broker is unfenced only
 * once caught up with its own registration. */
TEST(heartbeat_errors_and_unfence)
{
    meta_image *img = meta_image_new();
    sink s = {.img = img};
    meta_liveness lv = {0};
    int64_t e = reg(&s, &lv, 1, 0x11, 0);
    meta_heartbeat_reply rep;
    CHECK(beat(&s, &lv, 4, 0, 10, false, false, &rep) == KERR_BROKER_ID_NOT_REGISTERED);
    CHECK(beat(&s, &lv, 1, e + 1, 10, false, false, &rep) == KERR_STALE_BROKER_EPOCH);
    meta_heartbeat hb = {.id = 1, .epoch = e, .metadata_offset = -1};
    meta_writer w = writer(&s);
    const char *msg = NULL;
    CHECK(meta_broker_heartbeat(&w, &lv, &hb, 20, &rep, &msg) == KERR_NONE);
    CHECK(!rep.caught_up && rep.fenced && meta_image_broker(img, 1)->fenced);
    CHECK(beat(&s, &lv, 1, e, 30, false, false, &rep) == KERR_NONE);
    CHECK(rep.caught_up && !rep.fenced && !meta_image_broker(img, 1)->fenced);
    CHECK_EQ_INT(s.counts[META_REC_UNFENCE_BROKER], 1);
    CHECK(beat(&s, &lv, 1, e, 40, false, false, &rep) == KERR_NONE && !rep.fenced);
    CHECK_EQ_INT(s.counts[META_REC_UNFENCE_BROKER], 1); /* nothing more to write */
    meta_image_release(img);
}

/* Three live brokers and topic t: partition p led by broker p % 3 + 1,
 * replicas the next two, plus partition 3 on broker 1 alone. */
static meta_image *three_with_topic(sink *s, meta_liveness *lv, int64_t *epochs)
{
    meta_image *img = meta_image_new();
    *s = (sink){.img = img};
    meta_heartbeat_reply rep;
    for (int32_t id = 1; id <= 3; id++) {
        epochs[id] = reg(s, lv, id, (uint8_t)id, 0);
        CK_ASSERT(beat(s, lv, id, epochs[id], 0, false, false, &rep) == KERR_NONE && !rep.fenced);
    }
    int32_t reps[] = {1, 2, 3, 2, 3, 1, 3, 1, 2};
    add_topic(img, "t", 0x7, 3, 3, reps);
    int32_t alone[] = {1};
    add_topic(img, "u", 0x8, 1, 1, alone);
    return img;
}

/* A broker silent past the session timeout is fenced; its leaderships move
 * to the next live ISR member in replica order, it leaves every ISR, and a
 * partition it alone held goes offline keeping it in the ISR. */
TEST(session_timeout_fences_and_moves_leaders)
{
    sink s;
    meta_liveness lv = {0};
    int64_t ep[4];
    meta_image *img = three_with_topic(&s, &lv, ep);
    meta_heartbeat_reply rep;
    meta_writer w = writer(&s);
    CHECK_EQ_INT(meta_brokers_tick(&w, &lv, 9000, 9000), 0);
    CHECK(beat(&s, &lv, 2, ep[2], 5000, false, false, &rep) == KERR_NONE);
    CHECK(beat(&s, &lv, 3, ep[3], 5000, false, false, &rep) == KERR_NONE);
    int before = s.total;
    CHECK_EQ_INT(meta_brokers_tick(&w, &lv, 9001, 9000), 1);
    CHECK(meta_image_broker(img, 1)->fenced && !meta_image_broker(img, 2)->fenced);
    CHECK_EQ_INT(s.counts[META_REC_FENCE_BROKER], 1);
    CHECK_EQ_INT(s.total - before, 1 + 4); /* fence + every partition with 1 in its ISR */
    CHECK_EQ_INT(part(img, "t", 0)->leader, 2);
    CHECK_EQ_INT(part(img, "t", 0)->leader_epoch, 1);
    CHECK_EQ_INT(part(img, "t", 1)->leader, 2);
    CHECK_EQ_INT(part(img, "t", 1)->leader_epoch, 0);
    CHECK_EQ_INT(part(img, "t", 2)->leader, 3);
    for (int32_t p = 0; p < 3; p++)
        CHECK(!in(part(img, "t", p)->isr, part(img, "t", p)->nisr, 1) &&
              part(img, "t", p)->nisr == 2);
    CHECK(part(img, "u", 0)->leader == -1 && part(img, "u", 0)->nisr == 1 &&
          part(img, "u", 0)->isr[0] == 1);
    /* Broker 2 goes silent too: leadership of t-0 and t-1 moves to 3. */
    CHECK(beat(&s, &lv, 3, ep[3], 14000, false, false, &rep) == KERR_NONE);
    CHECK_EQ_INT(meta_brokers_tick(&w, &lv, 14001, 9000), 1);
    for (int32_t p = 0; p < 3; p++)
        CHECK(part(img, "t", p)->leader == 3 && part(img, "t", p)->nisr == 1);
    /* Broker 1 comes back: unfenced, it leads again the partition it was
     * the last ISR member of (u-0), and nothing that has a live leader. */
    int32_t u_epoch = part(img, "u", 0)->leader_epoch;
    CHECK(beat(&s, &lv, 1, ep[1], 15000, false, false, &rep) == KERR_NONE && !rep.fenced);
    CHECK_EQ_INT(part(img, "u", 0)->leader, 1);
    CHECK(part(img, "u", 0)->leader_epoch > u_epoch);
    for (int32_t p = 0; p < 3; p++)
        CHECK_EQ_INT(part(img, "t", p)->leader, 3);
    meta_image_check(img);
    meta_image_release(img);
}

/* A broker the controller counts as alive (its own node) is never fenced
 * by the session timeout, while a silent one is. */
TEST(controller_node_stays_alive)
{
    sink s;
    meta_liveness lv = {0};
    int64_t ep[4];
    meta_image *img = three_with_topic(&s, &lv, ep);
    meta_writer w = writer(&s);
    CHECK_EQ_INT(meta_brokers_tick(&w, &lv, 9000, 9000), 0);
    meta_broker_alive(&lv, img, 1, 20000);
    meta_broker_alive(&lv, img, 9, 20000); /* not registered: nothing */
    CHECK_EQ_INT(meta_brokers_tick(&w, &lv, 20001, 9000), 2);
    CHECK(!meta_image_broker(img, 1)->fenced && meta_image_broker(img, 2)->fenced &&
          meta_image_broker(img, 3)->fenced);
    CHECK(!meta_image_broker(img, 9));
    meta_image_check(img);
    meta_image_release(img);
}

/* A broker asking to be fenced, or to shut down, is fenced at once and its
 * leaderships move; the shutting-down one is told it may go. */
TEST(heartbeat_fence_and_shutdown)
{
    sink s;
    meta_liveness lv = {0};
    int64_t ep[4];
    meta_image *img = three_with_topic(&s, &lv, ep);
    meta_heartbeat_reply rep;
    CHECK(beat(&s, &lv, 3, ep[3], 10, true, false, &rep) == KERR_NONE);
    CHECK(rep.fenced && !rep.should_shut_down && meta_image_broker(img, 3)->fenced);
    CHECK_EQ_INT(part(img, "t", 2)->leader, 1);
    CHECK(beat(&s, &lv, 3, ep[3], 20, true, false, &rep) == KERR_NONE && rep.fenced);
    CHECK_EQ_INT(s.counts[META_REC_FENCE_BROKER], 1);
    CHECK(beat(&s, &lv, 2, ep[2], 30, false, true, &rep) == KERR_NONE);
    CHECK(rep.fenced && rep.should_shut_down);
    CHECK(part(img, "t", 1)->leader == 1 && part(img, "t", 0)->leader == 1);
    /* A new incarnation of broker 1 registers fenced: everything goes offline. */
    int64_t e = reg(&s, &lv, 1, 0x99, 40);
    CHECK(e > ep[3] && meta_image_broker(img, 1)->fenced);
    for (int32_t p = 0; p < 3; p++)
        CHECK_EQ_INT(part(img, "t", p)->leader, -1);
    meta_image_check(img);
    meta_image_release(img);
}

/* ---- through the controller and the metadata log ----------------------------- */

static waiter create(meta_t *m, const char *name, int32_t partitions, int16_t rf)
{
    meta_op *op = meta_op_new(META_OP_CREATE_TOPIC, name, strlen(name));
    op->partitions = partitions;
    op->replication_factor = rf;
    return run(m, op);
}

/* Registers broker id and unfences it with a caught-up heartbeat at time 1;
 * returns its epoch. */
static int64_t register_live(meta_t *m, int32_t id)
{
    meta_op *op = meta_op_new(META_OP_REGISTER_BROKER, NULL, 0);
    op->broker = (meta_broker_op){.id = id,
                                  .incarnation = uuid_of((uint8_t)id),
                                  .nendpoints = 1,
                                  .endpoints = meta_endpoints_dup(
                                      &(meta_endpoint){(char *)"PLAINTEXT", (char *)"127.0.0.1",
                                                       (uint16_t)(9100 + id), 0},
                                      1)};
    waiter w = run(m, op);
    CHECK(w.err == KERR_NONE);
    int64_t epoch = w.broker.epoch;
    op = meta_op_new(META_OP_BROKER_HEARTBEAT, NULL, 0);
    op->broker =
        (meta_broker_op){.id = id, .epoch = epoch, .metadata_offset = INT64_MAX, .now_ms = 1};
    w = run(m, op);
    CHECK(w.err == KERR_NONE && !w.broker.fenced && w.broker.caught_up);
    return epoch;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

/* Registered brokers, their fencing and the placement across them survive a
 * restart of the metadata log; without brokers a topic stays on this node. */
TEST(controller_brokers_replay)
{
    char dir[] = "/tmp/chronik-meta-XXXXXX";
    REQUIRE(mkdtemp(dir));
    meta_t *m;
    meta_config mc = {.data_dir = dir, .fs = sfs_posix(), .node_id = NODE};
    REQUIRE(meta_open(&mc, NULL, NULL, &m) == STORAGE_OK);
    CHECK(create(m, "solo", 2, 1).err == KERR_NONE);
    CHECK(create(m, "solo3", 2, 3).err == KERR_INVALID_REPLICATION_FACTOR);
    int64_t epochs[4];
    for (int32_t id = 1; id <= 3; id++)
        epochs[id] = register_live(m, id);
    CHECK(create(m, "spread", 6, 3).err == KERR_NONE);
    waiter bad = create(m, "toowide", 1, 4);
    CHECK(bad.err == KERR_INVALID_REPLICATION_FACTOR);
    meta_op *op = meta_op_new(META_OP_BROKER_HEARTBEAT, NULL, 0);
    op->broker = (meta_broker_op){
        .id = 2, .epoch = epochs[2], .metadata_offset = INT64_MAX, .now_ms = 20000};
    CHECK(run(m, op).err == KERR_NONE);
    op = meta_op_new(META_OP_FENCE_EXPIRED, NULL, 0);
    op->broker.now_ms = 20000;
    CHECK(run(m, op).err == KERR_NONE);
    meta_close(m);
    REQUIRE(meta_open(&mc, NULL, NULL, &m) == STORAGE_OK);
    meta_image *img = meta_acquire(m);
    meta_image_check(img);
    CHECK(img->nbrokers == 3 && meta_image_broker(img, 1)->fenced &&
          !meta_image_broker(img, 2)->fenced);
    CHECK(meta_image_broker(img, 3)->fenced && plaintext_port(img, 3) == 9103);
    CHECK(part(img, "solo", 1)->nreplicas == 1 && part(img, "solo", 1)->leader == NODE);
    int leaders[4] = {0};
    for (int32_t p = 0; p < 6; p++) {
        const meta_partition *pp = part(img, "spread", p);
        CHECK(pp->nreplicas == 3 && pp->leader == 2 && pp->nisr == 1);
        leaders[pp->replicas[0]]++;
    }
    CHECK(leaders[1] == 2 && leaders[2] == 2 && leaders[3] == 2);
    meta_image_release(img);
    meta_close(m);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int16_t create_partitions(meta_t *m, const char *name, int32_t total, const int32_t *ids,
                                 int32_t nassign, int32_t rf)
{
    meta_op *op = meta_op_new(META_OP_CREATE_PARTITIONS, name, strlen(name));
    op->partitions = total;
    for (int32_t i = 0; i < nassign; i++)
        meta_op_add_assignment(op, &ids[i * rf], rf);
    return run(m, op).err;
}

/* Explicit assignments reach the controller, which keeps valid ones as
 * given and refuses unknown brokers and counts unlike the others. */
TEST(controller_explicit_assignments)
{
    char dir[] = "/tmp/chronik-meta-XXXXXX";
    REQUIRE(mkdtemp(dir));
    meta_t *m;
    meta_config mc = {.data_dir = dir, .fs = sfs_posix(), .node_id = NODE};
    REQUIRE(meta_open(&mc, NULL, NULL, &m) == STORAGE_OK);
    for (int32_t id = 1; id <= 3; id++)
        register_live(m, id);
    int32_t two[] = {2, 3, 3, 1};
    meta_op *op = meta_op_new(META_OP_CREATE_TOPIC, "x", 1);
    for (int32_t i = 0; i < 2; i++)
        meta_op_add_assignment(op, &two[i * 2], 2);
    CHECK(run(m, op).err == KERR_NONE);
    int32_t next[] = {1, 2}, unknown[] = {1, 9}, three[] = {1, 2, 3}, extra[] = {1, 2, 2, 3};
    CHECK(create_partitions(m, "x", 3, unknown, 1, 2) == KERR_INVALID_REPLICA_ASSIGNMENT);
    CHECK(create_partitions(m, "x", 3, three, 1, 3) == KERR_INVALID_REPLICA_ASSIGNMENT);
    CHECK(create_partitions(m, "x", 3, extra, 2, 2) == KERR_INVALID_REPLICA_ASSIGNMENT);
    CHECK(create_partitions(m, "x", 3, next, 1, 2) == KERR_NONE);
    CHECK(create_partitions(m, "x", 5, NULL, 0, 0) == KERR_NONE);
    meta_image *img = meta_acquire(m);
    meta_image_check(img);
    CHECK(part(img, "x", 0)->replicas[0] == 2 && part(img, "x", 0)->replicas[1] == 3);
    CHECK(part(img, "x", 1)->leader == 3 && part(img, "x", 1)->nisr == 2);
    CHECK(part(img, "x", 2)->replicas[0] == 1 && part(img, "x", 2)->replicas[1] == 2);
    CHECK(part(img, "x", 4)->nreplicas == 2 && part(img, "x", 3)->nreplicas == 2);
    meta_image_release(img);
    meta_close(m);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- AlterPartition (alter_partition.c) ----------------------------------------- */

typedef struct isr_ask {
    int32_t sender;
    int64_t sender_epoch;
    int32_t leader_epoch, partition_epoch;
    int32_t nisr;
    const int32_t *isr;
    const int64_t *epochs;
    bool v0;
} isr_ask;

/* Ask for partition index of topic (by name when by_name, else by id) as
 * the controller would; the answer's fields in *out (freed by the caller). */
static int16_t ask_isr(sink *s, const char *topic, bool by_name, int32_t index, const isr_ask *q,
                       meta_alter_op *out)
{
    const meta_topic *t = meta_image_topic(s->img, topic, strlen(topic));
    kuuid_t id = t ? t->id : uuid_of(0x55);
    *out = (meta_alter_op){.index = index, .broker_id = q->sender, .broker_epoch = q->sender_epoch,
                           .leader_epoch = q->leader_epoch, .partition_epoch = q->partition_epoch,
                           .nisr = q->nisr, .isr = (int32_t *)q->isr, .isr_epochs = (int64_t *)q->epochs,
                           .ineligible_v1 = !q->v0};
    meta_writer w = writer(s);
    char msg[META_MSG_MAX];
    return meta_alter_isr(&w, by_name ? topic : NULL, &id, out, msg, sizeof msg);
}

/* Every refusal of Kafka's ReplicationControlManager, in its order, with no
 * record written for any of them. */
TEST(alter_partition_refusals)
{
    sink s;
    meta_liveness lv = {0};
    int64_t ep[4];
    meta_image *img = three_with_topic(&s, &lv, ep);
    int32_t ok[] = {1, 2}, stranger[] = {1, 9}, twice[] = {1, 2, 2}, no_leader[] = {2, 3};
    struct {
        isr_ask q;
        const char *topic;
        bool by_name;
        int32_t index;
        int16_t want;
    } cases[] = {
        {{1, ep[1] + 5, 0, 0, 2, ok, NULL, false}, "t", false, 0, KERR_STALE_BROKER_EPOCH},
        {{1, ep[1], 0, 0, 2, ok, NULL, false}, "nope", false, 0, KERR_UNKNOWN_TOPIC_ID},
        {{1, ep[1], 0, 0, 2, ok, NULL, false}, "nope", true, 0, KERR_UNKNOWN_TOPIC_OR_PARTITION},
        {{1, ep[1], 0, 0, 2, ok, NULL, false}, "t", false, 3, KERR_UNKNOWN_TOPIC_OR_PARTITION},
        {{2, ep[2], 0, 0, 2, ok, NULL, false}, "t", false, 0, KERR_NOT_LEADER_OR_FOLLOWER},
        {{1, ep[1], -1, 0, 2, ok, NULL, false}, "t", false, 0, KERR_FENCED_LEADER_EPOCH},
        {{1, ep[1], 1, 0, 2, ok, NULL, false}, "t", false, 0, KERR_NOT_CONTROLLER},
        {{1, ep[1], 0, -1, 2, ok, NULL, false}, "t", false, 0, KERR_INVALID_UPDATE_VERSION},
        {{1, ep[1], 0, 1, 2, ok, NULL, false}, "t", false, 0, KERR_NOT_CONTROLLER},
        {{1, ep[1], 0, 0, 2, stranger, NULL, false}, "t", false, 0, KERR_INVALID_REQUEST},
        {{1, ep[1], 0, 0, 3, twice, NULL, false}, "t", false, 0, KERR_INVALID_REQUEST},
        {{1, ep[1], 0, 0, 2, no_leader, NULL, false}, "t", false, 0, KERR_INVALID_REQUEST},
        {{1, ep[1], 0, 0, 0, ok, NULL, false}, "t", false, 0, KERR_INVALID_REQUEST},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        meta_alter_op a;
        int16_t err = ask_isr(&s, cases[i].topic, cases[i].by_name, cases[i].index, &cases[i].q, &a);
        if (err != cases[i].want)
            fprintf(stderr, "  case %zu: err %d, want %d\n", i, err, cases[i].want);
        CHECK(err == cases[i].want);
        free(a.out_isr);
    }
    CHECK_EQ_INT(s.counts[META_REC_PARTITION_CHANGE], 0);
    CHECK(part(img, "t", 0)->nisr == 3 && part(img, "t", 0)->partition_epoch == 0);
    meta_image_release(img);
}

/* A shrink writes one record: partition epoch bumped, leader epoch kept; the
 * same ISR again is answered without a record; a fenced member, or one at
 * another broker epoch (KIP-903), cannot rejoin; a live one can. */
TEST(alter_partition_shrink_expand)
{
    sink s;
    meta_liveness lv = {0};
    int64_t ep[4];
    meta_image *img = three_with_topic(&s, &lv, ep);
    int32_t two[] = {1, 2}, two_rev[] = {2, 1}, three[] = {1, 2, 3};
    meta_alter_op a;
    isr_ask q = {1, ep[1], 0, 0, 2, two, NULL, false};
    CHECK(ask_isr(&s, "t", false, 0, &q, &a) == KERR_NONE);
    CHECK(a.out_leader == 1 && a.out_leader_epoch == 0 && a.out_partition_epoch == 1 && a.out_nisr == 2);
    CHECK(a.out_isr[0] == 1 && a.out_isr[1] == 2);
    free(a.out_isr);
    CHECK_EQ_INT(s.counts[META_REC_PARTITION_CHANGE], 1);
    CHECK(part(img, "t", 0)->nisr == 2 && part(img, "t", 0)->leader_epoch == 0);
    q = (isr_ask){1, ep[1], 0, 1, 2, two_rev, NULL, false};
    CHECK(ask_isr(&s, "t", true, 0, &q, &a) == KERR_NONE && a.out_partition_epoch == 1);
    free(a.out_isr);
    CHECK_EQ_INT(s.counts[META_REC_PARTITION_CHANGE], 1);
    meta_heartbeat_reply rep;
    CHECK(beat(&s, &lv, 3, ep[3], 10, true, false, &rep) == KERR_NONE && rep.fenced);
    CHECK_EQ_INT(part(img, "t", 0)->partition_epoch, 1); /* 3 was not in its ISR */
    q = (isr_ask){1, ep[1], 0, 1, 3, three, NULL, false};
    CHECK(ask_isr(&s, "t", false, 0, &q, &a) == KERR_INELIGIBLE_REPLICA);
    q.v0 = true;
    CHECK(ask_isr(&s, "t", false, 0, &q, &a) == KERR_OPERATION_NOT_ATTEMPTED);
    CHECK(beat(&s, &lv, 3, ep[3], 20, false, false, &rep) == KERR_NONE && !rep.fenced);
    int64_t wrong[] = {ep[1], ep[2], ep[3] + 1}, right[] = {ep[1], -1, ep[3]};
    q = (isr_ask){1, ep[1], 0, 1, 3, three, wrong, false};
    CHECK(ask_isr(&s, "t", false, 0, &q, &a) == KERR_INELIGIBLE_REPLICA);
    q.epochs = right;
    CHECK(ask_isr(&s, "t", false, 0, &q, &a) == KERR_NONE);
    CHECK(a.out_partition_epoch == 2 && a.out_leader_epoch == 0 && a.out_nisr == 3);
    free(a.out_isr);
    CHECK(part(img, "t", 0)->nisr == 3 && part(img, "t", 0)->leader == 1);
    meta_image_check(img);
    meta_image_release(img);
}

typedef struct ap_answer {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int16_t err;
    int32_t leader_epoch, partition_epoch, nisr, isr[8];
    int32_t image_partition_epoch; /* this node's published image when done ran */
    meta_t *m;
    kuuid_t id;
} ap_answer;

static void ap_answered(void *arg, int16_t err, int32_t leader_epoch, int32_t partition_epoch, const int32_t *isr,
                        int32_t nisr)
{
    ap_answer *w = arg;
    meta_image *img = meta_acquire(w->m);
    const meta_topic *t = meta_image_topic_by_id(img, &w->id);
    pthread_mutex_lock(&w->lock);
    w->image_partition_epoch = t ? t->partitions[0].partition_epoch : -1;
    w->done = true, w->err = err, w->leader_epoch = leader_epoch, w->partition_epoch = partition_epoch;
    w->nisr = MIN(nisr, 8);
    for (int32_t i = 0; i < w->nisr; i++)
        w->isr[i] = isr[i];
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    meta_image_release(img);
}

static ap_answer alter_wait(meta_t *m, const kuuid_t *id, int32_t leader_epoch, int32_t partition_epoch,
                            const int32_t *isr, int32_t nisr)
{
    ap_answer w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .m = m, .id = *id};
    meta_alter_partition(m, id, 0, leader_epoch, partition_epoch, isr, nisr, 1500, ap_answered, &w);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    return w;
}

/* meta_alter_partition at a node that is its own controller: the answer
 * carries the committed ISR and epochs, and the image already shows them. */
TEST(alter_partition_entry_point)
{
    char dir[] = "/tmp/chronik-meta-XXXXXX";
    REQUIRE(mkdtemp(dir));
    meta_t *m;
    meta_config mc = {.data_dir = dir, .fs = sfs_posix(), .node_id = NODE, .nendpoints = 1,
                      .endpoints = {{(char *)"PLAINTEXT", (char *)"127.0.0.1", 9199, 0}}};
    REQUIRE(meta_open(&mc, NULL, NULL, &m) == STORAGE_OK);
    for (int32_t id = 1; id <= 2; id++)
        register_live(m, id);
    int32_t reps[] = {NODE, 1, 2};
    meta_op *op = meta_op_new(META_OP_CREATE_TOPIC, "ap", 2);
    meta_op_add_assignment(op, reps, 3);
    REQUIRE(run(m, op).err == KERR_NONE);
    meta_image *img = meta_acquire(m);
    kuuid_t id = meta_image_topic(img, "ap", 2)->id;
    CHECK(part(img, "ap", 0)->leader == NODE && part(img, "ap", 0)->nisr == 3);
    meta_image_release(img);
    int32_t shrunk[] = {NODE, 2};
    ap_answer w = alter_wait(m, &id, 0, 0, shrunk, 2);
    CHECK(w.err == KERR_NONE && w.leader_epoch == 0 && w.partition_epoch == 1 && w.nisr == 2);
    CHECK(w.isr[0] == NODE && w.isr[1] == 2 && w.image_partition_epoch == 1);
    w = alter_wait(m, &id, 0, 0, reps, 3);
    CHECK(w.err == KERR_INVALID_UPDATE_VERSION && w.nisr == 0);
    w = alter_wait(m, &id, 1, 1, reps, 3);
    CHECK(w.err == KERR_NOT_CONTROLLER); /* retried until the deadline, then answered */
    meta_close(m);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A topic created without a replication factor gets 3, or the live brokers
 * when fewer: 1 on a node alone, 2 with two live brokers, 3 with four; an
 * explicit one above the live brokers is refused. */
TEST(default_replication_factor)
{
    char dir[] = "/tmp/chronik-meta-XXXXXX";
    REQUIRE(mkdtemp(dir));
    meta_t *m;
    meta_config mc = {.data_dir = dir, .fs = sfs_posix(), .node_id = NODE};
    REQUIRE(meta_open(&mc, NULL, NULL, &m) == STORAGE_OK);
    CHECK(create(m, "alone", 2, -1).err == KERR_NONE);
    for (int32_t id = 1; id <= 2; id++)
        register_live(m, id);
    CHECK(create(m, "two", 2, -1).err == KERR_NONE);
    CHECK(create(m, "three", 1, 3).err == KERR_INVALID_REPLICATION_FACTOR);
    for (int32_t id = 3; id <= 4; id++)
        register_live(m, id);
    CHECK(create(m, "four", 4, -1).err == KERR_NONE);
    meta_image *img = meta_acquire(m);
    CHECK_EQ_INT(meta_image_live_brokers(img), 4);
    CHECK(part(img, "alone", 1)->nreplicas == 1 && part(img, "alone", 1)->leader == NODE);
    CHECK(part(img, "two", 0)->nreplicas == 2 && part(img, "two", 1)->nisr == 2);
    int leaders[5] = {0};
    for (int32_t p = 0; p < 4; p++) {
        CHECK(part(img, "four", p)->nreplicas == 3 && part(img, "four", p)->nisr == 3);
        leaders[part(img, "four", p)->leader]++;
    }
    CHECK(leaders[1] == 1 && leaders[2] == 1 && leaders[3] == 1 && leaders[4] == 1);
    meta_image_release(img);
    meta_close(m);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- elections (election.c) ------------------------------------------------------ */

/* Topic name (id byte x): one partition on replicas {1, 2} whose ISR the
 * leader 1 has shrunk to {1}. */
static void lagging_topic(sink *s, const int64_t *ep, const char *name, uint8_t x)
{
    int32_t reps[] = {1, 2}, alone[] = {1};
    add_topic(s->img, name, x, 1, 2, reps);
    meta_alter_op a;
    isr_ask q = {1, ep[1], 0, 0, 1, alone, NULL, false};
    CK_ASSERT(ask_isr(s, name, false, 0, &q, &a) == KERR_NONE);
    free(a.out_isr);
}

static void topic_setting(meta_image *img, const char *topic, const char *key, const char *value)
{
    ConfigRecord cr = {.ResourceType = META_RESOURCE_TOPIC, .ResourceName = kstr_from(topic),
                       .Name = kstr_from(key), .Value = kstr_from(value)};
    meta_image_apply(img, META_REC_CONFIG, &cr);
}

/* A fenced leader with no live ISR member leaves the partition offline,
 * unless the topic allows unclean election: then the first live replica
 * leads alone (leader epoch bumped). ElectLeaders UNCLEAN does the same for
 * an offline partition; the periodic check with the broker default on too. */
TEST(unclean_election)
{
    sink s;
    meta_liveness lv = {0};
    int64_t ep[4];
    meta_image *img = three_with_topic(&s, &lv, ep);
    lagging_topic(&s, ep, "clean", 0x21);
    lagging_topic(&s, ep, "dirty", 0x22);
    lagging_topic(&s, ep, "later", 0x23);
    topic_setting(img, "dirty", "unclean.leader.election.enable", "true");
    meta_heartbeat_reply rep;
    CHECK(beat(&s, &lv, 1, ep[1], 10, true, false, &rep) == KERR_NONE && rep.fenced);
    CHECK(part(img, "clean", 0)->leader == -1 && part(img, "clean", 0)->isr[0] == 1);
    CHECK(part(img, "dirty", 0)->leader == 2 && part(img, "dirty", 0)->nisr == 1);
    CHECK(part(img, "dirty", 0)->isr[0] == 2 && part(img, "dirty", 0)->leader_epoch == 1);
    meta_writer w = writer(&s);
    CHECK(meta_elect_leader(&w, META_ELECT_UNCLEAN, "dirty", 0) == KERR_ELECTION_NOT_NEEDED);
    CHECK(meta_elect_leader(&w, META_ELECT_UNCLEAN, "clean", 0) == KERR_NONE);
    CHECK(part(img, "clean", 0)->leader == 2 && part(img, "clean", 0)->isr[0] == 2);
    CHECK(meta_elect_leader(&w, META_ELECT_UNCLEAN, "clean", 7) == KERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(meta_elect_offline_unclean(&w), 0); /* "later" keeps the default: off */
    CHECK_EQ_INT(part(img, "later", 0)->leader, -1);
    w.unclean_leader_election = true;
    CHECK_EQ_INT(meta_elect_offline_unclean(&w), 1);
    CHECK(part(img, "later", 0)->leader == 2 && part(img, "later", 0)->leader_epoch == 2); /* 1, then none, then 2 */
    CHECK(beat(&s, &lv, 2, ep[2], 20, true, false, &rep) == KERR_NONE && rep.fenced);
    CHECK(meta_elect_leader(&w, META_ELECT_UNCLEAN, "later", 0) == KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE);
    meta_image_check(img);
    meta_image_release(img);
}

/* A broker that comes back leads its preferred partitions again once it is
 * in their ISR, not before; ElectLeaders PREFERRED answers per partition. */
TEST(preferred_election)
{
    sink s;
    meta_liveness lv = {0};
    int64_t ep[4];
    meta_image *img = three_with_topic(&s, &lv, ep);
    meta_heartbeat_reply rep;
    CHECK(beat(&s, &lv, 1, ep[1], 10, true, false, &rep) == KERR_NONE && rep.fenced);
    CHECK(part(img, "t", 0)->leader == 2 && part(img, "t", 0)->leader_epoch == 1);
    meta_writer w = writer(&s);
    CHECK(meta_elect_leader(&w, META_ELECT_PREFERRED, "t", 0) == KERR_PREFERRED_LEADER_NOT_AVAILABLE);
    CHECK(beat(&s, &lv, 1, ep[1], 20, false, false, &rep) == KERR_NONE && !rep.fenced);
    CHECK_EQ_INT(meta_elect_preferred_all(&w), 0); /* 1 is live but not in sync */
    int32_t all[] = {2, 3, 1};
    meta_alter_op a;
    isr_ask q = {2, ep[2], 1, part(img, "t", 0)->partition_epoch, 3, all, NULL, false};
    CHECK(ask_isr(&s, "t", false, 0, &q, &a) == KERR_NONE && a.out_leader == 2);
    free(a.out_isr);
    CHECK_EQ_INT(meta_elect_preferred_all(&w), 1);
    CHECK(part(img, "t", 0)->leader == 1 && part(img, "t", 0)->leader_epoch == 2);
    CHECK(part(img, "t", 1)->leader == 2 && part(img, "t", 2)->leader == 3);
    CHECK(meta_elect_leader(&w, META_ELECT_PREFERRED, "t", 0) == KERR_ELECTION_NOT_NEEDED);
    CHECK(meta_elect_leader(&w, META_ELECT_PREFERRED, "nope", 0) == KERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(meta_elect_preferred_all(&w), 0);
    meta_image_check(img);
    meta_image_release(img);
}

/* ---- reassignment (reassign.c) --------------------------------------------------- */

static int16_t reassign(sink *s, const char *topic, int32_t index, const int32_t *target, int32_t n)
{
    meta_writer w = writer(s);
    char msg[META_MSG_MAX];
    return meta_reassign(&w, topic, index, target, n, msg, sizeof msg);
}

static bool parts_are(const int32_t *v, int32_t n, const int32_t *want, int32_t nwant)
{
    return n == nwant && (n == 0 || memcmp(v, want, (size_t)n * sizeof *v) == 0);
}

/* A move adds the new replicas (replicas the union, ISR and leader kept)
 * and completes once the leader's AlterPartition has every target replica
 * in the ISR: replicas the target, the removed one out of the ISR, the
 * leader moved off it with its epoch bumped. A pure removal completes at
 * once, a cancel goes back to the original replicas, and Kafka's refusals
 * answer bad requests without a record. */
TEST(reassignment)
{
    sink s;
    meta_liveness lv = {0};
    int64_t ep[5];
    meta_image *img = three_with_topic(&s, &lv, ep);
    meta_heartbeat_reply rep;
    ep[4] = reg(&s, &lv, 4, 4, 0);
    CHECK(beat(&s, &lv, 4, ep[4], 0, false, false, &rep) == KERR_NONE && !rep.fenced);
    int before = s.counts[META_REC_PARTITION_CHANGE];
    int32_t twice[] = {1, 1}, stranger[] = {9}, same[] = {1};
    CHECK(reassign(&s, "nope", 0, same, 1) == KERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK(reassign(&s, "t", 5, same, 1) == KERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK(reassign(&s, "t", 0, twice, 2) == KERR_INVALID_REPLICA_ASSIGNMENT);
    CHECK(reassign(&s, "t", 0, stranger, 1) == KERR_INVALID_REPLICA_ASSIGNMENT);
    CHECK(reassign(&s, "t", 0, same, 0) == KERR_INVALID_REPLICA_ASSIGNMENT);
    CHECK(reassign(&s, "t", 0, NULL, -1) == KERR_NO_REASSIGNMENT_IN_PROGRESS);
    CHECK(reassign(&s, "u", 0, same, 1) == KERR_NONE); /* already so: nothing written */
    CHECK_EQ_INT(s.counts[META_REC_PARTITION_CHANGE], before);
    int32_t target[] = {2, 3, 4}, unioned[] = {2, 3, 4, 1}, four[] = {4}, one[] = {1};
    CHECK(reassign(&s, "t", 0, target, 3) == KERR_NONE);
    const meta_partition *p = part(img, "t", 0);
    CHECK(parts_are(p->replicas, p->nreplicas, unioned, 4) && parts_are(p->adding, p->nadding, four, 1));
    CHECK(parts_are(p->removing, p->nremoving, one, 1) && p->leader == 1 && p->nisr == 3);
    int32_t grown[] = {1, 2, 3, 4};
    meta_alter_op a;
    isr_ask q = {1, ep[1], 0, p->partition_epoch, 4, grown, NULL, false};
    CHECK(ask_isr(&s, "t", false, 0, &q, &a) == KERR_NONE);
    CHECK(a.out_leader == 2 && a.out_leader_epoch == 1 && a.out_nisr == 3); /* answered as moved */
    free(a.out_isr);
    p = part(img, "t", 0);
    CHECK(parts_are(p->replicas, p->nreplicas, target, 3) && p->nadding == 0 && p->nremoving == 0);
    CHECK(p->leader == 2 && p->leader_epoch == 1 && !in(p->isr, p->nisr, 1) && p->nisr == 3);
    /* Removing a replica only: done at once. */
    int32_t shrink[] = {3, 1};
    CHECK(reassign(&s, "t", 2, shrink, 2) == KERR_NONE);
    p = part(img, "t", 2);
    CHECK(parts_are(p->replicas, p->nreplicas, shrink, 2) && p->nremoving == 0 && p->nisr == 2 && p->leader == 3);
    /* A cancel goes back to the original replicas (as Kafka does, in the
     * order they had in the union: target first, then the removed). */
    int32_t moved[] = {4, 3, 1}, original[] = {3, 1, 2};
    CHECK(reassign(&s, "t", 1, moved, 3) == KERR_NONE && part(img, "t", 1)->nadding == 1);
    CHECK(reassign(&s, "t", 1, NULL, -1) == KERR_NONE);
    p = part(img, "t", 1);
    CHECK(parts_are(p->replicas, p->nreplicas, original, 3) && p->nadding == 0 && p->nremoving == 0);
    CHECK(p->leader == 2 && p->nisr == 3);
    meta_image_check(img);
    meta_image_release(img);
}

/* A counter as the controller's random source: the same seed, the same ids. */
static void counting_rand(void *ctx, void *out, size_t len)
{
    uint64_t *c = ctx;
    uint8_t *p = out;
    for (size_t k = 0; k < len; k++)
        p[k] = (uint8_t)(++*c * 0x9e3779b97f4a7c15ull >> 56);
}

/* The decision step is a pure function: a leader that has not applied its
 * predecessors' entries decides nothing (NOT_CONTROLLER, no entry); once it
 * has, one CreateTopics becomes one entry that applies, through the real
 * framing and codec, to the image the round built; the same seed and time
 * give the same bytes. */
TEST(decide_pure_round)
{
    uint64_t seed_a = 7, seed_b = 7;
    meta_ctl a, b;
    meta_ctl_init(&a, 1, (meta_rand){counting_rand, &seed_a});
    meta_ctl_init(&b, 1, (meta_rand){counting_rand, &seed_b});
    meta_image *img = meta_image_new();
    img->offset = 10;
    meta_ctl_lead(&a, 3, 12);
    meta_ctl_lead(&b, 3, 12);
    meta_op *op = meta_op_new(META_OP_CREATE_TOPIC, "pure", 4);
    op->partitions = 3;
    buf_t ea, eb;
    buf_init(&ea);
    buf_init(&eb);
    const char *msg;
    CHECK_EQ_INT(meta_ctl_decide(&a, img, 11, op, 1000, &ea, &msg), KERR_NOT_CONTROLLER);
    CHECK(ea.len == 0);
    CHECK_EQ_INT(meta_ctl_decide(&a, img, 12, op, 1000, &ea, &msg), KERR_NONE);
    CHECK_EQ_INT(meta_ctl_decide(&b, img, 12, op, 1000, &eb, &msg), KERR_NONE);
    CHECK(ea.len > 0 && ea.len == eb.len && memcmp(ea.data, eb.data, ea.len) == 0);
    meta_image *next = meta_image_copy(img);
    char err[256];
    CHECK_EQ_INT(meta_log_apply_entry(next, 12, 3, ea.data, ea.len, err, sizeof err), 0);
    const meta_topic *t = meta_image_topic(next, "pure", 4);
    CHECK(t && t->npartitions == 3 && t->partitions[2].leader == 1);
    CHECK(next->offset == 13);
    meta_ctl_lead(&a, -1, -1);
    buf_reset(&ea);
    CHECK_EQ_INT(meta_ctl_decide(&a, next, 13, op, 1000, &ea, &msg), KERR_NOT_CONTROLLER);
    meta_op_free(op);
    buf_free(&ea);
    buf_free(&eb);
    meta_image_release(next);
    meta_image_release(img);
}
