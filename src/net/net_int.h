/*
 * net_int.h - private structures shared by the files of src/net. Nothing
 * outside src/net includes this file; the module's interface is net.h.
 *
 * Ownership and threads (numbered invariants, asserted where cheap):
 *   1. A net_conn is touched only by its reactor's thread while that reactor
 *      runs, except for its atomic fields (refs, closed_any) and reads of
 *      immutable fields (id, peer, reactor, net).
 *   2. conn->refs counts: the reactor while the socket is open (moved to
 *      the graveyard list at close and dropped after the event batch), each
 *      request in conn->rq, each queued message naming the conn, a place in
 *      the dirty list, and (outbound) the caller's handle. The last unref
 *      frees the conn (and calls on_close for inbound conns).
 *   3. conn->rq holds requests in arrival order; only its head may leave it,
 *      and only once completed, so responses leave in request order.
 *   4. Once a reactor is dead (r->dead, set under r->mu), no message is
 *      queued to it, nobody touches conn->rq again but conn_free, and a
 *      completion frees its reply and drops its conn ref on the spot.
 *   5. A request's frame bytes live in an rchunk it holds a reference to;
 *      the reference is dropped when the request is completed.
 */
#ifndef CHRONIK_NET_NET_INT_H
#define CHRONIK_NET_NET_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>

#include "base/hmap.h"
#include "net/net.h"

#define NET_EPOLL_BATCH 256
#define NET_READ_BUDGET 16          /* reads per readiness event, for fairness */
#define NET_READ_MIN_ROOM 4096      /* relocate the buffer below this free room */
#define NET_GROW_STEP (1u << 20)    /* large frames: buffer grows by doubling from here */
#define NET_MAP_CHUNK_BYTES (2u << 20) /* chunks this large bypass the allocator's heap */
#define NET_IOV_MAX 64
#define NET_SENDFILE_CHUNK (1u << 30)
#define NET_TLS_STAGE_BYTES (64u * 1024) /* TLS output: bytes encrypted per SSL_write */
#define NET_PEER_MAX 64
#define NET_IDLE_SWEEP_MAX_MS 1000   /* idle check period, at most */
#define NET_ACCEPT_BACKOFF_MIN_MS 100   /* out of descriptors: first pause of accepting */
#define NET_ACCEPT_BACKOFF_MAX_MS 2000  /* ... doubling up to this */
#define NET_SHED_MAX 1024               /* pending connections closed per shedding */
#define NET_BUDGET_RETRY_MS 10          /* connections waiting for the budget: retry period */
#define NET_BUDGET_SMALL_BYTES (64u * 1024)     /* small frames may pass the budget ... */
#define NET_BUDGET_SLACK_BYTES (16u * 1024 * 1024) /* ... by this much */
#define NET_TRIM_AFTER_BYTES (16u * 1024 * 1024)   /* reserved at once before a trim is owed */
#define NET_TRIM_IDLE_BYTES (1u * 1024 * 1024)     /* trim once reservations are below this */

enum src_kind { SRC_CONN = 1, SRC_LISTENER, SRC_MSG, SRC_STOP };

/* First member of everything registered in an epoll set. */
typedef struct src {
    uint8_t kind;
} src_t;

/* A receive buffer chunk: frames are views into data[]. */
typedef struct rchunk {
    atomic_uint refs;
    bool mapped;     /* cap >= NET_MAP_CHUNK_BYTES: its own mapping, unmapped when freed */
    size_t cap;
    uint8_t data[];
} rchunk;

void rchunk_unref(rchunk *ch);

enum part_kind { PART_MEM = 1, PART_FILE };

typedef struct part {
    uint8_t kind;
    bool owned;      /* PART_MEM: free(mem) when done */
    int fd;          /* PART_FILE */
    uint8_t *mem;
    off_t off;
    size_t len;
    void (*release)(void *arg);
    void *arg;
} part;

struct net_reply {
    net_reply *next;  /* output queue link */
    part *parts;      /* parts[0] is the 4-byte prefix in hdr */
    uint32_t n, cap;
    uint64_t total;   /* payload bytes, prefix excluded */
    uint32_t cur;     /* sending: current part */
    size_t cur_off;   /* sending: bytes of parts[cur] already sent */
    uint8_t hdr[NET_FRAME_HEADER_BYTES];
};

/* Seal the prefix before queueing; returns bytes on the wire. */
uint64_t reply_seal(net_reply *r);

