/* test_http_parse.c - the admin endpoint's HTTP request parser (src/admin/http_parse.c). */
#include "admin/http_parse.h"
#include "test.h"

static int parse(const char *s, http_req *rq) { return http_parse(s, strlen(s), rq); }

static int status_of(const char *s)
{
    http_req rq;
    return parse(s, &rq);
}

/* A GET with a query: path and query are views; HTTP/1.1 keeps the connection. */
TEST(get_with_query)
{
    const char *s = "GET /status?format=text&x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n";
    http_req rq;
    CHECK_EQ_INT(parse(s, &rq), HTTP_PARSE_DONE);
    CHECK(rq.method == HTTP_GET);
    CHECK(rq.path_len == 7 && memcmp(rq.path, "/status", 7) == 0);
    CHECK(http_query_has(rq.query, rq.query_len, "format", "text"));
    CHECK(!http_query_has(rq.query, rq.query_len, "format", "tex"));
    CHECK(http_query_has(rq.query, rq.query_len, "x", "1"));
    CHECK(rq.keep_alive);
    CHECK_EQ_INT(rq.len, strlen(s));
}

/* Every strict prefix of a request asks for more bytes. */
TEST(prefixes_need_more)
{
    const char *s = "HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    http_req rq;
    for (size_t n = 0; n < strlen(s); n++)
        CHECK_EQ_INT(http_parse(s, n, &rq), HTTP_PARSE_MORE);
    CHECK_EQ_INT(parse(s, &rq), HTTP_PARSE_DONE);
    CHECK(rq.method == HTTP_HEAD && rq.content_length == 3 && rq.len == strlen(s));
}

/* Two pipelined requests: the first's length ends where the second starts. */
TEST(pipelined)
{
    const char *s = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    http_req rq;
    CHECK_EQ_INT(parse(s, &rq), HTTP_PARSE_DONE);
    CHECK_EQ_INT(rq.len, strlen(s) / 2);
    CHECK_EQ_INT(parse(s + rq.len, &rq), HTTP_PARSE_DONE);
    CHECK(rq.path_len == 2 && rq.path[1] == 'b');
}

/* Keep-alive: 1.1 unless "close", 1.0 only with "keep-alive"; bare LF ends lines too. */
TEST(connection_options)
{
    http_req rq;
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, close\r\n\r\n", &rq), 1);
    CHECK(!rq.keep_alive);
    CHECK_EQ_INT(parse("GET / HTTP/1.0\n\n", &rq), 1);
    CHECK(!rq.keep_alive && rq.version_minor == 0);
    CHECK_EQ_INT(parse("\r\nGET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n", &rq), 1);
    CHECK(rq.keep_alive);
}

/* Malformed input is refused with the status that says why. */
TEST(refusals)
{
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\n\r\n"), 400);                      /* no Host */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
    CHECK_EQ_INT(status_of("GET /\r\n\r\n"), 400);
    CHECK_EQ_INT(status_of("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    CHECK_EQ_INT(status_of("GET http://x/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    CHECK_EQ_INT(status_of("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"), 400);
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n"), 400);
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), 400);
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 400);
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 4097\r\n\r\n"), 413);
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
    CHECK_EQ_INT(status_of("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
    CHECK_EQ_INT(status_of("GET / HTTPS/1.1\r\nHost: a\r\n\r\n"), 400);
    http_req rq;
    CHECK_EQ_INT(parse("DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", &rq), HTTP_PARSE_DONE);
    CHECK(rq.method == HTTP_OTHER);
}

/* Limits: a long target, too many fields, a head that never ends. */
TEST(limits)
{
    static char s[3 * HTTP_HEAD_MAX];
    int n = snprintf(s, sizeof s, "GET /");
    memset(s + n, 'a', HTTP_TARGET_MAX);
    snprintf(s + n + HTTP_TARGET_MAX, sizeof s - (size_t)n - HTTP_TARGET_MAX, " HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK_EQ_INT(status_of(s), 414);
    n = snprintf(s, sizeof s, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < HTTP_HEADERS_MAX; i++)
        n += snprintf(s + n, sizeof s - (size_t)n, "X-%d: v\r\n", i);
    snprintf(s + n, sizeof s - (size_t)n, "\r\n");
    CHECK_EQ_INT(status_of(s), 431);
    n = snprintf(s, sizeof s, "GET / HTTP/1.1\r\nX: ");
    memset(s + n, 'v', HTTP_HEAD_MAX);
    s[n + HTTP_HEAD_MAX] = 0; /* no end in sight: refused without waiting for it */
    CHECK_EQ_INT(status_of(s), 431);
}
