/*
 * test_kclient.c - the Kafka client against real servers on 127.0.0.1: a
 * server built on src/net answering ApiVersions and Metadata (which echoes
 * the topic names asked for) with the generated codec, and a small blocking
 * socket server for what net will not do (answer out of order). Waits poll
 * with deadlines; callbacks signal an eventfd the test waits on.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"
#include "kclient/kclient.h"
#include "net/net.h"
#include "proto/kerr.h"
#include "proto/proto.h"
#include "sasl/sasl.h"
#include "test.h"

#define WAIT_MS 5000   /* deadline for anything that should happen */
#define MAX_PARKED 64
#define MAX_DONE 512
#define META_V 12      /* the Metadata version the tests send */

/* ---- waiting ------------------------------------------------------------------- */

static int sig_new(void) { return eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC); }

static void sig_post(int fd)
{
    uint64_t one = 1;
    CK_ASSERT(write(fd, &one, sizeof(one)) == sizeof(one));
}

static bool sig_wait(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return false;
    uint64_t v;
    return read(fd, &v, sizeof(v)) == sizeof(v);
}

/* Poll cond() until it holds or WAIT_MS passes. */
#define WAIT_UNTIL(cond)                                                     \
    ({                                                                       \
        int64_t until_ = clock_mono_ms() + WAIT_MS;                          \
        while (!(cond) && clock_mono_ms() < until_)                          \
            poll(NULL, 0, 2);                                                \
        (bool)(cond);                                                        \
    })

/* ---- completions the tests collect ---------------------------------------------- */

typedef struct done {
    int err;
    char topic[64];        /* the first topic of a Metadata response */
    int32_t corr;
    bool on_reactor;       /* ran on the client's reactor thread */
} done;

typedef struct sink {
    pthread_mutex_t mu;
    int sig;
    int n;
    done d[MAX_DONE];
    net_reactor *expect_reactor;
} sink;

static void sink_init(sink *s, net_reactor *r)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->sig = sig_new();
    s->expect_reactor = r;
}

static void sink_free(sink *s)
{
    close(s->sig);
    pthread_mutex_destroy(&s->mu);
}

