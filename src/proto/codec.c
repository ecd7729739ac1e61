/*
 * codec.c - the one strict decoder, encoder and sizer for every Kafka
 * struct, driven by the generated descriptor tables.
 *
 * Wire format of one struct at version v (all integers big-endian):
 *
 *   for each field present in v and not tagged in v, in schema order:
 *     bool, int8            1 byte           uint16, int16   2 bytes
 *     int32, uint32         4 bytes          int64, float64  8 bytes (IEEE)
 *     uuid                  16 bytes
 *     string                classic: int16 length (-1 null), UTF-8 bytes
 *                           compact: uvarint length+1 (0 null), bytes
 *     bytes, records        classic: int32 length (-1 null); compact as string
 *     array                 classic: int32 count (-1 null); compact: uvarint
 *                           count+1 (0 null); then the elements
 *     struct                the nested struct; when nullable in v an int8
 *                           first: negative null, otherwise present
 *   if the version is flexible, the tagged-field section:
 *     uvarint n, then n times: uvarint tag, uvarint size, size bytes
 *     holding the field in compact form (a nullable struct starts with an
 *     uvarint: 0 null, otherwise present).
 *
 * "compact" applies in flexible versions, except to fields marked
 * "flexibleVersions": "none". The encoder writes tagged fields in tag order
 * and only when they differ from their schema default.
 *
 * What the decoder accepts (invariants it guarantees to callers):
 *   1. Every length and count is <= the bytes left; a count is also checked
 *      against PROTO_DECODE_ITEMS_MAX and the arena budget
 *      (PROTO_DECODE_MEM_BASE + PROTO_DECODE_MEM_FACTOR * input bytes, at
 *      most PROTO_DECODE_MEM_MAX)
 *      before the arena is touched. An element's cost is its minimum wire
 *      size, worked out from the descriptor for the version.
 *   2. Strings are at most PROTO_STRING_MAX bytes; negative lengths other
 *      than -1 are errors; null only where the version allows it.
 *   3. A known tagged field consumes exactly its declared size; unknown tags
 *      are skipped within bounds.
 *   4. Decoded views point into the reader's buffer; nothing is copied.
 * The first error is recorded (field path, offset, reason) and every caller
 * returns -1 at once: one error exit.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "proto/proto.h"

_Static_assert(sizeof(kint32_array_t) == sizeof(proto_array_t), "array layout");
_Static_assert(offsetof(ProduceRequest_TopicProduceData_array, items) ==
                   offsetof(proto_array_t, items), "array layout");

#define TAGGED_WIRE_MIN 2 /* a tagged field is at least a tag and a size byte */

static bool in_range(int16_t v, int16_t lo, int16_t hi) { return v >= lo && v <= hi; }
static bool present(const proto_field_desc *f, int16_t v) { return in_range(v, f->ver_min, f->ver_max); }
static bool nullable(const proto_field_desc *f, int16_t v) { return in_range(v, f->null_min, f->null_max); }
static bool tagged(const proto_field_desc *f, int16_t v) { return f->tag >= 0 && in_range(v, f->tag_min, f->tag_max); }
static bool is_array(const proto_field_desc *f) { return (f->flags & PROTO_F_ARRAY) != 0; }
static bool is_ptr(const proto_field_desc *f) { return (f->flags & PROTO_F_PTR) != 0; }
static bool compact(const proto_field_desc *f, bool flex) { return flex && !(f->flags & PROTO_F_NOFLEX); }

/* C size of one value (or one array element) of field f. */
static size_t value_size(const proto_field_desc *f)
{
    switch ((proto_type)f->type) {
    case PROTO_T_BOOL: return sizeof(bool);
    case PROTO_T_INT8: return 1;
    case PROTO_T_INT16: case PROTO_T_UINT16: return 2;
    case PROTO_T_INT32: case PROTO_T_UINT32: return 4;
    case PROTO_T_INT64: case PROTO_T_FLOAT64: return 8;
    case PROTO_T_STRING: return sizeof(kstr_t);
    case PROTO_T_BYTES: case PROTO_T_RECORDS: return sizeof(kbytes_t);
    case PROTO_T_UUID: return sizeof(kuuid_t);
    case PROTO_T_STRUCT: return f->sub->size;
    }
    CK_PANIC("bad proto type %d", f->type);
}

/* ---- minimum wire sizes -------------------------------------------------- */
static size_t struct_wire_min(const proto_struct_desc *d, int16_t v, bool flex);

/* Least bytes one value (not the array around it) of f can take. The
 * descriptor graph is acyclic (C embedding needs it), so this terminates. */
