/* replica.c - the partitions this node holds (replica.h). */
#include "replica/replica.h"
#include "replica/replica_int.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "base/hmap.h"
#include "base/log.h"
#include "base/util.h"
#include "proto/kerr.h"

struct replica_mgr {
    char *data_dir;
    sfs_t *fs;
    int32_t node_id;
    flusher_t *flusher;
    replica_config_fn cfg_fn;
    void *cfg_ctx;
    _Atomic int64_t producer_id_expiration_ms;
    pthread_rwlock_t lock; /* the map */
    hmap parts;            /* "topic\0index" -> partition* */
    /* The reaper: partitions whose last reference went are closed (and, when
     * deleted, their directories removed) on its thread, never on the thread
     * that dropped the reference: that may be the flusher in a round, or a
     * reactor, neither of which may block on a log's close. */
    pthread_mutex_t reap_mu;
    pthread_cond_t reap_cv;   /* work queued, or the live count changed */
    partition *reap_head;     /* linked by reap_next */
    int live;                 /* partitions not yet destroyed */
    bool reap_stop;
    pthread_t reaper;
    /* Replication: the controller (ISR changes), the follower fetchers,
     * and the ticker (ISR shrinking, acks=all timeouts). */
    _Atomic(meta_t *) meta;
    fetchers *fetchers;
    const kclient_security *peer_security; /* how fetchers reach leaders */
    _Atomic int64_t lag_time_max_ms;
    pthread_mutex_t tick_mu;
    pthread_cond_t tick_cv;
    bool tick_stop;
    pthread_t ticker;
    hmap hw_checkpoint;   /* read at start: topic\0index -> int64_t* */
};

static size_t part_key(char *key, size_t cap, const char *topic, size_t len, int32_t index)
{
    if (len + 16 > cap)
        return 0;
    memcpy(key, topic, len);
    key[len] = 0;
    memcpy(key + len + 1, &index, sizeof index);
    return len + 1 + sizeof index;
}

static void *reaper_main(void *arg);
static void *ticker_main(void *arg);

replica_mgr *replica_new(const char *data_dir, sfs_t *fs, int32_t node_id, replica_config_fn cfg_fn,
                         void *cfg_ctx)
{
    replica_mgr *m = xcalloc(1, sizeof *m);
    m->data_dir = xstrdup(data_dir);
    m->fs = fs;
    m->node_id = node_id;
    m->cfg_fn = cfg_fn;
    m->cfg_ctx = cfg_ctx;
    atomic_store(&m->producer_id_expiration_ms, TXN_PRODUCER_ID_EXPIRATION_MS_DEFAULT);
    m->flusher = flusher_new();
    flusher_start(m->flusher);
    pthread_rwlock_init(&m->lock, NULL);
    hmap_init(&m->parts);
    pthread_mutex_init(&m->reap_mu, NULL);
    pthread_cond_init(&m->reap_cv, NULL);
    if (pthread_create(&m->reaper, NULL, reaper_main, m) != 0)
        CK_PANIC("cannot start the partition reaper thread");
    atomic_store(&m->lag_time_max_ms, REPLICA_LAG_TIME_MAX_MS_DEFAULT);
    hwcheck_read(fs, data_dir, &m->hw_checkpoint);
    pthread_mutex_init(&m->tick_mu, NULL);
    pthread_cond_init(&m->tick_cv, NULL);
    if (pthread_create(&m->ticker, NULL, ticker_main, m) != 0)
        CK_PANIC("cannot start the replication ticker thread");
    return m;
}

meta_t *replica_meta(replica_mgr *m) { return atomic_load(&m->meta); }
sfs_t *replica_fs(replica_mgr *m) { return m->fs; }
int32_t replica_node_id(replica_mgr *m) { return m->node_id; }
int64_t replica_expiration_ms(replica_mgr *m) { return atomic_load(&m->producer_id_expiration_ms); }

void replica_set_lag_time_max(replica_mgr *m, int64_t ms)
{
    CK_ASSERT(ms > 0);
    atomic_store(&m->lag_time_max_ms, ms);
}

static void tick_one(void *arg, partition *p)
{
    replica_mgr *m = arg;
    replica_leader_tick(p, clock_mono_ms(), atomic_load(&m->lag_time_max_ms));
    if (REPLICA_CHECKS)
        replica_check(p);
}

