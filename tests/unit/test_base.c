/* Unit tests for src/base: buffers, varints, CRC32C, arena. */
#include "test.h"

#include "base/arena.h"
#include "base/buf.h"
#include "base/crc32c.h"
#include "base/util.h"

/* The check value of CRC-32C, on both the hardware and software paths. */
TEST(crc32c_check_value)
{
    CHECK_EQ_INT(crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ_INT(crc32c_sw(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ_INT(crc32c(0, "", 0), 0);
}

/* Hardware and software CRC agree on every length and alignment, and extend incrementally. */
TEST(crc32c_paths_agree)
{
    static uint8_t data[20000];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof data; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (uint8_t)(x >> 16);
    }
    /* short inputs, and long ones that take the three-stream path */
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= sizeof data; n += n < 1000 ? 37 : 997)
            CHECK_EQ_INT(crc32c(0, data + off, n), crc32c_sw(0, data + off, n));
    CHECK_EQ_INT(crc32c(0xdeadbeef, data, sizeof data), crc32c_sw(0xdeadbeef, data, sizeof data));
    uint32_t whole = crc32c(0, data, sizeof data);
    uint32_t part = crc32c(crc32c(0, data, 333), data + 333, sizeof data - 333);
    CHECK_EQ_INT(whole, part);
}

/* Unsigned varints round-trip at every length boundary and have the protobuf sizes. */
TEST(uvarint_roundtrip)
{
    uint64_t vals[] = {0, 1, 127, 128, 16383, 16384, (1u << 21) - 1, 1u << 21, UINT32_MAX,
                       (uint64_t)1 << 35, UINT64_MAX};
    size_t sizes[] = {1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 10};
    for (size_t i = 0; i < ARRAY_LEN(vals); i++) {
        buf_t b;
        buf_init(&b);
        buf_put_uvarint(&b, vals[i]);
        CHECK_EQ_INT(b.len, sizes[i]);
        CHECK_EQ_INT(uvarint_size(vals[i]), sizes[i]);
        rd_t r;
        rd_init(&r, b.data, b.len);
        uint64_t v = 0;
        CHECK(rd_uvarint(&r, &v));
        CHECK(v == vals[i]);
        CHECK_EQ_INT(rd_left(&r), 0);
        buf_free(&b);
    }
}

/* Zigzag varints: Kafka's examples (0->0, -1->1, 1->2, -2->3) and the extremes. */
TEST(varint_zigzag)
{
    CHECK_EQ_INT(zigzag32(0), 0);
    CHECK_EQ_INT(zigzag32(-1), 1);
    CHECK_EQ_INT(zigzag32(1), 2);
    CHECK_EQ_INT(zigzag32(-2), 3);
    int32_t v32[] = {0, -1, 1, INT32_MIN, INT32_MAX, -64, 64};
    for (size_t i = 0; i < ARRAY_LEN(v32); i++) {
        buf_t b;
        buf_init(&b);
        buf_put_varint(&b, v32[i]);
        CHECK_EQ_INT(b.len, varint_size(v32[i]));
        rd_t r;
        rd_init(&r, b.data, b.len);
        int32_t out;
        CHECK(rd_varint(&r, &out) && out == v32[i]);
        buf_free(&b);
    }
    int64_t v64[] = {0, -1, INT64_MIN, INT64_MAX, 1LL << 40};
    for (size_t i = 0; i < ARRAY_LEN(v64); i++) {
        buf_t b;
        buf_init(&b);
        buf_put_varlong(&b, v64[i]);
        rd_t r;
        rd_init(&r, b.data, b.len);
        int64_t out;
        CHECK(rd_varlong(&r, &out) && out == v64[i]);
        buf_free(&b);
    }
}

/* Malformed varints are rejected without consuming: truncated, too long, over 32 bits. */
TEST(varint_malformed)
{
    uint8_t trunc[] = {0x80, 0x80};
    rd_t r;
    uint64_t v;
    rd_init(&r, trunc, sizeof trunc);
    CHECK(!rd_uvarint(&r, &v));
    CHECK_EQ_INT(rd_offset(&r), 0);
    uint8_t toolong[11];
    memset(toolong, 0xff, sizeof toolong);
    rd_init(&r, toolong, sizeof toolong);
    CHECK(!rd_uvarint(&r, &v));
    uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0x7f}; /* 2^35-1 */
    uint32_t v32;
    rd_init(&r, big, sizeof big);
    CHECK(!rd_uvarint32(&r, &v32));
    CHECK_EQ_INT(rd_offset(&r), 0);
}