static size_t value_wire_min(const proto_field_desc *f, int16_t v, bool flex, bool may_null)
{
    switch ((proto_type)f->type) {
    case PROTO_T_BOOL: case PROTO_T_INT8: return 1;
    case PROTO_T_INT16: case PROTO_T_UINT16: return 2;
    case PROTO_T_INT32: case PROTO_T_UINT32: return 4;
    case PROTO_T_INT64: case PROTO_T_FLOAT64: return 8;
    case PROTO_T_UUID: return 16;
    case PROTO_T_STRING: return compact(f, flex) ? 1 : 2;
    case PROTO_T_BYTES: case PROTO_T_RECORDS: return compact(f, flex) ? 1 : 4;
    case PROTO_T_STRUCT:
        if (may_null)
            return 1;
        return struct_wire_min(f->sub, v, flex);
    }
    CK_PANIC("bad proto type %d", f->type);
}

static size_t struct_wire_min(const proto_struct_desc *d, int16_t v, bool flex)
{
    size_t n = flex ? 1 : 0;
    for (uint16_t i = 0; i < d->nfields; i++) {
        const proto_field_desc *f = &d->fields[i];
        if (!present(f, v) || tagged(f, v))
            continue;
        if (is_array(f))
            n += compact(f, flex) ? 1 : 4;
        else
            n += value_wire_min(f, v, flex, nullable(f, v));
    }
    return n;
}

/* ---- defaults ------------------------------------------------------------ */
static void field_default(const proto_field_desc *f, uint8_t *p)
{
    if (is_array(f)) {
        proto_array_t *arr = (proto_array_t *)p;
        arr->count = (f->flags & PROTO_F_DEFNULL) ? -1 : 0;
        arr->items = NULL;
        return;
    }
    switch ((proto_type)f->type) {
    case PROTO_T_BOOL: *(bool *)p = f->def_i != 0; break;
    case PROTO_T_INT8: *(int8_t *)p = (int8_t)f->def_i; break;
    case PROTO_T_INT16: *(int16_t *)p = (int16_t)f->def_i; break;
    case PROTO_T_UINT16: *(uint16_t *)p = (uint16_t)f->def_i; break;
    case PROTO_T_INT32: *(int32_t *)p = (int32_t)f->def_i; break;
    case PROTO_T_UINT32: *(uint32_t *)p = (uint32_t)f->def_i; break;
    case PROTO_T_INT64: *(int64_t *)p = f->def_i; break;
    case PROTO_T_FLOAT64: *(double *)p = f->def_f; break;
    case PROTO_T_STRING:
        if (f->flags & PROTO_F_DEFNULL)
            *(kstr_t *)p = KSTR_NULL;
        else
            *(kstr_t *)p = kstr_from(f->def_s ? f->def_s : "");
        break;
    case PROTO_T_BYTES: case PROTO_T_RECORDS:
        *(kbytes_t *)p = (kbytes_t){NULL, (f->flags & PROTO_F_DEFNULL) ? -1 : 0};
        break;
    case PROTO_T_UUID: memset(p, 0, sizeof(kuuid_t)); break;
    case PROTO_T_STRUCT:
        if (is_ptr(f))
            *(void **)p = NULL; /* protogen guarantees a null default */
        else
            proto_set_defaults(f->sub, 0, p);
        break;
    }
}

void proto_set_defaults(const proto_struct_desc *d, int16_t version, void *out)
{
    UNUSED(version); /* Kafka defaults do not depend on the version */
    memset(out, 0, d->size);
    for (uint16_t i = 0; i < d->nfields; i++)
        field_default(&d->fields[i], (uint8_t *)out + d->fields[i].offset);
}

void *proto_new(arena_t *a, const proto_struct_desc *d)
{
    void *p = arena_alloc(a, d->size);
    proto_set_defaults(d, 0, p);
    return p;
}

void *proto_array_init(arena_t *a, void *array, int32_t count, size_t elem_size,
                       const proto_struct_desc *d)
{
    CK_ASSERT(count >= 0 && elem_size > 0);
    CK_ASSERT(!d || d->size == elem_size);
    proto_array_t *arr = array;
    arr->count = count;
    arr->items = count ? arena_alloc(a, (size_t)count * elem_size) : NULL;
    for (int32_t i = 0; d && i < count; i++)
        proto_set_defaults(d, 0, (uint8_t *)arr->items + (size_t)i * elem_size);
    return arr->items;
}

static bool struct_is_default(const proto_struct_desc *d, const uint8_t *p);