static void *ticker_main(void *arg)
{
    replica_mgr *m = arg;
    int64_t checkpoint_due = clock_mono_ms() + REPLICA_HW_CHECKPOINT_MS;
    pthread_mutex_lock(&m->tick_mu);
    while (!m->tick_stop) {
        struct timespec ts = clock_abstime_after_ms(REPLICA_TICK_MS);
        pthread_cond_timedwait(&m->tick_cv, &m->tick_mu, &ts);
        if (m->tick_stop)
            break;
        pthread_mutex_unlock(&m->tick_mu);
        replica_each(m, tick_one, m);
        if (clock_mono_ms() >= checkpoint_due) {
            hwcheck_write(m, m->data_dir, false);
            checkpoint_due = clock_mono_ms() + REPLICA_HW_CHECKPOINT_MS;
        }
        pthread_mutex_lock(&m->tick_mu);
    }
    pthread_mutex_unlock(&m->tick_mu);
    return NULL;
}

void replica_set_peer_security(replica_mgr *m, const kclient_security *sec) { m->peer_security = sec; }
const kclient_security *replica_peer_security(const replica_mgr *m) { return m->peer_security; }

void replica_connect(replica_mgr *m, net_t *net, meta_t *meta)
{
    atomic_store(&m->meta, meta);
    m->fetchers = fetchers_new(m, net, meta);
    meta_image *img = meta_acquire(meta);
    fetchers_kick(m->fetchers, img);
    meta_image_release(img);
}

flusher_t *replica_flusher(replica_mgr *m) { return m->flusher; }

void replica_set_producer_id_expiration(replica_mgr *m, int64_t ms)
{
    CK_ASSERT(ms > 0);
    atomic_store(&m->producer_id_expiration_ms, ms);
}

static int64_t expiration_ms(const partition *p)
{
    return atomic_load(&p->mgr->producer_id_expiration_ms);
}

static void wake_all(partition *p)
{
    pthread_mutex_lock(&p->wlock);
    pwaiter *w = p->waiters;
    p->waiters = NULL;
    for (; w; w = w->next) {
        w->queued = false;
        w->wake(w->arg);
    }
    pthread_mutex_unlock(&p->wlock);
}

/* Clean close: the producer state at the log end, written once the log
 * below it is durable (snapshot.c, WRITING). */
static void close_log(partition *p, const char *dir)
{
    buf_t snap;
    buf_init(&snap);
    if (plog_state(p->log) == STORAGE_OK) {
        txn_state_expire(p->producers, clock_wall_ms(), expiration_ms(p));
        txn_state_encode(p->producers, plog_log_end_offset(p->log), &snap);
    }
    if (plog_close(p->log) == STORAGE_OK && snap.len > 0 && dir)
        txn_snapshot_write(p->mgr->fs, dir, &snap);
    buf_free(&snap);
}

/* On the reaper thread. A deleted partition's directory was renamed aside
 * when it was removed (plog_mark_deleted); it goes now. */
static void partition_destroy(partition *p)
{
    char dir[STORAGE_PATH_MAX];
    if (atomic_load(&p->removed)) {
        snprintf(dir, sizeof dir, "%s", plog_dir(p->log));
        bool aside = plog_state(p->log) == STORAGE_ERR_DELETED && strstr(dir, "-delete");
        plog_close(p->log);
        int r = aside ? storage_remove_tree(p->mgr->fs, dir) : 0;
        if (r < 0)
            log_warn("replica", "cannot remove a deleted partition's directory dir=%s err=\"%s\"", dir,
                     strerror(-r));
    } else {
        bool have_dir = storage_partition_dir(p->mgr->data_dir, p->topic, p->index, dir, sizeof dir);
        close_log(p, have_dir ? dir : NULL);
    }
    replica_fail_acks(p, KERR_NOT_LEADER_OR_FOLLOWER);
    txn_state_free(p->producers);
    pthread_mutex_destroy(&p->rlock);
    pthread_mutex_destroy(&p->produce_lock);
    pthread_mutex_destroy(&p->wlock);
    free(p->topic);
    free(p);
}

