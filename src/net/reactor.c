/*
 * reactor.c - the epoll loop of one network thread: events, the
 * cross-thread message queue (an eventfd), timers (a min-heap driving the
 * epoll_wait timeout), the dirty list (connections whose requests completed
 * on this thread) and the graceful stop.
 *
 * One loop iteration: wait; handle every ready source; run expired timers;
 * advance dirty connections; drop the references of connections closed
 * during the iteration (the graveyard, so no event of the batch can see a
 * freed connection); check whether a stop has finished.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "net/net_int.h"

#define MSG_QUEUE_INIT 64

__thread net_reactor *net_tl_reactor;

/* ---- message queue ------------------------------------------------------ */

static bool queue_push(net_reactor *r, msg m)
{
    bool wake = false;
    pthread_mutex_lock(&r->mu);
    if (r->dead) {
        pthread_mutex_unlock(&r->mu);
        return false;
    }
    if (r->qlen == r->qcap) {
        r->qcap = r->qcap ? r->qcap * 2 : MSG_QUEUE_INIT;
        r->q = xrealloc(r->q, r->qcap * sizeof(msg));
    }
    r->q[r->qlen++] = m;
    if (!r->wake_pending) {
        r->wake_pending = true;
        wake = true;
    }
    pthread_mutex_unlock(&r->mu);
    if (wake) {
        uint64_t one = 1;
        ssize_t n = write(r->msg_fd, &one, sizeof(one));
        CK_ASSERT(n == (ssize_t)sizeof(one) || (n < 0 && errno == EAGAIN));
    }
    return true;
}

bool reactor_post(net_reactor *r, void (*ifn)(net_reactor *, void *, void *), void *a, void *b)
{
    return queue_push(r, (msg){.ifn = ifn, .a = a, .b = b});
}

bool net_post(net_reactor *r, void (*fn)(void *arg), void *arg)
{
    CK_ASSERT(r != NULL && fn != NULL);
    return queue_push(r, (msg){.ufn = fn, .a = arg});
}

bool reactor_is_dead(net_reactor *r)
{
    pthread_mutex_lock(&r->mu);
    bool d = r->dead;
    pthread_mutex_unlock(&r->mu);
    return d;
}

/* Run queued messages; with mark_dead, close the queue first (invariant 4). */
static void queue_drain(net_reactor *r, bool mark_dead)
{
    uint64_t v;
    ssize_t rn = read(r->msg_fd, &v, sizeof(v));
    UNUSED(rn); /* EAGAIN when nothing was signalled */
    for (;;) {
        pthread_mutex_lock(&r->mu);
        if (mark_dead)
            r->dead = true;
        msg *q = r->q;
        size_t n = r->qlen;
        r->q = NULL;
        r->qlen = r->qcap = 0;
        r->wake_pending = false;
        pthread_mutex_unlock(&r->mu);
        for (size_t i = 0; i < n; i++) {
            if (q[i].ifn != NULL)
                q[i].ifn(r, q[i].a, q[i].b);
            else
                q[i].ufn(q[i].a);
        }
        free(q);
        if (n == 0 || !mark_dead)
            return;
    }
}

/* ---- timers -------------------------------------------------------------- */

static bool timer_before(const net_timer *a, const net_timer *b)
{
    return a->deadline_ms < b->deadline_ms || (a->deadline_ms == b->deadline_ms && a->seq < b->seq);
}

static void heap_set(net_reactor *r, uint32_t i, net_timer *t)
{
    r->heap[i] = t;
    t->heap_idx = i;
}

static void heap_up(net_reactor *r, uint32_t i)
{
    net_timer *t = r->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!timer_before(t, r->heap[p]))
            break;
        heap_set(r, i, r->heap[p]);
        i = p;
    }
    heap_set(r, i, t);
}

static void heap_down(net_reactor *r, uint32_t i)
{
    net_timer *t = r->heap[i];
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        net_timer *best = t;
        if (l < r->heap_len && timer_before(r->heap[l], best))
            m = l, best = r->heap[l];
        if (l + 1 < r->heap_len && timer_before(r->heap[l + 1], best))
            m = l + 1, best = r->heap[l + 1];
        if (m == i)
            break;
        heap_set(r, i, best);
        i = m;
    }
    heap_set(r, i, t);
}

