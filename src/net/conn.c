/*
 * conn.c - one connection: framing, receive buffers, request slots, output.
 *
 * Wire format (both directions):
 *
 *   offset  size  field
 *   0       4     length N, big-endian int32; 0 <= N <= request_max_bytes
 *   4       N     frame bytes (opaque to net)
 *
 * A negative N or one above the maximum closes the connection at once (it is
 * impossible to resynchronise a byte stream); bytes of a frame that never
 * completes are dropped when the connection ends.
 *
 * Receive buffers. Bytes are read straight into a refcounted chunk; a frame
 * is handed out as a view into it and the request holds a reference until it
 * is completed. When the chunk has too little room for the frame being read,
 * the unparsed tail moves to the front (if nobody else holds the chunk) or to
 * a fresh chunk; a large frame's chunk grows by doubling from NET_GROW_STEP
 * so that a peer announcing a huge frame without sending it pins little, and
 * once that frame is done the connection goes back to a chunk of the usual
 * size. Each frame's announced length is reserved from the global budget
 * before its body is read (budget.c).
 *
 * Output. Replies are queued whole (prefix first) in request order; memory
 * parts go out with sendmsg over an iovec, file parts with sendfile(2).
 * A connection stops being read while its output or unanswered requests are
 * over the limits (back-pressure) and is read again once they drain.
 *
 * TLS (a connection with ssl set; tls.c holds the OpenSSL calls). Reading
 * and writing branch once, at their entry, to their TLS twins: reads come
 * from SSL_read, which runs the handshake first; writes copy up to
 * NET_TLS_STAGE_BYTES of the queue (memory and file parts alike) into a
 * staging buffer that SSL_write encrypts, retried as is until written. Bytes
 * the record layer has decrypted but not yet handed out raise no epoll event,
 * so conn_advance reads them when reading is wanted again. A plaintext
 * connection pays one pointer test in each of those places.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "net/net_int.h"

/* ---- chunks ---------------------------------------------------------------- */

/* Large chunks are mapped on their own: the broker tunes malloc to keep
 * freed memory for reuse, which would pin a large frame's pages for good.
 * A mapping's pages are touched, hence resident, only as bytes arrive. */
static rchunk *rchunk_new(size_t cap)
{
    rchunk *ch;
    bool mapped = cap >= NET_MAP_CHUNK_BYTES;
    if (mapped) {
        ch = mmap(NULL, sizeof(rchunk) + cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (ch == MAP_FAILED)
            CK_PANIC("mmap %zu bytes: %s", cap, strerror(errno));
    } else {
        ch = xmalloc(sizeof(rchunk) + cap);
    }
    atomic_init(&ch->refs, 1);
    ch->mapped = mapped;
    ch->cap = cap;
    return ch;
}

void rchunk_unref(rchunk *ch)
{
    if (ch == NULL || atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (ch->mapped)
        munmap(ch, sizeof(rchunk) + ch->cap);
    else
        free(ch);
}

/* ---- lifetime ---------------------------------------------------------------- */

net_conn *conn_new(net_t *net, net_reactor *r, int fd, bool outbound)
{
    net_conn *c = xcalloc(1, sizeof(*c));
    c->src.kind = SRC_CONN;
    c->net = net;
    c->r = r;
    atomic_init(&c->refs, 1);
    atomic_init(&c->closed_any, false);
    c->id = atomic_fetch_add(&net->next_conn_id, 1) + 1;
    c->fd = fd;
    c->outbound = outbound;
    c->state = outbound ? CONN_CONNECTING : CONN_OPEN;
    c->active_ms = clock_mono_ms();
    net_timer_init(&c->timer);
    net_timer_init(&c->mute_timer);
    atomic_fetch_add(&net->live_conns, 1);
    return c;
}

void conn_ref(net_conn *c) { atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed); }

static void conn_free(net_conn *c)
{
    CK_ASSERT(c->state == CONN_CLOSED || c->fd < 0);
    CK_ASSERT(c->out_head == NULL && !net_timer_pending(&c->timer));
    if (!c->outbound && c->h.on_close != NULL)
        c->h.on_close(c, c->h.ctx);
    net_req *q = c->rq_head;
    while (q != NULL) { /* requests disposed of after the reactor died */
        net_req *next = q->next;
        CK_ASSERT(q->chunk == NULL && q->reply == NULL);
        free(q);
        q = next;
    }
    rchunk_unref(c->in);
    free(c->tls_out);
    atomic_fetch_sub(&c->net->live_conns, 1);
    free(c);
}

void conn_unref(net_conn *c)
{
    int old = atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel);
    CK_ASSERT(old >= 1);
    if (old == 1)
        conn_free(c);
}

