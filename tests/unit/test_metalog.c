/*
 * test_metalog.c - replay of the metadata log (metalog.c): every record
 * applied, control batches passed over, and every kind of bad record a
 * loud stop naming its offset, never a silent skip.
 */
#include "base/buf.h"
#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/batch.h"
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

typedef struct rounds {
    buf_t out;          /* batches, back to back */
    batch_builder_t bb;
    int64_t next_offset;
    int n;
} rounds_t;

static void round_begin(rounds_t *r, int16_t attributes)
{
    batch_build_begin(&r->bb, &r->out, r->next_offset, attributes, 1700000000000LL, -1, -1, -1);
    r->n = 0;
}

static void round_add(rounds_t *r, const buf_t *value)
{
    batch_build_add(&r->bb, 1700000000000LL, NULL, -1, value ? value->data : NULL,
                    value ? (int32_t)value->len : -1, NULL, 0);
    r->n++;
}

static void round_end(rounds_t *r)
{
    batch_build_end(&r->bb);
    r->next_offset += r->n;
}

static void add_topic(rounds_t *r, const char *name, uint8_t id)
{
    TopicRecord t = {.Name = kstr_from(name)};
    memset(t.TopicId.b, id, 16);
    int32_t replicas[1] = {1};
    PartitionRecord p = {.PartitionId = 0, .Replicas = {1, replicas}, .Isr = {1, replicas}, .Leader = 1};
    memcpy(p.TopicId.b, t.TopicId.b, 16);
    buf_t v;
    buf_init(&v);
    frame(&v, META_FRAME_VERSION, META_REC_TOPIC, 0, &TopicRecord_desc, &t);
    round_add(r, &v);
    buf_reset(&v);
    frame(&v, META_FRAME_VERSION, META_REC_PARTITION, 0, &PartitionRecord_desc, &p);
    round_add(r, &v);
    buf_free(&v);
}

static int replay(const rounds_t *r, meta_image **img, char *err, size_t n)
{
    *img = meta_image_new();
    return meta_log_replay_bytes(r->out.data, r->out.len, *img, err, n);
}

/* Rounds of records are applied in order; a control batch is passed over. */
TEST(replays_rounds_and_passes_control_batches)
{
    rounds_t r = {0};
    buf_init(&r.out);
    round_begin(&r, 0);
    add_topic(&r, "a", 1);
    round_end(&r);
    round_begin(&r, BATCH_ATTR_CONTROL);
    buf_t junk;
    buf_init(&junk);
    buf_put(&junk, "\x00\x00\x00\x02", 4); /* a leader-change marker's shape, no metadata */
    round_add(&r, &junk);
    round_end(&r);
    round_begin(&r, 0);
    add_topic(&r, "b", 2);
    round_end(&r);
    meta_image *img;
    char err[256] = "";
    CHECK_EQ_INT(replay(&r, &img, err, sizeof err), 0);
    CHECK_EQ_INT(img->ntopics, 2);
    CHECK(meta_image_topic(img, "b", 1) != NULL && meta_image_topic(img, "b", 1)->npartitions == 1);
    meta_image_release(img);
    buf_free(&junk);
    buf_free(&r.out);
}

/* Each kind of bad record stops the replay with its offset and reason. */
TEST(bad_records_stop_the_replay)
{
    static const struct {
        uint64_t frame, type, version;
        bool null_value;
        const char *why;
    } cases[] = {
        {2, META_REC_TOPIC, 0, false, "unknown frame version"},
        {META_FRAME_VERSION, 999, 0, false, "unknown record type"},
        {META_FRAME_VERSION, META_REC_TOPIC, 77, false, "record version"},
        {META_FRAME_VERSION, META_REC_TOPIC, 0, true, "null or empty value"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        rounds_t r = {0};
        buf_init(&r.out);
        round_begin(&r, 0);
        add_topic(&r, "ok", 1);
        buf_t v;
        buf_init(&v);
        TopicRecord t = {.Name = kstr_from("bad")};
        frame(&v, cases[i].frame, cases[i].type, cases[i].version,
              cases[i].version == 0 ? &TopicRecord_desc : NULL, &t);
        round_add(&r, cases[i].null_value ? NULL : &v);
        round_end(&r);
        meta_image *img;
        char err[256] = "";
        CHECK_EQ_INT(replay(&r, &img, err, sizeof err), -1);
        CHECK(strstr(err, cases[i].why) != NULL);
        CHECK(strstr(err, "offset 2") != NULL);
        meta_image_release(img);
        buf_free(&v);
        buf_free(&r.out);
    }
}

/* A record body with bytes left over, or cut short, is not applied. */
TEST(undecodable_body_stops_the_replay)
{
    rounds_t r = {0};
    buf_init(&r.out);
    round_begin(&r, 0);
    buf_t v;
    buf_init(&v);
    TopicRecord t = {.Name = kstr_from("cut")};
    frame(&v, META_FRAME_VERSION, META_REC_TOPIC, 0, &TopicRecord_desc, &t);
    v.len -= 5;
    round_add(&r, &v);
    round_end(&r);
    meta_image *img;
    char err[256] = "";
    CHECK_EQ_INT(replay(&r, &img, err, sizeof err), -1);
    CHECK(strstr(err, "undecodable body") != NULL);
    CHECK_EQ_INT(img->ntopics, 0);
    meta_image_release(img);
    buf_free(&v);
    buf_free(&r.out);
}
