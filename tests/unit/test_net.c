/*
 * test_net.c - the network layer against real sockets on 127.0.0.1: reactors
 * on ephemeral ports, plain blocking client sockets, waits by poll with
 * deadlines (callbacks signal an eventfd the test polls). The TLS section at
 * the end drives TLS listeners with a blocking OpenSSL client and a
 * self-signed certificate made in memory.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "base/util.h"
#include "net/net.h"
#include "test.h"

#define WAIT_MS 5000          /* deadline for anything that should happen */
#define QUIET_MS 200          /* how long "nothing more happens" is watched */
#define MAX_PARKED 4096

/* ---- signals: a semaphore eventfd the test waits on ---------------------- */

static int sig_new(void) { return eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC); }

static void sig_post(int fd)
{
    uint64_t one = 1;
    CK_ASSERT(write(fd, &one, sizeof(one)) == sizeof(one));
}

/* Take one signal, waiting at most timeout_ms. */
static bool sig_wait(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return false;
    uint64_t v;
    return read(fd, &v, sizeof(v)) == sizeof(v);
}

/* ---- a test server ----------------------------------------------------------- */

enum mode { M_ECHO, M_PARK, M_BIG, M_FILE };

typedef struct srv {
    net_t *net;
    net_tls *tls;    /* NULL: plaintext */
    uint16_t port;
    atomic_int mode; /* enum mode; the test may switch it while running */
    size_t big_len;
    pthread_mutex_t mu;
    net_req *parked[MAX_PARKED];
    int nparked;
    int sig_frame;   /* a frame was parked */
    int sig_close;   /* on_close ran */
    int sig_release; /* a file part was released */
    int file_fd;
    off_t file_off;
    size_t file_len;
    atomic_int releases;
} srv;

static void on_frame(net_conn *c, net_req *req, const uint8_t *f, size_t len, void *ctx);
#define MUTE_MS 300

static void on_close(net_conn *c, void *ctx)
{
    UNUSED(c);
    sig_post(((srv *)ctx)->sig_close);
}

static void file_release(void *arg)
{
    srv *s = arg;
    atomic_fetch_add(&s->releases, 1);
    sig_post(s->sig_release);
}

static void reply_big(srv *s, net_req *req, const uint8_t *f, size_t len)
{
    buf_t b;
    buf_init(&b);
    uint8_t *p = buf_extend(&b, s->big_len);
    memset(p, 0xab, s->big_len);
    memcpy(p, f, MIN(len, s->big_len));
    net_req_reply_buf(req, &b);
}

static void reply_file(srv *s, net_req *req)
{
    net_reply *r = net_reply_new();
    net_reply_add_copy(r, "HDR", 3);
    net_reply_add_file(r, s->file_fd, s->file_off, s->file_len, file_release, s);
    net_reply_add_file(r, s->file_fd, 0, 0, file_release, s); /* empty part */
    buf_t b;
    buf_init(&b);
    buf_put(&b, "TRL", 3);
    net_reply_add_mem(r, &b);
    CHECK(b.data == NULL && b.len == 0);
    CHECK_EQ_INT(net_reply_len(r), 6 + s->file_len);
    net_req_reply(req, r);
}

static void on_frame(net_conn *c, net_req *req, const uint8_t *f, size_t len, void *ctx)
{
    srv *s = ctx;
    CK_ASSERT(net_req_conn(req) == c && net_current_reactor() == net_conn_reactor(c));
    if (s->mode == M_PARK) {
        pthread_mutex_lock(&s->mu);
        CK_ASSERT(s->nparked < MAX_PARKED);
        s->parked[s->nparked++] = req;
        pthread_mutex_unlock(&s->mu);
        sig_post(s->sig_frame);
    } else if (s->mode == M_BIG) {
        reply_big(s, req, f, len);
    } else if (s->mode == M_FILE) {
        reply_file(s, req);
    } else if (len == 4 && memcmp(f, "skip", 4) == 0) {
        net_req_noreply(req);
    } else if (len == 3 && memcmp(f, "bad", 3) == 0) {
        net_req_close_conn(req);
    } else if (len == 4 && memcmp(f, "mute", 4) == 0) {
        net_req_mute(req, MUTE_MS);
        net_req_reply_buf(req, &(buf_t){0});
    } else {
        net_reply *r = net_reply_new();
        net_reply_add_copy(r, f, len);
        net_req_reply(req, r);
    }
}

static net_config test_cfg(void)
{
    net_config cfg = net_config_defaults();
    cfg.num_threads = 2;
    return cfg;
}

static bool srv_start_with(srv *s, const net_config *cfg, enum mode mode, net_tls *tls)
{
    memset(s, 0, sizeof(*s));
    s->tls = tls;
    pthread_mutex_init(&s->mu, NULL);
    s->mode = mode;
    s->sig_frame = sig_new();
    s->sig_close = sig_new();
    s->sig_release = sig_new();
    s->file_fd = -1;
    s->net = net_new(cfg);
    net_handler h = {.on_frame = on_frame, .on_close = on_close, .ctx = s, .tls = tls};
    if (net_listen(s->net, "127.0.0.1:0", &h, &s->port) != 0 || s->port == 0)
        return false;
    return net_start(s->net) == 0;
}

static bool srv_start(srv *s, const net_config *cfg, enum mode mode) { return srv_start_with(s, cfg, mode, NULL); }

static void srv_finish(srv *s)
{
    net_stop(s->net);
    net_free(s->net);
    net_tls_free(s->tls);
    close(s->sig_frame);
    close(s->sig_close);
    close(s->sig_release);
    if (s->file_fd >= 0)
        close(s->file_fd);
    pthread_mutex_destroy(&s->mu);
}

static int park_count(srv *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->nparked;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static net_stats stats(srv *s)
{
    net_stats st;
    net_stats_get(s->net, &st);
    return st;
}

/* ---- a blocking client --------------------------------------------------------- */

static int cli_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static bool write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        b += w;
        n -= (size_t)w;
    }
    return true;
}

static bool send_frame(int fd, const void *p, uint32_t n)
{
    uint8_t hdr[4];
    be32_store(hdr, n);
    return write_all(fd, hdr, 4) && write_all(fd, p, n);
}

/* Read exactly n bytes by the deadline; false on EOF, error or timeout. */
static bool read_full(int fd, void *p, size_t n, int timeout_ms)
{
    uint8_t *b = p;
    int64_t deadline = clock_mono_ms() + timeout_ms;
    while (n > 0) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - clock_mono_ms());
        if (left <= 0 || poll(&pf, 1, left) <= 0)
            return false;
        ssize_t r = recv(fd, b, n, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN))
            return false;
        if (r > 0)
            b += r, n -= (size_t)r;
    }
    return true;
}