static int sink_count(sink *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Wait for the n-th completion overall. */
static bool sink_wait(sink *s, int n)
{
    return WAIT_UNTIL(sink_count(s) >= n);
}

static void on_done(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    sink *s = arg;
    pthread_mutex_lock(&s->mu);
    CK_ASSERT(s->n < MAX_DONE);
    done *d = &s->d[s->n++];
    d->err = err;
    d->on_reactor = net_current_reactor() == s->expect_reactor;
    const MetadataResponse *m = response;
    if (m != NULL && m->Topics.count > 0 && m->Topics.items[0].Name.len > 0) {
        kstr_t nm = m->Topics.items[0].Name;
        snprintf(d->topic, sizeof(d->topic), "%.*s", (int)nm.len, nm.ptr);
    }
    d->corr = resp ? kclient_resp_correlation_id(resp) : -1;
    pthread_mutex_unlock(&s->mu);
    sig_post(s->sig);
}

/* ---- the net server ------------------------------------------------------------------ */

typedef struct srv {
    net_t *net;
    uint16_t port;
    atomic_int park;          /* park Metadata requests instead of answering */
    atomic_int meta_max;      /* Metadata versions advertised: 0..meta_max */
    atomic_int av_max;        /* ApiVersions versions served: 0..av_max */
    atomic_int garble;        /* answer Metadata with a body that does not decode */
    atomic_int api_versions;  /* ApiVersions requests seen */
    atomic_int metadata;      /* Metadata requests seen */
    atomic_int sasl;          /* require a SCRAM-SHA-256 login (srv_sasl) */
    atomic_int logins;        /* logins that succeeded */
    sasl_cred cred;           /* the one user's, "user"/"pencil" */
    pthread_mutex_t mu;
    net_req *parked[MAX_PARKED];
    int16_t parked_ver[MAX_PARKED];
    int32_t parked_corr[MAX_PARKED];
    char parked_topic[MAX_PARKED][64];
    int nparked;
} srv;

/* As Kafka does: a version it does not serve gets UNSUPPORTED_VERSION in a
 * v0 body that names the versions it does. */
static void reply_api_versions(srv *s, net_req *req, const proto_req_header_t *h)
{
    arena_t a;
    arena_init(&a);
    int16_t v = h->api_version, av_max = (int16_t)atomic_load(&s->av_max);
    ApiVersionsResponse resp;
    if (v > av_max)
        v = 0;
    proto_set_defaults(&ApiVersionsResponse_desc, v, &resp);
    if (h->api_version > av_max)
        resp.ErrorCode = KERR_UNSUPPORTED_VERSION;
    ApiVersionsResponse_ApiVersion *items =
        proto_array_init(&a, &resp.ApiKeys, 4, sizeof(*items), &ApiVersionsResponse_ApiVersion_desc);
    items[0] = (ApiVersionsResponse_ApiVersion){PROTO_API_API_VERSIONS, 0, av_max};
    items[1] = (ApiVersionsResponse_ApiVersion){3, 0, (int16_t)atomic_load(&s->meta_max)};
    items[2] = (ApiVersionsResponse_ApiVersion){PROTO_API_SASL_HANDSHAKE, 0, 1};
    items[3] = (ApiVersionsResponse_ApiVersion){PROTO_API_SASL_AUTHENTICATE, 0, 2};
    buf_t b;
    buf_init(&b);
    proto_response_encode(PROTO_API_API_VERSIONS, v, h->correlation_id, &resp, &b);
    net_req_reply_buf(req, &b);
    arena_free(&a);
}

/* A Metadata response naming `topic` (a copy of what was asked). */
static void metadata_encode(int16_t v, int32_t corr, const char *topic, buf_t *b)
{
    arena_t a;
    arena_init(&a);
    MetadataResponse resp;
    proto_set_defaults(&MetadataResponse_desc, v, &resp);
    MetadataResponse_MetadataResponseTopic *t =
        proto_array_init(&a, &resp.Topics, 1, sizeof(*t), &MetadataResponse_MetadataResponseTopic_desc);
    t->Name = kstr_from(topic);
    proto_response_encode(3, v, corr, &resp, b);
    arena_free(&a);
}

static void srv_metadata(srv *s, net_req *req, const proto_req_header_t *h, rd_t *rd, arena_t *a)
{
    atomic_fetch_add(&s->metadata, 1);
    MetadataRequest mr;
    proto_err_t perr;
    CK_ASSERT(proto_request_body_decode(h, rd, a, &mr, &perr) == 0);
    char topic[64] = "";
    if (mr.Topics.count > 0)
        snprintf(topic, sizeof(topic), "%.*s", (int)mr.Topics.items[0].Name.len,
                 mr.Topics.items[0].Name.ptr);
    if (atomic_load(&s->park)) {
        pthread_mutex_lock(&s->mu);
        CK_ASSERT(s->nparked < MAX_PARKED);
        int i = s->nparked++;
        s->parked[i] = req;
        s->parked_ver[i] = h->api_version;
        s->parked_corr[i] = h->correlation_id;
        memcpy(s->parked_topic[i], topic, sizeof(topic));
        pthread_mutex_unlock(&s->mu);
        return;
    }
    buf_t b;
    buf_init(&b);
    if (atomic_load(&s->garble)) {
        buf_put_i32(&b, h->correlation_id);
        buf_put_u8(&b, 0); /* no tagged fields, then nothing: the body is cut short */
    } else {
        metadata_encode(h->api_version, h->correlation_id, topic, &b);
    }
    net_req_reply_buf(req, &b);
}

/* The server side of a SCRAM-SHA-256 login (src/sasl), one state per
 * connection: SaslHandshake, then SaslAuthenticate twice. false: refused. */
typedef struct srv_conn {
    sasl_scram scram;
    bool in;
} srv_conn;

static bool srv_sasl(srv *s, net_conn *c, net_req *req, const proto_req_header_t *h, rd_t *rd, arena_t *a)
{
    srv_conn *sc = net_conn_user(c);
    proto_err_t perr;
    buf_t b;
    buf_init(&b);
    if (h->api_key == PROTO_API_SASL_HANDSHAKE) {
        SaslHandshakeRequest q;
        CK_ASSERT(proto_request_body_decode(h, rd, a, &q, &perr) == 0);
        SaslHandshakeResponse resp;
        proto_set_defaults(&SaslHandshakeResponse_desc, h->api_version, &resp);
        resp.ErrorCode = sasl_mech_from_name(q.Mechanism.ptr, (size_t)q.Mechanism.len) == SASL_SCRAM_SHA_256
                             ? KERR_NONE : KERR_UNSUPPORTED_SASL_MECHANISM;
        proto_response_encode(h->api_key, h->api_version, h->correlation_id, &resp, &b);
        net_req_reply_buf(req, &b);
        return true;
    }
    SaslAuthenticateRequest q;
    CK_ASSERT(proto_request_body_decode(h, rd, a, &q, &perr) == 0);
    SaslAuthenticateResponse resp;
    proto_set_defaults(&SaslAuthenticateResponse_desc, h->api_version, &resp);
    char out[SASL_MSG_MAX];
    const char *why;
    if (sc->scram.state == SASL_SCRAM_START) {
        why = sasl_scram_first(&sc->scram, SASL_SCRAM_SHA_256, q.AuthBytes.ptr, (size_t)q.AuthBytes.len);
        if (!why && sasl_scram_challenge(&sc->scram, &s->cred, "srvnonce", out, sizeof out) == 0)
            why = "too long";
    } else {
        why = sasl_scram_final(&sc->scram, q.AuthBytes.ptr, (size_t)q.AuthBytes.len, out, sizeof out);
        sc->in = why == NULL;
        atomic_fetch_add(&s->logins, sc->in);
    }
    resp.ErrorCode = why ? KERR_SASL_AUTHENTICATION_FAILED : KERR_NONE;
    resp.AuthBytes = why ? (kbytes_t){NULL, 0} : (kbytes_t){(const uint8_t *)out, (int32_t)strlen(out)};
    proto_response_encode(h->api_key, h->api_version, h->correlation_id, &resp, &b);
    net_req_reply_buf(req, &b);
    return why == NULL;
}

static void srv_on_open(net_conn *c, void *ctx)
{
    UNUSED(ctx);
    net_conn_set_user(c, xcalloc(1, sizeof(srv_conn)));
}

static void srv_on_close(net_conn *c, void *ctx)
{
    UNUSED(ctx);
    free(net_conn_user(c));
}

static void srv_on_frame(net_conn *c, net_req *req, const uint8_t *frame, size_t len, void *ctx)
{
    srv *s = ctx;
    arena_t a;
    arena_init(&a);
    rd_t rd;
    rd_init(&rd, frame, len);
    proto_req_header_t h;
    proto_err_t perr;
    CK_ASSERT(proto_request_header_decode(&rd, &a, &h, &perr) == 0);
    srv_conn *sc = net_conn_user(c);
    if (h.api_key == PROTO_API_API_VERSIONS) {
        atomic_fetch_add(&s->api_versions, 1);
        reply_api_versions(s, req, &h);
    } else if (h.api_key == PROTO_API_SASL_HANDSHAKE || h.api_key == PROTO_API_SASL_AUTHENTICATE) {
        srv_sasl(s, c, req, &h, &rd, &a);
    } else if (h.api_key == 3 && atomic_load(&s->sasl) && !sc->in) {
        net_req_close_conn(req); /* not logged in */
    } else if (h.api_key == 3) {
        srv_metadata(s, req, &h, &rd, &a);
    } else {
        net_req_close_conn(req);
    }
    arena_free(&a);
}

static int srv_parked(srv *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->nparked;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Answer every parked request (in order: net keeps response order). */
static void srv_release(srv *s)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nparked; i++) {
        buf_t b;
        buf_init(&b);
        metadata_encode(s->parked_ver[i], s->parked_corr[i], s->parked_topic[i], &b);
        net_req_reply_buf(s->parked[i], &b);
    }
    s->nparked = 0;
    pthread_mutex_unlock(&s->mu);
}

