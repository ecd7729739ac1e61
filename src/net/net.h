/*
 * net.h - reactors, connections, 4-byte framing, timers, outbound connections.
 *
 * The network layer moves frames and knows no Kafka message. A frame on the
 * wire is a 4-byte big-endian signed length N followed by N bytes. A length
 * that is negative or larger than net_config.request_max_bytes closes that
 * connection (and only that one) and is counted in net_stats.
 *
 * Threads. net_start() runs num_threads reactors, each an epoll loop on its
 * own thread that owns its connections, timers and a cross-thread message
 * queue (an eventfd). Listeners accept on reactor 0 and hand connections to
 * the reactors round robin. Every callback below runs on the reactor thread
 * that owns the connection (or timer), unless said otherwise.
 *
 * Requests. For each inbound frame the listener's on_frame() is called with a
 * net_req. The frame bytes are a view into the connection's refcounted
 * receive buffer and stay valid until the request is completed. The handler
 * completes each request exactly once with net_req_reply(),
 * net_req_noreply() or net_req_close_conn(), at once or later and from any
 * thread. Responses go out strictly in request order, whatever the order of
 * completion: a completed request waits for the requests before it.
 *
 * Replies. A net_reply is a list of parts: owned memory and file ranges
 * (sent with sendfile(2)). net adds the 4-byte length prefix.
 *
 * TLS. A listener given a net_tls (tls.c) speaks TLS 1.2/1.3 on each of its
 * connections: the handshake runs on the reactor without blocking, frames
 * are read from and written to the record layer, and file parts are copied
 * through it (read into memory, then encrypted) instead of sendfile(2). A
 * plaintext connection takes none of these paths. An outbound connection
 * given a client net_tls (net_client_cb.tls) does the same as a TLS client:
 * SSL_connect's handshake is driven by the same reads and writes.
 *
 * Out of descriptors. When accept(2) fails with EMFILE or ENFILE, the
 * listener sheds what is pending (a spare descriptor kept for the purpose is
 * closed, each pending connection accepted and closed, the spare reopened),
 * stops accepting for a back-off (100 ms doubling to 2 s while it recurs) and
 * says so at most once per 10 s.
 *
 * Back-pressure. A connection stops being read while its queued output is
 * above output_max_bytes, or while it has more than inflight_max requests (or
 * inflight_bytes_max frame bytes) not yet answered; reading resumes when it
 * drains. Across connections, frames being received or answered share
 * queued_max_bytes: a connection whose next frame does not fit waits, unread,
 * until others' requests complete (budget.c).
 *
 * Shutdown. net_request_stop() (async-signal-safe) asks every reactor to stop:
 * listeners close, no further frame is read, in-flight requests are completed
 * and their output flushed until shutdown_timeout_ms, then every connection is
 * closed and the reactor threads end; net_run()/net_wait() return.
 *
 * Lifetimes.
 *   1. Every net_req must be completed, and every net_connect() handle
 *      released with net_conn_close(), before net_free(). Completing a
 *      request after its connection closed, or after net stopped, is allowed:
 *      the reply is discarded (file parts' release callbacks still run).
 *   2. A net_conn stays valid while it is open, while any of its requests is
 *      in flight, and (outbound) until net_conn_close() on its handle.
 *      on_close is the last callback for a connection.
 */
#ifndef CHRONIK_NET_NET_H
#define CHRONIK_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "base/buf.h"

typedef struct net net_t;
typedef struct net_reactor net_reactor;
typedef struct net_conn net_conn;
typedef struct net_req net_req;
typedef struct net_reply net_reply;
typedef struct net_tls net_tls;

/* ---- configuration ------------------------------------------------------ */