static void *reaper_main(void *arg)
{
    replica_mgr *m = arg;
    pthread_mutex_lock(&m->reap_mu);
    for (;;) {
        while (!m->reap_head && !m->reap_stop)
            pthread_cond_wait(&m->reap_cv, &m->reap_mu);
        if (!m->reap_head)
            break; /* stopping, and nothing left to reap */
        partition *p = m->reap_head;
        m->reap_head = p->reap_next;
        pthread_mutex_unlock(&m->reap_mu);
        partition_destroy(p);
        pthread_mutex_lock(&m->reap_mu);
        CK_ASSERT(m->live > 0);
        m->live--;
        pthread_cond_broadcast(&m->reap_cv);
    }
    pthread_mutex_unlock(&m->reap_mu);
    return NULL;
}

void partition_put(partition *p)
{
    if (!p)
        return;
    int before = atomic_fetch_sub(&p->refs, 1);
    CK_ASSERT(before > 0);
    if (before != 1)
        return;
    replica_mgr *m = p->mgr;
    pthread_mutex_lock(&m->reap_mu);
    CK_ASSERT(!m->reap_stop);
    p->reap_next = m->reap_head;
    m->reap_head = p;
    pthread_cond_broadcast(&m->reap_cv);
    pthread_mutex_unlock(&m->reap_mu);
}

partition *replica_get(replica_mgr *m, const char *topic, size_t len, int32_t index)
{
    char key[STORAGE_TOPIC_MAX + 16];
    size_t kl = part_key(key, sizeof key, topic, len, index);
    if (!kl)
        return NULL;
    pthread_rwlock_rdlock(&m->lock);
    partition *p = hmap_get(&m->parts, key, kl);
    if (p)
        atomic_fetch_add(&p->refs, 1);
    pthread_rwlock_unlock(&m->lock);
    return p;
}

/* A directory whose partition.metadata names another topic id belongs to
 * another incarnation of the name (deleted while this node was down, or
 * before its deletion reached the disk): set it aside, never adopt it. */
static void set_aside_stray(replica_mgr *m, const meta_topic *t, int32_t index)
{
    char dir[STORAGE_PATH_MAX], aside[STORAGE_PATH_MAX + 64];
    uint8_t id[16];
    if (!storage_partition_dir(m->data_dir, t->name, index, dir, sizeof dir) ||
        storage_read_topic_id(m->fs, dir, id) != STORAGE_OK || memcmp(id, t->id.b, 16) == 0)
        return; /* none, unreadable (adopted below, as before topic ids were kept), or ours */
    int r = storage_set_aside(m->fs, dir, "stray", aside, sizeof aside);
    if (r < 0)
        log_error("replica", "cannot set aside a directory of another topic id dir=%s err=\"%s\"", dir,
                  strerror(-r));
    else
        log_warn("replica", "directory belongs to another topic id, set aside topic=%s partition=%d kept=%s",
                 t->name, index, aside);
}

static partition *open_partition(replica_mgr *m, const meta_topic *t, const meta_partition *mp)
{
    set_aside_stray(m, t, mp->index);
    plog_config_t pc;
    m->cfg_fn(m->cfg_ctx, t, &pc);
    plog_t *log;
    int rc = storage_open_partition(m->data_dir, t->name, mp->index, &pc, m->fs, &log);
    if (rc != STORAGE_OK && rc != STORAGE_ERR_OFFLINE && rc != STORAGE_ERR_DAMAGED) {
        log_error("replica", "cannot open partition topic=%s partition=%d err=\"%s\"", t->name, mp->index,
                  storage_strerror(rc));
        return NULL;
    }
    if (rc == STORAGE_ERR_OFFLINE || rc == STORAGE_ERR_DAMAGED)
        log_error("replica", "partition %s topic=%s partition=%d reason=\"%s\"",
                  rc == STORAGE_ERR_OFFLINE ? "offline" : "read-only (damaged)", t->name, mp->index,
                  plog_errmsg(log));
    partition *p = xcalloc(1, sizeof *p);
    atomic_store(&p->refs, 1);
    p->topic = xstrdup(t->name);
    p->index = mp->index;
    p->topic_id = t->id;
    p->log = log;
    atomic_store(&p->leader_epoch, -1);
    atomic_store(&p->leader_id, -1);
    p->partition_epoch = -1;
    p->fetcher_leader = -1;
    p->mgr = m;
    p->mgr_node_id = m->node_id;
    pthread_mutex_init(&p->rlock, NULL);
    pthread_mutex_init(&p->wlock, NULL);
    pthread_mutex_init(&p->produce_lock, NULL);
    p->producers = txn_state_new();
    atomic_store(&p->first_unstable, INT64_MAX);
    if (rc == STORAGE_OK)
        replica_load_producers(p);
    uint8_t id[16];
    if (plog_topic_id(log, id) != STORAGE_OK)
        plog_set_topic_id(log, t->id.b);
    /* One replica: everything recovered is this node's to serve. More: the
     * high watermark comes back from the leader's followers (or, on a
     * follower, from the leader). */
    int64_t hw = plog_log_start_offset(log);
    if (mp->nreplicas <= 1)
        hw = plog_log_end_offset(log);
    else if (hwcheck_get(&m->hw_checkpoint, t->name, mp->index, &hw))
        hw = MAX(MIN(hw, plog_log_end_offset(log)), plog_log_start_offset(log));
    atomic_store(&p->high_watermark, hw);
    p->hw_checkpointed = -1;
    atomic_store(&p->durable_end, plog_flushed_offset(log));
    flusher_attach(m->flusher, log);
    pthread_mutex_lock(&m->reap_mu);
    m->live++;
    pthread_mutex_unlock(&m->reap_mu);
    return p;
}