/* Close the connection through its first parked request. */
static void srv_kill_conn(srv *s)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nparked; i++) {
        if (i == 0)
            net_req_close_conn(s->parked[i]);
        else
            net_req_noreply(s->parked[i]);
    }
    s->nparked = 0;
    pthread_mutex_unlock(&s->mu);
}

/* Listen on port (0 = ephemeral). */
static bool srv_start(srv *s, uint16_t port, int meta_max)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    atomic_store(&s->meta_max, meta_max);
    atomic_store(&s->av_max, 3);
    net_config cfg = net_config_defaults();
    cfg.num_threads = 1;
    s->net = net_new(&cfg);
    net_handler h = {.on_frame = srv_on_frame, .on_open = srv_on_open, .on_close = srv_on_close, .ctx = s};
    sasl_cred_make(&s->cred, SASL_SCRAM_SHA_256, "pencil", (const uint8_t *)"saltsalt", 8, 4096);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    if (net_listen(s->net, addr, &h, &s->port) != 0)
        return false;
    return net_start(s->net) == 0;
}

static void srv_stop(srv *s)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nparked; i++)
        net_req_noreply(s->parked[i]);
    s->nparked = 0;
    pthread_mutex_unlock(&s->mu);
    net_stop(s->net);
    net_free(s->net);
    pthread_mutex_destroy(&s->mu);
}

/* ---- the client side ------------------------------------------------------------------- */

static net_t *cli_net(void)
{
    net_config cfg = net_config_defaults();
    cfg.num_threads = 1;
    net_t *n = net_new(&cfg);
    CK_ASSERT(net_start(n) == 0);
    return n;
}

static kclient_t *cli_new(net_t *n, uint16_t port, const kclient_config *cfg)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    return kclient_new(n, NULL, addr, cfg);
}

static void cli_net_free(net_t *n)
{
    net_stop(n);
    net_free(n);
}

/* A Metadata request of version v asking for `topic` (arrays from a). */
static void meta_req(arena_t *a, int16_t v, const char *topic, MetadataRequest *req)
{
    proto_set_defaults(&MetadataRequest_desc, v, req);
    MetadataRequest_MetadataRequestTopic *t =
        proto_array_init(a, &req->Topics, 1, sizeof(*t), &MetadataRequest_MetadataRequestTopic_desc);
    t->Name = kstr_from(topic);
}

/* Send Metadata v`v` asking for `topic`, completing into s. */
static int send_meta_cb(kclient_t *k, int16_t v, const char *topic, uint32_t timeout_ms,
                        kclient_cb cb, void *arg)
{
    arena_t a;
    arena_init(&a);
    MetadataRequest req;
    meta_req(&a, v, topic, &req);
    int rc = kclient_send(k, 3, v, &req, timeout_ms, cb, arg);
    arena_free(&a); /* the request need not outlive the call */
    return rc;
}

static int send_meta(kclient_t *k, int16_t v, const char *topic, uint32_t timeout_ms, sink *s)
{
    return send_meta_cb(k, v, topic, timeout_ms, on_done, s);
}

static kclient_stats stats(kclient_t *k)
{
    kclient_stats st;
    kclient_stats_get(k, &st);
    return st;
}

/* A server, a client net with one reactor, a client to the server, a sink. */
typedef struct fx {
    srv s;
    net_t *n;
    kclient_t *k;
    sink sk;
} fx;

static bool fx_start(fx *f, int meta_max, int park, const kclient_config *cfg)
{
    if (!srv_start(&f->s, 0, meta_max))
        return false;
    atomic_store(&f->s.park, park);
    f->n = cli_net();
    f->k = cli_new(f->n, f->s.port, cfg);
    sink_init(&f->sk, net_reactor_at(f->n, 0));
    return f->k != NULL;
}

/* Frees the client unless the test did (and set f->k NULL). */
static void fx_end(fx *f)
{
    kclient_free(f->k);
    cli_net_free(f->n);
    srv_stop(&f->s);
    sink_free(&f->sk);
}

/* ---- tests ------------------------------------------------------------------------------ */

/* A request is encoded, answered, decoded into the response struct and
 * completed on the client's reactor; the handshake negotiated versions. */
TEST(request_response_and_versions)
{
    fx f;
    REQUIRE(fx_start(&f, META_V, 0, NULL));
    CHECK_EQ_INT(send_meta(f.k, META_V, "alpha", 2000, &f.sk), KCLIENT_OK);
    REQUIRE(sink_wait(&f.sk, 1));
    CHECK_EQ_INT(f.sk.d[0].err, KCLIENT_OK);
    CHECK(strcmp(f.sk.d[0].topic, "alpha") == 0);
    CHECK(f.sk.d[0].on_reactor);
    CHECK(kclient_ready(f.k));
    CHECK_EQ_INT(kclient_api_version(f.k, 3), META_V);
    CHECK_EQ_INT(kclient_api_version_min(f.k, 3), 0);
    CHECK_EQ_INT(kclient_api_version(f.k, PROTO_API_API_VERSIONS), 3);
    CHECK_EQ_INT(kclient_api_version(f.k, 0), -1); /* Produce: not advertised */
    CHECK_EQ_INT(atomic_load(&f.s.api_versions), 1);
    kclient_stats st = stats(f.k);
    CHECK_EQ_INT(st.requests_sent, 2); /* ApiVersions + Metadata */
    CHECK_EQ_INT(st.responses_received, 2);
    CHECK_EQ_INT(st.connects, 1);
    CHECK_EQ_INT(st.pending, 0);
    CHECK_EQ_INT(st.pending_bytes, 0);
    kclient_free(f.k);
    f.k = NULL;
    CHECK_EQ_INT(sink_count(&f.sk), 1);
    fx_end(&f);
}

/* With a SASL mechanism the client logs in (SCRAM-SHA-256: handshake and two
 * rounds, the server's signature checked) before any request goes out; a
 * wrong password never gets to send it: the attempts fail and back off, the
 * request waits queued until its timeout. */
