/*
 * flusher.c - group commit. Appends and flusher_request put a log on the
 * dirty list; each round syncs every dirty log once (one fdatasync per
 * dirty file, plog_sync), then fires, in request order, the callbacks whose
 * offsets became durable. Requests that arrive during a round share the
 * next one. Logs in relaxed mode (flush.messages > 1) are also looked at
 * every FLUSHER_SCAN_MS for their flush.ms deadline. A thread that would
 * only block until its log is synced can sync it itself (flusher_sync_now,
 * a follower's fetcher): plog_sync runs one call per log at a time.
 *
 * Locks: f->round_mu serialises rounds with detach; f->mu guards the lists
 * and every log's request queue. f->mu is never held while a log's mutex
 * is taken, nor across I/O or callbacks.
 */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "storage/storage_int.h"

#define FLUSHER_SCAN_MS 50

struct flusher {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t round_mu;
    plog_t **logs;
    int nlogs, cap_logs;
    plog_t **dirty;
    int ndirty, cap_dirty;
    bool stop, started;
    pthread_t thread;
    int64_t last_scan_ms;
    uint64_t req_seq;   /* requests made so far */
    flusher_stats_t st;
};

flusher_t *flusher_new(void)
{
    flusher_t *f = xcalloc(1, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->round_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    return f;
}

static void push_log(plog_t ***arr, int *n, int *cap, plog_t *log)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *arr = xrealloc(*arr, (size_t)*cap * sizeof **arr);
    }
    (*arr)[(*n)++] = log;
}

static void remove_log(plog_t **arr, int *n, plog_t *log)
{
    for (int i = 0; i < *n; i++) {
        if (arr[i] == log) {
            arr[i] = arr[--*n];
            i--;
        }
    }
}

/* Under f->mu. True when the log was put on the dirty list: the caller
 * signals f->cv after unlocking, so that the woken flusher does not at once
 * block on the mutex its waker still holds. */
static bool mark_dirty(flusher_t *f, plog_t *log)
{
    if (!log->attached || log->flush_queued)
        return false;
    log->flush_queued = true;
    push_log(&f->dirty, &f->ndirty, &f->cap_dirty, log);
    return true;
}

void flusher_attach(flusher_t *f, plog_t *log)
{
    pthread_mutex_lock(&f->mu);
    CK_ASSERT(!log->attached);
    log->attached = true;
    log->flusher = f;
    push_log(&f->logs, &f->nlogs, &f->cap_logs, log);
    pthread_mutex_unlock(&f->mu);
}

void flusher_notify(flusher_t *f, plog_t *log)
{
    pthread_mutex_lock(&f->mu);
    bool wake = mark_dirty(f, log);
    pthread_mutex_unlock(&f->mu);
    if (wake)
        pthread_cond_signal(&f->cv);
}

void flusher_request(flusher_t *f, plog_t *log, int64_t upto_offset, flusher_cb cb, void *arg)
{
    flush_req_t *q = xcalloc(1, sizeof *q);
    q->upto = upto_offset;
    q->cb = cb;
    q->arg = arg;
    pthread_mutex_lock(&f->mu);
    CK_ASSERT(log->attached && log->flusher == f);
    q->seq = ++f->req_seq;
    if (log->req_tail)
        log->req_tail->next = q;
    else
        log->req_head = q;
    log->req_tail = q;
    bool wake = mark_dirty(f, log);
    pthread_mutex_unlock(&f->mu);
    if (wake)
        pthread_cond_signal(&f->cv);
}

void flusher_detach(flusher_t *f, plog_t *log, flush_req_t **reqs)
{
    pthread_mutex_lock(&f->round_mu);
    pthread_mutex_lock(&f->mu);
    remove_log(f->logs, &f->nlogs, log);
    remove_log(f->dirty, &f->ndirty, log);
    *reqs = log->req_head;
    log->req_head = log->req_tail = NULL;
    log->attached = false;
    log->flush_queued = false;
    log->flusher = NULL;
    pthread_mutex_unlock(&f->mu);
    pthread_mutex_unlock(&f->round_mu);
}

/* Fires the requests of log that are satisfied (or failed), in order. A
 * request beyond the log end was truncated away, unless it was made after
 * the log end was read (its offsets were appended since). */
