/*
 * net.c - the net object: configuration, listeners and accepting, thread
 * start and join, statistics, address parsing.
 *
 * Listeners are registered with reactor 0, which accepts and hands each new
 * connection to the reactors in turn (round robin) through their message
 * queues. Stop: net_request_stop() writes the shared stop eventfd, which
 * every reactor watches (level-triggered, never read, so all of them see it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "net/net_int.h"

#define NET_ACCEPT_BUDGET 64 /* accepts per readiness event */

net_config net_config_defaults(void)
{
    return (net_config){
        .num_threads = 0,
        .request_max_bytes = NET_DEFAULT_REQUEST_MAX_BYTES,
        .output_max_bytes = NET_DEFAULT_OUTPUT_MAX_BYTES,
        .inflight_max = NET_DEFAULT_INFLIGHT_MAX,
        .inflight_bytes_max = NET_DEFAULT_INFLIGHT_BYTES_MAX,
        .queued_max_bytes = NET_DEFAULT_QUEUED_MAX_BYTES,
        .read_chunk_bytes = NET_DEFAULT_READ_CHUNK_BYTES,
        .shutdown_timeout_ms = NET_DEFAULT_SHUTDOWN_TIMEOUT_MS,
        .connect_timeout_ms = NET_DEFAULT_CONNECT_TIMEOUT_MS,
        .close_linger_ms = NET_DEFAULT_CLOSE_LINGER_MS,
        .idle_timeout_ms = NET_DEFAULT_IDLE_TIMEOUT_MS,
        .listen_backlog = NET_DEFAULT_LISTEN_BACKLOG,
        .max_connections = NET_DEFAULT_MAX_CONNECTIONS,
        .max_connections_per_ip = 0,
        .socket_send_buffer_bytes = 0,
        .socket_receive_buffer_bytes = 0,
        .tcp_nodelay = true,
    };
}

static void config_check(net_config *cfg)
{
    if (cfg->num_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->num_threads = n > 0 ? (int)n : 1;
    }
    cfg->num_threads = MIN(cfg->num_threads, NET_MAX_THREADS);
    CK_ASSERT(cfg->request_max_bytes > 0 && cfg->request_max_bytes <= INT32_MAX);
    CK_ASSERT(cfg->read_chunk_bytes >= NET_FRAME_HEADER_BYTES);
    CK_ASSERT(cfg->inflight_max > 0 && cfg->output_max_bytes > 0 && cfg->inflight_bytes_max > 0);
}

net_t *net_new(const net_config *cfg)
{
    net_t *net = xcalloc(1, sizeof(*net));
    net->cfg = cfg != NULL ? *cfg : net_config_defaults();
    config_check(&net->cfg);
    net->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (net->stop_fd < 0)
        CK_PANIC("eventfd: %s", strerror(errno));
    net->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pthread_mutex_init(&net->join_mu, NULL);
    pthread_cond_init(&net->join_cv, NULL);
    pthread_mutex_init(&net->limits_mu, NULL);
    hmap_init(&net->per_ip);
    net->nreactors = net->cfg.num_threads;
    net->reactors = xcalloc((size_t)net->nreactors, sizeof(net_reactor));
    for (int i = 0; i < net->nreactors; i++)
        reactor_init(net, &net->reactors[i], i);
    return net;
}

/* ---- addresses --------------------------------------------------------------- */

int net_parse_hostport(const char *s, char host[NET_HOST_MAX], uint16_t *port)
{
    const char *colon, *h = s;
    size_t hlen;
    if (s == NULL)
        return -EINVAL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -EINVAL;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
            return -EINVAL;
        hlen = (size_t)(colon - s);
    }
    if (hlen >= NET_HOST_MAX)
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || p > UINT16_MAX || colon[1] == '-' ||
        colon[1] == '+')
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)p;
    return 0;
}