/* Whether a (tagged) field holds its default, so need not be written. */
static bool field_is_default(const proto_field_desc *f, const uint8_t *p)
{
    bool defnull = (f->flags & PROTO_F_DEFNULL) != 0;
    if (is_array(f))
        return ((const proto_array_t *)p)->count == (defnull ? -1 : 0);
    switch ((proto_type)f->type) {
    case PROTO_T_BOOL: return *(const bool *)p == (f->def_i != 0);
    case PROTO_T_INT8: return *(const int8_t *)p == (int8_t)f->def_i;
    case PROTO_T_INT16: return *(const int16_t *)p == (int16_t)f->def_i;
    case PROTO_T_UINT16: return *(const uint16_t *)p == (uint16_t)f->def_i;
    case PROTO_T_INT32: return *(const int32_t *)p == (int32_t)f->def_i;
    case PROTO_T_UINT32: return *(const uint32_t *)p == (uint32_t)f->def_i;
    case PROTO_T_INT64: return *(const int64_t *)p == f->def_i;
    case PROTO_T_FLOAT64: return memcmp(p, &f->def_f, sizeof(double)) == 0;
    case PROTO_T_STRING: {
        const kstr_t *s = (const kstr_t *)p;
        if (defnull)
            return s->len < 0;
        return s->len >= 0 && kstr_eq(*s, f->def_s ? f->def_s : "");
    }
    case PROTO_T_BYTES: case PROTO_T_RECORDS:
        return ((const kbytes_t *)p)->len == (defnull ? -1 : 0);
    case PROTO_T_UUID: {
        static const kuuid_t zero;
        return memcmp(p, &zero, sizeof zero) == 0;
    }
    case PROTO_T_STRUCT:
        if (is_ptr(f))
            return *(void *const *)p == NULL;
        return struct_is_default(f->sub, p);
    }
    CK_PANIC("bad proto type %d", f->type);
}

static bool struct_is_default(const proto_struct_desc *d, const uint8_t *p)
{
    for (uint16_t i = 0; i < d->nfields; i++)
        if (!field_is_default(&d->fields[i], p + d->fields[i].offset))
            return false;
    return true;
}

/* ---- small public helpers ------------------------------------------------ */
kstr_t kstr_from(const char *s)
{
    if (!s)
        return KSTR_NULL;
    size_t n = strlen(s);
    CK_ASSERT(n <= INT32_MAX);
    return (kstr_t){s, (int32_t)n};
}

bool kstr_eq(kstr_t a, const char *s)
{
    if (!s || a.len < 0)
        return !s && a.len < 0;
    size_t n = strlen(s);
    return (size_t)a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}

bool proto_flexible(const proto_struct_desc *d, int16_t version)
{
    return d->flexible_min >= 0 && version >= d->flexible_min;
}

const char *proto_err_format(const proto_err_t *e, char *buf, size_t n)
{
    CK_ASSERT(n >= 1);
    const char *name = e->msg_name ? e->msg_name : "message";
    if (e->field[0])
        snprintf(buf, n, "%s v%d: field %s: %s at offset %zu", name, e->version, e->field,
                 e->reason, e->offset);
    else
        snprintf(buf, n, "%s v%d: %s at offset %zu", name, e->version, e->reason, e->offset);
    return buf;
}

/* ---- decoding ------------------------------------------------------------ */
typedef struct dec {
    rd_t *r;
    arena_t *a;
    proto_err_t *err;
    int16_t v;
    int depth;               /* entries used in path */
    size_t items_left;       /* PROTO_DECODE_ITEMS_MAX budget */
    size_t mem_left;         /* arena budget */
    struct {
        const char *name;
        int32_t index;       /* array element being decoded, or -1 */
    } path[PROTO_DEPTH_MAX + 2];
} dec_t;

static void path_format(const dec_t *c, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < c->depth && len < n; i++) {
        int k = snprintf(buf + len, n - len, "%s%s", i ? "." : "", c->path[i].name);
        if (k < 0)
            break;
        len += (size_t)k;
        if (c->path[i].index >= 0 && len < n) {
            k = snprintf(buf + len, n - len, "[%d]", c->path[i].index);
            if (k < 0)
                break;
            len += (size_t)k;
        }
    }
}

__attribute__((format(printf, 3, 4)))
static int fail(dec_t *c, size_t at, const char *fmt, ...)
{
    proto_err_t *e = c->err;
    e->offset = at;
    path_format(c, e->field, sizeof e->field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->reason, sizeof e->reason, fmt, ap);
    va_end(ap);
    return -1;
}

static int push(dec_t *c, const char *name)
{
    if (c->depth >= (int)ARRAY_LEN(c->path))
        return fail(c, rd_offset(c->r), "structs nested too deep");
    c->path[c->depth].name = name;
    c->path[c->depth].index = -1;
    c->depth++;
    return 0;
}