/* One frame into buf (cap bytes); returns its length or -1. */
static long recv_frame(int fd, void *buf, size_t cap, int timeout_ms)
{
    uint8_t hdr[4];
    if (!read_full(fd, hdr, 4, timeout_ms))
        return -1;
    uint32_t n = be32_load(hdr);
    if (n > cap || !read_full(fd, buf, n, timeout_ms))
        return -1;
    return (long)n;
}

/* True once the server has closed fd (EOF or reset) within the deadline. */
static bool wait_eof(int fd, int timeout_ms)
{
    uint8_t tmp[4096];
    int64_t deadline = clock_mono_ms() + timeout_ms;
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - clock_mono_ms());
        if (left <= 0 || poll(&pf, 1, left) <= 0)
            return false;
        ssize_t r = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN))
            return true;
    }
}

static bool echo_ok(int fd, const char *msg)
{
    char buf[256];
    if (!send_frame(fd, msg, (uint32_t)strlen(msg)))
        return false;
    long n = recv_frame(fd, buf, sizeof(buf), WAIT_MS);
    return n == (long)strlen(msg) && memcmp(buf, msg, (size_t)n) == 0;
}

/* ---- tests ----------------------------------------------------------------------- */

/* A frame is answered with the handler's reply; stats count it. */
TEST(echo)
{
    srv s;
    net_config cfg = test_cfg();
    REQUIRE(srv_start(&s, &cfg, M_ECHO));
    int fd = cli_open(s.port);
    REQUIRE(fd >= 0);
    CHECK(echo_ok(fd, "hello"));
    CHECK(echo_ok(fd, "")); /* an empty frame is a frame */
    net_stats st = stats(&s);
    CHECK_EQ_INT(st.connections_accepted, 1);
    CHECK_EQ_INT(st.frames_in, 2);
    CHECK(st.bytes_in == 4 + 5 + 4);
    close(fd);
    CHECK(sig_wait(s.sig_close, WAIT_MS));
    st = stats(&s);
    CHECK_EQ_INT(st.connections_closed, 1);
    CHECK_EQ_INT(st.connections_active, 0);
    CHECK_EQ_INT(st.frames_out, 2);
    srv_finish(&s);
}

/* A muted request is answered at once; the connection's next frame is read
 * only after the pause, other connections are not held up, and a connection
 * closed while muted goes away cleanly. */
TEST(mute_pauses_reading)
{
    srv s;
    net_config cfg = test_cfg();
    REQUIRE(srv_start(&s, &cfg, M_ECHO));
    int fds[3];
    for (int i = 0; i < 3; i++)
        REQUIRE((fds[i] = cli_open(s.port)) >= 0);
    int fd = fds[0], other = fds[1], gone = fds[2];
    char buf[16];
    int64_t t0 = clock_mono_ms();
    REQUIRE(send_frame(fd, "mute", 4));
    CHECK(recv_frame(fd, buf, sizeof buf, WAIT_MS) == 0);
    REQUIRE(send_frame(fd, "next", 4));
    CHECK(echo_ok(other, "free"));
    CHECK(recv_frame(fd, buf, sizeof buf, WAIT_MS) == 4);
    CHECK(clock_mono_ms() - t0 >= MUTE_MS - 5);
    REQUIRE(send_frame(gone, "mute", 4));
    CHECK(recv_frame(gone, buf, sizeof buf, WAIT_MS) == 0);
    close(gone);
    CHECK(sig_wait(s.sig_close, WAIT_MS));
    CHECK(echo_ok(fd, "again"));
    close(fd);
    close(other);
    srv_finish(&s);
}

/* Many pipelined frames are answered in request order. */
TEST(pipelined_in_order)
{
    enum { N = 2000 };
    srv s;
    net_config cfg = test_cfg();
    REQUIRE(srv_start(&s, &cfg, M_ECHO));
    int fd = cli_open(s.port);
    REQUIRE(fd >= 0);
    buf_t out;
    buf_init(&out);
    for (uint32_t i = 0; i < N; i++) {
        buf_put_i32(&out, 4 + (int32_t)(i % 7));
        buf_put_i32(&out, (int32_t)i);
        for (uint32_t k = 0; k < i % 7; k++)
            buf_put_u8(&out, (uint8_t)k);
    }
    REQUIRE(write_all(fd, out.data, out.len));
    buf_free(&out);
    int bad = 0;
    for (uint32_t i = 0; i < N; i++) {
        uint8_t f[16];
        long n = recv_frame(fd, f, sizeof(f), WAIT_MS);
        if (n != (long)(4 + i % 7) || be32_load(f) != i)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    close(fd);
    srv_finish(&s);
}

typedef struct completer {
    srv *s;
    int n;
} completer;

/* Completes the parked requests from another thread, last first; frames
 * "skip" get no reply, the others are echoed. */
static void *complete_reversed(void *arg)
{
    completer *cp = arg;
    srv *s = cp->s;
    for (int i = 0; i < cp->n; i++)
        if (!sig_wait(s->sig_frame, WAIT_MS))
            return NULL;
    for (int i = cp->n - 1; i >= 0; i--) {
        net_req *req = s->parked[i];
        size_t len;
        const uint8_t *f = net_req_frame(req, &len);
        if (len == 4 && memcmp(f, "skip", 4) == 0) {
            net_req_noreply(req);
        } else {
            net_reply *r = net_reply_new();
            net_reply_add_copy(r, f, len);
            net_req_reply(req, r);
        }
    }
    return NULL;
}

/* Requests completed out of order from another thread, some with no reply,
 * are still answered in request order. */
TEST(out_of_order_completion_and_noreply)
{
    enum { N = 64 };
    srv s;
    net_config cfg = test_cfg();
    REQUIRE(srv_start(&s, &cfg, M_PARK));
    int fd = cli_open(s.port);
    REQUIRE(fd >= 0);
    completer cp = {&s, N};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, complete_reversed, &cp) == 0);
    int expect[N], nexpect = 0;
    for (int i = 0; i < N; i++) {
        char msg[16];
        if (i % 5 == 2) {
            CHECK(send_frame(fd, "skip", 4));
        } else {
            snprintf(msg, sizeof(msg), "m%03d", i);
            CHECK(send_frame(fd, msg, 4));
            expect[nexpect++] = i;
        }
    }
    pthread_join(t, NULL);
    for (int k = 0; k < nexpect; k++) {
        char buf[16], want[16];
        long n = recv_frame(fd, buf, sizeof(buf), WAIT_MS);
        snprintf(want, sizeof(want), "m%03d", expect[k]);
        CHECK(n == 4 && memcmp(buf, want, 4) == 0);
    }
    CHECK_EQ_INT(stats(&s).frames_out, nexpect);
    CHECK_EQ_INT(stats(&s).requests_inflight, 0);
    close(fd);
    srv_finish(&s);
}

