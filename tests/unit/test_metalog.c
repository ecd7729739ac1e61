/*
 * test_metalog.c - applying committed metadata entries (metalog.c): rounds
 * applied whole, adopted epoch-0 entries as single records, and every kind
 * of bad record a stop naming its offset, never a silent skip.
 */
#include "base/buf.h"
#include "base/util.h"
#include "meta/meta_int.h"
#include "test.h"

/* A framed metadata record value: frame version, type, version, body. */
static void frame(buf_t *v, uint64_t frame_version, uint64_t type, uint64_t version,
                  const proto_struct_desc *d, const void *rec)
{
    buf_put_uvarint(v, frame_version);
    buf_put_uvarint(v, type);
    buf_put_uvarint(v, version);
    if (d)
        proto_encode(d, (int16_t)version, true, rec, v);
}

static void add_framed(meta_round_blob *b, uint64_t fv, uint64_t type, uint64_t ver, const proto_struct_desc *d,
                       const void *rec)
{
    buf_t v;
    buf_init(&v);
    frame(&v, fv, type, ver, d, rec);
    meta_round_add(b, v.data, v.len);
    buf_free(&v);
}

static void add_topic(meta_round_blob *b, const char *name, uint8_t id)
{
    TopicRecord t = {.Name = kstr_from(name)};
    memset(t.TopicId.b, id, 16);
    int32_t replicas[1] = {1};
    PartitionRecord p = {.PartitionId = 0, .Replicas = {1, replicas}, .Isr = {1, replicas}, .Leader = 1};
    memcpy(p.TopicId.b, t.TopicId.b, 16);
    add_framed(b, META_FRAME_VERSION, META_REC_TOPIC, 0, &TopicRecord_desc, &t);
    add_framed(b, META_FRAME_VERSION, META_REC_PARTITION, 0, &PartitionRecord_desc, &p);
}

static int apply_round(meta_image *img, int64_t offset, const meta_round_blob *b, char *err, size_t n)
{
    buf_t e;
    buf_init(&e);
    meta_round_encode(b, &e);
    int rc = meta_log_apply_entry(img, offset, 1, e.data, e.len, err, n);
    buf_free(&e);
    return rc;
}

/* A round (epoch >= 1) applies all its records; the image's offset moves past it. */
TEST(round_applies_all_its_records)
{
    meta_round_blob b;
    meta_round_init(&b);
    add_topic(&b, "a", 1);
    add_topic(&b, "b", 2);
    meta_image *img = meta_image_new();
    char err[256] = "";
    CHECK_EQ_INT(apply_round(img, 4, &b, err, sizeof err), 0);
    CHECK_EQ_INT(img->ntopics, 2);
    CHECK(meta_image_topic(img, "b", 1) != NULL && meta_image_topic(img, "b", 1)->npartitions == 1);
    CHECK_EQ_INT(img->offset, 5);
    meta_image_release(img);
    meta_round_free(&b);
}

/* An adopted entry (epoch 0, written before the quorum) is one framed record. */
TEST(adopted_entry_is_one_record)
{
    TopicRecord t = {.Name = kstr_from("old")};
    memset(t.TopicId.b, 9, 16);
    buf_t v;
    buf_init(&v);
    frame(&v, META_FRAME_VERSION, META_REC_TOPIC, 0, &TopicRecord_desc, &t);
    meta_image *img = meta_image_new();
    char err[256] = "";
    CHECK_EQ_INT(meta_log_apply_entry(img, 0, 0, v.data, v.len, err, sizeof err), 0);
    CHECK(meta_image_topic(img, "old", 3) != NULL);
    /* the same bytes as a round do not parse: the epoch decides the format */
    CHECK_EQ_INT(meta_log_apply_entry(img, 1, 1, v.data, v.len, err, sizeof err), -1);
    meta_image_release(img);
    buf_free(&v);
}

/* Each kind of bad record stops with its offset and reason. */
TEST(bad_records_stop)
{
    static const struct {
        uint64_t frame, type, version;
        const char *why;
    } cases[] = {
        {2, META_REC_TOPIC, 0, "unknown frame version"},
        {META_FRAME_VERSION, 999, 0, "unknown record type"},
        {META_FRAME_VERSION, META_REC_TOPIC, 77, "record version"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        meta_round_blob b;
        meta_round_init(&b);
        add_topic(&b, "ok", 1);
        TopicRecord t = {.Name = kstr_from("bad")};
        add_framed(&b, cases[i].frame, cases[i].type, cases[i].version,
                   cases[i].version == 0 ? &TopicRecord_desc : NULL, &t);
        meta_image *img = meta_image_new();
        char err[256] = "";
        CHECK_EQ_INT(apply_round(img, 12, &b, err, sizeof err), -1);
        CHECK(strstr(err, cases[i].why) != NULL);
        CHECK(strstr(err, "offset 12") != NULL);
        meta_image_release(img);
        meta_round_free(&b);
    }
}

/* A round whose lengths do not add up, or a body cut short, is not applied. */
TEST(malformed_rounds_stop)
{
    meta_round_blob b;
    meta_round_init(&b);
    add_topic(&b, "cut", 1);
    buf_t e;
    buf_init(&e);
    meta_round_encode(&b, &e);
    meta_image *img = meta_image_new();
    char err[256] = "";
    CHECK_EQ_INT(meta_log_apply_entry(img, 3, 1, e.data, e.len - 5, err, sizeof err), -1);
    CHECK(strstr(err, "round record length") != NULL || strstr(err, "undecodable") != NULL);
    buf_put(&e, "x", 1);
    CHECK_EQ_INT(meta_log_apply_entry(img, 3, 1, e.data, e.len, err, sizeof err), -1);
    CHECK(strstr(err, "bytes left") != NULL);
    uint8_t zero = 0;
    CHECK_EQ_INT(meta_log_apply_entry(img, 3, 1, &zero, 1, err, sizeof err), -1);
    CHECK(strstr(err, "record count") != NULL);
    meta_image_release(img);
    buf_free(&e);
    meta_round_free(&b);
}

/* A partition record whose ISR is not a set of its replicas, or whose
 * leader is outside the ISR, stops replay instead of breaking the image. */
TEST(record_breaking_the_image_stops)
{
    int32_t replicas[2] = {1, 2}, isr[1] = {3}, good_isr[1] = {1};
    PartitionRecord p = {.PartitionId = 0, .Replicas = {2, replicas}, .Isr = {1, isr}, .Leader = 3};
    meta_round_blob b;
    meta_round_init(&b);
    add_framed(&b, META_FRAME_VERSION, META_REC_PARTITION, 0, &PartitionRecord_desc, &p);
    meta_image *img = meta_image_new();
    char err[256] = "";
    CHECK_EQ_INT(apply_round(img, 9, &b, err, sizeof err), -1);
    CHECK(strstr(err, "offset 9") && strstr(err, "ISR is not a set"));
    meta_round_free(&b);
    p.Isr = (kint32_array_t){1, good_isr};
    p.Leader = 2;
    meta_round_init(&b);
    add_framed(&b, META_FRAME_VERSION, META_REC_PARTITION, 0, &PartitionRecord_desc, &p);
    CHECK_EQ_INT(apply_round(img, 10, &b, err, sizeof err), -1);
    CHECK(strstr(err, "leader is not in the ISR") != NULL);
    meta_round_free(&b);
    meta_image_release(img);
}
