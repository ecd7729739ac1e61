/* test_batch.c - record batch v2 validation, patching, iteration, building. */
#include "base/buf.h"
#include "base/crc32c.h"
#include "base/util.h"
#include "proto/batch.h"
#include "batch_oracle.h"
#include "test.h"

/* Builds one uncompressed batch of n records "k<i>" -> "value-<i>". */
static size_t build(buf_t *b, int n, int64_t ts)
{
    batch_builder_t bb;
    batch_build_begin(&bb, b, 0, 0, ts, -1, -1, -1);
    for (int i = 0; i < n; i++) {
        char k[16], v[32];
        int kl = snprintf(k, sizeof k, "k%d", i), vl = snprintf(v, sizeof v, "value-%d", i);
        batch_build_add(&bb, ts + i, k, kl, v, vl, NULL, 0);
    }
    return batch_build_end(&bb);
}

/* Re-seals the CRC after a test edits covered bytes. */
static void reseal(uint8_t *p, size_t n) { be32_store(p + BATCH_OFF_CRC, batch_crc_compute(p, n)); }

/* A batch written byte by byte from the Kafka spec equals the builder's. */
TEST(builder_matches_hand_encoding)
{
    buf_t hand, built;
    buf_init(&hand);
    buf_init(&built);
    /* one record: key "a", value "bc", no headers, ts delta 0 */
    uint8_t rec[] = {0x00 /* attrs */, 0x00 /* tsDelta */, 0x00 /* offDelta */, 0x02, 'a', 0x04, 'b', 'c',
                     0x00 /* headers */};
    buf_put_i64(&hand, 0);
    buf_put_i32(&hand, (int32_t)(BATCH_MIN_LENGTH + 1 + sizeof rec));
    buf_put_i32(&hand, -1);
    buf_put_u8(&hand, 2);
    buf_put_i32(&hand, 0); /* crc, below */
    buf_put_i16(&hand, 0);
    buf_put_i32(&hand, 0);
    buf_put_i64(&hand, 1000);
    buf_put_i64(&hand, 1000);
    buf_put_i64(&hand, -1);
    buf_put_i16(&hand, -1);
    buf_put_i32(&hand, -1);
    buf_put_i32(&hand, 1);
    buf_put_u8(&hand, (uint8_t)(sizeof rec << 1)); /* zigzag varint length */
    buf_put(&hand, rec, sizeof rec);
    be32_store(hand.data + 17, crc32c(0, hand.data + 21, hand.len - 21));

    batch_builder_t bb;
    batch_build_begin(&bb, &built, 0, 0, 1000, -1, -1, -1);
    batch_build_add(&bb, 1000, "a", 1, "bc", 2, NULL, 0);
    size_t n = batch_build_end(&bb);
    CHECK_EQ_INT(n, hand.len);
    CHECK(n == hand.len && memcmp(hand.data, built.data, n) == 0);
    batch_info_t info;
    CHECK_EQ_INT(batch_check(built.data, built.len, &info), BATCH_OK);
    buf_free(&hand);
    buf_free(&built);
}

/* A valid batch passes and its header fields are reported. */
TEST(valid_batch_info)
{
    buf_t b;
    buf_init(&b);
    batch_builder_t bb;
    batch_build_begin(&bb, &b, 0, BATCH_ATTR_TRANSACTIONAL, 5000, 42, 3, 7);
    batch_build_add(&bb, 5000, "k", 1, "v", 1, NULL, 0);
    batch_build_add(&bb, 5009, NULL, -1, "v2", 2, NULL, 0);
    batch_build_add(&bb, 5003, "k3", 2, NULL, -1, NULL, 0);
    batch_build_end(&bb);
    batch_info_t info[4];
    batch_summary_t sum;
    CHECK_EQ_INT(batch_validate(b.data, b.len, NULL, info, 4, &sum, NULL), BATCH_OK);
    CHECK_EQ_INT(sum.batches, 1);
    CHECK_EQ_INT(sum.records, 3);
    CHECK_EQ_INT(sum.max_timestamp, 5009);
    CHECK_EQ_INT(info[0].records_count, 3);
    CHECK_EQ_INT(info[0].last_offset_delta, 2);
    CHECK_EQ_INT(info[0].producer_id, 42);
    CHECK_EQ_INT(info[0].producer_epoch, 3);
    CHECK_EQ_INT(info[0].base_sequence, 7);
    CHECK(info[0].transactional && !info[0].control);
    CHECK_EQ_INT(info[0].codec, BATCH_CODEC_NONE);
    CHECK_EQ_INT(info[0].size, b.len);
    buf_free(&b);
}