/* net_req_close_conn: replies before it are sent, then the connection closes. */
TEST(close_conn_after_earlier_replies)
{
    srv s;
    net_config cfg = test_cfg();
    REQUIRE(srv_start(&s, &cfg, M_ECHO));
    int fd = cli_open(s.port);
    REQUIRE(fd >= 0);
    CHECK(send_frame(fd, "one", 3) && send_frame(fd, "bad", 3) && send_frame(fd, "two", 3));
    char buf[16];
    CHECK_EQ_INT(recv_frame(fd, buf, sizeof(buf), WAIT_MS), 3);
    CHECK(memcmp(buf, "one", 3) == 0);
    CHECK(wait_eof(fd, WAIT_MS));
    CHECK(sig_wait(s.sig_close, WAIT_MS));
    CHECK_EQ_INT(stats(&s).malformed_closes, 1);
    close(fd);
    srv_finish(&s);
}

/* An oversized or negative length closes only that connection. */
TEST(bad_length_closes_only_that_conn)
{
    srv s;
    net_config cfg = test_cfg();
    REQUIRE(srv_start(&s, &cfg, M_ECHO));
    int good = cli_open(s.port), big = cli_open(s.port), neg = cli_open(s.port);
    REQUIRE(good >= 0 && big >= 0 && neg >= 0);
    CHECK(echo_ok(good, "before"));
    uint8_t hdr[4];
    be32_store(hdr, 0x7fffffffu);
    CHECK(write_all(big, hdr, 4));
    be32_store(hdr, 0xfffffff0u);
    CHECK(write_all(neg, hdr, 4));
    CHECK(wait_eof(big, WAIT_MS));
    CHECK(wait_eof(neg, WAIT_MS));
    CHECK(echo_ok(good, "after"));
    net_stats st = stats(&s);
    CHECK_EQ_INT(st.oversize_closes, 1);
    CHECK_EQ_INT(st.bad_length_closes, 1);
    close(good), close(big), close(neg);
    srv_finish(&s);
}

/* A frame cut short by the peer closing is dropped without harm. */
TEST(truncated_frame_then_close)
{
    srv s;
    net_config cfg = test_cfg();
    REQUIRE(srv_start(&s, &cfg, M_ECHO));
    int fd = cli_open(s.port);
    REQUIRE(fd >= 0);
    uint8_t part[14] = {0, 0, 0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    CHECK(write_all(fd, part, sizeof(part)));
    close(fd);
    CHECK(sig_wait(s.sig_close, WAIT_MS));
    int other = cli_open(s.port);
    REQUIRE(other >= 0);
    CHECK(echo_ok(other, "still fine"));
    CHECK_EQ_INT(stats(&s).frames_in, 1);
    close(other);
    srv_finish(&s);
}

/* A peer that half-closes after its requests still gets every reply, then
 * the server closes. */
TEST(half_close_still_answered)
{
    srv s;
    net_config cfg = test_cfg();
    REQUIRE(srv_start(&s, &cfg, M_ECHO));
    int fd = cli_open(s.port);
    REQUIRE(fd >= 0);
    CHECK(send_frame(fd, "a", 1) && send_frame(fd, "bb", 2) && send_frame(fd, "ccc", 3));
    CHECK(shutdown(fd, SHUT_WR) == 0);
    for (long i = 1; i <= 3; i++) {
        char buf[8];
        CHECK_EQ_INT(recv_frame(fd, buf, sizeof(buf), WAIT_MS), i);
    }
    CHECK(wait_eof(fd, WAIT_MS));
    CHECK(sig_wait(s.sig_close, WAIT_MS));
    close(fd);
    srv_finish(&s);
}

/* A frame larger than the read chunk arrives whole; one byte at a time too. */
TEST(large_and_dribbled_frames)
{
    srv s;
    net_config cfg = test_cfg();
    cfg.read_chunk_bytes = 1024;
    REQUIRE(srv_start(&s, &cfg, M_ECHO));
    int fd = cli_open(s.port);
    REQUIRE(fd >= 0);
    size_t n = 3u << 20;
    uint8_t *big = xmalloc(n), *back = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)(i * 31 + 7);
    CHECK(send_frame(fd, big, (uint32_t)n));
    CHECK_EQ_INT(recv_frame(fd, back, n, WAIT_MS), (long)n);
    CHECK(memcmp(big, back, n) == 0);
    const uint8_t dribble[] = {0, 0, 0, 3, 'a', 'b', 'c'};
    for (size_t i = 0; i < sizeof(dribble); i++)
        CHECK(write_all(fd, &dribble[i], 1));
    CHECK_EQ_INT(recv_frame(fd, back, n, WAIT_MS), 3);
    CHECK(memcmp(back, "abc", 3) == 0);
    free(big);
    free(back);
    close(fd);
    srv_finish(&s);
}

/* A file part goes out with sendfile intact between memory parts, and its
 * release callback runs once it is sent. */
TEST(sendfile_part)
{
    srv s;
    net_config cfg = test_cfg();
    REQUIRE(srv_start(&s, &cfg, M_FILE));
    char path[] = "/tmp/chronik-test-net-XXXXXX";
    s.file_fd = mkstemp(path);
    REQUIRE(s.file_fd >= 0);
    unlink(path);
    size_t flen = 1u << 20;
    uint8_t *data = xmalloc(flen);
    for (size_t i = 0; i < flen; i++)
        data[i] = (uint8_t)(i ^ (i >> 8));
    REQUIRE(write(s.file_fd, data, flen) == (ssize_t)flen);
    s.file_off = 1000;
    s.file_len = 500000;
    int fd = cli_open(s.port);
    REQUIRE(fd >= 0);
    CHECK(send_frame(fd, "fetch", 5));
    uint8_t *got = xmalloc(flen);
    long n = recv_frame(fd, got, flen, WAIT_MS);
    REQUIRE(n == (long)(s.file_len + 6));
    CHECK(memcmp(got, "HDR", 3) == 0);
    CHECK(memcmp(got + 3, data + s.file_off, s.file_len) == 0);
    CHECK(memcmp(got + 3 + s.file_len, "TRL", 3) == 0);
    CHECK(sig_wait(s.sig_release, WAIT_MS) && sig_wait(s.sig_release, WAIT_MS));
    CHECK_EQ_INT(atomic_load(&s.releases), 2);
    CHECK(stats(&s).sendfile_bytes == s.file_len);
    free(data);
    free(got);
    close(fd);
    srv_finish(&s);
}

