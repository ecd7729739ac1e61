/* http_parse.c - the admin endpoint's HTTP/1.x request parser (http_parse.h).
 *
 * Two passes over the bytes: the first finds the empty line that ends the
 * head (and enforces the head's size and field count while it looks, so
 * that a client sending an endless head is refused as soon as it passes
 * the limit); the second reads the request line and each field. */
#include "admin/http_parse.h"

#include <string.h>
#include <strings.h>

#include "base/util.h"

/* A token character (RFC 9110 §5.6.2). */
static bool tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value character: visible, space, tab, or beyond ASCII. */
static bool vchar(unsigned char c) { return c == '\t' || c >= 0x20 ? c != 0x7f : false; }

static bool all_tchar(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!tchar((unsigned char)s[i]))
            return false;
    return n > 0;
}

/* One line of the head: [start, end) without its CRLF or LF; next is past it. */
typedef struct line {
    size_t start, end, next;
} line;

/* The line starting at pos; false when its end has not arrived. */
static bool next_line(const char *buf, size_t len, size_t pos, line *l)
{
    const char *nl = memchr(buf + pos, '\n', len - pos);
    if (!nl)
        return false;
    l->start = pos;
    l->next = (size_t)(nl - buf) + 1;
    l->end = l->next - 1;
    if (l->end > pos && buf[l->end - 1] == '\r')
        l->end--;
    return true;
}

/* Finds the head: its first line at *first (after empty lines) and its end
 * (past the empty line) at *head_end. HTTP_PARSE_DONE, HTTP_PARSE_MORE or 431. */
static int find_head(const char *buf, size_t len, size_t *first, size_t *head_end)
{
    size_t pos = 0;
    while (pos < len && pos < HTTP_HEAD_MAX && (buf[pos] == '\r' || buf[pos] == '\n'))
        pos++;
    *first = pos;
    int lines = 0;
    line l;
    while (next_line(buf, len, pos, &l)) {
        if (l.next - *first > HTTP_HEAD_MAX)
            return 431;
        if (l.end == l.start && lines > 0) {
            *head_end = l.next;
            return HTTP_PARSE_DONE;
        }
        if (++lines > HTTP_HEADERS_MAX + 1)
            return 431;
        pos = l.next;
    }
    return len - *first >= HTTP_HEAD_MAX ? 431 : HTTP_PARSE_MORE;
}

static int parse_version(const char *v, size_t n, int *minor)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9')
        return 400;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return 505;
    *minor = v[7] - '0';
    return 0;
}

static int parse_request_line(const char *buf, const line *l, http_req *req)
{
    const char *s = buf + l->start, *e = buf + l->end;
    const char *sp1 = memchr(s, ' ', (size_t)(e - s));
    if (!sp1 || !all_tchar(s, (size_t)(sp1 - s)))
        return 400;
    size_t mlen = (size_t)(sp1 - s);
    req->method = mlen == 3 && memcmp(s, "GET", 3) == 0    ? HTTP_GET
                : mlen == 4 && memcmp(s, "HEAD", 4) == 0   ? HTTP_HEAD
                                                           : HTTP_OTHER;
    const char *t = sp1 + 1;
    const char *sp2 = memchr(t, ' ', (size_t)(e - t));
    if (!sp2 || sp2 == t)
        return 400;
    if ((size_t)(sp2 - t) > HTTP_TARGET_MAX)
        return 414;
    for (const char *c = t; c < sp2; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return 400;
    if (*t != '/')
        return 400;
    const char *q = memchr(t, '?', (size_t)(sp2 - t));
    req->path = t;
    req->path_len = (size_t)((q ? q : sp2) - t);
    req->query = q ? q + 1 : "";
    req->query_len = q ? (size_t)(sp2 - q - 1) : 0;
    return parse_version(sp2 + 1, (size_t)(e - sp2 - 1), &req->version_minor);
}

/* What the fields say about framing and the connection. */
typedef struct fields {
    int hosts;
    bool have_length, conn_close, conn_keep_alive;
    size_t length;
} fields;

static bool token_eq(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* Connection: a comma-separated list of options. */
static void parse_connection(const char *v, size_t n, fields *f)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t j = i;
        while (j < n && v[j] != ',' && v[j] != ' ' && v[j] != '\t')
            j++;
        f->conn_close |= token_eq(v + i, j - i, "close");
        f->conn_keep_alive |= token_eq(v + i, j - i, "keep-alive");
        i = j;
    }
}

static int parse_length(const char *v, size_t n, fields *f)
{
    if (n == 0 || n > 12)
        return 400;
    size_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 400;
        x = x * 10 + (size_t)(v[i] - '0');
    }
    if (f->have_length && f->length != x)
        return 400;
    f->have_length = true;
    f->length = x;
    return x > HTTP_BODY_MAX ? 413 : 0;
}

static int parse_field(const char *buf, const line *l, fields *f)
{
    const char *s = buf + l->start, *e = buf + l->end;
    const char *colon = memchr(s, ':', (size_t)(e - s));
    if (!colon || !all_tchar(s, (size_t)(colon - s)))
        return 400; /* also a folded line, which starts with a space */
    const char *v = colon + 1;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    const char *ve = e;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    for (const char *c = v; c < ve; c++)
        if (!vchar((unsigned char)*c))
            return 400;
    size_t nlen = (size_t)(colon - s), vlen = (size_t)(ve - v);
    if (token_eq(s, nlen, "host"))
        f->hosts++;
    else if (token_eq(s, nlen, "transfer-encoding"))
        return 501;
    else if (token_eq(s, nlen, "content-length"))
        return parse_length(v, vlen, f);
    else if (token_eq(s, nlen, "connection"))
        parse_connection(v, vlen, f);
    return 0;
}

int http_parse(const char *buf, size_t len, http_req *req)
{
    memset(req, 0, sizeof *req);
    size_t first, head_end;
    int r = find_head(buf, len, &first, &head_end);
    if (r != HTTP_PARSE_DONE)
        return r;
    line l;
    bool whole = next_line(buf, len, first, &l);
    CK_ASSERT(whole); /* find_head saw this line end */
    if ((r = parse_request_line(buf, &l, req)) != 0)
        return r;
    fields f = {0};
    for (size_t pos = l.next; next_line(buf, len, pos, &l) && l.end > l.start; pos = l.next)
        if ((r = parse_field(buf, &l, &f)) != 0)
            return r;
    if (req->version_minor == 1 && f.hosts != 1)
        return 400;
    req->keep_alive = !f.conn_close && (req->version_minor == 1 || f.conn_keep_alive);
    req->content_length = f.length;
    req->len = head_end + f.length;
    return len >= req->len ? HTTP_PARSE_DONE : HTTP_PARSE_MORE;
}

bool http_query_has(const char *query, size_t query_len, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    size_t i = 0;
    while (i <= query_len) {
        const char *amp = memchr(query + i, '&', query_len - i);
        size_t end = amp ? (size_t)(amp - query) : query_len;
        if (end - i == nl + 1 + vl && memcmp(query + i, name, nl) == 0 && query[i + nl] == '=' &&
            memcmp(query + i + nl + 1, value, vl) == 0)
            return true;
        i = end + 1;
    }
    return false;
}
