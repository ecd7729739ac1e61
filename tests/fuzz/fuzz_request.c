/*
 * fuzz_request.c - libFuzzer target for request decoding: the header, then
 * the body of whatever api key and version the bytes name. A decode that
 * succeeds must re-encode to bytes that decode to an equal request, and
 * re-encoding that gives the same bytes again (the encoding is canonical).
 * Seeds: tests/fuzz/corpus/request/.
 */
#include <stdio.h>
#include <stdlib.h>

#include "proto/proto.h"

#define FUZZ_REQUIRE(cond)                                                       \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz_request: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                             \
        }                                                                        \
    } while (0)

/* Header + body from bytes; 0 on success. */
static int decode_request(const uint8_t *data, size_t size, arena_t *a, proto_req_header_t *h,
                          void **body, size_t *left)
{
    rd_t r;
    rd_init(&r, data, size);
    proto_err_t err;
    char msg[PROTO_ERR_MSG_MAX];
    if (proto_request_header_decode(&r, a, h, &err) < 0 || !h->version_ok) {
        proto_err_format(&err, msg, sizeof msg); /* the formatter must cope too */
        return -1;
    }
    *body = arena_alloc(a, h->api->request->size);
    if (proto_request_body_decode(h, &r, a, *body, &err) < 0) {
        proto_err_format(&err, msg, sizeof msg);
        return -1;
    }
    *left = rd_left(&r);
    return 0;
}

static void check_round_trip(const proto_req_header_t *h, const void *body, arena_t *a)
{
    buf_t w1, w2;
    buf_init(&w1);
    buf_init(&w2);
    proto_request_encode(h->api_key, h->api_version, h->correlation_id, h->client_id, body, &w1);
    size_t body_len = proto_size(h->api->request, h->api_version, h->flexible, body);
    FUZZ_REQUIRE(body_len <= w1.len);

    proto_req_header_t h2;
    void *body2 = NULL;
    size_t left = 0;
    FUZZ_REQUIRE(decode_request(w1.data, w1.len, a, &h2, &body2, &left) == 0);
    FUZZ_REQUIRE(left == 0);
    FUZZ_REQUIRE(h2.api_key == h->api_key && h2.api_version == h->api_version);
    FUZZ_REQUIRE(h2.correlation_id == h->correlation_id);
    FUZZ_REQUIRE(h2.client_id.len == h->client_id.len);
    FUZZ_REQUIRE(h2.client_id.len <= 0 ||
                 memcmp(h2.client_id.ptr, h->client_id.ptr, (size_t)h->client_id.len) == 0);
    FUZZ_REQUIRE(proto_size(h2.api->request, h2.api_version, h2.flexible, body2) == body_len);
    char path[256];
    if (!proto_diff(h->api->request, body, body2, path, sizeof path)) {
        fprintf(stderr, "fuzz_request: %s v%d differs at %s\n", h->api->name, h->api_version, path);
        abort();
    }
    proto_request_encode(h2.api_key, h2.api_version, h2.correlation_id, h2.client_id, body2, &w2);
    FUZZ_REQUIRE(w1.len == w2.len && memcmp(w1.data, w2.data, w1.len) == 0);
    buf_free(&w1);
    buf_free(&w2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t a;
    arena_init(&a);
    proto_req_header_t h;
    void *body = NULL;
    size_t left = 0;
    if (decode_request(data, size, &a, &h, &body, &left) == 0)
        check_round_trip(&h, body, &a);
    arena_free(&a);
    return 0;
}