/* A peer that resets while a file part is going out is harmless; the
 * release callback runs and other connections keep working. */
TEST(sendfile_peer_gone)
{
    srv s;
    net_config cfg = test_cfg();
    cfg.socket_send_buffer_bytes = 16 * 1024;
    REQUIRE(srv_start(&s, &cfg, M_FILE));
    char path[] = "/tmp/chronik-test-net-XXXXXX";
    s.file_fd = mkstemp(path);
    REQUIRE(s.file_fd >= 0);
    unlink(path);
    s.file_off = 0;
    s.file_len = 4u << 20;
    REQUIRE(ftruncate(s.file_fd, (off_t)s.file_len) == 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(s.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(send_frame(fd, "fetch", 5));
    uint8_t head[7];
    CHECK(read_full(fd, head, sizeof(head), WAIT_MS)); /* the reply has started */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd); /* reset */
    CHECK(sig_wait(s.sig_release, WAIT_MS) && sig_wait(s.sig_release, WAIT_MS));
    CHECK(sig_wait(s.sig_close, WAIT_MS));
    CHECK(stats(&s).sendfile_bytes < s.file_len);
    s.mode = M_ECHO;
    int other = cli_open(s.port);
    REQUIRE(other >= 0);
    CHECK(echo_ok(other, "alive"));
    close(other);
    srv_finish(&s);
}

/* A connection idle for idle_timeout_ms is closed and counted. */
TEST(idle_timeout)
{
    srv s;
    net_config cfg = test_cfg();
    cfg.idle_timeout_ms = 150;
    REQUIRE(srv_start(&s, &cfg, M_ECHO));
    int fd = cli_open(s.port);
    REQUIRE(fd >= 0);
    CHECK(echo_ok(fd, "ping"));
    int64_t t0 = clock_mono_ms();
    CHECK(wait_eof(fd, WAIT_MS));
    CHECK(clock_mono_ms() - t0 >= 100);
    CHECK(sig_wait(s.sig_close, WAIT_MS));
    CHECK_EQ_INT(stats(&s).idle_closes, 1);
    close(fd);
    srv_finish(&s);
}

/* A file shorter than its part closes the connection; release still runs. */
TEST(sendfile_short_file_closes)
{
    srv s;
    net_config cfg = test_cfg();
    REQUIRE(srv_start(&s, &cfg, M_FILE));
    char path[] = "/tmp/chronik-test-net-XXXXXX";
    s.file_fd = mkstemp(path);
    REQUIRE(s.file_fd >= 0);
    unlink(path);
    REQUIRE(write(s.file_fd, "0123456789", 10) == 10);
    s.file_off = 0;
    s.file_len = 100;
    int fd = cli_open(s.port);
    REQUIRE(fd >= 0);
    CHECK(send_frame(fd, "fetch", 5));
    CHECK(wait_eof(fd, WAIT_MS));
    CHECK(sig_wait(s.sig_release, WAIT_MS) && sig_wait(s.sig_release, WAIT_MS));
    close(fd);
    srv_finish(&s);
}

/* A client that does not read: the server stops reading it, its queued
 * output stays bounded, and everything is answered once the client reads. */
TEST(backpressure_output)
{
    srv s;
    net_config cfg = test_cfg();
    cfg.output_max_bytes = 64 * 1024;
    cfg.socket_send_buffer_bytes = 16 * 1024;
    cfg.socket_receive_buffer_bytes = 16 * 1024;
    REQUIRE(srv_start(&s, &cfg, M_BIG));
    s.big_len = 16 * 1024;
    int fd = cli_open(s.port);
    REQUIRE(fd >= 0);
    int small = 16 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    uint8_t frame[4 + 512] = {0};
    be32_store(frame, 512);
    uint32_t sent = 0;
    for (;;) { /* write until the client is blocked for QUIET_MS */
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        if (poll(&pf, 1, QUIET_MS) <= 0)
            break;
        be32_store(frame + 4, sent);
        REQUIRE(write_all(fd, frame, sizeof(frame)));
        sent++;
        REQUIRE(sent < 100000);
    }
    net_stats st = stats(&s);
    CHECK(st.read_pauses >= 1);
    CHECK(st.frames_in < sent);
    CHECK(st.output_queued_bytes <= cfg.output_max_bytes + s.big_len + 4);
    uint8_t *buf = xmalloc(s.big_len);
    int bad = 0;
    for (uint32_t i = 0; i < sent; i++) {
        long n = recv_frame(fd, buf, s.big_len, WAIT_MS);
        if (n != (long)s.big_len || be32_load(buf) != i)
            bad++;
        if (n < 0)
            break;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(stats(&s).frames_in, sent);
    free(buf);
    close(fd);
    srv_finish(&s);
}

static void complete_all_echo(srv *s)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nparked; i++) {
        size_t len;
        const uint8_t *f = net_req_frame(s->parked[i], &len);
        net_reply *r = net_reply_new();
        net_reply_add_copy(r, f, len);
        net_req_reply(s->parked[i], r);
    }
    s->nparked = 0;
    pthread_mutex_unlock(&s->mu);
}

/* At inflight_max unanswered requests the server stops reading frames. */
TEST(backpressure_inflight)
{
    srv s;
    net_config cfg = test_cfg();
    cfg.inflight_max = 4;
    REQUIRE(srv_start(&s, &cfg, M_PARK));
    int fd = cli_open(s.port);
    REQUIRE(fd >= 0);
    for (uint32_t i = 0; i < 10; i++) {
        uint8_t b[4];
        be32_store(b, i);
        CHECK(send_frame(fd, b, 4));
    }
    for (int i = 0; i < 4; i++)
        CHECK(sig_wait(s.sig_frame, WAIT_MS));
    CHECK(!sig_wait(s.sig_frame, QUIET_MS)); /* the fifth is not read */
    CHECK_EQ_INT(park_count(&s), 4);
    complete_all_echo(&s);
    for (int i = 0; i < 4; i++)
        CHECK(sig_wait(s.sig_frame, WAIT_MS));
    complete_all_echo(&s);
    for (int i = 0; i < 2; i++)
        CHECK(sig_wait(s.sig_frame, WAIT_MS));
    complete_all_echo(&s);
    for (uint32_t i = 0; i < 10; i++) {
        uint8_t b[4];
        CHECK(recv_frame(fd, b, 4, WAIT_MS) == 4 && be32_load(b) == i);
    }
    close(fd);
    srv_finish(&s);
}

