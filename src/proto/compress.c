/*
 * compress.c - Kafka's record codecs over zlib, snappy, lz4frame and zstd.
 * The byte formats are described in compress.h. Decompression streams into
 * out in steps of at most DECOMP_STEP bytes, so a small bomb cannot make it
 * allocate more than max_out (plus one step).
 */
#include "proto/compress.h"

#include <errno.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "base/util.h"
#include "proto/batch.h"

#define DECOMP_STEP (256u * 1024)        /* output room added per decompress call */
#define XERIAL_MAGIC_LEN 8
#define XERIAL_HEADER_LEN 16             /* magic + version + compatible version */
#define XERIAL_VERSION 1
#define XERIAL_COMPAT_VERSION 1
#define XERIAL_BLOCK (32u * 1024)        /* input bytes per snappy chunk */
#define ZSTD_LEVEL 3
#define GZIP_WBITS (16 + MAX_WBITS)      /* zlib with the gzip wrapper */

static const uint8_t xerial_magic[XERIAL_MAGIC_LEN] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};

/* Room for the next step: at most what is left below max_out, plus one
 * byte so that output past the bound is seen. */
static size_t step_room(size_t produced, size_t max_out)
{
    size_t left = produced < max_out ? max_out - produced : 0;
    return MIN((size_t)DECOMP_STEP, left + 1);
}

/* ---- gzip --------------------------------------------------------------------- */

static int gzip_decompress(const uint8_t *in, size_t n, buf_t *out, size_t max_out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, GZIP_WBITS) != Z_OK)
        return -ENOMEM;
    size_t start = out->len;
    int rc = 0;
    z.next_in = (Bytef *)(uintptr_t)in;
    for (;;) {
        size_t room = step_room(out->len - start, max_out);
        buf_reserve(out, room);
        size_t in_left = n - (size_t)((const uint8_t *)z.next_in - in);
        z.avail_in = (uInt)MIN(in_left, (size_t)UINT32_MAX);
        z.next_out = out->data + out->len;
        z.avail_out = (uInt)room;
        int zr = inflate(&z, Z_NO_FLUSH);
        out->len += room - z.avail_out;
        if (out->len - start > max_out) {
            rc = -EFBIG;
            break;
        }
        in_left = n - (size_t)((const uint8_t *)z.next_in - in);
        if (zr == Z_STREAM_END) {
            if (in_left == 0)
                break;
            if (inflateReset(&z) != Z_OK) { /* another gzip member follows */
                rc = -EBADMSG;
                break;
            }
            continue;
        }
        if ((zr != Z_OK && zr != Z_BUF_ERROR) || (z.avail_out > 0 && in_left == 0)) {
            rc = -EBADMSG; /* corrupt, or truncated: input gone before the end */
            break;
        }
    }
    inflateEnd(&z);
    return rc;
}

static int gzip_compress(const uint8_t *in, size_t n, buf_t *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (n > UINT32_MAX)
        return -EFBIG;
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, GZIP_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    size_t bound = deflateBound(&z, (uLong)n);
    buf_reserve(out, bound);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = out->data + out->len;
    z.avail_out = (uInt)bound;
    int zr = deflate(&z, Z_FINISH);
    if (zr == Z_STREAM_END)
        out->len += bound - z.avail_out;
    deflateEnd(&z);
    return zr == Z_STREAM_END ? 0 : -EIO;
}

/* ---- snappy ------------------------------------------------------------------- */

/* One raw snappy block, its decoded size checked against the bound. */
static int snappy_block(const uint8_t *in, size_t n, buf_t *out, size_t start, size_t max_out)
{
    size_t len;
    if (snappy_uncompressed_length((const char *)in, n, &len) != SNAPPY_OK)
        return -EBADMSG;
    if (len > max_out - (out->len - start))
        return -EFBIG;
    buf_reserve(out, len);
    size_t got = len;
    if (snappy_uncompress((const char *)in, n, (char *)out->data + out->len, &got) != SNAPPY_OK ||
        got != len)
        return -EBADMSG;
    out->len += len;
    return 0;
}

static int snappy_decompress(const uint8_t *in, size_t n, buf_t *out, size_t max_out)
{
    size_t start = out->len;
    if (n < XERIAL_MAGIC_LEN || memcmp(in, xerial_magic, XERIAL_MAGIC_LEN) != 0)
        return snappy_block(in, n, out, start, max_out);
    if (n < XERIAL_HEADER_LEN)
        return -EBADMSG;
    for (size_t pos = XERIAL_HEADER_LEN; pos < n;) {
        if (n - pos < 4)
            return -EBADMSG;
        size_t len = be32_load(in + pos);
        pos += 4;
        if (len > n - pos)
            return -EBADMSG;
        int rc = snappy_block(in + pos, len, out, start, max_out);
        if (rc < 0)
            return rc;
        pos += len;
    }
    return 0;
}