static void complete(flusher_t *f, plog_t *log)
{
    pthread_mutex_lock(&f->mu);
    uint64_t seen = f->req_seq;
    pthread_mutex_unlock(&f->mu);
    int64_t flushed = plog_flushed_offset(log), leo = plog_log_end_offset(log);
    int state = plog_state(log);
    flush_req_t *done = NULL, **tail = &done;
    pthread_mutex_lock(&f->mu);
    while (log->req_head && (log->req_head->upto <= flushed ||
                             (log->req_head->upto > leo && log->req_head->seq <= seen) ||
                             state != STORAGE_OK)) {
        flush_req_t *q = log->req_head;
        log->req_head = q->next;
        q->next = NULL;
        *tail = q;
        tail = &q->next;
        f->st.callbacks++; /* counted before they fire, so a woken waiter sees it */
    }
    if (!log->req_head)
        log->req_tail = NULL;
    else
        mark_dirty(f, log); /* data appended during the round: the next one (this thread's) */
    pthread_mutex_unlock(&f->mu);
    while (done) {
        flush_req_t *q = done;
        done = q->next;
        int err = q->upto <= flushed ? STORAGE_OK : state;
        if (err == STORAGE_OK && q->upto > flushed)
            err = STORAGE_ERR_OUT_OF_RANGE; /* truncated away before it was durable */
        q->cb(q->arg, err);
        free(q);
    }
}

/* Takes the logs to look at this round (under f->mu). */
static plog_t **take_round(flusher_t *f, int *n)
{
    int64_t now = clock_mono_ms();
    bool full = now - f->last_scan_ms >= FLUSHER_SCAN_MS;
    plog_t **src = full ? f->logs : f->dirty;
    *n = full ? f->nlogs : f->ndirty;
    plog_t **list = xmalloc((size_t)(*n + 1) * sizeof *list);
    if (*n)
        memcpy(list, src, (size_t)*n * sizeof *list);
    for (int i = 0; i < f->ndirty; i++)
        f->dirty[i]->flush_queued = false;
    f->ndirty = 0;
    if (full)
        f->last_scan_ms = now;
    return list;
}

int flusher_run_once(flusher_t *f)
{
    pthread_mutex_lock(&f->round_mu);
    pthread_mutex_lock(&f->mu);
    int n, syncs = 0;
    plog_t **list = take_round(f, &n);
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&f->mu);
        bool waiting = list[i]->req_head != NULL;
        pthread_mutex_unlock(&f->mu);
        int r = plog_sync(list[i], waiting);
        if (r > 0)
            syncs += r;
        complete(f, list[i]);
    }
    free(list);
    pthread_mutex_lock(&f->mu);
    f->st.rounds++;
    f->st.syncs += (uint64_t)syncs;
    pthread_mutex_unlock(&f->mu);
    pthread_mutex_unlock(&f->round_mu);
    return syncs;
}

int flusher_sync_now(flusher_t *f, plog_t *log)
{
    int r = plog_sync(log, true);
    if (r > 0) {
        pthread_mutex_lock(&f->mu);
        f->st.syncs += (uint64_t)r;
        pthread_mutex_unlock(&f->mu);
    }
    if (r >= 0)
        return STORAGE_OK;
    int state = plog_state(log);
    return state != STORAGE_OK ? state : STORAGE_ERR_IO;
}

static void *flusher_main(void *arg)
{
    flusher_t *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->stop) {
        if (f->ndirty == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += FLUSHER_SCAN_MS * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&f->cv, &f->mu, &ts);
        }
        pthread_mutex_unlock(&f->mu);
        flusher_run_once(f);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

void flusher_start(flusher_t *f)
{
    CK_ASSERT(!f->started);
    f->started = true;
    if (pthread_create(&f->thread, NULL, flusher_main, f) != 0)
        CK_PANIC("cannot start the flusher thread");
}

void flusher_free(flusher_t *f)
{
    if (!f)
        return;
    if (f->started) {
        pthread_mutex_lock(&f->mu);
        f->stop = true;
        pthread_cond_signal(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
    }
    f->last_scan_ms = 0;
    flusher_run_once(f); /* a final full round */
    while (f->nlogs > 0) {
        plog_t *log = f->logs[0];
        flush_req_t *reqs;
        flusher_detach(f, log, &reqs);
        while (reqs) {
            flush_req_t *q = reqs;
            reqs = q->next;
            q->cb(q->arg, STORAGE_ERR_CLOSED);
            free(q);
        }
    }
    free(f->logs);
    free(f->dirty);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    pthread_mutex_destroy(&f->round_mu);
    free(f);
}

void flusher_get_stats(flusher_t *f, flusher_stats_t *out)
{
    pthread_mutex_lock(&f->mu);
    *out = f->st;
    pthread_mutex_unlock(&f->mu);
}