/* ---- epoll interest ---------------------------------------------------------- */

static bool reading_wanted(const net_conn *c)
{
    return c->state == CONN_OPEN && !c->no_read && !c->read_paused && !c->budget_wait;
}

void conn_set_interest(net_conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    uint32_t want = 0;
    if (reading_wanted(c))
        want |= EPOLLIN;
    if (c->out_head != NULL || c->state == CONN_CONNECTING)
        want |= EPOLLOUT;
    if (c->ssl != NULL) /* the record layer may wait for the other direction */
        want |= (c->tls_read_wants_out && reading_wanted(c) ? EPOLLOUT : 0) |
                (c->tls_write_wants_in && c->out_head != NULL ? EPOLLIN : 0);
    if (c->registered && want == c->events)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = &c->src};
    int op = c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(c->r->ep, op, c->fd, &ev) != 0)
        CK_PANIC("epoll_ctl conn fd=%d: %s", c->fd, strerror(errno));
    c->registered = true;
    c->events = want;
}

/* ---- close ------------------------------------------------------------------- */

static void list_remove(net_conn *c)
{
    net_reactor *r = c->r;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        r->open_head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    CK_ASSERT(r->open_count > 0);
    r->open_count--;
}

static void output_drop(net_conn *c)
{
    while (c->out_head != NULL) {
        net_reply *rep = c->out_head;
        c->out_head = rep->next;
        net_reply_free(rep);
    }
    c->out_tail = NULL;
    STAT_SUB(c->net, out_queued, c->out_bytes);
    c->out_bytes = 0;
}

void conn_close(net_conn *c, int err)
{
    if (c->state == CONN_CLOSED)
        return;
    CK_ASSERT(net_tl_reactor == c->r);
    bool was_open = c->state == CONN_OPEN;
    c->state = CONN_CLOSED;
    atomic_store(&c->closed_any, true);
    if (c->registered)
        epoll_ctl(c->r->ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl != NULL)
        tls_conn_end(c);
    c->tls_out_len = 0;
    close(c->fd);
    c->fd = -1;
    list_remove(c);
    net_timer_cancel(&c->timer);
    net_timer_cancel(&c->mute_timer);
    output_drop(c); /* c->in stays until conn_free: a callback may still read its frame */
    budget_wait_end(c);
    if (c->frame_held)
        budget_put(c->net, c->frame_reserved);
    c->frame_held = false;
    for (net_req *q = c->rq_head; q != NULL; q = q->next) {
        if (q->state == REQ_PENDING)
            continue; /* its completer may be writing q->reply right now */
        net_reply_free(q->reply); /* completed but waiting: nobody to send to */
        q->reply = NULL;
    }
    if (!c->outbound) {
        limits_release(c);
        STAT_ADD(c->net, closed, 1);
        STAT_SUB(c->net, active, 1);
    } else if (!was_open) {
        STAT_ADD(c->net, out_failures, 1);
    }
    log_debug("net", "closed conn=%llu peer=%s err=%d", (unsigned long long)c->id, c->peer, err);
    if (c->outbound && c->cb.on_close != NULL)
        c->cb.on_close(c, err, c->cb.ctx);
    c->grave_next = c->r->grave_head; /* the reactor's reference (invariant 2) */
    c->r->grave_head = c;
}

static void linger_expired(void *arg) { conn_close(arg, ETIMEDOUT); }

/* Stop reading for good; the connection closes once its work is done. */
static void stop_reading(net_conn *c)
{
    if (c->no_read)
        return;
    c->no_read = true;
    net_timer_add(c->r, &c->timer, c->net->cfg.close_linger_ms, linger_expired, c);
    conn_set_interest(c);
}

static bool work_done(const net_conn *c)
{
    return c->out_head == NULL && (c->discard || c->rq_head == NULL);
}

