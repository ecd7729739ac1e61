/* coord.c - the transaction coordinator: requests from the broker's
 * handlers, the creation of __transaction_state, and the thread that
 * follows leadership, aborts transactions past their timeout, expires idle
 * ids and retries markers (tcoord.h, coord_int.h). */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "group/group.h"
#include "proto/kerr.h"
#include "tcoord/coord_int.h"

/* ---- references and lookups ---------------------------------------------------- */

void tc_ref(tcoord *c) { atomic_fetch_add(&c->refs, 1); }

static void tc_free(tcoord *c)
{
    size_t it = 0;
    void *v;
    while (hmap_next(&c->txns, &it, NULL, NULL, &v))
        tcoord_txn_free(v);
    hmap_free(&c->txns);
    free(c->loaded_epoch);
    free(c->gen);
    CK_ASSERT(c->topic.waiters == NULL && c->clients == NULL && c->parked == NULL);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

void tc_unref(tcoord *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1)
        tc_free(c);
}

int32_t tc_partition_of(const tcoord *c, const char *txn_id)
{
    if (c->topic.npartitions <= 0)
        return -1;
    return group_rec_partition(txn_id, strlen(txn_id), c->topic.npartitions);
}

tcoord_txn *tc_txn(tcoord *c, const char *id, bool create)
{
    tcoord_txn *t = hmap_get(&c->txns, id, strlen(id));
    if (!t && create) {
        t = tcoord_txn_new(id);
        hmap_put(&c->txns, t->id, strlen(t->id), t);
    }
    return t;
}

/* ---- __transaction_state ------------------------------------------------------------ */

static void hold(void *owner, bool take)
{
    if (take)
        tc_ref(owner);
    else
        tc_unref(owner);
}

bool tcoord_ensure(tcoord *c, tcoord_ready_fn done, void *arg)
{
    return meta_itopic_ensure(&c->topic, done, arg);
}

/* Why this node cannot serve txn_id now, or KERR_NONE. */
static int16_t unavailable(tcoord *c, const char *txn_id, tfx *f)
{
    if (c->stopping)
        return KERR_NOT_COORDINATOR;
    if (!meta_itopic_ready(&c->topic))
        return KERR_COORDINATOR_NOT_AVAILABLE;
    return tc_own(c, txn_id, f);
}

/* ---- requests ----------------------------------------------------------------------- */

static void init_locked(tcoord *c, const char *txn_id, int32_t timeout_ms, int64_t pid, int16_t epoch,
                        int64_t fresh_pid, tcoord_done_fn done, void *arg, tfx *f)
{
    int16_t err = unavailable(c, txn_id, f);
    if (!err && (timeout_ms <= 0 || timeout_ms > c->cfg.max_timeout_ms))
        err = KERR_INVALID_TRANSACTION_TIMEOUT;
    if (err) {
        tfx_answer(f, done, arg, err, -1, -1);
        return;
    }
    tcoord_txn *t = tc_txn(c, txn_id, true);
    tcoord_meta next;
    bool write, abort_first;
    err = tcoord_txn_init(t, pid, epoch, fresh_pid, timeout_ms, clock_wall_ms(), &next, &write, &abort_first);
    if (err || !write) {
        tfx_answer(f, done, arg, err, t->m.producer_id, t->m.epoch);
    } else {
        if (abort_first)
            log_info("tcoord", "aborting the previous producer's transaction txn=%s epoch=%d", txn_id, next.epoch);
        tc_store(c, t, &next, done, arg, abort_first ? KERR_CONCURRENT_TRANSACTIONS : -1, f);
    }
    if (t->m.producer_id < 0 && !t->pending) { /* never initialised: forget it */
        hmap_del(&c->txns, t->id, strlen(t->id));
        tcoord_txn_free(t);
    }
}