static void *dec_alloc(dec_t *c, size_t n, size_t at)
{
    if (n > c->mem_left) {
        fail(c, at, "needs %zu bytes, over the decode memory limit", n);
        return NULL;
    }
    c->mem_left -= n;
    return arena_alloc(c->a, n);
}

static int dec_struct(dec_t *c, const proto_struct_desc *d, bool flex, void *out);

/* Length of a string/bytes/records/array: -1 null, else >= 0. */
static int dec_len(dec_t *c, bool cmp, bool wide, int64_t *len, size_t at)
{
    if (cmp) {
        uint32_t u;
        if (!rd_uvarint32(c->r, &u))
            return fail(c, at, rd_left(c->r) ? "bad or oversize varint length" : "truncated length");
        *len = (int64_t)u - 1;
    } else if (wide) {
        int32_t n;
        if (!rd_i32(c->r, &n))
            return fail(c, at, "truncated length");
        *len = n;
    } else {
        int16_t n;
        if (!rd_i16(c->r, &n))
            return fail(c, at, "truncated length");
        *len = n;
    }
    if (*len < -1)
        return fail(c, at, "negative length %lld", (long long)*len);
    if (*len > INT32_MAX)
        return fail(c, at, "length %lld too large", (long long)*len);
    return 0;
}

/* A string/bytes view: len checked against the bytes left. */
static int dec_view(dec_t *c, const proto_field_desc *f, bool flex, bool may_null, void *p)
{
    size_t at = rd_offset(c->r);
    bool is_str = f->type == PROTO_T_STRING;
    int64_t len;
    if (dec_len(c, compact(f, flex), !is_str, &len, at) < 0)
        return -1;
    if (len < 0 && !may_null)
        return fail(c, at, "null %s where not nullable", is_str ? "string" : "bytes");
    if (is_str && len > PROTO_STRING_MAX)
        return fail(c, at, "string length %lld over %d", (long long)len, PROTO_STRING_MAX);
    const uint8_t *q = NULL;
    if (len >= 0 && !rd_bytes(c->r, (size_t)len, &q))
        return fail(c, at, "length %lld exceeds bytes left (%zu)", (long long)len, rd_left(c->r));
    if (is_str)
        *(kstr_t *)p = (kstr_t){(const char *)q, (int32_t)len};
    else
        *(kbytes_t *)p = (kbytes_t){q, (int32_t)len};
    return 0;
}

/* A struct value: embedded, or a nullable struct behind a pointer. */
static int dec_struct_value(dec_t *c, const proto_field_desc *f, bool flex, bool may_null,
                            bool in_tag, void *p)
{
    size_t at = rd_offset(c->r);
    if (!is_ptr(f))
        return dec_struct(c, f->sub, flex, p);
    bool is_null = false;
    if (may_null && in_tag) {
        uint32_t u;
        if (!rd_uvarint32(c->r, &u))
            return fail(c, at, "bad or truncated struct presence varint");
        is_null = u == 0;
    } else if (may_null) {
        int8_t b;
        if (!rd_i8(c->r, &b))
            return fail(c, at, "truncated struct presence byte");
        is_null = b < 0;
    }
    *(void **)p = NULL;
    if (is_null)
        return 0;
    void *sp = dec_alloc(c, f->sub->size, at);
    if (!sp)
        return -1;
    *(void **)p = sp;
    return dec_struct(c, f->sub, flex, sp);
}

/* One value (or one array element) of field f into p. */
static int dec_value(dec_t *c, const proto_field_desc *f, bool flex, bool may_null, bool in_tag,
                     void *p)
{
    size_t at = rd_offset(c->r);
    bool ok = true;
    switch ((proto_type)f->type) {
    case PROTO_T_BOOL: {
        uint8_t b = 0;
        ok = rd_u8(c->r, &b);
        *(bool *)p = b != 0;
        break;
    }
    case PROTO_T_INT8: ok = rd_i8(c->r, (int8_t *)p); break;
    case PROTO_T_INT16: ok = rd_i16(c->r, (int16_t *)p); break;
    case PROTO_T_UINT16: ok = rd_u16(c->r, (uint16_t *)p); break;
    case PROTO_T_INT32: ok = rd_i32(c->r, (int32_t *)p); break;
    case PROTO_T_UINT32: ok = rd_u32(c->r, (uint32_t *)p); break;
    case PROTO_T_INT64: ok = rd_i64(c->r, (int64_t *)p); break;
    case PROTO_T_FLOAT64: {
        int64_t bits = 0;
        ok = rd_i64(c->r, &bits);
        memcpy(p, &bits, sizeof(double));
        break;
    }
    case PROTO_T_UUID: {
        const uint8_t *q;
        ok = rd_bytes(c->r, sizeof(kuuid_t), &q);
        if (ok)
            memcpy(p, q, sizeof(kuuid_t));
        break;
    }
    case PROTO_T_STRING: case PROTO_T_BYTES: case PROTO_T_RECORDS:
        return dec_view(c, f, flex, may_null, p);
    case PROTO_T_STRUCT:
        return dec_struct_value(c, f, flex, may_null, in_tag, p);
    }
    return ok ? 0 : fail(c, at, "truncated");
}