static bool holds(const meta_partition *mp, int32_t node)
{
    for (int32_t i = 0; i < mp->nreplicas; i++)
        if (mp->replicas[i] == node)
            return true;
    return false;
}

/*
 * The partition's place from the image: replicas, committed ISR, leader and
 * epochs. Becoming leader resets what is known of the followers; losing
 * leadership answers the parked acks=all appends with REQUEST_TIMED_OUT
 * (their fate is the new leader's). A follower's fetcher picks the
 * change up at its next round (fetchers_kick).
 */
static void apply_role(partition *p, const meta_partition *mp)
{
    int32_t me = p->mgr_node_id;
    bool lead = mp->leader == me;
    pthread_mutex_lock(&p->rlock);
    bool was = atomic_load(&p->leading);
    bool new_epoch = mp->leader_epoch != atomic_load(&p->leader_epoch);
    p->nreplicas = MIN(mp->nreplicas, REPLICA_MAX);
    if (p->nreplicas > 0)
        memcpy(p->replicas, mp->replicas, (size_t)p->nreplicas * sizeof *p->replicas);
    if (mp->partition_epoch >= p->partition_epoch || new_epoch) {
        p->partition_epoch = mp->partition_epoch;
        p->nisr = MIN(mp->nisr, REPLICA_MAX);
        if (p->nisr > 0)
            memcpy(p->isr, mp->isr, (size_t)p->nisr * sizeof *p->isr);
    }
    CK_ASSERT(mp->leader_epoch >= atomic_load(&p->leader_epoch)); /* epochs never go back */
    atomic_store(&p->leader_epoch, mp->leader_epoch);
    atomic_store(&p->leader_id, mp->leader);
    if (lead && (!was || new_epoch))
        replica_become_leader(p, clock_mono_ms());
    atomic_store(&p->leading, lead);
    pthread_mutex_unlock(&p->rlock);
    if (was && (!lead || new_epoch)) {
        /* Appended here and maybe replicated and committed by the new
         * leader: the outcome is unknown, which is what REQUEST_TIMED_OUT
         * tells a producer (a retry keeps its batch and sequence numbers,
         * and the new leader recognises a duplicate). NOT_LEADER_OR_FOLLOWER
         * would say "not written", and a producer may then re-batch. */
        replica_fail_acks(p, KERR_REQUEST_TIMED_OUT);
        log_info("replica", "leadership lost topic=%s partition=%d leader=%d epoch=%d", p->topic, p->index,
                 mp->leader, mp->leader_epoch);
    }
    if (lead && (!was || new_epoch))
        log_info("replica", "leading topic=%s partition=%d epoch=%d isr_size=%d", p->topic, p->index,
                 mp->leader_epoch, mp->nisr);
    if (lead)
        replica_leader_advance(p); /* a single replica's high watermark, or a new ISR's */
}

/* t is the same object in prev: nothing about it changed since (the
 * images share unchanged topics, image.c). */
