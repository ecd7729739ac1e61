/*
 * test_proto_roundtrip.c - every schema (messages, headers, records) at every
 * valid version: random values filled by walking the descriptors encode to
 * exactly proto_size bytes and decode back to equal values.
 */
#include "proto/proto.h"
#include "test.h"

#define ITERATIONS 40       /* random values per (schema, version) */
#define ARRAY_MAX 3         /* elements per random array */
#define LONG_STRING 300     /* occasionally, to get multi-byte varints */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static bool one_in(unsigned n) { return rnd() % n == 0; }

/* Mostly small numbers, sometimes extremes, sometimes any bits. */
static uint64_t rnd_int(void)
{
    switch (rnd() % 4) {
    case 0: return rnd() % 4;
    case 1: return (uint64_t)-1 - rnd() % 2;
    case 2: return rnd() % 1000;
    default: return rnd();
    }
}

static int32_t rnd_len(int32_t small)
{
    return one_in(10) ? (int32_t)(rnd() % LONG_STRING) : (int32_t)(rnd() % (uint64_t)small);
}

static void *rnd_bytes(arena_t *a, int32_t n)
{
    uint8_t *p = arena_alloc(a, (size_t)n + 1);
    for (int32_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
    return p;
}

static void fill_struct(const proto_struct_desc *d, int16_t v, bool flex, void *out, arena_t *a);

static void fill_value(const proto_field_desc *f, int16_t v, bool flex, bool may_null, void *p,
                       arena_t *a)
{
    switch ((proto_type)f->type) {
    case PROTO_T_BOOL: *(bool *)p = rnd() & 1; break;
    case PROTO_T_INT8: *(int8_t *)p = (int8_t)rnd_int(); break;
    case PROTO_T_INT16: *(int16_t *)p = (int16_t)rnd_int(); break;
    case PROTO_T_UINT16: *(uint16_t *)p = (uint16_t)rnd_int(); break;
    case PROTO_T_INT32: *(int32_t *)p = (int32_t)rnd_int(); break;
    case PROTO_T_UINT32: *(uint32_t *)p = (uint32_t)rnd_int(); break;
    case PROTO_T_INT64: *(int64_t *)p = (int64_t)rnd_int(); break;
    case PROTO_T_FLOAT64: {
        uint64_t bits = rnd();
        memcpy(p, &bits, sizeof bits);
        break;
    }
    case PROTO_T_UUID:
        for (int i = 0; i < 16; i++)
            ((kuuid_t *)p)->b[i] = one_in(2) ? 0 : (uint8_t)rnd();
        break;
    case PROTO_T_STRING: {
        int32_t n = may_null && one_in(6) ? -1 : rnd_len(8);
        *(kstr_t *)p = (kstr_t){n < 0 ? NULL : rnd_bytes(a, n), n};
        break;
    }
    case PROTO_T_BYTES: case PROTO_T_RECORDS: {
        int32_t n = may_null && one_in(6) ? -1 : rnd_len(17);
        *(kbytes_t *)p = (kbytes_t){n < 0 ? NULL : rnd_bytes(a, n), n};
        break;
    }
    case PROTO_T_STRUCT:
        if (f->flags & PROTO_F_PTR) {
            void *sp = NULL;
            if (!(may_null && one_in(3))) {
                sp = arena_alloc(a, f->sub->size);
                fill_struct(f->sub, v, flex, sp, a);
            }
            *(void **)p = sp;
        } else {
            fill_struct(f->sub, v, flex, p, a);
        }
        break;
    }
}

static size_t item_size(const proto_field_desc *f)
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
    abort();
}

static void fill_field(const proto_field_desc *f, int16_t v, bool flex, void *p, arena_t *a)
{
    bool may_null = v >= f->null_min && v <= f->null_max;
    if (!(f->flags & PROTO_F_ARRAY)) {
        fill_value(f, v, flex, may_null, p, a);
        return;
    }
    proto_array_t *arr = p;
    if (may_null && one_in(6)) {
        *arr = (proto_array_t){-1, NULL};
        return;
    }
    arr->count = (int32_t)(rnd() % (ARRAY_MAX + 1));
    size_t esz = item_size(f);
    arr->items = arr->count ? arena_alloc(a, (size_t)arr->count * esz) : NULL;
    for (int32_t i = 0; i < arr->count; i++)
        fill_value(f, v, flex, false, (uint8_t *)arr->items + (size_t)i * esz, a);
}

