/* pids.c - this node's supply of producer ids, handed out from blocks the
 * controller allocates (txn.h). */
#include <sched.h>

#include "base/util.h"
#include "proto/kerr.h"
#include "txn/txn.h"

static void pids_ready(txn_pids *p)
{
    if (atomic_load(&p->init) == 2)
        return;
    int expected = 0;
    if (atomic_compare_exchange_strong(&p->init, &expected, 1)) {
        pthread_mutex_init(&p->lock, NULL);
        atomic_store(&p->init, 2);
        return;
    }
    while (atomic_load(&p->init) != 2)
        sched_yield();
}

/* Under the lock: the next id of the current block, moving to the spare
 * block when the current one is used up. */
static bool take(txn_pids *p, int64_t *id)
{
    if (p->next == p->end && p->spare_first < p->spare_end) {
        p->next = p->spare_first;
        p->end = p->spare_end;
        p->spare_first = p->spare_end = 0;
    }
    if (p->next == p->end)
        return false;
    CK_ASSERT(p->next < p->end && p->next >= 0);
    *id = p->next++;
    return true;
}

/* Under the lock: whether to ask for a block now (marks it requested). */
static bool want_block(txn_pids *p)
{
    if (p->requesting || p->spare_first < p->spare_end)
        return false;
    if (!p->head && p->end - p->next >= TXN_PID_PREFETCH_LEFT)
        return false;
    p->requesting = true;
    return true;
}

bool txn_pids_next(txn_pids *p, txn_block_request_fn request, void *ctx, txn_pid_waiter *w,
                   int64_t *id)
{
    pids_ready(p);
    pthread_mutex_lock(&p->lock);
    bool got = !p->head && take(p, id);
    if (!got) {
        w->next = NULL;
        if (p->tail)
            p->tail->next = w;
        else
            p->head = w;
        p->tail = w;
    }
    bool ask = want_block(p);
    pthread_mutex_unlock(&p->lock);
    if (ask)
        request(ctx, p, TXN_PID_BLOCK_SIZE);
    return got;
}

/* Under the lock: detach the waiters that can be served now, each with its
 * id in ids[] (or all of them, to fail, when err != 0). */
static txn_pid_waiter *serve(txn_pids *p, int16_t err, int64_t *ids, int max, int *n)
{
    txn_pid_waiter *served = NULL, **tail = &served;
    *n = 0;
    while (p->head && *n < max && (err != KERR_NONE || take(p, &ids[*n]))) {
        txn_pid_waiter *w = p->head;
        p->head = w->next;
        if (!p->head)
            p->tail = NULL;
        w->next = NULL;
        *tail = w;
        tail = &w->next;
        (*n)++;
    }
    return served;
}

enum { SERVE_BATCH = 64 }; /* waiters answered per lock hold */

void txn_pids_block_done(txn_pids *p, int16_t err, int64_t first, int32_t count,
                         txn_block_request_fn request, void *ctx)
{
    pids_ready(p);
    pthread_mutex_lock(&p->lock);
    CK_ASSERT(p->requesting);
    p->requesting = false;
    if (err == KERR_NONE) {
        CK_ASSERT(first >= 0 && count > 0 && first <= INT64_MAX - count);
        CK_ASSERT(first >= p->end && first >= p->spare_end); /* ids only grow */
        if (p->next == p->end) {
            p->next = first;
            p->end = first + count;
        } else {
            p->spare_first = first;
            p->spare_end = first + count;
        }
    }
    for (;;) {
        int64_t ids[SERVE_BATCH];
        int n;
        txn_pid_waiter *w = serve(p, err, ids, SERVE_BATCH, &n);
        if (!w)
            break;
        pthread_mutex_unlock(&p->lock);
        for (int i = 0; w; i++) {
            txn_pid_waiter *next = w->next; /* w may be freed by its callback */
            w->fn(w->arg, err, err == KERR_NONE ? ids[i] : -1);
            w = next;
        }
        pthread_mutex_lock(&p->lock);
    }
    bool ask = err == KERR_NONE && want_block(p);
    pthread_mutex_unlock(&p->lock);
    if (ask)
        request(ctx, p, TXN_PID_BLOCK_SIZE);
}
