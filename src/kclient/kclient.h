/*
 * kclient.h - a Kafka request/response client to one peer node: correlation
 * ids, per-request timeouts, reconnect with backoff, the ApiVersions
 * handshake. The metadata quorum (Raft messages to voters), request
 * forwarding to the controller, follower fetchers and the CLI use it.
 *
 * One kclient_t talks to one "HOST:PORT" over at most one connection at a
 * time, owned by one net reactor (kclient_new's `r`). Requests are pipelined
 * on that connection; responses are matched by correlation id, so the order
 * in which they come back does not matter.
 *
 * Threads.
 *   1. Everything the client does runs on its reactor thread: connecting,
 *      sending, matching responses, timers. kclient_send() may be called from
 *      any thread: it encodes the request on the caller's thread (the request
 *      struct need not outlive the call) and, off the reactor, posts it there.
 *   2. Every callback (kclient_cb) runs on the client's reactor thread,
 *      exactly once per request that kclient_send() accepted (returned 0);
 *      only if net has ended before kclient_free() do the last callbacks
 *      (KCLIENT_ERR_CLOSED) run on kclient_free's thread. A callback may
 *      call kclient_send() (on any client) but not kclient_free() of its
 *      own client.
 *   3. To handle a response on another thread: kclient_resp_keep() the
 *      response inside the callback (the decoded struct and bytes then stay
 *      valid until kclient_resp_free(), which any thread may call) and hand
 *      it over, e.g. to a Raft driver's own queue; kclient_deliver() does
 *      exactly that for a target net reactor (net_post underneath).
 *   4. kclient_stats_get() and kclient_api_version() read atomics: any thread.
 *
 * Connection life. kclient_new() starts connecting at once. Each connection
 * goes: resolve → TCP connect (→ TLS) → ApiVersions (→ SASL login) → ready.
 * The connect, the handshakes and the login together must finish within
 * connect_timeout_ms. Until the
 * connection is ready, requests wait in the queue; once ready, they are sent
 * in submission order, at most inflight_max on the wire at a time. When a
 * connection fails or ends, every request on the wire completes with
 * KCLIENT_ERR_DISCONNECTED (the client never resends: a request may have
 * taken effect), queued ones stay queued, and the client reconnects after a
 * backoff: backoff_min_ms doubling per failed attempt up to backoff_max_ms,
 * each delay jittered by ±20%; a completed handshake resets it.
 *
 * Names. A numeric host (127.0.0.1, [::1]) is connected directly. A name is
 * resolved with getaddrinfo(3) on a short-lived detached thread per attempt
 * (the reactor never blocks); the first address returned is used. The
 * resolver holds a reference on the client, never on net: a resolver still
 * blocked when kclient_free() returns drops its answer.
 *
 * Versions. The ApiVersions handshake runs before any other request on each
 * connection (v3; v0 if the peer answers UNSUPPORTED_VERSION). The usable
 * range of each api is the intersection of the peer's range and the one
 * this codec knows; kclient_api_version() gives its top (-1: unknown or no
 * overlap; until the first handshake everything is unknown; after that the
 * last handshake's answer stands while reconnecting). A request whose
 * version is outside the range fails with KCLIENT_ERR_UNSUPPORTED_VERSION
 * without being sent: at kclient_send() when the range is known, else when
 * the handshake completes.
 *
 * Error model. kclient_send() returns 0 (the callback will run exactly
 * once) or a KCLIENT_ERR_* (the callback will never run): the api or
 * version is unknown to the codec, the peer does not support the version,
 * the queue is full, or the client is closed. The callback's err is
 * KCLIENT_OK with a response, or KCLIENT_ERR_TIMED_OUT (no response within
 * timeout_ms of kclient_send, queued or on the wire; a late response is
 * dropped and counted), KCLIENT_ERR_DISCONNECTED, KCLIENT_ERR_UNSUPPORTED_VERSION
 * (found at the handshake), KCLIENT_ERR_MALFORMED (the response did not
 * decode) or KCLIENT_ERR_CLOSED (kclient_free, or net stopped).
 * kclient_err_kafka() maps each to the Kafka error code a broker would
 * answer with. Errors inside the response body (ErrorCode fields) are the
 * caller's.
 *
 * Security (kclient_config.security; NULL: plaintext, no login). With a
 * TLS client context the connection speaks TLS and the server's certificate
 * is checked (net.h); the name checked is the host given to kclient_new.
 * With a SASL mechanism the client logs in after ApiVersions, Kafka's way:
 * SaslHandshake v1 names the mechanism, then SaslAuthenticate v2 carries
 * PLAIN's token or SCRAM's two rounds (src/sasl; the server's final
 * signature is checked, so a server that does not know the credential is
 * refused too). A refused or failed login ends the connection like a failed
 * connect (logged, rate-limited, with the user and the reason, never the
 * password; backoff) and requests stay queued. When the server gives the
 * session a lifetime (SessionLifetimeMs), the client logs in again on the
 * same connection before it runs out (KIP-368), at 85-95% of it, sending no
 * new request until that login is done.
 *
 * Limits. Requests not yet completed (queued or on the wire) are bounded by
 * count (pending_max) and encoded bytes (pending_bytes_max): past either,
 * kclient_send() fails with KCLIENT_ERR_QUEUE_FULL. This also bounds the
 * connection's output, which net leaves to its caller. A response frame is
 * bounded by net's request_max_bytes (the connection closes beyond it).
 *
 * Lifetimes.
 *   1. The net must be started before kclient_new() and outlive the client:
 *      kclient_free() before net_free(). If net stops first, pending
 *      requests complete with KCLIENT_ERR_CLOSED (when the connection
 *      closes, else in kclient_free, then on its thread) and sends fail.
 *   2. kclient_free() (any thread but its own callbacks) completes every
 *      pending request with KCLIENT_ERR_CLOSED on the reactor thread, exactly
 *      once, and returns after the last callback has run; no callback runs
 *      after it returns.
 *   3. A response passed to a callback is valid during the call only, unless
 *      kept; a kept one must be freed with kclient_resp_free().
 *   4. Responses are copied out of net's receive buffer (one copy per
 *      response), so decoded strings and bytes point into memory the
 *      response owns.
 */
