/*
 * http.c - the admin HTTP endpoint (http.h): a small HTTP/1.1 server on one
 * thread of its own, and the client the CLI uses.
 *
 * Why its own server and not libmicrohttpd: the endpoint answers a handful
 * of GETs from operators, scrapers and the console page, from data the
 * broker renders in memory. What it needs is to never let one client hold
 * up another, which a poll loop over non-blocking sockets gives in a few
 * hundred lines; the one part that reads untrusted bytes, the request
 * parser, is a pure function of its own (http_parse.c) with a fuzz target.
 * libmicrohttpd would bring TLS for this port later, but also a build and
 * run dependency, its own threads and its own limits to reconcile with
 * ours, for no gain today. If the port ever needs TLS, that is the time to
 * weigh it again (or to put a proxy in front).
 *
 * The server: one poll loop over the listening socket, an eventfd that
 * stops it, and at most HTTP_CONNS_MAX connections, each non-blocking with
 * its own input buffer (a head of HTTP_HEAD_MAX, a body of HTTP_BODY_MAX)
 * and output buffer. A connection lives through these states:
 *   waiting   no request bytes yet; closed silently after HTTP_IDLE_MS
 *   reading   part of a request; answered 408 and closed HTTP_REQUEST_MS
 *             after its first byte if it has not arrived whole
 *   writing   an answer is queued; closed if the client reads nothing for
 *             HTTP_WRITE_MS. The next request (keep-alive, pipelining) is
 *             parsed only once the answer has gone out.
 *   lingering after an answer that ends the connection: our side is shut,
 *             what the client still sends is read and dropped (so that the
 *             kernel does not reset the connection and lose the answer)
 *             until it closes or HTTP_LINGER_MS passes.
 * A connection beyond HTTP_CONNS_MAX is answered 503 at once and closed.
 * A request the parser refuses is answered with its status (400, 413, 414,
 * 431, 501, 505) and the connection closes. The handlers run on this
 * thread: they render from memory and never wait on the network.
 */
#include "admin/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin/console.h"
#include "admin/http_parse.h"
#include "base/log.h"
#include "base/util.h"

enum {
    HTTP_CONNS_MAX = 64,
    HTTP_IN_CAP = 2 * HTTP_HEAD_MAX + HTTP_BODY_MAX, /* leading empty lines, head, body */
    HTTP_IDLE_MS = 30000,
    HTTP_REQUEST_MS = 5000,
    HTTP_WRITE_MS = 10000,
    HTTP_LINGER_MS = 1000,
    HTTP_ACCEPT_BACKOFF_MS = 200,
    HTTP_RESPONSE_MAX_BYTES = 64 << 20, /* the client's limit */
};

typedef enum hstate { HS_WAITING, HS_READING, HS_WRITING, HS_LINGERING } hstate;

typedef struct hconn {
    int fd; /* -1: a free slot */
    hstate state;
    bool close_after; /* writing: close once the answer is out */
    int64_t deadline_ms;
    size_t inlen;
    char in[HTTP_IN_CAP];
    buf_t out;
    size_t outpos;
} hconn;

struct admin_http {
    int lfd;
    int stopfd;
    bool serving;
    pthread_t thread;
    admin_http_cb cb;
    hconn *conns; /* HTTP_CONNS_MAX slots */
};

