/*
 * itopic.h - an internal topic (__consumer_offsets, __transaction_state)
 * that a coordinator creates through the controller the first time it is
 * needed, with the requests that asked for it waiting until it exists.
 *
 * A meta_itopic lives inside its owner (a coordinator) and is guarded by
 * the owner's mutex: meta_itopic_ready is called with it held;
 * meta_itopic_ensure takes it. While a creation is in flight the owner is
 * kept alive through its hold callback (hold(owner, true) before, hold(owner,
 * false) once the answer is handled), as it is for its other callbacks.
 */
#ifndef CHRONIK_META_ITOPIC_H
#define CHRONIK_META_ITOPIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "meta/meta.h"

typedef void (*meta_itopic_ready_fn)(void *arg, int16_t err);
typedef struct meta_itopic_waiter meta_itopic_waiter;

typedef struct meta_itopic {
    meta_t *meta;
    const char *name;               /* a constant string */
    const char *module;             /* the owner's name in log lines */
    int32_t partitions;             /* to create */
    int16_t replication_factor;     /* to create (reduced to the live brokers) */
    pthread_mutex_t *lock;          /* the owner's */
    void (*hold)(void *owner, bool take);
    void *owner;
    int32_t npartitions;            /* 0 until the topic exists */
    bool creating;                  /* its creation is under way */
    meta_itopic_waiter *waiters;    /* meta_itopic_ensure calls waiting for it */
} meta_itopic;

/* Under the lock: true when the topic exists (npartitions set); otherwise
 * starts its creation unless one is under way, and returns false. */
bool meta_itopic_ready(meta_itopic *t);
/* Takes the lock: true when the topic exists; otherwise done(arg, err)
 * is called once its creation ends (KERR_NONE, or
 * COORDINATOR_NOT_AVAILABLE when it still does not exist), on the thread
 * that completes it and with no lock held. */
bool meta_itopic_ensure(meta_itopic *t, meta_itopic_ready_fn done, void *arg);

#endif