enum req_state { REQ_PENDING = 0, REQ_REPLY, REQ_NOREPLY, REQ_CLOSE };

struct net_req {
    net_req *next;
    net_conn *conn;
    rchunk *chunk;
    const uint8_t *frame;
    size_t len;
    int64_t received_ms;
    uint32_t mute_ms;          /* net_req_mute: stop reading this long once answered */
    uint8_t state;             /* reactor's view (invariant 1) */
    _Atomic uint8_t result;    /* written by the completer */
    net_reply *reply;
};

enum conn_state { CONN_CONNECTING = 1, CONN_OPEN, CONN_CLOSED };

struct net_conn {
    src_t src;
    net_t *net;
    net_reactor *r;
    atomic_int refs;
    atomic_bool closed_any;
    uint64_t id;
    int fd;
    bool outbound;
    uint8_t state;
    int pending_err;           /* outbound: connect() failed at once */
    char peer[NET_PEER_MAX];
    char ip[NET_PEER_MAX];     /* peer address without the port (per-address limit) */
    bool limited;              /* counted in net->limited_active and net->per_ip */
    uint32_t events;           /* current epoll interest */
    int64_t active_ms;         /* last read, write or request completion */
    bool registered;
    /* reading */
    rchunk *in;
    size_t in_start, in_end;
    bool read_paused;          /* back-pressure */
    bool budget_wait;          /* the next frame does not fit the global budget yet */
    bool muted;                /* a request asked for a pause of reading (net_req_mute) */
    int64_t muted_until_ms;    /* ... until then (mute_timer) */
    net_timer mute_timer;
    bool frame_held;           /* frame_reserved bytes are taken from the budget */
    bool frame_waited;         /* this frame already counted a budget wait */
    size_t frame_reserved;     /* the frame being read: its announced length */
    bool no_read;              /* EOF, stopping or closing: never read again */
    bool discard;              /* net_req_close_conn: drop later replies */
    /* requests, in arrival order (invariant 3) */
    net_req *rq_head, *rq_tail;
    uint32_t inflight;
    size_t inflight_bytes;
    /* output */
    net_reply *out_head, *out_tail;
    size_t out_bytes;
    /* lists */
    bool dirty;
    net_conn *dirty_next;
    net_conn *prev, *next;     /* reactor's open list */
    net_conn *grave_next;
    /* upper layer */
    net_handler h;
    net_client_cb cb;
    void *user;
    net_timer timer;           /* connect timeout or close linger */
    /* TLS (tls.c); NULL ssl: plaintext */
    struct ssl_st *ssl;
    bool tls_read_wants_out;   /* the last SSL_read waits for a writable socket */
    bool tls_write_wants_in;   /* the last SSL_write waits for a readable socket */
    uint8_t *tls_out;          /* staged output being written (NET_TLS_STAGE_BYTES) */
    size_t tls_out_len;        /* 0: none; else retried as is until written */
    char *tls_subject;         /* the client certificate's subject, once read (net_conn_tls_subject) */
    bool tls_subject_read;
};

typedef struct msg {
    void (*ifn)(net_reactor *r, void *a, void *b); /* internal */
    void (*ufn)(void *arg);                         /* net_post */
    void *a, *b;
} msg;

struct net_reactor {
    net_t *net;
    int index;
    int ep;
    pthread_t thread;
    bool thread_started;
    /* cross-thread queue */
    src_t msg_src;
    int msg_fd;
    pthread_mutex_t mu;
    msg *q;
    size_t qlen, qcap;
    bool wake_pending;
    bool dead;                 /* under mu; see invariant 4 */
    /* stop */
    src_t stop_src;
    bool stopping;
    int64_t stop_deadline_ms;
    /* connections */
    net_conn *open_head;
    uint32_t open_count;
    net_conn *dirty_head;
    net_conn *grave_head;
    /* timers: binary min-heap on (deadline_ms, seq) */
    net_timer **heap;
    uint32_t heap_len, heap_cap;
    uint64_t timer_seq;
    net_timer idle_sweep;      /* closes idle inbound conns */
    uint32_t budget_waiters;   /* open conns with budget_wait */
    net_timer budget_timer;    /* retries them */
};

typedef struct listener {
    src_t src;
    net_t *net;
    int fd;
    uint16_t port;
    net_handler h;
    bool paused;               /* out of descriptors: not in epoll until `resume` */
    uint32_t backoff_ms;       /* next pause; doubles while accepts keep failing */
    net_timer resume;
} listener;