TEST(sasl_login_before_requests)
{
    for (int wrong = 0; wrong < 2; wrong++) {
        kclient_security sec = {.sasl_mech = SASL_SCRAM_SHA_256, .user = "user"};
        snprintf(sec.password, sizeof sec.password, "%s", wrong ? "pencil2" : "pencil");
        kclient_config cfg = kclient_config_secure(&sec);
        cfg.backoff_min_ms = cfg.backoff_max_ms = 20;
        fx f;
        REQUIRE(fx_start(&f, META_V, 0, &cfg));
        atomic_store(&f.s.sasl, 1);
        CHECK_EQ_INT(send_meta(f.k, META_V, "beta", wrong ? 500 : 2000, &f.sk), KCLIENT_OK);
        REQUIRE(sink_wait(&f.sk, 1));
        CHECK_EQ_INT(f.sk.d[0].err, wrong ? KCLIENT_ERR_TIMED_OUT : KCLIENT_OK);
        CHECK_EQ_INT(atomic_load(&f.s.metadata), 0 + !wrong);
        CHECK(wrong ? atomic_load(&f.s.logins) == 0 : atomic_load(&f.s.logins) == 1);
        kclient_stats st = stats(f.k);
        CHECK(wrong ? st.connects == 0 && st.connect_failures >= 2 : st.connects == 1);
        fx_end(&f);
    }
}

static void on_raw(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    sink *s = arg;
    CK_ASSERT(response == NULL);
    pthread_mutex_lock(&s->mu);
    done *d = &s->d[s->n++];
    d->err = err;
    if (err == KCLIENT_OK) {
        size_t len;
        const uint8_t *body = kclient_resp_body(resp, &len);
        rd_t rd;
        rd_init(&rd, body, len);
        MetadataResponse m;
        proto_err_t perr;
        if (proto_decode(&MetadataResponse_desc, META_V, true, &rd, kclient_resp_arena(resp), &m,
                         &perr) == 0 && rd_left(&rd) == 0 && m.Topics.count == 1)
            snprintf(d->topic, sizeof(d->topic), "%.*s", (int)m.Topics.items[0].Name.len,
                     m.Topics.items[0].Name.ptr);
    }
    pthread_mutex_unlock(&s->mu);
    sig_post(s->sig);
}

/* A pre-encoded body goes out as is and the raw response body comes back. */
TEST(raw_body_in_and_out)
{
    fx f;
    REQUIRE(fx_start(&f, META_V, 0, NULL));
    arena_t a;
    arena_init(&a);
    MetadataRequest req;
    meta_req(&a, META_V, "raw-topic", &req);
    buf_t b;
    buf_init(&b);
    proto_encode(&MetadataRequest_desc, META_V, true, &req, &b);
    CHECK_EQ_INT(kclient_send_raw(f.k, 3, META_V, b.data, b.len, 2000, on_raw, &f.sk), KCLIENT_OK);
    buf_free(&b);
    arena_free(&a);
    REQUIRE(sink_wait(&f.sk, 1));
    CHECK_EQ_INT(f.sk.d[0].err, KCLIENT_OK);
    CHECK(strcmp(f.sk.d[0].topic, "raw-topic") == 0);
    fx_end(&f);
}

/* ---- an out-of-order server: blocking sockets on a thread ---------------------------------- */

typedef struct ooo {
    int lfd;
    uint16_t port;
    int nreq;        /* answer this many Metadata requests, last first */
    pthread_t th;
} ooo;

