/* log.c - the transaction coordinator's side of __transaction_state:
 * state records appended with acks=all (the state applies once durable),
 * and the ids of a partition loaded when this node becomes its leader and
 * dropped when it stops leading it (coord_int.h; formats in records.c).
 * A transaction found in PrepareCommit or PrepareAbort at load has its
 * markers sent again and is then completed. */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "proto/batch.h"
#include "proto/kerr.h"
#include "tcoord/coord_int.h"

struct tjob {
    tjob *next;
    tcoord *c;
    partition *p;
    int64_t end_offset;
    int32_t index;             /* partition of __transaction_state */
    uint32_t gen;
    char *txn_id;
    tcoord_meta next_state;
    bool tombstone;
    tcoord_done_fn done;
    void *arg;
    int16_t min_isr;
};

/* ---- deferred work ------------------------------------------------------------- */

void tfx_init(tfx *f)
{
    f->jobs = NULL;
    f->sends = NULL;
    f->answers = NULL;
    f->answers_tail = &f->answers;
}

void tfx_answer(tfx *f, tcoord_done_fn done, void *arg, int16_t err, int64_t pid, int16_t epoch)
{
    if (!done)
        return;
    tanswer *a = xmalloc(sizeof *a);
    *a = (tanswer){NULL, done, arg, err, err ? -1 : pid, err ? -1 : epoch};
    *f->answers_tail = a;
    f->answers_tail = &a->next;
}

static void job_acked(void *arg, int16_t err);

void tfx_run(tfx *f)
{
    tjob *rev = NULL;
    for (tjob *j = f->jobs; j;) {
        tjob *next = j->next;
        j->next = rev;
        rev = j;
        j = next;
    }
    f->jobs = NULL;
    for (tjob *j = rev; j;) {
        tjob *next = j->next;
        partition_await(j->p, j->end_offset, -1, j->min_isr, TCOORD_WRITE_TIMEOUT_MS, job_acked, j);
        j = next;
    }
    for (tsend *s = f->sends; s;) {
        tsend *next = *(tsend **)s; /* the first field of a tsend is its link */
        tc_markers_send(s);
        s = next;
    }
    f->sends = NULL;
    for (tanswer *a = f->answers; a;) {
        tanswer *next = a->next;
        a->done(a->arg, a->err, a->pid, a->epoch);
        free(a);
        a = next;
    }
    tfx_init(f);
}

/* ---- appends ------------------------------------------------------------------ */

/* A failed append's error for the client: retriable either way. */
static int16_t append_error(int16_t err)
{
    return err == KERR_NOT_LEADER_OR_FOLLOWER || err == KERR_FENCED_LEADER_EPOCH ? KERR_NOT_COORDINATOR
                                                                                 : KERR_COORDINATOR_NOT_AVAILABLE;
}

static void job_free(tjob *j)
{
    partition_put(j->p);
    tcoord_meta_free(&j->next_state);
    free(j->txn_id);
    free(j);
}

/* Under the lock: the durable state takes effect. */
static void job_apply(tcoord *c, tjob *j, int16_t err, tfx *f)
{
    tcoord_txn *t = c->stopping || c->gen[j->index] != j->gen ? NULL : tc_txn(c, j->txn_id, false);
    if (!t) {
        tfx_answer(f, j->done, j->arg, KERR_NOT_COORDINATOR, -1, -1);
        return;
    }
    t->pending = false;
    if (err) {
        tfx_answer(f, j->done, j->arg, append_error(err), -1, -1);
        return;
    }
    if (j->tombstone) {
        hmap_del(&c->txns, t->id, strlen(t->id));
        tcoord_txn_free(t);
        return;
    }
    tfx_answer(f, j->done, j->arg, KERR_NONE, j->next_state.producer_id, j->next_state.epoch);
    tcoord_txn_apply(t, &j->next_state);
    if (t->nleft > 0)
        tc_markers_round(c, t, f);
    else if (t->m.state == TCOORD_PREPARE_COMMIT || t->m.state == TCOORD_PREPARE_ABORT)
        t->retry_ms = 0; /* nothing to mark: the thread completes it */
}