/* Reserve budget for n elements, each at least wmin wire bytes. */
static int dec_array_check(dec_t *c, int64_t n, size_t wmin, size_t esz, size_t at)
{
    size_t left = rd_left(c->r);
    if (wmin > 0 && (uint64_t)n > left / wmin)
        return fail(c, at, "array count %lld exceeds bytes left (%zu)", (long long)n, left);
    if ((uint64_t)n > c->items_left)
        return fail(c, at, "array count %lld over the decode item limit", (long long)n);
    if ((uint64_t)n > c->mem_left / esz)
        return fail(c, at, "array count %lld over the decode memory limit", (long long)n);
    c->items_left -= (size_t)n;
    return 0;
}

static int dec_array(dec_t *c, const proto_field_desc *f, bool flex, bool may_null, void *p)
{
    size_t at = rd_offset(c->r);
    proto_array_t *arr = (proto_array_t *)p;
    int64_t n;
    if (dec_len(c, compact(f, flex), true, &n, at) < 0)
        return -1;
    arr->count = -1;
    arr->items = NULL;
    if (n < 0) {
        if (!may_null)
            return fail(c, at, "null array where not nullable");
        return 0;
    }
    size_t esz = value_size(f);
    size_t wmin = value_wire_min(f, c->v, flex, false);
    if (dec_array_check(c, n, wmin, esz, at) < 0)
        return -1;
    arr->count = (int32_t)n;
    if (n == 0)
        return 0;
    uint8_t *items = dec_alloc(c, (size_t)n * esz, at);
    if (!items)
        return -1;
    arr->items = items;
    for (int32_t i = 0; i < arr->count; i++) {
        c->path[c->depth - 1].index = i;
        if (dec_value(c, f, flex, false, false, items + (size_t)i * esz) < 0)
            return -1;
    }
    c->path[c->depth - 1].index = -1;
    return 0;
}

static int dec_field(dec_t *c, const proto_field_desc *f, bool flex, bool in_tag, uint8_t *base)
{
    if (push(c, f->name) < 0)
        return -1;
    void *p = base + f->offset;
    bool may_null = nullable(f, c->v);
    int rc = is_array(f) ? dec_array(c, f, flex, may_null, p)
                         : dec_value(c, f, flex, may_null, in_tag, p);
    if (rc == 0)
        c->depth--;
    return rc;
}

static const proto_field_desc *find_tag(const proto_struct_desc *d, int16_t v, uint32_t tag)
{
    for (uint16_t i = 0; i < d->nfields; i++) {
        const proto_field_desc *f = &d->fields[i];
        if (f->tag >= 0 && (uint32_t)f->tag == tag && present(f, v) && tagged(f, v))
            return f;
    }
    return NULL;
}

/* One known tagged field: decoded from exactly its size bytes. */
static int dec_one_tagged(dec_t *c, const proto_field_desc *f, uint32_t size, uint8_t *base)
{
    rd_t *outer = c->r;
    rd_t sub = *outer;
    sub.end = sub.p + size;
    c->r = &sub;
    int rc = dec_field(c, f, true, true, base);
    c->r = outer;
    if (rc < 0)
        return -1;
    if (rd_left(&sub) != 0)
        return fail(c, rd_offset(&sub), "tagged field %s: %zu of %u bytes left over", f->name,
                    rd_left(&sub), size);
    outer->p = sub.end;
    return 0;
}

