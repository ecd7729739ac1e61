/* txn.c - one transactional id's state machine (tcoord.h). Pure: the
 * caller passes the time and fresh producer ids, stores the states this
 * computes and applies them once durable. Errors follow Kafka's
 * TransactionCoordinator; a fenced producer is PRODUCER_FENCED here and
 * the handlers turn it into INVALID_PRODUCER_EPOCH for old versions. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "proto/kerr.h"
#include "tcoord/tcoord.h"
#include "txn/txn.h"

static const char *const state_names[TCOORD_STATE_COUNT] = {
    "Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead",
    "PrepareEpochFence",
};

const char *tcoord_state_name(tcoord_state s)
{
    return (unsigned)s < TCOORD_STATE_COUNT ? state_names[s] : "Unknown";
}

bool tcoord_state_parse(const char *s, size_t len, tcoord_state *out)
{
    for (int i = 0; i < TCOORD_STATE_COUNT; i++) {
        if (strlen(state_names[i]) == len && memcmp(state_names[i], s, len) == 0) {
            *out = (tcoord_state)i;
            return true;
        }
    }
    return false;
}

/* ---- metadata ------------------------------------------------------------------- */

static int tp_cmp(const void *a, const void *b)
{
    const tcoord_tp *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

void tcoord_meta_copy(tcoord_meta *dst, const tcoord_meta *src)
{
    *dst = *src;
    dst->parts = src->nparts ? xmalloc((size_t)src->nparts * sizeof *dst->parts) : NULL;
    for (int32_t i = 0; i < src->nparts; i++)
        dst->parts[i] = (tcoord_tp){xstrdup(src->parts[i].topic), src->parts[i].partition};
}

static void parts_free(tcoord_tp *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        free(p[i].topic);
    free(p);
}

void tcoord_meta_free(tcoord_meta *m)
{
    parts_free(m->parts, m->nparts);
    m->parts = NULL;
    m->nparts = 0;
}

bool tcoord_meta_has(const tcoord_meta *m, const char *topic, int32_t partition)
{
    tcoord_tp key = {(char *)topic, partition};
    return m->nparts > 0 && bsearch(&key, m->parts, (size_t)m->nparts, sizeof key, tp_cmp) != NULL;
}

/* Adds parts to m (kept sorted, without duplicates). */
static void meta_union(tcoord_meta *m, const tcoord_tp *parts, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        if (tcoord_meta_has(m, parts[i].topic, parts[i].partition))
            continue;
        m->parts = xrealloc(m->parts, (size_t)(m->nparts + 1) * sizeof *m->parts);
        m->parts[m->nparts++] = (tcoord_tp){xstrdup(parts[i].topic), parts[i].partition};
        qsort(m->parts, (size_t)m->nparts, sizeof *m->parts, tp_cmp);
    }
}

/* ---- the id ----------------------------------------------------------------------- */

tcoord_txn *tcoord_txn_new(const char *id)
{
    tcoord_txn *t = xcalloc(1, sizeof *t);
    t->id = xstrdup(id);
    t->m = (tcoord_meta){.producer_id = -1, .epoch = -1, .state = TCOORD_EMPTY, .update_ms = -1, .start_ms = -1,
                         .last_epoch = -1};
    return t;
}

void tcoord_txn_free(tcoord_txn *t)
{
    if (!t)
        return;
    tcoord_meta_free(&t->m);
    parts_free(t->left, t->nleft);
    free(t->id);
    free(t);
}

void tcoord_txn_check(const tcoord_txn *t)
{
    tcoord_state s = t->m.state;
    bool with_parts = s == TCOORD_ONGOING || s == TCOORD_PREPARE_COMMIT || s == TCOORD_PREPARE_ABORT;
    CK_ASSERT(with_parts || t->m.nparts == 0);
    CK_ASSERT(s != TCOORD_ONGOING || t->m.nparts > 0);
    CK_ASSERT(t->m.producer_id < 0 || t->m.epoch >= 0);
    CK_ASSERT(t->nleft <= t->m.nparts && t->inflight >= 0);
}

static bool preparing(tcoord_state s) { return s == TCOORD_PREPARE_COMMIT || s == TCOORD_PREPARE_ABORT; }
static bool completed(tcoord_state s) { return s == TCOORD_COMPLETE_COMMIT || s == TCOORD_COMPLETE_ABORT; }

