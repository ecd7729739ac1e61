/* http.c - the admin HTTP endpoint (http.h). */
#include "admin/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

enum { HTTP_REQUEST_MAX_BYTES = 8192, HTTP_READ_TIMEOUT_MS = 2000, HTTP_RESPONSE_MAX_BYTES = 64 << 20,
       HTTP_ACCEPT_BACKOFF_MS = 200 };

struct admin_http {
    int lfd;
    int stopfd;
    bool serving;
    pthread_t thread;
    admin_http_cb cb;
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

/* Read up to the end of the request head; returns its length or -1. */
static int read_head(int fd, char *req, size_t cap)
{
    size_t n = 0;
    while (n < cap - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, HTTP_READ_TIMEOUT_MS) <= 0)
            return -1;
        ssize_t r = read(fd, req + n, cap - 1 - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        req[n] = 0;
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            return (int)n;
    }
    return -1;
}

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

static void respond(int fd, int status, const char *ctype, const void *body, size_t len)
{
    const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found"
                       : status == 503 ? "Service Unavailable" : "Bad Request";
    char head[256];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, reason, ctype, len);
    write_all(fd, head, (size_t)h);
    write_all(fd, body, len);
}

static void serve(admin_http *h, int fd)
{
    char req[HTTP_REQUEST_MAX_BYTES];
    if (read_head(fd, req, sizeof req) < 0)
        return;
    char method[8], path[256];
    if (sscanf(req, "%7s %255s", method, path) != 2 || strcmp(method, "GET") != 0) {
        respond(fd, 400, "text/plain", "bad request\n", 12);
        return;
    }
    char *q = strchr(path, '?');
    bool text = q && strstr(q + 1, "format=text") != NULL;
    if (q)
        *q = 0;
    if (strcmp(path, "/health") == 0) {
        respond(fd, 200, "text/plain", "ok\n", 3);
    } else if (strcmp(path, "/ready") == 0) {
        char reason[200] = "ready";
        bool ok = h->cb.ready ? h->cb.ready(reason, sizeof reason, h->cb.ctx) : true;
        char body[256];
        int n = snprintf(body, sizeof body, "%s\n", ok ? "ready" : reason);
        respond(fd, ok ? 200 : 503, "text/plain", body, (size_t)n);
    } else if (strcmp(path, "/metrics") == 0) {
        buf_t b;
        buf_init(&b);
        if (h->cb.metrics)
            h->cb.metrics(&b, h->cb.ctx);
        respond(fd, 200, "text/plain; version=0.0.4", b.data, b.len);
        buf_free(&b);
    } else if (strcmp(path, "/status") == 0 && h->cb.status) {
        buf_t b;
        buf_init(&b);
        bool ok = h->cb.status(&b, text, h->cb.ctx);
        respond(fd, ok ? 200 : 503, text ? "text/plain" : "application/json", b.data, b.len);
        buf_free(&b);
    } else {
        respond(fd, 404, "text/plain", "not found\n", 10);
    }
}

/* A failed accept (out of descriptors) pauses accepting instead of spinning. */
static void *http_thread(void *arg)
{
    static log_ratelimit rl = LOG_RATELIMIT_INIT(LOG_RATELIMIT_DEFAULT_MS);
    admin_http *h = arg;
    bool backoff = false;
    for (;;) {
        struct pollfd p[2] = {{.fd = h->lfd, .events = backoff ? 0 : POLLIN},
                              {.fd = h->stopfd, .events = POLLIN}};
        if (poll(p, 2, backoff ? HTTP_ACCEPT_BACKOFF_MS : -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        backoff = false;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0 && errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
            log_warn_limited(&rl, "admin", "accept failed err=\"%s\" backoff_ms=%d", strerror(errno),
                             HTTP_ACCEPT_BACKOFF_MS);
            backoff = true;
        }
        if (fd < 0)
            continue;
        serve(h, fd);
        close(fd);
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
    return h;
}

void admin_http_serve(admin_http *h, const admin_http_cb *cb)
{
    CK_ASSERT(!h->serving);
    h->cb = *cb;
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
    close(h->lfd);
    close(h->stopfd);
    free(h);
}

/* ---- client ------------------------------------------------------------------ */

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