void conn_begin_stop(net_conn *c)
{
    if (c->outbound || c->state != CONN_OPEN) {
        conn_close(c, ESHUTDOWN);
        return;
    }
    c->no_read = true; /* the shutdown deadline bounds the wait, not the linger */
    conn_set_interest(c);
    if (work_done(c))
        conn_close(c, ESHUTDOWN);
}

/* ---- output ------------------------------------------------------------------- */

void conn_enqueue_reply(net_conn *c, net_reply *rep)
{
    uint64_t wire = reply_seal(rep);
    rep->next = NULL;
    if (c->out_tail != NULL)
        c->out_tail->next = rep;
    else
        c->out_head = rep;
    c->out_tail = rep;
    c->out_bytes += wire;
    STAT_ADD(c->net, out_queued, wire);
}

/* Account n bytes written; frees replies that are fully sent. */
static void output_advance(net_conn *c, size_t n)
{
    if (n > 0)
        c->active_ms = clock_mono_ms();
    STAT_ADD(c->net, bytes_out, n);
    STAT_SUB(c->net, out_queued, n);
    CK_ASSERT(n <= c->out_bytes);
    c->out_bytes -= n;
    while (c->out_head != NULL) {
        net_reply *rep = c->out_head;
        while (rep->cur < rep->n) {
            part *p = &rep->parts[rep->cur];
            size_t left = p->len - rep->cur_off;
            if (n < left) {
                rep->cur_off += n;
                return;
            }
            n -= left;
            rep->cur++;
            rep->cur_off = 0;
        }
        c->out_head = rep->next;
        if (c->out_head == NULL)
            c->out_tail = NULL;
        STAT_ADD(c->net, frames_out, 1);
        net_reply_free(rep);
    }
    CK_ASSERT(n == 0);
}

/* Gather memory parts from the head; returns the iovec count, or 0 when the
 * head is a file part. *more: data (a file part) follows the gathered bytes. */
static int gather(net_conn *c, struct iovec *iov, bool *more)
{
    int k = 0;
    *more = false;
    for (net_reply *rep = c->out_head; rep != NULL; rep = rep->next) {
        uint32_t i = rep == c->out_head ? rep->cur : 0;
        for (; i < rep->n; i++) {
            part *p = &rep->parts[i];
            size_t skip = (rep == c->out_head && i == rep->cur) ? rep->cur_off : 0;
            if (p->len <= skip)
                continue;
            if (p->kind == PART_FILE || k == NET_IOV_MAX) {
                *more = true;
                return k;
            }
            iov[k++] = (struct iovec){p->mem + skip, p->len - skip};
        }
    }
    return k;
}

/* Copy the head of the queue, up to NET_TLS_STAGE_BYTES, into c->tls_out
 * (file parts are read). Returns the bytes staged or -errno (-EIO: a file
 * shorter than announced). */
static ssize_t tls_stage(net_conn *c)
{
    if (c->tls_out == NULL)
        c->tls_out = xmalloc(NET_TLS_STAGE_BYTES);
    size_t n = 0;
    for (net_reply *rep = c->out_head; rep != NULL && n < NET_TLS_STAGE_BYTES; rep = rep->next) {
        for (uint32_t i = rep == c->out_head ? rep->cur : 0; i < rep->n && n < NET_TLS_STAGE_BYTES; i++) {
            part *p = &rep->parts[i];
            size_t skip = (rep == c->out_head && i == rep->cur) ? rep->cur_off : 0;
            size_t take = MIN(p->len - skip, NET_TLS_STAGE_BYTES - n);
            if (take == 0)
                continue;
            if (p->kind == PART_MEM) {
                memcpy(c->tls_out + n, p->mem + skip, take);
            } else {
                ssize_t r = pread(p->fd, c->tls_out + n, take, p->off + (off_t)skip);
                if (r <= 0)
                    return r == 0 ? -EIO : -errno;
                take = (size_t)r;
            }
            n += take;
            if (take < p->len - skip)
                return (ssize_t)n; /* the buffer is full, or a file read came short: the rest next time */
        }
    }
    return (ssize_t)n;
}