static bool read_full(int fd, void *p, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, (uint8_t *)p + got, n - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static void write_frame(int fd, const buf_t *b)
{
    uint8_t len[4];
    be32_store(len, (uint32_t)b->len);
    CK_ASSERT(write(fd, len, 4) == 4);
    CK_ASSERT(write(fd, b->data, b->len) == (ssize_t)b->len);
}

/* Reads one request; answers ApiVersions at once, returns Metadata's. */
static bool ooo_read(int fd, proto_req_header_t *h, char topic[64], buf_t *in)
{
    uint8_t lb[4];
    if (!read_full(fd, lb, 4))
        return false;
    size_t n = be32_load(lb);
    buf_reset(in);
    if (!read_full(fd, buf_extend(in, n), n))
        return false;
    arena_t a;
    arena_init(&a);
    rd_t rd;
    rd_init(&rd, in->data, n);
    proto_err_t perr;
    CK_ASSERT(proto_request_header_decode(&rd, &a, h, &perr) == 0);
    topic[0] = '\0';
    if (h->api_key == 3) {
        MetadataRequest mr;
        CK_ASSERT(proto_request_body_decode(h, &rd, &a, &mr, &perr) == 0);
        snprintf(topic, 64, "%.*s", (int)mr.Topics.items[0].Name.len, mr.Topics.items[0].Name.ptr);
    }
    arena_free(&a);
    return true;
}

static void *ooo_thread(void *arg)
{
    ooo *o = arg;
    int fd = accept(o->lfd, NULL, NULL);
    CK_ASSERT(fd >= 0);
    buf_t in, out;
    buf_init(&in);
    buf_init(&out);
    int32_t corr[8];
    int16_t ver[8];
    char topics[8][64];
    int got = 0;
    proto_req_header_t h;
    while (got < o->nreq && ooo_read(fd, &h, topics[got], &in)) {
        if (h.api_key == PROTO_API_API_VERSIONS) {
            ApiVersionsResponse r;
            proto_set_defaults(&ApiVersionsResponse_desc, h.api_version, &r);
            ApiVersionsResponse_ApiVersion av[2] = {{PROTO_API_API_VERSIONS, 0, 3}, {3, 0, META_V}};
            r.ApiKeys.count = 2;
            r.ApiKeys.items = av;
            buf_reset(&out);
            proto_response_encode(PROTO_API_API_VERSIONS, h.api_version, h.correlation_id, &r, &out);
            write_frame(fd, &out);
            continue;
        }
        corr[got] = h.correlation_id;
        ver[got++] = h.api_version;
    }
    for (int i = got - 1; i >= 0; i--) {
        buf_reset(&out);
        metadata_encode(ver[i], corr[i], topics[i], &out);
        write_frame(fd, &out);
    }
    char c;
    while (read(fd, &c, 1) > 0) /* until the client closes */
        ;
    close(fd);
    buf_free(&in);
    buf_free(&out);
    return NULL;
}

static bool ooo_start(ooo *o, int nreq)
{
    o->nreq = nreq;
    o->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (bind(o->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(o->lfd, 4) != 0 ||
        getsockname(o->lfd, (struct sockaddr *)&sa, &sl) != 0)
        return false;
    o->port = ntohs(sa.sin_port);
    return pthread_create(&o->th, NULL, ooo_thread, o) == 0;
}

/* Responses that come back in reverse order still reach their own request. */
TEST(correlation_out_of_order)
{
    ooo o;
    REQUIRE(ooo_start(&o, 3));
    net_t *n = cli_net();
    kclient_t *k = cli_new(n, o.port, NULL);
    sink sk;
    sink_init(&sk, net_reactor_at(n, 0));
    const char *names[3] = {"t-one", "t-two", "t-three"};
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(send_meta(k, META_V, names[i], 3000, &sk), KCLIENT_OK);
    REQUIRE(sink_wait(&sk, 3));
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(sk.d[i].err, KCLIENT_OK);
        CHECK(strcmp(sk.d[i].topic, names[2 - i]) == 0); /* completed last first */
    }
    CHECK(sk.d[0].corr > sk.d[1].corr && sk.d[1].corr > sk.d[2].corr);
    kclient_free(k);
    cli_net_free(n);
    pthread_join(o.th, NULL);
    close(o.lfd);
    sink_free(&sk);
}

/* A request without an answer times out; its late answer is dropped. */
TEST(timeout_then_late_response)
{
    fx f;
    REQUIRE(fx_start(&f, META_V, 1, NULL));
    int64_t t0 = clock_mono_ms();
    CHECK_EQ_INT(send_meta(f.k, META_V, "slow", 100, &f.sk), KCLIENT_OK);
    REQUIRE(sink_wait(&f.sk, 1));
    int64_t took = clock_mono_ms() - t0;
    CHECK_EQ_INT(f.sk.d[0].err, KCLIENT_ERR_TIMED_OUT);
    CHECK(took >= 100 && took < 2000);
    CHECK_EQ_INT(stats(f.k).timeouts, 1);
    CHECK_EQ_INT(stats(f.k).pending, 0);
    REQUIRE(WAIT_UNTIL(srv_parked(&f.s) == 1));
    srv_release(&f.s);
    CHECK(WAIT_UNTIL(stats(f.k).stale_responses == 1));
    CHECK_EQ_INT(sink_count(&f.sk), 1); /* no second completion */
    atomic_store(&f.s.park, 0);         /* the connection still works */
    CHECK_EQ_INT(send_meta(f.k, META_V, "after", 2000, &f.sk), KCLIENT_OK);
    REQUIRE(sink_wait(&f.sk, 2));
    CHECK_EQ_INT(f.sk.d[1].err, KCLIENT_OK);
    CHECK_EQ_INT(stats(f.k).connects, 1);
    fx_end(&f);
}

/* When the connection drops, requests in flight fail DISCONNECTED; the
 * client reconnects by itself and later requests succeed. */
TEST(disconnect_fails_inflight)
{
    fx f;
    REQUIRE(fx_start(&f, META_V, 1, NULL));
    CHECK_EQ_INT(send_meta(f.k, META_V, "a", 5000, &f.sk), KCLIENT_OK);
    CHECK_EQ_INT(send_meta(f.k, META_V, "b", 5000, &f.sk), KCLIENT_OK);
    REQUIRE(WAIT_UNTIL(srv_parked(&f.s) == 2));
    srv_kill_conn(&f.s);
    REQUIRE(sink_wait(&f.sk, 2));
    CHECK_EQ_INT(f.sk.d[0].err, KCLIENT_ERR_DISCONNECTED);
    CHECK_EQ_INT(f.sk.d[1].err, KCLIENT_ERR_DISCONNECTED);
    CHECK_EQ_INT(stats(f.k).disconnects, 2);
    atomic_store(&f.s.park, 0);
    CHECK(WAIT_UNTIL(stats(f.k).connects == 2));
    CHECK_EQ_INT(send_meta(f.k, META_V, "c", 5000, &f.sk), KCLIENT_OK);
    REQUIRE(sink_wait(&f.sk, 3));
    CHECK_EQ_INT(f.sk.d[2].err, KCLIENT_OK);
    CHECK_EQ_INT(atomic_load(&f.s.api_versions), 2); /* a handshake per connection */
    fx_end(&f);
}

/* With the server gone, the client retries with a growing backoff; what is
 * sent meanwhile waits and goes out once a server listens again. */
TEST(server_restart_reconnect_with_backoff)
{
    fx f;
    kclient_config cfg = kclient_config_defaults();
    cfg.backoff_min_ms = 20;
    cfg.backoff_max_ms = 160;
    REQUIRE(fx_start(&f, META_V, 0, &cfg));
    uint16_t port = f.s.port;
    REQUIRE(WAIT_UNTIL(kclient_ready(f.k)));
    srv_stop(&f.s);
    REQUIRE(WAIT_UNTIL(!kclient_ready(f.k)));
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(send_meta(f.k, META_V, "queued", 5000, &f.sk), KCLIENT_OK);
    /* refused attempts after 20, 20, 40, 80, 160, 160 ... ms (±20%): about
     * 7 in 700 ms; without backoff there would be hundreds */
    poll(NULL, 0, 700);
    kclient_stats st = stats(f.k);
    CHECK(st.reconnects >= 3 && st.reconnects <= 10);
    CHECK(st.connect_failures >= 3);
    CHECK_EQ_INT(sink_count(&f.sk), 0);
    CHECK_EQ_INT(st.pending, 3);
    REQUIRE(srv_start(&f.s, port, META_V));
    REQUIRE(sink_wait(&f.sk, 3));
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(f.sk.d[i].err, KCLIENT_OK);
        CHECK(strcmp(f.sk.d[i].topic, "queued") == 0);
    }
    CHECK_EQ_INT(stats(f.k).connects, 2);
    CHECK_EQ_INT(atomic_load(&f.s.metadata), 3);
    fx_end(&f);
}