static int dec_tagged(dec_t *c, const proto_struct_desc *d, uint8_t *base)
{
    size_t at = rd_offset(c->r);
    uint32_t n;
    if (!rd_uvarint32(c->r, &n))
        return fail(c, at, "bad or truncated tagged field count");
    if (n > rd_left(c->r) / TAGGED_WIRE_MIN)
        return fail(c, at, "tagged field count %u exceeds bytes left (%zu)", n, rd_left(c->r));
    for (uint32_t k = 0; k < n; k++) {
        uint32_t tag, size;
        at = rd_offset(c->r);
        if (!rd_uvarint32(c->r, &tag) || !rd_uvarint32(c->r, &size))
            return fail(c, at, "bad or truncated tagged field header");
        if (size > rd_left(c->r))
            return fail(c, at, "tagged field %u size %u exceeds bytes left (%zu)", tag, size,
                        rd_left(c->r));
        const proto_field_desc *f = find_tag(d, c->v, tag);
        if (!f) {
            CK_ASSERT(rd_skip(c->r, size));
            continue;
        }
        if (dec_one_tagged(c, f, size, base) < 0)
            return -1;
    }
    return 0;
}

static int dec_struct(dec_t *c, const proto_struct_desc *d, bool flex, void *out)
{
    uint8_t *base = out;
    proto_set_defaults(d, c->v, out);
    for (uint16_t i = 0; i < d->nfields; i++) {
        const proto_field_desc *f = &d->fields[i];
        if (!present(f, c->v) || tagged(f, c->v))
            continue;
        if (dec_field(c, f, flex, false, base) < 0)
            return -1;
    }
    return flex ? dec_tagged(c, d, base) : 0;
}

int proto_decode(const proto_struct_desc *d, int16_t version, bool flexible, rd_t *r,
                 arena_t *a, void *out, proto_err_t *err)
{
    CK_ASSERT(d && r && a && out && err);
    memset(err, 0, sizeof *err);
    err->api_key = d->api_key;
    err->version = version;
    err->msg_name = d->name;
    dec_t c = {.r = r, .a = a, .err = err, .v = version, .items_left = PROTO_DECODE_ITEMS_MAX};
    size_t left = MIN(rd_left(r), (size_t)PROTO_DECODE_MEM_MAX);
    c.mem_left = MIN(PROTO_DECODE_MEM_BASE + left * PROTO_DECODE_MEM_FACTOR,
                     (size_t)PROTO_DECODE_MEM_MAX);
    if (!in_range(version, d->min_version, d->max_version))
        return fail(&c, rd_offset(r), "unsupported version (valid %d-%d)", d->min_version,
                    d->max_version);
    return dec_struct(&c, d, flexible, out);
}

/* ---- encoding and sizing: one walker, writing or only counting ------------ */
typedef struct out {
    buf_t *w;                /* NULL: count only */
    size_t n;                /* bytes produced, holes included */
    size_t holes;            /* bytes left to the hole callback */
    proto_hole_fn hole;      /* NULL: no zero-copy records */
    void *hole_arg;
} out_t;

static void put(out_t *o, const void *p, size_t n)
{
    o->n += n;
    if (o->w)
        buf_put(o->w, p, n);
}

static void put_uvarint(out_t *o, uint64_t v)
{
    o->n += uvarint_size(v);
    if (o->w)
        buf_put_uvarint(o->w, v);
}

static void put_be(out_t *o, uint64_t v, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    put(o, b, n);
}

static void enc_struct(out_t *o, const proto_struct_desc *d, int16_t v, bool flex, const uint8_t *in);

/* Length prefix of a string/bytes/array; len -1 is null. */
static void enc_len(out_t *o, bool cmp, size_t width, int64_t len)
{
    if (cmp)
        put_uvarint(o, (uint64_t)(len + 1));
    else
        put_be(o, (uint64_t)len, width);
}

static void enc_view(out_t *o, const proto_field_desc *f, bool flex, bool may_null, const void *p)
{
    bool is_str = f->type == PROTO_T_STRING;
    const void *data = is_str ? (const void *)((const kstr_t *)p)->ptr : (const void *)((const kbytes_t *)p)->ptr;
    int32_t len = is_str ? ((const kstr_t *)p)->len : ((const kbytes_t *)p)->len;
    if (len < 0 && !may_null)
        len = 0; /* null where not allowed goes out as empty */
    if (is_str)
        CK_ASSERT(len <= PROTO_STRING_MAX);
    enc_len(o, compact(f, flex), is_str ? 2 : 4, len < 0 ? -1 : len);
    if (len > 0 && !data) { /* a zero-copy hole: sized, handed to the hook */
        CK_ASSERT(f->type == PROTO_T_RECORDS && (o->hole || !o->w));
        o->n += (size_t)len;
        if (o->w) {
            o->holes += (size_t)len;
            o->hole(o->hole_arg, o->w->len, (size_t)len);
        }
        return;
    }
    if (len > 0)
        put(o, data, (size_t)len);
}