void tcoord_init_pid(tcoord *c, const char *txn_id, int32_t timeout_ms, int64_t pid, int16_t epoch,
                     int64_t fresh_pid, tcoord_done_fn done, void *arg)
{
    tfx f;
    tfx_init(&f);
    pthread_mutex_lock(&c->lock);
    init_locked(c, txn_id, timeout_ms, pid, epoch, fresh_pid, done, arg, &f);
    pthread_mutex_unlock(&c->lock);
    tfx_run(&f);
}

/* The id for a producer's request: NULL with *err when it cannot go on. */
static tcoord_txn *known(tcoord *c, const char *txn_id, int16_t *err, tfx *f)
{
    *err = unavailable(c, txn_id, f);
    tcoord_txn *t = *err ? NULL : tc_txn(c, txn_id, false);
    if (!*err && !t)
        *err = KERR_INVALID_PRODUCER_ID_MAPPING;
    return t;
}

/* AddPartitionsToTxn (parts) or EndTxn (parts NULL: commit says how). */
typedef struct producer_req {
    int64_t pid;
    int16_t epoch;
    const tcoord_tp *parts;
    int32_t n;
    bool commit;
} producer_req;

static void park(tcoord *c, const char *txn_id, const producer_req *in, tcoord_done_fn done, void *arg,
                 int64_t until_ms)
{
    tparked *w = xcalloc(1, sizeof *w);
    *w = (tparked){.txn_id = xstrdup(txn_id), .pid = in->pid, .epoch = in->epoch, .n = in->n,
                   .parts = xcalloc((size_t)MAX(in->n, 1), sizeof *w->parts), .done = done, .arg = arg,
                   .until_ms = until_ms};
    for (int32_t i = 0; i < in->n; i++)
        w->parts[i] = (tcoord_tp){xstrdup(in->parts[i].topic), in->parts[i].partition};
    tparked **tail = &c->parked;
    while (*tail)
        tail = &(*tail)->next;
    *tail = w;
}

static void parked_free(tparked *w)
{
    for (int32_t i = 0; i < w->n; i++)
        free(w->parts[i].topic);
    free(w->parts);
    free(w->txn_id);
    free(w);
}

/* Under the lock: an add refused only because the previous transaction is
 * still ending waits (parked) until park_until_ms. */
static void request_locked(tcoord *c, const char *txn_id, const producer_req *in, tcoord_done_fn done, void *arg,
                           int64_t park_until_ms, tfx *f)
{
    int16_t err;
    tcoord_txn *t = known(c, txn_id, &err, f);
    tcoord_meta next;
    bool write = false;
    int64_t now = clock_wall_ms();
    if (t && in->parts)
        err = tcoord_txn_add(t, in->pid, in->epoch, in->parts, in->n, now, &next, &write);
    else if (t)
        err = tcoord_txn_end(t, in->pid, in->epoch, in->commit, now, &next, &write);
    if (write)
        tc_store(c, t, &next, done, arg, -1, f);
    else if (err == KERR_CONCURRENT_TRANSACTIONS && in->parts && now < park_until_ms)
        park(c, txn_id, in, done, arg, park_until_ms);
    else
        tfx_answer(f, done, arg, err, in->pid, in->epoch);
}

static void producer_request(tcoord *c, const char *txn_id, const producer_req *in, tcoord_done_fn done, void *arg)
{
    tfx f;
    tfx_init(&f);
    pthread_mutex_lock(&c->lock);
    request_locked(c, txn_id, in, done, arg, clock_wall_ms() + TCOORD_PARK_MS, &f);
    pthread_mutex_unlock(&c->lock);
    tfx_run(&f);
}

/* The thread, under the lock: parked adds try again (in arrival order, so
 * one that goes through first keeps the others waiting for its record);
 * returns the earliest deadline still to come. */
static int64_t retry_parked(tcoord *c, tfx *f)
{
    tparked *w = c->parked;
    c->parked = NULL;
    while (w) {
        tparked *next = w->next;
        producer_req in = {w->pid, w->epoch, w->parts, w->n, false};
        request_locked(c, w->txn_id, &in, w->done, w->arg, w->until_ms, f);
        parked_free(w);
        w = next;
    }
    int64_t due = INT64_MAX;
    for (w = c->parked; w; w = w->next)
        due = MIN(due, w->until_ms);
    return due;
}