static void heap_remove(net_reactor *r, uint32_t i)
{
    CK_ASSERT(i < r->heap_len);
    net_timer *gone = r->heap[i];
    net_timer *last = r->heap[--r->heap_len];
    gone->heap_idx = UINT32_MAX;
    if (i == r->heap_len)
        return;
    heap_set(r, i, last);
    heap_down(r, i);
    heap_up(r, last->heap_idx);
}

void net_timer_init(net_timer *t) { *t = (net_timer)NET_TIMER_INIT; }

bool net_timer_pending(const net_timer *t) { return t->heap_idx != UINT32_MAX; }

void net_timer_add(net_reactor *r, net_timer *t, uint64_t delay_ms, void (*cb)(void *arg), void *arg)
{
    CK_ASSERT(r != NULL && t != NULL && cb != NULL);
    CK_ASSERT(net_tl_reactor == r || !r->thread_started);
    if (net_timer_pending(t))
        net_timer_cancel(t);
    if (delay_ms > INT32_MAX)
        delay_ms = INT32_MAX;
    t->reactor = r;
    t->cb = cb;
    t->arg = arg;
    t->deadline_ms = clock_mono_ms() + (int64_t)delay_ms;
    t->seq = r->timer_seq++;
    if (r->heap_len == r->heap_cap) {
        r->heap_cap = r->heap_cap ? r->heap_cap * 2 : 16;
        r->heap = xrealloc(r->heap, r->heap_cap * sizeof(net_timer *));
    }
    heap_set(r, r->heap_len++, t);
    heap_up(r, t->heap_idx);
}

bool net_timer_cancel(net_timer *t)
{
    if (!net_timer_pending(t))
        return false;
    net_reactor *r = t->reactor;
    CK_ASSERT(net_tl_reactor == r || !r->thread_started);
    CK_ASSERT(r != NULL && r->heap[t->heap_idx] == t);
    heap_remove(r, t->heap_idx);
    return true;
}

static void timers_run(net_reactor *r)
{
    int64_t now = clock_mono_ms();
    while (r->heap_len > 0 && r->heap[0]->deadline_ms <= now) {
        net_timer *t = r->heap[0];
        heap_remove(r, 0);
        t->cb(t->arg);
    }
}

static int wait_timeout_ms(net_reactor *r)
{
    int64_t next = -1;
    if (r->heap_len > 0)
        next = r->heap[0]->deadline_ms;
    if (r->stopping && (next < 0 || r->stop_deadline_ms < next))
        next = r->stop_deadline_ms;
    if (r->dirty_head != NULL || r->grave_head != NULL)
        return 0;
    if (next < 0)
        return -1;
    int64_t d = next - clock_mono_ms();
    return d <= 0 ? 0 : (int)MIN(d, INT32_MAX);
}

/* ---- dirty list and graveyard -------------------------------------------- */

void reactor_mark_dirty(net_conn *c)
{
    net_reactor *r = c->r;
    CK_ASSERT(net_tl_reactor == r);
    if (c->dirty)
        return;
    c->dirty = true;
    conn_ref(c);
    c->dirty_next = r->dirty_head;
    r->dirty_head = c;
}

static void dirty_run(net_reactor *r)
{
    while (r->dirty_head != NULL) {
        net_conn *c = r->dirty_head;
        r->dirty_head = c->dirty_next;
        c->dirty_next = NULL;
        c->dirty = false;
        conn_advance(c);
        conn_unref(c);
    }
}

static void grave_run(net_reactor *r)
{
    while (r->grave_head != NULL) {
        net_conn *c = r->grave_head;
        r->grave_head = c->grave_next;
        conn_unref(c);
    }
}

/* ---- stop ------------------------------------------------------------------- */

static void begin_stop(net_reactor *r)
{
    if (r->stopping)
        return;
    r->stopping = true;
    r->stop_deadline_ms = clock_mono_ms() + r->net->cfg.shutdown_timeout_ms;
    net_timer_cancel(&r->idle_sweep);
    net_timer_cancel(&r->budget_timer);
    epoll_ctl(r->ep, EPOLL_CTL_DEL, r->net->stop_fd, NULL);
    if (r->index == 0)
        listeners_close(r->net);
    net_conn *c = r->open_head;
    while (c != NULL) {
        net_conn *next = c->next;
        conn_begin_stop(c);
        c = next;
    }
}