#define NET_FRAME_HEADER_BYTES 4
#define NET_DEFAULT_REQUEST_MAX_BYTES (100u * 1024 * 1024)   /* socket.request.max.bytes */
#define NET_DEFAULT_OUTPUT_MAX_BYTES (16u * 1024 * 1024)
#define NET_DEFAULT_INFLIGHT_MAX 1000u
#define NET_DEFAULT_INFLIGHT_BYTES_MAX (256u * 1024 * 1024)
#define NET_DEFAULT_QUEUED_MAX_BYTES (256u * 1024 * 1024)    /* queued.max.request.bytes */
#define NET_DEFAULT_READ_CHUNK_BYTES (64u * 1024)
#define NET_DEFAULT_SHUTDOWN_TIMEOUT_MS 5000u
#define NET_DEFAULT_CONNECT_TIMEOUT_MS 10000u
#define NET_DEFAULT_CLOSE_LINGER_MS 5000u
#define NET_DEFAULT_IDLE_TIMEOUT_MS 600000u                  /* connections.max.idle.ms */
#define NET_DEFAULT_LISTEN_BACKLOG 1024
#define NET_DEFAULT_MAX_CONNECTIONS 10000u
#define NET_MAX_THREADS 256

typedef struct net_config {
    int num_threads;               /* num.network.threads; 0 = online cores */
    size_t request_max_bytes;      /* largest frame accepted (both directions) */
    size_t output_max_bytes;       /* pause reading above this queued output */
    uint32_t inflight_max;         /* pause reading above this many unanswered */
    size_t inflight_bytes_max;     /* ... or this many unanswered frame bytes */
    size_t queued_max_bytes;       /* queued.max.request.bytes: all conns' frames being
                                      read or answered; 0 = no limit (see budget.c) */
    size_t read_chunk_bytes;       /* receive buffer chunk size */
    uint32_t shutdown_timeout_ms;  /* graceful stop: time to finish in-flight */
    uint32_t connect_timeout_ms;   /* outbound connect deadline */
    uint32_t close_linger_ms;      /* net_req_close_conn: time to flush output */
    uint32_t idle_timeout_ms;      /* close inbound conns idle this long; 0 = never */
    int listen_backlog;
    uint32_t max_connections;      /* max.connections: inbound connections open at once; 0 = no limit */
    uint32_t max_connections_per_ip; /* max.connections.per.ip: ... from one address; 0 = no limit */
    int socket_send_buffer_bytes;  /* socket.send.buffer.bytes; <= 0: OS default */
    int socket_receive_buffer_bytes; /* socket.receive.buffer.bytes; <= 0: OS default */
    bool tcp_nodelay;
} net_config;

/* Fills every field with its default (the NET_DEFAULT_* constants). */
net_config net_config_defaults(void);

/* ---- handlers ------------------------------------------------------------- */

/* Callbacks of a listener; all run on the connection's reactor thread. */
typedef struct net_handler {
    /* A complete frame arrived. Complete `req` exactly once (any thread). */
    void (*on_frame)(net_conn *c, net_req *req, const uint8_t *frame, size_t len, void *ctx);
    /* Optional: a connection was accepted (set user data here). */
    void (*on_open)(net_conn *c, void *ctx);
    /* Optional: the connection is closed and none of its requests is still
     * in flight; the last callback for c (free user data here). After net
     * stopped it runs on the thread completing the last request. */
    void (*on_close)(net_conn *c, void *ctx);
    void *ctx;
    /* An operator's or peer nodes' listener: its connections neither count
     * toward max_connections / max_connections_per_ip nor are refused by them. */
    bool unlimited;
    /* Non-NULL: connections speak TLS with this context (it must outlive net). */
    net_tls *tls;
} net_handler;