static void fill_struct(const proto_struct_desc *d, int16_t v, bool flex, void *out, arena_t *a)
{
    proto_set_defaults(d, v, out);
    for (uint16_t i = 0; i < d->nfields; i++) {
        const proto_field_desc *f = &d->fields[i];
        bool present = v >= f->ver_min && v <= f->ver_max;
        bool tagged = f->tag >= 0 && v >= f->tag_min && v <= f->tag_max;
        if (!present || (tagged && (!flex || one_in(3))))
            continue; /* absent, or a tagged field left at its default */
        fill_field(f, v, flex, (uint8_t *)out + f->offset, a);
    }
}

/* One random value of d at v: encode, size, decode, compare, re-encode. */
static bool round_trip(const proto_struct_desc *d, int16_t v, arena_t *a, buf_t *w1, buf_t *w2)
{
    bool flex = proto_flexible(d, v);
    void *in = arena_alloc(a, d->size), *out = arena_alloc(a, d->size);
    fill_struct(d, v, flex, in, a);
    buf_reset(w1);
    buf_reset(w2);
    proto_encode(d, v, flex, in, w1);
    size_t sz = proto_size(d, v, flex, in);
    rd_t r;
    rd_init(&r, w1->data, w1->len);
    proto_err_t err;
    char msg[PROTO_ERR_MSG_MAX], path[256];
    if (sz != w1->len) {
        fprintf(stderr, "  %s v%d: size %zu != encoded %zu\n", d->name, v, sz, w1->len);
        return false;
    }
    if (proto_decode(d, v, flex, &r, a, out, &err) < 0) {
        fprintf(stderr, "  %s v%d: %s\n", d->name, v, proto_err_format(&err, msg, sizeof msg));
        return false;
    }
    if (rd_left(&r) != 0 || !proto_diff(d, in, out, path, sizeof path)) {
        fprintf(stderr, "  %s v%d: differs at '%s' (%zu left)\n", d->name, v, path, rd_left(&r));
        return false;
    }
    proto_encode(d, v, flex, out, w2);
    if (w1->len != w2->len || memcmp(w1->data, w2->data, w1->len) != 0) {
        fprintf(stderr, "  %s v%d: re-encoding differs\n", d->name, v);
        return false;
    }
    return true;
}

static int run_list(const proto_struct_desc *const *list, size_t count, int *pairs)
{
    int failures = 0;
    arena_t a;
    arena_init(&a);
    buf_t w1, w2;
    buf_init(&w1);
    buf_init(&w2);
    for (size_t i = 0; i < count; i++) {
        const proto_struct_desc *d = list[i];
        CHECK(d->is_root);
        for (int v = d->min_version; v <= d->max_version; v++) {
            (*pairs)++;
            for (int it = 0; it < ITERATIONS; it++) {
                rng_state = (uint64_t)i * 1000003u + (uint64_t)v * 7919u + (uint64_t)it;
                if (!round_trip(d, (int16_t)v, &a, &w1, &w2) && ++failures > 20)
                    goto out;
                arena_reset(&a);
            }
        }
    }
out:
    buf_free(&w1);
    buf_free(&w2);
    arena_free(&a);
    return failures;
}

/* Every message schema (requests, responses, headers, data) round-trips at
 * every valid version. */
TEST(roundtrip_messages)
{
    int pairs = 0;
    CHECK_EQ_INT(run_list(proto_message_descs, proto_message_descs_count, &pairs), 0);
    printf("roundtrip: %zu message schemas, %d (schema, version) pairs x %d values\n",
           proto_message_descs_count, pairs, ITERATIONS);
    CHECK(pairs > 600);
}

