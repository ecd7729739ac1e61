/* scrubber.c - re-verifies the CRCs of every closed segment this node holds,
 * on its own thread at idle I/O priority: once soon after start (after
 * SCRUB_FIRST_DELAY_MS, or log.scrub.interval.ms when shorter) and then every
 * log.scrub.interval.ms (0: never). Damage it finds makes the partition
 * read-only and is reported by status and metrics (storage's scrub.c); Fetch
 * never returns the damaged batches. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "broker/broker_int.h"

#define SCRUB_FIRST_DELAY_MS 60000

typedef struct held {
    partition **v;
    int n, cap;
} held;

static void hold_one(void *arg, partition *p)
{
    held *h = arg;
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->v = xrealloc(h->v, (size_t)h->cap * sizeof *h->v);
    }
    atomic_fetch_add(&p->refs, 1);
    h->v[h->n++] = p;
}

static bool scrub_stopping(void *arg)
{
    broker *b = arg;
    pthread_mutex_lock(&b->scrub_lock);
    bool stop = b->scrub_stop;
    pthread_mutex_unlock(&b->scrub_lock);
    return stop;
}

static void scrub_round(broker *b)
{
    held h = {0};
    replica_each(b->replicas, hold_one, &h);
    plog_scrub_stats_t total = {0};
    int64_t t0 = clock_mono_ms();
    for (int i = 0; i < h.n; i++) {
        plog_scrub_stats_t st = {0};
        if (!scrub_stopping(b) && plog_scrub(h.v[i]->log, scrub_stopping, b, &st) != STORAGE_OK)
            log_warn("storage", "scrub read error topic=%s partition=%d", h.v[i]->topic, h.v[i]->index);
        total.segments += st.segments;
        total.bytes += st.bytes;
        total.damaged_ranges += st.damaged_ranges;
        partition_put(h.v[i]);
    }
    free(h.v);
    atomic_fetch_add(&b->stats.scrub_rounds, 1);
    atomic_fetch_add(&b->stats.scrub_damaged_ranges, (uint64_t)total.damaged_ranges);
    log_info("storage", "scrub done partitions=%d segments=%lld bytes=%lld damaged_ranges=%lld ms=%lld", h.n,
             (long long)total.segments, (long long)total.bytes, (long long)total.damaged_ranges,
             (long long)(clock_mono_ms() - t0));
}

/* Waits ms or until stopped; false when stopped. */
static bool scrub_wait(broker *b, int64_t ms)
{
    struct timespec ts = clock_abstime_after_ms(ms);
    pthread_mutex_lock(&b->scrub_lock);
    while (!b->scrub_stop && pthread_cond_timedwait(&b->scrub_cond, &b->scrub_lock, &ts) != ETIMEDOUT)
        ;
    bool go = !b->scrub_stop;
    pthread_mutex_unlock(&b->scrub_lock);
    return go;
}

static void *scrubber(void *arg)
{
    broker *b = arg;
    storage_io_priority_idle(); /* the scrub never competes with clients for the disk */
    int64_t interval = b->cfg.log_scrub_interval_ms;
    int64_t wait = MIN(interval, SCRUB_FIRST_DELAY_MS);
    while (scrub_wait(b, wait)) {
        scrub_round(b);
        wait = interval;
    }
    return NULL;
}

void broker_scrubber_start(broker *b)
{
    pthread_mutex_init(&b->scrub_lock, NULL);
    pthread_cond_init(&b->scrub_cond, NULL);
    b->scrub_started = b->cfg.log_scrub_interval_ms > 0;
    if (b->scrub_started && pthread_create(&b->scrub_thread, NULL, scrubber, b) != 0)
        CK_PANIC("cannot start the scrubber thread");
}

void broker_scrubber_stop(broker *b)
{
    if (!b->scrub_started)
        return;
    pthread_mutex_lock(&b->scrub_lock);
    b->scrub_stop = true;
    pthread_cond_signal(&b->scrub_cond);
    pthread_mutex_unlock(&b->scrub_lock);
    pthread_join(b->scrub_thread, NULL);
    b->scrub_started = false;
}
