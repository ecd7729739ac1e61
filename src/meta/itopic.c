/* itopic.c - internal topics created on first need (itopic.h). */
#include "meta/itopic.h"

#include <stdlib.h>

#include "base/log.h"
#include "base/util.h"
#include "proto/kerr.h"

struct meta_itopic_waiter {
    meta_itopic_waiter *next;
    meta_itopic_ready_fn done;
    void *arg;
};

static void created(void *arg, int16_t err, const char *msg)
{
    meta_itopic *t = arg;
    if (err != KERR_NONE && err != KERR_TOPIC_ALREADY_EXISTS)
        log_warn(t->module, "cannot create %s err=%s detail=\"%s\"", t->name, kerr_name(err), msg);
    pthread_mutex_lock(t->lock);
    t->creating = false;
    t->npartitions = meta_topic_partitions(t->meta, t->name);
    meta_itopic_waiter *w = t->waiters;
    t->waiters = NULL;
    int16_t result = t->npartitions > 0 ? KERR_NONE : KERR_COORDINATOR_NOT_AVAILABLE;
    pthread_mutex_unlock(t->lock);
    while (w) {
        meta_itopic_waiter *next = w->next;
        w->done(w->arg, result);
        free(w);
        w = next;
    }
    t->hold(t->owner, false);
}

bool meta_itopic_ready(meta_itopic *t)
{
    if (t->npartitions > 0)
        return true;
    t->npartitions = meta_topic_partitions(t->meta, t->name); /* created meanwhile by someone else */
    if (t->npartitions > 0 || t->creating)
        return t->npartitions > 0;
    t->creating = true;
    t->hold(t->owner, true);
    meta_op *op = meta_op_internal_topic(t->meta, t->name, t->partitions, t->replication_factor);
    op->done = created;
    op->arg = t;
    log_info(t->module, "creating %s partitions=%d replication_factor=%d", t->name, op->partitions,
             op->replication_factor);
    meta_submit(t->meta, op);
    return false;
}

bool meta_itopic_ensure(meta_itopic *t, meta_itopic_ready_fn done, void *arg)
{
    pthread_mutex_lock(t->lock);
    bool ok = meta_itopic_ready(t);
    if (!ok) {
        meta_itopic_waiter *w = xmalloc(sizeof *w);
        *w = (meta_itopic_waiter){t->waiters, done, arg};
        t->waiters = w;
    }
    pthread_mutex_unlock(t->lock);
    return ok;
}
