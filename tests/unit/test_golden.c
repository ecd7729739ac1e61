/*
 * Golden vectors: requests that real clients (librdkafka, kafka-python,
 * kafkajs) sent, captured by tools/capture_golden.py into tests/data/golden/
 * as <client>-<ApiName>-v<version>.bin, each file one frame's bytes after the
 * 4-byte length (request header + body). Chronik's codec must decode every
 * one and re-encode it to the identical bytes. Run from the repository root.
 */
#include "test.h"

#include <dirent.h>
#include <errno.h>

#include "base/arena.h"
#include "base/buf.h"
#include "proto/proto.h"

#define GOLDEN_DIR "tests/data/golden"
#define GOLDEN_SUFFIX ".bin"
#define GOLDEN_FILES_MAX 512
#define GOLDEN_NAME_MAX 128
#define GOLDEN_FILE_BYTES_MAX (1 << 20)
#define GOLDEN_DIFF_CONTEXT 16

typedef struct golden {
    char name[GOLDEN_NAME_MAX];
    uint8_t *data;
    size_t len;
} golden_t;

static golden_t goldens[GOLDEN_FILES_MAX];
static int golden_count = -1; /* -1: not loaded yet */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const golden_t *)a)->name, ((const golden_t *)b)->name);
}

/* Reads a whole file into an exact-size allocation (so ASan sees overreads). */
static bool read_whole(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    uint8_t *tmp = malloc(GOLDEN_FILE_BYTES_MAX);
    size_t n = tmp ? fread(tmp, 1, GOLDEN_FILE_BYTES_MAX, f) : 0;
    bool ok = tmp && !ferror(f) && feof(f) && n > 0;
    fclose(f);
    *out = ok ? malloc(n) : NULL;
    if (*out)
        memcpy(*out, tmp, n);
    *len = n;
    free(tmp);
    return *out != NULL;
}

/* Loads every *.bin of GOLDEN_DIR once, sorted by name; returns the count. */
static int load_goldens(void)
{
    if (golden_count >= 0)
        return golden_count;
    golden_count = 0;
    DIR *d = opendir(GOLDEN_DIR);
    if (!d) {
        fprintf(stderr, "  cannot open %s: %s (run from the repository root)\n", GOLDEN_DIR,
                strerror(errno));
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL && golden_count < GOLDEN_FILES_MAX) {
        size_t name_len = strlen(e->d_name);
        if (!has_suffix(e->d_name, GOLDEN_SUFFIX) || name_len >= GOLDEN_NAME_MAX)
            continue;
        golden_t *g = &goldens[golden_count];
        memcpy(g->name, e->d_name, name_len + 1);
        char path[sizeof GOLDEN_DIR + GOLDEN_NAME_MAX];
        memcpy(path, GOLDEN_DIR "/", sizeof GOLDEN_DIR);
        memcpy(path + sizeof GOLDEN_DIR, g->name, name_len + 1);
        if (read_whole(path, &g->data, &g->len))
            golden_count++;
        else
            fprintf(stderr, "  cannot read %s\n", path);
    }
    closedir(d);
    qsort(goldens, (size_t)golden_count, sizeof goldens[0], by_name);
    return golden_count;
}

static void report_err(const char *name, const char *what, const proto_err_t *err)
{
    char msg[PROTO_ERR_MSG_MAX];
    fprintf(stderr, "  %s: %s: %s\n", name, what, proto_err_format(err, msg, sizeof msg));
}

static void report_first_difference(const char *name, const uint8_t *want, size_t want_len,
                                    const uint8_t *got, size_t got_len)
{
    size_t i = 0;
    while (i < want_len && i < got_len && want[i] == got[i])
        i++;
    fprintf(stderr, "  %s: re-encoded %zu bytes, captured %zu; first difference at offset %zu\n",
            name, got_len, want_len, i);
    size_t from = i > GOLDEN_DIFF_CONTEXT ? i - GOLDEN_DIFF_CONTEXT : 0;
    fprintf(stderr, "    captured:  ");
    for (size_t k = from; k < want_len && k < i + GOLDEN_DIFF_CONTEXT; k++)
        fprintf(stderr, "%02x", want[k]);
    fprintf(stderr, "\n    re-encoded:");
    for (size_t k = from; k < got_len && k < i + GOLDEN_DIFF_CONTEXT; k++)
        fprintf(stderr, "%02x", got[k]);
    fprintf(stderr, "\n");
}

/* A decoded request: header, body and where the body starts in the frame. */
typedef struct decoded {
    proto_req_header_t h;
    void *body;
    size_t body_offset;
} decoded_t;

/* Decodes header and body of frame[0..len); false (with a report) on any
 * error or on bytes left over after the body. */