/* Callbacks of an outbound connection; all run on its reactor thread. */
typedef struct net_client_cb {
    /* Optional: the TCP connection is established. */
    void (*on_connect)(net_conn *c, void *ctx);
    /* A response frame arrived; the bytes are valid during the call only. */
    void (*on_frame)(net_conn *c, const uint8_t *frame, size_t len, void *ctx);
    /* Exactly once: the connection failed or ended. err is 0 when the peer
     * closed cleanly, else an errno (ECONNREFUSED, ETIMEDOUT, EMSGSIZE for a
     * bad frame length, ESHUTDOWN when net stops, ECANCELED after
     * net_conn_close). The handle stays valid until net_conn_close(). */
    void (*on_close)(net_conn *c, int err, void *ctx);
    void *ctx;
    /* Non-NULL: speak TLS as a client with this context (net_tls_config
     * .client; it must outlive the connection). on_connect then runs once
     * TCP is up; the TLS handshake follows with the first bytes sent, and a
     * handshake failure (an untrusted or misnamed server certificate) ends
     * the connection with EPROTO. */
    net_tls *tls;
    /* The name the server certificate must carry (a DNS name, or an IP
     * address matched against IP SANs) when the context verifies host
     * names; also sent as SNI when not an address. Copied. */
    const char *tls_host;
} net_client_cb;

/* ---- lifecycle ------------------------------------------------------------ */

/* A stopped net with cfg (NULL = defaults). Aborts on resource exhaustion. */
net_t *net_new(const net_config *cfg);

/* Listen on "HOST:PORT" ("[::1]:PORT" for IPv6; port 0 = ephemeral) with the
 * callbacks h (copied). Call before net_start(). Returns 0 and the bound port
 * in *bound_port (may be NULL), or -errno. */
int net_listen(net_t *net, const char *hostport, const net_handler *h, uint16_t *bound_port);


/* Start the reactor threads (non-blocking). Returns 0 or -errno. The
 * threads block asynchronous signals (SIGPIPE from sendfile becomes EPIPE;
 * SIGTERM/SIGINT reach the other threads). */
int net_start(net_t *net);

/* net_start() if needed, then block until stopped (see net_wait). */
int net_run(net_t *net);

/* Ask net to stop gracefully. Async-signal-safe; callable from any thread,
 * any number of times, before or after start. */
void net_request_stop(net_t *net);

/* Block until every reactor thread has ended and been joined. Thread-safe. */
void net_wait(net_t *net);

/* net_request_stop() then net_wait(). Not from a reactor thread. */
void net_stop(net_t *net);

/* Free a stopped (or never started) net. See Lifetimes above. */
void net_free(net_t *net);

/* Raise this process's soft limit on open descriptors to its hard limit and
 * log both (a broker holds a descriptor per connection and per segment file).
 * Returns the soft limit now in force. */
long net_raise_fd_limit(void);

/* ---- reactors, cross-thread calls, timers --------------------------------- */

int net_num_reactors(const net_t *net);
net_reactor *net_reactor_at(net_t *net, int i);
int net_reactor_index(const net_reactor *r);
/* The reactor running the calling thread, or NULL if not a reactor thread. */
net_reactor *net_current_reactor(void);

/* Run fn(arg) on r's thread, soon and in posting order. Any thread. Returns
 * false (fn will not run) once r has ended. */
bool net_post(net_reactor *r, void (*fn)(void *arg), void *arg);

/* A one-shot timer: a struct owned by the caller (e.g. embedded in a parked
 * request); its fields are private. net_timer_add and net_timer_cancel must
 * be called on r's thread. A timer pending when its reactor ends never fires. */
typedef struct net_timer {
    int64_t deadline_ms;
    uint32_t heap_idx; /* position in the reactor's heap; UINT32_MAX: idle */
    uint64_t seq;      /* tie-break: equal deadlines fire in add order */
    net_reactor *reactor;
    void (*cb)(void *arg);
    void *arg;
} net_timer;

#define NET_TIMER_INIT {0, UINT32_MAX, 0, NULL, NULL, NULL}
void net_timer_init(net_timer *t);
/* Arm t to call cb(arg) once after delay_ms (re-arms it if pending). */
void net_timer_add(net_reactor *r, net_timer *t, uint64_t delay_ms, void (*cb)(void *arg), void *arg);
/* Disarm; returns true if t was pending. Safe on idle or fired timers. */
bool net_timer_cancel(net_timer *t);
bool net_timer_pending(const net_timer *t);

/* ---- replies ---------------------------------------------------------------- */