#ifndef CHRONIK_KCLIENT_KCLIENT_H
#define CHRONIK_KCLIENT_KCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "net/net.h"

/* ---- limits and defaults ------------------------------------------------- */
#define KCLIENT_DEFAULT_CLIENT_ID "chronik"
#define KCLIENT_DEFAULT_CONNECT_TIMEOUT_MS 10000u  /* connect + ApiVersions */
#define KCLIENT_DEFAULT_BACKOFF_MIN_MS 50u
#define KCLIENT_DEFAULT_BACKOFF_MAX_MS 2000u
#define KCLIENT_DEFAULT_PENDING_MAX 1024u          /* requests queued or on the wire */
#define KCLIENT_DEFAULT_PENDING_BYTES_MAX (64u * 1024 * 1024)
#define KCLIENT_DEFAULT_INFLIGHT_MAX 64u           /* on the wire at once */
#define KCLIENT_BACKOFF_JITTER_PCT 20              /* ± this much per delay */
#define KCLIENT_TIMEOUT_MAX_MS (24u * 3600 * 1000) /* longest request timeout */

/* How a node reaches a peer: built once (it must outlive the clients that
 * point to it) and shared. */
typedef struct kclient_security {
    net_tls *tls;                 /* a client context (net_tls_config.client); NULL: plaintext */
    int sasl_mech;                /* enum sasl_mech (sasl/sasl.h); 0: no login */
    char user[256];
    char password[256];
} kclient_security;

typedef struct kclient_config {
    const char *client_id;        /* request header ClientId; NULL = default */
    const kclient_security *security; /* NULL: plaintext, no login (see Security) */
    uint32_t connect_timeout_ms;  /* resolve excluded; connect + handshake */
    uint32_t backoff_min_ms;
    uint32_t backoff_max_ms;
    uint32_t pending_max;
    size_t pending_bytes_max;
    uint32_t inflight_max;
} kclient_config;

/* Every field at its KCLIENT_DEFAULT_* value. */
kclient_config kclient_config_defaults(void);
/* The defaults with security set (the one way a node's peer clients get
 * their TLS and login; sec may be NULL). */
kclient_config kclient_config_secure(const kclient_security *sec);

/* ---- errors ---------------------------------------------------------------- */
#define KCLIENT_ERR_TABLE(X)                                                         \
    X(OK, 0, "ok")                                                                   \
    X(TIMED_OUT, 1, "request timed out")                                             \
    X(DISCONNECTED, 2, "connection lost with the request in flight")                 \
    X(CLOSED, 3, "client closed")                                                    \
    X(QUEUE_FULL, 4, "too many requests pending (pending_max or pending_bytes_max)") \
    X(UNSUPPORTED_VERSION, 5, "the peer does not support this api version")          \
    X(UNKNOWN_API, 6, "api key or version unknown to this codec")                    \
    X(MALFORMED, 7, "malformed response")

enum kclient_err {
#define KCLIENT_ERR_ENUM(name, code, msg) KCLIENT_ERR_##name = code,
    KCLIENT_ERR_TABLE(KCLIENT_ERR_ENUM)
#undef KCLIENT_ERR_ENUM
};
#define KCLIENT_OK KCLIENT_ERR_OK

