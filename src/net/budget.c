/*
 * budget.c - the global budget for bytes of requests being received or
 * waiting for their answer (queued.max.request.bytes), and handing freed
 * memory back to the system.
 *
 * Accounting. When a frame's 4-byte header has arrived, the connection
 * reserves the announced length from the budget; the reservation passes to
 * the request when the frame is complete and is returned when the request is
 * completed (or the connection closes mid-frame). Memory is not allocated
 * from the announced length: the receive buffer grows as bytes arrive
 * (conn.c). A reservation is whole, so a connection that holds one can
 * always finish its frame: there is no deadlock in which every connection
 * holds part of what it needs.
 *
 * Back-pressure. A connection whose next frame does not fit stops being read
 * (it keeps the header it has) and is retried every NET_BUDGET_RETRY_MS on
 * its reactor; the connections already holding reservations go on. Frames of
 * at most NET_BUDGET_SMALL_BYTES may pass the budget by NET_BUDGET_SLACK_BYTES,
 * so that a few connections sitting on large half-sent requests do not stall
 * heartbeats and metadata requests of everybody else; they wait only past
 * that. A frame larger than the whole budget is admitted when nothing else
 * is reserved.
 *
 * Release. The allocator keeps freed request buffers for reuse (the broker
 * tunes it so). Once at least NET_TRIM_AFTER_BYTES were reserved at once and
 * the reservations fall below NET_TRIM_IDLE_BYTES, reactor 0's periodic
 * sweep calls malloc_trim(0) so that the resident size returns near its idle
 * figure.
 */
#include <malloc.h>

#include "base/util.h"
#include "net/net_int.h"

bool budget_take(net_t *net, size_t n)
{
    size_t max = net->cfg.queued_max_bytes;
    size_t limit = max + (n <= NET_BUDGET_SMALL_BYTES ? NET_BUDGET_SLACK_BYTES : 0);
    size_t cur = atomic_load_explicit(&net->queued_bytes, memory_order_relaxed);
    do {
        if (max > 0 && cur > 0 && cur + n > limit)
            return false;
    } while (!atomic_compare_exchange_weak(&net->queued_bytes, &cur, cur + n));
    size_t peak = atomic_load_explicit(&net->queued_peak, memory_order_relaxed);
    while (cur + n > peak && !atomic_compare_exchange_weak(&net->queued_peak, &peak, cur + n))
        ;
    return true;
}

void budget_put(net_t *net, size_t n)
{
    size_t old = atomic_fetch_sub_explicit(&net->queued_bytes, n, memory_order_relaxed);
    CK_ASSERT(old >= n);
}

void budget_trim_if_idle(net_t *net)
{
    size_t cur = atomic_load(&net->queued_bytes);
    if (atomic_load(&net->queued_peak) < NET_TRIM_AFTER_BYTES || cur >= NET_TRIM_IDLE_BYTES)
        return;
    atomic_store(&net->queued_peak, cur);
    malloc_trim(0);
    STAT_ADD(net, trims, 1);
}

/* ---- connections waiting for the budget ------------------------------------ */

static void budget_retry(void *arg)
{
    net_reactor *r = arg;
    net_conn *c = r->open_head;
    while (c != NULL && r->budget_waiters > 0) {
        net_conn *next = c->next;
        if (c->budget_wait)
            conn_budget_retry(c);
        c = next;
    }
    if (r->budget_waiters > 0 && !r->stopping)
        net_timer_add(r, &r->budget_timer, NET_BUDGET_RETRY_MS, budget_retry, r);
}

void budget_wait_begin(net_conn *c)
{
    net_reactor *r = c->r;
    CK_ASSERT(!c->budget_wait);
    c->budget_wait = true;
    r->budget_waiters++;
    if (!net_timer_pending(&r->budget_timer))
        net_timer_add(r, &r->budget_timer, NET_BUDGET_RETRY_MS, budget_retry, r);
}

void budget_wait_end(net_conn *c)
{
    if (!c->budget_wait)
        return;
    CK_ASSERT(c->r->budget_waiters > 0);
    c->budget_wait = false;
    c->r->budget_waiters--;
}
