/*
 * http.h - the admin HTTP endpoint: GET /health (liveness), GET /ready (quorum
 * reachable, broker unfenced), GET /metrics (Prometheus text format) and
 * GET /status (the node's live state, JSON; ?format=text for people), and
 * the operator console: GET / (the page, readable without scripts),
 * GET /api/console (its data, JSON) and the page's /console.css and
 * /console.js. HTTP/1.1 with keep-alive on one thread of its own, many
 * clients at once, small fixed limits: it serves operators, scrapers and
 * browsers, not traffic (http.c says how).
 */
#ifndef CHRONIK_ADMIN_HTTP_H
#define CHRONIK_ADMIN_HTTP_H

#include <stdbool.h>

#include "base/buf.h"

typedef struct admin_http admin_http;

typedef struct admin_http_cb {
    /* Append the Prometheus exposition text to out. */
    void (*metrics)(buf_t *out, void *ctx);
    /* True when the node can serve; reason (if not ready) gets a short text. */
    bool (*ready)(char *reason, size_t reasonlen, void *ctx);
    /* Append the node's status (JSON, or text when text is true) to out;
     * true when healthy (GET /status answers 200, else 503). */
    bool (*status)(buf_t *out, bool text, void *ctx);
    /* Append the console's data: as HTML (the inside of the page's <main>,
     * escaped) when html is true, else as JSON. NULL: no console. */
    void (*console)(buf_t *out, bool html, void *ctx);
    void *ctx;
} admin_http_cb;

/* Bind host:port without serving yet (connections wait in the backlog), so
 * that a node can check its addresses before it touches its data. NULL on
 * failure (logged). bound_port (may be NULL) receives the port bound. */
admin_http *admin_http_listen(const char *host, int port, int *bound_port);
/* Serve a bound endpoint with cb on a thread of its own. */
void admin_http_serve(admin_http *h, const admin_http_cb *cb);
/* admin_http_listen then admin_http_serve. */
admin_http *admin_http_start(const char *host, int port, const admin_http_cb *cb, int *bound_port);
/* Stop serving (if it started) and close. NULL is ignored. */
void admin_http_stop(admin_http *h);

/* The client side, for the CLI: GET path from host:port within timeout_ms.
 * Returns the HTTP status with the body appended to body, or -errno when
 * the node cannot be reached or answers something that is not HTTP. */
int admin_http_get(const char *host, int port, const char *path, int timeout_ms, buf_t *body);

#endif