/* "request timed out"; a static string. */
const char *kclient_strerror(int err);
/* "TIMED_OUT". */
const char *kclient_err_name(int err);
/* The Kafka error code for err (NONE, REQUEST_TIMED_OUT, NETWORK_EXCEPTION,
 * UNSUPPORTED_VERSION, ...). */
int16_t kclient_err_kafka(int err);

/* ---- the client -------------------------------------------------------------- */
typedef struct kclient kclient_t;
typedef struct kclient_resp kclient_resp_t;

/* A request's completion, on the client's reactor thread. err KCLIENT_OK:
 * `response` is the decoded response struct of the request's api and
 * version (NULL for kclient_send_raw), resp holds it and the raw body.
 * Otherwise both are NULL. */
typedef void (*kclient_cb)(void *arg, int err, const void *response, kclient_resp_t *resp);

/* A client for "HOST:PORT" on reactor r (NULL = net_reactor_at(net, 0)),
 * with cfg (NULL = defaults). Starts connecting. Returns NULL with errno
 * EINVAL for an address net_parse_hostport refuses. */
kclient_t *kclient_new(net_t *net, net_reactor *r, const char *hostport, const kclient_config *cfg);

/* Complete every pending request with KCLIENT_ERR_CLOSED, close the
 * connection, free the client (see Lifetimes). NULL is ignored. */
void kclient_free(kclient_t *c);

/* Send `request` (the generated request struct of api_key at api_version,
 * e.g. a MetadataRequest *). Encoded before returning. timeout_ms (0 or over
 * KCLIENT_TIMEOUT_MAX_MS: the maximum) counts from now. Returns 0 or a
 * KCLIENT_ERR_* (see Error model). Any thread. */
int kclient_send(kclient_t *c, int16_t api_key, int16_t api_version, const void *request,
                 uint32_t timeout_ms, kclient_cb cb, void *arg);

/* The same with a body already encoded in api_version (no header, no size
 * prefix; copied). The response is not decoded: read kclient_resp_body(). */
int kclient_send_raw(kclient_t *c, int16_t api_key, int16_t api_version, const uint8_t *body,
                     size_t len, uint32_t timeout_ms, kclient_cb cb, void *arg);

/* The highest version of api_key both sides support, or -1 (see Versions).
 * kclient_api_version_min gives the lowest. Any thread. */
int16_t kclient_api_version(const kclient_t *c, int16_t api_key);
int16_t kclient_api_version_min(const kclient_t *c, int16_t api_key);

/* True while a connection is ready (handshake done). Any thread; advisory. */
bool kclient_ready(const kclient_t *c);
net_reactor *kclient_reactor(const kclient_t *c);
const char *kclient_address(const kclient_t *c);

/* ---- responses --------------------------------------------------------------- */

/* The response body bytes (after the response header). */
const uint8_t *kclient_resp_body(const kclient_resp_t *resp, size_t *len);
/* The arena the response was decoded into: more may be allocated from it
 * (e.g. raft_wire_decode), freed with the response. */
arena_t *kclient_resp_arena(kclient_resp_t *resp);
int32_t kclient_resp_correlation_id(const kclient_resp_t *resp);
/* Inside the callback: keep resp (and the decoded struct) past the call. */
void kclient_resp_keep(kclient_resp_t *resp);
/* Free a kept response. Any thread. */
void kclient_resp_free(kclient_resp_t *resp);

/* Inside a callback: keep resp and run cb(arg, err, response, resp) on
 * reactor `to`, where resp is freed after cb returns. Returns false (resp
 * freed, cb not run) when `to` has ended. */
bool kclient_deliver(net_reactor *to, kclient_cb cb, void *arg, int err, const void *response,
                     kclient_resp_t *resp);

/* ---- statistics ---------------------------------------------------------------- */
typedef struct kclient_stats {
    uint64_t requests_sent;       /* written to a connection (handshakes included) */
    uint64_t responses_received;  /* matched to a request */
    uint64_t timeouts;            /* completed with TIMED_OUT */
    uint64_t disconnects;         /* requests completed with DISCONNECTED */
    uint64_t connects;            /* handshakes completed */
    uint64_t reconnects;          /* connection attempts after a failure or loss */
    uint64_t connect_failures;    /* attempts that never became ready */
    uint64_t refused_queue_full;  /* kclient_send refused: QUEUE_FULL */
    uint64_t refused_version;     /* UNSUPPORTED_VERSION, at send or handshake */
    uint64_t stale_responses;     /* correlation id not in flight (late) */
    uint64_t malformed_responses;
    uint64_t pending;             /* now: requests queued or in flight */
    uint64_t pending_bytes;       /* now: their encoded bytes */
} kclient_stats;

/* A snapshot (each counter read atomically). Any thread. */
void kclient_stats_get(const kclient_t *c, kclient_stats *out);

#endif