const char *net_hostport_problem(const char *s)
{
    const char *colon;
    if (s == NULL || s[0] == '\0')
        return "empty address (want HOST:PORT)";
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL)
            return "no closing ']' (want [IPV6]:PORT)";
        if (close[1] != ':')
            return "no port (want [IPV6]:PORT)";
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return "no port (want HOST:PORT)";
        if (memchr(s, ':', (size_t)(colon - s)) != NULL)
            return "an IPv6 address needs brackets (want [IPV6]:PORT)";
    }
    if ((size_t)(colon - s) >= NET_HOST_MAX)
        return "host name too long";
    const char *p = colon + 1;
    size_t digits = strspn(p, "0123456789");
    if (p[0] == '\0')
        return "no port (want HOST:PORT)";
    if (p[digits] != '\0')
        return "port is not a number (want HOST:PORT)";
    if (digits > 5 || strtoul(p, NULL, 10) > UINT16_MAX)
        return "port out of range (0-65535)";
    return NULL;
}

void net_format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(a->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else {
        snprintf(out, cap, "unknown");
    }
}

/* Resolve "HOST:PORT" to the first address; passive: empty host = any. */
int addr_resolve(const char *hostport, bool passive, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[NET_HOST_MAX], port_s[8];
    uint16_t port;
    if (net_parse_hostport(hostport, host, &port) != 0)
        return -EINVAL;
    snprintf(port_s, sizeof(port_s), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, port_s, &hints, &res);
    if (rc != 0 || res == NULL)
        return -EHOSTUNREACH;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int sock_tune(const net_config *cfg, int fd)
{
    int one = 1;
    if (cfg->tcp_nodelay)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (cfg->socket_send_buffer_bytes > 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cfg->socket_send_buffer_bytes, sizeof(int));
    if (cfg->socket_receive_buffer_bytes > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cfg->socket_receive_buffer_bytes, sizeof(int));
    return 0;
}

/* ---- listeners ------------------------------------------------------------- */

static int listen_socket(const net_config *cfg, const struct sockaddr_storage *ss, socklen_t len,
                         uint16_t *port)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (cfg->socket_receive_buffer_bytes > 0) /* inherited by accepted sockets */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cfg->socket_receive_buffer_bytes, sizeof(int));
    if (bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, cfg->listen_backlog) != 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    getsockname(fd, (struct sockaddr *)&bound, &blen);
    *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
    return fd;
}