/* A version the peer does not advertise is refused without being sent:
 * at once when the handshake is known, else when it completes. */
TEST(unsupported_version_refused_locally)
{
    fx f;
    REQUIRE(fx_start(&f, 5, 1, NULL)); /* parked: a Metadata sent by mistake would hang */
    int early = send_meta(f.k, META_V, "early", 5000, &f.sk);
    REQUIRE(WAIT_UNTIL(kclient_ready(f.k)));
    if (early == KCLIENT_OK) { /* queued before the handshake, refused by it */
        REQUIRE(sink_wait(&f.sk, 1));
        CHECK_EQ_INT(f.sk.d[0].err, KCLIENT_ERR_UNSUPPORTED_VERSION);
    } else {
        CHECK_EQ_INT(early, KCLIENT_ERR_UNSUPPORTED_VERSION); /* the handshake won the race */
    }
    CHECK_EQ_INT(kclient_api_version(f.k, 3), 5);
    CHECK_EQ_INT(send_meta(f.k, META_V, "late", 5000, &f.sk), KCLIENT_ERR_UNSUPPORTED_VERSION);
    CHECK_EQ_INT(kclient_send(f.k, 3, 99, &f.sk, 1000, on_done, &f.sk), KCLIENT_ERR_UNKNOWN_API);
    CHECK_EQ_INT(atomic_load(&f.s.metadata), 0);
    CHECK_EQ_INT(stats(f.k).refused_version, 2);
    atomic_store(&f.s.park, 0); /* a supported version goes through */
    int before = sink_count(&f.sk);
    CHECK_EQ_INT(send_meta(f.k, 5, "ok", 5000, &f.sk), KCLIENT_OK);
    REQUIRE(sink_wait(&f.sk, before + 1));
    CHECK_EQ_INT(f.sk.d[before].err, KCLIENT_OK);
    CHECK(strcmp(f.sk.d[before].topic, "ok") == 0);
    fx_end(&f);
}

/* Past pending_max requests, or pending_bytes_max bytes, sends fail at once
 * with QUEUE_FULL; room comes back as requests complete. */
TEST(queue_limits)
{
    fx f;
    kclient_config cfg = kclient_config_defaults();
    cfg.pending_max = 4;
    cfg.pending_bytes_max = 4096;
    REQUIRE(fx_start(&f, META_V, 1, &cfg));
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(send_meta(f.k, META_V, "x", 5000, &f.sk), KCLIENT_OK);
    CHECK_EQ_INT(send_meta(f.k, META_V, "x", 5000, &f.sk), KCLIENT_ERR_QUEUE_FULL);
    CHECK_EQ_INT(stats(f.k).refused_queue_full, 1);
    CHECK_EQ_INT(stats(f.k).pending, 4);
    REQUIRE(WAIT_UNTIL(srv_parked(&f.s) == 4));
    srv_release(&f.s);
    REQUIRE(sink_wait(&f.sk, 4));
    CHECK_EQ_INT(stats(f.k).pending, 0);
    uint8_t big[5000]; /* one body bigger than the whole byte budget */
    memset(big, 0, sizeof(big));
    CHECK_EQ_INT(kclient_send_raw(f.k, 3, META_V, big, sizeof(big), 1000, on_done, &f.sk),
                 KCLIENT_ERR_QUEUE_FULL);
    CHECK_EQ_INT(stats(f.k).pending_bytes, 0);
    CHECK_EQ_INT(send_meta(f.k, META_V, "again", 5000, &f.sk), KCLIENT_OK);
    REQUIRE(WAIT_UNTIL(srv_parked(&f.s) == 1));
    srv_release(&f.s);
    REQUIRE(sink_wait(&f.sk, 5));
    CHECK_EQ_INT(f.sk.d[4].err, KCLIENT_OK);
    fx_end(&f);
}

/* kclient_free completes every pending request, in flight or queued,
 * exactly once with CLOSED, on the reactor, before it returns. */
TEST(shutdown_with_requests_pending)
{
    fx f;
    kclient_config cfg = kclient_config_defaults();
    cfg.inflight_max = 2; /* two on the wire, the rest queued */
    REQUIRE(fx_start(&f, META_V, 1, &cfg));
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(send_meta(f.k, META_V, "p", 60000, &f.sk), KCLIENT_OK);
    REQUIRE(WAIT_UNTIL(srv_parked(&f.s) == 2));
    CHECK_EQ_INT(stats(f.k).pending, 5);
    kclient_free(f.k);
    f.k = NULL;
    CHECK_EQ_INT(sink_count(&f.sk), 5);
    for (int i = 0; i < sink_count(&f.sk); i++) {
        CHECK_EQ_INT(f.sk.d[i].err, KCLIENT_ERR_CLOSED);
        CHECK(f.sk.d[i].on_reactor);
    }
    fx_end(&f);
}

/* Shutting down while nothing listens: queued requests complete CLOSED. */
TEST(shutdown_while_disconnected)
{
    srv s;
    REQUIRE(srv_start(&s, 0, META_V));
    uint16_t port = s.port;
    srv_stop(&s); /* a port nobody listens on now */
    net_t *n = cli_net();
    kclient_t *k = cli_new(n, port, NULL);
    sink sk;
    sink_init(&sk, net_reactor_at(n, 0));
    CHECK_EQ_INT(send_meta(k, META_V, "q", 60000, &sk), KCLIENT_OK);
    CHECK(WAIT_UNTIL(stats(k).connect_failures >= 1));
    kclient_free(k);
    CHECK_EQ_INT(sink_count(&sk), 1);
    CHECK_EQ_INT(sk.d[0].err, KCLIENT_ERR_CLOSED);
    cli_net_free(n);
    sink_free(&sk);
}

/* Once net stops under the client, pending requests complete CLOSED and
 * new sends fail at once; kclient_free still works afterwards. */