/* Fixed-width big-endian reads and writes, and reads past the end fail. */
TEST(fixed_width)
{
    buf_t b;
    buf_init(&b);
    buf_put_i16(&b, -2);
    buf_put_i32(&b, 0x01020304);
    buf_put_i64(&b, -5);
    buf_put_u8(&b, 7);
    CHECK_EQ_INT(b.len, 15);
    CHECK_EQ_INT(b.data[2], 1);
    CHECK_EQ_INT(b.data[5], 4);
    rd_t r;
    rd_init(&r, b.data, b.len);
    int16_t a;
    int32_t c;
    int64_t d;
    uint8_t e;
    CHECK(rd_i16(&r, &a) && a == -2);
    CHECK(rd_i32(&r, &c) && c == 0x01020304);
    CHECK(rd_i64(&r, &d) && d == -5);
    CHECK(rd_u8(&r, &e) && e == 7);
    CHECK(!rd_u8(&r, &e));
    CHECK(!rd_i32(&r, &c));
    const uint8_t *view;
    rd_init(&r, b.data, b.len);
    CHECK(rd_bytes(&r, 15, &view) && view == b.data);
    CHECK(!rd_skip(&r, 1));
    buf_free(&b);
}

/* The arena returns zeroed, aligned memory across block growth and resets. */
TEST(arena_basics)
{
    arena_t a;
    arena_init(&a);
    for (int round = 0; round < 3; round++) {
        for (int i = 1; i < 2000; i += 7) {
            unsigned char *p = arena_alloc(&a, (size_t)i);
            CHECK(((uintptr_t)p & 15) == 0);
            CHECK(p[0] == 0 && p[i - 1] == 0);
            memset(p, 0xab, (size_t)i);
        }
        char *s = arena_strndup(&a, "hello world", 5);
        CHECK(strcmp(s, "hello") == 0);
        arena_reset(&a);
        CHECK_EQ_INT(a.total, 0);
    }
    arena_free(&a);
}

#include "base/hmap.h"

/* The hash map keeps every key through growth, deletes and reinserts. */
TEST(hmap_basics)
{
    hmap m;
    hmap_init(&m);
    char key[32];
    for (intptr_t i = 0; i < 1000; i++) {
        int n = snprintf(key, sizeof key, "topic-%ld", (long)i);
        CHECK(hmap_put(&m, key, (size_t)n, (void *)(i + 1)) == NULL);
    }
    CHECK_EQ_INT(m.count, 1000);
    for (intptr_t i = 0; i < 1000; i += 2) {
        int n = snprintf(key, sizeof key, "topic-%ld", (long)i);
        CHECK(hmap_del(&m, key, (size_t)n) == (void *)(i + 1));
    }
    CHECK_EQ_INT(m.count, 500);
    for (intptr_t i = 0; i < 1000; i++) {
        int n = snprintf(key, sizeof key, "topic-%ld", (long)i);
        void *v = hmap_get(&m, key, (size_t)n);
        CHECK(v == ((i % 2) ? (void *)(i + 1) : NULL));
    }
    CHECK(hmap_put(&m, "topic-1", 7, (void *)99) == (void *)2);
    size_t it = 0, seen = 0;
    const char *k;
    size_t kl;
    void *v;
    while (hmap_next(&m, &it, &k, &kl, &v))
        seen++;
    CHECK_EQ_INT(seen, 500);
    hmap_free(&m);
}

#include "base/log.h"

/* A limiter lets the first line through, refuses (and counts) the rest of its interval, then reports the count. */
TEST(ratelimit_one_line_per_interval)
{
    log_ratelimit rl = LOG_RATELIMIT_INIT(1000);
    uint64_t sup = 99;
    CHECK(log_ratelimit_allow(&rl, 5000, &sup));
    CHECK_EQ_INT(sup, 0);
    for (int i = 0; i < 1000; i++)
        CHECK(!log_ratelimit_allow(&rl, 5000 + i, &sup));
    CHECK(log_ratelimit_allow(&rl, 6000, &sup));
    CHECK_EQ_INT(sup, 1000);
    CHECK(!log_ratelimit_allow(&rl, 6999, &sup));
    CHECK(log_ratelimit_allow(&rl, 10000, &sup));
    CHECK_EQ_INT(sup, 1);
    CHECK(log_ratelimit_allow(&rl, 11000, &sup));
    CHECK_EQ_INT(sup, 0);
}

/* A zero-initialised limiter (interval 0) still allows at most one line per millisecond. */
TEST(ratelimit_zero_interval)
{
    log_ratelimit rl = LOG_RATELIMIT_INIT(0);
    uint64_t sup;
    CHECK(log_ratelimit_allow(&rl, 1, &sup));
    CHECK(!log_ratelimit_allow(&rl, 1, &sup));
    CHECK(log_ratelimit_allow(&rl, 2, &sup));
    CHECK_EQ_INT(sup, 1);
}