/* An empty reply (payload length 0). */
net_reply *net_reply_new(void);
/* Append b's bytes, taking ownership of its memory; b is left empty. */
void net_reply_add_mem(net_reply *r, buf_t *b);
/* Append a copy of n bytes at p. */
void net_reply_add_copy(net_reply *r, const void *p, size_t n);
/* Append len bytes of file fd from off, sent with sendfile(2). release(arg),
 * if non-NULL, runs exactly once when the part has been sent or dropped
 * (connection closed, reply freed); keep fd open until then. If the file
 * turns out shorter, the connection is closed (its framing is broken). */
void net_reply_add_file(net_reply *r, int fd, off_t off, size_t len,
                        void (*release)(void *arg), void *arg);
/* Payload length (without the 4-byte prefix). */
uint64_t net_reply_len(const net_reply *r);
/* Discard an unsent reply (runs file parts' release callbacks). */
void net_reply_free(net_reply *r);

/* ---- requests (inbound) ------------------------------------------------------ */

/* Send r (owned by net from now) as this request's response. Any thread. */
void net_req_reply(net_req *req, net_reply *r);
/* Same with a single memory part taken from b (b is left empty). */
void net_req_reply_buf(net_req *req, buf_t *b);
/* No response (acks=0 produce); later responses still wait for this slot. */
void net_req_noreply(net_req *req);
/* Malformed request: send the responses before it, then close the
 * connection; later requests' responses are discarded. */
void net_req_close_conn(net_req *req);

/* Once this request's response is queued, read nothing more from its
 * connection for ms milliseconds (a client over its quota: KIP-219). Frames
 * already read are still answered. Call before completing req, from the
 * completing thread. */
void net_req_mute(net_req *req, uint32_t ms);

net_conn *net_req_conn(const net_req *req);
const uint8_t *net_req_frame(const net_req *req, size_t *len);
int64_t net_req_received_ms(const net_req *req); /* clock_mono_ms at arrival */

/* ---- connections --------------------------------------------------------------- */

uint64_t net_conn_id(const net_conn *c);          /* unique per net */
const char *net_conn_peer(const net_conn *c);     /* "127.0.0.1:51234" */
net_reactor *net_conn_reactor(const net_conn *c);
bool net_conn_is_outbound(const net_conn *c);
/* True once the socket is closed (or closing). Any thread; advisory. */
bool net_conn_closed(const net_conn *c);
/* A pointer for the upper layer (per-connection state); free it in on_close. */
void net_conn_set_user(net_conn *c, void *user);
void *net_conn_user(const net_conn *c);

/* Open an outbound connection to "HOST:PORT" on reactor r (NULL = round
 * robin). Resolves host on the calling thread (getaddrinfo, may block),
 * then connects without blocking; on_connect or on_close follows on the
 * reactor. Returns a handle, or NULL with errno set (bad address, or net
 * already stopped). Release the handle with net_conn_close(). */
net_conn *net_connect(net_t *net, net_reactor *r, const char *hostport, const net_client_cb *cb);
/* Queue a frame (prefix added) on an outbound connection, in order; frames
 * sent before the connection is established wait for it. Any thread. Takes
 * r. Returns 0, or -EPIPE if the connection is known closed (r is freed).
 * Outbound output is not limited: the caller bounds what it has in flight. */
int net_conn_send(net_conn *c, net_reply *r);
int net_conn_send_buf(net_conn *c, buf_t *b);
/* Outbound: close (unsent output is dropped; on_close(ECANCELED) runs if it
 * has not yet) and release the handle. Inbound: close the connection at
 * once (e.g. authentication failure); reactor thread only. */
void net_conn_close(net_conn *c);

/* ---- addresses ------------------------------------------------------------------ */

#define NET_HOST_MAX 256
/* Split "HOST:PORT" or "[V6]:PORT" into host (brackets removed) and port.
 * Returns 0, or -EINVAL. An empty host means "any address". */
