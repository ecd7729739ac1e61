/*
 * http_parse.h - the admin endpoint's HTTP/1.x request parser (RFC 9112),
 * pure: no I/O, no allocation, no clock. It reads the bytes a connection has
 * received so far and says whether they hold a whole request, need more, or
 * are refused, and with which status.
 *
 * Accepted: optional empty lines, then "METHOD SP origin-form SP HTTP/1.0|1.1",
 * header fields "name: value" (lines end in CRLF or a bare LF), an empty
 * line, and a body of Content-Length bytes (read and ignored: every route
 * is a GET). Refused, with the status to answer:
 *   400  a malformed request line or header line, a folded header, a bad or
 *        conflicting Content-Length, HTTP/1.1 without Host
 *   413  Content-Length above HTTP_BODY_MAX
 *   414  a target longer than HTTP_TARGET_MAX
 *   431  a head longer than HTTP_HEAD_MAX or more than HTTP_HEADERS_MAX fields
 *   501  a Transfer-Encoding (no chunked bodies here)
 *   505  an HTTP version other than 1.0 and 1.1
 * The request's strings are views into the caller's buffer.
 */
#ifndef CHRONIK_ADMIN_HTTP_PARSE_H
#define CHRONIK_ADMIN_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

enum {
    HTTP_HEAD_MAX = 8192,   /* request line and header fields, with their line ends */
    HTTP_HEADERS_MAX = 48,  /* header fields */
    HTTP_TARGET_MAX = 2048, /* the request target (path and query) */
    HTTP_BODY_MAX = 4096,   /* Content-Length */
};

/* What http_parse returns besides a refusal status (>= 400). */
enum { HTTP_PARSE_MORE = 0, HTTP_PARSE_DONE = 1 };

typedef enum http_method { HTTP_GET, HTTP_HEAD, HTTP_OTHER } http_method;

typedef struct http_req {
    http_method method;
    const char *path;      /* the target up to '?' */
    size_t path_len;
    const char *query;     /* after '?', "" when none */
    size_t query_len;
    int version_minor;     /* HTTP/1.0 or HTTP/1.1 */
    bool keep_alive;       /* the connection stays open after the answer */
    size_t content_length;
    size_t len;            /* bytes of the request: head and body */
} http_req;

/* Parse the request at the start of buf[0..len). HTTP_PARSE_DONE fills req
 * (req->len bytes are the request); HTTP_PARSE_MORE asks for more bytes;
 * any other value is the status to refuse the request with (the connection
 * must then close: the rest of its bytes cannot be framed). */
int http_parse(const char *buf, size_t len, http_req *req);

/* True when query (a view as in http_req) holds name=value as one of its
 * &-separated parameters. */
bool http_query_has(const char *query, size_t query_len, const char *name, const char *value);

#endif