static bool stop_done(net_reactor *r)
{
    return r->stopping && (r->open_head == NULL || clock_mono_ms() >= r->stop_deadline_ms);
}

/* The loop has ended: close what is left, then kill the queue (invariant 4). */
static void reactor_finish(net_reactor *r)
{
    if (r->open_head != NULL)
        log_warn("net", "shutdown deadline passed reactor=%d open=%u", r->index, r->open_count);
    while (r->open_head != NULL)
        conn_close(r->open_head, ESHUTDOWN);
    dirty_run(r);
    queue_drain(r, true);
    grave_run(r);
    while (r->heap_len > 0)
        heap_remove(r, r->heap_len - 1);
}

/* ---- idle connections ---------------------------------------------------------- */

static uint32_t idle_period_ms(const net_reactor *r)
{
    uint32_t idle = r->net->cfg.idle_timeout_ms;
    return idle == 0 ? NET_IDLE_SWEEP_MAX_MS : MAX(1u, MIN(idle / 2, (uint32_t)NET_IDLE_SWEEP_MAX_MS));
}

static void idle_sweep(void *arg)
{
    net_reactor *r = arg;
    int64_t now = clock_mono_ms();
    net_conn *c = r->open_head;
    while (c != NULL) {
        net_conn *next = c->next;
        conn_idle_expired(c, now);
        c = next;
    }
    if (r->index == 0)
        budget_trim_if_idle(r->net);
    if (!r->stopping)
        net_timer_add(r, &r->idle_sweep, idle_period_ms(r), idle_sweep, r);
}

/* ---- loop ----------------------------------------------------------------------- */

static void dispatch(net_reactor *r, struct epoll_event *ev)
{
    src_t *s = ev->data.ptr;
    switch (s->kind) {
    case SRC_CONN:
        conn_on_event((net_conn *)s, ev->events);
        break;
    case SRC_LISTENER:
        if (!r->stopping)
            listener_on_accept(r, (listener *)s);
        break;
    case SRC_MSG:
        queue_drain(r, false);
        break;
    case SRC_STOP:
        begin_stop(r);
        break;
    default:
        CK_PANIC("bad epoll source kind %d", s->kind);
    }
}

void *reactor_main(void *arg)
{
    net_reactor *r = arg;
    net_tl_reactor = r;
    struct epoll_event evs[NET_EPOLL_BATCH];
    net_timer_add(r, &r->idle_sweep, idle_period_ms(r), idle_sweep, r);
    while (!stop_done(r)) {
        int n = epoll_wait(r->ep, evs, NET_EPOLL_BATCH, wait_timeout_ms(r));
        if (n < 0) {
            CK_ASSERT(errno == EINTR);
            continue;
        }
        for (int i = 0; i < n; i++)
            dispatch(r, &evs[i]);
        timers_run(r);
        dirty_run(r);
        grave_run(r);
    }
    reactor_finish(r);
    net_tl_reactor = NULL;
    return NULL;
}

static void ep_add(net_reactor *r, int fd, src_t *s)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        CK_PANIC("epoll_ctl add fd=%d: %s", fd, strerror(errno));
}

void reactor_init(net_t *net, net_reactor *r, int index)
{
    memset(r, 0, sizeof(*r));
    r->net = net;
    r->index = index;
    r->ep = epoll_create1(EPOLL_CLOEXEC);
    r->msg_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->ep < 0 || r->msg_fd < 0)
        CK_PANIC("reactor %d: epoll/eventfd: %s", index, strerror(errno));
    pthread_mutex_init(&r->mu, NULL);
    r->msg_src.kind = SRC_MSG;
    r->stop_src.kind = SRC_STOP;
    net_timer_init(&r->idle_sweep);
    net_timer_init(&r->budget_timer);
    ep_add(r, r->msg_fd, &r->msg_src);
    ep_add(r, net->stop_fd, &r->stop_src);
}

void reactor_destroy(net_reactor *r)
{
    CK_ASSERT(r->open_head == NULL && r->dirty_head == NULL && r->grave_head == NULL);
    if (!r->dead)
        queue_drain(r, true); /* never started: run (kill) what was posted */
    close(r->ep);
    close(r->msg_fd);
    pthread_mutex_destroy(&r->mu);
    free(r->q);
    free(r->heap);
}

int net_reactor_index(const net_reactor *r) { return r->index; }

net_reactor *net_current_reactor(void) { return net_tl_reactor; }
