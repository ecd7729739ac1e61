/* buf.c - growable output buffers and the bounds-checked reader (buf.h). */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/util.h"

size_t uvarint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t uvarint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

void buf_init(buf_t *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_free(buf_t *b)
{
    free(b->data);
    buf_init(b);
}

void buf_reserve(buf_t *b, size_t extra)
{
    CK_ASSERT(b->len + extra >= b->len);
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

uint8_t *buf_extend(buf_t *b, size_t n)
{
    buf_reserve(b, n);
    uint8_t *p = b->data + b->len;
    b->len += n;
    return p;
}

void buf_put(buf_t *b, const void *p, size_t n)
{
    if (n)
        memcpy(buf_extend(b, n), p, n);
}

void buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    buf_reserve(b, (size_t)n + 1); /* vsnprintf writes the NUL too */
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_put_u8(buf_t *b, uint8_t v) { *buf_extend(b, 1) = v; }
void buf_put_i16(buf_t *b, int16_t v) { be16_store(buf_extend(b, 2), (uint16_t)v); }
void buf_put_i32(buf_t *b, int32_t v) { be32_store(buf_extend(b, 4), (uint32_t)v); }
void buf_put_i64(buf_t *b, int64_t v) { be64_store(buf_extend(b, 8), (uint64_t)v); }

void buf_put_uvarint(buf_t *b, uint64_t v)
{
    buf_reserve(b, 10);
    b->len += uvarint_put(b->data + b->len, v);
}

bool rd_skip(rd_t *r, size_t n)
{
    if (rd_left(r) < n)
        return false;
    r->p += n;
    return true;
}

bool rd_bytes(rd_t *r, size_t n, const uint8_t **out)
{
    if (rd_left(r) < n)
        return false;
    *out = r->p;
    r->p += n;
    return true;
}

bool rd_u8(rd_t *r, uint8_t *v)
{
    if (rd_left(r) < 1)
        return false;
    *v = *r->p++;
    return true;
}

bool rd_i8(rd_t *r, int8_t *v)
{
    uint8_t u;
    if (!rd_u8(r, &u))
        return false;
    *v = (int8_t)u;
    return true;
}

bool rd_u16(rd_t *r, uint16_t *v)
{
    if (rd_left(r) < 2)
        return false;
    *v = be16_load(r->p);
    r->p += 2;
    return true;
}

bool rd_i16(rd_t *r, int16_t *v)
{
    uint16_t u;
    if (!rd_u16(r, &u))
        return false;
    *v = (int16_t)u;
    return true;
}

bool rd_u32(rd_t *r, uint32_t *v)
{
    if (rd_left(r) < 4)
        return false;
    *v = be32_load(r->p);
    r->p += 4;
    return true;
}

bool rd_i32(rd_t *r, int32_t *v)
{
    uint32_t u;
    if (!rd_u32(r, &u))
        return false;
    *v = (int32_t)u;
    return true;
}

bool rd_i64(rd_t *r, int64_t *v)
{
    if (rd_left(r) < 8)
        return false;
    *v = (int64_t)be64_load(r->p);
    r->p += 8;
    return true;
}

bool rd_uvarint(rd_t *r, uint64_t *v)
{
    uint64_t x = 0;
    const uint8_t *p = r->p;
    for (int shift = 0; shift < 70; shift += 7) {
        if (p >= r->end)
            return false;
        uint8_t c = *p++;
        if (shift == 63 && c > 1)
            return false; /* overflows 64 bits */
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            r->p = p;
            *v = x;
            return true;
        }
    }
    return false;
}

bool rd_uvarint32(rd_t *r, uint32_t *v)
{
    const uint8_t *save = r->p;
    uint64_t x;
    if (!rd_uvarint(r, &x) || x > UINT32_MAX || r->p - save > 5) {
        r->p = save;
        return false;
    }
    *v = (uint32_t)x;
    return true;
}

bool rd_varint(rd_t *r, int32_t *v)
{
    uint32_t u;
    if (!rd_uvarint32(r, &u))
        return false;
    *v = unzigzag32(u);
    return true;
}

bool rd_varlong(rd_t *r, int64_t *v)
{
    uint64_t u;
    if (!rd_uvarint(r, &u))
        return false;
    *v = unzigzag64(u);
    return true;
}