/* The state t would have with a new epoch (or a new id once exhausted). */
static void bumped(const tcoord_txn *t, int64_t fresh_pid, tcoord_meta *next)
{
    tcoord_meta_copy(next, &t->m);
    if (t->m.producer_id < 0 || t->m.epoch >= TXN_EPOCH_EXHAUSTED) {
        next->producer_id = fresh_pid;
        next->epoch = 0;
    } else {
        next->epoch = (int16_t)(t->m.epoch + 1);
    }
}

/* Whether a client claiming (pid, epoch) may re-initialise (KIP-360):
 * its current epoch, or (*retry) the one before the bump it asked for. */
static int16_t init_fence(const tcoord_txn *t, int64_t pid, int16_t epoch, bool *retry)
{
    *retry = false;
    if (pid < 0 || epoch == t->m.epoch)
        return pid < 0 || pid == t->m.producer_id ? KERR_NONE : KERR_PRODUCER_FENCED;
    *retry = pid == t->m.producer_id && epoch >= 0 && epoch == t->m.last_epoch;
    return *retry ? KERR_NONE : KERR_PRODUCER_FENCED;
}

int16_t tcoord_txn_init(const tcoord_txn *t, int64_t pid, int16_t epoch, int64_t fresh_pid, int32_t timeout_ms,
                        int64_t now_ms, tcoord_meta *next, bool *write, bool *abort_first)
{
    *write = false;
    *abort_first = false;
    if (t->pending || preparing(t->m.state) || t->m.state == TCOORD_DEAD ||
        t->m.state == TCOORD_PREPARE_EPOCH_FENCE)
        return KERR_CONCURRENT_TRANSACTIONS;
    bool retry = false;
    int16_t err = t->m.producer_id >= 0 ? init_fence(t, pid, epoch, &retry) : KERR_NONE;
    if (err || (retry && t->m.state != TCOORD_ONGOING))
        return err; /* a retry: the caller answers with the current id and epoch */
    bumped(t, fresh_pid, next);
    if (pid >= 0 && next->producer_id == t->m.producer_id)
        next->last_epoch = t->m.epoch;
    next->timeout_ms = timeout_ms;
    next->update_ms = now_ms;
    *write = true;
    if (t->m.state == TCOORD_ONGOING) {
        next->state = TCOORD_PREPARE_ABORT; /* the old producer's transaction goes first */
        next->timeout_ms = t->m.timeout_ms;
        *abort_first = true;
        return KERR_NONE;
    }
    tcoord_meta_free(next);
    next->state = TCOORD_EMPTY;
    next->start_ms = -1;
    return KERR_NONE;
}

/* The checks every request of a producer in a transaction passes. */
static int16_t producer_check(const tcoord_txn *t, int64_t pid, int16_t epoch)
{
    if (t->m.producer_id < 0 || t->m.producer_id != pid)
        return KERR_INVALID_PRODUCER_ID_MAPPING;
    if (epoch != t->m.epoch)
        return KERR_PRODUCER_FENCED;
    return KERR_NONE;
}

int16_t tcoord_txn_add(const tcoord_txn *t, int64_t pid, int16_t epoch, const tcoord_tp *parts, int32_t n,
                       int64_t now_ms, tcoord_meta *next, bool *write)
{
    *write = false;
    int16_t err = producer_check(t, pid, epoch);
    if (err)
        return err;
    if (t->pending || preparing(t->m.state))
        return KERR_CONCURRENT_TRANSACTIONS;
    if (t->m.state == TCOORD_DEAD || t->m.state == TCOORD_PREPARE_EPOCH_FENCE)
        return KERR_INVALID_TXN_STATE;
    if (n == 0)
        return KERR_NONE; /* nothing to add */
    bool all = t->m.state == TCOORD_ONGOING;
    for (int32_t i = 0; all && i < n; i++)
        all = tcoord_meta_has(&t->m, parts[i].topic, parts[i].partition);
    if (all)
        return KERR_NONE;
    if (t->m.nparts + n > TCOORD_PARTS_MAX)
        return KERR_INVALID_REQUEST;
    tcoord_meta_copy(next, &t->m);
    if (t->m.state != TCOORD_ONGOING) {
        tcoord_meta_free(next);
        next->start_ms = now_ms;
    }
    meta_union(next, parts, n);
    next->state = TCOORD_ONGOING;
    next->update_ms = now_ms;
    *write = true;
    return KERR_NONE;
}

