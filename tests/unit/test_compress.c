/* test_compress.c - the four Kafka codecs: round trips, Kafka's exact
 * formats (data written by librdkafka, xerial snappy framing), corrupt and
 * truncated input, and the decompressed-size bound. */
#include <errno.h>
#include <snappy-c.h>

#include "base/buf.h"
#include "base/util.h"
#include "proto/batch.h"
#include "proto/compress.h"
#include "test.h"

#define BIG_BYTES (300 * 1024)
#define RANDOM_BYTES (200 * 1024)
#define PREFIX_BYTES 3  /* bytes already in out, which must stay */

static const int codecs[] = {BATCH_CODEC_GZIP, BATCH_CODEC_SNAPPY, BATCH_CODEC_LZ4, BATCH_CODEC_ZSTD};
#define NCODECS ((int)(sizeof codecs / sizeof codecs[0]))

/* Record data of batches produced by kcat (librdkafka) with -z gzip,
 * snappy, lz4 and zstd: six records k1..k6 with values
 * "chronik <codec> value <i> aaaa...". */
static const uint8_t kcat_gzip[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x6b, 0x62, 0x64, 0x60, 0x60, 0x60,
    0xc9, 0x36, 0x2c, 0x4a, 0xce, 0x28, 0xca, 0xcf, 0xcb, 0xcc, 0x56, 0x48, 0xaf, 0xca, 0x2c, 0x50,
    0x28, 0x4b, 0xcc, 0x29, 0x4d, 0x55, 0x30, 0x54, 0x48, 0x24, 0x02, 0x30, 0x34, 0x01, 0x8d, 0x60,
    0x62, 0xc9, 0x36, 0xc2, 0x66, 0x84, 0x11, 0xf1, 0x46, 0xb0, 0xb0, 0x64, 0x1b, 0x63, 0x33, 0xc2,
    0x98, 0x78, 0x23, 0xd8, 0x58, 0xb2, 0x4d, 0xb0, 0x19, 0x61, 0x42, 0xbc, 0x11, 0x1c, 0x2c, 0xd9,
    0xa6, 0xd8, 0x8c, 0x30, 0x25, 0xde, 0x08, 0x2e, 0x96, 0x6c, 0x33, 0x6c, 0x46, 0x98, 0x11, 0x67,
    0x04, 0x00, 0x39, 0x5f, 0x01, 0x0a, 0x92, 0x01, 0x00, 0x00,
};

static const uint8_t kcat_snappy[] = {
    0x9e, 0x03, 0x80, 0x86, 0x01, 0x00, 0x00, 0x00, 0x04, 0x6b, 0x31, 0x76, 0x63, 0x68, 0x72, 0x6f,
    0x6e, 0x69, 0x6b, 0x20, 0x73, 0x6e, 0x61, 0x70, 0x70, 0x79, 0x20, 0x76, 0x61, 0x6c, 0x75, 0x65,
    0x20, 0x31, 0x20, 0x61, 0x8a, 0x01, 0x00, 0x00, 0x00, 0x01, 0x45, 0x0c, 0x02, 0x04, 0x6b, 0x32,
    0x56, 0x45, 0x00, 0x00, 0x32, 0xa6, 0x45, 0x00, 0x0c, 0x04, 0x04, 0x6b, 0x33, 0x56, 0x45, 0x00,
    0x00, 0x33, 0xa6, 0x45, 0x00, 0x0c, 0x06, 0x04, 0x6b, 0x34, 0x56, 0x45, 0x00, 0x00, 0x34, 0xa6,
    0x45, 0x00, 0x0c, 0x08, 0x04, 0x6b, 0x35, 0x56, 0x45, 0x00, 0x00, 0x35, 0xa6, 0x45, 0x00, 0x0c,
    0x0a, 0x04, 0x6b, 0x36, 0x56, 0x45, 0x00, 0x00, 0x36, 0x96, 0x45, 0x00,
};