/* A flipped byte anywhere under the CRC is CORRUPT (BATCH_ERR_CRC). */
TEST(bad_crc)
{
    buf_t b;
    buf_init(&b);
    build(&b, 3, 1000);
    batch_info_t info;
    for (size_t i = BATCH_CRC_START; i < b.len; i += 7) {
        b.data[i] ^= 0x40;
        CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_ERR_CRC);
        b.data[i] ^= 0x40;
    }
    CHECK_EQ_INT(batch_err_kafka_code(BATCH_ERR_CRC), 2);
    buf_free(&b);
}

/* Every strict prefix of a batch is rejected as short. */
TEST(truncated)
{
    buf_t b;
    buf_init(&b);
    build(&b, 2, 1000);
    batch_info_t info;
    for (size_t n = 0; n < b.len; n++) {
        enum batch_err e = batch_check(b.data, n, &info);
        CHECK(e == BATCH_ERR_SHORT);
    }
    CHECK_EQ_INT(batch_validate(b.data, 0, NULL, NULL, 0, NULL, NULL), BATCH_ERR_EMPTY);
    buf_free(&b);
}

/* Magic 0/1 are unsupported; other magics and bad lengths are corrupt. */
TEST(bad_magic_and_length)
{
    buf_t b;
    buf_init(&b);
    build(&b, 1, 1000);
    batch_info_t info;
    b.data[BATCH_OFF_MAGIC] = 1;
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_ERR_OLD_MAGIC);
    CHECK_EQ_INT(batch_err_kafka_code(BATCH_ERR_OLD_MAGIC), 43);
    b.data[BATCH_OFF_MAGIC] = 3;
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_ERR_MAGIC);
    b.data[BATCH_OFF_MAGIC] = 2;
    be32_store(b.data + BATCH_OFF_LENGTH, 10);
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_ERR_LENGTH);
    be32_store(b.data + BATCH_OFF_LENGTH, 0x80000000u);
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_ERR_LENGTH);
    buf_free(&b);
}

/* recordsCount and lastOffsetDelta must agree with each other and the records. */
TEST(inconsistent_counts)
{
    buf_t b;
    buf_init(&b);
    build(&b, 3, 1000);
    batch_info_t info;
    be32_store(b.data + BATCH_OFF_RECORDS_COUNT, 2);
    reseal(b.data, b.len);
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_ERR_COUNT);
    be32_store(b.data + BATCH_OFF_LAST_OFFSET_DELTA, 1);
    reseal(b.data, b.len);
    /* header consistent (2 records) but the records hold 3 */
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_ERR_COUNT);
    be32_store(b.data + BATCH_OFF_RECORDS_COUNT, 0);
    be32_store(b.data + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)-1);
    reseal(b.data, b.len);
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_ERR_COUNT);
    CHECK_EQ_INT(batch_err_kafka_code(BATCH_ERR_COUNT), 87);
    buf_free(&b);
}

/* Records whose offsetDelta is not their index, or whose lengths overrun, fail. */
TEST(bad_records)
{
    buf_t b;
    buf_init(&b);
    build(&b, 1, 1000);
    batch_info_t info;
    /* record: len varint (1 byte), attrs, tsDelta (0), offsetDelta */
    size_t od = BATCH_HEADER_BYTES + 1 + 1 + 1;
    CHECK_EQ_INT(b.data[od], 0);
    b.data[od] = 2; /* zigzag(1) */
    reseal(b.data, b.len);
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_ERR_OFFSET_DELTA);
    b.data[od] = 0;
    b.data[od + 1] = 0x7e; /* key length 63: past the record */
    reseal(b.data, b.len);
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_ERR_RECORD);
    b.data[od + 1] = 0x03; /* key length -2 */
    reseal(b.data, b.len);
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_ERR_RECORD);
    buf_free(&b);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A random batch: null and empty keys and values, headers, long varints. */