/* write_once on a TLS connection: the staged bytes, written whole. */
static ssize_t tls_write_once(net_conn *c)
{
    if (c->tls_out_len == 0) {
        ssize_t staged = tls_stage(c);
        if (staged <= 0)
            return staged == 0 ? -EIO : staged;
        c->tls_out_len = (size_t)staged;
    }
    ssize_t n = tls_write(c, c->tls_out, c->tls_out_len);
    if (n == -EAGAIN)
        return 0;
    if (n < 0)
        return n;
    CK_ASSERT((size_t)n == c->tls_out_len && (size_t)n <= c->out_bytes);
    c->tls_out_len = 0;
    if ((size_t)n == c->out_bytes) { /* drained: an idle connection holds no staging buffer */
        free(c->tls_out);
        c->tls_out = NULL;
    }
    return n;
}

/* One write; returns bytes written, 0 for EAGAIN, -errno on error. */
static ssize_t write_once(net_conn *c)
{
    if (c->ssl != NULL)
        return tls_write_once(c);
    struct iovec iov[NET_IOV_MAX];
    bool more;
    int k = gather(c, iov, &more);
    if (k > 0) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)k};
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT | (more ? MSG_MORE : 0));
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        return n;
    }
    CK_ASSERT(more); /* output_flush normalised the head: it has bytes left */
    net_reply *rep = c->out_head;
    part *p = &rep->parts[rep->cur];
    CK_ASSERT(p->kind == PART_FILE && rep->cur_off < p->len);
    off_t off = p->off + (off_t)rep->cur_off;
    size_t want = MIN(p->len - rep->cur_off, (size_t)NET_SENDFILE_CHUNK);
    ssize_t n = sendfile(c->fd, p->fd, &off, want);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    if (n == 0)
        return -EIO; /* the file is shorter than promised: framing is broken */
    STAT_ADD(c->net, sendfile_bytes, (uint64_t)n);
    return n;
}

/* Write until empty or EAGAIN. Returns false if the connection closed. */
static bool output_flush(net_conn *c)
{
    for (;;) {
        output_advance(c, 0); /* skip empty parts, pop finished replies */
        if (c->out_head == NULL)
            break;
        ssize_t n = write_once(c);
        if (n < 0) {
            static log_ratelimit rl = LOG_RATELIMIT_INIT(LOG_RATELIMIT_DEFAULT_MS);
            if (n == -EIO)
                log_warn_limited(&rl, "net", "file part shorter than announced conn=%llu peer=%s",
                                 (unsigned long long)c->id, c->peer);
            conn_close(c, (int)-n);
            return false;
        }
        if (n == 0)
            break;
        output_advance(c, (size_t)n);
    }
    return true;
}

/* ---- reading ------------------------------------------------------------------ */

static bool over_limits(const net_conn *c, bool resuming)
{
    const net_config *cfg = &c->net->cfg;
    size_t out_max = resuming ? cfg->output_max_bytes / 2 : cfg->output_max_bytes;
    return c->muted || c->out_bytes > out_max || c->inflight >= cfg->inflight_max ||
           c->inflight_bytes >= cfg->inflight_bytes_max;
}

static void pause_reading(net_conn *c)
{
    if (c->read_paused)
        return;
    c->read_paused = true;
    STAT_ADD(c->net, read_pauses, 1);
    conn_set_interest(c);
}

/* Bytes of the item being read: a header, or a header and its frame. */
static size_t item_need(const net_conn *c)
{
    size_t have = c->in_end - c->in_start;
    if (have < NET_FRAME_HEADER_BYTES)
        return NET_FRAME_HEADER_BYTES;
    return NET_FRAME_HEADER_BYTES + be32_load(c->in->data + c->in_start);
}

/* Move the unparsed tail (have bytes) to a fresh chunk of cap bytes. */
static void replace_chunk(net_conn *c, size_t cap, size_t have)
{
    rchunk *nc = rchunk_new(cap);
    memcpy(nc->data, c->in->data + c->in_start, have);
    rchunk_unref(c->in);
    c->in = nc;
    c->in_start = 0;
    c->in_end = have;
}

