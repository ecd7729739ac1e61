/*
 * test_proto.c - the Kafka codec against hand-checked byte vectors, and its
 * error exits: each malformed input must fail cleanly and name the field.
 */
#include <ctype.h>

#include "proto/proto.h"
#include "test.h"

/* "0012 0003 ff" -> bytes; returns the length. */
static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (*s) {
        if (isspace((unsigned char)*s) || *s == '|') {
            s++;
            continue;
        }
        unsigned v;
        if (n >= cap || sscanf(s, "%2x", &v) != 1)
            abort();
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

static bool bytes_eq_hex(const buf_t *b, const char *hex)
{
    uint8_t want[512];
    size_t n = unhex(hex, want, sizeof want);
    if (b->len != n || memcmp(b->data, want, n) != 0) {
        fprintf(stderr, "  got  ");
        for (size_t i = 0; i < b->len; i++)
            fprintf(stderr, "%02x", b->data[i]);
        fprintf(stderr, "\n  want %s\n", hex);
        return false;
    }
    return true;
}

/* Decodes hex as d at version; returns proto_decode's result. */
static int decode_hex(const proto_struct_desc *d, int16_t v, const char *hex, arena_t *a,
                      void *out, proto_err_t *err, size_t *left)
{
    static uint8_t bytes[1024];
    size_t n = unhex(hex, bytes, sizeof bytes);
    rd_t r;
    rd_init(&r, bytes, n);
    int rc = proto_decode(d, v, proto_flexible(d, v), &r, a, out, err);
    if (left)
        *left = rd_left(&r);
    return rc;
}

static bool err_is(const proto_err_t *e, const char *field, const char *reason_part)
{
    char msg[PROTO_ERR_MSG_MAX];
    proto_err_format(e, msg, sizeof msg);
    bool ok = strcmp(e->field, field) == 0 && strstr(e->reason, reason_part) != NULL;
    if (!ok)
        fprintf(stderr, "  error was: %s\n", msg);
    return ok;
}

/* An ApiVersions v3 request: header v2 (classic client id + tags), compact body. */
TEST(api_versions_v3_request)
{
    static const char hex[] = "0012 0003 00000007 0003 636c69 00 | 05 6b636174 04 312e37 00";
    uint8_t bytes[64];
    size_t n = unhex(hex, bytes, sizeof bytes);
    arena_t a;
    arena_init(&a);
    rd_t r;
    rd_init(&r, bytes, n);
    proto_req_header_t h;
    proto_err_t err;
    REQUIRE(proto_request_header_decode(&r, &a, &h, &err) == 0);
    CHECK_EQ_INT(h.api_key, 18);
    CHECK_EQ_INT(h.api_version, 3);
    CHECK_EQ_INT(h.correlation_id, 7);
    CHECK_EQ_INT(h.header_version, 2);
    CHECK(h.flexible && h.version_ok);
    CHECK(kstr_eq(h.client_id, "cli"));
    ApiVersionsRequest req;
    REQUIRE(proto_request_body_decode(&h, &r, &a, &req, &err) == 0);
    CHECK_EQ_INT(rd_left(&r), 0);
    CHECK(kstr_eq(req.ClientSoftwareName, "kcat"));
    CHECK(kstr_eq(req.ClientSoftwareVersion, "1.7"));

    buf_t w;
    buf_init(&w);
    proto_request_encode(18, 3, 7, kstr_from("cli"), &req, &w);
    CHECK(bytes_eq_hex(&w, hex));
    buf_free(&w);
    arena_free(&a);
}

/* A Metadata v1 request: header v1, classic arrays and strings. */
TEST(metadata_v1_request)
{
    static const char hex[] = "0003 0001 0000002a 0002 636b | 00000002 0003 666f6f 0001 62";
    uint8_t bytes[64];
    size_t n = unhex(hex, bytes, sizeof bytes);
    arena_t a;
    arena_init(&a);
    rd_t r;
    rd_init(&r, bytes, n);
    proto_req_header_t h;
    proto_err_t err;
    REQUIRE(proto_request_header_decode(&r, &a, &h, &err) == 0);
    CHECK_EQ_INT(h.header_version, 1);
    CHECK(!h.flexible);
    CHECK_EQ_INT(h.correlation_id, 42);
    MetadataRequest m;
    REQUIRE(proto_request_body_decode(&h, &r, &a, &m, &err) == 0);
    REQUIRE(m.Topics.count == 2);
    CHECK(kstr_eq(m.Topics.items[0].Name, "foo"));
    CHECK(kstr_eq(m.Topics.items[1].Name, "b"));
    CHECK(m.AllowAutoTopicCreation); /* absent in v1: schema default true */

    buf_t w;
    buf_init(&w);
    proto_request_encode(3, 1, 42, kstr_from("ck"), &m, &w);
    CHECK(bytes_eq_hex(&w, hex));
    CHECK_EQ_INT(proto_size(&MetadataRequest_desc, 1, false, &m), 12);
    buf_free(&w);
    arena_free(&a);
}

/* Null arrays: allowed in Metadata v1 ("all topics"), refused in v0. */
TEST(null_arrays)
{
    arena_t a;
    arena_init(&a);
    MetadataRequest m;
    proto_err_t err;
    REQUIRE(decode_hex(&MetadataRequest_desc, 1, "ffffffff", &a, &m, &err, NULL) == 0);
    CHECK_EQ_INT(m.Topics.count, -1);
    CHECK(m.Topics.items == NULL);
    REQUIRE(decode_hex(&MetadataRequest_desc, 9, "00 01 00 00 00", &a, &m, &err, NULL) == 0);
    CHECK_EQ_INT(m.Topics.count, -1); /* compact: 0 is null */

    CHECK(decode_hex(&MetadataRequest_desc, 0, "ffffffff", &a, &m, &err, NULL) < 0);
    CHECK(err_is(&err, "Topics", "null array where not nullable"));
    CHECK_EQ_INT(err.api_key, 3);
    CHECK_EQ_INT(err.offset, 0);

    buf_t w;
    buf_init(&w);
    m.Topics.count = -1;
    proto_encode(&MetadataRequest_desc, 9, true, &m, &w);
    CHECK(bytes_eq_hex(&w, "00 01 00 00 00"));
    buf_reset(&w);
    proto_encode(&MetadataRequest_desc, 0, false, &m, &w); /* null not allowed: empty */
    CHECK(bytes_eq_hex(&w, "00000000"));
    buf_free(&w);
    arena_free(&a);
}

/* Tagged fields: a known one is decoded and written only when not default;
 * an unknown one is skipped. */
TEST(tagged_fields)
{
    arena_t a;
    arena_init(&a);
    ApiVersionsResponse resp;
    proto_set_defaults(&ApiVersionsResponse_desc, 3, &resp);
    CHECK_EQ_INT(resp.FinalizedFeaturesEpoch, -1);
    ApiVersionsResponse_ApiVersion key = {.ApiKey = 18, .MinVersion = 0, .MaxVersion = 3};
    resp.ApiKeys.count = 1;
    resp.ApiKeys.items = &key;
    buf_t w;
    buf_init(&w);
    proto_encode(&ApiVersionsResponse_desc, 3, true, &resp, &w);
    CHECK(bytes_eq_hex(&w, "0000 02 0012 0000 0003 00 00000000 00"));
    buf_reset(&w);
    resp.FinalizedFeaturesEpoch = 5;
    proto_encode(&ApiVersionsResponse_desc, 3, true, &resp, &w);
    CHECK(bytes_eq_hex(&w, "0000 02 0012 0000 0003 00 00000000 01 01 08 0000000000000005"));
    CHECK_EQ_INT(proto_size(&ApiVersionsResponse_desc, 3, true, &resp), w.len);

    ApiVersionsResponse back;
    proto_err_t err;
    size_t left;
    /* tags 1 (known) and 9 (unknown, 2 bytes) */
    REQUIRE(decode_hex(&ApiVersionsResponse_desc, 3,
                       "0000 02 0012 0000 0003 00 00000000 02 01 08 0000000000000005 09 02 abcd",
                       &a, &back, &err, &left) == 0);
    CHECK_EQ_INT(left, 0);
    CHECK_EQ_INT(back.FinalizedFeaturesEpoch, 5);
    CHECK(!back.ZkMigrationReady);
    CHECK_EQ_INT(back.SupportedFeatures.count, 0);
    CHECK(proto_equal(&ApiVersionsResponse_desc, &resp, &back));

    /* a known tag whose declared size is larger than its value */
    CHECK(decode_hex(&ApiVersionsResponse_desc, 3, "0000 01 00000000 01 03 02 0100", &a, &back,
                     &err, NULL) < 0);
    CHECK(err_is(&err, "", "tagged field ZkMigrationReady: 1 of 2 bytes left over"));
    /* an unknown tag running past the end */
    CHECK(decode_hex(&ApiVersionsResponse_desc, 3, "0000 01 00000000 01 09 05 00", &a, &back,
                     &err, NULL) < 0);
    CHECK(err_is(&err, "", "size 5 exceeds bytes left"));
    buf_free(&w);
    arena_free(&a);
}

/* Compact strings: length + 1, 0 null, only where nullable. */
TEST(compact_strings)
{
    arena_t a;
    arena_init(&a);
    ApiVersionsRequest req;
    proto_err_t err;
    REQUIRE(decode_hex(&ApiVersionsRequest_desc, 3, "01 01 00", &a, &req, &err, NULL) == 0);
    CHECK_EQ_INT(req.ClientSoftwareName.len, 0);
    CHECK(req.ClientSoftwareName.ptr != NULL);
    CHECK(decode_hex(&ApiVersionsRequest_desc, 3, "00 01 00", &a, &req, &err, NULL) < 0);
    CHECK(err_is(&err, "ClientSoftwareName", "null string where not nullable"));
    CHECK(decode_hex(&ApiVersionsRequest_desc, 3, "05 6b63 00", &a, &req, &err, NULL) < 0);
    CHECK(err_is(&err, "ClientSoftwareName", "length 4 exceeds bytes left (3)"));
    /* a 6-byte varint */
    CHECK(decode_hex(&ApiVersionsRequest_desc, 3, "8080808080 01 00", &a, &req, &err, NULL) < 0);
    CHECK(err_is(&err, "ClientSoftwareName", "bad or oversize varint"));
    /* a string over 32767 bytes */
    CHECK(decode_hex(&ApiVersionsRequest_desc, 3, "81 80 02 00", &a, &req, &err, NULL) < 0);
    CHECK(err_is(&err, "ClientSoftwareName", "string length 32768 over 32767"));
    arena_free(&a);
}

/* A huge array count in a small buffer fails before any allocation and the
 * message names the element path. */
TEST(huge_array_count)
{
    arena_t a;
    arena_init(&a);
    ProduceRequest p;
    proto_err_t err;
    CHECK(decode_hex(&ProduceRequest_desc, 8,
                     "ffff 0001 000003e8 00000001 0001 74 7fffffff 000000000000000000000000",
                     &a, &p, &err, NULL) < 0);
    CHECK(err_is(&err, "TopicData[0].PartitionData", "array count 2147483647 exceeds bytes left (12)"));
    CHECK_EQ_INT(err.offset, 15); /* where the count starts */
    CHECK(a.total <= 64); /* only the one topic element was allocated */
    char msg[PROTO_ERR_MSG_MAX];
    proto_err_format(&err, msg, sizeof msg);
    CHECK(strcmp(msg, "ProduceRequest v8: field TopicData[0].PartitionData: array count "
                      "2147483647 exceeds bytes left (12) at offset 15") == 0);
    /* compact: uvarint 2^31 = count 2^31 - 1 */
    CHECK(decode_hex(&ProduceRequest_desc, 9, "00 0001 000003e8 02 02 74 8080808008 00", &a, &p,
                     &err, NULL) < 0);
    CHECK(err_is(&err, "TopicData[0].PartitionData", "array count 2147483647 exceeds bytes left (1)"));
    /* negative classic count */
    CHECK(decode_hex(&ProduceRequest_desc, 8, "ffff 0001 000003e8 fffffffe", &a, &p, &err, NULL) < 0);
    CHECK(err_is(&err, "TopicData", "negative length -2"));
    arena_free(&a);
}

/* Truncation anywhere fails cleanly; every prefix of a valid message fails. */
TEST(truncated)
{
    static const char hex[] = "ffff 0001 000003e8 00000001 0001 74 00000001 00000000 00000003 616263";
    uint8_t bytes[64];
    size_t n = unhex(hex, bytes, sizeof bytes);
    arena_t a;
    arena_init(&a);
    ProduceRequest p;
    proto_err_t err;
    rd_t r;
    rd_init(&r, bytes, n);
    REQUIRE(proto_decode(&ProduceRequest_desc, 8, false, &r, &a, &p, &err) == 0);
    CHECK_EQ_INT(p.TopicData.items[0].PartitionData.items[0].Records.len, 3);
    for (size_t k = 0; k < n; k++) {
        rd_init(&r, bytes, k);
        CHECK(proto_decode(&ProduceRequest_desc, 8, false, &r, &a, &p, &err) < 0);
    }
    rd_init(&r, bytes, n - 1);
    CHECK(proto_decode(&ProduceRequest_desc, 8, false, &r, &a, &p, &err) < 0);
    CHECK(err_is(&err, "TopicData[0].PartitionData[0].Records", "length 3 exceeds bytes left (2)"));
    rd_init(&r, bytes, 3);
    CHECK(proto_decode(&ProduceRequest_desc, 8, false, &r, &a, &p, &err) < 0);
    CHECK(err_is(&err, "Acks", "truncated"));
    arena_free(&a);
}

/* Null strings: only in nullable versions. */
TEST(null_string_not_nullable)
{
    arena_t a;
    arena_init(&a);
    ProduceRequest p;
    proto_err_t err;
    CHECK(decode_hex(&ProduceRequest_desc, 3, "ffff 0001 000003e8 00000001 ffff 00000000", &a, &p,
                     &err, NULL) < 0);
    CHECK(err_is(&err, "TopicData[0].Name", "null string where not nullable"));
    REQUIRE(decode_hex(&ProduceRequest_desc, 3, "ffff 0001 000003e8 00000000", &a, &p, &err, NULL) == 0);
    CHECK(kstr_is_null(p.TransactionalId));
    arena_free(&a);
}

/* Versions outside the schema's range are refused. */
TEST(unsupported_version)
{
    arena_t a;
    arena_init(&a);
    ProduceRequest p;
    proto_err_t err;
    CHECK(decode_hex(&ProduceRequest_desc, 12, "", &a, &p, &err, NULL) < 0);
    CHECK(err_is(&err, "", "unsupported version (valid 0-11)"));
    arena_free(&a);
}

/* Header versions: ControlledShutdown v0 has no client id; unknown keys fail;
 * unsupported versions decode with version_ok false. */
TEST(request_headers)
{
    uint8_t bytes[32];
    arena_t a;
    arena_init(&a);
    proto_req_header_t h;
    proto_err_t err;
    rd_t r;
    size_t n = unhex("0007 0000 00000005 00000009", bytes, sizeof bytes);
    rd_init(&r, bytes, n);
    REQUIRE(proto_request_header_decode(&r, &a, &h, &err) == 0);
    CHECK_EQ_INT(h.header_version, 0);
    CHECK(kstr_is_null(h.client_id));
    CHECK_EQ_INT(rd_left(&r), 4);

    n = unhex("03e7 0000 00000005 0000", bytes, sizeof bytes);
    rd_init(&r, bytes, n);
    CHECK(proto_request_header_decode(&r, &a, &h, &err) < 0);
    CHECK(err_is(&err, "", "unknown api key 999"));
    CHECK_EQ_INT(h.correlation_id, 5);

    n = unhex("0012 0063 00000005 ffff 00", bytes, sizeof bytes);
    rd_init(&r, bytes, n);
    REQUIRE(proto_request_header_decode(&r, &a, &h, &err) == 0);
    CHECK(!h.version_ok && h.flexible);
    CHECK_EQ_INT(h.header_version, 2);

    n = unhex("00", bytes, sizeof bytes);
    rd_init(&r, bytes, n);
    CHECK(proto_request_header_decode(&r, &a, &h, &err) < 0);
    CHECK(err_is(&err, "", "truncated request header"));
    arena_free(&a);
}

/* Response headers: v0, v1 with tags when flexible, v0 for ApiVersions. */
TEST(response_headers)
{
    buf_t w;
    buf_init(&w);
    proto_response_header_encode(18, 3, 7, &w);
    CHECK(bytes_eq_hex(&w, "00000007"));
    buf_reset(&w);
    proto_response_header_encode(3, 9, 7, &w);
    CHECK(bytes_eq_hex(&w, "00000007 00"));
    buf_reset(&w);
    proto_response_header_encode(3, 8, 7, &w);
    CHECK(bytes_eq_hex(&w, "00000007"));
    arena_t a;
    arena_init(&a);
    rd_t r;
    uint8_t bytes[] = {0, 0, 0, 9, 0};
    rd_init(&r, bytes, sizeof bytes);
    int32_t corr = 0;
    proto_err_t err;
    REQUIRE(proto_response_header_decode(&r, &a, 3, 9, &corr, &err) == 0);
    CHECK_EQ_INT(corr, 9);
    CHECK_EQ_INT(rd_left(&r), 0);
    buf_free(&w);
    arena_free(&a);
}

/* Nullable structs: an int8 presence byte, or a varint inside a tagged field. */
TEST(nullable_struct)
{
    arena_t a;
    arena_init(&a);
    DescribeTopicPartitionsRequest q;
    proto_set_defaults(&DescribeTopicPartitionsRequest_desc, 0, &q);
    CHECK(q.Cursor == NULL);
    CHECK_EQ_INT(q.ResponsePartitionLimit, 2000);
    buf_t w;
    buf_init(&w);
    proto_encode(&DescribeTopicPartitionsRequest_desc, 0, true, &q, &w);
    CHECK(bytes_eq_hex(&w, "01 000007d0 ff 00"));
    DescribeTopicPartitionsRequest_Cursor cur = {.TopicName = KSTR_LIT("t"), .PartitionIndex = 3};
    q.Cursor = &cur;
    buf_reset(&w);
    proto_encode(&DescribeTopicPartitionsRequest_desc, 0, true, &q, &w);
    CHECK(bytes_eq_hex(&w, "01 000007d0 01 0274 00000003 00 00"));
    DescribeTopicPartitionsRequest back;
    proto_err_t err;
    rd_t r;
    rd_init(&r, w.data, w.len);
    REQUIRE(proto_decode(&DescribeTopicPartitionsRequest_desc, 0, true, &r, &a, &back, &err) == 0);
    REQUIRE(back.Cursor != NULL);
    CHECK_EQ_INT(back.Cursor->PartitionIndex, 3);
    CHECK(proto_equal(&DescribeTopicPartitionsRequest_desc, &q, &back));

    ConsumerGroupMemberMetadataValue mv;
    proto_set_defaults(&ConsumerGroupMemberMetadataValue_desc, 0, &mv);
    ConsumerGroupMemberMetadataValue_ClassicMemberMetadata cm;
    proto_set_defaults(&ConsumerGroupMemberMetadataValue_ClassicMemberMetadata_desc, 0, &cm);
    mv.ClassicMemberMetadata = &cm;
    buf_reset(&w);
    proto_encode(&ConsumerGroupMemberMetadataValue_desc, 0, true, &mv, &w);
    ConsumerGroupMemberMetadataValue mv2;
    rd_init(&r, w.data, w.len);
    REQUIRE(proto_decode(&ConsumerGroupMemberMetadataValue_desc, 0, true, &r, &a, &mv2, &err) == 0);
    CHECK(mv2.ClassicMemberMetadata != NULL);
    CHECK(proto_equal(&ConsumerGroupMemberMetadataValue_desc, &mv, &mv2));
    buf_free(&w);
    arena_free(&a);
}

/* Lookups: the api table, metadata record types, group keys. */
TEST(lookups)
{
    const proto_api_desc *api = proto_api(0);
    REQUIRE(api != NULL);
    CHECK(strcmp(api->name, "Produce") == 0);
    CHECK_EQ_INT(api->max_version, 11);
    CHECK_EQ_INT(api->flexible_min, 9);
    CHECK(api->request == &ProduceRequest_desc && api->response == &ProduceResponse_desc);
    CHECK(proto_api(-1) == NULL && proto_api(999) == NULL);
    CHECK(proto_request_flexible(18, 3) && !proto_request_flexible(18, 2));
    CHECK_EQ_INT(proto_request_header_version(7, 0), 0);
    CHECK_EQ_INT(proto_request_header_version(7, 1), 1);
    const proto_record_desc *rec = proto_metadata_record(2);
    REQUIRE(rec != NULL);
    CHECK(rec->desc == &TopicRecord_desc);
    const proto_record_desc *g = proto_group_record(1);
    REQUIRE(g != NULL);
    CHECK(g->desc == &OffsetCommitKey_desc && g->value == &OffsetCommitValue_desc);
    CHECK(proto_group_record(2)->desc == &GroupMetadataKey_desc);
    CHECK(proto_record_by_name("PartitionRecord")->type == 3);
    CHECK(proto_metadata_record(1000) == NULL);
}

/* Array counts are capped per decode even when the bytes are really there. */
TEST(item_limit)
{
    size_t count = (size_t)PROTO_DECODE_ITEMS_MAX + 1, n = 0;
    uint8_t *bytes = calloc(1, count + 64);
    REQUIRE(bytes != NULL);
    n += 4 + 2 + 16 + 4; /* ThrottleTimeMs, ErrorCode, ClientInstanceId, SubscriptionId */
    n += uvarint_put(bytes + n, count + 1);
    size_t at = 26;
    n += count;
    arena_t a;
    arena_init(&a);
    rd_t r;
    rd_init(&r, bytes, n + 16);
    GetTelemetrySubscriptionsResponse g;
    proto_err_t err;
    CHECK(proto_decode(&GetTelemetrySubscriptionsResponse_desc, 0, true, &r, &a, &g, &err) < 0);
    CHECK(err_is(&err, "AcceptedCompressionTypes", "over the decode item limit"));
    CHECK_EQ_INT(err.offset, at);
    CHECK(a.total == 0);
    arena_free(&a);
    free(bytes);
}

/* Building a response: arena structs and arrays start at schema defaults. */
TEST(build_helpers)
{
    arena_t a;
    arena_init(&a);
    MetadataResponse *m = proto_new(&a, &MetadataResponse_desc);
    CHECK_EQ_INT(m->ControllerId, -1);
    MetadataResponse_MetadataResponseTopic *t =
        proto_array_init(&a, &m->Topics, 2, sizeof *t, &MetadataResponse_MetadataResponseTopic_desc);
    REQUIRE(t == m->Topics.items);
    CHECK_EQ_INT(m->Topics.count, 2);
    CHECK_EQ_INT(t[1].TopicAuthorizedOperations, -2147483648LL);
    void *none = proto_array_init(&a, &m->Brokers, 0, sizeof(MetadataResponse_MetadataResponseBroker),
                                    &MetadataResponse_MetadataResponseBroker_desc);
    CHECK(none == NULL && m->Brokers.count == 0);
    buf_t w;
    buf_init(&w);
    proto_response_encode(3, 12, 1, m, &w);
    CHECK_EQ_INT(w.len, 5 + proto_size(&MetadataResponse_desc, 12, true, m));
    buf_free(&w);
    arena_free(&a);
}

typedef struct holes_seen {
    int n;
    size_t pos[4], len[4];
} holes_seen;

static void note_hole(void *arg, size_t pos, size_t len)
{
    holes_seen *h = arg;
    h->pos[h->n] = pos;
    h->len[h->n++] = len;
}

/* Zero-copy records: a records field with no bytes but a length is left to
 * the callback at the right offset, and proto_size still counts it. */
TEST(records_holes)
{
    arena_t a;
    arena_init(&a);
    FetchResponse *f = proto_new(&a, &FetchResponse_desc);
    FetchResponse_FetchableTopicResponse *t =
        proto_array_init(&a, &f->Responses, 1, sizeof *t, &FetchResponse_FetchableTopicResponse_desc);
    t->Topic = KSTR_LIT("t");
    FetchResponse_PartitionData *p =
        proto_array_init(&a, &t->Partitions, 2, sizeof *p, &FetchResponse_PartitionData_desc);
    p[0].Records = (kbytes_t){NULL, 1000};
    p[1].Records = (kbytes_t){(const uint8_t *)"abc", 3};
    buf_t w;
    buf_init(&w);
    holes_seen h = {0};
    proto_response_encode_holes(1, 11, 5, f, &w, note_hole, &h);
    REQUIRE(h.n == 1);
    CHECK_EQ_INT(h.len[0], 1000);
    size_t body = proto_size(&FetchResponse_desc, 11, false, f);
    CHECK_EQ_INT(w.len + 1000, 4 + body);
    CHECK(memcmp(w.data + h.pos[0] - 4, "\0\0\003\350", 4) == 0); /* int32 length 1000 */
    CHECK(memcmp(w.data + w.len - 3, "abc", 3) == 0);
    buf_free(&w);
    arena_free(&a);
}