static void random_batch(buf_t *b, uint64_t *s)
{
    static const char fill[400] = {0};
    batch_builder_t bb;
    batch_build_begin(&bb, b, 0, 0, 1000, -1, -1, -1);
    int n = 1 + (int)(xorshift(s) % 6);
    for (int i = 0; i < n; i++) {
        batch_header_kv_t h[3];
        int hc = (int)(xorshift(s) % 4);
        for (int j = 0; j < hc; j++)
            h[j] = (batch_header_kv_t){"h", (int32_t)(xorshift(s) % 2), fill, (int32_t)(xorshift(s) % 300) - 1};
        int32_t kl = (int32_t)(xorshift(s) % 5) - 1, vl = (int32_t)(xorshift(s) % 400) - 1;
        int64_t ts = 1000 + (int64_t)(xorshift(s) % 3 == 0 ? xorshift(s) % (1ULL << 40) : xorshift(s) % 100);
        batch_build_add(&bb, ts, kl < 0 ? NULL : fill, kl, vl < 0 ? NULL : fill, vl, h, hc);
    }
    batch_build_end(&bb);
}

/* The in-place record walk gives batch_iter's verdict on mutated batches. */
TEST(record_walk_matches_iterator)
{
    uint64_t s = 0x1234567;
    int verdicts[BATCH_ERR__COUNT] = {0};
    for (int iter = 0; iter < 20000; iter++) {
        buf_t b;
        buf_init(&b);
        random_batch(&b, &s);
        size_t body = b.len - BATCH_HEADER_BYTES;
        int flips = (int)(xorshift(&s) % 4);
        for (int f = 0; f < flips; f++) { /* bytes in the records, never the header */
            size_t at = BATCH_HEADER_BYTES + (size_t)(xorshift(&s) % body);
            b.data[at] = (uint8_t)(xorshift(&s) % 3 == 0 ? 0xff : xorshift(&s));
        }
        if (xorshift(&s) % 5 == 0) /* a records count that disagrees, even a negative one */
            be32_store(b.data + BATCH_OFF_RECORDS_COUNT, (uint32_t)(xorshift(&s) % 9) - 1);
        batch_info_t info;
        REQUIRE(batch_parse_header(b.data, b.len, &info) == BATCH_OK);
        enum batch_err want = iter_verdict(b.data, &info);
        CHECK_EQ_INT(batch_check_records(b.data, &info), want);
        verdicts[want]++;
        buf_free(&b);
    }
    /* every verdict was reached, so the comparison covered them all */
    CHECK(verdicts[BATCH_OK] > 0 && verdicts[BATCH_ERR_RECORD] > 0);
    CHECK(verdicts[BATCH_ERR_OFFSET_DELTA] > 0 && verdicts[BATCH_ERR_COUNT] > 0);
}

/* Several batches in one payload are all checked and summarised; limits apply. */
TEST(multiple_batches_and_limits)
{
    buf_t b;
    buf_init(&b);
    size_t n1 = build(&b, 2, 1000);
    build(&b, 5, 2000);
    batch_info_t info[2];
    batch_summary_t sum;
    CHECK_EQ_INT(batch_validate(b.data, b.len, NULL, info, 2, &sum, NULL), BATCH_OK);
    CHECK_EQ_INT(sum.batches, 2);
    CHECK_EQ_INT(sum.records, 7);
    CHECK_EQ_INT(sum.offsets, 7);
    CHECK_EQ_INT(sum.max_timestamp, 2004);
    CHECK(info[1].data == b.data + n1);
    CHECK_EQ_INT(batch_validate(b.data, b.len, NULL, info, 1, NULL, NULL), BATCH_ERR_TOO_MANY);
    batch_limits_t lim = {.max_batches = 1};
    CHECK_EQ_INT(batch_validate(b.data, b.len, &lim, NULL, 0, NULL, NULL), BATCH_ERR_TOO_MANY);
    lim = (batch_limits_t){.max_batch_bytes = (uint32_t)n1};
    size_t pos;
    CHECK_EQ_INT(batch_validate(b.data, b.len, &lim, NULL, 0, NULL, &pos), BATCH_ERR_TOO_LARGE);
    CHECK_EQ_INT(pos, n1);
    /* trailing garbage after a good batch */
    CHECK_EQ_INT(batch_validate(b.data, n1 + 5, NULL, NULL, 0, NULL, &pos), BATCH_ERR_SHORT);
    CHECK_EQ_INT(pos, n1);
    buf_free(&b);
}