int net_listen(net_t *net, const char *hostport, const net_handler *h, uint16_t *bound_port)
{
    CK_ASSERT(h != NULL && h->on_frame != NULL);
    CK_ASSERT(!atomic_load(&net->started));
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = addr_resolve(hostport, true, &ss, &len);
    if (rc != 0)
        return rc;
    uint16_t port = 0;
    int fd = listen_socket(&net->cfg, &ss, len, &port);
    if (fd < 0)
        return fd;
    net->listeners = xrealloc(net->listeners, (size_t)(net->nlisteners + 1) * sizeof(listener *));
    listener *l = xcalloc(1, sizeof(*l));
    (net->listeners)[net->nlisteners++] = l;
    l->src.kind = SRC_LISTENER;
    l->net = net;
    l->fd = fd;
    l->backoff_ms = NET_ACCEPT_BACKOFF_MIN_MS;
    net_timer_init(&l->resume);
    l->port = port;
    l->h = *h;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->src};
    if (epoll_ctl(net->reactors[0].ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        CK_PANIC("epoll_ctl listener: %s", strerror(errno));
    if (bound_port != NULL)
        *bound_port = port;
    log_info("net", "listening addr=%s port=%u", hostport, port);
    return 0;
}

void listeners_close(net_t *net)
{
    listener **ls = net->listeners;
    for (int i = 0; i < net->nlisteners; i++) {
        if (ls[i]->fd < 0)
            continue;
        if (net_timer_pending(&ls[i]->resume))
            net_timer_cancel(&ls[i]->resume);
        if (!ls[i]->paused)
            epoll_ctl(net->reactors[0].ep, EPOLL_CTL_DEL, ls[i]->fd, NULL);
        close(ls[i]->fd);
        ls[i]->fd = -1;
    }
}

/* On the chosen reactor: register the connection, or close it if dead. */
static void msg_adopt(net_reactor *r, void *a, void *b)
{
    UNUSED(b);
    net_conn *c = a;
    if (!r->dead) {
        conn_adopt(c);
        return;
    }
    close(c->fd);
    c->fd = -1;
    c->state = CONN_CLOSED;
    limits_release(c);
    STAT_ADD(r->net, closed, 1);
    STAT_SUB(r->net, active, 1);
    conn_unref(c);
}

/* ---- connection limits ------------------------------------------------------ */

/* The address of ss without its port. */
static void addr_ip(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    const void *a = ss->ss_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                                              : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
    if (inet_ntop(ss->ss_family, a, out, (socklen_t)cap) == NULL)
        snprintf(out, cap, "unknown");
}

enum admit { ADMIT_OK, ADMIT_OVER_TOTAL, ADMIT_OVER_PER_IP };

/* Count a connection from ip, unless that would pass a limit. */
static enum admit limits_admit(net_t *net, const char *ip)
{
    const net_config *cfg = &net->cfg;
    size_t iplen = strlen(ip);
    enum admit a = ADMIT_OK;
    pthread_mutex_lock(&net->limits_mu);
    uintptr_t n = (uintptr_t)hmap_get(&net->per_ip, ip, iplen);
    if (cfg->max_connections > 0 && net->limited_active >= cfg->max_connections) {
        a = ADMIT_OVER_TOTAL;
    } else if (cfg->max_connections_per_ip > 0 && n >= cfg->max_connections_per_ip) {
        a = ADMIT_OVER_PER_IP;
    } else {
        net->limited_active++;
        hmap_put(&net->per_ip, ip, iplen, (void *)(n + 1));
    }
    pthread_mutex_unlock(&net->limits_mu);
    return a;
}

void limits_release(net_conn *c)
{
    if (!c->limited)
        return;
    c->limited = false;
    net_t *net = c->net;
    size_t iplen = strlen(c->ip);
    pthread_mutex_lock(&net->limits_mu);
    uintptr_t n = (uintptr_t)hmap_get(&net->per_ip, c->ip, iplen);
    CK_ASSERT(n >= 1 && net->limited_active >= 1);
    if (n == 1)
        hmap_del(&net->per_ip, c->ip, iplen);
    else
        hmap_put(&net->per_ip, c->ip, iplen, (void *)(n - 1));
    net->limited_active--;
    pthread_mutex_unlock(&net->limits_mu);
}

static void refuse(net_t *net, enum admit a, const char *ip, int fd)
{
    static log_ratelimit rl_total = LOG_RATELIMIT_INIT(LOG_RATELIMIT_DEFAULT_MS);
    static log_ratelimit rl_ip = LOG_RATELIMIT_INIT(LOG_RATELIMIT_DEFAULT_MS);
    /* counted before the close, so a peer that sees the close sees the count */
    if (a == ADMIT_OVER_TOTAL)
        STAT_ADD(net, rejected, 1);
    else
        STAT_ADD(net, rejected_ip, 1);
    close(fd);
    if (a == ADMIT_OVER_TOTAL) {
        log_warn_limited(&rl_total, "net", "connection refused: limit reached max_connections=%u peer=%s",
                         net->cfg.max_connections, ip);
    } else {
        log_warn_limited(&rl_ip, "net", "connection refused: limit per address reached "
                         "max_connections_per_ip=%u peer=%s", net->cfg.max_connections_per_ip, ip);
    }
}

static void accept_one(net_reactor *r, listener *l, int fd, const struct sockaddr_storage *ss)
{
    net_t *net = r->net;
    char ip[NET_PEER_MAX];
    addr_ip(ss, ip, sizeof ip);
    enum admit a = l->h.unlimited ? ADMIT_OK : limits_admit(net, ip);
    if (a != ADMIT_OK) {
        refuse(net, a, ip, fd);
        return;
    }
    sock_tune(&net->cfg, fd);
    unsigned idx = atomic_fetch_add(&net->rr_accept, 1) % (unsigned)net->nreactors;
    net_reactor *target = &net->reactors[idx];
    net_conn *c = conn_new(net, target, fd, false);
    net_format_addr((const struct sockaddr *)ss, c->peer, sizeof(c->peer));
    snprintf(c->ip, sizeof(c->ip), "%s", ip);
    c->limited = !l->h.unlimited;
    c->h = l->h;
    STAT_ADD(net, accepted, 1);
    STAT_ADD(net, active, 1);
    log_debug("net", "accepted conn=%llu peer=%s reactor=%u", (unsigned long long)c->id, c->peer, idx);
    if (target == r)
        conn_adopt(c);
    else if (!reactor_post(target, msg_adopt, c, NULL))
        msg_adopt(target, c, NULL); /* target is dead: close */
}

/* Accept and close every pending connection, using the spare descriptor,
 * so that waiting clients get an answer (a close) instead of a hang. */
static uint64_t shed_pending(listener *l)
{
    net_t *net = l->net;
    uint64_t shed = 0;
    if (net->reserve_fd >= 0) {
        close(net->reserve_fd);
        net->reserve_fd = -1;
    }
    for (; shed < NET_SHED_MAX; shed++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && errno == ECONNABORTED)
            continue;
        if (fd < 0)
            break;
        close(fd);
    }
    net->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    STAT_ADD(net, fd_shed, shed);
    return shed;
}