TEST(net_stops_first)
{
    fx f;
    REQUIRE(fx_start(&f, META_V, 1, NULL));
    CHECK_EQ_INT(send_meta(f.k, META_V, "p", 60000, &f.sk), KCLIENT_OK);
    REQUIRE(WAIT_UNTIL(srv_parked(&f.s) == 1));
    net_stop(f.n);
    CHECK_EQ_INT(sink_count(&f.sk), 1);
    CHECK_EQ_INT(f.sk.d[0].err, KCLIENT_ERR_CLOSED);
    CHECK_EQ_INT(send_meta(f.k, META_V, "p", 1000, &f.sk), KCLIENT_ERR_CLOSED);
    kclient_free(f.k);
    f.k = NULL;
    CHECK_EQ_INT(sink_count(&f.sk), 1);
    fx_end(&f); /* net_stop again is harmless */
}

/* A host name is resolved off the reactor and connected to. */
TEST(host_name_resolved)
{
    fx f;
    REQUIRE(fx_start(&f, META_V, 0, NULL));
    char addr[64];
    snprintf(addr, sizeof(addr), "localhost:%u", f.s.port);
    kclient_t *k = kclient_new(f.n, NULL, addr, NULL);
    REQUIRE(k != NULL);
    CHECK_EQ_INT(send_meta(k, META_V, "named", 5000, &f.sk), KCLIENT_OK);
    REQUIRE(sink_wait(&f.sk, 1));
    CHECK_EQ_INT(f.sk.d[0].err, KCLIENT_OK);
    CHECK(strcmp(kclient_address(k), addr) == 0);
    kclient_free(k);
    CHECK(kclient_new(f.n, NULL, "no-port", NULL) == NULL && errno == EINVAL);
    fx_end(&f);
}

typedef struct hop {
    net_reactor *target;
    atomic_int ran_on_target;
    int sig;
    char topic[64];
} hop;

static void hop_final(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    hop *h = arg;
    const MetadataResponse *m = response;
    UNUSED(resp);
    if (err == KCLIENT_OK && m->Topics.count == 1)
        snprintf(h->topic, sizeof(h->topic), "%.*s", (int)m->Topics.items[0].Name.len,
                 m->Topics.items[0].Name.ptr);
    atomic_store(&h->ran_on_target, net_current_reactor() == h->target);
    sig_post(h->sig);
}

static void hop_first(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    hop *h = arg;
    CK_ASSERT(kclient_deliver(h->target, hop_final, h, err, response, resp));
}

/* kclient_deliver hands a response, still valid, to another reactor. */
TEST(deliver_to_another_reactor)
{
    srv s;
    REQUIRE(srv_start(&s, 0, META_V));
    net_config cfg = net_config_defaults();
    cfg.num_threads = 2;
    net_t *n = net_new(&cfg);
    REQUIRE(net_start(n) == 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", s.port);
    kclient_t *k = kclient_new(n, net_reactor_at(n, 0), addr, NULL);
    hop h = {.target = net_reactor_at(n, 1), .sig = sig_new()};
    CHECK_EQ_INT(send_meta_cb(k, META_V, "hop", 5000, hop_first, &h), KCLIENT_OK);
    REQUIRE(sig_wait(h.sig, WAIT_MS));
    CHECK(strcmp(h.topic, "hop") == 0);
    CHECK(atomic_load(&h.ran_on_target));
    kclient_free(k);
    cli_net_free(n);
    srv_stop(&s);
    close(h.sig);
}

/* The error table names every code and maps it to Kafka's. */
TEST(error_names)
{
    CHECK(strcmp(kclient_err_name(KCLIENT_ERR_TIMED_OUT), "TIMED_OUT") == 0);
    CHECK(strcmp(kclient_strerror(KCLIENT_ERR_CLOSED), "client closed") == 0);
    CHECK_EQ_INT(kclient_err_kafka(KCLIENT_ERR_TIMED_OUT), KERR_REQUEST_TIMED_OUT);
    CHECK_EQ_INT(kclient_err_kafka(KCLIENT_ERR_UNSUPPORTED_VERSION), KERR_UNSUPPORTED_VERSION);
    CHECK_EQ_INT(kclient_err_kafka(KCLIENT_OK), KERR_NONE);
    CHECK(strcmp(kclient_err_name(1234), "UNKNOWN") == 0);
}

/* A response body that does not decode completes MALFORMED; the
 * connection stays usable. */
TEST(malformed_response)
{
    fx f;
    REQUIRE(fx_start(&f, META_V, 0, NULL));
    atomic_store(&f.s.garble, 1);
    CHECK_EQ_INT(send_meta(f.k, META_V, "bad", 5000, &f.sk), KCLIENT_OK);
    REQUIRE(sink_wait(&f.sk, 1));
    CHECK_EQ_INT(f.sk.d[0].err, KCLIENT_ERR_MALFORMED);
    CHECK_EQ_INT(stats(f.k).malformed_responses, 1);
    atomic_store(&f.s.garble, 0);
    CHECK_EQ_INT(send_meta(f.k, META_V, "good", 5000, &f.sk), KCLIENT_OK);
    REQUIRE(sink_wait(&f.sk, 2));
    CHECK_EQ_INT(f.sk.d[1].err, KCLIENT_OK);
    CHECK_EQ_INT(stats(f.k).connects, 1);
    fx_end(&f);
}

/* A peer without ApiVersions v3 answers UNSUPPORTED_VERSION in v0; the
 * handshake retries at the version the peer names. */
TEST(handshake_falls_back_to_older_api_versions)
{
    fx f;
    REQUIRE(srv_start(&f.s, 0, META_V));
    atomic_store(&f.s.av_max, 2);
    f.n = cli_net();
    f.k = cli_new(f.n, f.s.port, NULL);
    sink_init(&f.sk, net_reactor_at(f.n, 0));
    CHECK_EQ_INT(send_meta(f.k, META_V, "fb", 5000, &f.sk), KCLIENT_OK);
    REQUIRE(sink_wait(&f.sk, 1));
    CHECK_EQ_INT(f.sk.d[0].err, KCLIENT_OK);
    CHECK_EQ_INT(atomic_load(&f.s.api_versions), 2);
    CHECK_EQ_INT(kclient_api_version(f.k, PROTO_API_API_VERSIONS), 2);
    CHECK_EQ_INT(kclient_api_version(f.k, 3), META_V);
    fx_end(&f);
}

/* A peer that accepts but never answers ApiVersions: each attempt ends at
 * connect_timeout_ms, the client keeps retrying, and a queued request
 * times out without ever being sent. */
TEST(handshake_deadline)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    REQUIRE(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 16) == 0 &&
            getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0); /* never accepts */
    net_t *n = cli_net();
    kclient_config cfg = kclient_config_defaults();
    cfg.connect_timeout_ms = 100;
    cfg.backoff_min_ms = 10;
    cfg.backoff_max_ms = 20;
    kclient_t *k = cli_new(n, ntohs(sa.sin_port), &cfg);
    sink sk;
    sink_init(&sk, net_reactor_at(n, 0));
    CHECK_EQ_INT(send_meta(k, META_V, "never", 300, &sk), KCLIENT_OK);
    REQUIRE(sink_wait(&sk, 1));
    CHECK_EQ_INT(sk.d[0].err, KCLIENT_ERR_TIMED_OUT);
    CHECK(WAIT_UNTIL(stats(k).connect_failures >= 2));
    CHECK(!kclient_ready(k));
    CHECK_EQ_INT(stats(k).connects, 0);
    CHECK_EQ_INT(stats(k).responses_received, 0);
    CHECK_EQ_INT(stats(k).pending, 0);
    kclient_free(k);
    cli_net_free(n);
    close(lfd);
    sink_free(&sk);
}