static bool unchanged(const meta_image *prev, const meta_topic *t)
{
    return prev && meta_image_topic(prev, t->name, strlen(t->name)) == t;
}

static void add_new(replica_mgr *m, const meta_image *img, const meta_image *prev)
{
    char key[STORAGE_TOPIC_MAX + 16];
    for (int32_t i = 0; i < img->ntopics; i++) {
        const meta_topic *t = img->topics[i];
        bool same = unchanged(prev, t);
        for (int32_t j = 0; j < t->npartitions; j++) {
            const meta_partition *mp = &t->partitions[j];
            size_t kl = part_key(key, sizeof key, t->name, strlen(t->name), mp->index);
            if (!holds(mp, m->node_id))
                continue;
            partition *p = hmap_get(&m->parts, key, kl);
            if (p && memcmp(p->topic_id.b, t->id.b, 16) == 0) {
                CK_ASSERT(!same || atomic_load(&p->leader_epoch) == mp->leader_epoch);
                if (same)
                    continue;
                plog_config_t pc;
                m->cfg_fn(m->cfg_ctx, t, &pc);
                plog_set_config(p->log, &pc);
                apply_role(p, mp);
                continue;
            }
            p = open_partition(m, t, mp);
            if (p) {
                hmap_put(&m->parts, key, kl, p);
                apply_role(p, mp);
            }
        }
    }
}

static void remove_gone(replica_mgr *m, const meta_image *img)
{
    size_t it = 0, kl;
    const char *k;
    void *v;
    partition *gone[256];
    int n = 0;
    while (n < 256 && hmap_next(&m->parts, &it, &k, &kl, &v)) {
        partition *p = v;
        const meta_topic *t = meta_image_topic(img, p->topic, strlen(p->topic));
        if (!t || memcmp(t->id.b, p->topic_id.b, 16) != 0 || p->index >= t->npartitions ||
            !holds(&t->partitions[p->index], m->node_id)) /* deleted, or moved off this node */
            gone[n++] = p;
    }
    for (int i = 0; i < n; i++) {
        char key[STORAGE_TOPIC_MAX + 16];
        size_t len = part_key(key, sizeof key, gone[i]->topic, strlen(gone[i]->topic), gone[i]->index);
        hmap_del(&m->parts, key, len);
        atomic_store(&gone[i]->removed, true);
        char aside[STORAGE_PATH_MAX + 64];
        int r = plog_mark_deleted(gone[i]->log, aside, sizeof aside);
        if (r < 0)
            log_error("replica", "cannot rename a deleted partition's directory topic=%s partition=%d err=\"%s\"",
                      gone[i]->topic, gone[i]->index, strerror(-r));
        wake_all(gone[i]);
        replica_fail_acks(gone[i], KERR_UNKNOWN_TOPIC_OR_PARTITION);
        log_info("replica", "partition removed topic=%s partition=%d", gone[i]->topic, gone[i]->index);
        partition_put(gone[i]);
    }
    if (n == 256)
        remove_gone(m, img);
}

void replica_sync(replica_mgr *m, const meta_image *img, const meta_image *prev)
{
    pthread_rwlock_wrlock(&m->lock);
    remove_gone(m, img);
    add_new(m, img, prev);
    pthread_rwlock_unlock(&m->lock);
    if (m->fetchers)
        fetchers_kick(m->fetchers, img);
}

void replica_each(replica_mgr *m, replica_each_fn fn, void *arg)
{
    pthread_rwlock_rdlock(&m->lock);
    size_t it = 0;
    void *v;
    while (hmap_next(&m->parts, &it, NULL, NULL, &v))
        fn(arg, v);
    pthread_rwlock_unlock(&m->lock);
}

/* Waits until every partition is destroyed (the flusher, still running,
 * completes the requests that hold references), then stops the reaper. A
 * reference still held after REAP_WAIT_MS is a leak: reported, not waited
 * for forever. */