static const uint8_t kcat_lz4[] = {
    0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82, 0x6e, 0x00, 0x00, 0x00, 0xff, 0x0f, 0x80, 0x01, 0x00,
    0x00, 0x00, 0x04, 0x6b, 0x31, 0x70, 0x63, 0x68, 0x72, 0x6f, 0x6e, 0x69, 0x6b, 0x20, 0x6c, 0x7a,
    0x34, 0x20, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x20, 0x31, 0x20, 0x61, 0x01, 0x00, 0x10, 0x10, 0x00,
    0x42, 0x00, 0x4f, 0x02, 0x04, 0x6b, 0x32, 0x42, 0x00, 0x00, 0x1f, 0x32, 0x42, 0x00, 0x17, 0x4f,
    0x04, 0x04, 0x6b, 0x33, 0x42, 0x00, 0x00, 0x1f, 0x33, 0x42, 0x00, 0x17, 0x4f, 0x06, 0x04, 0x6b,
    0x34, 0x42, 0x00, 0x00, 0x1f, 0x34, 0x42, 0x00, 0x17, 0x4f, 0x08, 0x04, 0x6b, 0x35, 0x42, 0x00,
    0x00, 0x1f, 0x35, 0x42, 0x00, 0x17, 0x4f, 0x0a, 0x04, 0x6b, 0x36, 0x42, 0x00, 0x00, 0x1f, 0x36,
    0x42, 0x00, 0x0e, 0x50, 0x61, 0x61, 0x61, 0x61, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static const uint8_t kcat_zstd[] = {
    0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0xcd, 0x02, 0x00, 0xd4, 0x03, 0x82, 0x01, 0x00, 0x00, 0x00,
    0x04, 0x6b, 0x31, 0x72, 0x63, 0x68, 0x72, 0x6f, 0x6e, 0x69, 0x6b, 0x20, 0x7a, 0x73, 0x74, 0x64,
    0x20, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x20, 0x31, 0x20, 0x61, 0x00, 0x82, 0x01, 0x00, 0x00, 0x02,
    0x04, 0x6b, 0x32, 0x32, 0x04, 0x04, 0x6b, 0x33, 0x33, 0x06, 0x04, 0x6b, 0x34, 0x34, 0x08, 0x04,
    0x6b, 0x35, 0x35, 0x0a, 0x04, 0x6b, 0x36, 0x36, 0x0b, 0x00, 0xc1, 0x23, 0x00, 0x4d, 0x01, 0x74,
    0x01, 0x4d, 0x01, 0x74, 0x01, 0x4d, 0x01, 0x74, 0x01, 0x4d, 0x01, 0xba, 0x46, 0xa0, 0xcf, 0x48,
    0xe0, 0x04,
};

static uint64_t rng = 88172645463325252ull;
static uint8_t next_byte(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint8_t)rng;
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = next_byte();
}

static void fill_text(uint8_t *p, size_t n)
{
    static const char words[] = "key-17 value of the compacted topic, record number ";
    for (size_t i = 0; i < n; i++)
        p[i] = i % 97 == 0 ? (uint8_t)('0' + (i / 97) % 10) : (uint8_t)words[i % (sizeof words - 1)];
}

/* compress then decompress gives the input back, after a kept prefix */
static bool round_trip(int codec, const uint8_t *in, size_t n)
{
    buf_t z, out;
    buf_init(&z);
    buf_init(&out);
    buf_put(&out, "pfx", PREFIX_BYTES);
    bool ok = kcodec_compress(codec, in, n, &z) == 0 &&
              kcodec_decompress(codec, z.data, z.len, &out, KCODEC_MAX_OUT_DEFAULT) == 0 &&
              out.len == PREFIX_BYTES + n && memcmp(out.data, "pfx", PREFIX_BYTES) == 0 &&
              (n == 0 || memcmp(out.data + PREFIX_BYTES, in, n) == 0);
    buf_free(&z);
    buf_free(&out);
    return ok;
}