/* Every metadata, group-coordinator and internal record round-trips at every
 * valid version. */
TEST(roundtrip_records)
{
    int pairs = 0;
    CHECK_EQ_INT(run_list(proto_record_descs, proto_record_descs_count, &pairs), 0);
    printf("roundtrip: %zu record schemas, %d (schema, version) pairs x %d values\n",
           proto_record_descs_count, pairs, ITERATIONS);
    CHECK(pairs > 40);
}

/* ---- the decode memory budget covers every valid message ------------------ */
static size_t wire_min(const proto_struct_desc *d, int16_t v, bool flex);

static size_t field_wire_min(const proto_field_desc *f, int16_t v, bool flex, bool elem)
{
    bool cmp = flex && !(f->flags & PROTO_F_NOFLEX);
    bool may_null = !elem && v >= f->null_min && v <= f->null_max;
    if ((f->flags & PROTO_F_ARRAY) && !elem)
        return cmp ? 1 : 4;
    switch ((proto_type)f->type) {
    case PROTO_T_STRING: return cmp ? 1 : 2;
    case PROTO_T_BYTES: case PROTO_T_RECORDS: return cmp ? 1 : 4;
    case PROTO_T_STRUCT: return may_null ? 1 : wire_min(f->sub, v, flex);
    default: return item_size(f) == sizeof(bool) ? 1 : item_size(f);
    }
}

static size_t wire_min(const proto_struct_desc *d, int16_t v, bool flex)
{
    size_t n = flex ? 1 : 0;
    for (uint16_t i = 0; i < d->nfields; i++) {
        const proto_field_desc *f = &d->fields[i];
        bool tagged = f->tag >= 0 && v >= f->tag_min && v <= f->tag_max;
        if (v >= f->ver_min && v <= f->ver_max && !tagged)
            n += field_wire_min(f, v, flex, false);
    }
    return n;
}

/* Largest (C bytes / least wire bytes) over array elements in d at v. */
static double worst_ratio(const proto_struct_desc *d, int16_t v, bool flex, int depth)
{
    double worst = 0;
    for (uint16_t i = 0; i < d->nfields && depth < PROTO_DEPTH_MAX; i++) {
        const proto_field_desc *f = &d->fields[i];
        if (v < f->ver_min || v > f->ver_max)
            continue;
        if (f->flags & PROTO_F_ARRAY) {
            size_t wmin = field_wire_min(f, v, flex, true);
            double ratio = (double)item_size(f) / (double)(wmin ? wmin : 1);
            if (wmin == 0)
                printf("  note: %s.%s v%d elements can be 0 bytes\n", d->name, f->name, v);
            worst = ratio > worst ? ratio : worst;
        }
        if (f->type == PROTO_T_STRUCT) {
            double r = worst_ratio(f->sub, v, flex, depth + 1);
            worst = r > worst ? r : worst;
        }
    }
    return worst;
}

/* PROTO_DECODE_MEM_FACTOR is at least the worst arena-bytes-per-wire-byte of
 * any array element, so a well-formed message never hits the memory limit. */
TEST(memory_budget_covers_valid_messages)
{
    double worst = 0;
    const char *worst_name = "";
    for (int list = 0; list < 2; list++) {
        const proto_struct_desc *const *l = list ? proto_record_descs : proto_message_descs;
        size_t count = list ? proto_record_descs_count : proto_message_descs_count;
        for (size_t i = 0; i < count; i++)
            for (int v = l[i]->min_version; v <= l[i]->max_version; v++) {
                double r = worst_ratio(l[i], (int16_t)v, proto_flexible(l[i], (int16_t)v), 0);
                if (r > worst) {
                    worst = r;
                    worst_name = l[i]->name;
                }
            }
    }
    printf("roundtrip: worst arena bytes per wire byte %.1f (%s), limit %d\n", worst, worst_name,
           PROTO_DECODE_MEM_FACTOR);
    CHECK(worst <= PROTO_DECODE_MEM_FACTOR);
}