static void listener_resume(void *arg)
{
    listener *l = arg;
    if (l->fd < 0 || !l->paused)
        return;
    l->paused = false;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->src};
    if (epoll_ctl(l->net->reactors[0].ep, EPOLL_CTL_ADD, l->fd, &ev) != 0)
        CK_PANIC("epoll_ctl listener: %s", strerror(errno));
}

/* Out of descriptors: shed what waits, stop accepting for a while. */
static void accept_backoff(net_reactor *r, listener *l, int err)
{
    static log_ratelimit rl = LOG_RATELIMIT_INIT(LOG_RATELIMIT_DEFAULT_MS);
    uint64_t shed = shed_pending(l);
    log_warn_limited(&rl, "net", "out of file descriptors: not accepting for a while port=%u err=\"%s\" "
                     "backoff_ms=%u open=%llu shed=%llu", l->port, strerror(err), l->backoff_ms,
                     (unsigned long long)atomic_load(&r->net->st.active), (unsigned long long)shed);
    epoll_ctl(r->ep, EPOLL_CTL_DEL, l->fd, NULL);
    l->paused = true;
    net_timer_add(r, &l->resume, l->backoff_ms, listener_resume, l);
    l->backoff_ms = MIN(l->backoff_ms * 2, (uint32_t)NET_ACCEPT_BACKOFF_MAX_MS);
}

void listener_on_accept(net_reactor *r, listener *l)
{
    static log_ratelimit rl = LOG_RATELIMIT_INIT(LOG_RATELIMIT_DEFAULT_MS);
    for (int i = 0; i < NET_ACCEPT_BUDGET && l->fd >= 0 && !l->paused; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            l->backoff_ms = NET_ACCEPT_BACKOFF_MIN_MS;
            accept_one(r, l, fd, &ss);
            continue;
        }
        if (errno == EAGAIN || errno == EINTR)
            return;
        if (errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            accept_backoff(r, l, errno);
            return;
        }
        log_warn_limited(&rl, "net", "accept failed port=%u err=\"%s\"", l->port, strerror(errno));
        return;
    }
}

long net_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    rlim_t was = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = was;
    }
    log_info("net", "open file descriptor limit soft=%llu hard=%llu was=%llu",
             (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, (unsigned long long)was);
    return (long)rl.rlim_cur;
}

/* ---- lifecycle --------------------------------------------------------------- */

int net_start(net_t *net)
{
    bool expect = false;
    if (!atomic_compare_exchange_strong(&net->started, &expect, true))
        return 0;
    sigset_t all, old;
    sigfillset(&all);
    static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP};
    for (size_t i = 0; i < ARRAY_LEN(sync_signals); i++)
        sigdelset(&all, sync_signals[i]);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* inherited by the reactor threads */
    for (int i = 0; i < net->nreactors; i++) {
        net_reactor *r = &net->reactors[i];
        int rc = pthread_create(&r->thread, NULL, reactor_main, r);
        if (rc != 0)
            CK_PANIC("pthread_create reactor %d: %s", i, strerror(rc));
        r->thread_started = true;
        char name[16];
        snprintf(name, sizeof(name), "net-%d", i);
        pthread_setname_np(r->thread, name);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 0;
}