/* Every codec round-trips random, compressible, tiny and empty data. */
TEST(round_trip_all_codecs)
{
    uint8_t *rnd = xmalloc(RANDOM_BYTES), *txt = xmalloc(BIG_BYTES);
    fill_random(rnd, RANDOM_BYTES);
    fill_text(txt, BIG_BYTES);
    for (int c = 0; c < NCODECS; c++) {
        CHECK(round_trip(codecs[c], rnd, RANDOM_BYTES));
        CHECK(round_trip(codecs[c], txt, BIG_BYTES));
        CHECK(round_trip(codecs[c], txt, 1));
        CHECK(round_trip(codecs[c], txt, 0));
    }
    /* compressible data does shrink */
    for (int c = 0; c < NCODECS; c++) {
        buf_t z;
        buf_init(&z);
        REQUIRE(kcodec_compress(codecs[c], txt, BIG_BYTES, &z) == 0);
        CHECK(z.len < BIG_BYTES / 4);
        buf_free(&z);
    }
    free(rnd);
    free(txt);
}

/* Walks n bytes of uncompressed records; returns their count, -1 if malformed. */
static int count_records(const uint8_t *p, size_t n)
{
    rd_t r;
    int count = 0;
    rd_init(&r, p, n);
    while (rd_left(&r) > 0) {
        int32_t len;
        if (!rd_varint(&r, &len) || len < 0 || !rd_skip(&r, (size_t)len))
            return -1;
        count++;
    }
    return count;
}