/* At stop: every parked add is answered NOT_COORDINATOR. */
static void drop_parked(tcoord *c, tfx *f)
{
    while (c->parked) {
        tparked *w = c->parked;
        c->parked = w->next;
        tfx_answer(f, w->done, w->arg, KERR_NOT_COORDINATOR, -1, -1);
        parked_free(w);
    }
}

void tcoord_add(tcoord *c, const char *txn_id, int64_t pid, int16_t epoch, const tcoord_tp *parts, int32_t n,
                tcoord_done_fn done, void *arg)
{
    static const tcoord_tp none;
    producer_req in = {pid, epoch, n > 0 ? parts : &none, n, false};
    producer_request(c, txn_id, &in, done, arg);
}

void tcoord_end(tcoord *c, const char *txn_id, int64_t pid, int16_t epoch, bool commit, tcoord_done_fn done,
                void *arg)
{
    producer_req in = {pid, epoch, NULL, 0, commit};
    producer_request(c, txn_id, &in, done, arg);
}

void tcoord_verify(tcoord *c, const char *txn_id, int64_t pid, int16_t epoch, const tcoord_tp *parts, int32_t n,
                   int16_t *errs)
{
    tfx f;
    tfx_init(&f);
    pthread_mutex_lock(&c->lock);
    int16_t err;
    tcoord_txn *t = known(c, txn_id, &err, &f);
    for (int32_t i = 0; i < n; i++)
        errs[i] = t ? tcoord_txn_verify(t, pid, epoch, parts[i].topic, parts[i].partition) : err;
    pthread_mutex_unlock(&c->lock);
    tfx_run(&f);
}

int16_t tcoord_describe(tcoord *c, const char *txn_id, tcoord_view_fn fn, void *arg)
{
    tfx f;
    tfx_init(&f);
    pthread_mutex_lock(&c->lock);
    int16_t err = unavailable(c, txn_id, &f);
    if (!err)
        fn(arg, tc_txn(c, txn_id, false));
    pthread_mutex_unlock(&c->lock);
    tfx_run(&f);
    return err;
}

void tcoord_each(tcoord *c, tcoord_view_fn fn, void *arg)
{
    pthread_mutex_lock(&c->lock);
    size_t it = 0;
    void *v;
    while (hmap_next(&c->txns, &it, NULL, NULL, &v))
        fn(arg, v);
    pthread_mutex_unlock(&c->lock);
}

/* ---- the thread ------------------------------------------------------------------------ */

/* Ongoing transactions past their timeout are aborted at a bumped epoch. */
static void abort_timed_out(tcoord *c, int64_t now, tfx *f)
{
    size_t it = 0;
    void *v;
    while (hmap_next(&c->txns, &it, NULL, NULL, &v)) {
        tcoord_txn *t = v;
        tcoord_meta next;
        if (tcoord_txn_timed_out(t, now, &next)) {
            log_info("tcoord", "aborting a timed-out transaction txn=%s producer_id=%lld epoch=%d", t->id,
                     (long long)next.producer_id, next.epoch);
            tc_store(c, t, &next, NULL, NULL, -1, f);
        }
    }
}

/* Idle ids past transactional.id.expiration.ms get a tombstone. */
static void expire_ids(tcoord *c, int64_t now, tfx *f)
{
    size_t it = 0;
    void *v;
    while (hmap_next(&c->txns, &it, NULL, NULL, &v)) {
        tcoord_txn *t = v;
        if (tcoord_txn_expired(t, now, c->cfg.id_expiration_ms)) {
            log_info("tcoord", "transactional id expired txn=%s", t->id);
            tc_store(c, t, NULL, NULL, NULL, -1, f);
        }
    }
}