int net_run(net_t *net)
{
    int rc = net_start(net);
    if (rc != 0)
        return rc;
    net_wait(net);
    return 0;
}

void net_request_stop(net_t *net)
{
    uint64_t one = 1;
    ssize_t n = write(net->stop_fd, &one, sizeof(one));
    (void)n; /* async-signal-safe: nothing else to do on failure */
}

void net_wait(net_t *net)
{
    if (!atomic_load(&net->started))
        return;
    pthread_mutex_lock(&net->join_mu);
    while (net->joining && !net->joined)
        pthread_cond_wait(&net->join_cv, &net->join_mu);
    if (net->joined) {
        pthread_mutex_unlock(&net->join_mu);
        return;
    }
    net->joining = true;
    pthread_mutex_unlock(&net->join_mu);
    for (int i = 0; i < net->nreactors; i++)
        pthread_join(net->reactors[i].thread, NULL);
    pthread_mutex_lock(&net->join_mu);
    net->joined = true;
    pthread_cond_broadcast(&net->join_cv);
    pthread_mutex_unlock(&net->join_mu);
}

void net_stop(net_t *net)
{
    CK_ASSERT(net_tl_reactor == NULL);
    net_request_stop(net);
    net_wait(net);
}

void net_free(net_t *net)
{
    if (net == NULL)
        return;
    CK_ASSERT(!atomic_load(&net->started) || net->joined);
    listeners_close(net);
    for (int i = 0; i < net->nreactors; i++)
        reactor_destroy(&net->reactors[i]);
    long live = atomic_load(&net->live_conns);
    if (live != 0)
        CK_PANIC("net_free: %ld connections still referenced (requests in flight or handles open)", live);
    listener **ls = net->listeners;
    for (int i = 0; i < net->nlisteners; i++)
        free(ls[i]);
    free(net->listeners);
    close(net->stop_fd);
    if (net->reserve_fd >= 0)
        close(net->reserve_fd);
    pthread_mutex_destroy(&net->join_mu);
    pthread_cond_destroy(&net->join_cv);
    CK_ASSERT(net->limited_active == 0 && atomic_load(&net->queued_bytes) == 0);
    hmap_free(&net->per_ip);
    pthread_mutex_destroy(&net->limits_mu);
    free(net->reactors);
    free(net);
}

/* ---- accessors and statistics ------------------------------------------------- */

int net_num_reactors(const net_t *net) { return net->nreactors; }

net_reactor *net_reactor_at(net_t *net, int i)
{
    CK_ASSERT(i >= 0 && i < net->nreactors);
    return &net->reactors[i];
}

#define LOAD(f) atomic_load_explicit(&net->st.f, memory_order_relaxed)

void net_stats_get(net_t *net, net_stats *out)
{
    *out = (net_stats){
        .connections_accepted = LOAD(accepted),
        .connections_closed = LOAD(closed),
        .connections_rejected = LOAD(rejected),
        .connections_rejected_per_ip = LOAD(rejected_ip),
        .connections_fd_shed = LOAD(fd_shed),
        .connections_active = LOAD(active),
        .outbound_connects = LOAD(out_connects),
        .outbound_failures = LOAD(out_failures),
        .frames_in = LOAD(frames_in),
        .frames_out = LOAD(frames_out),
        .bytes_in = LOAD(bytes_in),
        .bytes_out = LOAD(bytes_out),
        .sendfile_bytes = LOAD(sendfile_bytes),
        .oversize_closes = LOAD(oversize),
        .bad_length_closes = LOAD(bad_length),
        .malformed_closes = LOAD(malformed),
        .idle_closes = LOAD(idle),
        .read_pauses = LOAD(read_pauses),
        .requests_inflight = LOAD(reqs_inflight),
        .output_queued_bytes = LOAD(out_queued),
        .request_queued_bytes = atomic_load_explicit(&net->queued_bytes, memory_order_relaxed),
        .budget_waits = LOAD(budget_waits),
        .memory_trims = LOAD(trims),
    };
}