static void enc_value(out_t *o, const proto_field_desc *f, int16_t v, bool flex, bool may_null,
                      bool in_tag, const uint8_t *p)
{
    switch ((proto_type)f->type) {
    case PROTO_T_BOOL: put_be(o, *(const bool *)p ? 1 : 0, 1); break;
    case PROTO_T_INT8: put_be(o, (uint8_t)*(const int8_t *)p, 1); break;
    case PROTO_T_INT16: put_be(o, (uint16_t)*(const int16_t *)p, 2); break;
    case PROTO_T_UINT16: put_be(o, *(const uint16_t *)p, 2); break;
    case PROTO_T_INT32: put_be(o, (uint32_t)*(const int32_t *)p, 4); break;
    case PROTO_T_UINT32: put_be(o, *(const uint32_t *)p, 4); break;
    case PROTO_T_INT64: put_be(o, (uint64_t)*(const int64_t *)p, 8); break;
    case PROTO_T_FLOAT64: {
        uint64_t bits;
        memcpy(&bits, p, sizeof bits);
        put_be(o, bits, 8);
        break;
    }
    case PROTO_T_UUID: put(o, p, sizeof(kuuid_t)); break;
    case PROTO_T_STRING: case PROTO_T_BYTES: case PROTO_T_RECORDS:
        enc_view(o, f, flex, may_null, p);
        break;
    case PROTO_T_STRUCT: {
        const uint8_t *sp = is_ptr(f) ? *(const uint8_t *const *)p : p;
        if (is_ptr(f) && may_null) {
            if (in_tag)
                put_uvarint(o, sp ? 1 : 0);
            else
                put_be(o, sp ? 1 : 0xff, 1);
        }
        CK_ASSERT(sp || may_null); /* protogen: pointer structs are always nullable */
        if (sp)
            enc_struct(o, f->sub, v, flex, sp);
        break;
    }
    }
}

static void enc_field(out_t *o, const proto_field_desc *f, int16_t v, bool flex, bool in_tag,
                      const uint8_t *base)
{
    const uint8_t *p = base + f->offset;
    bool may_null = nullable(f, v);
    if (!is_array(f)) {
        enc_value(o, f, v, flex, may_null, in_tag, p);
        return;
    }
    const proto_array_t *arr = (const proto_array_t *)p;
    int32_t n = arr->count;
    if (n < 0 && !may_null)
        n = 0;
    enc_len(o, compact(f, flex), 4, n < 0 ? -1 : n);
    size_t esz = value_size(f);
    for (int32_t i = 0; i < n; i++)
        enc_value(o, f, v, flex, false, false, (const uint8_t *)arr->items + (size_t)i * esz);
}

static bool write_tagged(const proto_field_desc *f, int16_t v, const uint8_t *base)
{
    return present(f, v) && tagged(f, v) && !field_is_default(f, base + f->offset);
}

static void enc_tagged(out_t *o, const proto_struct_desc *d, int16_t v, const uint8_t *in)
{
    uint32_t n = 0;
    for (uint16_t i = 0; i < d->nfields; i++)
        n += write_tagged(&d->fields[i], v, in);
    put_uvarint(o, n);
    for (uint16_t i = 0; i < d->nfields && n; i++) { /* fields are in tag order */
        const proto_field_desc *f = &d->fields[i];
        if (!write_tagged(f, v, in))
            continue;
        out_t count = {NULL, 0, 0, NULL, NULL};
        enc_field(&count, f, v, true, true, in);
        put_uvarint(o, (uint64_t)f->tag);
        put_uvarint(o, count.n);
        enc_field(o, f, v, true, true, in);
    }
}

static void enc_struct(out_t *o, const proto_struct_desc *d, int16_t v, bool flex, const uint8_t *in)
{
    for (uint16_t i = 0; i < d->nfields; i++) {
        const proto_field_desc *f = &d->fields[i];
        if (present(f, v) && !tagged(f, v))
            enc_field(o, f, v, flex, false, in);
    }
    if (flex)
        enc_tagged(o, d, v, in);
}

void proto_encode_holes(const proto_struct_desc *d, int16_t version, bool flexible,
                        const void *in, buf_t *w, proto_hole_fn hole, void *arg)
{
    CK_ASSERT(d && in && w);
    out_t o = {w, 0, 0, hole, arg};
    size_t before = w->len;
    enc_struct(&o, d, version, flexible, in);
    CK_ASSERT(w->len - before + o.holes == o.n);
}

void proto_encode(const proto_struct_desc *d, int16_t version, bool flexible, const void *in,
                  buf_t *w)
{
    proto_encode_holes(d, version, flexible, in, w, NULL, NULL);
}