static bool decode_frame(const char *name, const uint8_t *frame, size_t len, arena_t *a,
                         decoded_t *out)
{
    rd_t r;
    rd_init(&r, frame, len);
    proto_err_t err;
    if (proto_request_header_decode(&r, a, &out->h, &err) < 0) {
        report_err(name, "header does not decode", &err);
        return false;
    }
    if (!out->h.version_ok) {
        fprintf(stderr, "  %s: version %d outside the codec's range\n", name, out->h.api_version);
        return false;
    }
    out->body_offset = rd_offset(&r);
    out->body = arena_alloc(a, out->h.api->request->size);
    if (proto_request_body_decode(&out->h, &r, a, out->body, &err) < 0) {
        report_err(name, "body does not decode", &err);
        return false;
    }
    if (rd_left(&r) != 0) {
        fprintf(stderr, "  %s: %zu bytes left after the body\n", name, rd_left(&r));
        return false;
    }
    return true;
}

/* Decode, re-encode, compare with the capture: the header alone, the body's
 * predicted size, and the whole frame byte for byte. */
static bool roundtrip_one(const golden_t *g)
{
    arena_t a;
    arena_init(&a);
    buf_t w;
    buf_init(&w);
    decoded_t d;
    bool ok = decode_frame(g->name, g->data, g->len, &a, &d);
    if (ok) {
        const proto_struct_desc *desc = d.h.api->request;
        proto_request_header_encode(&d.h, &w);
        if (w.len != d.body_offset || memcmp(w.data, g->data, w.len) != 0) {
            fprintf(stderr, "  %s: request header re-encodes differently\n", g->name);
            ok = false;
        }
        size_t body_len = g->len - d.body_offset;
        size_t predicted = proto_size(desc, d.h.api_version, d.h.flexible, d.body);
        if (predicted != body_len) {
            fprintf(stderr, "  %s: proto_size %zu, body is %zu bytes\n", g->name, predicted,
                    body_len);
            ok = false;
        }
        proto_encode(desc, d.h.api_version, d.h.flexible, d.body, &w);
        if (w.len != g->len || memcmp(w.data, g->data, g->len) != 0) {
            report_first_difference(g->name, g->data, g->len, w.data, w.len);
            ok = false;
        }
    }
    buf_free(&w);
    arena_free(&a);
    return ok;
}

/* The golden set exists and is readable: a missing directory must not pass silently. */
TEST(golden_vectors_present)
{
    int n = load_goldens();
    CHECK(n > 0);
    for (int i = 0; i < n; i++)
        CHECK(goldens[i].len >= 8); /* api key, version, correlation id at least */
}

/* Each file's name states the api and version that its header carries. */
TEST(golden_names_match_headers)
{
    int n = load_goldens();
    REQUIRE(n > 0);
    for (int i = 0; i < n; i++) {
        const golden_t *g = &goldens[i];
        int16_t key = (int16_t)be16_load(g->data), version = (int16_t)be16_load(g->data + 2);
        const proto_api_desc *api = proto_api(key);
        char want[GOLDEN_NAME_MAX];
        snprintf(want, sizeof want, "-%s-v%d%s", api ? api->name : "?", version, GOLDEN_SUFFIX);
        bool ok = api && has_suffix(g->name, want);
        if (!ok)
            fprintf(stderr, "  %s: header says api %d v%d (\"%s\")\n", g->name, key, version, want);
        CHECK(ok);
    }
}

/* Every captured request decodes completely and re-encodes to identical bytes. */
TEST(golden_requests_roundtrip_byte_identical)
{
    int n = load_goldens();
    REQUIRE(n > 0);
    int failed = 0;
    for (int i = 0; i < n; i++)
        if (!roundtrip_one(&goldens[i]))
            failed++;
    if (failed)
        fprintf(stderr, "  %d of %d golden requests failed the round trip\n", failed, n);
    CHECK_EQ_INT(failed, 0);
}

/* Every strict prefix of a captured request fails to decode, without reading past its end. */
TEST(golden_truncated_requests_rejected)
{
    int n = load_goldens();
    REQUIRE(n > 0);
    for (int i = 0; i < n; i++) {
        const golden_t *g = &goldens[i];
        for (size_t cut = 0; cut < g->len; cut++) {
            uint8_t *copy = malloc(cut ? cut : 1);
            REQUIRE(copy);
            memcpy(copy, g->data, cut);
            arena_t a;
            arena_init(&a);
            rd_t r;
            rd_init(&r, copy, cut);
            proto_req_header_t h;
            proto_err_t err;
            bool decoded = proto_request_header_decode(&r, &a, &h, &err) == 0 && h.version_ok;
            if (decoded) {
                void *body = arena_alloc(&a, h.api->request->size);
                decoded = proto_request_body_decode(&h, &r, &a, body, &err) == 0;
            }
            if (decoded)
                fprintf(stderr, "  %s: prefix of %zu of %zu bytes decoded\n", g->name, cut, g->len);
            CHECK(!decoded);
            arena_free(&a);
            free(copy);
        }
    }
}