#define SENDERS 4
#define PER_SENDER 100

typedef struct sender {
    kclient_t *k;
    sink *sk;
    int id;
    int refused;
} sender;

static void *sender_main(void *arg)
{
    sender *s = arg;
    for (int j = 0; j < PER_SENDER; j++) {
        char topic[32];
        snprintf(topic, sizeof(topic), "th%d-%d", s->id, j);
        if (send_meta(s->k, META_V, topic, 10000, s->sk) != KCLIENT_OK)
            s->refused++;
    }
    return NULL;
}

/* Many threads send at once: every request completes once, with its own
 * answer (each topic comes back exactly once). */
TEST(senders_on_many_threads)
{
    fx f;
    REQUIRE(fx_start(&f, META_V, 0, NULL));
    pthread_t th[SENDERS];
    sender sd[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        sd[i] = (sender){f.k, &f.sk, i, 0};
        REQUIRE(pthread_create(&th[i], NULL, sender_main, &sd[i]) == 0);
    }
    for (int i = 0; i < SENDERS; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(sd[i].refused, 0);
    }
    REQUIRE(sink_wait(&f.sk, SENDERS * PER_SENDER));
    static bool seen[SENDERS][PER_SENDER];
    memset(seen, 0, sizeof(seen));
    pthread_mutex_lock(&f.sk.mu);
    for (int i = 0; i < f.sk.n; i++) {
        int t, j;
        CHECK_EQ_INT(f.sk.d[i].err, KCLIENT_OK);
        if (sscanf(f.sk.d[i].topic, "th%d-%d", &t, &j) == 2 && t >= 0 && t < SENDERS && j >= 0 &&
            j < PER_SENDER && !seen[t][j])
            seen[t][j] = true;
        else
            CHECK(!"a topic came back twice or garbled");
    }
    pthread_mutex_unlock(&f.sk.mu);
    CHECK_EQ_INT(stats(f.k).responses_received, SENDERS * PER_SENDER + 1);
    fx_end(&f);
}

typedef struct retry {
    kclient_t *k;
    sink *sk;
    int resent;
} retry;

static void on_retry(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    retry *r = arg;
    on_done(r->sk, err, response, resp);
    if (err == KCLIENT_ERR_DISCONNECTED && r->resent++ == 0)
        CK_ASSERT(send_meta(r->k, META_V, "again", 5000, r->sk) == KCLIENT_OK);
}

/* A callback told DISCONNECTED may send again at once: the request waits
 * for the next connection and is answered there. */
TEST(resend_from_disconnect_callback)
{
    fx f;
    REQUIRE(fx_start(&f, META_V, 1, NULL));
    retry r = {f.k, &f.sk, 0};
    CHECK_EQ_INT(send_meta_cb(f.k, META_V, "first", 5000, on_retry, &r), KCLIENT_OK);
    REQUIRE(WAIT_UNTIL(srv_parked(&f.s) == 1));
    atomic_store(&f.s.park, 0);
    srv_kill_conn(&f.s);
    REQUIRE(sink_wait(&f.sk, 2));
    CHECK_EQ_INT(f.sk.d[0].err, KCLIENT_ERR_DISCONNECTED);
    CHECK_EQ_INT(f.sk.d[1].err, KCLIENT_OK);
    CHECK(strcmp(f.sk.d[1].topic, "again") == 0);
    CHECK_EQ_INT(stats(f.k).connects, 2);
    fx_end(&f);
}

typedef struct free_job {
    kclient_t *k;
    int sig;
} free_job;

static void free_on_reactor(void *arg)
{
    free_job *j = arg;
    kclient_free(j->k);
    sig_post(j->sig);
}

/* kclient_free on the client's own reactor (e.g. from a handler) completes
 * the pending requests right there, before it returns. */
TEST(free_on_own_reactor)
{
    fx f;
    REQUIRE(fx_start(&f, META_V, 1, NULL));
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(send_meta(f.k, META_V, "p", 60000, &f.sk), KCLIENT_OK);
    REQUIRE(WAIT_UNTIL(srv_parked(&f.s) == 3));
    free_job j = {f.k, sig_new()};
    f.k = NULL;
    REQUIRE(net_post(net_reactor_at(f.n, 0), free_on_reactor, &j));
    REQUIRE(sig_wait(j.sig, WAIT_MS));
    CHECK_EQ_INT(sink_count(&f.sk), 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(f.sk.d[i].err, KCLIENT_ERR_CLOSED);
    close(j.sig);
    fx_end(&f);
}