/* Data compressed by librdkafka with each codec decompresses to its six records. */
TEST(client_data_decoded)
{
    struct { int codec; const uint8_t *p; size_t n; const char *name; } cases[] = {
        {BATCH_CODEC_GZIP, kcat_gzip, sizeof kcat_gzip, "gzip"},
        {BATCH_CODEC_SNAPPY, kcat_snappy, sizeof kcat_snappy, "snappy"},
        {BATCH_CODEC_LZ4, kcat_lz4, sizeof kcat_lz4, "lz4"},
        {BATCH_CODEC_ZSTD, kcat_zstd, sizeof kcat_zstd, "zstd"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf_t out;
        buf_init(&out);
        REQUIRE(kcodec_decompress(cases[i].codec, cases[i].p, cases[i].n, &out, KCODEC_MAX_OUT_DEFAULT) == 0);
        CHECK_EQ_INT(count_records(out.data, out.len), 6);
        char want[64];
        snprintf(want, sizeof want, "chronik %s value 6 aaaa", cases[i].name);
        CHECK(memmem(out.data, out.len, want, strlen(want)) != NULL);
        CHECK(memmem(out.data, out.len, "k1", 2) != NULL);
        /* and it survives our own round trip with the same codec */
        CHECK(round_trip(cases[i].codec, out.data, out.len));
        buf_free(&out);
    }
}

/* Snappy is written with xerial framing (magic, versions 1/1, chunks of at
 * most 32 KiB input), and plain raw snappy blocks are read too. */
TEST(snappy_xerial_and_raw)
{
    uint8_t *txt = xmalloc(BIG_BYTES);
    fill_text(txt, BIG_BYTES);
    buf_t z, out;
    buf_init(&z);
    buf_init(&out);
    REQUIRE(kcodec_compress(BATCH_CODEC_SNAPPY, txt, BIG_BYTES, &z) == 0);
    static const uint8_t head[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
    REQUIRE(z.len > sizeof head);
    CHECK(memcmp(z.data, head, sizeof head) == 0);
    int chunks = 0;
    for (size_t pos = sizeof head; pos + 4 <= z.len; chunks++)
        pos += 4 + be32_load(z.data + pos);
    CHECK_EQ_INT(chunks, (BIG_BYTES + 32 * 1024 - 1) / (32 * 1024));
    /* raw block */
    size_t cap = snappy_max_compressed_length(BIG_BYTES);
    char *raw = xmalloc(cap);
    REQUIRE(snappy_compress((const char *)txt, BIG_BYTES, raw, &cap) == SNAPPY_OK);
    REQUIRE(kcodec_decompress(BATCH_CODEC_SNAPPY, (const uint8_t *)raw, cap, &out, KCODEC_MAX_OUT_DEFAULT) == 0);
    CHECK(out.len == BIG_BYTES && memcmp(out.data, txt, BIG_BYTES) == 0);
    /* an empty xerial stream (header only) is empty data */
    buf_reset(&out);
    CHECK_EQ_INT(kcodec_decompress(BATCH_CODEC_SNAPPY, head, sizeof head, &out, 16), 0);
    CHECK_EQ_INT(out.len, 0);
    free(raw);
    free(txt);
    buf_free(&z);
    buf_free(&out);
}

/* Truncated, garbage and bit-flipped input fail with an error (or, where a
 * codec has no checksum, decode to something) and leave out as it was. */
TEST(corrupt_input_rejected)
{
    uint8_t *txt = xmalloc(BIG_BYTES);
    fill_text(txt, BIG_BYTES);
    static const uint8_t junk[] = "this is not compressed data at all, surely";
    for (int c = 0; c < NCODECS; c++) {
        buf_t z, out;
        buf_init(&z);
        buf_init(&out);
        buf_put(&out, "pfx", PREFIX_BYTES);
        REQUIRE(kcodec_compress(codecs[c], txt, BIG_BYTES, &z) == 0);
        size_t cuts[] = {0, 1, 7, 17, z.len / 2, z.len - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            CHECK_EQ_INT(kcodec_decompress(codecs[c], z.data, cuts[i], &out, KCODEC_MAX_OUT_DEFAULT), -EBADMSG);
            CHECK_EQ_INT(out.len, PREFIX_BYTES);
        }
        if (codecs[c] != BATCH_CODEC_SNAPPY) { /* a raw snappy block has no magic */
            CHECK_EQ_INT(kcodec_decompress(codecs[c], junk, sizeof junk, &out, KCODEC_MAX_OUT_DEFAULT), -EBADMSG);
            CHECK_EQ_INT(out.len, PREFIX_BYTES);
        }
        for (size_t at = 0; at < z.len; at += 1 + z.len / 40) {
            z.data[at] ^= 0x5a;
            int rc = kcodec_decompress(codecs[c], z.data, z.len, &out, BIG_BYTES * 2);
            CHECK(rc == 0 || rc == -EBADMSG || rc == -EFBIG);
            CHECK(rc == 0 ? out.len <= PREFIX_BYTES + BIG_BYTES * 2 : out.len == PREFIX_BYTES);
            out.len = PREFIX_BYTES;
            z.data[at] ^= 0x5a;
        }
        buf_free(&z);
        buf_free(&out);
    }
    buf_t out;
    buf_init(&out);
    CHECK_EQ_INT(kcodec_decompress(BATCH_CODEC_NONE, junk, sizeof junk, &out, 100), -ENOTSUP);
    CHECK_EQ_INT(kcodec_decompress(5, junk, sizeof junk, &out, 100), -ENOTSUP);
    CHECK_EQ_INT(kcodec_compress(7, junk, sizeof junk, &out), -ENOTSUP);
    CHECK_EQ_INT(out.len, 0);
    buf_free(&out);
    free(txt);
}

/* Output past max_out fails with -EFBIG without allocating the whole
 * output (a decompression bomb); exactly max_out passes. */
TEST(size_bound_enforced)
{
    const size_t big = 8u << 20, bound = 1u << 20;
    uint8_t *zeros = calloc(1, big);
    REQUIRE(zeros);
    for (int c = 0; c < NCODECS; c++) {
        buf_t z, out;
        buf_init(&z);
        buf_init(&out);
        REQUIRE(kcodec_compress(codecs[c], zeros, big, &z) == 0);
        CHECK(z.len < big / 16); /* snappy tops out near 21:1 */
        CHECK_EQ_INT(kcodec_decompress(codecs[c], z.data, z.len, &out, bound), -EFBIG);
        CHECK_EQ_INT(out.len, 0);
        CHECK(out.cap <= 2 * bound); /* never grew towards the full 8 MiB */
        CHECK_EQ_INT(kcodec_decompress(codecs[c], z.data, z.len, &out, big - 1), -EFBIG);
        CHECK_EQ_INT(kcodec_decompress(codecs[c], z.data, z.len, &out, big), 0);
        CHECK_EQ_INT(out.len, big);
        buf_free(&z);
        buf_free(&out);
    }
    free(zeros);
}