/* Compressed batches are trusted past the header; unknown codecs are rejected. */
TEST(compressed_and_codec)
{
    buf_t b;
    buf_init(&b);
    build(&b, 4, 1000);
    batch_info_t info;
    be16_store(b.data + BATCH_OFF_ATTRIBUTES, BATCH_CODEC_ZSTD);
    b.data[BATCH_HEADER_BYTES] ^= 0xff; /* opaque payload */
    reseal(b.data, b.len);
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_OK);
    CHECK_EQ_INT(info.codec, BATCH_CODEC_ZSTD);
    CHECK(strcmp(batch_codec_name(info.codec), "zstd") == 0);
    be32_store(b.data + BATCH_OFF_RECORDS_COUNT, 5);
    reseal(b.data, b.len);
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_ERR_COUNT);
    be32_store(b.data + BATCH_OFF_RECORDS_COUNT, 4);
    be16_store(b.data + BATCH_OFF_ATTRIBUTES, 5);
    reseal(b.data, b.len);
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_ERR_CODEC);
    buf_free(&b);
}

/* Patching base offset and leader epoch leaves the CRC valid; LogAppendTime reseals. */
TEST(patch_fields)
{
    buf_t b;
    buf_init(&b);
    build(&b, 3, 1000);
    batch_info_t info;
    batch_set_base_offset(b.data, 123456789012LL);
    batch_set_leader_epoch(b.data, 77);
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_OK);
    CHECK_EQ_INT(info.base_offset, 123456789012LL);
    CHECK_EQ_INT(info.leader_epoch, 77);
    CHECK_EQ_INT(batch_info_last_offset(&info), 123456789014LL);
    batch_set_log_append_time(b.data, b.len, 99999);
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_OK);
    CHECK(info.log_append_time);
    CHECK_EQ_INT(info.max_timestamp, 99999);
    buf_free(&b);
}

/* The iterator returns keys, values, nulls, headers and absolute offsets/timestamps. */
TEST(iterate_records)
{
    buf_t b;
    buf_init(&b);
    batch_builder_t bb;
    batch_header_kv_t h[2] = {{"h1", 2, "x", 1}, {"h2", 2, NULL, -1}};
    batch_build_begin(&bb, &b, 100, 0, 1000, -1, -1, -1);
    batch_build_add(&bb, 1000, "key", 3, "value", 5, h, 2);
    batch_build_add(&bb, 990, NULL, -1, NULL, -1, NULL, 0);
    batch_build_end(&bb);
    batch_iter_t it;
    batch_record_t r;
    REQUIRE(batch_iter_init(&it, b.data, b.len));
    REQUIRE(batch_iter_next(&it, &r));
    CHECK_EQ_INT(r.offset, 100);
    CHECK_EQ_INT(r.timestamp, 1000);
    CHECK(r.key_len == 3 && memcmp(r.key, "key", 3) == 0);
    CHECK(r.value_len == 5 && memcmp(r.value, "value", 5) == 0);
    CHECK_EQ_INT(r.header_count, 2);
    CHECK(r.headers_len > 0);
    REQUIRE(batch_iter_next(&it, &r));
    CHECK_EQ_INT(r.offset, 101);
    CHECK_EQ_INT(r.timestamp, 990);
    CHECK(r.key == NULL && r.key_len == -1 && r.value == NULL && r.value_len == -1);
    CHECK(!batch_iter_next(&it, &r));
    CHECK(!it.failed);
    batch_info_t info;
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_OK);
    CHECK_EQ_INT(info.max_timestamp, 1000);
    buf_free(&b);
}

/* The stored-data check allows compaction gaps but not more records than offsets. */
TEST(stored_check)
{
    buf_t b;
    buf_init(&b);
    build(&b, 2, 1000);
    batch_info_t info;
    be32_store(b.data + BATCH_OFF_LAST_OFFSET_DELTA, 5);
    reseal(b.data, b.len);
    CHECK_EQ_INT(batch_check_stored(b.data, b.len, &info), BATCH_OK);
    CHECK_EQ_INT(batch_check(b.data, b.len, &info), BATCH_ERR_COUNT);
    be32_store(b.data + BATCH_OFF_LAST_OFFSET_DELTA, 0);
    reseal(b.data, b.len);
    CHECK_EQ_INT(batch_check_stored(b.data, b.len, &info), BATCH_ERR_COUNT);
    CHECK(strlen(batch_strerror(BATCH_ERR_COUNT)) > 0);
    buf_free(&b);
}