static void ensure_room(net_conn *c)
{
    size_t chunk = c->net->cfg.read_chunk_bytes;
    if (c->in == NULL) {
        c->in = rchunk_new(chunk);
        c->in_start = c->in_end = 0;
    }
    size_t have = c->in_end - c->in_start, need = item_need(c);
    bool alone = atomic_load(&c->in->refs) == 1;
    if (have == 0 && alone)
        c->in_start = c->in_end = 0;
    CK_ASSERT(need > have);
    if (c->in->cap > MAX(chunk, (size_t)NET_GROW_STEP) && need <= chunk) {
        /* a large frame is done: give its buffer back */
        replace_chunk(c, chunk, have);
        return;
    }
    size_t room = c->in->cap - c->in_end;
    if (room > 0 && room >= MIN((size_t)NET_READ_MIN_ROOM, need - have))
        return;
    size_t target = MAX(chunk, need);
    if (need > NET_GROW_STEP)
        target = MAX(chunk, MIN(need, MAX(2 * have, (size_t)NET_GROW_STEP)));
    if (alone && c->in->cap >= target && c->in_start > 0) {
        memmove(c->in->data, c->in->data + c->in_start, have);
        c->in_start = 0;
        c->in_end = have;
    } else {
        replace_chunk(c, MAX(target, have + 1), have);
    }
}

static void dispatch_request(net_conn *c, const uint8_t *frame, size_t len)
{
    net_req *req = xcalloc(1, sizeof(*req));
    req->conn = c;
    req->chunk = c->in;
    atomic_fetch_add(&c->in->refs, 1);
    req->frame = frame;
    req->len = len;
    CK_ASSERT(c->frame_held && c->frame_reserved == len); /* the reservation passes to req */
    c->frame_held = false;
    req->received_ms = clock_mono_ms();
    atomic_init(&req->result, REQ_PENDING);
    conn_ref(c);
    if (c->rq_tail != NULL)
        c->rq_tail->next = req;
    else
        c->rq_head = req;
    c->rq_tail = req;
    c->inflight++;
    c->inflight_bytes += len;
    STAT_ADD(c->net, reqs_inflight, 1);
    c->h.on_frame(c, req, frame, len, c->h.ctx);
}

static void pop_completed(net_conn *c);

/* Validate the next header; false (connection closed) if it is bad. */
static bool check_length(net_conn *c, int32_t n)
{
    if (n >= 0 && (uint64_t)n <= c->net->cfg.request_max_bytes)
        return true;
    if (n < 0)
        STAT_ADD(c->net, bad_length, 1);
    else
        STAT_ADD(c->net, oversize, 1);
    static log_ratelimit rl = LOG_RATELIMIT_INIT(LOG_RATELIMIT_DEFAULT_MS);
    log_warn_limited(&rl, "net", "bad frame length conn=%llu peer=%s len=%d max=%zu",
                     (unsigned long long)c->id, c->peer, n, c->net->cfg.request_max_bytes);
    conn_close(c, EMSGSIZE);
    return false;
}

/* Reserve the frame's announced length from the global budget (budget.c);
 * false (and the connection waits, unread) when it does not fit yet. */
static bool frame_reserve(net_conn *c, size_t n)
{
    if (c->frame_held)
        return true;
    if (!budget_take(c->net, n)) {
        if (!c->frame_waited)
            STAT_ADD(c->net, budget_waits, 1);
        c->frame_waited = true;
        budget_wait_begin(c);
        conn_set_interest(c);
        return false;
    }
    c->frame_held = true;
    c->frame_waited = false;
    c->frame_reserved = n;
    return true;
}

static bool parse_frames(net_conn *c);

void conn_budget_retry(net_conn *c)
{
    budget_wait_end(c);
    if (parse_frames(c) && c->state == CONN_OPEN)
        reactor_mark_dirty(c);
}

/* Hand out every complete frame. Returns false if the connection closed. */
static bool parse_frames(net_conn *c)
{
    while (c->state == CONN_OPEN && !c->no_read) {
        if (!c->outbound && over_limits(c, false)) {
            pause_reading(c);
            return true;
        }
        size_t have = c->in_end - c->in_start;
        if (have < NET_FRAME_HEADER_BYTES)
            return true;
        const uint8_t *p = c->in->data + c->in_start;
        int32_t n = (int32_t)be32_load(p);
        if (!check_length(c, n))
            return false;
        if (!c->outbound && !frame_reserve(c, (size_t)n))
            return true;
        if (have - NET_FRAME_HEADER_BYTES < (size_t)n)
            return true;
        c->in_start += NET_FRAME_HEADER_BYTES + (size_t)n;
        STAT_ADD(c->net, frames_in, 1);
        if (c->outbound)
            c->cb.on_frame(c, p + NET_FRAME_HEADER_BYTES, (size_t)n, c->cb.ctx);
        else
            dispatch_request(c, p + NET_FRAME_HEADER_BYTES, (size_t)n);
        if (!c->outbound && c->state == CONN_OPEN)
            pop_completed(c); /* inline replies count against output_max_bytes now */
    }
    return c->state != CONN_CLOSED;
}