static int listen_on(const char *host, int port, int *bound_port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    if (getaddrinfo(host, portstr, &hints, &ai) != 0) {
        errno = EADDRNOTAVAIL; /* the host does not resolve */
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        errno = err;
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (bound_port)
        *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* An answer: the head, then the body unless the request was a HEAD. */
typedef struct answer {
    int status;
    const char *ctype;
    const char *extra; /* more header lines, each ending in CRLF; "" for none */
    const void *body;
    size_t len;
} answer;

static void put_answer(buf_t *out, const answer *a, bool head_only, bool keep_alive)
{
    buf_printf(out,
               "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
               "X-Content-Type-Options: nosniff\r\n%sConnection: %s\r\n\r\n",
               a->status, reason_phrase(a->status), a->ctype, a->len, a->extra, keep_alive ? "keep-alive" : "close");
    if (!head_only)
        buf_put(out, a->body, a->len);
}

static void put_text(buf_t *out, int status, const char *text, bool head_only, bool keep_alive)
{
    answer a = {status, "text/plain; charset=utf-8", status == 405 ? "Allow: GET, HEAD\r\n" : "", text, strlen(text)};
    put_answer(out, &a, head_only, keep_alive);
}

/* ---- routes ------------------------------------------------------------------ */

static const char CONSOLE_CSP[] = "Content-Security-Policy: default-src 'self'; img-src 'self' data:; frame-ancestors 'none'\r\n";

/* Routes whose answer the broker renders into body; false when path is none of them. */
static bool route_rendered(admin_http *h, const http_req *rq, buf_t *body, answer *a)
{
    const admin_http_cb *cb = &h->cb;
    bool text = http_query_has(rq->query, rq->query_len, "format", "text");
#define IS(p) (rq->path_len == sizeof(p) - 1 && memcmp(rq->path, p, sizeof(p) - 1) == 0)
    if (IS("/metrics")) {
        if (cb->metrics)
            cb->metrics(body, cb->ctx);
        *a = (answer){200, "text/plain; version=0.0.4", "", NULL, 0};
    } else if (IS("/status") && cb->status) {
        bool ok = cb->status(body, text, cb->ctx);
        *a = (answer){ok ? 200 : 503, text ? "text/plain; charset=utf-8" : "application/json", "", NULL, 0};
    } else if (IS("/") && cb->console) {
        buf_t inner;
        buf_init(&inner);
        cb->console(&inner, true, cb->ctx);
        admin_console_page(body, (const char *)inner.data, inner.len);
        buf_free(&inner);
        *a = (answer){200, "text/html; charset=utf-8", CONSOLE_CSP, NULL, 0};
    } else if (IS("/api/console") && cb->console) {
        cb->console(body, false, cb->ctx);
        *a = (answer){200, "application/json", "", NULL, 0};
    } else {
        return false;
    }
#undef IS
    return true;
}

static void route(admin_http *h, const http_req *rq, buf_t *out)
{
    bool head_only = rq->method == HTTP_HEAD;
    if (rq->method == HTTP_OTHER) {
        put_text(out, 405, "method not allowed\n", false, rq->keep_alive);
        return;
    }
    answer a;
    buf_t body;
    buf_init(&body);
    if (route_rendered(h, rq, &body, &a)) {
        a.body = body.data;
        a.len = body.len;
        put_answer(out, &a, head_only, rq->keep_alive);
    } else if (rq->path_len == 7 && memcmp(rq->path, "/health", 7) == 0) {
        put_text(out, 200, "ok\n", head_only, rq->keep_alive);
    } else if (rq->path_len == 6 && memcmp(rq->path, "/ready", 6) == 0) {
        char reason[200] = "ready", line[256];
        bool ok = h->cb.ready ? h->cb.ready(reason, sizeof reason, h->cb.ctx) : true;
        snprintf(line, sizeof line, "%s\n", ok ? "ready" : reason);
        put_text(out, ok ? 200 : 503, line, head_only, rq->keep_alive);
    } else if (h->cb.console && admin_console_asset(rq->path, rq->path_len, &a.body, &a.len, &a.ctype)) {
        a.status = 200;
        a.extra = "";
        put_answer(out, &a, head_only, rq->keep_alive);
    } else {
        put_text(out, 404, "not found\n", head_only, rq->keep_alive);
    }
    buf_free(&body);
}

/* ---- connections --------------------------------------------------------------- */

static void conn_close(hconn *c)
{
    close(c->fd);
    c->fd = -1;
    buf_free(&c->out);
}

static void conn_wait(hconn *c, int64_t now)
{
    c->state = c->inlen ? HS_READING : HS_WAITING;
    c->deadline_ms = now + (c->inlen ? HTTP_REQUEST_MS : HTTP_IDLE_MS);
}

/* Queue an answer to the request at the head of the input (or a refusal). */
static void conn_start_writing(hconn *c, bool close_after, int64_t now)
{
    c->state = HS_WRITING;
    c->close_after = close_after;
    c->outpos = 0;
    c->deadline_ms = now + HTTP_WRITE_MS;
}

static void conn_refuse(hconn *c, int status, int64_t now)
{
    char text[64];
    snprintf(text, sizeof text, "%s\n", reason_phrase(status));
    put_text(&c->out, status, text, false, false);
    conn_start_writing(c, true, now);
}

/* Parse what has arrived: answer a whole request, refuse a bad one, or wait. */
static void conn_parse(admin_http *h, hconn *c, int64_t now)
{
    http_req rq;
    int r = http_parse(c->in, c->inlen, &rq);
    if (r == HTTP_PARSE_MORE && c->inlen == sizeof c->in)
        r = 413; /* cannot happen within the parser's limits; never wait on a full buffer */
    if (r == HTTP_PARSE_MORE) {
        if (c->state != HS_READING)
            conn_wait(c, now); /* the first byte of a request starts its clock */
        return;
    }
    if (r != HTTP_PARSE_DONE) {
        conn_refuse(c, r, now);
        return;
    }
    route(h, &rq, &c->out);
    memmove(c->in, c->in + rq.len, c->inlen - rq.len);
    c->inlen -= rq.len;
    conn_start_writing(c, !rq.keep_alive, now);
}

static void conn_linger(hconn *c, int64_t now)
{
    shutdown(c->fd, SHUT_WR);
    c->state = HS_LINGERING;
    c->deadline_ms = now + HTTP_LINGER_MS;
}

static void conn_write(admin_http *h, hconn *c, int64_t now)
{
    while (c->outpos < c->out.len) {
        ssize_t w = send(c->fd, c->out.data + c->outpos, c->out.len - c->outpos, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w <= 0) {
            conn_close(c);
            return;
        }
        c->outpos += (size_t)w;
        c->deadline_ms = now + HTTP_WRITE_MS;
    }
    buf_reset(&c->out);
    if (c->close_after) {
        conn_linger(c, now);
        return;
    }
    c->state = HS_WAITING;
    conn_parse(h, c, now); /* a pipelined request may be waiting */
}

/* Read what the socket holds; false when the connection was closed. */
static bool conn_fill(hconn *c)
{
    for (;;) {
        char drop[4096];
        bool dropping = c->state == HS_LINGERING;
        char *dst = dropping ? drop : c->in + c->inlen;
        size_t room = dropping ? sizeof drop : sizeof c->in - c->inlen;
        if (room == 0)
            return true;
        ssize_t r = recv(c->fd, dst, room, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (r <= 0) {
            conn_close(c);
            return false;
        }
        if (!dropping)
            c->inlen += (size_t)r;
    }
}

static void conn_read(admin_http *h, hconn *c, int64_t now)
{
    if (conn_fill(c) && c->state != HS_LINGERING)
        conn_parse(h, c, now);
}

static void conn_expire(hconn *c, int64_t now)
{
    if (c->fd < 0 || now < c->deadline_ms)
        return;
    if (c->state == HS_READING)
        conn_refuse(c, 408, now); /* written by the loop's next round */
    else
        conn_close(c);
}

/* ---- the loop ------------------------------------------------------------------ */

/* No slot: a short 503, written without waiting, and the connection closes. */
static void refuse_busy(int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 5\r\nRetry-After: 1\r\nConnection: close\r\n\r\nbusy\n";
    ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void accept_all(admin_http *h, bool *backoff, int64_t now)
{
    static log_ratelimit rl = LOG_RATELIMIT_INIT(LOG_RATELIMIT_DEFAULT_MS);
    for (;;) {
        int fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
                log_warn_limited(&rl, "admin", "accept failed err=\"%s\" backoff_ms=%d", strerror(errno),
                                 HTTP_ACCEPT_BACKOFF_MS);
                *backoff = true; /* out of descriptors: pause rather than spin */
            }
            return;
        }
        hconn *c = NULL;
        for (int i = 0; i < HTTP_CONNS_MAX && !c; i++)
            if (h->conns[i].fd < 0)
                c = &h->conns[i];
        if (!c) {
            refuse_busy(fd);
            continue;
        }
        c->fd = fd;
        c->inlen = 0;
        buf_init(&c->out);
        c->state = HS_WAITING;
        c->deadline_ms = now + HTTP_IDLE_MS;
    }
}

/* Fills p (stop, listener, then one per open connection, slot in slot[]);
 * returns the count and the poll timeout in *timeout_ms. */
static int poll_set(admin_http *h, struct pollfd *p, int *slot, bool backoff, int64_t now, int *timeout_ms)
{
    int n = 0;
    int64_t next = backoff ? now + HTTP_ACCEPT_BACKOFF_MS : INT64_MAX;
    p[n++] = (struct pollfd){.fd = h->stopfd, .events = POLLIN};
    p[n++] = (struct pollfd){.fd = h->lfd, .events = backoff ? 0 : POLLIN};
    for (int i = 0; i < HTTP_CONNS_MAX; i++) {
        hconn *c = &h->conns[i];
        if (c->fd < 0)
            continue;
        slot[n] = i;
        p[n++] = (struct pollfd){.fd = c->fd, .events = c->state == HS_WRITING ? POLLOUT : POLLIN};
        next = MIN(next, c->deadline_ms);
    }
    *timeout_ms = next == INT64_MAX ? -1 : (int)MIN(MAX(next - now, 0), 60000);
    return n;
}

static void *http_thread(void *arg)
{
    admin_http *h = arg;
    bool backoff = false;
    struct pollfd p[HTTP_CONNS_MAX + 2];
    int slot[HTTP_CONNS_MAX + 2];
    for (;;) {
        int timeout_ms;
        int n = poll_set(h, p, slot, backoff, clock_mono_ms(), &timeout_ms);
        if (poll(p, (nfds_t)n, timeout_ms) < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        int64_t now = clock_mono_ms();
        backoff = false;
        if (p[1].revents & POLLIN)
            accept_all(h, &backoff, now);
        for (int k = 2; k < n; k++) {
            hconn *c = &h->conns[slot[k]];
            if (!p[k].revents || c->fd != p[k].fd)
                continue;
            if (c->state == HS_WRITING)
                conn_write(h, c, now);
            else
                conn_read(h, c, now);
        }
        for (int i = 0; i < HTTP_CONNS_MAX; i++)
            conn_expire(&h->conns[i], now);
    }
    return NULL;
}

admin_http *admin_http_listen(const char *host, int port, int *bound_port)
{
    int lfd = listen_on(host, port, bound_port);
    if (lfd < 0) {
        log_error("admin", "cannot listen listener=admin addr=%s:%d err=\"%s\"%s", host, port, strerror(errno),
                  errno == EADDRINUSE ? " (each node on a host needs its own --admin-listen)" : "");
        return NULL;
    }
    admin_http *h = xcalloc(1, sizeof *h);
    h->lfd = lfd;
    h->stopfd = eventfd(0, EFD_CLOEXEC);
    h->conns = xcalloc(HTTP_CONNS_MAX, sizeof *h->conns);
    for (int i = 0; i < HTTP_CONNS_MAX; i++)
        h->conns[i].fd = -1;
    return h;
}

void admin_http_serve(admin_http *h, const admin_http_cb *cb)
{
    CK_ASSERT(!h->serving);
    h->cb = *cb;
    int fl = fcntl(h->lfd, F_GETFL);
    fcntl(h->lfd, F_SETFL, fl | O_NONBLOCK);
    if (pthread_create(&h->thread, NULL, http_thread, h) != 0)
        CK_PANIC("cannot start admin http thread");
    h->serving = true;
}

admin_http *admin_http_start(const char *host, int port, const admin_http_cb *cb, int *bound_port)
{
    admin_http *h = admin_http_listen(host, port, bound_port);
    if (h != NULL)
        admin_http_serve(h, cb);
    return h;
}

void admin_http_stop(admin_http *h)
{
    if (!h)
        return;
    uint64_t one = 1;
    ssize_t w = write(h->stopfd, &one, sizeof one);
    (void)w;
    if (h->serving)
        pthread_join(h->thread, NULL);
    for (int i = 0; i < HTTP_CONNS_MAX; i++)
        if (h->conns[i].fd >= 0)
            conn_close(&h->conns[i]);
    free(h->conns);
    close(h->lfd);
    close(h->stopfd);
    free(h);
}

/* ---- client ------------------------------------------------------------------ */

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static int connect_to(const char *host, int port, int timeout_ms)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    if (getaddrinfo(host, portstr, &hints, &ai) != 0)
        return -EHOSTUNREACH;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int r = fd < 0 ? -errno : 0;
    if (r == 0) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
            r = -errno;
    }
    freeaddrinfo(ai);
    if (r < 0 && fd >= 0)
        close(fd);
    return r < 0 ? r : fd;
}

int admin_http_get(const char *host, int port, const char *path, int timeout_ms, buf_t *body)
{
    int fd = connect_to(host, port, timeout_ms);
    if (fd < 0)
        return fd;
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
    write_all(fd, req, (size_t)n);
    buf_t in;
    buf_init(&in);
    for (;;) {
        buf_reserve(&in, 65536);
        ssize_t r = read(fd, in.data + in.len, in.cap - in.len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || in.len + (size_t)r > HTTP_RESPONSE_MAX_BYTES)
            break;
        in.len += (size_t)r;
    }
    close(fd);
    int status = -EPROTO;
    buf_put(&in, "", 1); /* NUL for the parsing below */
    const char *head_end = strstr((const char *)in.data, "\r\n\r\n");
    if (head_end && sscanf((const char *)in.data, "HTTP/1.%*d %d", &status) == 1) {
        const char *b = head_end + 4;
        buf_put(body, b, in.len - 1 - (size_t)(b - (const char *)in.data));
    } else {
        status = -EPROTO;
    }
    buf_free(&in);
    return status;
}
