/* topics.c - auto-creation of topics on first use, and resuming a parked
 * request on its connection's reactor (broker_int.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "broker/broker_int.h"

typedef struct resume_ctx {
    breq *r;
    breq_rc (*fn)(breq *r);
} resume_ctx;

static void resume_run(void *arg)
{
    resume_ctx *c = arg;
    breq *r = c->r;
    breq_rc (*fn)(breq *) = c->fn;
    free(c);
    switch (fn(r)) {
    case BREQ_DONE:
        breq_finish(r);
        break;
    case BREQ_NO_RESPONSE:
        breq_noreply(r);
        break;
    case BREQ_PARKED:
        break;
    }
}

void breq_resume(breq *r, breq_rc (*fn)(breq *r))
{
    resume_ctx *c = xmalloc(sizeof *c);
    *c = (resume_ctx){r, fn};
    net_reactor *re = net_conn_reactor(net_req_conn(r->nreq));
    if (!net_post(re, resume_run, c))
        resume_run(c); /* the reactor has ended: finish here */
}

typedef struct autocreate {
    breq *r;
    breq_rc (*resume)(breq *r);
    _Atomic int pending;
} autocreate;

static void autocreate_done(void *arg, int16_t err, const char *msg)
{
    autocreate *ac = arg;
    if (err != KERR_NONE && err != KERR_TOPIC_ALREADY_EXISTS)
        log_warn("broker", "auto-create failed err=%s detail=\"%s\"", kerr_name(err), msg);
    if (atomic_fetch_sub(&ac->pending, 1) == 1) {
        breq_resume(ac->r, ac->resume);
        free(ac);
    }
}

static bool seen_before(const kstr_t *names, int32_t i)
{
    for (int32_t j = 0; j < i; j++)
        if (names[j].len == names[i].len && memcmp(names[j].ptr, names[i].ptr, (size_t)names[i].len) == 0)
            return true;
    return false;
}

bool broker_autocreate(breq *r, const kstr_t *names, int32_t n, breq_rc (*resume)(breq *r))
{
    broker *b = r->b;
    /* A node still catching up on the metadata log would create topics that
     * exist already: it answers from what it has (clients retry). */
    if (!b->cfg.auto_create_topics_enable || n <= 0 || !meta_caught_up(b->meta))
        return false;
    meta_image *img = meta_acquire(b->meta);
    meta_op *ops = NULL;
    int count = 0;
    autocreate *ac = xcalloc(1, sizeof *ac);
    for (int32_t i = 0; i < n; i++) {
        kstr_t s = names[i];
        /* Internal topics (__consumer_offsets, ...) are created by their owners. */
        if (s.len <= 0 || !meta_valid_topic_name(s.ptr, (size_t)s.len) || (s.len >= 2 && s.ptr[0] == '_' && s.ptr[1] == '_') ||
            meta_image_topic(img, s.ptr, (size_t)s.len) || seen_before(names, i) ||
            !broker_may_create_topic(r, img, s))
            continue;
        meta_op *op = meta_op_new(META_OP_CREATE_TOPIC, s.ptr, (size_t)s.len);
        op->partitions = b->cfg.num_partitions;
        op->replication_factor = b->cfg.default_replication_factor;
        op->done = autocreate_done;
        op->arg = ac;
        op->next = ops;
        ops = op;
        count++;
    }
    meta_image_release(img);
    if (count == 0) {
        free(ac);
        return false;
    }
    ac->r = r;
    ac->resume = resume;
    atomic_store(&ac->pending, count);
    for (meta_op *op = ops, *next; op; op = next) {
        next = op->next;
        log_info("broker", "auto-creating topic topic=%s partitions=%d", op->topic, op->partitions);
        meta_submit(b->meta, op);
    }
    return true;
}

/* ---- waiting on several controller changes ------------------------------- */

struct meta_wait {
    breq *r;
    breq_rc (*after)(breq *r);
    _Atomic int pending;
};

typedef struct meta_slot {
    meta_wait *w;
    int16_t *err;
    kstr_t *msg;
    void (*keep)(void *ctx, const meta_op *op); /* NULL: nothing to keep */
    void *keep_ctx;
    const meta_op *op;
    char msg_copy[META_MSG_MAX]; /* the controller's message outlives its op */
} meta_slot;

