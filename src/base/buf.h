/*
 * buf.h - byte buffers, big-endian integers, Kafka varints.
 *
 * Two types:
 *   buf_t  a growable output buffer (writer). Allocation failure aborts.
 *   rd_t   a bounds-checked read cursor over borrowed bytes. Every getter
 *          returns false (and consumes nothing) when too few bytes are left,
 *          so parsers check once per field and jump to one error exit.
 *
 * Integers on the wire are big-endian. Kafka varints are the protobuf ones:
 * unsigned LEB128 ("uvarint"), and zigzag-encoded signed "varint" (32-bit)
 * and "varlong" (64-bit).
 */
#ifndef CHRONIK_BASE_BUF_H
#define CHRONIK_BASE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- raw big-endian loads and stores ---------------------------------- */
static inline uint16_t be16_load(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t be32_load(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t be64_load(const uint8_t *p) { return ((uint64_t)be32_load(p) << 32) | be32_load(p + 4); }
static inline void be16_store(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void be32_store(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void be64_store(uint8_t *p, uint64_t v) { be32_store(p, (uint32_t)(v >> 32)); be32_store(p + 4, (uint32_t)v); }

/* ---- varint sizes ------------------------------------------------------ */
static inline uint32_t zigzag32(int32_t v) { return ((uint32_t)v << 1) ^ (uint32_t)(v >> 31); }
static inline uint64_t zigzag64(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int32_t unzigzag32(uint32_t v) { return (int32_t)(v >> 1) ^ -(int32_t)(v & 1); }
static inline int64_t unzigzag64(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }
size_t uvarint_size(uint64_t v);
static inline size_t varint_size(int32_t v) { return uvarint_size(zigzag32(v)); }
static inline size_t varlong_size(int64_t v) { return uvarint_size(zigzag64(v)); }

/* Encode into p (at least 10 bytes of room); returns bytes written. */
size_t uvarint_put(uint8_t *p, uint64_t v);

/* ---- writer ------------------------------------------------------------- */
typedef struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} buf_t;

void buf_init(buf_t *b);
void buf_free(buf_t *b);
void buf_reserve(buf_t *b, size_t extra);           /* ensure cap >= len + extra */
uint8_t *buf_extend(buf_t *b, size_t n);            /* grow len by n, return old end */
static inline void buf_reset(buf_t *b) { b->len = 0; }
void buf_put(buf_t *b, const void *p, size_t n);
/* Appends printf-formatted text (no terminating NUL). */
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_put_u8(buf_t *b, uint8_t v);
void buf_put_i16(buf_t *b, int16_t v);
void buf_put_i32(buf_t *b, int32_t v);
void buf_put_i64(buf_t *b, int64_t v);
void buf_put_uvarint(buf_t *b, uint64_t v);
static inline void buf_put_varint(buf_t *b, int32_t v) { buf_put_uvarint(b, zigzag32(v)); }
static inline void buf_put_varlong(buf_t *b, int64_t v) { buf_put_uvarint(b, zigzag64(v)); }

/* ---- reader ------------------------------------------------------------- */
typedef struct rd {
    const uint8_t *start; /* for offsets in error messages */
    const uint8_t *p;
    const uint8_t *end;
} rd_t;

static inline void rd_init(rd_t *r, const void *p, size_t n)
{
    r->start = r->p = (const uint8_t *)p;
    r->end = r->p + n;
}
static inline size_t rd_left(const rd_t *r) { return (size_t)(r->end - r->p); }
static inline size_t rd_offset(const rd_t *r) { return (size_t)(r->p - r->start); }
bool rd_skip(rd_t *r, size_t n);
bool rd_bytes(rd_t *r, size_t n, const uint8_t **out); /* view, no copy */
bool rd_u8(rd_t *r, uint8_t *v);
bool rd_i8(rd_t *r, int8_t *v);
bool rd_i16(rd_t *r, int16_t *v);
bool rd_u16(rd_t *r, uint16_t *v);
bool rd_i32(rd_t *r, int32_t *v);
bool rd_u32(rd_t *r, uint32_t *v);
bool rd_i64(rd_t *r, int64_t *v);
bool rd_uvarint(rd_t *r, uint64_t *v);  /* at most 10 bytes, else false */
bool rd_uvarint32(rd_t *r, uint32_t *v); /* at most 5 bytes and fits 32 bits */
bool rd_varint(rd_t *r, int32_t *v);
bool rd_varlong(rd_t *r, int64_t *v);

#endif
