/*
 * meta_ops.h - for unit tests that drive a real controller (meta_open):
 * submit one change and wait for its answer, keeping what a broker op
 * answered (its strings cleared: they die with the op).
 */
#ifndef CHRONIK_TEST_META_OPS_H
#define CHRONIK_TEST_META_OPS_H

#include <pthread.h>

#include "meta/meta.h"

typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int16_t err;
    meta_op *op;
    meta_broker_op broker;
} waiter;

static void op_done(void *arg, int16_t err, const char *msg)
{
    waiter *w = arg;
    (void)msg;
    pthread_mutex_lock(&w->lock);
    w->done = true, w->err = err, w->broker = w->op->broker;
    w->broker.endpoints = NULL, w->broker.nendpoints = 0, w->broker.rack = NULL;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Submits op and waits until its done callback ran. */
static inline waiter run(meta_t *m, meta_op *op)
{
    waiter w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .op = op};
    op->done = op_done;
    op->arg = &w;
    meta_submit(m, op);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    return w;
}

#endif