/* The peer closed its side. */
static void on_eof(net_conn *c)
{
    if (c->outbound) {
        conn_close(c, 0);
        return;
    }
    stop_reading(c);
    if (work_done(c))
        conn_close(c, 0);
}

/* n > 0 bytes arrived at the end of c->in; false if the connection closed. */
static bool took_bytes(net_conn *c, size_t n)
{
    c->active_ms = clock_mono_ms();
    STAT_ADD(c->net, bytes_in, (uint64_t)n);
    c->in_end += n;
    return parse_frames(c);
}

/* on_readable of a TLS connection: until the record layer waits for the
 * socket; the read budget counts socket reads, and bytes it has already
 * decrypted are taken whatever the budget. */
static void on_readable_tls(net_conn *c)
{
    for (int i = 0; reading_wanted(c); i++) {
        if (i >= NET_READ_BUDGET && tls_pending(c) == 0)
            return;
        ensure_room(c);
        ssize_t n = tls_read(c, c->in->data + c->in_end, c->in->cap - c->in_end);
        if (n > 0) {
            if (!took_bytes(c, (size_t)n))
                return;
        } else if (n == 0) {
            on_eof(c);
            return;
        } else {
            if (n != -EAGAIN)
                conn_close(c, (int)-n);
            return;
        }
    }
}

static void on_readable(net_conn *c)
{
    for (int i = 0; i < NET_READ_BUDGET && reading_wanted(c); i++) {
        ensure_room(c);
        size_t room = c->in->cap - c->in_end;
        ssize_t n = read(c->fd, c->in->data + c->in_end, room);
        if (n > 0) {
            if (!took_bytes(c, (size_t)n) || (size_t)n < room)
                return;
        } else if (n == 0) {
            on_eof(c);
            return;
        } else if (errno == EAGAIN || errno == EINTR) {
            return;
        } else {
            conn_close(c, errno);
            return;
        }
    }
}

/* ---- events ------------------------------------------------------------------- */

static void on_connected(net_conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        conn_close(c, err);
        return;
    }
    c->state = CONN_OPEN;
    net_timer_cancel(&c->timer);
    if (c->ssl != NULL && (err = tls_conn_connected(c)) != 0) {
        conn_close(c, -err);
        return;
    }
    if (c->cb.on_connect != NULL)
        c->cb.on_connect(c, c->cb.ctx);
    if (c->state == CONN_OPEN)
        reactor_mark_dirty(c);
}

/* A TLS connection's event: the record layer may wait for either direction. */
static bool tls_wants_read(const net_conn *c, uint32_t ev)
{
    return (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) || ((ev & EPOLLOUT) && c->tls_read_wants_out);
}

void conn_on_event(net_conn *c, uint32_t ev)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->state == CONN_CONNECTING) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_connected(c);
        return;
    }
    bool tls = c->ssl != NULL;
    if (tls ? tls_wants_read(c, ev) : (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
        if (reading_wanted(c)) {
            if (tls)
                on_readable_tls(c);
            else
                on_readable(c);
        } else if (ev & (EPOLLHUP | EPOLLERR)) {
            conn_close(c, (ev & EPOLLERR) ? ECONNRESET : 0);
            return;
        }
    }
    if (c->state != CONN_CLOSED)
        reactor_mark_dirty(c); /* flush output, apply interest changes */
}

/* ---- advancing: move finished head requests to the output -------------------- */

static void mute_expired(void *arg)
{
    net_conn *c = arg;
    c->muted = false;
    reactor_mark_dirty(c); /* conn_advance resumes reading */
}

/* A response that asks for a pause: reading stops until the latest asked
 * end (the timer runs on this thread and is cancelled by conn_close). */