breq_rc meta_wait_answered(breq *r)
{
    UNUSED(r);
    return BREQ_DONE;
}

meta_wait *meta_wait_new(breq *r, breq_rc (*after)(breq *r))
{
    meta_wait *w = arena_alloc(&r->arena, sizeof *w);
    w->r = r;
    w->after = after;
    atomic_store(&w->pending, 1);
    return w;
}

static void meta_slot_done(void *arg, int16_t err, const char *msg)
{
    meta_slot *s = arg;
    *s->err = err;
    if (s->keep)
        s->keep(s->keep_ctx, s->op);
    if (s->msg) {
        *s->msg = KSTR_NULL;
        if (err && msg) {
            snprintf(s->msg_copy, sizeof s->msg_copy, "%s", msg);
            *s->msg = kstr_from(s->msg_copy);
        }
    }
    meta_wait *w = s->w;
    if (atomic_fetch_sub(&w->pending, 1) == 1)
        breq_resume(w->r, w->after);
}

void meta_wait_submit(meta_wait *w, meta_op *op, int16_t *err, kstr_t *msg)
{
    meta_wait_submit_keep(w, op, err, msg, NULL, NULL);
}

void meta_wait_submit_keep(meta_wait *w, meta_op *op, int16_t *err, kstr_t *msg,
                           void (*keep)(void *ctx, const meta_op *op), void *ctx)
{
    meta_slot *s = arena_alloc(&w->r->arena, sizeof *s);
    *s = (meta_slot){w, err, msg, keep, ctx, op};
    op->done = meta_slot_done;
    op->arg = s;
    atomic_fetch_add(&w->pending, 1);
    meta_submit(w->r->b->meta, op);
}

typedef struct op_park {
    breq *r;
    meta_op *op;
    meta_answer_fn answer;
} op_park;

static breq_rc op_answered(breq *r)
{
    (void)r;
    return BREQ_DONE;
}

static void op_park_done(void *arg, int16_t err, const char *msg)
{
    op_park *p = arg;
    (void)msg;
    p->answer(p->r, p->op, err);
    breq_resume(p->r, op_answered);
}

breq_rc meta_op_park(breq *r, meta_op *op, meta_answer_fn answer)
{
    op_park *p = arena_alloc(&r->arena, sizeof *p);
    *p = (op_park){r, op, answer};
    op->done = op_park_done;
    op->arg = p;
    meta_submit(r->b->meta, op);
    return BREQ_PARKED;
}

breq_rc meta_wait_end(meta_wait *w)
{
    if (atomic_fetch_sub(&w->pending, 1) == 1)
        return w->after(w->r);
    return BREQ_PARKED;
}

partition *broker_leader_partition(broker *b, const meta_topic *t, int32_t index, int32_t epoch, int16_t *err)
{
    partition *p = t ? replica_get(b->replicas, t->name, strlen(t->name), index) : NULL;
    *err = p ? partition_check_leader(p, epoch) : broker_partition_elsewhere(t, index);
    if (*err != KERR_NONE) {
        partition_put(p);
        return NULL;
    }
    return p;
}

void broker_leader_hint(const meta_topic *t, int32_t index, int32_t *leader_id, int32_t *leader_epoch)
{
    bool known = t && index >= 0 && index < t->npartitions;
    *leader_id = known ? t->partitions[index].leader : -1;
    *leader_epoch = known ? t->partitions[index].leader_epoch : -1;
}

int16_t broker_partition_elsewhere(const meta_topic *t, int32_t index)
{
    return t && index >= 0 && index < t->npartitions ? KERR_NOT_LEADER_OR_FOLLOWER
                                                              : KERR_UNKNOWN_TOPIC_OR_PARTITION;
}

bool broker_partition_exists(const meta_image *img, kstr_t topic, int32_t index)
{
    const meta_topic *t = topic.len > 0 ? meta_image_topic(img, topic.ptr, (size_t)topic.len) : NULL;
    return t && index >= 0 && index < t->npartitions;
}