/* Frames share queued_max_bytes: a large frame that does not fit is not read until an earlier one completes; small frames pass within the slack. */
TEST(global_budget_for_frames)
{
    enum { BIG = 100000, BUDGET = 150000 };
    srv s;
    net_config cfg = test_cfg();
    cfg.queued_max_bytes = BUDGET;
    REQUIRE(srv_start(&s, &cfg, M_PARK));
    uint8_t *big = calloc(1, BIG);
    int a = cli_open(s.port), b = cli_open(s.port), c = cli_open(s.port);
    REQUIRE(big != NULL && a >= 0 && b >= 0 && c >= 0);
    CHECK(send_frame(a, big, BIG));
    CHECK(sig_wait(s.sig_frame, WAIT_MS));
    CHECK_EQ_INT(stats(&s).request_queued_bytes, BIG);
    CHECK(send_frame(b, big, BIG));
    CHECK(!sig_wait(s.sig_frame, QUIET_MS)); /* b waits for the budget */
    CHECK_EQ_INT(stats(&s).budget_waits, 1);
    CHECK(send_frame(c, "tiny", 4));
    CHECK(sig_wait(s.sig_frame, WAIT_MS)); /* small frames pass */
    complete_all_echo(&s);
    CHECK(sig_wait(s.sig_frame, WAIT_MS)); /* b's frame, once a's is answered */
    CHECK_EQ_INT(stats(&s).request_queued_bytes, BIG);
    complete_all_echo(&s);
    CHECK(recv_frame(a, big, BIG, WAIT_MS) == BIG && recv_frame(b, big, BIG, WAIT_MS) == BIG);
    CHECK(recv_frame(c, big, 4, WAIT_MS) == 4);
    CHECK_EQ_INT(stats(&s).request_queued_bytes, 0);
    close(a);
    close(b);
    close(c);
    free(big);
    srv_finish(&s);
}

/* ---- timers and posting ------------------------------------------------------------ */

typedef struct tctx {
    net_reactor *r;
    net_timer t[4];
    int order[4];
    atomic_int fired;
    int sig;
    bool cancel_ok, cancel_again;
} tctx;

typedef struct tfire {
    tctx *tc;
    int id;
} tfire;

static tfire tfires[4];

static void timer_cb(void *arg)
{
    tfire *f = arg;
    CK_ASSERT(net_current_reactor() == f->tc->r);
    int k = atomic_fetch_add(&f->tc->fired, 1);
    if (k < 4)
        f->tc->order[k] = f->id;
    sig_post(f->tc->sig);
}

static void arm_timers(void *arg)
{
    tctx *tc = arg;
    static const int delays[4] = {60, 20, 40, 30};
    for (int i = 0; i < 4; i++) {
        tfires[i] = (tfire){tc, i};
        net_timer_init(&tc->t[i]);
        net_timer_add(tc->r, &tc->t[i], (uint64_t)delays[i], timer_cb, &tfires[i]);
    }
    tc->cancel_ok = net_timer_cancel(&tc->t[3]);
    tc->cancel_again = net_timer_cancel(&tc->t[3]);
}

/* Timers fire in deadline order on their reactor; a cancelled one never does. */
TEST(timers)
{
    net_config cfg = test_cfg();
    net_t *net = net_new(&cfg);
    REQUIRE(net_start(net) == 0);
    tctx tc = {.r = net_reactor_at(net, 1), .sig = sig_new()};
    CHECK(net_post(tc.r, arm_timers, &tc));
    for (int i = 0; i < 3; i++)
        CHECK(sig_wait(tc.sig, WAIT_MS));
    CHECK(!sig_wait(tc.sig, QUIET_MS));
    CHECK_EQ_INT(atomic_load(&tc.fired), 3);
    CHECK(tc.order[0] == 1 && tc.order[1] == 2 && tc.order[2] == 0);
    CHECK(tc.cancel_ok && !tc.cancel_again);
    CHECK(!net_timer_pending(&tc.t[0]));
    net_stop(net);
    CHECK(!net_post(tc.r, arm_timers, &tc)); /* a dead reactor refuses */
    net_free(net);
    close(tc.sig);
}

/* ---- outbound connections --------------------------------------------------------- */

typedef struct client {
    int sig_connect, sig_frame, sig_close;
    int close_err;
    pthread_mutex_t mu;
    uint32_t got[64];
    int ngot;
} client;

static void cl_connect(net_conn *c, void *ctx)
{
    UNUSED(c);
    sig_post(((client *)ctx)->sig_connect);
}

static void cl_frame(net_conn *c, const uint8_t *f, size_t len, void *ctx)
{
    client *cl = ctx;
    CK_ASSERT(net_current_reactor() == net_conn_reactor(c) && len == 4);
    pthread_mutex_lock(&cl->mu);
    if (cl->ngot < 64)
        cl->got[cl->ngot++] = be32_load(f);
    pthread_mutex_unlock(&cl->mu);
    sig_post(cl->sig_frame);
}

static void cl_close(net_conn *c, int err, void *ctx)
{
    UNUSED(c);
    client *cl = ctx;
    cl->close_err = err;
    sig_post(cl->sig_close);
}

static void client_init(client *cl)
{
    memset(cl, 0, sizeof(*cl));
    cl->sig_connect = sig_new();
    cl->sig_frame = sig_new();
    cl->sig_close = sig_new();
    pthread_mutex_init(&cl->mu, NULL);
}

static void client_fini(client *cl)
{
    close(cl->sig_connect), close(cl->sig_frame), close(cl->sig_close);
    pthread_mutex_destroy(&cl->mu);
}

/* An outbound connection exchanges frames with a server reactor, in order;
 * frames queued before the connect completes are sent after it. */
TEST(outbound_exchange)
{
    srv s;
    net_config cfg = test_cfg();
    REQUIRE(srv_start(&s, &cfg, M_ECHO));
    net_t *cn = net_new(&cfg);
    REQUIRE(net_start(cn) == 0);
    client cl;
    client_init(&cl);
    net_client_cb cb = {cl_connect, cl_frame, cl_close, &cl};
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", s.port);
    net_conn *c = net_connect(cn, NULL, addr, &cb);
    REQUIRE(c != NULL);
    CHECK(net_conn_is_outbound(c));
    for (uint32_t i = 0; i < 32; i++) {
        buf_t b;
        buf_init(&b);
        buf_put_i32(&b, (int32_t)i);
        CHECK_EQ_INT(net_conn_send_buf(c, &b), 0);
    }
    CHECK(sig_wait(cl.sig_connect, WAIT_MS));
    for (int i = 0; i < 32; i++)
        CHECK(sig_wait(cl.sig_frame, WAIT_MS));
    pthread_mutex_lock(&cl.mu);
    int bad = 0;
    for (int i = 0; i < 32; i++)
        bad += cl.got[i] != (uint32_t)i;
    pthread_mutex_unlock(&cl.mu);
    CHECK_EQ_INT(bad, 0);
    CHECK(strncmp(net_conn_peer(c), "127.0.0.1:", 10) == 0);
    net_conn_close(c);
    CHECK(sig_wait(cl.sig_close, WAIT_MS));
    CHECK_EQ_INT(cl.close_err, ECANCELED);
    CHECK(sig_wait(s.sig_close, WAIT_MS)); /* the server saw it go */
    net_stop(cn);
    net_free(cn);
    client_fini(&cl);
    srv_finish(&s);
}

