/*
 * compress.h - the four Kafka record-batch codecs, applied to the record
 * data that follows a batch's 61-byte header:
 *
 *   codec 1 gzip    a gzip stream (RFC 1952), possibly several members
 *   codec 2 snappy  xerial framing (what Kafka's clients write): an 8-byte
 *                   magic 0x82 "SNAPPY" 0x00, int32 version, int32
 *                   compatible version, then chunks of [int32 length]
 *                   [raw snappy block], all big-endian; a plain raw snappy
 *                   block (no magic) is also accepted when decompressing
 *   codec 3 lz4     LZ4 frame format (magic 0x184D2204)
 *   codec 4 zstd    zstd frames, content size not required
 *
 * Every function appends to out and returns 0, or a negative errno value
 * with out->len restored: -ENOTSUP unknown codec, -EBADMSG corrupt or
 * truncated input, -EFBIG output past max_out.
 */
#ifndef CHRONIK_PROTO_COMPRESS_H
#define CHRONIK_PROTO_COMPRESS_H
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define KCODEC_MAX_OUT_DEFAULT (64u * 1024 * 1024) /* decompressed bytes, at most */

/* Decompresses n bytes of codec data, appending at most max_out bytes. */
int kcodec_decompress(int codec, const uint8_t *in, size_t n, buf_t *out, size_t max_out);
/* Compresses n bytes with codec (gzip, snappy, lz4 or zstd). */
int kcodec_compress(int codec, const uint8_t *in, size_t n, buf_t *out);

#endif
