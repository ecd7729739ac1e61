/*
 * reply.c - the reply builder and request completion.
 *
 * A reply is a list of parts: parts[0] is always the 4-byte big-endian
 * payload length (filled by reply_seal when the reply is queued), then
 * memory parts and file ranges in the order they were added.
 *
 * A request is completed exactly once, from any thread. On its reactor's
 * own thread the completion is recorded at once and the connection marked
 * dirty (the reactor moves finished head requests to the output after the
 * current event); from another thread it is posted to the reactor; once the
 * reactor is dead it is disposed of on the spot (net_int.h invariant 4).
 */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "net/net_int.h"

#define REPLY_PARTS_INIT 4

net_reply *net_reply_new(void)
{
    net_reply *r = xcalloc(1, sizeof(*r));
    r->cap = REPLY_PARTS_INIT;
    r->parts = xcalloc(r->cap, sizeof(part));
    r->parts[0] = (part){.kind = PART_MEM, .owned = false, .mem = r->hdr, .len = NET_FRAME_HEADER_BYTES};
    r->n = 1;
    return r;
}

static part *reply_push(net_reply *r)
{
    if (r->n == r->cap) {
        r->cap *= 2;
        r->parts = xrealloc(r->parts, r->cap * sizeof(part));
    }
    part *p = &r->parts[r->n++];
    memset(p, 0, sizeof(*p));
    p->fd = -1;
    return p;
}

void net_reply_add_mem(net_reply *r, buf_t *b)
{
    CK_ASSERT(r != NULL && b != NULL);
    if (b->len == 0) {
        buf_free(b);
        buf_init(b);
        return;
    }
    part *p = reply_push(r);
    p->kind = PART_MEM;
    p->owned = true;
    p->mem = b->data;
    p->len = b->len;
    r->total += b->len;
    buf_init(b);
}

void net_reply_add_copy(net_reply *r, const void *src, size_t n)
{
    CK_ASSERT(r != NULL);
    if (n == 0)
        return;
    part *p = reply_push(r);
    p->kind = PART_MEM;
    p->owned = true;
    p->mem = xmalloc(n);
    memcpy(p->mem, src, n);
    p->len = n;
    r->total += n;
}

void net_reply_add_file(net_reply *r, int fd, off_t off, size_t len,
                        void (*release)(void *arg), void *arg)
{
    CK_ASSERT(r != NULL && fd >= 0 && off >= 0);
    part *p = reply_push(r);
    p->kind = PART_FILE;
    p->fd = fd;
    p->off = off;
    p->len = len;
    p->release = release;
    p->arg = arg;
    r->total += len;
}

uint64_t net_reply_len(const net_reply *r) { return r->total; }

uint64_t reply_seal(net_reply *r)
{
    CK_ASSERT(r->total <= INT32_MAX);
    CK_ASSERT(r->n >= 1 && r->parts[0].mem == r->hdr);
    be32_store(r->hdr, (uint32_t)r->total);
    r->cur = 0;
    r->cur_off = 0;
    return r->total + NET_FRAME_HEADER_BYTES;
}

void net_reply_free(net_reply *r)
{
    if (r == NULL)
        return;
    for (uint32_t i = 0; i < r->n; i++) {
        part *p = &r->parts[i];
        if (p->kind == PART_MEM && p->owned)
            free(p->mem);
        else if (p->kind == PART_FILE && p->release != NULL)
            p->release(p->arg);
    }
    free(r->parts);
    free(r);
}

/* ---- request completion ------------------------------------------------- */

/* Invariant 4: the reactor is gone; nothing but this request is touched. */
static void req_dispose_dead(net_req *req)
{
    net_conn *c = req->conn;
    net_reply_free(req->reply);
    req->reply = NULL;
    conn_unref(c); /* conn_free walks rq and frees the request itself */
}

/* On the reactor thread: make the completion visible to conn_advance. */
static void req_record(net_req *req)
{
    req->state = atomic_load_explicit(&req->result, memory_order_relaxed);
    CK_ASSERT(req->state != REQ_PENDING);
    reactor_mark_dirty(req->conn);
}

static void msg_complete(net_reactor *r, void *a, void *b)
{
    UNUSED(b);
    net_req *req = a;
    if (r->dead)
        req_dispose_dead(req);
    else
        req_record(req);
}

static void req_complete(net_req *req, uint8_t result, net_reply *rep)
{
    CK_ASSERT(req != NULL && result != REQ_PENDING);
    uint8_t expect = REQ_PENDING;
    /* the reply pointer is published by the CAS below (release) */
    req->reply = rep;
    if (!atomic_compare_exchange_strong(&req->result, &expect, result))
        CK_PANIC("net_req %p completed twice", (void *)req);
    STAT_SUB(req->conn->net, reqs_inflight, 1);
    budget_put(req->conn->net, req->len);
    rchunk_unref(req->chunk);
    req->chunk = NULL;
    req->frame = NULL;
    net_reactor *r = req->conn->r;
    if (net_tl_reactor == r && !r->dead) {
        req_record(req);
        return;
    }
    if (!reactor_post(r, msg_complete, req, NULL))
        req_dispose_dead(req);
}

void net_req_mute(net_req *req, uint32_t ms) { req->mute_ms = MAX(req->mute_ms, ms); }

void net_req_reply(net_req *req, net_reply *r)
{
    CK_ASSERT(r != NULL);
    req_complete(req, REQ_REPLY, r);
}

void net_req_reply_buf(net_req *req, buf_t *b)
{
    net_reply *r = net_reply_new();
    net_reply_add_mem(r, b);
    req_complete(req, REQ_REPLY, r);
}

void net_req_noreply(net_req *req) { req_complete(req, REQ_NOREPLY, NULL); }

void net_req_close_conn(net_req *req) { req_complete(req, REQ_CLOSE, NULL); }

net_conn *net_req_conn(const net_req *req) { return req->conn; }

const uint8_t *net_req_frame(const net_req *req, size_t *len)
{
    if (len != NULL)
        *len = req->len;
    return req->frame;
}

int64_t net_req_received_ms(const net_req *req) { return req->received_ms; }