static void job_acked(void *arg, int16_t err)
{
    tjob *j = arg;
    tcoord *c = j->c;
    if (err && err != KERR_NOT_LEADER_OR_FOLLOWER)
        log_warn("tcoord", "state record not durable txn=%s err=%s", j->txn_id, kerr_name(err));
    tfx f;
    tfx_init(&f);
    pthread_mutex_lock(&c->lock);
    job_apply(c, j, err, &f);
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    tfx_run(&f);
    job_free(j);
    tc_unref(c);
}

/* Appends one record for t to its partition; NULL with *err on failure. */
static tjob *append_record(tcoord *c, tcoord_txn *t, const tcoord_meta *next, int16_t *err)
{
    int32_t index = tc_partition_of(c, t->id);
    partition *p = index >= 0 ? replica_get(c->replicas, TCOORD_TOPIC, strlen(TCOORD_TOPIC), index) : NULL;
    if (!p) {
        *err = KERR_NOT_COORDINATOR;
        return NULL;
    }
    int64_t now = clock_wall_ms();
    buf_t key, value, b;
    buf_init(&key);
    buf_init(&value);
    buf_init(&b);
    tcoord_rec_key(&key, t->id);
    if (next)
        tcoord_rec_value(&value, next);
    batch_builder_t bb;
    batch_build_begin(&bb, &b, 0, 0, now, -1, -1, -1);
    batch_build_add(&bb, now, key.data, (int32_t)key.len, next ? value.data : NULL, next ? (int32_t)value.len : -1,
                    NULL, 0);
    size_t len = batch_build_end(&bb);
    pthread_mutex_lock(&p->rlock);
    int16_t min_isr = (int16_t)MAX(MIN(c->cfg.min_isr, p->nreplicas), 1);
    pthread_mutex_unlock(&p->rlock);
    partition_append_req rq = {.data = b.data, .len = len, .expected_epoch = -1, .acks = -1, .min_isr = min_isr};
    partition_append_res out;
    partition_append(p, &rq, &out);
    buf_free(&key);
    buf_free(&value);
    buf_free(&b);
    if (out.err != KERR_NONE) {
        log_warn("tcoord", "cannot append to %s partition=%d err=%s", TCOORD_TOPIC, index, kerr_name(out.err));
        partition_put(p);
        *err = append_error(out.err);
        return NULL;
    }
    tjob *j = xcalloc(1, sizeof *j);
    *j = (tjob){.c = c, .p = p, .end_offset = out.res.log_end_offset, .index = index, .gen = c->gen[index],
                .txn_id = xstrdup(t->id), .min_isr = min_isr};
    return j;
}

void tc_store(tcoord *c, tcoord_txn *t, tcoord_meta *next, tcoord_done_fn done, void *arg, int16_t answered_err,
              tfx *f)
{
    CK_ASSERT(!t->pending);
    int16_t err = KERR_NONE;
    tjob *j = append_record(c, t, next, &err);
    if (!j) {
        if (next)
            tcoord_meta_free(next);
        tfx_answer(f, done, arg, answered_err >= 0 ? answered_err : err, -1, -1);
        return;
    }
    t->pending = true;
    if (next) {
        j->next_state = *next;
        *next = (tcoord_meta){.parts = NULL};
    } else {
        j->tombstone = true;
    }
    if (answered_err >= 0) {
        tfx_answer(f, done, arg, answered_err, -1, -1);
    } else {
        j->done = done;
        j->arg = arg;
    }
    j->next = f->jobs;
    f->jobs = j;
    tc_ref(c);
}

/* ---- loading ------------------------------------------------------------------- */

static void load_record(tcoord *c, const batch_record_t *rec, int64_t *n)
{
    char *id;
    tcoord_meta m;
    bool tomb;
    if (tcoord_rec_decode(rec->key, rec->key_len, rec->value, rec->value_len, &id, &m, &tomb) != 0)
        return;
    tcoord_txn *t = tc_txn(c, id, !tomb);
    if (tomb && t) {
        hmap_del(&c->txns, t->id, strlen(t->id));
        tcoord_txn_free(t);
    } else if (t) {
        tcoord_txn_apply(t, &m);
    }
    tcoord_meta_free(&m);
    free(id);
    (*n)++;
}

typedef struct load_ctx {
    tcoord *c;
    int64_t records;
} load_ctx;