/* Connecting to a closed port reports ECONNREFUSED through on_close; a peer
 * closing reports 0; net stopping reports ESHUTDOWN. */
TEST(outbound_failures)
{
    srv s;
    net_config cfg = test_cfg();
    REQUIRE(srv_start(&s, &cfg, M_ECHO));
    uint16_t dead_port = s.port;
    net_t *cn = net_new(&cfg);
    REQUIRE(net_start(cn) == 0);
    client cl;
    client_init(&cl);
    net_client_cb cb = {cl_connect, cl_frame, cl_close, &cl};
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", s.port);
    net_conn *c = net_connect(cn, net_reactor_at(cn, 0), addr, &cb);
    REQUIRE(c != NULL);
    CHECK(sig_wait(cl.sig_connect, WAIT_MS));
    srv_finish(&s); /* the server goes away: the peer closes */
    CHECK(sig_wait(cl.sig_close, WAIT_MS));
    CHECK_EQ_INT(cl.close_err, 0);
    CHECK(net_conn_closed(c));
    buf_t b;
    buf_init(&b);
    buf_put_i32(&b, 1);
    CHECK_EQ_INT(net_conn_send_buf(c, &b), -EPIPE);
    net_conn_close(c);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", dead_port);
    c = net_connect(cn, NULL, addr, &cb);
    REQUIRE(c != NULL);
    CHECK(sig_wait(cl.sig_close, WAIT_MS));
    CHECK_EQ_INT(cl.close_err, ECONNREFUSED);
    net_conn_close(c);
    CHECK(net_connect(cn, NULL, "no-port", &cb) == NULL);
    net_stop(cn);
    net_free(cn);
    client_fini(&cl);
}

/* ---- shutdown --------------------------------------------------------------------- */

static void *stop_then_complete(void *arg)
{
    srv *s = arg;
    net_request_stop(s->net);
    complete_all_echo(s);
    return NULL;
}

/* A graceful stop completes requests in flight and flushes their replies,
 * then closes; new connections are refused. */
TEST(graceful_stop_completes_inflight)
{
    srv s;
    net_config cfg = test_cfg();
    REQUIRE(srv_start(&s, &cfg, M_PARK));
    int fd = cli_open(s.port);
    REQUIRE(fd >= 0);
    for (uint32_t i = 0; i < 3; i++) {
        uint8_t b[4];
        be32_store(b, i);
        CHECK(send_frame(fd, b, 4));
    }
    for (int i = 0; i < 3; i++)
        CHECK(sig_wait(s.sig_frame, WAIT_MS));
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, stop_then_complete, &s) == 0);
    net_wait(s.net);
    pthread_join(t, NULL);
    for (uint32_t i = 0; i < 3; i++) {
        uint8_t b[4];
        CHECK(recv_frame(fd, b, 4, WAIT_MS) == 4 && be32_load(b) == i);
    }
    CHECK(wait_eof(fd, WAIT_MS));
    CHECK(cli_open(s.port) < 0);
    close(fd);
    net_free(s.net);
    close(s.sig_frame), close(s.sig_close), close(s.sig_release);
    pthread_mutex_destroy(&s.mu);
}

/* Past the shutdown deadline connections close anyway; requests completed
 * after net stopped are disposed of without leaks. */
TEST(stop_deadline_then_late_completion)
{
    srv s;
    net_config cfg = test_cfg();
    cfg.shutdown_timeout_ms = 100;
    REQUIRE(srv_start(&s, &cfg, M_PARK));
    int fd = cli_open(s.port);
    REQUIRE(fd >= 0);
    CHECK(send_frame(fd, "late", 4));
    CHECK(sig_wait(s.sig_frame, WAIT_MS));
    int64_t t0 = clock_mono_ms();
    net_stop(s.net);
    CHECK(clock_mono_ms() - t0 >= 90);
    CHECK(wait_eof(fd, WAIT_MS));
    CHECK(!sig_wait(s.sig_close, 0)); /* the request still holds the conn */
    complete_all_echo(&s);
    CHECK(sig_wait(s.sig_close, WAIT_MS)); /* ran on this thread */
    net_free(s.net);
    close(fd);
    close(s.sig_frame), close(s.sig_close), close(s.sig_release);
    pthread_mutex_destroy(&s.mu);
}

static net_t *sig_net;

static void on_sigusr1(int sig)
{
    UNUSED(sig);
    net_request_stop(sig_net);
}

static void *run_thread(void *arg)
{
    net_run(arg);
    return NULL;
}

/* net_run returns after net_request_stop is called from a signal handler. */
TEST(run_until_signal)
{
    srv s;
    net_config cfg = test_cfg();
    memset(&s, 0, sizeof(s));
    pthread_mutex_init(&s.mu, NULL);
    s.sig_frame = sig_new(), s.sig_close = sig_new(), s.sig_release = sig_new();
    s.net = net_new(&cfg);
    net_handler h = {.on_frame = on_frame, .on_close = on_close, .ctx = &s};
    REQUIRE(net_listen(s.net, "127.0.0.1:0", &h, &s.port) == 0);
    sig_net = s.net;
    struct sigaction sa = {.sa_handler = on_sigusr1}, old;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGUSR1, &sa, &old) == 0);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, run_thread, s.net) == 0);
    int fd = cli_open(s.port);
    REQUIRE(fd >= 0);
    CHECK(echo_ok(fd, "running"));
    CHECK(kill(getpid(), SIGUSR1) == 0);
    CHECK(wait_eof(fd, WAIT_MS));
    pthread_join(t, NULL);
    sigaction(SIGUSR1, &old, NULL);
    close(fd);
    srv_finish(&s); /* net_stop on a stopped net returns at once */
}

/* ---- addresses --------------------------------------------------------------------- */