int16_t tcoord_txn_verify(const tcoord_txn *t, int64_t pid, int16_t epoch, const char *topic, int32_t partition)
{
    int16_t err = producer_check(t, pid, epoch);
    if (err)
        return err;
    if (preparing(t->m.state))
        return KERR_CONCURRENT_TRANSACTIONS;
    if (t->m.state != TCOORD_ONGOING || !tcoord_meta_has(&t->m, topic, partition))
        return KERR_INVALID_TXN_STATE;
    return KERR_NONE;
}

/* EndTxn on a transaction that has ended or is ending. */
static int16_t end_again(tcoord_state s, bool commit)
{
    bool same = commit ? (s == TCOORD_COMPLETE_COMMIT || s == TCOORD_PREPARE_COMMIT)
                       : (s == TCOORD_COMPLETE_ABORT || s == TCOORD_PREPARE_ABORT);
    if (!same)
        return KERR_INVALID_TXN_STATE;
    return preparing(s) ? KERR_CONCURRENT_TRANSACTIONS : KERR_NONE;
}

int16_t tcoord_txn_end(const tcoord_txn *t, int64_t pid, int16_t epoch, bool commit, int64_t now_ms,
                       tcoord_meta *next, bool *write)
{
    *write = false;
    int16_t err = producer_check(t, pid, epoch);
    if (err)
        return err;
    if (t->pending)
        return KERR_CONCURRENT_TRANSACTIONS;
    if (preparing(t->m.state) || completed(t->m.state))
        return end_again(t->m.state, commit);
    if (t->m.state != TCOORD_ONGOING)
        return KERR_INVALID_TXN_STATE;
    tcoord_meta_copy(next, &t->m);
    next->state = commit ? TCOORD_PREPARE_COMMIT : TCOORD_PREPARE_ABORT;
    next->update_ms = now_ms;
    *write = true;
    return KERR_NONE;
}

bool tcoord_txn_timed_out(const tcoord_txn *t, int64_t now_ms, tcoord_meta *next)
{
    if (t->pending || t->m.state != TCOORD_ONGOING || t->m.start_ms < 0 ||
        now_ms < t->m.start_ms + t->m.timeout_ms)
        return false;
    bumped(t, t->m.producer_id, next);
    if (next->producer_id != t->m.producer_id) { /* exhausted: abort at the last epoch */
        next->producer_id = t->m.producer_id;
        next->epoch = t->m.epoch;
    }
    next->last_epoch = -1; /* the producer is fenced, not retrying */
    next->state = TCOORD_PREPARE_ABORT;
    next->update_ms = now_ms;
    return true;
}

void tcoord_txn_complete(const tcoord_txn *t, int64_t now_ms, tcoord_meta *next)
{
    CK_ASSERT(preparing(t->m.state) && !t->pending);
    tcoord_meta_copy(next, &t->m);
    tcoord_meta_free(next);
    next->state = t->m.state == TCOORD_PREPARE_COMMIT ? TCOORD_COMPLETE_COMMIT : TCOORD_COMPLETE_ABORT;
    next->update_ms = now_ms;
    next->start_ms = -1;
}

bool tcoord_txn_expired(const tcoord_txn *t, int64_t now_ms, int64_t expiration_ms)
{
    return !t->pending && (t->m.state == TCOORD_EMPTY || completed(t->m.state)) && t->m.update_ms >= 0 &&
           now_ms - t->m.update_ms >= expiration_ms;
}

void tcoord_txn_apply(tcoord_txn *t, tcoord_meta *next)
{
    tcoord_meta_free(&t->m);
    t->m = *next;
    *next = (tcoord_meta){.parts = NULL, .nparts = 0};
    parts_free(t->left, t->nleft);
    t->left = NULL;
    t->nleft = 0;
    if (preparing(t->m.state)) {
        tcoord_meta tmp;
        tcoord_meta_copy(&tmp, &t->m);
        t->left = tmp.parts;
        t->nleft = tmp.nparts;
    }
    t->round++;
    t->retry_ms = 0;
    t->warned = false;
    tcoord_txn_check(t);
}