static void load_batch(void *arg, const batch_info_t *bi, const uint8_t *data)
{
    load_ctx *l = arg;
    batch_iter_t it;
    batch_record_t rec;
    if (!bi->control && batch_iter_init(&it, data, bi->size))
        while (batch_iter_next(&it, &rec))
            load_record(l->c, &rec, &l->records);
}

static int64_t load_partition(tcoord *c, partition *p)
{
    load_ctx l = {c, 0};
    int64_t at = -1;
    int rc = partition_scan(p, TCOORD_LOAD_CHUNK_BYTES, load_batch, &l, &at);
    if (rc != STORAGE_OK)
        log_error("tcoord", "cannot read %s partition=%d offset=%lld err=\"%s\"", TCOORD_TOPIC, p->index,
                  (long long)at, storage_strerror(rc));
    return l.records;
}

/* The ids of partition index leave memory; waiting requests were answered
 * by their own completions (which see the new generation). */
static void unload_partition(tcoord *c, int32_t index)
{
    size_t it = 0;
    void *v;
    char **gone = NULL;
    size_t n = 0;
    while (hmap_next(&c->txns, &it, NULL, NULL, &v)) {
        tcoord_txn *t = v;
        if (tc_partition_of(c, t->id) == index) {
            gone = xrealloc(gone, (n + 1) * sizeof *gone);
            gone[n++] = t->id;
        }
    }
    for (size_t i = 0; i < n; i++)
        tcoord_txn_free(hmap_del(&c->txns, gone[i], strlen(gone[i])));
    free(gone);
    c->gen[index]++;
}

static void grow_loaded(tcoord *c)
{
    if (c->nloaded >= c->topic.npartitions)
        return;
    c->loaded_epoch = xrealloc(c->loaded_epoch, (size_t)c->topic.npartitions * sizeof *c->loaded_epoch);
    c->gen = xrealloc(c->gen, (size_t)c->topic.npartitions * sizeof *c->gen);
    for (int32_t i = c->nloaded; i < c->topic.npartitions; i++) {
        c->loaded_epoch[i] = -1;
        c->gen[i] = 0;
    }
    c->nloaded = c->topic.npartitions;
}

/* After a load: transactions caught between prepare and complete resume. */
static void resume_partition(tcoord *c, int32_t index, tfx *f)
{
    size_t it = 0;
    void *v;
    while (hmap_next(&c->txns, &it, NULL, NULL, &v)) {
        tcoord_txn *t = v;
        if (tc_partition_of(c, t->id) == index && t->nleft > 0 && t->inflight == 0) {
            log_info("tcoord", "resuming markers txn=%s state=%s partitions=%d", t->id,
                     tcoord_state_name(t->m.state), t->nleft);
            tc_markers_round(c, t, f);
        }
    }
}

static bool own_partition(tcoord *c, int32_t index, tfx *f)
{
    grow_loaded(c);
    partition *p = replica_get(c->replicas, TCOORD_TOPIC, strlen(TCOORD_TOPIC), index);
    bool leading = p && atomic_load(&p->leading);
    int32_t epoch = p ? atomic_load(&p->leader_epoch) : -1;
    if (leading && c->loaded_epoch[index] != epoch) {
        unload_partition(c, index);
        int64_t n = load_partition(c, p);
        c->loaded_epoch[index] = epoch;
        if (n > 0)
            log_info("tcoord", "coordinating partition=%d epoch=%d records=%lld", index, epoch, (long long)n);
        else
            log_debug("tcoord", "coordinating partition=%d epoch=%d records=0", index, epoch);
        resume_partition(c, index, f);
    } else if (!leading && c->loaded_epoch[index] != -1) {
        unload_partition(c, index);
        c->loaded_epoch[index] = -1;
        log_debug("tcoord", "no longer coordinating partition=%d", index);
    }
    partition_put(p);
    return leading;
}

int16_t tc_own(tcoord *c, const char *txn_id, tfx *f)
{
    int32_t index = tc_partition_of(c, txn_id);
    if (index < 0)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    return own_partition(c, index, f) ? KERR_NONE : KERR_NOT_COORDINATOR;
}

void tc_own_all(tcoord *c, tfx *f)
{
    for (int32_t i = 0; i < c->topic.npartitions; i++)
        own_partition(c, i, f);
}