int net_parse_hostport(const char *s, char host[NET_HOST_MAX], uint16_t *port);
/* What is wrong with "HOST:PORT" as a person typed it ("no port (want
 * HOST:PORT)", "port is not a number", "port out of range (0-65535)", ...),
 * or NULL when net_parse_hostport accepts it. A static string. */
const char *net_hostport_problem(const char *s);
/* Format a socket address as "1.2.3.4:5" or "[::1]:5" into out. */
void net_format_addr(const struct sockaddr *sa, char *out, size_t cap);

/* ---- TLS contexts (tls.c) ------------------------------------------------------- */

enum net_tls_auth { NET_TLS_AUTH_NONE = 0, NET_TLS_AUTH_REQUESTED, NET_TLS_AUTH_REQUIRED };

typedef struct net_tls_config {
    const char *keystore;      /* PEM file: the private key and the certificate chain */
    const char *key_password;  /* the key's password; NULL or "": not encrypted */
    const char *truststore;    /* PEM file of CA certificates for client certificates; NULL: none */
    int client_auth;           /* enum net_tls_auth (server contexts) */
    bool tls12, tls13;         /* versions offered (neither: TLS 1.3) */
    /* A client context (outbound connections): the server's certificate must
     * chain to truststore (required); keystore, when given, is presented if
     * the server asks for a client certificate. */
    bool client;
    bool verify_host;          /* client: the certificate must name the host connected to */
} net_tls_config;

/* A server or client context read from cfg's files, or NULL with a message
 * in err. */
net_tls *net_tls_new(const net_tls_config *cfg, char *err, size_t errlen);
/* Read the files again if any changed since last read (or if force); new
 * connections then use them. Returns 1 when reloaded, 0 when unchanged, -1
 * (err set; the old context keeps serving) when the new files are unusable.
 * Any thread. */
int net_tls_reload(net_tls *t, bool force, char *err, size_t errlen);
/* The serving certificate's subject and serial, for the log. */
void net_tls_describe(net_tls *t, char *out, size_t n);
/* After net_free of every net using it. */
void net_tls_free(net_tls *t);
/* The subject of the certificate a TLS connection's client presented and
 * the truststore verified, as an RFC 2253 string ("CN=alice,OU=eng,O=acme",
 * the most specific part first); NULL for plaintext, no certificate, or a
 * handshake not finished. Reactor thread of c; valid while c is open. */
const char *net_conn_tls_subject(net_conn *c);

/* ---- statistics ------------------------------------------------------------------ */

typedef struct net_stats {
    uint64_t connections_accepted;
    uint64_t connections_closed;      /* inbound */
    uint64_t connections_rejected;    /* over max_connections */
    uint64_t connections_rejected_per_ip; /* over max_connections_per_ip */
    uint64_t connections_fd_shed;     /* accepted and closed at once: out of descriptors */
    uint64_t connections_active;      /* inbound open now */
    uint64_t outbound_connects;       /* net_connect calls */
    uint64_t outbound_failures;       /* connect failed or timed out */
    uint64_t frames_in;
    uint64_t frames_out;
    uint64_t bytes_in;
    uint64_t bytes_out;               /* including sendfile bytes */
    uint64_t sendfile_bytes;
    uint64_t oversize_closes;         /* length > request_max_bytes */
    uint64_t bad_length_closes;       /* negative length */
    uint64_t malformed_closes;        /* net_req_close_conn */
    uint64_t idle_closes;             /* idle_timeout_ms */
    uint64_t read_pauses;             /* back-pressure engaged */
    uint64_t requests_inflight;       /* inbound, not yet completed */
    uint64_t output_queued_bytes;     /* queued, not yet written (all conns) */
    uint64_t request_queued_bytes;    /* frames being read or answered (the budget) */
    uint64_t budget_waits;            /* a connection waited for the budget */
    uint64_t memory_trims;            /* freed memory handed back to the system */
} net_stats;

/* A snapshot of the counters (each read atomically). Any thread. */
void net_stats_get(net_t *net, net_stats *out);

#endif
