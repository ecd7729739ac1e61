/*
 * http.h - the admin HTTP endpoint: GET /health (liveness), GET /ready (quorum
 * reachable, broker unfenced) and GET /metrics (Prometheus text format).
 * One thread, one request per connection, small fixed limits: it serves
 * operators and scrapers, not traffic.
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
    void *ctx;
} admin_http_cb;

/* Listen on host:port and serve on a thread of its own. NULL on failure
 * (logged). bound_port (may be NULL) receives the port actually bound. */
admin_http *admin_http_start(const char *host, int port, const admin_http_cb *cb, int *bound_port);
void admin_http_stop(admin_http *h);

#endif