static void mute(net_conn *c, uint32_t ms)
{
    int64_t until = clock_mono_ms() + ms;
    if (c->muted && until <= c->muted_until_ms)
        return;
    c->muted = true;
    c->muted_until_ms = until;
    net_timer_add(c->r, &c->mute_timer, ms, mute_expired, c);
    pause_reading(c);
}

static void pop_head(net_conn *c)
{
    net_req *req = c->rq_head;
    c->rq_head = req->next;
    if (c->rq_head == NULL)
        c->rq_tail = NULL;
    CK_ASSERT(c->inflight > 0 && c->inflight_bytes >= req->len);
    c->inflight--;
    c->inflight_bytes -= req->len;
    bool live = c->state == CONN_OPEN && !c->discard;
    c->active_ms = clock_mono_ms();
    if (req->state == REQ_REPLY && live)
        conn_enqueue_reply(c, req->reply);
    if (req->mute_ms > 0 && live && !c->outbound)
        mute(c, req->mute_ms);
    if (req->state != REQ_REPLY || !live)
        net_reply_free(req->reply);
    if (req->state == REQ_CLOSE && live) {
        STAT_ADD(c->net, malformed, 1);
        c->discard = true;
        stop_reading(c);
    }
    free(req);
    conn_unref(c); /* never the last: the dirty list or the open socket holds one */
}

/* Move completed head requests to the output (invariant 3). */
static void pop_completed(net_conn *c)
{
    while (c->rq_head != NULL && c->rq_head->state != REQ_PENDING)
        pop_head(c);
}

void conn_advance(net_conn *c)
{
    pop_completed(c);
    if (c->state != CONN_OPEN)
        return;
    if (!output_flush(c))
        return;
    if (c->no_read) {
        if (work_done(c))
            conn_close(c, 0);
        else
            conn_set_interest(c);
        return;
    }
    if (c->read_paused && !over_limits(c, true)) {
        c->read_paused = false;
        if (!parse_frames(c))
            return;
        if (c->state != CONN_OPEN)
            return;
    }
    if (c->ssl != NULL && reading_wanted(c) && tls_pending(c) > 0) {
        on_readable_tls(c); /* decrypted bytes raise no epoll event */
        if (c->state == CONN_OPEN)
            reactor_mark_dirty(c);
        return;
    }
    conn_set_interest(c);
}

bool conn_idle_expired(net_conn *c, int64_t now_ms)
{
    uint32_t idle = c->net->cfg.idle_timeout_ms;
    if (c->outbound || c->state != CONN_OPEN || idle == 0 || c->rq_head != NULL ||
        c->out_head != NULL || now_ms - c->active_ms < (int64_t)idle)
        return false;
    static log_ratelimit rl = LOG_RATELIMIT_INIT(LOG_RATELIMIT_DEFAULT_MS);
    STAT_ADD(c->net, idle, 1);
    log_info_limited(&rl, "net", "closing idle connection conn=%llu peer=%s idle_ms=%lld",
                     (unsigned long long)c->id, c->peer, (long long)(now_ms - c->active_ms));
    conn_close(c, ETIMEDOUT);
    return true;
}

/* ---- registration and accessors ----------------------------------------------- */

void conn_adopt(net_conn *c)
{
    net_reactor *r = c->r;
    CK_ASSERT(net_tl_reactor == r && c->state != CONN_CLOSED);
    c->next = r->open_head;
    if (r->open_head != NULL)
        r->open_head->prev = c;
    r->open_head = c;
    r->open_count++;
    if (!c->outbound && c->h.tls != NULL && !tls_conn_start(c, c->h.tls)) {
        conn_close(c, ENOMEM);
        return;
    }
    conn_set_interest(c);
    if (!c->outbound && c->h.on_open != NULL)
        c->h.on_open(c, c->h.ctx);
    if (r->stopping && c->state == CONN_OPEN)
        conn_begin_stop(c);
}

uint64_t net_conn_id(const net_conn *c) { return c->id; }
const char *net_conn_peer(const net_conn *c) { return c->peer; }
net_reactor *net_conn_reactor(const net_conn *c) { return c->r; }
bool net_conn_is_outbound(const net_conn *c) { return c->outbound; }
bool net_conn_closed(const net_conn *c) { return atomic_load(&((net_conn *)c)->closed_any); }
void net_conn_set_user(net_conn *c, void *user) { c->user = user; }
void *net_conn_user(const net_conn *c) { return c->user; }