/* Marker rounds that are due; returns the earliest one still to come. */
static int64_t retry_markers(tcoord *c, int64_t now, tfx *f)
{
    int64_t next = INT64_MAX;
    size_t it = 0;
    void *v;
    while (hmap_next(&c->txns, &it, NULL, NULL, &v)) {
        tcoord_txn *t = v;
        bool prep = t->m.state == TCOORD_PREPARE_COMMIT || t->m.state == TCOORD_PREPARE_ABORT;
        if (!prep || t->pending || t->inflight > 0)
            continue;
        if (t->retry_ms <= now)
            tc_markers_round(c, t, f);
        else
            next = MIN(next, t->retry_ms);
    }
    return next;
}

static int64_t tick(tcoord *c, int64_t now, tfx *f)
{
    if (c->topic.npartitions <= 0)
        c->topic.npartitions = meta_topic_partitions(c->meta, TCOORD_TOPIC);
    if (c->topic.npartitions > 0)
        tc_own_all(c, f);
    if (now >= c->abort_due_ms) {
        abort_timed_out(c, now, f);
        c->abort_due_ms = now + c->cfg.abort_check_ms;
    }
    if (now >= c->expire_due_ms) {
        expire_ids(c, now, f);
        c->expire_due_ms = now + c->cfg.expire_check_ms;
    }
    int64_t next = MIN(retry_markers(c, now, f), now + TCOORD_TICK_MS);
    next = MIN(next, retry_parked(c, f));
    return MIN(next, MIN(c->abort_due_ms, c->expire_due_ms));
}

static void *tc_thread(void *arg)
{
    tcoord *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        tfx f;
        tfx_init(&f);
        int64_t wake = tick(c, clock_wall_ms(), &f);
        if (f.jobs || f.sends || f.answers) {
            pthread_mutex_unlock(&c->lock);
            tfx_run(&f);
            pthread_mutex_lock(&c->lock);
        }
        if (c->stopping)
            break;
        struct timespec ts = {.tv_sec = (time_t)(wake / 1000), .tv_nsec = (long)(wake % 1000) * 1000000L};
        pthread_cond_timedwait(&c->cond, &c->lock, &ts);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- start and stop --------------------------------------------------------------------- */

tcoord *tcoord_start(const tcoord_config *cfg, struct meta *meta, struct replica_mgr *replicas)
{
    CK_ASSERT(cfg->abort_check_ms > 0 && cfg->expire_check_ms > 0 && cfg->max_timeout_ms > 0);
    tcoord *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    atomic_store(&c->refs, 1);
    c->cfg = *cfg;
    c->meta = meta;
    c->replicas = replicas;
    hmap_init(&c->txns);
    c->topic = (meta_itopic){.meta = meta, .name = TCOORD_TOPIC, .module = "tcoord", .partitions = cfg->partitions,
                             .replication_factor = cfg->replication_factor, .lock = &c->lock, .hold = hold,
                             .owner = c};
    int64_t now = clock_wall_ms();
    c->abort_due_ms = now + cfg->abort_check_ms;
    c->expire_due_ms = now + cfg->expire_check_ms;
    if (pthread_create(&c->thread, NULL, tc_thread, c) != 0)
        CK_PANIC("cannot start the transaction coordinator thread");
    return c;
}

void tcoord_set_peer_security(tcoord *c, const kclient_security *sec)
{
    pthread_mutex_lock(&c->lock);
    c->peer_security = sec;
    pthread_mutex_unlock(&c->lock);
}

void tcoord_connect(tcoord *c, struct net *net)
{
    pthread_mutex_lock(&c->lock);
    c->net = net;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

void tcoord_stop(tcoord *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    tfx f;
    tfx_init(&f);
    pthread_mutex_lock(&c->lock);
    drop_parked(c, &f);
    pthread_mutex_unlock(&c->lock);
    tfx_run(&f);
    tc_clients_free(c); /* marker requests in flight complete (CLOSED) and are dropped */
    tc_unref(c);
}