size_t proto_size(const proto_struct_desc *d, int16_t version, bool flexible, const void *in)
{
    CK_ASSERT(d && in);
    out_t o = {NULL, 0, 0, NULL, NULL};
    enc_struct(&o, d, version, flexible, in);
    return o.n;
}

/* ---- comparison ---------------------------------------------------------- */
static bool diff_struct(const proto_struct_desc *d, const uint8_t *a, const uint8_t *b,
                        char *path, size_t n, size_t len);

static bool same_view(const void *pa, int32_t la, const void *pb, int32_t lb)
{
    if (la != lb)
        return false;
    return la <= 0 || memcmp(pa, pb, (size_t)la) == 0;
}

static bool same_value(const proto_field_desc *f, const uint8_t *a, const uint8_t *b,
                       char *path, size_t n, size_t len)
{
    switch ((proto_type)f->type) {
    case PROTO_T_BOOL: return *(const bool *)a == *(const bool *)b;
    case PROTO_T_STRING: {
        const kstr_t *x = (const kstr_t *)a, *y = (const kstr_t *)b;
        return same_view(x->ptr, x->len, y->ptr, y->len);
    }
    case PROTO_T_BYTES: case PROTO_T_RECORDS: {
        const kbytes_t *x = (const kbytes_t *)a, *y = (const kbytes_t *)b;
        return same_view(x->ptr, x->len, y->ptr, y->len);
    }
    case PROTO_T_STRUCT:
        if (is_ptr(f)) {
            a = *(const uint8_t *const *)a;
            b = *(const uint8_t *const *)b;
            if (!a || !b)
                return a == b;
        }
        return diff_struct(f->sub, a, b, path, n, len);
    default:
        return memcmp(a, b, value_size(f)) == 0;
    }
}

/* Appends "Name" or "[i]" to path at len (truncating); returns new length. */
static size_t path_add(char *path, size_t n, size_t len, const char *name, int32_t index)
{
    if (!path || len >= n)
        return len;
    int k = name ? snprintf(path + len, n - len, "%s%s", len ? "." : "", name)
                 : snprintf(path + len, n - len, "[%d]", index);
    len += k > 0 ? (size_t)k : 0;
    return len < n ? len : n - 1;
}

static bool same_field(const proto_field_desc *f, const uint8_t *a, const uint8_t *b, char *path,
                       size_t n, size_t len)
{
    len = path_add(path, n, len, f->name, 0);
    if (!is_array(f))
        return same_value(f, a, b, path, n, len);
    const proto_array_t *x = (const proto_array_t *)a, *y = (const proto_array_t *)b;
    if (x->count != y->count)
        return false;
    size_t esz = value_size(f);
    for (int32_t i = 0; i < x->count; i++) {
        size_t l2 = path_add(path, n, len, NULL, i);
        if (!same_value(f, (const uint8_t *)x->items + (size_t)i * esz,
                        (const uint8_t *)y->items + (size_t)i * esz, path, n, l2))
            return false;
        if (path && len < n)
            path[len] = '\0';
    }
    return true;
}

static bool diff_struct(const proto_struct_desc *d, const uint8_t *a, const uint8_t *b,
                        char *path, size_t n, size_t len)
{
    for (uint16_t i = 0; i < d->nfields; i++) {
        const proto_field_desc *f = &d->fields[i];
        if (!same_field(f, a + f->offset, b + f->offset, path, n, len))
            return false;
        if (path && len < n)
            path[len] = '\0';
    }
    return true;
}

bool proto_diff(const proto_struct_desc *d, const void *a, const void *b, char *path, size_t n)
{
    if (path && n)
        path[0] = '\0';
    return diff_struct(d, a, b, n ? path : NULL, n, 0);
}

bool proto_equal(const proto_struct_desc *d, const void *a, const void *b)
{
    return diff_struct(d, a, b, NULL, 0, 0);
}

/* ---- internal-topic records: "int16 version, body" ------------------------------ */

void proto_versioned_encode(const proto_struct_desc *d, int16_t version, const void *body, buf_t *out)
{
    buf_put_i16(out, version);
    proto_encode(d, version, proto_flexible(d, version), body, out);
}

int proto_versioned_decode(const proto_struct_desc *d, const uint8_t *p, int32_t len, arena_t *a, void *out)
{
    rd_t r;
    rd_init(&r, p, len > 0 ? (size_t)len : 0);
    int16_t v;
    if (!p || !rd_i16(&r, &v) || v < d->min_version)
        return -1;
    v = v > d->max_version ? d->max_version : v;
    proto_err_t err;
    return proto_decode(d, v, proto_flexible(d, v), &r, a, out, &err);
}