/* HOST:PORT and [V6]:PORT parse; malformed ones are refused. */
TEST(parse_hostport)
{
    char host[NET_HOST_MAX];
    uint16_t port;
    CHECK(net_parse_hostport("127.0.0.1:9092", host, &port) == 0);
    CHECK(strcmp(host, "127.0.0.1") == 0 && port == 9092);
    CHECK(net_parse_hostport("[::1]:0", host, &port) == 0);
    CHECK(strcmp(host, "::1") == 0 && port == 0);
    CHECK(net_parse_hostport(":9093", host, &port) == 0);
    CHECK(host[0] == '\0' && port == 9093);
    CHECK(net_parse_hostport("localhost:65535", host, &port) == 0);
    CHECK(net_parse_hostport("localhost:65536", host, &port) == -EINVAL);
    CHECK(net_parse_hostport("localhost", host, &port) == -EINVAL);
    CHECK(net_parse_hostport("h:", host, &port) == -EINVAL);
    CHECK(net_parse_hostport("h:-1", host, &port) == -EINVAL);
    CHECK(net_parse_hostport("h:12x", host, &port) == -EINVAL);
    CHECK(net_parse_hostport("::1:80", host, &port) == -EINVAL);
    CHECK(net_parse_hostport("[::1]80", host, &port) == -EINVAL);
}

/* Listening on [::1] works when the host has IPv6 loopback; port 0 binds. */
TEST(listen_ipv6_and_errors)
{
    net_config cfg = test_cfg();
    net_t *net = net_new(&cfg);
    net_handler h = {.on_frame = on_frame};
    uint16_t port = 0;
    int rc = net_listen(net, "[::1]:0", &h, &port);
    CHECK(rc == 0 || rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT);
    if (rc == 0)
        CHECK(port != 0);
    CHECK(net_listen(net, "bogus", &h, &port) == -EINVAL);
    net_free(net); /* never started */
}

/* net_hostport_problem names what is wrong with an address, and accepts what net_parse_hostport accepts. */
TEST(hostport_problems)
{
    static const char *const ok[] = {"127.0.0.1:9092", "[::1]:0", ":9093", "localhost:65535"};
    for (size_t i = 0; i < ARRAY_LEN(ok); i++)
        CHECK(net_hostport_problem(ok[i]) == NULL);
    CHECK(strstr(net_hostport_problem("127.0.0.1:99999"), "out of range") != NULL);
    CHECK(strstr(net_hostport_problem("127.0.0.1:4294967297"), "out of range") != NULL);
    CHECK(strstr(net_hostport_problem("127.0.0.1:abc"), "not a number") != NULL);
    CHECK(strstr(net_hostport_problem("h:-1"), "not a number") != NULL);
    CHECK(strstr(net_hostport_problem("nohost"), "no port") != NULL);
    CHECK(strstr(net_hostport_problem("h:"), "no port") != NULL);
    CHECK(strstr(net_hostport_problem("[::1]80"), "no port") != NULL);
    CHECK(strstr(net_hostport_problem("::1:80"), "brackets") != NULL);
    CHECK(strstr(net_hostport_problem(""), "empty") != NULL);
}

/* ==== TLS ================================================================================ */

/* ---- a self-signed certificate for localhost, key and certificate in one PEM file ---- */

static bool make_keystore(const char *path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    bool ok = key && x;
    if (ok) {
        ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, key);
        X509_NAME *n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
        X509_set_issuer_name(x, n);
        ok = X509_sign(x, key, EVP_sha256()) > 0;
    }
    FILE *f = ok ? fopen(path, "w") : NULL;
    ok = f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) && PEM_write_X509(f, x);
    if (f)
        fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
    return ok;
}


static char tls_keystore[64], tls_trust[80]; /* the server's PEM file; what clients trust */

/* srv_start on a TLS listener with a fresh self-signed keystore. */
static bool srv_start_tls(srv *s, net_config cfg, enum mode mode)
{
    snprintf(tls_keystore, sizeof tls_keystore, "/tmp/chronik-test-net-%d.pem", (int)getpid());
    snprintf(tls_trust, sizeof tls_trust, "%s", tls_keystore);
    if (!make_keystore(tls_keystore))
        return false;
    net_tls_config tc = {.keystore = tls_keystore, .tls12 = true, .tls13 = true};
    char err[256];
    net_tls *t = net_tls_new(&tc, err, sizeof err);
    if (t == NULL) {
        fprintf(stderr, "  net_tls_new: %s\n", err);
        return false;
    }
    cfg.num_threads = 2;
    return srv_start_with(s, &cfg, mode, t);
}

static void srv_finish_tls(srv *s)
{
    srv_finish(s);
    unlink(tls_keystore);
}

/* ---- a blocking TLS client (every socket call has a deadline) ----------------------------- */

typedef struct cli {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
} cli;

static int tcp_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = WAIT_MS / 1000};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static bool tls_cli_open(cli *c, const srv *s)
{
    c->fd = tcp_open(s->port);
    c->ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    if (c->fd < 0 || SSL_CTX_load_verify_locations(c->ctx, tls_trust, NULL) != 1)
        return false;
    c->ssl = SSL_new(c->ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set1_host(c->ssl, "localhost");
    return SSL_connect(c->ssl) == 1;
}

static void tls_cli_close(cli *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    ERR_clear_error();
}

static bool cli_write(cli *c, const void *p, size_t n) { return SSL_write(c->ssl, p, (int)n) == (int)n; }

static bool cli_read(cli *c, void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        int r = SSL_read(c->ssl, b, (int)MIN(n, (size_t)1 << 20));
        if (r <= 0)
            return false;
        b += r;
        n -= (size_t)r;
    }
    return true;
}

/* frames of 4-byte big-endian values first..first+count-1, all in one buffer */
static size_t put_frames(uint8_t *out, uint32_t first, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        be32_store(out + 8 * i, 4);
        be32_store(out + 8 * i + 4, first + i);
    }
    return 8 * (size_t)count;
}

static bool read_counters(cli *c, uint32_t first, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        uint8_t b[8];
        if (!cli_read(c, b, 8) || be32_load(b) != 4 || be32_load(b + 4) != first + i)
            return false;
    }
    return true;
}

/* count counter frames sent in one record, and their echoes read back in order. */
static bool tls_roundtrip(cli *c, uint32_t first, uint32_t count)
{
    static uint8_t buf[8 * 1000];
    CK_ASSERT(count <= 1000);
    return cli_write(c, buf, put_frames(buf, first, count)) && read_counters(c, first, count);
}

/* A TLS server in mode and one client connected to it. */
static bool tls_setup(srv *s, cli *c, net_config cfg, enum mode mode)
{
    return srv_start_tls(s, cfg, mode) && tls_cli_open(c, s);
}

static void tls_teardown(srv *s, cli *c)
{
    tls_cli_close(c);
    srv_finish_tls(s);
}

/* ---- tests ----------------------------------------------------------------------------------- */

