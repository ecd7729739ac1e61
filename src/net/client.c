/*
 * client.c - outbound connections: non-blocking connect with a deadline,
 * frames sent from any thread in order, response frames to a callback;
 * optionally TLS as a client (tls.c).
 *
 * The caller's handle is one reference on the connection (net_int.h
 * invariant 2); net_conn_close() closes and drops it. Reconnecting is the
 * caller's business: on_close tells it the connection is gone.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "net/net_int.h"

static void connect_expired(void *arg) { conn_close(arg, ETIMEDOUT); }

/* On the reactor: register, or report failure. Holds the reactor's ref. */
static void msg_register(net_reactor *r, void *a, void *b)
{
    UNUSED(b);
    net_conn *c = a;
    if (r->dead) {
        if (c->ssl != NULL)
            tls_conn_end(c);
        close(c->fd);
        c->fd = -1;
        c->state = CONN_CLOSED;
        atomic_store(&c->closed_any, true);
        STAT_ADD(c->net, out_failures, 1);
        if (c->cb.on_close != NULL)
            c->cb.on_close(c, ESHUTDOWN, c->cb.ctx);
        conn_unref(c);
        return;
    }
    conn_adopt(c);
    if (c->state != CONN_CONNECTING)
        return;
    if (c->pending_err != 0)
        conn_close(c, c->pending_err);
    else
        net_timer_add(r, &c->timer, c->net->cfg.connect_timeout_ms, connect_expired, c);
}

net_conn *net_connect(net_t *net, net_reactor *r, const char *hostport, const net_client_cb *cb)
{
    CK_ASSERT(cb != NULL && cb->on_frame != NULL && cb->on_close != NULL);
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = addr_resolve(hostport, false, &ss, &len);
    if (rc != 0) {
        errno = -rc;
        return NULL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    sock_tune(&net->cfg, fd);
    int err = 0;
    if (connect(fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS)
        err = errno;
    if (r == NULL)
        r = &net->reactors[atomic_fetch_add(&net->rr_connect, 1) % (unsigned)net->nreactors];
    net_conn *c = conn_new(net, r, fd, true);
    c->pending_err = err;
    c->cb = *cb;
    c->cb.tls_host = NULL; /* not kept: used here only */
    if (cb->tls != NULL && err == 0 && !tls_conn_start_client(c, cb->tls, cb->tls_host))
        c->pending_err = ENOMEM;
    net_format_addr((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
    conn_ref(c); /* the caller's handle */
    STAT_ADD(net, out_connects, 1);
    if (!reactor_post(r, msg_register, c, NULL)) {
        if (c->ssl != NULL)
            tls_conn_end(c);
        close(c->fd);
        c->fd = -1;
        c->state = CONN_CLOSED;
        conn_unref(c);
        conn_unref(c);
        errno = ESHUTDOWN;
        return NULL;
    }
    return c;
}

static int send_local(net_conn *c, net_reply *rep)
{
    if (c->state == CONN_CLOSED) {
        net_reply_free(rep);
        return -EPIPE;
    }
    conn_enqueue_reply(c, rep);
    reactor_mark_dirty(c);
    return 0;
}

static void msg_send(net_reactor *r, void *a, void *b)
{
    net_conn *c = a;
    if (r->dead)
        net_reply_free(b);
    else
        send_local(c, b);
    conn_unref(c);
}

int net_conn_send(net_conn *c, net_reply *rep)
{
    CK_ASSERT(c != NULL && rep != NULL && c->outbound);
    net_reactor *r = c->r;
    if (net_tl_reactor == r && !r->dead)
        return send_local(c, rep);
    if (atomic_load(&c->closed_any)) {
        net_reply_free(rep);
        return -EPIPE;
    }
    conn_ref(c);
    if (!reactor_post(r, msg_send, c, rep)) {
        conn_unref(c);
        net_reply_free(rep);
        return -EPIPE;
    }
    return 0;
}

int net_conn_send_buf(net_conn *c, buf_t *b)
{
    net_reply *rep = net_reply_new();
    net_reply_add_mem(rep, b);
    return net_conn_send(c, rep);
}

static void msg_close(net_reactor *r, void *a, void *b)
{
    UNUSED(b);
    net_conn *c = a;
    if (!r->dead)
        conn_close(c, ECANCELED);
    conn_unref(c); /* the handle */
}

void net_conn_close(net_conn *c)
{
    net_reactor *r = c->r;
    if (!c->outbound) {
        CK_ASSERT(net_tl_reactor == r);
        conn_close(c, ECANCELED);
        return;
    }
    if (net_tl_reactor == r && !r->dead) {
        msg_close(r, c, NULL);
        return;
    }
    if (!reactor_post(r, msg_close, c, NULL))
        conn_unref(c);
}