static int snappy_compress_xerial(const uint8_t *in, size_t n, buf_t *out)
{
    uint8_t *h = buf_extend(out, XERIAL_HEADER_LEN);
    memcpy(h, xerial_magic, XERIAL_MAGIC_LEN);
    be32_store(h + XERIAL_MAGIC_LEN, XERIAL_VERSION);
    be32_store(h + XERIAL_MAGIC_LEN + 4, XERIAL_COMPAT_VERSION);
    for (size_t pos = 0; pos < n;) {
        size_t chunk = MIN(n - pos, (size_t)XERIAL_BLOCK);
        size_t cap = snappy_max_compressed_length(chunk);
        buf_reserve(out, 4 + cap);
        uint8_t *lenp = out->data + out->len;
        if (snappy_compress((const char *)in + pos, chunk, (char *)lenp + 4, &cap) != SNAPPY_OK)
            return -EIO;
        CK_ASSERT(cap <= INT32_MAX);
        be32_store(lenp, (uint32_t)cap);
        out->len += 4 + cap;
        pos += chunk;
    }
    return 0;
}

/* ---- lz4 ---------------------------------------------------------------------- */

static int lz4_decompress(const uint8_t *in, size_t n, buf_t *out, size_t max_out)
{
    LZ4F_dctx *d;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION)))
        return -ENOMEM;
    size_t start = out->len, pos = 0;
    int rc = 0;
    if (n == 0)
        rc = -EBADMSG;
    while (rc == 0) {
        size_t room = step_room(out->len - start, max_out);
        buf_reserve(out, room);
        size_t dst = room, src = n - pos;
        size_t r = LZ4F_decompress(d, out->data + out->len, &dst, in + pos, &src, NULL);
        if (LZ4F_isError(r)) {
            rc = -EBADMSG;
            break;
        }
        out->len += dst;
        pos += src;
        if (out->len - start > max_out)
            rc = -EFBIG;
        else if (r == 0 && pos == n)
            break; /* last frame complete */
        else if (r != 0 && pos == n && dst < room)
            rc = -EBADMSG; /* frame incomplete and input gone */
    }
    LZ4F_freeDecompressionContext(d);
    return rc;
}

static int lz4_compress(const uint8_t *in, size_t n, buf_t *out)
{
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    size_t bound = LZ4F_compressFrameBound(n, &prefs);
    buf_reserve(out, bound);
    size_t r = LZ4F_compressFrame(out->data + out->len, bound, in, n, &prefs);
    if (LZ4F_isError(r))
        return -EIO;
    out->len += r;
    return 0;
}

/* ---- zstd --------------------------------------------------------------------- */

static int zstd_decompress(const uint8_t *in, size_t n, buf_t *out, size_t max_out)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d)
        return -ENOMEM;
    size_t start = out->len;
    ZSTD_inBuffer ib = {in, n, 0};
    int rc = n == 0 ? -EBADMSG : 0;
    while (rc == 0) {
        size_t room = step_room(out->len - start, max_out);
        buf_reserve(out, room);
        ZSTD_outBuffer ob = {out->data + out->len, room, 0};
        size_t r = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(r)) {
            rc = -EBADMSG;
            break;
        }
        out->len += ob.pos;
        if (out->len - start > max_out)
            rc = -EFBIG;
        else if (r == 0 && ib.pos == ib.size)
            break; /* last frame complete */
        else if (r != 0 && ib.pos == ib.size && ob.pos < room)
            rc = -EBADMSG; /* frame incomplete and input gone */
    }
    ZSTD_freeDCtx(d);
    return rc;
}

static int zstd_compress(const uint8_t *in, size_t n, buf_t *out)
{
    size_t bound = ZSTD_compressBound(n);
    buf_reserve(out, bound);
    size_t r = ZSTD_compress(out->data + out->len, bound, in, n, ZSTD_LEVEL);
    if (ZSTD_isError(r))
        return -EIO;
    out->len += r;
    return 0;
}

/* ---- entry points ------------------------------------------------------------- */

int kcodec_decompress(int codec, const uint8_t *in, size_t n, buf_t *out, size_t max_out)
{
    size_t start = out->len;
    int rc;
    switch (codec) {
    case BATCH_CODEC_GZIP: rc = gzip_decompress(in, n, out, max_out); break;
    case BATCH_CODEC_SNAPPY: rc = snappy_decompress(in, n, out, max_out); break;
    case BATCH_CODEC_LZ4: rc = lz4_decompress(in, n, out, max_out); break;
    case BATCH_CODEC_ZSTD: rc = zstd_decompress(in, n, out, max_out); break;
    default: rc = -ENOTSUP; break;
    }
    if (rc < 0)
        out->len = start;
    CK_ASSERT(rc < 0 || out->len - start <= max_out);
    return rc;
}

int kcodec_compress(int codec, const uint8_t *in, size_t n, buf_t *out)
{
    size_t start = out->len;
    int rc;
    switch (codec) {
    case BATCH_CODEC_GZIP: rc = gzip_compress(in, n, out); break;
    case BATCH_CODEC_SNAPPY: rc = snappy_compress_xerial(in, n, out); break;
    case BATCH_CODEC_LZ4: rc = lz4_compress(in, n, out); break;
    case BATCH_CODEC_ZSTD: rc = zstd_compress(in, n, out); break;
    default: rc = -ENOTSUP; break;
    }
    if (rc < 0)
        out->len = start;
    return rc;
}