typedef struct net_counters {
    atomic_uint_fast64_t accepted, closed, rejected, rejected_ip, active, fd_shed;
    atomic_uint_fast64_t out_connects, out_failures;
    atomic_uint_fast64_t frames_in, frames_out, bytes_in, bytes_out, sendfile_bytes;
    atomic_uint_fast64_t oversize, bad_length, malformed, idle, read_pauses;
    atomic_uint_fast64_t reqs_inflight, out_queued, budget_waits, trims;
} net_counters;

struct net {
    net_config cfg;
    int nreactors;
    net_reactor *reactors;
    listener **listeners;
    int nlisteners;
    int stop_fd;
    int reserve_fd;            /* closed to accept-and-close when out of descriptors */
    atomic_bool started;
    pthread_mutex_t join_mu;
    pthread_cond_t join_cv;
    bool joining, joined;
    atomic_uint rr_accept, rr_connect;
    atomic_uint_fast64_t next_conn_id;
    atomic_long live_conns;
    /* connection limits (listeners without `unlimited`) */
    pthread_mutex_t limits_mu;
    uint32_t limited_active;   /* under limits_mu */
    hmap per_ip;               /* ip -> open count (as a pointer), under limits_mu */
    _Atomic size_t queued_bytes; /* budget.c: reserved by frames being read or answered */
    _Atomic size_t queued_peak;  /* most reserved at once since the last trim */
    net_counters st;
};

#define STAT_ADD(net, f, v) atomic_fetch_add_explicit(&(net)->st.f, (v), memory_order_relaxed)
#define STAT_SUB(net, f, v) atomic_fetch_sub_explicit(&(net)->st.f, (v), memory_order_relaxed)

/* reactor.c */
extern __thread net_reactor *net_tl_reactor;
bool reactor_post(net_reactor *r, void (*ifn)(net_reactor *, void *, void *), void *a, void *b);
void reactor_init(net_t *net, net_reactor *r, int index);
void reactor_destroy(net_reactor *r);
void *reactor_main(void *arg);
void reactor_mark_dirty(net_conn *c);
bool reactor_is_dead(net_reactor *r);

/* conn.c */
net_conn *conn_new(net_t *net, net_reactor *r, int fd, bool outbound);
void conn_ref(net_conn *c);
void conn_unref(net_conn *c);
void conn_adopt(net_conn *c);                 /* register an accepted conn */
void conn_on_event(net_conn *c, uint32_t ev);
void conn_advance(net_conn *c);
void conn_close(net_conn *c, int err);
void conn_begin_stop(net_conn *c);
void conn_enqueue_reply(net_conn *c, net_reply *rep);
void conn_set_interest(net_conn *c);
bool conn_idle_expired(net_conn *c, int64_t now_ms); /* closes c if so */
int sock_tune(const net_config *cfg, int fd);
void conn_budget_retry(net_conn *c);          /* budget.c: try the waiting frame again */

/* budget.c */
bool budget_take(net_t *net, size_t n);
void budget_put(net_t *net, size_t n);
void budget_trim_if_idle(net_t *net);
void budget_wait_begin(net_conn *c);
void budget_wait_end(net_conn *c);

/* tls.c */
bool tls_conn_start(net_conn *c, net_tls *t);  /* accept state on c->fd */
/* connect state on c->fd, the server to be host (client contexts) */
bool tls_conn_start_client(net_conn *c, net_tls *t, const char *host);
/* TCP is up: send the ClientHello. 0, or -errno (the handshake failed) */
int tls_conn_connected(net_conn *c);
void tls_conn_end(net_conn *c);                /* frees c->ssl */
size_t tls_pending(const net_conn *c);         /* decrypted bytes not yet read */
/* > 0 bytes, 0 the peer's end, -EAGAIN (tls_*_wants_* say for what), -errno */
ssize_t tls_read(net_conn *c, void *buf, size_t n);
/* n (all written), -EAGAIN (retry with the same bytes), -errno */
ssize_t tls_write(net_conn *c, const void *buf, size_t n);

/* net.c */
int addr_resolve(const char *hostport, bool passive, struct sockaddr_storage *ss, socklen_t *len);
void listener_on_accept(net_reactor *r, listener *l);
void listeners_close(net_t *net);
void limits_release(net_conn *c);            /* an inbound conn closed */

#endif