#define REAP_WAIT_MS 30000
static void reaper_drain(replica_mgr *m)
{
    int64_t deadline = clock_mono_ms() + REAP_WAIT_MS;
    pthread_mutex_lock(&m->reap_mu);
    while (m->live > 0 && clock_mono_ms() < deadline) {
        struct timespec ts = clock_abstime_after_ms(50);
        pthread_cond_timedwait(&m->reap_cv, &m->reap_mu, &ts);
    }
    if (m->live > 0)
        log_error("replica", "partitions still referenced at shutdown count=%d", m->live);
    m->reap_stop = true;
    pthread_cond_broadcast(&m->reap_cv);
    pthread_mutex_unlock(&m->reap_mu);
    pthread_join(m->reaper, NULL);
    pthread_mutex_destroy(&m->reap_mu);
    pthread_cond_destroy(&m->reap_cv);
}

void replica_free(replica_mgr *m)
{
    pthread_mutex_lock(&m->tick_mu);
    m->tick_stop = true;
    pthread_cond_broadcast(&m->tick_cv);
    pthread_mutex_unlock(&m->tick_mu);
    pthread_join(m->ticker, NULL);
    if (m->fetchers)
        fetchers_free(m->fetchers);
    hwcheck_write(m, m->data_dir, true);
    hwcheck_free(&m->hw_checkpoint);
    pthread_rwlock_wrlock(&m->lock);
    size_t it = 0;
    void *v;
    while (hmap_next(&m->parts, &it, NULL, NULL, &v))
        partition_put(v);
    hmap_free(&m->parts);
    pthread_rwlock_unlock(&m->lock);
    reaper_drain(m);
    flusher_free(m->flusher);
    pthread_rwlock_destroy(&m->lock);
    free(m->data_dir);
    free(m);
}

void partition_watch(partition *p, pwaiter *w)
{
    pthread_mutex_lock(&p->wlock);
    if (!w->queued) {
        w->next = p->waiters;
        p->waiters = w;
        w->queued = true;
    }
    pthread_mutex_unlock(&p->wlock);
}

void partition_unwatch(partition *p, pwaiter *w)
{
    pthread_mutex_lock(&p->wlock);
    if (w->queued) {
        for (pwaiter **pp = &p->waiters; *pp; pp = &(*pp)->next)
            if (*pp == w) {
                *pp = w->next;
                break;
            }
        w->queued = false;
    }
    pthread_mutex_unlock(&p->wlock);
}

void partition_note_append(partition *p, size_t bytes)
{
    if (!txn_state_note_append(p->producers, bytes) || atomic_exchange(&p->snapshotting, true))
        return;
    buf_t snap;
    buf_init(&snap);
    pthread_mutex_lock(&p->produce_lock);
    if (txn_state_snapshot_due(p->producers)) {
        txn_state_expire(p->producers, clock_wall_ms(), expiration_ms(p));
        txn_state_encode(p->producers, plog_log_end_offset(p->log), &snap);
    }
    pthread_mutex_unlock(&p->produce_lock);
    /* The fsync happens outside the lock: appends go on meanwhile. */
    if (snap.len > 0 && plog_state(p->log) == STORAGE_OK)
        txn_snapshot_write(p->mgr->fs, plog_dir(p->log), &snap);
    buf_free(&snap);
    atomic_store(&p->snapshotting, false);
}

void replica_load_producers(partition *p)
{
    txn_state_free(p->producers);
    p->producers = txn_state_new();
    int rc = txn_state_load(p->producers, p->log, p->mgr->fs, plog_dir(p->log), clock_wall_ms(),
                            replica_expiration_ms(p->mgr));
    if (rc != STORAGE_OK)
        log_error("replica", "cannot rebuild producer state topic=%s partition=%d err=\"%s\"", p->topic, p->index,
                  storage_strerror(rc));
    atomic_store(&p->first_unstable, txn_state_first_unstable(p->producers));
}

void replica_apply_batch(partition *p, const batch_info_t *b, int64_t first, int64_t last)
{
    int rc = txn_state_apply_log(p->producers, p->log, b, first, last);
    if (rc != STORAGE_OK)
        log_error("replica", "cannot index an aborted transaction topic=%s partition=%d err=\"%s\"", p->topic,
                  p->index, storage_strerror(rc));
    atomic_store(&p->first_unstable, txn_state_first_unstable(p->producers));
}

int64_t partition_last_stable_offset(partition *p)
{
    int64_t hw = atomic_load(&p->high_watermark), first = atomic_load(&p->first_unstable);
    return first < hw ? first : hw;
}
