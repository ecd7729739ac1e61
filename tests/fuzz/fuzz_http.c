/*
 * fuzz_http.c - libFuzzer target for the admin endpoint's HTTP request
 * parser (src/admin/http_parse.c). Whatever the bytes, the parser answers
 * more, done or a refusal status; a whole request lies within the bytes,
 * its path is a view into them starting with '/', every strict prefix of it
 * asks for more, and parsing it alone gives the same request.
 * Seeds: tests/fuzz/corpus/http/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/http_parse.h"

/* A broken property: say which and stop, so that libFuzzer keeps the input. */
static void require(bool ok, int line, const char *what)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_http: line %d: %s\n", line, what);
    abort();
}
#define FUZZ_REQUIRE(cond) require((cond), __LINE__, #cond)

static bool refusal(int r)
{
    return r == 400 || r == 413 || r == 414 || r == 431 || r == 501 || r == 505;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    http_req rq;
    int r = http_parse(buf, size, &rq);
    FUZZ_REQUIRE(r == HTTP_PARSE_MORE || r == HTTP_PARSE_DONE || refusal(r));
    if (r != HTTP_PARSE_DONE)
        return 0;
    FUZZ_REQUIRE(rq.len > 0 && rq.len <= size);
    FUZZ_REQUIRE(rq.path >= buf && rq.path + rq.path_len <= buf + rq.len && rq.path_len >= 1 && rq.path[0] == '/');
    FUZZ_REQUIRE(rq.query_len == 0 || (rq.query >= buf && rq.query + rq.query_len <= buf + rq.len));
    FUZZ_REQUIRE(rq.content_length <= HTTP_BODY_MAX && (rq.version_minor == 0 || rq.version_minor == 1));
    http_req again;
    FUZZ_REQUIRE(http_parse(buf, rq.len - 1, &again) == HTTP_PARSE_MORE);
    FUZZ_REQUIRE(http_parse(buf, rq.len, &again) == HTTP_PARSE_DONE);
    FUZZ_REQUIRE(again.len == rq.len && again.path == rq.path && again.keep_alive == rq.keep_alive);
    (void)http_query_has(rq.query, rq.query_len, "format", "text");
    return 0;
}