/* Many frames in one record, and one frame split over many records, are answered in order. */
TEST(tls_frames_and_records)
{
    srv s;
    cli c;
    REQUIRE(tls_setup(&s, &c, net_config_defaults(), M_ECHO));
    CHECK(tls_roundtrip(&c, 0, 1000));
    uint8_t buf[8];
    size_t n = put_frames(buf, 5000, 1);
    for (size_t i = 0; i < n; i++)
        CHECK(cli_write(&c, buf + i, 1));
    CHECK(read_counters(&c, 5000, 1));
    tls_teardown(&s, &c);
}

/* Reading pauses (inflight_max) with frames already decrypted in the record
 * layer and nothing more on the socket: completing the requests resumes
 * reading from what the record layer holds. */
TEST(tls_decrypted_bytes_survive_a_pause)
{
    srv s;
    net_config cfg = net_config_defaults();
    cfg.inflight_max = 2;
    cfg.read_chunk_bytes = 16; /* a record's plaintext cannot fit: the rest stays in the record layer */
    cli c;
    REQUIRE(tls_setup(&s, &c, cfg, M_PARK));
    static uint8_t buf[8 * 200];
    CHECK(cli_write(&c, buf, put_frames(buf, 0, 200)));
    int done = 0;
    for (int64_t deadline = clock_mono_ms() + WAIT_MS; done < 200 && clock_mono_ms() < deadline;) {
        int n = park_count(&s);
        CHECK(n <= 2);
        if (n == 2 || (n > 0 && done + n == 200)) {
            done += n;
            complete_all_echo(&s);
        }
    }
    CHECK_EQ_INT(done, 200);
    CHECK(read_counters(&c, 0, 200));
    tls_teardown(&s, &c);
}

/* A reply far larger than the output limit and the staging buffer arrives whole while the client reads slowly. */
TEST(tls_large_reply_through_the_record_layer)
{
    srv s;
    net_config cfg = net_config_defaults();
    cfg.output_max_bytes = 64 * 1024;
    cli c;
    REQUIRE(tls_setup(&s, &c, cfg, M_BIG));
    s.big_len = 3u << 20; /* read by the handler, after start */
    uint8_t req[8];
    CHECK(cli_write(&c, req, put_frames(req, 42, 1)));
    uint8_t hdr[4];
    REQUIRE(cli_read(&c, hdr, 4) && be32_load(hdr) == s.big_len);
    uint8_t *got = xmalloc(s.big_len);
    CHECK(cli_read(&c, got, s.big_len));
    CHECK(be32_load(got) == 42); /* the request's frame, then the pattern */
    bool same = true;
    for (size_t i = 4; i < s.big_len; i++)
        same &= got[i] == 0xab;
    CHECK(same);
    free(got);
    tls_teardown(&s, &c);
}

/* A file part is read and encrypted (no sendfile on TLS): the bytes arrive between the memory parts. */
TEST(tls_file_part_copied)
{
    srv s;
    cli c;
    REQUIRE(tls_setup(&s, &c, net_config_defaults(), M_FILE));
    char path[] = "/tmp/chronik-tls-file-XXXXXX";
    s.file_fd = mkstemp(path);
    REQUIRE(s.file_fd >= 0);
    unlink(path);
    s.file_len = 200000;
    uint8_t *data = xmalloc(s.file_len);
    for (size_t i = 0; i < s.file_len; i++)
        data[i] = (uint8_t)(i % 251);
    REQUIRE(write(s.file_fd, data, s.file_len) == (ssize_t)s.file_len);
    uint8_t req[8], hdr[7];
    CHECK(cli_write(&c, req, put_frames(req, 1, 1)));
    REQUIRE(cli_read(&c, hdr, 7) && be32_load(hdr) == s.file_len + 6 && memcmp(hdr + 4, "HDR", 3) == 0);
    uint8_t *got = xmalloc(s.file_len + 3);
    CHECK(cli_read(&c, got, s.file_len + 3));
    CHECK(memcmp(got, data, s.file_len) == 0 && memcmp(got + s.file_len, "TRL", 3) == 0);
    net_stats st;
    net_stats_get(s.net, &st);
    CHECK_EQ_INT(st.sendfile_bytes, 0);
    free(got);
    free(data);
    tls_teardown(&s, &c);
}

/* A plaintext frame on the TLS port closes that connection; a TLS client is served after it. */
TEST(tls_plaintext_peer_closed)
{
    srv s;
    cli c;
    REQUIRE(srv_start_tls(&s, net_config_defaults(), M_ECHO));
    int fd = tcp_open(s.port);
    REQUIRE(fd >= 0);
    uint8_t frame[8];
    put_frames(frame, 9, 1);
    CHECK(send(fd, frame, sizeof frame, MSG_NOSIGNAL) == (ssize_t)sizeof frame);
    CHECK(wait_eof(fd, WAIT_MS)); /* an alert, then the close */
    close(fd);
    REQUIRE(tls_cli_open(&c, &s));
    CHECK(tls_roundtrip(&c, 3, 1));
    tls_teardown(&s, &c);
}

/* A keystore that cannot be read is an error that names the file; reload
 * sees an unchanged file as unchanged and a replaced one as new. */
TEST(tls_context_errors_and_reload)
{
    char err[256];
    net_tls_config bad = {.keystore = "/nonexistent/keystore.pem", .tls13 = true};
    CHECK(net_tls_new(&bad, err, sizeof err) == NULL && strstr(err, "/nonexistent/keystore.pem") != NULL);
    srv s;
    REQUIRE(srv_start_tls(&s, net_config_defaults(), M_ECHO));
    CHECK_EQ_INT(net_tls_reload(s.tls, false, err, sizeof err), 0);
    CHECK_EQ_INT(net_tls_reload(s.tls, true, err, sizeof err), 1);
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s.new", tls_keystore);
    REQUIRE(make_keystore(tmp) && rename(tmp, tls_keystore) == 0);
    CHECK_EQ_INT(net_tls_reload(s.tls, false, err, sizeof err), 1);
    snprintf(tls_trust, sizeof tls_trust, "%s.ca", tls_keystore);
    REQUIRE(link(tls_keystore, tls_trust) == 0); /* clients now trust the new certificate only */
    FILE *f = fopen(tmp, "w");
    REQUIRE(f != NULL);
    fputs("not a certificate\n", f);
    fclose(f);
    REQUIRE(rename(tmp, tls_keystore) == 0);
    CHECK_EQ_INT(net_tls_reload(s.tls, false, err, sizeof err), -1);
    cli c;
    CHECK(tls_cli_open(&c, &s)); /* the last good certificate keeps serving */
    CHECK(tls_roundtrip(&c, 5, 1));
    tls_cli_close(&c);
    unlink(tls_trust);
    srv_finish_tls(&s);
}
